"""One exception root with families; every error carries a message an operator can act on.

Exit statuses (also in `lifecycle --help`):

- 0: success.
- 1: any other error: a LifecycleError of no family below, an OpenStack API error, an
  unreachable endpoint, or an unexpected exception (a bug: `--debug` shows its traceback).
- 2: bad input: inventory, imports, files, arguments, an unknown run id or release, a plan that
  cannot be made, an OpenStack endpoint not configured (clouds.yaml, --os-cloud, --ironic-url).
- 3: the safety verifier refused the plan (UnsafePlan; `--force` overrides).
- 4: the run failed, stopped at a safe point, or was refused (cluster locked, not resumable).
- 130: interrupted (Ctrl-C), or a confirmation answered no.

The CLI (lifecycle/cli/main.py) prints every one of them as one `error: ...` paragraph on
stderr, never a traceback unless `--debug` is given.
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


class UnknownRun(LifecycleError):
    """No recorded run matches the run id, prefix or `last` given (bad input: exit 2)."""

    exit_code = 2


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

    SHOWN = 20  # violations in the message; `lifecycle -v` shows them all (describe(None))

    def __init__(self, violations: Sequence[object]) -> None:
        self.violations = tuple(violations)
        super().__init__(self.describe(self.SHOWN))

    def describe(self, limit: int | None) -> str:
        """The message with the first `limit` violations (all with None)."""
        shown = self.violations if limit is None else self.violations[:limit]
        lines = [f"plan refused: {len(self.violations)} safety violation(s)"]
        lines += [f"  - {v}" for v in shown]
        if len(shown) < len(self.violations):
            more = len(self.violations) - len(shown)
            lines.append(f"  ... and {more} more (`lifecycle -v ...` lists them all)")
        return "\n".join(lines)


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

    def describe(self, limit: int | None) -> str:
        return getattr(self, "message", "")  # every finding, always


# --- execution -------------------------------------------------------------------------------


class ExecutionError(LifecycleError):
    """A run could not go on."""

    exit_code = 4


class RunLocked(ExecutionError):
    """Another run holds the cluster's lock."""


class ResumeRefused(ExecutionError):
    """The run cannot be resumed as asked (changed inventory or plan, finished); an unknown run
    is UnknownRun (exit 2)."""


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
