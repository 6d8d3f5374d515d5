"""The ansible driver's observation: what one ansible-runner call of `observe.yml` saw on each host.

Stand-in services (lifecycle/testbed/daemon.py) answer GET / with their release, the membership
they see of a quorum service (`members`: configured size, reachable peers, majority) and, for
nova-compute, their instances and enabled state; the Ceph flags are files on the monitor hosts.
A stand-in galera, rabbitmq or ceph-mon exposes membership and a majority, not Galera's `wsrep_*`
status, RabbitMQ's cluster_status or Ceph's quorum_status, and the observation says so
(`standin`, `unobservable`).

Services that run for real (the site facts' `real_services`: on the testbed those of testbed.yaml,
on a real cloud every one) are observed by their role's task `observe <service>`, whose stdout is
one JSON object (CONTRACT.md, "Role task files"):
`{"service", "version": str|null, "running": bool}` plus galera's `wsrep` (wsrep_cluster_size,
wsrep_cluster_status, wsrep_local_state_comment, wsrep_last_committed, wsrep_cluster_state_uuid)
and rabbitmq's `running_nodes` / `nodes` (`rabbit@ADDR`). A real Galera's members are those
`Synced` in a `Primary` component (Galera's own quorum: a Primary component exists); a real
RabbitMQ's members are its running_nodes, its quorum a majority of the inventory's members running.
"""

from __future__ import annotations

import json
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


def observe_testbed(
    cluster: Cluster,
    hosts: Mapping[str, Mapping[str, Any]],
    real_services: Iterable[str] | None,
) -> ObservedState:
    """The observation from `task_results` of observe.yml; `real_services`: the services that run
    for real, the others being stand-ins (None: every one, a real cloud; the site facts say,
    lifecycle.drivers.site)."""
    real = frozenset(cluster.members if real_services is None else real_services)
    nodes, instances, answers, reports = [], [], {}, {}
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
            if service in real:
                report = _report(seen, service)
                if report is not None:
                    reports[(service, node.name)] = report
                instances.append(_real_instance(service, node.name, seen, report))
                continue
            answer = _answer(seen, service)
            if answer is not None:
                answers[(service, node.name)] = answer
            instances.append(_instance(service, node.name, seen, answer))
        flags |= _flags(seen)
    stores = tuple(
        _real_store(cluster, service, reports)
        if service in real
        else _store(service, cluster.members[service], answers, flags)
        for service in STORES
        if service in cluster.members
    )
    computes = tuple(
        _compute(node, answers.get(("nova-compute", node)))
        for node in cluster.members.get("nova-compute", ())
    )
    unobservable = tuple(STANDIN_LIMITS[s.service] for s in stores if s.standin)
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


# --- real services (their role's `observe <service>` task) ------------------------------------


def _report(seen: Mapping[str, Any] | None, service: str) -> dict[str, Any] | None:
    """The JSON object the task `observe <service>` printed on that host; None when the host was
    out, the task did not run or its stdout is not one JSON object of that service."""
    if not seen or "unreachable" in seen:
        return None
    res = seen.get(f"observe {service}")
    if not isinstance(res, Mapping):
        return None
    try:
        body = json.loads(str(res.get("stdout") or ""))
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("service", service) != service:
        return None
    return body


def _real_instance(
    service: str, node: str, seen: Mapping[str, Any] | None, report: dict[str, Any] | None
) -> InstanceObservation:
    if seen is None or "unreachable" in seen:
        return InstanceObservation(service, node, UNKNOWN, "host unreachable")
    if report is None:
        res = seen.get(f"observe {service}")
        why = "no result of task `observe {}`" if res is None else "task `observe {}` gave no JSON"
        return InstanceObservation(service, node, UNKNOWN, why.format(service))
    if report.get("running") is not True:
        return InstanceObservation(service, node, NOT_RUNNING, "not running")
    version = report.get("version")
    if not isinstance(version, str) or not version.strip():
        return InstanceObservation(service, node, UNKNOWN, "running; no version recorded")
    return InstanceObservation(service, node, version.strip())


def _real_store(
    cluster: Cluster,
    service: str,
    reports: Mapping[tuple[str, str], dict[str, Any]],
) -> StoreObservation:
    members = cluster.members[service]
    seen = {n: reports[(service, n)] for n in members if (service, n) in reports}
    running = {n: r for n, r in seen.items() if r.get("running") is True}
    if service == "galera":
        return _galera(members, running, bool(seen))
    if service == "rabbitmq":
        return _rabbitmq(cluster, members, running, bool(seen))
    return StoreObservation(service=service)  # no real ceph-mon on the testbed


def _wsrep(report: Mapping[str, Any]) -> dict[str, str]:
    raw = report.get("wsrep")
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def _int(text: str | None) -> int | None:
    try:
        return int(str(text))
    except ValueError:
        return None


def _galera(
    members: tuple[str, ...], running: Mapping[str, Mapping[str, Any]], any_seen: bool
) -> StoreObservation:
    """Members: Synced in a Primary component; quorum: some running member is in a Primary
    component (None when no member could be observed at all)."""
    wsrep = {n: _wsrep(r) for n, r in running.items()}
    primary = {n: w for n, w in wsrep.items() if w.get("wsrep_cluster_status") == "Primary"}
    joined = tuple(
        n for n in members if n in primary
        and primary[n].get("wsrep_local_state_comment") == "Synced"
    )  # fmt: skip
    sizes = [_int(w.get("wsrep_cluster_size")) for w in (primary or wsrep).values()]
    size = max((s for s in sizes if s is not None), default=None)
    quorum: bool | None = bool(primary) if any_seen else None
    health = _health(joined, members, quorum, size)
    view = next(iter(primary.values()), next(iter(wsrep.values()), {}))
    status: list[tuple[str, str]] = [
        (k, view[k]) for k in ("wsrep_cluster_status", "wsrep_cluster_state_uuid") if k in view
    ]
    if size is not None:
        status.append(("wsrep_cluster_size", str(size)))
    committed = [_int(w.get("wsrep_last_committed")) for w in wsrep.values()]
    if any(c is not None for c in committed):
        status.append(("wsrep_last_committed", str(max(c for c in committed if c is not None))))
    for node in members:
        state = wsrep.get(node, {}).get("wsrep_local_state_comment")
        status.append((f"wsrep_local_state_comment@{node}", state or "not running"))
    return StoreObservation(
        service="galera",
        members=joined,
        size=size,
        quorum=quorum,
        health=health,
        status=tuple(status),
    )


def _rabbit_names(cluster: Cluster, members: tuple[str, ...]) -> dict[str, str]:
    """`rabbit@ADDR` (RABBITMQ_USE_LONGNAME, CONTRACT.md) and `rabbit@NAME` -> inventory name."""
    out = {}
    for node in members:
        out[f"rabbit@{node}"] = node
        address = cluster.node(node).address
        if address:
            out[f"rabbit@{address}"] = node
    return out


def _rabbitmq(
    cluster: Cluster,
    members: tuple[str, ...],
    running: Mapping[str, Mapping[str, Any]],
    any_seen: bool,
) -> StoreObservation:
    """Members: the running_nodes of the widest view among running members; quorum: a
    majority of the inventory's members running in the cluster."""
    names = _rabbit_names(cluster, members)
    views = [
        [str(x) for x in r.get("running_nodes") or [] if isinstance(x, str)]
        for r in running.values()
    ]
    widest = max(views, key=len, default=[])
    joined = tuple(n for n in members if any(names.get(x) == n for x in widest))
    quorum: bool | None = len(joined) * 2 > len(members) if any_seen else None
    partitions = sorted(
        {str(p) for r in running.values() for p in r.get("partitions") or [] if isinstance(p, str)}
    )
    return StoreObservation(
        service="rabbitmq",
        members=joined,
        size=len(widest) if running else None,
        quorum=quorum,
        health=_health(joined, members, quorum, len(widest)),
        status=(("running_nodes", ",".join(widest)),),
        partitions=tuple(partitions),
    )


def _health(
    joined: tuple[str, ...], members: tuple[str, ...], quorum: bool | None, size: int | None
) -> str:
    if quorum is None:
        return UNKNOWN
    if not quorum:
        return "down"
    return "healthy" if len(joined) == len(members) == size else "degraded"
