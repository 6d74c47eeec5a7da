"""The `growbin` command."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from growbin.ops.deadletters.filters import DeadLetterFilter
    from growbin.ops.deadletters.service import DeadLetterService

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
    from growbin.runtime.worker_hooks import install_worker_hooks

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
    install_worker_hooks(celery_app, state.settings, profile)
    celery_app.worker_main(options.argv(loglevel=loglevel))


@app.command()
def demo(
    ctx: typer.Context,
    services: Annotated[
        bool,
        typer.Option(
            "--services",
            help="Run on the RabbitMQ, Redis and PostgreSQL named by GROWBIN_* instead of the "
            "embedded default.",
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for all scans.")] = 120.0,
) -> None:
    """Run the sample photos through the whole scan pipeline and print each result."""
    from growbin.scan.demo import results_table, run_demo

    state = _state(ctx)
    loaded = state.topology()
    mode = "services" if services else "embedded"
    out.print(
        f"growbin demo: topology [bold]{loaded.topology.name}[/], {mode} mode, "
        f"providers {'offline' if not services else state.settings.providers}",
        highlight=False,
    )
    outcomes = run_demo(state.settings, loaded, out, embedded=not services, timeout=timeout)
    out.print(results_table(outcomes))
    for outcome in outcomes:
        result = outcome.scan.get("result")
        if isinstance(result, dict):
            out.print(f"[bold]{outcome.sample}[/]: {result.get('guidance')}", highlight=False)
    failed = [o for o in outcomes if o.scan.get("status") != "done"]
    for outcome in failed:
        err.print(
            f"[red]{outcome.sample}: {outcome.scan.get('status')}: {outcome.scan.get('error')}[/]"
        )
    if failed:
        raise typer.Exit(1)


dlq_app = typer.Typer(
    help="Dead letters: archive q.dlq in PostgreSQL, list, show, replay and purge.",
    no_args_is_help=True,
)
db_app = typer.Typer(help="The PostgreSQL schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(db_app, name="db")

TaskOption = Annotated[
    str | None, typer.Option("--task", help="Task name, or a glob like 'growbin.scan.*'.")
]
QueueOption = Annotated[str | None, typer.Option("--queue", help="Work queue it died in.")]
ReasonOption = Annotated[
    str | None,
    typer.Option(
        "--reason",
        help="failed, expired, overflowed, rejected, delivery-limit, unroutable or unknown.",
    ),
]
ExceptionOption = Annotated[
    str | None,
    typer.Option("--exception", help="Substring of the exception type or message."),
]
StateOption = Annotated[
    list[str] | None,
    typer.Option(
        "--state",
        help="queued, dropped, replayed, purged or all; repeatable (default: queued and dropped).",
    ),
]
OlderOption = Annotated[
    str | None, typer.Option("--older-than", help="Dead-lettered before this age: 30m, 2h, 1d.")
]
NewerOption = Annotated[
    str | None, typer.Option("--newer-than", help="Dead-lettered within this age: 30m, 2h, 1d.")
]
QueueNameOption = Annotated[
    str | None,
    typer.Option(
        "--queue-name",
        help="Queue to read: default the topology's dead-letter queue (q.dlq); "
        "q.unroutable for messages that matched no binding.",
    ),
]
FormatOption = Annotated[str, typer.Option("--format", help="text or json")]


def _dlq_filter(
    task: str | None,
    queue: str | None,
    reason: str | None,
    exception: str | None,
    state: list[str] | None,
    older_than: str | None,
    newer_than: str | None,
) -> DeadLetterFilter:
    from growbin.db.models import DeadLetterState
    from growbin.ops.deadletters.filters import DeadLetterFilter

    states = list(state or [])
    if any(s.strip().lower() == "all" for s in states):
        states = [s.value for s in DeadLetterState]
    return DeadLetterFilter.from_options(
        task=task,
        queue=queue,
        reason=reason,
        exception=exception,
        states=states,
        older_than=older_than,
        newer_than=newer_than,
    )


def _dlq_service(ctx: typer.Context, queue_name: str | None) -> DeadLetterService:
    from growbin.ops.deadletters.service import DeadLetterService

    state = _state(ctx)
    return DeadLetterService(state.settings, state.topology().topology, queue_name=queue_name)


def _check_format(fmt: str) -> None:
    if fmt not in ("text", "json"):
        raise typer.BadParameter(f"--format {fmt!r}: use text or json")


@dlq_app.command("sync")
def dlq_sync(
    ctx: typer.Context, queue_name: QueueNameOption = None, fmt: FormatOption = "text"
) -> None:
    """Archive every dead letter in the queue in PostgreSQL (the queue is left as it was)."""
    _check_format(fmt)
    with _dlq_service(ctx, queue_name) as service:
        counts = service.sync()
        scope = service.scope
    if fmt == "json":
        payload = {"queue": scope.dead_letter_queue, "vhost": scope.vhost, **asdict(counts)}
        out.print_json(json.dumps(payload))
        return
    where = f"{scope.dead_letter_queue} (vhost {scope.vhost})"
    states = ", ".join(f"{n} {s}" for s, n in counts.by_state.items())
    out.print(
        f"{where}: {counts.in_queue} in the queue, {counts.new} newly archived, "
        f"{counts.dropped} newly marked dropped. Archive: {states}.",
        highlight=False,
    )


@dlq_app.command("list")
def dlq_list(
    ctx: typer.Context,
    task: TaskOption = None,
    queue: QueueOption = None,
    reason: ReasonOption = None,
    exception: ExceptionOption = None,
    state: StateOption = None,
    older_than: OlderOption = None,
    newer_than: NewerOption = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    queue_name: QueueNameOption = None,
    fmt: FormatOption = "text",
) -> None:
    """Sync, then list dead letters, newest first (nothing is removed from the queue)."""
    from growbin.ops.deadletters import view

    _check_format(fmt)
    flt = _dlq_filter(task, queue, reason, exception, state, older_than, newer_than)
    with _dlq_service(ctx, queue_name) as service:
        records = service.list(flt, limit=limit)
        where = service.queue_name
    if fmt == "json":
        out.print_json(json.dumps([view.summary(r) for r in records]))
        return
    table = Table(title=f"dead letters in {where} ({flt.describe()})")
    table.add_column("id", no_wrap=True, min_width=12)
    for column in ("state", "reason", "task", "queue", "tries", "exception", "age"):
        table.add_column(column, overflow="fold")
    for r in records:
        table.add_row(
            r.dead_letter_id[:12],
            r.state,
            r.reason,
            r.task_name,
            r.queue,
            str(r.attempts),
            view.exception_line(r),
            view.age(r.dead_lettered_at),
        )
    out.print(table)
    if len(records) == limit:
        out.print(f"showing the newest {limit}; narrow with filters or raise --limit")


@dlq_app.command("show")
def dlq_show(
    ctx: typer.Context,
    dead_letter_id: Annotated[str, typer.Argument(help="Id, or a unique 6+ character prefix.")],
    queue_name: QueueNameOption = None,
    fmt: FormatOption = "text",
) -> None:
    """Everything about one dead letter: why it died, its traceback, headers and body."""
    from growbin.ops.deadletters import view

    _check_format(fmt)
    with _dlq_service(ctx, queue_name) as service:
        data = view.detail(service.show(dead_letter_id))
    if fmt == "json":
        out.print_json(json.dumps(data, default=str))
        return
    long_fields = ("traceback", "headers", "properties", "body")
    table = Table("field", "value", title=f"dead letter {data['dead_letter_id']}", show_lines=False)
    for name, value in data.items():
        if name not in long_fields:
            table.add_row(name, "" if value is None else str(value))
    out.print(table)
    for name in long_fields:
        value = data[name]
        text = json.dumps(value, indent=2, default=str) if isinstance(value, dict) else value
        out.rule(name)
        out.print(text or "(empty)", highlight=False, markup=False, soft_wrap=True)


@dlq_app.command("replay")
def dlq_replay(
    ctx: typer.Context,
    dead_letter_ids: Annotated[
        list[str] | None, typer.Argument(help="Ids (or unique prefixes) to replay.")
    ] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="Every queued and dropped dead letter.")
    ] = False,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Another route: 'exchange:routing_key', or a routing key on the original "
            "exchange. Default: the original exchange and routing key.",
        ),
    ] = None,
    task: TaskOption = None,
    queue: QueueOption = None,
    reason: ReasonOption = None,
    exception: ExceptionOption = None,
    state: StateOption = None,
    older_than: OlderOption = None,
    newer_than: NewerOption = None,
    queue_name: QueueNameOption = None,
    fmt: FormatOption = "text",
) -> None:
    """Send dead letters back with a fresh retry budget; select by ids, filters or --all.

    Each goes to its original exchange and routing key (or --to) with the same task id, and
    leaves the queue only after RabbitMQ confirmed the replay.
    """
    _check_format(fmt)
    flt = _dlq_filter(task, queue, reason, exception, state, older_than, newer_than)
    with _dlq_service(ctx, queue_name) as service:
        report = service.replay(
            dead_letter_ids or (), flt=None if flt.is_empty() else flt, replay_all=replay_all, to=to
        )
    if fmt == "json":
        out.print_json(json.dumps(asdict(report)))
    else:
        for item in report.replayed:
            source = " (from the archive)" if item.from_archive else ""
            out.print(
                f"replayed {item.dead_letter_id[:12]} {item.task_name} [{item.task_id}] -> "
                f"{item.exchange}:{item.routing_key}{source}",
                highlight=False,
            )
        for dead_letter_id, why in report.skipped:
            err.print(f"[yellow]skipped[/] {dead_letter_id[:12]}: {why}", highlight=False)
        out.print(f"{len(report.replayed)} replayed, {len(report.skipped)} skipped")
    if report.skipped:
        raise typer.Exit(1)


@dlq_app.command("purge")
def dlq_purge(
    ctx: typer.Context,
    dead_letter_ids: Annotated[
        list[str] | None, typer.Argument(help="Ids (or unique prefixes); default: the filters.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Really purge.")] = False,
    task: TaskOption = None,
    queue: QueueOption = None,
    reason: ReasonOption = None,
    exception: ExceptionOption = None,
    state: StateOption = None,
    older_than: OlderOption = None,
    newer_than: NewerOption = None,
    queue_name: QueueNameOption = None,
) -> None:
    """Remove dead letters from the queue; they stay archived as purged. Needs --yes.

    Without ids or filters: every queued and dropped one.
    """
    from growbin.ops.deadletters.errors import ConfirmationRequiredError

    flt = _dlq_filter(task, queue, reason, exception, state, older_than, newer_than)
    ids = dead_letter_ids or ()
    with _dlq_service(ctx, queue_name) as service:
        try:
            count = service.purge(flt, ids=ids, confirm=yes)
        except ConfirmationRequiredError as refused:
            # a person at a terminal may confirm here; a script must pass --yes
            if not (sys.stdin.isatty() and sys.stdout.isatty()):
                raise
            err.print(str(refused), highlight=False)
            if not typer.confirm("Purge them now?", default=False):
                raise typer.Exit(1) from None
            count = service.purge(flt, ids=ids, confirm=True)
        where = service.queue_name
    out.print(f"purged {count} dead letter(s) from {where}; their records stay, marked purged")


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply the database migrations (creates or updates every Growbin table)."""
    from growbin.db.migrate import upgrade
    from growbin.settings import mask_url

    settings = _state(ctx).settings
    reached = upgrade(settings, revision)
    url = mask_url(settings.database_url.get_secret_value())
    out.print(f"{url}: at revision {reached}", highlight=False)


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
