"""`celery -A growbin`: Celery finds the app, and building it connects to nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

# Every outgoing connection raises; the broker, Redis and management URLs point at a closed port.
NO_NETWORK = textwrap.dedent(
    """
    import socket, sys

    def refuse(*args, **kwargs):
        raise AssertionError(f"connected to {args!r} at import")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse

    from celery.app.utils import find_app

    app = find_app("growbin")
    from growbin.celery import app as same
    assert app is same, (app, same)
    queues = sorted(q.name for q in app.conf.task_queues)
    print(app.main, ",".join(queues), app.conf.worker_send_task_events)
    print("--profile" in [o.opts[0] for o in app.user_options["worker"]])
    print(type(app.Worker).__name__, app.Worker.__mro__[1].__name__)
    """
)


def env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "GROWBIN_ENV": "test",
        "GROWBIN_BROKER_URL": "amqp://guest:guest@127.0.0.1:1//",
        "GROWBIN_RABBITMQ_API_URL": "http://guest:guest@127.0.0.1:1/api",
        "GROWBIN_REDIS_URL": "redis://127.0.0.1:1/0",
        **extra,
    }


def test_celery_finds_the_growbin_app_and_building_it_connects_to_nothing():
    proc = subprocess.run(
        [sys.executable, "-c", NO_NETWORK],
        env=env(GROWBIN_TOPOLOGY="slo"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    first, second, third = proc.stdout.splitlines()
    # the topology from GROWBIN_TOPOLOGY, task events off by default
    assert first == "growbin-slo q.bulk,q.dlq,q.external,q.fast,q.sched,q.unroutable False"
    assert second == "True"
    assert third == "type GrowbinWorker"


def test_celery_worker_without_a_profile_names_the_option_and_the_profiles():
    proc = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "growbin", "worker"],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "add --profile NAME" in proc.stderr and "api, ai, batch" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_celery_worker_with_an_unknown_profile_says_which_exist():
    proc = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "growbin", "worker", "--profile", "aii"],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "unknown worker profile 'aii'" in proc.stderr and "Did you mean 'ai'" in proc.stderr
    assert "Traceback" not in proc.stderr
