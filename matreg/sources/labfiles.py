"""Reading lab files: CSV, TSV or TXT (also compressed or zipped), Excel and JSON; every cell as text, every row with
its line. A `.txt` file is tab-separated, as Excel's "Unicode Text" writes it; a plain `.zip` archive is read as the one
lab file it holds, by that file's own suffix.

No type guessing: the mapping and validation decide what a cell means. Nor encoding guessing: text is UTF-8, or
UTF-16 or UTF-32 after a byte order mark; other bytes are refused with where they are (a guessed code page would
read other letters, differently from one file to the next). A row that cannot be read as its header
says (more cells than the header names, e.g. an unquoted separator in a value) is kept with the problem, so it is
quarantined with the reason instead of shifting its cells into the wrong columns.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import json
import lzma
import re
import zipfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree.ElementTree import ParseError

import openpyxl
import pandas as pd
import xlrd
import zstandard
from xlrd.compdoc import CompDocError

from matreg.errors import ConfigError, listed, undecodable_at
from matreg.numbers import parse_number

READERS = {
    ".csv": "delimited",
    ".tsv": "delimited",
    ".txt": "delimited",
    ".xlsx": "excel",
    ".xls": "excel",
    ".json": "json",
    ".zip": "zip",
}
TAB_SEPARATED = (".tsv", ".txt")  # .txt: Excel's "Unicode Text" (UTF-16 with a byte order mark, tab-separated)
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")  # a CSV, TSV or TXT file may be compressed ('data.csv.gz')
DELIMITERS = ",;\t|"  # the separators a CSV file may use (Excel writes ';' where the decimal mark is a comma)
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, ".zst": zstandard.open}
_EXCEL_ENGINE = {".xlsx": "openpyxl", ".xls": "calamine"}  # (pandas 2 would look for xlrd for .xls)
_EXCEL_DAY = r"^(\d{4}-\d{2}-\d{2}) 00:00:00$"  # how pandas writes an Excel date cell read as text
_SNIFFED_LINES = 50
_BYTE_ORDER_MARKS = (  # UTF-32's little-endian mark starts with UTF-16's: it comes first
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),  # Excel's "CSV UTF-8"
    (codecs.BOM_UTF16_LE, "utf-16"),  # Excel's "Unicode Text" (tab-separated)
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SAVE_AS_UTF8 = 'save it as UTF-8 (in Excel: "CSV UTF-8 (Comma delimited)")'
_SHOWN_CELLS = 5
csv.field_size_limit(2**31 - 1)  # a cell may hold a whole structure (CIF, POSCAR, JSON): the default is 128 kB
# (ParseError: a workbook's XML that is malformed, or that expands entities past expat's limit: a "billion laughs";
# XLRDError, CompDocError: an .xls file that xlrd, which finds its error cells, cannot read)
_UNREADABLE = (
    OSError,
    ValueError,
    csv.Error,
    lzma.LZMAError,
    zipfile.BadZipFile,
    zstandard.ZstdError,
    ParseError,
    xlrd.XLRDError,
    CompDocError,
)


@dataclass
class LabRows:
    """A lab file's rows as text; the index is each row's line in the file (the header is line 1), or its row in
    the sheet. Blank rows are left out. `problems` are the rows that cannot be read as the header says, by line."""

    frame: pd.DataFrame
    problems: dict[int, str] = field(default_factory=dict)


def read_rows(path: Path, sheet: str | int = 0, columns: tuple[str, ...] = ()) -> LabRows:
    """Every non-blank row of a lab file, each cell as text; ConfigError when the file cannot be read. `columns`,
    the columns a mapping reads, settle a CSV file's separator where its lines leave a choice."""
    suffix, compression = _file_type(path)
    kind = READERS[suffix]
    try:
        if kind == "zip":
            member, data = _lab_file_in_zip(path)
            return _delimited(_decode(data), tab=_suffix(member) in TAB_SEPARATED, columns=columns)
        if kind == "delimited":
            return _delimited(_decompressed_text(path, compression), tab=suffix in TAB_SEPARATED, columns=columns)
        if kind == "excel":
            return LabRows(_without_blank_rows(_sheet(path, sheet, suffix, columns)))
        frame = pd.DataFrame(_json_records(path), dtype=object)  # 1 stays 1, not 1.0
        frame.index += 2  # the first record is numbered as the first row under a header would be
        return LabRows(frame.where(frame.notna(), "").astype(str))
    except _UNREADABLE as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def _file_type(path: Path) -> tuple[str, str | None]:
    """A lab file's type (a suffix of READERS; '.zip' for a plain archive, read by its lab file's suffix) and its
    compression ('data.csv.gz': '.csv' and '.gz'); ConfigError for a folder, or a file of no type read (or none)."""
    known = ", ".join([*READERS, *(f".csv{suffix}" for suffix in COMPRESSED)])
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a lab file: import one file ({known})")
    inner, outer = ["", "", *(suffix.lower() for suffix in path.suffixes)][-2:]
    if outer in COMPRESSED and READERS.get(inner) == "delimited":
        return inner, outer
    if outer in READERS:
        return outer, None
    suffixes = "".join(path.suffixes[-2:])
    named = f" '{suffixes}'" if suffixes else ": the name has no suffix"
    raise ConfigError(f"{path}: unsupported file type{named} (use {known})")


def _suffix(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


def _lab_file_in_zip(path: Path) -> tuple[str, bytes]:
    """The name and bytes of the one lab file (by its suffix) a plain `.zip` archive holds, as Windows' "Send to
    Compressed (zipped) folder" writes it (a `.txt` beside a table is taken for its notes, as a README.txt);
    ValueError naming the archive's files where it holds none or several, or one that is not CSV, TSV or TXT text (a
    workbook or JSON file: unzip it)."""
    with zipfile.ZipFile(path) as archive:
        files = _files_in_zip(archive)
        lab_files = [name for name in files if _suffix(name) in READERS and _suffix(name) != ".zip"]
        tables = [name for name in lab_files if _suffix(name) != ".txt"]
        lab_files = tables or lab_files
        if len(lab_files) > 1:
            raise ValueError(f"the zip archive holds {len(lab_files)} lab files, {', '.join(lab_files)}: zip one alone")
        if not lab_files or READERS[_suffix(lab_files[0])] != "delimited":
            *others, last = [suffix for suffix, kind in READERS.items() if kind == "delimited"]
            listed = ", ".join(files) or "none"
            raise ValueError(
                f"the zip archive holds no {', '.join(others)} or {last} file (its files: {listed}): a workbook or "
                "JSON file is imported unzipped"
            )
        return lab_files[0], archive.read(lab_files[0])


def _files_in_zip(archive: zipfile.ZipFile) -> list[str]:
    """The files of a zip archive, without its folders and the entries macOS Finder adds."""
    return [name for name in archive.namelist() if not name.endswith("/") and not _macos_metadata(name)]


def _decompressed_text(path: Path, compression: str | None) -> str:
    """The file's text, decompressed."""
    if compression == ".zip":
        with zipfile.ZipFile(path) as archive:
            members = _files_in_zip(archive)
            if len(members) != 1:
                raise ValueError(f"a zip archive of a lab file holds one file, this one {len(members)}")
            data = archive.read(members[0])
    elif compression:
        with _OPENERS[compression](path, "rb") as stream:
            data = stream.read()
    else:
        data = path.read_bytes()
    return _decode(data)


def _macos_metadata(name: str) -> bool:
    """True for a zip member macOS Finder adds beside the files: '__MACOSX/' and '._name' resource forks, .DS_Store."""
    parts = PurePosixPath(name).parts
    return parts[0] == "__MACOSX" or parts[-1].startswith("._") or parts[-1] == ".DS_Store"


def _decode(data: bytes) -> str:
    """A lab file's text: UTF-8, or the encoding its byte order mark names; ValueError saying where other bytes are."""
    encoding = next((name for mark, name in _BYTE_ORDER_MARKS if data.startswith(mark)), None)
    if encoding is None and b"\x00" in data:
        raise ValueError(f"the text holds NUL bytes (UTF-16 without a byte order mark?): {_SAVE_AS_UTF8}")
    try:
        return data.decode(encoding or "utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(_undecodable(data, exc)) from None


def _undecodable(data: bytes, error: UnicodeDecodeError) -> str:
    """Why a text is refused: where it stops being `error.encoding`, and how to save it."""
    code_page = 'Excel\'s "CSV (Comma delimited)" writes the Windows code page'
    return f"not {error.encoding.upper()} text ({code_page}): {undecodable_at(data, error)}; {_SAVE_AS_UTF8}"


def _delimited(text: str, *, tab: bool, columns: tuple[str, ...]) -> LabRows:
    """The rows of a CSV (separator detected) or TSV text; quoted cells may hold separators and line breaks."""
    delimiter = "\t" if tab else delimiter_of(text, columns)
    stream = io.StringIO(text, newline="")
    reader = csv.reader(stream, delimiter=delimiter)
    names = next(reader, None)
    if not names or not any(name.strip() for name in names):
        raise ValueError("no header line (the file is empty)")
    header, named = _header(names), _filled_width(names)
    rows, lines, problems = [], [], {}
    line, start = reader.line_num + 1, stream.tell()  # where the next row starts: its line, its place in the text
    for cells in reader:
        if stream.tell() == len(text):  # the last row: where a quote is never closed, it holds the rest of the text
            _refuse_unclosed_quote(text[start:], line, cells, delimiter)
        if any(cell.strip() for cell in cells):
            row = text[start : stream.tell()]
            problem = _text_after_quote(row, delimiter) or _width_problem(cells, named, delimiter)
            if problem:
                problems[line] = problem
            rows.append((cells + [""] * len(header))[: len(header)])
            lines.append(line)
        line, start = reader.line_num + 1, stream.tell()
    return LabRows(pd.DataFrame(rows, columns=header, index=lines, dtype=str), problems)


def _refuse_unclosed_quote(row: str, line: int, cells: list[str], delimiter: str) -> None:
    """ValueError naming the line of a quote that opens a cell and is never closed in `row`, the text of a file's last
    row (from its `line`, read as `cells`): the csv module reads all of the file after such a quote as that one cell,
    the rows in it neither stored nor quarantined. Such a row ends inside that cell, its last, which opens after the
    line breaks of the quoted cells before it: a line read after it would be read into that cell, not as a row of its
    own (so a strict CSV defect before it, '"a"b' read as 'ab', does not hide it, as it stops a strict reading)."""
    if len(list(csv.reader([row, "next"], delimiter=delimiter))) == 1:
        opened = line + sum(cell.count("\n") + cell.count("\r") - cell.count("\r\n") for cell in cells[:-1])
        raise ValueError(
            f"line {opened}: a quote opens a cell that is never closed, which would hold the rest of the file: close "
            'it (a quote inside a quoted cell is written twice: "")'
        )


def _text_after_quote(row: str, delimiter: str) -> str | None:
    """Why a row (its text) holds a quoted cell with text after its closing quote ('"3.3"4', which the csv module
    reads joined, as 3.34); None where it holds none. Spaces between a closing quote and the separator are no text."""
    if '"' not in row:
        return None
    tidy = re.sub(rf'"[ \t]+(?=\r|\n|{re.escape(delimiter)}|$)', '"', row)
    try:
        list(csv.reader(io.StringIO(tidy, newline=""), delimiter=delimiter, strict=True))
    except csv.Error:
        return 'text after a quoted cell\'s closing quote (a quote inside a quoted cell is written twice: "")'
    return None


def _header(names: list[str]) -> list[str]:
    """A header's column names, without spaces around them ('formula ' is 'formula'), a column without one named as
    pandas names it ('Unnamed: 3': Excel writes trailing empty columns); ValueError for a header that names a column
    twice (which of the two would a mapping read?)."""
    header = [name.strip() or f"Unnamed: {index}" for index, name in enumerate(names)]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ValueError(f"column(s) named twice in the header: {', '.join(map(repr, repeated))}")
    return header


def _width_problem(cells: list[str], named: int, delimiter: str) -> str | None:
    """Why a row has more cells than the header's `named` columns (those up to its last name), unless the extra ones
    are empty: a separator ending the row, or the header's (Excel's trailing empty columns). Text in a column the
    header names nothing, after its last name, is a cell shifted there by an unquoted separator in a value."""
    width = _filled_width(cells)
    if width <= named:
        return None
    shown = "tab" if delimiter == "\t" else repr(delimiter)
    return f"{width} cells where the header names {named} (a {shown} inside a value needs quotes)"


def _filled_width(cells: list[str]) -> int:
    """How many cells a line has up to its last one with text: the empty ones after it are trailing separators'."""
    filled = [position for position, cell in enumerate(cells) if cell.strip()]
    return filled[-1] + 1 if filled else 0


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


def _sheet(path: Path, sheet: str | int, suffix: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """A sheet as text (see `_excel`); ValueError where `columns` (all, without them) hold uncalculated formulas or
    Excel's error values."""
    frame = _excel(path, sheet, _EXCEL_ENGINE[suffix])
    _refuse_cells_read_as_empty(path, sheet, frame, columns)
    return frame


def _refuse_cells_read_as_empty(path: Path, sheet: str | int, frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """ValueError naming the cells of `columns` that pandas reads as empty but that are not: a formula without a
    calculated value (openpyxl and other tools write formulas without calculating them), and an error value (#DIV/0!,
    #VALUE!, #N/A: a formula's result, or typed), which pandas reads as NaN, python-calamine (.xls) as empty text."""
    read = [position for position, name in enumerate(frame.columns) if not columns or name in columns]
    cells = frame.iloc[:, read]
    if not ((cells == "") | cells.isna()).any(axis=None):
        return
    uncalculated, errors = [], []
    for coordinate, column, error in _cells_read_as_empty(path, sheet):
        if column in read:
            cell = f"{coordinate} ({frame.columns[column]})"
            if error:
                errors.append(f"{cell} {error}")
            else:
                uncalculated.append(cell)
    if uncalculated:
        raise ValueError(
            f"formula(s) without a calculated value, in cell(s) {listed(uncalculated, _SHOWN_CELLS)}: the file was "
            "written by a program that does not calculate formulas; open it in Excel or LibreOffice and save it"
        )
    if errors:
        raise ValueError(
            f"Excel error value(s), in cell(s) {listed(errors, _SHOWN_CELLS)}: correct them in the file, or clear "
            "those that hold no measurement (an empty cell is no value)"
        )


def _cells_read_as_empty(path: Path, sheet: str | int) -> Iterator[tuple[str, int, str | None]]:
    """The cells of a sheet that pandas reads as empty but that are not (`_xlsx_cells_read_as_empty`,
    `_xls_error_cells`), by the workbook's format, whatever its suffix: pandas' calamine reads an .xlsx workbook
    named '.xls' (a zip archive) as one."""
    if zipfile.is_zipfile(path):
        return _xlsx_cells_read_as_empty(path, sheet)
    return _xls_error_cells(path, sheet)


def _xlsx_cells_read_as_empty(path: Path, sheet: str | int) -> Iterator[tuple[str, int, str | None]]:
    """The cells of an .xlsx sheet that pandas reads as empty but that are not, each as its coordinate, its column
    (0 for A) and its error value, or None for a formula without a calculated value."""
    for formula, value in _formulas_and_values(path, sheet):
        if value.data_type == "e" and formula.data_type in ("f", "e"):
            yield formula.coordinate, formula.column - 1, value.value
        elif formula.data_type == "f" and _uncalculated(value):
            yield formula.coordinate, formula.column - 1, None


def _xls_error_cells(path: Path, sheet: str | int) -> Iterator[tuple[str, int, str]]:
    """The error cells of an .xls sheet, typed or a formula's result, each as its coordinate, its column (0 for A)
    and its error value: python-calamine reads them as empty text. (An .xls file stores each formula's result.)"""
    with xlrd.open_workbook(path, on_demand=True) as workbook:
        cells = workbook.sheet_by_index(sheet) if isinstance(sheet, int) else workbook.sheet_by_name(sheet)
        for row in range(cells.nrows):
            for column, cell in enumerate(cells.row(row)):
                if cell.ctype == xlrd.XL_CELL_ERROR:
                    yield xlrd.cellname(row, column), column, xlrd.error_text_from_code[cell.value]


def _uncalculated(value: Any) -> bool:
    """True for a formula cell's value read with data_only that holds none: a formula calculated as empty text has its
    type, 'str' (openpyxl reads its empty value as None too)."""
    return value.value is None and value.data_type != "str"


def _formulas_and_values(path: Path, sheet: str | int) -> Iterator[tuple[Any, Any]]:
    """Each cell of a sheet as written (a formula's text) beside its calculated value (None where there is none)."""
    with (  # (opened as files: openpyxl refuses a path named '.xls')
        path.open("rb") as formulas_file,
        path.open("rb") as values_file,
        closing(openpyxl.load_workbook(formulas_file, read_only=True, data_only=False)) as formulas,
        closing(openpyxl.load_workbook(values_file, read_only=True, data_only=True)) as values,
    ):
        rows = zip(_worksheet(formulas, sheet).iter_rows(), _worksheet(values, sheet).iter_rows(), strict=True)
        for formula_row, value_row in rows:
            yield from zip(formula_row, value_row, strict=True)


def _worksheet(workbook: openpyxl.Workbook, sheet: str | int) -> Any:
    """The sheet of a workbook by its name or position, as pandas finds it."""
    return workbook.worksheets[sheet] if isinstance(sheet, int) else workbook[sheet]


def _without_blank_rows(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame[frame.apply(lambda column: column.str.strip() != "").any(axis=1)]


def _json_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON lab file: a list of objects, one per row; ValueError for JSON nested deeper than Python
    reads it (or writes a cell of it again)."""
    try:
        text = _decode(path.read_bytes())  # (Windows tools write a byte order mark)
        records = json.loads(
            text, object_pairs_hook=_json_object, parse_constant=_refuse_json_constant, parse_float=_json_number
        )
        if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
            raise ValueError("a JSON lab file holds a list of records (objects with the mapped keys), one per row")
        return [{key: _json_cell(value) for key, value in record.items()} for record in records]
    except RecursionError as exc:
        raise ValueError(f"JSON nested too deeply to read ({exc})") from None


def _json_number(text: str) -> float | str:
    """A JSON number with a fraction or an exponent as a float, or as its text where it is none (`parse_number`:
    1e309, beyond a float's range; 1e-400, nearer 0 than a float), which the cell is refused for as a CSV cell's
    text is: Python's JSON reader reads them as inf and 0.0."""
    number = parse_number(text)
    return number if isinstance(number, float) else text


def _refuse_json_constant(name: str) -> None:
    """ValueError for NaN, Infinity or -Infinity, which Python's JSON reader takes (and its writer writes for such a
    float) but JSON has not: a NaN read as no cell would drop its value without a word, read as the text 'NaN' it
    would be a formula (sodium nitride) or an id."""
    raise ValueError(f"the JSON holds {name}, which is no JSON value: write null where there is no measurement")


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict; ValueError for one that gives a key twice (which value would a mapping read?), as a
    header naming a column twice is refused."""
    record = dict(pairs)
    if len(record) < len(pairs):
        keys = [key for key, _ in pairs]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        raise ValueError(f"key(s) given twice in one JSON object: {', '.join(map(repr, repeated))}")
    return record


def _json_cell(value: Any) -> Any:
    """A record's value as its cell: an object or array as JSON text (a structure as pymatgen JSON, as a CSV cell gives
    it), not as Python writes it ("{'@module': ...}", which no reader of the cell reads)."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
