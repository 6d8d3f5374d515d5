"""`lifecycle plan|run replace|remove` end to end on the sim driver, and resume --node-dead."""

from __future__ import annotations

import json
import re
from pathlib import Path

from lifecycle.cli.main import main
from lifecycle.drivers.sim import read_state

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab"
SIM = ["--driver", "sim", "--sim-scale", "0", "-y", "--no-progress"]


def _run_replace(state: Path, address: str) -> list[str]:
    """`run replace` of the lab's ctl-1 by a host ctl-9 at `address`, on the sim."""
    (LAB / "secrets.yaml").chmod(0o600)
    args = ["run", "replace", "-i", str(LAB), "--node", "ctl-1", "--with", "ctl-9"]
    return [*args, "--address", address, "--state-dir", str(state), *SIM]


def _status(state: Path, capsys) -> dict:
    capsys.readouterr()
    assert (
        main(["status", "-i", str(LAB), "--driver", "sim", "--state-dir", str(state), "-f", "json"])
        == 0
    )
    return json.loads(capsys.readouterr().out)


def _members(observed: dict, store: str) -> list[str]:
    return next(s["members"] for s in observed["stores"] if s["service"] == store)


def test_replace_on_the_sim_shows_the_new_member_not_the_old(tmp_path, capsys) -> None:
    state = tmp_path / "state"
    assert main(_run_replace(state, "198.18.2.99")) == 0
    out = capsys.readouterr().out
    assert "(replace of lab, SIMULATED): succeeded" in out
    assert "inventory: node ctl-1 is now ctl-9 (address 198.18.2.99, no bmc)" in out
    observed = _status(state, capsys)
    for store in ("galera", "rabbitmq", "ceph-mon"):
        assert _members(observed, store) == ["ctl-0", "ctl-2", "ctl-9"], store
    assert "ctl-1" not in [n["name"] for n in observed["nodes"]]


def test_a_controller_rebuilt_under_its_own_name_after_a_deploy_rejoins_its_stores(
    tmp_path, capsys
) -> None:
    (LAB / "secrets.yaml").chmod(0o600)
    state = tmp_path / "state"
    assert main(["run", "deploy", "-i", str(LAB), "--state-dir", str(state), *SIM]) == 0
    args = ["run", "replace", "-i", str(LAB), "--node", "ctl-1", "--state-dir", str(state), *SIM]
    assert main(args) == 0
    observed = _status(state, capsys)
    for store in ("galera", "rabbitmq", "ceph-mon"):
        assert _members(observed, store) == ["ctl-0", "ctl-1", "ctl-2"], store
    assert not [d for d in observed["differences"] if "ctl-1" in json.dumps(d)]


def test_a_dead_compute_is_replaced_from_the_observed_state(tmp_path, capsys) -> None:
    (LAB / "secrets.yaml").chmod(0o600)
    state = tmp_path / "state"
    before = _status(state, capsys)  # seeds the sim cloud
    held = next(c["instances"] for c in before["computes"] if c["node"] == "cmp-ssd-1")
    path = state / "sim" / "lab.json"
    data = json.loads(path.read_text())
    data["dead"] = ["cmp-ssd-1"]
    path.write_text(json.dumps(data))
    args = ["run", "replace", "-i", str(LAB), "--node", "cmp-ssd-1", "--observe"]
    assert main([*args, "--state-dir", str(state), *SIM]) == 0
    after = read_state(state, "lab")
    assert "cmp-ssd-1" not in after["dead"] and after["instances"]["cmp-ssd-1"] == []
    total = sum(len(v) for v in after["instances"].values())
    assert total == sum(c["instances"] for c in before["computes"]) and held > 0  # none lost


def test_removing_one_of_three_controllers_exits_3_naming_node_and_rule(tmp_path, capsys) -> None:
    args = ["plan", "remove", "-i", str(LAB), "--node", "ctl-1"]
    assert main(args) == 3
    err = capsys.readouterr().err
    assert "quorum: galera: removing ctl-1 leaves 2 member(s)" in err
    assert main([*args, "--force", "-f", "json"]) == 0
    captured = capsys.readouterr()
    assert "warning: --force overrides: quorum: galera" in captured.err
    assert json.loads(captured.out)["operation"] == "remove"


def test_a_saved_replace_plan_verifies_against_the_inventory(tmp_path, capsys) -> None:
    out = tmp_path / "plan.json"
    args = ["plan", "replace", "-i", str(LAB), "--node", "ctl-1", "--with", "ctl-9"]
    assert main([*args, "--address", "198.18.2.99", "-f", "json", "-o", str(out)]) == 0
    assert main(["plan", "verify", "-i", str(LAB), str(out)]) == 0
    assert "safe" in capsys.readouterr().out


def test_resume_goes_on_without_a_node_confirmed_dead_halfway(
    tmp_path, capsys, monkeypatch
) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", "die:ctl-1@stop/ctl-1")
    assert main(_run_replace(state, "198.18.2.99")) == 4
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS")
    stopped = capsys.readouterr().err  # the failure says how to go on without the node
    assert re.search(r"if ctl-1 is dead .*`lifecycle resume \S+ --node-dead ctl-1`", stopped)
    resume = ["resume", "last", "--state-dir", str(state), "--sim-scale", "0", "--no-progress"]
    assert main([*resume, "--node-dead", "ctl-1"]) == 0
    assert "succeeded" in capsys.readouterr().out
    observed = _status(state, capsys)
    assert _members(observed, "galera") == ["ctl-0", "ctl-2", "ctl-9"]
    capsys.readouterr()
    assert main(["runs", "show", "last", "--state-dir", str(state), "-f", "json"]) == 0
    shown = capsys.readouterr().out
    assert '"resume": "skipped: node confirmed dead by the operator"' in shown
    assert '"skipped": [\n          "stop/ctl-1"' in shown  # the audit record of the resume


def test_dead_node_steps_are_only_its_stop_and_drain() -> None:
    from lifecycle.cli.replace_cmds import dead_node_steps
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.planning.replace import ReplaceIntent, Replacement, plan_replace

    plan = plan_replace(load_inventory(LAB), ReplaceIntent("net-1", Replacement("net-1")))
    assert dead_node_steps(plan, ("net-1",)) == ["drain-network/net-1", "stop/net-1"]
    assert dead_node_steps(plan, ()) == []


def test_a_replacement_named_with_no_server_nor_address_is_refused_as_bad_input(
    tmp_path, capsys
) -> None:
    (LAB / "secrets.yaml").chmod(0o600)
    args = ["plan", "replace", "-i", str(LAB), "--node", "ctl-1", "--with", "ctl-9"]
    assert main([*args, "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--with: ctl-9 as a server of --nodes FILE" in err and "--address ADDR" in err
    assert "Traceback" not in err


def test_a_failed_replace_says_to_plan_the_replace_again_not_an_upgrade(
    tmp_path, capsys, monkeypatch
) -> None:
    (LAB / "secrets.yaml").chmod(0o600)
    state = tmp_path / "state"
    assert main(["run", "deploy", "-i", str(LAB), "--state-dir", str(state), *SIM]) == 0
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", "fail:deploy/galera/ctl-1:9")
    capsys.readouterr()
    args = ["run", "replace", "-i", str(LAB), "--node", "ctl-1", "--state-dir", str(state), *SIM]
    assert main(args) == 4
    out = capsys.readouterr()
    text = out.out + out.err
    assert "plan replace -i" in text and "--node ctl-1 --observe" in text
    assert "lifecycle plan upgrade" not in text


def test_a_replacement_from_a_nodes_file_needs_no_address(tmp_path, capsys) -> None:
    (LAB / "secrets.yaml").chmod(0o600)
    (LAB / "new-servers.json").chmod(0o600)
    args = ["plan", "replace", "-i", str(LAB), "--node", "cmp-ssd-1", "--with", "cmp-ssd-8"]
    args += ["--nodes", str(LAB / "new-servers.json"), "--state-dir", str(tmp_path)]
    assert main(args) == 0
    assert "deploy/cmp-ssd-8" in capsys.readouterr().out


def test_an_address_that_is_not_one_is_refused_before_anything_runs(tmp_path, capsys) -> None:
    state = tmp_path / "state"
    assert main(_run_replace(state, "not-an-ip")) == 2
    err = capsys.readouterr().err
    assert "--address" in err and "an IPv4 or IPv6 address, got 'not-an-ip'" in err
    assert "Traceback" not in err
    assert not list(state.glob("*.db")), "no run was recorded"
