"""Pictures of a cluster's topology, laid out by Graphviz's `dot` (SVG, PNG, PDF, or dot text).

Three layers, top to bottom:
- the services the cluster runs, coloured by tier, each with its instance count; a solid arrow
  A -> B says A depends on B, so B sits above A and is upgraded first (the catalog's depends_on);
- the roles; a dashed arrow role -> service says the role's hosts run that service;
- the hosts, grouped in one box per failure domain (rack, AZ); a dotted arrow host -> role says
  the host is a member of that role. Each host shows its address and aggregate.
A legend explains the three arrows and the tier colours. `dot` routes edges around boxes.

The `graphviz` Python package builds the dot text (it quotes names) and runs `dot` (the Debian
package graphviz; scripts/lib.sh installs it), which does the layout.
"""

from __future__ import annotations

import itertools
import textwrap
from collections import Counter
from typing import TYPE_CHECKING

from lifecycle.catalog import Catalog
from lifecycle.errors import LifecycleError
from lifecycle.model import Cluster, NodeSpec

if TYPE_CHECKING:
    import graphviz

TIER_COLOURS = {
    "infra": "#f4d03f",
    "control": "#85c1e9",
    "data": "#82e0aa",
    "storage": "#d7bde2",
    "unknown": "#e5e7e9",
}
ROLE_COLOUR = "#fdebd0"
HOST_COLOUR = "#fbfcfc"
FONT = "DejaVu Sans"
ARROWS = {  # kind -> (style, what it means), shared by the edges and the legend
    "depends": ("solid", "A depends on B: B is upgraded first"),
    "member": ("dashed", "the hosts in the box are members of the role"),
}


def _tier(catalog: Catalog, service: str) -> str:
    spec = catalog.services.get(service)
    return spec.tier.label if spec else "unknown"


def _id(kind: str, name: str) -> str:
    """Vertex ids by kind, so a role and a service (or host) of the same name stay apart."""
    return f"{kind}.{name}"  # no colon: in an edge, a colon names a port


def to_graph(cluster: Cluster, catalog: Catalog) -> graphviz.Digraph:
    """The picture as a graphviz.Digraph (its `.source` is the dot text)."""
    import graphviz

    title = f"{cluster.name}: {len(cluster.nodes)} nodes, release {cluster.release}"
    dot = graphviz.Digraph(cluster.name)
    dot.attr(
        "graph",
        label=title,
        labelloc="t",
        fontname=FONT,
        fontsize="16",
        rankdir="TB",
        newrank="true",
        nodesep="0.2",
        ranksep="0.6",
        splines="spline",
        compound="true",
    )
    dot.attr("node", fontname=FONT, fontsize="10", shape="box", style="rounded,filled")
    dot.attr("edge", color="#566573", arrowsize="0.7")
    _services(dot, cluster, catalog)
    _roles(dot, cluster)
    _hosts(dot, cluster)
    _legend(dot)
    return dot


def _services(dot: graphviz.Digraph, cluster: Cluster, catalog: Catalog) -> None:
    members = cluster.members
    with dot.subgraph(name="cluster_services") as box:
        box.attr(label="services", style="rounded", color="#aab7b8", fontname=FONT)
        for service in sorted(members):
            count = len(members[service])
            tier = _tier(catalog, service)
            box.node(
                _id("service", service),
                f"{service}\n{count} instance{'s' if count != 1 else ''}",
                fillcolor=TIER_COLOURS.get(tier, TIER_COLOURS["unknown"]),
            )
        for service in sorted(members):
            spec = catalog.services.get(service)
            for dep in sorted(spec.depends_on) if spec else ():
                if dep in members:  # drawn dep -> service so that dot ranks dep above
                    box.edge(_id("service", dep), _id("service", service), dir="back")


def _roles(dot: graphviz.Digraph, cluster: Cluster) -> None:
    """One box per role, naming the services its hosts run (no edge per service: those would
    cross the whole dependency picture)."""
    sizes = Counter(node.role for node in cluster.nodes)
    with dot.subgraph(name="roles") as layer:
        layer.attr(rank="same")
        for role in cluster.roles:
            head = f"{role.name}: {sizes[role.name]} host{'s' if sizes[role.name] != 1 else ''}"
            extra = [f"aggregate {role.aggregate}"] if role.aggregate else []
            runs = textwrap.wrap("runs " + ", ".join(role.services), width=34)
            layer.node(
                _id("role", role.name),
                "\n".join([head, *extra, *runs]),
                style="filled",
                fillcolor=ROLE_COLOUR,
            )


def _hosts(dot: graphviz.Digraph, cluster: Cluster) -> None:
    """A box per failure domain holding a box per role; one membership arrow per role box
    (compound: it ends on the box's border, never through a host)."""
    groups: dict[str, dict[str, list[NodeSpec]]] = {}
    for node in cluster.nodes:
        groups.setdefault(node.failure_domain, {}).setdefault(node.role, []).append(node)
    members: list[tuple[str, str, str]] = []  # role, a host of the box, the box
    for d_index, (domain, roles) in enumerate(sorted(groups.items())):
        count = sum(len(nodes) for nodes in roles.values())
        with dot.subgraph(name=f"cluster_domain_{d_index}") as box:
            box.attr(
                label=f"failure domain {domain}: {count} host{'s' if count != 1 else ''}",
                labelloc="b",  # the top stays clear for the arrows coming in
                style="rounded,filled",
                fillcolor="#f2f3f4",
                color="#7f8c8d",
                fontname=FONT,
            )
            for r_index, (role, nodes) in enumerate(roles.items()):
                name = f"cluster_domain_{d_index}_{r_index}"
                with box.subgraph(name=name) as group:
                    group.attr(label=role, labelloc="t", style="rounded,filled", fillcolor="white")
                    for node in nodes:
                        label = f"{node.name}\n{node.address or 'no address'}"
                        group.node(_id("host", node.name), label, fillcolor=HOST_COLOUR)
                    for upper, lower in itertools.pairwise(nodes):  # a column, not a long row
                        group.edge(_id("host", upper.name), _id("host", lower.name), style="invis")
                members.append((role, nodes[0].name, name))

    for role, host, box_name in members:  # after the boxes, which declare the hosts
        dot.edge(
            _id("role", role),
            _id("host", host),
            lhead=box_name,
            dir="back",
            style=ARROWS["member"][0],
        )


def _legend(dot: graphviz.Digraph) -> None:
    """Sample arrows with their meaning, and the tier colours."""
    samples = {"depends": ("service A", "service B"), "member": ("host box", "role")}
    with dot.subgraph(name="cluster_legend") as box:
        box.attr(label="legend", style="rounded", color="#aab7b8", fontname=FONT)
        box.attr("node", fontsize="9", style="rounded", shape="box")
        previous = None
        for kind, (tail, head) in samples.items():
            style, meaning = ARROWS[kind]
            with box.subgraph(name=f"legend_{kind}") as row:
                row.attr(rank="same")
                row.node(f"legend.{kind}.tail", tail)
                row.node(f"legend.{kind}.head", head)
                row.edge(
                    f"legend.{kind}.tail",
                    f"legend.{kind}.head",
                    label=f"  {meaning}  ",
                    style=style,
                    fontname=FONT,
                    fontsize="9",
                )
            if previous:
                box.edge(previous, f"legend.{kind}.tail", style="invis")
            previous = f"legend.{kind}.tail"
        cells = "".join(
            f'<TD BGCOLOR="{colour}">{tier}</TD>' for tier, colour in TIER_COLOURS.items()
        )
        box.node(
            "legend.tiers",
            f'<<TABLE BORDER="0" CELLSPACING="2"><TR><TD>service tier:</TD>{cells}</TR></TABLE>>',
            shape="plaintext",
        )
        box.edge(str(previous), "legend.tiers", style="invis")


def render(cluster: Cluster, catalog: Catalog, fmt: str) -> bytes:
    """The picture as bytes in `fmt` ("svg", "png", "pdf" or "dot" for the dot text).

    Raises LifecycleError (exit 1) when Graphviz's `dot` program is missing."""
    import graphviz

    dot = to_graph(cluster, catalog)
    if fmt == "dot":
        return dot.source.encode()
    try:
        return bytes(dot.pipe(format=fmt))
    except graphviz.ExecutableNotFound:
        raise LifecycleError(
            "drawing needs Graphviz's `dot` program: install the Debian package graphviz "
            "(scripts/setup.sh does), or write .dot text with -o FILE.dot"
        ) from None
