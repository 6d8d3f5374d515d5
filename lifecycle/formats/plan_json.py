"""The plan's JSON form: a contract read by checks outside the project (see DESIGN.md)."""

from __future__ import annotations

import hashlib
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
    tail: dict[str, Any] = {
        "inventory_digest": plan.inventory_digest,
        "makespan": _round(plan.makespan),
        "lower_bound": _round(plan.lower_bound),
        "steps": [step_to_dict(s, t) for s, t in plan.scheduled()],
    }
    if not with_digest:
        return {**out, **tail}
    # the digest is of this very body without it: compute it here once, for Plan.digest as well
    cached = plan.__dict__
    if "digest" not in cached:
        cached["digest"] = digest_of({**out, **tail})
    return {**out, "digest": cached["digest"], **tail}


def plan_to_json(plan: Plan, indent: int | None = 1) -> str:
    """The plan's JSON text: `json.dumps(plan_to_dict(plan), indent=indent)`, byte for byte."""
    body = plan_to_dict(plan)
    if indent is None:
        return json.dumps(body)
    try:
        return _indented(body, "", " " * indent)
    except _Unusual:
        return json.dumps(body, indent=indent)


# json.dumps with `indent` runs the pure-Python encoder (~4x slower than the C one); a plan's JSON
# is mostly lists of strings, which this writer encodes with the C string encoder in one pass.
_encode = getattr(json.encoder, "c_encode_basestring_ascii", None) or (
    json.encoder.encode_basestring_ascii
)


class _Unusual(Exception):
    """A value json.dumps would write its own way (non-string keys, other types)."""


def _indented(value: Any, pad: str, step: str) -> str:
    """`json.dumps(value, indent=len(step))` for str/int/float/bool/None, lists and str-keyed
    dicts; raises _Unusual otherwise."""
    if isinstance(value, str):
        return str(_encode(value))
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    inner = pad + step
    comma = ",\n" + inner
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        try:
            body = comma.join(map(_encode, value))  # the common case: a list of strings
        except TypeError:
            body = comma.join([_indented(v, inner, step) for v in value])
        return f"[\n{inner}{body}\n{pad}]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        parts = []
        for key, item in value.items():
            if type(key) is not str:
                raise _Unusual
            kind = type(item)  # the usual leaves inline: a 10k-step plan has ~100k of them
            if kind is str:
                text = _encode(item)
            elif kind is list and item and type(item[0]) is str:
                text = _strings(item, inner + step, pad=inner)
            else:
                text = _indented(item, inner, step)
            parts.append(f"{_encode(key)}: {text}")
        return f"{{\n{inner}{comma.join(parts)}\n{pad}}}"
    raise _Unusual


def _strings(items: list[Any], inner: str, pad: str) -> str:
    """A list that starts with a string: all strings (one pass in C), else item by item."""
    try:
        body = (",\n" + inner).join(map(_encode, items))
    except TypeError:
        return _indented(items, pad, inner[len(pad) :])
    return f"[\n{inner}{body}\n{pad}]"


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def digest_of(body: dict[str, Any]) -> str:
    """sha256 of a plan body's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


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
