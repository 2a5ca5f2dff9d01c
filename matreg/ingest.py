"""Drive a connector: pages -> map -> harmonize -> quarantine -> staged page commits -> one publish.

Every page is staged atomically together with the run's cursor, so memory stays flat and an interrupted
run (an error, or kill -9) resumes after its last staged page with `resume=True`. The run becomes visible
only when its last page is staged and the whole run is published in one rename.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import gc
import hashlib
import json
import shlex
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute
from pymatgen.core.structure import StructureError
from tqdm import tqdm

from matreg import __version__
from matreg.catalog import Catalog
from matreg.defaults import COMMIT_RECORDS
from matreg.errors import (
    ConfigError,
    FormulaError,
    MatregError,
    RecordError,
    RunRefused,
    StoreError,
    UnknownName,
    clipped,
    listed,
    utf8_path,
)
from matreg.fieldmap import FieldMap, load_field_map
from matreg.formula import material_key, material_text, reduced_formula
from matreg.http import public_url, redact_params
from matreg.resources import project_path
from matreg.schema import arrow_schema, arrow_table, canonical_method, children_of, table_spec
from matreg.sources import base_url_now
from matreg.sources.base import (
    PAGING_KEYS,
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
from matreg.store import Dropped, Store, StoreBusy, ValueKey, WholeScope
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
    to_json,
    validate_rows,
    validate_table,
    value_of_payload,
)

_LIMIT = "max_records"  # the run parameter of --limit: an option of the run, part of its selection (no whole query)
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
class RunReport:
    """What a run read, stored and quarantined (and why), and where it stands."""

    run_id: str
    source: str
    started_at: datetime
    status: str = "in_progress"
    n_fetched: int = 0
    n_stored: int = 0
    n_values: int = 0
    n_quarantined: int = 0
    n_reread: int = 0  # valid reads of a record the run read again: replaced by its last read
    n_unchanged: int | None = None
    n_superseded: int | None = None
    n_withdrawn: int | None = None
    n_available: int | None = None
    not_read_again: list[str] | None = None  # stored records of the run's query it did not read (`_not_read_again`)
    n_cached_pages: int = 0  # pages the HTTP cache gave this process (not those of a resumed run's earlier one)
    cached_read_at: tuple[datetime, datetime] | None = None  # when the source gave the oldest and newest of them
    reasons: Counter = field(default_factory=Counter)
    unmapped: Counter = field(default_factory=Counter)
    absent: dict[str, int] | None = None  # mapped fields no record carried, with how many lacked them (None: no record)
    cursor: dict[str, Any] | None = None
    request: str = ""
    dry_run: bool = False
    resumed: bool = False
    not_resumed: str | None = None  # why a run asked to resume or start (`resume_or_start`) started; what it dropped
    dropped: list[str] = field(default_factory=list)  # a fresh run's, as it started: interrupted runs of its query
    database_version: str | None = None  # a resumed run's, as staged: kept by a resume that asks nothing
    mapped_with: str | None = None  # what its rows are mapped with (`_mapped_with`; None: staged by an older matreg)
    available_counts: list[int] | None = None  # the source's counts of matching records, where a resume found another

    @property
    def n_distinct(self) -> int:
        """The distinct records among the run's reads (a record read again counts once)."""
        return self.n_fetched - self.n_reread

    @property
    def n_written(self) -> int:
        """The valid records the run wrote: those it stored less those stored already unchanged and those the store
        holds from a later read."""
        return self.n_stored - (self.n_unchanged or 0) - (self.n_superseded or 0)

    def stopped_short(self, limit: int | None) -> bool:
        """True when a finished run read fewer distinct records than its source said match (and fewer reads than
        `limit`): the source sent no further page (an empty page ends a run), dropped records while paging (NOMAD
        does), or sent records it had sent already in their place (a page repeating another). An entry OQMD lists
        twice, one row a calculation, counts twice in its total and once here: `matreg fetch`'s note gives the reads
        beside the distinct records."""
        if self.dry_run or self.n_available is None or self.n_distinct >= self.n_available:
            return False
        return limit is None or self.n_fetched < limit

    def finish(self, run_row: dict[str, Any], dropped: dict[str, Dropped], withdrawn: int) -> dict[str, Any]:
        """The run's fetch_runs row as published: its counts after the publishing check (`_PublishCheck`, and the
        reads of refused records the store dropped), each record and value counted once however many pages read it
        (the store drops its earlier reads), with how many valid records were stored already unchanged, how many the
        store holds from a later read (of another run), and how many records of a scope read whole (a lab file) the
        run withdrew; without what its pages were mapped with (`mapped_with`: what a resume checks, which its rows
        carry)."""
        self.n_withdrawn = withdrawn
        self.n_stored -= dropped["materials"].withheld + dropped["materials"].earlier
        self.n_values -= dropped["properties"].withheld + dropped["properties"].earlier
        self.n_reread += dropped["materials"].earlier  # (those of one page: `_PageRows.n_reread`)
        self.n_unchanged = dropped["materials"].unchanged
        self.n_superseded = dropped["materials"].superseded
        counts = {"n_stored": self.n_stored, "n_values": self.n_values, "n_quarantined": self.n_quarantined}
        counts["n_reread"] = self.n_reread
        counts["quarantine_reasons"] = _counts_json(self.reasons)  # with the reasons of the publishing check
        published = {"n_unchanged": self.n_unchanged, "n_superseded": self.n_superseded, "n_withdrawn": withdrawn}
        return {**run_row, **counts, **published, "mapped_with": None}

    def add_page(self, page: _PageRows) -> None:
        """Count the rows of a page (or a commit's pages) into the run's totals."""
        self.n_fetched += page.n_read
        self.n_stored += len(page.rows["materials"])
        self.n_values += page.properties.num_rows
        self.n_quarantined += len(page.rows["quarantine"])
        self.n_reread += page.n_reread
        self.reasons.update(page.reasons)
        self.unmapped.update(page.unmapped)
        self.absent = _lacked_by_all(self.absent, page.absent)

    def note_count(self, total: int | None) -> None:
        """Note the count of matching records the first page of a resumed run says (`total`) where it is another than
        its committed pages said (`available_counts`): offset pages may then have missed or repeated records."""
        if self.n_available is not None and total is not None and total != self.n_available:
            self.available_counts = [*(self.available_counts or [self.n_available]), total]

    def add_cached(self, read_at: list[datetime]) -> None:
        """Count pages the HTTP cache gave, which the source gave at `read_at`."""
        if read_at:
            self.n_cached_pages += len(read_at)
            known = [*read_at, *(self.cached_read_at or ())]
            self.cached_read_at = (min(known), max(known))


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
    connector that joins rows (`Connector.joins_rows`), the values of each of its rows on the page, with one materials
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
        connector joins rows (`Connector.joins_rows`: each is a row of its record's one read, with values of its
        own)."""
        if self.connector.joins_rows:
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
        mapping = json.loads(_parameters_json(self.info)).get("mapping")
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
    ) -> None:
        """`attribution`: the run's source and scope. `stored` (`_StoredFormulas`) is given for a lab file: a record
        whose formula or state differs from the stored one's is another material under that id, refused;
        `named_record` (`Connector.named_record`) with it: the record a quarantined row is, which the run does not
        withdraw (nor the stored values of its keys, where the run writes the record from its other rows:
        `kept_values`); and `decided`: the decided quarantine rows whose ids the run's rows keep. `refusals` raises
        (RunRefused) when the store refuses the whole run (`refuse_run`)."""
        self.report, self.attribution = report, attribution
        self.stored, self.named_record, self.refusals, self.decided = stored, named_record, refusals, decided
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
        return ValueKey(record_id, value.property, method, (value.temperature_K, value.pressure_Pa))

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
        stored as the material the row is (rows moved: the row is another record's, the place's is withdrawn)."""
        rejected = {record: material for record, material in self.rejected.items() if record not in self.admitted}
        if not rejected or self.stored is None or not self.stored.by_position:
            return sorted(rejected)
        given = {record: (reduced_formula(formula), formula, phase) for record, (formula, phase) in rejected.items()}
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
    fresh run, the report's `not_resumed` saying why none was continued.
    """
    info = _run_info(connector, limit, moved_from)
    try:
        _refuse_moved_from(connector, store, info)
        _refuse_run(connector, store, info)
        if dry_run:
            resumed = _dry_resumed(connector, store, info, resume_or_start) if resume or resume_or_start else None
            return _dry_run(connector, store, info, limit, resumed)
        report = _resume_or_start(connector, store, info, resume, resume_or_start)
        try:
            if report.status != "complete":  # a run resumed after all its pages were staged is only published
                if not (report.resumed and report.cursor is None):  # (stopped after its last page: none is left)
                    _stage_pages(connector, store, info, report, limit, progress, commit_every, pause_gc)
                report.status, report.cursor = "complete", None
                report.not_read_again = _not_read_again(connector, store, info, report.run_id)
                store.stage_page(report.run_id, {"fetch_runs": [_fetch_run_row(info, report, connector)]})
            check = _publish_check(report, connector, store, info)
            whole_scope = _whole_scope(connector, info)
            store.publish_run(report.run_id, check, report.finish, connector.unread_columns, whole_scope)
        except RunRefused:  # another run took its name or scope meanwhile: as if refused at its start
            store.discard_run(report.run_id)
            raise
        except Exception as exc:
            resumable = report.status == "complete" and not connector.reads_whole_scope  # (imports read again)
            _record_failure(store, info, report, connector, exc)
            if isinstance(exc, StoreBusy) and resumable:  # every page staged, publishing stopped
                raise StoreBusy(exc.path, "run the same command with --resume to publish the staged run") from None
            _say_dropped(exc, report)
            raise
        except KeyboardInterrupt as exc:
            _say_dropped(exc, report)
            raise
        finally:
            store.release_run(report.run_id)
        return report
    finally:
        connector.close()


def _run_info(connector: Connector, limit: int | None = None, moved_from: Path | str | None = None) -> RunInfo:
    """What a run of `connector` records and is matched on: its endpoint without the key a URL may carry, `limit` and
    `moved_from` (as `run_ingest` takes them) among its parameters."""
    info = connector.run_info()
    info.endpoint = public_url(info.endpoint)
    if limit is not None:
        info.parameters = {**info.parameters, _LIMIT: limit}
    if moved_from is not None:
        moved_from = utf8_path(Path(moved_from).resolve(), "--moved-from")
        info.parameters = {**info.parameters, "moved_from": str(moved_from)}
    return info


def run_to_resume(connector: Connector, store: Store, limit: int | None = None) -> dict[str, Any] | None:
    """The last staged fetch_runs row of the interrupted run that a resume of this fetch (`run_ingest` with `limit`
    and `resume`) would continue: what a fetch stopped by an interruption or by its failing source left, to be named
    in its error; None where there is none (no page committed)."""
    info = _run_info(connector, limit)
    return _latest_interrupted(store, info, _of_query(connector, info, store.staged_runs()))


def _refuse_run(connector: Connector, store: Store, info: RunInfo) -> None:
    """RunRefused when the store refuses the run as a whole: asked as it starts, and again under the store's lock as
    it is published (another run may have published meanwhile: `_PublishCheck.refuse_run`)."""
    _refuse_sharing_a_source_name(connector, store, info)
    _refuse_taking_over_scope(connector, store, info)


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


def _refuse_taking_over_scope(connector: Connector, store: Store, info: RunInfo) -> None:
    """RunRefused when a run that reads its scope whole (a lab file) would write for the first time the scope of
    another file that is still there (a file of the same name in another folder): that file's values of the records
    both give would be hidden. A file that was moved (nothing left where it was imported from), one that wrote the
    scope before, or a scope the user named, takes it over."""
    if not connector.reads_whole_scope or connector.scope_chosen or not store.exists():
        return
    source, scope = connector.attribution.source, connector.attribution.scope
    endpoints = [endpoint for written, endpoint in _imports_of(store, source) if written == scope]
    others = [endpoint for endpoint in endpoints if endpoint != info.endpoint and Path(endpoint).is_file()]
    if others and info.endpoint not in endpoints:
        here = Path(info.endpoint)
        raise RunRefused(
            f"'{scope}' of {source} was imported from {others[0]}, which is still there; this file is {here}. Under "
            "one name, this import would replace that file's values of the records both give. Import it under "
            f"another name to keep both (--as {here.parent.name}/{here.name}), or under the same one to replace "
            f"them (--as {here.name})"
        )


def _refuse_moved_from(connector: Connector, store: Store, info: RunInfo) -> None:
    """RunRefused, before anything is written, when a run said to read a file moved from elsewhere (`moved_from`)
    may not withdraw what was imported from there: it is a fetch, the place still holds a file (a copy, not a move),
    or its scope (the dataset, and the file's name or --as name) was never imported from there."""
    old = info.parameters.get("moved_from")
    if old is None:
        return
    source, scope = connector.attribution.source, connector.attribution.scope
    if not connector.reads_whole_scope:
        raise RunRefused(
            f"{source} is fetched, not imported from a file: only a lab file's import is said to be moved "
            "(--moved-from)"
        )
    if Path(old).is_file():
        raise RunRefused(
            f"{old} still holds a file: {info.endpoint} was not moved from there; import each under a name of its own "
            "(--as), or remove the one no longer wanted first"
        )
    imports = _imports_of(store, source) if store.exists() else []
    places = [endpoint for written, endpoint in imports if written == scope]
    if old in places:
        return
    said = [f"it was imported from {', '.join(places)}"] if places else []
    others = [written for written, endpoint in imports if endpoint == old]
    if others:
        said.append(f"the file there was imported as {', '.join(others)} (import this one under that name: --as)")
    was = "; ".join(said) or "it was never imported"
    raise RunRefused(f"{scope} of {source} was never imported from {old}, which the import says it moved from; {was}")


class NothingToResume(StoreError):
    """A run asked to resume has no interrupted run of its source, parameters and endpoint to continue."""


def _resume_or_start(
    connector: Connector, store: Store, info: RunInfo, resume: bool, resume_or_start: bool
) -> RunReport:
    """The staged run with the same source, parameters and endpoint when resuming (`resume`; `resume_or_start` where
    there is one), else a fresh run (dropping the interrupted runs of the same query, wherever they read).

    Runs another process is still writing are neither resumed nor dropped; the run chosen is claimed for this one.
    What killed writers left is removed first (`Store.remove_leftovers`).
    """
    store.remove_leftovers()
    not_resumed = None
    if resume or resume_or_start:
        try:
            return _resumed(connector, store, info, resume_or_start)
        except NothingToResume as exc:
            if not resume_or_start:
                raise
            not_resumed = str(exc)
    of_query = _of_query(connector, info, store.staged_runs())
    dropped = [run_id for run_id in of_query if store.drop_unless_running(run_id)]
    source = connector.attribution.source
    started = _started_instead(not_resumed, dropped) if not_resumed else None
    report = RunReport(new_run_id(source), source, datetime.now(UTC), not_resumed=started)
    report.dropped = [
        f"{run_id} ({of_query[run_id]['n_fetched']} read at {of_query[run_id]['endpoint']})" for run_id in dropped
    ]
    report.mapped_with = _mapped_with(connector)
    store.claim_run(report.run_id)
    return report


def _say_dropped(exc: BaseException, report: RunReport) -> None:
    """Note on the error or interruption that stopped a fresh run (`BaseException.add_note`: `matreg fetch` says it
    with what the run committed) the interrupted runs of its query it dropped as it started, if any: stopped before
    its first commit, it leaves neither its pages nor theirs."""
    if report.dropped:
        runs = "run" if len(report.dropped) == 1 else "runs"
        exc.add_note(
            f"as it started, this fetch dropped the interrupted {runs} of the same query: " + ", ".join(report.dropped)
        )


def _started_instead(not_resumed: str, dropped: list[str]) -> str:
    """Why a run asked to resume or start started afresh, and the interrupted runs of its query it dropped (read at
    another server: one read at its own would have been resumed)."""
    if not dropped:
        return f"{not_resumed}: started a fresh fetch"
    runs = ", ".join(dropped)
    return f"{not_resumed}: started a fresh fetch, which dropped the interrupted run {runs} read at another server"


def _resumed(connector: Connector, store: Store, info: RunInfo, resume_or_start: bool) -> RunReport:
    """The interrupted run of this source, parameters and endpoint, claimed for this process, as staged;
    NothingToResume if there is none (a fresh fetch of the same query may drop it until it is claimed, and another
    process may claim it first: it is then still running there, as a look a moment later would find it); ConfigError
    where its pages were mapped otherwise (`_refuse_remapped`)."""
    interrupted = _interrupted_run(connector, store, info, resume_or_start)
    run_id = interrupted["run_id"]
    try:
        store.claim_run(run_id)
    except StoreError:
        raise NothingToResume(
            f"nothing to resume: run {run_id} is still running in another process, which claimed it meanwhile"
        ) from None
    row = store.staged_runs().get(run_id)  # read again once claimed: a fresh fetch may have dropped it meanwhile
    if row is None:
        store.release_run(run_id)
        raise NothingToResume(f"nothing to resume: run {run_id} was dropped by a fresh fetch of the same query")
    report = _report_from_row(row)
    report.reasons = store.staged_reasons(run_id)  # the reasons of the pages committed before the interruption
    return report


def _dry_resumed(connector: Connector, store: Store, info: RunInfo, resume_or_start: bool) -> RunReport | None:
    """The interrupted run a resume would continue, for a dry run; None where there is none and `resume_or_start`
    (a fresh run's dry run), NothingToResume otherwise; ConfigError where a resume would refuse it
    (`_refuse_remapped`)."""
    try:
        interrupted = _interrupted_run(connector, store, info, resume_or_start)
    except NothingToResume:
        if not resume_or_start:
            raise
        return None
    return _report_from_row(interrupted)


def _mapped_with(connector: Connector) -> str:
    """What a run's rows are mapped with (`fetch_runs.mapped_with`), as canonical JSON: the attribution its source's
    catalog entry gives every row, and the sha256 of its field map as loaded (None without one: a lab file's). Asked
    before a page is read (the Materials Project's database version is then its catalog entry's)."""
    return _mapping_json(connector.attribution, connector.field_map)


def _mapping_json(attribution: Attribution, field_map: FieldMap | None) -> str:
    """`fetch_runs.mapped_with` of rows mapped with this attribution and field map (`_mapped_with`)."""
    digest = None
    if field_map is not None:
        digest = hashlib.sha256(json.dumps(field_map.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    return json.dumps({"attribution": dataclasses.asdict(attribution), "field_map": digest}, sort_keys=True)


def _refuse_remapped(connector: Connector, interrupted: dict[str, Any], resume_or_start: bool) -> None:
    """ConfigError where the pages the interrupted run committed were mapped with another attribution (its source's
    catalog entry) or field map than the run's pages would be now (`_mapped_with`): resumed, the run would publish
    rows mapped both ways. Saying what changed, and what to do. A run an older matreg staged, which recorded none,
    is resumed as before."""
    if interrupted.get("mapped_with") is None:
        return
    where = f"connectors/{connector.field_map.source}.yaml" if connector.field_map else "its mapping"
    changed = _mapping_changes(interrupted["mapped_with"], _mapped_with(connector), where)
    if not changed:
        return
    run_id, them = interrupted["run_id"], "them" if len(changed) > 1 else "it"
    scheduled = (
        "; --resume-or-start neither resumes nor drops it: a scheduled fetch would mix the two or silently drop what "
        "was read"
        if resume_or_start
        else ""
    )
    raise ConfigError(
        f"{' and '.join(changed)} changed since run {run_id} committed its pages: its pages left would be mapped "
        f"otherwise than those, and the run published with rows of both; restore {them} to resume the run, or "
        f"`matreg drop {run_id}` and fetch again{scheduled}"
    )


def _mapping_changes(before: str, now: str, field_map_file: str, catalog_file: Path | None = None) -> list[str]:
    """What changed, in words, from what a staged run's pages were mapped with (`before`: `fetch_runs.mapped_with`)
    to what its pages left would be mapped with (`now`): the keys of its source's catalog entry (in `catalog_file`,
    where named) that differ, and its field map (`field_map_file`)."""
    before_json, now_json = json.loads(before), json.loads(now)
    source = now_json["attribution"]["source"]
    keys = [key for key, value in now_json["attribution"].items() if before_json["attribution"].get(key) != value]
    in_file = f" in {catalog_file}" if catalog_file else ""
    changed = [f"the catalog entry of '{source}'{in_file} ({', '.join(keys)})"] if keys else []
    if before_json["field_map"] != now_json["field_map"]:
        whose = "its field map" if changed else f"the field map of '{source}'"
        changed.append(f"{whose} ({field_map_file})")
    return changed


def resume_refused(row: dict[str, Any], catalog: Catalog | None) -> list[str]:
    """Why a --resume of a staged fetch (its last row: `Store.staged_runs`) would be refused now (`_refuse_remapped`),
    in words: its source's catalog entry in `catalog`, or its field map as read here, changed since the run committed
    its pages (`_mapping_changes`); none where neither did, where the run recorded neither (an older matreg's), or
    where that is not known (no catalog, or none of its source)."""
    if catalog is None or row.get("mapped_with") is None:
        return []
    try:
        source = catalog.source(row["source"])
        field_map = load_field_map(source.connector)
    except MatregError:
        return []
    attribution = Attribution.of_source(row["source"], source, field_map.method)
    before = json.loads(row["mapped_with"])["attribution"]  # the run's own part of each record (JANAF's temperature)
    attribution.scope, attribution.scope_temperature_K = before.get("scope", ""), before.get("scope_temperature_K")
    where = project_path(f"connectors/{source.connector}.yaml")
    return _mapping_changes(row["mapped_with"], _mapping_json(attribution, field_map), str(where), catalog.file)


def _interrupted_run(connector: Connector, store: Store, info: RunInfo, resume_or_start: bool) -> dict[str, Any]:
    """The last staged row of the latest interrupted run of this source, parameters and endpoint; NothingToResume if
    none (its cursor may name the endpoint's own next page: a run is resumed only where it was read). ConfigError
    where its pages were mapped otherwise than its pages left would be (`_refuse_remapped`), or, where there is none,
    those of the run that this same fetch started (`_of_this_fetch`: a field map asks the source for other fields)."""
    staged = store.staged_runs()
    of_query = _of_query(connector, info, staged)
    if interrupted := _latest_interrupted(store, info, of_query):
        _refuse_remapped(connector, interrupted, resume_or_start)
        return interrupted
    if started := _of_this_fetch(connector, store, info, staged):
        _refuse_remapped(connector, started, resume_or_start)
    source = connector.attribution.source
    if any(row["endpoint"] == info.endpoint for row in of_query.values()):
        why = " (one is still running in another process)"
    elif of_query:
        run_id = max(of_query)
        why = f" at {info.endpoint} ({_read_elsewhere(run_id, of_query[run_id])})"
    else:
        raise NothingToResume(_none_of_these_parameters(connector, store, info, staged))
    raise NothingToResume(f"nothing to resume: no interrupted run of '{source}' with these parameters{why}")


def _of_this_fetch(connector: Connector, store: Store, info: RunInfo, staged: dict[str, dict]) -> dict[str, Any] | None:
    """The last row of the latest interrupted run, not one of these parameters, that this same fetch started: the same
    source, selection as typed (`fetch_runs.arguments`), options and endpoint; its parameters then differ by what
    changed in between (the fields a field map asks OQMD or the Materials Project for). None where there is none."""
    if connector.arguments is None:  # (a connector `matreg fetch` did not build)
        return None
    options, source = _run_options(connector, info), connector.attribution.source
    started = [
        run_id
        for run_id, row in staged.items()
        if (row["source"], row.get("arguments"), row.get("options"), row["endpoint"])
        == (source, connector.arguments, options, info.endpoint)
        and not store.is_running(run_id)
    ]
    return staged[max(started)] if started else None


def _read_elsewhere(run_id: str, row: dict[str, Any]) -> str:
    """Where an interrupted run of the same query as a resume was read (another endpoint), with the --base-url that
    continues it (`fetch_runs.base_url`: the run's, not the endpoint its connector derived) and how to drop it."""
    base_url = row.get("base_url")  # (none in a run staged by an older matreg)
    give = f"give --base-url {shlex.quote(base_url)}" if base_url else "give the --base-url it was read at"
    return f"run {run_id} read {row['endpoint']}: {give} with --resume to continue it, or drop it: matreg drop {run_id}"


def resume_base_url(row: dict[str, Any], catalog: Catalog | None) -> str | None:
    """The --base-url option that a resume of a staged fetch (its last row: `Store.staged_runs`) gives besides its
    options (`fetch_runs.options`, which name none), where the base URL it read (`fetch_runs.base_url`) is not the one
    a fetch reads without it now (`sources.base_url_now`, of `catalog`); None where it needs none, or where that is
    not known (no catalog, or none of the run's source)."""
    try:
        now = base_url_now(catalog, row["source"]) if catalog is not None else None
    except MatregError:
        return None
    return _base_url_option(row, now)


def _base_url_option(row: dict[str, Any], current_base_url: str | None) -> str | None:
    """--base-url with the base URL a staged fetch read (`fetch_runs.base_url`), where its options
    (`fetch_runs.options`) name none and a fetch without --base-url reads another now (`current_base_url`; None
    where that is not known)."""
    read = row.get("base_url")  # (none in a run staged by an older matreg)
    if current_base_url is None or read is None or "--base-url" in (row.get("options") or "").split():
        return None
    return None if public_url(current_base_url) == read else f"--base-url {shlex.quote(read)}"


def _latest_interrupted(store: Store, info: RunInfo, of_query: dict[str, dict]) -> dict[str, Any] | None:
    """Of the staged runs of a query (`_of_query`), the last row of the latest one read at `info`'s endpoint that no
    process is writing; None where there is none."""
    here = [run_id for run_id, row in of_query.items() if row["endpoint"] == info.endpoint]
    interrupted = [run_id for run_id in here if not store.is_running(run_id)]
    return of_query[max(interrupted)] if interrupted else None


def _none_of_these_parameters(connector: Connector, store: Store, info: RunInfo, staged: dict[str, dict]) -> str:
    """Why no staged run has the parameters of a run asked to resume: its last run was published, or none committed a
    page; then the interrupted runs of its selection read with other options, else those of its source's other
    selections, and how to resume or drop each (`_interrupted_listed`)."""
    source = connector.attribution.source
    otherwise = _interrupted_listed(connector, store, info, staged, same_selection=True)
    if published := _published_last(store, info, source):
        return (
            f"nothing to resume: the last run of '{source}' with these parameters at {info.endpoint}, {published}, "
            f"was published: what it read is stored (a fetch without --resume reads the source again){otherwise}"
        )
    if otherwise:
        why = ""
    elif others := _interrupted_listed(connector, store, info, staged, same_selection=False):
        why = others
    elif not any(row["source"] == source for row in staged.values()):
        why = " (a run is resumable once it has committed pages, every --commit-every records: fetch without --resume)"
    else:
        why = ""
    return f"nothing to resume: no interrupted run of '{source}' with these parameters{why}{otherwise}"


_RUNS_LISTED = 3  # the interrupted runs a resume's error names, each with what continues it; then 'and N more'


def _interrupted_listed(
    connector: Connector, store: Store, info: RunInfo, staged: dict[str, dict], same_selection: bool
) -> str:
    """The interrupted runs of `info`'s source and selection (whatever their --limit) read with other options (page
    size, --limit, server), or with `same_selection` False those of its other selections: the first _RUNS_LISTED,
    each with what continues it (`_resumed_with`) and the command that drops it, then how many more; '' if none."""
    selection, source = run_selection(_parameters_json(info), (_LIMIT,)), connector.attribution.source
    run_ids = sorted(
        run_id
        for run_id, row in staged.items()
        if row["source"] == source
        and (run_selection(row["parameters"], (_LIMIT,)) == selection) == same_selection
        and not store.is_running(run_id)
    )
    if not run_ids:
        return ""
    runs = [_continued_or_dropped(run_id, staged[run_id], connector, same_selection) for run_id in run_ids]
    shown = listed(runs, _RUNS_LISTED, "; ")
    if same_selection:
        were = (
            "an interrupted run of this selection was" if len(runs) == 1 else "interrupted runs of this selection were"
        )
        return f"; {were} read with other options: {shown}"
    have = f"an interrupted run of '{source}' has" if len(runs) == 1 else f"interrupted runs of '{source}' have"
    return f"; {have} another selection: {shown}"


def _continued_or_dropped(run_id: str, row: dict[str, Any], connector: Connector, same_selection: bool) -> str:
    """A staged run's id and how much it read, with its query in words where its selection is another and was not
    recorded as typed (`fetch_runs.arguments`: a run of an older matreg); what continues it; what drops it."""
    query = "" if same_selection or row.get("arguments") is not None else f"{row['query']}; "
    continued = _resumed_with(row, connector.base_url_read, selection_too=not same_selection)
    return f"{run_id} ({query}{row['n_fetched']} read): {continued}, or drop it: matreg drop {run_id}"


def _resumed_with(row: dict[str, Any], current_base_url: str | None, selection_too: bool) -> str:
    """What continues a staged fetch with --resume: the options it was read with (`fetch_runs.options`, None where an
    older matreg ran it), with the base URL it read where that is not `current_base_url` (`_base_url_option`), and with
    `selection_too` its selection: as typed (`fetch_runs.arguments`), else 'that selection'."""
    options, typed = row.get("options"), row.get("arguments")
    if options is None:
        selection = "that selection and " if selection_too else ""
        return f"give {selection}the --page-size, --limit and --base-url it was read with, and --resume, to continue it"
    options = " ".join(option for option in (options, _base_url_option(row, current_base_url)) if option)
    if selection_too:
        given = f"{typed} {options}".strip() if typed else " and ".join(filter(None, ("that selection", options)))
        return f"give {given} with --resume to continue it"
    if not options:
        return "give --resume without --page-size, --limit or --base-url to continue it"
    return f"give {options} with --resume to continue it"


def drop_interrupted(store: Store, run_id: str) -> dict[str, Any]:
    """Drop an interrupted run (`matreg drop`): its staged pages deleted (`Store.drop_unless_running`); its last
    staged fetch_runs row. UnknownName where the store has no such run staged, StoreError where another process
    writes it."""
    row = store.staged_runs().get(run_id)
    if row is None:
        raise UnknownName(f"no interrupted run {run_id} in the store")
    if not store.drop_unless_running(run_id):
        raise StoreError(f"run {run_id} is being written by another process (it is not interrupted): not dropped")
    return row


def _published_last(store: Store, info: RunInfo, source: str) -> str | None:
    """The id of the last run of this source, parameters and endpoint if it was published (a run stopped between
    publishing and removing its journal too), else None."""
    if not store.exists():
        return None
    last = store.read(
        "SELECT run_id, status FROM fetch_runs WHERE source = ? AND parameters = ? AND endpoint = ? "
        "ORDER BY started_at DESC, finished_at DESC LIMIT 1",
        [source, _parameters_json(info), info.endpoint],
    )
    return last["run_id"].iloc[0] if len(last) and last["status"].iloc[0] == "complete" else None


def _of_query(connector: Connector, info: RunInfo, staged: dict[str, dict]) -> dict[str, dict]:
    """Of the staged runs, those of this source and parameters (at any endpoint), by run id."""
    parameters = _parameters_json(info)
    return {
        run_id: row
        for run_id, row in staged.items()
        if row["source"] == connector.attribution.source and row["parameters"] == parameters
    }


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
            report.add_page(rows)
            report.add_cached(commit.cached_read_at)
            last = commit.last
            report.cursor, report.n_available, report.request = last.cursor, last.total, last.request
            run_row = _fetch_run_row(info, report, connector)
            store.stage_page(report.run_id, rows.tables() | {"fetch_runs": [run_row]}, rows.reads())
            del commit, rows, last  # the commit's pages are freed as `_commits` reads on (see there)


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
    connector: Connector, store: Store, info: RunInfo, limit: int | None, resumed: RunReport | None
) -> RunReport:
    """Fetch and map the next page (every page of a local file; up to `limit` items): the request that would be
    sent, the total, what would be stored, and what a file read whole would withdraw. `resumed` is the run a resume
    would continue: from its cursor (nothing, if all its pages are staged)."""
    if resumed is not None and resumed.cursor is None:  # every page is staged: a resume would only publish it
        resumed.dry_run, resumed.status = True, "complete"
        return resumed
    report = RunReport("dry-run", connector.attribution.source, datetime.now(UTC), dry_run=True)
    report.resumed = resumed is not None
    check = _publish_check(report, connector, store, info)  # what publishing would withhold, as it would
    pages = islice(connector.pages(resumed.cursor if resumed else None), connector.preview_pages)
    budget = _Budget(limit, resumed.n_fetched if resumed else 0)
    admitted: list[str] = []
    for number, page in enumerate(pages):
        rows = _map_pages(connector, [budget.take(page.items)], [datetime.now(UTC)], report.run_id)
        report.add_page(rows)
        for name, table in rows.tables().items():  # materials first: their records' other rows are set aside
            kept = check.admit(name, arrow_table(name, table))
            admitted += kept["record_id"].to_pylist() if name == "materials" else []
        if number == 0:
            report.request, report.n_available = page.request, page.total
        if budget.spent():
            break
    check.withheld()
    whole_scope = _whole_scope(connector, info)
    if whole_scope is not None and not check.rows_moved():
        report.n_withdrawn = len(store.withdrawals_of(whole_scope, admitted, check.withheld_keys()["materials"]))
    return report


def _not_read_again(connector: Connector, store: Store, info: RunInfo, run_id: str) -> list[str] | None:
    """Of a fetch that read its whole query (no --limit), the stored records of that query it did not read (the
    source may have removed them; nothing is withdrawn): the records earlier complete runs of the same source and
    selection wrote (whatever their page size: `_selection_json`; a run of an older matreg, with no selection, of the
    same parameters), every stored record of the source for a fetch of all it lists (`reads_whole_source`). None for
    a lab import (it withdraws them) and a --limit run; an empty list when no earlier run wrote any."""
    if connector.reads_whole_scope or _LIMIT in info.parameters:
        return None
    if not store.exists():
        return []
    source, every = connector.attribution.source, connector.reads_whole_source
    runs = _complete_runs(store, source)
    read_before = list(runs["run_id"][runs["selection"] == _selection_json(info)])
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


def _imports_of(store: Store, source: str) -> list[tuple[str, str]]:
    """Each scope the imports of a source wrote, with where they read it (a lab file's path), in order."""
    pairs = store.read(
        "SELECT DISTINCT w.scope, r.endpoint FROM material_writes AS w JOIN fetch_runs AS r USING (run_id) "
        "WHERE w.source = ? ORDER BY ALL",
        [source],
    )
    return list(zip(pairs["scope"], pairs["endpoint"], strict=True))


def _whole_scope(connector: Connector, info: RunInfo) -> WholeScope | None:
    """Source, scope and endpoint of a run that reads its scope whole (a lab file, and where it lies), with where the
    file moved from (`moved_from`, when the run says), else None."""
    if not connector.reads_whole_scope:
        return None
    moved_from = info.parameters.get("moved_from")
    places = (moved_from,) if moved_from is not None else ()
    return WholeScope(connector.attribution.source, connector.attribution.scope, info.endpoint, places)


def _publish_check(report: RunReport, connector: Connector, store: Store, info: RunInfo) -> _PublishCheck:
    """The check of a run's rows as they are published (and of the run, `_refuse_run`); for a lab file, against the
    stored formulas."""
    refusals = functools.partial(_refuse_run, connector, store, info)
    if not connector.reads_whole_scope:
        return _PublishCheck(report, connector.attribution, refusals=refusals)
    stored = _StoredFormulas(store, connector.attribution.scope, connector.ids_by_position)
    decided = _DecidedRows(store, connector, info)
    return _PublishCheck(report, connector.attribution, stored, connector.named_record, refusals, decided)


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

    def _stored(self, record_ids: list[str]) -> list[tuple[str, str, str, str | None, str]]:
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
        failed = _fetch_run_row(info, report, connector, connector.redact(str(exc)))
        failed["quarantine_reasons"] = _counts_json(report.reasons)
        wait_s = 0 if isinstance(exc, StoreBusy) else None
        store.commit({"fetch_runs": validate_rows("fetch_runs", [failed])}, wait_s)


def _parameters_json(info: RunInfo) -> str:
    return json.dumps(redact_params(info.parameters), sort_keys=True, default=str)


def _selection_json(info: RunInfo) -> str:
    """What a run selects (`fetch_runs.selection`): `run_selection` of its parameters."""
    return run_selection(_parameters_json(info))


def run_selection(parameters: str, besides: tuple[str, ...] = ()) -> str:
    """What a run of these parameters (`fetch_runs.parameters`, JSON) selects, as `fetch_runs.selection` records
    it: the parameters less those that only say how pages are read (PAGING_KEYS, of any connector: a run of an older
    matreg, which recorded no selection, has one too) and less `besides`."""
    dropped = {*PAGING_KEYS, *besides}
    return json.dumps(
        {key: value for key, value in json.loads(parameters).items() if key not in dropped}, sort_keys=True
    )


def _run_options(connector: Connector, info: RunInfo) -> str | None:
    """The fetch options besides the selection that a --resume of the run gives again, as typed, where they differ
    from the defaults (`fetch_runs.options`): the page size (where not the one the connector asks without
    --page-size: `RunInfo.paging`), --limit and --base-url. None for a lab import."""
    if connector.reads_whole_scope:
        return None
    limit = info.parameters.get(_LIMIT)
    flags = [
        f"--page-size {size}" for key, default in info.paging.items() if (size := info.parameters.get(key)) != default
    ]
    flags += [f"--limit {limit}"] if limit is not None else []
    flags += [f"--base-url {shlex.quote(connector.base_url_option)}"] if connector.base_url_option else []
    return " ".join(flags)


def _fetch_run_row(info: RunInfo, report: RunReport, connector: Connector, error: str | None = None) -> dict:
    return {
        "run_id": report.run_id,
        "source": report.source,
        "endpoint": info.endpoint,
        "base_url": public_url(connector.base_url_read) if connector.base_url_read else None,
        "query": info.query,
        "parameters": _parameters_json(info),
        "selection": _selection_json(info),
        "arguments": connector.arguments,
        "options": _run_options(connector, info),
        "started_at": report.started_at,
        "finished_at": datetime.now(UTC),
        "status": report.status,
        "error": error,
        "n_fetched": report.n_fetched,
        "n_reread": report.n_reread,
        "n_stored": report.n_stored,
        "n_values": report.n_values,
        "n_quarantined": report.n_quarantined,
        "n_unchanged": report.n_unchanged,
        "n_superseded": report.n_superseded,
        "n_withdrawn": report.n_withdrawn,
        "n_available": report.n_available,
        "not_read_again": report.not_read_again,
        "whole_scope": connector.attribution.scope if connector.reads_whole_scope else None,
        "quarantined": None,  # written as the run is published (`Store.publish_run`)
        "quarantine_reasons": None,  # written once, when the run ends (a resume counts its journal's, `staged_reasons`)
        "unmapped_fields": _counts_json(report.unmapped),
        "absent_fields": None if report.absent is None else json.dumps(dict(sorted(report.absent.items()))),
        "database_version": connector.attribution.database_version or report.database_version,
        "matreg_version": __version__,
        "cursor": json.dumps(report.cursor) if report.cursor is not None else None,
        "mapped_with": report.mapped_with,
        "available_counts": json.dumps(report.available_counts) if report.available_counts else None,
    }


def _lacked_by_all(lacked: dict[str, int] | None, more: dict[str, int] | None) -> dict[str, int] | None:
    """The mapped fields lacked by the records of both counts (field: how many records lacked it; None: no record
    counted), with how many records lacked each in all: a field one record carried is lacked by all no more."""
    if lacked is None or more is None:
        return more if lacked is None else lacked
    return {name: count + more[name] for name, count in lacked.items() if name in more}


def _counts_json(counts: Counter) -> str:
    """A Counter as a JSON object, most common first."""
    return json.dumps(dict(counts.most_common()), sort_keys=False, ensure_ascii=False)


def _report_from_row(row: dict[str, Any]) -> RunReport:
    """The counters and cursor of a staged run, to continue it."""
    return RunReport(
        run_id=row["run_id"],
        source=row["source"],
        started_at=row["started_at"],
        status=row["status"],
        n_fetched=row["n_fetched"],
        n_reread=row.get("n_reread") or 0,  # (none in a run staged by an older matreg)
        n_stored=row["n_stored"],
        n_values=row["n_values"],
        n_quarantined=row["n_quarantined"],
        n_available=row["n_available"],
        not_read_again=row.get("not_read_again"),
        unmapped=Counter(json.loads(row["unmapped_fields"])),
        absent=json.loads(row["absent_fields"]) if row.get("absent_fields") else None,
        cursor=json.loads(row["cursor"]) if row["cursor"] else None,
        resumed=True,
        database_version=row.get("database_version"),
        mapped_with=row.get("mapped_with"),  # (none in a run staged by an older matreg)
        available_counts=json.loads(row["available_counts"]) if row.get("available_counts") else None,
    )


def new_run_id(source: str) -> str:
    """A unique run id that sorts by start time (to the microsecond): UTC time, source, a random suffix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{source}-{uuid.uuid4().hex[:8]}"
