"""The vocabulary planners and the verifier share: step actions and the playbooks they name.

Keeping these in one place lets the verifier recognise what a step does (drain a host, set
`noout`, migrate a database) without guessing from ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lifecycle.planning.plan import Step, freeze_params

PRECHECK = "checks.precheck"
HEALTH = "checks.health"
POSTCHECK = "checks.postcheck"
PLAYBOOK = "ansible.playbook"
EVACUATE = "compute.evacuate"
ENABLE = "compute.enable"
DRAIN_NETWORK = "compute.drain_network"  # routers and DHCP networks off a network node

# a checks.* step's param: nodes observed down before planning, planned around, not checked
PLANNED_AROUND = "planned_around"
# a checks.health step's param: the release given or a later one will do (the confirmation of an
# instance observed past an intermediate hop's target)
AT_LEAST = "at_least"

UPGRADE_SERVICE = "upgrade-service"
UPGRADE_NODE = "upgrade-node"
DB_MIGRATE = "db-migrate"
CEPH_FLAG = "ceph-flag"
REQUIRE_OSD_RELEASE = "require-osd-release"  # a ceph-flag step's flag, with the release to require


def playbook(step: Step) -> str | None:
    """The playbook an `ansible.playbook` step runs, else None."""
    if step.action != PLAYBOOK:
        return None
    name = step.param("playbook")
    return str(name) if name is not None else None


def is_noout(step: Step, state: str) -> bool:
    return (
        playbook(step) == CEPH_FLAG
        and step.param("flag") == "noout"
        and step.param("state") == state
    )


def db_phase(step: Step) -> tuple[str, str] | None:
    """(project, "expand" | "contract") for a database migration step."""
    if playbook(step) != DB_MIGRATE:
        return None
    return str(step.param("project")), str(step.param("phase"))


def expected_release(step: Step, service: str, ceph: bool) -> str | None:
    """The release `service` must report after `step` (a health gate, a postcheck, a deploy).

    A step names the OpenStack release as `release` and, when it touches Ceph daemons of a
    cluster with its own Ceph release, that one as `ceph_release`: Ceph runs its own release train
    (nautilus, octopus, ...) beside OpenStack's, as TripleO deploys it. A Ceph daemon expects
    `ceph_release` when the step gives one, else `release` (a Ceph hop's gates name the Ceph
    target as `release`); None means any release will do."""
    raw = step.param("ceph_release") if ceph else None
    if raw is None:
        raw = step.param("release")
    return str(raw) if raw is not None else None


def planned_around(step: Step) -> tuple[str, ...]:
    """The nodes a check leaves out because the plan was made around them (down)."""
    nodes = step.param(PLANNED_AROUND)
    return nodes if isinstance(nodes, tuple) else ()


def release_ok(step: Step, have: str | None, wanted: str | None, ceph: bool) -> bool:
    """Whether an instance at `have` passes `step`'s check for `wanted` (None: any release);
    with AT_LEAST, a later release of the same train passes too."""
    if wanted is None or have == wanted:
        return True
    return bool(step.param(AT_LEAST)) and have is not None and later(have, wanted, ceph)


def later(have: str, wanted: str, ceph: bool) -> bool:
    """Whether release `have` comes after `wanted` in its train (False for unknown names)."""
    from lifecycle.catalog import load_catalog
    from lifecycle.errors import UnsupportedUpgrade

    catalog = load_catalog()
    train = catalog.ceph if ceph else catalog.openstack
    try:
        return train.get(have).index > train.get(wanted).index
    except UnsupportedUpgrade:
        return False


def make_step(
    step_id: str, action: str, phase: str, params: Mapping[str, Any] | None = None, **fields: Any
) -> Step:
    """A Step with params frozen (lists become tuples)."""
    return Step(
        id=step_id, action=action, phase=phase, params=freeze_params(params or {}), **fields
    )
