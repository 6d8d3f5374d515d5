"""The engine loop: order, concurrency, retries, timeouts, the failure threshold, pause/abort."""

import threading
import time

import pytest

from lifecycle.drivers.base import Driver, StepContext, StepResult
from lifecycle.execution.controller import Stop, decide
from lifecycle.execution.engine import Engine, EngineOptions
from lifecycle.execution.journal import MemoryJournal
from lifecycle.execution.policies import PolicyTable, RetryPolicy
from lifecycle.execution.replay import replay
from lifecycle.execution.report import report
from lifecycle.execution.routing import Router
from lifecycle.execution.runs import start_run
from lifecycle.execution.states import RunState, StepState
from lifecycle.planning.plan import Step
from lifecycle.planning.scheduler import build_plan
from tests.unit.test_engine_support import (
    RecordingDriver,
    fast_policies,
    run_plan,
    small_cluster,
    step,
    upgrade_plan,
)


def started_after(events, marker_event):
    """Steps started after the first event of kind `marker_event`."""
    kinds = [e["event"] for e in events]
    at = kinds.index(marker_event)
    return [e["step"] for e in events[at:] if e["event"] == "step-started"]


def test_every_step_runs_once_after_its_dependencies_and_is_journaled_first():
    cluster, journal, driver = small_cluster(), MemoryJournal(), RecordingDriver()
    plan = upgrade_plan(cluster)
    view = run_plan(journal, plan, cluster, driver)
    assert view.state is RunState.SUCCEEDED
    assert sorted(driver.ran) == sorted(s.id for s in plan.steps)
    position = {sid: i for i, sid in enumerate(driver.ran)}
    for s in plan.steps:
        assert all(position[d] < position[s.id] for d in s.depends_on)
    history = [(t.step_id, t.state) for t in journal.step_transitions(view.run.id)]
    for s in plan.steps:
        assert history.index((s.id, StepState.RUNNING)) < history.index((s.id, StepState.SUCCEEDED))


class Crowd(Driver):
    """Sleeps a little and records how many steps and which nodes were in flight together."""

    name = "crowd"

    def __init__(self):
        self.lock = threading.Lock()
        self.now: list[Step] = []
        self.peak = 0
        self.clash = False

    def run(self, step, ctx):
        with self.lock:
            nodes = {n for s in self.now for n in s.nodes}
            self.clash |= bool(nodes & set(step.nodes))
            self.now.append(step)
            self.peak = max(self.peak, len(self.now))
        time.sleep(0.01)
        with self.lock:
            self.now.remove(step)
        return StepResult(ok=True)


def test_parallelism_is_bounded_and_a_node_runs_one_step_at_a_time():
    steps = [step(f"s{i}", "noop.run", nodes=(f"n{i % 5}",), duration=1) for i in range(40)]
    plan = build_plan("bench", "t", steps)
    driver = Crowd()
    view = run_plan(MemoryJournal(), plan, small_cluster(), driver, concurrency=3)
    assert view.state is RunState.SUCCEEDED
    assert driver.peak == 3
    assert not driver.clash


def test_a_failing_idempotent_step_is_retried_with_backoff_and_every_attempt_journaled():
    cluster, journal, events = small_cluster(), MemoryJournal(), []
    driver = RecordingDriver(fail={"health/cmp-1": 2})
    view = run_plan(journal, upgrade_plan(cluster), cluster, driver, events)
    assert view.state is RunState.SUCCEEDED
    assert view.steps["health/cmp-1"].attempts == 3
    retries = [
        t
        for t in journal.step_transitions(view.run.id)
        if t.step_id == "health/cmp-1" and t.state is StepState.RETRYING
    ]
    assert [t.attempt for t in retries] == [1, 2]
    assert all(t.error == "boom health/cmp-1" and t.not_before > t.ts for t in retries)
    assert sum(e["event"] == "step-retrying" for e in events) == 2


def test_a_non_idempotent_step_is_not_retried_and_the_run_stops_at_a_safe_point():
    cluster, journal, events = small_cluster(), MemoryJournal(), []
    driver = RecordingDriver(fail={"upgrade-node/cmp-1": 1})
    plan = upgrade_plan(cluster, idempotent=False)
    view = run_plan(journal, plan, cluster, driver, events)
    assert view.state is RunState.FAILED
    assert driver.ran.count("upgrade-node/cmp-1") == 1
    assert "failure threshold" in view.reason and "cmp-1" in view.reason
    assert started_after(events, "step-failed") == []
    data = report(view)
    assert data["failed"] == [
        {
            "step": "upgrade-node/cmp-1",
            "error": "boom upgrade-node/cmp-1",
            "hosts": None,
            "log": None,  # no run log and no artifacts: the run was started without the CLI
        }
    ]
    assert "enable/cmp-1" in data["left"] and "postcheck" in data["left"]
    assert "evacuate/cmp-1" in data["done"]


def independent_computes(cluster):
    """Each compute on its own chain (evacuate, upgrade, gate, enable): failures can be local."""
    steps = [step("pre", "checks.precheck", duration=1)]
    for i in range(4):
        n = f"cmp-{i}"
        steps += [
            step(f"ev/{n}", "compute.evacuate", ["pre"], nodes=(n,), duration=1),
            step(
                f"up/{n}",
                "ansible.playbook",
                [f"ev/{n}"],
                nodes=(n,),
                duration=1,
                disrupts=(f"nova-compute@{n}",),
                idempotent=False,
            ),
            step(f"gate/{n}", "checks.health", [f"up/{n}"], nodes=(n,), duration=1),
            step(f"en/{n}", "compute.enable", [f"gate/{n}"], nodes=(n,), duration=1),
        ]
    return build_plan("upgrade", cluster.name, steps)


def test_failures_within_the_threshold_let_independent_work_finish():
    cluster = small_cluster(failure_threshold=1)
    driver = RecordingDriver(fail={"up/cmp-2": 1})
    view = run_plan(MemoryJournal(), independent_computes(cluster), cluster, driver)
    assert view.state is RunState.FAILED
    assert {f"en/cmp-{i}" for i in (0, 1, 3)} <= set(report(view)["done"])
    assert view.steps["gate/cmp-2"].state is StepState.PENDING


def test_past_the_threshold_only_non_disruptive_steps_still_start():
    cluster = small_cluster(failure_threshold=0)
    events = []
    driver = RecordingDriver(fail={"up/cmp-0": 1})
    view = run_plan(
        MemoryJournal(), independent_computes(cluster), cluster, driver, events, concurrency=8
    )
    assert view.state is RunState.FAILED
    after = started_after(events, "run-stopping")
    plan = independent_computes(cluster)
    assert all(not plan.by_id[s].disrupts and not s.startswith("ev/") for s in after)


class Sleeper(Driver):
    name = "sleep"

    def run(self, step, ctx):
        time.sleep(0.5 if step.id == "slow" else 0)
        return StepResult(ok=True)


def test_a_step_past_its_timeout_fails():
    plan = build_plan(
        "t", "t", [step("slow", "noop.run", duration=1), step("after", "noop.run", ["slow"])]
    )
    policies = PolicyTable(
        {"": RetryPolicy(attempts=3, min_timeout=0.05, timeout_factor=0)}, timeout_floor=0
    )
    view = run_plan(MemoryJournal(), plan, small_cluster(), Sleeper(), policies=policies)
    assert view.state is RunState.FAILED
    assert view.steps["slow"].state is StepState.FAILED
    assert "timed out" in view.steps["slow"].error
    assert view.steps["slow"].attempts == 1  # its call may still run: never retried alongside
    assert view.steps["after"].state is StepState.PENDING


class Operator(RecordingDriver):
    """Plays the operator in another terminal: asks for `command` while step `at` runs."""

    def __init__(self, journal, command, at):
        super().__init__()
        self.journal, self.command, self.at = journal, command, at

    def run(self, step, ctx):
        if step.id == self.at:
            self.journal.add_control(ctx.run_id, self.command, time.time(), "ops")
            time.sleep(0.05)  # the loop polls while this step is in flight
        return super().run(step, ctx)


@pytest.mark.parametrize("command,state", [("pause", RunState.PAUSED), ("abort", RunState.ABORTED)])
def test_pause_and_abort_take_effect_at_a_safe_point(command, state):
    cluster, journal = small_cluster(), MemoryJournal()
    plan = upgrade_plan(cluster)
    driver = Operator(journal, command, "upgrade/galera/ctl-1")
    view = run_plan(journal, plan, cluster, driver)
    assert view.state is state
    assert driver.ran[-1] == "upgrade/galera/ctl-1"  # it finished; nothing new started
    assert view.steps["upgrade/galera/ctl-1"].state is StepState.SUCCEEDED
    assert "by ops" in view.reason


def test_old_controls_do_not_stop_a_resumed_run():
    cluster, journal = small_cluster(), MemoryJournal()
    plan = upgrade_plan(cluster)
    view = start_run(journal, plan, cluster)
    journal.add_control(view.run.id, "pause", 0.0)  # consumed by a previous process
    engine = Engine(
        journal,
        plan,
        cluster,
        Router.single(RecordingDriver()),
        policies=fast_policies(),
        options=EngineOptions(poll_interval=0.01),
    )
    assert engine.execute(view).state is RunState.SUCCEEDED


def test_driver_exceptions_fail_the_step_not_the_engine():
    class Broken(Driver):
        def run(self, step, ctx):
            raise KeyError("surprise")

    plan = build_plan("t", "t", [step("a", "noop.run")])
    view = run_plan(MemoryJournal(), plan, small_cluster(), Broken())
    assert view.state is RunState.FAILED
    assert "KeyError" in view.steps["a"].error


def test_events_carry_the_run_and_the_step():
    cluster, events = small_cluster(), []
    run_plan(MemoryJournal(), upgrade_plan(cluster), cluster, RecordingDriver(), events)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run-started" and kinds[-1] == "run-finished"
    assert kinds.count("step-succeeded") == len(upgrade_plan(cluster).steps)
    assert all(e["run"] == events[0]["run"] for e in events)


# --- the controller is a pure function ----------------------------------------------------------


def test_decide_respects_slots_nodes_backoff_and_stops():
    plan = build_plan(
        "t",
        "t",
        [
            step("a", "x.y", nodes=("n1",)),
            step("b", "x.y", nodes=("n1",)),
            step("c", "x.y", nodes=("n2",), disrupts=("s@n2",)),
            step("d", "x.y", nodes=("n3",)),
        ],
    )
    states = {s.id: StepState.PENDING for s in plan.steps}
    ids = ["a", "b", "c", "d"]
    got = decide(plan, ids, states, {}, frozenset(), 10, 0.0, None)
    assert got.start == ("a", "c", "d")  # b waits for n1
    assert decide(plan, ids, states, {}, frozenset({"n2"}), 2, 0.0, None).start == ("a", "d")
    assert decide(plan, ids, states, {}, frozenset(), 10, 0.0, Stop.THRESHOLD).start == ("a", "d")
    assert decide(plan, ids, states, {}, frozenset(), 10, 0.0, Stop.PAUSE).start == ()
    states["d"] = StepState.RETRYING
    later = decide(plan, ["d"], states, {"d": 5.0}, frozenset(), 10, 1.0, None)
    assert (later.start, later.wake_at) == ((), 5.0)
    assert decide(plan, ["d"], states, {"d": 5.0}, frozenset(), 10, 5.0, None).start == ("d",)
    # a step waiting for its retry holds its node: nothing else starts there, it alone may
    held = {"n3": "d"}
    other = build_plan("t", "t", [step("e", "x.y", nodes=("n3",)), step("d", "x.y", nodes=("n3",))])
    states = {"e": StepState.PENDING, "d": StepState.RETRYING}
    waiting = decide(other, ["e", "d"], states, {"d": 5.0}, frozenset(), 10, 1.0, None, held)
    assert waiting.start == ()
    assert decide(
        other, ["e", "d"], states, {"d": 5.0}, frozenset(), 10, 5.0, None, held
    ).start == ("d",)


def test_replay_of_a_finished_run_matches_the_engine_view():
    cluster, journal = small_cluster(), MemoryJournal()
    view = run_plan(journal, upgrade_plan(cluster), cluster, RecordingDriver())
    again = replay(journal, view.run.id)
    assert {k: v.state for k, v in again.steps.items()} == {
        k: v.state for k, v in view.steps.items()
    }


def test_unused_step_context_fields_do_not_leak_secrets_into_repr():
    ctx = StepContext(run_id="r", cluster=small_cluster(), secrets={"x": {"password": "pw-123"}})
    assert "pw-123" not in repr(ctx)
