"""The cloud driver's observation, against the Nova stand-in through the real openstacksdk."""

from __future__ import annotations

from lifecycle.model.observed import REACHABLE, UNKNOWN, UNREACHABLE
from tests.unit.test_compute_driver import CTX, driver, nova, service

__all__ = ["driver", "nova"]  # the fixtures, shared with the compute driver's tests


def test_observe_sees_computes_enabled_up_and_their_instances(nova, driver) -> None:
    for i in range(2):
        nova.state.add_server(f"vm{i}", "cmp-ssd-1")
    service(nova, "cmp-ssd-2")["status"] = "disabled"
    service(nova, "cmp-hdd-0")["state"] = "down"
    observed = driver.observe(CTX.cluster)
    assert observed.driver == "cloud"
    computes = {c.node: (c.enabled, c.up, c.instances) for c in observed.computes}
    assert computes["cmp-ssd-1"] == (True, True, 2)
    assert computes["cmp-ssd-2"] == (False, True, 0)
    assert computes["cmp-hdd-0"] == (True, False, 0)
    assert observed.node_state("cmp-ssd-0") == REACHABLE
    assert observed.node_state("cmp-hdd-0") == UNREACHABLE
    controller = CTX.cluster.nodes[0].name
    assert observed.node_state(controller) == UNKNOWN  # no Nova service there
    assert any(u.startswith("galera: wsrep_") for u in observed.unobservable)
    assert any(u.startswith("service releases") for u in observed.unobservable)


def test_a_production_driver_never_imports_the_testbed() -> None:
    import ast
    from pathlib import Path

    import lifecycle.drivers.base
    import lifecycle.drivers.compute
    import lifecycle.drivers.compute_observe

    drivers = lifecycle.drivers
    for module in (drivers.base, drivers.compute, drivers.compute_observe):
        tree = ast.parse(Path(str(module.__file__)).read_text())
        imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] + [
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        ]
        assert not [m for m in imported if m.startswith("lifecycle.testbed")]
