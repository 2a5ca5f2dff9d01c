"""The staging journal: pages commit whole; what a killed writer leaves after the last commit is cut on reopening."""

from __future__ import annotations

import pyarrow
import pytest

from matreg.errors import StoreError
from matreg.journal import COMMITS, SUFFIX, RunJournal


def page(first: int, count: int) -> dict[str, pyarrow.Table]:
    return {"properties": pyarrow.table({"record_id": [f"r{i}" for i in range(first, first + count)]})}


def run_row(cursor: int) -> pyarrow.Table:
    return pyarrow.table({"run_id": ["run"], "cursor": [str(cursor)]})


def record_ids(journal: RunJournal) -> list[str]:
    tables = journal.tables("properties", journal.committed()[1])
    return [value for table in tables for value in table["record_id"].to_pylist()]


def test_committed_pages_read_back_in_order(tmp_path):
    journal = RunJournal(tmp_path / "run")
    journal.append(page(0, 3), run_row(1))
    journal.append(page(3, 2), run_row(2))
    journal.append({}, run_row(3))  # a page whose records were all quarantined elsewhere, or the final row
    journal.close()
    reader = RunJournal(tmp_path / "run")
    assert reader.pages() == 3 and reader.last_commit() == {"run_id": "run", "cursor": "3"}
    assert record_ids(reader) == ["r0", "r1", "r2", "r3", "r4"]
    assert list(reader.tables("quarantine", reader.committed()[1])) == []


def test_a_page_cut_by_a_kill_is_not_committed_and_is_cut_on_recovery(tmp_path):
    journal = RunJournal(tmp_path / "run")
    journal.append(page(0, 2), run_row(1))
    journal.close()
    table_file, commits = tmp_path / "run" / f"properties{SUFFIX}", tmp_path / "run" / f"{COMMITS}{SUFFIX}"
    committed = table_file.stat().st_size, commits.stat().st_size
    # a killed writer: page 2's table frame complete, its commit frame cut after a few bytes
    killed = RunJournal(tmp_path / "run")
    killed.append(page(2, 2), run_row(2))
    killed.close()
    commits.write_bytes(commits.read_bytes()[: committed[1] + 20])
    reader = RunJournal(tmp_path / "run")
    assert reader.pages() == 1 and reader.last_commit()["cursor"] == "1"
    assert record_ids(reader) == ["r0", "r1"]  # page 2's rows lie in the file but are not committed

    resumed = RunJournal(tmp_path / "run")
    resumed.recover()
    assert (table_file.stat().st_size, commits.stat().st_size) == committed
    resumed.append(page(2, 2), run_row(2))  # appends after the cut
    resumed.close()
    assert record_ids(RunJournal(tmp_path / "run")) == ["r0", "r1", "r2", "r3"]


def test_tables_a_resumed_run_no_longer_writes_keep_their_committed_rows(tmp_path):
    journal = RunJournal(tmp_path / "run")
    journal.append(page(0, 2) | {"quarantine": pyarrow.table({"item": ["bad-1"]})}, run_row(1))
    journal.close()
    resumed = RunJournal(tmp_path / "run")  # a run resumed after a kill: its later pages quarantine nothing
    resumed.append(page(2, 1), run_row(2))
    resumed.append(page(3, 1), run_row(3))
    resumed.close()
    reader = RunJournal(tmp_path / "run")
    quarantined = [t["item"].to_pylist() for t in reader.tables("quarantine", reader.committed()[1])]
    assert quarantined == [["bad-1"]] and record_ids(reader) == ["r0", "r1", "r2", "r3"]
    RunJournal(tmp_path / "run").recover()  # recovering again keeps them too
    assert [t.num_rows for t in reader.tables("quarantine", reader.committed()[1])] == [1]


def test_an_empty_journal_has_nothing_committed(tmp_path):
    journal = RunJournal(tmp_path / "never-written")
    assert journal.last_commit() is None and journal.pages() == 0 and record_ids(journal) == []


@pytest.mark.parametrize("damage", ["deleted", "cut"])
def test_a_table_file_missing_or_shorter_than_committed_is_a_damaged_journal_never_read_as_empty(tmp_path, damage):
    """A journal deleted in part (its materials file first, say) still has commits counting that file's rows: reading
    it as a run without them would publish a run that lost records."""
    journal = RunJournal(tmp_path / "run")
    journal.append(page(0, 2), run_row(1))
    journal.append(page(2, 2), run_row(2))
    journal.close()
    table_file = tmp_path / "run" / f"properties{SUFFIX}"
    if damage == "deleted":
        table_file.unlink()
    else:
        table_file.write_bytes(table_file.read_bytes()[:-10])
    size = table_file.stat().st_size if table_file.exists() else None
    reader = RunJournal(tmp_path / "run")
    with pytest.raises(StoreError, match="the journal of run run is damaged .*properties.arrows.*without --resume"):
        record_ids(reader)
    with pytest.raises(StoreError, match="is damaged"):
        reader.recover()  # (a resume appending after it would extend the file with zeros)
    assert (table_file.stat().st_size if table_file.exists() else None) == size
