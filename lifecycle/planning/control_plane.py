"""Infra and control services of one hop: quorum-sized chains, dependencies, schema migrations."""

from __future__ import annotations

from lifecycle.model.service import Quorum, ServiceSpec, Tier
from lifecycle.planning import actions as act
from lifecycle.planning.rollout import Hop, Rollout, unique


def chain_size(rollout: Rollout, spec: ServiceSpec, members: int) -> int:
    """Members taken down together: what the quorum and the default max_unavailable allow.
    Members observed down (`rollout.down`, not among `members`) or out of service
    (`rollout.out`, among them) count as down already: they use up the margin of the whole
    membership (refused before planning when none is left)."""
    down = rollout.down.get(spec.name, 0)
    total = members + down
    unavailable = down + rollout.out.get(spec.name, 0)
    allowed = spec.quorum.max_down(total) - unavailable
    policy = rollout.cluster.policies.max_unavailable.resolve(total) - unavailable
    return max(1, min(allowed, policy))


def chain_batches(members: list[str], size: int, canary: bool) -> list[list[str]]:
    """The members cut into batches of `size`; with `canary`, the first member goes alone."""
    head = members[:1] if canary else []
    rest = members[len(head) :]
    return ([head] if head else []) + [rest[i : i + size] for i in range(0, len(rest), size)]


def service_chain(
    rollout: Rollout, hop: Hop, spec: ServiceSpec, phase: str, entry: list[str], rotation: int
) -> str:
    """Upgrade one service across its members, batch after batch; returns the final step.

    A quorum service is gated after every batch (the member must rejoin before the next goes).
    A service without quorum on several members is gated after its first member as well:
    `health/<service>/<first-node>` is the control plane's canary (a new API that does not answer
    on one controller stops the rollout while the others still serve), and the second member's
    upgrade depends on it; then once more after the last batch."""
    members = list(rollout.cluster.members[spec.name])
    shift = rotation % len(members)
    members = members[shift:] + members[:shift]  # staggered starts let chains pipeline
    size = chain_size(rollout, spec, len(members))
    gated = spec.quorum is not Quorum.NONE
    done = [n for n in members if rollout.done(hop, f"{spec.name}@{n}")]
    members = [n for n in members if n not in done]
    previous = entry
    if done:  # observed at the target already: checked there, never upgraded again
        instances = [f"{spec.name}@{n}" for n in done]
        previous = [rollout.confirm(hop, (spec.name,), phase, instances, entry, batch=spec.name)]
    chain = chain_batches(members, size, canary=not gated and len(members) >= 2)
    for number, batch in enumerate(chain, start=1):
        label = batch[0] if len(batch) == 1 else f"batch-{number}"
        instances = [f"{spec.name}@{n}" for n in batch]
        params = {"playbook": act.UPGRADE_SERVICE, "service": spec.name}
        step = rollout.upgrade(
            hop,
            (spec.name, label),
            phase,
            params,
            batch,
            instances,
            previous,
            spec.duration,
            batch=spec.name,
        )
        if gated or number == 1 or number == len(chain):
            step = rollout.health(
                hop, (spec.name, label), phase, [spec.name], batch, [step], batch=spec.name
            )
        previous = [step]
    return previous[0]


def carry_over(rollout: Rollout, spec: ServiceSpec, previous: Hop | None) -> list[str]:
    """What a service waits for from the previous hop: its own chain, and (the skew rule) every
    data-plane service that follows it must have caught up before it moves on again."""
    if previous is None:
        return []
    deps = list(previous.finals(spec.name))
    for other in rollout.catalog.services.values():
        if spec.name in other.follows:
            deps += previous.finals(other.name)
    return deps


def plan_control_plane(rollout: Rollout, hop: Hop, entry: list[str], previous: Hop | None) -> str:
    """Infra, schema expansions, then control services; returns the control-plane health gate."""
    infra = rollout.present([Tier.INFRA], ceph=False)
    control = rollout.present([Tier.CONTROL], ceph=False)
    infra_done: list[str] = []
    for rotation, spec in enumerate(infra):
        deps = entry + carry_over(rollout, spec, previous)
        deps += [hop.last[d] for d in spec.depends_on if d in hop.last]
        hop.last[spec.name] = service_chain(rollout, hop, spec, "infra", deps, rotation)
        infra_done.append(hop.last[spec.name])
    infra_done = infra_done or entry
    db_expands(rollout, hop, infra_done, previous)
    for rotation, spec in enumerate(control, start=len(infra)):
        deps = infra_done + carry_over(rollout, spec, previous)
        deps += [hop.last[d] for d in spec.depends_on if d in hop.last]
        if spec.project in hop.expand:
            deps.append(hop.expand[spec.project])
        hop.last[spec.name] = service_chain(rollout, hop, spec, "control-plane", deps, rotation)
    names = [s.name for s in (*infra, *control)]
    gate_deps = unique(hop.last[n] for n in names) or entry
    return rollout.health(hop, ("control-plane",), "control-plane", names, (), gate_deps)


def db_projects(rollout: Rollout) -> list[tuple[str, str]]:
    """(project, host that runs its migrations) for projects with a control service here."""
    seen: dict[str, tuple[str, ...]] = {}
    for spec in rollout.present([Tier.CONTROL], ceph=False):
        if spec.project and spec.project not in seen:
            seen[spec.project] = rollout.cluster.members[spec.name]
    # spread migrations over the hosts that can run them: they are independent work
    return [
        (project, hosts[i % len(hosts)]) for i, (project, hosts) in enumerate(sorted(seen.items()))
    ]


def _migration(
    rollout: Rollout, hop: Hop, project: str, host: str, phase: str, deps: list[str]
) -> str:
    params = {
        "playbook": act.DB_MIGRATE,
        "project": project,
        "phase": phase,
        "release": hop.target.name,
    }
    return rollout.add(
        hop.sid(f"db-{phase}", project),
        act.PLAYBOOK,
        "control-plane" if phase == "expand" else "data-plane",
        params,
        deps,
        nodes=(host,),
        duration=rollout.duration(f"db_{phase}"),
    )


def db_expands(rollout: Rollout, hop: Hop, entry: list[str], previous: Hop | None) -> None:
    """Expand each project's schema once infra is up, before its new code."""
    for project, host in db_projects(rollout):
        deps = list(entry)
        if previous is not None and project in previous.contract:
            deps.append(previous.contract[project])
        hop.expand[project] = _migration(rollout, hop, project, host, "expand", deps)


def db_contracts(rollout: Rollout, hop: Hop) -> list[str]:
    """Contract each project's schema (and run its online data migrations) once every instance
    of its services is new, data plane included: nova-compute and the Neutron agents still use
    the old columns until they run the new code (Nova's and Neutron's rolling-upgrade docs)."""
    for project, host in db_projects(rollout):
        services = [s for s in rollout.cluster.members if rollout.catalog.project_of(s) == project]
        deps = [hop.expand[project]] + [f for s in services for f in hop.finals(s)]
        hop.contract[project] = _migration(rollout, hop, project, host, "contract", deps)
    return list(hop.contract.values())
