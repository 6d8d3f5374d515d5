"""A STAND-IN for Ceph's OSD map on the testbed (no Ceph runs there): which OSD ids each host
holds, whether each is up, in or destroyed, and which hosts the CRUSH map has. Stdlib only: the
playbooks run this file with the hosts' Python (`ceph-osd-replace`, `deploy`, `deploy-service`).

The map is the monitors' (a copy per ceph-mon host, `<host_root>/ceph-osdmap.json`, each write
to every copy, the first copy that exists read), JSON of the shape
    {"osds": {"<id>": {"host": str | null, "was": str, "up": bool, "in": bool,
                       "destroyed": bool}},
     "crush_hosts": [str, ...]}

Operations (`python3 ceph_osdmap.py MAPS_JSON OP HOST [ARG]`, MAPS_JSON a JSON list of the
copies' paths; prints {"changed": bool, ...}; exit 1 with the reason when Ceph would refuse):

- `seed HOST HOSTS_JSON`: a fresh map, OSDS_PER_HOST ids per host in order (kept if present);
- `out HOST`: `ceph osd out` of every OSD of HOST;
- `safe-to-destroy HOST`: `ceph osd safe-to-destroy`: refused while one of them is in (its
  placement groups are still mapped to it: the backfill is instant here once it is out);
- `destroy HOST`: `ceph osd destroy --yes-i-really-mean-it`: refused unless safe to destroy;
  the ids are kept (marked destroyed) for a replacement, as cephadm's `osd rm --replace`;
- `host-remove HOST`: `ceph osd crush remove HOST`: refused while HOST holds a live OSD;
- `create HOST [OLD]`: `ceph-volume lvm create` on HOST: with OLD, `--osd-id` of each id
  destroyed on OLD (refused when OLD has none: Ceph reuses only destroyed ids), otherwise
  OSDS_PER_HOST new ids; HOST joins the CRUSH map;
- `wait-active-clean HOST`: `ceph pg stat` says every PG is active+clean: refused while an OSD that
  is not destroyed is down or out (its PGs would be degraded or remapped);
- `show HOST`: the map.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

OSDS_PER_HOST = 2


class Refused(Exception):
    """What Ceph would answer with an error (EBUSY, ENOENT...)."""


def load(paths: list[str]) -> dict[str, Any] | None:
    for path in paths:
        if Path(path).exists():
            data: dict[str, Any] = json.loads(Path(path).read_text())
            return data
    return None


def save(paths: list[str], osdmap: dict[str, Any]) -> None:
    for path in paths:
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(osdmap, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)


def held_by(osdmap: dict[str, Any], host: str) -> dict[str, dict[str, Any]]:
    return {i: o for i, o in osdmap["osds"].items() if o["host"] == host}


def seed(hosts: list[str]) -> dict[str, Any]:
    osds = {
        str(n * OSDS_PER_HOST + k): {"host": h, "was": h, "up": True, "in": True,
                                     "destroyed": False}
        for n, h in enumerate(hosts)
        for k in range(OSDS_PER_HOST)
    }  # fmt: skip
    return {"osds": osds, "crush_hosts": list(hosts)}


def apply(osdmap: dict[str, Any], op: str, host: str, arg: str | None = None) -> bool:
    """Apply `op` to `osdmap` in place; True when it changed. Refused as Ceph would refuse."""
    mine = held_by(osdmap, host)
    if op == "out":
        changed = any(o["in"] for o in mine.values())
        for osd in mine.values():
            osd["in"] = False
        return changed
    if op == "safe-to-destroy":
        busy = sorted(i for i, o in mine.items() if o["in"] and not o["destroyed"])
        if busy:
            raise Refused(f"osd.{', osd.'.join(busy)} still in: not safe to destroy")
        return False
    if op == "destroy":
        apply(osdmap, "safe-to-destroy", host)
        changed = any(not o["destroyed"] for o in mine.values())
        for osd in mine.values():
            osd.update(up=False, destroyed=True)
        return changed
    if op == "host-remove":
        live = sorted(i for i, o in mine.items() if not o["destroyed"])
        if live:
            raise Refused(f"host {host} still holds live osd.{', osd.'.join(live)}")
        for osd in mine.values():
            osd["host"] = None  # the destroyed ids stay in the map, for a replacement
        changed = host in osdmap["crush_hosts"]
        osdmap["crush_hosts"] = [h for h in osdmap["crush_hosts"] if h != host]
        return changed
    if op == "create":
        return _create(osdmap, host, arg)
    if op == "wait-active-clean":
        bad = sorted(
            f"osd.{i} ({'down' if not o['up'] else 'out'})"
            for i, o in osdmap["osds"].items()
            if not o["destroyed"] and not (o["up"] and o["in"])
        )
        if bad:
            raise Refused(f"placement groups not active+clean: {', '.join(bad)}")
        return False
    if op == "show":
        return False
    raise Refused(f"unknown operation {op!r}")


def _create(osdmap: dict[str, Any], host: str, old: str | None) -> bool:
    mine = held_by(osdmap, host)
    if mine and all(o["up"] and o["in"] and not o["destroyed"] for o in mine.values()):
        return False  # already created
    if old:
        ids = sorted(
            (i for i, o in osdmap["osds"].items() if o["destroyed"] and o["was"] == old), key=int
        )
        if not ids:
            raise Refused(f"{old} has no destroyed OSD whose id {host} could reuse")
    else:
        first = max((int(i) for i in osdmap["osds"]), default=-1) + 1
        ids = [str(first + k) for k in range(OSDS_PER_HOST)]
    for osd_id in ids:
        osdmap["osds"][osd_id] = {"host": host, "was": host, "up": True, "in": True,
                                  "destroyed": False}  # fmt: skip
    if host not in osdmap["crush_hosts"]:
        osdmap["crush_hosts"].append(host)
    return True


def main(argv: list[str]) -> int:
    paths, op, host = json.loads(argv[1]), argv[2], argv[3]
    arg = argv[4] if len(argv) > 4 and argv[4] else None
    osdmap = load(paths)
    if op == "seed":
        if osdmap is None:
            save(paths, seed(json.loads(arg or "[]")))
            print(json.dumps({"changed": True}))
        else:
            missing = [p for p in paths if not Path(p).exists()]
            save(missing, osdmap)  # a new monitor gets the map
            print(json.dumps({"changed": bool(missing)}))
        return 0
    if osdmap is None and op == "create":
        osdmap = {"osds": {}, "crush_hosts": []}  # the first OSD host of a new cluster
    if osdmap is None:
        print(f"no OSD map on the monitors ({', '.join(paths)})", file=sys.stderr)
        return 1
    try:
        changed = apply(osdmap, op, host, arg)
    except Refused as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if changed:
        save(paths, osdmap)
    print(json.dumps({"changed": changed, "osds": held_by(osdmap, host)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
