"""The low-level pieces of a testbed host: namespace, veth into the bridge, its own sshd.

Every function takes the exact names or PIDs to act on; nothing here matches names by pattern.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from lifecycle.errors import ExecutionError
from lifecycle.testbed.state import HostRecord

SSHD = "/usr/sbin/sshd"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip ARGS`; failures become an ExecutionError naming the command and its message."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise ExecutionError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def link_exists(name: str, netns: str | None = None) -> bool:
    prefix = ("-n", netns) if netns else ()
    return ip(*prefix, "link", "show", "dev", name, check=False).returncode == 0


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def make_bridge(bridge: str, address: str) -> None:
    if not link_exists(bridge):
        ip("link", "add", bridge, "type", "bridge")
    ip("addr", "replace", address, "dev", bridge)
    ip("link", "set", bridge, "up")


def make_host_network(host: HostRecord, bridge: str, prefix_len: int) -> None:
    """Namespace, veth pair (one end in the bridge, the other in the namespace), addresses, up."""
    if not netns_exists(host.netns):
        ip("netns", "add", host.netns)
    if not link_exists(host.veth):
        ip("link", "add", host.veth, "type", "veth", "peer", "name", host.peer, "netns", host.netns)
    ip("link", "set", host.veth, "master", bridge)
    ip("link", "set", host.veth, "up")
    ip("-n", host.netns, "addr", "replace", f"{host.address}/{prefix_len}", "dev", host.peer)
    ip("-n", host.netns, "link", "set", host.peer, "up")
    ip("-n", host.netns, "link", "set", "lo", "up")


def set_link(host: HostRecord, up: bool) -> None:
    """Cut or restore a host's link (a fault the tests inject)."""
    ip("link", "set", host.veth, "up" if up else "down")


def sshd_config(host: HostRecord, host_key: str, authorized_keys: str) -> Path:
    root = Path(host.root)
    root.mkdir(parents=True, exist_ok=True)
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress {host.address}",
                "Port 22",
                f"HostKey {host_key}",
                f"PidFile {root / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized_keys}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "UseDNS no",
                "MaxStartups 200",
                "MaxSessions 200",
                "LogLevel ERROR",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    return config


def start_sshd(host: HostRecord, config: Path) -> tuple[int, str]:
    """Start the host's sshd inside its namespace, in the foreground of its own session, and
    return (pid, start time). `ip netns exec` execs sshd, so the child's PID is sshd's."""
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    log = open(Path(host.root) / "sshd.log", "ab")  # noqa: SIM115 - handed to the child
    child = subprocess.Popen(
        ["ip", "netns", "exec", host.netns, SSHD, "-D", "-e", "-f", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    log.close()
    if not wait_ssh(host.address, timeout=10.0):
        child.kill()
        raise ExecutionError(f"sshd of {host.name} did not listen on {host.address}:22")
    return child.pid, start_time(child.pid) or ""


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def kill(pid: int, started: str | None = None) -> bool:
    """Kill PID if it is still the process we started (same start time); reap it if ours."""
    if started is not None and start_time(pid) != started:
        return False
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    return True


def netns_pids(netns: str) -> list[int]:
    if not netns_exists(netns):
        return []
    done = ip("netns", "pids", netns, check=False)
    return [int(p) for p in done.stdout.split()]


def sshd_pids(netns: str) -> list[int]:
    """The sshd processes of one namespace: its listener and the sessions it forked."""
    out = []
    for pid in netns_pids(netns):
        try:
            if os.readlink(f"/proc/{pid}/exe") == SSHD:
                out.append(pid)
        except OSError:
            continue
    return out


def ssh_answers(address: str, timeout: float = 1.0) -> bool:
    """Whether something speaking SSH answers on address:22 (reads the server's banner)."""
    try:
        with socket.create_connection((address, 22), timeout=timeout) as conn:
            conn.settimeout(timeout)
            return conn.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def wait_ssh(address: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ssh_answers(address, timeout=0.5):
            return True
        time.sleep(0.05)
    return False
