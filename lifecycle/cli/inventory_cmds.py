"""`lifecycle validate` and `lifecycle graph`: check an inventory, draw its topology."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from lifecycle.errors import UsageError

INVENTORY = click.option(
    "--inventory", "-i", required=True, help="cluster directory or its cluster.yaml"
)


@click.command("validate")
@INVENTORY
def validate_cmd(inventory: str) -> None:
    """Check an inventory (cluster.yaml, its imports and its secrets) and summarise it."""
    from lifecycle.catalog import load_catalog
    from lifecycle.cli.preflight_out import validate_lines
    from lifecycle.formats.inventory import inventory_warnings, load_inventory
    from lifecycle.formats.secrets import load_secrets
    from lifecycle.model.topology import build_topology, check_acyclic

    catalog = load_catalog()
    cluster = load_inventory(inventory, catalog)
    secrets = load_secrets(cluster)
    check_acyclic(build_topology(cluster, catalog))
    roles = Counter(node.role for node in cluster.nodes)
    aggregates = Counter(cluster.aggregate_of(n) for n in cluster.nodes if cluster.aggregate_of(n))
    ceph = f", ceph {cluster.ceph_release}" if cluster.ceph_release else ""
    click.echo(f"cluster {cluster.name}: release {cluster.release}{ceph}, {cluster.source}")
    click.echo(f"  roles ({len(cluster.roles)}):")
    for role in cluster.roles:
        extra = "".join(
            f", {label} {value}"
            for label, value in (("aggregate", role.aggregate), ("profile", role.profile))
            if value
        )
        click.echo(
            f"    {role.name}: {roles[role.name]} nodes, {len(role.services)} services{extra}"
        )
    click.echo(f"  nodes: {len(cluster.nodes)}")
    instances = sum(len(nodes) for nodes in cluster.members.values())
    click.echo(f"  services: {len(cluster.members)} ({instances} instances)")
    shown = ", ".join(f"{name} ({count} hosts)" for name, count in sorted(aggregates.items()))
    click.echo(f"  aggregates: {shown or 'none'}")
    click.echo(f"  credentials: {len(secrets)} entries (values never shown)")
    warnings = inventory_warnings(cluster)
    for warning in warnings:
        click.echo(f"  warning: {warning}")
    findings, found = validate_lines(cluster)  # what an upgrade would meet (planning/preflight)
    for line in findings:
        click.echo(line)
    click.echo(f"ok: {len(warnings) + found} warning(s)")


@click.command("graph")
@INVENTORY
@click.option(
    "--output",
    "-o",
    required=True,
    help="file to write: .svg (the default), .png, .pdf, or .dot/.gv for Graphviz text",
)
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["svg", "png", "pdf", "dot"]),
    help="default: from the suffix",
)
def graph_cmd(inventory: str, output: str, fmt: str | None) -> None:
    """Draw the cluster: services by dependency, roles, hosts grouped by failure domain."""
    from lifecycle.catalog import load_catalog
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.formats.pictures import picture_format
    from lifecycle.formats.topology_render import render
    from lifecycle.model.topology import build_topology, check_acyclic

    fmt = fmt or picture_format(output, "--output", extra=("dot",))
    catalog = load_catalog()
    cluster = load_inventory(inventory, catalog)
    graph = build_topology(cluster, catalog)
    check_acyclic(graph)
    data = render(cluster, catalog, fmt)
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        raise UsageError.at(output, "--output", f"a writable file ({exc.strerror})") from exc
    click.echo(f"wrote {output} ({fmt}: {graph.number_of_nodes()} vertices)")


COMMANDS: list[click.Command] = [validate_cmd, graph_cmd]
