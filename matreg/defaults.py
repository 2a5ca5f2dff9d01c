"""Defaults and choices the command line shows in its options and help.

They live apart from the modules that use them (the store, exports, the fetch engine), which load pandas, DuckDB,
pandera and pint, about a second of start-up: `matreg --help` and a mistyped option answer without loading them.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_STORE = Path("matreg-store")
EXPORT_FORMATS = ("parquet", "csv", "jsonl")  # the file formats of exports (`Store.write_file`)
LAYOUTS = ("long", "wide")  # of exported files: a value per row, or a column per property
COMMIT_RECORDS = 1_000  # a fetch commits its pages to the run's journal at the end of the page that brings the
# records read since its last commit to this many (or `ingest.COMMIT_SECONDS` seconds)
COMPACT_AFTER = 100  # commits since the store was last compacted from which `matreg status` suggests `matreg compact`
