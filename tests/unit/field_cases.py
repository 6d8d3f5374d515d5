"""The field cases of ../shared/cases (next to the repository, or next to its worktree folder),
copied to a temporary folder so commands may write there; tests skip when they are absent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = (ROOT.parent / "shared" / "cases", ROOT.parent.parent / "shared" / "cases")


def case_dir(name: str, tmp_path: Path) -> Path:
    """A writable copy of cases/<name> (and of the lab it may refer to); skips when absent."""
    found = next((c for c in CANDIDATES if (c / name).is_dir()), None)
    if found is None:
        pytest.skip(f"field case {name} not found next to the repository")
    for part in {name, "lab"}:
        if (found / part).is_dir():
            shutil.copytree(found / part, tmp_path / part, dirs_exist_ok=True)
    for path in tmp_path.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)  # secrets must be 0600, copies may be 0444
    return tmp_path / name
