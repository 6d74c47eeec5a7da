"""What the scan pipeline needs from a vision model and a text model, independent of vendor.

The pipeline calls these two protocols only; an OpenAI-compatible client, the offline
stand-ins and test doubles all satisfy them. Item ids are the rule ids, so a classification can
be handed straight to rule retrieval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

KNOWN_ITEMS: tuple[str, ...] = (
    "pet_bottle",
    "can",
    "glass_bottle",
    "paper",
    "cardboard",
    "paper_pack",
    "vinyl_film",
    "styrofoam",
    "food_waste",
    "general_waste",
    "battery",
    "small_appliance",
    "fluorescent_lamp",
    "clothing",
    "plastic_container",
)
FALLBACK_ITEM = "general_waste"

# Seed 004 names plastic, paper, metal, glass and general; the items above need a few more
# (food waste, hazardous waste, e-waste, textiles and vinyl go to different collections).
ITEM_CATEGORIES: Mapping[str, str] = {
    "pet_bottle": "plastic",
    "can": "metal",
    "glass_bottle": "glass",
    "paper": "paper",
    "cardboard": "paper",
    "paper_pack": "paper",
    "vinyl_film": "vinyl",
    "styrofoam": "plastic",
    "food_waste": "food",
    "general_waste": "general",
    "battery": "hazardous",
    "small_appliance": "e_waste",
    "fluorescent_lamp": "hazardous",
    "clothing": "textile",
    "plastic_container": "plastic",
}
KNOWN_CATEGORIES: tuple[str, ...] = tuple(sorted(set(ITEM_CATEGORIES.values())))
KNOWN_STATES: tuple[str, ...] = ("clean", "dirty", "mixed")

# Below this confidence a classification is "unsure": the user is told so and shown the
# candidates, not handed one answer as if it were certain.
CONFIDENT_AT = 0.5

# How much an answer outside KNOWN_ITEMS is trusted once mapped to the fallback item: the model
# saw *something*, but not something our rules know, so the guidance must stay generic.
UNKNOWN_ITEM_CONFIDENCE_FACTOR = 0.5


# Names a user may type (or a model may use), in Korean and English. Matched after lower-casing
# and collapsing spaces and underscores; the longest alias found wins ("종이팩" before "종이").
ITEM_ALIASES: Mapping[str, tuple[str, ...]] = {
    "pet_bottle": ("페트병", "페트", "생수병", "pet bottle", "plastic bottle", "pet"),
    "can": ("캔", "알루미늄캔", "음료캔", "통조림", "aluminum can", "aluminium can", "tin can"),
    "glass_bottle": ("유리병", "소주병", "맥주병", "glass bottle", "glass"),
    "paper": ("종이", "신문지", "paper", "newspaper"),
    "cardboard": ("골판지", "상자", "박스", "택배상자", "cardboard", "box"),
    "paper_pack": ("종이팩", "우유팩", "멸균팩", "paper pack", "milk carton", "carton"),
    "vinyl_film": ("비닐", "비닐봉지", "vinyl", "plastic bag", "plastic film"),
    "styrofoam": ("스티로폼", "styrofoam", "polystyrene"),
    "food_waste": ("음식물", "음식물쓰레기", "음식", "food", "food waste"),
    "general_waste": ("일반쓰레기", "종량제", "general", "general waste", "trash"),
    "battery": ("건전지", "배터리", "battery", "batteries"),
    "small_appliance": ("소형가전", "가전", "휴대폰", "small appliance", "appliance", "phone"),
    "fluorescent_lamp": ("형광등", "fluorescent lamp", "fluorescent"),
    "clothing": ("의류", "헌옷", "clothing", "clothes"),
    "plastic_container": ("플라스틱", "플라스틱용기", "plastic container", "plastic"),
}


def _norm(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").replace("-", " ").split())


_ALIASES: tuple[tuple[str, str], ...] = tuple(
    sorted(
        {(_norm(a), item) for item, names in ITEM_ALIASES.items() for a in (item, *names)},
        key=lambda pair: (-len(pair[0]), pair),  # longest first; ties in a fixed order
    )
)


def match_hint(hint: str | None, *, partial: bool = True) -> str | None:
    """The item id a hint names (an id, or a Korean or English name), or None.

    With ``partial`` the name may sit inside a longer text ("a crushed beer can" -> can);
    without, the whole text must be an id or a known name.
    """
    if not hint:
        return None
    text = _norm(hint)
    padded = f" {text} "
    for alias, item in _ALIASES:
        if alias == text:
            return item
    if not partial:
        return None
    for alias, item in _ALIASES:
        # Latin aliases must match whole words ("can" is not in "candle"); Hangul has no
        # spaces inside compounds, so a Korean alias may sit inside a longer word.
        if alias.isascii() and f" {alias} " in padded:
            return item
        if not alias.isascii() and alias in text:
            return item
    return None


class Candidate(BaseModel):
    """One item a classifier considered, with its confidence."""

    model_config = ConfigDict(frozen=True)

    item: str
    confidence: float = Field(ge=0.0, le=1.0)


class Classification(BaseModel):
    """What a vision provider saw. ``offline`` is True when no real model looked at the image.

    ``item`` is the best answer (the rules need one); when ``confidence`` is below
    :data:`CONFIDENT_AT` the classification is :attr:`unsure`, and ``candidates`` holds the
    items it could not tell apart, best first. ``evidence`` says in a few words what decided
    (the user's hint, the photo's colour and shape, a model).
    """

    model_config = ConfigDict(frozen=True)

    category: str
    item: str
    state: str | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    provider: str
    model: str
    offline: bool
    candidates: tuple[Candidate, ...] = ()
    evidence: str = ""

    @property
    def unsure(self) -> bool:
        return self.confidence < CONFIDENT_AT


class Guidance(BaseModel):
    """Disposal guidance for the user. ``offline`` is True when it came from a template."""

    model_config = ConfigDict(frozen=True)

    text: str
    provider: str
    model: str
    offline: bool


@runtime_checkable
class VisionClassifier(Protocol):
    def classify(self, image_jpeg: bytes, *, hint: str | None = None) -> Classification:
        """Classify one photo. ``hint`` is what the user typed, if anything."""
        ...


@runtime_checkable
class TextGenerator(Protocol):
    def guidance(
        self,
        classification: Classification,
        rules: Mapping[str, Any] | BaseModel,
        *,
        language: str = "ko",
    ) -> Guidance:
        """Turn the disposal rules for a classified item into text for the user."""
        ...


def normalize_item(item: str, confidence: float) -> tuple[str, str, float]:
    """Map a model's item onto the rule ids: ``(item, category, confidence)``.

    A known synonym ("aluminum_can", "plastic bottle") maps to its id at the same confidence;
    anything else, even a longer name containing one ("paper_cup"), becomes general_waste
    with lowered confidence. The category always follows
    the item, so a model that says item=can, category=paper cannot send the user to the wrong
    bin: the rules are keyed by item.
    """
    found = match_hint(item, partial=False)
    if found is not None:
        return found, ITEM_CATEGORIES[found], confidence
    lowered = round(confidence * UNKNOWN_ITEM_CONFIDENCE_FACTOR, 4)
    return FALLBACK_ITEM, ITEM_CATEGORIES[FALLBACK_ITEM], lowered


def rules_as_dict(rules: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    """Rules arrive as a plain mapping or as a pydantic model (the rules schema); accept both."""
    if isinstance(rules, BaseModel):
        return rules.model_dump(mode="json")
    return dict(rules)
