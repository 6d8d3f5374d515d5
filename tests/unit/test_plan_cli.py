"""`lifecycle plan`: tree, JSON contract, Gantt picture, and refusal of unsafe plans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifecycle.cli.main import main
from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.plan_json import plan_to_dict
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "tests" / "data" / "demo-train")
CONTRACT = {
    "id",
    "action",
    "phase",
    "nodes",
    "upgrades",
    "disrupts",
    "depends_on",
    "start",
    "duration",
}


def test_plan_prints_a_tree_with_timings(capsys) -> None:
    assert main(["plan", "upgrade", "--inventory", DEMO, "--to", "ussuri"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("upgrade demo: train -> ussuri\n")
    assert "steps, estimated duration " in out and "makespan" not in out
    assert "├── infra" in out and "│   ├── galera" in out
    assert "upgrade/galera/ctl-0 [ctl-0]  @0:01:00 for 5m00s" in out


def test_plan_json_follows_the_contract(capsys, tmp_path) -> None:
    gantt = tmp_path / "plan.svg"
    code = main(
        [
            "plan",
            "upgrade",
            "-i",
            DEMO,
            "--to",
            "ussuri",
            "--ceph-to",
            "octopus",
            "-f",
            "json",
            "--gantt",
            str(gantt),
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert {
        "operation",
        "cluster",
        "from",
        "to",
        "digest",
        "makespan",
        "lower_bound",
        "steps",
    } <= set(data)
    assert data["from"] == "train" and data["to"] == "ussuri" and data["ceph_to"] == "octopus"
    assert data["digest"].startswith("sha256:")
    assert data["makespan"] >= data["lower_bound"] > 0
    assert all(set(step) >= CONTRACT for step in data["steps"])
    assert any(
        s["id"] == "upgrade/galera/ctl-0" and s["upgrades"] == ["galera@ctl-0"]
        for s in data["steps"]
    )
    picture = gantt.read_text()
    assert picture.startswith("<?xml") and "<svg" in picture[:500]
    assert data["digest"].removeprefix("sha256:")[:12] in picture  # the title names the plan


def test_unknown_release_is_a_clear_error(capsys) -> None:
    assert main(["plan", "upgrade", "-i", DEMO, "--to", "liberty"]) == 2
    assert "unknown openstack release 'liberty'" in capsys.readouterr().err


def test_downgrade_is_refused(capsys) -> None:
    assert main(["plan", "upgrade", "-i", DEMO, "--to", "queens"]) == 2
    assert "downgrade" in capsys.readouterr().err


@pytest.fixture()
def unsafe_plan_file(tmp_path: Path) -> Path:
    """The demo plan with galera's second member taken down together with the first."""
    plan = plan_upgrade(load_inventory(DEMO), UpgradeIntent("ussuri"))
    data = plan_to_dict(plan)
    for step in data["steps"]:
        if step["id"] == "upgrade/galera/ctl-1":
            step["depends_on"] = ["precheck/cluster"]
            step["start"] = 60.0
        if step["id"] == "upgrade/galera/ctl-0":
            step["start"] = 60.0
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    return path


def test_verify_refuses_an_unsafe_plan_naming_rule_and_moment(capsys, unsafe_plan_file) -> None:
    assert main(["plan", "verify", "-i", DEMO, str(unsafe_plan_file)]) == 3
    err = capsys.readouterr().err
    assert "plan refused" in err
    assert "t=60s quorum: galera has 2 of 3 members down (ctl-0, ctl-1)" in err
    assert "upgrade/galera/ctl-0, upgrade/galera/ctl-1 are not ordered" in err


def test_force_overrides_and_says_what_it_overrode(capsys, unsafe_plan_file) -> None:
    assert main(["plan", "verify", "-i", DEMO, "--force", str(unsafe_plan_file)]) == 0
    captured = capsys.readouterr()
    assert "warning: --force overrides: t=60s quorum" in captured.err
    assert "violation(s) overridden" in captured.out


def test_a_plan_file_that_is_not_a_plan_is_a_clear_error(capsys, tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"steps": 3}')
    assert main(["plan", "verify", "-i", DEMO, str(bad)]) == 2
    assert "bad.json" in capsys.readouterr().err


def test_plan_scale_out_for_new_servers(capsys) -> None:
    lab = str(ROOT / "inventories" / "lab")
    nodes = str(ROOT / "inventories" / "lab" / "new-servers.json")
    Path(nodes).chmod(0o600)  # git does not keep the mode; it holds BMC passwords
    assert main(["plan", "scale-out", "-i", lab, "--nodes", nodes, "-f", "json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert data["operation"] == "scale-out"
    ids = {s["id"] for s in data["steps"]}
    assert {"enroll/cmp-ssd-8", "inspect/cmp-ssd-8", "deploy/cmp-ssd-8"} <= ids
    assert "FAKE-new-server-password" not in out  # BMC passwords never reach the plan
