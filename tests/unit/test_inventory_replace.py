"""inventory_replace: a replaced node's `nodes:` entry renamed (or dropped) as a text edit, every
other line of the operator's cluster.yaml kept byte for byte."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from lifecycle.errors import InventoryError
from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.inventory_replace import NodeChange, changed_text
from lifecycle.model.cluster import BmcSpec

ROOT = Path(__file__).resolve().parents[2]

CLUSTER = """\
# The small cloud (rack 1 and 2); edited by hand, keep the comments.
cluster: small
release: "2024.1"
roles:
  Controller:
    services: [haproxy, galera, rabbitmq, keystone,
               nova-api]
  Compute:
    services: [nova-compute]
nodes:
  - name: ctl-0
    role: Controller
    failure_domain: rack1
    address: 10.0.1.10
    bmc: {driver: ipmi, address: 10.1.1.10, credentials: ctl-0}
  # ctl-1 lost a disk on 2026-11-02 (ticket 4711)
  - name: "ctl-1"   # the one behind the VIP
    role: Controller       # keep
    failure_domain: rack2
    address: 10.0.2.11     # bond0
    bmc: {driver: ipmi, address: 10.1.2.11, credentials: ctl-1}   # iDRAC 9
    # nothing else on ctl-1
  - name: ctl-2
    role: Controller
    failure_domain: rack1
    address: 10.0.1.12
    bmc:
      driver: redfish
      address: "https://10.1.1.12"
  - name: cmp-0
    role: Compute
policies:
  max_unavailable: {default: 1}
"""

NEW_BMC = BmcSpec("redfish", "https://10.1.2.99", "/redfish/v1/Systems/1")


def _changed_lines(before: str, after: str) -> list[str]:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def test_a_replacement_host_takes_the_entry_keeping_role_comments_and_quotes() -> None:
    out = changed_text(CLUSTER, NodeChange("ctl-1", "ctl-9", "10.0.2.99"))
    assert out == CLUSTER.replace(
        '  - name: "ctl-1"   # the one behind the VIP\n',
        '  - name: "ctl-9"   # the one behind the VIP\n',
    ).replace(
        "    address: 10.0.2.11     # bond0\n"
        "    bmc: {driver: ipmi, address: 10.1.2.11, credentials: ctl-1}   # iDRAC 9\n",
        "    address: 10.0.2.99     # bond0\n",  # an existing host has no BMC: the old one's goes
    )


def test_a_server_of_a_nodes_file_brings_its_bmc_in_the_entrys_style() -> None:
    out = changed_text(CLUSTER, NodeChange("ctl-1", "ctl-9", None, NEW_BMC))
    assert _changed_lines(CLUSTER, out) == [
        '-  - name: "ctl-1"   # the one behind the VIP',
        '+  - name: "ctl-9"   # the one behind the VIP',
        "-    address: 10.0.2.11     # bond0",
        "-    bmc: {driver: ipmi, address: 10.1.2.11, credentials: ctl-1}   # iDRAC 9",
        "+    bmc: {driver: redfish, address: https://10.1.2.99, system_id: /redfish/v1/Systems/1}"
        "   # iDRAC 9",
    ]
    block = changed_text(CLUSTER, NodeChange("ctl-2", "ctl-7", "10.0.1.17", NEW_BMC))
    assert _changed_lines(CLUSTER, block) == [
        "-  - name: ctl-2",
        "+  - name: ctl-7",
        "-    address: 10.0.1.12",
        "+    address: 10.0.1.17",
        '-      address: "https://10.1.1.12"',  # a block `bmc:` stays a block
        "+      address: https://10.1.2.99",
        "+      system_id: /redfish/v1/Systems/1",
    ]


def test_an_entry_without_address_gets_one_after_its_last_line() -> None:
    out = changed_text(CLUSTER, NodeChange("cmp-0", "cmp-5", "10.0.1.105"))
    assert "  - name: cmp-5\n    role: Compute\n    address: 10.0.1.105\npolicies:\n" in out
    assert len(_changed_lines(CLUSTER, out)) == 3


def test_a_rebuild_under_its_own_name_changes_only_what_was_given() -> None:
    out = changed_text(CLUSTER, NodeChange("ctl-1", "ctl-1", "10.0.2.12", keep_unset=True))
    assert _changed_lines(CLUSTER, out) == [
        "-    address: 10.0.2.11     # bond0",
        "+    address: 10.0.2.12     # bond0",
    ]


def test_a_remove_drops_the_entrys_lines_only() -> None:
    out = changed_text(CLUSTER, NodeChange("ctl-1"))
    assert out == CLUSTER.replace(
        '  - name: "ctl-1"   # the one behind the VIP\n'
        "    role: Controller       # keep\n"
        "    failure_domain: rack2\n"
        "    address: 10.0.2.11     # bond0\n"
        "    bmc: {driver: ipmi, address: 10.1.2.11, credentials: ctl-1}   # iDRAC 9\n",
        "",
    )
    # the last entry, before the next top-level key, in a file with no final newline
    last = changed_text(CLUSTER.rstrip("\n"), NodeChange("cmp-0"))
    assert last.endswith(
        '      address: "https://10.1.1.12"\npolicies:\n  max_unavailable: {default: 1}\n'
    )


def test_a_node_the_file_does_not_list_is_refused_naming_file_and_field() -> None:
    with pytest.raises(InventoryError) as caught:
        changed_text(CLUSTER, NodeChange("ctl-5", "ctl-9", "10.0.2.99"), "inv/cluster.yaml")
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith("inv/cluster.yaml: nodes: an entry named ctl-5")


def test_a_flow_style_entry_and_the_only_node_are_refused() -> None:
    flow = CLUSTER.replace("  - name: cmp-0\n    role: Compute\n", "  - {name: cmp-0, role: x}\n")
    with pytest.raises(InventoryError, match=r"nodes\[3\]: a block mapping"):
        changed_text(flow, NodeChange("cmp-0", "cmp-5"))
    alone = "cluster: c\nnodes:\n  - name: a\n    role: R\n"
    with pytest.raises(InventoryError, match="nodes: another node than a left"):
        changed_text(alone, NodeChange("a"))


@pytest.mark.parametrize("inventory", ["lab", "demo"])
def test_every_node_of_the_shipped_inventories_changes_only_its_own_lines(inventory) -> None:
    path = ROOT / "inventories" / inventory / "cluster.yaml"
    text = path.read_text()
    nodes = load_inventory(path).nodes
    first_of_role = {n.role: n for n in reversed(nodes)}  # and the list's first and last
    for node in {nodes[0], *first_of_role.values(), nodes[-1]}:
        for change in (NodeChange(node.name, "new-1", "192.0.2.1", NEW_BMC), NodeChange(node.name)):
            changed = _changed_lines(text, changed_text(text, change))
            removed = [line for line in changed if line.startswith("-")]
            assert removed and all(
                line == "-  - name: " + node.name or line.startswith("-    ") for line in removed
            ), (node.name, changed)
