"""A local replay of the Materials Project API (`GET /heartbeat`, `GET /materials/summary/` paged by `_skip`/`_limit`)
for the benchmark harness.

Pages are built lazily in the summary API's envelope ({"data": [...], "meta": {"total_doc": N, ...}}) from copies of
the well-formed records of tests/fixtures/mp/summary.json (assembled from real Materials Project records, see its
SOURCES.md), each serialized once and given a unique letter-based material id such as the ones MP mints after
mp-3347529. Filters are not applied: every record matches the `deprecated=False` query of `fetch_request`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from string import ascii_lowercase

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from replay import Reply, Request  # noqa: E402

from matreg.fieldmap import load_field_map  # noqa: E402
from matreg.sources import FetchRequest  # noqa: E402
from matreg.sources.mp import requested_fields  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "mp"
SUMMARY_PATH = "/materials/summary/"
KEY_ENV = "MATREG_BENCH_MP_API_KEY"
BENCH_KEY = "0123456789abcdef0123456789abcdef"  # not a key: the connector and mp-api want 32 characters
PLACEHOLDER = "@@material_id@@"
BASELINE_CHUNK = 100  # page size of the baseline client (the harness's default page size)

# The harness builds the connector in a child process that inherits this environment; a dedicated variable
# keeps a real MP_API_KEY of the person running the benchmark out of it.
os.environ.setdefault(KEY_ENV, BENCH_KEY)


def templates() -> list[tuple[str, str]]:
    """Each well-formed fixture record as JSON text split around its material id."""
    records = json.loads((FIXTURES / "summary.json").read_text(encoding="utf-8"))["data"]
    texts = [json.dumps(record | {"material_id": PLACEHOLDER}) for record in records if "sites" in record["structure"]]
    return [tuple(text.split(json.dumps(PLACEHOLDER))) for text in texts]


def letter_id(number: int) -> str:
    """A letter-based material id: 0 -> 'mp-a', 25 -> 'mp-z', 26 -> 'mp-ba' (like emmet's AlphaID, unpadded)."""
    letters = ""
    while True:
        number, digit = divmod(number, 26)
        letters = ascii_lowercase[digit] + letters
        if number == 0:
            return "mp-" + letters


def make_route(n_records: int, page_size: int) -> Callable[[Request], Reply]:
    """A route serving `n_records` copies of the fixture records through the summary API's `_skip`/`_limit` pages."""
    parts = templates()
    heartbeat = (FIXTURES / "heartbeat.json").read_bytes()

    def route(request: Request) -> Reply:
        if request.path == "/heartbeat":
            return Reply(200, heartbeat)
        if request.path != SUMMARY_PATH:
            return Reply(404, b'{"detail": "Not Found"}')
        skip = int(request.query.get("_skip", ["0"])[-1])
        limit = int(request.query.get("_limit", [str(page_size)])[-1])
        docs = ",".join(
            json.dumps(letter_id(i)).join(parts[i % len(parts)]) for i in range(skip, min(skip + limit, n_records))
        )
        meta = json.dumps({"api_version": "0.86.3", "total_doc": n_records, "max_limit": 1000})
        return Reply(200, f'{{"data":[{docs}],"meta":{meta}}}'.encode())

    return route


def catalog_yaml(base_url: str) -> str:
    """A catalog with the replay as source `mp`: no retries, no cache, the benchmark key variable."""
    return (
        "sources:\n"
        "  mp:\n"
        "    title: Materials Project (local replay)\n"
        "    connector: mp\n"
        f"    base_url: {base_url.rstrip('/')}/\n"
        "    provenance: dft\n"
        "    license: CC-BY-4.0\n"
        '    citation: "A. Jain et al., APL Materials 1, 011002 (2013)"\n'
        f"    auth_env: {KEY_ENV}\n"
        "    http: {retries: 0, cache: false}\n"
    )


def fetch_request(page_size: int) -> FetchRequest:
    """Every non-deprecated material (--all), `page_size` records per request."""
    return FetchRequest(everything=True, page_size=page_size)


def baseline(base_url: str, n_records: int, out_parquet: str) -> None:
    """The same records through mp-api's own search (dicts, no document model) into pandas, then Parquet."""
    import pandas as pd
    from mp_api.client import MPRester

    fields = requested_fields(load_field_map("mp")).split(",")
    endpoint = base_url.rstrip("/") + "/"
    with MPRester(BENCH_KEY, endpoint=endpoint, use_document_model=False, mute_progress_bars=True) as rester:
        docs = rester.materials.summary.search(deprecated=False, fields=fields, chunk_size=BASELINE_CHUNK)
    frame = pd.DataFrame(docs)
    for column in ("structure", "symmetry", "bulk_modulus", "shear_modulus"):
        frame[column] = frame[column].map(json.dumps)  # nested documents as JSON text, as matreg stores structures
    if len(frame) != n_records:
        raise RuntimeError(f"mp-api returned {len(frame)} of {n_records} records")
    frame.to_parquet(out_parquet)
