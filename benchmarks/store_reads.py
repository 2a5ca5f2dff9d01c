"""Wall time, CPU time and peak RSS of what a user reads out of a large store: status, SQL to CSV, each export
format and layout, a torch export, two releases, their diff and the release's exports.

    python benchmarks/store_reads.py /tmp/reads --fraction 1

Builds the store as steward_scale.py does (the OQMD, AFLOW, MP and JARVIS replays and the crabnet OQMD formation
energies as a lab file; no review decisions: 459,143 records and 1,224,978 values at --fraction 1), then runs each
command below in a child process (`steward_scale.timed`: its own CPU time and peak RSS) and prints a row per
command, with the lines (or, of a torch export, the records) it wrote. Between the two releases a steward flags a
value, so their diff has a change to find.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from steward_scale import ENV, timed

DATASET = "dft-formation"  # every formation energy, band gap, volume, density and total energy of the store


def commands(folder: Path, record: str) -> list[tuple[str, list[str], Path | None]]:
    """The commands timed, in order: label, arguments, and the file or folder it writes (None: none)."""
    out = folder / "out"
    views = [(f"sql {view} --format csv", view, out / f"{view}.csv") for view in ("properties", "properties_wide")]
    files = [(["--out", str(out / name)], out / name) for name in ("long.parquet", "long.csv", "long.jsonl")]
    files += [(["--layout", "wide", "--out", str(out / "wide.parquet")], out / "wide.parquet")]
    released = [out / f"release.{fmt}" for fmt in ("parquet", "csv", "jsonl")]
    return [
        ("status", ["status"], None),
        *((label, ["sql", "--format", "csv", f"SELECT * FROM {view}"], path) for label, view, path in views),
        *((f"export {path.name}", ["export", DATASET, *options], path) for options, path in files),
        ("export --format torch", ["export", DATASET, "--format", "torch", "--out", str(out / "torch")], out / "torch"),
        ("release 1.0.0", ["release", DATASET, "--version", "1.0.0"], None),
        ("review flag (one value)", ["review", "flag", record, "--property", "band_gap", "--reason", "bench"], None),
        ("release 1.0.1", ["release", DATASET, "--version", "1.0.1"], None),
        ("diff of the two releases", ["diff", DATASET, "1.0.0", "1.0.1"], None),
        *(
            (f"export --release {path.name}", ["export", DATASET, "--release", "1.0.1", "--out", str(path)], path)
            for path in released
        ),
    ]


def written(path: Path | None) -> str:
    """What a command wrote: a text file's lines, a torch export's records, else the file's bytes."""
    if path is None or not path.exists():
        return ""
    if path.is_dir():
        return f"{json.loads((path / 'meta.json').read_text(encoding='utf-8'))['n']:,} records"
    if path.suffix in (".csv", ".jsonl"):
        with path.open("rb") as file:
            return f"{sum(1 for _ in file):,} lines"
    return f"{path.stat().st_size:,} bytes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--fraction", type=float, default=0.25, help="of the full size's records and rows")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=False)
    (args.folder / "out").mkdir()
    build = [sys.executable, str(Path(__file__).with_name("steward_scale.py")), str(args.folder)]
    build += [f"--fraction={args.fraction}", "--decisions=0", "--build"]
    lines = subprocess.run(build, check=True, stdout=subprocess.PIPE, text=True).stdout.splitlines()
    print("\n".join(lines[:-1]))
    os.environ.update(ENV, MATREG_CATALOG=str(args.folder / "catalog.yaml"), MATREG_STORE=str(args.folder / "store"))
    print("| command | wall s | CPU s | peak RSS MB | written |\n|---|---:|---:|---:|---|")
    for label, command, path in commands(args.folder, lines[-1]):
        if command[0] == "sql":  # (its rows go to stdout: into the file)
            with path.open("w", encoding="utf-8") as file:
                wall, cpu, rss, status = timed(command, stdout=file)
        else:
            wall, cpu, rss, status = timed(command)
        failed = "" if status == 0 else " (failed)"
        print(f"| {label}{failed} | {wall:.1f} | {cpu:.1f} | {rss:.0f} | {written(path)} |", flush=True)


if __name__ == "__main__":
    main()
