"""AFLOW (aflow.org): DFT entries through the AFLUX search API; structures from each entry's aflowlib.json.

Wire format (the AFLUX help at https://aflow.org/API/aflux/?, Rose et al., Comput. Mater. Sci. 137, 362 (2017),
and the consortium's aflow-org/aflow_school notebooks):
    GET <base>?<matchbook>,$paging(<page>,<size>),format(json)
    e.g. https://aflow.org/API/aflux/?auid,aurl,compound,Egap,$species(Al,O),$nspecies(2),$paging(1,500),format(json)
The query is one AFLUX "summons", not key=value pairs: it is sent as AFLUX's own clients send it, with
`$ ( ) , : ' * !` unescaped. Bare keywords are returned (null where an entry has no value); `k(args)` filters
(`,` AND, `:` OR, `!` NOT, `*` open range, `'` string); `$` mutes a keyword (filters without returning it).
Entries come sorted by the first keyword; pages count from 1 (`$paging(0)` returns the whole result set at once).
Answers: today a JSON list of records with typed values ({"Egap": 6.8531, "dft_type": ["PAW_PBE"], ...});
formerly a JSON object keyed "<i> of <N>" with every value a string ({"Egap": "6.8531", "dft_type": "PAW_PBE"}),
N being how many entries match (paging ends at the page of the N-th: the next one would be empty).
Entries: aurl 'aflowlib.duke.edu:AFLOWDATA/ICSD_WEB/HEX/Ac1Br3_ICSD_31578' is the directory
https://aflowlib.duke.edu/AFLOWDATA/ICSD_WEB/HEX/Ac1Br3_ICSD_31578/ -- only the first ':' separates host and path,
LIB aurls have more ('.../T0009.ACB:LDAU2'). Its aflowlib.json holds the relaxed cell: geometry (a, b, c, alpha,
beta, gamma), positions_fractional, species and composition (atoms per species, in order).
`compound` is the composition of the calculated cell ('Ac2Br6', natoms 8): a record's formula is its reduced form,
so molar values (Cp, in k_B per cell) are per mole of the reduced formula unit, as every other source's solids.
natoms "can be non integer if partial occupation is considered" (AAPI schema): a POCC entry's natoms (7.5) counts
the atoms of its average cell, which its per-cell values are divided by (the record's notes say so; nsites stays
empty); an aflowlib.json with fractional atoms per species gives no structure (the notes say why).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from pymatgen.core import Lattice

from matreg.catalog import Source
from matreg.errors import ConfigError, FormulaError, RecordError, SourceError, clipped
from matreg.fieldmap import FieldMap, catalog_mapping
from matreg.formula import composition_key, parse_formula
from matreg.http import HttpClient, NotFound
from matreg.paginate import HttpRequest, PageNumberPaginator
from matreg.sources import FetchRequest
from matreg.sources.base import Page, RawItem, RawValue, RunInfo, SourceRecord
from matreg.sources.jsonapi import JsonApiConnector
from matreg.structure import refuse_non_numbers, structure_json
from matreg.units import parse_unit
from matreg.validation import read_id, read_spacegroup_number

PUBLIC_HOSTS = frozenset({"aflow.org", "aflowlib.duke.edu"})  # AFLOW's servers: entries live where aurls say
AFLUX_PATH = "API/aflux"  # where AFLUX sits below a server's root (https://aflowlib.duke.edu/API/aflux/)
DEFAULT_PAGE_SIZE = 500
ENTRY_FILE = "aflowlib.json"
_ENTRY = "aflowlib.json"  # payload key of an entry file fetched for its structure (not an AFLUX keyword)
_ENTRY_FAILED = "aflowlib.json unread"  # payload key of why an entry file could not be read
_ATTACHED = (_ENTRY, _ENTRY_FAILED)
_DIRECTIVES = {"catalog"}  # a bare 'catalog' is AFLUX's catalog directive, not a keyword: aflowlib.json has it
_OLD_KEY = re.compile(r"^\d+ of (\d+)$")
_PSEUDOPOTENTIAL = re.compile(r"^(?:PAW|US|NC)_")
_VASP_GGA = {"GGA": "PW91"}  # VASP's potentials named GGA (dft_type PAW_GGA) are PW91's; PBE ones are named PBE
_STRUCTURE_KEYS = ("geometry", "positions_fractional", "species", "composition")


class AfluxPaging(PageNumberPaginator):
    """`$paging(n,k)` pages, ending after a short page or, in old answers, at the last page of their N entries."""

    def total(self, body: Any) -> int | None:
        return old_total(body)


def old_total(body: Any) -> int | None:
    """N of an old '<i> of <N>' answer (how many entries match); None for the typed lists, which do not say."""
    match = _OLD_KEY.match(next(iter(body))) if isinstance(body, dict) and body else None
    return int(match[1]) if match else None


class AflowConnector(JsonApiConnector):
    """Pages of AFLOW entries matching one AFLUX matchbook, by `$paging(n,k)`; optionally their structures."""

    def __init__(
        self,
        source: Source,
        client: HttpClient,
        filters: list[str],
        *,
        formulas: list[str] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        default_page_size: int = DEFAULT_PAGE_SIZE,  # the page size without --page-size (RunInfo.paging)
        structures: bool = False,
        entry_root: str | None = None,
        name: str = "aflow",
    ) -> None:
        self.base_url = source.base_url.rstrip("/") + "/"
        self.client = client
        self.field_map, self.attribution = catalog_mapping("aflow", name, source)
        self.matchbook = ",".join([*request_keywords(self.field_map), *filters])
        self.formulas = sorted({_composition_name(text) for text in formulas or []})
        self.structures = structures
        self.entry_root = entry_root
        self.paginator = AfluxPaging(page_size)
        self.default_page_size = default_page_size
        # without --structures: the structure and the notes (the catalog is the entry file's) as stored before, while
        # the entry is the same material (Store._keep_stored)
        self.unread_columns = () if structures else ("structure", "notes")

    def run_info(self) -> RunInfo:
        formulas = f" (formulas {', '.join(self.formulas)})" if self.formulas else ""
        return RunInfo(
            endpoint=self.base_url,
            query=self.matchbook + formulas,
            parameters={
                "matchbook": self.matchbook,
                "formulas": self.formulas,
                "page_size": self.paginator.size,
                "structures": self.structures,
            },
            paging={"page_size": self.default_page_size},
        )

    def first_request(self) -> HttpRequest:
        return HttpRequest("GET", f"{self.base_url}?{self.matchbook}", page=1)

    def page_url(self, url: str, page: int) -> str:
        """The URL of one page: base and matchbook (`url`), then the paging and format directives."""
        return f"{url},$paging({page},{self.paginator.size}),format(json)"

    def send(self, request: HttpRequest) -> Any:
        return self.client.get_json(self.page_url(request.url, request.page))

    def records(self, body: Any) -> list[dict[str, Any]]:
        if isinstance(body, list):
            return body
        if isinstance(body, dict) and all(_OLD_KEY.match(key) for key in body):
            return list(body.values())
        raise SourceError(
            f"not an AFLUX answer (neither a list nor '<i> of <N>' keys): {clipped(json.dumps(body), 200)}"
        )

    def item_id(self, record: dict[str, Any]) -> str:
        if not isinstance(record, dict):
            return "?"
        return str(record.get("auid") or record.get("aurl") or "?")

    def total(self, body: Any) -> int | None:
        return old_total(body)

    def pages(self, cursor: dict[str, Any] | None = None) -> Iterator[Page]:
        request = HttpRequest.from_cursor(cursor) if cursor else self.first_request()
        number = request.page or 1
        for page in super().pages(cursor):
            # The summons as sent: it holds no secret (keys travel in headers), and redact_url would percent-encode it.
            page.request = f"GET {self.page_url(request.url, number)}"
            number += 1
            # AFLUX matches element sets only; the formula itself is checked here, after pagination has counted.
            page.items = [item for item in page.items if self._wanted(item.payload)]
            if self.structures:
                for item in page.items:
                    self._attach_entry(item)
            yield page

    def _wanted(self, record: Any) -> bool:
        if not self.formulas or not isinstance(record, dict):
            return True
        try:
            return _composition_name(str(record.get("compound"))) in self.formulas
        except FormulaError:
            return True  # kept, to be quarantined with its reason

    def _attach_entry(self, item: RawItem) -> None:
        """Add the entry's aflowlib.json to the payload; an entry without one keeps its values, without structure,
        and one whose file cannot be read (not JSON, refused) too, with the reason as a note."""
        url = entry_url(item.payload.get("aurl"), self.entry_root) if isinstance(item.payload, dict) else None
        if url is None:
            return
        try:
            item.payload[_ENTRY] = self.client.get_json(url + ENTRY_FILE)
        except NotFound:
            return
        except SourceError as exc:
            item.payload[_ENTRY_FAILED] = str(exc)

    def read_source_id(self, payload: Any) -> str:
        """The record's auid (`read_id`; not its aurl, which names where its files are)."""
        if not isinstance(payload, dict):
            raise RecordError("AFLUX record is not a JSON object")
        if self.field_map.is_missing(payload.get("auid")):
            raise RecordError("AFLUX record without 'auid'")
        return read_id(payload["auid"], "auid")

    def to_record(self, payload: dict[str, Any]) -> SourceRecord:
        auid = self.read_source_id(payload)
        extra = _ENTRY in payload or _ENTRY_FAILED in payload
        row = {key: value for key, value in payload.items() if key not in _ATTACHED} if extra else payload
        if self.field_map.is_missing(row.get("compound")):
            raise RecordError("AFLUX record without 'compound'")
        method, potentials_method = self.methods_of(row)
        # AEL/AGL run with the entry's own settings: its potentials' functional, not a hybrid named after them
        values, absent = self.field_map.read(row, potentials_method or self.attribution.method)
        structure, structure_not_kept = _structure_of(payload)
        return SourceRecord(
            source_id=auid,
            formula=parse_formula(str(row["compound"])).reduced,  # the cell's composition, reduced
            values=values,
            source_url=entry_url(row.get("aurl")),
            structure=structure,
            spacegroup_number=read_spacegroup_number(
                row.get("spacegroup_relax"), "spacegroup_relax", self.field_map.is_missing
            ),
            nsites=_whole(row.get("natoms")),
            atoms_per_cell=_fractional(row.get("natoms")),  # a POCC average cell's atoms: per-cell values per atom
            method=method,
            notes=_notes(row, payload.get(_ENTRY), structure_not_kept, _average_cell_note(row.get("natoms"), values)),
            unmapped=self.field_map.unmapped(row),
            absent=absent,
        )

    def methods_of(self, record: dict[str, Any]) -> tuple[str | None, str | None]:
        """The functional from dft_type (PAW_PBE -> PBE; PAW_GGA -> PW91; PAW_PBE,HSE06 -> HSE06), with '+U' when
        ldau_type is set, and the first one named, its potentials' (PAW_PBE,HSE06 -> PBE); (None, None) if none."""
        names = _functionals(_listed(record.get("dft_type")), self.field_map.missing)
        if not names:
            return None, None
        hubbard_u = "+U" if _nonzero(record.get("ldau_type")) else ""
        return names[-1] + hubbard_u, names[0] + hubbard_u


@lru_cache(maxsize=256)
def _functionals(dft_type: tuple[str, ...], missing: frozenset[str]) -> tuple[str, ...]:
    """The functionals a dft_type names, without pseudopotential prefixes (worked out once per distinct dft_type)."""
    tokens = (_PSEUDOPOTENTIAL.sub("", token.strip()) for token in dft_type)
    return tuple(_VASP_GGA.get(token, token) for token in tokens if token not in missing)


def request_keywords(field_map: FieldMap) -> list[str]:
    """AFLUX keywords to return: auid first (AFLUX sorts by the first keyword), then every field the map knows."""
    names = ["auid", *field_map.other_fields, *(field.split(".")[0] for field in field_map.value_fields)]
    return [name for name in dict.fromkeys(names) if name not in _DIRECTIVES]


def matchbook_filters(request: FetchRequest) -> list[str]:
    """AFLUX filters of a fetch request, ANDed: auids, the formulas' element sets or an element set, the native
    filter."""
    request.one_selector("aflow", "an AFLUX matchbook ANDs auids and element sets (formulas are checked here)")
    filters = []
    if request.ids:
        auids = ":".join(f"'{_auid(text)}'" for text in request.ids)
        filters.append(f"auid({auids})")
    blocks = list(dict.fromkeys(_species(parse_formula(text).elements) for text in request.formulas))
    if len(blocks) == 1:
        filters.append(blocks[0])
    elif blocks:
        filters.append("(" + ":".join(f"({block})" for block in blocks) + ")")
    if request.elements:
        filters.append(_species(sorted(set(request.elements))))
    if request.filter:
        filters.append(request.filter)
    return filters


def _species(elements: tuple[str, ...] | list[str]) -> str:
    """Entries made of exactly these elements; muted ('$'), so AFLUX filters on them without returning them."""
    return f"$species({','.join(elements)}),$nspecies({len(elements)})"


def entry_url(aurl: Any, root: str | None = None) -> str | None:
    """The entry directory of an aurl: host:path -> https://host/path/ (or `root` + path for a mirror)."""
    host, colon, path = str(aurl or "").partition(":")  # only the first ':' ends the host
    if not (host and colon and path):
        return None
    return f"{root or f'https://{host}/'}{path.strip('/')}/"


def _structure_of(payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """The structure of the record's attached aflowlib.json, or why none is kept (a file that could not be read, a
    partly occupied cell: atoms per species that are not whole have no sites to place)."""
    if _ENTRY_FAILED in payload:
        return None, payload[_ENTRY_FAILED]
    entry = payload.get(_ENTRY)
    composition = entry.get("composition") if isinstance(entry, dict) else None
    if isinstance(composition, list) and any(_fractional(count) for count in composition):
        return None, f"{ENTRY_FILE}: composition {composition} is not whole atoms (partial occupation)"
    return aflow_structure(entry), None


def aflow_structure(entry: Any) -> str | None:
    """Structure JSON of an aflowlib.json entry's relaxed cell; None when it has no cell."""
    if not isinstance(entry, dict) or not all(entry.get(key) for key in _STRUCTURE_KEYS):
        return None
    refuse_non_numbers([entry["geometry"]], f"{ENTRY_FILE}: geometry entry")  # (a JSON true is no 1 Å, no 1°)
    try:
        species = _site_species(entry["species"], entry["composition"], len(entry["positions_fractional"]))
        lattice = Lattice.from_parameters(*entry["geometry"]).matrix
    except (TypeError, ValueError, OverflowError) as exc:  # (OverflowError: an integer too large for a float)
        raise RecordError(f"{ENTRY_FILE}: no cell from geometry, species and composition: {exc}") from None
    return structure_json(lattice, species, entry["positions_fractional"], field=ENTRY_FILE)


def _site_species(elements: Any, composition: Any, positions: int) -> list[str]:
    """Each site's element, of the entry's species and their counts of atoms; RecordError where the counts add up to
    other than its number of positions (before the list is made: a count of 1e154 would take every byte of memory)."""
    counts = [_sites(count) for count in composition]
    if sum(counts) != positions:
        counted = f"{sum(counts)} atoms for {positions} positions"
        raise RecordError(f"{ENTRY_FILE}: composition {composition} counts {counted} (positions_fractional)")
    return [element for element, count in zip(elements, counts, strict=True) for _ in range(count)]


def _auid(text: str) -> str:
    return text if text.startswith("aflow:") else f"aflow:{text}"


def _listed(value: Any) -> tuple[str, ...]:
    """A plural AFLUX value's items: typed answers give lists, the old ones comma-separated strings."""
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    return tuple(value.split(",")) if isinstance(value, str) else ()


def _nonzero(value: Any) -> bool:
    if value is None:  # (most entries: no +U; raising and catching the TypeError costs a microsecond)
        return False
    try:
        return float(value) != 0
    except (TypeError, ValueError):
        return False


def _count(value: Any) -> float | None:
    """A positive finite number (a number or its text, as old answers give it), or None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # (OverflowError: an integer past the largest float)
        return None
    return number if 0 < number < math.inf else None


def _whole(value: Any) -> int | None:
    """A positive whole number, or None (natoms is fractional for partially occupied cells)."""
    number = _count(value)
    return int(number) if number is not None and number.is_integer() else None


def _sites(value: Any) -> int:
    """A whole count of atoms (sites) in a cell; RecordError for any other (a fraction is not truncated)."""
    number = _whole(value)
    if number is None:
        raise RecordError(f"{ENTRY_FILE}: composition count {value!r} is not a whole number of atoms")
    return number


def _fractional(value: Any) -> float | None:
    """A positive number that is not whole, or None: AFLOW's atom counts of a partly occupied (POCC) cell, averaged
    over its configurations (natoms 7.5)."""
    number = _count(value)
    return number if number is not None and not number.is_integer() else None


def _average_cell_note(natoms: Any, values: list[RawValue]) -> str | None:
    """Says that the record's per-cell values (heat capacity) are per atom of a POCC entry's average cell."""
    atoms = _fractional(natoms)
    if atoms is None:
        return None
    per_cell = sorted({value.property for value in values if "[cell]" in parse_unit(value.unit).dimensionality})
    divided = f": {', '.join(per_cell)} per cell divided by it" if per_cell else ""
    return f"natoms {atoms:g} (partial occupation, the average cell){divided}"


def _notes(record: dict[str, Any], entry: Any, structure_not_kept: str | None, average_cell: str | None) -> str | None:
    """The record's catalog (AFLUX answers carry none: the entry's aflowlib.json does, with --structures), Pearson
    symbol, why no structure is kept from its entry file, and the atoms its per-cell values are divided by where
    they are not its sites."""
    catalog = record.get("catalog") or (entry.get("catalog") if isinstance(entry, dict) else None)
    parts = [f"AFLOW catalog {catalog}"] if catalog else []
    if record.get("Pearson_symbol_relax"):
        parts.append(f"Pearson symbol {record['Pearson_symbol_relax']}")
    if structure_not_kept:
        parts.append(f"structure not kept: {structure_not_kept}")
    if average_cell:
        parts.append(average_cell)
    return "; ".join(parts) or None


def _composition_name(formula: str) -> str:
    """One name per composition, to compare formulas by: reduced, in whole numbers ('Ac0.25Br0.75', 'Ac2Br6' ->
    'AcBr3'); FormulaError if unreadable."""
    return composition_key(parse_formula(formula).reduced)


def build(name: str, source: Source, client: HttpClient, request: FetchRequest) -> AflowConnector:
    """The AFLOW connector for a `matreg fetch` request: auids, formulas, element sets, an AFLUX filter, or all.

    Structures (one aflowlib.json request per entry) are fetched only when the request has `structures` set.
    """
    filters = matchbook_filters(request)
    if not filters and not request.everything:
        raise ConfigError("no AFLOW entries asked for: give auids, --formula, --elements, --filter (AFLUX) or --all")
    return AflowConnector(
        source,
        client,
        filters,
        formulas=request.formulas,
        # a formula is checked here, after AFLUX's element-set pages: a page cut to --limit would need many of them
        **(
            {"page_size": request.page_size or DEFAULT_PAGE_SIZE, "default_page_size": DEFAULT_PAGE_SIZE}
            if request.formulas
            else request.page_sizes(DEFAULT_PAGE_SIZE)
        ),
        structures=bool(request.structures),
        entry_root=entry_root(source, request),
        name=name,
    )


def entry_root(source: Source, request: FetchRequest) -> str | None:
    """Where entry files (aflowlib.json) are fetched from: the catalog's `files_url`, else a mirror's root that
    `--base-url` names (what precedes its API/aflux/ path), else None: the host each entry's aurl names (also for
    AFLOW's own servers under any path)."""
    if source.files_url:
        return source.files_url.rstrip("/") + "/"
    parts = urlsplit(request.base_url or "")
    host = parts.hostname or ""
    if not request.base_url or any(host == public or host.endswith("." + public) for public in PUBLIC_HOSTS):
        return None
    start = parts.path.lower().find(AFLUX_PATH.lower())
    prefix = parts.path[:start] if start >= 0 else "/"
    return f"{parts.scheme}://{parts.netloc}{prefix.rstrip('/')}/"
