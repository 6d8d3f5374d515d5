"""The schedule as a picture: an SVG Gantt chart, one row per batch, coloured by phase."""

from __future__ import annotations

from html import escape

from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.render import clock_text, duration_text, hop_of

_COLOURS = {
    "precheck": "#6c757d",
    "infra": "#d9480f",
    "control-plane": "#1971c2",
    "data-plane": "#2f9e44",
    "ceph": "#9c36b5",
    "postcheck": "#6c757d",
}
_ROW, _LABEL, _WIDTH = 18, 260, 1100


def _rows(plan: Plan) -> list[tuple[str, list[Step]]]:
    rows: dict[str, list[Step]] = {}
    for step, _ in sorted(plan.scheduled(), key=lambda p: (p[1], p[0].id)):
        hop = hop_of(step)
        label = step.batch or step.id.removeprefix(f"{hop}/")
        key = f"{hop}: {label}" if hop else label
        rows.setdefault(key, []).append(step)
    return list(rows.items())


def render_gantt_svg(plan: Plan) -> str:
    """A self-contained SVG document of the plan's schedule."""
    rows = _rows(plan)
    span = plan.makespan or 1.0
    scale = (_WIDTH - _LABEL - 20) / span
    height = (len(rows) + 3) * _ROW
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        'font-family="monospace" font-size="11">',
        f'<text x="4" y="13" font-weight="bold">{escape(plan.operation)} {escape(plan.cluster)}'
        f": {escape(str(plan.source))} -&gt; {escape(str(plan.target))}, makespan "
        f"{duration_text(plan.makespan)}, lower bound {duration_text(plan.lower_bound)}</text>",
    ]
    for tick in range(0, int(span) + 1, max(600, int(span / 10) // 600 * 600 or 600)):
        x = _LABEL + tick * scale
        out.append(
            f'<line x1="{x:.1f}" y1="{_ROW}" x2="{x:.1f}" y2="{height - _ROW}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{x:.1f}" y="{height - 4}" fill="#666">{clock_text(tick)}</text>')
    for i, (label, steps) in enumerate(rows):
        y = (i + 1.5) * _ROW
        out.append(f'<text x="4" y="{y + 12:.1f}">{escape(label[:38])}</text>')
        for step in steps:
            x = _LABEL + plan.start_of[step.id] * scale
            w = max(step.duration * scale, 1.0)
            colour = _COLOURS.get(step.phase, "#868e96")
            out.append(
                f'<rect x="{x:.1f}" y="{y + 2:.1f}" width="{w:.1f}" height="{_ROW - 4}" '
                f'fill="{colour}"><title>{escape(step.id)} '
                f"@{clock_text(plan.start_of[step.id])} for "
                f"{duration_text(step.duration)}</title></rect>"
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"
