"""Reading lab files: CSV or TSV (also compressed), Excel and JSON; every cell as text, every row with its line.

No type guessing: the mapping and validation decide what a cell means. A row that cannot be read as its header
says (more cells than the header names, e.g. an unquoted separator in a value) is kept with the problem, so it is
quarantined with the reason instead of shifting its cells into the wrong columns.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import zstandard

from matreg.errors import ConfigError

READERS = {".csv": "csv", ".tsv": "csv", ".xlsx": "excel", ".xls": "excel", ".json": "json"}
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")  # a CSV or TSV file may be compressed ('data.csv.gz')
DELIMITERS = ",;\t|"  # the separators a CSV file may use (Excel writes ';' where the decimal mark is a comma)
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, ".zst": zstandard.open}
_EXCEL_ENGINE = {".xlsx": "openpyxl", ".xls": "calamine"}  # (pandas 2 would look for xlrd for .xls)
_EXCEL_DAY = r"^(\d{4}-\d{2}-\d{2}) 00:00:00$"  # how pandas writes an Excel date cell read as text
_SNIFFED_LINES = 50
csv.field_size_limit(2**31 - 1)  # a cell may hold a whole structure (CIF, POSCAR, JSON): the default is 128 kB
_UNREADABLE = (OSError, ValueError, csv.Error, lzma.LZMAError, zipfile.BadZipFile, zstandard.ZstdError)


@dataclass
class LabRows:
    """A lab file's rows as text; the index is each row's line in the file (the header is line 1), or its row in
    the sheet. Blank rows are left out. `problems` are the rows that cannot be read as the header says, by line."""

    frame: pd.DataFrame
    problems: dict[int, str] = field(default_factory=dict)


def read_rows(path: Path, sheet: str | int = 0, columns: tuple[str, ...] = ()) -> LabRows:
    """Every non-blank row of a lab file, each cell as text; ConfigError when the file cannot be read. `columns`,
    the columns a mapping reads, settle a CSV file's separator where its lines leave a choice."""
    suffixes = [suffix.lower() for suffix in path.suffixes[-2:]]
    compression = suffixes[1] if len(suffixes) == 2 and suffixes[1] in COMPRESSED else None
    suffix = suffixes[0] if compression else path.suffix.lower()
    kind = READERS.get(suffix)
    if kind is None or (compression and kind != "csv"):
        known = ", ".join([*READERS, *(f".csv{suffix}" for suffix in COMPRESSED)])
        raise ConfigError(f"{path}: unsupported file type '{''.join(path.suffixes[-2:])}' (use {known})")
    try:
        if kind == "csv":
            return _delimited(_text(path, compression), tab=suffix == ".tsv", columns=columns)
        if kind == "excel":
            return LabRows(_without_blank_rows(_excel(path, sheet, _EXCEL_ENGINE[suffix])))
        frame = pd.DataFrame(_json_records(path), dtype=object)  # 1 stays 1, not 1.0
        frame.index += 2  # the first record is numbered as the first row under a header would be
        return LabRows(frame.where(frame.notna(), "").astype(str))
    except _UNREADABLE as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def _text(path: Path, compression: str | None) -> str:
    """The file's text, decompressed; utf-8-sig: Excel's "CSV UTF-8" starts with a byte order mark."""
    if compression == ".zip":
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if not name.endswith("/")]
            if len(members) != 1:
                raise ValueError(f"a zip archive of a lab file holds one file, this one {len(members)}")
            data = archive.read(members[0])
    elif compression:
        with _OPENERS[compression](path, "rb") as stream:
            data = stream.read()
    else:
        data = path.read_bytes()
    return data.decode("utf-8-sig")


def _delimited(text: str, *, tab: bool, columns: tuple[str, ...]) -> LabRows:
    """The rows of a CSV (separator detected) or TSV text; quoted cells may hold separators and line breaks."""
    delimiter = "\t" if tab else delimiter_of(text, columns)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header or not any(name.strip() for name in header):
        raise ValueError("no header line (the file is empty)")
    header = _header(header)
    rows, lines, problems = [], [], {}
    line = reader.line_num + 1  # where the next row starts
    for cells in reader:
        if any(cell.strip() for cell in cells):
            problem = _width_problem(cells, len(header), delimiter)
            if problem:
                problems[line] = problem
            rows.append((cells + [""] * len(header))[: len(header)])
            lines.append(line)
        line = reader.line_num + 1
    return LabRows(pd.DataFrame(rows, columns=header, index=lines, dtype=str), problems)


def _header(names: list[str]) -> list[str]:
    """A header's column names, a column without one named as pandas names it ('Unnamed: 3': Excel writes trailing
    empty columns); ValueError for a header that names a column twice (which of the two would a mapping read?)."""
    header = [name if name.strip() else f"Unnamed: {index}" for index, name in enumerate(names)]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ValueError(f"column(s) named twice in the header: {', '.join(map(repr, repeated))}")
    return header


def _width_problem(cells: list[str], width: int, delimiter: str) -> str | None:
    """Why a row has more cells than the header names, unless the extra ones are empty (a trailing separator)."""
    if len(cells) <= width or not any(cell.strip() for cell in cells[width:]):
        return None
    shown = "tab" if delimiter == "\t" else repr(delimiter)
    return f"{len(cells)} cells where the header names {width} (a {shown} inside a value needs quotes)"


def delimiter_of(text: str, columns: tuple[str, ...] = ()) -> str:
    """The separator of a CSV text, from its first lines (not the header alone: 'Eg (eV, 300 K)' holds a comma).

    The only separator that splits the header into all of `columns` (those a mapping reads), where one does;
    else csv.Sniffer's choice among those that do (all, without `columns`); else the separator the header uses most
    among those every line has (rows ending in an extra separator confuse the sniffer); a file of one column: ','.
    """
    lines = [line for line in text.splitlines()[: _SNIFFED_LINES * 2] if line.strip()][:_SNIFFED_LINES]
    fitting = [d for d in DELIMITERS if lines and set(columns) <= set(next(csv.reader([lines[0]], delimiter=d)))]
    if len(fitting) == 1:
        return fitting[0]
    candidates = "".join(fitting) or DELIMITERS
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=candidates).delimiter
    except csv.Error:
        pass
    shared = [d for d in candidates if lines and all(d in line for line in lines)]
    return max(shared, key=lambda d: lines[0].count(d), default=",")


def sheet_names(path: Path) -> list[str] | None:
    """The sheets of an Excel file, in order; None for any other file (or one that cannot be opened: read_rows
    then says why)."""
    engine = _EXCEL_ENGINE.get(path.suffix.lower())
    if engine is None:
        return None
    try:
        with pd.ExcelFile(path, engine=engine) as workbook:
            return [str(name) for name in workbook.sheet_names]
    except _UNREADABLE:
        return None


def _excel(path: Path, sheet: str | int, engine: str) -> pd.DataFrame:
    """A sheet as text, indexed by its rows in the sheet (the header is row 1, its names read as a CSV file's are:
    pandas would rename a second 'gap' 'gap.1'); dates as the lab wrote them."""
    cells = pd.read_excel(path, header=None, dtype=str, keep_default_na=False, sheet_name=sheet, engine=engine)
    if cells.empty:
        return pd.DataFrame()
    frame = cells.iloc[1:].set_axis(_header(cells.iloc[0].tolist()), axis=1)
    frame.index += 1
    return frame.replace(_EXCEL_DAY, r"\1", regex=True)  # a date cell as the lab wrote it, not at midnight


def _without_blank_rows(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame[frame.apply(lambda column: column.str.strip() != "").any(axis=1)]


def _json_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON lab file: a list of objects, one per row."""
    records = json.loads(path.read_text(encoding="utf-8-sig"))  # (Windows tools start UTF-8 with a byte order mark)
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise ValueError("a JSON lab file holds a list of records (objects with the mapped keys), one per row")
    return records
