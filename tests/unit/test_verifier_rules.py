"""Each safety rule has a plan that breaks it, and the verifier names the rule and the moment."""

from __future__ import annotations

import dataclasses

import pytest

from lifecycle.errors import UnsafePlan
from lifecycle.model import Cluster, Evacuate, MaxUnavailable, NodeSpec, Policies, RoleSpec
from lifecycle.planning import actions as act
from lifecycle.planning.plan import Plan
from lifecycle.planning.scheduler import build_plan
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from lifecycle.planning.verifier import check_safe, verify
from tests.unit.cluster_factory import lab_like
from tests.unit.plan_surgery import drop, rebuild, replace, rewire, unlink


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    return lab_like(computes_hdd=4, computes_ssd=4, ceph=4)


@pytest.fixture(scope="module")
def plan(cluster: Cluster) -> Plan:
    return plan_upgrade(cluster, UpgradeIntent("ussuri", "octopus"))


def rules(plan: Plan, cluster: Cluster) -> set[str]:
    return {v.rule for v in verify(plan, cluster)}


def test_the_planner_plan_is_safe(plan: Plan, cluster: Cluster) -> None:
    assert verify(plan, cluster) == []


def test_quorum_fires_when_two_galera_members_go_down_together(plan, cluster) -> None:
    broken = rebuild(plan, rewire("upgrade/galera/ctl-1", "precheck/cluster"))
    found = [v for v in verify(broken, cluster) if v.rule == "quorum"]
    assert found and "galera has 2 of 3 members down" in found[0].message
    assert found[0].time == broken.start_of[found[0].step]


def test_availability_fires_when_every_keystone_is_down(plan, cluster) -> None:
    keystone = [s.id for s in plan.steps if s.id.startswith("upgrade/keystone/")]
    moment = plan.start_of[keystone[0]]
    starts = tuple(moment if s.id in keystone else t for s, t in plan.scheduled())
    broken = dataclasses.replace(plan, starts=starts)
    found = [v for v in verify(broken, cluster) if v.rule == "availability"]
    assert found and "keystone has 3 of 3 members down" in found[0].message


def test_capacity_fires_when_an_aggregate_has_too_many_hosts_out(plan, cluster) -> None:
    broken = rebuild(plan, rewire("evacuate/hdd/batch-2", "health/control-plane"))
    found = [v for v in verify(broken, cluster) if v.rule == "capacity"]
    assert (
        found and "aggregate:hdd" in found[0].message and "max_unavailable is 2" in found[0].message
    )


def test_evacuation_fires_when_a_compute_is_upgraded_with_its_instances(plan, cluster) -> None:
    broken = rebuild(plan, drop("evacuate/ssd/batch-2"), drop("enable/ssd/batch-2"))
    found = [v for v in verify(broken, cluster) if v.rule == "evacuation"]
    assert found and found[0].step == "upgrade/ssd/batch-2"


def test_no_evacuation_needed_when_policy_says_none(cluster) -> None:
    relaxed = dataclasses.replace(
        cluster, policies=dataclasses.replace(cluster.policies, evacuate=Evacuate.NONE)
    )
    plan = plan_upgrade(relaxed, UpgradeIntent("ussuri"))
    assert not any(s.action == act.EVACUATE for s in plan.steps)
    assert verify(plan, relaxed) == []


def test_ceph_fires_when_two_failure_domains_are_down(plan, cluster) -> None:
    broken = rebuild(plan, rewire("upgrade/ceph-osd/rack2", "ceph/noout-set"))
    found = [v for v in verify(broken, cluster) if v.rule == "ceph"]
    assert found and "2 failure domains down (rack1, rack2)" in found[0].message


def test_ceph_fires_when_osds_restart_without_noout(plan, cluster) -> None:
    broken = rebuild(plan, drop("ceph/noout-set"))
    found = [v for v in verify(broken, cluster) if v.rule == "ceph"]
    assert found and "without noout" in found[0].message


def test_order_fires_when_control_starts_before_infra(plan, cluster) -> None:
    broken = rebuild(
        plan,
        rewire("upgrade/keystone/ctl-1", "db-expand/keystone"),
        rewire("db-expand/keystone", "precheck/cluster"),
    )
    found = [v for v in verify(broken, cluster) if v.rule == "order"]
    assert any("before every galera is at ussuri" in v.message for v in found)


def test_order_fires_when_the_data_plane_leads_the_control_plane(plan, cluster) -> None:
    broken = rebuild(plan, rewire("evacuate/hdd/batch-1", "precheck/cluster"))
    assert "order" in rules(broken, cluster)


def test_order_fires_when_ceph_osd_goes_before_ceph_mon(plan, cluster) -> None:
    broken = rebuild(plan, rewire("ceph/noout-set", "precheck/cluster"))
    found = [v for v in verify(broken, cluster) if v.rule == "order"]
    assert any("ceph-osd" in v.message for v in found)


def test_database_fires_when_code_runs_before_the_schema_is_expanded(plan, cluster) -> None:
    broken = rebuild(
        plan, unlink("db-expand/nova"), rewire("db-expand/nova", "health/control-plane")
    )
    found = [v for v in verify(broken, cluster) if v.rule == "database"]
    assert any("nova schema was expanded" in v.message for v in found)


def test_database_fires_when_the_schema_is_contracted_too_early(plan, cluster) -> None:
    broken = rebuild(plan, rewire("db-contract/nova", "db-expand/nova"))
    found = [v for v in verify(broken, cluster) if v.rule == "database"]
    assert any("contracted" in v.message for v in found)


def test_once_fires_when_an_instance_is_upgraded_twice(plan, cluster) -> None:
    step = plan.step("upgrade/horizon/ctl-0")
    twin = dataclasses.replace(
        step, id="upgrade/horizon/ctl-0-again", depends_on=("postcheck/cluster",)
    )
    broken = rebuild(plan, lambda steps: [*steps, twin])
    found = [v for v in verify(broken, cluster) if v.rule == "once"]
    assert found and "horizon@ctl-0" in found[0].message


def test_once_fires_when_an_instance_is_forgotten(plan, cluster) -> None:
    broken = rebuild(plan, drop("upgrade/horizon/ctl-2"))
    found = [v for v in verify(broken, cluster) if v.rule == "once"]
    assert found and "horizon@ctl-2 upgraded through []" in found[0].message


def test_gates_fire_without_a_health_gate_between_batches(plan, cluster) -> None:
    broken = rebuild(plan, drop("health/ssd/batch-1"))
    found = [v for v in verify(broken, cluster) if v.rule == "gates"]
    assert any("no health gate for upgrade/ssd/batch-1" in v.message for v in found)


def test_gates_fire_when_the_canary_batch_is_too_big(plan, cluster) -> None:
    merged = plan.step("upgrade/hdd/batch-1")
    bigger = merged.nodes + plan.step("upgrade/hdd/batch-2").nodes[:1]
    instances = tuple(f"{s}@{n}" for n in bigger for s in ("nova-compute", "neutron-ovs-agent"))
    broken = rebuild(
        plan,
        replace(merged.id, nodes=bigger, upgrades=instances, disrupts=instances),
        replace("evacuate/hdd/batch-1", nodes=bigger),
        replace("enable/hdd/batch-1", nodes=bigger),
    )
    found = {v.message for v in verify(broken, cluster) if v.rule == "gates"}
    assert any("first batch of aggregate:hdd has 2 hosts; canary is 1" in m for m in found)


def test_gates_fire_without_precheck_and_postcheck(plan, cluster) -> None:
    broken = rebuild(plan, drop("precheck/cluster"), drop("postcheck/cluster"))
    messages = {v.message for v in verify(broken, cluster) if v.rule == "gates"}
    assert "no precheck before the first disruptive step" in messages
    assert "no postcheck after the last step" in messages


def test_dag_fires_when_a_step_starts_before_its_dependency_ends(plan, cluster) -> None:
    starts = list(plan.starts)
    index = [s.id for s in plan.steps].index("upgrade/galera/ctl-1")
    starts[index] = 0.0
    broken = dataclasses.replace(plan, starts=tuple(starts))
    assert "dag" in rules(broken, cluster)


def _two_node_cluster(release: str = "train") -> Cluster:
    roles = (
        RoleSpec("Controller", ("galera", "keystone", "nova-conductor")),
        RoleSpec("Compute", ("nova-compute",), aggregate="all"),
    )
    nodes = (NodeSpec("ctl-0", "Controller"), NodeSpec("cmp-0", "Compute"))
    return Cluster("tiny", release, roles, nodes, Policies(max_unavailable=MaxUnavailable(1)))


def test_skew_fires_when_conductor_runs_two_releases_ahead_of_computes() -> None:
    cluster = _two_node_cluster()

    def up(service: str, node: str, release: str, *deps: str) -> object:
        return act.make_step(
            f"{release}/{service}/{node}",
            act.PLAYBOOK,
            "control-plane",
            {"playbook": act.UPGRADE_SERVICE, "service": service, "release": release},
            nodes=(node,),
            upgrades=(f"{service}@{node}",),
            disrupts=(f"{service}@{node}",),
            depends_on=deps,
            duration=10,
        )

    steps = [
        up("nova-conductor", "ctl-0", "ussuri"),
        up("nova-conductor", "ctl-0", "victoria", "ussuri/nova-conductor/ctl-0"),
    ]
    plan = build_plan("upgrade", "tiny", steps)  # type: ignore[arg-type]
    found = [v for v in verify(plan, cluster) if v.rule == "skew"]
    assert found and "nova-compute is still at train" in found[0].message


def test_check_safe_refuses_unless_forced(plan, cluster) -> None:
    broken = rebuild(plan, rewire("upgrade/galera/ctl-1", "precheck/cluster"))
    with pytest.raises(UnsafePlan) as info:
        check_safe(broken, cluster)
    assert info.value.exit_code == 3 and "quorum" in str(info.value)
    overridden = check_safe(broken, cluster, force=True)
    assert any(v.rule == "quorum" for v in overridden)


def test_two_member_galera_cannot_be_upgraded_without_losing_quorum() -> None:
    roles = (RoleSpec("Controller", ("galera",)),)
    nodes = (NodeSpec("ctl-0", "Controller"), NodeSpec("ctl-1", "Controller"))
    cluster = Cluster("pair", "train", roles, nodes)
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"))
    found = [v for v in verify(plan, cluster) if v.rule == "quorum"]
    assert found and "galera has 1 of 2 members down" in found[0].message


def test_a_dependency_cycle_is_named_even_when_the_steps_are_listed_in_order(plan, cluster):
    """A step made to depend on a later step closes a cycle: refused as `dag`, naming it."""
    first, later = plan.steps[1], plan.steps[5]
    looped = dataclasses.replace(first, depends_on=(*first.depends_on, later.id))
    steps = tuple(looped if s.id == first.id else s for s in plan.steps)
    cyclic = dataclasses.replace(plan, steps=steps)
    found = [v for v in verify(cyclic, cluster) if v.rule == "dag" and "cycle" in v.message]
    assert found and first.id in found[0].message and later.id in found[0].message
