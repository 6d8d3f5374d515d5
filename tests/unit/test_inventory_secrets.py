"""The Secrets mapping: immutable, redacts every secret value, never shows one in its repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.errors import InventoryError
from lifecycle.formats.secrets import Secrets, read_secrets_file


def sample() -> Secrets:
    return Secrets(
        {
            "ctl-0": {"username": "admin", "password": "FAKE-pw"},
            "ctl-1": {"username": "admin", "password": "FAKE-pw-longer"},
            "ssh": {"user": "root", "private_key_file": "/keys/id"},
        }
    )


def test_mapping_and_ssh_entry() -> None:
    secrets = sample()
    assert secrets["ctl-0"] == {"username": "admin", "password": "FAKE-pw"}
    assert "ctl-1" in secrets and "ctl-9" not in secrets
    assert len(secrets) == 3 and list(secrets) == ["ctl-0", "ctl-1", "ssh"]
    assert secrets.ssh == {"user": "root", "private_key_file": "/keys/id"}
    assert Secrets().ssh is None


def test_values_and_redact_longest_first() -> None:
    secrets = sample()
    assert secrets.values() == ("FAKE-pw-longer", "FAKE-pw")
    # the longer secret is replaced whole, not left with a tail after the shorter one
    assert secrets.redact("a FAKE-pw-longer b FAKE-pw c") == "a *** b *** c"
    assert secrets.redact("no secret here, admin") == "no secret here, admin"


def test_immutable_and_discreet() -> None:
    secrets = sample()
    with pytest.raises(AttributeError):
        secrets._entries = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        secrets["ctl-0"]["password"] = "x"  # type: ignore[index]
    assert "FAKE" not in repr(secrets) and "FAKE" not in str(secrets)


def test_merged_prefers_the_other() -> None:
    merged = sample().merged(Secrets({"ctl-0": {"username": "u", "password": "FAKE-new"}}))
    assert merged["ctl-0"]["password"] == "FAKE-new"
    assert merged == merged.merged(Secrets())


def test_read_file_checks_mode_and_never_shows_values(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("credentials:\n  a: {username: u, password: [FAKE-list]}\n")
    path.chmod(0o640)
    with pytest.raises(InventoryError, match=r"mode 0600.*it is 0640; run chmod 600"):
        read_secrets_file(path)
    path.chmod(0o600)
    with pytest.raises(InventoryError) as info:
        read_secrets_file(path)
    assert "s.yaml:2: credentials.a.password: a non-empty string, got a list" in str(info.value)
    assert "FAKE-list" not in str(info.value)
