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


def make_step(
    step_id: str, action: str, phase: str, params: Mapping[str, Any] | None = None, **fields: Any
) -> Step:
    """A Step with params frozen (lists become tuples)."""
    return Step(
        id=step_id, action=action, phase=phase, params=freeze_params(params or {}), **fields
    )
