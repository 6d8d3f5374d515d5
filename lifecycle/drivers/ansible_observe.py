"""The testbed's observation: what one ansible-runner call of `observe.yml` saw on every host.

The testbed's service daemons answer GET / with their release, the membership they see of a
quorum service (`members`: configured size, reachable peers, majority) and, for nova-compute,
their instances and enabled state; the Ceph flags are files on the monitor hosts. The testbed's
galera, rabbitmq and ceph-mon are stand-in daemons: they expose membership and a majority, not
Galera's `wsrep_*` status, RabbitMQ's cluster_status partitions or Ceph's quorum_status, and the
observation says so (`standin`, `unobservable`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import (
    NOT_RUNNING,
    REACHABLE,
    UNKNOWN,
    UNREACHABLE,
    ComputeObservation,
    InstanceObservation,
    NodeObservation,
    ObservedState,
    StoreObservation,
)

STORES = ("galera", "rabbitmq", "ceph-mon")
STANDIN_LIMITS = {
    "galera": "galera: wsrep_cluster_size/wsrep_cluster_status/wsrep_local_state_comment"
    " (the testbed's galera is a stand-in daemon: membership and majority only)",
    "rabbitmq": "rabbitmq: cluster_status partitions (the testbed's rabbitmq is a stand-in daemon:"
    " membership and majority only)",
    "ceph-mon": "ceph-mon: quorum_status (the testbed's ceph-mon is a stand-in daemon: membership"
    " and majority only)",
}


def task_results(events: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per host: "unreachable" (with msg), or each task's result by task name."""
    hosts: dict[str, dict[str, Any]] = {}
    for event in events:
        data = event.get("event_data") or {}
        host, kind = data.get("host"), event.get("event")
        if not host:
            continue
        seen = hosts.setdefault(host, {})
        if kind == "runner_on_unreachable":
            res = data.get("res") or {}
            seen["unreachable"] = str(res.get("msg") or "unreachable")[:300]
        elif kind in ("runner_on_ok", "runner_on_failed", "runner_on_skipped"):
            seen[str(data.get("task"))] = data.get("res") or {}
    return hosts


def observe_testbed(cluster: Cluster, hosts: Mapping[str, Mapping[str, Any]]) -> ObservedState:
    """The observation from `task_results` of observe.yml."""
    nodes, instances, answers = [], [], {}
    flags: set[str] = set()
    for node in cluster.nodes:
        seen = hosts.get(node.name)
        if seen is None:
            nodes.append(NodeObservation(node.name, UNKNOWN, "no result from this host"))
        elif "unreachable" in seen:
            nodes.append(NodeObservation(node.name, UNREACHABLE, str(seen["unreachable"])))
        else:
            nodes.append(NodeObservation(node.name, REACHABLE))
        for service in cluster.services_of(node):
            answer = _answer(seen, service)
            if answer is not None:
                answers[(service, node.name)] = answer
            instances.append(_instance(service, node.name, seen, answer))
        flags |= _flags(seen)
    stores = tuple(
        _store(service, cluster.members[service], answers, flags)
        for service in STORES
        if service in cluster.members
    )
    computes = tuple(
        _compute(node, answers.get(("nova-compute", node)))
        for node in cluster.members.get("nova-compute", ())
    )
    unobservable = tuple(STANDIN_LIMITS[s.service] for s in stores)
    return ObservedState(
        cluster=cluster.name,
        driver="testbed",
        nodes=tuple(nodes),
        instances=tuple(instances),
        stores=stores,
        computes=computes,
        unobservable=unobservable,
    )


def _answer(seen: Mapping[str, Any] | None, service: str) -> dict[str, Any] | None:
    """The daemon's GET / JSON on that host, None when it did not answer (or the host was out)."""
    if not seen or "unreachable" in seen:
        return None
    for item in (seen.get("daemon state") or {}).get("results") or []:
        if item.get("item") == service and item.get("status") == 200:
            body = item.get("json")
            return body if isinstance(body, dict) else None
    return None


def _instance(
    service: str, node: str, seen: Mapping[str, Any] | None, answer: dict[str, Any] | None
) -> InstanceObservation:
    if seen is None or "unreachable" in seen:
        return InstanceObservation(service, node, UNKNOWN, "host unreachable")
    if answer is None:
        return InstanceObservation(service, node, NOT_RUNNING, "the daemon does not answer")
    version = answer.get("version")
    if not isinstance(version, str):
        return InstanceObservation(service, node, UNKNOWN, "the daemon named no version")
    return InstanceObservation(service, node, version)


def _flags(seen: Mapping[str, Any] | None) -> set[str]:
    files = ((seen or {}).get("ceph flags") or {}).get("files") or []
    names = (str(f.get("path", "")).rsplit("/", 1)[-1] for f in files)
    return {n.removeprefix("ceph-flag-") for n in names if n.startswith("ceph-flag-")}


def _store(
    service: str,
    members: tuple[str, ...],
    answers: Mapping[tuple[str, str], dict[str, Any]],
    flags: set[str],
) -> StoreObservation:
    """The store as its answering members see it: the widest view of reachable peers."""
    views = [answers[(service, n)].get("members") or {} for n in members if (service, n) in answers]
    widest = max(views, key=lambda v: len(v.get("reachable") or []), default={})
    joined = tuple(n for n in members if n in (widest.get("reachable") or []))
    quorum = bool(widest.get("majority")) if widest else (False if len(members) > 1 else None)
    if len(members) == 1:
        joined = tuple(n for n in members if (service, n) in answers)
        quorum = bool(joined)
    health = "healthy" if len(joined) == len(members) else "degraded" if quorum else "down"
    return StoreObservation(
        service=service,
        members=joined,
        size=len(joined),
        quorum=quorum,
        health=health,
        status=(
            ("standin_configured_size", str(widest.get("size", len(members)))),
            ("standin_majority", str(bool(quorum)).lower()),
        ),
        flags=tuple(sorted(flags)) if service == "ceph-mon" else (),
        standin=True,
    )


def _compute(node: str, answer: dict[str, Any] | None) -> ComputeObservation:
    if answer is None:
        return ComputeObservation(node, up=False)
    held = answer.get("instances")
    enabled = answer.get("enabled")
    return ComputeObservation(
        node,
        enabled=enabled if isinstance(enabled, bool) else None,
        up=True,
        instances=len(held) if isinstance(held, list) else None,
    )
