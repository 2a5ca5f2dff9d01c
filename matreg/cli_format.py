"""How the commands print rows (`matreg sql`, `conflicts`, `diff`): an aligned table to read, CSV and JSON for other
programs (in UTF-8, whatever the locale), each value as stored.

Rows come in chunks, one list of Python values per column (None for NULL). `matreg sql` prints CSV and JSON as DuckDB
produces its rows, one batch of BATCH_ROWS at a time; a table is aligned over the rows it shows, the first TABLE_ROWS,
and says how many more there are (counted up to COUNTED_ROWS more: a query of billions of rows is not run out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import pyarrow
import typer

from matreg.cli_options import print_data_in_utf8
from matreg.errors import clipped
from matreg.valuetext import csv_line, json_text, value_text

if TYPE_CHECKING:
    import pandas as pd

BATCH_ROWS = 10_000  # rows `matreg sql` reads from DuckDB and prints at a time
TABLE_ROWS = 10_000  # rows a table shows (it is aligned over them, so holds them); CSV and JSON print every row
COUNTED_ROWS = 1_000_000  # rows after those a table shows that it counts (read, not kept) before it stops the query
Chunk = list[list]  # rows as one list of Python values per column, None for NULL

_TABLE_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})  # a row of a table stays one line


def echo_reader(reader: pyarrow.RecordBatchReader, fmt: str, empty: str) -> None:
    """Print a query's rows as an aligned table (`empty` when there are none), CSV or JSON records, each batch as it
    is read: CSV and JSON hold one batch at a time, a table the rows it shows."""
    names = _distinct(reader.schema.names)
    if fmt == "table":
        _echo_table(names, *_first_rows(reader, TABLE_ROWS, COUNTED_ROWS), empty, None)
    else:
        _echo_data(fmt, names, ([column.to_pylist() for column in batch.columns] for batch in reader))


def echo_frame(frame: pd.DataFrame, fmt: str, empty: str, max_colwidth: int | None = None) -> None:
    """Print a frame of matreg's (conflicts, diff) as `echo_reader` prints a query's rows, its missing values (NaN,
    None) as NULL; a table cuts longer cells to `max_colwidth` characters and says so."""
    values = frame.astype(object).where(frame.notna(), None)
    columns = [values.iloc[:, index].tolist() for index in range(values.shape[1])]
    names = _distinct([str(name) for name in frame.columns])
    if fmt == "table":
        shown = [column[:TABLE_ROWS] for column in columns]
        more = len(frame) - TABLE_ROWS
        _echo_table(names, shown, str(more) if more > 0 else None, empty, max_colwidth)
    else:
        _echo_data(fmt, names, [columns])


def _distinct(names: list[str]) -> list[str]:
    """Column names made distinct, so that a JSON record keeps every column: a repeated name gets the first number
    suffix no column has yet, as in DuckDB's data frames (a second 'a' is 'a_1', a third 'a_2'); unlike there, names
    that differ in case only ('a', 'A') are distinct already."""
    distinct: list[str] = []
    for name in names:
        number, numbered = 1, name
        while numbered in distinct:
            numbered, number = f"{name}_{number}", number + 1
        distinct.append(numbered)
    return distinct


def _first_rows(batches: pyarrow.RecordBatchReader, limit: int, counted: int) -> tuple[Chunk, str | None]:
    """The first `limit` rows of the batches, and how many rows follow them (None: none): counted (not kept) up to
    `counted` rows, past which the batches are left unread ('more than 1000000')."""
    shown: Chunk = [[] for _ in batches.schema.names]
    kept = more = 0
    for batch in batches:
        head = batch.slice(0, limit - kept)
        for values, column in zip(shown, head.columns, strict=True):
            values.extend(column.to_pylist())
        kept += head.num_rows
        more += batch.num_rows - head.num_rows
        if more > counted:
            return shown, f"more than {counted}"
    return shown, str(more) if more else None


def _echo_table(names: list[str], columns: Chunk, more: str | None, empty: str, max_colwidth: int | None) -> None:
    """Print rows as a table, each column right-aligned to its widest cell, NULL as NULL; cells longer than
    `max_colwidth` (None: none) cut, and a last line for what was cut or left out (`more` rows: '12', 'more than
    1000000'; None: none)."""
    if not columns or not columns[0]:
        typer.echo(empty)
        return
    cells = [[_table_cell(value) for value in values] for values in columns]
    cut = max_colwidth is not None and any(len(text) > max_colwidth for texts in cells for text in texts)
    if cut:
        cells = [[clipped(text, max_colwidth) for text in texts] for texts in cells]
    widths = [max(len(name), *map(len, texts)) for name, texts in zip(names, cells, strict=True)]
    rows = [names, *zip(*cells, strict=True)]
    typer.echo("\n".join(" ".join(map(str.rjust, row, widths)) for row in rows))
    whole = "--format csv or --format json prints"
    if cut:
        typer.echo(f"(cells longer than {max_colwidth} characters are cut: {whole} them whole)")
    if more is not None:
        typer.echo(f"({more} more rows not shown: {whole} every row)")


def _table_cell(value: object) -> str:
    """A value as a table shows it: NULL for NULL, line breaks and tabs escaped."""
    return "NULL" if value is None else value_text(value).translate(_TABLE_ESCAPES)


def _echo_data(fmt: str, names: list[str], chunks: Iterable[Chunk]) -> None:
    """Print rows as CSV or JSON (`fmt`), in UTF-8 whatever the locale (`print_data_in_utf8`)."""
    print_data_in_utf8()
    _ECHO[fmt](names, chunks)


def _echo_csv(names: list[str], chunks: Iterable[Chunk]) -> None:
    """Print rows as CSV (`csv_line`, as exports write CSV files), chunk by chunk."""
    typer.echo(csv_line(names))
    for columns in chunks:
        lines = [csv_line(row) for row in zip(*columns, strict=True)]
        if lines:
            typer.echo("\n".join(lines))


def _echo_json(names: list[str], chunks: Iterable[Chunk]) -> None:
    """Print rows as one JSON array of records, chunk by chunk: numbers in their shortest exact form (NaN and
    infinity, which JSON lacks, as null), times in ISO 8601."""
    typer.echo("[", nl=False)
    separator = ""
    for columns in chunks:
        records = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
        if records:
            typer.echo(separator + json_text(records)[1:-1], nl=False)
            separator = ","
    typer.echo("]")


_ECHO: dict[str, Callable[[list[str], Iterable[Chunk]], None]] = {"csv": _echo_csv, "json": _echo_json}
