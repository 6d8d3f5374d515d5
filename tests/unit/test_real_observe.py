"""Real services observed through their roles' `observe <service>` tasks (CONTRACT.md JSON
shapes), parsed from recorded ansible-runner events; no testbed needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lifecycle.cli.status_cmds import render_status
from lifecycle.drivers.ansible_observe import observe_testbed, task_results
from lifecycle.formats.inventory import load_inventory
from lifecycle.model.observed import NOT_RUNNING, UNKNOWN
from lifecycle.planning.differences import differences
from lifecycle.testbed.config import load_testbed_config

DEMO = Path(__file__).resolve().parents[2] / "inventories" / "demo"
CLUSTER = load_inventory(str(DEMO))
REAL = load_testbed_config(CLUSTER).real_services
CONTROLLERS = ("ctl-0", "ctl-1", "ctl-2")
ADDRESS = {n: CLUSTER.node(n).address for n in CONTROLLERS}


def ok(host: str, task: str, res: dict) -> dict:
    return {"event": "runner_on_ok", "event_data": {"host": host, "task": task, "res": res}}


def wsrep(size: int, status: str = "Primary", state: str = "Synced") -> dict[str, Any]:
    return {"wsrep_cluster_size": str(size), "wsrep_cluster_status": status,
            "wsrep_local_state_comment": state, "wsrep_last_committed": "1042",
            "wsrep_cluster_state_uuid": "6a1c8e57-aa4b-11ef-8f4c-6b1d0e0b4a11"}  # fmt: skip


def host_events(host: str, overrides: dict[str, Any] | None = None) -> list[dict]:
    """What observe.yml reports on `host`: stand-ins by GET /, real services by their task."""
    overrides = overrides or {}
    services = CLUSTER.services_of(CLUSTER.node(host))
    standins = []
    events = []
    for service in services:
        if service not in REAL:
            release = "reef" if service.startswith("ceph") else "2024.1"
            body = {"service": service, "node": host, "version": release}
            if service == "nova-compute":
                body.update(instances=[], enabled=True)
            if service == "ceph-mon":
                body["members"] = {"size": 3, "reachable": list(CONTROLLERS), "majority": True}
            standins.append({"item": service, "status": 200, "json": body})
            continue
        report: Any = {"service": service, "version": "2024.1", "running": True}
        if service == "galera":
            report["wsrep"] = wsrep(3)
        if service == "rabbitmq":
            every = [f"rabbit@{ADDRESS[n]}" for n in CONTROLLERS]
            report.update(running_nodes=every, nodes=every)
        report = overrides.get(service, report)
        stdout = report if isinstance(report, str) else json.dumps(report)
        events.append(ok(host, f"observe {service}", {"stdout": stdout, "rc": 0}))
    events.append(ok(host, "daemon state", {"results": standins}))
    return events


def observe(per_host: dict[str, dict[str, Any]] | None = None, unreachable=()) -> Any:
    per_host = per_host or {}
    events = []
    for node in CLUSTER.nodes:
        if node.name in unreachable:
            data = {"host": node.name, "res": {"msg": "no route"}}
            events.append({"event": "runner_on_unreachable", "event_data": data})
            continue
        events += host_events(node.name, per_host.get(node.name))
    return observe_testbed(CLUSTER, task_results(events), REAL)


def test_a_healthy_real_cloud_reports_releases_members_and_quorum() -> None:
    observed = observe()
    assert observed.release_of("galera@ctl-1") == "2024.1"
    assert observed.release_of("keystone@ctl-2") == "2024.1"
    assert observed.release_of("nova-api@ctl-0") == "2024.1"  # a stand-in, by GET /
    galera, rabbit = observed.store("galera"), observed.store("rabbitmq")
    assert galera.members == CONTROLLERS and galera.size == 3 and galera.quorum is True
    assert galera.health == "healthy" and not galera.standin
    assert galera.field("wsrep_cluster_status") == "Primary"
    assert galera.field("wsrep_local_state_comment@ctl-2") == "Synced"
    assert rabbit.members == CONTROLLERS and rabbit.quorum is True and rabbit.health == "healthy"
    assert observed.store("ceph-mon").standin
    assert [u.split(":")[0] for u in observed.unobservable] == ["ceph-mon"]
    assert not differences(CLUSTER, observed)


def test_a_stopped_galera_member_is_not_running_and_missing_from_the_primary_component() -> None:
    stopped = {"service": "galera", "version": "2024.1", "running": False}
    two = {"service": "galera", "version": "2024.1", "running": True, "wsrep": wsrep(2)}
    observed = observe({"ctl-0": {"galera": two}, "ctl-1": {"galera": two},
                        "ctl-2": {"galera": stopped}})  # fmt: skip
    assert observed.release_of("galera@ctl-2") == NOT_RUNNING
    galera = observed.store("galera")
    assert galera.members == ("ctl-0", "ctl-1") and galera.size == 2
    assert galera.quorum is True and galera.health == "degraded"
    assert galera.field("wsrep_local_state_comment@ctl-2") == "not running"
    found = [d.message for d in differences(CLUSTER, observed)]
    assert "galera is missing member(s) ctl-2 (2 of 3 joined)" in found
    assert "galera@ctl-2 is not running" in found


def test_a_joiner_counts_in_the_component_but_not_as_a_member() -> None:
    joining = {"service": "galera", "version": "2025.1", "running": True,
               "wsrep": wsrep(3, state="Joined")}  # fmt: skip
    observed = observe({"ctl-1": {"galera": joining}})
    galera = observed.store("galera")
    assert galera.members == ("ctl-0", "ctl-2") and galera.size == 3
    assert galera.health == "degraded"
    assert observed.release_of("galera@ctl-1") == "2025.1"


def test_no_primary_component_is_no_quorum() -> None:
    lone = {"service": "galera", "version": "2024.1", "running": True,
            "wsrep": wsrep(1, status="non-Primary", state="Initialized")}  # fmt: skip
    observed = observe({"ctl-0": {"galera": lone}}, unreachable=("ctl-1", "ctl-2"))
    galera = observed.store("galera")
    assert galera.quorum is False and galera.health == "down" and galera.members == ()
    assert galera.field("wsrep_cluster_status") == "non-Primary"
    assert observed.release_of("galera@ctl-1") == UNKNOWN
    assert "galera has no quorum" in [d.message for d in differences(CLUSTER, observed)]


def test_rabbitmq_running_nodes_name_the_members_by_address() -> None:
    alone = {"service": "rabbitmq", "version": "2024.1", "running": True,
             "running_nodes": [f"rabbit@{ADDRESS['ctl-0']}"],
             "nodes": [f"rabbit@{ADDRESS[n]}" for n in CONTROLLERS]}  # fmt: skip
    stopped = {"service": "rabbitmq", "version": "2024.1", "running": False}
    observed = observe({"ctl-0": {"rabbitmq": alone}, "ctl-1": {"rabbitmq": stopped},
                        "ctl-2": {"rabbitmq": stopped}})  # fmt: skip
    rabbit = observed.store("rabbitmq")
    assert rabbit.members == ("ctl-0",) and rabbit.quorum is False and rabbit.health == "down"
    assert rabbit.field("running_nodes") == f"rabbit@{ADDRESS['ctl-0']}"


def test_a_task_without_json_leaves_the_instance_unknown_and_says_why() -> None:
    observed = observe({"ctl-0": {"keystone": "Traceback (most recent call last): ..."}})
    instance = next(i for i in observed.instances if i.instance == "keystone@ctl-0")
    assert instance.release == UNKNOWN and "gave no JSON" in instance.detail
    assert observed.store("galera").quorum is True


def test_status_table_names_real_stores_with_their_wsrep_fields() -> None:
    text = render_status(CLUSTER, observe(), [], "table")
    galera_row = next(line for line in text.splitlines() if line.strip("│ ").startswith("galera"))
    assert "stand-in" not in galera_row and "healthy" in galera_row
    assert "wsrep_cluster_size=3" in text
    assert "ceph-mon (stand-in)" in text
