"""`lifecycle plan ...`: make a plan, prove it safe, show it as a tree, JSON or a Gantt chart."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Any

import click

from lifecycle.cli.complete import complete_ceph_release, complete_release
from lifecycle.cli.output import emit_show, output_options
from lifecycle.cli.preflight_out import announce
from lifecycle.cli.run_cmds import DEPLOY_OPTIONS, with_options
from lifecycle.cli.status_cmds import with_observe_options
from lifecycle.errors import UnsafePlan, UsageError
from lifecycle.planning.plan import Plan


def _write(path: str, text: Iterable[str]) -> None:
    """Write the pieces of `text` as they come (a 50,000-node plan's JSON is ~30 MB)."""
    try:
        with Path(path).open("w") as out:
            out.writelines(text)
    except OSError as exc:
        raise UsageError.at(path, "", f"cannot write: {exc.strerror}") from exc


def emit_plan(
    plan: Plan,
    cluster: object,
    fmt: str,
    gantt: str | None,
    output: str | None,
    force: bool,
    start: str | None = None,
    initial: dict[str, str] | None = None,
) -> None:
    """Verify, then print or write the plan; an unsafe plan needs --force, which is reported.
    `initial`: instance -> release where the plan starts past the inventory (recorded state)."""
    from lifecycle.formats.plan_json import plan_json_chunks
    from lifecycle.planning.render import render_tree
    from lifecycle.planning.verifier import check_safe

    # a bad file name or time fails before anything is printed
    when = _gantt_inputs(gantt, start, output)
    overridden = check_safe(plan, cluster, force=force, initial=initial)  # type: ignore[arg-type]
    for violation in overridden:
        click.echo(f"warning: --force overrides: {violation}", err=True)
    if fmt == "json":
        text: Iterable[str] = chain(plan_json_chunks(plan), ["\n"])
    else:
        text = [render_tree(plan)]
    if output:
        _write(output, text)
    else:
        click.echo("".join(text), nl=False)
    if gantt:
        from lifecycle.formats.gantt_render import write_gantt
        from lifecycle.planning.gantt import gantt_charts

        for written in write_gantt(gantt_charts(plan, when), gantt):
            click.echo(f"wrote {written}", err=True)


def _gantt_inputs(gantt: str | None, start: str | None, output: str | None) -> datetime | None:
    """Check --gantt's suffix, that --gantt and --output can be written, and parse --start
    (UsageError, exit 2, when wrong). --start without --gantt is said to be ignored."""
    from lifecycle.formats.pictures import check_writable, picture_format
    from lifecycle.planning.gantt import parse_start

    if output:
        check_writable(output, "--output")
    if gantt:
        picture_format(gantt, "--gantt")
        check_writable(gantt, "--gantt")
    elif start:
        click.echo(
            "warning: --start is ignored without --gantt (it sets the chart's times)", err=True
        )
    return parse_start(start) if start else None


_common = [
    click.option("--inventory", "-i", required=True, help="cluster directory or cluster.yaml"),
    click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text"),
    click.option(
        "--gantt",
        help="write the schedule as a Gantt chart, one row per host: .svg (default), .png or "
        ".pdf; a plan of several hops gives one page per hop in a PDF, else one file per hop "
        "(plan-1-ussuri.png, plan-2-victoria.png, ...)",
    ),
    click.option(
        "--start",
        help="when the run starts (ISO 8601, e.g. 2026-12-01T22:00+01:00): the Gantt chart "
        "shows wall-clock times; without it, hours:minutes from the start",
    ),
    click.option("--output", "-o", help="write the plan to this file instead of stdout"),
    click.option("--force", is_flag=True, help="emit a plan the safety verifier refuses"),
]


def _with_common(func: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(_common):
        func = option(func)
    return func


@click.group("plan")
def plan_group() -> None:
    """Make a plan without running it."""


@plan_group.command("upgrade")
@click.option(
    "--to",
    "target",
    required=True,
    shell_complete=complete_release,
    help="OpenStack release to reach (name or code name, any case)",
)
@click.option(
    "--ceph-to", "ceph_target", shell_complete=complete_ceph_release, help="Ceph release too"
)
@_with_common
@with_observe_options
def plan_upgrade_cmd(
    inventory: str,
    target: str,
    ceph_target: str | None,
    fmt: str,
    gantt: str | None,
    start: str | None,
    output: str | None,
    force: bool,
    **observing: Any,
) -> None:
    """Plan a rolling upgrade of the cluster to a release (several hops if needed).

    Work a previous run recorded as done (the cluster's recorded state in the state directory)
    is not planned again: after an aborted run this plans only what is left; after a finished
    one it says there is nothing to do."""
    from lifecycle.cli import recorded_out
    from lifecycle.cli.status_cmds import observed_input
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.planning.observed import verification_view
    from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade

    cluster = load_inventory(inventory)
    announce(cluster, "upgrade", force, ceph=bool(ceph_target))  # refuses (exit 3) unless --force
    observed = observed_input(cluster, **observing)
    in_place = recorded_out.in_place_intent(observing.get("state_dir"), cluster, observed)
    wanted = UpgradeIntent(target, ceph_target)
    done = recorded_out.in_place_of(in_place)
    full = plan_upgrade(cluster, wanted, observed=observed, force=force, in_place=done)
    plan = recorded_out.what_is_left(full, in_place)
    if plan is None:
        click.echo(recorded_out.nothing_to_do(full, in_place or {}))
        return
    recorded_out.announce_left(full, plan, in_place)
    initial = recorded_out.initial(in_place)
    emit_plan(plan, verification_view(cluster, plan), fmt, gantt, output, force, start, initial)


@plan_group.command("deploy")
@with_options(DEPLOY_OPTIONS)
@_with_common
@with_observe_options
def plan_deploy_cmd(
    inventory: str,
    release: str | None,
    provisioned: bool,
    provision: tuple[str, ...],
    fmt: str,
    gantt: str | None,
    start: str | None,
    output: str | None,
    force: bool,
    **observing: Any,
) -> None:
    """Plan a deploy from registered bare metal: provision the nodes with a BMC through Ironic
    (unless --provisioned, or --observe sees them reachable), then the services in TripleO's
    order, each clustered store bootstrapped on one member and joined one member at a time."""
    from lifecycle.cli.status_cmds import observed_input
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.planning.deploy import DeployIntent, plan_deploy

    cluster = load_inventory(inventory)
    announce(cluster, "deploy", force)  # refuses (exit 3) unless --force
    observed = observed_input(cluster, **observing)
    wanted = DeployIntent(release, provisioned, provision or None)
    plan = plan_deploy(cluster, wanted, observed=observed)
    emit_plan(plan, cluster, fmt, gantt, output, force, start)


@plan_group.command("scale-out")
@click.option("--nodes", "nodes_file", required=True, help="new servers: instackenv.json or YAML")
@click.option("--profiles", "profiles_dir", help="hardware profiles directory")
@click.option("--image", help="image to deploy on the new servers")
@click.option("--ironic-url", help="standalone Ironic to match already inspected servers now")
@click.option(
    "--os-cloud",
    "--cloud",
    "cloud",
    metavar="NAME",
    help="clouds.yaml entry instead of --ironic-url",
)
@_with_common
@with_observe_options
def plan_scale_out_cmd(
    inventory: str,
    nodes_file: str,
    profiles_dir: str | None,
    image: str | None,
    ironic_url: str | None,
    cloud: str | None,
    fmt: str,
    gantt: str | None,
    start: str | None,
    output: str | None,
    force: bool,
    **observing: Any,
) -> None:
    """Plan adding new servers: enroll, inspect, match profiles, deploy, join their aggregate.
    Their services run the release their service's live members run (--observe, else the
    recorded state, else the inventory); refused (exit 3) when those members disagree."""
    from lifecycle.cli.context import OPTIONS
    from lifecycle.cli.nodes_cmds import scale_out_inputs

    cloud = cloud or OPTIONS.os_cloud
    inputs = scale_out_inputs(
        inventory, nodes_file, profiles_dir, image, ironic_url, cloud,
        observing=observing, force=force,
    )  # fmt: skip
    announce(inputs.cluster, "scale-out", force)  # the cluster with its new servers
    emit_plan(inputs.plan, inputs.cluster, fmt, gantt, output, force, start)


@plan_group.command("verify")
@click.option("--inventory", "-i", required=True, help="cluster directory or cluster.yaml")
@click.option("--force", is_flag=True, help="report violations but exit 0")
@click.argument("plan_file")
@output_options(default="text", extra=("text",))
def plan_verify_cmd(
    inventory: str, plan_file: str, force: bool, fmt: str, columns_: tuple[str, ...]
) -> None:
    """Replay a plan's JSON (perhaps edited by hand) and refuse it if a safety rule breaks
    (exit 3). With -f json|yaml the verdict goes to stdout whatever it is: {"safe", "violations":
    [{"rule", "step", "message", "time"}], ...}; the exit status is 3 all the same. Warns when the
    file's `digest` field is not its content's digest (edited since it was made)."""
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.formats.plan_check import check_plan
    from lifecycle.formats.plan_json import edited_since_made, load_plan_file_claimed
    from lifecycle.planning.verifier import check_safe

    cluster = load_inventory(inventory)
    plan, claimed = load_plan_file_claimed(plan_file)
    check_plan(plan, _with_replacement(cluster, plan), plan_file)
    edited = edited_since_made(plan, claimed)
    if edited:
        click.echo(f"warning: {plan_file}: {edited}", err=True)
    from lifecycle.planning.observed import verification_view

    # a plan of what is left is verified against the situation it was planned from
    view = verification_view(cluster, plan)
    violations = check_safe(plan, view, force=True)  # refused below, after the verdict
    structured = fmt.lower() in ("json", "yaml")
    for violation in violations if force else ():
        click.echo(f"warning: --force overrides: {violation}", err=True)
    data: dict[str, Any] = {
        "plan": plan_file,
        "digest": plan.digest,
        "digest_in_file": claimed,
        "edited": edited is not None,
        "operation": plan.operation,
        "cluster": plan.cluster,
        "steps": len(plan.steps),
        "safe": not violations,
        "overridden": bool(violations) and force,
        # Violation's fields (lifecycle.planning.timeline): {"rule", "step", "message", "time"}
        "violations": [
            {"rule": v.rule, "step": v.step, "message": v.message, "time": v.time}
            for v in violations
        ],
    }
    if structured:  # the verdict on stdout for a script, whatever it is; exit 3 when unsafe
        emit_show(data, fmt, columns_)
        if violations and not force:
            raise UnsafePlan(violations)
        return
    if violations and not force:
        raise UnsafePlan(violations)  # stderr: the first 20; `lifecycle -v` lists all
    data["violations"] = [str(v) for v in violations]  # a table cell, value or csv: lines
    if fmt.lower() == "text" and not columns_:
        click.echo(
            f"{plan_file}: {len(plan.steps)} steps, "
            + ("safe" if not violations else f"{len(violations)} violation(s) overridden")
        )
        return
    emit_show(data, "table" if fmt.lower() == "text" else fmt, columns_)


def _with_replacement(cluster: Any, plan: Plan) -> Any:
    """The inventory and, for a replace plan, its replacement (a node the plan deploys)."""
    from lifecycle.planning.replace import replaced_cluster

    return replaced_cluster(cluster, plan)


def _add_replace_commands() -> None:
    from lifecycle.cli.replace_cmds import plan_commands

    for command in plan_commands():  # `plan replace`, `plan remove`
        plan_group.add_command(command)


_add_replace_commands()
COMMANDS: list[click.Command] = [plan_group]
