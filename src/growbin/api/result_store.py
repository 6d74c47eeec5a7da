"""The result store (Redis) as the API sees it: reachable before a publish, and whether it
restarted empty.

Celery's Redis result backend subscribes to a task's result channel whenever a task is sent
(``backend.on_task_call``), so that ``result.get()`` could wait for it. The API never waits (it
reads states with ``get_task_meta``), so the subscription was pure cost, and with Redis down it
held the request ~19 s in the backend's reconnect loop before failing, reported as a broker
error. The API's Celery app builds its Redis backend without it (:func:`api_backend`), and
sends every task message after one bounded PING (:func:`checked_amqp`): a Redis outage is
refused at once, naming Redis, before anything is published.

Redis without AOF loses every key when it restarts: the ids the API issued and the results of
finished tasks. :meth:`ResultStore.restart` tells when that may have happened, so a 404 can say
so instead of claiming the id was never issued.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import redis
from celery import Celery
from celery.app import backends
from celery.app.amqp import AMQP
from celery.backends.redis import RedisBackend
from redis.backoff import NoBackoff
from redis.retry import Retry

from growbin.errors import ServiceUnavailableError
from growbin.service_hints import start_service_hint
from growbin.settings import Environment, mask_url

SERVICE = "Redis (the result store)"
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


class ResultStoreUnavailableError(ServiceUnavailableError):
    """Redis, where task states and results are kept, cannot be reached."""

    def __init__(self, url: str, reason: str, fix: str) -> None:
        super().__init__(SERVICE, url, reason, fix=fix)
        self.reason = reason
        self.fix = fix


@dataclass(frozen=True)
class StoreRestart:
    """Redis started ``seconds_ago`` and does not log every write (no AOF)."""

    started_at: float  # unix time
    seconds_ago: float


class ResultStore:
    """One Redis, probed with short timeouts and no retries (the caller is waiting)."""

    def __init__(self, url: str, *, timeout: float, env: Environment, variable: str) -> None:
        self.masked_url = mask_url(url)
        self.fix = start_service_hint(env, "Redis", variable)
        self.client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    @staticmethod
    def handles(url: str) -> bool:
        return urlsplit(url).scheme in REDIS_SCHEMES

    def check(self) -> None:
        """Raise :class:`ResultStoreUnavailableError` unless Redis answers a PING."""
        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise ResultStoreUnavailableError(
                self.masked_url, f"{type(exc).__name__}: {exc}", self.fix
            ) from exc

    def restart(self, within: float) -> StoreRestart | None:
        """When Redis started, if that was less than ``within`` seconds ago and it keeps no AOF.

        None when it persists every write, started long ago, or cannot be asked (a managed
        Redis may refuse INFO): then nothing is claimed.
        """
        try:
            server: dict[str, Any] = self.client.info("server")
            persistence: dict[str, Any] = self.client.info("persistence")
        except redis.RedisError:
            return None
        uptime = float(server.get("uptime_in_seconds", within))
        if int(persistence.get("aof_enabled", 0)) or uptime >= within:
            return None
        return StoreRestart(started_at=time.time() - uptime, seconds_ago=uptime)

    def close(self) -> None:
        self.client.close()


def api_backend(result_backend: str) -> Callable[..., Any]:
    """A backend factory for ``Celery.backend_cls``: Celery's backend for ``result_backend``;
    a Redis one without its result subscriptions.

    ``result.get()`` cannot be used with it (nothing is subscribed); the API reads states with
    ``get_task_meta``. Other backends keep their own ``on_task_call`` (the rpc backend declares
    its reply queue there).
    """

    def build(app: Celery, url: str | None = None) -> Any:
        cls, backend_url = backends.by_url(result_backend, app.loader)
        if isinstance(cls, type) and issubclass(cls, RedisBackend):
            cls = _without_subscription(cls)
        return cls(app=app, url=backend_url)

    return build


@cache
def _without_subscription(cls: type[Any]) -> type[Any]:
    def on_task_call(self: Any, producer: Any, task_id: str) -> None:
        pass  # Celery subscribes here to wait for the result; the API never waits

    def add_pending_result(self: Any, result: Any, *args: Any, **kwargs: Any) -> Any:
        # a group's result (even its freeze()) registers its members to be waited for: never
        # waited on here, and Celery would keep them in memory until their results arrive
        return result

    body = {"on_task_call": on_task_call, "add_pending_result": add_pending_result}
    return type(f"Api{cls.__name__}", (cls,), body)


def checked_amqp(before_publish: Callable[[], None]) -> type[Any]:
    """An ``amqp_cls`` for the API's Celery app: ``before_publish`` runs before every task
    message is sent (tasks that store no result too: a scan's steps keep their state in Redis).
    Its error propagates, so nothing is published and the caller refuses the request.
    """

    class ApiAMQP(AMQP):  # type: ignore[misc]
        def _create_task_sender(self) -> Callable[..., Any]:
            send: Callable[..., Any] = super()._create_task_sender()

            def send_task_message(producer: Any, name: str, message: Any, **kwargs: Any) -> Any:
                before_publish()
                return send(producer, name, message, **kwargs)

            return send_task_message

    return ApiAMQP
