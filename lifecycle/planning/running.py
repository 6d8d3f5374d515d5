"""Which release the members of a service run, from the best source there is.

A node rebuilt or replaced must come back at the release its service's other members run, not
at the inventory's: after an upgrade the operator has not written into `release:`, deploying
the inventory's release would fail the join's gate after the old member was already removed
(issue 12). The sources, best first:

1. the observed state (`--observe`): the releases the live members were seen running;
2. the recorded state (what lifecycle's own runs did, `<cluster>.state.json`): used when it is
   at or past the inventory's release (a run lifecycle made moved the instances on);
3. the inventory's `release` (`ceph_release` for Ceph daemons) when neither says anything.

No release can be chosen safely, and the choice carries a `problem`, when the members of the
service run different releases (an upgrade left half done: a joiner at either release fails
the gate of the others), or when no observation says which release runs and the recorded state
is behind the inventory (someone moved the cloud outside lifecycle, or the inventory was edited
ahead of it). Pure: observed and recorded states are read before planning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lifecycle.catalog import Catalog
from lifecycle.errors import UnsupportedUpgrade
from lifecycle.model.cluster import Cluster
from lifecycle.model.in_place import InPlace

OBSERVED, RECORDED, INVENTORY = "observed", "recorded state", "inventory"


@dataclass(frozen=True)
class ServiceRelease:
    """The release a new member of `service` must run: `release` (the inventory's when a
    `problem` leaves no safe choice, so that --force plans as before), `source` (OBSERVED,
    RECORDED or INVENTORY), `seen`: member -> release as that source has it."""

    service: str
    release: str | None
    source: str = INVENTORY
    seen: Mapping[str, str] = field(default_factory=dict)
    problem: str | None = None


def inventory_release(cluster: Cluster, catalog: Catalog, service: str) -> str | None:
    """The inventory's release of `service`: `ceph_release` for a Ceph daemon of a cluster that
    names one, else `release` (Ceph daemons follow it otherwise, as the recorded state does)."""
    spec = catalog.services.get(service)
    if spec is not None and spec.ceph and cluster.ceph_release:
        return cluster.ceph_release
    return cluster.release


def _rank(catalog: Catalog, service: str, release: str) -> int | None:
    """`release`'s index in the service's train (a Ceph daemon of a cluster without its own
    Ceph release runs OpenStack release names); None for a name no train holds."""
    spec = catalog.services.get(service)
    trains = (catalog.ceph, catalog.openstack) if spec and spec.ceph else (catalog.openstack,)
    for train in trains:
        try:
            return train.get(release).index
        except UnsupportedUpgrade:
            continue
    return None


def _mixed(service: str, seen: Mapping[str, str], source: str) -> str:
    listed = ", ".join(f"{n} at {r}" for n, r in sorted(seen.items()))
    return (
        f"{service}: its members run different releases ({listed}; {source}): a new member at"
        " either fails the others' gate; finish the upgrade first (`lifecycle plan upgrade"
        " --observe` plans what is left)"
    )


def service_release(
    cluster: Cluster,
    catalog: Catalog,
    service: str,
    node: str,
    observed: InPlace | None = None,
    recorded: InPlace | None = None,
) -> ServiceRelease:
    """The release a new member of `service` replacing `node` must run (see the module doc).
    The members asked are the service's others (`node` itself when it is the only one).
    `observed` and `recorded`: what the cloud runs as an observation (`observed_in_place`: live
    members seen running a release) and as the recorded state have it."""
    inventory = inventory_release(cluster, catalog, service)
    members = [n for n in cluster.members.get(service, ()) if n != node] or [node]
    seen = _seen(observed, service, members)
    if seen:
        return _choose(service, seen, OBSERVED, inventory)
    seen = _seen(recorded, service, members)
    if not seen:
        return ServiceRelease(service, inventory)
    chosen = _choose(service, seen, RECORDED, inventory)
    if chosen.problem or inventory is None or chosen.release == inventory:
        return chosen
    have, wrote = _rank(catalog, service, str(chosen.release)), _rank(catalog, service, inventory)
    if have is not None and wrote is not None and have < wrote:
        return ServiceRelease(
            service,
            inventory,
            RECORDED,
            seen,
            f"{service}: the inventory says {inventory}, the recorded state {chosen.release};"
            " nothing observed says which runs: plan with --observe (or correct `release:`)",
        )
    return chosen


def _seen(source: InPlace | None, service: str, members: list[str]) -> dict[str, str]:
    at = source.at if source is not None else {}
    return {n: at[f"{service}@{n}"] for n in members if f"{service}@{n}" in at}


def _choose(
    service: str, seen: Mapping[str, str], source: str, inventory: str | None
) -> ServiceRelease:
    releases = set(seen.values())
    if len(releases) > 1:
        return ServiceRelease(service, inventory, source, seen, _mixed(service, seen, source))
    return ServiceRelease(service, releases.pop(), source, seen)
