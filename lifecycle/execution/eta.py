"""How long a run has been going and how long it has left.

Pure functions of the plan, the journal's timings and `now` (no clock read here): the live display
calls them once a second, the tests call them with made-up timings. Times are seconds; "plan
seconds" are the plan's own durations, "wall seconds" what the run takes at its observed pace.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from lifecycle.execution.records import RunTransition
from lifecycle.execution.states import RunState
from lifecycle.planning.plan import Plan


@dataclass(frozen=True)
class RunClock:
    """Running time of a run over every process that ran it: `before` seconds in closed RUNNING
    intervals, plus the open one from `since` (a wall-clock time) when the run is RUNNING now."""

    before: float = 0.0
    since: float | None = None

    def at(self, now: float) -> float:
        return self.before + (max(0.0, now - self.since) if self.since is not None else 0.0)


def run_clock(transitions: Sequence[RunTransition], activity: Iterable[float] = ()) -> RunClock:
    """The run's clock from its journaled run transitions (oldest first).

    Paused, failed or waiting-for-the-operator time does not count. An interval whose process
    died (RUNNING followed by RUNNING, as resume records after a crash) ends at the last journal
    `activity` (step transition times) inside it: nothing later proves the process was alive."""
    marks = sorted(activity)
    before, since = 0.0, None
    for rt in transitions:
        if since is not None:
            end = rt.ts
            if rt.state is RunState.RUNNING:  # the previous process died: its last sign of life
                i = bisect_right(marks, rt.ts)
                end = marks[i - 1] if i and marks[i - 1] >= since else since
            before += max(0.0, end - since)
        since = rt.ts if rt.state is RunState.RUNNING else None
    return RunClock(before, since)


def pace(plan: Plan, observed: Mapping[str, float]) -> float | None:
    """Observed over planned duration, summed over finished steps (so long steps weigh most);
    None until a step with a planned duration has finished. 0.5 = twice as fast as planned."""
    planned = took = 0.0
    for sid, seconds in observed.items():
        step = plan.by_id.get(sid)
        if step is not None and step.duration > 0:
            planned += step.duration
            took += max(0.0, seconds)
    return took / planned if planned > 0 else None


@dataclass(frozen=True)
class Estimate:
    """Time left: `remaining` wall seconds = `pace` x the larger of the plan seconds left on the
    critical path and in the schedule. `pace` is None while no step has finished: the plan's
    durations are then taken as they are."""

    remaining: float
    pace: float | None
    critical: float  # plan seconds on the longest chain of steps not done yet
    scheduled: float  # plan seconds from the earliest unfinished point of the schedule to its end


def estimate(
    plan: Plan,
    done: Collection[str],
    running: Mapping[str, float],
    observed: Mapping[str, float],
) -> Estimate:
    """Time left for `plan` given the steps `done`, the steps `running` (-> wall seconds they
    have run so far) and the `observed` wall durations of finished steps.

    The critical path (dependencies only) bounds the time left from below whatever the resources;
    the schedule (which also keeps one step per node and the batch rules) says where the run stands
    in it: its earliest unfinished point. The larger of the two, in plan seconds, is scaled by the
    observed pace. A running step counts for what is left of its planned duration at that pace,
    never less than nothing (a step over its time keeps the estimate from falling, not rising)."""
    speed = pace(plan, observed)
    factor = speed if speed else 1.0
    chain: dict[str, float] = {}  # plan seconds until each unfinished step is done
    position = plan.makespan
    for step, start in plan.scheduled():  # the plan's steps are in topological order
        if step.id in done:
            continue
        own = step.duration
        if step.id in running:
            own = max(0.0, step.duration - running[step.id] / factor)
        chain[step.id] = own + max((chain[d] for d in step.depends_on if d in chain), default=0.0)
        position = min(position, start + step.duration - own)
    critical = max(chain.values(), default=0.0)
    scheduled = max(0.0, plan.makespan - position) if chain else 0.0
    return Estimate(max(critical, scheduled) * factor, speed, critical, scheduled)
