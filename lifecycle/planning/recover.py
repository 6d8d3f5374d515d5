"""Assessment and the recover plan (pure): from what survived, rebuild the stores in a safe order.

Inputs: the inventory (the desired state), the observed state (what survived: nodes, each Galera
member's `grastate.dat` and `--wsrep-recover` position, RabbitMQ's membership), the releases the
recorded state says each instance runs, and the chosen backup's manifest when one is needed.

The plan, in order (every store it touches is already broken: it never takes a working store down,
so its steps disrupt nothing the verifier counts):

1. `recover/fence` (`haproxy-fence` state=maint): every Galera server in every controller's HAProxy
   to MAINT, so no client writes while the database is rebuilt;
2. Galera (when it has no Primary component; else only the missing members are joined):
   `recover/galera/positions` (`galera-recover`) re-reads every member's position and fails unless
   the member chosen still holds the highest (the plan was made from an observation: this guard
   makes a stale one harmless), and marks it `safe_to_bootstrap: 1`; or, when no member holds
   data, `recover/galera/restore/<node>` (`galera-restore`: mariabackup --prepare, --copy-back,
   grastate.dat from the backup's galera-info); then `deploy-service` phase=bootstrap on that
   member and phase=join on each other member one at a time, each followed by a health gate (the
   members not yet joined `planned_around`), so each is `Synced` before the next starts;
3. RabbitMQ (when not healthy): `rabbitmq-reset` phase=reset on every member (stop, wipe the node's
   database), `deploy-service` bootstrap on the first, join on the others one at a time with health
   gates, then `rabbitmq-reset` phase=definitions (the backup's definitions imported);
4. Keystone (when a backup is used): `restore-keys` puts the backup's fernet and credential keys on
   every Keystone member whose repositories are missing, so tokens issued before the disaster still
   validate and stored credentials still decrypt;
5. `recover/unfence` (`haproxy-fence` state=ready), health gates of the API services, and
   `recover/data-check` (`recover-datacheck`): the bootstrapped cluster's `wsrep_last_committed`
   is not behind the position recovered from;
6. every node observed unreachable that has a BMC is rebuilt (`rebuild_lost`): the lost server
   unprovisioned through Ironic (`recover/unprovision/<node>`, `baremetal.undeploy`: active ->
   available, through `deleting` and `cleaning` when Ironic cleans; a failed cleaning fails the
   step, so a server that kept its old OS never rejoins unnoticed), deployed again
   (`recover/reprovision/<node>`, `baremetal.deploy` with `image`), the deployment's secrets and
   Keystone's keys copied from live members (`deploy-secrets`, `keystone-keys`), then its services
   deployed in the catalog's dependency order, each store member joined one at a time and gated,
   then a health gate on all of them (`recover/health/<node>`), as replace does for a server
   rebuilt under its own name (planning/replace.py). The recovered stores are already running
   by then: a rebuilt member joins them (phase=join).

Nodes observed unreachable without a BMC are planned around (named in the plan's `extra`
`planned_around`); the rebuilt ones are named in `reprovisioned`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lifecycle.catalog import Catalog, load_catalog
from lifecycle.errors import PlanningError, UnsafePlan, UsageError
from lifecycle.model.backup import Manifest
from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import (
    NOT_RUNNING,
    UNKNOWN,
    UNREACHABLE,
    GaleraMember,
    ObservedState,
)
from lifecycle.planning import actions as act
from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.scheduler import build_plan

PHASE = "recover"
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
DURATIONS = {
    "fence": 5.0,
    "positions": 60.0,
    "restore": 600.0,
    "bootstrap": 120.0,
    "join": 300.0,
    "health": 30.0,
    "reset": 30.0,
    "definitions": 20.0,
    "keys": 10.0,
    "check": 20.0,
    "unprovision": 300.0,
    "reprovision": 600.0,
    "secrets": 10.0,
    "deploy": 60.0,
}
# the membership vocabulary replace uses (planning/replace.py; the verifier reads them)
DEPLOY_SERVICE = "deploy-service"
DEPLOY_SECRETS = "deploy-secrets"
KEYSTONE_KEYS = "keystone-keys"

# how the Galera member to start from was chosen
SURVIVOR = "survivor"  # a member's own data, the highest position
BACKUP = "backup"  # no member holds data: the backup restored
RUNNING = "running"  # Galera still has a Primary component: nothing to bootstrap
FORCED = "forced"  # --bootstrap NODE


@dataclass(frozen=True)
class RecoverIntent:
    """`backup`: the chosen backup's manifest (the latest or `--backup ID`), None when there is
    none; `backup_dir`: its directory; `bootstrap`: `--bootstrap NODE`, the operator's choice;
    `image`: what Ironic deploys on a lost server it rebuilds (None: the driver's own)."""

    backup: Manifest | None = None
    backup_dir: str = ""
    bootstrap: str | None = None
    image: str | None = None


@dataclass(frozen=True)
class BootstrapChoice:
    """Which Galera member the cluster restarts from, and why. `seqno` is its position (the
    backup's for BACKUP, None when forced without one); `overridden`: what --bootstrap overrode."""

    node: str | None
    source: str
    seqno: int | None = None
    reason: str = ""
    overridden: tuple[str, ...] = ()


def _holds_data(member: GaleraMember) -> bool | None:
    """True when the member has a database of its own, False when it has none (data directory
    empty or gone, or a grastate.dat with the zero UUID and no position), None when unknown."""
    if member.has_data is not None:
        return member.has_data
    if member.position is not None and member.position >= 0:
        return True
    if member.uuid == ZERO_UUID:
        return False
    return None


def _member(observed: ObservedState | None, node: str) -> GaleraMember:
    seen = observed.galera_member(node) if observed is not None else None
    return seen or GaleraMember(node)


def _running_primary(cluster: Cluster, observed: ObservedState | None) -> tuple[str, ...]:
    """The Galera members running in a Primary component, as observed (empty: none is)."""
    store = observed.store("galera") if observed is not None else None
    if store is None or not store.quorum:
        return ()
    return tuple(m for m in cluster.members.get("galera", ()) if m in store.members)


def choose_bootstrap(
    cluster: Cluster,
    observed: ObservedState | None,
    backup: Manifest | None,
    forced: str | None = None,
) -> BootstrapChoice:
    """The Galera member to bootstrap (start with `--wsrep-new-cluster`).

    Rules (Galera "Crash Recovery", https://galeracluster.com/library/documentation/crash-recovery.html;
    MariaDB "Recovering the Primary Component after a full cluster outage",
    https://mariadb.com/docs/galera-cluster/high-availability/recovering-a-primary-component):
    - a cluster with a Primary component is not bootstrapped again (RUNNING);
    - otherwise the member with the HIGHEST seqno is the one to start from: its grastate.dat seqno
      after a clean stop, else the position `mariadbd --wsrep-recover` recovered. Bootstrapping
      any other member discards the transactions only the more advanced members committed. Ties
      go to the member with `safe_to_bootstrap: 1` (the last to leave), then to inventory order;
    - seqnos compare only within one history: members whose state UUIDs differ refuse the plan;
    - a member holding data (or not known not to) whose position is unknown, or that could not
      be reached, refuses the plan (UnsafePlan, exit 3): it might be the most advanced;
    - no member holds data: the backup is restored on the first reachable member (BACKUP);
      without a backup, PlanningError (exit 2).
    `forced` (--bootstrap NODE) overrides the choice; what the rules would have said is kept in
    `overridden`, which the run records. UsageError (exit 2) when NODE is no Galera member."""
    members = cluster.members.get("galera", ())
    if not members:
        raise PlanningError(f"cluster {cluster.name} has no galera member to recover")
    if forced is not None and forced not in members:
        raise UsageError.at("--bootstrap", "", f"a galera member ({', '.join(members)})")
    running = _running_primary(cluster, observed)
    if running:
        return BootstrapChoice(None, RUNNING, reason=f"Primary component on {', '.join(running)}")
    reachable = [m for m in members if observed is None or observed.node_state(m) != UNREACHABLE]
    positions = {m: _member(observed, m) for m in members}
    holders = [m for m in members if _holds_data(positions[m]) is not False]
    problems = _unknown(members, reachable, positions)
    uuids = {positions[m].uuid for m in holders if positions[m].uuid}
    if len(uuids) > 1:
        problems.append(
            "galera: members hold different histories (state UUIDs "
            + ", ".join(f"{m}={positions[m].uuid}" for m in holders if positions[m].uuid)
            + "): their seqnos do not compare"
        )
    if forced is not None:
        seqno = positions[forced].position
        why = f"--bootstrap {forced} (the operator's choice)"
        source = FORCED if _holds_data(positions[forced]) is not False else BACKUP
        if source == BACKUP and backup is None:
            raise PlanningError(f"--bootstrap {forced}: it holds no data and there is no backup")
        return BootstrapChoice(forced, source, seqno, why, tuple(problems))
    if problems:
        raise UnsafePlan(
            [*problems, "pass --bootstrap NODE to choose the member yourself (recorded)"]
        )
    known = [m for m in holders if positions[m].position is not None]
    if known:
        node = max(known, key=lambda m: _rank(positions[m], members.index(m)))
        seqno = positions[node].position
        return BootstrapChoice(node, SURVIVOR, seqno, f"highest seqno {seqno} of {len(known)}")
    if backup is None:
        raise PlanningError(
            "no galera member holds data and there is no backup to restore"
            " (`lifecycle backups list`)"
        )
    if not reachable:
        raise PlanningError("no galera member is reachable to restore the backup on")
    seqno = backup.galera.seqno if backup.galera else None
    return BootstrapChoice(reachable[0], BACKUP, seqno, f"no member holds data: backup {backup.id}")


def _rank(member: GaleraMember, index: int) -> tuple[int, int, int]:
    """Highest position first, then safe_to_bootstrap, then the earlier in inventory order."""
    return (
        member.position if member.position is not None else -1,
        int(bool(member.safe_to_bootstrap)),
        -index,
    )


def _unknown(
    members: Sequence[str], reachable: Sequence[str], positions: Mapping[str, GaleraMember]
) -> list[str]:
    out = []
    for m in members:
        if m not in reachable:
            out.append(f"galera@{m}: unreachable, its position cannot be read (it may be ahead)")
        elif _holds_data(positions[m]) is not False and positions[m].position is None:
            out.append(
                f"galera@{m}: position unknown (grastate.dat seqno -1 and no --wsrep-recover"
                " position): it may be the most advanced member"
            )
    return out


def data_loss(choice: BootstrapChoice, backup: Manifest | None) -> str:
    """What the recovery loses, said before it runs (the CLI adds the backup's age)."""
    if choice.source == RUNNING:
        return "none: Galera still has a Primary component; its missing members rejoin it"
    if choice.source == SURVIVOR:
        return (
            f"none: {choice.node} holds the highest position (seqno {choice.seqno});"
            " every transaction any member committed is kept"
        )
    if choice.source == BACKUP and backup is not None:
        return (
            f"everything written after backup {backup.id} (taken {backup.created},"
            f" Galera position {backup.galera or 'unknown'})"
        )
    return (
        f"unknown: {choice.node} was chosen by --bootstrap; transactions only other members"
        " committed are lost"
    )


# --- the plan ----------------------------------------------------------------------------------


class _Builder:
    def __init__(
        self, cluster: Cluster, observed: ObservedState | None, releases: Mapping[str, str]
    ):
        self.cluster = cluster
        self.observed = observed
        self.releases = releases
        self.steps: list[Step] = []
        self.last: tuple[str, ...] = ()

    def release(self, service: str, node: str) -> str:
        return self.releases.get(f"{service}@{node}", self.cluster.release)

    def up(self, service: str) -> list[str]:
        members = self.cluster.members.get(service, ())
        if self.observed is None:
            return list(members)
        return [m for m in members if self.observed.node_state(m) != UNREACHABLE]

    def add(
        self, step_id: str, action: str, params: dict[str, object], nodes: Sequence[str], kind: str
    ) -> str:
        self.steps.append(
            act.make_step(
                step_id,
                action,
                PHASE,
                params,
                nodes=tuple(nodes),
                depends_on=self.last,
                duration=DURATIONS[kind],
            )
        )
        self.last = (step_id,)
        return step_id

    def playbook(
        self, step_id: str, name: str, params: dict[str, object], nodes: Sequence[str], kind: str
    ) -> str:
        return self.add(step_id, act.PLAYBOOK, {"playbook": name, **params}, nodes, kind)

    def health(self, step_id: str, service: str, node: str, waiting: Sequence[str]) -> None:
        params: dict[str, object] = {"services": [service], "release": self.release(service, node)}
        if waiting:
            params[act.PLANNED_AROUND] = sorted(waiting)
        self.add(step_id, act.HEALTH, params, (node,), "health")

    def rolling(self, service: str, first: str | None, members: Sequence[str]) -> None:
        """bootstrap `first` (unless None: a running cluster), then join the others one at a
        time, each followed by a health gate counting only the members joined so far."""
        down = [m for m in self.cluster.members.get(service, ()) if m not in members]
        order = ([first] if first else []) + [m for m in members if m != first]
        for i, node in enumerate(order):
            phase = "bootstrap" if node == first else "join"
            self.playbook(
                f"recover/{service}/{phase}/{node}",
                "deploy-service",
                {"service": service, "phase": phase, "release": self.release(service, node)},
                (node,),
                phase,
            )
            self.health(f"recover/{service}/health/{node}", service, node, [*order[i + 1 :], *down])


def plan_recover(
    cluster: Cluster,
    observed: ObservedState | None,
    intent: RecoverIntent,
    releases: Mapping[str, str] | None = None,
) -> tuple[Plan, BootstrapChoice]:
    """The recover plan and the Galera choice it was made from (see the module docstring).
    Raises UnsafePlan (exit 3) or PlanningError (exit 2) as `choose_bootstrap` says."""
    choice = choose_bootstrap(cluster, observed, intent.backup, intent.bootstrap)
    b = _Builder(cluster, observed, releases or {})
    galera = b.up("galera")
    proxies = b.up("haproxy")
    members = list(cluster.members.get("galera", ()))
    fence = bool(proxies) and choice.source != RUNNING  # a Primary component keeps serving
    if fence:
        b.playbook(
            "recover/fence",
            "haproxy-fence",
            {"backend": "galera", "servers": members, "state": "maint"},
            proxies,
            "fence",
        )
    _galera(b, choice, intent, galera)
    if _rabbitmq_broken(cluster, observed) and b.up("rabbitmq"):
        _rabbitmq(b, intent)
    keystone = b.up("keystone")
    if (
        intent.backup is not None
        and keystone
        and any(f.kind == "keys" for f in intent.backup.files)
    ):
        b.playbook(
            "recover/keystone/keys",
            "restore-keys",
            {"backup_dir": intent.backup_dir, "backup_id": intent.backup.id},
            keystone,
            "keys",
        )
    if fence:
        b.playbook(
            "recover/unfence",
            "haproxy-fence",
            {"backend": "galera", "servers": members, "state": "ready"},
            proxies,
            "fence",
        )
    for service in ("keystone", "placement-api"):
        for node in b.up(service):
            b.health(f"recover/{service}/health/{node}", service, node, ())
    if galera:
        target = choice.node or galera[0]
        b.playbook(
            "recover/data-check",
            "recover-datacheck",
            {"seqno": choice.seqno if choice.seqno is not None else -1},
            (target,),
            "check",
        )
    extra: list[tuple[str, object]] = [("galera_source", choice.source)]
    if choice.node:
        extra.append(("bootstrap", choice.node))
    if choice.seqno is not None:
        extra.append(("seqno", choice.seqno))
    if intent.backup is not None:
        extra += [("backup_id", intent.backup.id), ("backup_created", intent.backup.created)]
    lost = sorted(set(n.name for n in cluster.nodes) - set(_reachable(cluster, observed)))
    rebuilt = rebuild_lost(b, lost, intent.image)
    if rebuilt:
        extra.append(("reprovisioned", tuple(rebuilt)))
    around = [n for n in lost if n not in rebuilt]
    if around:
        extra.append(("planned_around", tuple(around)))
    plan = build_plan(
        "recover",
        cluster.name,
        b.steps,
        source=cluster.release,
        target=cluster.release,
        inventory_digest=cluster.digest,
        extra=tuple(extra),  # type: ignore[arg-type]
    )
    return plan, choice


def _reachable(cluster: Cluster, observed: ObservedState | None) -> list[str]:
    if observed is None:
        return [n.name for n in cluster.nodes]
    return [n.name for n in cluster.nodes if observed.node_state(n.name) != UNREACHABLE]


def _galera(b: _Builder, choice: BootstrapChoice, intent: RecoverIntent, up: list[str]) -> None:
    if choice.source == RUNNING:
        missing = [
            m
            for m in up
            if b.observed is not None
            and b.observed.release_of(f"galera@{m}") in (NOT_RUNNING, UNKNOWN)
            and m not in (b.observed.store("galera") or _NO_STORE).members
        ]
        b.rolling("galera", None, missing)
        return
    assert choice.node is not None
    if choice.source == BACKUP:
        assert intent.backup is not None
        b.playbook(
            "recover/galera/positions",
            "galera-recover",
            {"bootstrap": choice.node, "seqno": -1},
            up,
            "positions",
        )
        b.playbook(
            f"recover/galera/restore/{choice.node}",
            "galera-restore",
            {
                "backup_dir": intent.backup_dir,
                "backup_id": intent.backup.id,
                "member": intent.backup.galera.member if intent.backup.galera else "",
            },
            (choice.node,),
            "restore",
        )
    else:
        seqno = choice.seqno if choice.seqno is not None else -1
        params: dict[str, object] = {"bootstrap": choice.node, "seqno": seqno}
        if choice.source == FORCED:
            params["forced"] = True  # the guard then only marks the chosen member
        b.playbook("recover/galera/positions", "galera-recover", params, up, "positions")
    b.rolling("galera", choice.node, up)


class _NoStore:
    members: tuple[str, ...] = ()


_NO_STORE = _NoStore()


def _rabbitmq_broken(cluster: Cluster, observed: ObservedState | None) -> bool:
    """RabbitMQ is re-formed unless it is observed healthy with every member running."""
    if observed is None:
        return True
    store = observed.store("rabbitmq")
    members = cluster.members.get("rabbitmq", ())
    return store is None or store.health != "healthy" or set(store.members) != set(members)


def _rabbitmq(b: _Builder, intent: RecoverIntent) -> None:
    members = b.up("rabbitmq")
    b.playbook("recover/rabbitmq/reset", "rabbitmq-reset", {"phase": "reset"}, members, "reset")
    b.rolling("rabbitmq", members[0], members)
    if intent.backup is not None and any(f.kind == "rabbitmq" for f in intent.backup.files):
        b.playbook(
            "recover/rabbitmq/definitions",
            "rabbitmq-reset",
            {"phase": "definitions", "backup_dir": intent.backup_dir},
            (members[0],),
            "definitions",
        )


# --- lost servers rebuilt through Ironic -------------------------------------------------------


def rebuild_lost(
    b: _Builder, lost: Sequence[str], image: str | None, catalog: Catalog | None = None
) -> list[str]:
    """Append, for each of `lost` (inventory order) that has a BMC, its rebuild (module
    docstring, step 6); the names rebuilt. One node after the other, after the stores are back:
    each rebuilt member joins running stores, the nodes still lost planned around its gates."""
    catalog = catalog or load_catalog()
    rebuilt = [n.name for n in b.cluster.nodes if n.name in lost and n.bmc is not None]
    for i, name in enumerate(rebuilt):
        waiting = [n for n in lost if n not in rebuilt[: i + 1]]
        b.add(f"recover/unprovision/{name}", "baremetal.undeploy", {"node_down": True},
              (name,), "unprovision")  # fmt: skip
        deploy: dict[str, object] = {"node_down": True, **({"image": image} if image else {})}
        b.add(f"recover/reprovision/{name}", "baremetal.deploy", deploy, (name,), "reprovision")
        services = [s for s in catalog.dependency_order() if s in b.cluster.services_of(
            b.cluster.node(name))]  # fmt: skip
        joining = [s for s in services if _joins(b, catalog, s)]
        _rebuilt_secrets(b, name, services, joining, waiting)
        for service in services:
            _rebuilt_service(b, name, service, service in joining, waiting)
        _rebuilt_health(b, name, services, waiting)
    return rebuilt


def _rebuilt_health(
    b: _Builder, name: str, services: Sequence[str], waiting: Sequence[str]
) -> None:
    """The rebuilt node's gate over all its services (at their release when they share one)."""
    params: dict[str, object] = {"services": list(services)}
    releases = {b.release(s, name) for s in services}
    if len(releases) == 1:
        params["release"] = releases.pop()
    if waiting:
        params[act.PLANNED_AROUND] = sorted(waiting)
    b.add(f"recover/health/{name}", act.HEALTH, params, (name,), "health")


def _joins(b: _Builder, catalog: Catalog, service: str) -> bool:
    """A member of a clustered store (quorum: majority, more than one member) joins it."""
    spec = catalog.services.get(service)
    members = b.cluster.members.get(service, ())
    return spec is not None and spec.quorum.value == "majority" and len(members) > 1


def _live_member(b: _Builder, service: str, name: str, waiting: Sequence[str]) -> str | None:
    return next((m for m in b.up(service) if m != name and m not in waiting), None)


def _rebuilt_secrets(
    b: _Builder, name: str, services: Sequence[str], joining: Sequence[str], waiting: Sequence[str]
) -> None:
    """The deployment's secrets (CONTRACT: `deploy-secrets`) and Keystone's fernet and
    credential keys from a live member: a rebuilt member with keys of its own would reject
    every token the others issued."""
    source = _live_member(b, "galera", name, waiting) or _live_member(b, "rabbitmq", name, waiting)
    if set(joining) - {"ceph-mon"} and source:
        b.playbook(f"recover/deploy-secrets/{name}", DEPLOY_SECRETS, {"bootstrap": source},
                   (source, name), "secrets")  # fmt: skip
    keys = _live_member(b, "keystone", name, waiting)
    if "keystone" in services and keys:
        b.playbook(f"recover/keystone-keys/{name}", KEYSTONE_KEYS,
                   {"source": keys, "bootstrap": keys}, (keys, name), "keys")  # fmt: skip


def _rebuilt_service(
    b: _Builder, name: str, service: str, joins: bool, waiting: Sequence[str]
) -> None:
    """One service deployed on a rebuilt node: a store member joins (its gate leaves out the
    members not rebuilt yet), any other service starts."""
    phase = "join" if joins else "start"
    params: dict[str, object] = {
        "service": service,
        "phase": phase,
        "release": b.release(service, name),
    }
    b.playbook(f"recover/deploy/{service}/{name}", DEPLOY_SERVICE, params, (name,), "deploy")
    if joins:
        others = [m for m in b.cluster.members.get(service, ()) if m in waiting]
        b.health(f"recover/{service}/health/{name}", service, name, others)
