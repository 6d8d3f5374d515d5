"""The catalog: what lifecycle knows about services and releases, loaded from YAML data files."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from lifecycle.errors import CatalogError, DependencyCycle
from lifecycle.model.release import Release, ReleaseTrain
from lifecycle.model.service import CARRIED, Quorum, ServiceSpec, Tier

if TYPE_CHECKING:
    import networkx as nx

_SERVICE_KEYS = {
    "tier",
    "quorum",
    "depends_on",
    "workloads",
    "tripleo",
    "project",
    "follows",
    "duration",
    "ceph",
    "carries",
    "precedes",
}


@dataclass(frozen=True)
class Catalog:
    services: dict[str, ServiceSpec]
    openstack: ReleaseTrain
    ceph: ReleaseTrain
    tripleo_map: dict[str, str]  # OS::TripleO::Services::X short name -> catalog service
    tripleo_ignored: frozenset[str]
    step_durations: dict[str, float]
    # projects whose database and schema `deploy` creates (services.yaml `deploy_databases`)
    deploy_databases: tuple[str, ...] = ()

    def service(self, name: str) -> ServiceSpec:
        return self.services[name]

    def duration(self, kind: str) -> float:
        return self.step_durations[kind]

    def dependency_order(self) -> list[str]:
        """Services in an order where every dependency comes first (ties by tier, then name):
        networkx's lexicographical_topological_sort, without importing networkx (~0.15 s of a
        command) for a few dozen services. Raises DependencyCycle."""
        waiting = {name: len(set(spec.depends_on)) for name, spec in self.services.items()}
        users: dict[str, list[str]] = {name: [] for name in self.services}
        for name, spec in self.services.items():
            for dep in set(spec.depends_on):
                users.setdefault(dep, []).append(name)
        ready = [(self.services[n].tier, n) for n, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            _, name = heapq.heappop(ready)
            order.append(name)
            for user in users.get(name, ()):
                waiting[user] -= 1
                if waiting[user] == 0:
                    heapq.heappush(ready, (self.services[user].tier, user))
        if len(order) != len(waiting):
            import networkx as nx

            raise DependencyCycle([e[0] for e in nx.find_cycle(self.dependency_graph())])
        return order

    def dependency_graph(self) -> nx.DiGraph:
        import networkx as nx

        graph: nx.DiGraph = nx.DiGraph()
        for name, spec in self.services.items():
            graph.add_node(name)
            for dep in spec.depends_on:
                graph.add_edge(dep, name)
            for later in spec.precedes:
                graph.add_edge(name, later)
        return graph

    def project_of(self, name: str) -> str | None:
        """The project whose database a service's code uses: its own, or for a data-plane agent
        the project of the control services it follows (nova-compute -> nova, the Neutron agents
        -> neutron), so that a schema is contracted only after they are new too."""
        spec = self.services[name]
        if spec.project:
            return spec.project
        for leader in spec.follows:
            if self.services[leader].project:
                return self.services[leader].project
        return None

    def preceded_by(self, name: str) -> tuple[str, ...]:
        """Services that must be upgraded everywhere before `name` (the inverse of precedes)."""
        return tuple(s for s, spec in self.services.items() if name in spec.precedes)


def _fail(field: str, expected: str) -> CatalogError:
    return CatalogError.at("lifecycle/catalog", field, expected)


def _service(name: str, raw: dict[str, Any]) -> ServiceSpec:
    unknown = set(raw) - _SERVICE_KEYS
    if unknown:
        raise _fail(f"services.{name}", f"unknown keys {sorted(unknown)}")
    return ServiceSpec(
        name=name,
        tier=Tier[str(raw["tier"]).upper()],
        quorum=Quorum(raw.get("quorum", "none")),
        depends_on=tuple(raw.get("depends_on", ())),
        workloads=bool(raw.get("workloads", False)),
        tripleo=tuple(raw.get("tripleo", ())),
        project=raw.get("project"),
        follows=tuple(raw.get("follows", ())),
        duration=float(raw.get("duration", 120)),
        ceph=bool(raw.get("ceph", False)),
        carries=_carries(name, raw.get("carries")),
        precedes=tuple(raw.get("precedes", ())),
    )


def _carries(name: str, value: Any) -> str | None:
    if value is not None and value not in CARRIED:
        raise _fail(f"services.{name}.carries", f"one of {', '.join(CARRIED)}, not {value!r}")
    return None if value is None else str(value)


def _train(product: str, raw: dict[str, Any]) -> ReleaseTrain:
    releases = []
    for index, item in enumerate(raw["releases"]):
        entry = item if isinstance(item, dict) else {"name": str(item)}
        releases.append(
            Release(
                name=str(entry["name"]),
                index=index,
                slurp=bool(entry.get("slurp", False)),
                aliases=tuple(entry.get("aliases", ())),
            )
        )
    return ReleaseTrain(
        product=product, releases=tuple(releases), max_jump=int(raw.get("max_jump", 1))
    )


def build_catalog(services_raw: dict[str, Any], releases_raw: dict[str, Any]) -> Catalog:
    """Build and check a catalog from parsed YAML (exposed for tests of broken catalogs)."""
    services = {name: _service(name, raw) for name, raw in services_raw["services"].items()}
    tripleo_map: dict[str, str] = {}
    for spec in services.values():
        for ref in (*spec.depends_on, *spec.follows, *spec.precedes):
            if ref not in services:
                raise _fail(f"services.{spec.name}", f"refers to unknown service {ref!r}")
        for short in spec.tripleo:
            if short in tripleo_map:
                raise _fail(
                    f"services.{spec.name}.tripleo", f"{short} already maps to {tripleo_map[short]}"
                )
            tripleo_map[short] = spec.name
    catalog = Catalog(
        services=services,
        openstack=_train("openstack", releases_raw["openstack"]),
        ceph=_train("ceph", releases_raw["ceph"]),
        tripleo_map=tripleo_map,
        tripleo_ignored=frozenset(services_raw.get("tripleo_ignored", ())),
        step_durations={k: float(v) for k, v in services_raw["steps"].items()},
        deploy_databases=tuple(map(str, services_raw.get("deploy_databases", ()))),
    )
    catalog.dependency_order()  # raises DependencyCycle naming a cycle
    return catalog


def _load_yaml(text: str) -> Any:
    # libyaml's loader when the platform has it: the pure-Python one costs ~0.07 s per command
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@cache
def load_catalog() -> Catalog:
    """The catalog shipped with lifecycle."""
    here = resources.files("lifecycle.catalog")
    services_raw = _load_yaml(here.joinpath("services.yaml").read_text())
    releases_raw = _load_yaml(here.joinpath("releases.yaml").read_text())
    return build_catalog(services_raw, releases_raw)
