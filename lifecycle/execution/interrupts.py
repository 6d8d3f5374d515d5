"""The operator's Ctrl-C, counted: once pauses the run at a safe point, twice stops it now.

The SIGINT handler only counts presses, so it can never break a journal write half-way; the engine
reads the count between turns (at most `EngineOptions.poll_interval` apart) and acts. A third press
raises KeyboardInterrupt: the way out of a process stuck where the engine cannot look.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

PAUSE, STOP, ESCAPE = 1, 2, 3  # presses that pause, stop now, give up on the engine


class Interrupts:
    """Ctrl-C presses seen while a run is driven. Tests press() instead of signalling."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._presses = 0

    @property
    def presses(self) -> int:
        with self._lock:
            return self._presses

    def press(self) -> int:
        """Count one press; return how many there have been."""
        with self._lock:
            self._presses += 1
            return self._presses

    def _handler(self, signum: int, frame: object) -> None:
        # no lock here: a handler that waited for a lock its own thread holds would deadlock
        self._presses += 1
        if self._presses >= ESCAPE:
            raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[Interrupts]:
        """Count SIGINT for the duration (main thread only: elsewhere Python cannot trap it)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)
