"""The compute driver: Nova through openstacksdk's compute proxy.

Connection: `endpoint` (or $LIFECYCLE_NOVA_URL) talks to a Compute API without auth (the testbed's
stand-in); otherwise `cloud` (or $OS_CLOUD) names a clouds.yaml entry. A node's Nova host name is
its inventory name.

Actions (on every node of the step):

- `compute.evacuate` {mode: live-migrate|cold-migrate, aggregate}: disable the host's
  nova-compute service (so the scheduler sends nothing new), migrate every instance away (Nova's
  scheduler picks the destination inside the aggregate) and wait until none is left.
- `compute.enable` {aggregate}: re-enable the host's nova-compute service.
- `compute.disable` {reason}: disable it without moving instances.
- `compute.evacuate` with mode `evacuate`: the host is dead (a replacement planned from the
  observed state): Nova's evacuate rebuilds each instance on another host of the aggregate.
- `compute.verify_empty` {}: fail unless the host holds no instance (after its evacuation).
- `compute.delete_service` {}: delete the host's nova-compute service record and its Neutron
  agents (a replacement or removal). Nova answers 409 Conflict while instances remain: that is
  reported as the step's error, not retried.
- `compute.aggregate_add` {aggregate}: put the host into the aggregate (created when missing),
  waiting for the host's nova-compute service to register first (a new compute appears a few
  seconds after it is deployed).
- `compute.aggregate_remove` {aggregate}.
- `compute.drain_network` {agents, targets}: move the host's routers (an L3 agent's) and DHCP
  networks (a DHCP agent's) to the least loaded live, enabled agent of the same binary on one of
  `targets`, through Neutron (openstacksdk's network proxy; Networking API v2.0, "L3 agent
  scheduler" and "DHCP agent scheduler"). A legacy router is hosted by one L3 agent only, so it is
  removed from its agent, then added to the target (a short cut, instead of one for the whole
  upgrade); a network may be served by several DHCP agents, so it is added first, then removed.
  HA and distributed routers are left alone: keepalived (or every compute) already carries them.
  The network endpoint: `network_endpoint` (or $LIFECYCLE_NEUTRON_URL) without auth, else `cloud`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import tenacity

from lifecycle.catalog import load_catalog
from lifecycle.drivers.base import Driver, StepContext, StepResult
from lifecycle.drivers.compute_observe import observe_cloud
from lifecycle.drivers.openstack_conn import ThreadConnections
from lifecycle.drivers.openstack_conn import connect as openstack_connect
from lifecycle.errors import DriverError
from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import ObservedState
from lifecycle.planning.plan import Step

BINARY = "nova-compute"
# agent binary -> what it hosts ("routers" | "networks"), from the catalog's `carries`
CARRIES = {n: s.carries for n, s in load_catalog().services.items() if s.carries}
TIMEOUTS = {"migration": 1800.0, "register": 300.0}


class ComputeDriver(Driver):
    """Nova over openstacksdk; see the module docstring for the actions."""

    name = "compute"

    def __init__(
        self,
        cloud: str | None = None,
        endpoint: str | None = None,
        poll_interval: float = 1.0,
        timeouts: Mapping[str, float] | None = None,
        connect: Callable[[], Any] | None = None,
        network_endpoint: str | None = None,
    ) -> None:
        self.cloud = cloud or os.environ.get("OS_CLOUD")
        self.endpoint = endpoint or os.environ.get("LIFECYCLE_NOVA_URL")
        self.network_endpoint = network_endpoint or os.environ.get("LIFECYCLE_NEUTRON_URL")
        self.poll_interval = poll_interval
        self.timeouts = {**TIMEOUTS, **(timeouts or {})}
        self._conns = ThreadConnections(
            connect or (lambda: openstack_connect(self.cloud, self.endpoint, "compute"))
        )
        self._net_conns = ThreadConnections(
            connect or (lambda: openstack_connect(self.cloud, self.network_endpoint, "network"))
        )

    @property
    def api(self) -> Any:
        """The compute proxy of this thread's connection."""
        return self._conns.get().compute

    @property
    def network(self) -> Any:
        """The network (Neutron) proxy of this thread's connection."""
        return self._net_conns.get().network

    def close(self) -> None:
        self._conns.close()
        self._net_conns.close()

    # --- the Driver interface ---------------------------------------------------------------

    def run(self, step: Step, ctx: StepContext) -> StepResult:
        verb = _VERBS.get(step.verb)
        if verb is None:
            raise DriverError(f"{step.id}: compute has no verb {step.verb!r}")
        hosts: dict[str, dict[str, Any]] = {}
        errors: list[str] = []
        for host in step.nodes:
            try:
                hosts[host] = {"status": "ok", **verb(self, host, step)}
            except DriverError as exc:
                hosts[host] = {"status": "failed", "detail": exc.message}
                errors.append(exc.message)
            except Exception as exc:  # the SDK's HTTP errors: report, do not crash the engine
                message = f"{host}: {step.verb} failed: {type(exc).__name__}: {exc}"
                hosts[host] = {"status": "failed", "detail": message}
                errors.append(message)
        return StepResult(
            ok=not errors,
            output={"hosts": sorted(hosts)},
            error="; ".join(errors) or None,
            hosts=hosts,
        )

    def probe(self, step: Step, ctx: StepContext) -> bool | None:
        checks: dict[str, Callable[[str], bool]] = {
            "aggregate_add": lambda h: h in self._aggregate_hosts(step),
            "aggregate_remove": lambda h: h not in self._aggregate_hosts(step),
            "enable": lambda h: self._service(h).status == "enabled",
            "disable": lambda h: self._service(h).status == "disabled",
            "evacuate": lambda h: self._service(h).status == "disabled" and not self._servers(h),
            "drain_network": lambda h: not any(self._held(h, step).values()),
            "verify_empty": lambda h: not self._servers(h),
            "delete_service": lambda h: not list(self.api.services(binary=BINARY, host=h)),
        }
        check = checks.get(step.verb)
        return None if check is None else all(check(h) for h in step.nodes)

    def observe(self, cluster: Cluster) -> ObservedState:
        """Nova's view of the cloud: its services and where the instances are (two listings;
        lifecycle.drivers.compute_observe says what cannot be seen through these APIs)."""
        when = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            services = list(self.api.services())
            servers = list(self.api.servers(all_projects=True))
        except Exception as exc:  # the SDK's HTTP and connection errors, said plainly
            raise DriverError(f"cannot observe through Nova: {type(exc).__name__}: {exc}") from exc
        return observe_cloud(cluster, services, servers, when)

    # --- lookups ----------------------------------------------------------------------------

    def _service(self, host: str) -> Any:
        found = list(self.api.services(binary=BINARY, host=host))
        if not found:
            raise DriverError(f"{host}: no {BINARY} service registered in Nova")
        return found[0]

    def _servers(self, host: str) -> list[Any]:
        return list(self.api.servers(all_projects=True, compute_host=host))

    def _aggregate(self, step: Step, create: bool = False) -> Any:
        name = str(step.param("aggregate") or "")
        if not name:
            raise DriverError(f"{step.id}: no aggregate given")
        agg = self.api.find_aggregate(name, ignore_missing=True)
        if agg is None and create:
            agg = self.api.create_aggregate(name=name)
        if agg is None:
            raise DriverError(f"aggregate {name} does not exist in Nova")
        return agg

    def _aggregate_hosts(self, step: Step) -> list[str]:
        return list(self._aggregate(step).hosts or [])

    # --- verbs ------------------------------------------------------------------------------

    def aggregate_add(self, host: str, step: Step) -> dict[str, Any]:
        agg = self._aggregate(step, create=True)
        if host in (agg.hosts or []):
            return {"aggregate": agg.name, "changed": False}
        self._wait_registered(host)
        self.api.add_host_to_aggregate(agg, host)
        return {"aggregate": agg.name, "changed": True}

    def _wait_registered(self, host: str) -> None:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda found: not found),
            wait=tenacity.wait_fixed(self.poll_interval),
            stop=tenacity.stop_after_delay(self.timeouts["register"]),
            retry_error_callback=lambda rs: False,
        )
        if not retrying(lambda: list(self.api.services(binary=BINARY, host=host))):
            timeout = self.timeouts["register"]
            raise DriverError(f"{host}: {BINARY} did not register in Nova within {timeout:.0f}s")

    def aggregate_remove(self, host: str, step: Step) -> dict[str, Any]:
        agg = self._aggregate(step)
        if host not in (agg.hosts or []):
            return {"aggregate": agg.name, "changed": False}
        self.api.remove_host_from_aggregate(agg, host)
        return {"aggregate": agg.name, "changed": True}

    def enable(self, host: str, step: Step) -> dict[str, Any]:
        service = self._service(host)
        if service.status != "enabled":
            self.api.enable_service(service)
        return {"service": "enabled"}

    def disable(self, host: str, step: Step) -> dict[str, Any]:
        service = self._service(host)
        reason = str(step.param("reason") or "lifecycle: maintenance")
        if service.status != "disabled":
            self.api.disable_service(service, disabled_reason=reason)
        return {"service": "disabled"}

    def evacuate(self, host: str, step: Step) -> dict[str, Any]:
        service = self._service(host)
        if service.status != "disabled":
            self.api.disable_service(service, disabled_reason=f"lifecycle: evacuating ({step.id})")
        mode = str(step.param("mode") or "live-migrate")
        live = mode in ("live-migrate", "evacuate")  # both settle ACTIVE on the new host
        moving = self._servers(host)
        for server in moving:
            if mode == "evacuate":  # the host is dead: rebuild elsewhere, whatever the status
                self.api.evacuate_server(server)
                continue
            if server.status != "ACTIVE":
                continue  # stopped or migrating instances are left to the wait below
            if live:
                self.api.live_migrate_server(server, host=None, block_migration="auto")
            else:
                self.api.migrate_server(server)
        moved = {s.id: self._wait_moved(s.id, host, live) for s in moving}
        return {"moved": moved}

    def verify_empty(self, host: str, step: Step) -> dict[str, Any]:
        left = self._servers(host)
        if left:
            names = ", ".join(sorted(str(s.id) for s in left)[:5])
            raise DriverError(f"{host}: still holds {len(left)} instance(s): {names}")
        return {"instances": 0}

    def delete_service(self, host: str, step: Step) -> dict[str, Any]:
        from openstack import exceptions

        found = list(self.api.services(binary=BINARY, host=host))
        try:
            for service in found:
                self.api.delete_service(service, ignore_missing=True)
        except exceptions.ConflictException as exc:  # instances (or allocations) remain
            raise DriverError(f"{host}: Nova refused to delete its compute service: {exc}") from exc
        listed = step.param("services")
        neutron = isinstance(listed, tuple) and any(s.startswith("neutron-") for s in listed)
        agents = list(self.network.agents(host=host)) if neutron else []
        for agent in agents:
            self.network.delete_agent(agent, ignore_missing=True)
        return {"services": len(found), "agents": len(agents)}

    def _wait_moved(self, server_id: str, host: str, live: bool) -> str:
        """Wait for one instance to settle; its new host, or DriverError if it stayed."""
        settled = ("ACTIVE", "SHUTOFF", "ERROR") if live else ("VERIFY_RESIZE", "ERROR", "ACTIVE")
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda s: s.status not in settled),
            wait=tenacity.wait_fixed(self.poll_interval),
            stop=tenacity.stop_after_delay(self.timeouts["migration"]),
            retry_error_callback=lambda rs: rs.outcome.result() if rs.outcome else None,
        )
        server = retrying(self.api.get_server, server_id)
        if server is not None and server.status == "VERIFY_RESIZE":
            self.api.confirm_server_resize(server)
        if server is None or server.compute_host == host or server.status == "ERROR":
            status = server.status if server is not None else "unknown"
            raise DriverError(
                f"{host}: instance {server_id} could not be moved (status {status}); "
                "is there an enabled host with room in its aggregate?"
            )
        return str(server.compute_host)

    # --- network nodes (Neutron) --------------------------------------------------------------

    def _agents(self, binary: str, host: str | None = None) -> list[Any]:
        query = {"binary": binary, **({"host": host} if host else {})}
        return list(self.network.agents(**query))

    def _hosted(self, agent: Any) -> list[Any]:
        """What one agent hosts: an L3 agent's movable routers, a DHCP agent's networks."""
        if CARRIES[agent.binary] == "networks":
            return list(self.network.dhcp_agent_hosting_networks(agent))
        routers = self.network.agent_hosted_routers(agent)
        return [r for r in routers if not (r.is_ha or r.is_distributed)]

    def _held(self, host: str, step: Step) -> dict[str, list[str]]:
        """binary -> ids of what the host's agents of that binary still host."""
        agents = step.param("agents") or ()
        return {
            binary: [item.id for a in self._agents(binary, host) for item in self._hosted(a)]
            for binary in (agents if isinstance(agents, tuple) else (str(agents),))
            if binary in CARRIES
        }

    def drain_network(self, host: str, step: Step) -> dict[str, Any]:
        raw = step.param("agents") or ()
        listed = step.param("targets")
        targets = set(listed if isinstance(listed, tuple) else ()) - {host}
        moved: dict[str, dict[str, str]] = {}
        for binary in raw if isinstance(raw, tuple) else (str(raw),):
            if binary not in CARRIES:
                raise DriverError(f"{step.id}: {binary} hosts no routers or networks")
            sources = self._agents(binary, host)
            if not sources:
                raise DriverError(f"{host}: no {binary} registered in Neutron")
            peers = [
                a
                for a in self._agents(binary)
                if a.host in targets and a.is_alive and a.is_admin_state_up
            ]
            if not peers:
                raise DriverError(
                    f"{host}: no live, enabled {binary} on {', '.join(sorted(targets))}"
                )
            moved[CARRIES[binary]] = self._move(sources, peers)
        return {"moved": moved}

    def _move(self, sources: list[Any], peers: list[Any]) -> dict[str, str]:
        """Move what `sources` host to the least loaded of `peers`; item id -> new host."""
        hosted = {p.id: {item.id for item in self._hosted(p)} for p in peers}
        out: dict[str, str] = {}
        for source in sources:
            for item in self._hosted(source):
                already = [p for p in peers if item.id in hosted[p.id]]
                target = already[0] if already else min(peers, key=lambda p: len(hosted[p.id]))
                if CARRIES[source.binary] == "routers":  # one L3 agent per legacy router
                    self.network.remove_router_from_agent(source, item)
                    if not already:
                        self.network.add_router_to_agent(target, item)
                else:  # a network may have several DHCP agents: no gap
                    if not already:
                        self.network.add_dhcp_agent_to_network(target, item)
                    self.network.remove_dhcp_agent_from_network(source, item)
                hosted[target.id].add(item.id)
                out[item.id] = str(target.host)
        return out


_VERBS: dict[str, Callable[[ComputeDriver, str, Step], dict[str, Any]]] = {
    "aggregate_add": ComputeDriver.aggregate_add,
    "aggregate_remove": ComputeDriver.aggregate_remove,
    "enable": ComputeDriver.enable,
    "disable": ComputeDriver.disable,
    "evacuate": ComputeDriver.evacuate,
    "drain_network": ComputeDriver.drain_network,
    "verify_empty": ComputeDriver.verify_empty,
    "delete_service": ComputeDriver.delete_service,
}
