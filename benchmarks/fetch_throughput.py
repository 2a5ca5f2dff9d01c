"""End-to-end fetch throughput and peak memory of a connector, against a local replay of its API.

    python benchmarks/fetch_throughput.py oqmd --records 10000 100000 --page-size 100

    python benchmarks/fetch_throughput.py nomad --records 50000 --stages

For each record count, a ReplayServer in this process serves `benchmarks/replay_<source>.py`'s pages on
127.0.0.1, and a child process runs the whole fetch (HTTP, parse, map, harmonize, validate, stage, publish).
The child's CPU time (the server's is not in it), wall time and peak RSS are reported; with `--baseline`, the
same records go through the source's own Python client into pandas and Parquet, when the replay module has one;
with `--stages`, matreg's CPU time is also split into fetch (HTTP and decoding), map, stage and publish.
Results are appended to benchmarks/results/<source>.jsonl.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from replay import ReplayServer  # noqa: E402

CHILD = """
import json, resource, sys, time
sys.path[:0] = {paths!r}
from pathlib import Path
replay = __import__("replay_{source}")
stages = {{}}  # CPU seconds per stage of the fetch, with --stages
t0, c0 = time.perf_counter(), time.process_time()
{body}
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak_mb, "stored": stored, "stages": stages}}))
"""
FETCH = """
from matreg.catalog import load_catalog
from matreg.ingest import run_ingest, tune_gc_for_fetch
from matreg.sources import build_connector
from matreg.store import Store
catalog = load_catalog(Path({catalog!r}))
connector = build_connector("{source}", catalog, replay.fetch_request({page_size}))
tune_gc_for_fetch()  # as `matreg fetch` does
{timers}
stored = run_ingest(connector, Store({store!r}), pause_gc=True).n_stored
"""
STAGE_TIMERS = """
from matreg import ingest


def timed(stage, function):
    def run(*args, **kwargs):
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            stages[stage] = stages.get(stage, 0.0) + time.process_time() - start
    return run


def timed_pages(pages):
    def run(cursor=None):
        next_page = timed("fetch", lambda source=iter(pages(cursor)): next(source, None))
        while (page := next_page()) is not None:
            yield page
    return run


connector.pages = timed_pages(connector.pages)
ingest._map_pages = timed("map", ingest._map_pages)
Store.stage_page = timed("stage", Store.stage_page)
Store.publish_run = timed("publish", Store.publish_run)
"""
BASELINE = """
replay.baseline({url!r}, {records}, {out!r})
stored = {records}
"""


def run_child(source: str, body: str) -> dict:
    """Run `body` in a fresh interpreter and return its measurements."""
    code = CHILD.format(paths=[str(HERE), str(HERE.parent / "tests")], source=source, body=body)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"child failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(
    source: str, records: int, page_size: int, baseline: bool, stages: bool = False, again: bool = False
) -> list[dict]:
    """Fetch `records` records through matreg (and the baseline client), each against a fresh replay server; with
    `again`, fetch them a second time into the same store (publishing then compares every record with the store)."""
    replay = importlib.import_module(f"replay_{source}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, ReplayServer(replay.make_route(records, page_size)) as server:
        catalog = Path(tmp) / "catalog.yaml"
        catalog.write_text(replay.catalog_yaml(server.root), encoding="utf-8")
        timers = STAGE_TIMERS if stages else ""
        body = FETCH.format(
            catalog=str(catalog), source=source, page_size=page_size, store=f"{tmp}/store", timers=timers
        )
        rows.append({"tool": "matreg", **run_child(source, body)})
        if again:
            rows.append({"tool": "matreg, again", **run_child(source, body)})
        if baseline and hasattr(replay, "baseline"):
            body = BASELINE.format(url=server.root, records=records, out=f"{tmp}/baseline.parquet")
            rows.append({"tool": "source client", **run_child(source, body)})
    for row in rows:
        row.update(
            source=source,
            records=records,
            page_size=page_size,
            records_per_cpu_s=records / row["cpu_s"],
            records_per_wall_s=records / row["wall_s"],
            python=platform.python_version(),
            machine=platform.machine(),
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--baseline", action="store_true", help="also time the source's own client")
    parser.add_argument("--stages", action="store_true", help="also split matreg's CPU time by stage of the fetch")
    parser.add_argument("--again", action="store_true", help="also fetch the same records again into the store")
    args = parser.parse_args()
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    print("| source | tool | records | pages | records/s (CPU) | records/s (wall) | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for records in args.records:
        for row in measure(args.source, records, args.page_size, args.baseline, args.stages, args.again):
            with open(results / f"{args.source}.jsonl", "a", encoding="utf-8") as out:
                out.write(json.dumps(row) + "\n")
            print(
                f"| {row['source']} | {row['tool']} | {records} | {-(-records // args.page_size)} | "
                f"{row['records_per_cpu_s']:,.0f} | {row['records_per_wall_s']:,.0f} | {row['peak_rss_mb']:.0f} |"
            )
            if row["stages"]:
                print(f"  CPU us/record by stage: {stage_split(row)}")


def stage_split(row: dict) -> str:
    """The CPU time per record of each timed stage, and of the rest (start-up, run bookkeeping)."""
    split = {**row["stages"], "other": row["cpu_s"] - sum(row["stages"].values())}
    return ", ".join(f"{stage} {seconds / row['records'] * 1e6:.1f}" for stage, seconds in split.items())


if __name__ == "__main__":
    main()
