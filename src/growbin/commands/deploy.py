"""`growbin deploy render k8s|compose|supervisor`: deployment files from the topology."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from growbin.commands.common import (
    DEFAULT_RABBITMQ_VERSION,
    err,
    out,
    print_findings,
    state_of,
)
from growbin.topology.findings import Severity, has_errors
from growbin.topology.lint import lint
from growbin.topology.loader import LoadedTopology

deploy_app = typer.Typer(
    help="Deployment files generated from the topology (Kubernetes, compose, supervisor).",
    no_args_is_help=True,
)


class Target(StrEnum):
    K8S = "k8s"
    COMPOSE = "compose"
    SUPERVISOR = "supervisor"


def render_files(target: Target, loaded: LoadedTopology) -> dict[str, str]:
    """The files of ``target``, keyed by their path under its deploy directory."""
    if target is Target.K8S:
        from growbin.deploy.k8s import render_k8s

        return render_k8s(loaded)
    if target is Target.COMPOSE:
        from growbin.deploy.compose import render_compose

        return render_compose(loaded)
    from growbin.deploy.supervisor import render_supervisor_files

    return render_supervisor_files(loaded)


@deploy_app.command("render")
def deploy_render(
    ctx: typer.Context,
    target: Annotated[Target, typer.Argument(help="k8s, compose or supervisor.")],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the files under this directory (deploy/k8s, deploy/compose, "
            "deploy/supervisor); default: print them.",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Write nothing; exit 1 if the files under --out are not up to date."
        ),
    ] = False,
) -> None:
    """Render the per-profile deployment files of the topology (GROWBIN_TOPOLOGY or -t)."""
    from growbin.deploy.manifests import stale_files, write_files

    loaded = state_of(ctx).topology_file()
    errors = [
        f
        for f in lint(loaded, rabbitmq_version=DEFAULT_RABBITMQ_VERSION)
        if f.severity is Severity.ERROR
    ]
    if has_errors(errors):
        print_findings(errors)
        err.print("[bold red]error:[/] the topology has lint errors; nothing was rendered.")
        raise typer.Exit(1)
    files = render_files(target, loaded)
    if out_dir is None:
        if check:
            raise typer.BadParameter("--check compares with files on disk: give --out DIR too")
        for relative, text in files.items():
            if len(files) > 1:
                out.print(f"# ==> {relative} <==", highlight=False, markup=False)
            out.print(text, end="", highlight=False, markup=False, soft_wrap=True)
        return
    if check:
        stale = stale_files(files, out_dir)
        for path in stale:
            err.print(
                f"{path} is not what the topology renders",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        if stale:
            err.print(
                f"render them again: growbin deploy render {target.value} --out {out_dir}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            raise typer.Exit(1)
        out.print(f"{out_dir}: {len(files)} file(s) up to date", highlight=False, markup=False)
        return
    changed = write_files(files, out_dir)
    for relative in files:
        state = "written" if out_dir / relative in changed else "unchanged"
        out.print(f"{out_dir / relative}: {state}", highlight=False, markup=False, soft_wrap=True)
