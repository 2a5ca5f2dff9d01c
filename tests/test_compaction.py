"""Compacting a store (`matreg compact`): the commit folders merged into one, the views reading as before."""

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
from matreg.store.sql import view_definitions

# columns that name a run or entry by the time it ran: the same steps taken twice give them other values
STAMPS = {"run_id", "entry_id", "at", "fetched_at", "started_at", "finished_at", "parameters"}


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


def test_a_compacted_store_shows_what_it_showed_from_one_folder(curated):
    before, commits = shown(curated), sorted(path.name for path in curated.data_dir.iterdir())
    assert len(commits) >= 8 and curated.commits_since_compacted() == len(commits)
    assert curated.compact() == len(commits)
    assert [path.name for path in curated.data_dir.iterdir()] == [f"{commits[-1]}.compact"]
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
    assert len(list(curated.data_dir.iterdir())) == 1


def test_reads_of_a_snapshot_block_read_the_same_rows_while_another_process_compacts(curated):
    with curated.snapshot():
        before = shown(curated)
        Store(curated.root).compact()  # (another Store: as another process would)
        assert shown(curated) == before


@pytest.mark.parametrize("next_write", ["publish", "entry"])
def test_folders_a_killed_compaction_left_are_never_read_and_the_next_writer_removes_them(
    curated, tmp_path, next_write
):
    kept = tmp_path / "kept"
    shutil.copytree(curated.data_dir, kept)
    before = shown(curated)
    curated.compact()
    for folder in kept.iterdir():  # as if killed between the rename of the compacted folder and their removal
        shutil.copytree(folder, curated.data_dir / folder.name)
    assert shown(curated) == before  # not twice
    with curated.connect() as con:  # as `matreg sql` reads
        assert con.execute("SELECT count(*) FROM material_writes").fetchone()[0] == len(before["material_writes"])
    if next_write == "publish":
        curated.remove_leftovers()  # (every publish of a fetch or import starts so)
    else:
        decide(curated, "flag", record_id="roost:roost-1", property="band_gap")  # a steward's entry: one commit
    assert sorted(path.name.endswith(".compact") for path in curated.data_dir.iterdir()) == [
        *([False] if next_write == "entry" else []),
        True,
    ]
    after = shown(curated)
    assert len(after.pop("curation_log")) == len(before.pop("curation_log")) + (next_write == "entry")
    assert after == before


def test_a_duckdb_client_of_its_own_reads_a_compacted_store_as_matreg_does(curated, tmp_path):
    before = shown(curated)
    curated.compact()
    con = duckdb.connect(str(curated.db_path), read_only=True)  # a DuckDB shell: no variable set
    con.execute("SET file_search_path = ?", [str(curated.root)])
    for name, rows in before.items():
        frame = con.execute(f"SELECT * FROM {name}").df().astype(str)
        assert sorted(frame.itertuples(index=False, name=None)) == rows, name


def test_a_store_of_an_older_matreg_is_compacted(curated):
    for path in curated.data_dir.glob("c*/*.parquet"):  # files of a matreg without the commit number column
        table = pq.read_table(path)
        pq.write_table(table.drop_columns([c for c in table.column_names if c == "commit_no"]), path)
    (curated.root / ".views.sha256").write_text("written by an older matreg", encoding="utf-8")
    before = shown(curated)
    curated.compact()
    assert shown(curated) == before


def test_a_file_of_a_table_this_matreg_does_not_declare_stops_compaction_and_changes_nothing(curated):
    odd = sorted(curated.data_dir.iterdir())[2] / "notes_of_a_newer_matreg.parquet"
    pq.write_table(pq.read_table(next(curated.data_dir.glob("c*/fetch_runs.parquet"))), odd)
    folders = sorted(path.name for path in curated.data_dir.iterdir())
    with pytest.raises(StoreError, match="notes_of_a_newer_matreg.parquet is not a table this matreg declares"):
        curated.compact()
    assert sorted(path.name for path in curated.data_dir.iterdir()) == folders


def test_matreg_compact_merges_the_commits_and_status_suggests_it_once_there_are_many(filled, monkeypatch):
    monkeypatch.setattr("matreg.cli.COMPACT_AFTER", 3)
    status = filled("status")
    assert status.exit_code == 0 and "`matreg compact` merges them" in status.output
    before = filled("sql", "SELECT count(*) AS n FROM properties").output
    result = filled("compact")
    assert result.exit_code == 0 and result.output.startswith("compacted ") and "commits into one" in result.output
    assert filled("sql", "SELECT count(*) AS n FROM properties").output == before
    assert "matreg compact" not in filled("status").output
    assert filled("compact").output.strip() == "nothing to compact: the store is one commit"


def test_a_compacted_file_is_one_row_group_however_many_commits_and_none_empty(curated):
    """A row group a commit (DuckDB then reads the file's few rows as slowly as many files), or an empty one (it has
    no statistics, so DuckDB can no longer skip the file by them), would make every read slower."""
    curated.compact()
    (folder,) = curated.data_dir.iterdir()
    for path in folder.glob("*.parquet"):
        metadata = pq.ParquetFile(path).metadata
        assert metadata.num_row_groups == (1 if metadata.num_rows else 0), path.name
