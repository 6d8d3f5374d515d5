"""The schedule replayed moment by moment: who is down, drained, at which release.

The verifier (verifier.py) feeds it the plan's step starts and ends in time order; it records a
Violation for every rule broken at that moment. It reads only the plan, the cluster and the catalog.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from lifecycle.catalog import Catalog
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


def database_projects(plan: Plan, cluster: Cluster, catalog: Catalog) -> set[str]:
    """Projects whose schema an upgrade migrates: those with a migration step in the plan and,
    in an upgrade, every project of a control service the cluster runs (so a plan whose
    `db-expand` step was deleted is caught, not taken for a project without a database)."""
    phases = (act.db_phase(s) for s in plan.steps)
    found = {p[0] for p in phases if p}
    if plan.operation == "upgrade":
        for service in cluster.members:
            spec = catalog.services.get(service)
            if spec and spec.tier is Tier.CONTROL and spec.project and not spec.ceph:
                found.add(spec.project)
    return found


def instance(text: str) -> tuple[str, str]:
    service, _, node = text.partition("@")
    return service, node


class Replay:
    """State of the cluster along the schedule."""

    def __init__(
        self,
        plan: Plan,
        cluster: Cluster,
        catalog: Catalog,
        initial: Mapping[str, str] | None = None,
    ) -> None:
        self.plan, self.cluster, self.catalog = plan, cluster, catalog
        # instance -> release before the plan starts, where it is not the inventory's release
        # (the recorded or observed state: a plan of what is left after an aborted run)
        self.initial: Mapping[str, str] = initial or {}
        self.start_version: dict[str, int] = {}
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
        # instance -> the release indexes it was upgraded to, in order; instances upgraded by
        # the same steps share one tuple (a batch's hosts): ~12 MB less at 50,000 nodes than a
        # list each, as measured by the scale work
        self.history: dict[str, tuple[int, ...]] = {}
        # (id of a history, one more release) -> the longer history; holds every history alive
        # (so that no id is reused while it is a key)
        self._longer: dict[tuple[int, int], tuple[int, ...]] = {}
        self.expanded: dict[str, set[int]] = defaultdict(set)
        self.contracted: dict[str, set[int]] = defaultdict(set)
        self.group_of: dict[str, str] = {}
        self.group_limit: dict[str, int] = {}
        self.db_projects = database_projects(plan, cluster, catalog)
        self._prereqs: dict[str, list[str]] = {}
        self._is_data: dict[str, bool] = {}
        self._newest_at_start: dict[str, int] = {}  # service -> newest release of an instance
        # project -> the newest release an instance of its services runs at the start
        self.newest_schema: dict[str, int] = {}
        self._init_versions()
        self._init_schemas()
        self._init_groups()

    # --- set-up ------------------------------------------------------------------------------

    def train(self, service: str) -> ReleaseTrain:
        return self.catalog.ceph if self.catalog.services[service].ceph else self.catalog.openstack

    def _init_versions(self) -> None:
        # counted per (service, release) first: 50,000 instances start at a handful of releases
        for service, nodes in self.cluster.members.items():
            spec = self.catalog.services[service]
            start = self.cluster.ceph_release if spec.ceph else self.cluster.release
            if start is None:
                continue
            train = self.train(service)
            base = train.get(start).index
            counts: dict[int, int] = defaultdict(int)
            for node in nodes:
                text = f"{service}@{node}"
                known = self.initial.get(text)
                index = train.get(known).index if known else base
                self.start_version[text] = index
                counts[index] += 1
            for index, count in counts.items():
                for i in range(index + 1):
                    self.at_least[(service, i)] += count
            self._newest_at_start[service] = max(counts, default=-1)
        self.version = dict(self.start_version)

    def _init_schemas(self) -> None:
        """A project's schema is expanded for every release up to the newest one an instance of
        its services runs at the start (a plan of what is left: the earlier run expanded it)."""
        for service, index in self._newest_at_start.items():
            project = self.catalog.project_of(service)
            if project and not self.catalog.services[service].ceph and index >= 0:
                newest = self.newest_schema
                newest[project] = max(newest.get(project, -1), index)
        for project, index in self.newest_schema.items():
            self.expanded[project].update(range(index + 1))

    def _init_groups(self) -> None:
        sizes: dict[str, int] = defaultdict(int)
        policies = self.cluster.policies
        has_data: dict[str, bool] = {}  # by role: asked for every node
        for node in self.cluster.nodes:
            found = has_data.get(node.role)
            if found is None:
                services = self.cluster.services_of(node)
                found = has_data[node.role] = any(self.is_data(s) for s in services)
            if not found:
                continue
            aggregate = self.cluster.aggregate_of(node)
            group = f"aggregate:{aggregate}" if aggregate else f"role:{node.role}"
            self.group_of[node.name] = group
            sizes[group] += 1
        for group, size in sizes.items():
            aggregate = group.split(":", 1)[1] if group.startswith("aggregate:") else None
            self.group_limit[group] = policies.max_unavailable_for(aggregate).resolve(size)

    def is_data(self, service: str) -> bool:
        known = self._is_data.get(service)
        if known is None:
            spec = self.catalog.services[service]
            known = self._is_data[service] = spec.tier is Tier.DATA and not spec.ceph
        return known

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
        checked: set[str] = set()
        for text in step.upgrades:
            # the release rules depend on the service, not the node: once per service and step
            service = text.partition("@")[0]
            if service in checked and text in self.version:
                continue
            checked.add(service)
            self.check_upgrade(step, time, text)
        phase = act.db_phase(step)
        if phase and phase[1] == "contract":
            self.check_contract(step, time, phase[0])
        for text in step.disrupts:
            self.disrupt(step, time, text)
        self.check_capacity(step, time)

    def end(self, step: Step, time: float) -> None:
        for text in step.disrupts:
            service, _, node = text.partition("@")
            down = self.down[service]
            if node not in down:
                continue
            down.discard(node)
            if self.is_data(service):
                self.mark_out(node, -1)
            if service == "ceph-osd":
                self.osd_domains[self.cluster.node(node).failure_domain] -= 1
        self.apply_upgrades(step)
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
        service, _, node = text.partition("@")
        spec = self.catalog.services.get(service)
        if spec is None or text not in self.version:
            self.fail(time, "plan", f"{text} is not an instance of this cluster", step)
            return
        down = self.down[service]
        if node in down:
            self.fail(time, "plan", f"{text} disrupted twice at once", step)
            return
        down.add(node)
        if self.is_data(service):
            self.mark_out(node, +1)
        else:
            members = len(self.cluster.members[service])
            allowed = spec.quorum.max_down(members)
            if len(down) > allowed:
                rule = "quorum" if spec.quorum is not Quorum.NONE else "availability"
                self.fail(
                    time,
                    rule,
                    f"{service} has {len(down)} of {members} "
                    f"members down ({', '.join(sorted(down))}); "
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
        reasons = self.reasons[node] = self.reasons[node] + change
        if reasons > 0:
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
        service, _ = instance(text)
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
            oldest = self.oldest(follower, target.index)
            if not train.skew_allowed(train.releases[oldest], target):
                self.fail(
                    time,
                    "skew",
                    f"{text} -> {release} while {follower} is still at "
                    f"{train.releases[oldest].name}",
                    step,
                )
        project = self.catalog.project_of(service)
        if (
            project
            and self.has_db(project)
            and not spec.ceph
            and target.index not in self.expanded[project]
        ):
            self.fail(
                time,
                "database",
                f"{text} -> {release} before the {project} schema was expanded for {release}",
                step,
            )

    def oldest(self, service: str, below: int) -> int:
        """The oldest release index any instance of `service` runs now (at most `below`)."""
        members = len(self.cluster.members[service])
        index = below
        while index > 0 and self.at_least[(service, index)] < members:
            index -= 1
        return index

    def prerequisites(self, service: str) -> list[str]:
        """Services whose every instance must be at a release before `service` moves to it."""
        if service not in self._prereqs:
            self._prereqs[service] = self._prerequisites(service)
        return self._prereqs[service]

    def _prerequisites(self, service: str) -> list[str]:
        spec = self.catalog.services[service]
        out = set(spec.depends_on) | set(self.catalog.preceded_by(service))
        if spec.precedes:
            # it goes before the services it precedes, so the tier order does not hold for it
            return sorted(s for s in out if s in self.cluster.members)
        for other, nodes in self.cluster.members.items():
            other_spec = self.catalog.services[other]
            if other_spec.ceph != spec.ceph or not nodes or service in other_spec.precedes:
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

    def apply_upgrades(self, step: Step) -> None:
        """The step's instances now run its release (the index is looked up once per service:
        a batch upgrades thousands of instances of a few services)."""
        release = step.param("release")
        if not isinstance(release, str) or not step.upgrades:
            return
        version, history, longer = self.version, self.history, self._longer
        targets: dict[str, int] = {}
        moved: dict[tuple[str, int, int], int] = defaultdict(int)  # (service, old, new) -> count
        for text in step.upgrades:
            old = version.get(text)
            if old is None:
                continue
            service = text.partition("@")[0]
            new = targets.get(service)
            if new is None:
                new = targets[service] = self.train(service).get(release).index
            moved[(service, old, new)] += 1
            if new > old:
                version[text] = new
            got = history.get(text, ())
            key = (id(got), new)
            grown = longer.get(key)
            if grown is None:
                grown = longer[key] = (*got, new)
            history[text] = grown
        for (service, old, new), count in moved.items():
            for i in range(old + 1, new + 1):
                self.at_least[(service, i)] += count

    def check_contract(self, step: Step, time: float, project: str) -> None:
        release = step.param("release")
        if not isinstance(release, str):
            return
        index = self.catalog.openstack.get(release).index
        for service, nodes in self.cluster.members.items():
            if self.catalog.services[service].ceph or self.catalog.project_of(service) != project:
                continue
            if self.at_least[(service, index)] < len(nodes):
                self.fail(
                    time,
                    "database",
                    f"{project} schema contracted for {release} "
                    f"while {service} instances are older",
                    step,
                )
