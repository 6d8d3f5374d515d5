"""The sim driver: versions, evacuations, probes, persistence across processes, injected faults."""

import pytest

from lifecycle.drivers.base import StepContext
from lifecycle.drivers.sim import SimDriver, parse_faults, read_state
from lifecycle.errors import UsageError
from lifecycle.execution.journal import MemoryJournal
from lifecycle.execution.states import RunState
from tests.unit.test_engine_support import run_plan, small_cluster, upgrade_plan


@pytest.fixture
def cluster():
    return small_cluster()


def sim(tmp_path, faults=""):
    return SimDriver(state_dir=tmp_path, scale=0.0, faults=faults)


def ctx(cluster, run="r1"):
    return StepContext(run_id=run, cluster=cluster)


def test_an_upgrade_moves_every_service_and_keeps_instances_in_their_aggregate(tmp_path, cluster):
    driver = sim(tmp_path)
    view = run_plan(MemoryJournal(), upgrade_plan(cluster), cluster, driver)
    assert view.state is RunState.SUCCEEDED
    state = read_state(tmp_path, cluster.name)
    assert set(state["versions"].values()) == {"ussuri"}
    vms = sorted(vm for host in state["instances"].values() for vm in host)
    assert vms == sorted(f"vm-cmp-{i}-{j}" for i in range(4) for j in range(3))
    assert state["disabled"] == []
    counts = driver.counts(cluster.name, view.run.id)
    assert set(counts) == set(view.steps) and set(counts.values()) == {1}


def test_probe_answers_from_the_simulated_cluster(tmp_path, cluster):
    driver = sim(tmp_path)
    plan = upgrade_plan(cluster)
    up = plan.by_id["upgrade/galera/ctl-0"]
    assert driver.probe(up, ctx(cluster)) is False
    assert driver.run(up, ctx(cluster)).ok
    assert driver.probe(up, ctx(cluster)) is True
    gate = plan.by_id["health/cmp-0"]
    assert driver.probe(gate, ctx(cluster)) is False  # no version to look at: its run counter


def test_state_survives_a_new_driver_instance(tmp_path, cluster):
    plan = upgrade_plan(cluster)
    sim(tmp_path).run(plan.by_id["evacuate/cmp-0"], ctx(cluster))
    again = sim(tmp_path)
    state = read_state(tmp_path, cluster.name)
    assert state["instances"]["cmp-0"] == [] and "cmp-0" in state["disabled"]
    assert again.probe(plan.by_id["evacuate/cmp-0"], ctx(cluster)) is True
    assert again.counts(cluster.name, "r1") == {"evacuate/cmp-0": 1}


def test_evacuating_the_last_enabled_host_of_an_aggregate_fails(tmp_path, cluster):
    driver = sim(tmp_path)
    plan = upgrade_plan(cluster)
    for i in range(3):
        assert driver.run(plan.by_id[f"evacuate/cmp-{i}"], ctx(cluster)).ok
    result = driver.run(plan.by_id["evacuate/cmp-3"], ctx(cluster))
    assert not result.ok and "no enabled host left in aggregate hdd" in result.error


def test_a_step_fails_n_times_counted_across_driver_instances(tmp_path, cluster):
    up = upgrade_plan(cluster).by_id["upgrade/galera/ctl-0"]
    assert not sim(tmp_path, "fail:upgrade/galera/*:2").run(up, ctx(cluster)).ok
    assert not sim(tmp_path, "fail:upgrade/galera/*:2").run(up, ctx(cluster)).ok
    assert sim(tmp_path, "fail:upgrade/galera/*:2").run(up, ctx(cluster)).ok


def test_a_node_dies_mid_step_and_stays_dead(tmp_path, cluster):
    plan = upgrade_plan(cluster)
    driver = sim(tmp_path, "die:cmp-1@upgrade-node/cmp-1")
    result = driver.run(plan.by_id["upgrade-node/cmp-1"], ctx(cluster))
    assert not result.ok and result.unreachable == ("cmp-1",)
    assert read_state(tmp_path, cluster.name)["versions"]["nova-compute@cmp-1"] == "train"
    gate = driver.run(plan.by_id["health/cmp-1"], ctx(cluster))
    assert not gate.ok and gate.unreachable == ("cmp-1",)


def test_a_red_health_gate_stays_red(tmp_path, cluster):
    gate = upgrade_plan(cluster).by_id["health/cmp-2"]
    driver = sim(tmp_path, "red:health/cmp-2")
    assert all(not driver.run(gate, ctx(cluster)).ok for _ in range(3))


def test_a_health_gate_sees_services_not_at_the_release(tmp_path, cluster):
    gate = upgrade_plan(cluster).by_id["health/cmp-0"]
    result = sim(tmp_path).run(gate, ctx(cluster))
    assert not result.ok and "nova-compute@cmp-0" in result.error


@pytest.mark.parametrize("bad", ["fail:x", "die:nodeonly", "explode:x", "red:"])
def test_bad_fault_specs_are_usage_errors(bad):
    with pytest.raises(UsageError):
        parse_faults(bad)


def test_fault_specs_parse():
    faults = parse_faults("fail:up/*:2, die:cmp-0@up/cmp-0,red:gate/*,hang:x")
    assert [(f.kind, f.step, f.count, f.node) for f in faults] == [
        ("fail", "up/*", 2, ""),
        ("die", "up/cmp-0", 0, "cmp-0"),
        ("red", "gate/*", 0, ""),
        ("hang", "x", 0, ""),
    ]


def test_scale_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_SIM_SCALE", "0.25")
    assert SimDriver(state_dir=tmp_path).scale == 0.25
