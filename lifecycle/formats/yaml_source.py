"""Line-aware YAML loading and a field reader that collects problems instead of stopping at one.

`load_source` parses a YAML (or JSON) file and knows, for every mapping key and sequence item,
the line where it appears, keyed by its field path (`nodes[3].bmc.driver`). `Reader` checks typed
fields against that data and gathers `Problem`s so that one run reports several mistakes at once.

Lines are needed only to report a problem, so plain documents (no tags, anchors, merge keys or
duplicate keys: nearly every inventory) are built straight from libyaml's event stream, ~7x faster
than PyYAML's node tree; the lines are found by composing that tree only when a problem asks.
Anything else takes the node-tree path at once, so both paths give the same data and errors.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from lifecycle.errors import InputError, InventoryError, Problem


@dataclass(frozen=True)
class Source:
    """A parsed file: its data and the line of every field path.

    `text` is set when the lines were not recorded while parsing: the first `line()` finds them.
    """

    file: str
    data: Any
    lines: dict[str, int] = field(default_factory=dict)
    text: str | None = field(default=None, repr=False, compare=False)

    def line(self, path: str) -> int | None:
        """The line of `path`, or of its nearest parent that has one."""
        if self.text is not None and not self.lines:
            node, _ = _compose(self.text)
            if node is not None:
                self.lines[""] = _line(node)
                _record(node, "", self.lines, [], self.file, set())
        while path:
            if path in self.lines:
                return self.lines[path]
            path = _parent(path)
        return self.lines.get("")


def existing_file(path: Path) -> bool:
    """Whether `path` is a file; any name the OS refuses (too long, NUL byte) is simply not."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _parent(path: str) -> str:
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


def join(path: str, key: object) -> str:
    """The field path of `key` inside `path` (`nodes` + 3 -> `nodes[3]`)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def load_source(
    path: str | Path, error: type[InputError] = InventoryError, shown: str | None = None
) -> Source:
    """Parse `path` as YAML (JSON is YAML too); problems raise `error` with file and line."""
    name = shown or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise error.at(name, "", "an existing file (not found)") from exc
    except IsADirectoryError as exc:
        raise error.at(name, "", "a file, not a directory") from exc
    except UnicodeDecodeError as exc:
        raise error.at(name, "", f"UTF-8 text (byte {exc.start} is not)") from exc
    except (OSError, ValueError) as exc:
        raise error.at(name, "", f"a readable file ({exc.__class__.__name__})") from exc
    return parse_text(text, name, error, json_fallback=str(path).endswith(".json"))


def parse_text(
    text: str, name: str, error: type[InputError] = InventoryError, json_fallback: bool = False
) -> Source:
    """Parse YAML text from the file called `name`; lines are found when first asked for."""
    try:
        return Source(name, _plain_document(text), text=text)
    except (_NotPlain, yaml.YAMLError, ValueError, TypeError, RecursionError, OverflowError):
        pass  # the node-tree path below parses it again and reports any error with its line
    try:
        node, data = _compose(text)
    except yaml.reader.ReaderError as exc:
        raise error.at(name, "", f"YAML text ({exc.reason}, character {exc.position})") from exc
    except yaml.MarkedYAMLError as exc:
        if json_fallback:
            return _parse_json(text, name, error)
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise error.at(name, "", f"valid YAML ({exc.problem or exc.context})", line) from exc
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, OverflowError) as exc:
        raise error.at(name, "", f"valid YAML ({exc.__class__.__name__})") from exc
    lines: dict[str, int] = {}
    duplicates: list[Problem] = []
    if node is not None:
        lines[""] = node.start_mark.line + 1
        _record(node, "", lines, duplicates, name, set())
    if duplicates:
        raise error(duplicates)
    return Source(name, data, lines)


# libyaml when the platform has it (ten times faster), the pure-Python loader otherwise.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose(text: str) -> tuple[yaml.Node | None, Any]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return node, loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


class _NotPlain(Exception):
    """The document uses a YAML feature the event-stream builder leaves to PyYAML's constructor."""


_STR = "tag:yaml.org,2002:str"
_PLAIN_TAGS = frozenset(
    "tag:yaml.org,2002:" + t for t in ("str", "null", "bool", "int", "float")
)  # fmt: skip
_NO_KEY = object()


def _plain_document(text: str) -> Any:
    """The data of a single-document YAML text without tags, anchors, aliases, merge keys,
    timestamps, collection keys or duplicate keys, as SafeLoader would construct it; raises
    _NotPlain (or libyaml's error) otherwise."""
    loader = _Loader(text)
    try:
        return _build(loader)
    finally:
        loader.dispose()


def _build(loader: Any) -> Any:
    get, resolve = loader.get_event, _resolve
    scalar, mapping_start, sequence_start = (
        yaml.ScalarEvent,
        yaml.MappingStartEvent,
        yaml.SequenceStartEvent,
    )
    ends = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    no_key = _NO_KEY
    scalars: dict[str, Any] = {}  # plain scalar text -> its value (names repeat: roles, racks)
    stack: list[Any] = []  # open collections
    keys: list[Any] = []  # per open mapping: its pending key, or _NO_KEY
    root: Any = None
    opened: dict[Any, Any] | list[Any] | None
    while True:
        event = get()
        kind = type(event)
        if kind is scalar:
            if event.anchor is not None or event.tag is not None:
                raise _NotPlain
            value = event.value
            if event.implicit[0] and not event.style:
                plain = scalars.get(value, no_key)
                if plain is no_key:
                    plain = scalars[value] = resolve(loader, value)
                value = plain
            opened = None
        elif kind is mapping_start or kind is sequence_start:
            if event.anchor is not None or event.tag is not None:
                raise _NotPlain
            value = opened = {} if kind is mapping_start else []
        elif kind in ends:
            stack.pop()
            keys.pop()
            continue
        elif kind is yaml.DocumentEndEvent:
            if type(get()) is not yaml.StreamEndEvent:
                raise _NotPlain  # several documents: the composer names the error
            return root
        elif kind is yaml.StreamEndEvent:
            return None  # an empty stream
        elif kind is yaml.StreamStartEvent or kind is yaml.DocumentStartEvent:
            continue
        else:  # an alias
            raise _NotPlain
        if not stack:
            root = value
        else:
            top = stack[-1]
            key = keys[-1]
            if key is None:  # a sequence
                top.append(value)
            elif key is no_key:
                if opened is not None or value in top:
                    raise _NotPlain  # a collection as a key, or a duplicate key
                keys[-1] = value
            else:
                top[key] = value
                keys[-1] = no_key
        if opened is not None:
            stack.append(opened)
            keys.append(no_key if kind is mapping_start else None)


def _resolve(loader: Any, text: str) -> Any:
    """A plain scalar as SafeLoader resolves and constructs it (null, bool, int, float, str)."""
    tag = loader.resolve(yaml.ScalarNode, text, (True, False))
    if tag == _STR:
        return text
    if tag not in _PLAIN_TAGS:
        raise _NotPlain  # timestamps, merge keys, `=`
    return loader.construct_object(yaml.ScalarNode(tag, text))


def _parse_json(text: str, name: str, error: type[InputError]) -> Source:
    try:
        return Source(name, json.loads(text))
    except json.JSONDecodeError as exc:
        raise error.at(name, "", f"valid JSON ({exc.msg})", exc.lineno) from exc
    except RecursionError as exc:
        raise error.at(name, "", "valid JSON (nested too deeply)") from exc


def _record(
    node: yaml.Node,
    path: str,
    lines: dict[str, int],
    dups: list[Problem],
    name: str,
    seen: set[int],
) -> None:
    if id(node) in seen:  # an alias: its lines are recorded where the anchor is (no YAML bombs)
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            sub = join(path, key)
            if key in keys:
                dups.append(Problem(name, sub, "each key once (duplicate key)", _line(key_node)))
            keys.add(key)
            lines.setdefault(sub, _line(key_node))
            _record(value_node, sub, lines, dups, name, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            sub = join(path, index)
            lines.setdefault(sub, _line(item))
            _record(item, sub, lines, dups, name, seen)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def describe(value: object) -> str:
    """A value's kind, for messages that must not echo the value itself."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


class Reader:
    """Typed access to a Source's fields; every mistake becomes a Problem with file and line."""

    def __init__(self, source: Source, error: type[InputError] = InventoryError) -> None:
        self.source = source
        self.error = error
        self.problems: list[Problem] = []

    # --- reporting ---------------------------------------------------------------------------

    def problem(self, path: str, expected: str) -> None:
        self.problems.append(Problem(self.source.file, path, expected, self.source.line(path)))

    def fail(self, path: str, expected: str) -> NoReturn:
        self.problem(path, expected)
        self.raise_if_any()
        raise AssertionError("unreachable")

    def raise_if_any(self) -> None:
        if self.problems:
            raise self.error(self.problems)

    # --- typed fields ------------------------------------------------------------------------

    def mapping(
        self,
        path: str,
        value: object,
        required: Iterable[str] = (),
        optional: Iterable[str] = (),
    ) -> dict[str, Any] | None:
        """A mapping with only the allowed keys; None (and a problem) when it is not one."""
        if not isinstance(value, dict):
            self.problem(path, f"a mapping, got {describe(value)}")
            return None
        allowed = set(required) | set(optional)
        ok = True
        for key in value:
            if not isinstance(key, str):
                self.problem(path, f"string keys, got {describe(key)}")
                ok = False
            elif key not in allowed:
                self.problem(join(path, key), f"one of {_list(allowed)} (unknown key)")
                ok = False
        for key in required:
            if key not in value:
                self.problem(join(path, key) if path else key, "this key (missing)")
                ok = False
        return value if ok else {k: v for k, v in value.items() if k in allowed}

    def sequence(self, path: str, value: object) -> list[Any]:
        if not isinstance(value, list):
            self.problem(path, f"a list, got {describe(value)}")
            return []
        return value

    def string(self, path: str, value: object) -> str | None:
        if isinstance(value, str) and value.strip():
            return value
        got = "an empty string" if isinstance(value, str) else describe(value)
        self.problem(path, f"a non-empty string, got {got}")
        return None

    def integer(self, path: str, value: object, minimum: int | None = None) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(path, f"an integer, got {describe(value)}")
            return None
        if minimum is not None and value < minimum:
            self.problem(path, f"an integer >= {minimum}, got {value}")
            return None
        return value

    def choice(self, path: str, value: object, choices: Iterable[str]) -> str | None:
        options = tuple(choices)
        if isinstance(value, str) and value in options:
            return value
        self.problem(path, f"one of {_list(options)}, got {_show(value)}")
        return None

    def ip_address(self, path: str, value: object) -> str | None:
        text = self.string(path, value)
        if text is None:
            return None
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            self.problem(path, f"an IPv4 or IPv6 address, got {text!r}")
            return None

    def items(self, path: str, value: object) -> Iterator[tuple[str, Any]]:
        """(key, value) pairs of a mapping, skipping non-string keys (reported)."""
        mapping = self.mapping(path, value, optional=value if isinstance(value, dict) else ())
        for key, item in (mapping or {}).items():
            if isinstance(key, str):
                yield key, item


def _list(options: Iterable[str]) -> str:
    return ", ".join(sorted(str(o) for o in options))


def _show(value: object) -> str:
    if isinstance(value, str | int | float | bool) and len(str(value)) <= 60:
        return repr(value)
    return describe(value)
