"""Profile matching on real inspection inventories recorded from the Ironic lane."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifecycle.errors import InputError
from lifecycle.formats.profiles import load_profile, load_profiles
from lifecycle.planning.profiles import (
    HardwareProfile,
    Rule,
    facts_from_inventory,
    match_all,
    match_node,
    profiles_from_json,
    profiles_to_json,
    shortfalls,
    trait_for,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "inspection"
PROFILES = load_profiles()


def recorded(kind: str) -> dict:
    return json.loads((DATA / f"{kind}.json").read_text())


def test_facts_come_from_the_inventory():
    facts = facts_from_inventory(recorded("ceph"))
    assert facts.cpu_count == 8
    assert facts.memory_mb == 32 * 1024
    assert facts.disk_sizes_gb == (480, 4000, 4000, 4000, 4000)
    assert facts.value("rotational_disks") == 4
    assert facts.value("non_rotational_disks") == 1
    assert facts.value("min_disk_gb") == 480
    assert facts.nic_count == 2


@pytest.mark.parametrize(
    ("kind", "profile"),
    [
        ("ssd", "compute-ssd"),
        ("hdd", "compute-hdd"),
        ("mixed", "compute-hdd"),  # one HDD is enough to miss compute-ssd
        ("control", "control"),
        ("ceph", "ceph-storage"),
        ("networker", "networker"),
        ("small", None),
    ],
)
def test_each_recorded_server_gets_its_profile(kind, profile):
    verdict = match_node(kind, facts_from_inventory(recorded(kind)), PROFILES)
    assert (verdict.chosen.name if verdict.chosen else None) == profile


def test_priority_decides_when_several_profiles_match():
    verdict = match_node("ssd", facts_from_inventory(recorded("ssd")), PROFILES)
    assert verdict.matching == ("compute-ssd", "compute-hdd")  # highest priority first
    assert verdict.explain()[-2:] == [
        "compute-ssd (priority 20): chosen",
        "compute-hdd (priority 10): also matches",
    ]


def test_explanation_names_the_failed_rule_and_the_observed_value():
    verdict = match_node("mixed", facts_from_inventory(recorded("mixed")), PROFILES)
    line = next(x for x in verdict.explain() if x.startswith("compute-ssd"))
    assert "rotational_disks = 1 (expected at most 0): FAILED" in line
    assert "cpu_count" not in line  # rules that held are not noise


def test_a_server_matching_nothing_says_why_for_every_profile():
    verdict = match_node("small", facts_from_inventory(recorded("small")), PROFILES)
    assert verdict.chosen is None
    text = "\n".join(verdict.explain())
    assert "memory_mb = 2048 (expected at least 4096)" in text
    assert "min_disk_gb = 40 (expected at least 50)" in text
    assert len(verdict.explain()) == len(PROFILES)


def test_shortfalls_report_unmatched_servers_and_short_profiles():
    inventories = {k: recorded(k) for k in ("ssd", "hdd", "small")}
    problems = shortfalls(match_all(inventories, PROFILES), {"compute-ssd": 2, "compute-hdd": 1})
    assert any(p.startswith("small: matches no hardware profile") for p in problems)
    assert "profile compute-ssd: 2 server(s) wanted, 1 match" in problems
    assert not any(p.startswith("profile compute-hdd") for p in problems)


def test_vendor_rule_is_case_insensitive_and_explains():
    profile = HardwareProfile("dell-only", (Rule("vendor", one_of=("Dell Inc.",)),))
    verdict = match_node("ssd", facts_from_inventory(recorded("ssd")), [profile])
    assert verdict.chosen is None
    assert "vendor = 'Sushy Emulator' (expected one of Dell Inc.)" in verdict.explain()[0]
    emulator = HardwareProfile("emu", (Rule("vendor", one_of=("sushy emulator",)),))
    assert match_node("ssd", facts_from_inventory(recorded("ssd")), [emulator]).chosen


def test_profiles_round_trip_through_step_json():
    again = profiles_from_json(profiles_to_json(PROFILES))
    assert {p.name: p.rules for p in again} == {p.name: p.rules for p in PROFILES}


def test_trait_names_are_valid_custom_traits():
    assert trait_for("compute-ssd") == "CUSTOM_PROFILE_COMPUTE_SSD"


def test_shipped_profiles_feed_roles_and_aggregates():
    by_name = {p.name: p for p in PROFILES}
    assert set(by_name) == {"control", "compute-hdd", "compute-ssd", "ceph-storage", "networker"}
    assert (by_name["compute-ssd"].role, by_name["compute-ssd"].aggregate) == ("ComputeSSD", "ssd")
    assert (by_name["compute-hdd"].role, by_name["compute-hdd"].aggregate) == ("ComputeHDD", "hdd")


def test_bad_profile_file_names_file_field_and_expectation(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nrules:\n  disk_count: {min: one}\n  colour: [red]\n  disks_non_rotational: most\n"
    )
    with pytest.raises(InputError) as caught:
        load_profile(bad)
    text = str(caught.value)
    assert f"{bad}:3: rules.disk_count.min: an integer" in text
    assert "rules.colour: a known fact" in text
    assert "rules.disks_non_rotational: one of all, any, none, got 'most'" in text
    assert caught.value.exit_code == 2


def test_unknown_top_level_key_and_empty_directory_are_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("name: a\nrules: {cpu_count: {min: 1}}\nweight: 3\n")
    with pytest.raises(InputError, match="weight: one of"):
        load_profiles(tmp_path)
    with pytest.raises(InputError, match="hardware profile"):
        load_profiles(tmp_path / "nowhere")


def test_duplicate_profile_names_are_refused(tmp_path):
    for f in ("a.yaml", "b.yaml"):
        (tmp_path / f).write_text("name: same\nrules: {cpu_count: {min: 1}}\n")
    with pytest.raises(InputError, match="unique name"):
        load_profiles(tmp_path)
