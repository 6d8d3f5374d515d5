"""Real Ironic, emulated Redfish BMCs: inspection gives the facts profiles match on.

With LIFECYCLE_RECORD_INSPECTION=1 the inventories are (re)written to tests/data/inspection/,
which the unit tests of profile matching read; otherwise the live inventories must still give
the recorded facts, so the recorded data stays what a real Ironic returns.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lifecycle.drivers.baremetal import BaremetalDriver
from lifecycle.drivers.base import StepContext
from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.profiles import load_profiles
from lifecycle.planning.plan import Step, freeze_params
from lifecycle.planning.profiles import facts_from_inventory, match_node
from lifecycle.testbed.ironic import BMC_USER, KINDS, IronicTestbed, machine, running

pytestmark = pytest.mark.ironic

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "inspection"
PASSWORD = "inspect-Pa55-9f2c"
EXPECTED = {
    "ssd": "compute-ssd",
    "hdd": "compute-hdd",
    "mixed": "compute-hdd",
    "control": "control",
    "ceph": "ceph-storage",
    "networker": "networker",
    "small": None,
}


@pytest.fixture(scope="module")
def ironic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IronicTestbed]:
    machines = [machine(kind, 0, name=f"rec-{kind}") for kind in sorted(KINDS)]
    with running(machines, PASSWORD, tmp_path_factory.mktemp("ironic")) as testbed:
        yield testbed


def _inspect(driver: BaremetalDriver, ironic: IronicTestbed, kind: str) -> dict:
    m = machine(kind, 0, name=f"rec-{kind}")
    ctx = StepContext(
        run_id="rec",
        cluster=load_inventory(ROOT / "tests" / "data" / "demo-train"),
        secrets={m.name: {"username": BMC_USER, "password": PASSWORD}},
    )
    enroll = Step(
        id=f"enroll/{m.name}", action="baremetal.enroll", phase="enroll", nodes=(m.name,),
        params=freeze_params({"driver": "redfish", "bmc_address": ironic.redfish_url,
                              "system_id": f"/redfish/v1/Systems/{m.uuid}",
                              "credentials": m.name, "macs": list(m.macs)}),
    )  # fmt: skip
    inspect = Step(
        id=f"inspect/{m.name}", action="baremetal.inspect", phase="inspect", nodes=(m.name,)
    )
    for step in (enroll, inspect):
        result = driver.run(step, ctx)
        assert result.ok, result.error
    return driver.inventory(m.name)


@pytest.fixture(scope="module")
def inventories(ironic: IronicTestbed) -> dict[str, dict]:
    driver = BaremetalDriver(endpoint=ironic.ironic_url, poll_interval=0.2)
    with ThreadPoolExecutor(4) as pool:
        found = dict(
            zip(
                sorted(KINDS),
                pool.map(lambda k: _inspect(driver, ironic, k), sorted(KINDS)),
                strict=True,
            )
        )
    driver.close()
    if os.environ.get("LIFECYCLE_RECORD_INSPECTION") == "1":
        DATA.mkdir(parents=True, exist_ok=True)
        for kind, inventory in found.items():
            body = {"inventory": inventory["inventory"]}  # plugin_data repeats the interfaces
            (DATA / f"{kind}.json").write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
    return found


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_live_inspection_gives_the_recorded_facts(inventories: dict[str, dict], kind: str) -> None:
    recorded = json.loads((DATA / f"{kind}.json").read_text())
    assert facts_from_inventory(inventories[kind]) == facts_from_inventory(recorded)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_inspected_servers_match_their_profile(inventories: dict[str, dict], kind: str) -> None:
    verdict = match_node(kind, facts_from_inventory(inventories[kind]), load_profiles())
    chosen = verdict.chosen
    assert (chosen.name if chosen else None) == EXPECTED[kind], verdict.explain()


def test_redfish_media_type_is_what_profiles_see(inventories: dict[str, dict]) -> None:
    ssd = inventories["ssd"]["inventory"]["disks"]
    hdd = inventories["hdd"]["inventory"]["disks"]
    assert [d["rotational"] for d in ssd] == [False, False]
    assert [d["rotational"] for d in hdd] == [True, True]
