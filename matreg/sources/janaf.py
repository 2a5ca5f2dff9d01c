"""NIST-JANAF thermochemical tables: one tab-separated text table per species and phase.

Wire format (https://janaf.nist.gov/tables/<ID>.txt), e.g. H-064.txt:
    Water (H2O)<TAB>H2O1(g)
    T(K)<TAB>Cp<TAB>S<TAB>-[G-H(Tr)]/T<TAB>H-H(Tr)<TAB>delta-f H<TAB>delta-f G<TAB>log Kf
    298.15<TAB>33.590<TAB>188.834<TAB>188.834<TAB>0.<TAB>-241.826<TAB>-228.582<TAB>40.047
Quirks: rows with a temperature and no values below a phase's range; '+inf'/'INFINITE' entries (at 0 K the limits
of -[G-H(Tr)]/T and log Kf, left out with a note; elsewhere quarantined);
phase-transition rows whose remaining cells carry words ('CRYSTAL <--> LIQUID', 'TRANSITION'); a '+' line joining a
transition's two rows (Ba-002) and a lone 'H' line (S-021), both skipped; a temperature run together with its Cp
('288.5001548.088', C-083: split after the temperature's 3 decimals); delta-f H, delta-f G and log Kf run together in
one cell with their minus signs lost ('815.026  735.167 128.798', Cl-161): reported as problems of those columns
(read when all three are zero, as in an element's reference-state table).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from matreg.catalog import Source
from matreg.errors import ConfigError, RecordError, listed
from matreg.fieldmap import catalog_mapping
from matreg.formula import REFERENCE_TEMPERATURE_K, parse_formula
from matreg.http import HttpClient, NotFound
from matreg.numbers import parse_number
from matreg.resources import resource_path
from matreg.sources import FetchRequest
from matreg.sources.base import Connector, Page, RawItem, RawValue, RunInfo, SourceRecord
from matreg.units import convert

REFUSED = {  # request options JANAF cannot honour (`build_connector` refuses them)
    "elements": "JANAF tables are selected by table id, --formula or --all",
    "filter": "JANAF has no query language (select by table id, --formula or --all)",
    "structures": "JANAF tables carry no crystal structures",
}
REFUSED_FIELD_KEYS = {  # keys of a field of the JANAF map it cannot honour (`load_field_map` refuses them)
    "unit_field": (
        "JANAF tables have no column of units (each column's unit is fixed: J/(K*mol), kJ/mol or dimensionless): "
        "give it with 'unit'"
    ),
    "temperature_K": "a JANAF value is at its row's temperature (the table's T(K) column)",
    "pressure_Pa": "a JANAF value is at its table's pressure (1 bar, or the one its title names)",
}
STANDARD_PRESSURE_BAR = 1.0  # JANAF standard state: 0.1 MPa, unless the title names another pressure
_TITLE_PRESSURE = re.compile(r"(?P<bar>\d+(?:\.\d+)?)\s*bar\b", re.IGNORECASE)
_NON_FINITE = {"+inf", "-inf", "inf", "infinite", "+infinite", "-infinite"}
_DIVERGING_AT_ZERO_KELVIN = {"-[G-H(Tr)]/T", "log Kf"}  # by definition: their entries at 0 K are no values
_FORMULA_PHASE = re.compile(r"^(?P<formula>.+?)\((?P<phase>[^()]*)\)$")
_STRAY_MARKS = {"+", "H"}  # alone on a line: '+' between a transition's two rows (Ba-002), 'H' in S-021
_TEMPERATURE_AND_CP = re.compile(r"(?P<temperature>\d+\.\d{3})(?P<cp>\d+\.\d*)")  # '288.5001548.088' (C-083)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")


@dataclass
class JanafRow:
    """One row of a table: temperature, the cells by column name, and a note on transition rows.

    `problems`: why a column's value cannot be read from the table, by column (such columns have no cell).
    """

    temperature_K: float
    cells: dict[str, str]
    note: str | None = None
    problems: dict[str, str] = field(default_factory=dict)


@dataclass
class JanafTable:
    """A parsed JANAF table."""

    name: str
    formula: str
    phase: str
    columns: list[str]
    rows: list[JanafRow] = field(default_factory=list)

    def pressure_pa(self) -> float:
        """Pressure of the table: the one in its title ('Water, 5000 Bar'), else the 1 bar standard state."""
        match = _TITLE_PRESSURE.search(self.name)
        return convert(float(match["bar"]) if match else STANDARD_PRESSURE_BAR, "bar", "Pa")

    def transitions(self) -> list[JanafRow]:
        """Rows that mark a phase transition or a change of standard state."""
        return [row for row in self.rows if row.note]


def parse_table(text: str) -> JanafTable:
    """Parse the text of one JANAF table; RecordError if it is not one."""
    lines = text.splitlines()
    if len(lines) < 3 or "\t" not in lines[0] or not lines[1].startswith("T(K)"):
        raise RecordError("not a JANAF table: expected a title line and a 'T(K)' header line")
    name, _, formula_phase = lines[0].rpartition("\t")
    match = _FORMULA_PHASE.match(formula_phase.strip())
    if not match:
        raise RecordError(f"not a JANAF table: cannot read formula and phase from '{formula_phase}'")
    columns = lines[1].split("\t")[1:]
    table = JanafTable(name.strip(), match["formula"], match["phase"], columns)
    for number, line in enumerate(lines[2:], start=3):
        cells = [cell.strip() for cell in line.split("\t")]
        if any(cells) and not _is_stray_mark(cells):
            table.rows.append(_parse_row(cells, columns, number))
    return table


def _is_stray_mark(cells: list[str]) -> bool:
    return cells[0] in _STRAY_MARKS and not any(cells[1:])


def _parse_row(cells: list[str], columns: list[str], number: int) -> JanafRow:
    temperature, rest = _temperature_and_rest(cells, number)
    row = JanafRow(temperature, {})
    for index, (column, cell) in enumerate(zip(columns, rest, strict=False)):  # transition rows are short
        if _is_note(cell):
            row.note = cell
            break
        if _is_run_together(cell, len(columns) - index):
            _read_run_together(row, columns[index:], cell)
            break
        if cell:
            row.cells[column] = cell
    return row


def _temperature_and_rest(cells: list[str], number: int) -> tuple[float, list[str]]:
    first, *rest = cells
    if run_together := _TEMPERATURE_AND_CP.fullmatch(first):
        return float(run_together["temperature"]), [run_together["cp"], *rest]
    try:
        return float(first), rest
    except ValueError:
        raise RecordError(f"line {number}: temperature '{first}' is not a number") from None


def _is_run_together(cell: str, n_columns_left: int) -> bool:
    """True for a cell of one number per remaining column, separated by spaces instead of tabs."""
    numbers = cell.split()
    return 1 < len(numbers) == n_columns_left and all(_NUMBER.fullmatch(number) for number in numbers)


def _read_run_together(row: JanafRow, columns: list[str], cell: str) -> None:
    """Zeros (an element's reference state) have no sign to lose: they are read; other numbers are problems."""
    numbers = cell.split()
    if all(float(number) == 0 for number in numbers):
        row.cells.update(zip(columns, numbers, strict=True))
    else:
        row.problems = dict.fromkeys(columns, _lost_signs(columns, cell))


def _lost_signs(columns: list[str], cell: str) -> str:
    names = f"{', '.join(columns[:-1])} and {columns[-1]}"
    return f"NIST's table runs {names} together without tabs ('{cell}'): their signs are lost"


def _is_note(cell: str) -> bool:
    return bool(re.search(r"[A-Za-z]", cell)) and cell.lower() not in _NON_FINITE


def janaf_index() -> dict[str, str]:
    """All NIST-JANAF table ids with their display names ('H2O, Water (l)'), as shipped with matreg."""
    data = json.loads(resource_path("connectors/janaf_index.json").read_text(encoding="utf-8"))
    return dict(zip(data["index"], data["display"], strict=True))


def ids_for_formulas(formulas: list[str]) -> list[str]:
    """Table ids whose species has one of the given formulas, as written (O2 is not O or O3, D2O not H2O)."""
    wanted = {parse_formula(text).species for text in formulas}
    index = janaf_index()
    found = [table_id for table_id, display in index.items() if parse_formula(display.split(",")[0]).species in wanted]
    if formulas and not found:
        raise ConfigError(f"no JANAF table has the formula {', '.join(formulas)}")
    return found


class JanafConnector(Connector):
    """Downloads JANAF tables by id and maps the 298.15 K row (or every row) to canonical properties."""

    def __init__(
        self,
        source: Source,
        client: HttpClient,
        table_ids: list[str],
        *,
        all_temperatures: bool = False,
        page_size: int = 25,
        limit: int | None = None,
        name: str = "janaf",
    ) -> None:
        """`limit`: the run's --limit; no table past it is downloaded (a table is one record, so a cursor's index
        counts the records read before it, on a resume too)."""
        if not table_ids:
            raise ConfigError("no JANAF tables asked for: give table ids (e.g. H-064), --formula or --all")
        self.base_url = source.base_url.rstrip("/") + "/"
        self.client = client
        self.table_ids = list(dict.fromkeys(table_ids))
        self.all_temperatures = all_temperatures
        self.page_size = page_size
        self.n_to_read = len(self.table_ids) if limit is None else min(limit, len(self.table_ids))
        self.field_map, self.attribution = catalog_mapping("janaf", name, source, REFUSED_FIELD_KEYS)
        if not all_temperatures:  # a table's other temperatures stay as an --all-temperatures run stored them
            self.attribution.scope = f"T={REFERENCE_TEMPERATURE_K:g} K"
            self.attribution.scope_temperature_K = REFERENCE_TEMPERATURE_K  # there: as this run reads them

    def run_info(self) -> RunInfo:
        return RunInfo(
            endpoint=self.base_url,
            query=f"{len(self.table_ids)} JANAF table(s): {listed(self.table_ids, 10)}",
            parameters={"table_ids": self.table_ids, "all_temperatures": self.all_temperatures},
        )

    def pages(self, cursor: dict[str, Any] | None = None) -> Iterator[Page]:
        first = cursor["next_index"] if cursor else 0
        for start in range(first, self.n_to_read, self.page_size):
            end = min(start + self.page_size, self.n_to_read)
            self.client.begin_page()
            items = [self._download(table_id) for table_id in self.table_ids[start:end]]
            following = {"next_index": end} if end < len(self.table_ids) else None
            yield Page(
                items,
                following,
                request=f"GET {self.base_url}<ID>.txt for {len(items)} table(s)",
                total=len(self.table_ids),
                read_at=self.client.page_read_at(),
                from_cache=self.client.page_from_cache(),
            )

    def _download(self, table_id: str) -> RawItem:
        """The table asked for by its id, as an item of its record (`RawItem.source_id`): refused or missing too."""
        url = f"{self.base_url}{table_id}.txt"
        try:
            text = self.client.get_text(url)
        except NotFound as exc:
            return RawItem(table_id, {"table_id": table_id, "url": url}, error=str(exc), source_id=table_id)
        return RawItem(table_id, {"table_id": table_id, "url": url, "text": text}, source_id=table_id)

    def to_record(self, payload: dict[str, Any]) -> SourceRecord:
        table = parse_table(payload["text"])
        kept = rows_to_store(table.rows)
        rows = kept if self.all_temperatures else [row for row in kept if row.temperature_K == REFERENCE_TEMPERATURE_K]
        return SourceRecord(
            source_id=payload["table_id"],
            formula=table.formula,
            values=[value for row in rows for value in self._values(row, table.pressure_pa())],
            name=table.name,
            phase=table.phase,
            source_url=payload["url"],
            notes=_transition_notes(table, kept),
            left_out=self._limits_at_zero_kelvin(kept),  # of the table, as its transitions: whatever the scope
            unmapped=self.field_map.unmapped(table.columns),
        )

    def _values(self, row: JanafRow, pressure_pa: float) -> list[RawValue]:
        """The row's values, each by its field's method and provenance where the field map gives them; a column whose
        cell cannot be read is a value rejected with its problem; a missing marker or an infinite limit at 0 K is no
        value (`_no_value`)."""
        return [
            RawValue(
                self.field_map.property_of(column),
                row.cells.get(column),
                spec.unit,
                row.temperature_K,
                pressure_pa,
                self.field_map.method_of(column, self.attribution.method),
                problem=row.problems.get(column),
                provenance=spec.provenance,
                field=column,
            )
            for column, spec in self.field_map.fields.items()
            if (column in row.cells and not self._no_value(row, column)) or column in row.problems
        ]

    def _no_value(self, row: JanafRow, column: str) -> bool:
        """Whether a row's cell is no value: a missing marker of the field map, as text or as the number it spells
        ('33.59' marks 33.590; read as a number only where the map gives markers), or an infinite limit at 0 K
        (`_limits_at_zero_kelvin`)."""
        cell, missing = row.cells[column], self.field_map.is_missing
        marked = bool(self.field_map.missing) and (missing(cell) or missing(parse_number(cell)))
        return marked or _is_limit_at_zero_kelvin(row, column)

    def _limits_at_zero_kelvin(self, rows: list[JanafRow]) -> tuple[str, ...]:
        """Why the infinite entries at 0 K are not stored: -[G-H(Tr)]/T and log Kf diverge there by definition (an
        infinite entry of another column, or at another temperature, is a broken table: quarantined)."""
        names = [
            self.field_map.property_of(column)
            for row in rows
            for column in self.field_map.fields
            if _is_limit_at_zero_kelvin(row, column)
        ]
        return (
            (f"{', '.join(names)} at 0 K left out: JANAF lists them as infinite (their limit at 0 K)",) if names else ()
        )

    def redact(self, text: str) -> str:
        return self.client.redact(text)

    def close(self) -> None:
        self.client.close()


def rows_to_store(rows: list[JanafRow]) -> list[JanafRow]:
    """One row per temperature: the first listed. A temperature JANAF lists more than once is a transition's (or a
    Cp maximum's): its regular row where the temperature is also a step of the table (the only row with formation
    values), then the row of the phase stable below the transition, then the phase above. The first row is stored
    whichever rows carry the note (NIST's text marks both transition rows, 'CRYSTAL <--> LIQUID' and 'TRANSITION';
    the janaf package's copy joins the words on the first and leaves the second bare): the regular row, else the
    phase below, never a mix of two phases; the other rows' values go to the record's notes (`_transition_notes`).
    A table of one phase lists its transition temperature once, its row noted."""
    at: dict[float, JanafRow] = {}
    for row in rows:
        at.setdefault(row.temperature_K, row)
    return list(at.values())


def _transition_notes(table: JanafTable, kept: list[JanafRow]) -> str | None:
    """The transitions the table marks, and the values of another row than the one kept (`rows_to_store`) at a
    temperature listed twice (the other phase's, or a Cp maximum's): '933.45 K: CRYSTAL <--> LIQUID; 933.45 K, also
    listed: Cp 31.751, ...'."""
    stored = {row.temperature_K: row for row in kept}
    notes = []
    for row in table.rows:
        if row.note and row.note != "TRANSITION":
            notes.append(f"{_kelvin(row.temperature_K)}: {row.note}")
        if not row.cells.items() <= stored[row.temperature_K].cells.items():  # (the stored row, or a repeat of it)
            values = ", ".join(f"{column} {cell}" for column, cell in row.cells.items())
            notes.append(f"{_kelvin(row.temperature_K)}, also listed: {values}")
    return "; ".join(notes) or None


def _is_limit_at_zero_kelvin(row: JanafRow, column: str) -> bool:
    return (
        row.temperature_K == 0
        and column in _DIVERGING_AT_ZERO_KELVIN
        and row.cells.get(column, "").lower() in _NON_FINITE
    )


def _kelvin(temperature: float) -> str:
    """A temperature as its values are stored ('2790.812 K', not rounded to '2790.81 K'; '1000 K')."""
    return f"{repr(temperature).removesuffix('.0')} K"


def build(name: str, source: Source, client: HttpClient, request: FetchRequest) -> JanafConnector:
    """The JANAF connector for a `matreg fetch` request: table ids, formulas, or every table."""
    ids = list(janaf_index()) if request.everything else request.ids + ids_for_formulas(request.formulas)
    return JanafConnector(
        source,
        client,
        ids,
        all_temperatures=request.all_temperatures,
        page_size=request.page_size_or(25),
        limit=request.limit,
        name=name,
    )
