"""The documentation's examples run, and its links lead somewhere inside the repository.

A fenced ```sh block in docs/*.md preceded by the marker `<!-- runnable -->` (or
`<!-- runnable: exit=N -->`) is run here, line by line, in a fresh copy of `inventories/` with a
private state directory: each `lifecycle ...` line through `python -m lifecycle` with this checkout
first on the path, and must exit 0 (or N). Besides `lifecycle`, only `chmod` may appear (git keeps
no file modes, so the docs tell operators to make secrets files private). Keep the runnable set
small: plan, validate, verify, graph and short simulated runs (`--sim-scale 0.001`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
README = ROOT / "README.md"

_RUNNABLE = re.compile(
    r"<!--\s*runnable(?::\s*exit=(?P<exit>\d+))?\s*-->\s*\n```sh\n(?P<body>.*?)^```",
    re.DOTALL | re.MULTILINE,
)
_SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.DOTALL | re.MULTILINE)
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://([^/\s:'\"`)\]]+)", re.IGNORECASE)
_ALLOWED = ("lifecycle", "chmod")


@dataclass(frozen=True)
class Example:
    page: str
    line: int
    expected: int
    commands: tuple[tuple[str, ...], ...]


def runnable_examples() -> list[Example]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in _RUNNABLE.finditer(text):
            commands = tuple(
                tuple(words)
                for raw in match.group("body").splitlines()
                if (words := shlex.split(raw, comments=True))
            )
            line = text.count("\n", 0, match.start()) + 1
            found.append(Example(page.name, line, int(match.group("exit") or 0), commands))
    return found


EXAMPLES = runnable_examples()


def _run(words: tuple[str, ...], workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    if words[0] == "lifecycle":
        argv = [sys.executable, "-m", "lifecycle", *words[1:]]
    else:
        argv = list(words)
    return subprocess.run(
        argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e.page}:{e.line}" for e in EXAMPLES])
def test_runnable_example(example: Example, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "inventories", tmp_path / "inventories")
    for secrets in (tmp_path / "inventories").glob("*/secrets.yaml"):
        secrets.chmod(0o600)  # as after the docs' own `chmod 600`; git does not keep it
    env = dict(os.environ, LIFECYCLE_STATE_DIR=str(tmp_path / "state"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("LIFECYCLE_SIM_FAULTS", None)
    for words in example.commands:
        assert words[0] in _ALLOWED, f"{example.page}:{example.line}: cannot run {words[0]!r}"
        done = _run(words, tmp_path, env)
        assert done.returncode == example.expected, (
            f"{example.page}:{example.line}: `{shlex.join(words)}` exited {done.returncode},"
            f" the docs say {example.expected}\n--- stdout\n{done.stdout[-2000:]}"
            f"\n--- stderr\n{done.stderr[-2000:]}"
        )


def test_the_runnable_set_covers_the_first_commands_an_operator_types() -> None:
    commands = {" ".join(words[:3]) for e in EXAMPLES for words in e.commands}
    for wanted in (
        "lifecycle validate --inventory",
        "lifecycle plan upgrade",
        "lifecycle plan verify",
        "lifecycle graph --inventory",
        "lifecycle run upgrade",
    ):
        assert wanted in commands, f"no runnable example of `{wanted}`"
    assert any(e.expected != 0 for e in EXAMPLES), "no example of a refusal's exit status"


def _sh_lines(path: Path) -> list[str]:
    return [
        line
        for block in _SH_BLOCK.findall(path.read_text(encoding="utf-8"))
        for line in block.splitlines()
    ]


@pytest.mark.parametrize("path", [*PAGES, README], ids=lambda p: p.name)
def test_every_run_example_names_its_driver(path: Path) -> None:
    """`run` has no default driver: an example without --driver would fail, or worse."""
    for line in _sh_lines(path):
        if re.search(r"\blifecycle run (upgrade|plan|scale-out)\b", line):
            assert "--driver" in line, f"{path.name}: {line.strip()}"


@pytest.mark.parametrize("path", [*PAGES, README], ids=lambda p: p.name)
def test_relative_links_resolve_inside_the_repository(path: Path) -> None:
    for target in _LINK.findall(path.read_text(encoding="utf-8")):
        assert "://" not in target and not target.startswith("mailto:"), (
            f"{path.name} links outside the repository: {target}"
        )
        file = target.split("#", 1)[0]
        if not file:
            continue  # an anchor on the same page (mkdocs --strict checks those)
        resolved = (path.parent / file).resolve()
        assert resolved.is_relative_to(ROOT), f"{path.name}: {target} leaves the repository"
        assert resolved.exists(), f"{path.name}: {target} does not exist"


def _local(host: str) -> bool:
    if host == "localhost" or host.isupper():  # `http://HOST:8989/v2` is a placeholder
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_docs_name_no_address_outside_the_machine(path: Path) -> None:
    """Upstream projects' docs are named by name only: nothing in docs/ points outside."""
    for host in _URL.findall(path.read_text(encoding="utf-8")):
        assert _local(host), f"{path.name} points outside the repository: {host}"


def test_the_docs_build_without_warnings(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the `docs` extra is not installed")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
