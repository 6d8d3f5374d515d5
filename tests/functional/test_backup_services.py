"""The backup and recovery playbooks against real services run in temporary directories of this
machine (no testbed): HAProxy's admin socket (fence, unfence), a RabbitMQ node (definitions
exported, node reset, definitions imported) and, first, a one-member Galera cluster (Debian's
mariadb-server, galera-4 and mariadb-backup) run in a temporary directory of this machine, through
ansible-playbook on localhost: a backup with --galera-info, rows written after it, a kill -9, the
position `--wsrep-recover` reads, the guard refusing a stale choice, a bootstrap from the
recovered member keeping every row, then the data destroyed and the backup restored (prepare,
copy-back) keeping every row of the backup. The testbed's roles are not used (their stop task is
a no-op stand-in here): the playbooks' own commands are what is tried. Needs root."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lifecycle.execution.backups import verify_backup, write_manifest

pytestmark = [pytest.mark.realcloud, pytest.mark.slow]

PLAYBOOKS = Path(__file__).resolve().parents[2] / "lifecycle" / "testbed" / "playbooks"
PROVIDER = Path("/usr/lib/galera/libgalera_smm.so")
NEEDED = ("mariadbd", "mariadb", "mariabackup", "mariadb-install-db")

if os.geteuid() != 0 or not PROVIDER.exists() or not all(shutil.which(n) for n in NEEDED):
    pytest.skip("needs root, galera-4, mariadb-server and mariadb-backup", allow_module_level=True)


class Member:
    """One Galera member under `root`/services/galera (the contract's layout)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "services" / "galera"
        for sub in ("etc", "data", "run", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.cnf = self.dir / "etc" / "my.cnf"
        self.socket = self.dir / "run" / "mysqld.sock"
        self.cnf.write_text(
            "[mysqld]\n"
            f"datadir={self.dir}/data\nsocket={self.socket}\npid-file={self.dir}/run/mysqld.pid\n"
            f"log-error={self.dir}/log/mysqld.log\nskip-networking\nuser=root\n"
            "binlog_format=ROW\ninnodb_autoinc_lock_mode=2\ninnodb_buffer_pool_size=32M\n"
            f"wsrep_on=ON\nwsrep_provider={PROVIDER}\nwsrep_cluster_name=backuptest\n"
            "wsrep_cluster_address=gcomm://\nwsrep_node_name=localhost\n"
            'wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:14567;gcache.size=16M"\n'
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def install(self) -> None:
        subprocess.run(
            ["mariadb-install-db", f"--defaults-file={self.cnf}", "--user=root",
             "--auth-root-authentication-method=socket"],
            check=True, capture_output=True,
        )  # fmt: skip

    def bootstrap(self) -> None:
        self.proc = subprocess.Popen(
            ["mariadbd", f"--defaults-file={self.cnf}", "--wsrep-new-cluster"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.sql("SELECT 1", check=False) is not None:
                return
            time.sleep(0.5)
        raise AssertionError((self.dir / "log" / "mysqld.log").read_text()[-3000:])

    def sql(self, query: str, check: bool = True) -> str | None:
        done = subprocess.run(
            ["mariadb", f"--socket={self.socket}", "--user=root", "--batch",
             "--skip-column-names", "-e", query],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            assert not check, done.stderr
            return None
        return done.stdout.strip()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)
        self.proc = None


def playbook(name: str, tmp: Path, host: Member, **extra: object) -> tuple[int, str]:
    roles = tmp / "roles" / "galera" / "tasks"
    roles.mkdir(parents=True, exist_ok=True)
    (roles / "stop.yml").write_text("- ansible.builtin.debug: {msg: stopped by the test}\n")
    extravars = {"host_root": str(host.root), "ansible_python_interpreter": sys.executable}
    extravars.update(extra)
    bin_dir = Path(sys.executable).parent
    done = subprocess.run(
        [str(bin_dir / "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", json.dumps(extravars), str(PLAYBOOKS / f"{name}.yml")],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, ANSIBLE_ROLES_PATH=str(tmp / "roles"), ANSIBLE_NOCOLOR="1"),
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def position(output: str) -> dict[str, object]:
    line = next(x for x in output.splitlines() if '"msg": "{\\"node\\"' in x)
    return json.loads(json.loads("{" + line.strip().rstrip(",") + "}")["msg"])


@pytest.fixture
def member(tmp_path: Path):
    one = Member(tmp_path / "host")
    one.install()
    one.bootstrap()
    yield one
    one.stop(signal.SIGKILL)


def test_backup_crash_recover_and_restore_on_a_real_galera(member: Member, tmp_path: Path) -> None:
    member.sql("CREATE DATABASE probe; CREATE TABLE probe.t (id INT PRIMARY KEY AUTO_INCREMENT)")
    member.sql("INSERT INTO probe.t VALUES (),(),()")
    dest = tmp_path / "backups" / "b1"
    code, out = playbook("backup-galera", tmp_path, member, dest=str(dest), backup_id="b1")
    assert code == 0, out[-3000:]
    assert member.sql("SHOW VARIABLES LIKE 'wsrep_desync'") == "wsrep_desync\tOFF"
    manifest = write_manifest(dest, "b1", "backuptest", "2026-11-30T00:00:00Z")
    assert manifest.galera is not None and manifest.galera.member == "localhost"
    at_backup = manifest.galera.seqno
    assert verify_backup(dest) == []

    member.sql("INSERT INTO probe.t VALUES (),()")  # written after the backup
    last = int(str(member.sql("SHOW STATUS LIKE 'wsrep_last_committed'")).split()[-1])
    member.stop(signal.SIGKILL)  # ungracefully: grastate.dat keeps seqno -1
    code, out = playbook("galera-positions", tmp_path, member)
    assert code == 0, out[-3000:]
    seen = position(out)
    assert seen["seqno"] == -1 and seen["recovered"] == last and seen["has_data"] is True

    code, out = playbook("galera-recover", tmp_path, member, bootstrap="localhost", seqno=last - 1)
    assert code != 0 and "ahead of" in out  # a stale choice is refused
    code, out = playbook("galera-recover", tmp_path, member, bootstrap="localhost", seqno=last)
    assert code == 0, out[-3000:]
    grastate = (member.dir / "data" / "grastate.dat").read_text()
    assert f"seqno:   {last}" in grastate and "safe_to_bootstrap: 1" in grastate
    member.bootstrap()
    assert member.sql("SELECT COUNT(*) FROM probe.t") == "5"  # nothing committed was lost

    member.stop()
    shutil.rmtree(member.dir / "data")  # the disaster: the data directory is gone
    (member.dir / "data").mkdir()
    for _ in range(2):  # run twice, as a resume after a crash mid-restore would
        code, out = playbook(
            "galera-restore",
            tmp_path,
            member,
            backup_dir=str(dest),
            backup_id="b1",
            member="localhost",
        )
        assert code == 0, out[-3000:]
    assert (member.dir.parent / "galera" / "data.before-b1").is_dir()  # moved aside, not deleted
    assert f"seqno:   {at_backup}" in (member.dir / "data" / "grastate.dat").read_text()
    member.bootstrap()
    assert member.sql("SELECT COUNT(*) FROM probe.t") == "3"  # every row of the backup
    code, out = playbook(
        "recover-datacheck", tmp_path, member, seqno=at_backup, real_services=["galera"]
    )
    assert code == 0, out[-3000:]


@pytest.mark.skipif(not shutil.which("haproxy"), reason="needs haproxy")
def test_haproxy_fence_puts_every_galera_server_in_maint_and_back(tmp_path: Path) -> None:
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="hx", dir="/tmp"))  # HAProxy: socket paths <= 97
    run = short / "host" / "services" / "haproxy" / "run"
    run.mkdir(parents=True)
    socket_path = run / "admin.sock"
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        f"global\n  stats socket {socket_path} mode 600 level admin\n"
        "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n"
        "frontend fe\n  bind 127.0.0.1:23306\n  default_backend galera\n"
        "backend galera\n  server ctl-0 127.0.0.1:23307\n  server ctl-1 127.0.0.1:23308 backup\n"
    )
    pidfile = tmp_path / "haproxy.pid"
    subprocess.run(["haproxy", "-f", str(cfg), "-D", "-p", str(pidfile)], check=True)
    host = Member.__new__(Member)  # only its root is used by playbook()
    host.root = short / "host"
    servers = ["ctl-0", "ctl-1"]

    def admin_states() -> list[str]:
        import socket as sockets

        with sockets.socket(sockets.AF_UNIX) as s:
            s.connect(str(socket_path))
            s.sendall(b"show servers state galera\n")
            text = b""
            while chunk := s.recv(65536):
                text += chunk
        rows = [r.split() for r in text.decode().splitlines()[2:] if r.strip()]
        return [r[6] for r in rows]  # srv_admin_state: 1 = maintenance forced

    try:
        code, out = playbook("haproxy-fence", tmp_path, host, backend="galera",
                             servers=servers, state="maint")  # fmt: skip
        assert code == 0, out[-2000:]
        assert admin_states() == ["1", "1"]
        code, out = playbook("haproxy-fence", tmp_path, host, backend="galera",
                             servers=servers, state="ready")  # fmt: skip
        assert code == 0, out[-2000:]
        assert admin_states() == ["0", "0"]
    finally:
        os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
        shutil.rmtree(short, ignore_errors=True)


RABBIT_TOOLS = Path("/usr/lib/rabbitmq/bin")


@pytest.mark.skipif(not (RABBIT_TOOLS / "rabbitmq-server").exists(), reason="needs rabbitmq")
def test_rabbitmq_definitions_survive_a_reset(tmp_path: Path) -> None:
    """A real RabbitMQ node (its own epmd and ports, a `bin/rabbit` wrapper as the role has):
    definitions exported, the node's database wiped by rabbitmq-reset, the node started empty,
    the definitions imported: the user authenticates with its old password again."""
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="rq", dir="/tmp"))  # Erlang socket paths stay short
    rabbit = short / "host" / "services" / "rabbitmq"
    for sub in ("bin", "etc", "data", "log", "home", "run"):
        (rabbit / sub).mkdir(parents=True)
    (rabbit / "etc" / "env.sh").write_text(
        f"export HOME={rabbit}/home RABBITMQ_NODENAME=rabbit_bkt@localhost\n"
        "export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=15673\n"
        "export RABBITMQ_DIST_PORT=15674 ERL_EPMD_PORT=14369 ERL_EPMD_ADDRESS=127.0.0.1\n"
        f"export RABBITMQ_MNESIA_BASE={rabbit}/data RABBITMQ_LOG_BASE={rabbit}/log\n"
        f"export RABBITMQ_PID_FILE={rabbit}/run/rabbitmq.pid\n"
        f"export RABBITMQ_ENABLED_PLUGINS_FILE={rabbit}/etc/enabled_plugins\n"
        f"export RABBITMQ_CONF_ENV_FILE={rabbit}/etc/rabbitmq-env.conf\n"
    )
    (rabbit / "etc" / "enabled_plugins").write_text("[].")
    (rabbit / "etc" / "rabbitmq-env.conf").write_text("# none\n")
    cookie = rabbit / "home" / ".erlang.cookie"
    cookie.write_text("BACKUPTESTCOOKIE")
    cookie.chmod(0o400)
    wrapper = rabbit / "bin" / "rabbit"
    wrapper.write_text(
        f'#!/bin/sh\n. {rabbit}/etc/env.sh\ntool=$1; shift\nexec {RABBIT_TOOLS}/$tool "$@"\n'
    )
    wrapper.chmod(0o755)
    roles = tmp_path / "roles" / "rabbitmq" / "tasks"
    roles.mkdir(parents=True)
    (roles / "stop.yml").write_text("- ansible.builtin.debug: {msg: stopped by the test}\n")
    host = Member.__new__(Member)
    host.root = short / "host"

    def ctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(wrapper), "rabbitmqctl", *args], capture_output=True, text=True, check=check
        )

    def start() -> None:
        subprocess.run([str(wrapper), "rabbitmq-server", "-detached"], check=True)
        deadline = time.monotonic() + 90
        while ctl("await_startup", check=False).returncode != 0:  # 69 until it registers
            assert time.monotonic() < deadline, "rabbitmq did not start"
            time.sleep(1)

    try:
        start()
        ctl("add_user", "openstack", "pw-backup-test")
        dest = tmp_path / "backups" / "b1"
        code, out = playbook("backup-rabbitmq", tmp_path, host, dest=str(dest), backup_id="b1")
        assert code == 0, out[-2000:]
        assert "pw-backup-test" not in out
        ctl("stop")
        code, out = playbook("rabbitmq-reset", tmp_path, host, phase="reset")
        assert code == 0, out[-2000:]
        start()
        assert "openstack" not in ctl("list_users").stdout  # the node came back empty
        code, out = playbook(
            "rabbitmq-reset", tmp_path, host, phase="definitions", backup_dir=str(dest)
        )
        assert code == 0, out[-2000:]
        assert ctl("authenticate_user", "openstack", "pw-backup-test").returncode == 0
    finally:
        ctl("stop", check=False)
        subprocess.run([str(wrapper), "epmd", "-kill"], capture_output=True, check=False)
        shutil.rmtree(short, ignore_errors=True)
