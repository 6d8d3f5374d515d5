"""How fast the verifier proves a plan, and what it costs planning.

    python bench/bench_verify.py                 # 1k and 10k nodes, against merge-base(HEAD, main)
    python bench/bench_verify.py --ref main      # against another revision
    python bench/bench_verify.py --no-compare    # this tree only

Prints, for synthetic clouds of 1,000 and 10,000 nodes (bench_planning.synthetic): the time to
verify the planner's plan (the DAG proof alone, and the whole verifier with the schedule replay),
the growth ratio 10k/1k; then, when comparing, plan and plan+verify times of this tree and of
the reference revision (exported with `git archive` into a temporary folder and timed in a
subprocess, same machine, same run), with the ratios this/reference. Best of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1000, 10000)

# Runs in a subprocess against one tree: plan and plan+verify times per size, as JSON.
PROBE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
from bench_planning import synthetic
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from lifecycle.planning.verifier import verify
out = {}
for n in json.loads(sys.argv[3]):
    cluster = synthetic(n)
    intent = UpgradeIntent("ussuri", "octopus")
    verify(plan_upgrade(cluster, intent), cluster)  # warm caches (catalog) before timing
    best_plan = best_all = float("inf")
    for _ in range(int(sys.argv[4])):
        t0 = time.perf_counter()
        plan = plan_upgrade(cluster, intent)
        t1 = time.perf_counter()
        verify(plan, cluster)
        t2 = time.perf_counter()
        best_plan, best_all = min(best_plan, t1 - t0), min(best_all, t2 - t0)
    out[n] = {"plan": best_plan, "plan_verify": best_all, "steps": len(plan.steps)}
print(json.dumps(out))
"""


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def verify_times(repeat: int) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_planning import synthetic

    from lifecycle.catalog import load_catalog
    from lifecycle.planning.any_order import AnyOrder
    from lifecycle.planning.timeline import Replay
    from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
    from lifecycle.planning.verifier import verify

    proof, whole = {}, {}
    for n in SIZES:
        cluster = synthetic(n)
        plan = plan_upgrade(cluster, UpgradeIntent("ussuri", "octopus"))
        catalog = load_catalog()

        def prove(plan=plan, cluster=cluster, catalog=catalog) -> None:
            AnyOrder(plan, Replay(plan, cluster, catalog)).check()

        proof[n] = best(prove, repeat)
        whole[n] = best(lambda plan=plan, cluster=cluster: verify(plan, cluster), repeat)
        bad = len(verify(plan, cluster))
        print(
            f"verify {n:>6} nodes ({len(plan.steps)} steps, {bad} violations): "
            f"DAG proof {proof[n] * 1000:7.1f} ms, whole verifier {whole[n] * 1000:7.1f} ms"
        )
    a, b = SIZES
    print(
        f"growth {b // 1000}k/{a // 1000}k: DAG proof {proof[b] / proof[a]:.1f}x, "
        f"whole verifier {whole[b] / whole[a]:.1f}x"
    )


def probe(tree: Path, repeat: int) -> dict[str, dict[str, float]]:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            str(tree),
            str(tree / "bench"),
            json.dumps(SIZES),
            str(repeat),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def compare(ref: str, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "lifecycle", "bench"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        before = probe(Path(tmp), repeat)
    after = probe(ROOT, repeat)
    for n in SIZES:
        old, new = before[str(n)], after[str(n)]
        print(
            f"{n:>6} nodes: plan {old['plan']:.3f} s ({ref[:10]}) -> {new['plan']:.3f} s "
            f"(x{new['plan'] / old['plan']:.2f}); plan+verify {old['plan_verify']:.3f} s -> "
            f"{new['plan_verify']:.3f} s (x{new['plan_verify'] / old['plan_verify']:.2f}); "
            f"steps {old['steps']:.0f} -> {new['steps']:.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--ref", help="git revision to compare with (default: where this branch left main)"
    )
    parser.add_argument("--no-compare", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    verify_times(args.repeat)
    if not args.no_compare:
        ref = (
            args.ref
            or subprocess.run(
                ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        compare(ref, args.repeat)


if __name__ == "__main__":
    main()
