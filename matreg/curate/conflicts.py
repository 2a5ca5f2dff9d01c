"""Values of one material that disagree across sources and methods, and a dataset's policy for resolving them.

Values are compared in sets. Reports of conflicts (`find_conflicts`) see the values as curated (rejected ones out,
corrected ones in) and compare them per (group, property, conditions) and, unless asked to compare across methods,
method: one provenance and method (a DFT value is never of a measured value's method, even where neither names
one). A value that states no temperature (or pressure), as DFT values do, is compared there at the one
temperature (pressure) the other values of its group and property state, when they state exactly one: a DFT band gap
meets a gap measured at 300 K. Where they state several (a JANAF table at every temperature), such a value stays
apart. The spread of a set is max - min, in the property's canonical unit.

A dataset's resolution (`resolve`):
- `prefer` keeps, per group and property, the values of the best provenance or method its list names that the
  group has, at whatever conditions (all values where it names none), and says which in `resolved_by` (the values
  it leaves out: `preference_left_out`);
- `median` merges only comparable values, of one group, property, provenance, method and the same stated conditions,
  into their median (`resolved_by` 'median of N', record id 'group:<group id>', its values' records in `records`);
  values of other provenances, methods or conditions stay rows of their own (a group's DFT and measured values: two
  rows, both 'group:<group id>' where each merges several). One calculation read through two catalog sources of one
  database (MP's summary API and MP's OPTIMADE, the same `source_id`) counts once.
Its known conflicts (`resolution_conflicts`) are the values it merges or chooses between that spread beyond the
tolerance: a median's values, or every method's value at the same conditions for `prefer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from matreg.catalog import MERGED_ROW_PREFIX, MERGED_TEXTS_JOINED_BY, Resolution, preference_label
from matreg.curate.link import link_records, map_distinct
from matreg.curate.review import apply_curation, curation_log
from matreg.errors import ConfigError
from matreg.formula import atoms_per_unit
from matreg.schema import PREFERRED_BY, RESOLUTION_COLUMNS, RESOLVED_BY, load_vocabulary, value_conditions
from matreg.store import Store
from matreg.store.sql import aliased
from matreg.units import is_molar

DEFAULT_TOLERANCE = 0.1  # canonical unit of the property: 0.1 eV for band gaps, 0.1 eV/atom for formation energies
CONDITIONS = value_conditions()
CONFLICT_COLUMNS = [
    "group_id", "formula", "record_id", "source", "property", "value", "unit", "method", "provenance", *CONDITIONS,
    "spread",
]  # fmt: skip
Comparison = Literal["method", "across methods", "median"]  # which values meet in one set
COMPARED_BY_STRATEGY: dict[str, Comparison] = {"keep_all": "method", "prefer": "across methods", "median": "median"}
_SET_CONDITIONS = [f"set_{column}" for column in CONDITIONS]  # the conditions a value is compared at
_SET_COLUMNS = ["group_id", "set", *_SET_CONDITIONS, "formula_unit", "per_unit", "compared", "counted"]  # keys
_MERGED_TEXT = [
    "source", "source_id", "name", "phase", "provenance", "database_version", "citation", "license", "source_url",
]  # fmt: skip


def find_conflicts(
    store: Store,
    property: str,
    tolerance: float | None = None,
    groups: pd.DataFrame | None = None,
    across_methods: bool = False,
) -> pd.DataFrame:
    """Every curated value of `property` in a set whose spread exceeds `tolerance` (default 0.1), widest spread first.

    The store's curation log applies first. Values of different methods are compared only when
    `across_methods` is set. Molar values are reported per mole of their group's formula unit (`formula`).
    """
    if property not in load_vocabulary().root:
        raise ConfigError(f"unknown property '{property}' (see `matreg schema`)")
    values = store.read(
        "SELECT p.record_id, m.source, m.formula, m.formula_original, m.phase, p.property, p.value, p.unit, "
        f"p.uncertainty, p.original_value, p.original_unit, p.method, p.provenance, {aliased('p', CONDITIONS)}, "
        "p.run_id FROM properties p JOIN materials m USING (record_id) WHERE p.property = ?",
        [property],
    )
    curated = apply_curation(values, curation_log(store))
    linked = link_records(store, curated["record_id"]) if groups is None else groups
    return conflicts_among(curated, linked, tolerance, "across methods" if across_methods else "method")


def conflicts_among(
    curated: pd.DataFrame, groups: pd.DataFrame, tolerance: float | None = None, compared: Comparison = "method"
) -> pd.DataFrame:
    """Every value of `curated` (long rows, as curated) in a set whose spread exceeds `tolerance` (default 0.1),
    widest spread first: only these values are compared (a dataset's selection, say), in sets of `compared`
    (`_with_sets`)."""
    limit = DEFAULT_TOLERANCE if tolerance is None else tolerance
    keyed = _with_sets(curated, groups, compared)
    keyed["value"], keyed["formula"] = keyed["compared"], keyed["formula_unit"]  # as compared
    values_of_set = keyed.groupby("set")["value"]
    keyed["spread"] = values_of_set.transform("max") - values_of_set.transform("min")
    beyond = (keyed["spread"] > limit) & ~np.isclose(keyed["spread"], limit, rtol=1e-9, atol=0)  # 2.2-2.1 is 0.1
    conflicts = keyed[beyond].sort_values(
        ["spread", "group_id", "set", "value", "record_id"], ascending=[False, True, True, True, True], kind="stable"
    )
    return conflicts[CONFLICT_COLUMNS].reset_index(drop=True)


def resolution_conflicts(
    curated: pd.DataFrame, groups: pd.DataFrame, resolution: Resolution, properties: list[str]
) -> pd.DataFrame:
    """The curated values that `resolution` merges or chooses between and that disagree beyond its tolerance (of
    their property), property by property; keep_all, which does neither, compares values of one method."""
    compared = COMPARED_BY_STRATEGY[resolution.strategy]
    found = [
        conflicts_among(curated[curated["property"] == prop], groups, resolution.tolerance_of(prop), compared)
        for prop in properties
    ]
    return pd.concat(found, ignore_index=True)


def resolve(
    long: pd.DataFrame, groups: pd.DataFrame, resolution: Resolution, databases: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """A dataset's long rows resolved by the dataset's strategy (see the module's docstring), each with the rule that
    gave it (`resolved_by`; keep_all returns the rows as they are). `databases` names the source database of catalog
    sources (mp and optimade read from MP: both 'mp'): a median counts one database's `source_id` once."""
    if resolution.strategy == "keep_all":
        return long.copy()
    if resolution.strategy == "prefer":
        return _preferred(long, groups, resolution.prefer)
    medians = _medians(_with_sets(long, groups, "median"), databases or {})
    return medians[[*long.columns, *RESOLUTION_COLUMNS]]


def unmatched_preferences(values: pd.DataFrame, prefer: list[str]) -> str | None:
    """A warning naming the entries of `prefer` that match no provenance or method of `values` (they rank nothing),
    with the provenances and methods there are; None when every entry matches."""
    labels = [label for column in ("provenance", "method") for label in values[column].dropna().unique()]
    present = {preference_label(str(label)) for label in labels}
    unmatched = [name for name in prefer if preference_label(name) not in present]
    if not unmatched:
        return None
    methods = ", ".join(sorted(map(str, values["method"].dropna().unique()))) or "none"
    provenances = ", ".join(sorted(map(str, values["provenance"].dropna().unique()))) or "none"
    return (
        f"prefer: {', '.join(unmatched)} match no provenance or method of the dataset's values and rank nothing "
        f"(provenances: {provenances}; methods: {methods})"
    )


def _with_sets(values: pd.DataFrame, groups: pd.DataFrame, compared: Comparison = "method") -> pd.DataFrame:
    """The values with their group_id, `set` (the number of the set they meet in), and `compared`: the value as
    compared in its set, a molar one per mole of the group's `formula_unit`.

    Values meet per group, property and `compared`: "method" and "across methods" at shared conditions (a stated
    condition fills an unstated one, `_shared_condition`), of one provenance and method or of any; "median" of one
    provenance and method at the conditions they state.
    """
    linked = groups.set_index("record_id")
    keyed = values.assign(group_id=_group_ids(values, groups))
    keyed["formula_unit"] = values["record_id"].map(linked["formula_unit"]).fillna(values["formula_original"])
    own_atoms = map_distinct(values["formula_original"], atoms_per_unit).astype(float)
    unit_atoms = values["record_id"].map(linked["unit_atoms"]).astype(float).fillna(own_atoms)
    molar = values["unit"].map(is_molar).astype(bool)
    # A species of no atoms (the electron) is its group's formula unit: a mole of it is a mole of the unit.
    keyed["per_unit"] = (unit_atoms / own_atoms).where(molar & own_atoms.ne(0), 1.0)
    keyed["compared"] = values["value"] * keyed["per_unit"]
    for column, key in zip(CONDITIONS, _SET_CONDITIONS, strict=True):
        keyed[key] = _shared_condition(keyed, column)
    by = {
        "method": [*_SET_CONDITIONS, "provenance", "method"],  # DFT and experiment are never one method
        "across methods": _SET_CONDITIONS,
        "median": ["provenance", "method", *CONDITIONS],
    }[compared]
    keyed["set"] = keyed.groupby(["group_id", "property", *by], dropna=False, sort=False).ngroup()
    return keyed


def _group_ids(values: pd.DataFrame, groups: pd.DataFrame) -> pd.Series:
    """Each value's group (its record id where `groups` has no row of its record)."""
    return values["record_id"].map(groups.set_index("record_id")["group_id"]).fillna(values["record_id"])


def _shared_condition(keyed: pd.DataFrame, column: str) -> pd.Series:
    """The condition, unstated ones filled with the single value stated in their group and property (if single)."""
    stated = keyed.groupby(["group_id", "property"])[column]
    single = stated.transform("nunique").eq(1)
    return keyed[column].fillna(stated.transform("first").where(single))


def preference_left_out(long: pd.DataFrame, groups: pd.DataFrame, prefer: list[str]) -> pd.DataFrame:
    """The rows `prefer` leaves out (their group and property have values of a better-ranked provenance or method),
    each with its `group_id`."""
    _, kept = _preference(long, groups, prefer)
    return long.assign(group_id=_group_ids(long, groups))[~kept].reset_index(drop=True)


def _preferred(long: pd.DataFrame, groups: pd.DataFrame, prefer: list[str]) -> pd.DataFrame:
    """The rows of the best-ranked provenance or method of each group and property, whatever their conditions (a
    DFT gap never returns beside measured gaps at two temperatures), with the `prefer` entry that kept them."""
    rank, kept = _preference(long, groups, prefer)
    names = [PREFERRED_BY + name for name in prefer] + ["prefer: no value of a listed provenance or method"]
    return long.assign(**{RESOLVED_BY: rank.map(dict(enumerate(names)))})[kept].reset_index(drop=True)


def _preference(long: pd.DataFrame, groups: pd.DataFrame, prefer: list[str]) -> tuple[pd.Series, pd.Series]:
    """Each row's rank by `prefer` (`_ranks`), and whether it is the best rank of its group and property."""
    rank = _ranks(long, prefer)
    best = rank.groupby([_group_ids(long, groups), long["property"]]).transform("min")
    return rank, rank.eq(best)


def _ranks(values: pd.DataFrame, prefer: list[str]) -> pd.Series:
    """Each row's place in `prefer` by its provenance or method (whichever ranks better); unnamed rows rank last."""
    place = {preference_label(name): n for n, name in enumerate(prefer)}
    last = len(prefer)
    ranks = [
        values[column].fillna("").map(preference_label).map(place).fillna(last) for column in ("method", "provenance")
    ]
    return pd.concat(ranks, axis=1).min(axis=1).astype(int)


def _medians(keyed: pd.DataFrame, databases: Mapping[str, str]) -> pd.DataFrame:
    """One row per set, at its first row's place: a lone value as it is, several merged into their median (a molar
    one per mole of the group's formula unit, which becomes its `formula_original`), each calculation counted once
    (`_calculations`)."""
    keyed["counted"] = ~keyed.assign(calculation=_calculations(keyed, databases)).duplicated(["set", "calculation"])
    rows = keyed.drop_duplicates("set").set_index("set")
    values = keyed.groupby("set")["compared"]
    rows["spread"] = values.max() - values.min()
    rows["records"] = rows["record_id"]
    rows[RESOLVED_BY] = "median of " + keyed.groupby("set")["counted"].sum().astype(str)
    several = keyed[values.transform("size").gt(1)]
    if len(several):
        merged = _merged(several)
        rows.loc[merged.index, merged.columns] = merged
    return rows.reset_index(drop=True)


def _calculations(values: pd.DataFrame, databases: Mapping[str, str]) -> pd.Series:
    """What names each value's calculation: '<database>:<source_id>' for a source of a known database (an MP entry
    read through the mp and the optimade connector is one), else its record id (a lab file's ids name its rows only)."""
    database = values["source"].map(databases)
    calculation = database.astype(str) + ":" + values["source_id"].astype(str)  # where a database is named
    return calculation.where(database.notna(), values["record_id"])


def _merged(several: pd.DataFrame) -> pd.DataFrame:
    """The median row of each set of several values, indexed by set.

    Texts are joined, a boolean (`reviewed`) is true where it is true of every value, a median is flagged where any of
    its values is (`flags`: each flagged value's, after its record id in brackets) and its `raw_value` is the median of
    the stored values (so `value` differs from it where a correction moved the median), other columns (method,
    provenance, conditions: one set's) keep what all values share. A calculation stored twice counts once.
    """
    sets = several.groupby("set")
    counted = several[several["counted"]]
    booleans = list(several.select_dtypes("bool").columns.difference(["counted"]))  # reviewed: true of all values
    others = [column for column in several.columns if column not in {*_MERGED_TEXT, *_SET_COLUMNS, *booleans}]
    merged = sets[others].first().where(sets[others].nunique(dropna=False).eq(1))  # e.g. the unit
    merged[booleans] = sets[booleans].all()
    for column in _MERGED_TEXT:
        if column in several:
            merged[column] = sets[column].agg(_joined)
    merged["record_id"] = MERGED_ROW_PREFIX + sets["group_id"].first()
    merged["value"] = counted.groupby("set")["compared"].median()
    merged["formula"] = merged["formula_original"] = sets["formula_unit"].first()  # one formula: TeSe for Te0.5Se0.5
    merged["original_value"] = float("nan")  # a median was never received from anyone
    merged["original_unit"] = None
    if "uncertainty" in several:
        merged["uncertainty"] = float("nan")  # nor stated by anyone (its values' spread is `spread`)
    merged["records"] = sets["record_id"].agg(_joined)
    if "flags" in several:
        merged["flags"] = _flags_by_record(several)
    if "raw_value" in several:
        merged["raw_value"] = (counted["raw_value"] * counted["per_unit"]).groupby(counted["set"]).median()
    if "fetched_at" in several:
        merged["fetched_at"] = sets["fetched_at"].max()
    return merged


def _flags_by_record(several: pd.DataFrame) -> pd.Series:
    """Per set with a flagged value, the flags of its flagged values, each after its record id in brackets, joined by
    '; ' ('[lab-a:a1] A. Steward: suspect')."""
    flagged = several[several["flags"].fillna("").ne("")]
    return ("[" + flagged["record_id"] + "] " + flagged["flags"]).groupby(flagged["set"]).agg(_joined)


def _joined(values: pd.Series) -> str | None:
    """Distinct values, sorted, joined by '; ' (None when there are none)."""
    return MERGED_TEXTS_JOINED_BY.join(sorted(values.dropna().astype(str).unique())) or None
