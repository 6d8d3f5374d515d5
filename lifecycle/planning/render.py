"""Plans as a reader sees them: a tree of hops, phases, batches and steps with their timing."""

from __future__ import annotations

from lifecycle.catalog import load_catalog
from lifecycle.planning.plan import Plan, Step


def duration_text(seconds: float) -> str:
    """1h02m, 5m00s, 30s."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def clock_text(seconds: float) -> str:
    total = round(seconds)
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def summary(plan: Plan) -> str:
    ratio = plan.makespan / plan.lower_bound if plan.lower_bound else 1.0
    extra = dict(plan.extra)
    ceph = f", ceph {extra['ceph_from']} -> {extra['ceph_to']}" if "ceph_to" in extra else ""
    moves = f"{plan.source} -> {plan.target}" if plan.source != plan.target else plan.source
    return (
        f"{plan.operation} {plan.cluster}: {moves}{ceph}\n"
        f"{len(plan.steps)} steps, makespan {duration_text(plan.makespan)}, "
        f"lower bound {duration_text(plan.lower_bound)} (ratio {ratio:.3f})\n"
        f"digest {plan.digest}"
    )


def hop_of(step: Step) -> str:
    """The release a step's hop leads to, in plans of several hops (else "")."""
    head = step.id.split("/", 1)[0]
    catalog = load_catalog()
    if head in catalog.openstack.names() or head.removeprefix("ceph-") in catalog.ceph.names():
        return head
    return ""


def _groups(plan: Plan) -> dict[str, dict[str, dict[str, list[Step]]]]:
    """hop -> phase -> batch -> steps, each level in order of first start."""
    tree: dict[str, dict[str, dict[str, list[Step]]]] = {}
    for step, _ in sorted(plan.scheduled(), key=lambda pair: (pair[1], pair[0].id)):
        batch = step.batch or ""
        tree.setdefault(hop_of(step), {}).setdefault(step.phase, {}).setdefault(batch, []).append(
            step
        )
    return tree


def _step_line(plan: Plan, step: Step) -> str:
    nodes = (
        ",".join(step.nodes)
        if len(step.nodes) <= 4
        else (f"{','.join(step.nodes[:3])},+{len(step.nodes) - 3}")
    )
    where = f" [{nodes}]" if nodes else ""
    return (
        f"{step.id}{where}  @{clock_text(plan.start_of[step.id])} "
        f"for {duration_text(step.duration)}"
    )


def render_tree(plan: Plan) -> str:
    """The plan as text: summary, then hops > phases > batches > steps with start and length."""
    lines = [summary(plan)]
    for hop, phases in _groups(plan).items():
        indent = ""
        if hop:
            lines.append(f"hop to {hop}")
            indent = "  "
        phase_items = list(phases.items())
        for pi, (phase, batches) in enumerate(phase_items):
            last_phase = pi == len(phase_items) - 1
            steps = [s for b in batches.values() for s in b]
            span = _span(plan, steps)
            lines.append(f"{indent}{'└── ' if last_phase else '├── '}{phase}  ({span})")
            pad = indent + ("    " if last_phase else "│   ")
            batch_items = list(batches.items())
            for bi, (batch, bsteps) in enumerate(batch_items):
                last_batch = bi == len(batch_items) - 1
                if batch and len(bsteps) > 1:
                    lines.append(
                        f"{pad}{'└── ' if last_batch else '├── '}{batch}  ({_span(plan, bsteps)})"
                    )
                    inner = pad + ("    " if last_batch else "│   ")
                    for si, step in enumerate(bsteps):
                        mark = "└── " if si == len(bsteps) - 1 else "├── "
                        lines.append(f"{inner}{mark}{_step_line(plan, step)}")
                else:
                    for si, step in enumerate(bsteps):
                        final = last_batch and si == len(bsteps) - 1
                        lines.append(f"{pad}{'└── ' if final else '├── '}{_step_line(plan, step)}")
    return "\n".join(lines) + "\n"


def _span(plan: Plan, steps: list[Step]) -> str:
    start = min(plan.start_of[s.id] for s in steps)
    end = max(plan.end_of(s.id) for s in steps)
    return f"{len(steps)} steps, {clock_text(start)} - {clock_text(end)}"
