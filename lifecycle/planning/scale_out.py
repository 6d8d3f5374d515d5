"""Scale-out planner: new servers from the nodes file to working members of their role.

Pure. Per new server, a chain of steps (independent of the other servers, so one bad BMC stops
only its own chain; the engine's concurrency bounds how many run at once):

    enroll -> inspect -> match_profile -> provide -> deploy -> ansible deploy-node
           -> compute.aggregate_add (computes only) -> checks.health

Each server's expected profile (and so its role, services and aggregate) is known at planning
time: from inspection data when given (`inspected`, e.g. recorded by `lifecycle nodes import`),
else from the nodes file (`capabilities: profile:X` or `role`). The match step checks the real
hardware against the profiles at run time and refuses a server that is not what was planned,
before it is provisioned. A server that matches nothing, an unknown role or a role short of
servers is reported here, before anything runs.

Which release the new servers run (issue 11): each service's the release its live members run,
from the observed state, else the recorded state, else the inventory (planning/running.py), not
the inventory's `release:` alone: after an upgrade the operator has not written into the
inventory, a compute at the old release beside a newer control plane is a mix Nova supports
only within its skew bound (rule ``skew``), and a controller joining stores at another release
fails their gates. Refused (rule ``release``, UnsafePlan) when a service's members disagree, or a
new server's OpenStack services would need different releases (deploy-node installs one).
Nodes observed unreachable are planned around: the health checks leave them out
(`planned_around`), and the plan records them (`observed_down`) for the verifier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from lifecycle.catalog import Catalog, load_catalog
from lifecycle.errors import PlanningError, UnsafePlan
from lifecycle.formats.nodes_file import NewNode
from lifecycle.model.cluster import Cluster, NodeSpec, RoleSpec
from lifecycle.model.in_place import InPlace
from lifecycle.model.observed import ObservedState
from lifecycle.planning import actions as act
from lifecycle.planning.observed import OBSERVED_DOWN, Refusal, observed_in_place
from lifecycle.planning.plan import Plan, Step, freeze_params
from lifecycle.planning.profiles import (
    HardwareProfile,
    facts_from_inventory,
    match_node,
    profiles_to_json,
)
from lifecycle.planning.running import ServiceRelease, service_release
from lifecycle.planning.scheduler import build_plan

OPERATION = "scale-out"

# seconds, the estimates the schedule uses (Redfish inspection and ramdisk deploy as measured)
DURATIONS = {
    "enroll": 15.0,
    "inspect": 60.0,
    "match": 1.0,
    "provide": 10.0,
    "deploy": 600.0,
    "deploy-node": 300.0,
    "aggregate": 2.0,
    "health": 10.0,
}


@dataclass(frozen=True)
class ScaleOutOptions:
    """`image`: what deploy writes or boots (a boot ISO URL for the ramdisk deploy interface, an
    image URL for direct); `wanted`: role -> servers the operator expects (shortfalls fail)."""

    release: str | None = None
    image: str | None = None
    deploy_interface: str = "ramdisk"
    wanted: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Assignment:
    """Where one new server goes, and why."""

    node: NewNode
    profile: HardwareProfile
    role: RoleSpec
    reason: str

    @property
    def aggregate(self) -> str | None:
        return self.role.aggregate or self.profile.aggregate


@dataclass(frozen=True)
class Releases:
    """What a new server's services run: OpenStack services at `openstack`, Ceph daemons at
    `ceph` (the cluster's `ceph_release`; None when the cluster names none, and then Ceph daemons
    follow `openstack`, as the sim and the playbooks' `ceph_release | default(cluster_release)`)."""

    openstack: str
    ceph: str | None

    def params(self, services: Sequence[str]) -> dict[str, Any]:
        """`release`, and `ceph_release` only when `services` hold a Ceph daemon."""
        known = load_catalog().services
        has_ceph = any(s in known and known[s].ceph for s in services)
        return {"release": self.openstack, "ceph_release": self.ceph if has_ceph else None}


@dataclass(frozen=True)
class LiveState:
    """What the cloud runs as the planner is told it: `observed` (an observation made before
    planning), `recorded` (the recorded state's releases, `<cluster>.state.json`)."""

    observed: ObservedState | None = None
    recorded: InPlace | None = None

    def down(self, cluster: Cluster) -> tuple[str, ...]:
        """The inventory's nodes observed unreachable, in inventory order."""
        gone = set(self.observed.unreachable) if self.observed is not None else set()
        return tuple(n.name for n in cluster.nodes if n.name in gone)


def plan_scale_out(
    cluster: Cluster,
    new_nodes: Sequence[NewNode],
    profiles: Sequence[HardwareProfile],
    *,
    inspected: Mapping[str, Mapping[str, Any]] | None = None,
    options: ScaleOutOptions | None = None,
    live: LiveState | None = None,
    force: bool = False,
) -> Plan:
    """The plan that brings `new_nodes` into `cluster`; PlanningError names every problem;
    UnsafePlan (exit 3, rule ``release``) when no release is safe for a new server's services,
    unless `force` (then the inventory's, as without `live`)."""
    opts = options or ScaleOutOptions()
    live = live or LiveState()
    assignments = assign(cluster, new_nodes, profiles, inspected or {}, opts)
    chosen, refused = choose_releases(cluster, assignments, live, opts)
    if refused and not force:
        raise UnsafePlan(refused)
    down = live.down(cluster)
    catalog = profiles_to_json(profiles)
    steps: list[Step] = []
    for a in assignments:
        steps.extend(_chain(a, chosen[a.node.name], catalog, opts, down))
    targets = {r.openstack for r in chosen.values()}
    extra: list[tuple[str, Any]] = [("new_nodes", tuple(a.node.name for a in assignments))]
    if down:
        extra.append((OBSERVED_DOWN, down))
    return build_plan(
        OPERATION,
        cluster.name,
        steps,
        source=cluster.release,
        target=targets.pop() if len(targets) == 1 else opts.release or cluster.release,
        inventory_digest=cluster.digest,
        extra=tuple(extra),
    )


def scale_out_refusals(
    cluster: Cluster,
    new_nodes: Sequence[NewNode],
    profiles: Sequence[HardwareProfile],
    live: LiveState,
    *,
    inspected: Mapping[str, Mapping[str, Any]] | None = None,
    options: ScaleOutOptions | None = None,
) -> list[Refusal]:
    """What `plan_scale_out` refuses without `force` (for a run to record as overridden)."""
    opts = options or ScaleOutOptions()
    assignments = assign(cluster, new_nodes, profiles, inspected or {}, opts)
    return choose_releases(cluster, assignments, live, opts)[1]


def choose_releases(
    cluster: Cluster,
    assignments: Sequence[Assignment],
    live: LiveState,
    opts: ScaleOutOptions,
    catalog: Catalog | None = None,
) -> tuple[dict[str, Releases], list[Refusal]]:
    """new server -> the releases its services run (planning/running.py: what the service's
    live members run), and the refusals where none is safe."""
    catalog = catalog or load_catalog()
    base = replace(cluster, release=opts.release) if opts.release else cluster
    seen = None
    if live.observed is not None:
        seen = observed_in_place(cluster, live.observed, catalog, set(live.down(cluster)))
    out: dict[str, Releases] = {}
    refused: list[Refusal] = []
    for a in assignments:
        name = a.node.name
        each = [
            service_release(base, catalog, s, name, seen, live.recorded) for s in a.role.services
        ]
        mine = [Refusal("release", name, c.service, str(c.problem)) for c in each if c.problem]
        releases, problem = _one_each(base, catalog, name, each)
        if problem and not mine:  # a service's own disagreement already says why
            mine.append(Refusal("release", name, name, problem))
        refused += mine
        out[name] = releases
    return out, refused


def _one_each(
    cluster: Cluster, catalog: Catalog, node: str, chosen: Sequence[ServiceRelease]
) -> tuple[Releases, str | None]:
    """One OpenStack and one Ceph release for the new server (deploy-node installs each train at
    one release), or the inventory's with the reason when its services' members disagree. A Ceph
    daemon of a cluster without its own Ceph release runs the OpenStack release names."""
    own = cluster.ceph_release is not None
    trains: dict[bool, dict[str, str]] = {False: {}, True: {}}
    for c in chosen:
        ceph = own and catalog.services[c.service].ceph
        if c.release is not None:
            trains[ceph][c.service] = c.release
    picked: dict[bool, str | None] = {}
    for ceph, default in ((False, cluster.release), (True, cluster.ceph_release)):
        releases = set(trains[ceph].values())
        if len(releases) > 1:
            listed = ", ".join(f"{s} at {r}" for s, r in sorted(trains[ceph].items()))
            problem = (
                f"{node}: its services' members run different releases ({listed}): deploy-node"
                " installs one; finish the upgrade first (`lifecycle plan upgrade --observe`"
                " plans what is left)"
            )
            return Releases(cluster.release, cluster.ceph_release), problem
        picked[ceph] = releases.pop() if releases else default
    return Releases(str(picked[False]), picked[True] if own else None), None


def assign(
    cluster: Cluster,
    new_nodes: Sequence[NewNode],
    profiles: Sequence[HardwareProfile],
    inspected: Mapping[str, Mapping[str, Any]],
    opts: ScaleOutOptions,
) -> tuple[Assignment, ...]:
    """The profile and role of every new server, or a PlanningError listing all problems."""
    by_name = {p.name: p for p in profiles}
    problems: list[str] = []
    out: list[Assignment] = []
    existing = {n.name for n in cluster.nodes}
    for node in new_nodes:
        if node.name in existing:
            problems.append(f"{node.name}: already a node of cluster {cluster.name}")
            continue
        found = _assign_one(cluster, node, profiles, by_name, inspected.get(node.name))
        if isinstance(found, str):
            problems.append(f"{node.name}: {found}")
        else:
            out.append(found)
    got: dict[str, int] = {}
    for a in out:
        got[a.role.name] = got.get(a.role.name, 0) + 1
    for role, count in opts.wanted:
        if got.get(role, 0) < count:
            problems.append(f"role {role}: {count} new server(s) wanted, {got.get(role, 0)} fit")
    if problems:
        raise PlanningError("scale-out cannot be planned:\n  - " + "\n  - ".join(problems))
    return tuple(out)


def _assign_one(
    cluster: Cluster,
    node: NewNode,
    profiles: Sequence[HardwareProfile],
    by_name: Mapping[str, HardwareProfile],
    inventory: Mapping[str, Any] | None,
) -> Assignment | str:
    """An Assignment, or the reason there is none."""
    if inventory is not None:
        verdict = match_node(node.name, facts_from_inventory(inventory), profiles)
        chosen = verdict.chosen
        if chosen is None:
            return "matches no hardware profile: " + " | ".join(verdict.explain())
        if node.profile and node.profile != chosen.name:
            why = " | ".join(verdict.explain())
            return f"declared profile {node.profile} but the hardware matches {chosen.name}: {why}"
        profile, reason = chosen, f"inspected hardware matches {chosen.name}"
    elif node.profile:
        if node.profile not in by_name:
            return f"profile {node.profile} is not defined (known: {', '.join(sorted(by_name))})"
        profile, reason = by_name[node.profile], f"nodes file says profile:{node.profile}"
    elif node.role:
        candidates = _profiles_for_role(cluster, node.role, profiles)
        if not candidates:
            return f"no hardware profile feeds role {node.role}"
        profile, reason = candidates[0], f"nodes file says role {node.role}"
    else:
        return "no profile, role or inspection data: say `capabilities: profile:X` or inspect first"
    role = _role_for(cluster, node, profile)
    if isinstance(role, str):
        return role
    return Assignment(node, profile, role, reason)


def _profiles_for_role(
    cluster: Cluster, role: str, profiles: Sequence[HardwareProfile]
) -> list[HardwareProfile]:
    spec = next((r for r in cluster.roles if r.name == role), None)
    named = spec.profile if spec else None
    fits = [p for p in profiles if p.name == named or p.role == role]
    return sorted(fits, key=lambda p: (p.name != named, -p.priority, p.name))


def _role_for(cluster: Cluster, node: NewNode, profile: HardwareProfile) -> RoleSpec | str:
    roles = {r.name: r for r in cluster.roles}
    if node.role:
        name = node.role
    else:
        by_profile = [r.name for r in cluster.roles if r.profile == profile.name]
        name = by_profile[0] if by_profile else (profile.role or "")
    if name not in roles:
        known = ", ".join(sorted(roles))
        return f"role {name or '(none)'} of profile {profile.name} is not in the cluster ({known})"
    spec = roles[name]
    if spec.profile and spec.profile != profile.name:
        return f"role {name} takes profile {spec.profile}, not {profile.name}"
    return spec


def _step(node: str, kind: str, action: str, after: str | None, **params: Any) -> Step:
    return Step(
        id=f"{kind}/{node}",
        action=action,
        phase=kind,
        nodes=(node,),
        depends_on=(after,) if after else (),
        duration=DURATIONS[kind],
        params=freeze_params({k: v for k, v in params.items() if v is not None}),
        idempotent=True,
    )


def import_steps(node: NewNode) -> tuple[Step, Step]:
    """Enroll and inspect one new server: the start of its chain, and `lifecycle nodes import`."""
    enroll = _step(
        node.name,
        "enroll",
        "baremetal.enroll",
        None,
        driver=node.bmc.driver,
        bmc_address=node.bmc.address,
        system_id=node.bmc.system_id,
        credentials=node.bmc.credentials,
        macs=node.macs,
        properties=tuple(f"{k}={v}" for k, v in node.properties),
        # what the nodes file says for Ironic beyond the basics (absent when it says nothing,
        # so that plans of plain nodes files stay as they were)
        uuid=node.uuid,
        interfaces=_pairs(node.interfaces),
        driver_info=_pairs(node.driver_info),
        ports=tuple(p.to_json() for p in node.ports) or None,
        resource_class=node.resource_class,
        conductor_group=node.conductor_group,
    )
    return enroll, _step(node.name, "inspect", "baremetal.inspect", enroll.id)


def _pairs(pairs: tuple[tuple[str, str], ...]) -> tuple[str, ...] | None:
    return tuple(f"{k}={v}" for k, v in pairs) or None


def provisioning(
    node: NewNode, opts: ScaleOutOptions, match: tuple[str, str] | None = None
) -> list[Step]:
    """One server from its BMC to an installed OS through Ironic: enroll -> inspect
    [-> match_profile] -> provide -> deploy (the last step's id is `deploy/<node>`). `match`:
    (profile, profiles catalog JSON) to check the hardware against before it is provisioned.
    Shared by scale-out and deploy (planning/deploy.py)."""
    name = node.name
    chain = list(import_steps(node))
    if match is not None:
        chain.append(
            _step(
                name, "match", "baremetal.match_profile", chain[-1].id,
                profile=match[0], profiles=match[1],
            )
        )  # fmt: skip
    chain.append(_step(name, "provide", "baremetal.provide", chain[-1].id))
    chain.append(
        _step(
            name, "deploy", "baremetal.deploy", chain[-1].id,
            image=opts.image, interface=opts.deploy_interface,
        )
    )  # fmt: skip
    return chain


def _chain(
    a: Assignment,
    releases: Releases,
    catalog: str,
    opts: ScaleOutOptions,
    down: tuple[str, ...] = (),
) -> list[Step]:
    name, services = a.node.name, a.role.services
    release = releases.params(services)
    chain = provisioning(a.node, opts, (a.profile.name, catalog))
    chain.append(
        _step(
            name, "deploy-node", "ansible.playbook", chain[-1].id,
            playbook="deploy-node", services=services, **release,
        )
    )  # fmt: skip
    if a.aggregate and "nova-compute" in services:
        chain.append(
            _step(name, "aggregate", "compute.aggregate_add", chain[-1].id, aggregate=a.aggregate)
        )
    # the health check asks the stores' other members too: those down are left out
    around = {act.PLANNED_AROUND: down or None}
    chain.append(
        _step(name, "health", "checks.health", chain[-1].id, services=services, **release, **around)
    )
    return chain


def grown_cluster(
    cluster: Cluster,
    new_nodes: Sequence[NewNode],
    profiles: Sequence[HardwareProfile],
    inspected: Mapping[str, Mapping[str, Any]] | None = None,
) -> Cluster:
    """The cluster with the new servers as members of their roles: what drivers that address
    nodes by role (Ansible inventory, health checks) need while a scale-out runs."""
    found = assign(cluster, new_nodes, profiles, inspected or {}, ScaleOutOptions())
    added = tuple(
        NodeSpec(
            name=a.node.name,
            role=a.role.name,
            address=a.node.address,
            failure_domain=a.node.failure_domain,
            bmc=a.node.bmc,
        )
        for a in found
    )
    return replace(cluster, nodes=cluster.nodes + added)
