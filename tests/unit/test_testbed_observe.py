"""The testbed observation parsed from ansible-runner events (no testbed needed)."""

from __future__ import annotations

from pathlib import Path

from lifecycle.drivers.ansible_observe import observe_testbed, task_results
from lifecycle.formats.inventory import load_inventory
from lifecycle.model.observed import NOT_RUNNING, UNKNOWN, UNREACHABLE

DEMO = Path(__file__).resolve().parents[2] / "inventories" / "demo"
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
    observed = observe_testbed(CLUSTER, task_results(events))
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
