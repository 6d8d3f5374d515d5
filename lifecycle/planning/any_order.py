"""The safety rules proved over the DAG: they hold in every order the engine may run the plan.

The engine starts any step whose dependencies are done; start times only order its ready queue.
So every pair (or set) of steps whose overlap would break a rule must be ordered by the DAG,
transitively. Each rule works per resource (a quorum service, an aggregate, the OSDs, an instance,
a project's schema), on reachability bitsets (ordering.py), never on all pairs of steps:

- ``quorum`` / ``availability``: no set of pairwise-unordered steps takes down more members of a
  clustered service than its quorum allows;
- ``capacity``: no set of pairwise-unordered spans (a host drained from its evacuation to its
  re-enable, or disrupted by one step) holds more hosts of a group than max_unavailable;
- ``evacuation``: a workload host is disrupted only between its evacuation and its re-enable;
- ``ceph``: OSD steps of two failure domains are ordered; ``noout`` is set by an ancestor of every
  OSD-disrupting step and not unset until a descendant of it (upstream: "ceph osd set noout"
  before restarting OSDs, unset once all are back); ``require-osd-release`` only after every OSD
  runs that release;
- ``plan``: two steps that disrupt the same instance are ordered;
- ``node``: what takes one data-plane host out (drains, disruptions outside a drain) is ordered:
  one disruptive step per node at a time;
- ``order``: an instance moves to release R only after every instance of the services it must
  follow (catalog dependencies, the tier order or its inversion, ``precedes``) is at R, in every
  hop; an instance's own upgrades in release order; a Ceph hop after every Ceph daemon finished
  the previous hop and ``require-osd-release`` was set for it;
- ``skew``: a control service never moves further ahead of its data-plane followers than the
  release train allows;
- ``database``: a project's code moves to R only after its schema was expanded for R; contract
  (and online data migrations) only once every instance of the project's services, data plane
  included, is at R; a schema counts as expanded for every release up to the newest one an
  instance of the project runs at the start (a plan of what is left: the earlier run expanded it);
- ``gates``: a precheck before every disruption, a postcheck after everything; a quorum member's
  successor only after a health gate that covers it (it rejoined and is in sync); a data-plane
  group's next batch only after a gate covering the previous one; optionally the control-plane
  canary (a gate after the first member of a stateless control service), passed already when a
  member runs the step's release at the start (the earlier run's canary).

Every violation names the two steps (or the step and what it misses) and the rule; its time is
the later step's scheduled start.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from itertools import pairwise

from lifecycle.catalog import Catalog
from lifecycle.model.cluster import Cluster, Evacuate
from lifecycle.model.service import Quorum, Tier
from lifecycle.planning import actions as act
from lifecycle.planning.ordering import Order, Span, max_antichain, precedes
from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.timeline import Replay, Violation, instance

REQUIRE_OSD_RELEASE = act.REQUIRE_OSD_RELEASE


Ups = tuple[tuple[int, str], ...]  # an instance's upgrades: (release index, step id)


class AnyOrder:
    """The DAG rules of one plan. `replay` lends the cluster's set-up (groups, limits, initial
    versions, prerequisites) and must not have replayed any event yet."""

    def __init__(self, plan: Plan, replay: Replay) -> None:
        self.plan, self.replay = plan, replay
        self.cluster: Cluster = replay.cluster
        self.catalog: Catalog = replay.catalog
        self.order = Order(plan)
        # the releases before the plan (the replay keeps them unchanged; no copy of all instances)
        self.initial: Mapping[str, int] = replay.start_version
        self.out: list[Violation] = []

    def check(self) -> list[Violation]:
        self.check_instances()
        self.check_quorum()
        self.check_capacity()
        self.check_ceph()
        self.check_releases()
        self.check_database()
        self.check_gates()
        return self.out

    # --- helpers -----------------------------------------------------------------------------

    def fail(self, rule: str, message: str, step: str) -> None:
        self.out.append(Violation(self.plan.start_of.get(step, 0.0), rule, message, step))

    def first_time(self, key: tuple[str, ...]) -> bool:
        """One violation per fault: the first step a missing edge lets run too early is named,
        not each of the service's members after it."""
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    @cached_property
    def _seen(self) -> set[tuple[str, ...]]:
        return set()

    def services_upgraded(self, step: Step) -> list[str]:
        return sorted({t.partition("@")[0] for t in step.upgrades})

    @cached_property
    def disrupting(self) -> dict[str, tuple[Step, ...]]:
        """Instance -> the steps that disrupt it, in topological order. Instances disrupted by
        the same steps (the hosts of a batch) share one tuple, as in `upgrades`."""
        out: dict[str, tuple[Step, ...]] = {}
        # (id of a tuple, one more step) -> the longer tuple; holds every tuple alive
        longer: dict[tuple[int, str], tuple[Step, ...]] = {}
        for sid in self.order.order:
            step = self.plan.by_id[sid]
            for text in step.disrupts:
                old = out.get(text, ())
                key = (id(old), sid)
                new = longer.get(key)
                if new is None:
                    new = longer[key] = (*old, step)
                out[text] = new
        return out

    @cached_property
    def disrupting_ids(self) -> dict[str, tuple[str, ...]]:
        """Instance -> the ids of the steps that disrupt it, in topological order; shared as
        `disrupting` is (worked out once per distinct tuple of steps)."""
        ids: dict[int, tuple[str, ...]] = {}
        out = {}
        for text, steps in self.disrupting.items():
            found = ids.get(id(steps))
            if found is None:
                found = ids[id(steps)] = tuple(s.id for s in steps)
            out[text] = found
        return out

    @cached_property
    def upgrades(self) -> dict[str, Ups]:
        """Instance -> (release index, step) of each step that upgrades it. Instances upgraded
        by the same steps share one tuple (thousands of computes, a few hundred batches), so
        that the checks below work out each distinct history once, keyed by its id()."""
        out: dict[str, Ups] = {}
        # (id of a history, one more upgrade) -> the longer history; holds every history alive
        longer: dict[tuple[int, tuple[int, str]], Ups] = {}
        for step in self.plan.steps:
            release = step.param("release")
            if not isinstance(release, str):
                continue
            # the release index depends on the service's train only: once per service and step
            indexes: dict[str, int | None] = {}
            for text in step.upgrades:
                service = text.partition("@")[0]
                if service not in indexes:
                    known = service in self.catalog.services
                    indexes[service] = (
                        self.replay.train(service).get(release).index if known else None
                    )
                index = indexes[service]
                if index is not None:
                    old = out.get(text, ())
                    key = (id(old), (index, step.id))
                    new = longer.get(key)
                    if new is None:
                        new = longer[key] = (*old, key[1])
                    out[text] = new
        return out

    def reaching(self, service: str, index: int) -> list[tuple[int, str, str]]:
        """For each instance of `service` not already at `index`: (mask of the steps that bring
        it to `index` or later, the instance, one such step); instances never brought there are
        left to the `once` rule."""
        key = (service, index)
        cache = self._reaching
        if key not in cache:
            found: dict[int, tuple[int, str, str]] = {}
            # the instances of a batch share their steps: one mask per distinct list of steps
            # (the first instance with a mask is kept, as before)
            seen: set[int] = set()
            for node in self.cluster.members.get(service, ()):
                text = f"{service}@{node}"
                if self.initial.get(text, -1) >= index:
                    continue
                ups = self.upgrades.get(text, ())
                if id(ups) in seen:
                    continue
                seen.add(id(ups))
                steps = [sid for i, sid in ups if i >= index]
                if steps:
                    mask = self.order.mask(steps)
                    found.setdefault(mask, (mask, text, steps[0]))
            cache[key] = list(found.values())
        return cache[key]

    @cached_property
    def _reaching(self) -> dict[tuple[str, int], list[tuple[int, str, str]]]:
        return {}

    def _lowest_bits(self, service: str, index: int) -> int:
        """The lowest bit of each of `reaching`'s masks, or-ed: when a step's ancestors hold all
        of them, `missing` is None at one AND instead of one per mask (a planner's plan: each
        mask's first step is the ancestor; ~60,000 calls for a 10,000-step plan)."""
        key = (service, index)
        found = self._lowest.get(key)
        if found is None:
            found = 0
            for mask, _, _ in self.reaching(service, index):
                found |= mask & -mask
            self._lowest[key] = found
        return found

    @cached_property
    def _lowest(self) -> dict[tuple[str, int], int]:
        return {}

    def missing(self, step: str, service: str, index: int) -> tuple[str, str] | None:
        """An instance of `service` not surely at `index` when `step` starts, and the step that
        would bring it there; None when every instance is."""
        ancestors = self.order.ancestors_of(step)
        lowest = self._lowest_bits(service, index)
        if ancestors & lowest == lowest:
            return None  # one step of every mask is an ancestor: each mask meets the ancestors
        for mask, text, other in self.reaching(service, index):
            if not ancestors & mask:
                return text, other
        return None

    # --- exclusions --------------------------------------------------------------------------

    def check_instances(self) -> None:
        """Two steps that disrupt one instance never overlap (consecutive ones suffice: a chain
        of ordered pairs orders them all)."""
        unordered: dict[int, list[tuple[Step, Step]]] = {}  # per distinct (shared) tuple
        for text, steps in self.disrupting.items():
            pairs = unordered.get(id(steps))
            if pairs is None:
                pairs = unordered[id(steps)] = [
                    (a, b) for a, b in pairwise(steps) if not self.order.before(a.id, b.id)
                ]
            for a, b in pairs:
                self.fail(
                    "plan",
                    f"{text} disrupted twice at once: {a.id} and {b.id} are not ordered",
                    b.id,
                )

    def check_quorum(self) -> None:
        for service, nodes in self.cluster.members.items():
            spec = self.catalog.services.get(service)
            if spec is None or self.replay.is_data(service):
                continue
            members: dict[str, list[str]] = defaultdict(list)
            for node in nodes:
                for step in self.disrupting.get(f"{service}@{node}", ()):
                    members[step.id].append(node)
            spans = [Span(s, s, len(m), s) for s, m in members.items()]
            allowed = spec.quorum.max_down(len(nodes))
            together = max_antichain(self.order, spans, allowed)
            if together:
                rule = "quorum" if spec.quorum is not Quorum.NONE else "availability"
                names = self.order.sort([s.first for s in together])
                gone = sorted(n for s in names for n in members[s])
                self.fail(
                    rule,
                    f"{service} has {len(gone)} of {len(nodes)} members down "
                    f"({', '.join(gone)}) in some order; at most {allowed} allowed: "
                    f"{', '.join(names)} are not ordered",
                    names[-1],
                )

    def drains(self, node: str) -> list[tuple[str, str]]:
        """(evacuation, re-enable) pairs of a host; re-enable "" when it never comes back."""
        out = []
        enables = self._enable_steps.get(node, ())
        for evac in self._drain_steps.get(node, ()):
            enable = next((e for e in enables if self.order.before(evac, e)), "")
            out.append((evac, enable))
        return out

    @cached_property
    def _drain_steps(self) -> dict[str, tuple[str, ...]]:
        return self._steps_by_node(act.EVACUATE)

    @cached_property
    def _enable_steps(self) -> dict[str, tuple[str, ...]]:
        return self._steps_by_node(act.ENABLE)

    def _steps_by_node(self, action: str) -> dict[str, tuple[str, ...]]:
        """Node -> its steps of `action`, in topological order; nodes with the same steps (the
        hosts of a batch) share one tuple, as in `upgrades`."""
        out: dict[str, tuple[str, ...]] = {}
        longer: dict[tuple[int, str], tuple[str, ...]] = {}  # holds every tuple alive
        for sid in self.order.order:
            step = self.plan.by_id[sid]
            if step.action == action:
                for node in step.nodes:
                    old = out.get(node, ())
                    key = (id(old), sid)
                    new = longer.get(key)
                    if new is None:
                        new = longer[key] = (*old, sid)
                    out[node] = new
        return out

    def inside(self, step: str, drain: tuple[str, str]) -> bool:
        evac, enable = drain
        return self.order.before(evac, step) and (not enable or self.order.before(step, enable))

    def check_capacity(self) -> None:
        weights: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
        # hosts of one batch share their steps, so their spans: work out each shape once. A
        # shape is keyed by the identity of its parts: the role's service list, and the
        # drains, re-enables and disruptions of the host, tuples shared by the hosts with the
        # same ones (so the same identity is the same content); a key of the parts themselves
        # cost ~0.1 s more at 50,000 hosts, hashed and compared host by host
        shapes: dict[tuple[int, ...], frozenset[tuple[str, str]]] = {}
        ids = self.disrupting_ids
        drains, enables = self._drain_steps, self._enable_steps
        # hosts per (group, shape) first, then each shape's spans weighed by its count (the
        # spans and groups come out in the same order as host by host)
        hosts: dict[tuple[str, tuple[int, ...]], int] = defaultdict(int)
        for node, group in self.replay.group_of.items():
            services = self.data_services(node)
            held = [ids.get(f"{service}@{node}", ()) for service in services]
            shape = (
                id(services),
                id(drains.get(node, ())),
                id(enables.get(node, ())),
                *map(id, held),
            )
            if shape not in shapes:
                shapes[shape] = self.host_spans(node, tuple(zip(services, held, strict=True)))
            hosts[(group, shape)] += 1
        for (group, kind), count in hosts.items():
            for key in shapes[kind]:
                weights[group][key] += count
        for group, found in weights.items():
            items = [Span(a, b, w, a) for (a, b), w in found.items()]
            limit = self.replay.group_limit[group]
            together = max_antichain(self.order, items, limit)
            if together:
                names = self.order.sort([s.first for s in together])
                self.fail(
                    "capacity",
                    f"{group} can have {sum(s.weight for s in together)} hosts out at once; "
                    f"max_unavailable is {limit}: {', '.join(names)} are not ordered",
                    names[-1],
                )

    def data_services(self, node: str) -> list[str]:
        """The data-plane services of the node (they depend on its role only)."""
        role = self.cluster.node(node).role
        found = self._data_services.get(role)
        if found is None:
            services = self.cluster.services_of(self.cluster.node(node))
            found = self._data_services[role] = [s for s in services if self.replay.is_data(s)]
        return found

    @cached_property
    def _data_services(self) -> dict[str, list[str]]:
        return {}

    def host_spans(
        self, node: str, held_by: tuple[tuple[str, tuple[str, ...]], ...]
    ) -> frozenset[tuple[str, str]]:
        """What takes a host out: its drains, and its disruptions outside a drain; checks the
        host's evacuations and that it is taken out by one thing at a time."""
        drains = self.drains(node)
        spans = set(drains)
        for service, steps in held_by:
            for sid in steps:
                if not any(self.inside(sid, d) for d in drains):
                    spans.add((sid, sid))
                self.check_evacuated(service, node, self.plan.by_id[sid])
        self.check_node(node, spans)
        return frozenset(spans)

    def check_node(self, node: str, spans: set[tuple[str, str]]) -> None:
        """What takes one data-plane host out (its drains, its disruptions outside a drain)
        happens one thing at a time: one disruptive step per node. It also keeps the capacity
        count exact, each host then being in at most one span of an antichain."""
        ordered = sorted(
            (Span(a, b, 1, a) for a, b in spans), key=lambda s: self.order.index[s.first]
        )
        for a, b in pairwise(ordered):
            if not precedes(self.order, a, b):
                self.fail(
                    "node",
                    f"{node} taken out by {a.first} and {b.first} at once in some order",
                    b.first,
                )
                return

    def check_evacuated(self, service: str, node: str, step: Step) -> None:
        """A workload host is drained (evacuated, not yet re-enabled) while `step` disrupts it,
        in every order: the same shape as noout, with evacuate as set and enable as unset."""
        spec = self.catalog.services[service]
        if not spec.workloads or self.cluster.policies.evacuate is Evacuate.NONE:
            return
        drains, enables = self._drain_steps.get(node, ()), self._enable_steps.get(node, ())
        early = held(self.order, step.id, drains, enables)
        if early is None or early:
            why = "re-enabled by " + ", ".join(early) if early else "never evacuated"
            self.fail(
                "evacuation",
                f"{service}@{node} disrupted by {step.id} on a host not evacuated in every "
                f"order ({why})",
                step.id,
            )

    # --- Ceph --------------------------------------------------------------------------------

    def check_ceph(self) -> None:
        osd_steps: dict[str, set[str]] = {}
        for node in self.cluster.members.get("ceph-osd", ()):
            domain = self.cluster.node(node).failure_domain
            for step in self.disrupting.get(f"ceph-osd@{node}", ()):
                osd_steps.setdefault(step.id, set()).add(domain)
        ids = self.order.sort(list(osd_steps))
        reported = 0
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                if osd_steps[a] == osd_steps[b] and len(osd_steps[a]) == 1:
                    continue
                if not self.order.before(a, b) and reported < 20:
                    reported += 1
                    domains = sorted(osd_steps[a] | osd_steps[b])
                    self.fail(
                        "ceph",
                        f"OSDs of {len(domains)} failure domains down ({', '.join(domains)}) "
                        f"in some order: {a} and {b} are not ordered",
                        b,
                    )
            self.check_noout(a)
        self.check_require_osd_release()

    def check_noout(self, step: str) -> None:
        """noout holds while `step` has OSDs down, in every order (see `held`). A flag step
        with `scope: host` is the narrower per-host flag (`ceph osd set-group noout <host>`):
        it counts for the OSDs of its own nodes only."""
        hosts = {d.partition("@")[2] for d in self.plan.by_id[step].disrupts}
        sets = [s for s, nodes in self._flag_steps("set") if nodes is None or hosts <= nodes]
        unsets = [s for s, nodes in self._flag_steps("unset") if nodes is None or hosts & nodes]
        early = held(self.order, step, sets, unsets)
        if early is None:
            self.fail("ceph", f"{step} disrupts OSDs without noout set before it", step)
        elif early:
            self.fail(
                "ceph",
                f"OSDs of {step} may be down without noout: "
                f"{', '.join(early)} is not ordered after it (nor re-set before it)",
                step,
            )

    def _flag_steps(self, state: str) -> list[tuple[str, frozenset[str] | None]]:
        """noout steps of that state: (id, the hosts of a per-host flag, None when global)."""
        if state not in self._flags:
            self._flags[state] = [
                (s.id, frozenset(s.nodes) if s.param("scope") == "host" else None)
                for s in self.plan.steps
                if act.is_noout(s, state)
            ]
        return self._flags[state]

    @cached_property
    def _flags(self) -> dict[str, list[tuple[str, frozenset[str] | None]]]:
        return {}

    def check_require_osd_release(self) -> None:
        train = self.catalog.ceph
        for step in self.plan.steps:
            if act.playbook(step) != act.CEPH_FLAG or step.param("flag") != REQUIRE_OSD_RELEASE:
                continue
            release = step.param("release")
            if not isinstance(release, str):
                self.fail("plan", f"{step.id} sets {REQUIRE_OSD_RELEASE} to no release", step.id)
                continue
            lagging = self.missing(step.id, "ceph-osd", train.get(release).index)
            if lagging:
                self.fail(
                    "ceph",
                    f"{REQUIRE_OSD_RELEASE} {release} before {lagging[0]} runs it: "
                    f"{lagging[1]} is not ordered before {step.id}",
                    step.id,
                )

    # --- releases ------------------------------------------------------------------------------

    def check_releases(self) -> None:
        # the unordered pairs of a history, once per distinct history (shared tuples)
        unordered: dict[int, list[tuple[str, int, str]]] = {}
        for text, ups in self.upgrades.items():
            pairs = unordered.get(id(ups))
            if pairs is None:
                ordered = sorted(ups, key=lambda u: (u[0], self.order.index[u[1]]))
                pairs = unordered[id(ups)] = [
                    (a, index, b)
                    for (_, a), (index, b) in pairwise(ordered)
                    if not self.order.before(a, b)
                ]
            for a, index, b in pairs:
                service, _ = instance(text)
                name = self.replay.train(service).releases[index].name
                self.fail("order", f"{text} -> {name} by {b} is not ordered after {a}", b)
        for step in self.plan.steps:
            release = step.param("release")
            if not step.upgrades or not isinstance(release, str):
                continue
            for service in self.services_upgraded(step):
                if service in self.catalog.services and service in self.cluster.members:
                    self.check_upgrade(step, service, release)

    def check_upgrade(self, step: Step, service: str, release: str) -> None:
        train = self.replay.train(service)
        target = train.get(release)
        for dep in self.replay.prerequisites(service):
            lagging = self.missing(step.id, dep, target.index)
            if lagging and self.first_time(("order", service, dep, release)):
                self.fail(
                    "order",
                    f"{service} -> {release} before every {dep} is at {release}: "
                    f"{step.id} is not ordered after {lagging[1]} ({lagging[0]})",
                    step.id,
                )
        for follower in self.replay.followers(service):
            oldest = self.oldest(step.id, follower)
            if oldest is not None and not train.skew_allowed(train.releases[oldest], target):
                self.fail(
                    "skew",
                    f"{service} -> {release} by {step.id} while {follower} is still at "
                    f"{train.releases[oldest].name} in some order",
                    step.id,
                )
        if self.catalog.services[service].ceph:
            self.check_ceph_hop(step, service, target.index)

    def oldest(self, step: str, service: str) -> int | None:
        """The oldest release an instance of `service` may run when `step` starts."""
        ancestors = self.order.ancestors_of(step)
        oldest: int | None = None
        for here, ups in self.histories(service):
            for index, bit in ups:
                if ancestors & bit:
                    here = max(here, index)
            oldest = here if oldest is None else min(oldest, here)
        return oldest

    def histories(self, service: str) -> list[tuple[int, tuple[tuple[int, int], ...]]]:
        """The distinct (initial release, upgrades as (release, step bit)) of the instances of
        `service`: thousands of computes upgraded by a few hundred batches share a few hundred."""
        if service not in self._histories:
            found = set()
            # instances upgraded by the same steps share their history: sorted and masked once
            seen: set[tuple[int, int]] = set()
            for node in self.cluster.members.get(service, ()):
                text = f"{service}@{node}"
                if text in self.initial:
                    history = self.upgrades.get(text, ())
                    key = (self.initial[text], id(history))
                    if key in seen:
                        continue
                    seen.add(key)
                    ups = tuple(sorted((i, self.order.bit(sid)) for i, sid in history))
                    found.add((key[0], ups))
            self._histories[service] = sorted(found)
        return self._histories[service]

    @cached_property
    def _histories(self) -> dict[str, list[tuple[int, tuple[tuple[int, int], ...]]]]:
        return {}

    def check_ceph_hop(self, step: Step, service: str, index: int) -> None:
        """A Ceph hop starts after every Ceph daemon finished the previous one and
        require-osd-release was set for it."""
        hops = self.ceph_hops
        if index not in hops or hops.index(index) == 0:
            return
        previous = hops[hops.index(index) - 1]
        name = self.catalog.ceph.releases[previous].name
        for other in sorted(self.cluster.members):
            if other == service or not self.catalog.services[other].ceph:
                continue
            lagging = self.missing(step.id, other, previous)
            if lagging:
                self.fail(
                    "order",
                    f"{service} -> {self.catalog.ceph.releases[index].name} by {step.id} before "
                    f"every Ceph daemon finished the hop to {name}: {lagging[1]} "
                    f"({lagging[0]}) is not ordered before it",
                    step.id,
                )
                return
        ancestors = self.order.ancestors_of(step.id)
        if not any(
            ancestors & self.order.bit(s.id)
            for s in self.plan.steps
            if s.param("flag") == REQUIRE_OSD_RELEASE and s.param("release") == name
        ):
            self.fail(
                "order",
                f"{step.id} starts a Ceph hop with no {REQUIRE_OSD_RELEASE} {name} before it",
                step.id,
            )

    @cached_property
    def ceph_hops(self) -> list[int]:
        extra = dict(self.plan.extra)
        start, end = extra.get("ceph_from"), extra.get("ceph_to")
        if not isinstance(start, str) or not isinstance(end, str):
            return []
        return [b.index for _, b in self.catalog.ceph.hops(start, end)]

    # --- databases -----------------------------------------------------------------------------

    def check_database(self) -> None:
        migrations: dict[tuple[str, str, int], list[str]] = defaultdict(list)
        for step in self.plan.steps:
            phase = act.db_phase(step)
            release = step.param("release")
            if phase and isinstance(release, str):
                index = self.catalog.openstack.get(release).index
                migrations[(phase[0], phase[1], index)].append(step.id)
        projects = self.replay.db_projects
        for step in self.plan.steps:
            release = step.param("release")
            if not isinstance(release, str):
                continue
            for service in self.services_upgraded(step):
                spec = self.catalog.services.get(service)
                project = self.catalog.project_of(service) if spec else None
                if spec is None or spec.ceph or project not in projects:
                    continue
                index = self.catalog.openstack.get(release).index
                if self.expanded_before(str(project), index):
                    continue
                expands = migrations.get((str(project), "expand", index), [])
                if not any(self.order.before(e, step.id) for e in expands):
                    self.fail(
                        "database",
                        f"{service} -> {release} by {step.id} before the {project} schema was "
                        f"expanded for {release}"
                        + (f" ({', '.join(expands)} is not ordered before it)" if expands else ""),
                        step.id,
                    )
        for (name, kind, index), steps in sorted(migrations.items()):
            if kind == "contract":
                for sid in steps:
                    self.check_contract(sid, name, index, migrations)

    def check_contract(
        self, step: str, project: str, index: int, migrations: dict[tuple[str, str, int], list[str]]
    ) -> None:
        release = self.catalog.openstack.releases[index].name
        expands = migrations.get((project, "expand", index), [])
        done = self.expanded_before(project, index)
        if not done and not any(self.order.before(e, step) for e in expands):
            self.fail(
                "database",
                f"{project} schema contracted for {release} by {step} with no expand before it",
                step,
            )
        for service in sorted(self.cluster.members):
            spec = self.catalog.services[service]
            if spec.ceph or self.catalog.project_of(service) != project:
                continue
            lagging = self.missing(step, service, index)
            if lagging:
                self.fail(
                    "database",
                    f"{project} schema contracted for {release} while {service} instances may "
                    f"be older: {step} is not ordered after {lagging[1]} ({lagging[0]})",
                    step,
                )

    def expanded_before(self, project: str, index: int) -> bool:
        """Whether the project's schema was expanded for release `index` before the plan: an
        instance of its services runs that release or a later one at the start. Work done by an
        earlier run (a plan of what is left drops its expand, already run): every plan expands
        a schema for R before any of the project's code moves to R (upstream: `db sync` /
        expand before the new code starts)."""
        return index <= self._newest_at_start.get(project, -1)

    @cached_property
    def _newest_at_start(self) -> dict[str, int]:
        """Project -> the newest release index an instance of its services runs at the start."""
        # the replay worked it out per service when it set up its releases (same definition)
        return self.replay.newest_schema

    # --- gates ---------------------------------------------------------------------------------

    @cached_property
    def health_steps(self) -> dict[str, list[tuple[str, frozenset[str], frozenset[str]]]]:
        """Node -> the health gates covering it: (id, services, nodes)."""
        out: dict[str, list[tuple[str, frozenset[str], frozenset[str]]]] = defaultdict(list)
        for step in self.plan.steps:
            if step.action == act.HEALTH:
                services = step.param("services")
                names = frozenset(services) if isinstance(services, tuple) else frozenset()
                entry = (step.id, names, frozenset(step.nodes))
                for node in step.nodes:
                    out[node].append(entry)
        return out

    def gate_mask(self, step: Step, service: str | None, nodes: Iterable[str]) -> int:
        """Bits of the health gates after `step` that cover `nodes` (and `service`)."""
        wanted = set(nodes)
        if not wanted:
            return 0
        mask = 0
        for gate, services, covered in self.health_steps.get(next(iter(wanted)), ()):
            if service is not None and service not in services:
                continue
            if wanted <= covered and self.order.before(step.id, gate):
                mask |= self.order.bit(gate)
        return mask

    def require_gate(
        self, earlier: Step, later: Sequence[Step], service: str | None, nodes: list[str], why: str
    ) -> None:
        """Each of `later` runs only after a gate covering `earlier` on `nodes`."""
        mask = self.gate_mask(earlier, service, nodes)
        for step in later:
            if not self.order.ancestors_of(step.id) & mask:
                self.fail(
                    "gates",
                    f"no health gate for {earlier.id} ({', '.join(nodes)}) before {step.id}: {why}",
                    step.id,
                )
                return

    def service_steps(self, service: str) -> list[tuple[Step, list[str]]]:
        """Steps disrupting `service`, in topological order, with the members each disrupts."""
        found: dict[str, list[str]] = defaultdict(list)
        for node in self.cluster.members.get(service, ()):
            for step in self.disrupting.get(f"{service}@{node}", ()):
                found[step.id].append(node)
        return [(self.plan.by_id[s], found[s]) for s in self.order.sort(list(found))]

    def check_gates(self) -> None:
        self.check_pre_and_post()
        for service, nodes in sorted(self.cluster.members.items()):
            spec = self.catalog.services.get(service)
            if spec is None or len(nodes) < 2 or self.replay.is_data(service):
                continue
            steps = self.service_steps(service)
            if spec.quorum is not Quorum.NONE:
                for i, (step, members) in enumerate(steps):
                    after = [s for s, _ in steps[i + 1 :] if self.order.before(step.id, s.id)]
                    self.require_gate(
                        step, after, service, members, "a quorum member must rejoin and sync first"
                    )
            elif spec.tier is Tier.CONTROL and not spec.ceph and steps:
                first, members = steps[0]
                if self.canary_passed(service, first):
                    continue
                rest = [s for s, _ in steps[1:]]
                self.require_gate(first, rest, service, members, "the control-plane canary")
        self.check_batches()

    def canary_passed(self, service: str, first: Step) -> bool:
        """Whether a member of `service` runs `first`'s release at the start: work done by an
        earlier run (its first member was upgraded and gated there), so a plan of what is left
        needs no gate after its own first member."""
        release = first.param("release")
        if not isinstance(release, str):
            return False
        index = self.replay.train(service).get(release).index
        return any(
            self.initial.get(f"{service}@{node}", -1) >= index
            for node in self.cluster.members.get(service, ())
        )

    def check_batches(self) -> None:
        """Within a data-plane group, a later batch only after a gate covering an earlier one."""
        by_group: dict[str, list[Step]] = defaultdict(list)
        for sid in self.order.order:
            step = self.plan.by_id[sid]
            if any(self.replay.is_data(instance(d)[0]) for d in step.disrupts):
                for group in {self.replay.group_of.get(n, "") for n in step.nodes}:
                    by_group[group].append(step)
        for group, steps in by_group.items():
            for i, step in enumerate(steps):
                after = next((s for s in steps[i + 1 :] if self.order.before(step.id, s.id)), None)
                if after:
                    nodes = [n for n in step.nodes if self.replay.group_of.get(n) == group]
                    self.require_gate(step, [after], None, nodes[:1], f"{group} batches")

    def check_pre_and_post(self) -> None:
        prechecks = self.order.mask([s.id for s in self.plan.steps if s.action == act.PRECHECK])
        posts = [s.id for s in self.plan.steps if s.action == act.POSTCHECK]
        disruptive = [s for s in self.plan.steps if s.disrupts or s.action == act.EVACUATE]
        for step in disruptive:
            if not self.order.ancestors_of(step.id) & prechecks:
                self.fail("gates", f"{step.id} disrupts with no precheck before it", step.id)
                break
        if not disruptive:
            return
        others = self.order.mask([s.id for s in self.plan.steps if s.action != act.POSTCHECK])
        if not any(self.order.ancestors_of(p) & others == others for p in posts):
            self.fail("gates", "no postcheck after every other step", posts[0] if posts else "")


def held(order: Order, step: str, sets: Sequence[str], unsets: Sequence[str]) -> list[str] | None:
    """Whether a state turned on by any of `sets` and off by any of `unsets` (noout; a host's
    drain) is on while `step` runs in every order: None when no set comes before `step`, else
    the unsets that may run after the last set and before `step` ends ([] when it holds).

    An unset u can leave the state off during `step` unless `step` precedes u, or some set s
    lies between them (u before s before `step`); this is exact: otherwise run u's and `step`'s
    ancestors, then u, then `step`."""
    before = [s for s in sets if order.before(s, step)]
    if not before:
        return None
    return [
        unset
        for unset in unsets
        if unset != step
        and not order.before(step, unset)
        and not any(order.before(unset, s) for s in before)
    ]
