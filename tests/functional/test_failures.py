"""Failures on the simulated demo cloud, through the CLI: each run must end with the right report,
start nothing that disrupts after the failure, and leave the cloud as the report says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifecycle.cli.main import main
from lifecycle.drivers.sim import read_state
from lifecycle.planning.plan import Plan

pytestmark = pytest.mark.crash


@pytest.fixture(autouse=True, scope="module")
def _private_demo_secrets():
    """git does not keep file modes: the demo secrets must be 0600 for the inventory to load."""
    (Path(DEMO) / "secrets.yaml").chmod(0o600)


DEMO = str(Path(__file__).resolve().parents[2] / "tests" / "data" / "demo-train")


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LIFECYCLE_SIM_SCALE", "0.0002")
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS", raising=False)
    return tmp_path


def upgrade(cloud: Path, faults: str, monkeypatch) -> tuple[int, list[dict]]:
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", faults)
    events = cloud / "events.jsonl"
    code = main(
        [
            "run",
            "upgrade",
            "-i",
            DEMO,
            "--to",
            "ussuri",
            "--ceph-to",
            "octopus",
            "-y",
            "--driver",
            "sim",
            "--no-progress",
            "--events",
            str(events),
        ]
    )
    return code, [json.loads(line) for line in events.read_text().splitlines()]


def show(capsys, run_id: str) -> dict:
    capsys.readouterr()
    assert main(["runs", "show", run_id, "-f", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def resume(run_id: str, monkeypatch) -> int:
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", "")
    return main(["resume", run_id, "--no-progress"])


def plan_of(data: dict) -> Plan:
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade

    return plan_upgrade(load_inventory(DEMO), UpgradeIntent("ussuri", "octopus"))


def disruptive_starts_after_failure(events: list[dict], plan: Plan) -> list[str]:
    kinds = [e["event"] for e in events]
    first = kinds.index("step-failed")
    return [
        e["step"]
        for e in events[first:]
        if e["event"] == "step-started"
        and (plan.by_id[e["step"]].disrupts or plan.by_id[e["step"]].action == "compute.evacuate")
    ]


def test_failing_steps_are_retried_and_the_run_succeeds(cloud, monkeypatch, capsys):
    code, events = upgrade(
        cloud, "fail:health/galera/ctl-1:2,fail:upgrade/rabbitmq/ctl-0:1", monkeypatch
    )
    assert code == 0
    data = show(capsys, events[0]["run"])
    attempts = {s["id"]: s["attempts"] for s in data["steps"]}
    assert attempts["health/galera/ctl-1"] == 3 and attempts["upgrade/rabbitmq/ctl-0"] == 2
    assert data["state"] == "succeeded" and data["counts"] == {"succeeded": 118}
    assert sum(e["event"] == "step-retrying" for e in events) == 3


def test_threshold_reached_stops_at_a_safe_point_and_resume_finishes(cloud, monkeypatch, capsys):
    code, events = upgrade(cloud, "fail:upgrade/hdd/batch-1:2", monkeypatch)
    assert code == 4
    run_id = events[0]["run"]
    data = show(capsys, run_id)
    assert data["state"] == "failed"
    assert "failure threshold of 0" in data["reason"] and "cmp-hdd-0" in data["reason"]
    assert data["failed"][0]["step"] == "upgrade/hdd/batch-1"
    assert "injected failure 2 of 2" in data["failed"][0]["error"]
    assert "evacuate/hdd/batch-2" in data["left"] and "postcheck/cluster" in data["left"]
    plan = plan_of(data)
    assert disruptive_starts_after_failure(events, plan) == []
    sim = read_state(cloud, "demo")
    # the hosts left disabled are exactly those the report shows evacuated and not re-enabled
    # (the ssd aggregate rolls in parallel and may have evacuated its next host before the stop)
    evacuated = {plan.by_id[s].nodes[0] for s in data["done"] if s.startswith("evacuate/")}
    enabled = {plan.by_id[s].nodes[0] for s in data["done"] if s.startswith("enable/")}
    assert "cmp-hdd-0" in sim["disabled"]
    assert set(sim["disabled"]) == evacuated - enabled
    assert sim["instances"]["cmp-hdd-0"] == [] and len(sim["instances"]["cmp-hdd-1"]) == 6
    assert sim["versions"]["nova-compute@cmp-hdd-1"] == "train"
    assert resume(run_id, monkeypatch) == 0
    sim = read_state(cloud, "demo")
    assert sim["disabled"] == [] and set(sim["versions"].values()) == {"ussuri", "octopus"}


def test_a_node_dying_mid_batch_stops_the_run_and_says_which(cloud, monkeypatch, capsys):
    code, events = upgrade(cloud, "die:cmp-ssd-0@upgrade/ssd/batch-1", monkeypatch)
    assert code == 4
    run_id = events[0]["run"]
    data = show(capsys, run_id)
    failed = data["failed"][0]
    assert failed["step"] == "upgrade/ssd/batch-1"
    assert failed["hosts"]["cmp-ssd-0"]["status"] == "unreachable"
    assert "cmp-ssd-0" in data["reason"]
    assert disruptive_starts_after_failure(events, plan_of(data)) == []
    sim = read_state(cloud, "demo")
    assert sim["dead"] == ["cmp-ssd-0"] and "cmp-ssd-1" not in sim["disabled"]
    # the node is still dead: resume fails the same step again, clearly, and goes no further
    assert resume(run_id, monkeypatch) == 4
    again = show(capsys, run_id)
    assert "unreachable" in again["failed"][0]["error"]
    assert read_state(cloud, "demo")["versions"]["nova-compute@cmp-ssd-1"] == "train"


def test_a_health_gate_that_stays_red_keeps_the_next_failure_domain_up(cloud, monkeypatch, capsys):
    code, events = upgrade(cloud, "red:health/ceph-osd/rack1", monkeypatch)
    assert code == 4
    data = show(capsys, events[0]["run"])
    gate = next(s for s in data["steps"] if s["id"] == "health/ceph-osd/rack1")
    assert gate["state"] == "failed" and gate["attempts"] == 6
    assert "health gate red" in gate["error"]
    assert disruptive_starts_after_failure(events, plan_of(data)) == []
    sim = read_state(cloud, "demo")
    assert sim["versions"]["ceph-osd@ceph-1"] == "nautilus"
    assert sim["flags"]["noout"] is True  # left set, as the report's left steps say
    assert "ceph/noout-unset" in data["left"]
