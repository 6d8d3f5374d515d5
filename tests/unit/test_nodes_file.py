"""instackenv.json and YAML nodes files: fields, secrets kept apart, every mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle.errors import InventoryError
from lifecycle.formats.nodes_file import load_nodes_file

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(autouse=True)
def private_data() -> None:
    """git does not keep 0600: the nodes files holding BMC passwords are made private again
    (lifecycle refuses them readable by others)."""
    for name in ("instackenv.json", "new_nodes.yaml", "broken_instackenv.json"):
        (DATA / name).chmod(0o600)


def test_instackenv_fields() -> None:
    nodes, secrets = load_nodes_file(DATA / "instackenv.json")
    ssd, hdd = nodes
    assert ssd.name == "cmp-ssd-2"
    assert (ssd.bmc.driver, ssd.bmc.address) == ("redfish", "127.0.0.1:8000")
    assert ssd.bmc.system_id == "/redfish/v1/Systems/cmp-ssd-2"
    assert ssd.bmc.credentials == "cmp-ssd-2"
    assert ssd.macs == ("52:54:00:aa:bb:01",)  # normalised to lower case
    assert ssd.profile == "compute-ssd"
    assert dict(ssd.properties) == {
        "cpu": "8", "memory_mb": "16384", "local_gb": "100", "cpu_arch": "x86_64",
        "capabilities": "profile:compute-ssd,boot_option:local",  # all go to Ironic, as TripleO
    }  # fmt: skip
    assert hdd.bmc.driver == "ipmi"  # legacy pxe_ipmitool
    assert hdd.macs == ("52:54:00:aa:bb:02",)
    assert hdd.profile is None and hdd.role is None
    assert secrets["cmp-ssd-2"] == {"username": "admin", "password": "FAKE-instackenv-password-1"}
    assert "FAKE-instackenv-password-1" not in repr(nodes)


def test_yaml_nodes_file() -> None:
    (node,), secrets = load_nodes_file(DATA / "new_nodes.yaml")
    assert (node.role, node.failure_domain, node.address) == ("ComputeHDD", "rack2", "198.18.0.25")
    assert secrets.redact("pw=FAKE-yaml-password") == "pw=***"


def test_broken_nodes_file_reports_every_problem_without_secrets() -> None:
    with pytest.raises(InventoryError) as info:
        load_nodes_file(DATA / "broken_instackenv.json")
    text = str(info.value)
    assert "broken_instackenv.json:9: nodes[0].mac[0]: a MAC address" in text
    assert "broken_instackenv.json:10: nodes[0].capabilities: capabilities as 'key:value" in text
    assert "broken_instackenv.json:3: nodes[0].pm_system_id: this key (missing)" in text
    assert "broken_instackenv.json:14: nodes[1].pm_type: one of" in text
    assert "broken_instackenv.json:16: nodes[1].cpu: an integer >= 1, got -2" in text
    assert "FAKE-secret-never-shown" not in text


def test_duplicate_macs_and_names(tmp_path: Path) -> None:
    path = tmp_path / "nodes.yaml"
    node = "{name: n0, pm_type: fake-hardware, mac: ['52:54:00:00:00:01']}"
    path.write_text(f"nodes:\n  - {node}\n  - {node}\n")
    with pytest.raises(InventoryError) as info:
        load_nodes_file(path)
    assert "nodes.yaml:3: nodes[1].name: a unique name ('n0' twice)" in str(info.value)
    assert "nodes[1].mac: a unique MAC (52:54:00:00:00:01 twice)" in str(info.value)


def test_json_that_yaml_cannot_read_falls_back_to_json(tmp_path: Path) -> None:
    path = tmp_path / "tabs.json"
    path.write_text('{\n\t"nodes": [{"name": "x", "pm_type": "fake-hardware"}]\n}\n')
    (node,), _ = load_nodes_file(path)
    assert node.name == "x"
    path.write_text('{\n\t"nodes": [\n}\n')
    with pytest.raises(InventoryError, match=r"tabs.json:3: valid JSON"):
        load_nodes_file(path)


def test_tripleo_common_rules_apply_when_installed(tmp_path: Path) -> None:
    """With the `tripleo` extra, TripleO's own validate_nodes runs too (here: a platform without
    an architecture, which only TripleO refuses)."""
    pytest.importorskip("tripleo_common.utils.nodes")
    path = tmp_path / "nodes.yaml"
    path.write_text(
        "- {name: n0, pm_type: ipmi, pm_addr: 198.19.0.1, pm_user: u, pm_password: FAKE-pw,\n"
        "   mac: ['52:54:00:00:00:01'], platform: sm}\n"
    )
    with pytest.raises(InventoryError) as info:
        load_nodes_file(path)
    text = str(info.value)
    assert "nodes.yaml:1: [0]: a node TripleO accepts (You have specified a platform" in text
    assert "FAKE-pw" not in text
