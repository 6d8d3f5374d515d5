"""Backups on disk: the manifest's checksums and modes, verification, and no secret in it."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from lifecycle.errors import InputError
from lifecycle.execution.backups import (
    MANIFEST,
    find_backup,
    list_backups,
    read_manifest,
    verify_backup,
    write_manifest,
)

UUID = "6f4c1f2e-0000-11ee-8000-000000000001"
SECRETS = {  # a secrets fixture: values that must never reach the manifest
    "secrets/db-keystone": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "keys/fernet-keys/0": "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8=",
    "keys/credential-keys/0": "cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG9mb29iYXJiYXo=",
    "config/ctl-0/keystone/etc/keystone.conf": (
        "[database]\nconnection = mysql+pymysql://keystone:9a8b7c6d5e4f30211203f4e5d6c7b8a9@h/k\n"
    ),
}


def make_backup(root: Path, backup_id: str = "lab-b1", created: str = "2026-11-30T01:00:00Z"):
    directory = root / backup_id
    files = {
        "galera/ctl-2/ibdata1": "innodb pages",
        "galera/ctl-2/xtrabackup_galera_info": f"{UUID}:1234\n",
        "rabbitmq/definitions.json": '{"users": []}',
        **SECRETS,
    }
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)  # as fetched: the manifest step locks it down
    return directory, write_manifest(directory, backup_id, "lab", created)


def test_manifest_lists_every_file_with_size_checksum_and_kind(tmp_path) -> None:
    directory, manifest = make_backup(tmp_path)
    by_path = {f.path: f for f in manifest.files}
    assert set(by_path) == {
        "galera/ctl-2/ibdata1",
        "galera/ctl-2/xtrabackup_galera_info",
        "rabbitmq/definitions.json",
        *SECRETS,
    }
    entry = by_path["galera/ctl-2/ibdata1"]
    assert entry.size == len("innodb pages")
    assert entry.sha256 == hashlib.sha256(b"innodb pages").hexdigest()
    assert entry.kind == "galera"
    assert by_path["keys/fernet-keys/0"].kind == "keys"
    assert by_path["secrets/db-keystone"].kind == "secrets"
    assert str(manifest.galera) == f"{UUID}:1234" and manifest.galera.member == "ctl-2"
    assert read_manifest(directory) == manifest


def test_files_are_0600_and_directories_0700(tmp_path) -> None:
    directory, _ = make_backup(tmp_path)
    for path in [directory, *directory.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_no_secret_value_in_the_manifest(tmp_path) -> None:
    directory, _ = make_backup(tmp_path)
    text = (directory / MANIFEST).read_text()
    for value in SECRETS.values():
        assert value not in text
    assert "9a8b7c6d5e4f30211203f4e5d6c7b8a9" not in text  # the password inside the config


def test_an_intact_backup_verifies(tmp_path) -> None:
    directory, _ = make_backup(tmp_path)
    assert verify_backup(directory) == []


def test_verify_names_a_changed_file_of_the_same_size(tmp_path) -> None:
    directory, _ = make_backup(tmp_path)
    (directory / "galera/ctl-2/ibdata1").write_text("innodb PAGES")
    assert verify_backup(directory) == ["galera/ctl-2/ibdata1: sha256 differs from the manifest"]


def test_verify_names_missing_resized_loose_and_unlisted_files(tmp_path) -> None:
    directory, _ = make_backup(tmp_path)
    (directory / "rabbitmq/definitions.json").unlink()
    (directory / "galera/ctl-2/ibdata1").write_text("more innodb pages")
    (directory / "keys/fernet-keys/0").chmod(0o644)
    (directory / "stray").write_text("x")
    problems = verify_backup(directory)
    assert "rabbitmq/definitions.json: missing" in problems
    assert any(p.startswith("galera/ctl-2/ibdata1: size") for p in problems)
    assert "keys/fernet-keys/0: mode 644, expected 600" in problems
    assert "stray: not in the manifest" in problems


def test_list_is_oldest_first_and_find_takes_the_latest(tmp_path) -> None:
    make_backup(tmp_path, "lab-b2", "2026-11-30T02:00:00Z")
    make_backup(tmp_path, "lab-b1", "2026-11-30T01:00:00Z")
    assert [m.id for m in list_backups(tmp_path)] == ["lab-b1", "lab-b2"]
    path, latest = find_backup(tmp_path, None)
    assert latest.id == "lab-b2" and path == tmp_path / "lab-b2"


def test_an_unknown_backup_id_is_bad_input_naming_it(tmp_path) -> None:
    make_backup(tmp_path)
    with pytest.raises(InputError) as error:
        find_backup(tmp_path, "lab-nope")
    assert error.value.exit_code == 2
    assert "'lab-nope'" in str(error.value) and "lab-b1" in str(error.value)
    with pytest.raises(InputError, match="backup id"):
        find_backup(tmp_path, "../etc")


def test_a_manifest_of_another_shape_is_bad_input(tmp_path) -> None:
    directory, _ = make_backup(tmp_path)
    (directory / MANIFEST).write_text(json.dumps({"format": "other"}))
    with pytest.raises(InputError, match="format"):
        read_manifest(directory)


def test_galera_positions_are_read_from_the_playbook_output_never_guessed() -> None:
    from lifecycle.drivers.galera_positions import TASK, positions_from_results

    printed = {
        "node": "ctl-0",
        "uuid": UUID,
        "seqno": -1,
        "safe_to_bootstrap": False,
        "recovered": 1234,
        "state": None,
        "has_data": True,
    }
    hosts = {
        "ctl-0": {TASK: {"msg": json.dumps(printed)}},
        "ctl-1": {"unreachable": "no route"},
        "ctl-2": {TASK: {"msg": "not json"}},
    }
    ctl0, ctl1, ctl2 = positions_from_results(hosts, ("ctl-0", "ctl-1", "ctl-2"))
    assert (ctl0.uuid, ctl0.seqno, ctl0.recovered, ctl0.position) == (UUID, -1, 1234, 1234)
    assert ctl0.safe_to_bootstrap is False and ctl0.has_data is True
    for unknown in (ctl1, ctl2):
        assert unknown.position is None and unknown.has_data is None and unknown.uuid is None
