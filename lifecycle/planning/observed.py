"""Planning from the observed state: what is left to do, what is down, and what that forbids.

Pure: the observation was made before planning (a driver's `observe`); this reads it like the
inventory. From an ObservedState it derives the planning *basis*:

- the planning view of the cluster: nodes that are down removed (they are planned around), its
  `release` / `ceph_release` the oldest release an instance still runs (the plan's source), so an
  aborted upgrade is finished from where each instance is;
- per instance, its observed release index: an instance already at a hop's target is not
  upgraded again, only confirmed by a health check at its place in the DAG (`Rollout.confirm`);
- per service and per data-plane group, how many members are down: they count as already
  unavailable, so quorum margins and max_unavailable shrink by that much;
- refusals, where no safe plan exists, each naming the node and the rule (quorum: Galera's
  primary component needs a majority, https://galeracluster.com/library/documentation/
  weighted-quorum.html; capacity: max_unavailable; ceph: one failure domain at a time; skew:
  Nova's N-1 compute rule).

`verification_view(cluster, plan)` gives the verifier the same view from the plan alone (its
`source`, `ceph_from` and `observed_down`), so a plan of what is left verifies as safe with the
verifier unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from lifecycle.catalog import Catalog
from lifecycle.errors import PlanningError, UnsupportedUpgrade
from lifecycle.model.cluster import Cluster
from lifecycle.model.in_place import InPlace
from lifecycle.model.observed import NOT_RUNNING, UNKNOWN, UNREACHABLE, ObservedState
from lifecycle.model.release import ReleaseTrain
from lifecycle.model.service import Quorum, Tier
from lifecycle.planning.plan import Plan
from lifecycle.planning.remaining import start_view

OBSERVED_DOWN = "observed_down"  # Plan.extra key: the nodes a plan was made around


@dataclass(frozen=True)
class Refusal:
    """No safe plan touches `subject` while `node` is down, by `rule`."""

    rule: str
    node: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


@dataclass(frozen=True)
class Basis:
    """What the upgrade planner starts from (see the module docstring)."""

    cluster: Cluster  # the planning view
    down: tuple[str, ...] = ()
    releases: Mapping[str, int] = field(default_factory=dict)  # instance -> index in its train
    service_down: Mapping[str, int] = field(default_factory=dict)  # members on down nodes
    # members on reachable nodes that are out of their service: not running, or not joined to
    # their clustered store (Galera's primary component, RabbitMQ's running nodes): node -> why
    service_out: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    group_down: Mapping[str, int] = field(default_factory=dict)
    refusals: tuple[Refusal, ...] = ()
    ceph_flags: tuple[str, ...] = ()  # OSD flags set now (an aborted run may leave `noout`)


def without_nodes(cluster: Cluster, gone: tuple[str, ...] | set[str]) -> Cluster:
    """The cluster with those nodes left out (their instances with them)."""
    if not gone:
        return cluster
    return replace(cluster, nodes=tuple(n for n in cluster.nodes if n.name not in gone))


def verification_view(cluster: Cluster, plan: Plan) -> Cluster:
    """The cluster as the plan was made for it: down nodes (`observed_down`) left out, starting
    at the plan's `source` (and `ceph_from`). The inventory itself for plans made without an
    observation. The verifier replays the plan against this view."""
    if plan.operation in ("replace", "remove"):  # the old node stays, the replacement joins
        from lifecycle.planning.replace import replaced_cluster

        return replaced_cluster(cluster, plan)
    extra = dict(plan.extra)
    down = extra.get(OBSERVED_DOWN)
    view = without_nodes(cluster, set(down) if isinstance(down, tuple) else set())
    if plan.operation == "upgrade" and plan.source and plan.source != view.release:
        view = replace(view, release=plan.source)
    ceph_from = extra.get("ceph_from")
    if isinstance(ceph_from, str) and ceph_from != view.ceph_release:
        view = replace(view, ceph_release=ceph_from)
    return view


def group_key(cluster: Cluster, node_name: str) -> str:
    """The data-plane group of a node: its aggregate, else its role (as data_plane.py)."""
    node = cluster.node(node_name)
    aggregate = cluster.aggregate_of(node)
    return f"aggregate:{aggregate}" if aggregate else f"role:{node.role}"


def _train(catalog: Catalog, service: str) -> ReleaseTrain:
    return catalog.ceph if catalog.services[service].ceph else catalog.openstack


def observed_in_place(
    cluster: Cluster, observed: ObservedState, catalog: Catalog, down: set[str] | None = None
) -> InPlace:
    """The observation as the planners' common input (model/in_place.py): each instance on a
    live node seen running a known release (its canonical name), the computes seen disabled,
    the Ceph flags set. An instance not running, unseen or on a `down` node (default: the nodes
    observed unreachable) is left out: planned as the inventory says. Raises PlanningError for
    a release no train holds."""
    if down is None:
        down = {n.name for n in cluster.nodes if observed.node_state(n.name) == UNREACHABLE}
    at = {}
    for service, nodes in cluster.members.items():
        train = _train(catalog, service)
        index = {name: r for r in train.releases for name in (r.name, *r.aliases)}
        for node in nodes:
            text = f"{service}@{node}"
            release = observed.release_of(text)
            if node in down or release in (UNKNOWN, NOT_RUNNING):
                continue  # planned as the inventory says
            if release not in index:
                raise PlanningError(
                    f"observed {text} at {release!r}, not a {train.product} release"
                    f" (known: {', '.join(train.names())})"
                )
            at[text] = index[release].name
    disabled = frozenset(c.node for c in observed.computes if c.enabled is False)
    return InPlace(at=at, disabled=disabled, flags=frozenset(_ceph_flags(observed)))


def planning_basis(
    cluster: Cluster,
    observed: ObservedState,
    catalog: Catalog,
    target: str,
    ceph_target: str | None,
) -> Basis:
    """The basis for upgrading `cluster` to `target` (and `ceph_target`) from `observed`.
    Raises PlanningError for an observed release no train holds or newer than the target."""
    down = {n.name for n in cluster.nodes if observed.node_state(n.name) == UNREACHABLE}
    seen = observed_in_place(cluster, observed, catalog, down)
    releases = {t: _train(catalog, t.partition("@")[0]).get(r).index for t, r in seen.at.items()}
    _refuse_newer(releases, catalog, target, ceph_target)
    # the start: the oldest release a live instance runs (the same rule as the recorded state's)
    view = start_view(without_nodes(cluster, down), seen, catalog)
    service_down = {
        service: sum(1 for n in nodes if n in down) for service, nodes in cluster.members.items()
    }
    group_down: dict[str, int] = {}
    for name in sorted(down):
        if _data_services(cluster, catalog, name):
            key = group_key(cluster, name)
            group_down[key] = group_down.get(key, 0) + 1
    basis = Basis(
        cluster=view,
        down=tuple(n.name for n in cluster.nodes if n.name in down),
        releases=releases,
        service_down={s: d for s, d in service_down.items() if d},
        service_out=_out_of_service(cluster, observed, down),
        group_down=group_down,
        ceph_flags=_ceph_flags(observed),
    )
    return replace(basis, refusals=tuple(refusals(cluster, basis, catalog, target, ceph_target)))


def observed_refusals(
    cluster: Cluster,
    observed: ObservedState,
    target: str,
    ceph_target: str | None = None,
    catalog: Catalog | None = None,
) -> tuple[Refusal, ...]:
    """What `plan_upgrade(..., observed=observed)` refuses (empty: it plans)."""
    from lifecycle.catalog import load_catalog

    catalog = catalog or load_catalog()
    return planning_basis(cluster, observed, catalog, target, ceph_target).refusals


def _ceph_flags(observed: ObservedState) -> tuple[str, ...]:
    mon = observed.store("ceph-mon")
    return mon.flags if mon is not None else ()


def _out_of_service(
    cluster: Cluster, observed: ObservedState, down: set[str]
) -> dict[str, dict[str, str]]:
    """Per service, its members on reachable nodes that do not serve: not running, or missing
    from the membership their store reports. They use up quorum margins like down nodes."""
    out: dict[str, dict[str, str]] = {}
    for service, nodes in cluster.members.items():
        store = observed.store(service)
        joined = set(store.members) if store and (store.members or store.size is not None) else None
        for node in nodes:
            if node in down:
                continue
            if observed.release_of(f"{service}@{node}") == NOT_RUNNING:
                out.setdefault(service, {})[node] = "not running"
            elif joined is not None and node not in joined:
                out.setdefault(service, {})[node] = f"not joined to {service}"
    return out


def _refuse_newer(
    releases: Mapping[str, int], catalog: Catalog, target: str, ceph_target: str | None
) -> None:
    for text, index in sorted(releases.items()):
        service = text.partition("@")[0]
        train = _train(catalog, service)
        wanted = ceph_target if train is catalog.ceph else target
        if wanted is None:
            continue
        if index > train.get(wanted).index:
            raise UnsupportedUpgrade(
                f"observed {text} at {train.releases[index].name}, newer than the target"
                f" {wanted}: lifecycle only upgrades"
            )


def _data_services(cluster: Cluster, catalog: Catalog, node: str) -> list[str]:
    return [
        s
        for s in cluster.services_of(cluster.node(node))
        if catalog.services[s].tier is Tier.DATA and not catalog.services[s].ceph
    ]


def _todo(basis: Basis, catalog: Catalog, service: str, target: str | None) -> list[str]:
    """Live members of `service` not yet at the target."""
    if target is None:
        return []
    goal = _train(catalog, service).get(target).index
    view = basis.cluster
    start = view.ceph_release if catalog.services[service].ceph else view.release
    if start is None:
        return []
    default = _train(catalog, service).get(start).index
    return [
        n
        for n in view.members.get(service, ())
        if basis.releases.get(f"{service}@{n}", default) < goal
    ]


def refusals(
    cluster: Cluster, basis: Basis, catalog: Catalog, target: str, ceph_target: str | None
) -> list[Refusal]:
    """Every rule a down node leaves no safe plan for, naming the node (empty: plan on)."""
    if not basis.down and not basis.service_out:
        return []
    out: list[Refusal] = []
    for service, nodes in cluster.members.items():
        spec = catalog.services[service]
        wanted = ceph_target if spec.ceph else target
        todo = _todo(basis, catalog, service, wanted)
        out_here = basis.service_out.get(service, {})
        why = {n: "unreachable" for n in nodes if n in basis.down} | dict(out_here)
        down = [n for n in nodes if n in why]
        if service == "ceph-osd" and down:  # even with no live OSD left to upgrade
            out += _osd_hops_refusal(basis, catalog, down, wanted)
        if not todo or not down:
            continue
        if spec.tier is Tier.DATA and not spec.ceph:
            continue  # capacity, by group, below
        if service == "ceph-osd":
            out += _osd_refusal(cluster, down, todo)
            continue
        margin = spec.quorum.max_down(len(nodes)) - len(down)
        if margin < 1 and len(nodes) > 1:
            rule = "quorum" if spec.quorum is not Quorum.NONE else "availability"
            reasons = ", ".join(f"{n}: {why[n]}" for n in down)
            out.append(
                Refusal(
                    rule,
                    ", ".join(down),
                    service,
                    f"{service}: {', '.join(down)} down ({reasons}); {len(nodes)} members with"
                    f" {len(down)}"
                    f" down leave no margin (quorum {spec.quorum.value}: at most"
                    f" {spec.quorum.max_down(len(nodes))} of {len(nodes)} down at once);"
                    f" refusing to upgrade {service} until {', '.join(down)} is back",
                )
            )
    out += _capacity_refusals(cluster, basis, catalog, target)
    out += _skew_refusals(cluster, basis, catalog, target)
    return out


def _osd_refusal(cluster: Cluster, down: list[str], todo: list[str]) -> list[Refusal]:
    domains = {cluster.node(n).failure_domain for n in down}
    single = len({cluster.node(n).failure_domain for n in cluster.members["ceph-osd"]}) <= 1
    others = [n for n in todo if single or cluster.node(n).failure_domain not in domains]
    if not others:
        return []
    return [
        Refusal(
            "ceph",
            ", ".join(down),
            "ceph-osd",
            f"ceph-osd: {', '.join(down)} down; upgrading OSDs of {', '.join(others)} would"
            " leave OSDs of two failure domains down at once",
        )
    ]


def _osd_hops_refusal(
    basis: Basis, catalog: Catalog, down: list[str], target: str | None
) -> list[Refusal]:
    """Two Ceph hops or more with an OSD down: the second hop needs `require-osd-release` of the
    first, which Ceph accepts only once every OSD runs it (Ceph's upgrade notes), and a down OSD
    cannot."""
    start = basis.cluster.ceph_release
    if not start or not target or start == target:
        return []
    hops = catalog.ceph.hops(start, target)
    if len(hops) < 2:
        return []
    first = hops[0][1].name
    nodes = ", ".join(down)
    return [
        Refusal(
            "ceph",
            nodes,
            "ceph-osd",
            f"ceph-osd: {nodes} down; the hop after {first} needs `require-osd-release {first}`,"
            f" which Ceph accepts only once every OSD runs {first}: upgrade Ceph one hop at a"
            f" time (--ceph-to {first}) or bring {nodes} back first",
        )
    ]


def _capacity_refusals(
    cluster: Cluster, basis: Basis, catalog: Catalog, target: str
) -> list[Refusal]:
    out = []
    groups: dict[str, list[str]] = {}
    for node in cluster.nodes:
        if _data_services(cluster, catalog, node.name):
            groups.setdefault(group_key(cluster, node.name), []).append(node.name)
    data = {s for n in cluster.nodes for s in _data_services(cluster, catalog, n.name)}
    behind = {n for s in data for n in _todo(basis, catalog, s, target)}  # live, not at target
    gone = set(basis.down)
    for key, nodes in sorted(groups.items()):
        down = [n for n in nodes if n in gone]
        todo = [n for n in nodes if n in behind]
        if not down or not todo:
            continue
        aggregate = key.split(":", 1)[1] if key.startswith("aggregate:") else None
        allowed = cluster.policies.max_unavailable_for(aggregate).resolve(len(nodes))
        if allowed - len(down) < 1:
            out.append(
                Refusal(
                    "capacity",
                    ", ".join(down),
                    key,
                    f"{key}: {', '.join(down)} down counts as unavailable; max_unavailable"
                    f" {allowed} of {len(nodes)} leaves no host to take out for"
                    f" {_some(todo)}",
                )
            )
    return out


def _some(names: list[str], shown: int = 5) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _skew_refusals(cluster: Cluster, basis: Basis, catalog: Catalog, target: str) -> list[Refusal]:
    """A data-plane service on a down node stays where it is while the control services it
    follows move on: refused where the release rules forbid that skew."""
    train = catalog.openstack
    goal = train.get(target)
    out = []
    for name in basis.down:
        for service in _data_services(cluster, catalog, name):
            spec = catalog.services[service]
            if not spec.follows:
                continue
            at = train.get(cluster.release)  # unseen: assume the inventory's release
            if not train.skew_allowed(at, goal):
                out.append(
                    Refusal(
                        "skew",
                        name,
                        f"{service}@{name}",
                        f"{service}@{name} is down at {at.name} (as far as known); the control"
                        f" services it follows ({', '.join(spec.follows)}) may not move to"
                        f" {goal.name}",
                    )
                )
    return out
