"""Shell completion of what click cannot guess: release names and run ids.

click completes commands, options, choices and paths by itself (`_LIFECYCLE_COMPLETE=bash_source
lifecycle`, see docs/completion.md). `attach` adds, to every command of the tree, completion of
release names for `--to`/`--ceph-to` (parameters `target`, `ceph_target`: from the release
catalog, code names included) and of run ids for a `RUN_ID` argument (from the journals of the
state directory, newest first). It works by parameter name, so a command added later with the same
parameters is completed too.

A completion callback runs on every Tab press: it must never print, raise or create anything, so
each swallows its errors and returns nothing instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import click
from click.shell_completion import CompletionItem

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def complete_release(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Release names (then code names) of the OpenStack train, or Ceph's for `--ceph-to`,
    matching the typed prefix in any case."""
    try:
        from lifecycle.catalog import load_catalog

        catalog = load_catalog()
    except Exception:  # a broken catalog is reported by the command itself, not on Tab
        return []
    train = catalog.ceph if param.name == "ceph_target" else catalog.openstack
    typed = incomplete.lower()
    items = []
    for release in train.releases:
        for name in (release.name, *release.aliases):
            if name.lower().startswith(typed):
                help_text = release.name if name != release.name else ""
                items.append(CompletionItem(name, help=help_text or None))
    return items


def _state_dir(ctx: click.Context) -> Path:
    """Where `--state-dir` (if typed already), $LIFECYCLE_STATE_DIR or the default points; never
    created here."""
    from lifecycle.execution.paths import ENV_STATE_DIR

    explicit = ctx.params.get("state_dir")
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_STATE_DIR):
        return Path(os.environ[ENV_STATE_DIR])
    return Path.home() / ".local" / "state" / "lifecycle"


def complete_run_id(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Run ids of every journal in the state directory, newest first, with their operation."""
    try:
        from lifecycle.execution.sqlite_journal import SqliteJournal

        root = _state_dir(ctx)
        records = []
        for path in sorted(root.glob("*.db")) if root.is_dir() else ():
            journal = SqliteJournal(path)
            try:
                records += journal.runs()
            finally:
                journal.close()
    except Exception:  # an unreadable journal must not break the shell
        return []
    records.sort(key=lambda r: r.created, reverse=True)
    return [
        CompletionItem(r.id, help=f"{r.operation} of {r.cluster}")
        for r in records
        if r.id.startswith(incomplete)
    ]


COMPLETERS: dict[str, Completer] = {
    "target": complete_release,
    "ceph_target": complete_release,
    "run_id": complete_run_id,
}


def attach(command: click.Command) -> None:
    """Give every parameter named in COMPLETERS, in `command` and its subcommands, its completer
    (unless it has one of its own)."""
    for param in command.params:
        completer = COMPLETERS.get(param.name or "")
        if completer is not None and param._custom_shell_complete is None:
            # what click.Parameter(shell_complete=...) sets; done here so that no command
            # definition needs to repeat it
            param._custom_shell_complete = completer
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            attach(sub)
