"""`growbin worker` (and its probe), `growbin demo` and `growbin status`."""

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

worker_app = typer.Typer(
    help="Run a Celery worker for one profile of the topology, or probe the one on this host.",
    no_args_is_help=False,
)


@worker_app.callback(invoke_without_command=True)
def worker(
    ctx: typer.Context,
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="Worker profile name (required).")
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="Override the profile's.")] = None,
    pool: Annotated[Pool | None, typer.Option(help="Override the profile's pool.")] = None,
    hostname: Annotated[str | None, typer.Option(help="Default: PROFILE@host.")] = None,
    loglevel: Annotated[str, typer.Option()] = "INFO",
) -> None:
    """Start a Celery worker for one profile of the topology.

    Refuses a topology with lint errors, and a vhost where the topology is not in force (the
    profile's queues, their policies, bindings, dead-lettering and alternate exchange).
    `celery -A growbin worker --profile NAME` starts the same worker.
    """
    if ctx.invoked_subcommand is not None:
        return
    if profile is None:
        raise typer.BadParameter("name the worker profile to run", param_hint="'--profile'")
    from growbin.celery import build_app, prepare_worker
    from growbin.runtime.worker import worker_options

    state = state_of(ctx)
    # the file's own problems first (lint), then whether the vhost carries it
    loaded = state.topology_file()
    options = worker_options(
        loaded.topology, profile, concurrency=concurrency, pool=pool, hostname=hostname
    )
    version = live_rabbitmq_version(state.settings) or DEFAULT_RABBITMQ_VERSION
    celery_app = build_app(state.settings, loaded, rabbitmq_version=version)
    prepare_worker(celery_app, state.settings, options, who=f"growbin worker --profile {profile}")
    celery_app.worker_main(options.argv(loglevel=loglevel))


@worker_app.command("probe")
def probe(
    profile: Annotated[str, typer.Option("--profile", "-p", help="Worker profile name.")],
    hostname: Annotated[str | None, typer.Option(help="The worker's --hostname, if given.")] = None,
    max_age: Annotated[
        float | None, typer.Option(help="Seconds after which the record counts as stale.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Exit 0 when this host's worker of PROFILE is connected, consuming and not stalled.

    Reads the worker's progress file (GROWBIN_WORKER_PROGRESS_DIR); no broadcast, no broker.
    `growbin worker probe` answers before the rest of the command line loads (well under a
    second); this entry is the same check for callers that go through typer.
    """
    from growbin.commands.probe import main as probe_main

    argv = ["--profile", profile]
    if hostname:
        argv += ["--hostname", hostname]
    if max_age is not None:
        argv += ["--max-age", str(max_age)]
    if quiet:
        argv.append("--quiet")
    raise typer.Exit(probe_main(argv))


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
