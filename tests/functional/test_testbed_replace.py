"""Replacing and removing nodes on a real testbed, through the CLI (issue 12's real part for a
compute and a Ceph OSD host).

The demo cloud with every service a stand-in (no testbed.yaml): its computes are the STAND-IN
nova-compute daemons (instances held in the daemon, moved by its /evacuate), its Ceph the
STAND-IN OSD map (lifecycle/testbed/ceph_osdmap.py: a copy on each monitor host, worked by the
ceph-osd-replace playbook, the ids reused by the replacement's deploy-service). One
testbed for the module, in 10.80-89; the tests run in file order and each starts from what the
one before left (the inventory edited after each replacement to name the new node, as
docs/replace.md asks of the operator). The demo's bmc lines are dropped (no Ironic here: nothing
to unprovision) and a fourth OSD host added (with three, replacing one is refused, rule `ceph`).

Wall time: 175 s for the module (up and deploy 51 s, compute replacement 54 s, OSD host 39 s,
compute removal 28 s), on 2 cores shared with four other helpers (load average 7-9); a quiet
machine does better.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lifecycle.testbed import manager
from lifecycle.testbed import state as st
from lifecycle.testbed.ports import service_ports
from tests.functional.testbed_host import free_prefix

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
LIFECYCLE = [sys.executable, "-m", "lifecycle"]

if os.geteuid() != 0 or not Path("/usr/sbin/sshd").exists():
    pytest.skip("the testbed needs root and openssh-server", allow_module_level=True)


@dataclass(frozen=True)
class Bed:
    state: Path
    inventory: Path
    prefix: str

    def env(self) -> dict[str, str]:
        return {**os.environ, "LIFECYCLE_STATE_DIR": str(self.state)}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*LIFECYCLE, *args], env=self.env(), cwd=REPO, capture_output=True, text=True
        )

    def ok(self, *args: str) -> str:
        done = self.cli(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def root(self, host: str) -> Path:
        tb = st.load(self.state)
        assert tb is not None
        return Path(tb.host(host).root)

    def address(self, host: str) -> str:
        tb = st.load(self.state)
        assert tb is not None
        return tb.host(host).address

    def compute(self, host: str, body: dict[str, Any] | None = None, path: str = "/") -> Any:
        """The stand-in nova-compute's own answer (GET / : instances, enabled; POST a body)."""
        port = service_ports()["nova-compute"]
        data = None if body is None else json.dumps(body).encode()
        url = f"http://{self.address(host)}:{port}{path}"
        request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())

    def where(self, hosts: tuple[str, ...]) -> dict[str, list[str]]:
        """Instance id -> the computes (of `hosts`, each answering) that hold it."""
        out: dict[str, list[str]] = {}
        for host in hosts:
            for instance in self.compute(host)["instances"]:
                out.setdefault(instance["id"], []).append(host)
        return out

    def rename(self, old: str, new: str, address: str) -> None:
        """The operator's edit after a replacement (docs/replace.md): the inventory names the
        new node where it named the old one."""
        cluster_yaml = self.inventory / "cluster.yaml"
        text = cluster_yaml.read_text().replace(f"name: {old}\n", f"name: {new}\n")
        text = text.replace(f"address: {self.address(old)}\n", f"address: {address}\n")
        cluster_yaml.write_text(text)

    def osdmap(self, mon: str) -> dict[str, Any]:
        """The stand-in OSD map of one monitor (lifecycle/testbed/ceph_osdmap.py)."""
        osdmap: dict[str, Any] = json.loads((self.root(mon) / "ceph-osdmap.json").read_text())
        return osdmap


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    root = tmp_path_factory.mktemp("testbed-replace")
    inventory = root / "inventory"
    shutil.copytree(REPO / "tests" / "data" / "demo-train", inventory)
    (inventory / "secrets.yaml").chmod(0o600)  # git does not keep the mode
    prefix = free_prefix(range(80, 90))  # a /24 of its own: coexists with other testbeds
    cluster_yaml = inventory / "cluster.yaml"
    # the testbed's hosts are namespaces with no BMC and no Ironic runs here: nothing to
    # unprovision (the demo's bmc lines are the Ironic lane's)
    text = cluster_yaml.read_text().replace("198.18.0.", prefix)
    text = "".join(line for line in text.splitlines(True) if "bmc:" not in line)
    # a fourth OSD host: with three, three replicas on distinct hosts cannot backfill off one,
    # and the planner refuses to replace it (rule `ceph`)
    fourth = "  - name: ceph-3\n    role: CephStorage\n    failure_domain: rack1\n"
    fourth += f"    address: {prefix}34\n"
    cluster_yaml.write_text(text.replace("policies:", fourth + "policies:", 1))
    state = root / "state"
    bed = Bed(state, inventory, prefix)
    try:
        bed.ok("testbed", "up", "-i", str(inventory), "--state-dir", str(state))
        bed.ok("testbed", "deploy", "-i", str(inventory))
        yield bed
    finally:
        manager.down(state)


MONS = ("ctl-0", "ctl-1", "ctl-2")


def test_replace_a_compute_holding_instances(bed: Bed) -> None:
    """cmp-ssd-0 (3 seeded instances and 2 a user boots) replaced by a new host cmp-ssd-9: its
    instances live-migrated inside aggregate ssd, none lost or doubled, its service record gone,
    cmp-ssd-9 enabled in ssd and empty of made-up instances."""
    booted = [{"id": f"user-vm-{i}", "origin": "cmp-ssd-0"} for i in range(2)]
    bed.compute("cmp-ssd-0", {"add": booted}, path="/instances")  # a user boots two
    computes = ("cmp-hdd-0", "cmp-hdd-1", "cmp-ssd-0", "cmp-ssd-1")
    before = bed.where(computes)
    held = {i for i, hosts in before.items() if hosts == ["cmp-ssd-0"]}
    assert len(held) == 5
    address = bed.prefix + "41"
    bed.ok("testbed", "add-host", "cmp-ssd-9", address)
    bed.ok(
        "run", "replace", "-i", str(bed.inventory), "--node", "cmp-ssd-0", "--with",
        "cmp-ssd-9", "--address", address, "--driver", "testbed", "--yes",
    )  # fmt: skip
    bed.rename("cmp-ssd-0", "cmp-ssd-9", address)  # first: the next tests plan from it

    after = bed.where(("cmp-hdd-0", "cmp-hdd-1", "cmp-ssd-1", "cmp-ssd-9"))
    assert set(after) == set(before)  # none lost, none made up (the new compute starts empty)
    assert all(len(hosts) == 1 for hosts in after.values()), after  # none doubled
    assert {after[i][0] for i in held} <= {"cmp-ssd-1", "cmp-ssd-9"}  # stayed in aggregate ssd
    moved = [i for i in bed.compute("cmp-ssd-1")["instances"] if i["id"] in held]
    assert moved and all(i.get("migrated") == "live-migrate" for i in moved)
    # the old compute's service record is deleted and its daemon stopped
    assert not (bed.root("cmp-ssd-0") / "services" / "nova-compute").exists()
    with pytest.raises(OSError):
        bed.compute("cmp-ssd-0")
    new = bed.compute("cmp-ssd-9")
    assert new["enabled"] and new["version"] == "train"
    aggregate = bed.root("cmp-ssd-9") / "services" / "nova-compute" / "aggregate"
    assert aggregate.read_text() == "ssd\n"
    assert bed.compute("cmp-ssd-1")["enabled"]  # the peer that took the instances is in service


def test_replace_a_ceph_osd_host(bed: Bed) -> None:
    """ceph-1 replaced by a new host ceph-9: ceph-9 holds ceph-1's OSD ids (destroyed, then
    reused), ceph-1 left the CRUSH map, every OSD up and in (active+clean), noout never set."""
    before = bed.osdmap("ctl-0")
    old_ids = sorted(i for i, o in before["osds"].items() if o["host"] == "ceph-1")
    assert len(old_ids) == 2
    address = bed.prefix + "42"
    bed.ok("testbed", "add-host", "ceph-9", address)
    bed.ok(
        "run", "replace", "-i", str(bed.inventory), "--node", "ceph-1", "--with", "ceph-9",
        "--address", address, "--driver", "testbed", "--yes",
    )  # fmt: skip
    bed.rename("ceph-1", "ceph-9", address)

    maps = [bed.osdmap(mon) for mon in MONS]
    assert maps[1:] == maps[:1] * 2  # every monitor has the same map
    osdmap = maps[0]
    assert sorted(i for i, o in osdmap["osds"].items() if o["host"] == "ceph-9") == old_ids
    assert set(osdmap["osds"]) == set(before["osds"])  # ids kept: none minted, none lost
    assert not [i for i, o in osdmap["osds"].items() if o["host"] == "ceph-1"]
    assert sorted(osdmap["crush_hosts"]) == ["ceph-0", "ceph-2", "ceph-3", "ceph-9"]
    down = {i: o for i, o in osdmap["osds"].items() if not (o["up"] and o["in"]) or o["destroyed"]}
    assert down == {}  # active+clean
    for mon in MONS:
        assert not (bed.root(mon) / "ceph-flag-noout").exists(), mon
    assert not (bed.root("ceph-1") / "services" / "ceph-osd").exists()


def test_remove_a_compute(bed: Bed) -> None:
    """Scale-in of cmp-hdd-1: its instances live-migrated to cmp-hdd-0 (the aggregate's only
    other host), its record deleted; removing a controller is refused (quorum, exit 3)."""
    refused = bed.cli("plan", "remove", "-i", str(bed.inventory), "--node", "ctl-1")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "quorum" in refused.stdout + refused.stderr

    before = bed.where(("cmp-hdd-0", "cmp-hdd-1"))
    held = {i for i, hosts in before.items() if hosts == ["cmp-hdd-1"]}
    assert held
    plan = bed.ok("plan", "remove", "-i", str(bed.inventory), "--node", "cmp-hdd-1")
    assert "evacuate/cmp-hdd-1" in plan and "deploy" not in plan
    bed.ok(
        "run", "remove", "-i", str(bed.inventory), "--node", "cmp-hdd-1", "--driver", "testbed",
        "--yes",
    )  # fmt: skip
    after = bed.where(("cmp-hdd-0",))
    assert set(after) == set(before)
    assert not (bed.root("cmp-hdd-1") / "services" / "nova-compute").exists()
    assert bed.compute("cmp-hdd-0")["enabled"]
