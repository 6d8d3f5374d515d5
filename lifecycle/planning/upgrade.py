"""The rolling upgrade planner: cluster + target release -> a plan DAG that is safe in any order.

Every exclusion a safety rule needs is an edge of the DAG, never a matter of timing:
- a clustered service is upgraded in a chain of batches no larger than its quorum allows, with a
  health gate after each batch of a quorum service (the member must rejoin before the next goes);
- infra before control (every control service waits for all infra chains), dependencies from the
  catalog, database expand before a project's new code and contract after all of it is new;
- the data plane waits for a control-plane health gate, then each aggregate (or role) rolls in
  batches: canary first, then `max_unavailable`, each batch evacuated, upgraded, re-enabled and
  gated before the next;
- Ceph goes mon -> mgr -> osd -> mds -> rgw, OSD hosts one failure domain at a time under `noout`;
- over several hops, a control service moves to the next release only after every data-plane
  service that follows it has caught up (Nova's version skew), so hops overlap where skew allows.

The scheduler then packs the DAG (see scheduler.py). Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from lifecycle.catalog import Catalog, load_catalog
from lifecycle.errors import PlanningError, UnsupportedUpgrade
from lifecycle.model.cluster import Cluster, Evacuate, NodeSpec
from lifecycle.model.release import Release
from lifecycle.model.service import Quorum, ServiceSpec, Tier
from lifecycle.planning import actions as act
from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.scheduler import build_plan


@dataclass(frozen=True)
class UpgradeIntent:
    """What the operator asks for: an OpenStack target and, optionally, a Ceph target."""

    target: str
    ceph_target: str | None = None


@dataclass
class _Hop:
    """Ids of the steps later hops and phases attach to, for one hop of one release train."""

    source: Release
    target: Release
    prefix: str
    last: dict[str, str] = field(default_factory=dict)  # service -> its chain's final step
    data_last: dict[str, list[str]] = field(default_factory=dict)  # service -> group final gates
    group_last: dict[str, str] = field(default_factory=dict)  # data group -> its final gate
    expand: dict[str, str] = field(default_factory=dict)  # project -> db-expand step
    contract: dict[str, str] = field(default_factory=dict)  # project -> db-contract step

    def sid(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts)) if self.prefix else "/".join(parts)

    def finals(self, service: str) -> list[str]:
        """Steps after which every instance of `service` is at this hop's target."""
        if service in self.data_last:
            return self.data_last[service]
        return [self.last[service]] if service in self.last else []


class _Planner:
    def __init__(self, cluster: Cluster, catalog: Catalog) -> None:
        self.cluster = cluster
        self.catalog = catalog
        self.steps: list[Step] = []
        self.precheck_id = "precheck/cluster"
        self.durations = catalog.step_durations

    # --- helpers -----------------------------------------------------------------------------

    def add(self, step: Step) -> str:
        self.steps.append(step)
        return step.id

    def present(self, tiers: Sequence[Tier], ceph: bool) -> list[ServiceSpec]:
        """Services of the cluster in those tiers, in dependency order."""
        members = self.cluster.members
        return [
            self.catalog.services[name]
            for name in self.catalog.dependency_order()
            if name in members
            and self.catalog.services[name].tier in tiers
            and self.catalog.services[name].ceph == ceph
        ]

    def chain_size(self, spec: ServiceSpec, members: int) -> int:
        allowed = spec.quorum.max_down(members)
        policy = self.cluster.policies.max_unavailable.resolve(members)
        return max(1, min(allowed, policy))

    # --- control plane and infra -------------------------------------------------------------

    def service_chain(
        self, hop: _Hop, spec: ServiceSpec, phase: str, entry: list[str], rotation: int
    ) -> str:
        """Upgrade one service across its members, batch after batch; returns the final step."""
        members = list(self.cluster.members[spec.name])
        shift = rotation % len(members)
        members = members[shift:] + members[:shift]  # staggered starts let chains pipeline
        size = self.chain_size(spec, len(members))
        gated = spec.quorum is not Quorum.NONE
        previous = entry
        last = ""
        for i in range(0, len(members), size):
            batch = members[i : i + size]
            label = batch[0] if len(batch) == 1 else f"batch-{i // size + 1}"
            instances = tuple(f"{spec.name}@{n}" for n in batch)
            last = self.add(
                act.make_step(
                    hop.sid("upgrade", spec.name, label),
                    act.PLAYBOOK,
                    phase,
                    {
                        "playbook": act.UPGRADE_SERVICE,
                        "service": spec.name,
                        "release": hop.target.name,
                    },
                    nodes=tuple(batch),
                    upgrades=instances,
                    disrupts=instances,
                    depends_on=tuple(_unique(previous)),
                    duration=spec.duration,
                    batch=spec.name,
                )
            )
            final_batch = i + size >= len(members)
            if gated or final_batch:
                last = self.add(
                    act.make_step(
                        hop.sid("health", spec.name, label),
                        act.HEALTH,
                        phase,
                        {"services": [spec.name], "release": hop.target.name},
                        nodes=tuple(batch),
                        depends_on=(last,),
                        duration=self.durations["health_gate"],
                        batch=spec.name,
                    )
                )
            previous = [last]
        return last

    def control_plane(self, hop: _Hop, entry: list[str], previous: _Hop | None) -> str:
        """Infra then control services of one hop; returns the control-plane health gate."""
        infra = self.present([Tier.INFRA], ceph=False)
        control = self.present([Tier.CONTROL], ceph=False)
        infra_done: list[str] = []
        for rotation, spec in enumerate(infra):
            deps = entry + self.carry_over(hop, spec, previous)
            deps += [hop.last[d] for d in spec.depends_on if d in hop.last]
            hop.last[spec.name] = self.service_chain(hop, spec, "infra", deps, rotation)
            infra_done.append(hop.last[spec.name])
        self.db_expands(hop, infra_done or entry, previous)
        for rotation, spec in enumerate(control, start=len(infra)):
            deps = (infra_done or entry) + self.carry_over(hop, spec, previous)
            deps += [hop.last[d] for d in spec.depends_on if d in hop.last]
            if spec.project and spec.project in hop.expand:
                deps.append(hop.expand[spec.project])
            hop.last[spec.name] = self.service_chain(hop, spec, "control-plane", deps, rotation)
        names = [s.name for s in (*infra, *control)]
        return self.add(
            act.make_step(
                hop.sid("health", "control-plane"),
                act.HEALTH,
                "control-plane",
                {"services": names, "release": hop.target.name},
                depends_on=tuple(_unique(hop.last[n] for n in names) or entry),
                duration=self.durations["health_gate"],
            )
        )

    def carry_over(self, hop: _Hop, spec: ServiceSpec, previous: _Hop | None) -> list[str]:
        """What a service waits for from the previous hop: its own chain, and (the skew rule) every
        data-plane service that follows it must have caught up before it moves on again."""
        if previous is None:
            return []
        deps = list(previous.finals(spec.name))
        for other in self.catalog.services.values():
            if spec.name in other.follows:
                deps += previous.finals(other.name)
        return deps

    def db_expands(self, hop: _Hop, entry: list[str], previous: _Hop | None) -> None:
        """Expand each project's schema after infra is up (galera), before its new code."""
        for project, host in self.db_projects():
            deps = list(entry)
            if previous is not None and project in previous.contract:
                deps.append(previous.contract[project])
            hop.expand[project] = self.add(
                act.make_step(
                    hop.sid("db-expand", project),
                    act.PLAYBOOK,
                    "control-plane",
                    {
                        "playbook": act.DB_MIGRATE,
                        "project": project,
                        "phase": "expand",
                        "release": hop.target.name,
                    },
                    nodes=(host,),
                    depends_on=tuple(deps),
                    duration=self.durations["db_expand"],
                )
            )

    def db_contracts(self, hop: _Hop) -> list[str]:
        """Contract each project's schema once every instance of its services is new."""
        out = []
        for project, host in self.db_projects():
            services = [
                s for s in self.cluster.members if self.catalog.services[s].project == project
            ]
            deps = [hop.expand[project]] + [f for s in services for f in hop.finals(s)]
            hop.contract[project] = self.add(
                act.make_step(
                    hop.sid("db-contract", project),
                    act.PLAYBOOK,
                    "data-plane",
                    {
                        "playbook": act.DB_MIGRATE,
                        "project": project,
                        "phase": "contract",
                        "release": hop.target.name,
                    },
                    nodes=(host,),
                    depends_on=tuple(_unique(deps)),
                    duration=self.durations["db_contract"],
                )
            )
            out.append(hop.contract[project])
        return out

    def db_projects(self) -> list[tuple[str, str]]:
        """(project, host that runs its migrations) for projects with a control service here."""
        seen: dict[str, tuple[str, ...]] = {}
        for spec in self.present([Tier.CONTROL], ceph=False):
            if spec.project and spec.project not in seen:
                seen[spec.project] = self.cluster.members[spec.name]
        # spread migrations over the hosts that can run them: they are independent work
        return [
            (project, hosts[i % len(hosts)])
            for i, (project, hosts) in enumerate(sorted(seen.items()))
        ]

    # --- data plane ----------------------------------------------------------------------------

    def data_groups(self) -> list[tuple[str, list[NodeSpec]]]:
        """Nodes with data-plane services, grouped by aggregate (or by role when none)."""
        groups: dict[str, list[NodeSpec]] = {}
        for node in self.cluster.nodes:
            if self.data_services(node):
                aggregate = self.cluster.aggregate_of(node)
                key = f"aggregate:{aggregate}" if aggregate else f"role:{node.role}"
                groups.setdefault(key, []).append(node)
        return sorted(groups.items())

    def data_services(self, node: NodeSpec) -> list[ServiceSpec]:
        specs = (self.catalog.services[s] for s in self.cluster.services_of(node))
        return [s for s in specs if s.tier is Tier.DATA and not s.ceph]

    def data_plane(self, hop: _Hop, gate: str, previous: _Hop | None) -> None:
        for key, nodes in self.data_groups():
            entry = [gate] + ([previous.group_last[key]] if previous else [])
            finals = self.data_group(hop, key, nodes, entry)
            hop.group_last[key] = finals
            for node in nodes:
                for spec in self.data_services(node):
                    group_finals = hop.data_last.setdefault(spec.name, [])
                    if finals not in group_finals:
                        group_finals.append(finals)

    def batches(self, key: str, members: int) -> list[int]:
        """Batch sizes: the canary first, then as many hosts as max_unavailable allows."""
        aggregate = key.split(":", 1)[1] if key.startswith("aggregate:") else None
        policies = self.cluster.policies
        size = policies.max_unavailable_for(aggregate).resolve(members)
        canary = max(1, min(policies.canary, size, members))
        sizes = [canary]
        left = members - canary
        while left > 0:
            sizes.append(min(size, left))
            left -= sizes[-1]
        return sizes

    def data_group(self, hop: _Hop, key: str, nodes: list[NodeSpec], entry: list[str]) -> str:
        """Roll one group batch by batch; returns the group's final health gate."""
        name = key.split(":", 1)[1]
        workloads = any(s.workloads for n in nodes for s in self.data_services(n))
        evacuate = workloads and self.cluster.policies.evacuate is not Evacuate.NONE
        aggregate = name if key.startswith("aggregate:") else None
        previous, start = entry, 0
        for number, size in enumerate(self.batches(key, len(nodes)), start=1):
            batch = nodes[start : start + size]
            start += size
            previous = [self.data_batch(hop, name, aggregate, number, batch, previous, evacuate)]
        return previous[0]

    def data_batch(
        self,
        hop: _Hop,
        group: str,
        aggregate: str | None,
        number: int,
        batch: list[NodeSpec],
        entry: list[str],
        evacuate: bool,
    ) -> str:
        label = f"{group}/batch-{number}"
        names = tuple(n.name for n in batch)
        release = hop.target.name
        extra = {"aggregate": aggregate} if aggregate else {}
        previous = tuple(entry)
        if evacuate:
            previous = (
                self.add(
                    act.make_step(
                        hop.sid("evacuate", label),
                        act.EVACUATE,
                        "data-plane",
                        {"mode": self.cluster.policies.evacuate.value, **extra},
                        nodes=names,
                        depends_on=previous,
                        duration=self.durations["evacuate_host"],
                        batch=label,
                        idempotent=True,
                    )
                ),
            )
        instances = tuple(f"{s.name}@{n.name}" for n in batch for s in self.data_services(n))
        services = sorted({s.name for n in batch for s in self.data_services(n)})
        duration = max(sum(s.duration for s in self.data_services(n)) for n in batch)
        previous = (
            self.add(
                act.make_step(
                    hop.sid("upgrade", label),
                    act.PLAYBOOK,
                    "data-plane",
                    {"playbook": act.UPGRADE_NODE, "services": services, "release": release},
                    nodes=names,
                    upgrades=instances,
                    disrupts=instances,
                    depends_on=previous,
                    duration=duration,
                    batch=label,
                )
            ),
        )
        if evacuate:
            previous = (
                self.add(
                    act.make_step(
                        hop.sid("enable", label),
                        act.ENABLE,
                        "data-plane",
                        extra,
                        nodes=names,
                        depends_on=previous,
                        duration=self.durations["enable_host"],
                        batch=label,
                    )
                ),
            )
        return self.add(
            act.make_step(
                hop.sid("health", label),
                act.HEALTH,
                "data-plane",
                {"services": services, "release": release},
                nodes=names,
                depends_on=previous,
                duration=self.durations["health_gate"],
                batch=label,
            )
        )

    # --- ceph ----------------------------------------------------------------------------------

    def ceph_hop(self, hop: _Hop, entry: list[str], previous: _Hop | None) -> list[str]:
        finals: list[str] = []
        for rotation, spec in enumerate(self.present([Tier.STORAGE], ceph=True)):
            deps = list(entry) + (previous.finals(spec.name) if previous else [])
            deps += [hop.last[d] for d in spec.depends_on if d in hop.last]
            if spec.name == "ceph-osd":
                hop.last[spec.name] = self.osd_rollout(hop, spec, _unique(deps))
            else:
                hop.last[spec.name] = self.service_chain(hop, spec, "ceph", _unique(deps), rotation)
            finals.append(hop.last[spec.name])
        return finals

    def osd_rollout(self, hop: _Hop, spec: ServiceSpec, deps: list[str]) -> str:
        """OSD hosts one failure domain at a time, between `noout` set and unset."""
        members = self.cluster.members[spec.name]
        mons = self.cluster.members.get("ceph-mon", members)
        flag_host = (mons[0],)
        previous = self.add(
            act.make_step(
                hop.sid("ceph", "noout-set"),
                act.PLAYBOOK,
                "ceph",
                {"playbook": act.CEPH_FLAG, "flag": "noout", "state": "set"},
                nodes=flag_host,
                depends_on=tuple(deps),
                duration=self.durations["ceph_flag"],
            )
        )
        domains: dict[str, list[str]] = {}
        for name in members:
            domains.setdefault(self.cluster.node(name).failure_domain, []).append(name)
        if len(domains) < 2:  # one domain is no redundancy: Ceph's is then the host
            domains = {name: [name] for name in members}
        for domain, hosts in domains.items():
            instances = tuple(f"{spec.name}@{h}" for h in hosts)
            previous = self.add(
                act.make_step(
                    hop.sid("upgrade", spec.name, domain),
                    act.PLAYBOOK,
                    "ceph",
                    {
                        "playbook": act.UPGRADE_SERVICE,
                        "service": spec.name,
                        "release": hop.target.name,
                        "failure_domain": domain,
                    },
                    nodes=tuple(hosts),
                    upgrades=instances,
                    disrupts=instances,
                    depends_on=(previous,),
                    duration=spec.duration,
                    batch=f"ceph-osd/{domain}",
                )
            )
            previous = self.add(
                act.make_step(
                    hop.sid("health", spec.name, domain),
                    act.HEALTH,
                    "ceph",
                    {"services": [spec.name], "release": hop.target.name},
                    nodes=tuple(hosts),
                    depends_on=(previous,),
                    duration=self.durations["health_gate"],
                    batch=f"ceph-osd/{domain}",
                )
            )
        return self.add(
            act.make_step(
                hop.sid("ceph", "noout-unset"),
                act.PLAYBOOK,
                "ceph",
                {"playbook": act.CEPH_FLAG, "flag": "noout", "state": "unset"},
                nodes=flag_host,
                depends_on=(previous,),
                duration=self.durations["ceph_flag"],
            )
        )

    # --- the whole plan ------------------------------------------------------------------------

    def openstack_hops(self, hops: Sequence[tuple[Release, Release]]) -> list[str]:
        previous: _Hop | None = None
        finals: list[str] = []
        for source, target in hops:
            hop = _Hop(source, target, target.name if len(hops) > 1 else "")
            gate = self.control_plane(hop, [self.precheck_id], previous)
            self.data_plane(hop, gate, previous)
            finals = (
                self.db_contracts(hop)
                + [gate]
                + [f for group in hop.data_last.values() for f in group]
            )
            previous = hop
        return finals

    def ceph_hops(self, hops: Sequence[tuple[Release, Release]]) -> list[str]:
        previous: _Hop | None = None
        finals: list[str] = []
        for source, target in hops:
            hop = _Hop(source, target, "ceph-" + target.name if len(hops) > 1 else "")
            finals = self.ceph_hop(hop, [self.precheck_id], previous)
            previous = hop
        return finals


def _unique(ids: object) -> list[str]:
    out: list[str] = []
    for i in ids:  # type: ignore[attr-defined]
        if i not in out:
            out.append(i)
    return out


def upgrade_hops(
    cluster: Cluster, intent: UpgradeIntent, catalog: Catalog
) -> tuple[tuple[tuple[Release, Release], ...], tuple[tuple[Release, Release], ...]]:
    """The OpenStack and Ceph hops the intent asks for; refuses what the release rules forbid."""
    os_hops = catalog.openstack.hops(cluster.release, intent.target)
    ceph_hops: tuple[tuple[Release, Release], ...] = ()
    if intent.ceph_target:
        if not cluster.ceph_release:
            raise UnsupportedUpgrade(
                f"--ceph-to {intent.ceph_target}: cluster {cluster.name} names no ceph_release"
            )
        ceph_hops = catalog.ceph.hops(cluster.ceph_release, intent.ceph_target)
    if not os_hops and not ceph_hops:
        raise UnsupportedUpgrade(f"cluster {cluster.name} already runs {intent.target}")
    return os_hops, ceph_hops


def plan_upgrade(cluster: Cluster, intent: UpgradeIntent, catalog: Catalog | None = None) -> Plan:
    """A rolling upgrade plan of `cluster` to `intent`, scheduled, with its lower bound."""
    catalog = catalog or load_catalog()
    unknown = sorted(s for s in cluster.members if s not in catalog.services)
    if unknown:
        raise PlanningError(f"services not in the catalog: {', '.join(unknown)}")
    os_hops, ceph_hops = upgrade_hops(cluster, intent, catalog)
    planner = _Planner(cluster, catalog)
    planner.add(
        act.make_step(
            planner.precheck_id,
            act.PRECHECK,
            "precheck",
            {"release": cluster.release},
            duration=catalog.duration("precheck"),
        )
    )
    planner.openstack_hops(os_hops)
    planner.ceph_hops(ceph_hops)
    waited_for = {dep for step in planner.steps for dep in step.depends_on}
    finals = [s.id for s in planner.steps if s.id not in waited_for]
    target = os_hops[-1][1].name if os_hops else cluster.release
    planner.add(
        act.make_step(
            "postcheck/cluster",
            act.POSTCHECK,
            "postcheck",
            {"release": target},
            depends_on=tuple(_unique(finals)),
            duration=catalog.duration("postcheck"),
        )
    )
    extra: dict[str, str] = {}
    if ceph_hops:
        extra = {"ceph_from": ceph_hops[0][0].name, "ceph_to": ceph_hops[-1][1].name}
    return build_plan(
        "upgrade",
        cluster.name,
        planner.steps,
        source=cluster.release,
        target=target,
        inventory_digest=cluster.digest,
        lower_bound=capacity_bound(planner, len(os_hops)),
        extra=tuple(sorted(extra.items())),
    )


def capacity_bound(planner: _Planner, hops: int) -> float:
    """Per group and hop, at most max_unavailable hosts out at once: ceil(n / max_unavailable)
    rounds of the group's shortest per-host upgrade time."""
    best = 0.0
    for key, nodes in planner.data_groups():
        size = max(planner.batches(key, len(nodes)))
        per_host = min(sum(s.duration for s in planner.data_services(n)) for n in nodes)
        best = max(best, math.ceil(len(nodes) / size) * per_host * hops)
    return best
