"""The deploy planner: its steps and their order, provisioning, and the deploy rules of the
verifier, each refusing a plan broken on purpose."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from lifecycle.errors import PlanningError, UnsupportedUpgrade
from lifecycle.formats.inventory import load_inventory
from lifecycle.model import BmcSpec, Cluster, NodeSpec, RoleSpec
from lifecycle.model.observed import REACHABLE, UNREACHABLE, NodeObservation, ObservedState
from lifecycle.planning import actions as act
from lifecycle.planning.deploy import DeployIntent, plan_deploy
from lifecycle.planning.ordering import Order
from lifecycle.planning.plan import Plan
from lifecycle.planning.verifier import verify
from tests.unit.cluster_factory import lab_like
from tests.unit.plan_surgery import drop, rebuild, rewire

ROOT = Path(__file__).resolve().parents[2]
DEMO = load_inventory(ROOT / "inventories" / "demo")


def _deps_without(plan: Plan, step: str, *gone: str) -> tuple[str, ...]:
    return tuple(d for d in plan.step(step).depends_on if d not in gone)


def _before(plan: Plan, *ids: str) -> None:
    order = Order(plan)
    for a, b in pairwise(ids):
        assert order.before(a, b), f"{a} must come before {b}"


def test_demo_deploy_follows_the_contracts_order() -> None:
    plan = plan_deploy(DEMO)
    assert plan.operation == "deploy" and plan.source is None and plan.target == "2024.1"
    assert plan.steps[0].id == "precheck/cluster" and plan.steps[-1].id == "postcheck/cluster"
    _before(
        plan,
        "deploy/ctl-0",
        "secrets/deploy",
        "start/haproxy",
        "bootstrap/galera/ctl-0",
        "health/galera/ctl-0",
        "join/galera/ctl-1",
        "health/galera/ctl-1",
        "join/galera/ctl-2",
        "health/galera/ctl-2",
        "db-create/keystone",
        "db-sync/keystone",
        "start/keystone",
        "keystone-bootstrap",
        "health/keystone",
        "start/placement-api",
        "health/placement-api",
        "start/nova-conductor",
        "start/nova-compute",
        "postcheck/cluster",
    )
    _before(plan, "keystone-keys", "start/keystone")
    _before(plan, "db-create/placement", "db-sync/placement", "start/placement-api")
    _before(plan, "bootstrap/rabbitmq/ctl-0", "health/rabbitmq/ctl-0", "join/rabbitmq/ctl-1")
    _before(plan, "health/ceph-mon/ctl-2", "start/ceph-mgr", "health/ceph-mgr", "start/ceph-osd")
    secrets = plan.step("secrets/deploy")
    assert secrets.param("bootstrap") == "ctl-0" and secrets.nodes == ("ctl-0", "ctl-1", "ctl-2")
    assert verify(plan, DEMO) == []


def test_deploy_service_steps_name_service_phase_and_release() -> None:
    plan = plan_deploy(DEMO, DeployIntent(release="epoxy"))
    assert plan.target == "2025.1"
    join = plan.step("join/galera/ctl-1")
    assert join.param_dict == {
        "playbook": "deploy-service",
        "service": "galera",
        "phase": "join",
        "release": "2025.1",
    }
    assert join.upgrades == ("galera@ctl-1",) and join.disrupts == ()
    osd = plan.step("start/ceph-osd")
    assert osd.param("ceph_release") == "reef" and osd.param("phase") == "start"
    gate = plan.step("health/galera/ctl-0")
    assert gate.param(act.PLANNED_AROUND) == ("ctl-1", "ctl-2")  # not joined yet
    assert gate.param("services") == ("galera",) and gate.param("release") == "2025.1"
    assert plan.step("health/galera/ctl-2").param(act.PLANNED_AROUND) is None
    sync = plan.step("db-sync/keystone")
    assert sync.param("phase") == "sync" and sync.param("playbook") == "db-migrate"


def test_stateless_services_start_on_all_members_in_one_step() -> None:
    plan = plan_deploy(DEMO)
    for service in ("haproxy", "memcached", "keystone", "nova-api", "nova-compute"):
        starts = [s for s in plan.steps if s.param("service") == service]
        assert [s.id for s in starts] == [f"start/{service}"]
        assert starts[0].nodes == DEMO.members[service]


def test_every_instance_is_deployed_exactly_once() -> None:
    plan = plan_deploy(DEMO)
    deployed = [u for s in plan.steps if act.playbook(s) == "deploy-service" for u in s.upgrades]
    wanted = [f"{s}@{n}" for s, nodes in DEMO.members.items() for n in nodes]
    assert sorted(deployed) == sorted(wanted)


def test_a_cluster_without_keystone_has_no_keystone_steps() -> None:
    roles = (RoleSpec("Controller", ("haproxy", "galera", "rabbitmq")),)
    nodes = tuple(NodeSpec(f"ctl-{i}", "Controller") for i in range(3))
    cluster = Cluster("small", "2024.1", roles, nodes)
    plan = plan_deploy(cluster)
    assert not [s.id for s in plan.steps if "keystone" in s.id or "db-" in s.id]
    assert not any(s.action.startswith("baremetal.") for s in plan.steps)  # no BMC: no Ironic
    assert verify(plan, cluster) == []


def test_nodes_with_a_bmc_are_provisioned_first_unless_provisioned() -> None:
    plan = plan_deploy(DEMO)
    for node in DEMO.nodes:
        _before(plan, f"enroll/{node.name}", f"provide/{node.name}", f"deploy/{node.name}")
    assert [s.id for s in plan.steps if s.id.startswith("enroll/")] == [
        f"enroll/{n.name}" for n in DEMO.nodes
    ]
    assert plan.step("enroll/ctl-0").depends_on == ("precheck/cluster",)
    assert "deploy/ctl-0" in plan.step("secrets/deploy").depends_on
    bare = plan_deploy(DEMO, DeployIntent(provisioned=True))
    assert not any(s.action.startswith("baremetal.") for s in bare.steps)
    assert verify(bare, DEMO) == []


def test_nodes_observed_reachable_are_not_provisioned() -> None:
    seen = ObservedState(
        "demo",
        "testbed",
        nodes=(
            NodeObservation("ctl-0", REACHABLE),
            NodeObservation("ctl-1", UNREACHABLE),
            *(NodeObservation(n.name, REACHABLE) for n in DEMO.nodes[2:]),
        ),
    )
    plan = plan_deploy(DEMO, observed=seen)
    ironic = {s.nodes[0] for s in plan.steps if s.action.startswith("baremetal.")}
    assert ironic == {"ctl-1"}
    assert dict(plan.extra)["provision"] == ("ctl-1",)
    assert verify(plan, DEMO) == []


def test_provisioning_names_nodes_without_a_bmc() -> None:
    with pytest.raises(PlanningError, match="ctl-0: has no bmc"):
        plan_deploy(lab_like(2, 2), DeployIntent(provision=("ctl-0",)))
    with pytest.raises(PlanningError, match="nope: not a node"):
        plan_deploy(DEMO, DeployIntent(provision=("nope",)))


def test_provision_only_the_nodes_asked_for() -> None:
    bmc = BmcSpec("redfish", "http://bmc")
    cluster = lab_like(1, 1)
    nodes = tuple(
        n if n.name != "ctl-1" else NodeSpec("ctl-1", n.role, bmc=bmc) for n in cluster.nodes
    )
    cluster = Cluster(
        cluster.name, cluster.release, cluster.roles, nodes, cluster.policies, "nautilus"
    )
    plan = plan_deploy(cluster)
    assert {s.nodes[0] for s in plan.steps if s.action.startswith("baremetal.")} == {"ctl-1"}


def test_an_unknown_release_is_refused() -> None:
    with pytest.raises(UnsupportedUpgrade, match="unknown openstack release"):
        plan_deploy(DEMO, DeployIntent(release="2099.9"))


# --- the deploy rules: each refuses a plan broken on purpose ----------------------------------


@pytest.fixture(scope="module")
def demo_plan() -> Plan:
    return plan_deploy(DEMO, DeployIntent(provisioned=True))


def _broken(plan: Plan, *changes: object) -> list[str]:
    return [str(v) for v in verify(rebuild(plan, *changes), DEMO)]  # type: ignore[arg-type]


def test_a_join_without_the_previous_members_gate_is_refused(demo_plan: Plan) -> None:
    found = _broken(demo_plan, rewire("join/galera/ctl-2", "join/galera/ctl-1"))
    assert any(
        "stores" in v
        and "join/galera/ctl-2 has no path from a health gate" in v
        and "join/galera/ctl-1" in v
        for v in found
    ), found


def test_two_unordered_joins_are_refused(demo_plan: Plan) -> None:
    found = _broken(demo_plan, rewire("join/rabbitmq/ctl-2", "health/rabbitmq/ctl-0"))
    assert any(
        "joins of rabbitmq unordered: join/rabbitmq/ctl-1 and join/rabbitmq/ctl-2" in v
        for v in found
    ), found


def test_a_join_without_a_path_from_the_bootstrap_is_refused(demo_plan: Plan) -> None:
    found = _broken(demo_plan, rewire("join/galera/ctl-1", "precheck/cluster"))
    assert any(
        "join/galera/ctl-1 has no path from the bootstrap bootstrap/galera/ctl-0" in v
        for v in found
    ), found


def test_a_schema_sync_without_its_database_is_refused(demo_plan: Plan) -> None:
    deps = _deps_without(demo_plan, "db-sync/keystone", "db-create/keystone")
    found = _broken(demo_plan, rewire("db-sync/keystone", *deps))
    assert any("db-sync/keystone runs without db-create/keystone" in v for v in found), found


def test_a_service_started_before_its_schema_is_refused(demo_plan: Plan) -> None:
    deps = _deps_without(demo_plan, "start/placement-api", "db-sync/placement")
    found = _broken(demo_plan, rewire("start/placement-api", *deps))
    assert any(
        "start/placement-api starts placement-api before db-sync/placement" in v for v in found
    ), found


def test_keystone_started_before_its_keys_is_refused(demo_plan: Plan) -> None:
    deps = _deps_without(demo_plan, "start/keystone", "keystone-keys")
    found = _broken(demo_plan, rewire("start/keystone", *deps))
    assert any("start/keystone starts keystone before keystone-keys" in v for v in found), found


def test_a_service_started_before_what_it_depends_on_is_refused(demo_plan: Plan) -> None:
    deps = _deps_without(demo_plan, "start/nova-conductor", "health/placement-api")
    found = _broken(demo_plan, rewire("start/nova-conductor", *deps))
    assert any(
        "order" in v
        and "start/nova-conductor starts nova-conductor before start/placement-api" in v
        for v in found
    ), found


def test_a_plan_without_its_precheck_or_a_service_is_refused(demo_plan: Plan) -> None:
    found = _broken(demo_plan, drop("precheck/cluster"))
    assert any("gates" in v and "without the precheck" in v for v in found), found
    found = _broken(demo_plan, drop("start/memcached"))
    assert any("once" in v and "never deployed: memcached@ctl-0" in v for v in found), found


def test_a_plan_that_ends_before_its_postcheck_is_refused(demo_plan: Plan) -> None:
    found = _broken(demo_plan, rewire("postcheck/cluster", "health/keystone"))
    assert any("is not followed by the postcheck" in v for v in found), found
