"""Properties of the engine over random plans and random failures (hypothesis)."""

from __future__ import annotations

import dataclasses
import json
import random
import tempfile
import threading
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.catalog import load_catalog
from lifecycle.drivers.sim import SimDriver
from lifecycle.execution.controller import disrupts
from lifecycle.execution.journal import MemoryJournal
from lifecycle.execution.states import RunState, StepState
from lifecycle.planning import actions as act
from lifecycle.planning.plan import Step
from lifecycle.planning.scheduler import build_plan
from lifecycle.planning.timeline import Replay
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from lifecycle.planning.verifier import verify
from tests.unit.cluster_factory import lab_like
from tests.unit.test_engine_support import RecordingDriver, run_plan, small_cluster, step


@st.composite
def plans_and_failures(draw):
    n = draw(st.integers(2, 25))
    steps = []
    for i in range(n):
        deps = draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set()
        steps.append(
            step(
                f"s{i}",
                draw(st.sampled_from(["ansible.playbook", "checks.health", "compute.evacuate"])),
                [f"s{d}" for d in sorted(deps)],
                nodes=(f"n{draw(st.integers(0, 4))}",),
                disrupts=("x@y",) if draw(st.booleans()) else (),
                idempotent=draw(st.booleans()),
                duration=1.0,
            )
        )
    plan = build_plan("t", "t", steps)
    fail = draw(st.dictionaries(st.sampled_from([s.id for s in steps]), st.integers(1, 3)))
    threshold = draw(st.integers(0, 2))
    return plan, fail, threshold


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans_and_failures(), st.integers(1, 4))
def test_engine_invariants(case, concurrency):
    plan, fail, threshold = case
    cluster = small_cluster(failure_threshold=threshold)
    events: list[dict] = []
    driver = RecordingDriver(fail=fail)
    view = run_plan(MemoryJournal(), plan, cluster, driver, events, concurrency=concurrency)
    states = {sid: s.state for sid, s in view.steps.items()}
    succeeded = {sid for sid, s in states.items() if s is StepState.SUCCEEDED}
    # a step ran only after every dependency had succeeded
    position = {}
    for i, e in enumerate(events):
        if e["event"] == "step-succeeded":
            position.setdefault(e["step"], i)
        if e["event"] == "step-started":
            for dep in plan.by_id[e["step"]].depends_on:
                assert position.get(dep, len(events)) < i
    # a step ran again only as a retry of an idempotent step that had failed
    for sid in set(driver.ran):
        runs = driver.ran.count(sid)
        assert runs == 1 or (plan.by_id[sid].idempotent and runs <= 1 + fail.get(sid, 0))
    # past the threshold, nothing that disrupts started
    kinds = [e["event"] for e in events]
    if "run-stopping" in kinds:
        after = events[kinds.index("run-stopping") :]
        started = [e["step"] for e in after if e["event"] == "step-started"]
        assert not any(disrupts(plan.by_id[s]) for s in started)
    # the run's verdict matches its steps
    if view.state is RunState.SUCCEEDED:
        assert succeeded == set(plan.by_id)
    else:
        assert view.state is RunState.FAILED
        assert any(s is StepState.FAILED for s in states.values())
    # nothing is left running; a retry is left waiting only when the run stopped before it
    assert StepState.RUNNING not in states.values()
    if StepState.RETRYING in states.values():
        assert "run-stopping" in kinds


# --- a plan the verifier accepts never breaks a rule at any moment of a real run -----------------


class MonitoredSim(SimDriver):
    """The sim driver with random step durations and a monitor: at every step start it looks at
    the simulated cluster (versions, disabled hosts, flags) and at the steps running now, and
    records every rule broken at that moment."""

    def __init__(self, state_dir, cluster, seed: int) -> None:
        super().__init__(state_dir=state_dir, scale=0.0)
        self.rng = random.Random(seed)
        self.cluster = cluster
        self.replay = Replay(build_plan("t", "t", []), cluster, load_catalog())
        self.running: dict[str, Step] = {}
        self.broken: list[str] = []
        self.lock = threading.Lock()

    def run(self, step, ctx):
        with self.lock:
            self.running[step.id] = step
            self.broken += self.check(ctx)
            pause = self.rng.choice([0.0, 0.005, 0.02])
        time.sleep(pause)
        try:
            return super().run(step, ctx)
        finally:
            with self.lock:  # the step's effects (flags, re-enabled hosts) are in: look again
                del self.running[step.id]
                self.broken += self.check(ctx)

    def check(self, ctx) -> list[str]:
        catalog, cluster, replay = load_catalog(), self.cluster, self.replay
        state = self._state(ctx.cluster)
        with state.lock:
            data = json.loads(json.dumps(state.data))
        down = [d for s in self.running.values() for d in s.disrupts]
        out: list[str] = []
        if len(down) != len(set(down)):
            out.append(f"plan: an instance disrupted twice ({sorted(down)})")
        for service, nodes in cluster.members.items():
            if replay.is_data(service):
                continue
            gone = [d for d in down if d.split("@")[0] == service]
            if len(gone) > catalog.services[service].quorum.max_down(len(nodes)):
                out.append(f"quorum: {gone}")
        evacuating = {n for s in self.running.values() if s.action == act.EVACUATE for n in s.nodes}
        hosts_out: dict[str, set[str]] = {}
        for node, group in replay.group_of.items():
            disrupted = [
                d for d in down if d.endswith(f"@{node}") and replay.is_data(d.split("@")[0])
            ]
            if disrupted or node in data["disabled"] or node in evacuating:
                hosts_out.setdefault(group, set()).add(node)
            if any(d.startswith("nova-compute@") for d in disrupted) and (
                node not in data["disabled"] or node in evacuating
            ):
                out.append(f"evacuation: {node}")
        for group, hosts in hosts_out.items():
            if len(hosts) > replay.group_limit[group]:
                out.append(f"capacity: {group} {sorted(hosts)}")
        osds = [d.split("@")[1] for d in down if d.startswith("ceph-osd@")]
        if len({cluster.node(n).failure_domain for n in osds}) > 1:
            out.append(f"ceph: domains {osds}")
        if osds and not data["flags"].get("noout"):
            out.append(f"ceph: OSDs down without noout {osds}")
        for s in self.running.values():
            release = s.param("release")
            for text in s.upgrades if isinstance(release, str) else ():
                service = text.split("@")[0]
                train = replay.train(service)
                for dep in replay.prerequisites(service):
                    for node in cluster.members[dep]:
                        have = train.get(data["versions"][f"{dep}@{node}"]).index
                        if have < train.get(str(release)).index:
                            out.append(f"order: {text} -> {release} before {dep}@{node}")
        return out


@st.composite
def accepted_plans(draw):
    """The planner's plan for a small cloud, with a few dependencies dropped where the verifier
    still accepts the result (else the planner's own plan)."""
    plan = draw(st.sampled_from(PLANS))
    edges = [(s.id, d) for s in plan.steps for d in s.depends_on]
    chosen = draw(st.sets(st.sampled_from(edges), max_size=4))
    steps = [
        dataclasses.replace(s, depends_on=tuple(d for d in s.depends_on if (s.id, d) not in chosen))
        for s in plan.steps
    ]
    thinner = build_plan(
        plan.operation,
        plan.cluster,
        steps,
        source=plan.source,
        target=plan.target,
        extra=plan.extra,
    )
    return thinner if not verify(thinner, CLUSTER) else plan


CLUSTER = lab_like(computes_hdd=3, computes_ssd=2, ceph=3, networkers=1)
PLANS = [
    plan_upgrade(CLUSTER, UpgradeIntent("ussuri", "octopus")),
    plan_upgrade(CLUSTER, UpgradeIntent("victoria")),
]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(accepted_plans(), st.integers(0, 2**16), st.integers(2, 8))
def test_accepted_plans_never_break_a_rule_while_running(plan, seed, concurrency):
    assert verify(plan, CLUSTER) == []
    with tempfile.TemporaryDirectory() as tmp:
        driver = MonitoredSim(tmp, CLUSTER, seed)
        view = run_plan(MemoryJournal(), plan, CLUSTER, driver, concurrency=concurrency)
    assert view.state is RunState.SUCCEEDED
    assert driver.broken == []
