"""The local testbed's side of an inventory: `testbed.yaml` beside `cluster.yaml`.

Only the testbed side reads it (driver_site.py hands it to the drivers as site facts); the drivers
never do. Today it names the services that run for real on the test hosts (`real_services`); every
other service runs as a stand-in daemon (lifecycle/testbed/daemon.py). Absent file: every service is
a stand-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from lifecycle.errors import InventoryError
from lifecycle.model.cluster import Cluster

FILE = "testbed.yaml"
# services that have a real implementation on the testbed, and the playbook role that runs each
REAL_ROLES = {
    "haproxy": "haproxy",
    "galera": "galera",
    "rabbitmq": "rabbitmq",
    "memcached": "memcached",
    "keystone": "keystone",
    "placement-api": "placement",
}


@dataclass(frozen=True)
class TestbedConfig:
    real_services: tuple[str, ...] = ()

    def is_real(self, service: str) -> bool:
        return service in self.real_services


def load_testbed_config(cluster: Cluster) -> TestbedConfig:
    """The cluster's testbed.yaml (InventoryError naming the file and field when it is wrong)."""
    if not cluster.source:
        return TestbedConfig()
    path = Path(cluster.source).parent / FILE
    if not path.exists():
        return TestbedConfig()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise InventoryError.at(
            str(path), "", "valid YAML", line=None if line is None else line + 1
        ) from exc
    if not isinstance(raw, dict):
        raise InventoryError.at(str(path), "", "a mapping with real_services")
    real = raw.get("real_services", [])
    if not isinstance(real, list) or not all(isinstance(s, str) for s in real):
        raise InventoryError.at(str(path), "real_services", "a list of service names")
    unknown = sorted(set(real) - set(REAL_ROLES))
    if unknown:
        raise InventoryError.at(
            str(path),
            "real_services",
            f"services the testbed can run for real ({', '.join(sorted(REAL_ROLES))});"
            f" not {', '.join(unknown)}",
        )
    return TestbedConfig(real_services=tuple(real))
