"""Drive a connector: pages -> map -> harmonize -> quarantine -> staged page commits -> one publish.

Every page is staged atomically together with the run's cursor, so memory stays flat and an interrupted
run (an error, or kill -9) resumes after its last staged page with `resume=True` (which staged run that is, and
when a resume is refused: `matreg.resume`). The run becomes visible only when its last page is staged and the whole
run is published in one rename.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain, islice
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute
from pymatgen.core.structure import StructureError
from tqdm import tqdm

from matreg.defaults import COMMIT_RECORDS
from matreg.errors import DroppedFields, FormulaError, MatregError, RecordError, RunRefused, clipped, listed
from matreg.fieldmap import field_map_file
from matreg.formula import material_key, material_text, reduced_formula
from matreg.jsontext import to_json
from matreg.resume import dry_resumed, note_dropped, started_or_resumed
from matreg.runs import (
    LIMIT_KEY,
    RunReport,
    counts_json,
    fetch_run_row,
    parameters_json,
    run_info,
    run_selection,
    selection_json,
)
from matreg.schema import arrow_schema, arrow_table, canonical_method, children_of, table_spec, value_conditions
from matreg.sources.base import (
    Attribution,
    Connector,
    NamedRecord,
    Page,
    RawItem,
    RawValue,
    RunInfo,
    SourceRecord,
    value_method,
)
from matreg.store import Kind, Removed, Store, StoreBusy, ValueKey, WholeScope
from matreg.validation import (
    Rejection,
    RunStamp,
    arrow_frame,
    attribute_rows,
    check_attributes,
    harmonize_values,
    is_value_payload,
    material_row,
    rows_breaking_rules,
    validate_rows,
    validate_table,
    value_of_payload,
)

COMMIT_SECONDS = 10.0  # a fetch commits at least this often (and every `COMMIT_RECORDS` records; a commit: ~1.5 ms)
GC_THRESHOLD = 20_000  # allocations between cyclic-GC runs during a fetch (CPython's default is 700)


def tune_gc_for_fetch() -> None:
    """Make the cyclic GC cheap for a long fetch or import: with CPython's defaults it takes up to a quarter of the
    CPU time (`matreg import` of 51,255 lab rows: 7.2 CPU s, 5.9 with this).

    The libraries' objects, alive all run long, are frozen out of its scans, and as decoded pages are thousands of
    containers each, it runs less often. Neither changes what is freed, only when.
    """
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD)


@dataclass
class _Mapped:
    """A raw item mapped to canonical terms, with its materials row and page, awaiting the value check."""

    item: RawItem
    record: SourceRecord
    material: dict[str, Any]
    page: int
    read: int  # how many items the run read before this one: of two reads of a record, the later has the larger


# What reading a value of an unexpected shape raises (a null where a list belongs, a list where a text does, a number
# too large for a float or one that divides by zero, a structure pymatgen refuses to build)
_MALFORMED = (ArithmeticError, AttributeError, IndexError, KeyError, StructureError, TypeError, ValueError)
_ROW_TABLES = ("materials", "record_attributes", "quarantine")  # a page's tables kept as rows (properties: Arrow)


class _PageRows:
    """Canonical rows of the pages of one commit, mapped together: of a record read twice on a page, the rows of its
    last read only (read on two pages, both reads go to publishing, which writes the rows of the last: `reads`); of a
    connector that joins rows (`ReadMode.joins_rows`), the values of each of its rows on the page, with one materials
    row, as its connector keeps a record's rows on one page."""

    def __init__(self, connector: Connector, stamps: list[RunStamp], first_read: int = 0) -> None:
        """`stamps`: the run and when each page was read (its rows' `fetched_at`), by page; `first_read`: how many
        items the run read before the commit's."""
        self.connector = connector
        self.stamps = stamps
        self.first_read = first_read
        self.rows: dict[str, dict[Any, dict]] = {name: {} for name in _ROW_TABLES}
        self.row_reads: dict[str, dict[Any, int]] = {"materials": {}, "record_attributes": {}}  # as `rows`, by key
        self.properties = arrow_schema("properties").empty_table()
        self.property_reads = np.empty(0, dtype=np.int64)
        self.mapped: list[_Mapped] = []  # awaiting the value check (`finish`)
        self.n_read = 0
        self.n_reread = 0  # admitted reads of a record read again later on its page
        self.reasons: Counter = Counter()
        self.unmapped: Counter = Counter()
        self.absent: dict[str, int] | None = None  # as RunReport.absent, of these pages

    def add(self, item: RawItem, page: int) -> None:
        """Map one raw item of the commit's `page`th page (its values are checked with all of the commit's, by
        `finish`); quarantine it if it cannot be."""
        self.n_read += 1
        if item.error:
            self.reject(self._rejected(item, [item.error]), page)
            return
        try:
            record = self.connector.to_record(item.payload)
            material = material_row(record, self.connector.attribution, self.stamps[page])
        except (RecordError, FormulaError) as exc:
            self.reject(self._rejected(item, [str(exc)]), page)
            return
        except _MALFORMED as exc:  # a field of a shape the mapping does not expect: this record alone is refused
            source = self.connector.attribution.source
            reason = f"record not in the form the {source} mapping reads (or a matreg bug): {_error_text(exc)}"
            self.reject(self._rejected(item, [reason]), page)
            return
        if record.unmapped:  # Counter.update costs a microsecond even for nothing
            self.unmapped.update(record.unmapped)
        if self.absent is None or self.absent:  # once a record carried every mapped field, none is lacked by all
            self.absent = _lacked_by_all(self.absent, dict.fromkeys(record.absent, 1))
        self.mapped.append(_Mapped(item, record, material, page, self.first_read + self.n_read - 1))

    def finish(self) -> None:
        """Harmonize the commit's values at once; admit the records with a valid value (and valid extension values).

        A record with no valid value is quarantined whole, with its values' reasons; an admitted record's invalid
        values are quarantined one by one.
        """
        values = harmonize_values(
            [mapped.record for mapped in self.mapped],
            [mapped.material for mapped in self.mapped],
            self.connector.attribution,
        )
        rejected: dict[int, list[Rejection]] = {}
        for position, rejection in values.rejected:
            rejected.setdefault(position, []).append(rejection)
        valid = np.bincount(values.positions, minlength=len(self.mapped))
        candidates = []
        for position, mapped in enumerate(self.mapped):
            if valid[position]:
                candidates.append(position)
            else:
                reasons = _reasons(rejected.get(position, ())) or ["no property values", *mapped.record.left_out]
                self.reject(self._rejected(mapped.item, reasons, mapped.material["record_id"]), mapped.page)
        admitted = (
            self._check_extension(candidates, rejected) if self.connector.extension else dict.fromkeys(candidates, ())
        )
        last_reads = self._last_reads(admitted)
        self.n_reread += len(admitted) - len(last_reads)
        for position, attributes in admitted.items():
            mapped = self.mapped[position]
            if position in last_reads:
                self.admit(mapped, attributes, rejected.get(position, ()))
            else:  # read again later on its page: no value of it mixes with the last read's, its rejected are kept
                for rejection in rejected.get(position, ()):
                    self.reject(rejection, mapped.page)
        in_admitted = np.isin(values.positions, np.fromiter(last_reads, dtype=np.int64, count=len(last_reads)))
        reads = np.array([mapped.read for mapped in self.mapped], dtype=np.int64)
        self.properties = values.table.filter(in_admitted)  # one row per key: a page's last read, one value per key
        self.property_reads = reads[values.positions[in_admitted]]
        self.mapped = []

    def _last_reads(self, positions: Iterable[int]) -> set[int]:
        """Of these positions of mapped records, those of each record's last read on its page: all of them where the
        connector joins rows (`ReadMode.joins_rows`: each is a row of its record's one read, with values of its
        own)."""
        if self.connector.read_mode.joins_rows:
            return set(positions)
        last = {
            (self.mapped[position].page, self.mapped[position].material["record_id"]): position
            for position in positions
        }
        return set(last.values())

    def _check_extension(self, candidates: list[int], rejected: dict[int, list[Rejection]]) -> dict[int, list[dict]]:
        """Check the candidates' extension values as one frame: the attribute rows of those that pass, by position.

        A record that fails is quarantined whole: its values are not stored without their sample metadata.
        """
        if not candidates:
            return {}
        extension = self.connector.extension
        frame = pd.DataFrame([self.mapped[position].record.attributes for position in candidates])
        valid, reasons = check_attributes(extension, frame)
        admitted = {}
        for row, position in enumerate(candidates):
            mapped = self.mapped[position]
            if row in reasons:
                reasons_of_row = reasons[row] + _reasons(rejected.get(position, ()))
                self.reject(self._rejected(mapped.item, reasons_of_row, mapped.material["record_id"]), mapped.page)
            else:
                record_id = mapped.material["record_id"]
                admitted[position] = attribute_rows(extension, record_id, valid.loc[row], self.stamps[0].run_id)
        return admitted

    def admit(self, mapped: _Mapped, attributes: Iterable[dict], rejected: Iterable[Rejection]) -> None:
        """Add a record's material and attribute rows, and quarantine its rejected values."""
        self._add_row("materials", (mapped.page, mapped.material["record_id"]), mapped.material, mapped.read)
        for row in attributes:
            self._add_row("record_attributes", (mapped.page, row["record_id"], row["attribute"]), row, mapped.read)
        for rejection in rejected:
            self.reject(rejection, mapped.page)

    def _add_row(self, name: str, key: tuple, row: dict[str, Any], read: int) -> None:
        self.rows[name][key] = row
        self.row_reads[name][key] = read

    def _rejected(self, item: RawItem, reasons: list[str], record_id: str | None = None) -> Rejection:
        """The rejection of a whole raw item, identified as its connector says (`Connector.identity`), of its record:
        the one it was mapped to (`record_id`), else the one it was asked for as (`RawItem.source_id`), if any."""
        if record_id is None and item.source_id is not None:
            record_id = self.connector.attribution.record_id(item.source_id)
        return Rejection(item.item_id, item.payload, reasons, record_id, identity=self.connector.identity(item))

    def reject(self, rejection: Rejection, page: int) -> None:
        """Quarantine a rejected input; its reasons are counted once per quarantine row (an input identical to one
        the page rejected already is that row: two identical rows of a duplicate id)."""
        row = quarantine_row(self.connector.attribution, rejection, self.stamps[page])
        key = (page, row["quarantine_id"])
        if key not in self.rows["quarantine"]:
            self.reasons.update(rejection.reasons)
        self.rows["quarantine"][key] = row

    def count_into(self, report: RunReport) -> None:
        """Count the rows of these pages into the run's totals (`report`)."""
        report.n_fetched += self.n_read
        report.n_stored += len(self.rows["materials"])
        report.n_values += self.properties.num_rows
        report.n_quarantined += len(self.rows["quarantine"])
        report.n_reread += self.n_reread
        report.reasons.update(self.reasons)
        report.unmapped.update(self.unmapped)
        report.absent = _lacked_by_all(report.absent, self.absent)

    def tables(self) -> dict[str, list[dict] | pyarrow.Table]:
        return {name: list(rows.values()) for name, rows in self.rows.items()} | {"properties": self.properties}

    def reads(self) -> dict[str, np.ndarray]:
        """Of each row of `tables()` that belongs to a record (and the record's own), the read it came from
        (`_Mapped.read`): publishing keeps only the rows of a record's last read in the run."""
        reads = {name: np.fromiter(of_key.values(), dtype=np.int64) for name, of_key in self.row_reads.items()}
        return reads | {"properties": self.property_reads}


def quarantine_row(attribution: Attribution, rejection: Rejection, stamp: RunStamp) -> dict[str, Any]:
    """The quarantine row of a rejected input; its id hashes the source and what the input is: its identity where its
    connector gives one (a lab row's cells by what they mean, neither its line nor its columns' names), else its
    item and the input as received (one row per rejection; a value's atom count, stored in its payload, is not part
    of it)."""
    received = to_json(rejection.raw)
    stored = received if rejection.atoms_per_cell is None else to_json(rejection.payload())
    identity = f"{rejection.item}\0{received}" if rejection.identity is None else rejection.identity
    return {
        "quarantine_id": _quarantine_id(attribution.source, identity),
        "run_id": stamp.run_id,
        "source": attribution.source,
        "item": rejection.item,
        "raw": stored,
        "reasons": rejection.reasons,
        "quarantined_at": stamp.fetched_at,
        "record_id": rejection.record_id,
        "scope": attribution.scope,
    }


def _quarantine_id(source: str, identity: str) -> str:
    return hashlib.sha1(f"{source}\0{identity}".encode()).hexdigest()


@dataclass
class _DecidedRows:
    """The quarantine rows of a lab file that review decisions name (readmits, dismissals, reopenings: by id), which
    a row the file's import rejects is although matreg computes its id otherwise now, so that it keeps theirs and the
    decisions hold. Only rows an import of the same mapping quarantined count (by another, the same cells may mean
    another row; a run that recorded no mapping is one of another): of those,
    - a row as a matreg older than commit 336488f quarantined it (named by its line, its id hashing that name and
      the row as received, not what it means: `_line_named`), rejected again as it was received then, every cell
      and its line the same (`by_raw`); a row it rejected otherwise is another one, as that matreg had it;
    - a row whose id is not what its row means now (one of those, kept so), rejected again as it was quarantined,
      or as a row moved or its unread cells changed (`by_id`: what the row means is what it meant when quarantined).
    A row read by another mapping keeps its id of today: a readmit made under the old id no longer holds (the import
    warns of it as stale), a row dismissed so is open again. Of a row's ids that a decision names, its id of today
    included, the one decided on last is kept (`decided_at`), so a later decision under either id is not undone."""

    store: Store
    connector: Connector
    info: RunInfo
    by_raw: dict[str, str] = field(default_factory=dict)  # row as received (JSON) -> the id it keeps
    by_id: dict[str, str] = field(default_factory=dict)  # id computed now -> the id it keeps
    decided_at: dict[str, str] = field(default_factory=dict)  # id -> the latest curation entry naming it

    def load(self) -> None:
        """Read the decided rows of the file's scope from the store, as it is now."""
        source, scope = self.connector.attribution.source, self.connector.attribution.scope
        self.by_raw, self.by_id, self.decided_at = {}, {}, {}
        mapping = json.loads(parameters_json(self.info)).get("mapping")
        for row in self.store.decided_quarantine_rows(source, scope).itertuples():  # the latest decided last
            self.decided_at[row.quarantine_id] = row.latest
            payload = json.loads(row.raw)
            of_mapping = isinstance(row.parameters, str) and json.loads(row.parameters).get("mapping") == mapping
            if not of_mapping or not isinstance(payload, dict) or "_line" not in payload:  # not a whole row of it
                continue
            if _line_named(source, row.quarantine_id, row.item, row.raw, payload):
                self.by_raw[to_json(payload)] = row.quarantine_id
            identity = self.connector.identity(RawItem(row.item, payload))
            now = None if identity is None else _quarantine_id(source, identity)
            if now not in (None, row.quarantine_id):
                self.by_id[now] = row.quarantine_id

    def keep_ids(self, batch: pyarrow.Table) -> pyarrow.Table:
        """A batch of the run's quarantine rows, those that are decided rows with their ids."""
        if not self.by_raw and not self.by_id:
            return batch
        ids = batch["quarantine_id"].to_pylist()
        kept = [
            self._kept_id(quarantine_id, raw) for quarantine_id, raw in zip(ids, batch["raw"].to_pylist(), strict=True)
        ]
        if kept == ids:
            return batch
        position = batch.schema.get_field_index("quarantine_id")
        return batch.set_column(position, batch.schema.field(position), pyarrow.array(kept, pyarrow.string()))

    def _kept_id(self, quarantine_id: str, raw: str) -> str:
        """Of a row's ids (its own, that of its row as received, that it kept before), the one decided on last; its
        own where none is decided."""
        ids = (quarantine_id, self.by_raw.get(raw), self.by_id.get(quarantine_id))
        return max((i for i in ids if i in self.decided_at), key=self.decided_at.__getitem__, default=quarantine_id)


def _line_named(source: str, quarantine_id: str, item: str, raw: str, payload: Any) -> bool:
    """True for a quarantine row of a whole lab row as a matreg older than commit 336488f wrote it: named by its line,
    its id hashing the source, that name and the row as received."""
    if not isinstance(payload, dict) or item != f"line {payload.get('_line')}":
        return False
    return _quarantine_id(source, f"{item}\0{raw}") == quarantine_id


class _PublishCheck:
    """The schema check of a run's rows as the run is published (`Store.publish_run`).

    Rows that break a column rule the mapping does not check (e.g. a space group number 0 a source sent, a
    provenance outside the schema's) are withheld and quarantined with the reasons: a materials row with all its
    record's rows (every read of the record in the run, its values and attributes), any other row alone. Payloads
    leave the stamp columns out, so the same rejection is one quarantine row however often it is fetched. The run's
    counts are corrected in `report`. A table that is wrong as a whole refuses the run (ValidationError).
    """

    def __init__(
        self,
        report: RunReport,
        attribution: Attribution,
        stored: _StoredFormulas | None = None,
        named_record: Callable[[Any], NamedRecord | None] | None = None,
        refusals: Callable[[], None] = lambda: None,
        decided: _DecidedRows | None = None,
        removals: Callable[[Removed], None] = lambda removed: None,
    ) -> None:
        """`attribution`: the run's source and scope. `stored` (`_StoredFormulas`) is given for a lab file: a record
        whose formula or state differs from the stored one's is another material under that id, refused;
        `named_record` (`Connector.named_record`) with it: the record a quarantined row is, which the run does not
        withdraw (nor the stored values of its keys, where the run writes the record from its other rows:
        `kept_values`); and `decided`: the decided quarantine rows whose ids the run's rows keep. `refusals` raises
        (RunRefused) when the store refuses the whole run (`refuse_run`), `removals` (DroppedFields) when it refuses
        it for the stored values its write would remove (`refuse_removals`)."""
        self.report, self.attribution = report, attribution
        self.stored, self.named_record, self.refusals, self.decided = stored, named_record, refusals, decided
        self.removals = removals
        self.report_before = {name: copy.copy(getattr(report, name)) for name in _CHECKED_COUNTS}  # (`restart`)
        self._start()

    def _start(self) -> None:
        """Nothing found yet; the decided quarantine rows as the store has them now."""
        if self.decided is not None:
            self.decided.load()
        self.moved = False  # rows whose ids name places were refused so: the file's rows moved
        self.refused: dict[str, dict[str, Any]] = {}  # record_id -> its withheld rows, by table, and the reasons
        self.lone: list[tuple[dict, list[str]]] = []  # withheld rows of records otherwise published, with reasons
        self.admitted: dict[str, tuple[str, str | None]] = {}  # of a lab file, the records the run publishes, with
        # their provenance and method (a value's, unless it gives its own: `value_method`)
        self.rejected: dict[str, tuple[str, str | None]] = {}  # of a lab file, the records of rows it quarantined
        # whole, with formulas and phases
        self.rejected_keys: list[ValueKey] = []  # and the value keys of those rows, and of the values it rejected

    def admit(self, name: str, batch: pyarrow.Table) -> pyarrow.Table:
        if name in ("fetch_runs", "quarantine"):  # rows matreg itself makes: a failure is a bug, not bad input
            if name == "quarantine" and self.decided is not None:
                batch = self.decided.keep_ids(batch)
            validate_table(name, arrow_frame(batch), unique_keys=False)
            if name == "quarantine" and self.named_record is not None:
                self._note_rejected(batch["raw"].to_pylist(), batch["record_id"].to_pylist())
            return batch
        keep = np.ones(batch.num_rows, dtype=bool)
        breaking = rows_breaking_rules(name, arrow_frame(batch))
        if name == "materials" and self.stored is not None:
            for position, reason in self._other_materials(batch).items():
                breaking.setdefault(position, []).append(reason)
        for position, reasons in breaking.items():
            row = _content(name, _row(batch, position))
            if name == "materials":
                self._refuse(row, reasons)
            elif row["record_id"] not in self.refused:  # (a refused record's rows are set aside below)
                self.lone.append(({name: row}, reasons))
                keep[position] = False
        if self.refused and name in ("materials", *children_of("materials")):
            of_refused = pyarrow.compute.is_in(batch["record_id"], pyarrow.array(list(self.refused))).to_numpy()
            if name != "materials":  # a refused record's other reads are the same record: not listed again
                for position in np.flatnonzero(of_refused):
                    row = _content(name, _row(batch, position))
                    self.refused[row["record_id"]][name].append(row)
            keep &= ~of_refused
        self._count(name, int((~keep).sum()))
        kept = batch if keep.all() else batch.filter(keep)
        if name == "materials" and self.named_record is not None:
            columns = (kept[column].to_pylist() for column in ("record_id", "provenance", "method"))
            self.admitted.update((record_id, described) for record_id, *described in zip(*columns, strict=True))
        return kept

    def _note_rejected(self, payloads: list[str], record_ids: list[str | None]) -> None:
        """Note the records of the rows (quarantine payloads, JSON) that the run rejected whole, with their formulas
        as written and phases, and the keys of those rows' values and of the values it rejected on their own (of
        these records: `record_ids`), which the materials published before name."""
        for payload, of_record in zip(payloads, record_ids, strict=True):
            raw = json.loads(payload)
            if is_value_payload(raw):
                if of_record in self.admitted:
                    self.rejected_keys.append(self._value_key(of_record, value_of_payload(raw)))
                continue
            named = self.named_record(raw)
            if named is not None:
                record_id = self.attribution.record_id(named.source_id)
                self.rejected[record_id] = (named.formula, named.phase)
                self.rejected_keys += [ValueKey(record_id, *key) for key in named.value_keys]

    def _value_key(self, record_id: str, value: RawValue) -> ValueKey:
        """The key a value of an admitted record is stored under: its method its own, else its record's."""
        provenance, method = self.admitted[record_id]
        method = canonical_method(value_method(value, provenance, method))
        conditions = tuple(getattr(value, condition) for condition in value_conditions())  # as `of_keys` reads rows
        return ValueKey(record_id, value.property, method, conditions)

    def _other_materials(self, batch: pyarrow.Table) -> dict[int, str]:
        """Rows whose record id the store holds as another material (another formula, molecule or state), by position,
        with the reason."""
        record_ids = batch["record_id"].to_pylist()
        columns = (batch[column].to_pylist() for column in ("formula", "formula_original", "phase"))
        materials = list(zip(*columns, strict=True))
        conflicts = self.stored.conflicts(record_ids, materials)
        self.moved = self.moved or (bool(conflicts) and self.stored.by_position)
        why = _MOVED if self.stored.by_position else _ANOTHER_SAMPLE
        return {
            position: f"{record_id} holds {conflicts[record_id][0]} from {_import_named(conflicts[record_id][1])}, "
            f"this row {material_text(*material)}: {why}"
            for position, (record_id, material) in enumerate(zip(record_ids, materials, strict=True))
            if record_id in conflicts
        }

    def _refuse(self, material: dict[str, Any], reasons: list[str]) -> None:
        """Set a record aside with the reasons of its (first) failing materials row."""
        rows_of_record = {table: [] for table in children_of("materials")}
        self.refused.setdefault(material["record_id"], {"materials": [material], "reasons": reasons, **rows_of_record})

    def _count(self, name: str, n_withheld: int) -> None:
        if name == "materials":
            self.report.n_stored -= n_withheld
        elif name == "properties":
            self.report.n_values -= n_withheld

    def withheld(self) -> list[dict]:
        stamp = RunStamp(self.report.run_id, datetime.now(UTC))
        rejections = [
            Rejection(rows["materials"][0]["source_id"], _record_payload(rows), rows["reasons"], record_id)
            for record_id, rows in self.refused.items()
        ] + [Rejection(_item_of(rows), rows, reasons, _record_of(rows)) for rows, reasons in self.lone]
        for rejection in rejections:
            self.report.reasons.update(rejection.reasons)
        self.report.n_quarantined += len(rejections)
        return [quarantine_row(self.attribution, rejection, stamp) for rejection in rejections]

    def withheld_keys(self) -> dict[str, list]:
        """The records withheld: refused here, and of a lab file those whose row the file still has but the run
        rejected (`_still_in_file`: none of their rows is published, and they are not withdrawn)."""
        return {"materials": list(dict.fromkeys([*self.refused, *self._still_in_file()]))}

    def _still_in_file(self) -> list[str]:
        """Of a lab file, the records whose row the run rejected whole and did not admit otherwise: their last valid
        read stays, as a stored record's that a later fetch rejects whole does. Where ids name places, only those
        stored as the material the row is (rows moved: the row is another record's, the place's is withdrawn), its
        formula read as stored: a row refused now ('ZnO[0]') may be one an older matreg read and stored there."""
        rejected = {record: material for record, material in self.rejected.items() if record not in self.admitted}
        if not rejected or self.stored is None or not self.stored.by_position:
            return sorted(rejected)
        given = {
            record: (reduced_formula(text, as_stored=True), text, phase) for record, (text, phase) in rejected.items()
        }
        readable = {record: material for record, material in given.items() if material[0] is not None}
        moved = self.stored.conflicts(list(readable), list(readable.values()))
        return sorted(record for record in readable if record not in moved)

    def kept_values(self) -> list[ValueKey]:
        """Of a lab file, the value keys of the rows the run rejected whole of the records it writes from their other
        rows (a measurement series), and of the values it rejected on their own: their stored values are kept beside
        the record's other values, as a record whose every row the run rejected keeps its last valid read whole
        (`_still_in_file`)."""
        return [key for key in self.rejected_keys if key.record_id in self.admitted]

    def rows_moved(self) -> bool:
        return self.moved

    def refuse_run(self) -> None:
        self.refusals()

    def refuse_removals(self, removed: Removed) -> None:
        self.removals(removed)

    def reads_store(self) -> bool:
        return self.stored is not None

    def restart(self) -> None:
        """Forget what was found, and put the report's counts back as they were before the check."""
        for name, value in self.report_before.items():
            setattr(self.report, name, copy.copy(value))
        self._start()


_CHECKED_COUNTS = ("n_stored", "n_values", "n_quarantined", "reasons")  # what of a run's report the check corrects


def _import_named(scope: str) -> str:
    return f"'{scope}'" if scope else "an earlier import"  # (stores written before scopes were recorded)


_MOVED = (
    "without an id_column a row is known by its file's name and row number, so it would replace another material "
    "(and take its review decisions); give the mapping an id_column (or import the file under another name). "
    "While rows have moved, the import withdraws nothing"
)
_ANOTHER_SAMPLE = (
    "one id names one material of a dataset, and this row would replace it (and take its review decisions); give "
    "this file's rows ids of their own, or correct the formula (or its state)"
)


def _row(table: pyarrow.Table, position: int) -> dict[str, Any]:
    return table.slice(int(position), 1).to_pylist()[0]


def _content(name: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row without its stamp columns (which run wrote it, when): what it says."""
    return {column: row[column] for column in table_spec(name).content_columns}


def _record_payload(rows: dict[str, Any]) -> dict[str, list[dict]]:
    """A refused record's rows as its quarantine payload, by table (materials first)."""
    return {name: rows[name] for name in ("materials", *children_of("materials"))}


def _record_of(rows: dict[str, dict]) -> str:
    """The record a lone withheld row belongs to."""
    ((_, row),) = rows.items()
    return row["record_id"]


def _item_of(rows: dict[str, dict]) -> str:
    """What a lone withheld row is: '<source_id>:<property>' for a value, '<source_id>:<attribute>' else."""
    ((name, row),) = rows.items()
    source_id = row["record_id"].split(":", 1)[1]
    return f"{source_id}:{row.get('property') or row.get('attribute')}"


def _error_text(exc: Exception) -> str:
    """An exception as one line of a quarantine reason: its type and first line ('KeyError: 'name'')."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {clipped(lines[0], 200)}" if lines else type(exc).__name__


def _reasons(rejections: Iterable[Rejection]) -> list[str]:
    """The reasons of several rejected values, in order."""
    return [reason for rejection in rejections for reason in rejection.reasons]


def run_ingest(
    connector: Connector,
    store: Store,
    *,
    limit: int | None = None,
    dry_run: bool = False,
    progress: bool = False,
    resume: bool = False,
    resume_or_start: bool = False,
    commit_every: int = COMMIT_RECORDS,
    pause_gc: bool = False,
    moved_from: Path | str | None = None,
    allow_dropped_fields: bool = False,
    store_given: str = "",
) -> RunReport:
    """Fetch what the connector yields (up to `limit` items), staging its pages in commits of `commit_every` items
    (or COMMIT_SECONDS), then publish the run. A killed run resumes after its last commit.

    `limit` is one of the run's parameters: a run is resumed only with the limit it was started with (a resume with
    another would continue after a page the first limit cut short). `pause_gc` turns CPython's cyclic GC off while
    pages are read, for the whole process, collecting between commits instead (`_cyclic_gc_paused`): what
    `matreg fetch` does. `moved_from` (`import --moved-from`), one of the run's parameters too: where the lab file
    was imported from before it moved; the run also withdraws the records last written from there that the file no
    longer gives (`_refuse_moved_from` says when it may). `resume` continues the interrupted run of the same query
    and endpoint (NothingToResume if there is none); `resume_or_start` continues it if there is one, else starts a
    fresh run, the report's `not_resumed` saying why none was continued. A run whose write would remove stored values
    of properties whose mapped fields none of its records carried is not published (DroppedFields: it stays staged)
    unless `allow_dropped_fields` (`_refuse_dropped_fields`). The `matreg drop`s that a refused resume's error prints
    give `store_given`, the --store the command was given ('' where it is the default: `resume.drop_command`).
    """
    info = run_info(connector, limit, moved_from)
    if connector.read_mode.whole_scope:
        info.relative_path = store.relative_path(info.endpoint)
    try:
        whole_scope = _whole_scope(connector, store, info)  # (its places read once, as the run starts)
        _refuse_moved_from(connector, store, info, whole_scope)
        _refuse_run(connector, store, info, whole_scope)
        if dry_run:
            resuming = resume or resume_or_start
            resumed = dry_resumed(connector, store, info, resume_or_start, store_given) if resuming else None
            return _dry_run(connector, store, info, whole_scope, limit, resumed)
        report = started_or_resumed(connector, store, info, resume, resume_or_start, store_given)
        try:
            if report.status != "complete":  # a run resumed after all its pages were staged is only published
                if not (report.resumed and report.cursor is None):  # (stopped after its last page: none is left)
                    _stage_pages(connector, store, info, report, limit, progress, commit_every, pause_gc)
                report.status, report.cursor = "complete", None
                report.not_read_again = _not_read_again(connector, store, info, report.run_id)
                store.stage_page(report.run_id, {"fetch_runs": [fetch_run_row(info, report, connector)]})
            report.database_versions = _database_versions(store, report)
            check = _publish_check(report, connector, store, info, whole_scope, allow_dropped_fields)
            store.publish_run(report.run_id, check, report.finish, connector.unread_columns, whole_scope)
        except RunRefused:  # another run took its name or scope meanwhile: as if refused at its start
            store.discard_run(report.run_id)
            raise
        except Exception as exc:
            resumable = report.status == "complete" and not connector.read_mode.whole_scope  # (imports read again)
            _record_failure(store, info, report, connector, exc)
            if isinstance(exc, StoreBusy) and resumable:  # every page staged, publishing stopped
                raise StoreBusy(exc.path, "run the same command with --resume to publish the staged run") from None
            note_dropped(exc, report)
            raise
        except KeyboardInterrupt as exc:
            note_dropped(exc, report)
            raise
        finally:
            store.release_run(report.run_id)
        return report
    finally:
        connector.close()


def _refuse_run(connector: Connector, store: Store, info: RunInfo, whole_scope: WholeScope | None) -> None:
    """RunRefused when the store refuses the run as a whole: asked as it starts, and again under the store's lock as
    it is published (another run may have published meanwhile: `_PublishCheck.refuse_run`). `whole_scope`: what a
    run that reads its scope whole reads, and where (`_whole_scope`)."""
    _refuse_sharing_a_source_name(connector, store, info)
    _refuse_taking_over_scope(connector, store, whole_scope)


def _refuse_sharing_a_source_name(connector: Connector, store: Store, info: RunInfo) -> None:
    """RunRefused when the store holds the run's source name from runs of the other kind: a lab import of a name
    fetched from a catalog source, or a fetch under a lab dataset's name (a catalog source added since, or a catalog
    of other sources given to the import). One would store its rows as the other's records, and a fetch replace the
    lab's values. A lab import is a run by a mapping (its parameters have named it since matreg's first version)."""
    if not store.exists():
        return
    source, lab = connector.attribution.source, "mapping" in info.parameters
    others = store.read(
        "SELECT endpoint FROM fetch_runs WHERE source = ? AND status = 'complete' "
        "AND (json_extract(parameters, '$.mapping') IS NOT NULL) <> ? ORDER BY started_at DESC LIMIT 1",
        [source, lab],
    )["endpoint"].tolist()
    if not others:
        return
    if lab:
        raise RunRefused(
            f"the store holds records of catalog source '{source}' (fetched from {others[0]}): a lab dataset of that "
            "name would be stored as that source's records, and a fetch of it would replace their values; give the "
            f"dataset a name of its own in the mapping (dataset: {source}-lab, say)"
        )
    raise RunRefused(
        f"the store holds lab dataset '{source}' (imported from {others[0]}): catalog source '{source}' fetched under "
        "that name would be stored as the lab's records and replace their values; give the catalog source a name of "
        "its own (its key in the catalog)"
    )


def _refuse_taking_over_scope(connector: Connector, store: Store, whole_scope: WholeScope | None) -> None:
    """RunRefused when a run that reads its scope whole (a lab file: `whole_scope`) would write for the first time the
    scope of another file that is still there (a file of the same name in another folder, `Store.lab_file`): that
    file's values of the records both give would be hidden. A file that was moved (nothing left where it was imported
    from), one that wrote the scope before from its place (`WholeScope.places`: a project folder moved or copied whole
    with the store is the same place), or a scope the user named, takes it over."""
    if whole_scope is None or connector.read_mode.scope_chosen or not store.exists():
        return
    source, scope = whole_scope.source, whole_scope.scope
    imports = [past for past in _imports_of(store, source) if past.scope == scope]
    if any(past.read_at(whole_scope.places) for past in imports):
        return
    others = [path for past in imports if (path := store.lab_file(past.endpoint, past.relative_path)).is_file()]
    if others:
        here = Path(whole_scope.endpoint)
        raise RunRefused(
            f"'{scope}' of {source} was imported from {others[0]}, which is still there; this file is {here}. Under "
            "one name, this import would replace that file's values of the records both give. Import it under "
            f"another name to keep both (--as {here.parent.name}/{here.name}), or under the same one to replace "
            f"them (--as {here.name})"
        )


def _refuse_moved_from(connector: Connector, store: Store, info: RunInfo, whole_scope: WholeScope | None) -> None:
    """RunRefused, before anything is written, when a run said to read a file moved from elsewhere (`moved_from`)
    may not withdraw what was imported from there: it is a fetch (no `whole_scope`), the place still holds a file (a
    copy, not a move), or its scope (the dataset, and the file's name or --as name) was never imported from there
    (`WholeScope.moved_from`, its places)."""
    old = info.parameters.get("moved_from")
    if old is None:
        return
    source, scope = connector.attribution.source, connector.attribution.scope
    if whole_scope is None:
        raise RunRefused(
            f"{source} is fetched, not imported from a file: only a lab file's import is said to be moved "
            "(--moved-from)"
        )
    if Path(old).is_file():
        raise RunRefused(
            f"{old} still holds a file: {info.endpoint} was not moved from there; import each under a name of its own "
            "(--as), or remove the one no longer wanted first"
        )
    imports, old_places = _imports_of(store, source) if store.exists() else [], whole_scope.moved_from
    of_scope = [past for past in imports if past.scope == scope]
    if any(past.read_at(old_places) for past in of_scope):
        return
    places = list(dict.fromkeys(past.endpoint for past in of_scope))
    said = [f"it was imported from {', '.join(places)}"] if places else []
    others = list(dict.fromkeys(past.scope for past in imports if past.read_at(old_places)))
    if others:
        said.append(f"the file there was imported as {', '.join(others)} (import this one under that name: --as)")
    was = "; ".join(said) or "it was never imported"
    raise RunRefused(f"{scope} of {source} was never imported from {old}, which the import says it moved from; {was}")


def _stage_pages(
    connector: Connector,
    store: Store,
    info: RunInfo,
    report: RunReport,
    limit: int | None,
    progress: bool,
    commit_every: int,
    pause_gc: bool,
) -> None:
    with (
        tqdm(desc=report.source, unit=" records", initial=report.n_fetched, disable=not progress) as bar,
        _cyclic_gc_paused(pause_gc),
    ):
        pages = _noting_count(connector.pages(report.cursor), report, connector)
        for commit in _commits(pages, _Budget(limit, report.n_fetched), commit_every, bar, collect=pause_gc):
            rows = _map_pages(connector, commit.items, commit.read_at, report.run_id, report.n_fetched)
            rows.count_into(report)
            report.add_cached(commit.cached_read_at)
            last = commit.last
            report.cursor, report.n_available, report.request = last.cursor, last.total, last.request
            run_row = fetch_run_row(info, report, connector)
            store.stage_page(report.run_id, rows.tables() | {"fetch_runs": [run_row]}, rows.reads())
            del commit, rows, last  # the commit's pages are freed as `_commits` reads on (see there)


def _database_versions(store: Store, report: RunReport) -> list[str] | None:
    """Of a resumed run, the database versions of its source that its rows carry, in the order read, where they are
    several: the source's changed while the run was interrupted (the Materials Project's heartbeat names a new
    db_version), and the run holds rows of each. None otherwise."""
    versions = store.staged_database_versions(report.run_id) if report.resumed else []
    return versions if len(versions) > 1 else None


def _noting_count(pages: Iterator[Page], report: RunReport, connector: Connector) -> Iterator[Page]:
    """The pages of a run, the first one's count of matching records noted (`RunReport.note_count`) where the run
    resumes the listing its committed pages were of (`Connector.continues_listing`)."""
    if report.cursor is None or not connector.continues_listing(report.cursor):
        yield from pages
        return
    for page in pages:
        report.note_count(page.total)
        yield page
        break
    yield from pages


@contextlib.contextmanager
def _cyclic_gc_paused(pause: bool) -> Iterator[None]:
    """CPython's cyclic GC off (if `pause`) while a run reads and maps pages: `_commits` collects between commits.

    Decoded pages are thousands of containers each and hold no cycles, but while a commit's pages are alive every
    automatic collection scanned them: a tenth of the CPU time of the structure sources. Between commits only the
    run's own objects are left to scan. The GC is off for the whole process meanwhile, hence a caller's choice.
    """
    enabled = gc.isenabled()
    try:
        if pause:
            gc.disable()
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class _Budget:
    """How many items a run may still read under its limit (None: no limit), counting from what it has read."""

    limit: int | None
    n_read: int

    def take(self, items: list[RawItem]) -> list[RawItem]:
        """The items of a page the run may still read, counted as read."""
        kept = items if self.limit is None else items[: max(self.limit - self.n_read, 0)]
        self.n_read += len(kept)
        return kept

    def spent(self) -> bool:
        return self.limit is not None and self.n_read >= self.limit


@dataclass
class _Commit:
    """The pages a run read since its last commit: the items of each, and the last page (cursor, total, request)."""

    items: list[list[RawItem]] = field(default_factory=list)
    read_at: list[datetime] = field(default_factory=list)  # when each page was read
    cached_read_at: list[datetime] = field(default_factory=list)  # of the pages the HTTP cache gave
    last: Page | None = None
    n_items: int = 0
    started: float = field(default_factory=time.monotonic)

    def add(self, page: Page, items: list[RawItem]) -> None:
        self.items.append(items)
        self.read_at.append(page.read_at or datetime.now(UTC))
        if page.from_cache:
            self.cached_read_at.append(self.read_at[-1])
        self.last = page
        self.n_items += len(items)

    def is_due(self, commit_every: int) -> bool:
        return self.n_items >= commit_every or time.monotonic() - self.started >= COMMIT_SECONDS


def _commits(pages: Iterator[Page], budget: _Budget, commit_every: int, bar: tqdm, collect: bool) -> Iterator[_Commit]:
    """The pages a run reads, grouped into its commits: a commit ends with the page that brings its items to
    `commit_every` or its age to COMMIT_SECONDS, at the limit and at the last page. When the source fails (or the
    user interrupts while a page is read), the pages read before it are yielded first, so that a resume does not fetch
    them again. With `collect`, the cyclic GC (paused: `_cyclic_gc_paused`) runs once a commit's pages are freed."""
    commit = _Commit()
    try:
        for page in pages:
            items = budget.take(page.items)
            commit.add(page, items)
            bar.total = page.total
            bar.update(len(items))
            if budget.spent() or commit.is_due(commit_every):
                yield commit
                commit = _Commit()
                del page, items
                if collect:
                    gc.collect(1)
            if budget.spent():
                return
    except (Exception, KeyboardInterrupt):
        if commit.last is not None:
            yield commit
        raise
    if commit.last is not None:
        yield commit


def _map_pages(
    connector: Connector, pages: list[list[RawItem]], read_at: list[datetime], run_id: str, first_read: int = 0
) -> _PageRows:
    """The canonical rows of pages of raw items read at `read_at` (one time a page), mapped and checked together
    (`first_read`: how many items the run read before them)."""
    rows = _PageRows(connector, [RunStamp(run_id, fetched_at) for fetched_at in read_at], first_read)
    for page, items in enumerate(pages):
        for item in items:
            rows.add(item, page)
    rows.finish()
    return rows


def _dry_run(
    connector: Connector,
    store: Store,
    info: RunInfo,
    whole_scope: WholeScope | None,
    limit: int | None,
    resumed: RunReport | None,
) -> RunReport:
    """Fetch and map the next page (every page of a local file; up to `limit` items): the request that would be
    sent, the total, what would be stored, and what a file read whole (`whole_scope`) would withdraw. `resumed` is the
    run a resume would continue: from its cursor (nothing, if all its pages are staged)."""
    if resumed is not None and resumed.cursor is None:  # every page is staged: a resume would only publish it
        resumed.dry_run, resumed.status = True, "complete"
        return resumed
    report = RunReport("dry-run", connector.attribution.source, datetime.now(UTC), dry_run=True)
    report.resumed = resumed is not None
    check = _publish_check(report, connector, store, info, whole_scope)  # what publishing would withhold, as it would
    pages = islice(connector.pages(resumed.cursor if resumed else None), connector.read_mode.preview_pages)
    budget = _Budget(limit, resumed.n_fetched if resumed else 0)
    admitted: list[str] = []
    for number, page in enumerate(pages):
        rows = _map_pages(connector, [budget.take(page.items)], [datetime.now(UTC)], report.run_id)
        rows.count_into(report)
        for name, table in rows.tables().items():  # materials first: their records' other rows are set aside
            kept = check.admit(name, arrow_table(name, table))
            admitted += kept["record_id"].to_pylist() if name == "materials" else []
        if number == 0:
            report.request, report.n_available = page.request, page.total
        if budget.spent():
            break
    check.withheld()
    if whole_scope is not None and not check.rows_moved():
        report.n_withdrawn = len(store.withdrawals_of(whole_scope, admitted, check.withheld_keys()["materials"]))
    return report


def _not_read_again(connector: Connector, store: Store, info: RunInfo, run_id: str) -> list[str] | None:
    """Of a fetch that read its whole query (no --limit), the stored records of that query it did not read (the
    source may have removed them; nothing is withdrawn): the records earlier complete runs of the same source and
    selection wrote (whatever their page size: `selection_json`; a run of an older matreg, with no selection, of the
    same parameters), every stored record of the source for a fetch of all it lists (`reads_whole_source`). None for
    a lab import (it withdraws them) and a --limit run; an empty list when no earlier run wrote any."""
    if connector.read_mode.whole_scope or LIMIT_KEY in info.parameters:
        return None
    if not store.exists():
        return []
    source, every = connector.attribution.source, connector.reads_whole_source
    runs = _complete_runs(store, source)
    read_before = list(runs["run_id"][runs["selection"] == selection_json(info)])
    if not (every or read_before):  # (the materials view costs more)
        return []
    sql = (
        "SELECT record_id FROM materials WHERE source = $source AND ($every OR record_id IN ("
        "SELECT record_id FROM material_writes WHERE run_id IN (SELECT unnest($runs::VARCHAR[]))))"
    )
    stored = store.read(sql, {"source": source, "every": every, "runs": read_before})
    if stored.empty:
        return []
    return sorted(set(stored["record_id"]) - store.staged_record_ids(run_id))


def not_read_again(store: Store) -> pd.DataFrame:
    """The stored records the latest complete run of each query did not read (`_not_read_again`), with the source,
    query and run: record_id, source, query, run_id (until a run of that query reads them again). A query is a source
    and selection (`_complete_runs`: whatever the page size, a run of an older matreg too); its latest run, the one
    published last."""
    latest = _complete_runs(store).drop_duplicates(["source", "selection"])
    return store.read(
        "SELECT unnest(not_read_again) AS record_id, source, query, run_id FROM fetch_runs WHERE status = 'complete' "
        "AND run_id IN (SELECT unnest($runs::VARCHAR[])) ORDER BY ALL",
        {"runs": list(latest["run_id"])},
    )


def _complete_runs(store: Store, source: str | None = None) -> pd.DataFrame:
    """The complete runs (of `source`, else of all sources), the one published last first: run_id, source and
    selection, that of its parameters (`run_selection`) where a run of an older matreg recorded none."""
    runs = store.read(
        "SELECT run_id, source, parameters, selection FROM fetch_runs WHERE status = 'complete' "
        "AND source = coalesce($source, source) ORDER BY finished_at DESC, started_at DESC",
        {"source": source},
    )
    runs["selection"] = [
        run_selection(parameters) if pd.isna(selection) else selection
        for parameters, selection in zip(runs["parameters"], runs["selection"], strict=True)
    ]
    return runs[["run_id", "source", "selection"]]


def listed_records(record_ids: list[str], shown: int = 10) -> str:
    """How many records, and the first `shown` of them ('2 records: mp:mp-1, mp:mp-2'), and how many more."""
    count = "1 record" if len(record_ids) == 1 else f"{len(record_ids)} records"
    return f"{count}: {listed(record_ids, shown)}"


class _Import(NamedTuple):
    """A scope an import of a lab file wrote, and where it read the file (`fetch_runs.endpoint` and relative_path)."""

    scope: str
    endpoint: str
    relative_path: str | None

    def read_at(self, places: tuple[str, ...]) -> bool:
        """Whether the import read the file at one of these paths (`Store.places`)."""
        return self.endpoint in places


def _imports_of(store: Store, source: str) -> list[_Import]:
    """Each scope the imports of a source wrote, with where they read it (a lab file's path), in order."""
    read = store.read(
        "SELECT DISTINCT w.scope, r.endpoint, r.relative_path FROM material_writes AS w "
        "JOIN fetch_runs AS r USING (run_id) WHERE w.source = ? ORDER BY ALL",
        [source],
    )
    relative = [None if pd.isna(path) else path for path in read["relative_path"]]
    return [_Import(*row) for row in zip(read["scope"], read["endpoint"], relative, strict=True)]


def _whole_scope(connector: Connector, store: Store, info: RunInfo) -> WholeScope | None:
    """Source, scope and places of a run that reads its scope whole (a lab file, and where it lies), with the places
    of where the file moved from (`moved_from`, when the run says), else None: read once, as the run starts, for its
    refusals (`_refuse_moved_from`, `_refuse_run`) and what its publishing withdraws."""
    if not connector.read_mode.whole_scope:
        return None
    moved_from = info.parameters.get("moved_from")
    old = tuple(store.places(moved_from)) if moved_from is not None else ()
    source, scope, here = connector.attribution.source, connector.attribution.scope, tuple(store.places(info.endpoint))
    return WholeScope(source, scope, info.endpoint, info.relative_path, here, old)


def _publish_check(
    report: RunReport,
    connector: Connector,
    store: Store,
    info: RunInfo,
    whole_scope: WholeScope | None,
    allow_dropped_fields: bool = False,
) -> _PublishCheck:
    """The check of a run's rows as they are published (and of the run, `_refuse_run`, and of the stored values it
    removes, `_refuse_dropped_fields`, unless `allow_dropped_fields`); for a lab file, against the stored formulas."""
    refusals = functools.partial(_refuse_run, connector, store, info, whole_scope)
    removals = functools.partial(_refuse_dropped_fields, connector, report, allow_dropped_fields)
    if not connector.read_mode.whole_scope:
        return _PublishCheck(report, connector.attribution, refusals=refusals, removals=removals)
    stored = _StoredFormulas(store, connector.attribution.scope, connector.read_mode.ids_by_position)
    decided = _DecidedRows(store, connector, info)
    return _PublishCheck(report, connector.attribution, stored, connector.named_record, refusals, decided, removals)


def _refuse_dropped_fields(connector: Connector, report: RunReport, allowed: bool, removed: Removed) -> None:
    """DroppedFields where the run's write would remove stored values (`removed`) of the properties, and methods,
    mapped from fields that no record of the run carried (`RunReport.absent`: fields the source renamed or dropped, or
    the field map misnames), unless `allowed` (`fetch --allow-dropped-fields`): publishing would make them vanish, as
    no record of the run gives them. A record that lost a value while others still carry its field is no such case,
    nor one that lost a value of another field of the same property, told apart by method (`FieldMap.may_give`:
    JARVIS' band gaps by their own; a qualified field's, AFLOW's AGL and AEL, by their qualifier)."""
    drifted = _drifted_fields(connector, report.absent, removed)
    if allowed or not drifted:
        return
    lost = removed.of(chain.from_iterable(drifted.values()))
    n_values, n_records = lost.total()
    fields = ", ".join(f"{name} ({connector.field_map.property_of(name)})" for name in drifted)
    by_property = ", ".join(f"{prop} {n}" for prop, n in lost.values.items())
    raise DroppedFields(
        f"run {report.run_id} not published: no record of the {report.n_fetched} it read carried the mapped fields "
        f"{fields} (renamed or dropped by the source?), and its write would remove {n_values} stored values of "
        f"{n_records} records ({by_property}); the store is unchanged and the run stays staged. Fix the field map "
        f"({field_map_file(connector.field_map.source)}) and fetch again, or, if the source dropped these fields, "
        "publish the run as it is: the same command with --resume --allow-dropped-fields"
    )


def _drifted_fields(connector: Connector, absent: dict[str, int] | None, removed: Removed) -> dict[str, list[Kind]]:
    """The mapped fields no record of a run carried (`absent`) whose values lose stored ones by the run's write
    (`removed`), each with the kinds (property, method) of the removed values it may have given
    (`FieldMap.may_give`)."""
    field_map = connector.field_map
    if field_map is None or not absent or not removed.counts:
        return {}
    given = {
        name: [kind for kind in removed.counts if field_map.may_give(name, *kind)]
        for name in sorted(absent)
        if name in field_map.fields
    }
    return {name: kinds for name, kinds in given.items() if kinds}


@dataclass
class _StoredFormulas:
    """Where a lab file's records are stored as other materials under their ids (none in a store not created yet):
    of another composition, or in another state (H2O(l), H2O(g); a crystal's 'cr' and no phase are one: ice).
    Where ids name rows (`by_position`), against each record's current row: rows deleted or inserted renumber the
    others, even within one file. Else against what each other file last wrote of the record, while the record has
    values: two files giving one id to two materials; a file may correct its own formulas (and states), and an id
    withdrawn from every file may name another material. A liquid, gas or solute is its molecule: O2(g) and O3(g),
    of one reduced formula, are two materials (as linking groups them), while a crystal is its composition."""

    store: Store
    scope: str
    by_position: bool

    def conflicts(
        self, record_ids: list[str], materials: list[tuple[str, str, str | None]]
    ) -> dict[str, tuple[str, str]]:
        """Of these records (with the formula, reduced and as written, and phase a run gives each), those stored as
        another material: that material as written ('H2O(l)') and the scope of the write that gave it, by record
        id."""
        if not self.store.exists():
            return {}
        given = {record_id: material_key(*material) for record_id, material in zip(record_ids, materials, strict=True)}
        found: dict[str, tuple[str, str]] = {}
        for record_id, *material, scope in self._stored(record_ids):
            if material_key(*material) != given[record_id]:
                found.setdefault(record_id, (material_text(*material), scope))
        if found and not self.by_position:
            shown = self._shown(list(found))
            found = {record_id: stored for record_id, stored in found.items() if record_id in shown}
        return found

    def _stored(self, record_ids: list[str]) -> list[list[Any]]:
        """Record id, formula (reduced and as written), phase and scope of each record's current row (by position),
        else of each other file's last write of it (files of stores older than scopes aside)."""
        columns = "record_id, formula, formula_original, phase, scope"
        if self.by_position:
            sql = f"SELECT {columns} FROM materials WHERE record_id IN (SELECT unnest(?))"
            return self.store.read(sql, [record_ids]).values.tolist()
        sql = (
            f"SELECT {columns} FROM material_writes WHERE record_id IN (SELECT unnest(?)) "
            "AND scope IS NOT NULL AND scope NOT IN ('', ?) "
            "QUALIFY row_number() OVER (PARTITION BY record_id, scope ORDER BY fetched_at DESC, run_id DESC) = 1 "
            "ORDER BY record_id, scope"
        )
        return self.store.read(sql, [record_ids, self.scope]).values.tolist()

    def _shown(self, record_ids: list[str]) -> set[str]:
        """Of these records, those with a value shown (asked only of the few with another formula: the properties
        view is costly)."""
        sql = "SELECT DISTINCT record_id FROM properties WHERE record_id IN (SELECT unnest(?))"
        return set(self.store.read(sql, [record_ids])["record_id"])


def _record_failure(store: Store, info: RunInfo, report: RunReport, connector: Connector, exc: Exception) -> None:
    """Log a failed run in fetch_runs; if even that cannot be written, the original error still propagates. A run
    the busy store stopped is logged only if the store's lock is free at once (no second wait of a minute)."""
    report.status = "failed"
    with contextlib.suppress(OSError, MatregError):
        failed = fetch_run_row(info, report, connector, connector.redact(str(exc)))
        failed["quarantine_reasons"] = counts_json(report.reasons)
        wait_s = 0 if isinstance(exc, StoreBusy) else None
        store.commit({"fetch_runs": validate_rows("fetch_runs", [failed])}, wait_s)


def _lacked_by_all(lacked: dict[str, int] | None, more: dict[str, int] | None) -> dict[str, int] | None:
    """The mapped fields lacked by the records of both counts (field: how many records lacked it; None: no record
    counted), with how many records lacked each in all: a field one record carried is lacked by all no more."""
    if lacked is None or more is None:
        return more if lacked is None else lacked
    return {name: count + more[name] for name, count in lacked.items() if name in more}
