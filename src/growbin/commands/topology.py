"""`growbin topology ...` and `growbin config show`."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from growbin.commands.common import (
    DEFAULT_RABBITMQ_VERSION,
    State,
    err,
    live_rabbitmq_version,
    out,
    print_findings,
    state_of,
)
from growbin.topology import loader
from growbin.topology.findings import Severity, has_errors
from growbin.topology.lint import lint

topology_app = typer.Typer(
    help="Lint, plan, apply and export the queue topology.", no_args_is_help=True
)
config_app = typer.Typer(help="Show the settings in force.", no_args_is_help=True)


@topology_app.command("lint")
def topology_lint(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    rabbitmq_version: Annotated[
        str | None,
        typer.Option(help="Version to check against; default: ask the live broker, else 3.13."),
    ] = None,
) -> None:
    """Check the topology; exit 1 on errors."""
    state = state_of(ctx)
    loaded = state.topology_file()
    version = rabbitmq_version or live_rabbitmq_version(state.settings) or DEFAULT_RABBITMQ_VERSION
    findings = lint(loaded, rabbitmq_version=version)
    counts = {s: sum(1 for f in findings if f.severity is s) for s in Severity}
    if fmt == "json":
        payload = {
            "source": loaded.source,
            "rabbitmq_version": version,
            "counts": {s.value: n for s, n in counts.items()},
            "findings": [f.as_dict() for f in findings],
        }
        out.print_json(json.dumps(payload))
    elif fmt == "text":
        print_findings(findings)
        out.print(
            f"{loaded.source} (RabbitMQ {version}): {counts[Severity.ERROR]} error(s), "
            f"{counts[Severity.WARNING]} warning(s), {counts[Severity.INFO]} note(s)",
            highlight=False,
        )
    else:
        raise typer.BadParameter(f"--format {fmt!r}: use text or json")
    if has_errors(findings):
        raise typer.Exit(1)


def _checked_topology(state: State, version: str) -> loader.LoadedTopology:
    loaded = state.topology()
    findings = lint(loaded, rabbitmq_version=version)
    if has_errors(findings):
        print_findings([f for f in findings if f.severity is Severity.ERROR])
        err.print("[bold red]error:[/] the topology has lint errors; nothing was changed.")
        raise typer.Exit(1)
    return loaded


@topology_app.command("plan")
def topology_plan(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Show what apply would change on the broker URL's vhost; change nothing."""
    from growbin.topology.broker_api import BrokerApi
    from growbin.topology.plan import plan

    state = state_of(ctx)
    with BrokerApi(state.settings.rabbitmq_api_url.get_secret_value()) as api:
        loaded = _checked_topology(state, api.rabbitmq_version())
        result = plan(loaded.topology, api)
    _print_plan(result, fmt)


@topology_app.command("apply")
def topology_apply(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    allow_partial: Annotated[
        bool,
        typer.Option(help="Apply everything else when some queue needs a manual migration."),
    ] = False,
) -> None:
    """Lint, then bring the broker URL's vhost in line with the topology (shows the plan)."""
    from growbin.topology.broker_api import BrokerApi
    from growbin.topology.plan import apply

    state = state_of(ctx)
    with BrokerApi(state.settings.rabbitmq_api_url.get_secret_value()) as api:
        loaded = _checked_topology(state, api.rabbitmq_version())
        result = apply(loaded.topology, api, allow_partial=allow_partial)
    _print_plan(result, fmt)


def _print_plan(result: object, fmt: str) -> None:
    from growbin.topology.plan import Plan

    assert isinstance(result, Plan)
    if fmt == "json":
        out.print_json(json.dumps(result.to_dict()))
        return
    # markup off: rich would take a binding's "[ai.*]" for a style tag and drop it
    for line in result.render():
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    out.print(result.summary(), markup=False, highlight=False, soft_wrap=True)


@topology_app.command("export")
def topology_export(
    ctx: typer.Context,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="File to write; default stdout.")
    ] = None,
) -> None:
    """Write RabbitMQ definitions JSON for the broker URL's vhost (for import_definitions)."""
    from growbin.topology.export import export_definitions

    loaded = state_of(ctx).topology()
    text = json.dumps(export_definitions(loaded.topology), indent=2)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(text + "\n")


@topology_app.command("show")
def topology_show(ctx: typer.Context) -> None:
    """Print the topology in force as YAML (start your own file from a preset this way)."""
    sys.stdout.write(loader.dump(state_of(ctx).topology_file().topology))


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print the settings in force, secrets masked."""
    table = Table("setting", "value", title="growbin settings")
    for name, value in state_of(ctx).settings.masked().items():
        table.add_row(f"GROWBIN_{name.upper()}", str(value))
    out.print(table)
