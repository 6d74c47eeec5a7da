"""Disposal rules as data: one JSON file per item in ``data/``, validated at load."""

from growbin.scan.rules.loader import GENERAL, RuleBook, RulesError, load_rules
from growbin.scan.rules.schema import Category, LookupResult, Rule, State, Text

__all__ = [
    "GENERAL",
    "Category",
    "LookupResult",
    "Rule",
    "RuleBook",
    "RulesError",
    "State",
    "Text",
    "load_rules",
]
