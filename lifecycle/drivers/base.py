"""The driver interface: run a step, probe whether its effect is already there, say whether it
may run twice. Everything else (retries, timeouts, journaling) is the engine's job."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from lifecycle.errors import DriverNotFound
from lifecycle.model.cluster import Cluster
from lifecycle.model.observed import ObservedState
from lifecycle.planning.plan import Step

ENTRY_POINT_GROUP = "lifecycle.drivers"
# drivers of this package, found even where the installed metadata predates them (an editable
# install made before they were added to setup.cfg's entry points)
BUILTIN = {"backup": "lifecycle.drivers.backup:BackupDriver"}


@dataclass(frozen=True)
class StepContext:
    """What a driver may know about the run a step belongs to."""

    run_id: str
    cluster: Cluster
    attempt: int = 1
    artifacts_dir: Path | None = None  # where a driver keeps per-step artifacts
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)
    emit: Callable[[str, dict[str, Any]], None] | None = None  # progress events from inside a step


@dataclass(frozen=True)
class StepResult:
    """What a step did. `output` is JSON-serialisable and goes to the journal (never secrets);
    `hosts` maps each host to its own outcome ("ok", "failed", "unreachable") and detail."""

    ok: bool
    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def unreachable(self) -> tuple[str, ...]:
        return tuple(h for h, r in self.hosts.items() if r.get("status") == "unreachable")


class Driver(abc.ABC):
    """One adapter to the world. Implementations raise DriverError for failures they understand
    and return StepResult(ok=False) for steps that ran and failed."""

    name: str = ""

    @abc.abstractmethod
    def run(self, step: Step, ctx: StepContext) -> StepResult:
        """Do the step's work, once."""

    def probe(self, step: Step, ctx: StepContext) -> bool | None:
        """Whether the step's effect is already in place (True/False), or None if unknowable."""
        return None

    def is_idempotent(self, step: Step) -> bool:
        """Whether running the step again after a partial run is safe."""
        return step.idempotent

    def probe_is_exact(self, step: Step) -> bool:
        """Whether a False from probe() proves the step left no effect at all (its effect is
        applied atomically), so that a non-idempotent step caught mid-flight may run again
        without asking the operator. Most drivers cannot promise that."""
        return False

    def observe(self, cluster: Cluster) -> ObservedState:
        """What this driver can see of `cluster` now (DESIGN "Desired state, observed state").
        Called before planning, never during it. What the driver cannot see is named in
        `unobservable`; this default sees nothing and says so."""
        return ObservedState(
            cluster=cluster.name,
            driver=self.name,
            unobservable=(f"everything: the {self.name or 'given'} driver does not observe",),
        )

    def close(self) -> None:  # noqa: B027 (optional hook, most drivers hold nothing)
        """Release what the driver holds (connections, temporary files)."""


def available_drivers() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_driver(name: str, **options: Any) -> Driver:
    """Instantiate the driver registered under `name`."""
    found = available_drivers()
    if name not in found and name in BUILTIN:
        from importlib import import_module

        module, _, attr = BUILTIN[name].partition(":")
        builtin: Driver = getattr(import_module(module), attr)(**options)
        return builtin
    if name not in found:
        known = ", ".join(sorted(found)) or "none (is lifecycle installed?)"
        raise DriverNotFound(f"unknown driver {name!r}; registered drivers: {known}")
    cls = found[name].load()
    driver: Driver = cls(**options)
    return driver
