"""What is left of an upgrade plan when some of its work is already in place.

The hook between the recorded (or observed) state and the upgrade planner: `plan_upgrade` makes
the whole plan from the inventory; `remaining` drops the steps whose effect is already there and
reconnects the rest, so that an aborted or partly failed upgrade is finished by a plan of only
what is left, in the same safe order. Pure: no I/O.

A step is kept when:
- it upgrades an instance not yet at the step's release (a step upgrades all its instances or
  none, so a partly done step is kept whole);
- it is a database expand of a project with a kept upgrade to that release, or a contract of
  one whose schema was not contracted to that release yet;
- it is `require-osd-release` R after a kept OSD upgrade or before any kept upgrade;
- it opens a bracket (`compute.evacuate`, `compute.drain_network`, Ceph flag set) around a kept
  upgrade, or closes one (`compute.enable`, flag unset) that it opened or that a previous run
  left open (a host left disabled, `noout` left set);
- it is a health gate after a kept step (any other step: after a kept step);
- it is the precheck or postcheck of a plan with anything else left.
Dependencies through dropped steps are kept transitively, so every order the full plan forbade
stays forbidden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from lifecycle.catalog import Catalog
from lifecycle.errors import UnsupportedUpgrade
from lifecycle.model.cluster import Cluster
from lifecycle.model.in_place import InPlace
from lifecycle.model.recorded import RecordedState, instances_at
from lifecycle.model.release import ReleaseTrain
from lifecycle.planning import actions as act
from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.scheduler import build_plan

_FRAME = (act.PRECHECK, act.POSTCHECK)


class _Index:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def rank(self, service: str, release: str) -> int | None:
        spec = self.catalog.services.get(service)
        train = self.catalog.ceph if spec is not None and spec.ceph else self.catalog.openstack
        try:
            return train.get(release).index
        except Exception:  # an unknown release name: treat as not in place
            return None

    def at_least(self, text: str, release: str | None, done: InPlace) -> bool:
        service, _, _ = text.partition("@")
        have = done.at.get(text)
        if have is None or release is None:
            return False
        a, b = self.rank(service, have), self.rank(service, release)
        return a is not None and b is not None and a >= b

    def openstack_rank(self, release: str | None) -> int:
        try:
            return self.catalog.openstack.get(str(release)).index
        except Exception:
            return -1


def _upgrade_left(step: Step, done: InPlace, index: _Index, catalog: Catalog) -> bool:
    for text in step.upgrades:
        service = text.partition("@")[0]
        spec = catalog.services.get(service)
        release = act.expected_release(step, service, bool(spec and spec.ceph))
        if not index.at_least(text, release, done):
            return True
    return False


def _children(plan: Plan) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {s.id: [] for s in plan.steps}
    for s in plan.steps:
        for dep in s.depends_on:
            out[dep].append(s.id)
    return out


def _reach(start: str, edges: Mapping[str, list[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _flag_pairs(plan: Plan, children: Mapping[str, list[str]]) -> dict[str, set[str]]:
    """Ceph flag set step -> the steps between it and its unset step."""
    parents = {s.id: list(s.depends_on) for s in plan.steps}
    pairs: dict[str, set[str]] = {}
    for step in plan.steps:
        if act.playbook(step) != act.CEPH_FLAG or step.param("state") != "set":
            continue
        after = _reach(step.id, children)
        unset = next(
            (
                s.id
                for s in plan.steps
                if s.id in after
                and act.playbook(s) == act.CEPH_FLAG
                and s.param("state") == "unset"
                and s.param("flag") == step.param("flag")
            ),
            None,
        )
        pairs[step.id] = after & _reach(unset, parents) if unset else after
    return pairs


def _decide(plan: Plan, done: InPlace, catalog: Catalog) -> dict[str, bool]:
    index = _Index(catalog)
    children = _children(plan)
    keep: dict[str, bool] = {}
    for step in plan.steps:  # upgrades first: the brackets and migrations depend on them
        keep[step.id] = bool(step.upgrades) and _upgrade_left(step, done, index, catalog)
    upgraded: set[tuple[str, str]] = set()  # (project, release) with a kept upgrade
    for step in plan.steps:
        if keep[step.id]:
            for text in step.upgrades:
                spec = catalog.services.get(text.partition("@")[0])
                if spec is not None and spec.project:
                    upgraded.add((spec.project, str(step.param("release"))))
    between = _flag_pairs(plan, children)
    for step in plan.steps:
        if step.upgrades or step.action in _FRAME:
            continue
        keep[step.id] = _keep_other(step, plan, keep, children, between, upgraded, done, index)
    if any(keep[s.id] for s in plan.steps if s.action not in _FRAME):
        for step in plan.steps:
            if step.action in _FRAME:
                keep[step.id] = True
    return keep


def _keep_other(
    step: Step,
    plan: Plan,
    keep: Mapping[str, bool],
    children: Mapping[str, list[str]],
    between: Mapping[str, set[str]],
    upgraded: set[tuple[str, str]],
    done: InPlace,
    index: _Index,
) -> bool:
    db = act.db_phase(step)
    release = step.param("release")
    if db is not None:
        project, phase = db
        if (project, str(release)) in upgraded:
            return True
        if phase == "contract":
            last = done.contracted.get(project)
            return last is None or index.openstack_rank(last) < index.openstack_rank(str(release))
        return False
    if act.playbook(step) == act.CEPH_FLAG and step.param("flag") == act.REQUIRE_OSD_RELEASE:
        return _osd_release_needed(step, plan, keep, children)
    if act.playbook(step) == act.CEPH_FLAG:
        if step.param("state") == "set":
            return any(keep.get(s, False) and plan.by_id[s].upgrades for s in between[step.id])
        setters = [s for s in between if keep[s] and _closes(plan, s, step, children)]
        return bool(setters) or str(step.param("flag")) in done.flags
    if step.action in (act.EVACUATE, act.DRAIN_NETWORK):
        return any(keep[c] and plan.by_id[c].upgrades for c in children[step.id])
    if step.action == act.ENABLE:
        after_kept = any(keep[d] and plan.by_id[d].upgrades for d in step.depends_on)
        return after_kept or bool(done.disabled.intersection(step.nodes))
    # health gates and anything else: after a kept step
    return any(keep[d] for d in step.depends_on if plan.by_id[d].action not in _FRAME)


def _osd_release_needed(
    step: Step, plan: Plan, keep: Mapping[str, bool], children: Mapping[str, list[str]]
) -> bool:
    """`ceph osd require-osd-release R` is permanent and idempotent (never unset): it is run
    again when an OSD upgrade before it is left (Ceph sets it once every OSD runs R) or anything
    after it is (the next hop needs it)."""
    parents = {s.id: list(s.depends_on) for s in plan.steps}
    before = _reach(step.id, parents)
    osd_left = any(
        keep[s] and any(t.startswith("ceph-osd@") for t in plan.by_id[s].upgrades) for s in before
    )
    return osd_left or any(keep[s] and plan.by_id[s].upgrades for s in _reach(step.id, children))


def _closes(plan: Plan, setter: str, unset: Step, children: Mapping[str, list[str]]) -> bool:
    """Whether `unset` clears the flag `setter` sets (same flag, after it)."""
    same = plan.by_id[setter].param("flag") == unset.param("flag")
    return same and unset.id in _reach(setter, children)


def remaining(plan: Plan, done: InPlace, catalog: Catalog) -> Plan | None:
    """The plan of what is left, rescheduled; None when nothing is left."""
    keep = _decide(plan, done, catalog)
    if not any(keep.values()):
        return None
    frontier: dict[str, tuple[str, ...]] = {}

    def through(dep: str) -> tuple[str, ...]:
        if keep[dep]:
            return (dep,)
        if dep not in frontier:
            found: dict[str, None] = {}
            for d in plan.by_id[dep].depends_on:
                found.update(dict.fromkeys(through(d)))
            frontier[dep] = tuple(found)
        return frontier[dep]

    steps = []
    for step in plan.steps:  # topological: a dropped step's frontier is known before its children
        if not keep[step.id]:
            through(step.id)
            continue
        deps: dict[str, None] = {}
        for d in step.depends_on:
            deps.update(dict.fromkeys(through(d)))
        steps.append(replace(step, depends_on=tuple(deps)))
    return build_plan(
        plan.operation,
        plan.cluster,
        steps,
        source=plan.source,
        target=plan.target,
        inventory_digest=plan.inventory_digest,
        extra=plan.extra,
    )


def ahead_of_inventory(at: Mapping[str, str], cluster: Cluster, catalog: Catalog) -> dict[str, str]:
    """The instances of `cluster` that `at` puts past the inventory's release (OpenStack
    `release`, Ceph `ceph_release`): what a plan from the inventory would do again."""
    index = _Index(catalog)
    out: dict[str, str] = {}
    for service, nodes in cluster.members.items():
        spec = catalog.services.get(service)
        start = cluster.ceph_release if spec is not None and spec.ceph else cluster.release
        for node in nodes:
            text = f"{service}@{node}"
            have = at.get(text)
            if have is None or start is None:
                continue
            a, b = index.rank(service, have), index.rank(service, start)
            if a is not None and b is not None and a > b:
                out[text] = have
    return out


def recorded_in_place(record: RecordedState, cluster: Cluster, catalog: Catalog) -> InPlace:
    """The hook from the recorded state to `remaining` (an observed state maps the same way:
    instance -> release, hosts disabled, flags set)."""
    return InPlace(
        at=ahead_of_inventory(instances_at(record), cluster, catalog),
        disabled=frozenset(record.disabled),
        flags=frozenset(record.flags),
        contracted=dict(record.contracted),
    )


def start_view(cluster: Cluster, done: InPlace, catalog: Catalog) -> Cluster:
    """The cluster an upgrade starts from: its `release` the oldest release an OpenStack
    service instance runs as `done` has it, its `ceph_release` (when it names one) the oldest a
    Ceph daemon runs; an instance `done` does not name runs the inventory's. One rule for both
    sources: from the recorded state (after a deploy at a release past the inventory's, or an
    upgrade the inventory was not updated for, the plan is the one an inventory at that
    release makes: same hops, step ids and schema steps; after an aborted upgrade the start
    stays the inventory's and `remaining` drops what is done) and from an observation
    (planning/observed.py, on the cluster without its down nodes)."""
    oldest: dict[bool, tuple[int, str]] = {}
    for service, nodes in cluster.members.items():
        spec = catalog.services.get(service)
        ceph = bool(spec and spec.ceph)
        base = cluster.ceph_release if ceph else cluster.release
        train = catalog.ceph if ceph else catalog.openstack
        for have in (done.at.get(f"{service}@{node}", base) for node in nodes):
            rank = _rank_in(train, have)
            best = oldest.get(ceph)
            if have is not None and rank is not None and (best is None or rank < best[0]):
                oldest[ceph] = (rank, train.releases[rank].name)
    release = oldest[False][1] if False in oldest else cluster.release
    ceph_release = oldest[True][1] if True in oldest and cluster.ceph_release else None
    ceph_release = ceph_release or cluster.ceph_release
    if (release, ceph_release) == (cluster.release, cluster.ceph_release):
        return cluster
    return replace(cluster, release=release, ceph_release=ceph_release)


def _rank_in(train: ReleaseTrain, release: str | None) -> int | None:
    if release is None:
        return None
    try:
        return train.get(release).index
    except UnsupportedUpgrade:  # a name no train holds: not a place to start from
        return None
