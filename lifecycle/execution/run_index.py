"""Every run under a state directory, and what an operator may type for one: a full run id, a
unique prefix of one, or `last` (the most recently started run)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import UnknownRun
from lifecycle.execution.paths import cluster_journals
from lifecycle.execution.records import RunRecord
from lifecycle.execution.sqlite_journal import SqliteJournal

LAST = "last"


@dataclass(frozen=True)
class RunEntry:
    """One run and the journal database holding it."""

    record: RunRecord
    journal: Path


def all_runs(root: Path) -> list[RunEntry]:
    """Every run of every cluster journal under `root`, oldest first (by start time)."""
    found: list[RunEntry] = []
    for path in cluster_journals(root):
        journal = SqliteJournal(path)
        try:
            found += [RunEntry(record, path) for record in journal.runs()]
        finally:
            journal.close()
    return sorted(found, key=lambda e: (e.record.created, e.record.id))


def resolve_run(root: Path, ref: str) -> RunEntry:
    """The run `ref` names. Raises UnknownRun (exit 2) when nothing matches, saying where it
    looked, or when a prefix matches several runs, listing them."""
    runs = all_runs(root)
    if not runs:
        raise UnknownRun(
            f"no run {ref!r}: there is no run at all under {root} (the state directory:"
            " --state-dir or $LIFECYCLE_STATE_DIR)"
        )
    if ref.lower() == LAST:
        return runs[-1]
    exact = [e for e in runs if e.record.id == ref]
    if exact:
        return exact[0]
    matches = [e for e in runs if e.record.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = "\n  ".join(e.record.id for e in matches[:20])
        raise UnknownRun(
            f"run id {ref!r} is ambiguous: it starts {len(matches)} runs; give more of it:\n  "
            + names
        )
    raise UnknownRun(
        f"no run {ref!r} under {root}; see `lifecycle runs list`, or use `last` for the latest"
    )
