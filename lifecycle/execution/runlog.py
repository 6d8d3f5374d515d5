"""The log of every run: `<state dir>/logs/<run id>.log`, kept with the journal.

`RunLog` attaches a file handler to the root logger for the life of a run (or a resume, which
appends), so what drivers and libraries log at INFO and above lands there; `LogSink` writes every
engine event (already redacted by the engine) as one line. Times are ISO 8601 UTC.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from types import TracebackType

from lifecycle.execution.events import Event

LOGGER = logging.getLogger("lifecycle.run")
# set while a live display (lifecycle.execution.progress) redraws the terminal: a log line on the
# console would be glued onto its frame, so the console leaves the run's records to the log file
LIVE_DISPLAY = threading.Event()


def for_console(record: logging.LogRecord, verbose: bool) -> bool:
    """Whether the console shows `record`: the run's own records (engine events, the error that
    stopped a run, which the CLI prints as its `error:` paragraph) go to the run's log file, and
    to the console only with -v and never while the live display is on; others always."""
    if record.name != LOGGER.name and not record.name.startswith(LOGGER.name + "."):
        return True
    return verbose and not LIVE_DISPLAY.is_set()


def run_log_path(state_dir: Path, run_id: str) -> Path:
    """Where the log of `run_id` lives (the directory is made 0700, like the state dir)."""
    logs = state_dir / "logs"
    logs.mkdir(mode=0o700, parents=True, exist_ok=True)
    return logs / f"{run_id}.log"


def _formatter() -> logging.Formatter:
    formatter = logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%dT%H:%M:%SZ"
    )
    formatter.converter = time.gmtime
    return formatter


class RunLog:
    """A context: the run's log file receives INFO and above from every logger meanwhile."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handler: logging.Handler | None = None
        self._level = logging.WARNING

    def __enter__(self) -> RunLog:
        handler = logging.FileHandler(self.path, encoding="utf-8")
        self.path.chmod(0o600)
        handler.setFormatter(_formatter())
        handler.setLevel(logging.INFO)
        root = logging.getLogger()
        self._level = root.level
        root.addHandler(handler)
        root.setLevel(min(root.level, logging.INFO))
        self._handler = handler
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and self._handler is not None:  # the CLI prints it: the file only
            record = LOGGER.makeRecord(
                LOGGER.name,
                logging.ERROR,
                __file__,
                0,
                "stopped by %s: %s",
                (type(exc).__name__, exc),
                None,
            )
            self._handler.handle(record)
        if self._handler is not None:
            root = logging.getLogger()
            root.removeHandler(self._handler)
            root.setLevel(self._level)
            self._handler.close()
            self._handler = None


class LogSink:
    """An EventSink writing each engine event to the `lifecycle.run` logger as one line:
    `step-failed ctl-0.upgrade {"attempt": 2, "error": "..."}`."""

    def emit(self, event: Event) -> None:
        failed = event.get("event") in ("step-failed", "run-stopping")
        level = logging.WARNING if failed else logging.INFO
        if not LOGGER.isEnabledFor(level):  # no run log attached (benchmarks, tests)
            return
        rest = {k: v for k, v in event.items() if k not in ("event", "step", "run", "ts")}
        LOGGER.log(
            level,
            "%s %s %s",
            event.get("event", "?"),
            event.get("step", event.get("run", "")),
            json.dumps(rest, sort_keys=True, default=str),
        )

    def close(self) -> None:
        pass
