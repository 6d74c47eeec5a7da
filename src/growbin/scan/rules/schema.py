"""The shape of one disposal rule file (``data/<item>.json``), checked when the rules load.

Every text a user may see is given in Korean and English (:class:`Text`). A rule says which
bin an item goes to and how to prepare it; ``states`` adjust that for the item's condition as
the vision model reports it (a dirty PET bottle goes to general waste, not to the PET bin).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

_HANGUL = re.compile(r"[\uac00-\ud7a3]")

ItemId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Category(StrEnum):
    """Which collection stream an item belongs to."""

    RECYCLABLE = "recyclable"
    FOOD = "food"
    GENERAL = "general"
    HAZARDOUS = "hazardous"
    SPECIAL = "special"  # large items, appliances, clothing: their own collection route


class State(StrEnum):
    """The item conditions a rule may adjust for. A closed list, so a typo fails at load."""

    CONTAMINATED = "contaminated"  # food or oil that does not rinse off
    WITH_CONTENTS = "with_contents"  # not empty
    WITH_LABEL = "with_label"
    WITH_TAPE = "with_tape"
    MIXED = "mixed"  # several materials stuck together
    COATED = "coated"  # plastic- or foil-coated paper
    WET = "wet"
    BROKEN = "broken"
    DAMAGED = "damaged"  # swollen or leaking (batteries)
    PRESSURIZED = "pressurized"  # aerosol and gas cans
    LARGE = "large"


# What the vision model says (seed 004: clean, dirty, mixed) mapped onto the states above;
# "clean" needs no adjustment.
STATE_ALIASES: dict[str, State | None] = {
    "clean": None,
    "dirty": State.CONTAMINATED,
    "soiled": State.CONTAMINATED,
    "full": State.WITH_CONTENTS,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    """One user-facing text, in Korean and in English."""

    ko: NonEmpty
    en: NonEmpty

    @field_validator("ko")
    @classmethod
    def _korean_is_korean(cls, value: str) -> str:
        # Catches swapped or copy-pasted fields, the commonest mistake in a bilingual file.
        if not _HANGUL.search(value):
            raise ValueError("the Korean text has no Hangul: write it in Korean")
        return value


class NotAccepted(_Strict):
    """A common mistake: something people put in this bin that belongs elsewhere."""

    what: Text
    instead: Text


class StateRule(_Strict):
    """How a state changes the rule: extra steps, and maybe another bin and category.

    With ``replace_steps`` the state's steps are the only ones (the item goes elsewhere, so
    rinsing it for recycling no longer applies); otherwise they come before the usual steps.
    """

    description: Text
    steps: list[Text] = Field(default_factory=list)
    bin: Text | None = None
    category: Category | None = None
    replace_steps: bool = False


class Rule(_Strict):
    """The disposal rule for one item."""

    id: ItemId
    names: Text
    aliases: list[ItemId] = Field(
        default_factory=list, description="Other ids a classifier may use for this item"
    )
    category: Category
    bin: Text
    steps: list[Text] = Field(min_length=1)
    not_accepted: list[NotAccepted] = Field(default_factory=list)
    states: dict[State, StateRule] = Field(default_factory=dict)
    notes: list[Text] = Field(default_factory=list)
    sources: list[NonEmpty] = Field(min_length=1)


class LookupResult(_Strict):
    """The rule to apply to a classified item, with the state already folded in.

    ``fallback`` is True when the item had no rule of its own and the general rule was used;
    ``state_applied`` is the state whose adjustment was applied (None if none matched).
    Serialise with ``model_dump(mode="json")`` to pass it between tasks.
    """

    requested_item: str
    requested_state: str | None
    fallback: bool
    state_applied: State | None
    rule: Rule
    category: Category
    bin: Text
    steps: list[Text]
