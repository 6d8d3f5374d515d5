"""Node replacement and removal: plan shapes per role, refusals, the membership verifier rules."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from lifecycle.errors import UnsafePlan
from lifecycle.formats.inventory import load_inventory
from lifecycle.model.observed import (
    NOT_RUNNING,
    REACHABLE,
    UNREACHABLE,
    ComputeObservation,
    InstanceObservation,
    NodeObservation,
    ObservedState,
)
from lifecycle.planning import actions as act
from lifecycle.planning.ordering import Order
from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.replace import (
    MEMBERS_DOWN,
    ReplaceIntent,
    Replacement,
    plan_replace,
    replaced_cluster,
)
from lifecycle.planning.verifier import verify
from tests.unit import plan_surgery as surgery

ROOT = Path(__file__).resolve().parents[2]
LAB = load_inventory(ROOT / "inventories" / "lab")


def _plan(node: str, new: str | None = None, **kw: object) -> Plan:
    replacement = Replacement(new, address="198.18.9.9") if new else Replacement(node)
    return plan_replace(LAB, ReplaceIntent(node, replacement), **kw)  # type: ignore[arg-type]


def _violations(plan: Plan) -> list[str]:
    return [str(v) for v in verify(plan, replaced_cluster(LAB, plan))]


def _before(plan: Plan, a: str, b: str) -> bool:
    return Order(plan).before(a, b)


def _observed(
    down: tuple[str, ...] = (), stopped: tuple[str, ...] = (), empty: tuple[str, ...] = ()
) -> ObservedState:
    return ObservedState(
        cluster="lab",
        driver="test",
        nodes=tuple(
            NodeObservation(n.name, UNREACHABLE if n.name in down else REACHABLE) for n in LAB.nodes
        ),
        instances=tuple(InstanceObservation(s, n, NOT_RUNNING) for s, n in stopped),
        computes=tuple(ComputeObservation(n, True, True, 0) for n in empty),
    )


# --- shapes ---------------------------------------------------------------------------------------


def test_controller_replacement_keeps_every_store_whole_in_order() -> None:
    plan = _plan("ctl-1", "ctl-9")
    assert _violations(plan) == []
    ids = plan.by_id
    # drained in every live HAProxy before its services stop, put back only after its gates
    assert ids["haproxy-maint/galera/ctl-1"].nodes == ("ctl-0", "ctl-2")
    assert _before(plan, "haproxy-maint/keystone/ctl-1", "stop/ctl-1")
    assert _before(plan, "health/ctl-9", "haproxy-ready/keystone/ctl-9")
    assert ids["haproxy-ready/galera/ctl-9"].param("state") == "ready"
    # members removed after the stop; RabbitMQ forgets before the new node joins
    assert _before(plan, "stop/ctl-1", "remove/rabbitmq/ctl-1")
    assert ids["remove/rabbitmq/ctl-1"].param("playbook") == "rabbitmq-forget"
    assert _before(plan, "remove/rabbitmq/ctl-1", "deploy/rabbitmq/ctl-9")
    assert ids["remove/galera/ctl-1"].nodes == ("ctl-0", "ctl-2")  # every member rewrites
    # the mon leaves only after the new one joined (3 mons would otherwise drop to 2)
    assert _before(plan, "health/ceph-mon/ctl-9", "remove/ceph-mon/ctl-1")
    # each store joined one member at a time, each join gated before the next deploy
    assert ids["deploy/galera/ctl-9"].param("phase") == "join"
    assert _before(plan, "health/galera/ctl-9", "deploy/rabbitmq/ctl-9")
    assert ids["health/galera/ctl-9"].nodes == ("ctl-0", "ctl-2", "ctl-9")
    # keys from a live member; the secrets too
    assert ids["keystone-keys/ctl-9"].param("source") == "ctl-0"
    assert ids["deploy-secrets/ctl-9"].param("bootstrap") == "ctl-0"
    assert ids["cleanup-records/ctl-1"].param("node") == "ctl-1"
    assert ids["unprovision/ctl-1"].action == "baremetal.undeploy"
    # checks leave out who is no member at their moment: the replacement before it is
    # deployed, the old node once it is gone (the testbed's gates count members)
    assert act.planned_around(ids["precondition/galera/ctl-1"]) == ("ctl-9",)
    assert act.planned_around(ids["health/galera/ctl-9"]) == ("ctl-1",)
    assert act.planned_around(ids["postcheck/replace/ctl-1"]) == ("ctl-1",)


def test_a_dead_controller_is_not_stopped_and_its_mon_is_rebuilt_in_place() -> None:
    plan = plan_replace(
        LAB, ReplaceIntent("ctl-1", Replacement("ctl-1")), observed=_observed(down=("ctl-1",))
    )
    assert "stop/ctl-1" not in plan.by_id
    assert dict(plan.extra)[MEMBERS_DOWN] == ("ctl-1",)
    # a rebuild keeps the mon's name and monmap entry: no removal, a join that syncs
    assert "remove/ceph-mon/ctl-1" not in plan.by_id
    assert plan.by_id["deploy/ceph-mon/ctl-1"].param("phase") == "join"
    assert plan.by_id["reprovision/ctl-1"].param("node_down") is True
    assert _violations(plan) == []


def test_compute_replacement_empties_deletes_and_rejoins_its_aggregate() -> None:
    plan = _plan("cmp-ssd-1")
    assert _violations(plan) == []
    chain = [
        "evacuate/cmp-ssd-1",
        "verify-empty/cmp-ssd-1",
        "stop/cmp-ssd-1",
        "delete-service/cmp-ssd-1",
        "unprovision/cmp-ssd-1",
        "deploy/nova-compute/cmp-ssd-1",
        "aggregate/cmp-ssd-1",
        "enable/cmp-ssd-1",
    ]
    assert all(_before(plan, a, b) for a, b in pairwise(chain))
    assert plan.by_id["evacuate/cmp-ssd-1"].param("mode") == "live-migrate"
    assert plan.by_id["aggregate/cmp-ssd-1"].param("aggregate") == "ssd"
    # the replacement starts empty: the testbed's deploy-service seeds no instance on it
    assert plan.by_id["deploy/nova-compute/cmp-ssd-1"].param("replaces") == "cmp-ssd-1"


def test_a_dead_compute_is_evacuated_through_nova_not_live_migrated() -> None:
    plan = plan_replace(
        LAB,
        ReplaceIntent("cmp-ssd-1", Replacement("cmp-ssd-1")),
        observed=_observed(("cmp-ssd-1",)),
    )
    step = plan.by_id["evacuate/cmp-ssd-1"]
    assert step.param("mode") == "evacuate" and step.param("node_down") is True
    assert "stop/cmp-ssd-1" not in plan.by_id


def test_an_empty_compute_is_not_evacuated() -> None:
    plan = plan_replace(LAB, ReplaceIntent("cmp-hdd-2"), observed=_observed(empty=("cmp-hdd-2",)))
    assert "evacuate/cmp-hdd-2" not in plan.by_id
    assert plan.operation == "remove" and "deploy/nova-compute/cmp-hdd-2" not in plan.by_id


def test_osd_host_replacement_moves_data_and_reuses_ids_without_noout() -> None:
    plan = _plan("ceph-1")
    assert _violations(plan) == []
    chain = [
        "osd-out/ceph-1",
        "safe-to-destroy/ceph-1",
        "stop/ceph-1",
        "osd-destroy/ceph-1",
        "host-remove/ceph-1",
        "deploy/ceph-osd/ceph-1",
        "active-clean/ceph-1",
    ]
    assert all(_before(plan, a, b) for a, b in pairwise(chain))
    assert plan.by_id["deploy/ceph-osd/ceph-1"].param("reuse_ids_of") == "ceph-1"
    assert not any(act.is_noout(s, "set") for s in plan.steps)
    assert any("nearfull" in str(a) for a in dict(plan.extra)["assumptions"])  # type: ignore[union-attr]


def test_a_replacement_from_the_nodes_file_reuses_the_scale_out_provisioning() -> None:
    from lifecycle.formats.nodes_file import load_nodes_file
    from lifecycle.formats.profiles import load_profiles

    (ROOT / "inventories/lab/new-servers.json").chmod(0o600)
    servers, _ = load_nodes_file(ROOT / "inventories/lab/new-servers.json")
    server = next(s for s in servers if s.name == "cmp-ssd-8")
    plan = plan_replace(
        LAB,
        ReplaceIntent("cmp-ssd-1", Replacement("cmp-ssd-8", server=server)),
        profiles=load_profiles(None),
    )
    verbs = [s.action for s in plan.steps if s.action.startswith("baremetal.")]
    assert verbs == [
        "baremetal.undeploy",
        "baremetal.enroll",
        "baremetal.inspect",
        "baremetal.match_profile",
        "baremetal.provide",
        "baremetal.deploy",
    ] or sorted(verbs) == sorted(
        [
            "baremetal.undeploy",
            "baremetal.enroll",
            "baremetal.inspect",
            "baremetal.match_profile",
            "baremetal.provide",
            "baremetal.deploy",
        ]
    )
    assert plan.by_id["enroll/cmp-ssd-8"].depends_on == ("precheck/replace/cmp-ssd-1",)
    assert _before(plan, "deploy/cmp-ssd-8", "deploy/nova-compute/cmp-ssd-8")
    assert _violations(plan) == []


# --- refusals -------------------------------------------------------------------------------------


def test_removing_one_of_three_controllers_is_refused_naming_node_and_rule() -> None:
    with pytest.raises(UnsafePlan) as caught:
        plan_replace(LAB, ReplaceIntent("ctl-1"))
    text = str(caught.value)
    assert caught.value.exit_code == 3
    assert "quorum: galera: removing ctl-1 leaves 2 member(s)" in text
    forced = plan_replace(LAB, ReplaceIntent("ctl-1"), force=True)
    # forced: the mon count rule still names the removal
    assert any("ceph:" in v and "remove/ceph-mon/ctl-1" in v for v in _violations(forced))


def test_replacing_while_another_galera_member_is_down_is_refused() -> None:
    observed = _observed(stopped=(("galera", "ctl-2"),))
    with pytest.raises(UnsafePlan) as caught:
        plan_replace(LAB, ReplaceIntent("ctl-1", Replacement("ctl-1")), observed=observed)
    text = str(caught.value)
    assert "membership: galera: ctl-2 (not running) down" in text and "ctl-1" in text


def test_an_unreachable_peer_refuses_too() -> None:
    with pytest.raises(UnsafePlan, match="membership: rabbitmq: ctl-0 \\(unreachable\\)"):
        plan_replace(
            LAB, ReplaceIntent("ctl-1", Replacement("ctl-1")), observed=_observed(("ctl-0",))
        )


# --- the verifier's membership rules on surgically broken plans ---------------------------------


def test_a_mon_removal_before_the_new_mon_joined_names_both_steps() -> None:
    plan = surgery.rebuild(
        _plan("ctl-1", "ctl-9"), surgery.rewire("remove/ceph-mon/ctl-1", "stop/ctl-1")
    )
    found = [v for v in _violations(plan) if v.split()[1] == "ceph:"]
    assert found and "remove/ceph-mon/ctl-1" in found[0] and "deploy/ceph-mon/ctl-9" in found[0]


def _stop_ctl2(steps: list[Step]) -> list[Step]:
    extra = Step(
        id="stop/ctl-2",
        action=act.PLAYBOOK,
        phase="replace",
        nodes=("ctl-2",),
        disrupts=("galera@ctl-2",),
        depends_on=("precheck/replace/ctl-1",),
        duration=60.0,
        params=(("playbook", "stop-service"),),
    )
    return [*steps, extra]


def test_a_removal_while_another_member_is_stopped_names_both_steps() -> None:
    plan = surgery.rebuild(_plan("ctl-1", "ctl-9"), _stop_ctl2)
    found = _violations(plan)
    membership = [v for v in found if " membership: " in v]
    assert membership and "remove/galera/ctl-1" in membership[0] and "stop/ctl-2" in membership[0]
    assert any(" quorum: galera has 1 of 3" in v for v in found)


def test_a_removal_while_a_member_is_observed_down_is_caught() -> None:
    plan = _plan("ctl-1", "ctl-9")
    extra = (*plan.extra, (MEMBERS_DOWN, ("ctl-2",)))
    broken = surgery.rebuild(plan)
    broken = Plan(
        broken.operation, broken.cluster, broken.source, broken.target, broken.steps,
        broken.starts, broken.lower_bound, broken.inventory_digest, extra,
    )  # fmt: skip
    found = [v for v in _violations(broken) if " membership: " in v]
    assert found and "ctl-2 (observed down)" in found[0]


def test_noout_in_a_replacement_is_refused() -> None:
    plan = _plan("ceph-1")
    flag = Step(
        id="noout/ceph-1",
        action=act.PLAYBOOK,
        phase="replace",
        nodes=("ctl-0",),
        depends_on=("precheck/replace/ceph-1",),
        params=(("flag", "noout"), ("playbook", "ceph-flag"), ("state", "set")),
    )
    broken = surgery.rebuild(plan, lambda steps: [*steps, flag])
    assert any("noout/ceph-1 sets noout in a replace" in v for v in _violations(broken))


def test_upgrade_plans_are_left_to_the_other_rules() -> None:
    from lifecycle.catalog import load_catalog
    from lifecycle.planning.membership import check_membership
    from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade

    plan = plan_upgrade(LAB, UpgradeIntent("ussuri"))
    assert check_membership(plan, LAB, load_catalog()) == []


def test_every_playbook_a_replacement_names_is_on_the_testbed() -> None:
    from lifecycle.drivers.ansible import PLAYBOOKS, VERB_PLAYBOOKS

    named = set()
    for node in ("ctl-1", "cmp-ssd-1", "ceph-1", "net-1"):
        for step in _plan(node, "new-0").steps:
            if step.action == act.PLAYBOOK:
                named.add(str(step.param("playbook")))
            elif step.action.startswith("compute."):
                named.add(VERB_PLAYBOOKS.get(step.action, step.action))
    # deploy-secrets and keystone-keys: the contract's, written by the infra and keystone work
    assert named - PLAYBOOKS <= {"deploy-secrets", "keystone-keys"}
