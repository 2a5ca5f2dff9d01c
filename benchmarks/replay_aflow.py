"""AFLUX replayed at scale for benchmarks/fetch_throughput.py: typed-list pages of real AFLOW entries.

The six real aflowlib.json entries of tests/fixtures/aflow/ are repeated with unique auids and aurls, projected
onto the keywords each request names (plus those AFLUX returns unasked), and served page by page at the real path
/API/aflux/ through `$paging(n,k)`. Pages are built only when asked for.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from replay import Reply, Request  # noqa: E402

from matreg.fieldmap import load_field_map  # noqa: E402
from matreg.sources import FetchRequest  # noqa: E402
from matreg.sources.aflow import request_keywords  # noqa: E402

AFLUX = "/API/aflux/"
FIXTURES = REPO / "tests" / "fixtures" / "aflow"
ENTRIES = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(FIXTURES.glob("aflowlib_*_example.json"))]
UNASKED = ("compound", "auid", "aurl", "spacegroup_relax", "Pearson_symbol_relax")  # no catalog: AFLUX sends none
DIRECTIVES = {"paging", "format", "catalog"}
BASELINE_PAGE_SIZE = 100  # fetch_throughput.py's default --page-size
_PAGING = re.compile(r",\$paging\((-?\d+)(?:,(\d+))?\)")


def make_route(n_records: int, page_size: int) -> Callable[[Request], Reply]:
    """A route serving `n_records` entries as AFLUX pages (`page_size` when a request gives no page size)."""

    def route(request: Request) -> Reply:
        summons = request.raw_path.partition("?")[2]
        paging = _PAGING.search(summons)
        if request.path != AFLUX or paging is None or int(paging[1]) < 1:
            return Reply(404, b"Not Found", "text/plain")
        number, size = int(paging[1]), int(paging[2] or page_size)
        templates = _templates(summons[: paging.start()])
        indexes = range((number - 1) * size, min(number * size, n_records))
        rows = [_copy(templates[i % len(templates)], i) for i in indexes]
        return Reply(200, json.dumps(rows).encode())

    return route


@lru_cache(maxsize=8)
def _templates(matchbook: str) -> list[dict]:
    return project(ENTRIES, matchbook)


def project(entries: list[dict], matchbook: str) -> list[dict]:
    """The entries as AFLUX returns them for this matchbook: unasked keywords, then the asked ones (null if none)."""
    asked = [part.split("(")[0] for part in top_level(matchbook) if not part.startswith(("$", "("))]
    asked = [name for name in asked if name not in DIRECTIVES]
    return [{**{k: e[k] for k in UNASKED if k in e}, **{k: e.get(k) for k in asked}} for e in entries]


def top_level(summons: str) -> list[str]:
    """The comma-separated parts of an AFLUX summons outside parentheses."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(summons):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(summons[start:index])
            start = index + 1
    return [*parts, summons[start:]]


def _copy(template: dict, index: int) -> dict:
    return {**template, "auid": f"aflow:{index:016x}", "aurl": f"{template['aurl']}_{index}"}


def catalog_yaml(base_url: str) -> str:
    """A catalog with the aflow source at `base_url` (the replay server's root), no retries, no cache."""
    return (
        "sources:\n"
        "  aflow:\n"
        "    title: AFLOW (benchmark replay)\n"
        "    connector: aflow\n"
        f"    base_url: {base_url.rstrip('/')}{AFLUX}\n"
        "    provenance: dft\n"
        "    license: AFLOW terms of use\n"
        "    citation: Rose et al., Comput. Mater. Sci. 137, 362 (2017)\n"
        "    database_version: live\n"
        "    http: {retries: 0, cache: false}\n"
    )


def fetch_request(page_size: int) -> FetchRequest:
    """Every entry, `page_size` per AFLUX page."""
    return FetchRequest(everything=True, page_size=page_size)


def baseline(base_url: str, n_records: int, out_parquet: str) -> None:
    """The same records read as the AFLOW consortium's own notebooks read AFLUX (urllib + json), to pandas/Parquet.

    AFLOW has no official Python client on PyPI (the `aflow` package is a third-party wrapper of the old
    '<i> of <N>' format); aflow-org/aflow_school's `aflux_request` is what the consortium documents.
    """
    import pandas as pd

    matchbook = ",".join(request_keywords(load_field_map("aflow")))
    rows: list[dict] = []
    number = 1
    while len(rows) < n_records:
        url = f"{base_url.rstrip('/')}{AFLUX}?{matchbook},$paging({number},{BASELINE_PAGE_SIZE}),format(json)"
        with urllib.request.urlopen(url) as response:
            page = json.loads(response.read().decode("utf-8"))
        rows.extend(page)
        if len(page) < BASELINE_PAGE_SIZE:
            break
        number += 1
    pd.DataFrame(rows).to_parquet(out_parquet)
