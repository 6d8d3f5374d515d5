"""The operator's Ctrl-C: once pauses at a safe point through the journal (as `lifecycle pause`
does), twice stops without waiting for the steps in flight, which are recorded as interrupted and
probed by resume."""

from __future__ import annotations

import threading

import pytest

from lifecycle.errors import RunInterrupted, RunStopped
from lifecycle.execution.engine import Engine, EngineOptions
from lifecycle.execution.interrupts import Interrupts
from lifecycle.execution.journal import MemoryJournal
from lifecycle.execution.routing import Router
from lifecycle.execution.runner import conclude
from lifecycle.execution.runs import reopen, settle, start_run
from lifecycle.execution.states import RunState, StepState
from lifecycle.planning.scheduler import build_plan
from tests.unit.test_engine_support import RecordingDriver, fast_policies, small_cluster, step


class Keyboard(RecordingDriver):
    """Presses Ctrl-C `presses` times as step `at` starts; that step then waits for `gate`."""

    def __init__(self, interrupts: Interrupts, at: str, presses: int) -> None:
        super().__init__()
        self.interrupts, self.at, self.presses = interrupts, at, presses
        self.gate = threading.Event()
        self.finished: list[str] = []

    def run(self, step, ctx):
        if step.id == self.at and self.presses:
            for _ in range(self.presses):
                self.interrupts.press()
            self.presses = 0
            self.gate.wait(timeout=60)
        result = super().run(step, ctx)
        self.finished.append(step.id)
        return result


def plan():
    """a, then b and c side by side (different nodes), then d."""
    return build_plan(
        "t",
        "t",
        [
            step("a", "noop.run", nodes=("ctl-0",), duration=1.0),
            step("b", "noop.run", ["a"], nodes=("ctl-1",), duration=1.0),
            step("c", "noop.run", ["a"], nodes=("ctl-2",), duration=1.0),
            step("d", "noop.run", ["b", "c"], nodes=("ctl-0",), duration=1.0),
        ],
    )


def engine(journal, the_plan, driver, interrupts):
    return Engine(
        journal,
        the_plan,
        small_cluster(),
        Router.single(driver),
        policies=fast_policies(),
        options=EngineOptions(poll_interval=0.01),
        interrupts=interrupts,
    )


def test_ctrl_c_once_pauses_at_a_safe_point_through_the_journal():
    journal, the_plan, keys = MemoryJournal(), plan(), Interrupts()
    driver = Keyboard(keys, "b", presses=1)
    driver.gate.set()  # b finishes on its own: the pause waits for it
    view = start_run(journal, the_plan, small_cluster())
    view = engine(journal, the_plan, driver, keys).execute(view)
    assert view.state is RunState.PAUSED and "Ctrl-C" in view.reason
    assert view.steps["b"].state is StepState.SUCCEEDED  # waited for, not interrupted
    assert "d" not in driver.ran  # nothing new started
    assert not view.in_state(StepState.INTERRUPTED)
    [control] = journal.controls(view.run.id)
    assert control.command == "pause" and "Ctrl-C" in control.who
    assert any(a.overrides.get("pause") == "Ctrl-C" for a in journal.audit(view.run.id))
    with pytest.raises(RunStopped) as stopped:
        conclude(view)
    assert stopped.value.exit_code == 4


def test_ctrl_c_twice_stops_without_waiting_and_resume_probes_the_interrupted_step():
    journal, the_plan, keys = MemoryJournal(), plan(), Interrupts()
    driver = Keyboard(keys, "b", presses=2)
    view = start_run(journal, the_plan, small_cluster())
    view = engine(journal, the_plan, driver, keys).execute(view)
    assert "b" not in driver.finished  # the engine came back while b was still in its call
    driver.gate.set()
    assert view.state is RunState.PAUSED
    assert view.steps["b"].state is StepState.INTERRUPTED
    assert "interrupted: b" in view.reason
    assert view.steps["d"].state is StepState.PENDING
    with pytest.raises(RunInterrupted) as stopped:
        conclude(view)
    assert stopped.value.exit_code == 130 and f"lifecycle resume {view.run.id}" in str(
        stopped.value
    )
    # resume: the interrupted step is probed (the recording driver says not done: run again)
    again = RecordingDriver()
    view = settle(journal, view, Router.single(again), small_cluster())
    assert view.steps["b"].state is StepState.PENDING
    view = reopen(journal, view, "resumed")
    view = engine(journal, the_plan, again, Interrupts()).execute(view)
    assert view.state is RunState.SUCCEEDED
    assert sorted(again.ran) == ["b", "d"] or sorted(again.ran) == ["b", "c", "d"]
