"""`lifecycle validate` and `lifecycle graph`: check an inventory, draw its topology."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lifecycle.cli.output import emit_show, output_options
from lifecycle.cli.preflight_out import finding_line
from lifecycle.errors import UsageError

if TYPE_CHECKING:
    from lifecycle.formats.secrets import Secrets
    from lifecycle.model import Cluster

INVENTORY = click.option(
    "--inventory", "-i", required=True, help="cluster directory or its cluster.yaml"
)


def validation_warnings(cluster: Cluster, secrets: Secrets) -> list[str]:
    """Everything `validate` warns about: allowed, but doubtful or bound to fail later."""
    from lifecycle.formats.inventory import inventory_warnings
    from lifecycle.formats.secret_checks import secrets_warnings

    return inventory_warnings(cluster) + secrets_warnings(cluster, secrets)


def summary(cluster: Cluster, secrets: Secrets, warnings: list[str]) -> dict[str, Any]:
    """The inventory in numbers, as `validate -f json|yaml|table` shows it."""
    from lifecycle.cli.preflight_out import validate_findings

    roles = Counter(node.role for node in cluster.nodes)
    aggregates = Counter(cluster.aggregate_of(n) for n in cluster.nodes if cluster.aggregate_of(n))
    role_lines = []
    for role in cluster.roles:
        extra = "".join(
            f", {label} {value}"
            for label, value in (("aggregate", role.aggregate), ("profile", role.profile))
            if value
        )
        role_lines.append(
            f"{role.name}: {_n(roles[role.name], 'node')}, {_n(len(role.services), 'service')}"
            f"{extra}"
        )
    return {
        "cluster": cluster.name,
        "release": cluster.release,
        "ceph_release": cluster.ceph_release,
        "driver": cluster.driver,
        "source": cluster.source,
        "roles": role_lines,
        "nodes": len(cluster.nodes),
        "services": len(cluster.members),
        "instances": sum(len(nodes) for nodes in cluster.members.values()),
        "aggregates": {name: count for name, count in sorted(aggregates.items())},
        "credentials": len(secrets),
        "warnings": warnings,
        # what an upgrade of this inventory would meet (lifecycle.planning.preflight)
        "findings": validate_findings(cluster),
    }


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _text(data: dict[str, Any]) -> None:
    ceph = f", ceph {data['ceph_release']}" if data["ceph_release"] else ""
    click.echo(f"cluster {data['cluster']}: release {data['release']}{ceph}, {data['source']}")
    click.echo(f"  driver: {data['driver'] or 'none (lifecycle run needs --driver)'}")
    click.echo(f"  roles ({len(data['roles'])}):")
    for line in data["roles"]:
        click.echo(f"    {line}")
    click.echo(f"  nodes: {data['nodes']}")
    click.echo(f"  services: {data['services']} ({data['instances']} instances)")
    shown = ", ".join(f"{name} ({n} hosts)" for name, n in data["aggregates"].items())
    click.echo(f"  aggregates: {shown or 'none'}")
    click.echo(f"  credentials: {data['credentials']} entries (values never shown)")
    for warning in data["warnings"]:
        click.echo(f"  warning: {warning}")
    for finding in data["findings"]:
        click.echo(f"  {finding_line(finding)}")
    refusals = sum(1 for f in data["findings"] if f["refused"])
    warnings = len(data["warnings"]) + len(data["findings"]) - refusals
    # the inventory is valid (exit 0) even so: the refusals are of what plan and run would do
    more = f", {refusals} refusal(s) (plan and run refuse them unless --force)" if refusals else ""
    click.echo(f"ok: {warnings} warning(s){more}")


@click.command("validate")
@INVENTORY
@click.option(
    "--state-dir", help="where journals and recorded states live [env LIFECYCLE_STATE_DIR]"
)
@output_options(default="text", extra=("text",))
def validate_cmd(
    inventory: str, state_dir: str | None, fmt: str, columns_: tuple[str, ...]
) -> None:
    """Check an inventory (cluster.yaml, its imports and its secrets), summarise it, and warn
    about what would fail later (a missing SSH key, ...) and where it differs from the
    cluster's recorded state (what lifecycle's runs did: an upgraded release, new nodes)."""
    from lifecycle.catalog import load_catalog
    from lifecycle.cli.recorded_out import validate_findings
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.formats.secrets import load_secrets
    from lifecycle.model.topology import build_topology, check_acyclic

    catalog = load_catalog()
    cluster = load_inventory(inventory, catalog)
    secrets = load_secrets(cluster)
    check_acyclic(build_topology(cluster, catalog))
    warnings = validation_warnings(cluster, secrets) + validate_findings(cluster, state_dir)
    data = summary(cluster, secrets, warnings)
    if fmt.lower() == "text" and not columns_:
        _text(data)
        return
    if fmt.lower() not in ("json", "yaml"):  # a table cell, a value or csv: one line per finding
        data["findings"] = [finding_line(f) for f in data["findings"]]
    emit_show(data, "table" if fmt.lower() == "text" else fmt, columns_)


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
