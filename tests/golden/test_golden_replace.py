"""Golden replacement plans of the lab cloud: a controller, a compute and a Ceph OSD host, each
rebuilt under its own name (the lab's servers have BMCs: unprovisioned, then redeployed).

Regenerate when a change is intended: LIFECYCLE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/golden
"""

from __future__ import annotations

import pytest

from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.plan_json import plan_to_json
from lifecycle.planning.render import render_tree
from lifecycle.planning.replace import ReplaceIntent, Replacement, plan_replace, replaced_cluster
from lifecycle.planning.verifier import verify
from tests.golden.test_golden_plans import HERE, ROOT, _check

NODES = ("ctl-1", "cmp-ssd-1", "ceph-1")


@pytest.mark.parametrize("node", NODES)
def test_golden_replacement(node: str) -> None:
    cluster = load_inventory(ROOT / "inventories" / "lab")
    plan = plan_replace(cluster, ReplaceIntent(node, Replacement(node)))
    assert verify(plan, replaced_cluster(cluster, plan)) == []
    _check(HERE / f"lab-replace-{node}.txt", render_tree(plan))
    _check(HERE / f"lab-replace-{node}.json", plan_to_json(plan) + "\n")
