"""Reading a scan submission: a multipart upload, or JSON naming an image URL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request

from growbin.api.fetch import ImageFetcher
from growbin.api.problems import ApiError
from growbin.api.schemas import ScanUrlRequest

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1
MAX_HINT = 100

# the request body for the OpenAPI document: FastAPI cannot declare two content types itself
OPENAPI_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {
                            "type": "string",
                            "format": "binary",
                            "description": "a JPEG, PNG or WebP photo, at most 10 MB",
                        },
                        "hint": {
                            "type": "string",
                            "maxLength": MAX_HINT,
                            "description": "what the user says it is, e.g. 'PET bottle'",
                        },
                    },
                }
            },
            "application/json": {"schema": ScanUrlRequest.model_json_schema()},
        },
    }
}


@dataclass(frozen=True)
class Submission:
    data: bytes
    filename: str | None
    hint: str | None


def clean_filename(name: str | None) -> str | None:
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _CONTROL.sub("", base)[:255]
    return cleaned or None


def check_hint(hint: str | None) -> str | None:
    if hint is None or not hint.strip():
        return None
    if len(hint) > MAX_HINT or _CONTROL.search(hint):
        raise ApiError(
            422,
            "invalid_request",
            f"the hint must be at most {MAX_HINT} characters without control characters",
        )
    return hint.strip()


async def read_submission(request: Request, fetcher: ImageFetcher) -> Submission:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        return await _multipart(request)
    if media_type == "application/json":
        return await _json(request, fetcher)
    raise ApiError(
        415,
        "unsupported_media_type",
        "send the photo as multipart/form-data (field `image`, optional `hint`) or JSON "
        '{"image_url": ..., "hint": ...}',
    )


async def _multipart(request: Request) -> Submission:
    # one file; the text fields are small, so a large one is refused before it is buffered
    async with request.form(max_files=1, max_fields=4, max_part_size=4096) as form:
        image = form.get("image")
        if not isinstance(image, UploadFile):
            raise ApiError(
                422, "missing_image", "the form has no file field `image`: attach the photo"
            )
        hint = form.get("hint")
        if hint is not None and not isinstance(hint, str):
            raise ApiError(422, "invalid_request", "`hint` must be text, not a file")
        data = await image.read()
        return Submission(data=data, filename=clean_filename(image.filename), hint=check_hint(hint))


async def _json(request: Request, fetcher: ImageFetcher) -> Submission:
    raw = await request.body()
    try:
        body = ScanUrlRequest.model_validate_json(raw)
    except ValidationError as exc:
        errors = [
            {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        raise ApiError(422, "invalid_request", errors) from None
    fetched = await fetcher.fetch(body.image_url)
    return Submission(
        data=fetched.data, filename=clean_filename(fetched.filename), hint=check_hint(body.hint)
    )
