"""The `growbin` command: the root, its global options, and where each command group lives."""

from __future__ import annotations

import sys
from typing import Annotated

import click
import typer
from rich.markup import escape

from growbin.api import commands as api_commands
from growbin.commands import deadletters, run, scan, topology
from growbin.commands.common import State, err
from growbin.errors import GrowbinError
from growbin.guard.commands import guard_app
from growbin.journal.commands import journal_app
from growbin.scheduler.commands import beat_command

app = typer.Typer(
    name="growbin",
    help="Growbin task platform: topology, workers and tools around Celery + RabbitMQ.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(topology.topology_app, name="topology")
app.add_typer(topology.config_app, name="config")
app.add_typer(deadletters.dlq_app, name="dlq")
app.add_typer(deadletters.db_app, name="db")
app.command()(run.worker)
app.command()(run.demo)
app.command()(scan.scan)
app.command()(run.status)
app.command("api")(api_commands.api_command)
app.add_typer(api_commands.apikey_app, name="apikey")
app.add_typer(guard_app, name="guard")
app.add_typer(journal_app, name="journal")
app.command("beat")(beat_command)


@app.callback()
def _root(
    ctx: typer.Context,
    topology: Annotated[
        str | None,
        typer.Option(
            "--topology",
            "-t",
            help="Preset name (production, slo, pipeline) or a YAML file; "
            "default GROWBIN_TOPOLOGY or production.",
        ),
    ] = None,
) -> None:
    ctx.obj = State(topology_override=topology)


def main() -> None:
    try:
        rv = app(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except GrowbinError as exc:
        # escaped: a message may hold "[ai.*]" (a binding), which rich would take for markup
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
