"""A tiny service daemon for testbed hosts (stdlib only: it is copied onto the hosts and run there).

One process per service instance, configured by a directory the playbooks write:
  config.json  {"service", "node", "bind", "port", "peers": [[node, address, port], ...]}
  version      the release the daemon is (re)started with
  instances.json / disabled   (nova-compute only) the instances it holds, and whether it is disabled

Commands: `serve DIR` runs the daemon; `ensure DIR` makes sure it runs at the version the file
names (restarting it otherwise) and prints {"changed": bool}; `stop DIR` stops it;
`install HOST_ROOT RELEASE CONFIGS_JSON SERVICE...` writes configuration and version of each
service and ensures its daemon (what a package upgrade and a service restart are on a real host).
HTTP: GET / (status, with quorum membership for services that have peers), GET /ping,
GET /instances, POST /instances {"add": [...], "remove": [ids]},
POST /evacuate {"targets", "mode"} (disables the compute, moves its instances).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PING_TIMEOUT = 0.5
_lock = threading.Lock()


def _read_json(path, default):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def _write_json(path, data):
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _http(url, body=None, timeout=PING_TIMEOUT):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


class Service:
    def __init__(self, directory):
        self.dir = Path(directory)
        self.config = _read_json(self.dir / "config.json", {})
        self.version = (self.dir / "version").read_text().strip()

    @property
    def name(self):
        return self.config["service"]

    def ping(self):
        return {"service": self.name, "node": self.config["node"], "version": self.version}

    def members(self):
        peers = self.config.get("peers") or []
        if not peers:
            return None
        reachable = [self.config["node"]]
        results = {}

        def probe(node, address, port):
            try:
                results[node] = _http(f"http://{address}:{port}/ping").get("service") == self.name
            except (OSError, ValueError):
                results[node] = False

        threads = [
            threading.Thread(target=probe, args=tuple(p))
            for p in peers
            if p[0] != self.config["node"]
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        reachable += sorted(node for node, ok in results.items() if ok)
        size = len(peers)
        return {"size": size, "reachable": reachable, "majority": len(reachable) * 2 > size}

    def instances(self):
        return _read_json(self.dir / "instances.json", [])

    def status(self):
        out = self.ping()
        members = self.members()
        if members is not None:
            out["members"] = members
        if self.name == "nova-compute":
            out["instances"] = self.instances()
            out["enabled"] = not (self.dir / "disabled").exists()
        return out

    def change_instances(self, add=(), remove=()):
        with _lock:
            held = self.instances()
            known = {i["id"] for i in held}
            held += [i for i in add if i["id"] not in known]
            held = [i for i in held if i["id"] not in set(remove)]
            _write_json(self.dir / "instances.json", held)
            return held

    def evacuate(self, targets, mode):
        """Disable this compute, then move every instance to the enabled targets, round robin;
        add before remove, so an instance is never absent (a live migration's guarantee)."""
        flag = self.dir / "disabled"
        newly_disabled = not flag.exists()
        flag.write_text("disabled by lifecycle\n")  # no new instances land here from now on
        enabled = []
        for url in targets:
            try:
                if _http(url + "/").get("enabled"):
                    enabled.append(url)
            except (OSError, ValueError):
                continue
        held = self.instances()
        if held and not enabled:
            raise RuntimeError("no enabled host in the aggregate to receive instances")
        for index, instance in enumerate(held):
            moved = dict(instance, host=None, migrated=mode)
            target = enabled[index % len(enabled)]
            _http(target + "/instances", {"add": [moved]}, timeout=5)
            self.change_instances(remove=[instance["id"]])
        return {"moved": len(held), "to": enabled, "disabled": newly_disabled}


def _handler(service):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # the daemon's log stays quiet; the journal is elsewhere
            pass

        def _send(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            routes = {"/": service.status, "/ping": service.ping, "/instances": service.instances}
            route = routes.get(self.path)
            if route is None:
                self._send(404, {"error": "not found"})
            else:
                self._send(200, route())

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            try:
                if self.path == "/instances":
                    held = service.change_instances(body.get("add", []), body.get("remove", []))
                    self._send(200, {"instances": held})
                elif self.path == "/evacuate":
                    self._send(200, service.evacuate(body["targets"], body.get("mode", "live")))
                else:
                    self._send(404, {"error": "not found"})
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                self._send(500, {"error": str(exc)})

    return Handler


def serve(directory):
    service = Service(directory)
    server = ThreadingHTTPServer(
        (service.config["bind"], service.config["port"]), _handler(service)
    )
    # nothing to flush (every write is atomic): stop at once, as a restart should
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server.serve_forever()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    return cmdline.exists() and b"daemon.py" in cmdline.read_bytes()


def _pid(directory):
    try:
        return int((Path(directory) / "pid").read_text())
    except (OSError, ValueError):
        return None


def _answers(directory):
    config = _read_json(Path(directory) / "config.json", {})
    try:
        return _http(f"http://{config['bind']}:{config['port']}/ping")
    except (OSError, ValueError, KeyError):
        return None


def stop(directory):
    pid = _pid(directory)
    if pid is None or not _alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not _alive(pid):
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
    (Path(directory) / "pid").unlink(missing_ok=True)
    return True


def _start(directory):
    """Start the daemon if it does not run at the version its file names; returns the child,
    or None when it already runs at that version."""
    wanted = (Path(directory) / "version").read_text().strip()
    pid = _pid(directory)
    running = _answers(directory) if pid and _alive(pid) else None
    if running and running.get("version") == wanted:
        return None
    stop(directory)
    log = open(Path(directory) / "log", "ab")  # noqa: SIM115 - handed to the child
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "serve", str(directory)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        close_fds=True,
    )
    (Path(directory) / "pid").write_text(str(child.pid))
    return child


def _wait(directory, child):
    wanted = (Path(directory) / "version").read_text().strip()
    for _ in range(400):
        answer = _answers(directory)
        if answer and answer.get("version") == wanted:
            return
        if child.poll() is not None:
            break
        time.sleep(0.025)
    raise SystemExit(f"daemon in {directory} did not start; see its log")


def ensure(directory):
    """Run the daemon at the version its file names; restart it only when that differs."""
    child = _start(directory)
    if child is not None:
        _wait(directory, child)
    return child is not None


def _write_if_changed(path, text):
    path = Path(path)
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def install(host_root, release, configs, services):
    """Install (or upgrade) services on a host: configuration, version file, daemon running at
    that version. Returns the services that changed; a second call with the same input changes
    nothing. Daemons restart together, then are awaited together."""
    changed, started = [], []
    for service in services:
        directory = Path(host_root) / "services" / service
        directory.mkdir(parents=True, exist_ok=True)
        touched = False
        if service in configs:
            text = json.dumps(configs[service], sort_keys=True) + "\n"
            touched |= _write_if_changed(directory / "config.json", text)
        touched |= _write_if_changed(directory / "version", release + "\n")
        if touched:
            stop(directory)  # stop, then start at the new version
        child = _start(directory)
        if child is not None:
            started.append((directory, child))
        if child is not None or touched:
            changed.append(service)
    for directory, child in started:
        _wait(directory, child)
    return changed


def main(argv):
    command, directory = argv[1], argv[2]
    if command == "install":
        configs = json.loads(argv[4]) if len(argv) > 4 else {}
        changed = install(directory, argv[3], configs, argv[5:])
        print(json.dumps({"changed": changed}))
    elif command == "serve":
        serve(directory)
    elif command == "ensure":
        print(json.dumps({"changed": ensure(directory)}))
    elif command == "stop":
        print(json.dumps({"changed": stop(directory)}))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)
