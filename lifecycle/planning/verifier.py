"""The safety verifier: replays a plan's schedule and names every moment a rule breaks.

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
- ``gates``: a precheck before any disruption, a postcheck after all, a health gate between
  consecutive batches of a data-plane group, and a first batch no larger than the canary.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise

import networkx as nx

from lifecycle.catalog import Catalog, load_catalog
from lifecycle.errors import UnsafePlan
from lifecycle.model.cluster import Cluster, Evacuate
from lifecycle.model.release import ReleaseTrain
from lifecycle.model.service import Quorum, Tier
from lifecycle.planning import actions as act
from lifecycle.planning.plan import Plan, Step


@dataclass(frozen=True, order=True)
class Violation:
    """One broken rule at one moment of the schedule."""

    time: float
    rule: str
    message: str
    step: str = ""

    def __str__(self) -> str:
        at = f" [{self.step}]" if self.step else ""
        return f"t={self.time:.0f}s {self.rule}: {self.message}{at}"


def _instance(text: str) -> tuple[str, str]:
    service, _, node = text.partition("@")
    return service, node


class _Replay:
    """State of the cluster along the schedule."""

    def __init__(self, plan: Plan, cluster: Cluster, catalog: Catalog) -> None:
        self.plan, self.cluster, self.catalog = plan, cluster, catalog
        self.violations: list[Violation] = []
        self.down: dict[str, set[str]] = defaultdict(set)  # service -> nodes disrupted
        self.drained: set[str] = set()
        self.reasons: dict[str, int] = defaultdict(
            int
        )  # host -> why it is out (drain, disruptions)
        self.out: dict[str, set[str]] = defaultdict(set)  # group -> hosts out
        self.noout = False
        self.osd_domains: dict[str, int] = defaultdict(int)
        self.version: dict[str, int] = {}  # instance -> release index
        self.at_least: dict[tuple[str, int], int] = defaultdict(int)  # (service, idx) -> count
        self.history: dict[str, list[int]] = defaultdict(list)
        self.expanded: dict[str, set[int]] = defaultdict(set)
        self.contracted: dict[str, set[int]] = defaultdict(set)
        self.group_of: dict[str, str] = {}
        self.group_limit: dict[str, int] = {}
        phases = (act.db_phase(s) for s in plan.steps)
        self.db_projects = {p[0] for p in phases if p and p[1] == "expand"}
        self._prereqs: dict[str, list[str]] = {}
        self._init_versions()
        self._init_groups()

    # --- set-up ------------------------------------------------------------------------------

    def train(self, service: str) -> ReleaseTrain:
        return self.catalog.ceph if self.catalog.services[service].ceph else self.catalog.openstack

    def _init_versions(self) -> None:
        for service, nodes in self.cluster.members.items():
            spec = self.catalog.services[service]
            start = self.cluster.ceph_release if spec.ceph else self.cluster.release
            if start is None:
                continue
            index = self.train(service).get(start).index
            for node in nodes:
                self.version[f"{service}@{node}"] = index
            for i in range(index + 1):
                self.at_least[(service, i)] += len(nodes)

    def _init_groups(self) -> None:
        sizes: dict[str, int] = defaultdict(int)
        policies = self.cluster.policies
        for node in self.cluster.nodes:
            if not any(self._is_data(s) for s in self.cluster.services_of(node)):
                continue
            aggregate = self.cluster.aggregate_of(node)
            group = f"aggregate:{aggregate}" if aggregate else f"role:{node.role}"
            self.group_of[node.name] = group
            sizes[group] += 1
        for group, size in sizes.items():
            aggregate = group.split(":", 1)[1] if group.startswith("aggregate:") else None
            self.group_limit[group] = policies.max_unavailable_for(aggregate).resolve(size)

    def _is_data(self, service: str) -> bool:
        spec = self.catalog.services[service]
        return spec.tier is Tier.DATA and not spec.ceph

    def fail(self, time: float, rule: str, message: str, step: Step | None = None) -> None:
        self.violations.append(Violation(time, rule, message, step.id if step else ""))

    # --- events ------------------------------------------------------------------------------

    def start(self, step: Step, time: float) -> None:
        if step.action == act.EVACUATE:
            for node in set(step.nodes) - self.drained:
                self.drained.add(node)
                self.mark_out(node, +1)
        if act.is_noout(step, "unset"):
            self.noout = False
        for text in step.upgrades:
            self.check_upgrade(step, time, text)
        phase = act.db_phase(step)
        if phase and phase[1] == "contract":
            self.check_contract(step, time, phase[0])
        for text in step.disrupts:
            self.disrupt(step, time, text)
        self.check_capacity(step, time)

    def end(self, step: Step, time: float) -> None:
        for text in step.disrupts:
            service, node = _instance(text)
            if node not in self.down[service]:
                continue
            self.down[service].discard(node)
            if self._is_data(service):
                self.mark_out(node, -1)
            if service == "ceph-osd":
                self.osd_domains[self.cluster.node(node).failure_domain] -= 1
        for text in step.upgrades:
            self.apply_upgrade(step, text)
        if step.action == act.ENABLE:
            for node in set(step.nodes) & self.drained:
                self.drained.discard(node)
                self.mark_out(node, -1)
        phase = act.db_phase(step)
        release = step.param("release")
        if phase and isinstance(release, str):
            index = self.catalog.openstack.get(release).index
            (self.expanded if phase[1] == "expand" else self.contracted)[phase[0]].add(index)
        if act.is_noout(step, "set"):
            self.noout = True

    def disrupt(self, step: Step, time: float, text: str) -> None:
        service, node = _instance(text)
        spec = self.catalog.services.get(service)
        if spec is None or text not in self.version:
            self.fail(time, "plan", f"{text} is not an instance of this cluster", step)
            return
        if node in self.down[service]:
            self.fail(time, "plan", f"{text} disrupted twice at once", step)
            return
        self.down[service].add(node)
        if self._is_data(service):
            self.mark_out(node, +1)
        members = len(self.cluster.members[service])
        if not self._is_data(service):
            allowed = spec.quorum.max_down(members)
            if len(self.down[service]) > allowed:
                rule = "quorum" if spec.quorum is not Quorum.NONE else "availability"
                self.fail(
                    time,
                    rule,
                    f"{service} has {len(self.down[service])} of {members} "
                    f"members down ({', '.join(sorted(self.down[service]))}); "
                    f"at most {allowed} allowed",
                    step,
                )
        if (
            spec.workloads
            and self.cluster.policies.evacuate is not Evacuate.NONE
            and node not in self.drained
        ):
            self.fail(time, "evacuation", f"{text} disrupted on a host not evacuated", step)
        if service == "ceph-osd":
            self.disrupt_osd(step, time, node)

    def disrupt_osd(self, step: Step, time: float, node: str) -> None:
        self.osd_domains[self.cluster.node(node).failure_domain] += 1
        down = sorted(d for d, n in self.osd_domains.items() if n > 0)
        if len(down) > 1:
            self.fail(
                time, "ceph", f"OSDs of {len(down)} failure domains down ({', '.join(down)})", step
            )
        if not self.noout:
            self.fail(time, "ceph", f"ceph-osd@{node} disrupted without noout set", step)

    def mark_out(self, node: str, change: int) -> None:
        group = self.group_of.get(node)
        if group is None:
            return
        self.reasons[node] += change
        if self.reasons[node] > 0:
            self.out[group].add(node)
        else:
            self.out[group].discard(node)

    def check_capacity(self, step: Step, time: float) -> None:
        if not (step.disrupts or step.action == act.EVACUATE):
            return
        for group in {self.group_of[n] for n in step.nodes if n in self.group_of}:
            if len(self.out[group]) > self.group_limit[group]:
                self.fail(
                    time,
                    "capacity",
                    f"{group} has {len(self.out[group])} hosts out "
                    f"({', '.join(sorted(self.out[group]))}); max_unavailable is "
                    f"{self.group_limit[group]}",
                    step,
                )

    # --- release rules -------------------------------------------------------------------------

    def check_upgrade(self, step: Step, time: float, text: str) -> None:
        service, _ = _instance(text)
        if service not in self.catalog.services or text not in self.version:
            self.fail(time, "plan", f"{text} is not an instance of this cluster", step)
            return
        release = step.param("release")
        if not isinstance(release, str):
            self.fail(time, "plan", f"step upgrades {text} but names no release", step)
            return
        train = self.train(service)
        target = train.get(release)
        spec = self.catalog.services[service]
        for dep in self.prerequisites(service):
            if self.at_least[(dep, target.index)] < len(self.cluster.members[dep]):
                self.fail(
                    time, "order", f"{text} -> {release} before every {dep} is at {release}", step
                )
        for follower in self.followers(service):
            oldest = min(self.version[f"{follower}@{n}"] for n in self.cluster.members[follower])
            if not train.skew_allowed(train.releases[oldest], target):
                self.fail(
                    time,
                    "skew",
                    f"{text} -> {release} while {follower} is still at "
                    f"{train.releases[oldest].name}",
                    step,
                )
        if (
            spec.project
            and self.has_db(spec.project)
            and not spec.ceph
            and target.index not in self.expanded[spec.project]
        ):
            self.fail(
                time,
                "database",
                f"{text} -> {release} before the {spec.project} schema was expanded for {release}",
                step,
            )

    def prerequisites(self, service: str) -> list[str]:
        """Services whose every instance must be at a release before `service` moves to it."""
        if service not in self._prereqs:
            self._prereqs[service] = self._prerequisites(service)
        return self._prereqs[service]

    def _prerequisites(self, service: str) -> list[str]:
        spec = self.catalog.services[service]
        out = set(spec.depends_on)
        for other, nodes in self.cluster.members.items():
            other_spec = self.catalog.services[other]
            if other_spec.ceph != spec.ceph or not nodes:
                continue
            if spec.tier is Tier.CONTROL and other_spec.tier is Tier.INFRA:
                out.add(other)
            if spec.tier is Tier.DATA and other_spec.tier in (Tier.INFRA, Tier.CONTROL):
                out.add(other)
        return sorted(s for s in out if s in self.cluster.members)

    def followers(self, service: str) -> list[str]:
        return [s for s in self.cluster.members if service in self.catalog.services[s].follows]

    def has_db(self, project: str) -> bool:
        return project in self.db_projects

    def apply_upgrade(self, step: Step, text: str) -> None:
        release = step.param("release")
        service, _ = _instance(text)
        if not isinstance(release, str) or text not in self.version:
            return
        new = self.train(service).get(release).index
        old = self.version[text]
        for i in range(old + 1, new + 1):
            self.at_least[(service, i)] += 1
        self.version[text] = max(old, new)
        self.history[text].append(new)

    def check_contract(self, step: Step, time: float, project: str) -> None:
        release = step.param("release")
        if not isinstance(release, str):
            return
        index = self.catalog.openstack.get(release).index
        for service, nodes in self.cluster.members.items():
            if self.catalog.services[service].project != project:
                continue
            if self.at_least[(service, index)] < len(nodes):
                self.fail(
                    time,
                    "database",
                    f"{project} schema contracted for {release} "
                    f"while {service} instances are older",
                    step,
                )


def _check_dag(plan: Plan) -> list[Violation]:
    out: list[Violation] = []
    graph: nx.DiGraph = nx.DiGraph()
    for step in plan.steps:
        graph.add_node(step.id)
        for dep in step.depends_on:
            if dep not in plan.by_id:
                out.append(Violation(0.0, "dag", f"depends on unknown step {dep}", step.id))
                continue
            graph.add_edge(dep, step.id)
            if plan.end_of(dep) > plan.start_of[step.id] + 1e-6:
                out.append(
                    Violation(
                        plan.start_of[step.id],
                        "dag",
                        f"starts before its dependency {dep} ends",
                        step.id,
                    )
                )
    if not nx.is_directed_acyclic_graph(graph):
        cycle = [e[0] for e in nx.find_cycle(graph)]
        out.append(Violation(0.0, "dag", "dependency cycle: " + " -> ".join(cycle)))
    return out


def _check_gates(plan: Plan, replay: _Replay) -> list[Violation]:
    out: list[Violation] = []
    disruptive = [(t, s) for s, t in plan.scheduled() if s.disrupts or s.action == act.EVACUATE]
    prechecks = [plan.end_of(s.id) for s in plan.steps if s.action == act.PRECHECK]
    if disruptive and (not prechecks or min(t for t, _ in disruptive) < min(prechecks)):
        out.append(Violation(0.0, "gates", "no precheck before the first disruptive step"))
    posts = [plan.start_of[s.id] for s in plan.steps if s.action == act.POSTCHECK]
    last_end = max(
        (plan.end_of(s.id) for s in plan.steps if s.action != act.POSTCHECK), default=0.0
    )
    if plan.steps and (not posts or max(posts) < last_end - 1e-6):
        out.append(Violation(last_end, "gates", "no postcheck after the last step"))
    out += _check_batches(plan, replay)
    return out


def _check_batches(plan: Plan, replay: _Replay) -> list[Violation]:
    """Between consecutive disruptions of a data-plane group, a health gate covering the earlier
    batch; the group's first batch no larger than the canary."""
    out: list[Violation] = []
    by_group: dict[tuple[str, object], list[Step]] = defaultdict(list)
    for step in plan.steps:
        if any(replay._is_data(_instance(d)[0]) for d in step.disrupts):
            groups = {replay.group_of.get(n, "") for n in step.nodes}
            for group in groups:
                by_group[(group, step.param("release"))].append(step)
    health: dict[str, list[Step]] = defaultdict(list)
    for s in plan.steps:
        if s.action == act.HEALTH:
            for node in s.nodes:
                health[node].append(s)
    canary = replay.cluster.policies.canary
    for (group, _), steps in by_group.items():
        steps.sort(key=lambda s: plan.start_of[s.id])
        first = [n for n in steps[0].nodes if replay.group_of.get(n) == group]
        if len(first) > max(canary, 1):
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


def _check_once(plan: Plan, replay: _Replay) -> list[Violation]:
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
    for text in replay.version:
        service, _ = _instance(text)
        want = targets[cat.services[service].ceph]
        got = replay.history.get(text, [])
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


def _names(train: ReleaseTrain, indexes: list[int]) -> str:
    return "[" + ", ".join(train.releases[i].name for i in indexes) + "]"


def verify(plan: Plan, cluster: Cluster, catalog: Catalog | None = None) -> list[Violation]:
    """Every rule the plan breaks, in time order; an empty list means the plan is safe."""
    catalog = catalog or load_catalog()
    violations = _check_dag(plan)
    if any("cycle" in v.message for v in violations):
        return violations
    replay = _Replay(plan, cluster, catalog)
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
    violations += replay.violations
    if plan.operation == "upgrade":
        violations += _check_once(plan, replay)
    violations += _check_gates(plan, replay)
    return sorted(violations)


def check_safe(
    plan: Plan, cluster: Cluster, force: bool = False, catalog: Catalog | None = None
) -> list[Violation]:
    """Raise UnsafePlan unless the plan is safe or `force` is given; returns what was overridden."""
    violations = verify(plan, cluster, catalog)
    if violations and not force:
        raise UnsafePlan(violations)
    return violations
