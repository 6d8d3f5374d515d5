"""The probe's SQL against a throwaway local MariaDB (skipped where none can be started): the
counter row, the acknowledged values, and a write acknowledged then undone found as lost."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecycle.testbed.user_probe import GaleraCounter, UserProbe

PASSWORD = "fedcba9876543210fedcba9876543210"


class Server:
    def __init__(self, root: Path, port: int, process: subprocess.Popen) -> None:
        self.root, self.port, self.process = root, port, process

    def sql(self, statement: str) -> str:
        done = subprocess.run(
            ["mariadb", "--no-defaults", "-S", str(self.root / "sock"), "-u", "root", "-N", "-e",
             statement], capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return done.stdout.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory) -> Iterator[Server]:
    if not (shutil.which("mariadbd") and shutil.which("mariadb-install-db")):
        pytest.skip("no MariaDB server on this machine")
    root = tmp_path_factory.mktemp("mariadb")
    install = subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={root}/data", "--user=root",
         "--auth-root-authentication-method=socket", "--skip-test-db"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if install.returncode != 0:
        pytest.skip(f"mariadb-install-db failed: {install.stderr[-300:]}")
    port = _free_port()
    process = subprocess.Popen(
        ["mariadbd", "--no-defaults", f"--datadir={root}/data", f"--socket={root}/sock",
         "--bind-address=127.0.0.1", f"--port={port}", "--user=root", "--skip-log-bin",
         "--innodb-buffer-pool-size=16M", f"--pid-file={root}/pid"],
        stdout=subprocess.DEVNULL, stderr=(root / "err.log").open("w"),
    )  # fmt: skip
    server = Server(root, port, process)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                server.sql("SELECT 1")
                break
            except subprocess.CalledProcessError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.skip("mariadbd did not start: " + (root / "err.log").read_text()[-300:])
                time.sleep(0.2)
        server.sql(
            f"CREATE DATABASE probe; CREATE USER probe@'%' IDENTIFIED BY '{PASSWORD}';"
            " GRANT ALL ON probe.* TO probe@'%'"
        )
        yield server
    finally:
        process.terminate()
        process.wait(timeout=60)


class NoKeystone:
    """Keystone is not under test here: every identity request succeeds."""

    def issue(self) -> str:
        return "token"

    def validate(self, token: str) -> None:
        pass

    def create_project(self, token: str, name: str) -> str:
        return name

    def delete_project(self, token: str, project_id: str) -> None:
        pass

    def names(self, token: str, kind: str) -> frozenset[str]:
        return frozenset({"admin"})


def test_the_counter_row_is_made_once_and_each_commit_acknowledges_its_value(mariadb) -> None:
    counter = GaleraCounter("127.0.0.1", mariadb.port, PASSWORD, "run-a")
    counter.setup()
    counter.setup()  # idempotent: the table and the row already exist
    assert [counter.increment() for _ in range(3)] == [1, 2, 3]
    other = GaleraCounter("127.0.0.1", mariadb.port, PASSWORD, "run-b")
    other.setup()
    assert other.increment() == 1  # each probe its own row
    assert counter.value() == 3


def test_a_write_acknowledged_then_undone_is_reported_lost(mariadb) -> None:
    probe = UserProbe(NoKeystone(), GaleraCounter("127.0.0.1", mariadb.port, PASSWORD, "run-c"),
                      cluster="demo", interval=0.005, secrets=(PASSWORD,))  # fmt: skip
    probe.start()
    for _ in range(3):
        assert probe.round()
    # what a failover to a member without the last commit does: the acknowledged 3 is gone
    mariadb.sql("UPDATE probe.probe_counter SET value = value - 1 WHERE name = 'run-c'")
    summary = probe.stop()
    # (the probe's thread may have made more rounds, before or after the undo)
    assert summary.acknowledged_writes == summary.rounds >= 3
    assert summary.final_counter == summary.rounds - 1
    assert len(summary.lost_writes) == 1  # above the final row, or acknowledged twice
    assert summary.failures == ()


def test_a_wrong_password_is_a_failure_that_does_not_show_it(mariadb) -> None:
    wrong = "0000000000000000ffffffffffffffff"
    probe = UserProbe(NoKeystone(), GaleraCounter("127.0.0.1", mariadb.port, wrong, "run-d"),
                      secrets=(wrong,))  # fmt: skip
    probe.start()
    probe.round()
    summary = probe.stop()
    assert {f.operation for f in summary.failures} == {"setup", "db-increment", "final-read"}
    assert all("Access denied" in f.error and wrong not in f.error for f in summary.failures)


def test_the_probe_command_runs_until_sigterm_and_writes_its_summary(mariadb, tmp_path) -> None:
    """`lifecycle testbed probe` as an operator runs it: secrets from the first controller's
    host directory, a fake Keystone and this MariaDB behind the 'HAProxy' ports, SIGTERM."""
    import json
    import os
    import signal
    import sys

    from lifecycle.testbed import state as testbed_state
    from tests.unit.test_user_probe import PASSWORD as ADMIN
    from tests.unit.test_user_probe import FakeKeystone

    keystone = FakeKeystone()
    inventory = tmp_path / "inv"
    inventory.mkdir()
    (inventory / "cluster.yaml").write_text(
        "cluster: local\nrelease: '2024.1'\nroles:\n  Controller:\n"
        "    services: [haproxy, galera, keystone]\n"
        "nodes:\n  - {name: ctl-0, role: Controller, address: 127.0.0.1}\n"
    )
    root = tmp_path / "hosts" / "ctl-0"
    (root / "secrets").mkdir(parents=True)
    (root / "secrets" / "keystone-admin").write_text(ADMIN + "\n")
    (root / "secrets" / "db-probe").write_text(PASSWORD + "\n")
    host = testbed_state.HostRecord("ctl-0", "127.0.0.1", "ns", "v", "p", str(root))
    state = tmp_path / "state"
    testbed_state.save(
        state, testbed_state.TestbedState("local", "t", "br", "1/24", "k", "hk", "kh", (host,))
    )
    ks_port = keystone.server.server_address[1]
    code = (
        "import sys; from lifecycle.testbed import user_probe as p;"
        f" p.KEYSTONE_PORT, p.DB_PORT = {ks_port}, {mariadb.port};"
        " p.prepare_databases = lambda *args: None;"  # this MariaDB has the probe user already
        " from lifecycle.cli.main import main; sys.exit(main(sys.argv[1:]))"
    )
    out = tmp_path / "summary.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    probe = subprocess.Popen(
        [sys.executable, "-c", code, "testbed", "probe", "-i", str(inventory),
         "--state-dir", str(state), "--out", str(out), "--interval", "0.05"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while keystone.calls.count("DELETE") < 3 and probe.poll() is None:
            assert time.monotonic() < deadline, "the probe made no round"
            time.sleep(0.05)
        probe.send_signal(signal.SIGTERM)
        stdout, stderr = probe.communicate(timeout=60)
    finally:
        if probe.poll() is None:
            probe.kill()
        keystone.server.shutdown()
    assert probe.returncode == 0, stderr
    summary = json.loads(out.read_text())
    assert summary["finished"] and summary["rounds"] >= 3 and summary["failures"] == []
    assert summary["acknowledged_writes"] == summary["rounds"] == summary["final_counter"]
    assert summary["endpoint"] == "ctl-0 (127.0.0.1)"
    records = list((state / "probe").glob("local-*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text()) == summary
    assert "0 failed" in stdout and PASSWORD not in stdout + stderr + out.read_text()
