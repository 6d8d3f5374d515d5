"""The Mistral backend's follower: Mistral task states become the journal's step transitions."""

from __future__ import annotations

from typing import Any

import pytest

from lifecycle.errors import ResumeRefused
from lifecycle.execution.journal import MemoryJournal
from lifecycle.execution.replay import replay
from lifecycle.execution.runs import start_run
from lifecycle.execution.states import RunState, StepState
from lifecycle.mistral.backend import Follower, execution_of, path_to, rerun_failed
from lifecycle.mistral.client import TaskState
from lifecycle.planning.actions import make_step
from lifecycle.planning.scheduler import build_plan
from tests.unit.cluster_factory import lab_like

S = StepState


class FakeMistral:
    """Plays back a script of (execution state, {task: state}) snapshots, one per poll."""

    def __init__(self, script: list[tuple[str, dict[str, str]]]) -> None:
        self.script = script
        self.at = 0
        self.cancelled: list[str] = []
        self.reruns: list[str] = []

    def execution(self, execution_id: str) -> dict[str, Any]:
        return {"id": execution_id, "state": self.script[self.at][0], "state_info": None}

    def tasks(self, execution_id: str) -> list[TaskState]:
        snapshot = self.script[self.at][1]
        if self.at < len(self.script) - 1 and execution_id != "peek":
            self.at += 1
        return [TaskState(f"id-{n}", n, st.split(":")[0], info(n, st), None)
                for n, st in snapshot.items()]  # fmt: skip

    def task(self, task_id: str) -> TaskState:
        name = task_id[3:]
        ok = {"step": name, "ok": True, "output": {"sim": "x"}, "hosts": {"n0": {"status": "ok"}}}
        bad = {"step": name, "ok": False, "error": f"{name} broke", "hosts": {}}
        state = self.script[self.at][1].get(name, "SUCCESS")
        return TaskState(task_id, name, state, None, ok if state == "SUCCESS" else bad)

    def cancel(self, execution_id: str, reason: str = "") -> None:
        self.cancelled.append(execution_id)

    def rerun(self, task_id: str) -> None:
        self.reruns.append(task_id)


def info(name: str, state: str) -> str:
    """ "ERROR:join" plays a join task Mistral failed because of a failure upstream."""
    return "Failed by tasks: ['b']" if state == "ERROR:join" else f"info {name}"


def small_run() -> tuple[MemoryJournal, Any]:
    steps = [
        make_step("a", "checks.precheck", "p", {"release": "train"}),
        make_step("b", "ansible.playbook", "p", {"release": "ussuri"}, depends_on=("a",)),
        make_step("c", "checks.health", "p", {"release": "ussuri"}, depends_on=("b",)),
    ]
    plan = build_plan("upgrade", "lab", steps)
    journal = MemoryJournal()
    return journal, start_run(journal, plan, lab_like(), run_id="r")


def follow(script: list[tuple[str, dict[str, str]]], journal: MemoryJournal, view: Any) -> Any:
    fake = FakeMistral(script)
    events: list[dict[str, Any]] = []

    class Sink:
        def emit(self, event: dict[str, Any]) -> None:
            events.append(event)

        def close(self) -> None:
            pass

    result = Follower(journal, view, fake, "e1", Sink()).follow(poll=0)  # type: ignore[arg-type]
    return result, fake, events


def test_path_to_fills_in_states_polling_missed() -> None:
    assert path_to(S.PENDING, S.SUCCEEDED) == [S.RUNNING, S.SUCCEEDED]
    assert path_to(S.FAILED, S.RUNNING) == [S.PENDING, S.RUNNING]
    assert path_to(S.RETRYING, S.SUCCEEDED) == [S.RUNNING, S.SUCCEEDED]
    assert path_to(S.RUNNING, S.RUNNING) == []


def test_a_successful_execution_is_journaled_like_an_engine_run() -> None:
    journal, view = small_run()
    script = [
        ("RUNNING", {"a": "RUNNING"}),
        ("RUNNING", {"a": "SUCCESS", "b": "RUNNING"}),
        ("RUNNING", {"a": "SUCCESS", "b": "DELAYED"}),  # Mistral's retry policy waiting
        ("RUNNING", {"a": "SUCCESS", "b": "RUNNING"}),
        ("SUCCESS", {"a": "SUCCESS", "b": "SUCCESS", "c": "SUCCESS"}),  # c seen only finished
    ]
    done, _, events = follow(script, journal, view)
    assert done.state is RunState.SUCCEEDED
    assert {sid: v.state for sid, v in done.steps.items()} == {k: S.SUCCEEDED for k in "abc"}
    assert done.steps["b"].attempts == 2 and done.steps["a"].attempts == 1
    history = [(t.step_id, t.state) for t in journal.step_transitions("r")]
    assert history[:3] == [("a", S.RUNNING), ("a", S.SUCCEEDED), ("b", S.RUNNING)]
    assert ("b", S.RETRYING) in history and history[-2:] == [("c", S.RUNNING), ("c", S.SUCCEEDED)]
    last_b = [t for t in journal.step_transitions("r") if t.step_id == "b"][-1]
    assert last_b.output == {"sim": "x"} and last_b.hosts == {"n0": {"status": "ok"}}
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run-started" and kinds[-1] == "run-finished"
    assert kinds.count("step-succeeded") == 3


def test_a_failed_execution_fails_the_run_with_the_action_detail() -> None:
    journal, view = small_run()
    done, _, _ = follow(
        [("ERROR", {"a": "SUCCESS", "b": "ERROR", "c": "ERROR:join"})], journal, view
    )
    assert done.state is RunState.FAILED
    assert done.steps["b"].state is S.FAILED and done.steps["c"].state is S.PENDING  # never ran
    failed = [t for t in journal.step_transitions("r") if t.state is S.FAILED]
    assert failed[0].error == "b broke"


def test_abort_control_cancels_the_execution() -> None:
    journal, view = small_run()
    fake = FakeMistral([("CANCELLED", {"a": "SUCCESS"})])
    follower = Follower(journal, view, fake, "e1")  # type: ignore[arg-type]
    journal.add_control("r", "abort", 0.0, "ops")  # `lifecycle abort r` while it follows
    done = follower.follow(poll=0)
    assert fake.cancelled == ["e1"]
    assert done.state is RunState.ABORTED


def test_resume_helpers_find_the_execution_and_rerun_failed_tasks() -> None:
    journal, _ = small_run()
    with pytest.raises(ResumeRefused):
        execution_of(journal, "r")
    from lifecycle.execution.audit import record_audit

    record_audit(journal, "r", {"mistral_execution": "e9"})
    assert execution_of(journal, "r") == "e9"
    fake = FakeMistral([("ERROR", {"a": "SUCCESS", "b": "ERROR", "c": "ERROR:join"})])
    assert rerun_failed(fake, "peek") == ["b"]  # type: ignore[arg-type]
    assert fake.reruns == ["id-b"]
    with pytest.raises(ResumeRefused):
        rerun_failed(FakeMistral([("SUCCESS", {})]), "peek")  # type: ignore[arg-type]


def test_replay_accepts_what_the_follower_wrote() -> None:
    journal, view = small_run()
    follow([("ERROR", {"a": "SUCCESS", "b": "ERROR"})], journal, view)
    assert replay(journal, "r").state is RunState.FAILED


def test_cli_engine_mistral_needs_a_url(tmp_path: Any, capsys: Any) -> None:
    from pathlib import Path

    from lifecycle.cli.main import main

    demo = str(Path(__file__).resolve().parents[2] / "tests" / "data" / "demo-train")
    argv = ["run", "upgrade", "-i", demo, "--to", "ussuri", "-y", "--driver", "sim",
            "--state-dir", str(tmp_path),
            "--engine", "mistral"]  # fmt: skip
    assert main(argv) == 2
    assert "--mistral-url" in capsys.readouterr().err
    assert not (tmp_path / "demo.db").exists()  # nothing journaled


def test_a_run_on_mistral_is_folded_into_the_recorded_state(tmp_path: Any, monkeypatch) -> None:
    """After a Mistral run, validate/plan see what the cloud now runs, as after an embedded run."""
    from lifecycle.execution.recorded_state import load_record
    from lifecycle.mistral import backend
    from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade

    cluster = lab_like()
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"))
    done = {step.id: "SUCCESS" for step in plan.steps}
    monkeypatch.setattr(backend, "MistralClient", lambda url: FakeMistral([("SUCCESS", done)]))
    monkeypatch.setattr(backend, "start_execution", lambda *args: "e1")
    target = backend.MistralTarget(url="http://mistral.invalid/v2", inventory="x", poll=0)
    view = backend.launch(tmp_path, cluster, plan, {"operation": "upgrade"}, target)
    assert view.state is RunState.SUCCEEDED
    record = load_record(tmp_path, cluster.name)
    assert record is not None and record.run == view.run.id
    assert record.run_state == "succeeded" and record.instances
    releases = dict(record.instances)
    assert releases["keystone@" + cluster.members["keystone"][0]] == "ussuri"
