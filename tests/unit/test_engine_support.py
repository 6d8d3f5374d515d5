"""Builders shared by the engine, journal and sim tests: a small cluster and hand-built plans.

(No tests here; the name keeps it among the engine's test files.)"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lifecycle.drivers.base import Driver, StepContext, StepResult
from lifecycle.execution.engine import Engine, EngineOptions
from lifecycle.execution.events import CallbackSink, Event
from lifecycle.execution.journal import Journal
from lifecycle.execution.policies import PolicyTable
from lifecycle.execution.replay import RunView
from lifecycle.execution.routing import Router
from lifecycle.execution.runs import start_run
from lifecycle.model.cluster import Cluster, NodeSpec, Policies, RoleSpec
from lifecycle.planning.plan import Plan, Step, freeze_params
from lifecycle.planning.scheduler import build_plan

CONTROL = ("galera", "keystone")
COMPUTE = ("nova-compute",)


def small_cluster(name: str = "t", failure_threshold: int = 0) -> Cluster:
    """Three controllers, four computes in aggregate hdd."""
    roles = (
        RoleSpec("Controller", CONTROL),
        RoleSpec("Compute", COMPUTE, aggregate="hdd"),
    )
    nodes = tuple(
        NodeSpec(f"ctl-{i}", "Controller", f"198.18.0.{11 + i}", f"rack{i}") for i in range(3)
    ) + tuple(NodeSpec(f"cmp-{i}", "Compute", f"198.18.0.{21 + i}") for i in range(4))
    return Cluster(
        name=name,
        release="train",
        roles=roles,
        nodes=nodes,
        policies=Policies(failure_threshold=failure_threshold),
    )


def step(sid: str, action: str, deps: Sequence[str] = (), **kw: Any) -> Step:
    params = kw.pop("params", {})
    kw["duration"] = float(kw.get("duration", 0.0))  # JSON keeps 10 and 10.0 apart in digests
    return Step(
        id=sid,
        action=action,
        phase=kw.pop("phase", "p"),
        depends_on=tuple(deps),
        params=freeze_params(params),
        **kw,
    )


def upgrade_plan(cluster: Cluster, release: str = "ussuri", idempotent: bool = True) -> Plan:
    """precheck; galera then keystone on each controller, one at a time; each compute:
    evacuate, upgrade, health, enable (one compute at a time); postcheck."""
    steps = [step("precheck", "checks.precheck", params={"release": release}, duration=10)]
    prev = "precheck"
    for svc in CONTROL:
        for i in range(3):
            node = f"ctl-{i}"
            sid = f"upgrade/{svc}/{node}"
            steps.append(
                step(
                    sid,
                    "ansible.playbook",
                    [prev],
                    nodes=(node,),
                    upgrades=(f"{svc}@{node}",),
                    disrupts=(f"{svc}@{node}",),
                    params={"playbook": "upgrade-service", "service": svc, "release": release},
                    duration=120,
                    idempotent=idempotent,
                )
            )
            prev = sid
    for i in range(4):
        node = f"cmp-{i}"
        ev, up, gate, en = (f"{k}/{node}" for k in ("evacuate", "upgrade-node", "health", "enable"))
        steps += [
            step(
                ev,
                "compute.evacuate",
                [prev],
                nodes=(node,),
                duration=60,
                params={"mode": "live-migrate", "aggregate": "hdd"},
                batch=f"b{i}",
            ),
            step(
                up,
                "ansible.playbook",
                [ev],
                nodes=(node,),
                duration=200,
                upgrades=(f"nova-compute@{node}",),
                disrupts=(f"nova-compute@{node}",),
                params={
                    "playbook": "upgrade-node",
                    "services": ["nova-compute"],
                    "release": release,
                },
                idempotent=idempotent,
                batch=f"b{i}",
            ),
            step(
                gate,
                "checks.health",
                [up],
                nodes=(node,),
                duration=10,
                batch=f"b{i}",
                params={"services": ["nova-compute"], "release": release},
            ),
            step(
                en,
                "compute.enable",
                [gate],
                nodes=(node,),
                duration=10,
                batch=f"b{i}",
                params={"aggregate": "hdd"},
            ),
        ]
        prev = en
    steps.append(step("postcheck", "checks.postcheck", [prev], params={"release": release}))
    return build_plan(
        "upgrade",
        cluster.name,
        steps,
        source=cluster.release,
        target=release,
        inventory_digest=cluster.digest,
    )


def wide_plan(n: int, cluster: str = "t", width: int = 8) -> Plan:
    """n no-op steps; each depends on the one `width` places before it."""
    steps = [
        step(f"s{i}", "noop.run", [f"s{i - width}"] if i >= width else (), duration=1.0)
        for i in range(n)
    ]
    return build_plan("bench", cluster, steps)


class RecordingDriver(Driver):
    """Succeeds (or fails per `fail`) and remembers what it ran."""

    name = "rec"

    def __init__(self, fail: dict[str, int] | None = None, output: dict[str, Any] | None = None):
        self.ran: list[str] = []
        self.fail = dict(fail or {})
        self.output = output or {}

    def run(self, step: Step, ctx: StepContext) -> StepResult:
        self.ran.append(step.id)
        if self.fail.get(step.id, 0) > 0:
            self.fail[step.id] -= 1
            return StepResult(ok=False, error=f"boom {step.id}", output=self.output)
        return StepResult(ok=True, output=self.output)

    def probe(self, step: Step, ctx: StepContext) -> bool | None:
        return step.id in self.ran and step.id not in self.fail


def fast_policies() -> PolicyTable:
    return PolicyTable(time_scale=0.0001, timeout_floor=5.0)


def run_plan(
    journal: Journal,
    plan: Plan,
    cluster: Cluster,
    driver: Driver,
    events: list[Event] | None = None,
    **options: Any,
) -> RunView:
    view = start_run(journal, plan, cluster)
    engine = Engine(
        journal,
        plan,
        cluster,
        Router.single(driver),
        policies=options.pop("policies", fast_policies()),
        options=EngineOptions(poll_interval=0.01, **options),
        sink=CallbackSink(events.append) if events is not None else None,
    )
    return engine.execute(view)


def tmp_state(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir(mode=0o700, exist_ok=True)
    return path
