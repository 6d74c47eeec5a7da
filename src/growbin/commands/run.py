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
    """Start a Celery worker for one profile of the topology (refuses a topology with errors)."""
    from growbin.ops.logging import install_celery_logging
    from growbin.runtime.celery_app import create_app
    from growbin.runtime.registry import registrars
    from growbin.runtime.worker import worker_options
    from growbin.runtime.worker_hooks import install_worker_hooks

    state = state_of(ctx)
    loaded = state.topology()
    options = worker_options(
        loaded.topology, profile, concurrency=concurrency, pool=pool, hostname=hostname
    )
    version = live_rabbitmq_version(state.settings) or DEFAULT_RABBITMQ_VERSION
    celery_app = create_app(
        state.settings, loaded, registrars=registrars(state.settings), rabbitmq_version=version
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
    from growbin.scan.demo import results_table, run_demo

    state = state_of(ctx)
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
