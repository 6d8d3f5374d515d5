"""The controller decides, the engine does: given the state of a run, which steps start now.

`decide` is a pure function of its inputs (no clock, no I/O): the engine passes `now`. The
bookkeeping of which steps have all their dependencies done is incremental (`Readiness`) so that a
10,000-step run costs O(steps), not O(steps^2).
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass

from lifecycle.execution.states import StepState
from lifecycle.planning.plan import Plan, Step


class Stop(enum.Enum):
    """Why the run is winding down: nothing new starts, except for THRESHOLD where steps that
    disrupt nothing (gates, re-enabling hosts) still run so the cluster is left tidy."""

    PAUSE = "pause"
    ABORT = "abort"
    THRESHOLD = "failure threshold reached"
    OPERATOR = "a step needs the operator"


def disrupts(step: Step) -> bool:
    """Whether starting the step takes anything away from the cloud."""
    return bool(step.disrupts) or step.action == "compute.evacuate"


class Readiness:
    """Steps whose dependencies are all done, ordered by their scheduled start (then plan order)."""

    def __init__(self, plan: Plan, states: Mapping[str, StepState]) -> None:
        self._plan = plan
        self._order = {s.id: (t, i) for i, (s, t) in enumerate(plan.scheduled())}
        self._children: dict[str, list[str]] = {s.id: [] for s in plan.steps}
        self._unmet: dict[str, int] = {}
        for s in plan.steps:
            for dep in s.depends_on:
                self._children[dep].append(s.id)
            self._unmet[s.id] = sum(1 for d in s.depends_on if not states[d].done)
        self._ready: list[tuple[float, int, str]] = []
        for s in plan.steps:
            if self._unmet[s.id] == 0 and not states[s.id].done:
                self._push(s.id)

    def _push(self, step_id: str) -> None:
        start, index = self._order[step_id]
        heapq.heappush(self._ready, (start, index, step_id))

    def done(self, step_id: str) -> None:
        """A step finished: its children may become ready."""
        for child in self._children[step_id]:
            self._unmet[child] -= 1
            if self._unmet[child] == 0:
                self._push(child)

    def again(self, step_id: str) -> None:
        """A step waits for another attempt: back in line."""
        self._push(step_id)

    def candidates(self, states: Mapping[str, StepState]) -> Generator[str, None, None]:
        """Ready steps still to run, in schedule order; lazy, so a decision that needs four steps
        looks at about four. Close the iterator when done: what it handed out goes back in line
        (steps that have started since are dropped on a later pass)."""
        handed: list[tuple[float, int, str]] = []
        seen: set[str] = set()
        try:
            while self._ready:
                entry = heapq.heappop(self._ready)
                sid = entry[2]
                # a retried step is queued again, so drop duplicates as well as started steps
                if sid not in seen and states[sid] in (StepState.PENDING, StepState.RETRYING):
                    seen.add(sid)
                    handed.append(entry)
                    yield sid
        finally:
            for entry in handed:
                heapq.heappush(self._ready, entry)


@dataclass(frozen=True)
class Decision:
    start: tuple[str, ...]
    wake_at: float | None  # earliest backoff expiry among waiting retries


def decide(
    plan: Plan,
    candidates: Iterable[str],
    states: Mapping[str, StepState],
    not_before: Mapping[str, float],
    busy_nodes: frozenset[str],
    free_slots: int,
    now: float,
    stop: Stop | None,
    held: Mapping[str, str] | None = None,
) -> Decision:
    """Which of the ready `candidates` start now: within the free slots, one step per node at a
    time, retries only after their backoff, and when stopping only steps that disrupt nothing.

    `held` maps a node to the RETRYING step that holds it: a step waiting out its backoff keeps
    its nodes (it failed on them, perhaps half-way; another step starting there would overlap
    its next attempt), so only that step may start on them."""
    held = held or {}
    if stop in (Stop.PAUSE, Stop.ABORT, Stop.OPERATOR):
        return Decision((), None)
    start: list[str] = []
    taken = set(busy_nodes)
    wake_at: float | None = None
    for sid in candidates:
        if len(start) >= free_slots:
            break
        step = plan.by_id[sid]
        if stop is Stop.THRESHOLD and disrupts(step):
            continue
        if states[sid] is StepState.RETRYING and not_before.get(sid, 0.0) > now:
            due = not_before[sid]
            wake_at = due if wake_at is None else min(wake_at, due)
            continue
        if any(n in taken or held.get(n, sid) != sid for n in step.nodes):
            continue
        taken.update(step.nodes)
        start.append(sid)
    return Decision(tuple(start), wake_at)
