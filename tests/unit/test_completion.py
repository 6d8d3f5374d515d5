"""Shell completion (docs/completion.md): release names and run ids complete on Tab."""

from __future__ import annotations

import pytest
from click.shell_completion import BashComplete

from lifecycle.cli.main import cli
from lifecycle.execution.paths import journal_path
from lifecycle.execution.runs import start_run
from lifecycle.execution.sqlite_journal import SqliteJournal
from tests.unit.test_engine_support import small_cluster, upgrade_plan


def completions(args: list[str], incomplete: str) -> list[str]:
    shell = BashComplete(cli, {}, "lifecycle", "_LIFECYCLE_COMPLETE")
    return [item.value for item in shell.get_completions(args, incomplete)]


@pytest.mark.parametrize(
    "command", [["plan", "upgrade"], ["run", "upgrade"], ["export", "mistral"]]
)
def test_release_names_complete_for_to(command: list[str]) -> None:
    found = completions([*command, "-i", "inventories/lab", "--to"], "202")
    assert "2024.1" in found and "2026.1" in found
    assert "train" not in found


def test_code_names_complete_in_any_case_and_ceph_has_its_own_train() -> None:
    assert completions(["plan", "upgrade", "-i", "x", "--to"], "CAR") == ["caracal"]
    assert completions(["plan", "upgrade", "-i", "x", "--ceph-to"], "pa") == ["pacific"]


def test_run_ids_complete_newest_first_from_the_state_dir(tmp_path, monkeypatch) -> None:
    cluster = small_cluster("lab")
    journal = SqliteJournal(journal_path(tmp_path, "lab"))
    for run_id, created in (("lab-old", 1.0), ("lab-new", 2.0)):
        start_run(journal, upgrade_plan(cluster), cluster, {}, run_id, clock=lambda c=created: c)
    journal.close()
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(tmp_path))
    for command in (["resume"], ["runs", "show"], ["pause"], ["abort"]):
        assert completions(command, "lab-") == ["lab-new", "lab-old"]
    assert completions(["resume"], "lab-o") == ["lab-old"]
    monkeypatch.delenv("LIFECYCLE_STATE_DIR")
    assert completions(["runs", "show", "--state-dir", str(tmp_path)], "") == [
        "last",
        "lab-new",
        "lab-old",
    ]


def test_run_id_completion_is_silent_where_there_is_no_state(tmp_path, monkeypatch) -> None:
    missing = tmp_path / "none"
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(missing))
    assert completions(["resume"], "") == []
    assert not missing.exists()  # completing never creates the state directory
