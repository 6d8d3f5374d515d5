"""The plan's JSON form: a contract read by checks outside the project (see DESIGN.md)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lifecycle.errors import InputError, Problem
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
    if indent is None:
        return json.dumps(plan_to_dict(plan))
    return "".join(plan_json_chunks(plan, indent))


def plan_json_chunks(plan: Plan, indent: int = 1) -> Iterator[str]:
    """`plan_to_json(plan, indent)` in pieces, one a step, to be written as they come: the text
    of a 50,000-node plan is ~30 MB, and joined, copied by `+ "\n"` and encoded whole it was
    the command's peak of memory (~90 MB more than these pieces, as measured by the scale work)."""
    return body_chunks(plan_to_dict(plan), indent)


def body_chunks(body: dict[str, Any], indent: int = 1) -> Iterator[str]:
    """`json.dumps(body, indent=indent)` in pieces: one a top-level key, one a list item."""
    if not body:
        yield "{}"
        return
    step = " " * indent
    yield "{"
    for i, (key, value) in enumerate(body.items()):
        yield f"{',' if i else ''}\n{step}{_encode_key(key)}: "
        if type(value) is list and value:  # the steps
            inner = step + step
            for j, item in enumerate(value):
                yield f"{'[' if j == 0 else ','}\n{inner}{_indented_any(item, inner, step)}"
            yield f"\n{step}]"
        else:
            yield _indented_any(value, step, step)
    yield "\n}"


def _encode_key(key: object) -> str:
    if type(key) is not str:  # the plan's own keys are strings; json.dumps would convert others
        return str(json.dumps({key: 0})[1:-4])
    return str(_encode(key))


def _indented_any(value: Any, pad: str, step: str) -> str:
    """`_indented`, or json.dumps's own text re-indented where it finds a value it does not
    write (the same bytes: json.dumps puts each nested line at newline + indent x level)."""
    try:
        return _indented(value, pad, step)
    except _Unusual:
        return json.dumps(value, indent=len(step)).replace("\n", "\n" + pad)


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
                text = _string_list(item, inner + step, pad=inner)
            elif kind is float:  # a step's start and duration
                text = _float(item)
            elif kind is bool:
                text = "true" if item else "false"
            elif kind is list and not item:
                text = "[]"
            else:
                text = _indented(item, inner, step)
            parts.append(f"{_encode(key)}: {text}")
        return f"{{\n{inner}{comma.join(parts)}\n{pad}}}"
    raise _Unusual


def _string_list(items: list[Any], inner: str, pad: str) -> str:
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
    """sha256 of a plan body's canonical JSON (sorted keys, no spaces): `json.dumps(body,
    sort_keys=True, separators=(",", ":"))`, hashed a step at a time rather than made whole
    (~20 MB of text and as much again encoded, for a 50,000-node plan)."""
    digest = hashlib.sha256()
    for chunk in _canonical_chunks(body):
        digest.update(chunk.encode())
    return "sha256:" + digest.hexdigest()


_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def _canonical_chunks(body: dict[str, Any]) -> Iterator[str]:
    """The canonical text of `body` in pieces: its keys sorted, each list item of its own."""
    if any(type(key) is not str for key in body):  # not a plan body: json.dumps sorts its way
        yield _canonical(body)
        return
    yield "{"
    for i, key in enumerate(sorted(body)):
        value = body[key]
        yield f"{',' if i else ''}{_canonical(key)}:"
        if type(value) is list and value:
            for j, item in enumerate(value):
                yield ("," if j else "[") + _canonical(item)
            yield "]"
        else:
            yield _canonical(value)
    yield "}"


# --- loading: every plan that comes in (hand-edited files, the journal, Mistral tasks) --------
#
# A plan is input like the inventory: every mistake is a Problem naming the file, the step and the
# field (exit 2), never a KeyError from deep in the verifier. The checks here are the plan's own
# shape; `plan_check` checks its names against a cluster and the catalog.

_TOP_REQUIRED = ("operation", "cluster", "from", "to", "lower_bound", "steps")
_TOP_KEYS = frozenset({*_TOP_REQUIRED, "format", "digest", "inventory_digest", "makespan"})
_STEP_REQUIRED = ("id", "action", "phase", "start", "duration")
_STEP_LISTS = ("nodes", "upgrades", "disrupts", "depends_on")
_STEP_KEYS = frozenset({*_STEP_REQUIRED, *_STEP_LISTS, "idempotent", "batch", "params"})
_SHOWN = 25  # problems listed before "and N more": one bad edit can touch every step


class _Problems:
    """Collects what is wrong with one plan document."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[Problem] = []

    def add(self, field: str, expected: str) -> None:
        self.found.append(Problem(self.source, field, expected))

    def raise_if_any(self, text: str | None) -> None:
        if not self.found:
            return
        problems = self.found[:_SHOWN]
        problems = with_lines(problems, text)
        if len(self.found) > _SHOWN:
            more = len(self.found) - _SHOWN
            problems.append(Problem(self.source, "", f"... and {more} more problem(s)"))
        raise InputError(problems)


def with_lines(problems: list[Problem], text: str | None) -> list[Problem]:
    """The problems with the line of their field: the text is parsed again for lines only when
    something is wrong, so that loading a good 10,000-node plan stays one json.loads."""
    from lifecycle.formats.yaml_source import parse_text

    if text is None or not problems:
        return problems
    try:
        source = parse_text(text, problems[0].file, json_fallback=False)
    except InputError:  # JSON that YAML 1.1 will not read: no lines, the fields still say where
        return problems
    return [Problem(p.file, p.field, p.expected, source.line(p.field)) for p in problems]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# Each check takes the step's field path and the key apart and joins them only on a problem:
# a good 10,000-node plan is checked at a small cost over json.loads.


def _seconds(out: _Problems, at: str, key: str, value: object, what: str) -> float:
    """A time in seconds: a finite number >= 0 (JSON has no NaN; Python's json reads one)."""
    if not _is_number(value):
        out.add(_join(at, key), f"{what}: a number of seconds (it is {_kind(value)})")
        return 0.0
    assert isinstance(value, int | float)
    if value < 0:
        out.add(_join(at, key), f"{what}: a number of seconds >= 0 (it is {value})")
        return 0.0
    return float(value)


def _join(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key


def _kind(value: object) -> str:
    from lifecycle.formats.yaml_source import describe

    return describe(value) if not isinstance(value, float) else "not a finite number"


_STR = {str}


def _strings(out: _Problems, at: str, key: str, value: object, what: str) -> tuple[str, ...]:
    if type(value) is list and set(map(type, value)) <= _STR and "" not in value:
        return tuple(value)
    out.add(_join(at, key), f"{what}: a list of non-empty strings (it is {_kind(value)})")
    return ()


def _text(
    out: _Problems,
    at: str,
    key: str,
    value: object,
    what: str,
    null: bool = False,
    empty: bool = False,
) -> str | None:
    if isinstance(value, str) and (value or empty):
        return value
    if value is None and null:
        return None
    kind = "a string" if empty else "a non-empty string"
    out.add(_join(at, key), f"{what}: {kind}{' or null' if null else ''} (it is {_kind(value)})")
    return None


def _param_value(value: object) -> bool:
    if value is None or isinstance(value, str | bool) or _is_number(value):
        return True
    return type(value) is list and set(map(type, value)) <= _STR


def _params(out: _Problems, at: str, value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        out.add(_join(at, "params"), f"{what}: a mapping of parameters (it is {_kind(value)})")
        return {}
    for key, item in value.items():
        if not _param_value(item):
            out.add(f"{at}.params.{key}", f"{what}: a string, number, boolean, null or string list")
    return value


def _step(out: _Problems, index: int, raw: object) -> tuple[Step, float] | None:
    at = f"steps[{index}]"
    if not isinstance(raw, dict):
        out.add(at, f"a step, a mapping (it is {_kind(raw)})")
        return None
    sid = raw.get("id")
    what = f"step {sid}" if isinstance(sid, str) and sid else f"step #{index + 1}"
    before = len(out.found)
    for key in _STEP_REQUIRED:
        if key not in raw:
            out.add(f"{at}.{key}", f"{what}: the field {key} (missing)")
    for key in sorted(raw.keys() - _STEP_KEYS):
        out.add(f"{at}.{key}", f"{what}: one of {', '.join(sorted(_STEP_KEYS))} (unknown key)")
    if len(out.found) > before:
        return None
    sid = _text(out, at, "id", raw["id"], what)
    action = _text(out, at, "action", raw["action"], what)
    phase = _text(out, at, "phase", raw["phase"], what)
    lists = {k: _strings(out, at, k, raw.get(k, []), what) for k in _STEP_LISTS}
    start = _seconds(out, at, "start", raw["start"], what)
    duration = _seconds(out, at, "duration", raw["duration"], what)
    params = _params(out, at, raw.get("params", {}), what)
    idempotent = raw.get("idempotent", True)
    if not isinstance(idempotent, bool):
        out.add(f"{at}.idempotent", f"{what}: true or false (it is {_kind(idempotent)})")
    batch = _text(out, at, "batch", raw.get("batch"), what, null=True)
    if len(out.found) > before or sid is None or action is None or phase is None:
        return None
    step = Step(
        id=sid,
        action=action,
        phase=phase,
        **lists,
        duration=duration,
        params=freeze_params(params),
        idempotent=idempotent,
        batch=batch,
    )
    return step, start


def _dependencies(out: _Problems, raw_steps: list[Any], steps: list[tuple[int, Step]]) -> None:
    """Unique ids, and every dependency names a step listed before it (a plan's steps are in
    dependency order, which also rules out cycles: the engine would wait forever on one). A step
    that is wrong in another field still counts as present, so one mistake is reported once."""
    position: dict[str, int] = {}
    for index, raw in enumerate(raw_steps):
        sid = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(sid, str):
            continue
        if sid in position:
            out.add(f"steps[{index}].id", f"step {sid}: a unique id (also steps[{position[sid]}])")
        else:
            position[sid] = index
    for index, step in steps:
        for i, dep in enumerate(step.depends_on):
            at = position.get(dep)
            if at is None or at >= index:
                why = (
                    "no step"
                    if at is None
                    else "a step listed later (steps are in dependency order)"
                )
                out.add(f"steps[{index}].depends_on[{i}]", f"step {step.id}: {dep} is {why}")


def _top(out: _Problems, data: dict[str, Any]) -> None:
    for key in _TOP_REQUIRED:
        if key not in data:
            out.add(key, f"the field {key} (missing)")
    if "format" in data and data["format"] != FORMAT_VERSION:
        out.add("format", f"{FORMAT_VERSION}, the plan format this lifecycle reads")
    for key in ("operation", "cluster"):  # empty in the one-step wrapper Mistral tasks use
        if key in data:
            _text(out, "", key, data[key], "the plan", empty=True)
    for key in ("from", "to"):
        if key in data:
            _text(out, "", key, data[key], "the plan", null=True)
    if "inventory_digest" in data:
        _text(out, "", "inventory_digest", data["inventory_digest"], "the plan", empty=True)
    for key in ("lower_bound", "makespan"):
        if key in data:
            _seconds(out, "", key, data[key], "the plan")
    for key in sorted(set(data) - _TOP_KEYS):
        if not _param_value(data[key]):
            out.add(key, "a string, number, boolean, null or string list")


def plan_from_dict(data: Any, source: str = "plan", text: str | None = None) -> Plan:
    """Rebuild a plan from its JSON form (the journal stores plans this way).

    `source` names the file in messages; `text`, when given, is the document the data came from,
    read again for line numbers only if something is wrong. Raises InputError (exit 2) listing
    every problem: missing fields, wrong types, negative or non-finite times, ids that are not
    unique, dependencies on no step or on a later one."""
    out = _Problems(source)
    if not isinstance(data, dict):
        out.add("", f"a plan, a JSON object (it is {_kind(data)})")
        out.raise_if_any(None)
    _top(out, data)
    raw_steps = data.get("steps", [])
    if not isinstance(raw_steps, list):
        out.add("steps", f"a list of steps (it is {_kind(raw_steps)})")
        raw_steps = []
    parsed = [(i, _step(out, i, raw)) for i, raw in enumerate(raw_steps)]
    good = [(i, found) for i, found in parsed if found is not None]
    _dependencies(out, raw_steps, [(i, step) for i, (step, _) in good])
    out.raise_if_any(text)
    extra = freeze_params({k: v for k, v in data.items() if k not in _TOP_KEYS})
    return Plan(
        operation=data["operation"],
        cluster=data["cluster"],
        source=data["from"],
        target=data["to"],
        steps=tuple(step for _, (step, _) in good),
        starts=tuple(start for _, (_, start) in good),
        lower_bound=float(data["lower_bound"]),
        inventory_digest=data.get("inventory_digest", ""),
        extra=extra,
    )


def step_from_dict(raw: Any, source: str = "step") -> tuple[Step, float]:
    """One step and its start from its plan-JSON form, shape only (its dependencies belong to a
    plan this step is not shown with: a Mistral task's input). Raises InputError."""
    out = _Problems(source)
    found = _step(out, 0, raw)
    out.raise_if_any(None)
    assert found is not None
    return found


def plan_from_json(text: str, source: str = "plan") -> Plan:
    """A plan from JSON text; InputError (exit 2) names `source`, the line and the field."""
    return plan_and_claim_from_json(text, source)[0]


def plan_and_claim_from_json(text: str, source: str = "plan") -> tuple[Plan, str | None]:
    """A plan from JSON text and the digest its `digest` field claims (None without one: a
    hand-written plan). InputError (exit 2) as plan_from_json."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError.at(source, "", f"valid JSON ({exc.msg})", exc.lineno) from exc
    except RecursionError as exc:
        raise InputError.at(source, "", "valid JSON (nested too deeply)") from exc
    claimed = data.get("digest") if isinstance(data, dict) else None
    return plan_from_dict(data, source, text), claimed if isinstance(claimed, str) else None


def plan_from_own_json(text: str, digest: str, source: str = "plan") -> Plan:
    """A plan from JSON text lifecycle wrote itself (a journal's copy) and the digest recorded
    with it. When the text's canonical digest is `digest` (it is what plan_to_json wrote from a
    checked plan), the plan is built without plan_from_dict's field-by-field checks and its
    digest is known without building its JSON again (together ~0.3 s of a 10k-step resume);
    otherwise (edited since) it is plan_from_json's, its digest computed from its content, which
    the caller's comparison with `digest` then refuses. InputError (exit 2) as plan_from_json."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return plan_from_json(text, source)  # says what is wrong, with the line
    if not isinstance(data, dict) or digest_of(_without_digest(data)) != digest:
        return plan_from_json(text, source)
    try:
        plan = _trusted_plan(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        return plan_from_json(text, source)  # a shape only the checks explain
    plan.__dict__["digest"] = digest  # Plan.digest's cache: the canonical text's digest
    return plan


def _without_digest(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key != "digest"}


def _trusted_plan(data: dict[str, Any]) -> Plan:
    """plan_from_dict's plan for a body plan_to_dict made (the same fields and defaults)."""
    steps, starts = [], []
    for raw in data["steps"]:
        params = raw.get("params")
        steps.append(
            Step(
                id=raw["id"],
                action=raw["action"],
                phase=raw["phase"],
                nodes=tuple(raw.get("nodes", ())),
                upgrades=tuple(raw.get("upgrades", ())),
                disrupts=tuple(raw.get("disrupts", ())),
                depends_on=tuple(raw.get("depends_on", ())),
                duration=float(raw["duration"]),
                params=freeze_params(params) if params else (),
                idempotent=raw.get("idempotent", True),
                batch=raw.get("batch"),
            )
        )
        starts.append(float(raw["start"]))
    return Plan(
        operation=data["operation"],
        cluster=data["cluster"],
        source=data["from"],
        target=data["to"],
        steps=tuple(steps),
        starts=tuple(starts),
        lower_bound=float(data["lower_bound"]),
        inventory_digest=data.get("inventory_digest", ""),
        extra=freeze_params({k: v for k, v in data.items() if k not in _TOP_KEYS}),
    )


def load_plan_file(path: str | Path) -> Plan:
    """The plan in the JSON file at `path` (what `lifecycle plan ... -f json` writes)."""
    return load_plan_file_claimed(path)[0]


def load_plan_file_claimed(path: str | Path) -> tuple[Plan, str | None]:
    """The plan in the JSON file at `path` and the digest its `digest` field claims."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError.at(str(path), "", f"UTF-8 text (byte {exc.start} is not)") from exc
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or exc.__class__.__name__
        raise InputError.at(str(path), "", f"a readable plan JSON file ({why})") from exc
    return plan_and_claim_from_json(text, str(path))


def edited_since_made(plan: Plan, claimed: str | None) -> str | None:
    """What to say about a plan file whose `digest` field is not its content's digest
    (someone edited the plan after `lifecycle plan` wrote it), else None (also for a file
    without a digest). The caller names the file."""
    if claimed is None or claimed == plan.digest:
        return None
    return (
        f"edited since it was made: the digest in the file is {claimed}, its content's is"
        f" {plan.digest}; the change request's digest no longer identifies this plan"
    )
