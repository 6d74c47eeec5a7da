"""`growbin beat`: Celery beat on the topology's schedule, one active however many run."""

from __future__ import annotations

from typing import Annotated

import redis
import typer

from growbin.commands.common import DEFAULT_RABBITMQ_VERSION, live_rabbitmq_version, state_of
from growbin.errors import ServiceUnavailableError
from growbin.scheduler.config import BeatConfig
from growbin.settings import Settings, mask_url
from growbin.topology.loader import LoadedTopology


def run_beat(
    settings: Settings,
    loaded: LoadedTopology,
    config: BeatConfig,
    *,
    loglevel: str = "INFO",
    rabbitmq_version: str = DEFAULT_RABBITMQ_VERSION,
) -> None:
    """Build the app, check Redis and the vhost, and run beat until it is stopped.

    Refuses to start when the queues the schedule publishes to are not as the topology says
    (see :mod:`growbin.topology.verify`). Stops on SIGTERM or Ctrl-C.
    """
    from growbin.runtime.celery_app import create_app
    from growbin.runtime.registry import registrars
    from growbin.scheduler.lock import LeaderLock
    from growbin.scheduler.schedule import beat_schedule
    from growbin.scheduler.scheduler import BeatRuntime, LeaderScheduler
    from growbin.topology.verify import published_queues, verify_before_start
    from growbin.topology.vhost import bind_vhost

    app = create_app(
        settings, loaded, registrars=registrars(settings), rabbitmq_version=rabbitmq_version
    )
    app.conf.beat_schedule = beat_schedule(loaded.topology)
    redis_url = settings.redis_url.get_secret_value()
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=5)
    try:
        try:
            client.ping()
        except redis.RedisError as exc:
            raise ServiceUnavailableError(
                "Redis",
                mask_url(redis_url),
                str(exc),
                fix="start Redis or point GROWBIN_REDIS_URL at it: the beat lock lives there",
            ) from exc
        topology = bind_vhost(loaded, settings.broker_url.get_secret_value()).topology
        tasks = [entry.task for entry in topology.schedule.values()]
        verify_before_start(
            settings, topology, queues=published_queues(topology, tasks), who="growbin beat"
        )
        namespace = config.namespace(topology.name, settings.broker_url.get_secret_value())
        app.growbin_beat = BeatRuntime(config, LeaderLock(client, namespace, config.lock_timeout))
        app.Beat(scheduler=LeaderScheduler, loglevel=loglevel, quiet=True).run()
    finally:
        client.close()
        app.close()


def beat_command(
    ctx: typer.Context,
    loglevel: Annotated[str, typer.Option()] = "INFO",
    lock_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds the active scheduler's lock lasts without renewal (a standby takes "
            "over within this plus a second); default GROWBIN_BEAT_LOCK_TIMEOUT or 30."
        ),
    ] = None,
) -> None:
    """Run the topology's schedule (Celery beat); start several, exactly one sends."""
    state = state_of(ctx)
    overrides = {"lock_timeout": lock_timeout} if lock_timeout is not None else {}
    version = live_rabbitmq_version(state.settings) or DEFAULT_RABBITMQ_VERSION
    run_beat(
        state.settings,
        state.topology(),
        state.settings.beat.model_copy(update=overrides),
        loglevel=loglevel,
        rabbitmq_version=version,
    )
