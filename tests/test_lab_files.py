"""Lab files as stewards get them: Windows encodings, macOS zip archives, untidy headers, uncalculated formulas."""

import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
import typer

from matreg.cli import app
from matreg.errors import ConfigError
from matreg.ingest import run_ingest
from matreg.sources.lab import LabConnector, load_mapping
from matreg.sources.labfiles import COMPRESSED, READERS

MAPPING = """dataset: gaps
formula_column: formula
name_column: name
citation: c
columns:
  gap: {property: band_gap, unit: eV, temperature_field: "T (°C)", temperature_unit: degC}
"""
LAB_FILES = Path(__file__).parent / "fixtures" / "lab_files"
ROWS = [["formula", "name", "gap", "T (°C)"], ["ZnO", "Müller's Å-film", "3.3", "27"]]


def _text(separator=",", line_end="\n"):
    return "".join(separator.join(row) + line_end for row in ROWS)


def _mapping(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING, encoding="utf-8")
    return load_mapping(path)


def _refusal(data: Path, tmp_path: Path) -> str:
    """Why the lab file `data` is refused as a whole, read with the test's mapping (a ConfigError's message)."""
    with pytest.raises(ConfigError) as error:
        LabConnector(data, _mapping(tmp_path))
    return str(error.value)


def _stored(store, data, tmp_path):
    report = run_ingest(LabConnector(data, _mapping(tmp_path)), store)
    assert (report.n_stored, report.n_quarantined) == (1, 0)
    query = "SELECT m.name, p.value, p.temperature_K FROM properties p JOIN materials m USING (record_id)"
    return store.query(query).values.tolist()


@pytest.mark.parametrize(
    ("name", "encoding", "separator"),
    [
        ("lab.tsv", "utf-16", "\t"),
        ("lab.txt", "utf-16", "\t"),  # as Excel's "Unicode Text" names it
        ("lab.csv", "utf-16-be", "\t"),
        ("lab.csv", "utf-32", ","),
        ("lab.json", "utf-16", ""),
    ],
)
def test_a_file_in_utf16_or_utf32_with_a_byte_order_mark_is_read(store, tmp_path, name, encoding, separator):
    data = tmp_path / name
    if name.endswith(".json"):
        text = '[{"formula": "ZnO", "name": "Müller\'s Å-film", "gap": 3.3, "T (°C)": 27}]'  # PowerShell's Out-File
    else:
        text = _text(separator, "\r\n")  # Excel's "Unicode Text"
    mark = "\ufeff" if encoding == "utf-16-be" else ""  # (the utf-16 and utf-32 codecs write one themselves)
    data.write_bytes((mark + text).encode(encoding))
    assert _stored(store, data, tmp_path) == [["Müller's Å-film", 3.3, 300.15]]


def test_a_csv_in_the_windows_code_page_is_refused_with_where_and_how_to_save_it(store, tmp_path):
    data = tmp_path / "lab.csv"
    data.write_bytes(_text(line_end="\r\n").encode("cp1252"))  # as Excel's "CSV (Comma delimited)" writes it
    assert _refusal(data, tmp_path) == (
        f'cannot read {data}: not UTF-8 text (Excel\'s "CSV (Comma delimited)" writes the Windows code page): line 1, '
        "byte 20: b'\\xb0' after 'formula,name,gap,T ('; save it as UTF-8 (in Excel: \"CSV UTF-8 (Comma delimited)\")"
    )


def test_utf16_without_a_byte_order_mark_is_refused_not_read_as_utf8_with_nul_bytes(tmp_path):
    data = tmp_path / "lab.tsv"
    data.write_bytes(_text("\t").encode("utf-16-le"))
    with pytest.raises(ConfigError, match=r"NUL bytes \(UTF-16 without a byte order mark\?\): save it as UTF-8"):
        LabConnector(data, _mapping(tmp_path))


def test_the_entries_macos_finder_adds_to_a_zip_archive_are_passed_over(store, tmp_path):
    data = tmp_path / "lab.csv.zip"
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("lab/lab.csv", _text())
        archive.writestr("lab/.DS_Store", b"Bud1\x00")
        archive.writestr("lab/._lab.csv", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
        archive.writestr("__MACOSX/lab/._lab.csv", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    assert _stored(store, data, tmp_path) == [["Müller's Å-film", 3.3, 300.15]]
    with zipfile.ZipFile(data, "a") as archive:
        archive.writestr("lab/other.csv", "formula\n")
    with pytest.raises(ConfigError, match="holds one file, this one 2"):
        LabConnector(data, _mapping(tmp_path))


def test_a_plain_zip_archive_is_read_as_the_one_lab_file_it_holds(run, store, tmp_path):
    data = tmp_path / "data.zip"  # as Windows' "Send to > Compressed (zipped) folder" names it
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("data.csv", _text())
        archive.writestr("__MACOSX/._data.csv", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
        archive.writestr("README.md", "band gaps of the Smith lab")  # no lab file: not read
        archive.writestr("notes/README.txt", "measured 2024-05")  # a .txt beside a table: its notes, not read
    (tmp_path / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    result = run("import", str(data), "-m", str(tmp_path / "mapping.yaml"))
    assert result.exit_code == 0, result.output
    assert "read 1, 1 valid records (1 values)" in result.output


@pytest.mark.parametrize(("member", "encoding"), [("lab.tsv", "utf-8"), ("Sheet1.txt", "utf-16")])
def test_a_zipped_tsv_or_txt_file_is_tab_separated(store, tmp_path, member, encoding):
    data = tmp_path / "gaps 2024.05.zip"
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr(f"gaps/{member}", _text("\t", "\r\n").encode(encoding))
    assert _stored(store, data, tmp_path) == [["Müller's Å-film", 3.3, 300.15]]


@pytest.mark.parametrize(
    ("files", "error"),
    [
        (["a/lab.csv", "a/lab.xlsx"], "the zip archive holds 2 lab files, a/lab.csv, a/lab.xlsx: zip one alone"),
        (["a.txt", "b.txt"], "the zip archive holds 2 lab files, a.txt, b.txt: zip one alone"),
        (
            ["lab.xlsx", "notes.md"],
            "the zip archive holds no .csv, .tsv or .txt file (its files: lab.xlsx, notes.md): a workbook or JSON file "
            "is imported unzipped",
        ),
        (["__MACOSX/._lab.csv"], "the zip archive holds no .csv, .tsv or .txt file (its files: none)"),
    ],
)
def test_a_zip_archive_without_one_text_lab_file_is_refused_naming_its_files(tmp_path, files, error):
    data = tmp_path / "data.zip"
    with zipfile.ZipFile(data, "w") as archive:
        for name in files:
            archive.writestr(name, _text())
    with pytest.raises(ConfigError) as raised:
        LabConnector(data, _mapping(tmp_path))
    assert str(raised.value).startswith(f"cannot read {data}: {error}")


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("gaps", "{path}: unsupported file type: the name has no suffix (use .csv, .tsv, "),
        ("gaps.dat", "{path}: unsupported file type '.dat' (use .csv, .tsv, "),
        ("lab/", "{path} is a directory, not a lab file: import one file (.csv, .tsv, "),
        ("lab.csv/", "{path} is a directory, not a lab file: import one file (.csv, .tsv, "),
    ],
)
def test_a_file_of_no_type_read_or_a_directory_is_refused_saying_so(tmp_path, name, error):
    path = tmp_path / name
    if name.endswith("/"):
        path.mkdir()
        (path / "gaps.csv").write_text(_text(), encoding="utf-8")
    else:
        path.write_text(_text(), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        LabConnector(path, _mapping(tmp_path))
    assert str(raised.value).startswith(error.format(path=path))


def test_spaces_around_a_header_name_are_no_part_of_it(store, tmp_path):
    data = tmp_path / "lab.csv"
    data.write_text(" formula ,name,gap\t,T (°C)\nZnO,Müller's Å-film,3.3,27\n", encoding="utf-8")
    assert _stored(store, data, tmp_path) == [["Müller's Å-film", 3.3, 300.15]]


def test_missing_columns_are_reported_with_the_header_as_read(tmp_path):
    data = tmp_path / "lab.csv"
    data.write_text("Band gaps of the Smith lab,,,\n" + _text(), encoding="utf-8")
    assert _refusal(data, tmp_path) == (
        f"{data}: mapped column(s) not in the file: formula, name, T (°C), gap; its header (the first row, which names "
        "the columns) reads 'Band gaps of the Smith lab', 'Unnamed: 1', 'Unnamed: 2', 'Unnamed: 3'"
    )


@pytest.mark.parametrize(
    ("rows", "line"),
    [
        (['ZnO,"film 1,3.3,27', *(f"CdS,film {n},2.4,27" for n in range(2, 40))], 2),  # the rest of the file one cell
        (['ZnO,"film\n1",3.3,27', 'CdS,film 2,2.4,"27'], 4),  # (a quoted cell holding a line break is no problem)
        (['ZnO,"film\n1",3.3,"27\nCdS,film 2,2.4,27'], 3),  # the quote opening on the row's second line
        (['ZnO,"film"1,3.3,"27', "CdS,film 2,2.4,27"], 2),  # after text after a closing quote (read: 'film1')
        (['ZnO,"film\n1"x,3.3,"27', "CdS,film 2,2.4,27"], 3),
    ],
)
def test_a_quote_that_is_never_closed_is_refused_naming_its_line_not_read_as_one_cell_to_the_end(tmp_path, rows, line):
    data = tmp_path / "lab.csv"
    data.write_text(",".join(ROWS[0]) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert _refusal(data, tmp_path) == (
        f"cannot read {data}: line {line}: a quote opens a cell that is never closed, which would hold the rest of the "
        'file: close it (a quote inside a quoted cell is written twice: "")'
    )


def test_a_quoted_cell_with_line_breaks_and_quotes_ends_the_file_as_read(store, tmp_path):
    data = tmp_path / "lab.csv"
    data.write_text(",".join(ROWS[0]) + '\nZnO,"Müller\'s ""Å""\nfilm",3.3,27', encoding="utf-8")  # no last line end
    report = run_ingest(LabConnector(data, _mapping(tmp_path)), store)
    assert (report.n_stored, report.n_quarantined) == (1, 0)
    assert store.query("SELECT name FROM materials").values.tolist() == [['Müller\'s "Å"\nfilm']]


def test_a_json_record_giving_a_key_twice_is_refused_not_read_as_its_last_value(tmp_path):
    data = tmp_path / "lab.json"
    data.write_text('[{"formula": "ZnO", "name": "a", "gap": 3.3, "gap": 9.9, "T (°C)": 27}]', encoding="utf-8")
    assert _refusal(data, tmp_path) == f"cannot read {data}: key(s) given twice in one JSON object: 'gap'"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_json_nan_or_infinity_is_refused_not_read_as_an_empty_cell(tmp_path, constant):
    data = tmp_path / "lab.json"  # (Python's extension of JSON, which json.dumps writes for such a float)
    data.write_text(f'[{{"formula": "ZnO", "name": "a", "gap": {constant}, "T (°C)": 27}}]', encoding="utf-8")
    assert _refusal(data, tmp_path) == (
        f"cannot read {data}: the JSON holds {constant}, which is no JSON value: write null where there is no "
        "measurement"
    )


def test_json_nested_deeper_than_python_reads_is_refused_not_a_traceback(tmp_path):
    data = tmp_path / "lab.json"
    nested = "[" * 100_000 + "]" * 100_000
    record = f'{{"formula": "ZnO", "name": "a", "gap": 3.3, "T (°C)": 27, "note": {nested}}}'
    data.write_text(f"[{record}]", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^cannot read {re.escape(str(data))}: JSON nested too deeply to read \("):
        LabConnector(data, _mapping(tmp_path))


def _workbook(path, gaps, note="=1+1"):
    """An .xlsx file as openpyxl writes it: its formulas uncalculated ('=...' cells, in 'gap' and unmapped 'note')."""
    workbook = openpyxl.Workbook()
    workbook.active.append([*ROWS[0], "note"])
    for number, gap in enumerate(gaps):
        workbook.active.append(["ZnO", f"film {number}", gap, "27", note])
    workbook.save(path)


def _calculated(path, cells):
    """The workbook at `path` with `cells` ({'C2': its XML}) as Excel writes them: with their calculated values."""

    def calculate(sheet):
        for cell, xml in cells.items():
            sheet = re.sub(rf'<c r="{cell}"[^>]*>.*?</c>', lambda _, xml=xml: xml, sheet)
        return sheet

    _edit_sheet(path, calculate)


def _edit_sheet(path, edit):
    """The workbook at `path` with its first sheet's XML as `edit(xml)` makes it."""
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    parts["xl/worksheets/sheet1.xml"] = edit(parts["xl/worksheets/sheet1.xml"].decode()).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in parts.items():
            archive.writestr(name, content)


def test_an_uncalculated_formula_in_a_mapped_column_is_refused_with_its_cells(tmp_path):
    data = tmp_path / "lab.xlsx"
    _workbook(data, ["=1.1*3", "3.4", "=2.4"])
    assert _refusal(data, tmp_path) == (
        f"cannot read {data}: formula(s) without a calculated value, in cell(s) C2 (gap), C4 (gap): the file was "
        "written by a program that does not calculate formulas; open it in Excel or LibreOffice and save it"
    )


def test_an_excel_error_value_in_a_mapped_column_is_refused_with_its_cells_not_read_as_an_empty_cell(tmp_path):
    data = tmp_path / "lab.xlsx"
    _workbook(data, ["3.3", "#VALUE!", "=1/0", "#N/A"], note="#REF!")  # (openpyxl writes '#...' as error cells)
    _calculated(data, {"C4": '<c r="C4" t="e"><f>1/0</f><v>#DIV/0!</v></c>'})  # as Excel writes a formula's error
    assert _refusal(data, tmp_path) == (
        f"cannot read {data}: Excel error value(s), in cell(s) C3 (gap) #VALUE!, C4 (gap) #DIV/0!, C5 (gap) #N/A: "
        "correct them in the file, or clear those that hold no measurement (an empty cell is no value)"
    )


def test_an_old_excel_error_value_in_a_mapped_column_is_refused_as_in_an_xlsx_file_not_read_as_an_empty_cell(tmp_path):
    data = LAB_FILES / "errors.xls"  # typed error cells and a formula's error result; #REF! in unmapped 'note'
    assert _refusal(data, tmp_path) == (
        f"cannot read {data}: Excel error value(s), in cell(s) C3 (gap) #DIV/0!, C4 (gap) #N/A, C5 (gap) #VALUE!: "
        "correct them in the file, or clear those that hold no measurement (an empty cell is no value)"
    )


def test_an_xlsx_workbook_named_xls_is_checked_for_error_values_as_what_it_is(tmp_path):
    data = tmp_path / "lab.xls"  # (as some tools name their exports: pandas' calamine reads it all the same)
    _workbook(data, ["3.3", "#N/A"])
    assert _refusal(data, tmp_path) == (
        f"cannot read {data}: Excel error value(s), in cell(s) C3 (gap) #N/A: correct them in the file, or clear "
        "those that hold no measurement (an empty cell is no value)"
    )


def test_calculated_formulas_are_read_as_their_values_and_an_empty_one_as_no_measurement(store, tmp_path):
    data = tmp_path / "lab.xlsx"
    _workbook(data, ["=1.1*3", '=IF(TRUE,"",1)'])  # the unmapped column's formulas stay uncalculated: never read
    calculated = '<c r="C2"><f>1.1*3</f><v>3.3</v></c>'
    empty_text = '<c r="C3" t="str"><f>IF(TRUE,"",1)</f><v></v></c>'  # a text result, empty
    _calculated(data, {"C2": calculated, "C3": empty_text})
    report = run_ingest(LabConnector(data, _mapping(tmp_path)), store)
    assert (report.n_stored, report.n_quarantined) == (1, 1)  # the empty gap: a row without any value
    assert store.query("SELECT value FROM properties").values.tolist() == [[3.3]]


def _entity_bomb(sheet):
    """A sheet whose DTD defines entities of entities ('billion laughs': 200 MB of text), one of them in cell A2."""
    levels = ['<!ENTITY lol0 "lolololololololololo">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 8)
    ]
    bomb = '<c r="A2" t="inlineStr"><is><t>&lol7;</t></is></c>'
    return f"<!DOCTYPE worksheet [{''.join(levels)}]>" + re.sub(r'<c r="A2".*?</c>', bomb, sheet)


def test_a_workbook_whose_xml_expands_entities_past_the_parsers_limit_is_refused_as_unreadable(tmp_path):
    data = tmp_path / "lab.xlsx"
    _workbook(data, ["3.3"])
    _edit_sheet(data, _entity_bomb)
    with pytest.raises(ConfigError, match=rf"^cannot read {re.escape(str(data))}: limit on input amplification"):
        LabConnector(data, _mapping(tmp_path))


def test_the_import_help_lists_every_file_type_the_importer_reads():
    command = typer.main.get_command(app).commands["import"]
    listed = set(re.findall(r"\.[a-z0-9]+", next(param.help for param in command.params if param.name == "file")))
    assert listed == set(READERS) | set(COMPRESSED)
