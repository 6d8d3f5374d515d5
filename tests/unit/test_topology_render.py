"""`lifecycle graph`: failure domains as boxes, a legend of the arrows, the file's format."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lifecycle.catalog import load_catalog
from lifecycle.cli.main import main
from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.topology_render import ARROWS, render, to_graph

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab"
DEMO = ROOT / "tests" / "data" / "demo-train"
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-"}


def _block(source: str, name: str) -> str:
    """The body of `subgraph NAME { ... }` in dot text (braces matched)."""
    start = source.index(f"subgraph {name} {{") + len(f"subgraph {name} {{")
    depth = 1
    for index in range(start, len(source)):
        depth += {"{": 1, "}": -1}.get(source[index], 0)
        if depth == 0:
            return source[start:index]
    raise AssertionError(f"{name} not closed")


def test_failure_domains_are_boxes_holding_their_hosts_by_role() -> None:
    cluster = load_inventory(LAB)
    source = to_graph(cluster, load_catalog()).source
    boxes = {
        re.search(r'label="failure domain (\w+)', _block(source, name)).group(1): name  # type: ignore[union-attr]
        for name in ("cluster_domain_0", "cluster_domain_1")
    }
    assert set(boxes) == {"rack1", "rack2"} and "cluster_domain_2" not in source
    for node in cluster.nodes:
        for domain, name in boxes.items():
            declared = f'"host.{node.name}" [label=' in _block(source, name)
            assert declared == (domain == node.failure_domain), node.name
    # one membership arrow per (failure domain, role) box, ending on the box (lhead)
    pairs = {(n.failure_domain, n.role) for n in cluster.nodes}
    assert source.count("lhead=cluster_domain_") == len(pairs)


def test_dependency_arrows_follow_the_catalog_and_the_legend_explains_both_kinds() -> None:
    cluster = load_inventory(DEMO)
    catalog = load_catalog()
    source = to_graph(cluster, catalog).source
    nova = catalog.services.get("nova-compute")
    assert nova is not None
    for dep in nova.depends_on:
        if dep in cluster.members:
            assert f'"service.{dep}" -> "service.nova-compute" [dir=back]' in source
    for style, meaning in ARROWS.values():
        assert meaning in source and f"style={style}" in source
    assert "subgraph cluster_legend" in source


@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_graph_files_start_with_their_formats_magic_bytes(tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"demo.{fmt}"
    assert main(["graph", "-i", str(DEMO), "-o", str(target)]) == 0
    data = target.read_bytes()
    if fmt == "svg":
        assert data.startswith(b"<?xml") and b"<svg" in data[:500]
        assert b"failure domain" in data
    else:
        assert data.startswith(MAGIC[fmt])


def test_graph_without_suffix_is_svg_and_an_unknown_suffix_is_exit_2(tmp_path, capsys) -> None:
    assert main(["graph", "-i", str(DEMO), "-o", str(tmp_path / "demo")]) == 0
    assert b"<svg" in (tmp_path / "demo").read_bytes()[:500]
    assert main(["graph", "-i", str(DEMO), "-o", str(tmp_path / "demo.jpg")]) == 2
    assert "not .jpg" in capsys.readouterr().err
    assert not (tmp_path / "demo.jpg").exists()
    assert main(["graph", "-i", str(DEMO), "-o", str(tmp_path / "x.gv")]) == 0
    assert (tmp_path / "x.gv").read_text().startswith("digraph demo")


def test_dot_text_and_svg_are_the_same_for_the_same_inventory() -> None:
    cluster = load_inventory(DEMO)
    catalog = load_catalog()
    assert render(cluster, catalog, "svg") == render(cluster, catalog, "svg")
