"""The store: atomic commits, deduplicating views, read-only SQL."""

import contextlib
import copy
import dataclasses
import errno
import gc
import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import filelock
import numpy
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import (
    HOLD_LOCK,
    LAB_EXAMPLE,
    SPILLING,
    another_process_holding,
    assert_failed_without_trace,
    disk_full_at_rows_of,
    no_space_to_spill,
    single_value,
    utf8_child,
    visible_tables,
)

from matreg.curate.review import record_decision
from matreg.errors import (
    TRY_LATER,
    ConfigError,
    NoSpace,
    PathError,
    StoreError,
    StoreFileHeld,
    WriteRefused,
    write_refused,
)
from matreg.export import export_dataset
from matreg.http import HttpClient
from matreg.ingest import run_ingest
from matreg.journal import RunJournal
from matreg.schema import arrow_schema, arrow_table, table_spec
from matreg.sources.base import Attribution, Connector, Page, RawItem, RawValue, ReadMode, RunInfo, SourceRecord
from matreg.sources.janaf import JanafConnector
from matreg.sources.lab import LabConnector, load_mapping
from matreg.store import Store, StoreBusy, _definitions_digest, atomic_dir, refuse_long_names
from matreg.store.files import atomic_write, remove_old_temps, replace_dir
from matreg.store.publish import keys_repeat, run_rows_sql
from matreg.validation import check_store_tables


class ExplodingJanaf(JanafConnector):
    """A JANAF connector whose second page raises, as a crash in the middle of a run would."""

    def pages(self, cursor=None):
        pages = super().pages(cursor)
        yield next(pages)
        raise RuntimeError("connection reset in the middle of the run")


def _connector(catalog, ids, cls=JanafConnector, page_size=25):
    source = catalog.source("janaf")
    return cls(source, HttpClient(source.http), ids, page_size=page_size)


def test_a_run_that_raises_midway_leaves_the_store_as_before(store, catalog):
    run_ingest(_connector(catalog, ["H-064"]), store)
    before = visible_tables(store)
    connector = _connector(catalog, ["C-095", "Al-001", "O-029"], ExplodingJanaf, page_size=1)
    with pytest.raises(RuntimeError, match="connection reset"):
        run_ingest(connector, store)
    assert_failed_without_trace(store, before, "connection reset")


def test_a_dry_run_of_a_resume_previews_the_page_the_resume_would_fetch(store, catalog, janaf_server):
    ids = ["C-095", "Al-001", "O-029"]
    with pytest.raises(StoreError, match="nothing to resume"):
        run_ingest(_connector(catalog, ids, page_size=1), store, dry_run=True, resume=True)
    with pytest.raises(RuntimeError, match="connection reset"):
        run_ingest(_connector(catalog, ids, ExplodingJanaf, page_size=1), store)  # C-095 staged, then stopped
    asked_before = len(janaf_server.requests)
    preview = run_ingest(_connector(catalog, ids, page_size=1), store, dry_run=True, resume=True)
    assert preview.n_fetched == 1 and [r.path for r in janaf_server.requests[asked_before:]] == ["/tables/Al-001.txt"]
    assert run_ingest(_connector(catalog, ids, page_size=1), store, resume=True).n_stored == 3  # nothing consumed


def test_a_dry_run_of_a_resume_maps_only_what_the_limit_leaves(store, catalog):
    ids = ["C-095", "Al-001", "O-029", "H-064"]
    with pytest.raises(RuntimeError, match="connection reset"):
        run_ingest(_connector(catalog, ids, ExplodingJanaf, page_size=2), store, limit=3)  # 2 read, then stopped
    preview = run_ingest(_connector(catalog, ids, page_size=2), store, dry_run=True, resume=True, limit=3)
    assert (preview.n_fetched, preview.resumed) == (1, True)
    assert run_ingest(_connector(catalog, ids, page_size=2), store, resume=True, limit=3).n_fetched == 3


def test_a_run_is_resumed_only_with_the_limit_it_was_started_with(store, catalog):
    ids = ["C-095", "Al-001", "O-029", "H-064"]
    with pytest.raises(RuntimeError, match="connection reset"):
        run_ingest(_connector(catalog, ids, ExplodingJanaf, page_size=2), store, limit=3)  # 2 read, then stopped
    for other in (None, 2):  # without it the run would go on after the page the limit cut: O-029 never read
        with pytest.raises(StoreError, match="read with other options: .* give --limit 3 with --resume to continue"):
            run_ingest(_connector(catalog, ids, page_size=2), store, resume=True, limit=other)
    assert run_ingest(_connector(catalog, ids, page_size=2), store, resume=True, limit=3).n_fetched == 3


def test_a_dry_run_of_a_resume_with_every_page_staged_shows_what_it_would_publish(store, catalog, monkeypatch):
    ids = ["C-095", "Al-001"]
    disk_full_at_rows_of(monkeypatch, "properties")  # stopped in the middle of publishing
    with pytest.raises(NoSpace, match="No space left on device"):
        run_ingest(_connector(catalog, ids), store)
    monkeypatch.undo()
    preview = run_ingest(_connector(catalog, ids), store, dry_run=True, resume=True)
    assert (preview.status, preview.dry_run, preview.n_stored) == ("complete", True, 2)
    assert store.table("materials").empty and run_ingest(_connector(catalog, ids), store, resume=True).n_stored == 2


def test_a_run_is_resumed_only_against_the_server_it_read(store, catalog):
    ids = ["C-095", "Al-001", "O-029"]
    with pytest.raises(RuntimeError, match="connection reset"):
        run_ingest(_connector(catalog, ids, ExplodingJanaf, page_size=1), store)
    mirror = catalog.source("janaf").model_copy(update={"base_url": "http://127.0.0.1:9/tables/"})
    elsewhere = JanafConnector(mirror, HttpClient(mirror.http), ids, page_size=1)
    served = catalog.source("janaf").base_url
    read_there = f"at http://127.0.0.1:9/tables/ \\(run .* read {served}: give the --base-url it was read at with"
    with pytest.raises(StoreError, match=read_there):
        run_ingest(elsewhere, store, resume=True)
    assert run_ingest(_connector(catalog, ids, page_size=1), store, resume=True).n_stored == 3


def test_a_resume_with_other_parameters_names_the_interrupted_run_of_another_selection(store, catalog):
    with pytest.raises(RuntimeError, match="connection reset"):
        run_ingest(_connector(catalog, ["C-095", "Al-001"], ExplodingJanaf, page_size=1), store)
    (run_id,) = store.staged_runs()
    other = f"an interrupted run of 'janaf' has another selection: {run_id} \\(.*C-095.*\\): give that selection with"
    with pytest.raises(StoreError, match=other):
        run_ingest(_connector(catalog, ["C-095"], page_size=1), store, resume=True)


def test_a_run_stopped_right_after_staging_its_last_page_is_resumed_without_fetching_again(
    store, catalog, janaf_server
):
    with pytest.raises(RuntimeError, match="connection reset"):
        run_ingest(_connector(catalog, ["C-095"], ExplodingJanaf, page_size=1), store)  # its one page, then stopped
    asked = len(janaf_server.requests)
    preview = run_ingest(_connector(catalog, ["C-095"], page_size=1), store, dry_run=True, resume=True)
    report = run_ingest(_connector(catalog, ["C-095"], page_size=1), store, resume=True)
    assert (preview.status, report.n_fetched, report.n_stored) == ("complete", 1, 1)
    assert len(janaf_server.requests) == asked and len(store.table("materials")) == 1


def test_a_resume_does_not_point_at_a_run_another_process_is_writing(store, catalog):
    with pytest.raises(RuntimeError, match="connection reset"):
        run_ingest(_connector(catalog, ["C-095", "Al-001"], ExplodingJanaf, page_size=1), store)
    (run_id,) = store.staged_runs()
    writer = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(store.root / "locks" / f"{run_id}.lock")],
                              stdout=subprocess.PIPE, **utf8_child())  # fmt: skip
    try:
        assert writer.stdout.readline().strip() == "holding"
        with pytest.raises(StoreError, match="with these parameters$"):
            run_ingest(_connector(catalog, ["C-095"], page_size=1), store, resume=True)
    finally:
        writer.kill()
        writer.wait()


def test_a_crash_while_publishing_leaves_no_partial_commit(store, catalog, monkeypatch):
    run_ingest(_connector(catalog, ["H-064"]), store)
    commits_before = sorted(p.name for p in store.data_dir.iterdir())

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="disk full"):
        run_ingest(_connector(catalog, ["C-095"]), store)
    monkeypatch.undo()
    assert sorted(p.name for p in store.data_dir.iterdir()) == commits_before
    assert list(store.tmp_dir.iterdir()) == []
    assert set(store.table("materials")["record_id"]) == {"janaf:H-064"}
    report = run_ingest(_connector(catalog, ["C-095"]), store, resume=True)  # the journal stayed staged
    assert report.resumed and set(store.table("materials")["record_id"]) == {"janaf:H-064", "janaf:C-095"}
    assert list(store.staging_dir.iterdir()) == []


def test_a_run_that_finds_the_publishing_lock_held_too_long_stays_staged_and_resumes(store, catalog, monkeypatch):
    run_ingest(_connector(catalog, ["H-064"]), store)
    before = visible_tables(store)
    monkeypatch.setattr("matreg.store.LOCK_WAIT_S", 0.5)
    with another_process_holding(store.root / ".lock"):  # as a matreg publishing another run would
        with pytest.raises(StoreBusy, match="run the same command with --resume to publish"):
            run_ingest(_connector(catalog, ["C-095"]), store)
        (run_id,) = store.staged_runs()
    assert all(store.table(name).equals(frame) for name, frame in before.items())
    report = run_ingest(_connector(catalog, ["C-095"]), store, resume=True)
    assert report.resumed and report.run_id == run_id and report.n_stored == 1
    assert set(store.table("materials")["record_id"]) == {"janaf:H-064", "janaf:C-095"}
    assert store.staged_runs() == {}


def test_a_run_killed_after_publishing_but_before_dropping_its_journal_is_not_resumed(store, catalog, monkeypatch):
    real_rename = os.rename

    def killed_before_the_journal_leaves_staging(source, destination):
        if store.staging_dir not in Path(source).parents:
            real_rename(source, destination)

    monkeypatch.setattr(os, "rename", killed_before_the_journal_leaves_staging)
    report = run_ingest(_connector(catalog, ["H-064"]), store)
    monkeypatch.undo()
    assert len(list(store.staging_dir.iterdir())) == 1  # published, with its journal still staged
    assert store.staged_runs() == {} and len(list(store.staging_dir.iterdir())) == 1  # a read removes nothing
    published = f"nothing to resume: the last run of 'janaf' with these parameters at .*, {report.run_id}, was "
    with pytest.raises(StoreError, match=published + "published"):  # not "fetch without --resume": it is stored
        run_ingest(_connector(catalog, ["H-064"]), store, resume=True)
    assert list(store.staging_dir.iterdir()) == []  # removed by the resume, a writer
    assert store.table("fetch_runs")["status"].tolist() == ["complete"]


def test_a_page_written_in_part_is_cut_before_the_same_process_resumes(store, catalog, monkeypatch):
    real_write = RunJournal._write
    written = []

    def disk_full_at_the_second_commit_frame(journal, name, table):
        if name == "commits" and len(written) == 1:
            written.append(name)
            journal._files[name].write(b"\x40\x00\x00")  # the start of the frame's length, then the disk is full
            raise OSError("disk full")
        if name == "commits":
            written.append(name)
        return real_write(journal, name, table)

    monkeypatch.setattr(RunJournal, "_write", disk_full_at_the_second_commit_frame)
    with pytest.raises(OSError, match="disk full"):
        run_ingest(_connector(catalog, ["H-064", "C-095", "Al-001"], page_size=1), store)
    report = run_ingest(_connector(catalog, ["H-064", "C-095", "Al-001"], page_size=1), store, resume=True)
    assert report.resumed and report.n_fetched == 3
    materials = store.table("materials")
    assert sorted(materials["source_id"]) == ["Al-001", "C-095", "H-064"]
    assert len(store.table("properties")) == 21  # seven values per table, none twice


def test_views_answer_from_the_duckdb_file_in_another_directory(store, catalog, tmp_path, monkeypatch):
    run_ingest(_connector(catalog, ["H-064", "C-095"]), store)
    monkeypatch.chdir(tmp_path)
    counts = store.query("SELECT provenance, count(*) AS n FROM properties GROUP BY 1")
    assert counts.to_dict("records") == [{"provenance": "experimental", "n": 14}]
    wide = store.query("SELECT formula, enthalpy_of_formation FROM properties_wide ORDER BY formula")
    assert wide.to_dict("records") == [
        {"formula": "CO2", "enthalpy_of_formation": -393.522},
        {"formula": "H2O", "enthalpy_of_formation": -241.826},
    ]


def test_a_query_is_read_in_batches_and_a_failure_while_it_runs_is_a_store_error(store, catalog):
    run_ingest(_connector(catalog, ["H-064"]), store)
    reader = store.query_batches("SELECT range AS i FROM range(25000)", 10000)
    assert [batch.num_rows for batch in reader] == [10000, 10000, 5000]
    failing = store.query_batches(
        "SELECT CASE WHEN range < 20000 THEN range ELSE error('boom') END FROM range(30000)", 10000
    )
    with pytest.raises(StoreError, match="query failed: .*boom"):
        list(failing)
    with pytest.raises(ConfigError, match="refused"):
        store.query_batches("DELETE FROM materials", 10000)


# `python -c`: the store (argv[1]) reads the first batch of a query whose rows DuckDB (on four threads) makes for
# minutes, as `matreg sql ... | head` does, and of one of matreg's own streamed reads, then drops each
DROPPED_READERS = """
import functools
import duckdb
duckdb.connect = functools.partial(duckdb.connect, config={"threads": 4})
import sys
from matreg.store import Store

ENDLESS_ROWS = "SELECT a.range FROM range(1000000) a, range(1000000) b WHERE a.range = 0 OR a.range * b.range < 0"
store = Store(sys.argv[1])
reader = store.query_batches(ENDLESS_ROWS, 1000)
print(reader.read_next_batch().num_rows, flush=True)
del reader
frames = store.read_batches(ENDLESS_ROWS, rows=1000)
print(len(next(frames)), flush=True)
frames.close()
print("stopped", flush=True)
"""


def test_a_query_whose_reader_is_dropped_before_its_end_stops_within_seconds(store, catalog):
    """DuckDB's reader of a query's rows, dropped before the query's end (a consumer that stops reading: `matreg sql`
    into `head`; Ctrl-C noticed by Arrow itself before the store's watch interrupted the query), waited for the
    query to end (minutes on a big store), its connection closed or not: the store interrupts the query first."""
    run_ingest(_connector(catalog, ["H-064"]), store)
    try:
        dropped = subprocess.run(
            [sys.executable, "-c", DROPPED_READERS, str(store.root)], capture_output=True, **utf8_child(), timeout=30
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"a dropped reader waited 30 s for its query's end: {exc.stdout!r}")
    assert (dropped.returncode, dropped.stdout) == (0, "1000\n1000\nstopped\n"), dropped.stderr


def test_a_column_declared_after_the_store_was_written_is_added(store, catalog):
    # A store written before materials.notes was declared: its files lack the column, its stamp is another's.
    run_ingest(_connector(catalog, ["H-064"]), store)
    for path in store.data_dir.glob("c*/**/materials.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(["notes"]), path)
    (store.root / ".views.sha256").write_text("written by an older matreg", encoding="utf-8")
    run_ingest(_connector(catalog, ["Al-001"]), store)  # Al-001 has transition notes
    materials = store.table("materials").set_index("source_id")
    assert pd.isna(materials.loc["H-064", "notes"]) and "CRYSTAL <--> LIQUID" in materials.loc["Al-001", "notes"]


def _files_as_they_are(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root` with its size and modification time."""
    return {str(path): (path.stat().st_size, path.stat().st_mtime_ns) for path in root.rglob("*") if path.is_file()}


def test_a_store_written_by_an_older_matreg_is_read_with_this_ones_views_and_nothing_written(
    store, catalog, monkeypatch
):
    """A read (`matreg sql`, `status`, an export) writes nothing, so that a read-only store can be read: not even the
    store's lock is taken. The views are this matreg's, the columns and tables declared since as empty."""
    run_ingest(_connector(catalog, ["H-064"]), store)
    for path in store.data_dir.glob("c*/**/materials.parquet"):
        pq.write_table(pq.read_table(path).drop_columns(["notes", "scope"]), path)
    for path in store.data_dir.glob("c*/**/curation_log.parquet"):
        path.unlink()  # as in a store made before curation_log existed
    (store.root / ".views.sha256").write_text("written by an older matreg", encoding="utf-8")
    monkeypatch.setattr("matreg.store.LOCK_WAIT_S", 0.1)
    writer = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(store.root / ".lock")], stdout=subprocess.PIPE)
    try:
        assert writer.stdout.readline().strip() == b"holding"  # as a matreg writing to the store would
        before = _files_as_they_are(store.root)
        materials = store.table("materials")  # the views know the columns declared since
        assert {"notes", "scope"} <= set(materials.columns) and materials["notes"].isna().all()
        assert check_store_tables(store).problems == []
        shown = store.query(
            "SELECT m.scope, count(*) AS n FROM materials m JOIN properties USING (record_id) GROUP BY 1"
        )
        assert shown.values.tolist() == [[None, 7]]
        assert store.query("SELECT count(*) FROM curation_log").iloc[0, 0] == 0
    finally:
        writer.kill()
        writer.wait()
    assert _files_as_they_are(store.root) == before
    run_ingest(_connector(catalog, ["C-095"]), store)  # a write brings the store up to date
    assert (store.root / ".views.sha256").read_text(encoding="utf-8") == _definitions_digest()
    assert store.query("SELECT source_id FROM materials WHERE scope IS NULL").values.tolist() == [["H-064"]]


def _newest_commit(store: Store) -> Path:
    return max(store.data_dir.glob("c*"))


def test_an_unchanged_refetch_adds_its_fetch_runs_row_alone_in_under_8_kb(store, catalog):
    """An unchanged re-fetch adds a commit of its fetch_runs row alone: it was 9.5 KB, 6.4 KB of it the Parquet
    footer, 2.3 KB of that pyarrow's copy of the schema (ARROW:schema), which the store's reads do not need (the
    Parquet schema gives the declared types back). Now the file carries no key-value metadata."""
    for _ in range(2):
        run_ingest(_connector(catalog, ["H-064", "C-095"]), store)
    newest = _newest_commit(store)
    assert [path.name for path in newest.iterdir()] == ["fetch_runs.parquet"]
    assert pq.read_metadata(newest / "fetch_runs.parquet").metadata is None
    assert (newest / "fetch_runs.parquet").stat().st_size < 8000


def test_no_file_of_the_store_carries_pandas_metadata_or_a_copy_of_its_schema(store, catalog):
    """A failed run's record and a steward's entries were written from pandas frames: their files carried pandas'
    metadata (3.8 KB in a failed run's fetch_runs.parquet) and pyarrow's copy of the schema holding it again (7.4 KB),
    19 KB for a failed run. The store reads its types from the declared schema, not from these: no file of any
    commit (a fetch's, a failed run's, an import's, a decision's, a readmit's, a compacted folder) carries them."""
    run_ingest(_connector(catalog, ["H-064"]), store)
    with pytest.raises(RuntimeError, match="connection reset"):
        run_ingest(_connector(catalog, ["C-095", "Al-001"], ExplodingJanaf, page_size=1), store)
    failed = _newest_commit(store)
    assert [path.name for path in failed.iterdir()] == ["fetch_runs.parquet"]
    assert (failed / "fetch_runs.parquet").stat().st_size < 10_000
    run_ingest(_lab(), store)
    record_decision(store, "flag", "A. Steward", "to check", record_id="janaf:H-064")
    bad_unit = single_value(store.query("SELECT quarantine_id FROM quarantine WHERE item = 'bad-unit'"))
    record_decision(store, "readmit", "A. Steward", "a typo", quarantine_id=bad_unit, unit="eV")
    commits = sorted(store.data_dir.glob("c*"))
    store.compact()
    written = sorted(store.data_dir.glob("c*/*.parquet"))
    assert {path.parent for path in written} == {*commits, _newest_commit(store)}
    assert {path: pq.read_metadata(path).metadata for path in written} == dict.fromkeys(written)


def test_a_run_another_process_is_writing_is_neither_resumed_nor_dropped(store, catalog):
    ids = ["C-095", "Al-001", "O-029"]
    with pytest.raises(RuntimeError, match="connection reset"):
        run_ingest(_connector(catalog, ids, ExplodingJanaf, page_size=1), store)
    (run_id,) = store.staged_runs()
    lock = store.root / "locks" / f"{run_id}.lock"
    writer = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, **utf8_child())
    try:
        assert writer.stdout.readline().strip() == "holding"  # as the process writing that run would
        with pytest.raises(StoreError, match="still running in another process"):
            run_ingest(_connector(catalog, ids, page_size=1), store, resume=True)
        report = run_ingest(_connector(catalog, ids, page_size=1), store)  # a run of its own
        assert report.n_stored == 3 and run_id in store.staged_runs()  # the other process's journal is kept
    finally:
        writer.kill()
        writer.wait()
    assert not store.is_running(run_id)  # a killed writer's run can be resumed (or dropped) again


def test_a_dry_run_of_a_resume_leaves_no_lock_file_behind(store, catalog):
    ids = ["C-095", "Al-001", "O-029"]
    with pytest.raises(RuntimeError, match="connection reset"):
        run_ingest(_connector(catalog, ids, ExplodingJanaf, page_size=1), store)
    locks_before = sorted((store.root / "locks").glob("*"))
    report = run_ingest(_connector(catalog, ids, page_size=1), store, resume=True, dry_run=True)
    assert report.dry_run and report.resumed
    assert sorted((store.root / "locks").glob("*")) == locks_before


def lock_waits(monkeypatch: pytest.MonkeyPatch, lock: Path) -> list[float]:
    """The waits (timeouts, in s) with which this process asks filelock for the lock at `lock` from now on."""
    waits: list[float] = []
    acquire = filelock.FileLock.acquire

    def recorded(file_lock: filelock.FileLock, timeout: float | None = None, *args, **kwargs):
        if Path(file_lock.lock_file) == lock:
            waits.append(file_lock.timeout if timeout is None else timeout)
        return acquire(file_lock, timeout, *args, **kwargs)

    monkeypatch.setattr(filelock.FileLock, "acquire", recorded)
    return waits


def test_a_fetch_publishes_while_another_process_reads_the_duckdb_file(store, catalog):
    run_ingest(_connector(catalog, ["H-064"]), store)
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLD_READ_ONLY, str(store.db_path)], stdout=subprocess.PIPE, **utf8_child()
    )
    try:
        assert reader.stdout.readline().strip() == "reading"  # as `matreg sql` or a DuckDB shell would
        run_ingest(_connector(catalog, ["C-095"]), store)
    finally:
        reader.kill()
        reader.wait()
    assert set(store.table("materials")["record_id"]) == {"janaf:H-064", "janaf:C-095"}


HOLD_READ_ONLY = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("reading", flush=True)
time.sleep(60)
"""


def test_a_resume_and_an_import_publish_while_another_process_holds_the_duckdb_file_for_writing(
    store, catalog, hold_for_writing
):
    """matreg reads the Parquet files itself: the DuckDB file (a DuckDB shell's, opened for writing by default) is
    left to other clients."""
    run_ingest(_lab(), store)
    with pytest.raises(RuntimeError, match="connection reset"):
        run_ingest(_connector(catalog, ["H-064", "C-095"], ExplodingJanaf, page_size=1), store)
    hold_for_writing(store.db_path)
    assert run_ingest(_connector(catalog, ["H-064", "C-095"], page_size=1), store, resume=True).resumed
    assert run_ingest(_lab(), store).n_unchanged == 30  # compared with the stored formulas and records
    assert len(store.table("materials")) == 32
    with pytest.raises(StoreFileHeld, match="cannot open .*matreg.duckdb.*opened read-only: duckdb -readonly"):
        store.query("SELECT 1")  # `matreg sql` reads the DuckDB file


def test_a_fetch_publishes_when_the_views_cannot_be_updated_and_a_later_one_updates_them(
    store, catalog, caplog, hold_for_writing
):
    """Another matreg's definitions (a column added), the DuckDB file held open: each fetch publishes (the views are
    for other clients), a logged warning says so once, the files of the declared schema are written once (no commit
    besides the runs' after that), and the views are updated by the first write once the file is free."""
    run_ingest(_connector(catalog, ["H-064"]), store)
    for path in store.data_dir.glob("c*/**/materials.parquet"):
        pq.write_table(pq.read_table(path).drop_columns(["notes"]), path)
    stamp = store.root / ".views.sha256"
    stamp.write_text("written by an older matreg", encoding="utf-8")
    commits = len(list(store.data_dir.iterdir()))
    release = hold_for_writing(store.db_path)
    run_ingest(_connector(catalog, ["Al-001"]), store)
    run_ingest(_connector(catalog, ["O-029"]), store)
    release()
    assert len(list(store.data_dir.iterdir())) == commits + 1 + 2  # the empty files of the schema, the two runs
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith(f"the views in {store.db_path} are not updated")
    materials = store.table("materials").set_index("source_id")
    assert pd.isna(materials.loc["H-064", "notes"]) and "CRYSTAL <--> LIQUID" in materials.loc["Al-001", "notes"]
    assert stamp.read_text(encoding="utf-8") != _definitions_digest()
    run_ingest(_connector(catalog, ["N-023"]), store)
    assert stamp.read_text(encoding="utf-8") == _definitions_digest()
    assert len(list(store.data_dir.iterdir())) == commits + 4


@pytest.mark.parametrize(("code", "error"), [(errno.ENOSPC, NoSpace), (errno.EACCES, WriteRefused)])
def test_a_run_the_file_system_refuses_to_publish_names_the_store_and_leaves_it_as_before(
    store, catalog, monkeypatch, code, error
):
    """A disk full as a run is published is a failure for now (NoSpace: exit 75), the store named; a write refused
    otherwise (no permission) is not (exit 1). Nothing of the run is shown, and it stays staged, to resume. (The file
    system's error, as the OS raises it, in the rename that publishes the run's commit.)"""
    run_ingest(_connector(catalog, ["H-064"]), store)
    before = visible_tables(store)
    rename = os.rename

    def refused(source, target):
        if Path(target).parent == store.data_dir:
            raise OSError(code, os.strerror(code))
        rename(source, target)

    monkeypatch.setattr(os, "rename", refused)
    with pytest.raises(error, match=f"^cannot write {re.escape(str(store.root))}: {os.strerror(code)}") as raised:
        run_ingest(_connector(catalog, ["C-095"]), store)
    assert raised.value.exit_code == (TRY_LATER if code == errno.ENOSPC else 1)
    monkeypatch.setattr(os, "rename", rename)
    assert all(store.table(name).equals(frame) for name, frame in before.items()) and len(store.staged_runs()) == 1
    assert run_ingest(_connector(catalog, ["C-095"]), store, resume=True).resumed


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_a_refused_write_keeps_its_errno_and_path_when_pickled_or_copied(code):
    """OSError rebuilds from its args: a pickled WriteRefused (a worker process's) lost its errno and filename."""
    refused = write_refused(OSError(code, os.strerror(code)), Path("/data/store"))
    for twin in (pickle.loads(pickle.dumps(refused)), copy.copy(refused)):
        assert type(twin) is type(refused) and str(twin) == str(refused)
        assert (twin.errno, twin.strerror, twin.filename) == (code, os.strerror(code), "/data/store")


@pytest.mark.parametrize(("code", "error"), [(errno.ENOSPC, NoSpace), (errno.EACCES, WriteRefused)])
def test_a_write_the_file_system_refuses_is_still_an_oserror_to_library_callers(
    store, catalog, monkeypatch, tmp_path, code, error
):
    """A library caller's `except OSError` around a store write or an export catches a disk full or no permission, as
    it did before matreg named the path written: the OS's errno and reason, the path written as its filename, and
    matreg's one-line message (the CLI's exit codes stay 75 and 1: test_cli). (The file system's error, as the OS
    raises it, in the rename that publishes the run, and in the export's first rename, its sidecar's.)"""
    run_ingest(_connector(catalog, ["H-064"]), store)
    out = tmp_path / "out" / "thermo.csv"
    rename, replace = os.rename, os.replace

    def refusing(move: Callable) -> Callable:
        def refused(source, target):
            if Path(target).parent in (store.data_dir, out.parent):
                raise OSError(code, os.strerror(code))
            move(source, target)

        return refused

    monkeypatch.setattr(os, "rename", refusing(rename))
    monkeypatch.setattr(os, "replace", refusing(replace))
    publish = lambda: run_ingest(_connector(catalog, ["C-095"]), store)  # noqa: E731
    export = lambda: export_dataset(store, catalog, "thermo", "csv", out)  # noqa: E731
    for write, path in [(publish, store.root), (export, out)]:
        with pytest.raises(OSError) as raised:
            write()
        refused = raised.value
        assert isinstance(refused, error) and (refused.errno, refused.filename) == (code, str(path))
        assert str(refused).startswith(f"cannot write {path}: {os.strerror(code)} ({errno.errorcode[code]})")


def _lab() -> LabConnector:
    return LabConnector(LAB_EXAMPLE / "bandgaps.csv", load_mapping(LAB_EXAMPLE / "mapping.yaml"))


def test_a_record_a_re_import_withdraws_is_no_longer_shown_and_its_writes_stay_as_history(store, tmp_path):
    mapping = "dataset: roost\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
    (tmp_path / "m.yaml").write_text(mapping + "  gap: {property: band_gap, unit: eV}\n", encoding="utf-8")
    data, rows = tmp_path / "roost.csv", ["roost-1,GaN,3.4", "roost-2,ZnO,3.3", "roost-3,Si,1.1"]

    def import_rows(given: list[str]):
        data.write_text("\n".join(["id,formula,gap", *given]) + "\n", encoding="utf-8")
        return run_ingest(LabConnector(data, load_mapping(tmp_path / "m.yaml")), store)

    import_rows(rows)
    assert import_rows(rows[:2]).n_withdrawn == 1  # roost-3 deleted from the file
    for view in ("materials", "properties_wide"):
        assert store.query(f"SELECT record_id FROM {view} ORDER BY 1")["record_id"].tolist() == [
            "roost:roost-1",
            "roost:roost-2",
        ]
    assert store.query("SELECT count(*) FROM material_writes WHERE source_id = 'roost-3'").iloc[0, 0] == 2
    import_rows(rows)  # the row back in the file
    assert len(store.query("SELECT * FROM materials")) == 3


# how a DuckDB client of its own reads the store as of one commit (README, The store)
PIN_NEWEST_COMMIT = (
    "SET VARIABLE matreg_snapshot = "
    r"(SELECT max(regexp_extract(file, 'c(\d+)[/\\][^/\\]+$', 1))::BIGINT FROM glob('data/c*/*.parquet'))"
)


def _matreg_connection(store: Store) -> duckdb.DuckDBPyConnection:
    return store.connect()  # as `matreg sql` reads


@contextlib.contextmanager
def _matreg_scanner(store: Store) -> Iterator[duckdb.DuckDBPyConnection]:
    with store._scan() as con:  # as `Store.read` reads (status, exports, releases): a cursor, then its query
        store._define_views(con, "materials properties properties_wide")
        yield con


def _pinned_client(store: Store) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(store.db_path), read_only=True)  # a DuckDB shell, or a program of its own
    con.execute("SET file_search_path = ?", [str(store.root)])
    con.execute(PIN_NEWEST_COMMIT)
    return con


@pytest.mark.parametrize("reader", [_matreg_connection, _matreg_scanner, _pinned_client])
def test_a_query_racing_a_publish_reads_each_table_as_of_the_same_commit(store, tmp_path, reader):
    """DuckDB lists each table's files anew, so a query running while a run publishes could list the run's commit
    among the materials files and not yet among the properties files: the re-imported records' new writes, without
    their new values, showed no value at all (and the materials view left them out as withdrawn). The state such a
    query lists is made here: the new commit without its properties file. A query reads the commits up to the
    newest when it started (its connection was pinned) and none after: the values of the import before, whole."""
    mapping = "dataset: roost\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
    (tmp_path / "m.yaml").write_text(mapping + "  gap: {property: band_gap, unit: eV}\n", encoding="utf-8")
    data = tmp_path / "roost.csv"

    def import_gaps(gaps: list[float]) -> None:
        formulas = ["GaN", "ZnO", "Si"]
        rows = [f"roost-{n},{formula},{gap}" for n, formula, gap in zip([1, 2, 3], formulas, gaps, strict=True)]
        data.write_text("\n".join(["id,formula,gap", *rows]) + "\n", encoding="utf-8")
        run_ingest(LabConnector(data, load_mapping(tmp_path / "m.yaml")), store)

    import_gaps([3.4, 3.3, 1.1])
    with reader(store) as con:  # (a connection closes as its block ends)
        import_gaps([3.5, 3.2, 1.2])  # every record written again, whole
        newest = max(store.data_dir.glob("c*"))
        assert (newest / "materials.parquet").exists()
        (newest / "properties.parquet").rename(tmp_path / "listed later.parquet")
        values = con.execute("SELECT value FROM properties ORDER BY record_id").fetchall()
        joined = con.execute("SELECT count(*) FROM materials JOIN properties USING (record_id)").fetchall()
        wide = con.execute("SELECT band_gap FROM properties_wide ORDER BY record_id").fetchall()
    assert values == wide == [(3.4,), (3.3,), (1.1,)]
    assert joined == [(3,)]


def test_each_query_of_matreg_reads_the_newest_commit_when_it_starts(store, catalog):
    """`matreg sql` and matreg's own reads pin each query anew: a commit published after one query is read by the
    next; a client's connection pinned before it reads the store as it was."""
    run_ingest(_connector(catalog, ["H-064"]), store)
    before = _pinned_client(store)
    try:
        run_ingest(_connector(catalog, ["C-095"]), store)
        assert before.execute("SELECT count(*) FROM materials").fetchall() == [(1,)]
        before.execute(PIN_NEWEST_COMMIT)
        assert before.execute("SELECT count(*) FROM materials").fetchall() == [(2,)]
    finally:
        before.close()
    assert store.query("SELECT count(*) AS n FROM materials")["n"].tolist() == [2]
    assert len(store.table("materials")) == 2
    run_ingest(_connector(catalog, ["Al-001"]), store)
    assert store.query("SELECT count(*) AS n FROM materials")["n"].tolist() == [3]
    assert len(store.table("materials")) == 3


def test_the_reads_of_a_snapshot_block_read_the_store_as_it_was_when_the_block_started(store, catalog):
    """An export or release makes several reads: each reads the same commit, whatever another process publishes."""
    run_ingest(_connector(catalog, ["H-064"]), store)
    with store.snapshot():
        run_ingest(_connector(catalog, ["C-095"]), Store(store.root))  # another writer of the store
        with store.snapshot():  # an inner block keeps the outer one's commit
            assert len(store.table("materials")) == 1
        assert store.query("SELECT count(*) AS n FROM materials")["n"].tolist() == [1]
    assert len(store.table("materials")) == 2


def test_a_run_lock_file_another_process_may_lock_next_is_never_deleted(store, catalog):
    """Releasing a run that stays staged keeps its lock file: a process that opened it (to lock it next) and then
    locks it holds the run, and a third sees the run held instead of locking a new file of the same name. A published
    run's lock file goes."""
    with pytest.raises(RuntimeError, match="connection reset"):
        run_ingest(_connector(catalog, ["C-095", "Al-001"], ExplodingJanaf, page_size=1), store)
    (run_id,) = store.staged_runs()
    lock = store.root / "locks" / f"{run_id}.lock"
    store.claim_run(run_id)  # as a resume does
    other = subprocess.Popen(
        [sys.executable, "-c", OPEN_THEN_LOCK, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, **utf8_child()
    )
    try:
        assert other.stdout.readline().strip() == "opened"
        store.release_run(run_id)
        other.stdin.write("lock\n")
        other.stdin.flush()
        assert other.stdout.readline().strip() == "holding"
        assert Store(store.root).is_running(run_id)
    finally:
        other.kill()
        other.wait()
    assert run_ingest(_connector(catalog, ["C-095", "Al-001"], page_size=1), store, resume=True).resumed
    assert not lock.exists()


OPEN_THEN_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
print("opened", flush=True)
sys.stdin.readline()
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("holding", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO fetch_runs (run_id) VALUES ('x')",
        "CREATE TABLE evil AS SELECT 1",
        "DROP VIEW materials",
        "COPY (SELECT 1) TO 'leak.csv'",
        "ATTACH 'other.duckdb'",
        "SELECT 1; DROP VIEW materials",
    ],
)
def test_sql_refuses_anything_but_one_select(store, catalog, statement):
    run_ingest(_connector(catalog, ["H-064"]), store)
    with pytest.raises(ConfigError):
        store.query(statement)
    assert len(store.table("materials")) == 1


def test_sql_cannot_turn_on_a_setting_that_writes_files(store, catalog, tmp_path):
    run_ingest(_connector(catalog, ["H-064"]), store)
    before = sorted(path.relative_to(store.root) for path in store.root.rglob("*"))
    logs = store.data_dir / "c00000099"
    logging = f"SELECT count(*) FROM enable_logging(level='trace', storage='file', storage_path='{logs}')"
    with pytest.raises(StoreError, match="configuration has been locked"):
        store.query(f"SELECT ({logging}) + (SELECT count(*) FROM materials) AS n")
    assert sorted(path.relative_to(store.root) for path in store.root.rglob("*")) == before
    assert store.query("SELECT current_setting('temp_directory') AS spill").spill[0] == tempfile.gettempdir()


# Of the store at argv[1], the type of `fetched_at` as matreg's own reads give it, and its hour of the day by SQL in
# those reads and in `matreg sql`'s
READ_TIMES = """
import sys
from matreg.store import Store
store = Store(sys.argv[1])
sql = "SELECT fetched_at, strftime(fetched_at, '%H') AS hour FROM materials"
read = store.read(sql)
print(read["fetched_at"].dtype, read["hour"][0], store.query(sql)["hour"][0], sep="|")
"""


def test_the_stores_times_are_read_in_utc_whatever_the_hosts_zone(store, catalog):
    """Read on a host in Tokyo, the store's times are in UTC, as stored, in matreg's own reads (what its files are
    written of) as in `matreg sql`: their hour of the day too."""
    run_ingest(_connector(catalog, ["H-064"]), store)
    hour = store.table("materials")["fetched_at"][0].tz_convert("UTC").strftime("%H")
    in_tokyo = utf8_child({"TZ": "Asia/Tokyo"})
    shown = subprocess.run([sys.executable, "-c", READ_TIMES, str(store.root)], capture_output=True, **in_tokyo)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip().split("|") == ["datetime64[us, UTC]", hour, hour]


PROGRESS_BARS = """
import contextlib
import sys
from matreg.store import Store

store, sql = Store(sys.argv[1]), "SELECT current_setting('enable_progress_bar') AS shown"
with contextlib.closing(store.connect()) as con:
    print(con.execute(sql).fetchall()[0][0])
print(store.query_batches(sql, 10).read_all().column("shown")[0], next(store.read_batches(sql, rows=10))["shown"][0])
print(store.read(sql)["shown"][0])
"""


def test_no_read_of_the_store_draws_duckdbs_progress_bar_into_standard_output(store, catalog):
    """DuckDB draws a progress bar on standard output (the process's own, a file or pipe too) for a query past two
    seconds, into what `matreg sql` prints: every connection matreg reads through has it off."""
    run_ingest(_connector(catalog, ["H-064"]), store)
    shown = subprocess.run([sys.executable, "-c", PROGRESS_BARS, str(store.root)], capture_output=True, **utf8_child())
    assert (shown.returncode, shown.stdout.split()) == (0, ["False"] * 4), shown.stderr


def _storage_version(path: Path) -> str:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT tags['storage_version'] FROM duckdb_databases() WHERE NOT internal").fetchall()[0][0]


def test_the_duckdb_file_is_written_in_a_storage_format_older_duckdbs_read(store, catalog):
    """The file holds only views: written in DuckDB 1.0's format, DuckDB 0.10 to 2.x read it (2.0's own format:
    only 2.0 and later). A file an older matreg wrote in the format of its DuckDB is written again."""
    run_ingest(_connector(catalog, ["H-064"]), store)
    assert _storage_version(store.db_path) == "v1.0.0+"
    store.db_path.unlink()
    with duckdb.connect(str(store.db_path), config={"storage_compatibility_version": "latest"}) as con:
        con.execute("CREATE VIEW materials AS SELECT 1 AS record_id")
    (store.root / ".views.sha256").write_text("written by an older matreg", encoding="utf-8")
    run_ingest(_connector(catalog, ["C-095"]), store)
    assert _storage_version(store.db_path) == "v1.0.0+"
    assert store.query("SELECT count(*) FROM materials").iloc[0, 0] == 2


def test_a_duckdb_file_that_cannot_be_read_is_an_error_saying_what_to_do(store, catalog):
    """Only another process holding the file is told to open it read-only; the file holds only the views, and
    matreg's next write makes it again."""
    run_ingest(_connector(catalog, ["H-064"]), store)
    store.db_path.write_bytes(b"not a DuckDB file" * 1000)
    with pytest.raises(
        StoreError, match=r"cannot open .*matreg.duckdb: .*\(delete the file: it holds only the views"
    ) as raised:
        store.query("SELECT count(*) FROM materials")
    assert "readonly" not in str(raised.value) and raised.value.exit_code == 1  # (not a failure for now)
    store.db_path.unlink()
    run_ingest(_connector(catalog, ["C-095"]), store)
    assert store.query("SELECT count(*) FROM materials").iloc[0, 0] == 2


def test_querying_a_missing_store_says_so(tmp_path):
    with pytest.raises(StoreError, match="no matreg store"):
        Store(tmp_path / "nowhere").query("SELECT 1")


class MislabelledJanaf(JanafConnector):
    """A connector whose attribution breaks a schema rule that mapping does not check (provenance)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.attribution.provenance = "guesswork"


def test_records_breaking_a_column_rule_mapping_does_not_check_are_quarantined_when_published(store, catalog):
    run_ingest(_connector(catalog, ["H-064"]), store)
    report = run_ingest(_connector(catalog, ["C-095", "Al-001"], MislabelledJanaf, page_size=1), store)
    assert report.status == "complete" and (report.n_stored, report.n_values) == (0, 0)
    assert set(store.table("materials")["record_id"]) == {"janaf:H-064"}
    assert set(store.table("properties")["record_id"]) == {"janaf:H-064"}
    quarantine = store.table("quarantine")
    assert len(quarantine[quarantine["run_id"] == report.run_id]) == report.n_quarantined
    whole = quarantine[quarantine["item"].isin(["C-095", "Al-001"])].set_index("item")  # besides values mapping refused
    assert sorted(whole.index) == ["Al-001", "C-095"]
    reasons = whole.loc["C-095", "reasons"]
    assert any(reason.startswith("provenance: isin") and "'guesswork'" in reason for reason in reasons)
    payload = json.loads(whole.loc["C-095", "raw"])  # the record's rows, its values with it
    assert payload["materials"][0]["formula"] == "CO2"
    assert {row["record_id"] for row in payload["properties"]} == {"janaf:C-095"}
    assert -394.389 in [row["original_value"] for row in payload["properties"]]  # CO2's standard Gibbs energy, kJ/mol
    run = store.query("SELECT n_stored, n_values, n_quarantined FROM fetch_runs WHERE run_id = ?", [report.run_id])
    assert run.values.tolist() == [[0, 0, report.n_quarantined]]


def test_a_table_declared_after_the_store_was_made_gets_an_empty_file(store, catalog):
    run_ingest(_connector(catalog, ["H-064"]), store)
    for path in store.data_dir.glob("c*/**/curation_log.parquet"):
        path.unlink()  # as in a store made before curation_log existed
    run_ingest(_connector(catalog, ["C-095"]), store)
    assert store.table("curation_log").empty and len(store.table("materials")) == 2


class Pages(Connector):
    """Records given page by page (values of one formation energy), to publish exactly these runs."""

    attribution = Attribution(source="pages", provenance="dft", citation="test")

    def __init__(self, *pages: list[tuple[str, float]]) -> None:
        self.given = pages

    def run_info(self) -> RunInfo:
        return RunInfo(endpoint="memory", query="given pages")

    def pages(self, cursor=None):
        start = cursor["page"] if cursor else 0
        for number, page in enumerate(self.given[start:], start):
            items = [RawItem(source_id, {"id": source_id, "value": value}) for source_id, value in page]
            yield Page(items, {"page": number + 1} if number + 1 < len(self.given) else None)

    def to_record(self, payload: dict) -> SourceRecord:
        value = RawValue("formation_energy_per_atom", payload["value"], "eV/atom")
        return SourceRecord(source_id=payload["id"], formula="NaCl", values=[value])


class InterruptedAfter(Pages):
    """Pages whose reading the user interrupts (Ctrl-C) after `n` pages, until `resume` is set."""

    def __init__(self, n: int, *pages: list[tuple[str, float]]) -> None:
        super().__init__(*pages)
        self.n, self.interrupting = n, True

    def pages(self, cursor=None):
        for number, page in enumerate(super().pages(cursor)):
            if self.interrupting and number == self.n:
                raise KeyboardInterrupt
            yield page


def test_pages_read_before_ctrl_c_are_committed_and_the_resume_reads_only_the_rest(store):
    connector = InterruptedAfter(2, [("x", -1.0)], [("y", -2.0)], [("z", -3.0)])
    with pytest.raises(KeyboardInterrupt):
        run_ingest(connector, store)
    assert store.staged_pages() == 1 and not store.exists()  # the two pages read, in one commit
    connector.interrupting = False
    report = run_ingest(connector, store, resume=True)
    assert report.resumed and report.n_fetched == 3
    assert _energy(store) == [["pages:x", -1.0], ["pages:y", -2.0], ["pages:z", -3.0]]


class Cycle:
    """A reference cycle, as some parsed documents hold (freed only by the cyclic GC)."""

    def __init__(self, freed: list[str], name: str) -> None:
        self.me = self
        weakref.finalize(self, freed.append, name)


class CyclicPages(Pages):
    """Pages whose items each hold a cycle; notes whether the cyclic GC is on, and which cycles are freed, as each page
    is read."""

    def __init__(self, *pages: list[tuple[str, float]]) -> None:
        super().__init__(*pages)
        self.freed: list[str] = []
        self.seen: list[tuple[bool, list[str]]] = []  # per page read: GC enabled, cycles freed by then

    def pages(self, cursor=None):
        for page in super().pages(cursor):
            self.seen.append((gc.isenabled(), sorted(self.freed)))
            for item in page.items:
                item.payload["cycle"] = Cycle(self.freed, item.item_id)
            yield page


def test_the_cyclic_gc_runs_between_commits_while_a_run_reads_and_is_restored_after(store):
    connector = CyclicPages([("a", -1.0)], [("b", -2.0)], [("c", -3.0)], [("d", -4.0)])
    assert gc.isenabled()
    run_ingest(connector, store, commit_every=2, pause_gc=True)
    assert gc.isenabled() and len(store.table("materials")) == 4
    paused = [enabled for enabled, _ in connector.seen]
    assert paused == [False] * 4  # no automatic collection while pages (thousands of containers each) are alive
    assert "a" in connector.seen[2][1]  # the first commit's freed pages, collected before the third page is read
    failing = InterruptedAfter(1, [("x", -1.0)], [("y", -2.0)])
    with pytest.raises(KeyboardInterrupt):
        run_ingest(failing, store, pause_gc=True)
    assert gc.isenabled()
    unpaused = CyclicPages([("e", -5.0)])
    run_ingest(unpaused, store)  # a library caller's GC is left alone unless asked
    assert unpaused.seen[0][0]


class OtherQuery(Pages):
    def run_info(self) -> RunInfo:
        return RunInfo(endpoint="memory", query="other pages", parameters={"other": 1})


class ReadBeforeAnotherRun(Pages):
    """Pages during whose reading another process reads x again (-9.0) and publishes it, after our first page (or
    after `pages_before` pages)."""

    def __init__(self, store: Store, *pages: list[tuple[str, float]], pages_before: int = 1) -> None:
        super().__init__(*pages)
        self.store, self.pages_before = store, pages_before

    def pages(self, cursor=None):
        for number, page in enumerate(super().pages(cursor)):
            if number == self.pages_before:
                run_ingest(OtherQuery([("x", -9.0)]), self.store)
            yield page


def test_rows_carry_the_time_their_page_was_read_so_a_later_read_of_another_run_wins(store):
    report = run_ingest(ReadBeforeAnotherRun(store, [("x", -1.0)], [("y", -2.0)]), store)  # one commit, two pages
    assert report.n_superseded == 1  # x: read by the other run after our first page
    assert _energy(store) == [["pages:x", -9.0], ["pages:y", -2.0]]


def test_a_record_read_on_two_pages_is_one_stored_or_superseded_record(store):
    pages = [("x", -1.0)], [("x", -1.5), ("y", -2.0)], [("z", -3.0)]  # x shifted onto the second page too
    report = run_ingest(ReadBeforeAnotherRun(store, *pages, pages_before=2), store)  # the other run: after both
    assert (report.n_fetched, report.n_stored, report.n_values, report.n_superseded) == (4, 3, 3, 1)
    assert _energy(store) == [["pages:x", -9.0], ["pages:y", -2.0], ["pages:z", -3.0]]
    counted = "SELECT n_stored, n_values, n_superseded FROM fetch_runs WHERE run_id = ?"
    assert store.query(counted, [report.run_id]).values.tolist() == [[3, 3, 1]]


class Given(Pages):
    """Pages whose entries name what each read of a record gives: values of formation energy (eV/atom) and band gap
    (eV), and the rest as its attributes (of the lab-sample extension, once `extension` is set)."""

    UNITS = {"formation_energy_per_atom": "eV/atom", "band_gap": "eV"}

    def to_record(self, payload: dict) -> SourceRecord:
        given = payload["value"]
        values = [RawValue(name, given[name], unit) for name, unit in self.UNITS.items() if name in given]
        attributes = {name: value for name, value in given.items() if name not in self.UNITS}
        return SourceRecord(source_id=payload["id"], formula="NaCl", values=values, attributes=attributes)


class GivenUntilInterrupted(Given, InterruptedAfter):
    """Given pages whose reading the user interrupts after `n` pages, until `interrupting` is cleared."""


ENERGY, GAP = "formation_energy_per_atom", "band_gap"
# x read on the first and third pages, by two calculations: the first's gap is no value of the second's
READ_AGAIN = [("x", {ENERGY: -1.0, GAP: 1.5})], [("y", {ENERGY: -2.0})], [("x", {ENERGY: -3.0})]


def _shown(store: Store, table: str = "properties", columns: str = "property, value") -> list:
    return store.query(f"SELECT record_id, {columns} FROM {table} ORDER BY ALL").values.tolist()


def _written(store: Store, table: str = "properties") -> int:
    return store.query(f"SELECT count(*) FROM read_parquet('data/c*/**/{table}.parquet')").iloc[0, 0]


def _assert_last_read_of_x_alone_shown(store: Store, report) -> None:
    assert _shown(store) == [["pages:x", ENERGY, -3.0], ["pages:y", ENERGY, -2.0]]  # x's gap: of its earlier read
    assert (report.n_stored, report.n_values, report.n_reread) == (2, 2, 1)
    counted = "SELECT n_stored, n_values FROM fetch_runs WHERE run_id = ?"
    assert store.query(counted, [report.run_id]).values.tolist() == [[2, 2]]
    assert _written(store) == 2 and len(store.query("SELECT * FROM properties_wide")) == 2


@pytest.mark.parametrize("commit_every", [1000, 1], ids=["one commit", "a commit a page"])
def test_a_record_read_on_two_pages_shows_the_values_of_its_last_read_only(store, commit_every):
    report = run_ingest(Given(*READ_AGAIN), store, commit_every=commit_every)
    _assert_last_read_of_x_alone_shown(store, report)


def test_a_record_read_again_after_the_run_was_resumed_shows_the_values_of_its_last_read_only(store):
    connector = GivenUntilInterrupted(2, *READ_AGAIN)
    with pytest.raises(KeyboardInterrupt):
        run_ingest(connector, store)  # x's first read staged, then the user stops the run
    connector.interrupting = False
    report = run_ingest(connector, store, resume=True)
    assert report.resumed
    _assert_last_read_of_x_alone_shown(store, report)


def _resumed_as_staged_by_an_older_matreg(store: Store, older: Callable[[dict, dict], tuple[dict, pa.Table]]):
    """Interrupt a run of READ_AGAIN, stage its journal again as `older(tables, run row)` gives it (what an older
    matreg staged), and resume it."""
    connector = GivenUntilInterrupted(2, *READ_AGAIN)
    with pytest.raises(KeyboardInterrupt):
        run_ingest(connector, store)
    (run_id,) = store.staged_runs()
    journal = RunJournal(store.staging_dir / run_id)
    run_row, sizes = journal.committed()
    tables, run_table = older({name: pa.concat_tables(journal.tables(name, sizes)) for name in sizes}, run_row)
    shutil.rmtree(journal.directory)
    RunJournal(journal.directory).append(tables, run_table)
    connector.interrupting = False
    return run_ingest(connector, Store(store.root), resume=True)


def test_a_run_staged_by_a_matreg_that_numbered_no_reads_is_resumed_with_the_last_read_alone(store):
    def unnumbered(tables: dict, run_row: dict) -> tuple[dict, pa.Table]:
        return {name: table.drop_columns(["read"]) for name, table in tables.items()}, arrow_table(
            "fetch_runs", [run_row]
        )

    _assert_last_read_of_x_alone_shown(store, _resumed_as_staged_by_an_older_matreg(store, unnumbered))


def test_a_run_staged_by_a_matreg_of_an_older_schema_is_resumed(store):
    def older_schema(tables: dict, run_row: dict) -> tuple[dict, pa.Table]:
        # That matreg declared properties.original_value non-nullable and fetch_runs without not_read_again.
        properties = tables["properties"]
        field = properties.schema.get_field_index("original_value")
        older = properties.schema.set(field, pa.field("original_value", pa.float64(), nullable=False))
        run_table = arrow_table("fetch_runs", [run_row]).drop_columns(["not_read_again"])
        return tables | {"properties": properties.cast(older)}, run_table

    _assert_last_read_of_x_alone_shown(store, _resumed_as_staged_by_an_older_matreg(store, older_schema))


@pytest.mark.parametrize("bucket_rows", [100_000, 1])
def test_a_record_is_compared_with_the_store_as_its_last_read_gives_it(store, monkeypatch, bucket_rows):
    monkeypatch.setattr("matreg.store.publish.PUBLISH_BUCKET_ROWS", bucket_rows)  # 1: every row its own part, about
    first = run_ingest(Given([("x", {ENERGY: -3.0})], [("y", {ENERGY: -2.0, GAP: 1.5})]), store)
    pages = [("x", {ENERGY: -1.0, GAP: 1.5}), ("y", {ENERGY: -2.0, GAP: 1.5})], [("x", {ENERGY: -3.0})]
    again = run_ingest(Given(*pages, [("y", {ENERGY: -2.0})]), store, commit_every=1)
    assert (again.n_stored, again.n_values, again.n_unchanged) == (2, 2, 1)  # x as stored; y's gap no longer given
    assert _shown(store, columns="property, value, run_id") == [
        ["pages:x", ENERGY, -3.0, first.run_id],
        ["pages:y", ENERGY, -2.0, again.run_id],
    ]


@pytest.mark.parametrize("commit_every", [1000, 1], ids=["one commit", "a commit a page"])
def test_a_later_read_quarantined_leaves_the_earlier_valid_read_whole(store, commit_every):
    pages = [("x", {ENERGY: -1.0, GAP: 1.5})], [("x", {ENERGY: "n/a"})]  # read again with no valid value
    report = run_ingest(Given(*pages), store, commit_every=commit_every)
    assert (report.n_stored, report.n_values, report.n_quarantined) == (1, 2, 1)
    assert _shown(store) == [["pages:x", GAP, 1.5], ["pages:x", ENERGY, -1.0]]


@pytest.mark.parametrize("commit_every", [1000, 1], ids=["one commit", "a commit a page"])
def test_a_record_read_on_two_pages_shows_the_attributes_of_its_last_read_only(store, commit_every):
    sample = {ENERGY: -1.0, "sample_id": "s1", "synthesis_route": "sol-gel"}
    pages = [("x", sample | {"instrument": "XRD-1"})], [("y", sample | {"sample_id": "s2"})], [("x", sample)]
    connector = Given(*pages)
    connector.extension = "lab-sample"
    run_ingest(connector, store, commit_every=commit_every)
    assert _shown(store, "record_attributes", "attribute, value") == [
        ["pages:x", "sample_id", "s1"],  # not the earlier read's instrument
        ["pages:x", "synthesis_route", "sol-gel"],
        ["pages:y", "sample_id", "s2"],
        ["pages:y", "synthesis_route", "sol-gel"],
    ]
    assert _written(store, "record_attributes") == 4


def test_jsonl_files_keep_every_digit_and_microsecond(tmp_path):
    fetched = pd.Timestamp("2026-12-03 13:58:12.123456", tz="UTC")
    frame = pd.DataFrame(
        {"value": [1.23456789e-5, 5.3e-19, float("nan")], "fetched_at": [fetched] * 3}
        | {"elements": [numpy.array(["Na", "Cl"], dtype=object)] * 3}
    )
    path = Store.write_file(frame, tmp_path / "out.jsonl", "jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [row["value"] for row in rows] == [1.23456789e-5, 5.3e-19, None]
    assert rows[0]["fetched_at"] == "2026-12-03T13:58:12.123456+00:00" and rows[0]["elements"] == ["Na", "Cl"]


def test_csv_files_write_each_time_column_at_one_precision(tmp_path):
    """Times were written one by one after the CSV writer moved off pandas: a time on the whole second lost its
    fraction beside times that have one, and pandas.to_datetime, inferring the column's format from its first cell,
    refused the file's other times. Each time is written to the microsecond, as `matreg sql --format csv` prints it,
    NULL as an empty cell."""
    times = ["2026-12-03 13:58:12", "2026-12-03 13:58:12.5", None, "2026-12-04"]
    frame = pd.DataFrame({"n": range(4), "fetched_at": pd.to_datetime(times, utc=True, format="ISO8601")})
    path = Store.write_file(frame, tmp_path / "out.csv", "csv")
    assert path.read_text(encoding="utf-8").splitlines() == [
        "n,fetched_at",
        "0,2026-12-03 13:58:12.000000+00:00",
        "1,2026-12-03 13:58:12.500000+00:00",
        "2,",
        "3,2026-12-04 00:00:00.000000+00:00",
    ]
    read = pd.to_datetime(pd.read_csv(path)["fetched_at"])  # (its format inferred from the first cell)
    assert read.equals(frame["fetched_at"].dt.as_unit(read.dt.unit))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_text_exports_convert_the_rows_a_batch_at_a_time(tmp_path, fmt):
    """A CSV or JSONL export converted the whole frame to Python objects at once (an object copy of every cell,
    JSONL a dict per row besides): writing a release of 1,031,025 rows took 1.5 and 2.1 GB beyond its 406 MB frame.
    The rows are converted a batch at a time: what the write allocates stays below the frame's own size."""
    rows = 100_000
    frame = pd.DataFrame(
        {
            "value": numpy.arange(rows) / 7,
            "uncertainty": numpy.where(numpy.arange(rows) % 3 == 0, numpy.nan, 0.1),
            "temperature_K": 298.15,
            "pressure_Pa": numpy.nan,
        }
    )
    tracemalloc.start()
    try:
        path = Store.write_file(frame, tmp_path / f"out.{fmt}", fmt)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < frame.memory_usage(deep=True).sum()  # (before: 5 times it, JSONL 9)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == rows + (fmt == "csv")
    if fmt == "csv":
        assert lines[-2:] == [f"{99_998 / 7!r},0.1,298.15,", f"{99_999 / 7!r},,298.15,"]
    else:
        assert [json.loads(line) for line in lines[-2:]] == [
            {"value": 99_998 / 7, "uncertainty": 0.1, "temperature_K": 298.15, "pressure_Pa": None},
            {"value": 99_999 / 7, "uncertainty": None, "temperature_K": 298.15, "pressure_Pa": None},
        ]


def _energy(store: Store) -> list:
    return store.query("SELECT record_id, value FROM properties ORDER BY record_id").values.tolist()


def test_only_a_runs_last_row_of_a_key_is_compared_with_the_stored_one(store):
    first = run_ingest(Pages([("x", -1.0), ("y", -2.0)]), store)
    back = run_ingest(Pages([("x", -1.5)], [("x", -1.0), ("y", -2.0)]), store)  # x changes, then changes back
    assert _energy(store) == [["pages:x", -1.0], ["pages:y", -2.0]]
    assert back.n_unchanged == 2 and set(store.table("properties")["run_id"]) == {first.run_id}
    later = run_ingest(Pages([("x", -1.0)], [("x", -3.0)]), store)
    assert _energy(store) == [["pages:x", -3.0], ["pages:y", -2.0]]
    assert later.n_unchanged == 0  # only x's value changed, but a record with a changed value is written whole
    assert store.query("SELECT run_id FROM materials WHERE record_id = 'pages:x'").iloc[0, 0] == later.run_id


def test_a_record_read_twice_in_one_page_is_stored_and_counted_once(store):
    report = run_ingest(Pages([("x", -1.0), ("y", -2.0), ("x", -3.0)]), store)
    assert (report.n_fetched, report.n_stored, report.n_values) == (3, 2, 2)
    assert _energy(store) == [["pages:x", -3.0], ["pages:y", -2.0]]
    assert store.query("SELECT count(*) FROM read_parquet('data/c*/**/properties.parquet')").iloc[0, 0] == 2


class GapsWhereGiven(Pages):
    """Pages whose records also give a band gap of 1.5 eV, except the records named `without`."""

    def __init__(self, *pages: list[tuple[str, float]], without: tuple[str, ...] = ()) -> None:
        super().__init__(*pages)
        self.without = without

    def to_record(self, payload: dict) -> SourceRecord:
        record = super().to_record(payload)
        if payload["id"] not in self.without:
            record.values.append(RawValue("band_gap", 1.5, "eV"))
        return record


def test_a_value_a_source_no_longer_gives_is_no_longer_shown(store):
    first = run_ingest(GapsWhereGiven([("x", -1.0), ("y", -2.0)]), store)
    again = run_ingest(GapsWhereGiven([("x", -1.0), ("y", -2.0)], without=("x",)), store)  # x's gap is gone
    assert (again.n_stored, again.n_unchanged) == (2, 1)  # x, its energy as it was, is written again
    values = store.query("SELECT record_id, property, value, run_id FROM properties ORDER BY ALL").values.tolist()
    assert values == [
        ["pages:x", "formation_energy_per_atom", -1.0, again.run_id],
        ["pages:y", "band_gap", 1.5, first.run_id],
        ["pages:y", "formation_energy_per_atom", -2.0, first.run_id],
    ]
    assert len(store.query("SELECT * FROM properties_wide")) == 2


class GapsOfScope(GapsWhereGiven):
    """GapsWhereGiven read as one part of each record (`scope`), as a lab file or a narrower query reads it."""

    def __init__(self, scope: str, *pages: list[tuple[str, float]], without: tuple[str, ...] = ()) -> None:
        super().__init__(*pages, without=without)
        self.attribution = dataclasses.replace(Pages.attribution, scope=scope)


def _values(store: Store) -> list:
    return store.query("SELECT property, run_id FROM properties ORDER BY property").values.tolist()


def test_a_write_of_another_scope_leaves_the_values_it_did_not_read_shown(store):
    whole = run_ingest(GapsWhereGiven([("x", -1.0)]), store)  # all of x: its energy and its gap
    same = run_ingest(GapsOfScope("energies.csv", [("x", -1.0)], without=("x",)), store)  # a part, as stored
    assert same.n_unchanged == 1  # the other scope's gap is not "missing" from it
    part = run_ingest(GapsOfScope("energies.csv", [("x", -1.5)], without=("x",)), store)  # a part, changed
    assert part.n_unchanged == 0
    assert _values(store) == [["band_gap", whole.run_id], ["formation_energy_per_atom", part.run_id]]
    withdrawn = run_ingest(GapsWhereGiven([("x", -1.0)], without=("x",)), store)  # the whole record, gap gone
    assert _values(store) == [["formation_energy_per_atom", withdrawn.run_id]]


def test_what_a_run_leaves_out_is_decided_while_it_holds_the_store_lock(store, monkeypatch):
    run_ingest(Pages([("x", -1.0)]), store)
    decide, held = Store._changed_records, []

    def deciding(self, owner, *args):
        other = filelock.FileLock(str(store.root / ".lock"), timeout=0)
        with pytest.raises(filelock.Timeout):  # another process would wait until this run's commit is in place
            other.acquire()
        held.append(owner)
        return decide(self, owner, *args)

    monkeypatch.setattr(Store, "_changed_records", deciding)
    run_ingest(Pages([("x", -2.0)]), store)
    assert held == ["materials"] and _energy(store) == [["pages:x", -2.0]]


def test_a_store_written_before_records_were_written_whole_shows_every_current_row(store):
    run_ingest(GapsWhereGiven([("x", -1.0)]), store)
    changed = run_ingest(GapsWhereGiven([("x", -2.0)]), store)
    # As matreg wrote a changed record before: its changed rows only, materials without `written_whole`.
    commit = store.query("SELECT filename FROM read_parquet('data/c*/**/properties.parquet', filename = true)")
    newest = max(commit["filename"])
    properties = pq.read_table(store.root / newest)
    pq.write_table(
        properties.filter(pc.equal(properties["property"], "formation_energy_per_atom")), store.root / newest
    )
    materials_file = store.root / newest.replace("properties", "materials")
    pq.write_table(pq.read_table(materials_file).drop_columns(["written_whole"]), materials_file)
    values = store.query("SELECT property, value, run_id FROM properties ORDER BY property").values.tolist()
    assert values[0][0] == "band_gap" and values[0][2] != changed.run_id  # the older run's, still shown
    assert values[1] == ["formation_energy_per_atom", -2.0, changed.run_id]


class SpaceGroupsAsSent(Pages):
    """Pages whose records carry the space group number the source sent, as a mapping might pass on: 0 for the
    record 'zero' and for reads of the value -2.0."""

    def to_record(self, payload: dict) -> SourceRecord:
        record = super().to_record(payload)
        record.spacegroup_number = 0 if payload["id"] == "zero" or payload["value"] == -2.0 else 225
        return record


class SitesAsSent(Pages):
    """Pages whose records carry the count of sites the source sent: none for 'empty', a negative one for 'minus'."""

    def to_record(self, payload: dict) -> SourceRecord:
        record = super().to_record(payload)
        record.nsites = {"empty": 0, "minus": -3}.get(payload["id"], 2)
        return record


def test_a_record_of_no_sites_or_fewer_is_quarantined_by_the_schemas_rule(store):
    report = run_ingest(SitesAsSent([("x", -1.0), ("empty", -2.0), ("minus", -3.0)]), store)
    assert (report.n_stored, report.n_quarantined) == (1, 2)
    reasons = store.query("SELECT item, reasons[1] FROM quarantine ORDER BY item").values.tolist()
    assert reasons == [
        ["empty", "nsites: greater_than_or_equal_to(1.0) failed for 0"],
        ["minus", "nsites: greater_than_or_equal_to(1.0) failed for -3"],
    ]


def test_one_record_breaking_a_column_rule_is_quarantined_and_the_run_published(store):
    report = run_ingest(SpaceGroupsAsSent([("x", -1.0), ("zero", -2.0)], [("y", -3.0)]), store)
    assert (report.status, report.n_stored, report.n_values, report.n_quarantined) == ("complete", 2, 2, 1)
    assert _energy(store) == [["pages:x", -1.0], ["pages:y", -3.0]]
    quarantined = store.table("quarantine")
    assert quarantined["item"].tolist() == ["zero"]
    assert quarantined["reasons"].iloc[0].tolist() == ["spacegroup_number: greater_than_or_equal_to(1.0) failed for 0"]
    assert report.reasons["spacegroup_number: greater_than_or_equal_to(1.0) failed for 0"] == 1


@pytest.mark.parametrize("bucket_rows", [100_000, 1])
def test_a_run_is_compared_with_the_store_in_parts_with_the_outcome_of_one_comparison(store, monkeypatch, bucket_rows):
    monkeypatch.setattr("matreg.store.publish.PUBLISH_BUCKET_ROWS", bucket_rows)  # 1: every row its own part, about
    run_ingest(SpaceGroupsAsSent([("x", -1.0), ("y", -2.5), ("z", -3.0)]), store)
    second = SpaceGroupsAsSent([("x", -1.5), ("y", -2.5)], [("x", -1.0), ("w", -4.0), ("zero", -5.0)])
    report = run_ingest(second, store)
    counts = (report.n_stored, report.n_values, report.n_unchanged, report.n_quarantined)
    assert counts == (3, 3, 2, 1)  # valid records (x, read twice, once); x (its last read as stored), y unchanged
    assert _energy(store) == [["pages:w", -4.0], ["pages:x", -1.0], ["pages:y", -2.5], ["pages:z", -3.0]]
    newest = sorted(store.data_dir.iterdir())[-1]
    written = store.query(f"SELECT record_id FROM read_parquet('{newest}/materials.parquet')")
    assert written["record_id"].tolist() == ["pages:w"]  # the earlier read of x and the unchanged rows: not written


def test_a_dry_run_counts_what_publishing_would_quarantine(store):
    connector = SpaceGroupsAsSent([("x", -1.0), ("zero", -2.0)], [("y", -3.0), ("w", -2.0)])
    connector.read_mode = ReadMode(preview_pages=None)  # every page, as a dry run of a local file maps
    preview = run_ingest(connector, store, dry_run=True)
    assert not store.exists()
    real = run_ingest(connector, store)
    counts = [(run.n_stored, run.n_values, run.n_quarantined, dict(run.reasons)) for run in (preview, real)]
    assert counts == [(2, 2, 2, {"spacegroup_number: greater_than_or_equal_to(1.0) failed for 0": 2})] * 2


@pytest.mark.parametrize(
    "reads", [[[("x", -2.0)], [("x", -1.0)]], [[("x", -1.0)], [("x", -2.0)]], [[("x", -1.0), ("x", -2.0)]]]
)
def test_a_record_read_twice_with_one_read_breaking_a_rule_is_quarantined_whole(store, reads):
    report = run_ingest(SpaceGroupsAsSent(*reads), store)
    assert (report.n_stored, report.n_values, report.n_quarantined) == (0, 0, 1)
    assert store.table("materials").empty and store.table("properties").empty
    assert store.table("quarantine")["item"].tolist() == ["x"]


def test_a_record_refused_at_publish_is_counted_out_whichever_batch_its_other_read_is_in(store, monkeypatch):
    run_ingest(Pages([("x", -1.0)]), store)
    monkeypatch.setattr("matreg.store.PUBLISH_BATCH_BYTES", 1)  # every page its own batch
    report = run_ingest(SpaceGroupsAsSent([("x", -1.0)], [("x", -2.0)]), store)
    assert (report.n_stored, report.n_values, report.n_unchanged, report.n_quarantined) == (0, 0, 0, 1)
    assert _energy(store) == [["pages:x", -1.0]]  # the stored read stays


def test_a_record_rejected_at_publish_is_one_quarantine_row_however_often_fetched(store):
    first = run_ingest(SpaceGroupsAsSent([("x", -1.0), ("zero", -3.0)]), store)
    second = run_ingest(SpaceGroupsAsSent([("x", -1.0), ("zero", -3.0)]), store)
    assert first.n_quarantined == second.n_quarantined == 1 and second.n_unchanged == 1
    assert store.query("SELECT count(*) FROM read_parquet('data/c*/**/quarantine.parquet')").iloc[0, 0] == 1


def test_a_value_breaking_a_rule_of_whole_rows_gets_that_rule_as_its_one_reason(store):
    from matreg.ingest import _PublishCheck
    from matreg.runs import RunReport

    run_ingest(Pages([("x", -1.0), ("y", -2.0)]), store)
    properties = pa.Table.from_pandas(store.table("properties"), schema=arrow_schema("properties"))
    bad = properties.set_column(2, "value", pa.array([-1.0, -1e9]))  # outside the property's bounds
    check = _PublishCheck(RunReport("run", "pages", pd.Timestamp.now("UTC"), n_values=2), Pages.attribution)
    assert check.admit("properties", bad)["record_id"].to_pylist() == ["pages:x"]
    assert [row["reasons"] for row in check.withheld()] == [
        ["value in canonical unit and within the property's bounds failed"]
    ]


def test_a_value_breaking_a_column_rule_alone_is_quarantined_alone(store):
    from matreg.ingest import _PublishCheck
    from matreg.runs import RunReport

    run_ingest(Pages([("x", -1.0), ("y", -2.0)]), store)
    properties = pa.Table.from_pandas(store.table("properties"), schema=arrow_schema("properties"))
    at = properties.schema.get_field_index("provenance")
    bad = properties.set_column(at, "provenance", pa.array(["dft", "measured"]))  # as a rule added later would catch
    report = RunReport("run", "pages", pd.Timestamp.now("UTC"), n_values=2)
    check = _PublishCheck(report, Pages.attribution)
    assert check.admit("properties", bad)["record_id"].to_pylist() == ["pages:x"]
    (row,) = check.withheld()
    assert (row["record_id"], row["scope"]) == ("pages:y", "")
    assert row["item"] == "y:formation_energy_per_atom" and row["reasons"] == [
        "provenance: isin(['experimental', 'dft', 'simulated']) failed for 'measured'"
    ]
    assert json.loads(row["raw"])["properties"]["value"] == -2.0
    assert (report.n_values, report.n_quarantined) == (1, 1)


class QueryPages(Pages):
    """Pages of one named query; `interrupted` stops the run after its first page, as a dropped connection would."""

    def __init__(self, query: str, *pages: list[tuple[str, float]], interrupted: bool = False) -> None:
        super().__init__(*pages)
        self.query, self.interrupted = query, interrupted

    def run_info(self) -> RunInfo:
        return RunInfo(endpoint="memory", query=self.query, parameters={"query": self.query})

    def pages(self, cursor=None):
        for page in super().pages(cursor):
            yield page
            if self.interrupted:
                raise RuntimeError("connection reset")


def test_a_resumed_run_keeps_the_values_of_a_newer_run_that_changed_only_values(store):
    run_ingest(QueryPages("c", [("x", -1.0)]), store)
    with pytest.raises(RuntimeError):
        run_ingest(QueryPages("a", [("x", -3.0)], [("y", -2.0)], interrupted=True), store)
    run_ingest(QueryPages("b", [("x", -5.0)]), store)  # x's materials row as stored: only its value changed
    run_ingest(QueryPages("a", [("x", -3.0)], [("y", -2.0)]), store, resume=True)
    assert _energy(store) == [["pages:x", -5.0], ["pages:y", -2.0]]


def test_a_resumed_run_keeps_the_values_of_a_resumed_run_that_read_them_later(store):
    run_ingest(QueryPages("c", [("x", -1.0)]), store)  # x stored: later reads change only its value
    with pytest.raises(RuntimeError):
        run_ingest(QueryPages("q", [("z", -7.0)], [("x", -5.0)], interrupted=True), store)  # q starts first
    with pytest.raises(RuntimeError):
        run_ingest(QueryPages("r", [("x", -3.0)], [("y", -2.0)], interrupted=True), store)  # r reads x
    run_ingest(QueryPages("q", [("z", -7.0)], [("x", -5.0)]), store, resume=True)  # q reads x later, publishes
    run_ingest(QueryPages("r", [("x", -3.0)], [("y", -2.0)]), store, resume=True)
    assert _energy(store) == [["pages:x", -5.0], ["pages:y", -2.0], ["pages:z", -7.0]]


def test_a_run_resumed_after_a_newer_run_read_its_records_does_not_publish_older_reads_over_them(store):
    with pytest.raises(RuntimeError):
        run_ingest(QueryPages("a", [("x", -1.0)], [("y", -2.0)], interrupted=True), store)  # x read, then stopped
    newer = run_ingest(QueryPages("b", [("x", -5.0), ("y", -6.0)]), store)  # another query reads x and y later
    resumed = run_ingest(QueryPages("a", [("x", -1.0)], [("y", -2.0)]), store, resume=True)  # y is read last
    assert _energy(store) == [["pages:x", -5.0], ["pages:y", -2.0]]
    stored_values = store.query("SELECT record_id, run_id FROM properties ORDER BY record_id")["run_id"].tolist()
    assert stored_values == [newer.run_id, resumed.run_id]
    assert (resumed.n_stored, resumed.n_unchanged, resumed.n_superseded) == (2, 0, 1)  # x: newer in the store
    counted = "SELECT n_stored, n_unchanged, n_superseded FROM fetch_runs WHERE run_id = ?"
    assert store.query(counted, [resumed.run_id]).values.tolist() == [[2, 0, 1]]


def test_a_store_lock_another_process_holds_too_long_is_a_store_error(store, monkeypatch):
    """The run waits LOCK_WAIT_S once (recording its failure tries the lock without waiting a second time) and says
    that the staged run is published by a resume (a plain re-run would drop it)."""
    run_ingest(Pages([("x", -1.0)]), store)
    monkeypatch.setattr("matreg.store.LOCK_WAIT_S", 2)
    waits = lock_waits(monkeypatch, store.root / ".lock")
    busy = "the store is busy: another matreg process holds .*\\.lock; run the same command with --resume to publish"
    with another_process_holding(store.root / ".lock"), pytest.raises(StoreBusy, match=busy):
        run_ingest(Pages([("y", -2.0)]), store)
    assert waits == [2, 0]  # publishing waited once; the failure's record found the lock taken and gave up at once
    assert _energy(store) == [["pages:x", -1.0]]
    assert run_ingest(Pages([("y", -2.0)]), store, resume=True).status == "complete"  # once the lock is free
    assert _energy(store) == [["pages:x", -1.0], ["pages:y", -2.0]]


def test_publishing_removes_what_killed_processes_left_and_keeps_what_others_write(store):
    run_ingest(Pages([("x", -1.0)]), store)
    half_commit, fresh_commit = store.tmp_dir / ("a" * 32), store.tmp_dir / ("b" * 32)
    never_staged = store.staging_dir / "20260101T000000000000Z-pages-0123dead"
    being_staged = store.staging_dir / "20260101T000000000000Z-pages-4567beef"
    for folder in (half_commit, fresh_commit, never_staged, being_staged):
        folder.mkdir(parents=True)
        (folder / "materials.parquet").write_bytes(b"half written")
    stray = store.tmp_dir / ".DS_Store"  # a file some other program put there
    stray.write_bytes(b"")
    two_hours_ago = time.time() - 7200  # (pd.Timestamp.now() is local time: read as UTC, hours off east of it)
    os.utime(stray, (two_hours_ago, two_hours_ago))
    for folder in (half_commit, never_staged, being_staged):
        for path in (folder / "materials.parquet", folder):
            os.utime(path, (two_hours_ago, two_hours_ago))
    os.utime(fresh_commit / "materials.parquet", (two_hours_ago, two_hours_ago))  # its folder: just now
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(store.root / "locks" / f"{being_staged.name}.lock")],
        stdout=subprocess.PIPE,
        **utf8_child(),
    )
    try:
        assert holder.stdout.readline().strip() == "holding"  # another process writes that run
        run_ingest(Pages([("y", -2.0)]), store)
    finally:
        holder.kill()
        holder.wait()
    assert not half_commit.exists() and not never_staged.exists()
    assert fresh_commit.exists() and being_staged.exists() and stray.exists()  # (not a name matreg gives)
    assert _energy(store) == [["pages:x", -1.0], ["pages:y", -2.0]]


def test_a_resume_whose_run_a_fresh_fetch_dropped_meanwhile_is_refused_not_continued_with_a_gap(store, monkeypatch):
    with pytest.raises(RuntimeError):
        run_ingest(QueryPages("a", [("x", -1.0)], [("y", -2.0)], interrupted=True), store)  # x staged, then stopped
    claim = Store.claim_run

    def dropped_before_claimed(self, run_id):  # a fresh fetch of the query in another process, just before
        self.discard_run(run_id)
        claim(self, run_id)

    monkeypatch.setattr(Store, "claim_run", dropped_before_claimed)
    with pytest.raises(StoreError, match="nothing to resume: run .* was dropped by a fresh fetch of the same query"):
        run_ingest(QueryPages("a", [("x", -1.0)], [("y", -2.0)]), store, resume=True)
    assert not store.exists() or store.table("materials").empty


def test_an_export_and_its_sidecar_are_renamed_into_place_only_once_both_are_written(tmp_path, monkeypatch):
    out, sidecar = tmp_path / "x.csv", tmp_path / "x.csv.meta.json"
    first, second = pd.DataFrame({"a": [1]}), pd.DataFrame({"a": [2]})
    Store.write_file_with_sidecar(first, out, "csv", _hashed)
    written = out.read_bytes()

    def unwritable(data):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):  # the sidecar cannot be written: nothing changes
        Store.write_file_with_sidecar(second, out, "csv", unwritable)
    assert out.read_bytes() == written and json.loads(sidecar.read_text()) == _hashed(out)
    replaced = []

    def interrupted_after_one_rename(source, destination):
        if replaced:
            raise KeyboardInterrupt
        replaced.append(Path(destination))
        os.rename(source, destination)

    monkeypatch.setattr(os, "replace", interrupted_after_one_rename)  # Ctrl-C between the two renames
    with pytest.raises(KeyboardInterrupt):
        Store.write_file_with_sidecar(second, out, "csv", _hashed)
    monkeypatch.undo()
    assert replaced == [sidecar] and out.read_bytes() == written  # the new sidecar first: the old data file stays,
    assert json.loads(sidecar.read_text()) != _hashed(out)  # which its sha256 does not match
    assert sorted(path.name for path in tmp_path.iterdir()) == ["x.csv", "x.csv.meta.json"]  # no temp file left


def _hashed(data: Path) -> dict:
    return {"sha256": hashlib.sha256(data.read_bytes()).hexdigest()}


def test_a_disk_full_under_duckdb_is_no_space_naming_the_file_and_leaves_no_write_ahead_log(tmp_path):
    """DuckDB says a full disk in its own error, no OSError (writing the store's views, a COPY): it was a traceback,
    exit 1, and the temp database's write-ahead log (`<temp>.wal`), named as no matreg temp, stayed for good."""
    views = tmp_path / "matreg.duckdb"

    def write(temp: Path) -> None:
        con = duckdb.connect(str(temp))
        con.execute("CREATE TABLE t AS SELECT 1 AS i")
        Path(f"{temp}.wal").write_bytes(b"log")  # (as DuckDB leaves one beside a database it was writing)
        con.close()
        raise duckdb.IOException(f'IO Error: Could not write file "{temp}.wal": No space left on device')

    with pytest.raises(NoSpace, match=f"^cannot write {re.escape(str(views))}: No space left on device"):
        atomic_write(views, write)
    assert list(tmp_path.iterdir()) == []
    leftover = tmp_path / f".matreg.duckdb.{'0' * 32}.tmp.wal"  # (one a killed write left)
    leftover.write_bytes(b"log")
    os.utime(leftover, (0, 0))
    remove_old_temps(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_read_the_disk_is_too_full_to_spill_is_no_space_naming_the_temp_folder(store, catalog, monkeypatch):
    """matreg's own reads spill into the temp folder too (not into a '.tmp' folder of the current one): with the disk
    nearly full there, NoSpace naming it (it was DuckDB's OutOfMemoryException, a traceback in the CLI)."""
    run_ingest(_connector(catalog, ["H-064"]), store)
    assert single_value(store.read("select current_setting('temp_directory')")) == tempfile.gettempdir()
    no_space_to_spill(monkeypatch)
    folder = re.escape(tempfile.gettempdir())
    with pytest.raises(NoSpace, match=f"^cannot write {folder}: No space left on device \\(ENOSPC\\)"):
        Store(store.root).read(SPILLING)  # (a Store of its own: its DuckDB database opened as patched)


def test_a_staged_folder_appears_whole_and_a_failed_one_leaves_nothing(tmp_path):
    final = tmp_path / "out" / "folder"
    with pytest.raises(NoSpace, match="No space left"), atomic_dir(final) as staging:
        (staging / "a.txt").write_text("a")
        raise OSError(28, "No space left on device")  # what a full disk says mid-write
    assert list(final.parent.iterdir()) == []
    final.mkdir()
    (final / "mine.txt").write_text("mine")
    with pytest.raises(OSError, match="Directory not empty"), atomic_dir(final) as staging:
        (staging / "a.txt").write_text("a")  # written whole; the rename onto a folder that holds files fails
    assert [path.name for path in final.parent.iterdir()] == ["folder"]
    assert [path.name for path in final.iterdir()] == ["mine.txt"]
    shutil.rmtree(final)
    with atomic_dir(final) as staging:
        (staging / "a.txt").write_text("a")
        assert not final.exists()
    assert [path.name for path in final.parent.iterdir()] == ["folder"] and (final / "a.txt").read_text() == "a"


def test_a_staged_folder_replaces_the_one_there_whole_and_a_failed_one_leaves_it_as_it_was(tmp_path):
    """`replace_dir` (a torch export's publish): a staged folder goes where none is, or in place of the folder there
    (an empty one too), which is gone after, with no temp name left beside it; a failure while staging leaves the
    folder there as it was."""
    final = tmp_path / "export"
    final.mkdir()
    with atomic_dir(final, replace_dir) as staging:
        (staging / "a.txt").write_text("first")
    assert [path.name for path in final.iterdir()] == ["a.txt"]
    with pytest.raises(NoSpace, match="No space left"), atomic_dir(final, replace_dir) as staging:
        (staging / "b.txt").write_text("half")
        raise OSError(28, "No space left on device")  # what a full disk says mid-write
    assert [path.name for path in tmp_path.iterdir()] == ["export"]
    assert [path.name for path in final.iterdir()] == ["a.txt"] and (final / "a.txt").read_text() == "first"
    with atomic_dir(final, replace_dir) as staging:
        (staging / "b.txt").write_text("second")
    assert [path.name for path in tmp_path.iterdir()] == ["export"]
    assert [path.name for path in final.iterdir()] == ["b.txt"] and (final / "b.txt").read_text() == "second"
    shutil.rmtree(final)
    with atomic_dir(final, replace_dir) as staging:
        (staging / "c.txt").write_text("third")
    assert [path.name for path in tmp_path.iterdir()] == ["export"] and (final / "c.txt").read_text() == "third"


def test_a_folder_whose_replacement_cannot_be_renamed_in_is_put_back_whole(tmp_path, monkeypatch):
    """`replace_dir` renames the folder there aside, then the staged one in: where that second rename failed, the old
    folder was left under its temp name (which `remove_old_temps` later removes) and none at its own."""
    final = tmp_path / "export"
    with atomic_dir(final, replace_dir) as staging:
        (staging / "a.txt").write_text("first")
    renames = []

    def rename_in_refused(source, target):
        renames.append(Path(target).name)
        if Path(source).name != "export" and Path(target).name == "export" and len(renames) == 2:
            raise OSError(errno.EIO, "Input/output error")
        real_rename(source, target)

    real_rename = os.rename
    monkeypatch.setattr(os, "rename", rename_in_refused)
    with pytest.raises(OSError, match="Input/output error"), atomic_dir(final, replace_dir) as staging:
        (staging / "b.txt").write_text("second")
    monkeypatch.undo()
    assert [path.name for path in tmp_path.iterdir()] == ["export"]
    assert [path.name for path in final.iterdir()] == ["a.txt"] and (final / "a.txt").read_text() == "first"


def test_a_store_a_newer_matreg_wrote_in_another_format_is_neither_read_nor_written(store, catalog):
    run_ingest(_connector(catalog, ["H-064"]), store)
    assert (store.root / "format").read_text() == "2\n"  # (the first write records it)
    (store.root / "format").write_text("3\n")
    refused = "has format 3, written by a newer matreg; this matreg knows format 2 at most: upgrade matreg"
    with pytest.raises(StoreError, match=refused):
        store.query("SELECT count(*) FROM materials")
    with pytest.raises(StoreError, match=refused):
        run_ingest(_connector(catalog, ["C-095"]), store)
    with pytest.raises(StoreError, match=refused):
        store.compact()
    (store.root / "format").write_text("2\n")
    assert store.query("SELECT source_id FROM materials").values.tolist() == [["H-064"]]  # nothing written meanwhile


def test_a_short_relative_path_under_a_working_folder_past_path_max_is_taken_as_the_os_takes_it(tmp_path, monkeypatch):
    """PATH_MAX (4096 bytes) limits the path the OS is given: a relative one is not refused for the length of the
    working folder's path, which the OS does not measure (a file under a working folder past it was refused)."""
    monkeypatch.chdir(tmp_path)
    for _ in range(17):  # a working folder past PATH_MAX, entered a name at a time
        os.mkdir("w" * 250)
        os.chdir("w" * 250)
    here = os.getcwd()
    assert len(os.fsencode(here)) > 4096
    refuse_long_names(Path("gaps.csv"), "cannot write gaps.csv")
    atomic_write(Path("gaps.csv"), lambda temp: temp.write_text("id\n", encoding="utf-8"))  # the OS takes it
    assert Path("gaps.csv").read_text(encoding="utf-8") == "id\n"
    whole = Path(here, "gaps.csv")  # the same file by its whole path, past PATH_MAX: refused as the OS refuses it
    with pytest.raises(PathError, match=f"its path is {len(os.fsencode(whole))} bytes long, past the 4095 bytes"):
        refuse_long_names(whole, f"cannot read {whole}")
    with pytest.raises(OSError, match="File name too long"):
        whole.read_text(encoding="utf-8")
    deep = Path(*["d" * 200] * 21)  # a relative path past PATH_MAX on its own: measured as given
    with pytest.raises(PathError, match=f"^cannot read {deep}: its path is 4220 bytes long, past the 4095 bytes"):
        refuse_long_names(deep, f"cannot read {deep}")


@pytest.mark.parametrize(
    ("temperatures", "repeated"),
    [([None, None], True), ([0.0, -0.0], True), ([float("nan"), float("nan")], True), ([None, 0.0], False)],
)
def test_a_run_files_key_given_twice_is_found_as_duckdb_ranks_keys(tmp_path, temperatures, repeated):
    """A run's rows are ranked by key (`run_rows_sql`) only where a key repeats (`keys_repeat`, counting distinct
    keys): the count holds two keys the same where the window does (NULL as NULL, -0.0 as 0.0, NaN as NaN)."""
    rows = [
        {"record_id": "x:1", "property": "band_gap", "value": 1.0, "unit": "eV", "original_value": 1.0}
        | {"original_unit": "eV", "provenance": "dft", "method": "PBE", "temperature_K": temperature}
        | {"pressure_Pa": None, "source": "x", "run_id": "r"}
        for temperature in [*temperatures, 300.0]
    ]
    path = tmp_path / "properties.parquet"
    pq.write_table(arrow_table("properties", rows), path)
    con, spec = duckdb.connect(), table_spec("properties")
    ranked = con.execute(f"WITH {run_rows_sql(spec)} SELECT max(newest) > 1 FROM n", {"path": str(path)}).fetchall()
    assert keys_repeat(con, path, spec.primary_key, "true") is repeated is ranked[0][0]
