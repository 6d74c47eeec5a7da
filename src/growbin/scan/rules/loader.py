"""Loading the disposal rules: every file validated at load, a broken one named with its field."""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from growbin.errors import GrowbinError
from growbin.scan.rules.schema import STATE_ALIASES, LookupResult, Rule, State

GENERAL = "general"


class RulesError(GrowbinError):
    """A rule file cannot be read or does not fit the schema."""

    exit_code = 2


def data_dir() -> Path:
    """The directory of the shipped rule files."""
    return Path(str(resources.files("growbin.scan.rules") / "data"))


def normalize(name: str) -> str:
    """``"Aluminum-Can "`` -> ``"aluminum_can"``: how item and state names are compared."""
    return "_".join(name.strip().lower().replace("-", " ").split())


class RuleBook:
    """All rules by item id (and alias), with ``general`` as the fallback."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._rules: dict[str, Rule] = {}
        self._index: dict[str, str] = {}
        for rule in rules:
            for name in (rule.id, *rule.aliases):
                if name in self._index:
                    raise RulesError(
                        f"the name {name!r} is used by both {self._index[name]!r} and "
                        f"{rule.id!r}: keep it in one rule's id or aliases"
                    )
                self._index[name] = rule.id
            self._rules[rule.id] = rule
        if GENERAL not in self._rules:
            raise RulesError(
                f"there is no {GENERAL!r} rule: add {GENERAL}.json, the fallback for unknown items"
            )

    @property
    def general(self) -> Rule:
        return self._rules[GENERAL]

    def items(self) -> list[str]:
        """The item ids with a rule of their own (``general``, the fallback, left out)."""
        return sorted(item for item in self._rules if item != GENERAL)

    def get(self, item: str) -> Rule | None:
        """The item's own rule (by id or alias), or None: no fallback here."""
        rule_id = self._index.get(normalize(item))
        return self._rules[rule_id] if rule_id else None

    def lookup(self, item: str, state: str | None = None) -> LookupResult:
        """The rule for ``item`` in ``state``, falling back to ``general`` for unknown items.

        An unknown state is not an error (the model may say things the rules do not cover):
        the result then has ``state_applied=None`` and the item's usual steps.
        """
        own = self.get(item)
        rule = own or self.general
        applied = _resolve_state(state)
        adjust = rule.states.get(applied) if applied else None
        steps = list(rule.steps)
        if adjust is not None:
            steps = list(adjust.steps) if adjust.replace_steps else [*adjust.steps, *steps]
        return LookupResult(
            requested_item=item,
            requested_state=state,
            fallback=own is None,
            state_applied=applied if adjust is not None else None,
            rule=rule,
            category=(adjust.category if adjust and adjust.category else rule.category),
            bin=(adjust.bin if adjust and adjust.bin else rule.bin),
            steps=steps,
        )


def _resolve_state(state: str | None) -> State | None:
    if not state:
        return None
    key = normalize(state)
    if key in STATE_ALIASES:
        return STATE_ALIASES[key]
    try:
        return State(key)
    except ValueError:
        return None


def load_rule(path: Path) -> Rule:
    """Read and validate one rule file; errors name the file and the field."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"{path}: cannot read the rule file ({exc})") from None
    except UnicodeDecodeError:
        raise RulesError(f"{path}: the rule file is not UTF-8: save it as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise RulesError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}): fix the syntax there"
        ) from None
    try:
        rule = Rule.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise RulesError(
            f"{path}: the rule does not fit the schema (growbin.scan.rules.schema.Rule):\n  - "
            + "\n  - ".join(problems)
        ) from None
    if rule.id != path.stem:
        raise RulesError(
            f"{path}: id is {rule.id!r} but the file is named {path.name!r}: "
            f"rename the file to {rule.id}.json or fix the id"
        )
    return rule


def load_rules(directory: Path | None = None) -> RuleBook:
    """Load every ``*.json`` rule in ``directory`` (the shipped rules by default)."""
    directory = directory or data_dir()
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise RulesError(f"{directory}: no rule files (*.json): is the package data installed?")
    return RuleBook(load_rule(path) for path in paths)
