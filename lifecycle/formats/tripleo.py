"""Import TripleO files: roles_data.yaml, single role files and baremetal_deployment.yaml.

Service names `OS::TripleO::Services::X` map to catalog services through the catalog's `tripleo`
lists. Host-level services in `tripleo_ignored` are dropped silently; any other unknown name is kept
in `RoleSpec.unknown_tripleo` so that `validate` can show it. TripleO files carry many keys this
importer has no use for (networks, tags, parameters); those are accepted and ignored, since they
belong to TripleO, not to us.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle.catalog import Catalog
from lifecycle.errors import ImportFormatError
from lifecycle.formats.yaml_source import Reader, join, load_source
from lifecycle.model import RoleSpec

SERVICE_PREFIX = "OS::TripleO::Services::"
MAX_COUNT = 100_000  # servers per role: far above any real cloud, low enough to list names


@dataclass(frozen=True)
class TripleoRole:
    """One imported role: the RoleSpec plus the TripleO facts the inventory may use."""

    spec: RoleSpec
    count: int | None = None
    hostname_format: str | None = None


@dataclass(frozen=True)
class DeployedInstance:
    hostname: str
    address: str | None  # the ctlplane fixed_ip, when given


@dataclass(frozen=True)
class DeploymentRole:
    """One entry of baremetal_deployment.yaml: a role, how many servers, which ones."""

    role: str
    count: int
    hostname_format: str | None
    instances: tuple[DeployedInstance, ...]


def map_services(names: list[str], catalog: Catalog) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Catalog services and unknown TripleO names for a role's ServicesDefault list."""
    services: dict[str, None] = {}
    unknown: dict[str, None] = {}
    for full in names:
        short = full.removeprefix(SERVICE_PREFIX)
        if short in catalog.tripleo_map:
            services[catalog.tripleo_map[short]] = None
        elif short not in catalog.tripleo_ignored:
            unknown[short] = None
    return tuple(services), tuple(unknown)


def load_roles_data(path: str | Path, catalog: Catalog) -> tuple[TripleoRole, ...]:
    """Every role of a roles_data.yaml (or a single role file: a list of one role)."""
    source = load_source(path, ImportFormatError)
    reader = Reader(source, ImportFormatError)
    roles: list[TripleoRole] = []
    seen: set[str] = set()
    for index, raw in enumerate(reader.sequence("", source.data)):
        role = _role(reader, f"[{index}]", raw, catalog)
        if role is None:
            continue
        if role.spec.name in seen:
            reader.problem(f"[{index}].name", f"a role name used once ({role.spec.name!r} twice)")
        seen.add(role.spec.name)
        roles.append(role)
    if not roles and not reader.problems:
        reader.problem("", "a list of TripleO roles (none found)")
    reader.raise_if_any()
    return tuple(roles)


def _role(reader: Reader, path: str, raw: Any, catalog: Catalog) -> TripleoRole | None:
    if not isinstance(raw, dict):
        reader.problem(path, "a TripleO role (a mapping with name and ServicesDefault)")
        return None
    name = reader.string(join(path, "name"), raw.get("name"))
    names: list[str] = []
    services_path = join(path, "ServicesDefault")
    for i, item in enumerate(reader.sequence(services_path, raw.get("ServicesDefault"))):
        if isinstance(item, str) and item.startswith(SERVICE_PREFIX):
            names.append(item)
        else:
            reader.problem(join(services_path, i), f"a service name {SERVICE_PREFIX}<Name>")
    count = raw.get("CountDefault")
    if count is not None:
        count = reader.integer(join(path, "CountDefault"), count, minimum=0)
    fmt = raw.get("HostnameFormatDefault")
    if fmt is not None:
        fmt = reader.string(join(path, "HostnameFormatDefault"), fmt)
    if name is None:
        return None
    services, unknown = map_services(names, catalog)
    spec = RoleSpec(name=name, services=services, unknown_tripleo=unknown)
    return TripleoRole(spec=spec, count=count, hostname_format=fmt)


def load_role_file(path: str | Path, catalog: Catalog) -> TripleoRole:
    """The one role of a TripleO role file (roles/Compute.yaml)."""
    roles = load_roles_data(path, catalog)
    if len(roles) != 1:
        raise ImportFormatError.at(
            str(path), "", f"exactly one role in a role file, found {len(roles)}", 1
        )
    return roles[0]


def load_baremetal_deployment(path: str | Path) -> tuple[DeploymentRole, ...]:
    """The roles, counts and instances of a TripleO baremetal_deployment.yaml."""
    source = load_source(path, ImportFormatError)
    reader = Reader(source, ImportFormatError)
    entries = [
        entry
        for index, raw in enumerate(reader.sequence("", source.data))
        if (entry := _deployment(reader, f"[{index}]", raw)) is not None
    ]
    reader.raise_if_any()
    return tuple(entries)


def _deployment(reader: Reader, path: str, raw: Any) -> DeploymentRole | None:
    if not isinstance(raw, dict):
        reader.problem(path, "a role entry (a mapping with name, count, instances)")
        return None
    name = reader.string(join(path, "name"), raw.get("name"))
    count = reader.integer(join(path, "count"), raw.get("count", 1), minimum=0)
    if count is not None and count > MAX_COUNT:
        reader.problem(join(path, "count"), f"at most {MAX_COUNT} servers per role, got {count}")
        count = None
    fmt = raw.get("hostname_format")
    if fmt is not None:
        fmt = reader.string(join(path, "hostname_format"), fmt)
    instances: list[DeployedInstance] = []
    instances_path = join(path, "instances")
    for i, item in enumerate(reader.sequence(instances_path, raw.get("instances", []))):
        instance = _instance(reader, join(instances_path, i), item)
        if instance is not None:
            instances.append(instance)
    if name is None or count is None:
        return None
    if len(instances) > count:
        reader.problem(join(path, "count"), f"at least {len(instances)} (the instances listed)")
    return DeploymentRole(name, count, fmt, tuple(instances))


def _instance(reader: Reader, path: str, raw: Any) -> DeployedInstance | None:
    if not isinstance(raw, dict):
        reader.problem(path, "an instance (a mapping with hostname)")
        return None
    if raw.get("provisioned", True) is False:
        return None
    key = "hostname" if "hostname" in raw or "name" not in raw else "name"
    hostname = reader.string(join(path, key), raw.get(key))
    address = None
    networks_path = join(path, "networks")
    for i, net in enumerate(reader.sequence(networks_path, raw.get("networks", []))):
        if isinstance(net, dict) and net.get("network") == "ctlplane" and "fixed_ip" in net:
            address = reader.ip_address(join(join(networks_path, i), "fixed_ip"), net["fixed_ip"])
    return DeployedInstance(hostname, address) if hostname else None


def hostnames(entry: DeploymentRole, stack: str, role_format: str | None) -> tuple[str, ...]:
    """Hostnames for every server of a deployment entry: listed instances first, then names made
    from the hostname format (TripleO's `%stackname%-<role>-%index%`) for the rest."""
    listed = [i.hostname for i in entry.instances]
    fmt = entry.hostname_format or role_format or f"%stackname%-{entry.role.lower()}-%index%"
    made: list[str] = []
    for index in range(2 * entry.count + len(listed) + 1):
        if len(listed) + len(made) >= entry.count:
            break
        name = fmt.replace("%stackname%", stack).replace("%index%", str(index))
        if name not in listed and name not in made:
            made.append(name)
    return (*listed, *made)
