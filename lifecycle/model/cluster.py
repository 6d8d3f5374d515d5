"""The operator's cluster: roles, nodes and policies, as loaded from cluster.yaml."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from functools import cached_property


class Evacuate(enum.Enum):
    LIVE_MIGRATE = "live-migrate"
    COLD_MIGRATE = "cold-migrate"
    NONE = "none"


@dataclass(frozen=True)
class MaxUnavailable:
    """A count (`2`) or a percentage (`"25%"`) of a group's hosts; never less than one host."""

    count: int | None = 1
    percent: float | None = None

    def resolve(self, members: int) -> int:
        if self.percent is not None:
            allowed = math.floor(members * self.percent / 100.0)
        else:
            allowed = self.count or 1
        return max(1, min(allowed, max(members, 1)))

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)


@dataclass(frozen=True)
class Policies:
    max_unavailable: MaxUnavailable = MaxUnavailable()
    aggregate_max_unavailable: tuple[tuple[str, MaxUnavailable], ...] = ()
    evacuate: Evacuate = Evacuate.LIVE_MIGRATE
    canary: int = 1
    failure_threshold: int = 0

    def max_unavailable_for(self, aggregate: str | None) -> MaxUnavailable:
        for name, value in self.aggregate_max_unavailable:
            if name == aggregate:
                return value
        return self.max_unavailable


@dataclass(frozen=True)
class BmcSpec:
    """How to reach a node's BMC. `credentials` names an entry of the secrets file."""

    driver: str
    address: str
    system_id: str | None = None
    credentials: str | None = None


@dataclass(frozen=True)
class RoleSpec:
    name: str
    services: tuple[str, ...]
    aggregate: str | None = None
    profile: str | None = None
    unknown_tripleo: tuple[str, ...] = ()  # imported TripleO services the catalog does not know


@dataclass(frozen=True)
class NodeSpec:
    name: str
    role: str
    address: str | None = None
    failure_domain: str = "default"
    bmc: BmcSpec | None = None


@dataclass(frozen=True)
class Cluster:
    """The desired state of one cloud, as the operator wrote it."""

    name: str
    release: str
    roles: tuple[RoleSpec, ...]
    nodes: tuple[NodeSpec, ...]
    policies: Policies = Policies()
    ceph_release: str | None = None
    credentials: str | None = None  # path of the secrets file, never its content
    source: str = field(default="", compare=False)  # the file it was loaded from
    # how `lifecycle run` reaches it when --driver is not given (sim|testbed|cloud); not part of
    # the desired state, so not of the digest either
    driver: str | None = field(default=None, compare=False)

    @cached_property
    def _roles(self) -> dict[str, RoleSpec]:
        return {r.name: r for r in self.roles}

    def role(self, name: str) -> RoleSpec:
        return self._roles[name]

    def node(self, name: str) -> NodeSpec:
        return self._nodes[name]

    @cached_property
    def _nodes(self) -> dict[str, NodeSpec]:
        return {n.name: n for n in self.nodes}

    def services_of(self, node: NodeSpec) -> tuple[str, ...]:
        return self._roles[node.role].services

    def aggregate_of(self, node: NodeSpec) -> str | None:
        return self._roles[node.role].aggregate

    @cached_property
    def members(self) -> dict[str, tuple[str, ...]]:
        """Service name -> the nodes running it, in inventory order."""
        out: dict[str, list[str]] = {}
        for node in self.nodes:
            for service in self._roles[node.role].services:
                out.setdefault(service, []).append(node.name)
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def digest(self) -> str:
        """sha256 of the desired state; a run refuses to resume when it changed."""
        import hashlib

        body = repr(
            (
                self.name,
                self.release,
                self.ceph_release,
                self.roles,
                self.nodes,
                self.policies,
                self.credentials,
            )
        )
        return "sha256:" + hashlib.sha256(body.encode()).hexdigest()
