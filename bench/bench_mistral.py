"""Mistral's per-task overhead: one ~500-step upgrade plan through a real Mistral and through the
embedded engine, both on the sim driver with zero simulated durations (so only overhead counts).

    python bench/bench_mistral.py                 # starts its own Mistral (lifecycle.mistral.lane)
    python bench/bench_mistral.py --url http://127.0.0.1:8989/v2   # a Mistral already running
    python bench/bench_mistral.py --computes 20   # a smaller plan

Prints the step count, both wall times, their ratio and Mistral's overhead per task (seconds),
the figure operators need to size a Mistral deployment. Needs root and rabbitmq-server when it
starts its own service (as the `mistral` lane does).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from lifecycle.drivers.sim import SimDriver
from lifecycle.execution.engine import Engine, EngineOptions
from lifecycle.execution.paths import open_journal
from lifecycle.execution.policies import PolicyTable
from lifecycle.execution.routing import Router
from lifecycle.execution.runs import start_run
from lifecycle.execution.states import RunState
from lifecycle.formats.inventory import load_inventory
from lifecycle.mistral.client import MistralClient
from lifecycle.mistral.export import WORKFLOW, export_plan
from lifecycle.model.cluster import Cluster
from lifecycle.planning.plan import Plan
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade

CONTROLLER = [
    "haproxy", "galera", "rabbitmq", "memcached", "keystone", "glance-api", "placement-api",
    "nova-api", "nova-conductor", "nova-scheduler", "neutron-server", "cinder-api", "horizon",
]  # fmt: skip


def write_inventory(where: Path, computes: int) -> Path:
    """A cloud of 3 controllers and `computes` hosts in two aggregates (max_unavailable 1 each:
    four steps per host, two chains rolling side by side)."""
    nodes = [
        {"name": f"ctl-{i}", "role": "Controller", "failure_domain": f"rack{i}"} for i in range(3)
    ]
    for i in range(computes):
        role = "ComputeHDD" if i % 2 else "ComputeSSD"
        nodes.append({"name": f"cmp-{i}", "role": role, "failure_domain": f"rack{i % 3}"})
    compute = ["nova-compute", "neutron-ovs-agent"]
    cluster = {
        "cluster": "bench",
        "release": "train",
        "roles": {
            "Controller": {"services": CONTROLLER},
            "ComputeHDD": {"services": compute, "aggregate": "hdd"},
            "ComputeSSD": {"services": compute, "aggregate": "ssd"},
        },
        "nodes": nodes,
        "policies": {"max_unavailable": {"default": 1}, "evacuate": "live-migrate", "canary": 1},
    }
    where.mkdir(parents=True, exist_ok=True)
    (where / "cluster.yaml").write_text(yaml.safe_dump(cluster, sort_keys=False))
    return where


def through_engine(plan: Plan, cluster: Cluster, state: Path) -> float:
    journal = open_journal(state, cluster.name)
    began = time.perf_counter()
    view = start_run(journal, plan, cluster)
    driver = SimDriver(state_dir=state, scale=0)
    engine = Engine(journal, plan, cluster, Router.single(driver), policies=PolicyTable(),
                    options=EngineOptions(poll_interval=0.01))  # fmt: skip
    view = engine.execute(view)
    elapsed = time.perf_counter() - began
    assert view.state is RunState.SUCCEEDED, view.state
    return elapsed


def through_mistral(client: MistralClient, plan: Plan, inventory: Path, state: Path) -> float:
    uploaded = client.put_workbook(export_plan(plan, inventory=str(inventory), drivers="sim"))
    inputs = {
        "inventory": str(inventory),
        "run_id": "bench",
        "drivers": "sim",
        "driver_options": {"sim": {"state_dir": str(state), "scale": 0}},
        "lock_dir": str(state / "locks"),
    }
    began = time.perf_counter()
    execution_id = client.start(f"{uploaded['name']}.{WORKFLOW}", inputs)
    execution = client.wait(execution_id, timeout=3600, poll=1.0)
    elapsed = time.perf_counter() - began
    assert execution["state"] == "SUCCESS", execution.get("state_info")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--computes", type=int, default=110, help="~4 steps per compute host")
    parser.add_argument("--url", help="a running Mistral API (.../v2) with lifecycle installed")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-mistral-"))
    inventory = write_inventory(work / "inventory", args.computes)
    cluster = load_inventory(inventory)
    plan = plan_upgrade(cluster, UpgradeIntent("ussuri"))
    print(f"plan: {len(plan.steps)} steps")

    engine_s = through_engine(plan, cluster, work / "engine")
    line("embedded engine (sim, scale 0)", engine_s, len(plan.steps))
    if args.url:
        mistral_s = through_mistral(MistralClient(args.url), plan, inventory, work / "mistral")
    else:
        from lifecycle.mistral.lane import running_mistral

        with running_mistral() as service:
            mistral_s = through_mistral(service.client, plan, inventory, work / "mistral")
    line("Mistral 23 (sim, scale 0)", mistral_s, len(plan.steps))
    per_task = (mistral_s - engine_s) / len(plan.steps)
    print(f"ratio Mistral / engine: {mistral_s / engine_s:.1f}x")
    print(f"Mistral overhead per task: {per_task:.3f} s")


def line(label: str, seconds: float, steps: int) -> None:
    print(f"{label:32} {seconds:8.2f} s  {seconds / steps:.4f} s/step")


if __name__ == "__main__":
    main()
