"""Preflight findings in the CLI: printed before a plan; refusals stop it unless --force."""

from __future__ import annotations

from typing import Any

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


def validate_findings(cluster: Cluster) -> list[dict[str, Any]]:
    """The findings of an upgrade as `validate -f json|yaml` gives them: one object per finding,
    `{"severity": "warning"|"refusal", "subject", "message", "remedy", "refused": bool}`."""
    from lifecycle.planning.preflight import preflight

    return [
        {
            "severity": f.severity.value,
            "subject": f.subject,
            "message": f.message,
            "remedy": f.remedy,
            "refused": f.refused,
        }
        for f in preflight(cluster)
    ]


def finding_line(finding: dict[str, Any]) -> str:
    """One finding of validate_findings as a line: `refusal: SUBJECT: MESSAGE; REMEDY (...)`."""
    refused = " (plan and run refuse it unless --force)" if finding["refused"] else ""
    return (
        f"{finding['severity']}: {finding['subject']}: {finding['message']}; {finding['remedy']}"
        f"{refused}"
    )
