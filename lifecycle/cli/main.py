"""Entry point: one click group; each family of commands lives in its own module.

Global options follow the openstack client: `-v/-q/--debug`, `--log-file`, `--os-cloud`.
Every error an operator can cause ends in one `error: ...` paragraph on stderr and an exit
status of the table in EPILOG (also in lifecycle/errors.py); a traceback only with --debug.
"""

from __future__ import annotations

import gc
import sys
import threading
import traceback

import click

from lifecycle import __version__
from lifecycle.cli.context import OPTIONS, configure_logging, drop_logging
from lifecycle.errors import LifecycleError, UnsafePlan

EPILOG = """\b
Exit status:
  0    success
  1    any other error (run again with --debug for the traceback)
  2    bad input: inventory, files, arguments, an unknown run id or release,
       an OpenStack endpoint not configured (clouds.yaml, --os-cloud, --ironic-url)
  3    the plan is unsafe: the safety verifier refused it (--force overrides)
  4    the run failed, stopped or was refused (cluster locked, not resumable)
  130  interrupted (Ctrl-C), or a confirmation answered no

\b
Shell completion (commands, options, release names, run ids):
  bash: eval "$(_LIFECYCLE_COMPLETE=bash_source lifecycle)"   # in ~/.bashrc
  zsh:  eval "$(_LIFECYCLE_COMPLETE=zsh_source lifecycle)"    # in ~/.zshrc
  fish: _LIFECYCLE_COMPLETE=fish_source lifecycle | source    # in config.fish
"""


class StdoutClosed(Exception):
    """Whoever read stdout stopped reading (`lifecycle ... | head -2`): not an error of the
    command, which `main` ends quietly with the status it had."""


class _Root(click.Group):
    """The root group: a broken pipe on stdout becomes StdoutClosed here, before click's own
    handler turns it into exit status 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise StdoutClosed() from exc


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.version_option(__version__, prog_name="lifecycle")
@click.option("-v", "--verbose", count=True, help="more log output (-vv: debug)")
@click.option("-q", "--quiet", is_flag=True, help="only errors in the log output")
@click.option("--debug", is_flag=True, help="debug log output, and a traceback on any error")
@click.option(
    "--log-file", metavar="PATH", help="also write the log here (INFO; DEBUG with -vv, --debug)"
)
@click.option(
    "--os-cloud",
    envvar="OS_CLOUD",
    metavar="NAME",
    help="clouds.yaml entry for every OpenStack endpoint [env OS_CLOUD]",
)
def cli(verbose: int, quiet: bool, debug: bool, log_file: str | None, os_cloud: str | None) -> None:
    """Plan and run upgrades, scale-outs and replacements of an OpenStack cloud on bare metal."""
    OPTIONS.verbosity = -1 if quiet else verbose
    OPTIONS.debug = debug
    OPTIONS.log_file = log_file
    OPTIONS.os_cloud = os_cloud
    configure_logging(OPTIONS)


def _register() -> None:
    from lifecycle.cli import (
        backup_cmds,
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
    for command in backup_cmds.COMMANDS:  # `lifecycle backup`, `lifecycle backups ...`
        cli.add_command(command)
    backup_cmds.register(plan_cmds.plan_group, run_cmds.run_group)  # plan/run recover


_register()


# A command allocates millions of objects that live until it exits (an inventory, a plan, a
# journal); the cyclic collector would scan them again and again for the few cycles among them
# (~20% of a 10k-step resume). It is off for the first seconds of a command, then back on for
# whatever runs longer (an engine run, a Mistral wait), which may make garbage for hours.
_COLLECTOR_OFF_FOR = 10.0  # seconds


def _collector_later() -> None:
    gc.freeze()  # what the imports made is never garbage
    gc.disable()
    timer = threading.Timer(_COLLECTOR_OFF_FOR, gc.enable)
    timer.daemon = True
    timer.start()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every error prints one `error: ...` paragraph and returns its exit status."""
    OPTIONS.reset()
    if argv is None:  # the process's own command line, not a caller's (tests call main(argv))
        _collector_later()
    try:
        status = cli.main(args=argv, prog_name="lifecycle", standalone_mode=False)
        if isinstance(status, int) and not isinstance(status, bool):  # a command's ctx.exit(N)
            return status
    except UnsafePlan as exc:  # the first 20 violations; all of them with -v
        return _fail(exc, exc.exit_code, exc.describe(None if OPTIONS.verbosity > 0 else 20))
    except LifecycleError as exc:
        return _fail(exc, exc.exit_code, str(exc))
    except StdoutClosed:
        _quiet_stdout()
        return 0
    except click.exceptions.Abort as exc:  # a question answered no, or Ctrl-C at a prompt
        click.echo("error: aborted: not confirmed; nothing was done", err=True)
        _debug_traceback(exc)
        return 130
    except KeyboardInterrupt as exc:
        click.echo("error: interrupted", err=True)
        _debug_traceback(exc)
        return 130
    except click.ClickException as exc:
        return _fail(exc, *_click_error(exc))
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception as exc:
        from lifecycle.cli.errors_map import translate

        code, message = translate(exc)
        return _fail(exc, code, message)
    finally:
        drop_logging(OPTIONS)
    return 0


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush of what was left for the
    closed pipe does not print a BrokenPipeError of its own (the Python docs' recipe, `signal`)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (tests' captured stdout)
        pass


def _fail(exc: BaseException, code: int, message: str) -> int:
    click.echo(f"error: {message}", err=True)
    _debug_traceback(exc)
    return code


def _debug_traceback(exc: BaseException) -> None:
    if OPTIONS.debug:
        click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)


def _click_error(exc: click.ClickException) -> tuple[int, str]:
    """Click's own errors in the one style: `error: ...` and where to read more."""
    message = exc.format_message()
    if isinstance(exc, click.UsageError):
        ctx = exc.ctx
        path = ctx.command_path if ctx is not None else "lifecycle"
        return 2, f"{message}\n(see `{path} --help`)"
    return exc.exit_code, message


if __name__ == "__main__":
    sys.exit(main())
