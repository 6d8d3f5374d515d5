"""What a fresh operator found wrong with the CLI (issue 14, follow-up): each test failed
before its fix. Numbers follow the findings: 1 negative --sim-scale, 2 edited plans, 3 picture
and output paths, 4 BMC passwords in a readable nodes file, 5 validate's refusals, 6 plan verify
for scripts, 7 errors printed once, 8 a closed stdout, 9 the docs and abort's "no"."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from lifecycle.cli.main import main
from tests.unit.field_cases import case_dir

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab"
CASES = Path("/work/shared/cases")


@pytest.fixture
def state(tmp_path, monkeypatch):
    (LAB / "secrets.yaml").chmod(0o600)  # git does not keep the mode
    (LAB / "new-servers.json").chmod(0o600)
    root = tmp_path / "state"
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(root))
    monkeypatch.setenv("LIFECYCLE_SIM_SCALE", "0")
    monkeypatch.setenv("LIFECYCLE_JOURNAL_SYNC", "NORMAL")
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS", raising=False)
    monkeypatch.delenv("OS_CLOUD", raising=False)
    return root


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    """`lifecycle ARGS` in-process through main(), stdin/stdout/stderr isolated."""
    runner = CliRunner()
    with runner.isolation(input=input) as (out, err, _):
        code = main(list(args))
    return code, out.getvalue().decode(), err.getvalue().decode()


def recorded(root: Path) -> list[Path]:
    return sorted(root.rglob("*.sqlite*")) + sorted(root.rglob("*.db")) if root.exists() else []


def upgrade(*extra: str) -> tuple[int, str, str]:
    return run("run", "upgrade", "-i", str(LAB), "--to", "ussuri", "-y", "--no-progress", *extra)


# --- 1. a negative --sim-scale --------------------------------------------------------------


@pytest.mark.parametrize("scale", ["-1", "nan", "inf"])
def test_negative_sim_scale_is_bad_input_before_a_run_is_recorded(state, scale):
    code, _, err = upgrade("--driver", "sim", "--sim-scale", scale)
    assert code == 2, err
    assert "Traceback" not in err and "sleep length" not in err
    assert "--sim-scale" in err
    assert not (state / "logs").exists()


def test_resume_refuses_a_negative_sim_scale(state):
    assert upgrade("--driver", "sim")[0] == 0
    code, _, err = run("resume", "last", "--sim-scale", "-0.5")
    assert code == 2, err
    assert "--sim-scale" in err


@pytest.mark.parametrize("value", ["-1", "fast"])
def test_a_bad_sim_scale_in_the_environment_is_bad_input(state, monkeypatch, value):
    monkeypatch.setenv("LIFECYCLE_SIM_SCALE", value)
    code, _, err = upgrade("--driver", "sim")
    assert code == 2, err
    assert "LIFECYCLE_SIM_SCALE" in err and "Traceback" not in err
    assert not (state / "logs").exists()


# --- 2. a plan edited since it was made -------------------------------------------------------


@pytest.fixture
def edited_plan(state, tmp_path) -> tuple[Path, str]:
    """A saved lab plan with one step's duration changed by hand; (file, the digest it claims)."""
    path = tmp_path / "p.json"
    code, _, err = run(
        "plan", "upgrade", "-i", str(LAB), "--to", "ussuri", "-f", "json", "-o", str(path)
    )
    assert code == 0, err
    data = json.loads(path.read_text())
    step = next(s for s in data["steps"] if s["id"] == "health/galera/ctl-0")
    step["duration"] -= 15  # shorter: still safe
    path.write_text(json.dumps(data, indent=1))
    return path, data["digest"]


def test_plan_verify_warns_that_a_plan_was_edited_naming_both_digests(edited_plan):
    path, claimed = edited_plan
    code, out, err = run("plan", "verify", "-i", str(LAB), str(path), "-f", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["edited"] is True and data["digest_in_file"] == claimed
    assert data["digest"] != claimed
    assert "edited since it was made" in err
    assert claimed in err and data["digest"] in err


def test_an_unedited_plan_is_not_called_edited(state, tmp_path):
    path = tmp_path / "p.json"
    run("plan", "upgrade", "-i", str(LAB), "--to", "ussuri", "-f", "json", "-o", str(path))
    code, out, err = run("plan", "verify", "-i", str(LAB), str(path), "-f", "json")
    assert code == 0 and json.loads(out)["edited"] is False
    assert "edited" not in err


def test_run_plan_refuses_an_edited_plan_unless_forced_and_records_the_override(edited_plan):
    path, claimed = edited_plan
    code, _, err = run("run", "plan", str(path), "-i", str(LAB), "--driver", "sim", "-y")
    assert code == 2, err
    assert "edited since it was made" in err and claimed in err and "--force" in err
    code, _, err = run(
        "run",
        "plan",
        str(path),
        "-i",
        str(LAB),
        "--driver",
        "sim",
        "-y",
        "--no-progress",
        "--force",
    )
    assert code == 0, err
    assert "--force overrides" in err and claimed in err
    code, out, err = run("runs", "show", "last", "-f", "json")
    assert code == 0, err
    shown = json.dumps(json.loads(out))
    assert "edited since it was made" in shown and claimed in shown


# --- 3. picture and output paths, --start -----------------------------------------------------


@pytest.mark.parametrize("option", ["--gantt", "-o"])
def test_a_file_in_a_missing_folder_is_bad_input_before_the_plan_is_printed(state, option):
    code, out, err = run(
        "plan", "upgrade", "-i", str(LAB), "--to", "ussuri", option, "/nonexistdir/x.png"
    )
    assert code == 2, err
    assert out == ""  # not the tree first
    assert "/nonexistdir" in err and "does not exist" in err


def test_an_output_that_is_a_folder_is_bad_input(state, tmp_path):
    code, out, err = run("plan", "upgrade", "-i", str(LAB), "--to", "ussuri", "-o", str(tmp_path))
    assert code == 2 and out == ""
    assert "directory" in err


def test_start_without_gantt_is_said_to_be_ignored(state):
    code, out, err = run(
        "plan", "upgrade", "-i", str(LAB), "--to", "ussuri", "--start", "2026-12-01T22:00Z"
    )
    assert code == 0, err
    assert "--start is ignored without --gantt" in err
    assert out  # the plan is still printed


# --- 4. BMC passwords in a nodes file others can read -----------------------------------------


@pytest.fixture
def readable_nodes(state, tmp_path) -> Path:
    path = tmp_path / "new-servers.json"
    shutil.copy(LAB / "new-servers.json", path)
    path.chmod(0o644)
    assert "pm_password" in path.read_text()
    return path


@pytest.mark.parametrize("command", ["plan", "run"])
def test_a_readable_nodes_file_with_bmc_passwords_is_refused(readable_nodes, state, command):
    extra = ["--driver", "sim", "-y", "--no-progress"] if command == "run" else []
    code, out, err = run(
        command, "scale-out", "-i", str(LAB), "--nodes", str(readable_nodes), *extra
    )
    assert code == 2, err
    assert str(readable_nodes) in err and "0644" in err and "chmod 600" in err
    assert out == "" and not (state / "logs").exists()
    readable_nodes.chmod(0o600)
    code, _, err = run(command, "scale-out", "-i", str(LAB), "--nodes", str(readable_nodes), *extra)
    assert code == 0, err


def test_a_readable_nodes_file_without_passwords_is_fine(tmp_path):
    from lifecycle.formats.nodes_file import load_nodes_file

    path = tmp_path / "fake.json"
    path.write_text(json.dumps({"nodes": [{"name": "n1", "pm_type": "fake-hardware"}]}))
    path.chmod(0o644)
    assert [n.name for n in load_nodes_file(path)[0]] == ["n1"]


# --- 5. validate counts refusals as refusals --------------------------------------------------


def test_validate_counts_refusals_apart_from_warnings(tmp_path):
    case = str(case_dir("evacuation-target", tmp_path))
    code, out, err = run("validate", "-i", case)
    assert code == 0, err  # the inventory is valid; plan and run are what refuse
    refusals = [line for line in out.splitlines() if line.strip().startswith("refusal:")]
    warnings = [line for line in out.splitlines() if line.strip().startswith("warning:")]
    assert refusals
    assert out.splitlines()[-1] == (
        f"ok: {len(warnings)} warning(s), {len(refusals)} refusal(s)"
        " (plan and run refuse them unless --force)"
    )


def test_validate_json_gives_findings_as_objects(tmp_path):
    case = str(case_dir("evacuation-target", tmp_path))
    code, out, err = run("validate", "-i", case, "-f", "json")
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data["warnings"], list)
    refused = [f for f in data["findings"] if f["refused"]]
    assert refused and refused[0]["severity"] == "refusal"
    assert refused[0]["subject"] == "aggregate gpu"
    assert set(refused[0]) == {"severity", "subject", "message", "remedy", "refused"}


# --- 6. plan verify's verdict for a script ----------------------------------------------------


@pytest.fixture
def unsafe_plan(state, tmp_path) -> Path:
    """The lab plan with every upgrade step hung on the precheck only: many members of each
    quorum store go down together (well over 20 violations)."""
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.formats.plan_json import plan_to_json
    from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
    from tests.unit.plan_surgery import rebuild, rewire

    plan = plan_upgrade(load_inventory(LAB), UpgradeIntent("ussuri"))
    changes = [rewire(s.id, "precheck/cluster") for s in plan.steps if s.id.startswith("upgrade/")]
    path = tmp_path / "unsafe.json"
    path.write_text(plan_to_json(rebuild(plan, *changes)))
    return path


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_plan_verify_gives_an_unsafe_verdict_on_stdout(unsafe_plan, fmt):
    import yaml

    code, out, err = run("plan", "verify", "-i", str(LAB), str(unsafe_plan), "-f", fmt)
    assert code == 3, err
    data = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert data["safe"] is False
    assert len(data["violations"]) > 20
    first = data["violations"][0]
    assert set(first) == {"rule", "step", "message", "time"}
    assert isinstance(first["time"], float) and first["rule"]


def test_plan_verify_text_is_cut_at_20_unless_verbose(unsafe_plan):
    code, out, err = run("plan", "verify", "-i", str(LAB), str(unsafe_plan))
    assert code == 3 and out == ""
    listed = [line for line in err.splitlines() if line.startswith("  - ")]
    assert len(listed) == 20 and "more (`lifecycle -v ...` lists them all)" in err
    code, _, err = run("-v", "plan", "verify", "-i", str(LAB), str(unsafe_plan))
    assert code == 3
    total = int(err.split("plan refused: ")[1].split()[0])
    assert len([line for line in err.splitlines() if line.startswith("  - ")]) == total > 20


# --- 7. one error paragraph; the run's log records in its log file ----------------------------


def test_a_locked_cluster_is_said_once_and_logged_in_the_runs_log(state):
    from lifecycle.execution.lock import ClusterLock

    state.mkdir(parents=True)
    with ClusterLock(state / "lab.lock", "lab", "lab-other-run"):
        code, _, err = upgrade("--driver", "sim")
    assert code == 4, err
    assert "ERROR lifecycle.run" not in err
    assert err.count("is busy: run lab-other-run") == 1
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    (log,) = (state / "logs").glob("*.log")
    assert "stopped by RunLocked" in log.read_text()


def test_resume_of_a_finished_run_prints_one_error(state):
    assert upgrade("--driver", "sim")[0] == 0
    code, _, err = run("resume", "last")
    assert code == 4, err
    assert "lifecycle.run" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1


def test_the_runs_records_reach_the_console_only_with_v_and_never_under_the_live_display():
    import logging

    from lifecycle.execution.runlog import LIVE_DISPLAY, for_console

    record = logging.LogRecord("lifecycle.run", logging.WARNING, "x", 0, "run-stopping", (), None)
    other = logging.LogRecord("lifecycle.drivers", logging.WARNING, "x", 0, "m", (), None)
    assert not for_console(record, verbose=False)
    assert for_console(record, verbose=True)
    assert for_console(other, verbose=False)
    LIVE_DISPLAY.set()
    try:
        assert not for_console(record, verbose=True)
    finally:
        LIVE_DISPLAY.clear()


def test_a_run_stopping_warning_is_not_glued_onto_the_live_display(state, monkeypatch):
    """A live sim run stopped by a failed step: the frame, not `WARNING lifecycle.run`."""
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", "fail:upgrade/galera/ctl-1:9")
    code, _, err = upgrade("--driver", "sim", "--progress")
    assert code == 4, err
    assert "FAILED upgrade/galera/ctl-1" in err  # the live display's own line
    assert "WARNING lifecycle.run" not in err and "ERROR lifecycle.run" not in err


def _frame_text(simulated: bool) -> str:
    import time

    from rich.console import Console

    from lifecycle.execution.progress import Tracker, render_frame
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade

    plan = plan_upgrade(load_inventory(LAB), UpgradeIntent("ussuri"))
    console = Console(record=True, width=120, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(render_frame(Tracker(plan).snapshot(time.time()), simulated))
    return console.export_text()


def test_the_live_displays_head_says_simulated_for_a_sim_run():
    assert _frame_text(True).splitlines()[0].startswith("SIMULATED")
    assert "SIMULATED" not in _frame_text(False)


# --- 8. stdout closed early -------------------------------------------------------------------


def test_a_closed_stdout_is_not_an_error_of_the_run(state, tmp_path):
    """`lifecycle run ... | head -2`: the reader is gone before the report is written."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # every write to stdout fails with EPIPE, as after `head` has exited
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    args = ["run", "upgrade", "-i", str(LAB), "--to", "ussuri", "--driver", "sim", "-y"]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "lifecycle", *args, "--no-progress"],
            stdout=write,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    assert done.returncode == 0, done.stderr
    assert "BrokenPipe" not in done.stderr and "Traceback" not in done.stderr
    assert "error:" not in done.stderr


# --- 9. the docs say the truth; abort's "no" ---------------------------------------------------


def test_abort_answered_no_says_the_run_was_left_as_it_was(state, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", "fail:upgrade/galera/ctl-1:9")
    assert upgrade("--driver", "sim")[0] == 4
    code, _, err = run("abort", "last", input="n\n")
    assert code == 130
    assert "abort cancelled: run lab-" in err and "left as it was" in err
    assert "aborted" not in err and "error:" not in err


def test_resume_of_an_unknown_run_exits_2_as_the_docs_say(state):
    code, _, err = run("resume", "no-such-run")
    assert code == 2, err
    text = (ROOT / "docs" / "exit-codes.md").read_text()
    bad_input = next(line for line in text.splitlines() if line.startswith("| 2 |"))
    refused = next(line for line in text.splitlines() if line.startswith("| 4 |"))
    assert "unknown run id" in bad_input and "unknown run id" not in refused


def test_the_step_state_table_lists_every_step_state():
    from lifecycle.execution.states import StepState

    text = (ROOT / "docs" / "running.md").read_text()
    table = text.split("| step state | meaning |")[1].split("\n\n")[0]
    for state in StepState:
        assert f"| `{state.value}` |" in table, state


def test_the_fault_example_names_no_step_counts():
    """The counts depend on the lab and the catalog: the example says how to read them instead."""
    import re

    text = (ROOT / "docs" / "running.md").read_text()
    example = text.split("## Rehearsing a failure")[1].split("```")[0]
    assert not re.search(r"\b\d+ steps\b", example)


def test_bad_sim_faults_are_bad_input_before_a_run_is_recorded(state, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", "explode:everything")
    code, _, err = upgrade("--driver", "sim")
    assert code == 2, err
    assert "LIFECYCLE_SIM_FAULTS" in err and "lifecycle.run" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert not (state / "logs").exists()


def test_a_null_mapping_key_reads_as_yaml_reads_it():
    """`?` (found by the fuzz test of the unit lane): a null key is not a sequence's marker."""
    import yaml

    from lifecycle.formats.yaml_source import parse_text

    for text in ("?", "? \n: 1\n", "a: [?]\n"):
        assert parse_text(text, "x.yaml").data == yaml.safe_load(text), text
