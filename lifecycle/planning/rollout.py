"""What the upgrade planner's parts share: the hop being planned and the steps made so far."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lifecycle.catalog import Catalog
from lifecycle.model.cluster import Cluster, NodeSpec
from lifecycle.model.release import Release
from lifecycle.model.service import ServiceSpec, Tier
from lifecycle.planning import actions as act
from lifecycle.planning.plan import Step

PRECHECK_ID = "precheck/cluster"


def unique(ids: Iterable[str]) -> list[str]:
    """The ids in their first order, each once."""
    return list(dict.fromkeys(ids))


@dataclass
class Hop:
    """One hop of one release train, and the steps later hops and phases attach to."""

    source: Release
    target: Release
    prefix: str  # step id prefix, set when the plan has several hops
    last: dict[str, str] = field(default_factory=dict)  # service -> its chain's final step
    data_last: dict[str, list[str]] = field(default_factory=dict)  # service -> group gates
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


@dataclass
class Rollout:
    """The plan under construction: the cluster, the catalog and the steps added so far."""

    cluster: Cluster
    catalog: Catalog
    steps: list[Step] = field(default_factory=list)
    # a role's data-plane services, by (role, leading): asked once per node, known per role
    role_data: dict[tuple[str, bool], list[ServiceSpec]] = field(default_factory=dict)
    # data_plane.data_groups by `leading`: asked once per hop, by the lower bound and preflight
    data_groups: dict[bool, list[tuple[str, list[NodeSpec]]]] = field(default_factory=dict)
    # a role's agents that carry routers or networks (network.carried): asked once per node
    role_carried: dict[str, list[ServiceSpec]] = field(default_factory=dict)
    # a service's members sorted by name (network.peer_names): asked once per batch
    sorted_members: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # from the observed state (planning/observed.py); empty: the inventory is the truth
    releases: Mapping[str, int] = field(default_factory=dict)  # instance -> observed index
    down: Mapping[str, int] = field(default_factory=dict)  # service -> members on down nodes
    out: Mapping[str, int] = field(default_factory=dict)  # service -> members here but not serving
    group_down: Mapping[str, int] = field(default_factory=dict)  # data group -> hosts down
    planned_around: tuple[str, ...] = ()  # nodes down: checks leave them out (PLANNED_AROUND)

    def done(self, hop: Hop, instance: str) -> bool:
        """Whether `instance` was observed at (or past) the hop's target already."""
        index = self.releases.get(instance)
        return index is not None and index >= hop.target.index

    def confirm(
        self,
        hop: Hop,
        parts: Sequence[str],
        phase: str,
        instances: Sequence[str],
        deps: Iterable[str],
        batch: str | None = None,
    ) -> str:
        """Instances observed at the hop's target already: not upgraded again, only checked at
        that release where their upgrade would have been (a health gate that `upgrades` them in
        the plan's bookkeeping: after it they are known to be at the target)."""
        services = unique(i.partition("@")[0] for i in instances)
        nodes = unique(i.partition("@")[2] for i in instances)
        return self.add(
            hop.sid("confirm", *parts),
            act.HEALTH,
            phase,
            {"services": services, "release": hop.target.name, act.AT_LEAST: True},
            deps,
            nodes=tuple(nodes),
            upgrades=tuple(instances),
            duration=self.duration("health_gate"),
            batch=batch,
        )

    def duration(self, kind: str) -> float:
        return self.catalog.step_durations[kind]

    def present(self, tiers: Sequence[Tier], ceph: bool) -> list[ServiceSpec]:
        """Services of the cluster in those tiers, in dependency order."""
        members = self.cluster.members
        specs = (self.catalog.services[name] for name in self.catalog.dependency_order())
        return [s for s in specs if s.name in members and s.tier in tiers and s.ceph == ceph]

    def add(
        self,
        step_id: str,
        action: str,
        phase: str,
        params: Mapping[str, Any],
        deps: Iterable[str],
        **fields: Any,
    ) -> str:
        """Add a step; returns its id. Checks of a plan made around down nodes name them, so
        the checks driver leaves them out (they were down before the plan started)."""
        if self.planned_around and action.startswith("checks."):
            params = {**params, act.PLANNED_AROUND: list(self.planned_around)}
        step = act.make_step(
            step_id, action, phase, params, depends_on=tuple(unique(deps)), **fields
        )
        self.steps.append(step)
        return step.id

    def upgrade(
        self,
        hop: Hop,
        parts: Sequence[str],
        phase: str,
        params: Mapping[str, Any],
        nodes: Sequence[str],
        instances: Sequence[str],
        deps: Iterable[str],
        duration: float,
        batch: str,
    ) -> str:
        """A step that brings `instances` to the hop's target, disrupting them meanwhile."""
        return self.add(
            hop.sid("upgrade", *parts),
            act.PLAYBOOK,
            phase,
            {**params, "release": hop.target.name},
            deps,
            nodes=tuple(nodes),
            upgrades=tuple(instances),
            disrupts=tuple(instances),
            duration=duration,
            batch=batch,
        )

    def health(
        self,
        hop: Hop,
        parts: Sequence[str],
        phase: str,
        services: Sequence[str],
        nodes: Sequence[str],
        deps: Iterable[str],
        batch: str | None = None,
    ) -> str:
        """A health gate: the services answer at the hop's target on those nodes."""
        return self.add(
            hop.sid("health", *parts),
            act.HEALTH,
            phase,
            {"services": list(services), "release": hop.target.name},
            deps,
            nodes=tuple(nodes),
            duration=self.duration("health_gate"),
            batch=batch,
        )
