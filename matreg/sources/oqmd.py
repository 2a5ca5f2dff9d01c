"""OQMD, the Open Quantum Materials Database: its REST API `GET <base>/formationenergy` (https://oqmd.org/oqmdapi/).

Wire format (qmpy's FormationEnergyList view and serializer; docs: static.oqmd.org/static/docs/restful.html):
    GET /oqmdapi/formationenergy?fields=name,entry_id,delta_e&filter=element_set=(Al-Fe),O&limit=50
    {"links": {"next": "http://oqmd.org/oqmdapi/formationenergy?...&offset=50", "previous": null, ...},
     "data": [{"name": "NaAlH2CO5", "entry_id": 16974, "composition": "Al1 C1 H2 Na1 O5", "delta_e": -2.057,
               "volume": 101.2, "natoms": 10, "unit_cell": [[ax, ay, az], [bx, ...], [cx, ...]],
               "sites": ["Na @ 0 0 0", "Al @ 0.5 0.5 0.5", ...], ...}],
     "meta": {"data_returned": 50, "data_available": 1078, "more_data_available": true, ...},
     "response_message": "OK"}
Quirks: `filter` is OQMD's own language (`element_set=(Al-Fe),O` is (Al or Fe) and O; terms joined by ' AND ');
`volume` is per cell of the calculation's output structure, whose atoms `sites` lists; `unit_cell` rows are the
lattice vectors and `sites` fractional coordinates printed with 3 significant digits; `composition` is reduced
("Al2 O3"); `stability` is the energy above the hull, clipped at 0 by the serializer (the filter compares qmpy's
signed value: `stability<0` selects phases that lower the hull, which read 0); entries cannot be selected by id;
`links.next` names http://oqmd.org/oqmdapi/ whatever was asked (its path below /oqmdapi/ is followed on the
catalog's base URL, also a mirror's under a path prefix); `spacegroup` is qmpy's Hermann-Mauguin symbol without
screw-axis marks ('P21/c') and with old names ('Cmca').
Rows are formation energies, not entries: one per calculation of an entry that has a formation energy of OQMD's
standard fit (the only fit the API lists), in server order, and the API documents no choice among them: an entry
with two such calculations comes twice. Its record keeps the entry's id (`oqmd:<entry_id>`, the id users cite);
its notes name the calculation of its values (`calculation_id`, `calculation_label`) and, for an entry that
duplicates another, that one (`duplicate_entry_id`, "the preferred entry with this same crystal structure", is the
entry itself otherwise). A run keeps an entry's last read and counts the reads it replaced (`RunReport.n_reread`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

from matreg.catalog import Source
from matreg.errors import ConfigError, RecordError, SourceError, clipped
from matreg.fieldmap import FieldMap, catalog_mapping, load_field_map
from matreg.formula import Formula, parse_formula
from matreg.http import HttpClient
from matreg.paginate import HttpRequest, NextLinkPaginator, dig
from matreg.sources import FetchRequest
from matreg.sources.base import Page, RunInfo, SourceRecord
from matreg.sources.jsonapi import JsonApiConnector
from matreg.structure import composition_text, spacegroup_number, structure_json
from matreg.validation import read_id, read_text

REFUSED = {"ids": "OQMD's formationenergy API cannot select entries by id: use --formula, --elements or --filter"}
DEFAULT_LIMIT = 50  # OQMD's own default page size
API_ROOT = "/oqmdapi/"  # where OQMD's links name its API (http://oqmd.org/oqmdapi/...), whatever base was asked


class OqmdConnector(JsonApiConnector):
    """Pages of `formationenergy` records for one or more queries (one per formula), following `links.next`."""

    def __init__(
        self,
        source: Source,
        client: HttpClient,
        queries: list[dict[str, str]],
        *,
        page_size: int,
        default_page_size: int = DEFAULT_LIMIT,  # the page size without --page-size (RunInfo.paging)
        name: str = "oqmd",
    ) -> None:
        base_url = source.base_url.rstrip("/") + "/"
        self.endpoint = base_url + "formationenergy"
        self.entry_url = urljoin(base_url, "../materials/entry/")  # the entry's page on the OQMD web site
        self.client = client
        self.queries = queries
        self.page_size, self.default_page_size = page_size, default_page_size
        self.paginator = NextLinkPaginator(base_url=base_url, link_root=API_ROOT)  # links name http://oqmd.org
        self.field_map, self.attribution = catalog_mapping("oqmd", name, source)
        self._query = 0

    def run_info(self) -> RunInfo:
        described = "; ".join(
            " ".join(f"{k}={v}" for k, v in q.items() if k != "fields") or "all" for q in self.queries
        )
        return RunInfo(
            endpoint=self.endpoint,
            query=f"OQMD formationenergy: {described}",
            parameters={"queries": self.queries, "limit": self.page_size},
            paging={"limit": self.default_page_size},
        )

    def first_request(self) -> HttpRequest:
        return HttpRequest("GET", self.endpoint, {**self.queries[self._query], "limit": self.page_size})

    def records(self, body: Any) -> list[dict[str, Any]]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise SourceError(f"OQMD answered without a 'data' list: {clipped(str(body), 120)!r}")
        return data

    def item_id(self, record: dict[str, Any]) -> str:
        return str(record.get("entry_id")) if isinstance(record, dict) else "<not an object>"

    def total(self, body: Any) -> int | None:
        return dig(body, ("meta", "data_available"))

    def pages(self, cursor: dict[str, Any] | None = None) -> Iterator[Page]:
        """Each query's pages in turn; the cursor says which query and which request within it come next.

        A page's total is the sum of the totals of the queries read so far (each query answers its own).
        """
        start = cursor["query"] if cursor else 0
        totals: dict[str, int] = cursor.get("totals", {}) if cursor else {}  # by query (JSON keys are text)
        for index in range(start, len(self.queries)):
            self._query = index  # read by first_request
            inner = cursor["request"] if cursor and index == start else None
            for page in super().pages(inner):
                if page.total is not None:
                    totals = {**totals, str(index): page.total}
                page.total = sum(totals.values()) if totals else None
                page.cursor = self._chain_cursor(index, page.cursor, totals)
                yield page

    def continues_listing(self, cursor: dict[str, Any]) -> bool:
        """False for a cursor that starts a query (its first page's total adds that query's count)."""
        return cursor.get("request") is not None

    def _chain_cursor(
        self, index: int, request: dict[str, Any] | None, totals: dict[str, int]
    ) -> dict[str, Any] | None:
        if request is not None:
            return {"query": index, "request": request, "totals": totals}
        return {"query": index + 1, "request": None, "totals": totals} if index + 1 < len(self.queries) else None

    def read_source_id(self, payload: Any) -> str:
        """The entry's entry_id (`read_id`)."""
        if not isinstance(payload, dict) or payload.get("entry_id") is None:
            raise RecordError("OQMD record without an entry_id")
        return read_id(payload["entry_id"], "entry_id")

    def to_record(self, payload: dict[str, Any]) -> SourceRecord:
        entry_id = self.read_source_id(payload)
        species, structure = oqmd_structure(payload.get("unit_cell"), payload.get("sites"), entry_id)
        formula = payload.get("composition") or payload.get("name") or (species and composition_text(species))
        if not formula:
            raise RecordError(f"OQMD entry {entry_id}: no composition, name or structure")
        spacegroup = read_text(payload.get("spacegroup"), "spacegroup", self.field_map.is_missing)
        values, absent = self.field_map.read(payload, self.attribution.method)
        return SourceRecord(
            source_id=entry_id,
            formula=formula,
            values=values,
            name=read_text(payload.get("name"), "name", self.field_map.is_missing),
            source_url=f"{self.entry_url}{entry_id}",
            structure=structure,
            spacegroup_symbol=spacegroup,
            spacegroup_number=spacegroup_number(spacegroup) if spacegroup else None,
            nsites=len(species) if species else _natoms(payload),  # `volume` is per cell of the listed sites
            notes=_notes(payload),
            unmapped=self.field_map.unmapped(payload),
            absent=absent,
        )


def oqmd_structure(unit_cell: Any, sites: Any, entry_id: Any) -> tuple[list[str], str | None]:
    """Site species and structure JSON of `unit_cell` (rows: lattice vectors, Å) and `sites` ('Al @ 0 0.5 0.5').

    Both empty when the entry has no cell; RecordError when it has one that cannot be read.
    """
    if not unit_cell or not sites:
        return [], None
    if not isinstance(sites, list):
        raise RecordError(f"OQMD entry {entry_id}: 'sites' is not a list")
    species, coords = zip(*(_site(text, entry_id) for text in sites), strict=True)
    return list(species), structure_json(unit_cell, species, coords, field=f"OQMD entry {entry_id}: structure")


def _site(text: Any, entry_id: Any) -> tuple[str, list[float]]:
    element, at, position = str(text).partition("@")
    try:
        coords = [float(x) for x in position.split()]
    except ValueError:
        coords = []
    if not at or len(coords) != 3:
        raise RecordError(f"OQMD entry {entry_id}: site {text!r} is not '<element> @ x y z'")
    return element.strip(), coords


def _natoms(payload: dict[str, Any]) -> int | None:
    natoms = payload.get("natoms")
    if natoms is None:
        return None
    if not isinstance(natoms, int) or isinstance(natoms, bool) or natoms < 1:
        raise RecordError(f"OQMD entry {payload['entry_id']}: natoms {natoms!r} is not a positive integer")
    return natoms


def _notes(payload: dict[str, Any]) -> str | None:
    """ICSD id, prototype, the calculation the values come from, and the entry this one duplicates (if another)."""
    labels = {"icsd_id": "ICSD", "prototype": "prototype"}
    notes = [f"{label} {payload[key]}" for key, label in labels.items() if _given(payload.get(key))]
    calculation, label = payload.get("calculation_id"), payload.get("calculation_label")
    if _given(calculation) or _given(label):
        both = _given(calculation) and _given(label)
        notes.append(f"calculation {calculation} ({label})" if both else f"calculation {calculation or label}")
    duplicated = payload.get("duplicate_entry_id")
    notes += [f"duplicate of entry {duplicated}"] if _given(duplicated) and duplicated != payload["entry_id"] else []
    return "; ".join(notes) or None


def _given(value: Any) -> bool:
    return value not in (None, "")


def query_fields(field_map: FieldMap) -> str:
    """The `fields` parameter: every field the map reads, so OQMD sends nothing else."""
    return ",".join(dict.fromkeys([*field_map.value_fields, *field_map.other_fields]))


def native_filter(elements: list[str], where: str | None) -> str | None:
    """OQMD's `filter` of an element set (exactly these: element_set and ntypes) and OQMD's own filter, ANDed."""
    terms = [f"element_set={','.join(elements)}", f"ntypes={len(set(elements))}"] if elements else []
    if where:
        terms.append(f"( {where} )" if terms else where)
    return " AND ".join(terms) or None


def build(name: str, source: Source, client: HttpClient, request: FetchRequest) -> OqmdConnector:
    """The OQMD connector for a `matreg fetch` request: formulas, elements, a native filter, or everything.

    One query per formula (OQMD's `composition`) and one for the element set, each narrowed by the filter, followed
    in turn: the records of any of them (a formula of exactly the element set is left to the element query, which
    would read its records a second time).
    """
    if not (request.formulas or request.elements or request.filter or request.everything):
        raise ConfigError("nothing asked of OQMD: give --formula, --elements, --filter (OQMD's language) or --all")
    fields = {"fields": query_fields(load_field_map("oqmd"))}
    narrowed = native_filter([], request.filter)
    covered = set(request.elements)  # formulas of exactly these elements: the element query finds them already
    formulas = [formula.original for formula in _distinct(request.formulas) if set(formula.elements) != covered]
    queries = [_query(fields, narrowed, {"composition": formula}) for formula in formulas]
    if request.elements or not request.formulas:
        queries.append(_query(fields, native_filter(request.elements, request.filter), {}))
    return OqmdConnector(source, client, queries, **request.page_sizes(DEFAULT_LIMIT), name=name)


def _distinct(texts: list[str]) -> list[Formula]:
    """The formulas, each composition once (FeO and OFe ask OQMD the same), in the order given."""
    formulas: dict[str, Formula] = {}
    for text in texts:
        formula = parse_formula(text)
        formulas.setdefault(formula.reduced, formula)
    return list(formulas.values())


def _query(fields: dict[str, str], where: str | None, selection: dict[str, str]) -> dict[str, str]:
    return fields | ({"filter": where} if where else {}) | selection
