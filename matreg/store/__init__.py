"""The one place that reads and writes the store: Parquet commits, DuckDB views, read-only SQL, exports.

Layout of a store directory:
    data/c00000001/<table>.parquet               one commit: an import, a fetch run, the record of a failed run, a
                                                 steward's entry
    data/c00000009/<table>.parquet, compacted    the commits before 9 merged, each row with its commit's number
                                                 (`compact`, matreg/store/compaction.py)
    staging/<run_id>/                            the journal of a run not finished yet (matreg/journal.py; never
                                                 read by the views); its rows of records carry the read they came
                                                 from (READ, not published)
    locks/<run_id>.lock                          held by the process writing that run (others neither resume nor
                                                 drop it); deleted with its journal, or, left by a run killed before
                                                 its first commit, by a writer (`remove_leftovers`)
    tmp/                                         commits being written, journals being deleted
    matreg.duckdb                                views over data/ (deduplicated by key, newest commit wins), for
                                                 `matreg sql` and other clients: matreg's own reads run the same views
                                                 in memory over the Parquet files (`Store.read`); each query reads
                                                 the commits up to the newest when it starts (`Store._pin`)
    .views.sha256                                digest of the declared schemas and views the store was written with
    format                                       the store's format number (STORE_FORMAT)
Each page of a run is committed to its journal whole or not at all, with the run's cursor. A finished run is
compacted into one Parquet file per table, each batch checked on the way, and becomes visible in one rename into
data/; its journal is removed only after that rename. A run is committed or invisible, a run interrupted at any
point (staging or publishing) can be resumed from its last staged page, and re-writing a key later updates it
without duplicates.

The package: `Store` (here) reads and writes the store; matreg/store/sql.py builds the SQL of the views and of reads
of the stored rows; matreg/store/publish.py holds what publishing a run decides with (the check, what it leaves out,
the SQL and Arrow steps comparing a run's files with the store); matreg/store/files.py writes files and folders
atomically (temp names, the export formats); matreg/store/compaction.py merges commit folders into one;
matreg/store/interrupts.py makes Ctrl-C and SIGTERM stop the store's DuckDB queries.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path, PurePosixPath
from typing import Any

import duckdb
import filelock
import numpy
import pandas as pd
import pyarrow
import pyarrow.compute
import pyarrow.parquet as pq

from matreg.defaults import DEFAULT_STORE
from matreg.errors import (
    ConfigError,
    NoStore,
    PathError,
    StoreBusy,
    StoreError,
    StoreFileHeld,
    WriteRefused,
    clipped,
    listed,
    utf8_path,
)
from matreg.journal import RunJournal
from matreg.schema import (
    arrow_schema,
    arrow_table,
    children_of,
    conformed,
    load_tables,
    pandas_dtype,
    table_spec,
    value_conditions,
    vocabulary_key,
)
from matreg.store.compaction import (
    COMPACTED_MARK,
    commit_number,
    compacted_through,
    covered_folders,
    is_compacted,
    live_folders,
    refuse_unknown_tables,
    write_compacted,
)
from matreg.store.files import (
    LEFTOVER_AGE_S,
    atomic_dir,
    atomic_write,
    file_sha256,
    frame_writer,
    is_temp_name,
    name_max,
    name_too_long,
    refuse_long_names,
    refuse_long_staged_names,
    refused_writes_of,
    remove_if_untouched_since,
    remove_old_temps,
    replace_dir,
    spills_refused,
    store_file_writer,
    temps_beside,
    write_json,
    write_store_file,
    write_with_sidecar,
)
from matreg.store.interrupts import stopped_by_signals
from matreg.store.publish import (
    NOT_KEPT,
    QUARANTINE,
    READ,
    SAME_MATERIAL,
    CheckedRun,
    Dropped,
    Kind,
    LastReads,
    PublishCheck,
    Removed,
    RunFinisher,
    Unwritten,
    ValueKey,
    WholeScope,
    buckets,
    changed_records_sql,
    earlier_read_sql,
    kept_columns,
    keys_repeat,
    last_writes_in_scope_sql,
    of_keys,
    owners,
    publishing_order,
    read_twice,
    removed_values_sql,
    rereads_resolving_sql,
    rewrite_with,
    rewrite_without,
    run_rows_sql,
    runs_at_sql,
    runs_elsewhere_sql,
    staged_rows,
    stored_rows_of_run_sql,
    stored_values,
    stored_values_of_scope_sql,
    with_values,
)
from matreg.store.sql import (
    COMMIT,
    COMPACTED_THROUGH,
    CURATION_RUN_PREFIX,
    SNAPSHOT,
    aliased,
    compared_sql,
    current_rows_sql,
    decided_versions_sql,
    equal,
    settling_entries_sql,
    sql_text,
    still_quarantined_sql,
    stored_sql,
    view_definitions,
    views_in_order,
    views_named,
)

__all__ = [  # what other modules import from matreg.store
    "CURATION_RUN_PREFIX",
    "DEFAULT_STORE",  # for library callers
    "Dropped",
    "Kind",
    "Removed",
    "Store",
    "StoreBusy",
    "ValueKey",
    "WholeScope",
    "atomic_dir",
    "atomic_write",
    "file_sha256",
    "is_temp_name",
    "name_too_long",
    "refuse_long_names",
    "refuse_long_staged_names",
    "refused_writes_of",
    "remove_old_temps",
    "replace_dir",
    "settling_entries_sql",
    "temps_beside",
    "write_with_sidecar",
]

logger = logging.getLogger(__name__)
DB_NAME = "matreg.duckdb"
DB_STORAGE_VERSION = "v1.0.0"  # the DuckDB file's storage format: DuckDB 0.10 and later open it (2.0's own: 2.0 only)
VIEWS_STAMP = ".views.sha256"  # the digest of the schemas and views the store was last written with
FORMAT_FILE = "format"  # the store's format number, written by the first write of a matreg that knows formats
STORE_FORMAT = 2  # this matreg's: 2, commits may be compacted (1, none written: a store of an older matreg)
PUBLISH_BATCH_ROWS = 10_000  # rows of a run's file rewritten at a time (`Store._keep_stored`)
PUBLISH_BATCH_BYTES = 4 * 2**20  # Arrow bytes checked and written at a time when a run is published: flat memory
CACHE_NAME = "http_cache.sqlite"  # the HTTP cache's file (SQLite's files beside it are named after it)
# The entries a store's folder may have before its first commit writes FORMAT_FILE (temp names and the HTTP cache's
# aside): a folder holding others, and neither FORMAT_FILE nor DB_NAME, is no store (`Store._refuse_other_files`)
FIRST_ENTRIES = {"data", "tmp", "staging", "locks", ".lock"}
PLACEHOLDERS = {".gitkeep", ".gitignore", ".DS_Store"}  # what a folder its user sees as empty may hold (git, Finder)
# A run's id (`matreg.runs.new_run_id`): when it started, in UTC (to the second in early matregs), the source or
# dataset it reads, a random suffix; what a writer removes of a killed run's, in staging/ and locks/, is named so
RUN_ID = re.compile(r"\d{8}T\d{6}(?:\d{6})?Z-(?P<source>.+)-[0-9a-f]{8}")
TMP_NAME = re.compile(r"[0-9a-f]{32}")  # a name in tmp/ (`Store._tmp_path`): what a writer removes of a killed one's
LOCK_WAIT_S = 60  # how long a writer waits for another process to release a store lock
CLAIM_WAIT_S = 0.5  # how long a claim of a run waits: a look at a run (`Store.is_running`) holds its lock an instant


def _writes_to_store(method: Callable) -> Callable:
    """A method of Store that writes into the store: a write the file system refuses in it (a disk full, no
    permission) is WriteRefused naming the store (`refused_writes_of`; NoSpace, a failure for now, for a full one)."""

    @functools.wraps(method)
    def writing(self: Store, *args: Any, **kwargs: Any) -> Any:
        with refused_writes_of(self.root):
            return method(self, *args, **kwargs)

    return writing


class Store:
    """A matreg store directory: Parquet commits plus a DuckDB file of views over them."""

    def __init__(self, root: Path | str) -> None:
        """The store in the directory `root` (made when first written); PathError when `root` is a file, or a name in
        its path is too long for the file system (`refuse_long_names`)."""
        folder = Path(root).resolve()
        refuse_long_names(folder, f"cannot use {folder} as a store")
        self.root = _searchable(utf8_path(folder, "the store folder"))
        # the folder holding the store as named (a store folder that is a link to another disk: its link's folder),
        # which a lab file's path is recorded from (`relative_path`), and the store folder's name in it
        named = Path(os.path.abspath(root))
        self.holder, self.name = named.parent.resolve(), named.name
        if self.root.exists() and not self.root.is_dir():
            raise PathError(f"{self.root} is a file, not a matreg store directory")
        self.data_dir = self.root / "data"
        self.tmp_dir = self.root / "tmp"
        self.staging_dir = self.root / "staging"
        self.locks_dir = self.root / "locks"  # a lock file per run a process writes or wrote (`claim_run`)
        self._journals: dict[str, RunJournal] = {}  # journals this Store appends to, per run
        self._running: dict[str, filelock.FileLock] = {}  # runs this process writes (`claim_run`)
        self._scanner: duckdb.DuckDBPyConnection | None = None  # the in-memory database `_scan` gives cursors of
        self._scanner_views: set[str] = set()  # the views created in it (`_define_views`)
        self._views_behind = False  # the views in the DuckDB file could not be updated (stderr was told)
        self._read_path: str | None = None  # of a store written with other definitions (`_search_path`)
        self._snapshot: int | None = None  # the commit every read of a `snapshot()` block reads the store as of
        self.db_path = self.root / DB_NAME
        self.cache_path = self.root / CACHE_NAME
        self._refuse_other_files()

    def exists(self) -> bool:
        """True once the store has been created."""
        return self.db_path.exists() and self.data_dir.is_dir()

    def relative_path(self, path: Path | str) -> str | None:
        """A file's path (absolute) from the folder holding the store (`holder`: 'lab/gaps.csv' beside the store,
        '../data/gaps.csv' elsewhere), as `fetch_runs.relative_path` records a lab file's: the same while the project
        folder holding both moves or is copied whole. None where there is none (a file on another Windows drive)."""
        try:
            return Path(os.path.relpath(path, self.holder)).as_posix()
        except ValueError:
            return None

    def places(self, path: Path | str) -> list[str]:
        """The paths at which imports read the lab file now at `path` (absolute), as `fetch_runs.endpoint` records
        them: its own, and those of its imports from a project folder moved or copied whole since, the store in it
        (the same path from the folder holding the store, `moved_with_store`)."""
        here, relative = str(path), self.relative_path(path)
        if relative is None or not self.exists():
            return [here]
        read = self.read(
            "SELECT DISTINCT endpoint FROM fetch_runs WHERE relative_path = ? AND endpoint <> ? ORDER BY 1",
            [relative, here],
        )
        return [here, *(endpoint for endpoint in read["endpoint"] if self.moved_with_store(endpoint, relative))]

    def lab_file(self, endpoint: str, relative_path: str | None) -> Path:
        """Where the file a lab import read (its `fetch_runs` endpoint and relative_path) is now: at its path from the
        folder holding the store where a file is there and it moved or was copied with the store (`moved_with_store`),
        else at its path as read."""
        if relative_path is not None and (moved := self.holder / relative_path).is_file():
            if self.moved_with_store(endpoint, relative_path):
                return moved
        return Path(endpoint)

    def moved_with_store(self, endpoint: str, relative_path: str) -> bool:
        """Whether the lab file an import read at `endpoint`, `relative_path` from the folder then holding the store,
        is the one at that path from the folder holding it now: nothing is at `endpoint` any more (the project folder
        moved whole), or the folder that held the store then holds another store of its name (copied whole). A store
        moved alone is no such case (the file at that path from its new folder is another file), nor a folder copied
        whole whose store is a link to this one (its file and the copy's share it), nor a file outside the project
        folder ('../data/gaps.csv') still there; a store copied alone is taken for a folder copied whole."""
        read = Path(endpoint)
        if not read.exists():
            return True
        parts = PurePosixPath(relative_path).parts
        if ".." in parts or len(parts) > len(read.parents):
            return False
        store_then = read.parents[len(parts) - 1] / self.name
        return _holds_store(store_then) and store_then.resolve() != self.root

    def _refuse_other_files(self) -> None:
        """PathError when the store's folder is no store (`_holds_store`) and holds an entry no store has before then
        (FIRST_ENTRIES, the HTTP cache's, a temp name): a folder of other files (`--store .`, `--store ~`), where
        matreg would write its folders beside them."""
        if not self.root.is_dir() or _holds_store(self.root):
            return
        others = sorted(entry.name for entry in self.root.iterdir() if not _is_first_entry(entry.name))
        if others:
            raise PathError(
                f"cannot use {self.root} as a store: it is a folder of other files ({listed(others, 3)}), not a matreg "
                "store; give a new or empty folder, or a store's"
            )

    @_writes_to_store
    def ensure(self, wait_s: float | None = None) -> None:
        """Create the store if needed, give every declared table a file of its declared schema, create the views
        (`wait_s`: how long to wait for the store's lock, by default LOCK_WAIT_S).

        When schemas/ changed since the store was last written (a table or a column added), each table whose newest
        file lacks its declared schema, or none of whose files has the commit number column (a store of an older
        matreg), gets an empty file of it in a new commit: the views read all files by name, so the new columns exist
        (NULL in older rows). The views are then (re)created (`_update_views`); while they
        cannot be, the next writes find the files up to date and write no commit again.
        """
        with self.locked(wait_s=wait_s):
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if self._refuse_newer_format() < STORE_FORMAT:
                atomic_write(self.root / FORMAT_FILE, lambda temp: temp.write_text(f"{STORE_FORMAT}\n"))
            digest = _definitions_digest()
            changed = not self.db_path.exists() or self._stamp() != digest
            behind = self._tables_behind(changed)
            if behind:
                empty = {name: self._empty(name) for name in behind}
                self._write_dir(empty, self.data_dir / f"c{self._next_sequence():08d}")
                self._scanner_views.clear()  # (made again over the new columns)
                self._read_path = None  # (the store's own files have the declared columns now)
            if changed:
                self._update_views(digest)

    def _tables_behind(self, changed: bool) -> list[str]:
        """The tables with no file, and after the definitions `changed`, those whose newest file lacks the declared
        schema or none of whose files has the commit number column (`sql.stored_sql` reads it)."""
        if not changed:
            return [name for name in load_tables() if not any(self.data_dir.glob(f"c*/{name}.parquet"))]
        commits = sorted(self.data_dir.glob("c*"), reverse=True)
        return [
            name
            for name in load_tables()
            if not _has_declared_schema(_newest_file(commits, name), name) or not _has_commit_column(commits, name)
        ]

    def _stamp(self) -> str | None:
        """The digest of the definitions the store was last written with."""
        stamp = self.root / VIEWS_STAMP
        return stamp.read_text(encoding="utf-8") if stamp.exists() else None

    @_writes_to_store
    def commit(self, tables: dict[str, pd.DataFrame], wait_s: float | None = None) -> str:
        """Write validated frames of canonical tables as one new commit; return the commit name (`wait_s`: how long
        to wait for the store's lock, by default LOCK_WAIT_S)."""
        self.ensure(wait_s)
        arrow = self._arrow_tables(tables)
        return self._publish(arrow, wait_s) if arrow else ""

    @_writes_to_store
    def stage_page(
        self, run_id: str, tables: dict[str, list[dict] | pyarrow.Table], reads: dict[str, numpy.ndarray] | None = None
    ) -> None:
        """Commit one page of a run (rows or Arrow tables of canonical tables, with its fetch_runs row) to its journal,
        with the read each row of a record came from (`reads`, by table: of a record read on two pages of the run,
        publishing writes the rows of the later read only).

        Views do not see it; the fetch_runs row (counts and cursor) is what a resumed run continues from.
        """
        if run_id not in self._journals:  # a resumed run's journal cuts what a killed writer left, then appends
            self._journals[run_id] = RunJournal(self.staging_dir / run_id)
        staged = self._arrow_tables({name: table for name, table in tables.items() if name != "fetch_runs"})
        for name, numbers in (reads or {}).items():
            if name in staged:
                staged[name] = staged[name].append_column(READ, pyarrow.array(numbers, pyarrow.int64()))
        try:
            self._journals[run_id].append(staged, arrow_table("fetch_runs", tables["fetch_runs"]))
        except BaseException:  # a page written in part: the next append (or resume) must cut it first
            self._journals.pop(run_id).close()
            raise

    @_writes_to_store
    def publish_run(
        self,
        run_id: str,
        check: PublishCheck,
        finish: RunFinisher,
        unread_columns: tuple[str, ...] = (),
        whole_scope: WholeScope | None = None,
    ) -> str:
        """Make a staged run visible at once: one Parquet file per table, each batch through `check.admit` first.

        Rows identical to the stored row with their key (stamp columns aside) are not written again, nor are records the
        store holds from a later read (`_superseded_of`), nor the rows of a record's reads before its last in the run
        (`_drop_rows`). The rows the check withholds are published in the quarantine table as `check.withheld()` gives
        them. A check that raises refuses the run (`check.refuse_removals` too, told the stored values the run's write
        removes: `_removed_values`): nothing is then published and the run stays staged. Materials columns
        the run did not read (`unread_columns`) keep stored values of the same material. A run that read the whole of a
        scope (`whole_scope`: source, scope and places) withdraws the records it did not admit (`_add_withdrawals`),
        unless its rows moved (`check.rows_moved`). The run's fetch_runs row lists the ids of all its quarantine rows,
        stored before or not (`open_quarantine`). What to leave out, and what the check decides, is decided under the
        store's lock, against the commits before: the run's rows are checked without the lock first, and again under it
        when the check reads the store (`check.reads_store`) and a commit was published meanwhile; `check.refuse_run` is
        asked there too. So runs published together give what they would one after the other. The run's fetch_runs row
        is its last staged one, as `finish(row, dropped rows per table, records withdrawn)` completes it. Returns the
        commit name.
        """
        self.ensure()
        self.remove_leftovers()
        journal = self._journals.pop(run_id, None) or RunJournal(self.staging_dir / run_id)
        journal.close()
        checked: list[CheckedRun] = []
        try:
            run_row, sizes = journal.committed()
            if run_row is None:
                raise StoreError(f"run {run_id} has no staged page to publish")
            checked_as_of = self._newest_commit()
            checked.append(self._checked_run(journal, sizes, check))
            with self.locked():
                check.refuse_run()
                if check.reads_store() and self._newest_commit() != checked_as_of:  # published meanwhile
                    check.restart()
                    checked.append(self._checked_run(journal, sizes, check))
                build, _, quarantined, last_reads = checked[-1]
                self._keep_stored(build / "materials.parquet", unread_columns)
                self._keep_stored_values(build, check.kept_values(), whole_scope)
                withheld = check.withheld_keys()
                read_whole = None if check.rows_moved() else whole_scope
                withdrawn = self._add_withdrawals(build / "materials.parquet", read_whole, run_id, withheld)
                changed = {name: self._changed_records(name, build, last_reads) for name in owners()}
                # written whatever else the store holds of them (another file's value with the key; the same record)
                again = [*withdrawn, *self._rereads_resolving(build, quarantined), *self._moved_here(build, read_whole)]
                if again and changed["materials"] is not None:  # (None: every record is written)
                    changed["materials"] = [*changed["materials"], *again]
                tables = publishing_order()
                unwritten = Unwritten(
                    withheld=withheld,
                    superseded=self._superseded_of(build, whole_scope),
                    changed=changed,
                    last_reads=last_reads,
                )
                dropped = {name: self._drop_rows(name, build, unwritten) for name in tables}
                removed = self._removed_values(build)
                check.refuse_removals(removed)
                finished = finish(run_row, dropped, len(withdrawn), removed) | {"quarantined": quarantined}
                published = arrow_table("fetch_runs", [finished])
                self._compact(iter([published]), "fetch_runs", build / "fetch_runs.parquet", check)
                final = self.data_dir / f"c{self._next_sequence():08d}"
                os.rename(build, final)
        finally:
            for run_files in checked:
                run_files.remove()
        # Until here the journal stays staged, so a run stopped at any point resumes; one killed right after the
        # rename is published with its journal still staged: `staged_runs` leaves it out, the next writer removes it.
        self.discard_run(run_id)
        return final.name

    def _checked_run(self, journal: RunJournal, sizes: dict[str, int], check: PublishCheck) -> CheckedRun:
        """Compact a run's journal into one file per table, in a new temporary folder, each batch through
        `check.admit` (the quarantine table last, with the rows the check withheld)."""
        run_files = CheckedRun(self._new_tmp_dir(), self._new_tmp_dir(), [], None)
        try:
            for name in publishing_order():
                pages = (conformed(name, page) for page in journal.tables(name, sizes))  # (READ aside)
                if name == QUARANTINE:
                    pages = chain(pages, [arrow_table(name, check.withheld())])
                self._compact(pages, name, run_files.build / f"{name}.parquet", check)
            quarantined = _quarantine_ids(run_files.build / f"{QUARANTINE}.parquet")
            last_reads = self._last_reads(journal, sizes, run_files.build, run_files.reads)
        except BaseException:
            run_files.remove()
            raise
        return run_files._replace(quarantined=quarantined, last_reads=last_reads)

    @_writes_to_store
    def compact(self) -> int:
        """Merge the commit folders into one compacted folder (`matreg.store.compaction`), so that every read opens
        one file per table instead of one per commit; return how many folders were merged (0: one or none to merge).
        The views read the same rows before and after. Under the store's lock (waiting as `ensure` does); the merged
        folders stay, never read again, for COVERED_KEPT_S (a query that listed them before may be reading them),
        and a later write removes them. A compaction interrupted at any point leaves the store as it was, or
        compacted. StoreError when there is no store."""
        self._require_store()
        self.ensure()
        with self.locked():
            folders = live_folders(self.data_dir)
            if len(folders) > 1:
                refuse_unknown_tables(folders)
                self._write_compacted(folders)
            self._remove_covered()
        return len(folders) if len(folders) > 1 else 0

    def commits_since_compacted(self) -> int:
        """How many commits the store holds since it was last compacted (all of them, if never)."""
        return sum(not is_compacted(folder) for folder in live_folders(self.data_dir))

    def _write_compacted(self, folders: list[Path]) -> None:
        """Write the rows of `folders` (oldest first) into a compacted folder, the next commit, made visible in one
        rename."""
        build = self._new_tmp_dir()
        try:
            for name in load_tables():
                write_compacted(name, folders, build / f"{name}.parquet")
            (build / COMPACTED_MARK).touch()
            os.rename(build, self.data_dir / f"c{self._next_sequence():08d}")
        finally:
            shutil.rmtree(build, ignore_errors=True)

    def _remove_covered(self) -> None:
        """Remove the commit folders compacted folders hold, once those are COVERED_KEPT_S old (each leaves data/ in
        one rename, into tmp/)."""
        for folder in covered_folders(self.data_dir):
            trash = self._tmp_path()
            with contextlib.suppress(FileNotFoundError):  # (another writer removed it meanwhile)
                os.rename(folder, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def remove_leftovers(self) -> None:
        """Remove what killed processes left (a writer's task: reads leave it): temporary directories (a half-written
        commit or release, a journal being deleted) and the journals of runs killed before staging a page (never
        resumable), each untouched for LEFTOVER_AGE_S seconds, files included; the journals of runs published already
        (killed between publishing and removing them); a run another process holds stays; the lock files of runs
        without a journal (`_remove_unheld_lock`); the commit folders a compaction merged, COVERED_KEPT_S after it
        (`_remove_covered`). Only entries named as matreg names them go (TMP_NAME in tmp/, RUN_ID in staging/ and
        locks/): another program's files there stay, however old."""
        cutoff = time.time() - LEFTOVER_AGE_S
        self._remove_covered()
        for folder in self.tmp_dir.glob("*"):
            if TMP_NAME.fullmatch(folder.name):
                remove_if_untouched_since(folder, cutoff)
        journals = self._journal_rows()
        for run_dir in self.staging_dir.glob("*"):
            if RUN_ID.fullmatch(run_dir.name) and run_dir.name not in journals and not self.is_running(run_dir.name):
                remove_if_untouched_since(run_dir, cutoff)
        for run_id in self._published(list(journals)):
            self.drop_unless_running(run_id)
        for lock in self.locks_dir.glob("*.lock"):
            if RUN_ID.fullmatch(lock.stem) and lock.stem not in self._running:
                self._remove_unheld_lock(lock, cutoff)

    def _remove_unheld_lock(self, path: Path, cutoff: float) -> None:
        """Delete a run's lock file that no process holds, untouched since `cutoff`, of a run without a journal (one
        killed before staging a page: `release_run` deletes the others). It is deleted while this process holds its
        flock, which a live writer's refuses, and while its name still names the file locked (not one made after
        another process deleted it). Only the process starting a run claims it without a journal, at once, its run
        id new: an hour on, none opens the file to lock it next."""
        with contextlib.suppress(OSError):  # held (BlockingIOError), or deleted meanwhile: what cannot go stays
            descriptor = os.open(path, os.O_RDONLY)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = os.fstat(descriptor)
                if locked.st_mtime < cutoff and os.path.samestat(os.stat(path), locked):
                    if not (self.staging_dir / path.stem).exists():
                        path.unlink()
            finally:
                os.close(descriptor)  # (releases the flock)

    @_writes_to_store
    def drop_unless_running(self, run_id: str) -> bool:
        """Discard a staged run, claimed first: a run another process writes (or claims meanwhile) stays. Whether
        it was discarded."""
        try:
            self.claim_run(run_id)
        except StoreError:
            return False
        self.discard_run(run_id)
        self.release_run(run_id)
        return True

    def discard_run(self, run_id: str) -> None:
        """Delete the staged pages of a run that will not be resumed: its journal leaves staging/ in one rename (into
        tmp/) before its files are deleted, so a process killed meanwhile leaves no journal in part that a resume
        would take for the run (tmp/ leftovers go as `remove_leftovers` says)."""
        journal = self._journals.pop(run_id, None)
        if journal is not None:
            journal.close()
        trash = self._tmp_path()
        try:
            os.rename(self.staging_dir / run_id, trash)
        except FileNotFoundError:
            return  # (dropped already)
        shutil.rmtree(trash, ignore_errors=True)

    def claim_run(self, run_id: str) -> None:
        """Mark a run as written by this process until `release_run` (a file lock the OS drops with the process);
        StoreError if another process writes it; PathError, before anything is written, when the name of its lock file
        is longer than the file system allows (`_refuse_long_run_id`)."""
        self._refuse_long_run_id(run_id)
        lock = self._try_run_lock(run_id)
        if lock is None:
            raise StoreError(f"run {run_id} is being written by another process")
        self._running[run_id] = lock

    def is_running(self, run_id: str) -> bool:
        """True while another process writes this run (a killed process's run is not running). A look writes nothing
        (a dry run, `matreg status`, a read-only store): a run without a lock file has no writer, and one with a lock
        file is running while its flock is held, which a shared flock of an instant, on the file opened read-only,
        tells. StoreError when the lock file cannot be read or locked (this process cannot tell)."""
        if run_id in self._running:
            return False
        path = self._run_lock(run_id)
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"cannot tell whether run {run_id} is running: {exc.strerror}: {path}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError as exc:
            raise StoreError(f"cannot tell whether run {run_id} is running: {exc.strerror}: {path}") from None
        finally:
            os.close(descriptor)  # (releases the shared flock)
        return False

    def release_run(self, run_id: str) -> None:
        """End this process's claim on a run (nothing if it has none). Its journal goes first if it holds no
        committed page (`_drop_uncommitted`). Its lock file is deleted, while still held, only once the run has no
        journal (published or dropped): another process may have it open, to lock it next, and would then hold a lock
        of the run while a third locked a new file of the same name."""
        lock = self._running.pop(run_id, None)
        if lock is None:
            return
        self._drop_uncommitted(run_id)
        if not (self.staging_dir / run_id).exists():
            self._run_lock(run_id).unlink(missing_ok=True)
        lock.release()

    def _drop_uncommitted(self, run_id: str) -> None:
        """Drop the journal of a run this process claimed (still) when it holds no committed page: its first page
        refused by the file system (a full disk, a file-size limit), or stopped while it was written. No run resumes
        it, and neither `staged_runs` (status, drop) nor a writer before LEFTOVER_AGE_S (`remove_leftovers`) would
        see it. What the file system refuses to remove stays, for `remove_leftovers`: the run's own error stands."""
        journal = self.staging_dir / run_id
        with contextlib.suppress(OSError):
            if journal.exists() and RunJournal(journal).last_commit() is None:
                self.discard_run(run_id)

    def _refuse_long_run_id(self, run_id: str) -> None:
        """PathError when the name of a run's lock file (`_run_lock`; its journal's is shorter) is longer than the
        file system allows, naming the source or dataset name in the run id (RUN_ID) and how long it may be."""
        lock, limit = self._run_lock(run_id).name, name_max(self.locks_dir)
        if len(os.fsencode(lock)) > limit:
            named = RUN_ID.fullmatch(run_id)
            source = named["source"] if named else run_id
            added = len(os.fsencode(lock)) - len(os.fsencode(source))
            raise PathError(
                f"cannot start a run of {source!r}: the name is {len(os.fsencode(source))} bytes long, and a run's "
                f"lock file (locks/<run id>.lock) adds {added} bytes to it, past the {limit} bytes a name may have in "
                f"{self.root}: give a source or dataset name of at most {limit - added} bytes"
            )

    def _try_run_lock(self, run_id: str) -> filelock.FileLock | None:
        """The run's lock, taken; None when another process holds it. WriteRefused naming the store where its lock
        file cannot be made (a read-only store)."""
        path = self._run_lock(run_id)
        lock = filelock.FileLock(str(path), timeout=CLAIM_WAIT_S)
        with refused_writes_of(self.root):
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                lock.acquire()
            except filelock.Timeout:
                return None
        return lock

    def _run_lock(self, run_id: str) -> Path:
        return self.locks_dir / f"{run_id}.lock"

    def staged_runs(self) -> dict[str, dict]:
        """Unfinished runs by run id, each with its last staged fetch_runs row (counts, cursor, parameters). Writes
        nothing: the journal of a run published already (killed between publishing and removing its journal) is left
        out, for the next writer to remove (`remove_leftovers`)."""
        runs = self._journal_rows()
        published = set(self._published(list(runs)))
        return {run_id: row for run_id, row in runs.items() if run_id not in published}

    def _journal_rows(self) -> dict[str, dict]:
        """The journals with a staged page, by run id, each with its last staged fetch_runs row."""
        runs = {}
        for run_dir in sorted(self.staging_dir.glob("*")):
            row = RunJournal(run_dir).last_commit()
            if row is not None:
                runs[run_dir.name] = row
        return runs

    def staged_reasons(self, run_id: str) -> Counter:
        """Why the committed pages of an unfinished run sent rows to quarantine, each reason with how often."""
        journal = RunJournal(self.staging_dir / run_id)
        reasons: Counter = Counter()
        for table in journal.tables(QUARANTINE, journal.committed()[1]):
            reasons.update(chain.from_iterable(table["reasons"].to_pylist()))
        return reasons

    def staged_record_ids(self, run_id: str) -> set[str]:
        """The records the committed pages of an unfinished run read: admitted or quarantined (one its mapping could
        not read, by its item: record ids are `source:source id`)."""
        journal = RunJournal(self.staging_dir / run_id)
        sizes = journal.committed()[1]
        ids: set[str] = set()
        for table in journal.tables("materials", sizes):
            ids.update(table["record_id"].to_pylist())
        for table in journal.tables(QUARANTINE, sizes):
            rows = zip(*(table[column].to_pylist() for column in ("record_id", "source", "item")), strict=True)
            ids.update(record_id or f"{source}:{item}" for record_id, source, item in rows)
        return ids

    def staged_database_versions(self, run_id: str) -> list[str]:
        """The database versions of the source that the materials rows of an unfinished run's committed pages carry,
        each once, in the order they were first read."""
        journal = RunJournal(self.staging_dir / run_id)
        versions: dict[str, None] = {}
        for table in journal.tables("materials", journal.committed()[1]):
            versions.update(dict.fromkeys(pyarrow.compute.unique(table["database_version"]).drop_null().to_pylist()))
        return list(versions)

    def _published(self, run_ids: list[str]) -> list[str]:
        """Those of `run_ids` whose run is in a published commit, complete."""
        if not run_ids or not self.exists():
            return []
        published = self.read(
            "SELECT run_id FROM fetch_runs WHERE status = 'complete' AND run_id IN (SELECT unnest(?))", [run_ids]
        )
        return published["run_id"].tolist()

    def staged_pages(self) -> int:
        """How many pages the unfinished runs have staged, all together."""
        return sum(RunJournal(run_dir).pages() for run_dir in self.staging_dir.glob("*"))

    def _compact(self, pages: Iterator[pyarrow.Table], name: str, path: Path, check: PublishCheck) -> None:
        """Write one table's pages into one Parquet file (none without rows): the rows the check admits."""
        writer = None
        try:
            for batch in _batches(pages, PUBLISH_BATCH_BYTES):
                admitted = check.admit(name, batch)
                if admitted.num_rows:
                    writer = writer or store_file_writer(path, arrow_schema(name))
                    writer.write_table(admitted)
        finally:
            if writer is not None:
                writer.close()

    def _last_reads(self, journal: RunJournal, sizes: dict[str, int], build: Path, folder: Path) -> LastReads | None:
        """Of the records the run read more than once, the files of `LastReads`, written into `folder`, from the
        journal (the run's files do not say which read a row came from); None when the run's materials file holds
        each record once (the common case: one count)."""
        owner = "materials"
        path, link = build / f"{owner}.parquet", table_spec(owner).primary_key[0]
        with self._scan() as con:
            if not path.exists() or not read_twice(con, path, link):
                return None
            records = folder / f"{owner}.parquet"
            con.register("reads", staged_rows(journal, owner, sizes, [link]))
            con.execute(
                f"COPY (SELECT {link}, max({READ}) AS last_read FROM reads GROUP BY {link} "
                f"HAVING count(*) > 1) TO {sql_text(records)} (FORMAT parquet)"
            )
            rows = {}
            for name in children_of(owner):
                rows[name] = folder / f"{name}.parquet"
                con.register(f"reads_{name}", staged_rows(journal, name, sizes))
                con.execute(
                    f"COPY (SELECT n.* EXCLUDE ({READ}) FROM reads_{name} AS n "
                    f"JOIN read_parquet({sql_text(records)}) AS r ON n.{link} = r.{link} AND n.{READ} = r.last_read) "
                    f"TO {sql_text(rows[name])} (FORMAT parquet)"
                )
        return LastReads(records, rows)

    def _keep_stored(self, path: Path, columns: tuple[str, ...]) -> None:
        """Rewrite the run's materials file with the stored record's values in `columns` (a run that did not read
        them, e.g. AFLOW's structures without --structures), where the store holds the record as the same material:
        the run read its formula, sites and space group as stored (`SAME_MATERIAL`). Otherwise the run's row stays as
        read, and its notes say which stored values were not kept and what changed; a logged warning counts such
        records. Rows keep their order. The file is rewritten PUBLISH_BATCH_ROWS rows at a time, each with the stored
        values of its records: memory stays flat however large the run."""
        if not columns or not path.exists():
            return
        schema = arrow_schema("materials")
        not_kept = 0
        with self._scan() as con:
            if not self._stores_rows(con, "materials"):
                return  # nothing stored to keep (a first fetch)

            def write(temp: Path) -> None:
                nonlocal not_kept
                with contextlib.closing(pq.ParquetFile(path)) as source, store_file_writer(temp, schema) as writer:
                    start = 0
                    for batch in source.iter_batches(PUBLISH_BATCH_ROWS):
                        rows = pyarrow.Table.from_batches([batch]).cast(schema)
                        stored = stored_values(con, path, columns, start, start + rows.num_rows)
                        not_kept += pyarrow.compute.sum(stored[NOT_KEPT]).as_py() or 0
                        writer.write_table(with_values(rows, stored.drop_columns([NOT_KEPT]), start))
                        start += rows.num_rows

            atomic_write(path, write)
        if not_kept:
            logger.warning(
                f"stored {', '.join(kept_columns(columns))} of {not_kept} record(s) not kept: not read by this run, "
                f"and the record changed since (its {_or(list(SAME_MATERIAL.values()))}); their notes say what changed"
            )

    def _keep_stored_values(self, build: Path, keys: list[ValueKey], whole_scope: WholeScope | None) -> None:
        """Add to the run's values (of `build`) the stored values of these keys (`check.kept_values`: of parts of
        records the run rejected, a row of a lab file's measurement series or one cell of a row) that the record's
        last write in the scope the run read whole (`whole_scope`) gave, stamped with this run, so that the record's
        write keeps them (`stored_values_of_scope_sql`: not where the run gives a value of the key itself, nor where
        its record is now of another formula unit; a value a steward readmitted stays as it is)."""
        path = build / "properties.parquet"
        if not keys or whole_scope is None or not path.exists():
            return
        records = sorted({key.record_id for key in keys})
        parameters = {"records": records, "source": whole_scope.source, "scope": whole_scope.scope}
        parameters |= {"properties": str(path), "materials": str(build / "materials.parquet")}
        with self._scan() as con:
            self._define_views(con, stored_values_of_scope_sql())
            stored = con.sql(stored_values_of_scope_sql(), params=parameters).to_arrow_table()
        kept = of_keys(stored, keys)
        if kept.num_rows:
            rewrite_with(path, kept, arrow_schema("properties"))

    def _add_withdrawals(
        self, path: Path, whole_scope: WholeScope | None, run_id: str, withheld: dict[str, list]
    ) -> list[str]:
        """Add to the run's materials file a write of each record of the scope the run read whole (`whole_scope`: a lab
        file and where it lies) that the run did not admit (a row deleted from the file; a row it rejected in place is
        withheld by the connector and keeps its last valid read), where the record's last write in that scope came from
        the same place (its path, or a path an import read it at in a project folder moved or copied whole since, the
        store in it: `WholeScope.places`), or from the one the steward says the file moved from (`moved_from`: a row
        deleted as it moved), and gave values: the record's current row, in that scope, stamped with this run and
        written whole. With no values of this scope, the views then show none of the values that write made (nor do
        exports); the record's other scopes, its description and values a steward readmitted alone stay. A record last
        written in the scope by a steward's readmit, or one the publishing check withheld from this run, stays as it is.
        A file of the same name elsewhere withdraws nothing else, until its import there wrote the records again
        (`_moved_here`): matreg cannot tell a file moved there from another file of that name whose folder is not at
        hand (an unmounted drive, another steward's machine). Returns the ids of the records withdrawn."""
        if whole_scope is None:
            return []
        run_keys = "SELECT NULL WHERE false"
        if path.exists():
            run_keys = f"SELECT record_id FROM read_parquet({sql_text(path)})"
        withdrawals = self._withdrawals(whole_scope, run_keys, {"run_id": run_id}, withheld.get("materials", []))
        if withdrawals.num_rows:
            rewrite_with(path, withdrawals, arrow_schema("materials"))
        return withdrawals["record_id"].to_pylist()

    def withdrawals_of(self, whole_scope: WholeScope, admitted: list[str], withheld: list[str]) -> list[str]:
        """The records a run that read `whole_scope` whole and admitted these records would withdraw
        (`_add_withdrawals`): what a dry run reports. None in a store not created yet."""
        if not self.exists():
            return []
        keys = "SELECT unnest($admitted::VARCHAR[])"
        parameters = {"run_id": "dry-run", "admitted": admitted}
        return self._withdrawals(whole_scope, keys, parameters, withheld)["record_id"].to_pylist()

    def _withdrawals(
        self, whole_scope: WholeScope, run_keys: str, parameters: dict[str, Any], withheld: list[str]
    ) -> pyarrow.Table:
        """The withdrawal rows of the records of `whole_scope` not among `run_keys` (SQL: the run's record ids)."""
        key = ", ".join(table_spec("materials").primary_key)
        stamp = {"run_id": "$run_id", "fetched_at": "$now", "written_whole": "true", "scope": "$scope"}
        selected = ", ".join(
            f"{stamp.get(column, 'c.' + column)} AS {column}" for column in arrow_schema("materials").names
        )
        writes = stored_sql("materials")
        current = f"SELECT * FROM {writes} QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {COMMIT} DESC) = 1"
        last, read_here = last_writes_in_scope_sql(), runs_at_sql()
        gave_values = (
            f"EXISTS (SELECT 1 FROM {stored_sql('properties')} AS p "
            "WHERE p.record_id = last.record_id AND p.run_id = last.run_id)"
        )
        sql = (
            f"WITH last AS ({last}), c AS ({current}) SELECT {selected} FROM last JOIN c USING ({key}) "
            f"WHERE last.run_id IN ({read_here}) AND last.record_id NOT IN ({run_keys}) AND {gave_values} "
            "AND last.record_id NOT IN (SELECT unnest($withheld::VARCHAR[]))"
        )
        places = [*whole_scope.places, *whole_scope.moved_from]
        scope = {"source": whole_scope.source, "scope": whole_scope.scope, "places": places}
        parameters = parameters | scope | {"withheld": withheld}
        parameters["now"] = datetime.now(UTC)
        with self._scan() as con:
            return con.sql(sql, params=parameters).to_arrow_table().cast(arrow_schema("materials"))

    def _moved_here(self, build: Path, whole_scope: WholeScope | None) -> list[str]:
        """Records of a run that read its scope whole (`whole_scope`: a lab file) whose last write in that scope came
        from a run that read it elsewhere (the file moved, or another file of its name), or at another path or path
        from the folder holding the store (the project folder, or the store, moved since): written again even when
        unchanged, so that a row deleted from the file here later is withdrawn (`_add_withdrawals` withdraws records
        last written from the same place, `WholeScope.places`, or from the one an import says the file moved from)."""
        path = build / "materials.parquet"
        if whole_scope is None or not path.exists():
            return []
        sql = (
            f"WITH last AS ({last_writes_in_scope_sql()}) SELECT record_id FROM last "
            "WHERE record_id IN (SELECT record_id FROM read_parquet($materials)) "
            f"AND run_id IN ({runs_elsewhere_sql()})"
        )
        scope = {"source": whole_scope.source, "scope": whole_scope.scope}
        here = {"endpoint": whole_scope.endpoint, "relative_path": whole_scope.relative_path}
        parameters = {"materials": str(path)} | scope | here
        with self._scan() as con:
            return [row[0] for row in con.execute(sql, parameters).fetchall()]

    def _superseded_of(self, build: Path, whole_scope: WholeScope | None) -> dict[str, list]:
        """Keys, by table, of the run's rows that the store holds from a later read (`_superseded`); none for a run
        that read its scope whole (a lab file: read at once and never resumed, its import published later is the later
        say of its records, as one after the other; its checks against the store are made as it publishes)."""
        if whole_scope is not None:
            return {}
        return {name: self._superseded(name, build / f"{name}.parquet") for name in publishing_order()}

    def _superseded(self, name: str, path: Path) -> list:
        """Keys of the run's rows of a table with `read_at` that the store holds from a later read of the source (a
        run resumed after a newer run fetched the same records); none for other tables."""
        spec = table_spec(name)
        if spec.read_at is None or not path.exists():
            return []
        with self._scan() as con:
            read_later = con.execute(  # a cheap first look: any stored row read after the run's first read?
                f"SELECT (SELECT max({spec.read_at}) FROM {stored_sql(name)}) "
                f"> (SELECT min({spec.read_at}) FROM read_parquet($path))",
                {"path": str(path)},
            )
            if not read_later.fetchall()[0][0]:  # (NULL when nothing is stored)
                return []
            found = con.execute(
                f"WITH {run_rows_sql(spec)}, s AS ({stored_rows_of_run_sql(name, spec)}) "
                f"SELECT n.{spec.primary_key[0]} FROM n JOIN s ON {equal(spec.primary_key)} "
                f"WHERE n.newest = 1 AND s.{spec.read_at} > n.{spec.read_at}",
                {"path": str(path)},
            )
            return [row[0] for row in found.fetchall()]

    def _changed_records(self, owner: str, build: Path, last_reads: LastReads | None) -> list | None:
        """Keys of the run's rows of table `owner` (materials) whose record changed: a row of it, or of a table that
        belongs to it, is new or differs from the stored one of the run's scope or of the whole record (stamp columns
        aside: another file's later value of the key does not make an unchanged file's re-import a change), or a
        stored row of the record is not in the run (its source no longer gives that value); of a record the run read
        more than once, as its last read gives it (`last_reads`). None when the store holds no row of `owner`."""
        spec = table_spec(owner)
        link = spec.primary_key[0]
        path = build / f"{owner}.parquet"
        with self._scan() as con:
            if not path.exists() or not self._stores_rows(con, owner):
                return None
            files = {name: build / f"{name}.parquet" for name in [owner, *children_of(owner)]}
            files = {name: file for name, file in files.items() if file.exists()}
            parameters: dict[str, Any] = {name: str(file) for name, file in files.items()}
            if last_reads is not None:
                parameters |= last_reads.parameters(list(files))
            found: set = set()
            for bucket in buckets(list(files.values()), link):
                sql = changed_records_sql(owner, link, set(files), bucket, last_reads)
                found.update(row[0] for row in con.execute(sql, parameters).fetchall())
            return sorted(found)

    def _removed_values(self, build: Path) -> Removed:
        """The stored values the write of a run's records removes, its files as they are published (`build`, their
        unwritten rows dropped): of each record it writes, the values the views show now, in the part of the record
        it read, that none of its values gives again with their key (`removed_values_sql`; readmitted values aside):
        none where it writes no record, or the store holds no value."""
        paths = {name: build / f"{name}.parquet" for name in ("materials", "properties")}
        paths = {name: path for name, path in paths.items() if path.exists()}
        if "materials" not in paths:
            return Removed()
        link, parameters = table_spec("materials").primary_key[0], {name: str(path) for name, path in paths.items()}
        with self._scan() as con:
            if not self._stores_rows(con, "properties"):
                return Removed()
            rows = [
                con.execute(removed_values_sql(set(paths), bucket), parameters).fetchall()
                for bucket in buckets(list(paths.values()), link)
            ]
        return Removed.of_rows(chain.from_iterable(rows))

    def _rereads_resolving(self, build: Path, quarantined: list[str]) -> list[str]:
        """Records of the run with a quarantine row of an earlier fetch of a selection, open or readmitted, that this
        read would resolve (`still_quarantined_sql`; not one the run `quarantined` again): written even when
        unchanged, as only a write says that the source no longer gives what it rejected (a record rejected whole
        and then given as the store holds it would otherwise stay open; a value a steward readmitted and then given
        otherwise, or not at all, would stay readmitted)."""
        path = build / "materials.parquet"
        with self._scan() as con:
            if not path.exists() or not self._stores_rows(con, QUARANTINE):
                return []
            in_run = {"materials": str(path)}
            candidates = con.execute(
                f"SELECT DISTINCT record_id FROM {stored_sql(QUARANTINE)} "
                "WHERE record_id IN (SELECT record_id FROM read_parquet($materials))",
                in_run,
            ).fetchall()
            if not candidates:
                return []
            self._define_views(con, rereads_resolving_sql())
            parameters = in_run | {"candidates": [row[0] for row in candidates], "quarantined": quarantined}
            return [row[0] for row in con.execute(rereads_resolving_sql(), parameters).fetchall()]

    def _drop_rows(self, name: str, build: Path, unwritten: Unwritten) -> Dropped:
        """Rewrite a run's Parquet file of one table without the rows it need not write.

        Not written: a key's earlier rows of the run (the views would never show them), and the rows of a record's
        reads before its last (`_last_reads`: the views would show them beside the last read's); rows of withheld keys
        (`check.withheld_keys`) and of superseded ones (`_superseded`), with the rows that belong to them
        (`belongs_to`); unchanged rows: of a record (a row others belong to, and those rows) when nothing of it
        changed (`_changed_records`; a changed record is written whole, so its `read_at` says when it was last read
        and the views show only its rows of that read), of another table when the stored row with the key has the
        same content (stamp columns aside). One DuckDB query per table finds them; the file is then rewritten a row
        group at a time.
        """
        path = build / f"{name}.parquet"
        if not path.exists():
            return Dropped()
        found = self._rows_to_drop(name, path, unwritten)
        positions, why = found["file_row_number"], found["why"]
        if len(positions):
            rewrite_without(path, numpy.unique(positions), arrow_schema(name))

        def rows(kind: str) -> set[int]:
            return set(positions[why == kind].tolist())

        withheld = rows("withheld")
        earlier = rows("earlier") - withheld
        unchanged = rows("unchanged") - earlier - withheld  # (identical to a later read too)
        superseded = rows("superseded") - withheld - earlier - unchanged
        return Dropped(
            unchanged=len(unchanged), withheld=len(withheld), superseded=len(superseded), earlier=len(earlier)
        )

    def _rows_to_drop(self, name: str, path: Path, unwritten: Unwritten) -> dict[str, numpy.ndarray]:
        """Positions of the rows a run need not write and why ('earlier', 'withheld', 'superseded', 'unchanged')."""
        spec = table_spec(name)
        changed = unwritten.changed
        owner = spec.belongs_to or (name if name in changed else None)
        link = table_spec(owner).primary_key[0] if owner else spec.primary_key[0]
        parameters: dict[str, Any] = {"path": str(path)}
        if unwritten.last_reads is not None:
            parameters |= unwritten.last_reads.parameters([name])
        queries = ["SELECT file_row_number, 'earlier' AS why FROM n WHERE newest > 1"]
        of_owner = spec.belongs_to or ""
        for why, by_table in (("withheld", unwritten.withheld), ("superseded", unwritten.superseded)):
            keys = [*by_table.get(name, []), *by_table.get(of_owner, [])]
            if keys:
                parameters[why] = keys
                queries.append(f"SELECT file_row_number, '{why}' FROM n WHERE {link} IN (SELECT unnest(${why}))")
        with self._scan() as con:
            if owner and changed[owner] is not None:  # a record's rows: unchanged when nothing of it changed
                parameters["changed"] = changed[owner]
                queries.append(
                    f"SELECT file_row_number, 'unchanged' FROM n WHERE newest = 1 "
                    f"AND {link} NOT IN (SELECT unnest($changed::VARCHAR[]))"
                )
            elif not owner and self._stores_rows(con, name):  # else nothing can be unchanged
                same = equal([column for column in spec.content_columns if column not in spec.primary_key]) or "true"
                queries.append(
                    f"SELECT n.file_row_number, 'unchanged' FROM n JOIN s ON {equal(spec.primary_key)} "
                    f"WHERE n.newest = 1 AND {same}"
                )
            stored, union = stored_rows_of_run_sql(name, spec), " UNION ALL ".join(queries)
            earlier_read = earlier_read_sql(name, unwritten.last_reads)
            found = []
            for bucket in buckets([path], link):
                ranked = keys_repeat(con, path, spec.primary_key, bucket)
                rows = run_rows_sql(spec, where=bucket, earlier_read=earlier_read, ranked=ranked)
                found.append(con.execute(f"WITH {rows}, s AS ({stored}) {union}", parameters).fetchnumpy())
        return {column: numpy.concatenate([part[column] for part in found]) for column in ("file_row_number", "why")}

    @staticmethod
    def _stores_rows(con: duckdb.DuckDBPyConnection, name: str) -> bool:
        """True when some commit holds rows of the table."""
        stored = con.execute(f"SELECT count(*) FROM {stored_sql(name)}")
        return bool(stored.fetchall()[0][0])

    def _publish(self, tables: dict[str, pyarrow.Table], wait_s: float | None = None) -> str:
        with self.locked(wait_s=wait_s):
            self._remove_covered()  # (those merged by a compaction COVERED_KEPT_S ago)
            return self._write_dir(tables, self.data_dir / f"c{self._next_sequence():08d}").name

    def _write_dir(self, tables: dict[str, pyarrow.Table], final: Path) -> Path:
        """Write every table as Parquet into a temp directory, then rename the directory to `final`."""
        staging = self._new_tmp_dir()
        try:
            for name, table in tables.items():
                write_store_file(table, staging / f"{name}.parquet")
            os.rename(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return final

    def _new_tmp_dir(self) -> Path:
        path = self._tmp_path()
        path.mkdir()
        return path

    def _tmp_path(self) -> Path:
        """A new name in tmp/ (tmp/ and its parents appear on first use)."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return self.tmp_dir / uuid.uuid4().hex

    def _arrow_tables(self, tables: dict[str, pyarrow.Table | pd.DataFrame | list[dict]]) -> dict[str, pyarrow.Table]:
        return {name: arrow_table(name, rows) for name, rows in tables.items() if len(rows)}

    def _next_sequence(self) -> int:
        return self._newest_commit() + 1

    def _newest_commit(self) -> int:
        """The number of the newest commit in data/ (-1 when there is none)."""
        return max(
            (number for path in self.data_dir.glob("c*") if (number := commit_number(path)) is not None), default=-1
        )

    @staticmethod
    def _empty(name: str) -> pyarrow.Table:
        """No rows of a table, with its declared columns and the commit number (which only a compacted folder's rows
        hold: the views read it in every store)."""
        return arrow_schema(name).append(pyarrow.field(COMMIT, pyarrow.int64())).empty_table()

    @contextlib.contextmanager
    def locked(self, name: str = ".lock", wait_s: float | None = None) -> Iterator[None]:
        """Hold one of the store's lock files, waiting up to `wait_s` seconds (by default LOCK_WAIT_S, a minute) for
        another process to let it go (`.lock`: commits; others: curation entries, releases); StoreBusy if it does
        not, WriteRefused naming the store where the file cannot be made (a read-only store)."""
        path = self.root / name
        lock = filelock.FileLock(str(path), timeout=LOCK_WAIT_S if wait_s is None else wait_s)
        with refused_writes_of(self.root):
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                lock.acquire()
            except filelock.Timeout:
                raise StoreBusy(path) from None
        try:
            yield
        finally:
            lock.release()

    def _update_views(self, digest: str) -> None:
        """(Re)create the views in the DuckDB file and stamp the store with the definitions' `digest`: only when the
        definitions changed (`ensure`). Opening the file for writing needs every other process that has it open
        (`matreg sql`, a DuckDB shell, read-only or not) gone: until then the views are left as they are, for a later
        write to update, and a logged warning says so once. matreg reads the Parquet files itself (`read`), and the
        views read them by pattern, so a new commit needs no change to them."""
        try:
            self._create_views()
        except duckdb.IOException as exc:
            if not self._views_behind:
                logger.warning(
                    f"the views in {self.db_path} are not updated to this matreg's tables: another process "
                    f"has the file open ({_first_line(exc)}); they are updated when matreg next writes to "
                    "the store with the file closed"
                )
                self._views_behind = True
            return
        atomic_write(self.root / VIEWS_STAMP, lambda temp: temp.write_text(digest, encoding="utf-8"))

    def _create_views(self) -> None:
        """Write the views into a new DuckDB file, in the storage format DB_STORAGE_VERSION (which older DuckDBs read
        too: the file holds nothing else), in place of the old one. The old file is held open for writing meanwhile:
        duckdb.IOException while another process has it open; one this DuckDB cannot open otherwise (written by a
        newer DuckDB, damaged) is replaced all the same."""
        held = None
        try:
            held = duckdb.connect(str(self.db_path)) if self.db_path.exists() else None
        except duckdb.Error as exc:
            if _is_lock_conflict(exc):
                raise
        try:
            atomic_write(self.db_path, self._write_views)
        finally:
            if held is not None:
                held.close()

    def _write_views(self, path: Path) -> None:
        """Write a DuckDB file of the views at `path`."""
        con = duckdb.connect(str(path), config={"storage_compatibility_version": DB_STORAGE_VERSION})
        try:
            con.execute("SET file_search_path = ?", [str(self.root)])
            for name, sql in views_in_order().items():
                con.execute(f"CREATE VIEW {name} AS {sql}")
        finally:
            con.close()

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the DuckDB file (the views other clients use), resolving against this store's
        directory. Of a store whose views another matreg defined, the connection has this matreg's views of its own
        (temporary views, over the files as `_search_path` finds them): nothing in the store is written. Its views
        read the store as of its newest commit when connected (`_pin`; a later one: SET VARIABLE SNAPSHOT again), and
        its settings are locked: nothing a query runs can write into the store. StoreFileHeld while another process
        holds the file open for writing."""
        self._require_store()
        try:
            con = duckdb.connect(str(self.db_path), read_only=True)
        except duckdb.Error as exc:  # (held by another process: a failure for now)
            error = StoreFileHeld if _is_lock_conflict(exc) else StoreError
            raise error(f"cannot open {self.db_path}: {_why_not_opened(exc)}") from None
        con.execute("SET file_search_path = ?", [self._search_path()])
        if self._stamp() != _definitions_digest():
            for name, sql in views_in_order().items():
                con.execute(f"CREATE TEMPORARY VIEW {name} AS {sql}")
        self._pin(con)
        con.execute("SET temp_directory = ?", [str(_spill_dir())])
        _session_settings(con)
        con.execute("SET lock_configuration = true")  # (a query cannot turn on what writes files: enable_logging)
        return con

    def _pin(self, con: duckdb.DuckDBPyConnection) -> None:
        """Make the views of connection `con` read the store as of its newest commit now (the DuckDB variable
        SNAPSHOT): a commit appears in data/ whole, in one rename, so every listing of the files DuckDB makes later
        holds each commit up to that one, whole, and what it lists of later commits is left out. Without it one
        query could read a run's commit in one table's files and not yet in another's (DuckDB lists each table's
        files anew): the run's new write of a record without its new values."""
        newest = self._newest_commit() if self._snapshot is None else self._snapshot
        con.execute(f"SET VARIABLE {SNAPSHOT} = {newest}")
        con.execute(f"SET VARIABLE {COMPACTED_THROUGH} = {compacted_through(self.data_dir)}")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read in the block reads the store as of its newest commit when the block starts, so an operation of
        several reads (an export, a release) sees one state of the store while other processes publish (a block
        inside one keeps the outer one's)."""
        outermost = self._snapshot is None
        if outermost:
            self._snapshot = self._newest_commit()
        try:
            yield
        finally:
            if outermost:
                self._snapshot = None

    def _require_store(self) -> None:
        """NoStore when there is no store, StoreError when nothing was published yet (saying which runs are staged:
        `_nothing_published`). A read writes nothing: a store written with other definitions is read as `_search_path`
        says, and brought up to date by the next write (`ensure`)."""
        if not self.exists():
            raise self._nothing_published()
        self._refuse_newer_format()

    def _format(self) -> int:
        """The store's format number (FORMAT_FILE; 1 without one: a store of a matreg older than formats)."""
        path = self.root / FORMAT_FILE
        text = path.read_text(encoding="utf-8").strip() if path.exists() else "1"
        if not text.isdigit():
            raise StoreError(f"{path} is damaged: it should hold the store's format number, not {clipped(text, 40)!r}")
        return int(text)

    def _refuse_newer_format(self) -> int:
        """The store's format number; StoreError when a newer matreg wrote the store in a format this one does not
        know: reading it could show wrong rows, and writing to it lose changes (as a matreg older than compaction does
        on a compacted store)."""
        found = self._format()
        if found > STORE_FORMAT:
            raise StoreError(
                f"the store at {self.root} has format {found}, written by a newer matreg; this matreg knows format "
                f"{STORE_FORMAT} at most: upgrade matreg to read or write it"
            )
        return found

    def _search_path(self) -> str:
        """Where DuckDB finds the files the views read: the store; for a store written with other definitions whose
        files lack tables or columns declared here, also a folder of this process with an empty file of each such
        table (of its declared schema), so that the views read them as the store's next write will have them, and
        a read (a read-only store's too) writes nothing."""
        if self._stamp() == _definitions_digest():
            return str(self.root)
        if self._read_path is None:
            self._read_path = self._with_declared_files(self._tables_behind(changed=True))
        return self._read_path

    def _with_declared_files(self, names: list[str]) -> str:
        """The store, and a folder of this process (removed with the Store) with an empty file of each of the tables
        `names`, as a file_search_path."""
        if not names:
            return str(self.root)
        folder = _searchable(Path(tempfile.mkdtemp(prefix="matreg-declared-")))
        weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        commit = folder / "data" / "c_declared"
        commit.mkdir(parents=True)
        for name in names:
            write_store_file(self._empty(name), commit / f"{name}.parquet")
        return f"{self.root},{folder}"

    def _nothing_published(self) -> StoreError:
        """Why there is no store to read: none at all (NoStore), or runs staged but none published (a first run
        interrupted)."""
        staged = self.staged_runs()
        if not staged:
            return NoStore(self.root)
        return StoreError(
            f"nothing is published in the matreg store at {self.root} yet: interrupted run(s) {', '.join(staged)} "
            "staged (`matreg status` says what continues each: for a fetch, the same command with --resume)"
        )

    def read(self, sql: str, params: list | dict | None = None) -> pd.DataFrame:
        """Run one of matreg's own SELECTs over the views: in the in-memory scanner (`_scan`, views of its own,
        `_define_views`), which reads the Parquet files and never the DuckDB file (that one is for `matreg sql` and
        other clients: a process holding it open, a DuckDB shell, stops no matreg command)."""
        self._require_store()
        with self._scan() as con:
            self._define_views(con, sql)
            return con.execute(sql, params or []).df()

    def read_batches(self, sql: str, *, rows: int) -> Iterator[pd.DataFrame]:
        """`read`, streamed: the result in frames of at most `rows` rows (none when it has no row), so that reading
        a table of any size holds one frame at a time; columns of the dtypes `pandas_dtype` gives their Arrow types
        (strings Arrow-backed, as `validation.arrow_frame` converts). A signal interrupts the query as it starts and as
        each frame is read (`_next_batch`), not while the caller pauses between frames (its own Ctrl-C is not the
        query's)."""
        self._require_store()
        with self._cursor() as con:
            with _running(con):
                self._set_up(con)
                self._define_views(con, sql)
                reader = con.sql(sql).to_arrow_reader(rows)
            while (batch := _next_batch(reader, con)) is not None:
                yield batch.to_pandas(types_mapper=pandas_dtype)

    def _define_views(self, con: duckdb.DuckDBPyConnection, sql: str) -> None:
        """Create in the scanner's database (`con`: a cursor of it) the views `sql` names, and those they read, each
        once per Store."""
        definitions = view_definitions()
        for name in views_named(sql, definitions):
            if name not in self._scanner_views:
                con.execute(f"CREATE OR REPLACE VIEW {name} AS {definitions[name]}")
                self._scanner_views.add(name)

    def still_quarantined(self, quarantine_ids: list[str]) -> list[str]:
        """Those of these quarantine rows that their source still gives as they were rejected, whatever a steward
        decided (`still_quarantined_sql`): the rows a readmit may apply to."""
        rows = "SELECT * FROM quarantine WHERE quarantine_id IN (SELECT unnest($ids::VARCHAR[]))"
        found = self.read(f"SELECT quarantine_id FROM ({still_quarantined_sql(rows)})", {"ids": quarantine_ids})
        return found["quarantine_id"].tolist()

    def decided_quarantine_rows(self, source: str, scope: str) -> pd.DataFrame:
        """Every stored version of the quarantine rows of a lab file (`source`, `scope`) that a review decision names,
        the rows with the oldest latest decision first, with its entry id (`decided_versions_sql`); none before the
        store exists."""
        if not self.exists():
            return pd.DataFrame(columns=["quarantine_id", "item", "raw", "parameters", "latest"])
        return self.read(decided_versions_sql(), {"source": source, "scope": scope})

    def records_written_by(self, run_ids: list[str]) -> pd.DataFrame:
        """The records these runs wrote values of (`run_id`, `record_id`), shown now or not (a steward's readmit
        writes under run id 'curation:<entry_id>')."""
        return self.read(
            f"SELECT DISTINCT run_id, record_id FROM {stored_sql('properties')} "
            "WHERE run_id IN (SELECT unnest($runs::VARCHAR[])) ORDER BY ALL",
            {"runs": run_ids},
        )

    def selected_records_written_by(self, run_ids: list[str], where: str, params: list) -> list[str]:
        """The records these runs wrote values of, shown now or not (a stale readmit's too), that meet `where`, an SQL
        condition on a value `p` and its record `m` with its `params` (`export.selection_sql`: a dataset's
        selection), sorted."""
        return self.read(
            f"SELECT DISTINCT p.record_id FROM {stored_sql('properties')} AS p JOIN {stored_sql('materials')} AS m "
            f"USING (record_id) WHERE p.run_id IN (SELECT unnest(?)) AND {where} ORDER BY 1",
            [run_ids, *params],
        )["record_id"].tolist()

    def shown_values(self, records: list[str]) -> pd.DataFrame:
        """The values the store shows of these records, as long rows with their record's source, formula (reduced,
        and as written) and phase, their values as received with their uncertainties and the run that wrote each: the
        views' rows of these records, read only from their rows."""
        only = "s.record_id IN (SELECT unnest($records::VARCHAR[]))"  # (each view's rows of whole records: see them)
        return self.read(
            "SELECT p.record_id, m.source, m.formula, m.formula_original, m.phase, p.property, p.method, "
            f"{aliased('p', value_conditions())}, p.original_value, p.original_unit, p.uncertainty, p.run_id "
            f"FROM ({current_rows_sql('properties', where=only)}) p "
            f"JOIN ({current_rows_sql('materials', where=only)}) m USING (record_id) ORDER BY ALL",
            {"records": records},
        )

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run one read-only SELECT on the DuckDB file, its rows as one frame (`matreg sql` reads them in batches:
        `query_batches`); any other statement is refused with ConfigError."""
        _refuse_writes(sql)
        with contextlib.closing(self.connect()) as con:
            try:
                with _running(con):
                    return con.execute(sql, params or []).df()
            except duckdb.Error as exc:
                raise StoreError(f"query failed: {_whole_message(exc)}") from None

    def query_batches(self, sql: str, rows: int) -> pyarrow.RecordBatchReader:
        """Run one read-only SELECT as `query` does, its rows read as DuckDB produces them, `rows` at a time
        (`matreg sql` prints them so, holding one batch): a reader whose next batch raises StoreError when the query
        fails while it runs. The connection closes once the reader is read out or dropped."""
        _refuse_writes(sql)
        con = self.connect()
        try:
            relation = con.sql(sql)  # (parsed and bound: a query DuckDB refuses fails here, having run nothing)
        except duckdb.Error as exc:
            raise _query_refused(con, sql, exc) from None
        try:
            with _running(con):
                reader = relation.to_arrow_reader(rows)
        except duckdb.Error as exc:  # (failed while it ran: an aggregate's or a sort's input read whole)
            con.close()
            raise StoreError(f"query failed: {_whole_message(exc)}") from None
        return pyarrow.RecordBatchReader.from_batches(reader.schema, _read_out(reader, con))

    @contextlib.contextmanager
    def _scan(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """An in-memory DuckDB connection reading this store's Parquet files (not the DuckDB file: no lock), with
        temporary views and registered tables of its own: a cursor of one database per Store (a new database costs
        about 12 ms of CPU, and publishing a run asks for several connections; a cursor costs nothing), whose views
        read the store as of its newest commit when the cursor is made (`_pin`), with times in UTC and no progress bar
        (`_session_settings`). The cursor is closed when the block ends; a query interrupted in it raises
        KeyboardInterrupt, one that could not spill to disk NoSpace (`_running`)."""
        with self._cursor() as con, _running(con):
            self._set_up(con)
            yield con

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A new cursor of the in-memory database `_scan` gives cursors of (made on first use), closed as its block
        ends, a query still running on it stopped (`_close`); not set up yet (`_set_up`)."""
        if self._scanner is None:
            self._scanner = duckdb.connect()
            self._scanner.execute("SET temp_directory = ?", [str(_spill_dir())])
        cursor = self._scanner.cursor()
        try:
            yield cursor
        finally:
            _close(cursor)

    def _set_up(self, con: duckdb.DuckDBPyConnection) -> None:
        """Make a cursor of the scanner read this store's files as of its newest commit, its times in UTC (`_scan`)."""
        con.execute("SET file_search_path = ?", [self._search_path()])
        _session_settings(con)
        self._pin(con)

    def table(self, name: str) -> pd.DataFrame:
        """The current (deduplicated) rows of one canonical table."""
        if name not in load_tables():
            raise StoreError(f"no table '{name}'")
        return self.read(f"SELECT * FROM {name} ORDER BY {', '.join(load_tables()[name].primary_key)}")

    def latest_write_seen_by(self, record_id: str, scope: str | None) -> pd.DataFrame:
        """The materials row of the record's latest write that a read of `scope` compares its rows with (one of its
        own scope or of the whole record: `compared_sql`): the record as that read finds it now."""
        return self.read(
            f"SELECT * EXCLUDE ({COMMIT}) FROM {stored_sql('materials')} m WHERE record_id = $record "
            f"AND {compared_sql('m.scope', '$scope')} ORDER BY {COMMIT} DESC LIMIT 1",
            {"record": record_id, "scope": scope or ""},
        )

    def value_counts(self) -> pd.DataFrame:
        """How many values the store shows, by source, provenance and property (`n_values`)."""
        return self.read(
            "SELECT source, provenance, property, count(*) AS n_values FROM properties GROUP BY ALL ORDER BY ALL"
        )

    def quarantine_counts(self) -> tuple[int, int]:
        """How many quarantine rows there are, and how many of them are open (`open_quarantine`)."""
        counts = self.read("SELECT (SELECT count(*) FROM quarantine), (SELECT count(*) FROM open_quarantine)")
        total, still_open = counts.iloc[0]
        return int(total), int(still_open)

    def latest_run_of_each_source(self) -> pd.DataFrame:
        """Of each source, the run that ended last (published or failed; a run ends when its last page is read, a failed
        one when it fails: `fetch_runs.finished_at`), the one that ended last first: source, id, status, when it ended,
        what it read (`fetch_runs`' counts), when the source was last published (`last_published`: when its last
        published run ended, or was published where that was later, see `published_later`), to the second, the error a
        failed run ended with, the stored values a published run removed (`values_removed`), its attempts that failed
        before its row's (`run_failures`, a failed run's own failure aside): how many (`failed_before`), when the last
        failed (`last_failed_at`) and with what error (`last_failure`), and of a run published after it failed once its
        last page was read (by --resume, its publishing refused), when it was published (`published_later`: its
        `published_at`, to the second; none in runs of stores older than that column)."""
        second = "'%Y-%m-%d %H:%M:%S'"
        failed_after_read = (
            "EXISTS (SELECT 1 FROM run_failures f WHERE f.run_id = r.run_id AND f.failed_at >= r.finished_at)"
        )
        runs = (
            f"SELECT *, CASE WHEN status = 'complete' AND {failed_after_read} THEN published_at END AS published_later "
            "FROM fetch_runs r"
        )
        earlier = (
            f"SELECT f.run_id, count(*) AS failed_before, strftime(max(f.failed_at), {second}) AS last_failed_at, "
            "arg_max(f.error, f.failed_at) AS last_failure FROM run_failures f JOIN latest l ON f.run_id = l.run_id "
            "AND NOT (l.status = 'failed' AND f.failed_at = l.finished_at) GROUP BY f.run_id"  # (but the row's own)
        )
        return self.read(
            f"WITH runs AS ({runs}), latest AS (SELECT * FROM runs QUALIFY row_number() OVER (PARTITION BY source "
            "ORDER BY finished_at DESC, started_at DESC) = 1) "
            f"SELECT source, run_id, status, strftime(finished_at, {second}) AS ended, n_fetched, n_stored, "
            f"n_unchanged, n_values, n_quarantined, (SELECT strftime(max(coalesce(p.published_later, p.finished_at)), "
            f"{second}) FROM runs p WHERE p.source = r.source AND p.status = 'complete') AS last_published, error, "
            "values_removed, coalesce(e.failed_before, 0) AS failed_before, e.last_failed_at, e.last_failure, "
            f"strftime(published_later, {second}) AS published_later "
            f"FROM latest r LEFT JOIN ({earlier}) e USING (run_id) ORDER BY finished_at DESC, source"
        )

    @staticmethod
    def write_file(frame: pd.DataFrame, path: Path, fmt: str) -> Path:
        """Write a frame as parquet, csv or jsonl, atomically (temp file beside `path`, then rename)."""
        return atomic_write(Path(path), frame_writer(frame, fmt))

    @staticmethod
    def write_file_with_sidecar(frame: pd.DataFrame, path: Path, fmt: str, describe: Callable[[Path], dict]) -> dict:
        """Write a frame as parquet, csv or jsonl with its `<path>.meta.json` sidecar, `describe(data file)`
        (`write_with_sidecar`); return the sidecar."""
        return write_with_sidecar(Path(path), frame_writer(frame, fmt), describe)

    @staticmethod
    def write_json(data: dict, path: Path) -> Path:
        """Write a JSON document atomically."""
        return atomic_write(Path(path), lambda temp: write_json(data, temp))


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0]


def _session_settings(con: duckdb.DuckDBPyConnection) -> None:
    """Give connection `con` (a session: each cursor has its own) the time zone UTC, in which the store holds its
    times: else DuckDB gives them in the host's zone, under the host's name for it (Etc/UTC, Asia/Tokyo), and a file
    written of them (a release's payload, an export) differs by the host it was written on. And no progress bar:
    DuckDB draws one on standard output for a query past two seconds, into what `matreg sql` prints (a CSV piped to
    a file) and among any command's lines."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")


def _query_refused(con: duckdb.DuckDBPyConnection, sql: str, exc: duckdb.Error) -> ConfigError:
    """The error of a query DuckDB refused before running it (a name it lacks, a type that does not fit), with the
    place in the query its own statement shows (`con.sql`'s relation leaves it out; a refused statement runs
    nothing); `con` closed. A ConfigError: the query as written can never run, whatever the store holds."""
    try:
        con.execute(sql)
    except duckdb.Error as located:
        exc = located
    finally:
        con.close()
    return ConfigError(f"query failed: {_whole_message(exc)}")


def _read_out(reader: pyarrow.RecordBatchReader, con: duckdb.DuckDBPyConnection) -> Iterator[pyarrow.RecordBatch]:
    """The batches of a query's `reader`, a failure while the query runs a StoreError (DuckDB's errors reach Arrow's
    reader as OSError); `con` closed once they are read out or dropped (`_close`)."""
    try:
        while (batch := _next_batch(reader, con)) is not None:
            yield batch
    except WriteRefused:  # (a spill to disk refused: `_running`)
        raise
    except (duckdb.Error, pyarrow.ArrowException, OSError) as exc:
        raise StoreError(f"query failed: {_whole_message(exc)}") from None
    finally:
        _close(con)


def _close(con: duckdb.DuckDBPyConnection) -> None:
    """Close `con`, the query whose rows a reader of it has not read out interrupted first: DuckDB's reader, freed
    while its query runs, waits for the query's end (minutes on a big store), whether the connection is closed or
    not; a consumer that stops reading (`matreg sql` into `head`) leaves it so, and so does a Ctrl-C that Arrow's
    reader noticed itself before the store's watch interrupted the query (the watch finds the connection closed)."""
    con.interrupt()
    con.close()


def _next_batch(reader: pyarrow.RecordBatchReader, con: duckdb.DuckDBPyConnection) -> pyarrow.RecordBatch | None:
    """The next batch of a query's `reader` (None at its end), a signal while DuckDB makes it interrupting the query
    (`_running`): only then, not while its reader waits for the next read (the program runs other code, whose Ctrl-C
    is not the query's)."""
    with _running(con):
        return next(reader, None)


@contextlib.contextmanager
def _running(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """A query run on `con` in the block: stopped by Ctrl-C or SIGTERM (`stopped_by_signals`: KeyboardInterrupt);
    what it could not spill to disk, the disk full there, NoSpace naming the folder (`_spill_dir`, `spills_refused`)."""
    with spills_refused(_spill_dir()), stopped_by_signals(con):
        yield


def _spill_dir() -> Path:
    """Where DuckDB writes what a query holds beyond its memory: the system's temp folder (TMPDIR), not the store (a
    read writes nothing there), nor a '.tmp' folder in the current one (DuckDB's own choice for a database in
    memory)."""
    return Path(tempfile.gettempdir())


def _whole_message(exc: Exception) -> str:
    """DuckDB's message with its hints (`Did you mean "properties"?`, the candidate columns, the place in the
    query), blank lines left out."""
    return "\n".join(line for line in str(exc).splitlines() if line.strip())


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    """True when DuckDB could not open a file because another process has it open (for writing, or it asked to)."""
    return isinstance(exc, duckdb.IOException) and "Could not set lock on file" in str(exc)


def _why_not_opened(exc: duckdb.Error) -> str:
    """DuckDB's reason for not opening the store's DuckDB file, with what to do about it."""
    if _is_lock_conflict(exc):
        return f"{_first_line(exc)} (a DuckDB shell lets others read beside it when opened read-only: duckdb -readonly)"
    remedy = "delete the file: it holds only the views, and matreg's next write to the store makes it again"
    if "database file with version number" in str(exc):
        newer = f"written by a newer DuckDB than this one, {duckdb.__version__}"
        return f"{_first_line(exc)} ({newer}: upgrade duckdb, or {remedy})"
    return f"{_first_line(exc)} ({remedy})"


# The characters DuckDB misreads in a store's path, each with its name and what DuckDB does with it ('[', '*', '{' and
# the others it reads as they are): a store whose path has one is refused (`_searchable`).
MISREAD_IN_PATHS = {
    ",": (
        "comma",
        "resolves the store's files through a comma-separated list of folders (file_search_path), with no escape for "
        "a comma, would read no file there",
    ),
    "?": ("question mark", "ends a file's name at a '?' (as a URL's), would write the store's DuckDB file elsewhere"),
    "\\": ("backslash", "reads a '\\' in the patterns of the store's files as a folder separator, would read none"),
}


def _searchable(folder: Path) -> Path:
    """`folder`, where DuckDB can read and write the store's files; PathError, before anything is written, when its
    path has a character DuckDB misreads (MISREAD_IN_PATHS)."""
    char = next((char for char in MISREAD_IN_PATHS if char in str(folder)), None)
    if char is not None:
        name, misread = MISREAD_IN_PATHS[char]
        names = [name for name, _ in MISREAD_IN_PATHS.values()]
        raise PathError(
            f"cannot use {folder} as a store: its path has a {name} ('{char}'), and DuckDB, which {misread}; choose a "
            f"folder whose path has no {_or(names)}"
        )
    return folder


def _holds_store(folder: Path) -> bool:
    """Whether a folder is a store's: it has FORMAT_FILE, DB_NAME or VIEWS_STAMP (a store of any matreg has one once
    it was first published, and a user may delete DB_NAME, a cache of views)."""
    return any((folder / name).exists() for name in (FORMAT_FILE, DB_NAME, VIEWS_STAMP))


def _is_first_entry(name: str) -> bool:
    """True for the name of an entry a store's folder may hold before its first commit (`Store._refuse_other_files`)."""
    return name in FIRST_ENTRIES | PLACEHOLDERS or name.startswith(CACHE_NAME) or is_temp_name(name)


def _newest_file(commits: list[Path], name: str) -> Path | None:
    """A table's file in the first of `commits` (newest first) that has one."""
    return next((commit / f"{name}.parquet" for commit in commits if (commit / f"{name}.parquet").exists()), None)


def _has_declared_schema(path: Path | None, name: str) -> bool:
    """True when a table's file (None: none) has the table's declared columns and types (the commit number aside)."""
    if path is None:
        return False
    schema = pq.read_schema(path)
    if COMMIT in schema.names:
        schema = schema.remove(schema.get_field_index(COMMIT))
    return schema.equals(arrow_schema(name))


def _has_commit_column(commits: list[Path], name: str) -> bool:
    """True when some file of table `name` in `commits` (newest first) has the commit number column: looked for
    oldest first, where a store made by this matreg has it (its first commit, or its compacted folder)."""
    files = (commit / f"{name}.parquet" for commit in reversed(commits))
    return any(COMMIT in pq.read_schema(file).names for file in files if file.exists())


def _quarantine_ids(path: Path) -> list[str]:
    """The ids of a run's quarantine rows, from its compacted file (none without one)."""
    return pq.read_table(path, columns=["quarantine_id"])["quarantine_id"].to_pylist() if path.exists() else []


def _definitions_digest() -> str:
    """A digest of the tables' declared schemas and the views: a store written with others needs updating."""
    return _digest_of_definitions(vocabulary_key())


@functools.lru_cache(maxsize=4)
def _digest_of_definitions(vocabulary: tuple) -> str:
    """`_definitions_digest` of a vocabulary (`vocabulary_key`: the wide view has a column for each property)."""
    schemas = {name: arrow_schema(name).to_string() for name in load_tables()}
    definitions = [schemas, view_definitions(), DB_STORAGE_VERSION]  # (a file of another format is written again)
    return hashlib.sha256(json.dumps(definitions, sort_keys=True).encode()).hexdigest()


def _or(names: list[str]) -> str:
    """'a, b or c'."""
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def _batches(pages: Iterator[pyarrow.Table], size: int) -> Iterator[pyarrow.Table]:
    """Pages gathered into tables of about `size` bytes, in order (memory stays flat however long the run)."""
    pending: list[pyarrow.Table] = []
    gathered = 0
    for page in pages:
        pending.append(page)
        gathered += page.get_total_buffer_size()  # nbytes costs 15-30 times more on a page of strings
        if gathered >= size:
            yield pyarrow.concat_tables(pending).combine_chunks()
            pending, gathered = [], 0
    if any(page.num_rows for page in pending):
        yield pyarrow.concat_tables(pending).combine_chunks()


def _refuse_writes(sql: str) -> None:
    """ConfigError for SQL that is not one SELECT (the store is read-only to queries)."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ConfigError(f"cannot parse SQL: {_whole_message(exc)}") from None
    if len(statements) != 1:
        raise ConfigError("give exactly one SQL statement")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise ConfigError(f"refused: the store is read-only here, and this is a {statements[0].type.name} statement")
