"""`lifecycle plan|run replace` and `lifecycle plan|run remove`: one node out, maybe one in.

The intent (recorded in the journal, so a resume plans the same) holds the node, the
replacement (`with`: a server of `nodes_file`, else an existing host at `address`, else the same
server rebuilt), the nodes the operator confirmed dead (`node_dead`), the observation the plan
was made from and the refusals --force overrode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from lifecycle.cli.recorded_out import RECORDED_KEY
from lifecycle.model.cluster import Cluster
from lifecycle.planning.plan import Plan

OPERATIONS = ("replace", "remove")

_replacement_options = [
    click.option(
        "--with",
        "with_",
        metavar="NEW",
        help="the replacement: a server of --nodes (provisioned through Ironic), or an existing"
        " host (--address); default: the same server, rebuilt (reprovisioned when it has a BMC)",
    ),
    click.option("--nodes", "nodes_file", help="nodes file holding NEW (instackenv.json or YAML)"),
    click.option("--profiles", "profiles_dir", help="hardware profiles directory"),
    click.option("--address", help="NEW's address when it is an existing host (no BMC)"),
    click.option("--image", help="image to deploy on NEW"),
]
_dead_option = click.option(
    "--node-dead",
    "node_dead",
    multiple=True,
    metavar="NAME",
    help="the operator confirms NAME dead: planned as unreachable (its services are not"
    " stopped, its members count as lost); recorded with the run",
)


def _options(options: list[Any]) -> Any:
    def wrap(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return wrap


def make_intent(operation: str, node: str, **given: Any) -> dict[str, Any]:
    """The run intent of a replace or remove (files resolved: a resume may run elsewhere)."""
    nodes_file, profiles = given.get("nodes_file"), given.get("profiles_dir")
    return {
        "operation": operation,
        "node": node,
        "with": given.get("with_"),
        "nodes_file": str(Path(nodes_file).resolve()) if nodes_file else None,
        "profiles": str(Path(profiles).resolve()) if profiles else None,
        "address": given.get("address"),
        "image": given.get("image"),
        "node_dead": list(given.get("node_dead") or ()),
    }


def _inputs(cluster: Cluster, intent: dict[str, Any]) -> tuple[Any, Any]:
    """(ReplaceIntent, hardware profiles) from a run intent; UsageError (exit 2) for a --with
    that names no server of --nodes, or that has neither --nodes nor --address."""
    from lifecycle.errors import UsageError
    from lifecycle.planning.replace import ReplaceIntent, Replacement

    profiles: Any = ()
    replacement = None
    if intent["operation"] == "replace":
        name = intent.get("with") or intent["node"]
        server = None
        if intent.get("nodes_file"):
            from lifecycle.formats.nodes_file import load_nodes_file
            from lifecycle.formats.profiles import load_profiles

            servers, _ = load_nodes_file(intent["nodes_file"])
            server = next((s for s in servers if s.name == name), None)
            if server is None:
                raise UsageError.at(intent["nodes_file"], "nodes", f"a server named {name!r}")
            profiles = load_profiles(intent.get("profiles"))
        address = intent.get("address") or (server.address if server else None)
        if intent.get("with") and server is None and address is None:
            raise UsageError.at(
                "command line",
                "--with",
                f"{name} as a server of --nodes FILE (provisioned through Ironic) or an existing"
                " host at --address ADDR: neither was given, so nothing says where it is",
            )
        replacement = Replacement(name=name, address=address, server=server)
    dead = tuple(intent.get("node_dead") or ())
    return ReplaceIntent(intent["node"], replacement, dead, intent.get("image")), profiles


def replace_planner(cluster: Cluster, intent: dict[str, Any]) -> Plan:
    """run_cmds PLANNERS["replace"] and ["remove"]: deterministic from the intent."""
    from lifecycle.planning.replace import plan_replace

    observed = None
    if intent.get("observed") is not None:
        from lifecycle.model.observed import observed_from_dict

        observed = observed_from_dict(intent["observed"], "the run's intent")
    wanted, profiles = _inputs(cluster, intent)
    force = bool(intent.get("observed_force"))
    return plan_replace(
        cluster,
        wanted,
        observed=observed,
        profiles=profiles,
        force=force,
        recorded=_recorded_at(intent),
    )


def recorded_intent(state_dir: str | None, cluster: Cluster, node: str) -> dict[str, Any] | None:
    """The recorded state's releases of the node's services' members, as the run's intent keeps
    them (a resume plans from the same); None without a recorded state."""
    from lifecycle.cli.recorded_out import recorded_releases

    if node not in {n.name for n in cluster.nodes}:
        return None
    services = {*cluster.services_of(cluster.node(node)), "haproxy"}
    return recorded_releases(state_dir, cluster, services)


def _recorded_at(intent: dict[str, Any]) -> Any:
    from lifecycle.cli.recorded_out import recorded_of

    return recorded_of(intent)


def replace_run_cluster(cluster: Cluster, intent: dict[str, Any]) -> Cluster:
    """The cluster drivers see while the run goes: the replacement added to the old role."""
    from lifecycle.planning.replace import replaced_cluster

    return replaced_cluster(cluster, replace_planner(cluster, intent))


def refused(cluster: Cluster, intent: dict[str, Any], observed: Any, force: bool) -> list[str]:
    """The refusals of this intent: UnsafePlan (exit 3) unless `force`; with it, each is
    printed as overridden and returned for the record."""
    from lifecycle.errors import UnsafePlan
    from lifecycle.planning.replace import refusals, situation

    wanted, _ = _inputs(cluster, intent)
    sit = situation(cluster, wanted.node, observed, wanted.dead, recorded=_recorded_at(intent))
    found = refusals(sit, wanted)
    if found and not force:
        raise UnsafePlan(found)
    for refusal in found:
        click.echo(f"warning: --force overrides: {refusal}", err=True)
    return [str(r) for r in found]


def _dead_note(intent: dict[str, Any]) -> None:
    for name in intent.get("node_dead") or ():
        click.echo(f"note: {name} confirmed dead by the operator (--node-dead)", err=True)


# --- lifecycle plan replace | remove --------------------------------------------------------------


def _plan(operation: str, inventory: str, node: str, common: dict[str, Any], **rest: Any) -> None:
    from lifecycle.cli.plan_cmds import emit_plan
    from lifecycle.cli.status_cmds import observed_input
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.planning.observed import verification_view

    cluster = load_inventory(inventory)
    observing = {k: rest.pop(k) for k in ("observe_now", "observed_file", "driver", "state_dir")}
    intent = make_intent(operation, node, **rest)
    observed = observed_input(cluster, **observing)
    if observed is not None:
        intent["observed"] = observed.to_dict()
    intent[RECORDED_KEY] = recorded_intent(observing.get("state_dir"), cluster, node)
    force = common["force"]
    intent["observed_force"] = bool(refused(cluster, intent, observed, force))
    _dead_note(intent)
    plan = replace_planner(cluster, intent)
    view = verification_view(cluster, plan)
    emit_plan(plan, view, common["fmt"], common["gantt"], common["output"], force, common["start"])


def _common_args(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: kw.pop(k) for k in ("fmt", "gantt", "start", "output", "force")}


def plan_commands() -> list[click.Command]:
    """`plan replace` and `plan remove` (plan_cmds adds them to its group)."""
    from lifecycle.cli.plan_cmds import _with_common
    from lifecycle.cli.status_cmds import with_observe_options

    @click.command("replace")
    @click.option("--node", required=True, help="the node to replace")
    @_options(_replacement_options)
    @_dead_option
    @_with_common
    @with_observe_options
    def plan_replace_cmd(inventory: str, node: str, **kw: Any) -> None:
        """Plan replacing a node (a dead one, usually: plan from --observe): its stores'
        members removed and the replacement joined one at a time, gated; computes emptied;
        Ceph OSDs out, destroyed keeping their ids, recreated on the replacement."""
        _plan("replace", inventory, node, _common_args(kw), **kw)

    @click.command("remove")
    @click.option("--node", required=True, help="the node to remove")
    @_dead_option
    @_with_common
    @with_observe_options
    def plan_remove_cmd(inventory: str, node: str, **kw: Any) -> None:
        """Plan removing a node (scale-in): a replacement without the add half. Refused
        (exit 3) when a quorum store would keep fewer than 3 members, unless --force."""
        _plan("remove", inventory, node, _common_args(kw), **kw)

    return [plan_replace_cmd, plan_remove_cmd]


# --- lifecycle run replace | remove --------------------------------------------------------------


def _run(operation: str, inventory: str, node: str, force: bool, yes: bool, **kw: Any) -> None:
    from lifecycle.cli.run_cmds import execute_operation
    from lifecycle.cli.status_cmds import observed_input
    from lifecycle.formats.inventory import load_inventory

    observe_now, observed_file = kw.pop("observe_now"), kw.pop("observed_file")
    given = {k: kw.pop(k) for k in list(kw) if k in _INTENT_KEYS}
    intent = make_intent(operation, node, **given)
    cluster = load_inventory(inventory)
    observed = observed_input(
        cluster, observe_now, observed_file, kw.get("driver"), kw.get("state_dir")
    )
    if observed is not None:
        intent["observed"] = observed.to_dict()
    intent[RECORDED_KEY] = recorded_intent(kw.get("state_dir"), cluster, node)
    overridden = refused(cluster, intent, observed, force)
    intent["observed_force"] = bool(overridden)
    intent["observed_overridden"] = overridden + [
        f"{name} confirmed dead by the operator (--node-dead)" for name in intent["node_dead"]
    ]
    _dead_note(intent)
    execute_operation(intent, inventory, force, yes, kw)
    _inventory_change(intent)


def _inventory_change(intent: dict[str, Any]) -> None:
    """Say what cluster.yaml's `nodes:` must now say (the inventory is the operator's)."""
    node, new = intent["node"], intent.get("with")
    if intent["operation"] == "remove":
        click.echo(f"inventory: remove node {node} from `nodes:`")
    elif new and new != node:
        where = f" (address {intent['address']})" if intent.get("address") else ""
        click.echo(f"inventory: node {node} is now {new}{where}: rename its `nodes:` entry")


_INTENT_KEYS = ("with_", "nodes_file", "profiles_dir", "address", "image", "node_dead")


def run_commands() -> list[click.Command]:
    """`run replace` and `run remove` (run_cmds adds them to its group)."""
    from lifecycle.cli.run_cmds import RUN_OPTIONS, with_options
    from lifecycle.cli.status_cmds import OBSERVE_OPTIONS

    run_common = [
        click.option("--inventory", "-i", required=True, help="cluster directory or cluster.yaml"),
        click.option("--node", required=True, help="the node to take out"),
        click.option("--force", is_flag=True, help="run a plan the safety verifier refuses"),
        click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation"),
    ]

    @click.command("replace")
    @with_options(run_common + _replacement_options + [_dead_option])
    @with_options(RUN_OPTIONS + OBSERVE_OPTIONS)
    def run_replace_cmd(inventory: str, node: str, force: bool, yes: bool, **kw: Any) -> None:
        """Replace a node, journaled and resumable (see `lifecycle plan replace`). If the node
        dies halfway, `lifecycle resume RUN --node-dead NODE` goes on without it."""
        _run("replace", inventory, node, force, yes, **kw)

    @click.command("remove")
    @with_options([*run_common, _dead_option])
    @with_options(RUN_OPTIONS + OBSERVE_OPTIONS)
    def run_remove_cmd(inventory: str, node: str, force: bool, yes: bool, **kw: Any) -> None:
        """Remove a node (scale-in), journaled and resumable (see `lifecycle plan remove`)."""
        _run("remove", inventory, node, force, yes, **kw)

    return [run_replace_cmd, run_remove_cmd]


# --- lifecycle resume --node-dead ----------------------------------------------------------------


def dead_node_steps(plan: Plan, dead: tuple[str, ...]) -> list[str]:
    """The steps of a replace/remove plan that need a node the operator confirms dead: its
    services' stop and its routers' drain. A resume skips them (recorded as skipped): the
    plan of what is left goes on without the node. Steps that work through an API (Nova,
    Ironic) on the node (`node_down`) still run."""
    from lifecycle.planning import actions as act
    from lifecycle.planning.replace import STOP_SERVICE

    if plan.operation not in OPERATIONS or not dead:
        return []
    return [
        s.id
        for s in plan.steps
        if s.nodes
        and set(s.nodes) <= set(dead)
        and not s.param("node_down")
        and (act.playbook(s) == STOP_SERVICE or s.action == act.DRAIN_NETWORK)
    ]


def dead_node_hint(view: Any) -> str:
    """What to run when a replace/remove run stopped on a step only its node can do (its stop,
    its drain): if that node is dead, `resume --node-dead` goes on without it; "" otherwise.
    `view`: the stopped run's RunView."""
    from lifecycle.execution.states import StepState
    from lifecycle.planning.replace import NODE

    node = dict(view.plan.extra).get(NODE)
    if not isinstance(node, str):
        return ""
    stuck = set(view.in_state(StepState.FAILED)) & set(dead_node_steps(view.plan, (node,)))
    if not stuck:
        return ""
    return (
        f"if {node} is dead (check it first: this run did not stop its services),"
        f" `lifecycle resume {view.run.id} --node-dead {node}` goes on without it"
        f" (skips {', '.join(sorted(stuck))}; docs/replace.md)"
    )
