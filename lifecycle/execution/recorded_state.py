"""The cluster's state file, `<state>/<cluster>.state.json`: the recorded state after each run.

Written when a run stops (succeeded, failed, paused, aborted) by the process holding the
cluster's lock, and when `lifecycle abort` ends a run no process is running. The file holds the
current version and the one before it (`previous`), replaced atomically (a temporary file,
fsync, rename) with mode 0600. A run that stops several times (paused, resumed, succeeded)
replaces its own version: the previous one stays the state before that run.

Folding a run: the previous version (or, with none, the run's inventory: every instance at the
inventory's release) plus the run's succeeded steps in plan order: `upgrades` instances move to
the step's release (Ceph daemons to its `ceph_release` where given), a scale-out's `deploy-node`
adds its node and services, `compute.evacuate` disables a host and `compute.enable` enables it,
a Ceph flag step sets or unsets its flag, a database contract (or a deploy's full schema sync, or
a deploy's start of one of the project's services) records its release. A step caught
mid-flight that may have disabled a host or set a flag counts as having done so: re-enabling a
host or unsetting a flag is harmless, forgetting one is not. `require-osd-release` is not such a
flag: it is a permanent cluster setting (`ceph osd require-osd-release R`, never unset), not a
maintenance flag like `noout`, so it is never recorded as left set.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from lifecycle.catalog import load_catalog
from lifecycle.errors import InputError
from lifecycle.execution.journal import Journal
from lifecycle.execution.replay import RunView, replay
from lifecycle.execution.states import StepState
from lifecycle.model.recorded import RecordedState
from lifecycle.planning import actions as act
from lifecycle.planning.plan import Step

_MAYBE = (StepState.RUNNING, StepState.INTERRUPTED, StepState.IN_DOUBT, StepState.FAILED)


def state_path(root: Path, cluster: str) -> Path:
    return root / f"{cluster}.state.json"


def _read(root: Path, cluster: str) -> dict[str, Any]:
    path = state_path(root, cluster)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data
    except (OSError, ValueError) as exc:
        raise InputError.at(
            str(path), "", f"a recorded state written by lifecycle ({exc}); move it away"
        ) from None


def _parse(path: Path, data: dict[str, Any] | None) -> RecordedState | None:
    if not data:
        return None
    try:
        return RecordedState.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError.at(
            str(path), str(exc), "a recorded state written by lifecycle; move it away"
        ) from None


def load_record(root: Path, cluster: str) -> RecordedState | None:
    """The current recorded state of `cluster`, or None when no run recorded one."""
    return _parse(state_path(root, cluster), _read(root, cluster))


def load_versions(root: Path, cluster: str) -> tuple[RecordedState | None, RecordedState | None]:
    """(current, previous) versions."""
    data = _read(root, cluster)
    path = state_path(root, cluster)
    return _parse(path, data), _parse(path, data.get("previous"))


def save(root: Path, record: RecordedState, previous: RecordedState | None) -> Path:
    """Replace the state file atomically (mode 0600), keeping `previous` inside it."""
    path = state_path(root, record.cluster)
    data = record.to_dict()
    data["previous"] = previous.to_dict() if previous else None
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def _base_instances(view: RunView, new_nodes: set[str]) -> dict[str, str]:
    """Every instance of the run's inventory at the inventory's release (nodes a scale-out is
    adding excluded: they run nothing until their deploy step succeeds)."""
    summary = view.run.inventory
    services = load_catalog().services
    roles = summary.get("roles", {})
    release, ceph_release = summary.get("release"), summary.get("ceph_release")
    out: dict[str, str] = {}
    for node, desc in summary.get("nodes", {}).items():
        if node in new_nodes:
            continue
        for service in roles.get(str(desc).split(" ", 1)[0], ()):
            spec = services.get(service)
            at = (ceph_release or release) if spec is not None and spec.ceph else release
            out[f"{service}@{node}"] = str(at)
    return out


def _node_roles(view: RunView) -> dict[str, str]:
    return {n: str(d).split(" ", 1)[0] for n, d in view.run.inventory.get("nodes", {}).items()}


def _is_ceph(service: str) -> bool:
    spec = load_catalog().services.get(service)
    return spec is not None and spec.ceph


def _maintenance_flag(step: Step) -> bool:
    """A Ceph flag step whose flag is set for the time of the work and unset after (`noout`),
    not `require-osd-release` (permanent: nothing to unset later)."""
    return act.playbook(step) == act.CEPH_FLAG and step.param("flag") != act.REQUIRE_OSD_RELEASE


class _Fold:
    def __init__(self, view: RunView, base: RecordedState | None) -> None:
        plan = view.plan
        self.deployed = {n for s in plan.steps if act.playbook(s) == "deploy-node" for n in s.nodes}
        at = _base_instances(view, self.deployed)
        if base is not None:
            at.update(dict(base.instances))
        self.at = at
        self.nodes = {n: r for n, r in _node_roles(view).items() if n not in self.deployed}
        self.nodes.update(dict(base.nodes) if base else {})
        self.added = set(base.added) if base else set()
        self.flags = set(base.flags) if base else set()
        self.disabled = set(base.disabled) if base else set()
        self.contracted = dict(base.contracted) if base else {}
        self.roles = _node_roles(view)
        self.deploying = view.run.operation == "deploy"

    def apply(self, step: Step, state: StepState) -> None:
        if state is StepState.SUCCEEDED:
            self.succeeded(step)
        elif state in _MAYBE:  # caught mid-flight or failed: assume the worse for hosts, flags
            if step.action == act.EVACUATE:
                self.disabled.update(step.nodes)
            if _maintenance_flag(step) and step.param("state") == "set":
                self.flags.add(str(step.param("flag")))

    def succeeded(self, step: Step) -> None:
        for text in step.upgrades:
            service = text.partition("@")[0]
            release = act.expected_release(step, service, _is_ceph(service))
            if release is not None:
                self.at[text] = release
        book = act.playbook(step)
        if book == "deploy-node":
            listed = step.param("services")
            for node in step.nodes:
                for service in map(str, listed if isinstance(listed, tuple) else ()):
                    self.at[f"{service}@{node}"] = str(
                        act.expected_release(step, service, _is_ceph(service))
                    )
                self.nodes[node] = self.roles.get(node, "?")
                self.added.add(node)
        elif _maintenance_flag(step):
            flag = str(step.param("flag"))
            if step.param("state") == "set":
                self.flags.add(flag)
            else:
                self.flags.discard(flag)
        elif act.db_phase(step) and step.param("phase") in ("contract", "sync"):
            # a deploy's full sync leaves the schema at its release, contracted as a contract does
            self.contracted[str(step.param("project"))] = str(step.param("release"))
        if self.deploying and book == "deploy-service":
            self.deployed_schema(step)
        if step.action == act.EVACUATE:
            self.disabled.update(step.nodes)
        elif step.action == act.ENABLE:
            self.disabled.difference_update(step.nodes)

    def deployed_schema(self, step: Step) -> None:
        """A service a deploy started at R runs against its project's schema at R, fully
        synced (its own bootstrap's `db sync` where the deploy has no `db-migrate` step for
        it): recorded as contracted at R, so that an upgrade plans no schema step below R."""
        spec = load_catalog().services.get(str(step.param("service")))
        release = step.param("release")
        if spec is not None and spec.project and not spec.ceph and isinstance(release, str):
            self.contracted[spec.project] = release


def fold(view: RunView, base: RecordedState | None, version: int, now: float) -> RecordedState:
    """The recorded state after `view`'s run, starting from `base` (see the module's doc)."""
    acc = _Fold(view, base)
    for step in view.plan.steps:  # topological: a set comes before its unset
        acc.apply(step, view.steps[step.id].state)
    return RecordedState(
        cluster=view.run.cluster,
        run=view.run.id,
        run_state=view.state.value,
        operation=view.run.operation,
        version=version,
        recorded=now,
        instances=tuple(sorted(acc.at.items())),
        nodes=tuple(sorted(acc.nodes.items())),
        added=tuple(sorted(acc.added)),
        flags=tuple(sorted(acc.flags)),
        disabled=tuple(sorted(acc.disabled)),
        contracted=tuple(sorted(acc.contracted.items())),
        previous_run=base.run if base else None,
    )


def preview(root: Path, view: RunView) -> RecordedState:
    """What recording `view` now would write (without writing it)."""
    current, previous = load_versions(root, view.run.cluster)
    base = previous if current is not None and current.run == view.run.id else current
    version = current.version + (0 if current.run == view.run.id else 1) if current else 1
    return fold(view, base, version, time.time())


def record_run(
    root: Path, journal: Journal, run_id: str, view: RunView | None = None
) -> RecordedState:
    """Fold the run into the cluster's state file (call with the cluster's lock held). `view`:
    the run as its journal now tells it, when the caller has just replayed or advanced it (the
    engine's last view); else the journal is replayed here."""
    if view is None or view.run.id != run_id:
        view = replay(journal, run_id)
    current, previous = load_versions(root, view.run.cluster)
    own = current is not None and current.run == run_id
    record = preview(root, view)
    save(root, record, previous if own else current)
    return record
