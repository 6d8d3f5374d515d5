"""Mistral actions: thin adapters that run one plan step through the drivers the engine uses.

A task's input holds only references and data Mistral may store: the step as its plan-JSON dict,
the inventory path on the executor's host, the run id, the driver mode (sim | testbed | cloud, as
the CLI's `--driver`) and non-secret driver options. Secrets are resolved here, in the executor,
from the inventory's credentials file, and every output passes through the redactor before Mistral
sees it. Like the engine, a node runs one step at a time: the DAG allows two steps on one node
together (the engine's controller keeps them apart), so each action holds an exclusive lock per
node while its step runs (flock files under `lock_dir`, by default in the state directory;
executors on several hosts must share that directory). A step that ran and failed comes back as
`Result(error=...)` carrying the same detail the journal keeps (error, output, per-host outcomes),
so a task's result reads like a journal row.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
import traceback
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mistral_lib import actions

from lifecycle.drivers.base import Driver, StepContext, StepResult
from lifecycle.errors import DriverError, InputError, LifecycleError
from lifecycle.execution.redact import Redactor
from lifecycle.execution.routing import MODES, Router
from lifecycle.formats.plan_json import step_from_dict as parse_step
from lifecycle.model.cluster import Cluster
from lifecycle.planning.plan import Step

log = logging.getLogger(__name__)

# One router per (mode, options) per executor process: drivers keep state that concurrent
# tasks must share (the sim driver's in-memory cluster and its lock, ansible's connections).
_ROUTERS: dict[str, Router] = {}
_GUARD = threading.Lock()


def step_from_dict(raw: Mapping[str, Any]) -> Step:
    """A step from its plan-JSON form (the same parser the journal's plans go through)."""
    return parse_step(dict(raw), "step input")[0]


def _router(mode: str, options: Mapping[str, Mapping[str, Any]]) -> Router:
    key = repr((mode, sorted((k, sorted(v.items())) for k, v in options.items())))
    with _GUARD:
        if key not in _ROUTERS:
            _ROUTERS[key] = Router.for_mode(mode, options)
        return _ROUTERS[key]


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


_CLUSTERS: dict[str, tuple[object, Cluster, Any]] = {}


def load_cluster(inventory: str) -> tuple[Cluster, Any]:
    """The cluster and its secrets, read here in the executor (never passed through Mistral).
    Kept per process while the inventory and credentials files are unchanged: a 500-task
    workflow should not parse YAML 500 times."""
    from lifecycle.formats.inventory import inventory_file, load_inventory
    from lifecycle.formats.secrets import load_secrets

    file = inventory_file(inventory).resolve()
    cached = _CLUSTERS.get(str(file))
    if cached is not None:
        key, cluster, secrets = cached
        credentials = file.parent / cluster.credentials if cluster.credentials else None
        if key == (_stamp(file), credentials and _stamp(credentials)):
            return cluster, secrets
    cluster = load_inventory(file)
    secrets = load_secrets(cluster)
    credentials = file.parent / cluster.credentials if cluster.credentials else None
    _CLUSTERS[str(file)] = ((_stamp(file), credentials and _stamp(credentials)), cluster, secrets)
    return cluster, secrets


def default_lock_dir() -> Path:
    from lifecycle.execution.paths import state_dir

    return state_dir() / "mistral-locks"


@contextlib.contextmanager
def node_locks(lock_dir: Path, cluster: str, nodes: Iterable[str]) -> Iterator[None]:
    """Hold every node's lock (taken in name order, so two steps never deadlock)."""
    base = lock_dir / cluster
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.ExitStack() as stack:
        for node in sorted(set(nodes)):
            handle = stack.enter_context((base / f"{node}.lock").open("a"))
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def _detail(step: Step, result: StepResult, redactor: Redactor) -> dict[str, Any]:
    out: dict[str, Any] = {"step": step.id, "ok": result.ok, "output": result.output}
    if result.hosts:
        out["hosts"] = result.hosts
    if result.error:
        out["error"] = result.error
    detail: dict[str, Any] = redactor.data(out)
    return detail


class StepAction(actions.Action):
    """Run one plan step. `kind` limits which actions a class accepts ("" accepts any)."""

    kind = ""
    forced_mode: str | None = None

    def __init__(
        self,
        step: dict[str, Any],
        inventory: str,
        run_id: str = "mistral",
        drivers: str = "cloud",
        driver_options: dict[str, dict[str, Any]] | None = None,
        plan_digest: str = "",
        lock_dir: str = "",
    ) -> None:
        super().__init__()
        self.step = step
        self.inventory = inventory
        self.run_id = run_id
        self.drivers = self.forced_mode or drivers
        self.driver_options = driver_options or {}
        self.plan_digest = plan_digest
        self.lock_dir = lock_dir  # attributes stay primitive: Mistral's engine serialises them

    def run(self, context: Any) -> actions.Result:
        try:
            step = step_from_dict(self.step)
        except (InputError, KeyError, TypeError, ValueError) as exc:
            return actions.Result(error={"error": f"malformed step input: {exc}"})
        if self.kind and step.driver != self.kind:
            msg = f"{type(self).__name__} runs {self.kind}.* steps, not {step.action}"
            return actions.Result(error={"step": step.id, "ok": False, "error": msg})
        redactor = Redactor()
        try:
            cluster, secrets = load_cluster(self.inventory)
            redactor = Redactor.from_secrets(secrets)
            result = self._call(step, cluster, secrets)
        except DriverError as exc:
            error = {"step": step.id, "ok": False, "error": exc.message, "detail": exc.detail}
            return actions.Result(error=redactor.data(error))
        except LifecycleError as exc:
            error = {"step": step.id, "ok": False, "error": str(exc)}
            return actions.Result(error=redactor.data(error))
        except Exception as exc:
            # Mistral would store the raw message (and a traceback) where secrets could show:
            # hand it back redacted instead; the executor's log keeps the (redacted) traceback
            log.error("step %s: driver crashed\n%s", step.id, redactor.text(traceback.format_exc()))
            error = {"step": step.id, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
            return actions.Result(error=redactor.data(error))
        detail = _detail(step, result, redactor)
        return actions.Result(data=detail) if result.ok else actions.Result(error=detail)

    def _call(self, step: Step, cluster: Cluster, secrets: Any) -> StepResult:
        if self.drivers not in MODES:
            raise DriverError(f"unknown driver mode {self.drivers!r}; one of {', '.join(MODES)}")
        driver: Driver = _router(self.drivers, self.driver_options).for_step(step)
        ctx = StepContext(
            run_id=self.run_id,
            cluster=cluster,
            secrets=secrets if secrets is not None else {},
        )
        lock_dir = Path(self.lock_dir) if self.lock_dir else default_lock_dir()
        with node_locks(lock_dir, cluster.name, step.nodes):
            return driver.run(step, ctx)


class AnsiblePlaybookAction(StepAction):
    """`ansible.playbook` steps (upgrade-service, upgrade-node, db-migrate, ceph-flag)."""

    kind = "ansible"


class ChecksAction(StepAction):
    """`checks.*` steps: precheck, health gates, postcheck."""

    kind = "checks"


class ComputeAction(StepAction):
    """`compute.*` steps: evacuate, enable, aggregate_add, drain_network."""

    kind = "compute"


class BaremetalAction(StepAction):
    """`baremetal.*` steps: the Ironic transitions of a scale-out or replacement."""

    kind = "baremetal"


class BackupAction(StepAction):
    """`backup.*` steps: a backup's manifest, written where the executor runs (the backup's
    directory must be there: the playbooks fetch into it)."""

    kind = "backup"


class SimAction(StepAction):
    """Any step, on the sim driver whatever the workflow's driver mode says."""

    kind = ""
    forced_mode = "sim"


ACTION_NAMES: Mapping[str, str] = {
    "ansible": "lifecycle.ansible_playbook",
    "checks": "lifecycle.checks",
    "compute": "lifecycle.compute",
    "baremetal": "lifecycle.baremetal",
    "backup": "lifecycle.backup",
}
SIM_ACTION = "lifecycle.sim"
