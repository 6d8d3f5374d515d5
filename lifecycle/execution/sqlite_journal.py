"""The SQLite journal: one WAL database per cluster, mode 0600, one transaction per write call.

Durability: WAL with synchronous=FULL (the default) survives the loss of power as well as the death
of the process, at the cost of an fsync per transaction; synchronous=NORMAL survives kill -9 only.
bench/bench_engine.py measures both. FULL is the default; LIFECYCLE_JOURNAL_SYNC=NORMAL trades the
power-loss guarantee for speed where fsync is slow.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lifecycle.errors import UsageError
from lifecycle.execution.journal import Journal
from lifecycle.execution.records import (
    AuditRecord,
    Control,
    RunRecord,
    RunTransition,
    StepTransition,
)
from lifecycle.execution.states import RunState, StepState

ENV_SYNC = "LIFECYCLE_JOURNAL_SYNC"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, cluster TEXT NOT NULL, operation TEXT NOT NULL, created REAL NOT NULL,
    plan TEXT NOT NULL, plan_digest TEXT NOT NULL, inventory_digest TEXT NOT NULL,
    intent TEXT NOT NULL, inventory TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS step_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, step_id TEXT NOT NULL,
    ts REAL NOT NULL, state TEXT NOT NULL, attempt INTEGER NOT NULL, output TEXT, error TEXT,
    hosts TEXT, not_before REAL);
CREATE INDEX IF NOT EXISTS step_events_run ON step_events (run_id, seq);
CREATE TABLE IF NOT EXISTS run_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, ts REAL NOT NULL,
    state TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS controls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, ts REAL NOT NULL,
    command TEXT NOT NULL, who TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, ts REAL NOT NULL,
    user TEXT NOT NULL, host TEXT NOT NULL, command TEXT NOT NULL, overrides TEXT NOT NULL);
"""


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _private_file(path: Path) -> None:
    """Create the file (and its directory) readable by the owner only, before SQLite opens it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


class SqliteJournal(Journal):
    """A journal in one SQLite file (WAL mode). Safe to share between threads of one process and
    between processes (SQLite locking); `pause`/`abort` from another process write here too."""

    def __init__(self, path: str | Path, synchronous: str | None = None) -> None:
        synchronous = (synchronous or os.environ.get(ENV_SYNC) or "FULL").upper()
        if synchronous not in ("NORMAL", "FULL", "EXTRA"):
            raise UsageError.at(ENV_SYNC, "", f"NORMAL, FULL or EXTRA, not {synchronous!r}")
        self.path = Path(path)
        _private_file(self.path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(SCHEMA)
        for suffix in ("-wal", "-shm"):
            side = Path(str(self.path) + suffix)
            if side.exists():
                os.chmod(side, 0o600)

    def _write(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def create_run(self, run: RunRecord) -> None:
        row = (
            run.id,
            run.cluster,
            run.operation,
            run.created,
            run.plan_json,
            run.plan_digest,
            run.inventory_digest,
            _dump(run.intent),
            _dump(run.inventory),
        )
        self._write("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?)", [row])

    def record_steps(self, transitions: Sequence[StepTransition]) -> None:
        rows = [
            (
                t.run_id,
                t.step_id,
                t.ts,
                t.state.value,
                t.attempt,
                _dump(t.output),
                t.error,
                _dump(t.hosts),
                t.not_before,
            )
            for t in transitions
        ]
        self._write(
            "INSERT INTO step_events (run_id, step_id, ts, state, attempt, output, error, hosts,"
            " not_before) VALUES (?,?,?,?,?,?,?,?,?)",
            rows,
        )

    def record_run(self, transition: RunTransition) -> None:
        row = (transition.run_id, transition.ts, transition.state.value, transition.reason)
        self._write("INSERT INTO run_events (run_id, ts, state, reason) VALUES (?,?,?,?)", [row])

    def add_control(self, run_id: str, command: str, ts: float, who: str = "") -> Control:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO controls (run_id, ts, command, who) VALUES (?,?,?,?)",
                (run_id, ts, command, who),
            )
            seq = int(cur.lastrowid or 0)
        return Control(seq, run_id, command, ts, who)

    def controls(self, run_id: str, after: int = 0) -> list[Control]:
        rows = self._read(
            "SELECT seq, run_id, command, ts, who FROM controls WHERE run_id=? AND seq>?"
            " ORDER BY seq",
            (run_id, after),
        )
        return [Control(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def add_audit(self, record: AuditRecord) -> None:
        row = (
            record.run_id,
            record.ts,
            record.user,
            record.host,
            record.command,
            _dump(record.overrides),
        )
        self._write(
            "INSERT INTO audit (run_id, ts, user, host, command, overrides) VALUES (?,?,?,?,?,?)",
            [row],
        )

    def audit(self, run_id: str) -> list[AuditRecord]:
        rows = self._read(
            "SELECT run_id, ts, user, host, command, overrides FROM audit WHERE run_id=?"
            " ORDER BY seq",
            (run_id,),
        )
        return [AuditRecord(r[0], r[1], r[2], r[3], r[4], _load(r[5])) for r in rows]

    def find_run(self, run_id: str) -> RunRecord | None:
        rows = self._read("SELECT * FROM runs WHERE id=?", (run_id,))
        return _run(rows[0]) if rows else None

    def runs(self) -> list[RunRecord]:
        return [_run(r) for r in self._read("SELECT * FROM runs ORDER BY created")]

    def step_transitions(self, run_id: str) -> Iterator[StepTransition]:
        rows = self._read(
            "SELECT step_id, ts, state, attempt, output, error, hosts, not_before"
            " FROM step_events WHERE run_id=? ORDER BY seq",
            (run_id,),
        )
        states = {s.value: s for s in StepState}
        loads = json.loads
        for step_id, ts, state, attempt, output, error, hosts, not_before in rows:
            yield StepTransition(
                run_id,
                step_id,
                states[state],
                ts,
                attempt,
                None if output is None else loads(output),
                error,
                None if hosts is None else loads(hosts),
                not_before,
            )

    def run_transitions(self, run_id: str) -> list[RunTransition]:
        rows = self._read(
            "SELECT run_id, state, ts, reason FROM run_events WHERE run_id=? ORDER BY seq",
            (run_id,),
        )
        return [RunTransition(r[0], RunState(r[1]), r[2], r[3]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _run(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        id=row[0],
        cluster=row[1],
        operation=row[2],
        created=row[3],
        plan_json=row[4],
        plan_digest=row[5],
        inventory_digest=row[6],
        intent=_load(row[7]),
        inventory=_load(row[8]),
    )
