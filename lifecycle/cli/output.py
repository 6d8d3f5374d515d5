"""Listings and records in the openstack client's formats: `-f table|json|yaml|value|csv` and
`-c COLUMN` (repeatable), as cliff gives `openstack server list` and `openstack server show`.

Any command gets them with `@output_options()` and prints with `emit_list(rows, columns, ...)`
(a listing: one row per item) or `emit_show(record, ...)` (one item: a Field/Value table).
Tables are drawn with rich (already a dependency) in ASCII boxes like cliff's; json and yaml
keep each column's key and its value's type (lists stay lists, times are ISO 8601 strings);
`value` prints the bare values space-separated, one row per line, for shell scripts.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from lifecycle.errors import UsageError

FORMATS = ("table", "json", "yaml", "value", "csv")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Column:
    """A column: `key` in each row (and in json/yaml), `header` in tables and csv; `show`
    turns a value into text for table, value and csv (json and yaml keep the value)."""

    key: str
    header: str = ""
    show: Callable[[Any], str] | None = None

    @property
    def title(self) -> str:
        return self.header or self.key.replace("_", " ").title()


def columns(*keys: str | Column) -> tuple[Column, ...]:
    return tuple(k if isinstance(k, Column) else Column(k) for k in keys)


def output_options(default: str = "table", extra: Sequence[str] = ()) -> Callable[[F], F]:
    """`-f/--format` (FORMATS, plus `extra` such as "text") and `-c/--column`."""
    choices = [*extra, *FORMATS]

    def wrap(func: F) -> F:
        func = click.option(
            "-c",
            "--column",
            "columns_",
            multiple=True,
            metavar="COLUMN",
            help="show only this column (repeatable)",
        )(func)
        func = click.option(
            "-f",
            "--format",
            "fmt",
            type=click.Choice(choices, case_sensitive=False),
            default=default,
            show_default=True,
            help="output format",
        )(func)
        return func

    return wrap


def select(available: Sequence[Column], wanted: Sequence[str]) -> tuple[Column, ...]:
    """The columns `-c` asks for (by key or header, any case), in the order asked."""
    if not wanted:
        return tuple(available)
    by_name = {}
    for col in available:
        by_name[col.key.lower()] = col
        by_name[col.title.lower()] = col
    chosen: list[Column] = []
    unknown: list[str] = []
    for name in wanted:
        found = by_name.get(name.lower())
        if found is None:
            unknown.append(name)
        else:
            chosen.append(found)
    if unknown:
        known = ", ".join(c.key for c in available)
        raise UsageError.at(
            "command line", "-c/--column", f"a column of {known}; got {', '.join(unknown)}"
        )
    return tuple(chosen)


def emit_list(
    rows: Sequence[Mapping[str, Any]],
    available: Sequence[Column],
    fmt: str,
    wanted: Sequence[str] = (),
    echo: Callable[[str], None] = click.echo,
) -> None:
    """Print a listing in `fmt` with the `wanted` columns (all when none)."""
    cols = select(available, wanted)
    data = [{c.key: row.get(c.key) for c in cols} for row in rows]
    fmt = fmt.lower()
    if fmt == "json":
        echo(json.dumps(data, indent=2, default=str))
        return
    if fmt == "yaml":
        echo(_yaml(data))
        return
    text = [[c.show(r[c.key]) if c.show else _cell(r[c.key]) for c in cols] for r in data]
    if fmt == "value":
        for row in text:
            echo(" ".join(row))
    elif fmt == "csv":
        echo(_csv([c.title for c in cols], text))
    else:
        echo(_table([c.title for c in cols], text))


def emit_show(
    record: Mapping[str, Any],
    fmt: str,
    wanted: Sequence[str] = (),
    echo: Callable[[str], None] = click.echo,
) -> None:
    """Print one record: a Field/Value table, or the record as json/yaml/value/csv."""
    cols = select(columns(*record), wanted)
    data = {c.key: record.get(c.key) for c in cols}
    fmt = fmt.lower()
    if fmt == "json":
        echo(json.dumps(data, indent=2, default=str))
    elif fmt == "yaml":
        echo(_yaml(data))
    elif fmt == "value":
        for value in data.values():
            echo(_cell(value))
    elif fmt == "csv":
        echo(_csv(list(data), [[_cell(v) for v in data.values()]]))
    else:
        echo(_table(["Field", "Value"], [[k, _cell(v)] for k, v in data.items()]))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "\n".join(_cell(v) if not isinstance(v, dict) else _inline(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(f"{k}={_inline(v)}" for k, v in value.items())
    return str(value)


def _inline(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, separators=(",", ":"))


def _yaml(data: Any) -> str:
    import yaml

    text: str = yaml.safe_dump(
        json.loads(json.dumps(data, default=str)), sort_keys=False, default_flow_style=False
    )
    return text.rstrip("\n")


def _csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().rstrip("\n")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An ASCII-boxed table (cliff's look) at the width of its content."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.ASCII, show_lines=False, header_style="", pad_edge=True)
    for title in header:
        table.add_column(Text(title), overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # Text: "[x]" is data, not rich markup
    width = 10_000  # never wrap, as cliff's tables: a narrow terminal scrolls, a pipe greps
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, no_color=True, highlight=False, emoji=False)
    console.print(table, crop=False, soft_wrap=False)
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").splitlines())
