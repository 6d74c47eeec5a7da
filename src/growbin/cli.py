"""The `growbin` command: the root, its global options, and where each command group lives.

`growbin worker probe` is answered before anything else is imported (see
:mod:`growbin.commands.probe`): orchestrators run it every few seconds and it must take well
under a second, while importing the whole command line takes seconds. So this module imports
the command groups inside :func:`build_app`, and evaluates its annotations at definition time
(no ``from __future__ import annotations``: typer reads them, and ``typer`` is imported late).
"""

import sys
from typing import TYPE_CHECKING, Annotated, Any

from growbin.commands.probe import probe_args
from growbin.errors import GrowbinError

if TYPE_CHECKING:
    import typer


def build_app() -> "typer.Typer":
    import typer

    from growbin.api import commands as api_commands
    from growbin.commands import deadletters, deploy, run, scan, topology, up
    from growbin.commands.common import State
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
    app.add_typer(run.worker_app, name="worker")
    app.command()(run.demo)
    app.command()(scan.scan)
    app.command()(run.status)
    app.command("api")(api_commands.api_command)
    app.add_typer(api_commands.apikey_app, name="apikey")
    app.add_typer(guard_app, name="guard")
    app.add_typer(journal_app, name="journal")
    app.command("beat")(beat_command)
    app.command("up")(up.up)
    app.add_typer(deploy.deploy_app, name="deploy")

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

    return app


def __getattr__(name: str) -> Any:
    # `growbin.cli.app` for tools that look for the typer app (docs generators, tests)
    if name == "app":
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    probe = probe_args(sys.argv[1:])
    if probe is not None:
        from growbin.commands.probe import main as probe_main

        sys.exit(probe_main(probe))
    app = build_app()
    # Standalone mode: typer handles its own usage errors, --help, Exit and Abort (the usage
    # line and exit 2 for a typo) with whichever click it ships; typer 0.2x vendors click, so
    # catching `click.ClickException` here would miss them. Only our own errors come out.
    try:
        app()
    except GrowbinError as exc:
        from rich.markup import escape

        from growbin.commands.common import err

        # escaped: a message may hold "[ai.*]" (a binding), which rich would take for markup
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
