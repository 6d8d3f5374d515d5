"""The real infrastructure services on a 3-controller testbed: Galera, RabbitMQ, HAProxy, memcached.

Deployed through the dispatcher playbooks as the deploy plan runs them (deploy-secrets, haproxy
start, galera bootstrap then joins, rabbitmq the same, memcached, db-create), checked on the
services themselves (wsrep status over each member's socket, `rabbitmqctl cluster_status`), then
every Galera member is upgraded in turn through upgrade-service.yml while a client writes through
HAProxy: no write may fail and every acknowledged write must be there after. Needs root,
openssh-server and the Debian packages (scripts/lib.sh ensure_real_service_packages).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from lifecycle.drivers.ansible import AnsibleDriver
from lifecycle.formats.inventory import load_inventory
from lifecycle.model.cluster import Cluster
from lifecycle.testbed import manager
from lifecycle.testbed import state as st
from lifecycle.testbed.driver_site import ansible_driver

pytestmark = [pytest.mark.realcloud, pytest.mark.timeout(1200)]

NODES = {"ctl-0": "10.72.0.11", "ctl-1": "10.72.0.12", "ctl-2": "10.72.0.13"}
SERVICES = ["haproxy", "galera", "rabbitmq", "memcached"]
RELEASE, NEXT = "2024.1", "2025.1"

if os.geteuid() != 0 or not Path("/usr/sbin/sshd").exists():
    pytest.skip("the testbed needs root and openssh-server", allow_module_level=True)
if not all(
    Path(p).exists() for p in ("/usr/sbin/mariadbd", "/usr/sbin/haproxy", "/usr/sbin/rabbitmqctl")
):
    pytest.skip("needs the real services' Debian packages", allow_module_level=True)
pymysql = pytest.importorskip("pymysql")


@dataclass
class Bed:
    cluster: Cluster
    state: Path
    driver: AnsibleDriver = field(init=False)

    def __post_init__(self) -> None:
        self.driver = ansible_driver(self.state)

    def play(self, name: str, nodes: list[str], **params: Any) -> None:
        result = self.driver.run_playbook(
            name, self.cluster, nodes=tuple(nodes), params={"target_hosts": "all", **params}
        )
        assert result.ok, f"{name} {params}: {result.error}"

    def root(self, node: str) -> Path:
        return self.state / "hosts" / node

    def secret(self, name: str) -> str:
        return (self.root("ctl-0") / "secrets" / name).read_text().strip()

    def wsrep(self, node: str) -> dict[str, str]:
        sock = self.root(node) / "services/galera/run/mysqld.sock"
        out = subprocess.run(
            [
                "mariadb",
                "--no-defaults",
                "-S",
                str(sock),
                "-uroot",
                "-N",
                "-B",
                "-e",
                "SHOW GLOBAL STATUS LIKE 'wsrep%'",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)

    def rabbit_status(self, node: str) -> dict[str, Any]:
        rabbit = self.root(node) / "services/rabbitmq/bin/rabbit"
        out = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                self.netns(node),
                str(rabbit),
                "rabbitmqctl",
                "cluster_status",
                "--formatter",
                "json",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        status: dict[str, Any] = json.loads(out)
        return status

    def netns(self, node: str) -> str:
        state = st.load(self.state)
        assert state is not None
        return next(h.netns for h in state.hosts if h.name == node)


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    root = tmp_path_factory.mktemp("realinfra")
    inventory = root / "inventory"
    inventory.mkdir()
    cluster = {
        "cluster": "realinfra",
        "driver": "testbed",
        "release": RELEASE,
        "roles": {"Controller": {"services": SERVICES}},
        "nodes": [
            {"name": n, "role": "Controller", "failure_domain": f"rack{i}", "address": a}
            for i, (n, a) in enumerate(NODES.items())
        ],
        "policies": {"max_unavailable": {"default": 1}},
    }
    (inventory / "cluster.yaml").write_text(yaml.safe_dump(cluster, sort_keys=False))
    (inventory / "testbed.yaml").write_text(yaml.safe_dump({"real_services": SERVICES}))
    state = root / "state"
    loaded = load_inventory(inventory)
    manager.up(loaded, state)
    try:
        yield Bed(loaded, state)
    finally:
        manager.down(state)
        shutil.rmtree(root, ignore_errors=True)


def test_deploy_from_nothing(bed: Bed) -> None:
    ctl = list(NODES)
    bed.play("deploy-secrets", ctl, bootstrap="ctl-0")
    bed.play("deploy-service", ctl, service="haproxy", phase="start", release=RELEASE)
    for service in ("galera", "rabbitmq"):
        bed.play("deploy-service", ctl[:1], service=service, phase="bootstrap", release=RELEASE)
        for node in ctl[1:]:
            bed.play("deploy-service", [node], service=service, phase="join", release=RELEASE)
            bed.play("health", [node], services=[service], release=RELEASE)
    bed.play("deploy-service", ctl, service="memcached", phase="start", release=RELEASE)
    for project in ("probe", "monitor"):
        bed.play("db-create", ctl[:1], project=project)
    bed.play("health", ctl, release=RELEASE)

    # idempotent: deploying again changes nothing that runs
    before = bed.wsrep("ctl-1")["wsrep_cluster_state_uuid"]
    bed.play("deploy-service", ["ctl-1"], service="galera", phase="join", release=RELEASE)
    assert bed.wsrep("ctl-1")["wsrep_cluster_state_uuid"] == before

    for node in ctl:
        wsrep = bed.wsrep(node)
        assert wsrep["wsrep_cluster_size"] == "3"
        assert wsrep["wsrep_cluster_status"] == "Primary"
        assert wsrep["wsrep_local_state_comment"] == "Synced"
    status = bed.rabbit_status("ctl-2")
    assert sorted(status["running_nodes"]) == sorted(f"rabbit@{a}" for a in NODES.values())
    for node in ctl:
        assert (bed.root(node) / "secrets/db-probe").read_text() == bed.secret("db-probe")
        assert (bed.root(node) / "secrets").stat().st_mode & 0o777 == 0o700


def test_monitor_user_reads_status_only(bed: Bed) -> None:
    conn = pymysql.connect(
        host=NODES["ctl-1"],
        port=13306,
        user="monitor",
        password=bed.secret("db-monitor"),
        connect_timeout=5,
    )
    with conn, conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'wsrep_cluster_size'")
        assert cur.fetchone() == ("wsrep_cluster_size", "3")
        with pytest.raises(pymysql.err.OperationalError):
            cur.execute("CREATE DATABASE nope")


class Writer(threading.Thread):
    """One row per fresh connection through HAProxy's galera frontend; a failure is not retried."""

    def __init__(self, address: str, password: str) -> None:
        super().__init__(daemon=True)
        self.address, self.password = address, password
        self.acked: list[int] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                conn = pymysql.connect(
                    host=self.address,
                    port=13306,
                    user="probe",
                    password=self.password,
                    database="probe",
                    connect_timeout=5,
                    read_timeout=10,
                    write_timeout=10,
                )
                with conn, conn.cursor() as cur:
                    cur.execute("INSERT INTO writes (n) VALUES (%s)", (n,))
                    conn.commit()
                self.acked.append(n)
            except pymysql.err.MySQLError as exc:
                self.failures.append(f"{n}: {exc}")
            time.sleep(0.05)


def test_rolling_galera_upgrade_loses_no_write(bed: Bed) -> None:
    password = bed.secret("db-probe")
    conn = pymysql.connect(
        host=NODES["ctl-0"], port=13306, user="probe", password=password, database="probe"
    )
    with conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS writes (id BIGINT AUTO_INCREMENT PRIMARY KEY, n INT)"
        )
        conn.commit()
    writer = Writer(NODES["ctl-0"], password)
    writer.start()
    try:
        for node in NODES:
            bed.play("upgrade-service", [node], service="galera", release=NEXT)
            assert (bed.root(node) / "services/galera/version").read_text().strip() == NEXT
            assert bed.wsrep(node)["wsrep_cluster_size"] == "3"
        # idempotent: already at NEXT and Synced -> not restarted
        pidfile = bed.root("ctl-2") / "services/galera/run/galera.pid"
        pid = pidfile.read_text()
        bed.play("upgrade-service", ["ctl-2"], service="galera", release=NEXT)
        assert pidfile.read_text() == pid
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert writer.failures == []
    assert len(writer.acked) > 20
    conn = pymysql.connect(
        host=NODES["ctl-2"], port=13306, user="probe", password=password, database="probe"
    )
    with conn, conn.cursor() as cur:
        cur.execute("SELECT n FROM writes")
        stored = {row[0] for row in cur.fetchall()}
    assert set(writer.acked) <= stored
    bed.play("health", list(NODES), services=["galera"], release=NEXT)


def test_haproxy_and_rabbitmq_upgrade(bed: Bed) -> None:
    for node in NODES:
        bed.play("upgrade-service", [node], service="rabbitmq", release=NEXT)
        status = bed.rabbit_status(node)
        assert len(status["running_nodes"]) == 3
    bed.play("upgrade-service", list(NODES), service="haproxy", release=NEXT)
    bed.play("upgrade-service", list(NODES), service="memcached", release=NEXT)
    bed.play("health", list(NODES), release=NEXT)
