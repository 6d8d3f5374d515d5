"""A scale-out deploys the release the cloud runs (issue 11): after an upgrade the operator has
not written into the inventory, new computes came up at the inventory's (old) release beside a
newer control plane. Now each new service runs what its service's live members run: observed
with --observe, else the recorded state's, else the inventory's; refused (exit 3, rule release)
when those members disagree; nodes observed down are left out of the new servers' checks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.catalog import load_catalog
from lifecycle.cli.main import main
from lifecycle.cli.nodes_cmds import scale_out_planner
from lifecycle.drivers.sim import read_state
from lifecycle.errors import UnsafePlan
from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.nodes_file import load_nodes_file
from lifecycle.formats.profiles import load_profiles
from lifecycle.model.in_place import InPlace
from lifecycle.model.observed import REACHABLE, UNREACHABLE, NodeObservation
from lifecycle.planning import actions as act
from lifecycle.planning.observed import verification_view
from lifecycle.planning.plan import Plan
from lifecycle.planning.scale_out import LiveState, plan_scale_out
from lifecycle.planning.verifier import verify
from tests.unit.cluster_factory import observed_at

ROOT = Path(__file__).resolve().parents[2]
LAB_DIR = ROOT / "inventories" / "lab"
LAB = load_inventory(LAB_DIR)  # release: train, ceph_release: nautilus
NODES_FILE = LAB_DIR / "new-servers.json"  # computes cmp-ssd-8, cmp-ssd-9, cmp-hdd-12
PROFILES = load_profiles(ROOT / "hardware_profiles")
CATALOG = load_catalog()
SIM = ["--driver", "sim", "--sim-scale", "0", "-y", "--no-progress"]


def _private() -> None:
    (LAB_DIR / "secrets.yaml").chmod(0o600)  # git keeps no modes; both hold passwords
    NODES_FILE.chmod(0o600)


def _new_nodes() -> list:
    _private()
    return list(load_nodes_file(NODES_FILE)[0])


def _at(openstack: str, ceph: str = "nautilus") -> dict[str, str]:
    """Every instance of the lab at `openstack` (Ceph daemons at `ceph`)."""
    return {
        f"{s}@{n}": ceph if CATALOG.services[s].ceph else openstack
        for s, nodes in LAB.members.items()
        for n in nodes
    }


def _plan(**kw) -> Plan:
    return plan_scale_out(LAB, _new_nodes(), PROFILES, **kw)


def _released(plan: Plan, kind: str = "deploy-node") -> set[object]:
    return {s.param("release") for s in plan.steps if s.id.startswith(f"{kind}/")}


def test_after_an_upgrade_the_new_computes_run_the_recorded_release() -> None:
    plan = _plan(live=LiveState(recorded=InPlace(at=_at("ussuri"))))
    assert _released(plan) == _released(plan, "health") == {"ussuri"}
    assert plan.target == "ussuri"
    assert not verify(plan, verification_view(LAB, plan))


def test_the_observed_release_wins_and_nothing_said_keeps_the_inventorys() -> None:
    live = LiveState(observed_at(LAB, _at("victoria")), InPlace(at=_at("ussuri")))
    assert _released(_plan(live=live)) == {"victoria"}
    assert _released(_plan()) == {"train"}


def test_compute_members_at_two_releases_are_refused_naming_service_and_members() -> None:
    seen = observed_at(LAB, _at("ussuri") | {"nova-compute@cmp-hdd-1": "train"})
    with pytest.raises(UnsafePlan) as refused:
        _plan(live=LiveState(seen))
    text = str(refused.value)
    assert "release: nova-compute: its members run different releases" in text
    assert "cmp-hdd-1 at train" in text and "cmp-hdd-0 at ussuri" in text
    forced = _plan(live=LiveState(seen), force=True)  # --force: the inventory's, as before
    assert _released(forced) == {"train"}


def test_a_node_observed_down_is_left_out_of_the_checks_and_its_release_ignored() -> None:
    seen = observed_at(LAB, _at("ussuri") | {"nova-compute@cmp-hdd-1": "train"})
    down = tuple(
        NodeObservation(n.name, UNREACHABLE if n.name == "cmp-hdd-1" else REACHABLE)
        for n in LAB.nodes
    )
    plan = _plan(live=LiveState(dataclasses.replace(seen, nodes=down)))
    assert _released(plan) == {"ussuri"}  # the down member does not vote
    health = [s for s in plan.steps if s.action == act.HEALTH]
    assert health and all(act.planned_around(s) == ("cmp-hdd-1",) for s in health)
    assert dict(plan.extra)["observed_down"] == ("cmp-hdd-1",)
    assert not verify(plan, verification_view(LAB, plan))
    # nothing of the scale-out runs on an existing node
    existing = {n.name for n in LAB.nodes}
    assert not {n for s in plan.steps for n in s.nodes} & existing


def test_without_observation_nor_record_the_plan_is_what_it_was() -> None:
    plan = _plan(live=LiveState())
    assert plan.digest == plan_scale_out(LAB, _new_nodes(), PROFILES).digest
    assert not any(act.planned_around(s) for s in plan.steps)


RELEASES = ("train", "ussuri", "victoria")
COMPUTE = ("nova-compute", "neutron-ovs-agent")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    per_service=st.fixed_dictionaries({s: st.sampled_from(RELEASES) for s in COMPUTE}),
    observed=st.booleans(),
)
def test_a_new_compute_runs_what_its_services_members_run_or_is_refused(
    per_service, observed
) -> None:
    """Random releases per compute service (every member alike), from the observation or the
    record: the new computes run that release when both services agree; refused (rule release,
    naming the node and both) when they do not: deploy-node installs one release."""
    at = _at("train")
    for service, release in per_service.items():
        at |= {f"{service}@{n}": release for n in LAB.members[service]}
    live = LiveState(observed_at(LAB, at)) if observed else LiveState(recorded=InPlace(at=at))
    if len(set(per_service.values())) > 1:
        with pytest.raises(UnsafePlan, match="cmp-ssd-8: its services' members run different"):
            _plan(live=live)
        return
    plan = _plan(live=live)
    assert _released(plan) == _released(plan, "health") == {per_service["nova-compute"]}


# --- the commands ---------------------------------------------------------------------------------


def _scale_out(state: Path, *extra: str) -> int:
    args = ["run", "scale-out", "-i", str(LAB_DIR), "--nodes", str(NODES_FILE)]
    return main([*args, "--state-dir", str(state), *SIM, *extra])


def test_scale_out_after_an_upgrade_on_the_sim_deploys_the_release_the_cloud_runs(
    tmp_path, capsys
) -> None:
    """The trial: upgrade to ussuri, the inventory still at train, add computes. Before the fix
    they came up at train beside a ussuri control plane."""
    _private()
    state = tmp_path / "state"
    assert main(["run", "upgrade", "--to", "ussuri", "-i", str(LAB_DIR), "--state-dir",
                 str(state), *SIM]) == 0  # fmt: skip
    capsys.readouterr()
    assert _scale_out(state) == 0
    assert "every step succeeded" in capsys.readouterr().out
    versions = read_state(state, "lab")["versions"]
    assert versions["nova-compute@cmp-ssd-8"] == "ussuri"
    assert versions["neutron-ovs-agent@cmp-hdd-12"] == "ussuri"
    record = json.loads((state / "lab.state.json").read_text())
    assert record["instances"]["nova-compute@cmp-ssd-9"] == "ussuri"


def test_the_intent_keeps_the_recorded_releases_so_a_resume_plans_the_same(
    tmp_path, capsys
) -> None:
    _private()
    state = tmp_path / "state"
    assert main(["run", "upgrade", "--to", "ussuri", "-i", str(LAB_DIR), "--state-dir",
                 str(state), *SIM]) == 0  # fmt: skip
    assert _scale_out(state) == 0
    capsys.readouterr()
    assert main(["runs", "show", "last", "--state-dir", str(state), "-f", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    intent = shown["intent"]
    assert intent["recorded"]["at"]["nova-compute@cmp-hdd-0"] == "ussuri"
    (state / "lab.state.json").unlink()  # a resume plans from the intent, not the file
    assert _released(scale_out_planner(LAB, intent)) == {"ussuri"}


def test_plan_scale_out_with_compute_members_observed_apart_exits_3_and_force_records(
    tmp_path, capsys
) -> None:
    _private()
    seen = tmp_path / "observed.json"
    at = _at("ussuri") | {"nova-compute@cmp-ssd-0": "train"}
    seen.write_text(json.dumps(observed_at(LAB, at).to_dict()))
    args = ["plan", "scale-out", "-i", str(LAB_DIR), "--nodes", str(NODES_FILE)]
    args += ["--observed", str(seen), "--state-dir", str(tmp_path / "state")]
    assert main(args) == 3
    err = capsys.readouterr().err
    assert "nova-compute: its members run different releases" in err
    assert "cmp-ssd-0 at train" in err
    assert main([*args, "--force"]) == 0
    assert "warning: --force overrides: release: nova-compute" in capsys.readouterr().err
    state = tmp_path / "state"
    assert _scale_out(state, "--observed", str(seen)) == 3
    assert _scale_out(state, "--observed", str(seen), "--force") == 0
    capsys.readouterr()
    assert main(["runs", "show", "last", "--state-dir", str(state), "-f", "json"]) == 0
    assert "release: nova-compute" in capsys.readouterr().out  # the override is recorded
