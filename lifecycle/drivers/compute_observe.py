"""What the cloud driver can observe through the OpenStack APIs (openstacksdk), and what not.

Seen: every compute's nova-compute service, enabled or disabled and up or down (Nova's service
heartbeat: the os-services API), and how many instances each holds (servers of all projects by
`OS-EXT-SRV-ATTR:host`); a node whose every Nova service reports down is taken as unreachable,
a node with one up as reachable. Not seen, and named as such: the release each service runs (the
APIs do not report it), Galera's `wsrep_*` status and RabbitMQ's cluster status (no SQL or AMQP
access through the OpenStack APIs), Ceph's mon quorum and flags (no Ceph API here).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import (
    REACHABLE,
    UNKNOWN,
    UNREACHABLE,
    ComputeObservation,
    NodeObservation,
    ObservedState,
)

BINARY = "nova-compute"
NOT_SEEN = (
    "service releases: the OpenStack APIs do not report the release a service runs",
    "galera: wsrep_cluster_size/wsrep_cluster_status/wsrep_local_state_comment (no SQL access"
    " through the OpenStack APIs)",
    "rabbitmq: cluster_status running nodes and partitions (no AMQP management access through"
    " the OpenStack APIs)",
    "ceph: mon quorum and OSD flags such as noout (no Ceph API in the cloud driver)",
)


def observe_cloud(
    cluster: Cluster, services: Iterable[Any], servers: Iterable[Any], observed_at: str = ""
) -> ObservedState:
    """From Nova's services (objects with host, binary, status, state) and servers (with
    compute_host)."""
    by_host: dict[str, list[Any]] = {}
    for service in services:
        by_host.setdefault(str(service.host), []).append(service)
    held = Counter(str(s.compute_host) for s in servers if getattr(s, "compute_host", None))
    nodes = []
    for node in cluster.nodes:
        mine = by_host.get(node.name, [])
        if any(s.state == "up" for s in mine):
            nodes.append(NodeObservation(node.name, REACHABLE))
        elif mine:
            binaries = ", ".join(sorted(str(s.binary) for s in mine))
            nodes.append(
                NodeObservation(node.name, UNREACHABLE, f"every Nova service down ({binaries})")
            )
        else:
            nodes.append(NodeObservation(node.name, UNKNOWN, "no Nova service on this node"))
    computes = tuple(
        ComputeObservation(
            node=str(s.host),
            enabled=s.status == "enabled",
            up=s.state == "up",
            instances=held.get(str(s.host), 0),
        )
        for host in sorted(by_host)
        for s in by_host[host]
        if s.binary == BINARY
    )
    return ObservedState(
        cluster=cluster.name,
        driver="cloud",
        nodes=tuple(nodes),
        computes=computes,
        unobservable=NOT_SEEN,
        observed_at=observed_at,
    )
