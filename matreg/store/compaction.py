"""Compacting a store (`Store.compact`): the commit folders the views read merged into one new commit folder, marked
by a file named COMPACTED_MARK, with one Parquet file per table whose rows keep their order and each its commit's
number (sql.COMMIT). Every read then opens a file per table instead of one per commit. The views read the same rows
before and after: rows keep their commits' order and numbers, so which row of a key is the latest, and what a
snapshot holds, stay as they were. The compacted folder takes the next commit number, as any commit does (a matreg
that knows nothing of compaction numbers its commits after it, and reads it as one commit), and appears in one
rename; the folders it covers (those of lower numbers) are left out by every read from then on (`sql.stored_sql`),
and removed once the compaction is COVERED_KEPT_S old: a query that listed them before may still be reading them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pyarrow
import pyarrow.parquet as pq

from matreg.errors import StoreError
from matreg.schema import arrow_schema, conformed_to, load_tables
from matreg.store.files import store_file_writer
from matreg.store.sql import COMMIT

BATCH_ROWS = 65_536  # rows read and written at a time: memory stays flat however large the store
COMPACTED_MARK = "compacted"  # the file that marks a commit folder as a compaction of the folders before it
COVERED_KEPT_S = 600  # how long the folders a compaction merged stay after it: a query that listed them before ends


def commit_number(folder: Path) -> int | None:
    """The number of a commit folder (c<n>); None for another name."""
    digits = folder.name[1:]
    return int(digits) if folder.name.startswith("c") and digits.isdigit() else None


def is_compacted(folder: Path) -> bool:
    """True for a compacted folder."""
    return (folder / COMPACTED_MARK).exists()


def compacted_through(data_dir: Path) -> int:
    """The number of the newest compacted folder in `data_dir` (-1: none): the folders before it are covered."""
    return _newest_number(_newest_first(data_dir), is_compacted)


def live_folders(data_dir: Path) -> list[Path]:
    """The commit folders the views read, oldest first: the newest compacted folder (if any), then the commits after
    it."""
    folders = _newest_first(data_dir)
    through = _newest_number(folders, is_compacted)
    return [folder for folder in reversed(folders) if _number(folder) >= through]


def covered_folders(data_dir: Path) -> list[Path]:
    """The commit folders a compacted folder holds the rows of, of compactions more than COVERED_KEPT_S old."""
    folders, made_before = _newest_first(data_dir), time.time() - COVERED_KEPT_S
    through = _newest_number(folders, lambda folder: _compacted_at(folder) < made_before)
    return [folder for folder in folders if _number(folder) < through]


def write_compacted(name: str, folders: list[Path], path: Path) -> None:
    """Write the rows of table `name` in `folders` (oldest first) into one Parquet file at `path`, in order, each row
    with its commit's number; columns as declared today (a column an older file lacks is empty, whatever its
    declared nullability), then any column no longer declared, so that nothing stored is lost. Rows go out in row
    groups of about BATCH_ROWS rows, however few each commit holds."""
    files = [(folder / f"{name}.parquet", folder) for folder in folders if (folder / f"{name}.parquet").exists()]
    schema = _compacted_schema(name, [file for file, _ in files])
    pending: list[pyarrow.Table] = []
    pending_rows = 0
    with store_file_writer(path, schema) as writer:
        for file, folder in files:
            number = None if is_compacted(folder) else commit_number(folder)
            for batch in pq.ParquetFile(file).iter_batches(batch_size=BATCH_ROWS):
                pending.append(_numbered(pyarrow.Table.from_batches([batch]), schema, number))
                pending_rows += batch.num_rows
                if pending_rows >= BATCH_ROWS:
                    writer.write_table(pyarrow.concat_tables(pending), row_group_size=BATCH_ROWS)
                    pending, pending_rows = [], 0
        if pending:  # (an empty row group would have no statistics: DuckDB could no longer skip the file by them)
            writer.write_table(pyarrow.concat_tables(pending))


def refuse_unknown_tables(folders: Iterable[Path]) -> None:
    """StoreError when a commit holds a file that is not a table this matreg declares (compacting would leave it
    out)."""
    unknown = sorted(
        str(file)
        for folder in folders
        for file in folder.iterdir()
        if file.name != COMPACTED_MARK and file.name.removesuffix(".parquet") not in load_tables()
    )
    if unknown:
        raise StoreError(f"cannot compact the store: {', '.join(unknown)} is not a table this matreg declares")


def _newest_first(data_dir: Path) -> list[Path]:
    """The commit folders in `data_dir`, newest first."""
    return sorted((folder for folder in data_dir.glob("c*") if commit_number(folder) is not None), key=_number)[::-1]


def _newest_number(folders: list[Path], chosen: Callable[[Path], bool]) -> int:
    """The number of the first of `folders` (newest first) that is `chosen` (-1: none is)."""
    return next((_number(folder) for folder in folders if chosen(folder)), -1)


def _compacted_at(folder: Path) -> float:
    """When a compacted folder was made (infinity for another folder, or one another writer removes meanwhile)."""
    try:
        return (folder / COMPACTED_MARK).stat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _number(folder: Path) -> int:
    number = commit_number(folder)
    assert number is not None  # (the folders listed are commit folders)
    return number


def _compacted_schema(name: str, files: list[Path]) -> pyarrow.Schema:
    """The declared columns of table `name` (each nullable: an older file may lack one), the columns of `files` no
    longer declared, and the commit number."""
    declared = arrow_schema(name)
    older: dict[str, pyarrow.Field] = {}
    for file in files:
        for field in pq.read_schema(file):
            if field.name not in declared.names and field.name != COMMIT:
                older.setdefault(field.name, field)
    nullable = [field.with_nullable(True) for field in declared]
    return pyarrow.schema([*nullable, *older.values(), pyarrow.field(COMMIT, pyarrow.int64(), nullable=False)])


def _numbered(table: pyarrow.Table, schema: pyarrow.Schema, number: int | None) -> pyarrow.Table:
    """`table`'s rows with the columns of `schema` (`conformed_to`), each with the commit number `number` (None: a
    compacted folder's rows, which hold theirs)."""
    if number is None:
        return conformed_to(table, schema)
    without = schema.remove(schema.get_field_index(COMMIT))
    numbers = pyarrow.array([number] * table.num_rows, pyarrow.int64())
    return conformed_to(table, without).append_column(schema.field(COMMIT), numbers)
