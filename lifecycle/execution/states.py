"""Step and run states, and the only transitions between them.

Every state change goes through `step_transition` or `run_transition`; anything the tables do not
list is a bug in lifecycle and raises IllegalTransition loudly.
"""

from __future__ import annotations

import enum

from lifecycle.errors import IllegalTransition


class StepState(enum.Enum):
    PENDING = "pending"  # not started (or sent back to start by resume)
    RUNNING = "running"  # recorded before the driver is called
    RETRYING = "retrying"  # an attempt failed; the next waits for its backoff
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    IN_DOUBT = "in-doubt"  # caught mid-flight, effect unknown, not safe to re-run: operator decides
    # in flight when the operator stopped the run (Ctrl-C twice); resume probes it like a step a
    # dead process left RUNNING, the difference being that the journal says why it stopped
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"

    @property
    def done(self) -> bool:
        return self in (StepState.SUCCEEDED, StepState.SKIPPED)


class RunState(enum.Enum):
    RUNNING = "running"
    PAUSED = "paused"
    NEEDS_OPERATOR = "needs-operator"
    FAILED = "failed"
    ABORTED = "aborted"
    SUCCEEDED = "succeeded"

    @property
    def final(self) -> bool:
        return self in (RunState.ABORTED, RunState.SUCCEEDED)


S = StepState
STEP_TRANSITIONS: dict[StepState, frozenset[StepState]] = {
    S.PENDING: frozenset({S.RUNNING, S.SKIPPED}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.RETRYING, S.IN_DOUBT, S.PENDING, S.INTERRUPTED}),
    S.RETRYING: frozenset({S.RUNNING, S.FAILED, S.PENDING}),
    # resume after the operator fixed the cause: probe, then done or run again
    S.FAILED: frozenset({S.PENDING, S.SUCCEEDED}),
    S.IN_DOUBT: frozenset({S.SUCCEEDED, S.PENDING}),  # --accept / --rerun
    S.INTERRUPTED: frozenset({S.SUCCEEDED, S.PENDING, S.IN_DOUBT}),  # resume: as RUNNING
    S.SUCCEEDED: frozenset(),  # a finished step is never run again
    S.SKIPPED: frozenset(),
}

R = RunState
RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    # RUNNING -> RUNNING: resume takes over a run whose process died (the lock proves it is gone)
    R.RUNNING: frozenset({R.RUNNING, R.PAUSED, R.NEEDS_OPERATOR, R.FAILED, R.ABORTED, R.SUCCEEDED}),
    R.PAUSED: frozenset({R.RUNNING, R.ABORTED}),
    R.NEEDS_OPERATOR: frozenset({R.RUNNING, R.ABORTED}),
    R.FAILED: frozenset({R.RUNNING, R.ABORTED}),
    R.ABORTED: frozenset(),
    R.SUCCEEDED: frozenset(),
}


def step_transition(step_id: str, old: StepState, new: StepState) -> StepState:
    """Check one step transition; return the new state."""
    if new not in STEP_TRANSITIONS[old]:
        raise IllegalTransition(f"step {step_id}: {old.value} -> {new.value} is not allowed")
    return new


def run_transition(run_id: str, old: RunState, new: RunState) -> RunState:
    """Check one run transition; return the new state."""
    if new not in RUN_TRANSITIONS[old]:
        raise IllegalTransition(f"run {run_id}: {old.value} -> {new.value} is not allowed")
    return new
