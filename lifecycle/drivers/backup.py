"""The backup driver: the local side of a backup (`backup.manifest`): the inventory, recorded
state and journal copied in beside what the playbooks fetched, then the manifest written."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lifecycle.drivers.base import Driver, StepContext, StepResult
from lifecycle.errors import DriverError
from lifecycle.planning.plan import Step


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def run_manifest(step: Step, state_dir: Path | None) -> StepResult:
    """Do a `backup.manifest` step (shared by this driver and the sim)."""
    from lifecycle.execution.backups import finish_backup

    dest = step.param("dest")
    if not isinstance(dest, str) or not Path(dest).is_dir():
        return StepResult(ok=False, error=f"{step.id}: backup directory {dest} missing")
    output = finish_backup(
        Path(dest),
        str(step.param("backup_id")),
        str(step.param("cluster")),
        str(step.param("inventory") or ""),
        state_dir,
        utc_now(),
    )
    return StepResult(ok=True, output=output)


class BackupDriver(Driver):
    """backup.manifest, run on the machine running lifecycle."""

    name = "backup"

    def __init__(self, state_dir: str | Path | None = None, **_options: Any) -> None:
        from lifecycle.execution.paths import state_dir as resolve

        self.state_dir = resolve(state_dir)

    def run(self, step: Step, ctx: StepContext) -> StepResult:
        if step.verb != "manifest":
            raise DriverError(f"backup driver cannot run {step.action!r} (step {step.id})")
        return run_manifest(step, self.state_dir)
