"""Exports of catalog datasets: a selection over the store, written with a provenance sidecar."""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from matreg import __version__
from matreg.attributes import shared_values, with_attributes
from matreg.catalog import Catalog, Dataset
from matreg.defaults import check_export_format
from matreg.errors import StoreError, listed
from matreg.schema import (
    UNCERTAINTY,
    WIDE_SUFFIXES,
    load_methods,
    load_vocabulary,
    value_conditions,
    value_key,
    wide_column,
)
from matreg.sources.lab import CONDITIONS_AS_STORED
from matreg.store import CURATION_RUN_PREFIX, Store, file_sha256
from matreg.store.sql import aliased

if TYPE_CHECKING:
    from matreg.curate.release import CuratedRows  # which builds on this module's query

_ATTRIBUTION = ["source", "citation", "license", "database_version"]  # what a value is cited by
_WRITTEN = ("database_version", "citation", "license", "source_url", "fetched_at")  # of the write that made a value
# A record read from a local copy (file:///home/alice/janaf/Al-001.txt) is published by its file's name only
# (file:Al-001.txt, as a lab file's rows are): no local path goes into an export or a release.
_LOCAL_FOLDER = r"'(?i)^file://[^?#]*/'"  # (a scheme in any case: FILE:///...)
# The filters of a dataset that name what they select: the table alias and column each reads, what it calls them
_NAMED_FILTERS = {
    "sources": ("m", "source", "sources"),
    "provenance": ("p", "provenance", "provenances"),
    "methods": ("p", "method", "methods"),
}
_LISTED = 10  # the names a warning lists of a longer list


def _written_column(column: str) -> str:
    """SQL of one of a value's `_WRITTEN` columns."""
    latest = f"coalesce(w.{column}, q.{column}, m.{column})"
    return (
        f"regexp_replace({latest}, {_LOCAL_FOLDER}, 'file:') AS {column}"
        if column == "source_url"
        else f"{latest} AS {column}"
    )


_LONG_COLUMNS = (
    "m.record_id, m.source, m.source_id, m.formula, m.formula_original, m.name, m.phase, p.property, p.value, p.unit, "
    f"p.uncertainty, p.original_value, p.original_unit, p.provenance, p.method, {aliased('p', value_conditions())}, "
    "p.run_id, " + ", ".join(_written_column(column) for column in _WRITTEN)
)
# Each value's attribution is its own write's (`w`: two files of one lab dataset may cite two papers); a value
# readmitted alone, whose curation entry wrote no materials row, takes that of the write that quarantined it (`q`),
# else the record's.
_WRITES = (
    "LEFT JOIN material_writes AS w ON w.record_id = p.record_id AND w.run_id = p.run_id "
    f"LEFT JOIN (SELECT '{CURATION_RUN_PREFIX}' || c.entry_id AS run_id, q.run_id AS quarantined_by "
    "FROM curation_log c JOIN quarantine q USING (quarantine_id) WHERE c.action = 'readmit') AS r "
    "ON r.run_id = p.run_id "
    "LEFT JOIN material_writes AS q ON q.record_id = p.record_id AND q.run_id = r.quarantined_by"
)


def dataset_query(dataset: Dataset) -> tuple[str, list]:
    """SQL (and its parameters) selecting a dataset's values in long format, each with the run that wrote it (`run_id`:
    a steward's readmit, to the curation layer, which leaves it out)."""
    where, params = selection_sql(dataset)
    sql = (
        f"SELECT {_LONG_COLUMNS} FROM properties p JOIN materials m USING (record_id) {_WRITES} "
        f"WHERE {where} ORDER BY {aliased('p', value_key())}"
    )
    return sql, params


def selection_sql(dataset: Dataset) -> tuple[str, list]:
    """The SQL condition on a value `p` and its record `m` that a dataset's values meet, and its parameters."""
    where, params = ["p.property IN (SELECT unnest(?))"], [dataset.properties]
    if dataset.sources:
        where.append("m.source IN (SELECT unnest(?))")
        params.append(dataset.sources)
    if dataset.provenance:
        where.append("p.provenance IN (SELECT unnest(?))")
        params.append(list(dataset.provenance))
    if dataset.methods:
        where.append("lower(replace(p.method, ' ', '')) IN (SELECT unnest(?))")  # as Methods.selected_by folds
        params.append(load_methods().selected_by(dataset.methods))
    for condition in value_conditions():
        at = getattr(dataset, condition, None)  # (None of a condition that is no catalog key: nothing selects by it)
        if at is not None:
            where.append(f"p.{condition} BETWEEN ? AND ?")
            params.extend(_stored_between(condition, at))
    return " AND ".join(where), params


def _stored_between(condition: str, at: float) -> tuple[float, float]:
    """The least and the greatest number a value of a dataset at `at` may be stored at: those the condition's rounding
    as stored (`CONDITIONS_AS_STORED`) takes where it takes `at`, so that the selection matches conditions as review
    does (rounded alike): at 296.85 K, 296.85 as a lab import stores it and 296.84999999999997 (23.7 degC) as an older
    matreg stored it, not 296.86; at a vacuum's 1e-8 Pa, neither 3e-8 nor 0 (a pressure keeps 12 significant
    digits)."""
    as_stored = CONDITIONS_AS_STORED[condition]
    return _farthest_stored_as(as_stored, at, -1), _farthest_stored_as(as_stored, at, 1)


def _farthest_stored_as(as_stored: Callable[[float], float], at: float, way: int) -> float:
    """The farthest float from `at` that way (-1: down, 1: up) that `as_stored` takes where it takes `at` (a rounding,
    which never takes a greater number to a less one): floats 1, 2, 4, ... places from `at` until one is past it, then
    the places between the last one taken and the first past halved."""
    wanted, start = as_stored(at), _float_ordinal(at)
    near, far = 0, 1  # places from `at`: one taken to `wanted`, one not (once the doubling finds one)
    while as_stored(_ordinal_float(start + way * far)) == wanted:
        near, far = far, 2 * far
    while far - near > 1:
        middle = (near + far) // 2
        near, far = (middle, far) if as_stored(_ordinal_float(start + way * middle)) == wanted else (near, middle)
    return _ordinal_float(start + way * near)


_FLOAT_SIGN = 1 << 63  # a float's sign bit
_INFINITY = 0x7FF0_0000_0000_0000  # the bits of float infinity, its ordinal (`_float_ordinal`)


def _float_ordinal(number: float) -> int:
    """A float's place among floats, an integer: the next greater float's is one more (0.0 and -0.0 are 0)."""
    (bits,) = struct.unpack("<Q", struct.pack("<d", number))
    return -(bits - _FLOAT_SIGN) if bits >= _FLOAT_SIGN else bits


def _ordinal_float(ordinal: int) -> float:
    """The float at `ordinal` (`_float_ordinal`'s inverse); infinity past the greatest finite float."""
    ordinal = max(min(ordinal, _INFINITY), -_INFINITY)
    bits = -ordinal + _FLOAT_SIGN if ordinal < 0 else ordinal
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


# what a wide row is of: a record (as its long rows give it), provenance, method and conditions
WIDE_INDEX = (
    "record_id",
    "source",
    "formula",
    "formula_original",
    "name",
    "phase",
    "provenance",
    "method",
    *value_conditions(),
)


def to_wide(long: pd.DataFrame, properties: list[str], attributes: list[str] | None = None) -> pd.DataFrame:
    """One row per record, method and conditions, one column per property (units go in the sidecar), in the order of
    `properties` (a property the rows lack is an empty column), each followed by its values' uncertainties,
    `<property>_uncertainty` (empty where none is stated; none in rows without the column: a release of a matreg
    before it). What the curation layer says of a value follows the value columns, a column per property:
    `<property>_raw_value`, `<property>_flags`, `<property>_reviewed` (and a median's `<property>_spread`,
    `<property>_records`; a resolution's `<property>_resolved_by`), then the `attributes` columns of the records
    (matreg.attributes), each the value all the row's long rows have. Rows are the combinations `long` has (a pivot
    over every combination of the index columns would not fit in memory); of two rows of one key, the first is kept
    whole."""
    index = list(WIDE_INDEX)
    present = [column for column in WIDE_SUFFIXES if column in long.columns]
    beside = [column for column in present if column == UNCERTAINTY]  # a value's own, in the value's unit
    per_value = [column for column in present if column != UNCERTAINTY]  # curation's and a resolution's
    columns = [
        *(name for prop in properties for name in (prop, *(wide_column(prop, column) for column in beside))),
        *(wide_column(prop, column) for column in per_value for prop in properties),
    ]
    attributes = attributes or []
    if long.empty:
        return pd.DataFrame(columns=[*index, *columns, *attributes])
    keyed = long.drop_duplicates([*index, "property"])
    cells = keyed.groupby([*index, "property"], dropna=False, sort=True)[["value", *beside, *per_value]].first()
    wide = cells.unstack("property")
    wide.columns = [prop if column == "value" else wide_column(prop, column) for column, prop in wide.columns]
    wide = wide.reindex(columns=columns)
    if "reviewed" in per_value:  # True/False where the record has the value, empty where it has none
        for prop in properties:
            wide[f"{prop}_reviewed"] = wide[f"{prop}_reviewed"].astype("boolean")
    if attributes:  # the record's (a median's: those its records share), in every long row of it alike
        wide = wide.join(shared_values(keyed.groupby(index, dropna=False, sort=True)[attributes]))
    return wide.reset_index().rename_axis(columns=None)


def export_dataset(store: Store, catalog: Catalog, name: str, fmt: str, out: Path, layout: str = "long") -> dict:
    """Write dataset `name` as curated (review decisions, conflict resolution), with its records' extension
    attributes (matreg.attributes), and a `<out>.meta.json` sidecar (under strategy prefer, with `prefer`: its order
    and how many curated values it left out, of how many groups; with `attributes`, what their columns are, where
    there are some); StoreError, writing nothing, when the dataset selects no values or the curation log rejected all
    it selects."""
    check_export_format(fmt, layout)
    from matreg.curate.release import curate_dataset, preference_summary  # (the curation layer builds on this module)

    dataset = catalog.dataset(name)
    with store.snapshot():  # the rows and the sidecar's sources and runs of one state of the store
        rows = curate_dataset(store, catalog, name)
        if rows.resolved.empty:
            raise StoreError(f"{nothing_selected(name, dataset, rows.raw)}: nothing written")
        long, attributes = with_attributes(store, rows.resolved, dataset.properties)
        columns = [entry["column"] for entry in attributes]
        frame = to_wide(long, dataset.properties, columns) if layout == "wide" else long
        described = preference_summary(dataset, rows) | ({"attributes": attributes} if attributes else {})
        describe = functools.partial(_sidecar, name, dataset, rows, frame, described, Path(out).name, fmt, layout)
        return store.write_file_with_sidecar(frame, Path(out), fmt, describe)


def nothing_selected(name: str, dataset: Dataset, selected: pd.DataFrame, prop: str | None = None) -> str:
    """Why dataset `name` has no rows (of `prop`): its selection matches no stored value, or the curation log rejected
    every value it matches (`selected`, those stored values: a rejected value stays stored, left out of datasets),
    naming their records and how to see and take back the rejections."""
    selection, of = describe_selection(dataset), f" of {prop}" if prop else ""
    if selected.empty:
        return f"dataset '{name}' selects no values{of} in the store ({selection})"
    records = sorted(selected["record_id"].unique())
    named = listed(records, 3)
    values, them = ("1 stored value", "it") if len(selected) == 1 else (f"{len(selected)} stored values", "them all")
    return (
        f"dataset '{name}' selects {values}{of} ({selection}), but the curation log rejected {them} (records "
        f"{named}): `matreg history RECORD_ID` shows who rejected what and why, and `matreg review accept RECORD_ID` "
        "(with --property for a value) takes a rejection back"
    )


def selection_warnings(
    store: Store, name: str, dataset: Dataset, raw: pd.DataFrame, curated: pd.DataFrame, said_by_caller: str | None
) -> list[str]:
    """What of dataset `name`'s selection its rows lack: the entries of `sources`, `provenance` and `methods` that
    select none of its stored values (`raw`), with what its other filters select (`_unmatched_entries`), and each
    property with no value after the curation log (`curated`; `nothing_selected` says why), but `said_by_caller`,
    whose lack of values the caller's error states."""
    unmatched = [_unmatched_entries(store, name, dataset, raw, key) for key in _NAMED_FILTERS]
    empty = [p for p in dataset.properties if p != said_by_caller and not (curated["property"] == p).any()]
    return [
        *filter(None, unmatched),
        *(nothing_selected(name, dataset, raw[raw["property"] == prop], prop) for prop in empty),
    ]


def _unmatched_entries(store: Store, name: str, dataset: Dataset, raw: pd.DataFrame, key: str) -> str | None:
    """A warning naming the entries of filter `key` that select none of the dataset's stored values `raw`, with that
    column's values among those the dataset's other filters select (a misspelt name's right spelling); None if every
    entry selects some."""
    table, column, plural = _NAMED_FILTERS[key]
    entries, present = getattr(dataset, key) or [], set(raw[column].dropna())
    if key == "methods":  # a method selects its qualified ones and aliases, as the query does
        unmatched = load_methods().selecting_none(entries, present)
    else:
        unmatched = [entry for entry in entries if entry not in present]
    if not unmatched:
        return None
    where, params = selection_sql(dataset.model_copy(update={key: None}))
    others = store.read(
        f"SELECT DISTINCT {table}.{column} AS name FROM properties p JOIN materials m USING (record_id) "
        f"WHERE {where} AND {table}.{column} IS NOT NULL ORDER BY 1",
        params,
    )["name"].tolist()
    select = "selects" if len(unmatched) == 1 else "select"
    return (
        f"dataset '{name}': {key}: {', '.join(unmatched)} {select} no value (of the values its other filters select, "
        f"the {plural} are: {listed(others, _LISTED)})"
    )


SELECTION_KEYS = ("properties", "sources", "provenance", "methods", *value_conditions())


def describe_selection(dataset: Dataset) -> str:
    """What a dataset selects, in words: its properties, and each filter it sets."""
    return selection_text(dataset.model_dump(include=set(SELECTION_KEYS)))


def selection_text(selection: dict) -> str:
    """A dataset's selection (its catalog fields, as a release manifest keeps them) in words: 'properties band_gap;
    provenance experimental' (filters not set left out)."""
    said = [
        f"{key} {', '.join(map(str, value)) if isinstance(value, list) else value}"
        for key in SELECTION_KEYS
        if (value := selection.get(key)) is not None
    ]
    return "; ".join(said)


def _sidecar(
    name: str,
    dataset: Dataset,
    rows: CuratedRows,
    frame: pd.DataFrame,
    described: dict,
    file: str,
    fmt: str,
    layout: str,
    data: Path,
) -> dict:
    """The sidecar of a store export to file name `file` (its bytes now in `data`): provenance, sources (`attribution`)
    and licences of the values the rows carry (a median's own, each), and `described`: what `prefer` left out, what
    the attribute columns are."""
    long, carried = rows.resolved, rows.carried
    return {
        "dataset": name,
        "version": dataset.version,  # the catalog's: the file is the store as it is now, not that release
        "released": False,
        "description": dataset.description,
        "file": file,
        "format": fmt,
        "layout": layout,
        "rows": int(len(frame)),
        "records": int(long["record_id"].nunique()),
        "sha256": file_sha256(data),
        "units": value_units(dataset.properties, long),
        "provenance": distinct(carried["provenance"]),
        "sources": attribution(carried),
        "licenses": distinct(carried["license"]),
        **described,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "matreg_version": __version__,
    }


def value_units(properties: list[str], values: pd.DataFrame) -> dict[str, str]:
    """The canonical unit of each of `properties` that `values` (long rows) have values of, in their order (one with
    none is in the selection's warnings, `selection_warnings`)."""
    vocabulary, present = load_vocabulary().root, set(values["property"])
    return {prop: vocabulary[prop].unit for prop in properties if prop in present}


def attribution(values: pd.DataFrame, runs: bool = False) -> list[dict]:
    """Each distinct source, citation, licence and database version of the values, with `n`, how many values carry
    it (two files of one lab dataset may cite two papers under two licences); with `runs`, also the `run_ids` that
    wrote them (the values' `run_id` column)."""
    if not len(values):
        return []
    grouped = values.groupby(_ATTRIBUTION, dropna=False, sort=True)
    cited = grouped.size().rename("n").reset_index()
    if runs:
        cited["run_ids"] = grouped["run_id"].agg(lambda ids: sorted(ids.dropna().unique().tolist())).to_numpy()
    return json.loads(cited.to_json(orient="records"))


def distinct(column: pd.Series) -> list[str]:
    """The distinct texts of a column, sorted (empty cells left out)."""
    return sorted(str(value) for value in column.dropna().unique())
