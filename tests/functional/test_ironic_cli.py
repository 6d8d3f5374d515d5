"""`lifecycle nodes import|list|show` and `lifecycle profiles match` on a real Ironic."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifecycle.cli.main import main
from lifecycle.cli.nodes_cmds import scale_out_inputs
from lifecycle.errors import PlanningError
from lifecycle.testbed.ironic import BMC_USER, IronicTestbed, machine, running

pytestmark = pytest.mark.ironic

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "tests" / "data" / "demo-train")
PASSWORD = "Cli-BMC-pw-0b4e77"
MACHINES = [machine("ssd", 7, "new-ssd"), machine("hdd", 7, "new-hdd"), machine("small", 7, "tiny")]


@pytest.fixture(scope="module")
def ironic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IronicTestbed]:
    with running(MACHINES, PASSWORD, tmp_path_factory.mktemp("ironic")) as testbed:
        yield testbed


@pytest.fixture(scope="module")
def nodes_file(ironic: IronicTestbed, tmp_path_factory: pytest.TempPathFactory) -> str:
    nodes = [
        {"name": m.name, "pm_type": "redfish", "pm_addr": ironic.redfish_url,
         "pm_user": BMC_USER, "pm_password": PASSWORD, "mac": list(m.macs),
         "pm_system_id": f"/redfish/v1/Systems/{m.uuid}"}
        for m in MACHINES
    ]  # fmt: skip
    path = tmp_path_factory.mktemp("nodes") / "new-servers.json"
    path.write_text(json.dumps({"nodes": nodes}))
    path.chmod(0o600)  # it holds BMC passwords: lifecycle refuses it readable by others
    return str(path)


@pytest.fixture(scope="module")
def imported(ironic: IronicTestbed, nodes_file: str) -> str:
    code = main(["nodes", "import", "-i", DEMO, nodes_file, "--ironic-url", ironic.ironic_url])
    assert code == 0
    return nodes_file


def test_import_enrolls_and_inspects_and_list_shows_them(imported, ironic, capsys):
    capsys.readouterr()
    assert main(["nodes", "list", "--ironic-url", ironic.ironic_url, "-f", "value"]) == 0
    out = capsys.readouterr().out
    for m in MACHINES:
        assert any(line.startswith(m.name) and "manageable" in line for line in out.splitlines())
    assert PASSWORD not in out


def test_show_explains_the_match(imported, ironic, capsys):
    capsys.readouterr()
    assert main(["nodes", "show", "new-ssd", "--ironic-url", ironic.ironic_url]) == 0
    out = capsys.readouterr().out
    assert "compute-ssd (priority 20): chosen" in out
    assert "non_rotational_disks 2" in out


def test_profiles_match_reports_the_misfit_before_anything_is_provisioned(imported, ironic, capsys):
    capsys.readouterr()
    code = main(["profiles", "match", "-i", DEMO, "--nodes", imported, "--dry-run",
                 "--ironic-url", ironic.ironic_url])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2
    assert "new-ssd: compute-ssd" in captured.out and "new-hdd: compute-hdd" in captured.out
    assert "tiny: NO MATCH" in captured.out
    assert "tiny: matches no hardware profile" in captured.err
    assert "memory_mb = 2048 (expected at least 4096)" in captured.err


def test_planning_uses_what_ironic_inspected(imported, ironic):
    with pytest.raises(PlanningError, match="tiny: matches no hardware profile"):
        scale_out_inputs(DEMO, imported, ironic_url=ironic.ironic_url)
