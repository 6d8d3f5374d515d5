"""`lifecycle nodes import|list|show` and `lifecycle profiles match`: new servers in Ironic.

Ironic is reached with --ironic-url (or $LIFECYCLE_IRONIC_URL, a standalone Ironic without auth)
or --os-cloud (alias --cloud; also `lifecycle --os-cloud` and $OS_CLOUD: a clouds.yaml
entry). `scale_out_inputs` is what `lifecycle plan scale-out` and `lifecycle run scale-out`
call to load everything a scale-out plan needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from lifecycle.cli.output import Column, emit_list, output_options
from lifecycle.errors import ExecutionError, LifecycleError, PlanningError

F = TypeVar("F", bound=Callable[..., Any])


def ironic_options(func: F) -> F:
    func = click.option(
        "--os-cloud",
        "--cloud",
        "cloud",
        metavar="NAME",
        help="clouds.yaml entry (default: lifecycle --os-cloud, $OS_CLOUD)",
    )(func)
    func = click.option(
        "--ironic-url", help="standalone Ironic endpoint, no auth (default: $LIFECYCLE_IRONIC_URL)"
    )(func)
    return func


PROFILES = click.option("--profiles", "profiles_dir", help="hardware profiles directory")


def _driver(ironic_url: str | None, cloud: str | None) -> Any:
    from lifecycle.cli.context import OPTIONS
    from lifecycle.drivers.baremetal import BaremetalDriver

    return BaremetalDriver(cloud=cloud or OPTIONS.os_cloud, endpoint=ironic_url)


@dataclass(frozen=True)
class ScaleOutInputs:
    """What a scale-out run needs: the cluster grown by the new servers (drivers address them by
    role), the plan, and the secrets (the cluster's and the nodes file's BMC logins)."""

    cluster: Any
    plan: Any
    secrets: Any


def scale_out_inputs(
    inventory: str,
    nodes_file: str,
    profiles_dir: str | None = None,
    image: str | None = None,
    ironic_url: str | None = None,
    cloud: str | None = None,
    *,
    observing: dict[str, Any] | None = None,
    force: bool = False,
) -> ScaleOutInputs:
    """Load inventory, nodes file and profiles; when Ironic is reachable (--ironic-url/--cloud)
    servers it has already inspected are matched now, so problems show before anything runs.
    `observing`: the --observe options (`with_observe_options`): the plan starts from the
    observation, else the recorded state (`live_state`)."""
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.formats.nodes_file import load_nodes_file
    from lifecycle.formats.profiles import load_profiles
    from lifecycle.planning.scale_out import ScaleOutOptions, grown_cluster, plan_scale_out

    cluster = load_inventory(inventory)
    new_nodes, _ = load_nodes_file(nodes_file)
    warn_ignored(new_nodes)
    profiles = load_profiles(profiles_dir)
    inspected: dict[str, Any] = {}
    if ironic_url or cloud:
        inspected = dict(_inspected(_driver(ironic_url, cloud), [n.name for n in new_nodes]))
    options = ScaleOutOptions(image=image)
    intent = {"operation": "scale-out", "nodes_file": nodes_file, "profiles": profiles_dir}
    live_state(cluster, intent, observing or {}, force, inspected)
    plan = plan_scale_out(
        cluster, new_nodes, profiles, inspected=inspected, options=options,
        live=live_of(intent), force=force,
    )  # fmt: skip
    grown = grown_cluster(cluster, new_nodes, profiles, inspected)
    return ScaleOutInputs(grown, plan, scale_out_secrets(cluster, {"nodes_file": nodes_file}))


def live_state(
    cluster: Any,
    intent: dict[str, Any],
    observing: dict[str, Any],
    force: bool,
    inspected: dict[str, Any] | None = None,
) -> None:
    """Add to a scale-out's intent what the cloud runs (kept in the journal, so a resume plans
    the same): the observation (`observing`: --observe, --observed FILE, --driver, --state-dir),
    the recorded state's releases, and the refusals (rule ``release``) --force overrides;
    UnsafePlan (exit 3) for those without --force."""
    from lifecycle.cli.recorded_out import RECORDED_KEY, recorded_releases
    from lifecycle.cli.status_cmds import observed_input
    from lifecycle.errors import UnsafePlan
    from lifecycle.planning.scale_out import scale_out_refusals

    state_dir = observing.get("state_dir")
    observed = observed_input(
        cluster,
        bool(observing.get("observe_now")),
        observing.get("observed_file"),
        observing.get("driver"),
        state_dir,
    )
    if observed is not None:
        intent["observed"] = observed.to_dict()
    intent[RECORDED_KEY] = recorded_releases(state_dir, cluster)
    new_nodes, _, (profiles, options) = _intent_inputs(cluster, intent)
    live = live_of(intent)
    refused = scale_out_refusals(
        cluster, new_nodes, profiles, live, inspected=inspected, options=options
    )
    if refused and not force:
        raise UnsafePlan(refused)
    for refusal in refused:
        click.echo(f"warning: --force overrides: {refusal}", err=True)
    intent["observed_force"] = bool(refused)
    intent["observed_overridden"] = [str(r) for r in refused]


def live_of(intent: dict[str, Any]) -> Any:
    """The planner's LiveState from a scale-out's intent (its observation, recorded releases)."""
    from lifecycle.cli.recorded_out import recorded_of
    from lifecycle.planning.scale_out import LiveState

    observed = None
    if intent.get("observed") is not None:
        from lifecycle.model.observed import observed_from_dict

        observed = observed_from_dict(intent["observed"], "the run's intent")
    return LiveState(observed, recorded_of(intent))


# --- the run_cmds PLANNERS entry: deterministic from the intent's files (resume re-plans) -------


def _intent_inputs(cluster: Any, intent: dict[str, Any]) -> tuple[Any, Any, Any]:
    from lifecycle.formats.nodes_file import load_nodes_file
    from lifecycle.formats.profiles import load_profiles
    from lifecycle.planning.scale_out import ScaleOutOptions

    new_nodes, logins = load_nodes_file(intent["nodes_file"])
    profiles = load_profiles(intent.get("profiles"))
    options = ScaleOutOptions(
        image=intent.get("image"), deploy_interface=intent.get("deploy_interface") or "ramdisk"
    )
    return new_nodes, logins, (profiles, options)


def scale_out_planner(cluster: Any, intent: dict[str, Any]) -> Any:
    """PLANNERS["scale-out"]: intent {nodes_file, profiles?, image?, deploy_interface?,
    observed?, recorded?, observed_force?}: the same plan on a resume."""
    from lifecycle.planning.scale_out import plan_scale_out

    new_nodes, _, (profiles, options) = _intent_inputs(cluster, intent)
    warn_ignored(new_nodes)
    return plan_scale_out(
        cluster,
        new_nodes,
        profiles,
        options=options,
        live=live_of(intent),
        force=bool(intent.get("observed_force")),
    )


def scale_out_cluster(cluster: Any, intent: dict[str, Any]) -> Any:
    """The cluster a scale-out run should be given: new servers added to their roles."""
    from lifecycle.planning.scale_out import grown_cluster

    new_nodes, _, (profiles, _) = _intent_inputs(cluster, intent)
    return grown_cluster(cluster, new_nodes, profiles)


def scale_out_secrets(cluster: Any, intent: dict[str, Any]) -> Any:
    """The cluster's secrets with the nodes file's BMC logins (never written anywhere)."""
    from lifecycle.formats.secrets import Secrets, load_secrets

    _, logins, _ = _intent_inputs(cluster, intent)
    base = load_secrets(cluster) if cluster.credentials else Secrets()
    return base.merged(logins)


def warn_ignored(new_nodes: Sequence[Any]) -> None:
    """Say which keys of the nodes file TripleO would take but lifecycle ignores, and why."""
    for node in new_nodes:
        for warning in node.warnings:
            click.echo(f"warning: {warning}", err=True)


def _inspected(driver: Any, names: Sequence[str]) -> Iterator[tuple[str, Any]]:
    for name in names:
        node = driver.api.find_node(name, ignore_missing=True)
        if node is not None and driver._has_inventory(node):
            yield name, driver.inventory(name)


# --- lifecycle nodes ... -------------------------------------------------------------------------


@click.group("nodes")
def nodes_group() -> None:
    """New servers in Ironic: import (enroll and inspect), list, show."""


@nodes_group.command("import")
@click.option("--inventory", "-i", required=True, help="cluster directory or its cluster.yaml")
@click.argument("nodes_file")
@click.option("--inspect/--no-inspect", default=True, help="inspect after enrolling (default)")
@click.option("--concurrency", default=4, show_default=True, help="servers handled at once")
@ironic_options
def import_cmd(
    inventory: str,
    nodes_file: str,
    inspect: bool,
    concurrency: int,
    ironic_url: str | None,
    cloud: str | None,
) -> None:
    """Enroll the servers of NODES_FILE (instackenv.json or YAML) in Ironic and inspect them."""
    from lifecycle.drivers.base import StepContext
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.formats.nodes_file import load_nodes_file
    from lifecycle.planning.scale_out import import_steps

    cluster = load_inventory(inventory)
    new_nodes, logins = load_nodes_file(nodes_file)
    warn_ignored(new_nodes)
    driver = _driver(ironic_url, cloud)
    ctx = StepContext(run_id="nodes-import", cluster=cluster, secrets=dict(logins.items()))

    def one(node: Any) -> tuple[str, bool, str]:
        for step in import_steps(node)[: 2 if inspect else 1]:
            result = driver.run(step, ctx)
            if not result.ok:
                return node.name, False, result.error or "failed"
        return node.name, True, "inspected" if inspect else "manageable"

    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        outcomes = list(pool.map(one, new_nodes))
    driver.close()
    for name, ok, detail in outcomes:
        click.echo(f"{name}: {'ok' if ok else 'FAILED'}: {detail}")
    failed = sum(1 for _, ok, _ in outcomes if not ok)
    if failed:
        raise ExecutionError(f"{failed} of {len(outcomes)} server(s) could not be imported")


NODE_COLUMNS = (
    Column("name", "Name"),
    Column("uuid", "UUID"),
    Column("provision_state", "Provision State"),
    Column("power_state", "Power State"),
    Column("profile", "Profile"),
    Column("maintenance", "Maintenance"),
    Column("last_error", "Last Error"),
)


@nodes_group.command("list")
@ironic_options
@output_options()
def list_cmd(
    ironic_url: str | None, cloud: str | None, fmt: str, columns_: tuple[str, ...]
) -> None:
    """Every Ironic node: provision state, power, profile, last error."""
    from lifecycle.drivers.baremetal import capabilities

    driver = _driver(ironic_url, cloud)
    try:
        rows = [
            {
                "name": node.name or node.id,
                "uuid": node.id,
                "provision_state": node.provision_state,
                "power_state": node.power_state,
                "profile": capabilities(node).get("profile"),
                "maintenance": bool(node.is_maintenance),
                "last_error": node.last_error,
            }
            for node in driver.api.nodes(details=True)
        ]
    finally:
        driver.close()
    emit_list(rows, NODE_COLUMNS, fmt, columns_)


@nodes_group.command("show")
@click.argument("node")
@PROFILES
@ironic_options
def show_cmd(
    node: str, profiles_dir: str | None, ironic_url: str | None, cloud: str | None
) -> None:
    """One node: state, profile, traits, inspected hardware and why it matches (or not)."""
    from lifecycle.drivers.baremetal import capabilities
    from lifecycle.formats.profiles import load_profiles
    from lifecycle.planning.profiles import facts_from_inventory, match_node

    driver = _driver(ironic_url, cloud)
    found = driver.api.find_node(node, ignore_missing=True)
    if found is None:
        raise LifecycleError(f"no node {node!r} in Ironic")
    click.echo(f"{found.name}: {found.provision_state} (power {found.power_state})")
    click.echo(f"  driver: {found.driver}, uuid {found.id}")
    click.echo(f"  profile: {capabilities(found).get('profile', '-')}")
    click.echo(f"  traits: {', '.join(found.traits or []) or '-'}")
    if found.last_error:
        click.echo(f"  last error: {found.last_error}")
    if not driver._has_inventory(found):
        click.echo("  not inspected yet")
        return
    verdict = match_node(
        node, facts_from_inventory(driver.inventory(node)), load_profiles(profiles_dir)
    )
    driver.close()
    click.echo("  hardware: " + ", ".join(f"{k} {v}" for k, v in verdict.facts.summary().items()))
    click.echo("  profiles:")
    for line in verdict.explain():
        click.echo(f"    {line}")


# --- lifecycle profiles match -------------------------------------------------------------------


@click.group("profiles")
def profiles_group() -> None:
    """Hardware profiles (hardware_profiles/*.yaml)."""


@profiles_group.command("match")
@click.option("--inventory", "-i", required=True, help="cluster directory or its cluster.yaml")
@click.option("--nodes", "nodes_file", help="only the servers of this nodes file")
@click.option("--dry-run", is_flag=True, help="explain only; do not set capabilities and traits")
@PROFILES
@ironic_options
@output_options(default="text", extra=("text",))
def match_cmd(
    inventory: str,
    nodes_file: str | None,
    dry_run: bool,
    profiles_dir: str | None,
    ironic_url: str | None,
    cloud: str | None,
    fmt: str,
    columns_: tuple[str, ...],
) -> None:
    """Match inspected servers to hardware profiles, explain each verdict, then tag them."""
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.formats.nodes_file import load_nodes_file
    from lifecycle.formats.profiles import load_profiles
    from lifecycle.planning.profiles import match_all, shortfalls

    cluster = load_inventory(inventory)
    profiles = load_profiles(profiles_dir)
    driver = _driver(ironic_url, cloud)
    existing = {n.name for n in cluster.nodes}
    if nodes_file:
        names = [n.name for n in load_nodes_file(nodes_file)[0]]
    else:
        names = [n.name for n in driver.api.nodes() if n.name and n.name not in existing]
    matches = match_all(dict(_inspected(driver, names)), profiles)
    if fmt.lower() == "text" and not columns_:
        for m in matches:
            click.echo(f"{m.node}: {m.chosen.name if m.chosen else 'NO MATCH'}")
            for line in m.explain():
                click.echo(f"    {line}")
    else:
        rows = [
            {"node": m.node, "profile": m.chosen.name if m.chosen else None, "why": m.explain()}
            for m in matches
        ]
        table = "table" if fmt.lower() == "text" else fmt
        emit_list(
            rows,
            (Column("node", "Node"), Column("profile", "Profile"), Column("why", "Why")),
            table,
            columns_,
        )
    problems = shortfalls(matches, {})
    problems += [f"{n}: not inspected" for n in names if n not in {m.node for m in matches}]
    if not dry_run:
        for m in matches:
            if m.chosen is not None:
                _tag(driver, m.node, m.chosen.name)
        tagged = sum(1 for m in matches if m.chosen)
        click.echo(f"tagged {tagged} server(s)", err=fmt.lower() != "text")
    driver.close()
    if problems:
        raise PlanningError("profile matching found problems:\n  - " + "\n  - ".join(problems))


def _tag(driver: Any, name: str, profile: str) -> None:
    from lifecycle.drivers.baremetal import with_capability
    from lifecycle.planning.profiles import trait_for

    node = driver.api.get_node(name)
    caps = with_capability(node.properties or {}, "profile", profile)
    driver.api.patch_node(node, [{"op": "add", "path": "/properties/capabilities", "value": caps}])
    if trait_for(profile) not in (node.traits or []):
        driver.api.add_node_trait(node, trait_for(profile))


COMMANDS: list[click.Command] = [nodes_group, profiles_group]
