"""The signal adapter, with a real worker thread on Celery's in-memory transport."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from pydantic import SecretStr

from growbin.runtime.celery_app import create_app
from growbin.runtime.hooks import BaseHooks, install_hooks
from growbin.runtime.registry import ALL_TASKS
from growbin.settings import Settings
from growbin.topology import loader


class Recorder(BaseHooks):
    def __init__(self):
        self.events = []

    def received(self, event):
        self.events.append(("received", event))

    def started(self, event):
        self.events.append(("started", event))

    def succeeded(self, event):
        self.events.append(("succeeded", event))

    def failed(self, event):
        self.events.append(("failed", event))


class Broken(BaseHooks):
    def started(self, event):
        raise RuntimeError("a hook that breaks must not break the task")


def _boom(app):
    @app.task(name="growbin.demo.boom", shared=False)
    def boom():
        raise ValueError("bad input")


@pytest.fixture
def app():
    settings = Settings(
        broker_url=SecretStr("memory://"), result_backend_url=SecretStr("cache+memory://")
    )
    celery_app = create_app(settings, loader.load("production"), registrars=(*ALL_TASKS, _boom))
    celery_app.conf.broker_transport_options = {"polling_interval": 0.01}
    yield celery_app
    celery_app.close()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def test_hooks_see_a_task_received_started_and_succeeded_with_its_queue(app):
    recorder = Recorder()
    adapter = install_hooks(app, [Broken(), recorder])
    try:
        with start_worker(app, pool="threads", perform_ping_check=False, queues=["q.api"]):
            task_id = app.send_task("growbin.demo.add", args=(1, 2)).id
            assert wait_for(lambda: any(k == "succeeded" for k, _ in recorder.events))
    finally:
        adapter.disconnect()
    kinds = [k for k, e in recorder.events if e.task_id == task_id]
    assert kinds == ["received", "started", "succeeded"]
    done = recorder.events[-1][1]
    assert done.task_name == "growbin.demo.add"
    assert done.queue == "q.api" and done.routing_key == "api.demo"
    assert done.runtime is not None and done.runtime >= 0


def test_hooks_see_a_failure_with_its_error(app):
    recorder = Recorder()
    adapter = install_hooks(app, [recorder])
    try:
        with start_worker(app, pool="threads", perform_ping_check=False, queues=["q.api"]):
            app.send_task("growbin.demo.boom")
            assert wait_for(lambda: any(k == "failed" for k, _ in recorder.events))
    finally:
        adapter.disconnect()
    failed = next(e for k, e in recorder.events if k == "failed")
    assert failed.error == "ValueError: bad input"
