"""Backups on disk: one directory per backup id, its files, and the manifest that lists them.

Layout: ``<root>/<backup id>/`` (mode 0700) holding the files the backup playbooks fetched
(``galera/<node>/`` a mariabackup target directory, ``rabbitmq/definitions.json``,
``keys/{fernet-keys,credential-keys}/``, ``config/<node>/<service>/``, ``state/``) and
``manifest.json``::

    {"format": "lifecycle.backup/1", "id": "lab-20261130T021500Z", "cluster": "lab",
     "created": "2026-11-30T02:15:00Z", "galera": {"position": "UUID:SEQNO", "uuid": "...",
     "seqno": 42, "member": "ctl-2"},
     "files": [{"path": "galera/ctl-2/ibdata1", "size": 12582912, "sha256": "...",
                "kind": "galera"}]}

Every file is 0600 and every directory 0700. The manifest holds names, sizes and checksums,
never a file's content: a secret (a key, a password in a configuration file) stays in its own
0600 file. Verifying re-reads every file and compares size and sha256.

The Galera position comes from the file ``mariabackup --galera-info`` writes next to the backup:
``xtrabackup_galera_info`` (MariaDB up to 10.x) or ``mariadb_backup_galera_info`` (11.x), one
line ``UUID:SEQNO`` (upstream: https://mariadb.com/docs/server/ref/mdb/cli/mariadb-backup/galera-info).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lifecycle.errors import InputError
from lifecycle.model.backup import FORMAT, BackupFile, GaleraPosition, Manifest

MANIFEST = "manifest.json"
GALERA_INFO_NAMES = ("mariadb_backup_galera_info", "xtrabackup_galera_info")
KINDS = ("galera", "rabbitmq", "keys", "secrets", "config", "state")
_POSITION = re.compile(r"^([0-9a-fA-F-]{36}):(-?\d+)")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_backup_id(backup_id: str, where: str = "--backup") -> str:
    """A backup id is one path component of letters, digits, `.`, `_`, `-` (InputError, exit 2)."""
    if not _ID.match(backup_id) or backup_id in (".", ".."):
        raise InputError.at(where, "", f"a backup id (letters, digits, . _ -), not {backup_id!r}")
    return backup_id


def backup_root(state_dir: Path, cluster: str) -> Path:
    """Where a cluster's backups go unless `--to DIR`: ``<state dir>/backups/<cluster>``."""
    return state_dir / "backups" / cluster


def make_private(directory: Path) -> None:
    """Create `directory` (and parents) with mode 0700; tighten it if it exists."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)


def _kind(relative: str) -> str:
    top = relative.split("/", 1)[0]
    return top if top in KINDS else "config"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _walk(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.name != MANIFEST:
            yield path


def read_galera_info(directory: Path) -> GaleraPosition | None:
    """The position in the first galera-info file under ``galera/<member>/``, else None."""
    for name in GALERA_INFO_NAMES:
        for path in sorted((directory / "galera").glob(f"*/{name}")):
            match = _POSITION.match(path.read_text().strip())
            if match:
                return GaleraPosition(match[1].lower(), int(match[2]), path.parent.name)
    return None


def write_manifest(directory: Path, backup_id: str, cluster: str, created: str) -> Manifest:
    """List, checksum and lock down (files 0600, directories 0700) everything under `directory`,
    then write its manifest.json (0600, atomically). Returns the manifest."""
    make_private(directory)
    files = []
    for path in _walk(directory):
        path.chmod(0o600)
        relative = path.relative_to(directory).as_posix()
        files.append(BackupFile(relative, path.stat().st_size, _sha256(path), _kind(relative)))
    for sub in directory.rglob("*"):
        if sub.is_dir():
            sub.chmod(0o700)
    manifest = Manifest(backup_id, cluster, created, tuple(files), read_galera_info(directory))
    tmp = directory / f".{MANIFEST}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(manifest.to_dict(), handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, directory / MANIFEST)
    return manifest


def read_manifest(directory: Path) -> Manifest:
    """The manifest of the backup in `directory`; InputError (exit 2) naming the file and field
    when it is missing or not a lifecycle manifest."""
    path = directory / MANIFEST
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise InputError.at(str(path), "", f"a backup manifest ({exc.strerror})") from exc
    except ValueError as exc:
        raise InputError.at(str(path), "", f"a backup manifest in JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError.at(str(path), "format", f"{FORMAT!r}")
    try:
        files = tuple(
            BackupFile(str(f["path"]), int(f["size"]), str(f["sha256"]), str(f["kind"]))
            for f in data["files"]
        )
        galera = data.get("galera")
        position = (
            GaleraPosition(str(galera["uuid"]), int(galera["seqno"]), str(galera["member"]))
            if galera
            else None
        )
        return Manifest(
            str(data["id"]), str(data["cluster"]), str(data["created"]), files, position
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError.at(str(path), str(exc), "a backup manifest written by lifecycle") from exc


def verify_backup(directory: Path) -> list[str]:
    """Every problem with the backup in `directory` (empty: intact): a file missing, of another
    size or checksum than its manifest says, readable by others than its owner, or not listed."""
    manifest = read_manifest(directory)
    problems = []
    listed = set()
    for entry in manifest.files:
        listed.add(entry.path)
        path = directory / entry.path
        if not path.is_file():
            problems.append(f"{entry.path}: missing")
            continue
        if path.stat().st_size != entry.size:
            problems.append(f"{entry.path}: size {path.stat().st_size}, manifest {entry.size}")
        elif _sha256(path) != entry.sha256:
            problems.append(f"{entry.path}: sha256 differs from the manifest")
        if path.stat().st_mode & 0o077:
            problems.append(f"{entry.path}: mode {path.stat().st_mode & 0o777:o}, expected 600")
    for path in _walk(directory):
        relative = path.relative_to(directory).as_posix()
        if relative not in listed and not path.name.startswith(f".{MANIFEST}"):
            problems.append(f"{relative}: not in the manifest")
    return problems


def list_backups(root: Path) -> list[Manifest]:
    """The manifests of the backups under `root`, oldest first (unreadable ones are skipped:
    `backups verify ID` names what is wrong with one)."""
    found: list[Manifest] = []
    if not root.is_dir():
        return found
    for directory in sorted(root.iterdir()):
        if (directory / MANIFEST).is_file():
            try:
                found.append(read_manifest(directory))
            except InputError:
                continue
    return sorted(found, key=lambda m: (m.created, m.id))


def find_backup(root: Path, backup_id: str | None) -> tuple[Path, Manifest]:
    """The backup `backup_id` under `root` (the latest when None). InputError (exit 2) naming the
    id and the backups there when it is not one of them."""
    backups = list_backups(root)
    if backup_id is None:
        if not backups:
            raise InputError.at(str(root), "", "a backup (none here: `lifecycle backup` makes one)")
        return root / backups[-1].id, backups[-1]
    check_backup_id(backup_id)
    for manifest in backups:
        if manifest.id == backup_id:
            return root / backup_id, manifest
    known = ", ".join(m.id for m in backups[-5:]) or "none"
    raise InputError.at(
        "--backup", "", f"a backup under {root}: no backup {backup_id!r} (latest: {known})"
    )


def collect_local(
    directory: Path, cluster: str, inventory: str, state_dir: Path | None
) -> list[str]:
    """Copy what lives beside lifecycle into ``<directory>/state/``: the inventory file
    (cluster.yaml), the cluster's recorded state and its journal (the run history; copied through
    SQLite's online backup, consistent while a run writes to it). Returns what was copied. The
    inventory's `credentials:` file is not copied (BMC passwords: keep it with your secrets)."""
    import shutil
    import sqlite3

    from lifecycle.execution.paths import journal_path
    from lifecycle.execution.recorded_state import state_path

    target = directory / "state"
    make_private(target)
    copied = []
    source = Path(inventory) if inventory else None
    if source is not None and source.is_dir():
        source = source / "cluster.yaml"
    if source is not None and source.is_file():
        shutil.copyfile(source, target / "cluster.yaml")
        copied.append("cluster.yaml")
    if state_dir is not None:
        recorded = state_path(state_dir, cluster)
        if recorded.is_file():
            shutil.copyfile(recorded, target / recorded.name)
            copied.append(recorded.name)
        journal = journal_path(state_dir, cluster)
        if journal.is_file():
            src = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
            dst = sqlite3.connect(target / "journal.db")
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
            copied.append("journal.db")
    return copied


def finish_backup(
    directory: Path,
    backup_id: str,
    cluster: str,
    inventory: str,
    state_dir: Path | None,
    created: str,
) -> dict[str, Any]:
    """The `backup.manifest` step: collect the local files, write the manifest; the step's
    journal output (names, counts, sizes and the Galera position: never a file's content)."""
    copied = collect_local(directory, cluster, inventory, state_dir)
    incoming = directory / ".incoming"  # where the playbooks' archives landed, now unpacked
    if incoming.is_dir() and not any(incoming.iterdir()):
        incoming.rmdir()
    manifest = write_manifest(directory, backup_id, cluster, created)
    return {
        "backup": backup_id,
        "directory": str(directory),
        "files": len(manifest.files),
        "bytes": manifest.size,
        "galera_position": str(manifest.galera) if manifest.galera else None,
        "local": copied,
    }
