"""Hardware profiles and matching: which profile an inspected server fits, and why.

Pure: facts come from an Ironic inventory (the JSON of `GET /v1/nodes/{id}/inventory`), profiles
from hardware_profiles/*.yaml (lifecycle.formats.profiles loads them). Every decision keeps its
evidence, so an operator sees which rule failed and the value that was observed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GIB = 1024**3

# fact name -> what it means, for explanations and for the loader's validation
FACTS: Mapping[str, str] = {
    "cpu_count": "CPU threads",
    "memory_mb": "memory in MiB",
    "disk_count": "number of disks",
    "min_disk_gb": "smallest disk in GiB",
    "max_disk_gb": "largest disk in GiB",
    "total_disk_gb": "sum of disk sizes in GiB",
    "rotational_disks": "disks not known to be non-rotational (HDD or unknown media)",
    "non_rotational_disks": "non-rotational disks (SSD/NVMe)",
    "nic_count": "network interfaces",
    "vendor": "system manufacturer",
    "cpu_arch": "CPU architecture",
}
TEXT_FACTS = frozenset({"vendor", "cpu_arch"})


@dataclass(frozen=True)
class Facts:
    """What matching needs from one inspected server; numbers are whole units."""

    cpu_count: int
    memory_mb: int
    disk_sizes_gb: tuple[int, ...]
    rotational: tuple[bool | None, ...]  # per disk; None when the media type is unknown
    nic_count: int
    vendor: str = ""
    cpu_arch: str = ""

    def value(self, fact: str) -> int | str:
        sizes = self.disk_sizes_gb
        values: dict[str, int | str] = {
            "cpu_count": self.cpu_count,
            "memory_mb": self.memory_mb,
            "disk_count": len(sizes),
            "min_disk_gb": min(sizes, default=0),
            "max_disk_gb": max(sizes, default=0),
            "total_disk_gb": sum(sizes),
            "rotational_disks": sum(1 for r in self.rotational if r is not False),
            "non_rotational_disks": sum(1 for r in self.rotational if r is False),
            "nic_count": self.nic_count,
            "vendor": self.vendor,
            "cpu_arch": self.cpu_arch,
        }
        return values[fact]

    def summary(self) -> dict[str, Any]:
        return {fact: self.value(fact) for fact in FACTS}


def facts_from_inventory(inventory: Mapping[str, Any]) -> Facts:
    """Facts from an Ironic inventory; accepts the API answer ({"inventory": ...}) or its body."""
    inv = inventory.get("inventory", inventory)
    disks = inv.get("disks") or []
    vendor = inv.get("system_vendor") or {}
    cpu = inv.get("cpu") or {}
    return Facts(
        cpu_count=int(cpu.get("count") or 0),
        memory_mb=int((inv.get("memory") or {}).get("physical_mb") or 0),
        disk_sizes_gb=tuple(int(d.get("size") or 0) // GIB for d in disks),
        rotational=tuple(d.get("rotational") for d in disks),
        nic_count=len(inv.get("interfaces") or []),
        vendor=str(vendor.get("manufacturer") or ""),
        cpu_arch=str(cpu.get("architecture") or ""),
    )


@dataclass(frozen=True)
class Rule:
    """One condition over a fact: bounds for numbers, a set of allowed values for text."""

    fact: str
    minimum: int | None = None
    maximum: int | None = None
    one_of: tuple[str, ...] = ()

    def expected(self) -> str:
        if self.one_of:
            return "one of " + ", ".join(self.one_of)
        if self.minimum is not None and self.maximum is not None:
            return f"between {self.minimum} and {self.maximum}"
        if self.minimum is not None:
            return f"at least {self.minimum}"
        return f"at most {self.maximum}"

    def holds(self, observed: int | str) -> bool:
        if self.one_of:
            return str(observed).lower() in {v.lower() for v in self.one_of}
        number = int(observed) if not isinstance(observed, str) else 0
        if self.minimum is not None and number < self.minimum:
            return False
        return not (self.maximum is not None and number > self.maximum)


@dataclass(frozen=True)
class HardwareProfile:
    """A named class of server: rules it must meet, a priority (higher wins when several match),
    and the role and aggregate it feeds."""

    name: str
    rules: tuple[Rule, ...]
    priority: int = 0
    role: str | None = None
    aggregate: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Check:
    rule: Rule
    observed: int | str
    ok: bool

    def __str__(self) -> str:
        mark = "ok" if self.ok else "FAILED"
        return f"{self.rule.fact} = {self.observed!r} (expected {self.rule.expected()}): {mark}"


@dataclass(frozen=True)
class ProfileOutcome:
    profile: HardwareProfile
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)


@dataclass(frozen=True)
class NodeMatch:
    """The verdict for one server: the chosen profile (or None) and every profile's outcome."""

    node: str
    facts: Facts
    outcomes: tuple[ProfileOutcome, ...]  # by descending priority

    @property
    def chosen(self) -> HardwareProfile | None:
        return next((o.profile for o in self.outcomes if o.ok), None)

    @property
    def matching(self) -> tuple[str, ...]:
        return tuple(o.profile.name for o in self.outcomes if o.ok)

    def outcome(self, profile: str) -> ProfileOutcome | None:
        return next((o for o in self.outcomes if o.profile.name == profile), None)

    def explain(self) -> list[str]:
        """One line per profile: matched, or the rules that failed with the observed values."""
        chosen = self.chosen
        lines = []
        for o in self.outcomes:
            name = f"{o.profile.name} (priority {o.profile.priority})"
            if o.ok:
                verdict = "chosen" if chosen and o.profile.name == chosen.name else "also matches"
                lines.append(f"{name}: {verdict}")
            else:
                lines.append(f"{name}: no — " + "; ".join(str(c) for c in o.failed))
        return lines

    def to_dict(self) -> dict[str, Any]:
        chosen = self.chosen
        return {
            "node": self.node,
            "profile": chosen.name if chosen else None,
            "matching": list(self.matching),
            "facts": self.facts.summary(),
            "explanation": self.explain(),
        }


def ranked(profiles: Iterable[HardwareProfile]) -> tuple[HardwareProfile, ...]:
    """Highest priority first; the name breaks ties so the order never depends on input order."""
    return tuple(sorted(profiles, key=lambda p: (-p.priority, p.name)))


def evaluate(profile: HardwareProfile, facts: Facts) -> ProfileOutcome:
    checks = []
    for rule in profile.rules:
        observed = facts.value(rule.fact)
        checks.append(Check(rule, observed, rule.holds(observed)))
    return ProfileOutcome(profile, tuple(checks))


def match_node(node: str, facts: Facts, profiles: Sequence[HardwareProfile]) -> NodeMatch:
    return NodeMatch(node, facts, tuple(evaluate(p, facts) for p in ranked(profiles)))


def match_all(
    inventories: Mapping[str, Mapping[str, Any]], profiles: Sequence[HardwareProfile]
) -> tuple[NodeMatch, ...]:
    """Match every inspected server (name -> Ironic inventory), in name order."""
    return tuple(
        match_node(name, facts_from_inventory(inventories[name]), profiles)
        for name in sorted(inventories)
    )


def shortfalls(matches: Iterable[NodeMatch], wanted: Mapping[str, int]) -> list[str]:
    """Problems before anything is provisioned: servers that match nothing, and profiles that get
    fewer servers than wanted (profile name -> count)."""
    problems: list[str] = []
    got: dict[str, int] = {}
    for m in matches:
        chosen = m.chosen
        if chosen is None:
            problems.append(f"{m.node}: matches no hardware profile: " + " | ".join(m.explain()))
        else:
            got[chosen.name] = got.get(chosen.name, 0) + 1
    for profile, count in sorted(wanted.items()):
        if got.get(profile, 0) < count:
            problems.append(
                f"profile {profile}: {count} server(s) wanted, {got.get(profile, 0)} match"
            )
    return problems


# --- a plan step carries its profiles as JSON, so the step alone says what it checks ------------


def profiles_to_json(profiles: Sequence[HardwareProfile]) -> str:
    body = [
        {
            "name": p.name,
            "priority": p.priority,
            "role": p.role,
            "aggregate": p.aggregate,
            "rules": [
                {"fact": r.fact, "min": r.minimum, "max": r.maximum, "one_of": list(r.one_of)}
                for r in p.rules
            ],
        }
        for p in ranked(profiles)
    ]
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def profiles_from_json(text: str) -> tuple[HardwareProfile, ...]:
    return tuple(
        HardwareProfile(
            name=p["name"],
            priority=int(p["priority"]),
            role=p.get("role"),
            aggregate=p.get("aggregate"),
            rules=tuple(
                Rule(r["fact"], r.get("min"), r.get("max"), tuple(r.get("one_of") or ()))
                for r in p["rules"]
            ),
        )
        for p in json.loads(text)
    )


def trait_for(profile: str) -> str:
    """The Ironic/Placement custom trait naming a profile (CUSTOM_[A-Z0-9_]+)."""
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in profile.upper())
    return f"CUSTOM_PROFILE_{cleaned}"
