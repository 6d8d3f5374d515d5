"""A real Mistral 23 (API, engine, executor, notifier) with RabbitMQ runs exported plans.

The service, its venv (cached) and the broker come from lifecycle.mistral.lane; the executor
imports this package through its `mistral.actions` entry points, so every task runs a real driver
(here the sim driver, whose state file is the cluster these tests look at).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lifecycle.cli.main import main
from lifecycle.drivers.sim import SimDriver, read_state
from lifecycle.execution.engine import Engine, EngineOptions
from lifecycle.execution.journal import MemoryJournal
from lifecycle.execution.paths import open_journal
from lifecycle.execution.policies import PolicyTable
from lifecycle.execution.replay import replay
from lifecycle.execution.report import render, report
from lifecycle.execution.routing import Router
from lifecycle.execution.runs import start_run
from lifecycle.execution.states import RunState, StepState
from lifecycle.formats.inventory import load_inventory
from lifecycle.mistral import backend
from lifecycle.mistral.backend import MistralTarget
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
DEMO = str(ROOT / "tests" / "data" / "demo-train")
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


def target(mistral: MistralService, state: Path, **sim: Any) -> MistralTarget:
    return MistralTarget(
        url=mistral.url,
        inventory=DEMO,
        drivers="sim",
        driver_options=(("sim", {"state_dir": str(state), "scale": 0, **sim}),),
        lock_dir=str(state / "locks"),
        poll=0.3,
        time_scale=FAST.time_scale,
    )


def test_demo_upgrade_runs_to_success_through_the_mistral_backend(
    mistral: MistralService, plan: Plan, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lifecycle run upgrade --engine mistral`: journaled as the engine would, step by step."""
    argv = ["run", "upgrade", "-i", DEMO, "--to", "ussuri", "-y", "--driver", "sim",
            "--state-dir", str(tmp_path),
            "--sim-scale", "0", "--engine", "mistral", "--mistral-url", mistral.url]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    journal = open_journal(tmp_path, "demo")
    view = replay(journal, journal.runs()[0].id)
    assert view.state is RunState.SUCCEEDED
    assert {v.state for v in view.steps.values()} == {StepState.SUCCEEDED}
    assert set(view.steps) == {s.id for s in plan.steps}
    execution_id = backend.execution_of(journal, view.run.id)
    execution = mistral.client.execution(execution_id)
    assert execution["state"] == "SUCCESS"
    assert yaml.safe_load(execution["output"])["plan_digest"] == plan.digest == view.run.plan_digest
    tasks = {t.name: t for t in mistral.client.tasks(execution_id)}
    assert {t.state for t in tasks.values()} == {"SUCCESS"} and set(tasks) == set(view.steps)
    state = read_state(tmp_path, "demo")
    assert {v for k, v in state["versions"].items() if not k.startswith("ceph")} == {"ussuri"}
    counts = SimDriver(state_dir=tmp_path).counts("demo", view.run.id)
    assert counts == {s.id: 1 for s in plan.steps}  # every step's effect applied exactly once
    gate = next(s.id for s in plan.steps if s.action == "checks.health")
    last = [t for t in journal.step_transitions(view.run.id) if t.step_id == gate][-1]
    assert last.hosts == {n: {"status": "ok"} for n in plan.step(gate).nodes}  # action detail
    assert "steps" in render(report(view, journal))  # `lifecycle runs show` reads it


def test_a_step_failing_beyond_its_retries_fails_the_run_and_resume_finishes_it(
    mistral: MistralService, plan: Plan, cluster: Cluster, tmp_path: Path
) -> None:
    step = next(s for s in plan.steps if s.action == "ansible.playbook" and s.depends_on)
    downstream = {s.id for s in plan.steps if step.id in s.depends_on}
    where = target(mistral, tmp_path, faults=f"fail:{step.id}:2")
    view = backend.launch(tmp_path, cluster, plan, {"operation": "upgrade"}, where)
    assert view.state is RunState.FAILED
    assert view.steps[step.id].state is StepState.FAILED
    journal = open_journal(tmp_path, "demo")
    failed = [t for t in journal.step_transitions(view.run.id) if t.state is StepState.FAILED]
    assert "injected failure 2 of 2" in (failed[-1].error or "")
    assert all(view.steps[d].state is StepState.PENDING for d in downstream)  # nothing after it

    view = backend.resume(tmp_path, view.run.id, poll=0.3)
    assert view.state is RunState.SUCCEEDED
    counts = SimDriver(state_dir=tmp_path).counts("demo", view.run.id)
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


def test_abort_cancels_the_mistral_execution_at_once(
    mistral: MistralService, plan: Plan, cluster: Cluster, tmp_path: Path
) -> None:
    """`lifecycle abort RUN` on a Mistral run: the execution is cancelled, the run ABORTED."""
    slow = target(mistral, tmp_path, scale=0.005)  # a 300 s playbook takes 1.5 s
    views: list[Any] = []
    thread = threading.Thread(
        target=lambda: views.append(
            backend.launch(tmp_path, cluster, plan, {"operation": "upgrade"}, slow)
        )
    )
    thread.start()
    journal = open_journal(tmp_path, "demo")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = journal.runs()
        if runs and replay(journal, runs[0].id).in_state(StepState.SUCCEEDED):
            break
        time.sleep(0.2)
    journal.add_control(runs[0].id, "abort", time.time(), "test")
    thread.join(180)
    assert views and views[0].state is RunState.ABORTED
    assert views[0].in_state(StepState.PENDING)  # stopped well before the end
    execution = mistral.client.execution(backend.execution_of(journal, runs[0].id))
    assert execution["state"] == "CANCELLED"
