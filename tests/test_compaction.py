"""Compacting a store (`matreg compact`): the commit folders merged into one, the views reading as before."""

import os
import re
import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import LAB_EXAMPLE

from matreg.curate.review import record_decision
from matreg.errors import StoreError
from matreg.ingest import run_ingest
from matreg.sources import FetchRequest, build_connector
from matreg.sources.lab import LabConnector, load_mapping
from matreg.store import Store
from matreg.store.compaction import COMPACTED_MARK, COVERED_KEPT_S
from matreg.store.sql import view_definitions

# columns that name a run or entry by the time it ran: the same steps taken twice give them other values
STAMPS = {"run_id", "entry_id", "at", "fetched_at", "started_at", "finished_at", "published_at", "parameters"}


def shown(store: Store, stamps: bool = True) -> dict[str, list]:
    """Every view's rows, in one order (without the STAMPS columns when `stamps` is False)."""
    views = {}
    for name in sorted(view_definitions()):
        frame = store.query(f"SELECT * FROM {name}")
        frame = frame[[c for c in frame.columns if stamps or c not in STAMPS]].astype(str)
        views[name] = sorted(frame.itertuples(index=False, name=None))
    return views


def import_lab(store: Store, folder: Path, rows: list[str]) -> None:
    data = folder / "roost.csv"
    data.write_text("\n".join(["id,formula,gap", *rows]) + "\n", encoding="utf-8")
    mapping = folder / "m.yaml"
    mapping.write_text(
        "dataset: roost\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
        "  gap: {property: band_gap, unit: eV}\n",
        encoding="utf-8",
    )
    run_ingest(LabConnector(data, load_mapping(mapping)), store)


def decide(store: Store, action: str, **target) -> None:
    record_decision(store, action, "A. Steward", "checked", **target)


def quarantined(store: Store, item: str) -> str:
    return store.query("SELECT quarantine_id FROM quarantine WHERE item = ?", [item]).iloc[0, 0]


@pytest.fixture
def curated(store, catalog, tmp_path):
    """A store of many commits: JANAF tables fetched twice, the bundled lab file with a quarantined row readmitted
    and another dismissed, a lab file imported again without one of its records, a value rejected."""
    for tables in (["H-064", "C-095"], ["H-064", "Al-001"]):
        run_ingest(build_connector("janaf", catalog, FetchRequest(ids=tables)), store)
    run_ingest(LabConnector(LAB_EXAMPLE / "bandgaps.csv", load_mapping(LAB_EXAMPLE / "mapping.yaml")), store)
    decide(store, "readmit", quarantine_id=quarantined(store, "bad-unit"), unit="eV")
    decide(store, "dismiss", quarantine_id=quarantined(store, "bad-formula"))
    import_lab(store, tmp_path, ["roost-1,GaN,3.4", "roost-2,ZnO,3.3", "roost-3,Si,1.1"])
    import_lab(store, tmp_path, ["roost-1,GaN,3.5", "roost-2,ZnO,3.3"])  # roost-3 withdrawn, roost-1 changed
    decide(store, "reject", record_id="roost:roost-2", property="band_gap")
    return store


def folders(store: Store) -> list[str]:
    return sorted(path.name for path in store.data_dir.iterdir())


def age_compactions(store: Store, seconds: float) -> None:
    """Make the store's compactions `seconds` older, as if made that long ago."""
    for mark in store.data_dir.glob(f"c*/{COMPACTED_MARK}"):
        made = mark.stat().st_mtime - seconds
        os.utime(mark, (made, made))


def test_a_compacted_store_shows_what_it_showed_from_one_folder(curated):
    before, commits = shown(curated), folders(curated)
    assert len(commits) >= 8 and curated.commits_since_compacted() == len(commits)
    assert curated.compact() == len(commits)
    compacted = f"c{len(commits):08d}"  # the next commit, as any commit is numbered
    assert folders(curated) == [*commits, compacted] and (curated.data_dir / compacted / COMPACTED_MARK).exists()
    assert shown(curated) == before  # history too: material_writes keeps every write of every record
    assert curated.query("SELECT count(*) FROM material_writes WHERE record_id = 'roost:roost-3'").iloc[0, 0] == 2
    assert curated.commits_since_compacted() == 0 and curated.compact() == 0  # nothing left to merge


def test_later_commits_go_on_from_a_compacted_store_as_from_the_same_store_not_compacted(curated, tmp_path):
    twin = Store(tmp_path / "twin")
    shutil.copytree(curated.root, twin.root)
    curated.compact()

    def go_on(store: Store) -> None:  # the same steps on either store: each write must win over the compacted rows
        import_lab(store, tmp_path, ["roost-1,GaN,3.6", "roost-3,Si,1.2"])  # roost-3 back, roost-2 withdrawn
        decide(store, "flag", record_id="roost:roost-1", property="band_gap")
        decide(store, "reopen", quarantine_id=quarantined(store, "bad-formula"))

    go_on(curated)
    go_on(twin)
    assert shown(curated, stamps=False) == shown(twin, stamps=False)
    value = curated.query("SELECT value FROM properties WHERE record_id = 'roost:roost-1'").iloc[0, 0]
    assert value == 3.6
    assert curated.compact() == 4  # the compacted folder and the three commits since
    assert shown(curated, stamps=False) == shown(twin, stamps=False)


def test_reads_of_a_snapshot_block_read_the_same_rows_while_another_process_compacts(curated):
    with curated.snapshot():
        before = shown(curated)
        Store(curated.root).compact()  # (another Store: as another process would)
        assert shown(curated) == before


@pytest.mark.parametrize("next_write", ["publish", "entry"])
def test_merged_folders_are_never_read_again_and_a_write_removes_them_minutes_after(curated, next_write):
    before, commits = shown(curated), folders(curated)
    curated.compact()
    with curated.connect() as con:  # as `matreg sql` reads: no row twice
        assert con.execute("SELECT count(*) FROM material_writes").fetchone()[0] == len(before["material_writes"])

    def write() -> None:
        if next_write == "publish":
            curated.remove_leftovers()  # (every publish of a fetch or import starts so)
        else:
            decide(curated, "flag", record_id="roost:roost-1", property="band_gap")  # a steward's entry: one commit

    write()  # the merged folders stay: a command may have listed them before the compaction, and be reading them
    assert set(commits) < set(folders(curated))
    age_compactions(curated, COVERED_KEPT_S + 60)
    write()
    assert len(folders(curated)) == 1 + (next_write == "entry") * 2
    after = shown(curated)
    assert len(after.pop("curation_log")) == len(before.pop("curation_log")) + (next_write == "entry") * 2
    assert after == before


def test_a_matreg_that_knows_nothing_of_compaction_writes_its_next_commit_after_the_compacted_folder(curated):
    """An older matreg numbers a new commit after the newest folder named c<digits>, and reads every such folder:
    the compacted one is the newest, a commit like any other to it (its writes are never numbered below it, which
    this matreg would leave out)."""
    curated.compact()
    age_compactions(curated, COVERED_KEPT_S + 60)
    curated.remove_leftovers()
    (compacted,) = folders(curated)
    assert re.fullmatch(r"c\d{8}", compacted) and curated._newest_commit() == int(compacted[1:])


# how a DuckDB client of its own reads the store as matreg does (README, The store)
PIN = (
    r"SET VARIABLE matreg_compacted = (SELECT coalesce(max(regexp_extract(file, 'c(\d+)[/\\]compacted$', 1)"
    "::BIGINT), -1) FROM glob('data/c*/compacted'))"
)


def test_a_duckdb_client_of_its_own_reads_a_compacted_store_as_matreg_does(curated):
    before = shown(curated)
    curated.compact()
    con = duckdb.connect(str(curated.db_path), read_only=True)  # a DuckDB shell
    con.execute("SET TimeZone = 'UTC'")  # (as matreg's own views show times: a shell shows the host's zone)
    con.execute("SET file_search_path = ?", [str(curated.root)])
    con.execute(PIN)
    for name, rows in before.items():
        frame = con.execute(f"SELECT * FROM {name}").df().astype(str)
        assert sorted(frame.itertuples(index=False, name=None)) == rows, name


def test_a_store_of_an_older_matreg_is_compacted(curated):
    for path in curated.data_dir.glob("c*/*.parquet"):  # files of a matreg without the commit number column
        table = pq.read_table(path)
        pq.write_table(table.drop_columns([c for c in table.column_names if c == "commit_no"]), path)
    runs = sorted(curated.data_dir.glob("c*/fetch_runs.parquet"))
    first_run = next(path for path in runs if pq.read_metadata(path).num_rows)
    pq.write_table(pq.read_table(first_run).drop_columns(["unmapped_fields"]), first_run)  # (a column declared since)
    (curated.root / ".views.sha256").write_text("written by an older matreg", encoding="utf-8")
    before = shown(curated)
    curated.compact()
    assert shown(curated) == before


def test_a_file_of_a_table_this_matreg_does_not_declare_stops_compaction_and_changes_nothing(curated):
    odd = sorted(curated.data_dir.iterdir())[2] / "notes_of_a_newer_matreg.parquet"
    pq.write_table(pq.read_table(next(curated.data_dir.glob("c*/fetch_runs.parquet"))), odd)
    before = folders(curated)
    with pytest.raises(StoreError, match="notes_of_a_newer_matreg.parquet is not a table this matreg declares"):
        curated.compact()
    assert folders(curated) == before


def test_compacting_where_there_is_no_store_is_an_error_and_makes_none(tmp_path):
    with pytest.raises(StoreError, match="no matreg store at"):
        Store(tmp_path / "typo").compact()
    assert not (tmp_path / "typo").exists()


def test_matreg_compact_merges_the_commits_and_status_suggests_it_once_there_are_many(filled, monkeypatch):
    monkeypatch.setattr("matreg.cli.COMPACT_AFTER", 3)
    status = filled("status")
    assert status.exit_code == 0 and "`matreg compact` merges them" in status.output
    before = filled("sql", "SELECT count(*) AS n FROM properties").output
    result = filled("compact")
    assert result.exit_code == 0 and result.output.startswith("compacted ") and "commits into one" in result.output
    assert "the first write 10 minutes from now or later removes them" in result.output
    assert filled("sql", "SELECT count(*) AS n FROM properties").output == before
    assert "matreg compact" not in filled("status").output
    assert filled("compact").output.strip() == "nothing to compact: the store is one commit"
    missing = filled("compact", "--store", "no-such-store")
    assert missing.exit_code == 2 and "no matreg store at" in missing.stderr


def test_a_compacted_file_is_one_row_group_however_many_commits_and_none_empty(curated):
    """A row group a commit (DuckDB then reads the file's few rows as slowly as many files), or an empty one (it has
    no statistics, so DuckDB can no longer skip the file by them), would make every read slower."""
    curated.compact()
    (folder,) = [path for path in curated.data_dir.iterdir() if (path / COMPACTED_MARK).exists()]
    for path in folder.glob("*.parquet"):
        metadata = pq.ParquetFile(path).metadata
        assert metadata.num_row_groups == (1 if metadata.num_rows else 0), path.name
