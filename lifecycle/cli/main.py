"""Entry point: one click group; each family of commands lives in its own module."""

from __future__ import annotations

import sys

import click

from lifecycle import __version__
from lifecycle.errors import LifecycleError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lifecycle")
def cli() -> None:
    """Plan and run upgrades, scale-outs and replacements of an OpenStack cloud on bare metal."""


def _register() -> None:
    from lifecycle.cli import (
        export_cmds,
        inventory_cmds,
        nodes_cmds,
        plan_cmds,
        run_cmds,
        status_cmds,
        testbed_cmds,
    )

    for module in (inventory_cmds, plan_cmds, run_cmds, testbed_cmds, nodes_cmds, export_cmds):
        for command in module.COMMANDS:
            cli.add_command(command)
    cli.add_command(status_cmds.status_cmd)  # `lifecycle status` (observed state)
    from lifecycle.cli.completion import attach

    attach(cli)  # release names and run ids complete on Tab (docs/completion.md)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; operator errors print one clear message and exit with their status."""
    try:
        cli.main(args=argv, prog_name="lifecycle", standalone_mode=False)
    except LifecycleError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2 if isinstance(exc, click.UsageError) else exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
