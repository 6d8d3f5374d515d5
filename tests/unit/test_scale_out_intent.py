"""The scale-out entry points the CLI's run and plan commands call: everything from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.cli.main import main
from lifecycle.cli.nodes_cmds import scale_out_cluster, scale_out_planner, scale_out_secrets
from lifecycle.errors import InputError
from lifecycle.formats.inventory import load_inventory

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "data" / "demo-train"
NODES = """\
- name: cmp-ssd-2
  pm_type: redfish
  pm_addr: http://127.0.0.1:8000
  pm_user: admin
  pm_password: Sekret-ssd-2-77
  pm_system_id: /redfish/v1/Systems/cmp-ssd-2
  mac: ["52:54:00:aa:00:01"]
  capabilities: "profile:compute-ssd,boot_option:local"
- name: cmp-hdd-2
  pm_type: redfish
  pm_addr: http://127.0.0.1:8000
  pm_user: admin
  pm_password: Sekret-hdd-2-77
  pm_system_id: /redfish/v1/Systems/cmp-hdd-2
  mac: ["52:54:00:aa:00:02"]
  role: ComputeHDD
"""


@pytest.fixture
def intent(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "new-servers.yaml"
    path.write_text(NODES)
    path.chmod(0o600)  # it holds BMC passwords: lifecycle refuses it readable by others
    return {"operation": "scale-out", "nodes_file": str(path), "image": "http://x/boot.iso"}


def test_planner_entry_is_deterministic_and_names_the_aggregates(intent):
    cluster = load_inventory(DEMO)
    plan = scale_out_planner(cluster, intent)
    assert plan.digest == scale_out_planner(cluster, intent).digest
    assert plan.inventory_digest == cluster.digest
    assert plan.by_id["aggregate/cmp-ssd-2"].param("aggregate") == "ssd"
    assert plan.by_id["aggregate/cmp-hdd-2"].param("aggregate") == "hdd"
    assert plan.by_id["deploy/cmp-ssd-2"].param("image") == "http://x/boot.iso"


def test_run_cluster_and_secrets_include_the_new_servers(intent):
    cluster = load_inventory(DEMO)
    grown = scale_out_cluster(cluster, intent)
    assert grown.node("cmp-ssd-2").role == "ComputeSSD"
    secrets = scale_out_secrets(cluster, intent)
    assert secrets.get("cmp-hdd-2")["password"] == "Sekret-hdd-2-77"
    assert secrets.redact("pw Sekret-ssd-2-77") == "pw ***"
    assert "ctl-0" in secrets  # the cluster's own secrets stay


def test_planner_entry_reports_bad_nodes_files_as_input_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: x\n  pm_type: carrier-pigeon\n")
    with pytest.raises(InputError, match="pm_type"):
        scale_out_planner(load_inventory(DEMO), {"nodes_file": str(bad)})


def test_profiles_match_needs_an_inventory(capsys):
    assert main(["profiles", "match"]) == 2
