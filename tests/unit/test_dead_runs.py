"""Runs that died (issue 11, item 4): a run killed with SIGKILL is shown as interrupted, blocks
a new run of its cluster (the refusal names it and says resume or abort), and `abort` gives it up
without its process, recording the state it left."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lifecycle.cli.main import main
from lifecycle.execution.lock import ClusterLock, holder_info
from lifecycle.execution.recorded_state import load_versions
from lifecycle.execution.run_index import all_runs

pytestmark = pytest.mark.crash

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "data" / "demo-train"


@pytest.fixture
def state(tmp_path, monkeypatch):
    (DEMO / "secrets.yaml").chmod(0o600)
    root = tmp_path / "state"
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(root))
    monkeypatch.setenv("LIFECYCLE_SIM_SCALE", "0")
    monkeypatch.setenv("LIFECYCLE_JOURNAL_SYNC", "NORMAL")
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS", raising=False)
    return root


def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


UPGRADE = ["run", "upgrade", "-i", str(DEMO), "--to", "ussuri", "-y", "--driver", "sim"]


def killed_run(state: Path) -> str:
    """A real `lifecycle run` process that SIGKILLs itself as the first HDD batch upgrades
    (the sim driver's kill-before fault): no handler, no cleanup, as with kill -9."""
    env = dict(os.environ, LIFECYCLE_SIM_FAULTS="kill-before:upgrade/hdd/batch-1")
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle", *UPGRADE, "--no-progress"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    (entry,) = all_runs(state)  # its stdout died in its buffer with it
    return entry.record.id


def test_a_killed_run_is_interrupted_blocks_new_runs_until_aborted(state, capsys):
    run_id = killed_run(state)
    code, out, _ = cli(capsys, "runs", "list", "-f", "json")
    assert [(r["run"], r["state"]) for r in json.loads(out)] == [(run_id, "interrupted")]
    code, out, _ = cli(capsys, "runs", "show", run_id)
    assert code == 0 and "interrupted" in out and f"lifecycle resume {run_id}" in out

    code, _, err = cli(capsys, "pause", run_id)
    assert code == 4 and "interrupted" in err and f"lifecycle resume {run_id}" in err

    code, _, err = cli(capsys, *UPGRADE, "--no-progress", "--force")  # --force does not bypass
    assert code == 4
    assert f"run {run_id} is interrupted" in err
    assert f"lifecycle resume {run_id}" in err and f"lifecycle abort {run_id}" in err

    code, out, _ = cli(capsys, "abort", "-y", run_id)
    assert code == 0 and "aborted (it was interrupted" in out
    assert "next:" in out
    record, _ = load_versions(state, "demo")
    assert record is not None and record.run == run_id and record.run_state == "aborted"
    # the HDD host was evacuated (disabled) and its upgrade never ran: the record says so
    assert "cmp-hdd-0" in record.disabled

    code, out, err = cli(capsys, *UPGRADE, "--no-progress")
    assert code == 0, err
    assert "planning" not in out  # (the note goes to stderr with the plan command only)
    code, out, _ = cli(capsys, "runs", "list", "-f", "json")
    assert [r["state"] for r in json.loads(out)] == ["aborted", "succeeded"]
    record, previous = load_versions(state, "demo")
    assert record is not None and record.disabled == () and previous is not None


def test_an_interrupted_run_is_unfinished_for_its_cluster_only(state):
    from lifecycle.execution.liveness import refuse_unfinished, unfinished_runs

    run_id = killed_run(state)
    assert unfinished_runs(state, "demo") == [(run_id, "interrupted")]
    with pytest.raises(Exception, match=f"lifecycle abort {run_id}"):
        refuse_unfinished(state, "demo")
    assert unfinished_runs(state, "other") == []


def test_the_lock_names_its_holder_pid_and_host(tmp_path):
    path = tmp_path / "demo.lock"
    assert holder_info(path) is None
    lock = ClusterLock(path, "demo", "demo-1")
    child = None
    with lock:
        # another process sees the holder (flock is per open file: a child is the honest test)
        child = subprocess.run(
            [sys.executable, "-c", "import sys, json; from lifecycle.execution.lock import"
             " holder_info; from pathlib import Path;"
             " print(json.dumps(holder_info(Path(sys.argv[1]))))", str(path)],
            capture_output=True, text=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
    info = json.loads(child.stdout)
    assert info["run"] == "demo-1" and info["pid"] == os.getpid()
    assert info["host"] == socket.gethostname()
    assert holder_info(path) is None  # released
