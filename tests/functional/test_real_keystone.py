"""Real Keystone and Placement on two test hosts, from the release images: deploy at 2024.1, a
token issued on one host validates on the other (shared fernet keys), then a rolling upgrade to
2025.1 with Keystone's expand before the new code and contract after it, while a token issued
before keeps validating.

Stands in for what other roles provide on the demo cloud: one plain MariaDB on the first host at
ADDR:13306 (HAProxy's database frontend), memcached on each host, the secrets files
(deploy-secrets.yml) and the databases (db-create.yml); without real HAProxy the roles are pointed
at each host's own Keystone and Placement ports. Needs root, openssh-server, MariaDB, memcached
and the images of 2024.1 and 2025.1 (`lifecycle testbed images`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lifecycle.formats.inventory import load_inventory
from lifecycle.model.cluster import Cluster
from lifecycle.testbed import manager
from lifecycle.testbed.driver_site import ansible_driver
from lifecycle.testbed.images import image_path

# also `testbed`: the unit lane (-m "not testbed ...") never starts one
pytestmark = [pytest.mark.realcloud, pytest.mark.testbed, pytest.mark.timeout(1500)]

OLD, NEW, NEWEST = "2024.1", "2025.1", "2026.1"
HOSTS = {"ctl-0": "10.71.0.11", "ctl-1": "10.71.0.12"}
DB_HOST = "ctl-0"
SECRETS = ("db-keystone", "db-placement", "keystone-admin", "placement-service")

_missing = [
    why
    for why, ok in (
        ("root", os.geteuid() == 0),
        ("openssh-server", Path("/usr/sbin/sshd").exists()),
        ("mariadb-server", shutil.which("mariadbd") is not None),
        ("memcached", shutil.which("memcached") is not None),
        (f"image {OLD}", (image_path(OLD) / "bin" / "keystone-manage").exists()),
        (f"image {NEW}", (image_path(NEW) / "bin" / "keystone-manage").exists()),
    )
    if not ok
]
# a skip in the fixture, not at import: the unit lane deselects this module by its markers and
# must not count it as skipped

CLUSTER_YAML = """\
cluster: images
driver: testbed
release: "2024.1"
roles:
  Controller:
    services: [galera, memcached, keystone, placement-api]
nodes:
{nodes}
policies:
  max_unavailable: {{default: 1}}
"""


@dataclass(frozen=True)
class Bed:
    cluster: Cluster
    state: Path
    roots: dict[str, Path]
    netns: dict[str, str]
    secrets: dict[str, str]

    def play(self, name: str, nodes: tuple[str, ...], **params: Any) -> None:
        """Run playbook `name` on `nodes` with the stand-ins' endpoints; fail with its error.
        Once more if SSH timed out (2 loaded cores): every playbook here is idempotent."""
        driver = ansible_driver(self.state)
        for _ in range(2):
            result = driver.run_playbook(
                name,
                self.cluster,
                nodes=nodes,
                params={**ENDPOINTS, "target_hosts": "all", **params},
            )
            if result.ok or "UNREACHABLE" not in str(result.error).upper():
                break
        assert result.ok, f"{name} {params}: {result.error}"


# Where HAProxy's frontends would be: the one MariaDB, each host's own Keystone and Placement.
ENDPOINTS = {
    "api_db_endpoint": f"{HOSTS[DB_HOST]}:13306",
    "api_keystone_url": "http://{{ ansible_host }}:5000",
    "api_placement_url": "http://{{ ansible_host }}:8778",
    "keystone_catalog_url": f"http://{HOSTS['ctl-0']}:5000",
    "placement_catalog_url": f"http://{HOSTS['ctl-0']}:8778",
}


def _in(netns: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True)


def _start_mariadb(root: Path, netns: str, address: str, passwords: dict[str, str]) -> None:
    data, run = root / "fixture-mariadb" / "data", root / "fixture-mariadb" / "run"
    run.mkdir(parents=True, exist_ok=True)
    socket = run / "mysqld.sock"
    done = subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
         "--auth-root-authentication-method=socket", "--skip-test-db"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    subprocess.run(
        ["ip", "netns", "exec", netns, "start-stop-daemon", "--start", "--background",
         "--make-pidfile", "--pidfile", str(run / "mariadbd.pid"), "--exec", "/usr/sbin/mariadbd",
         "--", "--no-defaults", f"--datadir={data}", f"--socket={socket}",
         f"--bind-address={address}", "--port=13306", "--user=root",
         f"--log-error={root / 'fixture-mariadb' / 'error.log'}"],
        check=True,
    )  # fmt: skip
    sql = "".join(
        f"CREATE DATABASE IF NOT EXISTS {db}; CREATE USER IF NOT EXISTS '{db}'@'%' "
        f"IDENTIFIED BY '{passwords['db-' + db]}'; GRANT ALL ON {db}.* TO '{db}'@'%';"
        for db in ("keystone", "placement")
    )
    for _ in range(60):
        client = subprocess.run(
            ["mariadb", f"--socket={socket}", "-uroot", "-e", sql], capture_output=True, text=True
        )
        if client.returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"fixture MariaDB did not start: {client.stderr}")


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    if _missing:
        pytest.skip(f"real keystone needs {', '.join(_missing)}")
    top = tmp_path_factory.mktemp("real-keystone")
    inventory = top / "inventory"
    inventory.mkdir()
    nodes = "".join(
        f"  - {{name: {name}, role: Controller, failure_domain: rack{i}, address: {address}}}\n"
        for i, (name, address) in enumerate(HOSTS.items())
    )
    (inventory / "cluster.yaml").write_text(CLUSTER_YAML.format(nodes=nodes))
    (inventory / "testbed.yaml").write_text("real_services: [keystone, placement-api]\n")
    cluster = load_inventory(inventory)
    state = Path(os.environ.get("LIFECYCLE_STATE_DIR") or top / "state")
    tb = manager.up(cluster, state)
    try:
        roots = {h.name: Path(h.root) for h in tb.hosts}
        netns = {h.name: h.netns for h in tb.hosts}
        passwords = {name: secrets.token_hex(16) for name in SECRETS}
        for name, root in roots.items():
            vault = root / "secrets"
            vault.mkdir(mode=0o700, exist_ok=True)
            for key, value in passwords.items():
                (vault / key).write_text(value + "\n")
                (vault / key).chmod(0o600)
            done = _in(netns[name], "memcached", "-d", "-u", "root", "-l", HOSTS[name],
                       "-p", "11211", "-P", str(root / "fixture-memcached.pid"))  # fmt: skip
            assert done.returncode == 0, done.stderr
        _start_mariadb(roots[DB_HOST], netns[DB_HOST], HOSTS[DB_HOST], passwords)
        yield Bed(cluster, state, roots, netns, passwords)
    finally:
        manager.down(state)  # kills every process in the hosts' namespaces


def _http(method: str, url: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, answer.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


def issue_token(bed: Bed, host: str) -> str:
    auth = {
        "identity": {
            "methods": ["password"],
            "password": {
                "user": {
                    "name": "admin",
                    "domain": {"id": "default"},
                    "password": bed.secrets["keystone-admin"],
                }
            },
        },
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
    }
    status, headers = _http("POST", f"http://{HOSTS[host]}:5000/v3/auth/tokens", {}, {"auth": auth})
    assert status == 201, f"token on {host}: HTTP {status}"
    return str(headers["X-Subject-Token"])


def validates(bed: Bed, host: str, token: str) -> bool:
    status, _ = _http(
        "GET",
        f"http://{HOSTS[host]}:5000/v3/auth/tokens",
        {"X-Auth-Token": issue_token(bed, host), "X-Subject-Token": token},
    )
    return status == 200


def version(bed: Bed, host: str, service: str) -> str:
    return (bed.roots[host] / "services" / service / "version").read_text().strip()


ALL = tuple(HOSTS)


@pytest.fixture(scope="module")
def deployed(bed: Bed) -> Bed:
    bed.play("keystone-keys", ALL, bootstrap="ctl-0", release=OLD)
    bed.play("db-migrate", ("ctl-0",), project="keystone", phase="sync", release=OLD)
    bed.play("deploy-service", ALL, service="keystone", phase="start", release=OLD)
    bed.play("keystone-bootstrap", ("ctl-0",), release=OLD)
    bed.play("db-migrate", ("ctl-0",), project="placement", phase="sync", release=OLD)
    bed.play("deploy-service", ALL, service="placement-api", phase="start", release=OLD)
    bed.play("health", ALL, services=["keystone", "placement-api"], release=OLD)
    return bed


def test_deploy_at_2024_1_and_tokens_cross_hosts(deployed: Bed) -> None:
    bed = deployed
    assert {version(bed, h, s) for h in ALL for s in ("keystone", "placement-api")} == {OLD}
    token = issue_token(bed, "ctl-0")
    assert validates(bed, "ctl-1", token)
    assert not validates(bed, "ctl-1", token[:-4] + "AAAA")  # a forged token does not


def test_deploy_again_changes_nothing(deployed: Bed) -> None:
    bed = deployed
    pid = (bed.roots["ctl-0"] / "services" / "keystone" / "run" / "keystone.pid").read_text()
    bed.play("deploy-service", ALL, service="keystone", phase="start", release=OLD)
    again = (bed.roots["ctl-0"] / "services" / "keystone" / "run" / "keystone.pid").read_text()
    assert again == pid


def hop(bed: Bed, old: str, new: str) -> None:
    """One rolling upgrade old -> new: expand with new's code while old serves everywhere, one
    node at a time to new's code (the other serving), contract; then the same for Placement.
    A token issued by old's code validates on every node throughout."""
    token = issue_token(bed, "ctl-1")
    bed.play("db-migrate", ("ctl-0",), project="keystone", phase="expand", release=new)
    assert {version(bed, h, "keystone") for h in ALL} == {old}
    assert all(validates(bed, h, token) for h in ALL)
    issue_token(bed, "ctl-0")  # old code still issues on the expanded schema
    for host in ALL:
        other = next(h for h in ALL if h != host)
        bed.play("upgrade-service", (host,), service="keystone", release=new)
        assert version(bed, host, "keystone") == new
        assert validates(bed, other, token) and validates(bed, host, token)
        assert validates(bed, other, issue_token(bed, host))  # new issues, old validates
    bed.play("db-migrate", ("ctl-0",), project="keystone", phase="contract", release=new)
    assert all(validates(bed, h, token) for h in ALL)

    bed.play("db-migrate", ("ctl-0",), project="placement", phase="expand", release=new)
    for host in ALL:
        bed.play("upgrade-service", (host,), service="placement-api", release=new)
    bed.play("db-migrate", ("ctl-0",), project="placement", phase="contract", release=new)
    bed.play("health", ALL, services=["keystone", "placement-api"], release=new)
    assert {version(bed, h, s) for h in ALL for s in ("keystone", "placement-api")} == {new}


def test_rolling_upgrade_to_2025_1_with_expand_and_contract(deployed: Bed) -> None:
    hop(deployed, OLD, NEW)


@pytest.mark.skipif(
    not (image_path(NEWEST) / "bin" / "keystone-manage").exists(), reason=f"no {NEWEST} image"
)
def test_second_hop_to_2026_1(deployed: Bed) -> None:
    if version(deployed, "ctl-0", "keystone") != NEW:
        pytest.skip("runs after the first hop")
    hop(deployed, NEW, NEWEST)
