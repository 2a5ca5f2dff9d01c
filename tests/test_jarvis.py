"""matreg's JARVIS-DFT connector over real HTTP: the dft_3d bulk zip served on 127.0.0.1 at figshare's path."""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_failed_without_trace, visible_tables
from pymatgen.core import Lattice, Structure
from replay import ReplayServer, Reply, Request

from matreg.catalog import Catalog, load_catalog
from matreg.errors import ConfigError, DroppedFields, RecordError, SourceError, SourceUnavailable
from matreg.fieldmap import load_field_map
from matreg.ingest import run_ingest
from matreg.resources import resource_path
from matreg.sources import FetchRequest, build_connector
from matreg.sources.jarvis import jarvis_structure
from matreg.store import Store

FIXTURE = Path(__file__).parent / "fixtures" / "jarvis" / "jdft_3d-9-24-2025.json.zip"
MEMBER = "jdft_3d-9-24-2025.json"
DOWNLOAD = "/files/64391379"  # jarvis-tools 2026.6.12: https://ndownloader.figshare.com/files/64391379
JIDS = [
    "JVASP-1002", "JVASP-86097", "JVASP-107", "JVASP-91", "JVASP-32", "JVASP-110",
    "JVASP-96", "JVASP-5155", "JVASP-48055", "JVASP-9902", "JVASP-12064", "JVASP-41",
]  # fmt: skip
NO_TBMBJ = {"JVASP-86097", "JVASP-48055", "JVASP-9902"}  # mbj_bandgap "na"


def fixture_records() -> list[dict]:
    return json.loads(zipfile.ZipFile(FIXTURE).read(MEMBER))


def zipped(records: list[dict], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    return zip_of(json.dumps(records).encode(), compression)


def zip_of(member: bytes, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        archive.writestr(MEMBER, member)
    return buffer.getvalue()


def first_half(body: bytes) -> bytes:
    """A download broken off in the middle (of the member's data, for the fixture's zips)."""
    return body[: len(body) // 2]


@dataclass
class Figshare:
    """figshare's download path, answering whatever zip the test puts in `body`."""

    body: bytes
    sent_bytes: int | None = None  # the body's bytes sent before the connection closes (None: all)
    later: list[bytes] = field(default_factory=list)  # the bodies of the next downloads, one each (a file that changes)

    def route(self, request: Request) -> Reply:
        if request.path != DOWNLOAD:
            return Reply(404, b"Not Found", "text/plain")
        reply = Reply(200, self.body, "application/zip", sent_bytes=self.sent_bytes)
        if self.later:
            self.body = self.later.pop(0)
        return reply


@pytest.fixture
def figshare() -> Figshare:
    return Figshare(FIXTURE.read_bytes())


@pytest.fixture
def server(figshare):
    with ReplayServer(figshare.route) as replay:
        yield replay


def jarvis_catalog(tmp_path: Path, server: ReplayServer, *, cache: bool = True) -> Catalog:
    return load_catalog(jarvis_catalog_file(tmp_path, server, cache=cache))


def jarvis_catalog_file(tmp_path: Path, server: ReplayServer, *, cache: bool = True) -> Path:
    """A catalog file whose jarvis source downloads from `server`, with fast retries."""
    path = tmp_path / f"catalog-{cache}.yaml"
    path.write_text(
        "sources:\n"
        "  jarvis:\n"
        "    title: NIST JARVIS-DFT dft_3d (local replay)\n"
        "    connector: jarvis\n"
        f"    base_url: {server.root}{DOWNLOAD}\n"
        "    provenance: dft\n"
        "    license: CC-BY-4.0\n"
        "    citation: Choudhary et al., npj Comput. Mater. 6, 173 (2020)\n"
        "    database_version: jdft_3d-9-24-2025\n"
        f"    http: {{retries: 3, backoff_s: 0, jitter_s: 0, timeout_s: 5, cache: {str(cache).lower()}}}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def catalog(tmp_path, server) -> Catalog:
    return jarvis_catalog(tmp_path, server)


def fetch(store: Store, catalog: Catalog, resume: bool = False, **request):
    connector = build_connector("jarvis", catalog, FetchRequest(**request), cache_path=store.cache_path)
    return run_ingest(connector, store, resume=resume)


def test_the_bulk_file_is_downloaded_once_and_cut_into_resumable_pages(store, catalog, server):
    connector = build_connector("jarvis", catalog, FetchRequest(everything=True, page_size=5))
    pages = list(connector.pages())
    assert [page.cursor for page in pages] == [
        {"next_index": 5, "member": MEMBER},
        {"next_index": 10, "member": MEMBER},
        None,
    ]
    assert [page.total for page in pages] == [None, None, 12]
    assert [[item.item_id for item in page.items] for page in pages] == [JIDS[:5], JIDS[5:10], JIDS[10:]]
    assert pages[1].request.endswith(f"{DOWNLOAD} (zip member {MEMBER}, records from #5)")
    last = list(connector.pages({"next_index": 10, "member": MEMBER}))
    assert [item.item_id for item in last[0].items] == ["JVASP-12064", "JVASP-41"]

    report = fetch(store, catalog, everything=True, page_size=5)
    assert (report.n_fetched, report.n_stored, report.n_quarantined, report.n_available) == (12, 12, 0, 12)
    assert len(server.requests) == 3  # two pages() walks above and the run: one GET each, no paging requests
    request = server.requests[-1]
    assert (request.method, request.path, request.query) == ("GET", DOWNLOAD, {})
    assert request.headers["User-Agent"].startswith("matreg/")
    assert sorted(store.table("materials")["source_id"]) == sorted(JIDS)  # one record per entry, whatever its methods
    gaps = store.query("SELECT method FROM properties WHERE property = 'band_gap'")
    assert gaps.groupby("method").size().to_dict() == {"HSE06": 1, "OptB88vdW": 12, "TBmBJ": 12 - len(NO_TBMBJ)}


def test_values_are_in_canonical_units_with_method_and_provenance(store, catalog):
    fetch(store, catalog, ids=["JVASP-1002", "JVASP-5155"])
    values = store.query(
        "SELECT record_id, property, value, unit, original_value, original_unit, method, provenance "
        "FROM properties ORDER BY record_id, property"
    )
    si = values[values.record_id == "jarvis:JVASP-1002"].set_index("property")
    assert si.loc["total_energy_per_atom", ["value", "unit", "method"]].tolist() == [-4.16906, "eV/atom", "OptB88vdW"]
    assert si.loc["bulk_modulus", ["value", "unit", "method"]].tolist() == [87.27, "GPa", "OptB88vdW (Voigt)"]
    assert si.loc["density", ["value", "original_unit"]].tolist() == [2.25, "g/cm**3"]
    assert "energy_above_hull" not in si.index  # "na" in the file: no value, and nothing quarantined
    gaps = store.query(
        "SELECT method, value, unit, original_value FROM properties "
        "WHERE record_id = 'jarvis:JVASP-1002' AND property = 'band_gap' ORDER BY value"
    )
    assert gaps.values.tolist() == [
        ["OptB88vdW", 0.731, "eV", 0.731],
        ["HSE06", 1.21, "eV", 1.21],
        ["TBmBJ", 1.277, "eV", 1.277],
    ]
    moment = values[(values.record_id == "jarvis:JVASP-5155") & (values.property == "magnetic_moment")].iloc[0]
    assert moment.value == pytest.approx(4.635 / 10) and moment.unit == "bohr_magneton/atom"
    assert (moment.original_value, moment.original_unit) == (4.635, "bohr_magneton/cell")
    assert set(values.provenance) == {"dft"}
    assert len(store.table("quarantine")) == 0

    materials = store.table("materials").set_index("source_id")
    assert len(materials) == 2  # the TBmBJ and HSE06 gaps add no record
    si = materials.loc["JVASP-1002"]
    assert (si.formula, si.nsites, si.spacegroup_number, si.spacegroup_symbol) == ("Si", 2, 227, "Fd-3m")
    assert (si.method, si.provenance, si.database_version) == ("OptB88vdW", "dft", "jdft_3d-9-24-2025")
    assert si.source_url == "https://www.ctcms.nist.gov/~knc6/static/JARVIS-DFT/JVASP-1002.xml"
    assert si.citation.startswith("Choudhary") and si.license == "CC-BY-4.0"
    assert Structure.from_str(si.structure, fmt="json").composition.reduced_formula == "Si"


def test_the_field_map_gives_each_property_one_field_per_method():
    field_map = load_field_map("jarvis")
    keys = [(field_map.property_of(name), spec.method or field_map.method) for name, spec in field_map.fields.items()]
    assert len(keys) == len(set(keys))  # two fields on one key would overwrite each other in the store
    assert ("band_gap", "TBmBJ") in keys and ("band_gap", "HSE06") in keys
    assert "magmom_outcar" not in field_map.fields  # the same OptB88vdW cell moment as magmom_oszicar


def test_structures_are_pymatgen_json_from_cartesian_and_fractional_coordinates():
    records = {record["jid"]: record for record in fixture_records()}
    dyb6 = records["JVASP-86097"]["atoms"]  # Cartesian, verbatim from the real file
    text, nsites = jarvis_structure(dyb6)
    expected = Structure(Lattice(dyb6["lattice_mat"]), dyb6["elements"], dyb6["coords"], coords_are_cartesian=True)
    structure = Structure.from_str(text, fmt="json")
    assert nsites == 7 and structure.composition.reduced_formula == "DyB6"
    assert structure.frac_coords == pytest.approx(expected.frac_coords)
    assert structure.lattice.matrix == pytest.approx(expected.lattice.matrix)
    sic = records["JVASP-107"]["atoms"]  # fractional
    structure = Structure.from_str(jarvis_structure(sic)[0], fmt="json")
    assert structure.frac_coords == pytest.approx(np.array(sic["coords"])) and structure.formula == "Si4 C4"


def test_ids_formulas_and_element_sets_select_records(tmp_path, catalog):
    cases = [
        ({"ids": ["JVASP-41", "JVASP-9902"]}, {"JVASP-41", "JVASP-9902"}),
        ({"formulas": ["O3Al2"]}, {"JVASP-32"}),
        ({"elements": ["O", "Si"]}, {"JVASP-41"}),
        ({"elements": ["si", "o"]}, {"JVASP-41"}),  # symbols as typed: checked and capitalized for every source
    ]
    for number, (request, expected) in enumerate(cases):
        store = Store(tmp_path / f"store{number}")
        report = fetch(store, catalog, **request)
        assert set(store.table("materials")["source_id"]) == expected, request
        assert report.n_available == len(expected)


def test_a_jid_selection_stops_reading_once_every_jid_was_found(tmp_path, figshare, server):
    catalog = jarvis_catalog(tmp_path, server, cache=False)
    full = zipped(fixture_records(), zipfile.ZIP_STORED)
    figshare.body = full[: full.index(b'"jid": "JVASP-32"')]  # the file breaks off after the fourth record
    report = fetch(Store(tmp_path / "ids"), catalog, ids=["JVASP-1002", "JVASP-91"])
    assert (report.n_stored, report.n_available) == (2, 2)
    with pytest.raises(SourceError, match="truncated"):
        fetch(Store(tmp_path / "all"), catalog, everything=True)


def test_verbose_logs_the_download_a_jid_selection_abandons_with_the_bytes_it_read(run, tmp_path, figshare, server):
    """`matreg -v` logged an answer once read to its end: the bulk file a jid selection stops reading once every jid
    was found was never logged. It is logged as it is closed, abandoned after the bytes read."""
    catalog = jarvis_catalog_file(tmp_path, server, cache=False)
    figshare.body = zipped([*fixture_records(), {"jid": "JVASP-PAD", "notes": "x" * (4 << 20)}], zipfile.ZIP_STORED)
    fetched = run("-v", "fetch", "jarvis", JIDS[0], "--catalog", str(catalog), "--no-progress")
    assert fetched.exit_code == 0, fetched.output
    (line,) = fetched.stderr.splitlines()
    logged = re.fullmatch(r"\S+Z info: GET (\S+): HTTP 200, abandoned after (\d+) bytes in \d+ ms", line)
    assert logged and logged[1] == f"{server.root}{DOWNLOAD}", line
    assert 0 < int(logged[2]) < len(figshare.body), line  # (its first chunks only)


def test_a_429_with_retry_after_is_honoured_then_the_download_succeeds(store, catalog, server):
    server.fail(DOWNLOAD, 429, retry_after=1)
    report = fetch(store, catalog, everything=True)
    assert report.n_stored == 12 and server.hits(DOWNLOAD) == 2


def test_a_persistent_503_fails_the_run_and_leaves_the_store_as_before(tmp_path, store, server):
    catalog = jarvis_catalog(tmp_path, server, cache=False)
    fetch(store, catalog, ids=["JVASP-1002"])
    before = visible_tables(store)
    server.fail(DOWNLOAD, 503, 503, 503, 503)
    with pytest.raises(SourceError, match="HTTP 503"):
        fetch(store, catalog, everything=True)
    assert_failed_without_trace(store, before, DOWNLOAD)


def test_a_download_cut_after_page_one_resumes_with_exactly_the_records_of_a_clean_run(tmp_path, figshare, server):
    catalog = jarvis_catalog(tmp_path, server, cache=False)
    figshare.body = zipped(fixture_records(), zipfile.ZIP_STORED)  # stored: the JSON text lies verbatim in the zip
    clean = Store(tmp_path / "clean")
    fetch(clean, catalog, everything=True, page_size=5)

    resumed = Store(tmp_path / "resumed")
    full = figshare.body
    figshare.body = full[: full.index(b'"jid": "JVASP-5155"')]  # ends inside record #7: page 1 (#0-#4) is staged
    with pytest.raises(SourceError, match="truncated"):
        fetch(resumed, catalog, everything=True, page_size=5)
    assert resumed.staged_pages() == 1 and len(resumed.table("materials")) == 0
    figshare.body = full
    report = fetch(resumed, catalog, resume=True, everything=True, page_size=5)
    assert report.resumed and (report.n_fetched, report.n_stored) == (12, 12)
    for table, columns in (("materials", ["record_id", "method"]), ("properties", ["record_id", "property", "method"])):
        assert resumed.table(table)[columns].sort_values(columns).values.tolist() == (
            clean.table(table)[columns].sort_values(columns).values.tolist()
        )
    assert resumed.table("fetch_runs")["status"].tolist() == ["complete"]
    assert not any(resumed.staging_dir.iterdir())
    assert server.hits(DOWNLOAD) == 3  # one download per run: the resumed one skips the records staged before


def test_resuming_over_another_release_of_the_file_is_refused(catalog, figshare):
    connector = build_connector("jarvis", catalog, FetchRequest(everything=True, page_size=5))
    with pytest.raises(SourceError, match="changed since the interrupted run"):
        next(connector.pages({"next_index": 5, "member": "jdft_3d-12-12-2022.json"}))


def test_a_malformed_record_is_quarantined_and_unknown_fields_are_counted(store, catalog, figshare):
    records = [
        {"hse_bandgap" if key == "hse_gap" else key: value for key, value in record.items()}  # as if renamed
        for record in fixture_records()
    ]
    records[3]["atoms"]["elements"] = ["C"]  # JVASP-91 has two sites
    records[4]["optb88vdw_bandgap"] = "N/A"  # not the file's missing marker "na"
    figshare.body = zipped([*records, "JVASP-0"])
    report = fetch(store, catalog, everything=True)
    rejected = store.query("SELECT item, reasons FROM quarantine ORDER BY item").set_index("item")["reasons"]
    assert rejected.index.tolist() == ["#12", "JVASP-32:band_gap[OptB88vdW]", "JVASP-91"]
    assert list(rejected["JVASP-91"]) == ["atoms: 1 species for coordinates of shape (2, 3)"]
    assert list(rejected["JVASP-32:band_gap[OptB88vdW]"]) == ["non-numeric value 'N/A'"]
    assert list(rejected["#12"]) == ["not a JSON object: str"]
    named = store.query("SELECT item, coalesce(record_id, '') FROM quarantine ORDER BY item").values.tolist()
    assert named == [
        ["#12", ""],
        ["JVASP-32:band_gap[OptB88vdW]", "jarvis:JVASP-32"],
        ["JVASP-91", "jarvis:JVASP-91"],
    ]
    kept = store.query("SELECT method FROM properties WHERE record_id = 'jarvis:JVASP-32' AND property = 'band_gap'")
    assert kept["method"].tolist() == ["TBmBJ"]  # the record stays, with the gap that could be read
    # fields are counted on records that map: 11 (JVASP-91 is quarantined); slme is only in the verbatim record
    assert report.unmapped["hse_bandgap"] == 11 and report.unmapped["slme"] == 1
    assert "atoms" not in report.unmapped and "jid" not in report.unmapped
    assert json.loads(store.table("fetch_runs")["unmapped_fields"].iloc[0])["epsx"] == 1
    assert report.absent == {"hse_gap": 11}  # the mapped field no record (that maps) carried


def test_a_unit_field_that_is_missing_or_no_text_is_the_reason_not_a_unit_named_none(
    store, catalog, figshare, tmp_path, monkeypatch
):
    # a unit field's value was read as text whatever it was: a missing one as the unit 'None' ("unknown unit
    # 'None'"), a list as "['g/cm**3']"
    density = "  density: {property: density, unit: g/cm**3}\n"
    text = resource_path("connectors/jarvis.yaml").read_text(encoding="utf-8")
    assert density in text
    (tmp_path / "project" / "connectors").mkdir(parents=True)
    (tmp_path / "project" / "connectors" / "jarvis.yaml").write_text(
        text.replace(density, "  density: {property: density, unit_field: density_unit}\n"), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path / "project")
    records = fixture_records()[:6]
    units = ["g/cm**3", "(absent)", None, "na", ["g/cm**3"], 3]
    for record, unit in zip(records, units, strict=True):
        if unit != "(absent)":
            record["density_unit"] = unit
    figshare.body = zipped(records)
    report = fetch(store, catalog, everything=True)
    rejected = store.query("SELECT item, reasons[1] AS reason FROM quarantine ORDER BY item")
    assert rejected.values.tolist() == [
        ["JVASP-107:density", "no unit: field density_unit is missing"],  # null
        ["JVASP-110:density", "no unit: field density_unit holds 3, not a unit's text"],
        ["JVASP-32:density", "no unit: field density_unit holds ['g/cm**3'], not a unit's text"],
        ["JVASP-86097:density", "no unit: field density_unit is missing"],  # absent
        ["JVASP-91:density", "no unit: field density_unit is missing ('na')"],  # the file's missing marker
    ]
    assert report.n_quarantined == 5
    assert "density_unit" not in report.unmapped  # read as the density's unit: no field the map does not know
    stored = store.query("SELECT record_id, value, unit FROM properties WHERE property = 'density'")
    assert stored.values.tolist() == [["jarvis:JVASP-1002", 2.25, "g/cm**3"]]


@pytest.mark.parametrize("jid", ["", " ", "na"])
def test_a_record_whose_jid_is_blank_is_refused_not_merged_with_others_under_jarvis_colon(catalog, jid):
    connector = build_connector("jarvis", catalog, FetchRequest(everything=True))
    with pytest.raises(RecordError, match="^record has no jid$"):
        connector.read_source_id({"jid": jid})


def test_the_fields_every_record_carries_are_mapped_or_listed(store, catalog):
    # nat and magmom_outcar (not mapped: see connectors/jarvis.yaml) are in all 12 records; slme, epsx, ... are only
    # in the one verbatim record of the fixture
    report = fetch(store, catalog, everything=True)
    assert report.n_stored == 12 and report.unmapped and set(report.unmapped.values()) == {1}
    assert report.absent == {}


def quarantine_reasons(store: Store) -> dict[str, list[str]]:
    """The store's quarantine rows: each item's reasons."""
    rows = store.query("SELECT item, reasons FROM quarantine ORDER BY item")
    return {item: list(reasons) for item, reasons in rows.itertuples(index=False)}


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        ({"everything": True}, "atoms: elements is not a list of element symbols: 8"),
        ({"elements": ["O", "Si"]}, None),  # the element-set selection reads every record's elements
        ({"ids": ["JVASP-41"]}, None),
    ],
    ids=["all", "elements", "ids"],
)
def test_records_of_unexpected_shapes_neither_stop_the_run_nor_match_a_selection(
    store, catalog, figshare, request_, reason
):
    records = fixture_records()
    records[3]["atoms"]["elements"] = 8  # JVASP-91
    records[4]["jid"] = ["JVASP-32"]  # an id that is no text (unhashable)
    figshare.body = zipped(records)
    report = fetch(store, catalog, **request_)
    rejected = quarantine_reasons(store)
    stored = set(store.table("materials")["source_id"])
    if reason is None:  # selected records only: JVASP-41
        assert stored == {"JVASP-41"} and rejected == {}
        return
    assert report.n_fetched == 12 and len(stored) == 10 and {"JVASP-91", "JVASP-32"}.isdisjoint(stored)
    assert rejected["JVASP-91"] == [reason]
    assert list(rejected["['JVASP-32']"]) == ["jid ['JVASP-32'] is not a text"]


def test_a_space_group_number_no_space_group_has_or_a_symbol_that_is_no_text_quarantines_the_record(
    store, catalog, figshare
):
    records = fixture_records()
    records[0]["spg_number"] = 231  # JVASP-1002
    records[1]["spg_number"] = 12.7  # JVASP-86097: not truncated to 12
    records[2]["spg_number"] = "na"  # JVASP-107: the file's missing marker, kept without a number
    records[3]["spg_symbol"] = 225  # JVASP-91: not stored as the text '225'
    figshare.body = zipped(records)
    report = fetch(store, catalog, everything=True)
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (12, 9, 3)
    assert quarantine_reasons(store) == {
        "JVASP-1002": ["spg_number 231 is not a space group number (1 to 230)"],
        "JVASP-86097": ["spg_number 12.7 is not a space group number (1 to 230)"],
        "JVASP-91": ["spg_symbol 225 is not a text"],
    }
    kept = store.query("SELECT spacegroup_number, spacegroup_symbol FROM materials WHERE source_id = 'JVASP-107'")
    assert kept["spacegroup_number"].isna().all() and kept["spacegroup_symbol"].tolist() == [records[2]["spg_symbol"]]


def test_a_record_whose_structure_is_not_of_its_formula_is_quarantined_naming_both(store, catalog, figshare):
    records = fixture_records()
    records[4]["atoms"]["elements"] = ["Al"] * 6 + ["O"] * 4  # JVASP-32, Al2O3: its 10 sites relabelled
    records[6]["formula"] = "ZnS"  # JVASP-96: its atoms are Zn and Se
    figshare.body = zipped(records)
    report = fetch(store, catalog, everything=True)
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (12, 10, 2)
    assert quarantine_reasons(store) == {
        "JVASP-32": ["the structure is Al6O4, not the record's formula Al2O3"],
        "JVASP-96": ["the structure is ZnSe, not the record's formula ZnS"],
    }
    # the others are stored as before, each cell of one or more formula units (JVASP-107's Si4C4 of SiC)
    assert set(store.table("materials")["source_id"]) == set(JIDS) - {"JVASP-32", "JVASP-96"}


def test_a_second_fetch_is_served_from_the_http_cache(store, catalog, server):
    fetch(store, catalog, ids=["JVASP-1002"])
    fetch(store, catalog, ids=["JVASP-1002"])
    assert server.hits(DOWNLOAD) == 1


def test_dry_run_reads_the_first_page_only_and_writes_nothing(store, catalog):
    connector = build_connector("jarvis", catalog, FetchRequest(everything=True, page_size=5))
    report = run_ingest(connector, store, dry_run=True)
    assert report.n_fetched == 5 and report.n_available is None and DOWNLOAD in report.request
    assert not store.exists()


def test_a_file_that_is_not_a_zip_is_a_clear_error(store, catalog, figshare):
    figshare.body = b'{"error": "not found"}'
    with pytest.raises(SourceError, match="not a zip file"):
        fetch(store, catalog, everything=True)


@pytest.mark.parametrize(
    "broken, message",
    [
        (lambda: first_half(zipped(fixture_records())), "ended inside zip member .*truncated"),
        (lambda: zipped(fixture_records())[:20], "ended inside the zip header .*truncated"),
        (lambda: zipped(fixture_records(), zipfile.ZIP_STORED).replace(b'"Pm-3m"', b'"Pm-3x"'), "CRC32"),
        (
            lambda: zip_of(b'[{"jid": "JVASP-1002"}, {"jid": }]'),
            r"malformed JSON in the dft_3d file at record #1 \(counted from #0, after JVASP-1002\): .*error",
        ),
        (lambda: zip_of(b'[{"jid": "JVASP-1002"}, {"jid": "JVASP-'), "JSON list ends early .*truncated"),
        (lambda: zip_of(b' {"jid": "JVASP-1002"}'), "not a JSON list"),
        (lambda: zip_of(b""), "file is empty"),
    ],
    ids=["cut-deflated", "cut-header", "crc", "malformed-json", "json-ends-early", "not-a-list", "empty"],
)
def test_a_broken_download_is_a_source_error_and_the_run_fails(tmp_path, server, figshare, broken, message):
    catalog = jarvis_catalog(tmp_path, server, cache=False)
    figshare.body = broken()
    store = Store(tmp_path / "store")
    with pytest.raises(SourceError, match=message):
        fetch(store, catalog, everything=True, page_size=5)
    assert store.table("fetch_runs")["status"].tolist() == ["failed"] and len(store.table("materials")) == 0


def test_a_download_whose_connection_is_lost_fails_the_run_for_now(tmp_path, server, figshare):
    catalog = jarvis_catalog(tmp_path, server, cache=False)
    figshare.sent_bytes = len(figshare.body) // 2  # its Content-Length promised, half sent, the connection closed
    store = Store(tmp_path / "store")
    lost = rf"the download of {server.root}{DOWNLOAD} broke off: .*IncompleteRead"
    with pytest.raises(SourceUnavailable, match=lost):
        fetch(store, catalog, everything=True, page_size=5)  # (a failure for now: exit TRY_LATER)
    assert store.table("fetch_runs")["status"].tolist() == ["failed"] and len(store.table("materials")) == 0


def test_native_filters_and_empty_requests_are_refused(catalog):
    with pytest.raises(ConfigError, match="no query language"):
        build_connector("jarvis", catalog, FetchRequest(filter="elements HAS 'Si'"))
    with pytest.raises(ConfigError, match="no JARVIS records asked for"):
        build_connector("jarvis", catalog, FetchRequest())


@pytest.mark.parametrize(("number", "token"), [(float("nan"), "NaN"), (np.inf, "Infinity"), (-np.inf, "-Infinity")])
def test_a_bare_nan_or_infinity_token_fails_the_run_naming_the_record_and_the_token(
    tmp_path, server, figshare, number, token
):
    # Python's json (and so jarvis-tools) reads these tokens; ijson 3.6 has no option for them, in any backend.
    records = fixture_records()
    records[2]["ehull"] = number
    figshare.body = zipped(records)  # json.dumps writes the bare token
    store = Store(tmp_path / "store")
    where = f"record #2 (counted from #0, after {records[1]['jid']})"
    with pytest.raises(SourceError, match=re.escape(f"not standard JSON: {where} holds the bare token {token},")):
        fetch(store, jarvis_catalog(tmp_path, server, cache=False), everything=True, page_size=5)
    assert store.table("fetch_runs")["status"].tolist() == ["failed"] and len(store.table("materials")) == 0


OUTSIDE = "is outside the physical bounds"


def values_but(store: Store, item: str) -> list[list]:
    """The store's values, each but the one of the quarantined `item` ('JVASP-91:band_gap[OptB88vdW]')."""
    record, _, value = item.partition(":")
    rows = store.query("SELECT record_id, property, method, value FROM properties ORDER BY ALL").values.tolist()
    return [row for row in rows if f"{row[1]}[{row[2]}]" != value or row[0] != f"jarvis:{record}"]


@pytest.mark.parametrize(
    ("field", "number", "reason"),
    [
        ("optb88vdw_bandgap", "10" + "0" * 399, f"not a finite number: '1{'0' * 76}...'"),
        ("optb88vdw_bandgap", str(-(2**63) - 1), f"band_gap = -9.22337203685478e+18 eV {OUTSIDE} [0, 30]"),
        ("optb88vdw_bandgap", "1e400", "not a finite number: 'inf'"),  # as Python's json reads it
        ("nat", str(10**25), None),  # a count no field map reads: kept in the record's payload
    ],
    ids=["400-digit gap", "gap below int64", "gap beyond a float", "nat beyond 64 bits"],
)
def test_a_number_beyond_64_bits_or_a_floats_range_quarantines_its_value_and_the_run_reads_on(
    tmp_path, server, figshare, field, number, reason
):
    """ijson's fast reading (floats) cannot read such a number nor go on past it: the run failed ('holds an integer
    too large for 64 bits ... the run stops there'; '1e400': 'malformed JSON ... numeric (floating point)
    overflow'), every record of the file unstored. The file is read again, exactly from that record on."""
    records = fixture_records()
    records[3][field] = "NUMBER"  # JVASP-91, on the first page of 5
    figshare.body = zip_of(json.dumps(records).replace('"NUMBER"', number).encode())
    store = Store(tmp_path / "store")
    catalog = jarvis_catalog(tmp_path, server, cache=False)
    report = fetch(store, catalog, everything=True, page_size=5)
    assert server.hits(DOWNLOAD) == 2  # read again once, from the number's record on
    item = "JVASP-91:band_gap[OptB88vdW]"
    assert quarantine_reasons(store) == ({} if reason is None else {item: [reason]})
    assert (report.n_fetched, report.n_stored) == (12, 12)
    clean = Store(tmp_path / "clean")
    figshare.body = zipped(fixture_records())
    fetch(clean, catalog, everything=True, page_size=5)
    assert values_but(store, item) == values_but(clean, item)  # the records after it as a clean read stores them


def with_number(records: list[dict], index: int, number: str = str(10**25)) -> bytes:
    """The zip of `records`, the OptB88vdW gap of record `index` a number beyond 64 bits, written as JSON writes it."""
    records = [dict(record) for record in records]
    records[index]["optb88vdw_bandgap"] = "NUMBER"
    return zip_of(json.dumps(records).replace('"NUMBER"', number).encode())


def test_a_file_read_again_for_a_number_beyond_64_bits_gives_its_pages_as_first_downloaded_not_from_the_cache(
    store, catalog, server, figshare
):
    """With the HTTP cache on, the file read again came from the cache the first download had just filled: the run
    said '3 pages from the HTTP cache, read ... (--refresh-cache reads again)' of a file it had downloaded fresh."""
    figshare.body = with_number(fixture_records(), 3)
    report = fetch(store, catalog, everything=True, page_size=5)
    assert (report.n_stored, report.n_cached_pages, server.hits(DOWNLOAD)) == (12, 0, 1)
    again = fetch(store, catalog, everything=True, page_size=5)  # (the cache's copy, then read again from it)
    assert (again.n_unchanged, again.n_cached_pages, server.hits(DOWNLOAD)) == (12, 3, 1)


@pytest.mark.parametrize(
    ("later", "error"),
    [
        (lambda records: zipped(records[:5]), "it ends before its record #8: fetch again"),
        (
            lambda records: with_number([records[0], *records[2:]], 7),  # (JVASP-86097 gone: each a place earlier)
            r"its record #7 is another \(JVASP-5155 -> JVASP-48055\): fetch again",
        ),
    ],
    ids=["shorter", "a record gone"],
)
def test_a_file_that_changed_before_it_was_read_again_fails_the_run_not_mixing_two_files(
    tmp_path, server, figshare, later, error
):
    """The file read again for a number beyond 64 bits in its record #8 was checked for its member's name only: one of
    the same name that ended before #8 was published as complete without #8 and after it, one whose records moved
    (one gone) with records of both files (#8 on of the other: JVASP-48055, the record that overflowed, never read)."""
    records = fixture_records()
    figshare.body, figshare.later = with_number(records, 8), [later(records)]
    store = Store(tmp_path / "store")
    changed = f"^the dft_3d file changed while it was read: read again, {error}$"
    with pytest.raises(SourceError, match=changed):
        fetch(store, jarvis_catalog(tmp_path, server, cache=False), everything=True, page_size=5)
    assert store.table("fetch_runs")["status"].tolist() == ["failed"] and len(store.table("materials")) == 0


@pytest.mark.parametrize("number", ["1e400", "-1e400"])
def test_a_coordinate_beyond_a_floats_range_quarantines_the_record_naming_it_not_its_shape(
    tmp_path, server, figshare, number
):
    """An infinite coordinate was refused as if the sites and coordinates disagreed in number ('atoms: 2 species for
    coordinates of shape (2, 3)')."""
    records = fixture_records()
    records[3]["atoms"]["coords"][1][2] = "NUMBER"  # JVASP-91
    figshare.body = zip_of(json.dumps(records).replace('"NUMBER"', number).encode())
    store = Store(tmp_path / "store")
    report = fetch(store, jarvis_catalog(tmp_path, server, cache=False), everything=True, page_size=5)
    assert quarantine_reasons(store) == {"JVASP-91": [f"atoms: coordinate {float(number)} is not a finite number"]}
    assert (report.n_fetched, report.n_stored) == (12, 11)


def without_hse(records: list[dict]) -> list[dict]:
    return [{key: value for key, value in record.items() if key != "hse_gap"} for record in records]


def gaps_of(store: Store, jid: str) -> list[str]:
    query = f"SELECT method FROM properties WHERE record_id = 'jarvis:{jid}' AND property = 'band_gap' ORDER BY 1"
    return store.query(query)["method"].tolist()


def test_a_file_without_hse_gap_whose_record_lost_a_tbmbj_gap_is_published_not_refused_for_hse_gap(
    tmp_path, store, server, figshare
):
    """band_gap is fed by three fields, told apart by method: a file without hse_gap (as a release before it) in
    which one record no longer gave its TBmBJ gap, mbj_bandgap still carried by the others, was refused as if the
    source had dropped hse_gap (DroppedFields), though no value hse_gap gives was stored or removed."""
    catalog = jarvis_catalog(tmp_path, server, cache=False)
    records = without_hse(fixture_records())
    figshare.body = zipped(records)
    fetch(store, catalog, everything=True)
    assert gaps_of(store, "JVASP-1002") == ["OptB88vdW", "TBmBJ"]
    next(record for record in records if record["jid"] == "JVASP-1002")["mbj_bandgap"] = "na"
    figshare.body = zipped(records)
    report = fetch(store, catalog, everything=True)
    assert report.absent == {"hse_gap": 12} and report.removed.values == {"band_gap": 1}
    assert gaps_of(store, "JVASP-1002") == ["OptB88vdW"] and not store.staged_runs()


def test_a_file_that_dropped_hse_gap_is_refused_counting_the_hse06_gaps_alone(tmp_path, store, server, figshare):
    """The values a dropped field's removal counts are those of its method: not a TBmBJ gap one record lost."""
    catalog = jarvis_catalog(tmp_path, server, cache=False)
    records = fixture_records()
    fetch(store, catalog, everything=True)
    hse = store.query("SELECT count(*) FROM properties WHERE method = 'HSE06'").iloc[0, 0]
    records = without_hse(records)
    next(record for record in records if record["jid"] == "JVASP-1002")["mbj_bandgap"] = "na"
    figshare.body = zipped(records)
    with pytest.raises(DroppedFields, match=rf"would remove {hse} stored values of {hse} records \(band_gap {hse}\)"):
        fetch(store, catalog, everything=True)
    assert gaps_of(store, "JVASP-1002") == ["HSE06", "OptB88vdW", "TBmBJ"] and len(store.staged_runs()) == 1
