"""Reading topology files: YAML with line numbers, duplicate keys refused, schema errors located.

Every error names the file and line and says what to change.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from growbin.errors import TopologyError
from growbin.topology.model import Topology

PRESETS = ("production", "slo", "pipeline")


@dataclass(frozen=True)
class LoadedTopology:
    """A topology and where it came from, with the line of each path for findings."""

    topology: Topology
    source: str
    lines: dict[tuple[str, ...], int]

    def location(self, *path: str) -> str:
        """``source:line`` of the deepest known prefix of ``path``."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return f"{self.source}:{line}"
        return self.source


def preset_path(name: str) -> Path:
    return Path(str(resources.files("growbin.topology") / "presets" / f"{name}.yaml"))


def load(spec: str) -> LoadedTopology:
    """Load a preset by name, or a topology file by path."""
    if spec in PRESETS:
        path = preset_path(spec)
        return parse(path.read_text(encoding="utf-8"), source=f"preset:{spec}")
    path = Path(spec)
    if not path.exists():
        raise TopologyError(
            f"no topology file at {spec!r}: give a preset name ({', '.join(PRESETS)}) "
            "or the path of a YAML file (GROWBIN_TOPOLOGY or --topology)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TopologyError(f"cannot read the topology file: {exc}", str(path)) from None
    return parse(text, source=str(path))


def parse(text: str, source: str = "<string>") -> LoadedTopology:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise TopologyError(
            f"not valid YAML ({problem}): fix the syntax at this line", where
        ) from None
    if node is None:
        raise TopologyError(
            "the file is empty: start from a preset (`growbin topology show`)", source
        )
    lines: dict[tuple[str, ...], int] = {}
    data = _to_python(node, (), lines, source)
    if not isinstance(data, dict):
        raise TopologyError(
            "the top level must be a mapping with keys such as name, exchanges, queues",
            f"{source}:{node.start_mark.line + 1}",
        )
    try:
        topology = Topology.model_validate(data)
    except ValidationError as exc:
        raise _schema_error(exc, source, lines) from None
    return LoadedTopology(topology=topology, source=source, lines=lines)


def _to_python(
    node: yaml.Node, path: tuple[str, ...], lines: dict[tuple[str, ...], int], source: str
) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in out:
                raise TopologyError(
                    f"duplicate key {key!r}: YAML would silently keep only the last one; "
                    "remove or rename one of them",
                    f"{source}:{key_node.start_mark.line + 1}",
                )
            lines[(*path, str(key))] = key_node.start_mark.line + 1
            out[str(key)] = _to_python(value_node, (*path, str(key)), lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _to_python(item, (*path, str(i)), lines, source) for i, item in enumerate(node.value)
        ]
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _schema_error(
    exc: ValidationError, source: str, lines: dict[tuple[str, ...], int]
) -> TopologyError:
    messages: list[str] = []
    first_location: str | None = None
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        line = None
        for end in range(len(loc), -1, -1):
            line = lines.get(loc[:end])
            if line is not None:
                break
        where = f"{source}:{line}" if line else source
        first_location = first_location or where
        dotted = ".".join(loc) or "(top level)"
        messages.append(f"{where}: {dotted}: {_explain(err)}")
    text = "; ".join(messages) if len(messages) == 1 else "\n  " + "\n  ".join(messages)
    return TopologyError(f"the topology does not fit the schema: {text}")


def _explain(err: Any) -> str:
    kind = err["type"]
    loc = err["loc"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        known = _known_keys(loc)
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
        return f"unknown key {key!r}: {hint}"
    if kind == "enum":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{err['input']!r} is not allowed: use one of {expected}"
    if kind == "missing":
        return "required key is missing: add it"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    return f"{err['msg']} (got {err.get('input')!r})"


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model at the parent of ``loc``."""
    model: Any = Topology
    parts = list(loc[:-1])
    i = 0
    while i < len(parts):
        field = model.model_fields.get(str(parts[i]))
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        # dict[str, X] and list[X]: skip the key or index that follows
        if args and hasattr(args[-1], "model_fields"):
            model = args[-1]
            i += 2
            continue
        if hasattr(annotation, "model_fields"):
            model = annotation
            i += 1
            continue
        for arg in args:
            if hasattr(arg, "model_fields"):
                model = arg
                break
        i += 1
    return sorted(model.model_fields)


def dump(topology: Topology) -> str:
    """The topology as YAML (defaults left out), for `growbin topology show`."""
    data = topology.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
