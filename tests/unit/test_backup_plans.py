"""Backup and recover plans: what they do, in which order, on which members; both verify safe."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lifecycle.errors import PlanningError
from lifecycle.model.backup import BackupFile, GaleraPosition, Manifest
from lifecycle.model.cluster import BmcSpec
from lifecycle.model.observed import (
    NOT_RUNNING,
    UNREACHABLE,
    GaleraMember,
    InstanceObservation,
    NodeObservation,
    ObservedState,
    StoreObservation,
)
from lifecycle.planning import actions as act
from lifecycle.planning.backup import BackupIntent, galera_donor, plan_backup
from lifecycle.planning.recover import RecoverIntent, plan_recover
from lifecycle.planning.verifier import verify
from tests.unit.cluster_factory import lab_like

UUID = "6f4c1f2e-0000-11ee-8000-000000000001"
CLUSTER = lab_like(computes_hdd=2, computes_ssd=1, ceph=3, networkers=1)
MANIFEST = Manifest(
    "lab-b1",
    "lab",
    "2026-11-29T00:00:00Z",
    (
        BackupFile("galera/ctl-2/ibdata1", 1, "0" * 64, "galera"),
        BackupFile("rabbitmq/definitions.json", 1, "0" * 64, "rabbitmq"),
        BackupFile("keys/fernet-keys/0", 1, "0" * 64, "keys"),
    ),
    GaleraPosition(UUID, 40, "ctl-2"),
)


def playbooks(plan) -> list[tuple[str, str | None]]:
    return [(s.id, act.playbook(s)) for s in plan.steps]


# --- backup ----------------------------------------------------------------------------------


def test_backup_plan_takes_each_part_once_and_verifies() -> None:
    plan = plan_backup(CLUSTER, BackupIntent("lab-b1", "/srv/backups", "/inv/cluster.yaml"))
    assert verify(plan, CLUSTER) == []
    names = {act.playbook(s) for s in plan.steps} - {None}
    assert names == {"backup-galera", "backup-rabbitmq", "backup-keys", "backup-config"}
    galera = [s for s in plan.steps if act.playbook(s) == "backup-galera"]
    assert len(galera) == 1 and len(galera[0].nodes) == 1  # ONE member
    assert galera[0].param("dest") == "/srv/backups/lab-b1"
    manifest = plan.steps[-1]
    assert manifest.action == "backup.manifest"
    assert set(manifest.depends_on) == {s.id for s in plan.steps[:-1]}
    assert all(not s.disrupts for s in plan.steps)


def test_the_backup_member_is_synced_and_never_one_observed_down() -> None:
    # no observation: the last member (HAProxy's writer is the first)
    assert galera_donor(CLUSTER, None) == "ctl-2"
    observed = ObservedState(
        "lab",
        "sim",
        nodes=(NodeObservation("ctl-2", UNREACHABLE),),
        instances=(InstanceObservation("galera", "ctl-1", NOT_RUNNING),),
        galera=(
            GaleraMember("ctl-0", state="Synced"),
            GaleraMember("ctl-1", state="Synced"),  # says Synced, but observed not running
            GaleraMember("ctl-2", state="Synced"),  # unreachable
        ),
    )
    assert galera_donor(CLUSTER, observed) == "ctl-0"
    donor_state = ObservedState(
        "lab", "sim", galera=(GaleraMember("ctl-1", state="Donor/Desynced"),)
    )
    assert galera_donor(CLUSTER, donor_state) == "ctl-2"  # ctl-1 is not Synced
    down = ObservedState(
        "lab",
        "sim",
        nodes=tuple(NodeObservation(m, UNREACHABLE) for m in ("ctl-0", "ctl-1", "ctl-2")),
    )
    with pytest.raises(PlanningError, match="no galera member is up"):
        galera_donor(CLUSTER, down)


# --- recover ---------------------------------------------------------------------------------


def crashed(*members: GaleraMember, down: tuple[str, ...] = ()) -> ObservedState:
    return ObservedState(
        "lab",
        "sim",
        nodes=tuple(NodeObservation(n, UNREACHABLE) for n in down),
        stores=(
            StoreObservation("galera", quorum=False, health="down"),
            StoreObservation("rabbitmq", health="down"),
        ),
        galera=members,
    )


def survivors() -> ObservedState:
    return crashed(
        GaleraMember("ctl-0", UUID, -1, recovered=10),
        GaleraMember("ctl-1", UUID, -1, recovered=30),
        GaleraMember("ctl-2", UUID, -1, recovered=20),
    )


def test_recover_from_a_survivor_fences_bootstraps_the_highest_and_joins_one_at_a_time() -> None:
    plan, choice = plan_recover(CLUSTER, survivors(), RecoverIntent())
    assert verify(plan, CLUSTER) == []
    ids = [s.id for s in plan.steps]
    assert ids[0] == "recover/fence"
    assert plan.steps[0].param("state") == "maint"
    assert choice.node == "ctl-1"
    galera = [i for i in ids if i.startswith("recover/galera/")]
    assert galera == [
        "recover/galera/positions",
        "recover/galera/bootstrap/ctl-1",
        "recover/galera/health/ctl-1",
        "recover/galera/join/ctl-0",
        "recover/galera/health/ctl-0",
        "recover/galera/join/ctl-2",
        "recover/galera/health/ctl-2",
    ]
    assert plan.step("recover/galera/positions").param("seqno") == 30
    # each join waits for the health gate of the member before it: a chain, never in parallel
    for earlier, later in zip(plan.steps, plan.steps[1:], strict=False):
        assert earlier.id in later.depends_on
    # the bootstrap gate counts one member; the others are not joined yet
    assert plan.step("recover/galera/health/ctl-1").param(act.PLANNED_AROUND) == ("ctl-0", "ctl-2")
    assert ids.index("recover/unfence") > ids.index("recover/galera/health/ctl-2")
    assert ids[-1] == "recover/data-check"
    assert "galera-restore" not in {act.playbook(s) for s in plan.steps}
    assert dict(plan.extra)["galera_source"] == "survivor"


def test_recover_with_no_data_restores_the_backup_then_rebuilds_rabbitmq_and_keys() -> None:
    empty = crashed(*(GaleraMember(m, has_data=False) for m in ("ctl-0", "ctl-1", "ctl-2")))
    intent = RecoverIntent(MANIFEST, "/srv/backups/lab-b1")
    plan, choice = plan_recover(CLUSTER, empty, intent)
    assert verify(plan, CLUSTER) == []
    ids = [s.id for s in plan.steps]
    restore = plan.step("recover/galera/restore/ctl-0")
    assert restore.param("backup_dir") == "/srv/backups/lab-b1"
    assert restore.param("member") == "ctl-2"
    assert ids.index("recover/galera/restore/ctl-0") < ids.index("recover/galera/bootstrap/ctl-0")
    assert plan.step("recover/galera/positions").param("seqno") == -1
    assert "recover/rabbitmq/reset" in ids and "recover/rabbitmq/definitions" in ids
    assert ids.index("recover/rabbitmq/reset") < ids.index("recover/rabbitmq/bootstrap/ctl-0")
    assert act.playbook(plan.step("recover/keystone/keys")) == "restore-keys"
    assert ids.index("recover/keystone/keys") < ids.index("recover/unfence")
    assert dict(plan.extra)["backup_id"] == "lab-b1"
    assert choice.seqno == 40


def test_an_unreachable_node_is_planned_around_once_forced() -> None:
    observed = crashed(
        GaleraMember("ctl-0", UUID, -1, recovered=10),
        GaleraMember("ctl-1", UUID, -1, recovered=30),
        down=("ctl-2",),
    )
    plan, choice = plan_recover(CLUSTER, observed, RecoverIntent(bootstrap="ctl-1"))
    assert verify(plan, CLUSTER) == []
    assert all("ctl-2" not in s.nodes for s in plan.steps)
    assert "ctl-2" in dict(plan.extra)["planned_around"]
    assert plan.step("recover/galera/positions").param("forced") is True
    assert choice.overridden


def test_a_cluster_with_a_primary_component_only_rejoins_its_missing_member() -> None:
    observed = ObservedState(
        "lab",
        "sim",
        instances=(InstanceObservation("galera", "ctl-2", NOT_RUNNING),),
        stores=(
            StoreObservation("galera", ("ctl-0", "ctl-1"), 2, True, "degraded"),
            StoreObservation("rabbitmq", ("ctl-0", "ctl-1", "ctl-2"), 3, True, "healthy"),
        ),
    )
    plan, _ = plan_recover(CLUSTER, observed, RecoverIntent())
    assert verify(plan, CLUSTER) == []
    playbook_ids = [i for i, p in playbooks(plan) if p]
    assert playbook_ids == ["recover/galera/join/ctl-2", "recover/data-check"]


# --- recover: lost servers rebuilt through Ironic (issue 13) -----------------------------------


def with_bmc(cluster, *names: str):  # type: ignore[no-untyped-def]
    bmc = BmcSpec("redfish", "https://bmc.example", credentials="bmc")
    nodes = tuple(replace(n, bmc=bmc) if n.name in names else n for n in cluster.nodes)
    return replace(cluster, nodes=nodes)


def test_a_lost_controller_with_a_bmc_is_rebuilt_through_ironic_and_rejoins_one_store_at_a_time():
    cluster = with_bmc(CLUSTER, "ctl-2")
    observed = crashed(
        GaleraMember("ctl-0", UUID, -1, recovered=10),
        GaleraMember("ctl-1", UUID, -1, recovered=30),
        down=("ctl-2",),
    )
    intent = RecoverIntent(bootstrap="ctl-1", image="http://images/overcloud.qcow2")
    plan, _ = plan_recover(cluster, observed, intent)
    assert verify(plan, cluster) == []
    ids = [s.id for s in plan.steps]
    # the stores come back first, from the survivors; then ctl-2 is rebuilt and joins them
    rebuilt = ids.index("recover/unprovision/ctl-2")
    assert rebuilt > ids.index("recover/data-check")
    assert all("ctl-2" not in s.nodes for s in plan.steps[:rebuilt])
    undeploy, deploy = (
        plan.step("recover/unprovision/ctl-2"),
        plan.step("recover/reprovision/ctl-2"),
    )
    assert (undeploy.action, deploy.action) == ("baremetal.undeploy", "baremetal.deploy")
    assert deploy.param("image") == "http://images/overcloud.qcow2"
    assert undeploy.param("node_down") is True
    assert ids.index("recover/reprovision/ctl-2") < ids.index("recover/deploy-secrets/ctl-2")
    assert plan.step("recover/keystone-keys/ctl-2").param("source") in ("ctl-0", "ctl-1")
    galera = plan.step("recover/deploy/galera/ctl-2")
    assert (galera.param("phase"), act.playbook(galera)) == ("join", "deploy-service")
    assert plan.step("recover/deploy/keystone/ctl-2").param("phase") == "start"
    # each join gated before the next service: Galera Synced before RabbitMQ joins
    assert (
        ids.index("recover/deploy/galera/ctl-2")
        < ids.index("recover/galera/health/ctl-2")
        < ids.index("recover/deploy/rabbitmq/ctl-2")
        < ids.index("recover/rabbitmq/health/ctl-2")
    )
    assert ids[-1] == "recover/health/ctl-2"
    extra = dict(plan.extra)
    assert extra["reprovisioned"] == ("ctl-2",)
    assert "planned_around" not in extra


def test_a_lost_node_without_a_bmc_stays_planned_around_beside_one_rebuilt():
    cluster = with_bmc(CLUSTER, "cmp-ssd-0")
    observed = ObservedState(
        "lab",
        "sim",
        nodes=(
            NodeObservation("cmp-ssd-0", UNREACHABLE),
            NodeObservation("cmp-hdd-0", UNREACHABLE),
        ),
        stores=(
            StoreObservation("galera", ("ctl-0", "ctl-1", "ctl-2"), 3, True, "healthy"),
            StoreObservation("rabbitmq", ("ctl-0", "ctl-1", "ctl-2"), 3, True, "healthy"),
        ),
    )
    plan, _ = plan_recover(cluster, observed, RecoverIntent())
    assert verify(plan, cluster) == []
    rebuilt = [s for s in plan.steps if "cmp-ssd-0" in s.nodes]
    assert [s.id for s in rebuilt] == [
        "recover/unprovision/cmp-ssd-0",
        "recover/reprovision/cmp-ssd-0",
        "recover/deploy/neutron-ovs-agent/cmp-ssd-0",  # the catalog's dependency order
        "recover/deploy/nova-compute/cmp-ssd-0",
        "recover/health/cmp-ssd-0",
    ]
    assert "image" not in plan.step("recover/reprovision/cmp-ssd-0").param_dict  # the driver's
    assert {s.param("phase") for s in rebuilt if act.playbook(s)} == {"start"}
    assert plan.step("recover/health/cmp-ssd-0").param(act.PLANNED_AROUND) == ("cmp-hdd-0",)
    assert all("cmp-hdd-0" not in s.nodes for s in plan.steps)
    extra = dict(plan.extra)
    assert extra["reprovisioned"] == ("cmp-ssd-0",)
    assert extra["planned_around"] == ("cmp-hdd-0",)
