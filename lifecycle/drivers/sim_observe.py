"""What the sim driver "observes": its state file read as a real driver would read a cloud.

A dead node is unreachable and what runs on it unknown; the clustered stores report the live
members the way the real ones do (Galera `wsrep_*`, RabbitMQ `running_nodes`, Ceph
`quorum_names` and flags); each compute its enabled state and instance count.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import (
    REACHABLE,
    UNKNOWN,
    UNREACHABLE,
    ComputeObservation,
    GaleraMember,
    InstanceObservation,
    NodeObservation,
    ObservedState,
    StoreObservation,
)

STORES = ("galera", "rabbitmq", "ceph-mon")


def observe_state(cluster: Cluster, data: dict[str, Any]) -> ObservedState:
    """`data` is the sim state file's content (lifecycle.drivers.sim.SimState.data)."""
    dead = set(data.get("dead", []))
    versions: dict[str, str] = data.get("versions", {})
    removed = set(data.get("removed", []))  # unprovisioned by a replacement or a removal
    names = [n.name for n in cluster.nodes if n.name not in removed]
    for text in versions:  # a scale-out's new servers are in the sim cloud, maybe not in the file
        node = text.partition("@")[2]
        if node not in names:
            names.append(node)
    nodes = tuple(
        NodeObservation(n, UNREACHABLE, "simulated node is dead")
        if n in dead
        else NodeObservation(n, REACHABLE)
        for n in names
    )
    instances = []
    for text, release in sorted(versions.items()):
        service, _, node = text.partition("@")
        if node in dead:
            instances.append(InstanceObservation(service, node, UNKNOWN, "node unreachable"))
        else:
            instances.append(InstanceObservation(service, node, str(release)))
    members: dict[str, list[str]] = {}
    for text in versions:
        service, _, node = text.partition("@")
        members.setdefault(service, []).append(node)
    flags = tuple(sorted(f for f, on in data.get("flags", {}).items() if on))
    stores = tuple(
        _store(service, sorted(members[service]), dead, flags)
        for service in STORES
        if service in members
    )
    disabled = set(data.get("disabled", []))
    computes = tuple(
        ComputeObservation(
            node=host,
            enabled=None if host in dead else host not in disabled,
            up=host not in dead,
            instances=None if host in dead else len(held),
        )
        for host, held in sorted(data.get("instances", {}).items())
    )
    return ObservedState(
        cluster=cluster.name,
        driver="sim",
        nodes=nodes,
        instances=tuple(instances),
        stores=stores,
        computes=computes,
        galera=_galera(cluster, data, sorted(members.get("galera", [])), dead),
        unobservable=(),
        observed_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _galera(
    cluster: Cluster, data: dict[str, Any], members: list[str], dead: set[str]
) -> tuple[GaleraMember, ...]:
    """Each live member of a simulated Galera with a Primary component: running, Synced, at the
    sim's position (grastate.dat says -1 while a member runs, as Galera writes it). A dead member
    is not read: nothing about it is known."""
    from lifecycle.drivers.sim_backup import sim_position

    live = [m for m in members if m not in dead]
    if len(live) * 2 <= len(members):
        return ()
    state_uuid, _ = sim_position(data, cluster.name)
    return tuple(GaleraMember(m, state_uuid, -1, False, None, "Synced", True) for m in live)


def _store(
    service: str, nodes: list[str], dead: set[str], flags: tuple[str, ...]
) -> StoreObservation:
    live = tuple(n for n in nodes if n not in dead)
    quorum = len(live) * 2 > len(nodes)
    health = "healthy" if len(live) == len(nodes) else "degraded" if quorum else "down"
    if service == "galera":
        status = {
            "wsrep_cluster_size": str(len(live)),
            "wsrep_cluster_status": "Primary" if quorum else "non-Primary",
            "wsrep_local_state_comment": "Synced" if quorum else "Initialized",
        }
    elif service == "rabbitmq":
        status = {"running_nodes": ",".join(live)}
    else:
        status = {"quorum_names": ",".join(live)}
    return StoreObservation(
        service=service,
        members=live,
        size=len(live),
        quorum=quorum,
        health=health,
        status=tuple(sorted(status.items())),
        flags=flags if service == "ceph-mon" else (),
    )
