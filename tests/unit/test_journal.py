"""One contract for every journal backend (taskflow style), plus what only SQLite promises."""

import os
import sqlite3
import stat

import pytest

from lifecycle.errors import IllegalTransition, ResumeRefused
from lifecycle.execution.journal import MemoryJournal
from lifecycle.execution.records import AuditRecord, RunTransition, StepTransition
from lifecycle.execution.replay import replay
from lifecycle.execution.runs import start_run
from lifecycle.execution.sqlite_journal import SqliteJournal
from lifecycle.execution.states import RunState, StepState
from tests.unit.test_engine_support import small_cluster, upgrade_plan


@pytest.fixture(params=["memory", "sqlite"])
def journal(request, tmp_path):
    j = MemoryJournal() if request.param == "memory" else SqliteJournal(tmp_path / "t.db")
    yield j
    j.close()


@pytest.fixture
def started(journal):
    cluster = small_cluster()
    plan = upgrade_plan(cluster)
    view = start_run(journal, plan, cluster, {"operation": "upgrade"}, run_id="t-1")
    return journal, plan, view


def test_a_new_run_replays_as_all_pending(started):
    journal, plan, view = started
    assert view.state is RunState.RUNNING
    assert set(view.steps) == {s.id for s in plan.steps}
    assert all(s.state is StepState.PENDING for s in view.steps.values())
    record = journal.run("t-1")
    assert record.plan_digest == plan.digest
    assert record.inventory_digest == small_cluster().digest
    assert view.plan == plan  # the stored JSON rebuilds the same plan


def test_transitions_replay_to_the_last_state_with_attempts_and_outputs(started):
    journal, plan, _ = started
    sid = plan.steps[0].id
    journal.record_step(StepTransition("t-1", sid, StepState.RUNNING, 1.0, 1))
    journal.record_steps(
        [
            StepTransition("t-1", sid, StepState.RETRYING, 2.0, 1, {"x": 1}, "boom", None, 9.0),
            StepTransition("t-1", sid, StepState.RUNNING, 10.0, 2),
            StepTransition(
                "t-1",
                sid,
                StepState.SUCCEEDED,
                11.0,
                2,
                {"x": [1, "a"]},
                None,
                {"ctl-0": {"status": "ok"}},
            ),
        ]
    )
    step = replay(journal, "t-1").steps[sid]
    assert step.state is StepState.SUCCEEDED
    assert step.attempts == 2
    assert step.output == {"x": [1, "a"]}
    assert step.hosts == {"ctl-0": {"status": "ok"}}
    assert (step.started, step.ended) == (1.0, 11.0)


def test_replay_refuses_an_impossible_history(started):
    journal, plan, _ = started
    journal.record_step(StepTransition("t-1", plan.steps[0].id, StepState.SUCCEEDED, 1.0))
    with pytest.raises(IllegalTransition):
        replay(journal, "t-1")


def test_run_transitions_controls_and_audit(started):
    journal, _, _ = started
    journal.record_run(RunTransition("t-1", RunState.PAUSED, 5.0, "paused by ops"))
    view = replay(journal, "t-1")
    assert (view.state, view.reason) == (RunState.PAUSED, "paused by ops")
    first = journal.add_control("t-1", "pause", 6.0, "alice")
    second = journal.add_control("t-1", "abort", 7.0, "bob")
    assert [c.command for c in journal.controls("t-1")] == ["pause", "abort"]
    assert journal.controls("t-1", after=first.seq) == [second]
    assert journal.controls("other") == []
    journal.add_audit(AuditRecord("t-1", 8.0, "alice", "h", "lifecycle run", {"force": True}))
    assert journal.audit("t-1")[0].overrides == {"force": True}


def test_unknown_runs_and_listing(started):
    journal, _, _ = started
    assert journal.find_run("nope") is None
    with pytest.raises(ResumeRefused, match="nope"):
        journal.run("nope")
    assert [r.id for r in journal.runs()] == ["t-1"]
    with pytest.raises(Exception):  # noqa: B017 (backends raise their own duplicate error)
        start_run(journal, upgrade_plan(small_cluster()), small_cluster(), run_id="t-1")


def test_sqlite_is_private_wal_and_survives_reopening(tmp_path):
    path = tmp_path / "state" / "t.db"
    journal = SqliteJournal(path)
    cluster = small_cluster()
    plan = upgrade_plan(cluster)
    start_run(journal, plan, cluster, run_id="t-1")
    journal.record_step(StepTransition("t-1", plan.steps[0].id, StepState.RUNNING, 1.0, 1))
    journal.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = SqliteJournal(path)
    assert replay(again, "t-1").steps[plan.steps[0].id].state is StepState.RUNNING
    again.close()
