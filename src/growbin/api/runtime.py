"""Everything the API needs at run time, built once when the server starts (not at import).

Building connects to nothing: the Celery app, the database engine and the Redis client connect
on first use, so the API starts while a dependency is down and ``/readyz`` says which one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery
from kombu import Connection

from growbin.api.config import ApiConfig
from growbin.api.fetch import FetchPolicy, ImageFetcher, Resolver, system_resolver
from growbin.api.keys import api_secret
from growbin.api.tasks import TaskRegistry
from growbin.runtime.celery_app import create_app
from growbin.runtime.registry import registrars
from growbin.scan.context import ScanContext, attach_scan_context
from growbin.scan.images import MAX_BYTES
from growbin.settings import Settings
from growbin.topology.loader import LoadedTopology
from growbin.topology.model import Topology


def broker_vhost(broker_url: str) -> str:
    """The vhost the broker URL names: where this API's messages really go."""
    return str(Connection(broker_url).virtual_host or "/")


def publish_options(config: ApiConfig, base: dict[str, Any]) -> dict[str, Any]:
    """Celery settings that bound how long a refused or failed publish keeps a request waiting.

    Connect within ``publish_connect_timeout``; retry (reconnecting) ``publish_max_retries``
    times, 0.25 s then 0.5 s apart; read and write timeouts on the socket so a confirm that
    never comes (a broker blocked by an alarm) ends in ``publish_confirm_timeout`` seconds.
    """
    return {
        "broker_connection_timeout": config.publish_connect_timeout,
        "task_publish_retry_policy": {
            "max_retries": config.publish_max_retries,
            "interval_start": 0,
            "interval_step": 0.25,
            "interval_max": 0.5,
        },
        "broker_transport_options": {
            **base,
            "confirm_publish": True,
            "read_timeout": config.publish_confirm_timeout,
            "write_timeout": config.publish_confirm_timeout,
        },
    }


@dataclass
class ApiRuntime:
    settings: Settings
    config: ApiConfig
    loaded: LoadedTopology
    topology: Topology  # with the broker URL's vhost
    celery: Celery
    scans: ScanContext
    secret: bytes
    fetcher: ImageFetcher
    tasks: TaskRegistry

    @classmethod
    def start(
        cls,
        settings: Settings,
        loaded: LoadedTopology,
        config: ApiConfig,
        *,
        resolver: Resolver | None = None,
    ) -> ApiRuntime:
        secret = api_secret(settings)
        celery = create_app(settings, loaded, registrars=registrars(settings))
        celery.conf.update(
            publish_options(config, dict(celery.conf.broker_transport_options or {}))
        )
        scans = ScanContext.build(settings)
        attach_scan_context(celery, scans)
        vhost = broker_vhost(settings.broker_url.get_secret_value())
        fetcher = ImageFetcher(
            FetchPolicy.build(
                max_bytes=MAX_BYTES,
                timeout=config.fetch_timeout,
                max_redirects=config.fetch_max_redirects,
                allowed_hosts=config.fetch_allowed_hosts,
                trusted_networks=config.fetch_trusted_networks,
            ),
            resolver=resolver or system_resolver,
        )
        return cls(
            settings=settings,
            config=config,
            loaded=loaded,
            topology=loaded.topology.model_copy(update={"vhost": vhost}),
            celery=celery,
            scans=scans,
            secret=secret,
            fetcher=fetcher,
            tasks=TaskRegistry(scans.kv, ttl=config.task_record_ttl),
        )

    def close(self) -> None:
        self.celery.close()
        self.scans.engine.dispose()
