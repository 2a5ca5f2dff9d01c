"""Time `SELECT count(*) FROM open_quarantine` (what `matreg status` asks) over many quarantine rows.

    python benchmarks/open_quarantine.py --rows 20000 40000 --files 4 --oqmd-records 200000

Each size imports `--files` lab files of one dataset into a fresh store in a temporary folder, every file with its
share of rows whose band gap is not a number (each one quarantine row) and ten good rows; then times the count of
the view twice (wall s, the second with DuckDB's caches warm). `--oqmd-records` also times it over a store filled
with that many records fetched from the OQMD replay (`replay_oqmd.py`): the view reads every record's last write.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import replay_oqmd  # noqa: E402
from replay import ReplayServer  # noqa: E402

from matreg.catalog import load_catalog  # noqa: E402
from matreg.ingest import run_ingest  # noqa: E402
from matreg.sources import build_connector  # noqa: E402
from matreg.sources.lab import LabConnector, load_mapping  # noqa: E402
from matreg.store import Store  # noqa: E402

MAPPING = "dataset: smith-lab\nformula_column: formula\nid_column: id\ncitation: benchmark\ncolumns:\n"
MAPPING += "  gap: {property: band_gap, unit: eV}\n"


def filled_store(folder: Path, rows: int, files: int) -> Store:
    """A store holding `rows` quarantine rows from `files` lab files."""
    mapping = folder / "mapping.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    store = Store(folder / "store")
    for number in range(files):
        bad = [f"S{number}-{row},ZnO,bad {row}" for row in range(rows // files)]
        good = [f"G{number}-{row},GaN,3.4" for row in range(10)]
        data = folder / f"file{number}.csv"
        data.write_text("id,formula,gap\n" + "\n".join(bad + good) + "\n", encoding="utf-8")
        run_ingest(LabConnector(data, load_mapping(mapping)), store)
    return store


def fetched_store(folder: Path, records: int) -> Store:
    """A store holding `records` records fetched from the OQMD replay."""
    with ReplayServer(replay_oqmd.make_route(records, 100)) as server:
        catalog = folder / "catalog.yaml"
        catalog.write_text(replay_oqmd.catalog_yaml(server.url), encoding="utf-8")
        store = Store(folder / "store")
        connector = build_connector("oqmd", load_catalog(catalog), replay_oqmd.fetch_request(100))
        run_ingest(connector, store, pause_gc=True)
    return store


def timed_count(store: Store) -> tuple[int, float]:
    """The open rows and the wall seconds the count took."""
    start = time.perf_counter()
    count = int(store.query("SELECT count(*) FROM open_quarantine").iloc[0, 0])
    return count, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 40_000])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--oqmd-records", type=int, nargs="*", default=[])
    args = parser.parse_args()
    print("| store | open | count s (cold) | count s (warm) |\n|---|---:|---:|---:|")
    stores = [
        (f"{rows:,} quarantine rows from {args.files} lab files", partial(filled_store, rows=rows, files=args.files))
        for rows in args.rows
    ]
    stores += [(f"{n:,} OQMD records", partial(fetched_store, records=n)) for n in args.oqmd_records]
    for name, fill in stores:
        with tempfile.TemporaryDirectory() as folder:
            store = fill(Path(folder))
            (count, cold), (_, warm) = timed_count(store), timed_count(store)
            print(f"| {name} | {count:,} | {cold:.2f} | {warm:.2f} |")


if __name__ == "__main__":
    main()
