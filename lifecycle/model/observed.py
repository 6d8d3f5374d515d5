"""The observed state: what the cloud really runs, as a driver saw it (DESIGN "Desired state,
observed state"). The inventory (Cluster) is what the operator wants; this is what is there.

Shapes (all frozen, JSON both ways through `to_dict` / `observed_from_dict`):
- per node: `reachable` | `unreachable` | `unknown`;
- per service instance (`service@node`): its running release name, `not running`, or `unknown`;
- per clustered store (Galera, RabbitMQ, Ceph mon): the members seen, health, quorum, the
  store's own status fields under their upstream names (Galera `wsrep_cluster_size`,
  `wsrep_cluster_status`, `wsrep_local_state_comment`; RabbitMQ `running_nodes`, `partitions`;
  Ceph `quorum_names`) and flags (Ceph `noout`, ...);
- per compute: enabled or disabled, up or down, and how many instances it holds;
- per Galera member (`galera`, for recovery): its `grastate.dat` uuid, seqno and
  safe_to_bootstrap, the position `mariadbd --wsrep-recover` recovered when it was read, its
  `wsrep_local_state_comment` when running, and whether its data directory holds data;
- `unobservable`: what the driver could not observe, each named ("galera: wsrep_* (no SQL access
  from the compute API)").
A value the driver could not read is None (or `unknown`), never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from lifecycle.errors import InputError

REACHABLE = "reachable"
UNREACHABLE = "unreachable"
UNKNOWN = "unknown"
NOT_RUNNING = "not running"
NODE_STATES = (REACHABLE, UNREACHABLE, UNKNOWN)
FORMAT = "lifecycle.observed/1"


@dataclass(frozen=True)
class NodeObservation:
    name: str
    state: str = UNKNOWN  # NODE_STATES
    detail: str = ""  # why unreachable, as the driver said it


@dataclass(frozen=True)
class InstanceObservation:
    """One service instance: `release` is a release name, NOT_RUNNING or UNKNOWN."""

    service: str
    node: str
    release: str = UNKNOWN
    detail: str = ""

    @property
    def instance(self) -> str:
        return f"{self.service}@{self.node}"

    @property
    def known(self) -> bool:
        return self.release not in (UNKNOWN, NOT_RUNNING)


@dataclass(frozen=True)
class StoreObservation:
    """A clustered store as its members report it.

    `members`: the nodes the store counts as joined (Galera's primary component, RabbitMQ's
    running_nodes, Ceph's quorum_names); `size`: how many members it reports (None: not read);
    `quorum`: whether it has quorum (None: unknown); `health`: `healthy` | `degraded` | `down` |
    `unknown`; `status`: the store's own fields by their upstream names; `flags`: flags set
    (Ceph `noout`, `norebalance`...); `standin`: the testbed's stand-in daemon, not the real
    store (it reports membership and a majority only)."""

    service: str
    members: tuple[str, ...] = ()
    size: int | None = None
    quorum: bool | None = None
    health: str = UNKNOWN
    status: tuple[tuple[str, str], ...] = ()
    flags: tuple[str, ...] = ()
    partitions: tuple[str, ...] = ()
    standin: bool = False

    def field(self, name: str) -> str | None:
        return dict(self.status).get(name)


@dataclass(frozen=True)
class GaleraMember:
    """One Galera member's saved and recovered position (what a recovery chooses by).

    `uuid`/`seqno`/`safe_to_bootstrap`: its `grastate.dat` (seqno -1 after a crash: unknown);
    `recovered`: the seqno `mariadbd --wsrep-recover` printed ("Recovered position: UUID:SEQNO"),
    None when not read; `state`: `wsrep_local_state_comment` when running (e.g. `Synced`);
    `has_data`: whether its data directory holds a database (False: empty or gone; None:
    unknown). Upstream: https://galeracluster.com/library/documentation/crash-recovery.html"""

    node: str
    uuid: str | None = None
    seqno: int | None = None
    safe_to_bootstrap: bool | None = None
    recovered: int | None = None
    state: str | None = None
    has_data: bool | None = None

    @property
    def position(self) -> int | None:
        """The member's last committed seqno: grastate's when it is >= 0 (a clean stop), else the
        recovered one; None when neither is known."""
        if self.seqno is not None and self.seqno >= 0:
            return self.seqno
        return self.recovered


@dataclass(frozen=True)
class ComputeObservation:
    """A compute host's nova-compute service: enabled (None: unknown), up, instances held."""

    node: str
    enabled: bool | None = None
    up: bool | None = None
    instances: int | None = None


@dataclass(frozen=True)
class ObservedState:
    """What `driver` saw of cluster `cluster` (see the module docstring for the shapes)."""

    cluster: str
    driver: str
    nodes: tuple[NodeObservation, ...] = ()
    instances: tuple[InstanceObservation, ...] = ()
    stores: tuple[StoreObservation, ...] = ()
    computes: tuple[ComputeObservation, ...] = ()
    unobservable: tuple[str, ...] = ()
    observed_at: str = field(default="", compare=False)  # ISO 8601, stamped by the driver
    galera: tuple[GaleraMember, ...] = ()

    def galera_member(self, node: str) -> GaleraMember | None:
        return next((g for g in self.galera if g.node == node), None)

    @cached_property
    def _nodes(self) -> dict[str, NodeObservation]:
        return {n.name: n for n in self.nodes}

    @cached_property
    def _instances(self) -> dict[str, InstanceObservation]:
        return {i.instance: i for i in self.instances}

    def node(self, name: str) -> NodeObservation | None:
        return self._nodes.get(name)

    def node_state(self, node: str) -> str:
        seen = self._nodes.get(node)
        return seen.state if seen else UNKNOWN

    def release_of(self, instance: str) -> str:
        """`service@node` -> its release, NOT_RUNNING or UNKNOWN."""
        seen = self._instances.get(instance)
        return seen.release if seen else UNKNOWN

    def store(self, service: str) -> StoreObservation | None:
        return next((s for s in self.stores if s.service == service), None)

    def compute(self, node: str) -> ComputeObservation | None:
        return next((c for c in self.computes if c.node == node), None)

    @property
    def unreachable(self) -> tuple[str, ...]:
        """Nodes the driver could not reach, in observation order."""
        return tuple(n.name for n in self.nodes if n.state == UNREACHABLE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "cluster": self.cluster,
            "driver": self.driver,
            "observed_at": self.observed_at,
            "nodes": [_plain(n) for n in self.nodes],
            "instances": [_plain(i) for i in self.instances],
            "stores": [
                {**_plain(s), "status": dict(s.status), "members": list(s.members)}
                for s in self.stores
            ],
            "computes": [_plain(c) for c in self.computes],
            "unobservable": list(self.unobservable),
            **({"galera": [_plain(g) for g in self.galera]} if self.galera else {}),
        }


def _plain(obj: Any) -> dict[str, Any]:
    out = {}
    for name in obj.__dataclass_fields__:
        value = getattr(obj, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


# --- reading it back -------------------------------------------------------------------------


class _Reader:
    """Typed field access that names the file and field of anything wrong (InputError, exit 2)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, expected: str) -> InputError:
        return InputError.at(self.source, where, expected)

    def get(self, data: Mapping[str, Any], where: str, key: str, kind: Any, default: Any) -> Any:
        value = data.get(key, default)
        if value is None and default is None:
            return None
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            name = getattr(kind, "__name__", str(kind))
            raise self.fail(f"{where}.{key}", f"a {name}, not {type(value).__name__}")
        return value

    def strings(self, data: Mapping[str, Any], where: str, key: str) -> tuple[str, ...]:
        value = self.get(data, where, key, list, [])
        if not all(isinstance(v, str) for v in value):
            raise self.fail(f"{where}.{key}", "a list of strings")
        return tuple(value)

    def items(self, data: Mapping[str, Any], key: str) -> list[tuple[str, Mapping[str, Any]]]:
        value = self.get(data, "", key, list, [])
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise self.fail(f"{key}[{i}]", "a mapping")
            out.append((f"{key}[{i}]", item))
        return out


def observed_from_dict(data: Any, source: str = "<observed>") -> ObservedState:
    """The inverse of `ObservedState.to_dict` (the JSON of `lifecycle status -f json`).
    Raises InputError naming `source` and the field when the data is not that shape."""
    r = _Reader(source)
    if not isinstance(data, Mapping):
        raise r.fail("", "a JSON object from `lifecycle status -f json`")
    if data.get("format", FORMAT) != FORMAT:
        raise r.fail("format", f"{FORMAT!r}, not {data.get('format')!r}")
    nodes = []
    for where, item in r.items(data, "nodes"):
        state = r.get(item, where, "state", str, UNKNOWN)
        if state not in NODE_STATES:
            raise r.fail(f"{where}.state", f"one of {', '.join(NODE_STATES)}, not {state!r}")
        nodes.append(
            NodeObservation(
                r.get(item, where, "name", str, ""), state, r.get(item, where, "detail", str, "")
            )
        )
    instances = [
        InstanceObservation(
            r.get(item, where, "service", str, ""),
            r.get(item, where, "node", str, ""),
            r.get(item, where, "release", str, UNKNOWN),
            r.get(item, where, "detail", str, ""),
        )
        for where, item in r.items(data, "instances")
    ]
    stores = []
    for where, item in r.items(data, "stores"):
        status = r.get(item, where, "status", Mapping, {})
        stores.append(
            StoreObservation(
                service=r.get(item, where, "service", str, ""),
                members=r.strings(item, where, "members"),
                size=r.get(item, where, "size", int, None),
                quorum=r.get(item, where, "quorum", bool, None),
                health=r.get(item, where, "health", str, UNKNOWN),
                status=tuple(sorted((str(k), str(v)) for k, v in status.items())),
                flags=r.strings(item, where, "flags"),
                partitions=r.strings(item, where, "partitions"),
                standin=r.get(item, where, "standin", bool, False),
            )
        )
    computes = [
        ComputeObservation(
            node=r.get(item, where, "node", str, ""),
            enabled=r.get(item, where, "enabled", bool, None),
            up=r.get(item, where, "up", bool, None),
            instances=r.get(item, where, "instances", int, None),
        )
        for where, item in r.items(data, "computes")
    ]
    galera = [
        GaleraMember(
            node=r.get(item, where, "node", str, ""),
            uuid=r.get(item, where, "uuid", str, None),
            seqno=r.get(item, where, "seqno", int, None),
            safe_to_bootstrap=r.get(item, where, "safe_to_bootstrap", bool, None),
            recovered=r.get(item, where, "recovered", int, None),
            state=r.get(item, where, "state", str, None),
            has_data=r.get(item, where, "has_data", bool, None),
        )
        for where, item in r.items(data, "galera")
    ]
    return ObservedState(
        cluster=r.get(data, "", "cluster", str, ""),
        driver=r.get(data, "", "driver", str, ""),
        nodes=tuple(nodes),
        instances=tuple(instances),
        stores=tuple(stores),
        computes=tuple(computes),
        unobservable=r.strings(data, "", "unobservable"),
        observed_at=r.get(data, "", "observed_at", str, ""),
        galera=tuple(galera),
    )


def load_observed(path: str) -> ObservedState:
    """An ObservedState from a `lifecycle status -f json` file; InputError (exit 2) when the file
    cannot be read or is not that shape."""
    import json
    from pathlib import Path

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError.at(path, "", f"a readable file ({exc.strerror})") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError.at(path, "", f"JSON from `lifecycle status -f json` ({exc})") from exc
    return observed_from_dict(data, path)
