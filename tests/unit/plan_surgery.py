"""Tools to break plans on purpose: each verifier rule gets a plan that breaks exactly it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.scheduler import build_plan

Change = Callable[[list[Step]], list[Step]]


def rebuild(plan: Plan, *changes: Change) -> Plan:
    """The plan with its steps changed, rescheduled as soon as the new DAG allows."""
    steps = list(plan.steps)
    for change in changes:
        steps = change(steps)
    return build_plan(
        plan.operation,
        plan.cluster,
        steps,
        source=plan.source,
        target=plan.target,
        extra=plan.extra,
        lower_bound=plan.lower_bound,
    )


def rewire(step_id: str, *deps: str) -> Change:
    def change(steps: list[Step]) -> list[Step]:
        return [dataclasses.replace(s, depends_on=deps) if s.id == step_id else s for s in steps]

    return change


def drop(step_id: str) -> Change:
    """Remove a step; whoever depended on it inherits its dependencies."""

    def change(steps: list[Step]) -> list[Step]:
        gone = next(s for s in steps if s.id == step_id)
        out = []
        for s in steps:
            if s.id == step_id:
                continue
            if step_id in s.depends_on:
                deps = [d for d in s.depends_on if d != step_id] + list(gone.depends_on)
                s = dataclasses.replace(s, depends_on=tuple(dict.fromkeys(deps)))
            out.append(s)
        return out

    return change


def replace(step_id: str, **fields: object) -> Change:
    def change(steps: list[Step]) -> list[Step]:
        return [
            dataclasses.replace(s, **fields) if s.id == step_id else s  # type: ignore[arg-type]
            for s in steps
        ]

    return change


def unlink(step_id: str) -> Change:
    """Nobody waits for this step any more."""

    def change(steps: list[Step]) -> list[Step]:
        return [
            dataclasses.replace(s, depends_on=tuple(d for d in s.depends_on if d != step_id))
            for s in steps
        ]

    return change
