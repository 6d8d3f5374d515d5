"""The secrets file: BMC credentials and the SSH identity, never logged, never printed.

```yaml
credentials:                       # name -> BMC login; nodes refer to it by bmc.credentials
  ctl-0: {username: admin, password: "..."}
ssh: {user: root, private_key_file: keys/id_ed25519}
```

The file must have mode 0600, and so must the inventory's `nodes_file` when it holds BMC
passwords (instackenv.json's pm_password). Error messages name fields and kinds, never values.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from lifecycle.errors import InventoryError, Problem
from lifecycle.formats.yaml_source import Reader, Source, existing_file, join, load_source
from lifecycle.model import Cluster

SSH = "ssh"
_SECRET_FIELDS = ("password", "private_key")  # values redacted everywhere


class Secrets:
    """An immutable mapping credential-name -> {"username", "password"} (plus an `ssh` entry
    {"user", "private_key_file"} when given). `values()` gives every secret string."""

    __slots__ = ("_entries",)
    _entries: MappingProxyType[str, MappingProxyType[str, str]]

    def __init__(self, entries: Mapping[str, Mapping[str, str]] | None = None) -> None:
        frozen = {k: MappingProxyType(dict(v)) for k, v in (entries or {}).items()}
        object.__setattr__(self, "_entries", MappingProxyType(frozen))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secrets are immutable")

    def __getitem__(self, name: str) -> Mapping[str, str]:
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secrets) and dict(self.items()) == dict(other.items())

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._entries)))

    def __repr__(self) -> str:  # names only: a repr ends up in logs and tracebacks
        return f"Secrets({sorted(self._entries)})"

    def get(self, name: str, default: Mapping[str, str] | None = None) -> Mapping[str, str] | None:
        return self._entries.get(name, default)

    def keys(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def items(self) -> tuple[tuple[str, Mapping[str, str]], ...]:
        return tuple(self._entries.items())

    @property
    def ssh(self) -> Mapping[str, str] | None:
        return self._entries.get(SSH)

    def values(self) -> tuple[str, ...]:
        """Every secret string (passwords, inline keys), longest first."""
        found = {
            value
            for entry in self._entries.values()
            for key, value in entry.items()
            if key in _SECRET_FIELDS and value
        }
        return tuple(sorted(found, key=lambda v: (-len(v), v)))

    def redact(self, text: str) -> str:
        """`text` with every secret value replaced by ***."""
        for value in self.values():
            text = text.replace(value, "***")
        return text

    def merged(self, other: Secrets) -> Secrets:
        """These secrets and `other`'s; on a name in both, `other` wins."""
        return Secrets({**dict(self.items()), **dict(other.items())})


def load_secrets(cluster: Cluster) -> Secrets:
    """The secrets of a loaded cluster: its credentials file and the BMC logins of its nodes file.

    Raises InventoryError when the file is not mode 0600, is malformed, or lacks a credential a
    node's BMC names.
    """
    base = Path(cluster.source).parent if cluster.source else Path.cwd()
    secrets = Secrets()
    if cluster.credentials:
        secrets = read_secrets_file(base / cluster.credentials, shown=cluster.credentials)
    secrets = secrets.merged(_nodes_file_secrets(cluster, base))
    _check_references(cluster, secrets)
    return secrets


def read_secrets_file(path: Path, shown: str | None = None) -> Secrets:
    """Parse and check one secrets file."""
    name = shown or str(path)
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError) as exc:
        raise InventoryError.at(name, "", "an existing secrets file (cannot stat it)") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InventoryError.at(
            name,
            "",
            f"mode 0600, readable by its owner only (it is {oct(mode & 0o777)[2:]:0>4}; "
            f"run chmod 600 {path})",
        )
    source = load_source(path, InventoryError, shown=name)
    reader = Reader(source)
    top = reader.mapping("", source.data, optional=("credentials", SSH)) or {}
    entries: dict[str, dict[str, str]] = {}
    for cred, raw in reader.items("credentials", top.get("credentials", {})):
        if cred == SSH:
            reader.problem(join("credentials", cred), "a credential name other than 'ssh'")
        entry = _fields(reader, join("credentials", cred), raw, ("username", "password"))
        if entry is not None:
            entries[cred] = entry
    if SSH in top:
        entry = _fields(reader, SSH, top[SSH], ("user", "private_key_file"), ("private_key",))
        if entry is not None:
            entries[SSH] = entry
    reader.raise_if_any()
    return Secrets(entries)


def _fields(
    reader: Reader, path: str, raw: Any, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, str] | None:
    mapping = reader.mapping(path, raw, required, optional)
    if mapping is None:
        return None
    out: dict[str, str] = {}
    for key, value in mapping.items():
        # Reader.string names the kind of a wrong value, never the value: fine for secrets.
        text = reader.string(join(path, key), value)
        if text is not None:
            out[key] = text
    return out if len(out) == len(mapping) else None


def _nodes_file_secrets(cluster: Cluster, base: Path) -> Secrets:
    source = _cluster_source(cluster)
    nodes_file = source.data.get("nodes_file") if source and isinstance(source.data, dict) else None
    if not isinstance(nodes_file, str):
        return Secrets()
    from lifecycle.formats.nodes_file import load_nodes_file

    # load_nodes_file refuses the file when others can read the passwords it holds
    return load_nodes_file(base / nodes_file)[1]


def check_private(path: Path, shown: str, what: str, instead: str = "") -> None:
    """A file holding `what` must be readable by its owner only, like the secrets file:
    InventoryError (exit 2) naming the file, its mode and `chmod 600` (or `instead`)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # reading it reports the problem
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InventoryError.at(
            shown,
            "",
            f"mode 0600, since it holds {what} (it is {oct(mode & 0o777)[2:]:0>4}; run chmod 600"
            f" {path}{instead})",
        )


def _cluster_source(cluster: Cluster) -> Source | None:
    if not cluster.source or not existing_file(Path(cluster.source)):
        return None
    return load_source(cluster.source)


def _check_references(cluster: Cluster, secrets: Secrets) -> None:
    missing = [
        node
        for node in cluster.nodes
        if node.bmc and node.bmc.credentials and node.bmc.credentials not in secrets
    ]
    if not missing:
        return
    source = _cluster_source(cluster)
    where = cluster.credentials or "(no credentials file)"
    problems = []
    for node in missing:
        path, line = _node_field(source, node.name)
        problems.append(
            Problem(
                cluster.source or "cluster.yaml",
                path,
                f"a credential {node.bmc.credentials!r} defined in {where}"  # type: ignore[union-attr]
                " (missing there)",
                line,
            )
        )
    raise InventoryError(problems)


def _node_field(source: Source | None, name: str) -> tuple[str, int | None]:
    nodes = source.data.get("nodes") if source and isinstance(source.data, dict) else None
    for index, raw in enumerate(nodes if isinstance(nodes, list) else []):
        if isinstance(raw, dict) and raw.get("name") == name:
            path = f"nodes[{index}].bmc.credentials"
            return path, source.line(path) if source else None
    return f"nodes[{name}].bmc.credentials", None
