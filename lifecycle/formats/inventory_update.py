"""After a scale-out: the `nodes:` entries the inventory lacks, printed or written into it.

Written with ruamel.yaml's round-trip mode, so the operator's comments, key order and layout
stay as they were; the old file is kept beside it as `cluster.yaml.bak-<run id>`, and the new
one replaces it atomically with the same mode.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from lifecycle.errors import InventoryError
from lifecycle.model.cluster import NodeSpec


def _entry(node: NodeSpec) -> CommentedMap:
    entry = CommentedMap()
    entry["name"] = node.name
    entry["role"] = node.role
    entry["failure_domain"] = node.failure_domain
    if node.address:
        entry["address"] = node.address
    if node.bmc is not None:
        bmc = CommentedMap(
            (k, v)
            for k, v in (
                ("driver", node.bmc.driver),
                ("address", node.bmc.address),
                ("system_id", node.bmc.system_id),
                # no `credentials`: the login is in the nodes file, not in secrets.yaml, and a
                # name secrets.yaml lacks would make the inventory fail to load
            )
            if v
        )
        bmc.fa.set_flow_style()  # one line, as the inventories write it
        entry["bmc"] = bmc
    return entry


def yaml_rt() -> YAML:
    """ruamel.yaml in round-trip mode, writing as the inventories are written."""
    yaml = YAML()  # round-trip: comments and layout survive
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=2, offset=0)
    return yaml


def entries_text(nodes: Sequence[NodeSpec]) -> str:
    """The YAML list items to add under `nodes:`."""
    out = io.StringIO()
    yaml_rt().dump(CommentedSeq(_entry(n) for n in nodes), out)
    return out.getvalue()


def add_nodes(path: Path, nodes: Sequence[NodeSpec], run_id: str) -> Path:
    """Add `nodes` (those not listed yet) at the end of the file's `nodes:` list; returns the
    backup's path. Every other line of the file is kept byte for byte: the entries are inserted
    as text after the last line of the last node, at its indentation (ruamel.yaml's round-trip
    parse says where that is). Raises InventoryError when the file cannot be read or written."""
    try:
        text = path.read_text()
        data: Any = yaml_rt().load(text)
    except Exception as exc:  # OSError, and ruamel's several parser errors
        raise InventoryError.at(
            str(path), "", f"a YAML file lifecycle can update ({exc})"
        ) from None
    if not isinstance(data, CommentedMap):
        raise InventoryError.at(str(path), "", "a YAML mapping (cluster.yaml)")
    listed = data.get("nodes")
    if listed is not None and not isinstance(listed, CommentedSeq):
        raise InventoryError.at(str(path), "nodes", "a list of nodes")
    names = {item.get("name") for item in listed or () if isinstance(item, dict)}
    new = [n for n in nodes if n.name not in names]
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if listed:
        at, column = _end_of_list(lines, listed)
        lines[at:at] = _indent(entries_text(new), column) if new else []
    elif new:
        lines += ["nodes:\n", *_indent(entries_text(new), 2)]
    return write_inventory(path, "".join(lines), run_id)


def write_inventory(
    path: Path, text: str, run_id: str, check: Callable[[Path], object] | None = None
) -> Path:
    """Replace `path` by `text` atomically (a temp file beside it, the old file's mode, then a
    rename), the old file kept as `<name>.bak-<run_id>`; returns the backup's path. `check`
    (e.g. load_inventory) is called on the temp file first: whatever it raises leaves `path`
    untouched. Raises InventoryError when the file cannot be written."""
    backup = path.with_name(f"{path.name}.bak-{run_id}")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        try:
            tmp.write_text(text)
            shutil.copymode(path, tmp)
            if check is not None:
                check(tmp)
            shutil.copy2(path, backup)
            os.replace(tmp, path)
        except OSError as exc:
            raise InventoryError.at(str(path), "", f"a writable file ({exc.strerror})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return backup


def _end_of_list(lines: list[str], listed: CommentedSeq) -> tuple[int, int]:
    """(index of the line after the list's last item, the column of its `- `)."""
    last_line, _ = listed.lc.item(len(listed) - 1)
    dash = len(lines[last_line]) - len(lines[last_line].lstrip())
    end = last_line + 1
    for i in range(last_line + 1, len(lines)):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(lines[i]) - len(lines[i].lstrip()) <= dash:
            break  # the next key (or item) at the list's level or above
        end = i + 1
    return end, dash


def _indent(text: str, column: int) -> list[str]:
    pad = " " * column
    return [pad + line if line.strip() else line for line in text.splitlines(keepends=True)]
