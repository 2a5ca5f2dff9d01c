"""A local replay of an OPTIMADE provider's `GET /v1/structures`, for the benchmark harness.

Pages are built lazily as the optimade-python-tools reference server writes them: `links.next` is the request's
own URL with `page_offset` advanced (a string; null on the last page), `meta.data_returned` counts the matching
entries. The entries are copies, with unique ids, of the real reference-server entries and the entries assembled
from real Materials Project records in tests/fixtures/optimade (see its SOURCES.md).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from replay import Reply, Request  # noqa: E402

from matreg.sources import FetchRequest  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "optimade"
PATH = "/v1/structures"
FILTER = "nelements>=2"  # the recorded reference-server pages' filter (the harness does not filter)
PROVIDER = {"name": "Example provider", "prefix": "exmpl", "homepage": "https://example.com/"}


def fixture_attributes() -> list[str]:
    """The `attributes` objects of the fixture entries, each already serialized as JSON."""
    pages = sorted(FIXTURES.glob("ref_nelements2_page*.json")) + sorted(FIXTURES.glob("assembled_mp_page*.json"))
    entries = [entry for page in pages for entry in json.loads(page.read_text(encoding="utf-8"))["data"]]
    return [json.dumps(entry["attributes"], separators=(",", ":")) for entry in entries]


def make_route(n_records: int, page_size: int) -> Callable[[Request], Reply]:
    """A route serving `n_records` entries (ids bench-0 .. bench-<n-1>) through `links.next` at /v1/structures."""
    attributes = fixture_attributes()

    def route(request: Request) -> Reply:
        if request.path != PATH:
            return Reply(404, b'{"errors": [{"status": "404", "title": "Not Found"}]}')
        params = {key: values[-1] for key, values in request.query.items()}
        limit = int(params.get("page_limit") or page_size)
        offset = int(params.get("page_offset") or 0)
        end = min(offset + limit, n_records)
        data = ",".join(
            f'{{"id":"bench-{i}","type":"structures","attributes":{attributes[i % len(attributes)]}}}'
            for i in range(offset, end)
        )
        following = params | {"page_offset": end}
        next_link = json.dumps(f"http://{request.headers['Host']}{PATH}?{urlencode(following)}")
        meta = {"api_version": "1.2.0", "data_returned": n_records, "more_data_available": end < n_records}
        body = (
            f'{{"data":[{data}],"meta":{json.dumps(meta | {"provider": PROVIDER})},'
            f'"links":{{"next":{next_link if end < n_records else "null"}}}}}'
        )
        return Reply(200, body.encode())

    return route


def catalog_yaml(base_url: str) -> str:
    """A catalog whose `optimade` source is the replay at `base_url` (no retries, no cache)."""
    return (
        "sources:\n"
        "  optimade:\n"
        "    title: OPTIMADE provider (local replay)\n"
        "    connector: optimade\n"
        f"    base_url: {base_url.rstrip('/')}\n"
        f"    provider: {PROVIDER['prefix']}\n"
        "    provenance: dft\n"
        "    license: CC-BY-4.0\n"
        "    citation: Andersen et al., Sci. Data 8, 217 (2021)\n"
        "    database_version: replay\n"
        "    http: {retries: 0, backoff_s: 0, jitter_s: 0, timeout_s: 30, cache: false}\n"
    )


def fetch_request(page_size: int) -> FetchRequest:
    """The benchmark's query: the recorded pages' filter, `page_size` entries a page."""
    return FetchRequest(filter=FILTER, page_size=page_size)


def baseline(base_url: str, n_records: int, out_parquet: str) -> None:
    """The same entries through OPTIMADE's own Python client (PyPI optimade[http-client]) into pandas, then Parquet."""
    import pandas as pd
    from optimade.client import OptimadeClient

    client = OptimadeClient(
        base_urls=[base_url.rstrip("/")], max_results_per_provider=n_records, use_async=False, silent=True
    )
    results = client.get(filter=FILTER)["structures"][FILTER][base_url.rstrip("/")]
    rows = [{"id": entry["id"], **entry["attributes"]} for entry in results["data"]]
    pd.DataFrame(rows).to_parquet(out_parquet)
