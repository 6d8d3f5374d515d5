"""Property: any node of a random cluster replaced keeps every store's quorum in every order.

The verifier proves it over the DAG (planning/membership.py); this test checks the same claim
independently by running random topological orders of the plan, step by step, against the
inventory's own membership (not the verifier's view of it)."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lifecycle.catalog import load_catalog
from lifecycle.errors import UnsafePlan
from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import REACHABLE, UNREACHABLE, NodeObservation, ObservedState
from lifecycle.model.service import Quorum
from lifecycle.planning import actions as act
from lifecycle.planning.plan import Plan
from lifecycle.planning.replace import (
    DEPLOY_SERVICE,
    REMOVE_PLAYBOOKS,
    STOP_SERVICE,
    ReplaceIntent,
    Replacement,
    plan_replace,
    replaced_cluster,
)
from lifecycle.planning.verifier import verify
from tests.unit.cluster_factory import lab_like

CATALOG = load_catalog()


def _random_order(plan: Plan, rng: random.Random) -> list[str]:
    waiting = {s.id: set(s.depends_on) for s in plan.steps}
    done: list[str] = []
    while waiting:
        ready = sorted(sid for sid, deps in waiting.items() if not deps)
        pick = rng.choice(ready)
        done.append(pick)
        del waiting[pick]
        for deps in waiting.values():
            deps.discard(pick)
    return done


def _walk(plan: Plan, cluster: Cluster, down: set[str], order: list[str]) -> list[str]:
    """Run the plan one step at a time in `order`; every moment a store lacks a majority (or the
    mons drop below 3) is reported."""
    stores = {
        s: list(nodes)
        for s, nodes in cluster.members.items()
        if CATALOG.services[s].quorum is Quorum.MAJORITY and len(nodes) > 1
    }
    state = {s: (list(m), {n for n in m if n in down}) for s, m in stores.items()}
    problems = []
    for sid in order:
        step = plan.by_id[sid]
        book = act.playbook(step)
        for store, (members, off) in state.items():
            if book == STOP_SERVICE:
                off |= {d.partition("@")[2] for d in step.disrupts if d.startswith(store + "@")}
            elif book == REMOVE_PLAYBOOKS.get(store) and step.param("service") == store:
                members.remove(str(step.param("member")))
                off.discard(str(step.param("member")))
            elif book == DEPLOY_SERVICE and step.param("service") == store:
                for node in step.nodes:
                    if node not in members:
                        members.append(node)
                    off.discard(node)
            up = len(set(members) - off)
            if up * 2 <= len(members):
                problems.append(f"{store}: {up} of {len(members)} up after {sid}")
            if store == "ceph-mon" and len(members) < 3:
                problems.append(f"ceph-mon: {len(members)} mons after {sid}")
    return problems


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    controllers=st.sampled_from([3, 5]),
    ceph=st.integers(4, 6),
    hdd=st.integers(2, 4),
    ssd=st.integers(2, 4),
    networkers=st.integers(1, 3),
    pick=st.integers(0, 10_000),
    rebuild=st.booleans(),
    remove=st.booleans(),
    dead=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_replacement_verifies_and_keeps_quorum_at_every_cut(
    controllers: int,
    ceph: int,
    hdd: int,
    ssd: int,
    networkers: int,
    pick: int,
    rebuild: bool,
    remove: bool,
    dead: bool,
    seed: int,
) -> None:
    """Replace (or remove, where no refusal applies) any node, alive or dead."""
    cluster = lab_like(hdd, ssd, controllers, ceph, networkers)
    node = cluster.nodes[pick % len(cluster.nodes)].name
    observed = ObservedState(
        cluster="lab",
        driver="test",
        nodes=tuple(
            NodeObservation(n.name, UNREACHABLE if dead and n.name == node else REACHABLE)
            for n in cluster.nodes
        ),
    )
    new = Replacement(node) if rebuild else Replacement("new-0", address="198.18.7.7")
    intent = ReplaceIntent(node, None if remove else new)
    try:
        plan = plan_replace(cluster, intent, observed=observed)
    except UnsafePlan as refused:  # removing one of three controllers, say
        assert remove and all(node in str(v) for v in refused.violations)
        assume(False)
    assert verify(plan, replaced_cluster(cluster, plan)) == []
    if dead:
        assert f"stop/{node}" not in plan.by_id
    rng = random.Random(seed)
    down = {node} if dead else set()
    for _ in range(5):
        assert _walk(plan, cluster, down, _random_order(plan, rng)) == []


def test_the_walk_sees_a_mon_removed_before_its_successor_joined() -> None:
    from tests.unit import plan_surgery as surgery

    cluster = lab_like()
    plan = plan_replace(cluster, ReplaceIntent("ctl-1", Replacement("new-0", address="1.2.3.4")))
    broken = surgery.rebuild(plan, surgery.rewire("remove/ceph-mon/ctl-1", "stop/ctl-1"))
    order = sorted(broken.by_id, key=broken.start_of.__getitem__)  # its own schedule
    assert "ceph-mon: 2 mons after remove/ceph-mon/ctl-1" in _walk(broken, cluster, set(), order)
    assert any(
        "remove/ceph-mon/ctl-1" in str(v) for v in verify(broken, replaced_cluster(cluster, broken))
    )
