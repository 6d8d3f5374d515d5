"""The backup plan (pure): what to copy, from which member, into which backup directory.

Steps (all but the last `ansible.playbook`, params `dest` (the backup's directory) and
`backup_id`):

- `backup/galera/<member>` (`backup-galera`): on ONE Galera member, `wsrep_desync=ON` for the
  duration, a full `mariabackup --backup --galera-info`, then `wsrep_desync=OFF`. Desync takes
  the member out of flow control so the cluster is not slowed while it copies (Galera
  documentation, "wsrep_desync"; the donor of an SST does the same);
- `backup/rabbitmq/<member>` (`backup-rabbitmq`): `rabbitmqctl export_definitions` on one running
  member (definitions are cluster-wide);
- `backup/keys/<member>` (`backup-keys`): Keystone's fernet and credential key repositories
  from one Keystone member (they are the same on every member: `keystone-keys.yml` copies them);
- `backup/config` (`backup-config`): every node's services' configuration (`etc/`);
- `backup/manifest` (`backup.manifest`, local): the inventory, the recorded state and the
  journal's run history copied in, then the manifest written (checksums, modes 0600/0700).

The Galera member: a `Synced` one from the observed state when given, never one observed down,
preferring the LAST member in inventory order (HAProxy's writer is the first: the backup then
desyncs a `backup` server, not the one taking writes). Steps disrupt nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from lifecycle.errors import PlanningError
from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import NOT_RUNNING, UNREACHABLE, ObservedState
from lifecycle.planning import actions as act
from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.scheduler import build_plan

MANIFEST = "backup.manifest"
PHASE = "backup"
DURATIONS = {"galera": 300.0, "rabbitmq": 20.0, "keys": 10.0, "config": 30.0, "manifest": 30.0}


@dataclass(frozen=True)
class BackupIntent:
    """`backup_id`: the backup's name (the CLI makes it from the cluster and the time);
    `dest`: the directory the backup directory goes in (absolute path); `inventory`: the
    inventory file copied into the backup."""

    backup_id: str
    dest: str
    inventory: str = ""


def _down(observed: ObservedState | None, service: str, node: str) -> bool:
    if observed is None:
        return False
    return (
        observed.node_state(node) == UNREACHABLE
        or observed.release_of(f"{service}@{node}") == NOT_RUNNING
    )


def galera_donor(cluster: Cluster, observed: ObservedState | None) -> str:
    """The Galera member to back up: the last in inventory order among those observed `Synced`
    (per member `wsrep_local_state_comment`), else among those not observed down. PlanningError
    (exit 2) when the cluster has no Galera member, or none is up."""
    members = cluster.members.get("galera", ())
    if not members:
        raise PlanningError(f"cluster {cluster.name} has no galera member to back up")
    up = [m for m in members if not _down(observed, "galera", m)]
    if observed is not None:
        synced = [m for m in up if (g := observed.galera_member(m)) and g.state == "Synced"]
        up = synced or up
    if not up:
        raise PlanningError("no galera member is up: a backup needs a running, Synced member")
    return up[-1]


def _one_up(cluster: Cluster, observed: ObservedState | None, service: str) -> str | None:
    up = [m for m in cluster.members.get(service, ()) if not _down(observed, service, m)]
    return up[0] if up else None


def plan_backup(
    cluster: Cluster, intent: BackupIntent, observed: ObservedState | None = None
) -> Plan:
    """The backup plan of `cluster` into `<intent.dest>/<intent.backup_id>`. RabbitMQ and
    Keystone steps are left out when the cluster has no running member of them."""
    dest = f"{intent.dest.rstrip('/')}/{intent.backup_id}"
    common = {"dest": dest, "backup_id": intent.backup_id}
    steps: list[Step] = []
    donor = galera_donor(cluster, observed)
    steps.append(_playbook("galera", donor, common, (donor,)))
    for kind, service in (("rabbitmq", "rabbitmq"), ("keys", "keystone")):
        member = _one_up(cluster, observed, service)
        if member:
            steps.append(_playbook(kind, member, common, (member,)))
    nodes = tuple(
        n.name
        for n in cluster.nodes
        if observed is None or observed.node_state(n.name) != UNREACHABLE
    )
    steps.append(_playbook("config", None, common, nodes))
    steps.append(
        act.make_step(
            "backup/manifest",
            MANIFEST,
            PHASE,
            {**common, "cluster": cluster.name, "inventory": intent.inventory},
            depends_on=tuple(s.id for s in steps),
            duration=DURATIONS["manifest"],
        )
    )
    return build_plan(
        "backup",
        cluster.name,
        steps,
        source=cluster.release,
        target=cluster.release,
        inventory_digest=cluster.digest,
        extra=(("backup_id", intent.backup_id), ("dest", dest), ("galera_member", donor)),
    )


def _playbook(
    kind: str, member: str | None, common: dict[str, str], nodes: tuple[str, ...]
) -> Step:
    step_id = f"backup/{kind}" + (f"/{member}" if member else "")
    return act.make_step(
        step_id,
        act.PLAYBOOK,
        PHASE,
        {"playbook": f"backup-{kind}", **common},
        nodes=nodes,
        duration=DURATIONS[kind],
    )
