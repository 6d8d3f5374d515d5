"""Who ran what: an audit record for every command that changes a run."""

from __future__ import annotations

import getpass
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

from lifecycle.execution.journal import Journal
from lifecycle.execution.records import AuditRecord
from lifecycle.execution.redact import Redactor


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record_audit(
    journal: Journal,
    run_id: str,
    overrides: dict[str, Any] | None = None,
    argv: Sequence[str] | None = None,
    redactor: Redactor | None = None,
) -> AuditRecord:
    """Journal who (user@host) ran which command line, with which overrides (--force, --accept)."""
    redactor = redactor or Redactor()
    command = " ".join(argv if argv is not None else ["lifecycle", *sys.argv[1:]])
    record = AuditRecord(
        run_id=run_id,
        ts=time.time(),
        user=current_user(),
        host=socket.gethostname(),
        command=redactor.text(command),
        overrides=redactor.data(overrides or {}),
    )
    journal.add_audit(record)
    return record
