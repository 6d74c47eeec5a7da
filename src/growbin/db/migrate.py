"""Run the Alembic migrations shipped inside the package, without an alembic.ini.

``growbin db upgrade`` calls :func:`upgrade`; so do the integration tests on a fresh database.
The migration scripts live in ``growbin/db/migrations`` and are installed with the package, so
the command works from any directory.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from growbin.db.engine import make_engine, translate_errors
from growbin.settings import Settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config pointing at the packaged scripts.

    The URL does not go through ``set_main_option``: that is a ConfigParser value, where a
    ``%`` in a percent-encoded password would be read as interpolation. env.py takes the open
    connection from ``config.attributes`` instead.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(settings: Settings, revision: str = "head", *, url: str | None = None) -> str | None:
    """Bring the database to ``revision`` (default: the newest); return the revision reached."""
    engine = make_engine(settings, url=url)
    try:
        with translate_errors(engine), engine.begin() as connection:
            config = alembic_config(engine)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        return current_revision(engine)
    finally:
        engine.dispose()


def current_revision(engine: Engine) -> str | None:
    with translate_errors(engine), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
