"""Image intake: refuse what is not a sane photo, then normalise it for the vision model.

The checks run cheapest first: byte size, magic bytes, then the dimensions in the header and
the file's structure. That is all the API does (:func:`validate_image`, :func:`accept_image`):
decoding 40 megapixels costs a second and hundreds of megabytes, so pixels are decoded once,
in the worker (:func:`preprocess`), never in the request path.

The header is read with the format's own Pillow plugin class rather than ``Image.open``:
``Image.open`` runs Pillow's process-wide decompression-bomb check, which only raises above
twice ``Image.MAX_IMAGE_PIXELS`` (and merely warns below it), and changing that global would
change it for every other user of Pillow in the worker. Our own limits are checked on the
header's width and height before any pixel is decoded.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from dataclasses import dataclass
from enum import StrEnum
from struct import error as struct_error

import imagehash
from PIL import (
    Image,
    ImageCms,
    ImageFile,
    ImageOps,
    ImageStat,
    JpegImagePlugin,
    PngImagePlugin,
    WebPImagePlugin,
)

from growbin.errors import ConfigError, GrowbinError
from growbin.scan import originals

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_SIDE = 12_000
FIT_TO = 2048
THUMBNAIL_TO = 300
JPEG_QUALITY = 85

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}

_PLUGINS: dict[str, type[ImageFile.ImageFile]] = {
    "jpeg": JpegImagePlugin.JpegImageFile,
    "png": PngImagePlugin.PngImageFile,
    "webp": WebPImagePlugin.WebPImageFile,
}

# Formats we recognise only to refuse them with a useful message.
_OTHER_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"BM", "BMP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (4, b"ftypheic", "HEIC"),
    (4, b"ftypheix", "HEIC"),
    (4, b"ftypmif1", "HEIF"),
    (4, b"ftypavif", "AVIF"),
    (0, b"%PDF", "PDF"),
)

_FIX_FORMAT = "send a JPEG, PNG or WebP photo"
_IPHONE_FIX = " (on an iPhone: Settings > Camera > Formats > Most Compatible)"


class RejectCode(StrEnum):
    EMPTY = "empty"
    TOO_LARGE = "too_large"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TOO_MANY_PIXELS = "too_many_pixels"
    TOO_WIDE = "too_wide"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"


class ImageRejected(GrowbinError):  # noqa: N818 - the name callers match on
    """The upload is not an image we accept. ``code`` is stable for API clients and metrics."""

    def __init__(self, code: RejectCode, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the header says about an accepted upload. ``format`` is from the bytes, not the name."""

    format: str
    width: int
    height: int
    bytes: int

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


@dataclass(frozen=True, slots=True)
class PreprocessedImage:
    """A normalised photo: sRGB JPEG without metadata, upright, at most ``FIT_TO`` a side.

    ``phash`` (16 hex digits) keys a near-duplicate cache; ``sha256`` is of the original bytes.
    ``dominant_rgb`` is the mean colour of the resized image.
    """

    image_bytes: bytes
    thumbnail_bytes: bytes
    width: int
    height: int
    phash: str
    sha256: str
    source_format: str
    dominant_rgb: tuple[int, int, int]
    aspect_ratio: float


def sniff_format(data: bytes) -> str | None:
    """``jpeg``, ``png`` or ``webp`` from the magic bytes, or None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def validate_image(
    data: bytes,
    *,
    filename: str | None = None,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_side: int = MAX_SIDE,
) -> ImageInfo:
    """Check an upload (size, format, header, dimensions, a complete structure) without
    decoding its pixels, or raise ImageRejected."""
    return accept_image(
        data, filename=filename, max_bytes=max_bytes, max_pixels=max_pixels, max_side=max_side
    )[0]


def accept_image(
    data: bytes,
    *,
    filename: str | None = None,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_side: int = MAX_SIDE,
) -> tuple[ImageInfo, bytes]:
    """:func:`validate_image`, and the original to store: without metadata (GPS, camera,
    comments) and without anything appended after the image (see :mod:`.originals`)."""
    info, image = _open_checked(data, filename, max_bytes, max_pixels, max_side)
    orientation = _orientation(image)
    try:
        stripped = originals.strip(data, info.format, orientation)
    except originals.StructureError as exc:
        raise _decode_error(
            EOFError(str(exc)) if exc.kind == "truncated" else ValueError(str(exc)),
            info.format,
            filename,
        ) from None
    return info, stripped


def preprocess(
    data: bytes,
    *,
    filename: str | None = None,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_side: int = MAX_SIDE,
    fit_to: int = FIT_TO,
    thumbnail_to: int = THUMBNAIL_TO,
    jpeg_quality: int = JPEG_QUALITY,
) -> PreprocessedImage:
    """Validate, decode, make upright, strip metadata, resize, thumbnail, hash."""
    info, image = _open_checked(data, filename, max_bytes, max_pixels, max_side)
    target = fit_within((info.width, info.height), fit_to)
    # JPEG can decode straight to a smaller scale (never below target), saving time and memory.
    image.draft("RGB", target)
    _decode(image, info, filename)
    upright = ImageOps.exif_transpose(image)
    if upright.mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        # These modes resample well (and keep their ICC profile in info), so the colour work
        # below runs on the smaller image; palette and 16-bit modes are converted first.
        upright = _resize(upright, fit_to)
    resized = _resize(_to_srgb(upright), fit_to)
    thumbnail = _resize(resized, thumbnail_to)
    mean = ImageStat.Stat(resized).mean
    return PreprocessedImage(
        image_bytes=_encode_jpeg(resized, jpeg_quality),
        thumbnail_bytes=_encode_jpeg(thumbnail, jpeg_quality),
        width=resized.width,
        height=resized.height,
        # The thumbnail is enough for a 32x32 DCT hash, and cheaper than the full image.
        phash=str(imagehash.phash(thumbnail)),
        sha256=hashlib.sha256(data).hexdigest(),
        source_format=info.format,
        dominant_rgb=(round(mean[0]), round(mean[1]), round(mean[2])),
        aspect_ratio=round(resized.width / resized.height, 4),
    )


def _orientation(image: ImageFile.ImageFile) -> int:
    """The EXIF orientation from the header's raw EXIF; ``getexif()`` would decode a PNG."""
    raw = image.info.get("exif")
    if not isinstance(raw, bytes) or not raw:
        return 1
    exif = Image.Exif()
    try:
        exif.load(raw)
        return int(exif.get(originals.ORIENTATION, 1))
    except (SyntaxError, OSError, ValueError, TypeError, KeyError, struct_error):
        return 1  # unreadable EXIF: nothing of it is kept anyway


def fit_within(size: tuple[int, int], box: int) -> tuple[int, int]:
    """The largest size with the same aspect ratio inside ``box`` x ``box``; never upscaled."""
    width, height = size
    longest = max(width, height)
    if longest <= box:
        return width, height
    scale = box / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _name(filename: str | None) -> str:
    return f"{filename!r}" if filename else "the upload"


def _open_checked(
    data: bytes, filename: str | None, max_bytes: int, max_pixels: int, max_side: int
) -> tuple[ImageInfo, ImageFile.ImageFile]:
    name = _name(filename)
    # Size first: nothing else may look at an oversized body.
    if len(data) > max_bytes:
        raise ImageRejected(
            RejectCode.TOO_LARGE,
            f"{name} is {len(data):,} bytes ({len(data) / 1_048_576:.2f} MiB), "
            f"{len(data) - max_bytes:,} bytes over the limit of {max_bytes:,} bytes "
            f"({max_bytes / 1_048_576:g} MiB): send a smaller or more compressed photo",
        )
    if not data:
        raise ImageRejected(
            RejectCode.EMPTY, f"{name} is empty (0 bytes): attach the photo file and send again"
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise _unrecognised(data, filename)
    try:
        image = _PLUGINS[fmt](io.BytesIO(data), filename or "")
    except Image.DecompressionBombError as exc:
        raise ImageRejected(
            RejectCode.TOO_MANY_PIXELS,
            f"{name} declares far more than {max_pixels / 1e6:g} megapixels ({exc}): "
            "send a smaller photo",
        ) from None
    except (SyntaxError, OSError, ValueError, EOFError) as exc:
        if _riff_cut_short(data):
            cut = EOFError("the file is shorter than its RIFF header says")
            raise _decode_error(cut, fmt, filename) from None
        raise ImageRejected(
            RejectCode.CORRUPT,
            f"{name} starts like a {fmt.upper()} file but its header is broken ({exc}): "
            f"{_FIX_FORMAT} that opens in a photo viewer",
        ) from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageRejected(
            RejectCode.TOO_MANY_PIXELS,
            f"{name} is {width}x{height} ({width * height / 1e6:g} megapixels); the limit is "
            f"{max_pixels / 1e6:g} megapixels: send a smaller photo",
        )
    if width > max_side or height > max_side:
        raise ImageRejected(
            RejectCode.TOO_WIDE,
            f"{name} is {width}x{height}; the limit is {max_side} pixels a side: "
            "send a smaller photo",
        )
    if fmt == "png":
        _verify_png(data, filename)
    return ImageInfo(format=fmt, width=width, height=height, bytes=len(data)), image


def _unrecognised(data: bytes, filename: str | None) -> ImageRejected:
    name = _name(filename)
    for offset, magic, label in _OTHER_SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            extra = _IPHONE_FIX if label.startswith("HE") else ""
            return ImageRejected(
                RejectCode.UNSUPPORTED_FORMAT,
                f"{name} is a {label} file, which is not accepted: {_FIX_FORMAT}{extra}",
            )
    head = data[:64]
    looks_text = all(32 <= b < 127 or b in b"\t\r\n" for b in head)
    what = f"it looks like text ({head[:24]!r})" if looks_text else f"it starts with {head[:8]!r}"
    said = ", whatever its name says" if filename else ""
    return ImageRejected(
        RejectCode.NOT_AN_IMAGE,
        f"{name} is not an image{said}: {what}; {_FIX_FORMAT}",
    )


def _riff_cut_short(data: bytes) -> bool:
    # WebP's decoder refuses a short file at open time with a vague message; the RIFF header
    # states the full length, so a cut-off upload can be named as such.
    return data[:4] == b"RIFF" and int.from_bytes(data[4:8], "little") > len(data) - 8


def _verify_png(data: bytes, filename: str | None) -> None:
    # Pillow decodes a PNG whose tail (IEND, last CRC) is cut off without complaint; verify()
    # walks every chunk and checks its CRC without decoding pixels. It spends the image object,
    # so it runs on a throwaway one.
    try:
        PngImagePlugin.PngImageFile(io.BytesIO(data)).verify()
    except (SyntaxError, OSError, ValueError, EOFError) as exc:
        raise _decode_error(exc, "png", filename) from None


def _decode(image: ImageFile.ImageFile, info: ImageInfo, filename: str | None) -> None:
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # With this process-wide flag Pillow pads a cut-off photo with grey instead of failing.
        raise ConfigError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True in this process: growbin must refuse "
            "truncated uploads, so remove the code that sets it (or set it back to False)"
        )
    try:
        image.load()
    except (SyntaxError, OSError, ValueError, EOFError) as exc:
        raise _decode_error(exc, info.format, filename) from None


def _decode_error(exc: Exception, fmt: str, filename: str | None) -> ImageRejected:
    text = str(exc)
    # Pillow says "image file is truncated", "Truncated File Read" or raises EOFError.
    if isinstance(exc, EOFError) or "truncated" in text.lower():
        return ImageRejected(
            RejectCode.TRUNCATED,
            f"{_name(filename)} is a truncated {fmt.upper()} ({text}): the upload was cut off; "
            "send the photo again",
        )
    return ImageRejected(
        RejectCode.CORRUPT,
        f"{_name(filename)} is a damaged {fmt.upper()} ({text}): "
        "send the photo again, or re-save it in a photo app",
    )


def _to_srgb(image: Image.Image) -> Image.Image:
    """Plain RGB pixels in sRGB, transparency flattened onto white, in a fresh image.

    The fresh image carries no ``info``: Pillow's JPEG encoder falls back to ``im.info`` for
    some metadata (the comment), so copying pixels is the only sure way to drop all of it.
    """
    icc = image.info.get("icc_profile")
    if icc and image.mode in ("RGB", "RGBA", "CMYK"):
        # A phone's Display P3 or a printer's CMYK profile would shift colours once dropped.
        # A broken profile is ignored: the pixels are kept as they are.
        with contextlib.suppress(ImageCms.PyCMSError, OSError, ValueError):
            converted = ImageCms.profileToProfile(
                image,
                ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGBA" if image.mode == "RGBA" else "RGB",
            )
            image = converted or image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit grey would clip to white if converted directly.
        image = image.convert("I").point(lambda v: v / 256).convert("L")
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    rgb = image.convert("RGB")
    clean = Image.new("RGB", rgb.size)
    clean.paste(rgb)
    return clean


def _resize(image: Image.Image, box: int) -> Image.Image:
    target = fit_within(image.size, box)
    if target == image.size:
        return image
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()
