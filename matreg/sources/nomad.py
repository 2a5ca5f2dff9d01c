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
next page is then empty) and is absent otherwise; `chemical_formula_reduced` is alphabetical ('O2Ti').
"""

from __future__ import annotations

import json
import re
from typing import Any

from pymatgen.core import Composition

from matreg.catalog import Source
from matreg.errors import ConfigError, RecordError, SourceError
from matreg.fieldmap import FieldMap, load_field_map
from matreg.formula import parse_formula
from matreg.http import HttpClient
from matreg.paginate import BodyCursorPaginator, HttpRequest, dig
from matreg.sources import FetchRequest
from matreg.sources.base import Attribution, RunInfo, SourceRecord
from matreg.sources.jsonapi import JsonApiConnector
from matreg.structure import structure_json

DEFAULT_PAGE_SIZE = 100
DFT = "DFT"  # results.method.method_name of DFT entries; GW, TB, DMFT, XPS, ... are other methods
_LIBXC_FAMILY = re.compile(r"^(?:HYB_)?(?:LDA|GGA|MGGA)_(?:XC|X|C|K)_")
_UNPROCESSED = {"", "not processed", "unavailable"}
_RESULTS = ("archive", "results")


class NomadConnector(JsonApiConnector):
    """Pages of NOMAD DFT entries (archive results section) matching one query, by `page_after_value`."""

    def __init__(
        self, source: Source, client: HttpClient, query: dict[str, Any], *, page_size: int, name: str = "nomad"
    ) -> None:
        self.base_url = source.base_url.rstrip("/") + "/"
        self.client = client
        self.query = query
        self.page_size = page_size
        self.field_map = load_field_map("nomad")
        self.paginator = BodyCursorPaginator()
        self.attribution = Attribution.of_source(name, source, self.field_map.method)

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
        )

    def first_request(self) -> HttpRequest:
        return HttpRequest("POST", self.url, json=self.body())

    def records(self, body: Any) -> list[dict[str, Any]]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise SourceError(f"NOMAD answer without a 'data' list from {self.url}")
        return data

    def item_id(self, record: dict[str, Any]) -> str:
        return str(record.get("entry_id") or "<no entry_id>")

    def total(self, body: Any) -> int | None:
        total = dig(body, ("pagination", "total"))
        return int(total) if total is not None else None

    def to_record(self, payload: dict[str, Any]) -> SourceRecord:
        entry_id, results = dft_results(payload)
        original = dig(results, ("properties", "structures", "structure_original")) or {}
        structure = nomad_structure(original)
        symmetry = dig(results, ("material", "symmetry")) or {}
        return SourceRecord(
            source_id=entry_id,
            formula=results["material"]["chemical_formula_reduced"],
            values=self.field_map.read_values(payload),
            source_url=f"{self.base_url}entries/{entry_id}/archive",
            structure=structure,
            spacegroup_symbol=symmetry.get("space_group_symbol"),
            spacegroup_number=_space_group_number(symmetry.get("space_group_number")),
            nsites=len(original["species_at_sites"]) if structure is not None else original.get("n_sites") or None,
            method=functional(results["method"]),
            notes=program(results["method"]),
            unmapped=self.field_map.unmapped(payload),
        )


def dft_results(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The entry id and results section of a DFT entry with a formula; RecordError for anything else."""
    entry_id, results = payload.get("entry_id"), dig(payload, _RESULTS)
    if not entry_id or not isinstance(results, dict):
        raise RecordError("NOMAD entry without entry_id or archive.results")
    method_name = dig(results, ("method", "method_name"))
    if method_name != DFT:
        # the run's provenance is 'dft' for every row; other methods would need their own provenance
        raise RecordError(f"method_name {method_name!r} is not DFT: only DFT entries are fetched")
    if not dig(results, ("material", "chemical_formula_reduced")):
        raise RecordError("NOMAD entry without results.material.chemical_formula_reduced")
    return str(entry_id), results


def _space_group_number(value: Any) -> int | None:
    """An international space group number, or None (NOMAD leaves it out, or unknown, for some systems)."""
    return value if isinstance(value, int) and 1 <= value <= 230 else None


def required_sections(field_map: FieldMap) -> dict[str, Any]:
    """NOMAD's `required` spec: the archive sections of every field-map path ('*' = the whole section)."""
    paths = [path.split(".") for path in [*field_map.fields, *field_map.other_fields]]
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


def nomad_structure(section: dict[str, Any]) -> str | None:
    """Structure JSON of a NOMAD Structure section (SI lengths); None without a cell periodic in 3D."""
    lattice, positions = section.get("lattice_vectors"), section.get("cartesian_site_positions")
    labels = section.get("species_at_sites")
    if (lattice is None and positions is None) or sum(section.get("dimension_types") or [1, 1, 1]) < 3:
        return None  # molecules and slabs: NOMAD's cell is then a box, not a crystal's
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
    """The exchange-correlation functional of a DFT entry: 'PBE' from ['GGA_C_PBE', 'GGA_X_PBE'], '+U' if used."""
    dft = dig(method, ("simulation", "dft")) or {}
    names = sorted({_LIBXC_FAMILY.sub("", name) for name in dft.get("xc_functional_names") or []})
    kind = dft.get("xc_functional_type") if dft.get("xc_functional_type") not in _UNPROCESSED else None
    if len(names) == 1:
        name = names[0]
    elif names:
        name = f"{kind} ({'+'.join(sorted(dft['xc_functional_names']))})" if kind else "+".join(names)
    else:
        name = kind
    return f"{name}+U" if name and dft.get("hubbard_kanamori_model") else name


def program(method: dict[str, Any]) -> str | None:
    """'program: VASP 5.4.4' from the entry's simulation section, when NOMAD knows the code."""
    simulation = method.get("simulation") or {}
    name, version = simulation.get("program_name"), simulation.get("program_version")
    if not name or name in _UNPROCESSED:
        return None
    return f"program: {name}" + (f" {version}" if version and version not in _UNPROCESSED else "")


def nomad_formula(text: str) -> str:
    """A formula as NOMAD's chemical_formula_reduced writes it: reduced, elements alphabetical ('TiO2' -> 'O2Ti')."""
    amounts = Composition(parse_formula(text).reduced).get_el_amt_dict()
    return "".join(f"{symbol}{'' if amounts[symbol] == 1 else f'{amounts[symbol]:g}'}" for symbol in sorted(amounts))


def build_query(request: FetchRequest) -> dict[str, Any]:
    """NOMAD's query for a fetch: DFT entries, and the ids, formulas or exact element sets asked for, or a filter."""
    selectors = []
    if request.ids:
        selectors.append({"entry_id": {"any": list(request.ids)}})
    if request.formulas:
        selectors.append(
            {"results.material.chemical_formula_reduced": {"any": [nomad_formula(f) for f in request.formulas]}}
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
    return NomadConnector(
        source, client, build_query(request), page_size=request.page_size or DEFAULT_PAGE_SIZE, name=name
    )
