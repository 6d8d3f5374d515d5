"""The demo's wall time against its plans' makespans, from the journal of a testbed that ran it.

    sudo bash scripts/demo.sh                       # or the realcloud lane
    python bench/bench_demo.py [STATE_DIR] [--cluster demo]

For each run of the cluster (deploy, upgrade, ...): the plan's makespan (the schedule's estimate,
seconds), the wall time the engine took from its first to its last step event (pauses and the time
between a failure and its resume left out), and their ratio. The estimates are the catalog's
durations for real clouds; the testbed's services restart in seconds, so a ratio well below 1 is
expected: what this watches is the ratio moving from one change to the next.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path

GAP = 60.0  # seconds without any step event: the run was stopped (failed, paused) and resumed


def run_rows(db: Path) -> list[tuple[str, str, float]]:
    """(run id, operation, plan makespan) of every run, oldest first."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        rows = con.execute("SELECT id, operation, plan FROM runs ORDER BY created").fetchall()
    return [(r[0], r[1], float(json.loads(r[2]).get("makespan", 0.0))) for r in rows]


def busy_seconds(db: Path, run_id: str) -> float:
    """Seconds between the run's first and last step event, minus stops longer than GAP."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        stamps = [
            r[0]
            for r in con.execute(
                "SELECT ts FROM step_events WHERE run_id = ? ORDER BY seq", (run_id,)
            )
        ]
    if len(stamps) < 2:
        return 0.0
    stamps.sort()
    gaps = [b - a for a, b in itertools.pairwise(stamps) if b - a > GAP]
    return stamps[-1] - stamps[0] - sum(gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "state_dir",
        nargs="?",
        default=os.environ.get("LIFECYCLE_STATE_DIR", "/run/lifecycle-testbed"),
    )
    parser.add_argument("--cluster", default="demo")
    args = parser.parse_args()
    db = Path(args.state_dir) / f"{args.cluster}.db"
    if not db.exists():
        raise SystemExit(f"{db}: no journal (run scripts/demo.sh first)")
    print(f"{'run':<34} {'operation':<10} {'makespan':>9} {'wall':>8} {'wall/makespan':>14}")
    for run_id, operation, makespan in run_rows(db):
        wall = busy_seconds(db, run_id)
        ratio = wall / makespan if makespan else float("nan")
        print(f"{run_id:<34} {operation:<10} {makespan:>8.0f}s {wall:>7.0f}s {ratio:>14.2f}")


if __name__ == "__main__":
    main()
