"""Serve an ASGI app with uvicorn in a background thread: the emulator, and the receiver in tests.

uvicorn is imported only when a server starts.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


class ThreadedServer:
    """uvicorn on ``host:port`` (0 = a free port) in a daemon thread; ``url`` is set once it listens.

    :param app: the ASGI application.
    :param host: address to listen on; loopback by default.
    :param port: port, 0 picks a free one.
    :param name: thread name, shown in debuggers and thread dumps.
    """

    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", port: int = 0, name: str = "asgi-server"
    ) -> None:
        self._app, self._host, self._port, self._name = app, host, port, name
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> ThreadedServer:
        import uvicorn

        # Bind here rather than in uvicorn so that port 0 gives us the port before the thread runs.
        sock = socket.socket(socket.AF_INET6 if ":" in self._host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app, log_level="warning", lifespan="off", access_log=False, timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=self._name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self._name} did not start")
            time.sleep(0.01)
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
