"""From a DAG of steps to a schedule: list scheduling with one step per node at a time.

Safety never depends on the schedule: every exclusion a rule needs (quorum, capacity, failure
domains) is already an edge of the DAG, so any execution order the DAG allows is safe. The
schedule only decides *when*, packing independent work in parallel; a node runs one step at a time
because a host's package manager and container runtime serialise work anyway.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from itertools import repeat

import networkx as nx

from lifecycle.errors import DependencyCycle, PlanningError
from lifecycle.planning.plan import ParamValue, Plan, Step


def check_dag(steps: Sequence[Step]) -> None:
    """Refuse duplicate ids, dangling dependencies and cycles, naming them."""
    ids: set[str] = set()
    for step in steps:
        if step.id in ids:
            raise PlanningError(f"duplicate step id {step.id!r}")
        ids.add(step.id)
    graph: nx.DiGraph = nx.DiGraph()
    for step in steps:
        graph.add_node(step.id)
        for dep in step.depends_on:
            if dep not in ids:
                raise PlanningError(f"step {step.id!r} depends on unknown step {dep!r}")
            graph.add_edge(dep, step.id)
    if not nx.is_directed_acyclic_graph(graph):
        raise DependencyCycle([edge[0] for edge in nx.find_cycle(graph)])


def topological(steps: Sequence[Step]) -> list[Step]:
    """Steps ordered so that every dependency comes first; stable for equal rank."""
    position = {s.id: i for i, s in enumerate(steps)}
    indegree = {s.id: len(s.depends_on) for s in steps}
    children: dict[str, list[str]] = {s.id: [] for s in steps}
    for s in steps:
        for dep in s.depends_on:
            if dep not in children:
                raise PlanningError(f"step {s.id!r} depends on unknown step {dep!r}")
            children[dep].append(s.id)
    if len(position) != len(steps):
        check_dag(steps)  # names the duplicate
    ready = [position[i] for i, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    out: list[Step] = []
    while ready:
        step = steps[heapq.heappop(ready)]
        out.append(step)
        for child in children[step.id]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, position[child])
    if len(out) != len(steps):
        check_dag(steps)  # names the cycle
    return out


def tails(ordered: Sequence[Step]) -> dict[str, float]:
    """Longest path from each step's start to the end of the DAG (the list-scheduling priority)."""
    children: dict[str, list[str]] = {s.id: [] for s in ordered}
    for s in ordered:
        for dep in s.depends_on:
            children[dep].append(s.id)
    tail: dict[str, float] = {}
    for s in reversed(ordered):
        tail[s.id] = s.duration + max((tail[c] for c in children[s.id]), default=0.0)
    return tail


def critical_path(ordered: Sequence[Step]) -> float:
    return max(tails(ordered).values(), default=0.0)


def node_load(steps: Iterable[Step]) -> float:
    """The busiest node's total work: no schedule with one step per node at a time beats it."""
    load: dict[str, float] = {}
    for s in steps:
        for node in s.nodes:
            load[node] = load.get(node, 0.0) + s.duration
    return max(load.values(), default=0.0)


def _serial(
    ordered: Sequence[Step],
    parents: dict[str, list[str]],
    children: dict[str, list[str]],
    rank: dict[str, float],
) -> dict[str, float]:
    """One pass of list scheduling: a step starts once its parents have ended and its nodes are
    free; among ready steps the lowest rank goes first."""
    index = {s.id: i for i, s in enumerate(ordered)}
    waiting = {s.id: len(parents[s.id]) for s in ordered}
    ready_at = dict.fromkeys(index, 0.0)
    node_free: dict[str, float] = {}
    free_at, never = node_free.get, repeat(0.0)
    start: dict[str, float] = {}
    ready = [(0.0, rank[s.id], index[s.id]) for s in ordered if not parents[s.id]]
    heapq.heapify(ready)
    while ready:
        earliest, r, idx = heapq.heappop(ready)
        step = ordered[idx]
        # map() keeps the per-host work in C: a batch of a large aggregate has hundreds of hosts
        node_ready = max(map(free_at, step.nodes, never), default=0.0)
        if node_ready > earliest:
            heapq.heappush(ready, (node_ready, r, idx))
            continue
        start[step.id] = earliest
        end = earliest + step.duration
        node_free.update(dict.fromkeys(step.nodes, end))
        for child in children[step.id]:
            if ready_at[child] < end:
                ready_at[child] = end
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (ready_at[child], rank[child], index[child]))
    return start


def _span(ordered: Sequence[Step], start: dict[str, float]) -> float:
    return max((start[s.id] + s.duration for s in ordered), default=0.0)


def list_schedule(ordered: Sequence[Step], passes: int = 3) -> dict[str, float]:
    """Start times by list scheduling with forward-backward improvement: a first pass ranks by
    longest tail; then the schedule is repacked backwards from its end and forwards again, each
    pass ranking steps by where the previous one put them. The shortest schedule wins; the passes
    stop early at a fixed point (a pass that gives back the schedule it started from)."""
    parents = {s.id: list(s.depends_on) for s in ordered}
    children: dict[str, list[str]] = {s.id: [] for s in ordered}
    for s in ordered:
        for dep in s.depends_on:
            children[dep].append(s.id)
    tail = tails(ordered)
    best = _serial(ordered, parents, children, {k: -v for k, v in tail.items()})
    current = best
    for _ in range(passes):
        previous = current
        span = _span(ordered, current)
        # backwards: the reversed DAG, latest-ending steps first
        back = _serial(
            ordered, children, parents, {s.id: span - current[s.id] - s.duration for s in ordered}
        )
        back_span = _span(ordered, back)
        # forwards again, earliest in the backward schedule first
        current = _serial(
            ordered, parents, children, {s.id: back_span - back[s.id] - s.duration for s in ordered}
        )
        if _span(ordered, current) < _span(ordered, best) - 1e-9:
            best = current
        if current == previous:
            break  # a fixed point: every further pass would repeat this one
    return best


def build_plan(
    operation: str,
    cluster: str,
    steps: Sequence[Step],
    *,
    source: str | None = None,
    target: str | None = None,
    inventory_digest: str = "",
    lower_bound: float | None = None,
    extra: tuple[tuple[str, ParamValue], ...] = (),
) -> Plan:
    """Check the DAG, schedule it and wrap it as a Plan.

    The lower bound is the largest of: the DAG's critical path (planners put only edges the rules
    and policies force, so no valid plan of the same steps is shorter), the busiest node's load, and
    the operation's own `lower_bound` (e.g. aggregate capacity)."""
    ordered = topological(steps)
    start = list_schedule(ordered)
    bound = max(critical_path(ordered), node_load(ordered), lower_bound or 0.0)
    return Plan(
        operation=operation,
        cluster=cluster,
        source=source,
        target=target,
        steps=tuple(ordered),
        starts=tuple(start[s.id] for s in ordered),
        lower_bound=bound,
        inventory_digest=inventory_digest,
        extra=extra,
    )
