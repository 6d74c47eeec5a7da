"""Every shipped rule, rendered as guidance, reads right: one full stop per sentence, no
"요.," and no "..". A new rule (or a new way of joining them) cannot bring those back."""

import re

import pytest

from growbin.scan.providers.base import Candidate, Classification
from growbin.scan.providers.offline import OfflineTextGenerator
from growbin.scan.rules.loader import data_dir, load_rule, load_rules

RULE_FILES = sorted(data_dir().glob("*.json"))
BAD = ("요.,", "..", ".,", ",.", " .", "。")


def _cases():
    for path in RULE_FILES:
        rule = load_rule(path)
        for state in (None, *rule.states):
            for language in ("ko", "en"):
                yield pytest.param(rule.id, state, language, id=f"{path.stem}-{state}-{language}")


def _classification(item, confidence):
    return Classification(
        category="x",
        item=item,
        confidence=confidence,
        provider="offline",
        model="test",
        offline=True,
        candidates=(Candidate(item=item, confidence=confidence),) if confidence < 0.5 else (),
    )


def test_there_are_rules_to_check():
    assert len(RULE_FILES) >= 15


@pytest.mark.parametrize(("item", "state", "language"), list(_cases()))
@pytest.mark.parametrize("confidence", [0.9, 0.3])
def test_every_rules_guidance_is_punctuated_once_per_sentence(item, state, language, confidence):
    book = load_rules()
    lookup = book.lookup(item, state.value if state else None)
    text = (
        OfflineTextGenerator()
        .guidance(
            _classification(item, confidence), lookup.model_dump(mode="json"), language=language
        )
        .text
    )
    for bad in BAD:
        assert bad not in text, f"{bad!r} in:\n{text}"
    lines = text.splitlines()
    assert all(line.strip() == line and line for line in lines), lines
    if language == "ko":
        # a Korean sentence that ends in a predicate ends with its full stop
        unfinished = [line for line in lines if re.search(r"(요|다|죠)$", line)]
        assert not unfinished, unfinished
    steps = [line for line in lines if re.match(r"\d+\. ", line)]
    assert len(steps) == len(lookup.steps)


def test_the_not_accepted_entries_are_a_list_not_a_comma_joined_sentence():
    book = load_rules()
    lookup = book.lookup("food_waste")
    lines = OfflineTextGenerator().guidance(_classification("food_waste", 0.9), lookup).text
    entries = [line for line in lines.splitlines() if line.startswith("- ")]
    assert len(entries) == len(lookup.rule.not_accepted) == 5
    assert entries[1] == "- 조개·굴·전복·게 껍데기, 달걀 껍데기 → 종량제 봉투에 넣어요."
