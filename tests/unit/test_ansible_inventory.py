"""The Ansible inventory export: groups per role, service and aggregate; no secrets inside."""

from __future__ import annotations

import json
from dataclasses import replace

import yaml

from lifecycle.formats.ansible_inventory import group_name, to_ansible_inventory
from lifecycle.model import Cluster
from tests.unit.cluster_factory import lab_like


def _cluster() -> Cluster:
    cluster = lab_like(computes_hdd=2, computes_ssd=2, controllers=3, ceph=3, networkers=1)
    nodes = tuple(replace(n, address=f"198.18.1.{i + 10}") for i, n in enumerate(cluster.nodes))
    return replace(cluster, nodes=nodes)


def test_every_node_is_a_host_reached_at_its_address() -> None:
    cluster = _cluster()
    inventory = to_ansible_inventory(cluster)
    hosts = inventory["all"]["hosts"]
    assert list(hosts) == [n.name for n in cluster.nodes]
    for node in cluster.nodes:
        assert hosts[node.name]["ansible_host"] == node.address
        assert hosts[node.name]["lifecycle_role"] == node.role
        assert hosts[node.name]["lifecycle_services"] == list(cluster.services_of(node))


def test_groups_per_role_service_and_aggregate() -> None:
    cluster = _cluster()
    children = to_ansible_inventory(cluster)["all"]["children"]
    assert set(children["Controller"]["hosts"]) == {"ctl-0", "ctl-1", "ctl-2"}
    assert set(children["service_galera"]["hosts"]) == {"ctl-0", "ctl-1", "ctl-2"}
    computes = {n.name for n in cluster.nodes if n.role.startswith("Compute")}
    assert set(children["service_nova_compute"]["hosts"]) == computes
    assert set(children["aggregate_ssd"]["hosts"]) == {"cmp-ssd-0", "cmp-ssd-1"}
    assert set(children["service_neutron_ovs_agent"]["hosts"]) == computes | {"net-0"}
    # Ansible only likes letters, digits and underscores in group names
    assert all(name.replace("_", "").isalnum() for name in children)
    assert group_name("service", "ceph-mon") == "service_ceph_mon"


def test_cluster_vars_and_ssh_settings_but_never_passwords() -> None:
    cluster = _cluster()
    secrets = {
        "ctl-0": {"username": "admin", "password": "s3cret-bmc"},
        "ssh": {"user": "heat-admin", "private_key_file": "/keys/id_ed25519"},
    }
    inventory = to_ansible_inventory(cluster, secrets)
    group_vars = inventory["all"]["vars"]
    assert group_vars["cluster_release"] == "train"
    assert group_vars["ceph_release"] == "nautilus"
    assert group_vars["ansible_user"] == "heat-admin"
    assert group_vars["ansible_ssh_private_key_file"] == "/keys/id_ed25519"
    assert "s3cret-bmc" not in json.dumps(inventory)


def test_inventory_round_trips_through_yaml() -> None:
    inventory = to_ansible_inventory(_cluster())
    assert yaml.safe_load(yaml.safe_dump(inventory)) == inventory
