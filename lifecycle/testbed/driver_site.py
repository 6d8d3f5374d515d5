"""The testbed's site facts, and the drivers of `--driver testbed` built with them.

The production drivers (lifecycle.drivers.ansible, .checks) never read the testbed; this module
does, and hands them what they need as a `Site` (lifecycle.drivers.site): the services testbed.yaml
runs for real and their roles, the testbed's SSH key and known_hosts and each host's directory
(state.json, when it records this cluster), the release images, the stand-in daemons' ports and
configuration, and their HTTP status (lifecycle.testbed.client).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lifecycle.catalog import load_catalog
from lifecycle.drivers.ansible import AnsibleDriver
from lifecycle.drivers.base import Driver
from lifecycle.drivers.base import load_driver as load_registered
from lifecycle.drivers.checks import ChecksDriver
from lifecycle.drivers.site import Site, SiteFacts, SshAccess
from lifecycle.model.cluster import Cluster
from lifecycle.testbed import client
from lifecycle.testbed import state as testbed_state
from lifecycle.testbed.config import REAL_ROLES, load_testbed_config
from lifecycle.testbed.images import images_dir
from lifecycle.testbed.ports import service_ports

DAEMON_SOURCE = Path(__file__).resolve().parent / "daemon.py"
CEPH_OSDMAP_SOURCE = Path(__file__).resolve().parent / "ceph_osdmap.py"  # stand-in OSD map
PYTHON = "/usr/bin/python3"  # the test hosts' interpreter (the machine's own)
SEED_INSTANCES = 3  # instances each stand-in nova-compute starts with


def testbed_site(state_dir: str | Path | None = None) -> Site:
    """The site facts of the testbed recorded in `state_dir` (default: $LIFECYCLE_STATE_DIR,
    else /run/lifecycle-testbed), read afresh for each cluster asked about. InventoryError when
    the cluster's testbed.yaml is wrong."""
    directory = testbed_state.state_dir(state_dir)

    def facts(cluster: Cluster) -> SiteFacts:
        tb = testbed_state.load(directory)
        ours = tb is not None and tb.cluster == cluster.name
        names = {n.name for n in cluster.nodes}
        return SiteFacts(
            real_services=load_testbed_config(cluster).real_services,
            roles=REAL_ROLES,
            ssh=SshAccess("root", tb.key, tb.known_hosts, PYTHON) if tb and ours else None,
            host_vars={
                h.name: {"host_root": h.root, "service_config": service_config(cluster, h.name)}
                for h in (tb.hosts if tb and ours else ())
                if h.name in names
            },
            extravars={
                "images_dir": str(images_dir()),
                "service_ports": service_ports(),
                "testbed_python": PYTHON,
                "daemon_source": str(DAEMON_SOURCE),
                "ceph_osdmap_source": str(CEPH_OSDMAP_SOURCE),
                "seed_instances": SEED_INSTANCES,
            },
            status=client.service_status,
        )

    return facts


def service_config(cluster: Cluster, node: str) -> dict[str, dict[str, Any]]:
    """Each stand-in daemon's configuration on `node`: where it listens, and the peers of
    quorum services (whose membership it reports)."""
    catalog = load_catalog()
    ports = service_ports()
    out = {}
    for service in cluster.services_of(cluster.node(node)):
        members = cluster.members[service]
        spec = catalog.services.get(service)
        quorum = spec is not None and spec.quorum.value == "majority" and len(members) > 1
        peers = [[n, cluster.node(n).address, ports[service]] for n in members] if quorum else []
        out[service] = {
            "service": service,
            "node": node,
            "bind": cluster.node(node).address,
            "port": ports[service],
            "peers": peers,
        }
    return out


def ansible_driver(state_dir: str | Path | None = None, **options: Any) -> AnsibleDriver:
    """The ansible driver on the testbed of `state_dir` (testbed_site's default)."""
    directory = testbed_state.state_dir(state_dir)
    return AnsibleDriver(state_dir=directory, site=testbed_site(directory), **options)


def checks_driver(state_dir: str | Path | None = None, **options: Any) -> ChecksDriver:
    """The checks driver on the testbed of `state_dir`: its stand-ins asked over HTTP, its real
    services through health.yml."""
    directory = testbed_state.state_dir(state_dir)
    return ChecksDriver(state_dir=directory, site=testbed_site(directory), **options)


TESTBED_DRIVERS = {"ansible": ansible_driver, "checks": checks_driver}


def load_driver(name: str, **options: Any) -> Driver:
    """`--driver testbed`'s loader (lifecycle.execution.routing): the ansible and checks drivers
    with the testbed's site facts, every other driver as registered."""
    factory = TESTBED_DRIVERS.get(name)
    if factory is None:
        return load_registered(name, **options)
    driver: Driver = factory(**options)
    return driver
