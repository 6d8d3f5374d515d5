"""What a testbed made, recorded as it is made, so that `down` removes exactly that, even after a
crash halfway through `up`."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

DEFAULT_STATE_DIR = "/run/lifecycle-testbed"
STATE_FILE = "state.json"


def state_dir(explicit: str | Path | None = None) -> Path:
    """The testbed's directory: the argument, else $LIFECYCLE_STATE_DIR, else the default."""
    return Path(explicit or os.environ.get("LIFECYCLE_STATE_DIR") or DEFAULT_STATE_DIR)


@dataclass(frozen=True)
class HostRecord:
    name: str
    address: str
    netns: str
    veth: str  # host side, in the root namespace, enslaved to the bridge
    peer: str  # inside the namespace
    root: str  # the host's own directory: sshd config, service daemons, their data
    sshd_pid: int | None = None
    sshd_start: str | None = None  # /proc start time, so a reused PID is never killed


@dataclass(frozen=True)
class TestbedState:
    cluster: str
    token: str
    bridge: str
    bridge_address: str
    key: str
    host_key: str
    known_hosts: str
    hosts: tuple[HostRecord, ...] = ()
    files: tuple[str, ...] = field(default=())  # every file `up` created outside host roots

    @property
    def prefix_len(self) -> int:
        """The hosts' network prefix length (the bridge's)."""
        return int(self.bridge_address.split("/")[1])

    def host(self, name: str) -> HostRecord:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def with_host(self, record: HostRecord) -> TestbedState:
        names = [h.name for h in self.hosts]
        if record.name in names:
            hosts = tuple(record if h.name == record.name else h for h in self.hosts)
        else:
            hosts = (*self.hosts, record)
        return replace(self, hosts=hosts)


def save(directory: Path, state: TestbedState) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=1))
    os.replace(tmp, directory / STATE_FILE)


def load(directory: Path) -> TestbedState | None:
    path = directory / STATE_FILE
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    hosts = tuple(HostRecord(**h) for h in raw.pop("hosts"))
    return TestbedState(**{**raw, "hosts": hosts, "files": tuple(raw.get("files", ()))})


def forget(directory: Path) -> None:
    (directory / STATE_FILE).unlink(missing_ok=True)
