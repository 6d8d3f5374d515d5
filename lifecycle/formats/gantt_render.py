"""Gantt charts (planning/gantt.py's layout) drawn with matplotlib as SVG, PNG or PDF.

A plan of several hops gives one chart per hop: one page each in a PDF, one file each for SVG and
PNG (`plan-1-ussuri.png`, ...; see pictures.page_paths). matplotlib is imported here only, when a
chart is drawn, so that `lifecycle --help` stays fast. Text uses DejaVu Sans, which matplotlib
ships, so it renders on a machine without system fonts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifecycle.errors import UsageError
from lifecycle.formats.pictures import page_paths, picture_format
from lifecycle.planning.gantt import GanttChart

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PHASE_COLOURS = {
    "precheck": "#495057",
    "infra": "#e8590c",
    "database": "#f08c00",
    "control-plane": "#1c7ed6",
    "data-plane": "#2f9e44",
    "ceph": "#9c36b5",
    "postcheck": "#0c8599",
}
OTHER_HOP = "#ced4da"
_LEGEND: dict[str, Any] = {
    "fontsize": 8,
    "title_fontsize": 9,
    "frameon": False,
    "alignment": "left",
}


def _colour(phase: str) -> str:
    return PHASE_COLOURS.get(phase, "#868e96")


def draw(chart: GanttChart) -> Figure:
    """One chart as a matplotlib Figure (not attached to pyplot: no global state)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = chart.rows
    fig = Figure(figsize=(15, 1.9 + 0.26 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    for y, row in enumerate(rows):
        for bar in row.bars:
            colour = OTHER_HOP if bar.other_hop else _colour(bar.phase)
            ax.barh(
                y,
                max(bar.duration, 1.0),
                left=bar.start,
                height=0.78 if bar.down else 0.5,
                color=colour,
                alpha=1.0 if bar.down or bar.other_hop else 0.45,
                linewidth=0,
            )
    ax.set_yticks(range(len(rows)), [row.label for row in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first row on top
    lo, hi = chart.window
    ax.set_xlim(lo, max(hi, lo + 60))
    ax.set_xticks([tick.at for tick in chart.ticks], [tick.label for tick in chart.ticks])
    ax.grid(axis="x", color="#dee2e6", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.set_xlabel(chart.axis_label)
    fig.suptitle(f"{chart.title}\n{chart.subtitle}", fontsize=11)
    phases = ax.legend(
        handles=[Patch(color=_colour(phase), label=phase) for phase in chart.phases],
        title="phase",
        loc="upper left",
        bbox_to_anchor=(1.005, 1.0),
        **_LEGEND,
    )
    ax.add_artist(phases)  # a second legend() call would replace it
    styles = [
        Patch(color="#343a40", label="tall, solid: the host's\nservices are down"),
        Patch(color="#343a40", alpha=0.45, label="short, pale: work on the\nhost, services up"),
    ]
    if any(bar.other_hop for row in rows for bar in row.bars):
        styles.append(Patch(color=OTHER_HOP, label="a step of another hop\nat the same time"))
    ax.legend(
        handles=styles, title="bars", loc="lower left", bbox_to_anchor=(1.005, 0.0), **_LEGEND
    )
    return fig


def write_gantt(charts: tuple[GanttChart, ...], path: str) -> list[Path]:
    """Write the charts to `path` in the format its suffix names; return the files written.

    Raises UsageError for an unknown suffix or a file that cannot be written."""
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    fmt = picture_format(path, "--gantt")
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt, {})
    try:
        with matplotlib.rc_context(
            {
                "font.family": "DejaVu Sans",
                "font.size": 9,
                "svg.fonttype": "none",  # text stays text in SVG: searchable, and smaller
                "svg.hashsalt": "lifecycle",  # the same plan gives the same bytes
            }
        ):
            if fmt == "pdf":
                with PdfPages(path, metadata=metadata) as pdf:
                    for chart in charts:
                        pdf.savefig(draw(chart))
                return [Path(path)]
            written = page_paths(path, [chart.hop or "plan" for chart in charts])
            for chart, target in zip(charts, written, strict=True):
                draw(chart).savefig(target, format=fmt, dpi=110, metadata=metadata)
            return written
    except OSError as exc:
        raise UsageError.at(path, "--gantt", f"a writable file ({exc.strerror})") from exc
