"""Broken inventories and imports: each gets one clear message (file, line, field, expectation)
and exit status 2 through the CLI, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifecycle.cli.main import main

DATA = Path(__file__).resolve().parents[1] / "data"
TRIPLEO = DATA / "tripleo"

BASE = """\
cluster: t
release: train
ceph_release: nautilus
roles:
  Controller:
    services: [galera, rabbitmq, keystone]
  Compute:
    services: [nova-compute]
    aggregate: hdd
nodes:
  - name: ctl-0
    role: Controller
    address: 198.18.0.11
    bmc: {driver: redfish, address: "http://127.0.0.1:8000", credentials: ctl-0}
  - name: cmp-0
    role: Compute
    address: 198.18.0.21
policies:
  max_unavailable: {default: 1, aggregates: {hdd: 2}}
credentials: secrets.yaml
"""
SECRETS = "credentials:\n  ctl-0: {username: admin, password: FAKE-base-secret}\n"


@dataclass(frozen=True)
class Case:
    name: str
    edits: tuple[tuple[str, str], ...]  # (old, new) replacements of BASE
    file: str  # the file the message must name
    line: int | None
    field: str
    expected: str  # a part of the expectation
    extra: tuple[tuple[str, str], ...] = ()  # (file name, content) written beside cluster.yaml


def case(name: str, old: str, new: str, line: int | None, field: str, expected: str,
         file: str = "cluster.yaml", extra: tuple[tuple[str, str], ...] = ()) -> Case:  # fmt: skip
    return Case(name, ((old, new),), file, line, field, expected, extra)


INSTACK_BAD_MAC = """{"nodes": [
  {"name": "new-0", "pm_type": "ipmi", "pm_addr": "198.19.0.9", "pm_user": "u",
   "pm_password": "FAKE-x", "mac": ["not-a-mac"]}
]}
"""
DEPLOYMENT_UNKNOWN_ROLE = "- name: Compute\n  count: 1\n- name: Storage\n  count: 2\n"
ROLE_FILE_BAD = (
    "- name: Broken\n  ServicesDefault:\n    - OS::TripleO::Services::Keystone\n    - 42\n"
)

CASES = [
    case(
        "no nodes",
        BASE[BASE.index("nodes:") : BASE.index("policies:")],
        "nodes: []\n",
        10,
        "nodes",
        "at least one node",
    ),
    case("top-level list", BASE, "- cluster: t\n", 1, "", "a mapping, got a list"),
    case("empty file", BASE, "", None, "", "a mapping, got nothing"),
    case("invalid yaml", "    role: Compute\n", "    role: [Compute\n", 17, "", "valid YAML"),
    case("tab indentation", "    role: Compute\n", "\trole: Compute\n", 16, "", "valid YAML"),
    case(
        "unknown top key",
        "credentials: s",
        "clustr: x\ncredentials: s",
        20,
        "clustr",
        "unknown key",
    ),
    case("missing release", "release: train\n", "", 1, "release", "this key (missing)"),
    case(
        "unknown release",
        "release: train",
        "release: trian",
        2,
        "release",
        "a known openstack release (queens, rocky",
    ),
    case(
        "release is a list",
        "release: train",
        "release: [train]",
        2,
        "release",
        "a non-empty string, got a list",
    ),
    case(
        "unknown ceph release",
        "ceph_release: nautilus",
        "ceph_release: nautilis",
        3,
        "ceph_release",
        "a known ceph release (luminous",
    ),
    case(
        "bad cluster name",
        "cluster: t",
        "cluster: my cloud",
        1,
        "cluster",
        "a name of letters, digits",
    ),
    case(
        "duplicate key",
        "ceph_release: nautilus",
        "release: train",
        3,
        "release",
        "each key once (duplicate key)",
    ),
    case(
        "unknown service",
        "[galera, rabbitmq,",
        "[galere, rabbitmq,",
        6,
        "roles.Controller.services[0]",
        "a service of the catalog, got 'galere'; did you mean 'galera'?",
    ),
    case(
        "service twice",
        "rabbitmq, keystone]",
        "rabbitmq, galera]",
        6,
        "roles.Controller.services[2]",
        "each service once ('galera' twice)",
    ),
    case(
        "role without services",
        "    services: [nova-compute]\n",
        "",
        7,
        "roles.Compute",
        "services (a list) or role_file",
    ),
    case(
        "unknown role key",
        "    aggregate: hdd",
        "    aggregat: hdd",
        9,
        "roles.Compute.aggregat",
        "unknown key",
    ),
    case(
        "services not a list",
        "[nova-compute]",
        "nova-compute",
        8,
        "roles.Compute.services",
        "a list, got a string",
    ),
    case(
        "node with unknown role",
        "    role: Compute",
        "    role: Comptue",
        16,
        "nodes[1].role",
        "a role defined under roles (Controller, Compute), got 'Comptue'",
    ),
    case(
        "node without name",
        "  - name: ctl-0\n    role: Controller",
        "  - role: Controller",
        11,
        "nodes[0].name",
        "this key (missing)",
    ),
    case(
        "duplicate node name",
        "name: cmp-0",
        "name: ctl-0",
        15,
        "nodes[1].name",
        "a unique node name ('ctl-0' is also nodes[0])",
    ),
    case(
        "duplicate address",
        "198.18.0.21",
        "198.18.0.11",
        17,
        "nodes[1].address",
        "a unique address (198.18.0.11 is also nodes[0])",
    ),
    case(
        "bad ip",
        "198.18.0.11",
        "198.18.0.300",
        13,
        "nodes[0].address",
        "an IPv4 or IPv6 address, got '198.18.0.300'",
    ),
    case(
        "bad bmc driver",
        "driver: redfish",
        "driver: telnet",
        14,
        "nodes[0].bmc.driver",
        "one of fake-hardware, idrac, ilo, ipmi",
    ),
    case(
        "bmc without address",
        'address: "http://127.0.0.1:8000", ',
        "",
        14,
        "nodes[0].bmc.address",
        "this key (missing)",
    ),
    case(
        "unknown node key",
        "    address: 198.18.0.21",
        "    rack: r1",
        17,
        "nodes[1].rack",
        "unknown key",
    ),
    case(
        "nodes not a list",
        "nodes:\n  - name: ctl-0",
        "nodes: ctl-0\nxnodes:\n  - name: ctl-0",
        10,
        "nodes",
        "a list, got a string",
    ),
    case(
        "percent out of range",
        "{hdd: 2}",
        '{hdd: "150%"}',
        19,
        "policies.max_unavailable.aggregates.hdd",
        "a percentage in (0%, 100%], got '150%'",
    ),
    case(
        "max_unavailable zero",
        "{default: 1,",
        "{default: 0,",
        19,
        "policies.max_unavailable.default",
        "a count >= 1 or a percentage like '25%', got 0",
    ),
    case(
        "max_unavailable words",
        "{default: 1,",
        "{default: lots,",
        19,
        "policies.max_unavailable.default",
        "got 'lots'",
    ),
    case(
        "unknown aggregate in policies",
        "{hdd: 2}",
        "{ssd: 2}",
        19,
        "policies.max_unavailable.aggregates.ssd",
        "an aggregate of a role (hdd), got 'ssd'",
    ),
    case(
        "canary zero",
        "policies:\n",
        "policies:\n  canary: 0\n",
        19,
        "policies.canary",
        "an integer >= 1, got 0",
    ),
    case(
        "bad evacuate",
        "policies:\n",
        "policies:\n  evacuate: teleport\n",
        19,
        "policies.evacuate",
        "one of cold-migrate, live-migrate, none, got 'teleport'",
    ),
    case(
        "negative failure threshold",
        "policies:\n",
        "policies:\n  failure_threshold: -1\n",
        19,
        "policies.failure_threshold",
        "an integer >= 0, got -1",
    ),
    case(
        "unknown policy",
        "policies:\n",
        "policies:\n  serial: 1\n",
        19,
        "policies.serial",
        "unknown key",
    ),
    case(
        "missing secrets file",
        "credentials: secrets.yaml",
        "credentials: nope.yaml",
        20,
        "credentials",
        "an existing secrets file (nope.yaml not found)",
    ),
    case(
        "credential missing from secrets",
        "credentials: ctl-0}",
        "credentials: ctl-9}",
        14,
        "nodes[0].bmc.credentials",
        "a credential 'ctl-9' defined in secrets.yaml",
    ),
    case(
        "roles_data file missing",
        "roles:\n",
        "roles:\n  roles_data: nowhere.yaml\n",
        5,
        "roles.roles_data",
        "an existing file (nowhere.yaml not found)",
    ),
    case(
        "roles_data is not TripleO",
        "roles:\n",
        "roles:\n  roles_data: secrets.yaml\n",
        1,
        "",
        "a list, got a mapping",
        file="secrets.yaml",
    ),
    case(
        "role file with a bad entry",
        "    services: [nova-compute]\n",
        "    role_file: role.yaml\n",
        4,
        "[0].ServicesDefault[1]",
        "a service name OS::TripleO::Services::<Name>",
        file="role.yaml",
        extra=(("role.yaml", ROLE_FILE_BAD),),
    ),
    case(
        "role with services and role_file",
        "    services: [nova-compute]\n",
        "    services: [nova-compute]\n    role_file: role.yaml\n",
        7,
        "roles.Compute",
        "either services or role_file, not both",
    ),
    case(
        "nodes file with a bad MAC",
        "policies:",
        "nodes_file: new.json\npolicies:",
        3,
        "nodes[0].mac[0]",
        "a MAC address like",
        file="new.json",
        extra=(("new.json", INSTACK_BAD_MAC),),
    ),
    case(
        "nodes file node without role",
        "policies:",
        "nodes_file: new.json\npolicies:",
        18,
        "nodes_file",
        "a role for node 'new-0'",
        extra=(("new.json", INSTACK_BAD_MAC.replace('"not-a-mac"', '"52:54:00:00:00:09"')),),
    ),
    case(
        "deployment with unknown role",
        "policies:",
        "baremetal_deployment: bm.yaml\npolicies:",
        18,
        "baremetal_deployment",
        "roles defined under roles (Controller, Compute), got 'Storage'",
        extra=(("bm.yaml", DEPLOYMENT_UNKNOWN_ROLE),),
    ),
]


def make(tmp_path: Path, c: Case) -> Path:
    text = BASE
    for old, new in c.edits:
        assert old in text, f"case {c.name}: {old!r} not in the base inventory"
        text = text.replace(old, new, 1)
    (tmp_path / "cluster.yaml").write_text(text)
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(SECRETS)
    secrets.chmod(0o600)
    for name, content in c.extra:
        (tmp_path / name).write_text(content)
    return tmp_path


def test_the_base_inventory_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make(tmp_path, Case("base", (), "", None, "", ""))
    assert main(["validate", "--inventory", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    # valid, and what an upgrade would meet is said: one controller, a one-host aggregate
    assert "refusal: galera: one member (ctl-0)" in out
    assert "refusal: aggregate hdd: live-migrate has no target" in out
    assert "ok: 0 warning(s), 3 refusal(s) (plan and run refuse them unless --force)" in out


def test_there_are_many_kinds_of_broken_input() -> None:
    assert len(CASES) >= 25
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.name)
def test_broken_inventory(tmp_path: Path, capsys: pytest.CaptureFixture[str], c: Case) -> None:
    make(tmp_path, c)
    assert main(["validate", "--inventory", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    where = f"{c.file}:{c.line}:" if c.line else f"{c.file}:"
    expected_head = f"{where} {c.field}:" if c.field else where
    lines = [line for line in captured.err.splitlines() if expected_head in line]
    assert lines, f"no line with {expected_head!r} in:\n{captured.err}"
    assert any(c.expected in line for line in lines), captured.err
    assert "FAKE-" not in captured.err  # secrets never appear in messages


def test_several_problems_are_reported_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = BASE.replace("release: train", "release: trian").replace("198.18.0.21", "300.0.0.1")
    text = text.replace("{default: 1,", "{default: 0,")
    (tmp_path / "cluster.yaml").write_text(text)
    assert main(["validate", "-i", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cluster.yaml:2: release:" in err
    assert "cluster.yaml:17: nodes[1].address:" in err
    assert "cluster.yaml:19: policies.max_unavailable.default:" in err


def test_secrets_file_must_be_private(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make(tmp_path, CASES[0]).joinpath("cluster.yaml").write_text(BASE)
    (tmp_path / "secrets.yaml").chmod(0o644)
    assert main(["validate", "-i", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "secrets.yaml: mode 0600, readable by its owner only (it is 0644;" in err


@pytest.mark.parametrize(
    ("content", "field", "expected"),
    [
        ("credentials:\n  ctl-0: {username: admin}\n", "credentials.ctl-0.password", "missing"),
        (
            "credentials:\n  ctl-0: {username: a, password: 1234}\n",
            "credentials.ctl-0.password",
            "a non-empty string, got a number",
        ),
        ("credentials: {}\nssh: {user: root}\n", "ssh.private_key_file", "missing"),
        ("credentials: {}\npasswords: {}\n", "passwords", "unknown key"),
    ],
)
def test_broken_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, field: str, expected: str
) -> None:
    make(tmp_path, Case("s", (), "", None, "", ""))
    (tmp_path / "secrets.yaml").write_text(content)
    assert main(["validate", "-i", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "secrets.yaml:" in err and f" {field}: " in err and expected in err
    assert "1234" not in err


def test_corpus_roles_data_inventory_validates_with_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cluster.yaml").write_text(
        f"cluster: oc\nrelease: train\nroles:\n  roles_data: {TRIPLEO / 'roles_data.yaml'}\n"
        f"  Custom: {{role_file: {TRIPLEO / 'roles' / 'ControllerStorageNfs.yaml'}}}\n"
        f"baremetal_deployment: {TRIPLEO / 'baremetal_deployment.yaml'}\n"
    )
    assert main(["validate", "-i", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "warning: role Custom: TripleO services not in the catalog: " in out
    assert "CephNfs" in out


def test_graph_command_writes_svg_and_dot(tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parents[2] / "tests" / "data" / "demo-train"
    assert main(["graph", "-i", str(demo), "-o", str(tmp_path / "g.svg")]) == 0
    assert "<svg" in (tmp_path / "g.svg").read_text()[:500]
    assert main(["graph", "-i", str(demo), "-o", str(tmp_path / "g.dot")]) == 0
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    assert main(["graph", "-i", str(demo), "-o", str(tmp_path / "no" / "g.svg")]) == 2


def test_real_subprocess_exit_status_and_message(tmp_path: Path) -> None:
    make(tmp_path, next(c for c in CASES if c.name == "unknown release"))
    shutil.copy(tmp_path / "cluster.yaml", tmp_path / "copy.yaml")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-m", "lifecycle", "validate", "--inventory", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2
    assert "cluster.yaml:2: release: a known openstack release" in result.stderr
    assert "Traceback" not in result.stderr
