"""The CLI as an operator meets it (issue 14): no silent simulation, the openstack client's
output conventions, one `error: ...` paragraph and a documented exit status for every operator
mistake, runs readable afterwards (`last`, prefixes), abort asking first, shell completion."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from click.testing import CliRunner

from lifecycle.cli.main import cli, main

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "data" / "demo-train"
LAB = ROOT / "inventories" / "lab"


@pytest.fixture
def state(tmp_path, monkeypatch):
    (DEMO / "secrets.yaml").chmod(0o600)  # git does not keep the mode
    (LAB / "secrets.yaml").chmod(0o600)
    root = tmp_path / "state"
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(root))
    monkeypatch.setenv("LIFECYCLE_SIM_SCALE", "0")
    monkeypatch.setenv("LIFECYCLE_JOURNAL_SYNC", "NORMAL")
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS", raising=False)
    monkeypatch.delenv("OS_CLOUD", raising=False)
    monkeypatch.delenv("LIFECYCLE_IRONIC_URL", raising=False)
    return root


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    """`lifecycle ARGS` in-process through main() (its error handling is what is tested), with
    click's CliRunner isolating stdin, stdout and stderr."""
    runner = CliRunner()
    with runner.isolation(input=input) as (out, err, _):
        code = main(list(args))
    return code, out.getvalue().decode(), err.getvalue().decode()


def sim_upgrade(*extra: str, inventory: Path = DEMO) -> tuple[int, str, str]:
    return run(
        "run", "upgrade", "-i", str(inventory), "--to", "ussuri", "-y", "--no-progress", *extra
    )


def copy_inventory(tmp_path: Path, source: Path, edit: tuple[str, str] | None = None) -> Path:
    target = tmp_path / source.name
    shutil.copytree(source, target)
    (target / "secrets.yaml").chmod(0o600)
    if edit:
        text = (target / "cluster.yaml").read_text()
        assert edit[0] in text
        (target / "cluster.yaml").write_text(text.replace(*edit, 1))
    return target


# --- 1. no silent simulation ----------------------------------------------------------------


def test_run_without_a_driver_refuses_and_says_how_to_choose(state):
    code, out, err = sim_upgrade(inventory=LAB)  # lab's cluster.yaml names no driver
    assert code == 2 and not out
    assert "--driver sim" in err and "--driver cloud" in err and "driver: sim|testbed|cloud" in err
    assert not state.exists() or not list(state.glob("*.db"))  # nothing was recorded


def test_a_sim_run_says_simulated_first_last_in_runs_list_and_show(state):
    code, out, err = sim_upgrade("--driver", "sim")
    assert code == 0, err
    first = err.splitlines()[0]
    run_id = re.match(
        r"run (\S+) started: upgrade of demo, train -> ussuri, .*driver sim: SIMULATED", first
    )
    assert run_id, first
    assert err.splitlines()[1].startswith("log: ")
    assert out.splitlines()[-1].strip().startswith("SIMULATED")
    assert "SIMULATED" in out.splitlines()[0]
    code, listing, _ = run("runs", "list")
    assert code == 0 and "SIMULATED" in listing and run_id.group(1) in listing
    code, shown, _ = run("runs", "show", "last")
    assert code == 0 and "driver: sim (SIMULATED)" in shown
    code, shown, _ = run("runs", "show", "last", "-f", "json")
    data = json.loads(shown)
    assert data["simulated"] is True and data["intent"]["simulated"] is True


def test_the_inventory_names_the_driver_and_a_bad_one_is_refused_with_its_line(state, tmp_path):
    sim = copy_inventory(tmp_path / "a", DEMO, ("driver: testbed", "driver: sim"))
    code, _, err = sim_upgrade(inventory=sim)
    assert code == 0 and "driver sim: SIMULATED" in err
    bad = copy_inventory(tmp_path / "b", DEMO, ("driver: testbed", "driver: warp"))
    code, _, err = run("validate", "-i", str(bad))
    assert code == 2 and "cluster.yaml:3: driver: one of" in err and "'warp'" in err


def test_export_mistral_chooses_its_driver_as_run_does(state, tmp_path):
    code, _, err = run("export", "mistral", "-i", str(LAB), "--to", "ussuri", "-o", "-")
    assert code == 2 and "--driver sim" in err
    out = tmp_path / "wb.yaml"
    code, _, err = run("export", "mistral", "-i", str(DEMO), "--to", "ussuri", "-o", str(out))
    assert code == 0 and "driver testbed" in err
    assert "- drivers: testbed" in out.read_text()


def test_a_real_driver_run_is_not_called_simulated(state):
    from lifecycle.execution.progress import Tracker, run_line
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade

    plan = plan_upgrade(load_inventory(DEMO), UpgradeIntent("ussuri"))
    snap = Tracker(plan).snapshot(0.0)
    assert "SIMULATED" not in run_line(plan, snap, "testbed", resumed=False)
    assert "SIMULATED" in run_line(plan, snap, "sim", resumed=False)


def test_driver_lists_agree_with_the_router():
    from lifecycle.cli.run_cmds import DRIVERS
    from lifecycle.execution.routing import MODES
    from lifecycle.formats.inventory import DRIVER_MODES

    assert tuple(DRIVERS) == tuple(MODES) == DRIVER_MODES


# --- 2. formats and columns ----------------------------------------------------------------


def test_runs_list_in_every_format_with_columns(state):
    assert sim_upgrade("--driver", "sim")[0] == 0
    code, out, _ = run("runs", "list")
    header = out.splitlines()[1]
    for title in ("Run", "Started", "Cluster", "Operation", "From", "To", "Driver", "State"):
        assert title in header
    code, out, _ = run("runs", "list", "-f", "json", "-c", "run", "-c", "State")
    rows = json.loads(out)
    assert list(rows[0]) == ["run", "state"] and rows[0]["state"] == "succeeded"
    code, out, _ = run("runs", "list", "-f", "yaml", "-c", "from", "-c", "to")
    assert yaml.safe_load(out) == [{"from": "train", "to": "ussuri"}]
    code, out, _ = run("runs", "list", "-f", "csv", "-c", "cluster", "-c", "simulated")
    assert list(csv.reader(io.StringIO(out))) == [["Cluster", "Simulated"], ["demo", "SIMULATED"]]
    code, out, _ = run("runs", "list", "-f", "value", "-c", "operation", "-c", "started")
    operation, started = out.split()
    assert operation == "upgrade" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", started)
    code, _, err = run("runs", "list", "-c", "nope")
    assert code == 2 and "nope" in err and "run, started" in err


def test_runs_show_text_has_times_steps_and_audit_and_json_iso_times(state):
    assert sim_upgrade("--driver", "sim")[0] == 0
    code, out, _ = run("runs", "show", "last")
    assert re.search(r"started: \d{4}-\d\d-\d\dT[\d:]+Z\s+ended: \d{4}-.*Z\s+took:", out)
    assert "step times" in out and "upgrade/galera/ctl-0" in out
    assert "audit:" in out and "lifecycle" in out and "log: " in out
    code, out, _ = run("runs", "show", "last", "-f", "json")
    data = json.loads(out)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["started"])
    assert re.fullmatch(r"\d{4}-.*Z", data["steps"][0]["started"])
    assert Path(data["log"]).is_file()
    code, out, _ = run("runs", "show", "last", "-f", "value", "-c", "state")
    assert code == 0 and out.strip() == "succeeded"
    _, out, _ = run("runs", "show", "last", "-f", "table", "-c", "state", "-c", "cluster")
    assert "| Field" in out and "| state   | succeeded |" in out


def test_validate_and_plan_verify_take_formats(state, tmp_path):
    code, out, _ = run("validate", "-i", str(DEMO), "-f", "json", "-c", "nodes", "-c", "driver")
    assert code == 0 and json.loads(out) == {"nodes": 10, "driver": "testbed"}
    plan = tmp_path / "plan.json"
    assert (
        run("plan", "upgrade", "-i", str(DEMO), "--to", "ussuri", "-f", "json", "-o", str(plan))[0]
        == 0
    )
    _, out, _ = run("plan", "verify", "-i", str(DEMO), str(plan), "-f", "yaml", "-c", "safe")
    assert yaml.safe_load(out) == {"safe": True}


def test_nodes_list_takes_formats_and_os_cloud(state, monkeypatch):
    seen = {}

    def fake_driver(ironic_url, cloud):
        seen["cloud"] = cloud
        node = SimpleNamespace(
            name="new-ssd",
            id="uuid-1",
            provision_state="manageable",
            power_state="power off",
            properties={"capabilities": "profile:compute-ssd"},
            is_maintenance=False,
            last_error=None,
        )
        api = SimpleNamespace(nodes=lambda details=False: [node])
        return SimpleNamespace(api=api, close=lambda: None)

    monkeypatch.setattr("lifecycle.cli.nodes_cmds._driver", fake_driver)
    code, out, _ = run(
        "nodes", "list", "--os-cloud", "lab", "-f", "json", "-c", "name", "-c", "profile"
    )
    assert code == 0 and json.loads(out) == [{"name": "new-ssd", "profile": "compute-ssd"}]
    assert seen["cloud"] == "lab"
    code, out, _ = run("nodes", "list", "--cloud", "old-alias", "-c", "Provision State")
    assert "manageable" in out and seen["cloud"] == "old-alias"


# --- 3. no traceback for an operator's mistake ---------------------------------------------


def _mistakes(tmp: Path) -> list[tuple[list[str], int, str]]:
    (tmp / "bad-clouds.yaml").write_text("clouds: [\n")
    (tmp / "binary.yaml").write_bytes(b"\xff\xfe\x00")
    return [
        (["validate", "-i", str(tmp / "nowhere")], 2, "not found"),
        (["validate", "-i", str(tmp / "binary.yaml")], 2, "UTF-8"),
        (["nodes", "list"], 2, "--ironic-url URL"),  # no endpoint at all
        (["nodes", "list", "--os-cloud", "nosuch"], 2, "clouds.yaml"),
        (["nodes", "list", "--ironic-url", "http://127.0.0.1:9"], 1, "cannot reach"),
        (["runs", "show", "nosuch-run"], 2, "no run"),
        (["resume", "last"], 2, "no run"),
        (["abort", "nosuch", "-y"], 2, "no run"),
        (["plan", "upgrade", "-i", str(DEMO), "--to", "ussri"], 2, "did you mean 'ussuri'"),
        (["plan", "verify", "-i", str(DEMO), str(tmp / "none.json")], 2, "none.json"),
        (["run", "upgrade", "-i", str(LAB), "--to", "ussuri", "-y"], 2, "--driver sim"),
        (["run", "upgrade", "-i", str(DEMO), "--to", "ussuri", "--driver", "warp"], 2, "warp"),
        (["--log-file", str(tmp / "no" / "dir.log"), "validate", "-i", str(DEMO)], 2, "writable"),
        (["runs", "list", "-c", "nope"], 2, "nope"),
        (["plan", "upgrade", "-i", str(DEMO), "--to", "queens"], 2, "downgrade"),
        (
            ["plan", "upgrade", "-i", str(DEMO), "--to", "ussuri", "-o", str(tmp / "x" / "y")],
            2,
            "y",
        ),
        (["no-such-command"], 2, "no-such-command"),
    ]


def test_ten_kinds_of_operator_mistake_get_one_message_and_their_exit_status(
    state, tmp_path, monkeypatch
):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "bad-clouds.yaml"))
    mistakes = _mistakes(tmp_path)
    assert len(mistakes) >= 10
    for argv, status, says in mistakes:
        code, out, err = run(*argv)
        assert code == status, (argv, code, err)
        assert "Traceback" not in out + err, argv
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, (argv, err)  # one paragraph, in the one style
        assert says in err, (argv, err)


def test_a_bug_is_one_line_without_debug_and_a_traceback_with_it(state, monkeypatch):
    def broken(*args, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr("lifecycle.formats.inventory.load_inventory", broken)
    code, _, err = run("validate", "-i", str(DEMO))
    assert code == 1 and "unexpected RuntimeError: boom" in err and "--debug" in err
    assert "Traceback" not in err
    code, _, err = run("--debug", "validate", "-i", str(DEMO))
    assert code == 1 and "Traceback" in err


def test_exit_statuses_are_documented_in_help_and_errors_module():
    import lifecycle.errors

    code, out, _ = run("--help")
    assert code == 0
    for status in ("0 ", "1 ", "2 ", "3 ", "4 ", "130"):
        assert f"  {status}" in out and status.strip() in (lifecycle.errors.__doc__ or "")
    assert "_LIFECYCLE_COMPLETE=bash_source" in out


# --- logs ----------------------------------------------------------------------------------


def test_log_file_and_the_run_log_have_iso_times(state, tmp_path):
    log = tmp_path / "cli.log"
    code, _, err = sim_upgrade("--driver", "sim")
    assert code == 0
    run_log = Path(re.search(r"^log: (\S+)$", err, re.M).group(1))
    assert run_log.parent == state / "logs" and run_log.stat().st_mode & 0o077 == 0
    lines = run_log.read_text().splitlines()
    assert lines and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", line) for line in lines)
    assert any("run-finished" in line for line in lines)
    code, _, _ = run("--log-file", str(log), "-v", "validate", "-i", str(DEMO))
    assert code == 0 and log.exists()
    mine = {str(log), str(run_log)}
    left = [h for h in logging.getLogger().handlers if getattr(h, "baseFilename", "") in mine]
    assert not left  # main() and the run log remove the handlers they added


# --- 5. runs afterwards: last, prefixes, an empty list ------------------------------------


def test_last_and_unique_prefixes_and_an_ambiguous_one(state):
    assert sim_upgrade("--driver", "sim")[0] == 0
    # a second upgrade to the same release has nothing to do (the recorded state): ask for Ceph
    assert sim_upgrade("--driver", "sim", "--ceph-to", "octopus")[0] == 0
    rows = json.loads(run("runs", "list", "-f", "json")[1])
    first, second = rows[0]["run"], rows[1]["run"]
    assert rows[0]["started"] <= rows[1]["started"]
    code, out, _ = run("runs", "show", "last", "-f", "value", "-c", "run")
    assert out.strip() == second
    unique = next(
        first[:n] for n in range(len(first)) if not second.startswith(first[:n]) and n > 5
    )
    code, out, _ = run("runs", "show", unique, "-f", "value", "-c", "run")
    assert code == 0 and out.strip() == first
    code, _, err = run("runs", "show", "demo-")
    assert code == 2 and "ambiguous" in err and first in err and second in err


def test_an_empty_list_says_where_it_looked(state):
    code, out, err = run("runs", "list")
    assert code == 0 and not out and f"no runs under {state}" in err
    code, out, _ = run("runs", "list", "-f", "json")
    assert json.loads(out) == []


# --- 6. messages that say what to do next ------------------------------------------------


def test_release_names_any_case_code_names_and_suggestions():
    from lifecycle.catalog import load_catalog
    from lifecycle.errors import UnsupportedUpgrade

    train = load_catalog().openstack
    assert train.get("USSURI").name == "ussuri"
    assert train.get("Antelope").name == "2023.1"
    with pytest.raises(UnsupportedUpgrade, match=r"did you mean 'caracal'\?.*2024.1 \(caracal\)"):
        train.get("carcal")


def test_the_lock_message_says_how_to_wait_pause_or_abort(tmp_path):
    from lifecycle.errors import RunLocked
    from lifecycle.execution.lock import ClusterLock

    held = ClusterLock(tmp_path / "demo.lock", "demo", "demo-run-1")
    with held, pytest.raises(RunLocked) as info:
        ClusterLock(tmp_path / "demo.lock", "demo", "demo-run-2").acquire()
    text = str(info.value)
    assert "lifecycle pause demo-run-1" in text and "lifecycle abort demo-run-1" in text
    assert "Wait" in text


# --- abort asks, and says what state the cluster is left in ----------------------------------


def test_abort_asks_and_reports_what_the_journal_knows(state, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", "fail:upgrade/keystone/ctl-0:9")
    code, _, _ = sim_upgrade("--driver", "sim")
    assert code == 4
    code, out, err = run("abort", "last", input="n\n")
    assert code == 130 and "abort cancelled: run demo" in err and "left as it was" in err
    assert "steps done:" in out and "in flight: none" in out
    assert re.search(r"at ussuri: .*galera", out)  # infra was upgraded before keystone failed
    assert re.search(r"keystone: MIXED: ussuri on .*; train on ", out) or re.search(
        r"at train: .*keystone", out
    )
    assert json.loads(run("runs", "show", "last", "-f", "json")[1])["state"] == "failed"
    code, out, _ = run("abort", "last", "-y")
    assert code == 0 and "aborted" in out and "the cluster is left as" in out
    assert "in flight: none" in out
    assert json.loads(run("runs", "show", "last", "-f", "json")[1])["state"] == "aborted"


# --- completion --------------------------------------------------------------------------------


def test_shell_completion_offers_releases_and_run_ids(state):
    assert sim_upgrade("--driver", "sim")[0] == 0
    run_id = json.loads(run("runs", "list", "-f", "json")[1])[0]["run"]
    runner = CliRunner()

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        env = {
            "_LIFECYCLE_COMPLETE": "bash_complete",
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(words) - 1),
        }
        result = runner.invoke(cli, [], env=env, prog_name="lifecycle")
        return [line.split(",", 1)[1] for line in result.output.splitlines() if "," in line]

    assert "ussuri" in complete("lifecycle run upgrade -i x --to us")
    assert "antelope" in complete("lifecycle run upgrade -i x --to ant")
    assert set(complete("lifecycle runs show ")) >= {"last", run_id}
    assert complete("lifecycle resume demo-") == [run_id]


# --- 10. validate warns about what will fail later ------------------------------------------


def test_validate_warns_of_a_missing_ssh_key(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    inv = copy_inventory(tmp_path, LAB)
    code, out, _ = run("validate", "-i", str(inv))
    assert code == 0 and "warning:" in out and "id_lab does not exist" in out


def test_bmc_passwords_in_a_world_readable_nodes_file_are_refused(tmp_path):
    inv = copy_inventory(tmp_path, DEMO)
    shutil.copy(ROOT / "tests" / "data" / "new_nodes.yaml", inv / "new.yaml")
    text = (
        (inv / "cluster.yaml")
        .read_text()
        .replace("credentials: secrets.yaml", "credentials: secrets.yaml\nnodes_file: new.yaml")
    )
    (inv / "cluster.yaml").write_text(text.replace("profile: compute-ssd", "profile: compute-ssd"))
    roles = yaml.safe_load((inv / "new.yaml").read_text())
    assert "password" in json.dumps(roles)
    (inv / "new.yaml").chmod(0o644)
    code, _, err = run("validate", "-i", str(inv))
    assert code == 2 and "new.yaml" in err and "mode 0600" in err and "chmod 600" in err
    (inv / "new.yaml").chmod(0o600)
    code, _, err = run("validate", "-i", str(inv))
    assert "mode 0600" not in err
