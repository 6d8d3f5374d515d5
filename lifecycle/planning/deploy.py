"""The deploy planner: registered bare metal -> a running cloud at one release (TripleO's
"overcloud deploy"). Pure: the cluster, the intent and optionally an observation in, a Plan out.

The plan's DAG, in TripleO's order (CONTRACT "Deploy plan steps"):

    precheck/cluster
    -> Ironic provisioning of nodes with a BMC not observed reachable (scale-out's steps:
       enroll -> inspect -> provide -> deploy/<node>)
    -> deploy-secrets on the controllers (bootstrap: the first Galera member)
    -> infra: stateless services started on all their members in one step (`start/<svc>`),
       clustered stores (catalog quorum `majority`: galera, rabbitmq, ovn-dbs, etcd, redis,
       pacemaker, ceph-mon) bootstrapped on their first member, then joined one member at a
       time, each join only after the previous member's health gate
    -> per project of catalog `deploy_databases`: db-create -> db-migrate phase sync; keystone's
       fernet/credential keys made once and copied (keystone-keys) before keystone starts;
       keystone-bootstrap once keystone runs, then its health gate
    -> control services in catalog depends_on order, then the data plane
    -> Ceph: mon -> mgr -> osd (-> mds, rgw) by the catalog's depends_on, beside the OpenStack lane
    -> postcheck/cluster.

Every service's start waits for the final health gate of every service it depends on (the
catalog's depends_on), and the tiers go infra -> control -> data. A health gate of a store
being built names the members not joined yet as `planned_around` (the checks leave them out:
Galera's wsrep_cluster_size is the members joined so far), and every deploy check carries
`deploying` (quorum is checked only for the services it names; the others are not there yet).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lifecycle.catalog import Catalog, load_catalog
from lifecycle.errors import PlanningError
from lifecycle.formats.nodes_file import NewNode
from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import REACHABLE, ObservedState
from lifecycle.model.service import Quorum, ServiceSpec, Tier
from lifecycle.planning import actions as act
from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.rollout import PRECHECK_ID, unique
from lifecycle.planning.scale_out import Releases, ScaleOutOptions, provisioning
from lifecycle.planning.scheduler import build_plan

OPERATION = "deploy"
DEPLOY_SERVICE = "deploy-service"
DEPLOY_SECRETS = "deploy-secrets"
DB_CREATE = "db-create"
KEYSTONE_KEYS = "keystone-keys"
KEYSTONE_BOOTSTRAP = "keystone-bootstrap"
DEPLOYING = "deploying"  # a check's param: quorum only of the services it names
SECRETS_ID = "secrets/deploy"
POSTCHECK_ID = "postcheck/cluster"
# TripleO's step 1: the load balancer before the stores and services behind it
LOAD_BALANCER = "haproxy"


@dataclass(frozen=True)
class DeployIntent:
    """What the operator asks for. `release`: the OpenStack release to deploy (default: the
    inventory's); `provisioned`: every node already has an OS (no Ironic steps);
    `provision`: the nodes to provision (default: every node with a BMC not observed
    reachable); `image` / `deploy_interface`: as for scale-out."""

    release: str | None = None
    provisioned: bool = False
    provision: tuple[str, ...] | None = None
    image: str | None = None
    deploy_interface: str = "ramdisk"


def is_store(spec: ServiceSpec) -> bool:
    """A clustered store: bootstrapped on one member, the others joined one at a time."""
    return spec.quorum is Quorum.MAJORITY


@dataclass
class _Deploy:
    """The plan under construction."""

    cluster: Cluster
    catalog: Catalog
    releases: Releases
    provisioned: dict[str, str]  # node -> its last provisioning step
    steps: list[Step] = field(default_factory=list)
    final: dict[str, str] = field(default_factory=dict)  # service -> its last health gate
    synced: dict[str, str] = field(default_factory=dict)  # project -> its db-migrate sync
    secrets: str | None = None

    def add(
        self,
        step_id: str,
        action: str,
        phase: str,
        params: dict[str, Any],
        deps: Iterable[str],
        nodes: Sequence[str],
        duration: float,
        upgrades: Sequence[str] = (),
    ) -> str:
        clean = {k: v for k, v in params.items() if v is not None}
        step = act.make_step(
            step_id,
            action,
            phase,
            clean,
            nodes=tuple(nodes),
            upgrades=tuple(upgrades),
            depends_on=tuple(unique(deps)),
            duration=duration,
        )
        self.steps.append(step)
        return step.id

    def base(self, nodes: Iterable[str], openstack: bool = True) -> list[str]:
        """What any step on `nodes` waits for: the precheck, the nodes' provisioning and (for
        OpenStack's services) the secrets."""
        deps = [PRECHECK_ID, *(self.provisioned[n] for n in nodes if n in self.provisioned)]
        if openstack and self.secrets:
            deps.append(self.secrets)
        return deps

    def release_params(self, services: Sequence[str]) -> dict[str, Any]:
        return self.releases.params(services)

    def health(
        self,
        step_id: str,
        spec: ServiceSpec,
        nodes: Sequence[str],
        deps: Iterable[str],
        left: Sequence[str],
    ) -> str:
        params = {
            "services": [spec.name],
            **self.release_params([spec.name]),
            DEPLOYING: True,
            act.PLANNED_AROUND: list(left) or None,
        }
        return self.add(
            step_id, act.HEALTH, _phase(spec), params, deps, nodes, self.duration("health_gate")
        )

    def duration(self, kind: str) -> float:
        return self.catalog.step_durations[kind]

    def deploy_service(
        self,
        step_id: str,
        spec: ServiceSpec,
        phase: str,
        nodes: Sequence[str],
        deps: Iterable[str],
    ) -> str:
        params = {
            "playbook": DEPLOY_SERVICE,
            "service": spec.name,
            "phase": phase,
            **self.release_params([spec.name]),
        }
        instances = [f"{spec.name}@{n}" for n in nodes]
        return self.add(
            step_id, act.PLAYBOOK, _phase(spec), params, deps, nodes, spec.duration, instances
        )


def _phase(spec: ServiceSpec) -> str:
    if spec.ceph:
        return "ceph"
    return {Tier.INFRA: "infra", Tier.CONTROL: "control-plane"}.get(spec.tier, "data-plane")


def plan_deploy(
    cluster: Cluster,
    intent: DeployIntent | None = None,
    observed: ObservedState | None = None,
    catalog: Catalog | None = None,
) -> Plan:
    """The deploy plan of `cluster` (see the module's doc), scheduled, with its lower bound.

    `observed`: a driver's observation made before planning; a node it saw reachable already
    has an OS and is not provisioned. Raises PlanningError (exit 2) for services the catalog
    does not know, a release no train holds, or nodes to provision that have no BMC."""
    intent = intent or DeployIntent()
    catalog = catalog or load_catalog()
    unknown = sorted(s for s in cluster.members if s not in catalog.services)
    if unknown:
        raise PlanningError(f"services not in the catalog: {', '.join(unknown)}")
    release = catalog.openstack.get(intent.release or cluster.release).name
    ceph = catalog.ceph.get(cluster.ceph_release).name if cluster.ceph_release else None
    plan = _Deploy(cluster, catalog, Releases(release, ceph), {})
    nodes = to_provision(cluster, intent, observed)
    plan.add(
        PRECHECK_ID,
        act.PRECHECK,
        "precheck",
        {"release": release, "services": [], DEPLOYING: True},
        (),
        (),
        plan.duration("precheck"),
    )
    options = ScaleOutOptions(image=intent.image, deploy_interface=intent.deploy_interface)
    for name in nodes:
        chain = provisioning(_bare_metal(cluster, name), options)
        first = chain[0]
        chain[0] = replace(first, depends_on=(PRECHECK_ID,))
        plan.steps.extend(chain)
        plan.provisioned[name] = chain[-1].id
    _secrets(plan)
    _openstack(plan)
    _ceph(plan)
    waited_for = {dep for step in plan.steps for dep in step.depends_on}
    plan.add(
        POSTCHECK_ID,
        act.POSTCHECK,
        "postcheck",
        {"release": release, "ceph_release": ceph},
        [s.id for s in plan.steps if s.id not in waited_for],
        (),
        plan.duration("postcheck"),
    )
    return build_plan(
        OPERATION,
        cluster.name,
        plan.steps,
        source=None,
        target=release,
        inventory_digest=cluster.digest,
        extra=(("provision", tuple(nodes)),),
    )


def to_provision(
    cluster: Cluster, intent: DeployIntent, observed: ObservedState | None
) -> tuple[str, ...]:
    """The nodes provisioned through Ironic first, in inventory order."""
    if intent.provisioned:
        return ()
    if intent.provision is not None:
        known = {n.name: n for n in cluster.nodes}
        problems = [
            f"{name}: not a node of cluster {cluster.name}"
            if name not in known
            else f"{name}: has no bmc in the inventory, Ironic cannot provision it"
            for name in intent.provision
            if name not in known or known[name].bmc is None
        ]
        if problems:
            raise PlanningError("deploy cannot be planned:\n  - " + "\n  - ".join(problems))
        wanted = set(intent.provision)
        return tuple(n.name for n in cluster.nodes if n.name in wanted)
    return tuple(
        n.name
        for n in cluster.nodes
        if n.bmc is not None and (observed is None or observed.node_state(n.name) != REACHABLE)
    )


def _bare_metal(cluster: Cluster, name: str) -> NewNode:
    """An inventory node as scale-out's provisioning steps take it (its BMC is given)."""
    node = cluster.node(name)
    assert node.bmc is not None  # to_provision keeps only nodes with a BMC
    return NewNode(
        name=node.name,
        bmc=node.bmc,
        role=node.role,
        failure_domain=node.failure_domain,
        address=node.address,
    )


def controllers(plan: _Deploy) -> list[str]:
    """Nodes running an OpenStack infra or control service, in inventory order."""
    services = plan.catalog.services
    return [
        n.name
        for n in plan.cluster.nodes
        if any(
            services[s].tier in (Tier.INFRA, Tier.CONTROL) and not services[s].ceph
            for s in plan.cluster.services_of(n)
        )
    ]


def _secrets(plan: _Deploy) -> None:
    hosts = controllers(plan)
    if not hosts:
        return
    galera = plan.cluster.members.get("galera", ())
    bootstrap = galera[0] if galera else hosts[0]
    params = {"playbook": DEPLOY_SECRETS, "bootstrap": bootstrap}
    deps = plan.base(hosts, openstack=False)
    duration = plan.duration("deploy_secrets")
    plan.secrets = plan.add(SECRETS_ID, act.PLAYBOOK, "infra", params, deps, hosts, duration)


def present(plan: _Deploy, tiers: Sequence[Tier], ceph: bool) -> list[ServiceSpec]:
    """Services of the cluster in those tiers, in the catalog's dependency order."""
    members = plan.cluster.members
    specs = (plan.catalog.services[n] for n in plan.catalog.dependency_order())
    return [s for s in specs if s.name in members and s.tier in tiers and s.ceph == ceph]


def _openstack(plan: _Deploy) -> None:
    infra = present(plan, [Tier.INFRA], ceph=False)
    control = present(plan, [Tier.CONTROL], ceph=False)
    data = present(plan, [Tier.DATA, Tier.STORAGE], ceph=False)
    for spec in sorted(infra, key=lambda s: s.name != LOAD_BALANCER):
        first = [plan.final[LOAD_BALANCER]] if LOAD_BALANCER in plan.final else []
        _service(plan, spec, first)
    infra_done = [plan.final[s.name] for s in infra]
    _databases(plan, control, infra_done)
    for spec in control:
        _service(plan, spec, infra_done)
    control_done = infra_done + [plan.final[s.name] for s in control]
    for spec in data:
        _service(plan, spec, control_done)


def _ceph(plan: _Deploy) -> None:
    for spec in present(plan, list(Tier), ceph=True):
        _service(plan, spec, [])


def _service(plan: _Deploy, spec: ServiceSpec, entry: list[str]) -> None:
    """Start one service on its members after what it depends on; records its final gate."""
    members = list(plan.cluster.members[spec.name])
    deps = plan.base(members, openstack=not spec.ceph) + entry
    deps += [plan.final[d] for d in spec.depends_on if d in plan.final]
    project = spec.project
    if project in plan.synced:
        deps.append(plan.synced[project])
    if spec.name == "keystone":
        deps.append(_keystone_keys(plan, members))
    if is_store(spec):
        plan.final[spec.name] = _store(plan, spec, members, deps)
        return
    start = plan.deploy_service(f"start/{spec.name}", spec, "start", members, deps)
    if spec.name == "keystone":
        params = {"playbook": KEYSTONE_BOOTSTRAP, "release": plan.releases.openstack}
        start = plan.add(
            "keystone-bootstrap",
            act.PLAYBOOK,
            "control-plane",
            params,
            [start],
            members[:1],
            plan.duration("keystone_bootstrap"),
        )
    plan.final[spec.name] = plan.health(f"health/{spec.name}", spec, members, [start], ())


def _store(plan: _Deploy, spec: ServiceSpec, members: list[str], deps: list[str]) -> str:
    """Bootstrap on the first member, then join the others one at a time, each after the
    previous member's health gate (a Galera joiner takes its state from a donor by SST/IST;
    two at once could leave no synced donor, and MariaDB's docs start nodes one by one)."""
    previous = deps
    for index, node in enumerate(members):
        phase = "bootstrap" if index == 0 else "join"
        step = plan.deploy_service(f"{phase}/{spec.name}/{node}", spec, phase, [node], previous)
        gate_id = f"health/{spec.name}/{node}"
        previous = [plan.health(gate_id, spec, [node], [step], members[index + 1 :])]
    return previous[0]


def _keystone_keys(plan: _Deploy, members: list[str]) -> str:
    params = {"playbook": KEYSTONE_KEYS, "bootstrap": members[0]}
    deps = plan.base(members)
    duration = plan.duration("keystone_keys")
    return plan.add(KEYSTONE_KEYS, act.PLAYBOOK, "control-plane", params, deps, members, duration)


def _databases(plan: _Deploy, control: Sequence[ServiceSpec], infra_done: list[str]) -> None:
    """db-create then db-migrate phase sync for each project of `deploy_databases` with a
    control service here: once, on the first Galera member and on the project's first node."""
    galera = plan.cluster.members.get("galera", ())
    seen: dict[str, str] = {}
    for spec in control:
        if spec.project in plan.catalog.deploy_databases and spec.project not in seen:
            seen[spec.project] = plan.cluster.members[spec.name][0]
    for project, host in seen.items():
        db_host = galera[0] if galera else host
        created = plan.add(
            f"db-create/{project}",
            act.PLAYBOOK,
            "control-plane",
            {"playbook": DB_CREATE, "project": project},
            plan.base([db_host]) + ([plan.final["galera"]] if "galera" in plan.final else []),
            [db_host],
            plan.duration("db_create"),
        )
        # the schema tools reach the database through this host's HAProxy: infra first
        params = {
            "playbook": act.DB_MIGRATE,
            "project": project,
            "phase": "sync",
            "release": plan.releases.openstack,
        }
        plan.synced[project] = plan.add(
            f"db-sync/{project}",
            act.PLAYBOOK,
            "control-plane",
            params,
            [created, *plan.base([host]), *infra_done],
            [host],
            plan.duration("db_sync"),
        )
