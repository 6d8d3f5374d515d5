"""One input for "what the cloud runs" (issue 11): the recorded state and an observation both
reduce to InPlace, and the upgrade planner reads the same start and the same work left from
either when they say the same thing."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.catalog import load_catalog
from lifecycle.formats.inventory import load_inventory
from lifecycle.model.in_place import InPlace
from lifecycle.model.observed import (
    ComputeObservation,
    ObservedState,
)
from lifecycle.planning import actions as act
from lifecycle.planning.observed import observed_in_place
from lifecycle.planning.plan import Plan
from lifecycle.planning.remaining import ahead_of_inventory, remaining
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from tests.unit.cluster_factory import observed_at
from tests.unit.test_deploy_at_release import DEMO

CATALOG = load_catalog()
CLUSTER = load_inventory(DEMO)  # release: train
OPENSTACK = sorted(
    f"{s}@{n}"
    for s, nodes in CLUSTER.members.items()
    if not CATALOG.services[s].ceph
    for n in nodes
)
RELEASES = ("train", "ussuri", "victoria")


def _observation(at: dict[str, str]) -> ObservedState:
    return observed_at(CLUSTER, at, computes=(ComputeObservation("cmp-hdd-0", enabled=False),))


def _upgraded(plan: Plan) -> set[tuple[str, str]]:
    """(instance, release) of every real upgrade (not a confirmation of one already done)."""
    return {
        (text, str(step.param("release")))
        for step in plan.steps
        if not step.param(act.AT_LEAST)
        for text in step.upgrades
    }


def test_an_observation_reduces_to_its_known_releases_disabled_hosts_and_flags() -> None:
    seen = observed_in_place(CLUSTER, _observation({"keystone@ctl-0": "ussuri"}), CATALOG)
    assert seen == InPlace(at={"keystone@ctl-0": "ussuri"}, disabled=frozenset({"cmp-hdd-0"}))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_recorded_and_observed_plan_the_same_start_and_the_same_upgrades(data) -> None:
    """Random releases per OpenStack instance, said once by an observation and once by the
    recorded state: both plans start at the oldest release and upgrade the same instances to
    the same releases (the observed plan confirms what is done, the recorded one drops it)."""
    at = {t: data.draw(st.sampled_from(RELEASES), label=t) for t in OPENSTACK[:12]}
    at |= dict.fromkeys(OPENSTACK[12:], data.draw(st.sampled_from(RELEASES), label="rest"))
    intent = UpgradeIntent("wallaby")
    observed = plan_upgrade(CLUSTER, intent, observed=_observation(at))
    done = InPlace(at=ahead_of_inventory(at, CLUSTER, CATALOG))
    full = plan_upgrade(CLUSTER, intent, in_place=done)
    left = remaining(full, done, CATALOG)
    assert left is not None
    oldest = min(at.values(), key=RELEASES.index)
    assert observed.source == full.source == left.source == oldest
    assert _upgraded(observed) == _upgraded(left)


def test_with_an_observation_the_observed_release_wins_over_the_recorded_one(
    tmp_path, capsys, monkeypatch
) -> None:
    """The record says every instance is at ussuri; the cloud shows keystone@ctl-0 back at
    train (rebuilt by hand). `plan upgrade --observed` plans its upgrade, where the record
    alone would say there is nothing to do."""
    import json

    from lifecycle.cli.main import main

    (DEMO / "secrets.yaml").chmod(0o600)
    monkeypatch.setenv("LIFECYCLE_JOURNAL_SYNC", "NORMAL")
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS", raising=False)
    state = ["--state-dir", str(tmp_path / "state")]
    run = ["run", "upgrade", "-i", str(DEMO), "--to", "ussuri", *state]
    assert main([*run, "--driver", "sim", "--sim-scale", "0", "-y", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["status", "-i", str(DEMO), "--driver", "sim", "-f", "json", *state]) == 0
    seen = json.loads(capsys.readouterr().out)
    seen.pop("differences", None)
    for item in seen["instances"]:
        if item["service"] == "keystone" and item["node"] == "ctl-0":
            item["release"] = "train"
    observed = tmp_path / "observed.json"
    observed.write_text(json.dumps(seen))
    plan = ["plan", "upgrade", "-i", str(DEMO), "--to", "ussuri", "-f", "json", *state]
    assert main([*plan, "--observed", str(observed)]) == 0
    steps = json.loads(capsys.readouterr().out)["steps"]
    upgraded = {t for s in steps if not s["params"].get(act.AT_LEAST) for t in s["upgrades"]}
    assert upgraded == {"keystone@ctl-0"}
