"""Every task module's registrar, in one place, so apps built anywhere know every task."""

from __future__ import annotations

from growbin.jobs import demo
from growbin.runtime.celery_app import TaskRegistrar

ALL_TASKS: tuple[TaskRegistrar, ...] = (demo.register,)
