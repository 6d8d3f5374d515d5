"""Following a run as it goes: what the operator sees between the run's id and its report.

`Tracker` keeps the run's state from the journal (at start) and the engine's events (since), and
`Tracker.snapshot(now)` turns it into a `Snapshot`: the display model, a pure function of that state
and `now`. Two views draw snapshots: `LiveDisplay` (a terminal: rich's Live, redrawn twice a second
by rich's own refresh thread, so the clocks move while a long step runs) and `LineDisplay` (CI,
pipes, files: one line per step event, nothing redrawn). Every mode, "off" included, starts with the
line `run <id> ...`, so the run's id is the first thing a run says.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import IO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from lifecycle.execution.controller import Stop
from lifecycle.execution.eta import Estimate, RunClock, estimate, run_clock
from lifecycle.execution.events import Event, EventSink
from lifecycle.execution.journal import Journal
from lifecycle.execution.replay import RunView
from lifecycle.execution.states import RunState, StepState
from lifecycle.planning.plan import Plan
from lifecycle.planning.render import hop_of

MODES = ("live", "lines", "off")
SHOWN = 8  # running steps listed by name; the rest are counted
ESTIMATE_EVERY = 1.0  # seconds between two walks of the plan for the time left


def clock_text(seconds: float | None) -> str:
    """H:MM:SS (or M:SS under an hour); "--:--" when unknown."""
    if seconds is None:
        return "--:--"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def hosts_text(hosts: tuple[str, ...], shown: int = 3) -> str:
    if not hosts:
        return "(cluster)"
    more = f" +{len(hosts) - shown}" if len(hosts) > shown else ""
    return ", ".join(hosts[:shown]) + more


# --- the display model ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningStep:
    """A step in flight: where it runs, since when, and how long it should take at the run's pace
    (`expected`, wall seconds; None while the pace is unknown and the plan gives nothing)."""

    id: str
    hosts: tuple[str, ...]
    batch: str | None
    hop: str
    attempt: int
    elapsed: float
    expected: float | None

    @property
    def left(self) -> float | None:
        """Expected seconds left (negative: over its time)."""
        return None if self.expected is None else self.expected - self.elapsed


@dataclass(frozen=True)
class Snapshot:
    """Everything one frame (or one line) shows. `hop` is "" in single-hop plans, else e.g.
    "2/3 victoria"; `stopping` the reason the run winds down ("" while it runs on)."""

    run: str
    elapsed: float
    estimate: Estimate
    done: int
    total: int
    phases: tuple[tuple[str, int, int], ...]  # (phase, done, total) in plan order
    hop: str
    running: tuple[RunningStep, ...]
    failed: tuple[str, ...]
    interrupted: tuple[str, ...]
    stopping: str
    again_stops: bool  # a Ctrl-C paused the run: another one stops it at once
    stop_kind: str = ""  # a controller.Stop value, "interrupt" (stopped at once) or "finished"


def _hops(plan: Plan) -> tuple[dict[str, str], list[str]]:
    """Each step's hop and the hops in schedule order (one hop of "" in single-hop plans)."""
    of, by_head = {}, {}
    for step in plan.steps:  # a step's hop is its id's head's: asked once a head, not a step
        head = step.id.split("/", 1)[0]
        if head not in by_head:
            by_head[head] = hop_of(step)
        of[step.id] = by_head[head]
    order: list[str] = []
    for step, _ in sorted(plan.scheduled(), key=lambda pair: pair[1]):
        if of[step.id] and of[step.id] not in order:
            order.append(of[step.id])
    return of, order


class Tracker:
    """The run as the display knows it: seeded from the journal's view, then fed engine events
    (from several threads: every method holds one lock)."""

    def __init__(self, plan: Plan, view: RunView | None = None, clock: RunClock | None = None):
        self.plan = plan
        self.run_id = view.run.id if view else ""
        self.clock = clock or RunClock()
        self.hop_of, self.hops = _hops(plan)
        self.phase_total = Counter(s.phase for s in plan.steps)
        self._lock = threading.Lock()
        steps = view.steps if view else {}
        self.done = {sid for sid, s in steps.items() if s.state.done}
        self.done_by_phase = Counter(plan.by_id[sid].phase for sid in self.done)
        self._estimate: tuple[float, Estimate] | None = None  # (when, what): see snapshot
        self.first_start = {sid: s.started for sid, s in steps.items() if s.started}
        self.observed = {
            sid: s.ended - s.started
            for sid, s in steps.items()
            if s.state is StepState.SUCCEEDED and s.started is not None and s.ended is not None
        }
        self.running: dict[str, tuple[float, int]] = {}  # step -> (this attempt's start, attempt)
        self.failed: list[str] = []
        self.interrupted: list[str] = []
        self.stopping = ""
        self.again_stops = False
        self.stop_kind = ""

    def apply(self, event: Event) -> None:
        kind, sid, ts = event["event"], event.get("step", ""), float(event.get("ts", 0.0))
        with self._lock:
            if kind == "run-started" and not self.run_id:  # a run followed from elsewhere
                self.run_id = str(event.get("run", ""))
                self.clock = RunClock(0.0, ts)
            elif kind == "step-started":
                self.running[sid] = (ts, int(event.get("attempt", 1)))
                self.first_start.setdefault(sid, ts)
            elif kind == "step-succeeded":
                self.running.pop(sid, None)
                if sid not in self.done and sid in self.plan.by_id:
                    self.done.add(sid)
                    self.done_by_phase[self.plan.by_id[sid].phase] += 1
                self.observed[sid] = ts - self.first_start.get(sid, ts)
                if self._estimate and self._estimate[1].pace is None:
                    self._estimate = None  # the first pace: do not wait a second to show it
            elif kind in ("step-failed", "step-retrying", "step-interrupted"):
                self.running.pop(sid, None)
                if kind == "step-failed":
                    self.failed.append(sid)
                elif kind == "step-interrupted":
                    self.interrupted.append(sid)
            elif kind == "run-stopping":
                self.stopping = str(event.get("reason", ""))
                self.stop_kind = str(event.get("why", ""))
                self.again_stops = self.stop_kind == Stop.PAUSE.value and "Ctrl-C" in self.stopping
            elif kind == "run-finished":  # the last frame says how it ended, and no more hints
                self.stopping = f"run {event.get('state')}: {event.get('reason')}"
                self.stop_kind, self.again_stops = "finished", False

    def snapshot(self, now: float) -> Snapshot:
        """The frame at wall-clock time `now`. The estimate walks the whole plan, so it is
        computed at most once per ESTIMATE_EVERY seconds of `now` (a line per step of a
        10,000-step run must not cost 10,000 walks); everything else is current."""
        with self._lock:
            running = dict(self.running)
            in_flight = {sid: max(0.0, now - start) for sid, (start, _) in running.items()}
            cached = self._estimate
            if cached is None or not 0.0 <= now - cached[0] < ESTIMATE_EVERY:
                cached = (now, estimate(self.plan, self.done, in_flight, self.observed))
                self._estimate = cached
            done, phases_done = len(self.done), Counter(self.done_by_phase)
            failed, interrupted = tuple(self.failed), tuple(self.interrupted)
            stopping, again, kind = self.stopping, self.again_stops, self.stop_kind
            hop = self._hop(running)
        plan, est = self.plan, cached[1]
        factor = est.pace if est.pace else 1.0
        steps = tuple(
            RunningStep(
                id=sid,
                hosts=plan.by_id[sid].nodes,
                batch=plan.by_id[sid].batch,
                hop=self.hop_of[sid],
                attempt=attempt,
                elapsed=in_flight[sid],
                expected=plan.by_id[sid].duration * factor,
            )
            for sid, (_, attempt) in sorted(running.items(), key=lambda item: item[1][0])
        )
        phases = tuple((p, phases_done[p], n) for p, n in self.phase_total.items())
        return Snapshot(
            run=self.run_id,
            elapsed=self.clock.at(now),
            estimate=est,
            done=done,
            total=len(plan.steps),
            phases=phases,
            hop=hop,
            running=steps,
            failed=failed,
            interrupted=interrupted,
            stopping=stopping,
            again_stops=again,
            stop_kind=kind,
        )

    def _hop(self, running: Mapping[str, object]) -> str:
        """The hops of the running steps (hops overlap: the next hop's control plane starts while
        the last one's computes roll), else of the next step due by the schedule; "" for a
        single-hop plan. E.g. "1/3 ussuri + 2/3 victoria"."""
        if len(self.hops) < 2:
            return ""
        current = {self.hop_of[sid] for sid in running if self.hop_of[sid]}
        if not current:
            due = min(
                ((t, s.id) for s, t in self.plan.scheduled() if s.id not in self.done), default=None
            )
            current = {self.hop_of[due[1]]} if due and self.hop_of[due[1]] else set()
        n = len(self.hops)
        return " + ".join(
            f"{self.hops.index(h) + 1}/{n} {h}" for h in sorted(current, key=self.hops.index)
        )


# --- what is printed ------------------------------------------------------------------------------


def run_line(plan: Plan, snap: Snapshot, driver: str, resumed: bool) -> str:
    """The first line of a run's output: `run <id> started|resumed: ...`."""
    moves = f", {plan.source} -> {plan.target}" if plan.source != plan.target else ""
    head = f"run {snap.run} {'resumed' if resumed else 'started'}: {plan.operation} of"
    head += f" {plan.cluster}{moves}, {snap.total} steps"
    if resumed:
        head += f", {snap.done} done, elapsed {clock_text(snap.elapsed)}"
    else:
        head += f", estimated {clock_text(plan.makespan)} at the plan's durations"
    # a simulated run says so from its first line on: nothing it reports happened to a cloud
    sim = ": SIMULATED, nothing is touched" if driver == "sim" else ""
    return f"{head}, driver {driver}{sim}"


def remaining_text(snap: Snapshot) -> str:
    est = snap.estimate
    if snap.done == snap.total:
        return "0:00"
    how = " (plan)" if est.pace is None else f" (pace {est.pace:.3g}x plan)"
    return f"~{clock_text(est.remaining)}{how}"


def progress_text(snap: Snapshot) -> str:
    """Steps done, time left and hop, for a line of its own."""
    hop = f", hop {snap.hop}" if snap.hop else ""
    return f"{snap.done}/{snap.total} steps, remaining {remaining_text(snap)}{hop}"


def status_text(snap: Snapshot) -> str:
    """The live frame's head: elapsed, time left, steps done, hop."""
    hop = f"   hop {snap.hop}" if snap.hop else ""
    return (
        f"elapsed {clock_text(snap.elapsed)}   remaining {remaining_text(snap)}   "
        f"{snap.done}/{snap.total} steps{hop}"
    )


def step_timing(step: RunningStep) -> str:
    left = step.left
    if left is None:
        return clock_text(step.elapsed)
    tail = f"~{clock_text(left)} left" if left >= 0 else f"{clock_text(-left)} over"
    return f"{clock_text(step.elapsed)} / {tail}"


def stopping_text(snap: Snapshot) -> str:
    """What a winding-down run is waiting for (the countdown after a Ctrl-C)."""
    if not snap.stopping or snap.stop_kind in ("interrupt", "finished"):
        return snap.stopping
    waits = [s.left for s in snap.running if s.left is not None]
    longest = f", about {clock_text(max(0.0, max(waits)))}" if waits else ""
    tidy = snap.stop_kind == Stop.THRESHOLD.value  # gates and re-enabling still run
    text = f"{snap.stopping}: " + (
        "only steps that disrupt nothing still start" if tidy else "no new step starts"
    )
    if snap.running:
        text += f"; waiting for {len(snap.running)} running step(s){longest}"
    if snap.again_stops:
        text += " - Ctrl-C again to stop now (steps in flight are recorded as interrupted)"
    return text


class LineDisplay:
    """Progress for logs: one line per step event, each with the run's clock; never redrawn."""

    def __init__(self, tracker: Tracker, stream: IO[str]) -> None:
        self.tracker = tracker
        self.stream = stream
        self._hops_seen: set[str] = set()
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        self.tracker.apply(event)
        lines = self.describe(event, self.tracker.snapshot(time.time()))
        if lines:
            with self._lock:
                self.stream.write("".join(f"{line}\n" for line in lines))
                self.stream.flush()

    def describe(self, event: Event, snap: Snapshot) -> list[str]:
        """The lines an event prints (none for driver chatter)."""
        kind, sid = event["event"], event.get("step", "")
        at = f"[{clock_text(snap.elapsed)}]"
        out = []
        if kind == "step-started":
            step = self.tracker.plan.by_id[sid]
            hop, hops = self.tracker.hop_of[sid], self.tracker.hops
            if hop and hop not in self._hops_seen:
                self._hops_seen.add(hop)
                out.append(f"{at} hop {hops.index(hop) + 1}/{len(hops)} {hop} begins")
            batch = f" (batch {step.batch})" if step.batch else ""
            attempt = f", attempt {event.get('attempt')}" if event.get("attempt", 1) > 1 else ""
            out.append(f"{at} start  {sid} on {hosts_text(step.nodes)}{batch}{attempt}")
        elif kind == "step-succeeded":
            took = self.tracker.observed.get(sid)
            out.append(f"{at} done   {sid} in {clock_text(took)}; {progress_text(snap)}")
        elif kind == "step-retrying":
            out.append(f"{at} retry  {sid} (attempt {event.get('attempt')}): {event.get('error')}")
        elif kind == "step-failed":
            out.append(f"{at} FAILED {sid}: {event.get('error')}")
        elif kind == "step-interrupted":
            out.append(f"{at} interrupted {sid} (in flight; resume probes it)")
        elif kind == "run-stopping":
            out.append(f"{at} {stopping_text(snap)}")
            out += [f"{at}   still running {s.id} on {hosts_text(s.hosts)}" for s in snap.running]
        elif kind == "run-finished":
            out.append(f"{at} run {event.get('state')}: {event.get('reason')}")
        if kind in ("step-succeeded", "step-failed", "step-retrying") and snap.stopping:
            out.append(f"{at}   waiting for {len(snap.running)} running step(s)")
        return out

    def close(self) -> None:
        pass


class LiveDisplay:
    """Progress for a terminal: a frame redrawn by rich's refresh thread (so elapsed time and the
    countdown of running steps move while nothing happens), failures printed above it."""

    def __init__(self, tracker: Tracker, console: Console, simulated: bool = False) -> None:
        from lifecycle.execution.runlog import LIVE_DISPLAY

        self.tracker = tracker
        self.console = console
        self.simulated = simulated
        self.live = Live(
            get_renderable=self.frame, console=console, refresh_per_second=2, transient=False
        )
        self.live.start()
        LIVE_DISPLAY.set()  # the run's log records stay off the console meanwhile

    def frame(self) -> RenderableType:
        snap = self.tracker.snapshot(time.time())
        return render_frame(snap, self.simulated)

    def emit(self, event: Event) -> None:
        self.tracker.apply(event)
        kind, sid = event["event"], event.get("step", "")
        if kind == "step-failed":
            self.console.print(f"[red]FAILED[/red] {sid}: {event.get('error')}", markup=True)
        elif kind == "step-retrying":
            self.console.print(f"[yellow]retrying[/yellow] {sid}: {event.get('error')}")
        elif kind == "step-interrupted":
            self.console.print(f"[yellow]interrupted[/yellow] {sid} (in flight; resume probes it)")
        elif kind == "run-stopping":
            self.console.print(f"[yellow]{event.get('reason')}[/yellow]")

    def close(self) -> None:
        from lifecycle.execution.runlog import LIVE_DISPLAY

        self.live.refresh()
        self.live.stop()
        LIVE_DISPLAY.clear()


def render_frame(snap: Snapshot, simulated: bool = False) -> RenderableType:
    """One frame of the live display; a sim run's head says SIMULATED on every frame."""
    head = Text(status_text(snap), style="bold")
    if simulated:
        head = Text.assemble(("SIMULATED", "bold reverse"), "   ", head)
    bars = Table.grid(padding=(0, 1))
    for name, done, total in (("all steps", snap.done, snap.total), *snap.phases):
        bar = ProgressBar(total=total, completed=done, width=40)
        bars.add_row(f"{name:<16}", bar, f"{done}/{total}")
    parts: list[RenderableType] = [head, bars]
    if snap.running:
        table = Table.grid(padding=(0, 2))
        for step in snap.running[:SHOWN]:
            table.add_row(
                "  >",
                step.id,
                hosts_text(step.hosts),
                f"batch {step.batch}" if step.batch else "",
                f"attempt {step.attempt}" if step.attempt > 1 else "",
                step_timing(step),
            )
        parts.append(table)
        if len(snap.running) > SHOWN:
            parts.append(Text(f"  ... and {len(snap.running) - SHOWN} more running"))
    if snap.failed:
        parts.append(Text(f"failed: {', '.join(snap.failed[:5])}", style="red"))
    if snap.stopping:
        parts.append(Text(stopping_text(snap), style="yellow"))
    return Group(*parts)


class Quiet:
    """--no-progress: the run's first line, then nothing until the report."""

    def emit(self, event: Event) -> None:
        pass

    def close(self) -> None:
        pass


Writer = Callable[[str], None]


class FirstLine:
    """For a run whose view is not known when the display opens (Mistral starts and journals it):
    print the run's first line when its run-started event arrives, then pass events on."""

    def __init__(self, inner: EventSink, tracker: Tracker, driver: str, write: Writer) -> None:
        self.inner, self.tracker, self.driver, self.write = inner, tracker, driver, write
        self._said = False

    def emit(self, event: Event) -> None:
        if event["event"] == "run-started" and not self._said:
            self._said = True
            self.tracker.apply(event)
            plan, snap = self.tracker.plan, self.tracker.snapshot(time.time())
            self.write(run_line(plan, snap, self.driver, resumed=False))
        self.inner.emit(event)

    def close(self) -> None:
        self.inner.close()


def open_display(
    mode: str,
    plan: Plan,
    view: RunView | None,
    journal: Journal | None,
    driver: str,
    stream: IO[str] | None = None,
) -> EventSink:
    """The progress sink for `mode` (one of MODES), after printing the run's first line to
    `stream` (stderr: stdout is the report's). Without a view (a run another service starts and
    journals) the first line waits for the run's run-started event."""
    out = stream or sys.stderr
    console = Console(file=out)
    write: Writer = _line_writer(out)
    if mode == "live":
        write = partial(console.print, markup=False, highlight=False)
    if view is None or journal is None:
        tracker = Tracker(plan)
        inner = _display(mode, tracker, console, out, driver == "sim")
        return FirstLine(inner, tracker, driver, write)
    transitions = journal.run_transitions(view.run.id)
    activity = [t for s in view.steps.values() for t in (s.started, s.ended) if t is not None]
    tracker = Tracker(plan, view, run_clock(transitions, activity))
    resumed = sum(1 for t in transitions if t.state is RunState.RUNNING) > 1
    write(run_line(plan, tracker.snapshot(time.time()), driver, resumed))
    log = view.run.intent.get("log")
    if log:  # where the whole story of this run is kept (lifecycle.execution.runlog)
        write(f"log: {log}")
    return _display(mode, tracker, console, out, driver == "sim")


def _display(
    mode: str, tracker: Tracker, console: Console, out: IO[str], simulated: bool = False
) -> EventSink:
    if mode == "live":
        return LiveDisplay(tracker, console, simulated)
    return LineDisplay(tracker, out) if mode == "lines" else Quiet()


def _line_writer(out: IO[str]) -> Writer:
    def write(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    return write
