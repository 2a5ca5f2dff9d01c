"""The command line end to end: fetch, import, sql, export, validate, status, catalog, schema."""

import contextlib
import csv
import errno
import io
import json
import logging
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from unittest.mock import patch

import duckdb
import filelock
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import (
    HOLD_LOCK,
    JANAF_TABLES,
    LAB_EXAMPLE,
    RAW_JANAF,
    REPO,
    SPILLING,
    another_process_holding,
    assert_failed_without_trace,
    cli_import,
    disk_full_at_rows_of,
    janaf_route,
    matreg_in_zone,
    matreg_with_files_capped,
    no_space_to_spill,
    parquet_onto_full_disk,
    sqlite_disk_full,
    utf8_child,
    visible_tables,
    write_catalog,
)
from replay import ReplayServer, Reply
from typer.testing import CliRunner

from matreg import cli, resume
from matreg.cli import app
from matreg.defaults import EXPORT_FORMATS
from matreg.errors import ConfigError
from matreg.export import to_wide
from matreg.http import HttpClient
from matreg.ingest import run_ingest
from matreg.resources import resource_path
from matreg.schema import load_tables, load_vocabulary
from matreg.sources import FetchRequest
from matreg.sources.janaf import JanafConnector
from matreg.sources.lab import LabConnector, load_mapping
from matreg.store import Store
from matreg.store.sql import view_definitions
from matreg.validation import check_store_tables

runner = CliRunner()


def test_fetch_reports_what_it_stored(run):
    result = run("fetch", "janaf", "H-064", "Q-404")
    assert result.exit_code == 0
    assert "read 2, 1 valid records (7 values): 1 written; quarantined 1" in result.stdout
    again = run("fetch", "janaf", "H-064", "Q-404")
    assert "read 2, 1 valid records (7 values): 0 written, 1 already stored unchanged; quarantined 1" in again.stdout
    assert "unchanged" in run("status").stdout


def test_provenance_query_answers_from_the_duckdb_file(filled):
    result = filled("sql", "select provenance, count(*) as n from properties group by 1", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [{"provenance": "experimental", "n": 44}]


@pytest.mark.parametrize("command", [["sql", "select 1 as a"], ["conflicts", "band_gap"]])
def test_an_unknown_output_format_is_refused(filled, command):
    result = filled(*command, "--format", "parquet")
    said = " ".join(result.output.replace("│", " ").split())  # typer draws the error in a box
    assert result.exit_code == 2 and "'parquet' is not one of 'table', 'csv', 'json'" in said


def test_json_output_keeps_timestamps_to_the_microsecond(filled):
    result = filled("sql", "select timestamptz '2026-12-03 09:52:20.711040+00' as at", "--format", "json")
    assert json.loads(result.stdout) == [{"at": "2026-12-03T09:52:20.711040Z"}]


def test_sql_csv_writes_every_time_to_the_microsecond_and_tables_as_they_are(filled):
    """Times were written one by one, a time on the whole second without its fraction beside one with it: pandas,
    inferring a column's format from its first cell, refused the others. Rows are printed in batches, so each time
    carries its microseconds; a table shows each as it is."""
    times = ["2026-12-03 13:58:12+00", "2026-12-03 13:58:12.5+00", None]
    query = " union all ".join(
        f"select {n} as n, {f'timestamptz {t!r}' if t else 'null'} as at" for n, t in enumerate(times)
    )
    printed = filled("sql", query + " order by n", "--format", "csv").stdout
    assert printed.splitlines() == [
        "n,at",
        "0,2026-12-03 13:58:12.000000+00:00",
        "1,2026-12-03 13:58:12.500000+00:00",
        "2,",
    ]
    read = pd.to_datetime(pd.read_csv(io.StringIO(printed))["at"])  # (its format inferred from the first cell)
    assert read.tolist()[:2] == [pd.Timestamp(t) for t in times[:2]]
    assert [line.split() for line in filled("sql", query + " order by n").stdout.splitlines()[1:]] == [
        ["0", "2026-12-03", "13:58:12+00:00"],
        ["1", "2026-12-03", "13:58:12.500000+00:00"],
        ["2", "NULL"],
    ]


def test_sql_prints_integer_columns_with_gaps(filled):
    result = filled("sql", "select source_id, nsites, spacegroup_number from materials order by source_id limit 2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split("\n")[0].split() == ["source_id", "nsites", "spacegroup_number"]
    assert result.stdout.split("\n")[1].split() == ["C-095", "NULL", "NULL"]  # JANAF tables have no sites


def test_sql_tables_print_small_numbers_with_their_digits(filled):
    result = filled("sql", "select * from (values (5.3e-19), (3.3)) t(v)")
    assert result.stdout.split() == ["v", "5.3e-19", "3.3"]


def test_sql_tables_print_every_digit_of_a_stored_value(filled):
    result = filled("sql", "select * from (values (-1675.692), (123456789.125), (0.1::double + 0.2), (1e22)) t(v)")
    assert result.stdout.split() == ["v", "-1675.692", "123456789.125", "0.30000000000000004", "1e+22"]


def test_sql_json_keeps_every_digit_of_a_number(filled):
    query = "select 2.2426286006534718e-29 as a, 11.213143003267358::double as b, -2.30667e-06 as c, 1.5e-11 as d"
    result = filled("sql", query, "--format", "json")
    assert json.loads(result.stdout) == [
        {"a": 2.2426286006534718e-29, "b": 11.213143003267358, "c": -2.30667e-06, "d": 1.5e-11}
    ]
    stored = filled(
        "sql", "select record_id, property, original_value from properties order by all", "--format", "json"
    )
    exact = Store(Path(os.environ["MATREG_STORE"])).query(
        "select record_id, property, original_value from properties order by all"
    )
    assert json.loads(stored.stdout) == exact.to_dict("records")
    special = filled("sql", "select 'inf'::double as x, 'nan'::double as y, null::double as z", "--format", "json")
    assert json.loads(special.stdout) == [{"x": None, "y": None, "z": None}]  # JSON has no NaN or infinity


def test_sql_csv_and_tables_write_lists_and_structs_as_json(filled):
    query = "select ['Ga', 'Te'] as elements, [['a'], ['b', 'c']] as nested, {'k': [1.5e-11, 2.0]} as s"
    cells = list(csv.reader(io.StringIO(filled("sql", query, "--format", "csv").stdout)))
    assert cells[0] == ["elements", "nested", "s"]
    assert [json.loads(cell) for cell in cells[1]] == [["Ga", "Te"], [["a"], ["b", "c"]], {"k": [1.5e-11, 2.0]}]
    assert len(cells) == 2
    assert filled("sql", query).stdout.splitlines()[1].split() == [
        '["Ga","Te"]',
        '[["a"],["b","c"]]',
        '{"k":[1.5e-11,2.0]}',
    ]


def test_sql_tables_print_text_whole(filled):
    result = filled("sql", "select 'S-005' as item, repeat('synthesis_route ', 8) || 'end' as reasons")
    assert result.stdout.splitlines()[1].split() == ["S-005", *["synthesis_route"] * 8, "end"]


def test_a_table_of_matregs_own_says_when_it_cut_a_cell(capsys):
    from matreg.cli_format import echo_frame

    frame = pd.DataFrame({"record_id": ["a", "b"], "reason": ["short", "long " * 20]})
    echo_frame(frame, "table", "(none)", max_colwidth=40)
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split() == ["b", *["long"] * 7, "lo..."]
    assert lines[-1] == "(cells longer than 40 characters are cut: --format csv or --format json prints them whole)"


def test_sql_tells_null_from_the_empty_text(filled):
    query = "select 'x' as id, '' as blank, null::varchar as missing"
    assert filled("sql", query).stdout.splitlines()[1].split() == ["x", "NULL"]
    assert filled("sql", query, "--format", "csv").stdout.splitlines()[1] == 'x,"",'
    assert json.loads(filled("sql", query, "--format", "json").stdout) == [{"id": "x", "blank": "", "missing": None}]


def test_sql_keeps_the_types_duckdb_gives(filled):
    query = (
        "select sum(x) as s, date '2024-01-01' as d, '\\x01a''b'::blob as b from (values (9007199254740993), (0)) t(x)"
    )
    assert filled("sql", query).stdout.splitlines()[1].split() == ["9007199254740993", "2024-01-01", "\\x01a\\x27b"]
    assert filled("sql", query, "--format", "csv").stdout.splitlines()[1] == "9007199254740993,2024-01-01,\\x01a\\x27b"
    result = filled("sql", query, "--format", "json")
    assert json.loads(result.stdout) == [{"s": 9007199254740993, "d": "2024-01-01", "b": "\\x01a\\x27b"}]
    assert filled("sql", "select sum(n_values) as n from fetch_runs").stdout.split() == ["n", "44"]
    interval = "select interval 1 month + interval 90 minutes + interval 1 microsecond as i"
    assert json.loads(filled("sql", interval, "--format", "json").stdout) == [{"i": "P1M0DT5400.000001S"}]


def test_sql_prints_rows_in_batches_and_a_table_up_to_its_cap(filled, monkeypatch):
    monkeypatch.setattr("matreg.cli_format.BATCH_ROWS", 4)
    monkeypatch.setattr("matreg.cli_format.TABLE_ROWS", 5)
    query = "select range as i, 'r' || range as name from range(11)"
    assert json.loads(filled("sql", query, "--format", "json").stdout) == [{"i": i, "name": f"r{i}"} for i in range(11)]
    assert filled("sql", query, "--format", "csv").stdout.splitlines() == ["i,name", *(f"{i},r{i}" for i in range(11))]
    lines = filled("sql", query).stdout.splitlines()
    assert [line.split() for line in lines[:6]] == [["i", "name"], *([str(i), f"r{i}"] for i in range(5))]
    assert lines[6:] == ["(6 more rows not shown: --format csv or --format json prints every row)"]
    assert filled("sql", "select 1 as a, 2 as a", "--format", "json").stdout == '[{"a":1,"a_1":2}]\n'


@pytest.mark.parametrize("names", ["a, 2 a, 3 a", "a, 2 a_1, 3 a", "a_1, 2 a, 3 a", "a, 2 a, 3 a_1, 4 a"])
def test_sql_numbers_repeated_column_names_as_duckdb_does(filled, names):
    """A third 'a' was 'a_1_1' (DuckDB's data frames name it 'a_2')."""
    query = f"select 1 {names}"
    printed = json.loads(filled("sql", query, "--format", "json").stdout)
    assert list(printed[0]) == list(duckdb.sql(query).df().columns)
    assert filled("sql", query, "--format", "csv").stdout.splitlines()[0] == ",".join(printed[0])


CLOSED_PIPE = 128 + signal.SIGPIPE  # 141: the exit code of a pipeline's program whose reader stopped reading


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_sql_output_its_reader_stops_reading_ends_quietly(filled, fmt):
    """`matreg sql ... | head -1`: no error message for the rows nobody reads, and the exit code of a program the
    closed pipe stopped (141, as a shell reports SIGPIPE's), not a failure of the command's (1)."""
    query = "select range, repeat('x', 100) as x from range(3000000)"  # (a table's 10,000 rows overflow the pipe)
    command = [sys.executable, "-m", "matreg", "sql", query, "--format", fmt]
    reading = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **utf8_child())
    assert reading.stdout.read(5) in ("range", '[{"ra')  # (JSON is one line)
    reading.stdout.close()
    assert reading.wait(timeout=60) == CLOSED_PIPE and reading.stderr.read() == ""


def test_a_table_of_a_query_of_a_trillion_rows_counts_a_million_past_those_it_shows_and_stops_it(filled):
    """A table counted every row after its first 10,000: `matreg sql 'select * from range(10^12)'` ran for hours."""
    command = [sys.executable, "-m", "matreg", "sql", "select range as i from range(1000000000000)"]
    printed = subprocess.run(command, capture_output=True, **utf8_child(), timeout=120)
    lines = printed.stdout.splitlines()
    assert printed.returncode == 0 and len(lines) == 1 + 10_000 + 1 and lines[10_000].strip() == "9999"
    assert lines[-1] == "(more than 1000000 more rows not shown: --format csv or --format json prints every row)"


@pytest.mark.parametrize(
    "command", [["status"], ["catalog"], ["schema"], ["sql", "select 1 as n"], ["sql", "--help"], ["--help"]]
)
def test_a_command_whose_output_pipe_is_closed_ends_quietly(filled, command):
    """`matreg status | head -1` where head is gone before the command prints: quiet, exit code 141, whatever the
    command prints (--help too, which rich, printing it, ended with exit code 1)."""
    reader, writer = os.pipe()
    os.close(reader)  # (the reader gone: every write to the pipe fails, EPIPE)
    with os.fdopen(writer, "wb") as closed:
        printing = subprocess.run([sys.executable, "-m", "matreg", *command], stdout=closed, stderr=subprocess.PIPE)
    assert printing.returncode == CLOSED_PIPE and printing.stderr == b""


@pytest.mark.parametrize("stdout_too", [False, True])
@pytest.mark.parametrize(
    "command",
    [
        ["sql", "select * from nowhere"],
        ["export", "thermo", "--out", "x.txt"],
        ["fetch"],  # a usage error: a missing argument
        ["sql", "--bogus", "select 1"],  # an unknown option
    ],
)
def test_a_command_whose_stderr_pipe_is_closed_ends_quietly(filled, command, stdout_too):
    """`matreg ... 2>&1 | head -1`, or stderr alone into a pipe, its reader gone before the error is said: the error
    message failed to be written inside its handler (matreg's, or click's for a usage error), Python's traceback of it
    went nowhere, exit code 1 (not the command's 2); now as a closed stdout ends a command: quiet, exit code 141."""
    reader, writer = os.pipe()
    os.close(reader)
    with os.fdopen(writer, "wb") as closed:
        out = closed if stdout_too else subprocess.PIPE
        failing = subprocess.run([sys.executable, "-m", "matreg", *command], stdout=out, stderr=closed)
    assert failing.returncode == CLOSED_PIPE and failing.stdout in (None, b"")


@pytest.mark.parametrize("stdout_too", [False, True])
def test_a_warning_said_into_a_closed_stderr_leaves_the_fetch_whole_and_ends_it_as_a_closed_pipe(
    run, janaf_server, stdout_too
):
    """`matreg fetch ... 2>&1 | head -1`, its reader gone as the library warns (a retry's wait, printed on stderr by
    a logging handler): the write's BrokenPipeError was raised inside urllib3's retry, which requests took for a
    connection lost, and the run was recorded failed: 'GET ... failed: [Errno 32] Broken pipe'. The warning goes
    unsaid, the fetch runs to its end, and the command ends as at a closed pipe: quiet, exit code 141."""
    janaf_server.fail("/tables/H-064.txt", 429)
    reader, writer = os.pipe()
    os.close(reader)
    with os.fdopen(writer, "wb") as closed:
        matreg = [sys.executable, "-m", "matreg", "fetch", "janaf", "H-064", "--no-progress"]
        fetching = subprocess.run(matreg, stdout=closed if stdout_too else subprocess.PIPE, stderr=closed, timeout=120)
    assert fetching.returncode == CLOSED_PIPE
    assert fetching.stdout is None if stdout_too else b" valid records " in fetching.stdout
    store = Store(os.environ["MATREG_STORE"])
    assert store.query("SELECT status, error FROM fetch_runs").values.tolist() == [["complete", None]]
    assert len(store.table("materials")) == 1


@pytest.mark.parametrize("command", ["fetch", "import"])
def test_a_fetch_or_import_with_stderr_closed_runs_as_with_it_open(run, tmp_path, command):
    """`matreg fetch ... 2>&-`: without stderr Python's sys.stderr is None, and asking it whether it is a terminal (to
    show a progress bar) failed: exit 1, nothing stored, nothing said. Now the command runs, without a progress bar."""
    asked = ["fetch", "janaf", "H-064"] if command == "fetch" else ["import", str(LAB_EXAMPLE / "bandgaps.csv")]
    mapping = ["-m", str(LAB_EXAMPLE / "mapping.yaml")] if command == "import" else []
    matreg = [sys.executable, "-m", "matreg", *asked, *mapping]
    closed = subprocess.run(["sh", "-c", 'exec "$@" 2>&-', "sh", *matreg], stdout=subprocess.PIPE, **utf8_child())
    assert closed.returncode == 0 and " valid records " in closed.stdout
    assert len(Store(os.environ["MATREG_STORE"]).table("materials")) == (1 if command == "fetch" else 30)


def test_a_query_the_disk_is_too_full_to_spill_is_a_failure_for_now_naming_the_folder(filled, monkeypatch):
    """A query larger than memory spills into the temp folder; on a disk nearly full there DuckDB refuses (its limit
    on the folder reached): a failure for now, exit 75, the folder named, in one line (it was exit 1, 'query failed'
    and DuckDB's advice on ten lines)."""
    no_space_to_spill(monkeypatch)
    result = filled("sql", SPILLING)
    assert result.exit_code == 75 and result.stdout == ""
    assert result.stderr == (
        f"error: cannot write {tempfile.gettempdir()}: No space left on device (ENOSPC): a failure for now: free space "
        "there, or raise the quota, and run the command again\n"
    )


def test_a_failing_query_whose_text_names_the_spill_limit_is_no_full_disk(filled):
    """DuckDB's error quotes the query ('LINE 1: ...'): a query naming max_temp_directory_size was taken for a full
    disk (exit 75) where it failed on its own (exit 1)."""
    result = filled("sql", "select 'max_temp_directory_size' from properties where value > 'x'")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: query failed: Conversion Error: Could not convert string 'x' to DOUBLE")


def test_sql_help_says_how_to_give_a_query_that_starts_with_a_comment(filled):
    said = " ".join(filled("sql", "--help").stdout.replace("│", " ").split())
    assert "matreg sql --format csv -- '-- a comment" in said
    result = filled("sql", "--format", "csv", "--", "-- a comment\nselect 1 as n")
    assert result.exit_code == 0 and result.stdout == "n\n1\n"


def test_a_store_lock_held_by_another_process_is_a_one_line_error(filled, tmp_path):
    with another_process_holding(tmp_path / "store" / ".curation.lock"):
        with patch.object(filelock.FileLock, "__init__", short_timeout(filelock.FileLock.__init__)):
            result = filled("review", "accept", "janaf:H-064", "--reason", "checked")
    assert result.exit_code == 75 and "Traceback" not in result.stderr  # EX_TEMPFAIL: try again later
    assert result.stderr.startswith("error: the store is busy: another matreg process holds ")


def test_a_fetch_the_store_lock_stops_from_publishing_exits_75_and_the_resume_publishes_it(run, tmp_path):
    """A store another process holds locked for longer than a writer waits is a failure for now (exit 75), not one
    of the command or the data: the same command with --resume, later, publishes what the run read."""
    fetch = ["fetch", "janaf", "H-064", "C-095", "--no-progress"]
    assert run(*fetch, "--dry-run").exit_code == 0  # (the catalog read before the lock is held: nothing written)
    with another_process_holding(tmp_path / "store" / ".lock"):
        with patch.object(filelock.FileLock, "__init__", short_timeout(filelock.FileLock.__init__)):
            busy = run(*fetch)
    assert busy.exit_code == 75 and busy.stderr.startswith("error: the store is busy: another matreg process holds ")
    assert "run the same command with --resume to publish the staged run" in busy.stderr
    resumed = run(*fetch, "--resume")
    assert resumed.exit_code == 0 and "read 2, 2 valid records" in resumed.stdout


def short_timeout(init):
    def patched(self, lock_file, *args, **kwargs):
        kwargs["timeout"] = 0.2
        return init(self, lock_file, *args, **kwargs)

    return patched


def test_reads_of_a_store_another_matreg_wrote_take_no_lock_and_write_nothing(filled, tmp_path):
    """`sql`, `status` and `export` read a store whose views another matreg version made (a read-only mount's too)
    while a writer holds its lock: they take no lock and leave every file of the store as it was."""
    store = tmp_path / "store"
    (store / ".views.sha256").write_text("written by another matreg", encoding="utf-8")
    with another_process_holding(store / ".lock"):
        before = {path: path.stat().st_mtime_ns for path in store.rglob("*")}
        with patch.object(filelock.FileLock, "__init__", short_timeout(filelock.FileLock.__init__)):
            results = [
                filled("sql", "select count(*) as n from properties", "--format", "csv"),
                filled("status"),
                filled("export", "thermo", "--out", str(tmp_path / "thermo.csv")),
            ]
    assert [result.exit_code for result in results] == [0, 0, 0], [result.stderr for result in results]
    assert results[0].stdout == "n\n44\n"
    assert {path: path.stat().st_mtime_ns for path in store.rglob("*")} == before


def test_sql_errors_keep_duckdbs_hints(filled):
    mistyped = filled("sql", "select * from propertie")
    assert mistyped.exit_code == 2 and mistyped.stderr.startswith("error: query failed: Catalog Error: Table with")
    assert 'Did you mean "properties"?' in mistyped.stderr and "LINE 1: select * from propertie" in mistyped.stderr
    column = filled("sql", "select valu from properties")
    assert column.exit_code == 2 and 'Candidate bindings: "value"' in column.stderr
    failed = filled("sql", "select cast(formula as integer) from materials")  # refused by the data, as it ran
    assert failed.exit_code == 1 and "Conversion Error" in failed.stderr


@pytest.mark.parametrize(
    "command, said",
    [
        (("review", "accept", "janaf:X-000", "--reason", "checked"), "unknown record 'janaf:X-000'"),
        (("history", "janaf:X-000"), "unknown record 'janaf:X-000'"),
        (("review", "dismiss", "0" * 40, "--reason", "x"), f"unknown quarantine row '{'0' * 40}'"),
        (("export", "gaps", "--release", "9.9.9", "--out", "gaps.csv"), "no release 9.9.9 of 'gaps'"),
        (("release", "gaps", "--version", "1.0"), "invalid version '1.0'"),
        (("export", "gaps", "--out", "gaps.csv", "--layout", "tall"), "unknown layout 'tall'"),
        (("export", "gaps", "--format", "torch", "--out", "gaps", "--split", "halves"), "unknown split 'halves'"),
        (("export", "gaps", "--format", "torch", "--out", "gaps", "--target", "density"), "target 'density'"),
    ],
)
def test_a_name_that_names_nothing_or_a_bad_option_value_exits_2(filled, command, said):
    """The command as typed can never work (exit code 2, as a mistyped option's): fix the command, not the data."""
    result = filled(*command)
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and said in result.stderr, result.stderr


def test_sql_refuses_writes_with_a_one_line_error(filled):
    result = filled("sql", "delete from materials")
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "refused" in result.stderr


def test_import_report_and_exit_code(run, tmp_path):
    result = run("import", str(LAB_EXAMPLE / "bandgaps.csv"), "--mapping", str(LAB_EXAMPLE / "mapping.yaml"))
    assert result.exit_code == 0
    assert "read 35, 30 valid records (30 values): 30 written; quarantined 5" in result.stdout
    assert "unknown unit 'elektronvolt'" in result.stdout
    many = tmp_path / "many.csv"
    many.write_text(
        "sample_id,composition,band_gap,band_gap_unit,T_K\n" + "".join(f"s{i},GaN,x{i},eV,300\n" for i in range(12))
    )
    preview = run("import", str(many), "--mapping", str(LAB_EXAMPLE / "mapping.yaml"), "--dry-run")
    assert "none written (dry run)" in preview.stdout
    assert "... and 2 more reasons\n" in preview.stdout  # no query to run: a dry run stores no quarantine rows
    result = run("import", str(many), "--mapping", str(LAB_EXAMPLE / "mapping.yaml"))
    assert "non-numeric value 'x11'" not in result.stdout and "... and 2 more reasons: matreg sql" in result.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("sample_id,composition,band_gap,band_gap_unit,T_K\nx,Qz,1,eV,300\n")
    result = run("import", str(bad), "--mapping", str(LAB_EXAMPLE / "mapping.yaml"))
    assert result.exit_code == 1 and result.stderr == "error: nothing valid was found\n"
    week = tmp_path / "week.csv"
    week.write_text("sample_id,composition,band_gap,band_gap_unit,T_K\nw1,GaN,3.4,eV,300\nw2,ZnO,3.3,eV,300\n")
    assert run("import", str(week), "--mapping", str(LAB_EXAMPLE / "mapping.yaml")).exit_code == 0
    week.write_text("sample_id,composition,band_gap,band_gap_unit,T_K\nw1,GaN,-3,eV,300\n")  # nothing valid left
    preview = run("import", str(week), "--mapping", str(LAB_EXAMPLE / "mapping.yaml"), "--dry-run")
    assert "none written (dry run); it would withdraw 1 (no longer in the file)" in preview.stdout  # w2; w1 stays
    result = run("import", str(week), "--mapping", str(LAB_EXAMPLE / "mapping.yaml"))
    assert result.exit_code == 1
    assert result.stderr == "error: nothing valid was found (the run is stored: it withdrew 1 record(s))\n"


LAB_IMPORT = ["import", str(LAB_EXAMPLE / "bandgaps.csv"), "-m", str(LAB_EXAMPLE / "mapping.yaml")]


@pytest.mark.parametrize("command", [LAB_IMPORT, ["sql", "select count(*) from materials"], ["status"]])
def test_a_store_path_with_a_comma_is_refused_before_anything_is_written(run, tmp_path, command):
    """DuckDB resolves the views' files through file_search_path, a comma-separated list: it would find none."""
    store = tmp_path / "sp ace,comma" / "s"
    result = run(*command, "--store", str(store))
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: cannot use {store} as a store: its path has a comma")
    assert not (tmp_path / "sp ace,comma").exists()


@pytest.mark.parametrize("command", [LAB_IMPORT, ["sql", "select count(*) from materials"], ["status"]])
def test_a_store_path_that_is_a_file_is_refused_as_no_store_directory(run, tmp_path, command):
    store = tmp_path / "afile"
    store.write_text("not a store\n", encoding="utf-8")
    result = run(*command, "--store", str(store))
    assert result.exit_code == 2 and result.stderr == f"error: {store} is a file, not a matreg store directory\n"
    assert store.read_text(encoding="utf-8") == "not a store\n"


@pytest.mark.parametrize(
    ("char", "named"), [("?", "a question mark ('?')"), ("\\", "a backslash ('\\')")], ids=["question", "backslash"]
)
@pytest.mark.parametrize("command", [LAB_IMPORT, ["status"]], ids=["import", "status"])
def test_a_store_path_with_a_character_duckdb_misreads_is_refused_before_anything_is_written(
    run, tmp_path, command, char, named
):
    """DuckDB ends a file's name at a '?' and reads a '\\' in a file pattern as a folder separator: the store's views
    would be written elsewhere, or read no file (a traceback, a run staged for ever)."""
    store = tmp_path / f"lab{char}2" / "s"
    result = run(*command, "--store", str(store))
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.output
    assert result.stderr.startswith(f"error: cannot use {store} as a store: its path has {named}")
    assert result.stderr.endswith("choose a folder whose path has no comma, question mark or backslash\n")
    assert not (tmp_path / f"lab{char}2").exists()


def test_an_empty_store_path_is_a_usage_error_not_the_current_folder(run, tmp_path, monkeypatch):
    """`--store ""` made the current folder the store (an empty MATREG_STORE is no store option: the default)."""
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    (home / "tmp" / "keep.txt").write_text("important\n", encoding="utf-8")
    monkeypatch.chdir(home)
    result = run(*LAB_IMPORT, "--store", "")
    said = " ".join(result.stderr.replace("\u2502", " ").split())  # typer draws the error in a box
    assert result.exit_code == 2 and "Invalid value for '--store' (env var: 'MATREG_STORE'): give the store's" in said
    assert "folder (an empty path would be the current folder)" in said
    assert sorted(path.name for path in home.rglob("*")) == ["keep.txt", "tmp"]
    monkeypatch.setenv("MATREG_STORE", "")
    assert run(*LAB_IMPORT).exit_code == 0 and (home / "matreg-store" / "format").exists()


def _two_hours_old(*paths: Path) -> None:
    two_hours_ago = time.time() - 7200
    for path in paths:
        os.utime(path, (two_hours_ago, two_hours_ago))


def test_a_writer_removes_only_what_matreg_names_from_the_store_folders(run, tmp_path):
    """What a killed process left goes an hour on (`remove_leftovers`), by the names matreg gives: a file of another
    program's in tmp/, staging/ or locks/ is never deleted, however old."""
    store = tmp_path / "store"
    keep, notes, photo, lock = (
        store / "tmp" / "keep.txt",
        store / "tmp" / "notes" / "a.txt",
        store / "staging" / "photo.png",
        store / "locks" / "mine.lock",
    )
    for path in (keep, notes, photo, lock):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("important\n", encoding="utf-8")
    killed = [store / "tmp" / ("a" * 32), store / "staging" / "20260101T000000000000Z-janaf-0123abcd"]
    for folder in killed:
        folder.mkdir()
    _two_hours_old(keep, notes, notes.parent, photo, lock, *killed)
    result = run("fetch", "janaf", "H-064", "--no-progress", "--store", str(store))
    assert result.exit_code == 0, result.output
    assert all(path.read_text(encoding="utf-8") == "important\n" for path in (keep, notes, photo, lock))
    assert not any(folder.exists() for folder in killed)


@pytest.mark.parametrize("command", [["fetch", "janaf", "H-064", "--no-progress"], LAB_IMPORT, ["status"]])
def test_a_folder_holding_other_files_is_refused_as_a_store(run, tmp_path, command):
    """`--store .` or `--store ~` would make matreg's folders beside the user's files and remove its leftovers
    there: a folder that holds anything but a store's files is refused, untouched, unless it is a store already."""
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    (home / "notes.txt").write_text("important\n", encoding="utf-8")
    result = run(*command, "--store", str(home))
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: cannot use {home} as a store: it is a folder of other files (notes.txt), not a matreg store; give a "
        "new or empty folder, or a store's\n"
    )
    assert sorted(path.name for path in home.rglob("*")) == ["notes.txt", "tmp"]


def test_a_store_holding_files_of_its_users_is_written_as_before(filled):
    store = Path(os.environ["MATREG_STORE"])
    (store / "README.txt").write_text("our group's store\n", encoding="utf-8")
    result = filled("fetch", "janaf", "C-095", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "read 1, 1 valid records" in result.stdout


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_store_path_starting_with_a_tilde_is_in_the_home_folder(run, tmp_path, monkeypatch, how):
    """A `~` no shell expanded (quoted, systemd's Environment=, a .env file) made a folder named '~' here."""
    home, here = tmp_path / "home", tmp_path / "here"
    home.mkdir()
    here.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    if how == "environment":
        monkeypatch.setenv("MATREG_STORE", "~/lab-store")
    result = run(*LAB_IMPORT, *(["--store", "~/lab-store"] if how == "option" else []))
    assert result.exit_code == 0, result.output
    assert (home / "lab-store" / "format").exists() and not list(here.iterdir())
    shown = run("sql", "select count(*) as n from materials", "--store", "~/lab-store", "--format", "csv")
    assert shown.stdout.splitlines() == ["n", "30"]


@pytest.mark.parametrize("option", ["--store", "--catalog"])
def test_a_path_starting_with_the_home_of_no_user_is_a_usage_error(run, option):
    """`~nosuchuser/x` was a traceback (Path.expanduser's RuntimeError); a --catalog's a file not found, '~' unread."""
    result = run("export", "gaps", "--out", "gaps.csv", option, "~nosuchuser-of-matreg/x")
    said = " ".join(result.stderr.replace("\u2502", " ").split())  # typer draws the error in a box
    assert result.exit_code == 2, result.output
    assert "no user 'nosuchuser-of-matreg' for '~nosuchuser-of-matreg/x' (a leading ~ is a home folder)" in said


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_catalog_path_starting_with_a_tilde_is_in_the_home_folder(run, catalog_path, tmp_path, monkeypatch, how):
    """`--catalog ~/c.yaml` (or MATREG_CATALOG) no shell expanded was a file '~/c.yaml' here, not found."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "my-catalog.yaml").write_bytes(catalog_path.read_bytes())
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MATREG_CATALOG", "~/my-catalog.yaml" if how == "environment" else "")
    result = run("catalog", *(["--catalog", "~/my-catalog.yaml"] if how == "option" else []))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"catalog: {home / 'my-catalog.yaml'}\n")


def test_an_empty_catalog_path_is_a_usage_error(run):
    """`--catalog ""` read the current folder as the catalog ('cannot read .: Is a directory')."""
    result = run("catalog", "--catalog", "")
    said = " ".join(result.stderr.replace("\u2502", " ").split())  # typer draws the error in a box
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--catalog' (env var: 'MATREG_CATALOG'): give the catalog's file (an empty path" in said
    assert "would be the current folder)" in said


def test_a_new_folder_holding_only_placeholder_files_is_used_as_a_store(run, tmp_path):
    """A folder kept in git by a .gitkeep or .gitignore, or one Finder left a .DS_Store in, looks empty to its user:
    it was refused as a folder of other files."""
    store = tmp_path / "store"
    store.mkdir()
    for name in (".gitkeep", ".gitignore", ".DS_Store"):
        (store / name).write_text("", encoding="utf-8")
    result = run(*LAB_IMPORT, "--store", str(store))
    assert result.exit_code == 0, result.output
    assert (store / "format").exists() and (store / ".gitkeep").exists()


def test_an_old_store_whose_duckdb_file_was_deleted_is_still_a_store_beside_a_users_files(run, tmp_path):
    """A store of a matreg before store formats has no `format` file; with its matreg.duckdb deleted (a cache of
    views, rebuilt on the next write) and a user's notes beside it, it was refused as a folder of other files:
    the views' stamp that only matreg writes says it is a store."""
    store = tmp_path / "store"
    assert run(*LAB_IMPORT, "--store", str(store)).exit_code == 0
    (store / "format").unlink()
    (store / "matreg.duckdb").unlink()
    (store / "notes.txt").write_text("samples from the March batch", encoding="utf-8")
    result = run(*LAB_IMPORT, "--store", str(store))  # the same file again: its records unchanged
    assert result.exit_code == 0, result.output
    assert (store / "matreg.duckdb").exists() and (store / "notes.txt").exists()
    assert run("status", "--store", str(store)).exit_code == 0


def test_a_store_whose_data_folder_is_on_another_file_system_says_so(run, tmp_path):
    """Commits are written in tmp/ and renamed into data/: a data/ linked to another file system refuses the rename
    (EXDEV), said as such, naming both folders; nothing is published, the run stays staged. The other file system: a
    tmpfs mounted in a mount namespace of the command's own (`unshare`), skipped where there is none."""
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("no mount namespace here (unshare -rm) to mount another file system in")
    store, other = tmp_path / "store", tmp_path / "other"
    store.mkdir()
    other.mkdir()
    (store / "data").symlink_to(other)
    matreg = [sys.executable, "-m", "matreg", *LAB_IMPORT, "--store", str(store)]
    script = 'mount -t tmpfs tmpfs "$1" && shift && exec "$@"'
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(other), *matreg], capture_output=True, **utf8_child()
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"error: cannot move {store / 'tmp'}{os.sep}")
    assert f" into {store / 'data'}: {store / 'tmp'} and {store / 'data'} are on different file systems" in (
        result.stderr
    )
    assert result.stderr.endswith("keep the store's data/, tmp/ and staging/ on one file system\n")


def test_a_file_name_too_long_with_what_matreg_adds_is_refused_before_anything_is_written(filled, tmp_path):
    """An export's sidecar is written under a temp name 48 bytes longer than the export's name, a release under one
    38 bytes longer than its version: a name that fits the file system alone is refused up front, saying how long it
    may be, not with the OS's error naming a hidden temp file."""
    out = tmp_path / "long" / f"{'x' * 204}.csv"
    result = filled("export", "gaps", "--out", str(out))
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: cannot write {out}: its name is 208 bytes long, and matreg writes it under a temp name 48 bytes "
        "longer first, past the 255 bytes a name may have there: give a name of at most 207 bytes\n"
    )
    assert not out.parent.exists()
    assert filled("export", "gaps", "--out", str(out.with_name(f"{'x' * 203}.csv"))).exit_code == 0
    version = f"2.0.0-{'a' * 230}"
    result = filled("release", "gaps", "--version", version)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: cannot write ") and result.stderr.endswith(
        f"{version}: its name is 236 bytes long, and matreg writes it under a temp name 38 bytes longer first, "
        "past the 255 bytes a name may have there: give a name of at most 217 bytes\n"
    )


def test_a_name_too_long_for_the_file_system_in_a_path_written_is_said_as_such(filled, tmp_path):
    """A name of the user's path past the file system's limit (ENAMETOOLONG): which name, how long, the limit."""
    out = tmp_path / ("y" * 300) / "gaps.csv"
    result = filled("export", "gaps", "--out", str(out))
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: cannot write {out}: the name '{'y' * 300}' is 300 bytes long, past the 255 bytes a name may have "
        "there\n"
    )


@pytest.mark.parametrize(
    "command",
    [["export", "gaps", "--format", "torch"], ["train", "gaps", "--model", "elemnet", "--epochs", "1"]],
    ids=["export", "train"],
)
def test_an_ml_output_folder_name_too_long_for_the_file_system_is_said_as_such(filled, tmp_path, command):
    """A torch export's or a run's --out of a name past the file system's limit was the OS's bare error ('[Errno 36]
    File name too long'), as its folder was first looked at: said as a file's is (`matreg export --out`)."""
    before = sorted(tmp_path.iterdir())
    for out in (tmp_path / ("t" * 300), tmp_path / ("t" * 300) / "run"):
        result = filled(*command, "--out", str(out))
        assert result.exit_code == 2, result.output
        assert result.stderr == (
            f"error: cannot write {out}: the name '{'t' * 300}' is 300 bytes long, past the 255 bytes a name may have "
            "there\n"
        )
    assert sorted(tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    ("command", "doing"),
    [
        (["status", "--store"], "cannot use {path} as a store"),
        (["export", "gaps", "--out"], "cannot write {path}"),
        (["train", "{path}", "--model", "elemnet", "--out", "run"], "cannot read {path}"),
        (["train", "gaps", "--split", "predefined", "--assignment"], "cannot read assignment {path}"),
        (["predict", "{path}", "NaCl"], "cannot read {path}"),
        (["predict", "run", "NaCl", "--out"], "cannot write {path}"),
        (["import", "{path}", "-m", str(LAB_EXAMPLE / "mapping.yaml")], "cannot read {path}"),
    ],
    ids=["store", "export", "train", "assignment", "predict", "predictions", "import"],
)
def test_a_path_too_long_for_the_file_system_whose_names_are_not_is_said_as_such(
    filled, tmp_path, monkeypatch, command, doing
):
    """A path past PATH_MAX (4096 bytes) of names each within the file system's limit was the OS's bare error
    ('[Errno 36] File name too long: ' and the whole path), also as part of another (predict's run, train's
    assignment)."""
    monkeypatch.chdir(tmp_path)  # (train's run folder)
    path = tmp_path.joinpath(*["d" * 200] * 21, "out.csv")
    args = [arg.replace("{path}", str(path)) for arg in command] + ([] if "{path}" in command else [str(path)])
    result = filled(*args)
    assert result.exit_code == 2, result.output
    said = re.fullmatch(rf"error: {re.escape(doing.format(path=path))}: its path is (\d+) bytes long, past the 4095 "
                        r"bytes a path may have\n", result.stderr)  # fmt: skip
    assert said and int(said[1]) >= len(os.fsencode(path)), result.stderr  # (an export's: its temp file's, longer)


@pytest.mark.parametrize(
    "options",
    [["-m", "{path}"], ["-m", str(LAB_EXAMPLE / "mapping.yaml"), "--catalog", "{path}"]],
    ids=["mapping", "catalog"],
)
def test_a_mapping_or_catalog_path_too_long_for_the_file_system_is_said_as_such(run, tmp_path, options):
    """An import's mapping or catalog file by a path past PATH_MAX (4096 bytes), or holding a name past the file
    system's limit, was the OS's reason alone ('cannot read ...: File name too long'): said with how long it is and
    the limit, as the other paths matreg refuses are."""
    deep, named = tmp_path.joinpath(*["d" * 200] * 21, "m.yaml"), tmp_path / ("m" * 300) / "m.yaml"
    for path, said in (
        (deep, f"its path is {len(os.fsencode(deep))} bytes long, past the 4095 bytes a path may have"),
        (named, f"the name '{'m' * 300}' is 300 bytes long, past the 255 bytes a name may have there"),
    ):
        args = [arg.replace("{path}", str(path)) for arg in options]
        result = run("import", str(LAB_EXAMPLE / "bandgaps.csv"), *args)
        assert result.exit_code == 2, result.output
        assert result.stderr == f"error: cannot read {path}: {said}\n"
    assert not (tmp_path / "store").exists()


def test_a_run_folder_name_too_long_for_its_staging_folder_is_refused_before_the_training(filled, tmp_path):
    """A run trained on an export is staged in a folder beside --out, its name 38 bytes longer: an --out of 218-255
    bytes was refused once the model was trained, by the OS's error naming the hidden staging folder."""
    export = tmp_path / "export"
    assert filled("export", "gaps", "--format", "torch", "--out", str(export)).exit_code == 0
    out = tmp_path / ("r" * 230)
    result = filled("train", str(export), "--model", "elemnet", "--epochs", "1", "--out", str(out))
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: cannot write {out}: its name is 230 bytes long, and matreg writes it under a temp name 38 bytes "
        "longer first, past the 255 bytes a name may have there: give a name of at most 217 bytes\n"
    )
    assert not out.exists() and [path.name for path in tmp_path.glob(".r*")] == []


def test_a_training_source_path_too_long_for_the_file_system_is_said_as_such(filled, tmp_path):
    """An export folder given to `train` by a path holding a name past the file system's limit was the OS's bare
    error ('[Errno 36] File name too long'), exit 1."""
    source = tmp_path / ("e" * 300) / "export"
    result = filled("train", str(source), "--model", "elemnet", "--epochs", "1", "--out", str(tmp_path / "run"))
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: cannot read {source}: the name '{'e' * 300}' is 300 bytes long, past the 255 bytes a name may have "
        "there\n"
    )


@pytest.mark.parametrize("command", [LAB_IMPORT, ["status"]], ids=["import", "status"])
def test_a_store_folder_name_too_long_for_the_file_system_is_said_as_such(run, tmp_path, command):
    """A --store of a name past the file system's limit was the OS's bare error ('[Errno 36] File name too long')."""
    for store in (tmp_path / ("s" * 300), tmp_path / ("s" * 300) / "store"):
        result = run(*command, "--store", str(store))
        assert result.exit_code == 2, result.output
        assert result.stderr == (
            f"error: cannot use {store} as a store: the name '{'s' * 300}' is 300 bytes long, past the 255 bytes a "
            "name may have there\n"
        )


def test_a_dataset_name_too_long_for_its_runs_lock_file_is_refused_before_anything_is_written(run, tmp_path):
    mapping = tmp_path / "mapping.yaml"
    text = (LAB_EXAMPLE / "mapping.yaml").read_text(encoding="utf-8")
    mapping.write_text(re.sub("(?m)^dataset: .*$", f"dataset: {'d' * 230}", text), encoding="utf-8")
    store = tmp_path / "new-store"
    result = run("import", str(LAB_EXAMPLE / "bandgaps.csv"), "-m", str(mapping), "--store", str(store))
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: cannot start a run of '{'d' * 230}': the name is 230 bytes long, and a run's lock file "
        "(locks/<run id>.lock) adds 37 bytes to it, past the 255 bytes a name may have in "
        f"{store}: give a source or dataset name of at most 218 bytes\n"
    )
    assert not store.exists()


def test_a_lab_mapping_that_gives_a_key_twice_is_refused_not_read_as_the_last(run, tmp_path):
    text = (LAB_EXAMPLE / "mapping.yaml").read_text(encoding="utf-8")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(text + "provenance: dft\n", encoding="utf-8")  # 30 experimental band gaps stored as DFT
    first = text.splitlines().index("provenance: experimental") + 1
    result = run("import", str(LAB_EXAMPLE / "bandgaps.csv"), "-m", str(mapping), "--dry-run")
    assert result.exit_code == 2 and result.stderr == (
        f"error: {mapping}: line {len(text.splitlines()) + 1}: malformed YAML: duplicate key 'provenance' "
        f"(first on line {first}): give each key once\n"
    )


@pytest.mark.parametrize("kind", ["lab mapping", "catalog"])
def test_a_yaml_file_in_a_windows_code_page_is_refused_with_where_and_how_to_save_it(run, tmp_path, kind):
    bundled = LAB_EXAMPLE / "mapping.yaml" if kind == "lab mapping" else REPO / "catalog.yaml"
    text = bundled.read_text(encoding="utf-8")
    path = tmp_path / bundled.name
    path.write_bytes(text.replace("citation: ", "citation: Müller, ", 1).encode("cp1252"))  # a Windows editor's
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if row.lstrip().startswith("citation: "))
    lab_import = ["import", str(LAB_EXAMPLE / "bandgaps.csv"), "-m", str(path), "--dry-run"]
    result = run(*(lab_import if kind == "lab mapping" else ["catalog", "--catalog", str(path)]))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith(f"error: cannot read {path}: not UTF-8 text: line {line}, byte ")
    assert "b'\\xfc' after '" in result.stderr and result.stderr.endswith("citation: M'; save it as UTF-8\n")


def test_a_store_path_with_a_quote_is_written_and_read(run, tmp_path):
    store = str(tmp_path / "o'brien lab" / "s")
    data = tmp_path / "gaps.csv"
    header = "sample_id,composition,band_gap,band_gap_unit,T_K\n"
    data.write_text(header + "s1,GaN,3.4,eV,300\ns2,ZnO,3.3,eV,300\n", encoding="utf-8")
    assert run("import", str(data), "-m", str(LAB_EXAMPLE / "mapping.yaml"), "--store", store).exit_code == 0
    data.write_text(header + "s1,GaN,3.5,eV,300\n", encoding="utf-8")  # s1 changed, s2 withdrawn
    result = run("import", str(data), "-m", str(LAB_EXAMPLE / "mapping.yaml"), "--store", store)
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    shown = run("sql", "select formula, band_gap from properties_wide", "--store", store, "--format", "csv")
    assert shown.stdout.splitlines() == ["formula,band_gap", "GaN,3.5"]


def test_import_of_a_file_of_a_stored_name_from_another_folder_asks_for_a_name(run, tmp_path):
    mapping = str(LAB_EXAMPLE / "mapping.yaml")
    header = "sample_id,composition,band_gap,band_gap_unit,T_K\n"
    for student in ("alice", "bob"):
        (tmp_path / student).mkdir()
        (tmp_path / student / "gaps.csv").write_text(header + "s1,GaN,3.4,eV,300\n", encoding="utf-8")
    assert run("import", str(tmp_path / "alice" / "gaps.csv"), "-m", mapping).exit_code == 0
    refused = run("import", str(tmp_path / "bob" / "gaps.csv"), "-m", mapping, "--dry-run")
    assert refused.exit_code == 2 and "which is still there" in refused.stderr
    assert "(--as bob/gaps.csv)" in refused.stderr and "Traceback" not in refused.output
    kept = run("import", str(tmp_path / "bob" / "gaps.csv"), "-m", mapping, "--as", "bob/gaps.csv")
    assert kept.exit_code == 0 and "1 written" in kept.stdout
    assert "lab import of bob/gaps.csv" in run("sql", "select query from fetch_runs", "--format", "csv").stdout


def test_an_import_moved_from_another_folder_withdraws_the_rows_deleted_as_it_moved(run, tmp_path):
    mapping = str(LAB_EXAMPLE / "mapping.yaml")
    header = "sample_id,composition,band_gap,band_gap_unit,T_K\n"
    (tmp_path / "incoming").mkdir()
    first = tmp_path / "incoming" / "gaps.csv"
    first.write_text(header + "s1,GaN,3.4,eV,300\ns2,ZnO,3.3,eV,300\n", encoding="utf-8")
    assert run("import", str(first), "-m", mapping).exit_code == 0
    (tmp_path / "checked").mkdir()
    moved = first.rename(tmp_path / "checked" / "gaps.csv")
    moved.write_text(header + "s1,GaN,3.4,eV,300\n", encoding="utf-8")  # s2 deleted as it moved
    elsewhere = tmp_path / "elsewhere.csv"
    refused = run("import", str(moved), "-m", mapping, "--moved-from", str(elsewhere))
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert refused.stderr == (
        f"error: gaps.csv of demo-lab-bandgaps was never imported from {elsewhere}, which the import says it moved "
        f"from; it was imported from {first}\n"
    )
    preview = run("import", str(moved), "-m", mapping, "--moved-from", str(first), "--dry-run")
    assert "none written (dry run); it would withdraw 1 (no longer in the file)" in preview.stdout
    result = run("import", str(moved), "-m", mapping, "--moved-from", str(first))
    assert result.exit_code == 0 and "1 written, 1 withdrawn (no longer in the file)" in result.stdout
    shown = run("sql", "select formula from properties_wide", "--format", "csv")
    assert shown.stdout.splitlines() == ["formula", "GaN"]


def test_an_import_under_the_name_of_a_source_of_the_catalog_it_reads_is_refused(run, catalog_path, tmp_path):
    mapping = (
        "dataset: janaf\nformula_column: formula\nid_column: id\nprovenance: experimental\nmethod: PBE\n"
        "citation: our notebook\nlicense: proprietary\ncolumns:\n  gap: {property: band_gap, unit: eV}\n"
    )
    refused = cli_import(run, tmp_path, "gaps", "id,formula,gap\nH-064,H2O,6.5\n", mapping)
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert "gaps.yaml: dataset 'janaf' is the name of a catalog source (NIST-JANAF (local replay))" in refused.stderr
    assert "give the dataset a name of its own in the mapping (dataset: janaf-lab, say)" in refused.stderr
    assert not (tmp_path / "store").exists()
    labs = tmp_path / "labs.yaml"  # a catalog given with --catalog is the one read
    labs.write_text(catalog_path.read_text(encoding="utf-8").replace("  janaf:\n", "  smith-lab:\n"))
    (tmp_path / "gaps.yaml").write_text(mapping.replace("janaf", "smith-lab"), encoding="utf-8")
    command = ["import", str(tmp_path / "gaps.csv"), "-m", str(tmp_path / "gaps.yaml")]
    assert "dataset 'smith-lab' is the name of a catalog source" in run(*command, "--catalog", str(labs)).stderr
    assert run(*command).exit_code == 0  # (the test's catalog has no smith-lab)


def test_an_import_refused_for_a_source_of_the_catalog_in_the_working_folder_names_that_catalog(
    run, catalog_path, tmp_path, monkeypatch
):
    monkeypatch.delenv("MATREG_CATALOG")
    monkeypatch.chdir(catalog_path.parent)  # ./catalog.yaml is read
    mapping = "dataset: janaf\nformula_column: formula\ncitation: ours\ncolumns:\n"
    mapping += "  gap: {property: band_gap, unit: eV}\n"
    refused = cli_import(run, tmp_path, "gaps", "formula,gap\nH2O,6.5\n", mapping)
    assert refused.exit_code == 2
    assert f"of the catalog read, {catalog_path.resolve()} (--catalog or MATREG_CATALOG name another)" in " ".join(
        refused.stderr.split()
    )


def test_an_import_warns_of_a_dft_functional_it_files_as_measured(run, tmp_path):
    mapping = (
        "dataset: smith-lab\nformula_column: formula\nid_column: id\ncitation: our notebook\ncolumns:\n"
        "  gap: {property: band_gap, unit: eV}\n  gap_pbe: {property: band_gap, unit: eV, method: GGA-PBE}\n"
    )
    result = cli_import(run, tmp_path, "gaps", "id,formula,gap,gap_pbe\nS1,GaAs,1.42,0.19\n", mapping)
    assert result.exit_code == 0
    warning = "warning: column 'gap_pbe': its values by PBE, a DFT functional, are filed as experimental"
    assert result.stderr.startswith(warning) and result.stderr.count("\n") == 1


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_export_writes_the_dataset_and_a_sidecar(filled, tmp_path, fmt):
    out = tmp_path / f"thermo.{fmt}"
    result = filled("export", "thermo", "--format", fmt, "--out", str(out))
    assert result.exit_code == 0, result.output
    frame = {"parquet": pd.read_parquet, "csv": pd.read_csv, "jsonl": lambda p: pd.read_json(p, lines=True)}[fmt](out)
    assert len(frame) == 4 and set(frame["property"]) == {"enthalpy_of_formation", "entropy"}
    assert set(frame["unit"]) == {"kJ/mol", "J/(mol*K)"}
    meta = json.loads(out.with_name(out.name + ".meta.json").read_text())
    assert meta["rows"] == 4 and meta["units"]["entropy"] == "J/(mol*K)"
    assert meta["sources"][0]["citation"] == "Chase 1998"


@pytest.mark.parametrize("folder", ["x.csv", "x.csv.meta.json"])
def test_an_export_where_a_folder_stands_is_refused_before_anything_is_written(filled, tmp_path, folder):
    (tmp_path / "out" / folder).mkdir(parents=True)
    result = filled("export", "thermo", "--out", str(tmp_path / "out" / "x.csv"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    said = f"error: cannot write the file {tmp_path / 'out' / folder}: a folder of that name is there\n"
    assert result.stderr == said
    assert [path.name for path in (tmp_path / "out").iterdir()] == [folder]  # no data file, sidecar or temp file


def test_an_export_to_an_unwritable_place_is_a_one_line_error(filled, tmp_path):
    (tmp_path / "file").write_text("")
    result = filled("export", "thermo", "--out", str(tmp_path / "file" / "x.csv"))  # a folder that is a file
    assert result.exit_code == 1 and result.stderr.startswith("error: ") and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("code", "exit_code", "said"),
    [
        (errno.ENOSPC, 75, "No space left on device (ENOSPC): a failure for now: free space there, or raise the quota"),
        (errno.EDQUOT, 75, "Disk quota exceeded (EDQUOT): a failure for now: free space there, or raise the quota"),
        (errno.EACCES, 1, "Permission denied (EACCES)"),
        (errno.EROFS, 1, "Read-only file system (EROFS)"),
    ],
)
def test_an_export_the_file_system_refuses_is_a_one_line_error_naming_the_file(
    filled, tmp_path, monkeypatch, code, exit_code, said
):
    """A disk full or a quota reached is a failure for now (exit 75: run it again once there is space); no permission,
    or a read-only file system, is not (exit 1). The error names the file asked for, never a temp file, and the
    export leaves nothing. (The file system's error, as the OS raises it, in the first rename of the written files:
    the sidecar's.)"""
    replace = os.replace

    def refused(source, target):
        if Path(target).name == "x.csv.meta.json":
            raise OSError(code, os.strerror(code))
        replace(source, target)

    monkeypatch.setattr(os, "replace", refused)
    result = filled("export", "thermo", "--out", str(tmp_path / "out" / "x.csv"))
    assert result.exit_code == exit_code and "Traceback" not in result.output
    assert result.stderr == f"error: cannot write {tmp_path / 'out' / 'x.csv'}: {said}" + (
        ", and run the command again\n" if exit_code == 75 else "\n"
    )
    assert list((tmp_path / "out").iterdir()) == []


def test_a_parquet_export_onto_a_full_disk_is_said_as_every_full_disk_is(filled, tmp_path, monkeypatch):
    """pyarrow's error of a full disk is its own text around the OS's: 'Error writing bytes to file. Detail: [errno
    28] No space left on device' was said inside matreg's ('cannot write ...: Error writing bytes ... (ENOSPC)'); now
    in the OS's words, as every full disk (exit 75), the file asked for named, nothing left."""
    parquet_onto_full_disk(monkeypatch)
    result = filled("export", "thermo", "--out", str(tmp_path / "out" / "x.parquet"))
    assert result.exit_code == 75 and "Traceback" not in result.output
    assert result.stderr == (
        f"error: cannot write {tmp_path / 'out' / 'x.parquet'}: No space left on device (ENOSPC): a failure for now: "
        "free space there, or raise the quota, and run the command again\n"
    )
    assert list((tmp_path / "out").iterdir()) == []


def test_a_fetch_the_disk_fills_up_under_says_what_it_committed_and_how_to_continue(run, monkeypatch):
    """A disk full as a fetch publishes is a failure for now (exit 75) that the same command with --resume continues
    once there is space, as after a source unreachable: the error says which run holds what."""
    write_table = pq.ParquetWriter.write_table
    disk_full_at_rows_of(monkeypatch, "properties")  # (the materials file is written, then the disk is full)
    result = run("fetch", "janaf", "H-064", "C-095", "--no-progress")
    assert result.exit_code == 75 and "Traceback" not in result.output
    store = os.environ["MATREG_STORE"]
    assert result.stderr.startswith(f"error: cannot write {store}: No space left on device (ENOSPC): a failure for now")
    said = "committed 2 records read (staged, not published); the same command with --resume continues it"
    assert said in result.stderr
    monkeypatch.setattr(pq.ParquetWriter, "write_table", write_table)  # (space freed)
    assert run("fetch", "janaf", "H-064", "C-095", "--resume", "--no-progress").exit_code == 0


@pytest.mark.parametrize("cache", ["kept", "new"])
def test_a_disk_full_as_the_http_cache_saves_is_a_failure_for_now_naming_it(run, monkeypatch, cache):
    """--cache keeps the answers in <store>/http_cache.sqlite (requests-cache's SQLite); SQLite's 'database or disk is
    full' as one is saved was passed over, the answer not kept and the disk full unsaid (exit 0), and as a new cache
    file is made, a traceback ('no such table'; on a real full disk requests-cache waited for good for a write it
    could not begin). Now a failure for now, exit 75, naming the cache file; the store's data as before."""
    if cache == "kept":
        assert run("fetch", "janaf", "H-064", "--no-progress").exit_code == 0
    store = Path(os.environ["MATREG_STORE"])
    before = visible_tables(Store(store)) if cache == "kept" else None
    sqlite_disk_full(monkeypatch)
    result = run("fetch", "janaf", "C-095", "Al-001", "--no-progress")
    assert result.exit_code == 75 and "Traceback" not in result.output, result.output
    assert result.stderr.startswith(
        f"error: cannot write {store / 'http_cache.sqlite'}: database or disk is full (ENOSPC): a failure for now: "
        "free space there, or raise the quota, and run the command again"
    )
    if before is not None:
        assert_failed_without_trace(Store(store), before, "database or disk is full")


def test_a_disk_io_error_as_the_http_cache_saves_names_it_and_what_to_do(run):
    """On a disk whose quota is reached SQLite says 'disk I/O error' (SQLITE_IOERR, no errno), which requests-cache
    passed over as it saved an answer: nothing kept, nothing said (exit 0). Now an error naming the cache file and
    SQLite's code, and what to do (exit 1: an I/O error may be a failing disk too); the store's data as before."""
    assert run("fetch", "janaf", "H-064", "--no-progress").exit_code == 0
    store = Path(os.environ["MATREG_STORE"])
    before = visible_tables(Store(store))
    cache = store / "http_cache.sqlite"
    # (the cache may not grow: the next answer saved in it fails)
    result = matreg_with_files_capped(cache.stat().st_size, "fetch", "janaf", "C-095", "--no-progress")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr == (
        f"error: cannot write {cache}: disk I/O error (SQLITE_IOERR_WRITE): the HTTP cache could not be written: "
        "free space there (a disk quota reached is said so too), or fetch with --no-cache\n"
    )
    assert_failed_without_trace(Store(store), before, "disk I/O error (SQLITE_IOERR_WRITE)")


def test_a_fetch_whose_first_page_the_file_system_refuses_leaves_no_staged_run_behind(run):
    """A fetch whose first page's journal the file system refused (EFBIG: a file-size limit, `ulimit -f`) left that
    journal, its frames written in part and no page committed, and the run's lock file: nothing to resume, and
    neither `status` nor `drop` showed it, until a writer removed it an hour on. The failing run drops them itself."""
    assert run("fetch", "janaf", "H-064", "--no-progress").exit_code == 0
    store = Path(os.environ["MATREG_STORE"])
    before = visible_tables(Store(store))
    result = matreg_with_files_capped(512, "fetch", "janaf", "C-095", "--no-progress", "--no-cache")
    assert result.returncode == 1 and result.stderr == f"error: cannot write {store}: File too large (EFBIG)\n"
    assert list((store / "staging").iterdir()) == [] and list((store / "locks").iterdir()) == []
    assert all(visible_tables(Store(store))[name].equals(frame) for name, frame in before.items())
    assert run("fetch", "janaf", "C-095", "--no-progress").exit_code == 0


@pytest.mark.as_a_user
def test_a_fetch_with_a_read_only_http_cache_is_refused_naming_it_before_any_request(run, janaf_server):
    """SQLite refused each answer saved into a read-only cache file ('attempt to write a readonly database'), which
    requests-cache passed over: --cache kept nothing, and said nothing. Now refused before the source is asked."""
    assert run("fetch", "janaf", "H-064", "--no-progress").exit_code == 0
    cache = Path(os.environ["MATREG_STORE"]) / "http_cache.sqlite"
    cache.chmod(0o444)
    asked = len(janaf_server.requests)
    result = run("fetch", "janaf", "C-095", "--no-progress")
    assert result.exit_code == 1 and len(janaf_server.requests) == asked
    assert result.stderr == (
        f"error: cannot write {cache}: attempt to write a readonly database (SQLITE_READONLY): the HTTP cache could "
        "not be written: make it and its folder writable, or fetch with --no-cache\n"
    )
    assert run("fetch", "janaf", "C-095", "--no-progress", "--no-cache").exit_code == 0


@pytest.mark.as_a_user
def test_an_export_into_a_folder_without_write_permission_is_a_one_line_error_naming_the_file(filled, tmp_path):
    (tmp_path / "out").mkdir(mode=0o555)
    result = filled("export", "thermo", "--out", str(tmp_path / "out" / "x.csv"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr == f"error: cannot write {tmp_path / 'out' / 'x.csv'}: Permission denied (EACCES)\n"


@pytest.mark.parametrize(
    ("name", "read"),
    [("t.csv", pd.read_csv), ("t.jsonl", lambda path: pd.read_json(path, lines=True)), ("T.PARQUET", pd.read_parquet)],
)
def test_an_export_without_format_is_written_in_the_format_its_suffix_names(filled, tmp_path, name, read):
    result = filled("export", "thermo", "--out", str(tmp_path / name))
    assert result.exit_code == 0, result.output
    assert len(read(tmp_path / name)) == 4
    assert json.loads((tmp_path / f"{name}.meta.json").read_text())["format"] == name.split(".")[1].lower()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--out", "t.txt"], "--out t.txt: a file export's name ends in its format's suffix, one of .parquet, .csv, "),
        (["--out", "t.csv.gz"], "--out t.csv.gz: a file export's name ends in its format's suffix"),
        (["--out", "t"], "--out t: a file export's name ends in its format's suffix"),
        (["--format", "parquet", "--out", "t.csv"], "--format parquet and --out t.csv disagree: name"),
        (["--format", "csv", "--release", "0.1.0", "--out", "t.jsonl"], "--format csv and --out t.jsonl disagree"),
    ],
)
def test_an_export_name_that_names_no_format_or_another_is_refused(filled, tmp_path, monkeypatch, options, message):
    monkeypatch.chdir(tmp_path)
    result = filled("export", "thermo", *options)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {message}")
    assert list(tmp_path.glob("t*")) == []


def test_wide_export_keeps_a_row_per_method(run, tmp_path):
    (tmp_path / "two.csv").write_text("id,formula,uv,pl\ns1,ZnO,3.05,3.2\n", encoding="utf-8")
    (tmp_path / "two.yaml").write_text(
        "dataset: lab-b\nformula_column: formula\nid_column: id\nprovenance: experimental\ncitation: notebook 3\n"
        "columns:\n  uv: {property: band_gap, unit: eV, method: UV-Vis}\n"
        "  pl: {property: band_gap, unit: eV, method: PL}\n",
        encoding="utf-8",
    )
    assert run("import", str(tmp_path / "two.csv"), "-m", str(tmp_path / "two.yaml")).exit_code == 0
    out = tmp_path / "wide.csv"
    assert run("export", "gaps", "--format", "csv", "--layout", "wide", "--out", str(out)).exit_code == 0
    wide = pd.read_csv(out)
    assert sorted(zip(wide["method"], wide["band_gap"], strict=True)) == [("PL", 3.2), ("UV-Vis", 3.05)]


def test_wide_export_has_one_column_per_property(filled, tmp_path):
    out = tmp_path / "wide.csv"
    assert filled("export", "thermo", "--format", "csv", "--layout", "wide", "--out", str(out)).exit_code == 0
    wide = pd.read_csv(out).set_index("formula")
    assert wide.loc["CO2", "enthalpy_of_formation"] == pytest.approx(-393.522)
    assert wide.loc["CO2", "formula_original"] == "C1O2"  # the formula unit of the molar values
    assert wide.loc["CO2", "name"] == "Carbon Dioxide (CO2)" and wide.loc["CO2", "phase"] == "g"  # (H2O: l, g, ...)


THERMO_LAB = (
    "dataset: thermo-lab\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
    "  dHf: {property: enthalpy_of_formation, unit: kcal/mol, temperature_K: 298.15}\n"
    "  S: {property: entropy, unit: J/(mol*K), temperature_K: 298.15}\n"
)
THERMO_ROWS = "id,formula,dHf,S\nz1,ZnO,-83.24(10),42.4(3)\nm1,MgO,-143.8,26.95\n"  # ZnO's uncertainties stated
# of each record at 298.15 K: its entropy and enthalpy of formation with their uncertainties (± 0.10 kcal/mol is
# ± 0.4184 kJ/mol); JANAF's, a remote source's, state none
THERMO_UNCERTAINTIES = [
    ["janaf:C-095", pytest.approx(213.795), None, pytest.approx(-393.522), None],
    ["janaf:H-064", pytest.approx(188.834), None, pytest.approx(-241.826), None],
    ["thermo-lab:m1", 26.95, None, pytest.approx(-143.8 * 4.184), None],
    ["thermo-lab:z1", 42.4, pytest.approx(0.3), pytest.approx(-83.24 * 4.184), pytest.approx(0.4184)],
]


def test_properties_wide_has_each_propertys_uncertainty_beside_its_value(filled, tmp_path):
    assert cli_import(filled, tmp_path, "thermo-lab", THERMO_ROWS, THERMO_LAB).exit_code == 0
    columns = "entropy, entropy_uncertainty, enthalpy_of_formation, enthalpy_of_formation_uncertainty"
    query = f"select record_id, {columns} from properties_wide where temperature_K = 298.15 order by record_id"
    shown = filled("sql", query, "--format", "json")
    assert shown.exit_code == 0, shown.output
    assert [list(row.values()) for row in json.loads(shown.stdout)] == THERMO_UNCERTAINTIES
    names = json.loads(filled("sql", "select * from properties_wide limit 1", "--format", "json").stdout)[0]
    assert list(names)[list(names).index("entropy") + 1] == "entropy_uncertainty"  # beside its value


def test_a_wide_export_has_each_propertys_uncertainty_beside_its_value(filled, tmp_path):
    assert cli_import(filled, tmp_path, "thermo-lab", THERMO_ROWS, THERMO_LAB).exit_code == 0
    out = tmp_path / "wide.parquet"
    assert filled("export", "thermo", "--layout", "wide", "--out", str(out)).exit_code == 0
    wide = pd.read_parquet(out)
    assert wide.columns[wide.columns.get_loc("pressure_Pa") + 1 :][:5].tolist() == [
        "enthalpy_of_formation",
        "enthalpy_of_formation_uncertainty",
        "entropy",
        "entropy_uncertainty",
        "enthalpy_of_formation_raw_value",  # what curation says of each value follows them all
    ]
    columns = ["entropy", "entropy_uncertainty", "enthalpy_of_formation", "enthalpy_of_formation_uncertainty"]
    shown = wide.sort_values("record_id")[["record_id", *columns]].astype(object)
    assert shown.where(shown.notna(), None).values.tolist() == THERMO_UNCERTAINTIES
    long = tmp_path / "long.parquet"
    assert filled("export", "thermo", "--out", str(long)).exit_code == 0
    zno = pd.read_parquet(long).set_index(["record_id", "property"]).loc["thermo-lab:z1", "uncertainty"]
    assert wide.set_index("record_id").loc["thermo-lab:z1", "entropy_uncertainty"] == zno["entropy"]  # as in long


def test_an_export_orders_the_values_of_a_record_by_their_whole_key(run, tmp_path):
    mapping = "dataset: lab-b\nformula_column: formula\nid_column: id\ncitation: notebook 3\ncolumns:\n"
    for name, method in (("uv.csv", "UV-Vis"), ("pl.csv", "PL")):  # imported in the other order
        (tmp_path / name).write_text("id,formula,gap\ns1,ZnO,3.1\n", encoding="utf-8")
        (tmp_path / f"{name}.yaml").write_text(mapping + f"  gap: {{property: band_gap, unit: eV, method: {method}}}\n")
        assert run("import", str(tmp_path / name), "-m", str(tmp_path / f"{name}.yaml")).exit_code == 0
    out = tmp_path / "gaps.csv"
    assert run("export", "gaps", "--format", "csv", "--out", str(out)).exit_code == 0
    assert pd.read_csv(out)["method"].tolist() == ["PL", "UV-Vis"]


def test_a_wide_export_has_a_row_per_combination_in_the_data_only():
    n = 4000  # records, each with its own method and temperature: a pivot over every combination would need TiBs
    long = pd.DataFrame(
        {
            "record_id": [f"lab:s{i}" for i in range(n)] * 2,
            "source": "lab",
            "formula": "GaN",
            "formula_original": "GaN",
            "name": [f"sample {i}" for i in range(n)] * 2,
            "phase": None,
            "provenance": "experimental",
            "method": [f"method {i}" for i in range(n)] * 2,
            "temperature_K": [float(i) for i in range(n)] * 2,
            "pressure_Pa": None,
            "property": ["band_gap"] * n + ["density"] * n,
            "value": [3.4] * n + [6.1] * n,
        }
    )
    wide = to_wide(long, ["band_gap", "density"])
    assert wide.shape == (n, 12) and wide["band_gap"].eq(3.4).all() and wide["density"].eq(6.1).all()
    assert wide["record_id"].tolist() == sorted(long["record_id"].unique())
    with_entropy = to_wide(long, ["entropy", "band_gap", "density"])  # in the order asked, one the rows lack empty
    assert with_entropy.columns[-3:].tolist() == ["entropy", "band_gap", "density"]
    assert with_entropy["entropy"].isna().all()


@pytest.mark.parametrize("layout", ["long", "wide"])
def test_an_export_of_a_dataset_with_no_values_is_an_error_and_writes_nothing(run, tmp_path, layout):
    assert run("import", str(LAB_EXAMPLE / "bandgaps.csv"), "-m", str(LAB_EXAMPLE / "mapping.yaml")).exit_code == 0
    out = tmp_path / "out" / "thermo.csv"  # no JANAF values in the store: the thermo dataset selects nothing
    result = run("export", "thermo", "--layout", layout, "--out", str(out))
    assert result.exit_code == 1 and result.stderr == (
        "error: dataset 'thermo' selects no values in the store (properties enthalpy_of_formation, entropy; "
        "temperature_K 298.15): nothing written\n"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("out", ["gaps.csv", "torch-dir"])
def test_an_export_of_a_dataset_whose_values_a_steward_rejected_says_so_and_writes_nothing(run, tmp_path, out):
    mapping = "dataset: lab-x\nformula_column: formula\nid_column: id\nprovenance: experimental\ncitation: c\n"
    mapping += "columns:\n  gap: {property: band_gap, unit: eV}\n"
    imported = cli_import(run, tmp_path, "x", "id,formula,gap\ns1,ZnO,3.3\n", mapping)
    assert imported.exit_code == 0, imported.output
    assert run("review", "reject", "lab-x:s1", "--reason", "wrong sample").exit_code == 0
    torch = ["--format", "torch"] if out == "torch-dir" else []
    result = run("export", "gaps", *torch, "--out", str(tmp_path / "out" / out))
    of, written = (" of band_gap", "") if torch else ("", ": nothing written")
    assert result.exit_code == 1 and result.stderr == (
        f"error: dataset 'gaps' selects 1 stored value{of} (properties band_gap; provenance experimental), but the "
        "curation log rejected it (records lab-x:s1): `matreg history RECORD_ID` shows who rejected what and why, "
        f"and `matreg review accept RECORD_ID` (with --property for a value) takes a rejection back{written}\n"
    )
    assert not (tmp_path / "out").exists()
    assert "wrong sample" in run("history", "lab-x:s1").stdout


def test_a_release_of_a_dataset_whose_values_a_steward_rejected_says_so(run, tmp_path):
    mapping = "dataset: lab-x\nformula_column: formula\nid_column: id\nprovenance: experimental\ncitation: c\n"
    mapping += "columns:\n  gap: {property: band_gap, unit: eV}\n"
    assert cli_import(run, tmp_path, "x", "id,formula,gap\ns1,ZnO,3.3\n", mapping).exit_code == 0
    assert run("review", "reject", "lab-x:s1", "--reason", "wrong sample").exit_code == 0
    result = run("release", "gaps", "--version", "1.0.0")
    assert result.exit_code == 1 and result.stderr.startswith(
        "error: dataset 'gaps' selects 1 stored value (properties band_gap; provenance experimental), but the "
        "curation log rejected it (records lab-x:s1)"
    )
    assert result.stderr.endswith(": nothing to release\n")
    assert not (tmp_path / "store" / "releases" / "gaps").exists()


def test_a_wide_frame_of_no_rows_has_the_wide_columns():
    long = pd.DataFrame(columns=["record_id", "property", "value", "raw_value", "flags", "reviewed"])
    columns = to_wide(long, ["enthalpy_of_formation", "entropy"]).columns.tolist()
    assert columns[columns.index("pressure_Pa") + 1 :] == [
        "enthalpy_of_formation",
        "entropy",
        *(
            f"{prop}_{column}"
            for column in ("raw_value", "flags", "reviewed")
            for prop in ("enthalpy_of_formation", "entropy")
        ),
    ]


def test_no_property_is_named_as_a_column_a_wide_export_writes_beside_another(tmp_path, monkeypatch):
    """A wide export writes beside each property's values its uncertainty, what curation and a resolution say of each
    value (`<property>_flags`, ...): only `<property>_uncertainty` was refused as a project's property, so a property
    named band_gap_flags made a wide export with two columns of that name."""
    long = pd.DataFrame(
        columns=["record_id", "property", "value", "uncertainty", "raw_value", "flags", "reviewed"]
        + ["spread", "records", "resolved_by"]
    )
    beside = to_wide(long, ["band_gap"]).columns.tolist()
    beside = beside[beside.index("band_gap") + 1 :]
    assert len(beside) == 7 and all(column.startswith("band_gap_") for column in beside)
    for column in beside:  # (a project of its own each: the vocabulary read is kept per working directory)
        (tmp_path / column / "schemas").mkdir(parents=True)
        (tmp_path / column / "schemas" / "properties.yaml").write_text(
            f"{column}:\n  description: d\n  unit: eV\n  bounds: [0, 1]\n", encoding="utf-8"
        )
        monkeypatch.chdir(tmp_path / column)
        with pytest.raises(ConfigError, match=rf": {column}: the column of band_gap's .*wide exports have beside its"):
            load_vocabulary()


def test_a_fetch_waiting_to_retry_says_so_on_stderr(run, janaf_server, retry_waits):
    """A Retry-After (or a backoff) stalled a run with nothing said; each wait is a warning line on stderr."""
    janaf_server.fail("/tables/H-064.txt", 429, retry_after=7)
    fetched = run("fetch", "janaf", "H-064", "--no-progress")
    assert fetched.exit_code == 0 and retry_waits == [7]
    assert fetched.stderr == f"warning: HTTP 429 from {janaf_server.url}H-064.txt: retry 1 of 3 in 7 s (Retry-After)\n"


def test_a_retry_sent_at_once_is_said_too(run, janaf_server, catalog_path, retry_waits):
    """With `backoff_s: 0` (and no jitter) a retry waits nothing, and was said nowhere."""
    catalog_path.write_text(catalog_path.read_text().replace("backoff_s: 0,", "backoff_s: 0, jitter_s: 0,"))
    janaf_server.fail("/tables/H-064.txt", 503)
    fetched = run("fetch", "janaf", "H-064", "--no-progress")
    assert fetched.exit_code == 0 and retry_waits == []
    assert fetched.stderr == f"warning: HTTP 503 from {janaf_server.url}H-064.txt: retry 1 of 3 in 0 s (backoff)\n"


def test_a_retry_after_cut_to_the_catalogs_longest_wait_says_what_the_server_asked(run, janaf_server, retry_waits):
    """A server asking for 100000 s was said to have asked for the 600 s waited (`http.max_retry_after_s`)."""
    janaf_server.fail("/tables/H-064.txt", 429, retry_after=100000)
    fetched = run("fetch", "janaf", "H-064", "--no-progress")
    assert fetched.exit_code == 0 and retry_waits == [600]
    assert fetched.stderr == (
        f"warning: HTTP 429 from {janaf_server.url}H-064.txt: retry 1 of 3 in 600 s (Retry-After 100000 s, capped at "
        "http.max_retry_after_s)\n"
    )


def test_a_lab_file_or_store_whose_path_is_not_utf8_is_a_one_line_error_naming_it(run, tmp_path):
    """A Latin-1 file or folder name (Python reads its é as a surrogate) failed with a traceback as its path was
    written into the store; it is refused as a bad argument (exit 2), the path and the name shown as bytes."""
    latin1 = tmp_path / os.fsdecode(b"gaps_\xe9t\xe9.csv")
    latin1.write_bytes((LAB_EXAMPLE / "bandgaps.csv").read_bytes())
    mapping = str(LAB_EXAMPLE / "mapping.yaml")
    for args, what, name in [
        ([str(latin1), "-m", mapping, "--dry-run"], "the lab file", latin1),
        ([str(LAB_EXAMPLE / "bandgaps.csv"), "-m", mapping, "--store", str(tmp_path / os.fsdecode(b"st\xe9"))],
         "the store folder", tmp_path / os.fsdecode(b"st\xe9")),
    ]:  # fmt: skip
        result = run("import", *args)
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert result.stderr == (
            f"error: {what} {os.fsencode(name)!r}: the name {os.fsencode(name.name)!r} in its path is not UTF-8 text, "
            "which matreg records paths in; rename it\n"
        )
    assert sorted(tmp_path.iterdir()) == [tmp_path / "catalog.yaml", latin1]  # (no store made)


def test_a_moved_from_or_out_path_that_is_not_utf8_is_a_one_line_error_naming_it(filled, tmp_path):
    """A Latin-1 --out failed with a traceback as Arrow opened it, or as its name was written into the sidecar, and a
    --moved-from, written into the run's parameters, was refused as never imported from (which no lab file whose path
    is not UTF-8 can be): both are refused as a bad argument (exit 2), as the store and lab file paths are."""
    latin1 = tmp_path / os.fsdecode(b"\xe9t\xe9")
    mapping = str(LAB_EXAMPLE / "mapping.yaml")
    moved = ["import", str(LAB_EXAMPLE / "bandgaps.csv"), "-m", mapping, "--moved-from", str(latin1 / "gaps.csv")]
    for args, what, path in [
        (moved, "--moved-from", latin1 / "gaps.csv"),
        (["export", "gaps", "--out", str(latin1 / "gaps.csv")], "--out", latin1 / "gaps.csv"),
        (["export", "gaps", "--out", str(latin1 / "gaps.parquet")], "--out", latin1 / "gaps.parquet"),
        (["export", "gaps", "--format", "torch", "--out", str(latin1)], "--out", latin1),
        (["train", "gaps", "--out", str(latin1)], "--out", latin1),
        (["predict", str(tmp_path / "run"), "GaN", "--out", str(latin1 / "p.csv")], "--out", latin1 / "p.csv"),
    ]:
        result = filled(*args)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert result.stderr == (
            f"error: {what} {os.fsencode(path)!r}: the name {os.fsencode(latin1.name)!r} in its path is not UTF-8 "
            "text, which matreg records paths in; rename it\n"
        )
    assert sorted(tmp_path.iterdir()) == [tmp_path / "catalog.yaml", tmp_path / "store"]  # (nothing written)


def test_training_on_an_export_directory_whose_path_is_not_utf8_is_a_one_line_error_naming_it(
    filled, tmp_path, monkeypatch
):
    """A torch export directory with a Latin-1 name failed with a traceback as Arrow opened its files (and the run
    directory named after it, and its config, would have recorded it): it is refused as --out is (exit 2)."""
    monkeypatch.chdir(tmp_path)  # (where the default run directory, runs/<export name>-..., would go)
    export = tmp_path / "export"
    assert filled("export", "gaps", "--format", "torch", "--split", "random", "--out", str(export)).exit_code == 0
    latin1 = export.rename(tmp_path / os.fsdecode(b"\xe9t\xe9"))
    for out in ([], ["--out", str(tmp_path / "run")]):
        result = filled("train", str(latin1), "--model", "elemnet", "--epochs", "1", *out)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert result.stderr == (
            f"error: the export directory {os.fsencode(latin1)!r}: the name {os.fsencode(latin1.name)!r} in its path "
            "is not UTF-8 text, which matreg records paths in; rename it\n"
        )
    assert not (tmp_path / "runs").exists() and not (tmp_path / "run").exists()


def test_a_catalog_or_mapping_path_that_is_not_utf8_is_read(run, catalog_path, tmp_path):
    """A catalog or a mapping is read, its path never recorded: a Latin-1 name in it is no problem."""
    latin1 = tmp_path / os.fsdecode(b"\xe9t\xe9")
    latin1.mkdir()
    (latin1 / "catalog.yaml").write_bytes(catalog_path.read_bytes())
    (latin1 / "mapping.yaml").write_bytes((LAB_EXAMPLE / "mapping.yaml").read_bytes())
    imported = run(
        "import", str(LAB_EXAMPLE / "bandgaps.csv"), "-m", str(latin1 / "mapping.yaml"),
        "--catalog", str(latin1 / "catalog.yaml"),
    )  # fmt: skip
    assert imported.exit_code == 0 and "30 valid records" in imported.stdout


def test_status_lists_the_interrupted_runs_a_resume_would_continue(run, janaf_server):
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)  # the second page fails after the first was read
    assert run("fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress").exit_code == 75
    status = run("status").stdout
    assert "interrupted runs (pages staged, not published):" in status
    assert "-janaf-" in status and "2 JANAF table(s): H-064, C-095 (1 read)" in status
    (run_id,) = Store(Path(os.environ["MATREG_STORE"])).staged_runs()  # (JANAF's page size is no run parameter)
    assert f"the same fetch (its options: {where_given()}) with --resume continues it; the same fetch without " \
        f"--resume, or matreg drop {run_id} {store_given()}, drops it" in status  # fmt: skip
    assert run("fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--resume", "--no-progress").exit_code == 0
    assert "interrupted runs" not in run("status").stdout


def test_a_fetch_its_source_fails_says_which_run_holds_what_it_read_and_that_resume_continues_it(run, janaf_server):
    """The error of a source that fails once pages were committed said only the HTTP status; it goes on to say which
    run holds how many records and that the same command with --resume continues it, which it does."""
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)  # the second page fails after the first was read
    fetch = ["fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress"]
    failed = run(*fetch)
    (run_id,) = Store(Path(os.environ["MATREG_STORE"])).staged_runs()
    said = failed.stderr.splitlines()[-1]  # (after a warning of each wait to retry)
    assert failed.exit_code == 75 and said.startswith("error: HTTP 503: scripted (from ")
    assert said.endswith(
        f"after 3 retries); run {run_id} committed 1 records read (staged, not published); the same command with "
        f"--resume continues it: matreg fetch janaf H-064 C-095 {where_given()} --resume"
    )  # (JANAF's page size is no run parameter; the store and catalog are the environment's, not the defaults)
    resumed = run(*fetch, "--resume")
    assert resumed.exit_code == 0 and "read 2, 2 valid records" in resumed.stdout and run_id in resumed.stdout
    janaf_server.fail("/tables/O-029.txt", *[503] * 4)  # a first page: nothing to resume
    at_once = run("fetch", "janaf", "O-029", "--no-progress")
    assert at_once.exit_code == 75
    assert at_once.stderr.strip().endswith("after 3 retries); no page was committed, there is nothing to resume")


def test_a_failed_fetch_names_the_command_that_continues_it(run, janaf_server):
    """The hint named `matreg fetch janaf ... --resume`, the selection and the options a resume must give again (a
    --limit) left to guess where `matreg status` names them: it is the command, which continues the run."""
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)  # the second page fails after the first was read
    failed = run("fetch", "janaf", "H-064", "C-095", "--all-temperatures", "--limit", "200", "--page-size", "1")
    (run_id,) = Store(Path(os.environ["MATREG_STORE"])).staged_runs()
    command = f"matreg fetch janaf H-064 C-095 --all-temperatures {where_given()} --limit 200 --resume"
    assert failed.exit_code == 75
    assert failed.stderr.endswith(f"; the same command with --resume continues it: {command}\n")
    resumed = run(*shlex.split(command)[1:], "--no-progress")
    assert resumed.exit_code == 0 and run_id in resumed.stdout and "read 2, 2 valid records" in resumed.stdout


def test_the_command_that_resumes_a_failed_fetch_gives_the_store_and_catalog_it_was_given(
    run, janaf_server, catalog_path, tmp_path, monkeypatch
):
    """The command a failed fetch printed, and the options status names for its --resume, left out the --store and
    --catalog the fetch was given: pasted, it resumed against the default store (nothing to resume there). Each is
    given where it is not the default (by option or environment variable), quoted for a shell."""
    store = tmp_path / "nightly store"  # (a space: quoted)
    where = ["--store", str(store), "--catalog", str(catalog_path)]
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)  # the second page fails after the first was read
    failed = run("fetch", "janaf", "H-064", "C-095", "--limit", "5", "--page-size", "1", *where, "--no-progress")
    (run_id,) = Store(store).staged_runs()
    command = f"matreg fetch janaf H-064 C-095 {shlex.join(where)} --limit 5 --resume"
    assert failed.exit_code == 75
    assert failed.stderr.endswith(f"; the same command with --resume continues it: {command}\n"), failed.stderr
    hint = f"the same fetch (its options: {shlex.join(where)} --limit 5) with --resume continues it"
    status = run("status", *where).stdout
    assert hint in status
    assert f"or matreg drop {run_id} --store {shlex.quote(str(store))}, drops it" in status  # (drop takes no catalog)
    resumed = run(*shlex.split(command)[1:], "--no-progress")
    assert resumed.exit_code == 0 and run_id in resumed.stdout and "read 2, 2 valid records" in resumed.stdout
    monkeypatch.delenv("MATREG_STORE")  # the defaults: ./matreg-store, and ./catalog.yaml (the test's)
    monkeypatch.delenv("MATREG_CATALOG")
    monkeypatch.chdir(catalog_path.parent)
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)
    failed = run("fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress")
    assert failed.exit_code == 75
    assert failed.stderr.endswith("continues it: matreg fetch janaf H-064 C-095 --resume\n"), failed.stderr
    (run_id,) = Store(catalog_path.parent / "matreg-store").staged_runs()
    assert (
        f"the same fetch with --resume continues it; the same fetch without --resume, or matreg drop {run_id}, drops"
        in run("status").stdout
    )


def test_the_drop_commands_a_refused_resume_prints_give_the_store_it_was_given(run, janaf_server, catalog_path):
    """A --resume refused (nothing to resume at these options, selection or server; its catalog entry changed since
    the run committed its pages) printed `matreg drop RUN` without the --store it was given: pasted, it dropped
    nothing, 'no interrupted run'. It gives it where it is not the default, as status's drop does."""
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)  # the second page fails after the first was read
    tables = ["fetch", "janaf", "H-064", "C-095", "--no-progress"]
    assert run(*tables, "--page-size", "1").exit_code == 75
    (run_id,) = Store(Path(os.environ["MATREG_STORE"])).staged_runs()
    dropped = f"drop it: matreg drop {run_id} {store_given()}"
    other_size = run(*tables, "--page-size", "1", "--limit", "5", "--resume")
    assert other_size.exit_code == 1 and f"{dropped}\n" in other_size.stderr, other_size.stderr
    other_selection = run("fetch", "janaf", "H-064", "--page-size", "1", "--resume")
    assert other_selection.exit_code == 1 and f"{dropped}\n" in other_selection.stderr, other_selection.stderr
    elsewhere = janaf_server.url.replace("127.0.0.1", "localhost")  # another name for the server
    other_server = run(*tables, "--page-size", "1", "--base-url", elsewhere, "--resume")
    assert other_server.exit_code == 1 and f"{dropped})\n" in other_server.stderr, other_server.stderr
    catalog_path.write_text(catalog_path.read_text().replace("Chase 1998", "Chase 1998a"), encoding="utf-8")
    remapped = run(*tables, "--page-size", "1", "--resume")
    assert remapped.exit_code == 2 and f"`matreg drop {run_id} {store_given()}` and fetch again" in remapped.stderr
    assert f"restore it to resume the run, or matreg drop {run_id} {store_given()} drops it" in run("status").stdout
    assert run("drop", run_id, *shlex.split(store_given())).exit_code == 0  # (pasted, it drops the run)


def test_a_fresh_fetch_that_dropped_an_interrupted_run_of_its_query_says_so_once_published(run, janaf_server):
    """A fetch without --resume drops the interrupted run of its query as it starts: it said so only where it failed,
    the pages that run had read gone unsaid where it was published."""
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)  # the second page fails after the first was read
    fetch = ["fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress"]
    assert run(*fetch).exit_code == 75
    store = Store(Path(os.environ["MATREG_STORE"]))
    ((run_id, row),) = store.staged_runs().items()
    fresh = run(*fetch)
    assert fresh.exit_code == 0 and run_id not in fresh.stdout and not store.staged_runs()
    assert fresh.stderr == (
        f"as it started, this fetch dropped the interrupted run of the same query: {run_id} (1 read at "
        f"{row['endpoint']})\n"
    )
    assert run(*fetch).stderr == ""  # (nothing left to drop)


def test_a_failed_fetch_names_no_run_of_other_parameters_that_its_query_text_shares(run, janaf_server):
    """JANAF's query text leaves out --all-temperatures: a fetch that failed before its first page named the run an
    --all-temperatures fetch of the same tables left, and told to --resume it, which then found nothing to resume."""
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)  # the second page fails after the first was read
    tables = ["fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress"]
    every_temperature = [*tables, "--all-temperatures", "--limit", "2"]  # (a --limit is one of the run's parameters)
    first = run(*every_temperature)
    (left,) = Store(Path(os.environ["MATREG_STORE"])).staged_runs()
    assert first.exit_code == 75 and f"run {left} committed 1 records read (staged, not published)" in first.stderr
    janaf_server.fail("/tables/H-064.txt", *[503] * 4)  # at the reference temperature: its first page fails
    failed = run(*tables, "--no-cache")  # (H-064 is cached)
    assert failed.exit_code == 75 and left not in failed.stderr
    assert failed.stderr.strip().endswith("after 3 retries); no page was committed, there is nothing to resume")
    resumed = run(*every_temperature, "--resume")  # the run left is resumed by the fetch that left it
    assert resumed.exit_code == 0 and left in resumed.stdout and "read 2, 2 valid records" in resumed.stdout


def test_resume_or_start_continues_the_interrupted_run_of_the_query_after_its_last_committed_page(run, janaf_server):
    """What a requeued Slurm job or a cron line runs every time: an interrupted run is continued, no page read twice
    and none left out."""
    janaf_server.fail("/tables/C-095.txt", *[503] * 8)  # the second page fails after the first was read, twice
    fetch = ["fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress", "--resume-or-start"]
    failed = run(*fetch)
    assert failed.exit_code == 75 and "started a fresh fetch" not in failed.stderr
    (run_id,) = Store(Path(os.environ["MATREG_STORE"])).staged_runs()
    assert failed.stderr.endswith(f"run {run_id} committed 1 records read (staged, not published); the same command, "
                                  "with its --resume-or-start, continues it\n")  # fmt: skip
    failed_again = run(*fetch[:-1], "--resume")  # (the advice names the option given: this one, as typed)
    assert failed_again.exit_code == 75 and failed_again.stderr.endswith(
        "the same command, with its --resume, continues it\n"
    )
    asked_before = len(janaf_server.requests)
    resumed = run(*fetch)
    assert resumed.exit_code == 0 and "read 2, 2 valid records (14 values): 2 written" in resumed.stdout
    assert resumed.stderr == f"resumed the interrupted run {run_id} (--resume-or-start)\n"
    assert [request.path for request in janaf_server.requests[asked_before:]] == ["/tables/C-095.txt"]
    stored = run("sql", "SELECT record_id, run_id FROM materials ORDER BY 1", "--format", "csv").stdout
    assert stored.splitlines() == ["record_id,run_id", f"janaf:C-095,{run_id}", f"janaf:H-064,{run_id}"]


def test_resume_or_start_starts_a_fresh_fetch_where_no_run_of_the_query_is_interrupted(run, janaf_server):
    fetch = ["fetch", "janaf", "H-064", "--no-progress", "--resume-or-start"]
    first = run(*fetch)  # no run at all
    assert first.exit_code == 0 and "1 written" in first.stdout
    assert first.stderr.startswith("nothing to resume: no interrupted run of 'janaf' with these parameters")
    assert first.stderr.endswith(": started a fresh fetch (--resume-or-start)\n")
    again = run(*fetch)  # its last run was published
    assert again.exit_code == 0 and "1 already stored unchanged" in again.stdout
    assert again.stderr.startswith("nothing to resume: the last run of 'janaf' with these parameters at ")
    assert again.stderr.endswith("was published: what it read is stored (a fetch without --resume reads the source "
                                 "again): started a fresh fetch (--resume-or-start)\n")  # fmt: skip
    runs = run("sql", "SELECT count(*) AS n FROM fetch_runs WHERE status = 'complete'", "--format", "csv").stdout
    assert runs == "n\n2\n"
    both = run(*fetch, "--resume")
    assert both.exit_code == 2 and both.stderr.startswith("error: --resume and --resume-or-start: give one")


def test_resume_or_start_at_another_server_says_it_dropped_the_interrupted_run_read_at_the_first(run, janaf_server):
    """A fresh fetch drops the interrupted runs of its query read at another server: --resume-or-start, which then
    suggested resuming such a run with its --base-url, says it dropped it."""
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)  # the second page fails after the first was read
    fetch = ["fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress", "--resume-or-start"]
    assert run(*fetch).exit_code == 75
    (run_id,) = Store(Path(os.environ["MATREG_STORE"])).staged_runs()
    mirror = run(*fetch, "--base-url", janaf_server.url.replace("127.0.0.1", "localhost"))  # another name for it
    assert mirror.exit_code == 0 and "read 2, 2 valid records" in mirror.stdout
    assert mirror.stderr.endswith(
        f": started a fresh fetch, which dropped the interrupted run {run_id} read at another server "
        "(--resume-or-start)\n"
    )
    assert Store(Path(os.environ["MATREG_STORE"])).staged_runs() == {}


def test_an_interrupted_run_another_process_claims_between_the_look_and_the_claim_counts_as_still_running(
    run, janaf_server, monkeypatch
):
    """Two requeued jobs of one query racing for its interrupted run: the one that loses the claim finds it running
    in another process, as it would a moment later (--resume-or-start starts a fresh fetch, --resume says so)."""
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)  # the second page fails after the first was read
    fetch = ["fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress"]
    assert run(*fetch).exit_code == 75
    store = Path(os.environ["MATREG_STORE"])
    (run_id,) = Store(store).staged_runs()
    looked, holders = resume._interrupted_run, []

    def claimed_by_another_process_once_seen(*args):
        row = looked(*args)
        lock = store / "locks" / f"{row['run_id']}.lock"
        holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, **utf8_child())
        holders.append(holder)
        assert holder.stdout.readline().strip() == "holding"
        return row

    monkeypatch.setattr(resume, "_interrupted_run", claimed_by_another_process_once_seen)
    try:
        started = run(*fetch, "--resume-or-start")
        holders.pop().kill()
        resumed = run(*fetch, "--resume")
    finally:
        for holder in holders:
            holder.kill()
    still_running = f"nothing to resume: run {run_id} is still running in another process, which claimed it meanwhile"
    assert started.exit_code == 0 and "read 2, 2 valid records" in started.stdout
    assert started.stderr == f"{still_running}: started a fresh fetch (--resume-or-start)\n"
    assert resumed.exit_code == 1 and resumed.stderr == f"error: {still_running}\n"
    assert list(Store(store).staged_runs()) == [run_id]  # (neither run dropped it, nor wrote to it)


def test_a_fetch_the_source_refuses_exits_1_and_one_it_cannot_reach_75(run, janaf_server, monkeypatch):
    """A source that refuses the request (a bad key: 401) refuses it again, whenever asked (exit 1); one that cannot
    be reached (nothing listens at its address) may be reached later (exit 75, EX_TEMPFAIL: try again later)."""
    janaf_server.fail("/tables/H-064.txt", 401)
    refused = run("fetch", "janaf", "H-064", "--no-progress")
    assert refused.exit_code == 1 and refused.stderr.startswith("error: HTTP 401: scripted (from ")
    with socket.create_server(("127.0.0.1", 0)) as closed:
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/tables/"  # (its port refuses connections once closed)
    monkeypatch.setattr("urllib3.util.retry.time.sleep", lambda seconds: None)
    unreachable = run("fetch", "janaf", "H-064", "--base-url", url, "--no-progress")
    assert unreachable.exit_code == 75 and "Connection refused" in unreachable.stderr


def test_status_of_a_read_only_store_with_staged_runs_writes_nothing(run, janaf_server, tmp_path, monkeypatch):
    """An interrupted fetch (its journal and lock file left) and one published but stopped before its journal was
    removed: status lists the first as interrupted, not the second, and writes nothing, neither removing that journal
    (the next writer does) nor taking a run's lock by its file, so that a read-only store is read (as root, chmod
    stops no write: every file's being as it was tells)."""
    store = tmp_path / "store"
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)  # the second page fails after the first was read
    assert run("fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress").exit_code == 75
    (interrupted,) = Store(store).staged_runs()
    real_rename = os.rename

    def killed_before_the_journal_leaves_staging(source, destination):
        if store / "staging" not in Path(source).parents:
            real_rename(source, destination)

    with monkeypatch.context() as patched:
        patched.setattr(os, "rename", killed_before_the_journal_leaves_staging)
        assert run("fetch", "janaf", "O-029", "--no-progress").exit_code == 0
    assert len(list((store / "staging").iterdir())) == 2 and (store / "locks" / f"{interrupted}.lock").exists()
    before = {path: (path.stat().st_mtime_ns, path.stat().st_size) for path in store.rglob("*")}
    paths = [store, *before]
    try:
        for path in paths:
            path.chmod(0o555 if path.is_dir() else 0o444)
        status = run("status")
    finally:
        for path in filter(Path.exists, paths):
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert status.exit_code == 0, status.stderr
    listed = status.stdout.split("interrupted runs (pages staged, not published):")[1]
    assert interrupted in listed and listed.count(" read)") == 1
    assert {path: (path.stat().st_mtime_ns, path.stat().st_size) for path in store.rglob("*")} == before


def test_drop_refuses_an_interrupted_run_another_process_is_writing_and_keeps_it(run, janaf_server):
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)  # the second page fails after the first was read
    assert run("fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress").exit_code == 75
    store = Path(os.environ["MATREG_STORE"])
    (run_id,) = Store(store).staged_runs()
    with another_process_holding(store / "locks" / f"{run_id}.lock"):
        refused = run("drop", run_id)
    assert refused.exit_code == 1
    assert refused.stderr == f"error: run {run_id} is being written by another process (it is not interrupted): " \
        "not dropped\n"  # fmt: skip
    assert list(Store(store).staged_runs()) == [run_id]
    assert run("drop", run_id).exit_code == 0 and Store(store).staged_runs() == {}


def test_status_offers_no_resume_or_drop_of_a_run_another_process_is_writing(run, janaf_server):
    """It listed the run as running in another process, then how to continue or drop it (a drop then refused)."""
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)
    assert run("fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress").exit_code == 75
    store = Path(os.environ["MATREG_STORE"])
    (run_id,) = Store(store).staged_runs()
    with another_process_holding(store / "locks" / f"{run_id}.lock"):
        running = run("status").stdout.split("interrupted runs (pages staged, not published):\n")[1]
    assert running.splitlines() == [f"  {run_id}  2 JANAF table(s): H-064, C-095 (1 read, running in another process)"]
    interrupted = run("status").stdout.split("interrupted runs (pages staged, not published):\n")[1].splitlines()
    assert interrupted[1].endswith(f"or matreg drop {run_id} {store_given()}, drops it")


@pytest.mark.as_a_user
def test_drop_in_a_store_it_cannot_write_is_a_one_line_error_naming_the_store(run, janaf_server):
    """It printed Python's '[Errno 13] Permission denied: ...' (a read-only file system's Errno 30 likewise)."""
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)
    assert run("fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress").exit_code == 75
    store = Path(os.environ["MATREG_STORE"])
    (run_id,) = Store(store).staged_runs()
    (store / "staging").chmod(0o555)
    try:
        refused = run("drop", run_id)
    finally:
        (store / "staging").chmod(0o755)
    assert refused.exit_code == 1 and refused.stderr == f"error: cannot write {store}: Permission denied (EACCES)\n"
    assert list(Store(store).staged_runs()) == [run_id]


def test_status_says_an_interrupted_import_is_dropped_by_importing_the_file_again(run, tmp_path):
    class InterruptedAfterOnePage(LabConnector):  # as a Ctrl-C after the first commit leaves an import
        def pages(self, cursor=None):
            yield next(super().pages(cursor))
            raise KeyboardInterrupt

    data, mapping = LAB_EXAMPLE / "bandgaps.csv", LAB_EXAMPLE / "mapping.yaml"
    with pytest.raises(KeyboardInterrupt):
        connector = InterruptedAfterOnePage(data, load_mapping(mapping), name="gaps-2025", page_size=10)
        run_ingest(connector, Store(tmp_path / "store"), commit_every=10)
    status = run("status").stdout
    assert "lab import of gaps-2025 (35 rows) (10 read)" in status and "--resume" not in status
    assert "importing bandgaps.csv again with the same mapping and --as gaps-2025 drops it and reads" in status
    (run_id,) = Store(tmp_path / "store").staged_runs()  # (a changed mapping's import leaves it: then drop it)
    dropping = f"reads the file whole; matreg drop {run_id} {store_given()} drops it alone"
    assert dropping in " ".join(status.split())
    assert run("import", str(data), "-m", str(mapping)).exit_code == 0  # another scope: the run is left
    assert "lab import of gaps-2025 (35 rows) (10 read)" in run("status").stdout
    assert run("import", str(data), "-m", str(mapping), "--as", "gaps-2025").exit_code == 0
    assert "interrupted runs" not in run("status").stdout


def test_status_names_the_moved_from_that_drops_an_interrupted_import_of_a_moved_file(run, tmp_path):
    class InterruptedAfterOnePage(LabConnector):
        def pages(self, cursor=None):
            yield next(super().pages(cursor))
            raise KeyboardInterrupt

    mapping, first, moved = LAB_EXAMPLE / "mapping.yaml", tmp_path / "a" / "gaps.csv", tmp_path / "b" / "gaps.csv"
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    first.write_bytes((LAB_EXAMPLE / "bandgaps.csv").read_bytes())
    assert run("import", str(first), "-m", str(mapping)).exit_code == 0
    first.rename(moved)
    with pytest.raises(KeyboardInterrupt):
        connector = InterruptedAfterOnePage(moved, load_mapping(mapping), page_size=10)
        run_ingest(connector, Store(tmp_path / "store"), commit_every=10, moved_from=first)
    assert f"importing gaps.csv again with the same mapping and --moved-from {first} drops it" in run("status").stdout
    assert run("import", str(moved), "-m", str(mapping), "--moved-from", str(first)).exit_code == 0
    assert "interrupted runs" not in run("status").stdout


def test_validate_and_status(filled):
    result = filled("validate")
    assert result.exit_code == 0 and result.stdout.startswith(
        "store is valid: 32 materials, 44 properties, 2 fetch_runs, 0 record_attributes, 5 quarantine, 0 curation_log\n"
    )
    status = filled("status").stdout
    assert "demo-lab-bandgaps experimental" in status and "band_gap" in status


def test_validate_reports_rows_breaking_rules_in_any_batch_and_values_without_their_record(filled):
    """Rules of one row are checked a batch of rows at a time (here a row a batch), their failures summed over the
    batches into one line per table; a value whose record has no materials row is found in SQL. The same lines
    whatever the batch size, and from `matreg validate`."""
    store = Store(os.environ["MATREG_STORE"])
    materials, properties = store.table("materials"), store.table("properties")
    record = materials.iloc[[0]]
    value = properties[properties["record_id"] == record["record_id"].iloc[0]].iloc[[0]]
    new_records = [record.assign(record_id=f"x:{n}", source_id=str(n), spacegroup_number=999) for n in (1, 2)]
    values = [value.assign(record_id="x:1", value=-1.0), value.assign(record_id="x:2")]
    values.append(value.assign(record_id="y:1"))  # of no record
    store.commit({"materials": pd.concat(new_records), "properties": pd.concat(values)})
    one_row_batches = check_store_tables(store, batch_rows=1)
    assert one_row_batches.problems == [
        "materials: 2 schema failure(s): spacegroup_number: less_than_or_equal_to(230.0) (e.g. 999)",
        "properties: 11 schema failure(s): record_id: value in canonical unit and within the property's bounds "
        "(e.g. 'x:1')",  # a check of whole rows: pandera counts a failure per column
        "properties: 1 record_id(s) with no materials row, e.g. y:1",
    ]
    assert one_row_batches.rows["materials"] == len(materials) + 2
    assert check_store_tables(store).problems == one_row_batches.problems
    result = filled("validate")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"invalid: {problem}" for problem in one_row_batches.problems]


def test_catalog_and_schema_listings(run, catalog_path, tmp_path, monkeypatch):
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "oqmd.yaml").write_text(
        (REPO / "connectors" / "oqmd.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    listing = run("catalog").stdout.splitlines()
    assert listing[0] == f"catalog: {catalog_path.resolve()}" and listing[1] == "sources:" and "  janaf" in listing[2]
    assert listing[-2] == f"project files read from {tmp_path}: connectors/oqmd.yaml"
    assert listing[-1] == f"matreg's own files (to copy): {resource_path('catalog.yaml').parent}"
    described = run("schema").stdout
    views = [line.split("`")[1] for line in described.split("## Views")[1].splitlines() if line.startswith("* `")]
    assert set(views) == set(view_definitions()) - set(load_tables())  # (every table's view: the first item)
    assert "| `original_unit` |" in run("schema").stdout


def test_the_catalog_lists_the_projects_schema_extensions_as_files_it_reads(run, tmp_path, monkeypatch):
    # only schemas/properties.yaml and connectors/*.yaml were listed, though an import reads the project's extensions
    extensions = tmp_path / "schemas" / "extensions"
    extensions.mkdir(parents=True)
    shipped = (REPO / "schemas" / "extensions" / "lab-sample.yaml").read_text(encoding="utf-8")
    for name in ("lab-sample.yaml", "furnace.yaml", "Furnace Notes.yaml"):  # (no extension is named as the last)
        (extensions / name).write_text(shipped, encoding="utf-8")
    (extensions / "README.txt").write_text("notes", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    listing = run("catalog").stdout.splitlines()
    assert listing[-2] == (
        f"project files read from {tmp_path}: schemas/extensions/furnace.yaml, schemas/extensions/lab-sample.yaml"
    )


def test_unknown_source_is_a_one_line_error(run):
    result = run("fetch", "nosuchdb")
    assert result.exit_code == 2 and "unknown source 'nosuchdb'" in result.stderr


def test_elements_are_checked_before_any_request(run):
    result = run("fetch", "oqmd", "--elements", "Fe", "--elements", "Qq")
    assert result.exit_code == 2 and "--elements: not an element: 'Qq'" in result.stderr


def test_formulas_are_checked_before_any_request_alike_for_every_source(run):
    result = run("fetch", "oqmd", "--formula", "SiO2", "--formula", "Qq2O")
    assert result.exit_code == 2 and "--formula: 'Qq2O'" in result.stderr
    with pytest.raises(ConfigError, match="--formula: 'Fe2O3]'"):  # the one check, whichever connector reads it
        FetchRequest(formulas=["Fe2O3]"])
    assert FetchRequest(formulas=["*TiO3"]).formulas == ["*TiO3"]  # a wildcard: the Materials Project's to read


def test_element_symbols_are_read_as_typed():
    assert FetchRequest(elements=["fe", "O-si", "Al, n"]).elements == ["Al", "Fe", "N", "O", "Si"]


def test_the_command_line_loads_the_library_only_in_the_command_that_runs():
    libraries = ("pandas", "pyarrow", "duckdb", "pandera", "pint", "pymatgen", "requests", "numpy", "torch")
    code = f"import sys, matreg.cli; print([name for name in {libraries!r} if name in sys.modules])"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, **utf8_child(), check=True).stdout
    assert loaded.strip() == "[]"  # `matreg --help` and a mistyped option answer without a second of imports


@pytest.mark.parametrize("command", ["fetch", "import", "sql", "export", "validate", "status", "catalog", "schema"])
def test_every_command_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.stdout


def test_torch_export_writes_a_directory_and_a_leakage_report(filled, tmp_path):
    out = tmp_path / "gaps"
    result = filled("export", "gaps", "--format", "torch", "--out", str(out), "--split", "composition")
    assert result.exit_code == 0, result.output
    assert "leakage: 0 of" in result.stdout
    meta = json.loads((out / "meta.json").read_text())
    assert meta["target"] == {**meta["target"], "property": "band_gap", "unit": "eV"} and meta["n"] == 30


def test_a_torch_export_names_the_records_it_leaves_out(run, tmp_path):
    tables = sorted(path.stem for path in JANAF_TABLES.glob("*-*.txt"))
    assert run("fetch", "janaf", *tables, "--no-progress").exit_code == 0
    electron = run("fetch", "janaf", "D-020", "--base-url", f"{RAW_JANAF.as_uri()}/", "--no-progress")
    assert electron.exit_code == 0, electron.output
    result = run("export", "thermo", "--format", "torch", "--out", str(tmp_path / "thermo"))
    assert result.exit_code == 0, result.output
    assert f"{len(tables)} records of enthalpy_of_formation [kJ/mol-atom]" in result.stdout
    assert "left out janaf:D-020: its formula unit e1- has no atoms: no composition to featurize" in result.stdout


def test_a_torch_export_whose_target_mixes_dft_and_experiment_warns(filled, catalog_path, tmp_path):
    with catalog_path.open("a", encoding="utf-8") as catalog:  # band gaps of any provenance
        catalog.write("  all-gaps: {description: band gaps, version: 0.1.0, properties: [band_gap]}\n")
    data, mapping = tmp_path / "dft.csv", tmp_path / "dft.yaml"
    pbe_gaps = {"GaAs": 0.19, "Si": 0.61, "GaN": 1.73, "ZnO": 0.73, "AlN": 4.06, "InP": 0.47, "CdTe": 0.59, "MgO": 4.45}
    data.write_text("id,formula,gap\n" + "".join(f"{f},{f},{gap}\n" for f, gap in pbe_gaps.items()), encoding="utf-8")
    mapping.write_text(
        "dataset: demo-lab-bandgaps\nformula_column: formula\nid_column: id\nprovenance: dft\nmethod: PBE\n"
        "citation: test\ncolumns:\n  gap: {property: band_gap, unit: eV}\n",
        encoding="utf-8",
    )
    single = filled("export", "all-gaps", "--format", "torch", "--out", str(tmp_path / "one"))
    assert single.exit_code == 0 and "warning" not in single.stderr  # measured gaps only
    assert filled("import", str(data), "-m", str(mapping), "--as", "dft-gaps").exit_code == 0
    mixed = filled("export", "all-gaps", "--format", "torch", "--out", str(tmp_path / "mixed"))
    assert mixed.exit_code == 0
    assert "warning: the target mixes provenances (dft 8, experimental 30)" in mixed.stderr
    trained = filled(
        "train", str(tmp_path / "mixed"), "--model", "elemnet", "--epochs", "1", "--out", str(tmp_path / "r")
    )
    assert trained.exit_code == 0 and "warning: the target mixes provenances" in trained.stderr
    by_provenance = ["--split", "provenance", "--out", str(tmp_path / "split")]
    split = filled("export", "all-gaps", "--format", "torch", *by_provenance)
    assert split.exit_code == 0 and "warning" not in split.stderr  # trained on DFT, tested on experiment


def test_a_torch_export_of_values_at_two_temperatures_exports_them_and_warns(filled, catalog_path, tmp_path):
    with catalog_path.open("a", encoding="utf-8") as catalog:
        catalog.write("  all-gaps: {description: band gaps, version: 0.1.0, properties: [band_gap]}\n")
    mapping = (
        "dataset: lab-gaas\nformula_column: formula\nid_column: id\nprovenance: experimental\ncitation: test\n"
        "columns:\n  gap: {property: band_gap, unit: eV, temperature_field: T}\n"
    )
    gaas = "id,formula,gap,T\ngaas-rt,GaAs,1.42,300\ngaas-4k,GaAs,1.52,4\n"
    assert cli_import(filled, tmp_path, "gaas", gaas, mapping).exit_code == 0
    result = filled("export", "all-gaps", "--format", "torch", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "warning: the target's values are at several temperatures (1 at 4 K, 31 at 300 K)" in result.stderr
    records = pd.read_parquet(tmp_path / "out" / "records.parquet").set_index("record_id")
    gaas = records.loc[["lab-gaas:gaas-rt", "lab-gaas:gaas-4k"], ["formula", "target", "temperature_K"]]
    assert gaas.to_numpy().tolist() == [["GaAs", 1.42, 300.0], ["GaAs", 1.52, 4.0]]
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["conditions"] == {"temperature_K": {"4": 1, "300": 31}, "pressure_Pa": {"(none)": 32}}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--format", "csv", "--split", "composition", "--seed", "7"], "--split, --seed: only for --format torch"),
        (["--format", "parquet", "--target", "band_gap"], "--target: only for --format torch"),
        (["--format", "torch", "--layout", "wide"], "--layout: only for file formats"),
        (["--format", "torch", "--release", "0.1.0"], "--release: a release is exported as a file (--format parquet"),
    ],
)
def test_export_options_the_format_does_not_read_are_refused(filled, tmp_path, options, message):
    out = tmp_path / ("gaps" if "torch" in options else f"gaps.{options[1]}")
    result = filled("export", "gaps", "--out", str(out), *options)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {message}")  # a ConfigError
    assert not out.exists()


def test_conflicts_lists_the_two_measurements_of_one_compound(filled):
    result = filled("conflicts", "band_gap", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {(row["record_id"], row["value"]) for row in rows} == {
        ("demo-lab-bandgaps:roost-2", 3.08),
        ("demo-lab-bandgaps:roost-17", 2.94),
    }
    assert filled("conflicts", "band_gap", "--tol", "1").stdout.startswith("no band_gap values disagree")


def test_a_rejected_record_leaves_the_exported_dataset(filled, tmp_path):
    out = tmp_path / "gaps.csv"
    assert filled("export", "gaps", "--format", "csv", "--out", str(out)).exit_code == 0
    assert "demo-lab-bandgaps:roost-3" in set(pd.read_csv(out)["record_id"])
    result = filled(
        "review", "reject", "demo-lab-bandgaps:roost-3", "--steward", "A. Steward", "--reason", "mislabelled"
    )
    assert result.exit_code == 0, result.output
    assert filled("export", "gaps", "--format", "csv", "--out", str(out)).exit_code == 0
    exported = pd.read_csv(out)
    assert "demo-lab-bandgaps:roost-3" not in set(exported["record_id"]) and len(exported) == 29


def test_train_then_predict_from_the_command_line(filled, tmp_path):
    run_dir = tmp_path / "run"
    result = filled(
        "train",
        "gaps",
        "--model",
        "elemnet",
        "--epochs",
        "3",
        "--device",
        "auto",
        "--out",
        str(run_dir),
        "--split",
        "composition",
    )
    assert result.exit_code == 0, result.output
    test = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert f"test MAE {test['model']['mae']:.4g} (predict-the-mean {test['mean_baseline']['mae']:.4g})" in result.stdout
    assert json.loads((run_dir / "config.json").read_text())["device"] == "cpu"
    predictions = tmp_path / "pred.csv"
    result = filled("predict", str(run_dir), "GaN", "--out", str(predictions))
    assert result.exit_code == 0, result.output
    row = pd.read_csv(predictions).iloc[0]
    assert (row["formula"], row["property"], row["unit"]) == ("GaN", "band_gap", "eV")
    exported = (run_dir / "export" / "records.parquet").read_bytes()
    again = filled("train", "gaps", "--model", "elemnet", "--epochs", "3", "--out", str(run_dir), "--split", "random")
    assert again.exit_code == 1 and "holds a trained model already" in again.stderr
    assert (run_dir / "export" / "records.parquet").read_bytes() == exported  # the run's export as it was


def _split_of(run_dir: Path) -> dict[str, str]:
    return pd.read_parquet(run_dir / "export" / "records.parquet").set_index("record_id")["split"].to_dict()


def test_the_training_seed_leaves_the_split_of_a_dataset_alone_and_the_split_seed_sets_it(filled, tmp_path):
    def trained(name: str, *options: str) -> Path:
        options = ("--model", "elemnet", "--epochs", "1", "--out", str(tmp_path / name), *options)
        result = filled("train", "gaps", *options)
        assert result.exit_code == 0, result.output
        return tmp_path / name

    first, second = trained("s1", "--seed", "1"), trained("s2", "--seed", "2")
    assert _split_of(first) == _split_of(second)  # the same test set: seed-to-seed variance is the model's alone
    assert json.loads((first / "config.json").read_text())["settings"]["seed"] == 1
    other = trained("split5", "--split-seed", "5")
    assert _split_of(other) != _split_of(first) and _split_of(other).keys() == _split_of(first).keys()
    assert json.loads((other / "export" / "meta.json").read_text())["split"]["seed"] == 5
    said = " ".join(runner.invoke(app, ["train", "--help"]).output.replace("│", " ").split())
    assert "Training seed: initial weights and batch order (not the split)." in said
    assert "For a dataset: seed of the split (default 0, as `matreg export`'s)." in said


@pytest.mark.parametrize(
    ("lr", "code", "message"),
    [
        ("nan", 2, "error: --lr nan: the learning rate must be a positive number"),
        ("1e6", 1, "error: training diverged: the validation MAE was nan in all 2 epoch(s)"),
    ],
)
def test_a_learning_rate_that_cannot_train_is_a_one_line_error(filled, tmp_path, lr, code, message):
    result = filled("train", "gaps", "--epochs", "2", "--lr", lr, "--out", str(tmp_path / "run"))
    assert result.exit_code == code and result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert not (tmp_path / "run" / "model.pt").exists()


@pytest.mark.parametrize(
    ("option", "code", "message"),
    [
        (["--model", "cgnn"], 2, "error: unknown model 'cgnn' (choose from elemnet, attention, cgcnn)"),
        (["--device", "tpu"], 2, "error: unknown device 'tpu' (choose from auto, cpu, cuda, mps)"),
        (["--lr", "0"], 2, "error: --lr 0.0: the learning rate must be a positive number"),
    ],
)
def test_train_options_are_checked_before_the_dataset_is_exported(filled, tmp_path, option, code, message):
    result = filled("train", "gaps", *option, "--out", str(tmp_path / "run"))
    assert result.exit_code == code and result.stderr == message + "\n"
    assert not (tmp_path / "run").exists()  # no export left behind


def test_the_readme_sql_examples_run(filled):
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("```sql\n", 1)[1].split("```", 1)[0]
    statements = "\n".join(line for line in block.splitlines() if not line.startswith("--"))  # comments
    queries = [query.strip() for query in statements.split(";") if query.strip()]
    assert len(queries) == 2
    heats, reasons = (filled("sql", query, "--format", "json") for query in queries)
    assert heats.exit_code == 0 and "-241.826" in heats.stdout  # H-064, water vapour: delta-f H at 298.15 K
    assert reasons.exit_code == 0 and len(json.loads(reasons.stdout)) == 5  # the lab file's five bad rows


def test_a_dry_run_writes_no_http_cache_either(run, tmp_path):
    assert run("fetch", "janaf", "H-064", "--cache", "--dry-run").exit_code == 0
    assert not (tmp_path / "store").exists()
    assert run("fetch", "janaf", "H-064", "--cache").exit_code == 0
    assert (tmp_path / "store" / "http_cache.sqlite").is_file()  # (the cache a real fetch keeps)


def test_a_fetch_says_which_pages_the_http_cache_gave_and_refresh_cache_reads_them_again(run, janaf_server):
    assert "HTTP cache" not in run("fetch", "janaf", "H-064", "C-095", "--no-progress").stdout  # (catalog: cache on)
    again = run("fetch", "janaf", "H-064", "C-095", "--no-progress")
    assert again.exit_code == 0 and len(janaf_server.requests) == 2
    said = again.stdout.splitlines()[1]
    assert said.startswith("  1 page from the HTTP cache, read at 20") and said.endswith(
        " UTC (--refresh-cache reads again)"
    )
    refreshed = run("fetch", "janaf", "H-064", "C-095", "--refresh-cache", "--no-progress")
    assert refreshed.exit_code == 0 and "HTTP cache" not in refreshed.stdout and len(janaf_server.requests) == 4
    assert "1 page from the HTTP cache" in run("fetch", "janaf", "H-064", "C-095", "--no-progress").stdout
    assert len(janaf_server.requests) == 4  # the refreshed answers, cached


def test_a_fetch_with_the_http_cache_deletes_its_expired_answers_of_other_versions_and_keeps_fresh_ones(
    run, tmp_path, catalog_path
):
    """Answers of another database version (or page size) have keys no later run asks for: they were kept forever."""
    from requests_cache import EXPIRE_IMMEDIATELY
    from requests_cache.backends.sqlite import SQLiteCache

    cache_file = tmp_path / "store" / "http_cache.sqlite"
    assert run("fetch", "janaf", "H-064", "--cache").exit_code == 0
    SQLiteCache(cache_file).reset_expiration(EXPIRE_IMMEDIATELY)  # as a day on: expired
    assert run("fetch", "janaf", "O-029", "--cache").exit_code == 0  # fresh
    catalog_path.write_text(catalog_path.read_text().replace("4th edition (1998)", "5th edition"), encoding="utf-8")
    assert run("fetch", "janaf", "C-095", "--cache").exit_code == 0
    answers = SQLiteCache(cache_file).filter()
    kept = [(answer.url.rsplit("/", 1)[1], answer.cache_key.rsplit("@", 1)[1]) for answer in answers]
    assert sorted(kept) == [("C-095.txt", "5th edition"), ("O-029.txt", "4th edition (1998)")]


def test_refresh_cache_with_no_cache_is_refused(run, janaf_server):
    result = run("fetch", "janaf", "H-064", "--refresh-cache", "--no-cache")
    assert result.exit_code == 2 and "--refresh-cache replaces the HTTP cache's answers" in result.stderr
    assert not janaf_server.requests


def test_an_export_sidecar_cites_each_file_of_a_lab_dataset_it_holds(run, tmp_path):
    for name, citation, license in (("a", "Smith 2026", "CC-BY-4.0"), ("b", "Jones 2026", "CC0-1.0")):
        (tmp_path / f"{name}.csv").write_text(f"id,formula,gap\n{name}1,GaN,3.4\n", encoding="utf-8")
        (tmp_path / f"{name}.yaml").write_text(
            f"dataset: xl\nformula_column: formula\nid_column: id\ncitation: {citation}\nlicense: {license}\n"
            "columns:\n  gap: {property: band_gap, unit: eV}\n",
            encoding="utf-8",
        )
        assert run("import", str(tmp_path / f"{name}.csv"), "-m", str(tmp_path / f"{name}.yaml")).exit_code == 0
    out = tmp_path / "gaps.csv"
    result = run("export", "gaps", "--format", "csv", "--out", str(out))
    assert "gaps (the store now, unreleased): 2 rows" in result.stdout
    meta = json.loads(out.with_name(out.name + ".meta.json").read_text())
    cited = [(entry["source"], entry["citation"], entry["license"]) for entry in meta["sources"]]
    assert cited == [("xl", "Jones 2026", "CC0-1.0"), ("xl", "Smith 2026", "CC-BY-4.0")]
    assert meta["released"] is False


def test_help_lists_the_etl_commands_first_and_an_unknown_export_format_names_every_format(run):
    commands = run("--help").stdout.split("Commands")[1]
    listed = [line.split()[1] for line in commands.splitlines() if line.startswith("│ ") and line[2] != " "]
    assert listed[:2] == ["fetch", "import"] and listed.index("export") < listed.index("history")
    result = run("export", "thermo", "--format", "xlsx", "--out", "x.xlsx")
    assert result.exit_code != 0 and "unknown format 'xlsx' (choose from parquet, csv, jsonl, torch)" in result.stderr


def test_help_lists_each_command_s_summary_as_one_paragraph_however_its_docstring_wraps():
    """The command list kept the docstring's line breaks ('the latest runs' then a break inside the sentence, the
    rest on a line of its own) for every command whose summary is longer than a source line."""
    listed = matreg_in_locale({"COLUMNS": "250"}, "--help").stdout.decode()
    assert "the latest runs and the interrupted ones (what resumes each" in listed
    assert "so that reads open a few files instead of one per commit and table" in listed


def test_a_dry_run_of_a_file_counts_an_id_on_two_pages_as_the_import_does(run, tmp_path):
    # The one dry run that maps more than one page: a local file's, 1000 rows a page. s0 is on the first and, below
    # them, at 310 K and again at 300 K: the rows of one id are read on one page, one record's, the one at 300 K
    # refused (a repeated key), so neither counts s0 twice. (A fetch's dry run maps its first page only, where a
    # record read twice is one row.)
    gaps = tmp_path / "gaps.csv"
    rows = "".join(f"s{i},GaN,{3 + i / 1000},eV,300\n" for i in range(1000))
    rows += "s0,GaN,3.5,eV,310\ns0,GaN,3.5,eV,300\n"
    gaps.write_text("sample_id,composition,band_gap,band_gap_unit,T_K\n" + rows)
    mapping = str(LAB_EXAMPLE / "mapping.yaml")
    preview = run("import", str(gaps), "--mapping", mapping, "--dry-run").stdout
    real = run("import", str(gaps), "--mapping", mapping).stdout
    assert "read 1002, 1000 valid records (1001 values): none written (dry run); quarantined 1" in preview
    assert "read 1002, 1000 valid records (1001 values): 1000 written; quarantined 1" in real
    repeated = "duplicate id 's0': row gives band_gap by optical absorption / transport (compiled) at 300 K, "
    repeated += "which line 2 gave"
    assert repeated in preview and repeated in real


def where_given() -> str:
    """The --store and --catalog that a command a `run` command prints gives: those the environment names."""
    return shlex.join(["--store", os.environ["MATREG_STORE"], "--catalog", os.environ["MATREG_CATALOG"]])


def store_given() -> str:
    """The --store that a `matreg drop` a `run` command prints gives: the one the environment names."""
    return shlex.join(["--store", os.environ["MATREG_STORE"]])


def latest_runs(status: str) -> tuple[list[str], list[str]]:
    """The header and rows of `matreg status`'s table of the latest run of each source."""
    table = status.split("only a published run stored its valid records):\n")[1].split("\n\n")[0]
    header, *rows = table.splitlines()
    return header.split(), rows


def test_status_shows_a_failed_run_as_having_published_nothing(run, janaf_server):
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)  # the second page fails after the first was read
    assert run("fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress").exit_code == 75
    status = run("status").stdout
    assert status.startswith("no values stored yet\n")
    assert "latest run of each source, the one that ended last first (times in UTC; counts of what it read; only a " \
        "published run stored its valid records):" in status  # fmt: skip
    header, (row,) = latest_runs(status)
    assert header == [
        "source", "run_id", "status", "ended", "read", "valid", "unchanged", "values", "quarantined", "last_published"
    ]  # fmt: skip
    assert row.split()[2:5] == ["failed", "(nothing", "published)"]  # fetch_runs.status, then what it means
    assert row.split()[7:] == ["1", "1", "-", "7", "0", "-"]  # nothing unchanged, never published: not '<NA>'
    assert "<NA>" not in status
    assert run("fetch", "janaf", "H-064", "--no-progress").exit_code == 0
    newest = latest_runs(run("status").stdout)[1][0]
    assert newest.split()[2:4] == ["complete", "(published)"]


def test_status_says_why_a_sources_latest_run_failed(run, janaf_server):
    """Status showed a source's latest run 'failed (nothing published)' without its error: what failed, and whether
    running again later would do, was left to a query of fetch_runs (or a cron mail kept). It says so below the table,
    as the fetch said it; a source whose latest run was published says nothing there."""
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)  # the second page fails after the first was read
    assert run("fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress").exit_code == 75
    assert run("import", str(LAB_EXAMPLE / "bandgaps.csv"), "-m", str(LAB_EXAMPLE / "mapping.yaml")).exit_code == 0
    run_id = run("sql", "SELECT run_id FROM fetch_runs WHERE source = 'janaf'", "--format", "csv").stdout.split()[1]
    status = run("status").stdout
    failed = status.split("only a published run stored its valid records):\n")[1].split("\n\n")[1].splitlines()
    error = f"HTTP 503: scripted (from {janaf_server.url}C-095.txt, after 3 retries)"
    assert failed == ["latest runs that failed, with their error:", f"  janaf {run_id}: {error}"]
    assert run("fetch", "janaf", "C-095", "--no-progress").exit_code == 0
    assert "latest runs that failed" not in run("status").stdout


def test_a_resumed_run_keeps_each_failure_it_was_resumed_from_and_status_says_them(run, janaf_server):
    """A run continued by --resume keeps its run id, and fetch_runs shows its latest row: once it was published, the
    time and error of each attempt that failed before were in no view, and status showed the run published as if it
    had never failed. `run_failures` has every failure, and status says how often the latest run of a source failed
    before, when the last did and its error."""
    fetch = ["fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress"]
    for resuming in ([], ["--resume"]):  # the second page fails, then fails again as the run is resumed
        janaf_server.fail("/tables/C-095.txt", *[503] * 4)
        assert run(*fetch, *resuming).exit_code == 75
    assert "failed once before, the last at " in run("status").stdout  # (the latest failure is the run's own row)
    assert run(*fetch, "--resume").exit_code == 0
    store = Store(Path(os.environ["MATREG_STORE"]))
    (run_id,) = store.query("SELECT run_id FROM fetch_runs WHERE status = 'complete'")["run_id"]
    failures = store.query(
        "SELECT run_id, strftime(failed_at, '%Y-%m-%d %H:%M:%S') AS at, n_fetched, error FROM run_failures "
        "ORDER BY failed_at"
    )
    error = f"HTTP 503: scripted (from {janaf_server.url}C-095.txt, after 3 retries)"
    assert failures[["run_id", "n_fetched", "error"]].values.tolist() == [[run_id, 1, error], [run_id, 1, error]]
    status = run("status").stdout
    below = status.split("\nlatest runs resumed after failing, with when and why they last failed (every failure: ")[1]
    earlier = below.split("\n\n")[0].splitlines()[1:]
    assert earlier == [f"  janaf {run_id}: failed 2 times before, the last at {failures['at'][1]} UTC: {error}"]
    assert "latest runs that failed, with their error" not in status  # (the run was published)
    assert run("fetch", "janaf", "H-064", "--no-progress").exit_code == 0  # a run that never failed
    assert "failed before" not in run("status").stdout
    assert len(store.query("SELECT * FROM run_failures")) == 2


def test_status_lists_each_sources_run_that_ended_last_and_when_the_source_was_last_published(run, janaf_server):
    """Status listed the 5 runs started last, of all sources: after a few failed fetches no published run of a source
    was left to say when it was last refreshed, and a run published by --resume sorted by when it started."""
    janaf_server.fail("/tables/C-095.txt", *[503] * 4)  # the second page fails after the first was read
    interrupted = ["fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress"]
    assert run(*interrupted).exit_code == 75
    (resumed,) = Store(Path(os.environ["MATREG_STORE"])).staged_runs()
    assert run("fetch", "janaf", "O-029", "--no-progress").exit_code == 0  # started later, ended earlier
    assert run(*interrupted, "--resume").exit_code == 0
    published = latest_runs(run("status").stdout)[1]
    assert [row.split()[:2] for row in published] == [["janaf", resumed]]
    ended = published[0].split()[4:6]
    assert published[0].split()[-2:] == ended  # the source was last published by the run that ended last
    assert run("import", str(LAB_EXAMPLE / "bandgaps.csv"), "-m", str(LAB_EXAMPLE / "mapping.yaml")).exit_code == 0
    for _ in range(6):
        janaf_server.fail("/tables/O-029.txt", *[503] * 4)
        assert run("fetch", "janaf", "O-029", "--no-cache", "--no-progress").exit_code == 75
    status = run("status").stdout
    rows = latest_runs(status)[1]
    assert [row.split()[0] for row in rows] == ["janaf", "demo-lab-bandgaps"]
    assert rows[0].split()[2:5] == ["failed", "(nothing", "published)"]
    assert rows[0].split()[-2:] == ended  # still when the resumed run published it
    assert rows[1].split()[2:4] == ["complete", "(published)"]


SECRET = "sk-live-0123456789abcdef"


def test_a_key_in_a_base_url_is_never_listed_and_its_fetch_is_refused(run, catalog_path, janaf_server, tmp_path):
    """Connectors build record URLs on the base URL: a key in its query would be stored with every record."""
    keyed = f"{janaf_server.url}?api_key={SECRET}"
    catalog_path.write_text(catalog_path.read_text().replace(janaf_server.url, keyed))
    listed = run("catalog")
    assert f"{janaf_server.url}?api_key=***" in listed.stdout and SECRET not in listed.output
    for flags in ([], ["--base-url", keyed]):
        fetched = run("fetch", "janaf", "H-064", *flags, "--no-progress")
        assert (
            fetched.exit_code == 2
            and "the base URL carries a secret in its query" in fetched.output
            and SECRET not in fetched.output
        )
    assert not janaf_server.requests and not (tmp_path / "store").exists()


def test_verbose_logs_each_request_and_stamps_the_log_with_the_utc_time_never_a_secret(
    run, janaf_server, tmp_path, monkeypatch, retry_waits
):
    """A fetch said nothing of the requests it sent, and a cron log could not tell when a retry or a failure came:
    `matreg -v` logs each request (its method, its URL with secrets redacted, status, bytes, milliseconds, and whether
    the HTTP cache gave it), each line of the log and the error after the UTC time; without it stderr is as before."""
    catalog = write_catalog(tmp_path / "catalog.yaml", janaf_server.url, auth_env="JANAF_KEY")
    monkeypatch.setenv("JANAF_KEY", SECRET)  # (sent as a header: the server hands it back in a redirect's query)

    def route(request):
        if request.path == "/tables/H-064.txt" and "sig" not in request.query:
            return Reply(302, b"", headers={"Location": f"/tables/H-064.txt?sig={SECRET}&token=t0k3n"})
        return janaf_route(request)

    janaf_server.route = route
    janaf_server.fail("/tables/C-095.txt", 503)
    url, size = janaf_server.url, {name: (JANAF_TABLES / f"{name}.txt").stat().st_size for name in ("H-064", "C-095")}

    def logged(*args: str) -> tuple[int, list[str]]:
        """The exit code of `matreg -v ...` and its stderr's lines, each checked to start with the UTC time within the
        command's run and that time cut off, its milliseconds and seconds of a wait as N."""
        started = datetime.now(UTC).replace(microsecond=0)
        result = run("-v", *args, "--catalog", str(catalog), "--no-progress")
        ended = datetime.now(UTC)
        assert SECRET not in result.output and "t0k3n" not in result.output
        lines = []
        for line in result.stderr.splitlines():
            stamp, said = line.split(" ", 1)
            assert started <= datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) <= ended, line
            lines.append(re.sub(r"in [0-9.]+ (ms|s)\b", r"in N \1", said))
        return result.exit_code, lines

    assert logged("fetch", "janaf", "H-064", "C-095") == (0, [
        f"info: GET {url}H-064.txt: HTTP 302, 0 bytes in N ms (HTTP cache miss)",
        f"info: GET {url}H-064.txt?sig=***&token=***: HTTP 200, {size['H-064']} bytes in N ms (HTTP cache miss)",
        f"warning: HTTP 503 from {url}C-095.txt: retry 1 of 3 in N s (backoff)",
        f"info: GET {url}C-095.txt: HTTP 200, {size['C-095']} bytes in N ms (HTTP cache miss)",
    ])  # fmt: skip
    assert logged("fetch", "janaf", "C-095") == (
        0, [f"info: GET {url}C-095.txt: HTTP 200, {size['C-095']} bytes in N ms (HTTP cache hit)"]
    )  # fmt: skip
    janaf_server.fail("/tables/O-029.txt", *[503] * 4)
    code, lines = logged("fetch", "janaf", "O-029", "--no-cache")
    assert code == 75 and lines[-1].startswith(f"error: HTTP 503: scripted (from {url}O-029.txt, after 3 retries)")
    assert lines[:-1] == [
        *(f"warning: HTTP 503 from {url}O-029.txt: retry {n} of 3 in N s (backoff)" for n in (1, 2, 3)),
        f"info: GET {url}O-029.txt: HTTP 503, 21 bytes in N ms",
    ]
    quiet = run("fetch", "janaf", "C-095", "--catalog", str(catalog), "--no-progress")  # (the default: as before)
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_verbose_stamps_every_line_a_fetch_writes_on_stderr_with_the_utc_time(run, janaf_server):
    """Under `matreg -v` the log and the error were stamped with the UTC time, where a fetch's other lines on stderr
    (that it was interrupted, that it resumed a run, the runs it dropped as it started) were not."""
    interrupt = threading.Event()  # set: the request of the second page stops the fetch (SIGTERM, as Slurm sends)

    def route(request):
        if request.path == "/tables/C-095.txt" and interrupt.is_set():
            interrupt.clear()
            os.kill(os.getpid(), signal.SIGTERM)
        return janaf_route(request)

    janaf_server.route = route
    fetch = ["-v", "fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress", "--no-cache"]

    def said(*args: str) -> tuple[int, list[str]]:
        """The exit code of `matreg -v fetch ...` and its stderr's lines other than the log's, each checked to start
        with the UTC time within the command's run and that time cut off (the empty line before 'interrupted', which
        ends a progress bar's, left out)."""
        started = datetime.now(UTC).replace(microsecond=0)
        result = run(*fetch, *args)
        ended = datetime.now(UTC)
        lines = []
        for line in filter(None, result.stderr.splitlines()):
            stamp, text = line.split(" ", 1)
            assert started <= datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) <= ended, line
            lines += [] if text.startswith("info: ") else [text]
        return result.exit_code, lines

    interrupt.set()
    code, lines = said()
    (run_id,) = Store(Path(os.environ["MATREG_STORE"])).staged_runs()
    assert code == 143 and lines == [
        f"interrupted: run {run_id} committed 1 records read (staged, not published); the same command with --resume "
        f"continues it: matreg fetch janaf H-064 C-095 {where_given()} --resume"
    ]
    assert said("--resume-or-start") == (0, [f"resumed the interrupted run {run_id} (--resume-or-start)"])
    interrupt.set()
    assert said()[0] == 143
    (dropped,) = Store(Path(os.environ["MATREG_STORE"])).staged_runs()
    code, lines = said()
    assert code == 0 and len(lines) == 1
    assert lines[0].startswith(f"as it started, this fetch dropped the interrupted run of the same query: {dropped} ")


def test_verbose_stamps_each_line_of_a_message_of_several_lines_with_the_utc_time(run):
    """Under `matreg -v` a message of several lines (DuckDB's error of a query, its caret under the column it did
    not find) had the UTC time on its first line only, its other lines unstamped among the log's: each line has it,
    the same, the caret still under the column."""
    assert run("import", str(LAB_EXAMPLE / "bandgaps.csv"), "-m", str(LAB_EXAMPLE / "mapping.yaml")).exit_code == 0
    failed = run("-v", "sql", "SELECT nosuch FROM materials")
    assert failed.exit_code != 0 and len(failed.stderr.splitlines()) > 2, failed.stderr
    stamps, lines = zip(*(line.split(" ", 1) for line in failed.stderr.splitlines()), strict=True)
    assert len(set(stamps)) == 1 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamps[0])
    assert lines[0].startswith("error: query failed: Binder Error:") and "nosuch" in lines[0]
    (query,) = [line for line in lines if line.startswith("LINE 1: ")]
    assert lines[-1].index("^") == query.index("nosuch"), failed.stderr


def test_a_command_ctrl_c_interrupts_exits_130_after_an_earlier_one_sigterm_stopped_in_the_same_process(
    run, janaf_server
):
    """The signals that stopped a command were kept for the process: a command run in-process (a notebook, a test)
    that Ctrl-C interrupted after another that SIGTERM had stopped exited 143, as if SIGTERM had stopped it too.
    Each command forgets the signals of those before it: 130."""
    signals: list[int] = []  # the signal the request of the second page sends this process

    def route(request):
        if request.path == "/tables/C-095.txt" and signals:
            os.kill(os.getpid(), signals.pop())
        return janaf_route(request)

    janaf_server.route = route
    fetch = ["fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress", "--no-cache"]
    on_ctrl_c = signal.signal(signal.SIGINT, signal.default_int_handler)  # (as in a terminal, in a background job too)
    try:
        exit_codes = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            signals.append(sig)
            exit_codes.append(run(*fetch).exit_code)
    finally:
        signal.signal(signal.SIGINT, on_ctrl_c)
    assert exit_codes == [143, 130]


def test_verbose_never_lowers_the_level_a_library_user_set_on_the_matreg_logger(run):
    """`-v` set the `matreg` logger's level to info whatever it was: a program running the commands in-process at
    debug level had it lowered to info. `-v` only raises it; a level the program set after it is not restored over by a
    later command without `-v`."""
    logger = logging.getLogger("matreg")
    logger.setLevel(logging.DEBUG)
    assert run("-v", "catalog").exit_code == 0 and logger.level == logging.DEBUG
    logger.setLevel(logging.WARNING)
    assert run("-v", "catalog").exit_code == 0 and logger.level == logging.INFO
    logger.setLevel(logging.DEBUG)  # (the program's, after that command)
    assert run("-v", "catalog").exit_code == 0 and logger.level == logging.DEBUG
    assert run("catalog").exit_code == 0 and logger.level == logging.DEBUG


def test_a_command_leaves_the_level_a_library_user_set_on_the_matreg_logger(run):
    """Each command set the `matreg` logger's level to NOTSET without `-v`, dropping a level a program that runs the
    commands in-process had set; `-v` logs at info level for its command alone."""
    logger = logging.getLogger("matreg")
    logger.setLevel(logging.ERROR)
    assert run("catalog").exit_code == 0 and logger.level == logging.ERROR
    assert run("-v", "catalog").exit_code == 0 and logger.level == logging.INFO
    assert run("catalog").exit_code == 0 and logger.level == logging.ERROR


def _ctrl_c_as_in_a_terminal() -> None:
    """In a child, SIGINT as a terminal delivers it: a suite run as a background job of a shell inherits it ignored,
    and so would the child (Python then raises no KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_a_fetch_says_what_was_committed_and_how_to_continue(tmp_path):
    reached, release = threading.Event(), threading.Event()

    def route(request):
        if request.path == "/tables/C-095.txt":  # the second page: read while the user presses Ctrl-C
            reached.set()
            release.wait(10)
        return janaf_route(request)

    with ReplayServer(route, prefix="/tables/") as server:
        env = {
            "MATREG_STORE": str(tmp_path / "store"),
            "MATREG_CATALOG": str(write_catalog(tmp_path / "catalog.yaml", server.url)),
        }
        command = ["fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--commit-every", "1", "--no-progress"]
        fetch = subprocess.Popen(
            [sys.executable, "-c", "from matreg.cli import app; app()", *command], stderr=subprocess.PIPE,
            stdout=subprocess.PIPE, preexec_fn=_ctrl_c_as_in_a_terminal, **utf8_child(env),
        )  # fmt: skip
        try:
            assert reached.wait(60)
            fetch.send_signal(signal.SIGINT)
            stderr = fetch.communicate(timeout=60)[1]
        finally:
            release.set()
            fetch.kill()
    assert fetch.returncode == 130 and "Traceback" not in stderr, stderr  # (stderr shown should it ever fail)
    said = stderr.strip()
    assert said.startswith("interrupted: run ") and "-janaf-" in said and "\n" not in said
    where = shlex.join(["--store", env["MATREG_STORE"], "--catalog", env["MATREG_CATALOG"]])
    assert said.endswith(
        " committed 1 records read (staged, not published); the same command with --resume continues it: "
        f"matreg fetch janaf H-064 C-095 {where} --resume"
    )


ENDLESS_QUERY = "SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b"  # (minutes: interrupted)
ENDLESS_ROWS = "SELECT a.range FROM range(1000000) a, range(1000000) b WHERE a.range = 0 OR a.range * b.range < 0"


def _has_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has the file `path` open (Linux: /proc/<pid>/fd)."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):  # (closed meanwhile)
            if os.readlink(fd) == str(path):
                return True
    return False


def _wait_for(process: subprocess.Popen, condition: Callable[[], bool], timeout_s: float = 60) -> None:
    """Wait until `condition()` holds while `process` runs; fail the test if it ends first, or after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the process ended ({process.returncode}): {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out: {process.communicate()}")
        time.sleep(0.02)


def _interrupt(process: subprocess.Popen, sig: int = signal.SIGINT) -> str:
    """Send `sig` to a running `matreg` process, wait for it to end (seconds: the endless queries of these tests run
    for minutes); its stderr."""
    try:
        process.send_signal(sig)
        return process.communicate(timeout=15)[1]
    finally:
        process.kill()


# A `python -c` prelude: DuckDB on four threads, as on a host of four cores or more (DuckDB takes one a core), on any
# host. DuckDB itself notices a signal only while the thread that asked for a query runs a part of it, not while it
# waits for another thread's part: the store passes the signal on to it (`matreg.store.interrupts`).
MATREG_ON_FOUR_DUCKDB_THREADS = """
import functools
import duckdb
duckdb.connect = functools.partial(duckdb.connect, config={"threads": 4})
"""
RUN_MATREG = "from matreg.cli import app; app()"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_while_duckdb_runs_a_query_of_sql_is_an_interrupt_not_a_query_error(filled, tmp_path, sig, code):
    """DuckDB (on four threads) stops a query at Ctrl-C (or SIGTERM, which matreg makes one) and raises its own error
    (RuntimeError('Query interrupted'), or InterruptException) in place of the KeyboardInterrupt: `matreg sql` exits
    as interrupted (130; 143) within seconds, no traceback."""
    sql = subprocess.Popen(
        [sys.executable, "-c", MATREG_ON_FOUR_DUCKDB_THREADS + RUN_MATREG, "sql", ENDLESS_QUERY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **utf8_child(), preexec_fn=_ctrl_c_as_in_a_terminal,
    )  # fmt: skip
    _wait_for(sql, lambda: _has_open(sql.pid, tmp_path / "store" / "matreg.duckdb"))  # (it opens it to run the query)
    time.sleep(1)
    stderr = _interrupt(sql, sig)
    assert sql.returncode == code and stderr.strip() == "interrupted", stderr


# `python -c`: the store (argv[1]) runs ENDLESS_QUERY as `matreg sql` runs it, ENDLESS_ROWS as `matreg sql` reads
# rows as DuckDB makes them, and ENDLESS_QUERY as matreg's own reads run theirs, argv[2] times each, with DuckDB on four
# threads and SIGTERM handled as the command line does; 'querying' before each, 'interrupted' after each that an
# interrupt stopped; at the end, what it holds that it did not before (Python threads, open files, a wakeup fd), as
# 'left: []'
INTERRUPTED_READS = (
    MATREG_ON_FOUR_DUCKDB_THREADS
    + f"""
import os
import signal
import sys
import threading
from matreg.cli_options import stop_on_sigterm
from matreg.store import Store

def held():
    wakeup_fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup_fd)
    return [thread.name for thread in threading.enumerate()], os.listdir("/proc/self/fd"), wakeup_fd

stop_on_sigterm()
store = Store(sys.argv[1])
before = held()
reads = [
    lambda: list(store.query_batches({ENDLESS_QUERY!r}, 1000)),
    lambda: list(store.query_batches({ENDLESS_ROWS!r}, 1000)),
    lambda: store.read({ENDLESS_QUERY!r}),
]
for read in reads * int(sys.argv[2]):
    print("querying", flush=True)
    try:
        read()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
print("left:", [(now, then) for now, then in zip(held(), before) if now != then], flush=True)
"""
)


def test_a_signal_stops_a_query_duckdb_runs_on_several_threads_within_seconds(filled, tmp_path):
    """With DuckDB on several threads, about one Ctrl-C or SIGTERM in two went unnoticed by a query (of `matreg sql`,
    of a fetch publishing, of an export), which ran to its end (minutes on a big store: a scheduler's grace period
    ended in SIGKILL): each of nine queries, signalled as it runs, stops within seconds, as an interrupt, and leaves
    no thread or file of the store's watch for signals behind."""
    reads = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_READS, str(tmp_path / "store"), "3"], stdout=subprocess.PIPE, **utf8_child(),
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in reads.stdout], daemon=True).start()
    try:
        for sig in ([signal.SIGINT, signal.SIGTERM] * 5)[:9]:  # (each read stopped by each signal)
            assert lines.get(timeout=60) == "querying\n"
            time.sleep(0.3)  # (DuckDB runs the query, on its four threads)
            reads.send_signal(sig)
            try:  # (20 s: a loaded host's scheduling, far under the minutes the query would run unnoticed)
                assert lines.get(timeout=20) == "interrupted\n"
            except queue.Empty:
                pytest.fail(f"the query went on for 20 s after {sig.name}")
        assert lines.get(timeout=60) == "left: []\n"
    finally:
        reads.kill()
        reads.communicate()


# `matreg ...` (its arguments after a file's path) with DuckDB on four threads, whose comparison of a run it publishes
# with the store runs until it is interrupted, the file touched as it starts
SLOW_PUBLISH = (
    MATREG_ON_FOUR_DUCKDB_THREADS
    + f"""
import sys
from pathlib import Path
import matreg.store

changed_records_sql = matreg.store.changed_records_sql
publishing = Path(sys.argv.pop(1))  # (the rest: matreg's arguments)

def endless(*args, **kwargs):
    publishing.touch()  # the run is publishing: its comparison with the store starts now
    return (
        f"SELECT * FROM ({{changed_records_sql(*args, **kwargs)}}) "
        "UNION ALL SELECT NULL WHERE ({ENDLESS_QUERY}) IS NULL"
    )

matreg.store.changed_records_sql = endless
{RUN_MATREG}
"""
)


def test_ctrl_c_while_a_fetch_publishes_stops_it_resumable_not_failed(run, tmp_path, janaf_server):
    """Ctrl-C while DuckDB compares a run with the store: the fetch says it was interrupted and how to continue
    (130), records no failed run, and --resume publishes it."""
    fetch = ["fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress"]
    assert run(*fetch).exit_code == 0  # (stored records: the run read again is compared with them)
    store = Store(tmp_path / "store")
    before = visible_tables(store)
    publishing = tmp_path / "publishing"
    again = subprocess.Popen(
        [sys.executable, "-c", SLOW_PUBLISH, str(publishing), *fetch], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, **utf8_child(), preexec_fn=_ctrl_c_as_in_a_terminal,
    )  # fmt: skip
    _wait_for(again, publishing.exists)
    time.sleep(1)
    stderr = _interrupt(again)
    assert again.returncode == 130 and stderr.strip().startswith("interrupted: run "), stderr
    assert " committed 2 records read (staged, not published); the same command with --resume" in stderr
    assert list(store.read("SELECT status FROM fetch_runs ORDER BY started_at")["status"]) == ["complete"]
    resumed = run(*fetch, "--resume")
    assert resumed.exit_code == 0 and "read 2, 2 valid records" in resumed.stdout
    assert list(store.read("SELECT status FROM fetch_runs")["status"]) == ["complete", "complete"]
    assert all(store.table(name).equals(frame) for name, frame in before.items())


VALUES = "SELECT record_id, property, method, temperature_K, pressure_Pa, value FROM properties ORDER BY ALL"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_stops_a_fetch_as_ctrl_c_does_committing_the_pages_it_read(tmp_path, sig, code):
    """SIGTERM (Slurm's, `timeout`'s, systemd's, docker stop's) killed a fetch before it committed the pages it had
    read and said nothing; it stops it as Ctrl-C does: the page read is committed (its --commit-every not due yet),
    one line says which run holds it, exit 143 (Ctrl-C: 130), and --resume stores what an uninterrupted run does."""
    reached, release = threading.Event(), threading.Event()

    def route(request):
        if request.path == "/tables/C-095.txt":  # the second page: read when the signal comes
            reached.set()
            release.wait(10)
        return janaf_route(request)

    fetch = ["fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--no-progress"]
    store = tmp_path / "store"
    with ReplayServer(route, prefix="/tables/") as server:
        catalog = write_catalog(tmp_path / "catalog.yaml", server.url, cache=False)
        fetch += ["--catalog", str(catalog)]
        stopped = subprocess.Popen(
            [sys.executable, "-m", "matreg", *fetch, "--store", str(store)], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, **utf8_child(), preexec_fn=_ctrl_c_as_in_a_terminal,
        )  # fmt: skip
        try:
            assert reached.wait(60)
            stderr = _interrupt(stopped, sig)
        finally:
            release.set()
        said = stderr.strip()
        assert stopped.returncode == code and said.startswith("interrupted: run ") and "\n" not in said, stderr
        (run_id,) = Store(store).staged_runs()
        assert f"run {run_id} committed 1 records read (staged, not published)" in said
        assert runner.invoke(app, [*fetch, "--store", str(store), "--resume"]).exit_code == 0
        assert runner.invoke(app, [*fetch, "--store", str(tmp_path / "whole")]).exit_code == 0
    resumed, whole = Store(store), Store(tmp_path / "whole")
    assert resumed.read("SELECT run_id, status FROM fetch_runs").values.tolist() == [[run_id, "complete"]]
    assert len(resumed.read(VALUES)) > 0 and resumed.read(VALUES).equals(whole.read(VALUES))


# `matreg ...` whose CSV writer waits, once it wrote an export's temp file, for the signal
CSV_WRITER_WAITING = f"""
import time
from matreg.store import files

write_csv = files._WRITERS["csv"]

def write_and_wait(frame, path):
    write_csv(frame, path)
    time.sleep(60)

files._WRITERS["csv"] = write_and_wait
{RUN_MATREG}
"""


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_stops_an_export_as_ctrl_c_does_leaving_no_file(filled, tmp_path, sig, code):
    """SIGTERM left an export's temp file (`.thermo.csv.<uuid>.tmp`) and said nothing; Ctrl-C said nothing either.
    Both remove it and say that the export wrote nothing (exit 143; 130)."""
    out = tmp_path / "out"
    export = subprocess.Popen(
        [sys.executable, "-c", CSV_WRITER_WAITING, "export", "thermo", "--out", str(out / "thermo.csv")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **utf8_child(), preexec_fn=_ctrl_c_as_in_a_terminal,
    )  # fmt: skip
    _wait_for(export, lambda: any(out.glob(".thermo.csv.*.tmp")))
    stderr = _interrupt(export, sig)
    assert export.returncode == code, stderr
    assert stderr.strip() == "interrupted: the export wrote nothing (an export is written whole or not at all)"
    assert list(out.iterdir()) == []


def test_an_interrupted_import_or_release_says_it_wrote_nothing(filled, tmp_path, monkeypatch):
    """An import or a release interrupted (here at its last step) ended with an empty stderr: one line says what was
    interrupted and that it wrote nothing, which the store shows."""
    store = Store(tmp_path / "store")
    before = visible_tables(store)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "publish_run", interrupted)
    imported = filled("import", str(LAB_EXAMPLE / "bandgaps.csv"), "-m", str(LAB_EXAMPLE / "mapping.yaml"))
    assert imported.exit_code == 130
    assert imported.stderr.strip() == "interrupted: the import stored nothing; importing the file again reads it whole"
    assert all(store.table(name).equals(frame) for name, frame in before.items())
    monkeypatch.setattr("matreg.curate.release.write_card", interrupted)
    released = filled("release", "gaps")
    assert released.exit_code == 130
    assert (
        released.stderr.strip() == "interrupted: the release wrote nothing (a release is written whole or not at all)"
    )
    assert not list((store.root / "releases" / "gaps").iterdir())


@pytest.mark.parametrize(
    "command",
    [
        ["validate"],
        ["sql", "SELECT 1"],
        ["status"],
        ["compact"],
        ["history", "janaf:H-064"],
        ["conflicts", "band_gap"],
        ["review", "flag", "janaf:H-064", "-p", "band_gap", "--reason", "odd"],
    ],
)
def test_a_store_path_that_holds_no_store_is_a_command_that_can_never_work_as_typed(run, tmp_path, command):
    """A mistyped --store (or MATREG_STORE) names a folder where nothing was ever written: fix the command (exit 2),
    and nothing is made there."""
    result = run(*command, "--store", str(tmp_path / "typo"))
    assert result.exit_code == 2, result.output
    said = f"error: no matreg store at {tmp_path / 'typo'} (run `matreg fetch` or `matreg import` first)\n"
    assert result.stderr == said
    assert not (tmp_path / "typo").exists()


def test_a_store_whose_first_run_was_interrupted_says_a_run_is_staged_not_that_there_is_no_store(run, catalog):
    class InterruptedAfterOnePage(JanafConnector):  # as a Ctrl-C (or kill -9) after the first commit leaves a fetch
        def pages(self, cursor=None):
            yield next(super().pages(cursor))
            raise KeyboardInterrupt

    source = catalog.source("janaf")
    with pytest.raises(KeyboardInterrupt):
        connector = InterruptedAfterOnePage(source, HttpClient(source.http), ["H-064", "C-095"], page_size=1)
        run_ingest(connector, Store(Path(os.environ["MATREG_STORE"])), commit_every=1)
    for command in (["validate"], ["sql", "SELECT 1"]):
        result = run(*command)
        assert result.exit_code == 1 and "no matreg store" not in result.stderr
        assert result.stderr.startswith("error: nothing is published in the matreg store at ")
        assert "-janaf-" in result.stderr and "for a fetch, the same command with --resume" in result.stderr
    assert run("fetch", "janaf", "H-064", "C-095", "--page-size", "1", "--resume", "--no-progress").exit_code == 0
    assert "store is valid: 2 materials" in run("validate").stdout


def test_exports_remove_what_exports_killed_an_hour_ago_left_beside_them(filled, tmp_path):
    """Temporary files of file exports and staging folders of torch exports, named as matreg names them; one being
    written (younger) and anything else stay."""
    out = tmp_path / "out"
    out.mkdir()
    killed_file, killed_torch = out / f".x.csv.{'a' * 32}.tmp", out / f".gaps.{'b' * 32}.tmp"
    being_written, users = out / f".y.csv.{'c' * 32}.tmp", out / ".x.csv.tmp"
    killed_torch.mkdir()
    for path in (killed_file, killed_torch / "records.parquet", being_written, users):
        path.write_bytes(b"half written")
    two_hours_ago = time.time() - 7200
    for path in (killed_file, killed_torch / "records.parquet", killed_torch, users):
        os.utime(path, (two_hours_ago, two_hours_ago))
    assert filled("export", "thermo", "--out", str(out / "x.csv")).exit_code == 0
    assert not killed_file.exists() and not killed_torch.exists()
    assert filled("export", "gaps", "--format", "torch", "--out", str(out / "gaps")).exit_code == 0
    left = sorted(path.name for path in out.iterdir())
    assert left == sorted([".x.csv.tmp", being_written.name, "gaps", "x.csv", "x.csv.meta.json"])


def test_every_command_but_sql_works_while_a_duckdb_shell_holds_the_store_file(filled, tmp_path, hold_for_writing):
    """matreg reads the Parquet files itself; the DuckDB file is for `matreg sql` and other clients."""
    hold_for_writing(tmp_path / "store" / "matreg.duckdb")
    flag = ["review", "flag", "demo-lab-bandgaps:roost-5", "-p", "band_gap", "--reason", "odd"]
    commands = [["status"], ["conflicts", "band_gap"], flag, ["history", "demo-lab-bandgaps:roost-5"]]
    commands += [["export", "gaps", "--out", str(tmp_path / "gaps.csv")], ["release", "gaps"], ["validate"]]
    commands += [["export", "gaps", "--format", "torch", "--out", str(tmp_path / "torch")]]
    for command in commands:
        result = filled(*command)
        assert result.exit_code == 0, (command, result.output)
    assert "roost-5" in (tmp_path / "gaps.csv").read_text()
    result = filled("sql", "select 1")
    assert result.exit_code == 75 and "duckdb -readonly" in result.stderr  # (a failure for now: try again later)


def test_a_lab_imports_values_of_a_property_its_project_declares(run, tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "schemas").mkdir(parents=True)
    (project / "schemas" / "properties.yaml").write_text(
        "hall_mobility:\n  description: Hall mobility\n  unit: cm**2/(V*s)\n  bounds: [0, 1.0e+6]\n", encoding="utf-8"
    )
    mapping = (
        "dataset: hall-lab\nformula_column: formula\nid_column: sample\nmethod: Hall effect\ncitation: c\n"
        "license: CC-BY-4.0\ncolumns:\n  mu: {property: hall_mobility, unit: m^2/(V*s), temperature_K: 300}\n"
    )
    monkeypatch.chdir(project)
    result = cli_import(run, tmp_path, "hall", "sample,formula,mu\nS1,Si,0.14\nS2,GaAs,0.85\n", mapping)
    assert result.exit_code == 0, result.output
    assert "2 valid records (2 values): 2 written; quarantined 0" in result.stdout
    query = "select formula, round(hall_mobility, 6) as mu from properties_wide order by formula"
    wide = run("sql", query, "--format", "csv")
    assert wide.stdout.splitlines() == ["formula,mu", "GaAs,8500.0", "Si,1400.0"]
    assert run("validate").exit_code == 0
    monkeypatch.chdir(tmp_path)  # where the project's vocabulary is not: its values are not matreg's
    result = run("validate")
    assert result.exit_code == 1 and "hall_mobility" in result.output
    result = run("review", "correct", "hall-lab:S1", "-p", "hall_mobility", "--value", "1450", "--reason", "r")
    assert result.exit_code == 1
    assert (
        "hall_mobility is not in the property vocabulary here: a project's own property is corrected" in result.stderr
    )


def test_a_base_url_flag_or_variable_naming_no_server_is_refused_as_the_catalogs_is(run, monkeypatch):
    result = run("fetch", "janaf", "Al-001", "--base-url", "localhost:8000/tables/", "--no-progress")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --base-url: 'localhost:8000/tables/' is no URL of a server or a folder: give http://, https:// or "
        "file://\n"
    )
    monkeypatch.setenv("MP_API_ENDPOINT", "api.materialsproject.org")
    result = run("fetch", "mp", "--formula", "Fe2O3", "--no-progress", "--catalog", str(resource_path("catalog.yaml")))
    assert result.exit_code == 2 and result.stderr.startswith(
        "error: MP_API_ENDPOINT: 'api.materialsproject.org' is no"
    )


def test_an_export_is_the_same_file_with_times_in_utc_whatever_the_hosts_zone(filled, tmp_path):
    """Exports of one store on hosts in two time zones: the same bytes, in each format; a Parquet file's times typed
    as the store declares them (`timestamp[us, tz=UTC]`), so that one appends to another, and a text file's in UTC."""
    files = {}
    for zone in ("Etc/UTC", "Asia/Tokyo"):
        for fmt in EXPORT_FORMATS:
            out = tmp_path / f"{zone.replace('/', '_')}.{fmt}"
            matreg_in_zone(zone, "export", "gaps", "--out", str(out))
            files.setdefault(fmt, []).append(out)
    for fmt, (first, second) in files.items():
        assert first.read_bytes() == second.read_bytes(), fmt
    exported = pq.read_table(files["parquet"][1])
    assert exported.schema.field("fetched_at").type == pa.timestamp("us", tz="UTC")
    shown = pd.read_csv(files["csv"][1], dtype={"fetched_at": str})["fetched_at"]
    assert shown.str.endswith("+00:00").all(), shown.iloc[0]
    assert (pd.to_datetime(shown).to_numpy() == exported.column("fetched_at").to_pandas().to_numpy()).all()


def test_sql_shows_times_in_utc_as_stored_whatever_the_hosts_zone(filled, tmp_path):
    query = "SELECT fetched_at FROM materials WHERE source = 'janaf' LIMIT 1"
    env = {"TZ": "America/New_York", "MATREG_STORE": str(tmp_path / "store")}
    for fmt, zone in (("json", r'Z"\}\]$'), ("csv", r"\+00:00$")):
        shown = subprocess.run(
            [sys.executable, "-m", "matreg", "sql", query, "--format", fmt], capture_output=True, **utf8_child(env)
        )
        assert shown.returncode == 0 and re.search(zone, shown.stdout.strip()), shown.stdout


def matreg_in_locale(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`matreg ...` in a process of its own whose environment adds `env` (an output encoding, a locale, COLUMNS) to
    this one's (the store and catalog the `run` fixture sets), in `cwd`; its arguments given in UTF-8 (as a UTF-8
    terminal passes them, whatever this process's locale), its output as bytes."""
    command = [sys.executable, "-m", "matreg", *(arg.encode("utf-8") for arg in args)]
    return subprocess.run(command, env=os.environ | env, cwd=cwd, capture_output=True, timeout=300)


LATIN1_TERMINAL = {"PYTHONIOENCODING": "latin-1"}
NON_UTF8_OUTPUTS = [LATIN1_TERMINAL, {"PYTHONIOENCODING": "ascii"}, {"PYTHONUTF8": "0", "LC_ALL": "C"}]


def test_an_import_whose_report_holds_a_character_the_terminal_lacks_prints_it_escaped_and_succeeds(run, tmp_path):
    """A Latin-1 terminal (or cron's mail) and a quarantine reason in Cyrillic ('эВ' as a unit): the import published,
    then printing its report failed with a traceback, exit 1 (cron saw a failure for an import that landed). The
    report is printed, the character escaped as Python escapes on stderr (\\u044d), exit 0."""
    lab = tmp_path / "uni.csv"
    lab.write_text(
        "sample_id,composition,band_gap,band_gap_unit,T_K\nS1,Fe₂O₃,2.1,eV,300\nS2,ZnO,3.3,эВ,300\n", encoding="utf-8"
    )
    imported = matreg_in_locale(LATIN1_TERMINAL, "import", str(lab), "-m", str(LAB_EXAMPLE / "mapping.yaml"))
    assert imported.returncode == 0 and imported.stderr == b"", imported.stderr
    assert b"1 valid records (1 values): 1 written; quarantined 1" in imported.stdout
    assert b"unknown unit '\\u044d\\u0412'" in imported.stdout
    assert run("sql", "select formula from materials", "--format", "csv").stdout == "formula\nFe2O3\n"


@pytest.mark.parametrize("env", NON_UTF8_OUTPUTS)
def test_csv_and_json_rows_are_printed_in_utf8_whatever_the_locale(filled, env):
    """`matreg sql ... --format csv > out.csv` under a locale whose encoding lacks a character of the rows wrote the
    header alone, exit 1; CSV and JSON, for other programs, are UTF-8 whatever the locale, every character kept."""
    query = (  # (typed in ASCII: the locale's encoding reads the command line too)
        "select 'Fe' || chr(8322) || 'O' || chr(8323) as formula, 'Horiba ' || chr(181) || 'PL ' || chr(8211) || "
        "' 532 nm' as instrument, chr(1101) || chr(1042) as unit"
    )
    rows = matreg_in_locale(env, "sql", query, "--format", "csv")
    assert rows.returncode == 0 and rows.stderr == b"", rows.stderr
    assert rows.stdout.decode("utf-8") == "formula,instrument,unit\nFe₂O₃,Horiba µPL – 532 nm,эВ\n"
    records = matreg_in_locale(env, "sql", query, "--format", "json")
    assert records.returncode == 0 and json.loads(records.stdout.decode("utf-8")) == [
        {"formula": "Fe₂O₃", "instrument": "Horiba µPL – 532 nm", "unit": "эВ"}
    ]


def test_a_table_holding_a_character_the_terminal_lacks_prints_it_escaped(filled):
    shown = matreg_in_locale(LATIN1_TERMINAL, "sql", "select 'µPL эВ' as t")
    assert shown.returncode == 0 and shown.stdout.decode("latin-1").split() == ["t", "µPL", "\\u044d\\u0412"]


@pytest.mark.parametrize("env", [{}, *NON_UTF8_OUTPUTS])
def test_fetch_help_shows_each_option_whole_at_80_columns_in_any_locale(env):
    """`matreg fetch --help` into a file or pipe (80 columns) cut option names ('--all-temperatur…') and a catalog
    setting ('http.cache_expir…'), and the cut's '…' failed to print in an ASCII or Latin-1 locale (exit 1)."""
    shown = matreg_in_locale(env, "fetch", "--help")
    assert shown.returncode == 0 and shown.stderr == b"", shown.stderr
    text = shown.stdout.decode("latin-1" if env == LATIN1_TERMINAL else "utf-8")
    assert "…" not in text and "\\u2026" not in text
    for option in ("--all-temperatures", "--resume-or-start", "--refresh-cache", "--commit-every", "--no-cache"):
        assert re.search(rf"(^|\s){option}\s", text, re.MULTILINE), option
    assert "http.cache_expire_after_s" in text
    assert max(len(line) for line in text.splitlines()) <= 80


@pytest.mark.parametrize(
    "args",
    [
        ["history", "uni-lab:S\udce9"],
        ["sql", "select 'caf\udce9' as t"],
        ["fetch", "janaf", "H-064", "Al-00\udce9", "--no-progress"],
        ["review", "flag", "janaf:H-064", "--reason", "caf\udce9"],
    ],
)
def test_a_text_argument_that_is_not_utf8_is_refused_as_a_bad_argument(filled, args):
    """A Latin-1 é typed in a UTF-8 locale (Python reads it as a surrogate) failed with a traceback, DuckDB's, pyarrow's
    or the fetch's as it recorded the id; it is refused before the command runs (exit 2), shown as bytes, as a path
    whose name is not UTF-8 is, and nothing is written."""
    before = filled("sql", "select count(*) as n from fetch_runs", "--format", "csv").stdout
    result = filled(*args)
    given = next(arg for arg in args if "\udce9" in arg)
    assert result.exit_code == 2 and result.stdout == "", result.output
    assert result.stderr == (
        f"error: the argument {given.encode('utf-8', 'surrogateescape')!r} is not UTF-8 text, which matreg records "
        "text in; give it in UTF-8\n"
    )
    assert filled("sql", "select count(*) as n from fetch_runs", "--format", "csv").stdout == before
    assert filled("history", "janaf:H-064").stdout.count("flag") == 0


def test_text_arguments_in_utf8_are_read_where_the_locale_reads_ascii(filled):
    """`PYTHONUTF8=0 LC_ALL=C`: Python reads each byte of a UTF-8 argument that ASCII lacks as a surrogate ('Fe₂O₃'
    failed in DuckDB); the bytes are read as the UTF-8 they are."""
    shown = matreg_in_locale({"PYTHONUTF8": "0", "LC_ALL": "C"}, "sql", "select 'Fe₂O₃' as formula", "--format", "csv")
    assert shown.returncode == 0 and shown.stderr == b"", shown.stderr
    assert shown.stdout.decode("utf-8") == "formula\nFe₂O₃\n"


def matreg_in_deleted_folder(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`matreg ...` in a process of its own started in `folder`, which is deleted first (a shell left in a folder
    another removed), on the store and catalog the environment names unless the arguments name others."""
    folder.mkdir()
    in_it = ["sh", "-c", 'cd "$0" && rmdir "$0" && exec "$@"', str(folder), sys.executable, "-m", "matreg", *args]
    return subprocess.run(in_it, capture_output=True, **utf8_child(), timeout=300)


def test_commands_run_in_a_deleted_folder_on_a_store_named_by_its_whole_path(filled, tmp_path):
    """A current directory deleted: every store command failed with 'error: [Errno 2] No such file or directory',
    naming no file, even given an absolute --store (the project's schemas were looked up there). Without a current
    directory there is no project folder: matreg's own schemas are read."""
    gone = tmp_path / "gone"
    store = os.environ["MATREG_STORE"]
    status = matreg_in_deleted_folder(gone, "status", "--store", store)
    assert status.returncode == 0 and status.stderr == "" and "demo-lab-bandgaps" in status.stdout
    lab = ["import", str(LAB_EXAMPLE / "bandgaps.csv"), "-m", str(LAB_EXAMPLE / "mapping.yaml"), "--store", store]
    imported = matreg_in_deleted_folder(tmp_path / "gone-too", *lab)
    assert imported.returncode == 0 and "30 valid records" in imported.stdout, imported.stderr
    listed = matreg_in_deleted_folder(tmp_path / "gone-again", "catalog")
    assert listed.returncode == 0 and "project files read from: none (the current directory no longer exists)\n" in (
        listed.stdout
    )


@pytest.mark.parametrize(
    ("args", "relative"),
    [
        (["status"], "matreg-store"),  # the default store
        (["import", "lab.csv", "-m", str(LAB_EXAMPLE / "mapping.yaml")], "lab.csv"),
    ],
)
def test_a_relative_path_in_a_deleted_folder_is_a_one_line_error_saying_so(run, tmp_path, monkeypatch, args, relative):
    monkeypatch.delenv("MATREG_STORE")
    failed = matreg_in_deleted_folder(tmp_path / "gone", *args)
    assert failed.returncode == 2 and failed.stdout == ""
    assert failed.stderr == (
        f"error: the current directory no longer exists, and the path '{relative}' is relative to it: cd into a "
        "folder that exists, or give the whole path\n"
    )


@pytest.mark.parametrize("columns", ["0", "-5", "wide", ""])
def test_a_columns_setting_that_is_no_width_is_taken_as_unset(columns):
    """COLUMNS=0 made rich draw the help and a usage error 0 columns wide: `matreg --help` printed one empty line,
    `matreg fetch janaf --bogus` nothing at all (exit 2). A COLUMNS that is no positive width is taken as unset."""
    helped = matreg_in_locale({"COLUMNS": columns}, "--help")
    assert helped.returncode == 0 and b"Usage:" in helped.stdout and b"fetch" in helped.stdout
    refused = matreg_in_locale({"COLUMNS": columns}, "fetch", "janaf", "--bogus")
    assert refused.returncode == 2 and b"No such option: --bogus" in refused.stderr


@pytest.mark.parametrize("source", ["oqmd", "mp", "nomad", "jarvis", "optimade"])
def test_structures_is_refused_where_the_pages_carry_them_already(tmp_path, source):
    """`--structures` was accepted by the sources whose pages carry each record's structure and did nothing there
    (only AFLOW fetches an entry's structure by a request of its own); it is refused as `--all-temperatures` is
    outside JANAF, saying the structures are kept anyway, and nothing is written."""
    fetch = ["fetch", source, "--all", "--structures", "--base-url", "http://127.0.0.1:9", "--no-progress"]
    result = CliRunner().invoke(app, [*fetch, "--store", str(tmp_path / "s")])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert f"{source} cannot use --structures: only aflow reads it" in message
    assert "the other sources' pages carry each record's structure, always kept" in message
    assert not (tmp_path / "s").exists()


def test_status_indents_the_lines_of_a_failed_runs_error_under_it_and_cuts_a_long_one(capsys):
    """A failed run's error is `str` of what stopped it, which an unexpected error (DuckDB's, pyarrow's) writes on
    several lines: they printed flush left, as if a new item of the list, and a long error whole."""
    runs = pd.DataFrame(
        {
            "source": ["oqmd", "nomad"],
            "run_id": ["r1", "r2"],
            "error": ["Binder Error: no such column\nLINE 1: SELECT x\n               ^", "x" * 2000],
        }
    )
    cli._echo_failures(runs)
    lines = capsys.readouterr().out.splitlines()
    assert lines[2:5] == ["  oqmd r1: Binder Error: no such column", "    LINE 1: SELECT x", "                   ^"]
    assert lines[5] == "  nomad r2: " + "x" * 597 + "..."
