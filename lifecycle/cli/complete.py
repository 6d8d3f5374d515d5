"""Shell completion (click's own, see `lifecycle --help`): release names from the catalog and
run ids from the journals. A completion never fails: on any error it offers nothing."""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem


def _releases(product: str, incomplete: str) -> list[CompletionItem]:
    try:
        from lifecycle.catalog import load_catalog

        catalog = load_catalog()
        train = catalog.openstack if product == "openstack" else catalog.ceph
    except Exception:
        return []
    out = []
    for release in train.releases:
        for name in (release.name, *release.aliases):
            if name.lower().startswith(incomplete.lower()):
                help_ = release.name if name != release.name else ", ".join(release.aliases)
                out.append(CompletionItem(name, help=help_ or None))
    return out


def complete_release(ctx: click.Context, param: click.Parameter, incomplete: str) -> Any:
    """OpenStack release names and code names (`2023.1`, `antelope`)."""
    return _releases("openstack", incomplete)


def complete_ceph_release(ctx: click.Context, param: click.Parameter, incomplete: str) -> Any:
    return _releases("ceph", incomplete)


def complete_run(ctx: click.Context, param: click.Parameter, incomplete: str) -> Any:
    """`last` and the run ids of the journals (newest first) that start with `incomplete`;
    nothing where no run is recorded. Completing never creates the state directory."""
    try:
        from lifecycle.execution.paths import state_dir_path
        from lifecycle.execution.run_index import LAST, all_runs

        root = state_dir_path(ctx.params.get("state_dir"))
        runs = all_runs(root) if root.is_dir() else []
    except Exception:
        return []
    if not runs:
        return []
    ids = [LAST, *(e.record.id for e in reversed(runs))]
    return [CompletionItem(i) for i in ids if i.startswith(incomplete)]
