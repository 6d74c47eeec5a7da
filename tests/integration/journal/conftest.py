"""A PostgreSQL cluster of the test's own, on its own port, that a test may stop and start.

The shared PostgreSQL on 5432 is never stopped: other suites (and other people) use it. The
cluster itself lives in :mod:`tests.integration.services`, shared with the fault tests.
"""

from __future__ import annotations

import time

import pytest
from tests.integration.conftest import service_missing
from tests.integration.services import ServiceBinaryMissingError, TempPostgres

__all__ = ["TempPostgres", "temp_postgres", "wait_until"]


@pytest.fixture
def temp_postgres():
    """A fresh cluster (initdb), started and migrated to head; stopped and removed after."""
    from growbin.db.migrate import upgrade
    from growbin.settings import load_settings

    try:
        cluster = TempPostgres.create()
    except ServiceBinaryMissingError as exc:
        service_missing(str(exc))
    try:
        cluster.start()
        upgrade(load_settings(env="test"), url=cluster.url)
        yield cluster
    finally:
        cluster.close()


def wait_until(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
