"""Everything the API needs at run time, built once when the server starts (not at import).

Building connects to nothing: the Celery app, the database engine and the Redis client connect
on first use, so the API starts while a dependency is down and ``/readyz`` says which one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery
from celery.states import READY_STATES
from sqlalchemy import select

from growbin.api.config import ApiConfig
from growbin.api.fetch import FetchPolicy, ImageFetcher, Resolver, system_resolver
from growbin.api.keys import api_secret
from growbin.api.publishing import Refusals, remember_destinations
from growbin.api.quotas import KeyQuotas, Quotas
from growbin.api.result_store import ResultStore, api_backend, checked_amqp
from growbin.api.tasks import TaskRegistry
from growbin.guard.store import GuardStore
from growbin.runtime.celery_app import create_app
from growbin.runtime.registry import registrars
from growbin.scan.context import ScanContext, attach_scan_context
from growbin.scan.images import MAX_BYTES
from growbin.scan.records import OPEN_STATUSES, Scan
from growbin.settings import Settings, mask_url
from growbin.topology.loader import LoadedTopology
from growbin.topology.model import Topology
from growbin.topology.vhost import bind_vhost


def publish_options(config: ApiConfig, base: dict[str, Any]) -> dict[str, Any]:
    """Celery settings that bound how long a refused or failed publish keeps a request waiting.

    Connect within ``publish_connect_timeout``; retry (reconnecting) ``publish_max_retries``
    times, 0.25 s then 0.5 s apart; read and write timeouts on the socket so a confirm that
    never comes (a broker blocked by an alarm) ends in ``publish_confirm_timeout`` seconds.
    The Redis result backend gets the same bounds: its default retries for ever-ish (20 times,
    ~19 s) and its sockets have no timeout, so a request could hang on a stalled Redis.
    """
    return {
        "redis_socket_connect_timeout": config.publish_connect_timeout,
        "redis_socket_timeout": config.publish_confirm_timeout,
        "result_backend_transport_options": {
            "retry_policy": {
                "max_retries": config.publish_max_retries,
                "interval_start": 0,
                "interval_step": 0.25,
                "interval_max": 0.5,
            }
        },
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
    refusals: Refusals
    result_store: ResultStore | None
    quotas: Quotas
    default_quotas: KeyQuotas
    metrics_registry: Any = None  # built on the first /metrics scrape

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
        result_store = _store(settings, config, settings.result_backend(), "result")
        records = _store(settings, config, settings.redis_url.get_secret_value(), "records")
        # the API never waits for a result: no subscription per task; and nothing is published
        # while Redis is down (set before the app's first publish builds its amqp object)
        celery.backend_cls = api_backend(settings.result_backend())
        celery.amqp_cls = checked_amqp(result_store.check if result_store else _nothing)
        remember_destinations()
        scans = ScanContext.build(settings)
        attach_scan_context(celery, scans)
        bound = bind_vhost(loaded, settings.broker_url.get_secret_value())
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
            topology=bound.topology,
            celery=celery,
            scans=scans,
            secret=secret,
            fetcher=fetcher,
            tasks=TaskRegistry(scans.kv, ttl=config.task_record_ttl, store=records),
            refusals=Refusals(topology=bound.topology, env=settings.env),
            result_store=result_store,
            quotas=_quotas(settings, config),
            default_quotas=KeyQuotas.defaults(config),
        )

    def finished(self, members: list[str]) -> set[str]:
        """Which in-flight members (``scan:<id>``, ``task:<id>``) have finished."""
        scans = {m.partition(":")[2]: m for m in members if m.startswith("scan:")}
        tasks = {m.partition(":")[2]: m for m in members if m.startswith("task:")}
        done: set[str] = set()
        if scans:
            with self.scans.session() as session:
                still = set(
                    session.scalars(
                        select(Scan.id).where(
                            Scan.id.in_(list(scans)), Scan.status.in_(OPEN_STATUSES)
                        )
                    )
                )
            done |= {member for ident, member in scans.items() if ident not in still}
        for ident, member in tasks.items():
            meta = self.celery.backend.get_task_meta(ident, cache=False)
            if str(meta.get("status")) in READY_STATES:
                done.add(member)
        return done

    def close(self) -> None:
        self.celery.close()
        self.scans.engine.dispose()
        self.quotas.close()
        for store in (self.result_store, self.tasks.store):
            if store is not None:
                store.close()


def _store(settings: Settings, config: ApiConfig, url: str, role: str) -> ResultStore | None:
    if not ResultStore.handles(url):
        return None  # another backend (the embedded default): Celery's own errors apply
    variable = (
        "GROWBIN_RESULT_BACKEND_URL"
        if role == "result" and settings.result_backend_url is not None
        else "GROWBIN_REDIS_URL"
    )
    return ResultStore(
        url, timeout=config.publish_connect_timeout, env=settings.env, variable=variable
    )


def _nothing() -> None:
    pass


def _quotas(settings: Settings, config: ApiConfig) -> Quotas:
    """The quotas' Redis (the guards' own, with the API's short timeouts); none when off or
    when there is no Redis (the embedded default)."""
    store = None
    url = settings.redis_url.get_secret_value()
    if config.quotas and url.startswith(("redis://", "rediss://", "unix://")):
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=config.publish_connect_timeout,
            socket_timeout=config.publish_confirm_timeout,
        )
        store = GuardStore(client, prefix=settings.guard_prefix, url=mask_url(url))
    return Quotas(
        store,
        in_flight_ttl=config.quota_in_flight_ttl,
        stream_ttl=config.sse_max_seconds + 60,
    )
