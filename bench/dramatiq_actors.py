"""Dramatiq on the same RabbitMQ, running the same no-op as the Celery workers.

    dramatiq bench.dramatiq_actors --processes 2 --threads 1

BENCH_BROKER_URL names the vhost; BENCH_PREFETCH sets how many messages a thread reserves.
"""

from __future__ import annotations

import os

import dramatiq
from bench.tasks import count as count_task
from dramatiq.brokers.rabbitmq import RabbitmqBroker

broker = RabbitmqBroker(url=os.environ.get("BENCH_BROKER_URL", "amqp://127.0.0.1:5672"))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench_dramatiq", max_retries=0)
def count(key: str) -> None:
    count_task(key)
