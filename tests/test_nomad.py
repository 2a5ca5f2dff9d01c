"""matreg's NOMAD connector over real HTTP, against archive-query pages replayed on 127.0.0.1.

The pages (tests/fixtures/nomad, see SOURCES.md) are assembled in NOMAD's wire format from real Materials Project
records whose values were converted INTO NOMAD's SI units, so these tests prove the harmonization back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import assert_failed_without_trace, visible_tables
from pymatgen.core import Structure
from replay import ReplayServer, Reply, Request

from matreg.catalog import load_catalog
from matreg.errors import ConfigError, RecordError, SourceError
from matreg.formula import alphabetical_formula
from matreg.ingest import run_ingest
from matreg.schema import canonical_method
from matreg.sources import FetchRequest, build_connector
from matreg.sources.nomad import HOMO_LUMO_GAP, functional
from matreg.store import Store

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "nomad"
API = "/prod/v1/api/v1/"
ARCHIVE_QUERY = API + "entries/archive/query"
PAGES = {
    json.loads(path.read_text())["pagination"].get("page_after_value"): path
    for path in sorted(FIXTURES.glob("page*.json"))
}
REAL_TIO_PAGE = FIXTURES / "docs_entries_query_TiO_page_size1.json"
EXPECTED_REQUIRED = {
    "results": {
        "method": "*",
        "material": {"symmetry": "*", "elements": "*", "chemical_formula_reduced": "*", "structural_type": "*"},
        "properties": {"electronic": {"band_gap": "*"}, "structures": {"structure_original": "*"}},
    }
}
EV = 1.602176634e-19  # J


class NomadReplay:
    """NOMAD's archive query: the page that follows the request's `page_after_value`; 503 on `broken` cursors."""

    def __init__(self, pages: dict[str | None, Path]) -> None:
        self.pages = pages
        self.broken: set[str | None] = set()

    def __call__(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != ARCHIVE_QUERY:
            return Reply.json({"detail": "Not Found"}, 404)
        after = (request.json().get("pagination") or {}).get("page_after_value")
        if after in self.broken:
            return Reply.json({"detail": "Service Unavailable"}, 503)
        return Reply.file(self.pages[after]) if after in self.pages else Reply.json({"detail": "bad after"}, 422)


@pytest.fixture
def replay() -> NomadReplay:
    return NomadReplay(PAGES)


@pytest.fixture
def server(replay):
    with ReplayServer(replay, prefix=API) as server:
        yield server


@pytest.fixture
def catalog(tmp_path, server):
    return load_catalog(write_catalog(tmp_path / "catalog.yaml", server.url))


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "store")


def write_catalog(path: Path, base_url: str) -> Path:
    """A catalog whose nomad source points at `base_url`, with fast retries."""
    path.write_text(
        "sources:\n"
        "  nomad:\n"
        "    title: NOMAD (local replay)\n"
        "    connector: nomad\n"
        f"    base_url: {base_url}\n"
        "    provenance: dft\n"
        "    license: CC-BY-4.0\n"
        "    citation: Scheffler et al. 2022\n"
        "    database_version: v1 API (replay)\n"
        "    http: {retries: 3, backoff_s: 0, jitter_s: 0, timeout_s: 5, cache: false}\n",
        encoding="utf-8",
    )
    return path


def fetch(store, catalog, **options):
    request = FetchRequest(**({"everything": True, "page_size": 3} | options))
    return run_ingest(build_connector("nomad", catalog, request), store)


def page_requests(server) -> list[dict]:
    return [request.json() for request in server.requests if request.path == ARCHIVE_QUERY]


def recorded_gate() -> dict:
    """The recorded GaTe entry (mp-10009, first of page 1): bulk, one band-gap channel, dimension_types [1, 1, 1]."""
    return json.loads(PAGES[None].read_text())["data"][0]


def serve_only(replay: NomadReplay, tmp_path: Path, entries: list[dict]) -> None:
    """Make `entries` NOMAD's one and only answer page (page 1's envelope, no next page)."""
    page = json.loads(PAGES[None].read_text())
    page["data"] = entries
    page["pagination"]["total"] = len(entries)
    del page["pagination"]["next_page_after_value"]
    path = tmp_path / "only_page.json"
    path.write_text(json.dumps(page), encoding="utf-8")
    replay.pages = {None: path}


def stored_gate(store: Store) -> tuple[dict[str, tuple[float, str, float, str]], object]:
    """The stored values of GaTe (property -> value, unit, original value and unit) and its material row."""
    values = store.query(
        "SELECT property, value, unit, original_value, original_unit FROM properties WHERE record_id = 'nomad:mp-10009'"
    )
    material = store.query("SELECT * FROM materials WHERE record_id = 'nomad:mp-10009'").iloc[0]
    return {row[0]: tuple(row[1:]) for row in values.itertuples(index=False)}, material


def test_pages_are_fetched_by_page_after_value_at_the_real_path(store, catalog, server):
    report = fetch(store, catalog)
    assert (report.n_fetched, report.n_stored, report.n_quarantined, report.n_available) == (9, 8, 1, 9)
    assert report.n_values == 24  # band gap, volume per atom and density of each stored entry
    bodies = page_requests(server)
    assert len(bodies) == 4 and all(r.method == "POST" for r in server.requests)  # the 4th page is empty
    assert [body["pagination"].get("page_after_value") for body in bodies] == [
        None,
        "mp-1225695",
        "mp-568005",
        "mp-976876",
    ]
    first = bodies[0]
    assert first["owner"] == "public" and first["query"] == {"results.method.method_name": "DFT"}
    assert first["pagination"] == {"page_size": 3, "order_by": "entry_id", "order": "asc"}
    assert first["required"] == EXPECTED_REQUIRED
    assert server.requests[0].headers["User-Agent"].startswith("matreg/")


def test_si_values_are_harmonized_to_canonical_units_with_originals_kept(store, catalog):
    fetch(store, catalog)
    values = store.query(
        "SELECT property, value, unit, original_value, original_unit, provenance, method "
        "FROM properties WHERE record_id = 'nomad:mp-10009'"
    ).set_index("property")
    gap = values.loc["band_gap"]
    assert gap.value == pytest.approx(0.898, rel=1e-9) and gap.unit == "eV"  # GaTe, Materials Project mp-10009
    assert gap.original_value == pytest.approx(1.43875e-19, rel=1e-5) and gap.original_unit == "J"
    volume = values.loc["volume_per_atom"]
    assert volume.value == pytest.approx(272.78374478 / 8, rel=1e-7) and volume.unit == "angstrom**3/atom"
    assert volume.original_value == pytest.approx(2.7278374478e-28, rel=1e-7) and volume.original_unit == "m**3/cell"
    density = values.loc["density"]
    assert density.unit == "g/cm**3" and density.original_unit == "kg/m**3"
    assert density.value == pytest.approx(density.original_value / 1000, rel=1e-12)
    assert set(values["provenance"]) == {"dft"} and set(values["method"]) == {"PBE"}
    metal = store.query("SELECT value FROM properties WHERE record_id = 'nomad:mp-1225695' AND property = 'band_gap'")
    assert metal["value"].tolist() == [0.0]  # CuNi is a metal


def test_material_rows_carry_structure_symmetry_method_and_attribution(store, catalog, server):
    fetch(store, catalog)
    material = store.query("SELECT * FROM materials WHERE record_id = 'nomad:mp-10009'").iloc[0]
    assert (material.formula, material.spacegroup_number, material.spacegroup_symbol) == ("GaTe", 194, "P6_3/mmc")
    assert (material.nsites, material.provenance, material.method) == (8, "dft", "PBE")
    assert material.notes == "program: VASP"
    assert material.source_url == server.url + "entries/mp-10009/archive"
    assert material.citation == "Scheffler et al. 2022" and material.license == "CC-BY-4.0"
    structure = Structure.from_str(material.structure, fmt="json")
    assert structure.composition.reduced_formula == "GaTe" and len(structure) == 8
    assert structure.lattice.a == pytest.approx(4.13459945, rel=1e-9)
    assert structure.volume == pytest.approx(272.78374478, rel=1e-7)
    density = store.query("SELECT value FROM properties WHERE record_id = 'nomad:mp-10009' AND property = 'density'")
    assert density["value"].iloc[0] == pytest.approx(structure.density, rel=1e-9)
    formulas = set(store.query("SELECT formula FROM materials")["formula"])
    assert formulas == {"GaTe", "HfSeS", "CuNi", "K2NaAs", "CsYbBr3", "Li5SbS", "ScAlRh2", "K2PtC2"}


def test_malformed_record_is_quarantined_and_unknown_fields_are_counted(store, catalog):
    report = fetch(store, catalog)
    rejected = store.query("SELECT item, reasons, raw, record_id FROM quarantine")
    assert rejected[["item", "record_id"]].values.tolist() == [["mp-567510", "nomad:mp-567510"]]  # its record's row
    assert "structure_original: 3 positions, 2 species" in rejected["reasons"].iloc[0][0]
    assert json.loads(rejected["raw"].iloc[0])["entry_id"] == "mp-567510"
    assert report.unmapped == {"processed": 2}
    run = store.query("SELECT unmapped_fields, status FROM fetch_runs").iloc[0]
    assert json.loads(run.unmapped_fields) == {"processed": 2} and run.status == "complete"


def test_a_429_with_retry_after_is_honoured_then_succeeds(store, catalog, server):
    server.fail(ARCHIVE_QUERY, 429, retry_after=1)
    report = fetch(store, catalog)
    assert report.n_stored == 8 and server.hits(ARCHIVE_QUERY) == 5


def test_posted_pages_of_a_second_fetch_come_from_the_http_cache_stamped_when_nomad_gave_them(store, catalog, server):
    def cached_fetch(**request):
        connector = build_connector(
            "nomad",
            catalog,
            FetchRequest(everything=True, page_size=3, cache=True, **request),
            cache_path=store.cache_path,
        )
        return run_ingest(connector, store)

    first = cached_fetch()
    fetched_at = store.table("materials").set_index("record_id")["fetched_at"]
    second = cached_fetch()
    assert len(page_requests(server)) == 4 and second.n_unchanged == first.n_stored == 8
    assert store.table("materials").set_index("record_id")["fetched_at"].equals(fetched_at)
    cached_fetch(formulas=["GaTe"])  # another query (body): asked of NOMAD (the replay answers its four pages)
    assert len(page_requests(server)) == 8


def test_a_persistent_503_fails_the_run_and_leaves_the_store_as_before(store, catalog, server):
    fetch(store, catalog)
    before = visible_tables(store)
    server.fail(ARCHIVE_QUERY, *[503] * 4)
    with pytest.raises(SourceError, match="HTTP 503"):
        fetch(store, catalog, ids=["mp-10009"], everything=False)
    assert_failed_without_trace(store, before, "HTTP 503")


def test_an_interrupted_run_resumes_with_exactly_the_records_of_a_clean_run(tmp_path, catalog, server, replay):
    clean = Store(tmp_path / "clean")
    fetch(clean, catalog)

    resumed = Store(tmp_path / "resumed")
    replay.broken.add("mp-568005")  # page 3 answers 503 after pages 1 and 2 were staged
    with pytest.raises(SourceError, match="HTTP 503"):
        fetch(resumed, catalog)
    assert len(resumed.table("materials")) == 0  # nothing visible from the failed run
    replay.broken.clear()
    seen = len(server.requests)
    report = run_ingest(
        build_connector("nomad", catalog, FetchRequest(everything=True, page_size=3)), resumed, resume=True
    )
    after_values = [request.json()["pagination"].get("page_after_value") for request in server.requests[seen:]]
    assert after_values == ["mp-568005", "mp-976876"]  # pages 1 and 2 were not fetched again
    assert report.resumed and report.n_fetched == 9 and report.n_quarantined == 1
    for table, columns in (("materials", ["record_id", "formula"]), ("properties", ["record_id", "property", "value"])):
        assert resumed.table(table)[columns].sort_values(columns).values.tolist() == (
            clean.table(table)[columns].sort_values(columns).values.tolist()
        )
    runs = resumed.table("fetch_runs")
    assert runs["status"].tolist() == ["complete"] and runs["n_fetched"].tolist() == [9]


def test_ids_formulas_and_elements_become_one_nomad_query(store, catalog, server):
    request = FetchRequest(ids=["mp-10009"], formulas=["TiO2", "Ga2Te2"], elements=["Te", "Ga"])
    run_ingest(build_connector("nomad", catalog, request), store, dry_run=True)
    assert page_requests(server)[0]["query"] == {
        "and": [
            {"results.method.method_name": "DFT"},
            {
                "or": [
                    {"entry_id": {"any": ["mp-10009"]}},
                    {"results.material.chemical_formula_reduced": {"any": ["O2Ti", "GaTe"]}},
                    {"results.material.elements_exclusive": "Ga Te"},
                ]
            },
        ]
    }
    assert page_requests(server)[0]["pagination"]["page_size"] == 100  # the default


def test_a_native_filter_is_passed_through_and_bad_requests_are_refused(store, catalog, server):
    native = {"results.material.n_elements": {"gte": 2}, "results.method.simulation.program_name": "VASP"}
    run_ingest(build_connector("nomad", catalog, FetchRequest(filter=json.dumps(native))), store, dry_run=True)
    assert page_requests(server)[0]["query"] == {"and": [{"results.method.method_name": "DFT"}, native]}
    with pytest.raises(ConfigError, match="JSON query object"):
        build_connector("nomad", catalog, FetchRequest(filter="results.material.n_elements > 2"))
    with pytest.raises(ConfigError, match="no NOMAD entries asked for"):
        build_connector("nomad", catalog, FetchRequest())


def test_the_pagination_block_of_a_real_nomad_answer_is_read(catalog, server, replay):
    replay.pages = {None: REAL_TIO_PAGE}  # NOMAD's documented answer (entries/query shares its pagination)
    connector = build_connector("nomad", catalog, FetchRequest(elements=["Ti", "O"], page_size=1))
    page = next(connector.pages())
    assert page.total == 17957 and [item.item_id for item in page.items] == ["--SZVYOxA2jTu_L-mSxefSQFmeyF"]
    assert page.cursor["json"]["pagination"]["page_after_value"] == "--SZVYOxA2jTu_L-mSxefSQFmeyF"
    with pytest.raises(RecordError, match="archive.results"):
        connector.to_record(page.items[0].payload)  # an id-only entry holds nothing to map
    connector.close()


def test_only_dft_entries_are_mapped(catalog):
    connector = build_connector("nomad", catalog, FetchRequest(everything=True))
    entry = json.loads(PAGES[None].read_text())["data"][0]
    entry["archive"]["results"]["method"]["method_name"] = "GW"
    with pytest.raises(RecordError, match="'GW' is not DFT"):
        connector.to_record(entry)
    connector.close()


def test_a_non_periodic_entry_keeps_no_volume_density_or_band_gap(store, catalog, replay, tmp_path):
    entry = recorded_gate()  # periodicity flags alone decide here: structural_type stays 'bulk'
    entry["archive"]["results"]["properties"]["structures"]["structure_original"]["dimension_types"] = [0, 0, 0]
    connector = build_connector("nomad", catalog, FetchRequest(everything=True))
    assert connector.to_record(entry).structure is None
    connector.close()
    serve_only(replay, tmp_path, [entry])
    report = fetch(store, catalog)
    assert (report.n_stored, report.n_quarantined) == (0, 1)
    assert store.query("SELECT reasons FROM quarantine").iloc[0, 0].tolist() == [
        "no property values",
        "volume_per_atom and density left out: structure_original has dimension_types [0, 0, 0], so NOMAD's cell "
        "may include vacuum",
        f"band_gap left out: structure_original is periodic in no direction, {HOMO_LUMO_GAP}",
    ]


@pytest.mark.parametrize("structural_type", ["surface", "2D", "1D", "unavailable", "not processed", None])
def test_volume_and_density_of_an_entry_not_known_to_be_bulk_are_left_out_with_a_note(
    store, catalog, replay, tmp_path, structural_type
):
    entry = recorded_gate()  # dimension_types stay [1, 1, 1]: what VASP says of a slab or a molecule in a box too
    material = entry["archive"]["results"]["material"]
    if structural_type is None:
        del material["structural_type"]
        reason = "NOMAD gives no structural_type"
    else:
        material["structural_type"] = structural_type
        reason = f"NOMAD's structural_type is {structural_type!r}, not 'bulk'"
    serve_only(replay, tmp_path, [entry])
    report = fetch(store, catalog)
    assert (report.n_stored, report.n_quarantined, report.n_values) == (1, 0, 1)
    values, row = stored_gate(store)
    # a periodic (slab, sheet, wire) or unclassified system keeps its band gap: see the module docstring
    assert set(values) == {"band_gap"} and values["band_gap"][:2] == (pytest.approx(0.898, rel=1e-9), "eV")
    notes = f"program: VASP; volume_per_atom and density left out: {reason}, so NOMAD's cell may include vacuum"
    assert row.notes == notes
    assert row.structure is not None and row.nsites == 8  # only values per cell go: the record and its cell stay
    assert len(store.query("SELECT * FROM quarantine")) == 0


@pytest.mark.parametrize("structural_type", ["molecule / cluster", "atom"])
def test_the_homo_lumo_gap_of_a_molecule_or_atom_is_no_band_gap_and_a_bulk_entry_beside_it_keeps_its_gap(
    store, catalog, replay, tmp_path, structural_type
):
    finite = recorded_gate()  # a copy under another id, classified as a finite system; its gap stays 0.898 eV
    finite["entry_id"] = "finite-1"
    finite["archive"]["results"]["material"]["structural_type"] = structural_type
    serve_only(replay, tmp_path, [recorded_gate(), finite])
    report = fetch(store, catalog)
    assert (report.n_fetched, report.n_stored, report.n_quarantined, report.n_values) == (2, 1, 1, 3)
    values, _ = stored_gate(store)
    assert values["band_gap"][:2] == (pytest.approx(0.898, rel=1e-9), "eV")
    assert store.query("SELECT record_id FROM properties WHERE property = 'band_gap'")["record_id"].tolist() == [
        "nomad:mp-10009"
    ]
    assert store.table("materials")["record_id"].tolist() == ["nomad:mp-10009"]  # no value of finite-1 is left
    rejected = store.query("SELECT item, reasons, record_id FROM quarantine")
    assert rejected["item"].tolist() == ["finite-1"]
    assert rejected["reasons"].iloc[0].tolist() == [
        "no property values",  # and why, in words shared by every such record (counted together in the run report)
        f"volume_per_atom and density left out: NOMAD's structural_type is {structural_type!r}, not 'bulk', so NOMAD's "
        "cell may include vacuum",
        f"band_gap left out: NOMAD's structural_type is {structural_type!r}, {HOMO_LUMO_GAP}",
    ]
    assert rejected["record_id"].tolist() == ["nomad:finite-1"]  # resolved once NOMAD classifies it otherwise


def gate_with_band_gaps(band_gaps: list | dict, *, spin_polarized: bool | None = True) -> dict:
    """The recorded GaTe entry with `band_gaps` instead of its one recorded channel, flagged spin-polarized or not."""
    entry = recorded_gate()
    if spin_polarized is not None:
        entry["archive"]["results"]["method"]["simulation"]["dft"]["spin_polarized"] = spin_polarized
    entry["archive"]["results"]["properties"]["electronic"]["band_gap"] = band_gaps
    return entry


def channel(index: int, homo_ev: float, lumo_ev: float) -> dict:
    """One spin channel of NOMAD's band_gap list, as NOMAD's band-structure normalizer writes it (SI: J)."""
    return {
        "index": index,
        "value": max(0.0, lumo_ev - homo_ev) * EV,
        "energy_highest_occupied": homo_ev * EV,
        "energy_lowest_unoccupied": lumo_ev * EV,
    }


GATE_GAP = recorded_gate()["archive"]["results"]["properties"]["electronic"]["band_gap"][0]["value"]  # J, 0.898 eV
# Channel 0 is the recorded GaTe gap (0.898 eV; its band edges, not recorded, placed at 4.2 eV); channels 1 are ADDED.
GATE_CHANNEL_0 = channel(0, 4.2, 4.2 + GATE_GAP / EV)
GAPPED_CHANNEL_1 = channel(1, 4.5, 5.7)  # 1.2 eV of its own, but its VBM lies above channel 0's
FUNDAMENTAL_EV = 4.2 + 0.898 - 4.5  # channel 0's CBM - channel 1's VBM: 0.598 eV, below both channels' own gaps


@pytest.mark.parametrize(
    ("second_channel", "expected_ev"),
    [(GAPPED_CHANNEL_1, FUNDAMENTAL_EV), (channel(1, 4.6, 4.6), 0.0)],
    ids=["both channels gapped", "channel 1 metallic (HOMO = LUMO = Fermi level): a half-metal"],
)
def test_a_spin_polarized_band_gap_is_lowest_unoccupied_minus_highest_occupied_over_both_channels(
    store, catalog, replay, tmp_path, second_channel, expected_ev
):
    serve_only(replay, tmp_path, [gate_with_band_gaps([GATE_CHANNEL_0, second_channel])])
    fetch(store, catalog)
    values, material = stored_gate(store)
    value, unit, original_value, original_unit = values["band_gap"]
    assert value == pytest.approx(expected_ev, abs=1e-9) and unit == "eV"  # not channel 0's 0.898 eV
    assert original_value == pytest.approx(expected_ev * EV, abs=1e-28) and original_unit == "J"
    assert set(values) == {"band_gap", "volume_per_atom", "density"} and material.notes == "program: VASP"


@pytest.mark.parametrize(
    ("band_gaps", "spin_polarized", "expected_ev"),
    [
        ([{"index": 0, "value": 2 * EV}, {"index": 0, "value": GATE_GAP}], None, 0.898),
        ([channel(0, 3.0, 5.0), channel(1, 3.0, 5.0), GATE_CHANNEL_0, GAPPED_CHANNEL_1], True, FUNDAMENTAL_EV),
    ],
    ids=["one channel each", "two spin channels each"],
)
def test_the_band_gap_is_that_of_the_latest_calculation(
    store, catalog, replay, tmp_path, band_gaps, spin_polarized, expected_ev
):
    # an earlier calculation's 2 eV gap (ADDED) comes first, as NOMAD lists the calculations in archive order
    serve_only(replay, tmp_path, [gate_with_band_gaps(band_gaps, spin_polarized=spin_polarized)])
    fetch(store, catalog)
    values, _ = stored_gate(store)
    assert values["band_gap"][:2] == (pytest.approx(expected_ev, abs=1e-9), "eV")


@pytest.mark.parametrize(
    ("band_gaps", "spin_polarized", "note"),
    [
        ([{"index": 0, "value": GATE_GAP}], True, "spin-polarized, but NOMAD gives spin channel 0 only"),
        ([{"index": 1, "value": GATE_GAP}], None, "spin-polarized, but NOMAD gives spin channel 1 only"),
        (
            [{"index": 0, "value": GATE_GAP}, {"index": 1, "value": 1.2 * EV}],
            True,
            "NOMAD gives 2 spin channels without their band edges",
        ),
    ],
    ids=["flagged spin-polarized, channel 0 only", "channel 1 only", "two channels without band edges"],
)
def test_a_band_gap_that_cannot_be_told_is_left_out_with_a_note(
    store, catalog, replay, tmp_path, band_gaps, spin_polarized, note
):
    serve_only(replay, tmp_path, [gate_with_band_gaps(band_gaps, spin_polarized=spin_polarized)])
    report = fetch(store, catalog)
    assert (report.n_stored, report.n_quarantined) == (1, 0)
    values, material = stored_gate(store)
    assert set(values) == {"volume_per_atom", "density"}
    assert material.notes == f"program: VASP; band_gap left out: {note}"


def test_a_band_gap_that_is_not_a_list_of_sections_quarantines_the_entry(store, catalog, replay, tmp_path):
    serve_only(replay, tmp_path, [gate_with_band_gaps({"index": 0, "value": GATE_GAP}, spin_polarized=None)])
    report = fetch(store, catalog)
    assert (report.n_stored, report.n_quarantined) == (0, 1)
    rejected = store.query("SELECT item, reasons FROM quarantine")
    assert rejected["item"].tolist() == ["mp-10009"]
    assert rejected["reasons"].iloc[0][0] == "results.properties.electronic.band_gap is not a list of band-gap sections"


@pytest.mark.parametrize("number", [231, 12.7])
def test_a_space_group_number_no_space_group_has_quarantines_the_entry_with_the_reason(
    store, catalog, replay, tmp_path, number
):
    entry = recorded_gate()
    entry["archive"]["results"]["material"]["symmetry"]["space_group_number"] = number
    serve_only(replay, tmp_path, [entry])
    report = fetch(store, catalog)
    assert (report.n_stored, report.n_quarantined) == (0, 1)
    rejected = store.query("SELECT item, reasons FROM quarantine")
    assert rejected["item"].tolist() == ["mp-10009"]
    assert rejected["reasons"].iloc[0].tolist() == [
        f"results.material.symmetry.space_group_number {number} is not a space group number (1 to 230)"
    ]


def _second_entry_with(defect: str) -> dict | None:
    """A copy of the recorded GaTe entry under another id, with one field of a shape the mapping does not expect."""
    if defect == "null entry":
        return None
    entry = recorded_gate()
    entry["entry_id"] = "broken-1"
    archive = entry["archive"]["results"]
    if defect == "null functional name":
        archive["method"]["simulation"]["dft"]["xc_functional_names"].append(None)
    elif defect == "null species name":
        archive["properties"]["structures"]["structure_original"]["species"].append(None)
    return entry


@pytest.mark.parametrize(
    ("defect", "item", "record_id", "reason"),
    [
        ("null entry", "<not an object>", None, "not a JSON object: NoneType"),
        (
            "null functional name",
            "broken-1",
            "nomad:broken-1",
            "record not in the form the nomad mapping reads (or a matreg bug): TypeError: ",
        ),
        (
            "null species name",
            "broken-1",
            "nomad:broken-1",
            "record not in the form the nomad mapping reads (or a matreg bug): AttributeError: ",
        ),
    ],
)
def test_an_entry_of_an_unexpected_shape_is_quarantined_and_the_run_goes_on(
    store, catalog, replay, tmp_path, defect, item, record_id, reason
):
    serve_only(replay, tmp_path, [recorded_gate(), _second_entry_with(defect)])
    report = fetch(store, catalog)
    assert (report.status, report.n_fetched, report.n_stored, report.n_quarantined) == ("complete", 2, 1, 1)
    assert store.table("materials")["record_id"].tolist() == ["nomad:mp-10009"]
    rejected = store.query("SELECT item, reasons, record_id FROM quarantine")
    assert rejected["item"].tolist() == [item] and rejected["record_id"].tolist() == [record_id]
    assert rejected["reasons"].iloc[0][0].startswith(reason)


def test_a_page_emptied_by_missing_archives_does_not_end_the_run(store, catalog, server, replay, tmp_path):
    # NOMAD pages its search index, then drops the entries whose archive is missing (app/v1/routers/entries.py,
    # _answer_entries_archive_request: data=list(filter(None, ...))), keeping the index's next_page_after_value.
    _page_edited(replay, tmp_path, "mp-1225695", lambda page: page.update(data=[]))  # page 2, its 3 archives missing
    report = fetch(store, catalog)
    after_values = [body["pagination"].get("page_after_value") for body in page_requests(server)]
    assert after_values == [None, "mp-1225695", "mp-568005", "mp-976876"]
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (6, 6, 0)
    assert len(store.query("SELECT * FROM materials")) == 6


def test_a_next_value_that_repeats_the_one_sent_ends_the_run(store, catalog, server, replay, tmp_path):
    def names_itself(page):  # page 4 (empty) named again as the page after it: followed, asked for without end
        page["pagination"]["next_page_after_value"] = "mp-976876"

    _page_edited(replay, tmp_path, "mp-976876", names_itself)
    report = fetch(store, catalog)
    after_values = [body["pagination"].get("page_after_value") for body in page_requests(server)]
    assert after_values == [None, "mp-1225695", "mp-568005", "mp-976876"]
    assert (report.status, report.n_fetched, report.n_stored, report.n_quarantined) == ("complete", 9, 8, 1)


def _page_edited(replay, tmp_path, after_value: str, edit) -> None:
    """Serve the recorded page asked for after `after_value` as `edit` changes it (a copy)."""
    page = json.loads(PAGES[after_value].read_text())
    edit(page)
    path = tmp_path / f"page_after_{after_value}.json"
    path.write_text(json.dumps(page), encoding="utf-8")
    replay.pages = PAGES | {after_value: path}


def test_functional_and_formula_follow_nomad_conventions():
    assert functional({"simulation": {"dft": {"xc_functional_names": ["GGA_C_PBE", "GGA_X_PBE"]}}}) == "PBE"
    hse_u = {"xc_functional_names": ["HYB_GGA_XC_HSE06"], "hubbard_kanamori_model": [{"u_effective": 1e-19}]}
    assert functional({"simulation": {"dft": hse_u}}) == "HSE06+U"
    lda = {"xc_functional_names": ["LDA_X", "LDA_C_PZ"], "xc_functional_type": "LDA"}
    assert functional({"simulation": {"dft": lda}}) == "LDA_C_PZ+LDA_X"  # stored as LDA (the method vocabulary)
    tb09 = {"xc_functional_names": ["MGGA_X_TB09", "LDA_C_PW"], "xc_functional_type": "meta-GGA"}
    assert canonical_method(functional({"simulation": {"dft": tb09}})) == "TBmBJ"
    names = (["GGA_C_PBE_SOL", "GGA_X_PBE_SOL"], ["MGGA_C_R2SCAN", "MGGA_X_R2SCAN"], ["HYB_GGA_XC_PBEH"])
    named = [canonical_method(functional({"simulation": {"dft": {"xc_functional_names": n}}})) for n in names]
    assert named == ["PBEsol", "r2SCAN", "PBE0"]
    gga_u = {"xc_functional_type": "GGA", "hubbard_kanamori_model": [{"u_effective": 3.0}]}
    assert canonical_method(functional({"simulation": {"dft": gga_u}})) == "GGA+U (functional not named)"  # not PBE+U
    assert functional({"simulation": {"dft": {"xc_functional_type": "GGA"}}}) == "GGA"
    lda_u = gga_u | {"xc_functional_type": "LDA"}
    assert canonical_method(functional({"simulation": {"dft": lda_u}})) == "LDA+U"  # read as what it says
    assert functional({}) is None
    assert functional({"simulation": {"dft": {"xc_functional_type": "not processed"}}}) is None
    texts = ("TiO2", "Ti2O4", "Ho3TmMn8", "Si", "Li2O2", "O2")
    assert [alphabetical_formula(text) for text in texts] == ["O2Ti", "O2Ti", "Ho3Mn8Tm", "Si", "LiO", "O"]


def test_each_entry_gets_the_functional_of_its_own_names_family_and_u_however_often_they_repeat():
    """The functional is worked out once per set of names (`functional`'s cache): an entry that repeats an earlier
    one's names, in another order, with or without +U, or with another family, gets its own label, never the first's;
    names edited after an entry was read are read anew."""
    pbe = {"xc_functional_names": ["GGA_X_PBE", "GGA_C_PBE"], "xc_functional_type": "GGA"}
    u = {"hubbard_kanamori_model": [{"u_effective": 3.0}]}
    entries = [
        pbe,
        pbe | {"xc_functional_names": ["GGA_C_PBE", "GGA_X_PBE"]},
        pbe | u,
        {"xc_functional_type": "GGA"},
        {"xc_functional_type": "GGA"} | u,
        {"xc_functional_type": "LDA"} | u,
        {"xc_functional_names": []} | u,
    ]
    expected = ["PBE", "PBE", "PBE+U", "GGA", "GGA+U (functional not named)", "LDA+U", None]
    for _ in range(2):
        assert [functional({"simulation": {"dft": dft}}) for dft in entries] == expected
    names = ["GGA_X_PBE"]
    assert functional({"simulation": {"dft": {"xc_functional_names": names}}}) == "PBE"
    names.append("LDA_C_PW")
    assert functional({"simulation": {"dft": {"xc_functional_names": names}}}) == "GGA_X_PBE+LDA_C_PW"


def test_every_density_is_the_received_kg_per_m3_over_1000_correctly_rounded(store, catalog):
    """pint's float factor of kg/m^3 to g/cm^3 is 0.0010000000000000002, and 0.001 times a value is not always the
    value over 1000: the stored densities were a last digit off the received density divided by 1000."""
    fetch(store, catalog)
    density = store.query("SELECT value, original_value FROM properties WHERE property = 'density'")
    assert len(density) == 8 and (density["value"] == density["original_value"] / 1000).all(), density
