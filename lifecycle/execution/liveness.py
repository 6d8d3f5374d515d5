"""Runs that died: a run the journal says is running but whose lock no process holds.

The cluster lock (lifecycle.execution.lock) is an fcntl lock the kernel drops when its process
dies, even by kill -9 or a reboot, so "recorded as running and nobody holds the lock for it" means
the process is gone: the run is shown as `interrupted` (resume or abort it). Unfinished runs
(running, interrupted, paused, needs-operator) keep a new run of the same cluster from starting;
failed and aborted runs are finished (a failed run may still be resumed while no other run has
started since).
"""

from __future__ import annotations

from pathlib import Path

from lifecycle.errors import RunLocked
from lifecycle.execution.journal import Journal
from lifecycle.execution.lock import holder
from lifecycle.execution.paths import journal_path, lock_path
from lifecycle.execution.states import RunState

INTERRUPTED = "interrupted"
UNFINISHED = ("running", INTERRUPTED, "paused", "needs-operator")


def shown_state(root: Path, cluster: str, run_id: str, state: RunState) -> str:
    """The state to show: `interrupted` for a running run no live process holds."""
    if state is RunState.RUNNING and holder(lock_path(root, cluster)) != run_id:
        return INTERRUPTED
    return state.value


def unfinished_runs(
    root: Path, cluster: str, journal: Journal | None = None
) -> list[tuple[str, str]]:
    """(run id, shown state) of every unfinished run of `cluster`, oldest first. Pass the
    process's open `journal` when it has one: opening a second connection to the same SQLite
    file and closing it drops the first one's POSIX locks (a close(2) drops them all)."""
    from lifecycle.execution.sqlite_journal import SqliteJournal

    if journal is not None:
        return _unfinished(root, cluster, journal)
    path = journal_path(root, cluster)
    if not path.exists():
        return []
    mine = SqliteJournal(path)
    try:
        return _unfinished(root, cluster, mine)
    finally:
        mine.close()


def _unfinished(root: Path, cluster: str, journal: Journal) -> list[tuple[str, str]]:
    out = []
    for record in sorted(journal.runs(), key=lambda r: (r.created, r.id)):
        transitions = journal.run_transitions(record.id)
        state = transitions[-1].state if transitions else RunState.RUNNING
        shown = shown_state(root, cluster, record.id, state)
        if shown in UNFINISHED:
            out.append((record.id, shown))
    return out


def refuse_unfinished(root: Path, cluster: str, journal: Journal | None = None) -> None:
    """RunLocked (exit 4) naming the unfinished run(s) of `cluster` and what to do with each."""
    found = unfinished_runs(root, cluster, journal)
    if not found:
        return
    lines = [f"cluster {cluster} is busy: a new run would start beside its unfinished run:"]
    for run_id, state in found:
        if state == "running":
            todo = f"wait for it, `lifecycle pause {run_id}` or `lifecycle abort {run_id}`"
        else:
            todo = f"`lifecycle resume {run_id}` to finish it, or `lifecycle abort {run_id}`"
            todo += " to give it up (then plan again: only what is left is planned)"
        lines.append(f"  run {run_id} is {state}: {todo}")
    raise RunLocked("\n".join(lines))
