"""Private Redis and PostgreSQL servers for fault tests: killed and restarted at will.

Each fixture skips the test locally (fails it with CI=true) when the server binary is missing,
and stops and removes its server afterwards, pass or fail.
"""

from __future__ import annotations

import pytest
from tests.integration.conftest import service_missing
from tests.integration.services import PrivateRedis, ServiceBinaryMissingError, TempPostgres


@pytest.fixture
def private_redis():
    """`redis-server` on a free port, started, without persistence (a kill empties it)."""
    try:
        server = PrivateRedis()
    except ServiceBinaryMissingError as exc:
        service_missing(str(exc))
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def private_postgres():
    """A fresh PostgreSQL cluster (initdb) on a free port, started, with no schema yet."""
    try:
        cluster = TempPostgres.create()
    except ServiceBinaryMissingError as exc:
        service_missing(str(exc))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()
