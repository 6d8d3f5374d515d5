"""A real Mistral service on 127.0.0.1 for the `mistral` test lane and the benchmark.

Mistral 23 (pinned, constraints.txt) and this package go into their own virtual environment under
$LIFECYCLE_CACHE (or /tmp/lifecycle-cache), reused while the pins and the package's setup.cfg stay
the same. RabbitMQ is Debian's, run as root under a temporary directory with its own epmd (started
by us, so it is stopped with us); Mistral runs api, engine, executor and notifier in one
`mistral-server` (not `--server all`, whose event engine spins a CPU). Every process is started in
its own session and stopped by signalling its process group: the Mistral master ignores SIGTERM.
Facts behind each choice: /work/shared/notes/mistral.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import ExecutionError
from lifecycle.mistral.client import MistralClient

CONSTRAINTS = Path(__file__).with_name("constraints.txt")
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


def cache_dir() -> Path:
    return Path(os.environ.get("LIFECYCLE_CACHE") or "/tmp/lifecycle-cache")


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _venv_key(repo: Path) -> str:
    body = CONSTRAINTS.read_bytes() + (repo / "setup.cfg").read_bytes()
    return hashlib.sha256(body).hexdigest()


def ensure_venv(repo: Path | None = None) -> Path:
    """Mistral's venv with this package installed (editable), created once per pin set."""
    repo = repo or repo_root()
    venv = cache_dir() / "mistral-venv"
    stamp = venv / ".lifecycle-key"
    key = _venv_key(repo)
    if stamp.exists() and stamp.read_text() == key:
        return venv
    cache_dir().mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c", str(CONSTRAINTS)]
    subprocess.run([*pip, "mistral", "python-mistralclient"], check=True)
    subprocess.run([*pip, "-e", str(repo)], check=True)
    stamp.write_text(key)
    return venv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, timeout: float, what: str, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise ExecutionError(
                f"{what} exited early (status {proc.popen.returncode}); see {proc.log}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise ExecutionError(f"{what} not listening on 127.0.0.1:{port} after {timeout:.0f} s")


@dataclass
class Proc:
    """A child in its own session; stop() signals its whole process group, then reaps it."""

    popen: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def spawn(cls, argv: list[str], log: Path, env: dict[str, str], cwd: Path) -> Proc:
        with log.open("ab") as out:
            popen = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
            )
        return cls(popen, log)

    def stop(self, grace: float = 10.0) -> None:
        pgid = self.popen.pid  # its own session: the group id is its pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)


def start_rabbitmq(work: Path) -> tuple[list[Proc], str]:
    """epmd and a RabbitMQ node on free 127.0.0.1 ports; returns the processes and the URL."""
    base = work / "rabbitmq"
    base.mkdir(parents=True)
    amqp, dist, epmd_port = free_port(), free_port(), free_port()
    (base / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{amqp}\nloopback_users = none\n"
    )
    (base / "enabled_plugins").write_text("[].\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(base),
        "LANG": "C.UTF-8",
        "ERL_EPMD_PORT": str(epmd_port),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODENAME": "rabbit@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_DIST_PORT": str(dist),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    }
    epmd = Proc.spawn(["epmd", "-port", str(epmd_port)], base / "epmd.log", env, base)
    wait_port(epmd_port, 10, "epmd", epmd)
    rabbit = Proc.spawn([str(RABBIT_BIN / "rabbitmq-server")], base / "server.log", env, base)
    try:
        wait_port(amqp, 60, "rabbitmq-server", rabbit)
    except ExecutionError:
        rabbit.stop()
        epmd.stop()
        raise
    return [epmd, rabbit], f"rabbit://guest:guest@127.0.0.1:{amqp}/"


def write_config(work: Path, api_port: int, transport_url: str) -> Path:
    config = work / "mistral.conf"
    config.write_text(
        textwrap.dedent(
            f"""\
            [DEFAULT]
            transport_url = {transport_url}
            log_file = {work / "mistral.log"}
            [api]
            host = 127.0.0.1
            port = {api_port}
            validation_mode = enabled
            [pecan]
            auth_enable = false
            [database]
            connection = sqlite:///{work / "mistral.sqlite"}
            [executor]
            type = remote
            [notifier]
            type = local
            [scheduler]
            fixed_delay = 0.1
            random_delay = 0
            [oslo_policy]
            enforce_scope = false
            """
        )
    )
    return config


_INIT_DB = """
import sys
from mistral import config
from mistral.db.v2 import api
config.parse_args(["--config-file", sys.argv[1]])
api.setup_db()
"""


def init_db(venv: Path, config: Path) -> None:
    """Tables as Mistral's own tests make them (alembic cannot ALTER on SQLite), then stamp and
    populate (the standard actions)."""
    python, manage = str(venv / "bin" / "python"), str(venv / "bin" / "mistral-db-manage")
    subprocess.run([python, "-c", _INIT_DB, str(config)], check=True, capture_output=True)
    for command in ("stamp", "head"), ("populate",):
        subprocess.run(
            [manage, "--config-file", str(config), *command], check=True, capture_output=True
        )


@dataclass
class MistralService:
    """A running Mistral: its API URL, a client, its working directory and processes."""

    url: str
    work: Path
    procs: list[Proc]

    @property
    def client(self) -> MistralClient:
        return MistralClient(self.url)

    @property
    def log(self) -> Path:
        return self.work / "mistral.log"

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(grace=3.0)


def start_service(venv: Path, work: Path, env: dict[str, str] | None = None) -> MistralService:
    """RabbitMQ and Mistral, ready to accept workbooks. `env` is added to the executor's."""
    procs, transport = start_rabbitmq(work)
    service = MistralService("", work, procs)
    try:
        api_port = free_port()
        config = write_config(work, api_port, transport)
        init_db(venv, config)
        child_env = {**os.environ, **(env or {}), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
        child_env.pop("VIRTUAL_ENV", None)
        argv = [
            str(venv / "bin" / "mistral-server"),
            "--config-file",
            str(config),
            "--server",
            "api,engine,executor,notifier",
        ]
        procs.append(Proc.spawn(argv, work / "server.out", child_env, work))
        wait_port(api_port, 90, "mistral-server", procs[-1])
        service.url = f"http://127.0.0.1:{api_port}/v2"
        _wait_api(service, procs[-1])
    except BaseException:
        service.stop()
        raise
    return service


def _wait_api(service: MistralService, proc: Proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not service.client.ping():
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            raise ExecutionError(f"Mistral API not answering at {service.url}; see {service.log}")
        time.sleep(0.3)


@contextlib.contextmanager
def running_mistral(env: dict[str, str] | None = None) -> Iterator[MistralService]:
    """The whole lane's service: venv (cached), broker, Mistral; stopped on exit."""
    venv = ensure_venv()
    work = Path(tempfile.mkdtemp(prefix="lifecycle-mistral-"))
    service = start_service(venv, work, env)
    try:
        yield service
    finally:
        service.stop()
