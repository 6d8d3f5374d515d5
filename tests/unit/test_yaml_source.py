"""The event-stream fast path of yaml_source builds the same data as PyYAML's SafeLoader, and
still finds the line of a field when a problem is reported."""

from __future__ import annotations

import pytest
import yaml

from lifecycle.errors import InventoryError
from lifecycle.formats.yaml_source import Reader, parse_text

DOCUMENTS = [
    "a: 1",
    "a: yes\nb: No\nc: ~\nd: null\ne: 0x1F\nf: 1_000\ng: 1:20\nh: .inf\ni: -.NaN\nj: 2.5e3",
    "k: '1'\nl: \"x\\ty\"\nm: 0o17\nn: 017\no: +12\np: -0\nq: ON\nr: off\ns: Y",
    "",
    "---\n",
    "- a\n- [1, 2, {b: c}]\n",
    "a: &x [1]\nb: *x",
    "a: !!str 1",
    "<<: {a: 1}\nb: 2",
    "a: 2001-12-14",
    "a: |\n  text\n  more\n",
    "a: >-\n  folded\n",
    "1: a\ntrue: b",
    "a:\n  - b: 1\n    c: 2\n  -\n  - ''",
    "\ufeffa: 1",
    "release: 2023.1\nname: 10.0.0.1",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_same_data_as_safe_loader(text: str) -> None:
    assert parse_text(text, "f.yaml").data == yaml.load(text, Loader=yaml.SafeLoader)


@pytest.mark.parametrize(
    ("text", "line"),
    [("a: 1\na: 2\n", 2), ("a: [\n", 2), ("--- 1\n--- 2\n", 2), ("? [a]\n: b\n", 1)],
)
def test_errors_keep_their_line(text: str, line: int | None) -> None:
    with pytest.raises(InventoryError) as caught:
        parse_text(text, "f.yaml")
    assert caught.value.problems[0].line == line


def test_lines_are_found_when_a_problem_asks() -> None:
    source = parse_text("cluster: x\nnodes:\n  - name: a\n  - name: b\n    role: 3\n", "c.yaml")
    reader = Reader(source)
    reader.string("nodes[1].role", source.data["nodes"][1]["role"])
    with pytest.raises(InventoryError) as caught:
        reader.raise_if_any()
    problem = caught.value.problems[0]
    assert (problem.file, problem.line, problem.field) == ("c.yaml", 5, "nodes[1].role")
