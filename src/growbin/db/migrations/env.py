"""Alembic environment: online migrations on the connection (or engine) growbin passes in.

See :mod:`growbin.db.migrate`; there is no alembic.ini and no URL in a config file.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine

import growbin.db.models  # noqa: F401 - registers every table on Base.metadata
from growbin.db.base import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    attributes = context.config.attributes
    connection = attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    engine = attributes.get("engine")
    if not isinstance(engine, Engine):
        raise RuntimeError(
            "growbin migrations need a connection: run `growbin db upgrade` or "
            "growbin.db.migrate.upgrade(settings), not the alembic command"
        )
    with engine.begin() as conn:
        _run(conn)


if context.is_offline_mode():
    raise RuntimeError("growbin migrations run online only: use `growbin db upgrade`")
run_migrations_online()
