"""Desired against observed: every way the cloud differs from its inventory, each named.

Pure: reads a Cluster, an ObservedState and the catalog. `lifecycle status`, `plan` and `run`
print these before anything else, so the operator sees what the plan starts from.
"""

from __future__ import annotations

from dataclasses import dataclass

from lifecycle.catalog import Catalog, load_catalog
from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import NOT_RUNNING, UNKNOWN, UNREACHABLE, ObservedState

# kinds, in the order they are reported
NODE_UNREACHABLE = "node-unreachable"
NODE_UNKNOWN = "node-unknown"
NODE_EXTRA = "node-not-in-inventory"
RELEASE = "release"
NOT_RUNNING_KIND = "not-running"
STORE_MEMBERS = "store-members"
STORE_QUORUM = "store-quorum"
STORE_PARTITIONS = "store-partitions"
FLAG = "flag"
COMPUTE_DISABLED = "compute-disabled"
COMPUTE_DOWN = "compute-down"


@dataclass(frozen=True)
class Difference:
    """One difference: `kind` (above), `subject` (a node, `service@node` or a store) and what an
    operator reads."""

    kind: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def expected_release(cluster: Cluster, service: str, catalog: Catalog) -> str | None:
    """The release the inventory says `service` runs (Ceph daemons: the Ceph release)."""
    spec = catalog.services.get(service)
    if spec is not None and spec.ceph:
        return cluster.ceph_release
    return cluster.release


def differences(
    cluster: Cluster, observed: ObservedState, catalog: Catalog | None = None
) -> tuple[Difference, ...]:
    """Every difference between the inventory and the observed state (empty: none seen)."""
    catalog = catalog or load_catalog()
    return (
        *_nodes(cluster, observed),
        *_instances(cluster, observed, catalog),
        *_stores(cluster, observed),
        *_computes(observed),
    )


def _nodes(cluster: Cluster, observed: ObservedState) -> list[Difference]:
    out = []
    for node in cluster.nodes:
        state = observed.node_state(node.name)
        if state == UNREACHABLE:
            seen = observed.node(node.name)
            why = f" ({seen.detail})" if seen and seen.detail else ""
            out.append(
                Difference(
                    NODE_UNREACHABLE,
                    node.name,
                    f"{node.name} is in the inventory but unreachable{why}",
                )
            )
        elif state == UNKNOWN:
            out.append(
                Difference(NODE_UNKNOWN, node.name, f"{node.name}: the driver could not tell")
            )
    known = {n.name for n in cluster.nodes}
    for seen in observed.nodes:
        if seen.name not in known:
            out.append(
                Difference(NODE_EXTRA, seen.name, f"{seen.name} is observed but not in inventory")
            )
    return out


def _instances(cluster: Cluster, observed: ObservedState, catalog: Catalog) -> list[Difference]:
    out = []
    for service, nodes in cluster.members.items():
        wanted = expected_release(cluster, service, catalog)
        for node in nodes:
            if observed.node_state(node) == UNREACHABLE:
                continue  # said once, for the node
            text = f"{service}@{node}"
            have = observed.release_of(text)
            if have == NOT_RUNNING:
                out.append(Difference(NOT_RUNNING_KIND, text, f"{text} is not running"))
            elif have != UNKNOWN and wanted is not None and have != wanted:
                out.append(
                    Difference(RELEASE, text, f"{text} runs {have}; the inventory says {wanted}")
                )
    return out


def _stores(cluster: Cluster, observed: ObservedState) -> list[Difference]:
    out = []
    for store in observed.stores:
        wanted = cluster.members.get(store.service, ())
        if store.members or store.size is not None:
            missing = [n for n in wanted if n not in store.members]
            if missing:
                out.append(
                    Difference(
                        STORE_MEMBERS,
                        store.service,
                        f"{store.service} is missing member(s) {', '.join(missing)}"
                        f" ({len(store.members)} of {len(wanted)} joined)",
                    )
                )
        if store.quorum is False:
            out.append(Difference(STORE_QUORUM, store.service, f"{store.service} has no quorum"))
        if store.partitions:
            out.append(
                Difference(
                    STORE_PARTITIONS,
                    store.service,
                    f"{store.service} is partitioned: {', '.join(store.partitions)}",
                )
            )
        for flag in store.flags:
            out.append(
                Difference(FLAG, f"{store.service}:{flag}", f"{store.service} flag {flag} is set")
            )
    return out


def _computes(observed: ObservedState) -> list[Difference]:
    out = []
    for compute in observed.computes:
        if compute.enabled is False:
            held = "" if compute.instances is None else f", {compute.instances} instance(s)"
            out.append(
                Difference(
                    COMPUTE_DISABLED, compute.node, f"{compute.node} nova-compute is disabled{held}"
                )
            )
        if compute.up is False:
            out.append(
                Difference(COMPUTE_DOWN, compute.node, f"{compute.node} nova-compute is down")
            )
    return out
