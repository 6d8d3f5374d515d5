"""Golden plans: the example inventories' plans, checked as text and as JSON.

A change in planning shows up here as a readable diff. When the change is intended, regenerate:
    LIFECYCLE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/golden
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.plan_json import plan_to_json
from lifecycle.planning.deploy import DeployIntent, plan_deploy
from lifecycle.planning.render import render_tree
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from lifecycle.planning.verifier import verify

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "data"
CASES = {
    "demo-ussuri": ("tests/data/demo-train", UpgradeIntent("ussuri")),
    "demo-victoria-octopus": ("tests/data/demo-train", UpgradeIntent("victoria", "octopus")),
    "lab-ussuri": ("inventories/lab", UpgradeIntent("ussuri")),
    "lab-wallaby-pacific": ("inventories/lab", UpgradeIntent("wallaby", "pacific")),
}


def _check(path: Path, text: str) -> None:
    if os.environ.get("LIFECYCLE_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with LIFECYCLE_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{path.name} changed; see the diff above"


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_plan(case: str) -> None:
    inventory, intent = CASES[case]
    cluster = load_inventory(ROOT / inventory)
    plan = plan_upgrade(cluster, intent)
    assert verify(plan, cluster) == []
    _check(HERE / f"{case}.txt", render_tree(plan))
    _check(HERE / f"{case}.json", plan_to_json(plan) + "\n")


DEPLOY_CASES = {
    "demo-deploy": ("inventories/demo", DeployIntent()),
    "lab-deploy": ("inventories/lab", DeployIntent()),
}


@pytest.mark.parametrize("case", sorted(DEPLOY_CASES))
def test_golden_deploy_plan(case: str) -> None:
    inventory, intent = DEPLOY_CASES[case]
    cluster = load_inventory(ROOT / inventory)
    plan = plan_deploy(cluster, intent)
    assert verify(plan, cluster) == []
    _check(HERE / f"{case}.txt", render_tree(plan))
    _check(HERE / f"{case}.json", plan_to_json(plan) + "\n")
