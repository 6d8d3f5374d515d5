"""What a run did and what is left: the report printed when a run ends and by `runs show`."""

from __future__ import annotations

from typing import Any

from lifecycle.execution.journal import Journal
from lifecycle.execution.replay import RunView
from lifecycle.execution.states import StepState


def report(view: RunView, journal: Journal | None = None) -> dict[str, Any]:
    """The run as data: its state and why, and every step grouped by outcome."""
    by_state: dict[str, list[str]] = {s.value: [] for s in StepState}
    for sid, step in view.steps.items():
        by_state[step.state.value].append(sid)
    run = view.run
    out: dict[str, Any] = {
        "run": run.id,
        "cluster": run.cluster,
        "operation": run.operation,
        "state": view.state.value,
        "reason": view.reason,
        "plan_digest": run.plan_digest,
        "inventory_digest": run.inventory_digest,
        "intent": run.intent,
        "started": run.created,
        "ended": view.ended,
        "counts": {k: len(v) for k, v in by_state.items() if v},
        "done": by_state["succeeded"] + by_state["skipped"],
        "left": by_state["pending"]
        + by_state["retrying"]
        + by_state["running"]
        + by_state["interrupted"],
        "failed": [
            {"step": sid, "error": view.steps[sid].error, "hosts": view.steps[sid].hosts}
            for sid in by_state["failed"]
        ],
        "in_doubt": by_state["in-doubt"],
        "steps": [
            {
                "id": sid,
                "state": s.state.value,
                "attempts": s.attempts,
                "started": s.started,
                "ended": s.ended,
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
                "ts": a.ts,
                "user": a.user,
                "host": a.host,
                "command": a.command,
                "overrides": a.overrides,
            }
            for a in journal.audit(run.id)
        ]
    return out


def render(data: dict[str, Any], steps: bool = False) -> str:
    """The report as text for a terminal."""
    lines = [
        f"run {data['run']} ({data['operation']} of {data['cluster']}): {data['state']}",
        f"  why: {data['reason']}" if data["reason"] else "",
        "  steps: " + ", ".join(f"{n} {k}" for k, n in sorted(data["counts"].items())),
    ]
    for failed in data["failed"]:
        lines.append(f"  FAILED {failed['step']}: {failed['error']}")
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
        for s in data["steps"]:
            took = f" {s['ended'] - s['started']:.2f}s" if s["ended"] and s["started"] else ""
            lines.append(f"    {s['state']:<10} {s['id']} (attempts {s['attempts']}){took}")
    return "\n".join(line for line in lines if line)
