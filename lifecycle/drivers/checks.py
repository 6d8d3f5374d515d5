"""The checks driver: pre-checks, health gates and post-checks of the cluster's services.

A service that runs for real (on a real cloud every one; on the testbed those of testbed.yaml: the
site facts, lifecycle.drivers.site, say which) is asked by its role's health tasks (health.yml, one
ansible-runner call for every real instance the check covers): Galera `wsrep_*`, RabbitMQ's
cluster status, a Keystone token issued and validated through HAProxy, ... A stand-in daemon is
healthy when it answers the site's status probe (at the expected release, where one applies); a
stand-in quorum service is intact when more than half of its members answer and each answering
member sees a majority. A gate waits up to `settle` seconds for health before it fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.catalog import load_catalog
from lifecycle.drivers.base import Driver, StepContext, StepResult
from lifecycle.drivers.site import Site, SiteFacts, real_cloud
from lifecycle.errors import DriverError
from lifecycle.model.cluster import Cluster
from lifecycle.planning.actions import AT_LEAST, expected_release, later
from lifecycle.planning.plan import Step


@dataclass(frozen=True)
class Expect:
    """One service instance to check, and the version it must report (None: any)."""

    node: str
    service: str
    version: str | None
    at_least: bool = False  # a later release passes too (planning.actions.AT_LEAST)
    ceph: bool = False


class ChecksDriver(Driver):
    """checks.precheck / checks.health / checks.postcheck against the daemons. `settle`: how
    long a gate waits for health (s); `timeout`: one status request's (s); `state_dir` and
    `site` as the ansible driver's (lifecycle.drivers.ansible), which runs the health tasks."""

    name = "checks"

    def __init__(
        self,
        settle: float = 15.0,
        timeout: float = 1.0,
        state_dir: str | Path | None = None,
        site: Site = real_cloud,
        **_options: Any,
    ) -> None:
        self.settle = settle
        self.timeout = timeout
        self.state_dir = state_dir
        self.site = site

    def run(self, step: Step, ctx: StepContext) -> StepResult:
        cluster = _checked(step, ctx.cluster)
        facts = self.site(ctx.cluster)
        expects = self.expectations(step, cluster)
        any_real = any(facts.is_real(e.service) for e in expects)
        deadline = time.monotonic() + self.settle
        while True:
            problems = self._problems(step, ctx, cluster, expects, facts)
            if not problems or time.monotonic() >= deadline:
                break
            time.sleep(1.0 if any_real else 0.2)
        hosts: dict[str, dict[str, Any]] = {e.node: {"status": "ok"} for e in expects}
        for node, msg in problems:
            entry = hosts.setdefault(node, {"status": "failed"})
            entry["status"] = "failed"
            entry.setdefault("problems", []).append(msg)
        lines = [f"{n}: {m}" for n, m in problems]
        output = {"checked": len(expects), "problems": lines}
        error = "; ".join(lines[:10]) if problems else None
        return StepResult(ok=not problems, output=output, error=error, hosts=hosts)

    def probe(self, step: Step, ctx: StepContext) -> bool | None:
        cluster = _checked(step, ctx.cluster)
        expects = self.expectations(step, cluster)
        facts = self.site(ctx.cluster)
        return not self._problems(step, ctx, cluster, expects, facts, first_kind_only=True)

    def _problems(
        self,
        step: Step,
        ctx: StepContext,
        cluster: Cluster,
        expects: list[Expect],
        facts: SiteFacts,
        first_kind_only: bool = False,
    ) -> list[tuple[str, str]]:
        """The stand-ins' problems (the site's status probe), then the real instances' (their
        roles' health tasks); with `first_kind_only`, the real ones are not asked when a
        stand-in already failed (a probe needs only a yes or no)."""
        real = {s for s in cluster.members if facts.is_real(s)}
        stand_ins = [e for e in expects if e.service not in real]
        found = self.problems(cluster, stand_ins, _quorum_of(step), skip=real, facts=facts)
        if found and first_kind_only:
            return found
        return found + self.real_problems(cluster, [e for e in expects if e.service in real], ctx)

    def real_problems(
        self, cluster: Cluster, expects: list[Expect], ctx: StepContext
    ) -> list[tuple[str, str]]:
        """Real instances whose role's health tasks fail, one ansible-runner call per release
        expected (the playbook checks a store's quorum and size against the members of
        `cluster`, which leaves out the nodes planned around)."""
        from lifecycle.drivers.ansible import AnsibleDriver

        if not expects:
            return []
        ansible = AnsibleDriver(state_dir=self.state_dir, site=self.site)
        found: list[tuple[str, str]] = []
        by_release: dict[str | None, list[Expect]] = {}
        for e in expects:
            by_release.setdefault(e.version, []).append(e)
        for release, group in sorted(by_release.items(), key=lambda kv: str(kv[0])):
            params: dict[str, Any] = {"services": sorted({e.service for e in group})}
            if release is not None:
                params["release"] = release
            nodes = tuple(sorted({e.node for e in group}))
            result = ansible.run_playbook(
                "health",
                cluster,
                nodes=nodes,
                params=params,
                artifacts=ansible.state_dir / "artifacts" / "checks" / ctx.run_id,
                ident=f"health-{ctx.attempt}",
                secrets=ctx.secrets,
            )
            for node in nodes:
                outcome = result.hosts.get(node, {"status": "failed", "msg": "no result"})
                if outcome.get("status") != "ok":
                    detail = outcome.get("msg") or outcome.get("status")
                    found.append((node, f"{', '.join(params['services'])}: {detail}"))
        return found

    # --- what to check -------------------------------------------------------------------------

    def expectations(self, step: Step, cluster: Cluster) -> list[Expect]:
        catalog = load_catalog()

        def is_ceph(service: str) -> bool:
            spec = catalog.services.get(service)
            return spec is not None and spec.ceph

        if step.verb == "precheck":
            listed = step.param("services")
            if isinstance(listed, tuple):  # a deploy's precheck: only what it names (none)
                return [e for e in _all(cluster, lambda service: None) if e.service in listed]
            return _all(cluster, lambda service: None)
        if step.verb == "postcheck":
            # an OpenStack-only upgrade's postcheck names no Ceph release: Ceph daemons any
            release, ceph_release = step.param("release"), step.param("ceph_release")
            return _all(cluster, lambda s: ceph_release if is_ceph(s) else release)
        if step.verb != "health":
            raise DriverError(f"checks driver cannot run {step.action!r} (step {step.id})")
        raw = step.param("services")
        services = raw if isinstance(raw, tuple) else ()
        nodes = step.nodes
        at_least = bool(step.param(AT_LEAST))
        return [
            Expect(
                node,
                str(service),
                expected_release(step, str(service), is_ceph(str(service))),
                at_least,
                is_ceph(str(service)),
            )
            for service in services
            for node in cluster.members.get(str(service), ())
            if not nodes or node in nodes
        ]

    def problems(
        self,
        cluster: Cluster,
        expects: Iterable[Expect],
        quorum_of: set[str] | None = None,
        skip: Iterable[str] = (),
        facts: SiteFacts | None = None,
    ) -> list[tuple[str, str]]:
        """What does not answer as expected, and quorum lost by a clustered stand-in (only
        those of `quorum_of` when given: a deploy's check, before the others exist; never
        the `skip` services, which run for real). `facts`: the site's (default: `site`'s)."""
        facts = facts or self.site(cluster)
        found: list[tuple[str, str]] = []
        for e in expects:
            answer = facts.ask(cluster, e.node, e.service, self.timeout, "/ping")
            if answer is None:
                found.append((e.node, f"{e.service} does not answer"))
            elif e.version and answer.get("version") != e.version and not _later(e, answer):
                found.append((e.node, f"{e.service} at {answer.get('version')}, not {e.version}"))
        return found + self.quorum_problems(cluster, quorum_of, skip, facts)

    def quorum_problems(
        self,
        cluster: Cluster,
        only: set[str] | None = None,
        skip: Iterable[str] = (),
        facts: SiteFacts | None = None,
    ) -> list[tuple[str, str]]:
        facts = facts or self.site(cluster)
        catalog = load_catalog()
        found: list[tuple[str, str]] = []
        skipped = set(skip)
        for service, members in cluster.members.items():
            if (only is not None and service not in only) or service in skipped:
                continue
            spec = catalog.services.get(service)
            if spec is None or spec.quorum.value != "majority" or len(members) < 2:
                continue
            views = {n: facts.ask(cluster, n, service, self.timeout) for n in members}
            up = [n for n, v in views.items() if v is not None]
            if len(up) * 2 <= len(members):
                found.append((members[0], f"{service} lost quorum: {len(up)}/{len(members)} up"))
            for node in up:
                view = views[node] or {}
                if not (view.get("members") or {}).get("majority"):
                    found.append((node, f"{service} on {node} sees no majority"))
        return found


def _quorum_of(step: Step) -> set[str] | None:
    """A deploy's check (param `deploying`) asks quorum only of the services it names: the
    others are not deployed yet (planning/deploy.py)."""
    if not step.param("deploying"):
        return None
    listed = step.param("services")
    return set(map(str, listed)) if isinstance(listed, tuple) else set()


def _later(expect: Expect, answer: dict[str, Any]) -> bool:
    have = answer.get("version")
    return (
        expect.at_least and isinstance(have, str) and later(have, str(expect.version), expect.ceph)
    )


def _all(cluster: Cluster, version_of: Any) -> list[Expect]:
    return [
        Expect(node, service, version_of(service))
        for service, members in cluster.members.items()
        for node in members
    ]


def _checked(step: Step, cluster: Cluster) -> Cluster:
    """The cluster a check looks at: without the nodes its plan was made around (observed down
    before planning; planning/observed.py)."""
    from lifecycle.planning.actions import planned_around
    from lifecycle.planning.observed import without_nodes

    return without_nodes(cluster, set(planned_around(step)))
