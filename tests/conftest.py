"""Shared fixtures: a real HTTP server on 127.0.0.1 replaying recorded NIST-JANAF tables, and test catalogs."""

from __future__ import annotations

import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from matreg.catalog import load_catalog
from matreg.store import Store

REPO = Path(__file__).resolve().parents[1]
JANAF_TABLES = REPO / "examples" / "janaf" / "tables"
SHARED_JANAF = REPO.parent / "shared" / "fixtures" / "nist-janaf" / "tables"
LAB_EXAMPLE = REPO / "examples" / "lab"


class ReplayServer:
    """Serves JANAF tables at their real URL path (/tables/<ID>.txt); can fail chosen paths first."""

    def __init__(self, tables: Path) -> None:
        self.tables = tables
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.failures: dict[str, list[int]] = defaultdict(list)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}/tables/"

    def fail(self, path: str, *statuses: int) -> None:
        """Answer the next requests of `path` with these statuses before serving it normally."""
        self.failures[path].extend(statuses)

    def hits(self, path: str) -> int:
        """How many requests asked for `path`."""
        return sum(1 for requested, _ in self.requests if requested == path)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.requests.append((self.path, dict(self.headers)))
                if server.failures[self.path]:
                    return self._send(server.failures[self.path].pop(0), b"Internal Server Error")
                name = self.path.removeprefix("/tables/")
                file = server.tables / name
                if not self.path.startswith("/tables/") or "/" in name or not file.is_file():
                    return self._send(404, b"Not Found")
                return self._send(200, file.read_bytes())

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        return Handler

    def __enter__(self) -> ReplayServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def janaf_server():
    with ReplayServer(JANAF_TABLES) as server:
        yield server


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "store")


def write_catalog(path: Path, base_url: str, *, auth_env: str | None = None, cache: bool = True) -> Path:
    """A catalog whose janaf source points at `base_url`, with fast retries."""
    auth = f"    auth_env: {auth_env}\n" if auth_env else ""
    path.write_text(
        "sources:\n"
        "  janaf:\n"
        "    title: NIST-JANAF (local replay)\n"
        "    connector: janaf\n"
        f"    base_url: {base_url}\n"
        "    provenance: experimental\n"
        "    license: Public domain\n"
        "    citation: Chase 1998\n"
        "    database_version: '4th edition (1998)'\n"
        f"{auth}"
        f"    http: {{retries: 3, backoff_s: 0, timeout_s: 5, cache: {str(cache).lower()}}}\n"
        "datasets:\n"
        "  thermo:\n"
        "    description: test\n"
        "    version: 0.1.0\n"
        "    properties: [enthalpy_of_formation, entropy]\n"
        "    temperature_K: 298.15\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def catalog_path(tmp_path, janaf_server) -> Path:
    return write_catalog(tmp_path / "catalog.yaml", janaf_server.url)


@pytest.fixture
def catalog(catalog_path):
    return load_catalog(catalog_path)
