"""The root options of this process (`-v/-q/--debug`, `--log-file`, `--os-cloud`) and the
logging they set up. Commands read `OPTIONS`; `main` resets it on every call."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field


@dataclass
class GlobalOptions:
    """What the root options set for this process (reset by every `main` call)."""

    verbosity: int = 0  # -1 quiet, 0 default, 1 -v, 2 -vv
    debug: bool = False
    log_file: str | None = None
    os_cloud: str | None = None
    handlers: list[logging.Handler] = field(default_factory=list)
    root_level: int = logging.WARNING

    def reset(self) -> None:
        self.verbosity, self.debug, self.log_file, self.os_cloud = 0, False, None, None
        self.handlers = []


OPTIONS = GlobalOptions()


def configure_logging(options: GlobalOptions) -> None:
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(
        options.verbosity, logging.DEBUG
    )
    if options.debug:
        level = logging.DEBUG
    root = logging.getLogger()
    from lifecycle.execution.runlog import for_console

    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    verbose = options.verbosity > 0 or options.debug
    console.addFilter(lambda record: for_console(record, verbose))
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handlers: list[logging.Handler] = [console]
    if options.log_file:
        try:
            handlers.append(logging.FileHandler(options.log_file, encoding="utf-8"))
        except OSError as exc:
            from lifecycle.errors import UsageError

            raise UsageError.at(options.log_file, "--log-file", f"a writable file ({exc})") from exc
        handlers[-1].setFormatter(log_formatter())
        # DEBUG (HTTP bodies of client libraries) only when asked for: -vv or --debug
        handlers[-1].setLevel(logging.DEBUG if level <= logging.DEBUG else logging.INFO)
    for handler in handlers:
        root.addHandler(handler)
    options.handlers.extend(handlers)
    options.root_level = root.level
    root.setLevel(min(h.level for h in handlers))


def log_formatter() -> logging.Formatter:
    """ISO 8601 UTC times in every log file (`2026-11-29T23:40:34Z INFO name: message`)."""
    formatter = logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%dT%H:%M:%SZ"
    )
    formatter.converter = time.gmtime
    return formatter


def drop_logging(options: GlobalOptions) -> None:
    root = logging.getLogger()
    for handler in options.handlers:
        root.removeHandler(handler)
        handler.close()
    options.handlers.clear()
    root.setLevel(options.root_level)
