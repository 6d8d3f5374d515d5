"""Plans as a reader sees them: a tree of hops, phases, batches and steps, in time order.

Every level of the tree is sorted by when it starts, so reading top to bottom follows the run.
Schema migrations (`db-expand`, `db-contract`) sit under a "database" heading of their own: their
plan JSON phase stays what the planner gave them (control-plane, data-plane), because the JSON and
its digest are a contract, but a reader looks for them together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lifecycle.catalog import load_catalog
from lifecycle.planning.plan import Plan, Step

DATABASE = "database"
_SCHEMA = {"expand": "schema expand", "contract": "schema contract"}


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
    """h:mm:ss from the start of the run: 1:02:03."""
    total = round(seconds)
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def plural(count: int, word: str, words: str | None = None) -> str:
    """ "1 step", "2 steps" (or the irregular plural given)."""
    return f"{count} {word if count == 1 else (words or word + 's')}"


def display_phase(step: Step) -> str:
    """The phase a reader sees: the plan's, except schema migrations, which are "database"."""
    return DATABASE if step.param("playbook") == "db-migrate" else step.phase


def hop_of(step: Step) -> str:
    """The release a step's hop leads to, in plans of several hops (else "")."""
    head = step.id.split("/", 1)[0]
    catalog = load_catalog()
    if head in catalog.openstack.names() or head.removeprefix("ceph-") in catalog.ceph.names():
        return head
    return ""


def hops(plan: Plan) -> list[str]:
    """The hops of a multi-hop plan in the order they start ([] for a single hop)."""
    first: dict[str, float] = {}
    for step, start in plan.scheduled():
        hop = hop_of(step)
        if hop:
            first[hop] = min(start, first.get(hop, start))
    return sorted(first, key=lambda hop: (first[hop], hop))


def summary(plan: Plan) -> str:
    """Three lines: what changes, how long it takes (jargon explained once), the digest."""
    extra = dict(plan.extra)
    ceph = f", ceph {extra['ceph_from']} -> {extra['ceph_to']}" if "ceph_to" in extra else ""
    moves = f"{plan.source} -> {plan.target}" if plan.source != plan.target else str(plan.source)
    if plan.source is None:  # a deploy: nothing runs before it
        moves = f"at {plan.target}"
    hop_list = hops(plan)
    via = f" in {len(hop_list)} hops ({', '.join(hop_list)})" if len(hop_list) > 1 else ""
    return (
        f"{plan.operation} {plan.cluster}: {moves}{via}{ceph}\n"
        f"{plural(len(plan.steps), 'step')}, estimated duration {duration_text(plan.makespan)} "
        f"(at best {duration_text(plan.lower_bound)}: no order within the dependencies and "
        "capacity limits is shorter)\n"
        f"plan digest {plan.digest}\n"
        "each step: id [hosts]  @start (h:mm:ss from the start of the run) for its estimated length"
    )


@dataclass(frozen=True)
class Group:
    """A heading of the tree and what it holds (groups or steps), in time order."""

    label: str
    items: tuple[Group | Step, ...]


def _steps(item: Group | Step) -> Iterable[Step]:
    if isinstance(item, Step):
        yield item
    else:
        for child in item.items:
            yield from _steps(child)


def _sorted(plan: Plan, items: Iterable[Group | Step]) -> tuple[Group | Step, ...]:
    def key(item: Group | Step) -> tuple[float, str]:
        first = min(_steps(item), key=lambda s: (plan.start_of[s.id], s.id))
        return plan.start_of[first.id], first.id

    return tuple(sorted(items, key=key))


def _batch_of(step: Step) -> str:
    if display_phase(step) == DATABASE:
        return _SCHEMA.get(str(step.param("phase")), "schema")
    return step.batch or ""


def _phase_group(plan: Plan, phase: str, steps: list[Step]) -> Group:
    """A phase: its batches (a batch of one step is shown as that step) and unbatched steps."""
    batches: dict[str, list[Step]] = {}
    loose: list[Group | Step] = []
    for step in steps:
        batch = _batch_of(step)
        if batch:
            batches.setdefault(batch, []).append(step)
        else:
            loose.append(step)
    for batch, members in batches.items():
        ordered = _sorted(plan, members)
        loose.append(Group(batch, ordered) if len(ordered) > 1 else ordered[0])
    return Group(phase, _sorted(plan, loose))


def _phases(plan: Plan, steps: list[Step]) -> list[Group | Step]:
    by_phase: dict[str, list[Step]] = {}
    for step in steps:
        by_phase.setdefault(display_phase(step), []).append(step)
    return [_phase_group(plan, phase, members) for phase, members in by_phase.items()]


def plan_groups(plan: Plan) -> tuple[Group | Step, ...]:
    """The tree's top level: one group per hop (multi-hop plans) and per phase, by start."""
    hop_list = hops(plan)
    by_hop: dict[str, list[Step]] = {}
    for step in plan.steps:
        by_hop.setdefault(hop_of(step), []).append(step)
    top: list[Group | Step] = _phases(plan, by_hop.pop("", []))
    for index, hop in enumerate(hop_list, start=1):
        label = f"hop {index} of {len(hop_list)}: to {hop}"
        top.append(Group(label, _sorted(plan, _phases(plan, by_hop[hop]))))
    return _sorted(plan, top)


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


def _heading(plan: Plan, group: Group) -> str:
    steps = list(_steps(group))
    start = min(plan.start_of[s.id] for s in steps)
    end = max(plan.end_of(s.id) for s in steps)
    return f"{group.label}  ({plural(len(steps), 'step')}, {clock_text(start)} - {clock_text(end)})"


def _lines(plan: Plan, items: tuple[Group | Step, ...], pad: str) -> Iterable[str]:
    for index, item in enumerate(items):
        last = index == len(items) - 1
        mark = "└── " if last else "├── "
        if isinstance(item, Step):
            yield f"{pad}{mark}{_step_line(plan, item)}"
        else:
            yield f"{pad}{mark}{_heading(plan, item)}"
            yield from _lines(plan, item.items, pad + ("    " if last else "│   "))


def render_tree(plan: Plan) -> str:
    """The plan as text: the summary, then hops > phases > batches > steps, each in time order."""
    return "\n".join([summary(plan), *_lines(plan, plan_groups(plan), "")]) + "\n"
