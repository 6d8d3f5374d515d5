"""Network nodes (issue 9, item 6): an L3 agent's routers and a DHCP agent's networks move to a
peer network node before their node is disrupted; where there is no peer, a warning, not a step.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pytest

from lifecycle.catalog import build_catalog, load_catalog
from lifecycle.cli.main import main
from lifecycle.drivers.ansible import AnsibleDriver
from lifecycle.drivers.base import StepContext
from lifecycle.drivers.compute import ComputeDriver
from lifecycle.drivers.sim import SimDriver, read_state
from lifecycle.errors import CatalogError
from lifecycle.execution.journal import MemoryJournal
from lifecycle.execution.states import RunState
from lifecycle.formats.inventory import load_inventory
from lifecycle.model import Cluster, MaxUnavailable, NodeSpec, Policies, RoleSpec
from lifecycle.planning import actions as act
from lifecycle.planning.plan import Plan, Step, freeze_params
from lifecycle.planning.preflight import Severity, preflight
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from lifecycle.planning.verifier import verify
from tests.unit.cluster_factory import lab_like
from tests.unit.field_cases import ROOT, case_dir
from tests.unit.neutron_standin import NeutronStandin
from tests.unit.test_engine_support import run_plan

AGENTS = ("neutron-l3-agent", "neutron-dhcp-agent", "neutron-metadata-agent", "neutron-ovs-agent")


def networkers(count: int, policies: Policies | None = None) -> Cluster:
    roles = (
        RoleSpec("Controller", ("haproxy", "galera", "rabbitmq", "keystone", "neutron-server")),
        RoleSpec("Networker", AGENTS),
    )
    nodes = tuple(NodeSpec(f"ctl-{i}", "Controller") for i in range(3)) + tuple(
        NodeSpec(f"net-{i}", "Networker") for i in range(count)
    )
    return Cluster("n", "train", roles, nodes, policies or Policies())


def dag(plan: Plan) -> nx.DiGraph:
    graph: nx.DiGraph = nx.DiGraph()
    graph.add_edges_from((d, s.id) for s in plan.steps for d in s.depends_on)
    return graph


def drains(plan: Plan) -> list[Step]:
    return [s for s in plan.steps if s.action == act.DRAIN_NETWORK]


# --- the catalog -------------------------------------------------------------------------------


def test_the_catalog_says_which_agents_make_a_network_node() -> None:
    carries = {n: s.carries for n, s in load_catalog().services.items() if s.carries}
    assert carries == {"neutron-l3-agent": "routers", "neutron-dhcp-agent": "networks"}


def test_the_catalog_refuses_an_unknown_carried_kind() -> None:
    raw = {
        "services": {"a": {"tier": "data", "carries": "ports"}},
        "steps": {"precheck": 1},
    }
    releases = {"openstack": {"releases": ["train"]}, "ceph": {"releases": ["nautilus"]}}
    with pytest.raises(CatalogError, match=r"services\.a\.carries"):
        build_catalog(raw, releases)


# --- planning ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cluster", [lab_like(), networkers(3)], ids=["lab", "three"])
def test_each_network_node_is_drained_before_it_is_disrupted(cluster: Cluster) -> None:
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"))
    assert verify(plan, cluster) == []
    graph = dag(plan)
    nets = cluster.members["neutron-l3-agent"]
    drained = {n: s for s in drains(plan) for n in s.nodes}
    assert sorted(drained) == sorted(nets)
    for node, drain in drained.items():
        assert not drain.disrupts and not drain.upgrades  # the agents keep running
        assert set(drain.param("agents") or ()) == {"neutron-l3-agent", "neutron-dhcp-agent"}
        assert node not in (drain.param("targets") or ())
        disruptive = [s for s in plan.steps if any(d.endswith(f"@{node}") for d in s.disrupts)]
        assert disruptive
        for step in disruptive:
            assert nx.has_path(graph, drain.id, step.id), f"{drain.id} !-> {step.id}"
    assert preflight(cluster) == []


def test_the_peer_is_back_before_a_node_is_drained_onto_it() -> None:
    plan = plan_upgrade(lab_like(), UpgradeIntent("ussuri"))
    graph = dag(plan)
    second = plan.step("drain-network/Networker/batch-2")
    assert second.param("targets") == ("net-0",)
    assert nx.has_path(graph, "health/Networker/batch-1", second.id)


def test_targets_are_every_other_node_of_any_moved_agent_sorted() -> None:
    """L3 and DHCP agents on different sets of nodes: a node's targets are the nodes outside its
    batch that run either agent, each once, sorted (not the L3 agent's peers alone)."""
    roles = (
        RoleSpec("Controller", ("haproxy", "galera", "rabbitmq", "keystone", "neutron-server")),
        RoleSpec("Both", ("neutron-l3-agent", "neutron-dhcp-agent", "neutron-ovs-agent")),
        RoleSpec("Routers", ("neutron-l3-agent", "neutron-ovs-agent")),
        RoleSpec("Dhcp", ("neutron-dhcp-agent", "neutron-ovs-agent")),
    )
    nodes = (
        *(NodeSpec(f"ctl-{i}", "Controller") for i in range(3)),
        NodeSpec("net-b", "Both"),
        NodeSpec("net-r", "Routers"),
        NodeSpec("net-d", "Dhcp"),
        NodeSpec("net-a", "Both"),
    )
    cluster = Cluster("n", "train", roles, nodes, Policies())
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"))
    assert verify(plan, cluster) == []
    targets = {s.nodes: s.param("targets") for s in drains(plan)}
    assert targets[("net-b",)] == ("net-a", "net-d", "net-r")
    assert targets[("net-r",)] == ("net-a", "net-b")  # its L3 agent's peers only
    assert targets[("net-d",)] == ("net-a", "net-b")


def test_no_peer_means_no_step_and_a_warning(tmp_path: Path, capsys) -> None:
    case = case_dir("network-node", tmp_path)
    cluster = load_inventory(case)
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"))
    assert drains(plan) == []
    (finding,) = preflight(cluster)
    assert finding.severity is Severity.WARNING and finding.subject == "net-0"
    assert "routers (neutron-l3-agent)" in finding.message
    assert main(["validate", "-i", str(case)]) == 0
    assert "warning: net-0: network node without a peer" in capsys.readouterr().out
    assert main(["plan", "upgrade", "-i", str(case), "--to", "ussuri"]) == 0
    captured = capsys.readouterr()
    assert "warning: net-0: network node without a peer" in captured.err
    assert "upgrade/Networker/batch-1" in captured.out


def test_peers_in_the_same_batch_are_no_peers() -> None:
    cluster = networkers(2, Policies(max_unavailable=MaxUnavailable(None, 100.0), canary=2))
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"))
    assert drains(plan) == []
    assert {f.subject for f in preflight(cluster)} == {"net-0", "net-1"}


def test_the_lab_inventory_drains_both_network_nodes(tmp_path: Path, capsys) -> None:
    lab = ROOT / "inventories" / "lab"
    plan = plan_upgrade(load_inventory(lab), UpgradeIntent("ussuri"))
    assert [s.id for s in drains(plan)] == [
        "drain-network/Networker/batch-1",
        "drain-network/Networker/batch-2",
    ]


# --- the sim driver ----------------------------------------------------------------------------


def test_sim_run_moves_routers_and_networks_and_cuts_none_off(tmp_path: Path) -> None:
    cluster = networkers(2)
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"))
    driver = SimDriver(state_dir=tmp_path, scale=0.0)
    view = run_plan(MemoryJournal(), plan, cluster, driver)
    assert view.state is RunState.SUCCEEDED
    state = read_state(tmp_path, cluster.name)
    assert state["cut_off"] == []
    routers = sorted(r for held in state["routers"].values() for r in held)
    assert routers == sorted(f"router-net-{i}-{j}" for i in range(2) for j in range(3))
    assert state["routers"]["net-1"] == []  # the last one drained went to net-0


def test_sim_without_a_peer_records_what_was_cut_off(tmp_path: Path) -> None:
    cluster = networkers(1)
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"))
    driver = SimDriver(state_dir=tmp_path, scale=0.0)
    assert run_plan(MemoryJournal(), plan, cluster, driver).state is RunState.SUCCEEDED
    cut = read_state(tmp_path, cluster.name)["cut_off"]
    assert "router-net-0-0" in cut and "network-net-0-0" in cut


def test_sim_drain_fails_when_the_peer_is_dead(tmp_path: Path) -> None:
    cluster = networkers(2)
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"))
    drain = plan.step("drain-network/Networker/batch-1")
    driver = SimDriver(state_dir=tmp_path, scale=0.0)
    ctx = StepContext(run_id="r", cluster=cluster)
    state = driver._state(cluster)
    state.data["dead"] = ["net-1"]
    result = driver.run(drain, ctx)
    assert not result.ok and "no live neutron-l3-agent" in (result.error or "")


# --- the compute driver, through openstacksdk, against a Neutron stand-in ------------------------


@pytest.fixture
def neutron() -> Iterator[NeutronStandin]:
    with NeutronStandin() as standin:
        st = standin.state
        for host in ("net-0", "net-1", "net-2"):
            st.add_agent("neutron-l3-agent", host, alive=host != "net-2")
            st.add_agent("neutron-dhcp-agent", host)
        st.held("neutron-l3-agent-net-0", "l3-routers").update({"r1", "r2", "r-ha"})
        st.held("neutron-l3-agent-net-1", "l3-routers").add("r-ha")
        st.ha.add("r-ha")
        st.held("neutron-dhcp-agent-net-0", "dhcp-networks").update({"n1", "n2"})
        st.held("neutron-dhcp-agent-net-1", "dhcp-networks").add("n2")  # already on two
        yield standin


def drain_step(*targets: str) -> Step:
    params = {"agents": ["neutron-l3-agent", "neutron-dhcp-agent"], "targets": list(targets)}
    return Step(id="drain-network/Networker/batch-1", action=act.DRAIN_NETWORK,
                phase="data-plane", nodes=("net-0",), params=freeze_params(params))  # fmt: skip


def test_compute_driver_moves_routers_then_networks(neutron: NeutronStandin) -> None:
    driver = ComputeDriver(network_endpoint=neutron.url)
    ctx = StepContext(run_id="r", cluster=networkers(3))
    step = drain_step("net-1", "net-2")
    try:
        assert driver.probe(step, ctx) is False
        result = driver.run(step, ctx)
        assert result.ok, result.error
        assert driver.probe(step, ctx) is True
    finally:
        driver.close()
    st = neutron.state
    assert st.held("neutron-l3-agent-net-0", "l3-routers") == {"r-ha"}  # HA: keepalived moves it
    assert st.held("neutron-l3-agent-net-1", "l3-routers") == {"r1", "r2", "r-ha"}
    assert st.held("neutron-l3-agent-net-2", "l3-routers") == set()  # its agent is dead
    assert st.held("neutron-dhcp-agent-net-0", "dhcp-networks") == set()
    dhcp = st.held("neutron-dhcp-agent-net-1", "dhcp-networks") | st.held(
        "neutron-dhcp-agent-net-2", "dhcp-networks"
    )
    assert dhcp == {"n1", "n2"}
    moved = result.hosts["net-0"]["moved"]
    assert moved["routers"] == {"r1": "net-1", "r2": "net-1"}
    # a legacy router is removed from its agent before it is added to the next (Neutron allows
    # one L3 agent per legacy router); a network is added before it is removed (no DHCP gap)
    calls = [c for c in st.calls if c[0] != "GET"]
    assert calls.index(("DELETE", "/v2.0/agents/neutron-l3-agent-net-0/l3-routers/r1")) < (
        calls.index(("POST", "/v2.0/agents/neutron-l3-agent-net-1/l3-routers"))
    )


def test_compute_driver_refuses_when_no_peer_answers(neutron: NeutronStandin) -> None:
    driver = ComputeDriver(network_endpoint=neutron.url)
    try:
        result = driver.run(drain_step("net-2"), StepContext(run_id="r", cluster=networkers(3)))
    finally:
        driver.close()
    assert not result.ok
    assert "no live, enabled neutron-l3-agent on net-2" in (result.error or "")
    assert neutron.state.held("neutron-l3-agent-net-0", "l3-routers") == {"r1", "r2", "r-ha"}


# --- the testbed's Ansible path (a stand-in playbook) ------------------------------------------


def test_testbed_routes_the_drain_to_a_stand_in_playbook(tmp_path: Path) -> None:
    driver = AnsibleDriver(state_dir=tmp_path)
    name, params = driver.playbook_for(drain_step("net-1"))
    assert name == "drain-network"
    assert params["agents"] == ["neutron-l3-agent", "neutron-dhcp-agent"]
    text = (ROOT / "lifecycle" / "testbed" / "playbooks" / "drain-network.yml").read_text()
    assert "STAND-IN" in text
