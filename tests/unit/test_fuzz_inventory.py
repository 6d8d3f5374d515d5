"""Random YAML documents and random mutations of the demo inventory never raise anything but
InputError (no traceback reaches an operator)."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.catalog import load_catalog
from lifecycle.errors import InputError
from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.nodes_file import load_nodes_file
from lifecycle.formats.secrets import load_secrets
from lifecycle.formats.tripleo import load_baremetal_deployment, load_roles_data
from lifecycle.model.topology import build_topology, check_acyclic

DEMO = Path(__file__).resolve().parents[2] / "tests" / "data" / "demo-train"
DEMO_DATA: dict[str, Any] = yaml.safe_load((DEMO / "cluster.yaml").read_text())
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
FUZZ = settings(
    max_examples=int(os.environ.get("LIFECYCLE_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

KEYS = st.sampled_from(
    ["cluster", "release", "roles", "nodes", "policies", "credentials", "services", "name",
     "role", "address", "bmc", "driver", "max_unavailable", "aggregates", "canary", "nodes_file",
     "roles_data", "role_file", "baremetal_deployment", "count", "instances", "x", "pm_type",
     "pm_addr", "mac", "capabilities", "ServicesDefault", "hostname", "networks", "fixed_ip"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True),
    st.text(max_size=20), st.sampled_from(["train", "wallaby", "25%", "150%", "ctl-0",
    "Controller", "nova-compute", "198.18.0.11", "secrets.yaml", "redfish", "live-migrate",
    "OS::TripleO::Services::Keystone", "ctlplane", "profile:compute-ssd", "52:54:00:00:00:01"]),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=8)), inner, max_size=4),
    ),
    max_leaves=20,
)


def dump(data: object) -> str:
    return yaml.dump(data, Dumper=DUMPER)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        path = Path(name)
        shutil.copy(DEMO / "secrets.yaml", path / "secrets.yaml")
        (path / "secrets.yaml").chmod(0o600)
        yield path


def check(path: Path) -> None:
    """Everything `lifecycle validate` does; only InputError may come out."""
    try:
        cluster = load_inventory(path)
        load_secrets(cluster)
        check_acyclic(build_topology(cluster, load_catalog()))
    except InputError as exc:
        assert exc.exit_code == 2 and exc.problems
        for problem in exc.problems:
            assert problem.file and problem.expected


@FUZZ
@given(document=VALUES)
def test_random_documents(workdir: Path, document: object) -> None:
    (workdir / "cluster.yaml").write_text(dump(document))
    check(workdir)
    check_imports(workdir / "cluster.yaml")


@FUZZ
@given(text=st.text(max_size=200))
def test_random_text(workdir: Path, text: str) -> None:
    (workdir / "cluster.yaml").write_text(text)
    check(workdir)
    check_imports(workdir / "cluster.yaml")


def check_imports(path: Path) -> None:
    """The nodes-file and TripleO importers, on the same input: only InputError may come out."""
    for load in (load_nodes_file, load_baremetal_deployment):
        with contextlib.suppress(InputError):
            load(path)
    with contextlib.suppress(InputError):
        load_roles_data(path, load_catalog())


PATHS = st.lists(st.one_of(KEYS, st.integers(0, 12)), min_size=1, max_size=4)


def mutate(data: Any, path: list[Any], value: Any, delete: bool) -> Any:
    """Replace (or delete) what `path` points at, as far as the path exists."""
    node = data
    for step in path[:-1]:
        nxt = _child(node, step)
        if nxt is None:
            break
        node = nxt
    last = path[-1]
    if isinstance(node, dict):
        key = last if not isinstance(last, int) else (list(node) or ["x"])[last % max(len(node), 1)]
        if delete:
            node.pop(key, None)
        else:
            node[key] = value
    elif isinstance(node, list) and node:
        index = last % len(node) if isinstance(last, int) else 0
        if delete:
            node.pop(index)
        else:
            node[index] = value
    return data


def _child(node: Any, step: Any) -> Any:
    if isinstance(node, dict):
        if isinstance(step, int):
            keys = list(node)
            return node[keys[step % len(keys)]] if keys else None
        return node.get(step)
    if isinstance(node, list) and node:
        return node[step % len(node)] if isinstance(step, int) else node[0]
    return None


@FUZZ
@given(
    edits=st.lists(st.tuples(PATHS, VALUES, st.booleans()), min_size=1, max_size=3),
)
def test_mutations_of_the_demo_inventory(workdir: Path, edits: list[Any]) -> None:
    data = copy.deepcopy(DEMO_DATA)
    for path, value, delete in edits:
        data = mutate(data, path, value, delete)
    (workdir / "cluster.yaml").write_text(dump(data))
    check(workdir)


@FUZZ
@given(cut=st.integers(0, 3000), junk=st.text(max_size=5))
def test_text_mutations_of_the_demo_inventory(workdir: Path, cut: int, junk: str) -> None:
    text = (DEMO / "cluster.yaml").read_text()
    cut %= len(text)
    (workdir / "cluster.yaml").write_text(text[:cut] + junk + text[cut + len(junk) :])
    check(workdir)


def test_yaml_bomb_is_refused_or_loaded_quickly(workdir: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefghij":
        prev = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{prev}"] * 10) + "]\n"
    (workdir / "cluster.yaml").write_text(bomb)
    with pytest.raises(InputError, match="unknown key"):
        load_inventory(workdir)
