"""Loading hardware profiles from hardware_profiles/*.yaml.

A profile file:

    name: compute-ssd
    description: computes whose every disk is non-rotational
    priority: 20                       # higher wins when several profiles match
    feeds: {role: ComputeSSD, aggregate: ssd}
    rules:
      disk_count: {min: 1}             # numeric facts take {min, max}
      disks_non_rotational: all        # all | any | none
      memory_mb: {min: 4096}
      vendor: [Dell Inc., HPE]         # text facts take a list of allowed values

Facts are those of lifecycle.planning.profiles.FACTS. Unknown keys are errors (exit 2).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lifecycle.errors import InputError
from lifecycle.formats.yaml_source import Reader, join, load_source
from lifecycle.planning.profiles import FACTS, TEXT_FACTS, HardwareProfile, Rule

ENV_DIR = "LIFECYCLE_PROFILES"
SUGAR = "disks_non_rotational"


def default_dir() -> Path:
    """$LIFECYCLE_PROFILES, else the hardware_profiles/ directory beside the package."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "hardware_profiles"


def load_profiles(directory: str | Path | None = None) -> tuple[HardwareProfile, ...]:
    """Every *.yaml profile of `directory` (default: default_dir()), by name."""
    folder = Path(directory) if directory is not None else default_dir()
    files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    if not files:
        raise InputError.at(str(folder), "", "a directory holding hardware profile *.yaml files")
    profiles = [load_profile(f) for f in files]
    seen: dict[str, str] = {}
    for profile, file in zip(profiles, files, strict=True):
        if profile.name in seen:
            raise InputError.at(str(file), "name", f"a unique name ({seen[profile.name]} has it)")
        seen[profile.name] = str(file)
    return tuple(sorted(profiles, key=lambda p: p.name))


def load_profile(path: str | Path) -> HardwareProfile:
    source = load_source(path, InputError)
    reader = Reader(source, InputError)
    body = reader.mapping(
        "", source.data, required=("name", "rules"), optional=("description", "priority", "feeds")
    )
    reader.raise_if_any()
    assert body is not None
    name = reader.string("name", body.get("name"))
    priority = reader.integer("priority", body.get("priority", 0))
    feeds = reader.mapping("feeds", body.get("feeds", {}), optional=("role", "aggregate")) or {}
    rules = _rules(reader, body.get("rules"))
    reader.raise_if_any()
    return HardwareProfile(
        name=str(name),
        rules=rules,
        priority=int(priority or 0),
        role=feeds.get("role"),
        aggregate=feeds.get("aggregate"),
        description=str(body.get("description") or ""),
    )


def _rules(reader: Reader, value: Any) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    for fact, spec in reader.items("rules", value):
        path = join("rules", fact)
        if fact == SUGAR:
            rule = _sugar(reader, path, spec)
        elif fact not in FACTS:
            reader.problem(path, f"a known fact ({', '.join(sorted([*FACTS, SUGAR]))})")
            continue
        elif fact in TEXT_FACTS:
            rule = _text_rule(reader, path, fact, spec)
        else:
            rule = _number_rule(reader, path, fact, spec)
        if rule is not None:
            rules.append(rule)
    if not rules:
        reader.problem("rules", "at least one rule")
    return tuple(rules)


def _sugar(reader: Reader, path: str, spec: Any) -> Rule | None:
    kind = reader.choice(path, spec, ("all", "any", "none"))
    if kind == "all":
        return Rule("rotational_disks", maximum=0)
    if kind == "any":
        return Rule("non_rotational_disks", minimum=1)
    if kind == "none":
        return Rule("non_rotational_disks", maximum=0)
    return None


def _number_rule(reader: Reader, path: str, fact: str, spec: Any) -> Rule | None:
    bounds = reader.mapping(path, spec, optional=("min", "max"))
    if not bounds:
        reader.problem(path, "a mapping with min and/or max")
        return None
    low = reader.integer(join(path, "min"), bounds["min"], 0) if "min" in bounds else None
    high = reader.integer(join(path, "max"), bounds["max"], 0) if "max" in bounds else None
    return Rule(fact, minimum=low, maximum=high)


def _text_rule(reader: Reader, path: str, fact: str, spec: Any) -> Rule | None:
    values = [
        v for i, v in enumerate(reader.sequence(path, spec)) if reader.string(f"{path}[{i}]", v)
    ]
    if not values:
        reader.problem(path, "a non-empty list of allowed values")
        return None
    return Rule(fact, one_of=tuple(values))
