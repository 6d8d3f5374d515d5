"""What can be known before a run, said before it: findings about the cluster and its policies.

Pure: `preflight(cluster, catalog) -> list[Finding]` reads the inventory and the catalog only.
`validate` prints the findings; `plan` prints them before the plan and refuses (exit 3, like an
unsafe plan) where one is a refusal, unless `--force`, which is then reported as an override.

Findings (each with what to do):
- a quorum store (a `majority` service: Galera, RabbitMQ, ceph-mon ...) of 1 member: an upgrade
  takes it, and the control plane with it, down (refusal); of 2 members: a majority of 2 is 2, so
  restarting either member loses quorum (refusal for an upgrade that restarts it, else warning);
  of an even size >= 4: no more fault tolerance than one member fewer, and a split in halves stops
  it (warning). Galera docs, "Quorum Components"; RabbitMQ docs, "Clustering: Node Counts".
- a data-plane group whose hosts hold instances (nova-compute) and are evacuated: a batch that
  takes every host of the group leaves no migration target (refusal: `evacuate/<group>/batch-N`
  would fail after the control plane was upgraded); a batch larger than the hosts left must fit
  its instances on fewer hosts than it empties (warning). Batches are the planner's own.
- a network node (a node with an agent that `carries` routers or DHCP networks) whose agent has
  no peer on another node outside its batch: its routers or networks cannot move away and go down
  with it (warning).
- an ML2/OVN cloud (the OVN databases are in it) whose chassis list ML2/OVS's `neutron-ovs-agent`
  and no `ovn-controller`: the OVN order ("upgrade ovn-controller first, then the central
  components", OVN's upgrade guide) can only be planned for `ovn-controller` (warning).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from lifecycle.catalog import Catalog, load_catalog
from lifecycle.model.cluster import Cluster, Evacuate
from lifecycle.model.service import Quorum
from lifecycle.planning.data_plane import batches, data_groups, data_services
from lifecycle.planning.network import stranded
from lifecycle.planning.rollout import Rollout


class Severity(enum.Enum):
    WARNING = "warning"
    REFUSAL = "refusal"  # `plan` and `run` refuse unless --force


@dataclass(frozen=True)
class Finding:
    """One thing the operator should know before the run: `subject` names what it is about
    (a service, an aggregate, a node), `message` what will happen, `remedy` what to do."""

    severity: Severity
    subject: str
    message: str
    remedy: str

    @property
    def refused(self) -> bool:
        return self.severity is Severity.REFUSAL

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}; {self.remedy}"


def preflight(
    cluster: Cluster,
    catalog: Catalog | None = None,
    operation: str = "upgrade",
    ceph: bool | None = None,
) -> list[Finding]:
    """Findings for `operation` ("upgrade" restarts every member of every service; "scale-out"
    restarts none) on `cluster` (for a scale-out: the cluster with its new servers). `ceph`: the
    upgrade takes the Ceph daemons too (default: when the cluster names a ceph_release)."""
    catalog = catalog or load_catalog()
    upgrade = operation == "upgrade"
    ceph = bool(cluster.ceph_release) if ceph is None else ceph
    findings = quorum_findings(cluster, catalog, upgrade, ceph) + ovn_findings(cluster)
    if upgrade:
        rollout = Rollout(cluster, catalog)
        findings += evacuation_findings(rollout) + network_findings(rollout)
    return findings


def refusals(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.refused]


def quorum_findings(cluster: Cluster, catalog: Catalog, upgrade: bool, ceph: bool) -> list[Finding]:
    out: list[Finding] = []
    for name, nodes in sorted(cluster.members.items()):
        spec = catalog.services.get(name)
        if spec is None or spec.quorum is not Quorum.MAJORITY:
            continue
        restarted = upgrade and (ceph or not spec.ceph)
        severity = Severity.REFUSAL if restarted else Severity.WARNING
        hosts = ", ".join(nodes)
        minutes = f"about {spec.duration / 60:.0f} min"
        if len(nodes) == 1:
            out.append(
                Finding(
                    severity,
                    name,
                    f"one member ({hosts}): no fault tolerance"
                    + (
                        f"; the upgrade takes it down, and the control plane with it ({minutes})"
                        if restarted
                        else ""
                    ),
                    "add members to reach 3 (an odd number), or pass --force to accept the outage",
                )
            )
        elif len(nodes) == 2:
            out.append(
                Finding(
                    severity,
                    name,
                    f"2 members ({hosts}): a majority of 2 is 2, so it tolerates no member down"
                    + ("; the upgrade restarts each one and loses quorum" if restarted else ""),
                    "add a third member"
                    + (" (or a garbd arbitrator: a third vote)" if name == "galera" else "")
                    + ", or pass --force to accept the outage",
                )
            )
        elif len(nodes) % 2 == 0:
            out.append(
                Finding(
                    Severity.WARNING,
                    name,
                    f"{len(nodes)} members ({hosts}): a majority of {len(nodes)} is"
                    f" {len(nodes) // 2 + 1}, so it tolerates {(len(nodes) - 1) // 2} down, no"
                    f" more than {len(nodes) - 1} members do, and a split into halves stops it",
                    f"keep an odd number of {name} members ({len(nodes) - 1} or {len(nodes) + 1})",
                )
            )
    return out


def evacuation_findings(rollout: Rollout) -> list[Finding]:
    """Groups whose batches leave their instances nowhere to go (see the module docstring)."""
    policies = rollout.cluster.policies
    if policies.evacuate is Evacuate.NONE:
        return []
    out: list[Finding] = []
    mode = policies.evacuate.value
    for key, nodes in data_groups(rollout):
        if not any(s.workloads for n in nodes for s in data_services(rollout, n)):
            continue
        kind, name = key.split(":", 1)
        group = f"aggregate {name}" if kind == "aggregate" else f"role {name}"
        sizes = batches(rollout, key, len(nodes))
        largest = max(sizes)
        left = len(nodes) - largest
        limit = policies.max_unavailable_for(name if kind == "aggregate" else None)
        if left == 0:
            number = sizes.index(largest) + 1
            out.append(
                Finding(
                    Severity.REFUSAL,
                    group,
                    f"{mode} has no target: batch {number} takes all {len(nodes)} host(s)"
                    f" ({', '.join(n.name for n in nodes)}), so evacuate/{name}/batch-{number}"
                    " fails, after the control plane was upgraded",
                    f"add a host to {group}, or set evacuate: none (instances stop with their"
                    " host), or pass --force if these hosts hold no instances",
                )
            )
        elif largest > left:
            out.append(
                Finding(
                    Severity.WARNING,
                    group,
                    f"max_unavailable {limit} lets {largest} of its {len(nodes)} hosts go at"
                    f" once: their instances must fit on the {left} host(s) left",
                    f"lower max_unavailable for {name} to {len(nodes) // 2} host(s) or less,"
                    " so that as many hosts stay as are emptied",
                )
            )
    return out


def lone_carriers(rollout: Rollout) -> list[tuple[str, list[str]]]:
    """(network node, its agents without a peer outside its batch), batch by batch as planned."""
    out = []
    for key, nodes in data_groups(rollout):
        start = 0
        for size in batches(rollout, key, len(nodes)):
            out += stranded(rollout, nodes[start : start + size])
            start += size
    return out


def network_findings(rollout: Rollout) -> list[Finding]:
    """Network nodes whose routers or DHCP networks have nowhere to move."""
    out: list[Finding] = []
    for node, services in lone_carriers(rollout):
        spec = [rollout.catalog.services[s] for s in services]
        what = " and ".join(f"{s.carries} ({s.name})" for s in spec)
        out.append(
            Finding(
                Severity.WARNING,
                node,
                f"network node without a peer: its {what} cannot move to another node and"
                " stop while it is upgraded (north-south traffic, floating IPs, DHCP leases)",
                "add a second network node with the same agents (routers and networks then"
                " move there first), or schedule the outage",
            )
        )
    return out


OVN_CENTRAL = ("ovn-dbs", "ovn-northd")


def ovn_findings(cluster: Cluster) -> list[Finding]:
    """An OVN cloud whose chassis name ML2/OVS's agent instead of ovn-controller."""
    members = cluster.members
    if not any(s in members for s in OVN_CENTRAL) or "ovn-controller" in members:
        return []
    chassis = members.get("neutron-ovs-agent", ())
    if not chassis:
        return []
    return [
        Finding(
            Severity.WARNING,
            "neutron-ovs-agent",
            f"the cloud runs the OVN databases, but its chassis ({_few(chassis)}) list ML2/OVS's"
            " agent and no ovn-controller, so the OVN order (ovn-controller on every chassis"
            " before ovn-northd and the OVN databases) cannot be planned",
            "list ovn-controller (TripleO's OVNController) on the chassis instead of"
            " neutron-ovs-agent",
        )
    ]


def _few(names: Sequence[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
