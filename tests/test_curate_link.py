"""Cross-database linking, conflicts and resolution on real records: JARVIS-DFT, the Materials Project and MP's
OPTIMADE server replayed on 127.0.0.1, plus a lab file of measured band gaps (tests/fixtures/curate_link/SOURCES.md)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import ONE_COMPOSITION, as_an_older_matreg_stored
from pymatgen.core import Structure
from replay import ReplayServer, Reply, Request

from matreg import formula as formula_module
from matreg.catalog import Dataset, Resolution, load_catalog
from matreg.curate import link, symmetry
from matreg.curate.conflicts import (
    CONFLICT_COLUMNS,
    find_conflicts,
    preference_left_out,
    resolution_conflicts,
    resolve,
    unmatched_preferences,
)
from matreg.curate.link import link_records
from matreg.curate.release import curate_dataset
from matreg.errors import ConfigError, FormulaError
from matreg.export import dataset_query
from matreg.formula import composition_key
from matreg.ingest import run_ingest
from matreg.ml.features import composition_of
from matreg.sources import FetchRequest, build_connector
from matreg.sources.lab import LabConnector, load_mapping
from matreg.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
HERE = FIXTURES / "curate_link"
JARVIS_ZIP = (FIXTURES / "jarvis" / "jdft_3d-9-24-2025.json.zip").read_bytes()
JARVIS_PATH = "/files/64391379"  # figshare's path of the dft_3d file jarvis-tools reads
MP_SUMMARY = json.loads((HERE / "mp_summary.json").read_text(encoding="utf-8"))
MP_HEARTBEAT = (FIXTURES / "mp" / "heartbeat.json").read_bytes()
OPTIMADE_PAGE = (HERE / "optimade_mp_page.json").read_bytes()
ZNSE = {"jarvis:JVASP-96", "mp:mp-1190", "optimade:mp-1190", "zhuo-lab:zhuo-237"}
PREFER = ["experimental", "r2SCAN", "PBE+U", "PBE"]
GAPS = Dataset(description="band gaps", version="0.1.0", properties=["band_gap"])
LAB_METHOD = "optical absorption / transport (compiled)"
OPTIMADE_METHOD = "PBE(+U)"  # connectors/optimade.yaml, for _mp_stability.gga_gga+u


def route(request: Request, docs: list[dict] | None = None) -> Reply:
    """figshare's JARVIS download, an OPTIMADE structures page, the Materials Project's heartbeat and summary API
    (answering `docs`, default every document of mp_summary.json)."""
    if request.path == JARVIS_PATH:
        return Reply(200, JARVIS_ZIP, "application/zip")
    if request.path == "/v1/structures":
        return Reply(200, OPTIMADE_PAGE)
    if request.path == "/heartbeat":
        return Reply(200, MP_HEARTBEAT)
    if request.path != "/materials/summary/":
        return Reply(404, b'{"detail": "Not Found"}')
    skip, limit = int(request.query.get("_skip", ["0"])[0]), int(request.query.get("_limit", ["100"])[0])
    docs = MP_SUMMARY["data"] if docs is None else docs
    return Reply.json({"data": docs[skip : skip + limit], "meta": {**MP_SUMMARY["meta"], "total_doc": len(docs)}})


def write_catalog(path: Path, server: ReplayServer) -> Path:
    """A catalog with the jarvis, mp and optimade sources on the replay server, fast retries."""
    http = "    http: {retries: 3, backoff_s: 0, jitter_s: 0, timeout_s: 5, cache: false}\n"
    path.write_text(
        "sources:\n"
        "  jarvis:\n"
        "    title: NIST JARVIS-DFT dft_3d (local replay)\n"
        "    connector: jarvis\n"
        f"    base_url: {server.root}{JARVIS_PATH}\n"
        "    provenance: dft\n"
        "    license: CC-BY-4.0\n"
        "    citation: Choudhary et al., npj Comput. Mater. 6, 173 (2020)\n"
        f"{http}"
        "  mp:\n"
        "    title: Materials Project (local replay)\n"
        "    connector: mp\n"
        f"    base_url: {server.url}\n"
        "    provenance: dft\n"
        "    license: CC-BY-4.0\n"
        "    citation: Jain et al., APL Materials 1, 011002 (2013)\n"
        "    auth_env: MP_API_KEY\n"
        f"{http}"
        "  optimade:\n"
        "    title: Materials Project OPTIMADE (local replay)\n"
        "    connector: optimade\n"
        f"    base_url: {server.root}\n"
        "    provider: mp\n"
        "    provenance: dft\n"
        "    license: CC-BY-4.0\n"
        "    citation: Andersen et al., Sci. Data 8, 217 (2021)\n"
        f"{http}",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def linked(tmp_path_factory) -> Store:
    """Every JARVIS fixture record, seven MP records (one also through OPTIMADE) and three measured gaps."""
    root = tmp_path_factory.mktemp("linked")
    store = Store(root / "store")
    with ReplayServer(route) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("MP_API_KEY", "5f1d0c9e8b7a4d3c2b1a09f8e7d6c5b4")  # 32 characters, as mp-api checks; not a key
        patch.delenv("MP_API_ENDPOINT", raising=False)
        catalog = load_catalog(write_catalog(root / "catalog.yaml", server))
        for source in ("jarvis", "mp", "optimade"):
            request = FetchRequest(everything=True, page_size=5)
            run_ingest(build_connector(source, catalog, request, cache_path=store.cache_path), store)
    run_ingest(LabConnector(HERE / "lab_bandgaps.csv", load_mapping(HERE / "lab_mapping.yaml")), store)
    return store


def fetch_mp(store: Store, folder: Path, material_ids: list[str]) -> None:
    """Fetch these records of mp_summary.json from the Materials Project's summary API, replayed."""
    docs = [doc for doc in MP_SUMMARY["data"] if doc["material_id"] in material_ids]
    with ReplayServer(functools.partial(route, docs=docs)) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("MP_API_KEY", "5f1d0c9e8b7a4d3c2b1a09f8e7d6c5b4")
        patch.delenv("MP_API_ENDPOINT", raising=False)
        catalog = load_catalog(write_catalog(folder / "mp-catalog.yaml", server))
        run_ingest(build_connector("mp", catalog, FetchRequest(everything=True), cache_path=store.cache_path), store)


def import_lab(store: Store, folder: Path, name: str, rows: str, mapping: str = "") -> None:
    """Import lab file `name` (`rows`: a CSV with id and formula columns) with these mapping lines (`mapping`: the
    provenance, the method, the columns)."""
    (folder / f"{name}.csv").write_text(rows, encoding="utf-8")
    (folder / f"{name}.yaml").write_text(
        f"dataset: {name}\nformula_column: formula\nid_column: id\ncitation: c\n{mapping}", encoding="utf-8"
    )
    run_ingest(LabConnector(folder / f"{name}.csv", load_mapping(folder / f"{name}.yaml")), store)


@pytest.fixture(scope="module")
def groups(linked) -> pd.DataFrame:
    return link_records(linked)


def group_of(groups: pd.DataFrame) -> dict[str, str]:
    return dict(zip(groups["record_id"], groups["group_id"], strict=True))


def members(groups: pd.DataFrame, group_id: str) -> set[str]:
    return set(groups[groups["group_id"] == group_id]["record_id"])


def gaps(store: Store, dataset: Dataset = GAPS) -> pd.DataFrame:
    return store.query(*dataset_query(dataset))


def test_one_compound_from_three_replayed_sources_and_a_lab_file_is_one_group(linked, groups):
    assert len(groups) == 12 + 7 + 1 + 3 and groups["record_id"].is_unique
    assert members(groups, "ZnSe/216") == ZNSE
    sources = linked.query(
        "SELECT source, coalesce(spacegroup_number, 0), structure IS NOT NULL FROM materials "
        "WHERE record_id IN (SELECT unnest(?)) ORDER BY source",
        [sorted(ZNSE)],
    )
    # OPTIMADE states no space group: it comes from the structure (SpacegroupAnalyzer), then StructureMatcher agrees
    assert sources.values.tolist() == [
        ["jarvis", 216, True],
        ["mp", 216, True],
        ["optimade", 0, True],
        ["zhuo-lab", 0, False],
    ]


def test_structure_matcher_links_equal_structures_and_splits_polytypes_of_one_space_group(groups):
    assert members(groups, "BaTiO3/99") == {"jarvis:JVASP-110", "mp:mp-5986"}
    assert members(groups, "Al2O3/167") == {"jarvis:JVASP-32", "mp:mp-1143"}
    # JARVIS's SiC is 4H, MP's are 6H (mp-7631, 12 sites) and 8H (mp-567505, 16 sites): all P6_3mc, three materials
    sic = {group: members(groups, group) for group in groups["group_id"] if group.startswith("SiC/")}
    assert sic == {  # each cluster named by its smallest record id
        "SiC/186/jarvis:JVASP-107": {"jarvis:JVASP-107"},
        "SiC/186/mp:mp-567505": {"mp:mp-567505"},
        "SiC/186/mp:mp-7631": {"mp:mp-7631"},
        "SiC/216": {"mp:mp-8062"},
    }


def test_the_id_of_a_polytype_stays_when_a_record_joins_another_polytype(store, tmp_path):
    fetch_mp(store, tmp_path, ["mp-7631", "mp-567505"])  # 6H and 8H SiC, both P6_3mc
    before = group_of(link_records(store))
    assert before == {"mp:mp-567505": "SiC/186/mp:mp-567505", "mp:mp-7631": "SiC/186/mp:mp-7631"}
    six_h = next(doc for doc in MP_SUMMARY["data"] if doc["material_id"] == "mp-7631")
    Structure.from_dict(six_h["structure"]).to(filename=str(tmp_path / "sic-6h.cif"))
    mapping = "structure_column: structure\ncolumns:\n  gap: {property: band_gap, unit: eV}\n"
    import_lab(store, tmp_path, "lab", "id,formula,gap,structure\nx,SiC,3.02,sic-6h.cif\n", mapping)
    after = group_of(link_records(store))
    assert after["lab:x"] == after["mp:mp-7631"]  # the lab's 6H sample joins MP's 6H, its id smaller
    assert after["mp:mp-567505"] == "SiC/186/mp:mp-567505"  # 8H keeps its id (it was 'SiC/186/1', then '/2')


def test_a_record_without_structure_joins_the_group_of_its_formulas_ground_state(groups):
    group = group_of(groups)
    assert group["zhuo-lab:zhuo-237"] == "ZnSe/216"  # mp-1190: 0 eV/atom above the hull
    assert group["zhuo-lab:zhuo-1338"] == "BaTiO3/160"  # mp-5020 on the hull; mp-5986 (99) 3.2 meV/atom above it
    assert group["mp:mp-5986"] == group["jarvis:JVASP-110"] == "BaTiO3/99"
    assert group["zhuo-lab:zhuo-22"] == "CdS"  # no other source has CdS


def test_a_record_without_structure_never_joins_a_metastable_polymorph_or_a_named_phase(store, catalog, tmp_path):
    fetch_mp(store, tmp_path, ["mp-5986", "mp-1143"])  # BaTiO3/99, 3.2 meV/atom above the hull; corundum on it
    run_ingest(build_connector("janaf", catalog, FetchRequest(ids=["Al-096", "Al-098"])), store)  # alpha, gamma
    import_lab(store, tmp_path, "lab", "id,formula,gap\na,BaTiO3,3.1\nb,Al2O3,8.8\n", "columns:\n  gap: {unit: eV}\n")
    group = group_of(link_records(store))
    assert group["lab:a"] == "BaTiO3"  # the store's only BaTiO3 is no ground state: apart, not 'BaTiO3/99'
    assert group["lab:b"] == group["mp:mp-1143"] == "Al2O3/167"  # JANAF's named phases state no hull: not candidates
    fetch_mp(store, tmp_path, ["mp-5020"])  # the ground state of BaTiO3 (160) arrives
    assert group_of(link_records(store))["lab:a"] == "BaTiO3/160"
    ehull = "provenance: dft\nmethod: PBE\ncolumns:\n  ehull: {property: energy_above_hull, unit: eV/atom}\n"
    import_lab(store, tmp_path, "calc", "id,formula,ehull\nm1,BaTiO3,0.039\n", ehull)  # a metastable phase's
    assert group_of(link_records(store))["calc:m1"] == "BaTiO3"


def test_two_ground_states_of_one_formula_leave_a_record_without_structure_apart(store, tmp_path):
    fetch_mp(store, tmp_path, ["mp-7631", "mp-567505"])  # 6H and 8H SiC: 0.2 and 0.4 meV/atom above the hull
    import_lab(store, tmp_path, "lab", "id,formula,gap\na,SiC,3.0\n", "columns:\n  gap: {unit: eV}\n")
    assert group_of(link_records(store))["lab:a"] == "SiC"  # which polytype is unknown


class ReferencePages:
    """The OPTIMADE reference server's recorded pages (tests/fixtures/optimade), by `page_offset`."""

    recorded_root = "http://127.0.0.1:5077"

    def __init__(self) -> None:
        self.root = ""

    def __call__(self, request: Request) -> Reply:
        page = {"0": 1, "4": 2, "8": 3, "12": 4}.get(request.query.get("page_offset", ["0"])[0])
        if request.path != "/v1/structures" or page is None:
            return Reply(404, b'{"errors": [{"status": "404"}]}')
        text = (FIXTURES / "optimade" / f"ref_nelements2_page{page}.json").read_text(encoding="utf-8")
        return Reply(200, text.replace(self.recorded_root, self.root).encode())


def test_structures_whose_symmetry_spglib_cannot_find_are_linked_by_formula(store, tmp_path):
    pages = ReferencePages()
    with ReplayServer(pages) as server:
        pages.root = server.root
        lines = ["sources:"]
        for name in ("optimade", "optimade-mirror"):  # the same provider twice: every formula held by two records
            lines += [
                f"  {name}:",
                "    title: OPTIMADE reference server (local replay)",
                "    connector: optimade",
                f"    base_url: {server.root}",
                "    provider: exmpl",
                "    provenance: dft",
                "    license: MIT",
                "    citation: Andersen et al., Sci. Data 8, 217 (2021)",
                "    http: {retries: 3, backoff_s: 0, jitter_s: 0, timeout_s: 5, cache: false}",
            ]
        (tmp_path / "catalog.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        catalog = load_catalog(tmp_path / "catalog.yaml")
        for name in ("optimade", "optimade-mirror"):
            run_ingest(build_connector(name, catalog, FetchRequest(filter="nelements>=2", page_size=4)), store)
    groups = link_records(store)
    assert len(groups) == 24 and groups["group_id"].nunique() == 12
    # the synthetic cells of the reference data have no symmetry spglib can find: formula groups of both copies
    group = group_of(groups)
    for source_id, formula in store.query("SELECT source_id, formula FROM materials WHERE source = 'optimade'").values:
        assert group[f"optimade:{source_id}"] == group[f"optimade-mirror:{source_id}"] == formula


def test_one_composition_written_with_fractions_or_whole_numbers_is_one_group(store, tmp_path):
    mapping = "dataset: lab\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n  gap: {unit: eV}\n"
    (tmp_path / "m.yaml").write_text(mapping, encoding="utf-8")
    rows = "id,formula,gap\na,TeSe,0.3\nb,Te0.5Se0.5,0.9\nc,Cu9S5,1.2\nd,Cu1.8S1,1.25\n"
    (tmp_path / "gaps.csv").write_text(rows, encoding="utf-8")
    run_ingest(LabConnector(tmp_path / "gaps.csv", load_mapping(tmp_path / "m.yaml")), store)
    group = group_of(link_records(store))
    assert group["lab:a"] == group["lab:b"] == "TeSe" and group["lab:c"] == group["lab:d"] == "Cu9S5"
    assert find_conflicts(store, "band_gap")["record_id"].tolist() == ["lab:a", "lab:b"]  # 0.6 eV apart
    sql, params = dataset_query(Dataset(description="d", version="1.0.0", properties=["band_gap"]))
    medians = resolve(store.query(sql, params), link_records(store), Resolution(strategy="median"))
    assert sorted(medians["formula"]) == ["Cu9S5", "TeSe"]  # a formula, not 'Te0.5Se0.5; TeSe'


DOPED_AND_HOSTS = [("Zn0.9999Co0.0001O", "ZnO"), ("Cd0.99999Zn0.00001Te", "CdTe"), ("Si0.99999B0.00001", "Si")]


def test_a_doped_sample_is_not_linked_to_its_host_and_exact_equivalents_are(store, tmp_path):
    pairs = [*DOPED_AND_HOSTS, ("Zn1.9998Co0.0002O2", "Zn0.9999Co0.0001O"), *ONE_COMPOSITION]
    rows = "".join(f"{i}a,{first},1.0\n{i}b,{second},1.0\n" for i, (first, second) in enumerate(pairs))
    import_lab(store, tmp_path, "lab", "id,formula,gap\n" + rows, "columns:\n  gap: {unit: eV}\n")
    group = group_of(link_records(store))
    apart = [group[f"lab:{i}a"] != group[f"lab:{i}b"] for i in range(len(DOPED_AND_HOSTS))]
    assert apart == [True] * 3 and [group[f"lab:{i}b"] for i in range(3)] == ["ZnO", "CdTe", "Si"]
    linked = [group[f"lab:{i}a"] == group[f"lab:{i}b"] for i in range(len(DOPED_AND_HOSTS), len(pairs))]
    assert linked == [True] * 7  # the doped ZnO written with twice the amounts too
    assert group["lab:0a"] == "Zn9999CoO10000"  # its whole numbers, exactly as written


def test_a_doped_sample_is_neither_averaged_with_its_host_nor_preferred_over_it(store, tmp_path):
    mapping = "provenance: {}\ncolumns:\n  gap: {{property: band_gap, unit: eV}}\n"
    import_lab(store, tmp_path, "dft", "id,formula,gap\nd1,ZnO,0.73\nd2,CdTe,0.59\n", mapping.format("dft"))
    import_lab(store, tmp_path, "laba", "id,formula,gap\na1,ZnO,3.44\n", mapping.format("experimental"))
    rows = "id,formula,gap\nb1,Zn0.9999Co0.0001O,3.30\nb2,Cd0.99999Zn0.00001Te,1.50\n"
    import_lab(store, tmp_path, "labb", rows, mapping.format("experimental"))
    long, groups = gaps(store), link_records(store)
    medians = resolve(long[long["provenance"] == "experimental"], groups, Resolution(strategy="median"))
    values = dict(zip(medians["formula"], medians["value"], strict=True))
    assert values == {"ZnO": 3.44, "Zn0.9999Co0.0001O1": 3.30, "Zn1e-05Cd0.99999Te1": 1.50}  # no median of 3.37
    numbers, fractions = composition_of("Zn0.9999Co0.0001O1")  # an export's composition features of the doped row
    assert dict(zip(numbers, fractions, strict=True))[27] == pytest.approx(0.00005)
    kept = resolve(long, groups, Resolution(strategy="prefer", prefer=["experimental"]))
    assert sorted(kept["record_id"]) == ["dft:d2", "laba:a1", "labb:b1", "labb:b2"]  # pure CdTe's DFT value kept


def test_molar_values_of_one_material_are_compared_per_mole_of_its_reduced_formula(store, tmp_path):
    mapping = "dataset: lab\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
    (tmp_path / "m.yaml").write_text(mapping + "  dHf: {property: enthalpy_of_formation, unit: kJ/mol}\n")
    (tmp_path / "dhf.csv").write_text("id,formula,dHf\na,Fe2O3,-824.2\nb,Fe4O6,-1648.6\n", encoding="utf-8")
    run_ingest(LabConnector(tmp_path / "dhf.csv", load_mapping(tmp_path / "m.yaml")), store)
    assert find_conflicts(store, "enthalpy_of_formation", tolerance=0.1).empty  # -1648.6 kJ per mol of Fe4O6
    assert find_conflicts(store, "enthalpy_of_formation", tolerance=0.01)["value"].tolist() == [-824.3, -824.2]
    sql, params = dataset_query(Dataset(description="d", version="1.0.0", properties=["enthalpy_of_formation"]))
    long = store.query(sql, params)
    assert long["formula_original"].tolist() == ["Fe2O3", "Fe4O6"]  # the formula unit of each molar value
    median = resolve(long, link_records(store), Resolution(strategy="median")).iloc[0]
    assert (median["value"], median["formula_original"]) == (pytest.approx(-824.25), "Fe2O3")


def test_the_raw_value_of_a_median_of_molar_values_is_per_mole_of_the_formula_unit_too(store, tmp_path):
    mapping = "dataset: lab\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
    (tmp_path / "m.yaml").write_text(mapping + "  dHf: {property: enthalpy_of_formation, unit: kJ/mol}\n")
    (tmp_path / "dhf.csv").write_text("id,formula,dHf\na,Fe2O3,-824.2\nb,Fe4O6,-1648.6\n", encoding="utf-8")
    run_ingest(LabConnector(tmp_path / "dhf.csv", load_mapping(tmp_path / "m.yaml")), store)
    sql, params = dataset_query(Dataset(description="d", version="1.0.0", properties=["enthalpy_of_formation"]))
    long = store.query(sql, params)
    curated = long.assign(raw_value=long["value"], value=long["value"].where(long["record_id"] != "lab:a", -830.0))
    median = resolve(curated, link_records(store), Resolution(strategy="median")).iloc[0]
    assert (median["value"], median["raw_value"]) == (pytest.approx(-827.15), pytest.approx(-824.25))


def test_molar_values_of_a_fractional_formula_are_compared_per_its_own_formula_unit(store, tmp_path):
    mapping = "dataset: lab\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
    (tmp_path / "m.yaml").write_text(mapping + "  dHf: {property: enthalpy_of_formation, unit: kJ/mol}\n")
    rows = "id,formula,dHf\na,Fe0.947O,-266.27\nb,Fe0.947O,-266.0\nc,Fe1.894O2,-532.0\n"  # wustite (JANAF Fe-001)
    (tmp_path / "dhf.csv").write_text(rows, encoding="utf-8")
    run_ingest(LabConnector(tmp_path / "dhf.csv", load_mapping(tmp_path / "m.yaml")), store)
    groups = link_records(store)
    assert set(groups["formula_unit"]) == {"Fe0.947O1"} and groups["unit_atoms"].tolist() == [pytest.approx(1.947)] * 3
    conflicts = find_conflicts(store, "enthalpy_of_formation", tolerance=0.2, groups=groups)
    assert conflicts["value"].tolist() == [pytest.approx(-266.27), -266.0, -266.0]  # not per 1000 formula units
    assert conflicts["spread"].tolist() == [pytest.approx(0.27)] * 3
    assert find_conflicts(store, "enthalpy_of_formation", tolerance=1, groups=groups).empty
    sql, params = dataset_query(Dataset(description="d", version="1.0.0", properties=["enthalpy_of_formation"]))
    median = resolve(store.query(sql, params), groups, Resolution(strategy="median")).iloc[0]
    assert (median["value"], median["formula_original"]) == (-266.0, "Fe0.947O1")


def test_molar_values_of_a_liquid_ending_in_water_after_a_decimal_amount_are_compared_per_its_own_atoms(
    store, tmp_path
):
    # a liquid's formula unit is its formula as written, read again for its atoms: 'Ca1.5H2O' was read as Ca·5H2O (16
    # atoms for 4.5, its kJ/mol compared x3.6) and written so into the median row's formula_original
    rows = "id,formula,dH\na,Ca1.5·H2O(l),-700.0\nb,Ca1.5·H2O(l),-700.4\n"
    import_lab(store, tmp_path, "lab", rows, "columns:\n  dH: {property: enthalpy_of_formation, unit: kJ/mol}\n")
    groups = link_records(store)
    assert groups[["formula_unit", "unit_atoms"]].values.tolist() == [["Ca1.5H2O1", 4.5]] * 2
    conflicts = find_conflicts(store, "enthalpy_of_formation", tolerance=0.1, groups=groups)
    assert conflicts["value"].tolist() == [-700.4, -700.0]
    sql, params = dataset_query(Dataset(description="d", version="1.0.0", properties=["enthalpy_of_formation"]))
    median = resolve(store.query(sql, params), groups, Resolution(strategy="median")).iloc[0]
    assert (median["value"], median["formula_original"]) == (pytest.approx(-700.2), "Ca1.5H2O1")
    assert formula_module.atoms_per_unit(median["formula_original"]) == 4.5


def test_gases_liquids_and_isotopologues_of_one_formula_are_not_linked(store, catalog):
    connector = build_connector("janaf", catalog, FetchRequest(ids=["H-063", "H-064", "D-017", "Xe-002"]))
    run_ingest(connector, store)
    heavy = store.query("SELECT formula, chemsys, elements FROM materials WHERE record_id = 'janaf:D-017'").iloc[0]
    assert (heavy["formula"], heavy["chemsys"], list(heavy["elements"])) == ("D2O", "H-O", ["H", "O"])
    assert group_of(link_records(store)) == {
        "janaf:H-063": "H2O (l)",
        "janaf:H-064": "H2O (g)",
        "janaf:D-017": "D2O (g)",  # heavy water
        "janaf:Xe-002": "Xe[+1] (g)",
    }


def test_a_lab_formula_written_with_its_state_is_linked_with_that_state_only(store, catalog, tmp_path):
    run_ingest(build_connector("janaf", catalog, FetchRequest(ids=["H-063", "H-064"])), store)
    rows = "id,formula,dhf\nl,H2O(l),-285.8\ng,H2O (g),-241.8\nice,H2O(s),-292.7\nplain,H2O,-290.0\n"
    rows += "solute,H2O(aq),-285.8\n"  # (as a solute's state: no liquid, no crystal)
    import_lab(store, tmp_path, "lab", rows, "columns:\n  dhf: {property: enthalpy_of_formation, unit: kJ/mol}\n")
    assert group_of(link_records(store)) == {
        "janaf:H-063": "H2O (l)",
        "janaf:H-064": "H2O (g)",
        "lab:l": "H2O (l)",  # JANAF's liquid water, not its steam nor ice
        "lab:g": "H2O (g)",
        "lab:ice": "H2O",  # a crystal: with the sample that states no state, never with the liquid
        "lab:plain": "H2O",
        "lab:solute": "H2O (aq)",
    }


def test_a_formula_of_a_period_before_a_bracketed_group_is_linked_and_compared_as_this_matreg_stored_it(
    store, tmp_path
):
    # 'CaO.[SiO2]2' is stored as CaO·[SiO2]2 (CaSi2O5), which an older matreg could not read (its brackets round alone)
    rows = "id,formula,dH\na,CaO.[SiO2]2,-2500\nb,CaSi2O5,-2540\n"
    import_lab(store, tmp_path, "lab", rows, "columns:\n  dH: {property: enthalpy_of_formation, unit: kJ/mol}\n")
    assert store.query("SELECT formula FROM materials").values.tolist() == [["CaSi2O5"], ["CaSi2O5"]]
    assert group_of(link_records(store)) == {"lab:a": "CaSi2O5", "lab:b": "CaSi2O5"}
    conflicts = find_conflicts(store, "enthalpy_of_formation", tolerance=1.0)
    assert conflicts.set_index("record_id")["value"].to_dict() == {"lab:a": -2500.0, "lab:b": -2540.0}


def test_a_formula_an_older_matreg_read_otherwise_is_compared_per_its_stored_formula_unit(store, tmp_path):
    # 'CaCl2·2NH3.[H2O]' is CaCl2·2NH3·H2O (14 atoms) to this matreg, and was stored as CaCl2·2(NH3.0 H2O) (17) by the
    # one that read round brackets alone: its kJ/mol are per mole of that, the formula unit of its group
    rows = "id,formula,dH\na,CaCl2·2NH3.[H2O],-2500\nb,CaH10N2Cl2O2,-2540\n"
    import_lab(store, tmp_path, "lab", rows, "columns:\n  dH: {property: enthalpy_of_formation, unit: kJ/mol}\n")
    stored = {"formula": "CaH10N2(ClO)2", "atoms_per_formula_unit": 17.0}
    as_an_older_matreg_stored(store, {"lab:a": stored})
    assert group_of(link_records(store)) == {"lab:a": "CaH10N2(ClO)2", "lab:b": "CaH10N2(ClO)2"}
    conflicts = find_conflicts(store, "enthalpy_of_formation", tolerance=1.0)
    assert conflicts.set_index("record_id")["value"].to_dict() == {"lab:a": -2500.0, "lab:b": -2540.0}


def test_polymorphs_named_in_a_formula_an_older_matreg_stored_are_two_materials(store, tmp_path):
    # 'ZnO[0]', which an older matreg read as the ion ZnO[+0] (charge 0) and this one refuses, in names and formulas
    rows = (
        'id,formula,name,gap\na,ZnO,"Zinc Oxide, Wurtzite (ZnO[0])",3.3\nb,ZnO,"Zinc Oxide, Zincblende (ZnO[0])",3.2\n'
    )
    import_lab(store, tmp_path, "lab", rows, "name_column: name\ncolumns:\n  gap: {property: band_gap, unit: eV}\n")
    stored = {"formula": "ZnO[+0]", "formula_original": "ZnO[0]", "charge": 0.0}
    as_an_older_matreg_stored(store, {"lab:a": stored, "lab:b": stored})
    assert group_of(link_records(store)) == {"lab:a": "ZnO[+0]/Wurtzite", "lab:b": "ZnO[+0]/Zincblende"}


def test_crystal_polymorphs_that_name_their_phase_are_two_materials(store, catalog, tmp_path):
    run_ingest(build_connector("janaf", catalog, FetchRequest(ids=["Al-096", "Al-098", "Ca-027"])), store)
    mapping = "dataset: lab\nformula_column: formula\nid_column: id\nname_column: name\ncitation: c\ncolumns:\n"
    (tmp_path / "m.yaml").write_text(mapping + "  gap: {unit: eV}\n", encoding="utf-8")
    rows = (
        'id,formula,name,gap\na,Al2O3,"Aluminum Oxide, Alpha (Al2O3)",8.8\nb,Al2O3,alumina,7.0\nc,CaO,,7.1\n'
        'd,Al2O3,"Aluminum oxide, alpha (Al2O3)",8.8\ne,Al2O3,"Aluminium Oxide,  ALPHA (Al2O3)",8.8\n'
    )
    (tmp_path / "gaps.csv").write_text(rows, encoding="utf-8")
    run_ingest(LabConnector(tmp_path / "gaps.csv", load_mapping(tmp_path / "m.yaml")), store)
    assert group_of(link_records(store)) == {
        "janaf:Al-096": "Al2O3/Alpha",  # 'Aluminum Oxide, Alpha (Al2O3)', phase cr, no space group
        "janaf:Al-098": "Al2O3/Gamma",
        "lab:a": "Al2O3/Alpha",  # named as JANAF names it
        "lab:b": "Al2O3",  # alpha or gamma: unknown
        "janaf:Ca-027": "CaO",  # 'Calcium Oxide (CaO)' names no phase: linked by formula, as before
        "lab:c": "CaO",
        "lab:d": "Al2O3/Alpha",  # the phase's letter case aside
        "lab:e": "Al2O3/Alpha",
    }
    assert find_conflicts(store, "enthalpy_of_formation", across_methods=True).empty  # alpha and gamma never met
    sql, params = dataset_query(
        Dataset(description="d", version="1.0.0", properties=["enthalpy_of_formation"], temperature_K=298.15)
    )
    medians = resolve(store.query(sql, params), link_records(store), Resolution(strategy="median"))
    assert medians.set_index("record_id")["value"].to_dict() == {
        "janaf:Al-096": -1675.692,
        "janaf:Al-098": -1656.864,
        "janaf:Ca-027": -635.089,
    }
    alpha_only = Store(tmp_path / "alpha")
    run_ingest(build_connector("janaf", catalog, FetchRequest(ids=["Al-096"])), alpha_only)
    run_ingest(LabConnector(tmp_path / "gaps.csv", load_mapping(tmp_path / "m.yaml")), alpha_only)
    assert group_of(link_records(alpha_only))["lab:b"] == "Al2O3"  # a named phase is no ground state, even alone


def test_a_janaf_table_of_crystal_and_liquid_meets_a_crystal_at_its_temperature(store, raw_janaf_catalog, tmp_path):
    request = FetchRequest(ids=["Ca-011"], all_temperatures=True)  # CaCl2 (cr,l): crystal to 1045 K, liquid above
    run_ingest(build_connector("janaf", raw_janaf_catalog, request), store)
    columns = "columns:\n  dhf: {property: enthalpy_of_formation, unit: kJ/mol, temperature_field: T}\n"
    rows = "id,formula,dhf,T\na,CaCl2,-790.0,298.15\nb,CaCl2,-700.0,\n"  # b states no temperature
    import_lab(store, tmp_path, "lab", rows, "provenance: experimental\nmethod: calorimetry\n" + columns)
    assert group_of(link_records(store)) == {"janaf:Ca-011": "CaCl2", "lab:a": "CaCl2", "lab:b": "CaCl2"}
    conflicts = find_conflicts(store, "enthalpy_of_formation", tolerance=1, across_methods=True)
    # the crystal's 298.15 K row only: JANAF's other rows meet no value; b, which states no temperature, meets none
    assert conflicts[["record_id", "temperature_K", "value"]].values.tolist() == [
        ["janaf:Ca-011", 298.15, -795.797],
        ["lab:a", 298.15, -790.0],
    ]


def test_a_janaf_table_of_crystal_and_liquid_that_melts_below_298_k_is_no_crystal(store, raw_janaf_catalog, tmp_path):
    run_ingest(build_connector("janaf", raw_janaf_catalog, FetchRequest(ids=["N-031"])), store)  # N2O4, melts 261.95 K
    columns = "columns:\n  dhf: {property: enthalpy_of_formation, unit: kJ/mol}\n"
    import_lab(store, tmp_path, "lab", "id,formula,dhf\na,N2O4,-28.0\n", "provenance: dft\nmethod: PBE\n" + columns)
    assert group_of(link_records(store)) == {"janaf:N-031": "N2O4 (cr,l)", "lab:a": "NO2"}  # its 298.15 K row: liquid


def test_a_measured_gap_far_from_the_dft_gaps_is_a_conflict_with_each_values_source_method_and_provenance(
    linked, groups
):
    conflicts = find_conflicts(linked, "band_gap", groups=groups, across_methods=True)
    znse = conflicts[conflicts["group_id"] == "ZnSe/216"]
    assert znse[["record_id", "source", "value", "unit", "method", "provenance"]].values.tolist() == [
        ["jarvis:JVASP-96", "jarvis", 1.224, "eV", "OptB88vdW", "dft"],
        ["mp:mp-1190", "mp", 1.6143, "eV", "PBE(+U)/r2SCAN mixed", "dft"],
        ["jarvis:JVASP-96", "jarvis", 2.63, "eV", "TBmBJ", "dft"],
        ["zhuo-lab:zhuo-237", "zhuo-lab", 2.82, "eV", LAB_METHOD, "experimental"],
    ]
    assert znse["temperature_K"].fillna(0).tolist() == [0, 0, 0, 300]  # DFT states none; met at the lab's 300 K
    assert znse["spread"].tolist() == pytest.approx([2.82 - 1.224] * 4)
    assert conflicts["spread"].is_monotonic_decreasing and (conflicts["spread"] > 0.1).all()


def test_formation_energies_of_one_material_from_three_sources_disagree(linked, groups):
    conflicts = find_conflicts(linked, "formation_energy_per_atom", groups=groups, across_methods=True)
    znse = conflicts[conflicts["group_id"] == "ZnSe/216"]
    assert znse[["source", "value", "method"]].values.tolist() == [
        ["mp", pytest.approx(-0.9515323), "PBE(+U)/r2SCAN mixed"],
        ["optimade", pytest.approx(-0.9515323), OPTIMADE_METHOD],
        ["jarvis", -0.71802, "OptB88vdW"],
    ]


def test_values_of_no_method_are_compared_per_provenance(store, tmp_path):
    columns = "columns:\n  gap: {property: band_gap, unit: eV}\n"
    measured, calculated = "id,formula,gap\n1,ZnSe,2.82\n2,ZnSe,2.5\n", "id,formula,gap\n1,ZnSe,1.20\n"
    import_lab(store, tmp_path, "expt", measured, "provenance: experimental\n" + columns)
    import_lab(store, tmp_path, "calc", calculated, "provenance: dft\n" + columns)
    conflicts = find_conflicts(store, "band_gap")  # no value names a method: DFT is still not experiment's method
    assert conflicts[["record_id", "provenance", "value"]].values.tolist() == [
        ["expt:2", "experimental", 2.5],
        ["expt:1", "experimental", 2.82],
    ]
    assert len(find_conflicts(store, "band_gap", across_methods=True)) == 3


def test_the_tolerance_decides_what_disagrees_and_linking_is_done_when_no_groups_are_given(linked):
    wide = find_conflicts(linked, "band_gap", tolerance=1.6, across_methods=True)
    assert "ZnSe/216" not in set(wide["group_id"])  # spread 1.596 eV
    assert set(wide["group_id"]) == {"SiO2/154"}  # JARVIS JVASP-41: OptB88vdW 5.986 eV, TBmBJ 8.097 eV
    assert find_conflicts(linked, "band_gap", tolerance=3, across_methods=True).empty


def test_an_unknown_property_is_refused_and_one_without_values_has_no_conflicts(linked, groups):
    with pytest.raises(ConfigError, match="unknown property 'gap'"):
        find_conflicts(linked, "gap")
    none = find_conflicts(linked, "debye_temperature", groups=groups)
    assert none.empty and list(none.columns) == CONFLICT_COLUMNS


def test_keep_all_returns_the_rows_unchanged(linked, groups):
    long = gaps(linked)
    pd.testing.assert_frame_equal(resolve(long, groups, Resolution()), long)


def test_prefer_keeps_the_best_provenance_or_method_of_each_group(linked, groups):
    kept = resolve(gaps(linked), groups, Resolution(strategy="prefer", prefer=PREFER))
    by_record = kept.groupby("record_id")["method"].apply(sorted).to_dict()
    assert by_record["zhuo-lab:zhuo-237"] == [LAB_METHOD]  # experimental beats every DFT value of ZnSe
    assert "jarvis:JVASP-96" not in by_record and "mp:mp-1190" not in by_record
    # BaTiO3/99 has no value of a named provenance or method: nothing to prefer, all kept
    assert by_record["jarvis:JVASP-110"] == ["OptB88vdW", "TBmBJ"] and by_record["mp:mp-5986"] == [
        "PBE(+U)/r2SCAN mixed"
    ]
    assert "mp:mp-5020" not in by_record  # BaTiO3's ground state (160), which the measured BaTiO3 gap is linked to
    assert len(kept) == len(gaps(linked)) - 4


def test_the_values_prefer_leaves_out_are_those_it_does_not_keep(linked, groups):
    long = gaps(linked)
    left_out = preference_left_out(long, groups, PREFER)
    assert len(left_out) == len(long) - len(resolve(long, groups, Resolution(strategy="prefer", prefer=PREFER)))
    assert left_out[["group_id", "record_id", "method"]].values.tolist() == [  # the DFT gaps beside measured ones
        ["ZnSe/216", "jarvis:JVASP-96", "OptB88vdW"],
        ["ZnSe/216", "jarvis:JVASP-96", "TBmBJ"],
        ["ZnSe/216", "mp:mp-1190", "PBE(+U)/r2SCAN mixed"],
        ["BaTiO3/160", "mp:mp-5020", "PBE(+U)/r2SCAN mixed"],
    ]


def test_prefer_orders_methods_within_dft(linked, groups):
    dft = gaps(linked, Dataset(description="dft gaps", version="0.1.0", properties=["band_gap"], provenance=["dft"]))
    kept = resolve(dft, groups, Resolution(strategy="prefer", prefer=["HSE06", "TBmBJ", "r2SCAN", "PBE+U", "PBE"]))
    znse = kept[kept["formula"] == "ZnSe"]
    assert znse[["record_id", "method", "value"]].values.tolist() == [["jarvis:JVASP-96", "TBmBJ", 2.63]]
    silicon = kept[kept["formula"] == "Si"]
    assert silicon[["method", "value"]].values.tolist() == [["HSE06", 1.21]]


def test_a_median_merges_no_values_of_different_methods_or_provenance(linked, groups):
    long = gaps(linked)
    medians = resolve(long, groups, Resolution(strategy="median"))
    znse = medians[medians["formula"] == "ZnSe"]  # each its own method: no median of DFT and measured gaps
    assert znse[["record_id", "method", "provenance", "value", "resolved_by"]].values.tolist() == [
        ["jarvis:JVASP-96", "OptB88vdW", "dft", 1.224, "median of 1"],
        ["jarvis:JVASP-96", "TBmBJ", "dft", 2.63, "median of 1"],
        ["mp:mp-1190", "PBE(+U)/r2SCAN mixed", "dft", 1.6143, "median of 1"],
        ["zhuo-lab:zhuo-237", LAB_METHOD, "experimental", 2.82, "median of 1"],
    ]
    assert znse["temperature_K"].fillna(0).tolist() == [0, 0, 0, 300]  # each value's own: no 300 K on a DFT gap
    silicon = medians[medians["formula"] == "Si"]  # one JARVIS record's three functionals: three values, not a median
    assert silicon[["record_id", "method"]].values.tolist() == [
        ["jarvis:JVASP-1002", "HSE06"],
        ["jarvis:JVASP-1002", "OptB88vdW"],
        ["jarvis:JVASP-1002", "TBmBJ"],
    ]
    pd.testing.assert_frame_equal(medians[long.columns], long)  # no two values of this store are comparable
    assert (medians["spread"] == 0).all() and medians["records"].tolist() == long["record_id"].tolist()


def import_labs(store: Store, folder: Path, labs: dict[str, tuple[str, str, str]]) -> None:
    """Import lab files of band gaps (`id,formula,gap,T_K` rows) by name: (provenance, method, rows)."""
    for name, (provenance, method, rows) in labs.items():
        (folder / f"{name}.csv").write_text("id,formula,gap,T_K\n" + rows, encoding="utf-8")
        (folder / f"{name}.yaml").write_text(
            f"dataset: {name}\nformula_column: formula\nid_column: id\nprovenance: {provenance}\nmethod: {method}\n"
            "citation: c\ncolumns:\n  gap: {property: band_gap, unit: eV, temperature_field: T_K}\n",
            encoding="utf-8",
        )
        run_ingest(LabConnector(folder / f"{name}.csv", load_mapping(folder / f"{name}.yaml")), store)


ZNSE_LABS = {
    "uv-a": ("experimental", "UV-Vis", "a1,ZnSe,2.70,300\n"),
    "uv-b": ("experimental", "UV-Vis", "b1,ZnSe,2.82,300\nb2,ZnSe,2.80,10\n"),
    "pbe-a": ("dft", "PBE", "p1,ZnSe,1.20,\n"),
    "pbe-b": ("dft", "PBE", "p2,ZnSe,1.30,\n"),
    "hse": ("dft", "HSE06", "h1,ZnSe,2.50,\n"),
}


def test_a_median_merges_values_of_one_provenance_method_and_conditions(store, tmp_path):
    import_labs(store, tmp_path, ZNSE_LABS)
    groups, long = link_records(store), gaps(store)
    medians = resolve(long, groups, Resolution(strategy="median")).sort_values(["method", "temperature_K"])
    columns = ["record_id", "method", "provenance", "temperature_K", "value", "spread", "records", "resolved_by"]
    assert medians[columns].fillna(0).values.tolist() == [
        ["hse:h1", "HSE06", "dft", 0, 2.5, 0, "hse:h1", "median of 1"],
        ["group:ZnSe", "PBE", "dft", 0, pytest.approx(1.25), pytest.approx(0.1), "pbe-a:p1; pbe-b:p2", "median of 2"],
        ["uv-b:b2", "UV-Vis", "experimental", 10, 2.8, 0, "uv-b:b2", "median of 1"],  # at 10 K: apart
        ["group:ZnSe", "UV-Vis", "experimental", 300, 2.76, pytest.approx(0.12), "uv-a:a1; uv-b:b1", "median of 2"],
    ]
    merged = medians.set_index(["record_id", "method"]).loc[("group:ZnSe", "UV-Vis")]
    assert (merged["source"], merged["formula"]) == ("uv-a; uv-b", "ZnSe")
    assert pd.isna(merged["original_value"]) and pd.isna(merged["original_unit"])
    curated = long.assign(flags=long["record_id"].map({"uv-b:b1": "suspect"}), reviewed=long["record_id"] != "uv-a:a1")
    flagged = resolve(curated, groups, Resolution(strategy="median")).set_index(["record_id", "method"])
    assert flagged.loc[("group:ZnSe", "UV-Vis"), "flags"] == "[uv-b:b1] suspect"  # flagged if any value is
    assert not flagged.loc[("group:ZnSe", "UV-Vis"), "reviewed"] and flagged.loc[("group:ZnSe", "PBE"), "reviewed"]
    empty = resolve(long.iloc[:0], groups, Resolution(strategy="median"))
    assert empty.empty and list(empty.columns) == [*long.columns, "spread", "records", "resolved_by"]
    assert resolve(long.iloc[:0], groups, Resolution(strategy="prefer", prefer=PREFER)).empty


def test_the_conflicts_of_a_resolution_are_the_values_it_merges_or_chooses_between(store, tmp_path):
    import_labs(store, tmp_path, ZNSE_LABS)
    groups, long = link_records(store), gaps(store)

    def listed(strategy: str, tolerance: float | dict) -> list[str]:
        prefer = ["experimental"] if strategy == "prefer" else []
        resolution = Resolution(strategy=strategy, prefer=prefer, tolerance=tolerance)
        return resolution_conflicts(long, groups, resolution, ["band_gap"])["record_id"].tolist()

    assert listed("median", 0.11) == ["uv-a:a1", "uv-b:b1"]  # 0.12 eV apart; PBE's two 0.1 eV
    assert listed("median", {"band_gap": 0.05}) == ["uv-a:a1", "uv-b:b1", "pbe-a:p1", "pbe-b:p2"]
    assert listed("median", {"enthalpy_of_formation": 0.05}) == ["uv-a:a1", "uv-b:b1"]  # band_gap: the default 0.1
    # prefer chose between every method's values at the same conditions: the DFT gaps apart from two temperatures
    assert listed("prefer", 1.0) == ["pbe-a:p1", "pbe-b:p2", "hse:h1"]
    assert listed("keep_all", 0.11) == ["uv-a:a1", "uv-b:b1"]  # values of one method


def test_prefer_keeps_the_preferred_values_of_a_material_at_every_temperature(store, tmp_path):
    import_labs(store, tmp_path, ZNSE_LABS)  # measured gaps at 300 K and 10 K: a DFT gap meets neither
    kept = resolve(gaps(store), link_records(store), Resolution(strategy="prefer", prefer=["experimental", "PBE"]))
    assert kept[["record_id", "temperature_K", "resolved_by"]].values.tolist() == [
        ["uv-a:a1", 300, "prefer experimental"],
        ["uv-b:b1", 300, "prefer experimental"],
        ["uv-b:b2", 10, "prefer experimental"],
    ]
    dft = resolve(gaps(store), link_records(store), Resolution(strategy="prefer", prefer=["r2SCAN"]))
    assert len(dft) == 6 and set(dft["resolved_by"]) == {"prefer: no value of a listed provenance or method"}
    assert unmatched_preferences(gaps(store), ["Experimental", "r2SCAN", "PBE", "GGA"]) == (
        "prefer: r2SCAN, GGA match no provenance or method of the dataset's values and rank nothing "
        "(provenances: dft, experimental; methods: HSE06, PBE, UV-Vis)"
    )
    assert unmatched_preferences(gaps(store), ["hse06", "dft"]) is None


def test_prefer_reads_a_method_spaced_otherwise_as_the_selection_does(store, tmp_path):
    """`methods: [UV - Vis]` selects the values of a lab's UV-Vis (spaces and letter case aside): `prefer` ranks them
    by the same reading, rather than ranking nothing and warning so."""
    import_labs(store, tmp_path, ZNSE_LABS)
    prefer = Resolution(strategy="prefer", prefer=["uv - vis", "PBE"])
    kept = resolve(gaps(store), link_records(store), prefer)
    assert sorted(kept["record_id"]) == ["uv-a:a1", "uv-b:b1", "uv-b:b2"]
    assert unmatched_preferences(gaps(store), ["uv - vis", "P B E"]) is None


def test_a_median_counts_one_calculation_read_through_two_sources_of_its_database_once(store, tmp_path):
    mp_method = "PBE(+U)/r2SCAN mixed"
    with ReplayServer(route) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("MP_API_KEY", "5f1d0c9e8b7a4d3c2b1a09f8e7d6c5b4")
        patch.delenv("MP_API_ENDPOINT", raising=False)
        text = write_catalog(tmp_path / "catalog.yaml", server).read_text(encoding="utf-8")
        mirror = text.split("  mp:\n")[1].split("  optimade:\n")[0]  # a second entry of the summary API
        (tmp_path / "catalog.yaml").write_text(text + "  mp-mirror:\n" + mirror, encoding="utf-8")
        catalog = load_catalog(tmp_path / "catalog.yaml")
        for source in ("mp", "mp-mirror"):
            run_ingest(build_connector(source, catalog, FetchRequest(everything=True, page_size=5)), store)
    import_labs(store, tmp_path, {"dft-lab": ("dft", mp_method, "d1,ZnSe,2.0,\n")})  # another calculation
    catalog.datasets["gaps"] = Dataset(
        description="d", version="1.0.0", properties=["band_gap"], resolve=Resolution(strategy="median")
    )
    znse = curate_dataset(store, catalog, "gaps").resolved.set_index("formula").loc["ZnSe"]
    assert znse["records"] == "dft-lab:d1; mp-mirror:mp-1190; mp:mp-1190"
    assert (znse["value"], znse["resolved_by"]) == (pytest.approx((1.6143 + 2.0) / 2), "median of 2")  # not 1.6143


def test_values_as_far_apart_as_the_tolerance_are_no_conflict(store, tmp_path):
    mapping = "dataset: lab\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n  gap: {unit: eV}\n"
    (tmp_path / "m.yaml").write_text(mapping, encoding="utf-8")
    (tmp_path / "gaps.csv").write_text("id,formula,gap\na,GaN,2.1\nb,GaN,2.2\nc,ZnO,3.1\nd,ZnO,3.25\n")
    run_ingest(LabConnector(tmp_path / "gaps.csv", load_mapping(tmp_path / "m.yaml")), store)
    assert find_conflicts(store, "band_gap", tolerance=0.1)["record_id"].tolist() == ["lab:c", "lab:d"]  # 2.2-2.1


def mixed_store(store: Store, catalog, folder: Path) -> Store:
    """MP's ZnSe (on the hull), two SiC polytypes and two BaTiO3, JANAF's alpha alumina and water (liquid and gas),
    and two lab files: TeSe written whole (lab) and as fractions (lab2), beside a structureless ZnSe and SiC (lab2)."""
    fetch_mp(store, folder, ["mp-1190", "mp-7631", "mp-567505", "mp-5020", "mp-5986"])
    run_ingest(build_connector("janaf", catalog, FetchRequest(ids=["Al-096", "H-063", "H-064"])), store)
    import_lab(store, folder, "lab", "id,formula,gap\na,TeSe,0.3\nb,Al2O3,8.8\n", "columns:\n  gap: {unit: eV}\n")
    rows = "id,formula,gap\nt,Te0.5Se0.5,0.9\nz,ZnSe,2.8\ns,SiC,3.0\n"
    import_lab(store, folder, "lab2", rows, "columns:\n  gap: {unit: eV}\n")
    return store


def test_linking_only_the_compositions_of_some_records_gives_them_the_groups_of_linking_the_whole_store(
    store, catalog, tmp_path
):
    mixed_store(store, catalog, tmp_path)
    whole = link_records(store).set_index("record_id")
    stored = store.query("SELECT record_id, formula FROM materials").set_index("record_id")["formula"]
    composition = stored.map(composition_key)
    for needed in (["lab2:t"], ["lab2:z", "lab2:s"], ["janaf:H-064", "janaf:Al-096"], list(whole.index)):
        linked = link_records(store, needed).set_index("record_id")
        pd.testing.assert_frame_equal(linked.loc[needed], whole.loc[needed])
        assert set(linked.index) == set(composition[composition.isin(composition[needed])].index)  # no other
    restricted = link_records(store, ["lab2:t", "lab2:z"]).set_index("record_id")
    assert restricted.loc["lab2:t"].tolist() == ["TeSe", "TeSe", 2.0]  # per mole of lab:a's TeSe, lab:a not asked for
    assert restricted.loc["lab2:z", "group_id"] == "ZnSe/216"  # mp-1190, on the hull, not asked for
    assert sorted(restricted.index) == ["lab2:t", "lab2:z", "lab:a", "mp:mp-1190"]
    assert link_records(store, []).empty and link_records(store, ["no:such-record"]).empty


def test_a_dataset_is_linked_with_the_records_of_its_compositions_only(store, catalog, tmp_path):
    mixed_store(store, catalog, tmp_path)
    catalog.datasets["lab2"] = Dataset(description="d", version="1.0.0", properties=["band_gap"], sources=["lab2"])
    rows = curate_dataset(store, catalog, "lab2")
    group = group_of(rows.groups)
    assert group == {
        "lab2:t": "TeSe",
        "lab:a": "TeSe",
        "lab2:z": "ZnSe/216",  # the ground state another source states
        "mp:mp-1190": "ZnSe/216",
        "lab2:s": "SiC",  # two polytypes near the hull: which is unknown
        "mp:mp-7631": "SiC/186/mp:mp-7631",
        "mp:mp-567505": "SiC/186/mp:mp-567505",
    }  # neither BaTiO3, Al2O3 nor water
    assert rows.resolved.set_index("record_id")["value"].to_dict() == {"lab2:t": 0.9, "lab2:z": 2.8, "lab2:s": 3.0}


def test_formulas_an_older_matreg_stored_are_linked_and_compared_as_they_were_stored(store, tmp_path, monkeypatch):
    # as an older matreg imported them, before a phase label and a spaced number were refused: TiBO2 and Na2SiO4
    monkeypatch.setattr(formula_module, "_refuse_phase_label", lambda part, text: None)
    monkeypatch.setattr(formula_module, "_refuse_spaced_number", lambda piece, text: None)
    formula_module.parse_formula.cache_clear()
    mapping = "dataset: lab\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
    mapping += "  dH: {property: enthalpy_of_formation, unit: kJ/mol}\n"
    (tmp_path / "m.yaml").write_text(mapping, encoding="utf-8")
    rows = "id,formula,dH\na,TiO2(B),-900\nb,Na2O 2SiO2,-2470\nc,Na2SiO4,-2300\n"
    (tmp_path / "old.csv").write_text(rows, encoding="utf-8")
    run_ingest(LabConnector(tmp_path / "old.csv", load_mapping(tmp_path / "m.yaml")), store)
    monkeypatch.undo()
    formula_module.parse_formula.cache_clear()
    with pytest.raises(FormulaError, match="phase label"):
        formula_module.parse_formula("TiO2(B)")
    group = group_of(link_records(store))
    assert group["lab:a"] == "TiBO2" and group["lab:b"] == group["lab:c"] == "Na2SiO4"
    conflicts = find_conflicts(store, "enthalpy_of_formation", tolerance=1.0)
    assert conflicts.set_index("record_id")["value"].to_dict() == {"lab:b": -2470.0, "lab:c": -2300.0}
    sql, params = dataset_query(Dataset(description="d", version="1.0.0", properties=["enthalpy_of_formation"]))
    assert len(resolve(store.query(sql, params), link_records(store), Resolution(strategy="median"))) == 2


def test_records_of_one_structure_document_are_analysed_and_matched_as_one_structure(store, tmp_path, monkeypatch):
    """A material each file of a dataset gives (one CIF, three records): spglib reads its structure once, and never
    again while the cache remembers it; StructureMatcher matches nothing (one structure); the groups are those of
    matching every record."""
    monkeypatch.setenv(symmetry.CACHE_DIR_ENV, str(tmp_path / "cache"))
    analysed: list[Structure] = []

    class CountingAnalyzer(symmetry.SpacegroupAnalyzer):
        def __init__(self, structure: Structure, **kwargs) -> None:
            analysed.append(structure)
            super().__init__(structure, **kwargs)

    matched: list[int] = []
    group_structures = link.StructureMatcher.group_structures
    monkeypatch.setattr(symmetry, "SpacegroupAnalyzer", CountingAnalyzer)
    monkeypatch.setattr(
        link.StructureMatcher,
        "group_structures",
        lambda self, structures, **kwargs: matched.append(len(structures)) or group_structures(self, structures),
    )
    six_h = next(doc for doc in MP_SUMMARY["data"] if doc["material_id"] == "mp-7631")
    Structure.from_dict(six_h["structure"]).to(filename=str(tmp_path / "sic-6h.cif"))
    mapping = "structure_column: structure\ncolumns:\n  gap: {property: band_gap, unit: eV}\n"
    rows = "id,formula,gap,structure\nx,SiC,3.02,sic-6h.cif\ny,SiC,3.0,sic-6h.cif\n"
    import_lab(store, tmp_path, "lab-a", rows, mapping)
    import_lab(store, tmp_path, "lab-b", "id,formula,gap,structure\nz,SiC,3.05,sic-6h.cif\n", mapping)
    groups = group_of(link_records(store))
    assert groups == {"lab-a:x": "SiC/186", "lab-a:y": "SiC/186", "lab-b:z": "SiC/186"}
    assert len(analysed) == 1 and matched == []
    fetch_mp(store, tmp_path, ["mp-7631", "mp-567505"])  # MP's 6H (another document of it) and 8H SiC
    groups = group_of(link_records(store))
    assert len(analysed) == 1 and matched == [3]  # the lab's document remembered; MP states its space groups
    six_h_group = {"lab-a:x", "lab-a:y", "lab-b:z", "mp:mp-7631"}
    assert {record_id: groups[record_id] for record_id in six_h_group} == dict.fromkeys(six_h_group, "SiC/186/lab-a:x")
    assert groups["mp:mp-567505"] == "SiC/186/mp:mp-567505"


def test_the_space_group_cache_is_read_written_anew_or_left_out_without_changing_a_group(store, tmp_path, monkeypatch):
    """A cache file that cannot be read is written anew; a cache folder that cannot be written leaves the numbers
    unremembered, the links the same; a changed structure document is analysed anew."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(symmetry.CACHE_DIR_ENV, str(cache))
    analysed = []
    monkeypatch.setattr(symmetry, "_spacegroup_number", lambda structure: analysed.append(structure) or 186)
    mapping = "structure_column: structure\ncolumns:\n  gap: {property: band_gap, unit: eV}\n"
    six_h = Structure.from_dict(next(doc for doc in MP_SUMMARY["data"] if doc["material_id"] == "mp-7631")["structure"])
    six_h.to(filename=str(tmp_path / "sic-6h.cif"))
    import_lab(store, tmp_path, "lab", "id,formula,gap,structure\nx,SiC,3.02,sic-6h.cif\ny,SiC,3.0,\n", mapping)
    expected = {"lab:x": "SiC/186", "lab:y": "SiC"}  # y, no structure: no hull value says x is a ground state
    assert group_of(link_records(store)) == expected and len(analysed) == 1
    assert pq.read_table(cache / symmetry.CACHE_FILE).column("spacegroup_number").to_pylist() == [186]
    assert group_of(link_records(store)) == expected and len(analysed) == 1  # remembered
    (cache / symmetry.CACHE_FILE).write_bytes(b"not parquet")
    assert group_of(link_records(store)) == expected and len(analysed) == 2
    assert pq.read_table(cache / symmetry.CACHE_FILE).num_rows == 1  # written anew
    monkeypatch.setenv(symmetry.CACHE_DIR_ENV, str(tmp_path / "sic-6h.cif" / "cache"))  # under a file: unwritable
    assert group_of(link_records(store)) == expected and len(analysed) == 3
    (tmp_path / "folder" / symmetry.CACHE_FILE).mkdir(parents=True)  # a folder where the file goes
    monkeypatch.setenv(symmetry.CACHE_DIR_ENV, str(tmp_path / "folder"))
    assert group_of(link_records(store)) == expected and len(analysed) == 4
    monkeypatch.setenv(symmetry.CACHE_DIR_ENV, str(cache))
    six_h.perturb(0.01, 0.01).to(filename=str(tmp_path / "sic-6h.cif"))  # the sample's structure refined
    import_lab(store, tmp_path, "lab", "id,formula,gap,structure\nx,SiC,3.02,sic-6h.cif\ny,SiC,3.0,\n", mapping)
    assert group_of(link_records(store)) == expected and len(analysed) == 5
    assert pq.read_table(cache / symmetry.CACHE_FILE).num_rows == 2
    monkeypatch.setattr(symmetry, "ANALYSED_BY", "pymatgen 2099.1.1, spglib 9.0")  # an upgrade may tell otherwise
    assert group_of(link_records(store)) == expected and len(analysed) == 6
