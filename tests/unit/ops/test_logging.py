"""Structured logs: the scan id, task id and queue on every line a task writes."""

from __future__ import annotations

import io
import json
import logging

import pytest
from celery import chain
from pydantic import SecretStr

from growbin.ops.logging import (
    JsonFormatter,
    TaskContextFilter,
    TextFormatter,
    install_celery_logging,
    scan_id_of,
    setup_logging,
)
from growbin.ops.logging_config import LoggingConfig
from growbin.runtime.celery_app import create_app
from growbin.settings import Settings
from growbin.topology import loader

STEPS = ("preprocess", "classify", "rules", "guidance", "save")


@pytest.fixture
def root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def stream(root_logging):
    handler = setup_logging(json=True, level="INFO")
    buffer = io.StringIO()
    handler.setStream(buffer)
    return buffer


def _steps(app):
    log = logging.getLogger("growbin.scan.test")

    @app.task(name="growbin.scan.preprocess", shared=False)
    def preprocess(scan_id):
        log.info("preprocessed")
        return {"scan_id": scan_id}

    for step in STEPS[1:]:

        def body(state, _step=step):
            log.info("%s done", _step)
            return state

        app.task(name=f"growbin.scan.{step}", shared=False)(body)


@pytest.fixture
def app():
    settings = Settings(
        broker_url=SecretStr("memory://"), result_backend_url=SecretStr("cache+memory://")
    )
    celery_app = create_app(settings, loader.load("production"), registrars=(_steps,))
    celery_app.conf.task_always_eager = True
    yield celery_app
    celery_app.close()


def test_one_scans_lines_across_its_steps_share_its_scan_id_as_json(app, stream):
    chain(*[app.signature(f"growbin.scan.{s}") for s in STEPS]).apply(args=("scan-42",))
    logging.getLogger("growbin.api").info("outside any task")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    in_tasks = [line for line in lines if line["logger"] == "growbin.scan.test"]
    assert [line["message"] for line in in_tasks] == [
        "preprocessed",
        "classify done",
        "rules done",
        "guidance done",
        "save done",
    ]
    assert {line["scan_id"] for line in in_tasks} == {"scan-42"}
    assert [line["task_name"] for line in in_tasks] == [f"growbin.scan.{s}" for s in STEPS]
    assert len({line["task_id"] for line in in_tasks}) == 5
    assert {line["queue"] for line in in_tasks} == {"q.ai"}
    outside = lines[-1]
    assert outside["message"] == "outside any task"
    assert "scan_id" not in outside and "task_id" not in outside


def test_a_line_keeps_its_extras_and_its_exception(stream):
    try:
        raise ValueError("bad photo")
    except ValueError:
        logging.getLogger("growbin.x").exception("failed", extra={"attempt": 2})
    (line,) = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert line["level"] == "ERROR" and line["attempt"] == 2
    assert "ValueError: bad photo" in line["exc"]


@pytest.mark.parametrize(
    ("task", "args", "kwargs", "expected"),
    [
        ("growbin.scan.preprocess", ("s-1",), {}, "s-1"),
        ("growbin.scan.rules", ({"scan_id": "s-2", "phash": "ab"},), {}, "s-2"),
        ("growbin.jobs.report_generate", (), {"scan_id": "s-3"}, "s-3"),
        ("growbin.testing.flaky", ("some-key",), {}, None),  # a key, not a scan
        ("growbin.scan.save", (), {}, None),
    ],
)
def test_the_scan_id_comes_from_a_scan_steps_first_argument_or_a_scan_id_field(
    task, args, kwargs, expected
):
    assert scan_id_of(task, args, kwargs) == expected


def test_text_lines_name_the_task_and_scan_when_a_task_is_running():
    record = logging.LogRecord("growbin.x", logging.INFO, __file__, 1, "hello", None, None)
    record.task_id, record.task_name, record.scan_id = "t-1", "growbin.scan.rules", "s-9"
    assert (
        TextFormatter()
        .format(record)
        .endswith("INFO growbin.x growbin.scan.rules[t-1] scan=s-9 hello")
    )
    plain = logging.LogRecord("growbin.x", logging.INFO, __file__, 1, "hello", None, None)
    TaskContextFilter().filter(plain)
    assert TextFormatter().format(plain).endswith("INFO growbin.x hello")
    assert json.loads(JsonFormatter().format(plain))["message"] == "hello"


def test_setting_up_twice_replaces_the_handler_instead_of_doubling_lines(root_logging):
    setup_logging(json=False, level="DEBUG")
    setup_logging(json=True, level="WARNING")
    mine = [h for h in logging.getLogger().handlers if h.get_name() == "growbin"]
    assert len(mine) == 1 and isinstance(mine[0].formatter, JsonFormatter)
    assert logging.getLogger().level == logging.WARNING


def test_celery_hands_its_logging_setup_to_growbin(root_logging):
    from celery import signals

    before = len(signals.setup_logging.receivers)
    install_celery_logging(json=True)
    try:
        signals.setup_logging.send(sender=None, loglevel=logging.ERROR)
        mine = [h for h in logging.getLogger().handlers if h.get_name() == "growbin"]
        assert isinstance(mine[0].formatter, JsonFormatter)
        assert logging.getLogger().level == logging.ERROR
    finally:
        del signals.setup_logging.receivers[before:]
        signals.setup_logging.sender_receivers_cache.clear()


def test_the_log_format_and_level_come_from_growbin_log_variables(monkeypatch):
    assert not LoggingConfig().is_json
    monkeypatch.setenv("GROWBIN_LOG_FORMAT", "json")
    monkeypatch.setenv("GROWBIN_LOG_LEVEL", "warning")
    config = LoggingConfig()
    assert config.is_json and config.level == "warning"
