"""New servers to enroll: TripleO's instackenv.json, or the same fields as a YAML list.

```json
{"nodes": [{"name": "cmp-ssd-2", "pm_type": "redfish", "pm_addr": "127.0.0.1:8000",
            "pm_user": "admin", "pm_password": "...", "pm_system_id": "/redfish/v1/Systems/x",
            "mac": ["52:54:00:aa:bb:01"], "capabilities": "profile:compute-ssd,boot_option:local",
            "cpu": 8, "memory": 16384, "disk": 100, "arch": "x86_64"}]}
```

The YAML form may also give `role`, `failure_domain` and `address` per node. BMC passwords go into
the returned Secrets (keyed by node name), never into the NewNode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.formats.secrets import Secrets
from lifecycle.formats.yaml_source import Reader, join, load_source
from lifecycle.model import BmcSpec

# pm_type -> Ironic hardware type; the pxe_* names are TripleO's legacy spellings.
DRIVERS = {
    "redfish": "redfish",
    "ipmi": "ipmi",
    "pxe_ipmitool": "ipmi",
    "idrac": "idrac",
    "pxe_drac": "idrac",
    "ilo": "ilo",
    "pxe_ilo": "ilo",
    "irmc": "irmc",
    "xclarity": "xclarity",
    "staging-ovirt": "staging-ovirt",
    "manual-management": "manual-management",
    "fake-hardware": "fake-hardware",
}
_NO_LOGIN = {"manual-management", "fake-hardware"}
_KEYS = (
    "name", "pm_type", "pm_addr", "pm_user", "pm_password", "pm_port", "pm_system_id", "mac",
    "ports", "capabilities", "cpu", "memory", "disk", "arch", "root_device", "resource_class",
    "kernel_id", "ramdisk_id", "platform", "role", "failure_domain", "address",
)  # fmt: skip
_OURS = ("role", "failure_domain", "address")  # our YAML form's additions to instackenv
_PROPERTIES = (("cpu", "cpu"), ("memory", "memory_mb"), ("disk", "local_gb"))
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


@dataclass(frozen=True)
class NewNode:
    """A server to enroll. `bmc.credentials` is the node's name, resolved in the Secrets."""

    name: str
    bmc: BmcSpec
    macs: tuple[str, ...] = ()
    profile: str | None = None
    properties: tuple[tuple[str, str], ...] = ()
    role: str | None = None
    failure_domain: str = "default"
    address: str | None = None


def load_nodes_file(path: str | Path) -> tuple[tuple[NewNode, ...], Secrets]:
    """Read and check an instackenv.json or YAML nodes file."""
    source = load_source(path)
    reader = Reader(source)
    data = source.data
    prefix = ""
    if isinstance(data, dict):
        data = (reader.mapping("", data, required=("nodes",)) or {}).get("nodes")
        prefix = "nodes"
    found: list[tuple[str, NewNode]] = []
    logins: dict[str, dict[str, str]] = {}
    for index, raw in enumerate(reader.sequence(prefix, data)):
        node = _node(reader, join(prefix, index), raw, logins)
        if node is not None:
            found.append((join(prefix, index), node))
    _check_unique(reader, found)
    reader.raise_if_any()
    secrets = Secrets(logins)
    _tripleo_validate(reader, prefix, data, secrets)
    reader.raise_if_any()
    return tuple(node for _, node in found), secrets


def _node(reader: Reader, path: str, raw: Any, logins: dict[str, dict[str, str]]) -> NewNode | None:
    mapping = reader.mapping(path, raw, required=("name", "pm_type"), optional=_KEYS)
    if mapping is None:
        return None
    name = reader.string(join(path, "name"), mapping.get("name"))
    pm_type = reader.choice(join(path, "pm_type"), mapping.get("pm_type"), DRIVERS)
    driver = DRIVERS.get(pm_type or "", "")
    address = _optional_str(reader, path, mapping, "pm_addr", required=driver not in _NO_LOGIN)
    system_id = _optional_str(reader, path, mapping, "pm_system_id", required=driver == "redfish")
    if driver and driver not in _NO_LOGIN:
        user = _optional_str(reader, path, mapping, "pm_user", required=True)
        password = _optional_str(reader, path, mapping, "pm_password", required=True)
        if name and user and password:
            logins[name] = {"username": user, "password": password}
    macs = _macs(reader, path, mapping)
    profile, caps_ok = _profile(reader, join(path, "capabilities"), mapping.get("capabilities"))
    properties = _properties(reader, path, mapping)
    role = _optional_str(reader, path, mapping, "role")
    domain = _optional_str(reader, path, mapping, "failure_domain") or "default"
    node_address = None
    if "address" in mapping:
        node_address = reader.ip_address(join(path, "address"), mapping["address"])
    if not (name and driver and caps_ok) or (driver not in _NO_LOGIN and not address):
        return None
    login = name if name in logins else None  # fake-hardware and manual-management need none
    bmc = BmcSpec(driver=driver, address=address or "", system_id=system_id, credentials=login)
    return NewNode(name, bmc, macs, profile, properties, role, domain, node_address)


def _optional_str(
    reader: Reader, path: str, mapping: dict[str, Any], key: str, required: bool = False
) -> str | None:
    if key not in mapping:
        if required:
            reader.problem(join(path, key), "this key (missing)")
        return None
    return reader.string(join(path, key), mapping[key])


def _macs(reader: Reader, path: str, mapping: dict[str, Any]) -> tuple[str, ...]:
    found: list[tuple[str, object]] = []
    for i, mac in enumerate(reader.sequence(join(path, "mac"), mapping.get("mac", []))):
        found.append((join(join(path, "mac"), i), mac))
    for i, port in enumerate(reader.sequence(join(path, "ports"), mapping.get("ports", []))):
        port_path = join(join(path, "ports"), i)
        port_map = reader.mapping(port_path, port, ("address",), ("physical_network",))
        if port_map and "address" in port_map:
            found.append((join(port_path, "address"), port_map["address"]))
    macs: list[str] = []
    for mac_path, mac in found:
        text = mac.lower() if isinstance(mac, str) else ""
        if _MAC.match(text):
            macs.append(text)
        else:
            reader.problem(mac_path, "a MAC address like 52:54:00:12:34:56")
    return tuple(macs)


def _profile(reader: Reader, path: str, value: object) -> tuple[str | None, bool]:
    """The `profile:X` capability of a "key:value,key:value" string (or a mapping)."""
    if value is None:
        return None, True
    if isinstance(value, dict):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    elif isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if any(p.count(":") != 1 or p.startswith(":") or p.endswith(":") for p in parts):
            reader.problem(path, "capabilities as 'key:value,key:value'")
            return None, False
        pairs = [(k, v) for k, v in (p.split(":") for p in parts)]
    else:
        reader.problem(path, "capabilities as 'key:value,key:value'")
        return None, False
    return dict(pairs).get("profile"), True


def _properties(reader: Reader, path: str, mapping: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for key, name in _PROPERTIES:
        if key not in mapping:
            continue
        value = mapping[key]
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        number = reader.integer(join(path, key), value, minimum=1)
        if number is not None:
            out.append((name, str(number)))
    if "arch" in mapping:
        arch = reader.string(join(path, "arch"), mapping["arch"])
        if arch:
            out.append(("cpu_arch", arch))
    return tuple(out)


def _check_unique(reader: Reader, found: list[tuple[str, NewNode]]) -> None:
    names: set[str] = set()
    macs: set[str] = set()
    for path, node in found:
        if node.name in names:
            reader.problem(join(path, "name"), f"a unique name ({node.name!r} twice)")
        names.add(node.name)
        for mac in node.macs:
            if mac in macs:
                reader.problem(join(path, "mac"), f"a unique MAC ({mac} twice)")
            macs.add(mac)


def _tripleo_validate(reader: Reader, prefix: str, nodes: list[Any], secrets: Secrets) -> None:
    """TripleO's own instackenv rules, when tripleo-common (extra `tripleo`) is installed."""
    try:
        from tripleo_common.utils.nodes import validate_nodes
    except ImportError:
        return
    try:
        validate_nodes([_as_tripleo(node) for node in nodes])
    except Exception as exc:  # tripleo-common raises its InvalidNode, and plain errors on odd input
        for line in secrets.redact(str(exc)).splitlines():
            match = re.search(r"node #(\d+): (.*)", line)
            path = join(prefix, int(match.group(1))) if match else prefix
            reader.problem(path, f"a node TripleO accepts ({match.group(2) if match else line})")


def _as_tripleo(node: dict[str, Any]) -> dict[str, Any]:
    """A copy in the form tripleo-common 18 checks: `mac` as `ports`, our own keys left out."""
    out = {k: v for k, v in node.items() if k not in _OURS}
    if "mac" in out:
        macs = out.pop("mac")
        out["ports"] = [*out.get("ports", []), *({"address": m} for m in macs)]
    return out
