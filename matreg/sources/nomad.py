"""NOMAD (nomad-lab.eu): DFT entries with their results section, through the v1 API's archive query.

Wire format (docs/howto/programmatic/api.md of nomad-coe/nomad):
    POST <base>/entries/archive/query
    {"owner": "public", "query": {...}, "required": {"results": {...}},
     "pagination": {"page_size": 100, "order_by": "entry_id", "page_after_value": "<id>"}}
    -> {"pagination": {"total": 17957, "next_page_after_value": "<id>", ...},
        "data": [{"entry_id": ..., "upload_id": ..., "parser_name": ..., "archive": {"results": {...}}}]}
The archive query, not `entries/query`, because only the archive holds the structure: the search index behind
`entries/query` keeps n_sites, cell_volume and lattice_parameters of `structure_original`, but not its lattice
vectors, positions, species or mass density. Both endpoints share the same search and pagination.
Quirks: everything is SI (J, m, m^3, kg/m^3); `next_page_after_value` is still given after a full last page (the
next page is then empty) and is absent otherwise; a page can also be empty, or short, in the middle, with a next value:
the search pages the index and then drops the entries whose archive is missing (app/v1/routers/entries.py);
`chemical_formula_reduced` is alphabetical ('O2Ti').
Non-bulk entries: `structure_original.dimension_types` are the code's periodicity flags, so a VASP slab, 2D sheet or
molecule in a box still says [1, 1, 1] and its cell_volume and mass_density include the vacuum. NOMAD's classification
of the structure (MatID) is `results.material.structural_type`: 'bulk', 'surface', '2D', '1D', 'molecule / cluster',
'atom', 'unavailable' (not classified: more than 64 atoms, or MatID failed) or 'not processed'. Only entries known to
be bulk and periodic in 3D keep volume_per_atom and density.
Band gaps: `results.properties.electronic.band_gap` lists one item per spin channel (`index` 0, 1) for each band
structure and DOS of each calculation, in archive order, each with `value` (LUMO - HOMO of that channel, at least 0)
and, when derived from a band structure or DOS, `energy_highest_occupied` and `energy_lowest_unoccupied`. The band
gap of the material is that of the last set of channels (the latest calculation): min(LUMO) - max(HOMO) over its spin
channels, which can be smaller than every channel's own gap (see `band_gap`).
Band gaps by structural type: a 'molecule / cluster' or an 'atom' is a finite system, whose gap in NOMAD is a HOMO-LUMO
gap, not a material's band gap: left out with a note (so is that of an entry its code computed periodic in no direction,
dimension_types [0, 0, 0], whatever NOMAD's classification). 'surface', '2D' and '1D' entries keep theirs: the band gap
of a slab, sheet or wire, periodic in 2 or 1 directions (of that system, not of the bulk: their notes say they are not
bulk). Unclassified entries ('unavailable', 'not processed', no structural_type) keep theirs too: a gap goes only where
the system is known to be finite, while cell values stay only where it is known to be bulk (any vacuum makes them
wrong); an unclassified entry is likely a large bulk cell (MatID does not classify more than 64 atoms), and a crystal's
or a slab's gap would go with a molecule's. An entry left with no value (a molecule or an atom: its cell values go too)
is quarantined with what was left out, and why, as its reason.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from matreg.catalog import Source
from matreg.errors import ConfigError, RecordError, SourceError
from matreg.fieldmap import FieldMap, catalog_mapping
from matreg.formula import alphabetical_formula
from matreg.http import HttpClient
from matreg.paginate import BodyCursorPaginator, HttpRequest, dig
from matreg.schema import canonical_method
from matreg.sources import FetchRequest
from matreg.sources.base import RawValue, RunInfo, SourceRecord
from matreg.sources.jsonapi import JsonApiConnector
from matreg.structure import structure_json
from matreg.validation import read_id, read_spacegroup_number

DEFAULT_PAGE_SIZE = 100
DFT = "DFT"  # results.method.method_name of DFT entries; GW, TB, DMFT, XPS, ... are other methods
BULK = "bulk"  # results.material.structural_type of a crystal (MatID's Class3D)
FINITE = ("molecule / cluster", "atom")  # structural types whose "band gap" is a HOMO-LUMO gap
HOMO_LUMO_GAP = "a finite system: its gap is a HOMO-LUMO gap, not a band gap"  # why a finite system has no band gap
PER_CELL = ("volume_per_atom", "density")  # read from NOMAD's cell: with vacuum in it unless the entry is bulk
BAND_GAP = ("band_gap",)  # the band-gap properties (also the optimade connector's): none for a finite system
_LIBXC_FAMILY = re.compile(r"^(?:HYB_)?(?:LDA|GGA|MGGA)_(?:XC|X|C|K)_")
_UNPROCESSED = {"", "not processed", "unavailable"}
_TEXT = frozenset((str,))  # the type of libxc names as NOMAD sends them (anything else is worked out as read)
_RESULTS = ("archive", "results")
_ORIGINAL = ("properties", "structures", "structure_original")  # of the results section
_BAND_GAP_FIELD = "archive.results.properties.electronic.band_gap"  # the sections the band gap is derived from


class NomadConnector(JsonApiConnector):
    """Pages of NOMAD DFT entries (archive results section) matching one query, by `page_after_value`."""

    def __init__(
        self,
        source: Source,
        client: HttpClient,
        query: dict[str, Any],
        *,
        page_size: int,
        default_page_size: int = DEFAULT_PAGE_SIZE,  # the page size without --page-size (RunInfo.paging)
        name: str = "nomad",
    ) -> None:
        self.base_url = source.base_url.rstrip("/") + "/"
        self.client = client
        self.query = query
        self.page_size, self.default_page_size = page_size, default_page_size
        self.field_map, self.attribution = catalog_mapping("nomad", name, source)
        self.paginator = BodyCursorPaginator()

    @property
    def url(self) -> str:
        """The archive query endpoint."""
        return f"{self.base_url}entries/archive/query"

    def body(self) -> dict[str, Any]:
        """The JSON body of the first page: public entries, the query, the sections the field map reads."""
        return {
            "owner": "public",
            "query": self.query,
            "required": required_sections(self.field_map),
            "pagination": {"page_size": self.page_size, "order_by": "entry_id", "order": "asc"},
        }

    def run_info(self) -> RunInfo:
        return RunInfo(
            endpoint=self.url,
            query=json.dumps(self.query, sort_keys=True),
            parameters={"query": self.query, "page_size": self.page_size},
            paging={"page_size": self.default_page_size},
        )

    def first_request(self) -> HttpRequest:
        return HttpRequest("POST", self.url, json=self.body())

    def records(self, body: Any) -> list[dict[str, Any]]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise SourceError(f"NOMAD answer without a 'data' list from {self.url}")
        return data

    def item_id(self, record: dict[str, Any]) -> str:
        return str(record.get("entry_id") or "<no entry_id>") if isinstance(record, dict) else "<not an object>"

    def total(self, body: Any) -> int | None:
        return dig(body, ("pagination", "total"))

    def read_source_id(self, payload: Any) -> str:
        """The entry's entry_id (`entry_id_of`)."""
        return entry_id_of(payload)

    def to_record(self, payload: dict[str, Any]) -> SourceRecord:
        entry_id, results = dft_results(payload)
        material = results["material"]  # an object: dft_results read its formula
        original = dig(results, _ORIGINAL) or {}
        structure = nomad_structure(original)
        symmetry = material.get("symmetry") or {}
        method = functional(results["method"])
        read, absent = self.field_map.read(payload, method or self.attribution.method)
        values, left_out = kept_values(read, results, material.get("structural_type"), original)
        return SourceRecord(
            source_id=entry_id,
            formula=material["chemical_formula_reduced"],
            values=values,
            source_url=f"{self.base_url}entries/{entry_id}/archive",
            structure=structure,
            spacegroup_symbol=symmetry.get("space_group_symbol"),
            spacegroup_number=read_spacegroup_number(
                symmetry.get("space_group_number"),
                "results.material.symmetry.space_group_number",
                self.field_map.is_missing,
            ),
            nsites=len(original["species_at_sites"]) if structure is not None else original.get("n_sites") or None,
            method=method,
            notes=program(results["method"]),
            left_out=tuple(left_out),
            unmapped=self.field_map.unmapped(payload),
            absent=absent,
        )


def entry_id_of(payload: Any) -> str:
    """The entry's entry_id (`read_id`); RecordError where it has none that reads."""
    if not isinstance(payload, dict):
        raise RecordError(f"not a JSON object: {type(payload).__name__}")
    entry_id = payload.get("entry_id")
    if not entry_id:
        raise RecordError("NOMAD entry without entry_id")
    return read_id(entry_id, "entry_id")


def dft_results(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The entry id and results section of a DFT entry with a formula; RecordError for anything else."""
    entry_id, results = entry_id_of(payload), dig(payload, _RESULTS)
    if not isinstance(results, dict):
        raise RecordError("NOMAD entry without archive.results")
    method_name = dig(results, ("method", "method_name"))
    if method_name != DFT:
        # the run's provenance is 'dft' for every row; other methods would need their own provenance
        raise RecordError(f"method_name {method_name!r} is not DFT: only DFT entries are fetched")
    if not dig(results, ("material", "chemical_formula_reduced")):
        raise RecordError("NOMAD entry without results.material.chemical_formula_reduced")
    return entry_id, results


def required_sections(field_map: FieldMap) -> dict[str, Any]:
    """NOMAD's `required` spec: the archive sections of every field-map path ('*' = the whole section)."""
    paths = [path.split(".") for path in [*field_map.value_fields, *field_map.other_fields]]
    sections = sorted({_section(parts[1:]) for parts in paths if parts[0] == "archive" and len(parts) > 1}, key=_depth)
    required: dict[str, Any] = {}
    for section in sections:
        node: Any = required
        for key in section[:-1]:
            node = node.setdefault(key, {})
            if node == "*":  # a shorter path already asks for this whole section
                break
        else:
            node[section[-1]] = "*"
    return required


def _depth(section: tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
    """Shallow sections first (they cover deeper ones), then by name: the same body on every run."""
    return len(section), section


def _section(parts: list[str]) -> tuple[str, ...]:
    """The path up to its first list index: `required` names sections, not list items."""
    index = next((i for i, key in enumerate(parts) if key.isdigit()), len(parts))
    return tuple(parts[:index])


def kept_values(
    read: list[RawValue], results: dict[str, Any], kind: Any, original: dict[str, Any]
) -> tuple[list[RawValue], list[str]]:
    """The values an entry keeps (those read, and its band gap) and why others were left out (a record left with
    none is quarantined with these reasons); `kind` is its structural_type, `original` its structure_original."""
    gap, gap_note = band_gap(results)
    values, left_out = without_values_of_non_crystals([*read, gap] if gap is not None else read, kind, original)
    return values, [*left_out, gap_note] if gap_note else left_out


def without_values_of_non_crystals(
    values: list[RawValue], kind: Any, original: dict[str, Any]
) -> tuple[list[RawValue], list[str]]:
    """`values` without those that describe no crystal by NOMAD's classification (structural_type `kind`, and the
    structure_original section `original`), and a note on each group left out.

    volume_per_atom and density unless the entry is known bulk (`not_bulk_reason`), the band gap of a finite system
    (`finite_system_reason`).
    """
    not_bulk = not_bulk_reason(kind, original)
    reasons = (
        (PER_CELL, not_bulk and f"{not_bulk}, so NOMAD's cell may include vacuum"),
        (BAND_GAP, finite_system_reason(kind, original)),
    )
    notes = []
    for properties, reason in reasons:
        values, note = without_properties(values, properties, reason)
        notes += [note] if note else []
    return values, notes


def without_properties(
    values: list[RawValue], properties: tuple[str, ...], reason: str | None
) -> tuple[list[RawValue], str | None]:
    """`values` less those of `properties` when there is a `reason`, and a note naming what was left out and why."""
    left_out = list(dict.fromkeys(value.property for value in values if value.property in properties)) if reason else []
    if not left_out:
        return values, None
    kept = [value for value in values if value.property not in properties]
    return kept, f"{' and '.join(left_out)} left out: {reason}"


def not_bulk_reason(kind: Any, original: dict[str, Any]) -> str | None:
    """Why an entry of structural_type `kind` and structure_original section `original` is not known to be a bulk
    crystal, or None for one ('bulk', periodic in 3D).

    'unavailable' and 'not processed' count as not bulk: NOMAD did not classify the structure (more than 64 atoms,
    or MatID failed), so a slab or a molecule in a box is as likely as a crystal.
    """
    if kind != BULK:
        return f"NOMAD's structural_type is {kind!r}, not 'bulk'" if kind else "NOMAD gives no structural_type"
    if not periodic_in_3d(original):
        return f"structure_original has dimension_types {original.get('dimension_types')}"
    return None


def finite_system_reason(kind: Any, original: dict[str, Any]) -> str | None:
    """Why NOMAD's band gap of an entry of structural_type `kind` and structure_original section `original` is no
    band gap (a molecule's or an atom's HOMO-LUMO gap: NOMAD classifies it so, or its code computed it periodic in no
    direction), or None.

    Slabs, sheets, wires and unclassified entries keep their gap (see the module docstring).
    """
    if original.get("dimension_types") == [0, 0, 0]:
        return f"structure_original is periodic in no direction, {HOMO_LUMO_GAP}"
    return finite_structural_type_reason(kind)


def finite_structural_type_reason(structural_type: Any) -> str | None:
    """Why a band gap of an entry NOMAD classifies as `structural_type` is none (a finite system's), or None."""
    return f"NOMAD's structural_type is {structural_type!r}, {HOMO_LUMO_GAP}" if structural_type in FINITE else None


def periodic_in_3d(section: dict[str, Any]) -> bool:
    """Whether a NOMAD Structure section is periodic in all three directions (no dimension_types: assumed so)."""
    return sum(section.get("dimension_types") or [1, 1, 1]) >= 3


def band_gap(results: dict[str, Any]) -> tuple[RawValue | None, str | None]:
    """The material's band gap (J) from NOMAD's per-spin-channel list, or None and, if one was given, why not.

    The latest calculation's spin channels count (see `latest_channels`). Channel 0 alone, of an entry not known to be
    spin-polarized: its value. Several: min(LUMO) - max(HOMO) over the channels (at least 0), the fundamental gap,
    which no channel's own value gives when the band edges lie in different channels. A spin-polarized entry with one
    channel, or channels without band edges, gets none: its gap cannot be told from what NOMAD gives.
    """
    channels = latest_channels(band_gap_items(results))
    if not channels:
        return None, None
    spin_polarized = dig(results, ("method", "simulation", "dft", "spin_polarized")) is True
    if len(channels) == 1 and (spin_polarized or _index(channels[0]) > 0):
        return None, f"band_gap left out: spin-polarized, but NOMAD gives spin channel {_index(channels[0])} only"
    if len(channels) == 1:
        value = channels[0].get("value")
        return (RawValue("band_gap", value, "J", field=_BAND_GAP_FIELD), None) if value is not None else (None, None)
    homos = [channel.get("energy_highest_occupied") for channel in channels]
    lumos = [channel.get("energy_lowest_unoccupied") for channel in channels]
    if not all(isinstance(energy, (int, float)) for energy in [*homos, *lumos]):
        return None, f"band_gap left out: NOMAD gives {len(channels)} spin channels without their band edges"
    return RawValue("band_gap", max(0.0, min(lumos) - max(homos)), "J", field=_BAND_GAP_FIELD), None


def band_gap_items(results: dict[str, Any]) -> list[dict[str, Any]]:
    """results.properties.electronic.band_gap (none: []); RecordError unless it is a list of sections."""
    items = dig(results, ("properties", "electronic", "band_gap")) or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise RecordError("results.properties.electronic.band_gap is not a list of band-gap sections")
    return items


def latest_channels(gaps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last set of spin channels in NOMAD's band_gap list: a set ends where the channel index stops increasing.

    NOMAD appends the channels 0, 1 of each band structure and each DOS of each calculation, in archive order
    (normalizing/results.py `resolve_band_gap`), so the last set belongs to the latest calculation.
    """
    start = 0
    for position in range(1, len(gaps)):
        if _index(gaps[position]) <= _index(gaps[position - 1]):
            start = position
    return gaps[start:]


def _index(gap: dict[str, Any]) -> int:
    """The spin channel of a band_gap item (0 when NOMAD leaves it out)."""
    index = gap.get("index")
    return index if isinstance(index, int) else 0


def nomad_structure(section: dict[str, Any]) -> str | None:
    """Structure JSON of a NOMAD Structure section (SI lengths); None without a cell periodic in 3D."""
    lattice, positions = section.get("lattice_vectors"), section.get("cartesian_site_positions")
    labels = section.get("species_at_sites")
    if (lattice is None and positions is None) or not periodic_in_3d(section):
        return None  # molecules and slabs flagged so by their code: NOMAD's cell is then a box, not a crystal's
    if not lattice or not positions or not labels or len(positions) != len(labels):
        raise RecordError(
            f"structure_original: {len(positions or [])} positions, {len(labels or [])} species and "
            f"{'a' if lattice else 'no'} lattice do not make a structure"
        )
    return structure_json(
        lattice, labels, positions, cartesian=True, named=_species(section), length_unit="m", field="structure_original"
    )


def _species(section: dict[str, Any]) -> dict[str, Any]:
    """Element (or, for virtual-crystal sites, element: fraction) of each species name, from NOMAD's species list."""
    known = {}
    for species in section.get("species") or []:
        symbols, fractions = species.get("chemical_symbols") or [], species.get("concentration") or []
        if len(symbols) > 1:
            known[species.get("name")] = dict(zip(symbols, fractions, strict=False))
        elif symbols:
            known[species.get("name")] = symbols[0]
    return known


def functional(method: dict[str, Any]) -> str | None:
    """The exchange-correlation functional of a DFT entry: 'PBE' from ['GGA_C_PBE', 'GGA_X_PBE'], the libxc names
    joined ('LDA_C_PW+MGGA_X_TB09', TBmBJ in the method vocabulary) when they differ, '+U' if used. An entry that
    names only the functional's family ('GGA') says so with +U where the method vocabulary would read the label as
    a named functional's: 'GGA+U (functional not named)', not the Materials Project's 'GGA+U', which is PBE+U
    ('LDA+U' stays)."""
    dft = dig(method, ("simulation", "dft")) or {}
    libxc, family = dft.get("xc_functional_names") or [], dft.get("xc_functional_type")
    plus_u = bool(dft.get("hubbard_kanamori_model"))
    if type(libxc) is list and set(map(type, libxc)) <= _TEXT and (family is None or type(family) is str):
        return _named_functional(tuple(libxc), family, plus_u)  # as NOMAD sends them: worked out once
    return _functional_of(libxc, family, plus_u)  # anything else as read, to raise what it raises


def _functional_of(libxc: Any, family: Any, plus_u: bool) -> str | None:
    """`functional` of an entry's xc_functional_names (`libxc`), xc_functional_type (`family`), and whether it used
    +U (a hubbard_kanamori_model)."""
    libxc = sorted(set(libxc))
    names = {_LIBXC_FAMILY.sub("", name) for name in libxc}
    family = family if family not in _UNPROCESSED else None
    name = names.pop() if len(names) == 1 else "+".join(libxc) or family
    if not name or not plus_u:
        return name
    with_u = f"{name}+U"
    misread = name == family and canonical_method(with_u) != with_u  # the vocabulary reads 'GGA+U' as MP's PBE+U
    return f"{with_u} (functional not named)" if misread else with_u


_named_functional = lru_cache(maxsize=1024)(_functional_of)  # (a few distinct sets of names in a whole source)


def program(method: dict[str, Any]) -> str | None:
    """'program: VASP 5.4.4' from the entry's simulation section, when NOMAD knows the code."""
    simulation = method.get("simulation") or {}
    name, version = simulation.get("program_name"), simulation.get("program_version")
    if not name or name in _UNPROCESSED:
        return None
    return f"program: {name}" + (f" {version}" if version and version not in _UNPROCESSED else "")


def build_query(request: FetchRequest) -> dict[str, Any]:
    """NOMAD's query for a fetch: DFT entries, and the ids, formulas or exact element sets asked for, or a filter."""
    selectors = []
    if request.ids:
        selectors.append({"entry_id": {"any": list(request.ids)}})
    if request.formulas:
        selectors.append(
            {"results.material.chemical_formula_reduced": {"any": [alphabetical_formula(f) for f in request.formulas]}}
        )
    if request.elements:
        selectors.append({"results.material.elements_exclusive": " ".join(sorted(request.elements))})
    clauses: list[dict[str, Any]] = [{"results.method.method_name": DFT}]
    if selectors:
        clauses.append(selectors[0] if len(selectors) == 1 else {"or": selectors})
    if request.filter:
        clauses.append(_native_filter(request.filter))
    if len(clauses) == 1 and not request.everything:
        raise ConfigError("no NOMAD entries asked for: give entry ids, --formula, --elements, --filter or --all")
    return clauses[0] if len(clauses) == 1 else {"and": clauses}


def _native_filter(text: str) -> dict[str, Any]:
    try:
        query = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--filter for NOMAD must be a JSON query object: {exc}") from None
    if not isinstance(query, dict):
        raise ConfigError("--filter for NOMAD must be a JSON query object, e.g. '{\"results.material.n_elements\": 2}'")
    return query


def build(name: str, source: Source, client: HttpClient, request: FetchRequest) -> NomadConnector:
    """The NOMAD connector for a `matreg fetch` request."""
    return NomadConnector(source, client, build_query(request), **request.page_sizes(DEFAULT_PAGE_SIZE), name=name)
