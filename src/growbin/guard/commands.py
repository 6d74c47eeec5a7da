"""`growbin guard`: the rate limits, circuit breakers and throttle log, as Redis holds them now."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from growbin.guard.providers import GuardConfig, Guards
from growbin.guard.ratelimit import rate_limit_log
from growbin.settings import Settings, load_settings
from growbin.topology import loader
from growbin.topology.model import Topology

guard_app = typer.Typer(
    help="Global rate limits and circuit breakers (state shared by all workers, in Redis).",
    no_args_is_help=True,
)


def _console() -> Console:
    return Console()  # made per command, so that it sees the terminal (and COLUMNS) of the run


FormatOption = Annotated[str, typer.Option("--format", help="text or json")]
PrefixOption = Annotated[
    str | None,
    typer.Option("--prefix", help="Redis key prefix of the guards (default: growbin)."),
]


def _platform(ctx: typer.Context) -> tuple[Settings, Topology]:
    """The root command's settings and topology (`growbin --topology ...`), else the env's."""
    state = ctx.find_root().obj
    settings = getattr(state, "settings", None)
    if isinstance(settings, Settings) and callable(getattr(state, "topology", None)):
        return settings, state.topology().topology
    settings = load_settings()
    return settings, loader.load(settings.topology).topology


def _guards(ctx: typer.Context, prefix: str | None) -> Guards:
    settings, topology = _platform(ctx)
    config = GuardConfig.from_topology(topology, settings)
    if prefix:
        config = replace(config, prefix=prefix)
    return Guards.from_url(settings.redis_url.get_secret_value(), config)


def _check_format(fmt: str) -> None:
    if fmt not in ("text", "json"):
        raise typer.BadParameter(f"--format {fmt!r}: use text or json")


def status_data(guards: Guards) -> dict[str, Any]:
    """Every limit and breaker of the topology, as plain data (for JSON and for metrics)."""
    return {
        "rate_limits": [asdict(s) for s in guards.limiter.states()],
        "breakers": [{**asdict(s), "state": s.state.value} for s in guards.breakers.statuses()],
    }


@guard_app.command("status")
def status(ctx: typer.Context, fmt: FormatOption = "text", prefix: PrefixOption = None) -> None:
    """Each limit's free calls and next slot; each breaker's state and failures."""
    _check_format(fmt)
    guards = _guards(ctx, prefix)
    try:
        data = status_data(guards)
    finally:
        guards.store.close()
    out = _console()
    if fmt == "json":
        out.print_json(json.dumps(data))
        return
    limits = Table(
        "limit",
        "cap",
        "burst",
        "free now",
        "next slot",
        "deferred",
        "allowed",
        "throttled",
        title="rate limits",
    )
    for s in data["rate_limits"]:
        limits.add_row(
            s["name"],
            f"{s['rate']} / {s['per']:g}s",
            str(s["burst"]),
            str(s["tokens"]),
            "now" if s["next_free"] <= 0 else f"in {s['next_free']:.2f}s",
            str(s["waiting"]),
            str(s["allowed"]),
            str(s["throttled"]),
        )
    breakers = Table(
        "breaker", "state", "failures", "opens after", "probe", "times opened", title="breakers"
    )
    for b in data["breakers"]:
        state = b["state"]
        if state == "open":
            state += f" (probe in {b['retry_after']:.1f}s)" if b["retry_after"] else " (probe due)"
        breakers.add_row(
            b["name"],
            state,
            str(b["failures"]),
            f"{b['threshold']} in {b['window']:g}s",
            "in flight" if b["probe_in_flight"] else "-",
            str(b["times_opened"]),
        )
    if not data["rate_limits"] and not data["breakers"]:
        out.print("no rate_limits or breakers in this topology")
        return
    out.print(limits)
    out.print(breakers)


@guard_app.command("log")
def log(
    ctx: typer.Context,
    hours: Annotated[int, typer.Option(help="How far back, in hours (kept for 48).")] = 1,
    fmt: FormatOption = "text",
    prefix: PrefixOption = None,
) -> None:
    """Throttled calls per limit and minute (seed 004's rate_limit_log)."""
    _check_format(fmt)
    guards = _guards(ctx, prefix)
    try:
        rows = rate_limit_log(guards.store, hours=hours)
    finally:
        guards.store.close()
    out = _console()
    if fmt == "json":
        out.print_json(json.dumps([asdict(r) for r in rows]))
        return
    table = Table("minute (UTC)", "limit", "throttled", title="rate_limit_log")
    for r in rows:
        minute = datetime.fromtimestamp(r.minute, UTC).strftime("%Y-%m-%d %H:%M")
        table.add_row(minute, r.limit, str(r.count))
    out.print(table)


@guard_app.command("reset")
def reset(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A breaker (openai) or a limit (openai.gpt-5).")],
    prefix: PrefixOption = None,
) -> None:
    """Close a breaker now, or forget a limit's state (when you know the provider is back)."""
    guards = _guards(ctx, prefix)
    out = _console()
    try:
        if name in guards.config.breakers:
            guards.breakers[name].reset()
            out.print(f"breaker {name} closed")
        elif name in guards.config.rate_limits:
            guards.limiter.reset(name)
            out.print(f"rate limit {name} reset")
        else:
            known = sorted({*guards.config.breakers, *guards.config.rate_limits}) or ["(none)"]
            raise typer.BadParameter(f"{name!r} is neither a breaker nor a limit: {known}")
    finally:
        guards.store.close()
