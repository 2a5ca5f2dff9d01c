"""matreg's OPTIMADE connector over real HTTP: replayed provider pages on 127.0.0.1, and the real reference server.

Replayed pages (tests/fixtures/optimade, see SOURCES.md): pages the optimade-python-tools reference server sent for
this connector's own request, a real Materials Cloud page, and pages assembled from real Materials Project and OQMD
records. The reference-server tests start `optimade[server]` 1.5.0 from MATREG_OPTIMADE_SERVER_PYTHON.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow
import pyarrow.parquet as pq
import pytest
from conftest import assert_failed_without_trace, visible_tables
from optimade_server import SERVER_PYTHON_ENV, ReferenceServer, server_python
from pymatgen.core import Lattice, Structure
from replay import ReplayServer, Reply, Request

from matreg.catalog import load_catalog
from matreg.curate.review import CurationError, record_decision
from matreg.errors import ConfigError, RecordError, SourceError
from matreg.fieldmap import load_field_map
from matreg.ingest import run_ingest
from matreg.jsontext import to_json
from matreg.resources import resource_path
from matreg.sources import FetchRequest, build_connector
from matreg.sources.optimade import COUNTED as COUNTED_KEY
from matreg.sources.optimade import build_filter
from matreg.store import Store
from matreg.validation import RunStamp, harmonize

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "optimade"
REFERENCE_PAGES = {offset: FIXTURES / f"ref_nelements2_page{k}.json" for k, offset in enumerate((0, 4, 8, 12), 1)}
MP_PAGES = {0: FIXTURES / "assembled_mp_page1.json", 3: FIXTURES / "assembled_mp_page2.json"}
MATERIALS_CLOUD_PAGE = FIXTURES / "materialscloud_optimade_sample_structures_SiO.json"
MATERIALS_CLOUD_BASE = "/optimade-sample/optimade/"  # the recorded page's base URL path
BAD_FILTER_REPLY = FIXTURES / "local_ref_server_error_400_bad_filter.json"
STRUCTURES = "/v1/structures"


class OptimadeReplay:
    """A provider's structures endpoint: the recorded page of the request's `page_offset` (503 for `broken` ones).

    Recorded pages name their server in `links.next`; that root (if any) is replaced by the replay server's.
    """

    def __init__(
        self, path: str, pages: dict[int, Path], recorded_root: str | None = None, info: Path | None = None
    ) -> None:
        self.path = path
        self.pages = pages
        self.recorded_root = recorded_root
        self.info = info  # the provider's /info/structures answer (none: 404, as a provider without it)
        self.root = ""
        self.broken: set[int] = set()

    def __call__(self, request: Request) -> Reply:
        if self.info is not None and request.path == self.path.replace("/structures", "/info/structures"):
            return Reply.file(self.info)
        offset = int(request.query.get("page_offset", ["0"])[0])
        if request.path != self.path or offset not in self.pages:
            return Reply.json({"errors": [{"status": "404", "title": "Not Found"}]}, 404)
        if offset in self.broken:
            return Reply.json({"errors": [{"status": "503", "title": "Service Unavailable"}]}, 503)
        text = self.pages[offset].read_text()
        return Reply(200, (text.replace(self.recorded_root, self.root) if self.recorded_root else text).encode())

    def offsets(self, server: ReplayServer) -> list[int]:
        """The page offsets the server was asked for, in order."""
        return [int(r.query.get("page_offset", ["0"])[0]) for r in server.requests if r.path == self.path]


def structure_requests(server: ReplayServer) -> list[Request]:
    """The requests for pages of structures (not for /info/structures)."""
    return [request for request in server.requests if not request.path.endswith("/info/structures")]


def serve(replay: OptimadeReplay) -> ReplayServer:
    """A replay server for `replay`, its recorded root made the server's own."""
    server = ReplayServer(replay)
    replay.root = server.root
    return server


def pymatgen_structure(attributes: dict) -> Structure:
    """The structure of OPTIMADE attributes as pymatgen builds it from its own classes (vacancies left out)."""
    occupancy = {
        species["name"]: {
            el: c
            for el, c in zip(species["chemical_symbols"], species["concentration"], strict=True)
            if el != "vacancy"
        }
        for species in attributes["species"]
    }
    sites = [occupancy[name] for name in attributes["species_at_sites"]]
    return Structure(
        Lattice(attributes["lattice_vectors"]), sites, attributes["cartesian_site_positions"], coords_are_cartesian=True
    )


def write_catalog(path: Path, base_url: str, provider: str, method: str | None = None) -> Path:
    """A catalog whose optimade source is `provider`'s database at `base_url` (values of `method` where none is
    named), fast retries."""
    path.write_text(
        "sources:\n"
        "  optimade:\n"
        "    title: OPTIMADE provider (local replay)\n"
        "    connector: optimade\n"
        f"    base_url: {base_url}\n"
        f"    provider: {provider}\n"
        "    provenance: dft\n" + (f"    method: {method}\n" if method else "") + "    license: CC-BY-4.0\n"
        "    citation: Andersen et al., Sci. Data 8, 217 (2021)\n"
        "    database_version: test\n"
        "    http: {retries: 3, backoff_s: 0, jitter_s: 0, timeout_s: 5, cache: false}\n",
        encoding="utf-8",
    )
    return path


def fetch(store: Store, catalog, request: FetchRequest, **options):
    return run_ingest(build_connector("optimade", catalog, request), store, **options)


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def reference_replay() -> OptimadeReplay:
    return OptimadeReplay(STRUCTURES, REFERENCE_PAGES, "http://127.0.0.1:5077", FIXTURES / "ref_info_structures.json")


@pytest.fixture
def reference_server(reference_replay):
    with serve(reference_replay) as server:
        yield server


@pytest.fixture
def reference_catalog(tmp_path, reference_server):
    return load_catalog(write_catalog(tmp_path / "catalog.yaml", reference_server.root, "exmpl"))


@pytest.fixture
def mp_server():
    with serve(OptimadeReplay(STRUCTURES, MP_PAGES, "https://optimade.materialsproject.org")) as server:
        yield server


@pytest.fixture
def mp_catalog(tmp_path, mp_server):
    return load_catalog(write_catalog(tmp_path / "catalog.yaml", mp_server.root, "mp"))


NELEMENTS_2 = FetchRequest(filter="nelements>=2", page_size=4)


def test_recorded_reference_pages_are_followed_through_links_next(store, reference_catalog, reference_server):
    report = fetch(store, reference_catalog, NELEMENTS_2)
    assert (report.n_fetched, report.n_available, report.n_stored, report.n_quarantined) == (15, 15, 12, 3)
    requests = reference_server.requests[1:]
    assert [r.path for r in reference_server.requests] == ["/v1/info/structures"] + [STRUCTURES] * 4
    assert [r.query.get("page_offset") for r in requests] == [None, ["4"], ["8"], ["12"]]
    first = requests[0].query
    assert (first["filter"], first["page_limit"]) == (["nelements>=2"], ["4"])
    fields = first["response_fields"][0].split(",")
    assert {"lattice_vectors", "species_at_sites", "_exmpl_band_gap", "_oqmd_delta_e", "_mp_stability"} <= set(fields)
    # The reference server's synthetic cells: three are far too small for their atoms.
    assert all("volume_per_atom = " in reason and "outside the physical bounds" in reason for reason in report.reasons)
    assert set(store.query("SELECT item FROM quarantine")["item"]) == {"mpf_272", "mpf_632", "mpf_3819"}
    assert report.unmapped == {}  # the server sent exactly the fields asked for (others' as null)


def test_values_are_harmonized_with_units_provenance_and_method(store, mp_catalog, mp_server):
    report = fetch(store, mp_catalog, FetchRequest(elements=["N"]))
    assert (report.n_fetched, report.n_stored, report.n_values, report.n_quarantined) == (6, 6, 18, 0)
    values = store.query("SELECT * FROM properties WHERE record_id = 'optimade:mp-13480'").set_index("property")
    energy = values.loc["formation_energy_per_atom"]
    assert (energy.value, energy.unit, energy.original_unit) == (pytest.approx(0.80198599), "eV/atom", "eV/atom")
    assert (energy.provenance, energy.method) == ("dft", "PBE(+U)")
    assert values.loc["energy_above_hull", "value"] == pytest.approx(0.80198599)
    material = store.query("SELECT * FROM materials WHERE record_id = 'optimade:mp-13480'").iloc[0]
    structure = Structure.from_dict(json.loads(material.structure))
    assert (material.formula, material.nsites) == ("Cu3N", 4)
    entry = json.loads(MP_PAGES[3].read_text())["data"][0]
    assert entry["id"] == "mp-13480" and structure == pymatgen_structure(entry["attributes"])
    volume = values.loc["volume_per_atom"]
    assert (volume.unit, volume.original_unit) == ("angstrom**3/atom", "angstrom**3/cell")
    assert volume.original_value == pytest.approx(structure.volume)
    assert volume.value == pytest.approx(structure.volume / 4)
    assert pd.isna(volume.method)  # the record's: this catalog entry names no method
    assert material.source_url == f"{mp_server.root}/v1/structures/mp-13480"
    assert (material.citation, material.database_version) == ("Andersen et al., Sci. Data 8, 217 (2021)", "test")


def test_a_next_link_object_is_followed_and_dropped_response_fields_are_put_back(store, mp_catalog, mp_server):
    fetch(store, mp_catalog, FetchRequest(elements=["N"], page_size=3))
    first, second = structure_requests(mp_server)
    assert first.query["filter"] == ['elements HAS ALL "N" AND nelements=1']
    assert second.query["page_offset"] == ["3"]  # from {"href": ...}
    assert second.query["response_fields"] == first.query["response_fields"]  # the href had none


def test_the_real_materials_cloud_page_maps_and_counts_unknown_fields(tmp_path, store):
    replay = OptimadeReplay(
        "/optimade-sample/optimade/v1/structures", {0: MATERIALS_CLOUD_PAGE}, "https://aiida.materialscloud.org"
    )
    with serve(replay) as server:
        catalog = load_catalog(write_catalog(tmp_path / "mc.yaml", server.root + MATERIALS_CLOUD_BASE, "mcloud"))
        connector = build_connector("optimade", catalog, FetchRequest(filter='elements HAS ALL "Si","O"'))
        first = next(connector.pages())
        connector.close()
        report = fetch(store, catalog, FetchRequest(filter='elements HAS ALL "Si","O"'), limit=2)
    assert first.total == 187 and [item.item_id for item in first.items] == ["903", "250"]
    assert first.cursor["url"] == (
        server.root + "/optimade-sample/optimade/v1/structures?filter=elementsHAS+ALL+%22Si%22%2C%22O%22"
        "&sort=nelements&page_limit=2&page_offset=2"
    )
    assert first.cursor["params"] == {"response_fields": connector.response_fields}  # the link had none
    assert (report.n_stored, report.n_quarantined) == (1, 1) and len(structure_requests(server)) == 2
    assert report.unmapped == {  # counted of the records that map: 903 (250 is refused whole, below)
        "immutable_id": 1,
        "elements_ratios": 1,
        "chemical_formula_anonymous": 1,
        "assemblies": 1,
        "_mcloud_ctime": 1,
    }
    material = store.query("SELECT * FROM materials WHERE source_id = '903'").iloc[0]
    assert material.formula == "Na4Al3Si3ClO12" and material.nsites == 46  # a cell of two formula units
    assert len(Structure.from_dict(json.loads(material.structure))) == 46
    volume = store.query("SELECT value FROM properties WHERE record_id = 'optimade:903'").iloc[0, 0]
    assert volume == pytest.approx(8.8954**3 / 46)
    # Entry 250's structure is not of its formula: Materials Cloud's own data disagree (its cell holds 4 O per Al,
    # its formula 5), so neither its cell's volume per atom nor its formula's molar mass could be trusted.
    rejected = store.query("SELECT item, record_id, reasons FROM quarantine").iloc[0]
    assert (rejected["item"], rejected.record_id, list(rejected.reasons)) == ("250", "optimade:250", [EU_DISAGREES])
    assert store.query("SELECT count(*) FROM materials WHERE source_id = '250'").iloc[0, 0] == 0
    unmapped = json.loads(store.query("SELECT unmapped_fields FROM fetch_runs").iloc[0, 0])
    assert unmapped["_mcloud_ctime"] == 1


# Materials Cloud's entry 250, disordered (sites shared by Si and Al, Eu sites partly vacant: 85.48 atoms by occupancy
# on 102 sites), as recorded: its structure and its formula disagree.
EU_DISAGREES = "the structure is Eu5.48Al12Si12Cl8O48 (by occupancy), not the record's formula Al2Cl2EuO10Si2"
EU_ROUNDED = "Al3Cl2EuO12Si3"  # its cell's formula with 4 whole Eu for the 5.48: within same_composition's tolerance


def agreeing(entry: dict) -> dict:
    """Materials Cloud's entry 250 with a formula its structure is of (`EU_ROUNDED`)."""
    entry["attributes"]["chemical_formula_reduced"] = EU_ROUNDED
    return entry


@pytest.mark.parametrize(
    ("position", "formula", "reason"),
    [
        (0, None, None),  # as recorded: Al3ClNa4O12Si3, of which its cell holds two formula units
        (0, "Al3Na4O12Si3", "the structure is Na8Al6Si6Cl2O24, not the record's formula Al3Na4O12Si3"),
        (1, None, EU_DISAGREES),
        (1, EU_ROUNDED, None),
        (
            1,
            "Al3ClEuO12Si3",
            "the structure is Eu5.48Al12Si12Cl8O48 (by occupancy), not the record's formula Al3ClEuO12Si3",
        ),
    ],
)
def test_an_entry_whose_structure_is_not_of_its_formula_is_quarantined_naming_both(
    tmp_path, store, position, formula, reason
):
    def edit(page: dict) -> None:
        page["data"] = [page["data"][position]]
        if formula is not None:
            page["data"][0]["attributes"]["chemical_formula_reduced"] = formula

    entry = json.loads(MATERIALS_CLOUD_PAGE.read_text())["data"][position]
    report = fetch_edited_page(tmp_path, store, MATERIALS_CLOUD_PAGE, edit, FetchRequest(everything=True))
    quarantined = store.query("SELECT record_id, reasons FROM quarantine")
    if reason is not None:
        assert (report.n_stored, report.n_quarantined) == (0, 1) and len(store.table("materials")) == 0
        assert quarantined.values.tolist() == [[f"optimade:{entry['id']}", [reason]]]
        return
    assert (report.n_stored, report.n_quarantined) == (1, 0) and quarantined.empty
    material = store.query("SELECT formula_original, structure FROM materials").iloc[0]
    stored = Structure.from_dict(json.loads(material.structure))
    assert material.formula_original == (formula or entry["attributes"]["chemical_formula_reduced"])
    assert stored == pymatgen_structure(entry["attributes"])
    # A disordered cell's volume per atom counts its atoms by occupancy (250: 85.48 on 102 sites), not its sites.
    volume = store.query("SELECT value FROM properties WHERE property = 'volume_per_atom'").iloc[0, 0]
    assert volume == pytest.approx(stored.volume / stored.composition.num_atoms)
    assert (stored.composition.num_atoms, len(stored)) == (
        (46, 46) if position == 0 else (pytest.approx(85.48, abs=0.01), 102)
    )


def test_another_providers_database_at_a_catalog_entrys_base_url_is_refused_before_anything_is_stored(store):
    # README once suggested `fetch optimade --base-url <Materials Cloud>`: the bundled entry is the Materials Project's,
    # so Materials Cloud's records were stored with MP's citation and licence, and its entry '903' would replace MP's.
    bundled = load_catalog(resource_path("catalog.yaml"))
    with serve(OptimadeReplay(STRUCTURES, MP_PAGES, "https://optimade.materialsproject.org")) as server:
        run_ingest(build_connector("optimade", bundled, FetchRequest(everything=True, base_url=server.root)), store)
    before = visible_tables(store)
    replay = OptimadeReplay(
        "/optimade-sample/optimade/v1/structures", {0: MATERIALS_CLOUD_PAGE}, "https://aiida.materialscloud.org"
    )
    with serve(replay) as server:
        request = FetchRequest(everything=True, base_url=server.root + MATERIALS_CLOUD_BASE)
        with pytest.raises(SourceError) as error:
            run_ingest(build_connector("optimade", bundled, request), store)
    assert (
        "is OPTIMADE provider 'mcloud' (Materials Cloud, https://materialscloud.org), not 'mp' as catalog source "
        "'optimade' says: its records would be stored as 'optimade', with that source's citation and licence"
    ) in str(error.value)
    assert "a catalog entry of its own (connector: optimade, provider: mcloud," in str(error.value)
    assert_failed_without_trace(store, before, "is OPTIMADE provider 'mcloud'")
    citations = store.query("SELECT DISTINCT citation, license FROM materials").values.tolist()
    assert citations == [[bundled.source("optimade").citation, "CC-BY-4.0"]]


@pytest.mark.parametrize(
    ("offset", "provider", "error"),
    [
        (3, {"name": "OQMD", "prefix": "oqmd"}, "is OPTIMADE provider 'oqmd' (OQMD), not 'mp'"),  # a later page
        (0, None, "names no OPTIMADE provider (meta.provider.prefix"),
    ],
)
def test_a_page_of_another_provider_or_of_none_fails_the_run_and_stores_nothing(
    tmp_path, store, mp_catalog, offset, provider, error
):
    page = json.loads(MP_PAGES[offset].read_text(encoding="utf-8"))
    page["meta"]["provider"] = provider
    (tmp_path / "page.json").write_text(json.dumps(page), encoding="utf-8")
    pages = MP_PAGES | {offset: tmp_path / "page.json"}
    with serve(OptimadeReplay(STRUCTURES, pages, "https://optimade.materialsproject.org")) as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.root, "mp"))
        with pytest.raises(SourceError, match=re.escape(error)):
            fetch(store, catalog, FetchRequest(everything=True, page_size=3), commit_every=1)
    assert len(store.table("materials")) == 0 and len(store.table("quarantine")) == 0
    assert store.query("SELECT status FROM fetch_runs")["status"].tolist() == ["failed"]


class EndlessPages:
    """MP's first page, then pages whose `links.next` names a page anew each time (`?x=<n>`) and that hold what
    `later(records)` makes of the page before's records; after 20 pages, no next link (a run that is not stopped
    ends there)."""

    def __init__(self, later) -> None:
        self.later = later
        self.page = json.loads(MP_PAGES[0].read_text(encoding="utf-8"))
        self.root = ""

    def __call__(self, request: Request) -> Reply:
        if request.path.endswith("/info/structures"):
            return Reply.json({"errors": [{"status": "404", "title": "Not Found"}]}, 404)
        if request.query.get("x"):
            self.page["data"] = self.later(copy.deepcopy(self.page["data"]))
        n = int(request.query.get("x", ["0"])[0]) + 1
        self.page["links"] = {"next": f"{self.root}{STRUCTURES}?x={n}" if n < 20 else None}
        return Reply.json(self.page)


def later_read_of(records: list[dict]) -> list[dict]:
    """The same entries, one of another value (as OQMD lists an entry once per calculation: the same ids in turn)."""
    records[0]["attributes"]["_mp_stability"]["gga_gga+u"]["energy_above_hull"] += 0.01
    return records


def test_pages_that_answer_the_page_before_again_fail_the_run_instead_of_paging_forever(store, tmp_path):
    with serve(EndlessPages(lambda records: records)) as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.root, "mp"))
        with pytest.raises(SourceError) as error:
            fetch(store, catalog, FetchRequest(everything=True, page_size=3))
    assert f"the source's pagination loops: GET {server.root}{STRUCTURES}?x=2" in str(error.value)
    assert str(error.value).endswith("answered the same 3 record(s) as the 2 pages before it")
    assert len(structure_requests(server)) == 3 and len(store.table("materials")) == 0
    assert store.query("SELECT status FROM fetch_runs")["status"].tolist() == ["failed"]


def test_pages_that_cycle_through_earlier_pages_fail_the_run_instead_of_paging_forever(store, tmp_path):
    # a new next link each time, two pages of records in turn: only pages in a row with the same records were caught
    first = json.loads(MP_PAGES[0].read_text(encoding="utf-8"))["data"]
    other = later_read_of(copy.deepcopy(first))

    def the_other_page(records: list[dict]) -> list[dict]:
        return copy.deepcopy(other if records == first else first)

    with serve(EndlessPages(the_other_page)) as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.root, "mp"))
        with pytest.raises(SourceError) as error:
            fetch(store, catalog, FetchRequest(everything=True, page_size=3))
    assert str(error.value).startswith(f"the source's pagination loops: GET {server.root}{STRUCTURES}?x=3")
    assert str(error.value).endswith(
        "answered the same 3 record(s) as the page 2 pages before it, the page before it those of an earlier one too"
    )
    assert len(structure_requests(server)) == 4 and len(store.table("materials")) == 0


def test_one_page_answering_an_earlier_page_again_is_read_on(store, tmp_path):
    first = json.loads(MP_PAGES[0].read_text(encoding="utf-8"))["data"]
    pages = itertools.count(1)

    def numbered_but_the_third_the_first_again(records: list[dict]) -> list[dict]:
        records, number = copy.deepcopy(first), next(pages)
        if number != 2:
            records[0]["attributes"]["_mp_stability"]["gga_gga+u"]["energy_above_hull"] = number
        return records

    with serve(EndlessPages(numbered_but_the_third_the_first_again)) as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.root, "mp"))
        report = fetch(store, catalog, FetchRequest(everything=True, page_size=3))
    assert report.n_fetched == 60 and len(structure_requests(server)) == 20


def test_one_page_answering_the_page_before_again_is_read_on_as_an_upstream_insert(store, tmp_path):
    pages = iter([lambda records: records])  # the second page repeats the first (a record inserted before it)

    def once_the_same_then_later_reads(records: list[dict]) -> list[dict]:
        return next(pages, later_read_of)(records)

    with serve(EndlessPages(once_the_same_then_later_reads)) as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.root, "mp"))
        report = fetch(store, catalog, FetchRequest(everything=True, page_size=3))
    assert report.n_fetched == 60 and len(structure_requests(server)) == 20


def test_pages_of_the_same_entries_with_other_content_are_read_on(store, tmp_path):
    with serve(EndlessPages(later_read_of)) as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.root, "mp"))
        report = fetch(store, catalog, FetchRequest(everything=True, page_size=3))
    assert report.n_fetched == 60 and len(structure_requests(server)) == 20


def test_a_next_link_to_a_local_file_fails_the_run_without_reading_it(store, tmp_path):
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    page = json.loads(MP_PAGES[0].read_text(encoding="utf-8"))
    page["links"] = {"next": secret.as_uri()}
    (tmp_path / "page.json").write_text(json.dumps(page), encoding="utf-8")
    with serve(OptimadeReplay(STRUCTURES, {0: tmp_path / "page.json"})) as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.root, "mp"))
        with pytest.raises(SourceError) as error:
            fetch(store, catalog, FetchRequest(everything=True, page_size=3))
    assert str(error.value) == (
        f"refused the URL {secret.as_uri()}: a source at {server.root} is read over http or https only"
    )
    runs = store.query("SELECT status, error FROM fetch_runs")
    assert runs.values.tolist() == [["failed", str(error.value)]] and len(store.table("materials")) == 0


def volume_of(connector, entry: dict) -> tuple[list, list]:
    """The entry's harmonized volume per atom (as a list: none or one) and the reasons it was refused."""
    canonical = harmonize(connector.to_record(entry), connector.attribution, RunStamp("r", datetime.now(UTC)))
    volumes = [row["value"] for row in canonical.values if row["property"] == "volume_per_atom"]
    return volumes, [reason for rejection in canonical.rejected for reason in rejection.reasons]


def test_an_entry_whose_atoms_cannot_be_counted_keeps_no_volume_per_site(mp_catalog):
    entry = agreeing(json.loads(MATERIALS_CLOUD_PAGE.read_text())["data"][1])  # disordered: 85.48 atoms on 102 sites
    connector = build_connector("optimade", mp_catalog, FetchRequest(everything=True))
    cell = pymatgen_structure(entry["attributes"])
    assert volume_of(connector, entry)[0] == [pytest.approx(cell.volume / cell.composition.num_atoms)]
    unreadable = copy.deepcopy(entry)
    del unreadable["attributes"]["species"][0]["concentration"]
    record = connector.to_record(unreadable)
    assert record.structure is None and math.isnan(record.atoms_per_cell)
    assert record.notes == "structure not kept: 'species' is not a list of {name, chemical_symbols, concentration}"
    assert record.formula == entry["attributes"]["chemical_formula_reduced"] and record.nsites == 102
    refused = ["cannot convert 'angstrom**3/cell' to 'angstrom**3/atom' without the number of atoms"]
    assert volume_of(connector, unreadable) == ([], refused)  # (not divided by the 102 sites)
    unnamed = copy.deepcopy(entry)  # partly occupied species, and a site whose species the list lacks
    unnamed["attributes"]["species"] = [s for s in entry["attributes"]["species"] if s["name"] != "O"]
    assert volume_of(connector, unnamed) == ([], refused)
    record = connector.to_record(unnamed)  # (the site's name is no guide to what it holds)
    assert record.structure is None
    assert record.notes == "structure not kept: species_at_sites names O, which 'species' does not list"
    huge = copy.deepcopy(entry)  # (json.loads reads it; float() cannot)
    huge["attributes"]["species"][0]["concentration"] = [10**400]
    assert volume_of(connector, huge) == ([], refused)


@pytest.mark.parametrize("entry", [True, "4.0"])
def test_a_lattice_vector_entry_that_is_no_number_quarantines_the_entry_not_read_as_one(mp_catalog, entry):
    page = json.loads(MP_PAGES[0].read_text())
    connector = build_connector("optimade", mp_catalog, FetchRequest(everything=True))
    broken = copy.deepcopy(page["data"][0])
    broken["attributes"]["lattice_vectors"][0][0] = entry  # a JSON true read as 1.0 gave a wrong volume per atom
    with pytest.raises(RecordError, match=f"^lattice_vectors entry {re.escape(repr(entry))} is not a number"):
        connector.to_record(broken)


def test_a_lattice_vector_entry_beyond_a_floats_range_quarantines_the_volume_not_the_run_or_the_record(tmp_path, store):
    def edit(page: dict) -> None:
        page["data"][0]["attributes"]["lattice_vectors"][0][0] = 10**400  # JSON: json.loads reads it, float() cannot

    entry = json.loads(MP_PAGES[0].read_text())["data"][0]
    report = fetch_edited_page(tmp_path, store, MP_PAGES[0], edit, FetchRequest(everything=True))
    assert (report.status, report.n_stored, report.n_quarantined) == ("complete", report.n_fetched, 1)
    rows = store.query("SELECT item, reasons FROM quarantine").values.tolist()
    assert rows == [[f"{entry['id']}:volume_per_atom", ["not a finite number: 'inf'"]]]  # as 1e400 is
    material = store.query("SELECT structure, notes FROM materials WHERE source_id = ?", [entry["id"]]).iloc[0]
    assert material.structure is None and material.notes.startswith("structure not kept: ")
    values = store.query("SELECT property FROM properties WHERE record_id = ?", [f"optimade:{entry['id']}"])
    assert set(values.property) == {"formation_energy_per_atom", "energy_above_hull"}  # its other values stored


@pytest.mark.parametrize("share", [True, "1.0", -0.5, 1.5])
def test_a_concentration_that_is_no_share_leaves_the_structure_unread_not_read_as_one(mp_catalog, share):
    entry = json.loads(MATERIALS_CLOUD_PAGE.read_text())["data"][0]  # ordered: 46 atoms on 46 sites
    connector = build_connector("optimade", mp_catalog, FetchRequest(everything=True))
    entry["attributes"]["species"][0]["concentration"] = [share]
    record = connector.to_record(entry)
    assert record.structure is None and math.isnan(record.atoms_per_cell)
    assert record.notes == "structure not kept: 'species' is not a list of {name, chemical_symbols, concentration}"


def test_a_species_whose_concentrations_add_up_to_more_than_one_leaves_the_structure_unread(mp_catalog):
    entry = json.loads(MATERIALS_CLOUD_PAGE.read_text())["data"][0]  # ordered: 46 atoms on 46 sites
    connector = build_connector("optimade", mp_catalog, FetchRequest(everything=True))
    species = entry["attributes"]["species"][0]
    species |= {"chemical_symbols": [*species["chemical_symbols"], "Li"], "concentration": [1.0, 0.4]}
    record = connector.to_record(entry)  # 1.4 atoms a site were counted: a smaller volume per atom stored
    assert record.structure is None and math.isnan(record.atoms_per_cell)
    assert volume_of(connector, entry)[0] == []


def test_an_element_of_concentration_0_puts_nothing_on_a_site_and_the_structure_is_kept(mp_catalog):
    """A species listing an element at concentration 0 (the specification bounds no concentration at 0) kept its
    volume per atom (its shares were read as those of a site) but lost its structure ('site occupancies are not
    positive'): the element is left off the site, as it holds none of it, and the structure is kept."""
    entry = json.loads(MATERIALS_CLOUD_PAGE.read_text())["data"][0]  # ordered: 46 atoms on 46 sites
    connector = build_connector("optimade", mp_catalog, FetchRequest(everything=True))
    original = copy.deepcopy(entry)
    species = entry["attributes"]["species"][0]
    species |= {"chemical_symbols": [*species["chemical_symbols"], "Li"], "concentration": [1.0, 0.0]}
    record = connector.to_record(entry)
    assert record.notes is None and record.structure == connector.to_record(original).structure  # no Li on a site
    assert volume_of(connector, entry) == volume_of(connector, original)


NOT_A_SPECIES_LIST = "structure not kept: 'species' is not a list of {name, chemical_symbols, concentration}"


@pytest.mark.parametrize(
    ("first", "first_note", "then", "then_note"),
    [
        ({"concentration": [1.0]}, None, {"concentration": [True]}, NOT_A_SPECIES_LIST),
        (
            {"chemical_symbols": [1]},
            "structure not kept: structure: '1' is not a chemical element",
            {"chemical_symbols": [True]},
            "structure not kept: structure: 'True' is not a chemical element",
        ),
        (
            {"concentration": [0.0]},
            "structure not kept: structure: site occupancies {'Li': 0.0} put no atom on the site",
            {"concentration": [-0.0]},
            "structure not kept: structure: site occupancies {'Li': -0.0} put no atom on the site",
        ),
    ],
)
def test_a_species_read_once_is_never_taken_for_another_it_equals(mp_catalog, first, first_note, then, then_note):
    """Species are read once per process, as providers list the same ones again and again: one that equals another
    read before is not taken for it where it is not the same (a JSON true equals 1 and 1.0, -0.0 equals 0.0)."""
    entry = json.loads(MP_PAGES[0].read_text())["data"][1]  # LiI: species Li and I, on 2 sites each
    connector = build_connector("optimade", mp_catalog, FetchRequest(everything=True))
    notes = []
    for edit in (first, then):
        edited = copy.deepcopy(entry)
        edited["attributes"]["species"][0] |= edit
        record = connector.to_record(edited)
        notes.append(record.notes)
    assert notes == [first_note, then_note]
    if then_note == NOT_A_SPECIES_LIST:  # (a JSON true is no 1.0: the atoms cannot be counted)
        assert record.structure is None and math.isnan(record.atoms_per_cell)


@pytest.mark.parametrize("feature", ["site_attachments", "implicit_atoms"])
def test_an_entry_with_atoms_off_its_sites_keeps_no_volume_per_site_and_no_structure(mp_catalog, feature):
    entry = json.loads(MATERIALS_CLOUD_PAGE.read_text())["data"][0]  # ordered: 46 atoms on 46 sites
    connector = build_connector("optimade", mp_catalog, FetchRequest(everything=True))
    assert len(volume_of(connector, entry)[0]) == 1
    entry["attributes"]["structure_features"] = [feature]  # e.g. CH4 as one C site with 4 H attached
    if feature == "site_attachments":
        entry["attributes"]["species"][0] |= {"attached": ["H"], "nattached": [4]}
    record = connector.to_record(entry)
    assert record.structure is None and record.nsites == 46 and math.isnan(record.atoms_per_cell)
    assert record.notes == f"structure not kept: it has atoms that are not on its sites ({feature})"
    refused = ["cannot convert 'angstrom**3/cell' to 'angstrom**3/atom' without the number of atoms"]
    assert volume_of(connector, entry) == ([], refused)


def test_nsites_must_agree_with_the_sites_listed(mp_catalog):
    entry = json.loads(MATERIALS_CLOUD_PAGE.read_text())["data"][0]
    connector = build_connector("optimade", mp_catalog, FetchRequest(everything=True))
    entry["attributes"]["nsites"] = 23
    with pytest.raises(RecordError, match="nsites = 23 but species_at_sites names 46 sites"):
        connector.to_record(entry)
    entry["attributes"]["nsites"] = True  # no count (a JSON boolean): the sites listed count
    assert connector.to_record(entry).nsites == 46
    entry["attributes"]["space_group_it_number"] = True  # no space group number: the record is quarantined
    with pytest.raises(RecordError, match="space_group_it_number True is not a space group number"):
        connector.to_record(entry)


def test_an_entrys_url_is_its_single_entry_endpoint_with_the_id_encoded(mp_catalog):
    entry = json.loads(MATERIALS_CLOUD_PAGE.read_text())["data"][0] | {"id": "cod/1000007#2?a b"}
    record = build_connector("optimade", mp_catalog, FetchRequest(everything=True)).to_record(entry)
    assert record.source_id == "cod/1000007#2?a b"
    assert record.source_url.endswith("/v1/structures/cod%2F1000007%232%3Fa%20b")


FLAGS = "(0 or 1, false or true): whether each lattice vector is periodic"


@pytest.mark.parametrize(
    ("dimension_types", "nperiodic", "pbc", "note"),
    [
        (None, 3, [True, True, True], None),
        (None, 0, [False, False, False], None),
        (
            None,
            2,
            None,
            "structure not kept: nperiodic_dimensions without dimension_types does not say which are periodic",
        ),
        ([1, 1, 0], 2, [True, True, False], None),
        ([1, 1], 3, None, f"structure not kept: dimension_types [1, 1] is not three flags {FLAGS}"),
        ("x", 3, None, f"structure not kept: dimension_types 'x' is not three flags {FLAGS}"),  # (was [True])
        ([1, 2, 1], 3, None, f"structure not kept: dimension_types [1, 2, 1] is not three flags {FLAGS}"),
    ],
)
def test_the_structures_periodicity_is_what_the_entry_says(mp_catalog, dimension_types, nperiodic, pbc, note):
    """The entry's dimension_types, else its nperiodic_dimensions; of other than three flags, no structure is kept
    (its document was written with the flags it had, which Structure.from_dict fails on), the note naming
    dimension_types (it named pymatgen's lattice pbc, which the entry does not have)."""
    entry = json.loads(MATERIALS_CLOUD_PAGE.read_text())["data"][0]
    entry["attributes"] |= {"dimension_types": dimension_types, "nperiodic_dimensions": nperiodic}
    record = build_connector("optimade", mp_catalog, FetchRequest(everything=True)).to_record(entry)
    assert record.notes == note
    assert (json.loads(record.structure)["lattice"]["pbc"] if record.structure else None) == pbc


def test_a_readmitted_cell_volume_is_divided_by_the_atoms_of_its_record_not_by_the_sites(tmp_path, store):
    # A steward's readmit rebuilds the value's record from the stored material row: nsites 102, and no structure
    entry = json.loads(MATERIALS_CLOUD_PAGE.read_text())["data"][1]  # disordered: 85.48 atoms on 102 sites
    atoms = pymatgen_structure(entry["attributes"]).composition.num_atoms

    def two_quarantined_volumes(page: dict) -> None:
        unreadable = page["data"][1]
        unreadable["attributes"]["_exmpl_band_gap"] = 1.0  # a valid value: the records are stored, volumes apart
        large = copy.deepcopy(unreadable)  # the cell 4 times as long: 1,154 A^3/atom, outside the bounds
        large["id"] = "251"
        for field in ("lattice_vectors", "cartesian_site_positions"):
            large["attributes"][field] = [[4 * x for x in row] for row in large["attributes"][field]]
        large["attributes"]["structure_features"] = ["assemblies"]  # (so no structure is kept to count atoms in)
        del unreadable["attributes"]["species"][0]["concentration"]  # atoms not counted
        page["data"] = [unreadable, large]

    fetch_edited_page(tmp_path, store, MATERIALS_CLOUD_PAGE, two_quarantined_volumes, FetchRequest(everything=True))
    rows = store.query("SELECT item, quarantine_id, raw FROM quarantine ORDER BY item")
    assert rows["item"].tolist() == [f"{id}:volume_per_atom" for id in ("250", "251")]
    assert store.query("SELECT count(*) FROM materials WHERE structure IS NULL").iloc[0, 0] == 2
    (unreadable, unreadable_raw), (large, large_raw) = rows[["quarantine_id", "raw"]].values.tolist()
    with pytest.raises(CurationError, match="without the number of atoms"):  # as the fetch refused it
        record_decision(store, "readmit", "ana", "checked", quarantine_id=unreadable)
    record_decision(store, "readmit", "ana", "counted", quarantine_id=unreadable, value=18.0, unit="angstrom**3/atom")
    cell = json.loads(large_raw)["value"] / 64  # the cell of the recorded entry
    assert json.loads(unreadable_raw)["value"] == pytest.approx(cell)
    record_decision(store, "readmit", "ana", "scaled", quarantine_id=large, value=cell, unit="angstrom**3/cell")
    volumes = store.query(
        "SELECT source_id, value FROM properties JOIN materials USING (record_id) "
        "WHERE property = 'volume_per_atom' ORDER BY source_id"
    )
    assert atoms == pytest.approx(85.48, abs=0.01)
    assert volumes.values.tolist() == [["250", 18.0], ["251", pytest.approx(cell / atoms)]]


def test_a_cell_volume_quarantined_by_an_older_matreg_keeps_its_id_and_is_readmitted_per_atom(tmp_path, store):
    # matreg before 2026-12-04 kept no atom count in a rejected value's payload; the id never hashed one
    entry = json.loads(MATERIALS_CLOUD_PAGE.read_text())["data"][1]  # disordered: 85.48 atoms on 102 sites
    atoms = pymatgen_structure(entry["attributes"]).composition.num_atoms

    def large_cell(page: dict) -> None:  # the cell 4 times as long: 1,154 A^3/atom, outside the bounds
        large = agreeing(page["data"][1])
        large["attributes"]["_exmpl_band_gap"] = 1.0
        for field in ("lattice_vectors", "cartesian_site_positions"):
            large["attributes"][field] = [[4 * x for x in row] for row in large["attributes"][field]]
        page["data"] = [large]

    def as_an_older_matreg_stored_it() -> None:  # the payload without the count; the id of source, item, payload
        for path in store.data_dir.glob("c*/**/quarantine.parquet"):
            rows = pq.read_table(path).to_pylist()
            for row in rows:
                row["raw"] = to_json({k: v for k, v in json.loads(row["raw"]).items() if k != "atoms_per_cell"})
                row["quarantine_id"] = hashlib.sha1(f"optimade\0{row['item']}\0{row['raw']}".encode()).hexdigest()
            pq.write_table(pyarrow.Table.from_pylist(rows, schema=pq.read_schema(path)), path)

    fetch_edited_page(tmp_path, store, MATERIALS_CLOUD_PAGE, large_cell, FetchRequest(everything=True))
    ((raw,),) = store.query("SELECT raw FROM quarantine").values.tolist()
    assert json.loads(raw)["atoms_per_cell"] == pytest.approx(atoms)
    as_an_older_matreg_stored_it()
    ((quarantine_id,),) = store.query("SELECT quarantine_id FROM quarantine").values.tolist()
    fetch_edited_page(tmp_path, store, MATERIALS_CLOUD_PAGE, large_cell, FetchRequest(everything=True))
    assert store.query("SELECT quarantine_id FROM quarantine").values.tolist() == [[quarantine_id]]  # the same
    as_an_older_matreg_stored_it()
    cell = json.loads(raw)["value"] / 64
    record_decision(store, "readmit", "ana", "scaled", quarantine_id=quarantine_id, value=cell, unit="angstrom**3/cell")
    value = store.query("SELECT value FROM properties WHERE property = 'volume_per_atom'").iloc[0, 0]
    assert value == pytest.approx(cell / atoms)  # by the stored structure's atoms, not the 102 sites


@pytest.mark.parametrize("others", ["kept", "dropped"])  # the record stored with a volume, or rejected whole
def test_a_quarantine_row_is_resolved_once_the_provider_gives_its_record_valid(tmp_path, store, others):
    def entry_with_gap(gap: float):
        def edit(page: dict) -> None:
            entry = page["data"][0]
            entry["attributes"]["_exmpl_band_gap"] = gap
            if others == "dropped":
                del entry["attributes"]["lattice_vectors"]  # (no cell volume)
            page["data"] = [entry]

        return edit

    def fetch_gap(gap: float) -> tuple[int, int]:
        fetch_edited_page(tmp_path, store, MATERIALS_CLOUD_PAGE, entry_with_gap(gap), FetchRequest(everything=True))
        return store.query("SELECT (SELECT count(*) FROM open_quarantine), (SELECT count(*) FROM quarantine)").iloc[0]

    assert fetch_gap(-1.0).tolist() == [1, 1]
    assert fetch_gap(-1.0).tolist() == [1, 1]  # read again as it was: still open
    assert fetch_gap(1.5).tolist() == [0, 1]  # the provider fixed it: resolved, kept as history
    assert fetch_gap(-1.0).tolist() == [1, 1]  # and broke it again
    assert store.query("SELECT record_id FROM open_quarantine").values.tolist() == [["optimade:903"]]


def test_an_entry_its_mapping_cannot_read_is_its_records_row_until_the_provider_gives_it_valid(tmp_path, store):
    def entry_with_formula(formula: str):
        def edit(page: dict) -> None:
            page["data"] = [page["data"][0]]
            page["data"][0]["attributes"]["chemical_formula_reduced"] = formula

        return edit

    def fetch_formula(formula: str) -> list[list]:
        fetch_edited_page(
            tmp_path, store, MATERIALS_CLOUD_PAGE, entry_with_formula(formula), FetchRequest(everything=True)
        )
        return store.query("SELECT item, record_id FROM open_quarantine").values.tolist()

    assert fetch_formula("Qq3ClNa4O12Si3") == [["903", "optimade:903"]]  # no element Qq: refused whole, by its id
    reason = store.query("SELECT reasons FROM quarantine").iloc[0, 0]
    assert list(reason) == ["unparseable formula 'Qq3ClNa4O12Si3': not elements: Qq0+"]
    assert fetch_formula("Al3ClNa4O12Si3") == []  # the provider fixed it: resolved
    assert store.query("SELECT count(*) FROM quarantine").iloc[0, 0] == 1  # kept as history


def test_a_record_rejected_whole_then_given_as_stored_is_written_once_to_resolve_its_row(tmp_path, store):
    page = json.loads(MATERIALS_CLOUD_PAGE.read_text(encoding="utf-8"))
    page["links"]["next"], page["meta"]["more_data_available"] = None, False
    page["data"] = [page["data"][0]]
    del page["data"][0]["attributes"]["lattice_vectors"]  # (no cell volume: a bad gap rejects the record whole)
    page_file = tmp_path / "page.json"

    def fetch_gap(server: ReplayServer, gap: float) -> list[int]:
        page["data"][0]["attributes"]["_exmpl_band_gap"] = gap
        page_file.write_text(json.dumps(page), encoding="utf-8")
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.root, "mcloud"))
        fetch(store, catalog, FetchRequest(everything=True))
        counts = "SELECT (SELECT count(*) FROM material_writes), (SELECT count(*) FROM open_quarantine)"
        return store.query(counts).iloc[0].tolist()

    with serve(OptimadeReplay(STRUCTURES, {0: page_file})) as server:  # one server: the same source_url each time
        assert fetch_gap(server, 1.5) == [1, 0]
        assert fetch_gap(server, -1.0) == [1, 1]  # rejected whole: nothing written, the row open
        assert fetch_gap(server, 1.5) == [2, 0]  # exactly as stored, written all the same: the row is resolved
        assert fetch_gap(server, 1.5) == [2, 0]  # unchanged, nothing open: not written


def test_a_record_whose_value_is_rejected_again_is_not_written_again(tmp_path, store):
    page = json.loads(MATERIALS_CLOUD_PAGE.read_text(encoding="utf-8"))
    page["links"]["next"], page["meta"]["more_data_available"] = None, False
    page["data"] = [page["data"][0]]
    page["data"][0]["attributes"]["_exmpl_band_gap"] = -1.0  # rejected; the cell volume is admitted
    (tmp_path / "page.json").write_text(json.dumps(page), encoding="utf-8")
    with serve(OptimadeReplay(STRUCTURES, {0: tmp_path / "page.json"})) as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.root, "mcloud"))
        reports = [fetch(store, catalog, FetchRequest(everything=True)) for _ in range(2)]
    assert [(report.n_stored, report.n_quarantined) for report in reports] == [(1, 1), (1, 1)]
    counts = "SELECT (SELECT count(*) FROM material_writes), (SELECT count(*) FROM open_quarantine)"
    assert store.query(counts).iloc[0].tolist() == [1, 1]  # the row still open, the record as stored


def test_only_fields_an_older_provider_knows_are_asked_for(tmp_path, store):
    # Materials Cloud's aiida-optimade speaks OPTIMADE 1.1: like optimade-python-tools servers it refuses standard
    # fields it does not know (v1.2's space_group_*) with 400, and ignores fields with other providers' prefixes.
    # Its /info/structures is assembled from the fields of its recorded page (real answer not recorded).
    page = json.loads(MATERIALS_CLOUD_PAGE.read_text(encoding="utf-8"))
    known = {"id", "type", *(name for entry in page["data"] for name in entry["attributes"])}
    path = "/optimade-sample/optimade/v1/structures"

    def route(request: Request) -> Reply:
        if request.path.endswith("/info/structures"):
            return Reply.json({"data": {"properties": {name: {} for name in known}}, "meta": page["meta"]})
        asked = request.query["response_fields"][0].split(",")
        unknown = [name for name in asked if not name.startswith("_") and name not in known]
        if unknown:
            detail = f"Unrecognised OPTIMADE field(s) in requested `response_fields`: {set(unknown)}."
            return Reply.json({"errors": [{"status": "400", "title": "Bad Request", "detail": detail}]}, 400)
        return Reply(200, MATERIALS_CLOUD_PAGE.read_bytes())

    with ReplayServer(route) as server:
        catalog = load_catalog(write_catalog(tmp_path / "mc.yaml", server.root + MATERIALS_CLOUD_BASE, "mcloud"))
        report = fetch(store, catalog, FetchRequest(filter='elements HAS ALL "Si","O"'), limit=2)
    assert (report.n_stored, report.n_quarantined) == (1, 1)  # entry 250 is refused, its structure not of its formula
    asked = server.requests[1].query["response_fields"][0].split(",")
    assert server.requests[1].path == path
    assert "space_group_it_number" not in asked and "space_group_symbol_hermann_mauguin" not in asked
    assert {"lattice_vectors", "species", "_mp_stability", "_jarvis_hse_gap"} <= set(asked)


def test_provider_prefixed_fields_give_values_methods_and_space_group(tmp_path, store):
    replay = OptimadeReplay("/optimade/v1/structures", {0: FIXTURES / "assembled_oqmd_page.json"})
    with serve(replay) as server:
        catalog = load_catalog(write_catalog(tmp_path / "oqmd.yaml", server.root + "/optimade/v1/", "oqmd"))
        report = fetch(store, catalog, FetchRequest(formulas=["NaAlH2CO5", "CaAl2SiH4O8"]))
    assert structure_requests(server)[0].query["filter"] == [
        '(chemical_formula_reduced="AlCH2NaO5") OR (chemical_formula_reduced="Al2CaH4O8Si")'
    ]
    assert (report.n_stored, report.n_values) == (2, 4)
    material = store.query("SELECT * FROM materials WHERE source_id = '16974'").iloc[0]
    assert (material.spacegroup_symbol, material.spacegroup_number) == ("Imma", 74)  # the number, from the symbol
    assert material.structure is None and pd.isna(material.nsites)
    values = store.query("SELECT * FROM properties WHERE record_id = 'optimade:16974'").set_index("property")
    assert values.loc["band_gap", "value"] == 5.255 and values.loc["band_gap", "unit"] == "eV"
    assert values.loc["formation_energy_per_atom", "value"] == pytest.approx(-2.0573961)
    assert set(values["method"]) == {"PBE(+U)"} == {load_field_map("oqmd").method}  # as OQMD's own API's values


def fetch_edited_page(tmp_path: Path, store: Store, page_file: Path, edit, request: FetchRequest, method=None):
    """Fetch one recorded page, as the only page, after `edit(page)` changed it; served from 127.0.0.1."""
    page = json.loads(page_file.read_text(encoding="utf-8"))
    page["links"]["next"], page["meta"]["more_data_available"] = None, False
    edit(page)
    (tmp_path / "page.json").write_text(json.dumps(page), encoding="utf-8")
    with serve(OptimadeReplay(STRUCTURES, {0: tmp_path / "page.json"})) as server:
        catalog = write_catalog(tmp_path / "edited.yaml", server.root, page["meta"]["provider"]["prefix"], method)
        return fetch(store, load_catalog(catalog), request)


def test_a_providers_fields_without_a_method_get_the_catalog_entrys(tmp_path, store):
    def add_alexandria_gap(page: dict) -> None:  # Alexandria serves one functional per base URL
        page["data"][0]["attributes"]["_alexandria_band_gap"] = 1.5

    request = FetchRequest(formulas=["NaAlH2CO5"])
    fetch_edited_page(tmp_path, store, FIXTURES / "assembled_oqmd_page.json", add_alexandria_gap, request, "PBEsol")
    values = store.query("SELECT property, method, value FROM properties WHERE record_id = 'optimade:16974'")
    assert sorted(values.values.tolist()) == [
        ["band_gap", "PBE(+U)", 5.255],  # a field naming its method keeps it
        ["band_gap", "PBEsol", 1.5],
        ["formation_energy_per_atom", "PBE(+U)", pytest.approx(-2.0573961)],
    ]


def test_jarvis_gaps_are_values_of_their_methods_and_not_computed_markers_are_absent(tmp_path, store):
    def add_jarvis_fields(page: dict) -> None:  # OQMD entry 16974 given JARVIS' fields, as its provider sends them
        page["data"][0]["attributes"] |= {
            "_jarvis_formation_energy_peratom": -1.25,
            "_jarvis_ehull": -99999,
            "_jarvis_optb88vdw_bandgap": -99999.0,
            "_jarvis_mbj_bandgap": 1.91,
            "_jarvis_hse_gap": -99999,
            "_jarvis_bulk_modulus_kv": "na",
        }

    request = FetchRequest(formulas=["NaAlH2CO5", "CaAl2SiH4O8"])
    report = fetch_edited_page(tmp_path, store, FIXTURES / "assembled_oqmd_page.json", add_jarvis_fields, request)
    assert (report.n_stored, report.n_values, report.n_quarantined) == (2, 6, 0)
    values = store.query(
        "SELECT property, method, value FROM properties WHERE record_id = 'optimade:16974' AND method NOT LIKE 'PBE%'"
    )
    assert sorted(values.values.tolist()) == [
        ["band_gap", "TBmBJ", 1.91],
        ["formation_energy_per_atom", "OptB88vdW", -1.25],
    ]


def test_each_materials_project_thermo_type_is_a_method_of_its_own(tmp_path, store):
    def add_thermo_types(page: dict) -> None:  # mp-1009 given r2SCAN blocks beside its GGA/GGA+U one
        attributes = page["data"][0]["attributes"]
        attributes["_mp_stability"] |= {
            "r2scan": {"formation_energy_per_atom": -1.05, "energy_above_hull": 0.02},
            "gga_gga+u_r2scan": {"formation_energy_per_atom": -1.15, "energy_above_hull": None},
        }

    report = fetch_edited_page(tmp_path, store, MP_PAGES[0], add_thermo_types, FetchRequest(elements=["N"]))
    assert report.n_quarantined == 0
    first = json.loads(MP_PAGES[0].read_text())["data"][0]
    values = store.query(
        "SELECT method, property, value FROM properties WHERE record_id = ? AND property <> 'volume_per_atom'",
        [f"optimade:{first['id']}"],
    )
    gga = first["attributes"]["_mp_stability"]["gga_gga+u"]
    assert sorted(values.values.tolist()) == [
        ["PBE(+U)", "energy_above_hull", gga["energy_above_hull"]],
        ["PBE(+U)", "formation_energy_per_atom", gga["formation_energy_per_atom"]],
        ["PBE(+U)/r2SCAN mixed", "formation_energy_per_atom", -1.15],
        ["r2SCAN", "energy_above_hull", 0.02],
        ["r2SCAN", "formation_energy_per_atom", -1.05],
    ]


def test_nomad_fields_in_si_units_are_harmonized(tmp_path, store):
    replay = OptimadeReplay("/prod/v1/optimade/v1/structures", {0: FIXTURES / "assembled_nomad_page.json"})
    with serve(replay) as server:
        catalog = load_catalog(write_catalog(tmp_path / "nomad.yaml", server.root + "/prod/v1/optimade/", "nmd"))
        report = fetch(store, catalog, FetchRequest(formulas=["GaTe", "HfSSe"]))
    assert (report.n_stored, report.n_values, report.unmapped) == (2, 2, {})
    gap = store.query("SELECT * FROM properties WHERE record_id = 'optimade:mp-10009'").iloc[0]
    assert (gap.property, gap.unit, gap.original_unit) == ("band_gap", "eV", "J")
    assert gap.value == pytest.approx(1.4387546173319994e-19 / 1.602176634e-19)  # 0.898 eV
    material = store.query("SELECT * FROM materials WHERE source_id = 'mp-1224282'").iloc[0]
    assert (material.spacegroup_symbol, material.spacegroup_number) == ("P3m1", 156)


@pytest.mark.parametrize("number", [231, 12.7])
def test_a_space_group_number_no_space_group_has_quarantines_the_entry_with_the_reason(tmp_path, store, number):
    def give_number(page: dict) -> None:
        page["data"][0]["attributes"]["_nmd_results_material_symmetry_space_group_number"] = number

    page = FIXTURES / "assembled_nomad_page.json"
    report = fetch_edited_page(tmp_path, store, page, give_number, FetchRequest(everything=True))
    assert (report.n_stored, report.n_quarantined) == (1, 1)
    rejected = store.query("SELECT item, reasons FROM quarantine").iloc[0]
    assert rejected["item"] == "mp-10009"
    assert list(rejected["reasons"]) == [
        f"_nmd_results_material_symmetry_space_group_number {number} is not a space group number (1 to 230)"
    ]
    kept = store.query("SELECT source_id, spacegroup_number FROM materials").values.tolist()
    assert kept == [["mp-1224282", 156]]


def test_a_nomad_entry_not_computed_by_dft_is_refused_as_by_the_nomad_connector(tmp_path, store):
    def give_methods(page: dict) -> None:
        page["data"][0]["attributes"]["_nmd_results_method_method_name"] = "GW"
        page["data"][1]["attributes"]["_nmd_results_method_method_name"] = "DFT"

    page = FIXTURES / "assembled_nomad_page.json"
    report = fetch_edited_page(tmp_path, store, page, give_methods, FetchRequest(everything=True))
    assert (report.n_stored, report.n_quarantined) == (1, 1)
    assert store.table("materials")["source_id"].tolist() == ["mp-1224282"]
    rejected = store.query("SELECT item, reasons FROM quarantine").iloc[0]
    assert rejected["item"] == "mp-10009"
    assert list(rejected["reasons"]) == [
        "_nmd_results_method_method_name 'GW' is not DFT: only DFT entries are fetched"
    ]
    connector = build_connector("optimade", load_catalog(tmp_path / "edited.yaml"), FetchRequest(everything=True))
    assert "_nmd_results_method_method_name" in connector.response_fields.split(",")  # asked of every provider


HOMO_LUMO = "a finite system: its gap is a HOMO-LUMO gap, not a band gap"


@pytest.mark.parametrize(
    "periodicity", [{"dimension_types": [0, 0, 0], "nperiodic_dimensions": 0}, {"nperiodic_dimensions": 0}]
)
def test_a_molecules_gaps_are_left_out_with_a_note_and_a_crystal_keeps_its_gap(tmp_path, store, periodicity):
    def molecule_and_crystal(page: dict) -> None:
        molecule, crystal = (entry["attributes"] for entry in (page["data"][0], agreeing(page["data"][1])))
        molecule |= {"dimension_types": None} | periodicity  # 903 as a molecule in a box
        molecule |= {"_exmpl_band_gap": 2.5, "_jarvis_mbj_bandgap": 3.0, "_jarvis_formation_energy_peratom": -1.25}
        crystal["_exmpl_band_gap"] = 1.5

    request = FetchRequest(everything=True)
    report = fetch_edited_page(tmp_path, store, MATERIALS_CLOUD_PAGE, molecule_and_crystal, request)
    assert (report.n_stored, report.n_quarantined) == (2, 0)
    values = store.query("SELECT record_id, property, value FROM properties WHERE property <> 'volume_per_atom'")
    assert sorted(values.values.tolist()) == [
        ["optimade:250", "band_gap", 1.5],
        ["optimade:903", "formation_energy_per_atom", -1.25],
    ]
    notes = store.query("SELECT source_id, notes FROM materials").set_index("source_id")["notes"]
    assert notes["903"] == f"band_gap left out: it is periodic in no direction, {HOMO_LUMO}"
    assert pd.isna(notes["250"])


@pytest.mark.parametrize("structural_type", ["molecule / cluster", "atom"])
def test_a_nomad_entry_classified_as_finite_keeps_no_band_gap(tmp_path, store, structural_type):
    def classify(page: dict) -> None:
        page["data"][0]["attributes"]["_nmd_results_material_structural_type"] = structural_type
        page["data"][1]["attributes"]["_nmd_results_material_structural_type"] = "bulk"

    page = FIXTURES / "assembled_nomad_page.json"
    report = fetch_edited_page(tmp_path, store, page, classify, FetchRequest(everything=True))
    assert (report.n_stored, report.n_quarantined, report.unmapped) == (1, 1, {})
    assert store.query("SELECT record_id, property FROM properties").values.tolist() == [
        ["optimade:mp-1224282", "band_gap"]
    ]
    rejected = store.query("SELECT item, reasons FROM open_quarantine").iloc[0]
    assert rejected["item"] == "mp-10009"
    assert list(rejected["reasons"]) == [
        "no property values",
        f"band_gap left out: NOMAD's structural_type is {structural_type!r}, {HOMO_LUMO}",
    ]
    connector = build_connector("optimade", load_catalog(tmp_path / "edited.yaml"), FetchRequest(everything=True))
    assert "_nmd_results_material_structural_type" in connector.response_fields.split(",")


@pytest.mark.parametrize("structural_type, volume_kept", [("surface", False), ("unavailable", False), ("bulk", True)])
def test_the_cell_of_an_entry_nomad_does_not_classify_as_bulk_gives_no_volume(
    tmp_path, store, structural_type, volume_kept
):
    def classify(page: dict) -> None:  # a slab in a box is still periodic in 3D by its code's flags
        page["data"] = [page["data"][0]]
        page["data"][0]["attributes"]["_nmd_results_material_structural_type"] = structural_type
        page["data"][0]["attributes"]["_exmpl_band_gap"] = 1.5

    fetch_edited_page(tmp_path, store, MATERIALS_CLOUD_PAGE, classify, FetchRequest(everything=True))
    properties = store.query("SELECT property FROM properties ORDER BY 1")["property"].tolist()
    assert properties == (["band_gap", "volume_per_atom"] if volume_kept else ["band_gap"])


def test_malformed_records_are_quarantined_with_their_reason(tmp_path, store):
    replay = OptimadeReplay(STRUCTURES, {0: FIXTURES / "assembled_malformed_page.json"})
    with serve(replay) as server:
        report = fetch(
            store, load_catalog(write_catalog(tmp_path / "c.yaml", server.root, "mp")), FetchRequest(everything=True)
        )
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (3, 1, 2)
    assert store.query("SELECT count(*) FROM open_quarantine").iloc[0, 0] == 2  # until the provider fixes them
    named = store.query("SELECT item, record_id FROM quarantine ORDER BY item").values.tolist()
    assert named == [["mp-13480", "optimade:mp-13480"], ["mp-570935", "optimade:mp-570935"]]  # (their ids read)
    reasons = store.query("SELECT item, reasons FROM quarantine").set_index("item")["reasons"]
    assert reasons["mp-13480"][0].startswith("not an OPTIMADE structure entry")
    assert "unparseable formula 'ILq'" in reasons["mp-570935"][0]
    assert "filter" not in structure_requests(server)[0].query  # --all asks for every structure


@pytest.mark.parametrize("depth", [300, 900])
def test_an_entry_nested_deeper_than_orjson_writes_is_quarantined_with_its_payload(tmp_path, store, depth):
    # orjson writes 254 levels at most: the quarantine row of such an entry failed the run with a traceback
    nested = json.loads("[" * depth + "]" * depth)  # (orjson reads 1024 levels: the page is read by it)

    def adding_a_deep_entry(page: dict) -> None:
        page["data"].append({"id": "q1", "type": "structures", "attributes": {"nsites": 1, "_mp_x": nested}})

    report = fetch_edited_page(tmp_path, store, MP_PAGES[0], adding_a_deep_entry, FetchRequest(everything=True))
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (4, 3, 1)
    item, raw, reasons = store.query("SELECT item, raw, reasons FROM quarantine").iloc[0]
    assert item == "q1" and reasons[0].startswith("structure has no chemical formula")
    written = '{"attributes":{"_mp_x":' + "[" * depth + "]" * depth + ',"nsites":1},"id":"q1","type":"structures"}'
    assert raw == written


LONE_SURROGATES = {  # where an entry holds a lone surrogate: what of it is edited so, the path its reason names
    "formula": ({"attributes": {"chemical_formula_reduced": "Be2\ud800MgN2"}}, "attributes.chemical_formula_reduced"),
    "id": ({"id": "mp-\ud800"}, "id"),
    "field name": ({"attributes": {"_mp_\ud800": 1}}, "attributes._mp_\\ud800"),
    "space group": ({"attributes": {"space_group_it_number": 1, "space_group_symbol_hermann_mauguin": "P1\udc00"}},
                    "attributes.space_group_symbol_hermann_mauguin"),
    "element": ({"attributes": {"elements": ["Be", "Mg\ud800", "N"]}}, "attributes.elements[1]"),
}  # fmt: skip


def merged(document: dict, edit: dict) -> dict:
    """`document` with `edit`'s values, those of a dict merged into its own."""
    return document | {
        key: merged(document[key], value) if isinstance(value, dict) else value for key, value in edit.items()
    }


@pytest.mark.parametrize("where", LONE_SURROGATES)
def test_an_entry_with_a_lone_surrogate_is_quarantined_and_the_others_stored(tmp_path, store, where):
    # "\ud800" alone is no Unicode: orjson refuses the page, the json module reads it; the string failed the run as
    # it was written (a traceback: the store, its quarantine row's payload and reason)
    edit, path = LONE_SURROGATES[where]
    entry = merged(json.loads(MP_PAGES[0].read_text(encoding="utf-8"))["data"][0], edit)

    def holding_a_lone_surrogate(page: dict) -> None:
        page["data"][0] = entry

    report = fetch_edited_page(tmp_path, store, MP_PAGES[0], holding_a_lone_surrogate, FetchRequest(everything=True))
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (3, 2, 1)
    stored = sorted(store.query("SELECT record_id FROM materials")["record_id"])
    assert stored == ["optimade:mp-570935", "optimade:mp-5938"]
    item, record_id, raw, reasons = store.query("SELECT item, record_id, raw, reasons FROM quarantine").iloc[0]
    assert list(reasons) == [f"not valid Unicode: a lone surrogate at {path}"]
    assert (item, record_id) == (("mp-\\ud800", None) if where == "id" else ("mp-11917", "optimade:mp-11917"))
    assert json.loads(raw) == entry  # (its escapes written as received)


def test_a_lone_surrogate_outside_the_entries_fails_the_run_naming_where(tmp_path, store):
    def linking_to_no_unicode(page: dict) -> None:
        page["links"]["next"] = "/v1/structures?x=\ud800"

    with pytest.raises(SourceError) as error:
        fetch_edited_page(tmp_path, store, MP_PAGES[0], linking_to_no_unicode, FetchRequest(everything=True))
    assert str(error.value) == "not valid Unicode: a lone surrogate at links.next of the page"
    assert store.query("SELECT status FROM fetch_runs")["status"].tolist() == ["failed"]


def test_a_provider_with_more_data_and_no_way_to_it_ends_the_run_with_what_it_gave(tmp_path, store):
    # links.next "MUST be null or omitted if there is no additional data, or if there is no way to fetch additional
    # data" (OPTIMADE v1.2): a provider capping its results; the run keeps the page and says what was left
    def no_way_on(page: dict) -> None:
        page["meta"] |= {"more_data_available": True, "data_returned": 9}

    report = fetch_edited_page(tmp_path, store, MP_PAGES[0], no_way_on, FetchRequest(everything=True))
    assert (report.status, report.n_fetched, report.n_stored, report.n_available) == ("complete", 3, 3, 9)


@pytest.mark.parametrize("said", [1e300, 10**19, 10**400], ids=["1e300", "10**19", "10**400"])
def test_a_count_of_matches_past_what_a_count_holds_is_unknown(tmp_path, store, said):
    # pyarrow refused it as the run was recorded (OverflowError): a traceback, the run lost
    def counting(page: dict) -> None:
        page["meta"]["data_returned"] = said

    report = fetch_edited_page(tmp_path, store, MP_PAGES[0], counting, FetchRequest(everything=True))
    assert (report.status, report.n_fetched, report.n_stored, report.n_available) == ("complete", 3, 3, None)
    assert store.query("SELECT n_available FROM fetch_runs")["n_available"].isna().all()


@pytest.mark.parametrize("link", [{"href": 12}, ["http://x"]], ids=["href-number", "list"])
def test_a_next_link_that_is_no_url_fails_the_run_naming_it(tmp_path, store, link):
    def linking(page: dict) -> None:
        page["links"]["next"] = link

    with pytest.raises(SourceError, match="^the page's next link is no URL: links.next"):
        fetch_edited_page(tmp_path, store, MP_PAGES[0], linking, FetchRequest(everything=True))
    assert store.query("SELECT status FROM fetch_runs")["status"].tolist() == ["failed"]


def test_a_429_with_retry_after_is_honoured_then_succeeds(store, reference_catalog, reference_server):
    reference_server.fail(STRUCTURES, 429, retry_after=1)
    report = fetch(store, reference_catalog, NELEMENTS_2)
    assert report.n_fetched == 15 and reference_server.hits(STRUCTURES) == 5


def test_a_persistent_503_fails_the_run_and_leaves_the_store_as_before(store, reference_catalog, reference_replay):
    fetch(store, reference_catalog, NELEMENTS_2)
    before = visible_tables(store)
    reference_replay.broken = {4}
    with pytest.raises(SourceError, match="HTTP 503"):
        fetch(store, reference_catalog, NELEMENTS_2)
    assert_failed_without_trace(store, before, "HTTP 503")


def test_an_interrupted_run_resumes_with_exactly_the_records_of_a_clean_run(
    tmp_path, reference_catalog, reference_server, reference_replay
):
    clean = Store(tmp_path / "clean")
    fetch(clean, reference_catalog, NELEMENTS_2)
    resumed = Store(tmp_path / "resumed")
    reference_replay.broken = {8}  # pages at offsets 0 and 4 are staged, then page 3 keeps failing
    with pytest.raises(SourceError, match="HTTP 503"):
        fetch(resumed, reference_catalog, NELEMENTS_2)
    assert len(resumed.table("materials")) == 0
    reference_replay.broken.clear()
    asked_before = len(reference_replay.offsets(reference_server))
    report = fetch(resumed, reference_catalog, NELEMENTS_2, resume=True)
    assert reference_replay.offsets(reference_server)[asked_before:] == [8, 12]  # staged pages not fetched again
    assert report.resumed and report.n_fetched == 15
    for table, columns in (("materials", ["record_id", "formula"]), ("properties", ["record_id", "property", "value"])):
        assert resumed.table(table)[columns].sort_values(columns).values.tolist() == (
            clean.table(table)[columns].sort_values(columns).values.tolist()
        )
    assert resumed.table("fetch_runs")["status"].tolist() == ["complete"]


def test_a_resume_is_refused_while_the_catalog_entry_differs_from_the_committed_pages(
    tmp_path, store, reference_server, reference_replay
):
    """The catalog's method given after two pages were committed: the resume would store the rest by another method
    in the same run; it is refused (nothing read), and resumes once the entry is as it was."""
    path = write_catalog(tmp_path / "catalog.yaml", reference_server.root, "exmpl")
    reference_replay.broken = {8}
    with pytest.raises(SourceError, match="HTTP 503"):
        fetch(store, load_catalog(path), NELEMENTS_2)
    reference_replay.broken.clear()
    (run_id,) = store.staged_runs()
    changed = load_catalog(write_catalog(tmp_path / "catalog.yaml", reference_server.root, "exmpl", method="SCAN"))
    asked_before = len(reference_replay.offsets(reference_server))
    with pytest.raises(ConfigError, match=f"^the catalog entry of 'optimade' \\(method\\) changed since run {run_id}"):
        fetch(store, changed, NELEMENTS_2, resume_or_start=True)
    assert len(reference_replay.offsets(reference_server)) == asked_before and list(store.staged_runs()) == [run_id]
    report = fetch(store, load_catalog(write_catalog(path, reference_server.root, "exmpl")), NELEMENTS_2, resume=True)
    assert (report.run_id, report.n_fetched) == (run_id, 15)


def test_a_rejected_filter_is_a_clear_error(tmp_path, store):
    def route(request: Request) -> Reply:
        return Reply(400, BAD_FILTER_REPLY.read_bytes())  # what the reference server answers 'nelements>'

    with ReplayServer(route) as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.root, "exmpl"))
        with pytest.raises(SourceError, match="HTTP 400") as error:
            fetch(store, catalog, FetchRequest(filter="nelements>"))
    assert "/v1/structures?filter=nelements%3E" in str(error.value)
    assert ": Unable to parse filter nelements>. Lark traceback: Unexpected end-of-input." in str(error.value)
    assert "retries" not in str(error.value)
    assert len(structure_requests(server)) == 1  # a client error is not retried
    assert store.query("SELECT status FROM fetch_runs")["status"].tolist() == ["failed"]


def test_dry_run_reports_the_request_and_the_total(store, reference_catalog):
    report = run_ingest(build_connector("optimade", reference_catalog, NELEMENTS_2), store, dry_run=True)
    assert report.n_available == 15 and report.n_fetched == 4
    assert report.request.startswith(
        "GET http://127.0.0.1:"
    ) and "/v1/structures?filter=nelements>=2&page_limit=4&" in (report.request)
    assert not store.exists()


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (FetchRequest(formulas=["SiO2"]), 'chemical_formula_reduced="O2Si"'),
        (FetchRequest(formulas=["Li2O2"]), 'chemical_formula_reduced="LiO"'),  # reduced as OPTIMADE does: by the gcd
        (FetchRequest(elements=["o", "Si"]), 'elements HAS ALL "O","Si" AND nelements=2'),
        (FetchRequest(ids=['mp-"1']), 'id="mp-\\"1"'),
        (FetchRequest(ids=["mp-1"], filter="nsites<10"), '(id="mp-1") AND (nsites<10)'),
        (FetchRequest(everything=True), None),
    ],
)
def test_fetch_requests_become_optimade_filters(request_, expected):
    assert build_filter(request_) == expected


def test_nothing_asked_is_a_clear_error():
    with pytest.raises(ConfigError, match="nothing asked of OPTIMADE"):
        build_filter(FetchRequest())


# --- the real reference server (optimade-python-tools 1.5.0) --------------------------------------------------------


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    python = server_python()
    if python is None:
        pytest.skip(
            f"{SERVER_PYTHON_ENV} is not set: install the reference server with "
            "`python3 -m venv /work/optimade-venv && /work/optimade-venv/bin/pip install 'optimade[server]==1.5.0'` "
            f"and set {SERVER_PYTHON_ENV}=/work/optimade-venv/bin/python"
        )
    with ReferenceServer(python, tmp_path_factory.mktemp("optimade-server")) as server:
        yield server


@pytest.fixture
def live_catalog(tmp_path, live_server):
    return load_catalog(write_catalog(tmp_path / "live.yaml", live_server.root, "exmpl"))


def test_reference_server_every_page_of_a_filter(store, live_catalog):
    report = fetch(store, live_catalog, NELEMENTS_2)
    assert (report.n_fetched, report.n_available, report.n_stored, report.n_quarantined) == (15, 15, 12, 3)
    material = store.query("SELECT * FROM materials WHERE source_id = 'mpf_30'").iloc[0]
    assert (material.formula, material.nsites) == ("Ac2O3", 5)
    assert len(Structure.from_dict(json.loads(material.structure))) == 5


ALL_REFERENCE_IDS = sorted(
    ["mpf_1", "mpf_2", "mpf_3", "mpf_23", "mpf_30", "mpf_110", "mpf_200", "mpf_220", "mpf_259", "mpf_272"]
    + ["mpf_276", "mpf_281", "mpf_446", "mpf_551", "mpf_632", "mpf_3803", "mpf_3819"]
)


@pytest.mark.parametrize(
    ("request_", "ids"),
    [
        (FetchRequest(formulas=["O3Ac2"]), ["mpf_30"]),
        (FetchRequest(elements=["Ac", "O"]), ["mpf_30"]),
        (FetchRequest(ids=["mpf_1", "mpf_30"]), ["mpf_1", "mpf_30"]),
        (FetchRequest(everything=True, page_size=5), ALL_REFERENCE_IDS),
    ],
)
def test_reference_server_answers_each_kind_of_selection(store, live_catalog, request_, ids):
    report = fetch(store, live_catalog, request_)
    stored = store.query("SELECT source_id FROM materials")["source_id"].tolist()
    quarantined = store.query("SELECT item FROM quarantine")["item"].tolist()
    assert report.n_fetched == len(ids) and sorted(stored + quarantined) == ids


def test_reference_server_is_refused_by_a_catalog_entry_of_another_provider(tmp_path, store, live_server):
    cod = load_catalog(write_catalog(tmp_path / "cod.yaml", live_server.root, "cod"))
    with pytest.raises(SourceError, match="is OPTIMADE provider 'exmpl' \\(Example provider, https://example.com/\\)"):
        fetch(store, cod, NELEMENTS_2)
    assert len(store.table("materials")) == 0
    assert store.query("SELECT status FROM fetch_runs")["status"].tolist() == ["failed"]


def test_reference_server_rejects_a_bad_filter(store, live_catalog):
    with pytest.raises(SourceError, match="HTTP 400: Unable to parse filter nelements>"):
        fetch(store, live_catalog, FetchRequest(filter="nelements>"))


# --- counts of matching entries that are not the query's (meta.data_returned) ---------------------------------------

COUNTED = {  # meta.data_returned of the four reference pages (15 entries, 4 a page at offsets 0, 4, 8, 12) as sent by
    "whole": [15, 15, 15, 15],  # the specification (the reference server): the entries matching the filter
    "per page": [4, 4, 4, 3],  # qmpy's OQMD view before its 2021 fix (qmpy issue 116): min(limit, count - offset)
    "remaining": [15, 11, 7, 3],  # optimade-python-tools' MongoDB backend before its 2022 fix: count - offset
}


def counted_replay(tmp_path: Path, counts: list[int], empty: int | None = None) -> OptimadeReplay:
    """The recorded reference pages, each with meta.data_returned as `counts` say; with an `empty` count, the last
    page links an empty page (offset 16) stating that count."""
    recorded = {offset: json.loads(path.read_text(encoding="utf-8")) for offset, path in REFERENCE_PAGES.items()}
    if empty is not None:
        recorded[12]["links"]["next"] = recorded[8]["links"]["next"].replace("page_offset=12", "page_offset=16")
        recorded[16] = copy.deepcopy(recorded[12]) | {"data": [], "links": {"next": None}}
    pages = {}
    for (offset, page), count in zip(recorded.items(), [*counts, empty][: len(recorded)], strict=True):
        page["meta"]["data_returned"] = count
        pages[offset] = tmp_path / f"page_at_{offset}.json"
        pages[offset].write_text(json.dumps(page), encoding="utf-8")
    return OptimadeReplay(STRUCTURES, pages, "http://127.0.0.1:5077", FIXTURES / "ref_info_structures.json")


@pytest.mark.parametrize(
    ("counting", "totals"),
    [("whole", [15, 15, 15, 15]), ("per page", [None, None, None, None]), ("remaining", [15, None, None, None])],
)
def test_a_count_of_the_pages_entries_or_of_those_left_is_no_count_of_the_query(tmp_path, store, counting, totals):
    """A page's count (each page: 4, 4, 4, 3) and a count from its offset on (from the second page: 11, 7, 3) are
    not the 15 entries that match: the progress bar's total (each page's), the run's count (its last page's) and a
    resume's note of a changed count took them as that. Unknown instead; the specification's count as it was."""
    with serve(counted_replay(tmp_path, COUNTED[counting])) as server:
        catalog = load_catalog(write_catalog(tmp_path / "catalog.yaml", server.root, "exmpl"))
        assert [page.total for page in build_connector("optimade", catalog, NELEMENTS_2).pages()] == totals
        report = fetch(store, catalog, NELEMENTS_2)
    assert (report.n_fetched, report.n_available) == (15, totals[-1])
    assert store.query("SELECT n_available FROM fetch_runs")["n_available"].tolist() == [totals[-1] or pd.NA]


def test_a_dry_run_of_a_provider_counting_its_pages_does_not_say_its_first_page_is_every_match(tmp_path, store):
    # `matreg fetch --dry-run` said "(4 records available); every record mapped" of a query of 15
    with serve(counted_replay(tmp_path, COUNTED["per page"])) as server:
        catalog = load_catalog(write_catalog(tmp_path / "catalog.yaml", server.root, "exmpl"))
        report = run_ingest(build_connector("optimade", catalog, NELEMENTS_2), store, dry_run=True)
    assert (report.n_fetched, report.n_available) == (4, None)


@pytest.mark.parametrize(
    ("counting", "empty", "total"), [("whole", 15, 15), ("per page", 0, None), ("remaining", 0, None)]
)
def test_an_empty_page_linked_after_the_last_entries_counts_as_the_page_before_shows(
    tmp_path, store, counting, empty, total
):
    """A provider linking an empty page (offset 16) after its 15 entries: counting each page's entries or those from
    the offset on, it says 0 there, which the run took as its count (fetch_runs.n_available 0 of 15 read); counting
    as the specification says, 15, fewer than the offset the link names, which stands."""
    with serve(counted_replay(tmp_path, COUNTED[counting], empty)) as server:
        catalog = load_catalog(write_catalog(tmp_path / "catalog.yaml", server.root, "exmpl"))
        totals = [page.total for page in build_connector("optimade", catalog, NELEMENTS_2).pages()]
        report = fetch(store, catalog, NELEMENTS_2)
    assert totals[-1] == total and len(totals) == 5
    assert (report.n_fetched, report.n_available) == (15, total)
    assert store.query("SELECT n_available FROM fetch_runs")["n_available"].tolist() == [total or pd.NA]


@pytest.mark.parametrize(("counting", "broken"), [("per page", 12), ("remaining", 8), ("remaining", 4)])
def test_a_resume_of_a_provider_counting_a_page_or_the_entries_left_notes_no_changed_count(
    tmp_path, store, counting, broken
):
    """Resumed at its last page, a page-counting provider says 3 where the committed pages said 4; at offset 8, one
    counting from the offset says 7 where the page before said 11; at offset 4, in the listing's first half, 11 where
    the first page, the one committed page, said 15 (the resume's cursor says so): no count changed, none is noted."""
    replay = counted_replay(tmp_path, COUNTED[counting])
    replay.broken = {broken}
    with serve(replay) as server:
        catalog = load_catalog(write_catalog(tmp_path / "catalog.yaml", server.root, "exmpl"))
        with pytest.raises(SourceError, match="HTTP 503"):
            fetch(store, catalog, NELEMENTS_2)
        replay.broken.clear()
        report = fetch(store, catalog, NELEMENTS_2, resume=True)
    assert (report.n_fetched, report.n_available, report.available_counts) == (15, None, None)


@pytest.mark.parametrize(
    ("counting", "carried", "staged_before"),
    [("whole", [15, 15, 15], [15, 15, 15]), ("remaining", [None, None, None], [11, None, None])],
)
def test_a_cursor_without_the_count_of_the_page_before_resumes_as_the_first_page_of_a_process(
    tmp_path, counting, carried, staged_before
):
    """A resume cursor carries its page's count, which tells the next page's count from the offset on (11 after 15
    and 4 entries); one staged by a matreg whose cursors did not carry it still resumes, its first page's count judged
    by the page alone, as it was."""
    with serve(counted_replay(tmp_path, COUNTED[counting])) as server:
        catalog = load_catalog(write_catalog(tmp_path / "catalog.yaml", server.root, "exmpl"))
        cursor = next(build_connector("optimade", catalog, NELEMENTS_2).pages()).cursor
        assert cursor[COUNTED_KEY] == {"stated": COUNTED[counting][0], "entries": 4, "reach": 4}
        totals = [[page.total for page in build_connector("optimade", catalog, NELEMENTS_2).pages(cursor)]]
        del cursor[COUNTED_KEY]
        totals.append([page.total for page in build_connector("optimade", catalog, NELEMENTS_2).pages(cursor)])
    assert totals == [carried, staged_before]


def test_a_one_page_query_counts_its_pages_entries(tmp_path, store):
    def counting_its_entries(page: dict) -> None:
        page["meta"]["data_returned"] = len(page["data"])

    report = fetch_edited_page(tmp_path, store, MP_PAGES[0], counting_its_entries, FetchRequest(everything=True))
    assert (report.n_fetched, report.n_available) == (3, 3)
