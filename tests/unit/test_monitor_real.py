"""The monitor's checks of real Galera and RabbitMQ (fake SQL connections, a fake rabbitmqctl)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from lifecycle.formats.inventory import load_inventory
from lifecycle.testbed import monitor as monitor_mod
from lifecycle.testbed import state as testbed_state
from lifecycle.testbed.monitor import Monitor
from lifecycle.testbed.store_status import (
    GaleraStatus,
    RabbitStatus,
    galera_quorum,
    rabbit_running,
)

DEMO = Path(__file__).resolve().parents[2] / "inventories" / "demo"
CLUSTER = load_inventory(str(DEMO))
ADDRESS = {n.address: n.name for n in CLUSTER.nodes}
COOKIE = "cafebabecafebabecafebabecafebabe"


class FakeMember:
    """What SHOW STATUS LIKE 'wsrep_%' answers on one member (None: mariadbd is down)."""

    def __init__(self, statuses: dict[str, dict[str, str] | None], address: str) -> None:
        self.statuses, self.address = statuses, address

    def cursor(self) -> Any:
        member = self

        class Cursor:
            def __enter__(self) -> Cursor:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

            def execute(self, sql: str) -> None:
                assert sql == "SHOW STATUS LIKE 'wsrep_%'"
                if member.statuses[ADDRESS[member.address]] is None:
                    raise ConnectionError("Lost connection to server during query")

            def fetchall(self) -> list[tuple[str, str]]:
                return list((member.statuses[ADDRESS[member.address]] or {}).items())

        return Cursor()

    def close(self) -> None:
        pass


def member(status: str = "Primary", state: str = "Synced", size: int = 3) -> dict[str, str]:
    return {"wsrep_cluster_status": status, "wsrep_local_state_comment": state,
            "wsrep_cluster_size": str(size)}  # fmt: skip


@pytest.fixture
def testbed(tmp_path) -> Path:
    """A recorded testbed whose first controller holds the monitor's secrets."""
    hosts = []
    for node in CLUSTER.nodes:
        root = tmp_path / "hosts" / node.name
        root.mkdir(parents=True)
        hosts.append(testbed_state.HostRecord(node.name, node.address, f"ns-{node.name}",
                                              "v", "p", str(root)))  # fmt: skip
    secrets = tmp_path / "hosts" / "ctl-0" / "secrets"
    secrets.mkdir()
    (secrets / "db-monitor").write_text("0123456789abcdef0123456789abcdef\n")
    (secrets / "rabbitmq-cookie").write_text(COOKIE)
    state = testbed_state.TestbedState("demo", "t", "br", "198.18.0.1/24", "k", "hk", "kh",
                                       tuple(hosts))  # fmt: skip
    testbed_state.save(tmp_path, state)
    return tmp_path


def test_galera_quorum_is_a_majority_in_a_primary_component() -> None:
    three = {"a": member(), "b": member(), "c": member()}
    assert galera_quorum(three) == (("a", "b", "c"), True)
    assert galera_quorum({**three, "c": None}) == (("a", "b"), True)
    # the SST donor of a joining member is still in the Primary component: it votes
    donor = {**three, "b": member(state="Donor/Desynced"), "c": None}
    assert galera_quorum(donor) == (("a", "b"), True)
    alone = {**three, "b": None, "c": None}
    assert galera_quorum(alone) == (("a",), False)
    split = {"a": member("non-Primary", "Initialized"), "b": None, "c": member()}
    assert galera_quorum(split) == (("c",), False)


def test_the_monitor_asks_each_galera_member_and_records_a_quorum_violation(
    testbed, monkeypatch
) -> None:
    statuses: dict[str, dict[str, str] | None] = {n: member() for n in ("ctl-0", "ctl-1", "ctl-2")}
    opened: list[dict] = []

    def connect(**kw: Any) -> FakeMember:
        opened.append(kw)
        if statuses[ADDRESS[kw["host"]]] is None:
            raise ConnectionRefusedError("Can't connect to MySQL server")
        return FakeMember(statuses, kw["host"])

    real = GaleraStatus
    monkeypatch.setattr(monitor_mod, "GaleraStatus", lambda pw, timeout: real(pw, timeout, connect))
    watch = Monitor(CLUSTER, state_dir=testbed)
    watch.poll_galera()
    statuses["ctl-2"] = None  # its upgrade: stopped
    watch.poll_galera()
    statuses["ctl-1"] = member(state="Joined")  # catching up, still in the Primary component
    watch.poll_galera()
    statuses["ctl-1"] = member("non-Primary", "Initialized")  # partitioned away: quorum lost
    watch.poll_galera()
    obs = watch.observation
    assert obs.checks == {"galera": 4}
    assert obs.min_members == {"galera": 1}
    assert len(obs.violations) == 1
    assert "galera quorum lost: 1 of 3 in a Primary component, 1 Synced" in obs.violations[0]
    assert "ctl-1 non-Primary/Initialized" in obs.violations[0]
    assert "ctl-2 no answer" in obs.violations[0]
    assert {kw["user"] for kw in opened} == {"monitor"} and opened[0]["port"] == 3306
    assert len(opened) == 5  # persistent connections; ctl-2 reconnected (and refused) twice


def test_before_the_secrets_exist_galera_is_unchecked_not_broken(tmp_path) -> None:
    watch = Monitor(CLUSTER, state_dir=tmp_path)  # no testbed recorded: no secrets
    watch.poll_galera()
    assert watch.observation.unchecked == {"galera": 1}
    assert watch.observation.violations == []


def test_stand_in_quorum_services_stay_on_http_for_real_ones_not() -> None:
    watch = Monitor(CLUSTER, real_services=("galera",))
    assert "galera" not in watch._quorum and "rabbitmq" in watch._quorum
    assert set(watch._real_quorum) == {"galera"}


def test_rabbit_running_maps_long_names_and_reads_partitions() -> None:
    members = ("ctl-0", "ctl-1", "ctl-2")
    status = {"running_nodes": ["rabbit@198.18.0.11", "rabbit@198.18.0.13"],
              "partitions": {"rabbit@198.18.0.11": ["rabbit@198.18.0.12"]}}  # fmt: skip
    running, partitions = rabbit_running(CLUSTER, members, status)
    assert running == ("ctl-0", "ctl-2")
    assert partitions == ("rabbit@198.18.0.11: ['rabbit@198.18.0.12']",)
    assert rabbit_running(CLUSTER, members, {"partitions": {}}) == ((), ())


def fake_rabbitmqctl(tmp_path: Path, running: list[str]) -> str:
    """A rabbitmqctl that answers only with the right cookie in $HOME, never from argv."""
    script = tmp_path / "rabbitmqctl"
    answer = json.dumps({"running_nodes": running, "disk_nodes": running, "partitions": {}})
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$(cat "$HOME/.erlang.cookie")" = "{COOKIE}" ] || exit 69\n'
        f'case "$*" in *{COOKIE}*) exit 70;; esac\n'
        'case "$*" in *rabbit@198.18.0.11*) exit 69;; esac\n'  # ctl-0 is down
        f"echo '{answer}'\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_rabbitmqctl_gets_the_cookie_through_home_and_a_minority_is_a_violation(
    testbed, monkeypatch
) -> None:
    binary = fake_rabbitmqctl(testbed, ["rabbit@198.18.0.13"])
    real = RabbitStatus
    monkeypatch.setattr(monitor_mod, "RabbitStatus", lambda cookie: real(cookie, binary=binary))
    watch = Monitor(CLUSTER, state_dir=testbed)
    watch.poll_rabbitmq()
    obs = watch.observation
    assert obs.checks == {"rabbitmq": 1}
    assert len(obs.violations) == 1 and "running_nodes ['ctl-2']" in obs.violations[0]
    home = Path(watch._rabbit._home)
    assert (home / ".erlang.cookie").stat().st_mode & 0o077 == 0
    watch._rabbit.close()
    assert not home.exists()


def test_a_majority_of_rabbitmq_running_is_no_violation(testbed, monkeypatch) -> None:
    binary = fake_rabbitmqctl(testbed, ["rabbit@198.18.0.12", "rabbit@198.18.0.13"])
    real = RabbitStatus
    monkeypatch.setattr(monitor_mod, "RabbitStatus", lambda cookie: real(cookie, binary=binary))
    watch = Monitor(CLUSTER, state_dir=testbed)
    watch.poll_rabbitmq()
    assert watch.observation.violations == [] and watch.observation.min_members == {"rabbitmq": 2}


def _computes(held: dict[str, list[str] | None]):  # type: ignore[no-untyped-def]
    """A stand-in service_status: each compute's instances, None where its agent is down."""

    def status(cluster, node, service, timeout=1.0, path="/"):  # type: ignore[no-untyped-def]
        if service != "nova-compute" or node not in held:
            return {"service": service} if service != "nova-compute" else None
        ids = held[node]
        return None if ids is None else {"enabled": True, "instances": [{"id": i} for i in ids]}

    return status


def test_a_compute_that_does_not_answer_hides_its_instances_without_losing_them(
    monkeypatch,
) -> None:
    """An instance moving back to a compute that is too busy to answer (or its agent
    restarting) is unseen, not missing; one gone while every compute answers is missing."""
    computes = [n.name for n in CLUSTER.nodes if "nova-compute" in CLUSTER.services_of(n)]
    first, second = computes[0], computes[1]
    held: dict[str, list[str] | None] = {n: [] for n in computes}
    held[second] = ["vm-a", "vm-c"]
    monkeypatch.setattr(monitor_mod.client, "service_status", _computes(held))
    watch = Monitor(CLUSTER, real_services=())
    watch.observation.instances_at_start = watch.instances()
    assert watch.observation.instances_at_start == {"vm-a", "vm-c"}

    held[first], held[second] = None, ["vm-c"]  # vm-a moved to `first`, which does not answer
    watch.poll()
    assert not any("instances missing" in v for v in watch.observation.violations)

    held[first], held[second] = ["vm-a"], []  # every compute answers: vm-c is nowhere
    watch.poll()
    assert any("instances missing: ['vm-c']" in v for v in watch.observation.violations)
