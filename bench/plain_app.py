"""Bare Celery for the comparisons: one app, one queue, Celery's own defaults unless told.

    celery -A bench.plain_app worker -Q <BENCH_QUEUE> ...

BENCH_BROKER_URL, BENCH_QUEUE; BENCH_ACKS_LATE=1 and BENCH_PREFETCH for the throughput
comparison (the same settings as the growbin profile), nothing for the "plain one-queue setup";
BENCH_RESULTS=1 stores results as a growbin app does (to tell that cost from the platform's).
"""

from __future__ import annotations

import os

from bench.tasks import FUNCTIONS
from celery import Celery

QUEUE = os.environ.get("BENCH_QUEUE", "bench.plain")

app = Celery("bench-plain", broker=os.environ.get("BENCH_BROKER_URL", "memory://"))
app.conf.update(
    task_default_queue=QUEUE,
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    worker_hijack_root_logger=True,
)
if os.environ.get("BENCH_ACKS_LATE") == "1":
    app.conf.task_acks_late = True
if os.environ.get("BENCH_PREFETCH"):
    app.conf.worker_prefetch_multiplier = int(os.environ["BENCH_PREFETCH"])
if os.environ.get("BENCH_RESULTS") == "1":
    # what a growbin app stores: results in Redis with extended metadata
    app.conf.update(
        result_backend=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
        task_ignore_result=False,
        task_track_started=False,
        result_extended=True,
    )
if os.environ.get("BENCH_CONFIRMS") == "1":
    app.conf.broker_transport_options = {"confirm_publish": True}

for _name, _function in FUNCTIONS.items():
    app.task(name=f"bench.{_name}")(_function)
