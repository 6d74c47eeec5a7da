"""`growbin dlq ...` and `growbin db ...`."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from growbin.commands.common import err, out, state_of

if TYPE_CHECKING:
    from growbin.ops.deadletters.filters import DeadLetterFilter
    from growbin.ops.deadletters.service import DeadLetterService

dlq_app = typer.Typer(
    help="Dead letters: archive q.dlq in PostgreSQL, list, show, replay and purge.",
    no_args_is_help=True,
)
db_app = typer.Typer(help="The PostgreSQL schema (Alembic migrations).", no_args_is_help=True)

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
        help="queued, dropped, replayed, purged, superseded or all; repeatable (default: "
        "queued and dropped).",
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
    from growbin.ops.deadletters.filters import DeadLetterFilter

    return DeadLetterFilter.from_options(
        task=task,
        queue=queue,
        reason=reason,
        exception=exception,
        states=state,
        older_than=older_than,
        newer_than=newer_than,
    )


def _dlq_service(ctx: typer.Context, queue_name: str | None) -> DeadLetterService:
    from growbin.ops.deadletters.service import DeadLetterService

    state = state_of(ctx)
    return DeadLetterService(state.settings, state.topology().topology, queue_name=queue_name)


def _check_format(fmt: str) -> None:
    if fmt not in ("text", "json"):
        raise typer.BadParameter(f"--format {fmt!r}: use text or json")


@dlq_app.command("sync")
def dlq_sync(
    ctx: typer.Context, queue_name: QueueNameOption = None, fmt: FormatOption = "text"
) -> None:
    """Archive every dead letter in the queue in PostgreSQL; reconcile scans (as the beat does).

    The queue is left as it was, except for dead letters whose task succeeded since: they are
    closed as superseded and their stale message leaves the queue. Scans whose step died but
    were never marked failed (their hook could not reach PostgreSQL) are marked failed now.
    """
    from growbin.jobs.maintenance import sync_dead_letters

    _check_format(fmt)
    state = state_of(ctx)
    counts = sync_dead_letters(state.settings, state.topology().topology, queue_name=queue_name)
    if fmt == "json":
        out.print_json(json.dumps(counts))
        return
    where = f"{counts['queue']} (vhost {counts['vhost']})"
    states = ", ".join(f"{n} {s}" for s, n in counts["by_state"].items())
    bound = counts["stall_bound"]
    stall = f"{bound:.0f}s without progress" if bound is not None else "off (no bound)"
    out.print(
        f"{where}: {counts['in_queue']} in the queue, {counts['new']} newly archived, "
        f"{counts['dropped']} newly marked dropped, {counts['superseded']} superseded (their "
        f"task succeeded later; removed from the queue). Archive: {states}. Scans failed: "
        f"{counts['scans_failed']} from dead letters, {counts['scans_stalled']} stalled "
        f"(stall sweep: {stall}).",
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
    leaves the queue only after RabbitMQ confirmed the replay. A replayed or superseded one
    (its task succeeded after it was dead-lettered) is refused with the reason; exit code 1.
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

    settings = state_of(ctx).settings
    reached = upgrade(settings, revision)
    url = mask_url(settings.database_url.get_secret_value())
    out.print(f"{url}: at revision {reached}", highlight=False)
