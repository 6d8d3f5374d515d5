"""The recorded state in the commands: `validate` says where the inventory lags behind it, `plan
upgrade` and `run upgrade` plan only what is left, `abort` says what the cloud is left with.

The recorded state (lifecycle.execution.recorded_state) is what lifecycle's own runs did; the
planner's input is `InPlace` (lifecycle.planning.remaining), which an observed state can feed the
same way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lifecycle.model.cluster import Cluster
from lifecycle.model.recorded import RecordedState, instances_at
from lifecycle.planning.plan import Plan

if TYPE_CHECKING:
    from lifecycle.model.in_place import InPlace
    from lifecycle.model.observed import ObservedState

IN_PLACE = "in_place"  # the intent key: what the plan took as done, and the run that recorded it
# the intent key of replace and scale-out: the recorded state's releases the plan was made from
RECORDED_KEY = "recorded"


class NothingToDo(Exception):  # not an error: the command says so and exits 0
    """Every instance is already where the intent asks (a message for the operator)."""


def _root(state_dir: str | None) -> Path:
    from lifecycle.execution.paths import state_dir as resolve

    return resolve(state_dir)


def load(state_dir: str | None, cluster: str) -> RecordedState | None:
    from lifecycle.execution.recorded_state import load_record

    return load_record(_root(state_dir), cluster)


def in_place_intent(
    state_dir: str | None, cluster: Cluster, observed: ObservedState | None = None
) -> dict[str, Any] | None:
    """What the recorded state says is done, as a run's intent keeps it; None without one.
    With an observation, an instance's release is the observed one wherever it was seen (one
    source of truth per instance: `InPlace.seen_as`)."""
    from lifecycle.catalog import load_catalog
    from lifecycle.planning.observed import observed_in_place
    from lifecycle.planning.remaining import ahead_of_inventory, recorded_in_place

    record = load(state_dir, cluster.name)
    if record is None:
        return None
    catalog = load_catalog()
    done = recorded_in_place(record, cluster, catalog)
    if observed is not None:
        done = done.seen_as(observed_in_place(cluster, observed, catalog))
        done = replace(done, at=ahead_of_inventory(done.at, cluster, catalog))
    return {"run": record.run, **done.to_dict()}


def recorded_releases(
    state_dir: str | None, cluster: Cluster, services: set[str] | None = None
) -> dict[str, Any] | None:
    """The recorded state's releases of the members of `services` (all: None) as a run's intent
    keeps them under RECORDED_KEY (a resume plans from the same): {"run", "at"}; None without
    a recorded state."""
    record = load(state_dir, cluster.name)
    if record is None:
        return None
    at = {
        i: r
        for i, r in instances_at(record).items()
        if services is None or i.partition("@")[0] in services
    }
    return {"run": record.run, "at": dict(sorted(at.items()))}


def recorded_of(intent: dict[str, Any]) -> InPlace | None:
    """The intent's recorded releases (RECORDED_KEY) as the planners' input, None without."""
    from lifecycle.model.in_place import InPlace

    recorded = intent.get(RECORDED_KEY)
    return InPlace.from_dict(recorded) if recorded else None


def in_place_of(in_place: dict[str, Any] | None) -> InPlace | None:
    """The planner's input from the intent's `in_place` (None without a recorded state)."""
    from lifecycle.model.in_place import InPlace

    return InPlace.from_dict(in_place) if in_place else None


def what_is_left(plan: Plan, in_place: dict[str, Any] | None) -> Plan | None:
    """The plan of what is left given the intent's `in_place`; the plan itself without one."""
    if not in_place:
        return plan
    from lifecycle.catalog import load_catalog
    from lifecycle.planning.remaining import InPlace, remaining

    return remaining(plan, InPlace.from_dict(in_place), load_catalog())


def initial(in_place: dict[str, Any] | None) -> dict[str, str] | None:
    """instance -> release before the plan starts, for the verifier."""
    return dict(in_place.get("at") or {}) if in_place else None


def nothing_to_do(plan: Plan, in_place: dict[str, Any]) -> str:
    """What `plan`/`run upgrade` say when the recorded state already has everything done."""
    ceph = dict(plan.extra).get("ceph_to")
    also = f" (Ceph daemons at {ceph})" if ceph else ""
    return (
        f"nothing to do: every instance is at {plan.target}{also} (recorded by run"
        f" {in_place['run']});"
        " the inventory still says otherwise: edit its `release:` (see `lifecycle validate`)"
    )


def announce_left(full: Plan | None, left: Plan, in_place: dict[str, Any] | None) -> None:
    """Say on stderr that the plan skips work a recorded run did (`full`: the whole plan, when
    known, to say how much is left)."""
    if not in_place:
        return
    at = Counter((in_place.get("at") or {}).values())
    whole = full is not None and len(left.steps) == len(full.steps)  # nothing dropped
    if not at and (whole or full is None):
        return
    where = ", ".join(f"{n} at {r}" for r, n in sorted(at.items())) or "none"
    if whole:  # every instance past the inventory's release: planned from where they are
        left_text = f"{len(left.steps)} steps from {left.source}"
    else:
        of = f" of {len(full.steps)}" if full is not None else ""
        left_text = f"{len(left.steps)}{of} steps left"
    click.echo(
        f"planning from the recorded state of run {in_place['run']}: instances already upgraded:"
        f" {where}; {left_text}",
        err=True,
    )


# --- validate ------------------------------------------------------------------------------------


def validate_findings(cluster: Cluster, state_dir: str | None) -> list[str]:
    """Where the inventory differs from the recorded state, and what to edit."""
    from lifecycle.catalog import load_catalog

    record = load(state_dir, cluster.name)
    if record is None:
        return []
    services = load_catalog().services
    at = instances_at(record)
    out = []
    for ceph, key, wrote in (
        (False, "release", cluster.release),
        (True, "ceph_release", cluster.ceph_release),
    ):
        mine = {
            f"{s}@{n}"
            for s, nodes in cluster.members.items()
            if s in services and services[s].ceph == ceph
            for n in nodes
        }
        releases = Counter(at[i] for i in mine if i in at)
        if not releases or wrote is None or set(releases) == {wrote}:
            continue
        if len(releases) == 1:
            only = next(iter(releases))
            out.append(
                f"recorded state: every {'Ceph' if ceph else 'OpenStack'} instance is at {only}"
                f" after run {record.run} ({record.run_state}), the inventory's `{key}:` says"
                f" {wrote}: edit `{key}: {only}` in {cluster.source or 'cluster.yaml'}"
            )
        else:
            mix = ", ".join(f"{n} at {r}" for r, n in sorted(releases.items()))
            out.append(
                f"recorded state: {'Ceph' if ceph else 'OpenStack'} instances are mixed after run"
                f" {record.run} ({record.run_state}): {mix}; the inventory's `{key}:` says"
                f" {wrote}: finish the upgrade (`lifecycle plan upgrade` plans only what is left)"
            )
    out += _left_open(record)
    added = [n for n in record.added if n not in {x.name for x in cluster.nodes}]
    if added:
        out.append(
            f"recorded state: run {record.run} deployed {', '.join(added)}, not in the inventory:"
            " add them under `nodes:` (`lifecycle run scale-out --update-inventory` does it)"
        )
    return out


def _left_open(record: RecordedState) -> list[str]:
    out = []
    if record.disabled:
        out.append(
            f"recorded state: host(s) left disabled by run {record.run}:"
            f" {', '.join(record.disabled)}"
        )
    if record.flags:
        out.append(
            f"recorded state: Ceph flag(s) left set by run {record.run}: {', '.join(record.flags)}"
        )
    return out


# --- abort ---------------------------------------------------------------------------------------


# What plans a stopped run's operation again from the cloud as it is (`--observe` where taken).
_PLAN_AGAIN = {
    "deploy": "`lifecycle plan deploy {inv} --observe --driver D`",
    "replace": "`lifecycle plan replace {inv} --node {node} --observe --driver D`",
    "remove": "`lifecycle plan remove {inv} --node {node} --observe --driver D`",
    "recover": "`lifecycle plan recover {inv} --driver D`",
    "backup": "`lifecycle backup {inv} --observe --driver D`",
    "scale-out": "`lifecycle plan scale-out {inv} --nodes FILE`",
}


def describe_recorded(
    record: RecordedState, inventory: str | None, intent: dict[str, Any] | None = None
) -> str:
    """The recorded state after a stopped run, and what to run next (`intent`: the stopped run's,
    to repeat its target)."""
    from lifecycle.model.recorded import releases_of

    lines = ["  recorded state (" + f"{record.cluster}.state.json, version {record.version}):"]
    for release, instances in sorted(releases_of(record).items()):
        services = sorted({i.partition("@")[0] for i in instances})
        lines.append(f"    at {release}: {len(instances)} instances ({', '.join(services)})")
    lines.append("    hosts disabled: " + (", ".join(record.disabled) or "none"))
    lines.append("    Ceph flags set: " + (", ".join(record.flags) or "none"))
    inv = f"-i {inventory}" if inventory else "-i INVENTORY"
    intent = intent or {}
    to = f"--to {intent.get('target') or 'TARGET'}"
    if intent.get("ceph_target"):
        to += f" --ceph-to {intent['ceph_target']}"
    operation = intent.get("operation") or "upgrade"
    if operation == "upgrade":
        nexts = [
            f"`lifecycle plan upgrade {inv} {to}` plans only what is left (it re-enables the"
            " hosts and unsets the flags above); `lifecycle run upgrade` runs it"
        ]
    else:  # no upgrade target to finish: look at the cloud, then plan this operation again
        again = _PLAN_AGAIN.get(operation, "`lifecycle plan {op} {inv} ...`").format(
            op=operation, inv=inv, node=intent.get("node") or "NODE"
        )
        nexts = [
            f"`lifecycle status {inv} --driver D` shows what the cloud runs now; then {again}"
            f" plans the {operation} again from it"
        ]
    if record.disabled:
        nexts.append(
            "or re-enable the hosts by hand: `openstack compute service set --enable HOST"
            " nova-compute`"
        )
    if record.flags:
        nexts.append(
            "or, once every OSD is up: " + "; ".join(f"`ceph osd unset {f}`" for f in record.flags)
        )
    lines.append("  next: " + "\n        ".join(nexts))
    return "\n".join(lines)


# --- scale-out -----------------------------------------------------------------------------------


def inventory_change(
    inventory: Cluster, grown: Cluster, run_id: str, state_dir: Path, update: bool
) -> None:
    """After a scale-out run: the nodes it deployed that the inventory lacks, as the `nodes:`
    entries to add (printed), or written into cluster.yaml with --update-inventory (the old
    file kept as cluster.yaml.bak-<run>)."""
    from lifecycle.execution.recorded_state import load_record
    from lifecycle.formats.inventory_update import add_nodes, entries_text

    record = load_record(state_dir, inventory.name)
    deployed = set(record.added) if record is not None and record.run == run_id else set()
    listed = {n.name for n in inventory.nodes}
    new = [n for n in grown.nodes if n.name in deployed and n.name not in listed]
    if not new:
        return
    path = Path(inventory.source) if inventory.source else None
    if update and path is not None and path.suffix in (".yaml", ".yml"):
        backup = add_nodes(path, new, run_id)
        names = ", ".join(n.name for n in new)
        click.echo(
            f"inventory updated: {len(new)} node(s) added to {path} ({names});"
            f" the old file is {backup}"
        )
        click.echo(_LOGINS)
        return
    click.echo(
        f"the inventory lacks the {len(new)} node(s) this run deployed: add under `nodes:` in"
        f" {path or 'cluster.yaml'} (or run with --update-inventory):"
    )
    click.echo(entries_text(new), nl=False)
    click.echo(_LOGINS)


_LOGINS = (
    "note: their BMC logins are in the nodes file, not in secrets.yaml: to let lifecycle reach"
    " their BMCs later, add each login to secrets.yaml and `credentials: NAME` to the node's `bmc`"
)
