"""The journal interface and its in-memory backend (the SQLite one is in sqlite_journal.py).

A journal is append-only: runs, step transitions, run transitions, controls and audit records.
The state of a run is never stored as such; it is rebuilt by replaying the transitions
(see replay.py), so a crash at any moment leaves a journal that replays to a true state.
"""

from __future__ import annotations

import abc
import copy
import threading
from collections.abc import Iterator, Sequence

from lifecycle.errors import ResumeRefused
from lifecycle.execution.records import (
    AuditRecord,
    Control,
    RunRecord,
    RunTransition,
    StepTransition,
)


class Journal(abc.ABC):
    """Durable record of runs. Implementations must make each `record_*` call atomic."""

    @abc.abstractmethod
    def create_run(self, run: RunRecord) -> None:
        """Store a new run (its id must be new)."""

    @abc.abstractmethod
    def record_steps(self, transitions: Sequence[StepTransition]) -> None:
        """Append step transitions in one atomic write."""

    def record_step(self, transition: StepTransition) -> None:
        self.record_steps((transition,))

    @abc.abstractmethod
    def record_run(self, transition: RunTransition) -> None:
        """Append a run state change."""

    @abc.abstractmethod
    def add_control(self, run_id: str, command: str, ts: float, who: str = "") -> Control:
        """Leave a request (pause, abort) for the process running `run_id`."""

    @abc.abstractmethod
    def controls(self, run_id: str, after: int = 0) -> list[Control]:
        """Controls of a run with a sequence number above `after`, oldest first."""

    @abc.abstractmethod
    def add_audit(self, record: AuditRecord) -> None: ...

    @abc.abstractmethod
    def audit(self, run_id: str) -> list[AuditRecord]: ...

    @abc.abstractmethod
    def find_run(self, run_id: str) -> RunRecord | None: ...

    def run(self, run_id: str) -> RunRecord:
        found = self.find_run(run_id)
        if found is None:
            raise ResumeRefused(f"no run {run_id!r} in this journal")
        return found

    @abc.abstractmethod
    def runs(self) -> list[RunRecord]:
        """Every run, oldest first."""

    @abc.abstractmethod
    def step_transitions(self, run_id: str) -> Iterator[StepTransition]:
        """A run's step transitions in the order they were recorded."""

    @abc.abstractmethod
    def run_transitions(self, run_id: str) -> list[RunTransition]: ...

    def close(self) -> None:  # noqa: B027 (most backends hold nothing)
        """Release the backend."""


class MemoryJournal(Journal):
    """A journal that lives as long as the process: for tests, benchmarks and dry runs.

    Records are deep-copied in and out, as a real backend would serialise them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, RunRecord] = {}
        self._steps: dict[str, list[StepTransition]] = {}
        self._run_events: dict[str, list[RunTransition]] = {}
        self._controls: list[Control] = []
        self._audit: list[AuditRecord] = []

    def create_run(self, run: RunRecord) -> None:
        with self._lock:
            if run.id in self._runs:
                raise ValueError(f"run {run.id} exists")
            self._runs[run.id] = copy.deepcopy(run)
            self._steps[run.id] = []
            self._run_events[run.id] = []

    def record_steps(self, transitions: Sequence[StepTransition]) -> None:
        with self._lock:
            for t in transitions:
                self._steps[t.run_id].append(copy.deepcopy(t))

    def record_run(self, transition: RunTransition) -> None:
        with self._lock:
            self._run_events[transition.run_id].append(transition)

    def add_control(self, run_id: str, command: str, ts: float, who: str = "") -> Control:
        with self._lock:
            control = Control(len(self._controls) + 1, run_id, command, ts, who)
            self._controls.append(control)
            return control

    def controls(self, run_id: str, after: int = 0) -> list[Control]:
        with self._lock:
            return [c for c in self._controls if c.run_id == run_id and c.seq > after]

    def add_audit(self, record: AuditRecord) -> None:
        with self._lock:
            self._audit.append(copy.deepcopy(record))

    def audit(self, run_id: str) -> list[AuditRecord]:
        with self._lock:
            return [copy.deepcopy(a) for a in self._audit if a.run_id == run_id]

    def find_run(self, run_id: str) -> RunRecord | None:
        with self._lock:
            found = self._runs.get(run_id)
            return copy.deepcopy(found) if found else None

    def runs(self) -> list[RunRecord]:
        with self._lock:
            return sorted(self._runs.values(), key=lambda r: r.created)

    def step_transitions(self, run_id: str) -> Iterator[StepTransition]:
        with self._lock:
            items = list(self._steps.get(run_id, ()))
        for t in items:
            yield copy.deepcopy(t)

    def run_transitions(self, run_id: str) -> list[RunTransition]:
        with self._lock:
            return list(self._run_events.get(run_id, ()))
