"""The plan tree (the default text of `lifecycle plan`): time order, a database phase, wording."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from lifecycle.formats.inventory import load_inventory
from lifecycle.planning.plan import Plan
from lifecycle.planning.render import duration_text, plural, render_tree
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade

ROOT = Path(__file__).resolve().parents[2]
TIME = re.compile(r"(\d+:\d\d:\d\d)")


@cache
def lab_tree(target: str, ceph: str | None = None) -> tuple[Plan, str]:
    plan = plan_upgrade(load_inventory(ROOT / "inventories" / "lab"), UpgradeIntent(target, ceph))
    return plan, render_tree(plan)


def _seconds(clock: str) -> int:
    h, m, s = (int(part) for part in clock.split(":"))
    return h * 3600 + m * 60 + s


def _starts_by_depth(tree: str) -> dict[int, list[list[int]]]:
    """For each depth, the start times of sibling lines, sibling list by sibling list."""
    out: dict[int, list[list[int]]] = {}
    open_lists: dict[int, list[int]] = {}
    for line in tree.splitlines():
        mark = re.search("[├└]── ", line)
        if not mark:
            continue
        depth = mark.start() // 4
        for deeper in [d for d in open_lists if d > depth]:
            out.setdefault(deeper, []).append(open_lists.pop(deeper))
        found = TIME.search(line[mark.end() :])
        if found:
            open_lists.setdefault(depth, []).append(_seconds(found.group(1)))
    for depth, starts in open_lists.items():
        out.setdefault(depth, []).append(starts)
    return out


def test_every_level_of_the_tree_is_in_time_order() -> None:
    _, tree = lab_tree("wallaby", "pacific")
    levels = _starts_by_depth(tree)
    assert len(levels) >= 4  # hops > phases > batches > steps
    for siblings in (s for lists in levels.values() for s in lists):
        assert siblings == sorted(siblings)


def test_top_level_follows_the_run_from_precheck_to_postcheck() -> None:
    _, tree = lab_tree("wallaby", "pacific")
    top = [line.split("  (")[0][4:] for line in tree.splitlines() if line[:4] in ("├── ", "└── ")]
    assert top == [
        "precheck",
        "hop 1 of 3: to ussuri",
        "ceph",
        "hop 2 of 3: to victoria",
        "hop 3 of 3: to wallaby",
        "postcheck",
    ]


def test_ceph_noout_is_set_before_the_osds_and_unset_after_them() -> None:
    _, tree = lab_tree("wallaby", "pacific")
    ceph = tree[tree.index("── ceph  (") : tree.index("hop 2 of 3")]
    order = [name for name in ("noout-set", "ceph-osd/rack1", "ceph-osd/rack2", "noout-unset")]
    assert sorted(order, key=ceph.index) == order


def test_schema_migrations_sit_under_a_database_heading() -> None:
    plan, tree = lab_tree("ussuri")
    lines = tree.splitlines()
    start = next(i for i, line in enumerate(lines) if "── database  (12 steps," in line)
    block = []
    for line in lines[start + 1 :]:
        if re.match(r"[├└]── ", line):
            break
        block.append(line)
    assert "schema expand  (6 steps," in block[0]
    assert any("schema contract  (6 steps," in line for line in block)
    db_ids = {s.id for s in plan.steps if s.param("playbook") == "db-migrate"}
    ids = [line.split("── ")[-1].split(" ")[0] for line in block]
    assert {i for i in ids if i.startswith("db-")} == db_ids
    rest = [line.split("── ")[-1].split(" ")[0] for line in lines[start + 1 + len(block) :]]
    assert not any(i.startswith("db-") for i in rest)


def test_counts_are_singular_or_plural_and_jargon_is_explained_once() -> None:
    plan, tree = lab_tree("ussuri")
    assert "precheck  (1 step, 0:00:00 - 0:01:00)" in tree
    assert "(1 steps" not in tree
    assert "makespan" not in tree and "lower bound" not in tree
    second = tree.splitlines()[1]
    estimate, at_best = duration_text(plan.makespan), duration_text(plan.lower_bound)
    assert second.startswith(
        f"{len(plan.steps)} steps, estimated duration {estimate} (at best {at_best}:"
    )
    assert duration_text(7800) == "2h10m"
    assert tree.count("estimated duration") == 1 and tree.count("at best") == 1
    assert tree.splitlines()[2] == f"plan digest {plan.digest}"
    assert plural(1, "step") == "1 step" and plural(2, "step") == "2 steps"
    assert plural(0, "host") == "0 hosts"


def test_summary_names_the_hops_of_a_multi_hop_plan() -> None:
    _, tree = lab_tree("wallaby", "pacific")
    assert tree.startswith(
        "upgrade lab: train -> wallaby in 3 hops (ussuri, victoria, wallaby), "
        "ceph nautilus -> pacific\n"
    )
