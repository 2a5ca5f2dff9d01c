"""Atomic writes: a file (`atomic_write`), a file with its sidecar (`write_with_sidecar`) or a folder
(`atomic_dir`; in place of the folder there: `replace_dir`) written under a temp name beside it, then renamed into
place, a write the file system refuses an error naming what was written (`refused_writes_of`; a query's spill to
disk: `spills_refused`); the temp names and the removal of those a killed write left (`remove_old_temps`); the
store's Parquet files, without key-value metadata (`store_file_writer`, `write_store_file`); the export formats'
writers (`frame_writer`); a file's SHA-256 (`file_sha256`)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy
import orjson
import pandas as pd
import pyarrow
import pyarrow.parquet as pq

from matreg.defaults import check_export_format
from matreg.errors import REFUSED_WRITES, PathError, StoreError, WriteRefused, write_refused
from matreg.schema import declared_times, file_schema
from matreg.valuetext import csv_line

LEFTOVER_AGE_S = 3600  # a temporary directory or empty journal untouched this long was left by a killed process
NAME_MAX = 255  # the bytes a name in a folder may have, where the file system does not say (`name_max`)
PATH_MAX = 4096  # the bytes a path may have, its ending NUL counted, where the file system does not say (`_path_max`)
SPILL_LIMIT = "'max_temp_directory_size'"  # what DuckDB's error names when its temp folder may hold no more
TEXT_BATCH_ROWS = 5_000  # rows a CSV or JSONL export converts to Python values at a time (`_python_values`)
SPILL_FILE = "duckdb_temp_"  # how DuckDB names its temp files (of what a query holds beyond its memory)


def remove_if_untouched_since(path: Path, cutoff: float) -> None:
    """Delete a folder (or a stray file) when neither it nor anything in it changed after `cutoff` (a Unix time)."""
    with contextlib.suppress(OSError):  # another process may be removing it too; what cannot go stays
        if max(item.stat().st_mtime for item in [path, *path.rglob("*")]) >= cutoff:
            return
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


@contextlib.contextmanager
def refused_writes_of(path: Path) -> Iterator[None]:
    """A write in the block that the file system refuses (REFUSED_WRITES: a disk full, no permission) raised as the
    error of writing `path` (a file, a folder, the store: `write_refused`), whatever file the OS names (a temp file,
    none at all for a full disk); a rename into another file system (EXDEV) as StoreError naming both folders
    (`_across_file_systems`), a name too long for the file system (ENAMETOOLONG) as PathError naming it and the limit
    (`name_too_long`); other errors as they are, a WriteRefused of a write inside the block too (it names what it
    wrote)."""
    try:
        yield
    except WriteRefused:
        raise
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            raise _across_file_systems(exc, path) from None
        if exc.errno == errno.ENAMETOOLONG:
            raise name_too_long(exc, path, f"cannot write {path}") from None
        if exc.errno not in REFUSED_WRITES:
            raise
        raise write_refused(exc, path) from None
    except duckdb.Error as exc:
        code = _refused_code(str(exc))
        if code is None:
            raise
        raise write_refused(OSError(code, os.strerror(code)), path) from None


def _across_file_systems(error: OSError, path: Path) -> StoreError:
    """The error of a rename (EXDEV) of a file or folder into a folder on another file system (a store's data/ a link
    to another disk), naming both folders (`path`, what was written, where the error names no target)."""
    source, target = Path(error.filename or path), Path(error.filename2 or path)
    return StoreError(
        f"cannot move {source} into {target.parent}: {source.parent} and {target.parent} are on different file "
        "systems, and matreg writes a file or folder beside where it goes (a store's in its tmp/) to rename it into "
        "place: keep the store's data/, tmp/ and staging/ on one file system"
    )


def name_too_long(error: OSError, path: Path, doing: str) -> PathError:
    """The error of `doing` something with `path` ('cannot write ...', 'cannot read ...') where the OS found a name, or
    the whole path it was given, longer than its file system allows (ENAMETOOLONG, `error`, which names neither): which
    name or path, how long, and the limit (`_path_too_long`)."""
    named = Path(error.filename or path)
    return _path_too_long(named, doing) or _too_long(doing, named.name, name_max(named.parent))


def refuse_long_names(path: Path, doing: str) -> None:
    """PathError, before `path` is looked at, when a name in it, or the whole of it, is longer than its file system
    allows, saying `doing` with it ('cannot use ... as a store') as `name_too_long` says it: the OS's error ('File
    name too long') names none, and comes of the first look (`exists()`)."""
    error = _path_too_long(path, doing)
    if error is not None:
        raise error


def _path_too_long(path: Path, doing: str) -> PathError | None:
    """The error of `doing` something with `path` where a name in it, or the whole of it, is longer than its file
    system allows (`name_max`, `_path_max`); None where neither is. The whole is measured as given, what the OS is
    passed and measures: a short relative path is taken under a working folder whose own path is past the limit."""
    limit = name_max(path.parent)
    name = _long_name(path, limit)
    if name is not None:
        return _too_long(doing, name, limit)
    whole, path_limit = len(os.fsencode(path)), _path_max(path.parent)
    if whole >= path_limit:  # (PATH_MAX counts the C string's ending NUL)
        return PathError(f"{doing}: its path is {whole} bytes long, past the {path_limit - 1} bytes a path may have")
    return None


def refuse_long_staged_names(path: Path, doing: str) -> None:
    """`refuse_long_names`, and PathError when `path`'s own name is too long for the temp name matreg writes it under
    first (`temps_beside`: a folder staged beside it), saying how long it may be."""
    refuse_long_names(path, doing)
    _refuse_long_names(path, [_temp_path(path)])


def _long_name(path: Path, limit: int) -> str | None:
    """The first name in `path` longer than `limit` bytes; None where none is."""
    return next((part for part in path.parts if len(os.fsencode(part)) > limit), None)


def _too_long(doing: str, name: str, limit: int) -> PathError:
    """The error of `doing` something with a path holding `name`, longer than the `limit` bytes a name may have."""
    return PathError(
        f"{doing}: the name {name!r} is {len(os.fsencode(name))} bytes long, past the {limit} bytes a name may have "
        "there"
    )


def name_max(folder: Path) -> int:
    """The bytes a name may have in `folder` (made or not): what its file system says (`_limit_in`), else NAME_MAX."""
    return _limit_in(folder, "PC_NAME_MAX", NAME_MAX)


def _path_max(folder: Path) -> int:
    """The bytes a path may have (its ending NUL counted, as PATH_MAX) in `folder`: what its file system says
    (`_limit_in`), else PATH_MAX."""
    return _limit_in(folder, "PC_PATH_MAX", PATH_MAX)


def _limit_in(folder: Path, setting: str, default: int) -> int:
    """A limit of the file system of `folder` (made or not: of the nearest folder there, `os.pathconf`'s `setting`),
    else `default`."""
    for there in (folder, *folder.parents):
        with contextlib.suppress(OSError):  # (not there, or its path, or a name in it, too long)
            return os.pathconf(there, setting)
    return default


def _refuse_long_names(path: Path, made: list[Path]) -> None:
    """PathError when a name matreg gives a file or folder it writes for `path` (`made`: a temp name of it, its
    sidecar's) is longer than the file system allows there, saying how long `path`'s name may be: the OS's error would
    name the hidden file, after other files were written."""
    limit, given = name_max(path.parent), len(os.fsencode(path.name))
    added = max(len(os.fsencode(other.name)) for other in made) - given
    if given + added > limit:
        raise PathError(
            f"cannot write {path}: its name is {given} bytes long, and matreg writes it under a temp name {added} "
            f"bytes longer first, past the {limit} bytes a name may have there: give a name of at most "
            f"{limit - added} bytes"
        )


def _refused_code(text: str) -> int | None:
    """The errno (REFUSED_WRITES) whose reason DuckDB's error `text` says, the OS's error in its message ('Could not
    write file ...: <strerror>'); None where it says none."""
    return next((code for code in REFUSED_WRITES if os.strerror(code) in text), None)


@contextlib.contextmanager
def spills_refused(folder: Path) -> Iterator[None]:
    """A query in the block that could not write what outgrew its memory into `folder` (DuckDB's temp_directory)
    raised as the error of writing `folder` (`write_refused`: NoSpace, a failure for now, for a full disk): DuckDB's
    own limit on what the folder may hold reached (SPILL_LIMIT: by default 90% of the disk space left there, so a disk
    nearly full), or the OS's refusal of one of its temp files there. Other errors, a write elsewhere refused too, as
    they are."""
    try:
        yield
    except WriteRefused:
        raise
    except (duckdb.Error, OSError) as exc:  # (DuckDB's errors reach Arrow's reader of a query's rows as OSError)
        code = _spill_refused(str(exc), folder)
        if code is None:
            raise
        raise write_refused(OSError(code, os.strerror(code)), folder) from None


def _spill_refused(text: str, folder: Path) -> int | None:
    """The errno of a spill into `folder` refused that DuckDB's error `text` says: ENOSPC for its limit on the folder
    reached (SPILL_LIMIT), the OS's error writing one of its temp files there (`_refused_code`); else None. What the
    error quotes of the query ('LINE 1: select ...') is not read: a query may name them."""
    text = text.split("\nLINE ", 1)[0]
    if SPILL_LIMIT in text:
        return errno.ENOSPC
    return _refused_code(text) if f"{folder}{os.sep}{SPILL_FILE}" in text else None


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Write a file through `write(temp)` beside `path`, then rename it into place (never half-written);
    StoreError, before writing, when `path` is a folder; WriteRefused naming `path` when the file system refuses the
    write (`refused_writes_of`)."""
    with refused_writes_of(path):
        (temp,) = _temp_files_beside(path)
        try:
            write(temp)
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
            temp.with_name(f"{temp.name}.wal").unlink(missing_ok=True)  # (a DuckDB database's write-ahead log)
    return path


@contextlib.contextmanager
def atomic_dir(final: Path, publish: Callable[[Path, Path], object] = os.rename) -> Iterator[Path]:
    """A new, empty staging folder beside `final`, named as `atomic_write`'s temp files (`temps_beside`), to write a
    folder's files into; `publish(staging, final)` puts it in place when the block ends without an error (by default
    one rename: `final` must not exist, or be an empty folder). The staging folder never outlives the block: what an
    error or `publish` left of it is removed; one a killed process left goes as `remove_old_temps` says. A write the
    file system refuses, in the block too, is WriteRefused naming `final` (`refused_writes_of`)."""
    with refused_writes_of(final):
        (staging,) = temps_beside(final)
        staging.mkdir()
        try:
            yield staging
            publish(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def replace_dir(staging: Path, final: Path) -> None:
    """Put the finished folder `staging` in place of `final` (a `publish` of `atomic_dir`): one rename where no folder
    is there; else the folder there renamed aside under a temp name (`temps_beside`), `staging` renamed into place,
    and the old folder removed (put back where the new one cannot be renamed in). `final` is never half-written: the old
    folder whole, then the new one; the old one that a process killed before removing it left goes as
    `remove_old_temps` says."""
    if not final.exists():
        os.rename(staging, final)
        return
    (old,) = temps_beside(final)
    os.rename(final, old)
    try:
        os.rename(staging, final)
    except OSError:
        os.rename(old, final)  # the old folder back in its place, whole
        raise
    shutil.rmtree(old, ignore_errors=True)


def _sidecar_path(path: Path) -> Path:
    """Where the `.meta.json` sidecar of an exported file goes: beside it, named after it."""
    return path.with_name(f"{path.name}.meta.json")


def write_with_sidecar(path: Path, write: Callable[[Path], object], describe: Callable[[Path], dict]) -> dict:
    """Write a data file through `write(temp)` and its sidecar (`_sidecar_path`), the JSON of `describe(temp)`, both
    to temp files beside them first, then rename them into place back to back; return the sidecar. StoreError,
    before anything is written, when a folder stands where either goes; WriteRefused naming `path` when the file
    system refuses the write (`refused_writes_of`)."""
    sidecar = _sidecar_path(path)
    with refused_writes_of(path):
        temp, temp_sidecar = _temp_files_beside(path, sidecar)
        try:
            write(temp)
            meta = describe(temp)
            write_json(meta, temp_sidecar)
            # The sidecar first: a crash between the renames leaves the new sidecar beside no data file (a first
            # export: visibly unfinished) or beside the previous one, whose sha256 it does not match; data first would
            # leave new data without its provenance, or with the previous export's (which its sha256 flags too).
            os.replace(temp_sidecar, sidecar)
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
            temp_sidecar.unlink(missing_ok=True)
    return meta


def _refuse_folders(*paths: Path) -> None:
    """StoreError when a folder stands where a file is to be written (os.replace would fail after the writing, with
    the temp file's name in its message)."""
    for path in paths:
        if path.is_dir():
            raise StoreError(f"cannot write the file {path}: a folder of that name is there")


# `temps_beside`'s names, .<name>.<uuid>.tmp, and the write-ahead log of a DuckDB database written so (+ '.wal')
_TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{32}\.tmp(?:\.wal)?")


def _temp_files_beside(*paths: Path) -> list[Path]:
    """`temps_beside` for files: StoreError, before anything is written, when a folder stands where one goes."""
    _refuse_folders(*paths)
    return temps_beside(*paths)


def temps_beside(*paths: Path) -> list[Path]:
    """A hidden temp name beside each of `paths` (in one folder), `.<name>.<uuid>.tmp`, unique to this write (a file
    or a folder); PathError, before anything is made, when one is longer than a name may be there
    (`_refuse_long_names`: the first of `paths` names the others). The folder is made if need be, and the temps of
    writes killed there (`remove_old_temps`) go."""
    temps = [_temp_path(path) for path in paths]
    _refuse_long_names(paths[0], temps)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    remove_old_temps(paths[0].parent)
    return temps


def _temp_path(path: Path) -> Path:
    """A temp name beside `path`, unique to one write: `.<name>.<uuid>.tmp`."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def is_temp_name(name: str) -> bool:
    """True for a name `temps_beside` gives: a temp file or folder of a matreg write."""
    return bool(_TEMP_NAME.fullmatch(name))


def remove_old_temps(folder: Path) -> None:
    """Remove the entries of `folder` named as `temps_beside` names its temps that nothing touched for
    LEFTOVER_AGE_S seconds: what a write killed before its rename left."""
    cutoff = time.time() - LEFTOVER_AGE_S
    for path in folder.glob(".*"):
        if is_temp_name(path.name):
            remove_if_untouched_since(path, cutoff)


def store_file_writer(where: Path, schema: pyarrow.Schema) -> pq.ParquetWriter:
    """A writer of one of the store's Parquet files (a commit's table, a compacted one, a run's while it publishes):
    no key-value metadata in its footer, neither `schema`'s (pandas' dtypes) nor pyarrow's copy of the schema
    (ARROW:schema). The store reads its types from the declared schema, which the Parquet schema gives back as
    written (`schema.arrow_schema`); the two took 2-11 KB of each commit's footer."""
    return pq.ParquetWriter(where, schema.remove_metadata(), store_schema=False)


def write_store_file(table: pyarrow.Table, path: Path) -> None:
    """One of the store's Parquet files holding `table`, as `store_file_writer` writes it."""
    pq.write_table(table.replace_schema_metadata(None), path, store_schema=False)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks (a file of any size, in little memory)."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_json(data: dict, path: Path) -> None:
    """A JSON document, indented, in UTF-8 (values JSON does not know, as text)."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    path.write_text(text, encoding="utf-8")


def frame_writer(frame: pd.DataFrame, fmt: str) -> Callable[[Path], None]:
    """What writes `frame` as `fmt` to a path, its times in UTC (`declared_times`); ConfigError for a format not in
    EXPORT_FORMATS (`check_export_format`)."""
    check_export_format(fmt)
    return lambda path: _WRITERS[fmt](declared_times(frame), path)


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """The rows with the store's column types (`file_schema`), no pandas metadata."""
    table = pyarrow.Table.from_pandas(frame, schema=file_schema(frame), preserve_index=False)
    pq.write_table(table.replace_schema_metadata(None), path)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """The rows as `matreg sql --format csv` prints them (`csv_line`: missing values as NULL, an empty cell; the empty
    text ""; a cell holding a line break, \\r too, quoted; a time to the microsecond), in UTF-8, lines ending in \\n."""
    with path.open("w", encoding="utf-8", newline="") as file:
        file.write(csv_line(map(str, frame.columns)) + "\n")
        for columns in _python_values(frame):
            file.writelines(csv_line(row) + "\n" for row in zip(*columns, strict=True))


def _write_jsonl(frame: pd.DataFrame, path: Path) -> None:
    """One JSON object per row, numbers as they are (orjson: shortest exact form; pandas wrote 10 decimals, so
    5.3e-19 as 0.0), times to the microsecond, missing values as null."""
    options = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
    names = list(frame.columns)
    with path.open("wb") as file:
        for columns in _python_values(frame):
            records = (dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True))
            file.writelines(orjson.dumps(record, option=options, default=_json_value) for record in records)


def _python_values(frame: pd.DataFrame) -> Iterator[list[numpy.ndarray]]:
    """The frame's columns as arrays of Python values (a missing value None), `TEXT_BATCH_ROWS` rows at a time: a
    text file is written a batch at a time, never from a copy of the whole frame as Python objects (several times
    its size)."""
    for start in range(0, len(frame), TEXT_BATCH_ROWS):
        batch = frame.iloc[start : start + TEXT_BATCH_ROWS]
        yield [batch.iloc[:, index].to_numpy(dtype=object, na_value=None) for index in range(batch.shape[1])]


def _json_value(value: Any) -> Any:
    """What orjson does not write itself: pandas times as ISO 8601, arrays of text as lists, anything else as text."""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, numpy.ndarray):
        return value.tolist()
    return str(value)


_WRITERS = {"parquet": _write_parquet, "csv": _write_csv, "jsonl": _write_jsonl}
