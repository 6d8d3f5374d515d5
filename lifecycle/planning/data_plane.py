"""The data plane of one hop: each aggregate (or role) rolls in batches, canary first, every
batch evacuated, upgraded, re-enabled and gated before the next."""

from __future__ import annotations

from lifecycle.model.cluster import Evacuate, NodeSpec
from lifecycle.model.service import ServiceSpec, Tier
from lifecycle.planning import actions as act
from lifecycle.planning.network import drain_network
from lifecycle.planning.rollout import Hop, Rollout


def data_services(rollout: Rollout, node: NodeSpec, leading: bool = False) -> list[ServiceSpec]:
    """The node's data-plane services; with `leading`, only those that go before the control
    plane (the catalog's `precedes`, e.g. ovn-controller), else only the others."""
    key = (node.role, leading)
    found = rollout.role_data.get(key)
    if found is None:
        specs = (rollout.catalog.services[s] for s in rollout.cluster.services_of(node))
        found = [
            s for s in specs if s.tier is Tier.DATA and not s.ceph and bool(s.precedes) == leading
        ]
        rollout.role_data[key] = found
    return found


def data_groups(rollout: Rollout, leading: bool = False) -> list[tuple[str, list[NodeSpec]]]:
    """Nodes with data-plane services, grouped by aggregate (or by role when none); worked out
    once per rollout and pass (each hop, the lower bound and the preflight ask again)."""
    known = rollout.data_groups.get(leading)
    if known is None:
        known = rollout.data_groups[leading] = _data_groups(rollout, leading)
    return known


def _data_groups(rollout: Rollout, leading: bool) -> list[tuple[str, list[NodeSpec]]]:
    groups: dict[str, list[NodeSpec]] = {}
    for node in rollout.cluster.nodes:
        if data_services(rollout, node, leading):
            aggregate = rollout.cluster.aggregate_of(node)
            key = f"aggregate:{aggregate}" if aggregate else f"role:{node.role}"
            groups.setdefault(key, []).append(node)
    return sorted(groups.items())


def batches(rollout: Rollout, key: str, members: int, count: int | None = None) -> list[int]:
    """Batch sizes for `count` hosts (default: all `members` of the group): the canary first,
    then as many hosts as max_unavailable allows. Hosts observed down (`rollout.group_down`, not
    among `members`) are unavailable already and use up part of max_unavailable."""
    aggregate = key.split(":", 1)[1] if key.startswith("aggregate:") else None
    policies = rollout.cluster.policies
    down = rollout.group_down.get(key, 0)
    size = max(1, policies.max_unavailable_for(aggregate).resolve(members + down) - down)
    count = members if count is None else count
    if count <= 0:
        return []
    sizes = [max(1, min(policies.canary, size, count))]
    left = count - sizes[0]
    while left > 0:
        sizes.append(min(size, left))
        left -= sizes[-1]
    return sizes


def plan_data_plane(
    rollout: Rollout, hop: Hop, gate: str, previous: Hop | None, leading: bool = False
) -> list[str]:
    """Every group starts after `gate` (and its own previous hop); returns the groups' final
    gates. The main pass follows the control-plane gate; the `leading` pass (services that
    precede central ones, e.g. ovn-controller) runs before the control plane, on its own."""
    out: list[str] = []
    if leading and not any(rollout.catalog.services[s].precedes for s in rollout.cluster.members):
        return out  # no service goes first: skip a pass over every node
    for key, nodes in data_groups(rollout, leading):
        slot = f"{key}#leading" if leading else key
        # a group's passes never overlap: this one after both passes of the previous hop
        before = [previous.group_last.get(s) for s in (slot, key)] if previous else []
        entry = [gate] + [s for s in before if s]
        final = _group(rollout, hop, key, nodes, entry, leading)
        hop.group_last[slot] = final
        out.append(final)
        for specs in role_lists(rollout, nodes, leading):
            for spec in specs:
                finals = hop.data_last.setdefault(spec.name, [])
                if final not in finals:
                    finals.append(final)
    return out


def role_lists(
    rollout: Rollout, nodes: list[NodeSpec], leading: bool = False
) -> list[list[ServiceSpec]]:
    """The distinct `data_services` lists of the nodes, in their first order: they depend on the
    role only, so a group of thousands of hosts has one or a few (asked once per list, not once
    per host)."""
    return list({id(s): s for s in (data_services(rollout, n, leading) for n in nodes)}.values())


def _group(
    rollout: Rollout, hop: Hop, key: str, nodes: list[NodeSpec], entry: list[str], leading: bool
) -> str:
    """Roll one group batch by batch; returns the group's final health gate."""
    name = key.split(":", 1)[1]
    aggregate = name if key.startswith("aggregate:") else None
    specs = [s for found in role_lists(rollout, nodes, leading) for s in found]
    if leading:  # its own step ids: upgrade/ovn-controller/<group>/batch-N
        name = "+".join(sorted({s.name for s in specs})) + "/" + name
    workloads = any(s.workloads for s in specs)
    evacuate = workloads and rollout.cluster.policies.evacuate is not Evacuate.NONE
    done = [  # none when nothing was observed: no instance name made for each host then
        f"{s.name}@{n.name}"
        for n in (nodes if rollout.releases else ())
        for s in data_services(rollout, n, leading)
        if rollout.done(hop, f"{s.name}@{n.name}")
    ]
    if done:  # observed at the target already: checked there, never upgraded again
        entry = [rollout.confirm(hop, ("data-plane", name), "data-plane", done, entry)]
    todo = [n for n in nodes if _todo(rollout, hop, n, leading)]
    previous, start = entry, 0
    for number, size in enumerate(batches(rollout, key, len(nodes), len(todo)), start=1):
        batch = todo[start : start + size]
        start += size
        label = f"{name}/batch-{number}"
        previous = [_batch(rollout, hop, label, aggregate, batch, previous, evacuate, leading)]
    return previous[0]


def _batch(
    rollout: Rollout,
    hop: Hop,
    label: str,
    aggregate: str | None,
    batch: list[NodeSpec],
    entry: list[str],
    evacuate: bool,
    leading: bool = False,
) -> str:
    names = tuple(n.name for n in batch)
    extra = {"aggregate": aggregate} if aggregate else {}
    moved = drain_network(rollout, hop, label, batch, entry)  # routers and networks go first
    deps = entry
    if evacuate:
        mode = rollout.cluster.policies.evacuate.value
        deps = [
            rollout.add(
                hop.sid("evacuate", label),
                act.EVACUATE,
                "data-plane",
                {"mode": mode, **extra},
                deps,
                nodes=names,
                duration=rollout.duration("evacuate_host"),
                batch=label,
            )
        ]
    per_node = [_todo(rollout, hop, n, leading) for n in batch]
    instances = [
        f"{s.name}@{n.name}" for n, specs in zip(batch, per_node, strict=True) for s in specs
    ]
    services = sorted({s.name for specs in per_node for s in specs})
    checked = sorted({s.name for n in batch for s in data_services(rollout, n, leading)})
    duration = max(sum(s.duration for s in specs) for specs in per_node)
    params = {"playbook": act.UPGRADE_NODE, "services": services}
    deps = [
        rollout.upgrade(
            hop,
            (label,),
            "data-plane",
            params,
            names,
            instances,
            deps + moved,
            duration,
            batch=label,
        )
    ]
    if evacuate:
        deps = [
            rollout.add(
                hop.sid("enable", label),
                act.ENABLE,
                "data-plane",
                extra,
                deps,
                nodes=names,
                duration=rollout.duration("enable_host"),
                batch=label,
            )
        ]
    return rollout.health(hop, (label,), "data-plane", checked, names, deps, batch=label)


def _todo(rollout: Rollout, hop: Hop, node: NodeSpec, leading: bool = False) -> list[ServiceSpec]:
    """The node's data-plane services (of the pass) not observed at the hop's target yet."""
    if not rollout.releases:  # nothing observed: all of them (the role's own list, not a copy)
        return data_services(rollout, node, leading)
    return [
        s
        for s in data_services(rollout, node, leading)
        if not rollout.done(hop, f"{s.name}@{node.name}")
    ]
