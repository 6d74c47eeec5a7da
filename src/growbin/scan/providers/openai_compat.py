"""Vision classification and guidance text over the OpenAI chat completions API.

Works with OpenAI and with compatible servers a user runs locally (Ollama, vLLM, LM Studio,
llama.cpp's server) and with :mod:`growbin.fakes.openai_server`. What the server must support:
chat completions with image input (an ``image_url`` content part holding a ``data:`` URL) for
the vision model, and one of two ways to get JSON back, chosen by ``response_format``:

- ``json_schema`` (the default): structured output, the answer constrained to our schema;
- ``json_object``: JSON mode, for servers without schema support; the schema then goes into
  the system prompt, and our validation (pydantic) is what holds the answer to it.

Either way what comes back is validated: servers may ignore the schema, models may wrap the
JSON in a code fence, and an answer may be cut off.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any, Literal, Self, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from growbin.ops.metrics import provider_call
from growbin.scan.providers.base import (
    KNOWN_CATEGORIES,
    KNOWN_ITEMS,
    KNOWN_STATES,
    Classification,
    Guidance,
    normalize_item,
    rules_as_dict,
)
from growbin.scan.providers.errors import (
    ProviderOutputError,
    ProviderRefusedContentError,
    public_url,
)
from growbin.scan.providers.http import MAX_REASON_CHARS, json_body, send

VISION_SCHEMA_NAME = "waste_classification"
GUIDANCE_SCHEMA_NAME = "disposal_guidance"
HINT_PREFIX = "Hint: "
MAX_HINT_CHARS = 100
LANGUAGE_NAMES = {"ko": "Korean", "en": "English"}
ResponseFormat = Literal["json_schema", "json_object"]
RESPONSE_FORMAT_FIX = (
    "if the server does not support response_format json_schema, set "
    "GROWBIN_OPENAI_RESPONSE_FORMAT=json_object; otherwise check the request fields it accepts"
)
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)

_M = TypeVar("_M", bound=BaseModel)


class OpenAIConfig(BaseModel):
    """Filled by the caller from settings (GROWBIN_OPENAI_*)."""

    model_config = ConfigDict(frozen=True)

    base_url: str = "https://api.openai.com/v1"
    api_key: SecretStr
    vision_model: str = "gpt-5"
    text_model: str = "gpt-4o-mini"
    timeout: float = Field(default=30.0, gt=0)
    # Reasoning models spend output tokens on thinking before they answer: leave them room.
    vision_max_tokens: int = Field(default=2000, gt=0)
    text_max_tokens: int = Field(default=400, gt=0)
    # Reasoning models (gpt-5) accept only the default temperature, so vision sends none.
    text_temperature: float | None = 0.7
    image_detail: Literal["low", "high", "auto"] = "low"
    provider_name: str = "openai"
    # json_schema: the server constrains the answer; json_object: JSON mode, schema in the prompt.
    response_format: ResponseFormat = "json_schema"


def vision_schema() -> dict[str, Any]:
    """The JSON schema the vision model must answer in (strict: every field required)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "category": {"type": "string", "enum": list(KNOWN_CATEGORIES)},
            "item": {"type": "string", "enum": list(KNOWN_ITEMS)},
            "state": {"type": ["string", "null"], "enum": [*KNOWN_STATES, None]},
            "confidence": {"type": "number"},
        },
        "required": ["category", "item", "state", "confidence"],
    }


def guidance_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    }


class _VisionAnswer(BaseModel):
    category: str
    item: str
    state: str | None
    confidence: float = Field(ge=0.0, le=1.0)


class _GuidanceAnswer(BaseModel):
    text: str = Field(min_length=1)


class _Message(BaseModel):
    content: str | None = None
    refusal: str | None = None


class _Choice(BaseModel):
    message: _Message
    finish_reason: str | None = None


class _Completion(BaseModel):
    model: str | None = None
    choices: list[_Choice] = Field(min_length=1)


class _OpenAIChat:
    """One chat completion with a JSON schema, and the checks on what comes back."""

    def __init__(self, config: OpenAIConfig, *, http: httpx.Client | None = None) -> None:
        self.config = config
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=config.timeout)
        self._url = config.base_url.rstrip("/") + "/chat/completions"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={public_url(self.config.base_url)!r})"

    def _complete(
        self, body: dict[str, Any], schema_name: str, schema: dict[str, Any]
    ) -> tuple[str, str]:
        """POST the request; return (message content, model that answered)."""
        if self.config.response_format == "json_object":
            body["response_format"] = {"type": "json_object"}
            system = body["messages"][0]
            system["content"] += "\n" + schema_instructions(schema_name, schema)
        else:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "strict": True, "schema": schema},
            }
        key = self.config.api_key.get_secret_value()
        with provider_call(str(body["model"])):
            return self._post(body, key)

    def _post(self, body: dict[str, Any], key: str) -> tuple[str, str]:
        response = send(
            self._http,
            "POST",
            self._url,
            provider=self.config.provider_name,
            secrets=(key,),
            fixes={
                400: RESPONSE_FORMAT_FIX,
                401: "check GROWBIN_OPENAI_API_KEY",
                404: "check the model name and base URL",
            },
            headers={"Authorization": f"Bearer {key}"},
            json=body,
        )
        try:
            completion = _Completion.model_validate(
                json_body(response, provider=self.config.provider_name)
            )
        except ValidationError as exc:
            raise self._output_error(f"not a chat completion ({_first_error(exc)})") from exc
        choice = completion.choices[0]
        if choice.message.refusal:
            raise ProviderRefusedContentError(
                self.config.provider_name, "POST", self._url, choice.message.refusal[:200]
            )
        if choice.finish_reason == "length":
            raise self._output_error("the answer was cut off at the token limit")
        if not choice.message.content:
            raise self._output_error("the answer is empty")
        return choice.message.content, completion.model or str(body["model"])

    def _parse(self, content: str, kind: type[_M]) -> _M:
        fenced = _FENCE.match(content)
        if fenced:  # JSON mode models often wrap the object in a markdown code fence
            content = fenced.group(1)
        try:
            return kind.model_validate_json(content)
        except ValidationError as exc:
            raise self._output_error(
                f"the content does not fit the {kind.__name__.strip('_')} schema "
                f"({_first_error(exc)})"
            ) from exc

    def _output_error(self, reason: str) -> ProviderOutputError:
        return ProviderOutputError(
            self.config.provider_name, "POST", self._url, reason[:MAX_REASON_CHARS]
        )


class OpenAIVisionClassifier(_OpenAIChat):
    """A :class:`VisionClassifier` that sends the photo to a vision model as a data URL."""

    def classify(self, image_jpeg: bytes, *, hint: str | None = None) -> Classification:
        data_url = "data:image/jpeg;base64," + base64.b64encode(image_jpeg).decode("ascii")
        text = "Classify the waste item in this photo."
        if hint and hint.strip():
            # One line, bounded: a hint is user input and must not add instructions of its own.
            clean = " ".join(hint.split())[:MAX_HINT_CHARS]
            text += f"\n{HINT_PREFIX}{clean}"
        body: dict[str, Any] = {
            "model": self.config.vision_model,
            "messages": [
                {"role": "system", "content": _vision_instructions()},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": text},
                        {
                            "type": "image_url",
                            "image_url": {"url": data_url, "detail": self.config.image_detail},
                        },
                    ],
                },
            ],
            "max_completion_tokens": self.config.vision_max_tokens,
        }
        content, model = self._complete(body, VISION_SCHEMA_NAME, vision_schema())
        answer = self._parse(content, _VisionAnswer)
        item, category, confidence = normalize_item(answer.item, answer.confidence)
        evidence = f"the model {model} looked at the photo"
        if hint and hint.strip():
            evidence += f" and the hint {' '.join(hint.split())[:40]!r}"
        return Classification(
            category=category,
            item=item,
            state=answer.state if answer.state in KNOWN_STATES else None,
            confidence=confidence,
            provider=self.config.provider_name,
            model=model,
            offline=False,
            evidence=evidence,
        )


class OpenAITextGenerator(_OpenAIChat):
    """A :class:`TextGenerator` that asks a text model to explain the rules to the user."""

    def guidance(
        self,
        classification: Classification,
        rules: Mapping[str, Any] | BaseModel,
        *,
        language: str = "ko",
    ) -> Guidance:
        language_name = LANGUAGE_NAMES.get(language, language)
        user = (
            f"Item: {classification.item} (confidence {classification.confidence:.2f})\n"
            f"Language: {language}\n"
            f"Rules:\n{json.dumps(rules_as_dict(rules), ensure_ascii=False)}"
        )
        body: dict[str, Any] = {
            "model": self.config.text_model,
            "messages": [
                {"role": "system", "content": _guidance_instructions(language_name)},
                {"role": "user", "content": user},
            ],
            "max_completion_tokens": self.config.text_max_tokens,
        }
        if self.config.text_temperature is not None:
            body["temperature"] = self.config.text_temperature
        content, model = self._complete(body, GUIDANCE_SCHEMA_NAME, guidance_schema())
        answer = self._parse(content, _GuidanceAnswer)
        return Guidance(
            text=answer.text.strip(),
            provider=self.config.provider_name,
            model=model,
            offline=False,
        )


def schema_instructions(schema_name: str, schema: dict[str, Any]) -> str:
    """The system prompt's addition in JSON mode: the server does not know the schema."""
    return (
        "Answer with one JSON object and nothing else. It must fit the JSON schema "
        f'"{schema_name}": ' + json.dumps(schema, separators=(",", ":"))
    )


def _vision_instructions() -> str:
    return (
        "You sort household waste by Korean recycling rules. Look at the photo and answer in "
        "JSON with: category, item, state and confidence. item is one of "
        f"{', '.join(KNOWN_ITEMS)}; use general_waste when none fits. state is clean, dirty, "
        "mixed, or null when you cannot tell. confidence is your probability (0 to 1) that the "
        "item is right. A hint, if given, is what the user typed: weigh it, but trust the photo."
    )


def _guidance_instructions(language_name: str) -> str:
    return (
        "You are a friendly assistant who explains how to throw away one item in Korea. Use "
        "only the rules given; never invent a rule. Write at most five short sentences in "
        f"{language_name}. If the confidence is below 0.5, say first that the photo may show "
        'something else. Answer in JSON: {"text": "..."}.'
    )


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "top level"
    return f"{where}: {first['msg']}"
