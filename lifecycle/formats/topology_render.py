"""Pictures of a cluster's topology: SVG in pure Python, or Graphviz dot text.

The SVG has two parts. Above, the services the cluster runs, in layers by dependency depth
(a service sits one layer below the deepest service it depends on), coloured by tier, with an
arrow from each service to what it depends on and its instance count. Below, the nodes as
columns grouped by role, with address, failure domain and aggregate.
"""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import escape

import networkx as nx

from lifecycle.catalog import Catalog
from lifecycle.model import Cluster
from lifecycle.model.topology import DEPENDS_ON

TIER_COLOURS = {
    "infra": "#f4d03f",
    "control": "#85c1e9",
    "data": "#82e0aa",
    "storage": "#d7bde2",
    "unknown": "#e5e7e9",
}
BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 176, 34, 16, 46, 20
NODE_W, NODE_H, PER_ROW = 120, 52, 8


def _depths(cluster: Cluster, catalog: Catalog) -> dict[str, int]:
    present = set(cluster.members)
    graph: nx.DiGraph = nx.DiGraph()
    graph.add_nodes_from(present)
    for service in present:
        spec = catalog.services.get(service)
        for dep in spec.depends_on if spec else ():
            if dep in present:
                graph.add_edge(dep, service)
    depth: dict[str, int] = {}
    for service in nx.topological_sort(graph):
        depth[service] = max((depth[p] + 1 for p in graph.predecessors(service)), default=0)
    return depth


def _tier(catalog: Catalog, service: str) -> str:
    spec = catalog.services.get(service)
    return spec.tier.label if spec else "unknown"


def to_svg(cluster: Cluster, catalog: Catalog) -> str:
    """An SVG picture of the cluster's services (layered by dependency) and nodes (by role)."""
    depth = _depths(cluster, catalog)
    layers: dict[int, list[str]] = {}
    for service in sorted(depth, key=lambda s: (_tier(catalog, s), s)):
        layers.setdefault(depth[service], []).append(service)
    widest = max((len(v) for v in layers.values()), default=1)
    width = max(widest * (BOX_W + GAP_X), PER_ROW * (NODE_W + 8)) + 2 * MARGIN
    where: dict[str, tuple[float, float]] = {}
    parts: list[str] = []
    y = MARGIN + 30.0
    for level in sorted(layers):
        row = layers[level]
        x = MARGIN + (width - 2 * MARGIN - len(row) * (BOX_W + GAP_X)) / 2
        for service in row:
            where[service] = (x, y)
            x += BOX_W + GAP_X
        y += BOX_H + GAP_Y
    parts += _edges(cluster, catalog, where)
    for service, (x, sy) in where.items():
        count = len(cluster.members[service])
        parts.append(_box(x, sy, BOX_W, BOX_H, TIER_COLOURS[_tier(catalog, service)],
                          [f"{service} ({count})"]))  # fmt: skip
    y += 20
    parts.append(_text(MARGIN, y, f"Nodes of {cluster.name} by role", bold=True))
    y += 16
    node_parts, y = _node_rows(cluster, y, width)
    parts += node_parts
    height = y + 20
    title = f"{cluster.name}: {len(cluster.nodes)} nodes, release {cluster.release}"
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}"'
            f' viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="11">',
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6"'
            ' markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#566573"/>'
            "</marker></defs>",
            '<rect width="100%" height="100%" fill="white"/>',
            _text(MARGIN, MARGIN + 8, title, bold=True),
            *_legend(width),
            *parts,
            "</svg>",
        ]
    )


def _edges(cluster: Cluster, catalog: Catalog, where: dict[str, tuple[float, float]]) -> list[str]:
    out = []
    for service, (x, y) in where.items():
        spec = catalog.services.get(service)
        for dep in spec.depends_on if spec else ():
            if dep not in where:
                continue
            dx, dy = where[dep]
            out.append(
                f'<line x1="{x + BOX_W / 2:.0f}" y1="{y:.0f}" x2="{dx + BOX_W / 2:.0f}"'
                f' y2="{dy + BOX_H:.0f}" stroke="#566573" stroke-opacity="0.6"'
                ' marker-end="url(#arrow)"/>'
            )
    return out


def _node_rows(cluster: Cluster, y: float, width: float) -> tuple[list[str], float]:
    """One band per role, its nodes left to right, wrapping at the picture's width."""
    out = []
    per_row = max(1, int((width - 2 * MARGIN) // (NODE_W + 8)))
    for role in cluster.roles:
        members = [n for n in cluster.nodes if n.role == role.name]
        if not members:
            continue
        label = role.name + (f" (aggregate {role.aggregate})" if role.aggregate else "")
        out.append(_text(MARGIN, y + 12, f"{label}: {len(members)} nodes", bold=True))
        y += 20
        for index, node in enumerate(members):
            if index and index % per_row == 0:
                y += NODE_H + 8
            lines = [node.name, node.address or "no address", node.failure_domain]
            x = MARGIN + (index % per_row) * (NODE_W + 8)
            out.append(_box(x, y, NODE_W, NODE_H, "#fbfcfc", lines))
        y += NODE_H + 16
    return out, y


def _legend(width: float) -> list[str]:
    out = []
    x = width - MARGIN - len(TIER_COLOURS) * 80
    for tier, colour in TIER_COLOURS.items():
        out.append(_box(x, MARGIN, 72, 18, colour, [tier]))
        x += 80
    return out


def _box(x: float, y: float, w: float, h: float, fill: str, lines: list[str]) -> str:
    texts = []
    step = h / (len(lines) + 1)
    for i, line in enumerate(lines):
        ty = y + step * (i + 1) + 4
        texts.append(
            f'<text x="{x + w / 2:.0f}" y="{ty:.0f}" text-anchor="middle">{escape(line)}</text>'
        )
    return (
        f'<g><rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="4" fill="{fill}"'
        f' stroke="#2c3e50"/>{"".join(texts)}</g>'
    )


def _text(x: float, y: float, text: str, bold: bool = False) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return f'<text x="{x:.0f}" y="{y:.0f}"{weight}>{escape(text)}</text>'


def to_dot(graph: nx.DiGraph) -> str:
    """Graphviz dot text of a topology graph: one cluster box per node holding its instances."""
    lines = [f'digraph "{_q(str(graph.graph.get("cluster", "cluster")))}" {{', "  rankdir=LR;"]
    nodes = [v for v, data in graph.nodes(data=True) if data.get("kind") == "node"]
    for index, node in enumerate(nodes):
        data = graph.nodes[node]
        lines.append(f'  subgraph "cluster_{index}" {{')
        lines.append(f'    label="{_q(node)} ({_q(str(data.get("role")))})";')
        for inst in sorted(graph.predecessors(node)):
            tier = graph.nodes[inst].get("tier", "unknown")
            colour = TIER_COLOURS.get(tier, TIER_COLOURS["unknown"])
            lines.append(f'    "{_q(inst)}" [shape=box style=filled fillcolor="{colour}"];')
        lines.append("  }")
    lines += _dot_edges(graph.edges(data=True))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_edges(edges: Iterable[tuple[str, str, dict[str, object]]]) -> list[str]:
    return [f'  "{_q(u)}" -> "{_q(v)}";' for u, v, data in edges if data.get("kind") == DEPENDS_ON]


def _q(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
