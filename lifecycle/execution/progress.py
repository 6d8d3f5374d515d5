"""Live progress in the terminal with rich: overall and per-phase bars, the steps running now,
elapsed and estimated remaining time, failures as they happen."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from lifecycle.execution.events import Event
from lifecycle.planning.plan import Plan


class Estimate:
    """Remaining time from the plan's schedule, corrected by how fast the run has gone so far:
    the plan says where in its schedule the finished work reaches and how long the rest takes."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.reached = 0.0  # the latest scheduled end among finished steps

    def done(self, step_id: str) -> None:
        if step_id in self.plan.by_id:
            self.reached = max(self.reached, self.plan.end_of(step_id))

    def remaining(self, elapsed: float) -> float | None:
        left = max(0.0, self.plan.makespan - self.reached)
        if self.reached <= 0.0:
            return None
        return left * (elapsed / self.reached)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class RichProgress:
    """An EventSink that draws the run; `close()` leaves the final picture on screen."""

    def __init__(
        self, plan: Plan, console: Console | None = None, done: Iterable[str] = ()
    ) -> None:
        self.plan = plan
        self.console = console or Console(stderr=True)
        self.estimate = Estimate(plan)
        self.started = time.monotonic()
        self.running: dict[str, int] = {}
        self.failures: list[str] = []
        self.bars = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=self.console,
        )
        totals = Counter(s.phase for s in plan.steps)
        self.overall: TaskID = self.bars.add_task("all steps", total=len(plan.steps))
        self.phases: dict[str, TaskID] = {
            phase: self.bars.add_task(phase, total=n) for phase, n in totals.items()
        }
        for sid in done:
            self._advance(sid)
        self.live = Live(self._render(), console=self.console, refresh_per_second=4)
        self.live.start()

    def _render(self) -> Group:
        elapsed = time.monotonic() - self.started
        head = Text(
            f"elapsed {_clock(elapsed)}   est. remaining "
            f"{_clock(self.estimate.remaining(elapsed))}   running {len(self.running)}"
            f"   failures {len(self.failures)}"
        )
        table = Table.grid(padding=(0, 2))
        for sid, attempt in list(self.running.items())[:8]:
            batch = self.plan.by_id[sid].batch
            table.add_row(
                "  ▶",
                sid,
                f"batch {batch}" if batch else "",
                f"attempt {attempt}" if attempt > 1 else "",
            )
        return Group(head, self.bars, table)

    def emit(self, event: Event) -> None:
        kind, sid = event["event"], event.get("step", "")
        if kind == "step-started":
            self.running[sid] = event.get("attempt", 1)
        elif kind == "step-succeeded":
            self.running.pop(sid, None)
            self._advance(sid)
        elif kind in ("step-failed", "step-retrying"):
            self.running.pop(sid, None)
            word = "FAILED" if kind == "step-failed" else "retrying"
            self.console.print(f"[red]{word}[/red] {sid}: {event.get('error')}")
            if kind == "step-failed":
                self.failures.append(sid)
        elif kind == "run-stopping":
            self.console.print(f"[yellow]stopping:[/yellow] {event.get('reason')}")
        self.live.update(self._render())

    def _advance(self, sid: str) -> None:
        self.estimate.done(sid)
        self.bars.advance(self.overall)
        self.bars.advance(self.phases[self.plan.by_id[sid].phase])

    def close(self) -> None:
        self.live.update(self._render())
        self.live.stop()
