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

from lifecycle.errors import DependencyCycle, PlanningError
from lifecycle.planning.plan import ParamValue, Plan, Step


def check_dag(steps: Sequence[Step]) -> None:
    """Refuse duplicate ids, dangling dependencies and cycles, naming them."""
    import networkx as nx  # only to name what is wrong: planning itself does not need it

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
    steps: Sequence[Step], parents: list[list[int]], children: list[list[int]], rank: list[float]
) -> list[float]:
    """One pass of list scheduling over step positions: a step starts once its parents have ended
    and its nodes are free; among ready steps the lowest rank goes first."""
    waiting = [len(p) for p in parents]
    ready_at = [0.0] * len(steps)
    start = [0.0] * len(steps)
    node_free: dict[str, float] = {}
    free_at, never = node_free.get, repeat(0.0)
    ready = [(0.0, rank[i], i) for i, p in enumerate(parents) if not p]
    heapq.heapify(ready)
    pop, push = heapq.heappop, heapq.heappush
    while ready:
        earliest, r, idx = pop(ready)
        nodes = steps[idx].nodes
        # map() keeps the per-host work in C: a batch of a large aggregate has hundreds of hosts
        node_ready = max(map(free_at, nodes, never), default=0.0)
        if node_ready > earliest:
            push(ready, (node_ready, r, idx))
            continue
        start[idx] = earliest
        end = earliest + steps[idx].duration
        node_free.update(dict.fromkeys(nodes, end))
        for child in children[idx]:
            if ready_at[child] < end:
                ready_at[child] = end
            waiting[child] -= 1
            if waiting[child] == 0:
                push(ready, (ready_at[child], rank[child], child))
    return start


def _span(start: list[float], durations: list[float]) -> float:
    return max(map(float.__add__, start, durations), default=0.0)


def list_schedule(ordered: Sequence[Step], passes: int = 3) -> dict[str, float]:
    """Start times by list scheduling with forward-backward improvement: a first pass ranks by
    longest tail; then the schedule is repacked backwards from its end and forwards again, each
    pass ranking steps by where the previous one put them. The shortest schedule wins; the passes
    stop early at a fixed point (a backward pass that gives back the previous one's schedule:
    every further pass would repeat it)."""
    position = {s.id: i for i, s in enumerate(ordered)}
    parents = [[position[d] for d in s.depends_on] for s in ordered]
    children: list[list[int]] = [[] for _ in ordered]
    for i, deps in enumerate(parents):
        for dep in deps:
            children[dep].append(i)
    durations = [float(s.duration) for s in ordered]
    tail = tails(ordered)
    best = _serial(ordered, parents, children, [-tail[s.id] for s in ordered])
    current, back_before = best, None
    for _ in range(passes):
        span = _span(current, durations)
        # backwards: the reversed DAG, latest-ending steps first
        late = [span - t - d for t, d in zip(current, durations, strict=True)]
        back = _serial(ordered, children, parents, late)
        if back == back_before:
            break  # the forward pass would give back `current` again
        back_before, back_span = back, _span(back, durations)
        # forwards again, earliest in the backward schedule first
        early = [back_span - t - d for t, d in zip(back, durations, strict=True)]
        current = _serial(ordered, parents, children, early)
        if _span(current, durations) < _span(best, durations) - 1e-9:
            best = current
    return {s.id: t for s, t in zip(ordered, best, strict=True)}


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
