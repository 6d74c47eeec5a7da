"""The API's commands: ``growbin api`` (serve) and ``growbin apikey create|list|revoke``.

Wired into the root command as ``app.add_typer(apikey_app, name="apikey")`` and
``app.command("api")(api_command)``. Each works on its own too (tests call them through
typer's CliRunner): without the root's state they read the settings from the environment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from growbin.api import keys
from growbin.api.keys_records import ApiKey
from growbin.api.quotas import overrides
from growbin.commands.common import State
from growbin.db.engine import make_engine, session_factory, translate_errors
from growbin.settings import Settings, load_settings
from growbin.topology import loader

out = Console()
err = Console(stderr=True)

apikey_app = typer.Typer(
    help="API keys: create (the key is shown once), list, revoke.", no_args_is_help=True
)

FormatOption = Annotated[str, typer.Option("--format", help="text or json")]


def _state(ctx: typer.Context) -> State | None:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else None


def _settings(ctx: typer.Context) -> Settings:
    state = _state(ctx)
    return state.settings if state is not None else load_settings()


def _check_format(fmt: str) -> None:
    if fmt not in ("text", "json"):
        raise typer.BadParameter(f"--format {fmt!r}: use text or json")


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    engine = make_engine(settings)
    try:
        with translate_errors(engine), session_factory(engine).begin() as session:
            yield session
    finally:
        engine.dispose()


@dataclass(frozen=True)
class KeyRow:
    """What the commands show of a key: everything but the key and its hash."""

    prefix: str
    owner: str
    name: str
    scopes: list[str]
    created_at: str | None
    last_used_at: str | None
    revoked_at: str | None
    quotas: dict[str, Any] | None = None

    @classmethod
    def of(cls, record: ApiKey) -> KeyRow:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return cls(
            prefix=record.prefix,
            owner=record.owner,
            name=record.name,
            scopes=[str(s) for s in record.scopes or []],
            created_at=iso(record.created_at),
            last_used_at=iso(record.last_used_at),
            revoked_at=iso(record.revoked_at),
            quotas=dict(record.quotas) if record.quotas else None,
        )


@apikey_app.command("create")
def apikey_create(
    ctx: typer.Context,
    owner: Annotated[str, typer.Option(help="The user the key acts for; owns its scans.")],
    name: Annotated[str, typer.Option(help="What the key is for, e.g. laptop, ios-app.")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="scans (default) or admin; repeatable. admin includes scans."),
    ] = None,
    rate: Annotated[
        list[str] | None,
        typer.Option(
            "--rate",
            help="This key's request rate over all routes (600/m), or one route family's "
            "(submit=120/m; families: submit, read, events, admin); repeatable. "
            "Default: GROWBIN_API_QUOTA_RATE and GROWBIN_API_QUOTA_FAMILY_RATES.",
        ),
    ] = None,
    burst: Annotated[
        int | None, typer.Option(help="Requests it may send back to back (default 30).")
    ] = None,
    in_flight: Annotated[
        int | None,
        typer.Option("--in-flight", help="Scans and tasks queued or running at once (30)."),
    ] = None,
    delayed_in_flight: Annotated[
        int | None,
        typer.Option("--delayed-in-flight", help="Example tasks with a delay in flight (2)."),
    ] = None,
    streams: Annotated[int | None, typer.Option(help="Open event streams (5).")] = None,
    fmt: FormatOption = "text",
) -> None:
    """Create a key and print it once; only its HMAC is stored. Quotas: see --rate."""
    _check_format(fmt)
    try:
        quotas = overrides(
            rate or (),
            burst=burst,
            in_flight=in_flight,
            delayed_in_flight=delayed_in_flight,
            streams=streams,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = _settings(ctx)
    secret = keys.api_secret(settings)
    with _session(settings) as session:
        record, key = keys.create_key(
            session, secret, owner=owner, name=name, scopes=scope or (), quotas=quotas
        )
        row = KeyRow.of(record)
    if fmt == "json":
        out.print_json(json.dumps({**asdict(row), "key": key}))
        return
    limits = f", quotas {_quota_text(row.quotas)}" if row.quotas else ""
    out.print(
        f"API key for {row.owner} ({row.name}, scopes {', '.join(row.scopes)}{limits}):",
        highlight=False,
    )
    out.print(key, highlight=False, markup=False)
    err.print(
        f"Store it now: it is not shown again. Revoke with `growbin apikey revoke {row.prefix}`.",
        highlight=False,
    )


@apikey_app.command("list")
def apikey_list(
    ctx: typer.Context,
    owner: Annotated[str | None, typer.Option(help="Only this owner's keys.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Leave out revoked keys.")] = False,
    fmt: FormatOption = "text",
) -> None:
    """List keys by prefix (never the key itself)."""
    _check_format(fmt)
    with _session(_settings(ctx)) as session:
        found = keys.list_keys(session, owner=owner, include_revoked=not active)
        rows = [KeyRow.of(r) for r in found]
    if fmt == "json":
        out.print_json(json.dumps([asdict(r) for r in rows]))
        return
    table = Table(title="API keys")
    for column in (
        "prefix",
        "owner",
        "name",
        "scopes",
        "quotas",
        "created",
        "last used",
        "revoked",
    ):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row.prefix,
            row.owner,
            row.name,
            ",".join(row.scopes),
            _quota_text(row.quotas) if row.quotas else "default",
            (row.created_at or "-")[:19],
            (row.last_used_at or "-")[:19],
            (row.revoked_at or "-")[:19],
        )
    out.print(table)


@apikey_app.command("revoke")
def apikey_revoke(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Argument(help="The key's prefix (8 hex digits) or the key.")],
) -> None:
    """Revoke a key: it answers 401 from the next request on."""
    with _session(_settings(ctx)) as session:
        record = keys.revoke(session, prefix)
        row = KeyRow.of(record)
    out.print(f"revoked {row.prefix} ({row.owner}, {row.name})", highlight=False)


def _quota_text(quotas: dict[str, Any]) -> str:
    parts = []
    for name, value in quotas.items():
        if name == "families":
            parts += [f"{family}={rate}" for family, rate in dict(value).items()]
        else:
            parts.append(f"{name.replace('_', '-')} {value}")
    return ", ".join(parts)


def api_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the HTTP API (FastAPI on uvicorn); OpenAPI docs at /docs."""
    from growbin.api.app import create_api
    from growbin.api.serve import serve

    state = _state(ctx)
    settings = state.settings if state is not None else load_settings()
    loaded = state.topology() if state is not None else loader.load(settings.topology)
    serve(create_api(settings, loaded), host=host, port=port, log_level=log_level)
