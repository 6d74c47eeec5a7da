"""The Celery app for Celery's own tools: ``celery -A growbin worker|inspect|status|events|flower``.

Celery looks for ``-A growbin`` as ``growbin.app``, then ``growbin.celery`` (this module), then
its ``app`` attribute. That attribute is built on first access, from ``GROWBIN_*`` (the same
settings, topology and tasks as ``growbin worker``); building it connects to nothing: the lint
runs against RabbitMQ 3.13 (no management API call at import), the live vhost is compared when
a worker starts.

``celery -A growbin worker --profile NAME`` starts the same worker as
``growbin worker --profile NAME``: the profile's queues, pool, concurrency, prefetch, time
limits, acknowledgement mode and hostname (``NAME@host``) unless given on the command line, the
same refusal of a vhost where the topology is not applied, the same hooks (journal, metrics,
progress records) and logging. Task events stay off unless ``-E`` (or Flower, which turns them
on remotely as for any Celery app).
"""

from __future__ import annotations

from typing import Any

import click
from celery import Celery
from celery.apps.worker import Worker as CeleryWorker
from celery.bin.base import CeleryOption
from click.core import ParameterSource

from growbin.commands.common import DEFAULT_RABBITMQ_VERSION
from growbin.errors import GrowbinError
from growbin.ops.logging import install_celery_logging
from growbin.runtime.celery_app import create_app
from growbin.runtime.registry import registrars
from growbin.runtime.task_base import settings_of
from growbin.runtime.worker import WorkerOptions, worker_options
from growbin.runtime.worker_hooks import install_worker_hooks
from growbin.settings import Settings, load_settings
from growbin.topology import loader
from growbin.topology.loader import LoadedTopology
from growbin.topology.model import Pool
from growbin.topology.verify import verify_before_start
from growbin.topology.vhost import bind_vhost

# Pools that must patch the standard library before anything else runs: Celery's CLI does it
# while it parses -P, which is too early for a profile to decide.
_EARLY_PATCHING = (Pool.GEVENT, Pool.EVENTLET)


def build_app(
    settings: Settings, loaded: LoadedTopology, *, rabbitmq_version: str = DEFAULT_RABBITMQ_VERSION
) -> Celery:
    """The app of every growbin worker: growbin's tasks on the topology, profile-aware worker."""
    app = create_app(
        settings, loaded, registrars=registrars(settings), rabbitmq_version=rabbitmq_version
    )
    app.growbin_loaded = loaded
    app.user_options["worker"].add(
        CeleryOption(
            ["--profile"],
            help="The growbin worker profile to run (its queues, pool, concurrency, prefetch "
            "and time limits).",
            help_group="Growbin Options",
        )
    )
    app.Worker = app.subclass_with_self(GrowbinWorker)
    return app


def prepare_worker(app: Celery, settings: Settings, options: WorkerOptions, *, who: str) -> None:
    """What every growbin worker does before Celery starts it, whichever command started it.

    Refuses (raises) when the live vhost does not carry the topology the profile depends on.
    """
    loaded: LoadedTopology = app.growbin_loaded
    topology = bind_vhost(loaded, settings.broker_url.get_secret_value()).topology
    verify_before_start(settings, topology, queues=options.queues, who=who)
    app.conf.task_acks_late = options.acks_late
    install_worker_hooks(app, settings, options.profile)
    install_celery_logging(json=settings.log.is_json)
    app.growbin_prepared = options.profile


class GrowbinWorker(CeleryWorker):  # type: ignore[misc]
    """Celery's worker program, started for one profile of the topology (``--profile``)."""

    def __init__(
        self, app: Celery | None = None, hostname: str | None = None, **kwargs: Any
    ) -> None:
        app = app or self.app
        profile = kwargs.pop("profile", None)
        if getattr(app, "growbin_prepared", None) is None:
            # `celery -A growbin worker`; `growbin worker` prepared the app itself
            hostname = self._apply_profile(app, profile, hostname, kwargs)
        super().__init__(app=app, hostname=hostname, **kwargs)

    @staticmethod
    def _apply_profile(
        app: Celery, profile: str | None, hostname: str | None, kwargs: dict[str, Any]
    ) -> str | None:
        ctx = click.get_current_context(silent=True)

        def given(name: str) -> bool:
            if ctx is None:
                return kwargs.get(name) is not None
            return ctx.get_parameter_source(name) not in (
                None,
                ParameterSource.DEFAULT,
                ParameterSource.DEFAULT_MAP,
            )

        settings = settings_of(app)
        loaded: LoadedTopology = app.growbin_loaded
        known = ", ".join(loaded.topology.profiles) or "(none)"
        if not profile:
            raise click.UsageError(
                "a growbin worker runs one profile of the topology: add --profile NAME "
                f"(topology {loaded.topology.name!r} has: {known})",
                ctx,
            )
        try:
            options = worker_options(
                loaded.topology,
                profile,
                concurrency=int(kwargs["concurrency"]) if given("concurrency") else None,
                hostname=hostname if given("hostname") else None,
            )
            if options.pool in _EARLY_PATCHING and not given("pool"):
                raise click.UsageError(
                    f"profile {profile!r} uses the {options.pool.value} pool, which must patch "
                    f"Python before Celery starts: add -P {options.pool.value}",
                    ctx,
                )
            prepare_worker(
                app, settings, options, who=f"celery -A growbin worker --profile {profile}"
            )
        except GrowbinError as exc:
            failure = click.ClickException(str(exc))
            failure.exit_code = exc.exit_code  # type: ignore[misc]  # a per-error code
            raise failure from None
        defaults = {
            "queues": list(options.queues),
            "pool": options.pool.value,
            "concurrency": options.concurrency,
            "prefetch_multiplier": options.prefetch_multiplier,
            "time_limit": options.time_limit,
            "soft_time_limit": options.soft_time_limit,
            "without_gossip": True,
            "without_mingle": True,
            "loglevel": "INFO",  # growbin worker's (Celery's own default, WARNING, hides "ready")
        }
        for name, value in defaults.items():
            if not given(name):
                kwargs[name] = value
        return options.hostname


_app: Celery | None = None


def __getattr__(name: str) -> Any:
    """``app``, built once on first access: importing connects to nothing."""
    global _app
    if name == "app":
        if _app is None:
            settings = load_settings()
            _app = build_app(settings, loader.load(settings.topology))
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
