"""A real HTTP server on 127.0.0.1 whose faults can be switched on while it runs.

Subclasses speak one provider's protocol; this base gives them what tests and benchmarks need:
latency, failures on demand (the next n, a random share, or a standing mode), a record of
every call for counting, and a clean start and stop (``with Fake() as fake: ...``).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self, cast
from urllib.parse import parse_qsl, urlsplit

logger = logging.getLogger("growbin.fakes")

Mode = Literal["ok", "error500", "error429", "timeout", "malformed", "wrong_schema"]
MODES: tuple[str, ...] = ("ok", "error500", "error429", "timeout", "malformed", "wrong_schema")


@dataclass(frozen=True)
class RecordedCall:
    """One request as the fake saw it. ``time`` is ``time.monotonic()`` at arrival.

    ``status`` is what the fake answered (or will answer: a call is recorded on arrival, before
    the injected latency, so counts are exact as soon as the client returns). In ``timeout``
    mode the client gives up before the answer arrives.
    """

    method: str
    path: str
    model: str | None
    time: float
    status: int


@dataclass
class FakeRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes
    json: Any = None


@dataclass
class FakeResponse:
    status: int
    body: Any  # bytes are sent as they are; anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """Base of the fakes. Subclasses implement :meth:`route`, :meth:`error_body` and the hooks."""

    name = "fake"

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        latency: float = 0.0,
        mode: Mode = "ok",
        fail_rate: float = 0.0,
        retry_after: str | None = "1",
        timeout_sleep: float = 30.0,
        port: int = 0,
        seed: int = 0,
    ) -> None:
        self.api_key = api_key
        self.retry_after = retry_after
        self.timeout_sleep = timeout_sleep
        self._lock = threading.Lock()
        self._latency = latency
        self._mode: Mode = mode
        self._fail_rate = fail_rate
        self._failures: deque[int] = deque()
        self._calls: list[RecordedCall] = []
        self._rng = random.Random(seed)
        self._port = port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # Runtime knobs: read and written from any thread.
    @property
    def latency(self) -> float:
        with self._lock:
            return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        with self._lock:
            self._latency = max(0.0, seconds)

    @property
    def mode(self) -> Mode:
        with self._lock:
            return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        with self._lock:
            self._mode = mode

    @property
    def fail_rate(self) -> float:
        with self._lock:
            return self._fail_rate

    @fail_rate.setter
    def fail_rate(self, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fail_rate {rate} is outside 0..1")
        with self._lock:
            self._fail_rate = rate

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """Answer the next ``n`` authorised requests with ``status`` (429 adds Retry-After)."""
        with self._lock:
            self._failures.extend([status] * n)

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    @property
    def call_count(self) -> int:
        with self._lock:
            return len(self._calls)

    def reset(self) -> None:
        """Forget calls and pending failures; back to mode ok, no latency."""
        with self._lock:
            self._calls.clear()
            self._failures.clear()
            self._mode, self._latency, self._fail_rate = "ok", 0.0, 0.0

    # Lifecycle.
    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError(f"fake {self.name} server is not running: use it as a context")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def describe(self) -> str:
        """What a person needs to point a client at this fake."""
        return f"{self.url} (api key {self.api_key!r})"

    def start(self) -> Self:
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", self._port), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # stop() waits up to one poll
            name=f"fake-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping for latency or timeout
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Hooks for subclasses.
    def authorize(self, request: FakeRequest) -> FakeResponse | None:
        """None when the request may pass, else the provider's refusal (usually 401)."""
        return None

    def model_of(self, request: FakeRequest) -> str | None:
        return None

    def route(self, request: FakeRequest, mode: Mode) -> FakeResponse:
        raise NotImplementedError

    def error_body(self, status: int) -> Any:
        return {"error": f"injected failure {status}"}

    # The request path, called from handler threads.
    def process(self, request: FakeRequest) -> FakeResponse:
        arrived = time.monotonic()
        response = self.authorize(request)
        with self._lock:
            latency, mode = self._latency, self._mode
            injected: int | None = None
            if response is None:
                if self._failures:
                    injected = self._failures.popleft()
                elif self._fail_rate and self._rng.random() < self._fail_rate:
                    injected = 500
                elif mode in ("error500", "error429"):
                    injected = 500 if mode == "error500" else 429
        if response is None and injected is not None:
            response = FakeResponse(injected, self.error_body(injected))
            if injected == 429 and self.retry_after is not None:
                response.headers["Retry-After"] = self.retry_after
        if response is None:
            response = self.route(request, mode)
        with self._lock:
            self._calls.append(
                RecordedCall(
                    request.method, request.path, self.model_of(request), arrived, response.status
                )
            )
        delay = latency + (self.timeout_sleep if mode == "timeout" else 0.0)
        if delay > 0:
            self._stopping.wait(delay)
        return response


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers do
    timeout = 10  # an idle keep-alive connection frees its thread after this long
    # Headers and body in one segment, sent at once: otherwise Nagle and delayed ACKs add
    # ~40 ms to every keep-alive request, which would swamp the latency benchmarks inject.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        request = FakeRequest(
            self.command, split.path, dict(parse_qsl(split.query)), self.headers, body
        )
        if body:
            try:
                request.json = json.loads(body)
            except ValueError:
                request.json = None
        fake = cast(_Server, self.server).fake
        try:
            response = fake.process(request)
        except Exception as exc:
            # A bug in a fake must show as a loud 500, not as a dropped connection that a
            # client would take for a transient network fault and retry.
            logger.exception("fake %s failed on %s %s", fake.name, request.method, request.path)
            response = FakeResponse(500, {"error": f"fake {fake.name} crashed: {exc!r}"})
        if isinstance(response.body, bytes):
            payload, content_type = response.body, "text/plain; charset=utf-8"
        else:
            payload = json.dumps(response.body, ensure_ascii=False).encode()
            content_type = "application/json; charset=utf-8"
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout mode): nothing to do

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)


def run_cli(factory: type[FakeServer], argv: Sequence[str] | None, default_port: int) -> None:
    """``python -m growbin.fakes.<name>_server``: serve on 127.0.0.1 until Ctrl-C."""
    parser = argparse.ArgumentParser(description=f"Fake {factory.name} server on 127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--mode", choices=MODES, default="ok")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of 500s, 0..1")
    parser.add_argument("--api-key", default=None, help="the key clients must send")
    args = parser.parse_args(argv)
    options: dict[str, Any] = {
        "port": args.port,
        "latency": args.latency,
        "mode": args.mode,
        "fail_rate": args.fail_rate,
    }
    if args.api_key:
        options["api_key"] = args.api_key
    with factory(**options) as fake:
        print(f"fake {fake.name} listening: {fake.describe()}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped", flush=True)
