"""The stored original, stripped: the image data and what decoding needs, nothing else.

A photo carries more than its pixels: EXIF with GPS coordinates and the camera's serial
number, XMP, comments, and whatever was appended after the image's end (a ZIP, a script).
The original kept beside the scan is rewritten here at the byte level, without decoding a
pixel: every segment or chunk is copied or dropped by its type, and the file ends where the
image ends.

Kept: what decoding and colour need (JPEG tables, frames and scans, JFIF, the ICC profile,
Adobe's colour transform; PNG's critical chunks, transparency, gamma, chromaticities, sRGB and
ICC; WebP's image, alpha, animation and ICC chunks). The EXIF orientation is the one piece of
metadata that changes how the photo looks: it is kept, alone, in a new minimal EXIF block.

Walking the structure also proves it complete: a file cut off before its end-of-image marker
(JPEG), its IEND chunk (PNG) or the length its RIFF header states (WebP) is refused here, so the
API can refuse a truncated upload without decoding it.
"""

from __future__ import annotations

import struct
import zlib

from PIL import Image

ORIENTATION = 0x0112

_JPEG_DROP_APP = frozenset({0xE1, *range(0xE3, 0xEE), 0xEF})  # EXIF/XMP, APP3..APP13, APP15
_JPEG_COMMENT = 0xFE
_PNG_KEEP = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT"}
)
_WEBP_KEEP = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP"})
_WEBP_EXIF_FLAG, _WEBP_XMP_FLAG = 0x08, 0x04


class StructureError(Exception):
    """The file's structure is cut off (``truncated``) or broken (``corrupt``)."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


def strip(data: bytes, fmt: str, orientation: int = 1) -> bytes:
    """``data`` (a ``jpeg``, ``png`` or ``webp``) without metadata and trailing bytes."""
    if fmt == "jpeg":
        return _jpeg(data, orientation)
    if fmt == "png":
        return _png(data, orientation)
    if fmt == "webp":
        return _webp(data, orientation)
    raise ValueError(f"cannot strip {fmt!r}: only jpeg, png and webp")


def _exif(orientation: int) -> bytes:
    """A minimal EXIF block (``Exif\\0\\0`` + TIFF) holding the orientation alone."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif.tobytes()


def _needs_orientation(orientation: int) -> bool:
    return orientation in range(2, 9)


def _cut(what: str) -> StructureError:
    return StructureError("truncated", f"the file ends before its {what}")


def _jpeg(data: bytes, orientation: int) -> bytes:
    out = [b"\xff\xd8"]
    exif_added = not _needs_orientation(orientation)
    i, n = 2, len(data)
    while True:
        if i >= n:
            raise _cut("end-of-image marker")
        if data[i] != 0xFF:
            raise StructureError("corrupt", f"no JPEG marker at byte {i}")
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            raise _cut("end-of-image marker")
        marker = data[i]
        i += 1
        if marker == 0xD9:  # end of image: anything after it is not the photo's
            out.append(b"\xff\xd9")
            return b"".join(out)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            out.append(bytes((0xFF, marker)))
            continue
        if i + 2 > n:
            raise _cut("segments")
        length = int.from_bytes(data[i : i + 2], "big")
        end = i + length
        if length < 2:
            raise StructureError("corrupt", f"a JPEG segment at byte {i} has length {length}")
        if end > n:
            raise _cut("segments")
        segment = bytes((0xFF, marker)) + data[i:end]
        if not exif_added and marker not in (0xE0,):
            # after SOI and JFIF: the orientation, in a block of its own
            payload = _exif(orientation)
            out.append(b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload)
            exif_added = True
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            out.append(segment)
            j = end
            while True:
                k = data.find(b"\xff", j)
                if k < 0 or k + 1 >= n:
                    raise _cut("end-of-image marker")
                following = data[k + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    j = k + 2  # a stuffed 0xFF or a restart marker belongs to the scan
                    continue
                if following == 0xFF:
                    j = k + 1
                    continue
                break
            out.append(data[end:k])
            i = k
            continue
        if marker in _JPEG_DROP_APP or marker == _JPEG_COMMENT:
            i = end
            continue
        if marker == 0xE2 and not data[i + 2 : i + 14].startswith(b"ICC_PROFILE\0"):
            i = end  # APP2 that is not the ICC profile (FlashPix, MPF)
            continue
        out.append(segment)
        i = end


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _png(data: bytes, orientation: int) -> bytes:
    out = [data[:8]]
    exif_added = not _needs_orientation(orientation)
    i, n = 8, len(data)
    while True:
        if i + 8 > n:
            raise _cut("IEND chunk")
        length = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        end = i + 12 + length
        if end > n:
            raise _cut("IEND chunk")
        if kind == b"IDAT" and not exif_added:
            out.append(_png_chunk(b"eXIf", _exif(orientation)[6:]))  # eXIf holds TIFF only
            exif_added = True
        if kind in _PNG_KEEP:
            out.append(data[i:end])
        if kind == b"IEND":
            return b"".join(out)
        i = end


def _webp(data: bytes, orientation: int) -> bytes:
    if len(data) < 12:
        raise _cut("RIFF header")
    size = int.from_bytes(data[4:8], "little")
    if size + 8 > len(data):
        raise StructureError("truncated", "the file is shorter than its RIFF header says")
    body = data[12 : 8 + size]  # what follows the stated length is not the image's
    chunks: list[tuple[bytes, bytes]] = []
    i = 0
    while i + 8 <= len(body):
        kind = body[i : i + 4]
        length = int.from_bytes(body[i + 4 : i + 8], "little")
        end = i + 8 + length
        if end > len(body):
            raise _cut("last chunk")
        if kind in _WEBP_KEEP:
            chunks.append((kind, body[i + 8 : end]))
        i = end + (length & 1)
    extended = any(kind == b"VP8X" for kind, _ in chunks)
    if extended:
        flags_off = _WEBP_EXIF_FLAG | _WEBP_XMP_FLAG
        add_exif = _needs_orientation(orientation)
        rebuilt = []
        for kind, payload in chunks:
            if kind == b"VP8X":
                flags = (payload[0] & ~flags_off & 0xFF) | (_WEBP_EXIF_FLAG if add_exif else 0)
                payload = bytes((flags,)) + payload[1:]
            rebuilt.append((kind, payload))
        if add_exif:
            rebuilt.append((b"EXIF", _exif(orientation)[6:]))
        chunks = rebuilt
    parts = [
        kind + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")
        for kind, payload in chunks
    ]
    content = b"WEBP" + b"".join(parts)
    return b"RIFF" + struct.pack("<I", len(content)) + content
