"""The recorded state (issue 11, item 3): written after every run, used by validate and plan,
so that an upgrade done is not planned again and an aborted one is finished by what is left."""

from __future__ import annotations

import difflib
import json
import shutil
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.catalog import load_catalog
from lifecycle.cli.main import main
from lifecycle.drivers.sim import read_state
from lifecycle.execution.recorded_state import load_versions, state_path
from lifecycle.execution.replay import replay
from lifecycle.execution.run_index import all_runs
from lifecycle.execution.sqlite_journal import SqliteJournal
from lifecycle.execution.states import StepState
from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.plan_json import plan_from_json
from lifecycle.model.recorded import instances_at
from lifecycle.planning import actions as act
from lifecycle.planning.remaining import InPlace, remaining
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from lifecycle.planning.verifier import verify

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "data" / "demo-train"
LAB = ROOT / "inventories" / "lab"


@pytest.fixture
def state(tmp_path, monkeypatch):
    (DEMO / "secrets.yaml").chmod(0o600)  # git does not keep the mode
    root = tmp_path / "state"
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(root))
    monkeypatch.setenv("LIFECYCLE_SIM_SCALE", "0")
    monkeypatch.setenv("LIFECYCLE_JOURNAL_SYNC", "NORMAL")
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS", raising=False)
    return root


def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def upgrade(capsys, *extra: str) -> tuple[int, str, str]:
    args = ["run", "upgrade", "-i", str(DEMO), "--to", "ussuri", "-y", "--driver", "sim"]
    return cli(capsys, *args, "--no-progress", *extra)


def openstack_instances(at: dict[str, str]) -> dict[str, str]:
    services = load_catalog().services
    return {i: r for i, r in at.items() if not services[i.partition("@")[0]].ceph}


def upgraded_by_runs(root: Path) -> dict[str, int]:
    """instance -> how many succeeded steps of every run upgraded it."""
    counts: dict[str, int] = {}
    for entry in all_runs(root):
        journal = SqliteJournal(entry.journal)
        try:
            view = replay(journal, entry.record.id)
        finally:
            journal.close()
        for sid, step in view.steps.items():
            if step.state is StepState.SUCCEEDED:
                for text in view.plan.by_id[sid].upgrades:
                    counts[text] = counts.get(text, 0) + 1
    return counts


def test_a_finished_upgrade_is_recorded_and_not_planned_again(state, capsys):
    code, out, _ = upgrade(capsys)
    assert code == 0
    run_id = out.split()[1]
    path = state_path(state, "demo")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    current, previous = load_versions(state, "demo")
    assert current is not None and previous is None
    assert current.run == run_id and current.run_state == "succeeded" and current.version == 1
    at = openstack_instances(instances_at(current))
    cluster = load_inventory(DEMO)
    assert len(at) == sum(len(n) for s, n in cluster.members.items() if not s.startswith("ceph"))
    assert set(at.values()) == {"ussuri"}
    assert current.flags == () and current.disabled == ()

    code, out, _ = cli(capsys, "validate", "-i", str(DEMO))
    assert code == 0
    assert f"every OpenStack instance is at ussuri after run {run_id}" in out
    assert "edit `release: ussuri`" in out

    code, out, _ = cli(capsys, "plan", "upgrade", "-i", str(DEMO), "--to", "ussuri")
    assert code == 0
    assert out.startswith(f"nothing to do: every instance is at ussuri (recorded by run {run_id})")
    code, out, _ = upgrade(capsys)  # run says the same, and starts no run
    assert code == 0 and "nothing to do" in out
    assert len(all_runs(state)) == 1
    # the next release is planned from what the cloud runs: the ussuri hop is not planned again
    code, out, err = cli(
        capsys, "plan", "upgrade", "-i", str(DEMO), "--to", "victoria", "-f", "json"
    )
    assert code == 0, err
    plan = plan_from_json(out)
    assert {s.param("release") for s in plan.steps if s.upgrades} == {"victoria"}
    assert "47 at ussuri" in err


def test_an_aborted_upgrade_is_finished_by_a_plan_of_what_is_left(state, capsys, monkeypatch):
    # every attempt of the second HDD batch's upgrade fails: the host stays disabled
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", "fail:upgrade/hdd/batch-2:99")
    code, _, err = upgrade(capsys, "--ceph-to", "octopus")
    assert code == 4
    first = all_runs(state)[-1].record.id
    # the failed run's own report ends with what it left and what to run next
    assert "hosts disabled: cmp-hdd-1" in err and "--to ussuri --ceph-to octopus" in err
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS")
    code, out, _ = cli(capsys, "abort", "-y", first)  # the operator gives the failed run up
    assert code == 0
    assert "hosts disabled: cmp-hdd-1" in out and "plans only what is left" in out
    assert "Ceph flags set: none" in out
    record, _ = load_versions(state, "demo")
    assert record is not None and record.run == first and record.disabled == ("cmp-hdd-1",)
    assert record.run_state == "aborted"

    code, out, err = cli(
        capsys, "plan", "upgrade", "-i", str(DEMO), "--to", "ussuri", "--ceph-to", "octopus",
        "-f", "json",
    )  # fmt: skip
    assert code == 0, err  # the verifier accepted it
    left = plan_from_json(out)
    upgrades = [u for s in left.steps for u in s.upgrades]
    assert sorted(upgrades) == ["neutron-ovs-agent@cmp-hdd-1", "nova-compute@cmp-hdd-1"]
    assert "enable/hdd/batch-2" in left.by_id and "precheck/cluster" in left.by_id

    code, out, err = upgrade(capsys, "--ceph-to", "octopus")
    assert code == 0, err
    assert set(upgraded_by_runs(state).values()) == {1}
    sim = read_state(state, "demo")
    assert openstack_instances(sim["versions"]) == {
        i: "ussuri" for i in openstack_instances(sim["versions"])
    }
    assert sim["disabled"] == []
    current, previous = load_versions(state, "demo")
    assert current is not None and previous is not None and previous.run == first
    assert current.version == 2 and current.previous_run == first and current.disabled == ()


def test_scale_out_writes_the_new_nodes_into_the_inventory_keeping_comments(tmp_path, capsys):
    lab = tmp_path / "lab"
    shutil.copytree(LAB, lab)
    (lab / "secrets.yaml").chmod(0o600)
    original = (lab / "cluster.yaml").read_text()
    args = [
        "run", "scale-out", "-i", str(lab), "--nodes", str(lab / "new-servers.json"),
        "--driver", "sim", "--sim-scale", "0", "--state-dir", str(tmp_path / "state"),
        "-y", "--no-progress",
    ]  # fmt: skip
    code, out, _ = cli(capsys, *args)
    assert code == 0
    assert "add under `nodes:`" in out and "- name: cmp-hdd-12" in out
    assert (lab / "cluster.yaml").read_text() == original  # printed only

    code, out, _ = cli(capsys, *args, "--update-inventory")
    assert code == 0 and "inventory updated: 3 node(s) added" in out
    text = (lab / "cluster.yaml").read_text()
    backups = list(lab.glob("cluster.yaml.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == original
    # every line of the operator's file kept, comments included: the change is an insertion
    ops = difflib.SequenceMatcher(a=original.splitlines(), b=text.splitlines()).get_opcodes()
    assert {op[0] for op in ops} == {"equal", "insert"}
    assert sum(1 for op in ops if op[0] == "insert") == 1
    assert "# The lab cloud" in text and "cmp-hdd-12" in out
    grown = load_inventory(lab)
    assert {"cmp-ssd-8", "cmp-ssd-9", "cmp-hdd-12"} <= {n.name for n in grown.nodes}
    assert grown.node("cmp-hdd-12").role == "ComputeHDD"


# --- the plan of what is left, from random abort points --------------------------------------


def _left_at(plan, done_ids):
    at = {}
    for step in plan.steps:
        if step.id in done_ids:
            for text in step.upgrades:
                service = text.partition("@")[0]
                at[text] = act.expected_release(step, service, service.startswith("ceph"))
    return at


def test_remaining_keeps_what_a_previous_run_left_open():
    cluster = load_inventory(DEMO)
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri", "octopus"))
    everything = _left_at(plan, set(plan.by_id))
    catalog = load_catalog()
    assert remaining(plan, InPlace(at=everything, contracted=_contracts(plan)), catalog) is None
    left = remaining(
        plan,
        InPlace(
            at=everything,
            disabled=frozenset({"cmp-ssd-0"}),
            flags=frozenset({"noout"}),
            contracted=_contracts(plan),
        ),
        catalog,
    )
    assert left is not None
    kept = {s.id for s in left.steps}
    assert kept == {"precheck/cluster", "enable/ssd/batch-1", "health/ssd/batch-1",
                    "ceph/noout-unset", "postcheck/cluster"}  # fmt: skip
    assert not verify(left, cluster, initial=everything)


def _contracts(plan):
    return {
        str(s.param("project")): str(s.param("release"))
        for s in plan.steps
        if act.db_phase(s) and s.param("phase") == "contract"
    }


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_downward_closed_part_done_leaves_a_safe_plan_of_the_rest(data):
    cluster = load_inventory(LAB)
    plan = plan_upgrade(cluster, UpgradeIntent("victoria", "octopus"))
    # a random set of finished steps closed under dependencies: what a stopped run leaves
    done: set[str] = set()
    for step in plan.steps:
        if all(d in done for d in step.depends_on) and data.draw(st.booleans()):
            done.add(step.id)
    at = _left_at(plan, done)
    left = remaining(plan, InPlace(at=at), load_catalog())
    if left is None:
        assert all(s.id in done for s in plan.steps if s.upgrades)
        return
    assert not verify(left, cluster, initial=at)
    for step in left.steps:
        assert not (step.upgrades and step.id in done), step.id


_DEMO_PLAN = plan_upgrade(load_inventory(DEMO), UpgradeIntent("ussuri", "octopus"))
_UPGRADE_STEPS = sorted(s.id for s in _DEMO_PLAN.steps if s.upgrades)


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(stop_at=st.sampled_from(_UPGRADE_STEPS), concurrency=st.sampled_from(["1", "4"]))
def test_an_abort_anywhere_then_what_is_left_upgrades_each_instance_once(
    stop_at, concurrency, tmp_path_factory, capsys, monkeypatch
):
    (DEMO / "secrets.yaml").chmod(0o600)
    root = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(root))
    monkeypatch.setenv("LIFECYCLE_SIM_SCALE", "0")
    monkeypatch.setenv("LIFECYCLE_JOURNAL_SYNC", "NORMAL")
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", f"fail:{stop_at}:99")
    extra = ("--ceph-to", "octopus", "--concurrency", concurrency)
    code, _, _ = upgrade(capsys, *extra)
    assert code == 4
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS")
    assert cli(capsys, "abort", "-y", all_runs(root)[-1].record.id)[0] == 0
    code, _, err = upgrade(capsys, *extra)
    assert code == 0, err
    assert set(upgraded_by_runs(root).values()) == {1}
    assert len(upgraded_by_runs(root)) == len(_left_at(_DEMO_PLAN, set(_DEMO_PLAN.by_id)))
    sim = read_state(root, "demo")
    services = load_catalog().services
    for text, release in sim["versions"].items():
        assert release == ("octopus" if services[text.partition("@")[0]].ceph else "ussuri")
    # maintenance flags cleared; require-osd-release stays set (permanent, set once per hop)
    flags = dict(sim["flags"])
    assert flags.pop(act.REQUIRE_OSD_RELEASE) is True
    assert sim["disabled"] == [] and not any(flags.values())
    json.dumps(sim)  # still a plain document


def test_a_failed_run_overtaken_by_a_new_one_is_not_resumed(state, capsys, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", "fail:upgrade/ssd/batch-1:99")
    assert upgrade(capsys)[0] == 4
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS")
    first = all_runs(state)[-1].record.id
    code, _, err = upgrade(capsys)  # a failed run is finished: a new one plans what it left
    assert code == 0, err
    second = all_runs(state)[-1].record.id
    assert set(upgraded_by_runs(state).values()) == {1}
    code, _, err = cli(capsys, "resume", first)
    assert code == 4 and f"followed by run {second}" in err and f"lifecycle abort {first}" in err


def test_require_osd_release_is_kept_while_an_osd_upgrade_before_it_is_left():
    cluster = load_inventory(DEMO)
    mgr = next(s for s in _DEMO_PLAN.steps if s.upgrades and s.upgrades[0].startswith("ceph-mgr"))
    done = {mgr.id}
    todo = list(mgr.depends_on)
    while todo:
        sid = todo.pop()
        if sid not in done:
            done.add(sid)
            todo.extend(_DEMO_PLAN.by_id[sid].depends_on)
    at = _left_at(_DEMO_PLAN, done)
    left = remaining(_DEMO_PLAN, InPlace(at=at), load_catalog())
    assert left is not None
    required = [s for s in left.steps if s.param("flag") == act.REQUIRE_OSD_RELEASE]
    assert [s.param("release") for s in required] == ["octopus"]
    assert not verify(left, cluster, initial=at)
