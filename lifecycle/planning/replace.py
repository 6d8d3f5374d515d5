"""Node replacement and removal (scale-in): one node out, and for a replacement one node in.

Pure: from the inventory, the observed state (observed before planning; a dead node is the usual
reason to replace one) and the operator's intent. Per role of the node (a node may hold several):

- clustered stores (Galera, RabbitMQ, Ceph mon, any `quorum: majority` service): a precondition
  gate on the other members; drained in every live HAProxy (`haproxy-server-state` maint);
  services stopped if the node is alive (`stop-service`); members removed (`rabbitmq-forget`:
  `rabbitmqctl forget_cluster_node`, a node rebuilt with the same name fails with
  `inconsistent_cluster` until then; `galera-remove`: `wsrep_cluster_address` rewritten on the
  others; `ceph-mon-remove`: `ceph mon remove`, only after the new mon joined when the monmap
  would otherwise drop below 3); the replacement joins each store one member at a time, each
  join gated (`checks.health`), Keystone's fernet and credential keys copied from a live member
  (`keystone-keys` with `source`), then put back into HAProxy (`ready`);
- computes (nova-compute, a workload service): capacity in the aggregate, then
  `compute.evacuate` (disable and live- or cold-migrate; Nova `evacuate` when the host is dead
  and the policy moves instances at all), `compute.verify_empty`, `compute.delete_service` (Nova
  answers 409 while instances remain: reported, not retried), the replacement deployed into the
  same aggregate (`compute.aggregate_add`) and enabled;
- Ceph OSD hosts: OSDs marked out, `safe-to-destroy` waited for (backfill done), destroyed with
  their ids kept (`ceph osd destroy`, cephadm's `osd rm --replace`), the host removed from the
  CRUSH map, the replacement's OSDs created with the same ids, `active+clean` waited for. Never
  `noout`: that flag is for temporary maintenance, and here the data must move.
- then the old server unprovisioned through Ironic (`baremetal.undeploy`), the replacement
  provisioned with the scale-out planner's own steps (enroll, inspect, match, provide, deploy)
  when it comes from a nodes file, and stale service and agent records cleaned up.

Removal (scale-in) is the same without the add half. Where no safe plan exists the planner
refuses (UnsafePlan, exit 3; `force` overrides and the caller records it), each refusal naming
the node and the rule: ``quorum`` (a store left with fewer than 3 members, or without a majority
once this member leaves: Galera weighted quorum, https://galeracluster.com/library/documentation/
weighted-quorum.html; Cluster API's etcd quorum projection before a member is removed),
``membership`` (another member of a store on the node is down), ``capacity``, ``evacuation`` and
``ceph``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lifecycle.catalog import Catalog, load_catalog
from lifecycle.errors import PlanningError, UnsafePlan, UsageError
from lifecycle.formats.nodes_file import NewNode
from lifecycle.model.cluster import Cluster, Evacuate, NodeSpec
from lifecycle.model.in_place import InPlace
from lifecycle.model.observed import NOT_RUNNING, UNREACHABLE, ObservedState
from lifecycle.model.service import Quorum
from lifecycle.planning import actions as act
from lifecycle.planning.observed import Refusal, observed_in_place
from lifecycle.planning.plan import Plan, Step, freeze_params
from lifecycle.planning.profiles import HardwareProfile
from lifecycle.planning.running import ServiceRelease, service_release
from lifecycle.planning.scale_out import Releases, ScaleOutOptions, plan_scale_out
from lifecycle.planning.scheduler import build_plan

OPERATIONS = ("replace", "remove")

# playbooks of the membership vocabulary (the verifier's membership rules read them)
STOP_SERVICE = "stop-service"
DEPLOY_SERVICE = "deploy-service"
HAPROXY_STATE = "haproxy-server-state"
CLEANUP_RECORDS = "cleanup-records"
KEYSTONE_KEYS = "keystone-keys"
DEPLOY_SECRETS = "deploy-secrets"
CEPH_OSD = "ceph-osd-replace"  # stand-in Ceph on the testbed; params op, host
REMOVE_PLAYBOOKS = {
    "galera": "galera-remove",
    "rabbitmq": "rabbitmq-forget",
    "ceph-mon": "ceph-mon-remove",
}
MEMBER_REMOVE = "member-remove"  # any other `quorum: majority` store (redis, etcd, ovn-dbs...)
# the HAProxy backend of a service (CONTRACT: frontends 13306, 15000, 18778)
BACKENDS = {"galera": "galera", "keystone": "keystone", "placement-api": "placement"}
MIN_MEMBERS = 3  # the smallest store that survives the loss of one member
# plan.extra keys
NODE = "node"
REPLACEMENT = "replacement"
NEW_ADDRESS = "replacement_address"
NEW_DOMAIN = "replacement_failure_domain"
MEMBERS_DOWN = "members_down"  # nodes observed (or confirmed) down when the plan was made
NODE_DEAD = "node_dead"  # the operator confirmed the node dead (--node-dead)
ASSUMPTIONS = "assumptions"

DURATIONS = {
    "precheck": 10.0,
    "health": 10.0,
    "drain-network": 60.0,
    "haproxy": 5.0,
    "stop": 60.0,
    "remove": 30.0,
    "unprovision": 300.0,
    "reprovision": 600.0,
    "cleanup": 30.0,
    "secrets": 10.0,
    "keys": 10.0,
    "evacuate": 600.0,
    "verify-empty": 5.0,
    "delete-service": 5.0,
    "aggregate": 2.0,
    "enable": 2.0,
    "osd-out": 10.0,
    "safe-to-destroy": 1800.0,
    "osd-destroy": 30.0,
    "host-remove": 10.0,
    "active-clean": 1800.0,
    "postcheck": 30.0,
}
OSD_CAPACITY = (
    "capacity: the other OSD hosts hold this host's data below nearfull_ratio (no per-OSD"
    " usage is observed; `ceph osd df` is the check the precheck runs)"
)
COMPUTE_CAPACITY = (
    "capacity: the other enabled hosts of the aggregate have room for the instances moved (no"
    " RAM/vCPU figures are observed; Nova's scheduler refuses a move that does not fit)"
)


@dataclass(frozen=True)
class Replacement:
    """The server that takes the node's place: `name` (the old name for a rebuild of the same
    server), `address`, `failure_domain` (None: the old node's), `server`: a server from a nodes
    file, provisioned through Ironic first; None for an existing host (a testbed host) or for a
    rebuild of the same server (reprovisioned through Ironic when it has a BMC)."""

    name: str
    address: str | None = None
    failure_domain: str | None = None
    server: NewNode | None = None


@dataclass(frozen=True)
class ReplaceIntent:
    """Replace `node` by `replacement`, or remove it when that is None. `dead`: nodes the
    operator confirms dead (`--node-dead`): planned as observed unreachable."""

    node: str
    replacement: Replacement | None = None
    dead: tuple[str, ...] = ()
    image: str | None = None

    @property
    def operation(self) -> str:
        return "replace" if self.replacement else "remove"


@dataclass(frozen=True)
class Situation:
    """What the planner reads from the inventory and the observation."""

    cluster: Cluster
    catalog: Catalog
    node: NodeSpec
    down: frozenset[str]  # nodes down (observed unreachable or confirmed dead)
    out: Mapping[str, Mapping[str, str]]  # service -> node -> why it is out (not the node)
    observed: ObservedState | None
    # service -> the release its new member runs (the node's services, and haproxy)
    releases: Mapping[str, ServiceRelease] = field(default_factory=dict)

    @property
    def dead(self) -> bool:
        return self.node.name in self.down

    @property
    def services(self) -> tuple[str, ...]:
        return self.cluster.services_of(self.node)

    def release_params(self, services: Sequence[str]) -> dict[str, Any]:
        """`release` (and `ceph_release` for Ceph daemons) that `services` run on the
        replacement: each the release its other members run (planning/running.py). A release
        the services do not agree on is left out (each service's own gate checks it)."""
        base = Releases(self.cluster.release, self.cluster.ceph_release).params(services)
        own = self.cluster.ceph_release is not None  # Ceph daemons run their own train
        ceph = [s for s in services if own and self.catalog.services[s].ceph]
        # a Ceph step's `release` is the OpenStack release of the node's other services
        openstack = [s for s in services if s not in ceph] or [
            s for s in self.services if not (own and self.catalog.services[s].ceph)
        ]
        for name, named in (("release", openstack), ("ceph_release", ceph)):
            chosen = {self.releases[s].release for s in named if s in self.releases}
            if len(chosen) == 1:
                base[name] = chosen.pop()
            elif chosen and set(named) <= set(services):  # not agreed: each service's gate checks
                base[name] = None
        return base

    def stores(self) -> list[str]:
        """The node's clustered stores (majority quorum, more than one member)."""
        return [
            s
            for s in self.services
            if self.catalog.services[s].quorum is Quorum.MAJORITY
            and len(self.cluster.members.get(s, ())) > 1
        ]

    def others(self, service: str) -> list[str]:
        """The live, serving members of `service` other than the node, in inventory order."""
        out = self.out.get(service, {})
        return [
            n
            for n in self.cluster.members.get(service, ())
            if n != self.node.name and n not in self.down and n not in out
        ]


def situation(
    cluster: Cluster,
    node: str,
    observed: ObservedState | None,
    dead: Sequence[str] = (),
    catalog: Catalog | None = None,
    recorded: InPlace | None = None,
) -> Situation:
    """UsageError (exit 2) when `node` is not in the inventory. `recorded`: what the recorded
    state says the cloud runs (the releases the replacement runs come from the observation
    first, then from it, then from the inventory: planning/running.py)."""
    catalog = catalog or load_catalog()
    names = {n.name for n in cluster.nodes}
    if node not in names:
        raise UsageError.at(cluster.source or "cluster.yaml", "nodes", f"a node named {node!r}")
    for name in dead:
        if name not in names:
            raise UsageError.at("--node-dead", "", f"a node of the inventory, not {name!r}")
    down = set(dead)
    out: dict[str, dict[str, str]] = {}
    if observed is not None:
        down |= {n.name for n in cluster.nodes if observed.node_state(n.name) == UNREACHABLE}
        for service, members in cluster.members.items():
            store = observed.store(service)
            joined = set(store.members) if store and store.members else None
            for n in members:
                if n in down or n == node:
                    continue
                if observed.release_of(f"{service}@{n}") == NOT_RUNNING:
                    out.setdefault(service, {})[n] = "not running"
                elif joined is not None and n not in joined:
                    out.setdefault(service, {})[n] = f"not joined to {service}"
    spec = cluster.node(node)
    services = [*cluster.services_of(spec), *(["haproxy"] if "haproxy" in cluster.members else [])]
    seen = observed_in_place(cluster, observed, catalog, down) if observed is not None else None
    releases = {
        s: service_release(cluster, catalog, s, node, seen, recorded)
        for s in dict.fromkeys(services)
    }
    return Situation(cluster, catalog, spec, frozenset(down), out, observed, releases)


# --- refusals ------------------------------------------------------------------------------------


def refusals(sit: Situation, intent: ReplaceIntent) -> list[Refusal]:
    """Every rule no safe plan of `intent` can keep, naming the node (empty: plan on)."""
    out: list[Refusal] = []
    name = sit.node.name
    for store in sit.stores():
        members = sit.cluster.members[store]
        why = {n: "unreachable" for n in members if n in sit.down and n != name}
        why |= {n: w for n, w in sit.out.get(store, {}).items() if n != name}
        if why:
            listed = ", ".join(f"{n} ({w})" for n, w in why.items())
            out.append(
                Refusal(
                    "membership",
                    ", ".join(why),
                    store,
                    f"{store}: {listed} down; a member ({name}) is never removed from a store"
                    f" while another member of it is down: bring {', '.join(why)} back first",
                )
            )
            continue
        left = len(members) - 1
        if intent.replacement is None and left < MIN_MEMBERS:
            out.append(
                Refusal(
                    "quorum",
                    name,
                    store,
                    f"{store}: removing {name} leaves {left} member(s); a quorum store needs"
                    f" at least {MIN_MEMBERS} to survive the loss of one (majority quorum)",
                )
            )
    if intent.replacement is not None:
        out += _release_refusals(sit)
    if "nova-compute" in sit.services:
        out += _compute_refusals(sit)
    if "ceph-osd" in sit.services:
        out += _osd_refusals(sit, intent)
    return out


def _release_refusals(sit: Situation) -> list[Refusal]:
    """No release the replacement's services can safely run (planning/running.py)."""
    return [
        Refusal("release", sit.node.name, service, chosen.problem)
        for service, chosen in sit.releases.items()
        if chosen.problem and service in sit.services
    ]


def _compute_refusals(sit: Situation) -> list[Refusal]:
    name = sit.node.name
    held = _instances(sit)
    policy = sit.cluster.policies.evacuate
    if held == 0:
        return []
    if policy is Evacuate.NONE:
        return [
            Refusal(
                "evacuation",
                name,
                "nova-compute",
                f"{name} holds {'instances' if held is None else f'{held} instance(s)'} and the"
                " evacuate policy is none: empty it first, or set a policy that moves them",
            )
        ]
    aggregate = sit.cluster.aggregate_of(sit.node)
    peers = [
        n.name
        for n in sit.cluster.nodes
        if n.name != name
        and n.name not in sit.down
        and "nova-compute" in sit.cluster.services_of(n)
        and sit.cluster.aggregate_of(n) == aggregate
        and _enabled(sit, n.name)
    ]
    if peers:
        return []
    return [
        Refusal(
            "capacity",
            name,
            f"aggregate:{aggregate}",
            f"{name}: no other live, enabled compute in aggregate {aggregate} to move its"
            " instances to",
        )
    ]


def _instances(sit: Situation) -> int | None:
    seen = sit.observed.compute(sit.node.name) if sit.observed else None
    return seen.instances if seen else None


def _enabled(sit: Situation, node: str) -> bool:
    seen = sit.observed.compute(node) if sit.observed else None
    return seen is None or seen.enabled is not False


def _osd_refusals(sit: Situation, intent: ReplaceIntent) -> list[Refusal]:
    name = sit.node.name
    members = sit.cluster.members["ceph-osd"]
    down = [n for n in members if n != name and (n in sit.down or n in sit.out.get("ceph-osd", {}))]
    if down:
        return [
            Refusal(
                "ceph",
                ", ".join(down),
                "ceph-osd",
                f"ceph-osd: {', '.join(down)} down; taking {name}'s OSDs out as well leaves"
                " data of two hosts without all its copies",
            )
        ]
    left = len(members) - 1
    if left < MIN_MEMBERS:
        return [
            Refusal(
                "ceph",
                name,
                "ceph-osd",
                f"ceph-osd: without {name} only {left} OSD host(s) remain; three replicas on"
                " distinct hosts cannot backfill, so its OSDs never become safe to destroy",
            )
        ]
    return []


# --- the plan ------------------------------------------------------------------------------------


class _Steps:
    """The plan under construction: steps in order, each after the ids given."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def add(
        self,
        sid: str,
        action: str,
        stage: str,
        after: Sequence[str],
        kind: str,
        nodes: Sequence[str] = (),
        disrupts: Sequence[str] = (),
        duration: float | None = None,
        **params: Any,
    ) -> str:
        self.steps.append(
            Step(
                id=sid,
                action=action,
                phase=stage,
                nodes=tuple(nodes),
                disrupts=tuple(disrupts),
                depends_on=tuple(dict.fromkeys(after)),
                duration=DURATIONS[kind] if duration is None else duration,
                params=freeze_params({k: v for k, v in params.items() if v is not None}),
            )
        )
        return sid

    def playbook(
        self, sid: str, name: str, after: Sequence[str], kind: str, nodes: Sequence[str], **p: Any
    ) -> str:
        return self.add(sid, act.PLAYBOOK, "replace", after, kind, nodes, playbook=name, **p)

    def disrupting(self, sid: str, instances: Sequence[str]) -> None:
        """Mark step `sid` (just added) as disrupting `instances`."""
        index = next(i for i, s in enumerate(self.steps) if s.id == sid)
        self.steps[index] = replace(self.steps[index], disrupts=tuple(instances))


def plan_replace(
    cluster: Cluster,
    intent: ReplaceIntent,
    *,
    observed: ObservedState | None = None,
    profiles: Sequence[HardwareProfile] = (),
    force: bool = False,
    catalog: Catalog | None = None,
    recorded: InPlace | None = None,
) -> Plan:
    """The plan replacing (or removing) `intent.node`; UnsafePlan (exit 3) naming node and rule
    when no safe plan exists, unless `force`; PlanningError for a replacement that does not fit
    (a server of the wrong profile, a name already in the cluster). The replacement's services
    run the release their other members run: observed, else `recorded` (the recorded state),
    else the inventory's (rule ``release`` when none is safe)."""
    sit = situation(cluster, intent.node, observed, intent.dead, catalog, recorded)
    refused = refusals(sit, intent)
    if refused and not force:
        raise UnsafePlan(refused)
    new = intent.replacement
    if new and new.name != sit.node.name and new.name in {n.name for n in cluster.nodes}:
        raise PlanningError(f"{new.name} is already a node of cluster {cluster.name}")
    build = _Steps()
    around = tuple(sorted(sit.down))
    pre = build.add(
        f"precheck/{intent.operation}/{sit.node.name}",
        act.PRECHECK,
        "precheck",
        (),
        "precheck",
        services=sit.stores(),
        node=sit.node.name,
    )
    gates = _preconditions(build, sit, pre)
    removed = _take_out(build, sit, gates, new)
    if new is not None:
        _bring_in(build, sit, intent, new, [pre], removed, profiles)
    needed = {d for s in build.steps for d in s.depends_on}
    build.add(
        f"postcheck/{intent.operation}/{sit.node.name}",
        act.POSTCHECK,
        "postcheck",
        [s.id for s in build.steps if s.id not in needed],
        "postcheck",
    )
    _plan_around(build, sit, new)
    extra: dict[str, Any] = {NODE: sit.node.name, MEMBERS_DOWN: around}
    if new is not None:
        extra |= {
            REPLACEMENT: new.name,
            NEW_ADDRESS: new.address or (sit.node.address if new.name == sit.node.name else None),
            NEW_DOMAIN: new.failure_domain or sit.node.failure_domain,
        }
    if intent.dead:
        extra[NODE_DEAD] = tuple(intent.dead)
    assumed = _assumptions(sit)
    if assumed:
        extra[ASSUMPTIONS] = assumed
    return build_plan(
        intent.operation,
        cluster.name,
        build.steps,
        source=cluster.release,
        target=cluster.release,
        inventory_digest=cluster.digest,
        extra=tuple((k, v) for k, v in freeze_params(extra) if v not in (None, ())),
    )


def _plan_around(build: _Steps, sit: Situation, new: Replacement | None) -> None:
    """Every check leaves out the nodes that are not members at its moment (`planned_around`,
    as checks of a plan made around down nodes do; the testbed's Galera gate expects
    `wsrep_cluster_size` = members less these): before the take-out, the nodes down and a
    replacement not yet deployed; after it, the nodes down and the old node, unless it was
    rebuilt under its own name."""
    old = sit.node.name
    renamed = new is not None and new.name != old
    before = set(sit.down) | ({new.name} if new is not None and renamed else set())
    after = (set(sit.down) - {old}) | ({old} if new is None or renamed else set())
    for index, step in enumerate(build.steps):
        if not step.action.startswith("checks."):
            continue
        early = step.id.startswith(("precheck/", "precondition/"))
        nodes = sorted(before if early else after)
        if nodes:
            params = {**step.param_dict, act.PLANNED_AROUND: nodes}
            build.steps[index] = replace(step, params=freeze_params(params))


def _assumptions(sit: Situation) -> tuple[str, ...]:
    out = []
    if "ceph-osd" in sit.services:
        out.append(OSD_CAPACITY)
    if "nova-compute" in sit.services:
        out.append(COMPUTE_CAPACITY)
    return tuple(out)


def _preconditions(build: _Steps, sit: Situation, pre: str) -> list[str]:
    """A health gate on the other members of every clustered store of the node."""
    out = [pre]
    for store in sit.stores():
        others = sit.others(store)
        if others:
            out.append(
                build.add(
                    f"precondition/{store}/{sit.node.name}",
                    act.HEALTH,
                    "precheck",
                    [pre],
                    "health",
                    nodes=others,
                    services=[store],
                )
            )
    return out


def _take_out(
    build: _Steps, sit: Situation, after: list[str], new: Replacement | None
) -> dict[str, str]:
    """The old node's half: emptied (instances, OSD data), drained (routers, HAProxy), stopped
    if alive, its members removed, unprovisioned, its records cleaned.
    Returns {"removed": the step after which the replacement may join}."""
    ready = list(after)
    if "nova-compute" in sit.services:
        ready = _empty_compute(build, sit, ready)
    if "ceph-osd" in sit.services:
        ready = _osds_out(build, sit, ready)
    stopped = _stop(build, sit, _drain(build, sit, ready))
    gone = _remove_all(build, sit, stopped, new) or stopped
    name = sit.node.name
    if sit.node.bmc is not None:
        gone = [
            build.add(
                f"unprovision/{name}", "baremetal.undeploy", "replace", gone, "unprovision",
                nodes=[name], node_down=True,
            )
        ]  # fmt: skip
    controllers = sit.others("haproxy") or sit.others("galera") or sit.others("keystone")
    cleaned = build.playbook(
        f"cleanup-records/{name}", CLEANUP_RECORDS, gone, "cleanup", controllers[:1],
        node=name, services=sit.services,
    )  # fmt: skip
    return {"removed": cleaned}


def _drain(build: _Steps, sit: Situation, ready: list[str]) -> list[str]:
    """Routers and DHCP networks to peer agents; the node `maint` in every live HAProxy."""
    name = sit.node.name
    drained = list(ready)
    carried = [s for s in sit.services if sit.catalog.services[s].carries]
    targets = sorted({t for s in carried for t in sit.others(s)})
    if carried and targets:
        drained.append(
            build.add(
                f"drain-network/{name}", act.DRAIN_NETWORK, "replace", ready, "drain-network",
                nodes=[name], agents=carried, targets=targets,
                node_down=True if sit.dead else None,
            )
        )  # fmt: skip
    lbs = sit.others("haproxy")
    for backend in [BACKENDS[s] for s in sit.services if s in BACKENDS] if lbs else []:
        drained.append(
            build.playbook(
                f"haproxy-maint/{backend}/{name}", HAPROXY_STATE, ready, "haproxy", lbs,
                backend=backend, server=name, state="maint",
            )
        )  # fmt: skip
    return drained


def _stop(build: _Steps, sit: Situation, drained: list[str]) -> list[str]:
    """Stop the node's services if it is alive (a dead node's are not stopped)."""
    if sit.dead:
        return drained
    name = sit.node.name
    step = build.playbook(
        f"stop/{name}", STOP_SERVICE, drained, "stop", [name], services=sit.services
    )
    # OSDs already out and safe to destroy hold no data: stopping them disrupts nothing
    build.disrupting(step, [f"{s}@{name}" for s in sit.services if s != "ceph-osd"])
    return [step]


def _remove_all(
    build: _Steps, sit: Situation, stopped: list[str], new: Replacement | None
) -> list[str]:
    """The node's members out of its stores, its OSDs destroyed, its compute service deleted."""
    name = sit.node.name
    removals = []
    for store in sit.stores():
        if store == "ceph-mon" and new and (_mon_waits(sit) or new.name == name):
            # removed once the new mon has joined (_bring_in); a rebuilt mon keeps its name
            # and its monmap entry, and syncs from the quorum when it starts again
            continue
        removals.append(_remove_member(build, sit, store, stopped))
    if "ceph-osd" in sit.services:
        removals.append(_osds_destroy(build, sit, stopped))
    if "nova-compute" in sit.services:
        records = [s for s in sit.services if s.startswith(("nova-", "neutron-"))]
        removals.append(
            build.add(
                f"delete-service/{name}", "compute.delete_service", "replace", stopped,
                "delete-service", nodes=[name], node_down=True, services=records,
            )
        )  # fmt: skip
    return removals


def _mon_waits(sit: Situation) -> bool:
    """A mon removal waits for the new mon when the monmap would otherwise drop below 3."""
    return len(sit.cluster.members.get("ceph-mon", ())) - 1 < MIN_MEMBERS


def _remove_member(build: _Steps, sit: Situation, store: str, after: Sequence[str]) -> str:
    """Remove the node's member of `store`, run on the live members (Galera: every one rewrites
    its cluster address; RabbitMQ and Ceph: one member's CLI suffices)."""
    others = sit.others(store)
    playbook = REMOVE_PLAYBOOKS.get(store, MEMBER_REMOVE)
    on = others if store == "galera" else others[:1]
    return build.playbook(
        f"remove/{store}/{sit.node.name}",
        playbook,
        after,
        "remove",
        on,
        service=store,
        member=sit.node.name,
    )


def _empty_compute(build: _Steps, sit: Situation, after: list[str]) -> list[str]:
    name = sit.node.name
    aggregate = sit.cluster.aggregate_of(sit.node)
    if _instances(sit) == 0:
        return after
    policy = sit.cluster.policies.evacuate
    mode = "evacuate" if sit.dead else policy.value
    moved = build.add(
        f"evacuate/{name}",
        act.EVACUATE,
        "replace",
        after,
        "evacuate",
        nodes=[name],
        mode=mode,
        aggregate=aggregate,
        node_down=True if sit.dead else None,
    )
    return [
        build.add(
            f"verify-empty/{name}",
            "compute.verify_empty",
            "replace",
            [moved],
            "verify-empty",
            nodes=[name],
            node_down=True,
        )
    ]


def _mons(sit: Situation) -> list[str]:
    return sit.others("ceph-mon")


def _osds_out(build: _Steps, sit: Situation, after: list[str]) -> list[str]:
    """Out, then wait until Ceph says the OSDs are safe to destroy (their data moved)."""
    name, on = sit.node.name, _mons(sit)[:1]
    out = build.playbook(f"osd-out/{name}", CEPH_OSD, after, "osd-out", on, op="out", host=name)
    safe = build.playbook(
        f"safe-to-destroy/{name}", CEPH_OSD, [out], "safe-to-destroy", on,
        op="safe-to-destroy", host=name,
    )  # fmt: skip
    return [safe]


def _osds_destroy(build: _Steps, sit: Situation, after: Sequence[str]) -> str:
    """Destroy keeping the ids (for the replacement), then the host leaves the CRUSH map."""
    name, on = sit.node.name, _mons(sit)[:1]
    gone = build.playbook(
        f"osd-destroy/{name}", CEPH_OSD, after, "osd-destroy", on, op="destroy", host=name
    )
    return build.playbook(
        f"host-remove/{name}", CEPH_OSD, [gone], "host-remove", on, op="host-remove", host=name
    )


# --- the replacement ------------------------------------------------------------------------------


def _bring_in(
    build: _Steps,
    sit: Situation,
    intent: ReplaceIntent,
    new: Replacement,
    start: list[str],
    removed: Mapping[str, str],
    profiles: Sequence[HardwareProfile],
) -> list[str]:
    """Provision the replacement (alongside the take-out), then deploy its services after the
    old member is gone, in the catalog's dependency order: each store joined one member at a
    time, each join gated; then its aggregate, a health gate, and back into HAProxy."""
    provisioned = _provision(build, sit, intent, new, start, removed, profiles)
    after = _secrets(build, sit, new.name, [removed["removed"], *provisioned])
    order = [s for s in sit.catalog.dependency_order() if s in sit.services]
    for service in order:
        after = _deploy_one(build, sit, new, service, after)
    if "nova-compute" in sit.services:
        after = _rejoin_aggregate(build, sit, new.name, after)
    after = [
        build.add(
            f"health/{new.name}", act.HEALTH, "replace", after, "health", nodes=[new.name],
            services=sit.services, **sit.release_params(sit.services),
        )
    ]  # fmt: skip
    return _back_in_haproxy(build, sit, new.name, after)


def _secrets(build: _Steps, sit: Situation, name: str, after: list[str]) -> list[str]:
    """The deployment's secrets copied from a live member (CONTRACT: `deploy-secrets`)."""
    if not set(sit.stores()) - {"ceph-mon"}:
        return after
    source = (sit.others("galera") or sit.others("rabbitmq") or [""])[0]
    return [
        build.playbook(
            f"deploy-secrets/{name}", DEPLOY_SECRETS, after, "secrets",
            [source, name] if source else [name], bootstrap=source or None,
        )
    ]  # fmt: skip


def _deploy_one(
    build: _Steps, sit: Situation, new: Replacement, service: str, after: list[str]
) -> list[str]:
    """One service on the replacement (keys first for Keystone), gated when it joins a store,
    serves a backend or holds OSDs; a mon waiting for its successor is removed after the gate."""
    name = new.name
    if service == "keystone" and sit.others("keystone"):
        source = sit.others("keystone")[0]
        after = [
            build.playbook(
                f"keystone-keys/{name}", KEYSTONE_KEYS, after, "keys", [source, name],
                source=source, bootstrap=source,
            )
        ]  # fmt: skip
    joins = service in sit.stores()
    params = sit.release_params([service])
    # the OSDs reuse the destroyed ids (cephadm's `osd rm --replace`); a compute starts empty
    extra = {
        "ceph-osd": {"reuse_ids_of": sit.node.name},
        "nova-compute": {"replaces": sit.node.name},
    }
    deployed = build.playbook(
        f"deploy/{service}/{name}", DEPLOY_SERVICE, after, "health", [name],
        duration=sit.catalog.services[service].duration, service=service,
        phase="join" if joins else "start", **params, **extra.get(service, {}),
    )  # fmt: skip
    if service == "ceph-osd":
        deployed = build.playbook(
            f"active-clean/{name}", CEPH_OSD, [deployed], "active-clean", _mons(sit)[:1],
            op="wait-active-clean", host=name,
        )  # fmt: skip
    if joins or service in BACKENDS or service == "ceph-osd":
        deployed = build.add(
            f"health/{service}/{name}", act.HEALTH, "replace", [deployed], "health",
            nodes=[*sit.others(service), name], services=[service], **params,
        )  # fmt: skip
    if service == "ceph-mon" and _mon_waits(sit) and name != sit.node.name:
        deployed = _remove_member(build, sit, "ceph-mon", [deployed])
    return [deployed]


def _rejoin_aggregate(build: _Steps, sit: Situation, name: str, after: list[str]) -> list[str]:
    """The replacement compute into the old one's aggregate, then enabled."""
    aggregate = sit.cluster.aggregate_of(sit.node)
    if aggregate:
        after = [
            build.add(
                f"aggregate/{name}", "compute.aggregate_add", "replace", after,
                "aggregate", nodes=[name], aggregate=aggregate,
            )
        ]  # fmt: skip
    return [
        build.add(
            f"enable/{name}", act.ENABLE, "replace", after, "enable", nodes=[name],
            aggregate=aggregate,
        )
    ]  # fmt: skip


def _back_in_haproxy(build: _Steps, sit: Situation, name: str, after: list[str]) -> list[str]:
    """The replacement `ready` in every HAProxy, after its health gate; a renamed one is first
    made known to the other HAProxies (their backends list every member)."""
    backends = [BACKENDS[s] for s in sit.services if s in BACKENDS]
    others = sit.others("haproxy")
    lbs = [*others, name] if "haproxy" in sit.services else others
    if backends and name != sit.node.name and others:
        params = sit.release_params(["haproxy"])
        after = [
            build.playbook(
                f"reconfigure/haproxy/{name}", DEPLOY_SERVICE, after, "haproxy", others,
                service="haproxy", phase="start", reload=True, **params,
            )
        ]  # fmt: skip
    ready = [
        build.playbook(
            f"haproxy-ready/{backend}/{name}", HAPROXY_STATE, after, "haproxy", lbs,
            backend=backend, server=name, state="ready",
        )
        for backend in backends
    ]  # fmt: skip
    return [*after, *ready]


def _provision(
    build: _Steps,
    sit: Situation,
    intent: ReplaceIntent,
    new: Replacement,
    start: list[str],
    removed: Mapping[str, str],
    profiles: Sequence[HardwareProfile],
) -> list[str]:
    """The replacement's provisioning: a nodes-file server through the scale-out planner's own
    Ironic steps (enroll ... deploy); the same server rebuilt: redeployed once unprovisioned;
    an existing host: nothing."""
    if new.server is not None:
        server = new.server if new.server.role else replace(new.server, role=sit.node.role)
        options = ScaleOutOptions(image=intent.image)
        # the server joins a cluster without the old node (a rebuild may reuse its name)
        base = replace(sit.cluster, nodes=tuple(n for n in sit.cluster.nodes if n != sit.node))
        grown = plan_scale_out(base, [server], profiles, options=options)
        ids = []
        for step in grown.steps:
            if not step.action.startswith("baremetal."):
                continue
            deps = step.depends_on or tuple(start)
            build.steps.append(replace(step, depends_on=deps, phase="provision"))
            ids.append(step.id)
        return ids[-1:]
    if new.name == sit.node.name and sit.node.bmc is not None:
        return [
            build.add(
                f"reprovision/{new.name}",
                "baremetal.deploy",
                "provision",
                [f"unprovision/{sit.node.name}"],
                "reprovision",
                nodes=[new.name],
                node_down=True,
                image=intent.image,
            )
        ]
    return []


# --- the cluster while and after it runs ---------------------------------------------------------


def replaced_cluster(cluster: Cluster, plan: Plan) -> Cluster:
    """The cluster the drivers and the verifier see while a replace plan runs: the inventory
    with the replacement as a node of the old node's role (a rebuild keeps the old entry)."""
    extra = dict(plan.extra)
    old, new = extra.get(NODE), extra.get(REPLACEMENT)
    if plan.operation not in OPERATIONS or not isinstance(old, str) or not isinstance(new, str):
        return cluster
    if new in {n.name for n in cluster.nodes} or old not in {n.name for n in cluster.nodes}:
        return cluster
    spec = cluster.node(old)
    address = extra.get(NEW_ADDRESS)
    domain = extra.get(NEW_DOMAIN)
    added = NodeSpec(
        name=new,
        role=spec.role,
        address=address if isinstance(address, str) else None,
        failure_domain=domain if isinstance(domain, str) else spec.failure_domain,
    )
    return replace(cluster, nodes=(*cluster.nodes, added))


def members_down(plan: Plan) -> tuple[str, ...]:
    down = dict(plan.extra).get(MEMBERS_DOWN)
    return down if isinstance(down, tuple) else ()
