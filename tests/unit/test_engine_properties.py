"""Properties of the engine over random plans and random failures (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.execution.controller import disrupts
from lifecycle.execution.journal import MemoryJournal
from lifecycle.execution.states import RunState, StepState
from lifecycle.planning.scheduler import build_plan
from tests.unit.test_engine_support import RecordingDriver, run_plan, small_cluster, step


@st.composite
def plans_and_failures(draw):
    n = draw(st.integers(2, 25))
    steps = []
    for i in range(n):
        deps = draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set()
        steps.append(
            step(
                f"s{i}",
                draw(st.sampled_from(["ansible.playbook", "checks.health", "compute.evacuate"])),
                [f"s{d}" for d in sorted(deps)],
                nodes=(f"n{draw(st.integers(0, 4))}",),
                disrupts=("x@y",) if draw(st.booleans()) else (),
                idempotent=draw(st.booleans()),
                duration=1.0,
            )
        )
    plan = build_plan("t", "t", steps)
    fail = draw(st.dictionaries(st.sampled_from([s.id for s in steps]), st.integers(1, 3)))
    threshold = draw(st.integers(0, 2))
    return plan, fail, threshold


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans_and_failures(), st.integers(1, 4))
def test_engine_invariants(case, concurrency):
    plan, fail, threshold = case
    cluster = small_cluster(failure_threshold=threshold)
    events: list[dict] = []
    driver = RecordingDriver(fail=fail)
    view = run_plan(MemoryJournal(), plan, cluster, driver, events, concurrency=concurrency)
    states = {sid: s.state for sid, s in view.steps.items()}
    succeeded = {sid for sid, s in states.items() if s is StepState.SUCCEEDED}
    # a step ran only after every dependency had succeeded
    position = {}
    for i, e in enumerate(events):
        if e["event"] == "step-succeeded":
            position.setdefault(e["step"], i)
        if e["event"] == "step-started":
            for dep in plan.by_id[e["step"]].depends_on:
                assert position.get(dep, len(events)) < i
    # a step ran again only as a retry of an idempotent step that had failed
    for sid in set(driver.ran):
        runs = driver.ran.count(sid)
        assert runs == 1 or (plan.by_id[sid].idempotent and runs <= 1 + fail.get(sid, 0))
    # past the threshold, nothing that disrupts started
    kinds = [e["event"] for e in events]
    if "run-stopping" in kinds:
        after = events[kinds.index("run-stopping") :]
        started = [e["step"] for e in after if e["event"] == "step-started"]
        assert not any(disrupts(plan.by_id[s]) for s in started)
    # the run's verdict matches its steps
    if view.state is RunState.SUCCEEDED:
        assert succeeded == set(plan.by_id)
    else:
        assert view.state is RunState.FAILED
        assert any(s is StepState.FAILED for s in states.values())
    # nothing is left running; a retry is left waiting only when the run stopped before it
    assert StepState.RUNNING not in states.values()
    if StepState.RETRYING in states.values():
        assert "run-stopping" in kinds
