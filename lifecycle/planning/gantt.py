"""The schedule as a Gantt chart, as data: rows of bars for formats/gantt_render to draw.

One row per host, so an operator sees when each controller is down; steps that name no host
(the cluster-wide checks) get a row "cluster" of their own. A bar is a step on a host, coloured by
the step's phase (render.display_phase); it is solid when the step takes services of that host
down (it appears in the step's `disrupts`) and pale when the step only works there (a health
check, an evacuation, a schema migration run from that host).

A plan of several hops gives one chart per hop. Hops overlap in time (hop 2's infra may start
while hop 1's computes still upgrade), so each chart also shows, in grey, the other hops' steps on
the same hosts during its time window: a host that looks free in one chart may be busy in another.
Steps that belong to no hop (precheck, Ceph, postcheck) go to the chart of the hop running when
they start. Every chart has the same rows, so pages compare line by line.

Times on the axis are hours:minutes from the start of the run, or wall-clock times when the
operator gives the run's start (`--start`, ISO 8601), in that time's own offset.
Pure: no I/O, no clock; the start time is an input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from lifecycle.errors import UsageError
from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.render import display_phase, duration_text, hop_of, hops, plural

CLUSTER_ROW = "cluster"
# Tick spacings, in minutes, from which the widest giving at most MAX_TICKS ticks is chosen.
_SPACINGS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 720, 1440)
MAX_TICKS = 12


@dataclass(frozen=True)
class Bar:
    """One step on one row: `start` and `duration` in seconds from the start of the run."""

    step_id: str
    phase: str
    start: float
    duration: float
    down: bool  # the step disrupts services of this row's host
    other_hop: bool = False  # context: a step of another hop in this chart's window


@dataclass(frozen=True)
class Row:
    label: str  # a host name, or CLUSTER_ROW
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class Tick:
    at: float  # seconds from the start of the run
    label: str


@dataclass(frozen=True)
class GanttChart:
    """One picture: title lines, rows top to bottom, the phases in its legend, its time axis."""

    title: str
    subtitle: str
    hop: str  # "" for a plan of one hop
    rows: tuple[Row, ...]
    phases: tuple[str, ...]  # in order of first start
    window: tuple[float, float]  # seconds from the start of the run
    ticks: tuple[Tick, ...]
    axis_label: str


def parse_start(text: str) -> datetime:
    """An ISO 8601 date and time (`2026-12-01T22:00`, `...Z`, `...+01:00`) or UsageError."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise UsageError.at(
            "--start", "", f"an ISO 8601 date and time like 2026-12-01T22:00+00:00, not {text!r}"
        ) from None


def _natural(name: str) -> tuple[object, ...]:
    """cmp-2 before cmp-10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def row_labels(plan: Plan) -> list[str]:
    """Every host of the plan (and "cluster" for steps on none), by first start, then name."""
    first: dict[str, float] = {}
    for step, start in plan.scheduled():
        for label in step.nodes or (CLUSTER_ROW,):
            first[label] = min(start, first.get(label, start))
    return sorted(first, key=lambda label: (first[label], _natural(label)))


def _chart_of(plan: Plan, hop_list: list[str]) -> dict[str, str]:
    """step id -> the hop whose chart owns it ("" when the plan has one hop)."""
    if len(hop_list) < 2:
        return {step.id: "" for step in plan.steps}
    windows: dict[str, tuple[float, float]] = {}
    owner = {step.id: hop_of(step) for step in plan.steps}
    for step in plan.steps:
        hop = owner[step.id]
        if hop:
            lo, hi = windows.get(hop, (plan.start_of[step.id], plan.end_of(step.id)))
            windows[hop] = (min(lo, plan.start_of[step.id]), max(hi, plan.end_of(step.id)))
    for step_id, hop in owner.items():
        if not hop:  # the hop running when it starts, else the nearest; the earlier on a tie
            at = plan.start_of[step_id]
            owner[step_id] = min(
                hop_list,
                key=lambda h: (max(windows[h][0] - at, at - windows[h][1], 0.0), windows[h][0]),
            )
    return owner


def _bars(plan: Plan, step: Step, other_hop: bool) -> dict[str, Bar]:
    """The bars of one step, by row label."""
    out = {}
    for label in step.nodes or (CLUSTER_ROW,):
        down = any(item.endswith(f"@{label}") for item in step.disrupts)
        out[label] = Bar(
            step.id,
            display_phase(step),
            plan.start_of[step.id],
            step.duration,
            down,
            other_hop,
        )
    return out


def ticks(window: tuple[float, float], start: datetime | None) -> tuple[Tick, ...]:
    """Round times inside the window: h:mm from the start, or wall-clock HH:MM (date when the day
    changes, and on the first tick)."""
    lo, hi = window
    spacing = 60 * next((m for m in _SPACINGS if (hi - lo) / (60 * m) <= MAX_TICKS), _SPACINGS[-1])
    offset = 0.0
    if start is not None:  # align ticks on the wall clock: 22:15, 22:30, not 22:07, 22:22
        midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
        offset = (start - midnight).total_seconds()
    first = -(-(lo + offset) // spacing) * spacing - offset
    out: list[Tick] = []
    last_day = None
    at = first
    while at <= hi + 1e-9:
        if start is None:
            whole = round(at)
            label = f"{whole // 3600}:{whole % 3600 // 60:02d}"
        else:
            when = start + timedelta(seconds=at)
            day = when.date()
            label = when.strftime("%H:%M") if day == last_day else when.strftime("%Y-%m-%d\n%H:%M")
            last_day = day
        out.append(Tick(at, label))
        at += spacing
    return tuple(out)


def _axis_label(start: datetime | None) -> str:
    if start is None:
        return "hours:minutes from the start of the run"
    offset = start.strftime("%z")  # +0100
    zone = f"UTC{offset[:3]}:{offset[3:]}" if offset else "local time, as given"
    return f"wall-clock time ({zone}), the run starting {start.isoformat(timespec='minutes')}"


def _titles(plan: Plan, hop: str, hop_list: list[str], own: int) -> tuple[str, str]:
    extra = dict(plan.extra)
    ceph = f", Ceph {extra['ceph_from']} \u2192 {extra['ceph_to']}" if "ceph_to" in extra else ""
    which = f" \u2014 hop {hop_list.index(hop) + 1} of {len(hop_list)}: to {hop}" if hop else ""
    title = f"{plan.operation} {plan.cluster}: {plan.source} \u2192 {plan.target}{ceph}{which}"
    short = plan.digest.removeprefix("sha256:")[:12]
    subtitle = (
        f"plan sha256:{short} \u00b7 {plural(own, 'step')} \u00b7 whole plan: estimated duration "
        f"{duration_text(plan.makespan)} (at best {duration_text(plan.lower_bound)})"
    )
    return title, subtitle


def gantt_charts(plan: Plan, start: datetime | None = None) -> tuple[GanttChart, ...]:
    """One chart for a plan of one hop, one per hop (in order) otherwise; see the module doc."""
    hop_list = hops(plan)
    owner = _chart_of(plan, hop_list)
    labels = row_labels(plan)
    charts = []
    for hop in hop_list if len(hop_list) > 1 else [""]:
        own = [s for s in plan.steps if owner[s.id] == hop]
        lo = min((plan.start_of[s.id] for s in own), default=0.0)
        hi = max((plan.end_of(s.id) for s in own), default=0.0)
        rows: dict[str, list[Bar]] = {label: [] for label in labels}
        for step, at in plan.scheduled():
            mine = owner[step.id] == hop
            if mine or (at < hi and at + step.duration > lo):
                for label, bar in _bars(plan, step, other_hop=not mine).items():
                    rows[label].append(bar)
        phases = sorted(
            {display_phase(s) for s in own},
            key=lambda p: min(plan.start_of[s.id] for s in own if display_phase(s) == p),
        )
        title, subtitle = _titles(plan, hop, hop_list, len(own))
        charts.append(
            GanttChart(
                title=title,
                subtitle=subtitle,
                hop=hop,
                rows=tuple(
                    Row(label, tuple(sorted(bars, key=lambda b: (b.start, b.step_id))))
                    for label, bars in rows.items()
                ),
                phases=tuple(phases),
                window=(lo, hi),
                ticks=ticks((lo, hi), start),
                axis_label=_axis_label(start),
            )
        )
    return tuple(charts)
