"""The sim driver's backups: small fake files where the backup playbooks would put real ones,
so that the manifest, `backups list` and `backups verify` work end to end without a cloud."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from lifecycle.model.cluster import Cluster
from lifecycle.planning.plan import Step

BACKUP_PLAYBOOKS = ("backup-galera", "backup-rabbitmq", "backup-keys", "backup-config")


def sim_position(data: dict[str, Any], cluster: str) -> tuple[str, int]:
    """The simulated Galera cluster's state UUID (fixed per cluster) and seqno (grows with every
    step the simulation applied: a stand-in for writes)."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{cluster}.galera")), len(data.get("counts", {}))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text)
    path.chmod(0o600)


def fake_backup(data: dict[str, Any], step: Step, cluster: Cluster) -> None:
    """Write what the step's backup playbook would fetch, in small fake files."""
    dest = Path(str(step.param("dest")))
    kind = str(step.param("playbook")).removeprefix("backup-")
    if kind == "galera":
        node = step.nodes[0]
        state_uuid, seqno = sim_position(data, cluster.name)
        _write(dest / "galera" / node / "ibdata1", f"sim innodb {cluster.name} {seqno}\n")
        _write(dest / "galera" / node / "xtrabackup_galera_info", f"{state_uuid}:{seqno}\n")
    elif kind == "rabbitmq":
        definitions = {"users": [{"name": "openstack"}], "vhosts": [{"name": "/"}]}
        _write(dest / "rabbitmq" / "definitions.json", json.dumps(definitions))
    elif kind == "keys":
        for repo, count in (("fernet-keys", 3), ("credential-keys", 2)):
            for i in range(count):
                _write(dest / "keys" / repo / str(i), f"sim-{repo}-{i}-{cluster.name}\n")
    elif kind == "config":
        for node in step.nodes:
            for service in cluster.services_of(cluster.node(node)):
                _write(dest / "config" / node / service / "etc" / "version", f"{cluster.release}\n")
