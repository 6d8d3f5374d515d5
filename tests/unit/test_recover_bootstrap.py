"""Which Galera member a recovery bootstraps: the highest seqno, never a stale one or a guess."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.errors import PlanningError, UnsafePlan, UsageError
from lifecycle.model.backup import GaleraPosition, Manifest
from lifecycle.model.observed import (
    UNREACHABLE,
    GaleraMember,
    NodeObservation,
    ObservedState,
    StoreObservation,
)
from lifecycle.planning.recover import (
    BACKUP,
    FORCED,
    RUNNING,
    SURVIVOR,
    choose_bootstrap,
    data_loss,
)
from tests.unit.cluster_factory import lab_like

UUID = "6f4c1f2e-0000-11ee-8000-000000000001"
CLUSTER = lab_like(computes_hdd=1, computes_ssd=1, ceph=3, networkers=1)
MEMBERS = CLUSTER.members["galera"]  # ctl-0, ctl-1, ctl-2
BACKUP_MANIFEST = Manifest("lab-b1", "lab", "2026-11-29T00:00:00Z", (), GaleraPosition(UUID, 40))


def crashed(*members: GaleraMember, down: tuple[str, ...] = ()) -> ObservedState:
    """Galera without a Primary component (every member stopped or crashed)."""
    return ObservedState(
        "lab",
        "sim",
        nodes=tuple(NodeObservation(n, UNREACHABLE) for n in down),
        stores=(StoreObservation("galera", quorum=False, health="down"),),
        galera=members,
    )


def at(node: str, seqno: int, *, clean: bool = False, safe: bool = False) -> GaleraMember:
    """A member at `seqno`: in grastate.dat after a clean stop, else recovered (grastate -1)."""
    if clean:
        return GaleraMember(node, UUID, seqno, safe)
    return GaleraMember(node, UUID, -1, False, recovered=seqno)


@settings(max_examples=200, deadline=None)
@given(
    seqnos=st.lists(st.integers(0, 10**9), min_size=3, max_size=3),
    clean=st.lists(st.booleans(), min_size=3, max_size=3),
    safe=st.lists(st.booleans(), min_size=3, max_size=3),
)
def test_the_member_chosen_always_holds_the_highest_seqno(seqnos, clean, safe) -> None:
    members = [
        at(m, s, clean=c, safe=f) for m, s, c, f in zip(MEMBERS, seqnos, clean, safe, strict=True)
    ]
    choice = choose_bootstrap(CLUSTER, crashed(*members), None)
    assert choice.source == SURVIVOR
    assert choice.seqno == max(seqnos)
    assert seqnos[MEMBERS.index(choice.node)] == max(seqnos)
    # deterministic: the same positions in another order choose the same member
    again = choose_bootstrap(CLUSTER, crashed(*reversed(members)), None)
    assert again.node == choice.node


@settings(max_examples=100, deadline=None)
@given(low=st.integers(0, 10**6), gap=st.integers(1, 10**6), stale=st.sampled_from(MEMBERS))
def test_the_stale_member_is_never_chosen(low, gap, stale) -> None:
    """The member that stopped first (lowest seqno, even the first in the list and marked
    safe_to_bootstrap) loses to any member that committed more."""
    members = [
        at(m, low, clean=True, safe=True) if m == stale else at(m, low + gap) for m in MEMBERS
    ]
    choice = choose_bootstrap(CLUSTER, crashed(*members), None)
    assert choice.node != stale


def test_the_first_member_in_the_list_is_not_chosen_for_being_first() -> None:
    members = (at("ctl-0", 10), at("ctl-1", 12), at("ctl-2", 11))
    assert choose_bootstrap(CLUSTER, crashed(*members), None).node == "ctl-1"


def test_ties_go_to_safe_to_bootstrap_then_inventory_order() -> None:
    tie = (at("ctl-0", 12), at("ctl-1", 12, clean=True, safe=True), at("ctl-2", 12))
    assert choose_bootstrap(CLUSTER, crashed(*tie), None).node == "ctl-1"
    tie = (at("ctl-0", 5), at("ctl-1", 12), at("ctl-2", 12))
    assert choose_bootstrap(CLUSTER, crashed(*tie), None).node == "ctl-1"


def test_an_unknown_position_refuses_naming_the_member() -> None:
    members = (at("ctl-0", 10), at("ctl-1", 12), GaleraMember("ctl-2", UUID, -1))
    with pytest.raises(UnsafePlan) as refused:
        choose_bootstrap(CLUSTER, crashed(*members), BACKUP_MANIFEST)
    assert refused.value.exit_code == 3
    assert "galera@ctl-2: position unknown" in str(refused.value)
    assert "--bootstrap" in str(refused.value)


def test_a_member_never_observed_refuses_too() -> None:
    with pytest.raises(UnsafePlan, match="galera@ctl-2"):
        choose_bootstrap(CLUSTER, crashed(at("ctl-0", 1), at("ctl-1", 2)), None)


def test_an_unreachable_member_refuses_it_may_be_ahead() -> None:
    members = (at("ctl-0", 10), at("ctl-1", 12), at("ctl-2", 99))
    with pytest.raises(UnsafePlan, match="galera@ctl-2: unreachable"):
        choose_bootstrap(CLUSTER, crashed(*members, down=("ctl-2",)), None)


def test_different_histories_refuse() -> None:
    other = GaleraMember("ctl-2", "11111111-0000-11ee-8000-000000000001", 50, True)
    with pytest.raises(UnsafePlan, match="different histories"):
        choose_bootstrap(CLUSTER, crashed(at("ctl-0", 1), at("ctl-1", 2), other), None)


def test_bootstrap_forces_a_choice_and_keeps_what_it_overrode() -> None:
    members = (at("ctl-0", 10), at("ctl-1", 12), GaleraMember("ctl-2", UUID, -1))
    choice = choose_bootstrap(CLUSTER, crashed(*members), None, forced="ctl-0")
    assert (choice.node, choice.source) == ("ctl-0", FORCED)
    assert any("ctl-2" in o for o in choice.overridden)
    assert data_loss(choice, None).startswith("unknown")


def test_bootstrap_of_a_non_member_is_bad_input() -> None:
    with pytest.raises(UsageError, match="--bootstrap"):
        choose_bootstrap(CLUSTER, crashed(), None, forced="cmp-hdd-0")


def test_no_member_with_data_restores_the_backup() -> None:
    empty = tuple(GaleraMember(m, has_data=False) for m in MEMBERS)
    choice = choose_bootstrap(CLUSTER, crashed(*empty), BACKUP_MANIFEST)
    assert (choice.node, choice.source, choice.seqno) == ("ctl-0", BACKUP, 40)
    assert "after backup lab-b1" in data_loss(choice, BACKUP_MANIFEST)
    with pytest.raises(PlanningError, match="no backup"):
        choose_bootstrap(CLUSTER, crashed(*empty), None)


def test_a_primary_component_is_not_bootstrapped_again() -> None:
    observed = ObservedState(
        "lab", "sim", stores=(StoreObservation("galera", ("ctl-0", "ctl-1"), 2, True),)
    )
    choice = choose_bootstrap(CLUSTER, observed, None)
    assert choice.source == RUNNING and choice.node is None
    assert data_loss(choice, None).startswith("none")


def test_a_survivor_loses_nothing() -> None:
    choice = choose_bootstrap(
        CLUSTER, crashed(at("ctl-0", 3), at("ctl-1", 4), at("ctl-2", 5)), None
    )
    assert data_loss(choice, None).startswith("none: ctl-2")


def test_observed_positions_round_trip_and_bad_ones_are_named() -> None:
    from lifecycle.errors import InputError
    from lifecycle.model.observed import observed_from_dict

    observed = crashed(at("ctl-0", 3), at("ctl-1", 4, clean=True, safe=True))
    assert observed_from_dict(observed.to_dict()) == observed
    assert "galera" not in ObservedState("lab", "sim").to_dict()  # older readers see no change
    bad = {**observed.to_dict(), "galera": [{"node": "ctl-0", "seqno": "5"}]}
    with pytest.raises(InputError, match=r"galera\[0\]\.seqno"):
        observed_from_dict(bad, "obs.json")
