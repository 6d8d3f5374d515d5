"""The operator's cluster.yaml (DESIGN.md, "The cluster inventory"), loaded and fully checked.

Every mistake becomes a Problem naming the file, the line, the field path and what was expected;
all the problems of one file are reported together. Paths inside cluster.yaml (roles_data,
role_file, nodes_file, baremetal_deployment, credentials) are relative to its directory.

`driver: sim|testbed|cloud` (optional) says how `lifecycle run` and `lifecycle export mistral`
reach the cluster when `--driver` is not given; with neither they refuse to guess (exit 2).

Besides the form of DESIGN.md, roles and nodes may be imported:

```yaml
roles:
  roles_data: tht/roles_data.yaml       # every TripleO role of the file
  Compute: {aggregate: hdd}             # ... with our own keys laid over an imported role
  ComputeSSD: {role_file: tht/roles/Compute.yaml, aggregate: ssd, profile: compute-ssd}
nodes: [...]                            # any of these three, together or alone
nodes_file: instackenv.json             # role from `role:` or from the capabilities profile
baremetal_deployment: tht/baremetal_deployment.yaml   # hostnames, ctlplane fixed_ip
```
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from lifecycle.catalog import Catalog, load_catalog
from lifecycle.errors import InputError, UnsupportedUpgrade
from lifecycle.formats.inventory_policies import read_policies
from lifecycle.formats.nodes_file import DRIVERS, load_nodes_file
from lifecycle.formats.tripleo import (
    TripleoRole,
    hostnames,
    load_baremetal_deployment,
    load_role_file,
    load_roles_data,
)
from lifecycle.formats.yaml_source import Reader, Source, existing_file, join, load_source
from lifecycle.model import BmcSpec, Cluster, NodeSpec, Policies, RoleSpec
from lifecycle.model.release import ReleaseTrain

T = TypeVar("T")
TOP_KEYS = (
    "cluster", "release", "ceph_release", "roles", "nodes", "nodes_file",
    "baremetal_deployment", "policies", "credentials", "driver",
)  # fmt: skip
# `driver:` names a mode of lifecycle.execution.routing.MODES (a test keeps the two equal)
DRIVER_MODES = ("sim", "testbed", "cloud")
ROLE_KEYS = ("services", "aggregate", "profile", "role_file")
NODE_KEYS = ("name", "role", "failure_domain", "address", "bmc")
BMC_KEYS = ("driver", "address", "system_id", "credentials")
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$")


def inventory_file(path: str | Path) -> Path:
    """cluster.yaml itself, given the file or the directory holding it."""
    path = Path(path)
    return path / "cluster.yaml" if path.is_dir() else path


def load_inventory(path: str | Path, catalog: Catalog | None = None) -> Cluster:
    """Load and check cluster.yaml; raises InventoryError (or ImportFormatError) on bad input."""
    file = inventory_file(path)
    source = load_source(file)
    return _Loader(source, file.parent, catalog or load_catalog()).load()


def inventory_warnings(cluster: Cluster) -> list[str]:
    """Things that are allowed but worth an operator's look (unknown TripleO services...)."""
    warnings = []
    for role in cluster.roles:
        if role.unknown_tripleo:
            names = ", ".join(role.unknown_tripleo)
            warnings.append(f"role {role.name}: TripleO services not in the catalog: {names}")
    used = {node.role for node in cluster.nodes}
    warnings += [f"role {r.name} has no nodes" for r in cluster.roles if r.name not in used]
    warnings += [
        f"role {r.name} has aggregate {r.aggregate} but runs no nova-compute"
        for r in cluster.roles
        if r.aggregate and "nova-compute" not in r.services
    ]
    osds = [cluster.node(name) for name in cluster.members.get("ceph-osd", ())]
    domains = {node.failure_domain for node in osds}
    if len(osds) > 1 and len(domains) == 1:
        warnings.append(
            f"all {len(osds)} ceph-osd hosts share failure domain {domains.pop()!r}: give them "
            "failure_domain values (racks) so that Ceph keeps copies apart"
        )
    return warnings


class _Loader:
    def __init__(self, source: Source, base: Path, catalog: Catalog) -> None:
        self.source = source
        self.base = base
        self.catalog = catalog
        self.reader = Reader(source)
        self.imported: dict[str, TripleoRole] = {}

    def load(self) -> Cluster:
        r = self.reader
        top = r.mapping("", self.source.data, ("cluster", "release", "roles"), TOP_KEYS)
        if top is None:
            r.raise_if_any()
            top = {}
        name = r.string("cluster", top["cluster"]) if "cluster" in top else None
        if name and not _NAME.match(name):
            r.problem("cluster", "a name of letters, digits, '.', '_' and '-'")
        release = self._release("release", top.get("release"), self.catalog.openstack)
        ceph = None
        if top.get("ceph_release") is not None:
            ceph = self._release("ceph_release", top["ceph_release"], self.catalog.ceph)
        roles = self._roles(top.get("roles")) if "roles" in top else ()
        nodes = self._nodes(top, {role.name: role for role in roles}, name or "overcloud")
        policies = read_policies(r, top.get("policies"), {x.aggregate for x in roles} - {None})
        credentials = self._credentials(top.get("credentials"))
        driver = r.choice("driver", top["driver"], DRIVER_MODES) if "driver" in top else None
        r.raise_if_any()
        assert name is not None and release is not None  # a problem was raised otherwise
        return Cluster(
            name=name,
            release=release,
            ceph_release=ceph,
            roles=roles,
            nodes=nodes,
            policies=policies or Policies(),
            credentials=credentials,
            source=str(Path(self.source.file).resolve()),
            driver=driver,
        )

    # --- scalars -----------------------------------------------------------------------------

    def _release(self, path: str, value: object, train: ReleaseTrain) -> str | None:
        if isinstance(value, float | int) and not isinstance(value, bool):
            value = str(value)  # `release: 2023.1` unquoted is a float to YAML
        text = self.reader.string(path, value)
        if text is None:
            return None
        try:
            return train.get(text).name
        except UnsupportedUpgrade:
            known = ", ".join(train.names())
            close = train.closest(text)
            hint = f"; did you mean {close!r}?" if close else ""
            self.reader.problem(
                path, f"a known {train.product} release ({known}), got {text!r}{hint}"
            )
            return None

    def _credentials(self, value: object) -> str | None:
        if value is None:
            return None
        text = self.reader.string("credentials", value)
        if text and not existing_file(self.base / text):
            self.reader.problem("credentials", f"an existing secrets file ({text} not found)")
        return text

    def _import(self, path: str, load: Callable[[Path], T], value: object) -> T | None:
        """Run an importer on a file named at `path`; its problems join ours."""
        text = self.reader.string(path, value)
        if text is None:
            return None
        file = self.base / text
        if not existing_file(file):
            self.reader.problem(path, f"an existing file ({text} not found)")
            return None
        try:
            return load(file)
        except InputError as exc:
            self.reader.problems.extend(exc.problems)
            return None

    # --- roles -------------------------------------------------------------------------------

    def _roles(self, value: object) -> tuple[RoleSpec, ...]:
        roles: dict[str, RoleSpec] = {}
        raw = self.reader.mapping("roles", value, optional=value if isinstance(value, dict) else ())
        if not raw:
            if raw is not None:
                self.reader.problem("roles", "at least one role")
            return ()
        if "roles_data" in raw:
            imported = self._import(
                "roles.roles_data", lambda f: load_roles_data(f, self.catalog), raw["roles_data"]
            )
            for tripleo_role in imported or ():
                self.imported[tripleo_role.spec.name] = tripleo_role
                roles[tripleo_role.spec.name] = tripleo_role.spec
        for name, spec in raw.items():
            if name == "roles_data" or not isinstance(name, str):
                continue
            role = self._role(join("roles", name), name, spec, roles.get(name))
            if role is not None:
                roles[name] = role
        return tuple(roles.values())

    def _role(self, path: str, name: str, value: object, base: RoleSpec | None) -> RoleSpec | None:
        r = self.reader
        if not _NAME.match(name):
            r.problem(path, "a role name of letters, digits, '.', '_' and '-'")
        raw = r.mapping(path, value, optional=ROLE_KEYS)
        if raw is None:
            return None
        services: tuple[str, ...] | None = None
        unknown: tuple[str, ...] = base.unknown_tripleo if base else ()
        if "services" in raw and "role_file" in raw:
            r.problem(path, "either services or role_file, not both")
        elif "services" in raw:
            services = self._services(join(path, "services"), raw["services"])
        elif "role_file" in raw:
            load = lambda f: load_role_file(f, self.catalog)  # noqa: E731
            imported = self._import(join(path, "role_file"), load, raw["role_file"])
            if imported is not None:
                self.imported[name] = imported
                services, unknown = imported.spec.services, imported.spec.unknown_tripleo
        elif base is not None:
            services = base.services
        else:
            r.problem(path, "services (a list) or role_file (a TripleO role file)")
        aggregate = self._optional_string(path, raw, "aggregate")
        profile = self._optional_string(path, raw, "profile")
        if services is None:
            return None
        return RoleSpec(name, services, aggregate, profile, unknown)

    def _services(self, path: str, value: object) -> tuple[str, ...]:
        services: list[str] = []
        for index, item in enumerate(self.reader.sequence(path, value)):
            sub = join(path, index)
            text = self.reader.string(sub, item)
            if text is None:
                continue
            if text not in self.catalog.services:
                self.reader.problem(sub, "a service of the catalog" + _hint(text, self.catalog))
            elif text in services:
                self.reader.problem(sub, f"each service once ({text!r} twice)")
            else:
                services.append(text)
        return tuple(services)

    def _optional_string(self, path: str, raw: dict[str, Any], key: str) -> str | None:
        if raw.get(key) is None:
            return None
        return self.reader.string(join(path, key), raw[key])

    # --- nodes -------------------------------------------------------------------------------

    def _nodes(
        self, top: dict[str, Any], roles: dict[str, RoleSpec], stack: str
    ) -> tuple[NodeSpec, ...]:
        found: list[tuple[str, NodeSpec]] = []
        if "nodes" in top:
            for index, raw in enumerate(self.reader.sequence("nodes", top["nodes"])):
                node = self._node(f"nodes[{index}]", raw, roles)
                if node is not None:
                    found.append((f"nodes[{index}]", node))
        if "nodes_file" in top:
            found += self._nodes_file(top["nodes_file"], roles)
        if "baremetal_deployment" in top:
            found += self._deployed(top["baremetal_deployment"], roles, stack)
        if not any(k in top for k in ("nodes", "nodes_file", "baremetal_deployment")):
            self.reader.problem("nodes", "nodes (a list), nodes_file or baremetal_deployment")
        self._check_unique(found)
        if not found and not self.reader.problems:
            self.reader.problem("nodes", "at least one node")
        return tuple(node for _, node in found)

    def _node(self, path: str, value: object, roles: dict[str, RoleSpec]) -> NodeSpec | None:
        fast = _plain_node(value, roles)
        if fast is not None:
            if fast.bmc is None and isinstance(value, dict) and value.get("bmc") is not None:
                return replace(fast, bmc=self._bmc(join(path, "bmc"), value["bmc"]))
            return fast
        return self._checked_node(path, value, roles)

    def _checked_node(
        self, path: str, value: object, roles: dict[str, RoleSpec]
    ) -> NodeSpec | None:
        r = self.reader
        raw = r.mapping(path, value, ("name", "role"), NODE_KEYS)
        if raw is None:
            return None
        name = r.string(join(path, "name"), raw["name"]) if "name" in raw else None
        if name and not _NAME.match(name):
            r.problem(join(path, "name"), "a host name of letters, digits, '.', '_' and '-'")
        role = self._role_ref(join(path, "role"), raw.get("role"), roles) if "role" in raw else None
        domain = self._optional_string(path, raw, "failure_domain") or "default"
        address = None
        if raw.get("address") is not None:
            address = r.ip_address(join(path, "address"), raw["address"])
        bmc = self._bmc(join(path, "bmc"), raw["bmc"]) if raw.get("bmc") is not None else None
        if not (name and role):
            return None
        return NodeSpec(name, role, address, domain, bmc)

    def _role_ref(self, path: str, value: object, roles: dict[str, RoleSpec]) -> str | None:
        text = self.reader.string(path, value)
        if text is not None and text not in roles:
            known = ", ".join(roles) or "none defined"
            self.reader.problem(path, f"a role defined under roles ({known}), got {text!r}")
            return None
        return text

    def _bmc(self, path: str, value: object) -> BmcSpec | None:
        r = self.reader
        raw = r.mapping(path, value, ("driver", "address"), BMC_KEYS)
        if raw is None:
            return None
        driver = r.choice(join(path, "driver"), raw.get("driver"), sorted(set(DRIVERS.values())))
        address = r.string(join(path, "address"), raw["address"]) if "address" in raw else None
        system_id = self._optional_string(path, raw, "system_id")
        credentials = self._optional_string(path, raw, "credentials")
        if driver is None or address is None:
            return None
        return BmcSpec(driver, address, system_id, credentials)

    def _nodes_file(self, value: object, roles: dict[str, RoleSpec]) -> list[tuple[str, NodeSpec]]:
        loaded = self._import("nodes_file", load_nodes_file, value)
        out: list[tuple[str, NodeSpec]] = []
        by_profile = {r.profile: r.name for r in roles.values() if r.profile}
        for new in loaded[0] if loaded else ():
            role = new.role or by_profile.get(new.profile or "")
            if role is None or role not in roles:
                self.reader.problem(
                    "nodes_file",
                    f"a role for node {new.name!r}: a role defined under roles, or a capabilities "
                    "profile matching a role's profile",
                )
                continue
            spec = NodeSpec(new.name, role, new.address, new.failure_domain, new.bmc)
            out.append((f"nodes_file({new.name})", spec))
        return out

    def _deployed(
        self, value: object, roles: dict[str, RoleSpec], stack: str
    ) -> list[tuple[str, NodeSpec]]:
        entries = self._import("baremetal_deployment", load_baremetal_deployment, value)
        out: list[tuple[str, NodeSpec]] = []
        for entry in entries or ():
            if entry.role not in roles:
                known = ", ".join(roles) or "none defined"
                self.reader.problem(
                    "baremetal_deployment",
                    f"roles defined under roles ({known}), got {entry.role!r}",
                )
                continue
            imported = self.imported.get(entry.role)
            names = hostnames(entry, stack, imported.hostname_format if imported else None)
            if len(names) < entry.count:
                self.reader.problem("baremetal_deployment", f"a hostname_format with %index% "
                                    f"for role {entry.role}")  # fmt: skip
            addresses = {i.hostname: i.address for i in entry.instances}
            for host in names:
                out.append(
                    (
                        f"baremetal_deployment({host})",
                        NodeSpec(host, entry.role, addresses.get(host)),
                    )
                )
        return out

    def _check_unique(self, found: list[tuple[str, NodeSpec]]) -> None:
        names: dict[str, str] = {}
        addresses: dict[str, str] = {}
        for path, node in found:
            if node.name in names:
                self.reader.problem(
                    join(path, "name"),
                    f"a unique node name ({node.name!r} is also {names[node.name]})",
                )
            names.setdefault(node.name, path)
            if node.address and node.address in addresses:
                self.reader.problem(
                    join(path, "address"),
                    f"a unique address ({node.address} is also {addresses[node.address]})",
                )
            if node.address:
                addresses.setdefault(node.address, path)


_NODE_KEYS = frozenset(NODE_KEYS)
# a dotted IPv4 address already in ipaddress's canonical form (no leading zeros)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _plain_node(value: object, roles: dict[str, RoleSpec]) -> NodeSpec | None:
    """A node entry that passes every check, built without the Reader's bookkeeping (the common
    case of a large inventory); None when anything needs a closer look (the checked path then
    reports it). A `bmc` mapping is left to the caller, which checks it."""
    if not isinstance(value, dict) or not value.keys() <= _NODE_KEYS:
        return None
    name, role = value.get("name"), value.get("role")
    domain, address = value.get("failure_domain"), value.get("address")
    if not (isinstance(name, str) and _NAME.match(name) and isinstance(role, str)):
        return None
    if role not in roles or not role.strip():
        return None
    if domain is not None and not (isinstance(domain, str) and domain.strip()):
        return None
    if address is not None and not (isinstance(address, str) and _IPV4.fullmatch(address)):
        return None
    return NodeSpec(name, role, address, domain or "default")


def _hint(name: str, catalog: Catalog) -> str:
    close = difflib.get_close_matches(name, list(catalog.services), n=1)
    suggestion = f"; did you mean {close[0]!r}?" if close else ""
    return f", got {name!r}{suggestion}"
