"""OPTIMADE: the structures of one provider database per catalog entry (JSON:API pages, filter passed through).

Wire format (OPTIMADE v1, https://www.optimade.org/specification), e.g. Materials Cloud:
    GET <base>/v1/structures?filter=elements HAS ALL "Si","O"&page_limit=2&response_fields=...
    {"data": [{"id": "903", "type": "structures",
               "attributes": {"chemical_formula_reduced": "Al3ClNa4O12Si3", "nsites": 46,
                              "lattice_vectors": [[8.8954, 0, 0], ...], "cartesian_site_positions": [...],
                              "species_at_sites": ["Na", ...], "species": [{"name": "Na", "chemical_symbols": ["Na"],
                              "concentration": [1.0]}, ...], "dimension_types": [1, 1, 1], "_mcloud_ctime": "..."}}],
     "meta": {"data_returned": 187, "data_available": 1620, "provider": {"prefix": "mcloud", ...}},
     "links": {"next": "<url>"}}
Quirks: `links.next` is a URL string or a JSON:API link object {"href": "<url>"}, null on the last page; provider
fields carry the provider's prefix (`_oqmd_delta_e`) and a field asked for but unknown to the provider comes back
null, but a standard field unknown to the provider's OPTIMADE version (v1.2's space_group_it_number asked of a 1.1
server) is refused with 400: the fields asked for are those `<base>/v1/info/structures` lists (plus prefixed ones);
some providers drop `response_fields` from `links.next` (COD; OPTIMADE issue #391); lengths are in Å.
Every page names its provider (`meta.provider.prefix`, required by the specification): a page of another provider
than the catalog entry's `provider` (or of none) fails the run before anything is stored, as its records would be
stored under the entry's name, citation and licence, and its ids (`<source>:<id>`) would replace the entry's records.
Band gaps of finite systems: the gap of an entry periodic in no direction (dimension_types [0, 0, 0] or
nperiodic_dimensions 0), or of one NOMAD classifies as a 'molecule / cluster' or an 'atom'
(`_nmd_results_material_structural_type`), is a HOMO-LUMO gap, not a material's band gap: every band gap of such an
entry is left out with a note, as by the nomad connector (an entry left with no value is quarantined with it). The
volume per atom comes from the cell of bulk entries only: periodic in 3D and, where NOMAD classifies them, 'bulk'.
The count of matching entries (`meta.data_returned`: across all pages, by the specification) is unknown where the page
shows that it counts something else (`query_count`): some providers send the page's own count (qmpy's OQMD view before
its 2021 fix: min(limit, count - offset)) or the count from the page's offset on (optimade-python-tools' MongoDB backend
before its 2022 fix: 15, 11, 7, 3 for 15 entries at 4 a page), which as a run's count would make a progress bar's total,
a dry run's 'records available', fetch_runs.n_available and a resume's 'count changed' note wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, urlsplit

from matreg.catalog import Source
from matreg.errors import ConfigError, FormulaError, RecordError, SourceError
from matreg.fieldmap import catalog_mapping
from matreg.formula import alphabetical_formula
from matreg.http import HttpClient
from matreg.paginate import HttpRequest, NextLinkPaginator, count_of, dig
from matreg.sources import FetchRequest
from matreg.sources.base import Page, RawValue, RunInfo, SourceRecord
from matreg.sources.jsonapi import JsonApiConnector
from matreg.sources.nomad import BAND_GAP, BULK, HOMO_LUMO_GAP, finite_structural_type_reason, without_properties
from matreg.structure import (
    PERIODICITY_FLAGS,
    lattice_volume,
    only_numbers,
    periodicity_flags,
    refuse_non_numbers,
    shares_of_a_site,
    spacegroup_number,
    structure_json,
)
from matreg.validation import read_id, read_spacegroup_number

DEFAULT_PAGE_LIMIT = 100
# Hermann-Mauguin symbol and number: OPTIMADE v1.2 fields first, then the providers' own (first present wins).
SPACEGROUP_SYMBOL_FIELDS = (
    "space_group_symbol_hermann_mauguin",
    "_oqmd_spacegroup",
    "_jarvis_spg_symbol",
    "_nmd_results_material_symmetry_space_group_symbol",
)
SPACEGROUP_NUMBER_FIELDS = (
    "space_group_it_number",
    "_jarvis_spg_number",
    "_nmd_results_material_symmetry_space_group_number",
    "_alexandria_space_group",
)
NOMAD_METHOD_NAME = "_nmd_results_method_method_name"  # NOMAD's results.method.method_name: DFT, GW, EELS, ...
NOMAD_STRUCTURAL_TYPE = "_nmd_results_material_structural_type"  # NOMAD's results.material.structural_type
FORMULA_FIELDS = ("chemical_formula_reduced", "chemical_formula_descriptive", "chemical_formula_hill")
_NOT_AN_ENTRY = "not an OPTIMADE structure entry: it needs an 'id' and an 'attributes' object"
_TEXT, _FLOAT = frozenset((str,)), frozenset((float,))  # the types of a species read once (`_species`)


@dataclass
class OptimadeNextLink(NextLinkPaginator):
    """`links.next` (URL or {"href"}), with our `response_fields` put back where a provider drops them."""

    response_fields: str = ""

    def next_request(self, request: HttpRequest, body: Any, n_records: int) -> HttpRequest | None:
        following = super().next_request(request, body, n_records)
        if following is not None and "response_fields=" not in following.url:
            following.params = {"response_fields": self.response_fields}
        return following


class OptimadeConnector(JsonApiConnector):
    """Pages through `<base>/v1/structures` of one OPTIMADE provider and maps each structure entry."""

    def __init__(
        self,
        source: Source,
        client: HttpClient,
        optimade_filter: str | None,
        *,
        page_size: int = DEFAULT_PAGE_LIMIT,
        default_page_size: int = DEFAULT_PAGE_LIMIT,  # the page size without --page-size (RunInfo.paging)
        name: str = "optimade",
    ) -> None:
        self.structures_url = versioned_base_url(source.base_url) + "/structures"
        self.info_url = versioned_base_url(source.base_url) + "/info/structures"
        self.client = client
        self.source_name = name
        self.provider = source.provider
        self.filter = optimade_filter
        self.page_size, self.default_page_size = page_size, default_page_size
        self.field_map, self.attribution = catalog_mapping("optimade", name, source)
        self.mapped_fields = list(
            dict.fromkeys([*(path.split(".")[0] for path in self.field_map.value_fields), *self.field_map.other_fields])
        )
        self.response_fields = ",".join(self.mapped_fields)  # until `pages` asks the provider which it knows
        self.paginator = OptimadeNextLink(response_fields=self.response_fields)

    def run_info(self) -> RunInfo:
        return RunInfo(
            endpoint=self.structures_url,
            query=self.filter or "(every structure)",
            parameters={"filter": self.filter, "page_limit": self.page_size},
            paging={"page_limit": self.default_page_size},
        )

    def pages(self, cursor: dict[str, Any] | None = None) -> Iterator[Page]:
        """Pages of structures, asking only for fields the provider knows (also when resuming after a cursor), each
        with the provider's count of matching entries where the page does not show it to be another (`query_count`).
        Each page's cursor carries what the page stated (`COUNTED`), so that a resume judges its first page's count as
        one process reading on would (a cursor without it, of a run staged before: as the first page of a process)."""
        self.response_fields = self.paginator.response_fields = self.fields_the_provider_knows()
        request, page_before = _request_and_count(cursor)  # each page's request (None: the first), the page before's
        for page in super().pages(request):
            stated, entries = page.total, len(page.items)
            before = entries_before(request) if entries else page_before.reach if page_before else 0
            page.total = query_count(stated, entries, before, page.cursor is not None, page_before)
            request, page_before = page.cursor, PageCount(stated, entries, before + entries)
            if page.cursor is not None:
                page.cursor = page.cursor | {COUNTED: page_before._asdict()}
            yield page

    def first_request(self) -> HttpRequest:
        params = {"filter": self.filter} if self.filter else {}
        params |= {"page_limit": self.page_size, "response_fields": self.response_fields}
        return HttpRequest("GET", self.structures_url, params)

    def fields_the_provider_knows(self) -> str:
        """The mapped fields less the unprefixed ones the provider's `/info/structures` does not list.

        A provider of an older OPTIMADE version answers a standard field it does not know (v1.2's
        space_group_it_number) with 400; a field with another provider's prefix it must ignore. Without a readable
        `/info/structures`, every field is asked for.
        """
        try:
            properties = dig(self.client.get_json(self.info_url), ("data", "properties"))
        except SourceError:
            properties = None
        if not isinstance(properties, dict):
            return ",".join(self.mapped_fields)
        return ",".join(field for field in self.mapped_fields if field.startswith("_") or field in properties)

    def records(self, body: Any) -> list[dict[str, Any]]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise SourceError(f"not an OPTIMADE structures page from {self.structures_url}: no 'data' list")
        self.check_provider(dig(body, ("meta", "provider")))
        return data

    def check_provider(self, provider: Any) -> None:
        """SourceError unless a page's `meta.provider` is the catalog entry's provider: another provider's records
        would be stored under this entry's name, citation and licence, and replace its records of the same ids."""
        prefix = provider.get("prefix") if isinstance(provider, dict) else None
        if prefix == self.provider:
            return
        if not isinstance(prefix, str) or not prefix:
            raise SourceError(
                f"{self.structures_url} names no OPTIMADE provider (meta.provider.prefix, required by the "
                f"specification): whose records these are is unknown, none is stored as '{self.source_name}' "
                f"(provider {self.provider})"
            )
        about = ", ".join(str(provider[key]) for key in ("name", "homepage") if provider.get(key))
        raise SourceError(
            f"{self.structures_url} is OPTIMADE provider '{prefix}'{f' ({about})' if about else ''}, not "
            f"'{self.provider}' as catalog source '{self.source_name}' says: its records would be stored as "
            f"'{self.source_name}', with that source's citation and licence, and replace its records of the same ids. "
            f"Nothing is stored: fetch it through a catalog entry of its own (connector: optimade, provider: {prefix}, "
            "base_url, title, provenance, license, citation; see README, Catalog)"
        )

    def item_id(self, record: dict[str, Any]) -> str:
        return str(record.get("id") or "<no id>") if isinstance(record, dict) else "<not an entry>"

    def total(self, body: Any) -> int | None:
        return dig(body, ("meta", "data_returned"))

    def read_source_id(self, payload: Any) -> str:
        """The entry's id (`read_id`)."""
        if not isinstance(payload, dict) or not payload.get("id"):
            raise RecordError(_NOT_AN_ENTRY)
        return read_id(payload["id"], "id")

    def to_record(self, payload: Any) -> SourceRecord:
        entry_id = self.read_source_id(payload)
        attributes = payload.get("attributes")
        if not isinstance(attributes, dict):
            raise RecordError(_NOT_AN_ENTRY)
        method_name = attributes.get(NOMAD_METHOD_NAME)
        if method_name is not None and method_name != "DFT":  # (as the nomad connector: provenance is dft)
            raise RecordError(f"{NOMAD_METHOD_NAME} {method_name!r} is not DFT: only DFT entries are fetched")
        species = species_occupancies(attributes.get("species"))
        structure, note = optimade_structure(attributes, species.occupancies)
        nsites = site_count(attributes)
        symbol, number = spacegroup(attributes, self.field_map.is_missing)
        gap_reason = finite_system_reason(attributes)
        values, gap_note = without_properties(self._values(attributes, nsites), BAND_GAP, gap_reason)
        return SourceRecord(
            source_id=entry_id,
            formula=entry_formula(attributes),
            values=values,
            source_url=f"{self.structures_url}/{quote(entry_id, safe='')}",  # (ids may hold '/', '#')
            structure=structure,
            spacegroup_symbol=symbol,
            spacegroup_number=number,
            nsites=nsites,
            atoms_per_cell=occupied_atoms(attributes, species),
            notes=note,
            left_out=(gap_note,) if gap_note else (),
            unmapped=self.field_map.unmapped(attributes),
        )

    def _values(self, attributes: dict[str, Any], nsites: int | None) -> list[RawValue]:
        values = self.field_map.read_values(attributes, self.attribution.method)
        volume = cell_volume(attributes)
        if volume is not None and nsites:
            # No provider field: the cell's volume (of lattice_vectors, by the record's method), given per cell and
            # harmonized to per atom (atoms by occupancy).
            values.append(RawValue("volume_per_atom", volume, "angstrom**3/cell", field="lattice_vectors"))
        return values


class PageCount(NamedTuple):
    """The count of matching entries a page stated (None: none), how many entries it held, and how many entries the
    listing showed up to its end (those before it, `entries_before`, and its own)."""

    stated: int | None
    entries: int
    reach: int


COUNTED = "counted"  # the key of a page's cursor that holds the page's PageCount (as an object), for a resume


def _request_and_count(cursor: dict[str, Any] | None) -> tuple[dict[str, Any] | None, PageCount | None]:
    """The request a resume cursor names, and the PageCount of the page it follows (None: the first request, or a
    cursor staged before cursors carried it)."""
    if cursor is None or COUNTED not in cursor:
        return cursor, None
    request = {key: value for key, value in cursor.items() if key != COUNTED}
    return request, PageCount(**cursor[COUNTED])


def query_count(stated: int | None, entries: int, before: int, more: bool, page_before: PageCount | None) -> int | None:
    """`stated`, a page's `data_returned`, where it can be the count of the whole query; else None (unknown).

    The page itself: with `entries` entries after `before` others (`entries_before`; of an empty page, those the page
    before reached: a link past the last entries names an offset past them) it shows that at least before + entries
    match, one more where a next page follows (`more`: where a provider links an empty page after its last entries,
    their page's count is unknown, the empty page's stands where it is not fewer); a smaller count is not the query's,
    also where records were removed upstream between pages (an offset then shifts later ones onto the page). This
    tells a page's own count on every page (no more than its entries, with pages before or after it; 0 on an empty
    page after entries), and a count from the page's offset on in the second half of the listing. The run's history:
    in the first half, a count from the offset on is told by the page before (`page_before`: in this process, or as
    the resume cursor carries it), which stated this page's count plus its own entries, where a whole count stays the
    same (records removed upstream between two pages, exactly a page's entries, leave it unknown too). Without a page
    before (the first page; a resume of a cursor that does not carry it) such a count is taken as stated.
    """
    if stated is None:
        return None
    if stated < before + entries + more:
        return None
    if page_before is not None and page_before.stated == stated + page_before.entries:
        return None
    return stated


def entries_before(request: dict[str, Any] | None) -> int:
    """At least how many entries of the listing come before the page `request` (a cursor; None: the first request)
    asks for: the `page_offset` its URL names, and at least 1 (a next link is followed only from a page of entries)."""
    if request is None:
        return 0
    offset = parse_qs(urlsplit(request["url"]).query).get("page_offset", ["0"])[-1]
    return max(count_of(offset) or 0, 1)


def versioned_base_url(base_url: str) -> str:
    """The provider's versioned base URL `<base>/v1` (given with or without the `/v1`)."""
    base = base_url.rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


def entry_formula(attributes: dict[str, Any]) -> str:
    """The entry's chemical formula (reduced, else descriptive, else Hill); RecordError if it has none."""
    for field in FORMULA_FIELDS:
        if isinstance(attributes.get(field), str) and attributes[field].strip():
            return attributes[field]
    raise RecordError(f"structure has no chemical formula (none of {', '.join(FORMULA_FIELDS)})")


def site_count(attributes: dict[str, Any]) -> int | None:
    """Sites in the cell: `nsites`, else the length of `species_at_sites`; RecordError when the two disagree."""
    sites = attributes.get("species_at_sites")
    listed = len(sites) if isinstance(sites, list) and sites else None
    nsites = attributes.get("nsites")
    if type(nsites) is not int or nsites <= 0:  # (not a bool)
        return listed
    if listed is not None and nsites != listed:
        raise RecordError(f"nsites = {nsites} but species_at_sites names {listed} sites")
    return nsites


def is_bulk(attributes: dict[str, Any]) -> bool:
    """True when the structure is periodic in all three directions and, where NOMAD classifies it, is 'bulk' (its
    code's flags call a slab or a molecule in a box periodic: the cell then holds vacuum, as the nomad connector
    says)."""
    periodic = attributes.get("dimension_types") == [1, 1, 1] or attributes.get("nperiodic_dimensions") == 3
    return periodic and attributes.get(NOMAD_STRUCTURAL_TYPE) in (None, BULK)  # (null: another provider's entry)


def is_finite(attributes: dict[str, Any]) -> bool:
    """True when the structure is periodic in no direction (a molecule, a cluster or an atom), as `periodicity` reads
    it."""
    return periodicity(attributes) in ([0, 0, 0], (0, 0, 0))


def finite_system_reason(attributes: dict[str, Any]) -> str | None:
    """Why the entry's band gaps are none (a finite system's HOMO-LUMO gap), or None: it is periodic in no direction,
    or NOMAD classifies it as a molecule or an atom."""
    if is_finite(attributes):
        return f"it is periodic in no direction, {HOMO_LUMO_GAP}"
    return finite_structural_type_reason(attributes.get(NOMAD_STRUCTURAL_TYPE))


def cell_volume(attributes: dict[str, Any]) -> float | None:
    """Volume of a bulk structure's cell in Å³ (|det| of lattice_vectors); None if it has no full lattice, RecordError
    if an entry of it is no number (a JSON true is no 1 Å), infinite if one is beyond a float's range."""
    if not is_bulk(attributes):
        return None
    refuse_non_numbers(attributes.get("lattice_vectors"), "lattice_vectors entry")
    try:
        return float(lattice_volume(attributes.get("lattice_vectors")))
    except (TypeError, ValueError):  # not three vectors of three numbers
        return None
    except OverflowError:  # an integer entry beyond a float's range (10**400): a volume no float holds, as 1e400's
        return math.inf


def optimade_structure(
    attributes: dict[str, Any], occupancies: dict[str, dict[str, float]] | None
) -> tuple[str | None, str | None]:
    """The entry's structure JSON, or None and, if one was given, why it was not kept.

    `occupancies` are those of its `species_occupancies`. Sites keep their OPTIMADE species names as labels; vacancies
    are left out of a site's occupancies.
    """
    lattice, positions = attributes.get("lattice_vectors"), attributes.get("cartesian_site_positions")
    names = attributes.get("species_at_sites")
    if not (lattice and positions and names):
        return None, None
    if "assemblies" in (attributes.get("structure_features") or []):
        return None, "structure not kept: its alternative site assemblies have no pymatgen form"
    off_sites = atoms_off_sites(attributes)
    if off_sites:
        return None, f"structure not kept: it has atoms that are not on its sites ({', '.join(off_sites)})"
    if occupancies is None:
        return None, "structure not kept: 'species' is not a list of {name, chemical_symbols, concentration}"
    unlisted = _unlisted_species(names, occupancies)
    if unlisted:
        return None, f"structure not kept: species_at_sites names {', '.join(unlisted)}, which 'species' does not list"
    pbc = periodicity(attributes)
    if pbc is None:
        return None, "structure not kept: nperiodic_dimensions without dimension_types does not say which are periodic"
    flags = periodicity_flags(pbc)
    if flags is None:  # (only dimension_types, as given, can be)
        return None, f"structure not kept: dimension_types {pbc!r} is not three flags {PERIODICITY_FLAGS}"
    try:
        text = structure_json(lattice, names, positions, cartesian=True, named=occupancies, labels=names, pbc=flags)
        return text, None
    except (RecordError, AttributeError, TypeError, ValueError, KeyError) as exc:
        return None, f"structure not kept: {exc}"


def _unlisted_species(names: Any, occupancies: dict[str, dict[str, float]]) -> list[str]:
    """The species names of sites that a species list (where the entry gives one) lacks: what they hold is unknown."""
    if not occupancies or not isinstance(names, list):
        return []
    return sorted({str(name) for name in names if not isinstance(name, str) or name not in occupancies})


_OFF_SITE_FEATURES = ("implicit_atoms", "site_attachments")  # structure_features whose atoms no site lists


def atoms_off_sites(attributes: dict[str, Any]) -> list[str]:
    """The entry's structure features that put atoms off its sites (hydrogens implicit or attached to a site's
    species): its sites then do not count its atoms."""
    features = attributes.get("structure_features")
    return [feature for feature in _OFF_SITE_FEATURES if isinstance(features, list) and feature in features]


def periodicity(attributes: dict[str, Any]) -> list[int] | tuple[int, ...] | None:
    """Which lattice directions are periodic: `dimension_types`, else as `nperiodic_dimensions` tells (all or none);
    periodic in all three when neither is given; None when 1 or 2 of 3 are, but not which."""
    dimension_types = attributes.get("dimension_types")
    if dimension_types:
        return dimension_types
    periodic = attributes.get("nperiodic_dimensions")
    if periodic in (1, 2):
        return None
    return (0, 0, 0) if periodic == 0 else (1, 1, 1)


class SpeciesList(NamedTuple):
    """An entry's `species` as read (`species_occupancies`): each species name -> its elements with their occupancies
    (vacancies left out; None: the list cannot be read), and whether some species only partly occupies its sites (its
    occupancies add up to other than 1)."""

    occupancies: dict[Any, dict[Any, float]] | None
    partial: bool


_UNREADABLE = SpeciesList(None, partial=False)


class _Species(NamedTuple):
    """One species entry's elements with their occupancies (vacancies left out), as read (`_read_species`)."""

    shares: dict[Any, float]
    of_a_site: bool  # the occupancies can share one site (`shares_of_a_site`)
    whole: bool  # they add up to 1: each of the species' sites holds one atom


def species_occupancies(species: Any) -> SpeciesList:
    """An entry's `species` as read: no species without a list; unreadable (occupancies None) for an entry that is no
    species, a concentration that is no number (a JSON true is no 1.0) or no share of a site (below 0, or a species'
    adding up to more than 1, as the specification bounds them). A species named twice is its last entry."""
    read: dict[Any, _Species] = {}
    try:
        for entry in species or ():
            one = _species(entry["chemical_symbols"], entry["concentration"])
            if one is None:
                return _UNREADABLE
            read[entry["name"]] = one
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError):
        return _UNREADABLE
    if not all(one.of_a_site for one in read.values()):
        return _UNREADABLE
    return SpeciesList({name: one.shares for name, one in read.items()}, not all(one.whole for one in read.values()))


def _species(symbols: Any, concentration: Any) -> _Species | None:
    """`_read_species`, once per process for the elements and occupancies of species that providers list again and
    again: those of texts and floats (of their exact types; not 0, which equals -0.0), which are the same species
    where they are equal. Any other (a JSON true, equal to 1.0, or 1) is read each time."""
    if (
        type(symbols) is list
        and type(concentration) is list
        and set(map(type, symbols)) == _TEXT
        and set(map(type, concentration)) == _FLOAT
        and 0.0 not in concentration
    ):
        return _read_species_once(tuple(symbols), tuple(concentration))
    return _read_species(symbols, concentration)


def _read_species(symbols: Any, concentration: Any) -> _Species | None:
    """A species' elements (`chemical_symbols`) with their occupancies (`concentration`), vacancies left out; None if
    a concentration is no number, TypeError or ValueError if the two do not pair up into elements and numbers,
    OverflowError for an integer past the largest float."""
    if not only_numbers(concentration):
        return None
    shares = {symbol: float(share) for symbol, share in zip(symbols, concentration, strict=True) if symbol != "vacancy"}
    return _Species(shares, shares_of_a_site(shares.values()), math.isclose(sum(shares.values()), 1.0))


_read_species_once = lru_cache(maxsize=4096)(_read_species)  # (its species' shares are shared: never edit)


def occupied_atoms(attributes: dict[str, Any], species: SpeciesList) -> float | None:
    """Atoms in the cell counted by occupancy (vacancies left out) when some species only partly occupies its sites;
    None when every site holds one whole atom (then the count is nsites; so without a species list, whose sites name
    elements); NaN when they cannot be counted (species unreadable, or partly occupied species and sites that do not
    say which): per-cell values are then refused, not divided by the sites.

    `species` is the entry's `species_occupancies`. Atoms off the sites (`atoms_off_sites`) are not counted: NaN.
    """
    if species.occupancies is None or atoms_off_sites(attributes):
        return math.nan
    if not species.partial:  # every site holds a whole atom (so where no species are listed)
        return None
    totals = {name: sum(shares.values()) for name, shares in species.occupancies.items()}
    try:
        sites = [totals[name] for name in attributes["species_at_sites"]]
    except (KeyError, TypeError):  # a site of a species the list lacks, sites that are not a list of names
        return math.nan
    return None if all(math.isclose(total, 1.0) for total in sites) else sum(sites)


def spacegroup(attributes: dict[str, Any], is_missing: Callable[[Any], bool]) -> tuple[str | None, int | None]:
    """Hermann-Mauguin symbol and international number from the first field that has each (`is_missing`: the
    provider's missing markers); RecordError for a number no space group has (`read_spacegroup_number`). A number
    the provider does not give is the symbol's (OQMD's `_oqmd_spacegroup` 'Imma' -> 74)."""
    symbol = next((attributes[f] for f in SPACEGROUP_SYMBOL_FIELDS if isinstance(attributes.get(f), str)), None)
    field = next((f for f in SPACEGROUP_NUMBER_FIELDS if not is_missing(attributes.get(f))), None)
    if field is not None:
        return symbol, read_spacegroup_number(attributes[field], field)
    return symbol, spacegroup_number(symbol) if symbol else None


def quoted(text: str) -> str:
    """An OPTIMADE string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _filter_formula(text: str) -> str:
    """A --formula as the filter compares it to `chemical_formula_reduced` (alphabetical: 'SiO2' -> 'O2Si');
    ConfigError if it is not a formula."""
    try:
        return alphabetical_formula(text)
    except FormulaError as exc:
        raise ConfigError(str(exc)) from None


def build_filter(request: FetchRequest) -> str | None:
    """The OPTIMADE filter of a fetch: ids, formulas or the exact element set (any of them), AND the passed filter."""
    selections = [f"id={quoted(source_id)}" for source_id in request.ids]
    selections += [f"chemical_formula_reduced={quoted(_filter_formula(formula))}" for formula in request.formulas]
    if request.elements:
        symbols = ",".join(map(quoted, request.elements))
        selections.append(f"elements HAS ALL {symbols} AND nelements={len(request.elements)}")
    if not (selections or request.filter or request.everything):
        raise ConfigError("nothing asked of OPTIMADE: give ids, --formula, --elements, --filter or --all")
    clauses = ([joined(selections, "OR")] if selections else []) + ([request.filter] if request.filter else [])
    return joined(clauses, "AND") if clauses else None


def joined(clauses: list[str], operator: str) -> str:
    """Filter clauses combined with a boolean operator (each in parentheses when there are several)."""
    return f" {operator} ".join(f"({clause})" for clause in clauses) if len(clauses) > 1 else clauses[0]


def build(name: str, source: Source, client: HttpClient, request: FetchRequest) -> OptimadeConnector:
    """The OPTIMADE connector for a `matreg fetch` request (the catalog source's base URL: its provider's database)."""
    return OptimadeConnector(source, client, build_filter(request), **request.page_sizes(DEFAULT_PAGE_LIMIT), name=name)
