"""`lifecycle plan deploy` and `lifecycle run deploy`: exit codes, the plan contract, and a
simulated deploy followed by an upgrade of the cloud it left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifecycle.cli.main import main
from lifecycle.formats.plan_json import plan_from_dict, plan_to_dict
from lifecycle.planning.plan import Plan
from tests.unit.plan_surgery import rebuild, rewire

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "inventories" / "demo"
LAB = ROOT / "inventories" / "lab"


@pytest.fixture(autouse=True)
def _private_secrets() -> None:
    for inventory in (DEMO, LAB):  # git does not keep the mode
        (inventory / "secrets.yaml").chmod(0o600)


def test_plan_deploy_prints_the_json_contract(capsys) -> None:
    assert main(["plan", "deploy", "-i", str(DEMO), "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["operation"] == "deploy" and data["from"] is None and data["to"] == "2024.1"
    assert data["digest"].startswith("sha256:") and data["makespan"] >= data["lower_bound"] > 0
    ids = [s["id"] for s in data["steps"]]
    assert ids[0] == "precheck/cluster" and ids[-1] == "postcheck/cluster"
    assert "enroll/ctl-0" in ids
    start = next(s for s in data["steps"] if s["id"] == "start/keystone")
    assert start["upgrades"] == ["keystone@ctl-0", "keystone@ctl-1", "keystone@ctl-2"]


def test_plan_deploy_tree_release_and_provisioned(capsys) -> None:
    args = ["plan", "deploy", "-i", str(DEMO), "--release", "2025.1", "--provisioned"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("deploy demo: at 2025.1")
    assert "enroll/" not in out and "join/galera/ctl-1 [ctl-1]" in out


def test_plan_deploy_unknown_release_is_exit_2(capsys) -> None:
    assert main(["plan", "deploy", "-i", str(DEMO), "--release", "2099.9"]) == 2
    assert "unknown openstack release" in capsys.readouterr().err


def test_plan_deploy_writes_a_gantt_chart(tmp_path, capsys) -> None:
    chart = tmp_path / "deploy.svg"
    assert main(["plan", "deploy", "-i", str(DEMO), "--gantt", str(chart)]) == 0
    assert chart.read_text().lstrip().startswith(("<?xml", "<svg"))


def _unsafe_file(tmp_path: Path, capsys) -> Path:
    assert main(["plan", "deploy", "-i", str(LAB), "--provisioned", "-f", "json"]) == 0
    plan: Plan = plan_from_dict(json.loads(capsys.readouterr().out))
    broken = rebuild(plan, rewire("join/galera/ctl-2", "join/galera/ctl-1"))
    path = tmp_path / "unsafe.json"
    path.write_text(json.dumps(plan_to_dict(broken)))
    return path


def test_a_hand_edited_unsafe_deploy_plan_is_refused(tmp_path, capsys) -> None:
    path = _unsafe_file(tmp_path, capsys)
    assert main(["plan", "verify", "-i", str(LAB), str(path)]) == 3
    assert "join/galera/ctl-2 has no path from a health gate" in capsys.readouterr().err
    state = tmp_path / "state"
    args = ["run", "plan", str(path), "-i", str(LAB), "--driver", "sim", "--state-dir", str(state)]
    assert main([*args, "-y", "--no-progress"]) == 3


def test_sim_deploy_then_status_then_upgrade(tmp_path, capsys) -> None:
    state = str(tmp_path / "state")
    common = ["--driver", "sim", "--state-dir", state]
    run = ["run", "deploy", "-i", str(LAB), "--release", "ussuri", *common]
    assert main([*run, "--sim-scale", "0", "-y", "--no-progress"]) == 0
    assert "(deploy of lab, SIMULATED): succeeded" in capsys.readouterr().out
    assert main(["status", "-i", str(LAB), *common, "-f", "json"]) == 0
    seen = json.loads(capsys.readouterr().out)
    releases = {i["instance"] if "instance" in i else f"{i['service']}@{i['node']}": i["release"]
                for i in seen["instances"]}  # fmt: skip
    assert releases["galera@ctl-2"] == "ussuri" and releases["ceph-osd@ceph-0"] == "nautilus"
    assert releases["nova-compute@cmp-hdd-0"] == "ussuri"
    record = json.loads((Path(state) / "lab.state.json").read_text())
    assert record["operation"] == "deploy"
    assert set(record["instances"].values()) == {"ussuri", "nautilus"}
    upgrade = ["run", "upgrade", "-i", str(LAB), "--to", "victoria", *common]
    assert main([*upgrade, "--sim-scale", "0", "-y", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "(upgrade of lab" in out and "succeeded" in out
    assert main(["status", "-i", str(LAB), *common, "-f", "json"]) == 0
    seen = json.loads(capsys.readouterr().out)
    assert {i["release"] for i in seen["instances"] if i["service"] == "keystone"} == {"victoria"}


def test_run_deploy_observes_first_and_skips_reachable_nodes(monkeypatch) -> None:
    from lifecycle.cli import run_cmds, status_cmds
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.model.observed import REACHABLE, NodeObservation, ObservedState

    seen = ObservedState("demo", "testbed", nodes=(NodeObservation("ctl-0", REACHABLE),))
    asked: list[str] = []

    def observe(cluster: object, driver: str, state_dir: object) -> ObservedState:
        asked.append(driver)
        return seen

    monkeypatch.setattr(status_cmds, "observe", observe)
    intent = {"operation": "deploy", "release": None}
    intent.update(run_cmds._deploy_observation(str(DEMO), {"driver": "testbed"}))
    assert asked == ["testbed"] and "observed" in intent  # recorded: a resume plans the same
    plan = run_cmds.PLANNERS["deploy"](load_inventory(DEMO), intent)
    ids = {s.id for s in plan.steps}
    assert "enroll/ctl-0" not in ids and "enroll/ctl-1" in ids
    assert run_cmds._deploy_observation(str(DEMO), {"driver": "sim"}) == {}


def test_a_deploy_check_asks_quorum_only_of_the_services_it_names() -> None:
    from lifecycle.drivers import checks
    from lifecycle.drivers.base import StepContext
    from lifecycle.drivers.site import SiteFacts
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.planning.deploy import plan_deploy

    cluster = load_inventory(DEMO)
    up = {"ctl-0"}  # galera bootstrapped on ctl-0; nothing else runs yet

    def status(cluster: object, node: str, service: str, *_: object) -> dict | None:
        if service == "galera" and node in up:
            return {"version": "2024.1", "members": {"majority": True}}
        return None

    # the stand-in checks (the demo's testbed.yaml would send galera to its real role's tasks)
    stand_ins = SiteFacts(real_services=(), status=status)
    plan = plan_deploy(cluster)
    driver = checks.ChecksDriver(settle=0, site=lambda cluster: stand_ins)
    ctx = StepContext(run_id="r", cluster=cluster)
    assert driver.run(plan.step("precheck/cluster"), ctx).ok
    assert driver.run(plan.step("health/galera/ctl-0"), ctx).ok
    assert not driver.run(plan.step("health/galera/ctl-1"), ctx).ok  # ctl-1 has not joined


def test_plan_deploy_provisions_only_the_nodes_named(capsys) -> None:
    args = ["plan", "deploy", "-i", str(DEMO), "--provision", "ctl-1", "--provision", "ceph-0"]
    assert main([*args, "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["provision"] == ["ctl-1", "ceph-0"]
    assert {s["nodes"][0] for s in data["steps"] if s["action"].startswith("baremetal.")} == {
        "ctl-1",
        "ceph-0",
    }
    assert main(["plan", "deploy", "-i", str(DEMO), "--provision", "nope"]) == 2
    assert "nope: not a node of cluster demo" in capsys.readouterr().err
