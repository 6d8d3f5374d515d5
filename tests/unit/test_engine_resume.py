"""Resume: what happens to steps a dead process left behind, and when resume is refused."""

import dataclasses
import logging
import time

import pytest

from lifecycle.errors import ResumeRefused, RunLocked, RunStopped
from lifecycle.execution.engine import Engine, EngineOptions
from lifecycle.execution.journal import MemoryJournal
from lifecycle.execution.lock import ClusterLock, holder
from lifecycle.execution.records import StepTransition
from lifecycle.execution.replay import replay
from lifecycle.execution.routing import Router
from lifecycle.execution.runs import check_resumable, reopen, settle, start_run
from lifecycle.execution.states import RunState, StepState
from lifecycle.model.cluster import NodeSpec
from tests.unit.test_engine_support import (
    RecordingDriver,
    fast_policies,
    small_cluster,
    upgrade_plan,
)


class Prober(RecordingDriver):
    """Answers probes from a table: True (effect there), False (absent), None (unknowable)."""

    def __init__(self, answers, exact=False):
        super().__init__()
        self.answers = answers
        self.exact = exact

    def probe(self, step, ctx):
        return self.answers.get(step.id)

    def probe_is_exact(self, step):
        return self.exact


def crashed_mid_flight(idempotent, sid="upgrade/galera/ctl-0"):
    """A run whose process died while `sid` was RUNNING (precheck done)."""
    cluster, journal = small_cluster(), MemoryJournal()
    plan = upgrade_plan(cluster, idempotent=idempotent)
    view = start_run(journal, plan, cluster)
    run = view.run.id
    journal.record_steps(
        [
            StepTransition(run, "precheck", StepState.RUNNING, 1.0, 1),
            StepTransition(run, "precheck", StepState.SUCCEEDED, 2.0, 1),
            StepTransition(run, sid, StepState.RUNNING, 3.0, 1),
        ]
    )
    return cluster, journal, plan, replay(journal, run)


def finish(journal, plan, cluster, view, driver):
    view = reopen(journal, view, "resumed")
    engine = Engine(
        journal,
        plan,
        cluster,
        Router.single(driver),
        policies=fast_policies(),
        options=EngineOptions(poll_interval=0.01),
    )
    return engine.execute(view)


@pytest.mark.parametrize("idempotent", [True, False])
def test_a_step_whose_effect_is_there_is_marked_done_not_rerun(idempotent):
    cluster, journal, plan, view = crashed_mid_flight(idempotent)
    driver = Prober({"upgrade/galera/ctl-0": True})
    view = settle(journal, view, Router.single(driver), cluster)
    assert view.steps["upgrade/galera/ctl-0"].state is StepState.SUCCEEDED
    final = finish(journal, plan, cluster, view, driver)
    assert final.state is RunState.SUCCEEDED
    assert "upgrade/galera/ctl-0" not in driver.ran and "precheck" not in driver.ran


def test_an_idempotent_step_without_its_effect_runs_again():
    cluster, journal, plan, view = crashed_mid_flight(True)
    driver = Prober({})
    view = settle(journal, view, Router.single(driver), cluster)
    assert view.steps["upgrade/galera/ctl-0"].state is StepState.PENDING
    assert finish(journal, plan, cluster, view, driver).state is RunState.SUCCEEDED
    assert driver.ran.count("upgrade/galera/ctl-0") == 1


@pytest.mark.parametrize("exact,state", [(True, StepState.PENDING), (False, StepState.IN_DOUBT)])
def test_a_non_idempotent_step_runs_again_only_if_an_exact_probe_says_it_never_happened(
    exact, state
):
    cluster, journal, _, view = crashed_mid_flight(False)
    driver = Prober({"upgrade/galera/ctl-0": False}, exact=exact)
    view = settle(journal, view, Router.single(driver), cluster)
    assert view.steps["upgrade/galera/ctl-0"].state is state


def test_a_non_idempotent_step_in_doubt_stops_for_the_operator():
    cluster, journal, _plan, view = crashed_mid_flight(False)
    driver = Prober({})  # probe: None
    view = settle(journal, view, Router.single(driver), cluster)
    assert view.steps["upgrade/galera/ctl-0"].state is StepState.IN_DOUBT
    with pytest.raises(RunStopped) as caught:
        reopen(journal, view, "resumed")
    assert "upgrade/galera/ctl-0" in str(caught.value)
    assert "--accept upgrade/galera/ctl-0" in str(caught.value)
    assert replay(journal, view.run.id).state is RunState.NEEDS_OPERATOR
    # asking again without a decision stops again, with the same message
    with pytest.raises(RunStopped):
        reopen(
            journal,
            settle(journal, replay(journal, view.run.id), Router.single(driver), cluster),
            "resumed",
        )


@pytest.mark.parametrize("flag,runs", [("accept", 0), ("rerun", 1)])
def test_the_operator_decides_about_a_step_in_doubt(flag, runs):
    cluster, journal, plan, view = crashed_mid_flight(False)
    driver = Prober({})
    view = settle(journal, view, Router.single(driver), cluster)
    decision = {flag: ["upgrade/galera/ctl-0"]}
    view = settle(journal, replay(journal, view.run.id), Router.single(driver), cluster, **decision)
    final = finish(journal, plan, cluster, view, driver)
    assert final.state is RunState.SUCCEEDED
    assert driver.ran.count("upgrade/galera/ctl-0") == runs


def test_unknown_steps_in_decisions_are_refused():
    cluster, journal, _, view = crashed_mid_flight(False)
    with pytest.raises(ResumeRefused, match="no step nope"):
        settle(journal, view, Router.single(Prober({})), cluster, accept=["nope"])


def test_failed_steps_run_again_on_resume():
    cluster, journal = small_cluster(), MemoryJournal()
    plan = upgrade_plan(cluster)
    driver = RecordingDriver(fail={"upgrade/keystone/ctl-2": 2})
    view = start_run(journal, plan, cluster)
    engine = Engine(
        journal,
        plan,
        cluster,
        Router.single(driver),
        policies=fast_policies(),
        options=EngineOptions(poll_interval=0.01),
    )
    view = engine.execute(view)
    assert view.state is RunState.FAILED
    view = settle(journal, view, Router.single(driver), cluster)
    final = finish(journal, plan, cluster, view, driver)
    assert final.state is RunState.SUCCEEDED
    assert driver.ran.count("upgrade/galera/ctl-0") == 1
    assert driver.ran.count("upgrade/keystone/ctl-2") == 3


def test_resume_refuses_a_changed_inventory_and_says_what_changed():
    cluster, _, _, view = crashed_mid_flight(True)
    nodes = (*cluster.nodes[:-1], NodeSpec("cmp-9", "Compute"))
    changed = dataclasses.replace(cluster, nodes=nodes, release="ussuri")
    with pytest.raises(ResumeRefused) as caught:
        check_resumable(view, changed)
    text = str(caught.value)
    assert "release: train -> ussuri" in text
    assert "node cmp-3 removed" in text and "node cmp-9 added" in text


def test_resume_refuses_a_changed_plan_and_names_the_steps():
    cluster, _, plan, view = crashed_mid_flight(True)
    other = upgrade_plan(cluster, release="victoria")
    with pytest.raises(ResumeRefused, match="changed: "):
        check_resumable(view, cluster, other)
    assert check_resumable(view, cluster, plan) == plan


def test_resume_refuses_finished_runs():
    cluster, journal = small_cluster(), MemoryJournal()
    plan = upgrade_plan(cluster)
    view = start_run(journal, plan, cluster)
    engine = Engine(
        journal,
        plan,
        cluster,
        Router.single(RecordingDriver()),
        policies=fast_policies(),
        options=EngineOptions(poll_interval=0.01),
    )
    done = engine.execute(view)
    with pytest.raises(ResumeRefused, match="succeeded"):
        check_resumable(done, cluster)


def test_one_run_per_cluster(tmp_path):
    path = tmp_path / "t.lock"
    with ClusterLock(path, "t", "t-run-1"):
        assert holder(path) == "t-run-1"
        with pytest.raises(RunLocked, match="t-run-1"):
            ClusterLock(path, "t", "t-run-2").acquire()
    assert holder(path) is None
    with ClusterLock(path, "t", "t-run-2"):
        pass


def test_secrets_never_reach_the_journal_events_or_logs(tmp_path, caplog):
    from lifecycle.execution.events import JsonLinesSink
    from lifecycle.execution.redact import Redactor
    from lifecycle.execution.sqlite_journal import SqliteJournal

    secret = "hunter2-BMC-pass"

    class Leaky(RecordingDriver):
        def run(self, step, ctx):
            if step.id == "precheck":
                raise RuntimeError(f"login failed with {secret}")
            return super().run(step, ctx)

    cluster = small_cluster()
    plan = upgrade_plan(cluster)
    db = tmp_path / "t.db"
    journal = SqliteJournal(db)
    events = tmp_path / "events.jsonl"
    driver = Leaky(output={"stdout": f"password={secret}", "nested": [{"k": secret}]})
    view = start_run(journal, plan, cluster)
    sink = JsonLinesSink(events)
    caplog.set_level(logging.DEBUG)
    engine = Engine(
        journal,
        plan,
        cluster,
        Router.single(driver),
        policies=fast_policies(),
        options=EngineOptions(poll_interval=0.01),
        sink=sink,
        redactor=Redactor([secret]),
    )
    view = engine.execute(view)  # precheck fails (a driver bug), the rest never starts
    sink.close()
    driver.fail = {}
    view = settle(journal, view, Router.single(Leaky()), cluster)
    journal.close()
    blobs = [p.read_bytes() for p in tmp_path.iterdir() if p.is_file()]
    assert blobs and all(secret.encode() not in b for b in blobs)
    assert secret not in caplog.text
    assert "***" in events.read_text()
    time.sleep(0)  # keep the linter quiet about unused imports on some runs
