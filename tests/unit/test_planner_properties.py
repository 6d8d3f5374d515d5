"""Property tests: any valid cluster gets a plan the verifier accepts, whatever the timing."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.catalog import load_catalog
from lifecycle.formats.plan_json import plan_from_dict, plan_to_dict
from lifecycle.model import (
    Cluster,
    Evacuate,
    MaxUnavailable,
    NodeSpec,
    Policies,
    RoleSpec,
)
from lifecycle.model.service import Tier
from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from lifecycle.planning.verifier import verify
from tests.unit.plan_surgery import rebuild

CATALOG = load_catalog()
INFRA_CONTROL = sorted(
    s.name for s in CATALOG.services.values() if s.tier in (Tier.INFRA, Tier.CONTROL)
)
DATA = sorted(s.name for s in CATALOG.services.values() if s.tier is Tier.DATA)
OPENSTACK = CATALOG.openstack.names()
CEPH = CATALOG.ceph.names()
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

max_unavailable = st.one_of(
    st.integers(1, 4).map(lambda n: MaxUnavailable(n)),
    st.integers(5, 60).map(lambda p: MaxUnavailable(None, float(p))),
)


@st.composite
def clusters(draw: st.DrawFn) -> tuple[Cluster, UpgradeIntent]:
    controllers = draw(st.sampled_from([1, 3, 4, 5]))
    control = tuple(
        draw(st.lists(st.sampled_from(INFRA_CONTROL), min_size=1, max_size=14, unique=True))
    )
    osd_hosts = draw(st.integers(0, 6))
    with_ceph = osd_hosts > 0
    roles = [RoleSpec("Controller", control + (("ceph-mon", "ceph-mgr") if with_ceph else ()))]
    nodes = [
        NodeSpec(f"ctl-{i}", "Controller", failure_domain=f"rack{i % 3}")
        for i in range(controllers)
    ]
    aggregates: list[tuple[str, MaxUnavailable]] = []
    for g in range(draw(st.integers(0, 3))):
        services = tuple(draw(st.lists(st.sampled_from(DATA), min_size=1, max_size=3, unique=True)))
        hci = with_ceph and draw(st.booleans())
        aggregate = draw(st.sampled_from([None, f"agg{g}"]))
        roles.append(
            RoleSpec(f"Data{g}", services + (("ceph-osd",) if hci else ()), aggregate=aggregate)
        )
        if aggregate and draw(st.booleans()):
            aggregates.append((aggregate, draw(max_unavailable)))
        count = draw(st.integers(1, 12))
        nodes += [
            NodeSpec(f"d{g}-{i}", f"Data{g}", failure_domain=f"rack{i % 3}") for i in range(count)
        ]
    if with_ceph:
        roles.append(RoleSpec("CephStorage", ("ceph-osd",)))
        racks = draw(st.integers(1, 3))
        nodes += [
            NodeSpec(f"osd-{i}", "CephStorage", failure_domain=f"rack{i % racks}")
            for i in range(osd_hosts)
        ]
    policies = Policies(
        max_unavailable=draw(max_unavailable),
        aggregate_max_unavailable=tuple(aggregates),
        evacuate=draw(st.sampled_from(list(Evacuate))),
        canary=draw(st.integers(1, 3)),
    )
    start = draw(st.integers(0, len(OPENSTACK) - 2))
    target = draw(st.integers(start + 1, min(start + 4, len(OPENSTACK) - 1)))
    ceph_start = draw(st.integers(0, len(CEPH) - 2))
    ceph_target = (
        CEPH[draw(st.integers(ceph_start + 1, len(CEPH) - 1))]
        if with_ceph and draw(st.booleans())
        else None
    )
    cluster = Cluster(
        "prop",
        OPENSTACK[start],
        tuple(roles),
        tuple(nodes),
        policies,
        ceph_release=CEPH[ceph_start] if with_ceph else None,
    )
    return cluster, UpgradeIntent(OPENSTACK[target], ceph_target)


@SETTINGS
@given(clusters())
def test_every_plan_for_a_valid_cluster_is_safe(case: tuple[Cluster, UpgradeIntent]) -> None:
    cluster, intent = case
    plan = plan_upgrade(cluster, intent)
    assert verify(plan, cluster) == []
    assert plan.makespan >= plan.lower_bound - 1e-6


def _retimed(plan: Plan, factors: list[float]) -> Plan:
    def change(steps: list[Step]) -> list[Step]:
        return [
            dataclasses.replace(s, duration=s.duration * factors[i % len(factors)])
            for i, s in enumerate(steps)
        ]

    return rebuild(plan, change)


@SETTINGS
@given(clusters(), st.lists(st.floats(0.05, 20.0), min_size=1, max_size=50))
def test_plans_stay_safe_whatever_the_real_durations(case, factors) -> None:
    """Safety lives in the DAG, not in the schedule: steps that take longer or shorter than the
    estimates, in any order the DAG allows, still break no rule."""
    cluster, intent = case
    assert verify(_retimed(plan_upgrade(cluster, intent), factors), cluster) == []


@settings(max_examples=25, deadline=None)
@given(clusters())
def test_planning_is_deterministic_and_json_round_trips(case) -> None:
    cluster, intent = case
    first, second = plan_upgrade(cluster, intent), plan_upgrade(cluster, intent)
    assert first.digest == second.digest
    again = plan_from_dict(plan_to_dict(first))
    assert again.digest == first.digest
    assert again.steps == first.steps
