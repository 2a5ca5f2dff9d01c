"""matreg's AFLOW connector over real HTTP: AFLUX pages of real AFLOW entries replayed on 127.0.0.1."""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pydantic
import pytest
from conftest import assert_failed_without_trace, visible_tables
from pymatgen.core import Structure
from replay import ReplayServer, Reply, Request
from typer.testing import CliRunner

from matreg.catalog import Dataset, load_catalog
from matreg.cli import app
from matreg.errors import ConfigError, DroppedFields, RecordError, SourceError
from matreg.export import dataset_query
from matreg.fieldmap import load_field_map
from matreg.ingest import run_ingest
from matreg.resources import resource_path
from matreg.sources import FetchRequest, build_connector
from matreg.sources.aflow import aflow_structure, entry_root, entry_url
from matreg.store import Store
from matreg.validation import RunStamp, harmonize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from replay_aflow import AFLUX, project  # noqa: E402  (the same AFLUX projection the benchmark serves)

FIXTURES = Path(__file__).parent / "fixtures" / "aflow"
ENTRIES = [
    json.loads((FIXTURES / f"aflowlib_{lib}_example.json").read_text(encoding="utf-8"))
    for lib in ("icsd", "lib1", "lib2", "lib3", "lib6", "lib7")
]
AUIDS = sorted(entry["auid"] for entry in ENTRIES)
OLD_PAGES = [FIXTURES / "aflux_paged_data0.json", FIXTURES / "aflux_paged_data1.json"]
KEYWORDS = (
    "auid,aurl,compound,natoms,spacegroup_relax,dft_type,ldau_type,Pearson_symbol_relax,enthalpy_formation_atom,"
    "Egap,energy_atom,volume_atom,density,spin_atom,ael_bulk_modulus_vrh,ael_shear_modulus_vrh,agl_debye,"
    "agl_thermal_conductivity_300K,agl_heat_capacity_Cp_300K"
)


class Aflux:
    """AFLUX at /API/aflux/ (typed-list pages of real entries, or the recorded old-format pages) and the
    entries' aflowlib.json files under /AFLOWDATA/.

    `matching` replaces the N of the old pages' '<i> of <N>' keys (912 recorded): a query that matched that many.
    `renamed` names keywords AFLUX answers under another name (old: new), as if it had renamed them.
    """

    def __init__(
        self,
        entries: list[dict] = ENTRIES,
        old_format: bool = False,
        matching: int | None = None,
        renamed: dict[str, str] | None = None,
    ) -> None:
        self.entries = entries
        self.old_format = old_format
        self.matching = matching
        self.renamed = renamed or {}
        self.down: set[int] = set()  # pages that answer 503 every time

    def __call__(self, request: Request) -> Reply:
        if request.path == AFLUX:
            return self.page(request.raw_path.partition("?")[2])
        for entry in self.entries:
            if request.path == "/" + entry["aurl"].partition(":")[2] + "/aflowlib.json":
                return Reply.json(entry)
        return Reply(404, b"Not Found", "text/plain")

    def page(self, summons: str) -> Reply:
        number, size = map(int, re.search(r"\$paging\((\d+),(\d+)\)", summons).groups())
        if number in self.down:
            return Reply(503, b'{"error": "down"}')
        if self.old_format:
            return self.old_page(number)
        records = project(self.entries[(number - 1) * size : number * size], summons)
        return Reply.json([{self.renamed.get(key, key): value for key, value in row.items()} for row in records])

    def old_page(self, number: int) -> Reply:
        if number > len(OLD_PAGES):
            return Reply.json({})
        if self.matching is None:
            return Reply.file(OLD_PAGES[number - 1])
        page = json.loads(OLD_PAGES[number - 1].read_text(encoding="utf-8"))
        return Reply.json({re.sub(r"of \d+$", f"of {self.matching}", key): entry for key, entry in page.items()})


def write_catalog(path: Path, base_url: str) -> Path:
    """A catalog whose aflow source points at `base_url`, with fast retries and no HTTP cache."""
    path.write_text(
        "sources:\n"
        "  aflow:\n"
        "    title: AFLOW (local replay)\n"
        "    connector: aflow\n"
        f"    base_url: {base_url}\n"
        "    provenance: dft\n"
        "    license: AFLOW terms of use\n"
        "    citation: Rose et al. 2017\n"
        "    database_version: live\n"
        "    http: {retries: 3, backoff_s: 0, jitter_s: 0, timeout_s: 5, cache: false}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def aflux():
    with ReplayServer(Aflux(), prefix=AFLUX) as server:
        yield server


@pytest.fixture
def aflow_catalog(tmp_path, aflux):
    return load_catalog(write_catalog(tmp_path / "catalog.yaml", aflux.url))


def fetch(store, catalog, **options):
    return run_ingest(build_connector("aflow", catalog, FetchRequest(**options)), store)


def test_typed_pages_are_fetched_page_by_page_at_the_real_path(store, aflow_catalog, aflux):
    report = fetch(store, aflow_catalog, everything=True, page_size=4)
    assert (report.n_fetched, report.n_stored, report.n_quarantined, report.n_available) == (6, 6, 0, None)
    assert [request.raw_path for request in aflux.requests] == [
        f"{AFLUX}?{KEYWORDS},$paging(1,4),format(json)",
        f"{AFLUX}?{KEYWORDS},$paging(2,4),format(json)",
    ]
    assert report.request == f"GET {aflux.url}?{KEYWORDS},$paging(2,4),format(json)"
    assert aflux.requests[0].headers["User-Agent"].startswith("matreg/")
    assert sorted(store.table("materials")["source_id"]) == AUIDS


def test_old_string_valued_pages_keyed_i_of_n(tmp_path, store):
    with ReplayServer(Aflux(old_format=True), prefix=AFLUX) as server:
        catalog = load_catalog(write_catalog(tmp_path / "catalog.yaml", server.url))
        connector = build_connector("aflow", catalog, FetchRequest(filter="Egap(6*)", page_size=20))
        report = run_ingest(connector, store, limit=40)
    assert (report.n_fetched, report.n_stored, report.n_available) == (40, 40, 912)


def test_old_pages_end_at_their_n_th_entry_without_asking_for_an_empty_page(tmp_path, store):
    with ReplayServer(Aflux(old_format=True, matching=40), prefix=AFLUX) as server:  # N: two full pages of 20
        catalog = load_catalog(write_catalog(tmp_path / "catalog.yaml", server.url))
        report = fetch(store, catalog, filter="Egap(6*)", page_size=20)
    assert [re.search(r"\$paging\(\d+,\d+\)", request.raw_path)[0] for request in server.requests] == [
        "$paging(1,20)",
        "$paging(2,20)",
    ]
    assert (report.status, report.n_fetched, report.n_stored, report.n_available) == ("complete", 40, 40, 40)
    assert [request.raw_path.rpartition(",Egap(6*),")[2] for request in server.requests] == [
        "$paging(1,20),format(json)",
        "$paging(2,20),format(json)",
    ]
    values = store.query(
        "SELECT property, value, unit, original_value, original_unit, temperature_K, method "
        "FROM properties WHERE record_id = 'aflow:aflow:db1f17a6f945c29b' ORDER BY property"
    ).set_index("property")
    assert values.loc["band_gap", ["value", "unit"]].tolist() == [6.8531, "eV"]
    conductivity = values.loc["thermal_conductivity"]
    assert (conductivity.value, conductivity.unit, conductivity.temperature_K) == (83.0737, "W/(m*K)", 300.0)
    assert conductivity.method == "PBE(+U) (AGL)"  # the record's method (the answer names no dft_type), AGL's
    material = store.query("SELECT * FROM materials WHERE source_id = 'aflow:db1f17a6f945c29b'").iloc[0]
    assert (material.formula, material.formula_original, material.atoms_per_formula_unit) == ("BeO", "BeO", 2)
    assert material.source_url == "https://aflowlib.duke.edu/AFLOWDATA/ICSD_WEB/FCC/Be1O1_ICSD_163467/"
    assert "aflow:c8cff231c8082848" in set(store.table("materials")["source_id"])  # '5 of 912'
    assert "aflow:9fdebc04ebf454ae" in set(store.table("materials")["source_id"])  # '21 of 912', page 2


def test_values_in_canonical_units_with_provenance_and_method(store, aflow_catalog):
    fetch(store, aflow_catalog, everything=True, page_size=10)
    values = store.query(
        "SELECT property, value, unit, original_value, original_unit, provenance, method FROM properties "
        "WHERE record_id = 'aflow:aflow:fc70fda6652015cb' ORDER BY property"
    ).set_index("property")
    assert values.loc["formation_energy_per_atom", ["value", "unit"]].tolist() == [-2.13553, "eV/atom"]
    assert values.loc["band_gap", ["value", "unit"]].tolist() == [4.1084, "eV"]
    assert values.loc["total_energy_per_atom", "value"] == -4.35149
    volume = values.loc["volume_per_atom"]
    assert (volume.value, volume.unit, volume.original_value, volume.original_unit) == (
        34.7942,
        "angstrom**3/atom",
        34.7942,
        "Å^3/atom",
    )
    assert values.loc["density", ["value", "unit", "original_unit"]].tolist() == [5.56878, "g/cm**3", "g/cm^3"]
    assert values.loc["magnetic_moment", ["unit", "original_unit"]].tolist() == ["bohr_magneton/atom", "μB/atom"]
    assert set(values["provenance"]) == {"dft"} and set(values["method"]) == {"PBE"}
    materials = store.table("materials").set_index("source_id")
    icsd = materials.loc["aflow:fc70fda6652015cb"]
    assert (icsd.formula, icsd.nsites, icsd.spacegroup_number, icsd.method) == ("AcBr3", 8, 176, "PBE")
    assert icsd.source_url == "https://aflowlib.duke.edu/AFLOWDATA/ICSD_WEB/HEX/Ac1Br3_ICSD_31578/"
    assert icsd.notes == "Pearson symbol hP8"  # AFLUX sends no catalog: the entry file does (--structures)
    assert (icsd.citation, icsd.license, icsd.database_version) == ("Rose et al. 2017", "AFLOW terms of use", "live")
    lib3 = materials.loc["aflow:0003b1ab0ca0d60a"]
    assert lib3.method == "PBE+U"  # dft_type PAW_PBE with ldau_type 2
    assert lib3.source_url == "https://aflowlib.duke.edu/AFLOWDATA/LIB3_RAW/Cr_pvORu_pv/T0009.ACB:LDAU2/"
    assert materials.loc["aflow:075dbbb922a0e4d7"].method == "PW91"  # LIB1: PAW_GGA, VASP's PW91 potentials
    assert set(materials["provenance"]) == {"dft"}


def project_with_aflow_lines(folder: Path, lines: str) -> Path:
    """A project folder whose AFLOW field map is matreg's with `lines` more, under Egap's."""
    egap = "  Egap: {property: band_gap, unit: eV}\n"
    text = resource_path("connectors/aflow.yaml").read_text(encoding="utf-8")
    assert egap in text
    (folder / "connectors").mkdir(parents=True)
    (folder / "connectors" / "aflow.yaml").write_text(text.replace(egap, egap + lines), encoding="utf-8")
    return folder


def test_two_fields_giving_one_value_of_a_record_quarantine_it_unless_they_agree(
    store, aflow_catalog, tmp_path, monkeypatch
):
    # Egap_fit (the fitted gap every entry carries) mapped as band_gap too: the ICSD entry's AcBr3 has Egap 4.1084
    # and Egap_fit 6.45112 eV, LIB3's CrRuO3 0 and 0; neither field may silently replace the other's value.
    monkeypatch.chdir(project_with_aflow_lines(tmp_path / "project", "  Egap_fit: {property: band_gap, unit: eV}\n"))
    report = fetch(store, aflow_catalog, everything=True, page_size=10)
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (6, 6, 2)
    reason = (
        "band_gap (PBE) given by two fields, Egap = 4.1084 eV and Egap_fit = 6.45112 eV: "
        "map one of them to another method or property"
    )
    assert dict(report.reasons) == {reason: 2}
    rejected = store.query("SELECT item, record_id, reasons, raw FROM quarantine ORDER BY raw")
    assert rejected["item"].tolist() == ["aflow:fc70fda6652015cb:band_gap"] * 2
    assert rejected["record_id"].tolist() == ["aflow:aflow:fc70fda6652015cb"] * 2
    assert [list(reasons) for reasons in rejected["reasons"]] == [[reason], [reason]]
    assert [json.loads(raw)["value"] for raw in rejected["raw"]] == [4.1084, 6.45112]
    values = store.query(
        "SELECT property, value FROM properties WHERE record_id = 'aflow:aflow:fc70fda6652015cb' ORDER BY property"
    )
    assert dict(values.values.tolist()) == {  # the record's other values are stored
        "density": 5.56878,
        "formation_energy_per_atom": -2.13553,
        "magnetic_moment": 0.0,
        "total_energy_per_atom": -4.35149,
        "volume_per_atom": 34.7942,
    }
    gaps = store.query("SELECT record_id, value, method FROM properties WHERE property = 'band_gap'")
    assert gaps.values.tolist() == [["aflow:aflow:0003b1ab0ca0d60a", 0.0, "PBE+U"]]  # both fields' 0, stored once


def test_an_entrys_catalog_comes_from_its_aflowlib_json_when_aflux_leaves_it_out(aflow_catalog):
    connector = build_connector("aflow", aflow_catalog, FetchRequest(everything=True, structures=True))
    row = {key: value for key, value in ENTRIES[3].items() if key != "catalog"}  # as AFLUX answers: no catalog
    assert "catalog" not in (connector.to_record(row).notes or "")
    assert connector.to_record(row | {"aflowlib.json": ENTRIES[3]}).notes.startswith("AFLOW catalog LIB3")


def test_a_heat_capacity_per_cell_is_per_mole_of_the_reduced_formula_unit(aflow_catalog):
    # The ICSD entry's cell (compound Ac2Br6, 8 atoms) with an AGL heat capacity added: 5.502 k_B per cell is
    # 5.502 R per 2 AcBr3 units, i.e. 5.502 R / 2 per mole of AcBr3.
    entry = json.loads((FIXTURES / "aflowlib_icsd_example.json").read_text(encoding="utf-8"))
    connector = build_connector("aflow", aflow_catalog, FetchRequest(everything=True))
    record = connector.to_record(entry | {"agl_heat_capacity_Cp_300K": 5.502})
    canonical = harmonize(record, connector.attribution, RunStamp("run", datetime.now(UTC)))
    assert (canonical.material["formula"], canonical.material["atoms_per_formula_unit"]) == ("AcBr3", 4)
    heat_capacity = next(row for row in canonical.values if row["property"] == "heat_capacity_cp")
    assert heat_capacity["unit"] == "J/(mol*K)" and heat_capacity["temperature_K"] == 300
    assert heat_capacity["value"] == pytest.approx(5.502 * 8.314462618 / 2)


@pytest.mark.parametrize(
    ("dft_type", "ldau_type", "methods"),
    [
        (["PAW_PBE"], 0, ("PBE", "PBE")),
        (["PAW_PBE", "HSE06"], None, ("HSE06", "PBE")),  # a hybrid run on PBE potentials: the last functional named
        ("PAW_PBE,HSE06", "null", ("HSE06", "PBE")),  # the old string-valued answers
        (["US_PBE"], "2", ("PBE+U", "PBE+U")),
        (["PAW_PBE", "HSE06"], [2], ("HSE06", "PBE")),  # not a number: no +U read into it
        ("null", 1, (None, None)),
        ({"not": "a list"}, 0, (None, None)),
    ],
)
def test_the_method_names_the_functional_and_hubbard_u(aflow_catalog, dft_type, ldau_type, methods):
    connector = build_connector("aflow", aflow_catalog, FetchRequest(everything=True))
    for _ in range(2):  # functionals are worked out once per distinct dft_type: the second read is the same
        assert connector.methods_of({"dft_type": dft_type, "ldau_type": ldau_type}) == methods


def test_a_429_with_retry_after_is_honoured_then_succeeds(store, aflow_catalog, aflux):
    aflux.fail(AFLUX, 429, retry_after=1)
    started = time.monotonic()
    report = fetch(store, aflow_catalog, everything=True, page_size=4)
    assert time.monotonic() - started >= 1
    assert report.n_stored == 6 and aflux.hits(AFLUX) == 3


def test_a_persistent_503_fails_the_run_and_leaves_the_store_as_before(store, aflow_catalog, aflux):
    fetch(store, aflow_catalog, everything=True, page_size=4)
    before = visible_tables(store)
    aflux.fail(AFLUX, *[503] * 4)
    with pytest.raises(SourceError, match="HTTP 503"):
        fetch(store, aflow_catalog, ids=["aflow:fc70fda6652015cb"])
    assert_failed_without_trace(store, before, "HTTP 503")


def test_an_interrupted_run_resumes_with_exactly_the_records_of_a_clean_run(tmp_path, aflow_catalog, aflux):
    clean = Store(tmp_path / "clean")
    fetch(clean, aflow_catalog, everything=True, page_size=2)

    resumed = Store(tmp_path / "resumed")
    aflux.route.down.add(2)  # page 1 is staged, page 2 fails after every retry
    with pytest.raises(SourceError, match="HTTP 503"):
        fetch(resumed, aflow_catalog, everything=True, page_size=2)
    assert len(resumed.table("materials")) == 0
    aflux.route.down.clear()
    first_pages = sum("$paging(1,2)" in request.raw_path for request in aflux.requests)
    connector = build_connector("aflow", aflow_catalog, FetchRequest(everything=True, page_size=2))
    report = run_ingest(connector, resumed, resume=True)
    assert sum("$paging(1,2)" in request.raw_path for request in aflux.requests) == first_pages
    assert report.resumed and report.n_fetched == 6
    for table, columns in (("materials", ["record_id", "formula"]), ("properties", ["record_id", "property", "value"])):
        assert resumed.table(table)[columns].sort_values(columns).values.tolist() == (
            clean.table(table)[columns].sort_values(columns).values.tolist()
        )
    runs = resumed.table("fetch_runs")
    assert runs["status"].tolist() == ["complete"] and runs["n_fetched"].tolist() == [6]


@pytest.mark.parametrize(
    ("dropped", "item", "record_id"),
    [
        ("compound", "aflow:d444c5799cae883d", "aflow:aflow:d444c5799cae883d"),  # its record's row: by its auid
        ("auid", ENTRIES[5]["aurl"], None),  # records are named by their auid: an aurl names none
    ],
)
def test_a_malformed_record_is_quarantined_and_unknown_fields_are_counted(tmp_path, store, dropped, item, record_id):
    broken = {key: value for key, value in ENTRIES[5].items() if key != dropped}
    with ReplayServer(Aflux([*ENTRIES[:5], broken]), prefix=AFLUX) as server:
        catalog = load_catalog(write_catalog(tmp_path / "catalog.yaml", server.url))
        report = fetch(store, catalog, filter="Egap_type(*)", page_size=10)
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (6, 5, 1)
    rejected = store.query("SELECT item, reasons, raw, record_id FROM quarantine").iloc[0]
    assert (rejected["item"], rejected["record_id"]) == (item, record_id)
    assert list(rejected["reasons"]) == [f"AFLUX record without '{dropped}'"]
    assert json.loads(rejected["raw"]).get(dropped) is None
    assert dict(report.unmapped) == {"Egap_type": 5}
    assert json.loads(store.table("fetch_runs")["unmapped_fields"].iloc[0]) == {"Egap_type": 5}


def fetch_all_by_cli(tmp_path: Path, base_url: str) -> str:
    """`matreg fetch aflow --all` in pages of 4 against `base_url`; its output."""
    catalog = write_catalog(tmp_path / "catalog.yaml", base_url)
    options = ["--catalog", str(catalog), "--store", str(tmp_path / "store"), "--no-progress", "--page-size", "4"]
    result = CliRunner().invoke(app, ["fetch", "aflow", "--all", *options])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_mapped_keyword_no_entry_carries_is_reported_as_drift(tmp_path):
    # AFLUX as if it had renamed Egap: the keyword asked for is in none of the 6 entries (of two pages)
    with ReplayServer(Aflux(renamed={"Egap": "Egap_fit"}), prefix=AFLUX) as server:
        output = fetch_all_by_cli(tmp_path, server.url)
    assert "  mapped fields no record carried (6 records; renamed or dropped?): Egap\n" in output
    assert "  fields the field map does not know: Egap_fit (6)\n" in output
    run = Store(tmp_path / "store").table("fetch_runs").iloc[0]
    assert json.loads(run.absent_fields) == {"Egap": 6} and json.loads(run.unmapped_fields) == {"Egap_fit": 6}


def test_a_mapped_keyword_sent_as_null_is_no_drift(tmp_path, aflux):
    # every entry answers ael_bulk_modulus_vrh, agl_debye, ... with null: present, no value
    assert all(entry.get("ael_bulk_modulus_vrh") is None for entry in ENTRIES)
    output = fetch_all_by_cli(tmp_path, aflux.url)
    assert "mapped fields" not in output
    assert json.loads(Store(tmp_path / "store").table("fetch_runs")["absent_fields"].iloc[0]) == {}


def test_ael_and_agl_values_are_by_the_records_method_and_selected_by_it(store, tmp_path):
    # LIB3's CrRuO3 entry is PBE+U (ldau_type 2), LIB1's Ac PW91 (PAW_GGA): AEL and AGL run with those settings
    lib3 = next(entry for entry in ENTRIES if entry["auid"] == "aflow:0003b1ab0ca0d60a")
    lib1 = next(entry for entry in ENTRIES if entry["auid"] == "aflow:075dbbb922a0e4d7")
    # an entry with a hybrid calculation too (the AAPI schema's example dft_type): AEL ran with its PBE potentials
    hybrid = next(entry for entry in ENTRIES if entry["auid"] not in (lib3["auid"], lib1["auid"]))
    hybrid = hybrid | {"dft_type": ["PAW_PBE", "HSE06"], "ldau_type": 0, "ael_bulk_modulus_vrh": 180.0}
    entries = [lib3 | {"ael_bulk_modulus_vrh": 231.5}, lib1 | {"agl_debye": 142.7}, hybrid]
    with ReplayServer(Aflux(entries), prefix=AFLUX) as server:
        fetch(store, load_catalog(write_catalog(tmp_path / "catalog.yaml", server.url)), everything=True)
    methods = store.query(
        "SELECT property, method, value FROM properties WHERE property IN ('bulk_modulus', 'debye_temperature')"
    )
    assert sorted(methods.values.tolist()) == [
        ["bulk_modulus", "PBE (AEL, VRH)", 180.0],
        ["bulk_modulus", "PBE+U (AEL, VRH)", 231.5],
        ["debye_temperature", "PW91 (AGL)", 142.7],
    ]

    def selected(methods: list[str]) -> list[list]:
        dataset = Dataset(
            description="d", version="1", properties=["bulk_modulus", "debye_temperature"], methods=methods
        )
        return store.query(*dataset_query(dataset))[["record_id", "value"]].values.tolist()

    assert selected(["PBE+U"]) == [["aflow:aflow:0003b1ab0ca0d60a", 231.5]]
    assert selected(["gga+u (ael, vrh)"]) == [["aflow:aflow:0003b1ab0ca0d60a", 231.5]]
    assert selected(["PW91"]) == [["aflow:aflow:075dbbb922a0e4d7", 142.7]]
    assert selected(["PBE"]) == [[f"aflow:{hybrid['auid']}", 180.0]] and selected(["HSE06"]) == []


AGL_BULK = "  agl_bulk_modulus_static: {property: bulk_modulus, unit: GPa, method_qualifier: AGL}\n"
LIB1, LIB3 = "aflow:075dbbb922a0e4d7", "aflow:0003b1ab0ca0d60a"  # PW91 and PBE+U entries


def with_values(values: dict[str, dict]) -> list[dict]:
    """The fixture entries, those `values` names with these keywords' values (by auid)."""
    return [entry | values.get(entry["auid"], {}) for entry in ENTRIES]


def bulk_moduli(store: Store) -> list[list]:
    query = "SELECT record_id, method, value FROM properties WHERE property = 'bulk_modulus' ORDER BY ALL"
    return store.query(query).values.tolist()


def test_an_answer_without_a_qualified_field_whose_record_lost_a_value_of_another_method_is_published(
    store, tmp_path, monkeypatch
):
    """bulk_modulus mapped from AEL and AGL keywords, told apart by their qualifiers: AFLUX answering without the AGL
    one (as before it) where one entry no longer gave its AEL value, other entries still giving theirs, was refused
    as if it had dropped the AGL keyword (DroppedFields): a qualified field was matched by its property alone."""
    monkeypatch.chdir(project_with_aflow_lines(tmp_path / "project", AGL_BULK))
    aflux = Aflux(renamed={"agl_bulk_modulus_static": "agl_bulk_modulus_static_v2"})
    aflux.entries = with_values({LIB1: {"ael_bulk_modulus_vrh": 75.0}, LIB3: {"ael_bulk_modulus_vrh": 231.5}})
    with ReplayServer(aflux, prefix=AFLUX) as server:
        catalog = load_catalog(write_catalog(tmp_path / "catalog.yaml", server.url))
        fetch(store, catalog, everything=True)
        assert bulk_moduli(store) == [
            [f"aflow:{LIB3}", "PBE+U (AEL, VRH)", 231.5],
            [f"aflow:{LIB1}", "PW91 (AEL, VRH)", 75.0],
        ]
        aflux.entries = with_values({LIB1: {"ael_bulk_modulus_vrh": 75.0}})
        report = fetch(store, catalog, everything=True)
    assert report.absent == {"agl_bulk_modulus_static": 6} and report.removed.values == {"bulk_modulus": 1}
    assert bulk_moduli(store) == [[f"aflow:{LIB1}", "PW91 (AEL, VRH)", 75.0]] and not store.staged_runs()


def test_an_answer_that_dropped_a_qualified_field_is_refused_counting_its_qualified_values_alone(
    store, tmp_path, monkeypatch
):
    """The values a dropped qualified field's removal counts are those its qualifier qualifies, whatever the entry's
    method (PW91 (AGL), PBE+U (AGL)): not an AEL bulk modulus another entry lost."""
    monkeypatch.chdir(project_with_aflow_lines(tmp_path / "project", AGL_BULK))
    agl = {"agl_bulk_modulus_static": 70.2}
    aflux = Aflux(with_values({LIB1: agl, LIB3: {"ael_bulk_modulus_vrh": 231.5, "agl_bulk_modulus_static": 215.0}}))
    with ReplayServer(aflux, prefix=AFLUX) as server:
        catalog = load_catalog(write_catalog(tmp_path / "catalog.yaml", server.url))
        fetch(store, catalog, everything=True)
        before = bulk_moduli(store)
        assert [method for _, method, _ in before] == ["PBE+U (AEL, VRH)", "PBE+U (AGL)", "PW91 (AGL)"]
        aflux.entries, aflux.renamed = ENTRIES, {"agl_bulk_modulus_static": "agl_bulk_modulus_static_v2"}
        refused = r"the mapped fields agl_bulk_modulus_static \(bulk_modulus\) .* would remove 2 stored values of 2 "
        with pytest.raises(DroppedFields, match=rf"{refused}records \(bulk_modulus 2\)"):
            fetch(store, catalog, everything=True)
    assert bulk_moduli(store) == before and len(store.staged_runs()) == 1


def test_a_space_group_number_no_space_group_has_quarantines_the_record_with_the_reason(tmp_path, store):
    entries = [entry.copy() for entry in ENTRIES]
    entries[0]["spacegroup_relax"] = 231
    entries[1]["spacegroup_relax"] = 12.7  # not a whole number: not dropped, not truncated
    entries[2]["spacegroup_relax"] = "12"  # a number as text, as the old answers give every value: read
    with ReplayServer(Aflux(entries), prefix=AFLUX) as server:
        catalog = load_catalog(write_catalog(tmp_path / "catalog.yaml", server.url))
        report = fetch(store, catalog, everything=True, page_size=10)
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (6, 4, 2)
    rejected = store.query("SELECT item, reasons FROM quarantine").set_index("item")["reasons"]
    assert {item: list(reasons) for item, reasons in rejected.items()} == {
        ENTRIES[0]["auid"]: ["spacegroup_relax 231 is not a space group number (1 to 230)"],
        ENTRIES[1]["auid"]: ["spacegroup_relax 12.7 is not a space group number (1 to 230)"],
    }
    kept = store.query("SELECT spacegroup_number FROM materials WHERE source_id = ?", [ENTRIES[2]["auid"]])
    assert kept["spacegroup_number"].tolist() == [12]


def test_ids_elements_and_filters_become_the_aflux_matchbook(store, aflow_catalog, aflux):
    fetch(store, aflow_catalog, ids=["aflow:fc70fda6652015cb", "30b403721b9ffa88"], filter="Egap(1*,*3)")
    fetch(store, aflow_catalog, elements=["O", "Cr", "Ru"], filter="Egap(1*,*3)")
    assert [request.raw_path for request in aflux.requests] == [
        f"{AFLUX}?{KEYWORDS},auid('aflow:fc70fda6652015cb':'aflow:30b403721b9ffa88'),Egap(1*,*3),$paging(1,500),"
        "format(json)",
        f"{AFLUX}?{KEYWORDS},$species(Cr,O,Ru),$nspecies(3),Egap(1*,*3),$paging(1,500),format(json)",
    ]


def test_a_limit_cuts_pages_short_unless_formulas_are_checked_here(store, aflow_catalog, aflux):
    run_ingest(build_connector("aflow", aflow_catalog, FetchRequest(formulas=["CrRuO3"], limit=1)), store, limit=1)
    run_ingest(build_connector("aflow", aflow_catalog, FetchRequest(elements=["O"], limit=1)), store, limit=1)
    assert [request.raw_path.split(",$paging")[1] for request in aflux.requests] == [
        "(1,500),format(json)",
        "(1,1),format(json)",
    ]
    assert sorted(store.table("materials")["formula"]) == ["AcBr3", "CrRuO3"]  # the replay ignores $species


def test_selectors_a_matchbook_would_and_are_refused_not_narrowed(aflow_catalog, aflux):
    with pytest.raises(ConfigError, match="aflow cannot combine record ids and --elements: an AFLUX matchbook ANDs"):
        build_connector("aflow", aflow_catalog, FetchRequest(ids=["aflow:fc70fda6652015cb"], elements=["O"]))
    assert aflux.requests == []


def test_a_dry_run_says_that_aflow_does_not_say_how_many_records_match(tmp_path, aflux):
    catalog = write_catalog(tmp_path / "catalog.yaml", aflux.url)
    options = ["--catalog", str(catalog), "--store", str(tmp_path / "store"), "--no-progress"]
    result = CliRunner().invoke(app, ["fetch", "aflow", "--all", "--page-size", "4", "--dry-run", *options])
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"dry run: GET {aflux.url}") and "None" not in first
    assert first.endswith(" (the source does not say how many match); first page mapped:")
    assert "aflow: read 4, " in result.stdout


def test_formulas_select_element_sets_on_the_server_and_the_formula_here(store, aflow_catalog, aflux):
    report = fetch(store, aflow_catalog, formulas=["CaAl", "Ac"], page_size=10)
    assert aflux.requests[0].raw_path.startswith(
        f"{AFLUX}?{KEYWORDS},(($species(Al,Ca),$nspecies(2)):($species(Ac),$nspecies(1))),$paging(1,10)"
    )
    assert report.n_fetched == 2 and sorted(store.table("materials")["formula"]) == ["Ac", "CaAl"]


def test_entry_files_come_from_the_catalogs_files_url_else_the_host_the_aurl_names(tmp_path, aflux):
    mirrored = write_catalog(tmp_path / "catalog.yaml", aflux.url)
    mirrored.write_text(mirrored.read_text() + f"    files_url: {aflux.root}/files\n", encoding="utf-8")
    request = FetchRequest(everything=True, structures=True)
    connector = build_connector("aflow", load_catalog(mirrored), request)
    assert connector.entry_root == f"{aflux.root}/files/"
    plain = build_connector("aflow", load_catalog(write_catalog(tmp_path / "plain.yaml", aflux.url)), request)
    assert plain.entry_root is None
    assert entry_url("aflowlib.duke.edu:AFLOWDATA/ICSD_WEB/HEX/X", plain.entry_root).startswith("https://aflowlib")


@pytest.mark.parametrize(
    ("base_url", "root"),
    [
        ("http://mirror.example.org/aflow/API/aflux/", "http://mirror.example.org/aflow/"),
        ("http://mirror.example.org:8080/API/aflux/v1.0/", "http://mirror.example.org:8080/"),
        ("https://aflow.org/API/aflux/v1.0/", None),  # AFLOW's own servers: where each aurl says
        ("https://www.aflow.org/API/aflux/", None),
        ("http://mirror.example.org/aflow/api/aflux/", "http://mirror.example.org/aflow/"),
        (None, None),
    ],
)
def test_entry_files_of_a_mirror_come_from_its_root(aflow_catalog, base_url, root):
    assert entry_root(aflow_catalog.source("aflow"), FetchRequest(base_url=base_url)) == root


@pytest.mark.parametrize("rows_at_a_time", [10_000, 4])  # the run's file is rewritten in slices of this many rows
def test_a_fetch_without_structures_keeps_the_structures_a_fetch_with_them_stored(
    store, aflow_catalog, aflux, monkeypatch, rows_at_a_time
):
    monkeypatch.setattr("matreg.store.PUBLISH_BATCH_ROWS", rows_at_a_time)
    with_structures = FetchRequest(everything=True, page_size=10, structures=True, base_url=aflux.url)
    run_ingest(build_connector("aflow", aflow_catalog, with_structures), store)
    stored = store.table("materials")[["record_id", "structure", "notes"]]
    assert stored["structure"].notna().sum() == 6
    assert stored["notes"].str.startswith("AFLOW catalog").all()  # from each entry's aflowlib.json
    again = run_ingest(build_connector("aflow", aflow_catalog, FetchRequest(everything=True, page_size=10)), store)
    assert again.n_unchanged == 6
    assert store.table("materials")[["record_id", "structure", "notes"]].equals(stored)


CHANGED = "aflow:075dbbb922a0e4d7"  # Ac, one site, Fm-3m (225)


@pytest.mark.parametrize(
    ("change", "what_changed"),
    [
        ({"compound": "Th1", "species": ["Th"]}, "formula Ac -> Th"),
        ({"compound": "Ac2", "natoms": 2}, "sites 1 -> 2"),
        ({"spacegroup_relax": 229}, "space group 225 -> 229"),
    ],
    ids=["composition", "cell", "space group"],
)
def test_a_fetch_without_structures_keeps_no_structure_of_an_entry_now_another_material(
    tmp_path, store, caplog, change, what_changed
):
    entries = json.loads(json.dumps(ENTRIES))
    with ReplayServer(Aflux(entries), prefix=AFLUX) as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.url))
        fetch(store, catalog, everything=True, page_size=10, structures=True, base_url=server.url)
        before = store.table("materials").set_index("source_id")[["structure", "notes"]]
        next(entry for entry in entries if entry["auid"] == CHANGED).update(change)
        report = fetch(store, catalog, everything=True, page_size=10)
        again = fetch(store, catalog, everything=True, page_size=10)
    after = store.table("materials").set_index("source_id")[["structure", "notes"]]
    assert (report.n_stored, report.n_unchanged, again.n_unchanged) == (6, 5, 6)
    assert after.drop(CHANGED).equals(before.drop(CHANGED))  # the same materials keep theirs
    assert pd.isna(after.loc[CHANGED, "structure"])
    assert after.loc[CHANGED, "notes"] == (
        f"Pearson symbol cF4; stored structure not kept: not read by this run, and the record changed since "
        f"({what_changed})"
    )
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert warnings == [
        "stored structure of 1 record(s) not kept: not read by this run, and the record changed since (its formula, "
        "sites or space group); their notes say what changed"
    ]


def test_a_request_for_nothing_is_a_clear_error(aflow_catalog):
    with pytest.raises(ConfigError, match="no AFLOW entries asked for"):
        build_connector("aflow", aflow_catalog, FetchRequest())


def test_structures_come_from_each_entrys_aflowlib_json_on_the_server_base_url_names(store, aflow_catalog, aflux):
    request = FetchRequest(everything=True, page_size=10, structures=True, base_url=aflux.url)  # as --base-url
    report = run_ingest(build_connector("aflow", aflow_catalog, request), store)
    assert report.n_stored == 6
    assert "/AFLOWDATA/LIB3_RAW/Cr_pvORu_pv/T0009.ACB:LDAU2/aflowlib.json" in {r.path for r in aflux.requests}
    structures = store.table("materials").set_index("source_id")["structure"]
    icsd = Structure.from_dict(json.loads(structures["aflow:fc70fda6652015cb"]))
    assert (icsd.composition.reduced_formula, len(icsd)) == ("AcBr3", 8)
    assert icsd.volume / len(icsd) == pytest.approx(34.7942, abs=1e-3)
    assert icsd.get_space_group_info()[1] == 176
    with pytest.raises(RecordError, match=r"^aflowlib.json: composition \[2, 6\] counts 8 atoms for 7 positions"):
        aflow_structure({**ENTRIES[0], "positions_fractional": ENTRIES[0]["positions_fractional"][:7]})
    with pytest.raises(RecordError, match="no cell from geometry, species and composition: int too large to convert"):
        aflow_structure({**ENTRIES[0], "geometry": [10**400, *ENTRIES[0]["geometry"][1:]]})
    with pytest.raises(RecordError, match="^aflowlib.json: geometry entry True is not a number"):  # not a = 1 Å
        aflow_structure({**ENTRIES[0], "geometry": [True, *ENTRIES[0]["geometry"][1:]]})


@pytest.mark.parametrize(
    ("count", "reason"),
    [
        (1e154, f"composition [1e+154, 6] counts {int(1e154) + 6} atoms for 8 positions (positions_fractional)"),
        (10**400, f"composition count {10**400} is not a whole number of atoms"),
    ],
    ids=["1e154", "no float"],
)
def test_a_composition_counting_more_atoms_than_a_memory_holds_is_refused_before_its_sites_are_listed(
    aflow_catalog, count, reason
):
    """A count of 1e154 atoms was listed site by site: a MemoryError (the run failed, or the host ran out of memory);
    an integer past the largest float was an OverflowError (a record 'not in the form the mapping reads')."""
    connector = build_connector("aflow", aflow_catalog, FetchRequest(everything=True, structures=True))
    with pytest.raises(RecordError) as refused:
        connector.to_record(ENTRIES[0] | {"aflowlib.json": ENTRIES[0] | {"composition": [count, 6]}})
    assert str(refused.value) == f"aflowlib.json: {reason}"


class AfluxWithBrokenFile(Aflux):
    """AFLUX whose ICSD entry (AcBr3) has an aflowlib.json that answers `reply`."""

    def __init__(self, reply: Reply) -> None:
        super().__init__()
        self.reply = reply

    def __call__(self, request: Request) -> Reply:
        if request.path == "/" + ENTRIES[0]["aurl"].partition(":")[2] + "/aflowlib.json":
            return self.reply
        return super().__call__(request)


@pytest.mark.parametrize(
    ("reply", "why"),
    [(Reply(403, b"Forbidden", "text/plain"), "HTTP 403"), (Reply(200, b"<html>busy</html>", "text/html"), "not JSON")],
    ids=["refused", "not JSON"],
)
def test_an_entry_file_that_cannot_be_read_leaves_its_record_without_structure_and_says_why(
    tmp_path, store, reply, why
):
    with ReplayServer(AfluxWithBrokenFile(reply), prefix=AFLUX) as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.url))
        request = FetchRequest(everything=True, page_size=10, structures=True, base_url=server.url)
        report = run_ingest(build_connector("aflow", catalog, request), store)
    assert (report.status, report.n_stored, report.n_quarantined) == ("complete", 6, 0)
    materials = store.table("materials").set_index("source_id")
    assert materials["structure"].isna().sum() == 1 and pd.isna(materials.loc["aflow:fc70fda6652015cb", "structure"])
    assert f"structure not kept: {why}" in materials.loc["aflow:fc70fda6652015cb", "notes"]
    assert report.unmapped.get("aflowlib.json unread") is None


@pytest.mark.parametrize("formula", ["AcBr3", "Ac2Br6", "Ac0.25Br0.75", "Br3Ac"])
def test_a_formula_selects_its_composition_however_it_is_written(store, aflow_catalog, formula):
    report = fetch(store, aflow_catalog, formulas=[formula], page_size=10)
    assert (report.n_stored, store.table("materials")["formula"].tolist()) == (1, ["AcBr3"])


# A POCC entry (partial occupation): its natoms is the average cell's atom count, fractional where sites are partly
# vacant. The ICSD entry as if one Br site in twelve were empty: 7.5 atoms of Ac2Br5.5 per cell.
POCC = ENTRIES[0] | {
    "aurl": "aflowlib.duke.edu:AFLOWDATA/ICSD_WEB/HEX/Ac1Br3_ICSD_31578:POCC_P0-1xA_P1-0.9167xB",
    "compound": "Ac2Br5.5",
    "agl_heat_capacity_Cp_300K": 5.5,
}


@pytest.mark.parametrize("natoms", [7.5, "7.5"], ids=["typed", "old string"])
def test_a_pocc_entrys_per_cell_value_is_per_atom_of_its_average_cell(tmp_path, store, natoms):
    with ReplayServer(Aflux([POCC | {"natoms": natoms}]), prefix=AFLUX) as server:
        catalog = load_catalog(write_catalog(tmp_path / "catalog.yaml", server.url))
        report = fetch(store, catalog, everything=True)
    assert (report.n_stored, report.n_quarantined) == (1, 0)
    material = store.table("materials").iloc[0]
    assert (material.formula, material.atoms_per_formula_unit) == ("Ac2Br5.5", 7.5)
    assert pd.isna(material.nsites)  # a site count is whole: the average cell has none
    assert "natoms 7.5 (partial occupation, the average cell): heat_capacity_cp per cell divided by it" in (
        material.notes
    )
    heat_capacity = store.query("SELECT value, unit FROM properties WHERE property = 'heat_capacity_cp'").iloc[0]
    # 5.5 k_B per cell of 7.5 atoms, per formula unit Ac2Br5.5 of 7.5 atoms: 5.5 R
    assert heat_capacity.value == pytest.approx(5.5 * 8.314462618) and heat_capacity.unit == "J/(mol*K)"


@pytest.mark.parametrize("natoms", [True, 0, -8, "NaN", "inf", "eight"])
def test_a_natoms_that_is_no_atom_count_leaves_per_cell_values_quarantined_and_no_sites(aflow_catalog, natoms):
    connector = build_connector("aflow", aflow_catalog, FetchRequest(everything=True))
    record = connector.to_record(ENTRIES[0] | {"natoms": natoms, "agl_heat_capacity_Cp_300K": 5.502})
    canonical = harmonize(record, connector.attribution, RunStamp("run", datetime.now(UTC)))
    assert canonical.material["nsites"] is None and "natoms" not in canonical.material["notes"]
    assert [rejection.reasons for rejection in canonical.rejected] == [
        ["cannot convert 'k_B/cell' to 'J/(mol*K)' without the number of atoms"]
    ]


@pytest.mark.parametrize("composition", [[2, 5.5], [2.5, 6]], ids=["fewer sites", "as many sites"])
def test_a_pocc_entry_file_with_fractional_atoms_per_species_keeps_the_values_and_no_structure(
    tmp_path, store, composition
):
    entry = POCC | {"natoms": 7.5, "composition": composition}
    with ReplayServer(Aflux([entry]), prefix=AFLUX) as server:
        catalog = load_catalog(write_catalog(tmp_path / "catalog.yaml", server.url))
        report = fetch(store, catalog, everything=True, structures=True, base_url=server.url)
    assert (report.n_stored, report.n_quarantined) == (1, 0)
    material = store.table("materials").iloc[0]
    assert pd.isna(material.structure)  # the sites of 2.5 Ac atoms are not those of 2
    assert f"structure not kept: aflowlib.json: composition {composition} is not whole atoms" in material.notes
    assert len(store.query("SELECT * FROM properties WHERE property = 'heat_capacity_cp'")) == 1


def test_a_project_adds_a_field_and_a_property_of_its_own_in_its_working_directory(tmp_path, aflux, monkeypatch):
    # the project's folder: a copy of matreg's AFLOW field map with one line more, and one property of its own
    project = project_with_aflow_lines(tmp_path / "project", "  Egap_fit: {property: fitted_band_gap, unit: meV}\n")
    (project / "schemas").mkdir()
    (project / "schemas" / "properties.yaml").write_text(
        "fitted_band_gap:\n  description: Band gap fitted to experiment\n  unit: eV\n  bounds: [0, 50]\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(project)
    catalog = load_catalog(write_catalog(tmp_path / "catalog.yaml", aflux.url))
    report = fetch(Store(tmp_path / "store"), catalog, everything=True)
    assert (report.n_stored, report.n_quarantined) == (6, 0)
    assert "Egap_fit" in aflux.requests[0].raw_path
    values = Store(tmp_path / "store").table("properties").query("property == 'fitted_band_gap'")
    rows = zip(values.record_id, values.value, values.unit, values.original_value, strict=True)
    by_record = {record: (value, unit, original) for record, value, unit, original in rows}
    assert by_record == {  # (the field map says meV: converted to the vocabulary's eV)
        "aflow:aflow:fc70fda6652015cb": (pytest.approx(6.45112e-3), "eV", pytest.approx(6.45112)),
        "aflow:aflow:0003b1ab0ca0d60a": (0.0, "eV", 0.0),
    }
    monkeypatch.chdir(tmp_path)  # elsewhere, matreg's own map and vocabulary again
    assert "Egap_fit" not in load_field_map("aflow").fields
    with pytest.raises(pydantic.ValidationError, match=r"not in the property vocabulary: fitted_band_gap"):
        Dataset(description="d", version="1", properties=["fitted_band_gap"])


@pytest.mark.parametrize(
    ("options", "recorded"),
    [
        ({"formulas": ["CrRuO3"], "limit": 1}, "--limit 1"),  # formulas are checked here: pages are not cut to --limit
        ({"formulas": ["CrRuO3"], "limit": 1, "page_size": 1}, "--page-size 1 --limit 1"),
        ({"elements": ["O"], "limit": 1}, "--limit 1"),  # the page cut to --limit, as a fetch without --page-size
        ({"elements": ["O"], "page_size": 500}, ""),  # the default, typed
    ],
)
def test_a_runs_options_name_the_page_size_only_where_it_is_not_what_the_fetch_asks_without_one(
    store, aflow_catalog, aflux, options, recorded
):
    run_ingest(build_connector("aflow", aflow_catalog, FetchRequest(**options)), store, limit=options.get("limit"))
    assert list(store.query("SELECT options FROM fetch_runs")["options"]) == [recorded]
