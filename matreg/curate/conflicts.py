"""Values of one material that disagree across sources and methods, and a dataset's policy for resolving them.

Values are compared per (group, property, conditions). A value that states no temperature (or pressure), as DFT
values do, is compared at the one temperature (pressure) the other values of its group and property state, when
they state exactly one: a DFT band gap meets a gap measured at 300 K. Where they state several (a JANAF table at every
temperature), such a value stays apart. The spread of a set is max - min, in the property's canonical unit.

Reports of conflicts (`find_conflicts`) see the values as curated (rejected ones out, corrected ones in) and compare
values of one method unless asked to compare across methods; a resolution always chooses across methods.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from matreg.catalog import Resolution
from matreg.curate.link import atoms_per_unit, link_records
from matreg.curate.review import apply_curation, curation_log
from matreg.errors import ConfigError
from matreg.schema import load_vocabulary
from matreg.store import Store
from matreg.units import is_molar

DEFAULT_TOLERANCE = 0.1  # canonical unit of the property: 0.1 eV for band gaps, 0.1 eV/atom for formation energies
CONDITIONS = ["temperature_K", "pressure_Pa"]
CONFLICT_COLUMNS = [
    "group_id", "formula", "record_id", "source", "property", "value", "unit", "method", "provenance",
    "temperature_K", "pressure_Pa", "spread",
]  # fmt: skip
_SET_CONDITIONS = [f"set_{column}" for column in CONDITIONS]  # the conditions a value is compared at
_SET_COLUMNS = ["group_id", "set", *_SET_CONDITIONS, "formula_unit", "per_unit", "compared"]  # by _with_sets
_MERGED_TEXT = [
    "source", "source_id", "name", "phase", "provenance", "database_version", "citation", "license", "source_url",
]  # fmt: skip


def find_conflicts(
    store: Store,
    property: str,
    tolerance: float | None = None,
    groups: pd.DataFrame | None = None,
    across_methods: bool = False,
    log: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every curated value of `property` in a set whose spread exceeds `tolerance` (default 0.1), widest spread first.

    The curation log (`log`, default the store's) applies first. Values of different methods are compared only when
    `across_methods` is set. Molar values are reported per mole of their group's formula unit (`formula`).
    """
    if property not in load_vocabulary().root:
        raise ConfigError(f"unknown property '{property}' (see `matreg schema`)")
    values = store.query(
        "SELECT p.record_id, m.source, m.formula_original, p.property, p.value, p.unit, p.method, p.provenance, "
        "p.temperature_K, p.pressure_Pa FROM properties p JOIN materials m USING (record_id) WHERE p.property = ?",
        [property],
    )
    curated = apply_curation(values, curation_log(store) if log is None else log)
    linked = link_records(store) if groups is None else groups
    return conflicts_among(curated, linked, tolerance, across_methods)


def conflicts_among(
    curated: pd.DataFrame, groups: pd.DataFrame, tolerance: float | None = None, across_methods: bool = False
) -> pd.DataFrame:
    """Every value of `curated` (long rows, as curated) in a set whose spread exceeds `tolerance` (default 0.1),
    widest spread first: only these values are compared (a dataset's selection, say)."""
    limit = DEFAULT_TOLERANCE if tolerance is None else tolerance
    keyed = _with_sets(curated, groups, per_method=not across_methods)
    keyed["value"], keyed["formula"] = keyed["compared"], keyed["formula_unit"]  # as compared
    values_of_set = keyed.groupby("set")["value"]
    keyed["spread"] = values_of_set.transform("max") - values_of_set.transform("min")
    beyond = (keyed["spread"] > limit) & ~np.isclose(keyed["spread"], limit, rtol=1e-9, atol=0)  # 2.2-2.1 is 0.1
    conflicts = keyed[beyond].sort_values(
        ["spread", "group_id", "set", "value", "record_id"], ascending=[False, True, True, True, True], kind="stable"
    )
    return conflicts[CONFLICT_COLUMNS].reset_index(drop=True)


def resolve(long: pd.DataFrame, groups: pd.DataFrame, resolution: Resolution) -> pd.DataFrame:
    """A dataset's long rows resolved per (group, property, conditions) by the dataset's strategy."""
    if resolution.strategy == "keep_all":
        return long.copy()
    keyed = _with_sets(long, groups)
    if resolution.strategy == "prefer":
        rank = _ranks(keyed, resolution.prefer)
        return long[rank.eq(rank.groupby(keyed["set"]).transform("min"))].reset_index(drop=True)
    return _medians(keyed)[[*long.columns, "spread", "records"]]


def _with_sets(values: pd.DataFrame, groups: pd.DataFrame, per_method: bool = False) -> pd.DataFrame:
    """The values with their group_id, `set` (the number of the (group, property, conditions) they meet in), and
    `compared`: the value as compared in its set, a molar one per mole of the group's `formula_unit`.

    With `per_method`, values of different methods meet in different sets.
    """
    linked = groups.set_index("record_id")
    keyed = values.assign(group_id=values["record_id"].map(linked["group_id"]).fillna(values["record_id"]))
    keyed["formula_unit"] = values["record_id"].map(linked["formula_unit"]).fillna(values["formula_original"])
    own_atoms = values["formula_original"].map(atoms_per_unit).astype(float)
    unit_atoms = values["record_id"].map(linked["unit_atoms"]).astype(float).fillna(own_atoms)
    molar = values["unit"].map(is_molar).astype(bool)
    keyed["per_unit"] = (unit_atoms / own_atoms).where(molar, 1.0)
    keyed["compared"] = values["value"] * keyed["per_unit"]
    for column, key in zip(CONDITIONS, _SET_CONDITIONS, strict=True):
        keyed[key] = _shared_condition(keyed, column)
    by = ["group_id", "property", *_SET_CONDITIONS, *(["method"] if per_method else [])]
    keyed["set"] = keyed.groupby(by, dropna=False, sort=False).ngroup()
    return keyed


def _shared_condition(keyed: pd.DataFrame, column: str) -> pd.Series:
    """The condition, unstated ones filled with the single value stated in their group and property (if single)."""
    stated = keyed.groupby(["group_id", "property"])[column]
    single = stated.transform("nunique").eq(1)
    return keyed[column].fillna(stated.transform("first").where(single))


def _ranks(keyed: pd.DataFrame, prefer: list[str]) -> pd.Series:
    """Each row's place in `prefer` by its provenance or method (whichever ranks better); unnamed rows rank last."""
    place = {name.casefold(): n for n, name in enumerate(prefer)}
    last = len(prefer)
    ranks = [keyed[column].fillna("").str.casefold().map(place).fillna(last) for column in ("method", "provenance")]
    return pd.concat(ranks, axis=1).min(axis=1)


def _medians(keyed: pd.DataFrame) -> pd.DataFrame:
    """One row per set, at its first row's place: a lone value as it is, several merged into their median (a molar
    one per mole of the group's formula unit, which becomes its `formula_original`)."""
    rows = keyed.drop_duplicates("set").set_index("set")
    values = keyed.groupby("set")["compared"]
    rows["spread"] = values.max() - values.min()
    rows["records"] = rows["record_id"]
    several = keyed[values.transform("size").gt(1)]
    if len(several):
        merged = _merged(several)
        rows.loc[merged.index, merged.columns] = merged
    return rows.reset_index(drop=True)


def _merged(several: pd.DataFrame) -> pd.DataFrame:
    """The median row of each set of several values, indexed by set.

    Texts are joined, a boolean (`reviewed`) is true where it is true of every value, a median is flagged where any of
    its values is (`flags`: each flagged value's, after its record id in brackets) and its `raw_value` is the median of
    the stored values (so `value` differs from it where a correction moved the median), other columns keep what all
    values share.
    """
    sets = several.groupby("set")
    booleans = list(several.select_dtypes("bool").columns)  # e.g. reviewed: true of a median of reviewed values only
    others = [column for column in several.columns if column not in {*_MERGED_TEXT, *_SET_COLUMNS, *booleans}]
    merged = sets[others].first().where(sets[others].nunique(dropna=False).eq(1))  # e.g. the unit
    merged[booleans] = sets[booleans].all()
    for column in _MERGED_TEXT:
        if column in several:
            merged[column] = sets[column].agg(_joined)
    merged["record_id"] = "group:" + sets["group_id"].first()
    merged["value"] = sets["compared"].median()
    merged["formula"] = merged["formula_original"] = sets["formula_unit"].first()  # one formula: TeSe for Te0.5Se0.5
    merged["original_value"] = float("nan")  # a median was never received from anyone
    merged["original_unit"] = None
    merged["method"] = "median of " + sets.size().astype(str)
    merged["temperature_K"] = sets["set_temperature_K"].first()
    merged["pressure_Pa"] = sets["set_pressure_Pa"].first()
    merged["records"] = sets["record_id"].agg(_joined)
    if "flags" in several:
        merged["flags"] = _flags_by_record(several)
    if "raw_value" in several:
        merged["raw_value"] = (several["raw_value"] * several["per_unit"]).groupby(several["set"]).median()
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
    return "; ".join(sorted(values.dropna().astype(str).unique())) or None
