import io
import struct
import zlib

import imagehash
import pytest
from PIL import Image, ImageCms, ImageFile

from growbin.errors import ConfigError
from growbin.scan import images
from growbin.scan.images import ImageRejected, RejectCode, fit_within, preprocess, validate_image
from growbin.scan.samples import sample_bytes


def encode(image: Image.Image, fmt: str = "JPEG", **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def photo(size=(320, 240), fmt="JPEG", **params) -> bytes:
    """A small image with structure (a gradient and a block), so hashes have something to see."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.paste((200, 40, 40), (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    return encode(image, fmt, **params)


def png_claiming(width: int, height: int) -> bytes:
    """A valid small PNG whose IHDR is patched to claim another size (CRC fixed up)."""
    data = bytearray(encode(Image.new("RGB", (8, 8), "white"), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def rejected(data: bytes, **kwargs) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        validate_image(data, **kwargs)
    return info.value


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if anything reads pixels or even the header."""

    def boom(*args, **kwargs):
        raise AssertionError("decoded although the input should have been refused first")

    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)
    monkeypatch.setattr(images, "_PLUGINS", {k: boom for k in images._PLUGINS})


def test_a_jpeg_is_accepted_with_the_dimensions_from_its_header():
    data = photo((320, 240))
    info = validate_image(data, filename="x.jpg")
    assert (info.format, info.width, info.height, info.bytes) == ("jpeg", 320, 240, len(data))
    assert info.content_type == "image/jpeg"


def test_a_png_named_jpg_is_accepted_and_reported_as_png():
    info = validate_image(photo(fmt="PNG"), filename="photo.jpg")
    assert info.format == "png"


def test_a_webp_is_accepted():
    assert validate_image(photo(fmt="WEBP")).format == "webp"


def test_an_empty_upload_is_refused_as_empty():
    error = rejected(b"", filename="photo.jpg")
    assert error.code == RejectCode.EMPTY
    assert "photo.jpg" in str(error) and "0 bytes" in str(error)


def test_sixty_megabytes_are_refused_by_size_before_anything_reads_them(no_decoding):
    data = b"\xff\xd8\xff\xe0" + bytes(60 * 1024 * 1024)
    error = rejected(data, filename="huge.jpg")
    assert error.code == RejectCode.TOO_LARGE
    assert "60.00 MiB" in str(error) and "(10 MiB)" in str(error)
    assert f"{50 * 1024 * 1024 + 4:,} bytes over" in str(error)


def test_a_text_file_named_photo_jpg_is_refused_as_not_an_image():
    error = rejected(b"hello, this is not a picture\n", filename="photo.jpg")
    assert error.code == RejectCode.NOT_AN_IMAGE
    assert "photo.jpg" in str(error) and "text" in str(error)
    assert "send a JPEG, PNG or WebP photo" in str(error)


def test_a_gif_is_refused_as_an_unsupported_format():
    error = rejected(encode(Image.new("P", (10, 10)), "GIF"), filename="anim.gif")
    assert error.code == RejectCode.UNSUPPORTED_FORMAT
    assert "GIF" in str(error)


def test_a_heic_photo_is_refused_with_the_iphone_setting_that_avoids_it():
    error = rejected(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")
    assert error.code == RejectCode.UNSUPPORTED_FORMAT
    assert "HEIC" in str(error) and "Most Compatible" in str(error)


def test_a_png_header_claiming_20000x20000_is_refused_before_any_pixel_is_decoded(monkeypatch):
    def boom(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)
    error = rejected(png_claiming(20_000, 20_000))
    assert error.code == RejectCode.TOO_MANY_PIXELS
    assert "20000x20000 (400 megapixels)" in str(error)
    assert "the limit is 40 megapixels" in str(error) and "smaller photo" in str(error)


def test_a_very_long_side_is_refused_even_with_few_pixels():
    error = rejected(png_claiming(13_000, 10))
    assert error.code == RejectCode.TOO_WIDE
    assert "13000x10" in str(error) and "12000" in str(error)


def test_the_limits_can_be_tightened_per_call():
    assert rejected(photo((40, 40)), max_pixels=1_000).code == RejectCode.TOO_MANY_PIXELS
    assert rejected(photo((40, 40)), max_bytes=10).code == RejectCode.TOO_LARGE


def test_a_truncated_jpeg_is_refused_as_truncated():
    data = photo((640, 480))
    error = rejected(data[: len(data) // 2], filename="cut.jpg")
    assert error.code == RejectCode.TRUNCATED
    assert "cut.jpg" in str(error) and "send the photo again" in str(error)


@pytest.mark.parametrize("cut", [12, 40])
def test_a_png_cut_short_at_the_end_is_refused_as_truncated(cut):
    data = photo(fmt="PNG")
    assert rejected(data[:-cut]).code == RejectCode.TRUNCATED


def test_a_truncated_webp_is_refused_as_truncated():
    data = photo(fmt="WEBP")
    assert rejected(data[: len(data) // 2]).code == RejectCode.TRUNCATED


def test_a_png_with_a_damaged_chunk_is_refused_as_corrupt():
    data = bytearray(photo(fmt="PNG"))
    data[len(data) // 2] ^= 0xFF
    assert rejected(bytes(data)).code == RejectCode.CORRUPT


def test_pillows_load_truncated_images_flag_is_refused_loudly(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    # the worker's decode is where it would pad a cut-off photo with grey
    with pytest.raises(ConfigError, match="LOAD_TRUNCATED_IMAGES"):
        preprocess(photo())


@pytest.mark.parametrize("with_icc", [True, False], ids=["with an icc profile", "without"])
def test_preprocess_strips_exif_gps_xmp_comments_and_the_icc_profile(with_icc):
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif.get_ifd(0x8825)[2] = (37.0, 33.0, 59.0)  # GPSLatitude
    extra = {}
    if with_icc:  # the colour conversion makes a new image: test the path without it too
        extra["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = photo(exif=exif.tobytes(), comment=b"secret note", xmp=b"<x>xmp</x>", **extra)
    assert b"SecretCam" in data and b"secret note" in data
    result = preprocess(data)
    for encoded in (result.image_bytes, result.thumbnail_bytes):
        assert b"Exif\x00\x00" not in encoded
        assert b"SecretCam" not in encoded and b"secret note" not in encoded
        assert b"<x>xmp</x>" not in encoded
        with Image.open(io.BytesIO(encoded)) as out:
            assert dict(out.getexif()) == {}
            assert not {"exif", "icc_profile", "comment", "xmp"} & set(out.info)


def test_preprocess_turns_the_photo_upright_from_its_exif_orientation():
    image = Image.new("RGB", (200, 100), (220, 0, 0))
    image.paste((0, 0, 220), (100, 0, 200, 100))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    result = preprocess(encode(image, exif=exif.tobytes()))
    assert (result.width, result.height) == (100, 200)
    with Image.open(io.BytesIO(result.image_bytes)) as out:
        top, bottom = out.getpixel((50, 20)), out.getpixel((50, 180))
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]


def test_preprocess_fits_a_large_image_within_2048_keeping_its_aspect_ratio():
    result = preprocess(photo((4096, 1024)))
    assert (result.width, result.height) == (2048, 512)
    assert result.aspect_ratio == 4.0
    with Image.open(io.BytesIO(result.image_bytes)) as out:
        assert out.format == "JPEG" and out.size == (2048, 512) and out.mode == "RGB"


def test_preprocess_never_upscales_a_small_image():
    result = preprocess(photo((640, 480)))
    assert (result.width, result.height) == (640, 480)


def test_the_thumbnail_fits_within_300x300_without_cropping():
    result = preprocess(photo((1200, 600)))
    with Image.open(io.BytesIO(result.thumbnail_bytes)) as thumb:
        assert thumb.size == (300, 150)


def test_fit_within_keeps_the_ratio_and_never_returns_a_zero_side():
    assert fit_within((5000, 3000), 2048) == (2048, 1229)
    assert fit_within((10000, 2), 300) == (300, 1)
    assert fit_within((100, 50), 300) == (100, 50)


def test_a_transparent_png_is_flattened_onto_white():
    data = encode(Image.new("RGBA", (64, 64), (0, 0, 0, 0)), "PNG")
    assert preprocess(data).dominant_rgb == (255, 255, 255)


def test_sixteen_bit_grey_keeps_its_tones_instead_of_clipping_to_white():
    data = encode(Image.new("I;16", (32, 32), 32768), "PNG")
    r, g, b = preprocess(data).dominant_rgb
    assert 120 <= r <= 136 and r == g == b


def test_a_cmyk_jpeg_becomes_rgb():
    data = encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)))  # red ink
    r, g, b = preprocess(data).dominant_rgb
    assert r > 200 and g < 60 and b < 60


def test_a_broken_icc_profile_is_dropped_rather_than_failing_the_scan():
    result = preprocess(photo(icc_profile=b"definitely not a profile"))
    assert result.width == 320


def test_dominant_rgb_is_the_mean_colour():
    data = encode(Image.new("RGB", (100, 100), (10, 200, 30)), "PNG")
    assert preprocess(data).dominant_rgb == (10, 200, 30)


def test_the_sha256_is_of_the_original_bytes_and_the_source_format_is_kept():
    import hashlib

    data = photo(fmt="PNG")
    result = preprocess(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.source_format == "png"
    assert result.image_bytes.startswith(b"\xff\xd8\xff")


def test_the_phash_is_the_same_for_the_same_image():
    first, second = (
        preprocess(sample_bytes("cardboard.jpg")),
        preprocess(sample_bytes("cardboard.jpg")),
    )
    assert first.phash == second.phash
    assert len(first.phash) == 16 and int(first.phash, 16) >= 0


def test_the_phash_is_close_for_a_resized_copy_and_far_for_another_item():
    original = sample_bytes("cardboard.jpg")
    with Image.open(io.BytesIO(original)) as image:
        smaller = encode(image.convert("RGB").resize((400, 280)), quality=60)
    a = imagehash.hex_to_hash(preprocess(original).phash)
    b = imagehash.hex_to_hash(preprocess(smaller).phash)
    other = imagehash.hex_to_hash(preprocess(sample_bytes("glass_bottle.jpg")).phash)
    assert a - b <= 4
    assert a - other >= 16


def test_validation_reads_the_header_and_structure_and_never_decodes_pixels(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("pixels decoded in the request path")

    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)
    for fmt in ("JPEG", "PNG", "WEBP"):
        info = validate_image(photo((640, 480), fmt=fmt))
        assert (info.width, info.height) == (640, 480)
    # a cut-off JPEG is still refused, by its missing end-of-image marker
    data = photo((640, 480), quality=95)
    assert rejected(data[: len(data) * 2 // 3]).code == RejectCode.TRUNCATED


def gps_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0112] = orientation
    exif.get_ifd(0x8825)[2] = (37.0, 33.0, 59.0)  # GPSLatitude
    return exif


def zip_tail() -> bytes:
    return b"PK\x03\x04" + b"secret-archive-contents" * 10 + b"PK\x05\x06" + bytes(18)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_the_stored_original_loses_gps_exif_comments_and_appended_data_but_not_its_pixels(fmt):
    extra = {"comment": b"secret comment"} if fmt == "JPEG" else {}
    if fmt == "PNG":
        from PIL import PngImagePlugin

        text = PngImagePlugin.PngInfo()
        text.add_text("Comment", "secret comment")
        extra = {"pnginfo": text}
    data = photo((320, 240), fmt=fmt, exif=gps_exif(), **extra) + zip_tail()
    assert b"SecretCam" in data

    info, stored = images.accept_image(data)

    assert info.format == fmt.lower().replace("jpeg", "jpeg")
    for secret in (b"SecretCam", b"secret comment", b"secret-archive", b"PK\x03\x04"):
        assert secret not in stored, (fmt, secret)
    assert len(stored) < len(data)
    # the pixels are the same, byte for byte once decoded
    original = Image.open(io.BytesIO(data)).convert("RGB")
    kept = Image.open(io.BytesIO(stored))
    assert not kept.getexif().get_ifd(0x8825)
    assert kept.convert("RGB").tobytes() == original.tobytes()
    assert validate_image(stored) == images.ImageInfo(info.format, 320, 240, len(stored))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_the_stored_original_keeps_its_orientation_and_nothing_else_of_its_exif(fmt):
    data = photo((320, 240), fmt=fmt, exif=gps_exif(orientation=6))
    _, stored = images.accept_image(data)
    exif = Image.open(io.BytesIO(stored)).getexif()
    assert dict(exif) == {0x0112: 6}
    # the worker turns it upright exactly as it would have from the original
    assert preprocess(stored).phash == preprocess(data).phash
    assert (preprocess(stored).width, preprocess(stored).height) == (240, 320)


def test_the_stored_original_of_a_jpeg_keeps_its_icc_profile():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = photo(fmt="JPEG", icc_profile=srgb, exif=gps_exif())
    _, stored = images.accept_image(data)
    assert Image.open(io.BytesIO(stored)).info.get("icc_profile") == srgb
    assert b"SecretCam" not in stored
