"""A compute replaced by a server of a nodes file through a real Ironic (issue 12), and that
server, once lost, rebuilt by `recover` through the same Ironic (issue 13).

The real parts: a standalone Ironic with Redfish BMCs emulated by sushy-tools (the Ironic
lane's), the CLI (`lifecycle run replace -i INV --node cmp-ssd-1 --with srv-9 --nodes FILE`, then
`lifecycle run recover -i INV --image URL`, both `--driver testbed`, the baremetal steps going to
Ironic through $LIFECYCLE_IRONIC_URL), and a testbed of its own (stand-in daemons, a free
10.9x.y.0/24 and its own LIFECYCLE_STATE_DIR, so it runs beside other testbeds) holding ctl-0,
cmp-ssd-0 and cmp-ssd-1 only.

Why a compute by default, and the controller case: a compute is the cheapest role whose
replacement exercises both halves through Ironic: `baremetal.undeploy` of the old server and
enroll, inspect, match (profile compute-ssd), provide, deploy of the new one, plus evacuate,
verify-empty, delete-service, cleanup-records, its services, aggregate, enable. A controller's
plan is 46 steps (its `keystone-keys` step, which failed on a stand-in Keystone, is a no-op there
now: a stand-in holds no keys), too long for this lane's budget; it runs when asked:

    LIFECYCLE_IRONIC_REPLACE=controller bash .ci/lanes/ironic.sh -k test_ironic_replace -rP

Then ctl-1 (made `active` through Ironic first) is replaced by srv-9, a nodes-file server of
profile `control` (an emulated `control` kind: 16 CPUs, 64 GiB, 3 NICs, one SSD), in an
inventory of ctl-0, ctl-1 and ctl-2 only: three controllers are the fewest the planner allows
(with two, stopping one leaves galera, rabbitmq and ceph-mon 1 of 2 up: refused, rule
`quorum`). The same Ironic and network assertions (all 15 Controller services answer on srv-9,
none on ctl-1), and the stores: after the operator's edit, `lifecycle status` names ctl-0,
srv-9, ctl-2 as the members of galera, rabbitmq and ceph-mon (quorum, healthy); each live
member's stand-in daemon reports ctl-1 unreachable, and the removal records (galera-remove on
ctl-0 and ctl-2, rabbitmq-forget and ceph-mon-remove on ctl-0) name ctl-1. `recover` is not run
for a controller (its two tests are skipped). The real control plane's replacement is
test_realcloud_drills.py's (354 s). Measured (two runs of the command above, shared 2-core
machine at load average 3-5): the module 3 min 28 s and 4 min 53 s in all; in the second, the
old server made `active` 12 s, testbed up and deploy 12 s, `run replace` 229 s (46 steps).

Before the replace, cmp-ssd-1 is a server Ironic deployed (`active`, through the scale-out
planner's own baremetal steps); srv-9 is a server Ironic has never seen, which becomes a testbed
host (`testbed add-host`) as in test_ironic_scale_out.py. Asserted through Ironic's API:
cmp-ssd-1 ends `available` (this Ironic has `automated_clean = false`: `deleted` goes `deleting`
-> `available` without `cleaning`), powered off, its deployment's instance_info gone; srv-9 is
`active` with the compute-ssd profile (capability and CUSTOM_PROFILE_COMPUTE_SSD trait) and the
nodes file's resource class. Over the network: srv-9's nova-compute and neutron-ovs-agent answer
at the release, cmp-ssd-1's no longer do (issue 12's research note: servers whose cleaning
failed came back with their old OS and rejoined; here the old server is checked gone).

Then srv-9 is lost (its sshd and sessions killed: observed unreachable) and `run recover`
rebuilds it: Ironic takes it `active` -> `available` -> `active` again (watched through the API;
when the new deployment starts, the test brings the host's sshd back: the new OS booting), its
services are deployed again and answer.

Measured (the lane with `-k test_ironic_replace`, two runs on the shared 2-core machine at load
average 7-8, nice 10): the module 3 min 50 s and 4 min 4 s in all, of which the old server made
`active` 25-34 s, testbed up and deploy 20-23 s, `run replace` 62-95 s (18 steps; Ironic's part
~25 s), `run recover` 64-93 s (8 steps: unprovision ~8 s, reprovision ~12 s; Ironic's states
seen: active, deleting, available, deploying, active). That is over the 3 min asked of this lane,
at this load; a quiet machine was not available to measure. A third run, after the role became
selectable: 3 min 24 s (replace 50 s, recover 95 s; recover's states seen there: active,
deleting, cleaning, available, deploying, active). Each run prints its figures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import openstack
import pytest
import yaml

from lifecycle.catalog import load_catalog
from lifecycle.drivers.baremetal import BaremetalDriver
from lifecycle.drivers.base import StepContext
from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.nodes_file import load_nodes_file
from lifecycle.formats.profiles import load_profiles
from lifecycle.model.cluster import Cluster, NodeSpec
from lifecycle.planning.profiles import trait_for
from lifecycle.planning.scale_out import ScaleOutOptions, plan_scale_out
from lifecycle.testbed import client, manager
from lifecycle.testbed import state as testbed_state
from lifecycle.testbed.driver_site import ansible_driver
from lifecycle.testbed.ironic import BMC_USER, IronicTestbed, Machine, machine, running
from lifecycle.testbed.ports import service_port
from tests.functional.testbed_host import free_prefix

pytestmark = pytest.mark.ironic

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Replace-BMC-pw-3c91d0"
ROLE_ENV = "LIFECYCLE_IRONIC_REPLACE"  # compute (default) | controller


@dataclass(frozen=True)
class Case:
    """One role's replacement: `old` (a server Ironic deploys first) replaced by srv-9, both
    emulated servers of `kind` (lifecycle/testbed/ironic.py KINDS) matching `profile`, in an
    inventory of the `kept` nodes only; `answering`: the role's services asked over the network."""

    role: str  # the inventory role, the nodes file's `role`
    old: str
    kind: str
    profile: str
    kept: tuple[str, ...]
    answering: tuple[str, ...]

    @property
    def resource_class(self) -> str:
        return f"baremetal.{self.profile}"


CASES = {
    # one controller, the SSD aggregate
    "compute": Case("ComputeSSD", "cmp-ssd-1", "ssd", "compute-ssd",
                    ("ctl-0", "cmp-ssd-0", "cmp-ssd-1"), ("nova-compute", "neutron-ovs-agent")),
    # three controllers: the fewest the planner's `quorum` rule lets one of them be stopped
    # (with two, galera, rabbitmq and ceph-mon keep 1 of 2 up: refused); no compute, no OSD host
    "controller": Case("Controller", "ctl-1", "control", "control",
                       ("ctl-0", "ctl-1", "ctl-2"),
                       ("haproxy", "galera", "rabbitmq", "memcached", "keystone", "glance-api",
                        "placement-api", "nova-api", "nova-conductor", "nova-scheduler",
                        "neutron-server", "cinder-api", "horizon", "ceph-mon", "ceph-mgr")),
}  # fmt: skip
if os.environ.get(ROLE_ENV, "compute") not in CASES:
    raise pytest.UsageError(f"{ROLE_ENV} must be one of {', '.join(CASES)}")
CASE = CASES[os.environ.get(ROLE_ENV, "compute")]
OLD, NEW = CASE.old, "srv-9"
MACHINES = [machine(CASE.kind, 1, OLD), machine(CASE.kind, 9, NEW)]
PROFILE = CASE.profile
RESOURCE_CLASS = CASE.resource_class
KEPT = CASE.kept
ANSWERING = CASE.answering
STORES = ("galera", "rabbitmq", "ceph-mon")  # the controller's majority-quorum stores
FIGURES: dict[str, Any] = {"role": CASE.role}
compute_only = pytest.mark.skipif(CASE.role != "ComputeSSD", reason=f"{ROLE_ENV}=compute only")
controller_only = pytest.mark.skipif(
    CASE.role != "Controller", reason=f"{ROLE_ENV}=controller only"
)


@dataclass
class Bed:
    """The testbed: its inventory copy, state directory and address prefix."""

    inventory: Path
    state: Path
    prefix: str
    ironic: IronicTestbed
    nodes_file: Path

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LIFECYCLE_STATE_DIR": str(self.state),
            "LIFECYCLE_IRONIC_URL": self.ironic.ironic_url,
            "PYTHONPATH": str(ROOT),
        }

    def cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lifecycle", *args],
            cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def ok(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        done = self.cli(*args, timeout=timeout)
        assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
        return done

    def cluster(self) -> Cluster:
        return load_inventory(self.inventory)


def _kept_only(inventory: Path, prefix: str) -> None:
    """The demo inventory with the KEPT nodes only, moved to `prefix`."""
    path = inventory / "cluster.yaml"
    data = yaml.safe_load(path.read_text())
    data["nodes"] = [n for n in data["nodes"] if n["name"] in KEPT]
    for node in data["nodes"]:
        node["address"] = node["address"].replace("198.18.0.", prefix)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _nodes_file(
    path: Path, ironic: IronicTestbed, servers: list[Machine], addresses: dict[str, str]
) -> Path:
    nodes = [
        {"name": m.name, "pm_type": "redfish", "pm_addr": ironic.redfish_url,
         "pm_user": BMC_USER, "pm_password": PASSWORD,
         "pm_system_id": f"/redfish/v1/Systems/{m.uuid}", "mac": list(m.macs),
         "capabilities": f"profile:{PROFILE},boot_option:local", "role": CASE.role,
         "resource_class": RESOURCE_CLASS,
         **({"address": addresses[m.name]} if m.name in addresses else {})}
        for m in servers
    ]  # fmt: skip
    path.write_text(json.dumps({"nodes": nodes}, indent=1))
    path.chmod(0o600)  # it holds BMC passwords: lifecycle refuses it readable by others
    return path


def _provision_old(bed: Bed, work: Path) -> None:
    """The old server as one Ironic deployed: the scale-out planner's own baremetal steps, run by
    the baremetal driver one after the other (no engine: this is the test's setup)."""
    old = next(m for m in MACHINES if m.name == OLD)
    servers, secrets = load_nodes_file(_nodes_file(work / "old.json", bed.ironic, [old], {}))
    cluster = bed.cluster()
    base = replace(cluster, nodes=tuple(n for n in cluster.nodes if n.name != OLD))
    plan = plan_scale_out(
        base, servers, load_profiles(), options=ScaleOutOptions(image=bed.ironic.image_url)
    )
    driver = BaremetalDriver(endpoint=bed.ironic.ironic_url, poll_interval=0.2)
    ctx = StepContext(run_id="setup", cluster=base, artifacts_dir=work, secrets=secrets)
    try:
        for step in plan.steps:
            if step.action.startswith("baremetal."):
                result = driver.run(step, ctx)
                assert result.ok, result.error
    finally:
        driver.close()


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Bed]:
    top = tmp_path_factory.mktemp("ironic-replace")
    inventory = top / "demo"
    shutil.copytree(ROOT / "tests" / "data" / "demo-train", inventory)
    (inventory / "secrets.yaml").chmod(0o600)
    prefix = free_prefix(range(90, 100))
    _kept_only(inventory, prefix)
    with running(MACHINES, PASSWORD, top / "ironic") as ironic:
        new = [m for m in MACHINES if m.name == NEW]
        servers = _nodes_file(top / "new-servers.json", ironic, new, {NEW: f"{prefix}19"})
        made = Bed(inventory, top / "state", prefix, ironic, servers)
        started = time.monotonic()
        _provision_old(made, top)
        FIGURES["old_server_active_s"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        made.ok("testbed", "up", "-i", str(inventory))
        try:
            # the deploy playbook, as test_ironic_scale_out.py (`run deploy` creates the
            # databases, which needs the real Galera this lane does not run)
            deployed = ansible_driver(made.state).run_playbook(
                "deploy", made.cluster(), artifacts=top / "artifacts" / "deploy"
            )
            assert deployed.ok, deployed.error
            FIGURES["testbed_up_and_deploy_s"] = round(time.monotonic() - started, 1)
            yield made
        finally:
            made.cli("testbed", "down")
            # past the capture: the module's last test may be a skipped one, whose output
            # -rP does not show (the controller case skips the recover tests)
            capture = request.config.pluginmanager.getplugin("capturemanager")
            with capture.global_and_fixture_disabled():
                print("\nironic replace figures:", json.dumps(FIGURES))


def baremetal(bed: Bed) -> Any:
    return openstack.connect(
        auth_type="none", baremetal_endpoint_override=bed.ironic.ironic_url
    ).baremetal


def _with_new(cluster: Cluster, bed: Bed) -> Cluster:
    server = load_nodes_file(bed.nodes_file)[0][0]
    spec = cluster.node(OLD)
    added = NodeSpec(name=NEW, role=spec.role, address=server.address)
    return replace(cluster, nodes=(*cluster.nodes, added))


@pytest.fixture(scope="module")
def replaced(bed: Bed) -> subprocess.CompletedProcess[str]:
    """srv-9 made a testbed host (what it is once Ironic deployed it), then the replace run."""
    server = load_nodes_file(bed.nodes_file)[0][0]
    assert server.address is not None
    api = baremetal(bed)
    assert api.get_node(OLD).provision_state == "active"
    assert api.find_node(NEW, ignore_missing=True) is None  # Ironic has never seen it
    bed.ok("testbed", "add-host", NEW, server.address)
    started = time.monotonic()
    done = bed.cli("run", "replace", "-i", str(bed.inventory), "--node", OLD, "--with", NEW,
                   "--nodes", str(bed.nodes_file), "--image", bed.ironic.image_url,
                   "--driver", "testbed", "--yes", "--no-progress", timeout=1200)  # fmt: skip
    FIGURES["replace_s"] = round(time.monotonic() - started, 1)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done


def test_old_server_is_unprovisioned_by_ironic(replaced, bed):
    node = baremetal(bed).get_node(OLD)
    assert node.provision_state == "available", (node.provision_state, node.last_error)
    assert node.provision_state != "active"
    assert node.power_state == "power off"
    assert not node.instance_info.get("boot_iso")  # the deployment's record is gone with it


def test_new_server_is_active_with_the_role_profile_and_resource_class(replaced, bed):
    node = baremetal(bed).get_node(NEW)
    assert node.provision_state == "active", (node.provision_state, node.last_error)
    assert f"profile:{PROFILE}" in node.properties["capabilities"]
    assert trait_for(PROFILE) in node.traits
    assert node.resource_class == RESOURCE_CLASS


def release_of(cluster: Cluster, service: str) -> str | None:
    """The release a service's daemon runs: Ceph daemons their own (`ceph_release`)."""
    ceph = load_catalog().services[service].ceph and cluster.ceph_release is not None
    return cluster.ceph_release if ceph else cluster.release


def test_new_host_runs_the_role_services_and_the_old_one_does_not(replaced, bed):
    cluster = _with_new(bed.cluster(), bed)
    for service in ANSWERING:
        answer = client.service_status(cluster, NEW, service, path="/ping")
        expected = release_of(cluster, service)
        assert answer is not None and answer["version"] == expected, (service, answer)
        gone = client.service_status(cluster, OLD, service, path="/ping")
        assert gone is None, (service, gone)


def test_the_run_says_what_the_inventory_must_now_say(replaced):
    assert f"inventory: node {OLD} is now {NEW}" in replaced.stdout


def _operator_edit(bed: Bed) -> None:
    """What docs/replace.md asks once a replace is done: the inventory names the new node."""
    path = bed.inventory / "cluster.yaml"
    data = yaml.safe_load(path.read_text())
    server = load_nodes_file(bed.nodes_file)[0][0]
    for node in data["nodes"]:
        if node["name"] == OLD:
            node["name"], node["address"] = NEW, server.address
            node["bmc"]["system_id"] = f"/redfish/v1/Systems/{MACHINES[1].uuid}"
    path.write_text(yaml.safe_dump(data, sort_keys=False))


# --- a controller: the clustered stores' membership ---------------------------------------------


@pytest.fixture(scope="module")
def status(bed: Bed, replaced) -> dict[str, Any]:
    """The operator's edit, then `lifecycle status` of the testbed (JSON): what the stand-in
    stores' members report, mapped to the inventory's names."""
    _operator_edit(bed)
    done = bed.ok("status", "-i", str(bed.inventory), "--driver", "testbed", "-f", "json")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def view(bed: Bed, node: str, store: str) -> dict[str, Any] | None:
    """One member's own view of its store (the stand-in daemon's GET /: `members` = configured
    size, reachable peers, majority); None when its daemon does not answer."""
    tb = testbed_state.load(bed.state)
    assert tb is not None
    return client.get(tb.host(node).address, service_port(store))


@controller_only
def test_the_stores_name_the_new_member_and_not_the_old(status, bed):
    stores = {s["service"]: s for s in status["stores"]}
    others = [n for n in KEPT if n != OLD]
    for store in STORES:
        seen = stores[store]
        assert seen["members"] == [others[0], NEW, *others[1:]], (store, seen)
        assert seen["quorum"] is True and seen["health"] == "healthy", (store, seen)
        for node in (*others, NEW):  # every live member's own view: the old one unreachable
            answer = view(bed, node, store)
            assert answer is not None, (store, node)
            members = answer["members"]
            assert OLD not in members["reachable"] and members["majority"], (store, node, answer)
            if node == NEW:  # the new member sees all the others
                assert {*others, NEW} <= set(members["reachable"]), (store, answer)
        assert view(bed, OLD, store) is None, store


@controller_only
def test_the_old_member_was_removed_from_each_store(replaced, bed):
    """The stand-in removal records on the live members (galera-remove on every one of them,
    rabbitmq-forget and ceph-mon-remove on one), not merely a stopped daemon."""
    tb = testbed_state.load(bed.state)
    assert tb is not None
    others = [n for n in KEPT if n != OLD]
    root = {n: Path(tb.host(n).root) / "services" for n in others}
    for node in others:
        assert (root[node] / "galera" / f"removed-{OLD}").is_file(), node
    assert (root[others[0]] / "rabbitmq" / f"forgotten-{OLD}").is_file()
    assert (root[others[0]] / "ceph-mon" / f"removed-{OLD}").is_file()


# --- issue 13: a lost server rebuilt by `recover` through Ironic --------------------------------


class IronicWatch(threading.Thread):
    """Polls one Ironic node's provision state and records each change; once the node is being
    deployed again after it was `available`, brings its testbed host's sshd back: the server
    booted its new OS (on this testbed the host's namespace stands for the server)."""

    def __init__(self, bed: Bed, node: str) -> None:
        super().__init__(daemon=True)
        self.bed, self.node = bed, node
        self.states: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        api = baremetal(self.bed)
        back = False
        while not self.stopping.is_set():
            state = api.get_node(self.node).provision_state
            if not self.states or self.states[-1] != state:
                self.states.append(state)
            if not back and "available" in self.states and state != "available":
                manager.restore_sshd(self.bed.state, self.node)
                back = True
            time.sleep(0.1)


@pytest.fixture(scope="module")
def recovered(bed: Bed, replaced) -> dict[str, Any]:
    """srv-9 (deployed by Ironic in the replace) lost: its sshd and sessions killed (observed
    unreachable, as the testbed lane's failure tests do; a link taken down instead leaves
    Ansible's ControlPersist master hanging); `run recover` rebuilds it through Ironic and
    deploys its services."""
    _operator_edit(bed)
    api = baremetal(bed)
    before = provision_updated_at(api, NEW)
    manager.kill_sshd(bed.state, NEW)
    watch = IronicWatch(bed, NEW)
    watch.start()
    started = time.monotonic()
    try:
        done = bed.cli("run", "recover", "-i", str(bed.inventory), "--image",
                       bed.ironic.image_url, "--driver", "testbed", "--yes", "--no-progress",
                       timeout=900)  # fmt: skip
    finally:
        watch.stopping.set()
        watch.join()
        manager.restore_sshd(bed.state, NEW)
    FIGURES["recover_s"] = round(time.monotonic() - started, 1)
    FIGURES["recover_ironic_states"] = watch.states
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return {"done": done, "states": watch.states, "before": before}


def provision_updated_at(api: Any, node: str) -> str:
    """When the node last changed provision state (the SDK does not expose this field)."""
    return str(api.get(f"/nodes/{node}", microversion="1.115").json()["provision_updated_at"])


@compute_only
def test_recover_rebuilds_the_lost_server_through_ironic(recovered, bed):
    states = recovered["states"]
    assert states[0] == "active" and "available" in states, states
    assert states.index("available") < len(states) - 1 and states[-1] == "active", states
    api = baremetal(bed)
    node = api.get_node(NEW)
    assert node.provision_state == "active", (node.provision_state, node.last_error)
    assert provision_updated_at(api, NEW) != recovered["before"]


@compute_only
def test_the_rebuilt_server_runs_its_services_again(recovered, bed):
    cluster = bed.cluster()  # the operator's edit names srv-9
    for service in ANSWERING:
        answer = client.service_status(cluster, NEW, service, path="/ping")
        expected = release_of(cluster, service)
        assert answer is not None and answer["version"] == expected, (service, answer)
