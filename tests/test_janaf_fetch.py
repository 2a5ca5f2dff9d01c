"""matreg's JANAF connector over real HTTP, against recorded tables served on 127.0.0.1."""

import base64
import json
import re

import pandas as pd
import pytest
from conftest import (
    JANAF_TABLES,
    RAW_JANAF,
    assert_failed_without_trace,
    disk_full_at_rows_of,
    visible_tables,
    write_catalog,
)
from replay import ReplayServer, Reply, Request

from matreg.catalog import load_catalog
from matreg.errors import ConfigError, NoSpace, SourceError
from matreg.export import export_dataset
from matreg.ingest import run_ingest
from matreg.resources import resource_path
from matreg.sources import FetchRequest, build_connector
from matreg.sources.janaf import ids_for_formulas, janaf_index, parse_table

TABLES = ["H-064", "C-095", "Al-001"]


def fetch(store, catalog, ids, **options):
    request = FetchRequest(ids=ids, **options)
    return run_ingest(build_connector("janaf", catalog, request, cache_path=store.cache_path), store)


def test_fetch_stores_standard_state_values_in_canonical_units(store, catalog, janaf_server):
    report = fetch(store, catalog, TABLES)
    assert (report.n_fetched, report.n_stored, report.n_values, report.n_quarantined) == (3, 3, 21, 0)
    values = store.query(
        "SELECT property, value, unit, original_value, original_unit, temperature_K, pressure_Pa, provenance "
        "FROM properties WHERE record_id = 'janaf:H-064' ORDER BY property"
    ).set_index("property")
    assert values.loc["enthalpy_of_formation", "value"] == pytest.approx(-241.826)
    assert values.loc["enthalpy_of_formation", "unit"] == "kJ/mol"
    assert values.loc["heat_capacity_cp", "unit"] == "J/(mol*K)"
    assert values.loc["heat_capacity_cp", "original_unit"] == "J/(K*mol)"
    assert set(values["temperature_K"]) == {298.15} and set(values["pressure_Pa"]) == {1.0e5}
    assert set(values["provenance"]) == {"experimental"}
    material = store.query("SELECT * FROM materials WHERE record_id = 'janaf:H-064'").iloc[0]
    assert (material.formula, material.phase, material.source_url) == ("H2O", "g", janaf_server.url + "H-064.txt")
    assert material.citation == "Chase 1998" and material.database_version == "4th edition (1998)"


def test_requests_use_the_real_url_paths_and_a_user_agent(store, catalog, janaf_server):
    fetch(store, catalog, ["H-064"])
    request = janaf_server.requests[0]
    assert request.path == "/tables/H-064.txt"
    assert request.headers["User-Agent"].startswith("matreg/")


def test_a_missing_table_is_quarantined_and_the_rest_stored(store, catalog, janaf_server):
    report = fetch(store, catalog, ["H-064", "Q-404"])
    assert (report.n_stored, report.n_quarantined) == (1, 1)
    rejected = store.query("SELECT item, reasons FROM quarantine").iloc[0]
    assert rejected["item"] == "Q-404"
    assert "HTTP 404" in rejected["reasons"][0] and "/tables/Q-404.txt" in rejected["reasons"][0]


def test_a_server_error_is_retried_until_success(store, catalog, janaf_server):
    janaf_server.fail("/tables/C-095.txt", 500)
    report = fetch(store, catalog, ["C-095"])
    assert report.n_stored == 1
    assert janaf_server.hits("/tables/C-095.txt") == 2


def test_a_persistent_server_error_fails_the_run_and_leaves_the_store_as_before(store, catalog, janaf_server):
    fetch(store, catalog, ["H-064"])
    before = visible_tables(store)
    janaf_server.fail("/tables/C-095.txt", 500, 500, 500, 500, 500)
    with pytest.raises(SourceError, match="HTTP 500"):
        fetch(store, catalog, ["Al-001", "C-095"])
    assert_failed_without_trace(store, before, "HTTP 500")


def test_refetching_unchanged_records_writes_nothing_again(store, catalog):
    first = fetch(store, catalog, TABLES)
    second = fetch(store, catalog, TABLES)
    counts = store.query("SELECT (SELECT count(*) FROM materials) AS m, (SELECT count(*) FROM properties) AS p")
    assert (counts.m[0], counts.p[0]) == (3, 21)
    run_ids = set(store.query("SELECT DISTINCT run_id FROM properties")["run_id"])
    assert run_ids == {first.run_id}  # the second run found every row as stored
    assert (second.n_stored, second.n_unchanged) == (3, 3)
    assert (first.n_written, second.n_written) == (3, 0)
    runs = store.query("SELECT run_id, n_stored, n_unchanged FROM fetch_runs ORDER BY started_at")
    assert runs.values.tolist() == [[first.run_id, 3, 0], [second.run_id, 3, 3]]
    written = store.query("SELECT count(*) FROM read_parquet('data/c*/**/properties.parquet')").iloc[0, 0]
    assert written == 21  # in all the store's files: no row was written twice


def test_second_fetch_is_served_from_the_http_cache(store, catalog, janaf_server):
    fetch(store, catalog, ["H-064"])
    fetch(store, catalog, ["H-064"])
    assert janaf_server.hits("/tables/H-064.txt") == 1


def test_all_temperatures_become_conditions_and_infinite_limits_at_zero_kelvin_are_noted(store, catalog):
    report = fetch(store, catalog, ["Al-001", "H-064"], all_temperatures=True)
    temperatures = store.query(
        "SELECT temperature_K, value FROM properties WHERE property = 'heat_capacity_cp' ORDER BY temperature_K"
    )
    assert temperatures["temperature_K"].iloc[-1] > 2000 and len(temperatures) > 30
    at_melting = temperatures[temperatures["temperature_K"] == 933.45]["value"].tolist()
    assert at_melting == [32.959]  # the first of the two rows JANAF lists at the transition: the crystal's
    notes = store.query("SELECT record_id, notes FROM materials ORDER BY record_id")["notes"].tolist()
    assert "933.45 K: CRYSTAL <--> LIQUID; 933.45 K, also listed: Cp 31.751, S 71.213," in notes[0]  # the liquid
    assert notes[0].endswith(
        "; gibbs_energy_function at 0 K left out: JANAF lists them as infinite (their limit at 0 K)"
    )
    limits = "gibbs_energy_function, log_formation_constant at 0 K left out: JANAF lists them as infinite"
    assert notes[1].startswith(limits)  # H2O(g), whose log Kf diverges at 0 K too
    at_zero = store.query("SELECT count(*) FROM properties WHERE temperature_K = 0").iloc[0, 0]
    assert report.n_quarantined == 0 and at_zero == 5 + 6  # Cp, S, H-H, delta-f H and G of each; Al's log Kf (0)


def test_a_fetch_at_the_reference_temperature_leaves_the_other_temperatures_shown(store, catalog):
    fetch(store, catalog, ["Al-001"], all_temperatures=True)
    count = "SELECT count(*) AS n, count(DISTINCT temperature_K) AS t FROM properties"
    everything = store.query(count).values.tolist()
    narrow = fetch(store, catalog, ["Al-001"])
    assert store.query(count).values.tolist() == everything and everything[0][1] > 30
    assert narrow.n_unchanged == 1  # what it read is as stored: nothing written
    assert store.query("SELECT DISTINCT scope FROM materials").values.tolist() == [[""]]
    assert build_connector("janaf", catalog, FetchRequest(ids=["Al-001"])).attribution.scope == "T=298.15 K"


def test_the_standard_state_dataset_exports_only_its_temperature_of_an_all_temperatures_fetch(
    store, janaf_server, tmp_path
):
    shipped = load_catalog(resource_path("catalog.yaml"))  # janaf-thermo-298: 298.15 K and 1e5 Pa
    request = FetchRequest(ids=["Al-001", "H-064"], all_temperatures=True, base_url=janaf_server.url)
    run_ingest(build_connector("janaf", shipped, request, cache_path=store.cache_path), store)
    assert store.query("SELECT count(DISTINCT temperature_K) FROM properties").iloc[0, 0] > 30
    meta = export_dataset(store, shipped, "janaf-thermo-298", "csv", tmp_path / "thermo.csv")
    exported = pd.read_csv(tmp_path / "thermo.csv")
    columns = ["record_id", "property", "value", "unit", "temperature_K", "pressure_Pa"]
    assert exported[columns].values.tolist() == [
        ["janaf:Al-001", "enthalpy_of_formation", 0.0, "kJ/mol", 298.15, 1e5],
        ["janaf:Al-001", "entropy", 28.275, "J/(mol*K)", 298.15, 1e5],
        ["janaf:Al-001", "gibbs_energy_of_formation", 0.0, "kJ/mol", 298.15, 1e5],
        ["janaf:Al-001", "heat_capacity_cp", 24.209, "J/(mol*K)", 298.15, 1e5],
        ["janaf:H-064", "enthalpy_of_formation", -241.826, "kJ/mol", 298.15, 1e5],
        ["janaf:H-064", "entropy", 188.834, "J/(mol*K)", 298.15, 1e5],
        ["janaf:H-064", "gibbs_energy_of_formation", -228.582, "kJ/mol", 298.15, 1e5],
        ["janaf:H-064", "heat_capacity_cp", 33.59, "J/(mol*K)", 298.15, 1e5],
    ]
    assert (meta["rows"], meta["records"]) == (8, 2)


def test_formula_selects_tables_from_the_index(store, catalog):
    report = fetch(store, catalog, [], formulas=["CO2"])
    assert report.n_stored >= 1
    assert set(store.query("SELECT formula FROM materials")["formula"]) == {"CO2"}


@pytest.mark.parametrize(
    ("formula", "tables"),
    [
        ("H2O", ["H-063", "H-064", "H-065", "H-066", "H-067", "H-068", "H-069"]),  # not heavy water's D-017
        ("O2", ["O-029"]),  # not monatomic oxygen's O-001
        ("O", ["O-001"]),
        ("OD2", ["D-017"]),
        ("Na2CO3", ["C-090", "C-091", "C-092"]),  # C-092 (cr,l): 'CNaO3' in NIST's index, corrected
        ("e-", ["D-020"]),  # the electron gas
        ("HD+", ["D-006"]),
    ],
)
def test_a_formula_selects_the_tables_of_that_species_as_written(formula, tables):
    assert ids_for_formulas([formula]) == tables


def test_the_index_gives_sodium_carbonate_cr_l_its_tables_formula():
    table = parse_table((RAW_JANAF / "C-092.txt").read_text(encoding="utf-8"))
    assert (table.formula, table.phase) == ("C1Na2O3", "cr,l")
    assert janaf_index()["C-092"] == "CNa2O3, Sodium Carbonate (cr,l)"


def test_the_electron_gas_is_stored_as_a_species_without_atoms(store, raw_janaf_catalog):
    request = FetchRequest(formulas=["e-"], all_temperatures=True)
    report = run_ingest(build_connector("janaf", raw_janaf_catalog, request), store)
    material = store.query("SELECT * FROM materials").iloc[0]
    assert (material.source_id, material.formula, material.formula_original) == ("D-020", "e[-1]", "e1-")
    assert (material.atoms_per_formula_unit, list(material.elements), material.chemsys, material.charge) == (
        0,
        [],
        "",
        -1,
    )
    standard = store.query("SELECT property, value FROM properties WHERE temperature_K = 298.15 ORDER BY property")
    assert dict(standard.values.tolist()) == {
        "enthalpy_increment": 0,
        "enthalpy_of_formation": 0,  # by convention, as an element's reference state
        "entropy": pytest.approx(20.979),
        "gibbs_energy_function": pytest.approx(20.979),
        "gibbs_energy_of_formation": 0,
        "heat_capacity_cp": pytest.approx(20.786),  # 5/2 R
        "log_formation_constant": 0,
    }
    # NIST's 0 K row has a lone -6.197 (H-H(Tr)'s value) in the Cp column: refused as a heat capacity
    assert report.reasons == {
        "heat_capacity_cp = -6.197 J/(mol*K) is outside the physical bounds [0, 5000]": 1,
    }


def test_an_ion_with_an_isotope_is_stored_with_its_two_atoms(store, raw_janaf_catalog):
    run_ingest(build_connector("janaf", raw_janaf_catalog, FetchRequest(ids=["D-006"])), store)
    material = store.query("SELECT formula, formula_original, atoms_per_formula_unit, charge FROM materials")
    assert material.values.tolist() == [["DH[+1]", "D1H1+", 2, 1]]  # HD+, not D2H2[+1] (pymatgen's Ion)


def test_a_column_the_field_map_does_not_know_is_counted_not_dropped_silently(tmp_path, store):
    tables = RevisedTables("H-064")
    header = "T(K)\tCp\tS\t-[G-H(Tr)]/T"
    assert header in tables.text["H-064"]
    tables.text["H-064"] = tables.text["H-064"].replace(header, "T(K)\tCp\tS(T)\t-[G-H(Tr)]/T")
    with ReplayServer(tables, prefix="/tables/") as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.url))
        report = fetch(store, catalog, ["H-064"])
    assert (report.n_stored, report.n_values, report.unmapped) == (1, 6, {"S(T)": 1})
    assert "entropy" not in set(store.query("SELECT property FROM properties")["property"])


def test_a_column_listed_in_other_fields_is_known_not_counted_as_unmapped(store, catalog, tmp_path, monkeypatch):
    # a column the map lists in other_fields was reported as one the field map does not know
    path = janaf_project(tmp_path / "project", "")
    path.write_text(path.read_text(encoding="utf-8") + "other_fields: [Cp]\n", encoding="utf-8")
    monkeypatch.chdir(path.parent.parent)
    report = fetch(store, catalog, ["H-064"])
    assert (report.n_stored, report.n_values, report.unmapped) == (1, 6, {})
    assert "heat_capacity_cp" not in set(store.query("SELECT property FROM properties")["property"])


CP_FIELD = "  Cp: {unit: J/(K*mol)}\n"


def janaf_project(folder, cp_field: str):
    """A project folder whose JANAF field map (connectors/janaf.yaml) is matreg's with `cp_field` for Cp's line."""
    text = resource_path("connectors/janaf.yaml").read_text(encoding="utf-8")
    assert CP_FIELD in text
    (folder / "connectors").mkdir(parents=True)
    path = folder / "connectors" / "janaf.yaml"
    path.write_text(text.replace(CP_FIELD, cp_field), encoding="utf-8")
    return path


def test_a_janaf_field_reading_its_unit_from_a_unit_field_is_refused_as_the_map_loads(run, tmp_path, monkeypatch):
    # a JANAF table has no column of units: Cp's values were built with no unit, a traceback in parse_unit
    path = janaf_project(tmp_path / "project", "  Cp: {unit_field: Cp_unit}\n")
    monkeypatch.chdir(path.parent.parent)
    result = run("fetch", "janaf", "Al-001", "--no-progress")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: {path}: line 7: fields.Cp.unit_field: Value error, JANAF tables have no column of units (each "
        "column's unit is fixed: J/(K*mol), kJ/mol or dimensionless): give it with 'unit'\n"
    )


JANAF_METHOD = "NIST-JANAF critical evaluation"


@pytest.mark.parametrize(
    ("cp_field", "method", "provenance"),
    [
        ("{unit: J/(K*mol), method: PBE, provenance: dft}", "PBE", "dft"),
        ("{unit: J/(K*mol), method: Calorimetry}", "Calorimetry", "experimental"),
        ("{unit: J/(K*mol), provenance: simulated}", None, "simulated"),  # not by the table's method
        ("{unit: J/(K*mol), method_qualifier: AGL}", f"{JANAF_METHOD} (AGL)", "experimental"),
    ],
)
def test_a_janaf_field_files_its_values_under_its_own_method_and_provenance(
    store, catalog, tmp_path, monkeypatch, cp_field, method, provenance
):
    # the field's method and provenance were dropped: Cp was stored as experimental, by the NIST-JANAF evaluation
    monkeypatch.chdir(janaf_project(tmp_path / "project", f"  Cp: {cp_field}\n").parent.parent)
    fetch(store, catalog, ["H-064"])
    cp = store.query("SELECT method, provenance FROM properties WHERE property = 'heat_capacity_cp'")
    assert cp.values.tolist() == [[method, provenance]]
    others = store.query("SELECT method, provenance FROM properties WHERE property != 'heat_capacity_cp'")
    assert (
        len(others) == 6 and set(others["method"]) == {JANAF_METHOD} and set(others["provenance"]) == {"experimental"}
    )


def test_a_cell_equal_to_a_missing_marker_of_the_field_map_is_no_value(store, catalog, tmp_path, monkeypatch):
    # JANAF ignored the map's missing_values: H-064's Cp at 298.15 K (33.590) was stored with missing_values ['33.59']
    path = janaf_project(tmp_path / "project", CP_FIELD)
    path.write_text(path.read_text(encoding="utf-8") + "missing_values: ['33.59', '-241.826']\n", encoding="utf-8")
    monkeypatch.chdir(path.parent.parent)
    report = fetch(store, catalog, ["H-064"])
    stored = store.query("SELECT property FROM properties ORDER BY property")["property"].tolist()
    assert stored == [  # not heat_capacity_cp (33.590) nor enthalpy_of_formation (-241.826)
        "enthalpy_increment",
        "entropy",
        "gibbs_energy_function",
        "gibbs_energy_of_formation",
        "log_formation_constant",
    ]
    assert (report.n_stored, report.n_values, report.n_quarantined) == (1, 5, 0)


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("temperature_K: 500", "a JANAF value is at its row's temperature (the table's T(K) column)"),
        ("pressure_Pa: 1.0e6", "a JANAF value is at its table's pressure (1 bar, or the one its title names)"),
    ],
)
def test_a_janaf_field_stating_conditions_of_its_own_is_refused_as_the_map_loads(
    catalog, tmp_path, monkeypatch, key, why
):
    # a field's temperature_K and pressure_Pa were ignored: every row's values kept the row's and the table's
    path = janaf_project(tmp_path / "project", f"  Cp: {{unit: J/(K*mol), {key}}}\n")
    monkeypatch.chdir(path.parent.parent)
    with pytest.raises(ConfigError) as refused:
        build_connector("janaf", catalog, FetchRequest(ids=["H-064"]))
    assert str(refused.value) == f"{path}: line 7: fields.Cp.{key.split(':')[0]}: Value error, {why}"


def test_notes_give_temperatures_as_they_are_stored(store, catalog):
    fetch(store, catalog, ["Al-001"])
    notes = store.query("SELECT notes FROM materials").iloc[0, 0]
    assert notes.endswith(  # not 2790.81 K
        "; 2790.812 K: LIQUID <--> IDEAL GAS; 2790.812 K: FUGACITY = 1 bar; 2790.812 K, also listed: Cp 20.795, "
        "S 211.333, -[G-H(Tr)]/T 74.574, H-H(Tr) 381.667; gibbs_energy_function at 0 K left out: JANAF lists them "
        "as infinite (their limit at 0 K)"  # the table's, whatever temperatures a fetch stores
    )
    assert notes.startswith("933.45 K: CRYSTAL <--> LIQUID; 933.45 K, also listed: Cp 31.751")


def test_api_key_is_sent_as_header_and_never_stored(tmp_path, store, janaf_server, monkeypatch):
    secret = "sk-test-5f1d0c9e8b7a"
    monkeypatch.setenv("JANAF_TEST_KEY", secret)
    catalog = load_catalog(write_catalog(tmp_path / "auth.yaml", janaf_server.url, auth_env="JANAF_TEST_KEY"))
    fetch(store, catalog, ["H-064", "Q-404"])
    janaf_server.fail("/tables/C-095.txt", *[500] * 5)
    with pytest.raises(SourceError):
        fetch(store, catalog, ["C-095"])
    assert janaf_server.requests[0].headers["X-API-KEY"] == secret
    stored_files = [path for path in store.root.rglob("*") if path.is_file()]
    assert any(path.name == "http_cache.sqlite" for path in stored_files)
    for path in stored_files:
        assert secret.encode() not in path.read_bytes(), path


def test_credentials_in_a_base_url_are_sent_to_its_host_and_never_stored(store, catalog, janaf_server):
    with_password = janaf_server.url.replace("http://", "http://alice:S3cretT0k@")
    janaf_server.fail("/tables/C-095.txt", *[500] * 5)
    with pytest.raises(SourceError) as failure:
        fetch(store, catalog, ["H-064", "C-095"], base_url=with_password, page_size=1)
    assert "S3cretT0k" not in str(failure.value)
    fetch(store, catalog, ["H-064"], base_url=with_password)
    assert janaf_server.requests[0].headers["Authorization"] == "Basic " + base64.b64encode(b"alice:S3cretT0k").decode()
    assert store.table("materials")["source_url"].str.startswith(janaf_server.url).all()
    for path in (path for path in store.root.rglob("*") if path.is_file()):
        assert b"S3cretT0k" not in path.read_bytes(), path


def test_a_429_with_retry_after_is_honoured_then_succeeds(store, catalog, janaf_server):
    janaf_server.fail("/tables/H-064.txt", 429, retry_after=1)
    report = fetch(store, catalog, ["H-064"])
    assert report.n_stored == 1 and janaf_server.hits("/tables/H-064.txt") == 2


def test_an_interrupted_run_resumes_with_exactly_the_records_of_a_clean_run(tmp_path, catalog, janaf_server):
    from matreg.store import Store

    ids = ["H-064", "C-095", "Al-001", "O-029", "N-023"]
    clean = Store(tmp_path / "clean")
    fetch(clean, catalog, ids, page_size=2)

    resumed = Store(tmp_path / "resumed")
    janaf_server.fail("/tables/Al-001.txt", *[503] * 4)  # page 2 fails after page 1 was staged
    with pytest.raises(SourceError, match="HTTP 503"):
        fetch(resumed, catalog, ids, page_size=2)
    assert len(resumed.table("materials")) == 0  # nothing visible from the failed run
    hits_before = janaf_server.hits("/tables/H-064.txt")
    report = run_ingest(build_connector("janaf", catalog, FetchRequest(ids=ids, page_size=2)), resumed, resume=True)
    assert janaf_server.hits("/tables/H-064.txt") == hits_before  # page 1 was not fetched again
    assert report.resumed and report.n_fetched == 5
    for table in ("materials", "properties"):
        columns = ["record_id", "property", "value"] if table == "properties" else ["record_id", "formula"]
        assert resumed.table(table)[columns].sort_values(columns).values.tolist() == (
            clean.table(table)[columns].sort_values(columns).values.tolist()
        )
    runs = resumed.table("fetch_runs")
    assert runs["status"].tolist() == ["complete"] and runs["n_fetched"].tolist() == [5]
    assert not any(resumed.staging_dir.iterdir())


def test_a_refetch_in_many_batches_writes_only_the_new_record(store, catalog, monkeypatch):
    import matreg.store

    first = fetch(store, catalog, TABLES, page_size=1)
    monkeypatch.setattr(matreg.store, "PUBLISH_BATCH_BYTES", 1)  # every page its own batch and row group
    second = fetch(store, catalog, [*TABLES, "N-023"], page_size=1)
    assert (second.n_stored, second.n_unchanged) == (4, 3)
    runs = store.query("SELECT source_id, run_id FROM materials ORDER BY source_id").values.tolist()
    assert runs == sorted([[table, first.run_id] for table in TABLES] + [["N-023", second.run_id]])
    written = store.query("SELECT count(*) FROM read_parquet('data/c*/**/properties.parquet')").iloc[0, 0]
    assert written == 28  # 21 from the first run, the new table's 7 from the second


def test_a_run_interrupted_while_publishing_resumes_by_publishing_only(store, catalog, janaf_server, monkeypatch):
    disk_full_at_rows_of(monkeypatch, "properties")  # the materials file is written, then the disk is full
    with pytest.raises(NoSpace, match="No space left on device"):
        fetch(store, catalog, TABLES)
    monkeypatch.undo()
    assert store.table("materials").empty and list(store.tmp_dir.iterdir()) == []  # no half-written commit
    hits = janaf_server.hits("/tables/H-064.txt")
    report = run_ingest(build_connector("janaf", catalog, FetchRequest(ids=TABLES)), store, resume=True)
    assert janaf_server.hits("/tables/H-064.txt") == hits  # nothing fetched again
    assert report.resumed and (report.n_fetched, report.n_stored) == (3, 3)
    assert sorted(store.table("materials")["source_id"]) == sorted(TABLES) and len(store.table("properties")) == 21


def test_resume_without_an_interrupted_run_is_a_clear_error(store, catalog):
    from matreg.errors import StoreError

    with pytest.raises(StoreError, match="nothing to resume"):
        run_ingest(build_connector("janaf", catalog, FetchRequest(ids=["H-064"])), store, resume=True)


def test_dry_run_reports_the_request_and_total_and_writes_nothing(store, catalog):
    report = run_ingest(build_connector("janaf", catalog, FetchRequest(ids=TABLES)), store, dry_run=True)
    assert report.n_available == 3 and "/tables/" in report.request and report.n_stored == 3
    assert not store.exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"elements": ["Fe"]}, "janaf cannot use --elements: JANAF tables are selected by table id"),
        ({"filter": "anything"}, "janaf cannot use --filter: JANAF has no query language"),
        ({"structures": True}, "janaf cannot use --structures: JANAF tables carry no crystal structures"),
    ],
)
def test_options_janaf_cannot_honour_are_refused_not_ignored(catalog, option, message):
    with pytest.raises(ConfigError, match=message):
        build_connector("janaf", catalog, FetchRequest(ids=["H-064"], **option))


def test_a_dry_run_maps_no_more_records_than_the_limit(store, catalog):
    report = run_ingest(build_connector("janaf", catalog, FetchRequest(ids=TABLES)), store, dry_run=True, limit=1)
    assert (report.n_fetched, report.n_stored, report.n_available) == (1, 1, 3) and not store.exists()


def test_limit_stops_after_that_many_records(store, catalog):
    report = run_ingest(build_connector("janaf", catalog, FetchRequest(ids=TABLES, page_size=2)), store, limit=1)
    assert report.n_fetched == 1 and len(store.table("materials")) == 1
    assert report.n_available == 3 and not report.stopped_short(1)  # the limit stopped it, not the source
    assert report.stopped_short(None)  # (had it been given no limit, the source would have sent 1 of 3)


def test_a_limit_below_the_page_size_asks_for_no_more_records(store, catalog, janaf_server):
    connector = build_connector("janaf", catalog, FetchRequest(ids=TABLES, limit=1))  # as `--limit 1` (page: 25)
    report = run_ingest(connector, store, limit=1)
    assert report.n_fetched == 1 and [request.path for request in janaf_server.requests] == [f"/tables/{TABLES[0]}.txt"]


def test_a_limit_that_ends_mid_page_downloads_no_table_past_it(tmp_path, catalog, janaf_server):
    from matreg.store import Store

    ids = ["H-064", "C-095", "Al-001", "O-029", "N-023"]
    request = FetchRequest(ids=ids, page_size=2, limit=3)  # as `--page-size 2 --limit 3`: the limit ends page 2
    report = run_ingest(build_connector("janaf", catalog, request), Store(tmp_path / "fresh"), limit=3)
    assert report.n_fetched == 3 and [request.path for request in janaf_server.requests] == [
        f"/tables/{table}.txt" for table in ids[:3]
    ]
    resumed = Store(tmp_path / "resumed")
    janaf_server.fail("/tables/Al-001.txt", *[503] * 4)  # page 2 fails after page 1 was staged
    with pytest.raises(SourceError, match="HTTP 503"):
        run_ingest(build_connector("janaf", catalog, request), resumed, limit=3)
    janaf_server.requests.clear()
    report = run_ingest(build_connector("janaf", catalog, request), resumed, limit=3, resume=True)
    assert report.n_fetched == 3 and [request.path for request in janaf_server.requests] == ["/tables/Al-001.txt"]
    assert sorted(resumed.table("materials")["source_id"]) == sorted(ids[:3])


class RevisedTables:
    """NIST-JANAF's tables over real HTTP on 127.0.0.1, as the test revises them (`text[table id]`)."""

    def __init__(self, *ids: str) -> None:
        self.text = {table: (JANAF_TABLES / f"{table}.txt").read_text(encoding="utf-8") for table in ids}

    def __call__(self, request: Request) -> Reply:
        table = request.path.removeprefix("/tables/").removesuffix(".txt")
        if table not in self.text:
            return Reply(404, b"Not Found", "text/plain")
        return Reply(200, self.text[table].encode(), "text/plain; charset=utf-8")


def test_a_fetch_at_the_reference_temperature_resolves_no_quarantine_row_at_another(tmp_path, store):
    tables = RevisedTables("Al-001")
    with ReplayServer(tables, prefix="/tables/") as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.url, cache=False))
        tables.text["Al-001"] = tables.text["Al-001"].replace("400\t25.784", "400\t+inf")  # Cp broken at 400 K
        every_temperature = fetch(store, catalog, ["Al-001"], all_temperatures=True)  # quarantined
        tables.text["Al-001"] = tables.text["Al-001"].replace("298.15\t24.209", "298.15\t24.300")  # Cp revised
        assert fetch(store, catalog, ["Al-001"]).n_stored == 1  # the record written at 298.15 K only
    assert every_temperature.n_quarantined == 1
    assert store.query("SELECT count(*) FROM open_quarantine").iloc[0, 0] == every_temperature.n_quarantined
    assert store.query("SELECT DISTINCT scope FROM quarantine").values.tolist() == [[""]]


def test_a_table_refused_unread_is_its_records_row_which_a_later_fetch_writing_it_resolves(tmp_path, store):
    tables = RevisedTables("H-064", "C-095")
    healthy = tables.text["C-095"]
    with ReplayServer(tables, prefix="/tables/") as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.url, cache=False))
        tables.text["C-095"] = "<html><body>Down for maintenance</body></html>"  # a mirror's answer, HTTP 200
        assert fetch(store, catalog, ["H-064", "C-095", "Q-404"]).n_quarantined == 2  # HTTP 404)
        rows = store.query("SELECT item, record_id, scope, reasons, raw FROM open_quarantine ORDER BY item")
        assert rows[["item", "record_id", "scope"]].values.tolist() == [
            ["C-095", "janaf:C-095", "T=298.15 K"],
            ["Q-404", "janaf:Q-404", "T=298.15 K"],
        ]
        assert list(rows.reasons[0]) == ["not a JANAF table: expected a title line and a 'T(K)' header line"]
        assert json.loads(rows.raw[0]) == {
            "table_id": "C-095",
            "text": tables.text["C-095"],
            "url": server.url + "C-095.txt",
        }
        tables.text["C-095"] = healthy
        assert fetch(store, catalog, ["C-095"]).n_stored == 1
    assert store.query("SELECT item FROM open_quarantine")["item"].tolist() == ["Q-404"]  # C-095's row resolved


def test_a_resumed_run_resolves_no_rejection_made_after_its_own_read(tmp_path, store):
    tables = RevisedTables("Al-001", "H-064")
    with ReplayServer(tables, prefix="/tables/") as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.url, cache=False))

        def fetch_one_by_one(ids, **options):
            request = FetchRequest(ids=ids, page_size=1)
            return run_ingest(build_connector("janaf", catalog, request), store, commit_every=1, **options)

        server.fail("/tables/H-064.txt", *[503] * 4)
        with pytest.raises(SourceError):
            fetch_one_by_one(["Al-001", "H-064"])  # Al-001 read valid and staged, then interrupted
        reference = re.compile(r"^298\.15\t.*$", re.M)  # every value at 298.15 K unreadable: rejected whole
        tables.text["Al-001"] = reference.sub("298.15\t+inf\t+inf\t+inf\t+inf\t+inf\t+inf\t+inf", tables.text["Al-001"])
        assert fetch_one_by_one(["Al-001"]).n_quarantined == 1
        assert fetch_one_by_one(["Al-001", "H-064"], resume=True).n_stored == 2  # its earlier read of Al-001
    open_rows = store.query("SELECT record_id, scope FROM open_quarantine").values.tolist()
    assert open_rows == [["janaf:Al-001", "T=298.15 K"]]  # the latest read of Al-001 is the broken one


def test_a_page_the_http_cache_answers_is_stamped_when_the_source_gave_it(tmp_path, store):
    # so a cached answer, older than a rejection, resolves no quarantine row the source still causes
    tables = RevisedTables("Al-001")
    with ReplayServer(tables, prefix="/tables/") as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.url))
        fetch(store, catalog, ["Al-001"], cache=True)  # valid: kept in the HTTP cache
        first_read = store.query("SELECT fetched_at FROM materials").iloc[0, 0]
        tables.text["Al-001"] = tables.text["Al-001"].replace("298.15\t24.209\t28.275", "298.15\t24.209\t+inf")
        assert fetch(store, catalog, ["Al-001"], cache=False).n_quarantined == 1  # the source broke S(298.15)
        fetch(store, catalog, ["Al-001"], cache=True)  # the cached answer, read before it broke
        assert len(server.requests) == 2
    assert store.query("SELECT count(*) FROM open_quarantine").iloc[0, 0] == 1
    stamps = store.query("SELECT DISTINCT fetched_at FROM material_writes ORDER BY 1").iloc[:, 0].tolist()
    assert stamps[0] == first_read and len(stamps) == 2  # the cached read wrote nothing newer than the source's


def test_a_page_of_cached_and_fresh_answers_is_stamped_now(tmp_path, store):
    tables = RevisedTables("Al-001", "H-064")
    with ReplayServer(tables, prefix="/tables/") as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.url))
        fetch(store, catalog, ["Al-001"], cache=True)  # Al-001 kept in the HTTP cache
        fetch(store, catalog, ["H-064"], cache=False)  # H-064 stored, not cached
        tables.text["H-064"] = tables.text["H-064"].replace("298.15\t33.590", "298.15\t33.999")  # Cp revised
        report = fetch(store, catalog, ["Al-001", "H-064"], cache=True)  # one page: Al-001 cached, H-064 fresh
        assert server.hits("/tables/Al-001.txt") == 1 and server.hits("/tables/H-064.txt") == 2
    assert (report.n_stored, report.n_unchanged, report.n_superseded) == (2, 1, 0)
    cp = "SELECT value FROM properties WHERE record_id = 'janaf:H-064' AND property = 'heat_capacity_cp'"
    assert store.query(cp).iloc[0, 0] == 33.999  # the fresh read, not dropped as older than the stored one


def test_a_missing_table_beside_cached_ones_leaves_their_page_as_old_as_the_cache(tmp_path, store):
    tables = RevisedTables("Al-001")
    with ReplayServer(tables, prefix="/tables/") as server:  # (XX-999: 404, never cached)
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.url))
        fetch(store, catalog, ["Al-001"], cache=True)  # kept in the HTTP cache
        tables.text["Al-001"] = tables.text["Al-001"].replace("298.15\t24.209", "298.15\t24.300")  # Cp revised
        fetch(store, catalog, ["Al-001"], cache=False)
        report = fetch(store, catalog, ["Al-001", "XX-999"], cache=True)  # the cached, older Al-001 beside a 404
    assert (report.n_quarantined, report.n_superseded) == (1, 1)
    cp = "SELECT value FROM properties WHERE record_id = 'janaf:Al-001' AND property = 'heat_capacity_cp'"
    assert store.query(cp).iloc[0, 0] == 24.300  # the newer read stays


FORMATION = {"enthalpy_of_formation", "gibbs_energy_of_formation", "log_formation_constant"}
AT_REFERENCE = "SELECT property FROM properties WHERE record_id = 'janaf:H-064' AND temperature_K = 298.15"


def test_a_fetch_at_the_reference_temperature_withdraws_what_it_no_longer_reads_of_an_all_temperatures_run(
    tmp_path, store
):
    tables = RevisedTables("H-064")
    with ReplayServer(tables, prefix="/tables/") as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.url, cache=False))
        fetch(store, catalog, ["H-064"], all_temperatures=True)
        temperatures = "SELECT count(DISTINCT temperature_K) FROM properties WHERE property = 'enthalpy_of_formation'"
        n_temperatures = store.query(temperatures).iloc[0, 0]
        run_together = "298.15\t33.590\t188.834\t188.834\t0.\t241.826  228.582 40.047"  # the signs lost: unreadable
        tables.text["H-064"] = re.sub(r"^298\.15\t.*$", run_together, tables.text["H-064"], flags=re.M)
        narrow = fetch(store, catalog, ["H-064"])
    assert (narrow.n_quarantined, narrow.n_unchanged) == (3, 0)
    rejected = store.query(f"SELECT item FROM open_quarantine WHERE run_id = '{narrow.run_id}'")["item"]
    assert {item.removeprefix("H-064:").removesuffix("@298.15K") for item in rejected} == FORMATION
    shown = set(store.query(AT_REFERENCE)["property"])
    assert shown == {"heat_capacity_cp", "entropy", "gibbs_energy_function", "enthalpy_increment"}
    assert store.query(temperatures).iloc[0, 0] == n_temperatures - 1  # every other temperature still shown
    assert store.query("SELECT count(*) FROM properties WHERE temperature_K = 300").iloc[0, 0] == 7


def test_an_all_temperatures_fetch_withdraws_what_it_no_longer_reads_of_a_reference_temperature_run(tmp_path, store):
    tables = RevisedTables("H-064")
    with ReplayServer(tables, prefix="/tables/") as server:
        catalog = load_catalog(write_catalog(tmp_path / "c.yaml", server.url, cache=False))
        fetch(store, catalog, ["H-064"])
        assert FORMATION <= set(store.query(AT_REFERENCE)["property"])
        tables.text["H-064"] = tables.text["H-064"].replace("-228.582\t40.047", "-228.582")  # log Kf removed
        every_temperature = fetch(store, catalog, ["H-064"], all_temperatures=True)
    assert every_temperature.n_stored == 1 and every_temperature.n_unchanged == 0
    shown = set(store.query(AT_REFERENCE)["property"])
    assert "log_formation_constant" not in shown and len(shown) == 6
    assert store.query("SELECT count(*) FROM properties WHERE temperature_K = 300").iloc[0, 0] == 7
