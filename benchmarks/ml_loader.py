"""Loader throughput of torch exports on one CPU core: compositions/s (and crystal graphs/s with --structures).

    python benchmarks/ml_loader.py                       # OQMD_Formation_Enthalpy train split (239,190 rows)
    python benchmarks/ml_loader.py --structures ../shared/data/structures/mp_20_biternary/val.csv.gz
    python benchmarks/ml_loader.py --dataloader          # also through a torch DataLoader with `collate`

A real CSV (formula,target) is imported into a temporary store with `matreg import`'s lab connector, exported with
`export_torch` (random split), loaded with `ExportedDataset`, and the train split is iterated in shuffled batches
(`batches(batch_size, shuffle=True)`) with torch on one thread pinned to one core. Prints a Markdown table row;
with --dataloader a second row per data, the same split through `DataLoader(split, batch_size, shuffle=True,
drop_last=True, collate_fn=collate)` (in order: no shuffle, no drop_last), one process (num_workers=0).
The default CSV is read from $MATREG_SHARED_DATA (default: ../shared/data beside the repository).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from matreg.catalog import Catalog, Dataset
from matreg.ingest import run_ingest
from matreg.ml.dataset import CompositionSplit, ExportedDataset, collate, export_torch
from matreg.sources.base import Connector
from matreg.sources.lab import LabConnector, load_mapping
from matreg.store import Store

DATA = Path(os.environ.get("MATREG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DEFAULT_CSV = DATA / "crabnet" / "benchmark_data" / "OQMD_Formation_Enthalpy" / "train.csv"
MAPPING = """dataset: bench-compositions
formula_column: formula
provenance: dft
citation: CrabNet benchmark data (see ../shared/data/SOURCES.txt)
columns:
  target: {property: formation_energy_per_atom, unit: eV/atom}
"""
STRUCTURE_MAPPING = """dataset: bench-structures
formula_column: pretty_formula
id_column: material_id
structure_column: cif
provenance: dft
citation: Materials Project via mp_20 (see ../shared/data/SOURCES.txt)
columns:
  formation_energy_per_atom: {unit: eV/atom}
"""
HEADER = (
    "| data | records | exported | batch | load s | shuffled samples/s | in-order samples/s | import s | export s |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def one_core() -> None:
    """Pin this process to one CPU core and torch to one thread."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)


def rate(split: CompositionSplit, batch_size: int, epochs: int, shuffle: bool, dataloader: bool) -> float:
    """Samples per second over `epochs` passes of `split.batches`, or of a DataLoader over the split."""
    generator = torch.Generator().manual_seed(0)
    seen, start = 0, time.perf_counter()
    for _ in range(epochs):
        if dataloader:
            batches = DataLoader(
                split, batch_size, shuffle=shuffle, drop_last=shuffle, generator=generator, collate_fn=collate
            )
        else:
            batches = split.batches(batch_size, shuffle=shuffle, generator=generator)
        for batch in batches:
            seen += len(batch["target"])
    return seen / (time.perf_counter() - start)


def build(connector: Connector, work: Path) -> tuple[Path, float, float]:
    """Import into a fresh store and export; the export directory and the two durations."""
    store = Store(work / "store")
    start = time.perf_counter()
    run_ingest(connector, store)
    imported = time.perf_counter()
    catalog = Catalog(
        datasets={"bench": Dataset(description="benchmark", version="0", properties=["formation_energy_per_atom"])}
    )
    export_torch(store, catalog, "bench", work / "export", split="random", seed=0)
    return work / "export", imported - start, time.perf_counter() - imported


def measure(
    label: str, export: Path, import_s: float, export_s: float, args: argparse.Namespace, graph: bool
) -> list[str]:
    """Markdown rows for the train split of `export`: its `batches`, and with --dataloader a DataLoader over it."""
    start = time.perf_counter()
    data = ExportedDataset(export)
    train = data.graph_split("train") if graph else data.split("train")
    load_s = time.perf_counter() - start
    rows = []
    for loader, dataloader in (("", False), *([(" via DataLoader", True)] if args.dataloader else [])):
        shuffled = rate(train, args.batch_size, args.epochs, shuffle=True, dataloader=dataloader)
        ordered = rate(train, args.batch_size, args.epochs, shuffle=False, dataloader=dataloader)
        rows.append(
            f"| {label}{loader} | {data.meta['n']:,} | train {len(train):,} | {args.batch_size} | {load_s:.2f} | "
            f"{shuffled:,.0f} | {ordered:,.0f} | {import_s:.1f} | {export_s:.1f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="formula,target CSV of compositions")
    parser.add_argument(
        "--structures", type=Path, help="also measure crystal graphs from an mp_20-style CSV (cif column)"
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dataloader", action="store_true", help="also load through a torch DataLoader")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
        (work / "structures.yaml").write_text(STRUCTURE_MAPPING, encoding="utf-8")
        lab = LabConnector(args.csv, load_mapping(work / "mapping.yaml"))
        builds = [(f"compositions: {args.csv.parent.name}/{args.csv.name}", *build(lab, work / "c"), False)]
        if args.structures:
            graphs = build(LabConnector(args.structures, load_mapping(work / "structures.yaml")), work / "g")
            builds.append((f"crystal graphs: {args.structures.name}", *graphs, True))
        one_core()
        rows = [row for label, ex, imp, exp, graph in builds for row in measure(label, ex, imp, exp, args, graph)]
    print(f"CPU: {platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread on 1 core")
    print(HEADER)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
