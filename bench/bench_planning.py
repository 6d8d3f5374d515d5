"""Planning speed and schedule quality.

    python bench/bench_planning.py            # all figures
    python bench/bench_planning.py --quick    # 100 and 1,000 nodes only

Prints: time to plan and verify clusters of 100, 1,000 and 10,000 nodes (with their services), the
growth ratio 10k/1k (n log n would be ~13x), makespan / lower_bound for the example inventories,
and the same figure for the naive schedule most tools use (TripleO's update_serial: 1: one node at
a time per role, roles one after another).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lifecycle.catalog import load_catalog
from lifecycle.model import Cluster, MaxUnavailable, NodeSpec, Policies, RoleSpec
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from lifecycle.planning.verifier import verify

CONTROLLER = (
    "haproxy",
    "galera",
    "rabbitmq",
    "memcached",
    "keystone",
    "glance-api",
    "placement-api",
    "nova-api",
    "nova-conductor",
    "nova-scheduler",
    "neutron-server",
    "cinder-api",
    "horizon",
    "ceph-mon",
    "ceph-mgr",
)


def synthetic(nodes: int) -> Cluster:
    """A cloud of `nodes` servers: 5 controllers, 2% networkers, 13% Ceph, the rest computes in
    aggregates of ~200 hosts, over 10 racks."""
    roles = [
        RoleSpec("Controller", CONTROLLER),
        RoleSpec("Networker", ("neutron-l3-agent", "neutron-dhcp-agent", "neutron-ovs-agent")),
        RoleSpec("CephStorage", ("ceph-osd",)),
    ]
    computes = nodes - 5 - nodes * 2 // 100 - nodes * 13 // 100
    aggregates = max(1, computes // 200)
    roles += [
        RoleSpec(f"Compute{a}", ("nova-compute", "neutron-ovs-agent"), aggregate=f"agg{a}")
        for a in range(aggregates)
    ]
    specs = [NodeSpec(f"ctl-{i}", "Controller", failure_domain=f"rack{i % 10}") for i in range(5)]
    specs += [
        NodeSpec(f"net-{i}", "Networker", failure_domain=f"rack{i % 10}")
        for i in range(nodes * 2 // 100)
    ]
    specs += [
        NodeSpec(f"osd-{i}", "CephStorage", failure_domain=f"rack{i % 10}")
        for i in range(nodes * 13 // 100)
    ]
    specs += [
        NodeSpec(f"cmp-{i}", f"Compute{i % aggregates}", failure_domain=f"rack{i % 10}")
        for i in range(computes)
    ]
    policies = Policies(
        max_unavailable=MaxUnavailable(1),
        aggregate_max_unavailable=tuple(
            (f"agg{a}", MaxUnavailable(None, 10.0)) for a in range(aggregates)
        ),
    )
    return Cluster(
        "synthetic", "train", tuple(roles), tuple(specs), policies, ceph_release="nautilus"
    )


def naive_makespan(cluster: Cluster) -> float:
    """update_serial: 1 -- every node alone, whole node at once, roles in sequence; computes are
    evacuated first; a health check after each node."""
    catalog = load_catalog()
    steps = catalog.step_durations
    total = steps["precheck"] + steps["postcheck"]
    for node in cluster.nodes:
        services = [
            catalog.services[s] for s in cluster.services_of(node) if not catalog.services[s].ceph
        ]
        if not services:
            continue
        total += sum(s.duration for s in services) + steps["health_gate"]
        if any(s.workloads for s in services):
            total += steps["evacuate_host"] + steps["enable_host"]
    return total


def timed(cluster: Cluster, intent: UpgradeIntent) -> tuple[float, int, int]:
    started = time.perf_counter()
    plan = plan_upgrade(cluster, intent)
    violations = verify(plan, cluster)
    return time.perf_counter() - started, len(plan.steps), len(violations)


def scale(sizes: list[int]) -> dict[int, float]:
    results = {}
    for n in sizes:
        cluster = synthetic(n)
        seconds, steps, bad = timed(cluster, UpgradeIntent("ussuri", "octopus"))
        results[n] = seconds
        print(
            f"plan+verify {len(cluster.nodes):>6} nodes: {seconds:7.3f} s  "
            f"({steps} steps, {bad} violations)"
        )
    if 1000 in results and 10000 in results:
        print(f"growth 10k/1k: {results[10000] / results[1000]:.1f}x (linear 10x, n log n ~13x)")
    return results


def quality() -> None:
    from lifecycle.formats.inventory import load_inventory

    root = Path(__file__).resolve().parents[1] / "inventories"
    for name in ("lab", "demo"):
        cluster = load_inventory(root / name)
        plan = plan_upgrade(cluster, UpgradeIntent(_next(cluster.release)))
        naive = naive_makespan(cluster)
        print(
            f"{name}: makespan {plan.makespan:.0f} s, lower bound {plan.lower_bound:.0f} s, "
            f"ratio {plan.makespan / plan.lower_bound:.3f}; naive update_serial=1 "
            f"{naive:.0f} s, ratio {naive / plan.lower_bound:.2f}; ours is "
            f"{naive / plan.makespan:.2f}x shorter"
        )


def _next(release: str) -> str:
    train = load_catalog().openstack
    return train.releases[train.get(release).index + 1].name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    scale([100, 1000] if args.quick else [100, 1000, 10000])
    quality()


if __name__ == "__main__":
    main()
