"""A local NOMAD for the fetch benchmark: n copies of the fixture entries, paged by `page_after_value`.

Pages are built per request from pre-serialized fixture entries (tests/fixtures/nomad, real Materials Project
records in NOMAD's SI layout), each copy with a unique, ordered entry_id, at NOMAD's real path
`/prod/v1/api/v1/entries/archive/query`. No baseline: NOMAD's own client (PyPI nomad-lab 2.0.0) would downgrade
plotly and botocore in the shared environment and add some fifty packages (see the connector's report).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from replay import Reply, Request  # noqa: E402

from matreg.sources import FetchRequest  # noqa: E402

API = "/prod/v1/api/v1/"
ARCHIVE_QUERY = API + "entries/archive/query"
FIXTURES = REPO / "tests" / "fixtures" / "nomad"
_ID = "__ENTRY_ID__"


def _templates() -> list[tuple[str, str]]:
    """Each valid fixture entry as JSON text split around its entry_id, ready to be joined with a new id."""
    templates = []
    for path in sorted(FIXTURES.glob("page*.json")):
        for entry in json.loads(path.read_text(encoding="utf-8"))["data"]:
            if entry["entry_id"] == "mp-567510":  # the deliberately malformed record
                continue
            entry = {key: value for key, value in entry.items() if key != "processed"} | {"entry_id": _ID}
            head, tail = json.dumps(entry, separators=(",", ":")).split(json.dumps(_ID))
            templates.append((head, tail))
    return templates


def _entry_id(index: int) -> str:
    return f"bench-{index:010d}"  # zero-padded: string order is index order, as NOMAD sorts entry_id


def make_route(n_records: int, page_size: int):
    """A route serving `n_records` entries in pages of the request's page_size (NOMAD's pagination rules)."""
    templates = _templates()

    def route(request: Request) -> Reply:
        if request.method != "POST" or request.path != ARCHIVE_QUERY:
            return Reply.json({"detail": "Not Found"}, 404)
        body = request.json()
        pagination = dict(body.get("pagination") or {})
        size = int(pagination.get("page_size") or page_size)
        after = pagination.get("page_after_value")
        start = int(after.rsplit("-", 1)[1]) + 1 if after else 0
        indexes = range(start, min(start + size, n_records))
        data = ",".join(
            f'{head}"{_entry_id(i)}"{tail}' for i in indexes for head, tail in [templates[i % len(templates)]]
        )
        pagination["total"] = n_records
        if 0 < len(indexes) < n_records and len(indexes) >= size:  # NOMAD names a next value after any full page
            pagination["next_page_after_value"] = _entry_id(indexes[-1])
        envelope = {key: body.get(key) for key in ("owner", "query", "required")} | {"pagination": pagination}
        return Reply(200, (json.dumps(envelope)[:-1] + f',"data":[{data}]}}').encode())

    return route


def catalog_yaml(base_url: str) -> str:
    """A catalog whose nomad source is the local replay at `base_url` (the server root), no retries, no cache."""
    return (
        "sources:\n"
        "  nomad:\n"
        "    title: NOMAD (local benchmark replay)\n"
        "    connector: nomad\n"
        f"    base_url: {base_url.rstrip('/')}{API}\n"
        "    provenance: dft\n"
        "    license: CC-BY-4.0\n"
        '    citation: "M. Scheffler et al., FAIR data enabling new horizons for materials research, '
        'Nature 604, 635-642 (2022)"\n'
        "    doi: 10.1038/s41586-022-04501-x\n"
        "    database_version: v1 API (benchmark replay)\n"
        "    http: {retries: 0, backoff_s: 0, jitter_s: 0, timeout_s: 30, cache: false}\n"
    )


def fetch_request(page_size: int) -> FetchRequest:
    """Every DFT entry of the replay, in pages of `page_size`."""
    return FetchRequest(everything=True, page_size=page_size)
