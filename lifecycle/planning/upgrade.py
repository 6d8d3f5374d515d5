"""The rolling upgrade planner: cluster + target release -> a plan DAG that is safe in any order.

Every exclusion a safety rule needs is an edge of the DAG, never a matter of timing:
- a clustered service is upgraded in a chain of batches no larger than its quorum allows, with a
  health gate after each batch of a quorum service (control_plane.py);
- infra before control (every control service waits for all infra chains), dependencies from the
  catalog, database expand before a project's new code and contract after all of it is new;
- the data plane waits for a control-plane health gate, then each aggregate (or role) rolls in
  batches: canary first, then `max_unavailable`, each batch evacuated, upgraded, re-enabled and
  gated before the next (data_plane.py);
- Ceph goes mon -> mgr -> osd -> mds -> rgw, OSD hosts one failure domain at a time under `noout`
  (ceph.py);
- over several hops, a control service moves to the next release only after every data-plane
  service that follows it has caught up (Nova's version skew), so hops overlap where skew allows.

The scheduler then packs the DAG (see scheduler.py). Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from lifecycle.catalog import Catalog, load_catalog
from lifecycle.errors import PlanningError, UnsafePlan, UnsupportedUpgrade
from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import ObservedState
from lifecycle.model.release import Release
from lifecycle.planning import actions as act
from lifecycle.planning.ceph import plan_ceph_hop
from lifecycle.planning.control_plane import db_contracts, plan_control_plane
from lifecycle.planning.data_plane import (
    batches,
    data_groups,
    plan_data_plane,
    role_lists,
)
from lifecycle.planning.observed import OBSERVED_DOWN, Basis, planning_basis
from lifecycle.planning.plan import Plan
from lifecycle.planning.remaining import InPlace, start_view
from lifecycle.planning.rollout import PRECHECK_ID, Hop, Rollout
from lifecycle.planning.scheduler import build_plan

Hops = tuple[tuple[Release, Release], ...]


@dataclass(frozen=True)
class UpgradeIntent:
    """What the operator asks for: an OpenStack target and, optionally, a Ceph target."""

    target: str
    ceph_target: str | None = None


def upgrade_hops(cluster: Cluster, intent: UpgradeIntent, catalog: Catalog) -> tuple[Hops, Hops]:
    """The OpenStack and Ceph hops the intent asks for; refuses what the release rules forbid."""
    os_hops = catalog.openstack.hops(cluster.release, intent.target)
    ceph_hops: Hops = ()
    if intent.ceph_target:
        if not cluster.ceph_release:
            raise UnsupportedUpgrade(
                f"--ceph-to {intent.ceph_target}: cluster {cluster.name} names no ceph_release"
            )
        ceph_hops = catalog.ceph.hops(cluster.ceph_release, intent.ceph_target)
    if not os_hops and not ceph_hops:
        raise UnsupportedUpgrade(f"cluster {cluster.name} already runs {intent.target}")
    return os_hops, ceph_hops


def _openstack(rollout: Rollout, hops: Sequence[tuple[Release, Release]]) -> None:
    previous: Hop | None = None
    start = PRECHECK_ID
    for source, target in hops:
        hop = Hop(source, target, target.name if len(hops) > 1 else "")
        # services the catalog puts before central ones (ovn-controller before ovn-northd and
        # the OVN databases) roll first, in a later hop once the previous control plane is
        # done (never two releases ahead of it); this hop's control plane waits for them
        leading = plan_data_plane(rollout, hop, start, previous, leading=True)
        # this hop's control plane only once the previous hop's control-plane gate passed: that
        # gate asks every infra and control instance for the previous hop's release, and would
        # race with this hop's restarts (SLURP: one release at a time through the control plane)
        after = [start] if previous is not None else []
        gate = plan_control_plane(rollout, hop, [PRECHECK_ID, *leading, *after], previous)
        plan_data_plane(rollout, hop, gate, previous)
        db_contracts(rollout, hop)
        previous, start = hop, gate


def _ceph(rollout: Rollout, hops: Sequence[tuple[Release, Release]]) -> None:
    previous: Hop | None = None
    entry = [PRECHECK_ID]
    for source, target in hops:
        hop = Hop(source, target, "ceph-" + target.name if len(hops) > 1 else "")
        # a hop's first daemon only after every daemon finished the previous hop
        entry = [PRECHECK_ID, *plan_ceph_hop(rollout, hop, entry, previous)]
        previous = hop


def plan_upgrade(
    cluster: Cluster,
    intent: UpgradeIntent,
    catalog: Catalog | None = None,
    observed: ObservedState | None = None,
    force: bool = False,
    in_place: InPlace | None = None,
) -> Plan:
    """A rolling upgrade plan of `cluster` to `intent`, scheduled, with its lower bound.

    With `observed` (a driver's observation, made before planning) the plan starts from what the
    cloud runs (planning/observed.py): instances already at a hop's target are only confirmed,
    each instance's hops start from its observed release, down nodes are planned around and use
    up quorum margins and max_unavailable. Where that leaves no safe plan, UnsafePlan (exit 3)
    names each node and rule, unless `force` (the caller records the override). Verify such a
    plan against `verification_view(cluster, plan)`.

    Without `observed`, `in_place` (the recorded state: what lifecycle's runs did) moves the
    start to the oldest release it has an instance at (`start_view`): every instance past the
    inventory's release (a deploy at another release, an upgrade the inventory was not updated
    for) plans as an inventory at that release would. What is already done is then dropped by
    `remaining` (the caller's)."""
    catalog = catalog or load_catalog()
    unknown = sorted(s for s in cluster.members if s not in catalog.services)
    if unknown:
        raise PlanningError(f"services not in the catalog: {', '.join(unknown)}")
    if observed is None:
        view, basis = _recorded_start(cluster, intent, catalog, in_place), None
    else:
        basis = planning_basis(cluster, observed, catalog, intent.target, intent.ceph_target)
        if basis.refusals and not force:
            raise UnsafePlan(basis.refusals)
        view = basis.cluster
    try:
        os_hops, ceph_hops = upgrade_hops(view, intent, catalog)
    except UnsupportedUpgrade as exc:
        if basis is None or "already runs" not in str(exc):
            raise
        flag = "noout" in basis.ceph_flags
        raise UnsupportedUpgrade(
            f"nothing left to upgrade: every instance of {cluster.name} observed reachable"
            f" already runs {intent.target}"
            + (f" / {intent.ceph_target}" if intent.ceph_target else "")
            + ("; Ceph's noout flag is still set (`ceph osd unset noout`)" if flag else "")
        ) from None
    rollout = Rollout(view, catalog) if basis is None else _observed_rollout(basis, catalog)
    rollout.add(
        PRECHECK_ID,
        act.PRECHECK,
        "precheck",
        {"release": view.release},
        (),
        duration=rollout.duration("precheck"),
    )
    _openstack(rollout, os_hops)
    _ceph(rollout, ceph_hops)
    if basis is not None and intent.ceph_target:
        _unset_left_noout(rollout, basis)
    waited_for = {dep for step in rollout.steps for dep in step.depends_on}
    target = os_hops[-1][1].name if os_hops else view.release
    rollout.add(
        "postcheck/cluster",
        act.POSTCHECK,
        "postcheck",
        {"release": target},
        [s.id for s in rollout.steps if s.id not in waited_for],
        duration=rollout.duration("postcheck"),
    )
    extra: dict[str, str | tuple[str, ...]] = {}
    if ceph_hops:
        extra = {"ceph_from": ceph_hops[0][0].name, "ceph_to": ceph_hops[-1][1].name}
    if basis is not None and basis.down:
        extra[OBSERVED_DOWN] = basis.down  # the verifier's view leaves them out
    return build_plan(
        "upgrade",
        cluster.name,
        rollout.steps,
        source=view.release,
        target=target,
        inventory_digest=cluster.digest,
        lower_bound=capacity_bound(rollout, len(os_hops)),
        extra=tuple(sorted(extra.items())),
    )


def _recorded_start(
    cluster: Cluster, intent: UpgradeIntent, catalog: Catalog, in_place: InPlace | None
) -> Cluster:
    """The recorded state's start (`start_view`), unless it leaves nothing to upgrade: then
    the inventory's, whose plan `remaining` reduces to nothing (the caller says so)."""
    if in_place is None or not in_place.at:
        return cluster
    view = start_view(cluster, in_place, catalog)
    if view is cluster:
        return cluster
    try:
        upgrade_hops(view, intent, catalog)
    except UnsupportedUpgrade:
        return cluster
    return view


def _unset_left_noout(rollout: Rollout, basis: Basis) -> None:
    """`noout` observed set (a run aborted between its OSDs and the unset) and no step of this
    plan unsets it: unset it once the Ceph lane is done, as its own rollout would have."""
    if "noout" not in basis.ceph_flags or any(act.is_noout(s, "unset") for s in rollout.steps):
        return
    mons = rollout.cluster.members.get("ceph-mon", ())
    if not mons:
        return  # no monitor left to run it on: the difference is reported
    ceph = [s.id for s in rollout.steps if s.phase == "ceph"]
    params = {"playbook": act.CEPH_FLAG, "flag": "noout", "state": "unset"}
    rollout.add(
        "ceph/noout-unset",
        act.PLAYBOOK,
        "ceph",
        params,
        [PRECHECK_ID, *ceph],
        nodes=(mons[0],),
        duration=rollout.duration("ceph_flag"),
    )


def _observed_rollout(basis: Basis, catalog: Catalog) -> Rollout:
    return Rollout(
        basis.cluster,
        catalog,
        releases=basis.releases,
        down=basis.service_down,
        out={s: len(nodes) for s, nodes in basis.service_out.items()},
        group_down=basis.group_down,
        planned_around=basis.down,
    )


def capacity_bound(rollout: Rollout, hops: int) -> float:
    """Per group and hop, at most max_unavailable hosts out at once: ceil(n / max_unavailable)
    rounds of the group's shortest per-host upgrade time."""
    best = 0.0
    for key, nodes in data_groups(rollout):
        size = max(batches(rollout, key, len(nodes)))
        per_host = min(sum(s.duration for s in found) for found in role_lists(rollout, nodes))
        best = max(best, math.ceil(len(nodes) / size) * per_host * hops)
    return best
