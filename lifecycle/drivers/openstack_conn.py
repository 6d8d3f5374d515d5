"""openstacksdk connections for drivers that the engine calls from several worker threads.

An SDK connection is not safe to share between threads, so each thread gets its own, and the
driver's close() closes them all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def connect(cloud: str | None, endpoint: str | None, service: str) -> Any:
    """A connection from clouds.yaml, or to a standalone endpoint without auth
    (`service` names the endpoint override: "baremetal", "compute")."""
    import openstack

    if endpoint:
        override: dict[str, Any] = {f"{service}_endpoint_override": endpoint}
        return openstack.connect(auth_type="none", **override)
    return openstack.connect(cloud=cloud)


class ThreadConnections:
    """One connection per thread, made on first use by `factory`."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def get(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._factory()
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            while self._all:
                self._all.pop().close()
        self._local = threading.local()
