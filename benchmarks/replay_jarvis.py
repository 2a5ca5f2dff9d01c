"""A local replay of JARVIS-DFT's `dft_3d` download, for the benchmark harness (benchmarks/fetch_throughput.py).

JARVIS has no paginated API for dft_3d: jarvis-tools downloads one zip from figshare
(https://ndownloader.figshare.com/files/64391379) holding one JSON list. The route serves such a zip at that
path, built once on the first request from copies of tests/fixtures/jarvis's records (see its SOURCES.md) with
unique jids; matreg cuts the stream into pages itself.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from replay import Reply, Request  # noqa: E402

from matreg.sources import FetchRequest  # noqa: E402

FIXTURE = REPO / "tests" / "fixtures" / "jarvis" / "jdft_3d-9-24-2025.json.zip"
MEMBER = "jdft_3d-9-24-2025.json"  # the member name jarvis-tools 2026.6.12 reads
PATH = "/files/64391379"
BASELINE_COLUMNS = [
    "jid", "formula", "func", "atoms", "spg_number", "spg_symbol", "formation_energy_peratom", "ehull",
    "optb88vdw_bandgap", "mbj_bandgap", "hse_gap", "optb88vdw_total_energy", "density", "bulk_modulus_kv",
    "shear_modulus_gv", "magmom_oszicar",
]  # fmt: skip


def fixture_records() -> list[dict[str, Any]]:
    """The fixture's dft_3d records."""
    return json.loads(zipfile.ZipFile(FIXTURE).read(MEMBER))


def copies(n_records: int) -> Iterator[dict[str, Any]]:
    """`n_records` fixture records in turn, each with a unique jid ('JVASP-1002-c12')."""
    records = fixture_records()
    for index in range(n_records):
        record = records[index % len(records)]
        yield record | {"jid": f"{record['jid']}-c{index}"}


def dft_3d_zip(n_records: int) -> bytes:
    """A dft_3d zip of `n_records` records, written record by record (the JSON text is never whole in memory)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, archive.open(MEMBER, "w") as member:
        member.write(b"[")
        for index, record in enumerate(copies(n_records)):
            member.write((", " if index else "").encode() + json.dumps(record).encode())
        member.write(b"]")
    return buffer.getvalue()


def make_route(n_records: int, page_size: int) -> Callable[[Request], Reply]:
    """A route serving a zip of `n_records` records at figshare's path.

    `page_size` does not reach the server: the file is one download, which matreg pages itself.
    """
    body: list[bytes] = []
    lock = threading.Lock()

    def route(request: Request) -> Reply:
        if request.path != PATH:
            return Reply(404, b"Not Found", "text/plain")
        with lock:
            if not body:
                body.append(dft_3d_zip(n_records))
        return Reply(200, body[0], "application/zip")

    return route


def catalog_yaml(base_url: str) -> str:
    """A catalog whose `jarvis` source is the replay at `base_url` (the server root; no retries, no cache)."""
    return (
        "sources:\n"
        "  jarvis:\n"
        "    title: NIST JARVIS-DFT dft_3d (local replay)\n"
        "    connector: jarvis\n"
        f"    base_url: {base_url.rstrip('/')}{PATH}\n"
        "    provenance: dft\n"
        "    license: CC-BY-4.0\n"
        "    citation: K. Choudhary et al., npj Comput. Mater. 6, 173 (2020)\n"
        "    database_version: jdft_3d-9-24-2025\n"
        "    http: {retries: 0, backoff_s: 0, jitter_s: 0, timeout_s: 60, cache: false}\n"
    )


def fetch_request(page_size: int) -> FetchRequest:
    """The benchmark's query: every record of the file, `page_size` records a page."""
    return FetchRequest(everything=True, page_size=page_size)


def baseline(base_url: str, n_records: int, out_parquet: str) -> None:
    """The same records through jarvis-tools (`jarvis.db.figshare.data("dft_3d")`) into pandas, then Parquet.

    jarvis-tools cannot be pointed at a URL; it reads `<store_dir>/jdft_3d-9-24-2025.json.zip` when that file
    is there, so the zip is downloaded from the replay into store_dir first (as jarvis-tools itself would).
    """
    import pandas as pd
    import requests
    from jarvis.db.figshare import data

    with tempfile.TemporaryDirectory() as store_dir:
        response = requests.get(f"{base_url.rstrip('/')}{PATH}", timeout=60)
        response.raise_for_status()
        Path(store_dir, f"{MEMBER}.zip").write_bytes(response.content)
        records = data("dft_3d", store_dir=store_dir)[:n_records]
    frame = pd.DataFrame(records, columns=BASELINE_COLUMNS).replace("na", None)
    frame["atoms"] = frame["atoms"].map(json.dumps)  # a nested dict of lists: kept as JSON text, like matreg does
    frame.to_parquet(out_parquet)
