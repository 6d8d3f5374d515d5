"""`lifecycle run ...`, `resume`, `runs list/show`, `pause`, `abort`: the engine's commands."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from lifecycle.cli.complete import complete_ceph_release, complete_release, complete_run
from lifecycle.cli.output import Column, emit_list, output_options
from lifecycle.cli.preflight_out import announce
from lifecycle.cli.status_cmds import OBSERVE_OPTIONS
from lifecycle.errors import LifecycleError, ResumeRefused, UsageError
from lifecycle.model.cluster import Cluster
from lifecycle.planning.plan import Plan

# lifecycle.execution.routing.MODES (a test keeps them equal); none is a default: `run` never
# picks the driver that touches nothing without being told
DRIVERS = ["sim", "testbed", "cloud"]
DRIVER_HELP = (
    "sim (simulate: touches nothing), testbed (the local testbed) or cloud (Ironic and Nova"
    " through clouds.yaml); default: `driver:` in cluster.yaml"
)


def choose_driver(given: str | None, cluster: Cluster) -> str:
    """--driver, else the inventory's `driver:`; with neither, exit 2 saying how to choose."""
    if given:
        return given
    if cluster.driver:
        return cluster.driver
    raise UsageError.at(
        cluster.source or "cluster.yaml",
        "driver",
        "none given, and lifecycle never assumes one: pass --driver sim (simulate: touch"
        " nothing), --driver testbed (the local testbed) or --driver cloud (Ironic and Nova"
        " through clouds.yaml), or write `driver: sim|testbed|cloud` in cluster.yaml",
    )


# --- operations: how each operation's plan is made (scale-out plugs in here) -------------------


def _plan_upgrade(cluster: Cluster, intent: dict[str, Any]) -> Plan:
    """The upgrade plan, less what the intent's `in_place` (the recorded state when the run
    started) says is done; NothingToDo when that is everything."""
    from lifecycle.cli.recorded_out import (
        IN_PLACE,
        NothingToDo,
        in_place_of,
        nothing_to_do,
        what_is_left,
    )
    from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade

    observed = None
    if intent.get("observed") is not None:  # recorded in the intent: a resume plans the same
        from lifecycle.model.observed import observed_from_dict

        observed = observed_from_dict(intent["observed"], "the run's intent")
    plan = plan_upgrade(
        cluster,
        UpgradeIntent(intent["target"], intent.get("ceph_target")),
        observed=observed,
        force=bool(intent.get("observed_force")),
        in_place=in_place_of(intent.get(IN_PLACE)),
    )
    left = what_is_left(plan, intent.get(IN_PLACE))
    if left is None:
        raise NothingToDo(nothing_to_do(plan, intent[IN_PLACE]))
    return left


def _plan_file(cluster: Cluster, intent: dict[str, Any]) -> Plan:
    from lifecycle.formats.plan_check import check_plan
    from lifecycle.formats.plan_json import edited_since_made, load_plan_file_claimed

    plan, claimed = load_plan_file_claimed(intent["plan_file"])
    from lifecycle.planning.replace import replaced_cluster

    check_plan(plan, replaced_cluster(cluster, plan), intent["plan_file"])
    # `run plan` (not a resume, which compares with the digest it recorded) refuses a file
    # edited since it was made unless --force, and records the override
    check = intent.pop("check_digest", None)
    edited = edited_since_made(plan, claimed) if check else None
    if edited and check != "force":
        raise UsageError.at(
            intent["plan_file"],
            "digest",
            f"digest mismatch, {edited} (--force runs it anyway, and the run records that)",
        )
    if edited:
        edited = f"{intent['plan_file']}: {edited}"
        click.echo(f"warning: --force overrides: {edited}", err=True)
        intent["edited"] = edited
    return plan


def _plan_scale_out(cluster: Cluster, intent: dict[str, Any]) -> Plan:
    from lifecycle.cli.nodes_cmds import scale_out_planner

    plan: Plan = scale_out_planner(cluster, intent)
    return plan


def _plan_deploy(cluster: Cluster, intent: dict[str, Any]) -> Plan:
    """The deploy plan; the observation recorded in the intent (if any) says which nodes are
    reachable already, so a resume plans the same provisioning."""
    from lifecycle.planning.deploy import DeployIntent, plan_deploy

    observed = None
    if intent.get("observed") is not None:
        from lifecycle.model.observed import observed_from_dict

        observed = observed_from_dict(intent["observed"], "the run's intent")
    listed = intent.get("provision")
    wanted = DeployIntent(
        intent.get("release"),
        bool(intent.get("provisioned")),
        tuple(listed) if listed is not None else None,
    )
    return plan_deploy(cluster, wanted, observed=observed)


def _plan_replace(cluster: Cluster, intent: dict[str, Any]) -> Plan:
    from lifecycle.cli.replace_cmds import replace_planner

    return replace_planner(cluster, intent)


PLANNERS: dict[str, Callable[[Cluster, dict[str, Any]], Plan]] = {
    "upgrade": _plan_upgrade,
    "deploy": _plan_deploy,
    "plan-file": _plan_file,
    "scale-out": _plan_scale_out,
    "replace": _plan_replace,
    "remove": _plan_replace,
}


def _run_cluster(cluster: Cluster, intent: dict[str, Any]) -> Cluster:
    """The cluster the drivers and the verifier see: a scale-out adds its new servers."""
    if intent.get("operation") in ("replace", "remove"):  # the replacement joins the old role
        from lifecycle.cli.replace_cmds import replace_run_cluster

        return replace_run_cluster(cluster, intent)
    if intent.get("operation") != "scale-out":
        return cluster
    from lifecycle.cli.nodes_cmds import scale_out_cluster

    grown: Cluster = scale_out_cluster(cluster, intent)
    return grown


def _with_replacement(cluster: Cluster, plan: Plan) -> Cluster:
    """A replace plan's replacement joins the cluster the drivers see (a saved plan too)."""
    from lifecycle.planning.replace import replaced_cluster

    return replaced_cluster(cluster, plan)


def _run_secrets(cluster: Cluster, intent: dict[str, Any]) -> Any:
    """The secrets drivers need: a scale-out adds the new servers' BMC logins."""
    if intent.get("operation") == "scale-out" or intent.get("nodes_file"):
        from lifecycle.cli.nodes_cmds import scale_out_secrets

        return scale_out_secrets(cluster, intent)
    return _load_secrets(cluster)


# --- shared pieces ------------------------------------------------------------------------------


def _load_cluster(inventory: str) -> Cluster:
    from lifecycle.formats.inventory import load_inventory

    return load_inventory(inventory)


def _load_secrets(cluster: Cluster) -> Any:
    if not cluster.credentials:
        return None
    from lifecycle.formats.secrets import load_secrets

    return load_secrets(cluster)


def _setup(state_dir: str | None, driver: str, **kw: Any) -> Any:
    from lifecycle.cli.context import OPTIONS

    if driver == "sim":  # a bad LIFECYCLE_SIM_* is bad input (exit 2) before a run is recorded
        from lifecycle.drivers.sim import check_env

        check_env()
    from lifecycle.execution.paths import state_dir as resolve
    from lifecycle.execution.runner import Setup

    # --progress: redrawn; default: redrawn on a terminal, one line per step event elsewhere
    progress = kw.pop("progress", None)
    mode = "off" if progress is False else "live" if progress or sys.stderr.isatty() else "lines"
    if OPTIONS.os_cloud and "driver_options" not in kw:  # `lifecycle --os-cloud` / $OS_CLOUD
        cloud = {"cloud": OPTIONS.os_cloud}
        kw["driver_options"] = {"baremetal": cloud, "compute": cloud}
    return Setup(resolve(state_dir), driver, progress=mode, argv=["lifecycle", *sys.argv[1:]], **kw)


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not value < float("inf"):  # NaN passes FloatRange's comparisons
        raise click.BadParameter(f"{value} is not a finite number", ctx, param)
    return value


DEPLOY_OPTIONS = [  # `plan deploy` and `run deploy`
    click.option(
        "--release",
        shell_complete=complete_release,
        help="OpenStack release to deploy (default: the inventory's `release`)",
    ),
    click.option(
        "--provisioned",
        is_flag=True,
        help="every node already has an OS: no Ironic provisioning steps",
    ),
    click.option(
        "--provision",
        "provision",
        multiple=True,
        metavar="NODE",
        help="provision only these nodes through Ironic (repeat; default: every node with a"
        " BMC not observed reachable)",
    ),
]

RUN_OPTIONS = [
    click.option("--driver", type=click.Choice(DRIVERS), help=DRIVER_HELP),
    click.option("--state-dir", help="where journals live [env LIFECYCLE_STATE_DIR]"),
    click.option("--events", help="append the event stream to this file (JSON lines)"),
    click.option("--concurrency", type=click.IntRange(1, 256), default=4, show_default=True),
    click.option(
        "--sim-scale",
        type=click.FloatRange(min=0),
        callback=_finite,
        help="sim: durations x this, >= 0 [env LIFECYCLE_SIM_SCALE]",
    ),
    click.option(
        "--progress/--no-progress",
        default=None,
        help="live progress, redrawn (default: on a terminal; elsewhere one line per step)",
    ),
    click.option(
        "--engine",
        type=click.Choice(["embedded", "mistral"]),
        default="embedded",
        show_default=True,
        help="who runs the plan: this process, or a Mistral service (--mistral-url)",
    ),
    click.option("--mistral-url", help="Mistral API for --engine mistral (http://HOST:8989/v2)"),
]


def refuse_unfinished(state_dir: str | None, cluster: str) -> None:
    """Exit 4 while the cluster has a running, interrupted, paused or needs-operator run, naming
    it and saying `lifecycle resume RUN` or `lifecycle abort RUN`. No flag bypasses this, not
    even --force (which overrides safety rules, recorded): two runs on one cluster would each
    plan from a state the other is changing."""
    from lifecycle.execution.liveness import refuse_unfinished as refuse
    from lifecycle.execution.paths import state_dir as resolve

    refuse(resolve(state_dir), cluster)


def with_options(options: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    def wrap(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return wrap


def execute_operation(
    intent: dict[str, Any],
    inventory: str,
    force: bool,
    yes: bool,
    opts: dict[str, Any],
    update_inventory: bool = False,
) -> str | None:
    """Plan `intent["operation"]` with its PLANNERS entry, prove it safe, run it and report;
    returns the run's id once it succeeded (None: nothing to do). Other command families
    (scale-out, replace) call this with their own intent and RUN_OPTIONS."""
    from lifecycle.cli import recorded_out
    from lifecycle.execution.runner import launch
    from lifecycle.model.observed import observed_from_dict
    from lifecycle.planning.observed import verification_view
    from lifecycle.planning.verifier import check_safe

    inventory_cluster = _load_cluster(inventory)
    refuse_unfinished(opts.get("state_dir"), inventory_cluster.name)
    if intent["operation"] == "upgrade":  # plan only what the recorded state says is left
        seen = intent.get("observed")
        observed = observed_from_dict(seen, "the run's intent") if seen is not None else None
        intent[recorded_out.IN_PLACE] = recorded_out.in_place_intent(
            opts.get("state_dir"), inventory_cluster, observed
        )
    try:
        plan = PLANNERS[intent["operation"]](inventory_cluster, intent)
    except recorded_out.NothingToDo as done:
        click.echo(str(done))
        return None
    initial = recorded_out.initial(intent.get(recorded_out.IN_PLACE))
    recorded_out.announce_left(None, plan, intent.get(recorded_out.IN_PLACE))
    cluster = _with_replacement(_run_cluster(inventory_cluster, intent), plan)
    if plan.cluster != cluster.name:
        raise UsageError.at(inventory, "cluster", f"the plan's cluster {plan.cluster!r}")
    if plan.inventory_digest and plan.inventory_digest != inventory_cluster.digest:
        raise UsageError.at(
            intent.get("plan_file", inventory),
            "inventory_digest",
            f"{inventory_cluster.digest} (the inventory given); the plan was made for another"
            " inventory:"
            " plan again",
        )
    driver = opts["driver"] = choose_driver(opts.get("driver"), inventory_cluster)
    ceph = any(key == "ceph_to" for key, _ in plan.extra)
    # a replacement's findings are the inventory's (the old node and its replacement are never
    # both members: counting them together would warn of even-sized stores)
    checked = inventory_cluster if plan.operation in ("replace", "remove") else cluster
    preflight_overridden = announce(checked, plan.operation, force, ceph=ceph)
    overridden = check_safe(plan, verification_view(cluster, plan), force=force, initial=initial)
    for violation in overridden:
        click.echo(f"warning: --force overrides: {violation}", err=True)
    if not yes:
        sim = " (SIMULATED: nothing is touched)" if driver == "sim" else ""
        click.confirm(
            f"run {plan.operation} of {cluster.name}: {len(plan.steps)} steps,"
            f" about {plan.makespan / 60:.0f} min, with the {driver} driver{sim}?",
            abort=True,
        )
    from lifecycle.execution.runs import new_run_id

    engine, mistral_url = opts.pop("engine", "embedded"), opts.pop("mistral_url", None)
    secrets = _run_secrets(inventory_cluster, intent)
    setup = _setup(opts.pop("state_dir"), opts.pop("driver"), secrets=secrets, **opts)
    run_id = new_run_id(cluster.name)
    log = _log_path(setup, run_id)
    from lifecycle.execution.runs import planned_with

    intent = dict(
        planned_with(intent),  # what tells resume that planning again gives this plan
        inventory=str(Path(inventory).resolve()),
        driver=setup.driver,
        simulated=setup.driver == "sim",  # what progress, `runs list` and `runs show` read
        log=str(log),
    )
    if setup.sim_scale is not None:
        intent["sim_scale"] = setup.sim_scale
    overrides = {
        "force": bool(force),
        "overridden": preflight_overridden
        + list(intent.get("observed_overridden", []))
        + [str(v) for v in overridden]
        + ([intent["edited"]] if intent.get("edited") else []),  # run plan of an edited file
    }
    with _run_log(log):  # the display prints the run's id, SIMULATED and the log path first
        if engine == "mistral":  # the Mistral backend journals the run the same way
            from lifecycle.mistral.backend import launch_from_cli

            view = launch_from_cli(setup, cluster, plan, intent, overrides, mistral_url)
        else:
            view = launch(setup, cluster, plan, intent, overrides, run_id=run_id)
    if intent["operation"] == "scale-out":
        recorded_out.inventory_change(
            inventory_cluster, cluster, view.run.id, setup.state_dir, update_inventory
        )
    _finish(view, state_dir=setup.state_dir)  # raises unless the run succeeded
    return str(view.run.id)


def _log_path(setup: Any, run_id: str) -> Path:
    from lifecycle.execution.runlog import run_log_path

    return run_log_path(setup.state_dir, run_id)


def _run_log(path: Path) -> Any:
    from lifecycle.execution.runlog import RunLog

    return RunLog(path)


def _finish(view: Any, journal: Any = None, state_dir: Path | None = None) -> None:
    """Print the final report (its last line says SIMULATED for a sim run); exit 4 unless the
    run succeeded. An aborted or failed run's report ends with the recorded state it left (hosts
    disabled, flags set) and what to run next. A run stopped by Ctrl-C twice leaves now, without
    waiting for the driver calls it abandoned (their threads cannot be stopped; the journal has
    been written)."""
    from lifecycle.errors import RunInterrupted, RunStopped
    from lifecycle.execution.runner import conclude

    try:
        click.echo(conclude(view, journal))
    except RunInterrupted as exc:
        click.echo(f"error: {exc}", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exc.exit_code)
    except RunStopped as exc:
        from lifecycle.cli.replace_cmds import dead_node_hint

        said = "\n".join(x for x in (dead_node_hint(view), _recorded_after(view, state_dir)) if x)
        if said:
            raise RunStopped(f"{exc}\n{said}") from None
        raise


def _recorded_after(view: Any, state_dir: Path | None) -> str:
    """The recorded state an aborted or failed run left, as `abort` says it; "" otherwise."""
    from lifecycle.execution.states import RunState

    if state_dir is None or view.state not in (RunState.ABORTED, RunState.FAILED):
        return ""
    from lifecycle.cli.recorded_out import describe_recorded
    from lifecycle.execution.recorded_state import load_record

    try:
        record = load_record(state_dir, view.run.cluster)
    except LifecycleError:
        return ""
    if record is None or record.run != view.run.id:
        return ""
    return describe_recorded(record, view.run.intent.get("inventory"), view.run.intent)


# --- commands -----------------------------------------------------------------------------------


@click.group("run")
def run_group() -> None:
    """Plan and run an operation on a cluster (journaled, resumable).

    One run per cluster: a new run is refused (exit 4) while another run of the cluster is
    running, interrupted (its process died), paused or needs the operator; the message names it:
    `lifecycle resume RUN` finishes it, `lifecycle abort RUN` gives it up. --force does not
    bypass this (it only overrides safety rules), and no other flag does.

    An upgrade plans only what is left: work the cluster's recorded state (written after every
    run, in the state directory) says is done is not planned again."""


@run_group.command("upgrade")
@click.option("--inventory", "-i", required=True, help="cluster directory or cluster.yaml")
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
@click.option("--force", is_flag=True, help="run a plan the safety verifier refuses")
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@with_options(RUN_OPTIONS + OBSERVE_OPTIONS)
def run_upgrade(
    inventory: str,
    target: str,
    ceph_target: str | None,
    force: bool,
    yes: bool,
    observe_now: bool,
    observed_file: str | None,
    **opts: Any,
) -> None:
    """Upgrade the cluster to a release, rolling, with live progress."""
    from lifecycle.cli.status_cmds import observed_intent

    intent = {"operation": "upgrade", "target": target, "ceph_target": ceph_target}
    intent.update(observed_intent(inventory, intent, force, observe_now, observed_file, opts))
    execute_operation(intent, inventory, force, yes, opts)


@run_group.command("deploy")
@click.option("--inventory", "-i", required=True, help="cluster directory or cluster.yaml")
@with_options(DEPLOY_OPTIONS)
@click.option("--force", is_flag=True, help="run a plan the safety verifier refuses")
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@with_options(RUN_OPTIONS)
def run_deploy(
    inventory: str,
    release: str | None,
    provisioned: bool,
    provision: tuple[str, ...],
    force: bool,
    yes: bool,
    **opts: Any,
) -> None:
    """Deploy the cloud from registered bare metal, with live progress. The testbed and cloud
    drivers observe the nodes first: a node that answers already has an OS and is not
    provisioned through Ironic again."""
    intent: dict[str, Any] = {"operation": "deploy", "release": release}
    if provisioned:
        intent["provisioned"] = True
    elif provision:
        intent["provision"] = list(provision)
    else:
        intent.update(_deploy_observation(inventory, opts))
    execute_operation(intent, inventory, force, yes, opts)


def _deploy_observation(inventory: str, opts: dict[str, Any]) -> dict[str, Any]:
    """The driver's observation, recorded in the intent (a resume plans from the same one);
    none for the sim, whose nodes come up with an OS."""
    driver = choose_driver(opts.get("driver"), _load_cluster(inventory))
    if driver == "sim":
        return {}
    from lifecycle.cli.status_cmds import observe

    observed = observe(_load_cluster(inventory), driver, opts.get("state_dir"))
    return {"observed": observed.to_dict()}


@run_group.command("plan")
@click.argument("plan_file")
@click.option("--inventory", "-i", required=True, help="cluster directory or cluster.yaml")
@click.option(
    "--force",
    is_flag=True,
    help="run a plan the safety verifier refuses, or one edited since it was made",
)
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@with_options(RUN_OPTIONS)
def run_plan(plan_file: str, inventory: str, force: bool, yes: bool, **opts: Any) -> None:
    """Run a plan saved with `lifecycle plan ... -f json -o FILE`.

    A plan file whose `digest` field is not its content's digest (edited since it was made) is
    refused as bad input (exit 2: digest mismatch) unless --force, which the run records."""
    intent = {
        "operation": "plan-file",
        "plan_file": str(Path(plan_file).resolve()),
        "check_digest": "force" if force else "refuse",
    }
    execute_operation(intent, inventory, force, yes, opts)


@run_group.command("scale-out")
@click.option("--inventory", "-i", required=True, help="cluster directory or cluster.yaml")
@click.option("--nodes", "nodes_file", required=True, help="new servers: instackenv.json or YAML")
@click.option("--profiles", "profiles_dir", help="hardware profiles directory")
@click.option("--image", help="image to deploy on the new servers")
@click.option(
    "--update-inventory",
    is_flag=True,
    help="write the deployed servers into cluster.yaml's `nodes:` (comments and layout kept;"
    " the old file kept as cluster.yaml.bak-RUN); without it, the entries to add are printed",
)
@click.option("--force", is_flag=True, help="run a plan the safety verifier refuses")
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@with_options(RUN_OPTIONS + OBSERVE_OPTIONS)
def run_scale_out(
    inventory: str,
    nodes_file: str,
    profiles_dir: str | None,
    image: str | None,
    update_inventory: bool,
    force: bool,
    yes: bool,
    **opts: Any,
) -> None:
    """Add new servers: enroll, inspect, match profiles, deploy, join their aggregate. Then
    print the inventory's new `nodes:` entries, or write them with --update-inventory. Their
    services run the release their service's live members run (--observe, else the recorded
    state, else the inventory); refused (exit 3) when those members disagree, unless --force."""
    from lifecycle.cli.nodes_cmds import live_state

    intent: dict[str, Any] = {
        "operation": "scale-out",
        "nodes_file": str(Path(nodes_file).resolve()),
        "profiles": str(Path(profiles_dir).resolve()) if profiles_dir else None,
        "image": image,
    }
    observing = {k: opts.pop(k) for k in ("observe_now", "observed_file")}
    observing |= {k: opts.get(k) for k in ("driver", "state_dir")}
    live_state(_load_cluster(inventory), intent, observing, force)
    execute_operation(intent, inventory, force, yes, opts, update_inventory)


def _add_replace_commands() -> None:
    from lifecycle.cli.replace_cmds import run_commands

    for command in run_commands():  # `run replace`, `run remove`
        run_group.add_command(command)


_add_replace_commands()


RUN_ID = click.argument("run_id", metavar="RUN", shell_complete=complete_run)
RUN_ID_HELP = "RUN is a run id, a unique prefix of one, or `last` (the latest run)."
STATE_DIR = click.option("--state-dir", help="where journals live [env LIFECYCLE_STATE_DIR]")


def _locate(state_dir: str | None, ref: str) -> tuple[Path, str, Any]:
    """(state dir, full run id, its open journal) for what the operator typed."""
    from lifecycle.execution.paths import state_dir as resolve
    from lifecycle.execution.run_index import resolve_run
    from lifecycle.execution.sqlite_journal import SqliteJournal

    root = resolve(state_dir)
    entry = resolve_run(root, ref)
    return root, entry.record.id, SqliteJournal(entry.journal)


@click.command("resume", epilog=RUN_ID_HELP)
@RUN_ID
@click.option("--accept", multiple=True, metavar="STEP", help="a step in doubt did take effect")
@click.option("--rerun", multiple=True, metavar="STEP", help="a step in doubt must run again")
@click.option("--inventory", "-i", help="inventory to use instead of the one the run recorded")
@click.option(
    "--node-dead",
    "node_dead",
    multiple=True,
    metavar="NAME",
    help="replace/remove: NAME is confirmed dead; its stop and drain steps are skipped (recorded)",
)
@with_options(RUN_OPTIONS[1:])
def resume_cmd(
    run_id: str,
    accept: tuple[str, ...],
    rerun: tuple[str, ...],
    inventory: str | None,
    node_dead: tuple[str, ...] = (),
    **opts: Any,
) -> None:
    """Resume a run after a crash, a pause or a failure: finished steps never run again."""
    from lifecycle.execution.runner import resume

    root, run_id, journal = _locate(opts.pop("state_dir"), run_id)
    mistral_url = opts.pop("mistral_url", None)
    opts.pop("engine", None)  # a run resumes on the engine that started it
    try:
        record = journal.run(run_id)
        _refuse_superseded(root, record)
        intent = record.intent
        driver = str(intent.get("driver", "sim"))  # runs recorded before drivers had no default
        log = Path(intent["log"]) if intent.get("log") else _log_path_at(root, run_id)
        if intent.get("engine") == "mistral":
            from lifecycle.mistral.backend import resume_from_cli

            setup = _setup(str(root), driver, **opts)
            with _run_log(log):
                view = resume_from_cli(setup, run_id, mistral_url)
            _finish(view, journal)
            _after_success(intent, run_id)
            return
        path = inventory or intent.get("inventory")
        if not path:
            raise ResumeRefused(f"run {run_id} recorded no inventory; pass --inventory")
        inventory_cluster = _load_cluster(path)
        # the same inventory and planner make the same plan: the journal's copy is that plan
        # (a changed inventory or planner plans again, and check_resumable compares)
        from lifecycle.execution.runs import journal_plan, replans_the_same

        kept = journal_plan(record) if replans_the_same(record, inventory_cluster) else None
        planner = PLANNERS.get(str(intent.get("operation")))
        plan_now = planner(inventory_cluster, intent) if planner and kept is None else None
        plan = plan_now or kept
        cluster = _run_cluster(inventory_cluster, intent)
        if plan is not None:
            cluster = _with_replacement(cluster, plan)
        if opts.get("sim_scale") is None and intent.get("sim_scale") is not None:
            opts["sim_scale"] = intent["sim_scale"]
        secrets = _run_secrets(inventory_cluster, intent)
        setup = _setup(str(root), driver, secrets=secrets, **opts)
        skip: list[str] = []
        if node_dead and plan is not None:
            from lifecycle.cli.replace_cmds import dead_node_steps

            skip = dead_node_steps(plan, node_dead)
            if not skip:
                click.echo(
                    f"warning: --node-dead: nothing of {', '.join(node_dead)} left to skip"
                    f" in this {plan.operation} run (only a replace or remove run's stop and"
                    " drain steps are)",
                    err=True,
                )
        with _run_log(log):
            view = resume(
                setup, journal, run_id, cluster, plan_now, accept, rerun, skip, journal_plan=kept
            )
        _finish(view, journal, root)  # raises unless the run succeeded
        _after_success(intent, run_id)
    finally:
        journal.close()


def _after_success(intent: dict[str, Any], run_id: str) -> None:
    """What a run's operation does once it succeeded: a replace or remove updates the
    inventory (with the run's --update-inventory) or says what to edit."""
    from lifecycle.cli.replace_cmds import inventory_after

    inventory_after(intent, run_id)


def _refuse_superseded(root: Path, record: Any) -> None:
    """A run of the same cluster started after this one planned from what this one left (the
    recorded state): resuming this one would do that work twice. Exit 4, naming the newer run."""
    from lifecycle.execution.run_index import all_runs

    newer = [
        e.record.id
        for e in all_runs(root)
        if e.record.cluster == record.cluster and e.record.created > record.created
    ]
    if newer:
        raise ResumeRefused(
            f"run {record.id} was followed by run {newer[-1]} of cluster {record.cluster}, which"
            f" planned from the state this one left: resuming it could redo that work. Give it up"
            f" with `lifecycle abort {record.id}`; `lifecycle plan upgrade` plans what is left"
        )


def _log_path_at(root: Path, run_id: str) -> Path:
    from lifecycle.execution.runlog import run_log_path

    return run_log_path(root, run_id)


@click.group("runs")
def runs_group() -> None:
    """Runs recorded in the journals."""


def _show_simulated(value: Any) -> str:
    return "SIMULATED" if value else ""


RUN_COLUMNS = (
    Column("run", "Run"),
    Column("started", "Started"),
    Column("cluster", "Cluster"),
    Column("operation", "Operation"),
    Column("from", "From"),
    Column("to", "To"),
    Column("driver", "Driver"),
    Column("simulated", "Simulated", _show_simulated),
    Column("state", "State"),
    Column("done", "Done"),
    Column("steps", "Steps"),
)


def run_rows(root: Path) -> list[dict[str, Any]]:
    """One row per run under `root`, by start time, with the keys of RUN_COLUMNS."""
    from lifecycle.execution.liveness import shown_state
    from lifecycle.execution.replay import replay
    from lifecycle.execution.report import is_simulated, iso
    from lifecycle.execution.run_index import all_runs
    from lifecycle.execution.sqlite_journal import SqliteJournal

    rows = []
    journals: dict[Path, SqliteJournal] = {}
    try:
        for entry in all_runs(root):
            journal = journals.get(entry.journal) or SqliteJournal(entry.journal)
            journals[entry.journal] = journal
            record = entry.record
            view = replay(journal, record.id)
            done = sum(1 for s in view.steps.values() if s.state.done)
            rows.append(
                {
                    "run": record.id,
                    "started": iso(record.created),
                    "cluster": record.cluster,
                    "operation": record.operation,
                    "from": view.plan.source,
                    "to": view.plan.target,
                    "driver": record.intent.get("driver"),
                    "simulated": is_simulated(record.intent),
                    "state": shown_state(root, record.cluster, record.id, view.state),
                    "done": done,
                    "steps": len(view.steps),
                }
            )
    finally:
        for journal in journals.values():
            journal.close()
    return rows


@runs_group.command("list")
@STATE_DIR
@output_options()
def runs_list(state_dir: str | None, fmt: str, columns_: tuple[str, ...]) -> None:
    """Every run of every cluster, oldest first: when, what, from which release to which,
    on which driver (SIMULATED for sim), and how far it got."""
    from lifecycle.cli.output import select
    from lifecycle.execution.paths import state_dir as resolve

    root = resolve(state_dir)
    select(RUN_COLUMNS, columns_)  # an unknown column is an error even with no runs
    rows = run_rows(root)
    if not rows:
        click.echo(
            f"no runs under {root} (the state directory: --state-dir or $LIFECYCLE_STATE_DIR)",
            err=True,
        )
        if fmt.lower() not in ("json", "yaml"):
            return
    emit_list(rows, RUN_COLUMNS, fmt, columns_)


@runs_group.command("show", epilog=RUN_ID_HELP)
@RUN_ID
@STATE_DIR
@output_options(default="text", extra=("text",))
def runs_show(run_id: str, state_dir: str | None, fmt: str, columns_: tuple[str, ...]) -> None:
    """One run: state, start and end, the log, every step's state and times, the error and log
    of each failed step, the audit trail (who ran what)."""
    from lifecycle.cli.output import emit_show
    from lifecycle.execution.liveness import INTERRUPTED, shown_state
    from lifecycle.execution.replay import replay
    from lifecycle.execution.report import render, report

    root, run_id, journal = _locate(state_dir, run_id)
    try:
        view = replay(journal, run_id)
        data = report(view, journal)
    finally:
        journal.close()
    data["state"] = shown_state(root, view.run.cluster, run_id, view.state)
    if data["state"] == INTERRUPTED:
        data["reason"] = (
            "the process running it is gone (killed, or its host rebooted): `lifecycle resume"
            f" {run_id}` continues it, `lifecycle abort {run_id}` gives it up"
        )
    probes = _probes(root, data)
    if probes:
        data["probes"] = [p.to_dict() for p in probes]
    if fmt.lower() == "text":
        if columns_:
            raise UsageError.at("command line", "-c/--column", "-f table|json|yaml|value|csv")
        click.echo(render(data, steps=True))
        if probes:
            from lifecycle.testbed.user_probe import render_summary

            click.echo("  user probes during this run:")
            for probe in probes:
                click.echo("    " + render_summary(probe).replace("\n", "\n    "))
        return
    emit_show(data, fmt, columns_)


def _probes(root: Path, data: dict[str, Any]) -> list[Any]:
    """The user probes (`lifecycle testbed probe`) whose time window overlaps the run."""
    from lifecycle.testbed.user_probe import probes_during

    return probes_during(root, data["cluster"], data["started"], data["ended"])


@click.command("pause", epilog=RUN_ID_HELP)
@RUN_ID
@STATE_DIR
def pause_cmd(run_id: str, state_dir: str | None) -> None:
    """Pause a live run at its next safe point (resume continues it)."""
    from lifecycle.execution.runner import pause_or_abort

    root, run_id, journal = _locate(state_dir, run_id)
    try:
        click.echo(pause_or_abort(journal, root, run_id, "pause"))
    finally:
        journal.close()


@click.command("abort", epilog=RUN_ID_HELP)
@RUN_ID
@STATE_DIR
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
def abort_cmd(run_id: str, state_dir: str | None, yes: bool) -> None:
    """Abort a run: a live one stops at its next safe point; an interrupted one (its process
    died) is marked aborted at once; it can never be resumed. Says what state the cluster is
    left in (releases, hosts disabled, Ceph flags set, as recorded) and what to run next."""
    from lifecycle.execution.replay import replay
    from lifecycle.execution.runner import pause_or_abort

    root, run_id, journal = _locate(state_dir, run_id)
    try:
        view = replay(journal, run_id)
        if view.state.final:
            raise ResumeRefused(f"run {run_id} is already {view.state.value}; nothing to abort")
        if not yes:
            click.echo(f"run {run_id} ({view.state.value}) leaves the cluster as follows:")
            click.echo(_left_behind_text(root, view))
            if not click.confirm(
                "abort it for good (it can never be resumed; `lifecycle pause` keeps it resumable)?"
            ):  # "no" is not an abort of the run: say what was (not) done; exit 130 as documented
                click.echo(f"abort cancelled: run {run_id} left as it was", err=True)
                raise click.exceptions.Exit(130)
        said = pause_or_abort(journal, root, run_id, "abort")
        click.echo(said)
        after = replay(journal, run_id)
        if after.state.final:
            click.echo("the cluster is left as the journal last knew it:")
        else:  # a live run stops at its next safe point and records its state then
            click.echo("until it stops, the cluster is as the journal knows it now:")
        click.echo(_left_behind_text(root, after))
    finally:
        journal.close()


def _left_behind_text(root: Path, view: Any) -> str:
    """The journal's summary of a stopped run (steps, releases per service) and the recorded
    state it leaves (hosts disabled, Ceph flags set) with what to run next."""
    from lifecycle.cli.recorded_out import describe_recorded
    from lifecycle.execution.recorded_state import preview
    from lifecycle.execution.runs import describe_left_behind, left_behind

    text = describe_left_behind(left_behind(view))
    try:
        record = preview(root, view)
    except LifecycleError as exc:  # a damaged state file must not keep an abort from working
        return f"{text}\n  recorded state: unreadable ({exc})"
    intent = view.run.intent
    return text + "\n" + describe_recorded(record, intent.get("inventory"), intent)


COMMANDS: list[click.Command] = [run_group, resume_cmd, runs_group, pause_cmd, abort_cmd]
