"""`lifecycle status` on a real testbed (the lead runs this lane): the daemons' versions and the
stand-in Galera/RabbitMQ membership, then a compute whose sshd is killed and a Galera member
whose daemon is stopped: status shows both, `plan upgrade --observe` refuses to touch Galera
naming ctl-1, and (forced past Galera) plans around the compute.

Needs root and openssh-server, like tests/functional/test_testbed.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecycle.testbed import daemon, manager
from lifecycle.testbed import state as st

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
LIFECYCLE = [sys.executable, "-m", "lifecycle"]

if os.geteuid() != 0 or not Path("/usr/sbin/sshd").exists():
    pytest.skip("the testbed needs root and openssh-server", allow_module_level=True)


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("testbed-status")
    inventory = root / "inventory"
    shutil.copytree(REPO / "tests" / "data" / "demo-train", inventory)
    (inventory / "secrets.yaml").chmod(0o600)
    state = root / "state"
    for args in (["testbed", "up"], ["testbed", "deploy"]):
        done = subprocess.run(
            [*LIFECYCLE, *args, "-i", str(inventory), "--state-dir", str(state)],
            cwd=REPO, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    try:
        yield inventory, state
    finally:
        manager.down(state)


def _cli(inventory: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIFECYCLE_STATE_DIR": str(state)}
    return subprocess.run(
        [*LIFECYCLE, *args, "-i", str(inventory)], env=env, cwd=REPO, capture_output=True, text=True
    )


def _status(inventory: Path, state: Path) -> dict:
    done = _cli(inventory, state, "status", "--driver", "testbed", "-f", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_status_reads_versions_and_membership(bed) -> None:
    data = _status(*bed)
    assert {n["state"] for n in data["nodes"]} == {"reachable"}
    releases = {(i["service"], i["node"]): i["release"] for i in data["instances"]}
    assert releases[("keystone", "ctl-0")] == "train"
    assert releases[("ceph-osd", "ceph-0")] == "nautilus"
    galera = next(s for s in data["stores"] if s["service"] == "galera")
    assert galera["members"] == ["ctl-0", "ctl-1", "ctl-2"] and galera["quorum"] is True
    assert galera["standin"] is True
    assert any(u.startswith("galera: wsrep_") for u in data["unobservable"])
    assert {c["node"]: c["enabled"] for c in data["computes"]} == {
        "cmp-hdd-0": True, "cmp-hdd-1": True, "cmp-ssd-0": True, "cmp-ssd-1": True,
    }  # fmt: skip


def test_a_dead_compute_sshd_and_a_stopped_galera_member(bed) -> None:
    inventory, state = bed
    host = next(h for h in st.load(state).hosts if h.name == "ctl-1")
    galera_dir = Path(host.root) / "services" / "galera"
    manager.kill_sshd(state, "cmp-ssd-0")
    daemon.stop(galera_dir)
    try:
        data = _status(inventory, state)
        nodes = {n["name"]: n["state"] for n in data["nodes"]}
        assert nodes["cmp-ssd-0"] == "unreachable" and nodes["ctl-1"] == "reachable"
        releases = {(i["service"], i["node"]): i["release"] for i in data["instances"]}
        assert releases[("galera", "ctl-1")] == "not running"
        galera = next(s for s in data["stores"] if s["service"] == "galera")
        assert "ctl-1" not in galera["members"]
        kinds = {(d["kind"], d["subject"]) for d in data["differences"]}
        assert ("node-unreachable", "cmp-ssd-0") in kinds and (
            "not-running",
            "galera@ctl-1",
        ) in kinds
        planned = _cli(inventory, state, "plan", "upgrade", "--to", "ussuri", "--observe",
                       "--driver", "testbed", "-f", "json")  # fmt: skip
        # refused: galera has no margin left; the compute's aggregate (max_unavailable 1 of 2)
        # has no host left to take out; each named
        assert planned.returncode == 3, planned.stderr
        assert "quorum: galera: ctl-1 down (ctl-1: not running)" in planned.stderr
        assert "capacity: aggregate:ssd: cmp-ssd-0 down" in planned.stderr
    finally:
        manager.restore_sshd(state, "cmp-ssd-0")
        # the daemon binds ctl-1's address: it starts again inside ctl-1's namespace
        restart = f"from lifecycle.testbed import daemon; daemon.ensure({str(galera_dir)!r})"
        subprocess.run(
            ["ip", "netns", "exec", host.netns, sys.executable, "-c", restart],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True,
        )  # fmt: skip
