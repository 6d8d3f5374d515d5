"""Planning from the observed state: what is left, in a safe order, around nodes that are down.

The property tests draw any valid cluster (test_planner_properties.clusters), then a random
observed state: each instance at a random release between the inventory's and the target, random
nodes unreachable. Every plan the planner makes from it is verified safe (the verifier
unchanged, on the plan's verification view), never upgrades an instance again at a release it
already runs, never touches a node that is down; where it refuses, each refusal names a down
node.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from lifecycle.catalog import load_catalog
from lifecycle.errors import UnsafePlan, UnsupportedUpgrade
from lifecycle.formats.inventory import load_inventory
from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import (
    NOT_RUNNING,
    REACHABLE,
    UNREACHABLE,
    InstanceObservation,
    NodeObservation,
    ObservedState,
)
from lifecycle.planning import actions as act
from lifecycle.planning.observed import OBSERVED_DOWN, observed_refusals, verification_view
from lifecycle.planning.plan import Plan
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from lifecycle.planning.verifier import verify
from tests.unit.test_planner_properties import clusters

CATALOG = load_catalog()
DEMO = "tests/data/demo-train"
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def observation(
    cluster: Cluster, releases: dict[str, str] | None = None, down: tuple[str, ...] = ()
) -> ObservedState:
    """Every node reachable but `down`; every instance at the inventory's release unless
    `releases` says otherwise."""
    releases = releases or {}
    instances = []
    for service, nodes in cluster.members.items():
        default = cluster.ceph_release if CATALOG.services[service].ceph else cluster.release
        for node in nodes:
            text = f"{service}@{node}"
            instances.append(InstanceObservation(service, node, releases.get(text, default or "")))
    return ObservedState(
        cluster.name,
        "test",
        nodes=tuple(
            NodeObservation(n.name, UNREACHABLE if n.name in down else REACHABLE)
            for n in cluster.nodes
        ),
        instances=tuple(instances),
    )


def upgrades(plan: Plan) -> list[tuple[str, str]]:
    """(instance, release) of every real upgrade (not the confirmations of observed work)."""
    return [
        (text, str(s.param("release")))
        for s in plan.steps
        if s.action != act.HEALTH
        for text in s.upgrades
    ]


def index_of(text: str, release: str) -> int:
    service = text.partition("@")[0]
    train = CATALOG.ceph if CATALOG.services[service].ceph else CATALOG.openstack
    return train.get(release).index


@st.composite
def observed_cases(
    draw: st.DrawFn, down_among: str = "any"
) -> tuple[Cluster, UpgradeIntent, ObservedState]:
    """`down_among`: "any" node, or only "data"-plane hosts and OSD hosts (so that more plans
    are made around them rather than refused)."""
    cluster, intent = draw(clusters())
    releases = {}
    lean = draw(st.sampled_from([min, max]))  # most instances behind, or most already there
    for service, nodes in cluster.members.items():
        ceph = CATALOG.services[service].ceph
        train = CATALOG.ceph if ceph else CATALOG.openstack
        start = cluster.ceph_release if ceph else cluster.release
        goal = intent.ceph_target if ceph else intent.target
        if start is None:
            continue
        low = train.get(start).index
        high = train.get(goal).index if goal else low
        for node in nodes:
            index = lean(draw(st.integers(low, high)), draw(st.integers(low, high)))
            releases[f"{service}@{node}"] = train.releases[index].name
    stopped = draw(st.lists(st.sampled_from(sorted(releases) or ["-"]), max_size=2, unique=True))
    releases.update({text: NOT_RUNNING for text in stopped if text in releases})
    names = [n.name for n in cluster.nodes if down_among == "any" or n.role != "Controller"]
    assume(names)
    some = draw(st.booleans()) or down_among != "any"
    down = tuple(
        draw(st.lists(st.sampled_from(names), min_size=int(some), max_size=2 * some, unique=True))
    )
    return cluster, intent, observation(cluster, releases, down)


def _plan_or_refusal(cluster, intent, observed):
    try:
        return plan_upgrade(cluster, intent, observed=observed)
    except UnsupportedUpgrade as exc:
        assume("nothing left" not in str(exc))  # every live instance already there
        raise
    except UnsafePlan as exc:
        down = set(observed.unreachable) | {
            i.node for i in observed.instances if i.release == NOT_RUNNING
        }
        assert down, "refused without any node down or service stopped"
        for refusal in exc.violations:
            named = {n.strip() for n in refusal.node.split(",")}
            assert named <= down and named, refusal
            assert refusal.rule in ("quorum", "availability", "capacity", "ceph", "skew")
        return None


@SETTINGS
@given(observed_cases())
def test_plans_from_any_observed_state_are_safe_and_never_repeat_work(case) -> None:
    cluster, intent, observed = case
    plan = _plan_or_refusal(cluster, intent, observed)
    event("refused" if plan is None else "planned")
    if plan is None:
        return
    event("with confirmations" if any(s.id.startswith("confirm") for s in plan.steps) else "none")
    event("around down nodes" if observed.unreachable else "all reachable")
    assert verify(plan, verification_view(cluster, plan)) == []
    seen = {i.instance: i.release for i in observed.instances}
    for text, release in upgrades(plan):  # each upgrade moves an instance forward
        if seen[text] == NOT_RUNNING:
            continue  # planned as the inventory says
        assert index_of(text, seen[text]) < index_of(text, release), (text, seen[text], release)
    down = set(observed.unreachable)
    for step in plan.steps:
        touched = set(step.nodes) | {t.partition("@")[2] for t in step.upgrades + step.disrupts}
        assert not touched & down, step.id
    assert plan.inventory_digest == cluster.digest


@SETTINGS
@given(observed_cases("data"))
def test_plans_around_down_hosts_are_safe_and_never_repeat_work(case) -> None:
    test_plans_from_any_observed_state_are_safe_and_never_repeat_work.hypothesis.inner_test(case)


@SETTINGS
@given(observed_cases())
def test_forced_plans_around_down_nodes_leave_them_out(case) -> None:
    cluster, intent, observed = case
    try:
        plan = plan_upgrade(cluster, intent, observed=observed, force=True)
    except UnsupportedUpgrade as exc:
        assume("nothing left" not in str(exc))
        raise
    down = set(observed.unreachable)
    assert set(dict(plan.extra).get(OBSERVED_DOWN, ())) == down
    # forced past a refusal, the plan breaks no rule but the margins the refusal was about (and,
    # forced past "Ceph hops with an OSD down", the require-osd-release order of those hops)
    refused = observed_refusals(cluster, observed, intent.target, intent.ceph_target)
    allowed = {"quorum", "availability"}
    if any("require-osd-release" in r.message for r in refused):
        allowed.add("order")
    rules = {v.rule for v in verify(plan, verification_view(cluster, plan))}
    assert rules <= allowed, rules
    for step in plan.steps:
        assert not (set(step.nodes) & down)
        if step.action.startswith("checks.") and down:
            assert set(act.planned_around(step)) == down


def test_without_an_observation_nothing_changes() -> None:
    cluster = load_inventory(DEMO)
    same = plan_upgrade(cluster, UpgradeIntent("ussuri"), observed=observation(cluster))
    assert same.digest == plan_upgrade(cluster, UpgradeIntent("ussuri")).digest
    assert verification_view(cluster, same) is cluster


def test_instances_already_at_the_target_are_confirmed_not_upgraded() -> None:
    cluster = load_inventory(DEMO)
    done = {f"galera@{n}": "ussuri" for n in cluster.members["galera"]}
    done["nova-compute@cmp-hdd-0"] = "ussuri"
    done["neutron-ovs-agent@cmp-hdd-0"] = "ussuri"
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"), observed=observation(cluster, done))
    upgraded = {text for text, _ in upgrades(plan)}
    assert not upgraded & set(done)
    assert upgraded == {
        f"{s}@{n}"
        for s, nodes in cluster.members.items()
        for n in nodes
        if not CATALOG.services[s].ceph
    } - set(done)
    confirm = plan.by_id["confirm/galera"]
    assert confirm.action == act.HEALTH and not confirm.disrupts
    assert set(confirm.upgrades) == {f"galera@{n}" for n in cluster.members["galera"]}
    assert not any(s.id.startswith("upgrade/galera") for s in plan.steps)
    assert "cmp-hdd-0" not in {n for s in plan.steps if s.disrupts for n in s.nodes}
    assert verify(plan, verification_view(cluster, plan)) == []


def test_each_instance_starts_its_hops_from_its_observed_release() -> None:
    """An upgrade to wallaby aborted after the first hop on the controllers: the controllers go
    on from ussuri, the computes (still at train) do both hops, in order."""
    cluster = load_inventory(DEMO)
    controllers = {
        f"{s}@{n}": "ussuri"
        for s, nodes in cluster.members.items()
        for n in nodes
        if not CATALOG.services[s].ceph and n.startswith("ctl-")
    }
    plan = plan_upgrade(
        cluster, UpgradeIntent("victoria"), observed=observation(cluster, controllers)
    )
    assert plan.source == "train" and plan.target == "victoria"
    moves: dict[str, list[str]] = {}
    for text, release in upgrades(plan):
        moves.setdefault(text, []).append(release)
    assert moves["galera@ctl-0"] == ["victoria"]
    assert moves["nova-compute@cmp-hdd-0"] == ["ussuri", "victoria"]
    assert verify(plan, verification_view(cluster, plan)) == []


def test_a_cloud_wholly_at_the_first_hop_is_planned_from_there() -> None:
    cluster = load_inventory(DEMO)
    everything = {
        f"{s}@{n}": "ussuri"
        for s, nodes in cluster.members.items()
        for n in nodes
        if not CATALOG.services[s].ceph
    }
    plan = plan_upgrade(
        cluster, UpgradeIntent("victoria"), observed=observation(cluster, everything)
    )
    assert plan.source == "ussuri"
    assert not any(s.id.startswith("confirm/") for s in plan.steps)
    assert verify(plan, verification_view(cluster, plan)) == []
    with pytest.raises(UnsupportedUpgrade, match="nothing left to upgrade"):
        plan_upgrade(cluster, UpgradeIntent("ussuri"), observed=observation(cluster, everything))


def test_an_instance_newer_than_the_target_is_refused() -> None:
    cluster = load_inventory(DEMO)
    ahead = observation(cluster, {"keystone@ctl-0": "victoria"})
    with pytest.raises(UnsupportedUpgrade, match="keystone@ctl-0 at victoria, newer than"):
        plan_upgrade(cluster, UpgradeIntent("ussuri"), observed=ahead)


def test_a_down_galera_member_is_refused_naming_the_node_and_the_rule() -> None:
    cluster = load_inventory(DEMO)
    with pytest.raises(UnsafePlan) as caught:
        plan_upgrade(
            cluster, UpgradeIntent("ussuri"), observed=observation(cluster, down=("ctl-1",))
        )
    assert caught.value.exit_code == 3
    galera = [v for v in caught.value.violations if v.subject == "galera"]
    assert len(galera) == 1 and galera[0].rule == "quorum" and galera[0].node == "ctl-1"
    assert "galera: ctl-1 down" in str(caught.value)
    assert "refusing to upgrade galera until ctl-1 is back" in str(caught.value)


def test_forced_past_a_down_galera_member_the_plan_leaves_it_out() -> None:
    cluster = load_inventory(DEMO)
    observed = observation(cluster, down=("ctl-1",))
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"), observed=observed, force=True)
    assert dict(plan.extra)[OBSERVED_DOWN] == ("ctl-1",)
    assert not any("ctl-1" in s.nodes for s in plan.steps)
    # the verifier (on the view without ctl-1) sees 2 galera members and no margin either
    rules = {v.rule for v in verify(plan, verification_view(cluster, plan))}
    assert rules == {"quorum"}


def test_a_down_compute_uses_up_its_aggregates_max_unavailable() -> None:
    cluster = load_inventory(DEMO)  # aggregates of 2 computes, max_unavailable 1
    with pytest.raises(UnsafePlan, match="capacity: aggregate:hdd: cmp-hdd-0 down"):
        plan_upgrade(
            cluster, UpgradeIntent("ussuri"), observed=observation(cluster, down=("cmp-hdd-0",))
        )
    wider = dataclasses.replace(
        cluster,
        policies=dataclasses.replace(
            cluster.policies,
            aggregate_max_unavailable=(
                ("hdd", dataclasses.replace(cluster.policies.max_unavailable, count=2)),
            ),
        ),
    )
    plan = plan_upgrade(
        wider, UpgradeIntent("ussuri"), observed=observation(wider, down=("cmp-hdd-0",))
    )
    hdd = [s for s in plan.steps if s.disrupts and "cmp-hdd-1" in s.nodes]
    assert hdd and all(s.nodes == ("cmp-hdd-1",) for s in hdd)
    assert verify(plan, verification_view(wider, plan)) == []


def test_a_plan_around_down_nodes_round_trips_through_json_and_verifies_again() -> None:
    from lifecycle.formats.plan_json import plan_from_dict, plan_to_dict

    cluster = load_inventory(DEMO)
    observed = observation(cluster, {"galera@ctl-0": "ussuri"}, down=("cmp-ssd-1",))
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"), observed=observed, force=True)
    again = plan_from_dict(plan_to_dict(plan))
    assert again.digest == plan.digest
    assert verification_view(cluster, again).nodes == verification_view(cluster, plan).nodes


def test_a_galera_member_not_running_or_not_joined_uses_up_the_margin() -> None:
    """ctl-1 answers ssh, but its galera is stopped (or has left the primary component): the
    quorum margin is gone as surely as if the node were down."""
    from lifecycle.model.observed import StoreObservation

    cluster = load_inventory(DEMO)
    stopped = observation(cluster, {"galera@ctl-1": NOT_RUNNING})
    with pytest.raises(UnsafePlan, match=r"quorum: galera: ctl-1 down \(ctl-1: not running\)"):
        plan_upgrade(cluster, UpgradeIntent("ussuri"), observed=stopped)
    left = dataclasses.replace(
        observation(cluster),
        stores=(StoreObservation("galera", members=("ctl-0", "ctl-2"), size=2, quorum=True),),
    )
    with pytest.raises(UnsafePlan, match=r"ctl-1: not joined to galera"):
        plan_upgrade(cluster, UpgradeIntent("ussuri"), observed=left)
    forced = plan_upgrade(cluster, UpgradeIntent("ussuri"), observed=left, force=True)
    assert verify(forced, verification_view(cluster, forced)) == []


def test_noout_left_set_by_an_aborted_run_is_unset_once() -> None:
    """Every OSD already at octopus but `noout` still set: the plan of what is left unsets it
    (and upgrades nothing of Ceph again); with nothing left at all, the refusal says so."""
    from lifecycle.model.observed import StoreObservation

    cluster = load_inventory(DEMO)
    ceph_done = {
        f"{s}@{n}": "octopus"
        for s, nodes in cluster.members.items()
        for n in nodes
        if CATALOG.services[s].ceph
    }
    mon = StoreObservation("ceph-mon", members=("ctl-0", "ctl-1", "ctl-2"), flags=("noout",))
    observed = dataclasses.replace(observation(cluster, ceph_done), stores=(mon,))
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri", "octopus"), observed=observed)
    unsets = [s for s in plan.steps if act.is_noout(s, "unset")]
    assert [s.id for s in unsets] == ["ceph/noout-unset"]
    assert not any(s.disrupts for s in plan.steps if s.phase == "ceph")
    assert verify(plan, verification_view(cluster, plan)) == []
    everything = {
        f"{s}@{n}": ("octopus" if CATALOG.services[s].ceph else "ussuri")
        for s, nodes in cluster.members.items()
        for n in nodes
    }
    done = dataclasses.replace(observation(cluster, everything), stores=(mon,))
    with pytest.raises(UnsupportedUpgrade, match="noout flag is still set"):
        plan_upgrade(cluster, UpgradeIntent("ussuri", "octopus"), observed=done)


def test_two_ceph_hops_with_an_osd_down_are_refused_naming_it() -> None:
    """Found by the property test: a hop after the first needs require-osd-release of the first,
    which Ceph accepts only once every OSD runs it, and an OSD host is down."""
    cluster = load_inventory(DEMO)
    osd = cluster.members["ceph-osd"][0]
    observed = observation(cluster, down=(osd,))
    refused = observed_refusals(cluster, observed, "ussuri", "quincy")
    hops = [r for r in refused if "require-osd-release" in r.message]
    assert hops and hops[0].node == osd and hops[0].rule == "ceph"
    assert "--ceph-to pacific" in hops[0].message
    one_hop = observed_refusals(cluster, observed, "ussuri", "pacific")
    assert not any("require-osd-release" in r.message for r in one_hop)
