"""One exception root with families; every error carries a message an operator can act on.

Exit statuses: 2 for bad input (inventory, imports, arguments), 3 for a plan refused as unsafe,
4 for a run that stopped on failure or needs the operator, 130 for a run the operator stopped at
once (Ctrl-C twice), 1 for anything else we raise.
A bug in lifecycle itself is never one of these: it is an ordinary exception with a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self


class LifecycleError(Exception):
    """Root of every error lifecycle reports to an operator."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# --- bad input -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where, which field, what was expected."""

    file: str
    field: str
    expected: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.expected}"


class InputError(LifecycleError):
    """Bad operator input: names the file, the line where known, the field and the expectation."""

    exit_code = 2

    def __init__(self, problems: Problem | Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = (
            (problems,) if isinstance(problems, Problem) else tuple(problems)
        )
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def at(cls, file: str, field: str, expected: str, line: int | None = None) -> Self:
        return cls(Problem(file=file, field=field, expected=expected, line=line))


class InventoryError(InputError):
    """The operator's cluster.yaml, secrets file or nodes file is wrong."""


class ImportFormatError(InputError):
    """A TripleO or other foreign file could not be imported."""


class CatalogError(InputError):
    """The service or release catalog is inconsistent (a data bug, reported like input)."""


class UsageError(InputError):
    """A command-line argument is wrong (an unknown release, a missing option)."""


# --- planning --------------------------------------------------------------------------------


class PlanningError(LifecycleError):
    """No plan can be made for this intent."""

    exit_code = 2


class UnsupportedUpgrade(PlanningError):
    """The requested release jump is not allowed by the release rules."""


class DependencyCycle(PlanningError):
    """Services depend on each other in a circle; the cycle is named."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = tuple(cycle)
        super().__init__("dependency cycle: " + " -> ".join([*self.cycle, self.cycle[0]]))


class UnsafePlan(LifecycleError):
    """The safety verifier refused the plan; each violation names the moment and the rule."""

    exit_code = 3

    def __init__(self, violations: Sequence[object]) -> None:
        self.violations = tuple(violations)
        lines = [f"plan refused: {len(self.violations)} safety violation(s)"]
        lines += [f"  - {v}" for v in self.violations[:20]]
        if len(self.violations) > 20:
            lines.append(f"  ... and {len(self.violations) - 20} more")
        super().__init__("\n".join(lines))


class PreflightRefused(UnsafePlan):
    """Something known before planning makes the run unsafe (a 1- or 2-member quorum store, an
    aggregate with no migration target); each finding says what to do. --force overrides."""

    def __init__(self, findings: Sequence[object]) -> None:
        super().__init__(findings)
        lines = [f"refused before planning: {len(self.violations)} finding(s)"]
        lines += [f"  - {f}" for f in self.violations]
        lines.append("  (--force runs it anyway, and the override is recorded)")
        self.message = "\n".join(lines)
        self.args = (self.message,)


# --- execution -------------------------------------------------------------------------------


class ExecutionError(LifecycleError):
    """A run could not go on."""

    exit_code = 4


class RunLocked(ExecutionError):
    """Another run holds the cluster's lock."""


class ResumeRefused(ExecutionError):
    """The run cannot be resumed as asked (changed inventory or plan, unknown run, finished)."""


class RunStopped(ExecutionError):
    """The run stopped at a safe point: failure threshold, abort, pause or an operator decision."""


class RunInterrupted(RunStopped):
    """The operator stopped the run at once (Ctrl-C twice): steps in flight were left mid-way,
    recorded as interrupted; the run is paused and resumable. 128 + SIGINT, as shells report."""

    exit_code = 130


class IllegalTransition(RuntimeError):
    """A step state change the transition table forbids: a bug in lifecycle, never input."""


# --- drivers ---------------------------------------------------------------------------------


class DriverError(LifecycleError):
    """A driver could not do what a step asked; `detail` is structured for the journal."""

    def __init__(self, message: str, detail: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.detail = detail or {}


class DriverNotFound(DriverError):
    exit_code = 2


class HostUnreachable(DriverError):
    """A host could not be reached (SSH, BMC)."""
