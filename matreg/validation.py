"""All schema rules: harmonize a mapped record into canonical rows or quarantine reasons; validate tables."""

from __future__ import annotations

import math
import operator
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute
from pymatgen.core import Element

from matreg.errors import RecordError, UnitError, ValidationError
from matreg.formula import Formula, amounts_formula, parse_formula, same_amounts, takes_ion_bounds
from matreg.numbers import Measured, number_in, parse_number, parse_value, quoted
from matreg.schema import (
    ION_BOUNDS_OF,
    ColumnSpec,
    PropertySpec,
    arrow_schema,
    canonical_method,
    children_of,
    extension_schema,
    load_extension,
    load_tables,
    load_vocabulary,
    pandas_dtype,
    pandera_schema,
    table_spec,
    value_conditions,
    value_key,
    within_bounds,
)
from matreg.sources.base import Attribution, RawValue, SourceRecord
from matreg.structure import sites_atoms, written_atoms
from matreg.units import convert_array, missing_count_message

if TYPE_CHECKING:
    from matreg.store import Store

# A site's species that is one whole atom, as the connectors write structure documents (`structure_json`: compact)
_WHOLE_ATOM = re.compile(r'"element":"([^"]*)","occu":1\.0\}')
ATOMS_PER_CELL = "atoms_per_cell"  # the key of a rejected value's atom count in its quarantine payload


@dataclass
class Rejection:
    """An input that does not enter the store, with its raw payload and why."""

    item: str
    raw: Any
    reasons: list[str]
    record_id: str | None = None  # the record it belongs to, when the input was mapped or its id read (RawItem)
    atoms_per_cell: float | None = None  # a rejected value's record's `SourceRecord.atoms_per_cell`
    identity: str | None = None  # what its quarantine id hashes, if not its item and raw (`Connector.identity`)

    def payload(self) -> Any:
        """The payload as stored: a value's with its record's atom count where that is not its sites (null:
        uncounted), which a readmit divides a per-cell value by as the fetch would have."""
        return self.raw if self.atoms_per_cell is None else self.raw | {ATOMS_PER_CELL: self.atoms_per_cell}


def is_value_payload(raw: Any) -> bool:
    """True for one rejected value of a record (its quarantine payload is a RawValue, its provenance and uncertainty
    only where it gave them, without its field: `_value_payload`), not a whole record."""
    optional = {ATOMS_PER_CELL, "provenance", "field", "uncertainty", "uncertainty_problem"}
    return isinstance(raw, dict) and set(raw) - optional == {f.name for f in fields(RawValue)} - optional


def value_of_payload(raw: dict[str, Any]) -> RawValue:
    """The rejected value a quarantine payload (`is_value_payload`) holds."""
    return RawValue(**{key: item for key, item in raw.items() if key != ATOMS_PER_CELL})


@dataclass
class CanonicalRecord:
    """A record ready for the store: its material row, its value rows and its rejected values."""

    material: dict[str, Any]
    values: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


@dataclass
class RunStamp:
    """Which run wrote a row, and when it was fetched."""

    run_id: str
    fetched_at: datetime


@dataclass
class ValueRows:
    """The value rows of several records: those admitted as a properties table, the others rejected with reasons.

    `positions[i]` is the position (among the records given) of the record of the table's row i; `rejected` pairs
    each rejected value with its record's position. Rows keep the records' order, and each record's value order.
    """

    table: pyarrow.Table
    positions: np.ndarray
    rejected: list[tuple[int, Rejection]]


def harmonize(
    record: SourceRecord, attribution: Attribution, stamp: RunStamp, as_stored: bool = False
) -> CanonicalRecord:
    """Turn a mapped record into canonical rows; raise FormulaError if its formula is unreadable (`as_stored`: a
    stored record's formula_original, read as the matreg that stored it did, `parse_formula`)."""
    material = material_row(record, attribution, stamp, as_stored)
    values = harmonize_values([record], [material], attribution, as_stored)
    return CanonicalRecord(material, values.table.to_pylist(), [rejection for _, rejection in values.rejected])


def material_row(
    record: SourceRecord, attribution: Attribution, stamp: RunStamp, as_stored: bool = False
) -> dict[str, Any]:
    """The materials row of a mapped record; raise FormulaError if its formula is unreadable (read `as_stored`, see
    `harmonize`), RecordError if a field has not its column's type (a source's nsites `true`, a space group symbol
    that is a number) or its structure is not of its formula (`_check_structure`)."""
    _check_column_types(record)
    formula = parse_formula(record.formula, as_stored)
    if record.structure is not None:
        _check_structure(record.structure, formula)
    return {
        "record_id": attribution.record_id(record.source_id),
        "source": attribution.source,
        "source_id": record.source_id,
        "source_url": record.source_url,
        "name": record.name,
        "formula": formula.reduced,
        "formula_original": formula.original,
        "atoms_per_formula_unit": formula.atoms_per_formula_unit,
        "chemsys": formula.chemsys,
        "elements": list(formula.elements),
        "charge": formula.charge,
        "phase": record.phase,
        "nsites": record.nsites,
        "structure": record.structure,
        "spacegroup_symbol": record.spacegroup_symbol,
        "spacegroup_number": record.spacegroup_number,
        "provenance": record.provenance or attribution.provenance,
        "method": canonical_method(record.method or attribution.method),
        "notes": "; ".join(filter(None, (record.notes, *record.left_out))) if record.left_out else record.notes,
        "database_version": attribution.database_version,
        "citation": attribution.citation,
        "license": attribution.license,
        "run_id": stamp.run_id,
        "fetched_at": stamp.fetched_at,
        "written_whole": True,  # a record is published whole or not at all (Store.publish_run)
        "scope": attribution.scope,
        "scope_temperature_K": attribution.scope_temperature_K,
    }


def _check_column_types(record: SourceRecord) -> None:
    """RecordError for a field of the record that its materials column cannot hold (the source sent another type)."""
    fields = vars(record)
    for name, is_text in _record_columns():
        value = fields[name]
        if value is None or (isinstance(value, str) if is_text else _is_int64(value)):
            continue
        kind = "a text" if is_text else "a whole number of 64 bits"
        raise RecordError(f"{name} {_shown(value)} is not {kind}")


def _check_structure(structure: str, formula: Formula) -> None:
    """RecordError when a record's structure is not of its formula, by the rule a lab import's rows are held to
    (`same_amounts`: each element's share of the atoms within a tolerance, so a cell of several formula units or a
    refined Fe0.95O for FeO passes): its cell's values per atom would follow the one, its molar values and links the
    other."""
    amounts = _structure_atoms(structure, formula)
    if not same_amounts(formula, amounts):
        partly = not all(amount.is_integer() for amount in amounts.values())  # atoms of partly occupied sites
        counted = f"{amounts_formula(amounts)}{' (by occupancy)' if partly else ''}"
        raise RecordError(f"the structure is {counted}, not the record's formula {formula.original}")


def _structure_atoms(structure: str, formula: Formula) -> dict[str, float]:
    """The atoms of a structure document by element symbol, counted by occupancy: as written where matreg wrote it in
    this process (`written_atoms`: the connectors' documents, checked moments before), else read from its text
    (`_whole_atoms`, else `_structure_amounts`)."""
    written = written_atoms(structure)
    if written is None:
        return _whole_atoms(structure, formula) or _structure_amounts(structure)
    return written if written.keys() <= formula.shares.keys() else _atoms_by_symbol(written)


def _whole_atoms(structure: str, formula: Formula) -> dict[str, float] | None:
    """The atoms of a structure document by element where each of its species is a whole atom of an element of the
    formula as the connectors write it (`_WHOLE_ATOM`), found in its text: decoding the document costs two to three
    times more. None where any is not (another element, a partly occupied site, an isotope's symbol, another
    writer's form: `_structure_amounts` reads them)."""
    names = _WHOLE_ATOM.findall(structure)
    if not names or len(names) != structure.count('"element":'):
        return None
    atoms = Counter(names)
    return {symbol: float(n) for symbol, n in atoms.items()} if atoms.keys() <= formula.shares.keys() else None


def _structure_amounts(structure: str) -> dict[str, float]:
    """The atoms of a structure document (pymatgen's Structure JSON) by element symbol, counted by occupancy, summed
    from its sites' species lists; RecordError where they are not pymatgen's, a species is no element, or no atoms
    are counted."""
    try:
        by_name = sites_atoms(site["species"] for site in orjson.loads(structure)["sites"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise RecordError("structure: its sites are not pymatgen's (species lists of element and occu)") from None
    return _atoms_by_symbol(by_name)


def _atoms_by_symbol(by_name: dict[Any, float]) -> dict[str, float]:
    """Atoms by element name as atoms by element symbol (deuterium's are H's: `_element_symbol`); RecordError where
    a name is no element or no atoms are counted."""
    amounts: dict[str, float] = {}
    for name, amount in by_name.items():
        symbol = _element_symbol(name)
        amounts[symbol] = amounts.get(symbol, 0.0) + amount
    if not sum(amounts.values()) > 0:
        raise RecordError("structure: its sites hold no atoms")
    return amounts


@lru_cache(maxsize=256)
def _element_symbol(name: Any) -> str:
    """The symbol of an element as a structure document names it (deuterium 'D' is H); RecordError if it is none."""
    try:
        return Element(name).symbol
    except (ValueError, TypeError):
        raise RecordError(f"structure: {name!r} is not a chemical element") from None


_INT64 = (-(2**63), 2**63)  # the range of an int64 column, upper bound excluded


@lru_cache(maxsize=1)
def _record_columns() -> tuple[tuple[str, bool], ...]:
    """The materials columns a connector's record fills as it is (name, True for text, False for an integer)."""
    columns = table_spec("materials").columns
    fields = [name for name in SourceRecord.__dataclass_fields__ if name in columns and name != "formula"]
    return tuple((name, columns[name].type == "string") for name in fields)


def _is_int64(value: Any) -> bool:
    """An integer an int64 column holds (a bool is none: its type is a subclass of int, not int)."""
    return (type(value) is int or isinstance(value, np.integer)) and bool(_INT64[0] <= value < _INT64[1])


def _shown(value: Any) -> str:
    return quoted(repr(value))


def _is_none(value: Any) -> bool:
    return value is None


def read_spacegroup_number(value: Any, field: str, is_missing: Callable[[Any], bool] = _is_none) -> int | None:
    """A space group number as a source sent it in `field`, for the materials row: None when absent (None, or one of
    the source's missing markers: `is_missing`, e.g. `FieldMap.is_missing`); a whole number (an int, or its digits as
    text: AFLOW's old answers) in the range tables.yaml gives spacegroup_number; RecordError naming the field and
    value for anything else (231, 12.7, true, 'Fm-3m'): the record is quarantined, never kept without it."""
    if is_missing(value):
        return None
    low, high = _spacegroup_range()
    number = _whole_number(value)
    if number is None or not low <= number <= high:
        raise RecordError(f"{field} {_shown(value)} is not a space group number ({low:g} to {high:g})")
    return number


def _whole_number(value: Any) -> int | None:
    """An int, a float with no fraction (225.0: a JSON encoder's way with numbers), or the int a text of ASCII
    digits writes ('225'); None for anything else (a bool, 12.7, '12.0', NaN)."""
    if _is_int64(value):
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    digits = value.strip() if isinstance(value, str) else ""
    return int(digits) if digits.isascii() and digits.isdigit() else None


@lru_cache(maxsize=1)
def _spacegroup_range() -> tuple[float, float]:
    """The bounds tables.yaml gives spacegroup_number (infinite where it gives none)."""
    spec = table_spec("materials").columns["spacegroup_number"]
    return (-math.inf if spec.min is None else spec.min, math.inf if spec.max is None else spec.max)


def read_text(value: Any, field: str, is_missing: Callable[[Any], bool] = _is_none) -> str | None:
    """A text as a source sent it in `field`, for a text column: None when absent (None, empty, or one of the
    source's missing markers: `is_missing`); RecordError naming the field and value when it is no text (a number)."""
    if is_missing(value) or value == "":
        return None
    if not isinstance(value, str):
        raise RecordError(f"{field} {_shown(value)} is not a text")
    return value


def read_id(value: Any, field: str) -> str:
    """A record's id as a source sent it in `field` (present: each connector says what a missing one is), as its
    source id: a text, or an integer's digits; RecordError naming the field and value for anything else, the record
    quarantined. A float is no id: JSON readers give one for an integer beyond 64 bits (orjson reads 2**64 + 1 and
    2**64 + 2 as 2.0**64), and distinct records would be merged under its text; nor is a bool, a list or an object,
    nor an empty text (or one of spaces), which would merge the records without an id into one, '<source>:'."""
    if type(value) is int or isinstance(value, str) and value.strip():
        return str(value)
    if isinstance(value, str):
        raise RecordError(f"{field} {_shown(value)} is empty: no id")
    raise RecordError(f"{field} {_shown(value)} is no integer or text")


def harmonize_values(
    records: Sequence[SourceRecord], materials: Sequence[dict], attribution: Attribution, as_stored: bool = False
) -> ValueRows:
    """Every value of the records (`materials`: their rows, their formula_original read `as_stored` where they are
    stored ones, see `harmonize`) in its property's canonical unit, or rejected with why.

    Values are converted a (property, unit) group at a time, with one unit plan, their uncertainties (`parse_value`,
    `RawValue.uncertainty`) as differences. A rejected value gets the first reason of: unknown property, not a finite
    number, negative conditions, an uncertainty that cannot be (`_uncertainty`), units that do not convert (or need
    an atom count the record lacks), outside the property's physical bounds. Of a record's valid values that give one
    value key (`value_key`: property, method, conditions), as two fields of its field map may, the first is kept
    where they agree in the canonical unit; else each is rejected with a reason naming their fields and values
    (`_FlatValues.repeated_keys`): never one kept in silence.
    """
    values = _FlatValues(records, materials, as_stored)
    reasons: dict[int, list[str]] = {}
    groups = values.groups(attribution.source, reasons)
    values.check_numbers_and_conditions(reasons)
    values.check_uncertainties(reasons)
    converted = np.full(len(values.raws), np.nan)
    for group in groups:
        converted[group.rows] = group.convert(values, reasons)
        if values.uncertainties is not None:
            values.uncertainties[group.rows] = group.convert_uncertainties(values)
    admitted = np.ones(len(values.raws), dtype=bool)
    admitted[list(reasons)] = False
    table = values.table(converted, groups, admitted, attribution.source)
    repeated = values.repeated_keys(table, np.flatnonzero(admitted), reasons)
    if repeated.size:
        table = table.filter(~np.isin(np.flatnonzero(admitted), repeated))
        admitted[repeated] = False
    return ValueRows(
        table=table,
        positions=values.positions[admitted],
        rejected=[(int(values.positions[row]), values.rejection(row, reasons[row])) for row in sorted(reasons)],
    )


class _FlatValues:
    """The values of several records in one list, each with its record's position."""

    def __init__(self, records: Sequence[SourceRecord], materials: Sequence[dict], as_stored: bool) -> None:
        self.records, self.materials = records, materials
        positions: list[int] = []
        self.raws: list[RawValue] = []
        for position, record in enumerate(records):
            positions += [position] * len(record.values)
            self.raws += record.values
        self.positions = np.array(positions, dtype=np.int64)
        # a float, a Measured (a text stating its uncertainty), or why the value is not one
        self.numbers = [parse_value(raw.value) if raw.problem is None else raw.problem for raw in self.raws]
        self.floats = np.array([number_in(number) for number in self.numbers], dtype=float)  # (None: NaN)
        self.uncertainties: np.ndarray | None = None  # as stated (NaN: none); None: no value states one
        self.per_formula_unit = np.array([material["atoms_per_formula_unit"] for material in materials], dtype=float)
        self.per_cell = np.array([_atoms_per_cell(record) for record in records], dtype=float)  # None -> NaN
        formulas = [parse_formula(material["formula_original"], as_stored) for material in materials]  # as written
        self.molar_mass = np.array([formula.molar_mass for formula in formulas], dtype=float)  # None (e-) -> NaN
        phases = [material["phase"] for material in materials]
        self.ion = np.array(list(map(takes_ion_bounds, formulas, phases)), dtype=bool)  # an ion's bounds

    def groups(self, source: str, reasons: dict[int, list[str]]) -> list[_UnitGroup]:
        """The values grouped by (property as given, unit); values of an unknown property get their reason."""
        rows_of: dict[tuple[str, str], list[int]] = {}
        for row, raw in enumerate(self.raws):
            rows_of.setdefault((raw.property, raw.unit), []).append(row)
        groups, vocabulary = [], load_vocabulary()
        for (name, unit), rows in rows_of.items():
            prop = vocabulary.resolve(name, source)
            if prop is None:
                reasons.update((row, [f"unknown property '{name}'"]) for row in rows)
            else:
                groups.append(_UnitGroup(prop, vocabulary.root[prop], unit, np.array(rows, dtype=np.int64)))
        return groups

    def check_numbers_and_conditions(self, reasons: dict[int, list[str]]) -> None:
        """Reasons for values that are not finite numbers, or are given at a negative or non-finite temperature or
        pressure."""
        for row, number in enumerate(self.numbers):
            if isinstance(number, str):
                reasons.setdefault(row, [number])
        for row, raw in enumerate(self.raws):
            if raw.temperature_K is not None or raw.pressure_Pa is not None:
                unphysical = _unphysical_conditions(raw)
                if unphysical:
                    reasons.setdefault(row, unphysical)

    def check_uncertainties(self, reasons: dict[int, list[str]]) -> None:
        """Read the uncertainties the values state (`uncertainties`), their texts' own or given apart
        (`RawValue.uncertainty`), with reasons for one that is no finite number or negative, or a value that states
        one and is given another. Values are looked at one by one only where any states one (no fetched value
        does): else `uncertainties` stays None."""
        if Measured not in map(type, self.numbers) and set(map(_UNCERTAINTY_APART, self.raws)) == {(None, None)}:
            return
        self.uncertainties = np.full(len(self.raws), np.nan)
        for row, (raw, number) in enumerate(zip(self.raws, self.numbers, strict=True)):
            if raw.uncertainty is None and raw.uncertainty_problem is None and type(number) is not Measured:
                continue
            uncertainty = raw.uncertainty_problem or _uncertainty(raw, number)
            if isinstance(uncertainty, str):
                reasons.setdefault(row, [uncertainty])
            else:
                self.uncertainties[row] = uncertainty

    def repeated_keys(self, table: pyarrow.Table, rows: np.ndarray, reasons: dict[int, list[str]]) -> np.ndarray:
        """Of the values `rows` (those of the table's rows), those another value of their record gives the key of
        (`value_key`): a key's values but the first where they agree, else all of them, each with the reason.

        Only values of one record and property can share a key: just those are compared on the whole key.
        """
        positions = self.positions[rows]
        names = pyarrow.compute.dictionary_encode(table["property"].combine_chunks()).indices.to_numpy()
        pairs = positions * (int(names.max(initial=0)) + 1) + names
        _, pair_of_row, rows_per_pair = np.unique(pairs, return_inverse=True, return_counts=True)
        shared = np.flatnonzero(rows_per_pair[pair_of_row] > 1)
        if not shared.size:
            return shared
        columns = _key_in_a_record()
        keys = zip(positions[shared].tolist(), *(table[name].take(shared).to_pylist() for name in columns), strict=True)
        shared_rows, canonical = rows[shared].tolist(), table["value"].take(shared).to_pylist()
        of_key: dict[tuple, list[int]] = {}
        for index, key in enumerate(keys):
            of_key.setdefault(key, []).append(index)
        repeated: list[int] = []
        for key, (first, *others) in of_key.items():
            if not others:  # the key's only value (of a property the record gives by other methods or conditions)
                continue
            given = [shared_rows[index] for index in (first, *others)]
            if all(math.isclose(canonical[index], canonical[first], rel_tol=_SAME_VALUE) for index in others):
                repeated += given[1:]
                continue
            reason = _given_by_fields(
                dict(zip(columns, key[1:], strict=True)), [self.raws[row] for row in given], self.floats[given].tolist()
            )
            reasons.update((row, [reason]) for row in given)
            repeated += given
        return np.array(repeated, dtype=np.int64)

    def counts(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Atoms per formula unit and per cell, and the molar mass, of the records of these rows (NaN: unknown)."""
        positions = self.positions[rows]
        return self.per_formula_unit[positions], self.per_cell[positions], self.molar_mass[positions]

    def of_ions(self, rows: np.ndarray) -> np.ndarray:
        """Which of these rows are values of a record held to an ion's bounds (`takes_ion_bounds`: an ion's or an
        aqueous solute's)."""
        return self.ion[self.positions[rows]]

    def table(
        self, converted: np.ndarray, groups: list[_UnitGroup], admitted: np.ndarray, source: str
    ) -> pyarrow.Table:
        """The admitted values as rows of the canonical properties table."""
        group_of = np.zeros(len(self.raws), dtype=np.int64)
        for index, group in enumerate(groups):
            group_of[group.rows] = index
        by_group = pyarrow.array(group_of[admitted])
        by_record = pyarrow.array(self.positions[admitted])
        rows = np.flatnonzero(admitted).tolist()
        raws = [self.raws[row] for row in rows]
        own_provenance = _strings([raw.provenance for raw in raws])
        record_provenance = self._material_column("provenance").take(by_record)
        columns = {
            "property": _strings([group.property for group in groups]).take(by_group),
            "value": pyarrow.array(converted[admitted]),
            "unit": _strings([group.spec.unit for group in groups]).take(by_group),
            "uncertainty": (
                pyarrow.nulls(len(rows), pyarrow.float64())
                if self.uncertainties is None
                else pyarrow.array(self.uncertainties[admitted], from_pandas=True)
            ),
            "original_value": pyarrow.array(self.floats[admitted]),
            "original_unit": _strings([group.unit for group in groups]).take(by_group),
            "method": self._methods(raws, by_record, own_provenance, record_provenance),
            "provenance": pyarrow.compute.coalesce(own_provenance, record_provenance),
            **{  # RawValue's fields are named as the schema's conditions (tests/test_schema.py)
                condition: pyarrow.array([getattr(raw, condition) for raw in raws], pyarrow.float64())
                for condition in value_conditions()
            },
            "source": pyarrow.repeat(pyarrow.scalar(source, pyarrow.string()), len(rows)),
        }
        for name in ("record_id", "run_id"):
            columns[name] = self._material_column(name).take(by_record)
        schema = arrow_schema("properties")
        return pyarrow.Table.from_arrays([columns[name] for name in schema.names], schema=schema)

    def _methods(
        self,
        raws: list[RawValue],
        by_record: pyarrow.Array,
        own_provenance: pyarrow.Array,
        record_provenance: pyarrow.Array,
    ) -> pyarrow.Array:
        """The methods of these values (`value_method`): their own, else their record's where they are of its
        provenance (`own_provenance`: each value's own, null where it has none; `record_provenance`: its record's)."""
        other_provenance = pyarrow.compute.not_equal(own_provenance, record_provenance)
        inherited = pyarrow.compute.if_else(
            pyarrow.compute.fill_null(other_provenance, False),
            pyarrow.nulls(len(raws), pyarrow.string()),
            self._material_column("method").take(by_record),
        )
        return pyarrow.compute.coalesce(_strings([canonical_method(raw.method) for raw in raws]), inherited)

    def rejection(self, row: int, reasons: list[str]) -> Rejection:
        """A rejected value with its raw form, named '<source id>:<property>[<method>]@<T>K' after its record."""
        raw = self.raws[row]
        method = f"[{raw.method}]" if raw.method else ""
        conditions = f"@{raw.temperature_K:g}K" if raw.temperature_K is not None else ""
        position = self.positions[row]
        record = self.records[position]
        item = f"{record.source_id}:{raw.property}{method}{conditions}"
        payload = _value_payload(raw)
        return Rejection(item, payload, reasons, self.materials[position]["record_id"], record.atoms_per_cell)

    def _material_column(self, name: str) -> pyarrow.Array:
        return _strings([material[name] for material in self.materials])


_UNCERTAINTY_APART = operator.attrgetter("uncertainty", "uncertainty_problem")
_RAW_VALUE_NAMES = tuple(field.name for field in fields(RawValue))
_RAW_VALUE_FIELDS = operator.attrgetter(*_RAW_VALUE_NAMES)
_SHARED_TYPES = frozenset((str, int, float, bool, type(None)))  # immutable: a deep copy of one is the value itself


def with_value(raw: RawValue, value: Any) -> RawValue:
    """`raw` with another value (a steward's correction of its number, which mends the source's problem reading it:
    JANAF's lost signs) and the uncertainty it states: one its text states ('5.431(2)') given apart with the new
    value; one that cannot be (`_uncertainty`: stated twice, which one is meant?) its problem, which refuses it as it
    is harmonized. An uncertainty given apart that cannot be read (`RawValue.uncertainty_problem`) still refuses it."""
    number = parse_value(raw.value)
    if type(number) is not Measured:
        return replace(raw, value=value, problem=None)
    uncertainty = _uncertainty(raw, number)
    if isinstance(uncertainty, str):
        return replace(raw, value=value, problem=uncertainty)
    return replace(raw, value=value, problem=None, uncertainty=uncertainty)


def _uncertainty(raw: RawValue, number: float | Measured | str) -> float | str:
    """The uncertainty a value states (`number`: its value as read), in its unit as given, or why it cannot be one:
    no finite number, negative, or stated twice (its text's own and one given apart: which one is meant?)."""
    apart = raw.uncertainty
    if type(number) is Measured and apart is not None:
        field = f"{raw.field}: " if raw.field else ""
        return (
            f"{field}'{quoted(str(raw.value))}' states its uncertainty and another is given apart "
            f"({quoted(str(apart))}): which one is meant is not guessed"
        )
    uncertainty = number.uncertainty if type(number) is Measured else apart
    if type(uncertainty) is not float:  # given apart as text, or an integer
        uncertainty = parse_number(uncertainty)
        if isinstance(uncertainty, str):
            return f"uncertainty: {uncertainty}"
    if not math.isfinite(uncertainty):
        return f"uncertainty {uncertainty:g} {raw.unit} is not a finite number"
    if uncertainty < 0:
        return f"uncertainty {uncertainty:g} {raw.unit} is negative"
    return uncertainty


def _value_payload(raw: RawValue) -> dict[str, Any]:
    """A rejected value as its quarantine row stores it: its fields, without its source field (a reason names it where
    it matters) and a provenance it does not give of its own (the payloads, and so the quarantine ids, of values
    stored before values had these stay as they were), and an uncertainty it is not given apart. Its fields are
    copied as `asdict` copies them: a field of an immutable type (`_SHARED_TYPES`, as nearly every value's are) is its
    own copy, so such a value's dict is built as it is (`asdict` costs ten times more)."""
    given = _RAW_VALUE_FIELDS(raw)
    payload = dict(zip(_RAW_VALUE_NAMES, given, strict=True)) if set(map(type, given)) <= _SHARED_TYPES else asdict(raw)
    del payload["field"]
    for optional in ("provenance", "uncertainty", "uncertainty_problem"):
        if payload[optional] is None:
            del payload[optional]
    return payload


_SAME_VALUE = 1e-9  # the relative difference within which a record's values of one key (canonical unit) are one
_COUNT_WORDS = {2: "two", 3: "three"}


@lru_cache(maxsize=1)
def _key_in_a_record() -> list[str]:
    """The columns of a value key (`value_key`) that tell a record's values apart: all but the record's."""
    return [name for name in value_key() if name not in table_spec("materials").primary_key]


def at_conditions(temperature_K: float | None, pressure_Pa: float | None) -> str:
    """The conditions a value is stated at, as a reason names them: ' at 300 K and 1e+05 Pa' ('' for none)."""
    stated = ((temperature_K, "K"), (pressure_Pa, "Pa"))
    conditions = [f"{given:g} {unit}" for given, unit in stated if given is not None]
    return f" at {' and '.join(conditions)}" if conditions else ""


def _given_by_fields(key: dict[str, Any], raws: list[RawValue], numbers: list[float]) -> str:
    """Why a record's values of one key (`_key_in_a_record`: property, method, conditions) that differ are rejected,
    each named by its field and number as given: 'band_gap (PBE) given by two fields, Egap = 4.1084 eV and
    Egap_fit = 6.45112 eV: map one of them to another method or property'."""
    method = f" ({key['method']})" if key["method"] else ""
    at = at_conditions(key["temperature_K"], key["pressure_Pa"])
    given = [
        f"{raw.field + ' = ' if raw.field else ''}{number:.15g} {raw.unit}"
        for raw, number in zip(raws, numbers, strict=True)
    ]
    return (
        f"{key['property']}{method}{at} given by {_COUNT_WORDS.get(len(given), len(given))} fields, "
        f"{', '.join(given[:-1])} and {given[-1]}: map one of them to another method or property"
    )


def _atoms_per_cell(record: SourceRecord) -> float | None:
    """Atoms in the record's cell, by occupancy where sites are partly occupied."""
    return record.nsites if record.atoms_per_cell is None else record.atoms_per_cell


@dataclass
class _UnitGroup:
    """The values of one property given in one unit: one unit plan, the physical bounds of an ion (`takes_ion_bounds`)
    or of another."""

    property: str
    spec: PropertySpec
    unit: str
    rows: np.ndarray

    def convert(self, values: _FlatValues, reasons: dict[int, list[str]]) -> np.ndarray:
        """The group's values in the canonical unit; reasons for those that do not convert or are out of bounds."""
        numbers = values.floats[self.rows]
        per_formula_unit, per_cell, molar_mass = values.counts(self.rows)
        try:
            converted = convert_array(numbers, self.unit, self.spec.unit, per_formula_unit, per_cell, molar_mass)
        except UnitError as exc:
            reasons.update((row, [str(exc)]) for row in self.rows.tolist() if row not in reasons)
            return numbers
        ion = values.of_ions(self.rows)
        bounds = np.array([self.spec.bounds, self.spec.bounds_of(ion=True)])[ion.astype(np.int64)]  # each row's
        outside = np.flatnonzero(~within_bounds(converted, bounds[:, 0], bounds[:, 1]))  # NaN included
        refused = (column[outside].tolist() for column in (self.rows, converted, molar_mass, ion))
        for row, value, its_molar_mass, of_ion in zip(*refused, strict=True):
            reasons.setdefault(row, [self._refusal(value, its_molar_mass, of_ion)])
        return converted

    def convert_uncertainties(self, values: _FlatValues) -> np.ndarray:
        """The group's values' uncertainties (`_FlatValues.uncertainties`) in the canonical unit, converted as
        differences (NaN: none stated, or the units do not convert: `convert` gives the reason)."""
        given = values.uncertainties[self.rows]
        if np.isnan(given).all():
            return given
        try:
            return convert_array(given, self.unit, self.spec.unit, *values.counts(self.rows), differences=True)
        except UnitError:
            return np.full(len(self.rows), np.nan)

    def _refusal(self, value: float, molar_mass: float, ion: bool) -> str:
        """Why a converted value (of an ion's record or not) is refused: out of bounds, or (NaN) it needed an atom
        count or molar mass (NaN: unknown) its record does not give."""
        if math.isnan(value):  # a number (NaN values have their reason already) that needed a missing count
            return missing_count_message(self.unit, self.spec.unit, molar_mass)
        return outside_bounds(self.property, self.spec, value, ion)


def outside_bounds(name: str, spec: PropertySpec, value: float, ion: bool = False) -> str:
    """Why a value (in the property's canonical unit) of a record held to an ion's bounds (`takes_ion_bounds`) or
    another's, outside its physical bounds, is refused: with the digits that put it there ('30.000001', not '30'), and
    the bounds it is outside (an ion's named so where the property gives ions and aqueous solutes their own)."""
    low, high = spec.bounds_of(ion)
    of_an_ion = f" {ION_BOUNDS_OF}" if ion and spec.ion_bounds is not None else ""
    return f"{name} = {value:.15g} {spec.unit} is outside the physical bounds{of_an_ion} [{low:.15g}, {high:.15g}]"


def _strings(texts: list[str | None]) -> pyarrow.Array:
    return pyarrow.array(texts, pyarrow.string())


def check_attributes(extension: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[Any, list[str]]]:
    """Validate (and coerce) one extension row per record at once: the valid rows, and each failing row's reasons."""
    schema = extension_schema(extension)
    frame = frame.reindex(columns=list(schema.columns))  # an unmapped (nullable) column is simply empty
    frame, unread = _read_cells(frame, load_extension(extension).columns)
    reasons: dict[Any, list[str]] = {}
    for (index, _), reason in unread.items():
        reasons.setdefault(index, []).append(reason)
    failed: set[Any] = set()
    while True:  # a column that fails coercion hides its other checks: re-check the rows left until they pass
        try:
            valid = schema.validate(frame.drop(index=list(failed)), lazy=True)
            return valid.drop(index=list(reasons), errors="ignore"), reasons
        except pa.errors.SchemaErrors as exc:
            failures = _row_failures(exc.failure_cases)
            if not failures:
                raise ValidationError(f"extension {extension}: {exc.failure_cases.iloc[0].to_dict()}") from None
            for index, reason in failures:
                failed.add(index)
                if (index, reason.removesuffix(": not_nullable")) not in unread:  # an unread time is no blank
                    reasons.setdefault(index, []).append(reason)


_TIME_FORMS = "not an ISO 8601 date or time (e.g. 2024-03-18 or 2024-03-18T10:00:00Z)"
_PAST_MICROSECONDS = re.compile(r"(?<=\d\.\d{6})\d+")  # the digits of a time past a second's sixth decimal
_DECIMAL_COMMA = re.compile(r"(?<=:\d{2}),(?=\d)")  # ISO 8601's other decimal sign, of a time's seconds ('10:00:00,5')
_FINER = "finer than the microseconds the store keeps: write at most 6 decimals of a second"
# The years of the times the store holds: those its text of a time (`attribute_rows`), Python and DuckDB all read
_YEARS_HELD = (1, 9999)
_OUTSIDE = "outside the times the store holds: 0001-01-01 to 9999-12-31 (UTC)"
_DATE_FIRST = r"\s*\d{4}-\d{2}-\d{2}(?![\d])"  # a whole calendar date first: a year or a month alone is no time
_DATE_ONLY = re.compile(r"\s*\d{4}-\d{2}-\d{2}")
# a time ending in a zone's name, as databases and spreadsheets export times ('2024-03-18 10:00:00 UTC', 'CET',
# 'Europe/Berlin', 'UTC+2'); ISO 8601's 'Z' is no name
_ZONE_NAME = re.compile(
    r"(?P<time>.*\d)\s*(?P<zone>(?i:utc|gmt|am|pm)|[A-Z][A-Za-z_]+(?:/[A-Za-z_]+)*(?:[+-]\d{1,2}(?::?\d{2})?)?)\s*"
)  # (UTC's names and AM/PM in either case; another lower-case word, as 'noon', is no zone)
# an offset ending a time of day, as before a zone's name in Go's times ('2024-03-18 10:00:00 +0000 UTC')
_OFFSET_LAST = re.compile(r".*\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?P<offset>[+-]\d{2}(?::?\d{2})?)")
_UTC_NAMES = ("UTC", "GMT")
_TWELVE_HOUR = ("AM", "PM")
_TWELVE_HOUR_NOT_READ = "a 12-hour time (AM/PM) is not read: write it on the 24-hour clock (10:00 PM as 22:00)"
_OFFSET_NAME_NOT_READ = "time zone '{}' is not read: write its offset alone (2024-03-18T10:00:00+02:00)"
_NAME_AFTER_OFFSET = (
    "time zone '{zone}' after offset '{offset}' is not read: drop the zone name, the offset gives the time "
    "(2024-03-18T10:00:00+01:00)"
)
_OFFSET_NOT_UTC = (
    "offset '{offset}' and time zone '{zone}' disagree ({zone} is +00:00): write the offset alone "
    "(2024-03-18T10:00:00+02:00) or the time in UTC"
)
_ZONE_NOT_READ = (
    "time zone '{}' is not read (a zone name may stand for two offsets, as CET for +01:00 and, in summer, +02:00): "
    "write the time in UTC or with its offset (2024-03-18T10:00:00+01:00)"
)


def _read_cells(frame: pd.DataFrame, columns: dict[str, ColumnSpec]) -> tuple[pd.DataFrame, dict[tuple, str]]:
    """The frame with its time and bool columns read cell by cell (times in any ISO 8601 form, a time without a zone
    UTC's; `_read_bool_column`), and the reason of each cell that is none, by (row, column): a date as 03/04/2024 is
    not read month or day first."""
    unread: dict[tuple, str] = {}
    for name, column in columns.items():
        reader = _CELL_READERS.get(column.type)
        if reader is None:
            continue
        cells = frame[name]
        read, reasons = reader(cells)
        unread |= {(index, name): f"{name}: {why}: {cells[index]!r}" for index, why in reasons.items()}
        frame = frame.assign(**{name: read})
    return frame, unread


_TRUTHS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_NO_TRUTH = "not true or false (true/false, yes/no or 1/0)"


def _read_bool_column(cells: pd.Series) -> tuple[pd.Series, dict[Any, str]]:
    """A bool column's cells read as the words a lab file writes (true/false, yes/no, 1/0, letter case aside: Excel's
    TRUE), booleans as they are (JSON's), and why each other cell given is none, by row."""
    read = cells.map(lambda cell: cell if isinstance(cell, bool) else _TRUTHS.get(str(cell).strip().casefold()))
    given = cells.notna()
    return read.where(given).astype("boolean"), dict.fromkeys(cells.index[given & read.isna()], _NO_TRUTH)


def _read_time_column(cells: pd.Series) -> tuple[pd.Series, dict[Any, str]]:
    """A time column's cells read in microseconds, as the store keeps them (NaT where not read), and why each cell
    given is not read, by row: no ISO 8601 time (`_why_no_time`), finer than a microsecond (zeros past a second's
    sixth decimal are read), or outside the years 1 to 9999 of UTC."""
    iso = cells.map(_with_decimal_point).map(_utc_named)
    # pandas reads a column at the finest resolution one of its cells is written to: in nanoseconds, the times
    # outside 1677-09-21 to 2262-04-11 would be unread. Cut to six decimals, every cell is read in microseconds.
    kept = iso.map(_to_microseconds)
    dated = kept.where(kept.astype("string").str.match(_DATE_FIRST, na=False))  # (pandas reads 1030 as a year)
    times = pd.to_datetime(dated, format="ISO8601", utc=True, errors="coerce")
    finer = times.notna() & iso.map(_finer_than_microseconds).astype(bool)
    outside = times.notna() & ~times.dt.year.between(*_YEARS_HELD)
    reasons = {
        index: _FINER if finer[index] else _OUTSIDE if outside[index] else _why_no_time(cells[index])
        for index in cells.index[cells.notna() & (times.isna() | finer | outside)]
    }
    return times.mask(finer | outside), reasons


_CELL_READERS = {"timestamp": _read_time_column, "bool": _read_bool_column}  # the column types read cell by cell


def _with_decimal_point(cell: Any) -> Any:
    """A time cell with ISO 8601's decimal comma written as a point ('10:00:00,5' as '10:00:00.5'), as pandas and the
    other steps read it; any other cell as it is."""
    return _DECIMAL_COMMA.sub(".", cell) if isinstance(cell, str) else cell


def _to_microseconds(cell: Any) -> Any:
    """A time cell with the digits past a second's sixth decimal dropped; any other cell as it is."""
    return _PAST_MICROSECONDS.sub("", cell) if isinstance(cell, str) else cell


def _finer_than_microseconds(cell: Any) -> bool:
    """True for a time cell with a digit other than zero past a second's sixth decimal."""
    past = _PAST_MICROSECONDS.search(cell) if isinstance(cell, str) else None
    return past is not None and bool(past[0].strip("0"))


def _utc_named(cell: Any) -> Any:
    """A time cell ending in UTC's name, 'UTC' or 'GMT' ('2024-03-18 10:00:00 UTC'), as ISO 8601 writes a time in
    UTC ('2024-03-18 10:00:00Z'; a date, which ISO 8601 gives no zone, without it), and one whose offset before it
    is UTC's (Go's '2024-03-18 10:00:00 +0000 UTC') with that offset alone; any other cell as it is (another offset
    before UTC's name contradicts it: `_why_no_time`)."""
    named = _ZONE_NAME.fullmatch(cell) if isinstance(cell, str) else None
    if named is None or named["zone"].upper() not in _UTC_NAMES:
        return cell
    offset = _offset_before_zone(named["time"])
    if offset is not None:
        return named["time"] if _is_utc_offset(offset) else cell
    return named["time"] if _DATE_ONLY.fullmatch(named["time"]) else f"{named['time']}Z"


def _offset_before_zone(time: str) -> str | None:
    """The offset from UTC that ends the time before a zone's name ('+0000' of '2024-03-18 10:00:00 +0000'), if any."""
    found = _OFFSET_LAST.fullmatch(time)
    return found["offset"] if found else None


def _is_utc_offset(offset: str) -> bool:
    """True for an offset of zero hours and minutes (+0000, +00:00, -00)."""
    return not offset.strip("+-:0")


def _why_no_time(cell: Any) -> str:
    """Why a time cell is not read: it ends in AM or PM, in a zone's name after an offset (which the name may
    contradict: UTC's after another offset does), in a zone's name with an offset (UTC+2) or in another zone's name
    than UTC's (CET), or is no ISO 8601 time."""
    named = _ZONE_NAME.fullmatch(cell) if isinstance(cell, str) else None
    zone = named["zone"] if named else ""
    offset = _offset_before_zone(named["time"]) if named else None
    if zone.upper() in _TWELVE_HOUR:
        return _TWELVE_HOUR_NOT_READ
    if offset is not None and zone.upper() not in _UTC_NAMES:
        return _NAME_AFTER_OFFSET.format(zone=zone, offset=offset)
    if offset is not None and not _is_utc_offset(offset):
        return _OFFSET_NOT_UTC.format(zone=zone, offset=offset)
    if not zone or zone.upper() in _UTC_NAMES:
        return _TIME_FORMS
    offset_named = re.search(r"[+-]\d", zone) and "/" not in zone  # (Etc/GMT+2 is UTC-2: a zone's name)
    return (_OFFSET_NAME_NOT_READ if offset_named else _ZONE_NOT_READ).format(zone)


def _row_failures(cases: pd.DataFrame) -> list[tuple[Any, str]]:
    """(row index, reason) of each failed value, once per row for a check of whole rows (pandera reports it for
    every column); column-wide errors and dtype repeats of coercion failures skipped."""
    cases = cases[cases["index"].notna() & ~cases["check"].str.startswith("dtype(")]
    whole_rows = cases["schema_context"] == "DataFrameSchema"
    of_rows = cases[whole_rows].drop_duplicates(["index", "check"])
    failures = [
        (case.index, _reason(case.column, case.check, case.failure_case)) for case in cases[~whole_rows].itertuples()
    ]
    return failures + [(case.index, f"{case.check} failed") for case in of_rows.itertuples()]


def _reason(column: str, check: str, value: Any) -> str:
    """'column: check failed for value', or 'column: not_nullable' for a missing value."""
    value = value.item() if isinstance(value, np.generic) else value  # 0, not np.int64(0)
    return f"{column}: {check}" if is_blank(value) else f"{column}: {check} failed for {value!r}"


def attribute_rows(extension: str, record_id: str, values: pd.Series, run_id: str) -> list[dict[str, Any]]:
    """record_attributes rows of one record's validated extension values (empty values have none)."""
    columns = load_extension(extension).columns
    return [
        {
            "record_id": record_id,
            "extension": extension,
            "attribute": attribute,
            "value": str(value),
            "type": columns[attribute].type,
            "run_id": run_id,
        }
        for attribute, value in values.items()
        if not pd.isna(value)
    ]


def _unphysical_conditions(raw: RawValue) -> list[str]:
    """Why a value's temperature or pressure cannot be: negative, or not a finite number (NaN would be no key)."""
    conditions = [("temperature_K", raw.temperature_K), ("pressure_Pa", raw.pressure_Pa)]
    return [
        f"{name} {given:g} is negative" if given < 0 else f"{name} {given:g} is not a finite number"
        for name, given in conditions
        if given is not None and not (0 <= given < math.inf)
    ]


def is_blank(value: Any) -> bool:
    """True for an absent value (None, NA, NaN, empty text): no measurement, nothing to reject."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def validate_rows(name: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows (dicts by column) as a frame of their canonical table, validated (`validate_table`)."""
    return validate_table(name, pd.DataFrame(rows, columns=list(load_tables()[name].columns)))


def validate_table(name: str, frame: pd.DataFrame, unique_keys: bool = True) -> pd.DataFrame:
    """Validate (and coerce) a frame against its canonical table; ValidationError lists the failures."""
    try:
        return _validated(pandera_schema(name, unique_keys), frame)
    except pa.errors.SchemaErrors as exc:
        raise _table_error(name, exc.failure_cases) from None


def rows_breaking_rules(name: str, frame: pd.DataFrame) -> dict[int, list[str]]:
    """The reasons of each row (by position) that breaks a column rule of its canonical table; {} when none does.

    Keys may repeat (rows of several pages of a run). ValidationError when the table itself is wrong (a column
    missing or of the wrong type): no row can be singled out then.
    """
    cases = _rule_failures(name, frame)
    if cases is None:
        return {}
    if cases["index"].isna().any():
        raise _table_error(name, cases)
    reasons: dict[int, list[str]] = {}
    for index, reason in _row_failures(cases):
        reasons.setdefault(int(index), []).append(reason)
    return reasons


def _rule_failures(name: str, frame: pd.DataFrame) -> pd.DataFrame | None:
    """pandera's failure cases of the rows of a frame of a canonical table against its rules of one row (its schema
    without one row per key), by row position; None when every row passes."""
    try:
        _validated(pandera_schema(name, unique_keys=False), frame)
    except pa.errors.SchemaErrors as exc:
        return exc.failure_cases
    return None


def _validated(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    """`schema.validate(frame, lazy=True)` of the frame's rows by position: the frame as coerced, SchemaErrors with
    every failure where a rule is broken. A frame that needs no coercion (Arrow rows converted by `arrow_frame`) is
    first put through pandera's checks alone (`_keeps_rules`): pandera's whole validation, 10-17 ms a batch however
    few its rows (its coercion and failure reports, column by column), runs only where one fails, to say which rows
    and why."""
    frame = frame.reset_index(drop=True)
    return frame if _keeps_rules(schema, frame) else schema.validate(frame, lazy=True)


def _keeps_rules(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> bool:
    """True when `frame` has `schema`'s columns of its dtypes (nothing to coerce) and keeps each of its rules: no
    missing value where a column is not nullable, and every check of a column and of the whole frame passed, called
    as pandera's validation calls it. False where a rule fails or a check raises, and for a schema with rules this
    does not run (`_only_checks`): pandera's validation then says what fails."""
    columns = schema.columns
    if not _only_checks(schema) or len(frame.columns) != len(columns) or set(frame.columns) != set(columns):
        return False
    try:
        for name, column in columns.items():
            values = frame[name]
            if not _of_dtype(values, column.dtype) or (not column.nullable and values.hasnans):
                return False
            if not all(bool(check(frame, name).check_passed) for check in column.checks):
                return False
        return all(bool(check(frame).check_passed) for check in schema.checks)
    except Exception:  # (a check that raises fails in pandera's validation, which says so)
        return False


def _of_dtype(values: pd.Series, dtype: Any) -> bool:
    """True when `values` are of exactly the pandas dtype of pandera's `dtype` (a column declared without one: any),
    which coercing leaves as they are; pandera's check of a dtype takes others too, which it coerces (numpy's int64
    for Int64, pandas' Float64 or Arrow's double for float64)."""
    return dtype is None or values.dtype == dtype.type


def _only_checks(schema: pa.DataFrameSchema) -> bool:
    """True when validating with `schema` is coercing to its dtypes and checking its columns (nullability and
    checks) and the whole frame (checks): no unique values or column names, index, parsers, defaults, added,
    dropped, ordered or regex-matched columns."""
    plain_columns = all(
        column.required
        and column.default is None
        and not (column.unique or column.regex or column.parsers)
        and not column.drop_invalid_rows
        for column in schema.columns.values()
    )
    extras = (schema.unique, schema.unique_column_names, schema.add_missing_columns, schema.index, schema.parsers)
    extras += (schema.dtype, schema.drop_invalid_rows, schema.ordered)
    return schema.strict is True and plain_columns and not any(extra for extra in extras)


def _table_error(name: str, cases: pd.DataFrame, count: int | None = None) -> ValidationError:
    """The failures of a table check, summed up (at most five kinds, one example each); `count`: how many failed in
    all, where `cases` holds examples only."""
    summary = "; ".join(
        f"{row.column or 'table'}: {row.check} (e.g. {row.failure_case!r})"
        for row in cases.drop_duplicates(["check"]).head(5).itertuples()
    )
    return ValidationError(f"{name}: {len(cases) if count is None else count} schema failure(s): {summary}")


def arrow_frame(table: pyarrow.Table) -> pd.DataFrame:
    """An Arrow table of canonical rows as the frame `validate_table` checks, converted straight to its dtypes."""
    return table.to_pandas(types_mapper=pandas_dtype)


VALIDATION_BATCH_ROWS = 100_000  # rows of a table `check_store_tables` checks at a time


@dataclass
class StoreCheck:
    """What `check_store_tables` found: every problem (none: the tables are valid), and the rows of each table."""

    problems: list[str]
    rows: dict[str, int]


def check_store_tables(store: Store, batch_rows: int = VALIDATION_BATCH_ROWS) -> StoreCheck:
    """Every schema problem of a store's tables (their views), plus values whose record is missing: one line per
    table with problems, as `validate_table` words them, then one per table of values.

    The rules of one row (pandera's schema without one row per key: its check of whole rows compares each row's
    unit and value with its own property) are checked `batch_rows` rows at a time, failures summed over the
    batches, so pandas holds a batch, whatever the store's size (what DuckDB holds to run the views is its own). One
    row per key needs no check: the views give each key's latest row (and every column declared unique is its
    table's key). A materials row for each value's record is checked in DuckDB SQL.
    """
    problems, rows = [], {}
    for name in load_tables():
        failures = _Failures()
        rows[name] = 0
        for frame in store.read_batches(f"SELECT * FROM {name}", rows=batch_rows):
            rows[name] += len(frame)
            failures.add(_rule_failures(name, frame))
        if failures.count:
            problems.append(str(_table_error(name, pd.DataFrame(list(failures.examples.values())), failures.count)))
    return StoreCheck(problems + _orphans(store), rows)


@dataclass
class _Failures:
    """A table's failures over its batches: how many, and the first failure case of each check. A failure of the
    whole table (of no row: a column missing) counts once, not once a batch."""

    rows: int = 0
    examples: dict[str, dict] = field(default_factory=dict)
    of_table: set[tuple] = field(default_factory=set)  # (column, check, repr of the failure case)

    @property
    def count(self) -> int:
        return self.rows + len(self.of_table)

    def add(self, cases: pd.DataFrame | None) -> None:
        """Count pandera's failure cases of a batch (`_rule_failures`)."""
        if cases is None:
            return
        of_rows = cases["index"].notna()
        self.rows += int(of_rows.sum())
        of_table = cases[~of_rows]
        shown = of_table["failure_case"].map(repr)
        self.of_table.update(zip(of_table["column"], of_table["check"], shown, strict=True))
        for case in cases.drop_duplicates(["check"]).to_dict("records"):
            self.examples.setdefault(case["check"], case)


def _orphans(store: Store) -> list[str]:
    """A problem for each table of rows of records (`children_of` materials) with record ids no materials row has."""
    link = table_spec("materials").primary_key[0]
    children = children_of("materials")
    ids = " UNION ALL ".join(f"SELECT DISTINCT '{name}' AS child, {link} FROM {name}" for name in children)
    found = store.read(
        f"SELECT child, count(*) AS n, min({link}) AS example FROM ({ids}) AS c "
        f"WHERE NOT EXISTS (SELECT 1 FROM materials AS m WHERE m.{link} = c.{link}) GROUP BY child"
    ).set_index("child")
    return [
        f"{name}: {found.n[name]} {link}(s) with no materials row, e.g. {found.example[name]}"
        for name in children
        if name in found.index
    ]
