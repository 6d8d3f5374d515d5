"""The transition tables: what may follow what, and that anything else fails loudly."""

import pytest

from lifecycle.errors import IllegalTransition
from lifecycle.execution.states import (
    RUN_TRANSITIONS,
    STEP_TRANSITIONS,
    RunState,
    StepState,
    run_transition,
    step_transition,
)


def test_every_state_has_a_row():
    assert set(STEP_TRANSITIONS) == set(StepState)
    assert set(RUN_TRANSITIONS) == set(RunState)


@pytest.mark.parametrize(
    "old,new",
    [
        (StepState.PENDING, StepState.RUNNING),
        (StepState.RUNNING, StepState.SUCCEEDED),
        (StepState.RUNNING, StepState.RETRYING),
        (StepState.RETRYING, StepState.RUNNING),
        (StepState.RUNNING, StepState.IN_DOUBT),
        (StepState.IN_DOUBT, StepState.SUCCEEDED),
        (StepState.FAILED, StepState.PENDING),
    ],
)
def test_legal_step_transitions(old, new):
    assert step_transition("s", old, new) is new


@pytest.mark.parametrize(
    "old,new",
    [
        (StepState.SUCCEEDED, StepState.RUNNING),  # a finished step never runs again
        (StepState.SUCCEEDED, StepState.PENDING),
        (StepState.PENDING, StepState.SUCCEEDED),  # nothing succeeds without running
        (StepState.PENDING, StepState.FAILED),
        (StepState.FAILED, StepState.RUNNING),  # a failed step goes back through resume
        (StepState.IN_DOUBT, StepState.RUNNING),
    ],
)
def test_illegal_step_transitions_raise(old, new):
    with pytest.raises(IllegalTransition, match="s:"):
        step_transition("s", old, new)


def test_finished_runs_are_final():
    for final in (RunState.SUCCEEDED, RunState.ABORTED):
        assert final.final
        for new in RunState:
            with pytest.raises(IllegalTransition):
                run_transition("r", final, new)


def test_a_crashed_run_can_be_taken_over_and_a_failed_one_resumed():
    assert run_transition("r", RunState.RUNNING, RunState.RUNNING) is RunState.RUNNING
    assert run_transition("r", RunState.FAILED, RunState.RUNNING) is RunState.RUNNING
    with pytest.raises(IllegalTransition):
        run_transition("r", RunState.PAUSED, RunState.SUCCEEDED)
