"""The `growbin` command."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.table import Table

from growbin.errors import GrowbinError
from growbin.settings import Settings, load_settings
from growbin.topology import loader
from growbin.topology.findings import Finding, Severity, has_errors
from growbin.topology.lint import lint
from growbin.topology.model import Pool

app = typer.Typer(
    name="growbin",
    help="Growbin task platform: topology, workers and tools around Celery + RabbitMQ.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
topology_app = typer.Typer(
    help="Lint, plan, apply and export the queue topology.", no_args_is_help=True
)
config_app = typer.Typer(help="Show the settings in force.", no_args_is_help=True)
app.add_typer(topology_app, name="topology")
app.add_typer(config_app, name="config")

out = Console()
err = Console(stderr=True)

DEFAULT_RABBITMQ_VERSION = "3.13"


@dataclass
class State:
    topology_override: str | None = None
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            overrides = {"topology": self.topology_override} if self.topology_override else {}
            self._settings = load_settings(**overrides)
        return self._settings

    def topology(self) -> loader.LoadedTopology:
        return loader.load(self.settings.topology)


def _state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


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


def _live_rabbitmq_version(settings: Settings) -> str | None:
    from growbin.topology.broker_api import BrokerApi

    try:
        with BrokerApi(settings.rabbitmq_api_url.get_secret_value(), timeout=2.0) as api:
            return api.rabbitmq_version()
    except GrowbinError:
        return None


def _print_findings(findings: list[Finding]) -> None:
    styles = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
    for f in findings:
        out.print(
            f"{f.location}: [{styles[f.severity]}]{f.severity.value}[/] {f.code}: {f.message}",
            highlight=False,
            soft_wrap=True,
        )


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
    state = _state(ctx)
    loaded = state.topology()
    version = rabbitmq_version or _live_rabbitmq_version(state.settings) or DEFAULT_RABBITMQ_VERSION
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
        _print_findings(findings)
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
        _print_findings([f for f in findings if f.severity is Severity.ERROR])
        err.print("[bold red]error:[/] the topology has lint errors; nothing was changed.")
        raise typer.Exit(1)
    return loaded


@topology_app.command("plan")
def topology_plan(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Show what apply would change on the live broker; change nothing."""
    from growbin.topology.broker_api import BrokerApi
    from growbin.topology.plan import plan

    state = _state(ctx)
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
    """Lint, then bring the live broker in line with the topology (shows the plan first)."""
    from growbin.topology.broker_api import BrokerApi
    from growbin.topology.plan import apply

    state = _state(ctx)
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
    for line in result.render():
        out.print(line, highlight=False, soft_wrap=True)


@topology_app.command("export")
def topology_export(
    ctx: typer.Context,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="File to write; default stdout.")
    ] = None,
) -> None:
    """Write RabbitMQ definitions JSON (for `rabbitmqctl import_definitions`)."""
    from growbin.topology.export import export_definitions

    loaded = _state(ctx).topology()
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
    sys.stdout.write(loader.dump(_state(ctx).topology().topology))


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print the settings in force, secrets masked."""
    table = Table("setting", "value", title="growbin settings")
    for name, value in _state(ctx).settings.masked().items():
        table.add_row(f"GROWBIN_{name.upper()}", str(value))
    out.print(table)


@app.command()
def worker(
    ctx: typer.Context,
    profile: Annotated[str, typer.Option("--profile", "-p", help="Worker profile name.")],
    concurrency: Annotated[int | None, typer.Option(help="Override the profile's.")] = None,
    pool: Annotated[Pool | None, typer.Option(help="Override the profile's pool.")] = None,
    hostname: Annotated[str | None, typer.Option(help="Default: PROFILE@host.")] = None,
    loglevel: Annotated[str, typer.Option()] = "INFO",
) -> None:
    """Start a Celery worker for one profile of the topology (refuses a topology with errors)."""
    from growbin.runtime.celery_app import create_app
    from growbin.runtime.registry import registrars
    from growbin.runtime.worker import worker_options

    state = _state(ctx)
    loaded = state.topology()
    options = worker_options(
        loaded.topology, profile, concurrency=concurrency, pool=pool, hostname=hostname
    )
    version = _live_rabbitmq_version(state.settings) or DEFAULT_RABBITMQ_VERSION
    celery_app = create_app(
        state.settings, loaded, registrars=registrars(state.settings), rabbitmq_version=version
    )
    celery_app.conf.task_acks_late = options.acks_late
    celery_app.worker_main(options.argv(loglevel=loglevel))


@app.command()
def demo(ctx: typer.Context) -> None:
    """Run the scan pipeline on the embedded default (the pipeline lands with its own issue)."""
    state = _state(ctx)
    loaded = state.topology()
    findings = lint(loaded, rabbitmq_version=DEFAULT_RABBITMQ_VERSION)
    _print_findings([f for f in findings if f.severity is Severity.ERROR])
    out.print(
        f"topology {loaded.topology.name}: {len(loaded.topology.queues)} queues, "
        f"{len(loaded.topology.routes)} routes, {len(loaded.topology.profiles)} worker profiles; "
        f"{'lint errors' if has_errors(findings) else 'lint clean'}."
    )
    out.print(
        "The scan pipeline is not built yet: `growbin demo` checks the topology until it lands."
    )
    if has_errors(findings):
        raise typer.Exit(1)


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
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
