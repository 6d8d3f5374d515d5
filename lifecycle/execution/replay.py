"""Rebuild a run's state by replaying its journal, checking every transition on the way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from lifecycle.execution.journal import Journal
from lifecycle.execution.records import RunRecord, RunTransition, StepTransition
from lifecycle.execution.states import (
    STEP_TRANSITIONS,
    RunState,
    StepState,
    run_transition,
    step_transition,
)
from lifecycle.formats.plan_json import plan_from_own_json
from lifecycle.planning.plan import Plan


class StepView(NamedTuple):
    """A step's state after replay: the last transition and when it first started and ended.
    (A NamedTuple: resume builds one per step, 10,000 at a time.)"""

    id: str
    state: StepState
    attempts: int = 0
    started: float | None = None
    ended: float | None = None
    output: dict[str, Any] | None = None
    error: str | None = None
    hosts: dict[str, Any] | None = None
    not_before: float | None = None


@dataclass(frozen=True)
class RunView:
    run: RunRecord
    state: RunState
    reason: str
    steps: dict[str, StepView]
    started: float
    ended: float | None

    @cached_property
    def plan(self) -> Plan:
        return plan_from_own_json(self.run.plan_json, self.run.plan_digest)

    def in_state(self, *states: StepState) -> list[str]:
        return [sid for sid, view in self.steps.items() if view.state in states]


def replay(journal: Journal, run_id: str, plan: Plan | None = None) -> RunView:
    """The run's current state. Steps the journal never mentions are PENDING. `plan` (the run's
    plan, when the caller has it already) spares parsing the journal's copy again."""
    record = journal.run(run_id)
    plan = plan or plan_from_own_json(record.plan_json, record.plan_digest)
    view = _replay(journal, record, plan)
    view.__dict__["plan"] = plan  # RunView.plan's cache: the plan is parsed once per process
    return view


def advanced(
    view: RunView, steps: Sequence[StepTransition] = (), run: RunTransition | None = None
) -> RunView:
    """`view` after transitions its caller has just recorded (the same checks as replay), for a
    caller holding the run's lock: what replaying the whole journal again would give."""
    states = dict(view.steps)
    finished = (StepState.SUCCEEDED, StepState.FAILED)
    for event in steps:
        sid, new = event.step_id, event.state
        before = states[sid]
        if new not in STEP_TRANSITIONS[before.state]:
            step_transition(sid, before.state, new)  # raises, naming the step
        started = before.started
        if new is StepState.RUNNING and started is None:
            started = event.ts
        states[sid] = StepView(
            id=sid,
            state=new,
            attempts=event.attempt,
            started=started,
            ended=event.ts if new in finished else None,
            output=event.output,
            error=event.error,
            hosts=event.hosts,
            not_before=event.not_before,
        )
    run_state, reason, ended = view.state, view.reason, view.ended
    if run is not None:
        run_state = run_transition(view.run.id, view.state, run.state)
        reason = run.reason
        ended = run.ts if run.state is not RunState.RUNNING else None
    out = RunView(view.run, run_state, reason, states, view.started, ended)
    if "plan" in view.__dict__:
        out.__dict__["plan"] = view.__dict__["plan"]
    return out


# STEP_TRANSITIONS as pairs of member ids: an Enum hashes in Python, and a 10k-step journal is
# checked event by event
_ALLOWED = frozenset(
    (id(old), id(new)) for old, news in STEP_TRANSITIONS.items() for new in news
)  # fmt: skip


def _replay(journal: Journal, record: RunRecord, plan: Plan) -> RunView:
    run_id = record.id
    state: dict[str, StepState] = {s.id: StepState.PENDING for s in plan.steps}
    last: dict[str, StepTransition] = {}
    started: dict[str, float] = {}
    allowed, running = _ALLOWED, StepState.RUNNING
    for event in journal.step_transitions(run_id):
        sid, new = event.step_id, event.state
        if (id(state[sid]), id(new)) not in allowed:
            step_transition(sid, state[sid], new)  # raises, naming the step
        state[sid] = new
        last[sid] = event
        if new is running and sid not in started:
            started[sid] = event.ts
    steps = {}
    finished = (StepState.SUCCEEDED, StepState.FAILED)
    for sid, st in state.items():
        t = last.get(sid)
        if t is None:
            steps[sid] = StepView(id=sid, state=st)
            continue
        steps[sid] = StepView(
            id=sid,
            state=st,
            attempts=t.attempt,
            started=started.get(sid),
            ended=t.ts if st in finished else None,
            output=t.output,
            error=t.error,
            hosts=t.hosts,
            not_before=t.not_before,
        )
    run_state, reason, first, end = RunState.RUNNING, "", record.created, None
    for i, rt in enumerate(journal.run_transitions(run_id)):
        run_state = rt.state if i == 0 else run_transition(run_id, run_state, rt.state)
        reason = rt.reason
        end = rt.ts if rt.state is not RunState.RUNNING else None
    return RunView(record, run_state, reason, steps, first, end)
