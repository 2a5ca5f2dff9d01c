"""CPU time of a large lab import and of its unchanged re-import (which compares every row with the store and checks
every id against what other files gave it).

    python benchmarks/lab_reimport.py ../shared/data/crabnet/benchmark_data/OQMD_Formation_Enthalpy/train.csv

The CSV's `formula` and `target` columns are imported as formation energies per atom, each row given an id column.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from matreg.ingest import run_ingest
from matreg.sources.lab import LabConnector, load_mapping
from matreg.store import Store

MAPPING = """dataset: bench-lab
formula_column: formula
id_column: id
citation: benchmark
columns:
  target: {property: formation_energy_per_atom, unit: eV/atom}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = pd.read_csv(args.csv)
        rows.insert(0, "id", [f"r{n}" for n in range(len(rows))])
        data, mapping = Path(tmp) / "lab.csv", Path(tmp) / "mapping.yaml"
        rows.to_csv(data, index=False)
        mapping.write_text(MAPPING, encoding="utf-8")
        store = Store(Path(tmp) / "store")
        for label in ("import", "unchanged re-import"):
            start = time.process_time()
            report = run_ingest(LabConnector(data, load_mapping(mapping)), store)
            seconds = time.process_time() - start
            print(
                f"{label}: {len(rows):,} rows, {seconds:.1f} CPU s "
                f"({report.n_stored:,} valid, {report.n_unchanged or 0:,} unchanged)"
            )


if __name__ == "__main__":
    main()
