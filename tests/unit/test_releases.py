"""Release rules: N -> N+1, skip-level between consecutive SLURPs, Ceph at most two majors."""

from __future__ import annotations

import pytest

from lifecycle.catalog import load_catalog
from lifecycle.errors import UnsupportedUpgrade

CATALOG = load_catalog()


def names(hops) -> list[str]:
    return [f"{a.name}->{b.name}" for a, b in hops]


def test_openstack_goes_one_release_per_hop() -> None:
    hops = CATALOG.openstack.hops("train", "wallaby")
    assert names(hops) == ["train->ussuri", "ussuri->victoria", "victoria->wallaby"]


def test_skip_level_between_consecutive_slurp_releases() -> None:
    hops = CATALOG.openstack.hops("2023.1", "2026.1")
    assert names(hops) == ["2023.1->2024.1", "2024.1->2025.1", "2025.1->2026.1"]


def test_non_slurp_start_walks_to_the_next_slurp_first() -> None:
    assert names(CATALOG.openstack.hops("2023.2", "2025.1")) == ["2023.2->2024.1", "2024.1->2025.1"]


def test_code_names_are_accepted() -> None:
    assert names(CATALOG.openstack.hops("antelope", "caracal")) == ["2023.1->2024.1"]


def test_ceph_jumps_at_most_two_majors() -> None:
    hops = CATALOG.ceph.hops("nautilus", "reef")
    assert names(hops) == ["nautilus->pacific", "pacific->reef"]
    assert all(b.index - a.index <= 2 for a, b in hops)


def test_downgrade_is_refused() -> None:
    with pytest.raises(UnsupportedUpgrade, match="downgrade"):
        CATALOG.openstack.hops("wallaby", "train")


def test_unknown_release_names_the_known_ones() -> None:
    with pytest.raises(UnsupportedUpgrade, match="known: queens, rocky"):
        CATALOG.openstack.get("liberty")


def test_skew_one_behind_or_two_across_slurp() -> None:
    train = CATALOG.openstack
    assert train.skew_allowed(train.get("train"), train.get("ussuri"))
    assert not train.skew_allowed(train.get("train"), train.get("victoria"))
    assert train.skew_allowed(train.get("2023.1"), train.get("2024.1"))
    assert not train.skew_allowed(train.get("2023.2"), train.get("2024.2"))
