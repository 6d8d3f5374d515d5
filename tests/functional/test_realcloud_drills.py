"""Issues 12 and 13 on the real demo cloud: backup, a controller replaced, and three recoveries.

One cloud for the module (deployed from nothing on the testbed, as in test_realcloud.py: real
Galera, RabbitMQ, HAProxy, memcached, Keystone and Placement; Nova, Neutron and Ceph stand-ins),
moved to a free 10.7x.y.0/24 so it runs beside other testbeds. The drills, in order:

1. `lifecycle backup` of the running cloud (rows written, a user made, a token issued for it and
   a Keystone credential of theirs stored first, its blob encrypted with the credential key);
   `backups verify` passes;
2. ctl-1 replaced by a new testbed host ctl-9 (`testbed add-host`, `run replace --with ctl-9
   --address`) with the user probe and the quorum monitor on: ctl-1 leaves Galera, RabbitMQ and
   HAProxy, ctl-9 joins; no quorum lost, no acknowledged write lost, 3 Synced members after.
   The inventory is then edited to name ctl-9 (what docs/replace.md asks of the operator);
3. (13a) every Galera member SIGKILLed, ctl-0 (the writer, first in the inventory) first, rows
   written after it died: `plan recover` picks a member that holds them, never ctl-0, and
   `run recover` brings the cluster back with every acknowledged row;
4. (13c) the members SIGKILLed again, `lifecycle run recover` SIGKILLed itself while it restarts
   Galera, then `resume` finishes the recovery;
5. (13b) every controller's Galera data directory and Keystone fernet and credential keys
   destroyed: `run recover` restores the backup of drill 1; every row of the backup is there,
   the token issued before the backup validates and the credential decrypts (GET
   /v3/credentials/ID gives its blob back: the credential key came back with the backup);
6. (12) ctl-9 (drill 2's replacement) replaced by a new testbed host ctl-8 and killed hard once
   the run is at its stop step (its sshd and every process of its namespace SIGKILLed): the run
   stops (exit 4, the step failed on its second attempt) before any member is removed, Galera and
   RabbitMQ keeping their quorum on the two live members (status: `degraded`, quorum held; both
   Galera members Primary; writes go on); `lifecycle resume RUN --node-dead ctl-9` skips the dead
   node's stop and finishes: 3 Synced members with ctl-8, ctl-9 out of Galera's and RabbitMQ's
   views, no acknowledged write lost, the credential still decrypts (ctl-8's keys came from a
   live member). The inventory is then edited as in drill 2. Why ctl-9 and not ctl-2: the
   ceph-mon STAND-IN's peer list is written once, at each monitor's deploy, and its
   `ceph-mon-remove` does not shrink the survivors' lists (a real monmap does), so ctl-0 and ctl-2
   still count the stopped ctl-1; a dead ctl-2 would leave ctl-0 seeing 1 monitor of 3 and the
   health gates would fail on the stand-in, not on anything real. With ctl-9 dead, ctl-0 and ctl-2
   see each other (2 of 3).
   The inventory is then edited as in drill 2. Last, so drills 3 to 5 keep their controllers.

Measured in the realcloud lane with this module named, on the shared 2-core machine under load
(~7), 38.5 min in all: deploy 577 s; backup 108 s, 441 files; replace of ctl-1 by ctl-9 501 s
with the probe on, 2,515 requests, 0 failed, longest gap 2.3 s, 503 acknowledged writes, 0 lost,
no quorum violation; 13a recovery 161 s, 20/20 rows (the stale ctl-0 at seqno 2,238 not chosen,
ctl-9 at 2,250 bootstrapped); 13c recovery killed in `recover/galera/bootstrap/ctl-0`, recovery
and resume 151 s, 10/10 rows; 13b restore 214 s, 20/20 rows of the backup, the token validates,
the credential decrypts. Drill 6 there, then with ctl-2 as the dead node: ctl-2 killed 28 s into
the run (23 processes), the run stopped at 61 s with both stores `degraded` on ctl-0 and ctl-9,
quorum held; its resume failed at `health/galera/ctl-8` on the ceph-mon stand-in (above: why
drill 6 now kills ctl-9; this order not yet run whole). Drill 6 passed with drills 1 and 6 alone
(controllers ctl-0, ctl-1, ctl-2; load ~10, deploy 1,047 s): killed 54 s in (22 processes),
stopped 37 s later, run, stop, status and resume 696 s in all, 20/20 rows kept. Too long for
CI's default lane beside the other realcloud scenario; it runs when named.

Galera's quorum is asserted as Galera defines it (lifecycle.testbed.store_status): a majority of
the members in the Primary component, the SST donor of the joining replacement (`Donor/Desynced`)
included.

What the testbed cannot do: it has no Ironic in this lane, so ctl-1 is a server without a BMC in
this module's copy of the inventory (its unprovisioning through Ironic is the Ironic lane's), and
ctl-9 a testbed host; ctl-1 is left running its stopped services, as a server waiting to be wiped
would, and ctl-9 keeps its address with nothing listening (a dead server whose switch port is
still up).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.functional.testbed_host import free_prefix, pids_of

pytestmark = [pytest.mark.realcloud, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
RELEASE = "2024.1"
OLD, NEW = "ctl-1", "ctl-9"
CONTROLLERS = ("ctl-0", "ctl-2", NEW)  # after the replacement (drills 3 to 5)
DEAD, SPARE = NEW, "ctl-8"  # drill 6: ctl-9 dies while ctl-8 replaces it (docstring: why)
CREDENTIAL_BLOB = "drill-certificate-blob-1"  # a Keystone credential, encrypted with its keys
FIGURES: dict[str, Any] = {}  # printed at the end of the module, for the lane's log


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, sshd)"
    needed = ("mariabackup", "rabbitmq-server")
    if not Path("/usr/sbin/mariadbd").exists() or not all(shutil.which(n) for n in needed):
        return "needs Debian's mariadb-server, mariadb-backup, galera-4 and rabbitmq-server"
    from lifecycle.testbed.images import images_dir

    if not (images_dir() / f"openstack-{RELEASE}" / "bin" / "gunicorn").exists():
        return f"needs the release image {RELEASE} (lifecycle testbed images)"
    return None


@dataclass
class Cloud:
    state: Path
    inventory: Path
    prefix: str
    facts: dict[str, Any] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {**os.environ, "LIFECYCLE_STATE_DIR": str(self.state), "PYTHONPATH": str(REPO)}

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "lifecycle", *args]

    def cli(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), cwd=REPO, env=self.env(), capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    def ok(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
        done = self.cli(*args, timeout=timeout)
        assert done.returncode == 0, (args, done.stdout[-4000:], done.stderr[-4000:])
        return done

    def inv(self) -> tuple[str, str]:
        return ("-i", str(self.inventory))

    def cluster(self):  # type: ignore[no-untyped-def]
        from lifecycle.formats.inventory import load_inventory

        return load_inventory(self.inventory)

    def host(self, node: str):  # type: ignore[no-untyped-def]
        from lifecycle.testbed import state as st

        tb = st.load(self.state)
        assert tb is not None
        return tb.host(node)


def _without_bmc(text: str, nodes: tuple[str, ...]) -> str:
    """cluster.yaml with `nodes`' bmc lines dropped: no Ironic in this lane to unprovision them."""
    out, inside = [], False
    for line in text.splitlines(keepends=True):
        if line.strip().startswith("- name:"):
            inside = line.split(":", 1)[1].strip() in nodes
        if inside and line.strip().startswith("bmc:"):
            continue
        out.append(line)
    return "".join(out)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    started = time.monotonic()
    base = tmp_path_factory.mktemp("drills")
    inventory = base / "demo"
    shutil.copytree(REPO / "inventories" / "demo", inventory)
    (inventory / "secrets.yaml").chmod(0o600)
    prefix = free_prefix(range(70, 80))
    cluster_yaml = inventory / "cluster.yaml"
    text = cluster_yaml.read_text().replace("198.18.0.", prefix)
    cluster_yaml.write_text(_without_bmc(text, (OLD,)))  # ctl-9 (DEAD) is a host: no BMC
    made = Cloud(state=base / "state", inventory=inventory, prefix=prefix)
    up = made.cli("testbed", "up", *made.inv())
    assert up.returncode == 0, up.stderr
    try:
        yield made
    finally:
        made.cli("testbed", "down")
        FIGURES["module_wall_s"] = round(time.monotonic() - started, 1)
        print("\ndrill figures:", json.dumps(FIGURES, indent=1))


# --- helpers -----------------------------------------------------------------------------------


def _status(cloud: Cloud) -> dict[str, Any]:
    shown = cloud.cli("status", *cloud.inv(), "--driver", "testbed", "-f", "json")
    assert shown.returncode in (0, 1), shown.stderr
    result: dict[str, Any] = json.loads(shown.stdout)
    return result


def _galera(cloud: Cloud) -> dict[str, Any]:
    stores = {s["service"]: s for s in _status(cloud)["stores"]}
    return dict(stores["galera"])


def _assert_three_synced(cloud: Cloud, controllers: tuple[str, ...] = CONTROLLERS) -> None:
    from lifecycle.testbed.user_probe import DB_PORT

    galera = _galera(cloud)
    assert galera["health"] == "healthy", galera
    assert sorted(galera["members"]) == sorted(controllers), galera
    assert str(galera["status"]["wsrep_cluster_size"]) == "3", galera
    for node in controllers:  # each member Synced, asked on its own port
        state = _sql(cloud, node, "SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment'")
        assert state.split()[-1] == "Synced", (node, state)
    assert DB_PORT


def _sql(cloud: Cloud, node: str, query: str) -> str:
    """`query` as root on `node`'s own mariadbd socket (inside its namespace)."""
    host = cloud.host(node)
    sock = Path(host.root) / "services" / "galera" / "run" / "mysqld.sock"
    done = subprocess.run(
        ["ip", "netns", "exec", host.netns, "mariadb", f"--socket={sock}", "--user=root",
         "--batch", "--skip-column-names", "-e", query],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, (node, done.stderr)
    return done.stdout.strip()


def _counter(cloud: Cloud, name: str):  # type: ignore[no-untyped-def]
    """A counter row of the probe's database, through the first controller's HAProxy."""
    from lifecycle.testbed.user_probe import DB_PORT, GaleraCounter, probe_target

    target = probe_target(cloud.cluster(), cloud.state)
    return GaleraCounter(target.address, DB_PORT, target.db_password, name)


def _write(cloud: Cloud, name: str, count: int) -> list[int]:
    """`count` increments of counter `name`, each acknowledged (its commit returned)."""
    counter = _counter(cloud, name)
    acknowledged: list[int] = []
    deadline = time.monotonic() + 60
    while len(acknowledged) < count:  # a failover in progress: retried, only acks count
        try:
            if not acknowledged:
                counter.setup()
            acknowledged.append(counter.increment())
        except Exception:
            assert time.monotonic() < deadline, f"no write through HAProxy for 60 s ({name})"
            time.sleep(0.5)
    return acknowledged


def _kept(cloud: Cloud, name: str, acknowledged: list[int]) -> int:
    """The counter's value now; asserts no acknowledged increment is lost."""
    from lifecycle.testbed.user_probe import lost_writes

    value = _counter(cloud, name).value()
    assert value is not None, name
    assert lost_writes(acknowledged, value) == (), (name, value, acknowledged[-3:])
    return value


def _sigkill_galera(cloud: Cloud, nodes: tuple[str, ...]) -> None:
    """SIGKILL every mariadbd of `nodes` at once (no clean leave, grastate.dat keeps seqno -1)."""
    pids = [p for n in nodes for p in pids_of(cloud.host(n).netns, "mariadbd")]
    assert pids, nodes
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(pids_of(cloud.host(n).netns, "mariadbd") for n in nodes):
        assert time.monotonic() < deadline, "mariadbd survived SIGKILL"
        time.sleep(0.2)


def _keystone(cloud: Cloud):  # type: ignore[no-untyped-def]
    from lifecycle.testbed.user_probe import Keystone, probe_target

    target = probe_target(cloud.cluster(), cloud.state)
    return Keystone(target.keystone_url, target.admin_password)


def _user_token(cloud: Cloud, name: str, password: str) -> str:
    import requests

    keystone = _keystone(cloud)
    user = {"name": name, "domain": {"id": "default"}, "password": password}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}}
    answer = requests.post(f"{keystone.url}/auth/tokens", json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    return str(answer.headers["X-Subject-Token"])


def _validates(cloud: Cloud, token: str) -> bool:
    import requests

    keystone = _keystone(cloud)
    admin = keystone.issue()
    answer = requests.get(
        f"{keystone.url}/auth/tokens",
        headers={"X-Auth-Token": admin, "X-Subject-Token": token},
        timeout=10,
    )
    return answer.status_code == 200


def _credential_blob(cloud: Cloud, credential: str) -> str:
    """The blob of Keystone credential `credential` as Keystone decrypts it (its credential key;
    a key lost answers 500)."""
    import requests

    keystone = _keystone(cloud)
    answer = requests.get(f"{keystone.url}/credentials/{credential}",
                          headers={"X-Auth-Token": keystone.issue()}, timeout=10)  # fmt: skip
    assert answer.status_code == 200, (answer.status_code, answer.text[:500])
    return str(answer.json()["credential"]["blob"])


def _journal(cloud: Cloud) -> Path:
    return cloud.state / f"{cloud.cluster().name}.db"


def _last_run(cloud: Cloud) -> str:
    with closing(sqlite3.connect(f"file:{_journal(cloud)}?mode=ro", uri=True)) as con:
        rows = con.execute("SELECT id FROM runs ORDER BY created DESC").fetchall()
    return str(rows[0][0])


def _running(cloud: Cloud, pattern: str) -> str | None:
    """A step whose id matches `pattern` the journal shows running and not finished, or None."""
    try:
        with closing(sqlite3.connect(f"file:{_journal(cloud)}?mode=ro", uri=True)) as con:
            rows = con.execute("SELECT step_id, state FROM step_events ORDER BY rowid").fetchall()
    except sqlite3.OperationalError:
        return None
    states: dict[str, str] = {}
    for step, state in rows:
        states[str(step)] = str(state)
    for step, state in states.items():
        if state == "running" and re.search(pattern, step):
            return step
    return None


def _recover(cloud: Cloud) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = cloud.cli("run", "recover", *cloud.inv(), "--driver", "testbed", "--yes",
                     "--no-progress", timeout=1800)  # fmt: skip
    return done, round(time.monotonic() - started, 1)


# --- the drills, in order ----------------------------------------------------------------------


def test_deploy_then_backup_and_verify(cloud: Cloud) -> None:
    """Drill 1: the cloud from nothing, data made, `lifecycle backup`, `backups verify`."""
    from lifecycle.testbed.user_probe import prepare_databases

    started = time.monotonic()
    cloud.ok("run", "deploy", *cloud.inv(), "--driver", "testbed", "--yes", "--no-progress",
             timeout=1800)  # fmt: skip
    FIGURES["deploy_s"] = round(time.monotonic() - started, 1)
    prepare_databases(cloud.cluster(), cloud.state)
    # a user and a token of theirs, made before the backup (13b validates it after a restore)
    keystone = _keystone(cloud)
    admin = keystone.issue()
    import requests

    user = {"user": {"name": "drill-user", "domain_id": "default", "password": "drill-pw-1"}}
    made = requests.post(f"{keystone.url}/users", json=user, headers={"X-Auth-Token": admin},
                         timeout=10)  # fmt: skip
    assert made.status_code == 201, made.text
    cloud.facts["token"] = _user_token(cloud, "drill-user", "drill-pw-1")
    # a credential of theirs: Keystone stores its blob encrypted with the credential key (13b)
    credential = {"credential": {"type": "cert", "blob": CREDENTIAL_BLOB,
                                 "user_id": made.json()["user"]["id"]}}  # fmt: skip
    stored = requests.post(f"{keystone.url}/credentials", json=credential,
                           headers={"X-Auth-Token": admin}, timeout=10)  # fmt: skip
    assert stored.status_code == 201, stored.text
    cloud.facts["credential"] = stored.json()["credential"]["id"]
    assert _credential_blob(cloud, cloud.facts["credential"]) == CREDENTIAL_BLOB
    cloud.facts["before_backup"] = _write(cloud, "drill-before-backup", 20)

    started = time.monotonic()
    cloud.ok("backup", *cloud.inv(), "--driver", "testbed", "--observe", "--yes", "--no-progress")
    FIGURES["backup_s"] = round(time.monotonic() - started, 1)
    listed = cloud.ok("backups", "list", *cloud.inv()).stdout
    ids = re.findall(r"\bdemo-\d{8}T\d{6}Z\S*", listed)
    assert ids, listed
    backup = ids[-1]
    cloud.facts["backup"] = backup
    verified = cloud.cli("backups", "verify", backup, *cloud.inv())
    assert verified.returncode == 0, verified.stdout + verified.stderr
    shown = cloud.ok("backups", "show", backup, *cloud.inv()).stdout
    FIGURES["backup_show"] = shown.strip().splitlines()[:6]
    # rows written after the backup: what a restore from it loses (drill 5)
    cloud.facts["after_backup"] = _write(cloud, "drill-after-backup", 10)


def test_replace_a_controller_with_the_probe_on(cloud: Cloud) -> None:
    """Drill 2: ctl-1 out, ctl-9 (a new host) in, with users' requests and writes going on."""
    from lifecycle.testbed.config import load_testbed_config
    from lifecycle.testbed.monitor import Monitor
    from lifecycle.testbed.user_probe import testbed_probe

    assert "backup" in cloud.facts, "drill 1 did not run"
    address = f"{cloud.prefix}19"
    cloud.ok("testbed", "add-host", NEW, address)
    cluster = cloud.cluster()
    probe = testbed_probe(cluster, cloud.state, cloud.state, interval=0.2)
    real = load_testbed_config(cluster).real_services
    started = time.monotonic()
    with Monitor(cluster, state_dir=cloud.state, real_services=real) as monitor, probe:
        replaced = cloud.cli("run", "replace", *cloud.inv(), "--node", OLD, "--with", NEW,
                             "--address", address, "--driver", "testbed", "--yes",
                             "--no-progress", timeout=1800)  # fmt: skip
    FIGURES["replace_s"] = round(time.monotonic() - started, 1)
    assert replaced.returncode == 0, replaced.stdout[-4000:] + replaced.stderr[-4000:]
    summary = probe.summary
    assert summary is not None
    FIGURES["replace_probe"] = {
        "requests": summary.requests,
        "failures": len(summary.failures),
        "failed": [f"{f.operation}: {f.error[:80]}" for f in summary.failures][:5],
        "longest_gap_s": summary.longest_gap,
        "acknowledged_writes": summary.acknowledged_writes,
        "lost_writes": len(summary.lost_writes),
    }
    assert summary.acknowledged_writes > 0
    assert summary.lost_writes == (), summary.lost_writes
    assert not summary.missing_users and not summary.missing_projects
    assert len(summary.failures) <= 3, summary.failures  # as test_realcloud: counted, shown
    violations = monitor.observation.violations
    FIGURES["replace_monitor"] = {"checks": dict(monitor.observation.checks),
                                  "violations": violations[:10]}  # fmt: skip
    assert violations == [], violations
    assert monitor.observation.checks.get("galera", 0) > 0

    # the operator's edit: the inventory names the new node (docs/replace.md)
    cluster_yaml = cloud.inventory / "cluster.yaml"
    text = cluster_yaml.read_text()
    text = text.replace(f"name: {OLD}\n", f"name: {NEW}\n")
    text = text.replace(f"address: {cloud.prefix}12\n", f"address: {address}\n")
    cluster_yaml.write_text(text)
    _assert_three_synced(cloud)
    # ctl-1 left every store: not in Galera's view, not in RabbitMQ's cluster
    incoming = _sql(cloud, "ctl-0", "SHOW GLOBAL STATUS LIKE 'wsrep_incoming_addresses'")
    assert f"{cloud.prefix}12:" not in incoming and f"{address}:" in incoming, incoming
    stores = {s["service"]: s for s in _status(cloud)["stores"]}
    assert sorted(stores["rabbitmq"]["members"]) == sorted(CONTROLLERS), stores["rabbitmq"]
    assert stores["rabbitmq"]["health"] == "healthy", stores["rabbitmq"]
    _kept(cloud, "drill-before-backup", cloud.facts["before_backup"])
    cloud.facts["replaced"] = True


def test_all_members_killed_recover_bootstraps_the_most_advanced(cloud: Cloud) -> None:
    """Drill 3 (13a): ctl-0 killed first and rows written without it, then the two others:
    the plan bootstraps a member holding those rows (never the stale ctl-0)."""
    assert cloud.facts.get("replaced"), "drill 2 did not run"
    acknowledged = _write(cloud, "drill-13a", 10)
    _sigkill_galera(cloud, ("ctl-0",))
    acknowledged += _write(cloud, "drill-13a", 10)
    _sigkill_galera(cloud, ("ctl-2", NEW))
    planned = cloud.cli("plan", "recover", *cloud.inv(), "--driver", "testbed")
    assert planned.returncode == 0, planned.stdout[-3000:] + planned.stderr[-3000:]
    said = planned.stdout + planned.stderr
    chosen = re.findall(r"recover/galera/bootstrap/(\S+)", said)
    assert chosen and chosen[0] in ("ctl-2", NEW), said[-3000:]
    assert re.search(rf"galera starts from: {chosen[0]} ", said), said[-3000:]
    assert "data lost: none" in said, said[-3000:]
    FIGURES["13a_assessment"] = [ln for ln in said.splitlines() if ln.startswith("galera")]
    done, took = _recover(cloud)
    FIGURES["13a_recover_s"] = took
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    _assert_three_synced(cloud)
    FIGURES["13a_rows_kept"] = f"{_kept(cloud, 'drill-13a', acknowledged)}/{len(acknowledged)}"
    _kept(cloud, "drill-before-backup", cloud.facts["before_backup"])


def test_recover_killed_midway_then_resume(cloud: Cloud) -> None:
    """Drill 4 (13c): lifecycle itself SIGKILLed while it restarts Galera; `resume` ends it."""
    acknowledged = _write(cloud, "drill-13c", 10)
    _sigkill_galera(cloud, CONTROLLERS)
    started = time.monotonic()
    proc = subprocess.Popen(
        cloud.argv("run", "recover", *cloud.inv(), "--driver", "testbed", "--yes",
                   "--no-progress"),
        cwd=REPO, env=cloud.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    killed_in = None
    deadline = time.monotonic() + 900
    while proc.poll() is None and time.monotonic() < deadline:
        killed_in = _running(cloud, r"^recover/galera/(join|bootstrap)/")
        if killed_in:
            time.sleep(2)  # inside the step: its playbook is starting mariadbd
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.2)
    proc.wait(timeout=30)
    assert killed_in, f"the recovery ended (rc {proc.returncode}) before Galera restarted"
    assert proc.returncode == -signal.SIGKILL
    run = _last_run(cloud)
    resumed = cloud.cli("resume", run, "--no-progress", timeout=1800)
    FIGURES["13c_recover_and_resume_s"] = round(time.monotonic() - started, 1)
    FIGURES["13c_killed_in"] = killed_in
    assert resumed.returncode == 0, resumed.stdout[-4000:] + resumed.stderr[-4000:]
    _assert_three_synced(cloud)
    FIGURES["13c_rows_kept"] = f"{_kept(cloud, 'drill-13c', acknowledged)}/{len(acknowledged)}"


def test_everything_destroyed_recover_restores_the_backup(cloud: Cloud) -> None:
    """Drill 5 (13b): no Galera data and no Keystone keys left on any controller."""
    assert cloud.facts.get("replaced"), "drill 2 did not run"
    _sigkill_galera(cloud, CONTROLLERS)
    for node in CONTROLLERS:
        root = Path(cloud.host(node).root) / "services"
        shutil.rmtree(root / "galera" / "data")
        (root / "galera" / "data").mkdir()
        for repo in ("fernet-keys", "credential-keys"):
            shutil.rmtree(root / "keystone" / "etc" / repo)
    planned = cloud.cli("plan", "recover", *cloud.inv(), "--driver", "testbed")
    assert planned.returncode == 0, planned.stdout[-3000:] + planned.stderr[-3000:]
    said = planned.stdout + planned.stderr
    assert "recover/galera/restore/" in said and cloud.facts["backup"] in said, said[-3000:]
    FIGURES["13b_assessment"] = [
        ln for ln in said.splitlines() if ln.startswith(("galera", "data"))
    ]
    done, took = _recover(cloud)
    FIGURES["13b_recover_s"] = took
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    _assert_three_synced(cloud)
    before = cloud.facts["before_backup"]
    FIGURES["13b_rows_kept"] = f"{_kept(cloud, 'drill-before-backup', before)}/{len(before)}"
    assert _validates(cloud, cloud.facts["token"]), "a token issued before the backup"
    assert _user_token(cloud, "drill-user", "drill-pw-1")
    # the credential keys came back with the backup: Keystone decrypts what it stored before
    assert _credential_blob(cloud, cloud.facts["credential"]) == CREDENTIAL_BLOB
    FIGURES["13b_credential_decrypts"] = True


def _state_of(cloud: Cloud, step: str) -> str | None:
    """The last state the journal recorded for step `step`, or None."""
    try:
        with closing(sqlite3.connect(f"file:{_journal(cloud)}?mode=ro", uri=True)) as con:
            rows = con.execute(
                "SELECT state FROM step_events WHERE step_id = ? ORDER BY rowid DESC LIMIT 1",
                (step,),
            ).fetchall()
    except sqlite3.OperationalError:
        return None
    return str(rows[0][0]) if rows else None


def _kill_host(cloud: Cloud, node: str) -> int:
    """`node` dies hard: its sshd and SSH sessions, then every process of its namespace, SIGKILLed
    (no service stops cleanly; its address stays, with nothing listening). Returns how many."""
    from lifecycle.testbed import manager

    manager.kill_sshd(cloud.state, node)
    netns = cloud.host(node).netns
    killed = 0
    deadline = time.monotonic() + 30
    while pids := pids_of(netns, ""):  # every live process (a zombie has no executable)
        assert time.monotonic() < deadline, f"processes of {node} survived SIGKILL: {pids}"
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.2)
    return killed


def test_node_dies_halfway_through_its_replacement_then_resume_without_it(cloud: Cloud) -> None:
    """Drill 6 (12): ctl-9 replaced by a new host ctl-8, and killed (sshd and every process) once
    the run is at its stop: the run stops (exit 4) with Galera and RabbitMQ keeping quorum on the
    two live members; `resume --node-dead ctl-9` finishes without it."""
    assert "backup" in cloud.facts, "drill 1 did not run"
    survivors = tuple(n for n in cloud.cluster().members["galera"] if n != DEAD)
    old_address, address = f"{cloud.prefix}19", f"{cloud.prefix}18"  # ctl-9: drill 2
    assert cloud.host(DEAD).address == old_address
    cloud.ok("testbed", "add-host", SPARE, address)
    acknowledged = _write(cloud, "drill-12-dead", 10)
    started = time.monotonic()
    out = cloud.state / "replace-dead.out"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            cloud.argv("run", "replace", *cloud.inv(), "--node", DEAD, "--with", SPARE,
                       "--address", address, "--driver", "testbed", "--yes", "--no-progress"),
            cwd=REPO, env=cloud.env(), stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
        stop = f"stop/{DEAD}"
        deadline = time.monotonic() + 900
        while proc.poll() is None and _state_of(cloud, stop) != "running":
            assert time.monotonic() < deadline, "the replace run never reached its stop step"
            time.sleep(0.1)
        assert proc.poll() is None, f"the run ended (rc {proc.returncode}) before {stop} ran"
        FIGURES["12_dead_killed_after_s"] = round(time.monotonic() - started, 1)
        FIGURES["12_dead_processes_killed"] = _kill_host(cloud, DEAD)
        try:
            proc.wait(timeout=600)  # the step fails, retried once; the run stops, no hang
        finally:
            if proc.poll() is None:
                proc.kill()
    said = out.read_text()
    FIGURES["12_dead_stopped_after_s"] = round(time.monotonic() - started, 1)
    assert proc.returncode == 4, said[-4000:]
    assert _state_of(cloud, stop) == "failed", said[-4000:]
    assert _state_of(cloud, f"remove/galera/{DEAD}") is None, "a member removed past the failure"

    # the safe point: both stores keep their quorum on the two live members; writes go on
    stores = {s["service"]: s for s in _status(cloud)["stores"]}
    for store in ("galera", "rabbitmq"):
        seen = stores[store]
        assert seen["quorum"] is True and sorted(seen["members"]) == sorted(survivors), seen
    FIGURES["12_dead_stores_at_stop"] = {s: (stores[s]["health"], stores[s]["members"])
                                         for s in ("galera", "rabbitmq")}  # fmt: skip
    for node in survivors:
        state = _sql(cloud, node, "SHOW GLOBAL STATUS LIKE 'wsrep_cluster_status'")
        assert state.split()[-1] == "Primary", (node, state)
    acknowledged += _write(cloud, "drill-12-dead", 10)

    run = _last_run(cloud)
    resumed = cloud.cli("resume", run, "--node-dead", DEAD, "--no-progress", timeout=1800)
    FIGURES["12_dead_replace_and_resume_s"] = round(time.monotonic() - started, 1)
    assert resumed.returncode == 0, resumed.stdout[-4000:] + resumed.stderr[-4000:]
    assert _state_of(cloud, stop) == "succeeded", "the dead node's stop, settled by --node-dead"

    # the operator's edit, as in drill 2
    cluster_yaml = cloud.inventory / "cluster.yaml"
    text = cluster_yaml.read_text()
    text = text.replace(f"name: {DEAD}\n", f"name: {SPARE}\n")
    text = text.replace(f"address: {old_address}\n", f"address: {address}\n")
    cluster_yaml.write_text(text)
    after = (*survivors, SPARE)
    _assert_three_synced(cloud, after)
    incoming = _sql(cloud, survivors[0], "SHOW GLOBAL STATUS LIKE 'wsrep_incoming_addresses'")
    assert f"{old_address}:" not in incoming and f"{address}:" in incoming, incoming
    stores = {s["service"]: s for s in _status(cloud)["stores"]}
    assert sorted(stores["rabbitmq"]["members"]) == sorted(after), stores["rabbitmq"]
    assert stores["rabbitmq"]["health"] == "healthy", stores["rabbitmq"]
    kept = _kept(cloud, "drill-12-dead", acknowledged)
    FIGURES["12_dead_rows_kept"] = f"{kept}/{len(acknowledged)}"
    _kept(cloud, "drill-before-backup", cloud.facts["before_backup"])
    assert _credential_blob(cloud, cloud.facts["credential"]) == CREDENTIAL_BLOB
