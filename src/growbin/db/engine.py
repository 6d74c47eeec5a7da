"""The SQLAlchemy engine on PostgreSQL (psycopg 3), and the translation of connection errors.

An unreachable database is a :class:`ServiceUnavailableError` naming PostgreSQL and the URL with
its password masked, so a traceback never leaks a secret and always names the fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, exc, make_url
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from growbin.errors import ServiceUnavailableError
from growbin.service_hints import start_service_hint
from growbin.settings import Environment, Settings, mask_url

SERVICE = "PostgreSQL"
DRIVER = "postgresql+psycopg"
CONNECT_TIMEOUT_SECONDS = 5
# the hint for an engine built without settings; make_engine gives one for the environment
FIX = start_service_hint(Environment.PRODUCTION, SERVICE, "GROWBIN_DATABASE_URL")
FIX_OPTION = "growbin_fix"  # an execution option: the engine carries its own hint


def database_url(raw: str) -> URL:
    """The URL with the psycopg 3 driver: postgres:// and postgresql:// are accepted too."""
    url = make_url(raw)
    if url.drivername in {"postgres", "postgresql", "postgresql+psycopg2"}:
        url = url.set(drivername=DRIVER)
    return url


def masked(url: URL | str) -> str:
    text = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
    return mask_url(text)


def make_engine(settings: Settings, *, url: str | None = None) -> Engine:
    """An engine for ``settings.database_url`` (or ``url``). Connects lazily.

    pool_pre_ping replaces a connection the server closed (restart, idle timeout) instead of
    failing the first query that uses it.
    """
    target = database_url(url or settings.database_url.get_secret_value())
    hint = {FIX_OPTION: start_service_hint(settings.env, SERVICE, "GROWBIN_DATABASE_URL")}
    if target.get_backend_name() == "sqlite":
        # the embedded default: one file, shared by the threads of one process
        return create_engine(
            target,
            execution_options=hint,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
    return create_engine(
        target,
        execution_options=hint,
        pool_pre_ping=True,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )


def unavailable(engine: Engine, error: BaseException) -> ServiceUnavailableError:
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    fix = str(engine.get_execution_options().get(FIX_OPTION, FIX))
    return ServiceUnavailableError(SERVICE, masked(engine.url), reason, fix=fix)


@contextmanager
def translate_errors(engine: Engine) -> Iterator[None]:
    """Turn 'cannot connect' into ServiceUnavailableError; other database errors pass through."""
    try:
        yield
    except exc.OperationalError as error:
        if error.connection_invalidated or _is_connect_error(error):
            raise unavailable(engine, error) from error
        raise
    except exc.InterfaceError as error:
        raise unavailable(engine, error) from error


def _is_connect_error(error: exc.OperationalError) -> bool:
    # psycopg raises OperationalError both for "connection refused" and for e.g. a lock
    # timeout; only the first has no SQLSTATE (the server never answered)
    return getattr(error.orig, "sqlstate", None) is None


def check_connection(engine: Engine) -> None:
    """Connect once, raising ServiceUnavailableError when PostgreSQL cannot be reached."""
    with translate_errors(engine), engine.connect():
        pass


def session_factory(engine: Engine) -> sessionmaker[Session]:
    # objects stay readable after commit: the CLI prints records after the transaction ends
    return sessionmaker(engine, expire_on_commit=False)
