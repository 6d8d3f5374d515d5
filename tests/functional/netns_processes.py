"""The processes of a testbed host: what runs in its network namespace."""

from __future__ import annotations

import os
import subprocess


def pids_of(netns: str, executable: str) -> list[int]:
    """Pids of the processes in `netns` whose executable's path ends with `executable`
    (e.g. "mariadbd"); processes that end while they are read are left out."""
    done = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    pids = []
    for pid in done.stdout.split():
        try:
            if os.readlink(f"/proc/{pid}/exe").endswith(executable):
                pids.append(int(pid))
        except OSError:
            continue
    return pids
