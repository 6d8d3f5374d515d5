"""Preflight findings in the CLI: printed before a plan; refusals stop it unless --force."""

from __future__ import annotations

import click

from lifecycle.errors import PreflightRefused
from lifecycle.model.cluster import Cluster


def announce(cluster: Cluster, operation: str, force: bool, ceph: bool | None = None) -> list[str]:
    """Print each finding to stderr; raise PreflightRefused (exit 3) for refusals unless
    `force`, else return them as overrides (strings) for the record."""
    from lifecycle.planning.preflight import preflight, refusals

    findings = preflight(cluster, operation=operation, ceph=ceph)
    refused = refusals(findings)
    if refused and not force:
        for finding in findings:
            if not finding.refused:
                click.echo(f"warning: {finding}", err=True)
        raise PreflightRefused(refused)
    for finding in findings:
        prefix = "warning: --force overrides" if finding.refused else "warning"
        click.echo(f"{prefix}: {finding}", err=True)
    return [str(f) for f in refused]


def validate_lines(cluster: Cluster) -> list[str]:
    """`validate`'s lines for the findings of an upgrade, one per finding."""
    from lifecycle.planning.preflight import preflight

    refused = " (plan and run refuse it unless --force)"
    return [f"{f.severity.value}: {f}" + (refused if f.refused else "") for f in preflight(cluster)]
