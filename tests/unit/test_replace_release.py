"""A replacement runs the release the cloud runs (issue 12, found by an operator trial): the
observed release with --observe, else the recorded state's, else the inventory's; refused (exit
3) when the members of a service run different releases, or when only the recorded state speaks
and it is behind the inventory."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.catalog import load_catalog
from lifecycle.cli.main import main
from lifecycle.errors import UnsafePlan
from lifecycle.formats.inventory import load_inventory
from lifecycle.model.in_place import InPlace
from lifecycle.model.observed import ObservedState
from lifecycle.planning import actions as act
from lifecycle.planning.observed import observed_in_place
from lifecycle.planning.plan import Plan
from lifecycle.planning.replace import ReplaceIntent, Replacement, plan_replace, replaced_cluster
from lifecycle.planning.running import OBSERVED, RECORDED, service_release
from lifecycle.planning.verifier import verify
from tests.unit.cluster_factory import observed_at

ROOT = Path(__file__).resolve().parents[2]
LAB_DIR = ROOT / "inventories" / "lab"
LAB = load_inventory(LAB_DIR)  # release: train, ceph_release: nautilus
CATALOG = load_catalog()
SIM = ["--driver", "sim", "--sim-scale", "0", "-y", "--no-progress"]
CTL1 = ReplaceIntent("ctl-1", Replacement("ctl-1"))


def _at(openstack: str, ceph: str = "nautilus") -> dict[str, str]:
    """Every instance of the lab at `openstack` (Ceph daemons at `ceph`)."""
    return {
        f"{s}@{n}": ceph if CATALOG.services[s].ceph else openstack
        for s, nodes in LAB.members.items()
        for n in nodes
    }


def _observed(at: dict[str, str]) -> ObservedState:
    return observed_at(LAB, at)


def _deployed(plan: Plan) -> dict[str, str | None]:
    """service -> the release its deploy step on the replacement expects."""
    out = {}
    for step in plan.steps:
        if act.playbook(step) == "deploy-service" and step.id.startswith("deploy/"):
            service = str(step.param("service"))
            out[service] = act.expected_release(step, service, CATALOG.services[service].ceph)
    return out


def _gates(plan: Plan) -> dict[str, str | None]:
    """step id -> the release each health gate on the replacement asks its services for."""
    out = {}
    for step in plan.steps:
        if step.action == act.HEALTH and "ctl-1" in step.nodes and step.id.startswith("health/"):
            out[step.id] = step.param("release")
    return out


def test_after_an_upgrade_the_replacement_runs_the_recorded_release_not_the_inventorys() -> None:
    plan = plan_replace(LAB, CTL1, recorded=InPlace(at=_at("ussuri")))
    deployed = _deployed(plan)
    assert deployed["galera"] == deployed["keystone"] == deployed["nova-api"] == "ussuri"
    assert deployed["ceph-mon"] == "nautilus"
    assert set(_gates(plan).values()) == {"ussuri"}
    assert not verify(plan, replaced_cluster(LAB, plan))


def test_the_observed_release_wins_over_the_recorded_one() -> None:
    plan = plan_replace(
        LAB, CTL1, observed=_observed(_at("victoria")), recorded=InPlace(at=_at("ussuri"))
    )
    assert set(_gates(plan).values()) == {"victoria"}
    assert _deployed(plan)["rabbitmq"] == "victoria"


def test_without_observed_nor_recorded_releases_the_inventorys_is_deployed() -> None:
    plan = plan_replace(LAB, CTL1)
    assert set(_gates(plan).values()) == {"train"}


def test_members_at_different_releases_are_refused_naming_the_service_and_the_rule() -> None:
    at = _at("ussuri") | {"galera@ctl-2": "train"}
    with pytest.raises(UnsafePlan) as refused:
        plan_replace(LAB, CTL1, observed=_observed(at))
    text = str(refused.value)
    assert "release: galera: its members run different releases" in text
    assert "ctl-0 at ussuri, ctl-2 at train" in text
    assert "keystone" not in text  # only the service whose members disagree
    forced = plan_replace(LAB, CTL1, observed=_observed(at), force=True)
    assert _deployed(forced)["keystone"] == "ussuri"


def test_a_recorded_state_behind_the_inventory_is_refused_unless_observed() -> None:
    ahead = load_inventory(LAB_DIR)
    ahead = dataclasses.replace(ahead, release="victoria")
    with pytest.raises(UnsafePlan, match="the inventory says victoria, the recorded state ussuri"):
        plan_replace(ahead, CTL1, recorded=InPlace(at=_at("ussuri")))
    plan = plan_replace(
        ahead, CTL1, recorded=InPlace(at=_at("ussuri")), observed=_observed(_at("ussuri"))
    )
    assert set(_gates(plan).values()) == {"ussuri"}


def test_a_removal_deploys_nothing_so_a_mixed_store_does_not_refuse_it() -> None:
    at = _at("ussuri") | {"galera@ctl-2": "train"}
    plan_replace(LAB, ReplaceIntent("cmp-hdd-2"), observed=_observed(at))  # no UnsafePlan


RELEASES = ("train", "ussuri", "victoria")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    per_service=st.dictionaries(st.sampled_from(sorted(LAB.members)), st.sampled_from(RELEASES)),
    observed=st.booleans(),
    odd=st.one_of(st.none(), st.sampled_from(sorted(LAB.members))),
)
def test_each_service_of_the_replacement_runs_what_its_other_members_run(
    per_service, observed, odd
) -> None:
    """Random releases per service (every member alike) from the observation or the record:
    the replacement's deploy of each service asks for exactly that release; one service with
    a member at another release is refused by rule `release` (when it is on the node)."""
    at = _at("train")
    for service, release in per_service.items():
        if not CATALOG.services[service].ceph:
            at |= {f"{service}@{n}": release for n in LAB.members[service]}
    members = [n for n in LAB.members[odd] if n != "ctl-1"] if odd else []
    split = len(members) > 1 and not CATALOG.services[str(odd)].ceph
    if split:
        current = at[f"{odd}@{members[0]}"]
        at[f"{odd}@{members[0]}"] = next(r for r in RELEASES if r != current)
    kw = {"observed": _observed(at)} if observed else {"recorded": InPlace(at=at)}
    on_node = set(LAB.services_of(LAB.node("ctl-1")))
    if split and odd in on_node:
        with pytest.raises(UnsafePlan, match=f"release: {odd}: its members run different"):
            plan_replace(LAB, CTL1, **kw)  # type: ignore[arg-type]
        return
    plan = plan_replace(LAB, CTL1, **kw)  # type: ignore[arg-type]
    for service, release in _deployed(plan).items():
        other = next(n for n in LAB.members[service] if n != "ctl-1")
        assert release == at[f"{service}@{other}"], service
    common = {"observed": observed_in_place(LAB, kw["observed"], CATALOG)} if observed else kw
    chosen = service_release(LAB, CATALOG, "galera", "ctl-1", **common)  # type: ignore[arg-type]
    assert chosen.source == (OBSERVED if observed else RECORDED)


# --- on the sim driver ---------------------------------------------------------------------------


def test_replace_after_an_upgrade_on_the_sim_deploys_the_release_the_cloud_runs(
    tmp_path, capsys
) -> None:
    """The operator trial: upgrade to ussuri, inventory still at train, rebuild ctl-1. Before
    the fix the rebuilt node came back at train and its first gate failed after its members
    were removed."""
    (LAB_DIR / "secrets.yaml").chmod(0o600)
    state = tmp_path / "state"
    common = ["-i", str(LAB_DIR), "--state-dir", str(state), *SIM]
    assert main(["run", "upgrade", "--to", "ussuri", *common]) == 0
    capsys.readouterr()
    assert main(["run", "replace", "--node", "ctl-1", *common]) == 0
    assert "(replace of lab, SIMULATED): succeeded" in capsys.readouterr().out
    record = json.loads((state / "lab.state.json").read_text())
    assert record["instances"]["keystone@ctl-1"] == "ussuri"


def test_plan_replace_with_members_observed_at_two_releases_exits_3(tmp_path, capsys) -> None:
    (LAB_DIR / "secrets.yaml").chmod(0o600)
    seen = tmp_path / "observed.json"
    at = _at("ussuri") | {"rabbitmq@ctl-0": "train"}
    seen.write_text(json.dumps(_observed(at).to_dict()))
    args = ["plan", "replace", "-i", str(LAB_DIR), "--node", "ctl-1", "--observed", str(seen)]
    assert main([*args, "--state-dir", str(tmp_path / "state")]) == 3
    err = capsys.readouterr().err
    assert "rabbitmq: its members run different releases (ctl-0 at train, ctl-2 at ussuri" in err
