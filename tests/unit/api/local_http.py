"""A tiny HTTP server on 127.0.0.1 that serves fixed bodies and redirects, for fetch tests."""

from __future__ import annotations

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LocalFiles:
    """Serves ``files`` by path; ``redirects`` answer 302; records each request's Host header.

    Paths in ``unsized`` are sent without a Content-Length (the body ends when the connection
    closes); paths in ``slow`` wait that many seconds before answering.
    """

    def __init__(
        self,
        files: dict[str, bytes],
        redirects: dict[str, str] | None = None,
        *,
        unsized: frozenset[str] = frozenset(),
        slow: dict[str, float] | None = None,
    ) -> None:
        self.files = files
        self.redirects = redirects or {}
        self.hosts: list[str] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hosts.append(self.headers.get("Host", ""))
                outer.paths.append(self.path)
                time.sleep((slow or {}).get(self.path, 0))
                if self.path in outer.redirects:
                    self.send_response(302)
                    self.send_header("Location", outer.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = outer.files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if self.path not in unsized:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                # the client may stop reading at its size cap
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def __enter__(self) -> LocalFiles:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
