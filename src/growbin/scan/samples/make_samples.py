"""Draw the sample photos and write ``samples.json``.

Run ``python -m growbin.scan.samples.make_samples [DIR]`` (DIR defaults to this package).

The pictures are ours (drawn with Pillow, no outside images), deterministic, and small. Each is
one item filling most of the frame on a plain background, so the mean colour and the shape of
the frame say something about the item, as they would for a reasonably framed photo.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from growbin.scan.images import preprocess

HERE = Path(__file__).resolve().parent
MANIFEST = "samples.json"

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Sample:
    file: str
    item: str
    hint: str
    description: str
    draw: Callable[[], Image.Image]


def _shade(base: RGB, factor: float) -> RGB:
    r, g, b = (min(255, max(0, round(c * factor))) for c in base)
    return r, g, b


def _cylinder(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], base: RGB) -> None:
    """A vertical cylinder lit from the left: darker edges, a highlight left of centre."""
    x0, y0, x1, y1 = box
    width = x1 - x0
    for x in range(x0, x1):
        t = (x - x0) / max(1, width - 1)
        light = 1.25 - 0.9 * abs(t - 0.35) ** 1.2
        draw.line([(x, y0), (x, y1)], fill=_shade(base, light))


def _pet_bottle() -> Image.Image:
    img = Image.new("RGB", (360, 720), (206, 222, 240))
    d = ImageDraw.Draw(img)
    body = (176, 208, 238)
    d.rounded_rectangle((70, 190, 290, 690), radius=40, fill=body)
    d.polygon([(70, 230), (150, 110), (210, 110), (290, 230)], fill=body)  # shoulder
    _cylinder(d, (80, 240, 280, 680), body)
    d.rectangle((150, 70, 210, 115), fill=(150, 190, 230))  # neck
    d.rounded_rectangle((140, 30, 220, 80), radius=8, fill=(30, 80, 190))  # cap
    d.rectangle((70, 380, 290, 480), fill=(40, 110, 200))  # label
    d.text((120, 420), "WATER 500ml", fill=(255, 255, 255))
    for y in range(520, 680, 40):  # moulded ribs
        d.line([(80, y), (280, y)], fill=_shade(body, 0.85), width=3)
    return img


def _can() -> Image.Image:
    img = Image.new("RGB", (480, 600), (150, 152, 158))
    d = ImageDraw.Draw(img)
    silver = (196, 198, 204)
    _cylinder(d, (90, 90, 390, 540), silver)
    d.ellipse((90, 50, 390, 130), fill=(214, 216, 222), outline=(120, 122, 128), width=4)
    d.ellipse((200, 70, 280, 100), fill=(170, 172, 178))  # opening tab
    d.ellipse((90, 500, 390, 580), fill=_shade(silver, 0.7))
    _cylinder(d, (90, 240, 390, 380), (120, 124, 134))  # printed band
    return img.filter(ImageFilter.GaussianBlur(1))


def _cardboard() -> Image.Image:
    img = Image.new("RGB", (800, 560), (96, 84, 72))
    d = ImageDraw.Draw(img)
    front, top = (158, 112, 66), (178, 130, 80)
    d.polygon([(60, 160), (560, 160), (560, 520), (60, 520)], fill=front)
    d.polygon([(60, 160), (240, 50), (740, 50), (560, 160)], fill=top)
    d.polygon([(560, 160), (740, 50), (740, 410), (560, 520)], fill=_shade(front, 0.8))
    d.polygon([(280, 160), (460, 50), (500, 50), (320, 160)], fill=(196, 170, 120))  # tape
    d.rectangle((280, 160, 320, 300), fill=(196, 170, 120))
    d.rectangle((380, 380, 520, 470), fill=(236, 236, 230))  # shipping label
    for y in range(395, 465, 14):
        d.line([(392, y), (500, y)], fill=(90, 90, 90), width=3)
    return img.filter(ImageFilter.GaussianBlur(0.8))


def _glass_bottle() -> Image.Image:
    img = Image.new("RGB", (320, 720), (150, 190, 160))
    d = ImageDraw.Draw(img)
    green = (34, 122, 64)
    d.rounded_rectangle((50, 250, 270, 700), radius=30, fill=green)
    d.polygon([(50, 290), (130, 150), (190, 150), (270, 290)], fill=green)
    _cylinder(d, (55, 290, 265, 690), green)
    d.rectangle((130, 60, 190, 160), fill=green)
    d.rectangle((126, 30, 194, 70), fill=(200, 200, 60))  # metal cap
    d.rectangle((50, 420, 270, 560), fill=(70, 170, 110))  # label
    return img.filter(ImageFilter.GaussianBlur(1))


def _food_waste() -> Image.Image:
    img = Image.new("RGB", (720, 480), (214, 158, 62))  # a wooden board
    d = ImageDraw.Draw(img)
    for y in range(0, 480, 24):  # wood grain
        d.line([(0, y), (720, y + 6)], fill=(200, 144, 52), width=3)
    # A banana peel: a thick yellow arc with two limp strips and a brown stem.
    d.arc((60, -260, 660, 420), start=35, end=145, fill=(246, 206, 48), width=120)
    d.polygon([(300, 380), (250, 470), (330, 470), (360, 390)], fill=(240, 198, 44))
    d.polygon([(380, 390), (420, 470), (500, 460), (430, 380)], fill=(236, 192, 40))
    d.line([(554, 254), (580, 200)], fill=(90, 70, 30), width=26)  # stem, along the arc's end
    for x, y in ((200, 290), (350, 330), (470, 310)):  # brown spots
        d.ellipse((x, y, x + 14, y + 10), fill=(120, 90, 30))
    return img


def _battery() -> Image.Image:
    img = Image.new("RGB", (300, 640), (236, 236, 232))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((70, 90, 230, 600), radius=18, fill=(30, 30, 32))  # body
    d.rectangle((70, 90, 230, 250), fill=(190, 120, 40))  # copper top band
    d.rounded_rectangle((120, 50, 180, 95), radius=6, fill=(200, 200, 205))  # + terminal
    d.text((120, 160), "+  AA", fill=(30, 30, 32))
    d.text((110, 400), "1.5V", fill=(220, 220, 220))
    return img


SAMPLES: tuple[Sample, ...] = (
    Sample(
        "pet_bottle.png",
        "pet_bottle",
        "생수 페트병",
        "a clear, bluish PET water bottle with a blue cap and label",
        _pet_bottle,
    ),
    Sample("can.jpg", "can", "음료 캔", "a silver aluminium drink can", _can),
    Sample(
        "cardboard.jpg",
        "cardboard",
        "택배 상자",
        "a brown cardboard delivery box with tape and a shipping label",
        _cardboard,
    ),
    Sample(
        "glass_bottle.jpg",
        "glass_bottle",
        "초록색 소주병",
        "a green glass soju bottle",
        _glass_bottle,
    ),
    Sample(
        "food_waste.png",
        "food_waste",
        "바나나 껍질 음식물",
        "a yellow banana peel on a wooden board",
        _food_waste,
    ),
    Sample(
        "battery.png",
        "battery",
        "다 쓴 건전지",
        "a used AA battery, black with a copper top",
        _battery,
    ),
)


def encode(image: Image.Image, file: str) -> bytes:
    out = io.BytesIO()
    if file.endswith(".png"):
        image.save(out, format="PNG", optimize=True)
    else:
        image.save(out, format="JPEG", quality=82, optimize=True)
    return out.getvalue()


def build(out_dir: Path) -> dict[str, dict[str, object]]:
    """Write every sample and the manifest into ``out_dir``; return the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, object]] = {}
    for sample in SAMPLES:
        data = encode(sample.draw(), sample.file)
        (out_dir / sample.file).write_bytes(data)
        # Measured through the real preprocessing, so a classifier can compare like with like.
        pre = preprocess(data, filename=sample.file)
        manifest[sample.file] = {
            "item": sample.item,
            "state": "clean",
            "hint": sample.hint,
            "description": sample.description,
            "dominant_rgb": list(pre.dominant_rgb),
            "aspect_ratio": pre.aspect_ratio,
        }
    text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
    (out_dir / MANIFEST).write_text(text, encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else HERE
    for name, entry in build(out_dir).items():
        size = (out_dir / name).stat().st_size
        print(f"{name:18} {size / 1024:5.1f} KiB  {entry['item']:12} rgb={entry['dominant_rgb']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
