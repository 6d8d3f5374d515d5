"""What users feel while the cloud changes: a probe through the first controller's HAProxy.

Every `interval` seconds (0.2 by default) one round, in the root namespace over the testbed bridge:
- Keystone through HAProxy (ADDR:15000): issue a token (POST /v3/auth/tokens, user admin,
  project admin, domain Default), validate it (GET /v3/auth/tokens with X-Subject-Token), create
  a project and delete it;
- Galera through HAProxy (ADDR:13306, user `probe`, database `probe`): increment this probe's
  counter row in its own transaction and remember the value the commit acknowledged.
A round succeeds when all five requests do. At the end the counter row is read once more: an
acknowledged increment it does not contain is a lost write (CONTRACT.md, issue 10 item 5).

The summary (`ProbeSummary`, JSON through `to_dict`) is written to `<state dir>/probe/<cluster>-
<started>.json` while the probe runs (every few seconds, `finished: false`) and at its end, so
that `lifecycle runs show RUN` prints the probes whose time window overlaps the run. Secrets are
read from the first controller's `secrets/` and never appear in a failure, a file or a log.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter as Multiset
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from lifecycle.errors import ExecutionError, InputError
from lifecycle.model.cluster import Cluster

KEYSTONE_PORT = 15000  # HAProxy frontend of backend `keystone` (CONTRACT.md)
DB_PORT = 13306  # HAProxy frontend of backend `galera`: one writer, the others backup
RECORD_DIR = "probe"
FLUSH_EVERY = 5.0  # seconds between the running summary's writes
ERROR_LIMIT = 300
OPERATIONS = ("token-issue", "token-validate", "project-create", "project-delete", "db-increment")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the summary -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """One failed request: when (ISO 8601 UTC), which operation (OPERATIONS, or `setup` /
    `final-read` / `inventory-start` / `inventory-end`), and the error with secrets removed."""

    at: str
    operation: str
    error: str


@dataclass(frozen=True)
class ProbeSummary:
    """The probe's figures. `requests`: requests sent (5 per full round); `longest_gap`: seconds
    between two successful rounds (start and end count as bounds; the whole run when none
    succeeded); `acknowledged_writes`: increments whose commit returned; `lost_writes`: the
    acknowledged counter values the final row does not contain (a value above the final one, or
    a value acknowledged twice: a commit later undone); `final_counter`: the row at the end (None
    when unread); `users_at_start`/`projects_at_start`: how many existed when the probe began
    (None when unread); `missing_users`/`missing_projects`: names of those gone at the end."""

    cluster: str
    endpoint: str
    started: str
    ended: str
    finished: bool = False
    rounds: int = 0
    requests: int = 0
    failures: tuple[Failure, ...] = ()
    longest_gap: float = 0.0
    acknowledged_writes: int = 0
    lost_writes: tuple[int, ...] = ()
    final_counter: int | None = None
    users_at_start: int | None = None
    projects_at_start: int | None = None
    missing_users: tuple[str, ...] = ()
    missing_projects: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No failed request, no lost write, nothing made before the probe gone."""
        return not (
            self.failures or self.lost_writes or self.missing_users or self.missing_projects
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out


def summary_from_dict(data: Any, source: str = "<probe>") -> ProbeSummary:
    """The inverse of `ProbeSummary.to_dict`; InputError naming `source` when it is not that."""
    if not isinstance(data, dict):
        raise InputError.at(source, "", "a probe summary (JSON object)")
    try:
        failures = tuple(Failure(**f) for f in data.get("failures", ()))
        fields = {k: v for k, v in data.items() if k in ProbeSummary.__dataclass_fields__}
        for key in ("lost_writes", "missing_users", "missing_projects"):
            fields[key] = tuple(fields.get(key, ()))
        return ProbeSummary(**{**fields, "failures": failures})
    except TypeError as exc:
        raise InputError.at(source, "", f"a probe summary ({exc})") from exc


def lost_writes(acknowledged: Iterable[int], final: int) -> tuple[int, ...]:
    """Acknowledged counter values the final row does not contain, sorted: each value above
    `final`, and each repeat of a value (two commits acknowledged the same value, so an earlier
    acknowledged increment was undone before the later one was made)."""
    seen = Multiset(acknowledged)
    lost = [v for v, n in seen.items() for _ in range(n - 1)]
    lost += [v for v in seen if v > final]
    return tuple(sorted(lost))


def render_summary(summary: ProbeSummary) -> str:
    """The summary as a few lines of text (the probe command, `lifecycle runs show`)."""
    state = "" if summary.finished else " (still running)"
    lost = len(summary.lost_writes)
    lines = [
        f"probe {summary.endpoint} {summary.started} -> {summary.ended}{state}:"
        f" {summary.requests} requests in {summary.rounds} rounds,"
        f" {len(summary.failures)} failed, longest gap {summary.longest_gap:.2f}s",
        f"  writes: {summary.acknowledged_writes} acknowledged, {lost} lost"
        + (f" (values {list(summary.lost_writes)[:10]})" if lost else "")
        + (f", final counter {summary.final_counter}" if summary.final_counter is not None else ""),
    ]
    kept = []
    for kind, at_start, missing in (
        ("users", summary.users_at_start, summary.missing_users),
        ("projects", summary.projects_at_start, summary.missing_projects),
    ):
        if at_start is not None:
            gone = f" ({len(missing)} gone: {', '.join(missing[:5])})" if missing else ""
            kept.append(f"{at_start - len(missing)}/{at_start} {kind} kept{gone}")
    if kept:
        lines.append("  made before: " + ", ".join(kept))
    for failure in summary.failures[:10]:
        lines.append(f"  FAILED {failure.at} {failure.operation}: {failure.error}")
    if len(summary.failures) > 10:
        lines.append(f"  ... and {len(summary.failures) - 10} more failures")
    return "\n".join(lines)


# --- the accounting (no I/O) -----------------------------------------------------------------


class Tally:
    """Counts requests, failures, successful rounds and acknowledged writes as the probe makes
    them. Times are `clock()` seconds (monotonic); failures are stamped with `wall()`."""

    def __init__(
        self,
        started: float,
        redact: Callable[[str], str] = lambda s: s,
        wall: Callable[[], str] = now_iso,
    ) -> None:
        self.started = started
        self.last_ok = started
        self.longest_gap = 0.0
        self.rounds = 0
        self.requests = 0
        self.failures: list[Failure] = []
        self.acknowledged: list[int] = []
        self._redact = redact
        self._wall = wall
        self._lock = threading.Lock()

    def fail(self, operation: str, error: BaseException | str) -> None:
        text = str(error) or type(error).__name__
        if isinstance(error, BaseException):
            text = f"{type(error).__name__}: {text}"
        with self._lock:
            self.failures.append(Failure(self._wall(), operation, self._redact(text)[:ERROR_LIMIT]))

    def request(self) -> None:
        with self._lock:
            self.requests += 1

    def acknowledge(self, value: int) -> None:
        with self._lock:
            self.acknowledged.append(value)

    def round_done(self, ok: bool, at: float) -> None:
        with self._lock:
            self.rounds += 1
            if ok:
                self.longest_gap = max(self.longest_gap, at - self.last_ok)
                self.last_ok = at

    def counts(self) -> tuple[int, int, tuple[Failure, ...], tuple[int, ...]]:
        """(rounds, requests, failures, acknowledged values), read at one moment."""
        with self._lock:
            return self.rounds, self.requests, tuple(self.failures), tuple(self.acknowledged)

    def gap_until(self, at: float) -> float:
        """The longest gap, counting the time since the last successful round up to `at`."""
        with self._lock:
            return max(self.longest_gap, at - self.last_ok)


# --- the services the probe talks to ---------------------------------------------------------


class Identity(Protocol):
    def issue(self) -> str: ...
    def validate(self, token: str) -> None: ...
    def create_project(self, token: str, name: str) -> str: ...
    def delete_project(self, token: str, project_id: str) -> None: ...
    def names(self, token: str, kind: str) -> frozenset[str]: ...


class CounterStore(Protocol):
    def setup(self) -> None: ...
    def increment(self) -> int: ...
    def value(self) -> int | None: ...


class ProbeRequestError(Exception):
    """A request answered, but not as expected (status and the start of the body)."""


class Keystone:
    """Keystone's v3 API at `url` (http://ADDR:15000/v3) as admin (project admin, domain
    Default); requests, one session (keep-alive through HAProxy), no retries (a retry would
    hide exactly what the probe is there to see)."""

    def __init__(self, url: str, password: str, timeout: float = 5.0) -> None:
        import requests

        self.url = url.rstrip("/")
        self._password = password
        self.timeout = timeout
        self._session = requests.Session()

    def _call(
        self, method: str, path: str, expect: int, token: str | None = None, **kw: Any
    ) -> Any:
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["X-Auth-Token"] = token
        answer = self._session.request(
            method, self.url + path, headers=headers, timeout=self.timeout, **kw
        )
        if answer.status_code != expect:
            raise ProbeRequestError(
                f"{method} {path}: HTTP {answer.status_code} (expected {expect}):"
                f" {answer.text[:120]}"
            )
        return answer

    def issue(self) -> str:
        scope = {"project": {"name": "admin", "domain": {"id": "default"}}}
        user = {"name": "admin", "domain": {"id": "default"}, "password": self._password}
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}},
                         "scope": scope}}  # fmt: skip
        answer = self._call("POST", "/auth/tokens", 201, json=body)
        token = answer.headers.get("X-Subject-Token")
        if not token:
            raise ProbeRequestError("POST /auth/tokens: no X-Subject-Token in the answer")
        return str(token)

    def validate(self, token: str) -> None:
        self._call("GET", "/auth/tokens", 200, token, headers={"X-Subject-Token": token})

    def create_project(self, token: str, name: str) -> str:
        body = {"project": {"name": name, "domain_id": "default", "description": "user probe"}}
        answer = self._call("POST", "/projects", 201, token, json=body)
        return str(answer.json()["project"]["id"])

    def delete_project(self, token: str, project_id: str) -> None:
        self._call("DELETE", f"/projects/{project_id}", 204, token)

    def names(self, token: str, kind: str) -> frozenset[str]:
        """`users` or `projects`: every name Keystone lists (one page: the testbed's few)."""
        answer = self._call("GET", f"/{kind}", 200, token)
        return frozenset(str(item["name"]) for item in answer.json()[kind])

    def close(self) -> None:
        self._session.close()


class GaleraCounter:
    """This probe's row of table `probe_counter` in database `probe`, through HAProxy. A new
    connection per increment (what a short-lived API worker does; it also sees each failover)."""

    TABLE = (
        "CREATE TABLE IF NOT EXISTS probe_counter"
        " (name VARCHAR(64) NOT NULL PRIMARY KEY, value BIGINT NOT NULL) ENGINE=InnoDB"
    )

    def __init__(
        self,
        host: str,
        port: int,
        password: str,
        name: str,
        user: str = "probe",
        database: str = "probe",
        timeout: float = 5.0,
        unix_socket: str | None = None,
    ) -> None:
        self.name = name
        self._args = {
            "host": host,
            "port": port,
            "user": user,
            "password": password,
            "database": database,
            "connect_timeout": timeout,
            "read_timeout": timeout,
            "write_timeout": timeout,
            "autocommit": False,
            "unix_socket": unix_socket,
        }

    def _connect(self) -> Any:
        import pymysql

        return pymysql.connect(**self._args)

    def setup(self) -> None:
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute(self.TABLE)
            cur.execute(
                "INSERT IGNORE INTO probe_counter (name, value) VALUES (%s, 0)", (self.name,)
            )
            conn.commit()

    def increment(self) -> int:
        """The value this transaction committed (LAST_INSERT_ID(expr) hands it back without a
        second read, so another writer cannot slip in between)."""
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE probe_counter SET value = LAST_INSERT_ID(value + 1) WHERE name = %s",
                (self.name,),
            )
            if cur.rowcount != 1:
                raise ProbeRequestError(f"counter row {self.name!r} is missing")
            cur.execute("SELECT LAST_INSERT_ID()")
            row = cur.fetchone()
            conn.commit()  # acknowledged only once this returns
            return int(row[0])

    def value(self) -> int | None:
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT value FROM probe_counter WHERE name = %s", (self.name,))
            row = cur.fetchone()
            return None if row is None else int(row[0])


# --- the probe -------------------------------------------------------------------------------


class UserProbe:
    """Use as a context manager (a thread makes the rounds); read `.summary` afterwards.
    `record`: the file the running and final summary are written to (None: none)."""

    def __init__(
        self,
        identity: Identity,
        counter: CounterStore,
        cluster: str = "",
        endpoint: str = "",
        interval: float = 0.2,
        record: Path | None = None,
        secrets: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.identity = identity
        self.counter = counter
        self.cluster = cluster
        self.endpoint = endpoint
        self.interval = interval
        self.record = record
        self.clock = clock
        self._secrets = tuple(s for s in secrets if s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="user-probe", daemon=True)
        self.started = now_iso()
        self.tally = Tally(clock(), self._redact)
        self._before: dict[str, frozenset[str] | None] = {"users": None, "projects": None}
        self._serial = 0
        self._tag = uuid.uuid4().hex[:8]
        self.summary: ProbeSummary | None = None

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def __enter__(self) -> UserProbe:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.started = now_iso()
        self.tally = Tally(self.clock(), self._redact)
        try:
            self.counter.setup()
        except Exception as exc:  # any failure is the probe's finding
            self.tally.fail("setup", exc)
        self._before = self._inventory("inventory-start")
        self._thread.start()

    def stop(self) -> ProbeSummary:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        final: int | None = None
        try:
            final = self.counter.value()
        except Exception as exc:
            self.tally.fail("final-read", exc)
        after = self._inventory("inventory-end")
        self.summary = self.snapshot(finished=True, final=final, after=after)
        self._write(self.summary)
        return self.summary

    def _inventory(self, operation: str) -> dict[str, frozenset[str] | None]:
        try:
            token = self.identity.issue()
            return {kind: self.identity.names(token, kind) for kind in ("users", "projects")}
        except Exception as exc:
            self.tally.fail(operation, exc)
            return {"users": None, "projects": None}

    def snapshot(
        self,
        finished: bool = False,
        final: int | None = None,
        after: dict[str, frozenset[str] | None] | None = None,
    ) -> ProbeSummary:
        """The summary so far (the running one has no final read: no lost writes yet)."""
        tally = self.tally
        rounds, requests, failures, acknowledged = tally.counts()
        missing: dict[str, tuple[str, ...]] = {"users": (), "projects": ()}
        for kind in missing:
            before, now = self._before[kind], (after or {}).get(kind)
            if before is not None and now is not None:
                missing[kind] = tuple(sorted(before - now))
        before_users, before_projects = self._before["users"], self._before["projects"]
        return ProbeSummary(
            cluster=self.cluster,
            endpoint=self.endpoint,
            started=self.started,
            ended=now_iso(),
            finished=finished,
            rounds=rounds,
            requests=requests,
            failures=failures,
            longest_gap=round(tally.gap_until(self.clock()), 3),
            acknowledged_writes=len(acknowledged),
            lost_writes=lost_writes(acknowledged, final) if final is not None else (),
            final_counter=final,
            users_at_start=None if before_users is None else len(before_users),
            projects_at_start=None if before_projects is None else len(before_projects),
            missing_users=missing["users"],
            missing_projects=missing["projects"],
        )

    def _write(self, summary: ProbeSummary) -> None:
        if self.record is None:
            return
        self.record.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.record.with_name(self.record.name + ".tmp")
        tmp.write_text(json.dumps(summary.to_dict(), indent=1))
        os.replace(tmp, self.record)

    def _loop(self) -> None:
        flushed = self.clock()
        while not self._stop.is_set():
            began = self.clock()
            self.round()
            if self.record is not None and self.clock() - flushed >= FLUSH_EVERY:
                self._write(self.snapshot())
                flushed = self.clock()
            self._stop.wait(max(0.0, self.interval - (self.clock() - began)))

    def _attempt(self, operation: str, call: Callable[[], Any]) -> tuple[bool, Any]:
        self.tally.request()
        try:
            return True, call()
        except Exception as exc:  # every failure is recorded, none stops the probe
            self.tally.fail(operation, exc)
            return False, None

    def round(self) -> bool:
        """One round of the five requests; True when all succeeded."""
        self._serial += 1
        ok, token = self._attempt("token-issue", self.identity.issue)
        if ok:
            valid, _ = self._attempt("token-validate", lambda: self.identity.validate(token))
            name = f"probe-{self._tag}-{self._serial}"
            made, pid = self._attempt(
                "project-create", lambda: self.identity.create_project(token, name)
            )
            gone = (
                made
                and self._attempt(
                    "project-delete", lambda: self.identity.delete_project(token, pid)
                )[0]
            )
            ok = valid and made and gone
        wrote, value = self._attempt("db-increment", self.counter.increment)
        if wrote:
            self.tally.acknowledge(value)
        ok = ok and wrote
        self.tally.round_done(ok, self.clock())
        return ok


# --- the testbed's probe ---------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeTarget:
    """The first controller's HAProxy and the passwords the probe uses (never shown)."""

    node: str
    address: str
    admin_password: str = field(repr=False)
    db_password: str = field(repr=False)

    @property
    def keystone_url(self) -> str:
        return f"http://{self.address}:{KEYSTONE_PORT}/v3"


def first_controller(cluster: Cluster) -> str:
    """The first node (inventory order) that runs haproxy: the probe's and the monitor's way in."""
    members = cluster.members.get("haproxy") or ()
    if not members:
        raise InputError.at(cluster.source or cluster.name, "roles", "a node running haproxy")
    return members[0]


def read_secret(host_root: str | Path, name: str) -> str:
    """`<host_root>/secrets/<name>` (one line); ExecutionError naming the file, never its text."""
    path = Path(host_root) / "secrets" / name
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ExecutionError(f"cannot read secret {path}: {exc.strerror}") from None


def host_root_of(testbed_dir: Path, node: str) -> str:
    """The testbed host's directory (`testbed up` recorded it); ExecutionError without one."""
    from lifecycle.testbed import state as testbed_state

    state = testbed_state.load(testbed_dir)
    if state is None:
        raise ExecutionError(f"no testbed recorded in {testbed_dir} (lifecycle testbed up)")
    try:
        return state.host(node).root
    except KeyError:
        raise ExecutionError(f"the testbed in {testbed_dir} has no host {node}") from None


def probe_target(cluster: Cluster, testbed_dir: Path) -> ProbeTarget:
    node = first_controller(cluster)
    address = cluster.node(node).address
    if not address:
        raise InputError.at(cluster.source or cluster.name, f"nodes.{node}.address", "an address")
    root = host_root_of(testbed_dir, node)
    return ProbeTarget(
        node, address, read_secret(root, "keystone-admin"), read_secret(root, "db-probe")
    )


def record_path(state_root: Path, cluster: str, started: str) -> Path:
    stamp = started.replace("-", "").replace(":", "").split(".")[0]
    return state_root / RECORD_DIR / f"{cluster}-{stamp}Z.json"


def prepare_databases(cluster: Cluster, testbed_dir: Path) -> None:
    """The probe's database and user, and the monitor's user, on the first Galera member
    (db-create.yml; idempotent, a second call changes nothing). ExecutionError when it fails."""
    from lifecycle.testbed.driver_site import ansible_driver

    members = cluster.members.get("galera") or ()
    if not members:
        return
    driver = ansible_driver(testbed_dir)
    for project in ("probe", "monitor"):
        done = driver.run_playbook(
            "db-create", cluster, nodes=(members[0],), params={"project": project}
        )
        if not done.ok:
            raise ExecutionError(f"the {project} database user on {members[0]}: {done.error}")


def testbed_probe(
    cluster: Cluster, testbed_dir: Path, state_root: Path | None, interval: float = 0.2
) -> UserProbe:
    """The probe of the testbed's first controller, recording under `state_root` (or nowhere);
    its database and the monitor's user are made first (prepare_databases)."""
    target = probe_target(cluster, testbed_dir)  # first: says when there is no testbed
    prepare_databases(cluster, testbed_dir)
    name = f"{cluster.name}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    probe = UserProbe(
        Keystone(target.keystone_url, target.admin_password),
        GaleraCounter(target.address, DB_PORT, target.db_password, name),
        cluster=cluster.name,
        endpoint=f"{target.node} ({target.address})",
        interval=interval,
        secrets=(target.admin_password, target.db_password),
    )
    if state_root is not None:
        probe.record = record_path(state_root, cluster.name, probe.started)
    return probe


# --- reading the records back ----------------------------------------------------------------


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def probes_during(
    state_root: Path, cluster: str, started: str | None, ended: str | None
) -> list[ProbeSummary]:
    """The probe summaries of `cluster` under `state_root` whose time window overlaps the run's
    [started, ended] (ISO 8601; `ended` None: still running), oldest first. Unreadable files are
    skipped: a report must not fail on a probe's record."""
    begin = _epoch(started)
    end = _epoch(ended) or time.time()
    out = []
    for path in sorted((state_root / RECORD_DIR).glob(f"{cluster}-*.json")):
        try:
            summary = summary_from_dict(json.loads(path.read_text()), str(path))
        except (OSError, ValueError, InputError):
            continue
        p_begin, p_end = _epoch(summary.started), _epoch(summary.ended)
        if summary.cluster != cluster or p_begin is None or p_end is None:
            continue
        if begin is None or (p_begin <= end and p_end >= begin):
            out.append(summary)
    return out
