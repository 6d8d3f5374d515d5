"""Watch a testbed cluster while it changes: quorum, aggregate capacity and instances.

A thread polls every quorum service member and every compute and records each moment a rule
broke: a quorum service with half or fewer members in service, an aggregate with more hosts
unavailable (not answering, or disabled) than `max_unavailable`, an instance seen at the start
that no compute holds any more. Stand-in services are asked over HTTP (GET /ping). Services that
run for real (testbed.yaml `real_services`) are asked what issue 10 item 4 names
(lifecycle.testbed.store_status): Galera's wsrep_cluster_status / wsrep_local_state_comment /
wsrep_cluster_size on each member, every poll (a quorum violation: fewer than a majority of the
members in a Primary component, Galera's own quorum; how many are Synced is in the report);
RabbitMQ's cluster_status through rabbitmqctl, every `rabbit_interval` seconds in its own thread
(each call starts an Erlang VM: ~0.5 s of CPU). The passwords come from the first controller's
`secrets/`; while a secret does not exist yet (before the deploy made it) that store is counted as
unchecked, not as broken.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lifecycle.catalog import load_catalog
from lifecycle.errors import ExecutionError
from lifecycle.model.cluster import Cluster
from lifecycle.testbed import client
from lifecycle.testbed.store_status import (
    GaleraStatus,
    RabbitStatus,
    galera_quorum,
    rabbit_running,
    synced_primary,
)


@dataclass
class Observation:
    polls: int = 0
    violations: list[str] = field(default_factory=list)
    instances_at_start: frozenset[str] = frozenset()
    instances_at_end: frozenset[str] = frozenset()
    max_down: dict[str, int] = field(default_factory=dict)  # aggregate -> most hosts down at once
    # real stores: fewest members in service at once (Galera: in a Primary component)
    min_members: dict[str, int] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)  # real store -> times asked
    unchecked: dict[str, int] = field(default_factory=dict)  # real store -> polls without a secret
    skipped: list[str] = field(default_factory=list)  # what was not watched, and why


class Monitor:
    """Use as a context manager; read `.observation` afterwards."""

    def __init__(
        self,
        cluster: Cluster,
        interval: float = 0.25,
        state_dir: str | Path | None = None,
        real_services: Iterable[str] | None = None,
        rabbit_interval: float = 2.0,
    ) -> None:
        self.cluster = cluster
        self.interval = interval
        self.rabbit_interval = rabbit_interval
        self.state_dir = state_dir
        self.observation = Observation()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="testbed-monitor", daemon=True)
        self._rabbit_thread: threading.Thread | None = None
        if real_services is None:
            from lifecycle.testbed.config import load_testbed_config

            real_services = load_testbed_config(cluster).real_services
        real = frozenset(real_services)
        catalog = load_catalog()
        quorum = {
            s: m
            for s, m in cluster.members.items()
            if s in catalog.services
            and catalog.services[s].quorum.value == "majority"
            and len(m) > 1
        }
        self._quorum = {s: m for s, m in quorum.items() if s not in real}
        self._real_quorum = {s: m for s, m in quorum.items() if s in real}
        self._galera: GaleraStatus | None = None
        self._rabbit: RabbitStatus | None = None
        self._aggregates: dict[str, list[str]] = {}
        for node in cluster.nodes:
            aggregate = cluster.aggregate_of(node)
            if aggregate and "nova-compute" in cluster.services_of(node):
                self._aggregates.setdefault(aggregate, []).append(node.name)

    def __enter__(self) -> Monitor:
        self.observation.instances_at_start = self.instances()
        self._thread.start()
        if "rabbitmq" in self._real_quorum:
            if RabbitStatus.available():
                self._rabbit_thread = threading.Thread(
                    target=self._rabbit_loop, name="testbed-monitor-rabbitmq", daemon=True
                )
                self._rabbit_thread.start()
            else:
                self.observation.skipped.append(
                    "rabbitmq: cluster_status not watched (no rabbitmqctl on this machine)"
                )
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._rabbit_thread is not None:
            self._rabbit_thread.join()
        for checker in (self._galera, self._rabbit):
            if checker is not None:
                checker.close()
        self.observation.instances_at_end = self.instances()

    # --- real stores ---------------------------------------------------------------------------

    def _secret(self, name: str) -> str | None:
        """The first controller's secret, None while it does not exist (before the deploy)."""
        from lifecycle.testbed.state import state_dir
        from lifecycle.testbed.user_probe import first_controller, host_root_of, read_secret

        try:
            root = host_root_of(state_dir(self.state_dir), first_controller(self.cluster))
            return read_secret(root, name)
        except ExecutionError:
            return None

    def _address(self, node: str) -> str:
        return self.cluster.node(node).address or node

    def _count(self, service: str, members: tuple[str, ...], ok: bool, detail: str) -> None:
        obs = self.observation
        obs.checks[service] = obs.checks.get(service, 0) + 1
        obs.min_members[service] = min(obs.min_members.get(service, len(members)), len(members))
        if not ok:
            now = time.strftime("%H:%M:%S")
            obs.violations.append(f"{now} {service} quorum lost: {detail}")

    def _unchecked(self, service: str) -> None:
        obs = self.observation
        obs.unchecked[service] = obs.unchecked.get(service, 0) + 1

    def poll_galera(self) -> None:
        members = self._real_quorum["galera"]
        if self._galera is None:
            password = self._secret("db-monitor")
            if password is None:
                return self._unchecked("galera")
            self._galera = GaleraStatus(password, timeout=min(1.0, max(self.interval, 0.2)))
        statuses = {n: self._galera.status(self._address(n)) for n in members}
        voting, ok = galera_quorum(statuses)
        synced = [n for n, s in statuses.items() if synced_primary(s)]
        states = ", ".join(
            f"{n} {(s or {}).get('wsrep_cluster_status', 'no answer')}"
            + (f"/{s.get('wsrep_local_state_comment')}" if s else "")
            for n, s in statuses.items()
        )
        primary = f"{len(voting)} of {len(members)} in a Primary component"
        detail = f"{primary}, {len(synced)} Synced ({states})"
        self._count("galera", voting, ok, detail)
        return None

    def poll_rabbitmq(self) -> None:
        members = self._real_quorum["rabbitmq"]
        if self._rabbit is None:
            cookie = self._secret("rabbitmq-cookie")
            if cookie is None:
                return self._unchecked("rabbitmq")
            self._rabbit = RabbitStatus(cookie)
        status = None
        for node in members:  # any member's view is the cluster's; the first that answers
            status = self._rabbit.cluster_status(self._address(node))
            if status is not None:
                break
        running, partitions = rabbit_running(self.cluster, members, status or {})
        ok = len(running) * 2 > len(members) and not partitions
        detail = (
            f"running_nodes {list(running)} of {list(members)}"
            + (f", partitions {list(partitions)}" if partitions else "")
            + ("" if status is not None else " (no member answered cluster_status)")
        )
        self._count("rabbitmq", running, ok, detail)
        return None

    def _rabbit_loop(self) -> None:
        while not self._stop.is_set():
            self.poll_rabbitmq()
            self._stop.wait(self.rabbit_interval)

    def instances(self) -> frozenset[str]:
        """The instance ids the stand-in computes that answer hold now."""
        return self._look()[0]

    def _look(self) -> tuple[frozenset[str], tuple[str, ...]]:
        """(instance ids held by the computes that answered, the computes that did not)."""
        held: set[str] = set()
        silent: list[str] = []
        for nodes in self._aggregates.values():
            for node in nodes:
                status = client.service_status(self.cluster, node, "nova-compute")
                if status is None:
                    silent.append(node)
                held |= {i["id"] for i in (status or {}).get("instances", [])}
        return frozenset(held), tuple(silent)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def poll(self) -> None:
        obs = self.observation
        obs.polls += 1
        now = time.strftime("%H:%M:%S")
        if "galera" in self._real_quorum:
            self.poll_galera()
        for service, members in self._quorum.items():
            up = [
                n for n in members if client.service_status(self.cluster, n, service, 0.5, "/ping")
            ]
            if len(up) * 2 <= len(members):
                obs.violations.append(f"{now} {service} quorum lost: {up} of {list(members)}")
        held: set[str] = set()
        for aggregate, nodes in self._aggregates.items():
            down = 0
            for node in nodes:
                status = client.service_status(self.cluster, node, "nova-compute", 0.5)
                if status is None or not status.get("enabled", True):
                    down += 1
                held |= {i["id"] for i in (status or {}).get("instances", [])}
            obs.max_down[aggregate] = max(obs.max_down.get(aggregate, 0), down)
            allowed = self.cluster.policies.max_unavailable_for(aggregate).resolve(len(nodes))
            if down > allowed:
                obs.violations.append(f"{now} aggregate {aggregate}: {down} down > {allowed}")
        missing = obs.instances_at_start - held
        if missing:  # a migration may have moved it between two reads: look again, all at once
            held_now, silent = self._look()
            # a compute that does not answer (busy past the timeout, its agent restarting) may
            # hold it: missing is what no compute holds when every one answered (the end's
            # count, every agent up, says whether any was lost in between)
            missing = frozenset() if silent else obs.instances_at_start - held_now
        if missing:
            obs.violations.append(f"{now} instances missing: {sorted(missing)}")
