"""`lifecycle status` and the `--observe/--observed` options of plan and run, in-process on the
sim driver with zero-length steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lifecycle.cli.main import main
from lifecycle.drivers.sim import read_state
from lifecycle.errors import InputError
from lifecycle.formats.inventory import load_inventory
from lifecycle.model.observed import (
    ComputeObservation,
    NodeObservation,
    ObservedState,
    StoreObservation,
    load_observed,
    observed_from_dict,
)
from lifecycle.planning.differences import differences

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


def status(capsys, *extra: str) -> tuple[int, str, str]:
    return cli(capsys, "status", "-i", str(DEMO), "--driver", "sim", *extra)


def test_status_json_round_trips_into_the_observed_state(state, capsys) -> None:
    code, out, _ = status(capsys, "-f", "json")
    assert code == 0
    data = json.loads(out)
    observed = observed_from_dict(data)
    assert observed.to_dict() == {k: v for k, v in data.items() if k != "differences"}
    assert observed.cluster == "demo" and observed.driver == "sim"
    assert observed.release_of("keystone@ctl-0") == "train"
    assert data["differences"] == []
    code, out, _ = status(capsys, "-f", "yaml")
    assert code == 0 and observed_from_dict(yaml.safe_load(out)) == observed


def test_status_after_a_sim_run_shows_the_new_releases(state, capsys) -> None:
    code, _, _ = cli(
        capsys,
        "run",
        "upgrade",
        "--driver",
        "sim",
        "-i",
        str(DEMO),
        "--to",
        "ussuri",
        "-y",
        "--no-progress",
    )
    assert code == 0
    code, out, _ = status(capsys, "-f", "json")
    data = json.loads(out)
    releases = {(i["service"], i["node"]): i["release"] for i in data["instances"]}
    assert releases[("galera", "ctl-1")] == "ussuri"
    assert releases[("nova-compute", "cmp-ssd-1")] == "ussuri"
    assert releases[("ceph-osd", "ceph-2")] == "nautilus"  # no --ceph-to
    named = {d["subject"] for d in data["differences"] if d["kind"] == "release"}
    assert "galera@ctl-1" in named and "ceph-osd@ceph-2" not in named
    code, out, _ = status(capsys)  # the table names the releases and the differences
    assert code == 0 and "ussuri: " in out
    assert "differs: release: galera@ctl-1 runs ussuri; the inventory says train" in out


def test_status_without_a_driver_is_a_usage_error(state, capsys) -> None:
    lab = DEMO.parents[2] / "inventories" / "lab"  # its cluster.yaml names no driver
    code, _, err = cli(capsys, "status", "-i", str(lab))
    assert code == 2 and "--driver sim" in err and "driver: sim|testbed|cloud" in err


def test_plan_from_an_observed_file_prints_differences_then_what_is_left(
    state, capsys, tmp_path
) -> None:
    state_file = state / "sim" / "demo.json"
    status(capsys)  # seeds the sim cloud
    data = json.loads(state_file.read_text())
    for node in ("ctl-0", "ctl-1", "ctl-2"):
        data["versions"][f"galera@{node}"] = "ussuri"
    state_file.write_text(json.dumps(data))
    _, out, _ = status(capsys, "-f", "json")
    observed_file = tmp_path / "observed.json"
    observed_file.write_text(out)
    code, out, err = cli(
        capsys,
        "plan",
        "upgrade",
        "-i",
        str(DEMO),
        "--to",
        "ussuri",
        "--observed",
        str(observed_file),
        "-f",
        "json",
    )
    assert code == 0, err
    assert "3 difference(s) from the inventory" in err
    assert "differs: release: galera@ctl-0 runs ussuri; the inventory says train" in err
    plan = json.loads(out)
    ids = [s["id"] for s in plan["steps"]]
    assert "confirm/galera" in ids and not any(i.startswith("upgrade/galera") for i in ids)


def test_a_down_galera_member_refuses_plan_and_run_naming_the_node(state, capsys) -> None:
    status(capsys)
    state_file = state / "sim" / "demo.json"
    data = json.loads(state_file.read_text())
    data["dead"] = ["ctl-2"]
    state_file.write_text(json.dumps(data))
    args = ("-i", str(DEMO), "--to", "ussuri", "--observe", "--driver", "sim")
    code, _, err = cli(capsys, "plan", "upgrade", *args)
    assert code == 3
    assert "differs: node-unreachable: ctl-2 is in the inventory but unreachable" in err
    assert "quorum: galera: ctl-2 down" in err and "until ctl-2 is back" in err
    code, _, err = cli(capsys, "run", "upgrade", "--driver", "sim", *args, "-y", "--no-progress")
    assert code == 3 and "quorum: galera: ctl-2 down" in err
    _, runs, _ = cli(capsys, "runs", "list")
    assert runs.strip() == ""  # refused before anything was recorded or touched


def test_run_forced_past_a_down_node_records_the_override(state, capsys) -> None:
    status(capsys)
    state_file = state / "sim" / "demo.json"
    data = json.loads(state_file.read_text())
    data["dead"] = ["ctl-2"]
    state_file.write_text(json.dumps(data))
    code, out, err = cli(
        capsys,
        "run",
        "upgrade",
        "--driver",
        "sim",
        "-i",
        str(DEMO),
        "--to",
        "ussuri",
        "--observe",
        "-y",
        "--no-progress",
        "--force",
    )
    assert "warning: --force overrides: quorum: galera: ctl-2 down" in err
    assert code == 0, err
    run_id = out.split()[1]
    _, shown, _ = cli(capsys, "runs", "show", run_id, "-f", "json")
    report = json.loads(shown)
    assert any("galera: ctl-2 down" in o for o in report["audit"][0]["overrides"]["overridden"])
    versions = read_state(state, "demo")["versions"]
    assert versions["galera@ctl-0"] == "ussuri" and versions["galera@ctl-2"] == "train"


def test_a_second_run_with_observe_does_only_what_is_left(state, capsys) -> None:
    code, _, _ = cli(
        capsys,
        "run",
        "upgrade",
        "--driver",
        "sim",
        "-i",
        str(DEMO),
        "--to",
        "ussuri",
        "-y",
        "--no-progress",
    )
    code, _, err = cli(
        capsys,
        "run",
        "upgrade",
        "--driver",
        "sim",
        "-i",
        str(DEMO),
        "--to",
        "ussuri",
        "--observe",
        "-y",
        "--no-progress",
    )
    assert code == 2 and "nothing left to upgrade" in err


def test_differences_name_each_way_the_cloud_differs() -> None:
    cluster = load_inventory(str(DEMO))
    observed = ObservedState(
        "demo",
        "test",
        nodes=(
            NodeObservation("ctl-1", "unreachable", "ssh: timed out"),
            NodeObservation("x-9", "reachable"),
        ),
        stores=(
            StoreObservation("galera", members=("ctl-0", "ctl-2"), size=2, quorum=True),
            StoreObservation("ceph-mon", members=("ctl-0", "ctl-1", "ctl-2"), flags=("noout",)),
        ),
        computes=(ComputeObservation("cmp-hdd-0", enabled=False, up=True, instances=0),),
    )
    found = {(d.kind, d.subject) for d in differences(cluster, observed)}
    assert ("node-unreachable", "ctl-1") in found
    assert ("node-not-in-inventory", "x-9") in found
    assert ("store-members", "galera") in found
    assert ("flag", "ceph-mon:noout") in found
    assert ("compute-disabled", "cmp-hdd-0") in found
    assert ("node-unknown", "ctl-0") in found  # not observed at all


def test_a_bad_observed_file_names_the_file_and_field(tmp_path) -> None:
    path = tmp_path / "observed.json"
    path.write_text(json.dumps({"cluster": "demo", "nodes": [{"name": "a", "state": "sleepy"}]}))
    with pytest.raises(InputError, match=r"observed.json: nodes\[0\].state: one of reachable"):
        load_observed(str(path))
    path.write_text(json.dumps({"stores": [{"service": "galera", "size": "three"}]}))
    with pytest.raises(InputError, match=r"stores\[0\].size: a int, not str"):
        load_observed(str(path))
    path.write_text("{not json")
    with pytest.raises(InputError, match="JSON from `lifecycle status -f json`"):
        load_observed(str(path))


def test_a_plan_of_what_is_left_saved_then_verified_and_run_from_its_file(
    state, capsys, tmp_path
) -> None:
    status(capsys)
    state_file = state / "sim" / "demo.json"
    data = json.loads(state_file.read_text())
    data["versions"]["nova-compute@cmp-hdd-0"] = "ussuri"
    data["versions"]["neutron-ovs-agent@cmp-hdd-0"] = "ussuri"
    state_file.write_text(json.dumps(data))
    saved = tmp_path / "plan.json"
    code, _, err = cli(
        capsys, "plan", "upgrade", "-i", str(DEMO), "--to", "ussuri", "--observe",
        "--driver", "sim", "-f", "json", "-o", str(saved),
    )  # fmt: skip
    assert code == 0, err
    code, out, err = cli(capsys, "plan", "verify", "-i", str(DEMO), str(saved))
    assert code == 0 and "safe" in out, err
    code, out, err = cli(
        capsys, "run", "plan", "--driver", "sim", str(saved), "-i", str(DEMO), "-y", "--no-progress"
    )
    assert code == 0, err
    versions = read_state(state, "demo")["versions"]
    assert {v for k, v in versions.items() if not k.startswith("ceph-")} == {"ussuri"}


def test_a_run_planned_from_an_observation_resumes_with_the_same_plan(
    state, capsys, monkeypatch
) -> None:
    status(capsys)
    state_file = state / "sim" / "demo.json"
    data = json.loads(state_file.read_text())
    data["versions"]["galera@ctl-0"] = "ussuri"
    state_file.write_text(json.dumps(data))
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", "fail:upgrade/keystone/ctl-1:99")
    code, out, err = cli(
        capsys, "run", "upgrade", "--driver", "sim", "-i", str(DEMO), "--to", "ussuri",
        "--observe", "-y", "--no-progress",
    )  # fmt: skip
    assert code == 4, err
    run_id = err.split("`lifecycle resume ")[1].split("`")[0]
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS")
    code, out, err = cli(capsys, "resume", run_id, "--no-progress")
    assert code == 0, err + out
    assert "succeeded" in out
    versions = read_state(state, "demo")["versions"]
    assert {v for k, v in versions.items() if not k.startswith("ceph-")} == {"ussuri"}
