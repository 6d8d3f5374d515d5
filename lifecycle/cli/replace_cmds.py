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
    from lifecycle.planning.replace import ReplaceIntent

    profiles: Any = ()
    replacement = _replacement(intent)
    if replacement is not None and replacement.server is not None:
        from lifecycle.formats.profiles import load_profiles

        profiles = load_profiles(intent.get("profiles"))
    dead = tuple(intent.get("node_dead") or ())
    return ReplaceIntent(intent["node"], replacement, dead, intent.get("image")), profiles


def _replacement(intent: dict[str, Any]) -> Any:
    """The intent's Replacement (None for a remove); UsageError as _inputs says."""
    from lifecycle.errors import UsageError
    from lifecycle.planning.replace import Replacement

    if intent["operation"] != "replace":
        return None
    name = intent.get("with") or intent["node"]
    server = None
    if intent.get("nodes_file"):
        from lifecycle.formats.nodes_file import load_nodes_file

        servers, _ = load_nodes_file(intent["nodes_file"])
        server = next((s for s in servers if s.name == name), None)
        if server is None:
            raise UsageError.at(intent["nodes_file"], "nodes", f"a server named {name!r}")
    address = _given_address(intent.get("address")) or (server.address if server else None)
    if intent.get("with") and server is None and address is None:
        raise UsageError.at(
            "command line",
            "--with",
            f"{name} as a server of --nodes FILE (provisioned through Ironic) or an existing"
            " host at --address ADDR: neither was given, so nothing says where it is",
        )
    return Replacement(name=name, address=address, server=server)


def _given_address(text: str | None) -> str | None:
    """--address in ipaddress's canonical form; UsageError (exit 2) when it is not an IPv4 or
    IPv6 address (it becomes the node's address in the plan and in the inventory)."""
    if text is None:
        return None
    import ipaddress

    from lifecycle.errors import UsageError

    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise UsageError.at(
            "command line", "--address", f"an IPv4 or IPv6 address, got {text!r}"
        ) from None


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
    from lifecycle.formats.inventory import inventory_file, load_inventory
    from lifecycle.formats.inventory_replace import fingerprint

    observe_now, observed_file = kw.pop("observe_now"), kw.pop("observed_file")
    update = bool(kw.pop("update_inventory", False))
    given = {k: kw.pop(k) for k in list(kw) if k in _INTENT_KEYS}
    intent = make_intent(operation, node, **given)
    # the file's bytes before it is read: --update-inventory edits it only if still the same
    path = inventory_file(inventory).resolve()
    if path.is_file():  # else load_inventory says what is wrong
        intent |= {INVENTORY_FILE: str(path), "inventory_sha256": fingerprint(path)}
    intent["update_inventory"] = update
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
    run_id = execute_operation(intent, inventory, force, yes, kw)
    if run_id is not None:  # it returns only when the run succeeded
        inventory_after(intent, run_id)


INVENTORY_FILE = "inventory_file"


def node_change(intent: dict[str, Any]) -> Any:
    """The NodeChange a replace or remove intent makes to the inventory's `nodes:`; None for a
    rebuild under the same name with nothing new given. The replacement's BMC is the nodes
    file's, without `credentials` (its login is in the nodes file, not in secrets.yaml)."""
    from dataclasses import replace

    from lifecycle.formats.inventory_replace import NodeChange

    node = intent["node"]
    if intent["operation"] == "remove":
        return NodeChange(node)
    new = _replacement(intent)
    bmc = replace(new.server.bmc, credentials=None) if new.server is not None else None
    change = NodeChange(node, new.name, new.address, bmc, keep_unset=new.name == node)
    return change if change.changes_anything else None


def inventory_after(intent: dict[str, Any], run_id: str) -> None:
    """After a replace or remove run that succeeded (also on a resume): with the run's
    --update-inventory, its node's `nodes:` entry renamed to the replacement or dropped in the
    inventory file the run started from (inventory_replace.changed_text); else the one line of
    what to edit. InventoryError (exit 2) when the file changed since the run started, or the
    entry cannot be edited: the run itself succeeded, and the message says so."""
    if intent.get("operation") not in OPERATIONS:
        return
    change = node_change(intent)
    if change is None:
        return
    path = Path(intent.get(INVENTORY_FILE) or intent.get("inventory") or "cluster.yaml")
    if not intent.get("update_inventory"):
        click.echo(f"inventory: {_what(change)} in {path} (--update-inventory does it)")
        return
    from lifecycle.errors import InventoryError

    try:
        backup = _update(path, change, intent.get("inventory_sha256"), run_id)
    except InventoryError:
        click.echo(
            f"run {run_id} succeeded; the inventory was not updated: {_what(change)}", err=True
        )
        raise
    click.echo(f"inventory updated: {_what(change, done=True)} in {path}; the old file is {backup}")
    if change.bmc is not None:
        click.echo(
            f"note: {change.new}'s BMC login is in the nodes file, not in secrets.yaml: to let"
            " lifecycle reach it later, add it to secrets.yaml and `credentials: NAME` to its `bmc`"
        )


def _update(path: Path, change: Any, recorded: str | None, run_id: str) -> Path:
    from lifecycle.errors import InputError, InventoryError
    from lifecycle.formats.inventory import load_inventory
    from lifecycle.formats.inventory_replace import changed_text, fingerprint
    from lifecycle.formats.inventory_update import write_inventory

    now = fingerprint(path)
    if recorded != now:
        raise InventoryError.at(
            str(path),
            "nodes",
            f"the file as run {run_id} found it when it started ({recorded}); it changed since"
            f" ({now}): lifecycle does not edit over someone else's edit",
        )
    text = changed_text(path.read_text(), change, str(path))

    def loads(tmp: Path) -> None:  # the edited file, before it replaces the operator's
        try:
            load_inventory(tmp)
        except InputError as exc:
            problems = "; ".join(f"{p.field}: {p.expected}" for p in exc.problems)
            raise InventoryError.at(
                str(path), "nodes", f"an edit that loads (with it, the file would not: {problems})"
            ) from None

    return write_inventory(path, text, run_id, check=loads)


def _what(change: Any, done: bool = False) -> str:
    """`node ctl-1 is now ctl-9 (address A, its bmc dropped): rename its `nodes:` entry`."""
    if change.new is None:
        return (
            f"node {change.old} removed from `nodes:`"
            if done
            else (f"remove node {change.old} from `nodes:`")
        )
    said = []
    if change.address is not None:
        said.append(f"address {change.address}")
    if change.bmc is not None:
        said.append(f"bmc {change.bmc.driver} {change.bmc.address}")
    if not change.keep_unset:
        said += [f"no {key}" for key in ("address", "bmc") if getattr(change, key) is None]
    where = f" ({', '.join(said)})" if said else ""
    if change.new == change.old:
        head = f"node {change.old} rebuilt{where}"
        return head if done else f"{head}: edit its `nodes:` entry"
    head = f"node {change.old} is now {change.new}{where}"
    return head if done else f"{head}: rename its `nodes:` entry"


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
        click.option(
            "--update-inventory",
            is_flag=True,
            help="once the run succeeded (or a resume of it did): in cluster.yaml, the node's"
            " `nodes:` entry renamed to the replacement, its address and bmc set as given"
            " (replace), or dropped (remove); every other line and comment kept, the old file"
            " kept as cluster.yaml.bak-RUN; refused (exit 2) if the file changed since the run"
            " started. Without it, the line to edit is printed",
        ),
    ]

    @click.command("replace")
    @with_options(run_common + _replacement_options + [_dead_option])
    @with_options(RUN_OPTIONS + OBSERVE_OPTIONS)
    def run_replace_cmd(inventory: str, node: str, force: bool, yes: bool, **kw: Any) -> None:
        """Replace a node, journaled and resumable (see `lifecycle plan replace`). If the node
        dies halfway, `lifecycle resume RUN --node-dead NODE` goes on without it. Once it
        succeeded, --update-inventory renames the node's `nodes:` entry to the replacement."""
        _run("replace", inventory, node, force, yes, **kw)

    @click.command("remove")
    @with_options([*run_common, _dead_option])
    @with_options(RUN_OPTIONS + OBSERVE_OPTIONS)
    def run_remove_cmd(inventory: str, node: str, force: bool, yes: bool, **kw: Any) -> None:
        """Remove a node (scale-in), journaled and resumable (see `lifecycle plan remove`).
        Once it succeeded, --update-inventory drops the node's `nodes:` entry."""
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
