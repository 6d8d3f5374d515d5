"""What a run did and what is left: the report printed when a run ends and by `runs show`.

Times are ISO 8601 UTC strings (`2026-11-29T23:40:34Z`) and durations seconds, in the text and
in the JSON alike. A run on the sim driver is marked SIMULATED wherever it is shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lifecycle.execution.journal import Journal
from lifecycle.execution.replay import RunView
from lifecycle.execution.states import StepState

SIMULATED = "SIMULATED"


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC to the second, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_by_second() -> Callable[[float | None], str | None]:
    """`iso`, remembering each second it wrote: a 10k-step report writes ~20k times that fall
    in a few hundred seconds (datetime formatting was ~5% of a 10k-step resume)."""
    memo: dict[int, str | None] = {}

    def at(ts: float | None) -> str | None:
        if ts is None:
            return None
        second = math.floor(ts)  # what strftime's %S shows of ts
        if second not in memo:
            memo[second] = iso(second)
        return memo[second]

    return at


def duration(seconds: float | None) -> str:
    """`0:04:05` (h:mm:ss), `12.3s` under a minute, `-` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def is_simulated(intent: dict[str, Any]) -> bool:
    """A run is simulated when it ran on the sim driver (`simulated` is recorded since the
    driver stopped having a default; older runs only recorded `driver`)."""
    return bool(intent.get("simulated", intent.get("driver") == "sim"))


def report(view: RunView, journal: Journal | None = None) -> dict[str, Any]:
    """The run as data: its state and why, its times, and every step grouped by outcome."""
    by_state: dict[str, list[str]] = {s.value: [] for s in StepState}
    stamp = _iso_by_second()
    for sid, step in view.steps.items():
        by_state[step.state.value].append(sid)
    run = view.run
    plan = view.plan
    log = run.intent.get("log")
    out: dict[str, Any] = {
        "run": run.id,
        "cluster": run.cluster,
        "operation": run.operation,
        "from": plan.source,
        "to": plan.target,
        "driver": run.intent.get("driver"),
        "simulated": is_simulated(run.intent),
        "state": view.state.value,
        "reason": view.reason,
        "started": iso(run.created),
        "ended": iso(view.ended),
        "duration": round(view.ended - run.created, 3) if view.ended else None,
        "log": log,
        "plan_digest": run.plan_digest,
        "inventory_digest": run.inventory_digest,
        "intent": run.intent,
        "counts": {k: len(v) for k, v in by_state.items() if v},
        "done": by_state["succeeded"] + by_state["skipped"],
        "left": by_state["pending"]
        + by_state["retrying"]
        + by_state["running"]
        + by_state["interrupted"],
        "failed": [
            {
                "step": sid,
                "error": view.steps[sid].error,
                "hosts": view.steps[sid].hosts,
                "log": (view.steps[sid].output or {}).get("artifacts") or log,
            }
            for sid in by_state["failed"]
        ],
        "in_doubt": by_state["in-doubt"],
        "steps": [
            {
                "id": sid,
                "state": s.state.value,
                "attempts": s.attempts,
                "started": stamp(s.started),
                "ended": stamp(s.ended),
                "duration": round(s.ended - s.started, 3) if s.ended and s.started else None,
                "error": s.error,
                "output": s.output,
                "hosts": s.hosts,
            }
            for sid, s in view.steps.items()
        ],
    }
    if journal is not None:
        out["audit"] = [
            {
                "ts": iso(a.ts),
                "user": a.user,
                "host": a.host,
                "command": a.command,
                "overrides": a.overrides,
            }
            for a in journal.audit(run.id)
        ]
    return out


def headline(data: dict[str, Any]) -> str:
    """`run ID (upgrade of demo, train -> ussuri, SIMULATED): succeeded`."""
    moves = data.get("from") and data.get("to") and data["from"] != data["to"]
    change = f", {data['from']} -> {data['to']}" if moves else ""
    sim = f", {SIMULATED}" if data.get("simulated") else ""
    return (
        f"run {data['run']} ({data['operation']} of {data['cluster']}{change}{sim}):"
        f" {data['state']}"
    )


def render(data: dict[str, Any], steps: bool = False) -> str:
    """The report as text for a terminal; `steps` adds times, every step and the audit trail
    (`lifecycle runs show`)."""
    lines = [headline(data), f"  why: {data['reason']}" if data["reason"] else ""]
    if steps:
        lines += _times(data)
    lines.append("  steps: " + ", ".join(f"{n} {k}" for k, n in sorted(data["counts"].items())))
    for failed in data["failed"]:
        lines.append(f"  FAILED {failed['step']}: {failed['error']}")
        if failed.get("log"):
            lines.append(f"    log: {failed['log']}")
    for sid in data["in_doubt"]:
        lines.append(
            f"  IN DOUBT {sid}: decide with `lifecycle resume {data['run']} --accept {sid}`"
            f" (its effect is there) or `--rerun {sid}` (run it again)"
        )
    if data["left"]:
        head = ", ".join(data["left"][:8])
        more = f" and {len(data['left']) - 8} more" if len(data["left"]) > 8 else ""
        lines.append(f"  left: {head}{more}")
    if steps:
        lines += _step_lines(data) + _audit_lines(data)
    if data.get("simulated"):
        lines.append(f"  {SIMULATED}: the sim driver ran this plan; no host was touched")
    return "\n".join(line for line in lines if line)


def _times(data: dict[str, Any]) -> list[str]:
    driver = data.get("driver") or "-"
    return [
        f"  started: {data['started']}   ended: {data['ended'] or '-'}"
        f"   took: {duration(data.get('duration'))}",
        f"  driver: {driver}" + (f" ({SIMULATED})" if data.get("simulated") else ""),
        f"  log: {data['log']}" if data.get("log") else "",
    ]


def _step_lines(data: dict[str, Any]) -> list[str]:
    lines = ["  step times (start, duration, state, step):"]
    for s in data["steps"]:
        tries = f" (attempts {s['attempts']})" if s["attempts"] > 1 else ""
        lines.append(
            f"    {s['started'] or '-':<20} {duration(s['duration']):>8}"
            f"  {s['state']:<10} {s['id']}{tries}"
        )
    return lines


def _audit_lines(data: dict[str, Any]) -> list[str]:
    audit = data.get("audit") or []
    lines = ["  audit:"] if audit else []
    for a in audit:
        flags = {k: v for k, v in (a.get("overrides") or {}).items() if v}
        extra = f"  overrides: {flags}" if flags else ""
        lines.append(f"    {a['ts']} {a['user']}@{a['host']}: {a['command']}{extra}")
    return lines
