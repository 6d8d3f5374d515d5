"""Loading the example inventories and every import path of cluster.yaml."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lifecycle.errors import InventoryError
from lifecycle.formats.inventory import inventory_warnings, load_inventory
from lifecycle.model import Evacuate, MaxUnavailable

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
TRIPLEO = DATA / "tripleo"  # verbatim copy of ../shared/corpus/tripleo-heat-templates


def write(directory: Path, text: str, name: str = "cluster.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def test_demo_inventory_matches_the_contract() -> None:
    cluster = load_inventory(ROOT / "tests" / "data" / "demo-train")
    assert (cluster.name, cluster.release, cluster.ceph_release) == ("demo", "train", "nautilus")
    names = [n.name for n in cluster.nodes]
    assert names == [
        "ctl-0", "ctl-1", "ctl-2", "cmp-hdd-0", "cmp-hdd-1", "cmp-ssd-0", "cmp-ssd-1",
        "ceph-0", "ceph-1", "ceph-2",
    ]  # fmt: skip
    assert cluster.node("ctl-1").address == "198.18.0.12"
    assert cluster.node("ceph-2").failure_domain == "rack3"
    assert cluster.aggregate_of(cluster.node("cmp-ssd-0")) == "ssd"
    assert cluster.role("ComputeSSD").profile == "compute-ssd"
    assert len(cluster.role("Controller").services) == 15
    assert cluster.members["ceph-osd"] == ("ceph-0", "ceph-1", "ceph-2")
    policies = cluster.policies
    assert policies.max_unavailable == MaxUnavailable(1)
    assert (policies.evacuate, policies.canary) == (Evacuate.LIVE_MIGRATE, 1)
    assert cluster.credentials == "secrets.yaml"


def test_lab_inventory_has_the_realistic_shape() -> None:
    cluster = load_inventory(ROOT / "inventories" / "lab" / "cluster.yaml")
    by_role: dict[str, int] = {}
    for node in cluster.nodes:
        by_role[node.role] = by_role.get(node.role, 0) + 1
    assert by_role == {
        "Controller": 3, "Networker": 2, "ComputeHDD": 12, "ComputeSSD": 8, "CephStorage": 5,
    }  # fmt: skip
    assert {n.failure_domain for n in cluster.nodes} == {"rack1", "rack2"}
    assert "neutron-l3-agent" in cluster.role("Networker").services
    assert cluster.policies.max_unavailable_for("ssd").resolve(8) == 2  # 25 % of 8
    assert cluster.policies.max_unavailable_for("hdd").resolve(12) == 2
    assert all(n.address and n.address.startswith("198.18.") for n in cluster.nodes)
    assert inventory_warnings(cluster) == []


def test_release_aliases_and_unquoted_numbers_are_normalised(tmp_path: Path) -> None:
    text = (ROOT / "tests" / "data" / "demo-train" / "cluster.yaml").read_text()
    write(tmp_path, text.replace("release: train", "release: 2023.1"))
    shutil.copy(ROOT / "tests" / "data" / "demo-train" / "secrets.yaml", tmp_path)
    assert load_inventory(tmp_path).release == "2023.1"
    write(tmp_path, text.replace("release: train", "release: antelope"))
    assert load_inventory(tmp_path).release == "2023.1"


def test_policies_forms(tmp_path: Path) -> None:
    base = "cluster: p\nrelease: train\nroles:\n  C: {services: [nova-compute], aggregate: a}\n"
    base += "nodes: [{name: c0, role: C}]\n"
    write(tmp_path, base + "policies: {max_unavailable: '10%', canary: 2, failure_threshold: 3}")
    policies = load_inventory(tmp_path).policies
    assert policies.max_unavailable == MaxUnavailable(None, 10.0)
    assert (policies.canary, policies.failure_threshold) == (2, 3)
    write(tmp_path, base + "policies: {max_unavailable: {aggregates: {a: 3}}, evacuate: none}")
    policies = load_inventory(tmp_path).policies
    assert policies.max_unavailable_for("a") == MaxUnavailable(3)
    assert policies.max_unavailable_for(None) == MaxUnavailable(1)
    assert policies.evacuate is Evacuate.NONE


def test_roles_data_import_with_overlay_and_role_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        f"""cluster: imported
release: train
roles:
  roles_data: {TRIPLEO / "roles_data.yaml"}
  Compute: {{aggregate: hdd}}
  Networker: {{role_file: {TRIPLEO / "roles" / "Networker.yaml"}}}
nodes:
  - {{name: c0, role: Controller}}
  - {{name: n0, role: Networker}}
  - {{name: h0, role: Compute}}
""",
    )
    cluster = load_inventory(tmp_path)
    controller = cluster.role("Controller")
    for service in ("galera", "rabbitmq", "keystone", "nova-api", "haproxy", "ceph-mon"):
        assert service in controller.services
    assert cluster.role("Compute").aggregate == "hdd"
    assert "nova-compute" in cluster.role("Compute").services
    assert "neutron-l3-agent" in cluster.role("Networker").services
    assert [r.name for r in cluster.roles][:5] == [
        "Controller", "Compute", "BlockStorage", "ObjectStorage", "CephStorage",
    ]  # fmt: skip
    assert any("no nodes" in w for w in inventory_warnings(cluster))


def test_relative_paths_are_relative_to_cluster_yaml(tmp_path: Path) -> None:
    shutil.copy(DATA / "instackenv.json", tmp_path / "instackenv.json")
    write(
        tmp_path / "sub",
        """cluster: rel
release: train
roles:
  ComputeSSD: {services: [nova-compute], aggregate: ssd, profile: compute-ssd}
  ComputeHDD: {services: [nova-compute], aggregate: hdd}
nodes:
  - {name: cmp-ssd-0, role: ComputeSSD}
nodes_file: ../instackenv.json
""",
    )
    with pytest.raises(InventoryError) as info:  # cmp-hdd-2 has no profile and no role
        load_inventory(tmp_path / "sub")
    assert "a role for node 'cmp-hdd-2'" in str(info.value)
    shutil.copy(DATA / "new_nodes.yaml", tmp_path / "new_nodes.yaml")
    text = (tmp_path / "sub" / "cluster.yaml").read_text()
    write(tmp_path / "sub", text.replace("../instackenv.json", "../new_nodes.yaml"))
    cluster = load_inventory(tmp_path / "sub" / "cluster.yaml")
    node = cluster.node("cmp-hdd-2")
    assert (node.role, node.failure_domain, node.address) == ("ComputeHDD", "rack2", "198.18.0.25")
    assert node.bmc is not None and node.bmc.driver == "ipmi"
    assert node.bmc.credentials == "cmp-hdd-2"


def test_nodes_from_instackenv_get_their_role_by_profile(tmp_path: Path) -> None:
    text = (DATA / "instackenv.json").read_text()
    write(tmp_path, text, "instackenv.json")
    write(
        tmp_path,
        """cluster: prof
release: train
roles:
  ComputeSSD: {services: [nova-compute], aggregate: ssd, profile: compute-ssd}
  ComputeHDD: {services: [nova-compute], aggregate: hdd, profile: compute-hdd}
nodes: [{name: cmp-ssd-2, role: ComputeSSD}]
nodes_file: instackenv.json
""",
    )
    with pytest.raises(InventoryError) as info:
        load_inventory(tmp_path)
    # two problems at once: a name used twice, and a node no role can be found for
    assert len(info.value.problems) == 2
    assert "unique node name ('cmp-ssd-2' is also nodes[0])" in str(info.value)
    assert "a role for node 'cmp-hdd-2'" in str(info.value)
    text = text.replace('"boot_option:local"', '"profile:compute-hdd"')
    write(tmp_path, text, "instackenv.json")
    text = (tmp_path / "cluster.yaml").read_text()
    write(tmp_path, text.replace("nodes: [{name: cmp-ssd-2,", "nodes: [{name: cmp-ssd-0,"))
    cluster = load_inventory(tmp_path)
    assert cluster.node("cmp-ssd-2").role == "ComputeSSD"
    assert cluster.node("cmp-hdd-2").role == "ComputeHDD"
    bmc = cluster.node("cmp-ssd-2").bmc
    assert bmc is not None
    assert (bmc.driver, bmc.system_id) == ("redfish", "/redfish/v1/Systems/cmp-ssd-2")


def test_baremetal_deployment_gives_hostnames_and_addresses(tmp_path: Path) -> None:
    write(
        tmp_path,
        f"""cluster: overcloud
release: wallaby
roles:
  roles_data: {TRIPLEO / "roles_data.yaml"}
baremetal_deployment: {DATA / "baremetal_deployment_small.yaml"}
""",
    )
    cluster = load_inventory(tmp_path)
    assert [n.name for n in cluster.nodes] == [
        "overcloud-controller-0", "overcloud-controller-1", "overcloud-controller-2",
        "overcloud-novacompute-0", "overcloud-novacompute-1",
    ]  # fmt: skip
    assert cluster.node("overcloud-controller-0").address == "192.168.24.10"
    assert cluster.node("overcloud-controller-1").address is None


def test_corpus_baremetal_deployment_imports(tmp_path: Path) -> None:
    write(
        tmp_path,
        f"""cluster: overcloud
release: train
roles:
  roles_data: {TRIPLEO / "roles_data.yaml"}
baremetal_deployment: {TRIPLEO / "baremetal_deployment.yaml"}
""",
    )
    cluster = load_inventory(tmp_path)
    assert len(cluster.nodes) == 6
    assert cluster.node("overcloud-compute-2").address == "192.168.24.22"
    assert cluster.node("overcloud-controller-0").role == "Controller"


@pytest.mark.parametrize(
    ("name", "releases"), [("demo", "2024.1, ceph reef"), ("lab", "train, ceph nautilus")]
)  # demo: the real-services testbed cloud
def test_example_inventories_validate_with_their_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, releases: str, monkeypatch
) -> None:
    from lifecycle.cli.main import main

    shutil.copytree(ROOT / "inventories" / name, tmp_path / name)
    (tmp_path / name / "secrets.yaml").chmod(0o600)  # git does not keep file modes
    monkeypatch.setenv("HOME", str(tmp_path))  # the SSH keys the examples name, made private
    for key in (".lifecycle/testbed/id_ed25519", ".ssh/id_lab"):
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_text("key")
        (tmp_path / key).chmod(0o600)
    assert main(["validate", "-i", str(tmp_path / name)]) == 0
    out = capsys.readouterr().out
    assert f"cluster {name}: release {releases}" in out
    assert "ok: 0 warning(s)" in out
    assert "FAKE" not in out
    secrets = (ROOT / "inventories" / name / "secrets.yaml").read_text()
    passwords = [line for line in secrets.splitlines() if "password:" in line]
    assert passwords and all("FAKE" in line for line in passwords)  # obviously fake


def test_warnings_for_allowed_but_doubtful_inventories(tmp_path: Path) -> None:
    write(
        tmp_path,
        """cluster: w
release: train
roles:
  Storage: {services: [ceph-osd], aggregate: odd}
nodes:
  - {name: s0, role: Storage}
  - {name: s1, role: Storage}
""",
    )
    warnings = inventory_warnings(load_inventory(tmp_path))
    assert "role Storage has aggregate odd but runs no nova-compute" in warnings
    assert any("all 2 ceph-osd hosts share failure domain 'default'" in w for w in warnings)


def test_deployment_instances_may_be_named_by_ironic_name(tmp_path: Path) -> None:
    write(tmp_path, "- name: Compute\n  count: 1\n  instances:\n  - name: node-7\n", "bm.yaml")
    write(
        tmp_path,
        "cluster: n\nrelease: train\nroles:\n  Compute: {services: [nova-compute]}\n"
        "baremetal_deployment: bm.yaml\n",
    )
    assert [n.name for n in load_inventory(tmp_path).nodes] == ["node-7"]
