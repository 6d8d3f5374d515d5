"""The Gantt chart: its layout (rows per host, bars, hops, time axis) and the files it writes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from lifecycle.cli.main import main
from lifecycle.errors import UsageError
from lifecycle.formats.gantt_render import write_gantt
from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.pictures import page_paths, picture_format
from lifecycle.planning.gantt import CLUSTER_ROW, gantt_charts, parse_start, ticks
from lifecycle.planning.plan import Plan, Step
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "tests" / "data" / "demo-train")
LAB = str(ROOT / "inventories" / "lab")
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-"}


@cache
def lab_plan(target: str, ceph: str | None = None) -> Plan:
    return plan_upgrade(load_inventory(LAB), UpgradeIntent(target, ceph))


def small_plan() -> Plan:
    """pre (no host) -> galera on a then b (down) -> a health check on b (up) -> db on a."""
    steps = (
        Step("precheck/cluster", "checks.precheck", "precheck", duration=60),
        Step(
            "upgrade/galera/a",
            "ansible.playbook",
            "infra",
            nodes=("a",),
            disrupts=("galera@a",),
            duration=300,
        ),
        Step(
            "upgrade/galera/b",
            "ansible.playbook",
            "infra",
            nodes=("b",),
            disrupts=("galera@b",),
            duration=300,
        ),
        Step("health/galera/b", "checks.health", "infra", nodes=("b",), duration=30),
        Step(
            "db-expand/nova",
            "ansible.playbook",
            "control-plane",
            nodes=("a",),
            duration=120,
            params=(("phase", "expand"), ("playbook", "db-migrate")),
        ),
    )
    return Plan("upgrade", "t", "train", "ussuri", steps, (0, 60, 360, 660, 690), 810)


def test_one_row_per_host_and_a_cluster_row_with_every_step_drawn() -> None:
    (chart,) = gantt_charts(small_plan())
    assert [row.label for row in chart.rows] == [CLUSTER_ROW, "a", "b"]
    bars = {row.label: [(b.step_id, b.down) for b in row.bars] for row in chart.rows}
    assert bars == {
        CLUSTER_ROW: [("precheck/cluster", False)],
        "a": [("upgrade/galera/a", True), ("db-expand/nova", False)],
        "b": [("upgrade/galera/b", True), ("health/galera/b", False)],
    }
    assert chart.phases == ("precheck", "infra", "database")  # db steps: their own phase
    assert chart.window == (0, 810)


def test_lab_chart_has_one_row_per_host_of_the_plan() -> None:
    plan = lab_plan("ussuri")
    (chart,) = gantt_charts(plan)
    hosts = {node for step in plan.steps for node in step.nodes}
    labels = [row.label for row in chart.rows]
    assert len(labels) == len(set(labels)) == len(hosts) + 1
    assert set(labels) == hosts | {CLUSTER_ROW}
    assert labels[:4] == [CLUSTER_ROW, "ctl-0", "ctl-1", "ctl-2"]  # in the order work starts
    assert labels.index("cmp-hdd-2") < labels.index("cmp-hdd-10")  # natural order on a tie
    # a controller's row shows when it is down: every step disrupting it is a solid bar there
    down = {b.step_id for b in chart.rows[1].bars if b.down}
    assert down == {s.id for s in plan.steps if any(d.endswith("@ctl-0") for d in s.disrupts)}


def test_a_multi_hop_plan_gives_one_chart_per_hop_each_step_owned_once() -> None:
    plan = lab_plan("wallaby", "pacific")
    charts = gantt_charts(plan)
    assert [c.hop for c in charts] == ["ussuri", "victoria", "wallaby"]
    assert "hop 2 of 3: to victoria" in charts[1].title
    owned = [b.step_id for c in charts for r in c.rows for b in r.bars if not b.other_hop]
    per_step = {s.id: max(len(s.nodes), 1) for s in plan.steps}  # a bar per host of a step
    assert sorted(set(owned)) == sorted(per_step)
    assert len(owned) == sum(per_step.values())
    assert all([r.label for r in c.rows] == [r.label for r in charts[0].rows] for c in charts)
    # hops overlap in time: the later hop's chart shows the earlier hop's steps, greyed
    context = {b.step_id for r in charts[1].rows for b in r.bars if b.other_hop}
    assert any(s.startswith("ussuri/") for s in context)
    assert "precheck/cluster" in owned and "postcheck/cluster" in owned
    owners = {b.step_id: c.hop for c in charts for r in c.rows for b in r.bars if not b.other_hop}
    assert owners["postcheck/cluster"] == "wallaby" and owners["precheck/cluster"] == "ussuri"


def test_without_start_ticks_are_hours_and_minutes_from_the_start() -> None:
    marks = ticks((0.0, 5400.0), None)
    assert [t.label for t in marks] == ["0:00", "0:10", "0:20", "0:30", "0:40", "0:50", "1:00",
                                        "1:10", "1:20", "1:30"]  # fmt: skip
    assert len(ticks((0.0, 30 * 3600.0), None)) <= 12


def test_with_start_ticks_are_wall_clock_aligned_with_the_date_on_a_new_day() -> None:
    start = parse_start("2026-12-01T23:07:00+01:00")
    marks = ticks((0.0, 3600.0), start)
    assert marks[0].label == "2026-12-01\n23:10"  # aligned on the clock, not 23:07
    assert marks[0].at == 180.0
    assert "2026-12-02\n00:00" in [t.label for t in marks]
    assert [t.label for t in marks][-1] == "00:05" and len(marks) == 12  # every 5 minutes
    (chart,) = gantt_charts(small_plan(), start)
    assert "UTC+01:00" in chart.axis_label and "2026-12-01T23:07+01:00" in chart.axis_label
    assert all((start + timedelta(seconds=t.at)).strftime("%H:%M") in t.label for t in chart.ticks)


def test_title_names_the_plan_digest_and_the_jargon_free_duration() -> None:
    plan = small_plan()
    (chart,) = gantt_charts(plan, datetime(2026, 12, 1, 22, 0, tzinfo=UTC))
    assert plan.digest.removeprefix("sha256:")[:12] in chart.subtitle
    assert "estimated duration 13m30s (at best 13m30s)" in chart.subtitle
    assert "train \u2192 ussuri" in chart.title


def test_bad_start_and_unknown_suffix_are_input_errors() -> None:
    with pytest.raises(UsageError, match="ISO 8601"):
        parse_start("tomorrow evening")
    with pytest.raises(UsageError, match=r"\.svg, \.png, \.pdf \(not \.jpg\)"):
        picture_format("plan.jpg", "--gantt")
    assert picture_format("plan", "--gantt") == "svg"
    assert picture_format("PLAN.PNG", "--gantt") == "png"


def test_page_paths_number_and_name_each_hop() -> None:
    assert page_paths("out/plan.png", ["ussuri"]) == [Path("out/plan.png")]
    assert page_paths("out/plan.png", ["ussuri", "victoria"]) == [
        Path("out/plan-1-ussuri.png"),
        Path("out/plan-2-victoria.png"),
    ]


@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_files_start_with_their_formats_magic_bytes(tmp_path: Path, fmt: str) -> None:
    (written,) = write_gantt(gantt_charts(small_plan()), str(tmp_path / f"plan.{fmt}"))
    data = written.read_bytes()
    if fmt == "svg":
        assert data.startswith(b"<?xml") and b"<svg" in data[:400]
        assert b"upgrade t: train" in data  # text stays text
    else:
        assert data.startswith(MAGIC[fmt])


def test_multi_hop_pdf_has_a_page_per_hop(tmp_path: Path) -> None:
    plan = lab_plan("victoria")
    charts = gantt_charts(plan)
    assert len(charts) == 2
    (pdf,) = write_gantt(charts, str(tmp_path / "plan.pdf"))
    data = pdf.read_bytes()
    assert data.startswith(MAGIC["pdf"])
    assert re.findall(rb"/Count (\d+)", data) == [b"2"]  # the page tree holds two pages


def test_cli_writes_one_png_per_hop_and_says_so(tmp_path: Path, capsys) -> None:
    target = tmp_path / "plan.png"
    args = ["plan", "upgrade", "-i", DEMO, "--to", "victoria", "--gantt", str(target)]
    assert main([*args, "--start", "2026-12-01T22:00Z", "-f", "json"]) == 0
    err = capsys.readouterr().err
    for index, hop in enumerate(["ussuri", "victoria"], start=1):
        path = tmp_path / f"plan-{index}-{hop}.png"
        assert path.read_bytes().startswith(MAGIC["png"])
        assert f"wrote {path}" in err
    assert not target.exists()


def test_cli_refuses_a_bad_gantt_name_or_start_before_printing_the_plan(
    tmp_path: Path, capsys
) -> None:
    args = ["plan", "upgrade", "-i", DEMO, "--to", "ussuri"]
    assert main([*args, "--gantt", str(tmp_path / "plan.jpg")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "not .jpg" in err
    assert main([*args, "--gantt", str(tmp_path / "p.svg"), "--start", "22h"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "--start" in err and "ISO 8601" in err


def test_the_cli_loads_no_drawing_library_until_it_draws() -> None:
    code = (
        "import sys\n"
        "from lifecycle.cli.main import main\n"
        "try:\n    main(['plan', 'upgrade', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('matplotlib', 'graphviz') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
