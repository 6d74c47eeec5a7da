"""The task hooks a `growbin worker` installs at start (journal, metrics, ...).

Each capability adds its hooks here, so a worker gets them all from one place. Hooks are
created in the worker's main process before the pool forks; anything that holds a connection
or a file must open it lazily, per process.
"""

from __future__ import annotations

from celery import Celery

from growbin.journal.hooks import worker_journal
from growbin.ops.metrics_worker import worker_metrics
from growbin.runtime.hooks import SignalAdapter, TaskHooks, install_hooks
from growbin.settings import Settings


def build_worker_hooks(app: Celery, settings: Settings, profile: str) -> list[TaskHooks]:
    hooks: list[TaskHooks] = []
    hooks.append(worker_metrics(app, settings, profile))
    if (journal := worker_journal(app, settings)) is not None:
        hooks.append(journal)
    return hooks


def install_worker_hooks(app: Celery, settings: Settings, profile: str) -> SignalAdapter:
    return install_hooks(app, build_worker_hooks(app, settings, profile))
