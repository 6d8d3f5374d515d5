"""What can be known before the run is said before the run (issue 9, item 7): preflight findings
from the inventory alone, printed by `validate` and `plan`, refusals exit 3 unless --force."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lifecycle.cli.main import main
from lifecycle.errors import PreflightRefused, UnsafePlan
from lifecycle.formats.inventory import load_inventory
from lifecycle.model import Cluster, MaxUnavailable, NodeSpec, Policies, RoleSpec
from lifecycle.model.cluster import Evacuate
from lifecycle.planning.preflight import Finding, Severity, preflight, refusals
from tests.unit.cluster_factory import lab_like
from tests.unit.field_cases import ROOT, case_dir


def by_subject(findings: list[Finding]) -> dict[str, Finding]:
    return {f.subject: f for f in findings}


# --- pure ------------------------------------------------------------------------------------


def test_a_healthy_lab_has_no_finding() -> None:
    assert preflight(lab_like()) == []
    assert preflight(load_inventory(ROOT / "inventories" / "lab")) == []


def test_findings_are_frozen_and_say_what_to_do() -> None:
    finding = preflight(lab_like(controllers=2))[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.severity = Severity.WARNING  # type: ignore[misc]
    assert finding.remedy and finding.remedy in str(finding)


def test_a_single_controller_is_refused_the_control_plane_goes_down() -> None:
    found = by_subject(preflight(lab_like(controllers=1)))
    for store in ("galera", "rabbitmq", "ceph-mon"):
        assert found[store].severity is Severity.REFUSAL
    assert "control plane" in found["galera"].message
    assert "--force" in found["galera"].remedy


def test_two_member_stores_are_refused_for_an_upgrade_that_restarts_them() -> None:
    cluster = lab_like(controllers=2)
    found = by_subject(preflight(cluster, ceph=False))
    assert found["galera"].severity is Severity.REFUSAL
    assert "tolerates no member down" in found["galera"].message
    assert found["ceph-mon"].severity is Severity.WARNING  # Ceph is not upgraded this time
    assert "garbd" in found["galera"].remedy
    scale_out = preflight(cluster, operation="scale-out")
    assert scale_out and refusals(scale_out) == []  # a scale-out restarts no member


@pytest.mark.parametrize("controllers", [4, 6])
def test_even_sized_stores_are_warned_about(controllers: int) -> None:
    found = preflight(lab_like(controllers=controllers))
    assert {f.subject for f in found} == {"galera", "rabbitmq", "ceph-mon"}
    assert all(f.severity is Severity.WARNING for f in found)
    assert f"{controllers - 1} or {controllers + 1}" in found[0].remedy


def _evac(aggregates: dict[str, tuple[int, MaxUnavailable]], evacuate: Evacuate) -> Cluster:
    roles = [RoleSpec("Controller", ("galera", "keystone"))]
    nodes = [NodeSpec(f"ctl-{i}", "Controller") for i in range(3)]
    for name, (count, _) in aggregates.items():
        roles.append(RoleSpec(f"C{name}", ("nova-compute",), aggregate=name))
        nodes += [NodeSpec(f"{name}-{i}", f"C{name}") for i in range(count)]
    policies = Policies(
        aggregate_max_unavailable=tuple((n, m) for n, (_, m) in aggregates.items()),
        evacuate=evacuate,
    )
    return Cluster("evac", "train", tuple(roles), tuple(nodes), policies)


def test_a_one_host_aggregate_has_no_migration_target() -> None:
    cluster = _evac({"gpu": (1, MaxUnavailable(1))}, Evacuate.LIVE_MIGRATE)
    (finding,) = preflight(cluster)
    assert finding.severity is Severity.REFUSAL and finding.subject == "aggregate gpu"
    assert "evacuate/gpu/batch-1" in finding.message
    assert preflight(_evac({"gpu": (1, MaxUnavailable(1))}, Evacuate.NONE)) == []


def test_all_hosts_at_once_leaves_too_few_targets() -> None:
    cluster = _evac({"ssd": (4, MaxUnavailable(None, 100.0))}, Evacuate.COLD_MIGRATE)
    (finding,) = preflight(cluster)
    assert finding.severity is Severity.WARNING
    assert "3 of its 4 hosts" in finding.message and "1 host(s) left" in finding.message
    assert preflight(_evac({"ssd": (4, MaxUnavailable(2))}, Evacuate.LIVE_MIGRATE)) == []


def test_every_host_in_one_batch_is_refused() -> None:
    cluster = _evac({"ssd": (2, MaxUnavailable(None, 100.0))}, Evacuate.LIVE_MIGRATE)
    cluster = dataclasses.replace(cluster, policies=dataclasses.replace(cluster.policies, canary=2))
    assert [f.subject for f in refusals(preflight(cluster))] == ["aggregate ssd"]


def test_preflight_refused_is_an_unsafe_plan_exit_3() -> None:
    error = PreflightRefused(refusals(preflight(lab_like(controllers=1))))
    assert isinstance(error, UnsafePlan) and error.exit_code == 3
    assert "galera" in str(error) and "--force" in str(error)


# --- the field cases through the CLI -----------------------------------------------------------


def test_evacuation_target_validate_and_plan(tmp_path: Path, capsys) -> None:
    case = str(case_dir("evacuation-target", tmp_path))
    assert main(["validate", "-i", case]) == 0
    out = capsys.readouterr().out
    assert "refusal: aggregate gpu: live-migrate has no target" in out
    assert "warning: aggregate ssd: max_unavailable 100%" in out
    assert main(["plan", "upgrade", "-i", case, "--to", "ussuri"]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before any plan is printed
    assert "aggregate gpu" in captured.err and "aggregate ssd" in captured.err
    assert main(["plan", "upgrade", "-i", case, "--to", "ussuri", "--force"]) == 0
    captured = capsys.readouterr()
    assert "--force overrides: aggregate gpu" in captured.err
    assert "evacuate/gpu/batch-1" in captured.out


def test_two_controllers_validate_says_what_to_do(tmp_path: Path, capsys) -> None:
    case = str(case_dir("two-controllers", tmp_path))
    assert main(["validate", "-i", case]) == 0
    out = capsys.readouterr().out
    assert "ok: 0 warning(s)" not in out
    for store in ("galera", "rabbitmq", "ceph-mon"):
        assert f"{store}: 2 members (ctl-0, ctl-1)" in out
    assert "add a third member" in out
    assert main(["plan", "upgrade", "-i", case, "--to", "ussuri"]) == 3
    assert "refused before planning" in capsys.readouterr().err


def test_single_controller_needs_force_and_the_override_is_said(tmp_path: Path, capsys) -> None:
    (tmp_path / "cluster.yaml").write_text(
        "cluster: one\nrelease: train\nroles:\n"
        "  Controller: {services: [haproxy, galera, rabbitmq, keystone, nova-conductor]}\n"
        "  Compute: {services: [nova-compute], aggregate: a}\n"
        "nodes:\n  - {name: ctl-0, role: Controller}\n"
        "  - {name: c-0, role: Compute}\n  - {name: c-1, role: Compute}\n"
    )
    inventory = str(tmp_path)
    assert main(["plan", "upgrade", "-i", inventory, "--to", "ussuri"]) == 3
    err = capsys.readouterr().err
    assert "galera: one member (ctl-0)" in err and "control plane" in err
    assert main(["plan", "upgrade", "-i", inventory, "--to", "ussuri", "--force"]) == 0
    assert "--force overrides: galera: one member" in capsys.readouterr().err
    state = str(tmp_path / "state")
    run = ["run", "upgrade", "-i", inventory, "--to", "ussuri", "-y", "--state-dir", state]
    run += ["--driver", "sim"]
    assert main(run) == 3


def test_scale_out_with_a_fourth_controller_warns_before_the_plan(tmp_path: Path, capsys) -> None:
    lab = case_dir("scale-out-mixed", tmp_path).parent / "lab"
    nodes = str(tmp_path / "scale-out-mixed" / "nodes.yaml")
    assert main(["plan", "scale-out", "-i", str(lab), "--nodes", nodes, "-f", "json"]) == 0
    captured = capsys.readouterr()
    assert "galera: 4 members (ctl-0, ctl-1, ctl-2, ctl-33)" in captured.err
    assert "keep an odd number of galera members (3 or 5)" in captured.err
    assert captured.out.startswith("{")  # the JSON plan on stdout stays JSON


def test_an_ovn_cloud_whose_chassis_name_the_ovs_agent_is_warned(tmp_path: Path, capsys) -> None:
    """cases/ovn-order: the OVN order needs ovn-controller on the chassis; an inventory that
    names ML2/OVS's agent (TripleO's OVNController mapped to it before) is told so."""
    case = case_dir("ovn-order", tmp_path)
    assert main(["validate", "-i", case]) == 0
    out = capsys.readouterr().out
    assert "warning: neutron-ovs-agent: the cloud runs the OVN databases" in out
    assert "list ovn-controller (TripleO's OVNController)" in out
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    text = (Path(case) / "cluster.yaml").read_text()
    (fixed / "cluster.yaml").write_text(text.replace("neutron-ovs-agent,", "ovn-controller,"))
    assert main(["validate", "-i", str(fixed)]) == 0
    assert "neutron-ovs-agent" not in capsys.readouterr().out
