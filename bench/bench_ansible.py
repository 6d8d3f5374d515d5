"""Benchmark: one ansible-runner call per step, whatever the batch size (root, openssh-server).

1. A data-plane batch step (upgrade-node: nova-compute + neutron-ovs-agent, a real restart of both
   daemons on each host) on 10 testbed hosts at once, against the same step on 1 host. One runner
   call per batch keeps the ratio near 1 (target <= 1.5x); one call per host would make it ~10x,
   which the bench also measures. On 2 cores the hosts' own work (a module run and two daemon
   restarts each) competes for the CPU with Ansible, so the ratio grows with the machine's load.
   The same comparison with a light step (ceph-flag: one small file per host, no restart) shows
   the cost of the runner call itself, with little per-host work competing for the 2 cores.
2. With --demo: the whole demo upgrade (train -> ussuri) through `lifecycle run --driver testbed`,
   its wall time against the plan's makespan (the plan's estimates are for real clouds).

    sudo .venv/bin/python bench/bench_ansible.py [--repeat 3] [--demo]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lifecycle.drivers.ansible import AnsibleDriver
from lifecycle.drivers.base import StepContext
from lifecycle.formats.inventory import load_inventory
from lifecycle.model import Cluster, NodeSpec, RoleSpec
from lifecycle.planning.actions import make_step
from lifecycle.testbed import manager
from lifecycle.testbed.driver_site import ansible_driver

REPO = Path(__file__).resolve().parents[1]
SERVICES = ["nova-compute", "neutron-ovs-agent"]


def bench_cluster(hosts: int = 10) -> Cluster:
    roles = (RoleSpec("Compute", tuple(SERVICES), aggregate="bench"),)
    nodes = tuple(
        NodeSpec(f"cmp-{i}", "Compute", address=f"198.18.0.{101 + i}") for i in range(hosts)
    )
    return Cluster(name="bench", release="train", roles=roles, nodes=nodes)


def time_step(driver: AnsibleDriver, cluster: Cluster, nodes: tuple[str, ...], release: str,
              run: int, artifacts: Path, light: bool = False) -> float:  # fmt: skip
    params = (
        {"playbook": "ceph-flag", "flag": "noout", "state": "unset" if run % 2 else "set"}
        if light
        else {"playbook": "upgrade-node", "services": SERVICES, "release": release}
    )  # fmt: skip
    step = make_step(
        f"bench/{len(nodes)}-hosts/{run}{'-light' if light else ''}",
        "ansible.playbook",
        "data-plane",
        params,
        nodes=nodes,
    )
    ctx = StepContext(run_id="bench", cluster=cluster, artifacts_dir=artifacts)
    start = time.perf_counter()
    result = driver.run(step, ctx)
    elapsed = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"bench step failed: {result.error}")
    if not light:
        assert all(r["changed"] > 0 for r in result.hosts.values()), "every host must restart"
    return elapsed


def batch_ratio(workdir: Path, repeat: int) -> dict[str, float]:
    cluster = bench_cluster()
    state = workdir / "bench-state"
    manager.up(cluster, state)
    try:
        driver = ansible_driver(state)
        deploy = driver.run_playbook("deploy", cluster)
        if not deploy.ok:
            raise SystemExit(f"deploy failed: {deploy.error}")
        names = tuple(n.name for n in cluster.nodes)
        one, ten = [], []
        for run in range(repeat):  # a new version each call, so every call really restarts
            one.append(time_step(driver, cluster, names[:1], f"v{2 * run}", run, workdir / "a"))
            ten.append(time_step(driver, cluster, names, f"v{2 * run + 1}", run, workdir / "a"))
        light_one, light_ten = [], []
        for run in range(2 * repeat):  # set/unset in turn, so every call changes every host
            light_one.append(time_step(driver, cluster, names[:1], "", run, workdir / "a", True))
            light_ten.append(time_step(driver, cluster, names, "", run, workdir / "a", True))
        # the alternative this driver refuses: one runner call per host, one after the other
        start = time.perf_counter()
        for index, name in enumerate(names):
            time_step(driver, cluster, (name,), f"w{repeat}", 100 + index, workdir / "a")
        per_host = time.perf_counter() - start
        return {
            "one_host_s": statistics.median(one),
            "ten_hosts_s": statistics.median(ten),
            "ratio": statistics.median(ten) / statistics.median(one),
            "per_host_calls_s": per_host,
            "per_host_ratio": per_host / statistics.median(one),
            "light_one_s": statistics.median(light_one),
            "light_ten_s": statistics.median(light_ten),
            "light_ratio": statistics.median(light_ten) / statistics.median(light_one),
        }
    finally:
        manager.down(state)


def demo_upgrade(workdir: Path) -> dict[str, float]:
    inventory = workdir / "demo"
    shutil.copytree(REPO / "tests" / "data" / "demo-train", inventory)
    (inventory / "secrets.yaml").chmod(0o600)
    state = workdir / "demo-state"
    env = {**os.environ, "LIFECYCLE_STATE_DIR": str(state)}
    lifecycle = [sys.executable, "-m", "lifecycle"]
    cluster = load_inventory(inventory)
    manager.up(cluster, state)
    try:
        subprocess.run([*lifecycle, "testbed", "deploy", "-i", str(inventory)], env=env,
                       check=True, capture_output=True)  # fmt: skip
        plan = subprocess.run(
            [*lifecycle, "plan", "upgrade", "-i", str(inventory), "--to", "ussuri", "-f", "json"],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        makespan = float(json.loads(plan.stdout)["makespan"])
        start = time.perf_counter()
        subprocess.run(
            [*lifecycle, "run", "upgrade", "-i", str(inventory), "--to", "ussuri",
             "--driver", "testbed", "-y"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        wall = time.perf_counter() - start
        return {"wall_s": wall, "makespan_s": makespan, "wall_over_makespan": wall / makespan}
    finally:
        manager.down(state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--demo", action="store_true", help="also time the whole demo upgrade")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ansible-") as tmp:
        batch = batch_ratio(Path(tmp), args.repeat)
        print(
            f"upgrade-node batch step: 1 host {batch['one_host_s']:.2f}s, "
            f"10 hosts {batch['ten_hosts_s']:.2f}s -> ratio {batch['ratio']:.2f}x "
            f"(target <= 1.5x; median of {args.repeat})"
        )
        print(
            f"light ceph-flag step: 1 host {batch['light_one_s']:.2f}s, 10 hosts "
            f"{batch['light_ten_s']:.2f}s -> ratio {batch['light_ratio']:.2f}x"
        )
        print(
            f"same 10 hosts, one runner call per host: {batch['per_host_calls_s']:.2f}s -> "
            f"ratio {batch['per_host_ratio']:.2f}x (what one call per batch avoids)"
        )
        if args.demo:
            demo = demo_upgrade(Path(tmp))
            print(
                f"demo upgrade train->ussuri: wall {demo['wall_s']:.0f}s, plan makespan "
                f"{demo['makespan_s']:.0f}s -> wall/makespan {demo['wall_over_makespan']:.3f}"
            )


if __name__ == "__main__":
    main()
