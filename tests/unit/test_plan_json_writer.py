"""plan_to_json writes exactly what json.dumps(..., indent=1) would (the contract's bytes and the
golden plans stay the same), and the digest it fills in is the plan's own."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from lifecycle.formats.inventory import load_inventory
from lifecycle.formats.plan_json import (
    _indented,
    body_chunks,
    digest_of,
    plan_from_json,
    plan_to_dict,
    plan_to_json,
)
from lifecycle.planning.upgrade import UpgradeIntent, plan_upgrade

ROOT = Path(__file__).resolve().parents[2]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(values, st.integers(min_value=0, max_value=3))
def test_writer_is_json_dumps_with_indent(value: object, indent: int) -> None:
    assert _indented(value, "", " " * indent) == json.dumps(value, indent=indent)


# a body as plans have them (string keys), with values the writer leaves to json.dumps too
# (integer keys in nested dicts)
bodies = st.dictionaries(
    st.text(max_size=6),
    values | st.lists(st.dictionaries(st.integers(), values, max_size=3)),
    max_size=5,
)


@given(bodies, st.integers(min_value=0, max_value=3))
def test_pieces_are_json_dumps_with_indent(body: dict[str, object], indent: int) -> None:
    assert "".join(body_chunks(body, indent)) == json.dumps(body, indent=indent)


@given(bodies)
def test_digest_by_pieces_is_of_the_canonical_text(body: dict[str, object]) -> None:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    assert digest_of(body) == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def test_plan_json_round_trip_keeps_digest() -> None:
    cluster = load_inventory(ROOT / "inventories" / "lab")
    plan = plan_upgrade(cluster, UpgradeIntent("wallaby", "pacific"))
    text = plan_to_json(plan)
    assert text == json.dumps(plan_to_dict(plan), indent=1)
    again = plan_from_json(text)
    assert again.digest == plan.digest == json.loads(text)["digest"]
    assert digest_of(plan_to_dict(again, with_digest=False)) == plan.digest
