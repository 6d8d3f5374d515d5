"""API services on several controllers: a health gate after the first node (issue 9, item 5).

A new API that does not answer on its first controller must stop the rollout while the other
controllers still serve the old one; the gate is `health/<service>/<first-node>` and the second
member's upgrade waits for it.
"""

from __future__ import annotations

import networkx as nx
import pytest

from lifecycle.catalog import load_catalog
from lifecycle.model import Cluster, MaxUnavailable, Policies
from lifecycle.model.service import Quorum
from lifecycle.planning.plan import Plan
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from lifecycle.planning.verifier import verify
from tests.unit.cluster_factory import lab_like


def _dag(plan: Plan) -> nx.DiGraph:
    graph: nx.DiGraph = nx.DiGraph()
    for step in plan.steps:
        graph.add_node(step.id)
        graph.add_edges_from((dep, step.id) for dep in step.depends_on)
    return graph


def _chain(plan: Plan, service: str) -> list[str]:
    """The service's upgrade steps in plan order."""
    return [s.id for s in plan.steps if s.id.startswith(f"upgrade/{service}/")]


def _stateless_services(cluster: Cluster) -> list[str]:
    catalog = load_catalog()
    return [
        name
        for name, nodes in cluster.members.items()
        if len(nodes) >= 2
        and catalog.services[name].quorum is Quorum.NONE
        and not catalog.services[name].is_data_plane
        and not catalog.services[name].ceph
    ]


@pytest.mark.parametrize(
    "policies",
    [None, Policies(max_unavailable=MaxUnavailable(2))],
    ids=["max_unavailable-1", "max_unavailable-2"],
)
def test_first_member_of_each_api_service_is_a_gated_canary(policies: Policies | None) -> None:
    cluster = lab_like(computes_hdd=2, computes_ssd=2, ceph=3, policies=policies)
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"))
    assert verify(plan, cluster) == []
    services = _stateless_services(cluster)
    assert {"keystone", "nova-api", "haproxy", "horizon"} <= set(services)
    for service in services:
        first, second, *_ = _chain(plan, service)
        node = plan.step(first).nodes
        assert len(node) == 1, f"{first} is not one node"
        gate = plan.step(f"health/{service}/{node[0]}")
        assert gate.depends_on == (first,)
        assert gate.id in plan.step(second).depends_on


def test_the_canary_is_an_ancestor_of_every_other_member() -> None:
    cluster = lab_like(controllers=5, computes_hdd=2, computes_ssd=2, ceph=3)
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"))
    graph = _dag(plan)
    first, *rest = _chain(plan, "keystone")
    gate = f"health/keystone/{plan.step(first).nodes[0]}"
    assert rest and all(nx.has_path(graph, gate, later) for later in rest)


def test_quorum_services_keep_their_gate_after_every_member() -> None:
    cluster = lab_like(computes_hdd=2, computes_ssd=2, ceph=3)
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"))
    for step_id in _chain(plan, "galera"):
        node = plan.step(step_id).nodes[0]
        assert f"health/galera/{node}" in plan.by_id


def test_a_lone_api_member_has_one_gate() -> None:
    cluster = lab_like(controllers=1, computes_hdd=2, computes_ssd=2, ceph=3)
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"))
    gates = [s.id for s in plan.steps if s.id.startswith("health/keystone/")]
    assert gates == ["health/keystone/ctl-0"]
