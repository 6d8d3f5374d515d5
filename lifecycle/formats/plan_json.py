"""The plan's JSON form: a contract read by checks outside the project (see DESIGN.md)."""

from __future__ import annotations

import json
from typing import Any

from lifecycle.planning.plan import Plan, Step, freeze_params

FORMAT_VERSION = 1


def _round(value: float) -> float:
    # always a float: 60 and 60.0 must give the same digest after a JSON round trip
    return round(float(value), 3)


def step_to_dict(step: Step, start: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": step.id,
        "action": step.action,
        "phase": step.phase,
        "nodes": list(step.nodes),
        "upgrades": list(step.upgrades),
        "disrupts": list(step.disrupts),
        "depends_on": list(step.depends_on),
        "start": _round(start),
        "duration": _round(step.duration),
        "idempotent": step.idempotent,
    }
    if step.batch is not None:
        out["batch"] = step.batch
    if step.params:
        out["params"] = {k: list(v) if isinstance(v, tuple) else v for k, v in step.params}
    return out


def plan_to_dict(plan: Plan, with_digest: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "operation": plan.operation,
        "cluster": plan.cluster,
        "from": plan.source,
        "to": plan.target,
    }
    out.update({k: list(v) if isinstance(v, tuple) else v for k, v in plan.extra})
    if with_digest:
        out["digest"] = plan.digest
    out["inventory_digest"] = plan.inventory_digest
    out["makespan"] = _round(plan.makespan)
    out["lower_bound"] = _round(plan.lower_bound)
    out["steps"] = [step_to_dict(s, t) for s, t in plan.scheduled()]
    return out


def plan_to_json(plan: Plan, indent: int | None = 1) -> str:
    return json.dumps(plan_to_dict(plan), indent=indent)


_TOP_KEYS = {
    "format",
    "operation",
    "cluster",
    "from",
    "to",
    "digest",
    "inventory_digest",
    "makespan",
    "lower_bound",
    "steps",
}


def plan_from_dict(data: dict[str, Any]) -> Plan:
    """Rebuild a plan from its JSON form (the journal stores plans this way)."""
    steps = []
    starts = []
    for raw in data["steps"]:
        steps.append(
            Step(
                id=raw["id"],
                action=raw["action"],
                phase=raw["phase"],
                nodes=tuple(raw["nodes"]),
                upgrades=tuple(raw["upgrades"]),
                disrupts=tuple(raw["disrupts"]),
                depends_on=tuple(raw["depends_on"]),
                duration=float(raw["duration"]),
                params=freeze_params(raw.get("params", {})),
                idempotent=bool(raw.get("idempotent", True)),
                batch=raw.get("batch"),
            )
        )
        starts.append(float(raw["start"]))
    extra = freeze_params({k: v for k, v in data.items() if k not in _TOP_KEYS})
    return Plan(
        operation=data["operation"],
        cluster=data["cluster"],
        source=data["from"],
        target=data["to"],
        steps=tuple(steps),
        starts=tuple(starts),
        lower_bound=float(data["lower_bound"]),
        inventory_digest=data.get("inventory_digest", ""),
        extra=extra,
    )


def plan_from_json(text: str) -> Plan:
    return plan_from_dict(json.loads(text))
