"""The event stream: every step and run change as a dict, fanned out to sinks (JSON lines,
live progress, tests). Events are redacted before any sink sees them."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, Protocol

Event = dict[str, Any]


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


class JsonLinesSink:
    """`--events FILE`: one JSON object per line, flushed as written so `tail -f` follows it."""

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._file: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close)

    def emit(self, event: Event) -> None:
        with self._lock:
            self._file.write(json.dumps(event, sort_keys=True, default=str) + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


class CallbackSink:
    def __init__(self, callback: Callable[[Event], None]) -> None:
        self._callback = callback

    def emit(self, event: Event) -> None:
        self._callback(event)

    def close(self) -> None:
        pass


class Fanout:
    """Many sinks as one; the engine holds exactly one sink."""

    def __init__(self, sinks: Iterable[EventSink] = ()) -> None:
        self.sinks = list(sinks)
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        with self._lock:  # drivers emit from worker threads
            for sink in self.sinks:
                sink.emit(event)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
