"""The compute driver against the Nova stand-in, through the real openstacksdk."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from lifecycle.drivers.base import StepContext
from lifecycle.drivers.compute import ComputeDriver
from lifecycle.errors import DriverError
from lifecycle.planning.plan import Step, freeze_params
from lifecycle.testbed.nova_standin import NovaStandin
from tests.unit.cluster_factory import lab_like

CTX = StepContext(run_id="t", cluster=lab_like(computes_hdd=2, computes_ssd=2))


@pytest.fixture
def nova() -> Iterator[NovaStandin]:
    with NovaStandin() as standin:
        state = standin.state
        state.delay = 0.01
        for host in ("cmp-ssd-0", "cmp-ssd-1", "cmp-ssd-2", "cmp-hdd-0"):
            state.add_compute(host)
        state.create_aggregate("ssd")["hosts"].extend(["cmp-ssd-0", "cmp-ssd-1", "cmp-ssd-2"])
        state.create_aggregate("hdd")["hosts"].append("cmp-hdd-0")
        yield standin


@pytest.fixture
def driver(nova: NovaStandin) -> Iterator[ComputeDriver]:
    drv = ComputeDriver(endpoint=nova.url, poll_interval=0.01, timeouts={"register": 0.3})
    yield drv
    drv.close()


def step(action: str, nodes: tuple[str, ...], **params: object) -> Step:
    return Step(id=f"{action}/{'+'.join(nodes)}", action=action, phase="t", nodes=nodes,
                params=freeze_params(params))  # fmt: skip


def hosts_of(nova: NovaStandin) -> dict[str, str]:
    return {s["name"]: s["host"] for s in nova.state.servers.values()}


def service(nova: NovaStandin, host: str) -> dict[str, object]:
    return next(s for s in nova.state.services.values() if s["host"] == host)


def test_evacuate_live_migrates_every_instance_inside_the_aggregate(nova, driver):
    for i in range(3):
        nova.state.add_server(f"vm{i}", "cmp-ssd-0")
    evacuate = step("compute.evacuate", ("cmp-ssd-0",), mode="live-migrate", aggregate="ssd")
    assert driver.probe(evacuate, CTX) is False

    result = driver.run(evacuate, CTX)

    assert result.ok, result.error
    placed = hosts_of(nova)
    assert set(placed.values()) <= {"cmp-ssd-1", "cmp-ssd-2"}  # never the hdd aggregate
    assert service(nova, "cmp-ssd-0")["status"] == "disabled"
    assert "evacuating" in str(service(nova, "cmp-ssd-0")["disabled_reason"])
    assert all(m["live"] and m["status"] == "completed" for m in nova.state.migrations)
    assert driver.probe(evacuate, CTX) is True


def test_evacuate_fails_clearly_when_the_aggregate_has_no_room(nova, driver):
    nova.state.add_server("lonely", "cmp-hdd-0")
    result = driver.run(step("compute.evacuate", ("cmp-hdd-0",), aggregate="hdd"), CTX)

    assert not result.ok
    assert "could not be moved" in (result.error or "")
    assert result.hosts["cmp-hdd-0"]["status"] == "failed"
    assert hosts_of(nova) == {"lonely": "cmp-hdd-0"}


def test_cold_migration_is_confirmed(nova, driver):
    nova.state.add_server("cold", "cmp-ssd-1")
    result = driver.run(step("compute.evacuate", ("cmp-ssd-1",), mode="cold-migrate"), CTX)

    assert result.ok, result.error
    server = next(iter(nova.state.servers.values()))
    assert server["status"] == "ACTIVE" and server["host"] != "cmp-ssd-1"


def test_enable_undoes_evacuate_and_probes(nova, driver):
    driver.run(step("compute.evacuate", ("cmp-ssd-2",)), CTX)
    enable = step("compute.enable", ("cmp-ssd-2",), aggregate="ssd")
    assert driver.probe(enable, CTX) is False
    assert driver.run(enable, CTX).ok
    assert service(nova, "cmp-ssd-2")["status"] == "enabled"
    assert driver.probe(enable, CTX) is True


def test_aggregate_add_waits_for_the_new_compute_and_is_idempotent(nova, driver):
    add = step("compute.aggregate_add", ("cmp-ssd-9",), aggregate="ssd")
    threading.Timer(0.1, nova.state.add_compute, ("cmp-ssd-9",)).start()  # nova-compute starts

    first = driver.run(add, CTX)
    second = driver.run(add, CTX)

    assert first.ok and first.hosts["cmp-ssd-9"]["changed"] is True
    assert second.ok and second.hosts["cmp-ssd-9"]["changed"] is False
    assert nova.state.aggregates[1]["hosts"].count("cmp-ssd-9") == 1
    assert driver.probe(add, CTX) is True


def test_aggregate_add_creates_a_missing_aggregate(nova, driver):
    assert driver.run(step("compute.aggregate_add", ("cmp-hdd-0",), aggregate="gpu"), CTX).ok
    gpu = [a for a in nova.state.aggregates.values() if a["name"] == "gpu"]
    assert gpu and gpu[0]["hosts"] == ["cmp-hdd-0"]


def test_aggregate_add_of_a_host_nova_never_saw_names_it(driver):
    result = driver.run(step("compute.aggregate_add", ("ghost",), aggregate="ssd"), CTX)
    assert not result.ok
    assert "ghost" in (result.error or "") and "did not register" in (result.error or "")


def test_unknown_verb_is_a_driver_error(driver):
    with pytest.raises(DriverError, match="no verb"):
        driver.run(step("compute.teleport", ("cmp-ssd-0",)), CTX)


def test_delete_service_reports_nova_409_while_instances_remain(driver, nova) -> None:
    nova.state.add_server("vm-a", "cmp-ssd-1")
    result = driver.run(step("compute.delete_service", ("cmp-ssd-1",)), CTX)
    assert not result.ok and "409" in (result.error or "")
    assert driver.run(step("compute.verify_empty", ("cmp-ssd-1",)), CTX).ok is False
    assert driver.run(step("compute.evacuate", ("cmp-ssd-1",), mode="live-migrate"), CTX).ok
    assert driver.run(step("compute.verify_empty", ("cmp-ssd-1",)), CTX).ok
    assert driver.run(step("compute.delete_service", ("cmp-ssd-1",)), CTX).ok
    assert all(s["host"] != "cmp-ssd-1" for s in nova.state.services.values())
    assert driver.probe(step("compute.delete_service", ("cmp-ssd-1",)), CTX) is True
