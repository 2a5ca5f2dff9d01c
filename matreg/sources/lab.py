"""Lab datasets: a CSV, Excel or JSON file plus a mapping.yaml that says what each column means."""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

import pydantic
from pymatgen.core import Structure

from matreg.catalog import Provenance, check_source_name, load_catalog
from matreg.errors import ConfigError, FormulaError, RecordError, utf8_path
from matreg.fieldmap import ROW_FIELDS, FieldSpec, missing_markers
from matreg.formula import (
    PHASE_OF_STATE,
    ambiguous_charge,
    capitalised_formulas,
    parse_formula,
    same_composition,
    written_state,
)
from matreg.jsontext import to_json
from matreg.numbers import Measured, parse_number, parse_value, with_points
from matreg.schema import (
    ExtensionSpec,
    canonical_method,
    load_extension,
    load_methods,
    load_vocabulary,
    value_conditions,
)
from matreg.sources.base import (
    Attribution,
    Connector,
    NamedRecord,
    Page,
    RawItem,
    RawValue,
    ReadMode,
    RunInfo,
    SourceRecord,
)
from matreg.sources.labfiles import read_rows, sheet_names
from matreg.structure import parse_structure
from matreg.units import conversion_problem, convert
from matreg.validation import at_conditions, is_blank, read_spacegroup_number
from matreg.yamlio import entry_problem, load_model

logger = logging.getLogger(__name__)

# In a row's payload: other rows of the file give its id too, each with values of its own (a measurement series):
# the rows of one record. A readmit of the row adds its values to that record (`curate.review`).
SHARED_ID = "_shared_id"
_SHOWN_CELL = 40  # the longest record cell a reason quotes (a structure's text is named, not shown)
_ROW_COLUMNS = ("formula_column", "structure_column", "spacegroup_column", "id_column", "name_column")  # a row's own
# the phases a crystal structure contradicts
_NOT_CRYSTALS = {"l": "a liquid (l)", "g": "a gas (g)", "aq": "an aqueous solute (aq)"}
_NAMES_NO_COLUMN = (
    "names no column: a column whose header is blank is 'Unnamed: N', N its position from 0 ('Unnamed: 0' the first)"
)


def kelvin_as_stored(kelvin: float) -> float:
    """A temperature in kelvin as a lab import stores one it reads: rounded to a nanokelvin (23.7 °C is
    296.84999999999997 K in floats, which no steward would type to name it)."""
    return round(kelvin, 9)


def pascals_as_stored(pascals: float) -> float:
    """A pressure in pascals as a lab import stores one it reads: rounded to 12 significant digits, not to decimals as
    a temperature (a vacuum's 1e-8 Pa keeps its own): 2.3 kbar is 229999999.99999997 Pa in floats, which no steward
    would type."""
    return float(f"{pascals:.12g}")


# each condition's number as stored (tests/test_schema.py checks that these are the schema's conditions)
CONDITIONS_AS_STORED = {"temperature_K": kelvin_as_stored, "pressure_Pa": pascals_as_stored}


def _extension(name: str) -> ExtensionSpec:
    try:
        return load_extension(name)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None  # pydantic then reports it with the mapping's file and line


def _extension_column(column: str, info: pydantic.ValidationInfo) -> str:
    """An extra column maps to a column the mapping's extension declares (checked per entry: errors name its line)."""
    name = info.data.get("extension")
    if name is not None and column not in _extension(name).columns:
        known = ", ".join(_extension(name).columns)
        raise ValueError(f"'{column}' is not a column of extension '{name}' (its columns: {known})")
    return column


class LabMapping(pydantic.BaseModel, extra="forbid"):
    """What the columns of a lab file mean; the dataset name becomes the rows' source."""

    dataset: str = pydantic.Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    formula_column: str | None = None  # None: each row's formula is its structure's (`structure_column`)
    id_column: str | None = None
    name_column: str | None = None
    structure_column: str | None = None  # CIF, POSCAR or pymatgen JSON text, or a file name (beside the data file)
    spacegroup_column: str | None = None  # the international space group number of each row's material
    provenance: Provenance = "experimental"
    method: str | None = None
    citation: str
    license: str | None = None
    version: str | None = None
    sheet: str | int = 0
    missing_values: list[str] = []  # cells that mean "not measured" besides empty ones ('n/a'; '-999': -999.0 too)
    decimal: Literal[".", ","] | None = None  # the decimal separator of the file's numbers: ',' for '1,23' (None: '.')
    columns: dict[str, FieldSpec] = pydantic.Field(min_length=1)
    extension: str | None = None
    extra_columns: dict[str, Annotated[str, pydantic.AfterValidator(_extension_column)]] = {}

    @pydantic.field_validator("formula_column", "id_column", "name_column", "structure_column", "spacegroup_column")
    @classmethod
    def _names_a_column(cls, column: str | None) -> str | None:
        """A column's name, not an empty text (`id_column: ""` numbered rows by position, as no id column does)."""
        if column is not None and not column.strip():
            raise ValueError(_NAMES_NO_COLUMN)
        return column

    @pydantic.model_validator(mode="after")
    def _value_columns_named(self) -> LabMapping:
        """Each column a value, its unit, conditions or method, or an extension attribute is read from has a name, not
        an empty text (an import failed on it with a KeyError). The error is at the entry (its line)."""
        for column, spec in self.columns.items():
            if not column.strip():
                raise entry_problem(self, ("columns", column), _NAMES_NO_COLUMN)
            for key in ("unit_field", *ROW_FIELDS):
                named = getattr(spec, key)
                if named is not None and not named.strip():
                    raise entry_problem(self, ("columns", column, key), _NAMES_NO_COLUMN)
        blank = next((column for column in self.extra_columns if not column.strip()), None)
        if blank is not None:
            raise entry_problem(self, ("extra_columns", blank), _NAMES_NO_COLUMN)
        return self

    @pydantic.model_validator(mode="after")
    def _one_role_per_column(self) -> LabMapping:
        """A value column is read for its values alone: it is none of the columns that describe its row (formula,
        structure, space group, id, name, extension attributes), nor one a value's unit, conditions or method are read
        from (a value column that was also the formula column quarantined every row); the formula and the structure
        are two columns. The id and the name may be the formula's, or one another's. The error is at the value column
        (its line), else at the structure column."""
        if self.formula_column is not None and self.formula_column == self.structure_column:
            both = f"column '{self.formula_column}' is both the formula_column and the structure_column"
            raise entry_problem(self, ("structure_column",), both)
        named = [(getattr(self, key), f"the {key}") for key in _ROW_COLUMNS]
        named += [(column, "an extra_column") for column in self.extra_columns]
        for column, spec in self.columns.items():
            named += [(getattr(spec, key), f"the {key} of column '{column}'") for key in ("unit_field", *ROW_FIELDS)]
        roles: dict[str, str] = {}
        for column, role in named:
            if column is not None:
                roles.setdefault(column, role)
        for column in self.columns:
            if column in roles:
                raise entry_problem(
                    self, ("columns", column), f"column '{column}' is both {roles[column]} and a value column"
                )
        return self

    @pydantic.model_validator(mode="after")
    def _formula_given(self) -> LabMapping:
        """A row's formula is its formula cell's, else its structure's: a mapping needs one of the two columns."""
        if self.formula_column is None and self.structure_column is None:
            raise ValueError(
                "no formula_column: name the column of the rows' formulas, or a structure_column whose structures give "
                "them"
            )
        return self

    def attribution(self) -> Attribution:
        """Where this dataset's values come from and how to cite them."""
        return Attribution(
            source=self.dataset,
            provenance=self.provenance,
            method=self.method,
            database_version=self.version,
            citation=self.citation,
            license=self.license,
        )

    @pydantic.model_validator(mode="after")
    def _properties_known(self) -> LabMapping:
        """Each column's property is in the vocabulary, and its fixed unit (if any) converts to the property's: a band
        gap in kJ/mol would quarantine every row of the column. Errors are at the column's property or unit (their
        line)."""
        vocabulary = load_vocabulary()
        for column, spec in self.columns.items():
            prop = vocabulary.resolve(spec.property or column, self.dataset)
            if prop is None:
                where = ("columns", column, "property") if spec.property else ("columns", column)
                raise entry_problem(self, where, f"'{spec.property or column}' is not in the property vocabulary")
            problem = spec.unit and conversion_problem(spec.unit, vocabulary.root[prop].unit)
            if problem:
                raise entry_problem(self, ("columns", column, "unit"), problem)
        return self

    @pydantic.model_validator(mode="after")
    def _each_value_mapped_once(self) -> LabMapping:
        """Two columns of one property at the same fixed conditions and method (by its name in the method
        vocabulary: GGA+U is PBE+U) would give one record two values of one key, of which only one could be stored;
        so would two that read their method from one column of the row. (Columns that differ only by what their
        rows' cells say are told apart per row: `LabConnector._values`.) The error is at the second column (its
        line)."""
        columns_of: dict[tuple, list[str]] = {}
        for column, spec in self.columns.items():
            prop, method = self.property_and_method(column)
            conditions = (spec.temperature_K, spec.temperature_field, spec.pressure_Pa, spec.pressure_field)
            conditions += (spec.method_field, canonical_method(method))
            columns_of.setdefault((prop, *conditions), []).append(column)
        for (prop, *_), columns in columns_of.items():
            if len(columns) > 1:
                raise entry_problem(
                    self,
                    ("columns", columns[1]),
                    f"columns {', '.join(columns)} all give '{prop}' at the same conditions and method: "
                    "give each its own method or temperature, or map one of them",
                )
        return self

    def property_and_method(self, column: str, row_method: str | None = None) -> tuple[str | None, str | None]:
        """The canonical property a mapped column gives and the method of a value of it: the column's (its
        `method`, or the cell of its `method_field` in the value's row, `row_method`: None for a blank one), else the
        mapping's where the column is of the mapping's provenance (`value_method`)."""
        spec = self.columns[column]
        method = spec.method or row_method or (self.method if self._of_own_provenance(spec) else None)
        return load_vocabulary().resolve(spec.property or column, self.dataset), method

    def _of_own_provenance(self, spec: FieldSpec) -> bool:
        """True for a column of the mapping's provenance (it says none, or the same)."""
        return spec.provenance in (None, self.provenance)

    def unnamed_methods(self, method_cells: dict[str, list[str | None]] | None = None) -> list[str]:
        """Columns of another provenance than the mapping's that name no method: their values are stored without one
        (the mapping's method is not theirs); of a column with a `method_field`, its values of rows whose cell of it
        is blank (`method_cells`: of each such column, the method cells of its values' rows, None for a blank one)."""
        unnamed = []
        for column, spec in self.columns.items():
            if spec.method is not None or self._of_own_provenance(spec):
                continue
            field = spec.method_field
            if field is not None and None not in (method_cells or {}).get(column, []):
                continue
            which, fix = ("", "give the column its own `method:`")
            if field is not None:
                which, fix = (f" of rows with a blank '{field}' cell", f"fill in their '{field}' cells")
            unnamed.append(
                f"column '{column}': its values{which} are filed as {spec.provenance}, not as the mapping's "
                f"{self.provenance}, so they do not take the mapping's method ({self.method or 'none'}) and are "
                f"stored with no method; {fix}"
            )
        return unnamed

    def provenance_doubts(self, method_cells: dict[str, list[str | None]] | None = None) -> list[str]:
        """Why the provenance some columns' values are filed under may be wrong: a column that says none of its own,
        whose method is a DFT functional, while the mapping's provenance is not dft (not guessed: said). A column
        with a `method_field` is by the methods its values' rows give (`method_cells`: of each such column, the
        method cells of its values' rows, None for a blank one), each warned of once."""
        if self.provenance == "dft":
            return []
        methods = load_methods()
        doubts = []
        for column, spec in self.columns.items():
            if spec.provenance is not None:
                continue
            cells = (method_cells or {}).get(column, []) if spec.method_field else [None]
            stored = {(canonical_method(self.property_and_method(column, cell)[1]), cell is not None) for cell in cells}
            doubts += [
                self._provenance_doubt(column, method, of_cells)
                for method, of_cells in sorted(stored, key=str)
                if methods.names_a_functional(method)
            ]
        return doubts

    def _provenance_doubt(self, column: str, method: str, of_cells: bool) -> str:
        """Why a column's values by a DFT functional may be filed under the wrong provenance: those of rows whose
        method cell names it (`of_cells`), else all those taking the column's method."""
        if not of_cells:
            return (
                f"column '{column}': its values by {method}, a DFT functional, are filed as {self.provenance} "
                f"(the mapping's provenance); give the column `provenance: dft` if they are computed, or "
                f"`provenance: {self.provenance}` if they are what it says"
            )
        return (
            f"column '{column}': its values of rows whose '{self.columns[column].method_field}' cell names {method}, "
            f"a DFT functional, are filed as {self.provenance} (the mapping's provenance): map computed values in a "
            f"column of their own with `provenance: dft` (a column's provenance is all its rows'), or give the "
            f"column `provenance: {self.provenance}` if they are what it says"
        )

    @pydantic.field_validator("dataset")
    @classmethod
    def _source_name(cls, name: str) -> str:
        return check_source_name(name, "dataset")

    @pydantic.field_validator("extension")
    @classmethod
    def _extension_exists(cls, name: str | None) -> str | None:
        if name is not None:
            _extension(name)
        return name

    @pydantic.model_validator(mode="after")
    def _extension_complete(self) -> LabMapping:
        if self.extra_columns and self.extension is None:
            raise ValueError("extra_columns need an `extension` (a schema in schemas/extensions/)")
        if self.extension is None:
            return self
        mapped = list(self.extra_columns.values())
        repeated = sorted({column for column in mapped if mapped.count(column) > 1})
        if repeated:
            raise ValueError(f"extra_columns: extension column(s) mapped twice: {', '.join(repeated)}")
        columns = _extension(self.extension).columns
        required = [name for name, column in columns.items() if not column.nullable and name not in mapped]
        if required:
            raise ValueError(
                f"extra_columns: required column(s) of extension '{self.extension}' not mapped: {required}"
            )
        return self


def load_mapping(path: Path, catalog: Path | None = None) -> LabMapping:
    """Load and check a lab mapping file; with a `catalog` (a catalog file), ConfigError when its dataset has the name
    of one of the catalog's sources: its rows would be stored as that source's records (its record ids, its title in
    releases), and a fetch of the source would replace their values."""
    mapping = load_model(path, LabMapping)
    source = load_catalog(catalog).sources.get(mapping.dataset) if catalog is not None else None
    if source is not None:
        raise ConfigError(
            f"{path}: dataset '{mapping.dataset}' is the name of a catalog source ({source.title}) of the catalog "
            f"read, {catalog.resolve()} (--catalog or MATREG_CATALOG name another): its rows would be stored as that "
            f"source's records ('{mapping.dataset}:<id>', cited by its title in releases) and a fetch of the source "
            f"would replace their values; give the dataset a name of its own in the mapping "
            f"(dataset: {mapping.dataset}-lab, say)"
        )
    return mapping


def _by_sheet_name(path: Path, mapping: LabMapping) -> LabMapping:
    """The mapping naming its sheet by name, 0 for the first: `sheet: 1` and `sheet: Gaps` read one sheet and so
    write one scope (a re-import under the other spelling replaces and withdraws as it should)."""
    names = sheet_names(path)
    sheet = mapping.sheet
    if not names:
        return mapping
    if isinstance(sheet, int) and 0 <= sheet < len(names):
        sheet = names[sheet]
    return mapping.model_copy(update={"sheet": 0 if sheet == names[0] else sheet})


class LabConnector(Connector):
    """Rows of a lab file, one raw item per row, mapped by a LabMapping."""

    def __init__(self, path: Path, mapping: LabMapping, *, page_size: int = 1000, name: str | None = None) -> None:
        utf8_path(Path(path).resolve(), "the lab file")  # (stored: the run's endpoint; its name, in the rows' items)
        self._map_by(path, _by_sheet_name(Path(path), mapping), name)
        self.page_size = page_size
        mapped = self._mapped_columns()
        rows = read_rows(self.path, self.mapping.sheet, tuple(mapped))
        self.frame, self.problems = rows.frame, rows.problems
        self._check_columns()
        self.unmapped_columns = [column for column in self.frame.columns if column not in mapped]
        method_cells = self._method_cells()
        doubts = self.mapping.provenance_doubts(method_cells) + self.mapping.unnamed_methods(method_cells)
        for doubt in doubts + self._capitals_doubts():
            logger.warning(doubt)

    @classmethod
    def of_past_import(cls, path: Path, mapping: LabMapping, name: str | None = None) -> LabConnector:
        """The connector of a past import of the file at `path`, to map its stored rows again: reads no file."""
        connector = cls.__new__(cls)
        connector._map_by(path, mapping, name)
        return connector

    def _map_by(self, path: Path, mapping: LabMapping, name: str | None) -> None:
        """Set what maps a row: the mapping, its extension and attribution, the file (structure files beside) and
        its name in the store (`name`, else the file's name): the scope its re-imports replace, and its rows' ids;
        and how a run reads that scope (`read_mode`: whole)."""
        self.path = Path(path)
        if name is not None and not name.strip():
            raise ConfigError("the name to import a file under (--as) is empty")
        self.name = name.strip() if name is not None else self.path.name
        self.mapping = mapping
        self.extension = mapping.extension
        self.attribution = mapping.attribution()
        self.unmapped_columns: list[str] = []  # the file's columns the mapping does not read (a past import: none)
        self.read_mode = ReadMode(
            whole_scope=True,  # re-importing a file withdraws the records of its earlier imports it no longer gives
            joins_rows=True,  # the rows of one id are one record's, each giving values of its own (`_join`)
            # without an id column, a row's id is its place ('data.csv:row-2'): another file of that name, or a row
            # inserted above, would put another material under a stored id
            ids_by_position=mapping.id_column is None,
            scope_chosen=name is not None,  # --as named it
            preview_pages=None,  # a dry run checks every row of the file
        )
        # re-importing a file replaces what it said before; other files' values of the same records stay
        self.attribution.scope = self.name if mapping.sheet == 0 else f"{self.name}[{mapping.sheet}]"

    def _mapped_columns(self) -> list[str]:
        """The file's columns the mapping reads."""
        mapping = self.mapping
        needed = [mapping.formula_column, mapping.id_column, mapping.name_column, mapping.structure_column]
        needed += [mapping.spacegroup_column]
        for spec in mapping.columns.values():
            needed += [spec.unit_field, *(getattr(spec, key) for key in ROW_FIELDS)]
        needed += list(mapping.columns) + list(mapping.extra_columns)
        return [column for column in dict.fromkeys(needed) if column is not None]

    def _check_columns(self) -> None:
        """ConfigError naming the mapped columns the file lacks, and its header as read: a title row or merged cells
        above the header, or a misspelt name, show there."""
        missing = [column for column in self._mapped_columns() if column not in self.frame.columns]
        if missing:
            header = ", ".join(map(repr, self.frame.columns)) or "nothing"
            raise ConfigError(
                f"{self.path}: mapped column(s) not in the file: {', '.join(missing)}; its header (the first row, "
                f"which names the columns) reads {header}"
            )

    def _method_cells(self) -> dict[str, list[str | None]]:
        """Of each column with a `method_field`, the method cells of the rows that give it a value, each once (None:
        a blank one), for the warnings of the methods its values are stored with."""
        fields = {column: spec.method_field for column, spec in self.mapping.columns.items() if spec.method_field}
        cells: dict[str, dict[str | None, None]] = {column: {} for column in fields}
        for row in self.frame[list(dict.fromkeys([*fields, *fields.values()]))].to_dict(orient="records"):
            for column, field in fields.items():
                if not self._blank(row[column]):
                    cells[column][self._cell_text(row, field)] = None
        return {column: list(seen) for column, seen in cells.items()}

    def _capitals_doubts(self) -> list[str]:
        """Why the file's formula column may be written in capitals only ('SIO2' for SiO2: `capitalised_formulas`),
        naming the column; none where it is not, or the mapping has none. Its distinct cells are read, blanks and
        missing values left out as `_formula_cell` leaves them ('Na' is no marker 'NA'), up to the first with a
        lower-case letter (of a file in the usual case, its first formula)."""
        column = self.mapping.formula_column
        if column is None:
            return []
        cells = (cell for cell in _each_once(self.frame[column]) if not self._blank(cell, any_case=False))
        doubt = capitalised_formulas(cells)
        return [] if doubt is None else [f"column '{column}': {doubt}"]

    def run_info(self) -> RunInfo:
        return RunInfo(
            endpoint=str(self.path.resolve()),
            query=f"lab import of {self.name} ({len(self.frame)} rows)",
            parameters={"file": self.path.name, "mapping": self.mapping.model_dump(exclude_none=True)}
            | ({"name": self.name} if self.read_mode.scope_chosen else {}),
        )

    def pages(self, cursor: dict[str, Any] | None = None) -> Iterator[Page]:
        """The rows as raw items, about `page_size` a page, the rows of one id together on one page (where its first
        row is): they are one record (`_join`), joined as a page is mapped."""
        rows = self.frame.to_dict(orient="records")
        lines = self.frame.index.tolist()
        ids = [self._source_id(row, position) for position, row in enumerate(rows)]
        errors, shared = self._row_errors(rows, lines, ids)
        start, first = 0, cursor["next_row"] if cursor else 0
        for positions in self._pages_of(ids):
            end = start + len(positions)
            if start >= first:
                items = [
                    self._item(rows[row], lines[row], ids[row], errors.get(row), ids[row] in shared)
                    for row in positions
                ]
                following = {"next_row": end} if end < len(rows) else None
                yield Page(items, following, request=f"read {self.path.name}", total=len(rows))
            start = end

    def _pages_of(self, ids: list[str]) -> list[list[int]]:
        """The rows' positions by page: each id's rows together, where its first row is (a row without an id alone),
        a page ending with the id that brings it to `page_size` rows."""
        by_id: dict[str | int, list[int]] = {}
        for position, source_id in enumerate(ids):
            by_id.setdefault(source_id or position, []).append(position)
        pages, page = [], []
        for positions in by_id.values():
            page += positions
            if len(page) >= self.page_size:
                pages.append(page)
                page = []
        return [*pages, page] if page else pages

    def _source_id(self, row: dict[str, Any], position: int) -> str:
        """The row's id: its id column's, else the file's name in the store and the row number, counted from 2 under
        the header without blank lines ('bandgaps.csv:row-2'; the numbers of earlier versions of matreg, so stored ids
        stay): not its line, which its source URL and a quarantine item name, blank lines counted."""
        if self.mapping.id_column:
            cell = row[self.mapping.id_column]
            return "" if self._blank(cell) else str(cell).strip()  # a missing-value marker is no id
        return f"{self.name}:row-{position + 2}"

    def _item(self, row: dict[str, Any], line: int, source_id: str, error: str | None, shared: bool) -> RawItem:
        """One row as a raw item; `line` is its line in the file (the header is line 1), `error` why it cannot be
        read at all, `shared` whether other rows of the file give its record (`SHARED_ID`). It is named by its id
        where the mapping has an id column, else, or where the id is the problem (none, a duplicate) or the row cannot
        be read as its header says, by its line ('line 5')."""
        payload = {"_line": line, "_source_id": source_id, **row}
        if shared and error is None:
            payload[SHARED_ID] = True
        named_by_id = error is None and not self.read_mode.ids_by_position
        return RawItem(source_id if named_by_id else f"line {line}", payload, error)

    def _row_errors(
        self, rows: list[dict[str, Any]], lines: list[int], ids: list[str]
    ) -> tuple[dict[int, str], set[str]]:
        """Why rows cannot be read at all, by position (`_row_error`, and of a row of an id that other rows give,
        `_join`), and the ids that several rows give, each the rows of one record."""
        repeated = {source_id for source_id, count in Counter(ids).items() if count > 1 and source_id}
        errors: dict[int, str] = {}
        records: dict[str, _RecordRows] = {}
        for position, (row, line, source_id) in enumerate(zip(rows, lines, ids, strict=True)):
            error = self._row_error(line, source_id)
            if error is None and source_id in repeated:
                error = self._join(records, row, line, source_id)
            if error is not None:
                errors[position] = error
        return errors, {source_id for source_id, record in records.items() if record.n_rows > 1}

    def _row_error(self, line: int, source_id: str) -> str | None:
        """Why a row cannot be read at all: cells its header does not name, or no id."""
        if line in self.problems:
            return self.problems[line]
        if not source_id:
            return f"no id in column '{self.mapping.id_column}'"
        return None

    def _join(self, records: dict[str, _RecordRows], row: dict[str, Any], line: int, source_id: str) -> str | None:
        """Join a row to the record of its id (`records`: those of the rows before it), or say why it cannot be one of
        its rows: a duplicate id, of a row that describes its record otherwise than the id's first row (its formula as
        written, name, space group, structure, extension columns: `_record_cells`), or that gives a value of a key
        (property, method and conditions) an earlier row of the id gave, of which one only could be stored. The first
        row of the id is kept, as a row giving one key twice is refused whole (`_keyed_values`). A row that cannot be
        mapped gives no key here: it is quarantined as it is mapped."""
        cells, keys = self._record_cells(row), self._value_keys(row)
        record = records.get(source_id)
        if record is None:
            records[source_id] = _RecordRows(line, cells, dict.fromkeys(keys, line))
            return None
        differing = next((what for what, text in cells.items() if text != record.cells[what]), None)
        if differing is not None:
            differs = _cell_differs(differing, cells[differing], record.cells[differing], record.line)
            return (
                f"duplicate id '{source_id}': {differs} (the rows of one id are one record: they repeat its formula, "
                "name, space group, structure and extension columns)"
            )
        given = next((key for key in keys if key in record.keys), None)
        if given is not None:
            return (
                f"duplicate id '{source_id}': row gives {_key_text(given)}, which line {record.keys[given]} gave (a "
                "record has one value of a property per method and conditions)"
            )
        record.keys.update(dict.fromkeys(keys, line))
        record.n_rows += 1
        return None

    def _record_cells(self, payload: dict[str, Any]) -> dict[str, str | None]:
        """What a row says of its record rather than of a value: its formula as written, name, space group, structure
        and extension attributes, by what each is ('formula', 'space group', 'synthesis_route'), each cell's text
        (None: blank)."""
        mapping = self.mapping
        roles = {"formula": mapping.formula_column, "name": mapping.name_column}
        roles |= {"space group": mapping.spacegroup_column, "structure": mapping.structure_column}
        roles |= {attribute: column for column, attribute in mapping.extra_columns.items()}
        return {role: self._cell_text(payload, column) for role, column in roles.items() if column is not None}

    def _value_keys(self, payload: dict[str, Any]) -> list[tuple]:
        """The value keys of a row's values (`_keyed_values`); none for a row that cannot be mapped."""
        try:
            return list(self._keyed_values(payload))
        except RecordError:
            return []

    def named_record(self, payload: Any) -> NamedRecord | None:
        """Of a quarantined row, its id (its id column's, else its place's), formula cell (without a state written
        after it: `written_state`), else its structure's formula (`_formula`; empty where it has none that can be
        read), value keys (`_rejected_value_keys`) and the phase its formula cell's state gives; None for a row without
        an id, and for payloads that are no row (a rejected value's)."""
        if not isinstance(payload, dict) or not payload.get("_source_id"):
            return None
        source_id, keys = payload["_source_id"], self._rejected_value_keys(payload)
        if self.mapping.formula_column is not None:
            formula, state = written_state(str(self._formula_cell(payload)))
            return NamedRecord(source_id, formula, keys, PHASE_OF_STATE.get(state))
        try:
            return NamedRecord(source_id, self._formula(payload, self._structure(payload))[0], keys)
        except RecordError:
            return NamedRecord(source_id, "", keys)

    def _rejected_value_keys(self, payload: dict[str, Any]) -> tuple[tuple, ...]:
        """The keys a rejected row's values are stored under, as `_keyed_values` reads them (property, method, and
        conditions in the schema's order, as `of_keys` matches them), read from its cells whatever its value cells
        hold: a mistyped value is still the value of its key. Its conditions are None where its temperature or
        pressure cell holds no number."""
        keys = []
        for column, (prop, method) in self.value_columns(payload).items():
            try:
                at = self._conditions(payload, self.mapping.columns[column])
                conditions = tuple(at[condition] for condition in value_conditions())
            except RecordError:
                conditions = None
            keys.append((prop, canonical_method(method), conditions))
        return tuple(keys)

    def identity(self, item: RawItem) -> str:
        """What a rejected row is, which its quarantine id hashes: the cells the mapping reads, each named by what it
        means (the id, formula, name, structure and space group; each value with its property, method, unit and
        conditions; each extension attribute), not by its column's name, and not its line nor the cells the mapping
        does not read. A row that moves, or whose column is renamed, is so the same input, its review decisions kept;
        a row identical to another of the dataset is that row. Without an id column a row is the record of its place:
        its default id ('data.csv:row-3') stands for the id, so identical rows in two places are two inputs. Without
        a formula column its formula is its structure's, which its structure cell says (the formula is None). The
        space group is named only by a mapping with a column of it: rows quarantined before it was a key keep their
        ids."""
        payload, mapping = item.payload, self.mapping
        roles = {
            "id": mapping.id_column,
            "formula": mapping.formula_column,
            "name": mapping.name_column,
            "structure": mapping.structure_column,
        }
        cells: dict[str, Any] = {role: self._cell_text(payload, column) for role, column in roles.items()}
        if self.read_mode.ids_by_position:
            cells["id"] = payload["_source_id"]
        if mapping.spacegroup_column is not None:
            cells["spacegroup"] = self._cell_text(payload, mapping.spacegroup_column)
        values = [self._value_identity(payload, column) for column in self.value_columns(payload)]
        cells["values"] = sorted(map(to_json, values))  # in no column order
        attributes = {name: self._cell_text(payload, column) for column, name in mapping.extra_columns.items()}
        cells["attributes"] = {name: text for name, text in attributes.items() if text is not None}
        return to_json(cells)

    def _value_identity(self, payload: dict[str, Any], column: str) -> dict[str, Any]:
        """A value cell of a row by what it means: its property, method, unit, conditions and uncertainty cell, and the
        cell's text."""
        spec = self.mapping.columns[column]
        prop, method = self.mapping.property_and_method(column, self._row_method(payload, spec))
        temperature, pressure = spec.temperature_K, spec.pressure_Pa
        if spec.temperature_field is not None:
            temperature = [self._cell_text(payload, spec.temperature_field), spec.temperature_unit]
        if spec.pressure_field is not None:  # (under the key of a fixed pressure: the identities of rows without stay)
            pressure = [self._cell_text(payload, spec.pressure_field), spec.pressure_unit or "Pa"]
        identity = {
            "property": prop,
            "method": method,
            "value": self._cell_text(payload, column),
            "unit": spec.unit or self._cell_text(payload, spec.unit_field),
            "temperature": temperature,
            "pressure_Pa": pressure,
        }
        if spec.uncertainty_field is not None:  # (only then: the identities of rows without stay)
            identity["uncertainty"] = self._cell_text(payload, spec.uncertainty_field)
        return identity

    def _cell_text(self, payload: dict[str, Any], column: str | None) -> str | None:
        """A text cell as matreg reads one (a name, a method, an extension attribute): without surrounding whitespace;
        None for a blank cell or one of the mapping's missing values (`_blank`), or no column."""
        if column is None or self._blank(payload[column]):
            return None
        return str(payload[column]).strip()

    def value_columns(self, payload: dict[str, Any]) -> dict[str, tuple[str | None, str | None]]:
        """The mapped columns holding a value in this row (not blank), each with its canonical property and the
        method of its value (as the mapping and the row give it: `property_and_method`)."""
        return {
            column: self.mapping.property_and_method(column, self._row_method(payload, spec))
            for column, spec in self.mapping.columns.items()
            if not self._blank(payload[column])
        }

    def _row_method(self, payload: dict[str, Any], spec: FieldSpec) -> str | None:
        """The method a row's cell gives a value of a column with a `method_field` (None: blank, or no such field)."""
        return self._cell_text(payload, spec.method_field)

    def number_cell(self, number: float) -> str:
        """A number written as a cell of this file writes it: with the mapping's decimal separator."""
        text = repr(float(number))
        return text.replace(".", ",") if self._decimal == "," else text

    def _cell_number(self, cell: Any) -> float | None:
        """The plain number a cell holds, read with the mapping's decimal separator; None for a cell that holds none
        (text, a value with its uncertainty, or a number written with the other decimal separator, which is never
        guessed)."""
        text = str(cell).strip()
        number = None if separator_problem(text, self._decimal) else parse_number(text, self._decimal)
        return number if isinstance(number, float) else None

    def value_as_read(self, column: str, cell: Any) -> Any:
        """A value cell of `column` as `to_record` reads it (`_value_cell`); None for one written with the other
        decimal separator, which is never read by guess."""
        try:
            return self._value_cell(column, cell)[0]
        except RecordError:
            return None

    def to_record(self, payload: dict[str, Any]) -> SourceRecord:
        mapping = self.mapping
        structure = self._structure(payload)
        formula, phase = self._formula(payload, structure)
        return SourceRecord(
            source_id=payload["_source_id"],
            formula=formula,
            values=self._values(payload),
            name=self._cell_text(payload, mapping.name_column),
            phase=phase,
            source_url=self._source_url(payload),
            structure=structure.to_json() if structure is not None else None,
            spacegroup_number=self._spacegroup_number(payload),
            nsites=len(structure) if structure is not None else None,
            atoms_per_cell=None if structure is None or structure.is_ordered else structure.composition.num_atoms,
            attributes={
                attribute: self._attribute(attribute, column, payload)
                for column, attribute in mapping.extra_columns.items()
            },
            unmapped=[column for column in self.unmapped_columns if not self._blank(payload[column])],
        )

    def _formula(self, payload: dict[str, Any], structure: Structure | None) -> tuple[str, str | None]:
        """The row's formula as written and the record's phase: its formula cell's (`_formula_and_phase`), else its
        structure's composition reduced, as a record of a structure database is by its formula unit (a Cu2O2 cell is
        CuO's: a molar value per mole of CuO, as with a formula column saying 'CuO'), a crystal's stating no phase;
        RecordError for a row without a structure, or whose formula cell is refused (`_formula_and_phase`)."""
        if self.mapping.formula_column is not None:
            return self._formula_and_phase(payload)
        if structure is None:
            raise RecordError(
                f"no structure in column '{self.mapping.structure_column}', which gives the row's formula (the "
                "mapping has no formula_column)"
            )
        return structure.composition.reduced_formula, None

    def _formula_and_phase(self, payload: dict[str, Any]) -> tuple[str, str | None]:
        """The row's formula cell as written, without a state written after it, and the phase that state gives the
        record, as JANAF names phases (`written_state`: 'CO2(g)' is CO2, phase 'g'; 'H2O (l)' H2O, phase 'l'; '(s)',
        '(cr)' and '(c)' a crystal's, 'cr'; '(aq)' a solute's, 'aq'; None where the cell writes no state). RecordError
        for a charge that reads two ways, which a lab sheet may mean either way ('Mg2+': the ion Mg²⁺ or
        Mg₂⁺, `ambiguous_charge`), where JANAF's ion names mean Mg₂⁺, and for 'NaN', which numeric tools write for a
        missing number (a source's 'NaN' is sodium nitride's formula). A cell of the mapping's missing values is an
        empty formula (`_formula_cell`)."""
        text = self._formula_cell(payload)
        if str(text).strip() == "NaN":
            raise RecordError(
                "formula 'NaN' is how numeric tools write a missing number, not sure to mean sodium nitride: write it "
                "Na1N1"
            )
        formula, state = written_state(text)
        reason = ambiguous_charge(str(formula))
        if reason is not None:
            raise RecordError(reason)
        return formula, PHASE_OF_STATE.get(state)

    def _formula_cell(self, payload: dict[str, Any]) -> Any:
        """The row's formula cell as read; '' for one of the mapping's missing values ('n/a'), which is a missing
        formula as a blank cell is (quarantined as an empty formula), not one to parse. Only a cell written as the
        marker is ('NA' marks 'NA', not sodium's 'Na'; `_blank`); a number equal to a numeric one too, which no
        formula is ('-999.0' for '-999')."""
        cell = payload.get(self.mapping.formula_column, "")
        return "" if self._blank(cell, any_case=False) else cell

    def _spacegroup_number(self, payload: dict[str, Any]) -> int | None:
        """The row's space group number (None: a blank cell, or no column); RecordError naming the column for a cell
        that is none (`read_spacegroup_number`: 'P6_3mc', '12.5', '231'). A whole number written with decimals is
        that number ('194.0', as pandas writes whole numbers in a column with blanks). It is not checked against the
        structure (finding a structure's space group costs more than reading it)."""
        column = self.mapping.spacegroup_column
        if column is None or self._blank(payload[column]):
            return None
        text = str(payload[column]).strip()
        number = None if text.isdigit() else self._cell_number(text)  # (digits are read exactly, however many)
        whole = number is not None and number.is_integer()
        return read_spacegroup_number(int(number) if whole else text, f"column '{column}':")

    def _source_url(self, payload: dict[str, Any]) -> str:
        """Where the row is: by its id where the mapping has an id column ('file:gaps.csv#id=S1', URL-encoded), so
        that rows deleted, inserted or sorted above it leave its record as it was; else by the line it starts on
        ('#line=5', blank lines counted, as a quarantined row is named: 'line 5'; its default id counts rows)."""
        if self.read_mode.ids_by_position:
            return f"file:{self.name}#line={payload['_line']}"
        return f"file:{self.name}#id={quote(payload['_source_id'], safe='')}"

    def _conditions(self, payload: dict[str, Any], spec: FieldSpec) -> dict[str, float | None]:
        """A value's conditions as stored, by the schema's names (`CONDITIONS_AS_STORED`'s, RawValue's fields)."""
        return {"temperature_K": self._temperature_K(payload, spec), "pressure_Pa": self._pressure_Pa(payload, spec)}

    def _temperature_K(self, payload: dict[str, Any], spec: FieldSpec) -> float | None:
        """A value's temperature in kelvin: the mapping's fixed one, or the row's in the column's `temperature_unit`
        (RecordError when it is no number), rounded as stored (`kelvin_as_stored`)."""
        if spec.temperature_field is None:
            return spec.temperature_K
        temperature = self._condition(payload, spec.temperature_field, "temperature")
        return None if temperature is None else kelvin_as_stored(convert(temperature, spec.temperature_unit, "K"))

    def _pressure_Pa(self, payload: dict[str, Any], spec: FieldSpec) -> float | None:
        """A value's pressure in pascals: the mapping's fixed one, or the row's in the column's `pressure_unit` (None:
        Pa; RecordError when it is no number), rounded as stored (`pascals_as_stored`)."""
        if spec.pressure_field is None:
            return spec.pressure_Pa
        pressure = self._condition(payload, spec.pressure_field, "pressure")
        return None if pressure is None else pascals_as_stored(convert(pressure, spec.pressure_unit or "Pa", "Pa"))

    def _condition(self, payload: dict[str, Any], column: str, condition: str) -> float | None:
        """The number in a row's temperature or pressure cell (None: blank); RecordError when it holds none, with why
        as a value cell's ('1e-400': too near 0 for a float), naming the condition and column."""
        cell = payload[column]
        if self._blank(cell):
            return None
        number = self._number(column, cell)
        if isinstance(number, str):
            raise RecordError(f"{condition} in column '{column}': {number}")
        return number

    def _number(self, column: str, cell: Any) -> float | str:
        """The number in a cell of `column`, read with the mapping's decimal separator, or why it is none; RecordError
        for a number written with the other separator ('1,234': 1.234 with a decimal comma, 1234 with a thousands
        separator, never guessed)."""
        text = str(cell).strip()
        problem = separator_problem(text, self._decimal)
        if problem:
            raise RecordError(f"column '{column}': {problem}")
        return parse_number(text, self._decimal)

    @property
    def _decimal(self) -> str:
        """The decimal separator of the file's numbers."""
        return self.mapping.decimal or "."

    def _blank(self, cell: Any, any_case: bool = True) -> bool:
        """True for a cell that holds no measurement: empty, or one of the mapping's missing values, in any spacing and
        case ('NA' marks 'na' and ' NA '; with `any_case` False, as a formula cell is read, only 'NA' and ' NA ': case
        tells sodium 'Na' from it), a number equal to a numeric one included ('-999' marks '-999.0' and '-999.00', as
        pandas writes -999 in a column of floats)."""
        if is_blank(cell):
            return True
        if not self.mapping.missing_values:
            return False
        text = str(cell).strip()
        if (text.casefold() in self._folded_markers) if any_case else (text in self._missing_markers):
            return True
        return not separator_problem(text, self._decimal) and parse_number(text, self._decimal) in self._missing_markers

    @functools.cached_property
    def _missing_markers(self) -> frozenset[str | float]:
        """The mapping's missing values as written but for surrounding spaces, their numbers read with its decimal
        separator ('-999,0' marks -999)."""
        markers = [marker.strip() for marker in self.mapping.missing_values]
        return missing_markers(markers, functools.partial(parse_number, decimal=self._decimal))

    @functools.cached_property
    def _folded_markers(self) -> frozenset[str]:
        """The texts of the mapping's missing values in no case ('na' for 'NA')."""
        return frozenset(marker.casefold() for marker in self._missing_markers if isinstance(marker, str))

    def _attribute(self, attribute: str, column: str, payload: dict[str, Any]) -> str | None:
        """A row's extension column cell as text (`_cell_text`); a number column's read with the mapping's decimal
        separator (RecordError for the other one, as a value's: '293,5' is 293.5 where `decimal: ','` says so)."""
        text = self._cell_text(payload, column)
        if text is None or load_extension(self.extension).columns[attribute].type != "float64":
            return text
        number = self._number(column, text)
        return repr(number) if self._decimal == "," and isinstance(number, float) else text

    def _values(self, payload: dict[str, Any]) -> list[RawValue]:
        """The row's values (`_keyed_values`)."""
        return list(self._keyed_values(payload).values())

    def _keyed_values(self, payload: dict[str, Any]) -> dict[tuple, RawValue]:
        """The row's values by value key: property, method (by its name in the method vocabulary), temperature and
        pressure, as the row gives them; RecordError when two columns give one key, of which only one could be
        stored."""
        values: dict[tuple, RawValue] = {}
        for column, (prop, method) in self.value_columns(payload).items():
            value = self._value(payload, column, self.mapping.columns[column])
            method = canonical_method(method)
            key = (prop, method, value.temperature_K, value.pressure_Pa)
            if key in values:
                by = f" by {method}" if method else ""
                given = f"columns {values[key].field} and {column} both give {prop}{by}"
                raise RecordError(f"{given} at the same conditions")
            values[key] = value
        return values

    def _structure(self, payload: dict[str, Any]) -> Structure | None:
        """The row's structure; RecordError when it cannot be read or is not of the row's formula cell, where the
        mapping has a formula column (`same_composition`: a GaN cell beside 'ZnO' would divide ZnO's per-cell values by
        GaN's atoms and be stored as ZnO's), when that cell states a liquid, a gas or a solute ('NaCl(l)': a crystal
        structure contradicts it), or when its charge reads two ways (`_formula_and_phase`)."""
        column = self.mapping.structure_column
        if column is None or self._blank(payload[column]):
            return None
        try:
            structure = parse_structure(payload[column], base=self.path.parent)
        except RecordError as exc:
            raise RecordError(f"column '{column}': {exc}") from None
        if self.mapping.formula_column is None:
            return structure  # the row's formula is the structure's
        text, phase = self._formula_and_phase(payload)
        try:
            formula = parse_formula(text)
        except FormulaError:
            return structure  # the row is quarantined for its formula
        if not same_composition(formula, structure.composition):
            raise RecordError(
                f"column '{column}': the structure is {structure.composition.reduced_formula}, not "
                f"{formula.original} (column '{self.mapping.formula_column}')"
            )
        if phase in _NOT_CRYSTALS:
            formula_column = self.mapping.formula_column
            raise RecordError(
                f"column '{column}': '{self._cell_text(payload, formula_column)}' (column '{formula_column}') states "
                f"{_NOT_CRYSTALS[phase]}; a structure is a crystal's: clear the structure cell, or the formula's state"
            )
        return structure

    def _value(self, payload: dict[str, Any], column: str, spec: FieldSpec) -> RawValue:
        """A value cell of the row as a raw value: its number (`_value_cell`), unit (a unit cell holding a missing value
        is a blank one: no unit), conditions, method, and its uncertainty given apart (`_uncertainty`; why a cell gives
        none is the value's `uncertainty_problem`)."""
        unit = spec.unit if spec.unit is not None else self._cell_text(payload, spec.unit_field) or ""
        conditions = self._conditions(payload, spec)
        value, problem = self._value_cell(column, payload[column])
        uncertainty = self._uncertainty(payload, spec)
        unreadable = isinstance(uncertainty, str)
        return RawValue(
            property=spec.property or column,
            value=value,
            unit=unit,
            method=spec.method or self._row_method(payload, spec),
            provenance=spec.provenance,
            field=column,
            problem=problem,
            uncertainty=None if unreadable else uncertainty,
            uncertainty_problem=uncertainty if unreadable else None,
            **conditions,
        )

    def _value_cell(self, column: str, cell: Any) -> tuple[Any, str | None]:
        """A value cell as harmonization reads it (`parse_value`): the cell as it is where a decimal point reads it
        (as matreg stored values before `decimal`); with decimal commas its number, or its text with decimal points
        where it states an uncertainty ('5,431(2)' as '5.431(2)': a value's uncertainty is checked against one given
        apart), or the cell as it is where it is no value. And why it is none where harmonization, which reads it with
        decimal points, would say otherwise: '1,5e-400' is too near 0 for a float, not non-numeric (None where it
        would not: 'about 1,5' keeps its quarantine payload, and so its id). RecordError for a number written with the
        other separator."""
        text = str(cell).strip()
        problem = separator_problem(text, self._decimal)
        if problem:
            raise RecordError(f"column '{column}': {problem}")
        if self._decimal != ",":
            return cell, None
        read = parse_value(cell, self._decimal)
        if isinstance(read, float):
            return read, None
        if isinstance(read, Measured):
            return with_points(text, self._decimal), None
        return cell, read if read != parse_value(cell) else None

    def _uncertainty(self, payload: dict[str, Any], spec: FieldSpec) -> float | str | None:
        """A value's uncertainty given apart, in its unit: the number in its row's `uncertainty_field` cell (None: no
        such column, or a blank cell), or why that cell holds none, naming its column; RecordError for a number
        written with the other separator."""
        column = spec.uncertainty_field
        if column is None or self._blank(payload[column]):
            return None
        number = self._number(column, payload[column])
        return f"uncertainty in column '{column}': {number}" if isinstance(number, str) else number


_OTHER_SEPARATOR = {".": ",", ",": "."}
_SEPARATOR_ADVICE = {
    ".": "'{}' has a comma (a decimal comma or a thousands separator? not guessed): declare `decimal: ','` in the "
    "mapping for decimal commas, else write the number without thousands separators",
    ",": "'{}' has a period where the mapping declares decimal commas (`decimal: ','`; a thousands separator or a "
    "decimal point? not guessed): write the number with a decimal comma and without thousands separators",
}


def separator_problem(text: str, decimal: str) -> str | None:
    """Why a number cell cannot be read with `decimal` as its decimal separator: it holds the other separator (and
    is a value without it, its uncertainty included: '5,431(2)')."""
    other = _OTHER_SEPARATOR[decimal]
    if other in text and not isinstance(parse_value(text.replace(other, ""), decimal), str):
        return _SEPARATOR_ADVICE[decimal].format(text)
    return None


@dataclass
class _RecordRows:
    """The rows of one id read so far: its first row's line and record cells (`LabConnector._record_cells`), each
    value key its rows gave with the line that gave it, and how many rows it has."""

    line: int
    cells: dict[str, str | None]
    keys: dict[tuple, int]
    n_rows: int = 1


def _each_once(cells: Iterable[Any]) -> Iterator[Any]:
    """Each of the cells once, in their order, read as they are needed (`Series.unique` reads them all first)."""
    seen = set()
    for cell in cells:
        if cell not in seen:
            seen.add(cell)
            yield cell


def _cell_differs(what: str, given: str | None, first: str | None, line: int) -> str:
    """How a row's cell of its record differs from its id's first row's: "row gives formula 'GaN' where line 2 gave
    'GaAs'" (a long cell, a structure's text, is not quoted)."""
    if any(text is not None and (len(text) > _SHOWN_CELL or "\n" in text) for text in (given, first)):
        return f"row gives another {what} than line {line}"
    if given is None:
        return f"row gives no {what} where line {line} gave '{first}'"
    return f"row gives {what} '{given}' where line {line} gave " + (f"'{first}'" if first is not None else "none")


def _key_text(key: tuple) -> str:
    """A value key as a reason names it: 'heat_capacity_cp by DSC at 373.15 K'."""
    prop, method, temperature_K, pressure_Pa = key
    return prop + (f" by {method}" if method else "") + at_conditions(temperature_K, pressure_Pa)
