"""Bring a testbed up, report on it, take it down: one namespace and one sshd per inventory node.

`up` records every namespace, link, PID and file in the state file before or as it makes it,
so `down` removes exactly those, by recorded name and PID, also after a crash.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from lifecycle.errors import ExecutionError, UsageError
from lifecycle.model.cluster import Cluster
from lifecycle.testbed import hosts as hostlib
from lifecycle.testbed import state as st
from lifecycle.testbed.state import HostRecord, TestbedState

BRIDGE_ADDRESS = "198.18.0.1/15"  # the benchmarking range (RFC 2544) the inventories use


def bridge_address(cluster: Cluster) -> str:
    """The bridge's address: 198.18.0.1/15 for nodes in 198.18.0.0/15, else the first address of
    the first node's /24 (so a second testbed on other addresses can run beside the demo's)."""
    first = ipaddress.ip_address(str(cluster.nodes[0].address))
    if first in ipaddress.ip_network("198.18.0.0/15"):
        return BRIDGE_ADDRESS
    network = ipaddress.ip_network(f"{first}/24", strict=False)
    return f"{next(network.hosts())}/24"


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str
    sshd_pid: int | None
    ssh: bool


def require_root() -> None:
    if os.geteuid() != 0:
        raise UsageError.at(
            "lifecycle testbed",
            "user",
            "root: network namespaces, links and sshd need it (run with sudo)",
        )
    if not Path(hostlib.SSHD).exists():
        raise UsageError.at(
            "lifecycle testbed",
            "openssh-server",
            f"{hostlib.SSHD} (apt-get install openssh-server, or run scripts/demo.sh)",
        )


def _keygen(path: Path) -> None:
    if not path.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lifecycle-testbed", "-f", path],
            check=True,
        )


def _new_state(cluster: Cluster, directory: Path) -> TestbedState:
    token = secrets.token_hex(2)
    return TestbedState(
        cluster=cluster.name,
        token=token,
        bridge=f"lcb{token}",
        bridge_address=bridge_address(cluster),
        key=str(directory / "id_ed25519"),
        host_key=str(directory / "ssh_host_ed25519_key"),
        known_hosts=str(directory / "known_hosts"),
    )


def _record(
    state: TestbedState, index: int, name: str, address: str, directory: Path
) -> HostRecord:
    return HostRecord(
        name=name,
        address=address,
        netns=f"lc-{state.token}-{name}",
        veth=f"lc{state.token}h{index}",
        peer=f"lc{state.token}n{index}",
        root=str(directory / "hosts" / name),
    )


def _keys(state: TestbedState, directory: Path) -> TestbedState:
    _keygen(Path(state.key))
    _keygen(Path(state.host_key))
    authorized = directory / "authorized_keys"
    authorized.write_text(Path(state.key + ".pub").read_text())
    authorized.chmod(0o600)
    files = (
        state.key,
        state.key + ".pub",
        state.host_key,
        state.host_key + ".pub",
        str(authorized),
    )
    return replace(state, files=(*files, state.known_hosts))


def _known_hosts(state: TestbedState) -> None:
    host_key = Path(state.host_key + ".pub").read_text().split()[:2]
    lines = [f"{h.address} {' '.join(host_key)}" for h in state.hosts]
    Path(state.known_hosts).write_text("\n".join(lines) + "\n")


def up(cluster: Cluster, directory: Path) -> TestbedState:
    """Make (or complete) the testbed for `cluster`; idempotent: what exists is kept."""
    require_root()
    missing = [n.name for n in cluster.nodes if not n.address]
    if missing:
        raise UsageError.at(
            cluster.source or "cluster.yaml",
            "nodes[].address",
            f"an address for every node (missing: {', '.join(missing)})",
        )
    state = st.load(directory)
    if state is not None and state.cluster != cluster.name:
        raise UsageError.at(
            "lifecycle testbed up",
            "--inventory",
            f"cluster {state.cluster} (the testbed in {directory}); run down first",
        )
    state = state or _new_state(cluster, directory)
    _refuse_other_testbed(state)
    st.save(directory, state)
    state = _keys(state, directory)
    st.save(directory, state)
    hostlib.make_bridge(state.bridge, state.bridge_address)
    for index, node in enumerate(cluster.nodes):
        known = {h.name: h for h in state.hosts}
        record = known.get(node.name) or _record(
            state, index, node.name, str(node.address), directory
        )
        state = state.with_host(record)
        st.save(directory, state)  # recorded before it is made
        hostlib.make_host_network(record, state.bridge, state.prefix_len)
        state = state.with_host(_ensure_sshd(state, record, directory))
        st.save(directory, state)
    _known_hosts(state)
    return state


def add_host(directory: Path, name: str, address: str) -> TestbedState:
    """Add one host (a server the cluster grew by, not in the inventory file) to the running
    testbed; recorded in the state file before it is made, so `down` removes it too."""
    require_root()
    state = _loaded(directory)
    taken = {h.address: h.name for h in state.hosts if h.name != name}
    if address in taken:
        raise UsageError.at(
            "lifecycle testbed add-host", "address", f"a free address ({taken[address]} has it)"
        )
    known = {h.name: h for h in state.hosts}
    record = known.get(name) or _record(state, len(state.hosts), name, address, directory)
    state = state.with_host(record)
    st.save(directory, state)
    hostlib.make_host_network(record, state.bridge, state.prefix_len)
    state = state.with_host(_ensure_sshd(state, record, directory))
    st.save(directory, state)
    _known_hosts(state)
    return state


def _refuse_other_testbed(state: TestbedState) -> None:
    """Two bridges holding the same subnet would split the hosts between them."""
    gateway = state.bridge_address.split("/")[0]
    shown = hostlib.ip("-o", "-4", "addr", "show").stdout
    for line in shown.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3].split("/")[0] == gateway and fields[1] != state.bridge:
            raise UsageError.at(
                "lifecycle testbed up",
                "--state-dir",
                f"the only testbed: {fields[1]} already holds {gateway} (another testbed is up;"
                " take it down with `lifecycle testbed down --state-dir` of that one)",
            )


def _ensure_sshd(state: TestbedState, host: HostRecord, directory: Path) -> HostRecord:
    alive = host.sshd_pid is not None and hostlib.start_time(host.sshd_pid) == host.sshd_start
    if alive and hostlib.ssh_answers(host.address):
        return host
    config = hostlib.sshd_config(host, state.host_key, str(directory / "authorized_keys"))
    pid, started = hostlib.start_sshd(host, config)
    return replace(host, sshd_pid=pid, sshd_start=started)


def status(directory: Path) -> tuple[TestbedState | None, list[HostStatus]]:
    state = st.load(directory)
    if state is None:
        return None, []
    return state, [
        HostStatus(h.name, h.address, h.sshd_pid, hostlib.ssh_answers(h.address))
        for h in state.hosts
    ]


def down(directory: Path) -> list[str]:
    """Remove exactly what the state file records; returns what was removed."""
    require_root()
    state = st.load(directory)
    if state is None:
        return []
    removed: list[str] = []
    for host in state.hosts:
        removed += _remove_host(host)
    if hostlib.link_exists(state.bridge):
        hostlib.ip("link", "del", state.bridge)
        removed.append(f"bridge {state.bridge}")
    for path in state.files:
        if Path(path).exists():
            Path(path).unlink()
            removed.append(f"file {path}")
    hosts_dir = directory / "hosts"
    if hosts_dir.is_dir() and not any(hosts_dir.iterdir()):
        hosts_dir.rmdir()
    removed += _forget_recorded_state(directory, state.cluster)
    st.forget(directory)
    return removed


def _forget_recorded_state(directory: Path, cluster: str) -> list[str]:
    """The cluster's recorded state describes the cloud just removed: a testbed made again later
    starts at the inventory's release, and planning from the old record would skip its upgrade."""
    from lifecycle.execution.recorded_state import state_path

    path = state_path(directory, cluster)
    if not path.exists():
        return []
    path.unlink()
    return [f"file {path} (the recorded state of the removed cloud)"]


def _remove_host(host: HostRecord) -> list[str]:
    removed = []
    if host.sshd_pid is not None and hostlib.kill(host.sshd_pid, host.sshd_start):
        removed.append(f"sshd {host.sshd_pid}")
    for pid in hostlib.netns_pids(host.netns):  # the daemons the playbooks started in it
        if hostlib.kill(pid):
            removed.append(f"process {pid}")
    if hostlib.link_exists(host.veth):
        hostlib.ip("link", "del", host.veth)
        removed.append(f"link {host.veth}")
    if hostlib.netns_exists(host.netns):
        hostlib.ip("netns", "del", host.netns)
        removed.append(f"netns {host.netns}")
    if Path(host.root).exists():
        shutil.rmtree(host.root)
        removed.append(f"dir {host.root}")
    return removed


def kill_sshd(directory: Path, name: str) -> None:
    """Fault injection: kill a host's sshd and every SSH session it serves."""
    state = _loaded(directory)
    host = state.host(name)
    for pid in hostlib.sshd_pids(host.netns):
        hostlib.kill(pid)


def restore_sshd(directory: Path, name: str) -> None:
    state = _loaded(directory)
    host = state.host(name)
    st.save(directory, state.with_host(_ensure_sshd(state, host, directory)))


def set_link(directory: Path, name: str, up_: bool) -> None:
    hostlib.set_link(_loaded(directory).host(name), up_)


def _loaded(directory: Path) -> TestbedState:
    state = st.load(directory)
    if state is None:
        raise ExecutionError(f"no testbed in {directory}; run `lifecycle testbed up` first")
    return state
