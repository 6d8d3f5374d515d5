"""The sim driver: a simulated cluster for fast tests, demos and benchmarks.

It keeps per-node service versions, the instances on each compute host, Ceph flags and database
migrations in a small JSON file under the state directory (atomic replace on every change), so a
killed and resumed run continues on the same simulated cluster. A step's effect and its execution
counter are written in the same replace: after a crash either both are there or neither is, which
is what lets `probe` answer for sure and the crash tests count executions exactly.

Faults (option `faults` or env LIFECYCLE_SIM_FAULTS, comma-separated; STEP is an fnmatch pattern):
  fail:STEP:N      the step's first N attempts fail (counted in the state file, across processes)
  die:NODE@STEP    NODE dies half-way through the step and stays unreachable
  red:STEP         a checks.* step that stays red, every attempt
  hang:STEP        the step takes 1000x its duration (for timeouts)
  kill-before:STEP the whole process dies by SIGKILL as the step starts (once)
  kill-after:STEP  ... right after the step's effect is applied, before the engine hears of it
  vague:STEP       probe() cannot tell for this step (returns None), as with most real drivers

A deploy's `deploy-service` step sets its instances' versions (Ceph daemons to `ceph_release`);
deploy-secrets, db-create, keystone-keys and keystone-bootstrap change nothing simulated.
"""

from __future__ import annotations

import fnmatch
import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.drivers.base import Driver, StepContext, StepResult
from lifecycle.drivers.sim_backup import BACKUP_PLAYBOOKS, fake_backup
from lifecycle.drivers.sim_observe import observe_state
from lifecycle.errors import UsageError
from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import ObservedState
from lifecycle.planning.actions import expected_release, planned_around, release_ok
from lifecycle.planning.plan import Step

ENV_SCALE = "LIFECYCLE_SIM_SCALE"
ENV_FAULTS = "LIFECYCLE_SIM_FAULTS"


@dataclass(frozen=True)
class Fault:
    kind: str  # fail | die | red | hang
    step: str  # fnmatch pattern of step ids
    count: int = 0  # fail: attempts that fail
    node: str = ""  # die: the node that dies


def parse_faults(text: str) -> tuple[Fault, ...]:
    """`fail:STEP:N,die:NODE@STEP,red:STEP,hang:STEP` -> faults; bad specs are usage errors."""
    faults = []
    for spec in filter(None, (s.strip() for s in text.split(","))):
        kind, _, rest = spec.partition(":")
        if kind == "fail" and rest.rpartition(":")[2].isdigit():
            pattern, _, count = rest.rpartition(":")
            faults.append(Fault("fail", pattern, int(count)))
        elif kind == "die" and "@" in rest:
            node, _, pattern = rest.partition("@")
            faults.append(Fault("die", pattern, node=node))
        elif kind in ("red", "hang", "kill-before", "kill-after", "vague") and rest:
            faults.append(Fault(kind, rest))
        else:
            raise UsageError.at(
                ENV_FAULTS, spec, "fail:STEP:N, die:NODE@STEP, red:STEP, hang:STEP or kill-*:STEP"
            )
    return tuple(faults)


def env_scale(default: float = 0.001) -> float:
    """LIFECYCLE_SIM_SCALE as a number >= 0 (durations are multiplied by it), else `default`;
    UsageError (exit 2) for anything else, before a run is recorded (time.sleep refuses < 0)."""
    text = os.environ.get(ENV_SCALE, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):  # also NaN
        raise UsageError.at(ENV_SCALE, "", f"a number >= 0, e.g. 0.01 (not {text!r})")
    return value


def check_env() -> None:
    """Check LIFECYCLE_SIM_SCALE and LIFECYCLE_SIM_FAULTS now (UsageError, exit 2), so that a
    mistake in either is bad input before a run is recorded, not a run that stops."""
    env_scale()
    parse_faults(os.environ.get(ENV_FAULTS, ""))


class SimState:
    """The simulated cluster's state file: read once, replaced atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def ensure(self, cluster: Cluster, instances_per_host: int) -> None:
        if self.data:
            return
        from lifecycle.catalog import load_catalog

        services = load_catalog().services
        versions, instances = {}, {}
        carried: dict[str, dict[str, list[str]]] = {"routers": {}, "networks": {}}
        for node in cluster.nodes:
            for svc in cluster.services_of(node):
                kind = services[svc].carries if svc in services else None
                if kind:  # each network node starts with a few routers / DHCP networks
                    carried[kind][node.name] = [
                        f"{kind[:-1]}-{node.name}-{i}" for i in range(instances_per_host)
                    ]
                ceph = svc in services and services[svc].ceph
                versions[f"{svc}@{node.name}"] = (
                    cluster.ceph_release if ceph else cluster.release
                ) or cluster.release
                if svc == "nova-compute":
                    instances[node.name] = [
                        f"vm-{node.name}-{i}" for i in range(instances_per_host)
                    ]
        self.data = {
            "cluster": cluster.name,
            "versions": versions,
            "instances": instances,
            **carried,
            "cut_off": [],  # routers and networks that were on a node while it was disrupted
            "aggregates": {n.name: cluster.aggregate_of(n) for n in cluster.nodes},
            "dead": [],
            "lost": {},  # node -> when it died: {step, attempt, run}
            "disabled": [],
            "flags": {},
            "migrations": {},
            "counts": {},
            "faults": {},
        }
        self.save()

    def save(self) -> None:
        """Write to a temporary file and rename it over the old one: a reader (or a resumed run
        after kill -9) sees the old state or the new, never half of one. No fsync: the process
        dying is what this survives; the journal, not the simulation, is what must survive power."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(json.dumps(self.data, sort_keys=True))
        os.replace(tmp, self.path)


def state_file(state_dir: Path, cluster: str) -> Path:
    return state_dir / "sim" / f"{cluster}.json"


def read_state(state_dir: str | Path, cluster: str) -> dict[str, Any]:
    """The simulated cluster as the driver left it (for tests and `lifecycle runs show`)."""
    path = state_file(Path(state_dir), cluster)
    return json.loads(path.read_text()) if path.exists() else {}


class SimDriver(Driver):
    """Executes steps against a simulated cluster, `scale` x the plan's durations."""

    name = "sim"

    def __init__(
        self,
        state_dir: str | Path | None = None,
        scale: float | None = None,
        faults: str | None = None,
        instances_per_host: int = 3,
    ) -> None:
        from lifecycle.execution.paths import state_dir as default_state_dir

        self.state_dir = default_state_dir(state_dir)
        self.scale = scale if scale is not None else env_scale()
        if not 0 <= self.scale < float("inf"):
            raise UsageError.at("--sim-scale", "", f"a number >= 0 (not {self.scale})")
        self.faults = parse_faults(faults if faults is not None else os.environ.get(ENV_FAULTS, ""))
        self.instances_per_host = instances_per_host
        self._states: dict[str, SimState] = {}
        self._guard = threading.Lock()

    def _state(self, cluster: Cluster) -> SimState:
        with self._guard:
            if cluster.name not in self._states:
                state = SimState(state_file(self.state_dir, cluster.name))
                state.ensure(cluster, self.instances_per_host)
                self._states[cluster.name] = state
            return self._states[cluster.name]

    def _faults(self, kind: str, step: Step) -> list[Fault]:
        return [f for f in self.faults if f.kind == kind and fnmatch.fnmatchcase(step.id, f.step)]

    # --- the Driver interface ---------------------------------------------------------------

    def run(self, step: Step, ctx: StepContext) -> StepResult:
        state = self._state(ctx.cluster)
        self._maybe_die(state, step, "kill-before")
        pause = step.duration * self.scale
        if self._faults("hang", step):
            pause *= 1000
        injected = self._injected_failure(state, step)
        if injected:
            time.sleep(pause)
            return StepResult(ok=False, error=injected)
        # a step that works through an API (Nova, Ironic) on a node known dead does not need it
        down = [] if step.param("node_down") else self._unreachable(state, step.nodes)
        if down:
            return _unreachable(step, {n: _lost_before(state, n, step, ctx) for n in down})
        dying = [f.node for f in self._faults("die", step) if f.node in step.nodes]
        if dying:
            time.sleep(pause / 2)
            when = {"step": step.id, "attempt": ctx.attempt, "run": ctx.run_id}
            with state.lock:
                state.data["dead"] = sorted(set(state.data["dead"]) | set(dying))
                state.data.setdefault("lost", {}).update({n: when for n in dying})
                state.save()
            why = f"died during this step (attempt {ctx.attempt})"
            return _unreachable(step, {n: why for n in dying})
        time.sleep(pause)
        if step.action == "backup.manifest":  # the local side, as the backup driver does it
            from lifecycle.drivers.backup import run_manifest

            done = run_manifest(step, self.state_dir)
            if done.ok:
                with state.lock:
                    key = f"{ctx.run_id}/{step.id}"
                    state.data["counts"][key] = state.data["counts"].get(key, 0) + 1
                    state.save()
            return done
        with state.lock:
            error = _apply(state.data, step, ctx.cluster)
            if error:
                return StepResult(ok=False, error=error, hosts=_hosts(step, "failed"))
            key = f"{ctx.run_id}/{step.id}"
            state.data["counts"][key] = state.data["counts"].get(key, 0) + 1
            state.save()
        self._maybe_die(state, step, "kill-after")
        return StepResult(ok=True, output={"sim": step.verb}, hosts=_hosts(step, "ok"))

    def probe(self, step: Step, ctx: StepContext) -> bool | None:
        if self._faults("vague", step):
            return None
        state = self._state(ctx.cluster)
        with state.lock:
            release = step.param("release")
            if step.upgrades and isinstance(release, str):
                versions = state.data["versions"]
                return all(
                    versions.get(u) == expected_release(step, s, _is_ceph(s))
                    for u, s in ((u, u.partition("@")[0]) for u in step.upgrades)
                )
            return state.data["counts"].get(f"{ctx.run_id}/{step.id}", 0) > 0

    def observe(self, cluster: Cluster) -> ObservedState:
        """The simulated cloud as its state file holds it now (seeded from the inventory on first
        use, then kept between runs of the cluster): what a real driver would read."""
        state = self._state(cluster)
        with state.lock:
            data = json.loads(json.dumps(state.data))  # a copy, read under the lock
        return observe_state(cluster, data)

    def probe_is_exact(self, step: Step) -> bool:
        """A step's effect and its counter are one atomic file replace: absent means never."""
        return True

    def counts(self, cluster: str, run_id: str) -> dict[str, int]:
        """How many times each step's effect was applied in a run (the crash tests' witness)."""
        counts = read_state(self.state_dir, cluster).get("counts", {})
        prefix = f"{run_id}/"
        return {k[len(prefix) :]: v for k, v in counts.items() if k.startswith(prefix)}

    # --- faults -----------------------------------------------------------------------------

    def _injected_failure(self, state: SimState, step: Step) -> str | None:
        if step.driver == "checks" and self._faults("red", step):
            return f"health gate red: {step.id} (injected)"
        for fault in self._faults("fail", step):
            key = f"fail:{fault.step}:{step.id}"
            with state.lock:
                seen = state.data["faults"].get(key, 0)
                if seen >= fault.count:
                    continue
                state.data["faults"][key] = seen + 1
                state.save()
            return f"injected failure {seen + 1} of {fault.count} for {step.id}"
        return None

    def _maybe_die(self, state: SimState, step: Step, kind: str) -> None:
        """Kill this very process (once per step and kind, remembered in the state file)."""
        if not self._faults(kind, step):
            return
        key = f"{kind}:{step.id}"
        with state.lock:
            if state.data["faults"].get(key):
                return
            state.data["faults"][key] = 1
            state.save()
        os.kill(os.getpid(), signal.SIGKILL)

    @staticmethod
    def _unreachable(state: SimState, nodes: tuple[str, ...]) -> list[str]:
        with state.lock:
            dead = set(state.data["dead"])
        return [n for n in nodes if n in dead]


def _hosts(step: Step, status: str) -> dict[str, Any]:
    return {n: {"status": status} for n in step.nodes}


def _lost_before(state: SimState, node: str, step: Step, ctx: StepContext) -> str:
    """When `node` was lost, as an operator needs it: during which step and attempt."""
    with state.lock:
        lost = state.data.get("lost", {}).get(node)
    if not isinstance(lost, dict):
        return "down before this step started"
    if lost.get("run") != ctx.run_id:
        return f"died during {lost.get('step')} of run {lost.get('run')}, before this step"
    if lost.get("step") == step.id:
        attempt = lost.get("attempt")
        return f"died during attempt {attempt} of this step; still down at attempt {ctx.attempt}"
    return f"died during {lost.get('step')} (attempt {lost.get('attempt')}), before this step"


def _unreachable(step: Step, down: dict[str, str]) -> StepResult:
    """A failed result naming each unreachable node and when it was lost."""
    hosts = _hosts(step, "ok")
    for node, why in down.items():
        hosts[node] = {"status": "unreachable", "msg": why}
    error = "; ".join(f"{node} unreachable ({why})" for node, why in down.items())
    return StepResult(ok=False, error=error, hosts=hosts)


def _apply(data: dict[str, Any], step: Step, cluster: Cluster) -> str | None:
    """Change the simulated cluster as the step would; an error message if it cannot."""
    release = step.param("release")
    verb = step.action
    if verb.startswith("checks."):
        return _check(data, step, cluster)
    if verb == "ansible.playbook":
        playbook = step.param("playbook")
        if playbook in ("upgrade-service", "upgrade-node"):
            _cut_off(data, step)
            services = step.param("services") or (str(step.param("service")),)
            names = services if isinstance(services, tuple) else (str(services),)
            targets = step.upgrades or tuple(f"{s}@{n}" for s in names for n in step.nodes)
            for target in targets:
                data["versions"][target] = release
        elif playbook == "deploy-service" and not step.upgrades:
            return apply_membership(data, step)  # a replacement's deploy: the member arrives
        elif playbook == "deploy-service":  # a deploy: the instances now run the release
            for target in step.upgrades:
                service = target.partition("@")[0]
                data["versions"][target] = expected_release(step, service, _is_ceph(service))
        elif playbook == "deploy-node":
            listed = step.param("services")
            for service in map(str, listed if isinstance(listed, tuple) else ()):
                for node in step.nodes:
                    data["versions"][f"{service}@{node}"] = expected_release(
                        step, service, _is_ceph(service)
                    )
        elif playbook == "db-migrate":
            data["migrations"][str(step.param("project"))] = f"{step.param('phase')}@{release}"
        elif playbook == "ceph-flag":
            data["flags"][str(step.param("flag"))] = step.param("state") == "set"
        elif playbook in BACKUP_PLAYBOOKS:
            fake_backup(data, step, cluster)
        else:
            return apply_membership(data, step)
        return None
    if verb.startswith(("baremetal.", "compute.delete_service", "compute.verify_empty")) or (
        verb == "compute.aggregate_add"
    ):
        return apply_membership(data, step)
    if verb == "compute.evacuate":
        return _evacuate(data, step)
    if verb == "compute.drain_network":
        return _drain_network(data, step)
    if verb == "compute.enable":
        data["disabled"] = [h for h in data["disabled"] if h not in step.nodes]
    return None


def apply_membership(data: dict[str, Any], step: Step) -> str | None:
    """Replacement and removal (planning/replace.py) in the simulated cluster."""
    from lifecycle.drivers.sim_members import apply

    return apply(data, step)


def _check(data: dict[str, Any], step: Step, cluster: Cluster) -> str | None:
    dead = set(data["dead"]) - set(planned_around(step))  # down before the plan: planned around
    nodes = step.nodes if step.verb == "health" else tuple(n.name for n in cluster.nodes)
    down = [n for n in nodes if n in dead]
    if down:
        return f"not answering: {', '.join(down)}"
    services = step.param("services")
    if step.verb != "health" or not isinstance(services, tuple):
        return None
    behind: dict[str, list[str]] = {}
    for service in map(str, services):
        wanted = expected_release(step, service, _is_ceph(service))
        for node in step.nodes:
            have = data["versions"].get(f"{service}@{node}")
            if have is not None and not release_ok(step, have, wanted, _is_ceph(service)):
                behind.setdefault(str(wanted), []).append(f"{service}@{node} (at {have})")
    return "; ".join(f"not at {r}: {', '.join(late)}" for r, late in behind.items()) or None


def _is_ceph(service: str) -> bool:
    from lifecycle.catalog import load_catalog

    spec = load_catalog().services.get(service)
    return spec is not None and spec.ceph


def _evacuate(data: dict[str, Any], step: Step) -> str | None:
    aggregates = data["aggregates"]
    data["disabled"] = sorted(set(data["disabled"]) | set(step.nodes))
    for host in step.nodes:
        moving = data["instances"].get(host, [])
        if not moving:
            continue
        group = step.param("aggregate") or aggregates.get(host)
        targets = [
            h
            for h in data["instances"]
            if h not in data["disabled"] and h not in data["dead"] and aggregates.get(h) == group
        ]
        if not targets:
            return f"no enabled host left in aggregate {group} for {len(moving)} instance(s)"
        for i, vm in enumerate(moving):
            data["instances"][targets[i % len(targets)]].append(vm)
        data["instances"][host] = []
    return None


def _carried(data: dict[str, Any], agent: str) -> dict[str, list[str]]:
    """Per node, the routers or networks (the catalog's `carries`) the agent holds there."""
    from lifecycle.catalog import load_catalog

    spec = load_catalog().services.get(agent)
    kind = spec.carries if spec else None
    return data.setdefault(kind, {}) if kind else {}


def _drain_network(data: dict[str, Any], step: Step) -> str | None:
    """Move each node's routers / networks to the least loaded live peer agent of the step's
    targets, as the compute driver does through the Networking API."""
    agents, targets = step.param("agents") or (), step.param("targets")
    targets = targets if isinstance(targets, tuple) else ()
    for host in step.nodes:
        for agent in agents if isinstance(agents, tuple) else (str(agents),):
            held = _carried(data, agent)
            moving = held.get(host, [])
            peers = [
                t
                for t in targets
                if t != host and t not in data["dead"] and f"{agent}@{t}" in data["versions"]
            ]
            if moving and not peers:
                return f"{host}: no live {agent} on {', '.join(targets or ()) or 'any peer'}"
            for item in moving:
                target = min(peers, key=lambda t: len(held.get(t, [])))
                held.setdefault(target, []).append(item)
            held[host] = []
    return None


def _cut_off(data: dict[str, Any], step: Step) -> None:
    """Record the routers and networks still on an agent the step disrupts."""
    for instance in step.disrupts:
        agent, _, host = instance.partition("@")
        held = _carried(data, agent)
        data.setdefault("cut_off", []).extend(held.get(host, []))
