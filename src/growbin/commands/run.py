"""`growbin worker` and `growbin demo`."""

from __future__ import annotations

from typing import Annotated

import typer

from growbin.commands.common import (
    DEFAULT_RABBITMQ_VERSION,
    err,
    live_rabbitmq_version,
    out,
    state_of,
)
from growbin.topology.model import Pool


def worker(
    ctx: typer.Context,
    profile: Annotated[str, typer.Option("--profile", "-p", help="Worker profile name.")],
    concurrency: Annotated[int | None, typer.Option(help="Override the profile's.")] = None,
    pool: Annotated[Pool | None, typer.Option(help="Override the profile's pool.")] = None,
    hostname: Annotated[str | None, typer.Option(help="Default: PROFILE@host.")] = None,
    loglevel: Annotated[str, typer.Option()] = "INFO",
) -> None:
    """Start a Celery worker for one profile of the topology.

    Refuses a topology with lint errors, and a vhost where the topology is not in force (the
    profile's queues, their policies, bindings, dead-lettering and alternate exchange).
    """
    from growbin.ops.logging import install_celery_logging
    from growbin.runtime.celery_app import create_app
    from growbin.runtime.registry import registrars
    from growbin.runtime.worker import worker_options
    from growbin.runtime.worker_hooks import install_worker_hooks
    from growbin.topology.verify import verify_before_start

    state = state_of(ctx)
    # the file's own problems first (lint), then whether the vhost carries it
    loaded = state.topology_file()
    options = worker_options(
        loaded.topology, profile, concurrency=concurrency, pool=pool, hostname=hostname
    )
    version = live_rabbitmq_version(state.settings) or DEFAULT_RABBITMQ_VERSION
    celery_app = create_app(
        state.settings, loaded, registrars=registrars(state.settings), rabbitmq_version=version
    )
    verify_before_start(
        state.settings,
        state.topology().topology,
        queues=options.queues,
        who=f"growbin worker --profile {profile}",
    )
    celery_app.conf.task_acks_late = options.acks_late
    install_worker_hooks(celery_app, state.settings, profile)
    install_celery_logging(json=state.settings.log.is_json)
    celery_app.worker_main(options.argv(loglevel=loglevel))


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
    from rich.live import Live

    from growbin.commands.scan_report import (
        close_live,
        print_blocks,
        progress_table,
        summary_table,
    )
    from growbin.scan.demo import EMBEDDED_UNAVAILABLE, run_scans, sample_photos

    state = state_of(ctx)
    loaded = state.topology()
    mode = "services" if services else "embedded"
    out.print(
        f"growbin demo: topology [bold]{loaded.topology.name}[/], {mode} mode, "
        f"providers {'offline' if not services else state.settings.providers}",
        highlight=False,
    )
    if not services:
        out.print(f"[dim]embedded default: {EMBEDDED_UNAVAILABLE}[/]", highlight=False)
    photos = sample_photos()
    with Live(progress_table([(p, None) for p in photos]), console=out) as live:
        outcomes = run_scans(
            state.settings,
            loaded,
            photos,
            embedded=not services,
            offline=not services,
            timeout=timeout,
            watch=lambda rows: live.update(progress_table(rows)),
        )
    close_live(out)
    out.print(summary_table(outcomes))
    out.line()
    print_blocks(out, outcomes)
    failed = [o for o in outcomes if not o.done]
    for outcome in failed:
        status = outcome.scan.get("status") if outcome.scan else "not accepted"
        error = outcome.error or (outcome.scan or {}).get("error")
        err.print(f"[red]{outcome.photo.name}: {status}: {error}[/]", highlight=False)
    if failed:
        raise typer.Exit(1)


def status(
    ctx: typer.Context,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh until interrupted.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Queues (depth, consumers, rates), dead letters by reason, worker profiles online."""
    from growbin.ops.status import status_command

    state = state_of(ctx)
    status_command(
        state.settings, state.topology().topology, watch=watch, interval=interval, fmt=fmt
    )
