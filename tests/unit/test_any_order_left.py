"""The DAG verifier on plans of what is left (issue 11): work an earlier run did is counted
through the initial state (instance -> release at the start), and only through it: the same plan
with no initial state is still refused."""

from __future__ import annotations

from pathlib import Path

from lifecycle.catalog import load_catalog
from lifecycle.formats.inventory import load_inventory
from lifecycle.planning import actions as act
from lifecycle.planning.any_order import AnyOrder
from lifecycle.planning.plan import Plan
from lifecycle.planning.remaining import InPlace, remaining
from lifecycle.planning.timeline import Replay
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from lifecycle.planning.verifier import verify

DEMO = Path(__file__).resolve().parents[2] / "tests" / "data" / "demo-train"
CATALOG = load_catalog()
CLUSTER = load_inventory(DEMO)
PLAN = plan_upgrade(CLUSTER, UpgradeIntent("ussuri"))


def _done_through(*ids: str) -> set[str]:
    """The steps a run stopped after `ids` finished: them and their ancestors."""
    done: set[str] = set()
    todo = list(ids)
    while todo:
        sid = todo.pop()
        if sid not in done:
            done.add(sid)
            todo.extend(PLAN.by_id[sid].depends_on)
    return done


def _at(done: set[str]) -> dict[str, str]:
    at = {}
    for step in PLAN.steps:
        if step.id in done:
            for text in step.upgrades:
                service = text.partition("@")[0]
                release = act.expected_release(step, service, CATALOG.services[service].ceph)
                at[text] = str(release)
    return at


def _upgrading(*services: str) -> list[str]:
    return [s.id for s in PLAN.steps if any(t.partition("@")[0] in services for t in s.upgrades)]


def _faults(plan: Plan, initial: dict[str, str] | None, rule: str) -> list[str]:
    found = AnyOrder(plan, Replay(plan, CLUSTER, CATALOG, initial)).check()
    return [v.message for v in found if v.rule == rule]


def _left(done: set[str]) -> tuple[Plan, dict[str, str]]:
    at = _at(done)
    left = remaining(PLAN, InPlace(at=at), CATALOG)
    assert left is not None
    return left, at


def test_a_control_canary_done_by_the_earlier_run_is_passed():
    first = _upgrading("nova-api")[0]
    left, at = _left(_done_through(first))
    assert first not in left.by_id
    assert not _faults(left, at, "gates")
    assert not verify(left, CLUSTER, initial=at)
    without = _faults(left, None, "gates")
    assert any("control-plane canary" in m and "nova-api" in m for m in without), without


def test_a_schema_expanded_by_the_earlier_run_counts_as_expanded():
    # the nova control services are done (their expand with them); nova-compute is left
    left, at = _left(_done_through(*_upgrading("nova-api", "nova-conductor", "nova-scheduler")))
    assert "db-expand/nova" not in left.by_id and "db-contract/nova" in left.by_id
    assert not _faults(left, at, "database")
    assert not verify(left, CLUSTER, initial=at)
    without = _faults(left, None, "database")
    assert any(
        m.startswith("nova-compute -> ussuri") and "nova schema was expanded" in m for m in without
    ), without
    assert any(m.startswith("nova schema contracted") and "no expand" in m for m in without)


def test_an_instance_at_a_release_excuses_expands_up_to_it_only():
    # keystone at ussuri at the start: its schema was expanded for ussuri, not for victoria
    plan = plan_upgrade(CLUSTER, UpgradeIntent("victoria"))
    at = {f"keystone@{n}": "ussuri" for n in CLUSTER.members["keystone"][:1]}
    ussuri = CATALOG.openstack.get("ussuri").index
    relaxed = AnyOrder(plan, Replay(plan, CLUSTER, CATALOG, at))
    assert relaxed.expanded_before("keystone", ussuri)
    assert not relaxed.expanded_before("keystone", ussuri + 1)
    assert not relaxed.expanded_before("nova", ussuri)
    assert not AnyOrder(plan, Replay(plan, CLUSTER, CATALOG)).expanded_before("keystone", ussuri)
