"""The demo upgrade through a real Mistral 23 on the real testbed with the Ansible driver.

The testbed (namespaces, sshd, real daemons) is deployed with playbooks, then
`lifecycle run upgrade --driver testbed --engine mistral` hands the plan to Mistral, whose
executor (its own venv: ansible-playbook on its PATH, $LIFECYCLE_STATE_DIR in its environment)
runs every step over SSH. Needs root, openssh-server and RabbitMQ (.ci/lanes/mistral.sh installs
them). Only one testbed can be up per machine: `up` is retried while another one holds the
address, and only the testbed made here is taken down.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from lifecycle.execution.paths import open_journal
from lifecycle.execution.replay import replay
from lifecycle.execution.states import RunState, StepState
from lifecycle.formats.inventory import load_inventory
from lifecycle.mistral import backend
from lifecycle.mistral.lane import RABBIT_BIN, MistralService, running_mistral
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from lifecycle.testbed import manager
from lifecycle.testbed.monitor import Monitor

pytestmark = [pytest.mark.mistral, pytest.mark.timeout(1500)]

if os.geteuid() != 0 or not Path("/usr/sbin/sshd").exists():
    pytest.skip("the testbed needs root and openssh-server", allow_module_level=True)
if not (RABBIT_BIN / "rabbitmq-server").exists():
    pytest.skip("Debian's rabbitmq-server is not installed", allow_module_level=True)

from tests.functional.test_testbed import Bed, _expected, _versions  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WAIT_FOR_OTHER_TESTBED = 600.0  # seconds another engineer's or CI's testbed may hold the address


@dataclass(frozen=True)
class Lane:
    bed: Bed
    mistral: MistralService


def _up(inventory: Path, state: Path) -> None:
    """`testbed up`, waiting while another testbed (not ours: never taken down) holds 198.18.0.1."""
    deadline = time.monotonic() + WAIT_FOR_OTHER_TESTBED
    while True:
        up = subprocess.run(
            [sys.executable, "-m", "lifecycle", "testbed", "up", "-i", str(inventory)],
            env={**os.environ, "LIFECYCLE_STATE_DIR": str(state)},
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        if up.returncode == 0:
            return
        if "already holds" not in up.stderr or time.monotonic() > deadline:
            pytest.fail(f"testbed up failed:\n{up.stderr}")
        time.sleep(10)


@pytest.fixture(scope="module")
def lane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lane]:
    root = tmp_path_factory.mktemp("mistral-testbed")
    inventory = root / "inventory"
    shutil.copytree(REPO / "tests" / "data" / "demo-train", inventory)
    (inventory / "secrets.yaml").chmod(0o600)  # git does not keep the mode
    state = root / "state"
    # the executor's ansible driver finds the testbed (keys, known hosts) through this variable
    with running_mistral(env={"LIFECYCLE_STATE_DIR": str(state)}) as mistral:
        try:
            _up(inventory, state)
            yield Lane(Bed(load_inventory(inventory), state, inventory), mistral)
        finally:
            manager.down(state)


def test_demo_upgrade_on_the_testbed_runs_to_success_through_mistral(lane: Lane) -> None:
    bed = lane.bed
    deploy = bed.cli("testbed", "deploy", "-i", str(bed.inventory))
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert _versions(bed.cluster) == _expected(bed.cluster, "train")

    with Monitor(bed.cluster) as monitor:
        upgrade = bed.cli(
            "run", "upgrade", "-i", str(bed.inventory), "--to", "ussuri", "--driver", "testbed",
            "--engine", "mistral", "--mistral-url", lane.mistral.url, "-y",
        )  # fmt: skip
        assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr

    assert _versions(bed.cluster) == _expected(bed.cluster, "ussuri")
    observed = monitor.observation
    assert observed.violations == []
    assert observed.instances_at_end == observed.instances_at_start
    assert len(observed.instances_at_start) == 12

    plan = plan_upgrade(bed.cluster, UpgradeIntent("ussuri"))
    journal = open_journal(bed.state, bed.cluster.name)
    view = replay(journal, journal.runs()[-1].id)
    assert view.state is RunState.SUCCEEDED
    assert set(view.steps) == {s.id for s in plan.steps}
    assert {v.state for v in view.steps.values()} == {StepState.SUCCEEDED}
    execution = lane.mistral.client.execution(backend.execution_of(journal, view.run.id))
    assert execution["state"] == "SUCCESS"
    assert yaml.safe_load(execution["output"])["plan_digest"] == plan.digest
    tasks = lane.mistral.client.tasks(execution["id"])
    assert {t.name for t in tasks if t.state == "SUCCESS"} == set(view.steps)
