"""What a small fetch costs as the store grows: the same run into an empty store and into one holding N records.

    python benchmarks/store_growth.py oqmd --stored 10000 100000 200000 --run 1000

Publishing a run compares its rows with the stored rows of the same keys (rows already stored unchanged are not
written again), so its cost may grow with the store. For each N, a ReplayServer serves N records of
`benchmarks/replay_<source>.py`; one store is filled with all of them, then a run of the first `--run` records
(unchanged, so every one is compared) goes into that store and into an empty one. CPU seconds of each run, and of
one query over the filled store's properties view.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from replay import ReplayServer  # noqa: E402

from matreg.catalog import load_catalog  # noqa: E402
from matreg.ingest import run_ingest, tune_gc_for_fetch  # noqa: E402
from matreg.runs import RunReport  # noqa: E402
from matreg.sources import build_connector  # noqa: E402
from matreg.store import Store  # noqa: E402


def timed_run(source: str, catalog: Path, store: Store, limit: int | None) -> tuple[float, RunReport]:
    """CPU seconds of one fetch of up to `limit` records into `store`, and its report."""
    replay = importlib.import_module(f"replay_{source}")
    connector = build_connector(source, load_catalog(catalog), replay.fetch_request(100))
    start = time.process_time()
    report = run_ingest(connector, store, limit=limit, pause_gc=True)  # as `matreg fetch` does
    return time.process_time() - start, report


def measure(source: str, stored: int, run: int) -> dict:
    """The small run's CPU seconds into an empty store and into a store of `stored` records."""
    replay = importlib.import_module(f"replay_{source}")
    with tempfile.TemporaryDirectory() as tmp, ReplayServer(replay.make_route(stored, 100)) as server:
        catalog = Path(tmp) / "catalog.yaml"
        catalog.write_text(replay.catalog_yaml(server.root), encoding="utf-8")
        empty_s, _ = timed_run(source, catalog, Store(f"{tmp}/empty"), run)
        full = Store(f"{tmp}/full")
        timed_run(source, catalog, full, None)
        full_s, report = timed_run(source, catalog, full, run)
        start = time.process_time()
        full.query("SELECT count(*), sum(value) FROM properties")  # the view every query, export and release reads
        query_s = time.process_time() - start
    return {"stored": stored, "empty_s": empty_s, "full_s": full_s, "unchanged": report.n_unchanged, "query_s": query_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("--stored", type=int, nargs="+", default=[10_000, 100_000, 200_000])
    parser.add_argument("--run", type=int, default=1000)
    args = parser.parse_args()
    tune_gc_for_fetch()  # as `matreg fetch` does
    print(
        "| source | records stored | run of | CPU s into an empty store | CPU s into the filled store | unchanged "
        "| CPU s of a query over its properties |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for stored in args.stored:
        row = measure(args.source, stored, args.run)
        print(
            f"| {args.source} | {stored:,} | {args.run:,} | {row['empty_s']:.2f} | {row['full_s']:.2f} | "
            f"{row['unchanged']:,} | {row['query_s']:.2f} |"
        )


if __name__ == "__main__":
    main()
