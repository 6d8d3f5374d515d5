"""Watch a testbed cluster while it changes: quorum, aggregate capacity and instances.

A thread polls every quorum service member and every compute over HTTP and records each moment
a rule broke: a quorum service with half or fewer members answering, an aggregate with more hosts
unavailable (not answering, or disabled) than `max_unavailable`, an instance seen at the start
that no compute holds any more.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from lifecycle.catalog import load_catalog
from lifecycle.model.cluster import Cluster
from lifecycle.testbed import client


@dataclass
class Observation:
    polls: int = 0
    violations: list[str] = field(default_factory=list)
    instances_at_start: frozenset[str] = frozenset()
    instances_at_end: frozenset[str] = frozenset()
    max_down: dict[str, int] = field(default_factory=dict)  # aggregate -> most hosts down at once


class Monitor:
    """Use as a context manager; read `.observation` afterwards."""

    def __init__(self, cluster: Cluster, interval: float = 0.25) -> None:
        self.cluster = cluster
        self.interval = interval
        self.observation = Observation()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="testbed-monitor", daemon=True)
        catalog = load_catalog()
        self._quorum = {
            s: m
            for s, m in cluster.members.items()
            if s in catalog.services
            and catalog.services[s].quorum.value == "majority"
            and len(m) > 1
        }
        self._aggregates: dict[str, list[str]] = {}
        for node in cluster.nodes:
            aggregate = cluster.aggregate_of(node)
            if aggregate and "nova-compute" in cluster.services_of(node):
                self._aggregates.setdefault(aggregate, []).append(node.name)

    def __enter__(self) -> Monitor:
        self.observation.instances_at_start = self.instances()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.observation.instances_at_end = self.instances()

    def instances(self) -> frozenset[str]:
        held: set[str] = set()
        for nodes in self._aggregates.values():
            for node in nodes:
                status = client.service_status(self.cluster, node, "nova-compute")
                held |= {i["id"] for i in (status or {}).get("instances", [])}
        return frozenset(held)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def poll(self) -> None:
        obs = self.observation
        obs.polls += 1
        now = time.strftime("%H:%M:%S")
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
            missing = obs.instances_at_start - self.instances()
        if missing:
            obs.violations.append(f"{now} instances missing: {sorted(missing)}")
