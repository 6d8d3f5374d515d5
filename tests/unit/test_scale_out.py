"""The pure scale-out planner: chains per new server, roles from profiles, problems up front."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from lifecycle.errors import PlanningError
from lifecycle.formats.nodes_file import NewNode
from lifecycle.formats.plan_json import plan_to_dict
from lifecycle.formats.profiles import load_profiles
from lifecycle.model import BmcSpec
from lifecycle.planning.scale_out import ScaleOutOptions, grown_cluster, plan_scale_out
from tests.unit.cluster_factory import lab_like

DATA = Path(__file__).resolve().parents[1] / "data" / "inspection"
PROFILES = load_profiles()
CLUSTER = lab_like(computes_hdd=2, computes_ssd=2, ceph=3)


def new(name: str, profile: str | None = None, role: str | None = None) -> NewNode:
    bmc = BmcSpec("redfish", "http://127.0.0.1:8000", f"/redfish/v1/Systems/{name}", name)
    return NewNode(name, bmc, ("52:54:00:00:00:01",), profile, (("cpu_arch", "x86_64"),), role)


def recorded(kind: str) -> dict:
    return json.loads((DATA / f"{kind}.json").read_text())


def chain_of(plan, node: str) -> list[str]:
    return [s.action + (f":{s.param('playbook')}" if s.param("playbook") else "")
            for s in plan.steps if s.nodes == (node,)]  # fmt: skip


def test_a_compute_goes_from_enroll_to_health_through_its_aggregate():
    plan = plan_scale_out(CLUSTER, [new("cmp-ssd-9", profile="compute-ssd")], PROFILES)
    assert chain_of(plan, "cmp-ssd-9") == [
        "baremetal.enroll",
        "baremetal.inspect",
        "baremetal.match_profile",
        "baremetal.provide",
        "baremetal.deploy",
        "ansible.playbook:deploy-node",
        "compute.aggregate_add",
        "checks.health",
    ]
    by_id = plan.by_id
    assert by_id["aggregate/cmp-ssd-9"].param("aggregate") == "ssd"
    assert by_id["deploy-node/cmp-ssd-9"].param("services") == ("nova-compute", "neutron-ovs-agent")
    assert by_id["deploy-node/cmp-ssd-9"].param("release") == "train"
    assert by_id["match/cmp-ssd-9"].param("profile") == "compute-ssd"
    # every step waits for the one before it
    steps = [s for s in plan.steps if s.nodes == ("cmp-ssd-9",)]
    assert all(b.depends_on == (a.id,) for a, b in itertools.pairwise(steps))


def test_servers_are_independent_so_they_run_in_parallel_and_fail_alone():
    nodes = [new(f"cmp-hdd-{i}", profile="compute-hdd") for i in range(5, 9)]
    plan = plan_scale_out(CLUSTER, nodes, PROFILES)
    enrolls = [s for s in plan.steps if s.action == "baremetal.enroll"]
    assert len(enrolls) == 4 and all(not s.depends_on for s in enrolls)
    assert {plan.start_of[s.id] for s in enrolls} == {0.0}
    for s in plan.steps:  # no step depends on another server's step
        assert all(plan.by_id[d].nodes == s.nodes for d in s.depends_on)
    assert plan.makespan == pytest.approx(plan.lower_bound)


def test_the_plan_never_carries_a_password_only_the_credentials_name():
    plan = plan_scale_out(CLUSTER, [new("cmp-ssd-9", profile="compute-ssd")], PROFILES)
    enroll = plan.by_id["enroll/cmp-ssd-9"]
    assert enroll.param("credentials") == "cmp-ssd-9"
    assert not any("password" in k for k, _ in enroll.params)


def test_inspection_data_decides_the_profile_when_given():
    nodes = [new("a"), new("b"), new("c")]
    inspected = {"a": recorded("ssd"), "b": recorded("hdd"), "c": recorded("ceph")}
    plan = plan_scale_out(CLUSTER, nodes, PROFILES, inspected=inspected)
    assert plan.by_id["match/a"].param("profile") == "compute-ssd"
    assert plan.by_id["aggregate/a"].param("aggregate") == "ssd"
    assert plan.by_id["aggregate/b"].param("aggregate") == "hdd"
    assert "aggregate/c" not in plan.by_id  # ceph nodes join no Nova aggregate
    assert plan.by_id["deploy-node/c"].param("services") == ("ceph-osd",)


def test_role_in_the_nodes_file_picks_the_role_profile():
    plan = plan_scale_out(CLUSTER, [new("x", role="ComputeSSD")], PROFILES)
    assert plan.by_id["match/x"].param("profile") == "compute-ssd"


def test_every_problem_is_reported_before_anything_runs():
    nodes = [
        new("small"),  # inspected, matches nothing
        new("liar", profile="compute-ssd"),  # declares SSD, has HDDs
        new("nothing"),  # no hint at all
        new("ctl-0", profile="control"),  # already in the cluster
        new("odd", profile="gpu"),  # unknown profile
    ]
    inspected = {"small": recorded("small"), "liar": recorded("hdd")}
    with pytest.raises(PlanningError) as caught:
        plan_scale_out(CLUSTER, nodes, PROFILES, inspected=inspected)
    text = str(caught.value)
    assert "small: matches no hardware profile" in text and "memory_mb = 2048" in text
    assert "liar: declared profile compute-ssd but the hardware matches compute-hdd" in text
    assert "rotational_disks = 2 (expected at most 0)" in text
    assert "nothing: no profile, role or inspection data" in text
    assert "ctl-0: already a node of cluster lab" in text
    assert "odd: profile gpu is not defined" in text


def test_a_role_short_of_servers_is_reported():
    options = ScaleOutOptions(wanted=(("ComputeSSD", 2),))
    inspected = {"a": recorded("ssd"), "b": recorded("mixed")}
    with pytest.raises(PlanningError, match=r"role ComputeSSD: 2 new server\(s\) wanted, 1 fit"):
        plan_scale_out(
            CLUSTER, [new("a"), new("b")], PROFILES, inspected=inspected, options=options
        )


def test_a_profile_whose_role_is_not_in_the_cluster_is_refused():
    with pytest.raises(PlanningError, match="role Networker of profile networker is not in"):
        cluster = lab_like(networkers=0)
        cluster = cluster.__class__(**{**cluster.__dict__, "roles": tuple(
            r for r in cluster.roles if r.name != "Networker")})  # fmt: skip
        plan_scale_out(cluster, [new("n", profile="networker")], PROFILES)


def test_plan_is_deterministic_and_serialises():
    nodes = [new("a", profile="compute-ssd"), new("b", profile="compute-hdd")]
    options = ScaleOutOptions(image="http://127.0.0.1/boot.iso")
    one = plan_scale_out(CLUSTER, nodes, PROFILES, options=options)
    two = plan_scale_out(CLUSTER, nodes, PROFILES, options=options)
    assert one.digest == two.digest
    body = plan_to_dict(one)
    assert body["operation"] == "scale-out"
    assert body["steps"][0]["action"].startswith("baremetal.")
    assert one.by_id["deploy/a"].param("image") == "http://127.0.0.1/boot.iso"


def test_grown_cluster_adds_the_new_servers_to_their_roles():
    grown = grown_cluster(CLUSTER, [new("cmp-ssd-9", profile="compute-ssd")], PROFILES)
    assert grown.node("cmp-ssd-9").role == "ComputeSSD"
    assert grown.aggregate_of(grown.node("cmp-ssd-9")) == "ssd"
    assert len(grown.nodes) == len(CLUSTER.nodes) + 1
