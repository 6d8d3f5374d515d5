"""What the real-cloud tests ask of this machine about a testbed: a free address block, and the
processes in a host's network namespace."""

from __future__ import annotations

import os
import random
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


def free_prefix(second_octets: range) -> str:
    """A "10.X.Y." prefix, X drawn from `second_octets`, that no interface of this machine has an
    address in: each test module draws from its own block so several testbeds coexist."""
    shown = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True)
    for _ in range(100):
        prefix = f"10.{random.choice(second_octets)}.{random.randint(0, 255)}."
        if f" {prefix}" not in shown.stdout:
            return prefix
    raise AssertionError("no free 10.x.y.0/24 for the testbed")
