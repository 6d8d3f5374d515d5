"""The engine: the only loop with side effects.

Each turn: read operator controls, ask the controller which steps start, journal them RUNNING
(durably, in one transaction) and hand them to the dispatcher (a bounded thread pool calling
drivers); then wait for the first to finish, journal the outcomes (one transaction) and go round.
Retries wait out their backoff as RETRYING steps; a timeout fails the step; the failure threshold
winds the run down at a safe point.

The operator's Ctrl-C (counted by `Interrupts`, installed by whoever drives the run) is read between
turns: the first becomes a `pause` control in the journal, exactly as `lifecycle pause RUN` from
another terminal would leave; the second stops at once, recording the steps in flight as
INTERRUPTED (resume probes them) and the run as PAUSED.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycle.drivers.base import StepContext, StepResult
from lifecycle.errors import DriverError
from lifecycle.execution.audit import current_user, record_audit
from lifecycle.execution.controller import Readiness, Stop, decide
from lifecycle.execution.events import Event, EventSink, Fanout
from lifecycle.execution.interrupts import PAUSE, STOP, Interrupts
from lifecycle.execution.journal import Journal
from lifecycle.execution.policies import PolicyTable
from lifecycle.execution.records import RunTransition, StepTransition
from lifecycle.execution.redact import Redactor
from lifecycle.execution.replay import RunView, advanced
from lifecycle.execution.routing import Router
from lifecycle.execution.states import RunState, StepState, run_transition, step_transition
from lifecycle.model.cluster import Cluster
from lifecycle.planning.plan import Plan, Step

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    concurrency: int = 4
    poll_interval: float = 0.2  # how often operator controls are read while steps run
    failure_threshold: int | None = None  # None: the cluster's policies.failure_threshold
    artifacts_dir: Path | None = None


@dataclass
class _Flight:
    step: Step
    attempt: int
    deadline: float


@dataclass
class _Tally:
    """The engine's working copy of the run, seeded from the journal's replay."""

    states: dict[str, StepState]
    attempts: dict[str, int]
    not_before: dict[str, float] = field(default_factory=dict)
    failed_nodes: set[str] = field(default_factory=set)
    busy: set[str] = field(default_factory=set)
    held: dict[str, str] = field(default_factory=dict)  # node -> the RETRYING step holding it
    # RETRYING steps' last failed attempt (error, hosts): what a retry cancelled at the end says
    retry_of: dict[str, tuple[str | None, dict[str, Any] | None]] = field(default_factory=dict)


class Engine:
    """Runs one run's plan to the end or to a safe stop. Create one per process per run."""

    def __init__(
        self,
        journal: Journal,
        plan: Plan,
        cluster: Cluster,
        router: Router,
        *,
        policies: PolicyTable | None = None,
        options: EngineOptions | None = None,
        sink: EventSink | None = None,
        redactor: Redactor | None = None,
        secrets: Any = None,
        clock: Callable[[], float] = time.time,
        interrupts: Interrupts | None = None,
    ) -> None:
        self.journal = journal
        self.plan = plan
        self.cluster = cluster
        self.router = router
        self.policies = policies or PolicyTable()
        self.options = options or EngineOptions()
        self.sink = sink or Fanout()
        self.redactor = redactor or Redactor.from_secrets(secrets)
        self._secrets = secrets if secrets is not None else {}
        self.clock = clock
        threshold = self.options.failure_threshold
        self.threshold = (
            cluster.policies.failure_threshold if threshold is None else max(0, threshold)
        )
        self._batch: list[StepTransition] = []
        # every transition this process journaled, in order: the run's last view is the one it
        # started from advanced by them (what a replay of the journal gives, without reading it)
        self._journaled: list[StepTransition] = []
        self._flights: dict[Future[StepResult], _Flight] = {}
        self._abandoned: set[Future[StepResult]] = set()
        self.stop: Stop | None = None
        self.stop_reason = ""
        self.interrupts = interrupts or Interrupts()
        self._presses = 0  # Ctrl-C presses already acted on
        self._halted = False  # stopped at once: nothing in flight is waited for

    # --- the loop ---------------------------------------------------------------------------

    def execute(self, view: RunView) -> RunView:
        """Run every step that is not done yet; return the run as the journal now tells it."""
        run_id = view.run.id
        self.run_id = run_id
        t = self.tally = _Tally(
            states={sid: v.state for sid, v in view.steps.items()},
            attempts={sid: v.attempts for sid, v in view.steps.items()},
        )
        for sid, state in t.states.items():  # a run resumed with retries due holds their nodes
            if state is StepState.RETRYING:
                t.held.update(dict.fromkeys(self.plan.by_id[sid].nodes, sid))
        for first in {s.action: s for s in self.plan.steps}.values():
            self.router.for_step(first)  # a missing driver fails now, before any side effect
        ready = self.ready = Readiness(self.plan, t.states)
        seen = self.journal.controls(run_id)
        self._control_seq = seen[-1].seq if seen else 0
        self._next_poll = 0.0
        self._emit("run-started", steps=len(self.plan.steps), done=_count_done(t.states))
        pool = ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="step")
        try:
            while not self._heed_interrupts() and self._turn(pool, ready):
                pass
        finally:
            self._flush()
            # a halted run's driver calls are abandoned: their threads cannot be stopped from here
            pool.shutdown(wait=False, cancel_futures=True)
        return self._conclude(view)

    def _turn(self, pool: ThreadPoolExecutor, ready: Readiness) -> bool:
        """One round of the loop; False when the run has nothing left to do now."""
        now = self.clock()
        if now >= self._next_poll:
            self._poll_controls()
            self._next_poll = now + self.options.poll_interval
        t = self.tally
        self._abandoned = {f for f in self._abandoned if not f.done()}
        free = self.options.concurrency - len(self._flights) - len(self._abandoned)
        candidates = ready.candidates(t.states)
        try:
            decision = decide(
                self.plan,
                candidates,
                t.states,
                t.not_before,
                frozenset(t.busy),
                free,
                now,
                self.stop,
                t.held,
            )
        finally:
            candidates.close()
        self._start(pool, decision.start, now)
        # one transaction per turn: the outcomes of the last turn go with the RUNNING records of
        # the steps just started (or alone, here, when none started); a lost outcome would cost a
        # probe on resume, a lost RUNNING a repeated step, so outcomes may wait, RUNNING may not
        self._flush()
        if not self._flights:
            if decision.start:
                return True
            if decision.wake_at is None:
                return False
            time.sleep(max(0.0, min(decision.wake_at - now, self.options.poll_interval)))
            return True
        timeout = self.options.poll_interval
        if decision.wake_at is not None:
            timeout = min(timeout, max(0.0, decision.wake_at - now))
        deadline = min(f.deadline for f in self._flights.values())
        timeout = max(0.0, min(timeout, deadline - now))
        done, _ = wait(list(self._flights), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            flight = self._flights.pop(future)
            self._finish(flight, _result(future))
        self._expire()
        return True

    # --- starting and finishing steps -------------------------------------------------------

    def _start(self, pool: ThreadPoolExecutor, step_ids: tuple[str, ...], now: float) -> None:
        if not step_ids:
            return
        t = self.tally
        launches = []
        for sid in step_ids:
            step = self.plan.by_id[sid]
            attempt = t.attempts.get(sid, 0) + 1
            t.attempts[sid] = attempt
            self._set(sid, StepState.RUNNING, attempt=attempt)
            t.busy.update(step.nodes)
            for node in step.nodes:  # a retry runs on the nodes it held
                t.held.pop(node, None)
            launches.append((step, attempt))
        self._flush()  # RUNNING is durable before any driver is called
        for step, attempt in launches:
            driver = self.router.for_step(step)
            ctx = StepContext(
                run_id=self.run_id,
                cluster=self.cluster,
                attempt=attempt,
                artifacts_dir=self.options.artifacts_dir,
                secrets=self._secrets,
                emit=self._driver_emit(step.id),
            )
            future = pool.submit(_call, driver.run, step, ctx, self.redactor)
            deadline = now + self.policies.timeout(step)
            self._flights[future] = _Flight(step, attempt, deadline)
            self._emit(
                "step-started",
                step=step.id,
                attempt=attempt,
                nodes=list(step.nodes),
                phase=step.phase,
                batch=step.batch,
            )

    def _finish(self, flight: _Flight, result: StepResult) -> None:
        step, t = flight.step, self.tally
        t.busy.difference_update(step.nodes)
        output = self.redactor.data(result.output) or None
        hosts = self.redactor.data(result.hosts) or None
        error = self.redactor.text(result.error) if result.error else None
        if result.ok:
            self._set(step.id, StepState.SUCCEEDED, flight.attempt, output, None, hosts)
            self.ready.done(step.id)
            self._emit("step-succeeded", step=step.id, attempt=flight.attempt)
            return
        idempotent = self.router.for_step(step).is_idempotent(step)
        if self.policies.may_retry(step, flight.attempt, idempotent):
            now = self.clock()  # one reading: the retry is due its backoff after this record
            due = now + self.policies.backoff(step, flight.attempt)
            self._set(step.id, StepState.RETRYING, flight.attempt, output, error, hosts, due, now)
            t.retry_of[step.id] = (error, hosts)
            t.not_before[step.id] = due
            t.held.update(dict.fromkeys(step.nodes, step.id))
            self.ready.again(step.id)
            self._emit("step-retrying", step=step.id, attempt=flight.attempt, error=error)
            return
        self._fail(step, flight.attempt, error or "failed", output, hosts, result)

    def _fail(
        self,
        step: Step,
        attempt: int,
        error: str,
        output: dict[str, Any] | None,
        hosts: dict[str, Any] | None,
        result: StepResult | None,
    ) -> None:
        self._set(step.id, StepState.FAILED, attempt, output, error, hosts)
        bad = [h for h, r in (result.hosts if result else {}).items() if r.get("status") != "ok"]
        self.tally.failed_nodes.update(bad or step.nodes or [f"step:{step.id}"])
        self._emit("step-failed", step=step.id, attempt=attempt, error=error)
        if len(self.tally.failed_nodes) > self.threshold:
            failed = ", ".join(sorted(self.tally.failed_nodes))
            self._request_stop(
                Stop.THRESHOLD,
                f"{len(self.tally.failed_nodes)} failed node(s) ({failed}) exceed the failure"
                f" threshold of {self.threshold}",
            )

    def _expire(self) -> None:
        """Fail steps past their deadline. The driver call cannot be killed from here, so its
        thread is abandoned (its late result ignored) and its nodes stay busy for this run."""
        now = self.clock()
        for future, flight in list(self._flights.items()):
            if now < flight.deadline:
                continue
            del self._flights[future]
            self._abandoned.add(future)
            limit = self.policies.timeout(flight.step)
            self._fail(
                flight.step,
                flight.attempt,
                f"timed out after {limit:.1f}s (the call may still be running)",
                None,
                None,
                None,
            )

    # --- stopping ---------------------------------------------------------------------------

    def _request_stop(self, stop: Stop, reason: str) -> None:
        rank = [None, Stop.THRESHOLD, Stop.OPERATOR, Stop.PAUSE, Stop.ABORT]
        if rank.index(stop) > rank.index(self.stop):
            self.stop, self.stop_reason = stop, reason
            self._emit("run-stopping", why=stop.value, reason=reason)

    def _heed_interrupts(self) -> bool:
        """Act on new Ctrl-C presses; True once the run must stop now (the second press)."""
        presses = self.interrupts.presses
        if presses > self._presses:
            if self._presses < PAUSE <= presses:
                self._pause_by_keyboard()
            if presses >= STOP:
                self._halt()
            self._presses = presses
        return self._halted

    def _pause_by_keyboard(self) -> None:
        """The first Ctrl-C goes through the journal like `lifecycle pause RUN`, so the pause, who
        asked and when are on record the same way whichever terminal it came from."""
        self.journal.add_control(self.run_id, "pause", self.clock(), f"{current_user()} (Ctrl-C)")
        record_audit(self.journal, self.run_id, {"pause": "Ctrl-C"})
        self._next_poll = 0.0  # read it on this very turn

    def _halt(self) -> None:
        """The second Ctrl-C: record every step in flight as INTERRUPTED (its driver call is left
        to finish or die with the process; resume probes its effect) and end the run PAUSED."""
        self._flush()
        stopped = []
        for future, flight in list(self._flights.items()):
            if future.done():  # finished already: its outcome is known, record that instead
                del self._flights[future]
                self._finish(flight, _result(future))
                continue
            sid = flight.step.id
            self._set(sid, StepState.INTERRUPTED, flight.attempt)
            self.tally.busy.difference_update(flight.step.nodes)
            self._abandoned.add(future)
            stopped.append(sid)
            self._emit("step-interrupted", step=sid, attempt=flight.attempt)
        self._flights.clear()
        self._flush()
        what = (
            f"{len(stopped)} step(s) in flight recorded as interrupted: {', '.join(stopped[:5])}"
            if stopped
            else "no step was in flight"
        )
        if self.stop is not Stop.ABORT:  # an abort already asked for stays an abort
            self.stop = Stop.PAUSE
        self.stop_reason = f"stopped by Ctrl-C twice; {what}"
        self._halted = True
        self._emit("run-stopping", why="interrupt", reason=self.stop_reason, steps=stopped)

    def _poll_controls(self) -> None:
        for control in self.journal.controls(self.run_id, after=self._control_seq):
            self._control_seq = control.seq
            who = f" by {control.who}" if control.who else ""
            if control.command == "abort":
                self._request_stop(Stop.ABORT, f"aborted{who}")
            elif control.command == "pause":
                self._request_stop(Stop.PAUSE, f"paused{who}")

    def _conclude(self, view: RunView) -> RunView:
        states = self.tally.states
        if self.stop is Stop.ABORT:
            final, reason = RunState.ABORTED, self.stop_reason
        elif self.stop is Stop.PAUSE:
            final, reason = RunState.PAUSED, self.stop_reason
        elif all(s.done for s in states.values()):
            final, reason = RunState.SUCCEEDED, "every step succeeded"
        else:
            failed = [sid for sid, s in states.items() if s is StepState.FAILED]
            final = RunState.FAILED
            reason = self.stop_reason or f"{len(failed)} step(s) failed: {', '.join(failed[:5])}"
        if final in (RunState.FAILED, RunState.ABORTED):
            self._cancel_retries(final)
        run_transition(self.run_id, view.state, final)
        ended = RunTransition(self.run_id, final, self.clock(), reason)
        self.journal.record_run(ended)
        self._emit("run-finished", state=final.value, reason=reason)
        return advanced(view, self._journaled, ended)

    def _cancel_retries(self, final: RunState) -> None:
        """A run that ends leaves no step live: a step waiting between attempts (RETRYING) when
        the run stops fails with its last attempt's error and why no retry came. A paused run
        keeps them: resume runs them again. RUNNING cannot remain here: the loop ends only when
        no call is in flight, and a call past its deadline was failed by `_expire`."""
        t = self.tally
        waiting = [sid for sid, state in t.states.items() if state is StepState.RETRYING]
        why = "the run was aborted" if final is RunState.ABORTED else "the run stopped"
        for sid in waiting:
            error, hosts = t.retry_of.get(sid, (None, None))
            attempt = t.attempts.get(sid, 0)
            note = f"attempt {attempt} failed; not retried: {why}"
            self._set(sid, StepState.FAILED, attempt, None, f"{error or 'failed'}; {note}", hosts)
            self._emit("step-failed", step=sid, attempt=attempt, error=note)
        self._flush()

    # --- journal and events -----------------------------------------------------------------

    def _set(
        self,
        sid: str,
        state: StepState,
        attempt: int = 0,
        output: dict[str, Any] | None = None,
        error: str | None = None,
        hosts: dict[str, Any] | None = None,
        not_before: float | None = None,
        at: float | None = None,
    ) -> None:
        t = self.tally
        t.states[sid] = step_transition(sid, t.states[sid], state)
        when = self.clock() if at is None else at
        self._batch.append(
            StepTransition(self.run_id, sid, state, when, attempt, output, error, hosts, not_before)
        )

    def _flush(self) -> None:
        if self._batch:
            self.journal.record_steps(self._batch)
            self._journaled.extend(self._batch)
            self._batch = []

    def _emit(self, kind: str, **data: Any) -> None:
        event: Event = {"ts": round(self.clock(), 3), "run": self.run_id, "event": kind}
        event.update(self.redactor.data(data))
        self.sink.emit(event)

    def _driver_emit(self, step_id: str) -> Callable[[str, dict[str, Any]], None]:
        def emit(kind: str, data: dict[str, Any]) -> None:
            self._emit(f"driver-{kind}", step=step_id, **data)

        return emit


def _call(
    run: Callable[[Step, StepContext], StepResult],
    step: Step,
    ctx: StepContext,
    redactor: Redactor,
) -> StepResult:
    """A driver call as the dispatcher makes it: every failure becomes a failed StepResult."""
    try:
        return run(step, ctx)
    except DriverError as exc:
        return StepResult(ok=False, error=exc.message, output={"detail": exc.detail})
    except Exception as exc:  # a driver bug must fail the step, not kill the run mid-batch
        log.error("driver raised on step %s:\n%s", step.id, redactor.text(traceback.format_exc()))
        return StepResult(ok=False, error=f"{type(exc).__name__}: {exc}")


def _result(future: Future[StepResult]) -> StepResult:
    try:
        return future.result()
    except Exception as exc:  # cancelled or raised outside _call
        return StepResult(ok=False, error=f"{type(exc).__name__}: {exc}")


def _count_done(states: dict[str, StepState]) -> int:
    return sum(1 for s in states.values() if s.done)
