"""Stand-ins that need no network: for the embedded demo, for tests, and when a provider is down.

They are honest about what they are: every result says ``provider="offline"`` and
``offline=True``. The classifier believes the user's hint when it names a known item; without
one it only looks at the photo's mean colour and shape, so its confidence stays at or below 0.5.
"""

from __future__ import annotations

import colorsys
import io
from collections.abc import Mapping
from typing import Any

from PIL import Image, ImageStat, UnidentifiedImageError
from pydantic import BaseModel

from growbin.scan.providers.base import (
    FALLBACK_ITEM,
    ITEM_CATEGORIES,
    Classification,
    Guidance,
    match_hint,
    rules_as_dict,
)
from growbin.scan.providers.errors import InvalidImageError

PROVIDER = "offline"
HINT_CONFIDENCE = 0.8
MAX_RULE_CONFIDENCE = 0.5
# Photos are a few megapixels; refuse anything far larger before decoding (decompression bombs).
MAX_PIXELS = 50_000_000


def colour_rule(rgb: tuple[float, float, float], aspect: float) -> tuple[str, float]:
    """(item, confidence) from a mean colour (0-255) and height / width.

    Crude on purpose: enough to make the demo's answers plausible for a clear photo of one
    item on a plain background, and no more. Confidence never exceeds MAX_RULE_CONFIDENCE.
    """
    hue, sat, val = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    deg = hue * 360
    tall, wide = aspect >= 1.4, aspect <= 0.8
    green = 75 <= deg <= 170 and sat >= 0.25
    brown = 15 <= deg <= 45 and sat >= 0.25 and val <= 0.75
    blue = 180 <= deg <= 250 and sat >= 0.12
    if tall and (green or (brown and val < 0.55)):
        return "glass_bottle", 0.45
    if tall and (blue or (sat < 0.15 and val > 0.7)):
        return "pet_bottle", 0.45
    if 20 <= deg <= 65 and sat > 0.55 and val > 0.6:
        return "food_waste", 0.35
    if wide and brown:
        return "cardboard", 0.4
    if not tall and sat < 0.15 and 0.35 <= val <= 0.85:
        return "can", 0.35
    if sat < 0.12 and val > 0.85:
        return "paper", 0.3
    return FALLBACK_ITEM, 0.2


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
    """A :class:`VisionClassifier` from the user's hint, else from colour and shape rules."""

    def classify(self, image_jpeg: bytes, *, hint: str | None = None) -> Classification:
        item = match_hint(hint)
        if item is not None:
            confidence, model = HINT_CONFIDENCE, "hint"
        else:
            rgb, aspect = image_features(image_jpeg)
            item, confidence = colour_rule(rgb, aspect)
            confidence, model = min(confidence, MAX_RULE_CONFIDENCE), "colour-rules"
        return Classification(
            category=ITEM_CATEGORIES[item],
            item=item,
            state=None,  # colour cannot tell clean from dirty
            confidence=confidence,
            provider=PROVIDER,
            model=model,
            offline=True,
        )


def _has_batchim(word: str) -> bool:
    """Whether a Korean word ends in a final consonant (it picks 은/는 and 을/를)."""
    last = word.strip()[-1:] or "a"
    if "가" <= last <= "힣":
        return (ord(last) - 0xAC00) % 28 != 0
    return False


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
        return f"{what} → {instead}" if instead else what
    return _text(entry, language)


class OfflineTextGenerator:
    """A :class:`TextGenerator` that renders the rules through a fixed template (ko or en).

    ``rules`` may be a plain dict (``item``, ``names``, ``bin``, ``steps``, ``not_accepted``),
    a :class:`growbin.scan.rules.schema.Rule` or a ``LookupResult`` (or their JSON dumps): a
    lookup result's own ``bin`` and ``steps`` win, since they have the item's state folded in.
    Any language but Korean gets English: the rules carry those two only.
    """

    def guidance(
        self,
        classification: Classification,
        rules: Mapping[str, Any] | BaseModel,
        *,
        language: str = "ko",
    ) -> Guidance:
        data = rules_as_dict(rules)
        lang = "ko" if language == "ko" else "en"
        rule = data["rule"] if isinstance(data.get("rule"), Mapping) else data
        item = rule.get("id") or rule.get("item") or classification.item
        name = _text(rule.get("names"), lang) or str(item)
        bin_name = _text(data.get("bin") or rule.get("bin"), lang)
        steps = _texts(data["steps"] if "steps" in data else rule.get("steps"), lang)
        refused = [r for r in (_refusal(e, lang) for e in rule.get("not_accepted") or ()) if r]
        lines: list[str] = []
        if classification.confidence < 0.5:
            lines.append(
                "사진만으로는 확실하지 않아요. 품목이 다르면 다시 찍어 주세요."
                if lang == "ko"
                else "The photo is not clear enough to be sure; retake it if this is wrong."
            )
        state = (rule.get("states") or {}).get(data.get("state_applied") or "")
        if isinstance(state, Mapping) and state.get("description"):
            lines.append(_text(state["description"], lang))
        if lang == "ko":
            particle = "은" if _has_batchim(name) else "는"
            where = f"{bin_name}에 버려 주세요." if bin_name else "분리배출해 주세요."
            lines.append(f"{name}{particle} {where}")
        else:
            where = f"in the {bin_name}" if bin_name else "as the steps below say"
            lines.append(f"Put the {name} {where}.")
        lines.extend(f"{n}. {step}" for n, step in enumerate(steps, 1))
        if refused:
            lead = "이런 것은 함께 버리면 안 돼요" if lang == "ko" else "Keep these out"
            lines.append(f"{lead}: {', '.join(refused)}.")
        lead = "참고" if lang == "ko" else "Note"
        lines.extend(f"{lead}: {note}" for note in _texts(rule.get("notes"), lang))
        return Guidance(text="\n".join(lines), provider=PROVIDER, model="template", offline=True)
