"""Running the API: on a port (``growbin api``), or in a background thread (tests, benchmarks)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI


def serve(app: FastAPI, host: str, port: int, log_level: str = "info") -> None:
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        # SSE streams are long: do not wait for them for ever when asked to stop
        timeout_graceful_shutdown=5,
    )


class ServerThread:
    """uvicorn in a thread, on a free loopback port: ``with ServerThread(app) as s: s.url``."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", log_level: str = "warning"):
        self.app = app
        # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY on accepted connections only
        # when the listening socket says so, and without it every keep-alive request waits
        # ~40 ms for a delayed ACK
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(
            app, log_level=log_level, lifespan="on", timeout_graceful_shutdown=2
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self, timeout: float = 60.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the API server stopped while starting: see its log above")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start within {timeout:g} s")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
