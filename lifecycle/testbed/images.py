"""The testbed's release "images": one virtualenv per OpenStack release (Keystone, Placement,
gunicorn, installed with that release's upper-constraints), built once and cached.

Where: env LIFECYCLE_IMAGES, else ${LIFECYCLE_CACHE:-/var/cache/lifecycle}/images, one
`openstack-<release>` directory per release.

Cache rule: an image is reused when its stamp file (`.lifecycle-image.json`) records the same
constraints sha256, package list and Python; otherwise it is rebuilt. A build goes into a temp
directory beside the image and is renamed into place only when complete, so a crash never leaves
a half image under the final name. Virtualenv scripts carry their interpreter's absolute path in
their `#!` line, so the temp path is rewritten to the final one before the rename.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lifecycle.errors import ExecutionError, InputError, UsageError

# Each release's project versions (PyPI; the deliverables of the OpenStack release of that name).
PROJECTS: dict[str, tuple[str, ...]] = {
    "2024.1": ("keystone==25.0.0", "openstack-placement==11.0.0"),
    "2025.1": ("keystone==27.0.0", "openstack-placement==13.0.0"),
    "2026.1": ("keystone==29.0.0", "openstack-placement==15.0.0"),
}
# What serves them and their drivers; versions come from the release's upper-constraints.
SUPPORT: tuple[str, ...] = ("gunicorn", "PyMySQL", "python-memcached", "pymemcache")
# The test hosts run the machine's Python (Debian 12: 3.11).
PYTHON = "/usr/bin/python3"
STAMP = ".lifecycle-image.json"
CONSTRAINTS_DIR = Path(__file__).parent / "constraints"

Runner = Callable[[Sequence[str]], None]
"""Runs one command (argv); raises ExecutionError when it fails."""


def images_dir() -> Path:
    """The directory holding the release images (it may not exist yet)."""
    explicit = os.environ.get("LIFECYCLE_IMAGES")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("LIFECYCLE_CACHE") or "/var/cache/lifecycle") / "images"


@dataclass(frozen=True)
class ImageSpec:
    """What one release's image must contain: `packages` (pip requirement strings),
    `constraints` (the upper-constraints file) and its sha256, and the interpreter."""

    release: str
    packages: tuple[str, ...]
    constraints: Path
    constraints_sha256: str
    python: str = PYTHON

    def stamp(self) -> dict[str, object]:
        return {
            "release": self.release,
            "packages": list(self.packages),
            "constraints_sha256": self.constraints_sha256,
            "python": self.python,
        }


@dataclass(frozen=True)
class ImageResult:
    """One image after `build_image`: `state` cached (reused) or built, `size_bytes` on disk,
    `seconds` spent (wall time of this call)."""

    release: str
    path: Path
    state: Literal["cached", "built"]
    size_bytes: int
    seconds: float


def releases() -> tuple[str, ...]:
    """The releases an image can be built for, oldest first."""
    return tuple(sorted(PROJECTS))


def image_spec(
    release: str, constraints_dir: Path = CONSTRAINTS_DIR, python: str = PYTHON
) -> ImageSpec:
    """The spec of `release`'s image. InputError for a release with no packages or constraints."""
    if release not in PROJECTS:
        raise UsageError.at("--release", release, f"one of {', '.join(releases())}")
    constraints = constraints_dir / f"upper-constraints-{release}.txt"
    if not constraints.is_file():
        raise InputError.at(str(constraints), "", f"{release}'s upper-constraints file")
    digest = hashlib.sha256(constraints.read_bytes()).hexdigest()
    return ImageSpec(release, PROJECTS[release] + SUPPORT, constraints, digest, python)


def image_path(release: str, root: Path | None = None) -> Path:
    """`<root or images_dir()>/openstack-<release>`."""
    return (root or images_dir()) / f"openstack-{release}"


def is_current(path: Path, spec: ImageSpec) -> bool:
    """True when `path` holds a complete image whose stamp matches `spec`."""
    try:
        recorded = json.loads((path / STAMP).read_text())
    except (OSError, ValueError):
        return False
    return bool(recorded == spec.stamp())


def run_command(argv: Sequence[str]) -> None:
    """The real Runner: runs argv, output kept for the error; ExecutionError on failure."""
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise ExecutionError(
            f"{argv[0]} exited {done.returncode}: {' '.join(argv[:4])} ...\n" + "\n".join(tail)
        )


def build_image(
    release: str,
    root: Path | None = None,
    *,
    runner: Runner = run_command,
    spec: ImageSpec | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ImageResult:
    """Make `<root>/openstack-<release>` unless a current one is there.

    Returns the image's state, size and seconds. Errors: InputError (unknown release),
    ExecutionError (venv or pip failed; nothing is left under the image's name). Two callers
    building the same release serialise on a lock file; the second finds it cached.
    """
    started = clock()
    spec = spec or image_spec(release)
    root = root or images_dir()
    root.mkdir(parents=True, exist_ok=True)
    final = image_path(release, root)
    with _lock(root / f".openstack-{release}.lock"):
        state: Literal["cached", "built"] = "cached"
        if not is_current(final, spec):
            _build_into(final, spec, runner)
            state = "built"
    return ImageResult(release, final, state, tree_size(final), clock() - started)


def _build_into(final: Path, spec: ImageSpec, runner: Runner) -> None:
    temp = Path(tempfile.mkdtemp(prefix=f".{final.name}.build-", dir=final.parent))
    try:
        temp.chmod(0o755)  # mkdtemp's 0700 would hide the image from other users
        runner([spec.python, "-m", "venv", str(temp)])
        pip = [str(temp / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        runner([*pip, "-c", str(spec.constraints), *spec.packages])
        _relocate_scripts(temp / "bin", temp, final)
        (temp / STAMP).write_text(json.dumps(spec.stamp(), indent=1) + "\n")
        _replace(temp, final)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _relocate_scripts(bindir: Path, old: Path, new: Path) -> None:
    """Rewrite `#!<old>/bin/python` (and activate scripts' paths) to `new`."""
    old_b, new_b = str(old).encode(), str(new).encode()
    for script in bindir.iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if old_b in data[:4096] or script.name.startswith("activate"):
            script.write_bytes(data.replace(old_b, new_b))


def _replace(temp: Path, final: Path) -> None:
    """Put `temp` at `final`; a stale image is moved aside first, then removed."""
    stale: Path | None = None
    if final.exists() or final.is_symlink():
        stale = Path(tempfile.mkdtemp(prefix=f".{final.name}.stale-", dir=final.parent))
        final.rename(stale / "image")
    temp.rename(final)
    if stale is not None:
        shutil.rmtree(stale, ignore_errors=True)


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tree_size(path: Path) -> int:
    """Bytes of the regular files under `path` (symlinks not followed); 0 if absent."""
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            full = Path(directory) / name
            if not full.is_symlink():
                total += full.stat().st_size
    return total
