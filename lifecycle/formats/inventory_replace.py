"""After a replace or remove run: the old node's `nodes:` entry renamed to its replacement, or
dropped.

The edit is made on the text, at the places ruamel.yaml's round-trip parse gives: only the
entry's `name`, `address` and `bmc` values change (a remove drops the entry's lines); its role,
failure domain, comments and every other line of the file stay byte for byte. The result is
checked twice before it replaces the file: parsed, it must equal the old document with only that
entry changed, and it must load as an inventory. Written as scale-out's update is
(inventory_update.write_inventory: a backup, a temp file renamed over the old one, its mode kept).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from lifecycle.errors import InventoryError
from lifecycle.formats.inventory_update import yaml_rt
from lifecycle.model.cluster import BmcSpec


@dataclass(frozen=True)
class NodeChange:
    """What becomes of the `nodes:` entry named `old`: renamed `new` (None: the entry is
    dropped, a scale-in), with `address` and `bmc`. `keep_unset`: an unset address or bmc
    keeps the entry's own (a rebuild of the same server); otherwise an unset one is dropped
    (the old server's address and BMC are not the replacement's)."""

    old: str
    new: str | None = None
    address: str | None = None
    bmc: BmcSpec | None = None
    keep_unset: bool = False

    @property
    def changes_anything(self) -> bool:
        return self.new != self.old or self.address is not None or self.bmc is not None


def fingerprint(path: Path) -> str:
    """sha256 of the file's bytes (comments included: the file the operator edits), as
    `sha256:HEX`. Raises InventoryError when it cannot be read."""
    try:
        return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise InventoryError.at(str(path), "", f"a readable file ({exc.strerror})") from None


def changed_text(text: str, change: NodeChange, file: str = "cluster.yaml") -> str:
    """`text` (a cluster.yaml) with the change made; pure. Raises InventoryError (field
    `nodes`) when the file has no `nodes:` entry named `change.old`, or its layout is one this
    edit cannot keep (then the operator edits by hand)."""
    data = _load(text, file)
    listed = data.get("nodes")
    if not isinstance(listed, CommentedSeq):
        raise InventoryError.at(file, "nodes", f"a `nodes:` list holding {change.old}")
    index = next(
        (i for i, e in enumerate(listed) if isinstance(e, dict) and e.get("name") == change.old),
        None,
    )
    if index is None:
        raise InventoryError.at(
            file,
            "nodes",
            f"an entry named {change.old} (not found: a node listed by nodes_file or"
            " baremetal_deployment is edited in that file)",
        )
    entry = listed[index]
    if not isinstance(entry, CommentedMap) or entry.fa.flow_style():
        raise InventoryError.at(
            file, f"nodes[{index}]", "a block mapping, one key a line, that lifecycle can edit"
        )
    if change.new is None and len(listed) == 1:
        raise InventoryError.at(file, "nodes", f"another node than {change.old} left")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    start, end = _item_span(lines, listed, index)
    if change.new is None:
        lines[start:end] = []
    else:
        _edit_entry(lines, entry, end, change, f"{file}: nodes[{index}]")
    out = "".join(lines)
    _check(text, out, index, change, file)
    return out


# --- where things are ------------------------------------------------------------------------


def _load(text: str, file: str) -> CommentedMap:
    try:
        data: Any = yaml_rt().load(text)
    except Exception as exc:  # ruamel's several parser errors
        raise InventoryError.at(file, "", f"a YAML file lifecycle can update ({exc})") from None
    if not isinstance(data, CommentedMap):
        raise InventoryError.at(file, "", "a YAML mapping (cluster.yaml)")
    return data


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _dash_line(lines: list[str], line: int, column: int) -> int:
    """The line of an item's `-` (the item's own first line, or above it for a `-` alone)."""
    for i in range(line, -1, -1):
        if lines[i].lstrip().startswith("-") and _indent_of(lines[i]) < column:
            return i
    return line


def _last_content(lines: list[str], start: int, stop: int, above: int) -> int:
    """The index after the last content line from `start` on that is indented more than
    `above`, before `stop`: comment and blank lines after it are not the item's."""
    end = start + 1
    for i in range(start + 1, stop):
        if not _is_content(lines[i]):
            continue
        if _indent_of(lines[i]) <= above:
            break
        end = i + 1
    return end


def _item_span(lines: list[str], listed: CommentedSeq, index: int) -> tuple[int, int]:
    """(first line, line after the last) of the list's item `index`: its `-` line to its last
    content line (comments after it belong to what follows)."""
    line, column = listed.lc.item(index)
    start = _dash_line(lines, line, column)
    dash = _indent_of(lines[start])
    stop = len(lines)
    if index + 1 < len(listed):
        after, after_column = listed.lc.item(index + 1)
        stop = _dash_line(lines, after, after_column)
    return start, _last_content(lines, line, stop, dash)


# --- the edit of one entry -------------------------------------------------------------------


def _edit_entry(
    lines: list[str], entry: CommentedMap, item_end: int, change: NodeChange, where: str
) -> None:
    assert change.new is not None
    keys = sorted(entry, key=lambda k: entry.lc.key(k))
    given = {
        "address": change.address,
        "bmc": _bmc_map(change.bmc, entry.get("bmc")) if change.bmc is not None else None,
    }
    wanted: dict[str, Any] = {"name": change.new}
    for key, value in given.items():
        if value is not None or not change.keep_unset:
            wanted[key] = value  # None: the old server's, not the replacement's: dropped
    edits: list[tuple[int, int, list[str]]] = []
    added: list[str] = []
    column = entry.lc.key(keys[0])[1]
    for key, value in wanted.items():
        if key not in entry:
            if value is not None:
                added += _rendered(key, value, column)
            continue
        at = keys.index(key)
        line = entry.lc.key(key)[0]
        stop = entry.lc.key(keys[at + 1])[0] if at + 1 < len(keys) else item_end
        end = _last_content(lines, line, stop, column)
        if value is None:
            if line == entry.lc.key(keys[0])[0]:
                raise InventoryError.at(where, key, "a key after `name:` (one lifecycle can drop)")
            edits.append((line, end, []))
        elif value != entry[key] or key == "name":
            edits.append((line, end, _replaced(lines[line:end], entry, key, value)))
    if added:
        edits.append((item_end, item_end, added))
    for start, end, new in sorted(edits, key=lambda e: e[0], reverse=True):
        lines[start:end] = new


def _bmc_map(bmc: BmcSpec, old: Any) -> CommentedMap:
    out = CommentedMap(
        (k, v)
        for k, v in (
            ("driver", bmc.driver),
            ("address", bmc.address),
            ("system_id", bmc.system_id),
            ("credentials", bmc.credentials),
        )
        if v
    )
    if not isinstance(old, CommentedMap) or old.fa.flow_style():
        out.fa.set_flow_style()  # one line, as the inventories write it, unless it was a block
    return out


def _dumped(key: str, value: Any) -> list[str]:
    """`key: value` as YAML lines (block mapping values indented by 2)."""
    out = io.StringIO()
    yaml_rt().dump(CommentedMap([(key, value)]), out)
    return out.getvalue().splitlines(keepends=True)


def _rendered(key: str, value: Any, column: int) -> list[str]:
    return [" " * column + line for line in _dumped(key, value)]


def _replaced(old: list[str], entry: CommentedMap, key: str, value: Any) -> list[str]:
    """The lines of `key` with its new value: on a one-line value only the value's text
    changes (what is before it, a `- ` included, and an end-of-line comment stay); otherwise
    the key is written afresh at its column."""
    line, column = entry.lc.key(key)
    new = _dumped(key, value)
    value_line, value_column = entry.lc.value(key)
    if len(old) == 1 and len(new) == 1 and value_line == line:
        text = old[0]
        end = _token_end(text, value_column)
        given = new[0][len(key) + 2 :].rstrip("\n")
        quote = text[value_column]
        if quote in "'\"" and given[:1] not in "'\"" and quote not in given and "\\" not in given:
            given = quote + given + quote  # the operator's quoting kept
        return [text[:value_column] + given + text[end:]]
    first = old[0][:column] + new[0]
    return [first, *(" " * column + rest for rest in new[1:])]


def _token_end(text: str, start: int) -> int:
    """The index after the one-line YAML value starting at `start` (a quoted scalar, a flow
    collection or a plain scalar, which ends at ` #` or the line's end)."""
    opening = text[start]
    if opening in "'\"":
        i = start + 1
        while i < len(text):
            if opening == '"' and text[i] == "\\":
                i += 2
                continue
            if text[i] == opening:
                if opening == "'" and text[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                return i + 1
            i += 1
    if opening in "{[":
        depth, i, quote = 0, start, ""
        while i < len(text):
            char = text[i]
            if quote:
                quote = "" if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char in "{[":
                depth += 1
            elif char in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
    body = text.rstrip("\n")
    comment = body.find(" #", start)
    return len(body[:comment].rstrip()) if comment >= 0 else len(body.rstrip())


# --- the check --------------------------------------------------------------------------------


def _plain(text: str) -> Any:
    return YAML(typ="safe").load(text)


def _bmc_plain(bmc: BmcSpec) -> dict[str, str]:
    return {k: v for k, v in _bmc_map(bmc, None).items()}


def _check(before: str, text: str, index: int, change: NodeChange, file: str) -> None:
    """The edited text, parsed, is the old document with only the entry changed; a text edit
    this module got wrong is refused here rather than written."""
    expected = _plain(before)
    if change.new is None:
        del expected["nodes"][index]
    else:
        entry = expected["nodes"][index]
        entry["name"] = change.new
        if change.address is not None:
            entry["address"] = change.address
        if change.bmc is not None:
            entry["bmc"] = _bmc_plain(change.bmc)
        for key in ("address", "bmc"):
            if getattr(change, key) is None and not change.keep_unset:
                entry.pop(key, None)
    try:
        got = _plain(text)
    except Exception:  # any parse failure is the same refusal
        got = None
    if got != expected:
        raise InventoryError.at(
            file,
            f"nodes[{index}]",
            "a layout lifecycle can edit safely (the edit did not give the expected document):"
            " edit it by hand",
        )
