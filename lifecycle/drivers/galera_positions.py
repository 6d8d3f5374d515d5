"""Galera members' positions on the testbed, read by `galera-positions.yml` (read only:
grastate.dat, `--wsrep-recover` on stopped members, `wsrep_local_state_comment` on running ones),
for the observed state a recovery is planned from."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import GaleraMember

TASK = "galera position"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def positions_from_results(
    hosts: Mapping[str, Mapping[str, Any]], members: tuple[str, ...]
) -> tuple[GaleraMember, ...]:
    """One GaleraMember per member from the playbook's per-host task results (`task_results`
    shape); a member that printed nothing readable (unreachable, failed) knows nothing: every
    field None, never a guess."""
    out = []
    for node in members:
        result = hosts.get(node, {}).get(TASK) or {}
        try:
            data = json.loads(str(result.get("msg", "")))
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        safe = data.get("safe_to_bootstrap")
        has_data = data.get("has_data")
        out.append(
            GaleraMember(
                node=node,
                uuid=_str(data.get("uuid")),
                seqno=_int(data.get("seqno")),
                safe_to_bootstrap=safe if isinstance(safe, bool) else None,
                recovered=_int(data.get("recovered")),
                state=_str(data.get("state")),
                has_data=has_data if isinstance(has_data, bool) else None,
            )
        )
    return tuple(out)


def read_positions(driver: Any, cluster: Cluster) -> tuple[GaleraMember, ...]:
    """Run galera-positions.yml on every Galera member (one ansible-runner call) through the
    ansible `driver` (lifecycle.drivers.ansible.AnsibleDriver) and parse what it printed."""
    import ansible_runner

    from lifecycle.drivers.ansible import PLAYBOOK_DIR, _fresh_dir
    from lifecycle.drivers.ansible_observe import task_results

    members = cluster.members.get("galera", ())
    if not members:
        return ()
    private = _fresh_dir(driver.state_dir / "artifacts" / "observe", "galera-positions")
    runner = ansible_runner.run(
        private_data_dir=str(private),
        project_dir=str(PLAYBOOK_DIR),
        playbook="galera-positions.yml",
        inventory=driver.inventory(cluster),
        extravars=driver._extravars({}, cluster),
        limit=",".join(members),
        forks=driver.forks,
        envvars=driver._envvars(),
        ident="galera-positions",
        quiet=True,
        rotate_artifacts=0,
    )
    return positions_from_results(task_results(runner.events), members)
