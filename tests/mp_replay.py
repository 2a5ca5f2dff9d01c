"""A replay of the Materials Project API's heartbeat and summary endpoint on 127.0.0.1, shared by the tests that fetch
from it, with the catalog and environment (a test key, no MP_API_ENDPOINT override) such a fetch needs.

The replayed summary documents are assembled from real Materials Project records (tests/fixtures/mp/SOURCES.md);
the route filters them by the query parameters the real API reads and pages them by `_skip`/`_limit`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pymatgen.core import Composition
from replay import Reply, Request

FIXTURES = Path(__file__).parent / "fixtures" / "mp"
SUMMARY = json.loads((FIXTURES / "summary.json").read_text(encoding="utf-8"))
HEARTBEAT = (FIXTURES / "heartbeat.json").read_bytes()
SUMMARY_PATH = "/materials/summary/"
API_KEY = "5f1d0c9e8b7a4d3c2b1a09f8e7d6c5b4"  # 32 characters like a real key (mp-api checks the length); not one


def matches(doc: dict, query: dict[str, list[str]]) -> bool:
    """Whether a summary document satisfies the filter parameters the route understands (others are ignored)."""
    for name, values in query.items():
        value = values[-1]
        if name == "material_ids" and doc["material_id"] not in value.split(","):
            return False
        if name == "formula" and doc["formula_pretty"] not in value.split(","):
            return False
        if name == "chemsys" and Composition(doc["formula_pretty"]).chemical_system != value:
            return False
        if name == "deprecated" and str(doc["deprecated"]).lower() != value.lower():
            return False
        field, _, bound = name.rpartition("_")
        if bound in ("min", "max") and field in doc:
            number = doc[field]
            if number is None or (number < float(value) if bound == "min" else number > float(value)):
                return False
    return True


def summary_route_of(documents: list[dict]) -> Callable[[Request], Reply]:
    """The Materials Project API's heartbeat and summary endpoint over these documents, paged by `_skip`/`_limit`."""

    def route(request: Request) -> Reply:
        if request.path == "/heartbeat":
            return Reply(200, HEARTBEAT)
        if request.path != SUMMARY_PATH:
            return Reply(404, b'{"detail": "Not Found"}')
        docs = [doc for doc in documents if matches(doc, request.query)]
        skip, limit = int(request.query.get("_skip", ["0"])[0]), int(request.query.get("_limit", ["100"])[0])
        return Reply.json({"data": docs[skip : skip + limit], "meta": {**SUMMARY["meta"], "total_doc": len(docs)}})

    return route


def write_mp_catalog(path: Path, base_url: str, *, cache: bool = False) -> Path:
    """A catalog whose mp source points at `base_url`, with fast retries."""
    path.write_text(
        "sources:\n"
        "  mp:\n"
        "    title: Materials Project (local replay)\n"
        "    connector: mp\n"
        f"    base_url: {base_url}\n"
        "    provenance: dft\n"
        "    license: CC-BY-4.0\n"
        "    citation: Jain et al., APL Materials 1, 011002 (2013)\n"
        "    auth_env: MP_API_KEY\n"
        f"    http: {{retries: 3, backoff_s: 0, jitter_s: 0, timeout_s: 5, cache: {str(cache).lower()}}}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def mp_environment(monkeypatch):
    """The test key in MP_API_KEY and no MP_API_ENDPOINT: a fetch goes to the catalog's base URL, the replay, whatever
    the shell running the tests has set (conftest.py registers this module, so every test may use the fixture)."""
    monkeypatch.setenv("MP_API_KEY", API_KEY)
    monkeypatch.delenv("MP_API_ENDPOINT", raising=False)
