"""What every command shares: the consoles, the lazily built settings, finding output."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer
from rich.console import Console
from rich.markup import escape

from growbin.errors import GrowbinError
from growbin.settings import Settings, load_settings
from growbin.topology import loader
from growbin.topology.findings import Finding, Severity
from growbin.topology.vhost import bind_vhost

out = Console()
err = Console(stderr=True)

DEFAULT_RABBITMQ_VERSION = "3.13"


@dataclass
class State:
    topology_override: str | None = None
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            overrides = {"topology": self.topology_override} if self.topology_override else {}
            self._settings = load_settings(**overrides)
        return self._settings

    def topology_file(self) -> loader.LoadedTopology:
        """The topology as the file says it (lint and show read this)."""
        return loader.load(self.settings.topology)

    def topology(self) -> loader.LoadedTopology:
        """The topology on the broker URL's vhost: what every command that acts on it uses."""
        return bind_vhost(self.topology_file(), self.settings.broker_url.get_secret_value())


def state_of(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


def live_rabbitmq_version(settings: Settings) -> str | None:
    from growbin.topology.broker_api import BrokerApi

    try:
        with BrokerApi(settings.rabbitmq_api_url.get_secret_value(), timeout=2.0) as api:
            return api.rabbitmq_version()
    except GrowbinError:
        return None


def print_findings(findings: list[Finding]) -> None:
    styles = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
    for f in findings:
        out.print(
            f"{escape(f.location)}: [{styles[f.severity]}]{f.severity.value}[/] {f.code}: "
            + escape(f.message),
            highlight=False,
            soft_wrap=True,
        )
