"""`--engine mistral`: run a plan on a Mistral service and keep the same journal as the engine.

The run is recorded exactly as an embedded run is (plan, digests, intent, lock, audit); the plan
goes to Mistral as a workbook and an execution starts; then a follower polls the execution's task
states and journals each change as the step transitions the embedded engine would have written,
with the action's structured result (output, hosts, error) and the same events for progress. So
`lifecycle runs show RUN` reads the same whichever engine ran it.

- Attempts are counted from what polling sees: a retry that starts and fails between two polls
  is journaled as one attempt (Mistral's own task history has them all).
- Abort: `lifecycle abort RUN` (a journal control) cancels the execution. Pause is not offered:
  Mistral's paused executions would need their own resume path.
- Resume: a FAILED run (execution in ERROR) re-runs its failed tasks with Mistral's task rerun;
  Mistral then carries on with what follows them. Join tasks Mistral marks ERROR only because
  something upstream failed ("Failed by tasks") never ran: they stay PENDING in the journal.
  Steps already SUCCESS never run again.
The execution's id is kept in the run's audit record (`mistral_execution`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.errors import LifecycleError, ResumeRefused, UsageError
from lifecycle.execution.audit import record_audit
from lifecycle.execution.events import Event, EventSink, Fanout, JsonLinesSink
from lifecycle.execution.journal import Journal
from lifecycle.execution.lock import ClusterLock
from lifecycle.execution.paths import locate_run, lock_path, open_journal
from lifecycle.execution.policies import PolicyTable
from lifecycle.execution.records import RunTransition, StepTransition
from lifecycle.execution.redact import Redactor
from lifecycle.execution.replay import RunView, replay
from lifecycle.execution.runner import Setup, record_state
from lifecycle.execution.runs import new_run_id, start_run
from lifecycle.execution.states import STEP_TRANSITIONS, RunState, StepState, run_transition
from lifecycle.mistral.client import MistralClient, TaskState
from lifecycle.mistral.export import WORKFLOW, export_plan
from lifecycle.model.cluster import Cluster
from lifecycle.planning.plan import Plan

# Mistral task state -> the step state it means ("" = not started yet)
TASK_STATES: dict[str, StepState | None] = {
    "IDLE": None,
    "WAITING": None,
    "RUNNING": StepState.RUNNING,
    "RUNNING_DELAYED": StepState.RUNNING,
    "DELAYED": StepState.RETRYING,
    "SUCCESS": StepState.SUCCEEDED,
    "ERROR": StepState.FAILED,
    "CANCELLED": StepState.FAILED,
    "SKIPPED": StepState.SKIPPED,
}
RUN_STATES = {
    "SUCCESS": RunState.SUCCEEDED,
    "ERROR": RunState.FAILED,
    "CANCELLED": RunState.ABORTED,
}


@dataclass(frozen=True)
class MistralTarget:
    """Where and how: the API, the inventory path as executors see it, the drivers' options."""

    url: str
    inventory: str
    drivers: str = "sim"
    driver_options: tuple[tuple[str, Any], ...] = ()
    lock_dir: str = ""
    poll: float = 0.5
    time_scale: float = 1.0  # retry delays and timeouts shrink with simulated time


# among equally short chains, prefer the one through RUNNING (what Mistral actually did)
_PREFERENCE = [StepState.RUNNING, StepState.PENDING, StepState.RETRYING, StepState.SUCCEEDED]


def _rank(state: StepState) -> int:
    return _PREFERENCE.index(state) if state in _PREFERENCE else len(_PREFERENCE)


def induced(task: TaskState) -> bool:
    """A join task Mistral put in ERROR because a task upstream failed: it never ran (the
    engine leaves such steps PENDING), and it comes back by itself once that task is rerun."""
    return task.state == "ERROR" and (task.state_info or "").startswith("Failed by tasks")


def path_to(old: StepState, new: StepState) -> list[StepState]:
    """The shortest legal chain of states from `old` to `new` (polling may skip some)."""
    if old is new:
        return []
    seen, queue = {old: [old]}, deque([old])
    while queue:
        here = queue.popleft()
        for nxt in sorted(STEP_TRANSITIONS[here], key=_rank):
            if nxt not in seen:
                seen[nxt] = [*seen[here], nxt]
                if nxt is new:
                    return seen[nxt][1:]
                queue.append(nxt)
    return []


class Follower:
    """Mirrors one Mistral execution into one run's journal and event stream."""

    def __init__(
        self,
        journal: Journal,
        view: RunView,
        client: MistralClient,
        execution_id: str,
        sink: EventSink | None = None,
        redactor: Redactor | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.journal, self.client, self.execution_id = journal, client, execution_id
        self.run_id = view.run.id
        self.sink = sink or Fanout()
        self.redactor = redactor or Redactor()
        self.clock = clock
        self.states = {sid: v.state for sid, v in view.steps.items()}
        self.attempts = {sid: v.attempts for sid, v in view.steps.items()}
        controls = journal.controls(self.run_id)
        self.control_seq = controls[-1].seq if controls else 0

    def follow(self, poll: float = 0.5) -> RunView:
        """Poll until the execution ends; journal every change; return the run as journaled."""
        self.emit("run-started", steps=len(self.states), engine="mistral")
        while True:
            self.controls()
            execution = self.client.execution(self.execution_id)
            self.sync(self.client.tasks(self.execution_id))
            final = RUN_STATES.get(execution["state"])
            if final is not None:
                self.sync(self.client.tasks(self.execution_id))  # changes since the last look
                return self.finish(final, execution.get("state_info") or "")
            time.sleep(poll)

    def controls(self) -> None:
        for control in self.journal.controls(self.run_id, after=self.control_seq):
            self.control_seq = control.seq
            if control.command == "abort":
                self.client.cancel(self.execution_id, f"aborted by {control.who or 'operator'}")
                self.emit("run-stopping", why="abort", reason="operator")

    def sync(self, tasks: list[TaskState]) -> None:
        batch: list[StepTransition] = []
        for task in tasks:
            target = None if induced(task) else TASK_STATES.get(task.state)
            if task.name not in self.states or target in (None, self.states[task.name]):
                continue
            batch += self.move(task, target)
        if batch:
            self.journal.record_steps(batch)

    def move(self, task: TaskState, target: StepState) -> list[StepTransition]:
        sid = task.name
        out = []
        detail: dict[str, Any] = {}
        if target in (StepState.SUCCEEDED, StepState.FAILED, StepState.RETRYING):
            detail = self.detail(task, target)
        for state in path_to(self.states[sid], target):
            if state is StepState.RUNNING:
                self.attempts[sid] += 1
                self.emit("step-started", step=sid, attempt=self.attempts[sid])
            extra = detail if state is target else {}
            out.append(
                StepTransition(self.run_id, sid, state, self.clock(), self.attempts[sid], **extra)
            )
            self.states[sid] = state
            if state is not StepState.RUNNING:
                kind = {"succeeded": "step-succeeded", "failed": "step-failed"}
                self.emit(kind.get(state.value, f"step-{state.value}"), step=sid,
                          attempt=self.attempts[sid], error=extra.get("error"))  # fmt: skip
        return out

    def detail(self, task: TaskState, target: StepState) -> dict[str, Any]:
        """What the action returned (Result data or error), as the journal keeps it."""
        result = self.client.task(task.id).result
        data = result if isinstance(result, dict) else {}
        error = None
        if target is not StepState.SUCCEEDED:
            error = str(data.get("error") or task.state_info or f"Mistral task {task.state}")
        return self.redactor.data(
            {"output": data.get("output"), "hosts": data.get("hosts"), "error": error}
        )

    def finish(self, final: RunState, info: str) -> RunView:
        view = replay(self.journal, self.run_id)
        state = run_transition(self.run_id, view.state, final)
        reason = f"mistral execution {self.execution_id}: {info}".strip().rstrip(":")
        self.journal.record_run(RunTransition(self.run_id, state, self.clock(), reason[:500]))
        self.emit("run-finished", state=state.value, reason=reason[:500])
        return replay(self.journal, self.run_id)

    def emit(self, kind: str, **data: Any) -> None:
        event: Event = {"ts": round(self.clock(), 3), "run": self.run_id, "event": kind}
        event.update(self.redactor.data({k: v for k, v in data.items() if v is not None}))
        self.sink.emit(event)


def start_execution(client: MistralClient, plan: Plan, run_id: str, target: MistralTarget) -> str:
    """Upload the plan's workbook and start its workflow for this run; the execution id."""
    text = export_plan(
        plan,
        inventory=target.inventory,
        drivers=target.drivers,
        policies=PolicyTable(time_scale=target.time_scale),
    )
    uploaded = client.put_workbook(text)
    inputs = {
        "inventory": target.inventory,
        "run_id": run_id,
        "drivers": target.drivers,
        "driver_options": dict(target.driver_options),
        "lock_dir": target.lock_dir,
    }
    return client.start(f"{uploaded['name']}.{WORKFLOW}", inputs, f"lifecycle run {run_id}")


def execution_of(journal: Journal, run_id: str) -> str:
    """The Mistral execution a run was started as (from its audit records)."""
    for record in reversed(journal.audit(run_id)):
        found = record.overrides.get("mistral_execution")
        if found:
            return str(found)
    raise ResumeRefused(f"run {run_id} was not run by Mistral (no execution recorded)")


def rerun_failed(client: MistralClient, execution_id: str) -> list[str]:
    """Re-run the execution's tasks in ERROR; their names."""
    execution = client.execution(execution_id)
    if execution["state"] != "ERROR":
        raise ResumeRefused(
            f"Mistral execution {execution_id} is {execution['state']}, not ERROR: nothing to rerun"
        )
    failed = [t for t in client.tasks(execution_id) if t.state == "ERROR" and not induced(t)]
    for task in failed:
        client.rerun(task.id)
    return [t.name for t in failed]


def launch(
    state_dir: Path,
    cluster: Cluster,
    plan: Plan,
    intent: dict[str, Any],
    target: MistralTarget,
    overrides: dict[str, Any] | None = None,
    sink: EventSink | None = None,
    redactor: Redactor | None = None,
) -> RunView:
    """Record a new run, start it on Mistral and follow it to its end."""
    journal = open_journal(state_dir, cluster.name)
    run_id = new_run_id(cluster.name)
    client = MistralClient(target.url)
    intent = dict(intent, engine="mistral", mistral_url=target.url)
    try:
        with ClusterLock(lock_path(state_dir, cluster.name), cluster.name, run_id):
            view = start_run(journal, plan, cluster, intent, run_id)
            try:
                execution_id = start_execution(client, plan, run_id, target)
            except LifecycleError as exc:
                failed = RunTransition(run_id, RunState.FAILED, time.time(), exc.message[:500])
                journal.record_run(failed)
                raise
            extra = {
                **(overrides or {}),
                "mistral_execution": execution_id,
                "mistral_url": target.url,
            }
            record_audit(journal, run_id, extra, redactor=redactor)
            view = Follower(journal, view, client, execution_id, sink, redactor).follow(target.poll)
            record_state(state_dir, journal, run_id)  # what the cloud now runs, as embedded runs do
            return view
    finally:
        journal.close()


def resume(
    state_dir: Path,
    run_id: str,
    url: str | None = None,
    sink: EventSink | None = None,
    redactor: Redactor | None = None,
    poll: float = 0.5,
) -> RunView:
    """Re-run a FAILED Mistral run's failed tasks and follow the execution to its end."""
    journal = locate_run(state_dir, run_id)
    try:
        view = replay(journal, run_id)
        cluster = view.run.cluster
        client = MistralClient(url or str(view.run.intent.get("mistral_url", "")))
        execution_id = execution_of(journal, run_id)
        with ClusterLock(lock_path(state_dir, cluster), cluster, run_id):
            if view.state is not RunState.FAILED:
                raise ResumeRefused(
                    f"run {run_id} is {view.state.value}; only a failed run resumes"
                )
            names = rerun_failed(client, execution_id)
            record_audit(journal, run_id, {"rerun": names, "mistral_execution": execution_id})
            state = run_transition(run_id, view.state, RunState.RUNNING)
            journal.record_run(RunTransition(run_id, state, time.time(), "resumed on Mistral"))
            view = replay(journal, run_id)
            view = Follower(journal, view, client, execution_id, sink, redactor).follow(poll)
            record_state(state_dir, journal, run_id)
            return view
    finally:
        journal.close()


# --- the CLI's entry points (`lifecycle run ... --engine mistral`, `lifecycle resume`) ------------


def _sink(setup: Setup, plan: Plan, view_done: list[str]) -> EventSink:
    sinks: list[EventSink] = []
    if setup.events:
        sinks.append(JsonLinesSink(setup.events))
    if setup.progress != "off":
        from lifecycle.execution.progress import open_display

        sinks.append(open_display(setup.progress, plan, None, None, setup.driver))
    return Fanout(sinks)


def target_from_setup(setup: Setup, url: str, inventory: str) -> MistralTarget:
    """The Mistral side of a CLI run: same driver mode, options and time scale as the engine's."""
    router = setup.router()
    try:
        scale = setup.time_scale(router)
    finally:
        router.close()
    options = {name: dict(opts) for name, opts in setup.driver_options.items()}
    if setup.driver == "sim":
        sim = dict(options.get("sim", {}), state_dir=str(setup.state_dir))
        if setup.sim_scale is not None:
            sim["scale"] = setup.sim_scale
        options["sim"] = sim
    return MistralTarget(url, inventory, setup.driver, tuple(options.items()), time_scale=scale)


def launch_from_cli(
    setup: Setup,
    cluster: Cluster,
    plan: Plan,
    intent: dict[str, Any],
    overrides: dict[str, Any],
    url: str | None,
) -> RunView:
    if not url:
        raise UsageError.at("command line", "--mistral-url", "the Mistral API URL (.../v2)")
    target = target_from_setup(setup, url, str(intent["inventory"]))
    sink = _sink(setup, plan, [])
    try:
        redactor = Redactor.from_secrets(setup.secrets)
        return launch(setup.state_dir, cluster, plan, intent, target, overrides, sink, redactor)
    finally:
        sink.close()


def resume_from_cli(setup: Setup, run_id: str, url: str | None) -> RunView:
    sink = Fanout([JsonLinesSink(setup.events)]) if setup.events else None
    return resume(setup.state_dir, run_id, url, sink, Redactor.from_secrets(setup.secrets))
