"""Checks `lifecycle validate` makes on secrets so that a run does not fail on them later:
the SSH identity Ansible will log in with must exist and be private (ssh refuses a key file
others can read: "UNPROTECTED PRIVATE KEY FILE", openssh's sshfile.c)."""

from __future__ import annotations

import stat
from pathlib import Path

from lifecycle.formats.secrets import Secrets
from lifecycle.model import Cluster


def ssh_key_path(cluster: Cluster, secrets: Secrets) -> Path | None:
    """The SSH private key file the secrets name (`~` expanded; a relative path is taken from
    the inventory's directory), or None when none is named."""
    ssh = secrets.ssh
    if not ssh or not ssh.get("private_key_file"):
        return None
    path = Path(ssh["private_key_file"]).expanduser()
    if not path.is_absolute() and cluster.source:
        path = Path(cluster.source).parent / path
    return path


def secrets_warnings(cluster: Cluster, secrets: Secrets) -> list[str]:
    """What will fail later: a missing SSH key file, or one others can read."""
    path = ssh_key_path(cluster, secrets)
    if path is None:
        return []
    where = f"{cluster.credentials}: ssh.private_key_file"
    try:
        mode = path.stat().st_mode
    except OSError:
        return [
            f"{where}: {path} does not exist: Ansible steps (--driver cloud) will fail to log in;"
            " create the key or fix the path (the testbed driver uses its own key)"
        ]
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return [f"{where}: {path} is readable by others: ssh refuses such a key; chmod 600 {path}"]
    return []
