"""The testbed's stand-in Ceph OSD map (lifecycle/testbed/ceph_osdmap.py): a host replacement's
operations in order keep the ids, and each is refused where Ceph would refuse it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from lifecycle.testbed import ceph_osdmap as om

HOSTS = ["ceph-0", "ceph-1", "ceph-2", "ceph-3"]


def _map() -> dict[str, Any]:
    return om.seed(HOSTS)


def _ids(osdmap: dict[str, Any], host: str) -> list[str]:
    return sorted(om.held_by(osdmap, host))


def test_a_replacement_in_order_reuses_the_ids_and_ends_active_clean() -> None:
    osdmap = _map()
    old = _ids(osdmap, "ceph-1")
    assert old == ["2", "3"]
    for op in ("out", "safe-to-destroy", "destroy", "host-remove"):
        om.apply(osdmap, op, "ceph-1")
    assert om.apply(osdmap, "create", "ceph-9", "ceph-1")
    assert _ids(osdmap, "ceph-9") == old
    assert _ids(osdmap, "ceph-1") == []
    assert sorted(osdmap["crush_hosts"]) == ["ceph-0", "ceph-2", "ceph-3", "ceph-9"]
    assert sorted(osdmap["osds"], key=int) == [str(i) for i in range(8)]  # none minted
    assert not om.apply(osdmap, "wait-active-clean", "ceph-9")
    assert not om.apply(osdmap, "create", "ceph-9", "ceph-1")  # done: changes nothing


@pytest.mark.parametrize(
    ("done", "op", "arg", "why"),
    [
        ((), "safe-to-destroy", None, "still in"),
        ((), "destroy", None, "still in"),
        (("out",), "host-remove", None, "still holds live"),
        (("out",), "wait-active-clean", None, "osd.2 (out)"),
        (("out",), "create", "ceph-1", "no destroyed OSD"),
    ],
)
def test_what_ceph_refuses_is_refused(
    done: tuple[str, ...], op: str, arg: str | None, why: str
) -> None:
    osdmap = _map()
    for step in done:
        om.apply(osdmap, step, "ceph-1")
    with pytest.raises(om.Refused, match=re.escape(why)):
        om.apply(osdmap, op, "ceph-1" if op != "create" else "ceph-9", arg)


def test_a_new_host_without_ids_to_reuse_gets_new_ones() -> None:
    osdmap = _map()
    assert om.apply(osdmap, "create", "ceph-4")
    assert _ids(osdmap, "ceph-4") == ["8", "9"]


def test_the_command_writes_every_monitors_copy_and_fails_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copies = [str(tmp_path / f"mon-{i}.json") for i in range(3)]
    assert om.main(["x", json.dumps(copies[:1]), "seed", "mon-0", json.dumps(HOSTS)]) == 0
    # a new monitor gets the map the others have
    assert om.main(["x", json.dumps(copies), "seed", "mon-1", "[]"]) == 0
    assert om.main(["x", json.dumps(copies), "out", "ceph-1"]) == 0
    maps = [json.loads(Path(c).read_text()) for c in copies]
    assert maps[0] == maps[1] == maps[2] and not maps[0]["osds"]["2"]["in"]
    capsys.readouterr()
    assert om.main(["x", json.dumps(copies), "host-remove", "ceph-0"]) == 1
    assert "still holds live osd.0, osd.1" in capsys.readouterr().err
