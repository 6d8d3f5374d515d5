"""Scale-out on a real Ironic with emulated Redfish BMCs, through the engine.

Four new servers (two all-SSD, two HDD) and a fifth whose BMC password in the nodes file is wrong.
Bare metal is real (Ironic + sushy-tools); Nova is the named stand-in (no real Nova runs here).
The demo cluster runs on the testbed, and each new SSD server, once Ironic has deployed it,
becomes a testbed host (`manager.add_host`): its `deploy-node` playbook runs through the real
Ansible driver over SSH and its health gate through the real checks driver. The HDD servers'
playbook and gate still go to a stand-in driver below (they have no testbed host).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack
import pytest

from lifecycle.drivers.baremetal import BaremetalDriver
from lifecycle.drivers.base import Driver, StepContext, StepResult
from lifecycle.drivers.compute import ComputeDriver
from lifecycle.errors import UsageError
from lifecycle.execution.engine import Engine, EngineOptions
from lifecycle.execution.events import JsonLinesSink
from lifecycle.execution.paths import open_journal
from lifecycle.execution.routing import Router
from lifecycle.execution.runs import start_run
from lifecycle.execution.states import StepState
from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.nodes_file import load_nodes_file
from lifecycle.formats.profiles import load_profiles
from lifecycle.model.cluster import Cluster
from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.scale_out import ScaleOutOptions, grown_cluster, plan_scale_out
from lifecycle.testbed import client, manager
from lifecycle.testbed.driver_site import ansible_driver, checks_driver
from lifecycle.testbed.ironic import BMC_USER, IronicTestbed, machine, running
from lifecycle.testbed.nova_standin import NovaStandin

pytestmark = pytest.mark.ironic

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Planted-BMC-pw-5d81c2"
WRONG = "Wrong-BMC-pw-77ae10"
MACHINES = [
    machine("ssd", 2, "cmp-ssd-2"),
    machine("ssd", 3, "cmp-ssd-3"),
    machine("hdd", 2, "cmp-hdd-2"),
    machine("hdd", 3, "cmp-hdd-3"),
    machine("hdd", 4, "cmp-hdd-4"),  # its nodes-file password is wrong
]
GOOD = ("cmp-ssd-2", "cmp-ssd-3", "cmp-hdd-2", "cmp-hdd-3")
BAD = "cmp-hdd-4"
TESTBED_HOSTS = {"cmp-ssd-2": "198.18.0.25", "cmp-ssd-3": "198.18.0.26"}  # real SSH hosts


class DeployStandin(Driver):
    """STAND-IN for the Ansible `deploy-node` playbook and the health gate on these emulated
    servers: deploying nova-compute registers the host in the Nova stand-in (what the daemon does
    when it first starts); health asks Ironic and Nova whether the node is active and enabled."""

    name = "deploy-standin"

    def __init__(self, nova: NovaStandin, ironic_url: str) -> None:
        self.nova = nova
        self.ironic_url = ironic_url

    def run(self, step: Step, ctx: StepContext) -> StepResult:
        host = step.nodes[0]
        if step.action == "ansible.playbook" and step.param("playbook") == "deploy-node":
            if "nova-compute" in (step.param("services") or ()):
                self.nova.state.add_compute(host)
            return StepResult(ok=True, output={"deployed": list(step.param("services") or ())})
        if step.action == "checks.health":
            conn = openstack.connect(auth_type="none", baremetal_endpoint_override=self.ironic_url)
            active = conn.baremetal.get_node(host).provision_state == "active"
            enabled = self.nova.state.enabled(host)
            ok = active and enabled
            return StepResult(
                ok=ok, error=None if ok else f"{host}: active={active} enabled={enabled}"
            )
        return StepResult(ok=False, error=f"stand-in does not do {step.action}")


class OnTestbed(Driver):
    """Sends the steps of the testbed hosts to the real driver, the others to the stand-in.
    After a real `deploy-node` with nova-compute, the host registers in the Nova stand-in
    (what a real nova-compute does when it first starts; no real Nova runs here)."""

    def __init__(self, name: str, real: Driver, standin: DeployStandin) -> None:
        self.name = name
        self.real = real
        self.standin = standin

    def run(self, step: Step, ctx: StepContext) -> StepResult:
        if not set(step.nodes) <= set(TESTBED_HOSTS):
            return self.standin.run(step, ctx)
        result = self.real.run(step, ctx)
        services = step.param("services") or ()
        if result.ok and step.param("playbook") == "deploy-node" and "nova-compute" in services:
            for host in step.nodes:
                self.standin.nova.state.add_compute(host)
        return result


def nodes_file(path: Path, ironic: IronicTestbed, passwords: dict[str, str]) -> Path:
    nodes = [
        {
            "name": m.name, "pm_type": "redfish", "pm_addr": ironic.redfish_url,
            "pm_user": BMC_USER, "pm_password": passwords.get(m.name, PASSWORD),
            "pm_system_id": f"/redfish/v1/Systems/{m.uuid}", "mac": list(m.macs),
            "capabilities": f"profile:compute-{m.name.split('-')[1]},boot_option:local",
            **({"address": TESTBED_HOSTS[m.name]} if m.name in TESTBED_HOSTS else {}),
        }
        for m in MACHINES
    ]  # fmt: skip
    path.write_text(json.dumps({"nodes": nodes}, indent=1))
    path.chmod(0o600)  # it holds BMC passwords: lifecycle refuses it readable by others
    return path


@pytest.fixture(scope="module")
def ironic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IronicTestbed]:
    with running(MACHINES, PASSWORD, tmp_path_factory.mktemp("ironic")) as testbed:
        yield testbed


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The demo cluster deployed on the testbed, plus one (empty) host per new SSD server:
    what the server is once Ironic has deployed it."""
    state = tmp_path_factory.mktemp("testbed") / "state"
    cluster = load_inventory(ROOT / "tests" / "data" / "demo-train")
    try:
        _up_when_free(cluster, state)
        deployed = ansible_driver(state).run_playbook(
            "deploy", cluster, artifacts=state / "artifacts" / "deploy"
        )
        assert deployed.ok, deployed.error
        for name, address in TESTBED_HOSTS.items():
            manager.add_host(state, name, address)
        yield state
    finally:
        manager.down(state)


def _up_when_free(cluster: Cluster, state: Path, wait: float = 900.0) -> None:
    """One testbed per machine: wait while another one (another lane, another run) holds it."""
    deadline = time.monotonic() + wait
    while True:
        try:
            manager.up(cluster, state)
            return
        except UsageError as exc:
            if "already holds" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(2.0)


@pytest.fixture(scope="module")
def nova() -> Iterator[NovaStandin]:
    with NovaStandin() as standin:
        for host in ("cmp-ssd-0", "cmp-ssd-1", "cmp-hdd-0", "cmp-hdd-1"):
            standin.state.add_compute(host)
        standin.state.create_aggregate("hdd")["hosts"].extend(["cmp-hdd-0", "cmp-hdd-1"])
        standin.state.create_aggregate("ssd")["hosts"].extend(["cmp-ssd-0", "cmp-ssd-1"])
        yield standin


def run_scale_out(
    work: Path, ironic: IronicTestbed, nova: NovaStandin, passwords: dict[str, str], bed: Path
) -> tuple[Plan, Any, Path]:
    """Import the nodes file, plan, and run the plan through the engine; (plan, view, events)."""
    cluster = load_inventory(ROOT / "tests" / "data" / "demo-train")
    new_nodes, secrets = load_nodes_file(nodes_file(work / "instackenv.json", ironic, passwords))
    profiles = load_profiles()
    plan = plan_scale_out(
        cluster, new_nodes, profiles, options=ScaleOutOptions(image=ironic.image_url)
    )
    grown = grown_cluster(cluster, new_nodes, profiles)
    standin = DeployStandin(nova, ironic.ironic_url)
    drivers: dict[str, Driver] = {
        "baremetal": BaremetalDriver(endpoint=ironic.ironic_url, poll_interval=0.2),
        "compute": ComputeDriver(endpoint=nova.url, poll_interval=0.1),
        "ansible": OnTestbed("ansible", ansible_driver(bed), standin),
        "checks": OnTestbed("checks", checks_driver(), standin),
    }
    table = {"baremetal": "baremetal", "compute": "compute", "ansible": "ansible",
             "checks": "checks"}  # fmt: skip
    router = Router(table, loader=lambda name, **_: drivers[name])
    journal = open_journal(work / "state", grown.name)
    events = work / "events.jsonl"
    sink = JsonLinesSink(events)
    try:
        view = start_run(journal, plan, grown, {"operation": "scale-out"})
        engine = Engine(
            journal, plan, grown, router,
            options=EngineOptions(concurrency=4, failure_threshold=1, poll_interval=0.05,
                                  artifacts_dir=work / "artifacts"),
            sink=sink, secrets=secrets,
        )  # fmt: skip
        view = engine.execute(view)
    finally:
        sink.close()
        router.close()
        journal.close()
    return plan, view, events


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, ironic, nova, bed):
    work = tmp_path_factory.mktemp("scale-out")
    log_file = work / "lifecycle-debug.log"
    handler = logging.FileHandler(log_file)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # the worst case: every library logs its requests
    try:
        plan, view, events = run_scale_out(work, ironic, nova, {BAD: WRONG}, bed)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    return {"plan": plan, "view": view, "events": events, "log": log_file, "work": work, "bed": bed}


def baremetal(ironic: IronicTestbed) -> Any:
    return openstack.connect(
        auth_type="none", baremetal_endpoint_override=ironic.ironic_url
    ).baremetal


def provision_updated_at(api: Any, node: str) -> str:
    """When the node last changed provision state (the SDK does not expose this field)."""
    answer = api.get(f"/nodes/{node}", microversion="1.115")
    return str(answer.json()["provision_updated_at"])


def test_good_servers_end_active_with_their_profile_in_their_aggregate(first_run, ironic, nova):
    view = first_run["view"]
    for node in GOOD:
        states = {sid: v.state for sid, v in view.steps.items() if sid.endswith(f"/{node}")}
        assert set(states.values()) == {StepState.SUCCEEDED}, states
    api = baremetal(ironic)
    aggregates = {a["name"]: a["hosts"] for a in nova.state.aggregates.values()}
    for node in GOOD:
        kind = node.split("-")[1]
        ironic_node = api.get_node(node)
        assert ironic_node.provision_state == "active"
        assert f"profile:compute-{kind}" in ironic_node.properties["capabilities"]
        assert f"CUSTOM_PROFILE_COMPUTE_{kind.upper()}" in ironic_node.traits
        assert node in aggregates[kind]
    assert BAD not in aggregates["hdd"]


def test_wrong_bmc_password_fails_enrollment_clearly_and_alone(first_run, ironic):
    view = first_run["view"]
    enroll = view.steps[f"enroll/{BAD}"]
    assert enroll.state == StepState.FAILED
    assert "manage did not reach manageable" in (enroll.error or "")
    assert "401" in (enroll.error or "") and "Incorrect username or password" in (
        enroll.error or ""
    )
    later = [
        v.state for sid, v in view.steps.items() if sid.endswith(f"/{BAD}") and sid != enroll.id
    ]
    assert StepState.SUCCEEDED not in later
    assert baremetal(ironic).get_node(BAD).provision_state == "enroll"


def test_planted_passwords_appear_in_no_log_journal_or_output(first_run, ironic):
    work: Path = first_run["work"]
    produced = [first_run["log"], first_run["events"], *sorted((work / "state").glob("*"))]
    produced += ironic.logs()  # Ironic's and the emulator's own logs too
    produced += sorted((work / "artifacts").rglob("*")) if (work / "artifacts").exists() else []
    assert first_run["log"].stat().st_size > 0  # DEBUG logging really ran
    plan_json = json.dumps(first_run["plan"].by_id[f"enroll/{BAD}"].param_dict)
    for secret in (PASSWORD, WRONG):
        assert secret not in plan_json
        for path in produced:
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), f"{secret} leaked into {path}"
        for v in first_run["view"].steps.values():
            assert secret not in json.dumps([v.output, v.error, v.hosts], default=str)


def test_rerun_after_fixing_the_password_continues_and_leaves_active_nodes_alone(
    first_run, ironic, nova, bed, tmp_path
):
    api = baremetal(ironic)
    before = {n: provision_updated_at(api, n) for n in GOOD}

    _, view, _ = run_scale_out(tmp_path, ironic, nova, {}, bed)

    assert set(v.state for v in view.steps.values()) == {StepState.SUCCEEDED}
    for node in GOOD:
        assert view.steps[f"deploy/{node}"].output["skipped"] is True
        assert provision_updated_at(api, node) == before[node]
    assert api.get_node(BAD).provision_state == "active"
    hdd = next(a for a in nova.state.aggregates.values() if a["name"] == "hdd")
    assert BAD in hdd["hosts"]


def test_new_ssd_servers_are_testbed_hosts_deployed_over_ssh_and_answer(first_run, bed):
    view = first_run["view"]
    cluster = grown_cluster(
        load_inventory(ROOT / "tests" / "data" / "demo-train"),
        load_nodes_file(first_run["work"] / "instackenv.json")[0],
        load_profiles(),
    )
    for node, address in TESTBED_HOSTS.items():
        deploy = view.steps[f"deploy-node/{node}"]
        assert deploy.output["playbook"] == "deploy-node" and deploy.output["rc"] == 0
        assert Path(deploy.output["artifacts"]).is_dir()  # a real ansible-runner call
        assert view.steps[f"health/{node}"].output["checked"] >= 1  # the real checks driver
        assert cluster.node(node).address == address
        answer = _ping(cluster, node, "nova-compute")
        assert answer is not None and answer["version"] == cluster.release
    recorded, hosts = manager.status(bed)
    assert recorded is not None and set(TESTBED_HOSTS) <= {h.name for h in hosts}
    assert all(h.ssh for h in hosts if h.name in TESTBED_HOSTS)  # recorded: `down` removes them


def _ping(cluster: Cluster, node: str, service: str) -> Any:
    return client.service_status(cluster, node, service, path="/ping")
