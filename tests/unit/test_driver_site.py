"""The production drivers never read the testbed: they take the site's facts as inputs
(lifecycle.drivers.site), which the testbed builds from its state and testbed.yaml
(lifecycle.testbed.driver_site) and a real cloud leaves at their defaults."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from lifecycle.drivers.ansible import AnsibleDriver
from lifecycle.drivers.base import StepContext
from lifecycle.drivers.checks import ChecksDriver, Expect
from lifecycle.drivers.site import SiteFacts, SshAccess
from lifecycle.execution.routing import Router
from lifecycle.formats.ansible_inventory import to_ansible_inventory
from lifecycle.formats.inventory import load_inventory
from lifecycle.model.cluster import Cluster
from lifecycle.planning.actions import make_step
from lifecycle.testbed import client, driver_site
from lifecycle.testbed import state as st
from lifecycle.testbed.config import REAL_ROLES
from lifecycle.testbed.driver_site import ansible_driver, checks_driver
from lifecycle.testbed.ports import service_ports

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = ROOT / "lifecycle" / "drivers"
DEMO = load_inventory(ROOT / "inventories" / "demo")  # its testbed.yaml runs six services real


def _imported(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """Every module an import statement names, function-local ones included (`from X import Y`
    also names X.Y: Y may be a module); relative imports resolved against `package`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _testbed_imports(source: str, package: str) -> list[str]:
    return [
        f"line {line}: {name}"
        for line, name in _imported(ast.parse(source), package)
        if name == "lifecycle.testbed" or name.startswith("lifecycle.testbed.")
    ]


def test_no_driver_module_imports_the_testbed() -> None:
    modules = sorted(DRIVERS.rglob("*.py"))
    assert len(modules) > 10  # the walk found the drivers
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in modules
        if (found := _testbed_imports(path.read_text(), "lifecycle.drivers"))
    }
    assert offenders == {}


@pytest.mark.parametrize(
    "source",
    [
        "import lifecycle.testbed.client",
        "from lifecycle import testbed",
        "from lifecycle.testbed.config import REAL_ROLES",
        "def f():\n    from lifecycle.testbed import state\n",
        "class C:\n    def m(self):\n        import lifecycle.testbed as tb\n",
        "from ..testbed import ports",
    ],
)
def test_the_import_check_sees_every_form_of_import(source: str) -> None:
    assert _testbed_imports(source, "lifecycle.drivers")


def test_the_import_check_passes_other_imports() -> None:
    source = "from lifecycle.drivers.site import SiteFacts\nimport lifecycle.testbedish\n"
    assert _testbed_imports(source, "lifecycle.drivers") == []


# --- the testbed's facts: what the drivers read themselves before ------------------------------


def _recorded(directory: Path, cluster: Cluster, name: str | None = None) -> st.TestbedState:
    hosts = tuple(
        st.HostRecord(n.name, n.address or "", f"ns-{n.name}", "v", "p", f"/tb/{n.name}")
        for n in cluster.nodes[:2]
    )
    name = name or cluster.name
    state = st.TestbedState(name, "t", "br", "10.9.0.1/24", "/k", "/hk", "/kh", hosts)
    st.save(directory, state)
    return state


def test_the_testbed_hands_the_playbooks_the_variables_they_had(tmp_path: Path) -> None:
    driver = ansible_driver(tmp_path)
    extravars = driver._extravars({"release": "2025.1"}, DEMO)
    assert extravars["real_services"] == [
        "haproxy", "galera", "rabbitmq", "memcached", "keystone", "placement-api"
    ]  # fmt: skip
    assert extravars["real_roles"] == REAL_ROLES
    assert extravars["service_ports"] == service_ports()
    assert extravars["testbed_python"] == "/usr/bin/python3"
    assert Path(extravars["daemon_source"]) == ROOT / "lifecycle" / "testbed" / "daemon.py"
    assert extravars["seed_instances"] == 3
    assert extravars["images_dir"]
    assert extravars["release"] == "2025.1"


def test_the_testbed_inventory_has_its_key_and_host_directories(tmp_path: Path) -> None:
    state = _recorded(tmp_path, DEMO)
    inventory = ansible_driver(tmp_path).inventory(DEMO)
    group = inventory["all"]["vars"]
    assert group["ansible_user"] == "root"
    assert group["ansible_ssh_private_key_file"] == state.key
    assert f"UserKnownHostsFile={state.known_hosts}" in group["ansible_ssh_common_args"]
    assert "StrictHostKeyChecking=yes" in group["ansible_ssh_common_args"]
    first = state.hosts[0].name
    host = inventory["all"]["hosts"][first]
    assert host["host_root"] == f"/tb/{first}"
    some = DEMO.services_of(DEMO.node(first))[0]
    assert host["service_config"][some]["port"] == service_ports()[some]
    others = [n.name for n in DEMO.nodes[2:]]
    assert others and all("host_root" not in inventory["all"]["hosts"][n] for n in others)


def test_another_clusters_testbed_adds_nothing_to_the_inventory(tmp_path: Path) -> None:
    _recorded(tmp_path, DEMO, name="elsewhere")
    assert ansible_driver(tmp_path).inventory(DEMO) == to_ansible_inventory(DEMO)


def test_driver_testbed_builds_the_drivers_with_the_testbed_site(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(tmp_path))
    _recorded(tmp_path, DEMO)
    router = Router.for_mode("testbed")
    ansible = router.for_step_name("ansible")
    checks = router.for_step_name("checks")
    assert isinstance(ansible, AnsibleDriver) and isinstance(checks, ChecksDriver)
    assert ansible.state_dir == tmp_path
    assert ansible.site(DEMO) == driver_site.testbed_site(tmp_path)(DEMO)
    assert checks.site(DEMO).status is client.service_status
    cloud = Router.for_mode("cloud").for_step_name("ansible")
    assert isinstance(cloud, AnsibleDriver) and cloud.site(DEMO) == SiteFacts()


# --- a real cloud: the defaults --------------------------------------------------------------


def test_on_a_real_cloud_every_service_is_real_and_the_inventory_is_its_own(tmp_path) -> None:
    _recorded(tmp_path, DEMO)  # a testbed's state in the same directory is not looked at
    driver = AnsibleDriver(state_dir=tmp_path)
    assert driver.inventory(DEMO) == to_ansible_inventory(DEMO)
    extravars = driver._extravars({}, DEMO)
    assert extravars["real_services"] == sorted(DEMO.members)
    assert extravars["real_roles"] == {}
    assert not {"service_ports", "images_dir", "testbed_python"} & set(extravars)
    step = make_step("u", "ansible.playbook", "p", {"playbook": "upgrade-service",
                     "service": "keystone", "release": "x"}, nodes=("ctl-0",))  # fmt: skip
    assert driver.probe(step, StepContext("r", DEMO)) is None  # no stand-in to ask


def test_on_a_real_cloud_the_checks_ask_every_service_through_its_health_tasks(
    monkeypatch,
) -> None:
    asked: list[Expect] = []

    def health(self: ChecksDriver, cluster: Cluster, expects: list[Expect], ctx: Any) -> list:
        asked.extend(expects)
        return []

    monkeypatch.setattr(ChecksDriver, "real_problems", health)
    monkeypatch.setattr(client, "service_status", lambda *a, **k: pytest.fail("asked a stand-in"))
    step = make_step("p", "checks.precheck", "pre", {"release": "2024.1"})
    result = ChecksDriver(settle=0).run(step, StepContext("r", DEMO))
    assert result.ok
    assert {(e.node, e.service) for e in asked} == {
        (node, service) for service, members in DEMO.members.items() for node in members
    }


def test_the_testbed_checks_split_real_services_from_stand_ins(tmp_path, monkeypatch) -> None:
    real: list[str] = []

    def health(self: ChecksDriver, cluster: Cluster, expects: list[Expect], ctx: Any) -> list:
        real.extend(e.service for e in expects)
        return []

    asked: list[str] = []

    def status(cluster: Cluster, node: str, service: str, *_: Any) -> dict[str, Any]:
        asked.append(service)
        return {"version": "2024.1", "members": {"majority": True}}

    monkeypatch.setattr(ChecksDriver, "real_problems", health)
    monkeypatch.setattr(client, "service_status", status)
    step = make_step("p", "checks.precheck", "pre", {"release": "2024.1"})
    assert checks_driver(tmp_path, settle=0).run(step, StepContext("r", DEMO)).ok
    testbed_real = set(REAL_ROLES) & set(DEMO.members)
    assert set(real) == testbed_real
    assert set(asked) == set(DEMO.members) - testbed_real


def test_the_ssh_access_is_strict_about_host_keys() -> None:
    access = SshAccess("stack", "/keys/id", "/keys/known")
    assert access.inventory_vars() == {
        "ansible_user": "stack",
        "ansible_ssh_private_key_file": "/keys/id",
        "ansible_ssh_common_args": "-o UserKnownHostsFile=/keys/known -o StrictHostKeyChecking=yes",
        "ansible_python_interpreter": "/usr/bin/python3",
    }
