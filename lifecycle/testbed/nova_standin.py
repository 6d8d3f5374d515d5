"""A STAND-IN for Nova: the subset of the Compute HTTP API (v2.1, microversion 2.53+) that the
compute driver calls, in memory, on 127.0.0.1. No real Nova can run here; this lets the driver
(the code a real cloud gets) be exercised through the real openstacksdk.

Served: version discovery, os-services (list, PUT and DELETE by id), os-aggregates (list, show,
create, add_host/remove_host actions), servers (list/detail with all_tenants and host filters,
show, the os-migrateLive, migrate and confirmResize actions), os-hypervisors (list).
Migrations complete after `delay` seconds; the "scheduler" picks the least loaded enabled compute
that shares an aggregate with the source, as aggregate filters would, or fails the migration.
Stand-in only (`/_standin/...`): register a compute service (what nova-compute does when it first
starts) and boot a server on a host.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

MAX_VERSION = "2.95"
NOW = "2026-01-01T00:00:00.000000"


@dataclass
class NovaState:
    """Everything the stand-in knows; handlers mutate it under `lock`."""

    delay: float = 0.05
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    aggregates: dict[int, dict[str, Any]] = field(default_factory=dict)
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    migrations: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def add_compute(self, host: str) -> dict[str, Any]:
        with self.lock:
            for svc in self.services.values():
                if svc["host"] == host:
                    return svc
            svc = {
                "id": str(uuid.uuid4()), "binary": "nova-compute", "host": host, "zone": "nova",
                "status": "enabled", "state": "up", "disabled_reason": None,
                "forced_down": False, "updated_at": NOW,
            }  # fmt: skip
            self.services[svc["id"]] = svc
            return svc

    def add_server(self, name: str, host: str) -> dict[str, Any]:
        with self.lock:
            server = {"id": str(uuid.uuid4()), "name": name, "status": "ACTIVE", "host": host}
            self.servers[server["id"]] = server
            return server

    def create_aggregate(self, name: str, zone: str | None = None) -> dict[str, Any]:
        with self.lock:
            new_id = max(self.aggregates, default=0) + 1
            agg = {
                "id": new_id, "uuid": str(uuid.uuid4()), "name": name,
                "availability_zone": zone, "hosts": [], "metadata": {}, "created_at": NOW,
                "updated_at": None, "deleted": False, "deleted_at": None,
            }  # fmt: skip
            self.aggregates[new_id] = agg
            return agg

    def enabled(self, host: str) -> bool:
        return any(
            s["host"] == host and s["status"] == "enabled" and s["state"] == "up"
            for s in self.services.values()
        )

    def pick_destination(self, source: str) -> str | None:
        """The scheduler's choice: an enabled compute sharing an aggregate with the source."""
        groups = [set(a["hosts"]) for a in self.aggregates.values() if source in a["hosts"]]
        hosts = {s["host"] for s in self.services.values()} - {source}
        if groups:
            hosts &= set().union(*groups)
        load = {h: sum(1 for v in self.servers.values() if v["host"] == h) for h in hosts}
        candidates = sorted((n, h) for h, n in load.items() if self.enabled(h))
        return candidates[0][1] if candidates else None


def _server_view(server: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": server["id"],
        "name": server["name"],
        "status": server["status"],
        "OS-EXT-SRV-ATTR:host": server["host"],
        "OS-EXT-SRV-ATTR:hypervisor_hostname": server["host"],
        "OS-EXT-STS:task_state": server.get("task_state"),
        "OS-EXT-STS:vm_state": server["status"].lower(),
        "links": [],
    }


class _Handler(BaseHTTPRequestHandler):
    state: NovaState  # set on the subclass made per server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, code: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("OpenStack-API-Version", f"compute {MAX_VERSION}")
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null") if length else None

    def _route(self, method: str) -> None:
        url = urlparse(self.path)
        path = re.sub(r"^/v2\.1", "", url.path.rstrip("/"))
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        for verb, pattern, handler in _ROUTES:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                try:
                    with self.state.lock:
                        code, body = handler(self.state, query, self._body(), *match.groups())
                except LookupError as exc:
                    code, body = 404, {"itemNotFound": {"code": 404, "message": str(exc)}}
                except ValueError as exc:
                    code, body = 400, {"badRequest": {"code": 400, "message": str(exc)}}
                self._reply(code, body)
                return
        self._reply(404, {"itemNotFound": {"code": 404, "message": f"no route {method} {path}"}})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")


# --- handlers: (state, query, body, *path groups) -> (status, body) ---------------------------

Reply = tuple[int, Any]


def _versions(state: NovaState, q: dict[str, str], body: Any) -> Reply:
    version = {
        "id": "v2.1", "status": "CURRENT", "version": MAX_VERSION, "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z", "links": [{"rel": "self", "href": "/v2.1/"}],
    }  # fmt: skip
    return 200, {"version": version}


def _version_list(state: NovaState, q: dict[str, str], body: Any) -> Reply:
    return 200, {"versions": [_versions(state, q, body)[1]["version"]]}


def _services(state: NovaState, q: dict[str, str], body: Any) -> Reply:
    found = [
        s
        for s in state.services.values()
        if all(s.get(k) == q[k] for k in ("host", "binary") if k in q)
    ]
    return 200, {"services": found}


def _update_service(state: NovaState, q: dict[str, str], body: Any, sid: str) -> Reply:
    svc = state.services.get(sid)
    if svc is None:
        raise LookupError(f"Service {sid} not found.")
    status = body.get("status", svc["status"])
    if status not in ("enabled", "disabled"):
        raise ValueError(f"bad status {status!r}")
    svc["status"] = status
    svc["disabled_reason"] = body.get("disabled_reason") if status == "disabled" else None
    return 200, {"service": svc}


def _delete_service(state: NovaState, q: dict[str, str], body: Any, sid: str) -> Reply:
    """Nova's DELETE /os-services/{id}: 409 while the host still has instances."""
    svc = state.services.get(sid)
    if svc is None:
        raise LookupError(f"Service {sid} not found.")
    held = [s for s in state.servers.values() if s["host"] == svc["host"]]
    if held:
        message = f"Unable to delete compute service that is hosting instances: {len(held)}"
        return 409, {"conflictingRequest": {"code": 409, "message": message}}
    del state.services[sid]
    for aggregate in state.aggregates.values():
        if svc["host"] in aggregate["hosts"]:
            aggregate["hosts"].remove(svc["host"])
    return 204, None


def _aggregates(state: NovaState, q: dict[str, str], body: Any) -> Reply:
    return 200, {"aggregates": list(state.aggregates.values())}


def _aggregate(state: NovaState, q: dict[str, str], body: Any, agg_id: str) -> Reply:
    agg = state.aggregates.get(int(agg_id)) if agg_id.isdigit() else None
    if agg is None:
        raise LookupError(f"Aggregate {agg_id} could not be found.")
    return 200, {"aggregate": agg}


def _create_aggregate(state: NovaState, q: dict[str, str], body: Any) -> Reply:
    spec = body["aggregate"]
    if any(a["name"] == spec["name"] for a in state.aggregates.values()):
        return 409, {"conflictingRequest": {"code": 409, "message": "name exists"}}
    return 200, {"aggregate": state.create_aggregate(spec["name"], spec.get("availability_zone"))}


def _aggregate_action(state: NovaState, q: dict[str, str], body: Any, agg_id: str) -> Reply:
    agg = _aggregate(state, q, None, agg_id)[1]["aggregate"]
    if "add_host" in body:
        host = body["add_host"]["host"]
        if not any(s["host"] == host for s in state.services.values()):
            raise LookupError(f"Compute host {host} could not be found.")
        if host in agg["hosts"]:
            return 409, {"conflictingRequest": {"code": 409, "message": f"{host} already in"}}
        agg["hosts"].append(host)
    elif "remove_host" in body:
        host = body["remove_host"]["host"]
        if host not in agg["hosts"]:
            raise LookupError(f"Cannot remove host {host} from aggregate {agg_id}.")
        agg["hosts"].remove(host)
    else:
        raise ValueError("unsupported aggregate action")
    return 200, {"aggregate": agg}


def _servers(state: NovaState, q: dict[str, str], body: Any) -> Reply:
    found = [s for s in state.servers.values() if "host" not in q or s["host"] == q["host"]]
    return 200, {"servers": [_server_view(s) for s in found]}


def _server(state: NovaState, q: dict[str, str], body: Any, sid: str) -> Reply:
    if sid not in state.servers:
        raise LookupError(f"Instance {sid} could not be found.")
    return 200, {"server": _server_view(state.servers[sid])}


def _server_action(state: NovaState, q: dict[str, str], body: Any, sid: str) -> Reply:
    server = state.servers.get(sid)
    if server is None:
        raise LookupError(f"Instance {sid} could not be found.")
    if "confirmResize" in body:
        if server["status"] != "VERIFY_RESIZE":
            return 409, {"conflictingRequest": {"code": 409, "message": "not resized"}}
        server["status"] = "ACTIVE"
        return 204, None
    live = "os-migrateLive" in body
    if not live and "migrate" not in body:
        raise ValueError("unsupported server action")
    args = body.get("os-migrateLive") or body.get("migrate") or {}
    if server["status"] != "ACTIVE":
        return 409, {
            "conflictingRequest": {"code": 409, "message": f"server is {server['status']}"}
        }
    server["status"] = "MIGRATING" if live else "RESIZE"
    timer = threading.Timer(state.delay, _finish_migration, (state, sid, live, args.get("host")))
    timer.daemon = True
    timer.start()
    return 202, None


def _finish_migration(state: NovaState, sid: str, live: bool, wanted: str | None) -> None:
    with state.lock:
        server = state.servers[sid]
        source = server["host"]
        dest = wanted if wanted and state.enabled(wanted) else state.pick_destination(source)
        record = {"server": sid, "source": source, "dest": dest, "live": live}
        if dest is None:
            server["status"] = "ACTIVE"  # Nova rolls back: the instance stays where it was
            state.migrations.append({**record, "status": "error"})
            return
        server["host"] = dest
        server["status"] = "ACTIVE" if live else "VERIFY_RESIZE"
        state.migrations.append({**record, "status": "completed"})


def _hypervisors(state: NovaState, q: dict[str, str], body: Any) -> Reply:
    rows = [
        {
            "id": s["id"],
            "hypervisor_hostname": s["host"],
            "state": s["state"],
            "status": s["status"],
        }
        for s in state.services.values()
    ]
    return 200, {"hypervisors": rows}


def _standin_compute(state: NovaState, q: dict[str, str], body: Any) -> Reply:
    return 201, {"service": state.add_compute(body["host"])}


def _standin_server(state: NovaState, q: dict[str, str], body: Any) -> Reply:
    return 201, {"server": _server_view(state.add_server(body["name"], body["host"]))}


_ROUTES: list[tuple[str, str, Callable[..., Reply]]] = [
    ("GET", r"", _version_list),
    ("GET", r"/", _versions),
    ("GET", r"/os-services", _services),
    ("PUT", r"/os-services/([^/]+)", _update_service),
    ("DELETE", r"/os-services/([^/]+)", _delete_service),
    ("GET", r"/os-aggregates", _aggregates),
    ("POST", r"/os-aggregates", _create_aggregate),
    ("GET", r"/os-aggregates/([^/]+)", _aggregate),
    ("POST", r"/os-aggregates/([^/]+)/action", _aggregate_action),
    ("GET", r"/servers(?:/detail)?", _servers),
    ("GET", r"/servers/([^/]+)", _server),
    ("POST", r"/servers/([^/]+)/action", _server_action),
    ("GET", r"/os-hypervisors(?:/detail)?", _hypervisors),
    ("POST", r"/_standin/computes", _standin_compute),
    ("POST", r"/_standin/servers", _standin_server),
]


class NovaStandin:
    """Run the stand-in in a thread: `with NovaStandin() as nova: nova.url ...`."""

    def __init__(self, state: NovaState | None = None) -> None:
        self.state = state or NovaState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v2.1"

    def __enter__(self) -> NovaStandin:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
