"""The observed state's JSON form: any ObservedState survives to_dict -> JSON -> from_dict."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.model.observed import (
    NODE_STATES,
    NOT_RUNNING,
    UNKNOWN,
    ComputeObservation,
    InstanceObservation,
    NodeObservation,
    ObservedState,
    StoreObservation,
    observed_from_dict,
)

names = st.text("abcdefgh-0123", min_size=1, max_size=8)
maybe_bool = st.none() | st.booleans()
observed_states = st.builds(
    ObservedState,
    cluster=names,
    driver=st.sampled_from(["sim", "testbed", "cloud"]),
    nodes=st.lists(
        st.builds(NodeObservation, names, st.sampled_from(NODE_STATES), st.text(max_size=20))
    ).map(tuple),
    instances=st.lists(
        st.builds(
            InstanceObservation,
            names,
            names,
            st.sampled_from(["train", "ussuri", NOT_RUNNING, UNKNOWN]),
        )
    ).map(tuple),
    stores=st.lists(
        st.builds(
            StoreObservation,
            service=st.sampled_from(["galera", "rabbitmq", "ceph-mon"]),
            members=st.lists(names).map(tuple),
            size=st.none() | st.integers(0, 9),
            quorum=maybe_bool,
            health=st.sampled_from(["healthy", "degraded", "down", UNKNOWN]),
            status=st.dictionaries(names, names).map(lambda d: tuple(sorted(d.items()))),
            flags=st.lists(st.sampled_from(["noout", "norebalance"]), unique=True).map(tuple),
            partitions=st.lists(names).map(tuple),
            standin=st.booleans(),
        )
    ).map(tuple),
    computes=st.lists(
        st.builds(ComputeObservation, names, maybe_bool, maybe_bool, st.none() | st.integers(0, 99))
    ).map(tuple),
    unobservable=st.lists(st.text(max_size=30)).map(tuple),
)


@settings(max_examples=100, deadline=None)
@given(observed_states)
def test_any_observed_state_round_trips_through_json(observed: ObservedState) -> None:
    again = observed_from_dict(json.loads(json.dumps(observed.to_dict())))
    assert again == observed
    assert again.to_dict() == observed.to_dict()
