"""Every real TripleO file of the corpus imports, and maps to the services an operator expects."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.catalog import load_catalog
from lifecycle.errors import ImportFormatError
from lifecycle.formats.tripleo import (
    DeploymentRole,
    hostnames,
    load_baremetal_deployment,
    load_role_file,
    load_roles_data,
    map_services,
)

DATA = Path(__file__).resolve().parents[1] / "data"
TRIPLEO = DATA / "tripleo"
ROLE_FILES = sorted((TRIPLEO / "roles").glob("*.yaml"))


def test_the_corpus_is_complete() -> None:
    assert len(ROLE_FILES) == 55


@pytest.mark.parametrize("path", ROLE_FILES, ids=lambda p: p.stem)
def test_every_role_file_imports(path: Path) -> None:
    role = load_role_file(path, load_catalog())
    assert role.spec.name == path.stem
    catalog = load_catalog()
    assert all(service in catalog.services for service in role.spec.services)
    # nothing silently dropped: every TripleO name is mapped, ignored on purpose, or reported
    assert not set(role.spec.unknown_tripleo) & set(catalog.tripleo_map)


def test_roles_data_maps_the_default_roles() -> None:
    roles = {r.spec.name: r for r in load_roles_data(TRIPLEO / "roles_data.yaml", load_catalog())}
    assert list(roles) == ["Controller", "Compute", "BlockStorage", "ObjectStorage", "CephStorage"]
    controller = roles["Controller"].spec.services
    expected = ("galera", "rabbitmq", "keystone", "nova-api", "nova-conductor", "haproxy",
                "neutron-server", "ceph-mon", "ceph-mgr", "octavia-api", "horizon")  # fmt: skip
    for service in expected:
        assert service in controller
    assert "nova-compute" in roles["Compute"].spec.services
    assert "neutron-ovs-agent" in roles["Compute"].spec.services
    assert roles["CephStorage"].spec.services == ("ceph-osd",)
    assert roles["BlockStorage"].spec.services == ("cinder-volume",)
    assert roles["Controller"].count == 1
    assert roles["Controller"].hostname_format == "%stackname%-controller-%index%"


def test_unknown_tripleo_services_are_reported_not_dropped() -> None:
    catalog = load_catalog()
    names = ["OS::TripleO::Services::Keystone", "OS::TripleO::Services::Sshd",
             "OS::TripleO::Services::CephNfs", "OS::TripleO::Services::MySQL"]  # fmt: skip
    services, unknown = map_services(names, catalog)
    assert services == ("keystone", "galera")
    assert unknown == ("CephNfs",)  # Sshd is host configuration, ignored on purpose
    role = load_role_file(TRIPLEO / "roles" / "ControllerStorageNfs.yaml", catalog)
    assert "CephNfs" in role.spec.unknown_tripleo


def test_corpus_baremetal_deployment() -> None:
    entries = load_baremetal_deployment(TRIPLEO / "baremetal_deployment.yaml")
    assert [(e.role, e.count) for e in entries] == [("Controller", 3), ("Compute", 3)]
    assert entries[0].instances[0].address == "192.168.24.10"


def test_hostnames_fill_up_to_the_count() -> None:
    entry = DeploymentRole("Compute", 3, None, ())
    assert hostnames(entry, "oc", None) == ("oc-compute-0", "oc-compute-1", "oc-compute-2")
    no_index = DeploymentRole("Compute", 3, "fixed-name", ())
    assert hostnames(no_index, "oc", None) == ("fixed-name",)  # the loader reports the shortfall


def test_broken_roles_file_names_each_problem() -> None:
    with pytest.raises(ImportFormatError) as info:
        load_roles_data(DATA / "roles_broken.yaml", load_catalog())
    text = str(info.value)
    assert (
        "roles_broken.yaml:4: [0].ServicesDefault[1]: a service name OS::TripleO::Services::"
        in text
    )
    assert "roles_broken.yaml:5: [1].name: a non-empty string, got nothing" in text
    assert "roles_broken.yaml:6: [1].ServicesDefault: a list, got a string" in text
