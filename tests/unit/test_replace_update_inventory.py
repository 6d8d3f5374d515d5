"""`lifecycle run replace|remove --update-inventory` on the sim driver: cluster.yaml names the
replacement once the run (or its resume) succeeded, and only then."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from lifecycle.cli.main import main
from lifecycle.formats.inventory import load_inventory

ROOT = Path(__file__).resolve().parents[2]
SIM = ["--driver", "sim", "--sim-scale", "0", "-y", "--no-progress"]


@pytest.fixture()
def lab(tmp_path, monkeypatch) -> Path:
    """A copy of the lab inventory, its cluster.yaml commented and mode 0640."""
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS", raising=False)
    copy = tmp_path / "lab"
    shutil.copytree(ROOT / "inventories" / "lab", copy)
    for name in ("secrets.yaml", "new-servers.json"):
        (copy / name).chmod(0o600)
    path = copy / "cluster.yaml"
    path.write_text(
        path.read_text().replace(
            "  - name: ctl-1\n", "  # ctl-1: lost a disk, ticket 4711\n  - name: ctl-1  # VIP\n"
        )
    )
    path.chmod(0o640)
    return copy


def _run(lab: Path, *args: str) -> int:
    state = lab.parent / "state"
    return main(["run", *args, "-i", str(lab), "--state-dir", str(state), *SIM])


REPLACE = ["replace", "--node", "ctl-1", "--with", "ctl-9", "--address", "198.18.2.99"]


def test_a_replace_writes_the_replacement_in_place_of_the_old_node(lab, capsys) -> None:
    path = lab / "cluster.yaml"
    before = path.read_text()
    assert _run(lab, *REPLACE, "--update-inventory") == 0
    out = capsys.readouterr().out
    assert path.read_text() == before.replace(
        "  - name: ctl-1  # VIP\n"
        "    role: Controller\n"
        "    failure_domain: rack2\n"
        "    address: 198.18.2.11\n"
        "    bmc: {driver: ipmi, address: 198.19.2.11, credentials: ctl-1}\n",
        "  - name: ctl-9  # VIP\n"
        "    role: Controller\n"
        "    failure_domain: rack2\n"
        "    address: 198.18.2.99\n",
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    (backup,) = lab.glob("cluster.yaml.bak-*")
    assert backup.read_text() == before
    assert (
        f"inventory updated: node ctl-1 is now ctl-9 (address 198.18.2.99, no bmc) in {path}"
        in (out)
    )
    assert [p.name for p in lab.iterdir() if p.name.startswith(".")] == []  # no temp file left
    assert load_inventory(lab).node("ctl-9").role == "Controller"


def test_a_failed_replace_leaves_the_file_byte_identical(lab, capsys, monkeypatch) -> None:
    path = lab / "cluster.yaml"
    before = path.read_bytes()
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", "fail:deploy/galera/ctl-9:9")
    assert _run(lab, *REPLACE, "--update-inventory") == 4
    assert path.read_bytes() == before
    assert sorted(p.name for p in lab.iterdir()) == [
        "cluster.yaml",
        "new-servers.json",
        "secrets.yaml",
    ]
    assert "inventory updated" not in capsys.readouterr().out


def test_the_resume_that_succeeds_updates_the_inventory(lab, capsys, monkeypatch) -> None:
    path = lab / "cluster.yaml"
    before = path.read_text()
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", "die:ctl-1@stop/ctl-1")
    assert _run(lab, *REPLACE, "--update-inventory") == 4
    assert path.read_text() == before
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS")
    resume = ["resume", "last", "--state-dir", str(lab.parent / "state"), "--sim-scale", "0"]
    assert main([*resume, "--no-progress", "--node-dead", "ctl-1"]) == 0
    assert "inventory updated: node ctl-1 is now ctl-9" in capsys.readouterr().out
    assert "  - name: ctl-9  # VIP\n" in path.read_text()
    assert {n.name for n in load_inventory(lab).nodes} & {"ctl-1", "ctl-9"} == {"ctl-9"}


def test_a_file_edited_during_the_run_is_not_overwritten(lab, capsys, monkeypatch) -> None:
    path = lab / "cluster.yaml"
    monkeypatch.setenv("LIFECYCLE_SIM_FAULTS", "die:ctl-1@stop/ctl-1")
    assert _run(lab, *REPLACE, "--update-inventory") == 4
    monkeypatch.delenv("LIFECYCLE_SIM_FAULTS")
    path.write_text(path.read_text() + "# a colleague's note\n")
    edited = path.read_bytes()
    capsys.readouterr()
    resume = ["resume", "last", "--state-dir", str(lab.parent / "state"), "--sim-scale", "0"]
    assert main([*resume, "--no-progress", "--node-dead", "ctl-1"]) == 2
    err = capsys.readouterr().err
    assert "succeeded; the inventory was not updated: node ctl-1 is now ctl-9" in err
    assert f"{path}: nodes: the file as run lab-" in err and "it changed since" in err
    assert "Traceback" not in err
    assert path.read_bytes() == edited and not list(lab.glob("cluster.yaml.bak-*"))


def test_without_the_flag_the_line_to_edit_is_printed(lab, capsys) -> None:
    path = lab / "cluster.yaml"
    before = path.read_bytes()
    assert _run(lab, *REPLACE) == 0
    out = capsys.readouterr().out
    assert (
        "inventory: node ctl-1 is now ctl-9 (address 198.18.2.99, no bmc): rename its `nodes:`"
        f" entry in {path} (--update-inventory does it)\n"
    ) in out
    assert path.read_bytes() == before


def test_a_remove_drops_the_entry(lab, capsys) -> None:
    path = lab / "cluster.yaml"
    before = path.read_text()
    assert _run(lab, "remove", "--node", "cmp-hdd-2", "--update-inventory") == 0
    assert path.read_text() == before.replace(
        "  - name: cmp-hdd-2\n"
        "    role: ComputeHDD\n"
        "    failure_domain: rack1\n"
        "    address: 198.18.1.102\n"
        "    bmc: {driver: ipmi, address: 198.19.1.102, credentials: cmp-hdd-2}\n",
        "",
    )
    assert "inventory updated: node cmp-hdd-2 removed from `nodes:`" in capsys.readouterr().out


def test_a_server_of_the_nodes_file_brings_its_bmc_without_a_login(lab, capsys) -> None:
    path = lab / "cluster.yaml"
    args = ["replace", "--node", "cmp-ssd-1", "--with", "cmp-ssd-8"]
    assert _run(lab, *args, "--nodes", str(lab / "new-servers.json"), "--update-inventory") == 0
    assert (
        "  - name: cmp-ssd-8\n"
        "    role: ComputeSSD\n"
        "    failure_domain: rack2\n"
        "    bmc: {driver: redfish, address: https://198.19.2.108,"
        " system_id: /redfish/v1/Systems/1}\n"
    ) in path.read_text()
    out = capsys.readouterr().out
    assert "note: cmp-ssd-8's BMC login is in the nodes file, not in secrets.yaml" in out


def test_a_node_listed_elsewhere_is_refused_with_exit_2(lab, capsys) -> None:
    path = lab / "cluster.yaml"
    # the same node under another spelling of its entry: a flow mapping lifecycle does not edit
    text = path.read_text().replace(
        "  - name: net-1\n    role: Networker\n    failure_domain: rack2\n",
        "  - {name: net-1, role: Networker, failure_domain: rack2,\n",
    )
    text = text.replace(
        "    address: 198.18.2.21\n    bmc: {driver: ipmi, address: 198.19.2.21, credentials:"
        " net-1}\n",
        "     address: 198.18.2.21, bmc: {driver: ipmi, address: 198.19.2.21, credentials:"
        " net-1}}\n",
    )
    path.write_text(text)
    assert load_inventory(lab).node("net-1").address == "198.18.2.21"
    args = ["replace", "--node", "net-1", "--with", "net-9", "--address", "198.18.2.29"]
    assert _run(lab, *args, "--update-inventory") == 2
    err = capsys.readouterr().err
    assert f"{path}: nodes[4]: a block mapping, one key a line, that lifecycle can edit" in err
    assert path.read_text() == text


def test_an_edit_that_would_not_load_is_refused_naming_the_inventory(lab, capsys) -> None:
    from lifecycle.cli.replace_cmds import _update
    from lifecycle.errors import InventoryError
    from lifecycle.formats.inventory_replace import NodeChange, fingerprint

    path = lab / "cluster.yaml"
    before = path.read_bytes()
    with pytest.raises(InventoryError) as caught:  # ctl-2 is listed already
        _update(path, NodeChange("ctl-1", "ctl-2", "198.18.2.99"), fingerprint(path), "run-1")
    assert str(caught.value).startswith(f"{path}: nodes: an edit that loads (with it, the file")
    assert "ctl-2" in str(caught.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in lab.iterdir()) == [
        "cluster.yaml",
        "new-servers.json",
        "secrets.yaml",
    ]
