"""Sample photos drawn by ``make_samples.py``, for the demo, the offline classifier and tests.

``samples.json`` maps each file name to the item it shows (a rule id), a hint a user might
type, and the mean colour and aspect ratio (width / height) after preprocessing.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any


def samples_dir() -> Path:
    return Path(str(resources.files("growbin.scan.samples")))


def load_manifest() -> dict[str, dict[str, Any]]:
    """``{file name: {"item", "state", "hint", "description", "dominant_rgb", ...}}``."""
    text = (samples_dir() / "samples.json").read_text(encoding="utf-8")
    manifest: dict[str, dict[str, Any]] = json.loads(text)
    return manifest


def sample_bytes(name: str) -> bytes:
    """The bytes of one sample, by file name (as in the manifest)."""
    if name not in load_manifest():
        raise KeyError(f"no sample named {name!r}: see growbin/scan/samples/samples.json")
    return (samples_dir() / name).read_bytes()
