"""Planning from an observed state: what it costs next to planning from the inventory alone.

    python bench/bench_observed.py            # 1,000 and 10,000 nodes
    python bench/bench_observed.py --quick    # 1,000 nodes only

For each size: plan (and verify) the synthetic cluster of bench_planning.py from the inventory,
then from an observation in which half the compute hosts already run the target (an aborted
upgrade) and one compute is down. Prints the seconds of each and their ratio (observed / plain),
and how many steps the plan of what is left keeps.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_planning import synthetic

from lifecycle.model.observed import (
    REACHABLE,
    UNREACHABLE,
    InstanceObservation,
    NodeObservation,
    ObservedState,
)
from lifecycle.planning.observed import verification_view
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from lifecycle.planning.verifier import verify

DATA = ("nova-compute", "neutron-ovs-agent")


def aborted(cluster, target: str) -> ObservedState:
    """Every second compute already at `target`; the last compute down."""
    computes = list(cluster.members.get("nova-compute", ()))
    done = set(computes[::2])
    down = computes[-1] if computes else ""
    instances = tuple(
        InstanceObservation(
            service,
            node,
            target if node in done and service in DATA else str(cluster.release),
        )
        for service, nodes in cluster.members.items()
        if not service.startswith("ceph-")
        for node in nodes
    )
    nodes = tuple(
        NodeObservation(n.name, UNREACHABLE if n.name == down else REACHABLE) for n in cluster.nodes
    )
    return ObservedState(cluster.name, "bench", nodes=nodes, instances=instances)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    sizes = [1000] if parser.parse_args().quick else [1000, 10000]
    intent = UpgradeIntent("ussuri")
    for size in sizes:
        cluster = synthetic(size)
        started = time.perf_counter()
        plain = plan_upgrade(cluster, intent)
        assert verify(plain, cluster) == []
        plain_s = time.perf_counter() - started
        observed = aborted(cluster, intent.target)
        started = time.perf_counter()
        rest = plan_upgrade(cluster, intent, observed=observed, force=True)
        violations = verify(rest, verification_view(cluster, rest))
        rest_s = time.perf_counter() - started
        print(
            f"{size:>6} nodes: plain {plain_s:.2f}s ({len(plain.steps)} steps), from the"
            f" observation {rest_s:.2f}s ({len(rest.steps)} steps), ratio {rest_s / plain_s:.2f};"
            f" violations {len(violations)}"
        )


if __name__ == "__main__":
    main()
