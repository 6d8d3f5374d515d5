"""Ask the testbed's real clustered stores how they are, from the root namespace (the monitor).

- Galera: `SHOW STATUS LIKE 'wsrep_%'` on each member's ADDR:3306 as user `monitor` (USAGE only,
  password `secrets/db-monitor`). Quorum holds while a majority of the inventory's members are
  in a Primary component (`wsrep_cluster_status=Primary`), whatever their local state: Galera's
  quorum is the Primary component's membership, and an SST donor (`Donor/Desynced`) or a member
  catching up by IST stays in it. Synced members (`wsrep_local_state_comment=Synced`, "part of
  the Primary Component and ready") are reported beside it.
- RabbitMQ: `rabbitmqctl cluster_status --formatter json` against `rabbit@ADDR` with the cluster's
  Erlang cookie (`secrets/rabbitmq-cookie`) in a private HOME; quorum holds while a majority of
  the members are in `running_nodes` and no partition is reported. One call costs ~0.5 s of CPU
  (an Erlang VM starts), so the monitor asks RabbitMQ less often than Galera.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lifecycle.model.cluster import Cluster

GALERA_PORT = 3306
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"  # Debian's wrapper in /usr/sbin su's to rabbitmq


def synced_primary(status: Mapping[str, str] | None) -> bool:
    """Whether one member's wsrep status says Synced in a Primary component."""
    return bool(
        status
        and status.get("wsrep_cluster_status") == "Primary"
        and status.get("wsrep_local_state_comment") == "Synced"
    )


def in_primary(status: Mapping[str, str] | None) -> bool:
    """Whether one member's wsrep status says it is in a Primary component (any local state)."""
    return bool(status and status.get("wsrep_cluster_status") == "Primary")


def galera_quorum(statuses: Mapping[str, Mapping[str, str] | None]) -> tuple[tuple[str, ...], bool]:
    """(the members in a Primary component, whether they are a majority of all `statuses`).
    Upstream: Galera's quorum is the Primary component (galeracluster.com, "Quorum Components");
    a donor or joiner in it still votes."""
    members = tuple(n for n, s in statuses.items() if in_primary(s))
    return members, len(members) * 2 > len(statuses)


class GaleraStatus:
    """One persistent connection per member (reopened after any error), `SHOW STATUS`."""

    def __init__(
        self, password: str, timeout: float = 1.0, connect: Callable[..., Any] | None = None
    ) -> None:
        self._password = password
        self._timeout = timeout
        self._connect = connect
        self._conns: dict[str, Any] = {}

    def status(self, address: str) -> dict[str, str] | None:
        """The member's wsrep_* variables, None when it does not answer."""
        try:
            conn = self._conns.get(address) or self._open(address)
            self._conns[address] = conn
            with conn.cursor() as cur:
                cur.execute("SHOW STATUS LIKE 'wsrep_%'")
                return {str(k): str(v) for k, v in cur.fetchall()}
        except Exception:  # any error: the member does not answer now; reconnect next time
            self._drop(address)
            return None

    def _open(self, address: str) -> Any:
        connect = self._connect
        if connect is None:
            import pymysql

            connect = pymysql.connect
        return connect(
            host=address,
            port=GALERA_PORT,
            user="monitor",
            password=self._password,
            connect_timeout=self._timeout,
            read_timeout=self._timeout,
            write_timeout=self._timeout,
            autocommit=True,
        )

    def _drop(self, address: str) -> None:
        conn = self._conns.pop(address, None)
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                conn.close()

    def close(self) -> None:
        for address in list(self._conns):
            self._drop(address)


def rabbit_running(
    cluster: Cluster, members: tuple[str, ...], status: Mapping[str, Any]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(members in `running_nodes`, partitions) of a `cluster_status --formatter json` answer;
    node names `rabbit@ADDR` (RABBITMQ_USE_LONGNAME) or `rabbit@NAME` map to inventory names."""
    names = {}
    for node in members:
        names[f"rabbit@{node}"] = node
        address = cluster.node(node).address
        if address:
            names[f"rabbit@{address}"] = node
    running = {names.get(str(n)) for n in status.get("running_nodes") or []}
    raw = status.get("partitions") or []
    if isinstance(raw, Mapping):  # {node: [nodes it cannot see]}
        partitions = tuple(sorted(f"{k}: {v}" for k, v in raw.items() if v))
    else:
        partitions = tuple(sorted(str(p) for p in raw))
    return tuple(n for n in members if n in running), partitions


class RabbitStatus:
    """`rabbitmqctl cluster_status` with the cookie in a private HOME (never on a command line)."""

    def __init__(self, cookie: str, timeout: float = 5.0, binary: str = RABBITMQCTL) -> None:
        self._home = tempfile.mkdtemp(prefix="lifecycle-rabbitmqctl-")
        path = Path(self._home) / ".erlang.cookie"
        path.write_text(cookie)
        path.chmod(0o400)
        self.timeout = timeout
        self.binary = binary

    @staticmethod
    def available(binary: str = RABBITMQCTL) -> bool:
        return os.access(binary, os.X_OK)

    def cluster_status(self, address: str) -> dict[str, Any] | None:
        """The node's cluster status (JSON), None when it does not answer."""
        argv = [self.binary, "--longnames", "-n", f"rabbit@{address}", "-t", str(int(self.timeout)),
                "cluster_status", "--formatter", "json"]  # fmt: skip
        env = {**os.environ, "HOME": self._home}
        try:
            done = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=self.timeout + 5
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode != 0:
            return None
        try:
            answer = json.loads(done.stdout)
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None

    def close(self) -> None:
        shutil.rmtree(self._home, ignore_errors=True)
