"""The common shape of "what the cloud runs": the recorded state and the observed state both
reduce to it, and the upgrade planner (`plan_upgrade(in_place=...)`, `remaining`), the replace
planner (planning/running.py) and the verifier (`initial`: its `at`) read it. Pure data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InPlace:
    """What the cloud runs, as one source knows it: `at`: instance ("service@node") -> the
    release it runs; `disabled`: compute hosts disabled; `flags`: Ceph maintenance flags set;
    `contracted`: project -> the release its database schema was last contracted (or fully
    synced) to.

    The one input the planners and the verifier take for "instance X is at release Y, its
    schema at Z", whichever source it comes from: the recorded state (what lifecycle's own runs
    did: `recorded_in_place`, planning/remaining.py) or an observation (what a driver saw:
    `observed_in_place`, planning/observed.py; it reads no schema, so `contracted` is empty).
    An instance it does not name is at the inventory's release as far as this source knows."""

    at: Mapping[str, str] = field(default_factory=dict)
    disabled: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()
    contracted: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (a run's intent keeps it, so that resume plans the same plan)."""
        return {
            "at": dict(sorted(self.at.items())),
            "disabled": sorted(self.disabled),
            "flags": sorted(self.flags),
            "contracted": dict(sorted(self.contracted.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InPlace:
        return cls(
            at={str(k): str(v) for k, v in dict(data.get("at") or {}).items()},
            disabled=frozenset(map(str, data.get("disabled") or ())),
            flags=frozenset(map(str, data.get("flags") or ())),
            contracted={str(k): str(v) for k, v in dict(data.get("contracted") or {}).items()},
        )

    @property
    def empty(self) -> bool:
        return not (self.at or self.disabled or self.flags or self.contracted)

    def seen_as(self, observed: InPlace) -> InPlace:
        """This (the recorded state) where an observation says otherwise: an instance's
        release is the observed one where it was seen (what lifecycle recorded may since have
        changed: a node rebuilt by hand, a rollback); hosts disabled and flags set are those of
        either (re-enabling a host or unsetting a flag twice is harmless, forgetting one is
        not); schemas stay recorded (an observation reads none)."""
        return InPlace(
            at={**self.at, **observed.at},
            disabled=self.disabled | observed.disabled,
            flags=self.flags | observed.flags,
            contracted=dict(self.contracted),
        )
