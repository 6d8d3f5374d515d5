"""Services as the catalog describes them."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Tier(enum.IntEnum):
    """Upgrade order between tiers: infra before control before data. Storage (Ceph) is its own
    lane, ordered by its own dependencies (mon -> mgr -> osd -> mds -> rgw)."""

    INFRA = 0
    CONTROL = 1
    DATA = 2
    STORAGE = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class Quorum(enum.Enum):
    """How many members of a clustered service must stay up.

    MAJORITY: more than half of the members (3 members: one down at a time).
    ALL: every member is needed; members are never disrupted together and a single-member
         service is disrupted on its own.
    NONE: stateless; at least one member must stay up when there are several.
    """

    MAJORITY = "majority"
    ALL = "all"
    NONE = "none"

    def max_down(self, members: int) -> int:
        """How many members may be down at once without losing the service."""
        if members <= 1:
            return members  # nothing to keep: a lone member is simply restarted
        if self is Quorum.MAJORITY:
            return (members - 1) // 2
        if self is Quorum.ALL:
            return 1
        return members - 1


# What a Neutron agent can host that moves to a peer agent (Networking API: L3 agent scheduler,
# DHCP agent scheduler): a router of an L3 agent, a network of a DHCP agent.
CARRIED = ("routers", "networks")


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the catalog."""

    name: str
    tier: Tier
    quorum: Quorum = Quorum.NONE
    depends_on: tuple[str, ...] = ()
    workloads: bool = False
    tripleo: tuple[str, ...] = ()
    project: str | None = None  # projects with a database get expand/contract migrations
    follows: tuple[str, ...] = ()  # control services this one may lag but never lead (Nova skew)
    duration: float = 120.0  # seconds to upgrade one instance, an estimate for scheduling
    ceph: bool = False  # upgraded with the Ceph release, not the OpenStack one
    carries: str | None = None  # "routers" | "networks": what moves off before a disruption
    # services that wait for every instance of this one, against the tier order: OVN's
    # ovn-controller goes before ovn-northd and the OVN databases ("upgrade ovn-controller
    # first, then the central components", OVN's upgrade guide)
    precedes: tuple[str, ...] = ()

    @property
    def is_data_plane(self) -> bool:
        return self.tier is Tier.DATA
