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
from growbin.settings import Settings, mask_url

SERVICE = "PostgreSQL"
DRIVER = "postgresql+psycopg"
CONNECT_TIMEOUT_SECONDS = 5
FIX = (
    "start PostgreSQL (`make services`) or point GROWBIN_DATABASE_URL at a running server, "
    "e.g. postgresql+psycopg://postgres@127.0.0.1:5432/growbin"
)


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
    if target.get_backend_name() == "sqlite":
        # the embedded default: one file, shared by the threads of one process
        return create_engine(target, connect_args={"check_same_thread": False, "timeout": 30})
    return create_engine(
        target,
        pool_pre_ping=True,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )


def unavailable(engine: Engine, error: BaseException) -> ServiceUnavailableError:
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    return ServiceUnavailableError(SERVICE, masked(engine.url), reason, fix=FIX)


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
