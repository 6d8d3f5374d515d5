"""The testbed observation parsed from ansible-runner events (no testbed needed)."""

from __future__ import annotations

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lifecycle.drivers.ansible_observe import observe_testbed, task_results
from lifecycle.formats.inventory import load_inventory
from lifecycle.model.cluster import Cluster, NodeSpec, RoleSpec
from lifecycle.model.observed import NOT_RUNNING, UNKNOWN, UNREACHABLE
from lifecycle.testbed.driver_site import ansible_driver
from lifecycle.testbed.ports import service_port

DEMO = Path(__file__).resolve().parents[2] / "tests" / "data" / "demo-train"
CLUSTER = load_inventory(str(DEMO))


def ok(host: str, task: str, res: dict) -> dict:
    return {"event": "runner_on_ok", "event_data": {"host": host, "task": task, "res": res}}


def daemon_answers(host: str, skip: tuple[str, ...] = (), reachable=None) -> dict:
    results = []
    for service in CLUSTER.services_of(CLUSTER.node(host)):
        if service in skip:
            results.append({"item": service, "status": -1, "msg": "Connection refused"})
            continue
        body = {"service": service, "node": host, "version": "train"}
        if service in ("galera", "rabbitmq", "ceph-mon"):
            peers = reachable or ["ctl-0", "ctl-1", "ctl-2"]
            body["members"] = {"size": 3, "reachable": peers, "majority": len(peers) * 2 > 3}
        if service == "nova-compute":
            body.update(instances=[{"id": "a"}, {"id": "b"}], enabled=host != "cmp-hdd-1")
        results.append({"item": service, "status": 200, "json": body})
    return ok(host, "daemon state", {"results": results})


def test_versions_membership_computes_and_flags_from_one_runner_call() -> None:
    events = [daemon_answers(n.name) for n in CLUSTER.nodes if n.name != "cmp-ssd-0"]
    events.append(
        {"event": "runner_on_unreachable",
         "event_data": {"host": "cmp-ssd-0", "res": {"msg": "ssh: connect: Connection refused"}}}
    )  # fmt: skip
    events[0] = daemon_answers("ctl-0", skip=("galera",), reachable=["ctl-0", "ctl-2"])
    events.append(ok("ctl-0", "ceph flags", {"files": [{"path": "/tb/ctl-0/ceph-flag-noout"}]}))
    observed = observe_testbed(CLUSTER, task_results(events), ())  # all stand-ins
    assert observed.node_state("cmp-ssd-0") == UNREACHABLE
    assert observed.release_of("nova-compute@cmp-ssd-0") == UNKNOWN
    assert observed.release_of("galera@ctl-0") == NOT_RUNNING
    assert observed.release_of("keystone@ctl-0") == "train"
    galera = observed.store("galera")
    assert galera is not None and galera.standin and galera.members == ("ctl-0", "ctl-1", "ctl-2")
    assert observed.store("ceph-mon").flags == ("noout",)
    assert observed.compute("cmp-hdd-1").enabled is False
    assert observed.compute("cmp-hdd-0").instances == 2
    assert observed.compute("cmp-ssd-0").up is False
    assert any(u.startswith("galera: wsrep_") for u in observed.unobservable)


def test_observe_parses_a_real_ansible_runner_call(tmp_path, monkeypatch) -> None:
    """observe.yml through ansible-runner on this machine (local connection, one 'host' per
    node, all at 127.0.0.1): a keystone daemon answering, the other daemons absent, one host
    unreachable. Checks the parsing against the runner's real events, not hand-made ones."""
    port = service_port("keystone")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            pytest.skip(f"port {port} is in use here")

    class Keystone(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"service": "keystone", "node": "a", "version": "ussuri"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", port), Keystone)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cluster = Cluster(
        "local",
        "train",
        (RoleSpec("Controller", ("keystone", "memcached")),),
        (
            NodeSpec("a", "Controller", address="127.0.0.1"),
            NodeSpec("b", "Controller", address="192.0.2.1"),  # TEST-NET-1: never answers
        ),
    )
    driver = ansible_driver(tmp_path)  # no testbed.yaml: every service a stand-in
    real_inventory = driver.inventory

    def local_inventory(cl, secrets=None):
        inventory = real_inventory(cl, secrets)
        inventory["all"]["hosts"]["a"]["ansible_connection"] = "local"
        inventory["all"]["hosts"]["a"]["ansible_python_interpreter"] = sys.executable
        inventory["all"]["hosts"]["b"].update(
            ansible_connection="ssh", ansible_ssh_common_args="-o ConnectTimeout=1"
        )
        return inventory

    monkeypatch.setattr(driver, "inventory", local_inventory)
    try:
        observed = driver.observe(cluster)
    finally:
        server.shutdown()
    assert observed.node_state("a") == "reachable"
    assert observed.release_of("keystone@a") == "ussuri"
    assert observed.release_of("memcached@a") == NOT_RUNNING
    assert observed.node_state("b") == UNREACHABLE
    assert observed.release_of("keystone@b") == UNKNOWN
    assert observed.observed_at
