"""Generated deploy files: one YAML style, a header naming the command, the topology text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from growbin.errors import ConfigError
from growbin.topology.loader import LoadedTopology, preset_path

PRESET_PREFIX = "preset:"


def render_command(loaded: LoadedTopology, target: str, out: str) -> str:
    """The command that renders these files again from the same topology."""
    spec = loaded.source.removeprefix(PRESET_PREFIX)
    return f"growbin -t {spec} deploy render {target} --out {out}"


def header(what: str, loaded: LoadedTopology, command: str) -> str:
    return (
        f"# {what}, generated from the topology {loaded.topology.name!r}:\n"
        f"#   {command}\n"
        "# Do not edit by hand: change the topology and render again (tests/deploy checks that\n"
        "# the committed files are what the generator writes).\n"
    )


FLOW_WIDTH = 72


class _Dumper(yaml.SafeDumper):
    """Short lists of plain values on one line (``[growbin, worker, --profile, ai]``)."""

    def represent_short_list(self, data: list[Any]) -> yaml.SequenceNode:
        scalar = all(isinstance(item, str | int | float | bool) for item in data)
        short = scalar and sum(len(str(item)) + 2 for item in data) <= FLOW_WIDTH
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=short)


_Dumper.add_representer(list, _Dumper.represent_short_list)


def dump(documents: list[dict[str, Any]]) -> str:
    """Documents as one YAML stream, keys in the order written, long lines kept whole."""
    return "---\n".join(
        yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)
        for doc in documents
    )


def topology_text(loaded: LoadedTopology) -> str:
    """The text of the file the topology was read from, as the pods will read it."""
    if loaded.source.startswith(PRESET_PREFIX):
        path = preset_path(loaded.source.removeprefix(PRESET_PREFIX))
    else:
        path = Path(loaded.source)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the topology file {path} to ship it: {exc}; give a readable file "
            "with --topology"
        ) from None


def write_files(files: dict[str, str], root: Path) -> list[Path]:
    """Write each file under ``root``; returns the paths whose content changed."""
    changed = []
    for relative, text in files.items():
        path = root / relative
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        changed.append(path)
    return changed


def stale_files(files: dict[str, str], root: Path) -> list[Path]:
    """The files under ``root`` that differ from what the generator writes (or are missing)."""
    return [
        root / relative
        for relative, text in files.items()
        if not (root / relative).exists() or (root / relative).read_text(encoding="utf-8") != text
    ]
