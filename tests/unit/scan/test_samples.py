import io

import pytest
from PIL import Image, ImageChops, ImageStat

from growbin.scan.images import preprocess, sniff_format, validate_image
from growbin.scan.rules import load_rules
from growbin.scan.samples import load_manifest, sample_bytes, samples_dir
from growbin.scan.samples.make_samples import SAMPLES, build

MANIFEST = load_manifest()


def test_the_manifest_lists_exactly_the_samples_the_script_draws():
    assert set(MANIFEST) == {s.file for s in SAMPLES}
    assert len(MANIFEST) >= 5


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_each_sample_is_a_small_valid_jpeg_or_png(name):
    data = sample_bytes(name)
    assert len(data) < 60 * 1024
    fmt = sniff_format(data)
    assert fmt == ("png" if name.endswith(".png") else "jpeg")
    assert validate_image(data, filename=name).format == fmt


def test_every_samples_expected_item_has_its_own_rule():
    book = load_rules()
    for name, entry in MANIFEST.items():
        result = book.lookup(entry["item"], entry["state"])
        assert not result.fallback, f"{name}: {entry['item']} has no rule"
        assert entry["hint"].strip()


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_the_manifest_colour_and_shape_match_the_preprocessed_sample(name):
    result = preprocess(sample_bytes(name))
    entry = MANIFEST[name]
    assert all(
        abs(a - b) <= 2 for a, b in zip(result.dominant_rgb, entry["dominant_rgb"], strict=True)
    )
    assert result.aspect_ratio == pytest.approx(entry["aspect_ratio"], abs=0.01)


def test_the_samples_have_distinct_colours_to_tell_them_apart():
    colours = [tuple(e["dominant_rgb"]) for e in MANIFEST.values()]
    for i, a in enumerate(colours):
        for b in colours[i + 1 :]:
            assert sum(abs(x - y) for x, y in zip(a, b, strict=True)) > 30


def test_the_script_redraws_the_shipped_samples(tmp_path):
    build(tmp_path)
    for name in MANIFEST:
        with (
            Image.open(tmp_path / name) as fresh,
            Image.open(io.BytesIO(sample_bytes(name))) as shipped,
        ):
            diff = ImageChops.difference(fresh.convert("RGB"), shipped.convert("RGB"))
            # PNG is lossless; JPEG may differ by a rounding step between encoder versions.
            assert max(ImageStat.Stat(diff).mean) < (0.01 if name.endswith(".png") else 1.0)
    assert samples_dir().joinpath("samples.json").is_file()
