"""Fast tests of the testbed's parts that need no namespace: the CLI's refusals, the state file,
the drivers' mapping and result parsing, and the service daemon itself on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lifecycle.cli.main import main
from lifecycle.drivers.ansible import AnsibleDriver, host_results
from lifecycle.drivers.checks import ChecksDriver
from lifecycle.errors import DriverError
from lifecycle.planning.actions import make_step
from lifecycle.testbed import daemon, manager
from lifecycle.testbed import state as st
from tests.unit.cluster_factory import lab_like

REPO = Path(__file__).resolve().parents[2]


def test_up_without_root_is_a_clear_input_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(manager.os, "geteuid", lambda: 1000)
    inventory = REPO / "tests" / "data" / "demo-train"
    code = main(["testbed", "up", "-i", str(inventory), "--state-dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "root" in err and "Traceback" not in err
    assert not (tmp_path / st.STATE_FILE).exists()


def test_status_and_down_without_a_testbed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manager, "require_root", lambda: None)  # root or not, nothing to do
    assert main(["testbed", "status", "--state-dir", str(tmp_path)]) == 0
    assert main(["testbed", "down", "--state-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("no testbed recorded") == 2


def test_state_file_round_trip(tmp_path: Path) -> None:
    state = st.TestbedState("demo", "ab12", "lcbab12", "198.18.0.1/15", "k", "hk", "kh")
    host = st.HostRecord("ctl-0", "198.18.0.11", "lc-ab12-ctl-0", "lcab12h0", "lcab12n0", "/r")
    state = state.with_host(host).with_host(
        st.HostRecord("ctl-1", "198.18.0.12", "n", "v", "p", "/s")
    )
    state = state.with_host(st.HostRecord(**{**host.__dict__, "sshd_pid": 42, "sshd_start": "7"}))
    st.save(tmp_path, state)
    loaded = st.load(tmp_path)
    assert loaded == state
    assert [h.name for h in loaded.hosts] == ["ctl-0", "ctl-1"]  # replaced in place
    assert loaded.host("ctl-0").sshd_pid == 42


def test_actions_map_to_playbooks() -> None:
    driver = AnsibleDriver(state_dir="/nonexistent")
    evacuate = make_step("e", "compute.evacuate", "data", {"aggregate": "ssd"}, nodes=("c",))
    assert driver.playbook_for(evacuate) == (
        "evacuate",
        {"aggregate": "ssd", "mode": "live-migrate", "target_hosts": "all"},
    )
    flag = make_step("f", "ansible.playbook", "ceph", {"playbook": "ceph-flag", "flag": "noout",
                                                       "state": "set"})  # fmt: skip
    assert driver.playbook_for(flag) == ("ceph-flag", {"flag": "noout", "state": "set"})
    with pytest.raises(DriverError, match="unknown playbook"):
        driver.playbook_for(make_step("x", "ansible.playbook", "p", {"playbook": "rm-rf"}))
    with pytest.raises(DriverError, match="cannot run"):
        driver.playbook_for(make_step("x", "baremetal.deploy", "p"))


class FakeRunner:
    def __init__(self, events: list[dict[str, Any]], stats: dict[str, Any]) -> None:
        self.events = events
        self.stats = stats


def test_host_results_from_runner_events_and_stats() -> None:
    events = [
        {"event": "runner_on_ok", "event_data": {"host": "a", "task": "t", "res": {}}},
        {"event": "runner_on_unreachable",
         "event_data": {"host": "b", "task": "t", "res": {"msg": "ssh: refused pw=hunter2"}}},
        {"event": "runner_on_failed",
         "event_data": {"host": "c", "task": "install", "res": {"msg": "boom"}}},
        {"event": "runner_on_failed",
         "event_data": {"host": "a", "task": "x", "ignore_errors": True, "res": {}}},
    ]  # fmt: skip
    stats = {"ok": {"a": 2, "c": 1}, "changed": {"a": 1}, "dark": {"b": 1}, "failures": {"c": 1}}
    hosts = host_results(FakeRunner(events, stats), ("a", "b", "c", "d"), lambda t: t.replace(
        "hunter2", "***"))  # fmt: skip
    assert hosts["a"] == {"status": "ok", "changed": 1}
    assert hosts["b"]["status"] == "unreachable" and "***" in hosts["b"]["msg"]
    assert "hunter2" not in json.dumps(hosts)
    assert hosts["c"]["status"] == "failed" and hosts["c"]["task"] == "install"
    assert hosts["d"]["status"] == "failed" and "no result" in hosts["d"]["msg"]


def test_checks_expectations() -> None:
    cluster = lab_like(computes_hdd=2, computes_ssd=1, controllers=3, ceph=3, networkers=1)
    checks = ChecksDriver()
    pre = checks.expectations(make_step("p", "checks.precheck", "pre", {"release": "train"}),
                              cluster)  # fmt: skip
    assert len(pre) == sum(len(m) for m in cluster.members.values())
    assert all(e.version is None for e in pre)
    post = checks.expectations(make_step("p", "checks.postcheck", "post", {"release": "ussuri"}),
                               cluster)  # fmt: skip
    versions = {(e.service, e.version) for e in post}
    assert ("galera", "ussuri") in versions and ("ceph-osd", None) in versions
    health = make_step("h", "checks.health", "infra", {"services": ["galera"], "release": "u"},
                       nodes=("ctl-1",))  # fmt: skip
    assert [(e.node, e.service, e.version) for e in checks.expectations(health, cluster)] == [
        ("ctl-1", "galera", "u")
    ]


# --- the daemon itself, on loopback --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str = "/") -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
        return json.loads(answer.read())


def _install(root: Path, release: str, configs: dict[str, Any], *services: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, daemon.__file__, "install", str(root), release, json.dumps(configs),
         *services],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    changed: list[str] = json.loads(done.stdout)["changed"]
    return changed


@pytest.fixture
def computes(tmp_path: Path) -> Iterator[tuple[dict[str, int], dict[str, Path]]]:
    ports = {"a": _free_port(), "b": _free_port()}
    roots = {h: tmp_path / h for h in ports}
    for host, port in ports.items():
        config = {"nova-compute": {"service": "nova-compute", "node": host, "bind": "127.0.0.1",
                                   "port": port, "peers": []}}  # fmt: skip
        assert _install(roots[host], "train", config, "nova-compute") == ["nova-compute"]
    yield ports, roots
    for root in roots.values():
        daemon.stop(root / "services" / "nova-compute")


def test_daemon_install_is_idempotent_and_restarts_on_a_new_version(
    computes: tuple[dict[str, int], dict[str, Path]],
) -> None:
    ports, roots = computes
    pid = (roots["a"] / "services" / "nova-compute" / "pid").read_text()
    assert _install(roots["a"], "train", {}, "nova-compute") == []
    assert (roots["a"] / "services" / "nova-compute" / "pid").read_text() == pid
    assert _get(ports["a"])["version"] == "train"
    assert _install(roots["a"], "ussuri", {}, "nova-compute") == ["nova-compute"]
    assert _get(ports["a"])["version"] == "ussuri"
    assert (roots["a"] / "services" / "nova-compute" / "pid").read_text() != pid


def test_evacuation_disables_and_moves_every_instance(
    computes: tuple[dict[str, int], dict[str, Path]],
) -> None:
    ports, roots = computes
    held = [{"id": f"vm{i}"} for i in range(3)]
    (roots["a"] / "services" / "nova-compute" / "instances.json").write_text(json.dumps(held))
    request = urllib.request.Request(
        f"http://127.0.0.1:{ports['a']}/evacuate",
        data=json.dumps({"targets": [f"http://127.0.0.1:{ports['b']}"], "mode": "live"}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        moved = json.loads(answer.read())
    assert moved["moved"] == 3 and moved["disabled"]
    a, b = _get(ports["a"]), _get(ports["b"])
    assert a["enabled"] is False and a["instances"] == []
    assert sorted(i["id"] for i in b["instances"]) == ["vm0", "vm1", "vm2"]
    assert b["enabled"] is True
