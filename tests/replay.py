"""A real HTTP server on 127.0.0.1 that replays recorded responses, with scripted failures.

A test gives it a `route(request) -> Reply` function; `fail(path, ...)` makes the next requests of a path
answer with error statuses first (e.g. a 429 with Retry-After, or 503s), as real APIs sometimes do.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    """What the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    raw_path: str = ""
    received_at: float = 0.0  # time.monotonic() once the server had read its headers

    def json(self):
        """The body decoded as JSON."""
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    """What the server answers."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    sent_bytes: int | None = None  # the body's bytes sent before the connection closes (None: all)
    answered: bool = True  # False: the connection closes before any of the answer is sent

    @classmethod
    def file(cls, path: Path, content_type: str = "application/json") -> Reply:
        """A recorded response file, or 404 if there is none."""
        return cls(200, path.read_bytes(), content_type) if path.is_file() else cls(404, b"Not Found", "text/plain")

    @classmethod
    def json(cls, document, status: int = 200) -> Reply:
        """A JSON document."""
        return cls(status, json.dumps(document).encode())


class ReplayServer:
    """Serves `route(request)` on 127.0.0.1 at `port`, by default a free one (HTTPS with a `tls` context); records
    every request."""

    def __init__(
        self,
        route: Callable[[Request], Reply],
        prefix: str = "/",
        tls: ssl.SSLContext | None = None,
        port: int = 0,
    ) -> None:
        self.route = route
        self.requests: list[Request] = []
        self.failures: dict[str, list[Reply]] = defaultdict(list)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.port = self._server.server_port
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.root = f"{scheme}://127.0.0.1:{self.port}"
        self.url = self.root + prefix

    def fail(self, path: str, *statuses: int, retry_after: int | None = None) -> None:
        """Answer the next requests of `path` with these statuses before serving it normally."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self.failures[path].extend(Reply(status, b'{"error": "scripted"}', headers=headers) for status in statuses)

    def cut(self, path: str, times: int = 1) -> None:
        """Answer the next `times` requests of `path` with a body the connection breaks off inside (half of its
        announced Content-Length sent) before serving it normally."""
        body = b'{"data": [' + b" " * 100 + b"]}"
        self.failures[path].extend(Reply(200, body, sent_bytes=len(body) // 2) for _ in range(times))

    def drop(self, path: str, times: int = 1) -> None:
        """Close the connection of the next `times` requests of `path` before any answer, then serve it normally."""
        self.failures[path].extend(Reply(answered=False) for _ in range(times))

    def hits(self, path: str) -> int:
        """How many requests asked for `path`."""
        return sum(1 for request in self.requests if request.path == path)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real APIs: a client reuses its connection across pages
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms wait between them

            def _serve(self) -> None:
                received_at = time.monotonic()
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    dict(self.headers),
                    self.rfile.read(length) if length else b"",
                    self.path,
                    received_at,
                )
                server.requests.append(request)
                failures = server.failures[parts.path]
                reply = failures.pop(0) if failures else server.route(request)
                if not reply.answered:
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client was killed
                    self.wfile.write(reply.body[: reply.sent_bytes])
                if reply.sent_bytes is not None:
                    self.close_connection = True

            do_GET = do_POST = _serve  # noqa: N815 (http.server's naming)

            def handle(self) -> None:
                # a client may close its connection with the answer unread (a retried status's): not the server's error
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    super().handle()

            def log_message(self, *args) -> None:
                pass

        return Handler

    def __enter__(self) -> ReplayServer:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
