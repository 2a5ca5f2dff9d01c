"""The staging journal of one run (a fetch, or a lab import): append-only files, one page committed at a time (the
store's staging I/O).

Layout of `staging/<run_id>/`:
    <table>.arrows   the run's rows of one canonical table, one frame per page
    commits.arrows   one frame per committed page: the run's fetch_runs row (counts, cursor), whose Arrow
                     metadata records how long every table file was when the page was complete
A frame is an 8-byte little-endian length followed by an Arrow IPC stream. A page's table frames are written
first and its commit frame last, so after a kill -9 the last complete commit frame says exactly which table bytes
belong to committed pages; reopening the journal cuts everything after them. A table file missing, or shorter
than its last commit says, is a damaged journal (StoreError): never read as a run without those rows. Appending a
page costs a few `write` calls on open files, not a directory and a file per table (which dominated the cost of small
pages).
"""

from __future__ import annotations

import json
import struct
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow

from matreg.errors import StoreError

COMMITS = "commits"
SUFFIX = ".arrows"
_HEADER = struct.Struct("<Q")
_SIZES_KEY = b"matreg.table_sizes"


class RunJournal:
    """Append-only staging of one run's pages; see the module docstring for the layout."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[str, BinaryIO] = {}
        self._sizes: dict[str, int] | None = None  # committed length of every table file, once appending

    def append(self, tables: dict[str, pyarrow.Table], run_row: pyarrow.Table) -> None:
        """Write one page's tables, then its commit frame (the run row and every table file's length).

        The first append of a journal object first cuts what a killed writer left (`recover`).
        """
        if self._sizes is None:
            self.recover()
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, table in tables.items():
            self._sizes[name] = self._write(name, table)
        metadata = {**(run_row.schema.metadata or {}), _SIZES_KEY: json.dumps(self._sizes).encode()}
        self._write(COMMITS, run_row.replace_schema_metadata(metadata))

    def last_commit(self) -> dict[str, Any] | None:
        """The run row of the last committed page (None: nothing committed)."""
        return self.committed()[0]

    def committed(self) -> tuple[dict[str, Any] | None, dict[str, int]]:
        """The last committed page's run row, and how long each table file was then (its committed bytes)."""
        commit = self._last_commit()
        return (commit[0].to_pylist()[-1], _sizes(commit[0])) if commit else (None, {})

    def pages(self) -> int:
        """How many pages are committed."""
        return sum(1 for _ in _frames(self._path(COMMITS)))

    def recover(self) -> None:
        """Cut what a killed writer left after its last committed page, to append after it; StoreError when a
        table file lacks committed bytes (`_require_committed`)."""
        self.close()
        commit = self._last_commit()
        sizes, end = (_sizes(commit[0]), commit[1]) if commit else ({}, 0)
        for name, size in sizes.items():
            self._require_committed(name, size)
        for path in self.directory.glob(f"*{SUFFIX}"):
            name = path.name.removesuffix(SUFFIX)
            _truncate(path, end if name == COMMITS else sizes.get(name, 0))
        self._sizes = sizes  # tables this session does not write keep their committed length in later commits

    def tables(self, name: str, sizes: dict[str, int]) -> Iterator[pyarrow.Table]:
        """The committed pages' rows of one table, page by page (`sizes`: from `committed`); StoreError when its
        file lacks committed bytes (`_require_committed`)."""
        self._require_committed(name, sizes.get(name, 0))
        for table, _ in _frames(self._path(name), sizes.get(name, 0)):
            yield table

    def _require_committed(self, name: str, size: int) -> None:
        """StoreError when a table's file is missing or shorter than its committed `size` (a journal deleted in part,
        or damaged): read, it would give a run without rows its commits count."""
        path = self._path(name)
        found = path.stat().st_size if path.exists() else None
        if size and (found or 0) < size:
            held = "is missing" if found is None else f"holds {found} of its {size} committed bytes"
            raise StoreError(
                f"the journal of run {self.directory.name} is damaged ({path.name} {held}): it cannot be resumed; "
                "run the same command without --resume (it drops this run and reads again)"
            )

    def close(self) -> None:
        """Close the files this journal appends to (a later append recovers first)."""
        for file in self._files.values():
            file.close()
        self._files, self._sizes = {}, None

    def _write(self, name: str, table: pyarrow.Table) -> int:
        """Append one frame to a table's file; the file's length after it."""
        if name not in self._files:
            self._files[name] = open(self._path(name), "ab", buffering=0)  # noqa: SIM115 (kept open across pages)
        sink = pyarrow.BufferOutputStream()
        with pyarrow.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        payload = sink.getvalue()
        self._files[name].write(_HEADER.pack(payload.size) + payload.to_pybytes())
        return self._files[name].tell()

    def _last_commit(self) -> tuple[pyarrow.Table, int] | None:
        """The last complete commit frame and the offset where it ends."""
        last = deque(_frames(self._path(COMMITS)), maxlen=1)
        return last[0] if last else None

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}{SUFFIX}"


def _frames(path: Path, limit: int | None = None) -> Iterator[tuple[pyarrow.Table, int]]:
    """Each complete frame of a journal file (up to `limit` bytes), read one at a time, with the offset it ends at."""
    if not path.exists():
        return
    with path.open("rb") as file:
        end = 0
        while limit is None or end < limit:
            header = file.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            (length,) = _HEADER.unpack(header)
            payload = file.read(length)
            if len(payload) < length:
                return  # a frame cut by a kill: not committed
            end += _HEADER.size + len(payload)
            yield pyarrow.ipc.open_stream(payload).read_all(), end


def _sizes(commit: pyarrow.Table) -> dict[str, int]:
    return json.loads((commit.schema.metadata or {})[_SIZES_KEY])


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as file:
        file.truncate(size)
