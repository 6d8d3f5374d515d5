"""Network nodes: an L3 agent's routers and a DHCP agent's networks move to the same agent on
another node before their node is disrupted, where such a peer exists.

Neutron does not move them by itself (legacy, non-HA routers stay on their agent while it is
down: north-south traffic and floating IPs of those routers stop; a network's DHCP agent stops
answering). The Networking API's L3 agent scheduler (`/v2.0/agents/{id}/l3-routers`) and DHCP
agent scheduler (`/v2.0/agents/{id}/dhcp-networks`) move them; the catalog's `carries` says which
agents hold what. Pure: planning only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import filterfalse

from lifecycle.model.cluster import NodeSpec
from lifecycle.model.service import ServiceSpec
from lifecycle.planning import actions as act
from lifecycle.planning.rollout import Hop, Rollout


def carried(rollout: Rollout, node: NodeSpec) -> list[ServiceSpec]:
    """The node's agents that host routers or networks (empty: not a network node); they
    depend on its role only, asked for every host of every batch."""
    found = rollout.role_carried.get(node.role)
    if found is None:
        specs = (rollout.catalog.services[s] for s in rollout.cluster.services_of(node))
        found = rollout.role_carried[node.role] = [s for s in specs if s.carries]
    return found


def has_peer(rollout: Rollout, service: str, batch: frozenset[str]) -> bool:
    """Whether the agent runs on a node outside the batch (a set's C loop that stops at the
    first such node, not the list of all of them)."""
    return not batch.issuperset(rollout.cluster.members.get(service, ()))


def peer_names(rollout: Rollout, agents: Iterable[str], batch: frozenset[str]) -> list[str]:
    """The nodes outside the batch that run one of the agents, sorted (where their routers and
    networks can go), from each agent's members sorted once per plan: a cloud of 1,000 network
    nodes upgraded one at a time asks 1,000 times for ~1,000 names (the part of a 50,000-node
    plan that grows with the square of its network nodes)."""
    known = rollout.sorted_members
    groups = []
    for agent in agents:
        if agent not in known:
            known[agent] = tuple(sorted(set(rollout.cluster.members.get(agent, ()))))
        if known[agent] not in groups:  # network nodes run the L3 and DHCP agents alike
            groups.append(known[agent])
    names = groups[0] if len(groups) == 1 else sorted(set().union(*groups))
    return list(filterfalse(batch.__contains__, names))


def stranded(rollout: Rollout, batch: Sequence[NodeSpec]) -> list[tuple[str, list[str]]]:
    """(node, its agents with no peer outside the batch) for each such node of the batch."""
    names = frozenset(n.name for n in batch)
    out = []
    for node in batch:
        alone = [s.name for s in carried(rollout, node) if not has_peer(rollout, s.name, names)]
        if alone:
            out.append((node.name, alone))
    return out


def drain_network(
    rollout: Rollout, hop: Hop, label: str, batch: Sequence[NodeSpec], deps: list[str]
) -> list[str]:
    """A `compute.drain_network` step for the batch's network nodes that have a peer, after
    `deps`; returns [its id], or [] when the batch holds no such node. Not disruptive: the
    agents keep running, only their routers and networks move."""
    names = frozenset(n.name for n in batch)
    agents: dict[str, None] = {}
    nodes = []
    for node in batch:
        movable = [s.name for s in carried(rollout, node) if has_peer(rollout, s.name, names)]
        if movable:
            nodes.append(node.name)
        agents.update(dict.fromkeys(movable))
    if not nodes:
        return []
    params = {"agents": list(agents), "targets": peer_names(rollout, agents, names)}
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
