"""The shipped catalog is consistent, and a broken one is reported, cycles named."""

from __future__ import annotations

import copy

import pytest
import yaml

from lifecycle.catalog import build_catalog, load_catalog
from lifecycle.errors import CatalogError, DependencyCycle
from lifecycle.model.service import Quorum, Tier

REQUIRED = [
    "haproxy",
    "galera",
    "rabbitmq",
    "memcached",
    "keystone",
    "glance-api",
    "cinder-api",
    "cinder-scheduler",
    "cinder-volume",
    "nova-api",
    "nova-conductor",
    "nova-scheduler",
    "nova-novncproxy",
    "nova-compute",
    "placement-api",
    "neutron-server",
    "neutron-ovs-agent",
    "neutron-l3-agent",
    "neutron-dhcp-agent",
    "octavia-api",
    "swift-proxy",
    "swift-storage",
    "horizon",
    "heat-api",
    "ceph-mon",
    "ceph-mgr",
    "ceph-osd",
    "ceph-mds",
    "ceph-rgw",
]


@pytest.fixture()
def raw() -> tuple[dict, dict]:
    from importlib import resources

    here = resources.files("lifecycle.catalog")
    return (
        yaml.safe_load(here.joinpath("services.yaml").read_text()),
        yaml.safe_load(here.joinpath("releases.yaml").read_text()),
    )


def test_catalog_has_the_services_of_such_a_cloud() -> None:
    catalog = load_catalog()
    assert set(REQUIRED) <= set(catalog.services)
    assert catalog.service("galera").quorum is Quorum.MAJORITY
    assert catalog.service("nova-compute").workloads
    assert catalog.service("nova-compute").tier is Tier.DATA
    assert catalog.tripleo_map["MySQL"] == "galera"


def test_ceph_daemons_go_mon_mgr_osd_mds_rgw() -> None:
    order = load_catalog().dependency_order()
    ceph = [s for s in order if s.startswith("ceph-")]
    assert ceph.index("ceph-mon") < ceph.index("ceph-mgr") < ceph.index("ceph-osd")
    assert ceph.index("ceph-osd") < ceph.index("ceph-mds")
    assert ceph.index("ceph-osd") < ceph.index("ceph-rgw")


def test_a_dependency_cycle_is_named(raw) -> None:
    services, releases = copy.deepcopy(raw)
    services["services"]["galera"]["depends_on"] = ["keystone"]
    with pytest.raises(DependencyCycle) as info:
        build_catalog(services, releases)
    assert "galera" in str(info.value) and "keystone" in str(info.value)


def test_an_unknown_dependency_is_reported(raw) -> None:
    services, releases = copy.deepcopy(raw)
    services["services"]["keystone"]["depends_on"] = ["mysql"]
    with pytest.raises(
        CatalogError, match=r"services\.keystone: refers to unknown service 'mysql'"
    ):
        build_catalog(services, releases)


def test_a_tripleo_name_maps_to_one_service(raw) -> None:
    services, releases = copy.deepcopy(raw)
    services["services"]["horizon"]["tripleo"] = ["Horizon", "MySQL"]
    with pytest.raises(CatalogError, match="MySQL already maps to galera"):
        build_catalog(services, releases)
