"""Where each service daemon of the testbed listens: one port per service, the same on every host
(each host has its own address), derived from the catalog so deploy and checks always agree."""

from __future__ import annotations

from functools import cache

from lifecycle.catalog import load_catalog

BASE_PORT = 8100
QUORUM_SERVICES = ("galera", "rabbitmq", "ceph-mon")


@cache
def service_ports() -> dict[str, int]:
    """Service name -> TCP port of its daemon."""
    names = sorted(load_catalog().services)
    return {name: BASE_PORT + index for index, name in enumerate(names)}


def service_port(service: str) -> int:
    return service_ports()[service]
