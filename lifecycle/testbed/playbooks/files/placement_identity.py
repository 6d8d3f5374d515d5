"""Placement's identity in Keystone, made idempotently through Keystone's v3 API (run by
keystone-bootstrap.yml on the bootstrap node): project `service`, user `placement` with role admin
on it, service type `placement`, public and internal endpoints in RegionOne.

Environment: KEYSTONE_URL (.../v3), ADMIN_PASSWORD, PLACEMENT_PASSWORD, PLACEMENT_URL.
Prints `created: <what>` per thing it made, nothing else (never a password).
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from email.message import Message
from typing import Any

BASE = os.environ["KEYSTONE_URL"].rstrip("/")


def call(method: str, path: str, token: str | None = None, body: Any = None) -> tuple[Message, Any]:
    request = urllib.request.Request(
        BASE + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **({"X-Auth-Token": token} if token else {})},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        raw = answer.read()
        return answer.headers, (json.loads(raw) if raw else {})


def admin_token() -> str:
    auth = {
        "identity": {
            "methods": ["password"],
            "password": {
                "user": {
                    "name": "admin",
                    "domain": {"id": "default"},
                    "password": os.environ["ADMIN_PASSWORD"],
                }
            },
        },
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
    }
    headers, _ = call("POST", "/auth/tokens", body={"auth": auth})
    return str(headers["X-Subject-Token"])


def ensure(token: str, kind: str, query: dict[str, str], body: dict[str, str]) -> str:
    """The first `kind` matching `query`, created from `body` when there is none."""
    _, found = call("GET", f"/{kind}?{urllib.parse.urlencode(query)}", token)
    if found[kind]:
        return str(found[kind][0]["id"])
    singular = kind[:-1]
    _, made = call("POST", f"/{kind}", token, {singular: body})
    print(f"created: {singular} {query}")
    return str(made[singular]["id"])


def main() -> None:
    token = admin_token()
    project = ensure(
        token, "projects", {"name": "service"}, {"name": "service", "domain_id": "default"}
    )
    user = ensure(
        token,
        "users",
        {"name": "placement", "domain_id": "default"},
        {"name": "placement", "domain_id": "default", "password": os.environ["PLACEMENT_PASSWORD"]},
    )
    role = ensure(token, "roles", {"name": "admin"}, {"name": "admin"})
    call("PUT", f"/projects/{project}/users/{user}/roles/{role}", token)
    service = ensure(
        token, "services", {"type": "placement"}, {"name": "placement", "type": "placement"}
    )
    for interface in ("public", "internal"):
        ensure(
            token,
            "endpoints",
            {"service_id": service, "interface": interface},
            {
                "service_id": service,
                "interface": interface,
                "region_id": "RegionOne",
                "url": os.environ["PLACEMENT_URL"],
            },
        )


main()
