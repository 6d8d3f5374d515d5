"""The recorded state: what the cloud runs as far as lifecycle's own journal knows.

After every run (succeeded, failed, paused, aborted) the journal's succeeded steps are folded into
the previous record: each service instance's release, the nodes a scale-out added, Ceph flags a
run set and did not unset, hosts it disabled and did not enable again, database schemas
contracted. It is not an observation of the cloud (that is `lifecycle status`): it says what
lifecycle did, so that `validate` and `plan` stop acting as if nothing had happened.

Pure data: lifecycle.execution.recorded_state reads and writes it; `instances_at` is the narrow
interface planners use (instance -> release), the same shape an observed state reduces to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FORMAT = 1


@dataclass(frozen=True)
class RecordedState:
    """One version of a cluster's recorded state.

    `instances`: ("service@node", release) pairs, sorted; `nodes`: (node, role) pairs of every
    node the record knows (the inventory of the run, plus nodes a scale-out deployed);
    `added`: nodes a scale-out deployed that the run's inventory did not list; `flags`: Ceph
    maintenance flags left set (e.g. "noout"; never `require-osd-release`, which is permanent);
    `disabled`: compute hosts left disabled; `contracted`: (project, release) of each database
    schema's last contraction. `run`/`run_state` name the run
    that produced this version; `version` counts versions from 1."""

    cluster: str
    run: str
    run_state: str
    operation: str
    version: int
    recorded: float  # epoch seconds
    instances: tuple[tuple[str, str], ...] = ()
    nodes: tuple[tuple[str, str], ...] = ()
    added: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    contracted: tuple[tuple[str, str], ...] = ()
    previous_run: str | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "cluster": self.cluster,
            "run": self.run,
            "run_state": self.run_state,
            "operation": self.operation,
            "version": self.version,
            "recorded": self.recorded,
            "instances": dict(self.instances),
            "nodes": dict(self.nodes),
            "added": list(self.added),
            "flags": list(self.flags),
            "disabled": list(self.disabled),
            "contracted": dict(self.contracted),
            "previous_run": self.previous_run,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordedState:
        """Raises KeyError/TypeError/ValueError on a malformed record (the reader reports it)."""
        return cls(
            cluster=str(data["cluster"]),
            run=str(data["run"]),
            run_state=str(data["run_state"]),
            operation=str(data["operation"]),
            version=int(data["version"]),
            recorded=float(data["recorded"]),
            instances=tuple(sorted((str(k), str(v)) for k, v in data["instances"].items())),
            nodes=tuple(sorted((str(k), str(v)) for k, v in data.get("nodes", {}).items())),
            added=tuple(map(str, data.get("added", ()))),
            flags=tuple(map(str, data.get("flags", ()))),
            disabled=tuple(map(str, data.get("disabled", ()))),
            contracted=tuple(
                sorted((str(k), str(v)) for k, v in data.get("contracted", {}).items())
            ),
            previous_run=data.get("previous_run"),
        )


def instances_at(record: RecordedState) -> dict[str, str]:
    """instance ("service@node") -> the release it runs, as the record knows it."""
    return dict(record.instances)


def releases_of(record: RecordedState) -> dict[str, list[str]]:
    """release -> the instances at it (sorted): how reports summarise a record."""
    out: dict[str, list[str]] = {}
    for text, release in record.instances:
        out.setdefault(release, []).append(text)
    return out
