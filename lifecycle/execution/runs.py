"""Starting a run and preparing one for resume: digests, the inventory summary and what to do
with steps a dead process left mid-flight."""

from __future__ import annotations

import secrets as _random
import time
from collections.abc import Callable, Collection
from typing import Any

from lifecycle.drivers.base import StepContext
from lifecycle.errors import ResumeRefused, RunStopped
from lifecycle.execution.fingerprint import REPLANNED_FROM_INTENT, planner_fingerprint
from lifecycle.execution.journal import Journal
from lifecycle.execution.records import RunRecord, RunTransition, StepTransition
from lifecycle.execution.replay import RunView, advanced, replay
from lifecycle.execution.routing import Router
from lifecycle.execution.states import RunState, StepState, run_transition
from lifecycle.formats.plan_json import plan_from_own_json, plan_to_json
from lifecycle.model.cluster import Cluster
from lifecycle.planning.plan import Plan, Step


def new_run_id(cluster: str, now: float | None = None) -> str:
    """`<cluster>-<UTC time>-<4 hex>`: sortable, and names its cluster."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    return f"{cluster}-{stamp}-{_random.token_hex(2)}"


def inventory_summary(cluster: Cluster) -> dict[str, Any]:
    """Enough of the inventory to say what changed when its digest no longer matches."""
    return {
        "release": cluster.release,
        "ceph_release": cluster.ceph_release,
        "nodes": {n.name: f"{n.role} {n.address or ''} {n.failure_domain}" for n in cluster.nodes},
        "roles": {r.name: list(r.services) for r in cluster.roles},
        "policies": repr(cluster.policies),
    }


def start_run(
    journal: Journal,
    plan: Plan,
    cluster: Cluster,
    intent: dict[str, Any] | None = None,
    run_id: str | None = None,
    clock: Callable[[], float] = time.time,
) -> RunView:
    """Record a new run (plan, digests, intent) in the RUNNING state."""
    now = clock()
    record = RunRecord(
        id=run_id or new_run_id(cluster.name, now),
        cluster=cluster.name,
        operation=plan.operation,
        created=now,
        plan_json=plan_to_json(plan, indent=None),
        plan_digest=plan.digest,
        inventory_digest=cluster.digest,
        intent=dict(intent or {}),
        inventory=inventory_summary(cluster),
    )
    journal.create_run(record)
    journal.record_run(RunTransition(record.id, RunState.RUNNING, now, "started"))
    return replay(journal, record.id, plan)


def _diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changes = []
    for key in ("release", "ceph_release", "policies"):
        if old.get(key) != new.get(key):
            changes.append(f"{key}: {old.get(key)} -> {new.get(key)}")
    for key in ("nodes", "roles"):
        was, now = old.get(key, {}), new.get(key, {})
        for name in sorted(set(was) | set(now)):
            if name not in now:
                changes.append(f"{key[:-1]} {name} removed")
            elif name not in was:
                changes.append(f"{key[:-1]} {name} added")
            elif was[name] != now[name]:
                changes.append(f"{key[:-1]} {name}: {was[name]} -> {now[name]}")
    return changes


def planned_with(intent: dict[str, Any]) -> dict[str, Any]:
    """`intent` with what resume needs to know that planning again would give the same plan:
    the planner's fingerprint (lifecycle.execution.fingerprint), for operations planned from
    the inventory and the intent alone."""
    if intent.get("operation") not in REPLANNED_FROM_INTENT:
        return intent
    return {**intent, "planner": planner_fingerprint()}


def replans_the_same(record: RunRecord, cluster: Cluster) -> bool:
    """Whether planning `record`'s run again from `cluster` gives the journal's plan without
    planning it: its operation plans from the inventory and the recorded intent alone, the
    inventory's digest is the one recorded and so is the planner's fingerprint. False for a run
    recorded without a fingerprint (made before it was recorded): that one is planned again."""
    fingerprint = planner_fingerprint()
    return (
        bool(fingerprint)
        and record.intent.get("operation") in REPLANNED_FROM_INTENT
        and cluster.digest == record.inventory_digest
        and record.intent.get("planner") == fingerprint
    )


def journal_plan(record: RunRecord) -> Plan:
    """The run's plan from the journal's copy (its digest known when the copy is intact)."""
    return plan_from_own_json(record.plan_json, record.plan_digest)


def stored_plan(record: RunRecord, plan_now: Plan | None) -> Plan:
    """The run's plan: `plan_now` itself when it is the journal's copy byte for byte (the usual
    resume: the same inventory planned again), else the journal's copy, parsed. Either way
    check_resumable then compares the two."""
    # the text first (`and` keeps the order): building it fills in plan_now's digest
    if (
        plan_now is not None
        and plan_to_json(plan_now, indent=None) == record.plan_json
        and plan_now.digest == record.plan_digest
    ):
        return plan_now
    return journal_plan(record)


def check_resumable(view: RunView, cluster: Cluster, plan_now: Plan | None = None) -> Plan:
    """Refuse to resume a finished run, a run whose inventory or plan changed (saying what changed)
    or whose stored plan no longer matches its digest; return the run's plan."""
    run = view.run
    if view.state.final:
        raise ResumeRefused(f"run {run.id} is {view.state.value}; there is nothing to resume")
    plan = view.plan
    if plan.digest != run.plan_digest:
        raise ResumeRefused(
            f"run {run.id}: the journal's plan does not match its digest {run.plan_digest}"
        )
    if cluster.digest != run.inventory_digest:
        changes = _diff(run.inventory, inventory_summary(cluster)) or ["(details not recorded)"]
        raise ResumeRefused(
            f"run {run.id}: the inventory of {cluster.name} changed since the run started:\n  "
            + "\n  ".join(changes)
            + "\nfinish or abort this run before changing the inventory"
        )
    if plan_now is not None and plan_now.digest != plan.digest:
        raise ResumeRefused(f"run {run.id}: the plan changed:\n  " + _plan_diff(plan, plan_now))
    return plan


def _plan_diff(old: Plan, new: Plan) -> str:
    gone = sorted(set(old.by_id) - set(new.by_id))
    added = sorted(set(new.by_id) - set(old.by_id))
    changed = sorted(s for s in set(old.by_id) & set(new.by_id) if old.by_id[s] != new.by_id[s])
    parts = [
        f"{label}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}"
        for label, items in (("removed", gone), ("added", added), ("changed", changed))
        if items
    ]
    return "\n  ".join(parts) or f"digest {old.digest} -> {new.digest} (schedule or metadata)"


def settle(
    journal: Journal,
    view: RunView,
    router: Router,
    cluster: Cluster,
    accept: Collection[str] = (),
    rerun: Collection[str] = (),
    clock: Callable[[], float] = time.time,
    skip: Collection[str] = (),
) -> RunView:
    """Decide, before the engine runs again, about every step a previous process did not finish.
    Steps in `skip` not yet done (their node is confirmed dead: nothing of theirs can or need be
    done) become SKIPPED when never started, SUCCEEDED when a started attempt failed or is in
    doubt, noted "skipped: node confirmed dead by the operator".

    RUNNING (caught mid-flight), INTERRUPTED (stopped mid-flight by the operator) and FAILED
    steps are probed: effect there -> SUCCEEDED; else
    re-run if idempotent, or if the driver's probe is exact and says the effect is absent;
    otherwise IN_DOUBT until the operator says `--accept` or `--rerun`. RETRYING steps (an
    attempt failed, the next had not started) simply run again."""
    plan = view.plan
    unknown = sorted((set(accept) | set(rerun)) - set(plan.by_id))
    if unknown:
        raise ResumeRefused(f"run {view.run.id} has no step {', '.join(unknown)}")
    now, out = clock(), []
    for sid, step_view in view.steps.items():
        state, step = step_view.state, plan.by_id[sid]
        attempt = step_view.attempts
        new, note = _settle_one(state, sid, accept, rerun)
        if sid in skip and state in _SKIPPABLE:
            new, note = _SKIPPABLE[state], "skipped: node confirmed dead by the operator"
        if new is None and state in _PROBED:
            new, note = _probe(router, step, StepContext(run_id=view.run.id, cluster=cluster))
        if new is None:
            continue
        out.append(StepTransition(view.run.id, sid, new, now, attempt, {"resume": note}))
    if out:
        journal.record_steps(out)
    return advanced(view, out)


# steps whose effect is unknown when the engine starts again: they are probed before anything runs
_PROBED = (StepState.RUNNING, StepState.INTERRUPTED, StepState.FAILED)
# resume --node-dead: what a step of the dead node becomes, by its state
_SKIPPABLE = {
    StepState.PENDING: StepState.SKIPPED,
    **{s: StepState.SUCCEEDED for s in (*_PROBED, StepState.IN_DOUBT)},
}


def _probe(router: Router, step: Step, ctx: StepContext) -> tuple[StepState, str]:
    driver = router.for_step(step)
    found = driver.probe(step, ctx)
    if found is True:
        return StepState.SUCCEEDED, "probe: effect already in place"
    if driver.is_idempotent(step):
        return StepState.PENDING, "re-run (idempotent)"
    if found is False and driver.probe_is_exact(step):
        return StepState.PENDING, "probe: effect absent, running it"
    why = "probe cannot tell" if found is None else "probe: effect incomplete or absent"
    return StepState.IN_DOUBT, f"{why}; not idempotent"


def _settle_one(
    state: StepState, sid: str, accept: Collection[str], rerun: Collection[str]
) -> tuple[StepState | None, str]:
    if sid in accept and (state is StepState.IN_DOUBT or state in _PROBED):
        return StepState.SUCCEEDED, "accepted by the operator"
    if sid in rerun and (state is StepState.IN_DOUBT or state in _PROBED):
        return StepState.PENDING, "re-run by the operator"
    if state is StepState.RETRYING:
        return StepState.PENDING, "resumed between attempts"
    return None, ""


def reopen(
    journal: Journal, view: RunView, reason: str, clock: Callable[[], float] = time.time
) -> RunView:
    """Mark the run RUNNING again (resume), or NEEDS_OPERATOR and stop if steps are in doubt."""
    doubt = view.in_state(StepState.IN_DOUBT)
    if doubt:
        if view.state is not RunState.NEEDS_OPERATOR:
            state = run_transition(view.run.id, view.state, RunState.NEEDS_OPERATOR)
            journal.record_run(RunTransition(view.run.id, state, clock(), "steps in doubt"))
        flags = " ".join(f"--accept {s}" for s in doubt[:3])
        raise RunStopped(
            f"run {view.run.id} needs the operator: step(s) {', '.join(doubt)} were caught"
            " mid-flight, are not idempotent and their effect cannot be probed. Check them, then"
            f" `lifecycle resume {view.run.id} {flags}` (the effect is there) or"
            f" `--rerun STEP` (run it again)"
        )
    run_transition(view.run.id, view.state, RunState.RUNNING)
    running = RunTransition(view.run.id, RunState.RUNNING, clock(), reason)
    journal.record_run(running)
    return advanced(view, run=running)


def left_behind(view: RunView) -> dict[str, Any]:
    """What the journal knows of the cluster's state if the run stops now: steps done and in
    flight, and for each upgraded service the release of each of its instances (instances no
    finished step upgraded are still at the plan's source release).

    Shape: {"done": int, "in_flight": [step ids], "pending": int,
            "services": {service: {release: [nodes]}}}."""
    from lifecycle.catalog import load_catalog

    plan = view.plan
    services_spec = load_catalog().services
    ceph_from = dict(plan.extra).get("ceph_from")  # Ceph daemons start at the Ceph release
    at: dict[str, dict[str, str]] = {}
    for step in plan.steps:
        for instance in step.upgrades:
            service, _, node = instance.partition("@")
            spec = services_spec.get(service)
            start = ceph_from if spec is not None and spec.ceph and ceph_from else plan.source
            at.setdefault(service, {}).setdefault(node, str(start or "?"))
    for sid, step_view in view.steps.items():
        step = plan.by_id[sid]
        if not step_view.state.done or not step.upgrades:
            continue
        release = str(step.param("release") or plan.target or "?")
        for instance in step.upgrades:
            service, _, node = instance.partition("@")
            at[service][node] = release
    services: dict[str, dict[str, list[str]]] = {}
    for service, nodes in sorted(at.items()):
        for node, release in nodes.items():
            services.setdefault(service, {}).setdefault(release, []).append(node)
    return {
        "done": sum(1 for s in view.steps.values() if s.state.done),
        "in_flight": view.in_state(StepState.RUNNING, StepState.RETRYING),
        "pending": len(view.in_state(StepState.PENDING)),
        "services": services,
    }


def describe_left_behind(state: dict[str, Any]) -> str:
    """`left_behind` as text for `lifecycle abort`."""
    lines = [
        f"  steps done: {state['done']}, not started: {state['pending']}",
        "  in flight: " + (", ".join(state["in_flight"]) or "none"),
    ]
    mixed = {s: r for s, r in state["services"].items() if len(r) > 1}
    same = {s: next(iter(r)) for s, r in state["services"].items() if len(r) == 1}
    for service, releases in mixed.items():
        where = "; ".join(f"{rel} on {', '.join(nodes)}" for rel, nodes in releases.items())
        lines.append(f"  {service}: MIXED: {where}")
    by_release: dict[str, list[str]] = {}
    for service, release in same.items():
        by_release.setdefault(release, []).append(service)
    for release, names in sorted(by_release.items()):
        lines.append(f"  at {release}: {', '.join(names)}")
    return "\n".join(lines)
