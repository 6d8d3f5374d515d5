"""Clusters built in code, for planner tests that must not depend on inventory files."""

from __future__ import annotations

from lifecycle.model import Cluster, MaxUnavailable, NodeSpec, Policies, RoleSpec
from lifecycle.model.observed import REACHABLE, InstanceObservation, NodeObservation, ObservedState

CONTROLLER = (
    "haproxy",
    "galera",
    "rabbitmq",
    "memcached",
    "keystone",
    "glance-api",
    "placement-api",
    "nova-api",
    "nova-conductor",
    "nova-scheduler",
    "neutron-server",
    "cinder-api",
    "horizon",
    "ceph-mon",
    "ceph-mgr",
)
COMPUTE = ("nova-compute", "neutron-ovs-agent")


def lab_like(
    computes_hdd: int = 12,
    computes_ssd: int = 8,
    controllers: int = 3,
    ceph: int = 5,
    networkers: int = 2,
    release: str = "train",
    policies: Policies | None = None,
) -> Cluster:
    roles = (
        RoleSpec("Controller", CONTROLLER),
        RoleSpec(
            "Networker",
            (
                "neutron-l3-agent",
                "neutron-dhcp-agent",
                "neutron-metadata-agent",
                "neutron-ovs-agent",
            ),
        ),
        RoleSpec("ComputeHDD", COMPUTE, aggregate="hdd"),
        RoleSpec("ComputeSSD", COMPUTE, aggregate="ssd", profile="compute-ssd"),
        RoleSpec("CephStorage", ("ceph-osd",)),
    )
    nodes: list[NodeSpec] = []

    def add(prefix: str, role: str, count: int) -> None:
        for i in range(count):
            nodes.append(NodeSpec(f"{prefix}-{i}", role, failure_domain=f"rack{i % 2 + 1}"))

    add("ctl", "Controller", controllers)
    add("net", "Networker", networkers)
    add("cmp-hdd", "ComputeHDD", computes_hdd)
    add("cmp-ssd", "ComputeSSD", computes_ssd)
    add("ceph", "CephStorage", ceph)
    policies = policies or Policies(
        max_unavailable=MaxUnavailable(1),
        aggregate_max_unavailable=(("ssd", MaxUnavailable(None, 25.0)), ("hdd", MaxUnavailable(2))),
    )
    return Cluster(
        name="lab",
        release=release,
        ceph_release="nautilus",
        roles=roles,
        nodes=tuple(nodes),
        policies=policies,
    )


def observed_at(cluster: Cluster, at: dict[str, str], **more: object) -> ObservedState:
    """An observation of `cluster` with every node reachable and each instance of `at`
    ("service@node" -> release) seen running that release; `more`: other ObservedState fields."""
    return ObservedState(
        cluster=cluster.name,
        driver="test",
        nodes=tuple(NodeObservation(n.name, REACHABLE) for n in cluster.nodes),
        instances=tuple(
            InstanceObservation(t.partition("@")[0], t.partition("@")[2], r) for t, r in at.items()
        ),
        **more,  # type: ignore[arg-type]
    )
