"""Everything around the engine for one process: state dir, journal, lock, audit, drivers,
events and progress. The CLI loads inventories and plans; this module runs them."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycle.errors import ResumeRefused, RunInterrupted, RunStopped
from lifecycle.execution.audit import record_audit
from lifecycle.execution.engine import Engine, EngineOptions
from lifecycle.execution.events import EventSink, Fanout, JsonLinesSink
from lifecycle.execution.interrupts import Interrupts
from lifecycle.execution.journal import Journal
from lifecycle.execution.lock import ClusterLock
from lifecycle.execution.paths import lock_path, open_journal
from lifecycle.execution.policies import PolicyTable
from lifecycle.execution.redact import Redactor
from lifecycle.execution.replay import RunView, replay
from lifecycle.execution.report import render, report
from lifecycle.execution.routing import Router
from lifecycle.execution.runs import (
    check_resumable,
    new_run_id,
    reopen,
    settle,
    start_run,
    stored_plan,
)
from lifecycle.execution.states import RunState, StepState
from lifecycle.model.cluster import Cluster
from lifecycle.planning.plan import Plan


@dataclass(frozen=True)
class Setup:
    """How this process runs: where state lives, which drivers, how wide, what it shows."""

    state_dir: Path
    driver: str = "sim"
    concurrency: int = 4
    events: str | None = None
    progress: str = "off"  # progress.MODES: live (redrawn), lines (one per event), off
    sim_scale: float | None = None
    secrets: Any = None
    argv: Sequence[str] | None = None
    poll_interval: float = 0.2
    driver_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def router(self) -> Router:
        options = dict(self.driver_options)
        sim = dict(options.get("sim", {}), state_dir=self.state_dir)
        if self.sim_scale is not None:
            sim["scale"] = self.sim_scale
        options["sim"] = sim
        options["backup"] = dict(options.get("backup", {}), state_dir=self.state_dir)
        return Router.for_mode(self.driver, options)

    def time_scale(self, router: Router) -> float:
        """Backoffs and timeouts shrink with simulated time."""
        if self.driver != "sim":
            return 1.0
        scale = getattr(router.for_step_name("sim"), "scale", 1.0)
        return float(scale)


def launch(
    setup: Setup,
    cluster: Cluster,
    plan: Plan,
    intent: dict[str, Any],
    overrides: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> RunView:
    """Start a new run of `plan` (as `run_id`, else a new id) and drive it to its end or a safe
    stop."""
    router = setup.router()
    try:  # every driver the plan needs must load before anything is recorded or touched
        for first in {s.action: s for s in plan.steps}.values():
            router.for_step(first)
    finally:
        router.close()
    journal = open_journal(setup.state_dir, cluster.name)
    run_id = run_id or new_run_id(cluster.name)
    try:
        with ClusterLock(lock_path(setup.state_dir, cluster.name), cluster.name, run_id):
            from lifecycle.execution.liveness import refuse_unfinished

            refuse_unfinished(setup.state_dir, cluster.name, journal)  # under the lock: no race
            view = start_run(journal, plan, cluster, intent, run_id)
            record_audit(journal, run_id, overrides, setup.argv, _redactor(setup))
            return _drive(setup, journal, view, cluster, plan)
    finally:
        journal.close()


def resume(
    setup: Setup,
    journal: Journal,
    run_id: str,
    cluster: Cluster,
    plan_now: Plan | None = None,
    accept: Collection[str] = (),
    rerun: Collection[str] = (),
    skip: Collection[str] = (),
    journal_plan: Plan | None = None,
) -> RunView:
    """Resume a run from its journal (after a crash, a pause or a failure). `plan_now`: the
    run's plan made again, compared with the journal's; `journal_plan`: the journal's copy,
    already parsed, when the caller knows planning again would give it (runs.replans_the_same).
    `skip`: steps not done that the operator's confirmation of a dead node makes moot (its stop,
    its drain): they are recorded as skipped, and the rest goes on without them."""
    with ClusterLock(lock_path(setup.state_dir, cluster.name), cluster.name, run_id):
        # one parse of the stored plan at most, one replay: settle and reopen advance the view
        plan = journal_plan or stored_plan(journal.run(run_id), plan_now)
        view = replay(journal, run_id, plan)
        if view.run.cluster != cluster.name:
            raise ResumeRefused(f"run {run_id} belongs to cluster {view.run.cluster}")
        plan = check_resumable(view, cluster, plan_now)
        overrides = {"accept": sorted(accept), "rerun": sorted(rerun)}
        if skip:
            overrides["skipped"] = sorted(skip)
        record_audit(journal, run_id, overrides, setup.argv, _redactor(setup))
        router = setup.router()
        try:
            view = settle(journal, view, router, cluster, accept, rerun, skip=skip)
            view = reopen(journal, view, "resumed")
        finally:
            router.close()
        return _drive(setup, journal, view, cluster, plan)


def _redactor(setup: Setup) -> Redactor:
    return Redactor.from_secrets(setup.secrets)


def _drive(setup: Setup, journal: Journal, view: RunView, cluster: Cluster, plan: Plan) -> RunView:
    from lifecycle.execution.progress import open_display

    router = setup.router()
    interrupts = Interrupts()
    # first: the display prints the run's id before anything else is said about the run
    sinks: list[EventSink] = [open_display(setup.progress, plan, view, journal, setup.driver)]
    from lifecycle.execution.runlog import LogSink

    sinks.append(LogSink())  # the run's log (lifecycle.execution.runlog)
    if setup.events:
        sinks.append(JsonLinesSink(setup.events))
    sink = Fanout(sinks)
    engine = Engine(
        journal,
        plan,
        cluster,
        router,
        policies=PolicyTable(time_scale=setup.time_scale(router)),
        options=EngineOptions(concurrency=setup.concurrency, poll_interval=setup.poll_interval),
        sink=sink,
        redactor=_redactor(setup),
        secrets=setup.secrets,
        interrupts=interrupts,
    )
    try:
        with interrupts.installed():
            view = engine.execute(view)
        record_state(setup.state_dir, journal, view.run.id, view)
        return view
    finally:
        sink.close()
        router.close()


def record_state(
    state_dir: Path, journal: Journal, run_id: str, view: RunView | None = None
) -> None:
    """Fold the stopped run into the cluster's recorded state (lifecycle.execution.
    recorded_state); the lock is held. `view`: the run as the engine left it (spares a replay
    of the journal and a parse of its plan). A state file that cannot be written is said, not
    fatal: the journal still has everything and the next run or abort records it."""
    import logging

    from lifecycle.errors import LifecycleError
    from lifecycle.execution.recorded_state import record_run

    try:
        record_run(state_dir, journal, run_id, view)
    except (OSError, LifecycleError) as exc:
        logging.getLogger(__name__).warning("recorded state not written: %s", exc)


def conclude(view: RunView, journal: Journal | None = None) -> str:
    """The final report; raises RunStopped (exit 4) unless the run succeeded."""
    text = render(report(view, journal))
    if view.state is RunState.SUCCEEDED:
        return text
    hint = {
        RunState.PAUSED: f"resume with `lifecycle resume {view.run.id}`",
        RunState.FAILED: f"fix the cause, then `lifecycle resume {view.run.id}`",
        RunState.ABORTED: "the run was aborted; start a new one",
    }.get(view.state, "")
    if view.state is RunState.PAUSED and view.in_state(StepState.INTERRUPTED):
        raise RunInterrupted(f"{text}\n{hint}; steps interrupted mid-flight are probed first")
    raise RunStopped(f"{text}\n{hint}".rstrip())


def pause_or_abort(journal: Journal, state_dir: Path, run_id: str, command: str) -> str:
    """Ask a live run to pause or abort (it stops at a safe point); abort a run that no process
    is running right away."""
    from lifecycle.execution.audit import current_user
    from lifecycle.execution.lock import holder
    from lifecycle.execution.records import RunTransition
    from lifecycle.execution.states import run_transition

    view = replay(journal, run_id)
    live = holder(lock_path(state_dir, view.run.cluster)) == run_id
    if live:
        journal.add_control(run_id, command, time.time(), current_user())
        record_audit(journal, run_id, {command: True})
        return f"{command} requested; run {run_id} stops at its next safe point"
    dead = view.state is RunState.RUNNING  # recorded as running, yet no process holds the lock
    if command == "pause" and dead:
        raise ResumeRefused(
            f"run {run_id} is interrupted: the process running it is gone (killed or its host"
            f" rebooted); there is nothing to pause. `lifecycle resume {run_id}` continues it"
            f" (finished steps never run again), `lifecycle abort {run_id}` gives it up"
        )
    if command == "pause":
        raise ResumeRefused(f"run {run_id} is not running ({view.state.value}); nothing to pause")
    if view.state.final:
        raise ResumeRefused(f"run {run_id} is already {view.state.value}")
    with ClusterLock(lock_path(state_dir, view.run.cluster), view.run.cluster, run_id):
        run_transition(run_id, view.state, RunState.ABORTED)
        journal.record_run(RunTransition(run_id, RunState.ABORTED, time.time(), "aborted"))
        record_audit(journal, run_id, {"abort": True})
        record_state(state_dir, journal, run_id)
    if dead:
        return f"run {run_id} aborted (it was interrupted: its process had died)"
    return f"run {run_id} aborted"
