"""The verifier proves the DAG, not one timeline (issue 9 items 1-5a).

Each fault is built twice where it can be: from the field case under ../shared/cases (skipped when
that folder is absent) and by surgery on the planner's own plan, keeping the old start times so
that only the DAG, not the schedule, shows the fault (the engine follows only the DAG).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.plan_json import plan_from_json
from lifecycle.model import Cluster, MaxUnavailable, NodeSpec, Policies, RoleSpec
from lifecycle.planning import actions as act
from lifecycle.planning.ordering import Order
from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from lifecycle.planning.verifier import verify
from tests.unit.cluster_factory import lab_like
from tests.unit.plan_surgery import drop, rebuild, rewire

ROOT = Path(__file__).resolve().parents[2]


def _cases() -> Path | None:
    """../shared/cases from the repository root (or from its worktree folder)."""
    candidates = [os.environ.get("LIFECYCLE_CASES", ""), ROOT.parent / "shared" / "cases"]
    candidates.append(ROOT.parent.parent / "shared" / "cases")
    for candidate in candidates:
        if candidate and (Path(candidate) / "lab" / "cluster.yaml").exists():
            return Path(candidate)
    return None


CASES = _cases()
needs_cases = pytest.mark.skipif(CASES is None, reason="../shared/cases is not here")


def case(path: str) -> tuple[Plan, Cluster]:
    assert CASES is not None
    plan = plan_from_json((CASES / path).read_text())
    return plan, load_inventory(CASES / "lab")


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    return lab_like(computes_hdd=4, computes_ssd=4, ceph=4)


@pytest.fixture(scope="module")
def plan(cluster: Cluster) -> Plan:
    return plan_upgrade(cluster, UpgradeIntent("ussuri", "octopus"))


def same_times(plan: Plan, *changes) -> Plan:
    """The plan with its steps changed but every start time kept: the schedule still looks safe."""
    steps = list(plan.steps)
    for change in changes:
        steps = change(steps)
    starts = dict(zip((s.id for s in plan.steps), plan.starts, strict=True))
    return dataclasses.replace(plan, steps=tuple(steps), starts=tuple(starts[s.id] for s in steps))


def found(plan: Plan, cluster: Cluster, rule: str) -> list[str]:
    return [v.message for v in verify(plan, cluster) if v.rule == rule]


# --- item 1: every order, not the one schedule ---


def test_galera_members_unordered_by_the_dag_are_refused_though_times_differ(plan, cluster):
    broken = same_times(plan, rewire("upgrade/galera/ctl-1", "precheck/cluster"))
    assert broken.start_of["upgrade/galera/ctl-1"] >= broken.end_of("upgrade/galera/ctl-0")
    messages = found(broken, cluster, "quorum")
    assert any(
        "galera has 2 of 3 members down" in m
        and "upgrade/galera/ctl-0" in m
        and "upgrade/galera/ctl-1" in m
        for m in messages
    )


@needs_cases
def test_case_verify_any_order_is_refused():
    plan, cluster = case("verify-any-order/plan-galera-edge-dropped.json")
    messages = found(plan, cluster, "quorum")
    assert any("upgrade/galera/ctl-0, upgrade/galera/ctl-1 are not ordered" in m for m in messages)


def test_capacity_counts_hosts_of_unordered_batches(plan, cluster):
    # hdd allows 2 hosts out; its second batch (2 hosts) no longer waits for the first (1 host)
    broken = same_times(plan, rewire("evacuate/hdd/batch-2", "health/control-plane"))
    messages = found(broken, cluster, "capacity")
    assert any(
        "aggregate:hdd can have 3 hosts out at once; max_unavailable is 2" in m for m in messages
    )


def test_capacity_accepts_unordered_steps_within_the_limit():
    roles = (RoleSpec("Compute", ("neutron-ovs-agent",), aggregate="a"),)
    nodes = tuple(NodeSpec(f"h{i}", "Compute") for i in range(3))
    policies = Policies(max_unavailable=MaxUnavailable(2))
    tiny = Cluster("tiny", "train", roles, nodes, policies)

    def up(node: str, *deps: str) -> Step:
        return act.make_step(
            f"up/{node}",
            act.PLAYBOOK,
            "data-plane",
            {"playbook": act.UPGRADE_NODE},
            nodes=(node,),
            disrupts=(f"neutron-ovs-agent@{node}",),
            depends_on=deps,
            duration=10,
        )

    two = same_times(_plan([up("h0"), up("h1")]))
    assert not [v for v in verify(two, tiny) if v.rule == "capacity"]
    three = _plan([up("h0"), up("h1"), up("h2")])
    assert any("can have 3 hosts out" in v.message for v in verify(three, tiny))
    chained = _plan([up("h0"), up("h1"), up("h2", "up/h0")])
    assert not [v for v in verify(chained, tiny) if v.rule == "capacity"]


def _plan(steps: list[Step]) -> Plan:
    from lifecycle.planning.scheduler import build_plan

    return build_plan("t", "tiny", steps)


def test_ceph_failure_domains_unordered_are_refused(plan, cluster):
    broken = same_times(plan, rewire("upgrade/ceph-osd/rack2", "ceph/noout-set"))
    assert any("2 failure domains down (rack1, rack2)" in m for m in found(broken, cluster, "ceph"))


def test_one_instance_disrupted_by_two_unordered_steps_is_refused(plan, cluster):
    twin = dataclasses.replace(
        plan.step("upgrade/horizon/ctl-0"), id="restart/horizon/ctl-0", upgrades=()
    )
    # scheduled after everything else, so the one timeline never overlaps the two
    broken = dataclasses.replace(
        plan, steps=(*plan.steps, twin), starts=(*plan.starts, plan.makespan + 1)
    )
    assert any("horizon@ctl-0 disrupted twice at once" in m for m in found(broken, cluster, "plan"))


def test_order_between_services_is_proved_on_the_dag(plan, cluster):
    # keystone waits only for the precheck: its start time still follows galera, its DAG does not
    broken = same_times(plan, rewire("upgrade/keystone/ctl-1", "precheck/cluster"))
    assert any("before every galera is at ussuri" in m for m in found(broken, cluster, "order"))


def test_the_planners_plans_verify_clean_for_several_hops(cluster):
    for intent in (UpgradeIntent("victoria", "quincy"), UpgradeIntent("wallaby", "pacific")):
        assert verify(plan_upgrade(cluster, intent), cluster) == []


# --- item 2: invariants over intervals ---


def test_noout_unset_before_the_last_osd_domain_is_refused(plan, cluster):
    broken = same_times(plan, rewire("ceph/noout-unset", "health/ceph-osd/rack1"))
    messages = found(broken, cluster, "ceph")
    assert any("upgrade/ceph-osd/rack2 may be down without noout" in m for m in messages)


def test_a_per_host_noout_flag_covers_only_its_hosts(plan, cluster):
    def scoped(nodes: tuple[str, ...]):
        def change(steps: list[Step]) -> list[Step]:
            out = []
            for s in steps:
                if act.is_noout(s, "set") or act.is_noout(s, "unset"):
                    s = dataclasses.replace(s, nodes=nodes, params=(*s.params, ("scope", "host")))
                out.append(s)
            return out

        return change

    osd_hosts = tuple(
        sorted(
            {d.split("@")[1] for s in plan.steps for d in s.disrupts if d.startswith("ceph-osd@")}
        )
    )
    assert not found(same_times(plan, scoped(osd_hosts)), cluster, "ceph")
    messages = found(same_times(plan, scoped(osd_hosts[:1])), cluster, "ceph")
    assert any("without noout set before it" in m for m in messages)


@needs_cases
@pytest.mark.parametrize("name", ["plan-b2-unset-midway.json", "plan-b-unset-early.json"])
def test_case_noout_held_is_refused(name):
    plan, cluster = case(f"noout-held/{name}")
    messages = found(plan, cluster, "ceph")
    assert any("without noout" in m and "ceph/noout-unset" in m for m in messages)


def test_quorum_member_without_a_rejoin_gate_is_refused(plan, cluster):
    broken = same_times(plan, drop("health/galera/ctl-0"))
    messages = found(broken, cluster, "gates")
    assert any("no health gate for upgrade/galera/ctl-0" in m for m in messages)


@needs_cases
def test_case_quorum_rejoin_is_refused():
    plan, cluster = case("quorum-rejoin/plan-galera-nogate.json")
    messages = found(plan, cluster, "gates")
    assert any(
        "no health gate for upgrade/galera/ctl-0 (ctl-0) before upgrade/galera/ctl-1" in m
        for m in messages
    )


# --- item 3: across hops ---


def test_ceph_hops_set_require_osd_release_between_them(cluster):
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri", "quincy"))
    order = Order(plan)
    first = "ceph-pacific/ceph/require-osd-release"
    assert plan.step(first).param("release") == "pacific"
    for step in plan.steps:
        if step.id.startswith("ceph-quincy/upgrade/"):
            assert order.before(first, step.id)
        if step.id.startswith("ceph-pacific/upgrade/ceph-osd/"):
            assert order.before(step.id, first)


def test_a_ceph_hop_before_the_previous_one_finished_is_refused(cluster):
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri", "quincy"))
    first_mon = next(s.id for s in plan.steps if s.id.startswith("ceph-quincy/upgrade/ceph-mon/"))
    broken = same_times(
        plan, rewire(first_mon, "precheck/cluster", "ceph-pacific/health/ceph-mon/ctl-2")
    )
    messages = found(broken, cluster, "order")
    assert any("before every Ceph daemon finished the hop to pacific" in m for m in messages)
    no_flag = rebuild(plan, drop("ceph-pacific/ceph/require-osd-release"))
    assert any("no require-osd-release pacific" in m for m in found(no_flag, cluster, "order"))


def test_an_openstack_hop_before_its_dependencies_finished_the_hop_is_refused(cluster):
    plan = plan_upgrade(cluster, UpgradeIntent("victoria"))
    broken = same_times(
        plan, rewire("victoria/upgrade/keystone/ctl-1", "ussuri/health/control-plane")
    )
    messages = found(broken, cluster, "order")
    assert any("keystone -> victoria before every galera is at victoria" in m for m in messages)


# --- item 4: database contract after all code is new ---


def test_contract_waits_for_the_data_plane(plan, cluster):
    order = Order(plan)
    for step in plan.steps:
        if step.id.startswith(("upgrade/hdd/", "upgrade/ssd/")):
            assert order.before(step.id, "db-contract/nova")
        if step.id.startswith("upgrade/Networker/"):
            assert order.before(step.id, "db-contract/neutron")


def test_contract_before_the_computes_is_refused(plan, cluster):
    broken = same_times(plan, rewire("db-contract/nova", "db-expand/nova", "health/control-plane"))
    messages = found(broken, cluster, "database")
    assert any("nova schema contracted for ussuri while nova-compute" in m for m in messages)


@needs_cases
def test_case_db_contract_as_planned_is_refused():
    plan, cluster = case("db-contract/plan-as-planned.json")
    messages = found(plan, cluster, "database")
    assert any("nova schema contracted" in m and "nova-compute" in m for m in messages)
    assert any("neutron schema contracted" in m and "neutron-ovs-agent" in m for m in messages)
    fixed = plan_upgrade(cluster, UpgradeIntent("ussuri"))
    assert verify(fixed, cluster) == []


def test_a_plan_without_its_db_expand_step_is_refused(plan, cluster):
    broken = rebuild(plan, drop("db-expand/nova"))
    messages = found(broken, cluster, "database")
    assert any("before the nova schema was expanded for ussuri" in m for m in messages)


# --- item 5a: the catalog can invert "control first" ---


def ovn_cluster() -> Cluster:
    roles = (
        RoleSpec(
            "Controller", ("haproxy", "galera", "rabbitmq", "ovn-dbs", "keystone", "neutron-server")
        ),
        RoleSpec("Compute", ("nova-compute", "ovn-controller"), aggregate="default"),
    )
    nodes = tuple(NodeSpec(f"ctl-{i}", "Controller", failure_domain=f"r{i}") for i in range(3))
    nodes += tuple(NodeSpec(f"cmp-{i}", "Compute", failure_domain=f"r{i}") for i in range(3))
    return Cluster("ovn", "wallaby", roles, nodes, Policies(max_unavailable=MaxUnavailable(1)))


def test_ovn_controller_goes_before_the_ovn_databases():
    cluster = ovn_cluster()
    plan = plan_upgrade(cluster, UpgradeIntent("xena"))
    order = Order(plan)
    controllers = [s.id for s in plan.steps if "ovn-controller@cmp-0" in s.upgrades]
    dbs = [s.id for s in plan.steps if any(u.startswith("ovn-dbs@") for u in s.upgrades)]
    assert controllers and dbs
    assert all(order.before(c, d) for c in controllers for d in dbs)
    assert verify(plan, cluster) == []
    assert verify(plan_upgrade(cluster, UpgradeIntent("yoga")), cluster) == []


def test_ovn_databases_before_ovn_controller_are_refused():
    cluster = ovn_cluster()
    plan = plan_upgrade(cluster, UpgradeIntent("xena"))
    first_db = next(s.id for s in plan.steps if s.id.startswith("upgrade/ovn-dbs/"))
    broken = same_times(plan, rewire(first_db, "precheck/cluster"))
    messages = found(broken, cluster, "order")
    assert any("ovn-dbs -> xena before every ovn-controller is at xena" in m for m in messages)


@needs_cases
def test_case_ovn_order_with_ovn_controller_named():
    assert CASES is not None
    text = (CASES / "ovn-order" / "cluster.yaml").read_text()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"lifecycle-ovn-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    (tmp / "cluster.yaml").write_text(text.replace("neutron-ovs-agent", "ovn-controller"))
    cluster = load_inventory(tmp)
    plan = plan_upgrade(cluster, UpgradeIntent("xena"))
    first = min(plan.scheduled(), key=lambda pair: pair[1] if pair[0].upgrades else 1e18)[0]
    assert first.id.startswith("upgrade/ovn-controller/")
    assert verify(plan, cluster) == []


# --- the control-plane canary (rule "gates", made by the planner branch) ---


def with_canary(plan: Plan, cluster: Cluster) -> Plan:
    """The plan with a health gate after the first member of each stateless control service."""
    steps = list(plan.steps)
    for service, nodes in cluster.members.items():
        spec = plan_catalog().services[service]
        if spec.tier.name != "CONTROL" or spec.quorum.value != "none" or len(nodes) < 2:
            continue
        mine = [s for s in steps if any(d.startswith(f"{service}@") for d in s.disrupts)]
        first, second = mine[0], mine[1]
        gate = act.make_step(
            f"health/{service}/{first.nodes[0]}",
            act.HEALTH,
            first.phase,
            {"services": [service], "release": "ussuri"},
            nodes=first.nodes,
            depends_on=(first.id,),
            duration=30,
        )
        if any(s.id == gate.id for s in steps):
            continue
        steps.insert(steps.index(first) + 1, gate)
        steps = [
            dataclasses.replace(s, depends_on=(*s.depends_on, gate.id)) if s.id == second.id else s
            for s in steps
        ]
    return rebuild(plan, lambda _: steps)


def plan_catalog():
    from lifecycle.catalog import load_catalog

    return load_catalog()


def test_control_canary_is_required(plan, cluster):
    first = next(s for s in plan.steps if s.id.startswith("upgrade/keystone/"))
    gate = f"health/keystone/{first.nodes[0]}"
    last = [s.id for s in plan.steps if s.id.startswith("health/keystone/")][-1]
    # the planner branch adds this gate; without it (or with it removed) the plan is refused
    without = rebuild(plan, drop(gate)) if gate in plan.by_id and gate != last else plan
    messages = found(without, cluster, "gates")
    assert any(f"no health gate for {first.id}" in m and "canary" in m for m in messages)
    assert verify(with_canary(without, cluster), cluster) == []
