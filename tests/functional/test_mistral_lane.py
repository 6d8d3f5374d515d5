"""A real Mistral 23 (API, engine, executor, notifier) with RabbitMQ runs exported plans.

The service, its venv (cached) and the broker come from lifecycle.mistral.lane; the executor
imports this package through its `mistral.actions` entry points, so every task runs a real driver
(here the sim driver, whose state file is the cluster these tests look at).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lifecycle.drivers.sim import SimDriver, read_state
from lifecycle.execution.engine import Engine, EngineOptions
from lifecycle.execution.journal import MemoryJournal
from lifecycle.execution.policies import PolicyTable
from lifecycle.execution.routing import Router
from lifecycle.execution.runs import start_run
from lifecycle.execution.states import RunState, StepState
from lifecycle.formats.inventory import load_inventory
from lifecycle.mistral.client import MistralClient
from lifecycle.mistral.export import WORKFLOW, export_plan
from lifecycle.mistral.lane import RABBIT_BIN, MistralService, ensure_venv, running_mistral
from lifecycle.model.cluster import Cluster
from lifecycle.planning.actions import make_step
from lifecycle.planning.plan import Plan
from lifecycle.planning.scheduler import build_plan
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade

pytestmark = pytest.mark.mistral

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "inventories" / "demo")
FAST = PolicyTable(time_scale=0.01)  # retry delays of ~1 s instead of 30 s
COMPARED = ("versions", "instances", "disabled", "flags", "migrations", "dead")


@pytest.fixture(scope="module")
def mistral() -> Iterator[MistralService]:
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        pytest.skip("Debian's rabbitmq-server is not installed (.ci/lanes/mistral.sh installs it)")
    if os.geteuid() != 0:
        pytest.skip("the lane runs RabbitMQ as root under a temporary directory")
    with running_mistral() as service:
        yield service


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    return load_inventory(DEMO)


@pytest.fixture(scope="module")
def plan(cluster: Cluster) -> Plan:
    return plan_upgrade(cluster, UpgradeIntent("ussuri"))


@pytest.fixture(scope="module")
def workflow(mistral: MistralService, plan: Plan) -> str:
    """The demo upgrade, uploaded once (its DSL is checked by test_mistral_parses_...)."""
    text = export_plan(plan, inventory=DEMO, drivers="sim", policies=FAST)
    uploaded = mistral.client.put_workbook(text)
    return f"{uploaded['name']}.{WORKFLOW}"


_PARSE = """
import sys
from mistral.lang import parser
spec = parser.get_workbook_spec_from_yaml(sys.stdin.read(), validate=True)
for wf in spec.get_workflows():
    print(wf.get_name(), wf.get_type(), len(wf.get_tasks()))
"""


def sample_plan() -> Plan:
    """Every shape a task can take: each action kind, joins, retries, a non-idempotent step."""
    steps = [
        make_step("precheck/cluster", "checks.precheck", "precheck", {"release": "train"}),
        make_step("evacuate/cmp-0", "compute.evacuate", "data", {"mode": "live-migrate",
                  "aggregate": "hdd"}, nodes=("cmp-0",), depends_on=("precheck/cluster",)),
        make_step("deploy/new-0", "baremetal.deploy", "bm", {}, nodes=("new-0",),
                  depends_on=("precheck/cluster",), idempotent=False),
        make_step("upgrade/cmp-0", "ansible.playbook", "data", {"playbook": "upgrade-node",
                  "services": ["nova-compute"], "release": "ussuri"}, nodes=("cmp-0",),
                  depends_on=("evacuate/cmp-0", "deploy/new-0")),
        make_step("health/cmp-0", "checks.health", "data", {"services": ["nova-compute"],
                  "release": "ussuri"}, nodes=("cmp-0",), depends_on=("upgrade/cmp-0",)),
    ]  # fmt: skip
    return build_plan("sample", "demo", steps)


def test_mistral_parses_and_validates_exported_workbooks(mistral: MistralService) -> None:
    """Mistral's own DSL parser with schema and semantic checks (~0.5 s a task, hence a sample
    of every task shape rather than the 87-task demo; the unit tests prove all tasks alike)."""
    python = ensure_venv() / "bin" / "python"
    text = export_plan(sample_plan(), inventory=DEMO)
    done = subprocess.run(
        [str(python), "-c", _PARSE], input=text, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["run_plan", "direct", "5"]


def run(
    client: MistralClient, workflow: str, state: Path, run_id: str, **sim: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the uploaded demo workflow on the sim driver with its state under `state`."""
    inputs = {
        "inventory": DEMO,
        "run_id": run_id,
        "drivers": "sim",
        "driver_options": {"sim": {"state_dir": str(state), "scale": 0, **sim}},
        "lock_dir": str(state / "locks"),
    }
    execution_id = client.start(workflow, inputs)
    execution = client.wait(execution_id, timeout=300)
    return execution, {t.name: t for t in client.tasks(execution_id)}


def test_the_actions_are_registered(mistral: MistralService) -> None:
    names = set(mistral.client.actions())
    assert {"lifecycle.ansible_playbook", "lifecycle.checks", "lifecycle.compute"} <= names
    assert {"lifecycle.baremetal", "lifecycle.sim"} <= names


def test_demo_upgrade_runs_to_success_on_the_sim_driver(
    mistral: MistralService, workflow: str, plan: Plan, tmp_path: Path
) -> None:
    execution, tasks = run(mistral.client, workflow, tmp_path, "m1")
    assert execution["state"] == "SUCCESS", execution.get("state_info")
    assert set(tasks) == {s.id for s in plan.steps}
    assert {t.state for t in tasks.values()} == {"SUCCESS"}
    assert yaml.safe_load(execution["output"])["plan_digest"] == plan.digest
    state = read_state(tmp_path, "demo")
    assert {v for k, v in state["versions"].items() if not k.startswith("ceph")} == {"ussuri"}
    counts = SimDriver(state_dir=tmp_path).counts("demo", "m1")
    assert counts == {s.id: 1 for s in plan.steps}  # every step's effect applied exactly once
    gate = next(s.id for s in plan.steps if s.action == "checks.health")
    result = mistral.client.task(tasks[gate].id).result  # what the action returned
    assert (
        result["step"] == gate
        and result["ok"] is True
        and set(result["hosts"]) == set(plan.step(gate).nodes)
    )


def test_a_step_failing_beyond_its_retries_stops_the_run_and_rerun_resumes_it(
    mistral: MistralService, workflow: str, plan: Plan, tmp_path: Path
) -> None:
    step = next(s for s in plan.steps if s.action == "ansible.playbook" and s.depends_on)
    downstream = {s.id for s in plan.steps if step.id in s.depends_on}
    execution, tasks = run(mistral.client, workflow, tmp_path, "m3", faults=f"fail:{step.id}:2")
    assert execution["state"] == "ERROR"
    assert tasks[step.id].state == "ERROR"
    assert "injected failure 2 of 2" in (tasks[step.id].state_info or "")
    assert not downstream & set(tasks)  # nothing after the failed step started
    client = mistral.client
    client.rerun(tasks[step.id].id)
    execution = client.wait(execution["id"], timeout=300)
    assert execution["state"] == "SUCCESS", execution.get("state_info")
    counts = SimDriver(state_dir=tmp_path).counts("demo", "m3")
    assert counts == {s.id: 1 for s in plan.steps}  # resumed: nothing ran twice


def test_a_retried_step_and_the_embedded_engine_agree(
    mistral: MistralService, workflow: str, plan: Plan, cluster: Cluster, tmp_path: Path
) -> None:
    """A step fails once and is retried per policy; the same plan with the same fault through
    the embedded engine ends in the same sim cluster, with the same steps done once each."""
    step = next(s for s in plan.steps if s.action == "ansible.playbook" and s.depends_on)
    fault = f"fail:{step.id}:1"
    through_mistral, through_engine = tmp_path / "mistral", tmp_path / "engine"
    execution, tasks = run(mistral.client, workflow, through_mistral, "same", faults=fault)
    assert execution["state"] == "SUCCESS", execution.get("state_info")
    assert read_state(through_mistral, "demo")["faults"] == {f"fail:{step.id}:{step.id}": 1}

    journal = MemoryJournal()
    view = start_run(journal, plan, cluster, run_id="same")
    driver = SimDriver(state_dir=through_engine, scale=0, faults=fault)
    engine = Engine(journal, plan, cluster, Router.single(driver), policies=FAST,
                    options=EngineOptions(poll_interval=0.01))  # fmt: skip
    view = engine.execute(view)
    assert view.state is RunState.SUCCEEDED

    engine_steps = {sid for sid, v in view.steps.items() if v.state is StepState.SUCCEEDED}
    assert {name for name, t in tasks.items() if t.state == "SUCCESS"} == engine_steps
    left, right = read_state(through_mistral, "demo"), read_state(through_engine, "demo")
    assert {k: left[k] for k in COMPARED} == {k: right[k] for k in COMPARED}
    assert left["counts"] == right["counts"] == {f"same/{s.id}": 1 for s in plan.steps}
    assert left["faults"] == right["faults"]
