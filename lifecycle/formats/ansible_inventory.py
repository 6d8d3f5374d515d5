"""Export a cluster as an Ansible inventory (YAML/JSON shape): groups per role, per service and
per aggregate, `ansible_host` = the node's address.

Group names use only letters, digits and underscores (Ansible warns about others): the role
`Controller` stays `Controller`, the service `nova-compute` becomes `service_nova_compute`, the
aggregate `ssd` becomes `aggregate_ssd`. Secrets never enter the inventory: at most the SSH user
and the *path* of the private key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lifecycle.model.cluster import Cluster


def group_name(kind: str, name: str) -> str:
    """`service`, `nova-compute` -> `service_nova_compute`."""
    return f"{kind}_{re.sub(r'[^A-Za-z0-9_]', '_', name)}"


def role_group(role: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", role)


def _host_vars(cluster: Cluster, node_name: str) -> dict[str, Any]:
    node = cluster.node(node_name)
    out: dict[str, Any] = {
        "lifecycle_role": node.role,
        "lifecycle_services": list(cluster.services_of(node)),
        "failure_domain": node.failure_domain,
    }
    if node.address:
        out["ansible_host"] = node.address
    aggregate = cluster.aggregate_of(node)
    if aggregate:
        out["aggregate"] = aggregate
    return out


def _ssh_vars(secrets: Mapping[str, Any] | None) -> dict[str, Any]:
    ssh = secrets.get("ssh") if secrets is not None else None
    if not ssh:
        return {}
    out: dict[str, Any] = {}
    if ssh.get("user"):
        out["ansible_user"] = ssh["user"]
    if ssh.get("private_key_file"):
        out["ansible_ssh_private_key_file"] = str(ssh["private_key_file"])
    return out


def to_ansible_inventory(cluster: Cluster, secrets: Mapping[str, Any] | None = None) -> dict:
    """The cluster as an Ansible inventory dict, ready for yaml/json dumping or ansible-runner."""
    children: dict[str, dict[str, Any]] = {}

    def add(group: str, host: str) -> None:
        children.setdefault(group, {"hosts": {}})["hosts"][host] = None

    for node in cluster.nodes:
        add(role_group(node.role), node.name)
        for service in cluster.services_of(node):
            add(group_name("service", service), node.name)
        aggregate = cluster.aggregate_of(node)
        if aggregate:
            add(group_name("aggregate", aggregate), node.name)
    group_vars: dict[str, Any] = {
        "cluster_name": cluster.name,
        "cluster_release": cluster.release,
        **_ssh_vars(secrets),
    }
    if cluster.ceph_release:
        group_vars["ceph_release"] = cluster.ceph_release
    return {
        "all": {
            "hosts": {n.name: _host_vars(cluster, n.name) for n in cluster.nodes},
            "children": {name: children[name] for name in sorted(children)},
            "vars": group_vars,
        }
    }
