"""A real webhook receiver on 127.0.0.1 (http.server in a thread) that records every request it gets."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """`answer(request) -> (status, headers)` decides each response (default 200); `url` ends with `/hook`."""

    def __init__(self, answer: Callable[[Received], tuple[int, dict[str, str]]] | None = None) -> None:
        self.answer = answer or (lambda _r: (200, {}))
        self.received: list[Received] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                status, headers = receiver.answer(request)
                with receiver._changed:
                    receiver.received.append(request)
                    receiver._changed.notify_all()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """Blocks (call it from a thread, see `until`) until `count` requests arrived."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} webhook requests, got {len(self.received)}")
                self._changed.wait(left)
            return list(self.received)

    async def until(self, count: int, timeout: float = 20.0) -> list[Received]:
        import anyio.to_thread

        return await anyio.to_thread.run_sync(self.wait_for, count, timeout)
