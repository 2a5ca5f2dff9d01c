"""How the commands print rows (`matreg sql`, `conflicts`, `diff`): an aligned table to read, CSV and JSON for other
programs, each value as stored.

Rows come in chunks, one list of Python values per column (None for NULL). `matreg sql` prints CSV and JSON as DuckDB
produces its rows, one batch of BATCH_ROWS at a time; a table is aligned over the rows it shows, the first TABLE_ROWS,
and says how many more there are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import orjson
import pyarrow
import typer

if TYPE_CHECKING:
    import pandas as pd

BATCH_ROWS = 10_000  # rows `matreg sql` reads from DuckDB and prints at a time
TABLE_ROWS = 10_000  # rows a table shows (it is aligned over them, so holds them); CSV and JSON print every row
Chunk = list[list]  # rows as one list of Python values per column, None for NULL

_CSV_QUOTED = re.compile(r'[",\r\n]')
_TABLE_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})  # a row of a table stays one line
_JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_SERIALIZE_NUMPY


def echo_reader(reader: pyarrow.RecordBatchReader, fmt: str, empty: str) -> None:
    """Print a query's rows as an aligned table (`empty` when there are none), CSV or JSON records, each batch as it
    is read: CSV and JSON hold one batch at a time, a table the rows it shows."""
    names = _distinct(reader.schema.names)
    if fmt == "table":
        _echo_table(names, *_first_rows(reader, TABLE_ROWS), empty, None)
    else:
        _ECHO[fmt](names, ([column.to_pylist() for column in batch.columns] for batch in reader))


def echo_frame(frame: pd.DataFrame, fmt: str, empty: str, max_colwidth: int | None = None) -> None:
    """Print a frame of matreg's (conflicts, diff) as `echo_reader` prints a query's rows, its missing values (NaN,
    None) as NULL; a table cuts longer cells to `max_colwidth` characters and says so."""
    values = frame.astype(object).where(frame.notna(), None)
    columns = [values.iloc[:, index].tolist() for index in range(values.shape[1])]
    names = _distinct([str(name) for name in frame.columns])
    if fmt == "table":
        shown = [column[:TABLE_ROWS] for column in columns]
        _echo_table(names, shown, max(len(frame) - TABLE_ROWS, 0), empty, max_colwidth)
    else:
        _ECHO[fmt](names, [columns])


def _distinct(names: list[str]) -> list[str]:
    """Column names made distinct as DuckDB's data frames make them (a second 'a' is 'a_1'), so that a JSON record
    keeps every column."""
    distinct: list[str] = []
    for name in names:
        while name in distinct:
            name += "_1"
        distinct.append(name)
    return distinct


def _first_rows(batches: pyarrow.RecordBatchReader, limit: int) -> tuple[Chunk, int]:
    """The first `limit` rows of the batches, and how many rows follow them (counted, not kept)."""
    shown: Chunk = [[] for _ in batches.schema.names]
    kept = more = 0
    for batch in batches:
        head = batch.slice(0, limit - kept)
        for values, column in zip(shown, head.columns, strict=True):
            values.extend(column.to_pylist())
        kept += head.num_rows
        more += batch.num_rows - head.num_rows
    return shown, more


def _echo_table(names: list[str], columns: Chunk, more: int, empty: str, max_colwidth: int | None) -> None:
    """Print rows as a table, each column right-aligned to its widest cell, NULL as NULL; cells longer than
    `max_colwidth` (None: none) cut, and a last line for what was cut or left out (`more` rows)."""
    if not columns or not columns[0]:
        typer.echo(empty)
        return
    cells = [[_table_cell(value) for value in values] for values in columns]
    cut = max_colwidth is not None and any(len(text) > max_colwidth for texts in cells for text in texts)
    if cut:
        cells = [[_cut(text, max_colwidth) for text in texts] for texts in cells]
    widths = [max(len(name), *map(len, texts)) for name, texts in zip(names, cells, strict=True)]
    rows = [names, *zip(*cells, strict=True)]
    typer.echo("\n".join(" ".join(map(str.rjust, row, widths)) for row in rows))
    whole = "--format csv or --format json prints"
    if cut:
        typer.echo(f"(cells longer than {max_colwidth} characters are cut: {whole} them whole)")
    if more:
        typer.echo(f"({more} more rows not shown: {whole} every row)")


def _table_cell(value: object) -> str:
    """A value as a table shows it: NULL for NULL, line breaks and tabs escaped."""
    return "NULL" if value is None else _text(value).translate(_TABLE_ESCAPES)


def _cut(text: str, width: int) -> str:
    """`text`, cut to `width` characters ending in '...' when it is longer."""
    return text if len(text) <= width else text[: width - 3] + "..."


def _echo_csv(names: list[str], chunks: Iterable[Chunk]) -> None:
    """Print rows as CSV, chunk by chunk: NULL an empty cell, the empty text "" (as PostgreSQL writes CSV)."""
    typer.echo(",".join(map(_csv_cell, names)))
    for columns in chunks:
        cells = [["" if value is None else _csv_cell(_text(value)) for value in values] for values in columns]
        if cells and cells[0]:
            typer.echo("\n".join(map(",".join, zip(*cells, strict=True))))


def _csv_cell(text: str) -> str:
    """A text as a CSV cell: quoted when it holds a comma, quote or line break, or is empty."""
    if not text:
        return '""'
    return '"' + text.replace('"', '""') + '"' if _CSV_QUOTED.search(text) else text


def _echo_json(names: list[str], chunks: Iterable[Chunk]) -> None:
    """Print rows as one JSON array of records, chunk by chunk: numbers in their shortest exact form (NaN and
    infinity, which JSON lacks, as null), times in ISO 8601."""
    typer.echo("[", nl=False)
    separator = ""
    for columns in chunks:
        records = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
        if records:
            typer.echo(separator + _json(records)[1:-1], nl=False)
            separator = ","
    typer.echo("]")


_ECHO: dict[str, Callable[[list[str], Iterable[Chunk]], None]] = {"csv": _echo_csv, "json": _echo_json}


def _text(value: object) -> str:
    """A value (not None) as text: a number in its shortest exact form, a list or struct as JSON, a BLOB as DuckDB
    writes it, a date, time or INTERVAL in ISO 8601 (with a space before a timestamp's time of day, as str() writes
    it)."""
    return _TEXTS.get(type(value), str)(value)


def _json(value: object) -> str:
    """`value` as JSON text (orjson: each float in its shortest exact form)."""
    return orjson.dumps(value, default=_json_default, option=_JSON_OPTIONS).decode()


def _json_default(value: object) -> object:
    """What orjson writes in place of a value it lacks: a DECIMAL (of a HUGEINT sum too) as the number it is, a
    timestamp in nanoseconds (pandas') in ISO 8601, anything else as the text `_text` makes of it (a BLOB, an
    INTERVAL)."""
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    if isinstance(value, datetime):
        return value.isoformat()
    return _text(value)


def _blob_text(value: bytes) -> str:
    """A BLOB as DuckDB writes it as text (which `::BLOB` reads back): printable ASCII as it is, other bytes and
    backslashes and quotes as \\xNN."""
    return "".join(chr(byte) if 32 <= byte < 127 and byte not in b"\\'\"" else f"\\x{byte:02X}" for byte in value)


def _interval_text(value: pyarrow.MonthDayNano) -> str:
    """An INTERVAL in ISO 8601 (P1M2DT3.5S), its months, days and seconds apart as DuckDB keeps them."""
    seconds = Decimal(value.nanoseconds).scaleb(-9).normalize()
    return f"P{value.months}M{value.days}DT{seconds:f}S"


_TEXTS: dict[type, Callable[[object], str]] = {
    Decimal: lambda value: format(value, "f"),
    bytes: _blob_text,
    pyarrow.MonthDayNano: _interval_text,
    list: _json,
    dict: _json,
}
