"""Ceph's lane: mon -> mgr -> osd -> mds -> rgw, OSD hosts one failure domain at a time while
`noout` keeps Ceph from rebalancing onto the survivors."""

from __future__ import annotations

from lifecycle.model.service import ServiceSpec, Tier
from lifecycle.planning import actions as act
from lifecycle.planning.control_plane import service_chain
from lifecycle.planning.rollout import Hop, Rollout, unique


def plan_ceph_hop(rollout: Rollout, hop: Hop, entry: list[str], previous: Hop | None) -> list[str]:
    """One Ceph hop; returns its last steps: `require-osd-release` for the hop's target, which
    the next hop waits for (Ceph's upgrade notes: once every OSD runs the new release,
    `ceph osd require-osd-release <release>`; the next release refuses OSDs until it is set)."""
    specs = rollout.present([Tier.STORAGE], ceph=True)
    for rotation, spec in enumerate(specs):
        deps = list(entry) + (previous.finals(spec.name) if previous else [])
        deps = unique(deps + [hop.last[d] for d in spec.depends_on if d in hop.last])
        if spec.name == "ceph-osd":
            hop.last[spec.name] = _osd_rollout(rollout, hop, spec, deps)
        else:
            hop.last[spec.name] = service_chain(rollout, hop, spec, "ceph", deps, rotation)
    finals = unique(hop.last[s.name] for s in specs) or list(entry)
    if "ceph-osd" not in rollout.cluster.members:
        return finals
    return [_require_osd_release(rollout, hop, finals)]


def _require_osd_release(rollout: Rollout, hop: Hop, deps: list[str]) -> str:
    members = rollout.cluster.members
    host = members.get("ceph-mon", members["ceph-osd"])[0]
    params = {
        "playbook": act.CEPH_FLAG,
        "flag": act.REQUIRE_OSD_RELEASE,
        "state": "set",
        "release": hop.target.name,
    }
    return rollout.add(
        hop.sid("ceph", act.REQUIRE_OSD_RELEASE),
        act.PLAYBOOK,
        "ceph",
        params,
        deps,
        nodes=(host,),
        duration=rollout.duration("ceph_flag"),
    )


def failure_domains(rollout: Rollout, members: tuple[str, ...]) -> dict[str, list[str]]:
    """OSD hosts by failure domain; with a single domain there is no redundancy between
    domains, and Ceph's failure domain is then the host."""
    domains: dict[str, list[str]] = {}
    for name in members:
        domains.setdefault(rollout.cluster.node(name).failure_domain, []).append(name)
    return domains if len(domains) > 1 else {name: [name] for name in members}


def _flag(rollout: Rollout, hop: Hop, state: str, host: str, deps: list[str]) -> str:
    params = {"playbook": act.CEPH_FLAG, "flag": "noout", "state": state}
    return rollout.add(
        hop.sid("ceph", f"noout-{state}"),
        act.PLAYBOOK,
        "ceph",
        params,
        deps,
        nodes=(host,),
        duration=rollout.duration("ceph_flag"),
    )


def _osd_rollout(rollout: Rollout, hop: Hop, spec: ServiceSpec, deps: list[str]) -> str:
    members = rollout.cluster.members[spec.name]
    done = [h for h in members if rollout.done(hop, f"{spec.name}@{h}")]
    if done:  # observed at the target already: checked there, never upgraded again
        instances = [f"{spec.name}@{h}" for h in done]
        deps = [rollout.confirm(hop, (spec.name,), "ceph", instances, deps, batch=spec.name)]
    if len(done) == len(members):
        return deps[0]  # nothing left: no noout for nothing
    flag_host = rollout.cluster.members.get("ceph-mon", members)[0]
    previous = [_flag(rollout, hop, "set", flag_host, deps)]
    for domain, all_hosts in failure_domains(rollout, members).items():
        hosts = [h for h in all_hosts if h not in done]
        if not hosts:
            continue
        instances = [f"{spec.name}@{h}" for h in hosts]
        label = f"ceph-osd/{domain}"
        params = {"playbook": act.UPGRADE_SERVICE, "service": spec.name, "failure_domain": domain}
        step = rollout.upgrade(
            hop,
            (spec.name, domain),
            "ceph",
            params,
            hosts,
            instances,
            previous,
            spec.duration,
            batch=label,
        )
        previous = [
            rollout.health(
                hop, (spec.name, domain), "ceph", [spec.name], hosts, [step], batch=label
            )
        ]
    return _flag(rollout, hop, "unset", flag_host, previous)
