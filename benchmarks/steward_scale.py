"""Wall time, CPU time and peak RSS of the steward and export commands on a large store.

    python benchmarks/steward_scale.py /tmp/scale-q --fraction 0.25
    python benchmarks/steward_scale.py /tmp/scale-full --fraction 1
    python benchmarks/steward_scale.py /tmp/scale-qc --fraction 0.25 --decisions 300 --compact-every 50

Builds a store in FOLDER from local replays (`benchmarks/replay_<source>.py`: OQMD 100,000, AFLOW 60,000, MP 30,000
and JARVIS 30,000 records at --fraction 1), a lab import of a CSV of formation energies (the crabnet OQMD training
set, 239,190 rows at 1) and --decisions review decisions (the store compacted after every --compact-every of them,
if given), then runs each `matreg` command below in a child process and prints one row per command (its own CPU
time and peak RSS, by `os.wait4`). The store is built in a child process (`--build`), so that the commands'
children do not start from a large parent's memory.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent

RECORDS = {"oqmd": 100_000, "aflow": 60_000, "mp": 30_000, "jarvis": 30_000}
PAGE_SIZE = {"oqmd": 100, "aflow": 500, "mp": 1000, "jarvis": 500}
LAB_CSV = HERE.parent.parent / "shared/data/crabnet/benchmark_data/OQMD_Formation_Enthalpy/train.csv"
DATASETS = """datasets:
  dft-formation:
    description: every formation energy and band gap
    version: 1.0.0
    properties: [formation_energy_per_atom, band_gap, volume_per_atom, density, total_energy_per_atom]
  dft-median:
    description: formation energies, linked records merged
    version: 1.0.0
    properties: [formation_energy_per_atom]
    resolve: {strategy: median}
  mp-bulk:
    description: a small dataset of a large store
    version: 1.0.0
    sources: [mp]
    properties: [bulk_modulus]
"""
ENV = {"MATREG_BENCH_MP_API_KEY": "0123456789abcdef0123456789abcdef", "MATREG_STEWARD": "bench"}
DECISIONS = ("accept", "reject", "flag")
SQL_JOIN = "select m.source, count(*) from properties p join materials m using (record_id) group by 1"


def commands(folder: Path, record: str) -> list[tuple[str, list[str]]]:
    """The commands timed, in order, with their labels."""
    return [
        ("status", ["status"]),
        ("validate", ["validate"]),
        ("conflicts formation_energy_per_atom", ["conflicts", "formation_energy_per_atom"]),
        ("history of one record", ["history", record]),
        ("release keep_all", ["release", "dft-formation", "--version", "1.0.0"]),
        ("release median", ["release", "dft-median", "--version", "1.0.0"]),
        ("review flag (one, CLI)", ["review", "flag", record, "--reason", "bench"]),
        ("release keep_all again", ["release", "dft-formation", "--version", "1.0.1"]),
        ("diff of the two releases", ["diff", "dft-formation", "1.0.0", "1.0.1"]),
        ("export parquet", ["export", "dft-formation", "--out", str(folder / "dft.parquet")]),
        ("export of a small dataset", ["export", "mp-bulk", "--out", str(folder / "mp-bulk.parquet")]),
        ("export --release", ["export", "dft-formation", "--release", "1.0.0", "--out", str(folder / "r.parquet")]),
        ("export --format torch", ["export", "dft-median", "--format", "torch", "--out", str(folder / "torch")]),
        ("sql join", ["sql", SQL_JOIN]),
        ("import of the lab file again", ["import", str(folder / "lab.csv"), "--mapping", str(folder / "lab.yaml")]),
        ("compact", ["compact"]),
    ]


def build(folder: Path, fraction: float, n_decisions: int, compact_every: int | None) -> None:
    """The store: every replay fetched, the lab file imported, `n_decisions` decisions recorded; prints its size and
    a record id for `history`."""
    import pandas as pd

    sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
    from lab_reimport import MAPPING  # the lab file's mapping: formation energies per atom
    from replay import ReplayServer

    from matreg.catalog import load_catalog
    from matreg.ingest import run_ingest
    from matreg.sources import build_connector
    from matreg.sources.lab import LabConnector, load_mapping
    from matreg.store import Store

    servers, parts = [], ["sources:\n"]
    for source, n in RECORDS.items():
        replay = importlib.import_module(f"replay_{source}")
        server = ReplayServer(replay.make_route(int(n * fraction), PAGE_SIZE[source])).__enter__()
        servers.append(server)
        parts.append(replay.catalog_yaml(server.root).split("sources:\n", 1)[1])
    (folder / "catalog.yaml").write_text("".join(parts) + DATASETS, encoding="utf-8")
    os.environ.update(ENV, MATREG_CATALOG=str(folder / "catalog.yaml"), MATREG_STORE=str(folder / "store"))
    store, catalog = Store(folder / "store"), load_catalog(folder / "catalog.yaml")
    for source in RECORDS:
        replay = importlib.import_module(f"replay_{source}")
        run_ingest(build_connector(source, catalog, replay.fetch_request(PAGE_SIZE[source])), store)
    for server in servers:
        server.__exit__(None, None, None)
    rows = pd.read_csv(LAB_CSV).head(int(239_190 * fraction))
    rows.insert(0, "id", [f"r{n}" for n in range(len(rows))])
    rows.to_csv(folder / "lab.csv", index=False)
    (folder / "lab.yaml").write_text(MAPPING, encoding="utf-8")
    run_ingest(LabConnector(folder / "lab.csv", load_mapping(folder / "lab.yaml")), store)
    time_decisions(store, n_decisions, compact_every)
    counts = store.read("SELECT (SELECT count(*) FROM materials) AS records, (SELECT count(*) FROM properties) AS v")
    print(f"store: {counts['records'][0]:,} records, {counts['v'][0]:,} values")
    print(store.read("SELECT min(record_id) AS r FROM materials WHERE source = 'oqmd'")["r"][0])


def time_decisions(store, n: int, compact_every: int | None) -> None:
    """Record `n` decisions on formation energies, compacting the store after every `compact_every` of them; print
    the mean time of the first and last ten decisions, and of the compactions."""
    from matreg.curate.review import record_decision

    values = store.read(
        "SELECT record_id, property, method FROM properties WHERE property = 'formation_energy_per_atom' "
        f"ORDER BY hash(record_id) LIMIT {n}"
    )
    seconds, compactions = [], []
    for i, row in enumerate(values.itertuples()):
        start = time.perf_counter()
        method = row.method if isinstance(row.method, str) else None
        record_decision(store, DECISIONS[i % 3], "bench", "checked", row.record_id, row.property, method)
        seconds.append(time.perf_counter() - start)
        if compact_every and (i + 1) % compact_every == 0:
            start = time.perf_counter()
            store.compact()
            compactions.append(time.perf_counter() - start)
    if compactions:
        print(f"{len(compactions)} compactions: {sum(compactions) / len(compactions):.2f} s each")
    if seconds:
        first, last = seconds[:10], seconds[-10:]
        print(
            f"{len(seconds)} decisions: the first ten {sum(first) / len(first):.2f} s each, the last ten "
            f"{sum(last) / len(last):.2f} s each"
        )


def timed(args: list[str], stdout: IO | int = subprocess.DEVNULL) -> tuple[float, float, float, int]:
    """Wall s, CPU s and peak RSS MB of one `matreg` command in a child process (its output to `stdout`, its stderr
    dropped: a pipe nobody reads would stop a command that writes more than the pipe holds), and its exit status."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "matreg", *args], stdout=stdout, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--fraction", type=float, default=0.25, help="of the full size's records and rows")
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--compact-every", type=int, help="compact the store after every N decisions")
    parser.add_argument("--build", action="store_true", help="only build the store (the child process's part)")
    args = parser.parse_args()
    if args.build:
        build(args.folder, args.fraction, args.decisions, args.compact_every)
        return
    args.folder.mkdir(parents=True, exist_ok=False)
    child = [sys.executable, __file__, str(args.folder), f"--fraction={args.fraction}", f"--decisions={args.decisions}"]
    child += [f"--compact-every={args.compact_every}"] if args.compact_every else []
    lines = subprocess.run([*child, "--build"], check=True, stdout=subprocess.PIPE, text=True).stdout.splitlines()
    print("\n".join(lines[:-1]))
    record = lines[-1]
    os.environ.update(ENV, MATREG_CATALOG=str(args.folder / "catalog.yaml"), MATREG_STORE=str(args.folder / "store"))
    print("| command | wall s | CPU s | peak RSS MB |\n|---|---:|---:|---:|")
    for label, command in commands(args.folder, record):
        wall, cpu, rss, status = timed(command)
        print(f"| {label}{'' if status == 0 else ' (failed)'} | {wall:.1f} | {cpu:.1f} | {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
