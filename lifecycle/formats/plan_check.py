"""A loaded plan's names checked against the cluster and the catalog, before the verifier.

`plan_json` checks a plan's shape; this checks what its names mean: the nodes a step runs on,
the `service@node` instances it upgrades or disrupts, the services and releases its params name.
A hand-edited plan that names a service the catalog does not know, a node the inventory does not
have or a release no train holds is bad input (exit 2, naming the file, the step and the field),
never a KeyError from the verifier's replay.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from lifecycle.catalog import Catalog, load_catalog
from lifecycle.errors import InputError, Problem
from lifecycle.formats.plan_json import with_lines
from lifecycle.model.cluster import Cluster
from lifecycle.planning.plan import Plan, Step

_SHOWN = 25


def check_plan(plan: Plan, cluster: Cluster, source: str, catalog: Catalog | None = None) -> None:
    """Raise InputError listing every name in `plan` that `cluster` or the catalog lacks.

    New servers of a scale-out plan (its `new_nodes`) are known nodes without a role in the
    inventory yet: their instances are checked for a known service only."""
    catalog = catalog or load_catalog()
    found = _problems(plan, cluster, catalog)
    problems = [Problem(source, field, expected) for field, expected in found]
    if len(problems) > _SHOWN:
        more = len(problems) - _SHOWN
        problems = [*problems[:_SHOWN], Problem(source, "", f"... and {more} more problem(s)")]
    if problems:
        raise InputError(with_lines(problems, _text_of(source)))


def _text_of(source: str) -> str | None:
    """The plan file's text again, for line numbers only (its plan was loaded from it)."""
    try:
        return Path(source).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None


def _problems(plan: Plan, cluster: Cluster, catalog: Catalog) -> Iterator[tuple[str, str]]:
    if plan.cluster != cluster.name:
        yield "cluster", f"{cluster.name}, the inventory's cluster (the plan is for {plan.cluster})"
    openstack, ceph = set(catalog.openstack.names()), set(catalog.ceph.names())
    for key, release in (("from", plan.source), ("to", plan.target)):
        if release is not None and release not in openstack:
            yield key, f"an OpenStack release ({_known(openstack)}), not {release!r}"
    for key, value in plan.extra:
        if key in ("ceph_from", "ceph_to") and value not in ceph:
            yield key, f"a Ceph release ({_known(ceph)}), not {value!r}"
    new = dict(plan.extra).get("new_nodes")
    new_nodes = set(new) if isinstance(new, tuple) else set()
    names = _Names(cluster, catalog, new_nodes, openstack | ceph, ceph)
    for index, step in enumerate(plan.steps):
        for field, expected in names.step(step):
            yield f"steps[{index}].{field}", f"step {step.id}: {expected}"


def _known(names: set[str]) -> str:
    return "known: " + ", ".join(sorted(names))


class _Names:
    """What the cluster and the catalog know, and a step's names checked against it."""

    def __init__(
        self,
        cluster: Cluster,
        catalog: Catalog,
        new_nodes: set[str],
        releases: set[str],
        ceph: set[str],
    ) -> None:
        self.catalog = catalog
        self.members = {s: set(nodes) for s, nodes in cluster.members.items()}
        self.existing = {n.name for n in cluster.nodes}
        self.nodes = self.existing | new_nodes
        self.releases = releases
        self.ceph = ceph

    def step(self, step: Step) -> Iterator[tuple[str, str]]:
        for i, node in enumerate(step.nodes):
            if node not in self.nodes:
                yield f"nodes[{i}]", f"{node!r} is not a node of the cluster"
        for key in ("upgrades", "disrupts"):
            for i, instance in enumerate(getattr(step, key)):
                why = self.instance(instance)
                if why:
                    yield f"{key}[{i}]", why
        yield from self.params(step)

    def instance(self, instance: str) -> str | None:
        service, at, node = instance.partition("@")
        if not at:
            return f"service@node, not {instance!r}"
        if service not in self.catalog.services:
            return f"{instance}: {service!r} is not a service of the catalog"
        if node not in self.nodes:
            return f"{instance}: {node!r} is not a node of the cluster"
        if node in self.existing and node not in self.members.get(service, set()):
            return f"{instance}: {node} does not run {service} (its role's services)"
        return None

    def params(self, step: Step) -> Iterator[tuple[str, str]]:
        for key, value in step.params:
            if key == "release" and value is not None and value not in self.releases:
                yield f"params.{key}", f"a release of the catalog, not {value!r}"
            elif key == "ceph_release" and value is not None and value not in self.ceph:
                yield f"params.{key}", f"a Ceph release of the catalog, not {value!r}"
            elif key in ("service", "services"):
                named = value if isinstance(value, tuple) else (value,)
                for service in named:
                    if service not in self.catalog.services:
                        yield f"params.{key}", f"a service of the catalog, not {service!r}"
