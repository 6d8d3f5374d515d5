"""Engine overhead: 10,000 no-op steps through the engine and the journal, against calling the
driver directly; and the time to rebuild a 10,000-step run's state for resume.

    .venv/bin/python bench/bench_engine.py [--steps N] [--width W] [--concurrency C]

Prints steps per second, the overhead per step in ms (target < 2 ms) and the resume rebuild time
(target < 1 s). Figures are for this machine; compare them as ratios, never assert on them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lifecycle.drivers.base import Driver, StepContext, StepResult
from lifecycle.execution.controller import Readiness
from lifecycle.execution.engine import Engine, EngineOptions
from lifecycle.execution.journal import Journal, MemoryJournal
from lifecycle.execution.policies import PolicyTable
from lifecycle.execution.replay import replay
from lifecycle.execution.routing import Router
from lifecycle.execution.runs import start_run
from lifecycle.execution.sqlite_journal import SqliteJournal
from lifecycle.formats.plan_json import plan_from_json
from lifecycle.model.cluster import Cluster, NodeSpec, RoleSpec
from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.scheduler import build_plan


class Noop(Driver):
    name = "noop"

    def run(self, step: Step, ctx: StepContext) -> StepResult:
        return StepResult(ok=True)


def cluster() -> Cluster:
    return Cluster("bench", "train", (RoleSpec("R", ("x",)),), (NodeSpec("n0", "R"),))


def plan(n: int, width: int) -> Plan:
    steps = [
        Step(
            f"s{i}",
            "noop.run",
            "p",
            depends_on=(f"s{i - width}",) if i >= width else (),
            duration=1.0,
        )
        for i in range(n)
    ]
    return build_plan("bench", "bench", steps)


def direct(p: Plan, c: Cluster) -> float:
    driver, ctx = Noop(), StepContext(run_id="direct", cluster=c)
    t0 = time.perf_counter()
    for step in p.steps:
        driver.run(step, ctx)
    return time.perf_counter() - t0


def through_engine(journal: Journal, p: Plan, c: Cluster, concurrency: int) -> tuple[float, str]:
    view = start_run(journal, p, c)
    engine = Engine(
        journal,
        p,
        c,
        Router.single(Noop()),
        policies=PolicyTable(),
        options=EngineOptions(concurrency=concurrency),
    )
    t0 = time.perf_counter()
    final = engine.execute(view)
    elapsed = time.perf_counter() - t0
    assert final.state.value == "succeeded", final.reason
    return elapsed, view.run.id


def rebuild(journal: Journal, run_id: str) -> tuple[float, float]:
    """What resume does before running anything: read the plan back from the journal and check
    its digest; replay the transitions to a state and index which steps are ready. Returns
    (seconds for the plan, seconds for the state)."""
    t0 = time.perf_counter()
    stored = plan_from_json(journal.run(run_id).plan_json)
    assert stored.digest == journal.run(run_id).plan_digest
    t1 = time.perf_counter()
    view = replay(journal, run_id, stored)
    Readiness(stored, {sid: s.state for sid, s in view.steps.items()})
    return t1 - t0, time.perf_counter() - t1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=8, help="independent chains")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    c, p = cluster(), plan(args.steps, args.width)
    n = len(p.steps)
    base = direct(p, c)
    print(f"{n} no-op steps, {args.width} chains, concurrency {args.concurrency}")
    print(f"  driver called directly: {base * 1e3:8.1f} ms ({base / n * 1e6:.1f} us/step)")
    with tempfile.TemporaryDirectory() as tmp:
        backends = [
            ("memory journal", MemoryJournal()),
            ("sqlite WAL, synchronous=NORMAL", SqliteJournal(Path(tmp) / "normal.db", "NORMAL")),
            ("sqlite WAL, synchronous=FULL", SqliteJournal(Path(tmp) / "full.db", "FULL")),
        ]
        for label, journal in backends:
            took, run_id = through_engine(journal, p, c, args.concurrency)
            per_step = (took - base) / n * 1e3
            plan_s, state_s = rebuild(journal, run_id)
            print(
                f"  {label:<32} {n / took:6.0f} steps/s  overhead {per_step:.3f} ms/step"
                f"  resume: state {state_s:.3f} s + plan {plan_s:.3f} s"
                f" = {state_s + plan_s:.3f} s"
            )
            journal.close()


if __name__ == "__main__":
    main()
