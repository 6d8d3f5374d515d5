"""Where runs live: a state directory with one journal database per cluster."""

from __future__ import annotations

import os
from pathlib import Path

from lifecycle.errors import ResumeRefused
from lifecycle.execution.sqlite_journal import SqliteJournal

ENV_STATE_DIR = "LIFECYCLE_STATE_DIR"


def state_dir_path(explicit: str | Path | None = None) -> Path:
    """--state-dir, else $LIFECYCLE_STATE_DIR, else ~/.local/state/lifecycle; not created."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_STATE_DIR):
        return Path(os.environ[ENV_STATE_DIR])
    return Path.home() / ".local" / "state" / "lifecycle"


def state_dir(explicit: str | Path | None = None) -> Path:
    """state_dir_path(explicit), created (mode 0700) if missing."""
    path = state_dir_path(explicit)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def journal_path(root: Path, cluster: str) -> Path:
    return root / f"{cluster}.db"


def lock_path(root: Path, cluster: str) -> Path:
    return root / f"{cluster}.lock"


def open_journal(root: Path, cluster: str) -> SqliteJournal:
    return SqliteJournal(journal_path(root, cluster))


def cluster_journals(root: Path) -> list[Path]:
    return sorted(root.glob("*.db"))


def locate_run(root: Path, run_id: str) -> SqliteJournal:
    """The journal holding `run_id` (run ids start with the cluster name, but every database is
    searched so that a cluster named like another's prefix cannot mislead)."""
    for path in cluster_journals(root):
        journal = SqliteJournal(path)
        if journal.find_run(run_id) is not None:
            return journal
        journal.close()
    raise ResumeRefused(f"no run {run_id!r} under {root} (see `lifecycle runs list`)")
