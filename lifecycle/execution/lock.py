"""One run per cluster at a time: an fcntl lock on <state>/<cluster>.lock naming its holder
(run id, pid, host, since when). The kernel drops the lock when its process dies, so a run
recorded as running whose lock no process holds was interrupted (lifecycle.execution.liveness)."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from lifecycle.errors import RunLocked


class ClusterLock:
    """Held for the life of the process running a run; the kernel drops it if the process dies,
    so a crashed run never leaves a stale lock behind."""

    def __init__(self, path: Path, cluster: str, run_id: str) -> None:
        self.path = path
        self.cluster = cluster
        self.run_id = run_id
        self._fd: int | None = None

    def acquire(self) -> ClusterLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            run = holder.get("run", "?")
            raise RunLocked(
                f"cluster {self.cluster} is busy: run {run} (pid {holder.get('pid', '?')}"
                f" on {holder.get('host', '?')}) holds"
                f" {self.path}. Wait for it to end (`lifecycle runs show {run}` follows it),"
                f" `lifecycle pause {run}` to stop it at its next safe point (resumable), or"
                f" `lifecycle abort {run}` to end it for good"
            ) from None
        os.ftruncate(fd, 0)
        me = {
            "run": self.run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.time(),
        }
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ClusterLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_holder(fd: int) -> dict[str, object]:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def holder(path: Path) -> str | None:
    """The run id holding the lock at `path`, or None when no live process holds it."""
    info = holder_info(path)
    return None if info is None else str(info.get("run") or "?")


def holder_info(path: Path) -> dict[str, object] | None:
    """{run, pid, host, since} of the live process holding the lock, or None when none does."""
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
