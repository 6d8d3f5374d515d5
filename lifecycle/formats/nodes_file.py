"""New servers to enroll: TripleO's instackenv.json, or the same fields as a YAML list.

```json
{"nodes": [{"name": "cmp-ssd-2", "pm_type": "redfish", "pm_addr": "127.0.0.1:8000",
            "pm_user": "admin", "pm_password": "...", "pm_system_id": "/redfish/v1/Systems/x",
            "mac": ["52:54:00:aa:bb:01"], "capabilities": "profile:compute-ssd,boot_option:local",
            "cpu": 8, "memory": 16384, "disk": 100, "arch": "x86_64"}]}
```

The YAML form may also give `role`, `failure_domain` and `address` per node. BMC passwords go into
the returned Secrets (keyed by node name), never into the NewNode.

Every key TripleO's importer (tripleo-common 18, `tripleo_common.utils.nodes`:
`register_ironic_node`, `validate_nodes`) accepts is accepted here, and used as it uses it where
it means something to Ironic: `uuid` (the node's UUID), `profile` (the `profile:` capability,
over the one in `capabilities`), the `*_interface` fields (boot, deploy, ... interfaces),
`resource_class`, `conductor_group`, `kernel_id`/`ramdisk_id` (deploy and rescue images),
driver keys with the driver's prefix (`redfish_verify_ca`, `ipmi_cipher_suite`: driver_info), and
per port `physical_network` and `local_link_connection`. What Ironic gets nothing from here
(`platform`, `root_device`, driver keys that hold secrets) is ignored with a warning that says
so (`NewNode.warnings`); `_comment` is dropped as TripleO drops it. Any other key is an error.
"""

from __future__ import annotations

import json
import re
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.formats.secrets import Secrets, check_private
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
# driver_info key prefixes per Ironic hardware type, as tripleo-common's DRIVER_INFO passes them
_PREFIXES = {
    "redfish": ("redfish",),
    "ipmi": ("ipmi",),
    "idrac": ("drac", "redfish"),
    "ilo": ("ilo",),
    "irmc": ("irmc",),
    "xclarity": ("xclarity",),
    "staging-ovirt": ("ovirt",),
    "manual-management": ("fake",),
    "fake-hardware": ("fake",),
}
# tripleo-common's _KNOWN_INTERFACE_FIELDS: set on the Ironic node as given
INTERFACES = tuple(
    f"{kind}_interface"
    for kind in (
        "boot", "console", "deploy", "inspect", "management", "network", "power", "raid",
        "rescue", "storage", "vendor",
    )
)  # fmt: skip
_KEYS = (
    "name", "pm_type", "pm_addr", "pm_user", "pm_password", "pm_port", "pm_system_id", "mac",
    "ports", "capabilities", "cpu", "memory", "disk", "arch", "root_device", "resource_class",
    "kernel_id", "ramdisk_id", "platform", "role", "failure_domain", "address",
    "uuid", "profile", "conductor_group", "_comment", *INTERFACES,
)  # fmt: skip
_OURS = ("role", "failure_domain", "address")  # our YAML form's additions to instackenv
_PROPERTIES = (("cpu", "cpu"), ("memory", "memory_mb"), ("disk", "local_gb"))
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_SECRET = re.compile(r"password|secret|token|_key$|passphrase", re.IGNORECASE)
# Ironic's root device hints (ironic/common/utils.py, parse_root_device_hints)
_HINTS = (
    "size", "model", "vendor", "serial", "wwn", "wwn_with_extension", "wwn_vendor_extension",
    "name", "rotational", "hctl", "by_path",
)  # fmt: skip
# Ironic's port.local_link_connection keys (ironic/api/controllers/v1/port.py)
_LINK_KEYS = ("switch_id", "port_id", "switch_info", "hostname")
_IGNORED = {
    "platform": "TripleO records it in the node's extra (tripleo_platform); Ironic does not use it",
}
# drivers whose TripleO handler maps pm_port to `<prefix>_port` (PrefixedDriverInfo has_port)
_PORTED = {"ipmi": "ipmi", "idrac": "drac", "ilo": "ilo", "irmc": "irmc", "xclarity": "xclarity"}


@dataclass(frozen=True)
class Port:
    """A port to create on the node: its MAC and, where given, how it is cabled."""

    address: str
    physical_network: str | None = None
    local_link_connection: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> str:
        """The form a plan carries (a string: step params are scalars or lists of strings)."""
        out: dict[str, object] = {"address": self.address}
        if self.physical_network:
            out["physical_network"] = self.physical_network
        if self.local_link_connection:
            out["local_link_connection"] = dict(self.local_link_connection)
        return json.dumps(out, sort_keys=True)


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
    uuid: str | None = None
    interfaces: tuple[tuple[str, str], ...] = ()  # (boot_interface, ipxe), ...
    driver_info: tuple[tuple[str, str], ...] = ()  # beyond the BMC login and address
    ports: tuple[Port, ...] = ()  # ports with cabling facts (plain MACs stay in `macs`)
    resource_class: str | None = None
    conductor_group: str | None = None
    warnings: tuple[str, ...] = ()  # keys TripleO accepts that lifecycle ignores, and why


def load_nodes_file(path: str | Path, private: bool = True) -> tuple[tuple[NewNode, ...], Secrets]:
    """Read and check an instackenv.json or YAML nodes file: its servers and their BMC logins.

    Raises InputError (exit 2) for a malformed file, and InventoryError when the file holds BMC
    passwords and is not mode 0600 (others could read them, as with the secrets file), unless
    `private` is False (an inventory's nodes_file: its secrets are checked when they are read)."""
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
    if private and any(entry.get("password") for entry in logins.values()):
        check_private(Path(path), str(path), "BMC passwords (pm_password)")
    return tuple(node for _, node in found), secrets


def _node(reader: Reader, path: str, raw: Any, logins: dict[str, dict[str, str]]) -> NewNode | None:
    pm_type = raw.get("pm_type") if isinstance(raw, dict) else None
    driver = DRIVERS.get(pm_type, "") if isinstance(pm_type, str) else ""
    driver_keys = _driver_keys(raw, driver)
    optional = (*_KEYS, *driver_keys)
    mapping = reader.mapping(path, raw, required=("name", "pm_type"), optional=optional)
    if mapping is None:
        return None
    name = reader.string(join(path, "name"), mapping.get("name"))
    reader.choice(join(path, "pm_type"), mapping.get("pm_type"), DRIVERS)
    address = _optional_str(reader, path, mapping, "pm_addr", required=driver not in _NO_LOGIN)
    system_id = _optional_str(reader, path, mapping, "pm_system_id", required=driver == "redfish")
    warnings: list[str] = []
    info = _driver_info(reader, path, mapping, driver_keys, warnings)
    if driver and driver not in _NO_LOGIN:
        user = _optional_str(reader, path, mapping, "pm_user", required=True)
        password = _optional_str(reader, path, mapping, "pm_password", required=True)
        if name and user and password:
            logins[name] = {"username": user, "password": password}
    macs, ports = _ports(reader, path, mapping)
    caps, caps_ok = _capabilities(reader, join(path, "capabilities"), mapping.get("capabilities"))
    profile = _top_profile(reader, path, mapping, caps.get("profile"), warnings)
    if profile:
        caps["profile"] = profile
    properties = _properties(reader, path, mapping)
    if caps:  # all of them go to Ironic (boot_mode:uefi...), as TripleO's importer sends them
        properties += (("capabilities", ",".join(f"{k}:{v}" for k, v in caps.items())),)
    role = _optional_str(reader, path, mapping, "role")
    domain = _optional_str(reader, path, mapping, "failure_domain") or "default"
    node_address = None
    if "address" in mapping:
        node_address = reader.ip_address(join(path, "address"), mapping["address"])
    for key, why in _IGNORED.items():
        if key in mapping:
            _check_ignored(reader, path, key, mapping[key])
            warnings.append(_warning(reader, join(path, key), f"ignored: {why}"))
    if not (name and driver and caps_ok) or (driver not in _NO_LOGIN and not address):
        return None
    login = name if name in logins else None  # fake-hardware and manual-management need none
    bmc = BmcSpec(driver=driver, address=address or "", system_id=system_id, credentials=login)
    return NewNode(
        name, bmc, macs, profile, properties, role, domain, node_address,
        uuid=_uuid(reader, path, mapping),
        interfaces=_interfaces(reader, path, mapping),
        driver_info=info,
        ports=ports,
        resource_class=_optional_str(reader, path, mapping, "resource_class"),
        conductor_group=_optional_str(reader, path, mapping, "conductor_group"),
        warnings=tuple(warnings),
    )  # fmt: skip


def _warning(reader: Reader, path: str, message: str) -> str:
    """A warning that names the file, line and field, like a Problem does."""
    line = reader.source.line(path)
    where = f"{reader.source.file}:{line}" if line else reader.source.file
    return f"{where}: {path}: {message}"


def _driver_keys(raw: Any, driver: str) -> tuple[str, ...]:
    """The keys of `raw` that tripleo-common passes to driver_info as they are: those that start
    with the driver's prefix (`redfish_verify_ca`), as DriverInfo.convert_key does."""
    if not isinstance(raw, dict):
        return ()
    prefixes = tuple(f"{p}_" for p in _PREFIXES.get(driver, ()))
    return tuple(k for k in raw if isinstance(k, str) and prefixes and k.startswith(prefixes))


def _driver_info(
    reader: Reader, path: str, mapping: dict[str, Any], keys: tuple[str, ...], warnings: list[str]
) -> tuple[tuple[str, str], ...]:
    """driver_info beyond the login: driver-prefixed keys and the deploy/rescue images. A key
    that holds a secret stays out (plans are journaled and shown): the login is pm_user and
    pm_password, which the secrets carry."""
    out: dict[str, str] = {}
    for key in keys:
        value = mapping[key]
        if _SECRET.search(key):
            why = "a secret is not copied into plans; give the BMC login as pm_user/pm_password"
            warnings.append(_warning(reader, join(path, key), f"ignored: {why}"))
            continue
        text = _scalar(reader, join(path, key), value)
        if text is not None:
            out[key] = text
    if "pm_port" in mapping:
        port = reader.integer(join(path, "pm_port"), mapping["pm_port"], minimum=1)
        prefix = _PORTED.get(DRIVERS.get(str(mapping.get("pm_type")), ""))
        if port is not None and prefix:
            out[f"{prefix}_port"] = str(port)
        elif port is not None:
            why = "this driver takes no BMC port (the address says it)"
            warnings.append(_warning(reader, join(path, "pm_port"), f"ignored: {why}"))
    for key, targets in (("kernel_id", "kernel"), ("ramdisk_id", "ramdisk")):
        if key in mapping:
            image = reader.string(join(path, key), mapping[key])
            if image:
                out[f"deploy_{targets}"] = out[f"rescue_{targets}"] = image
    return tuple(sorted(out.items()))


def _scalar(reader: Reader, path: str, value: object) -> str | None:
    """A driver_info value as text Ironic parses (booleans as "true"/"false", as strutils does)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    reader.problem(path, "a string, number or boolean (Ironic driver_info)")
    return None


def _uuid(reader: Reader, path: str, mapping: dict[str, Any]) -> str | None:
    if "uuid" not in mapping:
        return None
    text = reader.string(join(path, "uuid"), mapping["uuid"])
    try:
        return str(uuidlib.UUID(text)) if text else None
    except ValueError:
        reader.problem(join(path, "uuid"), "a UUID like 8f4a6c3e-1a7b-4e2d-9a11-000000000021")
        return None


def _interfaces(reader: Reader, path: str, mapping: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    found = ((k, reader.string(join(path, k), mapping[k])) for k in INTERFACES if k in mapping)
    return tuple((k, v) for k, v in found if v)


def _top_profile(
    reader: Reader, path: str, mapping: dict[str, Any], caps: str | None, warnings: list[str]
) -> str | None:
    """TripleO sets `profile` over the capabilities' profile (register_ironic_node)."""
    if "profile" not in mapping:
        return caps
    profile = reader.string(join(path, "profile"), mapping["profile"])
    if profile and caps and caps != profile:
        why = f"profile {profile} replaces capabilities profile:{caps}, as TripleO does"
        warnings.append(_warning(reader, join(path, "profile"), why))
    return profile or caps


def _check_ignored(reader: Reader, path: str, key: str, value: object) -> None:
    """Even an ignored key must be what TripleO accepts."""
    if key == "platform":
        reader.string(join(path, key), value)


def _optional_str(
    reader: Reader, path: str, mapping: dict[str, Any], key: str, required: bool = False
) -> str | None:
    if key not in mapping:
        if required:
            reader.problem(join(path, key), "this key (missing)")
        return None
    return reader.string(join(path, key), mapping[key])


def _ports(
    reader: Reader, path: str, mapping: dict[str, Any]
) -> tuple[tuple[str, ...], tuple[Port, ...]]:
    """Every MAC (from `mac` and `ports`), and the ports that say how they are cabled."""
    found: list[tuple[str, object]] = []
    for i, mac in enumerate(reader.sequence(join(path, "mac"), mapping.get("mac", []))):
        found.append((join(join(path, "mac"), i), mac))
    cabled: list[tuple[str, dict[str, Any]]] = []
    for i, port in enumerate(reader.sequence(join(path, "ports"), mapping.get("ports", []))):
        port_path = join(join(path, "ports"), i)
        optional = ("physical_network", "local_link_connection")
        port_map = reader.mapping(port_path, port, ("address",), optional)
        if port_map and "address" in port_map:
            found.append((join(port_path, "address"), port_map["address"]))
            if set(port_map) & set(optional):
                cabled.append((port_path, port_map))
    macs: list[str] = []
    for mac_path, mac in found:
        text = mac.lower() if isinstance(mac, str) else ""
        if _MAC.match(text):
            macs.append(text)
        else:
            reader.problem(mac_path, "a MAC address like 52:54:00:12:34:56")
    ports = tuple(p for p in (_port(reader, at, raw) for at, raw in cabled) if p is not None)
    return tuple(macs), ports


def _port(reader: Reader, path: str, raw: dict[str, Any]) -> Port | None:
    mac = str(raw["address"]).lower()
    network = None
    if "physical_network" in raw:
        network = reader.string(join(path, "physical_network"), raw["physical_network"])
    link: dict[str, str] = {}
    if "local_link_connection" in raw:
        at = join(path, "local_link_connection")
        llc = reader.mapping(at, raw["local_link_connection"], (), _LINK_KEYS)
        for key, value in (llc or {}).items():
            text = reader.string(join(at, key), value)
            if text:
                link[key] = text
    return Port(mac, network, tuple(sorted(link.items()))) if _MAC.match(mac) else None


def _capabilities(reader: Reader, path: str, value: object) -> tuple[dict[str, str], bool]:
    """The capabilities of a "key:value,key:value" string (or a mapping), and whether they parse."""
    if value is None:
        return {}, True
    if isinstance(value, dict):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    elif isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if any(p.count(":") != 1 or p.startswith(":") or p.endswith(":") for p in parts):
            reader.problem(path, "capabilities as 'key:value,key:value'")
            return {}, False
        pairs = [(k.strip(), v.strip()) for k, v in (p.split(":") for p in parts)]
    else:
        reader.problem(path, "capabilities as 'key:value,key:value'")
        return {}, False
    return dict(pairs), True


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
    if "root_device" in mapping:  # Ironic's root device hints: a mapping, kept as JSON text
        hints = reader.mapping(join(path, "root_device"), mapping["root_device"], (), _HINTS)
        if hints:
            out.append(("root_device", json.dumps(hints, sort_keys=True)))
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


# keys tripleo-common 18's register_ironic_node uses but its validate_nodes does not list (it
# reports them as "Unknown field"): checked here instead, and left out of its copy
_TRIPLEO_UNLISTED = ("uuid", "profile")


def _as_tripleo(node: dict[str, Any]) -> dict[str, Any]:
    """A copy in the form tripleo-common 18 checks: `mac` as `ports`, our own keys left out."""
    out = {k: v for k, v in node.items() if k not in _OURS and k not in _TRIPLEO_UNLISTED}
    if "mac" in out:
        macs = out.pop("mac")
        out["ports"] = [*out.get("ports", []), *({"address": m} for m in macs)]
    return out
