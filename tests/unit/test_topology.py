"""The topology graph: vertices, runs-on and depends-on edges, cycles named."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import networkx as nx
import pytest

from lifecycle.catalog import load_catalog
from lifecycle.errors import DependencyCycle
from lifecycle.formats.inventory import load_inventory
from lifecycle.model import Tier
from lifecycle.model.service import ServiceSpec
from lifecycle.model.topology import DEPENDS_ON, RUNS_ON, build_topology, check_acyclic

from .cluster_factory import lab_like

DEMO = Path(__file__).resolve().parents[2] / "tests" / "data" / "demo-train"


def test_vertices_and_edges_of_the_demo() -> None:
    cluster = load_inventory(DEMO)
    graph = build_topology(cluster, load_catalog())
    instances = [v for v, d in graph.nodes(data=True) if d["kind"] == "instance"]
    assert len(instances) == 3 * 15 + 4 * 2 + 3
    assert graph.nodes["ctl-0"]["role"] == "Controller"
    assert graph.nodes["cmp-ssd-1"]["aggregate"] == "ssd"
    assert graph.edges["galera@ctl-1", "ctl-1"]["kind"] == RUNS_ON
    # an instance depends on every instance of the services its service depends on
    deps = {
        v for _, v, k in graph.out_edges("nova-compute@cmp-hdd-0", data="kind") if k == DEPENDS_ON
    }
    assert deps == {"nova-conductor@ctl-0", "nova-conductor@ctl-1", "nova-conductor@ctl-2"}
    assert graph.nodes["ceph-osd@ceph-0"]["tier"] == "storage"
    check_acyclic(graph)


def test_lab_graph_is_a_dag_of_dependencies() -> None:
    graph = build_topology(lab_like(), load_catalog())
    view = nx.subgraph_view(graph, filter_edge=lambda u, v: graph.edges[u, v]["kind"] == DEPENDS_ON)
    assert nx.is_directed_acyclic_graph(view)
    assert graph.number_of_nodes() == 30 + 3 * 15 + 2 * 4 + 20 * 2 + 5


def test_a_cycle_is_named() -> None:
    catalog = load_catalog()
    services = dict(catalog.services)
    services["galera"] = replace(services["galera"], depends_on=("keystone",))
    cyclic = replace(catalog, services=services)
    graph = build_topology(load_inventory(DEMO), cyclic)
    with pytest.raises(DependencyCycle) as info:
        check_acyclic(graph)
    cycle = info.value.cycle
    assert {c.split("@")[0] for c in cycle} == {"galera", "keystone"}
    assert "dependency cycle: " in str(info.value) and " -> " in str(info.value)


def test_unknown_service_gets_a_vertex_without_dependencies() -> None:
    catalog = load_catalog()
    services = {k: v for k, v in catalog.services.items() if k != "horizon"}
    graph = build_topology(load_inventory(DEMO), replace(catalog, services=services))
    assert graph.nodes["horizon@ctl-0"]["tier"] == "unknown"
    assert graph.out_degree("horizon@ctl-0") == 1  # runs-on only


def test_service_spec_keeps_its_tier() -> None:
    assert ServiceSpec("x", Tier.DATA).tier is Tier.DATA
