"""Any plan as a Mistral v2 workbook (YAML): one workflow, one task per step.

Why a *direct* workflow with `join: all`, not a reverse one with `requires`:
- a reverse workflow runs only what one target task (`task_name`) needs; a plan has several sinks
  (a health gate per aggregate, the postcheck), so it would need a synthetic sink task that is not
  a step, while a direct workflow runs every task with no target to name;
- Mistral accepts a reverse workflow whose `requires` form a cycle (it does not check them);
  a direct workflow's transitions are checked here (`task_graph` + `check_acyclic`) and the run
  follows them literally, in the order an operator reads in the workbook;
- on a failed task a direct workflow starts nothing downstream and ends in ERROR, which is the
  embedded engine's stop at a safe point; `mistral task-rerun` resumes it from the failed task.

The DAG is kept exactly: step S's dependents are S's `on-success` list, and a step with more than
one dependency has `join: all` (it starts when all of them succeeded). No edge is added or removed,
so `task_graph(workbook) == plan DAG` (a unit test checks it for every generated workbook).

Policies mirror the engine's PolicyTable: `retry` (count = attempts - 1, delay = the first backoff:
Mistral's delay is fixed, the engine's grows) only for idempotent steps, `timeout` in seconds,
`safe-rerun` = the step's idempotence (Mistral may re-run it after an executor died). Concurrency
limits (quorum, `max_unavailable`, Ceph failure domains) are edges of the plan DAG, so they are
kept with it; the engine's one-step-per-node rule is kept by the actions' node locks (see
actions.py); the engine's worker count corresponds to Mistral's executor pool.
Health gates are `checks.health` steps, hence tasks like any other.

The plan digest is in the workbook's description, tags, and the workflow's `plan_digest` input
(passed to every action and published in the output), so a run ties back to its plan.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import yaml

from lifecycle.errors import DependencyCycle
from lifecycle.execution.policies import PolicyTable
from lifecycle.formats.plan_json import step_to_dict
from lifecycle.mistral.actions import ACTION_NAMES, SIM_ACTION
from lifecycle.planning.plan import Plan, Step

WORKFLOW = "run_plan"


def workbook_name(plan: Plan) -> str:
    """`lifecycle_<cluster>_<operation>_<first 12 hex of the digest>`: one per plan."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", f"{plan.cluster}_{plan.operation}")
    return f"lifecycle_{safe}_{plan.digest.split(':')[-1][:12]}"


def action_for(step: Step, sim: bool = False) -> str:
    """The registered Mistral action that runs a step."""
    if sim:
        return SIM_ACTION
    return ACTION_NAMES.get(step.driver, f"lifecycle.{step.driver}")


def _policies(step: Step, table: PolicyTable) -> dict[str, Any]:
    out: dict[str, Any] = {"timeout": math.ceil(table.timeout(step))}
    attempts = table.for_step(step).attempts
    if step.idempotent and attempts > 1:
        out["retry"] = {"count": attempts - 1, "delay": math.ceil(table.backoff(step, 1))}
    out["safe-rerun"] = step.idempotent
    return out


def _task(
    step: Step, start: float, dependents: list[str], table: PolicyTable, sim: bool
) -> dict[str, Any]:
    task: dict[str, Any] = {
        "action": action_for(step, sim),
        "input": {
            "step": step_to_dict(step, start),
            "inventory": "<% $.inventory %>",
            "run_id": "<% $.run_id %>",
            "drivers": "<% $.drivers %>",
            "driver_options": "<% $.driver_options %>",
            "plan_digest": "<% $.plan_digest %>",
            "lock_dir": "<% $.lock_dir %>",
        },
    }
    if len(step.depends_on) > 1:
        task["join"] = "all"
    task.update(_policies(step, table))
    if dependents:
        task["on-success"] = dependents
    return task


def plan_to_workbook(
    plan: Plan,
    *,
    inventory: str = "",
    drivers: str = "cloud",
    policies: PolicyTable | None = None,
    sim: bool = False,
) -> dict[str, Any]:
    """The workbook as data. `inventory` and `drivers` are the workflow inputs' defaults (the
    path as the executors see it; sim | testbed | cloud); `sim` sends every task to
    lifecycle.sim."""
    table = policies or PolicyTable()
    dependents: dict[str, list[str]] = {s.id: [] for s in plan.steps}
    for step in plan.steps:
        for parent in step.depends_on:
            dependents[parent].append(step.id)
    tasks = {
        step.id: _task(step, start, dependents[step.id], table, sim)
        for step, start in plan.scheduled()
    }
    workflow = {
        "type": "direct",
        "description": f"{plan.operation} of {plan.cluster}: {len(plan.steps)} steps",
        "input": [
            {"inventory": inventory},
            {"run_id": "mistral"},
            {"drivers": drivers},
            {"driver_options": {}},
            {"plan_digest": plan.digest},
            {"lock_dir": ""},
        ],
        "output": {"plan_digest": "<% $.plan_digest %>", "run_id": "<% $.run_id %>"},
        "tasks": tasks,
    }
    return {
        "version": "2.0",
        "name": workbook_name(plan),
        "description": (
            f"lifecycle {plan.operation} {plan.cluster} {plan.source} -> {plan.target}; "
            f"plan {plan.digest}"
        ),
        "tags": ["lifecycle", f"cluster:{plan.cluster}", f"digest:{plan.digest}"],
        "workflows": {WORKFLOW: workflow},
    }


def workbook_yaml(workbook: Mapping[str, Any]) -> str:
    """Stable YAML text (insertion order kept: tasks in the plan's topological order)."""
    header = "---\n# generated by `lifecycle export mistral`; do not edit, re-export\n"
    # libyaml's emitter (PyYAML's wheels ship it) is ~10x faster than the pure-Python one
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return header + yaml.dump(dict(workbook), Dumper=dumper, sort_keys=False, width=100)


def export_plan(plan: Plan, **options: Any) -> str:
    """The plan as workbook YAML text, checked acyclic and equal to the plan's DAG."""
    workbook = plan_to_workbook(plan, **options)
    edges = task_graph(workbook)
    check_acyclic(edges)
    expected = {(p, s.id) for s in plan.steps for p in s.depends_on}
    if edges != expected:  # a bug in this module, never input
        raise AssertionError(f"workbook edges differ from the plan: {edges ^ expected}")
    return workbook_yaml(workbook)


# --- reading a workbook back: the checks tests and `export` run ------------------------------


def _targets(transitions: Any) -> list[str]:
    """Task names of an on-success/on-error/on-complete clause (strings or {name: condition})."""
    if transitions is None:
        return []
    items = transitions if isinstance(transitions, list) else [transitions]
    names: list[str] = []
    for item in items:
        names.extend(item.keys() if isinstance(item, dict) else [str(item)])
    return names


def task_graph(workbook: Mapping[str, Any], workflow: str = WORKFLOW) -> set[tuple[str, str]]:
    """Every edge (parent, child) of a direct workflow, from its transitions."""
    tasks = workbook["workflows"][workflow]["tasks"]
    edges = set()
    for name, task in tasks.items():
        for clause in ("on-success", "on-error", "on-complete"):
            for child in _targets(task.get(clause)):
                if child not in tasks:
                    raise AssertionError(f"task {name} goes to unknown task {child}")
                edges.add((name, child))
    return edges


def check_acyclic(edges: set[tuple[str, str]]) -> None:
    """Raise DependencyCycle naming one cycle of the graph, if there is one."""
    import networkx as nx

    graph = nx.DiGraph(edges)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    raise DependencyCycle([a for a, _ in cycle])
