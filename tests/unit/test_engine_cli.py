"""The run commands end to end in-process, on the sim driver with zero-length steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifecycle.cli.main import main
from lifecycle.execution.routing import Router
from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.plan_json import plan_from_json, plan_to_dict
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from tests.unit.test_engine_support import step

DEMO = Path(__file__).resolve().parents[2] / "tests" / "data" / "demo-train"


@pytest.fixture
def state(tmp_path, monkeypatch):
    (DEMO / "secrets.yaml").chmod(0o600)  # git does not keep the mode
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LIFECYCLE_SIM_SCALE", "0")
    monkeypatch.setenv("LIFECYCLE_JOURNAL_SYNC", "NORMAL")
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS", raising=False)
    return tmp_path


def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def upgrade(capsys, *extra: str) -> tuple[int, str, str]:
    return cli(
        capsys,
        "run",
        "upgrade",
        "-i",
        str(DEMO),
        "--to",
        "ussuri",
        "-y",
        "--driver",
        "sim",
        "--no-progress",
        *extra,
    )


def test_run_list_show_and_a_refused_resume(state, capsys):
    code, out, _ = upgrade(capsys)
    assert code == 0 and "succeeded" in out
    run_id = out.split()[1]
    code, out, _ = cli(capsys, "runs", "list")
    assert code == 0 and run_id in out and "succeeded" in out
    code, out, _ = cli(capsys, "runs", "show", run_id, "-f", "json")
    data = json.loads(out)
    assert data["state"] == "succeeded" and data["intent"]["target"] == "ussuri"
    assert data["audit"][0]["overrides"] == {"force": False, "overridden": []}
    assert all(s["attempts"] == 1 for s in data["steps"])
    code, _, err = cli(capsys, "resume", run_id)
    assert code == 4 and "nothing to resume" in err
    code, _, err = cli(capsys, "pause", run_id)
    assert code == 4 and "not running" in err


def test_unknown_runs_and_bad_arguments(state, capsys):
    code, _, err = cli(capsys, "resume", "demo-nope")
    assert code == 2 and "no run 'demo-nope'" in err
    code, _, err = upgrade(capsys, "--driver", "warp")
    assert code == 2
    code, _, err = cli(capsys, "run", "plan", str(state / "missing.json"), "-i", str(DEMO), "-y")
    assert code == 2 and "missing.json" in err


def unsafe_plan_file(tmp_path: Path) -> Path:
    """The demo plan with the second galera member no longer waiting for the first."""
    plan = plan_upgrade(load_inventory(DEMO), UpgradeIntent("ussuri"))
    data = plan_to_dict(plan)
    for raw in data["steps"]:
        if raw["id"] == "upgrade/galera/ctl-1":
            raw["depends_on"] = ["precheck/cluster"]
            raw["start"] = 60.0
    del data["digest"]  # no stale digest: `run plan` refuses an edited file unless --force
    path = tmp_path / "unsafe.json"
    path.write_text(json.dumps(data))
    assert plan_from_json(path.read_text()).digest != plan.digest
    return path


def test_an_unsafe_plan_is_refused_unless_forced_and_the_override_is_audited(state, capsys):
    path = unsafe_plan_file(state)
    code, _, err = cli(
        capsys, "run", "plan", str(path), "-i", str(DEMO), "-y", "--driver", "sim", "--no-progress"
    )
    assert code == 3 and "galera" in err
    code, out, err = cli(
        capsys,
        "run",
        "plan",
        str(path),
        "-i",
        str(DEMO),
        "-y",
        "--driver",
        "sim",
        "--force",
        "--no-progress",
    )
    assert code == 0 and "--force overrides" in err
    code, out, _ = cli(capsys, "runs", "show", out.split()[1], "-f", "json")
    overrides = json.loads(out)["audit"][0]["overrides"]
    assert overrides["force"] is True and overrides["overridden"]


def test_driver_modes_route_actions_as_the_contract_says():
    testbed = Router.for_mode("testbed")
    cloud = Router.for_mode("cloud")
    sim = Router.for_mode("sim")
    for action, on_testbed in [
        ("ansible.playbook", "ansible"),
        ("compute.evacuate", "ansible"),
        ("checks.health", "checks"),
        ("baremetal.deploy", "baremetal"),
    ]:
        s = step("x", action)
        assert testbed.name_for(s) == on_testbed
        assert cloud.name_for(s) == action.split(".")[0]
        assert sim.name_for(s) == "sim"


def test_a_saved_plan_for_another_inventory_is_refused(state, capsys):
    plan = plan_upgrade(load_inventory(DEMO), UpgradeIntent("ussuri"))
    data = plan_to_dict(plan)
    data["inventory_digest"] = "sha256:" + "0" * 64
    del data["digest"]  # no stale digest: `run plan` refuses an edited file unless --force
    path = state / "stale.json"
    path.write_text(json.dumps(data))
    code, _, err = cli(
        capsys, "run", "plan", str(path), "-i", str(DEMO), "-y", "--driver", "sim", "--no-progress"
    )
    assert code == 2 and "made for another inventory" in err
