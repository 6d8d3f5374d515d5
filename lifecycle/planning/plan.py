"""Steps are data: a plan is a frozen DAG of steps with a schedule, serialisable and hashable."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

ParamValue = str | int | float | bool | None | tuple[str, ...]


def freeze_params(params: Mapping[str, Any]) -> tuple[tuple[str, ParamValue], ...]:
    """A params mapping as a sorted tuple of pairs (lists become tuples) so steps stay hashable."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))


@dataclass(frozen=True)
class Step:
    """One unit of work for one driver call.

    `action` is "<driver>.<verb>"; `upgrades` and `disrupts` list service instances as
    "service@node"; `idempotent` says whether the step may safely run twice (safe-rerun).
    """

    id: str
    action: str
    phase: str
    nodes: tuple[str, ...] = ()
    upgrades: tuple[str, ...] = ()
    disrupts: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    duration: float = 0.0
    params: tuple[tuple[str, ParamValue], ...] = ()
    idempotent: bool = True
    batch: str | None = None

    @property
    def driver(self) -> str:
        return self.action.split(".", 1)[0]

    @property
    def verb(self) -> str:
        return self.action.split(".", 1)[1] if "." in self.action else self.action

    def param(self, key: str, default: ParamValue = None) -> ParamValue:
        for k, v in self.params:
            if k == key:
                return v
        return default

    @property
    def param_dict(self) -> dict[str, ParamValue]:
        return dict(self.params)


@dataclass(frozen=True)
class Plan:
    """A DAG of steps (in topological order) and when each starts, in seconds from the start."""

    operation: str
    cluster: str
    source: str | None
    target: str | None
    steps: tuple[Step, ...]
    starts: tuple[float, ...]
    lower_bound: float
    inventory_digest: str = ""
    extra: tuple[tuple[str, ParamValue], ...] = field(default=())  # e.g. ceph_from / ceph_to

    def __post_init__(self) -> None:
        if len(self.starts) != len(self.steps):
            raise ValueError("a plan needs one start time per step")

    @cached_property
    def by_id(self) -> dict[str, Step]:
        return {s.id: s for s in self.steps}

    @cached_property
    def start_of(self) -> dict[str, float]:
        return {s.id: t for s, t in zip(self.steps, self.starts, strict=True)}

    def step(self, step_id: str) -> Step:
        return self.by_id[step_id]

    def end_of(self, step_id: str) -> float:
        return self.start_of[step_id] + self.by_id[step_id].duration

    @cached_property
    def makespan(self) -> float:
        return max(
            (t + s.duration for s, t in zip(self.steps, self.starts, strict=True)), default=0.0
        )

    def scheduled(self) -> Iterator[tuple[Step, float]]:
        yield from zip(self.steps, self.starts, strict=True)

    @cached_property
    def digest(self) -> str:
        """sha256 of the plan's canonical JSON (everything but the digest itself); plan_to_dict
        fills this in as it builds that JSON."""
        from lifecycle.formats.plan_json import digest_of, plan_to_dict

        return digest_of(plan_to_dict(self, with_digest=False))
