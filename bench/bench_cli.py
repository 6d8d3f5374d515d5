"""The whole `lifecycle` command, as an operator waits for it: a fresh process each time.

    python bench/bench_cli.py                       # every case, this tree
    python bench/bench_cli.py --quick               # 1k nodes, the 10k-step plan, --help
    python bench/bench_cli.py --tree /tmp/base --tree .   # the same cases on two trees, with ratios
    python bench/bench_cli.py --profile 10k         # only where one in-process run spends its time

Cases: `lifecycle plan upgrade -f json -o FILE` for synthetic clouds of 1k, 10k and 50k nodes
(bench_planning.py's generator, written as cluster.yaml), a ~10k-step plan (2,750 nodes, one host
of each aggregate at a time), `lifecycle --help`, and `lifecycle resume` of a ~10k-step run whose
last step failed (the run made by the last tree given; resumed until only that step is left).
Each tree is byte-compiled first (an installed lifecycle has its bytecode). Each case runs 3
times; CPU (user+sys, from getrusage(RUSAGE_CHILDREN) deltas), wall as min/median/max, and peak
RSS; then where the time goes (cProfile of one in-process run of
the 10k-node and 10k-step cases: phases, imports, self time by package). Figures are for this
machine: compare trees as ratios measured in one run, never assert on them. The machine's load
average is printed too.
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_planning import synthetic

from lifecycle.model import Cluster, MaxUnavailable

TARGET = ("--to", "ussuri", "--ceph-to", "octopus")
RUNS = 3


# --- inventories --------------------------------------------------------------------------------


def small_batches(nodes: int) -> Cluster:
    """The synthetic cloud with one compute host of each aggregate at a time: ~3.5 steps a node."""
    cluster = synthetic(nodes)
    one = tuple((name, MaxUnavailable(1)) for name, _ in cluster.policies.aggregate_max_unavailable)
    return replace(cluster, policies=replace(cluster.policies, aggregate_max_unavailable=one))


def write_inventory(cluster: Cluster, directory: Path) -> Path:
    """cluster.yaml of `cluster`, written by hand (PyYAML's dumper would take longer than the
    command being measured)."""
    directory.mkdir(parents=True, exist_ok=True)
    out = [
        f"cluster: {cluster.name}",
        f"release: {cluster.release}",
        f"ceph_release: {cluster.ceph_release}",
        "roles:",
    ]
    for role in cluster.roles:
        out.append(f"  {role.name}:")
        out.append(f"    services: [{', '.join(role.services)}]")
        if role.aggregate:
            out.append(f"    aggregate: {role.aggregate}")
    out.append("nodes:")
    for i, node in enumerate(cluster.nodes):
        out.append(f"  - name: {node.name}")
        out.append(f"    role: {node.role}")
        out.append(f"    failure_domain: {node.failure_domain}")
        out.append(f"    address: 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    policies = cluster.policies
    out.append("policies:")
    out.append(f"  max_unavailable: {{default: {policies.max_unavailable}, aggregates: {{")
    out.append(
        ", ".join(f"{name}: {_yaml(value)}" for name, value in policies.aggregate_max_unavailable)
        + "}}"
    )
    path = directory / "cluster.yaml"
    path.write_text("\n".join(out) + "\n")
    return directory


def _yaml(value: MaxUnavailable) -> str:
    return f'"{value}"' if value.percent is not None else str(value)


# --- running a command --------------------------------------------------------------------------


def run_once(tree: Path, argv: list[str]) -> tuple[float, float]:
    """One `python -m lifecycle ARGV` with `tree` first on the path: (CPU, wall) in seconds,
    CPU as user + sys from getrusage(RUSAGE_CHILDREN) deltas; fails loudly on exit != 0."""
    environ = dict(os.environ, PYTHONPATH=str(tree))
    environ.pop("LIFECYCLE_SIM_FAULTS", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle", *argv], env=environ, capture_output=True, cwd=tree
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed ({proc.returncode}) in {tree}:\n{proc.stderr[-2000:]!r}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


# VmHWM of the process's own address space: wait4's ru_maxrss would include the parent's size
# at fork time (Linux carries the pre-exec high-water mark over exec)
_HWM = (
    "import atexit, runpy, sys\n"
    "def hwm():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            open(OUT, 'w').write(line.split()[1])\n"
    "atexit.register(hwm)\n"
    "sys.argv = ['lifecycle'] + sys.argv[1:]\n"
    "runpy.run_module('lifecycle', run_name='__main__')\n"
)


def peak_rss(tree: Path, argv: list[str]) -> float:
    """The peak RSS (MiB) of one run of the command."""
    environ = dict(os.environ, PYTHONPATH=str(tree))
    environ.pop("LIFECYCLE_SIM_FAULTS", None)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "hwm"
        code = _HWM.replace("OUT", repr(str(out)))
        subprocess.run(
            [sys.executable, "-c", code, *argv], env=environ, capture_output=True, cwd=tree
        )
        return int(out.read_text()) / 1024


@dataclass(frozen=True)
class Figures:
    cpu: tuple[float, float, float]
    wall: tuple[float, float, float]
    rss: float

    def text(self) -> str:
        c, w = self.cpu, self.wall
        return (
            f"cpu {c[0]:6.3f} {c[1]:6.3f} {c[2]:6.3f} s  wall {w[0]:6.3f} {w[1]:6.3f} "
            f"{w[2]:6.3f} s  rss {self.rss:6.1f} MiB"
        )


def spread(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def compile_tree(tree: Path) -> None:
    """The tree's bytecode, as an installed lifecycle has it: this machine's environment may set
    PYTHONDONTWRITEBYTECODE, and every command would then compile ~170 modules (~0.1-0.3 s)."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(tree / "lifecycle")],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def measure(
    trees: list[Path],
    argv: Callable[[int], list[str]],
    prepare: Callable[[int], None] | None = None,
) -> list[Figures]:
    """RUNS runs of `argv(i)` in each tree i, the trees taking turns (run 1 of each, then run 2
    ...): the machine's load drifts, and blocks of one tree's runs would carry the drift into
    the ratios. `prepare(i)` runs before each run of tree i (the resume case's fresh state)."""
    samples: list[list[tuple[float, float]]] = [[] for _ in trees]
    for _ in range(RUNS):
        for i, tree in enumerate(trees):
            if prepare is not None:
                prepare(i)
            samples[i].append(run_once(tree, argv(i)))
    out = []
    for i, tree in enumerate(trees):
        if prepare is not None:
            prepare(i)
        rss = peak_rss(tree, argv(i))
        cpu, wall = [s[0] for s in samples[i]], [s[1] for s in samples[i]]
        out.append(Figures(spread(cpu), spread(wall), rss))
    return out


# --- the resume case ----------------------------------------------------------------------------


def last_step(tree: Path, inventory: Path, work: Path) -> str:
    """The id of the plan's last step (in topological order), from the plan's JSON."""
    import json

    work.mkdir(parents=True, exist_ok=True)
    out = work / "probe-plan.json"
    run_once(tree, ["plan", "upgrade", "-i", str(inventory), *TARGET, "-f", "json", "-o", str(out)])
    return str(json.loads(out.read_text())["steps"][-1]["id"])


def failed_run(tree: Path, inventory: Path, work: Path) -> tuple[Path, str]:
    """A state dir holding a ~10k-step sim run that failed on its last step, and the run id."""
    state = work / "state-failed"
    shutil.rmtree(state, ignore_errors=True)
    step = last_step(tree, inventory, work)
    environ = dict(os.environ, PYTHONPATH=str(tree), LIFECYCLE_SIM_FAULTS=f"fail:{step}:1000")
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle", "run", "upgrade", "-i", str(inventory), *TARGET,
         "--driver", "sim", "--yes", "--sim-scale", "0", "--no-progress", "--concurrency", "16",
         "--state-dir", str(state)],
        env=environ, capture_output=True, text=True, cwd=tree,
    )  # fmt: skip
    if proc.returncode != 4:
        raise SystemExit(f"the run should fail on {step} (exit 4):\n{proc.stderr[-2000:]}")
    with sqlite3.connect(state / "synthetic.db") as db:
        (run_id,) = db.execute("SELECT id FROM runs").fetchone()
    # on a loaded machine a sim step can time out (5 s) and stop the run early: resume it, the
    # fault still set, until the last step is the only one not done
    for _ in range(3):
        left = not_done(state / "synthetic.db")
        if left == [step]:
            return state, str(run_id)
        print(f"  the failed run stopped with {len(left)} steps not done; resuming it", flush=True)
        subprocess.run(
            [sys.executable, "-m", "lifecycle", "resume", str(run_id), "--no-progress",
             "--concurrency", "16", "--state-dir", str(state)],
            env=environ, capture_output=True, text=True, cwd=tree,
        )  # fmt: skip
    left = not_done(state / "synthetic.db")
    raise SystemExit(f"the run did not fail on its last step only: {left[:5]}")


def not_done(db_path: Path) -> list[str]:
    """Steps of the journal's run whose last transition is not `succeeded` (plan order)."""
    import json

    with sqlite3.connect(db_path) as db:
        (plan,) = db.execute("SELECT plan FROM runs").fetchone()
        last = dict(db.execute("SELECT step_id, state FROM step_events ORDER BY seq").fetchall())
    return [s["id"] for s in json.loads(plan)["steps"] if last.get(s["id"]) != "succeeded"]


# --- where the time goes ------------------------------------------------------------------------

PHASES = (  # (label, file suffix, function): cumulative time of these calls
    ("load inventory", "formats/inventory.py", "load_inventory"),
    ("  yaml", "formats/yaml_source.py", "parse_text"),
    ("plan_upgrade", "planning/upgrade.py", "plan_upgrade"),
    ("  schedule", "planning/scheduler.py", "list_schedule"),
    ("verify", "planning/verifier.py", "check_safe"),
    ("plan JSON", "formats/plan_json.py", "plan_to_json"),
    ("  digest", "formats/plan_json.py", "digest_of"),
)


def profile(tree: Path, argv: list[str]) -> str:
    """cProfile of one run of ARGV in a fresh interpreter (imports included, the collector as
    the command sets it): phases by cumulative time, and self time by package."""
    script = (
        "import cProfile, sys; sys.argv = ['lifecycle'] + sys.argv[2:];"
        "p = cProfile.Profile(); p.enable();"
        "from lifecycle.cli.main import main; main();"
        "p.disable(); p.dump_stats(OUT)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "prof"
        code = script.replace("OUT", repr(str(out)))
        environ = dict(os.environ, PYTHONPATH=str(tree))
        subprocess.run(
            [sys.executable, "-c", code, "x", *argv], env=environ, check=True, cwd=tree,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        stats = pstats.Stats(str(out), stream=io.StringIO())
    raw = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]
    lines = [f"profiled total {total:.3f} s (profiler overhead included)"]
    for label, suffix, func in PHASES:
        cum = sum(v[3] for k, v in raw.items() if k[0].endswith(suffix) and k[2] == func)
        lines.append(f"  {label:<16} {cum:7.3f} s  {100 * cum / total:5.1f} %")
    imports = max(
        (
            v[3]
            for k, v in raw.items()
            if "importlib._bootstrap" in k[0] and k[2] == "_find_and_load"
        ),
        default=0.0,
    )
    lines.append(f"  {'imports (max)':<16} {imports:7.3f} s  {100 * imports / total:5.1f} %")
    by_package: dict[str, float] = {}
    for (file, _, _), v in raw.items():
        by_package[_package(file)] = by_package.get(_package(file), 0.0) + v[2]
    lines.append("  self time by package:")
    for name, t in sorted(by_package.items(), key=lambda kv: -kv[1])[:12]:
        lines.append(f"    {name:<34} {t:7.3f} s  {100 * t / total:5.1f} %")
    return "\n".join(lines)


def _package(file: str) -> str:
    if "/lifecycle/" in file:
        return "lifecycle/" + file.rsplit("/lifecycle/", 1)[1]
    for name in ("yaml", "networkx", "click", "json", "sqlite3", "importlib", "rich", "tenacity"):
        if f"/{name}/" in file:
            return name
    if file.startswith("<frozen") or file == "~":
        return "builtins/frozen"
    return Path(file).name


# --- main ---------------------------------------------------------------------------------------


def cases(work: Path, quick: bool) -> list[tuple[str, list[str], int]]:
    """(label, argv, nodes) of the planning cases; inventories are written under `work`."""
    out = []
    for nodes in (1000,) if quick else (1000, 10000, 50000):
        inv = write_inventory(synthetic(nodes), work / f"n{nodes}")
        plan = [
            "plan",
            "upgrade",
            "-i",
            str(inv),
            *TARGET,
            "-f",
            "json",
            "-o",
            str(work / "p.json"),
        ]
        out.append((f"plan {nodes // 1000}k nodes", plan, nodes))
    inv = write_inventory(small_batches(2750), work / "steps10k")
    plan = ["plan", "upgrade", "-i", str(inv), *TARGET, "-f", "json", "-o", str(work / "p.json")]
    out.append(("plan ~10k steps", plan, 2750))
    out.append(("--help", ["--help"], 0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", action="append", type=Path, help="source tree (repeatable)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-resume", action="store_true")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiles at the end")
    parser.add_argument(
        "--failed-state", type=Path, help="a state dir from an earlier failed run (saves minutes)"
    )
    parser.add_argument("--profile", choices=["1k", "10k", "50k", "steps"], help="profile one case")
    args = parser.parse_args()
    trees = [t.resolve() for t in args.tree or [Path(__file__).resolve().parents[1]]]
    for tree in trees:
        compile_tree(tree)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {RUNS} runs each; "
          "cpu and wall: min median max")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        todo = cases(work, args.quick)
        if args.profile:
            label = {"1k": "plan 1k nodes", "10k": "plan 10k nodes", "50k": "plan 50k nodes"}
            wanted = label.get(args.profile, "plan ~10k steps")
            if args.profile != "1k" and args.quick:
                raise SystemExit("--profile 10k/50k/steps needs the full case list (no --quick)")
            argv = next(a for name, a, _ in todo if name == wanted)
            for tree in trees:
                print(f"{tree}: {wanted}\n{profile(tree, argv)}")
            return
        results: dict[str, list[Figures]] = {}
        for name, argv, _ in todo:
            results[name] = measure(trees, _same(argv))
            _report(name, trees, results[name])
        if not args.no_resume:
            # one failed run for every tree: their plans must be the same (resume refuses another)
            if args.failed_state:
                state = args.failed_state.resolve()
                with sqlite3.connect(state / "synthetic.db") as db:
                    run_id = str(db.execute("SELECT id FROM runs").fetchone()[0])
            else:
                state, run_id = failed_run(trees[-1], work / "steps10k", work / "failed")

            def fresh(i: int) -> None:
                shutil.rmtree(work / f"t{i}", ignore_errors=True)
                shutil.copytree(state, work / f"t{i}" / "state")

            def resume(i: int) -> list[str]:
                scratch = work / f"t{i}" / "state"
                return ["resume", run_id, "--state-dir", str(scratch), "--no-progress"]

            results["resume ~10k-step run"] = measure(trees, resume, fresh)
            _report("resume ~10k-step run", trees, results["resume ~10k-step run"])
        if not args.no_profile:  # where the time goes, in the last tree given
            for name in ("plan 10k nodes", "plan ~10k steps"):
                found = [a for label, a, _ in todo if label == name]
                if found:
                    print(f"{trees[-1]}: {name}\n{profile(trees[-1], found[0])}")
        for i, tree in enumerate(trees):
            if "plan 10k nodes" in results and "plan 50k nodes" in results:
                growth = results["plan 50k nodes"][i].cpu[1] / results["plan 10k nodes"][i].cpu[1]
                print(f"{tree}: growth 50k/10k (cpu median) {growth:.2f}x (linear 5x)")


def _same(argv: list[str]) -> Callable[[int], list[str]]:
    return lambda _: argv


def _report(name: str, trees: list[Path], figures: list[Figures]) -> None:
    for tree, fig in zip(trees, figures, strict=True):
        print(f"{name:<22} {fig.text()}  [{tree}]")
    if len(figures) > 1:
        base = figures[0]
        for tree, fig in zip(trees[1:], figures[1:], strict=True):
            print(
                f"{'':<22} ratio {base.cpu[1] / fig.cpu[1]:5.2f}x less cpu, "
                f"{base.wall[1] / fig.wall[1]:5.2f}x less wall, "
                f"{base.rss / fig.rss:5.2f}x less memory than {trees[0].name}  [{tree}]"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
