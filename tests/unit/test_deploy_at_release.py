"""A deploy at a release other than the inventory's, then an upgrade planned from the recorded
state (issue 11, found by a trial): the recorded state keeps the deploy's schema syncs, and
`plan upgrade` without --observe plans exactly what an inventory at that release would (no
schema steps of the hops the deploy skipped, hops in order, the same step ids)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.catalog import load_catalog
from lifecycle.cli.main import main
from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.plan_json import plan_from_json
from lifecycle.model.in_place import InPlace
from lifecycle.planning import actions as act
from lifecycle.planning.plan import Plan
from lifecycle.planning.remaining import ahead_of_inventory, remaining, start_view
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "data" / "demo-train"  # release: train, ceph_release: nautilus
CATALOG = load_catalog()
SIM = ["--driver", "sim", "--sim-scale", "0", "-y", "--no-progress"]


def _shape(plan: Plan) -> list[tuple[object, ...]]:
    """What the operator runs: every step's id, action, nodes, dependencies, params, start."""
    return [
        (s.id, s.action, s.nodes, s.depends_on, s.params, s.upgrades, plan.start_of[s.id])
        for s in plan.steps
    ]


def _inventory_at(tmp_path: Path, release: str) -> Path:
    """A copy of the demo inventory whose `release:` says `release`."""
    copy = tmp_path / f"demo-{release}"
    shutil.copytree(DEMO, copy)
    text = (copy / "cluster.yaml").read_text()
    (copy / "cluster.yaml").write_text(text.replace("release: train", f"release: {release}", 1))
    (copy / "secrets.yaml").chmod(0o600)
    return copy


def _plan_json(capsys, inventory: Path, state: Path, target: str) -> dict:
    capsys.readouterr()
    args = ["plan", "upgrade", "-i", str(inventory), "--to", target, "-f", "json"]
    assert main([*args, "--state-dir", str(state)]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def sim_env(monkeypatch):
    (DEMO / "secrets.yaml").chmod(0o600)
    monkeypatch.setenv("LIFECYCLE_JOURNAL_SYNC", "NORMAL")
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS", raising=False)


def test_deploy_at_ussuri_then_plan_upgrade_plans_what_an_inventory_at_ussuri_plans(
    tmp_path, capsys, sim_env
) -> None:
    state = tmp_path / "state"
    common = ["-i", str(DEMO), "--state-dir", str(state), *SIM]
    assert main(["run", "deploy", "--release", "ussuri", "--provisioned", *common]) == 0
    record = json.loads((state / "demo.state.json").read_text())
    # every project's schema is recorded at the release deployed (synced by the deploy's
    # db-migrate for its databases, by its services' own bootstrap for the others)
    projects = {s.project for s in CATALOG.services.values() if s.project and not s.ceph}
    deployed = {CATALOG.services[s].project for s in load_inventory(DEMO).members}
    assert record["contracted"] == {p: "ussuri" for p in projects & deployed}
    assert set(CATALOG.deploy_databases) <= set(record["contracted"])
    after_deploy = _plan_json(capsys, DEMO, state, "victoria")
    at_ussuri = _plan_json(capsys, _inventory_at(tmp_path, "ussuri"), tmp_path / "none", "victoria")
    assert after_deploy["from"] == "ussuri"
    assert after_deploy["steps"] == at_ussuri["steps"]
    ids = [s["id"] for s in after_deploy["steps"]]
    assert not [i for i in ids if i.startswith("ussuri/")]  # no hop the deploy already made
    # and it runs: every instance upgraded once, to victoria
    capsys.readouterr()
    assert main(["run", "upgrade", "--to", "victoria", *common]) == 0
    assert "(upgrade of demo, train -> victoria" not in capsys.readouterr().out
    record = json.loads((state / "demo.state.json").read_text())
    services = CATALOG.services
    assert {
        r for i, r in record["instances"].items() if not services[i.partition("@")[0]].ceph
    } == {"victoria"}


def test_a_deploy_at_the_target_leaves_nothing_to_do(tmp_path, capsys, sim_env) -> None:
    state = tmp_path / "state"
    common = ["-i", str(DEMO), "--state-dir", str(state), *SIM]
    assert main(["run", "deploy", "--release", "ussuri", "--provisioned", *common]) == 0
    capsys.readouterr()
    assert (
        main(["plan", "upgrade", "-i", str(DEMO), "--to", "ussuri", "--state-dir", str(state)]) == 0
    )
    assert capsys.readouterr().out.startswith("nothing to do: every instance is at ussuri")


# --- the planner, without a run --------------------------------------------------------------

OPENSTACK = [r.name for r in CATALOG.openstack.releases]
START = OPENSTACK.index("train")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ahead=st.integers(1, 3), further=st.integers(1, 2))
def test_every_instance_recorded_at_r_plans_as_an_inventory_at_r(ahead: int, further: int) -> None:
    """For a release R past the inventory's and a target past R: the plan of what is left,
    from a recorded state with every instance at R (schemas synced at R, as a deploy leaves
    them), is the plan of an inventory at R, step for step."""
    cluster = load_inventory(DEMO)
    at_r = OPENSTACK[START + ahead]
    target = OPENSTACK[START + ahead + further]
    at = {
        f"{s}@{n}": cluster.ceph_release if CATALOG.services[s].ceph else at_r
        for s, nodes in cluster.members.items()
        for n in nodes
    }
    done = InPlace(
        at=ahead_of_inventory(at, cluster, CATALOG),
        contracted={p: at_r for p in CATALOG.deploy_databases},
    )
    assert start_view(cluster, done, CATALOG).release == at_r
    full = plan_upgrade(cluster, UpgradeIntent(target), in_place=done)
    left = remaining(full, done, CATALOG)
    assert left is not None
    expected = plan_upgrade(replace(cluster, release=at_r), UpgradeIntent(target))
    assert (left.source, left.target) == (expected.source, expected.target)
    assert _shape(left) == _shape(expected)
    # no database step of a release at or below R
    index = {name: i for i, name in enumerate(OPENSTACK)}
    assert all(index[str(s.param("release"))] > index[at_r] for s in left.steps if act.db_phase(s))


def test_an_aborted_upgrade_still_plans_from_the_inventory_and_drops_what_is_done() -> None:
    """Only some instances ahead: the start stays the inventory's (remaining drops the rest)."""
    cluster = load_inventory(DEMO)
    done = InPlace(at={"keystone@ctl-0": "ussuri"})
    assert start_view(cluster, done, CATALOG) is cluster
    full = plan_upgrade(cluster, UpgradeIntent("ussuri"), in_place=done)
    assert _shape(full) == _shape(plan_upgrade(cluster, UpgradeIntent("ussuri")))


def test_a_plan_of_what_is_left_after_a_deploy_at_r_round_trips_through_json(tmp_path) -> None:
    from lifecycle.formats.plan_json import plan_to_json

    cluster = load_inventory(DEMO)
    at = {f"{s}@{n}": "ussuri" for s, nodes in cluster.members.items() for n in nodes}
    done = InPlace(at=ahead_of_inventory(at, cluster, CATALOG))
    plan = plan_upgrade(cluster, UpgradeIntent("victoria"), in_place=done)
    assert plan.inventory_digest == cluster.digest  # the plan is still for this inventory
    assert plan_from_json(plan_to_json(plan)).source == "ussuri"
