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
    from matplotlib.collections import PolyCollection
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


def _bars(chart: GanttChart) -> PolyCollection:
    """Every bar as one collection: a thousand separate patches take seconds to draw."""
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_rgba

    boxes, colours = [], []
    for y, row in enumerate(chart.rows):
        for bar in row.bars:
            half = 0.39 if bar.down else 0.25
            x0, x1 = bar.start, bar.start + max(bar.duration, 1.0)
            boxes.append([(x0, y - half), (x1, y - half), (x1, y + half), (x0, y + half)])
            colour = OTHER_HOP if bar.other_hop else _colour(bar.phase)
            colours.append(to_rgba(colour, 1.0 if bar.down or bar.other_hop else 0.45))
    return PolyCollection(boxes, facecolors=colours, linewidths=0)


def draw(chart: GanttChart) -> Figure:
    """One chart as a matplotlib Figure (not attached to pyplot: no global state)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = chart.rows
    fig = Figure(figsize=(15, 1.9 + 0.26 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    ax.add_collection(_bars(chart))
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
