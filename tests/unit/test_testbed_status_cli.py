"""`lifecycle testbed status -i INV` names each host's services as real or stand-in."""

from __future__ import annotations

from pathlib import Path

from lifecycle.cli.main import main
from lifecycle.formats.inventory import load_inventory
from lifecycle.testbed import manager
from lifecycle.testbed import state as testbed_state

DEMO = Path(__file__).resolve().parents[2] / "inventories" / "demo"


def fake_status(monkeypatch) -> None:
    cluster = load_inventory(str(DEMO))
    hosts = tuple(
        testbed_state.HostRecord(n.name, n.address, "ns", "v", "p", "/tmp/x", sshd_pid=7)
        for n in cluster.nodes
    )
    state = testbed_state.TestbedState("demo", "t", "br", "198.18.0.1/24", "k", "hk", "kh", hosts)
    answers = [manager.HostStatus(h.name, h.address, h.sshd_pid, True) for h in hosts]
    monkeypatch.setattr(manager, "status", lambda directory: (state, answers))


def test_each_host_lists_its_real_and_stand_in_services(monkeypatch, capsys, tmp_path) -> None:
    fake_status(monkeypatch)
    assert main(["testbed", "status", "-i", str(DEMO), "--state-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("ctl-0"))
    assert lines[at + 1].split() == ["real:", "haproxy,", "galera,", "rabbitmq,", "memcached,",
                                     "keystone,", "placement-api"]  # fmt: skip
    assert lines[at + 2].split()[0] == "stand-in:" and "nova-api," in lines[at + 2]
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("cmp-hdd-0"))
    assert lines[at + 1].split() == ["stand-in:", "nova-compute,", "neutron-ovs-agent"]


def test_without_an_inventory_it_says_how_to_see_the_services(
    monkeypatch, capsys, tmp_path
) -> None:
    fake_status(monkeypatch)
    assert main(["testbed", "status", "--state-dir", str(tmp_path)]) == 0
    assert "-i INVENTORY names each host's services" in capsys.readouterr().out
