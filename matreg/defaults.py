"""Defaults and choices the command line shows in its options and help, and the check of an export's format and
layout against them (`check_export_format`: the command line's, the store's and a release's exports).

They live apart from the modules that use them (the store, exports, the fetch engine), which load pandas, DuckDB,
pandera and pint, about a second of start-up: `matreg --help` and a mistyped option answer without loading them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matreg.errors import ConfigError

DEFAULT_STORE = Path("matreg-store")
EXPORT_FORMATS = ("parquet", "csv", "jsonl")  # the file formats of exports (`Store.write_file`)
LAYOUTS = ("long", "wide")  # of exported files: a value per row, or a column per property
COMMIT_RECORDS = 1_000  # a fetch commits its pages to the run's journal at the end of the page that brings the
# records read since its last commit to this many (or `ingest.COMMIT_SECONDS` seconds)
COMPACT_AFTER = 100  # commits since the store was last compacted from which `matreg status` suggests `matreg compact`
# a training's settings where not given (`ml.train.settings_of`), as `matreg train --help` shows them
TRAINING_DEFAULTS: dict[str, Any] = {
    "epochs": 100,
    "seed": 0,
    "batch_size": 256,
    "eval_batch_size": 4096,
    "lr": 1e-3,
    "patience": 20,
    "loss": "l1",
    "clip": 1.0,
    "time_limit_s": None,
    "threads": None,
    "progress": False,
}


def check_export_format(fmt: str, layout: str = "long", formats: tuple[str, ...] = EXPORT_FORMATS) -> None:
    """ConfigError for an export's format not among `formats` (the file formats, unless a caller takes others too)
    or a layout not in LAYOUTS."""
    if fmt not in formats:
        raise ConfigError(f"unknown format '{fmt}' (choose from {', '.join(formats)})")
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout '{layout}' (choose from {', '.join(LAYOUTS)})")
