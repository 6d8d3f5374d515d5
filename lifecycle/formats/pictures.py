"""Picture files: which format a file name asks for, and where the pages of several charts go.

SVG is the default (a name without a suffix); `.png` and `.pdf` give those formats; any other
suffix is an operator's mistake (exit 2), not a silent SVG under a misleading name.
"""

from __future__ import annotations

import os
from pathlib import Path

from lifecycle.errors import UsageError

PICTURE_FORMATS = ("svg", "png", "pdf")


def picture_format(path: str, option: str, extra: tuple[str, ...] = ()) -> str:
    """ "svg", "png" or "pdf" (or one of `extra`, e.g. "dot") from the file name's suffix.

    Raises UsageError naming `option` for a suffix outside those."""
    suffix = Path(path).suffix.lower().removeprefix(".")
    if not suffix:
        return "svg"
    if suffix == "gv" and "dot" in extra:
        return "dot"
    if suffix in PICTURE_FORMATS + extra:
        return suffix
    known = ", ".join(f".{name}" for name in PICTURE_FORMATS + extra)
    raise UsageError.at(path, option, f"a file name ending in {known} (not .{suffix})")


def page_paths(path: str, names: list[str]) -> list[Path]:
    """One file per page for formats of one page (SVG, PNG): `plan.png` with pages ussuri and
    victoria gives `plan-1-ussuri.png`, `plan-2-victoria.png`; a single page keeps the name."""
    target = Path(path)
    if len(names) == 1:
        return [target]
    return [
        target.with_name(f"{target.stem}-{index}-{name}{target.suffix}")
        for index, name in enumerate(names, start=1)
    ]


def check_writable(path: str, option: str) -> None:
    """Raise UsageError (exit 2) naming `option` unless a file can be made at `path`: its
    directory exists and is writable, and `path` is not a directory. Checked before anything is
    printed, so that a typo does not cost the whole output."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise UsageError.at(path, option, "a file name (it is a directory)")
    if not folder.is_dir():
        raise UsageError.at(
            path, option, f"a file in an existing directory ({folder} does not exist)"
        )
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UsageError.at(path, option, f"a writable file (no write permission in {folder})")
