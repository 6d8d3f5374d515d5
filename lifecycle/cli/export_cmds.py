"""`lifecycle export mistral ...`: write a plan as a Mistral v2 workbook."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from lifecycle.cli.complete import complete_ceph_release, complete_release
from lifecycle.cli.run_cmds import DRIVERS, choose_driver
from lifecycle.errors import UsageError

if TYPE_CHECKING:
    from lifecycle.model.cluster import Cluster
    from lifecycle.planning.plan import Plan


@click.group("export")
def export_group() -> None:
    """Write plans in other systems' formats."""


def _load_plan(plan_file: str, cluster: Cluster) -> Plan:
    from lifecycle.formats.plan_check import check_plan
    from lifecycle.formats.plan_json import load_plan_file

    plan = load_plan_file(plan_file)
    check_plan(plan, cluster, plan_file)
    return plan


@export_group.command("mistral")
@click.option("--inventory", "-i", required=True, help="cluster directory or cluster.yaml")
@click.option(
    "--to",
    "target",
    shell_complete=complete_release,
    help="OpenStack release to upgrade to (plans an upgrade)",
)
@click.option(
    "--ceph-to", "ceph_target", shell_complete=complete_ceph_release, help="Ceph release too"
)
@click.option("--plan", "plan_file", help="export this plan JSON instead of planning an upgrade")
@click.option(
    "--driver",
    type=click.Choice(DRIVERS),
    help="driver mode of the workflow, as for `lifecycle run` (an execution's input may"
    " override it); default: `driver:` in cluster.yaml, else an error",
)
@click.option(
    "--executor-inventory",
    help="the inventory path as Mistral's executors see it (default: --inventory, absolute)",
)
@click.option("--output", "-o", required=True, help="workbook file to write, or - for stdout")
@click.option("--force", is_flag=True, help="export a plan the safety verifier refuses")
def export_mistral(
    inventory: str,
    target: str | None,
    ceph_target: str | None,
    plan_file: str | None,
    driver: str | None,
    executor_inventory: str | None,
    output: str,
    force: bool,
) -> None:
    """Export an upgrade plan (or any plan JSON) as a Mistral workbook."""
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.mistral.export import export_plan
    from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
    from lifecycle.planning.verifier import check_safe

    if (target is None) == (plan_file is None):
        raise UsageError.at("command line", "--to / --plan", "exactly one of --to and --plan")
    cluster = load_inventory(inventory)
    driver = choose_driver(driver, cluster)  # the same rule as `lifecycle run`
    if plan_file:
        plan = _load_plan(plan_file, cluster)
    else:
        plan = plan_upgrade(cluster, UpgradeIntent(str(target), ceph_target))
    for violation in check_safe(plan, cluster, force=force):
        click.echo(f"warning: --force overrides: {violation}", err=True)
    where = executor_inventory or str(Path(inventory).resolve())
    text = export_plan(plan, inventory=where, drivers=driver)
    if output == "-":
        click.echo(text, nl=False)
        return
    try:
        Path(output).write_text(text)
    except OSError as exc:
        raise UsageError.at(output, "", f"cannot write: {exc.strerror}") from exc
    sim = " (SIMULATED: its runs touch nothing)" if driver == "sim" else ""
    click.echo(
        f"wrote {output}: {len(plan.steps)} tasks, plan {plan.digest}, driver {driver}{sim}",
        err=True,
    )


COMMANDS: list[click.Command] = [export_group]
