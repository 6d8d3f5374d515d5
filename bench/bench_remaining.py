"""The plan of what is left: its cost against planning itself.

    python bench/bench_remaining.py            # 1,000 and 10,000 nodes
    python bench/bench_remaining.py --quick    # 1,000 nodes only

For a synthetic cluster (bench_planning.synthetic) half-way through an upgrade (every step of the
first half of the plan done), prints the time to plan, to cut the plan down to what is left
(lifecycle.planning.remaining) and to verify it from the instances' recorded releases, as ratios
to planning: what `lifecycle plan upgrade` adds when a recorded state exists.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_planning import synthetic

from lifecycle.catalog import load_catalog
from lifecycle.planning import actions as act
from lifecycle.planning.remaining import InPlace, remaining
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from lifecycle.planning.verifier import verify


def half_done(nodes: int) -> None:
    catalog = load_catalog()
    cluster = synthetic(nodes)
    start = time.perf_counter()
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"), catalog)
    planned = time.perf_counter() - start
    at: dict[str, str] = {}
    for step in plan.steps[: len(plan.steps) // 2]:
        for text in step.upgrades:
            release = act.expected_release(step, text.partition("@")[0], False)
            at[text] = str(release)
    start = time.perf_counter()
    left = remaining(plan, InPlace(at=at), catalog)
    cut = time.perf_counter() - start
    assert left is not None
    start = time.perf_counter()
    violations = verify(left, cluster, catalog, initial=at)
    checked = time.perf_counter() - start
    print(
        f"{nodes:>6} nodes: {len(plan.steps)} steps, {len(left.steps)} left;"
        f" remaining/plan {cut / planned:.2f}x, verify-left/plan {checked / planned:.2f}x,"
        f" violations {len(violations)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    sizes = [1000] if parser.parse_args().quick else [1000, 10000]
    for nodes in sizes:
        half_done(nodes)


if __name__ == "__main__":
    main()
