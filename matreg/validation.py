"""All schema rules: harmonize a mapped record into canonical rows or quarantine reasons; validate tables."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
import pandas as pd
import pandera.pandas as pa
import pyarrow

from matreg.errors import UnitError, ValidationError
from matreg.formula import Formula, parse_formula
from matreg.schema import (
    PropertySpec,
    extension_schema,
    load_extension,
    load_tables,
    load_vocabulary,
    pandas_dtype,
    pandera_schema,
)
from matreg.sources.base import Attribution, RawValue, SourceRecord
from matreg.units import AtomCounts, convert


@dataclass
class Rejection:
    """An input that does not enter the store, with its raw payload and why."""

    item: str
    raw: Any
    reasons: list[str]


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


def harmonize(record: SourceRecord, attribution: Attribution, stamp: RunStamp) -> CanonicalRecord:
    """Turn a mapped record into canonical rows; raise FormulaError if its formula is unreadable."""
    formula = parse_formula(record.formula)
    canonical = CanonicalRecord(_material_row(record, formula, attribution, stamp))
    counts = AtomCounts(per_formula_unit=formula.atoms_per_formula_unit, per_cell=record.nsites)
    for raw in record.values:
        row_or_reasons = _value_row(raw, canonical.material, attribution, counts)
        if isinstance(row_or_reasons, dict):
            canonical.values.append(row_or_reasons)
        else:
            method = f"[{raw.method}]" if raw.method else ""
            conditions = f"@{raw.temperature_K:g}K" if raw.temperature_K else ""
            item = f"{record.source_id}:{raw.property}{method}{conditions}"
            canonical.rejected.append(Rejection(item, asdict(raw), row_or_reasons))
    return canonical


def _material_row(record: SourceRecord, formula: Formula, attribution: Attribution, stamp: RunStamp) -> dict:
    return {
        "record_id": f"{attribution.source}:{record.source_id}",
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
        "method": record.method or attribution.method,
        "notes": record.notes,
        "database_version": attribution.database_version,
        "citation": attribution.citation,
        "license": attribution.license,
        "run_id": stamp.run_id,
        "fetched_at": stamp.fetched_at,
    }


def _value_row(raw: RawValue, material: dict, attribution: Attribution, counts: AtomCounts) -> dict | list[str]:
    """A properties row in the canonical unit, or the reasons the value is rejected."""
    resolved = _resolve_property(raw.property, attribution.source)
    if resolved is None:
        return [f"unknown property '{raw.property}'"]
    prop, spec = resolved
    number = parse_number(raw.value)
    if isinstance(number, str):
        return [number]
    if (raw.temperature_K or 0) < 0 or (raw.pressure_Pa or 0) < 0:
        return [f"{name} {given:g} is negative" for name, given in _conditions(raw) if given is not None and given < 0]
    try:
        value = convert(number, raw.unit, spec.unit, counts)
    except UnitError as exc:
        return [str(exc)]
    low, high = spec.bounds
    if not low <= value <= high:
        return [f"{prop} = {value:g} {spec.unit} is outside the physical bounds [{low:g}, {high:g}]"]
    return {
        "record_id": material["record_id"],
        "property": prop,
        "value": value,
        "unit": spec.unit,
        "original_value": number,
        "original_unit": raw.unit,
        "provenance": material["provenance"],
        "method": raw.method or material["method"],
        "temperature_K": raw.temperature_K,
        "pressure_Pa": raw.pressure_Pa,
        "source": attribution.source,
        "run_id": material["run_id"],
    }


@lru_cache(maxsize=1024)
def _resolve_property(name: str, source: str) -> tuple[str, PropertySpec] | None:
    """The canonical property a source calls `name`, with its vocabulary entry (resolved once per name)."""
    vocabulary = load_vocabulary()
    prop = vocabulary.resolve(name, source)
    return (prop, vocabulary.root[prop]) if prop is not None else None


def check_attributes(extension: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[Any, list[str]]]:
    """Validate (and coerce) one extension row per record at once: the valid rows, and each failing row's reasons."""
    schema = extension_schema(extension)
    frame = frame.reindex(columns=list(schema.columns))  # an unmapped (nullable) column is simply empty
    reasons: dict[Any, list[str]] = {}
    while True:  # a column that fails coercion hides its other checks: re-check the rows left until they pass
        try:
            return schema.validate(frame.drop(index=list(reasons)), lazy=True), reasons
        except pa.errors.SchemaErrors as exc:
            failures = _row_failures(exc.failure_cases)
            if not failures:
                raise ValidationError(f"extension {extension}: {exc.failure_cases.iloc[0].to_dict()}") from None
            for index, reason in failures:
                reasons.setdefault(index, []).append(reason)


def _row_failures(cases: pd.DataFrame) -> list[tuple[Any, str]]:
    """(row index, reason) of each failed value; column-wide errors and dtype repeats of coercion failures skipped."""
    cases = cases[cases["index"].notna() & ~cases["check"].str.startswith("dtype(")]
    return [(case.index, _reason(case.column, case.check, case.failure_case)) for case in cases.itertuples()]


def _reason(column: str, check: str, value: Any) -> str:
    """'column: check failed for value', or 'column: not_nullable' for a missing value."""
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


def _conditions(raw: RawValue) -> list[tuple[str, float | None]]:
    return [("temperature_K", raw.temperature_K), ("pressure_Pa", raw.pressure_Pa)]


def parse_number(value: Any) -> float | str:
    """A finite float, or the reason the value is not one."""
    if type(value) is float and math.isfinite(value):  # what JSON sources give: no text round trip
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        return f"non-numeric value '{value}'"
    if not math.isfinite(number):
        return f"not a finite number: '{value}'"
    return number


def is_blank(value: Any) -> bool:
    """True for an absent value (None, NA, NaN, empty text): no measurement, nothing to reject."""
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def validate_table(name: str, frame: pd.DataFrame, unique_keys: bool = True) -> pd.DataFrame:
    """Validate (and coerce) a frame against its canonical table; ValidationError lists the failures."""
    try:
        return pandera_schema(name, unique_keys).validate(frame.reset_index(drop=True), lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        summary = "; ".join(
            f"{row.column or 'table'}: {row.check} (e.g. {row.failure_case!r})"
            for row in cases.drop_duplicates(["check"]).head(5).itertuples()
        )
        raise ValidationError(f"{name}: {len(cases)} schema failure(s): {summary}") from None


def arrow_frame(table: pyarrow.Table) -> pd.DataFrame:
    """An Arrow table of canonical rows as the frame `validate_table` checks, converted straight to its dtypes."""
    return table.to_pandas(types_mapper=pandas_dtype)


def check_store_tables(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Every schema problem of a store's tables, plus values whose record is missing (empty list: valid)."""
    problems = []
    for name in load_tables():
        try:
            validate_table(name, tables[name])
        except ValidationError as exc:
            problems.append(str(exc))
    for name in ("properties", "record_attributes"):
        orphans = set(tables[name]["record_id"]) - set(tables["materials"]["record_id"])
        if orphans:
            problems.append(f"{name}: {len(orphans)} record_id(s) with no materials row, e.g. {sorted(orphans)[0]}")
    return problems


_RAW_JSON = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def to_json(raw: Any) -> str:
    """Raw payload as compact JSON text, keys sorted (NaN as null; anything else not JSON-native as a string)."""
    return orjson.dumps(raw, default=str, option=_RAW_JSON).decode()
