"""Declarative field maps (connectors/*.yaml and lab mappings): source field -> property, unit, method.

A value's method is its field's `method`, else its record's (its own, else its catalog entry's `method`, else the
map's). A connector's field may instead give a `method_qualifier` that the vocabulary declares (schemas/methods.yaml):
its values are by the record's method so qualified, 'PBE+U (AEL, VRH)' of a PBE+U record (AFLOW's AEL runs with the
entry's own settings).
A lab mapping's column may instead read its method, temperature and pressure from other columns of its row
(`method_field`, `temperature_field`, `pressure_field`), and its values' uncertainties (`uncertainty_field`); a
connector's field may not.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pydantic

from matreg.catalog import Provenance, Source
from matreg.errors import ConfigError
from matreg.numbers import parse_number
from matreg.paginate import dig
from matreg.resources import project_path
from matreg.schema import PROPERTIES, canonical_method, load_methods, load_vocabulary
from matreg.sources.base import Attribution, RawValue
from matreg.units import declared_unit
from matreg.yamlio import load_model, problem_in

logger = logging.getLogger(__name__)


class FieldSpec(pydantic.BaseModel, extra="forbid"):
    """How one source field reads: its property (default: the field name as an alias) and unit; its method and
    provenance where they are not the map's (or lab mapping's) own. A lab mapping's column may read its method,
    temperature, pressure or uncertainty from a column of its row (`ROW_FIELDS`)."""

    property: str | None = None
    unit: str | None = None
    unit_field: str | None = None
    method: str | None = None
    method_field: str | None = None  # a lab row's column naming its value's method (a blank cell: as no `method`)
    provenance: Provenance | None = None
    temperature_K: float | None = None
    temperature_field: str | None = None
    temperature_unit: str = "K"  # of the temperature_field's cells ('degC': a column in °C)
    pressure_Pa: float | None = None
    pressure_field: str | None = None
    # of the pressure_field's cells ('GPa'); None for Pa, not a default 'Pa', so that a mapping without one is
    # recorded as before in fetch_runs (whose record of it tells a file's past imports by the same mapping)
    pressure_unit: str | None = None
    # a lab row's column of its value's standard uncertainty, in the value's unit (a blank cell: none stated)
    uncertainty_field: str | None = None

    @pydantic.model_validator(mode="after")
    def _one_unit(self) -> FieldSpec:
        if (self.unit is None) == (self.unit_field is None):
            raise ValueError("give exactly one of 'unit' or 'unit_field'")
        return self

    @pydantic.field_validator("unit")
    @classmethod
    def _a_unit(cls, unit: str | None) -> str | None:
        if unit is not None:
            declared_unit(unit)
        return unit

    @pydantic.field_validator("temperature_unit")
    @classmethod
    def _a_temperature_unit(cls, unit: str) -> str:
        if declared_unit(unit).dimensionality != {"[temperature]": 1}:
            raise ValueError(f"temperature_unit '{unit}' is no unit of temperature (K, degC, degF)")
        return unit

    @pydantic.field_validator("pressure_unit")
    @classmethod
    def _a_pressure_unit(cls, unit: str | None) -> str | None:
        if unit is not None and declared_unit(unit).dimensionality != declared_unit("Pa").dimensionality:
            raise ValueError(f"pressure_unit '{unit}' is no unit of pressure (Pa, GPa, bar, kbar, atm)")
        return unit

    @pydantic.model_validator(mode="after")
    def _one_pressure(self) -> FieldSpec:
        if self.pressure_Pa is not None and self.pressure_field is not None:
            raise ValueError("give at most one of 'pressure_Pa' or 'pressure_field'")
        if self.pressure_unit is not None and self.pressure_field is None:
            raise ValueError("pressure_unit is the unit of a pressure_field (pressure_Pa is in pascals)")
        return self

    @pydantic.model_validator(mode="after")
    def _one_method(self) -> FieldSpec:
        if self.method is not None and self.method_field is not None:
            raise ValueError("give at most one of 'method' or 'method_field'")
        return self

    @pydantic.model_validator(mode="after")
    def _one_temperature(self) -> FieldSpec:
        if self.temperature_K is not None and self.temperature_field is not None:
            raise ValueError("give at most one of 'temperature_K' or 'temperature_field'")
        if self.temperature_unit != "K" and self.temperature_field is None:
            raise ValueError("temperature_unit is the unit of a temperature_field (temperature_K is in kelvin)")
        return self


# a FieldSpec's keys naming a lab row's column
ROW_FIELDS = ("temperature_field", "pressure_field", "method_field", "uncertainty_field")


class SourceFieldSpec(FieldSpec, extra="forbid"):
    """A field of a connector's map: a FieldSpec that may qualify its record's method instead of naming one, and
    that reads no other field for its value's conditions, method or uncertainty (`ROW_FIELDS`:
    `FieldMap.read_values` reads none, and would drop them)."""

    method_qualifier: str | None = None

    @pydantic.model_validator(mode="after")
    def _no_row_fields(self) -> SourceFieldSpec:
        for key in ROW_FIELDS:
            if getattr(self, key) is not None:
                raise ValueError(
                    f"{key} is a lab mapping's: a connector's field map reads a field's conditions and method from "
                    "the map (temperature_K, pressure_Pa, method or method_qualifier), and no uncertainty, not from "
                    "another field"
                )
        return self

    @pydantic.field_validator("method_qualifier")
    @classmethod
    def _a_declared_qualifier(cls, qualifier: str | None) -> str | None:
        declared = load_methods().qualifiers
        if qualifier is not None and qualifier not in declared:
            raise ValueError(
                f"method_qualifier '{qualifier}' is not a qualifier of the method vocabulary "
                f"(schemas/methods.yaml: {', '.join(declared) or 'none'})"
            )
        return qualifier

    @pydantic.model_validator(mode="after")
    def _qualifies_the_records_method(self) -> SourceFieldSpec:
        if self.method_qualifier is not None and (self.method is not None or self.provenance is not None):
            raise ValueError("a method_qualifier qualifies the record's method: give no 'method' or 'provenance'")
        return self


class FieldMap(pydantic.BaseModel, extra="forbid"):
    """A source's field map: the method of records naming none, its value fields, and the fields read otherwise.

    Field names are dotted paths into a JSON record ('results.properties.electronic.band_gap.0.value'). A record's
    provenance is its catalog entry's (required there: one connector serves DFT and experimental entries, OPTIMADE's);
    the map's `provenance`, optional, says what the source's records are and decides nothing (a field's `provenance`
    is its values' own).
    """

    source: str
    provenance: Provenance | None = None  # decides nothing: the catalog entry's is the records' (another: warned of)
    method: str | None = None
    fields: dict[str, SourceFieldSpec]
    other_fields: list[str] = []
    missing_values: list[str] = []

    def read(self, record: dict[str, Any], record_method: str | None = None) -> Reading:
        """The record's values for every mapped field that is present (a null or a missing marker gives none), and
        the mapped fields it does not carry: a key missing on the field's path, not a value given as null (nor a path
        that ends at a null or a list on the way). A field no record of a run carries is schema drift: the source
        renamed or dropped it. Each field's path is dug once.

        `record_method` is the record's method, which a field's `method_qualifier` qualifies (None: the map's)."""
        values = []
        absent = []
        missing = self.missing
        record_method = record_method or self.method
        readers = self._readers.fields
        # each reader unpacked, its RawValue given by position: a fifth cheaper a record than attributes and keywords
        for field, key, path, prop, unit, unit_path, temperature, pressure, own, qualifier, provenance in readers:
            value = record.get(key, _ABSENT) if key is not None else _find(record, path)
            if value is _ABSENT:
                absent.append(field)
                continue
            if value is None or (type(value) in _MARKER_TYPES and value in missing):  # is_missing, inlined
                continue
            unit, problem = (unit, None) if unit_path is None else self._unit_of(record, unit_path)
            method = _field_method(own, qualifier, record_method)
            values.append(RawValue(prop, value, unit, temperature, pressure, method, problem, provenance, field))
        return Reading(values, absent)

    def read_values(self, record: dict[str, Any], record_method: str | None = None) -> list[RawValue]:
        """The record's values for every mapped field that is present (`read`)."""
        return self.read(record, record_method).values

    def _unit_of(self, record: dict[str, Any], path: tuple[str, ...]) -> tuple[str, str | None]:
        """A value's unit as its record's unit field (`path`) gives it, and why there is none (its value is rejected
        with it): the field is missing (absent, null or a missing marker), or holds no text (a list, a number)."""
        unit = dig(record, path)
        if self.is_missing(unit):
            marker = "" if unit is None else f" ({unit!r})"
            return "", f"no unit: field {'.'.join(path)} is missing{marker}"
        if not isinstance(unit, str):
            return "", f"no unit: field {'.'.join(path)} holds {unit!r}, not a unit's text"
        return unit, None

    def method_of(self, field: str, record_method: str | None = None) -> str | None:
        """The method a field's values are by: its own, else its record's (`record_method`, None: the map's) qualified
        by its `method_qualifier`; None where it gives neither (its values take their record's: `value_method`)."""
        spec = self.fields[field]
        return _field_method(spec.method, spec.method_qualifier, record_method or self.method)

    def may_give(self, field: str, prop: str, method: str | None) -> bool:
        """True where a value of property `prop` by `method` can be one the field gives: of its property, and by its
        own method, else by one its `method_qualifier` qualifies ('PW91 (AGL)' of an AGL field: whatever its record's
        method), else by any (its values take their record's method, which the map does not say)."""
        spec = self.fields[field]
        if prop != self.property_of(field):
            return False
        if spec.method is not None:
            return canonical_method(spec.method) == canonical_method(method)
        return spec.method_qualifier is None or load_methods().qualifier_of(method) == spec.method_qualifier

    def unmapped(self, record: Collection[str]) -> list[str]:
        """Top-level fields of the record (a JSON object's keys, a table's columns) this map neither maps nor lists in
        `other_fields` (schema drift). Most records have none: one set comparison tells."""
        known = self._readers.known
        return [] if known.issuperset(record) else [name for name in record if name not in known]

    def property_of(self, field: str) -> str:
        """Canonical property a field maps to; ConfigError if neither named nor a known alias."""
        name = self.fields[field].property or field
        resolved = load_vocabulary().resolve(name, self.source)
        if resolved is None:
            raise ConfigError(f"field map of '{self.source}': '{name}' is not in the property vocabulary")
        return resolved

    def is_missing(self, value: Any) -> bool:
        """True for None and for a missing marker: one of `missing_values`, or a number equal to a numeric one."""
        return value is None or (type(value) in _MARKER_TYPES and value in self.missing)

    @functools.cached_property
    def missing(self) -> frozenset[str | float]:
        """The missing markers as one set to test values against (`missing_markers`)."""
        return missing_markers(self.missing_values)

    @functools.cached_property
    def _readers(self) -> _Readers:
        """The map worked out once: this is read for every record fetched."""
        return _Readers(
            fields=[_FieldReader.of(field, self.property_of(field), spec) for field, spec in self.fields.items()],
            known=frozenset(name.split(".")[0] for name in [*self.value_fields, *self.other_fields]),
        )

    @property
    def value_fields(self) -> list[str]:
        """The fields (paths) the map reads values from: those mapped, then those their units are read from
        (`unit_field`): what a connector asks its source for, with `other_fields`."""
        units = [spec.unit_field for spec in self.fields.values() if spec.unit_field is not None]
        return [*self.fields, *units]


_MARKER_TYPES = frozenset({str, int, float})  # values a marker can equal (not bool: True == 1 is no marker)
_ABSENT = object()  # what a record lacking a mapped field's key reads as (`FieldMap.read`)


def _field_method(own: str | None, qualifier: str | None, record_method: str | None) -> str | None:
    """A field's values' method: its own, or the record's qualified ('PBE+U (AEL, VRH)' of a PBE+U record)."""
    return own if qualifier is None else f"{record_method} ({qualifier})"


def _find(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at `path` in the record (`dig`), or _ABSENT where an object on the path lacks the path's next key
    (not where the path meets a null or a list: `dig`'s value then, dug again from the record, as few paths are)."""
    node: Any = record
    for key in path:
        if not isinstance(node, dict):
            return dig(record, path)
        node = node.get(key, _ABSENT)
        if node is _ABSENT:
            return _ABSENT
    return node


def missing_markers(
    texts: list[str], read_number: Callable[[str], float | str] = parse_number
) -> frozenset[str | float]:
    """Missing-value markers as one set to test values against: the texts, and the numbers among them also as
    numbers, as `read_number` reads them ("-99999" marks -99999 and -99999.0 as sent in JSON, as well as "-99999")."""
    numbers = [number for number in map(read_number, texts) if isinstance(number, float)]
    return frozenset([*texts, *numbers])


class Reading(NamedTuple):
    """What `FieldMap.read` reads of a record: its values, and the mapped fields it lacks (schema drift)."""

    values: list[RawValue]
    absent: list[str]


class _FieldReader(NamedTuple):
    """How to read one mapped field, as plain values (a pydantic model's attributes cost more per record)."""

    field: str  # as the map names it
    key: str | None  # the field's name when it is top-level (read with dict.get), else None
    path: tuple[str, ...]
    property: str
    unit: str | None
    unit_path: tuple[str, ...] | None
    temperature_K: float | None
    pressure_Pa: float | None
    method: str | None
    qualifier: str | None  # of the record's method, which the value's method is then
    provenance: str | None

    @classmethod
    def of(cls, field: str, prop: str, spec: SourceFieldSpec) -> _FieldReader:
        path = tuple(field.split("."))
        unit_path = tuple(spec.unit_field.split(".")) if spec.unit_field is not None else None
        key = path[0] if len(path) == 1 else None
        return cls(
            field,
            key,
            path,
            prop,
            spec.unit,
            unit_path,
            spec.temperature_K,
            spec.pressure_Pa,
            spec.method,
            spec.method_qualifier,
            spec.provenance,
        )


@dataclass(frozen=True)
class _Readers:
    fields: list[_FieldReader]
    known: frozenset[str]  # top-level fields mapped, read as units or listed in other_fields


def field_map_file(connector: str) -> Path:
    """The file a connector's field map is read from: connectors/<connector>.yaml, a project's own (in the working
    directory) or matreg's."""
    return project_path(f"connectors/{connector}.yaml")


def load_field_map(connector: str, path: Path | None = None, refused: Mapping[str, str] | None = None) -> FieldMap:
    """The field map connectors/<connector>.yaml (`field_map_file`), checked against the vocabulary; ConfigError
    naming the file for a property the vocabulary lacks. `refused`: the keys a field of the connector's map may not
    give, each with why (JANAF's tables have no column of units: no `unit_field`); ConfigError naming the file, line
    and field for one given."""
    path = path or field_map_file(connector)
    field_map = load_model(path, FieldMap)
    try:
        for field in field_map.fields:
            field_map.property_of(field)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc} (a new property is declared in {PROPERTIES}: see README, Catalog)") from None
    for field, spec in field_map.fields.items():
        for key, why in (refused or {}).items():
            if getattr(spec, key) is not None:
                raise problem_in(path, FieldMap, ("fields", field, key), why)
    return field_map


def catalog_mapping(
    connector: str, name: str, source: Source, refused: Mapping[str, str] | None = None
) -> tuple[FieldMap, Attribution]:
    """What a connector maps the records of catalog source `name` with: its field map (`load_field_map` of
    `connector`, `refused` its keys it cannot honour) and the attribution the catalog entry gives every record
    (`Attribution.of_source`, with the field map's method where the entry names none). ConfigError naming the map's
    file and line where a field qualifies its record's method while neither the entry nor the map names one for
    records naming none; a warning where the map says another provenance than the entry's (which decides)."""
    path = field_map_file(connector)
    field_map = load_field_map(connector, path, refused)
    attribution = Attribution.of_source(name, source, field_map.method)
    _check_a_method_to_qualify(path, name, field_map, attribution.method)
    _warn_of_another_provenance(path, name, field_map, source.provenance)
    return field_map, attribution


def _check_a_method_to_qualify(path: Path, name: str, field_map: FieldMap, method: str | None) -> None:
    """ConfigError naming the map's file and line where a field qualifies its record's method and `method`, that of
    records naming none (catalog source `name`'s, else the map's), is None: its values would be by 'None (AGL)'."""
    qualified = [field for field, spec in field_map.fields.items() if spec.method_qualifier is not None]
    if qualified and method is None:
        raise problem_in(
            path,
            FieldMap,
            ("fields", qualified[0], "method_qualifier"),
            f"a method_qualifier ({', '.join(qualified)}) qualifies the record's method: give catalog source "
            f"'{name}' or the map a 'method' for records naming none",
        )


def _warn_of_another_provenance(path: Path, name: str, field_map: FieldMap, provenance: str) -> None:
    """A warning where the map at `path` says another provenance than catalog source `name`'s (`provenance`), which
    its records are filed as: the map's decides nothing."""
    if field_map.provenance not in (None, provenance):
        logger.warning(
            f"{path}: provenance {field_map.provenance} is not that of catalog source '{name}' ({provenance}), whose "
            f"records are filed as {provenance}: a field map's provenance decides nothing (the catalog entry's does; "
            "a field's own `provenance` files its values under another): drop the map's key or make it agree"
        )
