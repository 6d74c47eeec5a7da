"""A dead letter as the console shows it: its arguments with secrets redacted, a bounded
traceback, its death header, and the scan it belongs to."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from growbin.db.models import DeadLetterRecord
from growbin.runtime.deadletter import DEATH_HEADER
from growbin.scan.pipeline import scan_id_of
from growbin.settings import mask_url

REDACTED = "[redacted]"
MAX_TRACEBACK_LINES = 60
MAX_LINE_CHARS = 400  # so a traceback shows at most ~24,000 characters
MAX_VALUE_CHARS = 2000
# a key whose name says it holds a credential (access_token, api_key, password, Authorization)
_SECRET_NAME = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|authori[sz]ation|credential|cookie|session|"
    r"private[_-]?key|signature)",
    re.IGNORECASE,
)
# values that are credentials whatever their key: growbin API keys, bearer tokens, JWTs
_SECRET_VALUE = re.compile(
    r"(gb_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}|\bBearer\s+\S+|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)"
)
_URL_WITH_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/@:]+:[^\s/@]+@[^\s]+", re.IGNORECASE)


def redact(value: Any, key: str | None = None) -> Any:
    """``value`` with every credential replaced: by its key's name, or by its own shape."""
    if key is not None and _SECRET_NAME.search(key) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, dict):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        text = redact_text(value)
        return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + " ..."
    return value


def redact_text(text: str) -> str:
    """``text`` with credentials hidden: URL passwords masked, keys and tokens replaced."""
    text = _URL_WITH_PASSWORD.sub(lambda m: mask_url(m.group(0)), text)
    return _SECRET_VALUE.sub(REDACTED, text)


@dataclass(frozen=True)
class Arguments:
    args: Any
    kwargs: Any
    readable: bool  # false: the body is not a JSON task message (binary, pickle, malformed)


def arguments(record: DeadLetterRecord) -> Arguments:
    """The task's positional and keyword arguments from the archived body (protocol 2 or 1)."""
    if record.body_base64:
        return Arguments(None, None, readable=False)
    try:
        decoded = json.loads(record.body)
    except ValueError:
        return Arguments(None, None, readable=False)
    if isinstance(decoded, list) and len(decoded) >= 2:
        return Arguments(redact(decoded[0]), redact(decoded[1]), readable=True)
    if isinstance(decoded, dict):
        return Arguments(redact(decoded.get("args")), redact(decoded.get("kwargs")), True)
    return Arguments(None, None, readable=False)


def raw_args(record: DeadLetterRecord) -> Any:
    if record.body_base64:
        return None
    try:
        decoded = json.loads(record.body)
    except ValueError:
        return None
    if isinstance(decoded, list) and decoded:
        return decoded[0]
    return decoded.get("args") if isinstance(decoded, dict) else None


def scan_of(record: DeadLetterRecord) -> str | None:
    """The scan whose pipeline step this was, if it was one."""
    if not record.task_name.startswith("growbin.scan."):
        return None
    return scan_id_of(raw_args(record))


@dataclass(frozen=True)
class Traceback:
    text: str
    cut_lines: int  # lines left out (the middle of a long traceback)


def bounded_traceback(text: str) -> Traceback:
    """The first and last lines of a long traceback: where it started and what raised."""
    lines = redact_text(text).splitlines()
    head_size = 10
    if len(lines) > MAX_TRACEBACK_LINES:
        head, tail = lines[:head_size], lines[-(MAX_TRACEBACK_LINES - head_size) :]
        cut = len(lines) - len(head) - len(tail)
        lines = [*head, f"... {cut} lines left out ...", *tail]
    else:
        cut = 0
    # very long lines too: each keeps its start, which says where and what
    shown = "\n".join(
        line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " ..." for line in lines
    )
    return Traceback(shown, cut)


def death_header(record: DeadLetterRecord) -> Any:
    """The worker's death header; its traceback is shown (bounded) in its own section."""
    death = (record.headers or {}).get(DEATH_HEADER)
    if isinstance(death, dict) and death.get("traceback"):
        death = {**death, "traceback": "(shown under Traceback)"}
    return redact(death)


def other_headers(record: DeadLetterRecord) -> dict[str, Any]:
    headers = {k: v for k, v in (record.headers or {}).items() if k != DEATH_HEADER}
    return dict(redact(headers))


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)
