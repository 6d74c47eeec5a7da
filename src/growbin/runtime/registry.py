"""Every task module's registrar, in one place, so apps built anywhere know every task.

A registrar defines its tasks with ``@app.task(name=..., shared=False)``: Celery's default
(shared) adds a task to every app created later in the process, with the first app's closure,
so a second app (a test, the API next to a worker) would run tasks bound to the first one.
"""

from __future__ import annotations

import importlib

from growbin.errors import ConfigError
from growbin.jobs import analytics, cleanup, demo, external, maintenance
from growbin.journal import tasks as journal_tasks
from growbin.runtime.celery_app import TaskRegistrar
from growbin.scan import pipeline
from growbin.settings import Settings

ALL_TASKS: tuple[TaskRegistrar, ...] = (
    demo.register,
    maintenance.register,
    pipeline.register,
    external.register,
    analytics.register,
    cleanup.register,
    journal_tasks.register,
)


def registrars(settings: Settings) -> tuple[TaskRegistrar, ...]:
    """Growbin's own tasks plus those of the modules named in GROWBIN_TASK_MODULES."""
    extra: list[TaskRegistrar] = []
    for name in filter(None, (m.strip() for m in settings.task_modules.split(","))):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(
                f"GROWBIN_TASK_MODULES names {name!r}, which cannot be imported ({exc}): "
                "fix the module path or PYTHONPATH"
            ) from None
        register = getattr(module, "register", None)
        if not callable(register):
            raise ConfigError(
                f"GROWBIN_TASK_MODULES names {name!r}, which has no register(app) function: "
                "add one that defines the module's tasks on the app it is given"
            )
        extra.append(register)
    return (*ALL_TASKS, *extra)
