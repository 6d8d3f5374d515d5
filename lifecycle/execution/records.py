"""What the journal stores: runs, step and run transitions, operator controls, audit records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from lifecycle.execution.states import RunState, StepState


@dataclass(frozen=True)
class RunRecord:
    """A run as created: its plan (JSON text), digests and the intent it was planned from.

    `intent` holds what resume needs to plan again (operation parameters, inventory path, driver
    and options) and `inventory` a summary of the inventory used to say what changed."""

    id: str
    cluster: str
    operation: str
    created: float
    plan_json: str
    plan_digest: str
    inventory_digest: str
    intent: dict[str, Any] = field(default_factory=dict)
    inventory: dict[str, Any] = field(default_factory=dict)


class StepTransition(NamedTuple):
    """One step state change, with the attempt it belongs to and what the driver said.

    A NamedTuple rather than a frozen dataclass: resume reads tens of thousands of these and a
    tuple is several times cheaper to build (see bench/bench_engine.py)."""

    run_id: str
    step_id: str
    state: StepState
    ts: float
    attempt: int = 0
    output: dict[str, Any] | None = None
    error: str | None = None
    hosts: dict[str, Any] | None = None
    not_before: float | None = None  # RETRYING: earliest start of the next attempt


@dataclass(frozen=True)
class RunTransition:
    run_id: str
    state: RunState
    ts: float
    reason: str = ""


@dataclass(frozen=True)
class Control:
    """An operator's request to a live run (pause, abort), polled by the engine loop."""

    seq: int
    run_id: str
    command: str
    ts: float
    who: str = ""


@dataclass(frozen=True)
class AuditRecord:
    """Who did what to a run, from where, with what overrides (secrets already redacted)."""

    run_id: str
    ts: float
    user: str
    host: str
    command: str
    overrides: dict[str, Any] = field(default_factory=dict)
