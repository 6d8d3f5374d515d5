"""`lifecycle status`: what the cloud really runs, observed through a driver, and how it differs
from the inventory. Also the `--observe/--observed FILE` options `plan` and `run` share."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from typing import Any

import click

from lifecycle.errors import UsageError
from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import ObservedState
from lifecycle.planning.differences import Difference

DRIVERS = ["sim", "testbed", "cloud"]


def driver_for(cluster: Cluster, given: str | None) -> str:
    """`--driver`, else the inventory's `driver:`; with neither, exit 2 saying how to choose
    (the same rule as `lifecycle run`)."""
    from lifecycle.cli.run_cmds import choose_driver

    return choose_driver(given, cluster)


def observe(cluster: Cluster, driver: str | None, state_dir: str | None) -> ObservedState:
    from lifecycle.execution.observe import observe_cluster
    from lifecycle.execution.paths import state_dir as resolve

    return observe_cluster(driver_for(cluster, driver), cluster, resolve(state_dir))


def observed_input(
    cluster: Cluster,
    observe_now: bool,
    observed_file: str | None,
    driver: str | None,
    state_dir: str | None,
) -> ObservedState | None:
    """The observed state `plan`/`run` start from (None: plan from the inventory alone); its
    differences from the inventory are printed (stderr) before anything else."""
    if observed_file and observe_now:
        raise UsageError.at("--observed", "", "either --observe or --observed FILE, not both")
    if observed_file:
        from lifecycle.model.observed import load_observed

        observed = load_observed(observed_file)
        if observed.cluster and observed.cluster != cluster.name:
            raise UsageError.at(
                observed_file, "cluster", f"{cluster.name!r} (observed {observed.cluster!r})"
            )
    elif observe_now:
        observed = observe(cluster, driver, state_dir)
    else:
        return None
    print_differences(cluster, observed)
    return observed


def print_differences(cluster: Cluster, observed: ObservedState) -> None:
    from lifecycle.planning.differences import differences

    found = differences(cluster, observed)
    when = f" at {observed.observed_at}" if observed.observed_at else ""
    count = f"{len(found)} difference(s)" if found else "no differences"
    click.echo(
        f"{cluster.name} observed by {observed.driver}{when}: {count} from the inventory", err=True
    )
    for diff in found:
        click.echo(f"  differs: {diff}", err=True)
    for what in observed.unobservable:
        click.echo(f"not observed: {what}", err=True)


OBSERVE_OPTIONS: list[Callable[[Any], Any]] = [
    click.option(
        "--observe/--no-observe",
        "observe_now",
        default=False,
        show_default=True,
        help="observe the cloud through the driver first and plan from what it runs",
    ),
    click.option(
        "--observed",
        "observed_file",
        help="plan from this observed state (`lifecycle status -f json` output)",
    ),
]


def with_observe_options(func: Any) -> Any:
    """--observe/--no-observe, --observed FILE, and the driver and state dir to observe with
    (for commands that have no --driver of their own: `plan upgrade`)."""
    options = [
        *OBSERVE_OPTIONS,
        click.option(
            "--driver", type=click.Choice(DRIVERS), help="with --observe: who observes the cloud"
        ),
        click.option(
            "--state-dir",
            help="where journals, recorded states and the sim cloud live [env LIFECYCLE_STATE_DIR]",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def observed_intent(
    inventory: str,
    intent: dict[str, Any],
    force: bool,
    observe_now: bool,
    observed_file: str | None,
    opts: dict[str, Any],
) -> dict[str, Any]:
    """What `run upgrade` adds to its intent from the observed state (recorded in the journal,
    so a resume plans the same): the observation, and the refusals --force overrides."""
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.planning.observed import observed_refusals

    cluster = load_inventory(inventory)
    observed = observed_input(
        cluster, observe_now, observed_file, opts.get("driver"), opts.get("state_dir")
    )
    if observed is None:
        return {}
    refused = observed_refusals(cluster, observed, intent["target"], intent.get("ceph_target"))
    if refused and not force:
        from lifecycle.errors import UnsafePlan

        raise UnsafePlan(refused)
    for refusal in refused:
        click.echo(f"warning: --force overrides: {refusal}", err=True)
    return {
        "observed": observed.to_dict(),
        "observed_force": bool(force and refused),
        "observed_overridden": [str(r) for r in refused],
    }


# --- rendering: one function, so a shared formatter can replace it -------------------------------


def render_status(
    cluster: Cluster, observed: ObservedState, found: Sequence[Difference], fmt: str
) -> str:
    """The observed state as `fmt` (table | json | yaml). json/yaml are ObservedState.to_dict()
    plus `differences`; `observed_from_dict` reads them back."""
    data = {**observed.to_dict(), "differences": [vars(d) for d in found]}
    if fmt == "json":
        return json.dumps(data, indent=1) + "\n"
    if fmt == "yaml":
        import yaml

        return str(yaml.safe_dump(data, sort_keys=False))
    return _table(cluster, observed, found)


def _table(cluster: Cluster, observed: ObservedState, found: Sequence[Difference]) -> str:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=io.StringIO(), record=True, width=120, force_terminal=False)
    nodes = Table(title=f"{cluster.name}: nodes and service instances ({observed.driver})")
    for column in ("node", "state", "instances"):
        nodes.add_column(column)
    for node in observed.nodes:
        by_release: dict[str, list[str]] = {}
        for i in observed.instances:
            if i.node == node.name:
                by_release.setdefault(i.release, []).append(i.service)
        text = "; ".join(f"{r}: {', '.join(s)}" for r, s in by_release.items()) or "-"
        nodes.add_row(node.name, node.state + (f" ({node.detail})" if node.detail else ""), text)
    console.print(nodes)
    if observed.stores:
        stores = Table(title="clustered stores")
        for column in ("store", "health", "quorum", "members", "status", "flags"):
            stores.add_column(column)
        for s in observed.stores:
            fields = ", ".join(f"{k}={v}" for k, v in s.status)
            stores.add_row(
                s.service + (" (stand-in)" if s.standin else ""),
                s.health,
                {True: "yes", False: "NO", None: "unknown"}[s.quorum],
                ", ".join(s.members) or "-",
                fields or "-",
                ", ".join(s.flags) or "-",
            )
        console.print(stores)
    if observed.galera:  # what a recovery chooses the member to bootstrap by
        galera = Table(title="galera members (grastate.dat, --wsrep-recover)")
        for column in ("member", "state", "uuid", "seqno", "recovered", "safe_to_bootstrap"):
            galera.add_column(column)
        for g in observed.galera:
            galera.add_row(
                g.node,
                g.state or ("no data" if g.has_data is False else "-"),
                g.uuid or "?",
                "?" if g.seqno is None else str(g.seqno),
                "?" if g.recovered is None else str(g.recovered),
                _yn(g.safe_to_bootstrap),
            )
        console.print(galera)
    if observed.computes:
        computes = Table(title="computes")
        for column in ("host", "enabled", "up", "instances"):
            computes.add_column(column)
        for c in observed.computes:
            computes.add_row(
                c.node, _yn(c.enabled), _yn(c.up), "?" if c.instances is None else str(c.instances)
            )
        console.print(computes)
    lines = [console.export_text()]
    lines += [f"differs: {d}" for d in found] or ["no differences from the inventory"]
    lines += [f"not observed: {what}" for what in observed.unobservable]
    return "\n".join(lines) + "\n"


def _yn(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


@click.command("status")
@click.option("--inventory", "-i", required=True, help="cluster directory or cluster.yaml")
@click.option(
    "--driver", type=click.Choice(DRIVERS), help="who observes (default: the inventory's driver)"
)
@click.option("--state-dir", help="where journals and the sim cloud live [env LIFECYCLE_STATE_DIR]")
@click.option(
    "--format", "-f", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table"
)
def status_cmd(inventory: str, driver: str | None, state_dir: str | None, fmt: str) -> None:
    """What the cloud runs now (through the driver) and how it differs from the inventory."""
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.planning.differences import differences

    cluster = load_inventory(inventory)
    observed = observe(cluster, driver, state_dir)
    click.echo(render_status(cluster, observed, differences(cluster, observed), fmt), nl=False)


COMMANDS: list[click.Command] = [status_cmd]
