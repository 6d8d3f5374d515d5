"""kill -9 a real `lifecycle` process at random moments; `lifecycle resume` must finish the run with
every non-idempotent step executed exactly once and nothing skipped (the sim driver counts)."""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from lifecycle.drivers.sim import SimDriver, read_state
from lifecycle.execution.replay import replay
from lifecycle.execution.sqlite_journal import SqliteJournal
from lifecycle.execution.states import RunState, StepState
from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.plan_json import plan_to_json
from lifecycle.planning.plan import Plan
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade

pytestmark = pytest.mark.crash


@pytest.fixture(autouse=True, scope="module")
def _private_demo_secrets():
    """git does not keep file modes: the demo secrets must be 0600 for the inventory to load."""
    (Path(DEMO) / "secrets.yaml").chmod(0o600)


ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "data" / "demo-train"
LIFECYCLE = [sys.executable, "-m", "lifecycle"]
SCALE = "0.0002"  # the demo upgrade's 80 planned minutes in about a second
KILLS = 32


def non_idempotent(plan: Plan) -> Plan:
    """The demo plan with every step that changes the cloud marked unsafe to re-run, so that the
    exactly-once rule is tested on most of the plan (the planner calls them idempotent)."""
    steps = tuple(
        dataclasses.replace(s, idempotent=False) if s.driver in ("ansible", "compute") else s
        for s in plan.steps
    )
    return dataclasses.replace(plan, steps=steps)


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory):
    cluster = load_inventory(DEMO)
    plan = non_idempotent(plan_upgrade(cluster, UpgradeIntent("ussuri", "octopus")))
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    path.write_text(plan_to_json(plan))
    return path, plan


def lifecycle(state: Path, *args: str, faults: str = "") -> subprocess.Popen[bytes]:
    env = dict(os.environ, LIFECYCLE_STATE_DIR=str(state), LIFECYCLE_SIM_SCALE=SCALE)
    env["LIFECYCLE_SIM_FAULTS"] = faults
    return subprocess.Popen(
        [*LIFECYCLE, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def recorded_run(state: Path, proc: subprocess.Popen[bytes]) -> str | None:
    """Wait until the child has journaled its run (or ended); the run id, if any."""
    db = state / "demo.db"
    while True:
        if db.exists():
            # closing() even when the query fails: a connection left open keeps the -shm of a
            # WAL the child later deletes, and this process's next connection reads it as
            # "database disk image is malformed"
            try:
                with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
                    rows = con.execute("SELECT id FROM runs").fetchall()
                if rows:
                    return str(rows[0][0])
            except sqlite3.OperationalError:
                pass
        if proc.poll() is not None:
            return None
        time.sleep(0.01)


def kill_at_random(proc: subprocess.Popen[bytes], rng: random.Random, within: float) -> bool:
    """SIGKILL the child at a random moment; whether it was still running then."""
    time.sleep(rng.uniform(0.0, within))
    alive = proc.poll() is None
    if alive:
        proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return alive


def test_kill_9_at_random_moments_then_resume_runs_everything_exactly_once(plan_file, tmp_path):
    path, plan = plan_file
    rng = random.Random(int(os.environ.get("LIFECYCLE_CRASH_SEED", "20261124")))
    unsafe = {s.id for s in plan.steps if not s.idempotent}
    assert len(unsafe) > 50
    kills = rounds = caught = 0
    while kills < KILLS:
        rounds += 1
        state = tmp_path / f"round-{rounds}"
        proc = lifecycle(
            state,
            "run",
            "plan",
            str(path),
            "-i",
            str(DEMO),
            "-y",
            "--driver",
            "sim",
            "--no-progress",
        )
        run_id = recorded_run(state, proc)
        assert run_id, proc.communicate()
        if kill_at_random(proc, rng, 1.2):
            kills += 1
            caught += in_flight(state, run_id)
        while True:  # resume, sometimes killing the resume too
            proc = lifecycle(state, "resume", run_id, "--no-progress")
            if rng.random() < 0.4 and kill_at_random(proc, rng, 1.0):
                kills += 1
                caught += in_flight(state, run_id)
                continue
            out, err = proc.communicate()
            if proc.returncode == 0:
                break
            assert b"nothing to resume" in err, (out, err)  # it had finished before the kill
            break
        check_exactly_once(state, run_id, plan, unsafe)
    print(f"{kills} kills in {rounds} runs; {caught} steps caught mid-flight")
    assert caught >= KILLS // 2  # most kills landed while steps were running


def in_flight(state: Path, run_id: str) -> int:
    journal = SqliteJournal(state / "demo.db")
    running = len(replay(journal, run_id).in_state(StepState.RUNNING))
    journal.close()
    return running


def check_exactly_once(state: Path, run_id: str, plan: Plan, unsafe: set[str]) -> None:
    journal = SqliteJournal(state / "demo.db")
    view = replay(journal, run_id)
    journal.close()
    assert view.state is RunState.SUCCEEDED, view.reason
    assert all(s.state is StepState.SUCCEEDED for s in view.steps.values())
    counts = SimDriver(state_dir=state).counts("demo", run_id)
    skipped = [s.id for s in plan.steps if counts.get(s.id, 0) < 1]
    twice = {sid: counts[sid] for sid in unsafe if counts.get(sid) != 1}
    assert not skipped, f"{run_id}: never executed: {skipped}"
    assert not twice, f"{run_id}: non-idempotent steps executed more than once: {twice}"
    versions = read_state(state, "demo")["versions"]
    assert set(versions.values()) == {"ussuri", "octopus"}


@pytest.mark.parametrize(
    "fault,note",
    [
        ("kill-before", "probe: effect absent, running it"),
        ("kill-after", "probe: effect already in place"),
    ],
)
def test_death_on_either_side_of_a_steps_effect(plan_file, tmp_path, fault, note):
    """The two moments that matter, hit exactly: the process dies as a non-idempotent step starts
    (resume runs it) or just after its effect (resume finds the effect and does not run it)."""
    path, plan = plan_file
    target = "upgrade/galera/ctl-1"
    assert not plan.by_id[target].idempotent
    proc = lifecycle(
        tmp_path,
        "run",
        "plan",
        str(path),
        "-i",
        str(DEMO),
        "-y",
        "--driver",
        "sim",
        "--no-progress",
        faults=f"{fault}:{target}",
    )
    run_id = recorded_run(tmp_path, proc)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    journal = SqliteJournal(tmp_path / "demo.db")
    assert replay(journal, run_id).steps[target].state is StepState.RUNNING
    journal.close()
    resumed = lifecycle(tmp_path, "resume", run_id, "--no-progress")
    _, err = resumed.communicate()
    assert resumed.returncode == 0, err
    journal = SqliteJournal(tmp_path / "demo.db")
    notes = [t.output for t in journal.step_transitions(run_id) if t.step_id == target]
    journal.close()
    assert {"resume": note} in notes
    check_exactly_once(tmp_path, run_id, plan, {s.id for s in plan.steps if not s.idempotent})


@pytest.mark.parametrize("decision,runs", [("--accept", 1), ("--rerun", 2)])
def test_a_step_in_doubt_waits_for_the_operators_word(plan_file, tmp_path, decision, runs):
    """A probe that cannot tell (most real drivers): resume stops, names the step and the flags;
    the operator's --accept or --rerun is obeyed (and --rerun does run it a second time)."""
    path, _ = plan_file
    target = "upgrade/galera/ctl-1"
    faults = f"kill-after:{target},vague:{target}"
    proc = lifecycle(
        tmp_path,
        "run",
        "plan",
        str(path),
        "-i",
        str(DEMO),
        "-y",
        "--driver",
        "sim",
        "--no-progress",
        faults=faults,
    )
    run_id = recorded_run(tmp_path, proc)
    proc.communicate()
    stopped = lifecycle(tmp_path, "resume", run_id, "--no-progress", faults=faults)
    _, err = stopped.communicate()
    assert stopped.returncode == 4
    assert b"needs the operator" in err and f"--accept {target}".encode() in err
    again = lifecycle(tmp_path, "resume", run_id, decision, target, "--no-progress", faults=faults)
    _, err = again.communicate()
    assert again.returncode == 0, err
    assert SimDriver(state_dir=tmp_path).counts("demo", run_id)[target] == runs
