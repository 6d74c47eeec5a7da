"""Stand-ins that need no network: for the embedded demo, for tests, and when a provider is down.

They are honest about what they are: every result says ``provider="offline"`` and
``offline=True``. The classifier believes the user's hint when it names a known item (and says
that the hint decided); without one it scores the items against the photo's mean colour and
shape. Colour and shape are weak evidence, so such an answer always stays below
:data:`~growbin.scan.providers.base.CONFIDENT_AT`: the user is told it is unsure and shown the
candidates.
"""

from __future__ import annotations

import colorsys
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageStat, UnidentifiedImageError
from pydantic import BaseModel

from growbin.scan.providers.base import (
    FALLBACK_ITEM,
    ITEM_ALIASES,
    ITEM_CATEGORIES,
    Candidate,
    Classification,
    Guidance,
    match_hint,
    rules_as_dict,
)
from growbin.scan.providers.errors import InvalidImageError

PROVIDER = "offline"
# The user named the item and the photo's colour and shape fit it / point elsewhere: the hint
# decides either way (the user holds the item), but a photo that disagrees lowers the trust.
HINT_CONFIDENCE = 0.8
HINT_DISPUTED_CONFIDENCE = 0.65
# What colour and shape can justify at most: both cues fit (0.45), colour alone (0.3), nothing
# but the fallback (0.15). All are below CONFIDENT_AT, so the answer is always "unsure".
COLOUR_AND_SHAPE_CAP = 0.45
COLOUR_ONLY_CAP = 0.3
NO_EVIDENCE_CAP = 0.15
FALLBACK_PRIOR = 0.3  # general waste is always possible
MAX_CANDIDATES = 3
# Photos are a few megapixels; refuse anything far larger before decoding (decompression bombs).
MAX_PIXELS = 50_000_000


@dataclass(frozen=True)
class Features:
    """What the classifier looks at: mean colour as hue (degrees), saturation, value, and
    height / width."""

    hue: float
    sat: float
    val: float
    aspect: float

    @classmethod
    def of(cls, rgb: tuple[float, float, float], aspect: float) -> Features:
        hue, sat, val = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
        return cls(hue * 360, sat, val, aspect)

    @property
    def tall(self) -> bool:
        return self.aspect >= 1.4

    @property
    def wide(self) -> bool:
        return self.aspect <= 0.8


@dataclass(frozen=True)
class Cue:
    item: str
    shape: bool  # a shape cue only counts when a colour cue of the same item fits too
    weight: float
    fits: Callable[[Features], bool]


def _brown(f: Features) -> bool:
    return 15 <= f.hue <= 45 and f.sat >= 0.25 and f.val <= 0.75


def _grey(f: Features) -> bool:
    return f.sat < 0.15 and 0.35 <= f.val <= 0.85


CUES: tuple[Cue, ...] = (
    Cue("pet_bottle", False, 1.0, lambda f: 180 <= f.hue <= 250 and f.sat >= 0.12),
    Cue("pet_bottle", False, 0.6, lambda f: f.sat < 0.15 and f.val > 0.7),  # clear
    Cue("pet_bottle", True, 0.8, lambda f: f.tall),
    Cue("glass_bottle", False, 1.0, lambda f: 75 <= f.hue <= 170 and f.sat >= 0.25),
    Cue("glass_bottle", False, 0.8, lambda f: _brown(f) and f.val < 0.55),
    Cue("glass_bottle", True, 0.8, lambda f: f.tall),
    Cue("can", False, 1.0, _grey),
    Cue("can", True, 0.5, lambda f: not f.tall and not f.wide),
    Cue("cardboard", False, 1.0, _brown),
    Cue("cardboard", True, 0.6, lambda f: f.wide),
    Cue("food_waste", False, 1.0, lambda f: 20 <= f.hue <= 65 and f.sat > 0.55 and f.val > 0.6),
    Cue("food_waste", True, 0.2, lambda f: not f.tall),
    Cue("paper", False, 1.0, lambda f: f.sat < 0.12 and f.val > 0.85),
    Cue("paper", True, 0.4, lambda f: f.wide),
    Cue("paper", True, 0.3, lambda f: not f.tall),
    Cue("battery", False, 0.4, lambda f: f.sat < 0.2 and 0.35 <= f.val <= 0.8),
    Cue("battery", False, 0.5, lambda f: f.val < 0.3),
    Cue("battery", True, 0.5, lambda f: f.tall),
    Cue("battery", True, 0.3, lambda f: f.aspect >= 1.8),
)


@dataclass(frozen=True)
class Scored:
    """The colour-and-shape verdict: candidates best first, and what the best one rests on."""

    candidates: tuple[Candidate, ...]
    evidence: str

    @property
    def best(self) -> Candidate:
        return self.candidates[0]


def score(features: Features) -> Scored:
    """Score every item against the cues; confidence is capped by the kind of evidence.

    An item's score is the sum of its fitting cues (shape counts only next to colour), plus a
    constant prior for general waste. The best item's confidence is its share of all scores
    times the cap its evidence allows, so a close second lowers it; the other candidates are
    scaled alike.
    """
    scores: dict[str, float] = {FALLBACK_ITEM: FALLBACK_PRIOR}
    kinds: dict[str, set[str]] = {}
    for cue in (c for c in CUES if not c.shape):
        if cue.fits(features):
            scores[cue.item] = scores.get(cue.item, 0.0) + cue.weight
            kinds.setdefault(cue.item, set()).add("colour")
    for cue in (c for c in CUES if c.shape):
        if cue.item in kinds and cue.fits(features):
            scores[cue.item] += cue.weight
            kinds[cue.item].add("shape")
    ranked = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
    best = ranked[0][0]
    found = kinds.get(best, set())
    if found == {"colour", "shape"}:
        cap, evidence = COLOUR_AND_SHAPE_CAP, "the photo's colour and shape (weak evidence)"
    elif found:
        cap, evidence = COLOUR_ONLY_CAP, "the photo's colour alone (weak evidence)"
    else:
        cap, evidence = NO_EVIDENCE_CAP, "nothing: no colour or shape fits a known item"
    scale = cap / sum(scores.values())
    candidates = tuple(
        Candidate(item=item, confidence=round(value * scale, 2))
        for item, value in ranked[:MAX_CANDIDATES]
    )
    return Scored(candidates=candidates, evidence=evidence)


def image_features(image_jpeg: bytes) -> tuple[tuple[float, float, float], float]:
    """Mean RGB and aspect ratio (height / width) of an encoded image."""
    try:
        with Image.open(io.BytesIO(image_jpeg)) as img:
            width, height = img.size
            if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
                raise InvalidImageError(
                    f"image of {width}x{height} pixels is outside 1..{MAX_PIXELS} pixels; "
                    f"fix: resize the photo before classifying it"
                )
            img.draft("RGB", (64, 64))  # JPEG: decode at reduced scale, much faster
            small = img.convert("RGB").resize((32, 32))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise InvalidImageError(
            f"cannot decode the image ({len(image_jpeg)} bytes): {exc}; fix: send a JPEG or PNG"
        ) from exc
    mean = ImageStat.Stat(small).mean
    return (mean[0], mean[1], mean[2]), height / width


class OfflineVisionClassifier:
    """A :class:`VisionClassifier` from the user's hint, else from colour and shape scores."""

    def classify(self, image_jpeg: bytes, *, hint: str | None = None) -> Classification:
        rgb, aspect = image_features(image_jpeg)
        scored = score(Features.of(rgb, aspect))
        hinted = match_hint(hint)
        if hinted is not None:
            photo = [c.item for c in scored.candidates if c.item != FALLBACK_ITEM]
            agrees = hinted in photo or not photo
            shown = " ".join((hint or "").split())[:40]
            evidence = f"the hint {shown!r} decided: it names {hinted}; " + (
                "the photo does not contradict it"
                if agrees
                else f"the photo alone looked more like {photo[0]}"
            )
            return Classification(
                category=ITEM_CATEGORIES[hinted],
                item=hinted,
                state=None,
                confidence=HINT_CONFIDENCE if agrees else HINT_DISPUTED_CONFIDENCE,
                provider=PROVIDER,
                model="hint",
                offline=True,
                evidence=evidence,
            )
        best = scored.best
        return Classification(
            category=ITEM_CATEGORIES[best.item],
            item=best.item,
            state=None,  # colour cannot tell clean from dirty
            confidence=best.confidence,
            provider=PROVIDER,
            model="colour-rules",
            offline=True,
            candidates=scored.candidates,
            evidence=f"no hint; decided by {scored.evidence}",
        )


_PARENTHESES = re.compile(r"\s*\([^()]*\)")
# A Korean sentence ends in a predicate (해요, 없다, 해 주세요, 돼죠); a noun phrase ("기름이 묻은
# 병", "묻어 있음") does not take a full stop in a list.
_KOREAN_PREDICATE = re.compile(r"(요|다|죠)$")
_TERMINAL = ".!?。"


def _has_batchim(word: str) -> bool:
    """Whether a Korean word ends in a final consonant (it picks 은/는 and 을/를).

    A parenthesis is read past, as Korean orthography does: "캔 (알루미늄캔·철캔)" takes the
    particle of 캔. The last Hangul syllable decides; a name without Hangul counts as a vowel.
    """
    bare = _PARENTHESES.sub("", word).strip() or word
    syllables = [ch for ch in bare if "가" <= ch <= "힣"]
    if not syllables:
        return False
    return (ord(syllables[-1]) - 0xAC00) % 28 != 0


def tidy(text: str) -> str:
    """One space between words, and a run of closing full stops cut to one."""
    return re.sub(r"\.{2,}$", ".", " ".join(text.split()))


def sentence(text: str, language: str) -> str:
    """``text`` with exactly one closing full stop when it is a sentence, and none added when
    it is a noun phrase; runs of full stops are collapsed ("넣어요.." -> "넣어요.")."""
    text = tidy(text)
    if not text or text[-1] in _TERMINAL:
        return text
    if language == "ko":
        return text + "." if _KOREAN_PREDICATE.search(text) else text
    # English: a capitalised text with a verb-like length is a sentence; "oily bottles" is not.
    return text + "." if text[:1].isupper() and " " in text else text


def _text(value: Any, language: str) -> str:
    """A localised string from {"ko": ..., "en": ...}, a plain string, or nothing."""
    if isinstance(value, Mapping):
        found = value.get(language) or value.get("en") or value.get("ko") or ""
        return str(found)
    return "" if value is None else str(value)


def _texts(values: Any, language: str) -> list[str]:
    return [t for t in (_text(v, language) for v in values or ()) if t]


def _refusal(entry: Any, language: str) -> str:
    """A not-accepted entry: a text, or the rules schema's {"what": ..., "instead": ...}."""
    if isinstance(entry, Mapping) and "what" in entry:
        what, instead = _text(entry["what"], language), _text(entry.get("instead"), language)
        return f"{what} → {sentence(instead, language)}" if instead else what
    return sentence(_text(entry, language), language)


def item_name(item: str, language: str) -> str:
    """A short name for an item id: its first Korean alias, or the id in words."""
    if language == "ko":
        korean = [a for a in ITEM_ALIASES.get(item, ()) if not a.isascii()]
        if korean:
            return korean[0]
    return item.replace("_", " ")


def _unsure_lines(classification: Classification, name: str, language: str) -> list[str]:
    others = classification.candidates or (
        Candidate(item=classification.item, confidence=classification.confidence),
    )
    listed = ", ".join(f"{item_name(c.item, language)} {c.confidence:.0%}" for c in others)
    if language == "ko":
        return [
            "사진만으로는 확실하지 않아요.",
            f"후보: {listed}",
            f"아래 안내는 가장 가까운 {name} 기준이에요. 다른 품목이면 이름을 힌트로 적어 "
            "다시 스캔해 주세요.",
        ]
    return [
        "The photo is not clear enough to be sure.",
        f"Candidates: {listed}",
        f"The steps below are for the closest match, {name}; if it is something else, "
        "scan it again with its name as a hint.",
    ]


def guidance_lines(
    classification: Classification, rules: Mapping[str, Any] | BaseModel, language: str = "ko"
) -> list[str]:
    """The guidance as a list of lines, each one sentence or one list entry, punctuated once.

    ``rules`` may be a plain dict (``item``, ``names``, ``bin``, ``steps``, ``not_accepted``),
    a :class:`growbin.scan.rules.schema.Rule` or a ``LookupResult`` (or their JSON dumps): a
    lookup result's own ``bin`` and ``steps`` win, since they have the item's state folded in.
    Any language but Korean gets English: the rules carry those two only.
    """
    data = rules_as_dict(rules)
    lang = "ko" if language == "ko" else "en"
    rule = data["rule"] if isinstance(data.get("rule"), Mapping) else data
    item = rule.get("id") or rule.get("item") or classification.item
    name = _text(rule.get("names"), lang) or item_name(str(item), lang)
    bin_name = _text(data.get("bin") or rule.get("bin"), lang)
    steps = _texts(data["steps"] if "steps" in data else rule.get("steps"), lang)
    refused = [r for r in (_refusal(e, lang) for e in rule.get("not_accepted") or ()) if r]
    lines: list[str] = []
    if classification.unsure:
        lines.extend(_unsure_lines(classification, name, lang))
    state = (rule.get("states") or {}).get(data.get("state_applied") or "")
    if isinstance(state, Mapping) and state.get("description"):
        # English descriptions are noun phrases ("Not empty"): tidied, never given a stop
        description = _text(state["description"], lang)
        lines.append(sentence(description, lang) if lang == "ko" else tidy(description))
    if lang == "ko":
        particle = "은" if _has_batchim(name) else "는"
        where = f"{bin_name}에 버려 주세요." if bin_name else "분리배출해 주세요."
        lines.append(f"{name}{particle} {where}")
    else:
        where = f"in the {bin_name}" if bin_name else "as the steps below say"
        lines.append(f"Put the {name} {where}.")
    lines.extend(f"{n}. {sentence(step, lang)}" for n, step in enumerate(steps, 1))
    if refused:
        lines.append("이런 것은 함께 버리면 안 돼요:" if lang == "ko" else "Keep these out:")
        lines.extend(f"- {entry}" for entry in refused)
    lead = "참고" if lang == "ko" else "Note"
    lines.extend(f"{lead}: {sentence(note, lang)}" for note in _texts(rule.get("notes"), lang))
    return lines


class OfflineTextGenerator:
    """A :class:`TextGenerator` that renders the rules through a fixed template (ko or en).

    The text is :func:`guidance_lines` joined by newlines: one sentence or list entry a line.
    """

    def guidance(
        self,
        classification: Classification,
        rules: Mapping[str, Any] | BaseModel,
        *,
        language: str = "ko",
    ) -> Guidance:
        text = "\n".join(guidance_lines(classification, rules, language))
        return Guidance(text=text, provider=PROVIDER, model="template", offline=True)
