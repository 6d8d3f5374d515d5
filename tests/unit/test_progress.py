"""Following a live run: the run's clock across resumes, the time left from the plan and the
observed pace, and the display model (running steps with hosts, hops, the pause countdown)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from lifecycle.execution.eta import RunClock, estimate, pace, run_clock
from lifecycle.execution.journal import MemoryJournal
from lifecycle.execution.progress import LineDisplay, Tracker, open_display, stopping_text
from lifecycle.execution.records import RunTransition
from lifecycle.execution.replay import replay
from lifecycle.execution.runs import start_run
from lifecycle.execution.states import RunState
from lifecycle.formats.inventory import load_inventory
from lifecycle.planning.scheduler import build_plan
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from tests.unit.test_engine_support import small_cluster, step

R = RunState
INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"


def chain():
    """a (100 s) then b (300 s)."""
    return build_plan(
        "t", "t", [step("a", "x.y", duration=100.0), step("b", "x.y", ["a"], duration=300.0)]
    )


# --- the run's clock --------------------------------------------------------------------------


def test_elapsed_counts_running_time_only_over_every_process_that_ran_the_run():
    moves = [
        RunTransition("r", R.RUNNING, 100.0),
        RunTransition("r", R.PAUSED, 160.0),  # 60 s, then paused overnight
        RunTransition("r", R.RUNNING, 50_000.0),  # resumed
    ]
    clock = run_clock(moves)
    assert clock == RunClock(60.0, 50_000.0)
    assert clock.at(50_030.0) == pytest.approx(90.0)


def test_a_process_that_died_counts_until_its_last_journaled_step():
    moves = [RunTransition("r", R.RUNNING, 100.0), RunTransition("r", R.RUNNING, 900.0)]
    clock = run_clock(moves, activity=[110.0, 150.0, 905.0])
    assert clock.before == pytest.approx(50.0)  # died after 150, resumed at 900
    assert run_clock([RunTransition("r", R.RUNNING, 1.0), RunTransition("r", R.FAILED, 5.0)]) == (
        RunClock(4.0, None)
    )


# --- the time left ----------------------------------------------------------------------------


def test_pace_weighs_finished_steps_by_their_planned_duration():
    plan = chain()
    assert pace(plan, {}) is None
    assert pace(plan, {"a": 50.0, "b": 300.0}) == pytest.approx(350 / 400)


def test_remaining_time_follows_the_plan_at_the_observed_pace():
    plan = chain()
    first = estimate(plan, set(), {}, {})
    assert first.pace is None and first.remaining == pytest.approx(400.0)  # the plan's word
    after_a = estimate(plan, {"a"}, {}, {"a": 50.0})  # twice as fast as planned
    assert after_a.remaining == pytest.approx(150.0)
    midway = estimate(plan, {"a"}, {"b": 60.0}, {"a": 50.0})  # 120 plan-seconds of b done
    assert midway.remaining == pytest.approx(90.0)
    late = estimate(plan, {"a"}, {"b": 1000.0}, {"a": 50.0})  # b over its time: never negative
    assert late.remaining == 0.0


def test_remaining_time_keeps_the_schedules_one_step_per_node():
    """Two independent 100 s steps on one node: the critical path says 100 s, the schedule 200."""
    plan = build_plan(
        "t",
        "t",
        [
            step("a", "x.y", duration=100.0, nodes=("n1",)),
            step("b", "x.y", duration=100.0, nodes=("n1",)),
        ],
    )
    left = estimate(plan, set(), {}, {})
    assert left.critical == pytest.approx(100.0)
    assert left.remaining == pytest.approx(200.0)
    assert estimate(plan, {"a"}, {}, {"a": 100.0}).remaining == pytest.approx(100.0)


def test_remaining_time_of_a_long_branch_is_its_critical_path():
    """A finished short branch says nothing about the long one still to run."""
    plan = build_plan(
        "t",
        "t",
        [
            step("short", "x.y", duration=10.0, nodes=("n1",)),
            step("long1", "x.y", duration=100.0, nodes=("n2",)),
            step("long2", "x.y", ["long1"], duration=100.0, nodes=("n2",)),
        ],
    )
    left = estimate(plan, {"short"}, {"long1": 50.0}, {"short": 10.0})
    assert left.pace == pytest.approx(1.0)
    assert left.remaining == pytest.approx(150.0)


# --- the display model ------------------------------------------------------------------------


def lab():
    (INVENTORIES / "lab" / "secrets.yaml").chmod(0o600)  # git does not keep the mode
    return load_inventory(str(INVENTORIES / "lab"))


@pytest.fixture(scope="module")
def three_hops():
    cluster = lab()
    return cluster, plan_upgrade(cluster, UpgradeIntent("wallaby"))


def test_running_steps_show_their_hosts_batch_and_hop(three_hops):
    cluster, plan = three_hops
    journal = MemoryJournal()
    view = start_run(journal, plan, cluster, clock=lambda: 1000.0)
    tracker = Tracker(plan, view, run_clock(journal.run_transitions(view.run.id)))
    evacuate = next(s for s in plan.steps if s.id.startswith("victoria/evacuate/"))
    galera = next(s for s in plan.steps if s.id.startswith("wallaby/upgrade/galera/"))
    for s in (evacuate, galera):
        tracker.apply({"event": "step-started", "step": s.id, "attempt": 1, "ts": 1010.0})
    snap = tracker.snapshot(1070.0)
    assert snap.run == view.run.id and snap.elapsed == pytest.approx(70.0)
    shown = {r.id: r for r in snap.running}
    assert shown[evacuate.id].hosts == evacuate.nodes and len(evacuate.nodes) >= 1
    assert shown[evacuate.id].batch == evacuate.batch and shown[evacuate.id].hop == "victoria"
    assert shown[galera.id].elapsed == pytest.approx(60.0)
    assert snap.hop == "2/3 victoria + 3/3 wallaby"
    assert snap.estimate.pace is None and snap.estimate.remaining > 0


def test_the_display_knows_the_time_a_run_spent_before_its_resume():
    cluster = small_cluster()
    plan = chain()
    journal = MemoryJournal()
    view = start_run(journal, plan, cluster, clock=lambda: 1000.0)
    journal.record_run(RunTransition(view.run.id, R.PAUSED, 1600.0, "paused"))
    journal.record_run(RunTransition(view.run.id, R.RUNNING, 9000.0, "resumed"))
    view = replay(journal, view.run.id, plan)
    out = io.StringIO()
    display = open_display("lines", plan, view, journal, "sim", stream=out)
    assert out.getvalue().startswith(f"run {view.run.id} resumed:")
    assert isinstance(display, LineDisplay)
    assert display.tracker.snapshot(9060.0).elapsed == pytest.approx(660.0)


def test_line_progress_is_one_line_per_step_event_and_never_redrawn():
    cluster, plan = small_cluster(), chain()
    journal = MemoryJournal()
    view = start_run(journal, plan, cluster)
    out = io.StringIO()
    display = open_display("lines", plan, view, journal, "sim", stream=out)
    t0 = view.started
    for event in (
        {"event": "run-started", "ts": t0},
        {"event": "step-started", "step": "a", "attempt": 1, "ts": t0 + 1},
        {"event": "driver-output", "step": "a", "ts": t0 + 2},
        {"event": "step-succeeded", "step": "a", "attempt": 1, "ts": t0 + 51},
        {"event": "step-started", "step": "b", "attempt": 1, "ts": t0 + 51},
        {"event": "step-failed", "step": "b", "attempt": 1, "ts": t0 + 52, "error": "boom"},
    ):
        display.emit(event)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"run {view.run.id} started:")
    assert [line.split()[1] for line in lines[1:]] == ["start", "done", "start", "FAILED"]
    assert "1/2 steps" in lines[2] and "remaining ~" in lines[2]
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


def test_a_pause_by_ctrl_c_counts_down_what_still_runs_and_says_how_to_stop_now():
    cluster, plan = small_cluster(), chain()
    journal = MemoryJournal()
    view = start_run(journal, plan, cluster, clock=lambda: 0.0)
    tracker = Tracker(plan, view, run_clock(journal.run_transitions(view.run.id)))
    tracker.apply({"event": "step-started", "step": "a", "attempt": 1, "ts": 0.0})
    tracker.apply(
        {"event": "run-stopping", "why": "pause", "reason": "paused by ops (Ctrl-C)", "ts": 10.0}
    )
    text = stopping_text(tracker.snapshot(40.0))
    assert "no new step starts" in text and "waiting for 1 running step(s)" in text
    assert "about 1:00" in text  # a is planned at 100 s, 40 s gone (the plan's pace)
    assert "Ctrl-C again to stop now" in text
    tracker.apply({"event": "run-stopping", "why": "pause", "reason": "paused by ops", "ts": 11.0})
    assert "Ctrl-C again" not in stopping_text(tracker.snapshot(41.0))  # paused from elsewhere


# --- the CLI off a terminal -------------------------------------------------------------------


def test_a_run_off_a_terminal_says_its_id_first_then_one_line_per_step_event(
    tmp_path, monkeypatch, capsys
):
    from lifecycle.cli.main import main

    (INVENTORIES.parent / "tests" / "data" / "demo-train" / "secrets.yaml").chmod(
        0o600
    )  # git does not keep the mode
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LIFECYCLE_SIM_SCALE", "0")
    monkeypatch.setenv("LIFECYCLE_JOURNAL_SYNC", "NORMAL")
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS", raising=False)
    code = main(
        [
            "run",
            "upgrade",
            "-i",
            str(INVENTORIES.parent / "tests" / "data" / "demo-train"),
            "--to",
            "ussuri",
            "-y",
            "--driver",
            "sim",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    lines = captured.err.splitlines()
    run_id = captured.out.split()[1]
    assert lines[0].startswith(f"run {run_id} started: upgrade of demo, train -> ussuri")
    starts = [line for line in lines if line.split()[1:2] == ["start"]]
    dones = [line for line in lines if line.split()[1:2] == ["done"]]
    assert len(starts) == len(dones) > 10
    assert lines[-1].endswith("run succeeded: every step succeeded")


def test_a_run_started_elsewhere_says_its_id_first_when_its_first_event_comes():
    """Mistral starts and journals the run: the display learns the id from the events."""
    out = io.StringIO()
    display = open_display("lines", chain(), None, None, "sim", stream=out)
    assert out.getvalue() == ""
    display.emit({"event": "run-started", "run": "t-1", "ts": 100.0})
    display.emit({"event": "step-started", "step": "a", "attempt": 1, "ts": 100.0})
    display.emit({"event": "step-succeeded", "step": "a", "attempt": 1, "ts": 150.0})
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("run t-1 started: t of t, 2 steps")
    assert "remaining ~2:30 (pace 0.5x plan)" in lines[2]  # b: 300 s at twice the plan's speed
