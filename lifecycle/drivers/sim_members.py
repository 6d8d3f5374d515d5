"""The sim driver's replacement and removal: membership and the node set change in its state.

`data` is the sim state file's content (drivers/sim.py SimState.data): `versions` (instance ->
release; an instance's presence is its membership, as sim_observe reads it), `instances` (compute
-> its instances), `aggregates`, `dead`, `disabled`, and here `removed` (nodes unprovisioned and
not deployed again: no longer part of the simulated cloud).
"""

from __future__ import annotations

from typing import Any

from lifecycle.planning.actions import expected_release
from lifecycle.planning.plan import Step
from lifecycle.planning.replace import (
    CEPH_OSD,
    CLEANUP_RECORDS,
    DEPLOY_SERVICE,
    MEMBER_REMOVE,
    REMOVE_PLAYBOOKS,
    STOP_SERVICE,
)

NOT_RUNNING = "not running"


def apply(data: dict[str, Any], step: Step) -> str | None:
    """Change the simulated cluster as `step` would; an error message if it cannot."""
    verb = step.action
    if verb == "baremetal.undeploy":
        for node in step.nodes:
            _forget_node(data, node)
            data["removed"] = sorted({*data.get("removed", []), node})
        return None
    if verb == "baremetal.deploy":
        _arrive(data, step.nodes)
        return None
    if verb == "compute.verify_empty":
        held = {n: len(data["instances"].get(n, [])) for n in step.nodes}
        full = [f"{n} ({k} instance(s))" for n, k in held.items() if k]
        return f"not empty: {', '.join(full)}" if full else None
    if verb == "compute.delete_service":
        return _delete_service(data, step)
    if verb == "compute.aggregate_add":
        for node in step.nodes:
            data["aggregates"][node] = step.param("aggregate")
            data["instances"].setdefault(node, [])
        return None
    playbook = step.param("playbook")
    if playbook == STOP_SERVICE:
        for text in step.disrupts:
            data["versions"][text] = NOT_RUNNING
        return None
    if playbook in (*REMOVE_PLAYBOOKS.values(), MEMBER_REMOVE):
        data["versions"].pop(f"{step.param('service')}@{step.param('member')}", None)
        return None
    if playbook == DEPLOY_SERVICE:
        return _deploy(data, step)
    if playbook == CLEANUP_RECORDS:
        node = str(step.param("node"))
        if node in data.get("removed", []):
            _forget_node(data, node)
        return None
    if playbook == CEPH_OSD and step.param("op") == "host-remove":
        data["versions"].pop(f"ceph-osd@{step.param('host')}", None)
    return None


def _deploy(data: dict[str, Any], step: Step) -> str | None:
    from lifecycle.drivers.sim import _is_ceph

    service = str(step.param("service"))
    _arrive(data, step.nodes)
    for node in step.nodes:
        data["versions"][f"{service}@{node}"] = expected_release(step, service, _is_ceph(service))
        if service == "nova-compute":
            data["instances"].setdefault(node, [])
    return None


def _arrive(data: dict[str, Any], nodes: tuple[str, ...]) -> None:
    """A (re)provisioned node is part of the cloud again, alive."""
    data["removed"] = [n for n in data.get("removed", []) if n not in nodes]
    data["dead"] = [n for n in data["dead"] if n not in nodes]
    for node in nodes:
        data.get("lost", {}).pop(node, None)


def _delete_service(data: dict[str, Any], step: Step) -> str | None:
    """Nova refuses (409 Conflict) to delete a compute service whose host holds instances."""
    for node in step.nodes:
        held = data["instances"].get(node, [])
        if held:
            return (
                f"409 Conflict: compute service of {node} still hosts {len(held)} instance(s);"
                " migrate or evacuate them first"
            )
        data["instances"].pop(node, None)
        data["disabled"] = [h for h in data["disabled"] if h != node]
        listed = step.param("services")
        for service in listed if isinstance(listed, tuple) else ():
            data["versions"].pop(f"{service}@{node}", None)
    return None


def _forget_node(data: dict[str, Any], node: str) -> None:
    """Everything the cloud knew of `node`: its instances, records and agents."""
    for text in [t for t in data["versions"] if t.partition("@")[2] == node]:
        del data["versions"][text]
    data["instances"].pop(node, None)
    data["aggregates"].pop(node, None)
    data["disabled"] = [h for h in data["disabled"] if h != node]
    for kind in ("routers", "networks"):
        data.get(kind, {}).pop(node, None)
