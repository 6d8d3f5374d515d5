"""Operators in other terminals: a second run is refused with the holder's id, pause and abort
reach a live run through the journal, resume refuses a changed inventory, secrets stay out."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.crash

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "data" / "demo-train"


@pytest.fixture(autouse=True, scope="module")
def _private_demo_secrets():
    """git does not keep file modes: the demo secrets must be 0600 for the inventory to load."""
    (DEMO / "secrets.yaml").chmod(0o600)


def env(state: Path, scale: str = "0.001", faults: str = "") -> dict[str, str]:
    return dict(
        os.environ,
        LIFECYCLE_STATE_DIR=str(state),
        LIFECYCLE_SIM_SCALE=scale,
        LIFECYCLE_SIM_FAULTS=faults,
    )


def start(state: Path, inventory: Path = DEMO, **kw: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lifecycle",
            "run",
            "upgrade",
            "-i",
            str(inventory),
            "--to",
            "ussuri",
            "--ceph-to",
            "octopus",
            "-y",
            "--driver",
            "sim",
            "--no-progress",
        ],
        cwd=ROOT,
        env=env(state, **kw),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cli(state: Path, *args: str, **kw: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *args],
        cwd=ROOT,
        env=env(state, **kw),
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_id_of(state: Path, proc: subprocess.Popen[str], cluster: str = "demo") -> str:
    db = state / f"{cluster}.db"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if db.exists():
            try:  # closing(): see test_crash.recorded_run
                with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
                    rows = con.execute("SELECT id FROM runs ORDER BY created DESC").fetchall()
                if rows:
                    return str(rows[0][0])
            except sqlite3.OperationalError:
                pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the run never started")


def test_a_second_run_on_the_same_cluster_is_refused_with_the_holders_id(tmp_path):
    first = start(tmp_path)
    holder = run_id_of(tmp_path, first)
    second = cli(
        tmp_path,
        "run",
        "upgrade",
        "-i",
        str(DEMO),
        "--to",
        "ussuri",
        "-y",
        "--driver",
        "sim",
        "--no-progress",
    )
    assert second.returncode == 4
    assert holder in second.stderr and "busy" in second.stderr
    cli(tmp_path, "abort", holder, "-y")
    first.communicate(timeout=60)


@pytest.mark.parametrize("command", ["pause", "abort", "ctrl-c"])
def test_pause_and_abort_from_another_process(tmp_path, command):
    proc = start(tmp_path)
    run_id = run_id_of(tmp_path, proc)
    time.sleep(0.5)
    if command == "ctrl-c":
        proc.send_signal(signal.SIGINT)  # the operator's Ctrl-C pauses at a safe point
        command = "pause"
    else:
        asked = cli(tmp_path, command, run_id, *(["-y"] if command == "abort" else []))
        assert asked.returncode == 0 and "safe point" in asked.stdout
    proc.communicate(timeout=60)
    assert proc.returncode == 4
    shown = cli(tmp_path, "runs", "show", run_id)
    expected = "paused" if command == "pause" else "aborted"
    assert f": {expected}" in shown.stdout.splitlines()[0]
    resumed = cli(tmp_path, "resume", run_id, "--no-progress")
    if command == "pause":
        assert resumed.returncode == 0, resumed.stderr
        assert "succeeded" in resumed.stdout
        shown = cli(tmp_path, "runs", "show", run_id, "-f", "json").stdout
        assert len(json.loads(shown)["audit"]) >= 2  # the run and its resume are on record
    else:
        assert resumed.returncode == 4 and "nothing to resume" in resumed.stderr


def test_abort_of_a_stopped_run_and_pause_of_one_not_running(tmp_path):
    proc = start(tmp_path, faults="fail:upgrade/galera/ctl-0:5")
    run_id = run_id_of(tmp_path, proc)
    proc.communicate(timeout=60)
    assert proc.returncode == 4
    paused = cli(tmp_path, "pause", run_id)
    assert paused.returncode == 4 and "not running" in paused.stderr
    assert cli(tmp_path, "abort", run_id).returncode == 130  # abort asks first; no answer
    aborted = cli(tmp_path, "abort", run_id, "-y")
    assert aborted.returncode == 0 and "steps done:" in aborted.stdout
    listed = cli(tmp_path, "runs", "list")
    assert run_id in listed.stdout and "aborted" in listed.stdout


def test_resume_refuses_a_changed_inventory_naming_the_change(tmp_path):
    inventory = tmp_path / "inv"
    shutil.copytree(DEMO, inventory)
    state = tmp_path / "state"
    proc = start(state, inventory, faults="fail:upgrade/galera/ctl-1:5")
    run_id = run_id_of(state, proc)
    proc.communicate(timeout=60)
    data = yaml.safe_load((inventory / "cluster.yaml").read_text())
    data["nodes"] = [n for n in data["nodes"] if n["name"] != "cmp-ssd-1"]
    (inventory / "cluster.yaml").write_text(yaml.safe_dump(data))
    resumed = cli(state, "resume", run_id, "--no-progress")
    assert resumed.returncode == 4
    assert "inventory of demo changed" in resumed.stderr and "cmp-ssd-1 removed" in resumed.stderr


def test_secrets_of_the_inventory_appear_nowhere(tmp_path):
    secrets = yaml.safe_load((DEMO / "secrets.yaml").read_text())
    values = [
        v
        for entry in secrets.values()
        if isinstance(entry, dict)
        for v in entry.values()
        if isinstance(v, str) and len(v) >= 6
    ]
    assert values
    events = tmp_path / "events.jsonl"
    done = cli(
        tmp_path,
        "run",
        "upgrade",
        "-i",
        str(DEMO),
        "--to",
        "ussuri",
        "-y",
        "--driver",
        "sim",
        "--no-progress",
        "--events",
        str(events),
        scale="0.0001",
    )
    assert done.returncode == 0, done.stderr
    shown = cli(tmp_path, "runs", "show", "--format", "json", done.stdout.split()[1])
    texts = [done.stdout, done.stderr, shown.stdout]
    texts += [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()]
    for value in values:
        assert all(value not in text for text in texts), "a secret leaked"
