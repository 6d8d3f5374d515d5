"""The scheduler packs work in parallel but never double-books a node or breaks an edge."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.errors import DependencyCycle, PlanningError
from lifecycle.planning.plan import Step
from lifecycle.planning.scheduler import build_plan


def step(sid: str, nodes: tuple[str, ...], duration: float, *deps: str) -> Step:
    return Step(
        id=sid, action="sim.noop", phase="p", nodes=nodes, duration=duration, depends_on=deps
    )


def test_independent_work_on_different_nodes_runs_in_parallel() -> None:
    plan = build_plan("x", "c", [step("a", ("n1",), 10), step("b", ("n2",), 10)])
    assert plan.start_of == {"a": 0.0, "b": 0.0} and plan.makespan == 10


def test_one_step_per_node_at_a_time() -> None:
    plan = build_plan("x", "c", [step("a", ("n1",), 10), step("b", ("n1",), 10)])
    assert sorted(plan.start_of.values()) == [0.0, 10.0]


def test_cycles_and_dangling_dependencies_are_refused() -> None:
    with pytest.raises(DependencyCycle, match=r"a -> b -> a|b -> a -> b"):
        build_plan("x", "c", [step("a", (), 1, "b"), step("b", (), 1, "a")])
    with pytest.raises(PlanningError, match="unknown step 'z'"):
        build_plan("x", "c", [step("a", (), 1, "z")])


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sets(st.sampled_from("abcde"), max_size=2),
            st.floats(0, 100),
            st.sets(st.integers(0, 40), max_size=3),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_random_dags_schedule_validly(raw) -> None:
    steps = []
    for i, (nodes, duration, deps) in enumerate(raw):
        parents = tuple(f"s{d}" for d in sorted(deps) if d < i)
        steps.append(step(f"s{i}", tuple(sorted(nodes)), duration, *parents))
    plan = build_plan("x", "c", steps)
    for s in plan.steps:
        for dep in s.depends_on:
            assert plan.end_of(dep) <= plan.start_of[s.id] + 1e-9
    for a in plan.steps:
        for b in plan.steps:
            if a.id < b.id and set(a.nodes) & set(b.nodes) and a.duration and b.duration:
                assert (
                    plan.end_of(a.id) <= plan.start_of[b.id] + 1e-9
                    or plan.end_of(b.id) <= plan.start_of[a.id] + 1e-9
                )
    assert plan.makespan >= plan.lower_bound - 1e-9
