"""Field case rabbit-dies: a failure report says what happened.

A controller that dies half-way through its RabbitMQ upgrade was reported as "unreachable before
the step started" (the retry's view), and a step waiting for its retry when the run stopped was
left `retrying` inside a `failed` run. Now the report says when the node was lost, and a finished
run holds no step in a live state."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from lifecycle.cli.main import main
from lifecycle.drivers.base import Driver, StepContext, StepResult
from lifecycle.drivers.sim import SimDriver
from lifecycle.execution.journal import MemoryJournal
from lifecycle.execution.states import RunState, StepState
from lifecycle.formats.inventory import load_inventory
from lifecycle.planning.plan import Step
from lifecycle.planning.scheduler import build_plan
from tests.unit.fieldcase_support import ROOT, copy_cases
from tests.unit.test_engine_support import run_plan, small_cluster, step

LIVE = {StepState.RUNNING.value, StepState.RETRYING.value}
DIE = "die:ctl-1@upgrade/rabbitmq/ctl-1"


class FailsOnce(Driver):
    """`fast` fails at once and is not idempotent (the threshold stops the run); `slow` fails its
    first attempt a moment later, so it is waiting for its retry (a playbook may be tried twice)
    when the run stops, and being disruptive it may not start again past the threshold."""

    name = "f"

    def __init__(self) -> None:
        self.tries: dict[str, int] = {}

    def run(self, step: Step, ctx: StepContext) -> StepResult:
        self.tries[step.id] = self.tries.get(step.id, 0) + 1
        if step.id == "slow":
            time.sleep(0.05)
        ok = step.id == "slow" and self.tries[step.id] > 1
        return StepResult(ok=ok, error=None if ok else f"{step.id} broke")


def test_a_step_waiting_for_its_retry_fails_when_the_run_stops() -> None:
    cluster = small_cluster(failure_threshold=0)
    plan = build_plan(
        "upgrade",
        cluster.name,
        [
            step("fast", "ansible.playbook", nodes=("cmp-0",), disrupts=("nova-compute@cmp-0",),
                 idempotent=False),
            step("slow", "ansible.playbook", nodes=("cmp-1",),
                 disrupts=("nova-compute@cmp-1",)),
        ],
    )  # fmt: skip
    journal = MemoryJournal()
    view = run_plan(journal, plan, cluster, FailsOnce(), concurrency=2)
    assert view.state is RunState.FAILED
    assert {sid: v.state for sid, v in view.steps.items()} == {
        "fast": StepState.FAILED,
        "slow": StepState.FAILED,
    }
    slow = [t for t in journal.step_transitions(view.run.id) if t.step_id == "slow"]
    assert [t.state for t in slow] == [StepState.RUNNING, StepState.RETRYING, StepState.FAILED]
    assert slow[-1].error is not None
    assert "slow broke" in slow[-1].error and "not retried: the run stopped" in slow[-1].error


def _lab(tmp_path: Path) -> Path:
    lab = tmp_path / "lab"
    shutil.copytree(ROOT / "inventories" / "lab", lab)
    (lab / "secrets.yaml").chmod(0o600)
    return lab


def _run_dies(lab: Path, state: Path, capsys, monkeypatch) -> tuple[str, list[dict]]:
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", DIE)
    args = ["run", "upgrade", "-i", str(lab), "--to", "ussuri", "-y", "--no-progress"]
    code = main([*args, "--driver", "sim", "--sim-scale", "0.0001", "--state-dir", str(state)])
    err = capsys.readouterr().err
    assert code == 4, err
    run_id = err.split("run ", 1)[1].split()[0]
    assert main(["runs", "show", run_id, "--state-dir", str(state), "-f", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "failed"
    return err, shown["steps"]


def _check_report(err: str, steps: list[dict]) -> None:
    assert [s["id"] for s in steps if s["state"] in LIVE] == []
    rabbit = next(s for s in steps if s["id"] == "upgrade/rabbitmq/ctl-1")
    assert rabbit["state"] == "failed"
    assert "died during attempt 1 of this step" in rabbit["error"]
    assert "before the step started" not in err
    assert "died during" in rabbit["hosts"]["ctl-1"]["msg"]


def test_a_node_lost_during_a_step_is_reported_as_lost_then(tmp_path, capsys, monkeypatch):
    err, steps = _run_dies(_lab(tmp_path), tmp_path / "state", capsys, monkeypatch)
    _check_report(err, steps)


def test_field_case_rabbit_dies(tmp_path, capsys, monkeypatch) -> None:
    cases = copy_cases(tmp_path)
    err, steps = _run_dies(cases / "lab", tmp_path / "state", capsys, monkeypatch)
    _check_report(err, steps)


@pytest.mark.parametrize("attempt", [1, 2])
def test_a_node_dead_before_the_run_says_so(tmp_path, attempt: int) -> None:
    cluster = load_inventory(_lab(tmp_path))
    sim = SimDriver(state_dir=tmp_path / "state", scale=0, faults="")
    sim._state(cluster).data["dead"] = ["ctl-1"]
    gate = step("health/ctl-1", "checks.health", nodes=("ctl-1",))
    result = sim.run(gate, StepContext(run_id="r", cluster=cluster, attempt=attempt))
    assert not result.ok and result.error == "ctl-1 unreachable (down before this step started)"


class FailsFirstOnNode(Driver):
    """`first` fails its first attempt; every call records its start and the steps running."""

    name = "f"

    def __init__(self) -> None:
        self.tries: dict[str, int] = {}
        self.running: set[str] = set()
        self.overlaps: list[tuple[str, ...]] = []
        self.starts: list[str] = []
        self.lock = threading.Lock()

    def run(self, step: Step, ctx: StepContext) -> StepResult:
        with self.lock:
            self.tries[step.id] = self.tries.get(step.id, 0) + 1
            self.starts.append(step.id)
            if self.running:
                self.overlaps.append((step.id, *sorted(self.running)))
            self.running.add(step.id)
        time.sleep(0.05)
        with self.lock:
            self.running.discard(step.id)
        ok = step.id != "first" or self.tries[step.id] > 1
        return StepResult(ok=ok, error=None if ok else "first broke")


def test_a_step_waiting_for_its_retry_keeps_its_node_from_other_steps() -> None:
    """cases/rabbit-dies: while upgrade/rabbitmq/ctl-1 waited for its retry, the engine started
    upgrade/memcached/ctl-1 on the same node, half-way through the first one's work."""
    cluster = small_cluster()
    plan = build_plan(
        "upgrade",
        cluster.name,
        [
            step("first", "ansible.playbook", nodes=("cmp-0",), disrupts=("nova-compute@cmp-0",)),
            step("second", "ansible.playbook", nodes=("cmp-0",)),
        ],
    )
    driver = FailsFirstOnNode()
    view = run_plan(MemoryJournal(), plan, cluster, driver, concurrency=2)
    assert view.state is RunState.SUCCEEDED
    assert driver.tries == {"first": 2, "second": 1}
    assert driver.overlaps == []  # one step at a time on cmp-0
    assert driver.starts == ["first", "first", "second"]  # nothing between a step's attempts
