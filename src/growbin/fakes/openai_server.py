"""A fake OpenAI chat completions server: ``POST /v1/chat/completions``.

It answers what a structured-output request asks for, deterministically:

- a ``waste_classification`` schema: the item named on the user's ``Hint:`` line, else one
  picked from a hash of the image data URL (the same photo always gets the same item);
- a ``disposal_guidance`` schema: the rules from the user message, rendered by the offline
  template (so the text is plausible and checkable);
- JSON mode (``response_format`` ``{"type": "json_object"}``): the same answers, for the schema
  the system prompt names (``JSON schema "waste_classification"``), as a model that follows its
  instructions would; ``fence_json`` wraps them in a markdown code fence, as some models do;
- no schema: a short plain reply.

``json_schema=False`` makes it a server without structured output: a json_schema request is
answered 400, as such servers do.

It echoes the requested model, refuses a wrong ``Authorization`` with 401 as OpenAI does,
and takes every fault of :class:`growbin.fakes.base.FakeServer`.

Run by hand: ``python -m growbin.fakes.openai_server --port 8089 --latency 0.1``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable, Sequence
from itertools import count
from typing import Any

from growbin.fakes.base import FakeRequest, FakeResponse, FakeServer, Mode, run_cli
from growbin.scan.providers.base import ITEM_CATEGORIES, KNOWN_ITEMS, Classification, match_hint
from growbin.scan.providers.offline import OfflineTextGenerator
from growbin.scan.providers.openai_compat import (
    GUIDANCE_SCHEMA_NAME,
    HINT_PREFIX,
    VISION_SCHEMA_NAME,
)

COMPLETIONS_PATH = "/v1/chat/completions"
_ITEM_LINE = re.compile(r"^Item: (\S+) \(confidence ([0-9.]+)\)", re.MULTILINE)
_LANGUAGE_LINE = re.compile(r"^Language: (\S+)", re.MULTILINE)
_PROMPTED_SCHEMA = re.compile(r'JSON schema "(\w+)"')


class FakeOpenAI(FakeServer):
    """``with FakeOpenAI() as fake: OpenAIConfig(base_url=fake.base_url, api_key=fake.api_key)``.

    ``models``: the model names it knows (404 model_not_found for others); None accepts any.
    ``item_override``: answer this item for every classification (may be outside KNOWN_ITEMS,
    to test how a client copes with a model that ignores the schema).
    ``json_schema``: whether ``response_format`` json_schema is supported (JSON mode always is).
    ``fence_json``: in JSON mode, wrap the answer in a markdown code fence.
    """

    name = "openai"

    def __init__(
        self,
        *,
        api_key: str = "test-openai-key",
        models: Iterable[str] | None = None,
        item_override: str | None = None,
        json_schema: bool = True,
        fence_json: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(api_key=api_key, **options)
        self.models = frozenset(models) if models is not None else None
        self.item_override = item_override
        self.json_schema = json_schema
        self.fence_json = fence_json
        self._ids = count(1)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def describe(self) -> str:
        return f"base_url {self.base_url} (api key {self.api_key!r})"

    def authorize(self, request: FakeRequest) -> FakeResponse | None:
        if request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return _error(
            401,
            "Incorrect API key provided. You can find your API key in your account settings.",
            "invalid_request_error",
            "invalid_api_key",
        )

    def model_of(self, request: FakeRequest) -> str | None:
        model = request.json.get("model") if isinstance(request.json, dict) else None
        return model if isinstance(model, str) else None

    def error_body(self, status: int) -> Any:
        if status == 429:
            return _error_body("Rate limit reached for requests", "requests", "rate_limit_exceeded")
        if status >= 500:
            return _error_body("The server had an error while processing your request.")
        return _error_body(f"Injected error {status}.", "invalid_request_error")

    def route(self, request: FakeRequest, mode: Mode) -> FakeResponse:
        if request.path != COMPLETIONS_PATH:
            return _error(404, f"Invalid URL ({request.method} {request.path})")
        if request.method != "POST":
            return _error(405, f"Method {request.method} not allowed for {request.path}")
        body = request.json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "We could not parse the JSON body of your request.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _error(400, "you must provide a model parameter", code="missing_model")
        if self.models is not None and model not in self.models:
            message = f"The model `{model}` does not exist or you do not have access to it."
            return _error(404, message, code="model_not_found")
        kind = _format_type(body)
        if kind not in (None, "text", "json_object", "json_schema"):
            return _error(400, f"Invalid value for response_format.type: {kind!r}.")
        if kind == "json_schema" and not self.json_schema:
            return _error(400, "response_format type json_schema is not supported by this server")
        content = self._content(body, mode)
        return FakeResponse(200, self._completion(model, content, len(request.body)))

    def _content(self, body: dict[str, Any], mode: Mode) -> str:
        if mode == "malformed":
            return 'Sure! Here is the JSON you asked for: {"item": "pet_bottle",'
        if mode == "wrong_schema":
            return json.dumps({"label": "bottle", "score": "high"})
        json_mode = _format_type(body) == "json_object"
        schema = _prompted_schema(body["messages"]) if json_mode else _schema_name(body)
        texts, images = _user_parts(body["messages"])
        if schema == VISION_SCHEMA_NAME:
            answer = json.dumps(self._classification(texts, images))
        elif schema == GUIDANCE_SCHEMA_NAME:
            answer = json.dumps({"text": _guidance_text(texts)}, ensure_ascii=False)
        elif json_mode:
            answer = json.dumps({"reply": f"This is a fake reply from {body['model']}."})
        else:
            return f"This is a fake reply from {body['model']}."
        if json_mode and self.fence_json:
            return f"```json\n{answer}\n```"
        return answer

    def _classification(self, texts: Sequence[str], images: Sequence[str]) -> dict[str, Any]:
        digest = hashlib.sha256("".join(images).encode()).digest()
        hinted = None
        for line in "\n".join(texts).splitlines():
            if line.startswith(HINT_PREFIX):
                hinted = match_hint(line.removeprefix(HINT_PREFIX))
        if self.item_override is not None:
            item, confidence = self.item_override, 0.9
        elif hinted is not None:
            item, confidence = hinted, 0.9
        else:
            item = KNOWN_ITEMS[int.from_bytes(digest[:4], "big") % len(KNOWN_ITEMS)]
            confidence = 0.6 + (digest[4] % 40) / 100
        return {
            "category": ITEM_CATEGORIES.get(item, "general"),
            "item": item,
            "state": "clean",
            "confidence": round(confidence, 2),
        }

    def _completion(self, model: str, content: str, request_bytes: int) -> dict[str, Any]:
        prompt_tokens, completion_tokens = request_bytes // 4, max(1, len(content) // 4)
        return {
            "id": f"chatcmpl-fake{next(self._ids):06d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": "fp_fake",
        }


def _error_body(message: str, kind: str = "server_error", code: str | None = None) -> Any:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _error(
    status: int, message: str, kind: str = "invalid_request_error", code: str | None = None
) -> FakeResponse:
    return FakeResponse(status, _error_body(message, kind, code))


def _format_type(body: dict[str, Any]) -> str | None:
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    return kind if isinstance(kind, str) else None


def _prompted_schema(messages: list[Any]) -> str | None:
    """In JSON mode the schema is named in the system prompt; the fake reads it from there."""
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "system":
            found = _PROMPTED_SCHEMA.search(str(message.get("content", "")))
            if found:
                return found.group(1)
    return None


def _schema_name(body: dict[str, Any]) -> str | None:
    response_format = body.get("response_format")
    if not isinstance(response_format, dict):
        return None
    schema = response_format.get("json_schema")
    name = schema.get("name") if isinstance(schema, dict) else None
    return name if isinstance(name, str) else None


def _user_parts(messages: list[Any]) -> tuple[list[str], list[str]]:
    """Text and image URLs of the user messages (system prompts are not the user's words)."""
    texts: list[str] = []
    images: list[str] = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            elif isinstance(part, dict) and part.get("type") == "image_url":
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, dict) else None
                images.append(str(url or ""))
    return texts, images


def _guidance_text(texts: Sequence[str]) -> str:
    text = "\n".join(texts)
    item_line = _ITEM_LINE.search(text)
    language = _LANGUAGE_LINE.search(text)
    _, _, rules_text = text.partition("Rules:\n")
    try:
        rules = json.loads(rules_text)
    except ValueError:
        rules = None
    if not isinstance(rules, dict):
        return "Please follow your local disposal rules for this item."
    item = item_line.group(1) if item_line else str(rules.get("item", "general_waste"))
    classification = Classification(
        category=ITEM_CATEGORIES.get(item, "general"),
        item=item,
        confidence=float(item_line.group(2)) if item_line else 0.9,
        provider="fake",
        model="fake",
        offline=False,
    )
    lang = language.group(1) if language else "ko"
    return OfflineTextGenerator().guidance(classification, rules, language=lang).text


def main(argv: Sequence[str] | None = None) -> None:
    run_cli(FakeOpenAI, argv, default_port=8089)


if __name__ == "__main__":
    main()
