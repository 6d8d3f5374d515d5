"""The `policies:` section of cluster.yaml.

```yaml
policies:
  max_unavailable: {default: 1, aggregates: {ssd: "25%", hdd: 2}}   # or just 1, or "10%"
  evacuate: live-migrate          # live-migrate | cold-migrate | none
  canary: 1
  failure_threshold: 0
```
"""

from __future__ import annotations

import re

from lifecycle.formats.yaml_source import Reader, describe, join
from lifecycle.model import Evacuate, MaxUnavailable, Policies

POLICY_KEYS = ("max_unavailable", "evacuate", "canary", "failure_threshold")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def read_policies(reader: Reader, value: object, aggregates: set[str | None]) -> Policies | None:
    """Policies from the raw section; None (with problems recorded) when anything is wrong."""
    if value is None:
        return Policies()
    raw = reader.mapping("policies", value, optional=POLICY_KEYS)
    if raw is None:
        return None
    before = len(reader.problems)
    default = MaxUnavailable()
    per_aggregate: tuple[tuple[str, MaxUnavailable], ...] = ()
    if "max_unavailable" in raw:
        default, per_aggregate = _max_unavailable(reader, raw["max_unavailable"], aggregates)
    evacuate = Evacuate.LIVE_MIGRATE
    if "evacuate" in raw:
        choice = reader.choice("policies.evacuate", raw["evacuate"], [e.value for e in Evacuate])
        evacuate = Evacuate(choice) if choice else evacuate
    canary = _count(reader, "policies.canary", raw.get("canary", 1), 1)
    threshold = _count(reader, "policies.failure_threshold", raw.get("failure_threshold", 0), 0)
    if len(reader.problems) > before:
        return None
    return Policies(default, per_aggregate, evacuate, canary, threshold)


def _count(reader: Reader, path: str, value: object, minimum: int) -> int:
    number = reader.integer(path, value, minimum)
    return number if number is not None else minimum


def _max_unavailable(
    reader: Reader, value: object, aggregates: set[str | None]
) -> tuple[MaxUnavailable, tuple[tuple[str, MaxUnavailable], ...]]:
    path = "policies.max_unavailable"
    if not isinstance(value, dict):
        return amount(reader, path, value), ()
    raw = reader.mapping(path, value, optional=("default", "aggregates")) or {}
    default = amount(reader, join(path, "default"), raw.get("default", 1))
    per: list[tuple[str, MaxUnavailable]] = []
    agg_path = join(path, "aggregates")
    for name, item in reader.items(agg_path, raw.get("aggregates", {})):
        if name not in aggregates:
            known = ", ".join(sorted(a for a in aggregates if a)) or "none defined"
            reader.problem(join(agg_path, name), f"an aggregate of a role ({known}), got {name!r}")
        per.append((name, amount(reader, join(agg_path, name), item)))
    return default, tuple(per)


def amount(reader: Reader, path: str, value: object) -> MaxUnavailable:
    """A host count (>= 1) or a percentage ("25%", in (0, 100])."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            reader.problem(path, f"a count >= 1 or a percentage like '25%', got {value}")
        return MaxUnavailable(count=max(value, 1))
    match = _PERCENT.match(value) if isinstance(value, str) else None
    if match is None:
        reader.problem(path, f"a count >= 1 or a percentage like '25%', got {_shown(value)}")
        return MaxUnavailable()
    percent = float(match.group(1))
    if not 0 < percent <= 100:
        reader.problem(path, f"a percentage in (0%, 100%], got {value!r}")
        return MaxUnavailable()
    return MaxUnavailable(count=None, percent=percent)


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) and len(value) < 40 else describe(value)
