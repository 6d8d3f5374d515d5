"""A live sim run in a pseudo-terminal, as an operator sees it: the run's id first, the clocks
redrawn while a long step runs, Ctrl-C once pauses (resume finishes), twice stops at once with
exit status 130 and the steps in flight recorded as interrupted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.terminal

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab"
LONG = "upgrade/galera/ctl-0"  # 300 s in the plan; the scale below makes it seconds


@pytest.fixture(autouse=True, scope="module")
def _private_lab_secrets():
    """git does not keep file modes: the lab secrets must be 0600 for the inventory to load."""
    (LAB / "secrets.yaml").chmod(0o600)


def env(state: Path) -> dict[str, str]:
    return dict(
        os.environ,
        LIFECYCLE_STATE_DIR=str(state),
        LIFECYCLE_JOURNAL_SYNC="NORMAL",  # the journal's fsyncs are not what is tested here
        LIFECYCLE_SIM_FAULTS="",
        TERM="xterm-256color",
        PYTHONPATH=str(ROOT),
    )


def spawn(state: Path, scale: str) -> pexpect.spawn:
    args = ["-m", "lifecycle", "run", "upgrade", "-i", str(LAB), "--to", "ussuri", "-y"]
    args += ["--driver", "sim", "--sim-scale", scale]
    return pexpect.spawn(
        sys.executable,
        args,
        cwd=ROOT,
        env=env(state),
        encoding="utf-8",
        dimensions=(50, 200),
        timeout=30,
    )


def cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *args],
        cwd=ROOT,
        env=env(state),
        capture_output=True,
        text=True,
        timeout=120,
    )


def started(child: pexpect.spawn) -> str:
    """The run's id, from the first thing the run prints."""
    child.expect(r"run (\S+) started: upgrade of lab")
    assert child.before.strip() == "", f"printed before the run's id: {child.before!r}"
    return str(child.match.group(1))


def redraws_while_the_long_step_runs(child: pexpect.spawn) -> None:
    """Two frames with different elapsed times, each still listing the long step as running:
    the display moves although no step event happens."""
    child.expect(LONG)
    seen = set()
    while len(seen) < 2:
        child.expect(r"elapsed (\d+:\d\d)\s+remaining ~(\d+:\d\d)")
        frame_clock = child.match.group(1)
        child.expect(LONG)  # the same frame (or the next) still shows it running
        seen.add(frame_clock)


def steps_of(state: Path, run_id: str) -> dict[str, str]:
    shown = cli(state, "runs", "show", run_id, "-f", "json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    return {s["id"]: s["state"] for s in data["steps"]} | {"": data["state"]}


def test_ctrl_c_once_pauses_at_a_safe_point_and_resume_finishes(tmp_path):
    child = spawn(tmp_path, "0.01")  # the long step takes 3 s
    run_id = started(child)
    redraws_while_the_long_step_runs(child)
    child.sendintr()
    child.expect("Ctrl-C again to stop now")
    child.expect(pexpect.EOF, timeout=30)  # the steps in flight finish first
    child.close()
    assert child.exitstatus == 4
    states = steps_of(tmp_path, run_id)
    assert states[""] == "paused" and states[LONG] == "succeeded"
    assert "interrupted" not in states.values()
    resumed = cli(tmp_path, "resume", run_id, "--sim-scale", "0.0001", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.startswith(f"run {run_id} resumed:")
    assert steps_of(tmp_path, run_id)[""] == "succeeded"


def test_ctrl_c_twice_stops_promptly_with_status_130_and_the_steps_in_flight_interrupted(tmp_path):
    child = spawn(tmp_path, "0.04")  # the long step takes 12 s
    run_id = started(child)
    redraws_while_the_long_step_runs(child)
    child.sendintr()
    child.expect("Ctrl-C again to stop now")
    child.sendintr()
    child.expect(pexpect.EOF, timeout=5)  # bounded: the long step still had seconds to go
    child.close()
    assert child.exitstatus == 130
    states = steps_of(tmp_path, run_id)
    assert states[""] == "paused" and states[LONG] == "interrupted"
