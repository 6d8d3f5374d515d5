"""Membership rules: clustered stores whose members leave and join keep quorum in every order.

The other rules (any_order.py) see a disruption as temporary: a member is back when its step
ends. A replacement or a scale-in changes the membership itself, for good: a member stopped and
forgotten (`rabbitmq-forget`), removed (`galera-remove`, `ceph-mon-remove`), or joined
(`deploy-service` phase join). Per store (a `quorum: majority` service), the events are:

- a stop (`stop-service` disrupting the member): the member is down from the step's start;
- a removal (a REMOVE_PLAYBOOKS playbook naming `service` and `member`): it leaves the
  membership when the step ends;
- a join: the member counts, alive, once the step ends (a joiner still in state transfer is not
  yet a voter).

Members observed down when the plan was made (plan extra `members_down`) start down. Every
moment of every run the DAG allows is an order ideal of these events (the other steps do not
change the membership), so the rules enumerate the ideals of each store's few events:

- ``quorum``: at every ideal the members up are a majority of the members (Galera weighted
  quorum with equal weights; Raft/Paxos majorities for etcd and the Ceph monitors; Cluster API
  projects the same before removing an etcd member);
- ``membership``: a member is never removed while another member of the store is down (a
  stopped member not yet removed, or one observed down): the removal would then be decided by a
  bare majority with no margin;
- ``ceph``: a `ceph-mon-remove` that leaves fewer than 3 monitors has the new monitor's join as
  a DAG ancestor; and a replacement or removal never sets `noout` (the flag is for temporary
  maintenance: a host leaving for good must have its data moved).

Each violation names both steps (or the step and the down member) and the rule.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from lifecycle.catalog import Catalog
from lifecycle.model.cluster import Cluster
from lifecycle.model.service import Quorum
from lifecycle.planning import actions as act
from lifecycle.planning.ordering import Order
from lifecycle.planning.plan import Plan
from lifecycle.planning.replace import (
    DEPLOY_SERVICE,
    MEMBER_REMOVE,
    MIN_MEMBERS,
    NODE,
    OPERATIONS,
    REMOVE_PLAYBOOKS,
    REPLACEMENT,
    STOP_SERVICE,
    members_down,
)
from lifecycle.planning.timeline import Violation

MAX_EVENTS = 16  # per store: a replacement has three; beyond this, only pairs are checked
STOP, REMOVE, JOIN = "stop", "remove", "join"


@dataclass(frozen=True)
class Event:
    kind: str  # STOP | REMOVE | JOIN
    member: str
    step: str


def store_events(plan: Plan, store: str) -> list[Event]:
    """The membership events of `store` in the plan, in plan order."""
    removing = {REMOVE_PLAYBOOKS.get(store, MEMBER_REMOVE), MEMBER_REMOVE}
    out = []
    for step in plan.steps:
        book = act.playbook(step)
        if book == STOP_SERVICE:
            out += [
                Event(STOP, node, step.id)
                for text in step.disrupts
                for service, _, node in [text.partition("@")]
                if service == store
            ]
        elif book in removing and step.param("service") == store:
            out.append(Event(REMOVE, str(step.param("member")), step.id))
        elif (
            book == DEPLOY_SERVICE
            and step.param("service") == store
            and step.param("phase") == "join"
        ):
            out += [Event(JOIN, node, step.id) for node in step.nodes]
    return out


def check_membership(plan: Plan, cluster: Cluster, catalog: Catalog) -> list[Violation]:
    """Every membership rule the plan breaks (empty for plans that change no membership)."""
    out: list[Violation] = []
    if plan.operation in OPERATIONS:
        out += _no_noout(plan)
    stores = [
        s
        for s, spec in catalog.services.items()
        if spec.quorum is Quorum.MAJORITY and s in cluster.members
    ]
    found = {s: store_events(plan, s) for s in stores}
    if not any(e.kind != STOP for events in found.values() for e in events):
        return out  # an upgrade: its stops (none) and disruptions are any_order's
    order = Order(plan)
    extra = dict(plan.extra)
    down = set(members_down(plan))
    # the view the verifier gets lists the replacement as a member already: it is not one
    # until it joins (a rebuild under the old name is: it is the old member)
    new = extra.get(REPLACEMENT)
    arriving = {new} if isinstance(new, str) and new != extra.get(NODE) else set()
    for store in stores:
        events = found[store]
        if events:
            members = [m for m in cluster.members[store] if m not in arriving]
            out += _Store(plan, order, store, members, down, events).check()
    return out


def _no_noout(plan: Plan) -> list[Violation]:
    return [
        Violation(
            plan.start_of[s.id],
            "ceph",
            f"{s.id} sets noout in a {plan.operation}: noout is for temporary maintenance; a"
            " host leaving for good must have its data moved",
            s.id,
        )
        for s in plan.steps
        if act.is_noout(s, "set")
    ]


class _Store:
    """One store's events and the ideals of their order."""

    def __init__(
        self,
        plan: Plan,
        order: Order,
        store: str,
        members: Sequence[str],
        down: set[str],
        events: list[Event],
    ) -> None:
        self.plan, self.order, self.store = plan, order, store
        # a rebuilt node keeps its name: it is a member until removed, then joins again
        self.initial = tuple(members)
        self.down = {m for m in members if m in down}
        self.events = sorted(events, key=lambda e: order.index[e.step])
        self.out: list[Violation] = []
        self.seen: set[tuple[str, ...]] = set()

    def before(self, a: Event, b: Event) -> bool:
        return a.step != b.step and self.order.before(a.step, b.step)

    def fail(self, rule: str, message: str, step: str) -> None:
        key = (rule, step)
        if key not in self.seen:
            self.seen.add(key)
            self.out.append(Violation(self.plan.start_of.get(step, 0.0), rule, message, step))

    def check(self) -> list[Violation]:
        if len(self.events) <= MAX_EVENTS:
            for ideal in self.ideals():
                self.check_ideal(ideal)
        if self.store == "ceph-mon":
            self.check_mon_count()
        return self.out

    def ideals(self) -> Iterator[tuple[Event, ...]]:
        """Every set of events that has happened at some moment of some run: closed under
        the DAG's order (a stop counts from its start; a stop's successors need it ended,
        which changes nothing more)."""

        def grow(i: int, taken: tuple[Event, ...]) -> Iterator[tuple[Event, ...]]:
            if i == len(self.events):
                yield taken
                return
            event = self.events[i]
            yield from grow(i + 1, taken)
            ancestors = [e for e in self.events[:i] if self.before(e, event)]
            if all(a in taken for a in ancestors):
                yield from grow(i + 1, (*taken, event))

        return grow(0, ())

    def state(self, ideal: Sequence[Event]) -> tuple[list[str], set[str], dict[str, str]]:
        """(members, down, member -> the step that took it down) after the ideal's events."""
        members = list(self.initial)
        down = set(self.down)
        by: dict[str, str] = {}
        for event in ideal:
            if event.kind == STOP:
                down.add(event.member)
                by[event.member] = event.step
            elif event.kind == REMOVE:
                members = [m for m in members if m != event.member]
                down.discard(event.member)
            elif event.member not in members:
                members.append(event.member)
                down.discard(event.member)
            else:
                down.discard(event.member)
        return members, down & set(members), by

    def check_ideal(self, ideal: tuple[Event, ...]) -> None:
        members, down, by = self.state(ideal)
        up = len(members) - len(down)
        if members and up * 2 <= len(members):
            late = self.pending(ideal)
            last = ideal[-1].step if ideal else ""
            whom = ", ".join(f"{m} ({by.get(m, 'observed down')})" for m in sorted(down))
            self.fail(
                "quorum",
                f"{self.store} has {up} of {len(members)} members up (down: {whom}) after"
                f" {last or 'the start'} in some order"
                + (f", before {', '.join(late)}" if late else "")
                + ": a majority is needed",
                last or (late[0] if late else ""),
            )
        for event in self.ready(ideal):
            if event.kind != REMOVE:
                continue
            others = sorted(m for m in down if m != event.member)
            if others:
                why = ", ".join(f"{m} ({by.get(m, 'observed down')})" for m in others)
                self.fail(
                    "membership",
                    f"{event.step} removes {event.member} from {self.store} while {why} is"
                    " down, in some order: a member is never removed while another is down",
                    event.step,
                )

    def ready(self, ideal: tuple[Event, ...]) -> list[Event]:
        """Events not in the ideal whose event ancestors all are: they may start now."""
        taken = set(ideal)
        return [
            e
            for e in self.events
            if e not in taken and all(a in taken for a in self.events if self.before(a, e))
        ]

    def pending(self, ideal: tuple[Event, ...]) -> list[str]:
        """The joins not yet done at this ideal that are unordered with its last event."""
        taken = set(ideal)
        last = ideal[-1] if ideal else None
        return [
            e.step
            for e in self.events
            if e.kind == JOIN and e not in taken and (last is None or not self.before(e, last))
        ]

    def check_mon_count(self) -> None:
        """A mon removal leaving fewer than 3 mons needs the new mon's join as an ancestor."""
        joins = [e for e in self.events if e.kind == JOIN]
        removes = [e for e in self.events if e.kind == REMOVE]
        for r in removes:
            earlier_joins = [j for j in joins if self.before(j, r)]
            other_removes = [x for x in removes if x != r and not self.before(r, x)]
            left = len(self.initial) + len(earlier_joins) - len(other_removes) - 1
            if left >= MIN_MEMBERS:
                continue
            missing = [j.step for j in joins if j not in earlier_joins]
            self.fail(
                "ceph",
                f"{r.step} may leave {left} ceph-mon(s) in some order; below {MIN_MEMBERS} the"
                " new monitor must join first: "
                + (
                    f"{', '.join(missing)} is not its ancestor"
                    if missing
                    else "no ceph-mon join in the plan"
                ),
                r.step,
            )
