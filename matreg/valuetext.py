"""How matreg writes a value as text (`value_text`, `json_text`) and a row as a CSV line (`csv_line`): one rule for
what `matreg sql`, `conflicts` and `diff` print and for the CSV files of exports and releases."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal

import orjson
import pyarrow

_CSV_QUOTED = re.compile(r'[",\r\n]')
_JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_SERIALIZE_NUMPY


def csv_line(values: Iterable[object]) -> str:
    """A row as a CSV line, without its line end: NULL (None) an empty cell, the empty text "" (as PostgreSQL writes
    CSV), each other value as `value_text`, a timestamp to the microsecond (`_csv_text`), quoted when it holds a
    comma, quote or line break (\\r too)."""
    return ",".join("" if value is None else _csv_cell(_csv_text(value)) for value in values)


def _csv_text(value: object) -> str:
    """A value (not None) as a CSV cell's text: `value_text`, but a timestamp (a pandas.Timestamp too) always to the
    microsecond, with its offset where it has one ('2026-12-03 13:58:12.000000+00:00'): pandas.to_datetime infers a
    column's format from its first cell and refuses a time without a fraction beside one with it, and rows written
    in batches (`matreg sql --format csv`) cannot be written to one precision per column."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    return value_text(value)


def _csv_cell(text: str) -> str:
    """A text as a CSV cell: quoted when it holds a comma, quote or line break, or is empty."""
    if not text:
        return '""'
    return '"' + text.replace('"', '""') + '"' if _CSV_QUOTED.search(text) else text


def value_text(value: object) -> str:
    """A value (not None) as text: a number in its shortest exact form, a list or struct as JSON, a BLOB as DuckDB
    writes it, a date, time or INTERVAL in ISO 8601 (with a space before a timestamp's time of day, as str() writes
    it)."""
    return _TEXTS.get(type(value), str)(value)


def json_text(value: object) -> str:
    """`value` as JSON text (orjson: each float in its shortest exact form)."""
    return orjson.dumps(value, default=_json_default, option=_JSON_OPTIONS).decode()


def _json_default(value: object) -> object:
    """What orjson writes in place of a value it lacks: a DECIMAL (of a HUGEINT sum too) as the number it is, a
    timestamp in nanoseconds (pandas') in ISO 8601, anything else as the text `value_text` makes of it (a BLOB, an
    INTERVAL)."""
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    if isinstance(value, datetime):
        return value.isoformat()
    return value_text(value)


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
    list: json_text,
    dict: json_text,
}
