"""Workbook export: the task graph is the plan DAG exactly, acyclic; policies and digest kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.cli.main import main
from lifecycle.errors import DependencyCycle
from lifecycle.execution.policies import PolicyTable
from lifecycle.formats.inventory import load_inventory
from lifecycle.mistral.export import (
    WORKFLOW,
    check_acyclic,
    export_plan,
    plan_to_workbook,
    task_graph,
)
from lifecycle.planning.actions import make_step
from lifecycle.planning.plan import Plan
from lifecycle.planning.scheduler import build_plan
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from tests.unit.cluster_factory import lab_like

ROOT = Path(__file__).resolve().parents[2]


def dag(plan: Plan) -> set[tuple[str, str]]:
    return {(parent, step.id) for step in plan.steps for parent in step.depends_on}


def tasks_of(workbook: dict) -> dict:
    return workbook["workflows"][WORKFLOW]["tasks"]


def assert_faithful(plan: Plan) -> None:
    text = export_plan(plan, inventory="inv", drivers="sim")
    workbook = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    tasks = tasks_of(workbook)
    assert list(tasks) == [s.id for s in plan.steps]  # one task per step, none added
    edges = task_graph(workbook)
    assert edges == dag(plan)
    check_acyclic(edges)
    for step in plan.steps:
        task = tasks[step.id]
        assert (task.get("join") == "all") == (len(step.depends_on) > 1)
        assert task["input"]["step"]["id"] == step.id
        assert task["safe-rerun"] is step.idempotent


PLANS = {
    "demo train->ussuri": lambda: plan_upgrade(
        load_inventory(ROOT / "tests/data/demo-train"), UpgradeIntent("ussuri")
    ),
    "demo train->wallaby, ceph": lambda: plan_upgrade(
        load_inventory(ROOT / "tests/data/demo-train"), UpgradeIntent("wallaby", "pacific")
    ),
    "lab train->ussuri": lambda: plan_upgrade(
        load_inventory(ROOT / "inventories/lab"), UpgradeIntent("ussuri")
    ),
    "lab-like 40 nodes train->victoria": lambda: plan_upgrade(
        lab_like(), UpgradeIntent("victoria")
    ),
}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_upgrade_workbooks_keep_the_plan_dag_exactly(name: str) -> None:
    assert_faithful(PLANS[name]())


@st.composite
def random_plans(draw: st.DrawFn) -> Plan:
    """Random DAGs over random actions, scheduled by the real scheduler."""
    n = draw(st.integers(1, 40))
    actions = ["checks.health", "ansible.playbook", "compute.evacuate", "baremetal.deploy"]
    steps = []
    for i in range(n):
        parents = draw(st.sets(st.integers(0, i - 1), max_size=4)) if i else set()
        steps.append(
            make_step(
                f"s{i}/x@n{i % 3}",
                draw(st.sampled_from(actions)),
                "p",
                {"release": "ussuri"},
                nodes=(f"n{i % 3}",),
                depends_on=tuple(f"s{p}/x@n{p % 3}" for p in sorted(parents)),
                duration=float(draw(st.integers(1, 100))),
                idempotent=draw(st.booleans()),
            )
        )
    return build_plan("test", "c", steps)


@settings(max_examples=30, deadline=None)
@given(random_plans())
def test_any_plan_dag_survives_export(plan: Plan) -> None:
    assert_faithful(plan)


def test_a_cycle_is_named() -> None:
    with pytest.raises(DependencyCycle, match="->"):
        check_acyclic({("a", "b"), ("b", "c"), ("c", "a"), ("x", "a")})
    check_acyclic({("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")})


def test_policies_follow_the_engine_table() -> None:
    plan = PLANS["demo train->ussuri"]()
    table = PolicyTable()
    tasks = tasks_of(plan_to_workbook(plan, policies=table))
    for step in plan.steps:
        task = tasks[step.id]
        attempts = table.for_step(step).attempts
        assert task["timeout"] >= table.timeout(step)
        if step.idempotent and attempts > 1:
            assert task["retry"]["count"] == attempts - 1
            assert task["retry"]["delay"] >= table.backoff(step, 1)
        else:
            assert "retry" not in task  # a non-idempotent step is never re-run blindly
    health = next(s for s in plan.steps if s.action == "checks.health")
    assert tasks[health.id]["action"] == "lifecycle.checks"  # gates are tasks like any other


def test_time_scale_shrinks_policies_for_sim_runs() -> None:
    plan = PLANS["demo train->ussuri"]()
    fast = tasks_of(plan_to_workbook(plan, policies=PolicyTable(time_scale=0.001)))
    slow = tasks_of(plan_to_workbook(plan))
    gate = next(s.id for s in plan.steps if s.action == "checks.health")
    assert fast[gate]["retry"]["delay"] < slow[gate]["retry"]["delay"]


def test_digest_and_inputs_are_embedded() -> None:
    plan = PLANS["demo train->ussuri"]()
    workbook = yaml.safe_load(export_plan(plan, inventory="/srv/inv/demo", drivers="testbed"))
    assert plan.digest in workbook["description"]
    assert f"digest:{plan.digest}" in workbook["tags"]
    inputs = {k: v for item in workbook["workflows"][WORKFLOW]["input"] for k, v in item.items()}
    assert inputs["plan_digest"] == plan.digest
    assert inputs["inventory"] == "/srv/inv/demo"
    assert inputs["drivers"] == "testbed"
    assert workbook["name"].endswith(plan.digest.split(":")[1][:12])


def test_secrets_never_reach_the_workbook() -> None:
    from lifecycle.formats.secrets import load_secrets

    cluster = load_inventory(ROOT / "tests/data/demo-train")
    secrets = load_secrets(cluster).values()
    assert secrets
    text = export_plan(plan_upgrade(cluster, UpgradeIntent("ussuri")), inventory="x")
    assert not [s for s in secrets if s in text]


@pytest.mark.parametrize(
    ("name", "where"), [("demo", "tests/data/demo-train"), ("lab", "inventories/lab")]
)
def test_committed_workbooks_match_a_fresh_export(name: str, where: str) -> None:
    """workflows/ is regenerated with `lifecycle export mistral -i inventories/NAME --to ussuri
    --driver cloud --executor-inventory inventories/NAME -o workflows/NAME-upgrade-ussuri.yaml`."""
    cluster = load_inventory(ROOT / where)
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"))
    fresh = export_plan(plan, inventory=where)
    committed = (ROOT / "workflows" / f"{name}-upgrade-ussuri.yaml").read_text()
    assert committed == fresh, (
        f"workflows/{name}-upgrade-ussuri.yaml drifted from the planner; re-export it: lifecycle"
        f" export mistral -i {where} --to ussuri --driver cloud"
        f" --executor-inventory {where}"
        f" -o workflows/{name}-upgrade-ussuri.yaml"
    )


def test_cli_writes_a_workbook(tmp_path: Path) -> None:
    out = tmp_path / "wb.yaml"
    code = main(["export", "mistral", "-i", str(ROOT / "tests/data/demo-train"), "--to", "ussuri",
                 "-o", str(out)])  # fmt: skip
    assert code == 0
    workbook = yaml.safe_load(out.read_text())
    inputs = {k: v for item in workbook["workflows"][WORKFLOW]["input"] for k, v in item.items()}
    assert inputs["inventory"] == str((ROOT / "tests/data/demo-train").resolve())


def test_cli_exports_a_plan_file(tmp_path: Path) -> None:
    from lifecycle.formats.plan_json import plan_to_json

    plan = PLANS["demo train->ussuri"]()
    (tmp_path / "plan.json").write_text(plan_to_json(plan))
    out = tmp_path / "wb.yaml"
    argv = ["export", "mistral", "-i", str(ROOT / "tests/data/demo-train"),
            "--plan", str(tmp_path / "plan.json"), "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert task_graph(yaml.safe_load(out.read_text())) == dag(plan)


@pytest.mark.parametrize(
    "argv",
    [
        ["--to", "ussuri", "--plan", "p.json"],  # both
        [],  # neither
        ["--to", "nosuch"],
        ["--plan", "/nonexistent/plan.json"],
    ],
)
def test_cli_bad_input_exits_2(argv: list[str], tmp_path: Path, capsys) -> None:
    code = main(["export", "mistral", "-i", str(ROOT / "tests/data/demo-train"), *argv,
                 "-o", str(tmp_path / "x.yaml")])  # fmt: skip
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err
