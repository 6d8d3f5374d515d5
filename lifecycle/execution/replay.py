"""Rebuild a run's state by replaying its journal, checking every transition on the way."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from lifecycle.execution.journal import Journal
from lifecycle.execution.records import RunRecord, StepTransition
from lifecycle.execution.states import RunState, StepState, run_transition, step_transition
from lifecycle.formats.plan_json import plan_from_json
from lifecycle.planning.plan import Plan


@dataclass(frozen=True)
class StepView:
    """A step's state after replay: the last transition and when it first started and ended."""

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
        return plan_from_json(self.run.plan_json)

    def in_state(self, *states: StepState) -> list[str]:
        return [sid for sid, view in self.steps.items() if view.state in states]


def replay(journal: Journal, run_id: str, plan: Plan | None = None) -> RunView:
    """The run's current state. Steps the journal never mentions are PENDING."""
    record = journal.run(run_id)
    plan = plan or plan_from_json(record.plan_json)
    state: dict[str, StepState] = {s.id: StepState.PENDING for s in plan.steps}
    last: dict[str, StepTransition] = {}
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    for event in journal.step_transitions(run_id):
        sid = event.step_id
        state[sid] = step_transition(sid, state[sid], event.state)
        last[sid] = event
        if event.state is StepState.RUNNING:
            started.setdefault(sid, event.ts)
        elif event.state in (StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED):
            ended[sid] = event.ts
    steps = {}
    for sid, st in state.items():
        t = last.get(sid)
        steps[sid] = StepView(
            id=sid,
            state=st,
            attempts=t.attempt if t else 0,
            started=started.get(sid),
            ended=ended.get(sid) if st in (StepState.SUCCEEDED, StepState.FAILED) else None,
            output=t.output if t else None,
            error=t.error if t else None,
            hosts=t.hosts if t else None,
            not_before=t.not_before if t else None,
        )
    run_state, reason, first, end = RunState.RUNNING, "", record.created, None
    for i, rt in enumerate(journal.run_transitions(run_id)):
        run_state = rt.state if i == 0 else run_transition(run_id, run_state, rt.state)
        reason = rt.reason
        end = rt.ts if rt.state is not RunState.RUNNING else None
    return RunView(record, run_state, reason, steps, first, end)
