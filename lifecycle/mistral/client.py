"""A small client for the Mistral v2 REST API: the calls `lifecycle` needs, on the stdlib.

python-mistralclient lives in Mistral's own environment; `lifecycle` talks HTTP/JSON so it needs no
OpenStack client stack of its own. No authentication (a keystone token would go in `token`).
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from lifecycle.errors import ExecutionError

FINAL_STATES = frozenset({"SUCCESS", "ERROR", "CANCELLED"})


class MistralError(ExecutionError):
    """Mistral answered with an error, or could not be reached."""


@dataclass(frozen=True)
class TaskState:
    """One task execution as Mistral reports it."""

    id: str
    name: str
    state: str
    state_info: str | None
    result: Any


class MistralClient:
    """Workbooks, executions and task executions of one Mistral API endpoint (`.../v2`)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None, text: bool = False) -> Any:
        data = None
        # Mistral's workbook endpoints answer 406 to an Accept header with a text/plain body
        headers = {} if text else {"Accept": "application/json"}
        if self.token:
            headers["X-Auth-Token"] = self.token
        if body is not None:
            data = body.encode() if text else json.dumps(body).encode()
            headers["Content-Type"] = "text/plain" if text else "application/json"
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:2000]
            raise MistralError(f"Mistral {method} {path}: HTTP {exc.code}: {detail}") from None
        except OSError as exc:
            raise MistralError(f"Mistral at {self.url} unreachable: {exc}") from None
        return json.loads(raw) if raw else None

    def ping(self) -> bool:
        try:
            self._call("GET", "/workbooks?limit=1")
        except MistralError:
            return False
        return True

    # --- workbooks ----------------------------------------------------------------------------

    def put_workbook(self, text: str, validate: bool = False) -> dict[str, Any]:
        """Create the workbook, or update it if one of that name exists. Validation off by
        default: Mistral's schema check costs ~0.25 s per task and export already checked."""
        query = "" if validate else "?skip_validation"
        try:
            result: dict[str, Any] = self._call("POST", "/workbooks" + query, text, text=True)
        except MistralError as exc:
            if "HTTP 409" not in exc.message:
                raise
            result = self._call("PUT", "/workbooks" + query, text, text=True)
        return result

    def delete_workbook(self, name: str) -> None:
        self._call("DELETE", f"/workbooks/{name}")

    def actions(self) -> list[str]:
        found = self._call("GET", "/actions?limit=1000")
        return [a["name"] for a in found.get("actions", [])]

    # --- executions ---------------------------------------------------------------------------

    def start(self, workflow: str, inputs: dict[str, Any], description: str = "") -> str:
        body = {"workflow_name": workflow, "input": json.dumps(inputs), "description": description}
        execution = self._call("POST", "/executions", body)
        return str(execution["id"])

    def execution(self, execution_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", f"/executions/{execution_id}")
        return found

    def tasks(self, execution_id: str) -> list[TaskState]:
        found = self._call("GET", f"/executions/{execution_id}/tasks")
        return [_task(raw) for raw in found.get("tasks", [])]

    def task(self, task_id: str) -> TaskState:
        """One task execution with its result (the listing leaves results out)."""
        return _task(self._call("GET", f"/tasks/{task_id}"))

    def wait(self, execution_id: str, timeout: float = 600.0, poll: float = 0.5) -> dict[str, Any]:
        """Poll until the execution is SUCCESS, ERROR or CANCELLED; MistralError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            execution = self.execution(execution_id)
            if execution["state"] in FINAL_STATES:
                return execution
            if time.monotonic() > deadline:
                raise MistralError(
                    f"execution {execution_id} still {execution['state']} after {timeout:.0f} s"
                )
            time.sleep(poll)

    def rerun(self, task_id: str) -> None:
        """Re-run a task in ERROR (its execution goes back to RUNNING and carries on)."""
        self._call("PUT", f"/tasks/{task_id}", {"id": task_id, "state": "RUNNING", "reset": True})

    def cancel(self, execution_id: str, reason: str = "aborted by operator") -> None:
        body = {"id": execution_id, "state": "CANCELLED", "state_info": reason}
        self._call("PUT", f"/executions/{execution_id}", body)


def _task(raw: dict[str, Any]) -> TaskState:
    result = raw.get("result")
    if isinstance(result, str):
        with contextlib.suppress(ValueError):
            result = json.loads(result)
    return TaskState(
        id=str(raw["id"]),
        name=str(raw["name"]),
        state=str(raw["state"]),
        state_info=raw.get("state_info"),
        result=result,
    )
