"""Observed state through the sim driver: its cloud persists between runs, `status` shows it, and
an aborted upgrade is finished by a plan of only what is left."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.drivers.sim import SimDriver, read_state
from lifecycle.execution.journal import MemoryJournal
from lifecycle.execution.states import RunState
from lifecycle.formats.inventory import load_inventory
from lifecycle.model.observed import REACHABLE, UNKNOWN, UNREACHABLE
from lifecycle.planning import actions as act
from lifecycle.planning.observed import verification_view
from lifecycle.planning.plan import Plan
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from lifecycle.planning.verifier import verify
from tests.unit.test_engine_support import run_plan

DEMO = Path(__file__).resolve().parents[2] / "tests" / "data" / "demo-train"
CLUSTER = load_inventory(str(DEMO))
INTENTS = {
    "ussuri": UpgradeIntent("ussuri"),
    "victoria+octopus": UpgradeIntent("victoria", "octopus"),
}
FIRST = {name: plan_upgrade(CLUSTER, intent) for name, intent in INTENTS.items()}


def sim(state_dir: Path, faults: str = "") -> SimDriver:
    return SimDriver(state_dir=state_dir, scale=0.0, faults=faults)


def upgraded(plan: Plan, counts: dict[str, int]) -> Counter[tuple[str, str]]:
    """(instance, release) -> how many times a run really upgraded it (confirmations are
    checks, not upgrades)."""
    out: Counter[tuple[str, str]] = Counter()
    for step in plan.steps:
        if step.action == act.HEALTH or not counts.get(step.id):
            continue
        for text in step.upgrades:
            out[(text, str(step.param("release")))] += counts[step.id]
    return out


def wanted(plan: Plan) -> Counter[tuple[str, str]]:
    return Counter((t, str(s.param("release"))) for s in plan.steps for t in s.upgrades)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(INTENTS)), st.data())
def test_what_is_left_after_a_random_abort_finishes_the_upgrade_exactly_once(name, data) -> None:
    """Run 1 fails for good at a random upgrade step and stops; run 2 plans from what the sim
    cloud runs and finishes: every instance reaches the target, and over the two runs each is
    upgraded once per hop, never twice."""
    intent, first = INTENTS[name], FIRST[name]
    failing = data.draw(st.sampled_from(sorted(s.id for s in first.steps if s.disrupts)))
    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp)
        broken = sim(state_dir, f"fail:{failing}:99")
        one = run_plan(MemoryJournal(), first, CLUSTER, broken)
        assert one.state is RunState.FAILED
        observed = sim(state_dir).observe(CLUSTER)
        rest = plan_upgrade(CLUSTER, intent, observed=observed)
        assert verify(rest, verification_view(CLUSTER, rest)) == []
        driver = sim(state_dir)
        two = run_plan(MemoryJournal(), rest, CLUSTER, driver)
        assert two.state is RunState.SUCCEEDED, two
        total = upgraded(first, broken.counts(CLUSTER.name, one.run.id))
        total += upgraded(rest, driver.counts(CLUSTER.name, two.run.id))
        assert total == wanted(first)  # every (instance, hop) once over the two runs
        versions = read_state(state_dir, CLUSTER.name)["versions"]
        ceph_goal = intent.ceph_target or CLUSTER.ceph_release
        for text, release in versions.items():
            ceph = text.startswith("ceph-")
            assert release == (ceph_goal if ceph else intent.target), text


def test_the_sim_cloud_persists_between_runs_and_observe_shows_it(tmp_path) -> None:
    before = sim(tmp_path).observe(CLUSTER)
    assert {i.release for i in before.instances} == {"train", "nautilus"}
    run_plan(MemoryJournal(), FIRST["ussuri"], CLUSTER, sim(tmp_path))
    after = sim(tmp_path).observe(CLUSTER)  # a new driver: read from the state dir
    releases = {i.instance: i.release for i in after.instances}
    assert releases["galera@ctl-0"] == "ussuri" and releases["ceph-osd@ceph-0"] == "nautilus"
    assert all(n.state == REACHABLE for n in after.nodes)
    galera = after.store("galera")
    assert galera is not None and galera.quorum and galera.field("wsrep_cluster_size") == "3"
    assert galera.field("wsrep_cluster_status") == "Primary"
    assert {c.node for c in after.computes if c.enabled and c.up} == set(
        CLUSTER.members["nova-compute"]
    )
    assert sum(c.instances or 0 for c in after.computes) == 12  # moved around, none lost


def test_a_dead_sim_node_is_unreachable_and_its_stores_lose_the_member(tmp_path) -> None:
    driver = sim(tmp_path, "die:ctl-1@upgrade/rabbitmq/ctl-1")
    view = run_plan(MemoryJournal(), FIRST["ussuri"], CLUSTER, driver)
    assert view.state is RunState.FAILED
    observed = sim(tmp_path).observe(CLUSTER)
    assert observed.node_state("ctl-1") == UNREACHABLE
    assert observed.release_of("keystone@ctl-1") == UNKNOWN
    galera = observed.store("galera")
    assert galera is not None and galera.members == ("ctl-0", "ctl-2")
    assert galera.health == "degraded" and galera.quorum is True
    assert galera.field("wsrep_cluster_size") == "2"
    assert observed.store("rabbitmq").field("running_nodes") == "ctl-0,ctl-2"
