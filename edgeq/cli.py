"""The `edgeq` command line: each subcommand lives beside the code it drives."""

from __future__ import annotations

import sys

import click

from edgeq import __version__
from edgeq.errors import EdgeqError

INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C


class _Group(click.Group):
    """Turns EdgeqError into one clear line on stderr and its exit code (no traceback); Ctrl-C
    ends with 130 once every cleanup (device processes, workdirs, temp files) has run."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EdgeqError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            sys.exit(INTERRUPTED)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgeq")
def main() -> None:
    """edgeq: quantize -> pack -> blob -> target config -> runtime -> device runner."""


def _register() -> None:
    """Subcommands are defined in their own modules; this is the one list of them."""
    from edgeq import commands

    for command in commands.ALL:
        main.add_command(command)


_register()
if __name__ == "__main__":
    main()
