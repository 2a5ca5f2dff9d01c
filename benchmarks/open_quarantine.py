"""Time `SELECT count(*) FROM open_quarantine` (what `matreg status` asks) over many quarantine rows.

    python benchmarks/open_quarantine.py --rows 20000 40000 --files 4

Each size imports `--files` lab files of one dataset into a fresh store in a temporary folder, every file with its
share of rows whose band gap is not a number (each one quarantine row) and ten good rows; then times the count of
the view twice (wall s, the second with DuckDB's caches warm).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from matreg.ingest import run_ingest
from matreg.sources.lab import LabConnector, load_mapping
from matreg.store import Store

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


def timed_count(store: Store) -> tuple[int, float]:
    """The open rows and the wall seconds the count took."""
    start = time.perf_counter()
    count = int(store.query("SELECT count(*) FROM open_quarantine").iloc[0, 0])
    return count, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 40_000])
    parser.add_argument("--files", type=int, default=4)
    args = parser.parse_args()
    print("| quarantine rows | files | open | count s (cold) | count s (warm) |\n|---:|---:|---:|---:|---:|")
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as folder:
            store = filled_store(Path(folder), rows, args.files)
            (count, cold), (_, warm) = timed_count(store), timed_count(store)
            print(f"| {rows:,} | {args.files} | {count:,} | {cold:.2f} | {warm:.2f} |")


if __name__ == "__main__":
    main()
