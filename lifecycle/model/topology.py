"""The cluster as a graph: nodes, the service instances on them, and who depends on whom.

Vertices are node names (`kind="node"`) and service instances `service@node` (`kind="instance"`).
Edges: `instance -> node` (`kind="runs-on"`) and `instance -> instance` (`kind="depends-on"`), an
instance depending on every instance of each service its service depends on.
"""

from __future__ import annotations

import networkx as nx

from lifecycle.catalog import Catalog
from lifecycle.errors import DependencyCycle
from lifecycle.model import Cluster

RUNS_ON = "runs-on"
DEPENDS_ON = "depends-on"


def instance(service: str, node: str) -> str:
    """The vertex name of one service instance."""
    return f"{service}@{node}"


def build_topology(cluster: Cluster, catalog: Catalog) -> nx.DiGraph:
    """The graph of `cluster`'s nodes and service instances (services unknown to `catalog` get
    vertices but no dependency edges)."""
    graph: nx.DiGraph = nx.DiGraph(cluster=cluster.name)
    for node in cluster.nodes:
        graph.add_node(
            node.name,
            kind="node",
            role=node.role,
            failure_domain=node.failure_domain,
            aggregate=cluster.aggregate_of(node),
            address=node.address,
        )
        for service in cluster.services_of(node):
            spec = catalog.services.get(service)
            name = instance(service, node.name)
            graph.add_node(
                name,
                kind="instance",
                service=service,
                node=node.name,
                tier=spec.tier.label if spec else "unknown",
            )
            graph.add_edge(name, node.name, kind=RUNS_ON)
    members = cluster.members
    for service, nodes in members.items():
        spec = catalog.services.get(service)
        for dep in spec.depends_on if spec else ():
            for here in nodes:
                for there in members.get(dep, ()):
                    graph.add_edge(instance(service, here), instance(dep, there), kind=DEPENDS_ON)
    return graph


def dependency_view(graph: nx.DiGraph) -> nx.DiGraph:
    """Only the depends-on edges (a read-only view)."""

    def keep(u: str, v: str) -> bool:
        return bool(graph.edges[u, v].get("kind") == DEPENDS_ON)

    return nx.subgraph_view(graph, filter_edge=keep)


def check_acyclic(graph: nx.DiGraph) -> None:
    """Raise DependencyCycle naming the instances of a dependency cycle, if there is one."""
    deps: nx.DiGraph = nx.DiGraph()
    deps.add_edges_from((u, v) for u, v, kind in graph.edges(data="kind") if kind == DEPENDS_ON)
    if nx.is_directed_acyclic_graph(deps):  # a topological sort: linear, and the usual answer
        return
    raise DependencyCycle([edge[0] for edge in nx.find_cycle(deps)])
