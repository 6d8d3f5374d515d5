"""Inspection of N emulated servers on a real Ironic: the engine's bounded concurrency against
one server at a time.

    .venv/bin/python bench/bench_inspection.py [--servers 20] [--concurrency 4]

Starts Ironic and the Redfish emulator (see lifecycle.testbed.ironic) with 2N servers, runs the
enroll + inspect steps of a scale-out plan for N of them through the engine with concurrency 1,
and for the other N with `--concurrency`, and prints both times and their ratio. Ironic's own
conductor workers bound the gain: it is a ratio for this machine, never an assertion.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from lifecycle.drivers.baremetal import BaremetalDriver
from lifecycle.execution.engine import Engine, EngineOptions
from lifecycle.execution.paths import open_journal
from lifecycle.execution.routing import Router
from lifecycle.execution.runs import start_run
from lifecycle.execution.states import StepState
from lifecycle.formats.nodes_file import NewNode
from lifecycle.formats.profiles import load_profiles
from lifecycle.model import BmcSpec, Cluster, RoleSpec
from lifecycle.planning.plan import Plan
from lifecycle.planning.scale_out import plan_scale_out
from lifecycle.planning.scheduler import build_plan
from lifecycle.testbed.ironic import BMC_USER, IronicTestbed, Machine, machine, running

PASSWORD = "bench-bmc-password"
CLUSTER = Cluster(
    "bench",
    "train",
    (RoleSpec("ComputeSSD", ("nova-compute",), aggregate="ssd", profile="compute-ssd"),),
    (),
)


def inspection_plan(machines: list[Machine], ironic: IronicTestbed) -> Plan:
    nodes = [
        NewNode(m.name, BmcSpec("redfish", ironic.redfish_url, f"/redfish/v1/Systems/{m.uuid}",
                                m.name), m.macs, "compute-ssd")
        for m in machines
    ]  # fmt: skip
    full = plan_scale_out(CLUSTER, nodes, load_profiles())
    keep = [s for s in full.steps if s.action in ("baremetal.enroll", "baremetal.inspect")]
    return build_plan("inspect", CLUSTER.name, keep)


def timed_run(plan: Plan, ironic: IronicTestbed, concurrency: int, work: Path) -> float:
    names = [s.nodes[0] for s in plan.steps if s.action == "baremetal.enroll"]
    secrets = {n: {"username": BMC_USER, "password": PASSWORD} for n in names}
    driver = BaremetalDriver(endpoint=ironic.ironic_url, poll_interval=0.2)
    journal = open_journal(work, f"bench-{concurrency}")
    view = start_run(journal, plan, CLUSTER)
    engine = Engine(
        journal, plan, CLUSTER, Router.single(driver),
        options=EngineOptions(concurrency=concurrency, poll_interval=0.05), secrets=secrets,
    )  # fmt: skip
    started = time.perf_counter()
    view = engine.execute(view)
    elapsed = time.perf_counter() - started
    journal.close()
    driver.close()
    failed = [sid for sid, v in view.steps.items() if v.state != StepState.SUCCEEDED]
    if failed:
        raise SystemExit(f"steps did not succeed: {failed[:5]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--bmc-latency", type=float, default=0.0, help="seconds added to every Redfish answer"
    )
    args = parser.parse_args()
    one = [machine("ssd", i, f"one-{i}") for i in range(args.servers)]
    many = [machine("hdd", i, f"many-{i}") for i in range(args.servers)]
    with (
        tempfile.TemporaryDirectory() as tmp,
        running(one + many, PASSWORD, bmc_latency=args.bmc_latency) as ironic,
    ):
        serial = timed_run(inspection_plan(one, ironic), ironic, 1, Path(tmp))
        parallel = timed_run(inspection_plan(many, ironic), ironic, args.concurrency, Path(tmp))
    print(
        json.dumps(
            {
                "servers": args.servers,
                "bmc_latency_s": args.bmc_latency,
                "one_at_a_time_s": round(serial, 1),
                f"concurrency_{args.concurrency}_s": round(parallel, 1),
                "speedup": round(serial / parallel, 2),
                "load_average_1m": round(os.getloadavg()[0], 1),  # other work on the machine
            }
        )
    )


if __name__ == "__main__":
    main()
