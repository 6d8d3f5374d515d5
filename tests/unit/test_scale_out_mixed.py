"""Field case scale-out-mixed: new Ceph OSD and mon hosts are gated at the Ceph release.

The lab runs OpenStack train beside Ceph nautilus. A scale-out that adds a compute, an OSD host
and a controller (which carries ceph-mon and ceph-mgr) must expect each new daemon at its own
release train, as the deploy-node playbook installs them; expecting `train` from a Ceph daemon
failed every health gate of a Ceph-carrying host."""

from __future__ import annotations

import shutil
from pathlib import Path

from lifecycle.cli.main import main
from lifecycle.drivers.sim import read_state
from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.nodes_file import load_nodes_file
from lifecycle.formats.profiles import load_profiles
from lifecycle.planning.scale_out import plan_scale_out
from tests.unit.fieldcase_support import ROOT, copy_cases

NODES = """\
- {name: cmp-ssd-30, pm_type: ipmi, pm_addr: 198.19.8.30, pm_user: admin, pm_password: FAKE,
   mac: ["52:54:00:bb:00:30"], capabilities: "profile:compute-ssd", failure_domain: rack1}
- {name: ceph-32, pm_type: ipmi, pm_addr: 198.19.8.32, pm_user: admin, pm_password: FAKE,
   mac: ["52:54:00:bb:00:32"], capabilities: "profile:ceph-storage", failure_domain: rack3}
- {name: ctl-33, pm_type: ipmi, pm_addr: 198.19.8.33, pm_user: admin, pm_password: FAKE,
   mac: ["52:54:00:bb:00:33"], capabilities: "profile:control", failure_domain: rack1}
"""


def _lab(tmp_path: Path) -> Path:
    lab = tmp_path / "lab"
    shutil.copytree(ROOT / "inventories" / "lab", lab)
    (lab / "secrets.yaml").chmod(0o600)
    (tmp_path / "nodes.yaml").write_text(NODES)
    (tmp_path / "nodes.yaml").chmod(0o600)  # it holds BMC passwords
    return lab


def _run(lab: Path, nodes: Path, state: Path) -> int:
    args = ["run", "scale-out", "-i", str(lab), "--nodes", str(nodes), "-y", "--no-progress"]
    return main([*args, "--driver", "sim", "--sim-scale", "0", "--state-dir", str(state)])


def test_health_gates_name_the_ceph_release_for_ceph_daemons(tmp_path) -> None:
    lab = _lab(tmp_path)
    cluster = load_inventory(lab / "cluster.yaml")
    nodes, _ = load_nodes_file(tmp_path / "nodes.yaml")
    plan = plan_scale_out(cluster, nodes, load_profiles(ROOT / "hardware_profiles"))
    steps = {s.id: s for s in plan.steps}
    for node in ("ceph-32", "ctl-33"):
        for kind in ("health", "deploy-node"):
            step = steps[f"{kind}/{node}"]
            assert (step.param("release"), step.param("ceph_release")) == ("train", "nautilus")
    # a compute carries no Ceph daemon: its steps say nothing of Ceph
    assert steps["health/cmp-ssd-30"].param("ceph_release") is None


def test_mixed_scale_out_runs_green_on_the_sim(tmp_path, capsys) -> None:
    lab = _lab(tmp_path)
    assert _run(lab, tmp_path / "nodes.yaml", tmp_path / "state") == 0
    assert "succeeded" in capsys.readouterr().out
    versions = read_state(tmp_path / "state", "lab")["versions"]
    assert versions["ceph-osd@ceph-32"] == versions["ceph-mon@ctl-33"] == "nautilus"
    assert versions["galera@ctl-33"] == versions["nova-compute@cmp-ssd-30"] == "train"


def test_field_case_scale_out_mixed(tmp_path, capsys) -> None:
    cases = copy_cases(tmp_path)
    code = _run(cases / "lab", cases / "scale-out-mixed" / "nodes.yaml", tmp_path / "state")
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
