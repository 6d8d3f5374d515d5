"""Talk to the testbed's service daemons over HTTP from the root namespace (through the bridge)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from lifecycle.model.cluster import Cluster
from lifecycle.testbed.ports import service_port


def get(address: str, port: int, path: str = "/", timeout: float = 1.0) -> dict[str, Any] | None:
    """The daemon's JSON answer, or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{address}:{port}{path}", timeout=timeout) as answer:
            body: dict[str, Any] = json.loads(answer.read())
            return body
    except (OSError, ValueError):
        return None


def service_status(
    cluster: Cluster, node: str, service: str, timeout: float = 1.0, path: str = "/"
) -> dict[str, Any] | None:
    address = cluster.node(node).address
    if not address:
        return None
    return get(address, service_port(service), path, timeout)
