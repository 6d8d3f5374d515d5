"""A STAND-IN for Neutron's agent scheduler API, in memory on 127.0.0.1, so the compute driver's
network verb is exercised through the real openstacksdk over HTTP. No real Neutron runs here.

Served (Networking API v2.0): version discovery; GET /v2.0/agents (filters binary, host);
GET/POST /v2.0/agents/{id}/l3-routers, DELETE .../l3-routers/{router_id};
GET/POST /v2.0/agents/{id}/dhcp-networks, DELETE .../dhcp-networks/{network_id}.
As Neutron does, a legacy (non-HA, centralised) router is hosted by one L3 agent at a time:
adding it to a second one is 409 Conflict (RouterHostedByL3Agent).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

KINDS = {"l3-routers": ("routers", "router_id"), "dhcp-networks": ("networks", "network_id")}


@dataclass
class NeutronState:
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    hosted: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (agent, kind) -> ids
    ha: set[str] = field(default_factory=set)  # HA router ids
    calls: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_agent(self, binary: str, host: str, alive: bool = True) -> str:
        agent_id = f"{binary}-{host}"
        self.agents[agent_id] = {"id": agent_id, "binary": binary, "host": host,
                                 "alive": alive, "admin_state_up": True,
                                 "agent_type": binary}  # fmt: skip
        return agent_id

    def held(self, agent_id: str, kind: str) -> set[str]:
        return self.hosted.setdefault((agent_id, kind), set())


class _Handler(BaseHTTPRequestHandler):
    state: NeutronState

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: Any = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> tuple[str, str, str | None] | None:
        match = re.fullmatch(r"/v2\.0/agents/([^/]+)/(l3-routers|dhcp-networks)(?:/([^/]+))?",
                             urlparse(self.path).path)  # fmt: skip
        return (match.group(1), match.group(2), match.group(3)) if match else None

    def do_GET(self) -> None:
        url = urlparse(self.path)
        st = self.state
        st.calls.append(("GET", url.path))
        if url.path.rstrip("/") in ("", "/v2.0"):
            href = f"http://{self.headers['Host']}/v2.0/"
            version = {"id": "v2.0", "status": "CURRENT", "links": [{"href": href, "rel": "self"}]}
            return self._send(200, {"versions": [version]})
        if url.path == "/v2.0/agents":
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            agents = [a for a in st.agents.values() if all(a.get(k) == v for k, v in query.items())]
            return self._send(200, {"agents": agents})
        route = self._route()
        if route is None or route[0] not in st.agents:
            return self._send(404, {"NeutronError": {"message": "not found"}})
        agent, kind, _ = route
        key = KINDS[kind][0]
        items = [
            {"id": i, "ha": i in st.ha, "distributed": False} for i in sorted(st.held(agent, kind))
        ]
        return self._send(200, {key: items})

    def do_POST(self) -> None:
        route = self._route()
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        st = self.state
        st.calls.append(("POST", urlparse(self.path).path))
        if route is None or route[0] not in st.agents:
            return self._send(404, {"NeutronError": {"message": "not found"}})
        agent, kind, _ = route
        item = body[KINDS[kind][1]]
        with st.lock:
            legacy = kind == "l3-routers" and item not in st.ha
            if legacy and any(item in ids for (_, k), ids in st.hosted.items() if k == kind):
                return self._send(409, {"NeutronError": {"type": "RouterHostedByL3Agent"}})
            st.held(agent, kind).add(item)
        return self._send(201, {})

    def do_DELETE(self) -> None:
        route = self._route()
        st = self.state
        st.calls.append(("DELETE", urlparse(self.path).path))
        if route is None or route[2] is None:
            return self._send(404, {"NeutronError": {"message": "not found"}})
        agent, kind, item = route
        with st.lock:
            st.held(agent, kind).discard(item)
        self.send_response(204)
        self.end_headers()


class NeutronStandin:
    """`with NeutronStandin() as neutron:` serves on `neutron.url` until the block ends."""

    def __init__(self) -> None:
        self.state = NeutronState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"

    def __enter__(self) -> NeutronStandin:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
