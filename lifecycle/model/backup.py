"""A backup's manifest as data (lifecycle.execution.backups reads and writes it on disk)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FORMAT = "lifecycle.backup/1"


@dataclass(frozen=True)
class BackupFile:
    """One file of a backup: `path` relative to the backup directory, `size` in bytes."""

    path: str
    size: int
    sha256: str
    kind: str


@dataclass(frozen=True)
class GaleraPosition:
    """The cluster position a Galera backup holds: state UUID and seqno (wsrep terms)."""

    uuid: str
    seqno: int
    member: str = ""

    def __str__(self) -> str:
        return f"{self.uuid}:{self.seqno}"


@dataclass(frozen=True)
class Manifest:
    """A backup's manifest (see the module docstring for the JSON shape)."""

    id: str
    cluster: str
    created: str  # ISO 8601, UTC
    files: tuple[BackupFile, ...]
    galera: GaleraPosition | None = None

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        galera = None
        if self.galera is not None:
            galera = {
                "position": str(self.galera),
                "uuid": self.galera.uuid,
                "seqno": self.galera.seqno,
                "member": self.galera.member,
            }
        return {
            "format": FORMAT,
            "id": self.id,
            "cluster": self.cluster,
            "created": self.created,
            "galera": galera,
            "files": [vars(f) for f in self.files],
        }
