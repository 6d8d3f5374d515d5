"""The field cases (`shared/cases`, beside the repository) as test inputs, copied so that commands
that write files and secrets that need mode 0600 work; a test that needs them skips when absent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_CANDIDATES = (ROOT.parent / "shared" / "cases", ROOT.parents[1] / "shared" / "cases")


def cases_dir() -> Path | None:
    """The field cases folder: ../shared/cases from the repository (a worktree one level deeper
    finds it one level further up), or None."""
    return next((p for p in _CANDIDATES if (p / "README.md").is_file()), None)


def copy_cases(tmp_path: Path) -> Path:
    """A writable copy of the cases folder (secrets made 0600), or skip the test."""
    found = cases_dir()
    if found is None:
        pytest.skip("field cases (../shared/cases) not present")
    dest = tmp_path / "cases"
    shutil.copytree(found, dest)
    for path in dest.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)
    return dest
