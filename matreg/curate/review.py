"""The curation log: stewards accept, reject, flag or correct records and values, and re-admit or dismiss
quarantined rows.

Entries are appended to the `curation_log` table (one commit each) and never changed. They are applied as a layer
over the raw rows (`apply_curation`), each to what it was made on (its record's formula and state; a value's as
received, and its uncertainty; the values an accept of a record reviewed): one made on what has changed since is
stale, not applied, and listed by `stale_decisions` for the steward to decide again. Only `readmit` writes data
rows, new ones, under run id 'curation:<entry_id>', with what the source gave (the value and unit as received, the
time it was read): the curation layer shows them reviewed, with the readmit's steward and reason. A readmit too
applies to the read it was made on: the views show its rows only while the source gives its input as it was
quarantined, of the same material (`stale_readmits` lists the others). `dismiss` settles a quarantine row that
cannot be resolved (it leaves `open_quarantine`; nothing is admitted); `reopen` cancels a dismissal (the row is open
again).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from matreg.errors import FormulaError, MatregError, NoStore, RecordError, UnitError, UnknownName, listed
from matreg.formula import (
    CRYSTAL,
    atoms_per_unit,
    composition_key,
    material_key,
    material_state,
    material_text,
    parse_formula,
    takes_ion_bounds,
)
from matreg.numbers import number_of
from matreg.schema import PROPERTIES, canonical_method, load_tables, load_vocabulary, value_conditions, value_key
from matreg.sources.base import Attribution, RawValue, SourceRecord, value_method
from matreg.sources.lab import CONDITIONS_AS_STORED, SHARED_ID, LabConnector, LabMapping
from matreg.store import CURATION_RUN_PREFIX, Store, settling_entries_sql
from matreg.structure import read_structure
from matreg.units import (
    AtomCounts,
    convert,
    is_missing_count_message,
    is_molar,
    per_mole_of_atoms,
    same_unit,
    scale_factor,
)
from matreg.validation import (
    ATOMS_PER_CELL,
    CanonicalRecord,
    RunStamp,
    attribute_rows,
    check_attributes,
    harmonize,
    is_value_payload,
    outside_bounds,
    validate_rows,
    value_of_payload,
    with_value,
)

DECISIONS = ("accept", "reject", "flag", "correct")  # the actions on records and values, applied to datasets
ACTIONS = (*DECISIONS, "readmit", "dismiss", "reopen")
_SETTLED_BY = {"readmit": "readmitted", "dismiss": "dismissed"}  # the actions that settle a quarantine row
VALUE_KEY = value_key()
_ENTRY_TIME = "%Y%m%dT%H%M%S%fZ"
CONDITIONS = value_conditions()
_KEYED = ["record_id", "property", "_method", *(f"_{c}" for c in CONDITIONS)]  # VALUE_KEY, matchable when null
_SEEN = ["property", "method", *CONDITIONS, "original_value", "original_unit", "uncertainty"]
_NOW = {  # of a row, as compared with what a decision on it was made on (the log's columns of these names)
    "formula": "now_formula",
    "formula_original": "now_formula_original",
    "phase": "now_phase",
    "original_value": "now_value",
    "original_unit": "now_unit",
    "uncertainty": "now_uncertainty",
}
_DECIDED = ["entry_id", "action", "steward", "reason", "value", "unit", *_NOW, "values_seen"]  # a decision's own
_NOTED = ("flag", "readmit")  # the entries whose '<steward>: <reason>' a value carries in `flags`
# What the rows of one id of a lab file repeat of their record (`LabConnector._record_cells`), as stored
_LAB_RECORD_COLUMNS = ("formula_original", "name", "structure", "spacegroup_number")
_NO_METHOD = "\0"  # stands for a missing method when values are matched on their key
_NO_CONDITION = -1.0  # stands for a missing temperature or pressure (never negative)
_SAME_QUANTITY = 1e-9  # the relative difference within which a value received again is the one a decision was made on


class CurationError(MatregError):
    """A steward's decision that is refused: an invalid correction, a readmit still invalid, a row settled already
    (a target that names nothing in the store is UnknownName)."""


def record_decision(
    store: Store,
    action: str,
    steward: str,
    reason: str,
    record_id: str | None = None,
    property: str | None = None,
    method: str | None = None,
    temperature_K: float | None = None,
    pressure_Pa: float | None = None,
    quarantine_id: str | None = None,
    value: float | None = None,
    unit: str | None = None,
) -> dict[str, Any]:
    """Append one checked decision to the curation log (readmit: with the rows it admits); return the entry.

    readmit, dismiss and reopen name a quarantine row; the other actions a record, or one of its values."""
    _check_entry(action, steward, reason)
    # by the schema's names: the parameters are its conditions, in its order (tests/test_schema.py checks that)
    conditions = dict(zip(CONDITIONS, (temperature_K, pressure_Pa), strict=True))
    if not store.exists():
        raise NoStore(store.root)
    with store.locked(".curation.lock"):  # entry ids grow in commit order
        entry_id, at = _next_entry(store)
        rows: dict[str, list[dict]] = {}
        if action == "readmit":
            run_id = CURATION_RUN_PREFIX + entry_id
            target, rows = _readmit(store, run_id, record_id, quarantine_id, property, method, value, unit)
        elif action in ("dismiss", "reopen"):
            targets = (record_id, property, method, *conditions.values(), value, unit)
            target = _row_only(store, action, quarantine_id, [x for x in targets if x is not None])
        else:
            target = _decision(store, action, record_id, property, method, conditions, value, unit)
        entry = dict.fromkeys(load_tables()["curation_log"].columns) | target
        entry |= {"entry_id": entry_id, "at": at, "steward": steward.strip(), "action": action, "reason": reason}
        tables = {name: validate_rows(name, table) for name, table in rows.items()}
        tables["curation_log"] = validate_rows("curation_log", [entry])
        store.commit(tables)
    return entry


def curation_log(store: Store) -> pd.DataFrame:
    """Every entry of the curation log, oldest first."""
    return store.table("curation_log").sort_values("entry_id", ignore_index=True)


def history(store: Store, record_id: str) -> pd.DataFrame:
    """Every entry touching a record (decisions on it or its values, readmits that wrote it, dismissals and reopenings
    of its quarantine rows), oldest first; of a record ever stored (withdrawn since too), none may be."""
    log = curation_log(store)
    written = store.read(
        "SELECT run_id FROM material_writes WHERE record_id = $id "
        "UNION SELECT run_id FROM properties WHERE record_id = $id",
        {"id": record_id},
    )["run_id"]
    readmits = {run.removeprefix(CURATION_RUN_PREFIX) for run in written if run.startswith(CURATION_RUN_PREFIX)}
    its_rows = store.read("SELECT quarantine_id FROM quarantine WHERE record_id = ?", [record_id])["quarantine_id"]
    dismissals = log["action"].isin(["dismiss", "reopen"]) & log["quarantine_id"].isin(its_rows)
    touching = log[(log["record_id"] == record_id) | log["entry_id"].isin(readmits) | dismissals]
    if touching.empty and written.empty:
        raise UnknownName(f"unknown record '{record_id}'")
    redo = decisions_to_redo(store, store.shown_values([record_id]), records=[record_id]).set_index("entry_id")["why"]
    return touching.assign(stale=touching["entry_id"].map(redo)).reset_index(drop=True)


def decided_values(store: Store) -> pd.DataFrame:
    """The stored values of the records the curation log decides on or readmitted values of, as `Store.shown_values`
    gives them (a record whose only values a stale readmit wrote shows none): what `stale_decisions` compares
    decisions with."""
    log = curation_log(store)
    entries = _with_records(store, log[log["action"].isin([*DECISIONS, "readmit"])])
    return store.shown_values(sorted(set(entries["record_id"].dropna())))


def run_decisions_to_redo(store: Store, source: str, run_id: str) -> pd.DataFrame:
    """The decisions that a steward should make again that run `run_id` (of `source`) may have made stale: those on
    the records it wrote or withdrew, and of `source`'s readmits (a re-import no longer giving a readmitted row makes
    it stale without writing its record), as `decisions_to_redo` finds them: what an import or fetch warns of. A
    decision on a record the run did not write was not changed by it (and was warned of when it became stale:
    `matreg validate` lists every one); with no decision in the log, nothing is read but the log."""
    log = _with_records(store, curation_log(store))
    touched = _records_run_may_change(store, log, source, run_id)
    if not touched:
        return log.head(0).assign(why=pd.Series(dtype=object))
    return decisions_to_redo(store, store.shown_values(touched), records=touched)


def _records_run_may_change(store: Store, log: pd.DataFrame, source: str, run_id: str) -> list[str]:
    """Of the records `log` (with `_with_records`) decides on, those run `run_id` wrote (a withdrawal too), and of
    those it readmitted values of, those of `source`, sorted; none, with no query, when the log decides on none."""
    decided = log[log["action"].isin(DECISIONS)]["record_id"].dropna().unique().tolist()
    readmitted = log[log["action"] == "readmit"]["record_id"].dropna().unique().tolist()
    if not decided and not readmitted:
        return []
    return store.read(
        "SELECT record_id FROM material_writes WHERE run_id = $run "
        "AND record_id IN (SELECT unnest($decided::VARCHAR[])) "
        "UNION SELECT record_id FROM material_writes WHERE source = $source "
        "AND record_id IN (SELECT unnest($readmitted::VARCHAR[])) ORDER BY record_id",
        {"run": run_id, "decided": decided, "source": source, "readmitted": readmitted},
    )["record_id"].tolist()


def stale_decisions(long: pd.DataFrame, log: pd.DataFrame) -> pd.DataFrame:
    """The log's decisions on rows of `long` (with `formula`, `formula_original`, `phase`, `original_value`,
    `original_unit`, `uncertainty`) that are the latest on a row's record (or value) but not applied to it because
    what they were made on changed since, and that no later decision on the row's value (or record) applies to: the
    entries, oldest first, with `why`. A decision is made on its record's formula and state (the id now names another
    material, or the same in another state: stale), a decision on one value also on that value as received and its
    uncertainty (re-measured: stale; the same quantity in another unit is not, per atom or per formula unit of the
    record's formula as written), and an accept of a record on the values it reviewed (a value new or changed since is
    not reviewed by it). Entries of older matreg versions, which record none or part of this, are stale only for what
    they record."""
    decisions = log[log["action"].isin(DECISIONS)].sort_values("entry_id")
    on_value = decisions["property"].notna()
    rows = _keyed(long.reset_index(drop=True))
    latest = pd.concat(
        [
            _latest(_on_rows(rows, decisions[~on_value], ["record_id"])),
            _latest(_on_rows(rows, decisions[on_value], _KEYED)),
        ]
    )
    applies = latest["_why"].isna()
    last_applied = latest[applies].groupby("_row")["entry_id"].max().to_dict()
    decided = zip(latest["entry_id"], latest["_row"], strict=True)
    unanswered = [entry > last_applied.get(row, "") for entry, row in decided]
    pairs = latest[~applies & np.array(unanswered, dtype=bool)]
    why = pairs.groupby("entry_id")["_why"].agg(lambda texts: "; ".join(dict.fromkeys(texts)))
    stale = log[log["entry_id"].isin(why.index)].sort_values("entry_id", ignore_index=True)
    return stale.assign(why=stale["entry_id"].map(why))


def decisions_to_redo(
    store: Store, long: pd.DataFrame, properties: list[str] | None = None, records: list[str] | None = None
) -> pd.DataFrame:
    """The decisions on rows of `long` (a dataset's rows, or `decided_values`) that a steward should make again, with
    `why`: those whose record or value changed since (`stale_decisions`), and, of the records of `long`, those on a
    value the record no longer has (its method, temperature or pressure changed, or its source no longer gives it:
    `unmatched_decisions`) and the stale readmits (`stale_readmits`; of `records` too, where given: a record whose
    every value a stale readmit wrote shows none); of these, those on a value only of one of `properties` (a
    dataset's; None: any)."""
    unmatched = unmatched_decisions(store, long["record_id"])
    unmatched = unmatched.assign(
        why="the record has no such value now (its method, temperature or pressure changed, or its source no longer "
        "gives it): not applied"
    )
    readmits = stale_readmits(store)
    readmits = readmits[readmits["record_id"].isin([*long["record_id"], *(records or [])])]
    gone = pd.concat([unmatched, readmits])
    if properties is not None:
        gone = gone[gone["property"].isna() | gone["property"].isin(properties)]
    stale = stale_decisions(long, curation_log(store))
    return pd.concat([stale, gone]).sort_values("entry_id", ignore_index=True)


def stale_entries(store: Store) -> pd.DataFrame:
    """The decisions and readmits of the whole log made on what has changed since (`stale_decisions` of the values
    of `decided_values`, `stale_readmits`), oldest first, with `why`."""
    stale = [stale_decisions(decided_values(store), curation_log(store)), stale_readmits(store)]
    return pd.concat(stale).sort_values("entry_id", ignore_index=True)


def stale_readmits(store: Store) -> pd.DataFrame:
    """The readmits no longer in force: the views no longer show their rows, as a later read of the record gave the
    value otherwise (valid, rejected otherwise, or not at all) or the record is another material since (see
    `matreg.store.sql`'s `_readmits_in_force_sql`), and no later entry answers them (a decision on the record or the
    value, a readmit of the value, a dismissal of a whole row of the record, or a readmit or dismissal of the input as
    rejected since: `_answered`): the entries, oldest first, with `why`."""
    log = curation_log(store)
    readmits = log[log["action"] == "readmit"]
    if readmits.empty:  # (no query: most stores)
        return readmits.assign(why=pd.Series(dtype=object))
    readmits = _with_records(store, readmits)
    records = sorted(set(readmits["record_id"].dropna()))
    values = store.shown_values(records)
    stale = readmits[~(CURATION_RUN_PREFIX + readmits["entry_id"]).isin(values["run_id"])]
    stale = stale[~_answered(stale, log, store)].reset_index(drop=True)
    sql = "SELECT record_id, formula, phase FROM materials WHERE record_id IN (SELECT unnest(?))"
    materials = store.read(sql, [records])
    now_material = {record: (formula, phase) for record, formula, phase in materials.itertuples(index=False)}
    given = _keyed(values[~values["run_id"].str.startswith(CURATION_RUN_PREFIX)]).drop_duplicates(_KEYED)
    now = _keyed(stale)[_KEYED].merge(given, how="left", on=_KEYED)  # aligned with `stale`
    why = [
        _why_not_shown(entry, now_material.get(entry.record_id), value)
        for entry, value in zip(stale.itertuples(), now.itertuples(), strict=True)
    ]
    return stale.assign(why=pd.Series(why, dtype=object))


def _with_records(store: Store, entries: pd.DataFrame) -> pd.DataFrame:
    """Log entries with the record of each readmit: an older matreg logged a readmit without it (and its quarantine
    row may name none), the rows it wrote name it."""
    unnamed = entries["record_id"].isna() & entries["action"].eq("readmit")
    if not unnamed.any():
        return entries
    written = store.records_written_by((CURATION_RUN_PREFIX + entries.loc[unnamed, "entry_id"]).tolist())
    record_of = dict(zip(written["run_id"].str.removeprefix(CURATION_RUN_PREFIX), written["record_id"], strict=True))
    return entries.assign(record_id=entries["record_id"].fillna(entries["entry_id"].map(record_of)))


def _answered(readmits: pd.DataFrame, log: pd.DataFrame, store: Store) -> np.ndarray:
    """Which of `readmits` a later log entry answers: a decision on its record, a decision on its value or a readmit
    of it (by key; of a readmit of a whole record, of any value of the record), a dismissal of a whole row of its
    record (its lab row, under an id of an older matreg or read by another mapping, or rejected otherwise since), or a
    readmit or dismissal of a quarantine row of the same input (its source and item) rejected since."""
    rows = store.read(
        "SELECT quarantine_id, source || ':' || item AS item, record_id, raw FROM quarantine "
        "WHERE quarantine_id IN (SELECT unnest(?))",
        [log["quarantine_id"].dropna().tolist()],
    )
    item_of = dict(zip(rows["quarantine_id"], rows["item"], strict=True))
    whole = rows[[not is_value_payload(json.loads(raw)) for raw in rows["raw"]]]
    dismissed = log["quarantine_id"].map(dict(zip(whole["quarantine_id"], whole["record_id"], strict=True)))
    on_records = log["record_id"].where(log["action"] != "dismiss", dismissed)  # a dismissal: of its row's record
    entries = _keyed(log.assign(record_id=on_records)).assign(item=log["quarantine_id"].map(item_of))
    answered = []
    for readmit in _keyed(readmits).assign(item=readmits["quarantine_id"].map(item_of)).to_dict("records"):
        later = entries[entries["entry_id"] > readmit["entry_id"]]
        same_key = np.logical_and.reduce([later[column].eq(readmit[column]) for column in _KEYED[1:]])
        any_key = later["property"].isna() | pd.isna(readmit["property"]) | same_key
        on_record = later["action"].isin([*DECISIONS, *_SETTLED_BY]) & later["record_id"].eq(readmit["record_id"])
        on_target = on_record & any_key
        of_input = later["action"].isin(_SETTLED_BY) & later["item"].eq(readmit["item"]) & pd.notna(readmit["item"])
        answered.append(bool((on_target | of_input).any()))
    return np.array(answered, dtype=bool)


def _why_not_shown(entry: Any, now_material: tuple[str, str | None] | None, now: Any) -> str:
    """Why a stale readmit's rows are no longer shown (`now_material`: its record's formula and phase now, if it is
    stored; `now`: the value the source gives of its key now, if any)."""
    shown = "the readmitted value is not shown" if isinstance(entry.property, str) else "its rows are not shown"
    changed = _readmitted_material_change(entry, *now_material) if now_material else None
    if changed is not None:
        return f"{changed}: {shown}"
    if pd.isna(entry.original_unit):
        return f"a later read of the record no longer gives the input it was made on as it was: {shown}"
    made_on = f"made on {_received_text(entry.original_value, entry.original_unit)} as received"
    if pd.notna(now.original_unit):
        return f"{made_on}, the value is now {_received_text(now.original_value, now.original_unit)}: {shown}"
    return f"{made_on}, which a later read of the record no longer gives: {shown}"


def _readmitted_material_change(entry: Any, formula: str, phase: str | None) -> str | None:
    """How the record a readmit was made on is another material now (`formula`, reduced, and `phase`): another
    reduced formula as spelt, or another state (H2O(l) now H2O(g)), each as the readmit keeps it; None where it is
    not, and for what a readmit of an older matreg did not keep (the formula, the state)."""
    if not isinstance(entry.formula, str):
        return None
    if not isinstance(entry.phase, str):
        return None if formula == entry.formula else f"made on {entry.formula}, the record is now {formula}"
    if (formula, material_state(phase)) == (entry.formula, entry.phase):
        return None
    made_on = _as_logged(entry.formula, entry.formula, entry.phase)
    return f"made on {made_on}, the record is now {material_text(formula, formula, phase)}"


def redo_text(entry: Any) -> str:
    """One line on a decision to make again (a row of `decisions_to_redo`): which, on what, why."""
    decision = f"{entry.action} {target_text(entry)}"
    return f"review decision {entry.entry_id} ({decision}): {entry.why}; decide again with `matreg review`"


def target_text(entry: Any) -> str:
    """'<record>[ <property>][ at <T> K]': what a log entry decides on, or a value (a row of a frame); its temperature
    exact, as `matreg sql` shows it (300.0)."""
    value = f" {entry.property}" if isinstance(entry.property, str) else ""
    conditions = f" at {entry.temperature_K} K" if pd.notna(entry.temperature_K) else ""
    return f"{entry.record_id}{value}{conditions}"


def unmatched_decisions(store: Store, records: Iterable[str] | None = None) -> pd.DataFrame:
    """Decisions (not readmits or dismissals) whose record, or value, the store no longer shows: a record withdrawn,
    or a value whose key changed on a re-import (another method, temperature or pressure); of `records` only, where
    given (only their values are read). They stay in the log, in force again should the target return."""
    log = curation_log(store)
    decisions = log[log["action"].isin(DECISIONS)].sort_values("entry_id")
    if records is not None:
        decisions = decisions[decisions["record_id"].isin(set(records))]
    on_value = decisions["property"].notna()
    values = _keyed(store.shown_values(sorted(set(decisions["record_id"].dropna()))))
    records_shown = set(values["record_id"])  # (a withdrawn record keeps its materials row, with no value)
    shown = set(values[_KEYED].itertuples(index=False, name=None))
    on_records = decisions[~on_value & ~decisions["record_id"].isin(records_shown)]
    on_records = on_records.drop_duplicates("record_id", keep="last")
    keyed = _keyed(decisions[on_value])
    unmatched = keyed[np.array([key not in shown for key in keyed[_KEYED].itertuples(index=False, name=None)], bool)]
    on_values = unmatched.drop_duplicates(_KEYED, keep="last")[decisions.columns]  # the latest supersedes the others
    return pd.concat([on_records, on_values]).sort_values("entry_id", ignore_index=True)


def apply_curation(long: pd.DataFrame, log: pd.DataFrame) -> pd.DataFrame:
    """Long dataset rows (with `formula`, `formula_original`, `phase`, `original_value`, `original_unit`,
    `uncertainty`, and `run_id`, the run that wrote each, which the result leaves out) with the log applied: the
    latest decision per target (a record, or one value) is in force, where it still applies to the row. A decision
    made on what has changed since is stale and applies no more (see `stale_decisions`), nor do the earlier ones it
    superseded: the row shows as stored, unreviewed, unless a decision on its value (or record) applies.

    reject drops the record's rows or the value's row; flag puts '<steward>: <reason>' in `flags`; accept (and
    correct) set `reviewed`. A value keeps its latest correction in `value` (the stored one stays in `raw_value`)
    until an accept restores the stored value, or the source gives another value: a later flag or reject leaves the
    correction as it is. Record and value decisions combine: a rejected record loses every row whatever its values'
    decisions say. A value a steward readmitted from quarantine is reviewed, with the readmit's '<steward>:
    <reason>' first in `flags`; the one it corrected has no `raw_value` (the source gave none that could be stored:
    what it gave is in `original_value`, `original_unit`).
    """
    decisions = log[log["action"].isin(DECISIONS)].sort_values("entry_id")
    on_value = decisions["property"].notna()
    rows = _keyed(long.reset_index(drop=True))
    readmit = _readmitted_by(rows, log)
    record = _in_force(rows, decisions[~on_value], ["record_id"])
    value = _in_force(rows, decisions[on_value], _KEYED)
    correction = _in_force(rows, decisions[on_value & decisions["action"].isin(["correct", "accept"])], _KEYED)
    corrected = _is(correction, "correct") & value["action"].notna().to_numpy()  # (none behind a stale latest one)
    curated = rows.drop(columns=[*_KEYED[2:], "run_id"])
    curated["raw_value"] = curated["value"].where(~_corrected_by_readmit(rows, readmit))
    curated.loc[corrected, "value"] = correction.loc[corrected, "value"].astype(float).to_numpy()
    curated["flags"] = _flags(readmit, record, value)
    curated["reviewed"] = _is(readmit, "readmit") | _is(record, "accept") | _is(value, "accept") | _is(value, "correct")
    dropped = _is(record, "reject") | _is(value, "reject")
    return curated[~dropped].reset_index(drop=True)


def entries_on(long: pd.DataFrame, log: pd.DataFrame, run_ids: Iterable[str]) -> pd.DataFrame:
    """The log entries that bear on rows of `long`: decisions on its records or values, readmits that wrote them.

    `run_ids` are the runs that wrote the rows (a readmit writes under run id 'curation:<entry_id>').
    """
    on_record = log["property"].isna() & log["record_id"].isin(long["record_id"])
    values = _keyed(long)[_KEYED].drop_duplicates().assign(_in_long=True)
    on_value = _keyed(log).merge(values, how="left", on=_KEYED)["_in_long"].notna().to_numpy()
    readmitted = (CURATION_RUN_PREFIX + log["entry_id"]).isin(list(run_ids))
    return log[on_record | on_value | readmitted]


def _readmitted_by(rows: pd.DataFrame, log: pd.DataFrame) -> pd.DataFrame:
    """Per row (aligned with `rows`), the readmit entry that wrote it (run id 'curation:<entry_id>'), or empty cells."""
    readmits = log[log["action"] == "readmit"]
    return readmits.set_index(CURATION_RUN_PREFIX + readmits["entry_id"]).reindex(rows["run_id"]).reset_index(drop=True)


def _corrected_by_readmit(rows: pd.DataFrame, readmit: pd.DataFrame) -> np.ndarray:
    """Which rows (`_keyed`) are the value their readmit (aligned, `_readmitted_by`) names and received as another
    number or unit than the corrected ones it admitted (or as no number). A readmit of an older matreg stored the
    corrected value as received: it corrects none."""
    named = (_keyed(readmit)[_KEYED[1:]].to_numpy() == rows[_KEYED[1:]].to_numpy()).all(axis=1)
    admitted = (rows["original_value"] == readmit["value"]) & (rows["original_unit"] == readmit["unit"])
    return named & ~admitted.to_numpy()


def _in_force(rows: pd.DataFrame, decisions: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Per row (aligned with `rows`), the latest of `decisions` on its target (matched on `key`) where it still
    applies to the row, or empty cells: a stale latest decision leaves none in force (never an earlier one)."""
    latest = _latest(_on_rows(rows, decisions, key))
    return latest[latest["_why"].isna()].set_index("_row").reindex(range(len(rows)))


def _latest(pairs: pd.DataFrame) -> pd.DataFrame:
    """Of the pairs of `_on_rows`, each row's with its latest decision: it supersedes the earlier ones on its target,
    whether it applies to the row or is stale for it."""
    return pairs.drop_duplicates("_row", keep="last")


def _on_rows(rows: pd.DataFrame, decisions: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Each pair of a row (`_keyed`) and a decision on its target (matched on `key`), oldest decision first: the row's
    position (`_row`), key and what it shows now (`_NOW`), the decision's columns, and why the decision does not
    apply to the row (`_why`; empty where it does)."""
    now = rows[_KEYED].assign(_row=range(len(rows)), **{column: rows[name] for name, column in _NOW.items()})
    pairs = now.merge(_keyed(decisions)[[*key, *_DECIDED]], on=key)
    pairs = pairs.sort_values(["entry_id", "_row"], kind="stable", ignore_index=True)
    return pairs.assign(_why=_why_stale(pairs))


def _why_stale(pairs: pd.DataFrame) -> list[str | None]:
    """Per pair of `_on_rows`, why its decision is stale for its row (None: it applies): the record is another
    material now (another composition: Fe0.95O written Fe19O20 is the same; another state, or molecule:
    `_material_change`), the value was received as another quantity (per mole of the formula as written: -411.2
    kJ/mol of NaCl is not -411.2 kJ/mol of Na2Cl2) or is stated with another uncertainty, or a record's accept did
    not review the value as it is now."""
    unseen = _unseen(pairs)
    written = _made_on_formulas(pairs)
    why: list[str | None] = []
    for pair, formula, not_seen in zip(pairs.itertuples(index=False), written, unseen, strict=True):
        now = (pair.now_value, pair.now_unit, pair.now_uncertainty, pair.property)
        made_on = (pair.original_value, pair.original_unit)
        changed = _formula_change(pair) or _material_change(pair)
        if changed is not None:
            why.append(f"{changed}: not applied")
        elif pd.notna(pair.original_unit) and not (
            _same_quantity(formula, *made_on, pair.now_formula_original, pair.now_value, pair.now_unit)
            and _same_uncertainty(pair.uncertainty, pair.now_uncertainty, _uncertainty_kept(pair))
        ):
            made_on_text, received = _received_text(*made_on, pair.uncertainty, pair.property), _received_text(*now)
            if formula != pair.now_formula_original:  # each as received of its formula unit as written
                made_on_text, received = f"{made_on_text} of {formula}", f"{received} of {pair.now_formula_original}"
            why.append(f"made on {made_on_text} as received, the value is now {received}: not applied")
        elif not_seen:
            of = f" of {pair.now_formula_original}" if formula != pair.now_formula_original else ""
            since = f"new or changed since (now {_received_text(*now)}{of} as received)"
            why.append(f"the {pair.property} value is {since}: not reviewed by it")
        else:
            why.append(None)
    return why


def _material_change(pair: Any) -> str | None:
    """How the record a pair's decision (of `_on_rows`) was made on is in another state now, or another molecule of
    its composition (`material_key`: H2O(l) corrected to H2O(g), O2(g) to O3(g)), or None where it is not; never for a
    decision of a matreg that kept no phase."""
    if not isinstance(pair.phase, str):
        return None
    made_on = (pair.formula, pair.formula_original, pair.phase)
    now = (pair.now_formula, pair.now_formula_original, material_state(pair.now_phase))
    if material_key(*made_on) == material_key(*now):
        return None
    now_shown = material_text(pair.now_formula, pair.now_formula_original, pair.now_phase)  # (its state as stated)
    return f"made on {_as_logged(*made_on)}, the record is now {now_shown}"


def _as_logged(formula: str, formula_original: str, phase: str) -> str:
    """`material_text` of a logged material, a crystal's without its state: the log keeps 'cr' for a record stating
    none too (N2 as the file wrote it, not N2(cr))."""
    return material_text(formula, formula_original, None if phase == CRYSTAL else phase)


def _uncertainty_kept(pair: Any) -> bool:
    """Whether a pair's decision (of `_on_rows`) on a value kept the value's uncertainty, where it had one, or none:
    one stating one, or of a matreg that keeps its record's phase too (an older one kept none, or only a stated
    one)."""
    return pd.notna(pair.uncertainty) or isinstance(pair.phase, str)


def _same_uncertainty(made_on: float | None, now: float | None, kept: bool) -> bool:
    """True when a value's uncertainty now (in its canonical unit; None: none stated) is the one a decision was made
    on, to a relative `_SAME_QUANTITY`, or the decision did not keep it (`kept`: an older matreg's)."""
    if not kept or (pd.isna(made_on) and pd.isna(now)):
        return True
    return pd.notna(made_on) and pd.notna(now) and math.isclose(made_on, now, rel_tol=_SAME_QUANTITY)


def _formula_change(pair: Any) -> str | None:
    """How the record a pair's decision (of `_on_rows`) was made on is not the pair's record now, or None where it is:
    another composition (Fe0.95O written Fe19O20 is the same), or, for a decision on a value (one received in an
    `original_unit`; a record's decision has none) stored per mole, another formula unit as written (-250 kJ/mol of
    Fe0.95O is not of Fe19O20, nor a correction per mole of NaCl one of Na2Cl2). A value received per mole and stored
    otherwise is compared per mole of each formula as written (`_same_quantity`). A decision of a matreg that kept the
    reduced formula only is stale on another formula unit of a value received per mole too, as far as the reduced
    formula tells it (NaCl and Na2Cl2 are one); one of a matreg that kept no formula, never."""
    made_on, now = pair.formula, pair.now_formula
    if not isinstance(made_on, str):
        return None
    if made_on != now and composition_key(made_on) != composition_key(now):
        return f"made on {made_on}, the record is now {now}"
    if not isinstance(pair.original_unit, str):
        return None
    if isinstance(pair.formula_original, str):
        made_on, now = pair.formula_original, pair.now_formula_original
        if made_on != now and _stored_per_mole(pair.property) and atoms_per_unit(made_on) != atoms_per_unit(now):
            return f"made on {made_on}, the record's {pair.property} is now per mole of {now}"
        return None
    if made_on != now and _per_formula_unit(pair.property, pair.original_unit):
        return f"made on {made_on}, the record's {pair.property} is now per mole of {now}"
    return None


def _stored_per_mole(property: str) -> bool:
    """True for a property stored per mole (of its record's formula unit as written)."""
    spec = load_vocabulary().root.get(property)
    return spec is not None and is_molar(spec.unit)


def _per_formula_unit(property: str, received_in: str) -> bool:
    """True for a value that depends on its record's formula unit: stored per mole, or received so."""
    if _stored_per_mole(property):
        return True
    try:
        return is_molar(received_in)
    except UnitError:  # a unit pint does not read (a steward's readmit fixed it): the stored unit decided
        return False


def _unseen(pairs: pd.DataFrame) -> np.ndarray:
    """Per pair of `_on_rows`, True where its decision is a record's accept that did not review the row's value as it
    is now (its `values_seen` has no value of the row's key, or one of another quantity or uncertainty; of an accept
    of an older matreg, which listed no uncertainties, the quantity alone)."""
    listed = pairs["values_seen"].notna().to_numpy()
    if not listed.any():
        return listed
    accepts = pairs.loc[listed, ["entry_id", "values_seen"]].drop_duplicates("entry_id")
    seen = pd.DataFrame(
        [
            {"entry_id": entry, **value, "kept": "uncertainty" in value}
            for entry, text in accepts.itertuples(index=False)
            for value in json.loads(text)
        ],
        columns=["entry_id", *_SEEN, "kept"],
    )
    key = ["entry_id", *_KEYED[1:]]  # an accept saw one value of each key
    seen = _keyed(seen)[[*key, "original_value", "original_unit", "uncertainty", "kept"]].drop_duplicates(key)
    now = pairs[[*key, "now_formula_original", "now_value", "now_unit", "now_uncertainty"]]
    compared = now.assign(formula=_made_on_formulas(pairs)).merge(seen, how="left", on=key)  # aligned
    quantities = ["formula", "original_value", "original_unit", "now_formula_original", "now_value", "now_unit"]
    reviewed = [
        pd.notna(value.original_unit)
        and _same_quantity(*(getattr(value, column) for column in quantities))
        and _same_uncertainty(value.uncertainty, value.now_uncertainty, bool(value.kept))
        for value in compared.itertuples(index=False)
    ]
    return listed & ~np.array(reviewed, dtype=bool)


def _made_on_formulas(pairs: pd.DataFrame) -> pd.Series:
    """Per pair of `_on_rows`, the formula as written its decision was made on; the row's now for a decision of a
    matreg that did not keep it (its value is compared per mole of the record's formula now, as that matreg did)."""
    return pairs["formula_original"].where(pairs["formula_original"].notna(), pairs["now_formula_original"])


def _same_quantity(
    formula: str, value: float, unit: str, other_formula: str, other_value: float, other_unit: str
) -> bool:
    """True when two values as received, each of a record of its formula (as written), are one quantity, in one unit
    or another, however spelt (3.2 eV, 3200 meV, 3.2 electronvolt), per atom or per formula unit of its own formula
    (-4.26 eV/fu of NaCl is -2.13 eV/atom, and -8.52 eV/fu of Na2Cl2) or per gram (by the formula's molar mass),
    converted with the formulas' atoms and molar masses as ingest converts values, to a relative `_SAME_QUANTITY`;
    False for units that do not convert into each other (a per-cell value and a per-atom one: the cell's atoms are
    not known here). Two that were no number (cells a steward readmitted corrected) are one in one unit."""
    if pd.isna(value) or pd.isna(other_value):
        return pd.isna(value) and pd.isna(other_value) and unit == other_unit
    try:
        restated = _restated_for(float(other_value), other_unit, other_formula, formula)
        if unit != other_unit:
            restated = convert(restated, other_unit, unit, _counts_of(formula))
    except UnitError:
        return False
    return math.isclose(float(value), restated, rel_tol=_SAME_QUANTITY)


def _counts_of(formula: str) -> AtomCounts:
    """What converts a value of a record of `formula` (as written) between per atom, per mole and per mass: its
    atoms per formula unit and its molar mass."""
    parsed = parse_formula(formula, as_stored=True)
    return AtomCounts(per_formula_unit=parsed.atoms_per_formula_unit, molar_mass=parsed.molar_mass)


def _restated_for(value: float, unit: str, formula: str, to_formula: str) -> float:
    """A value in `unit` of a record of formula `formula` (as written), per formula unit of `to_formula` where `unit`
    is per mole (or formula unit): -822.4 kJ/mol of Na2Cl2 is -411.2 kJ/mol of NaCl; as it is otherwise, and where
    the two are one formula unit. UnitError where a formula has no atoms to restate by, or the unit is none pint
    reads."""
    if formula == to_formula:
        return value
    atoms, to_atoms = atoms_per_unit(formula), atoms_per_unit(to_formula)
    if atoms == to_atoms or not is_molar(unit):
        return value
    per_atom = per_mole_of_atoms(unit)
    return convert(convert(value, unit, per_atom, AtomCounts(atoms)), per_atom, unit, AtomCounts(to_atoms))


def _received_text(value: float | None, unit: str, uncertainty: float | None = None, property: str = "") -> str:
    """'3.2 eV', or 'no number (eV)': a value as received, with its uncertainty where it states one ('1.1 eV ± 0.02
    eV': `uncertainty_text`, of its `property`)."""
    received = f"{value} {unit}" if pd.notna(value) else f"no number ({unit})"  # as stored: exact, as `sql` shows it
    stated = uncertainty_text(property, uncertainty, unit)
    return f"{received} {stated}" if stated else received


def uncertainty_text(property: str | None, uncertainty: float | None, unit: str | None = None) -> str | None:
    """'± 20 meV': an uncertainty (stored in its property's canonical unit) in `unit` where one scale converts it
    (else the canonical one: kJ/mol of a per-atom property needs its formula); of a property this directory's
    vocabulary lacks, the number alone; None where there is none. A stored number is shown exact, as `matreg sql`
    shows it (0.30000000000000004, 20.0), one converted without the digits of the conversion (`_converted`)."""
    if uncertainty is None or pd.isna(uncertainty):
        return None
    spec = load_vocabulary().root.get(property)
    if spec is None:
        return f"± {uncertainty}"
    if isinstance(unit, str) and unit and unit != spec.unit:
        with contextlib.suppress(UnitError):
            return f"± {_converted(uncertainty * scale_factor(spec.unit, unit))} {unit}"
    return f"± {uncertainty} {spec.unit}"


def _converted(number: float) -> float:
    """A number converted to another unit, to the 15 significant digits a conversion keeps: 4.1 meV of 0.0041 eV, not
    4.1000000000000005."""
    return float(f"{number:.15g}")


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with null-safe copies of the value key's columns, so missing methods and conditions match, methods by
    their names in the method vocabulary (a log entry of an older matreg may name a method by another label)."""
    methods = frame["method"].astype(object)
    named = {method: canonical_method(method) for method in methods.dropna().unique()}
    conditions = {f"_{c}": _as_matched(frame[c], c).fillna(_NO_CONDITION) for c in CONDITIONS}
    return frame.assign(_method=methods.map(named).where(methods.notna(), _NO_METHOD), **conditions)


def _as_matched(numbers: pd.Series, condition: str) -> pd.Series:
    """A condition's numbers as a decision matches them (null where none is stated): rounded as a lab import stores
    them (`CONDITIONS_AS_STORED`), a temperature to the nanokelvin, a pressure to 12 significant digits, so that one an
    older matreg stored unrounded (23.7 degC as 296.84999999999997 K, 2.3 kbar as 229999999.99999997 Pa) is the one
    stored since (296.85 K, 2.3e8 Pa), while a vacuum's 1e-8 Pa is neither 3e-8 Pa nor 0."""
    numbers = numbers.astype(float)
    as_stored = {number: CONDITIONS_AS_STORED[condition](number) for number in numbers.dropna().unique()}
    return numbers.map(as_stored).astype(float)


def _is(decisions: pd.DataFrame, action: str) -> np.ndarray:
    """Which rows' decision in force is `action` (False where no decision applies)."""
    return decisions["action"].isin([action]).to_numpy()


def _flags(*decisions: pd.DataFrame) -> list[str | None]:
    """'<steward>: <reason>' of each row's decisions (aligned frames: the readmit that wrote it, those in force on its
    record and value) that are flags or readmits, joined by '; '."""
    texts = [
        (decision["steward"] + ": " + decision["reason"]).where(decision["action"].isin(_NOTED)).tolist()
        for decision in decisions
    ]
    return ["; ".join(text for text in row if isinstance(text, str)) or None for row in zip(*texts, strict=True)]


def _check_entry(action: str, steward: str, reason: str) -> None:
    if action not in ACTIONS:
        raise CurationError(f"unknown action '{action}' (choose from {', '.join(ACTIONS)})")
    if not steward.strip() or not reason.strip():
        raise CurationError("every decision needs the steward's name and a reason")


def _next_entry(store: Store) -> tuple[str, datetime]:
    """A new entry id and its time: now (UTC, to the microsecond), later than every entry already logged."""
    at = datetime.now(UTC)
    last = curation_log(store)["entry_id"].max()
    if isinstance(last, str):  # a clock set back must not give an id that sorts before an older entry
        at = max(at, datetime.strptime(last, _ENTRY_TIME).replace(tzinfo=UTC) + timedelta(microseconds=1))
    return at.strftime(_ENTRY_TIME), at


def _decision(
    store: Store,
    action: str,
    record_id: str | None,
    property: str | None,
    method: str | None,
    conditions: dict[str, float | None],
    value: float | None,
    unit: str | None,
) -> dict[str, Any]:
    """The target columns of an accept, reject, flag or correct entry, checked against the store (`conditions`: the
    value's, by the schema's names; None where not named)."""
    if record_id is None:
        raise CurationError(f"{action} needs a record id")
    if not _record_exists(store, record_id):
        raise UnknownName(f"unknown record '{record_id}'")
    formula = _made_on_record(store, record_id)
    if property is None:
        if action == "correct" or any(x is not None for x in (method, *conditions.values(), value, unit)):
            raise CurationError(f"{action}: name the value's property (a method, condition or value needs one)")
        seen = {"values_seen": _values_of(store, record_id)} if action == "accept" else {}
        return {"record_id": record_id} | formula | seen
    target = _stored_value(store, record_id, property, method, conditions) | formula
    if action != "correct":
        if value is not None or unit is not None:
            raise CurationError(f"{action} takes no value or unit (use correct)")
        return target
    ion = takes_ion_bounds(parse_formula(formula["formula_original"], as_stored=True), formula["phase"])
    return target | _correction(property, value, unit, ion)


def _stored_value(
    store: Store,
    record_id: str,
    property: str,
    method: str | None,
    conditions: dict[str, float | None],
) -> dict[str, Any]:
    """The key of the one stored value a decision names (its method and `conditions`, by the schema's names: those
    not None), its value and unit as received, and its uncertainty; refused when none or several match."""
    rows = store.read(
        f"SELECT record_id, {', '.join(_SEEN)} FROM properties WHERE record_id = ? AND property = ? "
        f"ORDER BY method, {', '.join(CONDITIONS)}",
        [record_id, property],
    )
    if method is not None:
        rows = rows[rows["method"].map(canonical_method, na_action="ignore") == canonical_method(method)]
    for column, wanted in conditions.items():
        if wanted is not None:
            rows = rows[_as_matched(rows[column], column) == CONDITIONS_AS_STORED[column](wanted)]
    if len(rows) != 1:
        named = _named_key({"method": method} | conditions)
        each = [_named_key(row) for row in rows[["method", *CONDITIONS]].to_dict("records")]
        found = listed(each, 3, "; ")
        what = f"{property} value{f' ({named})' if named else ''} of '{record_id}'"
        if rows.empty:
            raise CurationError(f"no stored {what}")
        raise CurationError(f"{len(rows)} stored {what} match: {found}; name the method, temperature or pressure")
    return {column: _none(value) for column, value in rows.iloc[0].items()}


def _made_on_record(store: Store, record_id: str) -> dict[str, str]:
    """The record's formula, reduced and as written, and its state (`material_state`: 'cr' where it states none), as
    stored now: what a decision on it, or on one of its values, is made on (a value per mole is per mole of the
    formula as written)."""
    sql = "SELECT formula, formula_original, phase FROM materials WHERE record_id = ?"
    made_on = store.read(sql, [record_id]).iloc[0].to_dict()
    return made_on | {"phase": material_state(made_on["phase"])}


def _values_of(store: Store, record_id: str) -> str:
    """The record's values as stored now, each by its key with its value and unit as received and its uncertainty
    (JSON): what an accept of the record reviews."""
    values = store.read(f"SELECT {', '.join(_SEEN)} FROM properties WHERE record_id = ? ORDER BY ALL", [record_id])
    return json.dumps([{key: _none(item) for key, item in row.items()} for row in values.to_dict("records")])


def _named_key(key: dict[str, Any]) -> str:
    """What of a value's key (method, conditions) is given, as a refusal names it: 'method=PBE, temperature_K=300.0'."""
    return ", ".join(f"{name}={given}" for name, given in key.items() if _none(given) is not None)


def _correction(property: str, value: float | None, unit: str | None, ion: bool) -> dict[str, Any]:
    """The value and unit of a correction: a finite number in the canonical unit, within the physical bounds (an
    ion's, of a value of a record held to them: `takes_ion_bounds`)."""
    spec = load_vocabulary().root.get(property)
    if spec is None:
        raise CurationError(
            f"{property} is not in the property vocabulary here: a project's own property is corrected from the "
            f"project's directory, where its {PROPERTIES} declares it"
        )
    if value is None or not math.isfinite(value):
        raise CurationError(f"correct needs a finite value for {property} in {spec.unit}")
    if unit is not None and not same_unit(unit, spec.unit):
        raise CurationError(f"correct takes {property} in its canonical unit {spec.unit}, not '{unit}'")
    low, high = spec.bounds_of(ion)
    if not low <= value <= high:
        raise CurationError(outside_bounds(property, spec, value, ion))
    return {"value": float(value), "unit": spec.unit}


def _readmit(
    store: Store,
    run_id: str,
    record_id: str | None,
    quarantine_id: str | None,
    property: str | None,
    method: str | None,
    value: float | None,
    unit: str | None,
) -> tuple[dict[str, Any], dict[str, list[dict]]]:
    """Re-harmonize a quarantined payload with the corrected raw value/unit: the entry's target and the rows.

    The rows keep what the source gave: the corrected value's number and unit as received (`_as_received`), and the
    record's `fetched_at` when it was read (the quarantine row's time; the readmit's is the entry's `at`). The entry
    keeps what it was made on, as a decision does: the record's formula and state in that read
    (`_readmitted_material`), the value as received (and the uncertainty it was stored with)."""
    if record_id is not None:
        raise CurationError("readmit takes a quarantine id, not a record id")
    row = _quarantined(store, quarantine_id, "readmit")
    if not store.still_quarantined([row["quarantine_id"]]):
        raise CurationError(
            f"readmit refused: {row['item']} of {row['source']} (quarantine row '{row['quarantine_id']}') is no longer "
            "given by its source as it was rejected (a later fetch or import read it otherwise, or not at all): a "
            "readmit applies to the read it was made on (see open_quarantine for what the source gives now)"
        )
    stamp = RunStamp(run_id, row["quarantined_at"])
    raw = json.loads(row["raw"])
    whole = not is_value_payload(raw)
    if whole:
        connector = _lab_import(store, row)
        record = _lab_record(connector, row, raw, property, method, value)
        attribution, extension = connector.attribution, connector.extension
        read_material = None  # the row's, as harmonized
    else:
        record, attribution, read_material = _value_record(store, row, raw)
        extension = None  # the attributes of a value's record are stored already
    received = record.values  # (`_corrected` returns a new list)
    record.values, index = _corrected(record, attribution, property, method, value, unit)
    canonical = _harmonized(row, record, attribution, stamp, as_stored=not whole)  # a value's: its stored record's
    if index is not None:
        canonical.values[index] |= _as_received(received[index])
    if whole and _joins_stored_record(store, row, raw, record, canonical, extension, stamp):
        whole, extension = False, None  # its values go beside those its id's other rows gave the stored record
    tables = _new_rows(store, row, canonical, whole)
    if extension is not None:  # a lab row of a dataset with sample metadata: checked and stored as the import does
        tables["record_attributes"] = _attribute_rows(row, record, extension, canonical.material["record_id"], stamp)
        _refuse_stored_attributes(store, canonical.material["record_id"], tables["record_attributes"])
    material = canonical.material
    made_on = _readmitted_material(read_material or material)
    target = {"quarantine_id": row["quarantine_id"], "record_id": material["record_id"]} | made_on
    if index is None:
        return target, tables
    corrected, admitted = record.values[index], canonical.values[index]  # aligned: nothing of the record was rejected
    made_on = [*VALUE_KEY[1:], "original_value", "original_unit", "uncertainty"]
    target |= {column: admitted[column] for column in made_on}
    return target | {"value": number_of(corrected.value), "unit": corrected.unit}, tables


def _row_only(store: Store, action: str, quarantine_id: str | None, other_targets: list[Any]) -> dict[str, Any]:
    """The target of a dismiss or reopen entry: a quarantine row that may be so, and nothing else (a record, value
    or correction in `other_targets` is refused)."""
    if other_targets:
        raise CurationError(f"{action} takes a quarantine id only (no record, value or correction)")
    return {"quarantine_id": _quarantined(store, quarantine_id, action)["quarantine_id"]}


def _quarantined(store: Store, quarantine_id: str | None, action: str) -> dict[str, Any]:
    """The quarantine row to readmit, dismiss or reopen; refused when unknown, when settled already (`_settled_by`):
    readmitted (any action; a readmit again where the readmit is stale, `stale_readmits`), or dismissed (a dismissed
    row may still be readmitted: its problem found a fix), and a reopen of a row not dismissed."""
    if not quarantine_id:
        raise CurationError(f'{action} needs a quarantine id (see `matreg sql "select * from open_quarantine"`)')
    rows = store.read("SELECT * FROM quarantine WHERE quarantine_id = ?", [quarantine_id])
    if rows.empty:
        raise UnknownName(f"unknown quarantine row '{quarantine_id}'")
    settled = _settled_by(store, quarantine_id)
    if action == "reopen" and settled is None:
        raise CurationError(f"quarantine row '{quarantine_id}' is not dismissed: nothing to reopen")
    readmitted = settled is not None and settled.action == "readmit"
    if action == "readmit" and readmitted and settled.entry_id in set(stale_readmits(store)["entry_id"]):
        return rows.iloc[0].to_dict()  # its readmit is stale (the record is another material since): decide again
    if readmitted or (settled is not None and action == "dismiss"):
        what = f"quarantine row '{quarantine_id}' was {_SETTLED_BY[settled.action]}"
        if action == "reopen":
            raise CurationError(f"{what} (entry {settled.entry_id}): a readmit is not undone, reject its record")
        raise CurationError(f"{what} already (entry {settled.entry_id})")
    return rows.iloc[0].to_dict()


def _settled_by(store: Store, quarantine_id: str) -> Any:
    """The log entry that settles a quarantine row now (`settling_entries_sql`), or None while it is open."""
    found = store.read(f"SELECT * FROM ({settling_entries_sql()}) WHERE quarantine_id = ?", [quarantine_id])
    return None if found.empty else found.iloc[0]


def _value_record(
    store: Store, row: dict[str, Any], raw: dict[str, Any]
) -> tuple[SourceRecord, Attribution, dict[str, Any]]:
    """A rejected value as a record of its own, with everything else taken from the stored material row of the read
    that rejected it, and that row."""
    value = value_of_payload(raw)
    named = f":{value.property}" + (f"[{value.method}]" if value.method else "")
    suffix = named + (f"@{value.temperature_K:g}K" if value.temperature_K is not None else "")  # as ingest names it
    if value.temperature_K == 0 and not row["item"].endswith(suffix):
        suffix = named  # quarantined before values at 0 K were named with their temperature
    record_id = f"{row['source']}:{row['item'].removesuffix(suffix)}"
    materials = _read_write(store, record_id, row)
    if not row["item"].endswith(suffix) or materials.empty:
        raise CurationError(f"the record of quarantined value '{row['item']}' is not in the store")
    material = {key: _none(item) for key, item in materials.iloc[0].items()}
    record = SourceRecord(
        source_id=material["source_id"],
        formula=material["formula_original"],
        values=[value],
        nsites=material["nsites"],
        atoms_per_cell=_counted_atoms(raw, row["reasons"], material),
        method=material["method"],
        provenance=material["provenance"],
    )
    keys = ("source", "provenance", "method", "database_version", "citation", "license")
    return record, Attribution(**{key: material[key] for key in keys}), material


def _readmitted_material(material: dict[str, Any]) -> dict[str, str]:
    """What a readmit is made on of its record, from the materials row of the read that quarantined the row: the
    formula (reduced) and state (`material_state`: 'cr' where it states none), as a decision keeps them."""
    return {"formula": material["formula"], "phase": material_state(material["phase"])}


def _counted_atoms(payload: dict[str, Any], reasons: Iterable[str], material: dict[str, Any]) -> float | None:
    """The atoms in the cell of a rejected value's record as its fetch counted them: as its payload says (null:
    uncounted, NaN: per-cell values stay refused), else the sites (None). A payload written before the count was kept
    says it was uncounted only through its reason; its record's stored structure counts by occupancy (NaN if it
    cannot be read)."""
    if ATOMS_PER_CELL in payload:
        return math.nan if payload[ATOMS_PER_CELL] is None else float(payload[ATOMS_PER_CELL])
    if any(is_missing_count_message(reason) for reason in reasons):
        return math.nan
    if not material["structure"]:
        return None
    try:
        return float(read_structure(material["structure"]).composition.num_atoms)
    except (KeyError, TypeError, ValueError):
        return math.nan


def _read_write(store: Store, record_id: str, row: dict[str, Any]) -> pd.DataFrame:
    """The materials row of the latest write of the record that read what the quarantining run did (its scope: its
    method, citation and licence are the value's, another file may have written the record since; the record as
    that read finds it now, whose formula the readmit is made on), else the record's current row."""
    written = store.latest_write_seen_by(record_id, _none(row.get("scope")))
    return written if len(written) else store.read("SELECT * FROM materials WHERE record_id = ?", [record_id])


def _lab_import(store: Store, row: dict[str, Any]) -> LabConnector:
    """The connector of the latest import of the file whose import quarantined `row`, rebuilt from its run (mapping,
    file location): a file imported again with a corrected mapping readmits its rows by that mapping. (The quarantine
    row names the first run that rejected it.) An import of the file is one at a path it was read at where it is now
    (`Store.places`: in a project folder moved or copied whole since, the store in it, its path there too)."""
    sheet = "json_extract(parameters, '$.mapping.sheet')"  # a workbook's sheets are imported one by one
    runs = store.read(
        f"WITH q AS (SELECT {sheet} AS sheet FROM fetch_runs WHERE run_id = ?) SELECT endpoint, relative_path, "
        "parameters FROM fetch_runs, q WHERE endpoint IN (SELECT unnest(?)) AND source = ? AND status = 'complete' "
        f"AND {sheet} IS NOT DISTINCT FROM q.sheet ORDER BY started_at DESC LIMIT 1",
        [row["run_id"], _places_of_run(store, row["run_id"]), row["source"]],
    )
    parameters = json.loads(runs["parameters"].iloc[0]) if len(runs) else {}
    if "mapping" not in parameters:
        raise CurationError(
            f"quarantine row '{row['quarantine_id']}' is a whole {row['source']} record: only lab rows and single "
            "values can be readmitted; fetch the record again once the source has fixed it"
        )
    # Structure files named in the rows are beside the file, where it is now (`Store.lab_file`).
    path = store.lab_file(runs["endpoint"].iloc[0], _none(runs["relative_path"].iloc[0]))
    mapping = LabMapping.model_validate(parameters["mapping"])
    return LabConnector.of_past_import(path, mapping, parameters.get("name"))


def _places_of_run(store: Store, run_id: str) -> list[str]:
    """The paths imports read the file a run read at, where it is now (`Store.places`; a run of an older matreg,
    which recorded no path from the folder holding the store: its own)."""
    run = store.read("SELECT endpoint, relative_path FROM fetch_runs WHERE run_id = ?", [run_id])
    if not len(run):
        return []
    endpoint, relative = run["endpoint"].iloc[0], _none(run["relative_path"].iloc[0])
    return [endpoint] if relative is None else store.places(store.lab_file(endpoint, relative))


def _lab_record(
    connector: LabConnector,
    row: dict[str, Any],
    raw: dict[str, Any],
    property: str | None,
    method: str | None,
    value: float | None,
) -> SourceRecord:
    """A rejected lab row mapped again by its import's mapping, a corrected value in its cell (`_with_value`) so that
    it maps, but as received in the record (its cell's number, or None: `_corrected` puts the corrected one in);
    refused while it cannot be mapped, and when its import set it aside as it was published (its payload is the
    record's canonical rows, not the file's row)."""
    if isinstance(raw, dict) and isinstance(raw.get("materials"), list):
        raise CurationError(
            f"quarantine row '{row['quarantine_id']}' was set aside as its import was published "
            f"({'; '.join(row['reasons'])}): correct the file and import it again"
        )
    try:
        cells, chosen = _with_value(connector, raw, property, method, value)
        record = connector.to_record(cells)
    except RecordError as exc:
        _refuse(row, [str(exc)])
    except KeyError as exc:  # the row lacks a column the mapping reads
        _refuse(row, [f"the import's mapping reads column {exc}, which the quarantined row does not have"])
    if chosen is not None:  # the row's values are its non-blank value cells, in the mapping's order
        position = list(connector.value_columns(raw)).index(chosen)
        received = connector.value_as_read(chosen, raw[chosen])
        record.values[position] = dataclasses.replace(record.values[position], value=received)
    return record


def _with_value(
    connector: LabConnector, raw: dict[str, Any], property: str | None, method: str | None, value: float | None
) -> tuple[dict[str, Any], str | None]:
    """A lab row with a readmit's corrected value in the cell of the value it names, written as the file writes
    numbers, so that a cell that is no number ('2,42' in a file of decimal points) is checked as corrected, and that
    cell's column; the row as it is, and None, without a corrected value."""
    if value is None:
        return raw, None
    columns = connector.value_columns(raw)
    chosen = list(columns)[_the_one(_named_values(list(columns.values()), property, method), property, method)]
    return raw | {chosen: connector.number_cell(value)}, chosen


def _joins_stored_record(
    store: Store,
    row: dict[str, Any],
    raw: dict[str, Any],
    record: SourceRecord,
    canonical: CanonicalRecord,
    extension: str | None,
    stamp: RunStamp,
) -> bool:
    """True for a lab row of an id that other rows of its file give too (`SHARED_ID`: one record's measurements),
    whose record an import of the file stored as the row describes it (`_LAB_RECORD_COLUMNS`, and its extension's
    attributes): the row's values are readmitted into that record, beside the other rows'. A row of a record stored
    otherwise (an older read, its file's rows all rejected since) is refused as a whole row is."""
    material = canonical.material
    record_id = material["record_id"]
    if not raw.get(SHARED_ID) or not _written_in_scope(store, record_id, material["scope"]):
        return False
    stored = {key: _none(item) for key, item in _read_write(store, record_id, row).iloc[0].items()}
    if any(stored[column] != material[column] for column in _LAB_RECORD_COLUMNS):
        return False
    if extension is None:
        return True
    given = _attribute_rows(row, record, extension, record_id, stamp)
    sql = "SELECT attribute, value FROM record_attributes WHERE record_id = ? AND run_id = ?"
    kept = store.read(sql, [record_id, stored["run_id"]])
    return {attribute["attribute"]: attribute["value"] for attribute in given} == dict(kept.values.tolist())


def _attribute_rows(
    row: dict[str, Any], record: SourceRecord, extension: str, record_id: str, stamp: RunStamp
) -> list[dict[str, Any]]:
    """The record_attributes rows of a readmitted lab record, after its import's extension check."""
    valid, reasons = check_attributes(extension, pd.DataFrame([record.attributes]))
    if reasons:
        _refuse(row, reasons[0])  # the reasons of the frame's one row
    return attribute_rows(extension, record_id, valid.iloc[0], stamp.run_id)


def _corrected(
    record: SourceRecord,
    attribution: Attribution,
    property: str | None,
    method: str | None,
    value: float | None,
    unit: str | None,
) -> tuple[list[RawValue], int | None]:
    """The record's raw values with the named one's value and unit replaced (the uncertainty it states kept:
    `with_value`), and that value's index.

    A value is named by its canonical property and the method it is stored with (its own, else the record's or
    the source's where it is of their provenance: `value_method`)."""
    vocabulary = load_vocabulary()
    provenance, record_method = record.provenance or attribution.provenance, record.method or attribution.method
    kinds = [
        (vocabulary.resolve(raw.property, attribution.source), value_method(raw, provenance, record_method))
        for raw in record.values
    ]
    matches = _named_values(kinds, property, method)
    if len(matches) != 1 and value is None and unit is None and property is None:
        return record.values, None  # nothing to correct: readmitted as it is (e.g. after a vocabulary change)
    index = _the_one(matches, property, method)
    values = list(record.values)
    chosen = values[index] if value is None else with_value(values[index], value)  # the uncertainty it states kept
    values[index] = dataclasses.replace(chosen, unit=chosen.unit if unit is None else unit)
    return values, index


def _as_received(raw: RawValue) -> dict[str, Any]:
    """The `original_value` and `original_unit` of the value a readmit names: as the source gave it, not as the
    steward corrected it (the entry says that); no `original_value` where the source gave no finite number."""
    return {"original_value": number_of(raw.value), "original_unit": raw.unit}


def _named_values(kinds: list[tuple[str | None, str | None]], property: str | None, method: str | None) -> list[int]:
    """The positions of the raw values (each as its canonical property and method) that a readmit's property and
    method name (None: any); methods by their names in the method vocabulary (the store's 'PBE+U' names a mapping's
    'GGA+U')."""
    wanted = canonical_method(method)
    return [
        index
        for index, (canonical, its_method) in enumerate(kinds)
        if property in (None, canonical) and wanted in (None, canonical_method(its_method))
    ]


def _the_one(matches: list[int], property: str | None, method: str | None) -> int:
    """The one raw value a readmit names; refused when the row gives none or several."""
    if len(matches) == 1:
        return matches[0]
    named = " ".join(x for x in (property, method) if x)
    what = f"{named} value" if named else "value"
    if not matches:
        raise CurationError(
            f"readmit: the quarantined row gives no {what} (no such column, or its cell is blank): a readmit corrects "
            "a value the row gives, it adds none"
        )
    needed = "the method" if property else "the property (and method)"
    raise CurationError(f"readmit: the quarantined row gives {len(matches)} {what}s; name {needed}")


def _harmonized(
    row: dict[str, Any], record: SourceRecord, attribution: Attribution, stamp: RunStamp, as_stored: bool
) -> CanonicalRecord:
    """The record through the same harmonization as a fetch; refused with the reasons while anything is invalid.
    `as_stored`: the record is a stored one (a quarantined value's), its formula read as the matreg that stored it
    did (`parse_formula`)."""
    try:
        canonical = harmonize(record, attribution, stamp, as_stored)
    except FormulaError as exc:
        reasons = [str(exc)]
    else:
        reasons = [reason for rejected in canonical.rejected for reason in rejected.reasons]
        if not reasons and not canonical.values:
            reasons = ["no property values"]
    if reasons:
        _refuse(row, reasons)
    return canonical


def _refuse(row: dict[str, Any], reasons: list[str]) -> NoReturn:
    """Refuse to readmit a quarantined row that is still invalid, with the reasons."""
    raise CurationError(f"readmit refused: {row['item']} of {row['source']} is still invalid: {'; '.join(reasons)}")


def _new_rows(store: Store, row: dict[str, Any], canonical: CanonicalRecord, whole: bool) -> dict[str, list[dict]]:
    """The rows a readmit adds; refused where they would overwrite stored rows (raw rows are never modified).

    A whole record may be readmitted beside what another file (scope) stored of it, not over a write of its own
    file: then the file was imported again, and its row is as that import left it.
    """
    record_id = canonical.material["record_id"]
    if whole and _written_in_scope(store, record_id, canonical.material["scope"]):
        raise CurationError(
            f"readmit refused: record '{record_id}' of {row['item']} is already in the store, as an import of its file "
            "wrote it: correct the file and import it again, or decide on the stored record (`matreg review`)"
        )
    nullable = " AND ".join(f"{column} IS NOT DISTINCT FROM ?" for column in ("method", *CONDITIONS))  # may be null
    for value in canonical.values:
        stored = store.read(
            f"SELECT 1 FROM properties WHERE record_id = ? AND property = ? AND {nullable}",
            [value[column] for column in VALUE_KEY],
        )
        if len(stored):
            raise CurationError(f"readmit refused: the {value['property']} value of '{record_id}' is already stored")
    return (
        {"materials": [canonical.material], "properties": canonical.values}
        if whole
        else {"properties": canonical.values}
    )


def _refuse_stored_attributes(store: Store, record_id: str, rows: list[dict[str, Any]]) -> None:
    """CurationError when another file stored one of these attributes of the record: a readmit never replaces it."""
    stored = store.read(
        "SELECT attribute FROM record_attributes WHERE record_id = ? AND attribute IN (SELECT unnest(?))",
        [record_id, [row["attribute"] for row in rows]],
    )
    if len(stored):
        raise CurationError(f"readmit refused: the {stored['attribute'].iloc[0]} of '{record_id}' is already stored")


def _written_in_scope(store: Store, record_id: str, scope: str) -> bool:
    """True when a write of the record's own scope (its lab file), or one from before scopes, still shows values (a
    file re-imported without the row withdrew them: the row may be readmitted then)."""
    written = store.read(
        "SELECT 1 FROM material_writes w WHERE w.record_id = ? AND (w.scope IS NULL OR w.scope = ?) "
        "AND EXISTS (SELECT 1 FROM properties p WHERE p.record_id = w.record_id AND p.run_id = w.run_id)",
        [record_id, scope],
    )
    return bool(len(written))


def _record_exists(store: Store, record_id: str) -> bool:
    return bool(len(store.read("SELECT 1 FROM materials WHERE record_id = ?", [record_id])))


def _none(value: Any) -> Any:
    """None for pandas' missing markers (NaN, NA, NaT), numpy scalars as Python ones, anything else as it is."""
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value
