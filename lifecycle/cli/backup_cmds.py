"""`lifecycle backup`, `lifecycle backups list|show|verify`, `plan recover` and `run recover`.

Backup and recover are operations like any other: a plan (lifecycle.planning.backup, .recover)
run by the engine, journaled and resumable. Their planners are registered in run_cmds.PLANNERS
here, so that `resume` re-plans them from the intent the run recorded.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from lifecycle.cli import run_cmds
from lifecycle.cli.output import Column, emit_list, emit_show, output_options
from lifecycle.cli.run_cmds import RUN_OPTIONS, execute_operation, with_options
from lifecycle.errors import LifecycleError, UsageError
from lifecycle.model.cluster import Cluster
from lifecycle.planning.plan import Plan


class BackupDamaged(LifecycleError):
    """`backups verify` found a file missing, changed or readable by others (exit 1)."""


# --- where backups are ---


def backups_root(cluster: Cluster, given: str | None, state_dir: str | None) -> Path:
    """`--to`/`--dir DIR`, else `<state dir>/backups/<cluster>`; absolute."""
    from lifecycle.execution.backups import backup_root
    from lifecycle.execution.paths import state_dir_path

    if given:
        return Path(given).resolve()
    return backup_root(state_dir_path(state_dir), cluster.name).resolve()


def new_backup_id(cluster: str) -> str:
    return f"{cluster}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"


def age_of(created: str, now: datetime | None = None) -> str:
    """How long ago an ISO 8601 UTC time was, as `3h 12min` ("unknown" when unreadable)."""
    try:
        then = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return "unknown"
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    days, rest = divmod(max(seconds, 0), 86400)
    hours, rest = divmod(rest, 3600)
    text = f"{days}d {hours}h" if days else f"{hours}h {rest // 60}min"
    return text


# --- planners (also what `resume` calls) ----------------------------------------------------------


def _observed_of(intent: dict[str, Any]) -> Any:
    if intent.get("observed") is None:
        return None
    from lifecycle.model.observed import observed_from_dict

    return observed_from_dict(intent["observed"], "the run's intent")


def _plan_backup(cluster: Cluster, intent: dict[str, Any]) -> Plan:
    from lifecycle.planning.backup import BackupIntent, plan_backup

    wanted = BackupIntent(intent["backup_id"], intent["dest"], intent.get("inventory_file", ""))
    return plan_backup(cluster, wanted, _observed_of(intent))


def _recover_inputs(cluster: Cluster, intent: dict[str, Any]) -> Any:
    """(plan, choice, manifest) for a recover intent."""
    from lifecycle.execution.backups import find_backup, list_backups
    from lifecycle.planning.recover import RecoverIntent, plan_recover

    root = Path(intent["backups_dir"])
    manifest, directory = None, ""
    if intent.get("backup_id") or list_backups(root):
        path, manifest = find_backup(root, intent.get("backup_id"))
        directory = str(path)
    wanted = RecoverIntent(manifest, directory, intent.get("bootstrap"), intent.get("image"))
    releases = dict(intent.get("releases") or {})
    plan, choice = plan_recover(cluster, _observed_of(intent), wanted, releases)
    return plan, choice, manifest


def _plan_recover(cluster: Cluster, intent: dict[str, Any]) -> Plan:
    plan: Plan = _recover_inputs(cluster, intent)[0]
    return plan


run_cmds.PLANNERS["backup"] = _plan_backup
run_cmds.PLANNERS["recover"] = _plan_recover


# --- lifecycle backup ---


def _observation(
    cluster: Cluster, observed_file: str | None, observe_now: bool, opts: dict[str, Any]
) -> dict[str, Any] | None:
    from lifecycle.cli.status_cmds import observed_input

    observed = observed_input(
        cluster, observe_now, observed_file, opts.get("driver"), opts.get("state_dir")
    )
    return observed.to_dict() if observed is not None else None


OBSERVED_FILE = click.option(
    "--observed",
    "observed_file",
    help="plan from this observed state (`lifecycle status -f json` output)",
)


@click.command("backup")
@click.option("--inventory", "-i", required=True, help="cluster directory or cluster.yaml")
@click.option(
    "--to", "dest", help="directory the backup goes in [default: STATE_DIR/backups/CLUSTER]"
)
@click.option(
    "--observe/--no-observe",
    "observe_now",
    default=False,
    help="observe first: back up a Synced Galera member, never one observed down",
)
@OBSERVED_FILE
@click.option("--force", is_flag=True, help="run a plan the safety verifier refuses")
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@with_options(RUN_OPTIONS)
def backup_cmd(
    inventory: str,
    dest: str | None,
    observe_now: bool,
    observed_file: str | None,
    force: bool,
    yes: bool,
    **opts: Any,
) -> None:
    """Back up the cluster (a plan like any other: journaled, resumable): a full mariabackup of
    one Galera member (desynced while it runs) with the cluster's position, RabbitMQ
    definitions, Keystone's fernet and credential keys, every service's configuration, the
    inventory, the recorded state and the journal. One directory per backup (0700, files 0600)
    with a manifest of sizes and sha256 checksums; `lifecycle backups list` shows them."""
    from lifecycle.formats.inventory import load_inventory

    cluster = load_inventory(inventory)
    backup_id = new_backup_id(cluster.name)
    intent = {
        "operation": "backup",
        "backup_id": backup_id,
        "dest": str(backups_root(cluster, dest, opts.get("state_dir"))),
        "inventory_file": str(Path(cluster.source or inventory).resolve()),
        "observed": _observation(cluster, observed_file, observe_now, opts),
    }
    click.echo(f"backup {backup_id} into {intent['dest']}/{backup_id}", err=True)
    execute_operation(intent, inventory, force, yes, opts)


# --- lifecycle backups list|show|verify ---

_LOCATION = [
    click.option("--inventory", "-i", help="cluster directory or cluster.yaml (names the cluster)"),
    click.option("--dir", "directory", help="the backups' directory (what `backup --to` was)"),
    click.option("--state-dir", help="where journals and backups live [env LIFECYCLE_STATE_DIR]"),
]


def _root(inventory: str | None, directory: str | None, state_dir: str | None) -> Path:
    if directory:
        return Path(directory).resolve()
    if not inventory:
        raise UsageError.at(
            "command line",
            "--inventory/--dir",
            "-i INV (the cluster's backups in the state directory) or --dir DIR (what"
            " `backup --to` was)",
        )
    from lifecycle.formats.inventory import load_inventory

    return backups_root(load_inventory(inventory), None, state_dir)


def _size(value: Any) -> str:
    size = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


BACKUP_COLUMNS = (
    Column("id", "Backup"),
    Column("created", "Created"),
    Column("age", "Age"),
    Column("cluster", "Cluster"),
    Column("files", "Files"),
    Column("bytes", "Size", _size),
    Column("galera", "Galera position"),
)


def _row(manifest: Any) -> dict[str, Any]:
    return {
        "id": manifest.id,
        "created": manifest.created,
        "age": age_of(manifest.created),
        "cluster": manifest.cluster,
        "files": len(manifest.files),
        "bytes": manifest.size,
        "galera": str(manifest.galera) if manifest.galera else None,
    }


@click.group("backups")
def backups_group() -> None:
    """Backups made by `lifecycle backup`: list them, show one, verify its checksums."""


@backups_group.command("list")
@with_options(_LOCATION)
@output_options()
def backups_list(
    inventory: str | None,
    directory: str | None,
    state_dir: str | None,
    fmt: str,
    columns_: tuple[str, ...],
) -> None:
    """Every backup of the cluster, oldest first: id, when, age, files, size, Galera position."""
    from lifecycle.execution.backups import list_backups

    root = _root(inventory, directory, state_dir)
    rows = [_row(m) for m in list_backups(root)]
    if not rows:
        click.echo(f"no backups under {root}", err=True)
    emit_list(rows, BACKUP_COLUMNS, fmt, columns_)


@backups_group.command("show")
@click.argument("backup_id")
@with_options(_LOCATION)
@output_options(default="text", extra=("text",))
def backups_show(
    backup_id: str,
    inventory: str | None,
    directory: str | None,
    state_dir: str | None,
    fmt: str,
    columns_: tuple[str, ...],
) -> None:
    """One backup's manifest: its files with kind, size and sha256 (-f json: the manifest)."""
    from lifecycle.execution.backups import find_backup

    path, manifest = find_backup(_root(inventory, directory, state_dir), backup_id)
    if fmt.lower() == "text":
        row = _row(manifest)
        click.echo(f"backup {manifest.id} ({path})")
        for key in ("created", "age", "cluster", "files", "galera"):
            click.echo(f"  {key}: {row[key]}")
        click.echo(f"  size: {_size(manifest.size)}")
        for entry in manifest.files:
            click.echo(f"  {entry.kind:8} {entry.size:>12} {entry.sha256[:16]}  {entry.path}")
        return
    emit_show(manifest.to_dict(), fmt, columns_)


@backups_group.command("verify")
@click.argument("backup_id")
@with_options(_LOCATION)
def backups_verify(
    backup_id: str, inventory: str | None, directory: str | None, state_dir: str | None
) -> None:
    """Re-read every file of a backup and compare size and sha256 with its manifest; exit 1
    naming each file missing, changed, readable by others or not listed."""
    from lifecycle.execution.backups import find_backup, verify_backup

    path, manifest = find_backup(_root(inventory, directory, state_dir), backup_id)
    problems = verify_backup(path)
    if problems:
        raise BackupDamaged(
            f"backup {manifest.id} is damaged ({len(problems)} problem(s)):\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    click.echo(f"backup {manifest.id}: {len(manifest.files)} files intact ({path})")


# --- plan recover / run recover ---

_RECOVER = [
    click.option("--inventory", "-i", required=True, help="cluster directory or cluster.yaml"),
    click.option("--backup", "backup_id", help="the backup to restore from [default: the latest]"),
    click.option("--backups-dir", help="where the backups are (what `backup --to` was)"),
    click.option(
        "--bootstrap",
        metavar="NODE",
        help="bootstrap Galera from this member, whatever the positions say (recorded)",
    ),
    click.option(
        "--image",
        help="what Ironic deploys on a lost server it rebuilds (one with a BMC) [default: the"
        " baremetal driver's image]",
    ),
    OBSERVED_FILE,
]


def _recover_intent(
    inventory: str,
    backup_id: str | None,
    backups_dir: str | None,
    bootstrap: str | None,
    observed_file: str | None,
    driver: str | None,
    state_dir: str | None,
    image: str | None = None,
) -> tuple[Cluster, dict[str, Any]]:
    """The recover intent: the observation (always: recovery plans from what survived), the
    backups' directory, the chosen backup and --bootstrap, and the recorded releases."""
    from lifecycle.cli.status_cmds import observed_input
    from lifecycle.execution.paths import state_dir_path
    from lifecycle.execution.recorded_state import load_record
    from lifecycle.formats.inventory import load_inventory

    cluster = load_inventory(inventory)
    if backup_id is not None:
        from lifecycle.execution.backups import check_backup_id

        check_backup_id(backup_id)
    observed = observed_input(cluster, not observed_file, observed_file, driver, state_dir)
    record = load_record(state_dir_path(state_dir), cluster.name)
    intent = {
        "operation": "recover",
        "observed": observed.to_dict() if observed is not None else None,
        "backups_dir": str(backups_root(cluster, backups_dir, state_dir)),
        "backup_id": backup_id,
        "bootstrap": bootstrap,
        "image": image,
        "releases": dict(record.instances) if record is not None else {},
    }
    return cluster, intent


def _announce(cluster: Cluster, intent: dict[str, Any]) -> tuple[Plan, list[str]]:
    """Print the assessment and what will be lost (stderr); the plan and what --bootstrap
    overrode. The backup chosen (the latest when none was named) is fixed in the intent, so a
    resume plans from the same one even if a newer backup appears."""
    from lifecycle.planning.recover import BACKUP, data_loss

    plan, choice, manifest = _recover_inputs(cluster, intent)
    if manifest is not None:
        intent["backup_id"] = manifest.id
    observed = _observed_of(intent)
    for member in observed.galera if observed is not None else ():
        click.echo(
            f"galera@{member.node}: uuid {member.uuid or '?'} seqno "
            f"{'?' if member.seqno is None else member.seqno} recovered "
            f"{'?' if member.recovered is None else member.recovered} safe_to_bootstrap "
            f"{'?' if member.safe_to_bootstrap is None else int(member.safe_to_bootstrap)}",
            err=True,
        )
    if choice.source == BACKUP and manifest is not None:
        _refuse_damaged(Path(intent["backups_dir"]), manifest.id)
    start = f"{choice.node} ({choice.source}: {choice.reason})" if choice.node else choice.reason
    click.echo(f"galera starts from: {start}", err=True)
    lost = data_loss(choice, manifest)
    if choice.source == BACKUP and manifest is not None:
        lost += f", {age_of(manifest.created)} ago"
    click.echo(f"data lost: {lost}", err=True)
    overridden = [f"--bootstrap {choice.node} overrides: {o}" for o in choice.overridden]
    for line in overridden:
        click.echo(f"warning: {line}", err=True)
    return plan, overridden


def _refuse_damaged(root: Path, backup_id: str) -> None:
    """A backup to restore must be intact (`backups verify`): restoring a changed or partial
    copy would bring back a database no one can trust. InputError (exit 2) naming the problems."""
    from lifecycle.errors import InputError
    from lifecycle.execution.backups import find_backup, verify_backup

    path, _ = find_backup(root, backup_id)
    problems = verify_backup(path)
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise InputError.at(
            str(path / "manifest.json"),
            "files",
            f"an intact backup to restore (`lifecycle backups verify {backup_id}`: {shown});"
            " name another with --backup ID",
        )


def register(plan_group: click.Group, run_group: click.Group) -> None:
    """Add `plan recover` and `run recover` to the plan and run groups."""
    plan_group.add_command(plan_recover_cmd)
    run_group.add_command(run_recover_cmd)


@click.command("recover")
@with_options(_RECOVER)
@click.option("--driver", type=click.Choice(run_cmds.DRIVERS), help="who observes the cloud")
@click.option("--state-dir", help="where journals and backups live [env LIFECYCLE_STATE_DIR]")
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--output", "-o", help="write the plan to this file instead of stdout")
@click.option("--force", is_flag=True, help="emit a plan the safety verifier refuses")
def plan_recover_cmd(
    inventory: str,
    backup_id: str | None,
    backups_dir: str | None,
    bootstrap: str | None,
    image: str | None,
    observed_file: str | None,
    driver: str | None,
    state_dir: str | None,
    fmt: str,
    output: str | None,
    force: bool,
) -> None:
    """Plan a disaster recovery from what survived (observed now, or --observed FILE): which
    Galera member the cluster restarts from (the highest seqno) or which backup is restored,
    and, before anything runs, how much data that loses. Refuses (exit 3) while a member's
    position is unknown, unless --bootstrap NODE."""
    from lifecycle.cli.plan_cmds import emit_plan

    cluster, intent = _recover_intent(
        inventory, backup_id, backups_dir, bootstrap, observed_file, driver, state_dir, image
    )
    plan, _ = _announce(cluster, intent)
    emit_plan(plan, cluster, fmt, None, output, force)


@click.command("recover")
@with_options(_RECOVER)
@click.option("--force", is_flag=True, help="run a plan the safety verifier refuses")
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@with_options(RUN_OPTIONS)
def run_recover_cmd(
    inventory: str,
    backup_id: str | None,
    backups_dir: str | None,
    bootstrap: str | None,
    image: str | None,
    observed_file: str | None,
    force: bool,
    yes: bool,
    **opts: Any,
) -> None:
    """Recover the cluster after a disaster: fence the database, restart Galera from the most
    advanced member (or restore the backup), re-form RabbitMQ, put Keystone's keys back,
    unfence, health gates, a data check; then rebuild each lost server that has a BMC through
    Ironic and deploy its services. Says what data is lost and asks first (unless --yes)."""
    cluster, intent = _recover_intent(
        inventory,
        backup_id,
        backups_dir,
        bootstrap,
        observed_file,
        opts.get("driver"),
        opts.get("state_dir"),
        image,
    )
    _, overridden = _announce(cluster, intent)
    intent["observed_overridden"] = overridden
    execute_operation(intent, inventory, force, yes, opts)


COMMANDS: list[click.Command] = [backup_cmd, backups_group]
