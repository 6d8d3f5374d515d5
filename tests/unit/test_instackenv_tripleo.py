"""Field case instackenv-tripleo-fields: an instackenv.json as TripleO's importer reads it.

tripleo-common 18 (`tripleo_common.utils.nodes.register_ironic_node`) takes `uuid`, `profile`,
the `*_interface` fields, driver keys with the driver's prefix (`redfish_verify_ca`), ports'
`physical_network` and `local_link_connection`, `pm_port`, `kernel_id`/`ramdisk_id`,
`resource_class`, `conductor_group` and `root_device`, and drops `_comment`. lifecycle refused all
of these as unknown keys; now each reaches Ironic as TripleO sends it, and what Ironic gets nothing
from is ignored with a warning that says so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lifecycle.cli.main import main
from lifecycle.drivers.baremetal import (
    BaremetalDriver,
    _driver_info,
    _interfaces,
    _node_fields,
    _properties,
)
from lifecycle.drivers.base import StepContext
from lifecycle.errors import InventoryError
from lifecycle.formats.nodes_file import _as_tripleo, load_nodes_file
from lifecycle.planning.scale_out import import_steps
from tests.unit.cluster_factory import lab_like
from tests.unit.fieldcase_support import ROOT, copy_cases

UUID = "8f4a6c3e-1a7b-4e2d-9a11-000000000021"
NODES = [
    {"_comment": "rack 9, left", "name": "r0", "pm_type": "redfish", "pm_addr": "https://10.0.9.1",
     "pm_user": "admin", "pm_password": "FAKE-pw-r0", "pm_system_id": "/redfish/v1/Systems/1",
     "redfish_verify_ca": False, "uuid": UUID, "boot_interface": "ipxe",
     "deploy_interface": "direct", "conductor_group": "rack9", "resource_class": "compute-ssd",
     "ports": [{"address": "52:54:00:AA:00:01", "physical_network": "ctlplane",
                "local_link_connection": {"switch_id": "00:11:22:33:44:55", "port_id": "Eth1/1"}}],
     "capabilities": "profile:compute-hdd,boot_mode:uefi", "profile": "compute-ssd"},
    {"name": "i1", "pm_type": "pxe_ipmitool", "pm_addr": "10.0.9.2", "pm_port": 6231,
     "pm_user": "admin", "pm_password": "FAKE-pw-i1", "ipmi_cipher_suite": 17,
     "ipmi_kg_key": "FAKE-kg-secret", "kernel_id": "file:///k", "ramdisk_id": "file:///r",
     "root_device": {"serial": "S1234"}, "platform": "SNB", "arch": "x86_64",
     "mac": ["52:54:00:aa:00:02"]},
]  # fmt: skip


def _write(tmp_path: Path, nodes: list[dict[str, Any]]) -> Path:
    path = tmp_path / "instackenv.json"
    path.write_text(json.dumps({"nodes": nodes}, indent=1))
    path.chmod(0o600)  # it holds BMC passwords: lifecycle refuses it readable by others
    return path


def test_tripleo_fields_are_kept_for_ironic(tmp_path) -> None:
    (r0, i1), secrets = load_nodes_file(_write(tmp_path, NODES))
    assert r0.uuid == UUID and r0.conductor_group == "rack9"
    assert r0.resource_class == "compute-ssd"
    assert dict(r0.interfaces) == {"boot_interface": "ipxe", "deploy_interface": "direct"}
    assert dict(r0.driver_info) == {"redfish_verify_ca": "false"}
    (port,) = r0.ports
    assert (port.address, port.physical_network) == ("52:54:00:aa:00:01", "ctlplane")
    assert dict(port.local_link_connection) == {
        "switch_id": "00:11:22:33:44:55",
        "port_id": "Eth1/1",
    }
    # `profile` wins over the capabilities' profile, as in register_ironic_node; the rest stays
    assert r0.profile == "compute-ssd"
    assert dict(r0.properties)["capabilities"] == "profile:compute-ssd,boot_mode:uefi"
    assert dict(i1.driver_info) == {
        "ipmi_port": "6231", "ipmi_cipher_suite": "17",
        "deploy_kernel": "file:///k", "rescue_kernel": "file:///k",
        "deploy_ramdisk": "file:///r", "rescue_ramdisk": "file:///r",
    }  # fmt: skip
    assert dict(i1.properties)["root_device"] == '{"serial": "S1234"}'
    assert secrets["i1"] == {"username": "admin", "password": "FAKE-pw-i1"}


def test_what_ironic_gets_nothing_from_is_ignored_with_a_warning(tmp_path) -> None:
    (r0, i1), _ = load_nodes_file(_write(tmp_path, NODES))
    text = "\n".join(r0.warnings + i1.warnings)
    assert "nodes[0].profile: profile compute-ssd replaces capabilities profile:compute-hdd" in text
    assert "nodes[1].platform: ignored" in text
    assert "nodes[1].ipmi_kg_key: ignored: a secret is not copied into plans" in text
    assert "instackenv.json:" in text and "FAKE" not in text


def test_the_enroll_step_carries_them_and_no_secret(tmp_path) -> None:
    (r0, i1), _ = load_nodes_file(_write(tmp_path, NODES))
    enroll, _ = import_steps(r0)
    assert enroll.param("uuid") == UUID
    assert enroll.param("interfaces") == ("boot_interface=ipxe", "deploy_interface=direct")
    assert enroll.param("driver_info") == ("redfish_verify_ca=false",)
    (port,) = enroll.param("ports")  # type: ignore[misc]
    assert json.loads(port)["local_link_connection"]["port_id"] == "Eth1/1"
    assert "FAKE" not in repr(import_steps(i1))


class Ports:
    """The two port calls the driver makes, recorded."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def ports(self, node_uuid: str) -> list[Any]:
        return []

    def create_port(self, **fields: Any) -> None:
        self.created.append(fields)


def test_the_baremetal_driver_gives_them_to_ironic(tmp_path) -> None:
    (r0, i1), secrets = load_nodes_file(_write(tmp_path, NODES))
    ctx = StepContext(run_id="t", cluster=lab_like(), secrets=secrets)
    enroll, _ = import_steps(r0)
    info = _driver_info(enroll, ctx)
    assert info["redfish_verify_ca"] == "false" and info["redfish_password"] == "FAKE-pw-r0"
    assert _interfaces(enroll) == {
        "inspect_interface": "redfish", "boot_interface": "ipxe", "deploy_interface": "direct",
    }  # fmt: skip
    assert _node_fields(enroll) == {"id": UUID, "conductor_group": "rack9"}
    assert _properties(import_steps(i1)[0])["root_device"] == {"serial": "S1234"}
    api = Ports()
    conn = SimpleNamespace(baremetal=api, close=lambda: None)
    driver = BaremetalDriver(endpoint="http://127.0.0.1:9", connect=lambda: conn)
    driver._ensure_ports(SimpleNamespace(id=UUID), enroll)
    assert api.created == [
        {
            "node_uuid": UUID,
            "address": "52:54:00:aa:00:01",
            "physical_network": "ctlplane",
            "local_link_connection": {"port_id": "Eth1/1", "switch_id": "00:11:22:33:44:55"},
        }
    ]
    driver.close()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("uuid", "not-a-uuid", "nodes[0].uuid: a UUID"),
        ("colour", "red", "nodes[0].colour: one of"),
        ("redfish_verify_ca", ["x"], "nodes[0].redfish_verify_ca: a string, number or boolean"),
        ("root_device", "sda", "nodes[0].root_device: a mapping"),
        ("ports", [{"address": "52:54:00:aa:00:09", "local_link_connection": {"vlan": 1}}],
         "local_link_connection.vlan: one of"),
    ],
)  # fmt: skip
def test_wrong_values_are_still_named(tmp_path, key: str, value: object, expected: str) -> None:
    node = {**NODES[0], key: value}
    with pytest.raises(InventoryError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        load_nodes_file(_write(tmp_path, [node]))


def test_tripleo_commons_own_validation_accepts_them(tmp_path) -> None:
    """tripleo-common's validate_nodes, on the copy lifecycle gives it (the `tripleo` extra)."""
    nodes = pytest.importorskip("tripleo_common.utils.nodes")
    load_nodes_file(_write(tmp_path, NODES))  # runs validate_nodes too
    nodes.validate_nodes([_as_tripleo(json.loads(json.dumps(n))) for n in NODES])


def _lab(tmp_path: Path) -> Path:
    lab = tmp_path / "lab"
    shutil.copytree(ROOT / "inventories" / "lab", lab)
    (lab / "secrets.yaml").chmod(0o600)
    return lab


def test_field_case_instackenv_tripleo_fields(tmp_path, capsys) -> None:
    cases = copy_cases(tmp_path)
    nodes = cases / "instackenv-tripleo-fields" / "instackenv.json"
    code = main(
        ["plan", "scale-out", "-i", str(cases / "lab"), "--nodes", str(nodes), "-f", "json"]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    enrolls = {
        s["id"]: s["params"]
        for s in json.loads(out.out)["steps"]
        if s["action"] == "baremetal.enroll"
    }
    assert enrolls["enroll/cmp-ssd-20"]["driver_info"] == ["redfish_verify_ca=false"]
    assert enrolls["enroll/cmp-ssd-21"]["uuid"] == "8f4a6c3e-1a7b-4e2d-9a11-000000000021"
    assert enrolls["enroll/cmp-ssd-22"]["interfaces"] == ["boot_interface=ipxe"]
