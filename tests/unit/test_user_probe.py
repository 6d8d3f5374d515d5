"""The user probe's accounting against a fake Keystone (a local HTTP server) and fake counters;
its SQL against a throwaway local MariaDB when this machine can start one."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lifecycle.testbed.user_probe import (
    Keystone,
    ProbeSummary,
    Tally,
    UserProbe,
    lost_writes,
    probes_during,
    record_path,
    render_summary,
    summary_from_dict,
)

PASSWORD = "0123456789abcdef0123456789abcdef"


class FakeKeystone:
    """Keystone's few v3 calls the probe makes; `down` makes every call answer 503, `leak`
    makes a failed login echo the password back (the probe must not repeat it)."""

    def __init__(self) -> None:
        self.tokens: set[str] = set()
        self.projects = {"p-admin": "admin", "p-service": "service", "p-old": "customer"}
        self.users = {"admin", "placement", "alice"}
        self.down = False
        self.leak = False
        self.calls: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: Any = None, headers: dict | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                return self.headers.get("X-Auth-Token") in fake.tokens

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.calls.append(f"POST {self.path}")
                if fake.down:
                    return self._send(503, {"error": "no server available"})
                if self.path == "/v3/auth/tokens":
                    user = body["auth"]["identity"]["password"]["user"]
                    if fake.leak or user["password"] != PASSWORD:
                        return self._send(401, {"error": f"bad password {user['password']}"})
                    token = uuid.uuid4().hex
                    fake.tokens.add(token)
                    return self._send(201, {"token": {}}, {"X-Subject-Token": token})
                if self.path == "/v3/projects" and self._authorized():
                    pid = uuid.uuid4().hex
                    fake.projects[pid] = body["project"]["name"]
                    return self._send(201, {"project": {"id": pid}})
                return self._send(401, {"error": "unauthorized"})

            def do_GET(self) -> None:
                fake.calls.append(f"GET {self.path}")
                if fake.down:
                    return self._send(503, {"error": "no server available"})
                if not self._authorized():
                    return self._send(401, {"error": "unauthorized"})
                if self.path == "/v3/auth/tokens":
                    ok = self.headers.get("X-Subject-Token") in fake.tokens
                    return self._send(200 if ok else 404, {"token": {}})
                if self.path == "/v3/users":
                    return self._send(200, {"users": [{"name": n} for n in fake.users]})
                if self.path == "/v3/projects":
                    names = [{"name": n} for n in fake.projects.values()]
                    return self._send(200, {"projects": names})
                return self._send(404, {})

            def do_DELETE(self) -> None:
                fake.calls.append("DELETE")
                pid = self.path.rsplit("/", 1)[-1]
                if fake.down or not self._authorized() or pid not in fake.projects:
                    return self._send(503 if fake.down else 404, {})
                del fake.projects[pid]
                return self._send(204)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v3"


class FakeCounter:
    """A counter row; `undo_at`: the value whose acknowledged commit is then undone (what a
    Galera failover to a member that never had it would do)."""

    def __init__(self, undo_at: int | None = None, final_offset: int = 0) -> None:
        self.row = 0
        self.undo_at = undo_at
        self.final_offset = final_offset
        self.failing = False

    def setup(self) -> None:
        pass

    def increment(self) -> int:
        if self.failing:
            raise ConnectionError("Lost connection to MySQL server during query")
        self.row += 1
        value = self.row
        if value == self.undo_at:
            self.row -= 1  # acknowledged, then gone
            self.undo_at = None
        return value

    def value(self) -> int | None:
        return self.row + self.final_offset


@pytest.fixture
def keystone():
    fake = FakeKeystone()
    yield fake
    fake.server.shutdown()


def make_probe(keystone: FakeKeystone, counter: FakeCounter, **kw: Any) -> UserProbe:
    return UserProbe(
        Keystone(keystone.url, PASSWORD, timeout=2),
        counter,
        cluster="demo",
        endpoint="ctl-0 (127.0.0.1)",
        interval=0.005,
        secrets=(PASSWORD,),
        **kw,
    )


def test_clean_rounds_count_five_requests_each_and_lose_nothing(keystone) -> None:
    probe = make_probe(keystone, FakeCounter())
    probe.start()
    ok = [probe.round() for _ in range(4)]
    summary = probe.stop()
    assert all(ok)
    assert summary.requests >= 20 and summary.rounds >= 4  # the thread may add rounds
    assert summary.requests == 5 * summary.rounds
    assert summary.failures == () and summary.lost_writes == ()
    assert summary.acknowledged_writes == summary.rounds == summary.final_counter
    assert (summary.users_at_start, summary.projects_at_start) == (3, 3)
    assert summary.missing_users == summary.missing_projects == ()
    assert set(keystone.projects) == {"p-admin", "p-service", "p-old"}  # each made one deleted
    assert summary.finished and summary.ok


def test_an_acknowledged_write_the_row_no_longer_holds_is_lost(keystone) -> None:
    probe = make_probe(keystone, FakeCounter(undo_at=2))
    probe.start()
    for _ in range(4):
        probe.round()
    summary = probe.stop()
    assert summary.lost_writes == (2,)  # value 2 was acknowledged twice: the first one is gone
    assert summary.acknowledged_writes == summary.rounds
    assert summary.final_counter == summary.rounds - 1
    assert not summary.ok


def test_writes_above_the_final_row_are_lost() -> None:
    assert lost_writes([1, 2, 3, 4, 5], final=3) == (4, 5)
    assert lost_writes([1, 2, 2, 3, 3, 4], final=4) == (2, 3)
    assert lost_writes([1, 2, 3], final=7) == ()  # unacknowledged commits (in doubt) lose nothing


def test_failures_are_named_and_never_carry_the_password(keystone) -> None:
    counter = FakeCounter()
    probe = make_probe(keystone, counter)
    probe.start()
    probe.round()
    keystone.leak = True
    counter.failing = True
    assert probe.round() is False
    keystone.leak, keystone.down = False, True
    probe.round()
    keystone.down = False
    counter.failing = False
    probe.round()
    summary = probe.stop()
    operations = [f.operation for f in summary.failures]
    assert operations.count("token-issue") >= 2 and "db-increment" in operations
    text = json.dumps(summary.to_dict()) + render_summary(summary)
    assert PASSWORD not in text and "***" in text
    assert any("HTTP 503" in f.error for f in summary.failures)
    assert all(f.at.endswith("Z") for f in summary.failures)
    assert summary.lost_writes == ()


def test_a_project_made_before_the_probe_and_gone_after_is_named(keystone) -> None:
    probe = make_probe(keystone, FakeCounter())
    probe.start()
    probe.round()
    del keystone.projects["p-old"]
    keystone.users.discard("alice")
    summary = probe.stop()
    assert summary.missing_projects == ("customer",)
    assert summary.missing_users == ("alice",)
    assert not summary.ok
    assert "2/3 users kept (1 gone: alice)" in render_summary(summary)


def test_longest_gap_is_between_successful_rounds_and_bounded_by_start_and_end() -> None:
    tally = Tally(started=100.0, wall=lambda: "t")
    for at, ok in ((100.2, True), (100.4, False), (100.6, False), (101.5, True), (101.7, True)):
        tally.round_done(ok, at)
    assert tally.longest_gap == pytest.approx(1.3)
    assert tally.gap_until(101.8) == pytest.approx(1.3)
    assert tally.gap_until(104.0) == pytest.approx(2.3)  # nothing succeeded since 101.7
    assert Tally(started=5.0).gap_until(9.0) == pytest.approx(4.0)  # never succeeded


def test_the_thread_makes_rounds_and_records_the_summary_for_runs_show(keystone, tmp_path) -> None:
    record = record_path(tmp_path, "demo", "2026-11-30T02:00:00.123Z")
    assert record == tmp_path / "probe" / "demo-20261130T020000Z.json"
    probe = make_probe(keystone, FakeCounter(), record=record)
    with probe:
        deadline = time.monotonic() + 30
        while probe.tally.rounds < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
    summary = probe.summary
    assert summary is not None and summary.rounds >= 5 and summary.ok
    loaded = summary_from_dict(json.loads(record.read_text()))
    assert loaded == summary
    found = probes_during(tmp_path, "demo", summary.started, None)
    assert found == [summary]
    assert probes_during(tmp_path, "demo", "2000-01-01T00:00:00Z", "2000-01-01T01:00:00Z") == []
    assert probes_during(tmp_path, "other", summary.started, None) == []


def test_summary_json_shape() -> None:
    summary = ProbeSummary("demo", "ctl-0 (198.18.0.11)", "a", "b", lost_writes=(3,))
    data = summary.to_dict()
    assert sorted(data) == sorted(
        ["cluster", "endpoint", "started", "ended", "finished", "rounds", "requests",
         "failures", "longest_gap", "acknowledged_writes", "lost_writes", "final_counter",
         "users_at_start", "projects_at_start", "missing_users", "missing_projects"]
    )  # fmt: skip
    assert summary_from_dict(json.loads(json.dumps(data))) == summary


def test_probe_command_needs_a_testbed(tmp_path, capsys) -> None:
    from lifecycle.cli.main import main

    demo = Path(__file__).resolve().parents[2] / "inventories" / "demo"
    code = main(["testbed", "probe", "-i", str(demo), "--state-dir", str(tmp_path),
                 "--duration", "0"])  # fmt: skip
    assert code == 4
    assert "no testbed recorded" in capsys.readouterr().err


def test_runs_show_prints_the_probes_that_ran_during_the_run(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from lifecycle.cli.main import main

    demo = Path(__file__).resolve().parents[2] / "tests" / "data" / "demo-train"
    (demo / "secrets.yaml").chmod(0o600)  # git does not keep the mode
    state = tmp_path / "state"
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(state))
    monkeypatch.setenv("LIFECYCLE_SIM_SCALE", "0")

    def run(*args: str) -> tuple[int, str]:
        with CliRunner().isolation() as (out, _err, _):
            code = main(list(args))
        return code, out.getvalue().decode()

    code, _ = run("run", "upgrade", "-i", str(demo), "--to", "ussuri", "-y", "--no-progress",
                  "--driver", "sim")  # fmt: skip
    assert code == 0
    during = ProbeSummary("demo", "ctl-0 (198.18.0.11)", "2000-01-01T00:00:00.000Z",
                          "2999-01-01T00:00:00.000Z", finished=True, rounds=3, requests=15,
                          acknowledged_writes=3, final_counter=3, longest_gap=0.4)  # fmt: skip
    before = ProbeSummary("demo", "ctl-0", "2000-01-01T00:00:00.000Z", "2000-01-01T00:10:00.000Z")
    for summary in (during, before):
        path = state / "probe" / f"demo-{summary.ended[:4]}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary.to_dict()))
    code, shown = run("runs", "show", "last")
    assert code == 0
    assert "user probes during this run:" in shown
    assert "15 requests in 3 rounds, 0 failed, longest gap 0.40s" in shown
    assert "writes: 3 acknowledged, 0 lost" in shown
    code, shown = run("runs", "show", "last", "-f", "json")
    assert [p["ended"] for p in json.loads(shown)["probes"]] == [during.ended]
