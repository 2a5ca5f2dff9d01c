"""The small interface every connector shares: iterate raw records page by page, map one to canonical terms."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from matreg.catalog import Source
from matreg.errors import RecordError
from matreg.paginate import count_of

if TYPE_CHECKING:
    from matreg.fieldmap import FieldMap

# How a quarantine reason begins that says the source itself withdrew the record (the Materials Project's deprecated
# documents): releases and exports warn of the stored records such a row is open for.
WITHDRAWN_BY_SOURCE = "deprecated by "


@dataclass
class RawItem:
    """One raw record as received; `error` is set when fetching this item alone failed (e.g. a 404).

    `source_id` is the id of the record the item is, where it is known without mapping the item: the id it was asked
    for as, where the connector asks for records by id (a JANAF table), else its own id as its mapping reads it
    (`Connector.source_id_of`: an OQMD entry's entry_id). A rejection of the item is that record's even when the item
    cannot be mapped (an HTML page where the table was asked for, an entry with an unreadable formula, a deprecated
    document), so that a later read that writes the record resolves it. None: an item whose id is missing or
    unreadable, whose rejection names no record.
    """

    item_id: str
    payload: Any
    error: str | None = None
    source_id: str | None = None


class NamedRecord(NamedTuple):
    """Of a payload a run quarantined whole, what it is told without mapping it (`Connector.named_record`): the source
    id of its record, its formula as written, the keys its values are stored under (property, method, and the
    conditions in the schema's order, `value_conditions`: None where its cells give none that read), whose stored
    values the record keeps when the run writes it from its other items (a lab row of a measurement series), and the
    phase it states (a lab formula cell's 'H2O(l)': 'l'; None: none)."""

    source_id: str
    formula: str
    value_keys: tuple[tuple[str, str | None, tuple[float | None, ...] | None], ...] = ()
    phase: str | None = None


@dataclass
class Page:
    """One page of raw items, the cursor to resume after it (None: nothing follows), and what the source said.

    `total` is how many records the source says match; a value that is no count is kept as unknown (None).
    `read_at` is when the source gave the page (`HttpClient.page_read_at`; None: just now), which the page's rows are
    stamped with; `from_cache` whether the HTTP cache gave it (`HttpClient.page_from_cache`), kept since `read_at`.
    """

    items: list[RawItem]
    cursor: dict[str, Any] | None
    request: str = ""
    total: int | None = None
    read_at: datetime | None = None
    from_cache: bool = False

    def __post_init__(self) -> None:
        self.total = count_of(self.total)


@dataclass
class RawValue:
    """One value as the source gives it: a property name (canonical or alias), a value and its unit.

    `problem` says why a value the source gives cannot be read (e.g. cells run together); it is rejected with it.
    `provenance` is the value's own where its field says one (a computed column of a lab file of measured values):
    it overrides its record's. `method` is the value's own; without one it takes its record's, unless its provenance
    is another than its record's (`value_method`): a UV-Vis file's DFT column's values are not by UV-Vis.
    `field` is the source field it was read from (a lab file's column; the field a connector derives it from): a
    record's fields that give one value key with different values are named in the reason they are rejected with
    (`harmonize_values`). `uncertainty` is the value's standard uncertainty where the source gives it apart from the
    value, in the value's unit (a lab file's `uncertainty_field` cell); a value's text may state its own instead
    ('5.431(2)', '3.2 ± 0.1': `numbers.parse_value`), not both; `uncertainty_problem` says why the uncertainty
    given apart cannot be read (a lab cell that is no number): the value is rejected with it. A steward's corrected
    value (a readmit) mends `problem`, not `uncertainty_problem`.
    """

    property: str
    value: Any
    unit: str
    temperature_K: float | None = None
    pressure_Pa: float | None = None
    method: str | None = None
    problem: str | None = None
    provenance: str | None = None
    field: str | None = None
    uncertainty: Any = None
    uncertainty_problem: str | None = None


def value_method(raw: RawValue, record_provenance: str, record_method: str | None) -> str | None:
    """The method a value is stored with: its own, else its record's where the value is of its record's provenance."""
    if raw.method or raw.provenance not in (None, record_provenance):
        return raw.method
    return record_method


@dataclass
class SourceRecord:
    """A raw record mapped to canonical terms, not yet harmonized or validated.

    `provenance` overrides the source's default for this record (a database mixing DFT and experiment).
    `attributes` are the record's values of its connector's schema extension, by extension column (None: empty).
    `atoms_per_cell` counts the cell's atoms by occupancy where partly occupied sites make it differ from `nsites`;
    per-cell values are divided by it (else by `nsites`; NaN: the atoms cannot be counted, and such values are refused).
    `left_out` says why values the source gave were left out by the mapping ('band_gap left out: ...'): added to the
    record's notes, and the reasons of a record left with no value.
    `unmapped` are the record's fields its field map does not know, `absent` the mapped fields it does not carry (no
    such key, not a null: `FieldMap.read`): schema drift, counted in the run report.
    """

    source_id: str
    formula: str
    values: list[RawValue]
    name: str | None = None
    phase: str | None = None
    source_url: str | None = None
    structure: str | None = None
    spacegroup_symbol: str | None = None
    spacegroup_number: int | None = None
    nsites: int | None = None
    atoms_per_cell: float | None = None
    method: str | None = None
    notes: str | None = None
    left_out: tuple[str, ...] = ()
    provenance: str | None = None
    unmapped: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)


# The parameters connectors name their page size in (OQMD's limit, OPTIMADE's page_limit, the others' page_size): no
# part of any run's selection, and no connector's selection parameter
PAGING_KEYS = ("limit", "page_limit", "page_size")


@dataclass
class RunInfo:
    """What a run asks of its source, recorded in fetch_runs (parameters must hold no secrets).

    `paging` names the parameters that only say how pages are read (the page size; each one of PAGING_KEYS), each
    with the value the run has without --page-size (the connector's default for its request: cut to --limit where the
    connector cuts it): no part of what the run selects (`fetch_runs.selection`), though a resume continues only a
    run read with the same.
    """

    endpoint: str
    query: str
    parameters: dict[str, Any] = field(default_factory=dict)
    paging: dict[str, int] = field(default_factory=dict)
    relative_path: str | None = None  # a lab file's path from the folder holding the store (`Store.relative_path`)

    def __post_init__(self) -> None:
        """ValueError for a paging parameter not among PAGING_KEYS: the selection of a run that recorded none (an
        older matreg's) is its parameters less those keys, whatever its connector."""
        if unknown := set(self.paging) - set(PAGING_KEYS):
            raise ValueError(f"paging parameters {sorted(unknown)} are not among PAGING_KEYS")


@dataclass
class Attribution:
    """Where values come from and how to cite them; copied onto every material row.

    `scope` is what a run reads of each record: '' all of it, else the part (a lab file, JANAF at one temperature).
    `scope_temperature_K` is set for a part that is the record's values at one temperature (JANAF's 'T=298.15 K').
    A later write of a record replaces the values and attributes of earlier writes that it read again: those of its
    own scope; of every scope when it reads the whole record; of the whole record at its temperature when it reads
    the values at one. Two lab files (two scopes, neither a temperature) keep each other's values.
    """

    source: str
    provenance: str
    method: str | None = None
    database_version: str | None = None
    citation: str | None = None
    license: str | None = None
    scope: str = ""
    scope_temperature_K: float | None = None

    @classmethod
    def of_source(cls, name: str, source: Source, method: str | None) -> Attribution:
        """Attribution of a catalog source's records: its provenance, method (the catalog's, else `method`, the field
        map's), version, citation and licence."""
        return cls(
            source=name,
            provenance=source.provenance,
            method=source.method or method,
            database_version=source.database_version,
            citation=source.citation,
            license=source.license,
        )

    def record_id(self, source_id: str) -> str:
        """The store's id of the record the source calls `source_id`: '<source>:<source id>'."""
        return f"{self.source}:{source_id}"


@dataclass(frozen=True)
class ReadMode:
    """How a run reads its scope (`Attribution.scope`). The default is a remote source's: the pages its request
    selects, one of them previewed by a dry run. A lab file's (`LabConnector`) is read whole, its rows of one id
    joined, every page previewed; its ids name rows where it has no id column, and --as may choose its scope."""

    whole_scope: bool = False  # a run reads all its scope says (a lab file): records it lacks are withdrawn
    joins_rows: bool = False  # items of one record on a page are its rows, of one read (a lab file's rows of one id)
    ids_by_position: bool = False  # its record ids name a place (a file's line), not a material: see _PublishCheck
    scope_chosen: bool = False  # the user named the scope (`import --as`): it may take over another file's scope
    preview_pages: int | None = 1  # pages a dry run maps: one of a remote source, every one (None) of a local file


class Connector(ABC):
    """A source: which requests to make (pages of raw items) and how one raw record reads."""

    attribution: Attribution
    field_map: FieldMap | None = None  # connectors/<connector>.yaml as loaded (None: a lab file's, by its mapping)
    extension: str | None = None  # the schema extension (schemas/extensions/) its records' attributes follow
    unread_columns: tuple[str, ...] = ()  # materials columns this run does not read: stored values kept (same material)
    read_mode: ReadMode = ReadMode()  # how a run reads its scope: a remote source's pages, unless a lab file's
    # What `matreg fetch` asked, as `build_connector` sets it (these defaults on a connector it did not build)
    reads_whole_source: bool = False  # a run asks for every record the source lists (fetch --all alone)
    base_url_option: str | None = None  # --base-url given, where not the catalog's: a resume gives it again
    base_url_read: str | None = None  # the base URL it reads (--base-url's, else the catalog's), credentials split off
    arguments: str | None = None  # the selection `matreg fetch` was given, as typed (`FetchRequest.arguments`)

    @abstractmethod
    def run_info(self) -> RunInfo:
        """The endpoint, query and (secret-free) parameters of this run."""

    @abstractmethod
    def pages(self, cursor: dict[str, Any] | None = None) -> Iterator[Page]:
        """Pages of raw items, starting from `cursor` (a cursor of an earlier page) or from the beginning."""

    @abstractmethod
    def to_record(self, payload: Any) -> SourceRecord:
        """Map one raw payload to canonical terms; raise RecordError if it cannot be read."""

    def continues_listing(self, cursor: dict[str, Any]) -> bool:
        """Whether the first page read from `cursor` (a committed page's) is of the listing that page was of, so that
        its count of matching records (`Page.total`) is that page's unless the source changed meanwhile. The default:
        True; False where a cursor starts the next of a run's listings (OQMD's next query, whose count adds to it)."""
        return True

    def read_source_id(self, payload: Any) -> str | None:
        """The source id of a raw record as its mapping reads it (`to_record` reads it so: one way of reading it),
        without mapping the rest; RecordError where the record has none that reads. The default: None (the connector
        tells no id apart from mapping)."""
        return None

    def source_id_of(self, payload: Any) -> str | None:
        """The record a raw item is (`RawItem.source_id`): its source id where it reads (`read_source_id`), else
        None."""
        try:
            return self.read_source_id(payload)
        except RecordError:
            return None

    def identity(self, item: RawItem) -> str | None:
        """What a rejected item is, if not its item id and payload as received: its quarantine id hashes this with the
        source (a lab row: its cells by what they mean, `LabConnector.identity`). The default: None."""
        return None

    def named_record(self, payload: Any) -> NamedRecord | None:
        """Of a payload a run quarantined whole, the record it is, told without mapping it (a lab row's id, formula
        cell and value keys: `NamedRecord`): a record its source still gives. The default: None (not told)."""
        return None

    def redact(self, text: str) -> str:
        """`text` with this connector's secrets removed; the default has none."""
        return text

    def close(self) -> None:
        """Release connections; the default has none."""
