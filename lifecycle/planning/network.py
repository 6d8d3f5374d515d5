"""Network nodes: an L3 agent's routers and a DHCP agent's networks move to the same agent on
another node before their node is disrupted, where such a peer exists.

Neutron does not move them by itself (legacy, non-HA routers stay on their agent while it is
down: north-south traffic and floating IPs of those routers stop; a network's DHCP agent stops
answering). The Networking API's L3 agent scheduler (`/v2.0/agents/{id}/l3-routers`) and DHCP
agent scheduler (`/v2.0/agents/{id}/dhcp-networks`) move them; the catalog's `carries` says which
agents hold what. Pure: planning only.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from lifecycle.model.cluster import NodeSpec
from lifecycle.model.service import ServiceSpec
from lifecycle.planning import actions as act
from lifecycle.planning.rollout import Hop, Rollout


def carried(rollout: Rollout, node: NodeSpec) -> list[ServiceSpec]:
    """The node's agents that host routers or networks (empty: not a network node)."""
    specs = (rollout.catalog.services[s] for s in rollout.cluster.services_of(node))
    return [s for s in specs if s.carries]


def peers(rollout: Rollout, service: str, batch: Collection[str]) -> list[str]:
    """Nodes outside the batch running the same agent: where its routers or networks can go
    (`batch` a set: it is tested once per member of the agent)."""
    return [n for n in rollout.cluster.members.get(service, ()) if n not in batch]


class _Peers:
    """peers() of one batch, once per agent: every network node of a batch asks for the same
    agents' peers (a list of all the agent's members each time)."""

    def __init__(self, rollout: Rollout, batch: frozenset[str]) -> None:
        self.rollout, self.batch = rollout, batch
        self.found: dict[str, list[str]] = {}

    def __call__(self, service: str) -> list[str]:
        if service not in self.found:
            self.found[service] = peers(self.rollout, service, self.batch)
        return self.found[service]


def stranded(rollout: Rollout, batch: Sequence[NodeSpec]) -> list[tuple[str, list[str]]]:
    """(node, its agents with no peer outside the batch) for each such node of the batch."""
    names = frozenset(n.name for n in batch)
    known = _Peers(rollout, names)
    out = []
    for node in batch:
        alone = [s.name for s in carried(rollout, node) if not known(s.name)]
        if alone:
            out.append((node.name, alone))
    return out


def drain_network(
    rollout: Rollout, hop: Hop, label: str, batch: Sequence[NodeSpec], deps: list[str]
) -> list[str]:
    """A `compute.drain_network` step for the batch's network nodes that have a peer, after
    `deps`; returns [its id], or [] when the batch holds no such node. Not disruptive: the
    agents keep running, only their routers and networks move."""
    known = _Peers(rollout, frozenset(n.name for n in batch))
    agents: dict[str, None] = {}
    targets: dict[str, None] = {}
    nodes = []
    for node in batch:
        movable = [s for s in carried(rollout, node) if known(s.name)]
        if movable:
            nodes.append(node.name)
        for spec in movable:
            if spec.name not in agents:
                agents[spec.name] = None
                targets.update(dict.fromkeys(known(spec.name)))
    if not nodes:
        return []
    params = {"agents": list(agents), "targets": sorted(targets)}
    return [
        rollout.add(
            hop.sid("drain-network", label),
            act.DRAIN_NETWORK,
            "data-plane",
            params,
            deps,
            nodes=tuple(nodes),
            duration=rollout.duration("drain_network"),
            batch=label,
        )
    ]
