"""keystone-keys.yml on a stand-in and on a real Keystone: which of its tasks run.

A stand-in Keystone's directory is the stand-in daemon's (services/keystone/log is its log
file), so the real role's `keystone directories` task (log/ as a directory) must not run there:
it failed a controller replacement on the all-stand-in testbed ("log already exists as a file").
The `when` conditions are evaluated with Jinja2 as Ansible does (a bare expression).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

PLAYBOOK = Path(__file__).resolve().parents[2] / "lifecycle/testbed/playbooks/keystone-keys.yml"

REAL_TASKS = [
    "keystone configuration",
    "keys made on the bootstrap node (once)",
    "key files on the bootstrap node",
    "keys read on the bootstrap node",
    "key repositories",
    "keys copied to every keystone node",
]


def _holds(condition: Any, variables: dict[str, Any]) -> bool:
    conditions = condition if isinstance(condition, list) else [condition]
    env = jinja2.Environment()
    return all(env.compile_expression(str(c))(**variables) for c in conditions)


def _running(tasks: list[dict[str, Any]], variables: dict[str, Any]) -> list[str]:
    """Names of the tasks whose play-level (task or enclosing block) `when` holds; a task's own
    `when` on per-host facts (inventory_hostname) is left out: it is not what differs here."""
    names: list[str] = []
    for task in tasks:
        when = task.get("when")
        if when is not None and "real_services" in str(when) and not _holds(when, variables):
            continue
        if "block" in task:
            names += _running(task["block"], variables)
        else:
            names.append(task["name"])
    return names


def _tasks() -> list[dict[str, Any]]:
    plays = yaml.safe_load(PLAYBOOK.read_text())
    assert len(plays) == 1
    tasks: list[dict[str, Any]] = plays[0]["tasks"]
    return tasks


@pytest.mark.parametrize("real", [[], ["galera", "haproxy"]])
def test_a_standin_keystone_gets_no_directory_or_key_task(real: list[str]) -> None:
    running = _running(_tasks(), {"real_services": real})
    assert not set(running) & set(REAL_TASKS)
    assert running == ["a stand-in keystone holds no keys"]


def test_a_real_keystone_runs_every_key_task_in_order() -> None:
    running = _running(_tasks(), {"real_services": ["keystone", "placement-api"]})
    assert running == REAL_TASKS
