"""The safety verifier: proves the plan's DAG safe in every order, then replays its schedule.

The engine starts any step whose dependencies are done; start times only order its ready queue.
So the verifier first proves every rule over the DAG (any_order.py: each pair or set of steps
whose overlap would break a rule must be ordered by it), then replays the one schedule as a second
check of the timing itself (timeline.py), naming every moment a rule breaks. A fault both name for
the same step and rule is reported once, by the proof.

It trusts nothing the planner knows: it reads only the plan (steps, dependencies, start times,
what each step upgrades and disrupts), the cluster and the catalog. Rules:

- ``dag``: dependencies exist, form no cycle, and each ends before its dependant starts;
- ``quorum``: a clustered service never has more members down than its quorum allows;
- ``capacity``: an aggregate (or data-plane role) never has more hosts out than max_unavailable
  (a host is out while drained for evacuation or while its data-plane services are disrupted);
- ``evacuation``: a host's workload service is disrupted only while the host is drained;
- ``ceph``: OSDs of at most one failure domain down at a time, and only while `noout` is set;
- ``order``: an instance moves to release R only once its dependencies, and for the data plane
  the whole control plane, are at R; infra before control;
- ``skew``: a control service never moves further ahead of the data-plane services that follow
  it than the release rules allow;
- ``database``: a project's schema is expanded before its first new instance and contracted
  after its last;
- ``once``: every instance is upgraded exactly once per hop, in order, to the final target;
- ``node``: one disruptive step at a time per data-plane host (proof only);
- deploy plans (operation "deploy") are checked by their own rules instead (deploy_rules.py:
  stores bootstrapped then joined one at a time behind gates, databases and keys before their
  service, catalog dependencies, every instance once, precheck first and postcheck last);
- ``gates``: a precheck before any disruption, a postcheck after all of a plan that disrupts
  anything, a health gate after each quorum member before the next, and between
  consecutive batches of a data-plane group, and a first batch no larger than the canary.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import pairwise

from lifecycle.catalog import Catalog, load_catalog
from lifecycle.errors import UnsafePlan
from lifecycle.model.cluster import Cluster
from lifecycle.model.release import ReleaseTrain
from lifecycle.planning import actions as act
from lifecycle.planning.any_order import AnyOrder
from lifecycle.planning.membership import check_membership
from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.timeline import Replay, Violation, instance

__all__ = ["Violation", "check_safe", "verify"]


def _check_dag(plan: Plan) -> list[Violation]:
    out: list[Violation] = []
    position = {step.id: i for i, step in enumerate(plan.steps)}
    backwards = False  # a dependency listed after its dependant: only then can there be a cycle
    for i, step in enumerate(plan.steps):
        for dep in step.depends_on:
            if dep not in plan.by_id:
                out.append(Violation(0.0, "dag", f"depends on unknown step {dep}", step.id))
                continue
            backwards = backwards or position[dep] >= i
            if plan.end_of(dep) > plan.start_of[step.id] + 1e-6:
                out.append(
                    Violation(
                        plan.start_of[step.id],
                        "dag",
                        f"starts before its dependency {dep} ends",
                        step.id,
                    )
                )
    cycle = _cycle(plan) if backwards else []
    if cycle:
        out.append(Violation(0.0, "dag", "dependency cycle: " + " -> ".join(cycle)))
    return out


def _cycle(plan: Plan) -> list[str]:
    """A dependency cycle of the plan (its step ids in order), or [] when there is none.
    networkx is imported only here: plans in topological order (every plan the planner makes)
    never need it."""
    import networkx as nx

    graph: nx.DiGraph = nx.DiGraph()
    graph.add_nodes_from(step.id for step in plan.steps)
    graph.add_edges_from(
        (dep, step.id) for step in plan.steps for dep in step.depends_on if dep in plan.by_id
    )
    if nx.is_directed_acyclic_graph(graph):
        return []
    return [e[0] for e in nx.find_cycle(graph)]


def _check_gates(plan: Plan, replay: Replay) -> list[Violation]:
    out: list[Violation] = []
    disruptive = [(t, s) for s, t in plan.scheduled() if s.disrupts or s.action == act.EVACUATE]
    prechecks = [plan.end_of(s.id) for s in plan.steps if s.action == act.PRECHECK]
    if disruptive and (not prechecks or min(t for t, _ in disruptive) < min(prechecks)):
        out.append(Violation(0.0, "gates", "no precheck before the first disruptive step"))
    posts = [plan.start_of[s.id] for s in plan.steps if s.action == act.POSTCHECK]
    last_end = max(
        (plan.end_of(s.id) for s in plan.steps if s.action != act.POSTCHECK), default=0.0
    )
    # a plan that disrupted anything must end by proving the cluster whole again
    if disruptive and (not posts or max(posts) < last_end - 1e-6):
        out.append(Violation(last_end, "gates", "no postcheck after the last step"))
    out += _check_batches(plan, replay)
    return out


def _check_batches(plan: Plan, replay: Replay) -> list[Violation]:
    """Between consecutive disruptions of a data-plane group, a health gate covering the earlier
    batch; the group's first batch no larger than the canary."""
    out: list[Violation] = []
    by_group: dict[tuple[str, object], list[Step]] = defaultdict(list)
    for step in plan.steps:
        if any(replay.is_data(instance(d)[0]) for d in step.disrupts):
            groups = {replay.group_of.get(n, "") for n in step.nodes}
            for group in groups:
                by_group[(group, step.param("release"))].append(step)
    health: dict[str, list[Step]] = defaultdict(list)
    for s in plan.steps:
        if s.action == act.HEALTH:
            for node in s.nodes:
                health[node].append(s)
    canary = replay.cluster.policies.canary
    for (group, release), steps in by_group.items():
        steps.sort(key=lambda s: plan.start_of[s.id])
        first = [n for n in steps[0].nodes if replay.group_of.get(n) == group]
        if len(first) > max(canary, 1) and not _canary_passed(replay, group, release):
            out.append(
                Violation(
                    plan.start_of[steps[0].id],
                    "gates",
                    f"first batch of {group} has {len(first)} hosts; canary is {canary}",
                    steps[0].id,
                )
            )
        for earlier, later in pairwise(steps):
            lo, hi = plan.end_of(earlier.id), plan.start_of[later.id]
            if not any(
                plan.start_of[h.id] >= lo - 1e-6 and plan.end_of(h.id) <= hi + 1e-6
                for h in health[earlier.nodes[0]]
            ):
                out.append(
                    Violation(
                        hi,
                        "gates",
                        f"no health gate for {earlier.id} before the next batch",
                        later.id,
                    )
                )
    return out


def _canary_passed(replay: Replay, group: str, release: object) -> bool:
    """Whether a host of the group already ran the release before this plan (a plan of what is
    left after an aborted run: its canary batch was upgraded by the earlier run)."""
    if not isinstance(release, str) or not replay.initial:
        return False
    index = replay.catalog.openstack.get(release).index
    return any(
        replay.group_of.get(instance(text)[1]) == group
        and replay.is_data(instance(text)[0])
        and replay.start_version.get(text, -1) >= index
        for text in replay.initial
    )


def _check_once(plan: Plan, replay: Replay) -> list[Violation]:
    out: list[Violation] = []
    targets: dict[bool, list[int]] = {False: [], True: []}
    cat = replay.catalog
    if plan.source and plan.target:
        hops = cat.openstack.hops(plan.source, plan.target)
        targets[False] = [b.index for _, b in hops]
    extra = dict(plan.extra)
    if isinstance(extra.get("ceph_from"), str) and isinstance(extra.get("ceph_to"), str):
        hops = cat.ceph.hops(str(extra["ceph_from"]), str(extra["ceph_to"]))
        targets[True] = [b.index for _, b in hops]
    # the hops wanted depend only on the service's train and the starting release
    wanted: dict[tuple[bool, int], tuple[int, ...]] = {}
    for text in replay.version:
        service = text.partition("@")[0]
        start = replay.start_version.get(text, -1)
        key = (cat.services[service].ceph, start)
        want = wanted.get(key)
        if want is None:
            want = wanted[key] = tuple(i for i in targets[key[0]] if i > start)
        got = replay.history.get(text, ())
        if got != want:
            out.append(
                Violation(
                    plan.makespan,
                    "once",
                    f"{text} upgraded through "
                    f"{_names(replay.train(service), got)}, expected "
                    f"{_names(replay.train(service), want)}",
                )
            )
    return out


def _names(train: ReleaseTrain, indexes: Sequence[int]) -> str:
    return "[" + ", ".join(train.releases[i].name for i in indexes) + "]"


def verify(
    plan: Plan,
    cluster: Cluster,
    catalog: Catalog | None = None,
    initial: Mapping[str, str] | None = None,
) -> list[Violation]:
    """Every rule the plan breaks, in time order; an empty list means the plan is safe.

    `initial`: instance ("service@node") -> the release it runs before the plan starts, where that
    is not the inventory's release (the recorded state after an earlier run): such an instance
    must be upgraded only through the hops above it, and a group whose hosts already run a
    hop's release has passed its canary."""
    catalog = catalog or load_catalog()
    violations = _check_dag(plan)
    if any("cycle" in v.message for v in violations):
        return violations
    if plan.operation == "deploy":  # nothing is taken down: the deploy rules are all order
        from lifecycle.planning.deploy_rules import check_deploy

        return sorted(set(violations + check_deploy(plan, cluster, catalog)))
    replay = Replay(plan, cluster, catalog, initial)
    # first the DAG (every order the engine may pick), then the schedule (the timing itself)
    proved = AnyOrder(plan, replay).check() + check_membership(plan, cluster, catalog)
    events: list[tuple[float, int, int]] = []
    for index, (step, start) in enumerate(plan.scheduled()):
        # at one moment: ends free what they held, then starts, then zero-length steps end
        events.append((start, 1, index))
        events.append((start + step.duration, 0 if step.duration > 0 else 2, index))
    for time, kind, index in sorted(events):
        step = plan.steps[index]
        if kind == 1:
            replay.start(step, time)
        else:
            replay.end(step, time)
    timed = list(replay.violations)
    if plan.operation == "upgrade":
        timed += _check_once(plan, replay)
    timed += _check_gates(plan, replay)
    # a fault the DAG proof names is not repeated by the replay for the same step and rule
    named = {(v.rule, v.step) for v in proved}
    violations += proved + [v for v in timed if (v.rule, v.step) not in named or not v.step]
    return sorted(set(violations))


def check_safe(
    plan: Plan,
    cluster: Cluster,
    force: bool = False,
    catalog: Catalog | None = None,
    initial: Mapping[str, str] | None = None,
) -> list[Violation]:
    """Raise UnsafePlan unless the plan is safe or `force` is given; returns what was overridden."""
    violations = verify(plan, cluster, catalog, initial)
    if violations and not force:
        raise UnsafePlan(violations)
    return violations
