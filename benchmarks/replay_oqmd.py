"""A local replay of OQMD's `GET /oqmdapi/formationenergy`, for the benchmark harness and tests/test_oqmd.py.

Pages are built lazily in OQMD's envelope, as qmpy's QmpyPagination (Django REST framework limit/offset) writes it:
`links.next` is the request's own URL with `limit` and `offset` replaced (parameters sorted and URL-encoded),
`meta.data_available` the number of matching records, and `fields` selects which keys each record keeps.
The records are those of tests/fixtures/oqmd (see its SOURCES.md).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from replay import Reply, Request  # noqa: E402

from matreg.fieldmap import load_field_map  # noqa: E402
from matreg.sources import FetchRequest  # noqa: E402
from matreg.sources.oqmd import query_fields  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "oqmd"
PATH = "/oqmdapi/formationenergy"
FILTER = "element_set=(Al-Fe),O"  # the query of the recorded page, which the assembled records also match
BASELINE_LIMIT = 100  # page size of the baseline client (the harness's default page size)


def fixture_records() -> list[dict[str, Any]]:
    """The two real records of the recorded page, then the records assembled from real OQMD tables."""
    recorded = json.loads((FIXTURES / "docs_formationenergy_AlFe_O_limit2.json").read_text(encoding="utf-8"))
    assembled = json.loads((FIXTURES / "formationenergy_records_AlFe_O.json").read_text(encoding="utf-8"))
    return recorded["data"] + assembled


def page_reply(request: Request, count: int, record_at: Callable[[int], dict], default_limit: int = 50) -> Reply:
    """The page of `count` records that `request` asks for (limit, offset, fields), in OQMD's envelope."""
    params = {key: values[-1] for key, values in request.query.items()}
    limit = int(params.get("limit") or default_limit)
    offset = int(params.get("offset") or 0)
    fields = params["fields"].split(",") if params.get("fields") else None
    root = f"http://{request.headers['Host']}"
    url = root + request.raw_path
    data = [_only(record_at(i), fields) for i in range(offset, min(offset + limit, count))]
    links = {
        "next": _replace(url, limit=limit, offset=offset + limit) if offset + limit < count else None,
        "previous": _previous(url, limit, offset),
        "base_url": {"href": f"{root}/oqmdapi", "meta": {"_oqmd_version": "1.0"}},
    }
    meta = {
        "query": {"representation": request.raw_path.removeprefix("/oqmdapi")},
        "api_version": "1.0",
        "time_stamp": time.strftime("%Y-%m-%d %H:%M:%S"),
        "data_returned": max(min(limit, count - offset), 0),
        "data_available": count,
        "comments": "",
        "query_tree": "",
        "more_data_available": links["next"] is not None or links["previous"] is not None,
    }
    return Reply.json({"links": links, "resource": {}, "data": data, "meta": meta, "response_message": "OK"})


def _only(record: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    return record if fields is None else {key: value for key, value in record.items() if key in fields}


def _replace(url: str, **params: Any) -> str:
    """`url` with these query parameters set (None: removed), sorted and encoded as DRF does."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    for key, value in params.items():
        query.pop(key, None)
        if value is not None:
            query[key] = [str(value)]
    return urlunsplit(parts._replace(query=urlencode(sorted(query.items()), doseq=True)))


def _previous(url: str, limit: int, offset: int) -> str | None:
    if offset <= 0:
        return None
    return _replace(url, limit=limit, offset=offset - limit if offset > limit else None)


def make_route(n_records: int, page_size: int) -> Callable[[Request], Reply]:
    """A route serving `n_records` copies of the fixture records (entry ids 1..n) at OQMD's path."""
    records = fixture_records()

    def record_at(index: int) -> dict[str, Any]:
        return records[index % len(records)] | {"entry_id": index + 1}

    def route(request: Request) -> Reply:
        if request.path != PATH:
            return Reply(404, b'{"detail": "Not found."}')
        return page_reply(request, n_records, record_at, default_limit=page_size)

    return route


def catalog_yaml(base_url: str) -> str:
    """A catalog whose `oqmd` source is the replay at `base_url` (no retries, no cache)."""
    return (
        "sources:\n"
        "  oqmd:\n"
        "    title: OQMD (local replay)\n"
        "    connector: oqmd\n"
        f"    base_url: {base_url.rstrip('/')}/oqmdapi/\n"
        "    provenance: dft\n"
        "    license: CC-BY-4.0\n"
        "    citation: Saal et al., JOM 65, 1501 (2013); Kirklin et al., npj Comput. Mater. 1, 15010 (2015)\n"
        "    database_version: replay\n"
        "    http: {retries: 0, backoff_s: 0, jitter_s: 0, timeout_s: 30, cache: false}\n"
    )


def fetch_request(page_size: int) -> FetchRequest:
    """The benchmark's query: the recorded page's filter, `page_size` records a page."""
    return FetchRequest(filter=FILTER, page_size=page_size)


def baseline(base_url: str, n_records: int, out_parquet: str) -> None:
    """The same records through OQMD's own Python client (PyPI qmpy-rester) into pandas, then Parquet."""
    import pandas as pd
    import qmpy_rester

    fields = query_fields(load_field_map("oqmd"))
    rows: list[dict[str, Any]] = []
    with qmpy_rester.QMPYRester(endpoint=base_url.rstrip("/")) as client:
        while len(rows) < n_records:
            page = client.get_oqmd_phases(
                verbose=False, filter=FILTER, fields=fields, limit=BASELINE_LIMIT, offset=len(rows)
            )
            rows += page["data"]
            if not page["links"]["next"]:
                break
    pd.DataFrame(rows).to_parquet(out_parquet)
