"""A real standalone Ironic with BMCs emulated by sushy-tools' Redfish emulator, on 127.0.0.1.

Both run from their own virtualenv (pinned versions, cached under $LIFECYCLE_CACHE or /tmp) and
are stopped by PID. The emulator runs in fake mode (no libvirt) through a small launcher, this very
file run as a script by the venv's Python, that gives the fake systems CPUs, memory and
processors from extra keys of their definitions, makes power changes land at once, and lets a
drive's MediaType come from its definition (the stock template says "HDD" for every drive).

Only the standard library is imported at module level: the launcher runs without lifecycle.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PINS = ("ironic==39.0.0", "sushy-tools==2.2.0", "sushy==5.14.0")
API_VERSION = "1.115"
BMC_USER = "admin"


def cache_dir() -> Path:
    return Path(os.environ.get("LIFECYCLE_CACHE") or "/tmp/lifecycle-cache")


def ensure_venv(root: Path | None = None) -> Path:
    """The Ironic virtualenv, created and filled with the pinned packages on first use."""
    venv = (root or cache_dir()) / "ironic-venv"
    marker = venv / ".lifecycle-pins"
    if marker.exists() and marker.read_text() == "\n".join(PINS):
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *PINS], check=True)
    marker.write_text("\n".join(PINS))
    return venv


@dataclass(frozen=True)
class Disk:
    size_gb: int
    media: str = "HDD"  # "HDD" | "SSD"


@dataclass(frozen=True)
class Machine:
    """One emulated server: what its BMC reports."""

    name: str
    uuid: str
    macs: tuple[str, ...]
    disks: tuple[Disk, ...]
    cpus: int = 4
    memory_gib: int = 8

    def system(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "name": self.name,
            "power_state": "Off",
            "nics": [{"mac": m, "ip": "127.0.0.1"} for m in self.macs],
            "lifecycle_cpus": self.cpus,
            "lifecycle_memory_gib": self.memory_gib,
        }

    def drives(self) -> list[dict[str, Any]]:
        return [
            {
                "Id": f"disk{i}",
                "Name": f"{self.name}-disk{i}",
                "CapacityBytes": d.size_gb * 1024**3,
                "Protocol": "SATA",
                "MediaType": d.media,
            }
            for i, d in enumerate(self.disks)
        ]


# emulated server kinds: (cpus, memory GiB, NIC count, disks)
KINDS: dict[str, tuple[int, int, int, tuple[Disk, ...]]] = {
    "ssd": (8, 16, 2, (Disk(240, "SSD"), Disk(960, "SSD"))),
    "hdd": (8, 16, 2, (Disk(480, "HDD"), Disk(2000, "HDD"))),
    "mixed": (8, 16, 2, (Disk(240, "SSD"), Disk(2000, "HDD"))),
    "control": (16, 64, 3, (Disk(480, "SSD"),)),
    "ceph": (8, 32, 2, (Disk(480, "SSD"), *(Disk(4000, "HDD"),) * 4)),
    "networker": (8, 16, 6, (Disk(240, "HDD"),)),
    "small": (2, 2, 1, (Disk(40, "HDD"),)),
}


def machine(kind: str, index: int, name: str | None = None) -> Machine:
    """An emulated server of a known kind; uuid and MACs derive from (kind, index)."""
    cpus, memory, nics, disks = KINDS[kind]
    code = sorted(KINDS).index(kind) + 1
    uuid = f"5e7e7000-0000-4000-8000-{code:04x}{index:08x}"
    macs = tuple(
        f"52:54:{code:02x}:{index // 256:02x}:{index % 256:02x}:{n:02x}" for n in range(nics)
    )
    return Machine(name or f"{kind}-{index}", uuid, macs, disks, cpus, memory)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class IronicTestbed:
    """Start with start(machines, bmc_password); stop() kills what start() launched, by PID."""

    state_dir: Path
    venv: Path
    ironic_port: int = field(default_factory=free_port)
    redfish_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    bmc_latency: float = 0.0  # seconds added to every Redfish answer (real BMCs are slow)
    pids: list[int] = field(default_factory=list)

    @property
    def ironic_url(self) -> str:
        return f"http://127.0.0.1:{self.ironic_port}"

    @property
    def redfish_url(self) -> str:
        return f"http://127.0.0.1:{self.redfish_port}"

    @property
    def image_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/boot.iso"

    def logs(self) -> list[Path]:
        return sorted(self.state_dir.glob("*.log"))

    def start(self, machines: list[Machine], bmc_password: str) -> None:
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.state_dir.mkdir(parents=True)
        self._start_http()
        self._start_emulator(machines, bmc_password)
        self._start_ironic()

    def stop(self) -> None:
        """SIGTERM each process group we started (Ironic forks a worker), then SIGKILL."""
        for pid in self.pids:
            _signal_group(pid, signal.SIGTERM)
        for pid in self.pids:
            _wait_pid(pid, 30.0)
            _signal_group(pid, signal.SIGKILL)  # whatever of the group outlived its leader
        self.pids.clear()

    # --- the three processes ---------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.state_dir / f"{name}.log").open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("OS_CLOUD", None)
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.state_dir,
            env=env,
            start_new_session=True,  # its own process group: stop() reaches forked workers
        )
        self.pids.append(proc.pid)

    def _start_http(self) -> None:
        www = self.state_dir / "httpboot"  # Ironic publishes virtual media ISOs here too
        www.mkdir()
        (www / "boot.iso").write_bytes(b"\0" * 4096)  # ramdisk deploy only needs a reachable URL
        py = str(self.venv / "bin" / "python")
        port = str(self.http_port)
        self._spawn("http", [py, "-m", "http.server", "-b", "127.0.0.1", "-d", str(www), port])

    def _start_emulator(self, machines: list[Machine], password: str) -> None:
        auth = self.state_dir / "htpasswd"
        hasher = (
            "import bcrypt,sys;"
            "print(bcrypt.hashpw(sys.argv[1].encode(),bcrypt.gensalt(4)).decode())"
        )
        hashed = subprocess.run(
            [str(self.venv / "bin" / "python"), "-c", hasher, password],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        auth.write_text(f"{BMC_USER}:{hashed}\n")
        auth.chmod(0o600)
        config = self.state_dir / "emulator.conf"
        text = _emulator_config(machines, self.state_dir, self.redfish_port, auth)
        config.write_text(text + f"LIFECYCLE_BMC_LATENCY = {self.bmc_latency!r}\n")
        py = str(self.venv / "bin" / "python")
        self._spawn("emulator", [py, __file__, "emulator", "--config", str(config)])
        _wait_http(f"{self.redfish_url}/redfish/v1/", {}, 30.0, self.pids[-1])

    def _start_ironic(self) -> None:
        conf = self.state_dir / "ironic.conf"
        conf.write_text(_ironic_config(self.state_dir, self.ironic_port, self.http_port))
        bindir = self.venv / "bin"
        subprocess.run(
            [str(bindir / "ironic-dbsync"), "--config-file", str(conf), "create_schema"],
            check=True,
            capture_output=True,
            cwd=self.state_dir,
        )
        self._spawn("ironic", [str(bindir / "ironic"), "--config-file", str(conf)])
        headers = {"X-OpenStack-Ironic-API-Version": API_VERSION}
        _wait_http(f"{self.ironic_url}/v1/conductors", headers, 90.0, self.pids[-1])


@contextlib.contextmanager
def running(
    machines: list[Machine],
    bmc_password: str,
    state_dir: Path | None = None,
    bmc_latency: float = 0.0,
) -> Iterator[IronicTestbed]:
    """Ironic + emulator for the duration of a `with` block (the pytest fixtures' engine)."""
    venv = ensure_venv()
    folder = state_dir or Path(tempfile.mkdtemp(prefix="lifecycle-ironic-"))
    testbed = IronicTestbed(folder, venv, bmc_latency=bmc_latency)
    try:
        testbed.start(machines, bmc_password)
        yield testbed
    finally:
        testbed.stop()


def _emulator_config(machines: list[Machine], state: Path, port: int, auth: Path) -> str:
    storage = {
        m.uuid: [
            {
                "Id": "1",
                "Name": "Local storage",
                "StorageControllers": [{"MemberId": "0", "Name": "Emulated SATA", "SpeedGbps": 6}],
                "Drives": [d["Id"] for d in m.drives()],
            }
        ]
        for m in machines
    }
    drives = {(m.uuid, "1"): m.drives() for m in machines}
    values = {
        "SUSHY_EMULATOR_LISTEN_IP": "127.0.0.1",
        "SUSHY_EMULATOR_LISTEN_PORT": port,
        "SUSHY_EMULATOR_FAKE_DRIVER": True,
        "SUSHY_EMULATOR_FAKE_SYSTEMS": [m.system() for m in machines],
        "SUSHY_EMULATOR_STATE_DIR": str(state / "emulator-state"),
        "SUSHY_EMULATOR_AUTH_FILE": str(auth),
        "SUSHY_EMULATOR_STORAGE": storage,
        "SUSHY_EMULATOR_VOLUMES": {(m.uuid, "1"): [] for m in machines},
    }
    lines = [f"{k} = {v!r}" for k, v in values.items()]
    lines.append(f"SUSHY_EMULATOR_DRIVES = {drives!r}")
    return "\n".join(lines) + "\n"


def _ironic_config(state: Path, port: int, http_port: int) -> str:
    return f"""[DEFAULT]
auth_strategy = noauth
rpc_transport = none
host = lifecycle-ironic
enabled_hardware_types = redfish,fake-hardware
enabled_power_interfaces = redfish,fake
enabled_management_interfaces = redfish,fake
enabled_inspect_interfaces = redfish,fake,no-inspect
enabled_boot_interfaces = fake,redfish-virtual-media
enabled_deploy_interfaces = fake,direct,ramdisk
enabled_network_interfaces = noop
default_network_interface = noop
enabled_bios_interfaces = fake,no-bios
enabled_console_interfaces = fake,no-console
enabled_raid_interfaces = fake,no-raid
enabled_vendor_interfaces = fake,no-vendor
enabled_rescue_interfaces = fake,no-rescue
enabled_firmware_interfaces = fake,no-firmware
use_stderr = true
[api]
host_ip = 127.0.0.1
port = {port}
[database]
connection = sqlite:///{state}/ironic.sqlite
[dhcp]
dhcp_provider = none
[conductor]
automated_clean = false
[deploy]
http_root = {state}/httpboot
http_url = http://127.0.0.1:{http_port}
[oslo_concurrency]
lock_path = {state}/locks
"""


def _wait_http(url: str, headers: dict[str, str], timeout: float, pid: int) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise RuntimeError(f"process {pid} exited before {url} answered")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=2):
                return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f}s ({last})")


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _wait_pid(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


# --- the emulator launcher (runs in the Ironic venv, not in lifecycle's) -------------------------

_DRIVE_TEMPLATE_FIX = (
    '"MediaType": "HDD"',
    "\"MediaType\": {{ drive.get('MediaType', 'HDD')|tojson }}",
)


def _run_emulator() -> None:  # pragma: no cover - runs in a child process
    import jinja2
    from sushy_tools.emulator import main as emulator
    from sushy_tools.emulator.resources.systems import fakedriver

    class _NoDelay:
        @staticmethod
        def randint(low: int, high: int) -> int:
            return 0

    fakedriver.random = _NoDelay
    cls = fakedriver.FakeDriver
    cls.get_total_memory = lambda self, ident: self._get(ident).get("lifecycle_memory_gib")
    cls.get_total_cpus = lambda self, ident: self._get(ident).get("lifecycle_cpus")
    cls.get_processors = _processors

    stock = Path(emulator.__file__).parent / "templates" / "drive.json"
    override = Path(tempfile.mkdtemp(prefix="sushy-templates-"))
    (override / "drive.json").write_text(stock.read_text().replace(*_DRIVE_TEMPLATE_FIX))
    emulator.app.jinja_loader = jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(str(override)), emulator.app.jinja_loader]
    )
    emulator.app.before_request(_slow_bmc)
    sys.exit(emulator.main())


def _slow_bmc() -> None:  # pragma: no cover - runs in the emulator
    from sushy_tools.emulator import main as emulator

    delay = float(emulator.app.config.get("LIFECYCLE_BMC_LATENCY") or 0.0)
    if delay:
        time.sleep(delay)


def _processors(self: Any, identity: str) -> list[dict[str, Any]]:  # pragma: no cover
    threads = int(self._get(identity).get("lifecycle_cpus") or 1)
    return [
        {
            "id": "CPU0",
            "Id": "CPU0",
            "socket": "CPU 0",
            "vendor": "GenuineIntel",
            "model": "Emulated Xeon",
            "cores": max(1, threads // 2),
            "threads": threads,
        }
    ]


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "emulator":
    del sys.argv[1]
    _run_emulator()
