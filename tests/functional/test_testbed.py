"""The demo cluster on a real testbed: namespaces, sshd, ansible-runner over SSH, real daemons.

One testbed for the module (tests run in file order): deploy and its idempotence, a batch step
with an unreachable host, the full upgrade with a fault and a resume under a monitor, then `down`.
Needs root and openssh-server (the lane script installs it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifecycle.catalog import load_catalog
from lifecycle.drivers.base import StepContext, StepResult
from lifecycle.errors import ExecutionError
from lifecycle.formats.inventory import load_inventory
from lifecycle.model.cluster import Cluster, NodeSpec, RoleSpec
from lifecycle.planning.actions import make_step
from lifecycle.testbed import client, manager
from lifecycle.testbed import state as st
from lifecycle.testbed.driver_site import ansible_driver
from lifecycle.testbed.hosts import netns_exists
from lifecycle.testbed.monitor import Monitor

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
LIFECYCLE = [sys.executable, "-m", "lifecycle"]

if os.geteuid() != 0 or not Path("/usr/sbin/sshd").exists():
    pytest.skip("the testbed needs root and openssh-server", allow_module_level=True)


@dataclass(frozen=True)
class Bed:
    cluster: Cluster
    state: Path
    inventory: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "LIFECYCLE_STATE_DIR": str(self.state)}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*LIFECYCLE, *args], env=self.env(), cwd=REPO, capture_output=True, text=True
        )


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    root = tmp_path_factory.mktemp("testbed")
    inventory = root / "inventory"
    shutil.copytree(REPO / "tests" / "data" / "demo-train", inventory)
    (inventory / "secrets.yaml").chmod(0o600)  # git does not keep the mode
    state = root / "state"
    up = subprocess.run(
        [*LIFECYCLE, "testbed", "up", "-i", str(inventory), "--state-dir", str(state)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert up.returncode == 0, up.stderr
    try:
        yield Bed(load_inventory(inventory), state, inventory)
    finally:
        manager.down(state)


def _versions(cluster: Cluster) -> dict[str, str | None]:
    out = {}
    for service, members in cluster.members.items():
        for node in members:
            answer = client.service_status(cluster, node, service, path="/ping")
            out[f"{service}@{node}"] = None if answer is None else answer["version"]
    return out


def _expected(cluster: Cluster, release: str) -> dict[str, str]:
    catalog = load_catalog()
    return {
        f"{service}@{node}": (
            str(cluster.ceph_release) if catalog.services[service].ceph else release
        )
        for service, members in cluster.members.items()
        for node in members
    }


def test_hosts_answer_ssh_from_their_own_namespace(bed: Bed) -> None:
    status = bed.cli("testbed", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "10/10 hosts answer SSH" in status.stdout
    tb = st.load(bed.state)
    assert tb is not None
    host = tb.host("ctl-1")
    ssh = subprocess.run(
        [
            "ssh", "-i", tb.key, "-o", f"UserKnownHostsFile={tb.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            f"root@{host.address}", "ip -o -4 addr show",
        ],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert ssh.returncode == 0, ssh.stderr
    addresses = re.findall(r"inet (\S+)/", ssh.stdout)
    assert sorted(addresses) == ["127.0.0.1", host.address]  # its own namespace, nothing else


def test_deploy_then_a_second_deploy_changes_nothing(bed: Bed) -> None:
    deploy = bed.cli("testbed", "deploy", "-i", str(bed.inventory))
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert _versions(bed.cluster) == _expected(bed.cluster, "train")
    galera = client.service_status(bed.cluster, "ctl-0", "galera")
    assert galera is not None and galera["members"]["majority"]
    assert sorted(galera["members"]["reachable"]) == ["ctl-0", "ctl-1", "ctl-2"]
    computes = [n.name for n in bed.cluster.nodes if n.role.startswith("Compute")]
    for node in computes:
        status = client.service_status(bed.cluster, node, "nova-compute")
        assert status is not None and len(status["instances"]) == 3 and status["enabled"]

    again = ansible_driver(bed.state).run_playbook("deploy", bed.cluster)
    assert again.ok, again.error
    assert again.output["changed"] == {n.name: 0 for n in bed.cluster.nodes}

    # the credential the deploy generated on the hosts (no_log) is in no artifact
    tb = st.load(bed.state)
    assert tb is not None
    secret = (Path(tb.host("ctl-0").root) / "galera.secret").read_text().strip()
    assert len(secret) == 32
    for path in (bed.state / "artifacts").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path


def test_batch_step_reports_an_unreachable_host_then_succeeds_once_restored(bed: Bed) -> None:
    driver = ansible_driver(bed.state)
    step = make_step(
        "upgrade/data/batch-x",
        "ansible.playbook",
        "data-plane",
        {"playbook": "upgrade-node", "services": ["nova-compute", "neutron-ovs-agent"],
         "release": "train"},
        nodes=("cmp-hdd-0", "cmp-ssd-0"),
    )  # fmt: skip
    artifacts = bed.state / "fault-artifacts"
    ctx = StepContext(run_id="fault", cluster=bed.cluster, artifacts_dir=artifacts)
    manager.kill_sshd(bed.state, "cmp-ssd-0")
    try:
        failed = driver.run(step, ctx)
    finally:
        manager.restore_sshd(bed.state, "cmp-ssd-0")
    assert not failed.ok
    assert failed.hosts["cmp-ssd-0"]["status"] == "unreachable"
    assert failed.hosts["cmp-hdd-0"]["status"] == "ok"
    assert failed.unreachable == ("cmp-ssd-0",)
    assert "cmp-ssd-0 unreachable" in (failed.error or "")

    retried = driver.run(step, StepContext(run_id="fault", cluster=bed.cluster, attempt=2,
                                           artifacts_dir=artifacts))  # fmt: skip
    assert retried.ok, retried.error
    assert {h: r["status"] for h, r in retried.hosts.items()} == {
        "cmp-hdd-0": "ok",
        "cmp-ssd-0": "ok",
    }
    # one ansible-runner call per attempt for both hosts, each with its own artifacts
    runs = sorted(p.name for p in (artifacts / "upgrade_data_batch-x").iterdir())
    assert runs == ["attempt-1", "attempt-2"]


IDEMPOTENT_STEPS = [
    ("ansible.playbook", {"playbook": "upgrade-service", "service": "haproxy",
                          "release": "ussuri"}, ("ctl-0",)),
    ("ansible.playbook", {"playbook": "ceph-flag", "flag": "noout", "state": "set"}, ()),
    ("ansible.playbook", {"playbook": "ceph-flag", "flag": "noout", "state": "unset"}, ()),
    ("ansible.playbook", {"playbook": "db-migrate", "project": "nova", "phase": "expand",
                          "release": "ussuri"}, ("ctl-1",)),
    ("compute.evacuate", {"mode": "live-migrate", "aggregate": "hdd"}, ("cmp-hdd-0",)),
    ("compute.enable", {"aggregate": "hdd"}, ("cmp-hdd-0",)),
]  # fmt: skip


@pytest.mark.parametrize(("action", "params", "nodes"), IDEMPOTENT_STEPS)
def test_every_playbook_changes_things_once_then_nothing(
    bed: Bed, action: str, params: dict[str, object], nodes: tuple[str, ...]
) -> None:
    driver = ansible_driver(bed.state)
    step = make_step(f"idempotence/{params.get('playbook', action)}", action, "p", params,
                     nodes=nodes)  # fmt: skip
    ctx = StepContext(run_id="idempotence", cluster=bed.cluster)
    first, second = driver.run(step, ctx), driver.run(step, ctx)
    assert first.ok and second.ok, (first.error, second.error)
    assert sum(first.output["changed"].values()) > 0
    assert set(second.output["changed"].values()) == {0}
    assert driver.probe(step, ctx) in (True, None)


def test_health_playbook_checks_versions_from_the_hosts(bed: Bed) -> None:
    driver = ansible_driver(bed.state)
    ctx = StepContext(run_id="health", cluster=bed.cluster)
    nodes = ("ctl-0", "ctl-1", "ctl-2")

    def health(release: str) -> StepResult:
        params = {"services": ["galera", "rabbitmq"], "release": release}
        return driver.run(make_step(f"health/{release}", "checks.health", "p", params,
                                    nodes=nodes), ctx)  # fmt: skip

    assert health("train").ok
    wrong = health("ussuri")
    assert not wrong.ok
    assert {h: r["status"] for h, r in wrong.hosts.items()} == dict.fromkeys(nodes, "failed")


def test_upgrade_stops_on_an_unreachable_host_and_resume_completes_it(bed: Bed) -> None:
    with Monitor(bed.cluster) as monitor:
        manager.kill_sshd(bed.state, "cmp-ssd-1")
        try:
            first = bed.cli(
                "run", "upgrade", "-i", str(bed.inventory), "--to", "ussuri",
                "--driver", "testbed", "-y",
            )  # fmt: skip
        finally:
            manager.restore_sshd(bed.state, "cmp-ssd-1")
        assert first.returncode == 4, first.stdout + first.stderr
        text = first.stdout + first.stderr
        assert "cmp-ssd-1" in text and "unreachable" in text, text
        run_id = re.search(r"run (\S+) \(upgrade of demo", text)
        assert run_id, text

        second = bed.cli("resume", run_id.group(1))
        assert second.returncode == 0, second.stdout + second.stderr
        assert "succeeded" in second.stdout

    assert _versions(bed.cluster) == _expected(bed.cluster, "ussuri")
    observed = monitor.observation
    assert observed.polls > 10
    assert observed.violations == []
    assert len(observed.instances_at_start) == 12
    assert observed.instances_at_end == observed.instances_at_start
    assert observed.max_down == {"hdd": 1, "ssd": 1}  # each aggregate lost one host at a time


def test_a_killed_run_is_resumed_to_the_end(bed: Bed, tmp_path: Path) -> None:
    """The controller dies (kill -9 of its whole process group, ansible-playbook included)
    mid-upgrade; `resume` finishes the run with no step done twice and nothing lost."""
    inventory = tmp_path / "inventory"
    shutil.copytree(bed.inventory, inventory)
    cluster_yaml = inventory / "cluster.yaml"
    cluster_yaml.write_text(cluster_yaml.read_text().replace("release: train", "release: ussuri"))
    (inventory / "secrets.yaml").chmod(0o600)
    events = tmp_path / "events.jsonl"
    with Monitor(bed.cluster) as monitor:
        run = subprocess.Popen(
            [*LIFECYCLE, "run", "upgrade", "-i", str(inventory), "--to", "victoria",
             "--driver", "testbed", "-y", "--events", str(events)],
            env=bed.env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while _succeeded(events) < 12 and run.poll() is None:
                assert time.monotonic() < deadline, "the run made no progress"
                time.sleep(0.2)
            assert run.poll() is None, "the run ended before it could be killed"
            os.killpg(run.pid, signal.SIGKILL)
        finally:
            run.wait()
        run_id = json.loads(events.read_text().splitlines()[0])["run"]
        done_before = _succeeded_steps(events)
        resumed = bed.cli("resume", run_id, "--events", str(events))
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    names = []
    for line in events.read_text().splitlines():
        if '"step-succeeded"' in line:
            with contextlib.suppress(ValueError):
                names.append(json.loads(line)["step"])
    assert len(names) == len(set(names)), "a step succeeded twice"
    assert done_before <= set(names)
    assert _versions(bed.cluster) == _expected(bed.cluster, "victoria")
    assert monitor.observation.violations == []
    assert monitor.observation.instances_at_end == monitor.observation.instances_at_start


def _succeeded_steps(events: Path) -> set[str]:
    if not events.exists():
        return set()
    found = set()
    for line in events.read_text().splitlines():
        if '"step-succeeded"' in line:
            try:
                found.add(json.loads(line)["step"])
            except ValueError:  # the last line of a killed writer may be cut short
                continue
    return found


def _succeeded(events: Path) -> int:
    return len(_succeeded_steps(events))


def test_down_removes_exactly_what_up_recorded(bed: Bed) -> None:
    tb = st.load(bed.state)
    assert tb is not None
    daemon_pids = [int(p.read_text()) for p in Path(tb.hosts[0].root).glob("services/*/pid")]
    assert daemon_pids
    down = bed.cli("testbed", "down")  # a fresh process: it knows only the state file
    assert down.returncode == 0, down.stderr
    assert not any(netns_exists(h.netns) for h in tb.hosts)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert tb.bridge not in links and not any(h.veth in links for h in tb.hosts)
    for pid in [h.sshd_pid for h in tb.hosts if h.sshd_pid] + daemon_pids:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), pid
    assert not Path(tb.key).exists() and not Path(tb.host_key).exists()
    assert st.load(bed.state) is None
    assert "no testbed" in bed.cli("testbed", "status").stdout


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_down_after_an_up_that_broke_halfway(tmp_path: Path) -> None:
    """`up` records each thing before it makes it: when it dies halfway (here: a bad address on
    the second host), `down` from the state file alone removes what was made."""
    roles = (RoleSpec("Compute", ("nova-compute",)),)
    nodes = (
        NodeSpec("ok-0", "Compute", address="198.18.0.41"),
        NodeSpec("bad-1", "Compute", address="198.18.0.300"),
    )
    cluster = Cluster(name="broken", release="train", roles=roles, nodes=nodes)
    state = tmp_path / "state"
    with pytest.raises(ExecutionError):
        manager.up(cluster, state)
    tb = st.load(state)
    assert tb is not None and [h.name for h in tb.hosts] == ["ok-0", "bad-1"]
    assert all(netns_exists(h.netns) for h in tb.hosts)
    recorded = state / "broken.state.json"  # what runs recorded of this cloud (issue 11)
    recorded.write_text("{}")
    removed = manager.down(state)
    assert any(r.startswith("sshd") for r in removed)
    # a testbed made again starts at the inventory's release: the old record must not say
    # its upgrade is done already (the demo runs down, up, deploy, upgrade each time)
    assert not recorded.exists() and any("recorded state" in r for r in removed)
    assert not any(netns_exists(h.netns) for h in tb.hosts)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert tb.bridge not in links and not any(h.veth in links for h in tb.hosts)
    assert st.load(state) is None
