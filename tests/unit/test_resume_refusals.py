"""Resume through the CLI refuses what it refused before it stopped re-parsing the journal's plan
when the plan made again is the same: a changed inventory, a changed plan, a journal whose plan
no longer matches its digest; and an unchanged one resumes."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from lifecycle.cli import run_cmds
from lifecycle.cli.main import main
from lifecycle.execution import runs
from lifecycle.execution.engine import Engine, EngineOptions
from lifecycle.execution.journal import MemoryJournal
from lifecycle.execution.records import RunRecord
from lifecycle.execution.replay import replay
from lifecycle.execution.report import _iso_by_second, iso
from lifecycle.execution.routing import Router
from lifecycle.execution.runs import reopen, settle, start_run
from lifecycle.execution.states import RunState
from lifecycle.formats.plan_json import plan_from_json, plan_from_own_json
from tests.unit.test_engine_resume import Prober, crashed_mid_flight, finish
from tests.unit.test_engine_support import (
    RecordingDriver,
    fast_policies,
    small_cluster,
    upgrade_plan,
)

DEMO = Path(__file__).resolve().parents[2] / "tests" / "data" / "demo-train"
LAST = "postcheck/cluster"


@pytest.fixture
def inventory(tmp_path, monkeypatch) -> Path:
    copy = tmp_path / "demo"
    shutil.copytree(DEMO, copy)
    (copy / "secrets.yaml").chmod(0o600)
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LIFECYCLE_SIM_SCALE", "0")
    monkeypatch.setenv("LIFECYCLE_JOURNAL_SYNC", "NORMAL")
    return copy


def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def failed_run(capsys, monkeypatch, *operation: str) -> str:
    """A run whose last step failed; returns its id."""
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", f"fail:{LAST}:1000")
    code, out, err = cli(capsys, "run", *operation, "-y", "--no-progress", "--driver", "sim")
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS")
    assert code == 4 and f"FAILED {LAST}" in out + err
    return next(w for w in (out + err).split() if w.startswith("demo-")).strip("`.,:")


def test_a_changed_inventory_is_refused_and_the_same_one_resumes(inventory, capsys, monkeypatch):
    run_id = failed_run(capsys, monkeypatch, "upgrade", "-i", str(inventory), "--to", "ussuri")
    original = (inventory / "cluster.yaml").read_text()
    changed = original.replace("failure_domain: rack1", "failure_domain: rack9", 1)
    assert changed != original
    (inventory / "cluster.yaml").write_text(changed)
    code, _, err = cli(capsys, "resume", run_id)
    assert code != 0 and "inventory of demo changed since the run started" in err
    assert "rack1 -> " in err and "rack9" in err
    (inventory / "cluster.yaml").write_text(original)
    code, out, _ = cli(capsys, "resume", run_id)
    assert code == 0 and "succeeded" in out


def test_a_journal_plan_that_no_longer_matches_its_digest_is_refused(
    inventory, capsys, monkeypatch, tmp_path
):
    run_id = failed_run(capsys, monkeypatch, "upgrade", "-i", str(inventory), "--to", "ussuri")
    with sqlite3.connect(tmp_path / "state" / "demo.db") as db:
        (text,) = db.execute("SELECT plan FROM runs WHERE id=?", (run_id,)).fetchone()
        plan = json.loads(text)
        plan["steps"][0]["duration"] += 1.0
        db.execute("UPDATE runs SET plan=? WHERE id=?", (json.dumps(plan), run_id))
    code, _, err = cli(capsys, "resume", run_id)
    assert code != 0 and "does not match its digest" in err


def test_a_changed_plan_file_is_refused(inventory, capsys, monkeypatch, tmp_path):
    plan_file = tmp_path / "plan.json"
    code, _, _ = cli(
        capsys, "plan", "upgrade", "-i", str(inventory), "--to", "ussuri", "-f", "json",
        "-o", str(plan_file),
    )  # fmt: skip
    assert code == 0
    run_id = failed_run(capsys, monkeypatch, "plan", str(plan_file), "-i", str(inventory))
    plan = json.loads(plan_file.read_text())
    plan["steps"][-1]["duration"] += 60.0
    plan_file.write_text(json.dumps(plan))
    code, _, err = cli(capsys, "resume", run_id)
    assert code != 0 and "the plan changed" in err


@pytest.mark.parametrize("idempotent", [True, False])
def test_settle_and_reopen_give_what_a_replay_of_the_journal_gives(idempotent):
    cluster, journal, _, view = crashed_mid_flight(idempotent)
    view = settle(journal, view, Router.single(Prober({})), cluster, accept=[])
    assert view == replay(journal, view.run.id)
    if idempotent:
        view = reopen(journal, view, "resumed")
        assert view == replay(journal, view.run.id)


def test_the_engine_ends_with_what_a_replay_of_the_journal_gives():
    """The engine's last view is its first advanced by what it journaled (no replay at the end):
    the same view, retries, failures and a resume included."""
    cluster, journal = small_cluster(), MemoryJournal()
    plan = upgrade_plan(cluster)
    driver = RecordingDriver(fail={"upgrade/keystone/ctl-2": 2})
    view = start_run(journal, plan, cluster)
    engine = Engine(
        journal, plan, cluster, Router.single(driver), policies=fast_policies(),
        options=EngineOptions(poll_interval=0.01),
    )  # fmt: skip
    failed = engine.execute(view)
    assert failed.state is RunState.FAILED and failed == replay(journal, view.run.id)
    view = settle(journal, failed, Router.single(driver), cluster)
    final = finish(journal, plan, cluster, view, driver)
    assert final.state is RunState.SUCCEEDED and final == replay(journal, view.run.id)


def test_an_unchanged_inventory_and_planner_resume_without_planning_again(
    inventory, capsys, monkeypatch
):
    run_id = failed_run(capsys, monkeypatch, "upgrade", "-i", str(inventory), "--to", "ussuri")

    def never(cluster, intent):
        raise AssertionError("planned again although nothing it plans from changed")

    monkeypatch.setitem(run_cmds.PLANNERS, "upgrade", never)
    code, out, _ = cli(capsys, "resume", run_id)
    assert code == 0 and "succeeded" in out


def test_a_changed_planner_plans_again_and_refuses_a_changed_plan(inventory, capsys, monkeypatch):
    run_id = failed_run(capsys, monkeypatch, "upgrade", "-i", str(inventory), "--to", "ussuri")
    monkeypatch.setattr(runs, "planner_fingerprint", lambda: "sha256:another-lifecycle")
    planned = run_cmds.PLANNERS["upgrade"]

    def longer(cluster, intent):  # the new planner makes another plan of the same inventory
        plan = planned(cluster, intent)
        return dataclasses.replace(plan, lower_bound=plan.lower_bound + 60.0)

    monkeypatch.setitem(run_cmds.PLANNERS, "upgrade", longer)
    code, _, err = cli(capsys, "resume", run_id)
    assert code != 0 and "the plan changed" in err
    monkeypatch.setitem(run_cmds.PLANNERS, "upgrade", planned)  # the same plan: it resumes
    code, out, _ = cli(capsys, "resume", run_id)
    assert code == 0 and "succeeded" in out


def test_a_run_recorded_without_a_fingerprint_plans_again(inventory, capsys, monkeypatch, tmp_path):
    run_id = failed_run(capsys, monkeypatch, "upgrade", "-i", str(inventory), "--to", "ussuri")
    with sqlite3.connect(tmp_path / "state" / "demo.db") as db:
        (text,) = db.execute("SELECT intent FROM runs WHERE id=?", (run_id,)).fetchone()
        intent = json.loads(text)
        assert intent.pop("planner").startswith("sha256:")
        db.execute("UPDATE runs SET intent=? WHERE id=?", (json.dumps(intent), run_id))
    calls = []
    planned = run_cmds.PLANNERS["upgrade"]
    monkeypatch.setitem(run_cmds.PLANNERS, "upgrade", lambda c, i: calls.append(1) or planned(c, i))
    code, out, _ = cli(capsys, "resume", run_id)
    assert code == 0 and "succeeded" in out and calls == [1]


def test_the_journal_plan_is_read_as_plan_from_json_reads_it():
    """plan_from_own_json (the journal's copy, its digest matching) builds the plan the checked
    parser builds, with the same digest; an edited copy is parsed and digested as any other."""
    for path in sorted((Path(__file__).parents[1] / "golden" / "data").glob("*.json")):
        text = path.read_text()
        checked = plan_from_json(text)
        own = plan_from_own_json(text, checked.digest)
        assert own == checked and own.digest == checked.digest, path.name
        edited = text.replace('"duration": ', '"duration": 1', 1)
        assert plan_from_own_json(edited, checked.digest).digest != checked.digest, path.name


def test_the_report_writes_each_time_as_iso_writes_it():
    stamp = _iso_by_second()
    for ts in (None, 0.0, 0.999, 1.0, 1796029137.58447, 1796029137.0, 1796029138.2, -0.5, -1.0):
        assert stamp(ts) == iso(ts), ts


def test_an_unknown_planner_never_counts_as_the_same(monkeypatch):
    """Sources not on disk give no fingerprint: a run recorded so is planned again on resume."""
    cluster = small_cluster()
    record = RunRecord(
        id="r", cluster=cluster.name, operation="upgrade", created=0.0, plan_json="{}",
        plan_digest="", inventory_digest=cluster.digest,
        intent={"operation": "upgrade", "planner": ""},
    )  # fmt: skip
    monkeypatch.setattr(runs, "planner_fingerprint", lambda: "")
    assert not runs.replans_the_same(record, cluster)
    monkeypatch.setattr(runs, "planner_fingerprint", lambda: "sha256:x")
    same = dataclasses.replace(record, intent={"operation": "upgrade", "planner": "sha256:x"})
    assert runs.replans_the_same(same, cluster)
    moved = dataclasses.replace(same, intent={"operation": "scale-out", "planner": "sha256:x"})
    assert not runs.replans_the_same(moved, cluster)
