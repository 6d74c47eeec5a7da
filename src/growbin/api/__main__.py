"""``python -m growbin.api serve|apikey ...``: the API's commands without the root CLI."""

from __future__ import annotations

from typing import Annotated

import typer

from growbin.api.commands import api_command, apikey_app
from growbin.commands.common import State

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.add_typer(apikey_app, name="apikey")
app.command("serve")(api_command)


@app.callback()
def _root(
    ctx: typer.Context,
    topology: Annotated[
        str | None, typer.Option("--topology", "-t", help="Preset name or YAML file.")
    ] = None,
) -> None:
    ctx.obj = State(topology_override=topology)


if __name__ == "__main__":
    app()
