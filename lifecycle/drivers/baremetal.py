"""The bare-metal driver: Ironic through openstacksdk.

Connection: `endpoint` (or $LIFECYCLE_IRONIC_URL) talks to a standalone Ironic without auth;
otherwise `cloud` (or $OS_CLOUD) names a clouds.yaml entry.

Actions (one node per step, `Step.nodes[0]`, which is also the Ironic node name):

- `baremetal.enroll` {driver, bmc_address, system_id, credentials, macs, properties}: create the
  node with its BMC driver info (the password comes from the run's secrets under `credentials`,
  never from the plan) and a port per MAC, then `manage` it, which makes Ironic log in to the
  BMC: a wrong password fails here with Ironic's last_error.
- `baremetal.inspect` {}: out-of-band inspection; the output carries the facts profiles use and
  the full inventory goes to the step's artifacts.
- `baremetal.match_profile` {profile, profiles}: match the inventory against `profiles` (JSON, see
  lifecycle.planning.profiles); the server must fit `profile`, else the step fails with the
  explanation. Sets the `profile:X` capability and the CUSTOM_PROFILE_X trait.
- `baremetal.provide` {}: manageable -> available.
- `baremetal.deploy` {image, interface}: available -> active. interface "ramdisk" boots `image`
  (an ISO URL) with the ramdisk deploy interface; "direct" writes `image` (image_source).
- `baremetal.undeploy` {}: active -> available.

Every verb first looks at the node's provision state and does only what is missing, so re-running
after a partial failure continues, and active nodes are never touched.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import tenacity

from lifecycle.drivers.base import Driver, StepContext, StepResult
from lifecycle.drivers.openstack_conn import ThreadConnections
from lifecycle.drivers.openstack_conn import connect as openstack_connect
from lifecycle.errors import DriverError
from lifecycle.planning.plan import Step
from lifecycle.planning.profiles import (
    facts_from_inventory,
    match_node,
    profiles_from_json,
    trait_for,
)

log = logging.getLogger(__name__)

# states in which a verb's effect is already in place
AFTER_PROVIDE = frozenset(
    {"available", "deploying", "wait call-back", "deploy failed", "active", "deleting"}
)
AFTER_INSPECT = frozenset({"manageable", "cleaning", "clean wait", *AFTER_PROVIDE})
AFTER_ENROLL = (
    frozenset({"verifying", "inspecting", "inspect wait", "inspect failed"}) | AFTER_INSPECT
)


# transient states -> (the state they end in when all goes well, the timeout that applies)
IN_FLIGHT = {
    "verifying": ("manageable", "manageable"),
    "inspecting": ("manageable", "inspect"),
    "inspect wait": ("manageable", "inspect"),
    "cleaning": ("available", "available"),
    "clean wait": ("available", "available"),
    "deploying": ("active", "active"),
    "wait call-back": ("active", "active"),
    "deleting": ("available", "available"),
}


class TransitionFailed(DriverError):
    """A node did not reach the state a verb asked for; the message carries Ironic's last_error."""


def capabilities(node: Any) -> dict[str, str]:
    """The node's `properties.capabilities` ("k1:v1,k2:v2") as a mapping."""
    text = str((node.properties or {}).get("capabilities") or "")
    return dict(item.split(":", 1) for item in text.split(",") if ":" in item)


def with_capability(properties: Mapping[str, Any], key: str, value: str) -> str:
    """The capabilities string with `key` set to `value`, other capabilities kept in order."""
    text = str(properties.get("capabilities") or "")
    items = [i for i in text.split(",") if i and not i.startswith(f"{key}:")]
    return ",".join([*items, f"{key}:{value}"])


TIMEOUTS = {"manageable": 120.0, "inspect": 900.0, "available": 1800.0, "active": 3600.0}
# loggers that may print request bodies (driver_info holds the BMC password) at DEBUG level
_BODY_LOGGERS = (
    "keystoneauth.session",
    "keystoneauth.session.request",
    "keystoneauth.session.body",
    "openstack",
    "openstack.baremetal",
)


class _Redact(logging.Filter):
    def __init__(self, secrets: set[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            for secret in self.secrets:
                text = text.replace(secret, "***")
            record.msg, record.args = text, None
        return True


class BaremetalDriver(Driver):
    """Ironic over openstacksdk; see the module docstring for the actions."""

    name = "baremetal"

    def __init__(
        self,
        cloud: str | None = None,
        endpoint: str | None = None,
        poll_interval: float = 0.5,
        timeouts: Mapping[str, float] | None = None,
        deploy_kernel: str | None = None,
        deploy_ramdisk: str | None = None,
        image: str | None = None,
        connect: Callable[[], Any] | None = None,
    ) -> None:
        self.cloud = cloud or os.environ.get("OS_CLOUD")
        self.endpoint = endpoint or os.environ.get("LIFECYCLE_IRONIC_URL")
        self.poll_interval = poll_interval
        self.timeouts = {**TIMEOUTS, **(timeouts or {})}
        self.deploy_kernel = deploy_kernel
        self.deploy_ramdisk = deploy_ramdisk
        self.image = image
        self._conns = ThreadConnections(
            connect or (lambda: openstack_connect(self.cloud, self.endpoint, "baremetal"))
        )
        self._redact = _Redact(set())
        for name in _BODY_LOGGERS:
            logging.getLogger(name).addFilter(self._redact)

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def api(self) -> Any:
        """The baremetal proxy of this thread's connection (one per engine worker thread)."""
        return self._conns.get().baremetal

    def close(self) -> None:
        self._conns.close()
        for name in _BODY_LOGGERS:
            logging.getLogger(name).removeFilter(self._redact)

    # --- the Driver interface ---------------------------------------------------------------

    def run(self, step: Step, ctx: StepContext) -> StepResult:
        verb = _VERBS.get(step.verb)
        if verb is None:
            raise DriverError(f"{step.id}: baremetal has no verb {step.verb!r}")
        name = _node_name(step)
        try:
            output = verb(self, name, step, ctx)
        except TransitionFailed as exc:
            return self._failed(name, str(exc), ctx)
        except DriverError as exc:
            return self._failed(name, exc.message, ctx)
        except Exception as exc:  # openstacksdk raises many kinds; report them, do not crash
            detail = f"{type(exc).__name__}: {exc}"
            return self._failed(name, f"{name}: {step.verb} failed: {detail}", ctx)
        return StepResult(ok=True, output=output, hosts={name: {"status": "ok", **output}})

    def probe(self, step: Step, ctx: StepContext) -> bool | None:
        node = self.api.find_node(_node_name(step), ignore_missing=True)
        state = node.provision_state if node is not None else None
        if step.verb == "enroll":
            return state in AFTER_ENROLL
        if step.verb == "inspect":
            return state in AFTER_INSPECT and self._has_inventory(node)
        if step.verb == "match_profile":
            return node is not None and capabilities(node).get("profile") == step.param("profile")
        if step.verb == "provide":
            return state in AFTER_PROVIDE
        if step.verb == "deploy":
            return state == "active"
        if step.verb == "undeploy":
            return state == "available"
        return None

    def _failed(self, name: str, message: str, ctx: StepContext) -> StepResult:
        message = _redact(message, ctx)
        log.warning("%s", message)
        return StepResult(
            ok=False, error=message, hosts={name: {"status": "failed", "detail": message}}
        )

    # --- waiting ----------------------------------------------------------------------------

    def wait_for(self, name: str, target: str, timeout: float, transition: str) -> Any:
        """Poll the node until it reaches `target`; TransitionFailed with last_error otherwise."""

        def failed(node: Any) -> bool:
            state, error = node.provision_state, node.last_error
            if state == target:
                return False
            if state.endswith("failed") or state == "error":
                return True
            # a failed manage falls back to enroll with last_error and no target
            return bool(error) and not node.target_provision_state and state != target

        def not_there(node: Any) -> bool:
            return node.provision_state != target and not failed(node)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(not_there),
            # quick first polls, then back off: Ironic's API shares a process with its conductor,
            # so many tight pollers would slow the very transitions they wait for
            wait=tenacity.wait_exponential(
                multiplier=self.poll_interval, min=self.poll_interval, max=2.0
            ),
            stop=tenacity.stop_after_delay(timeout),
            retry_error_callback=lambda rs: rs.outcome.result() if rs.outcome else None,
        )
        node = retrying(self.api.get_node, name)
        if node is not None and node.provision_state != target and not node.last_error:
            node = self.api.get_node(name)  # last_error may land just after the state
        if node is None or node.provision_state != target:
            state = node.provision_state if node is not None else "unknown"
            why = (node.last_error if node is not None else None) or f"still {state}"
            late = "" if node is not None and failed(node) else f" within {timeout:.0f}s"
            raise TransitionFailed(f"{name}: {transition} did not reach {target}{late}: {why}")
        return node

    def _move(self, name: str, verb: str, target: str, timeout: float, **extra: Any) -> Any:
        self.api.set_node_provision_state(name, verb, **extra)
        return self.wait_for(name, target, timeout, verb)

    def _settled(self, name: str) -> Any:
        """The node once any transition in flight (e.g. from a run that crashed) has ended."""
        node = self.api.find_node(name, ignore_missing=True)
        if node is not None and node.provision_state in IN_FLIGHT:
            target, key = IN_FLIGHT[node.provision_state]
            try:
                node = self.wait_for(name, target, self.timeouts[key], "transition in flight")
            except TransitionFailed:
                node = self.api.get_node(name)  # a failure state: the verb decides what to do
        return node

    def _has_inventory(self, node: Any) -> bool:
        try:
            return bool(self.api.get_node_inventory(node.id))
        except Exception:  # 404 when never inspected
            return False

    def inventory(self, name: str) -> dict[str, Any]:
        """The node's inspection inventory (GET /v1/nodes/{id}/inventory)."""
        data: dict[str, Any] = self.api.get_node_inventory(name)
        return data

    # --- verbs ------------------------------------------------------------------------------

    def enroll(self, name: str, step: Step, ctx: StepContext) -> dict[str, Any]:
        info = _driver_info(step, ctx)
        self._redact.secrets.update(v for k, v in info.items() if k.endswith("password"))
        node = self._settled(name)
        if node is None:
            node = self.api.create_node(
                name=name, driver=step.param("driver"), driver_info=info,
                properties=_properties(step),
                resource_class=str(step.param("resource_class") or "baremetal"),
                **_interfaces(step), **_node_fields(step),
            )  # fmt: skip
        elif node.provision_state == "enroll":
            node = self.api.update_node(node, driver_info={**(node.driver_info or {}), **info})
        self._ensure_ports(node, step)
        if node.provision_state == "enroll":
            node = self._move(name, "manage", "manageable", self.timeouts["manageable"])
        return {"uuid": node.id, "provision_state": node.provision_state}

    def _ensure_ports(self, node: Any, step: Step) -> None:
        """A port per MAC; a port the nodes file cabled (`ports`: physical_network,
        local_link_connection) is created with that too, as TripleO's importer does."""
        have = {p.address for p in self.api.ports(node_uuid=node.id)}
        cabled = {p["address"]: p for p in map(json.loads, _strings(step.param("ports")))}
        for mac in _strings(step.param("macs")):
            if mac not in have:
                extra = {k: v for k, v in cabled.get(mac, {}).items() if k != "address"}
                self.api.create_port(node_uuid=node.id, address=mac, **extra)

    def inspect(self, name: str, step: Step, ctx: StepContext) -> dict[str, Any]:
        node = self._settled(name)
        settled = node.provision_state in AFTER_INSPECT - {"manageable"}
        if settled and self._has_inventory(node):
            return self._inspected(name, ctx, skipped=True)
        if node.provision_state == "inspect failed":
            self._move(name, "manage", "manageable", self.timeouts["manageable"])
        self._move(name, "inspect", "manageable", self.timeouts["inspect"])
        return self._inspected(name, ctx, skipped=False)

    def _inspected(self, name: str, ctx: StepContext, skipped: bool) -> dict[str, Any]:
        inventory = self.inventory(name)
        if ctx.artifacts_dir is not None:
            import json

            path = Path(ctx.artifacts_dir) / f"inventory-{name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(inventory, indent=1, sort_keys=True))
        facts = facts_from_inventory(inventory).summary()
        return {"facts": facts, "skipped": skipped}

    def match_profile(self, name: str, step: Step, ctx: StepContext) -> dict[str, Any]:
        wanted = str(step.param("profile"))
        profiles = profiles_from_json(str(step.param("profiles")))
        verdict = match_node(name, facts_from_inventory(self.inventory(name)), profiles)
        if wanted not in verdict.matching:
            why = " | ".join(verdict.explain())
            raise DriverError(f"{name}: hardware does not fit profile {wanted}: {why}")
        node = self.api.get_node(name)
        caps = with_capability(node.properties or {}, "profile", wanted)
        if caps != (node.properties or {}).get("capabilities"):
            self.api.patch_node(
                node, [{"op": "add", "path": "/properties/capabilities", "value": caps}]
            )
        if trait_for(wanted) not in (node.traits or []):
            self.api.add_node_trait(node, trait_for(wanted))
        return {"profile": wanted, "explanation": verdict.explain(), "matching": verdict.matching}

    def provide(self, name: str, step: Step, ctx: StepContext) -> dict[str, Any]:
        node = self._settled(name)
        if node.provision_state in AFTER_PROVIDE:
            return {"provision_state": node.provision_state, "skipped": True}
        node = self._move(name, "provide", "available", self.timeouts["available"])
        return {"provision_state": node.provision_state, "skipped": False}

    def deploy(self, name: str, step: Step, ctx: StepContext) -> dict[str, Any]:
        node = self._settled(name)
        if node.provision_state == "active":
            return {"provision_state": "active", "skipped": True}
        image = step.param("image") or self.image
        if not image:
            raise DriverError(f"{name}: deploy needs an image (step param or driver option)")
        self._prepare_deploy(node, str(step.param("interface") or "ramdisk"), str(image))
        node = self._move(name, "active", "active", self.timeouts["active"])
        return {"provision_state": node.provision_state, "skipped": False}

    def _prepare_deploy(self, node: Any, interface: str, image: str) -> None:
        patch = [{"op": "add", "path": "/deploy_interface", "value": interface}]
        key = "boot_iso" if interface == "ramdisk" else "image_source"
        patch.append({"op": "add", "path": f"/instance_info/{key}", "value": image})
        for field, value in (
            ("deploy_kernel", self.deploy_kernel),
            ("deploy_ramdisk", self.deploy_ramdisk),
        ):
            if value:
                patch.append({"op": "add", "path": f"/driver_info/{field}", "value": value})
        self.api.patch_node(node, patch)

    def undeploy(self, name: str, step: Step, ctx: StepContext) -> dict[str, Any]:
        node = self._settled(name)
        if node.provision_state == "available":
            return {"provision_state": "available", "skipped": True}
        node = self._move(name, "deleted", "available", self.timeouts["available"])
        return {"provision_state": node.provision_state, "skipped": False}


_VERBS: dict[str, Callable[[BaremetalDriver, str, Step, StepContext], dict[str, Any]]] = {
    "enroll": BaremetalDriver.enroll,
    "inspect": BaremetalDriver.inspect,
    "match_profile": BaremetalDriver.match_profile,
    "provide": BaremetalDriver.provide,
    "deploy": BaremetalDriver.deploy,
    "undeploy": BaremetalDriver.undeploy,
}


def _node_name(step: Step) -> str:
    if len(step.nodes) != 1:
        raise DriverError(f"{step.id}: baremetal steps act on exactly one node")
    return step.nodes[0]


def _driver_info(step: Step, ctx: StepContext) -> dict[str, str]:
    """Ironic driver_info for the step's BMC; the login comes from the run's secrets."""
    driver = str(step.param("driver") or "")
    credentials = str(step.param("credentials") or "")
    login = ctx.secrets.get(credentials) if credentials else None
    if driver in ("fake-hardware", "manual-management"):
        return {}
    if not login or not login.get("password"):
        raise DriverError(f"{step.nodes[0]}: no BMC login {credentials!r} in the secrets")
    prefix = "redfish" if driver in ("redfish", "idrac") else "ipmi" if driver == "ipmi" else driver
    info = {
        f"{prefix}_address": str(step.param("bmc_address") or ""),
        f"{prefix}_username": str(login.get("username") or ""),
        f"{prefix}_password": str(login["password"]),
    }
    if prefix == "redfish" and step.param("system_id"):
        info["redfish_system_id"] = str(step.param("system_id"))
    # the nodes file's own driver_info (redfish_verify_ca, ipmi_port, deploy_kernel...); never
    # a login: those come from the secrets above and win
    return {**_pairs(step.param("driver_info")), **info}


def _interfaces(step: Step) -> dict[str, str]:
    """Ironic interfaces: ours for Redfish (virtual media), then what the nodes file says."""
    ours = {}
    if step.param("driver") == "redfish":
        ours = {"inspect_interface": "redfish", "boot_interface": "redfish-virtual-media"}
    return {**ours, **_pairs(step.param("interfaces"))}


def _node_fields(step: Step) -> dict[str, Any]:
    """The node's UUID and conductor group, where the nodes file gives them."""
    fields: dict[str, Any] = {}
    if step.param("uuid"):
        fields["id"] = str(step.param("uuid"))  # openstacksdk's Node.id is Ironic's uuid
    if step.param("conductor_group"):
        fields["conductor_group"] = str(step.param("conductor_group"))
    return fields


def _properties(step: Step) -> dict[str, Any]:
    """Ironic properties; `root_device` hints are a mapping (JSON in the plan)."""
    found: dict[str, Any] = _pairs(step.param("properties"))
    if "root_device" in found:
        found["root_device"] = json.loads(found["root_device"])
    return found


def _pairs(value: object) -> dict[str, str]:
    """A plan's "key=value" strings as a mapping."""
    pairs = (p.split("=", 1) for p in _strings(value) if "=" in p)
    return {k: v for k, v in pairs}


def _strings(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, tuple | list) else ()


def _redact(text: str, ctx: StepContext) -> str:
    for _, login in ctx.secrets.items():  # a plain mapping or a formats.secrets.Secrets
        for value in login.values():
            if value and len(value) >= 4 and value in text:
                text = text.replace(value, "***")
    return text
