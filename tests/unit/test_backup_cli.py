"""`lifecycle backup`, `backups list|show|verify`, `plan recover`, `run recover` end to end on the
sim driver (in-process, zero-length steps): real files, real checksums, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifecycle.cli.main import main
from lifecycle.drivers.sim import SimDriver

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


def backup(capsys) -> dict:
    code, _, err = cli(capsys, "backup", "-i", str(DEMO), "--driver", "sim", "-y", "--no-progress")
    assert code == 0, err
    code, out, _ = cli(capsys, "backups", "list", "-i", str(DEMO), "-f", "json")
    assert code == 0
    return json.loads(out)[-1]


def observed_file(capsys, tmp_path: Path, galera: list[dict], name: str) -> str:
    """The sim's observation with Galera down and the members' positions as given."""
    code, out, _ = cli(capsys, "status", "-i", str(DEMO), "--driver", "sim", "-f", "json")
    assert code == 0
    data = json.loads(out)
    data["galera"] = galera
    for store in data["stores"]:
        if store["service"] == "galera":
            store.update(quorum=False, members=[], health="down")
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def positions(uuid: str, *seqnos: int | None) -> list[dict]:
    return [
        {"node": f"ctl-{i}", "uuid": uuid, "seqno": -1, "recovered": s}
        for i, s in enumerate(seqnos)
    ]


def test_backup_lists_verifies_and_detects_a_changed_file(state, capsys) -> None:
    row = backup(capsys)
    assert row["cluster"] == "demo" and row["files"] > 0 and row["galera"]
    directory = state / "backups" / "demo" / row["id"]
    assert (directory / "state" / "journal.db").is_file()  # the run history
    assert (directory / "state" / "cluster.yaml").is_file()
    code, out, _ = cli(capsys, "backups", "verify", row["id"], "-i", str(DEMO))
    assert code == 0 and "intact" in out
    code, out, _ = cli(capsys, "backups", "show", row["id"], "-i", str(DEMO), "-f", "json")
    assert code == 0 and json.loads(out)["id"] == row["id"]
    (directory / "rabbitmq" / "definitions.json").write_text('{"users": ["x"]}')
    code, _, err = cli(capsys, "backups", "verify", row["id"], "-i", str(DEMO))
    assert code == 1 and "rabbitmq/definitions.json" in err


def test_an_unknown_backup_id_exits_2_naming_it(state, capsys, tmp_path) -> None:
    backup(capsys)
    code, _, err = cli(capsys, "backups", "verify", "demo-nope", "-i", str(DEMO))
    assert code == 2 and "'demo-nope'" in err
    crash = observed_file(capsys, tmp_path, positions("u" * 8, 5, 6, 7), "crash.json")
    code, _, err = cli(
        capsys, "plan", "recover", "-i", str(DEMO), "--observed", crash, "--backup", "demo-nope"
    )
    assert code == 2 and "'demo-nope'" in err


def test_plan_recover_refuses_an_unknown_position_unless_forced(state, capsys, tmp_path) -> None:
    uuid = "6f4c1f2e-0000-11ee-8000-000000000001"
    crash = observed_file(capsys, tmp_path, positions(uuid, 10, 12, None), "crash.json")
    code, _, err = cli(capsys, "plan", "recover", "-i", str(DEMO), "--observed", crash)
    assert code == 3 and "galera@ctl-2: position unknown" in err
    code, out, err = cli(
        capsys, "plan", "recover", "-i", str(DEMO), "--observed", crash, "--bootstrap", "ctl-1"
    )
    assert code == 0 and "overrides" in err and "recover/galera/bootstrap/ctl-1" in out


def test_run_recover_from_the_survivor_then_from_the_backup(state, capsys, tmp_path) -> None:
    taken = backup(capsys)
    uuid = taken["galera"].split(":")[0]
    crash = observed_file(capsys, tmp_path, positions(uuid, 10, 31, 20), "crash.json")
    code, out, err = cli(capsys, "plan", "recover", "-i", str(DEMO), "--observed", crash)
    assert code == 0 and "data lost: none: ctl-1" in err
    code, out, err = cli(
        capsys, "run", "recover", "-i", str(DEMO), "--observed", crash, "--driver", "sim", "-y"
    )
    assert code == 0, err
    empty = [{"node": f"ctl-{i}", "has_data": False} for i in range(3)]
    lost = observed_file(capsys, tmp_path, empty, "lost.json")
    code, out, err = cli(
        capsys, "run", "recover", "-i", str(DEMO), "--observed", lost, "--driver", "sim", "-y"
    )
    assert code == 0, err
    assert f"data lost: everything written after backup {taken['id']}" in err
    code, out, _ = cli(capsys, "runs", "list", "-f", "json")
    runs = json.loads(out)
    assert [r["operation"] for r in runs] == ["backup", "recover", "recover"]
    assert all(r["state"] == "succeeded" for r in runs)
    counts = SimDriver(state).counts("demo", runs[-1]["run"])
    assert counts["recover/galera/restore/ctl-0"] == 1


def test_a_failed_recovery_resumes_without_redoing_finished_steps(
    state, capsys, tmp_path, monkeypatch
) -> None:
    crash = observed_file(capsys, tmp_path, positions("ab" * 4, 3, 2, 1), "crash.json")
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", "fail:recover/galera/join/ctl-1:99")
    code, _, _ = cli(
        capsys, "run", "recover", "-i", str(DEMO), "--observed", crash, "--driver", "sim", "-y"
    )
    assert code == 4
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS")
    code, _, err = cli(capsys, "resume", "last")
    assert code == 0, err
    code, out, _ = cli(capsys, "runs", "list", "-f", "json")
    run = json.loads(out)[-1]["run"]
    counts = SimDriver(state).counts("demo", run)
    assert counts["recover/galera/bootstrap/ctl-0"] == 1  # bootstrapped once, not again
    assert counts["recover/galera/join/ctl-1"] == 1
    assert counts["recover/data-check"] == 1


def test_a_recovery_killed_mid_way_resumes_and_bootstraps_once(state, capsys, tmp_path) -> None:
    """kill -9 of lifecycle right after the bootstrap took effect (the sim's kill-after fault),
    then `resume`: the member is not bootstrapped a second time, the rest runs once."""
    import os
    import subprocess
    import sys

    crash = observed_file(capsys, tmp_path, positions("cd" * 4, 3, 9, 1), "crash.json")
    env = dict(os.environ, LIFECYCLE_SIM_FAULTS="kill-after:recover/galera/bootstrap/ctl-1")
    args = ["run", "recover", "-i", str(DEMO), "--observed", crash, "--driver", "sim", "-y"]
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle", *args, "--no-progress"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    code, _, err = cli(capsys, "resume", "last")
    assert code == 0, err
    code, out, _ = cli(capsys, "runs", "list", "-f", "json")
    (run,) = json.loads(out)
    assert run["state"] == "succeeded"
    counts = SimDriver(state).counts("demo", run["run"])
    assert counts["recover/galera/bootstrap/ctl-1"] == 1
    assert all(n == 1 for n in counts.values()), counts


def test_backup_observed_takes_a_synced_member_never_a_dead_one(state, capsys) -> None:
    backup(capsys)  # seeds the sim cloud
    sim_file = state / "sim" / "demo.json"
    data = json.loads(sim_file.read_text())
    data["dead"] = ["ctl-2"]  # the last member, the one a backup takes by default
    sim_file.write_text(json.dumps(data))
    code, _, err = cli(
        capsys, "backup", "-i", str(DEMO), "--driver", "sim", "-y", "--observe", "--no-progress"
    )
    assert code == 0, err
    code, out, _ = cli(capsys, "runs", "show", "last", "-f", "json")
    steps = {s["id"]: s for s in json.loads(out)["steps"]}
    assert "backup/galera/ctl-1" in steps and "backup/galera/ctl-2" not in steps
    assert "ctl-2" not in steps["backup/config"]["hosts"]  # a dead node is not asked either
    assert "ctl-0" in steps["backup/config"]["hosts"]


def test_a_damaged_backup_is_never_restored(state, capsys, tmp_path) -> None:
    """`backups verify` finds a changed file: recover refuses to restore that backup (exit 2,
    naming the file), before any step runs."""
    taken = backup(capsys)
    directory = state / "backups" / "demo" / taken["id"]
    (directory / "rabbitmq" / "definitions.json").write_text('{"users": ["x"]}')
    empty = [{"node": f"ctl-{i}", "has_data": False} for i in range(3)]
    lost = observed_file(capsys, tmp_path, empty, "lost.json")
    planned = cli(capsys, "plan", "recover", "-i", str(DEMO), "--observed", lost)
    ran = cli(
        capsys, "run", "recover", "-i", str(DEMO), "--observed", lost, "--driver", "sim", "-y"
    )
    for code, _, err in (planned, ran):
        assert code == 2, err
        assert "rabbitmq/definitions.json" in err and "intact backup" in err
    code, out, _ = cli(capsys, "runs", "list", "-f", "json")
    assert [r["operation"] for r in json.loads(out)] == ["backup"]  # nothing ran
