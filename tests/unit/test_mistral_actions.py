"""The Mistral actions, called as Mistral's executor calls them (constructor input, then run)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from mistral_lib.actions import Result

from lifecycle.drivers.base import Driver, StepContext, StepResult
from lifecycle.drivers.sim import read_state
from lifecycle.errors import DriverError
from lifecycle.execution.routing import Router
from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.plan_json import step_to_dict
from lifecycle.formats.secrets import load_secrets
from lifecycle.mistral import actions
from lifecycle.mistral.actions import (
    AnsiblePlaybookAction,
    ChecksAction,
    SimAction,
    step_from_dict,
)
from lifecycle.planning.plan import Plan
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade

DEMO = str(Path(__file__).resolve().parents[2] / "tests" / "data" / "demo-train")


@pytest.fixture(scope="module")
def plan() -> Plan:
    return plan_upgrade(load_inventory(DEMO), UpgradeIntent("ussuri"))


def sim_input(plan: Plan, step_id: str, state: Path, **sim: Any) -> dict[str, Any]:
    step = plan.step(step_id)
    return {
        "step": step_to_dict(step, plan.start_of[step_id]),
        "inventory": DEMO,
        "run_id": "r1",
        "drivers": "sim",
        "driver_options": {"sim": {"state_dir": str(state), "scale": 0, **sim}},
    }


def test_step_round_trips_through_its_json_form(plan: Plan) -> None:
    for step, start in plan.scheduled():
        assert step_from_dict(step_to_dict(step, start)) == step


def test_whole_plan_through_the_actions_upgrades_the_sim_cluster(plan: Plan, tmp_path) -> None:
    kinds = {"checks": ChecksAction, "ansible": AnsiblePlaybookAction, "compute": SimAction}
    for step in plan.steps:
        action = kinds.get(step.driver, SimAction)(**sim_input(plan, step.id, tmp_path))
        result = action.run(None)
        assert isinstance(result, Result)
        assert result.error is None, result.error
        assert result.data["step"] == step.id and result.data["ok"] is True
        assert set(result.data.get("hosts", {})) == set(step.nodes)
    versions = read_state(tmp_path, "demo")["versions"]
    assert {v for k, v in versions.items() if not k.startswith("ceph")} == {"ussuri"}


def test_action_attributes_are_primitive(plan: Plan, tmp_path) -> None:
    """Mistral's engine builds the action and serialises its attributes to the executor."""
    action = SimAction(**sim_input(plan, "precheck/cluster", tmp_path), lock_dir="/x")
    json.dumps(vars(action))


def test_a_failed_step_returns_the_journal_detail_as_error(plan: Plan, tmp_path) -> None:
    step = next(s for s in plan.steps if s.action == "ansible.playbook")
    given = sim_input(plan, step.id, tmp_path, faults=f"fail:{step.id}:1")
    first = AnsiblePlaybookAction(**given).run(None)
    assert first.data is None
    assert first.error["step"] == step.id and first.error["ok"] is False
    assert "injected failure 1 of 1" in first.error["error"]
    second = AnsiblePlaybookAction(**given).run(None)  # the retry Mistral's policy makes
    assert second.error is None and second.data["ok"] is True


def test_an_action_refuses_steps_of_another_kind(plan: Plan, tmp_path) -> None:
    step = next(s for s in plan.steps if s.action == "ansible.playbook")
    result = ChecksAction(**sim_input(plan, step.id, tmp_path)).run(None)
    assert "runs checks.* steps" in result.error["error"]


def test_bad_input_is_an_error_result_not_a_crash(plan: Plan, tmp_path) -> None:
    given = sim_input(plan, "precheck/cluster", tmp_path)
    assert "malformed step" in SimAction(**{**given, "step": {"id": "x"}}).run(None).error["error"]
    missing = SimAction(**{**given, "inventory": str(tmp_path / "nowhere")}).run(None)
    assert missing.error["step"] == "precheck/cluster"
    mode = ChecksAction(**{**given, "drivers": "bogus"}).run(None)
    assert "driver mode" in mode.error["error"]


class Leaky(Driver):
    """A driver that puts a BMC password everywhere it can (it must never get out)."""

    name = "leaky"

    def __init__(self, secret: str, raise_it: str = "") -> None:
        self.secret, self.raise_it = secret, raise_it

    def run(self, step: Any, ctx: StepContext) -> StepResult:
        resolved = {v for _, entry in ctx.secrets.items() for v in entry.values()}
        assert self.secret in resolved  # resolved in the executor, from the inventory
        if self.raise_it == "driver-error":
            raise DriverError(f"login {self.secret} refused", {"password": self.secret})
        if self.raise_it == "crash":
            raise RuntimeError(f"bug while using {self.secret}")
        return StepResult(
            ok=False,
            output={"said": f"pw={self.secret}"},
            error=f"bad {self.secret}",
            hosts={"ctl-0": {"status": "failed", "msg": self.secret}},
        )


@pytest.mark.parametrize("raise_it", ["", "driver-error", "crash"])
def test_secrets_are_resolved_in_the_executor_and_redacted(
    plan: Plan, tmp_path, monkeypatch, caplog, raise_it: str
) -> None:
    secret = max(load_secrets(load_inventory(DEMO)).values(), key=len)
    leaky = Leaky(secret, raise_it)
    monkeypatch.setattr(actions, "_router", lambda mode, options: Router.single(leaky))
    given = sim_input(plan, "precheck/cluster", tmp_path)
    assert secret not in repr(given)  # inputs carry references only
    result = ChecksAction(**given).run(None)
    assert result.error is not None
    assert secret not in repr(result.error)
    assert "***" in repr(result.error)
    assert secret not in caplog.text


class Overlap(Driver):
    """Records whether two steps on one node ever ran at the same time."""

    name = "overlap"

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.inside: list[str] = []
        self.clash = False

    def run(self, step: Any, ctx: StepContext) -> StepResult:
        with self.guard:
            self.clash |= any(n in self.inside for n in step.nodes)
            self.inside.extend(step.nodes)
        time.sleep(0.02)
        with self.guard:
            for node in step.nodes:
                self.inside.remove(node)
        return StepResult(ok=True)


def test_a_node_runs_one_step_at_a_time_across_actions(plan: Plan, tmp_path, monkeypatch) -> None:
    """The DAG lets galera and rabbitmq start on ctl-0 together; the node lock keeps them apart."""
    driver = Overlap()
    monkeypatch.setattr(actions, "_router", lambda mode, options: Router.single(driver))
    first = [s for s in plan.steps if s.depends_on == ("precheck/cluster",)]
    assert len({n for s in first for n in s.nodes}) < len(first)  # same-node steps are ready

    def call(step_id: str) -> None:
        given = sim_input(plan, step_id, tmp_path)
        result = SimAction(**given, lock_dir=str(tmp_path / "locks")).run(None)
        assert result.error is None

    threads = [threading.Thread(target=call, args=(s.id,)) for s in first * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not driver.clash
