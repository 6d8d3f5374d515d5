"""Property tests of deploy plans over random inventories: every plan verifies, every service
instance is deployed exactly once, and the joins of one clustered store are totally ordered."""

from __future__ import annotations

import dataclasses
from itertools import combinations

from hypothesis import given
from hypothesis import strategies as st

from lifecycle.model import BmcSpec, Cluster
from lifecycle.planning import actions as act
from lifecycle.planning.deploy import DeployIntent, plan_deploy
from lifecycle.planning.ordering import Order
from lifecycle.planning.verifier import verify
from tests.unit.cluster_factory import lab_like
from tests.unit.test_planner_properties import SETTINGS, clusters

BMC = BmcSpec("redfish", "http://127.0.0.1:8000")


@st.composite
def inventories(draw: st.DrawFn) -> Cluster:
    """The upgrade property tests' random clusters, or a lab-like one of random size; some
    nodes with a BMC (provisioned through Ironic first)."""
    if draw(st.booleans()):
        cluster, _ = draw(clusters())
    else:
        sizes = [draw(st.integers(0, 4)) for _ in range(4)]
        cluster = lab_like(sizes[0], sizes[1], draw(st.sampled_from([1, 3, 5])), sizes[2], sizes[3])
    with_bmc = draw(st.sets(st.sampled_from([n.name for n in cluster.nodes])))
    nodes = tuple(
        dataclasses.replace(n, bmc=BMC) if n.name in with_bmc else n for n in cluster.nodes
    )
    return dataclasses.replace(cluster, nodes=nodes)


@SETTINGS
@given(inventories(), st.booleans())
def test_every_deploy_plan_verifies_and_deploys_each_instance_once(
    cluster: Cluster, provisioned: bool
) -> None:
    plan = plan_deploy(cluster, DeployIntent(provisioned=provisioned))
    assert verify(plan, cluster) == []
    deployed = [u for s in plan.steps if act.playbook(s) == "deploy-service" for u in s.upgrades]
    wanted = [f"{s}@{n}" for s, nodes in cluster.members.items() for n in nodes]
    assert sorted(deployed) == sorted(wanted)
    ironic = {s.nodes[0] for s in plan.steps if s.action == "baremetal.deploy"}
    assert ironic == (set() if provisioned else {n.name for n in cluster.nodes if n.bmc})


@SETTINGS
@given(inventories())
def test_the_members_of_a_store_are_deployed_one_after_another(cluster: Cluster) -> None:
    plan = plan_deploy(cluster)
    order = Order(plan)
    by_store: dict[str, list[str]] = {}
    for step in plan.steps:
        if act.playbook(step) == "deploy-service" and step.param("phase") in ("bootstrap", "join"):
            by_store.setdefault(str(step.param("service")), []).append(step.id)
    for service, steps in by_store.items():
        assert len(steps) == len(cluster.members[service])
        for a, b in combinations(steps, 2):
            assert order.ordered(a, b), f"{a} and {b} unordered"
