"""The Ansible driver: one ansible-runner call per step, for all of the step's hosts at once.

The inventory is the formats layer's export of the cluster, completed with the site's facts
(lifecycle.drivers.site: on the testbed its SSH key, known_hosts and each host's directory); the
playbooks get the site's variables. Per-host results come from the runner's stats and events; the
run's artifacts stay under <state dir>/artifacts/<run>/<step>.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lifecycle.catalog import load_catalog
from lifecycle.drivers.ansible_observe import observe_testbed, task_results
from lifecycle.drivers.base import Driver, StepContext, StepResult
from lifecycle.drivers.site import Site, real_cloud
from lifecycle.errors import DriverError
from lifecycle.formats.ansible_inventory import to_ansible_inventory
from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import ObservedState
from lifecycle.planning.plan import Step

# the project's playbooks (and their roles); they live beside the testbed that first ran them
PLAYBOOK_DIR = Path(__file__).resolve().parent.parent / "testbed" / "playbooks"
PLAYBOOKS = frozenset(p.stem for p in PLAYBOOK_DIR.glob("*.yml"))
VERB_PLAYBOOKS = {
    "compute.evacuate": "evacuate",
    "compute.enable": "enable",
    "compute.drain_network": "drain-network",  # a stand-in: no Neutron on the testbed
    "compute.verify_empty": "verify-empty",
    "compute.aggregate_add": "aggregate-add",
    "compute.delete_service": "delete-service",
    "checks.precheck": "health",
    "checks.health": "health",
    "checks.postcheck": "health",
}
MSG_LIMIT = 400


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class AnsibleDriver(Driver):
    """Runs `ansible.playbook` steps (and, on the testbed, `compute.*` through playbooks).

    `state_dir`: where artifacts and SSH control sockets go (default: lifecycle's state dir,
    --state-dir / $LIFECYCLE_STATE_DIR); `site`: the cluster's site facts (default: a real cloud,
    lifecycle.drivers.site)."""

    name = "ansible"

    def __init__(
        self,
        state_dir: str | Path | None = None,
        forks: int = 50,
        site: Site = real_cloud,
        **_options: Any,
    ) -> None:
        from lifecycle.execution.paths import state_dir_path

        self.state_dir = state_dir_path(state_dir)
        self.forks = forks
        self.site = site

    # --- the step's playbook and variables -----------------------------------------------------

    def playbook_for(self, step: Step) -> tuple[str, dict[str, Any]]:
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in step.params}
        if step.action == "ansible.playbook":
            name = str(params.pop("playbook", ""))
        elif step.action in VERB_PLAYBOOKS:
            name = VERB_PLAYBOOKS[step.action]
        else:
            raise DriverError(f"ansible driver cannot run {step.action!r} (step {step.id})")
        if name not in PLAYBOOKS:
            known = ", ".join(sorted(PLAYBOOKS))
            raise DriverError(f"step {step.id}: unknown playbook {name!r}; known: {known}")
        if step.action == "compute.evacuate":
            params["mode"] = params.get("mode") or "live-migrate"
        if step.nodes:
            params["target_hosts"] = "all"  # the limit picks the step's hosts
        return name, params

    def _extravars(self, params: Mapping[str, Any], cluster: Cluster) -> dict[str, Any]:
        """The playbooks' variables: what the catalog says, the site's own, then `params`."""
        catalog = load_catalog()
        facts = self.site(cluster)
        projects: dict[str, list[str]] = {}
        for service in sorted(catalog.services):
            project = catalog.project_of(service)
            if project:
                projects.setdefault(project, []).append(service)
        return {
            "real_services": list(facts.real_of(cluster)),
            "real_roles": dict(facts.roles),
            "project_services_map": projects,
            "ceph_services": sorted(s for s, spec in catalog.services.items() if spec.ceph),
            **facts.extravars,
            **params,
        }

    def inventory(
        self, cluster: Cluster, secrets: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The cluster's inventory, with the site's SSH access and per-host variables."""
        inventory = to_ansible_inventory(cluster, secrets)
        facts = self.site(cluster)
        if facts.ssh is not None:
            inventory["all"]["vars"].update(facts.ssh.inventory_vars())
        for host, extra in facts.host_vars.items():
            if host in inventory["all"]["hosts"]:
                inventory["all"]["hosts"][host].update(extra)
        return inventory

    # --- running -------------------------------------------------------------------------------

    def run(self, step: Step, ctx: StepContext) -> StepResult:
        name, params = self.playbook_for(step)
        artifacts = self._artifacts(step, ctx)
        return self.run_playbook(
            name,
            ctx.cluster,
            nodes=step.nodes,
            params=params,
            artifacts=artifacts,
            ident=f"attempt-{ctx.attempt}",
            secrets=ctx.secrets,
        )

    def _artifacts(self, step: Step, ctx: StepContext) -> Path:
        base = ctx.artifacts_dir or self.state_dir / "artifacts" / _safe(ctx.run_id)
        return Path(base) / _safe(step.id)

    def run_playbook(
        self,
        name: str,
        cluster: Cluster,
        nodes: tuple[str, ...] = (),
        params: Mapping[str, Any] | None = None,
        artifacts: Path | None = None,
        ident: str = "run",
        secrets: Mapping[str, Any] | None = None,
    ) -> StepResult:
        """One ansible-runner call: playbook `name` on `nodes` (all of them at once)."""
        import ansible_runner  # heavy: imported when a step runs, not when the CLI starts

        private = _fresh_dir(artifacts or self.state_dir / "artifacts" / "adhoc" / name, ident)
        runner = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(PLAYBOOK_DIR),
            playbook=f"{name}.yml",
            inventory=self.inventory(cluster, secrets),
            extravars=self._extravars(params or {}, cluster),
            limit=",".join(nodes) if nodes else None,
            forks=self.forks,
            envvars=self._envvars(),
            ident=ident,
            quiet=True,
            rotate_artifacts=0,
        )
        redact = _redactor(secrets)
        hosts = host_results(runner, nodes, redact)
        ok = runner.rc == 0 and all(h["status"] == "ok" for h in hosts.values())
        output = {
            "playbook": name,
            "rc": runner.rc,
            "status": runner.status,
            "artifacts": str(private),
            "changed": {h: r.get("changed", 0) for h, r in hosts.items()},
        }
        return StepResult(
            ok=ok, output=output, error=None if ok else _error(runner, hosts, redact), hosts=hosts
        )

    def _envvars(self) -> dict[str, str]:
        bin_dir = os.path.dirname(sys.executable)
        return {
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_TIMEOUT": "5",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.state_dir / "cp"),
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            "ANSIBLE_LOCALHOST_WARNING": "False",
        }

    # --- observing -----------------------------------------------------------------------------

    def observe(self, cluster: Cluster) -> ObservedState:
        """Every host's daemons, in one ansible-runner call of observe.yml for all hosts
        (lifecycle.drivers.ansible_observe says what real services and stand-ins expose)."""
        import ansible_runner

        private = _fresh_dir(self.state_dir / "artifacts" / "observe", "observe")
        runner = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(PLAYBOOK_DIR),
            playbook="observe.yml",
            inventory=self.inventory(cluster),
            extravars=self._extravars({}, cluster),
            forks=self.forks,
            envvars=self._envvars(),
            ident="observe",
            quiet=True,
            rotate_artifacts=0,
        )
        facts = self.site(cluster)
        observed = observe_testbed(cluster, task_results(runner.events), facts.real_services)
        if facts.is_real("galera"):  # what a recovery plans from
            from lifecycle.drivers.galera_positions import read_positions

            observed = replace(observed, galera=read_positions(self, cluster))
        return replace(observed, observed_at=datetime.now(UTC).isoformat(timespec="seconds"))

    # --- probing -------------------------------------------------------------------------------

    def probe(self, step: Step, ctx: StepContext) -> bool | None:
        """Whether the step's effect is visible on the stand-in daemons (over HTTP, the site's
        `status`), None if unknowable (no stand-ins to ask)."""
        name, params = self.playbook_for(step)
        cluster = ctx.cluster
        facts = self.site(cluster)
        if facts.status is None:
            return None
        if name in ("upgrade-service", "upgrade-node"):
            services = [params["service"]] if name == "upgrade-service" else params["services"]
            return all(
                _version(facts.ask(cluster, node, service, path="/ping")) == params["release"]
                for node in step.nodes
                for service in services
                if service in cluster.services_of(cluster.node(node))
            )
        if name in ("evacuate", "enable"):
            wanted = name == "enable"
            states = [facts.ask(cluster, n, "nova-compute") for n in step.nodes]
            return all(
                s is not None and s.get("enabled") is wanted and (wanted or not s.get("instances"))
                for s in states
            )
        return None


def _fresh_dir(base: Path, ident: str) -> Path:
    """A new private data dir per runner call: ansible-runner merges what an old one holds
    (env/extravars among it) into the next call, so one is never reused."""
    base.mkdir(parents=True, exist_ok=True)
    candidate, n = base / ident, 1
    while candidate.exists():
        n += 1
        candidate = base / f"{ident}.{n}"
    candidate.mkdir()
    return candidate


def _version(status: Mapping[str, Any] | None) -> str | None:
    return None if status is None else status.get("version")


def _redactor(secrets: Any) -> Callable[[str], str]:
    """The secrets' own redaction (formats.secrets.Secrets), or a plain one for a mapping."""
    if hasattr(secrets, "redact"):
        own: Callable[[str], str] = secrets.redact
        return own
    values: list[str] = []
    for entry in (secrets or {}).values():
        if isinstance(entry, Mapping):
            values += [str(v) for k, v in entry.items() if k not in ("username", "user") and v]

    def redact(text: str) -> str:
        for value in sorted(values, key=len, reverse=True):
            text = text.replace(value, "***")
        return text

    return redact


def host_results(runner: Any, nodes: tuple[str, ...], redact: Any) -> dict[str, dict[str, Any]]:
    """Per-host outcome from the runner: "unreachable", "failed" (with task and msg) or "ok"."""
    hosts: dict[str, dict[str, Any]] = {}
    for event in runner.events:
        data = event.get("event_data", {})
        host, kind = data.get("host"), event.get("event")
        if host is None or host in hosts:
            continue
        res = data.get("res") or {}
        msg = redact(str(res.get("msg") or res.get("stderr") or ""))[:MSG_LIMIT]
        if kind == "runner_on_unreachable":
            hosts[host] = {"status": "unreachable", "task": data.get("task"), "msg": msg}
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            hosts[host] = {"status": "failed", "task": data.get("task"), "msg": msg}
    stats = runner.stats or {}
    seen = set(nodes)
    for key in ("ok", "changed", "failures", "dark", "skipped"):
        seen |= set((stats.get(key) or {}).keys())
    for host in sorted(seen):
        result = hosts.setdefault(host, {"status": "ok"})
        result["changed"] = (stats.get("changed") or {}).get(host, 0)
        if result["status"] == "ok" and host not in (stats.get("ok") or {}):
            if host in (stats.get("dark") or {}):
                result.update(status="unreachable", msg="host unreachable")
            elif host in (stats.get("failures") or {}):
                result.update(status="failed", msg="task failed")
            elif host not in (stats.get("skipped") or {}):
                result.update(status="failed", msg="no result from this host")
    return hosts


def _error(runner: Any, hosts: Mapping[str, Mapping[str, Any]], redact: Any) -> str:
    bad = [
        f"{h} {r['status']}: {r.get('task') or ''} {r.get('msg') or ''}".strip()
        for h, r in hosts.items()
        if r["status"] != "ok"
    ]
    if bad:
        return "; ".join(bad)
    tail = ""
    with contextlib.suppress(OSError, AttributeError):
        tail = "\n".join(runner.stdout.read().strip().splitlines()[-5:])
    return redact(f"ansible-runner {runner.status} (rc={runner.rc}) {tail}".strip())
