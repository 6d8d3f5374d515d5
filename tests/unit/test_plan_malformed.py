"""Field case verify-malformed: a hand-edited plan is input, and bad input is exit 2 naming the
file, the step and the field, never a traceback (a KeyError from the replay) nor a refusal for a
safety rule the edit did not break (a negative duration is not a quorum loss)."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lifecycle.cli.main import main
from lifecycle.errors import InputError
from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.plan_check import check_plan
from lifecycle.formats.plan_json import plan_from_dict, plan_to_dict
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade
from tests.unit.fieldcase_support import ROOT, copy_cases

LAB = ROOT / "inventories" / "lab"
Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def good() -> dict[str, Any]:
    return plan_to_dict(plan_upgrade(load_inventory(LAB), UpgradeIntent("ussuri")))


def _step(plan: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in plan["steps"] if s["id"] == step_id)


def _set(step_id: str, key: str, value: object) -> Edit:
    return lambda plan: _step(plan, step_id).__setitem__(key, value)


GALERA = "upgrade/galera/ctl-0"

# (edit, the field named, words of the expectation)
SHAPE: list[tuple[Edit, str, str]] = [
    (_set(GALERA, "duration", -300), "steps[1].duration", ">= 0"),
    (_set(GALERA, "duration", "5 min"), "steps[1].duration", "a number of seconds"),
    (_set(GALERA, "start", math.nan), "steps[1].start", "not a finite number"),
    (_set(GALERA, "start", None), "steps[1].start", "a number of seconds"),
    (lambda p: _step(p, GALERA).pop("action"), "steps[1].action", "missing"),
    (_set(GALERA, "nodes", "ctl-0"), "steps[1].nodes", "a list of non-empty strings"),
    (_set(GALERA, "depends_on", ["nope"]), "steps[1].depends_on[0]", "nope is no step"),
    (_set(GALERA, "idempotent", "yes"), "steps[1].idempotent", "true or false"),
    (_set(GALERA, "params", {"x": {"y": 1}}), "steps[1].params.x", "string list"),
    (_set(GALERA, "colour", "red"), "steps[1].colour", "unknown key"),
    (lambda p: p.__setitem__("steps", {}), "steps", "a list of steps"),
    (lambda p: p.pop("lower_bound"), "lower_bound", "missing"),
    (lambda p: p["steps"].insert(0, p["steps"].pop(1)), "steps[0].depends_on[0]", "listed later"),
    (lambda p: p["steps"].append(dict(p["steps"][1])), "id", "a unique id"),
]

# edits whose shape is right but whose names the cluster or the catalog do not know
NAMES: list[tuple[Edit, str, str]] = [
    (_set(GALERA, "upgrades", ["foo@ctl-0"]), "steps[1].upgrades[0]", "not a service"),
    (_set(GALERA, "disrupts", ["galera@ctl-9"]), "steps[1].disrupts[0]", "not a node"),
    (_set(GALERA, "disrupts", ["nova-compute@ctl-0"]), "steps[1].disrupts[0]", "does not run"),
    (_set(GALERA, "upgrades", ["galera"]), "steps[1].upgrades[0]", "service@node"),
    (_set(GALERA, "nodes", ["ctl-9"]), "steps[1].nodes[0]", "not a node"),
    (lambda p: p.__setitem__("to", "zed-ish"), "to", "an OpenStack release"),
    (lambda p: _step(p, GALERA)["params"].update(release="trian"), "params.release", "release"),
    (lambda p: p.__setitem__("cluster", "other"), "cluster", "the inventory's cluster"),
]


def _edited(good: dict[str, Any], edit: Edit) -> dict[str, Any]:
    plan = json.loads(json.dumps(good))
    edit(plan)
    return plan


@pytest.mark.parametrize(("edit", "field", "words"), SHAPE)
def test_a_malformed_plan_names_the_field(good, edit: Edit, field: str, words: str) -> None:
    with pytest.raises(InputError) as caught:
        plan_from_dict(_edited(good, edit), "p.json")
    problems = caught.value.problems
    assert any(field in p.field and words in p.expected for p in problems), problems
    assert all(p.file == "p.json" for p in problems)


@pytest.mark.parametrize(("edit", "field", "words"), NAMES)
def test_unknown_names_are_input_errors(good, edit: Edit, field: str, words: str) -> None:
    plan = plan_from_dict(_edited(good, edit), "p.json")
    with pytest.raises(InputError) as caught:
        check_plan(plan, load_inventory(LAB), "p.json")
    assert any(field in p.field and words in p.expected for p in caught.value.problems)


def test_the_steps_own_id_is_named(good) -> None:
    with pytest.raises(InputError) as caught:
        plan_from_dict(_edited(good, _set(GALERA, "duration", -1)), "p.json")
    assert "step upgrade/galera/ctl-0" in str(caught.value)


def test_a_good_plan_loads_and_checks_clean(good) -> None:
    plan = plan_from_dict(good, "p.json")
    check_plan(plan, load_inventory(LAB), "p.json")
    assert plan_to_dict(plan) == good


def _verify(capsys, lab: Path, plan: Path) -> tuple[int, str]:
    code = main(["plan", "verify", "-i", str(lab), str(plan)])
    return code, capsys.readouterr().err


def test_verify_and_run_plan_exit_2_with_file_line_and_step(good, tmp_path, capsys) -> None:
    lab = tmp_path / "lab"
    shutil.copytree(LAB, lab)
    (lab / "secrets.yaml").chmod(0o600)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(_edited(good, _set(GALERA, "upgrades", ["foo@ctl-0"])), indent=1))
    code, err = _verify(capsys, lab, path)
    assert code == 2 and "Traceback" not in err
    assert f"{path}:" in err and "steps[1].upgrades[0]" in err and "'foo'" in err
    line = int(err.split(f"{path}:")[1].split(":")[0])
    assert "foo@ctl-0" in path.read_text().splitlines()[line - 1]
    state = ["--state-dir", str(tmp_path / "state"), "--driver", "sim"]
    assert main(["run", "plan", "-i", str(lab), str(path), "-y", *state]) == 2
    assert "steps[1].upgrades[0]" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "field"),
    [("plan-unknown-service.json", "upgrades[0]"), ("plan-neg-duration.json", "duration")],
)
def test_field_case_verify_malformed(tmp_path, capsys, name: str, field: str) -> None:
    cases = copy_cases(tmp_path)
    code, err = _verify(capsys, cases / "lab", cases / "verify-malformed" / name)
    assert code == 2, err
    assert name in err and "step upgrade/galera/ctl-0" in err and field in err
