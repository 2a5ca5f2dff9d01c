"""The curation log on real data: JANAF tables replayed over HTTP and the bundled lab band gaps (with bad rows)."""

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import (
    JANAF_TABLES,
    LAB_EXAMPLE,
    as_an_older_matreg_stored,
    filled_once,
    janaf_route,
    single_value,
    write_catalog,
)
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter
from replay import ReplayServer, Reply, Request

from matreg.catalog import Catalog, Dataset, load_catalog
from matreg.curate import review
from matreg.curate.review import (
    CurationError,
    apply_curation,
    curation_log,
    history,
    record_decision,
    uncertainty_text,
    unmatched_decisions,
)
from matreg.errors import UnknownName
from matreg.export import dataset_query, selection_sql
from matreg.ingest import run_ingest
from matreg.sources import FetchRequest, build_connector
from matreg.sources.lab import LabConnector, load_mapping
from matreg.store import CURATION_RUN_PREFIX
from matreg.validation import check_store_tables, validate_table

TABLES = ["H-064", "C-095", "Al-001"]


@pytest.fixture
def filled(request, store, catalog, catalog_path, tmp_path):
    """JANAF water, CO2 and aluminium at 298.15 K plus the lab file: 30 band gaps stored, 5 rows quarantined
    (`filled_once`)."""

    def fill() -> None:
        run_ingest(build_connector("janaf", catalog, FetchRequest(ids=TABLES)), store)
        run_ingest(LabConnector(LAB_EXAMPLE / "bandgaps.csv", load_mapping(LAB_EXAMPLE / "mapping.yaml")), store)

    filled_once(request, catalog_path, tmp_path / "store", fill)
    return store


def dataset(store, catalog, name):
    """A catalog dataset's long rows with the curation log applied."""
    sql, params = dataset_query(catalog.dataset(name))
    return apply_curation(store.query(sql, params), curation_log(store))


def fetched_rows(store):
    """The materials and properties rows written by fetch and import runs (curation never changes them)."""
    where = "WHERE run_id NOT LIKE 'curation:%' ORDER BY ALL"
    materials = store.query(f"SELECT * REPLACE (array_to_string(elements, ' ') AS elements) FROM materials {where}")
    return [materials, store.query(f"SELECT * FROM properties {where}")]


def quarantined(store, item):
    return single_value(store.query("SELECT quarantine_id FROM quarantine WHERE item = ?", [item]))


def quarantined_row(store, source_id):
    """The quarantine id of a whole lab row, by the id in its payload (however the row is named)."""
    query = "SELECT quarantine_id FROM quarantine WHERE json_extract_string(raw, '$._source_id') = ?"
    return single_value(store.query(query, [source_id]))


def decide(store, action, reason="checked against the source", **target):
    return record_decision(store, action, "A. Steward", reason, **target)


def test_without_decisions_a_dataset_is_the_stored_rows_unreviewed(filled, catalog):
    rows = dataset(filled, catalog, "thermo")
    assert len(rows) == 6 and set(rows["record_id"]) == {"janaf:H-064", "janaf:C-095", "janaf:Al-001"}
    assert (rows["raw_value"] == rows["value"]).all() and not rows["reviewed"].any() and rows["flags"].isna().all()


def test_reject_then_accept_of_a_record_changes_the_dataset_and_history_lists_both_oldest_first(filled, catalog):
    decide(filled, "reject", "superseded by a newer evaluation", record_id="janaf:H-064")
    decide(filled, "accept", record_id="janaf:C-095")
    rows = dataset(filled, catalog, "thermo")
    assert set(rows["record_id"]) == {"janaf:C-095", "janaf:Al-001"} and len(rows) == 4
    assert rows.set_index("record_id")["reviewed"].to_dict() == {"janaf:C-095": True, "janaf:Al-001": False}

    decide(filled, "accept", "re-checked: the 1998 values stand", record_id="janaf:H-064")
    rows = dataset(filled, catalog, "thermo")
    water = rows[rows["record_id"] == "janaf:H-064"].set_index("property")
    assert water.loc["enthalpy_of_formation", "value"] == pytest.approx(-241.826) and water["reviewed"].all()

    log = history(filled, "janaf:H-064")
    assert log[["action", "steward", "reason"]].values.tolist() == [
        ["reject", "A. Steward", "superseded by a newer evaluation"],
        ["accept", "A. Steward", "re-checked: the 1998 values stand"],
    ]
    assert log["entry_id"].is_monotonic_increasing and log["at"].is_monotonic_increasing
    assert history(filled, "janaf:Al-001").empty


def test_value_decisions_reject_flag_and_correct_single_band_gaps(filled, catalog):
    before = dataset(filled, catalog, "gaps")
    decide(
        filled, "reject", "second CuBr sample disagrees", record_id="demo-lab-bandgaps:roost-17", property="band_gap"
    )
    decide(filled, "flag", "alloy composition", record_id="demo-lab-bandgaps:roost-1", property="band_gap")
    decide(
        filled,
        "correct",
        "room-temperature value",
        record_id="demo-lab-bandgaps:roost-5",
        property="band_gap",
        value=3.37,
        unit="electron_volt",
    )  # fmt: skip  (the canonical unit in another spelling: logged as eV)
    rows = dataset(filled, catalog, "gaps").set_index("record_id")
    assert len(rows) == len(before) - 1 == 29 and "demo-lab-bandgaps:roost-17" not in rows.index
    assert rows.loc["demo-lab-bandgaps:roost-1", "flags"] == "A. Steward: alloy composition"
    zno = rows.loc["demo-lab-bandgaps:roost-5"]
    assert (zno.value, zno.raw_value, zno.original_value, zno.original_unit, zno.reviewed) == (
        3.37, pytest.approx(3.44), 3440.0, "meV", True,
    )  # fmt: skip
    assert rows["flags"].notna().sum() == 1 and rows["reviewed"].sum() == 1
    assert history(filled, "demo-lab-bandgaps:roost-5")[["value", "unit"]].values.tolist() == [[3.37, "eV"]]


def test_the_latest_decision_on_a_value_wins_and_a_record_rejection_removes_its_values(filled, catalog):
    gap = {"record_id": "demo-lab-bandgaps:roost-2", "property": "band_gap"}
    decide(filled, "correct", "typo", value=3.1, **gap)
    decide(filled, "accept", "the value as measured is right after all", **gap)
    row = dataset(filled, catalog, "gaps").set_index("record_id").loc["demo-lab-bandgaps:roost-2"]
    assert (row.value, row.reviewed) == (3.08, True)
    decide(filled, "reject", "sample contaminated", record_id="demo-lab-bandgaps:roost-2")
    assert "demo-lab-bandgaps:roost-2" not in set(dataset(filled, catalog, "gaps")["record_id"])
    assert history(filled, "demo-lab-bandgaps:roost-2")["action"].tolist() == ["correct", "accept", "reject"]


def test_a_flag_or_reject_after_a_correction_keeps_the_corrected_value_and_an_accept_restores_the_stored_one(
    filled, catalog
):
    gap = {"record_id": "demo-lab-bandgaps:roost-5", "property": "band_gap"}

    def zno():
        rows = dataset(filled, catalog, "gaps").set_index("record_id")
        return rows.loc[gap["record_id"], ["value", "raw_value", "flags", "reviewed"]].tolist()

    decide(filled, "correct", "room-temperature value", value=3.37, **gap)
    decide(filled, "flag", "second opinion wanted", **gap)
    assert zno() == [3.37, pytest.approx(3.44), "A. Steward: second opinion wanted", False]
    decide(filled, "reject", "left out until re-measured", **gap)
    assert gap["record_id"] not in set(dataset(filled, catalog, "gaps")["record_id"])
    decide(filled, "flag", "re-measured: back in", **gap)
    assert zno() == [3.37, pytest.approx(3.44), "A. Steward: re-measured: back in", False]
    decide(filled, "accept", "the stored value is right after all", **gap)
    assert zno() == [pytest.approx(3.44), pytest.approx(3.44), None, True]


def test_log_entries_are_valid_rows_with_unique_time_ordered_ids_even_when_the_clock_goes_back(filled, monkeypatch):
    first = decide(filled, "flag", record_id="janaf:C-095")

    class Past(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2020, 1, 1, tzinfo=UTC)

    monkeypatch.setattr(review, "datetime", Past)
    second = decide(filled, "flag", record_id="janaf:C-095")
    log = validate_table("curation_log", filled.table("curation_log"))
    assert log["entry_id"].tolist() == [first["entry_id"], second["entry_id"]]
    assert second["entry_id"] > first["entry_id"] and second["at"] > first["at"]
    assert first["entry_id"] == first["at"].strftime("%Y%m%dT%H%M%S%fZ")


def test_a_quarantined_lab_row_with_an_unknown_unit_is_corrected_and_readmitted(filled, catalog):
    raw = fetched_rows(filled)
    entry = decide(
        filled, "readmit", "'elektronvolt' means eV", quarantine_id=quarantined(filled, "bad-unit"), unit="eV"
    )
    run_id = f"curation:{entry['entry_id']}"
    value = filled.query("SELECT * FROM properties WHERE record_id = 'demo-lab-bandgaps:bad-unit'").iloc[0]
    assert (value.property, value.value, value.unit, value.original_value, value.original_unit) == (
        "band_gap",
        3.4,
        "eV",
        3.4,
        "elektronvolt",
    )  # fmt: skip  (as received; the entry has the corrected unit)
    assert (value.temperature_K, value.provenance, value.run_id) == (300.0, "experimental", run_id)
    material = filled.query("SELECT * FROM materials WHERE record_id = 'demo-lab-bandgaps:bad-unit'").iloc[0]
    assert (material.formula, material.run_id, material.source_url) == ("GaN", run_id, "file:bandgaps.csv#id=bad-unit")
    imported = filled.query("SELECT fetched_at FROM materials WHERE record_id = 'demo-lab-bandgaps:roost-1'").iloc[0, 0]
    assert material.fetched_at == imported < entry["at"]  # when the file was read, not when the steward readmitted it
    assert (entry["value"], entry["unit"], entry["property"]) == (3.4, "eV", "band_gap")
    assert entry["record_id"] == "demo-lab-bandgaps:bad-unit"
    assert history(filled, "demo-lab-bandgaps:bad-unit")[["entry_id", "action"]].values.tolist() == [
        [entry["entry_id"], "readmit"]
    ]
    assert "GaN" in set(dataset(filled, catalog, "gaps")["formula"])
    assert all(a.equals(b) for a, b in zip(raw, fetched_rows(filled), strict=True))
    assert len(filled.table("quarantine")) == 5  # the quarantine row stays: the log says it was readmitted
    assert check_store_tables(filled).problems == []


def test_a_readmitted_value_is_curated_as_reviewed_with_the_readmits_steward_and_reason_and_no_stored_raw_value(
    filled, catalog
):
    decide(filled, "readmit", "notebook says 3.3", quarantine_id=quarantined(filled, "bad-number"), value=3.3)
    decide(filled, "readmit", "'elektronvolt' is eV", quarantine_id=quarantined(filled, "bad-unit"), unit="eV")
    decide(filled, "flag", "second opinion wanted", record_id="demo-lab-bandgaps:bad-unit", property="band_gap")
    rows = dataset(filled, catalog, "gaps").set_index("record_id")
    columns = ["value", "raw_value", "original_value", "original_unit", "reviewed", "flags", "fetched_at"]
    readmitted = rows.loc[["demo-lab-bandgaps:bad-number", "demo-lab-bandgaps:bad-unit"], columns]
    imported = rows.loc["demo-lab-bandgaps:roost-1", "fetched_at"]
    assert readmitted.astype(object).where(readmitted.notna(), None).values.tolist() == [
        [3.3, None, None, "eV", True, "A. Steward: notebook says 3.3", imported],
        [3.4, None, 3.4, "elektronvolt", True, "A. Steward: 'elektronvolt' is eV; A. Steward: second opinion wanted",
         imported],
    ]  # fmt: skip
    untouched = rows.loc["demo-lab-bandgaps:roost-1"]
    assert not untouched["reviewed"] and pd.isna(untouched["flags"])


def test_a_readmitted_value_is_named_by_the_method_it_is_stored_with(filled):
    method = filled.query("SELECT DISTINCT method FROM properties WHERE source = 'demo-lab-bandgaps'").iloc[0, 0]
    decide(filled, "readmit", "notebook says 3.3", quarantine_id=quarantined(filled, "bad-number"),
           property="band_gap", method=method, value=3.3)  # fmt: skip
    stored = filled.query("SELECT value, method FROM properties WHERE record_id = 'demo-lab-bandgaps:bad-number'")
    assert stored.values.tolist() == [[3.3, method]]


def test_a_decision_names_a_values_method_by_any_spelling_the_method_vocabulary_reads(filled):
    entry = decide(filled, "flag", record_id="janaf:H-064", property="entropy", method="janaf")
    assert entry["method"] == "NIST-JANAF critical evaluation"


def test_a_decision_an_older_matreg_logged_under_another_label_of_the_method_applies(filled, catalog):
    decide(filled, "flag", "suspect", record_id="janaf:H-064", property="entropy", method="janaf")
    for path in filled.data_dir.glob("c*/**/curation_log.parquet"):  # as logged before the method vocabulary
        table = pq.read_table(path)
        methods = pc.replace_substring(table["method"], "NIST-JANAF critical evaluation", "JANAF")
        pq.write_table(table.set_column(table.schema.get_field_index("method"), "method", methods), path)
    assert filled.query("SELECT DISTINCT method FROM curation_log").values.tolist() == [["JANAF"]]
    rows = dataset(filled, catalog, "thermo").set_index(["record_id", "property"])
    assert rows.loc[("janaf:H-064", "entropy"), "flags"] == "A. Steward: suspect"


def test_a_non_numeric_value_and_an_out_of_bounds_one_are_readmitted_with_corrected_values(filled):
    decide(filled, "readmit", "notebook says 3.3", quarantine_id=quarantined(filled, "bad-number"), value=3.3)
    decide(filled, "readmit", "sign lost, and it was meV", quarantine_id=quarantined(filled, "bad-bounds"),
           property="band_gap", value=1100, unit="meV")  # fmt: skip
    values = filled.query(
        "SELECT record_id, value, unit, original_value, original_unit FROM properties "
        "WHERE run_id LIKE 'curation:%' ORDER BY record_id"
    )
    assert values.astype(object).where(values.notna(), None).values.tolist() == [  # as received: -1.1 eV, 'about 3'
        ["demo-lab-bandgaps:bad-bounds", pytest.approx(1.1), "eV", -1.1, "eV"],
        ["demo-lab-bandgaps:bad-number", 3.3, "eV", None, "eV"],
    ]
    log = curation_log(filled)
    assert log[["action", "value", "unit"]].values.tolist() == [["readmit", 3.3, "eV"], ["readmit", 1100.0, "meV"]]


@pytest.mark.parametrize(
    ("item", "correction", "message"),
    [
        ("bad-bounds", {}, r"still invalid: band_gap = -1.1 eV is outside the physical bounds \[0, 30\]"),
        ("bad-number", {"unit": "eV"}, "still invalid: non-numeric value 'about 3'"),
        ("bad-formula", {}, "still invalid: unparseable formula 'Qz2O3'"),
        ("line 36", {}, "record 'demo-lab-bandgaps:roost-2' of line 36 is already in the store"),
        (
            "bad-unit",
            {"unit": "eV", "property": "formation_energy_per_atom"},
            "the quarantined row gives no formation_energy_per_atom value",
        ),
    ],
)
def test_a_readmit_that_is_still_invalid_is_refused_and_changes_nothing(filled, item, correction, message):
    tables = {name: filled.table(name) for name in ("materials", "properties", "curation_log")}
    with pytest.raises(CurationError, match=message):
        decide(filled, "readmit", quarantine_id=quarantined(filled, item), **correction)
    assert all(filled.table(name).equals(frame) for name, frame in tables.items())


def test_a_readmit_reads_structure_files_beside_the_imported_file_from_any_working_directory(
    store, tmp_path, monkeypatch
):
    lab = tmp_path / "lab"
    lab.mkdir()
    cubr = Structure.from_spacegroup("F-43m", Lattice.cubic(5.69), ["Cu", "Br"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    (lab / "CuBr.cif").write_text(str(CifWriter(cubr)), encoding="utf-8")
    (lab / "gaps.csv").write_text(
        "sample,formula,gap,unit,cif\ncubr-1,CuBr,3.08,eV,CuBr.cif\ncubr-2,CuBr,2.94,elektronvolt,CuBr.cif\n",
        encoding="utf-8",
    )
    (lab / "mapping.yaml").write_text(
        "dataset: cif-lab\nformula_column: formula\nid_column: sample\nstructure_column: cif\ncitation: test\n"
        "columns:\n  gap: {property: band_gap, unit_field: unit}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(lab)
    run_ingest(LabConnector(Path("gaps.csv"), load_mapping(Path("mapping.yaml"))), store)  # as `matreg import` there
    monkeypatch.chdir(tmp_path)
    decide(store, "readmit", "'elektronvolt' is eV", quarantine_id=quarantined(store, "cubr-2"), unit="eV")
    material = store.query("SELECT nsites, source_url FROM materials WHERE record_id = 'cif-lab:cubr-2'").iloc[0]
    assert (material.nsites, material.source_url) == (8, "file:gaps.csv#id=cubr-2")


def test_a_quarantine_row_is_readmitted_once(filled):
    decide(filled, "readmit", quarantine_id=quarantined(filled, "bad-unit"), unit="eV")
    with pytest.raises(CurationError, match="readmitted already"):
        decide(filled, "readmit", quarantine_id=quarantined(filled, "bad-unit"), unit="eV")


def open_items(store):
    return sorted(store.query("SELECT item FROM open_quarantine")["item"])


def test_a_dismissed_row_leaves_open_quarantine_stays_in_quarantine_and_admits_nothing(filled, catalog):
    raw, gaps = fetched_rows(filled), dataset(filled, catalog, "gaps")
    assert open_items(filled) == ["bad-bounds", "bad-formula", "bad-number", "bad-unit", "line 36"]
    bad_formula, reason = quarantined(filled, "bad-formula"), "Qz is no element: no formula to fix"
    entry = decide(filled, "dismiss", reason, quarantine_id=bad_formula)
    assert open_items(filled) == ["bad-bounds", "bad-number", "bad-unit", "line 36"]
    assert len(filled.table("quarantine")) == 5  # the row stays as history
    log = validate_table("curation_log", curation_log(filled))
    assert log[["entry_id", "action", "quarantine_id", "steward", "reason"]].values.tolist() == [
        [entry["entry_id"], "dismiss", bad_formula, "A. Steward", reason]
    ]
    assert log[["record_id", "property", "value", "unit"]].isna().all(axis=None)
    assert all(a.equals(b) for a, b in zip(raw, fetched_rows(filled), strict=True))  # nothing admitted
    assert dataset(filled, catalog, "gaps").equals(gaps) and unmatched_decisions(filled).empty  # no decision
    assert check_store_tables(filled).problems == []


def test_a_dismissal_of_a_row_with_a_record_is_in_its_history(filled):
    entry = decide(filled, "dismiss", "the sample is lost", quarantine_id=quarantined(filled, "bad-bounds"))
    assert history(filled, "demo-lab-bandgaps:bad-bounds")[["entry_id", "action"]].values.tolist() == [
        [entry["entry_id"], "dismiss"]
    ]


def test_a_row_is_dismissed_once_a_dismissed_row_may_be_readmitted_and_a_readmitted_one_not_dismissed(filled):
    bad_unit = quarantined(filled, "bad-unit")
    dismissal = decide(filled, "dismiss", "nobody knows the unit", quarantine_id=bad_unit)
    with pytest.raises(CurationError, match=f"'{bad_unit}' was dismissed already \\(entry {dismissal['entry_id']}\\)"):
        decide(filled, "dismiss", quarantine_id=bad_unit)
    readmit = decide(filled, "readmit", "the notebook says eV after all", quarantine_id=bad_unit, unit="eV")
    assert filled.query("SELECT value FROM properties WHERE record_id = 'demo-lab-bandgaps:bad-unit'").values == 3.4
    with pytest.raises(CurationError, match=f"was readmitted already \\(entry {readmit['entry_id']}\\)"):
        decide(filled, "dismiss", quarantine_id=bad_unit)
    with pytest.raises(CurationError, match="was readmitted already"):
        decide(filled, "readmit", quarantine_id=bad_unit, unit="eV")
    assert curation_log(filled)["action"].tolist() == ["dismiss", "readmit"]
    assert "bad-unit" not in open_items(filled)


def test_a_reopened_row_is_open_again_until_dismissed_again_or_readmitted(filled):
    bad_unit = quarantined_row(filled, "bad-unit")
    with pytest.raises(CurationError, match=f"'{bad_unit}' is not dismissed: nothing to reopen"):
        decide(filled, "reopen", quarantine_id=bad_unit)
    decide(filled, "dismiss", "nobody knows the unit", quarantine_id=bad_unit)
    decide(filled, "reopen", "the notebook turned up", quarantine_id=bad_unit)
    assert "bad-unit" in open_items(filled)
    run_ingest(LabConnector(LAB_EXAMPLE / "bandgaps.csv", load_mapping(LAB_EXAMPLE / "mapping.yaml")), filled)
    assert "bad-unit" in open_items(filled)  # rejected alike again: still open, the reopen being later
    decide(filled, "dismiss", "the notebook says nothing of the unit", quarantine_id=bad_unit)
    assert "bad-unit" not in open_items(filled)
    decide(filled, "reopen", "asked the lab", quarantine_id=bad_unit)
    readmit = decide(filled, "readmit", "the lab says eV", quarantine_id=bad_unit, unit="eV")
    assert "bad-unit" not in open_items(filled)
    undone = f"was readmitted \\(entry {readmit['entry_id']}\\): a readmit is not undone"
    with pytest.raises(CurationError, match=undone):
        decide(filled, "reopen", quarantine_id=bad_unit)
    with pytest.raises(CurationError, match="reopen takes a quarantine id only"):
        decide(filled, "reopen", quarantine_id=bad_unit, record_id="demo-lab-bandgaps:bad-unit")
    actions = ["dismiss", "reopen", "dismiss", "reopen", "readmit"]
    assert history(filled, "demo-lab-bandgaps:bad-unit")["action"].tolist() == actions


@pytest.mark.parametrize(("decimal", "cell"), [("", "2,42"), ("decimal: ','\n", "2.42")])
def test_a_readmit_puts_its_corrected_value_in_a_cell_that_is_no_number(store, tmp_path, decimal, cell):
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        f"dataset: eu\nformula_column: formula\nid_column: id\ncitation: c\n{decimal}columns:\n"
        "  Eg: {property: band_gap, unit: eV}\n  rho: {property: density, unit: g/cm^3}\n",
        encoding="utf-8",
    )
    data = tmp_path / "lab.csv"
    data.write_text(f"id;formula;Eg;rho\nS1;CdS;{cell};\nS2;GaN;{cell};6\n", encoding="utf-8")
    assert run_ingest(LabConnector(data, load_mapping(mapping)), store).n_quarantined == 2  # each row whole
    s1, s2 = (quarantined_row(store, row) for row in ("S1", "S2"))
    decide(store, "readmit", "the notebook says 2.42", quarantine_id=s1, value=2.42)
    with pytest.raises(CurationError, match="the quarantined row gives 2 values; name the property"):
        decide(store, "readmit", quarantine_id=s2, value=3.4)
    decide(store, "readmit", "the notebook says 3.4", quarantine_id=s2, property="band_gap", value=3.4)
    values = store.query("SELECT record_id, property, value FROM properties ORDER BY ALL").values.tolist()
    assert values == [["eu:S1", "band_gap", 2.42], ["eu:S2", "band_gap", 3.4], ["eu:S2", "density", 6.0]]


CP_SERIES = "  Cp: {property: heat_capacity_cp, unit: J/(mol*K), temperature_field: T, temperature_unit: degC}\n"
SAMPLES = "extension: lab-sample\nextra_columns: {sample: sample_id, route: synthesis_route}\n"


@pytest.mark.parametrize("extension", [False, True])
def test_a_row_of_a_measurement_series_is_readmitted_into_the_record_its_ids_other_rows_give(
    store, tmp_path, extension
):
    rows = ["S1,Al2O3,25,79.0", 'S1,Al2O3,100,"96,1"', "S1,Al2O3,200,106.9"]
    columns, header = CP_SERIES, "id,formula,T,Cp"
    if extension:
        columns, header, rows = columns + SAMPLES, header + ",sample,route", [row + ",A-7,sol-gel" for row in rows]
    series = "\n".join([header, *rows]) + "\n"
    assert import_lab(store, tmp_path, "cp", columns, series).n_quarantined == 1  # the 100 °C row, whole
    decide(store, "readmit", "the notebook says 96.1", quarantine_id=quarantined(store, "S1"), value=96.1)
    shown = "SELECT record_id, temperature_K, value FROM properties ORDER BY ALL"
    series_values = [["cp:S1", 298.15, 79.0], ["cp:S1", 373.15, 96.1], ["cp:S1", 473.15, 106.9]]
    assert store.query(shown).values.tolist() == series_values
    assert len(store.query("SELECT * FROM material_writes")) == 1  # the record as its import wrote it: a value added
    attributes = store.query("SELECT attribute, value, run_id LIKE 'curation:%' FROM record_attributes ORDER BY 1")
    assert attributes.values.tolist() == (
        [["sample_id", "A-7", False], ["synthesis_route", "sol-gel", False]] if extension else []
    )
    assert import_lab(store, tmp_path, "cp", columns, series).n_unchanged == 1
    assert store.query(shown).values.tolist() == series_values  # the readmit holds while the file gives the row so
    import_lab(store, tmp_path, "cp", columns, series.replace("S1,Al2O3,200", "S1,GaN,200"))  # another material
    with pytest.raises(CurationError, match="'cp:S1' of line 4 is already in the store, as an import of its file"):
        decide(store, "readmit", quarantine_id=quarantined(store, "line 4"), value=60)


def test_a_row_of_a_series_is_not_readmitted_into_its_record_as_stored_with_another_space_group(store, tmp_path):
    columns, header = CP_SERIES + "spacegroup_column: sg\n", "id,formula,T,Cp,sg"
    rows = ["S1,Al2O3,25,79.0,167", 'S1,Al2O3,100,"96,1",167', "S1,Al2O3,200,106.9,167"]
    assert import_lab(store, tmp_path, "cp", columns, "\n".join([header, *rows]) + "\n").n_quarantined == 1
    # every row of the series now says 62, and each is rejected: the record keeps its last valid read, of 167
    edited = ['S1,Al2O3,25,"79,0",62', 'S1,Al2O3,100,"96,1",62', 'S1,Al2O3,200,"106,9",62']
    assert import_lab(store, tmp_path, "cp", columns, "\n".join([header, *edited]) + "\n").n_quarantined == 3
    assert store.query("SELECT spacegroup_number FROM materials").values.tolist() == [[167]]
    query = "SELECT quarantine_id FROM open_quarantine WHERE json_extract_string(raw, '$.T') = '100'"
    with pytest.raises(CurationError, match="'cp:S1' of S1 is already in the store, as an import of its file wrote"):
        decide(store, "readmit", "the notebook says 96.1", quarantine_id=single_value(store.query(query)), value=96.1)
    assert store.query("SELECT temperature_K FROM properties ORDER BY 1").values.tolist() == [[298.15], [473.15]]


def test_a_series_row_a_re_import_rejects_keeps_its_stored_value_which_a_readmit_does_not_write_over(store, tmp_path):
    header, rows = "id,formula,T,Cp", ["S1,Al2O3,25,79.0", "S1,Al2O3,100,96.1"]
    import_lab(store, tmp_path, "cp", CP_SERIES, "\n".join([header, *rows]) + "\n")
    mistyped = "\n".join([header, rows[0], "S1,Al2O3,100,96.1x"]) + "\n"
    assert import_lab(store, tmp_path, "cp", CP_SERIES, mistyped).n_quarantined == 1
    with pytest.raises(CurationError, match="readmit refused: the heat_capacity_cp value of 'cp:S1' is already stored"):
        decide(store, "readmit", "the notebook says 96.3", quarantine_id=quarantined(store, "S1"), value=96.3)
    shown = "SELECT temperature_K, value FROM properties ORDER BY ALL"
    assert store.query(shown).values.tolist() == [[298.15, 79.0], [373.15, 96.1]]  # its last valid read
    assert store.query("SELECT item FROM open_quarantine").values.tolist() == [["S1"]]


def test_a_value_a_re_import_rejects_beside_a_valid_one_keeps_its_stored_value_which_a_readmit_does_not_write_over(
    store, tmp_path
):
    columns = CP_SERIES + CP_SERIES.replace("Cp: {property: heat_capacity_cp", "S: {property: entropy")
    header, rows = "id,formula,T,Cp,S", ["S1,Al2O3,25,79.0,50.9", "S1,Al2O3,100,96.1,74.2"]
    import_lab(store, tmp_path, "cp", columns, "\n".join([header, *rows]) + "\n")
    mistyped = "\n".join([header, rows[0], "S1,Al2O3,100,96.1x,74.2"]) + "\n"
    assert import_lab(store, tmp_path, "cp", columns, mistyped).n_quarantined == 1
    with pytest.raises(CurationError, match="readmit refused: the heat_capacity_cp value of 'cp:S1' is already stored"):
        decide(
            store,
            "readmit",
            "the notebook says 96.3",
            quarantine_id=quarantined(store, "S1:heat_capacity_cp@373.15K"),
            value=96.3,
        )
    shown = "SELECT property, temperature_K, value FROM properties WHERE property = 'heat_capacity_cp' ORDER BY ALL"
    assert store.query(shown).values.tolist() == [
        ["heat_capacity_cp", 298.15, 79.0],
        ["heat_capacity_cp", 373.15, 96.1],
    ]


def test_a_dismissed_row_a_later_fetch_rejects_alike_stays_dismissed(store, catalog):
    def fetch():
        return run_ingest(build_connector("janaf", catalog, FetchRequest(ids=["H-064", "Q-404"])), store)

    fetch()
    missing = quarantined(store, "Q-404")  # HTTP 404: a row without a record, which no fetch ever resolves
    assert open_items(store) == ["Q-404"]
    decide(store, "dismiss", "no such JANAF table", quarantine_id=missing)
    assert open_items(store) == []
    again = fetch()
    assert again.n_quarantined == 1
    assert store.query("SELECT quarantine_id FROM quarantine").values.tolist() == [[missing]]
    latest = store.query("SELECT quarantined FROM fetch_runs WHERE run_id = ?", [again.run_id]).iloc[0, 0]
    assert list(latest) == [missing] and open_items(store) == []


@pytest.fixture
def broken_cp(tmp_path) -> Catalog:
    """The JANAF tables over HTTP on 127.0.0.1, H-064's Cp at 0 K broken to '+inf' (a value quarantined)."""

    def route(request: Request) -> Reply:
        if request.path != "/tables/H-064.txt":
            return janaf_route(request)
        text = (JANAF_TABLES / "H-064.txt").read_text(encoding="utf-8")
        return Reply(200, text.replace("\n0\t0.\t", "\n0\t+inf\t", 1).encode(), "text/plain")

    with ReplayServer(route, prefix="/tables/") as server:
        yield load_catalog(write_catalog(tmp_path / "broken.yaml", server.url))


def test_a_quarantined_janaf_value_is_readmitted_beside_its_stored_record(store, broken_cp):
    run_ingest(build_connector("janaf", broken_cp, FetchRequest(ids=["H-064", "Q-404"], all_temperatures=True)), store)
    with pytest.raises(CurationError, match="is a whole janaf record: only lab rows and single values"):
        decide(store, "readmit", quarantine_id=quarantined(store, "Q-404"))  # HTTP 404: nothing to correct
    raw = fetched_rows(store)
    infinite = quarantined(store, "H-064:heat_capacity_cp@0K")
    with pytest.raises(CurationError, match=r"still invalid: not a finite number: '\+inf'"):
        decide(store, "readmit", quarantine_id=infinite)
    entry = decide(store, "readmit", "steward's finite stand-in", quarantine_id=infinite, value=0.0)
    value = store.query(
        "SELECT * FROM properties WHERE record_id = 'janaf:H-064' AND property = 'heat_capacity_cp' "
        "AND temperature_K = 0"
    ).iloc[0]
    assert (value.value, value.unit, value.original_unit, value.pressure_Pa) == (0.0, "J/(mol*K)", "J/(K*mol)", 1e5)
    assert value.run_id == f"curation:{entry['entry_id']}"
    assert all(a.equals(b) for a, b in zip(raw, fetched_rows(store), strict=True))
    assert history(store, "janaf:H-064")["action"].tolist() == ["readmit"]
    with pytest.raises(CurationError, match="quarantine id, not a record id"):
        decide(store, "readmit", quarantine_id=infinite, record_id="janaf:H-064")


def test_a_value_at_0_k_quarantined_before_it_was_named_so_is_readmitted(store, broken_cp):
    run_ingest(build_connector("janaf", broken_cp, FetchRequest(ids=["H-064"], all_temperatures=True)), store)
    for path in store.data_dir.glob("c*/**/quarantine.parquet"):  # as matreg named it before: no '@0K'
        table = pq.read_table(path)
        items = pc.replace_substring(table["item"], "@0K", "")
        pq.write_table(table.set_column(table.schema.get_field_index("item"), "item", items), path)
    entry = decide(
        store,
        "readmit",
        "finite stand-in",
        quarantine_id=quarantined(store, "H-064:heat_capacity_cp"),
        value=0.0,
    )
    assert entry["record_id"] == "janaf:H-064" and entry["temperature_K"] == 0


def test_a_value_among_several_conditions_must_be_named(store, catalog):
    run_ingest(build_connector("janaf", catalog, FetchRequest(ids=["H-064"], all_temperatures=True)), store)
    with pytest.raises(
        CurationError, match=r"62 stored entropy value of 'janaf:H-064' match: .* and 59 more; name the"
    ):
        decide(store, "flag", record_id="janaf:H-064", property="entropy")
    entry = decide(store, "flag", record_id="janaf:H-064", property="entropy", temperature_K=298.15)
    assert (entry["temperature_K"], entry["pressure_Pa"], entry["method"]) == (
        298.15,
        1e5,
        "NIST-JANAF critical evaluation",
    )


@pytest.mark.parametrize(
    ("action", "target", "message"),
    [
        ("accept", {"record_id": "janaf:H-064", "property": "band_gap"}, "no stored band_gap value of 'janaf:H-064'"),
        ("correct", {"record_id": "demo-lab-bandgaps:roost-5", "property": "band_gap", "value": 31.0},
         r"band_gap = 31 eV is outside the physical bounds \[0, 30\]"),
        ("correct", {"record_id": "demo-lab-bandgaps:roost-5", "property": "band_gap", "value": 3370, "unit": "meV"},
         "canonical unit eV, not 'meV'"),
        ("correct", {"record_id": "demo-lab-bandgaps:roost-5"}, "name the value's property"),
        ("flag", {"record_id": "demo-lab-bandgaps:roost-5", "property": "band_gap", "value": 1.0}, "use correct"),
        ("dismiss", {}, "dismiss needs a quarantine id"),
        ("dismiss", {"record_id": "janaf:H-064"}, "dismiss takes a quarantine id only"),
        ("approve", {"record_id": "janaf:H-064"}, "unknown action 'approve'"),
    ],
)  # fmt: skip
def test_invalid_decisions_are_refused_with_the_reason_and_log_nothing(filled, action, target, message):
    with pytest.raises(CurationError, match=message):
        decide(filled, action, **target)
    assert curation_log(filled).empty


@pytest.mark.parametrize(
    ("action", "target", "message"),
    [
        ("reject", {"record_id": "janaf:Q-404"}, "unknown record 'janaf:Q-404'"),
        ("readmit", {"quarantine_id": "0" * 40}, "unknown quarantine row"),
        ("dismiss", {"quarantine_id": "0" * 40}, "unknown quarantine row '0000000000000000000000000000000000000000'"),
    ],
)
def test_decisions_on_what_the_store_does_not_hold_are_refused_as_unknown_names(filled, action, target, message):
    with pytest.raises(UnknownName, match=message):
        decide(filled, action, **target)
    assert curation_log(filled).empty


def test_a_decision_needs_a_steward_and_a_reason(filled):
    with pytest.raises(CurationError, match="steward's name and a reason"):
        record_decision(filled, "accept", " ", "fine", record_id="janaf:H-064")
    with pytest.raises(CurationError, match="steward's name and a reason"):
        record_decision(filled, "accept", "A. Steward", "", record_id="janaf:H-064")
    bad_formula_row = quarantined(filled, "bad-formula")
    for steward, reason in ((" ", "no formula"), ("A. Steward", " ")):
        with pytest.raises(CurationError, match="steward's name and a reason"):
            record_decision(filled, "dismiss", steward, reason, quarantine_id=bad_formula_row)
    assert curation_log(filled).empty and "bad-formula" in open_items(filled)


def test_history_of_an_unknown_record_is_an_error(filled):
    with pytest.raises(UnknownName, match="unknown record 'janaf:X-000'"):
        history(filled, "janaf:X-000")


def import_lab(store, tmp_path, dataset: str, columns: str, csv_text: str, file: str = "lab.csv"):
    """Import `csv_text` (columns id, formula and those `columns`, YAML, maps) as the lab dataset `dataset`, from the
    files m.yaml and `file`."""
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        f"dataset: {dataset}\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n{columns}",
        encoding="utf-8",
    )
    data = tmp_path / file
    data.write_text(csv_text, encoding="utf-8")
    return run_ingest(LabConnector(data, load_mapping(mapping)), store)


def import_gaps(store, tmp_path, csv_text: str):
    """Import `csv_text` (columns id, formula, gap in eV, dHf in eV/atom) as the lab dataset 'gaps'."""
    columns = "  gap: {property: band_gap, unit: eV}\n  dHf: {property: formation_energy_per_atom, unit: eV/atom}\n"
    return import_lab(store, tmp_path, "gaps", columns, csv_text)


def test_a_dismissed_lab_value_stays_dismissed_when_its_file_gives_it_again_and_a_changed_one_is_new(store, tmp_path):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\ns1,ZnO,about 3,-1.8\ns2,GaN,3.4,-1.2\n")
    first = quarantined(store, "s1:band_gap")
    decide(store, "dismiss", "the notebook is lost", quarantine_id=first)
    import_gaps(store, tmp_path, "id,formula,gap,dHf\ns2,GaN,3.4,-1.2\ns1,ZnO,about 3,-1.8\n")  # same value, moved
    assert store.query("SELECT quarantine_id FROM quarantine").values.tolist() == [[first]] and open_items(store) == []
    import_gaps(store, tmp_path, "id,formula,gap,dHf\ns2,GaN,3.4,-1.2\ns1,ZnO,about 3.3,-1.8\n")  # changed
    changed = single_value(store.query("SELECT quarantine_id FROM quarantine WHERE quarantine_id != ?", [first]))
    assert store.query("SELECT quarantine_id, item FROM open_quarantine").values.tolist() == [[changed, "s1:band_gap"]]


def test_a_readmitted_value_stays_when_its_record_is_imported_again_changed(store, tmp_path):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\ns1,ZnO,3.3,about -1.8\n")
    decide(
        store,
        "readmit",
        "the notebook says -1.8",
        quarantine_id=quarantined(store, "s1:formation_energy_per_atom"),
        value=-1.8,
    )
    import_gaps(store, tmp_path, "id,formula,gap,dHf\ns1,ZnO,3.37,about -1.8\n")  # the gap corrected
    values = store.query("SELECT property, value FROM properties ORDER BY property").values.tolist()
    assert values == [["band_gap", 3.37], ["formation_energy_per_atom", -1.8]]
    again = import_gaps(store, tmp_path, "id,formula,gap,dHf\ns1,ZnO,3.37,about -1.8\n")
    assert again.n_unchanged == 1  # the readmitted value the file still gets wrong changes nothing


@pytest.mark.parametrize(
    ("imported", "as_stored", "atoms"),
    [
        ("ZnO", {"formula": "ZnO[+0]", "formula_original": "ZnO[0]", "charge": 0.0}, 2),  # a charge of zero
        ("CaH2SO1.45", {"formula_original": "CaSO4.5e-1H2O"}, 5.45),  # a period before a count with an exponent
        ("H16.5N5.5", {"formula_original": "H0.5.5NH3"}, 22),  # an amount of none in an adduct's part
    ],
)
def test_a_value_of_a_record_an_older_matreg_stored_is_readmitted_per_its_formula_unit_as_stored(
    store, tmp_path, imported, as_stored, atoms
):
    # a formula this matreg refuses, which an older one read and stored: its record's values are per mole of it
    columns = "  gap: {property: band_gap, unit: eV}\n  dHf: {property: formation_energy_per_atom, unit: kJ/mol}\n"
    import_lab(store, tmp_path, "gaps", columns, f"id,formula,gap,dHf\ns1,{imported},3.3,about -500\n")
    as_an_older_matreg_stored(store, {"gaps:s1": as_stored})
    decide(store, "readmit", "the notebook says -500", quarantine_id=quarantined(store, "s1:formation_energy_per_atom"),
           value=-500)  # fmt: skip
    values = store.query("SELECT record_id, property, value FROM properties ORDER BY property").values.tolist()
    per_atom = -500 / 96.48533212331 / atoms  # kJ/mol of the formula unit as stored, in eV/atom
    assert values == [["gaps:s1", "band_gap", 3.3], ["gaps:s1", "formation_energy_per_atom", pytest.approx(per_atom)]]


def test_a_correction_is_held_to_the_bounds_of_its_records_species_an_ions_or_another_compounds(store, tmp_path):
    entropy = "  S: {property: entropy, unit: J/(mol*K), temperature_K: 298.15}\n"
    import_lab(store, tmp_path, "nbs", entropy, "id,formula,S\nmg,Mg[+2],138.1\ncorundum,Al2O3,50.92\n")  # sign lost
    entry = decide(store, "correct", "NBS tables: S° of Mg2+(aq)", record_id="nbs:mg", property="entropy", value=-138.1)
    assert (entry["value"], entry["unit"]) == (-138.1, "J/(mol*K)")
    refused = r"^entropy = -50.92 J/\(mol\*K\) is outside the physical bounds \[0, 5000\]$"  # a crystal's: positive
    with pytest.raises(CurationError, match=refused):
        decide(store, "correct", record_id="nbs:corundum", property="entropy", value=-50.92)
    with pytest.raises(
        CurationError, match=r"outside the physical bounds of an ion or aqueous solute \[-5000, 5000\]$"
    ):
        decide(store, "correct", record_id="nbs:mg", property="entropy", value=-138100.0)


def test_a_correction_of_an_aqueous_solutes_value_is_held_to_the_bounds_of_an_ion(store, tmp_path):
    entropy = "  S: {property: entropy, unit: J/(mol*K), temperature_K: 298.15}\n"
    import_lab(store, tmp_path, "nbs", entropy, "id,formula,S\nmgso4,MgSO4(aq),118.0\n")  # sign lost
    entry = decide(store, "correct", "NBS: S° of MgSO4(aq)", record_id="nbs:mgso4", property="entropy", value=-118.0)
    assert (entry["value"], entry["unit"]) == (-118.0, "J/(mol*K)")


def test_a_readmitted_value_the_file_later_gives_itself_does_not_return_when_the_file_drops_it(store, tmp_path):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\ns1,ZnO,3.3,about -1.8\n")
    entry = quarantined(store, "s1:formation_energy_per_atom")
    decide(store, "readmit", "the notebook says -1.8", quarantine_id=entry, value=-1.8)
    import_gaps(store, tmp_path, "id,formula,gap,dHf\ns1,ZnO,3.3,-1.79\n")  # the file gives the value itself
    shown = "SELECT property, value FROM properties ORDER BY property"
    assert store.query(shown).values.tolist() == [["band_gap", 3.3], ["formation_energy_per_atom", -1.79]]
    import_gaps(store, tmp_path, "id,formula,gap,dHf\ns1,ZnO,3.3,\n")  # and then no longer
    assert store.query(shown).values.tolist() == [["band_gap", 3.3]]  # not the readmitted -1.8 of week one


def test_a_whole_row_is_readmitted_by_the_mapping_its_file_was_last_imported_with(store, tmp_path):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nv1,ZnO,3.3,\nv3,GaN,-3.4,\n")  # v3 quarantined
    mapping = tmp_path / "m.yaml"
    mapping.write_text(mapping.read_text().replace("citation: c", "citation: final") + "method: Tauc plot\n")
    run_ingest(LabConnector(tmp_path / "lab.csv", load_mapping(mapping)), store)  # v3 quarantined again
    rows_of_v3 = store.query("SELECT quarantine_id FROM quarantine WHERE item = 'v3'")["quarantine_id"].tolist()
    assert len(rows_of_v3) == 2  # a row by each mapping; the later import's is the one still given (open)
    still_given = single_value(store.query("SELECT quarantine_id FROM open_quarantine WHERE item = 'v3'"))
    decide(store, "readmit", "sign lost in typing", quarantine_id=still_given, value=3.4)
    rows = store.query("SELECT record_id, citation, method FROM materials ORDER BY record_id").values.tolist()
    assert rows == [["gaps:v1", "final", "Tauc plot"], ["gaps:v3", "final", "Tauc plot"]]


def test_a_row_of_a_workbook_is_readmitted_by_its_sheets_mapping_beside_another_sheets_values(store, tmp_path):
    with pd.ExcelWriter(tmp_path / "lab.xlsx") as workbook:
        gaps = {"id": ["S1", "S2"], "formula": ["ZnO", "GaN"], "gap": [3.3, -3.4]}
        pd.DataFrame(gaps).to_excel(workbook, sheet_name="gaps", index=False)
        thermo = {"id": ["S1", "S2"], "formula": ["ZnO", "GaN"], "dHf": [-1.8, -0.6]}
        pd.DataFrame(thermo).to_excel(workbook, sheet_name="thermo", index=False)
    base = "dataset: smith\nformula_column: formula\nid_column: id\ncitation: x\n"
    (tmp_path / "a.yaml").write_text(base + "sheet: gaps\ncolumns:\n  gap: {property: band_gap, unit: eV}\n")
    thermo_columns = "columns:\n  dHf: {property: formation_energy_per_atom, unit: eV/atom}\n"
    (tmp_path / "b.yaml").write_text(base + "sheet: thermo\n" + thermo_columns)
    run_ingest(LabConnector(tmp_path / "lab.xlsx", load_mapping(tmp_path / "a.yaml")), store)  # S2 quarantined
    run_ingest(LabConnector(tmp_path / "lab.xlsx", load_mapping(tmp_path / "b.yaml")), store)  # the other sheet
    decide(store, "readmit", "sign lost", quarantine_id=quarantined(store, "S2"), value=3.4)
    values = "SELECT property, value FROM properties WHERE record_id = 'smith:S2' ORDER BY property"
    assert store.query(values).values.tolist() == [["band_gap", 3.4], ["formation_energy_per_atom", -0.6]]


def test_history_keeps_a_readmit_after_the_fixed_file_is_imported_again(store, tmp_path):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nv3,ZnO,-3.3,\nv4,GaN,3.4,\n")
    entry = decide(store, "readmit", "sign lost in typing", quarantine_id=quarantined(store, "v3"), value=3.3)
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nv3,ZnO,3.31,\nv4,GaN,3.4,\n")  # the file fixed, remeasured
    assert history(store, "gaps:v3")[["entry_id", "action"]].values.tolist() == [[entry["entry_id"], "readmit"]]


def test_a_readmitted_record_loses_a_value_its_fixed_file_no_longer_gives(store, tmp_path):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nv3,ZnO,-3.3,\n")  # the whole row quarantined
    decide(store, "readmit", "sign lost in typing", quarantine_id=quarantined(store, "v3"), value=3.3)
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nv3,ZnO,,-1.5\n")  # the gap was a wrong column
    values = store.query("SELECT property, value FROM properties").values.tolist()
    assert values == [["formation_energy_per_atom", -1.5]]


def to_redo(store):
    """(action, record, why) of each decision or readmit `decisions_to_redo` lists of the decided values."""
    found = review.decisions_to_redo(store, review.decided_values(store))
    return found[["action", "record_id", "why"]].values.tolist()


NOT_GIVEN = "made on no number (eV/atom) as received, which a later read of the record no longer gives"
NOT_SHOWN = "the readmitted value is not shown"


@pytest.mark.parametrize(
    ("edited", "now", "why"),
    [
        ("s1,ZnO,3.3,about -1.9", [], NOT_GIVEN),  # rejected otherwise: a new quarantine row
        ("s1,ZnO,3.3,", [], NOT_GIVEN),
        ("s1,GaN,3.3,about -1.8", [], "made on ZnO, the record is now GaN"),  # the same cell, of another material
        ("s1,ZnO,3.3,-1.79", [-1.79], "made on no number (eV/atom) as received, the value is now -1.79 eV/atom"),
    ],
)
def test_a_readmitted_value_is_stale_and_no_longer_shown_once_its_file_gives_it_otherwise(
    store, tmp_path, edited, now, why
):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\ns1,ZnO,3.3,about -1.8\n")
    dhf = quarantined(store, "s1:formation_energy_per_atom")
    decide(store, "readmit", "the notebook says -1.8", quarantine_id=dhf, value=-1.8)
    import_gaps(store, tmp_path, "id,formula,gap,dHf\ns1,ZnO,3.3,about -1.8\n")  # as readmitted: in force

    def formation_energies():
        return [value for (_, prop), (_, value, *_) in curated(store).items() if prop == "formation_energy_per_atom"]

    assert formation_energies() == [-1.8] and to_redo(store) == []
    import_gaps(store, tmp_path, f"id,formula,gap,dHf\n{edited}\n")
    assert formation_energies() == now
    assert to_redo(store) == [["readmit", "gaps:s1", f"{why}: {NOT_SHOWN}"]]


def test_the_store_names_the_values_it_shows_of_records_and_the_records_a_readmit_wrote_once_no_longer_shown(
    store, tmp_path
):
    """What curation reads of the store's history it asks the store for by name, not by the store's files
    (`Store.shown_values`, `Store.selected_records_written_by`): the values shown now of the records asked for, each
    with its record's formula and the run that wrote it; the records a readmit wrote values of that a dataset's
    selection takes, still once its value is no longer shown (a stale readmit's)."""
    import_gaps(store, tmp_path, "id,formula,gap,dHf\ns1,ZnO,3.3,about -1.8\ns2,GaN,3.4,-1.2\n")
    dhf = quarantined(store, "s1:formation_energy_per_atom")
    readmit = (
        CURATION_RUN_PREFIX
        + decide(store, "readmit", "the notebook says -1.8", quarantine_id=dhf, value=-1.8)["entry_id"]
    )
    columns = ["record_id", "formula", "property", "original_value", "original_unit"]
    shown = store.shown_values(["gaps:s1"])
    assert shown[columns].fillna({"original_value": 0}).values.tolist() == [
        ["gaps:s1", "ZnO", "band_gap", 3.3, "eV"],
        ["gaps:s1", "ZnO", "formation_energy_per_atom", 0, "eV/atom"],  # (received as no number: 'about -1.8')
    ]
    assert shown["original_value"].isna().tolist() == [False, True]
    assert shown["run_id"].str.startswith(CURATION_RUN_PREFIX).tolist() == [False, True]
    energies = selection_sql(Dataset(description="e", version="1", properties=["formation_energy_per_atom"]))
    gaps = selection_sql(Dataset(description="g", version="1", properties=["band_gap"]))
    assert store.selected_records_written_by([readmit], *energies) == ["gaps:s1"]
    import_gaps(store, tmp_path, "id,formula,gap,dHf\ns1,ZnO,3.3,\ns2,GaN,3.4,-1.2\n")  # the value no longer given
    assert store.shown_values(["gaps:s1"])[columns].values.tolist() == [["gaps:s1", "ZnO", "band_gap", 3.3, "eV"]]
    assert store.selected_records_written_by([readmit], *energies) == ["gaps:s1"]
    assert store.selected_records_written_by([readmit], *gaps) == []


def test_a_readmitted_value_stays_while_another_file_gives_its_material_written_otherwise(store, tmp_path):
    columns = "  gap: {property: band_gap, unit: eV, temperature_field: T}\n"
    import_lab(store, tmp_path, "gaps", columns, "id,formula,gap,T\ns1,Fe0.95O,about 2,300\n", file="a.csv")
    decide(store, "readmit", "the notebook says 2.0", quarantine_id=quarantined(store, "s1"), value=2.0)
    # Fe19O20 is Fe0.95O; the readmit was not made on b.csv
    import_lab(store, tmp_path, "gaps", columns, "id,formula,gap,T\ns1,Fe19O20,2.1,10\n", file="b.csv")
    gaps = "SELECT temperature_K, value FROM properties ORDER BY temperature_K"
    assert store.query(gaps).values.tolist() == [[10.0, 2.1], [300.0, 2.0]]
    assert review.stale_entries(store).empty


def test_a_readmit_keeps_its_records_state_and_is_stale_once_its_file_gives_the_record_in_another(store, tmp_path):
    """A readmit logged no phase: a file correcting its own H2O(l) to H2O(g), the quarantined cell as it was, kept the
    liquid's readmitted value in the gas's record (the reduced formula, all a readmit compared, is H2O both)."""
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nw,H2O(l),6.9,about -1.0\nv3,GaN,-3.4,\n")  # v3 whole
    dhf = quarantined(store, "w:formation_energy_per_atom")
    decide(store, "readmit", "the notebook says -1.0", quarantine_id=dhf, value=-1.0)
    decide(store, "readmit", "sign lost in typing", quarantine_id=quarantined_row(store, "v3"), value=3.4)
    logged = curation_log(store)[["record_id", "formula", "phase"]].values.tolist()
    assert logged == [["gaps:w", "H2O", "l"], ["gaps:v3", "GaN", "cr"]]  # 'cr' where the record states none
    energies = "SELECT value FROM properties WHERE property = 'formation_energy_per_atom'"
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nw,H2O(l),6.9,about -1.0\nv3,GaN,-3.4,\n")  # as readmitted
    assert store.query(energies).values.tolist() == [[-1.0]] and to_redo(store) == []
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nw,H2O(g),6.9,about -1.0\nv3,GaN,-3.4,\n")
    assert store.query(energies).values.tolist() == []
    assert to_redo(store) == [["readmit", "gaps:w", f"made on H2O(l), the record is now H2O(g): {NOT_SHOWN}"]]


def test_a_readmit_on_a_record_stating_no_state_after_a_write_stating_one_is_in_force(store, tmp_path):
    """The latest write's state is compared, a crystal's where it states none: not an earlier write's gas."""
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nw,H2O(g),6.9,\n")
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nw,H2O,6.9,about -1.0\n")  # now ice, stating no state
    dhf = quarantined(store, "w:formation_energy_per_atom")
    decide(store, "readmit", "the notebook says -1.0", quarantine_id=dhf, value=-1.0)
    energies = "SELECT value FROM properties WHERE property = 'formation_energy_per_atom'"
    assert store.query(energies).values.tolist() == [[-1.0]] and review.stale_entries(store).empty


def test_a_readmit_on_a_liquid_is_stale_once_its_file_gives_the_record_stating_no_state(store, tmp_path):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nw,H2O(l),6.9,about -1.0\n")
    dhf = quarantined(store, "w:formation_energy_per_atom")
    decide(store, "readmit", "the notebook says -1.0", quarantine_id=dhf, value=-1.0)
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nw,H2O,6.9,about -1.0\n")  # now ice: 'cr', as H2O(cr) is
    energies = "SELECT value FROM properties WHERE property = 'formation_energy_per_atom'"
    assert store.query(energies).values.tolist() == []
    assert to_redo(store) == [["readmit", "gaps:w", f"made on H2O(l), the record is now H2O: {NOT_SHOWN}"]]


@pytest.mark.parametrize("edited", ["v3,ZnO,-3.4,\nv4,GaN,3.4,", "v4,GaN,3.4,"])  # v3 rejected otherwise, or deleted
def test_a_readmitted_row_its_file_no_longer_gives_as_it_was_is_stale_and_its_record_no_longer_shown(
    store, tmp_path, edited
):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nv3,ZnO,-3.3,\nv4,GaN,3.4,\n")  # the whole row v3 quarantined
    decide(store, "readmit", "sign lost in typing", quarantine_id=quarantined(store, "v3"), value=3.3)
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nv3,ZnO,-3.3,\nv4,GaN,3.4,\n")  # as readmitted: in force
    assert store.query("SELECT record_id FROM materials ORDER BY 1").values.tolist() == [["gaps:v3"], ["gaps:v4"]]
    import_gaps(store, tmp_path, f"id,formula,gap,dHf\n{edited}\n")
    assert store.query("SELECT record_id FROM materials").values.tolist() == [["gaps:v4"]]
    assert store.query("SELECT record_id FROM properties").values.tolist() == [["gaps:v4"]]
    why = f"made on -3.3 eV as received, which a later read of the record no longer gives: {NOT_SHOWN}"
    assert review.stale_entries(store)[["action", "record_id", "why"]].values.tolist() == [["readmit", "gaps:v3", why]]


def with_ids_of_before_336488f(store):
    """Rewrite the quarantine rows of whole lab rows, and the runs' lists of them, as a matreg older than commit 336488f
    wrote them: named by their line ('line 3'), their ids hashing the source, that name and the row as received (not
    what the row means)."""
    old_ids = {}
    for path in store.data_dir.glob("c*/**/quarantine.parquet"):
        table = pq.read_table(path)
        rows = table.to_pylist()
        for row in rows:
            line = json.loads(row["raw"]).get("_line")
            if line is not None:
                row["item"] = f"line {line}"
                old_id = hashlib.sha1(f"{row['source']}\0{row['item']}\0{row['raw']}".encode()).hexdigest()
                old_ids[row["quarantine_id"]] = row["quarantine_id"] = old_id
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    for path in store.data_dir.glob("c*/**/fetch_runs.parquet"):
        table = pq.read_table(path)
        listed = [None if ids is None else [old_ids.get(i, i) for i in ids] for ids in table["quarantined"].to_pylist()]
        column = pa.array(listed, table.schema.field("quarantined").type)
        pq.write_table(table.set_column(table.schema.get_field_index("quarantined"), "quarantined", column), path)


def test_decisions_on_lab_rows_quarantined_under_the_ids_of_an_older_matreg_hold_when_the_file_comes_again(
    store, tmp_path
):
    rows = "id,formula,gap,dHf\ns1,ZnO,3.3,\nv3,GaN,-3.4,\nv4,CdS,about 2.4,\n"
    import_gaps(store, tmp_path, rows)  # v3 and v4 quarantined whole
    with_ids_of_before_336488f(store)
    decide(store, "readmit", "sign lost in typing", quarantine_id=quarantined(store, "line 3"), value=3.4)
    decide(store, "dismiss", "the notebook is lost", quarantine_id=quarantined(store, "line 4"))
    shown = "SELECT record_id, value FROM properties ORDER BY record_id"
    assert store.query(shown).values.tolist() == [["gaps:s1", 3.3], ["gaps:v3", 3.4]] and open_items(store) == []
    import_gaps(store, tmp_path, rows)  # the file as it was, read by this matreg
    assert store.query(shown).values.tolist() == [["gaps:s1", 3.3], ["gaps:v3", 3.4]]
    assert open_items(store) == [] and review.stale_entries(store).empty
    import_gaps(store, tmp_path, rows.replace("s1,", "s0,CdTe,1.5,\ns1,"))  # a row inserted: v3 and v4 move
    assert store.query(shown).values.tolist() == [["gaps:s0", 1.5], ["gaps:s1", 3.3], ["gaps:v3", 3.4]]
    assert open_items(store) == [] and review.stale_entries(store).empty
    import_gaps(store, tmp_path, rows.replace("-3.4", "-3.5").replace("about 2.4", "about 2.5"))  # both changed
    assert store.query(shown).values.tolist() == [["gaps:s1", 3.3]] and open_items(store) == ["v3", "v4"]


GAPS = "id,formula,gap,dHf\ns1,ZnO,3.3,\nv3,GaN,-3.4,\n"  # v3 quarantined whole
RENAMED = "  Eg: {property: band_gap, unit: eV}\n  dHf: {property: formation_energy_per_atom, unit: eV/atom}\n"


def shown_gaps(store):
    return store.query("SELECT record_id, value FROM properties ORDER BY record_id").values.tolist()


@pytest.mark.parametrize(
    ("older", "newer", "shown", "stale"),
    [
        (("dismiss", None), ("readmit", 3.4), [["gaps:s1", 3.3], ["gaps:v3", 3.4]], []),
        (("readmit", 3.4), ("readmit", 3.45), [["gaps:s1", 3.3], ["gaps:v3", 3.45]], []),
        # the older readmit, no longer in force since the renaming import, is answered by the dismissal of its row
        (("readmit", 3.4), ("dismiss", None), [["gaps:s1", 3.3]], []),
    ],
)
def test_of_a_lab_rows_older_matreg_id_and_its_id_of_today_the_one_decided_on_last_holds_when_the_file_comes_again(
    store, tmp_path, older, newer, shown, stale
):
    import_gaps(store, tmp_path, GAPS)
    with_ids_of_before_336488f(store)
    (action, value), reason = older, "checked against the notebook"
    decide(store, action, reason, quarantine_id=quarantined(store, "line 3"), **({"value": value} if value else {}))
    # its column renamed (mapping and file): the same row, read by another mapping, is an open row of today's id
    import_lab(store, tmp_path, "gaps", RENAMED, GAPS.replace(",gap,", ",Eg,"))
    assert open_items(store) == ["v3"]
    action, value = newer
    decide(store, action, reason, quarantine_id=quarantined(store, "v3"), **({"value": value} if value else {}))
    import_gaps(store, tmp_path, GAPS)  # the file as the older matreg read it
    assert shown_gaps(store) == shown and open_items(store) == []
    assert review.stale_entries(store)["action"].tolist() == stale


def test_a_readmit_of_a_row_a_later_dismissal_of_the_row_overrides_is_no_stale_entry_to_redo(store, tmp_path):
    import_gaps(store, tmp_path, GAPS)
    with_ids_of_before_336488f(store)
    readmit = decide(store, "readmit", "sign lost in typing", quarantine_id=quarantined(store, "line 3"), value=3.4)
    import_lab(store, tmp_path, "gaps", RENAMED, GAPS.replace(",gap,", ",Eg,"))  # v3, read so, is open again
    assert review.stale_entries(store)["entry_id"].tolist() == [readmit["entry_id"]]  # stale: decide again
    decide(store, "dismiss", "the notebook is lost", quarantine_id=quarantined(store, "v3"))
    assert review.stale_entries(store).empty and to_redo(store) == []  # the steward decided again: dismissed
    import_gaps(store, tmp_path, GAPS)  # the file as the older matreg read it: v3 keeps the id decided on last
    assert shown_gaps(store) == [["gaps:s1", 3.3]] and open_items(store) == []
    assert review.stale_entries(store).empty and to_redo(store) == []
    entries = history(store, "gaps:v3")
    assert entries["action"].tolist() == ["readmit", "dismiss"] and entries["stale"].isna().all()


def test_a_dismissal_of_another_value_of_the_record_leaves_a_stale_readmit_of_a_value_to_redo(store, tmp_path):
    columns = "  gap: {property: band_gap, unit: eV}\n  dHf: {property: formation_energy_per_atom, unit: eV/atom}\n"
    columns += "  rho: {property: density, unit: g/cm^3}\n"
    import_lab(store, tmp_path, "gaps", columns, "id,formula,gap,dHf,rho\ns1,ZnO,3.3,about -1.8,5.61\n")
    readmit = decide(
        store, "readmit", "notebook", quarantine_id=quarantined(store, "s1:formation_energy_per_atom"), value=-1.8
    )
    import_lab(store, tmp_path, "gaps", columns, "id,formula,gap,dHf,rho\ns1,ZnO,3.3,about -1.9,about 5.6\n")
    decide(store, "dismiss", "no density measured", quarantine_id=quarantined(store, "s1:density"))
    assert review.stale_entries(store)["entry_id"].tolist() == [readmit["entry_id"]]


def test_a_row_an_older_matreg_quarantined_does_not_keep_its_decision_when_read_by_another_mapping(store, tmp_path):
    import_gaps(store, tmp_path, GAPS)
    with_ids_of_before_336488f(store)
    decide(store, "readmit", "sign lost in typing", quarantine_id=quarantined(store, "line 3"), value=3.4)
    assert shown_gaps(store) == [["gaps:s1", 3.3], ["gaps:v3", 3.4]]
    in_mev = "  gap: {property: band_gap, unit: meV}\n  dHf: {property: formation_energy_per_atom, unit: eV/atom}\n"
    import_lab(store, tmp_path, "gaps", in_mev, GAPS)  # the same cells, read by another mapping: another row
    assert shown_gaps(store) == [["gaps:s1", 0.0033]] and open_items(store) == ["v3"]
    assert review.stale_entries(store)["action"].tolist() == ["readmit"]


def test_a_readmit_of_an_older_matreg_which_names_no_record_is_stale_only_once_its_value_is_not_shown(store, tmp_path):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nv3,ZnO,-3.3,\nv4,GaN,3.4,\n")  # the whole row v3 quarantined
    decide(store, "readmit", "sign lost in typing", quarantine_id=quarantined(store, "v3"), value=3.3)
    for path in store.data_dir.glob("c*/**/curation_log.parquet"):  # as logged before readmits named their record
        table = pq.read_table(path)
        for column in ("record_id", "formula", "original_value", "original_unit"):
            position = table.schema.get_field_index(column)
            table = table.set_column(position, table.schema.field(position), pa.nulls(len(table), table[column].type))
        pq.write_table(table, path)
    assert store.query("SELECT value FROM properties WHERE record_id = 'gaps:v3'").values.tolist() == [[3.3]]
    assert review.stale_entries(store).empty and to_redo(store) == []
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nv3,ZnO,-3.4,\nv4,GaN,3.4,\n")  # v3 rejected otherwise
    why = f"a later read of the record no longer gives the input it was made on as it was: {NOT_SHOWN}"
    assert review.stale_entries(store)[["action", "record_id", "why"]].values.tolist() == [["readmit", "gaps:v3", why]]


@pytest.mark.parametrize(("whole", "again"), [(False, False), (True, False), (False, True)])
def test_a_readmitted_value_keeps_the_method_and_citation_of_the_file_that_quarantined_it(
    store, tmp_path, whole, again
):
    base = "dataset: smith\nformula_column: formula\nid_column: id\n"
    (tmp_path / "gaps.yaml").write_text(
        base
        + "citation: Smith 2026\nlicense: CC-BY-4.0\nmethod: UV-Vis\ncolumns:\n  gap: {property: band_gap, unit: eV}\n"
        "  rho: {property: density, unit: g/cm^3}\n"
    )
    (tmp_path / "thermo.yaml").write_text(
        base + "citation: Jones 2026\nlicense: proprietary\nmethod: calorimetry\n"
        "columns:\n  dHf: {property: formation_energy_per_atom, unit: eV/atom}\n"
    )
    gaps = "id,formula,gap,rho\nS1,GaN,-3.4,\n" if whole else "id,formula,gap,rho\nS1,GaN,about 3.4,6.15\n"
    (tmp_path / "gaps.csv").write_text(gaps)  # the whole row quarantined, or the gap alone
    (tmp_path / "thermo.csv").write_text("id,formula,dHf\nS1,GaN,-0.6\n")
    run_ingest(LabConnector(tmp_path / "gaps.csv", load_mapping(tmp_path / "gaps.yaml")), store)
    thermo = LabConnector(tmp_path / "thermo.csv", load_mapping(tmp_path / "thermo.yaml"))
    if not whole:  # the other file writes the record between the quarantine and the readmit, or after it
        run_ingest(thermo, store)
    if again:  # the first file imported again unchanged: its quarantine row is this import's, which wrote no record
        run_ingest(LabConnector(tmp_path / "gaps.csv", load_mapping(tmp_path / "gaps.yaml")), store)
    decide(
        store,
        "readmit",
        "notebook: 3.4",
        quarantine_id=quarantined(store, "S1" if whole else "S1:band_gap"),
        value=3.4,
    )
    if whole:
        run_ingest(thermo, store)
    gap = store.query("SELECT method, value FROM properties WHERE property = 'band_gap'").values.tolist()
    assert gap == [["UV-Vis", 3.4]]
    dataset = Dataset(description="d", version="1.0.0", properties=["band_gap", "formation_energy_per_atom"])
    sql, params = dataset_query(dataset)
    exported = store.query(sql, params).set_index("property")[["method", "citation", "license"]]
    assert exported.loc["band_gap"].tolist() == ["UV-Vis", "Smith 2026", "CC-BY-4.0"]
    assert exported.loc["formation_energy_per_atom"].tolist() == ["calorimetry", "Jones 2026", "proprietary"]


@pytest.mark.parametrize(
    ("condition", "cell", "unrounded", "rounded"),
    [
        ("temperature_K", "23.7 degC", 23.7 + 273.15, 296.85),  # 296.84999999999997 K
        ("pressure_Pa", "2.3 kbar", 229999999.99999997, 2.3e8),
    ],
)
def test_a_decision_on_a_value_at_a_converted_condition_holds_whether_it_was_stored_rounded_or_not(
    store, tmp_path, condition, cell, unrounded, rounded
):
    # the number a lab file's condition converts to, as matreg stored it before it rounded them: what a decision
    # logged then names (the stored number)
    kind, (number, unit) = condition.split("_")[0], cell.split()
    (tmp_path / "lab.csv").write_text(f"id,formula,gap,C\ns1,GaN,9.9,{number}\ns2,ZnO,3.3,{number}\n")
    mapping = "dataset: gaps\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n  gap: {property: band_gap"
    (tmp_path / "m.yaml").write_text(mapping + f", unit: eV, {condition}: {unrounded!r}}}\n", encoding="utf-8")
    run_ingest(LabConnector(tmp_path / "lab.csv", load_mapping(tmp_path / "m.yaml")), store)
    record_decision(store, "reject", "A. Steward", "typo", record_id="gaps:s1", property="band_gap")
    (tmp_path / "m.yaml").write_text(mapping + f", unit: eV, {kind}_field: C, {kind}_unit: {unit}}}\n")
    run_ingest(LabConnector(tmp_path / "lab.csv", load_mapping(tmp_path / "m.yaml")), store)  # now rounded
    assert store.query(f"SELECT DISTINCT {condition} FROM properties").values.tolist() == [[rounded]]
    sql, params = dataset_query(Dataset(description="gaps", version="1.0.0", properties=["band_gap"]))
    rows = apply_curation(store.query(sql, params), curation_log(store))
    assert rows["record_id"].tolist() == ["gaps:s2"] and review.stale_entries(store).empty  # s1's stays rejected
    decide(store, "flag", record_id="gaps:s2", property="band_gap", **{condition: unrounded})  # named either way
    assert apply_curation(store.query(sql, params), curation_log(store))["flags"].notna().tolist() == [True]


def import_vacuum(store, tmp_path, pressures: list[float]):
    """Import the volume of one MgO sample (record 'vac:S1') measured at each of `pressures` (Pa): 9.35, 9.30, ..."""
    columns = "".join(
        f"  V{n}: {{property: volume_per_atom, unit: angstrom^3/atom, pressure_Pa: {pressure!r}}}\n"
        for n, pressure in enumerate(pressures)
    )
    cells = ",".join(f"{9.35 - 0.05 * n:.2f}" for n in range(len(pressures)))
    header = ",".join(f"V{n}" for n in range(len(pressures)))
    return import_lab(store, tmp_path, "vac", columns, f"id,formula,{header}\nS1,MgO,{cells}\n")


def test_a_decision_names_a_value_in_vacuum_by_its_own_pressure_not_that_rounded_to_0_pa(store, tmp_path):
    import_vacuum(store, tmp_path, [1e-8, 3e-8])
    entry = decide(store, "reject", record_id="vac:S1", property="volume_per_atom", pressure_Pa=1e-8)
    assert (entry["pressure_Pa"], entry["original_value"]) == (1e-8, 9.35)
    with pytest.raises(CurationError, match=r"^no stored volume_per_atom value \(pressure_Pa=0.0\) of 'vac:S1'$"):
        decide(store, "reject", record_id="vac:S1", property="volume_per_atom", pressure_Pa=0.0)


def test_a_decision_on_a_value_in_vacuum_applies_to_it_alone_once_another_pressure_is_measured(store, tmp_path):
    import_vacuum(store, tmp_path, [1e-8])
    decide(store, "flag", "drifting gauge", record_id="vac:S1", property="volume_per_atom", pressure_Pa=1e-8)
    import_vacuum(store, tmp_path, [1e-8, 3e-8])  # a value at 3e-8 Pa beside it: another value, not the one flagged
    assert review.stale_entries(store).empty and unmatched_decisions(store, ["vac:S1"]).empty
    sql, params = dataset_query(Dataset(description="vac", version="1.0.0", properties=["volume_per_atom"]))
    rows = apply_curation(store.query(sql, params), curation_log(store)).sort_values("pressure_Pa")
    assert rows[["pressure_Pa", "value"]].values.tolist() == [[1e-8, 9.35], [3e-8, 9.3]]
    assert rows["flags"].fillna("").tolist() == ["A. Steward: drifting gauge", ""]


ALL_GAPS = Dataset(description="gaps", version="1.0.0", properties=["band_gap", "formation_energy_per_atom"])


def curated(store, log=None):
    """(formula, value, raw value, reviewed) of each value the lab dataset 'gaps' stores, as curated, by record and
    property."""
    sql, params = dataset_query(ALL_GAPS)
    rows = apply_curation(store.query(sql, params), curation_log(store) if log is None else log)
    return {(r.record_id, r.property): (r.formula, r.value, r.raw_value, bool(r.reviewed)) for r in rows.itertuples()}


def stale(store, log=None):
    """(action, record, why) of each decision `stale_decisions` lists, oldest first."""
    sql, params = dataset_query(ALL_GAPS)
    found = review.stale_decisions(store.query(sql, params), curation_log(store) if log is None else log)
    return found[["action", "record_id", "why"]].values.tolist()


def test_a_decision_on_a_lab_id_the_file_gives_again_to_another_material_is_stale_and_not_applied(store, tmp_path):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nK-007,Fe2O3,2.0,\nK-008,ZnO,3.3,\n")
    decide(store, "reject", "contaminated", record_id="gaps:K-008")
    decide(store, "correct", "typo", record_id="gaps:K-007", property="band_gap", value=2.2)
    assert import_gaps(store, tmp_path, "id,formula,gap,dHf\nK-007,Fe2O3,2.0,\n").n_withdrawn == 1
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nK-007,MgO,7.7,\nK-008,ZnS,3.68,\n")  # K-008 reused, K-007 edited
    assert curated(store) == {
        ("gaps:K-007", "band_gap"): ("MgO", 7.7, 7.7, False),
        ("gaps:K-008", "band_gap"): ("ZnS", 3.68, 3.68, False),
    }
    assert stale(store) == [
        ["reject", "gaps:K-008", "made on ZnO, the record is now ZnS: not applied"],
        ["correct", "gaps:K-007", "made on Fe2O3, the record is now MgO: not applied"],
    ]
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nK-007,Fe2O3,2.0,\nK-008,ZnO,3.3,\n")  # as decided on: in force
    assert set(curated(store)) == {("gaps:K-007", "band_gap")} and stale(store) == []
    assert curated(store)[("gaps:K-007", "band_gap")] == ("Fe2O3", 2.2, 2.0, True)


def test_a_correction_or_accept_of_a_value_measured_again_is_stale_and_the_new_value_shows_unreviewed(store, tmp_path):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nK-002,GaN,3.4,-1.2\nK-003,ZnO,3.3,\n")
    fix = decide(store, "correct", "typo", record_id="gaps:K-002", property="band_gap", value=3.39)
    decide(store, "accept", "checked", record_id="gaps:K-003", property="band_gap")
    decide(store, "accept", "checked", record_id="gaps:K-002", property="formation_energy_per_atom")
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nK-002,GaN,3.45,-1.2\nK-003,ZnO,3.31,\n")  # re-measured
    assert curated(store) == {
        ("gaps:K-002", "band_gap"): ("GaN", 3.45, 3.45, False),
        ("gaps:K-002", "formation_energy_per_atom"): ("GaN", -1.2, -1.2, True),  # as decided on: in force
        ("gaps:K-003", "band_gap"): ("ZnO", 3.31, 3.31, False),
    }
    assert stale(store) == [
        ["correct", "gaps:K-002", "made on 3.4 eV as received, the value is now 3.45 eV: not applied"],
        ["accept", "gaps:K-003", "made on 3.3 eV as received, the value is now 3.31 eV: not applied"],
    ]
    assert (fix["formula"], fix["original_value"], fix["original_unit"]) == ("GaN", 3.4, "eV")  # what it was made on
    decide(store, "correct", "typo, again", record_id="gaps:K-002", property="band_gap", value=3.44)  # decided again
    assert curated(store)[("gaps:K-002", "band_gap")] == ("GaN", 3.44, 3.45, True)
    assert [action for action, *_ in stale(store)] == ["accept"]


def test_an_accept_of_a_record_does_not_review_its_values_measured_since(store, tmp_path):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nK-002,GaN,3.4,-1.2\n")
    decide(store, "accept", "checked", record_id="gaps:K-002")
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nK-002,GaN,3.45,-1.2\n")  # the gap re-measured
    assert curated(store) == {
        ("gaps:K-002", "band_gap"): ("GaN", 3.45, 3.45, False),
        ("gaps:K-002", "formation_energy_per_atom"): ("GaN", -1.2, -1.2, True),
    }
    why = "the band_gap value is new or changed since (now 3.45 eV as received): not reviewed by it"
    assert stale(store) == [["accept", "gaps:K-002", why]]


def test_a_decision_on_a_readmitted_value_received_as_no_number_holds_until_the_source_gives_one(store, tmp_path):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nS1,ZnO,about 3,-1.8\n")
    decide(store, "readmit", "notebook says 3.3", quarantine_id=quarantined(store, "S1:band_gap"), value=3.3)
    accept = decide(store, "accept", "checked", record_id="gaps:S1")
    fix = decide(store, "correct", "notebook misread", record_id="gaps:S1", property="band_gap", value=3.1)
    assert (fix["original_value"], fix["original_unit"]) == (None, "eV")
    assert '"original_value": null, "original_unit": "eV"' in accept["values_seen"]
    formula, value, raw_value, reviewed = curated(store)[("gaps:S1", "band_gap")]
    assert (formula, value, pd.isna(raw_value), reviewed) == ("ZnO", 3.1, True, True) and stale(store) == []
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nS1,ZnO,3.2,-1.8\n")  # the file now gives a number
    unseen = "the band_gap value is new or changed since (now 3.2 eV as received): not reviewed by it"
    assert stale(store) == [
        ["accept", "gaps:S1", unseen],
        ["correct", "gaps:S1", "made on no number (eV) as received, the value is now 3.2 eV: not applied"],
    ]


def test_decisions_of_older_versions_which_do_not_say_what_they_were_made_on_apply_as_before(store, tmp_path):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nK-002,GaN,3.4,-1.2\n")
    decide(store, "correct", "typo", record_id="gaps:K-002", property="band_gap", value=3.39)
    decide(store, "accept", "checked", record_id="gaps:K-002")
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nK-002,AlN,3.45,-1.3\n")
    made_on = ["formula", "phase", "original_value", "original_unit", "uncertainty", "values_seen"]
    older = curation_log(store).assign(**dict.fromkeys(made_on))
    assert curated(store, older) == {
        ("gaps:K-002", "band_gap"): ("AlN", 3.39, 3.45, True),
        ("gaps:K-002", "formation_energy_per_atom"): ("AlN", -1.3, -1.3, True),
    }
    assert stale(store, older) == []


DENSITY = "  rho: {property: density, unit: g/cm^3}\n"


def reviewed(store, properties: list[str]) -> dict[tuple, tuple]:
    """(value, reviewed) of each stored value of `properties`, as curated, by record and property."""
    sql, params = dataset_query(Dataset(description="d", version="1.0.0", properties=properties))
    rows = apply_curation(store.query(sql, params), curation_log(store))
    return {(row.record_id, row.property): (row.value, bool(row.reviewed)) for row in rows.itertuples()}


def test_a_decision_is_stale_once_its_file_gives_its_record_in_another_state_or_as_another_molecule(store, tmp_path):
    # a file correcting its own H2O(l) to H2O(g) kept the liquid's decisions: they kept no phase, and the formula
    # reduced (O2 for O3) was the same; ice stating its state or not is one material
    # (a record stating no state was shown 'made on N2(cr)': as the file wrote it)
    rows = "id,formula,rho\nw,H2O(l),0.997\no,O2(g),0.00143\ni,H2O,0.917\nn,N2,0.808\nk,KCl(l),1.5\n"
    import_lab(store, tmp_path, "lab", DENSITY, rows)
    decide(store, "reject", "contaminated", record_id="lab:w")
    decide(store, "correct", "typo", record_id="lab:o", property="density", value=0.00133)
    decide(store, "accept", "checked", record_id="lab:i")
    decide(store, "flag", "check", record_id="lab:n")
    decide(store, "flag", "check", record_id="lab:k")
    entries = curation_log(store)[["record_id", "formula", "formula_original", "phase"]].values.tolist()
    assert entries[:3] == [["lab:w", "H2O", "H2O", "l"], ["lab:o", "O2", "O2", "g"], ["lab:i", "H2O", "H2O", "cr"]]
    rows = "id,formula,rho\nw,H2O(g),0.997\no,O3(g),0.00143\ni,H2O(cr),0.917\nn,N2(l),0.808\nk,KCl(cr),1.98\n"
    import_lab(store, tmp_path, "lab", DENSITY, rows)
    assert reviewed(store, ["density"]) == {
        ("lab:i", "density"): (0.917, True),
        ("lab:k", "density"): (1.98, False),
        ("lab:n", "density"): (0.808, False),
        ("lab:o", "density"): (0.00143, False),
        ("lab:w", "density"): (0.997, False),
    }
    assert to_redo(store) == [
        ["reject", "lab:w", "made on H2O(l), the record is now H2O(g): not applied"],
        ["correct", "lab:o", "made on O2(g), the record is now O3(g): not applied"],
        ["flag", "lab:n", "made on N2, the record is now N2(l): not applied"],
        ["flag", "lab:k", "made on KCl(l), the record is now KCl(cr): not applied"],
    ]


UNCERTAIN_GAP = "  gap: {property: band_gap, unit: eV, uncertainty_field: dgap}\n"


def test_a_decision_on_a_value_is_stale_once_its_uncertainty_alone_changes(store, tmp_path):
    # (one in a hundred million apart, shown as 0.05 both: in as many digits as values)
    rows = "id,formula,gap,dgap\nz,ZnO,1.10,0.02\ns,Si,1.12,\nc,CdS,2.42,0.01\ng,GaAs,1.42,0.0500000001\n"
    import_lab(store, tmp_path, "unc", UNCERTAIN_GAP, rows)
    for record in ("unc:z", "unc:s", "unc:c", "unc:g"):
        decide(store, "accept", "checked", record_id=record, property="band_gap")
    changed = rows.replace("0.02", "0.5").replace("1.12,", "1.12,0.1").replace("0.0500000001", "0.05")
    import_lab(store, tmp_path, "unc", UNCERTAIN_GAP, changed)
    assert reviewed(store, ["band_gap"]) == {
        ("unc:c", "band_gap"): (2.42, True),  # as decided on
        ("unc:g", "band_gap"): (1.42, False),
        ("unc:s", "band_gap"): (1.12, False),
        ("unc:z", "band_gap"): (1.1, False),
    }
    assert to_redo(store) == [
        ["accept", "unc:z", "made on 1.1 eV ± 0.02 eV as received, the value is now 1.1 eV ± 0.5 eV: not applied"],
        ["accept", "unc:s", "made on 1.12 eV as received, the value is now 1.12 eV ± 0.1 eV: not applied"],
        [
            "accept",
            "unc:g",
            "made on 1.42 eV ± 0.0500000001 eV as received, the value is now 1.42 eV ± 0.05 eV: not applied",
        ],
    ]
    older = curation_log(store).assign(phase=None, uncertainty=None)  # decisions of a matreg that kept neither
    sql, params = dataset_query(Dataset(description="d", version="1.0.0", properties=["band_gap"]))
    assert review.stale_decisions(store.query(sql, params), older).empty


def test_an_accept_of_a_record_does_not_review_its_value_stated_with_another_uncertainty_since(store, tmp_path):
    import_lab(store, tmp_path, "unc", UNCERTAIN_GAP, "id,formula,gap,dgap\nz,ZnO,1.10,0.02\n")
    accept = decide(store, "accept", "checked", record_id="unc:z")
    assert json.loads(accept["values_seen"])[0]["uncertainty"] == pytest.approx(0.02)
    import_lab(store, tmp_path, "unc", UNCERTAIN_GAP, "id,formula,gap,dgap\nz,ZnO,1.10,0.5\n")
    assert reviewed(store, ["band_gap"]) == {("unc:z", "band_gap"): (1.1, False)}
    unseen = "the band_gap value is new or changed since (now 1.1 eV ± 0.5 eV as received): not reviewed by it"
    assert to_redo(store) == [["accept", "unc:z", unseen]]
    seen = [
        {key: item for key, item in value.items() if key != "uncertainty"}
        for value in json.loads(accept["values_seen"])
    ]
    older = curation_log(store).assign(values_seen=json.dumps(seen))  # an accept that listed no uncertainties
    sql, params = dataset_query(Dataset(description="d", version="1.0.0", properties=["band_gap"]))
    assert review.stale_decisions(store.query(sql, params), older).empty


def test_a_stale_accept_of_a_record_leaves_no_decision_on_the_value_not_the_reject_it_superseded(store, tmp_path):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nS2,ZnO,3.3,-1.8\n")
    decide(store, "reject", "looked wrong", record_id="gaps:S2")
    accept = decide(store, "accept", "checked after all", record_id="gaps:S2")
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nS2,ZnO,3.3,-1.85\n")  # dHf re-measured
    assert curated(store) == {
        ("gaps:S2", "band_gap"): ("ZnO", 3.3, 3.3, True),  # reviewed by the accept, which superseded the reject
        ("gaps:S2", "formation_energy_per_atom"): ("ZnO", -1.85, -1.85, False),  # shown raw, unreviewed
    }
    why = "the formation_energy_per_atom value is new or changed since (now -1.85 eV/atom as received): not reviewed"
    assert stale(store) == [["accept", "gaps:S2", f"{why} by it"]]
    decide(store, "accept", "re-measured value checked", record_id="gaps:S2", property="formation_energy_per_atom")
    assert curated(store)[("gaps:S2", "formation_energy_per_atom")] == ("ZnO", -1.85, -1.85, True)
    assert stale(store) == []  # decided again on the value: the record's accept is no more to redo
    assert curation_log(store)["entry_id"].iloc[1] == accept["entry_id"]


def test_a_stale_decision_on_a_value_leaves_none_in_force_not_an_older_one_made_on_the_value_as_it_is(store, tmp_path):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nS1,GaN,9.9,\n")
    decide(store, "reject", "impossible", record_id="gaps:S1", property="band_gap")
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nS1,GaN,3.4,\n")
    decide(store, "accept", "fixed", record_id="gaps:S1", property="band_gap")
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nS1,GaN,9.9,\n")  # the old value again: the accept is stale
    assert curated(store) == {("gaps:S1", "band_gap"): ("GaN", 9.9, 9.9, False)}
    assert [action for action, *_ in stale(store)] == ["accept"]


@pytest.mark.parametrize("later", ["reject", "flag"])
def test_a_stale_flag_or_reject_after_a_correction_leaves_the_correction_out_too(store, tmp_path, later):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nS1,GaN,3.44,\n")
    decide(store, "correct", "typo", record_id="gaps:S1", property="band_gap", value=3.37, unit="eV")
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nS1,GaN,3.30,\n")
    decide(store, later, "odd", record_id="gaps:S1", property="band_gap")
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nS1,GaN,3.44,\n")  # the flag or reject is stale
    assert curated(store) == {("gaps:S1", "band_gap"): ("GaN", 3.44, 3.44, False)}  # not the correction it followed


def test_only_the_latest_decision_on_a_value_whose_key_changed_is_listed_to_redo(store, tmp_path):
    mapping = (
        "dataset: gaps\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
        "  gap: {property: band_gap, unit: eV, temperature_field: T}\n"
    )
    data = tmp_path / "t.csv"
    (tmp_path / "t.yaml").write_text(mapping, encoding="utf-8")
    data.write_text("id,formula,gap,T\nS1,GaN,3.44,300\n", encoding="utf-8")
    run_ingest(LabConnector(data, load_mapping(tmp_path / "t.yaml")), store)
    assert review.unmatched_decisions(store).empty  # (an empty log)
    decide(store, "correct", "typo", record_id="gaps:S1", property="band_gap", value=3.37, unit="eV")
    last = decide(store, "reject", "wrong sample", record_id="gaps:S1", property="band_gap")
    data.write_text("id,formula,gap,T\nS1,GaN,3.44,295\n", encoding="utf-8")  # the key changed: 295 K
    run_ingest(LabConnector(data, load_mapping(tmp_path / "t.yaml")), store)
    assert review.unmatched_decisions(store)["entry_id"].tolist() == [last["entry_id"]]


def import_gap_in(store, tmp_path, unit: str, cell: str):
    """Import lab row S1 (GaN) with band gap `cell` in `unit` and density 6.15 g/cm^3 as the dataset 'gaps'."""
    (tmp_path / "m.yaml").write_text(
        f"dataset: gaps\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n  gap: {{property: band_gap, "
        f"unit: {unit}}}\n  dHf: {{property: formation_energy_per_atom, unit: eV/atom}}\n",
        encoding="utf-8",
    )
    (tmp_path / "lab.csv").write_text(f"id,formula,gap,dHf\nS1,GaN,{cell},-1.2\n", encoding="utf-8")
    return run_ingest(LabConnector(tmp_path / "lab.csv", load_mapping(tmp_path / "m.yaml")), store)


@pytest.mark.parametrize("action", ["value", "record"])
def test_a_decision_holds_when_its_value_comes_again_as_the_same_quantity_in_another_unit_or_spelling(
    store, tmp_path, action
):
    import_gap_in(store, tmp_path, "eV", "3.2")
    if action == "value":
        decide(store, "reject", "impossible for GaN", record_id="gaps:S1", property="band_gap")
    else:
        decide(store, "accept", "checked", record_id="gaps:S1")
    decided = [] if action == "value" else [True]  # rejected: not shown; accepted: reviewed
    for unit, cell in (("electronvolt", "3.2"), ("meV", "3200"), ("eV", "3.2000000000001")):
        import_gap_in(store, tmp_path, unit, cell)
        assert [row[3] for (_, prop), row in curated(store).items() if prop == "band_gap"] == decided, unit
        assert stale(store) == [], unit
    import_gap_in(store, tmp_path, "meV", "3210")  # another quantity: stale
    assert curated(store)[("gaps:S1", "band_gap")] == ("GaN", 3.21, 3.21, False)
    assert [action for action, *_ in stale(store)] == ["reject" if action == "value" else "accept"]


THERMO = Dataset(description="thermo", version="1.0.0", properties=["formation_energy_per_atom"])


def import_energy(store, tmp_path, formula: str, cell: str, unit: str):
    """Import lab row x (of `formula`) with its formation energy `cell` in `unit` (a unit column) as the dataset
    'thermo'."""
    columns = "  dHf: {property: formation_energy_per_atom, unit_field: u}\n"
    return import_lab(store, tmp_path, "thermo", columns, f"id,formula,dHf,u\nx,{formula},{cell},{unit}\n")


def energies(store):
    """(value, raw value, reviewed) of the formation energy of the dataset 'thermo', as curated."""
    sql, params = dataset_query(THERMO)
    rows = apply_curation(store.query(sql, params), curation_log(store))
    return [(row.value, row.raw_value, bool(row.reviewed)) for row in rows.itertuples()]


@pytest.mark.parametrize(
    ("formula", "received", "restated"),
    [
        ("H2O", ("-285.83", "kJ/mol"), ("-0.987473065283139", "eV/atom")),  # the value stored, bit for bit
        ("NaCl", ("-4.26", "eV/fu"), ("-2.13", "eV/atom")),
        ("NaCl", ("-2.13", "eV/atom"), ("-411.0275148453006", "kJ/mol")),
        ("Na2Cl2", ("-8.52", "eV/fu"), ("-2.13", "eV/atom")),  # per formula unit as written, not reduced (NaCl)
        ("H2O", ("-285.83", "kJ/mol"), ("-15865.975993712003", "J/g")),  # per gram: by H2O's 18.01528 g/mol
    ],
)
@pytest.mark.parametrize("action", ["correct", "accept"])
def test_a_decision_holds_when_its_value_comes_again_as_the_same_quantity_per_atom_or_per_formula_unit(
    store, tmp_path, formula, received, restated, action
):
    import_energy(store, tmp_path, formula, *received)
    stored = single_value(store.query("SELECT value FROM properties"))
    if action == "correct":
        decide(store, "correct", "typo", record_id="thermo:x", property="formation_energy_per_atom", value=-0.99)
    else:
        decide(store, "accept", "checked", record_id="thermo:x")
    import_energy(store, tmp_path, formula, *restated)
    curated_value = -0.99 if action == "correct" else pytest.approx(stored)
    assert energies(store) == [(curated_value, pytest.approx(stored), True)]
    assert to_redo(store) == []


MADE_ON_NACL = "made on -411.2 kJ/mol of NaCl as received, the value is now -411.2 kJ/mol of Na2Cl2: not applied"


@pytest.mark.parametrize(
    ("action", "why"),
    [
        ("correct", MADE_ON_NACL),
        (
            "accept",
            "the formation_energy_per_atom value is new or changed since (now -411.2 kJ/mol of Na2Cl2 as received): "
            "not reviewed by it",
        ),
    ],
)
def test_a_decision_on_a_value_received_per_mole_tells_the_formula_unit_as_written_nacl_from_na2cl2(
    store, tmp_path, action, why
):
    import_energy(store, tmp_path, "NaCl", "-411.2", "kJ/mol")
    stored = single_value(store.query("SELECT value FROM properties"))
    if action == "correct":
        decide(store, "correct", "typo", record_id="thermo:x", property="formation_energy_per_atom", value=-2.2)
    else:
        decide(store, "accept", "checked", record_id="thermo:x")
    curated_value = -2.2 if action == "correct" else pytest.approx(stored)
    for restated in (("-822.4", "kJ/mol"), ("-205.6", "kJ/mol-atom")):  # the same quantity, per Na2Cl2 or per atom
        import_energy(store, tmp_path, "Na2Cl2", *restated)
        assert energies(store) == [(curated_value, pytest.approx(stored), True)], restated
        assert to_redo(store) == [], restated
    import_energy(store, tmp_path, "Na2Cl2", "-411.2", "kJ/mol")  # the same number per mole of Na2Cl2: half as much
    halved = pytest.approx(stored / 2)
    assert energies(store) == [(halved, halved, False)]
    assert to_redo(store) == [[action, "thermo:x", why]]
    import_energy(store, tmp_path, "NaCl", "-411.2", "kJ/mol")  # as decided on: in force again
    assert energies(store) == [(curated_value, pytest.approx(stored), True)] and to_redo(store) == []


def as_logged_by_the_previous_matreg(store) -> None:
    """Make the store's curation log as the matreg before `curation_log.formula_original` (and `phase`) wrote it."""
    for path in store.data_dir.glob("c*/**/curation_log.parquet"):
        pq.write_table(pq.read_table(path).drop_columns(["formula_original", "phase"]), path)
    (store.root / ".views.sha256").write_text("written by an older matreg", encoding="utf-8")


def test_a_decision_the_previous_matreg_logged_without_the_formula_as_written_compares_values_as_before(
    store, tmp_path
):
    import_energy(store, tmp_path, "NaCl", "-411.2", "kJ/mol")
    decide(store, "correct", "typo", record_id="thermo:x", property="formation_energy_per_atom", value=-2.2)
    as_logged_by_the_previous_matreg(store)
    assert curation_log(store)["formula_original"].isna().all()
    import_energy(store, tmp_path, "Na2Cl2", "-411.2", "kJ/mol")  # the log's reduced formula does not tell it apart
    assert [(value, reviewed) for value, _, reviewed in energies(store)] == [(-2.2, True)] and to_redo(store) == []
    import_energy(store, tmp_path, "Na2Cl2", "-822.4", "kJ/mol")  # compared per mole of the record's formula now
    assert [reviewed for *_, reviewed in energies(store)] == [False]
    why = "made on -411.2 kJ/mol as received, the value is now -822.4 kJ/mol: not applied"
    assert to_redo(store) == [["correct", "thermo:x", why]]


@pytest.mark.parametrize(
    ("restated", "now"),
    [
        (("-280", "kJ/mol"), -0.967332),
        (("-0.95", "eV/atom"), -0.95),
        (("-0.98747306", "eV/atom"), -0.98747306),  # rounded when restated: every digit shown says why it is stale
    ],
)
def test_a_correction_is_stale_once_its_value_comes_again_changed_in_its_unit_or_another(
    store, tmp_path, restated, now
):
    import_energy(store, tmp_path, "H2O", "-285.83", "kJ/mol")
    decide(store, "correct", "typo", record_id="thermo:x", property="formation_energy_per_atom", value=-0.99)
    import_energy(store, tmp_path, "H2O", *restated)
    assert energies(store) == [(pytest.approx(now, abs=1e-6), pytest.approx(now, abs=1e-6), False)]
    now_shown = f"{float(restated[0])} {restated[1]}"  # as `sql` shows the number: -280.0
    why = f"made on -285.83 kJ/mol as received, the value is now {now_shown}: not applied"
    assert to_redo(store) == [["correct", "thermo:x", why]]


def test_a_readmit_names_a_method_by_the_name_the_store_shows_and_a_blank_cell_is_no_value_to_correct(store, tmp_path):
    (tmp_path / "m.yaml").write_text(
        "dataset: dft\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
        "  gap: {property: band_gap, unit: eV, method: GGA+U}\n"
        "  gap_hse: {property: band_gap, unit: eV, method: HSE06}\n",
        encoding="utf-8",
    )
    rows = "id,formula,gap,gap_hse\nS1,NiO,bad,\nS2,CoO,,\nS3,MnO,bad,worse\n"  # each row quarantined whole
    (tmp_path / "lab.csv").write_text(rows, encoding="utf-8")
    run_ingest(LabConnector(tmp_path / "lab.csv", load_mapping(tmp_path / "m.yaml")), store)
    s1, s2, s3 = (quarantined_row(store, row) for row in ("S1", "S2", "S3"))
    decide(store, "readmit", "notebook: 2.4", quarantine_id=s1, property="band_gap", method="PBE+U", value=2.4)
    values = store.query("SELECT record_id, method, value FROM properties").values.tolist()
    assert values == [["dft:S1", "PBE+U", 2.4]]  # GGA+U, in the vocabulary's name
    blank = "the quarantined row gives no band_gap value \\(no such column, or its cell is blank\\)"
    with pytest.raises(CurationError, match=blank):
        decide(store, "readmit", quarantine_id=s2, property="band_gap", value=2.4)
    with pytest.raises(CurationError, match="the quarantined row gives 2 band_gap values; name the method"):
        decide(store, "readmit", quarantine_id=s3, property="band_gap", value=2.4)


def test_a_row_of_a_method_column_is_readmitted_by_its_rows_method_and_refused_while_that_method_clashes(
    store, tmp_path
):
    columns = (
        "  gap: {property: band_gap, unit: eV, method_field: functional}\n"
        "  gap_hse: {property: band_gap, unit: eV, method: HSE06}\n"
    )
    csv = "id,formula,gap,functional,gap_hse\nS1,NiO,about 2.4,GGA+U,\nS2,CoO,2.5,hse,2.6\n"
    import_lab(store, tmp_path, "dft", columns, csv)  # each row quarantined whole
    s1, s2 = (quarantined_row(store, row) for row in ("S1", "S2"))
    with pytest.raises(CurationError, match="the quarantined row gives no band_gap HSE06 value"):
        decide(store, "readmit", quarantine_id=s1, property="band_gap", method="HSE06", value=2.4)
    decide(store, "readmit", "notebook: 2.4", quarantine_id=s1, property="band_gap", method="PBE+U", value=2.4)
    values = store.query("SELECT record_id, method, value FROM properties").values.tolist()
    assert values == [["dft:S1", "PBE+U", 2.4]]  # the row's GGA+U, in the vocabulary's name
    clash = "is still invalid: columns gap and gap_hse both give band_gap by HSE06 at the same conditions"
    with pytest.raises(CurationError, match=clash):
        decide(store, "readmit", quarantine_id=s2)


def test_a_decision_holds_when_the_file_writes_its_records_formula_otherwise(store, tmp_path):
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nK-009,Fe0.95O,2.4,\n")
    decide(store, "correct", "typo", record_id="gaps:K-009", property="band_gap", value=2.3)
    import_gaps(store, tmp_path, "id,formula,gap,dHf\nK-009,Fe19O20,2.4,\n")  # the same composition, written otherwise
    assert curated(store) == {("gaps:K-009", "band_gap"): ("Fe19O20", 2.3, 2.4, True)}
    assert stale(store) == []


@pytest.mark.parametrize(
    ("written", "received", "rewritten", "restated"),
    [
        ("Fe0.95O", -250.0, "Fe19O20", -250.0),  # another number per atom
        ("NaCl", -411.2, "Na2Cl2", -822.4),  # the same per atom: the correction, per mole of NaCl, is not per Na2Cl2
    ],
)
def test_a_decision_on_a_molar_value_is_stale_once_the_file_writes_its_formula_unit_otherwise(
    store, tmp_path, written, received, rewritten, restated
):
    columns = "  dHf: {property: enthalpy_of_formation, unit: kJ/mol}\n"
    import_lab(store, tmp_path, "thermo", columns, f"id,formula,dHf\nx,{written},{received}\n")
    decide(store, "correct", "typo", record_id="thermo:x", property="enthalpy_of_formation", value=-272.0)
    import_lab(store, tmp_path, "thermo", columns, f"id,formula,dHf\nx,{rewritten},{restated}\n")  # per its mole
    thermo = Dataset(description="t", version="1.0.0", properties=["enthalpy_of_formation"])
    sql, params = dataset_query(thermo)
    rows = apply_curation(store.query(sql, params), curation_log(store))
    assert rows[["formula_original", "value", "reviewed"]].values.tolist() == [[rewritten, restated, False]]
    stale_now = review.stale_decisions(store.query(sql, params), curation_log(store))
    why = f"made on {written}, the record's enthalpy_of_formation is now per mole of {rewritten}: not applied"
    assert stale_now["why"].tolist() == [why]


def test_a_record_decision_holds_across_a_respelling_whatever_its_values_units(store, tmp_path):
    columns = "  gap: {property: band_gap, unit: eV}\n  dHf: {property: enthalpy_of_formation, unit: kJ/mol}\n"
    import_lab(store, tmp_path, "thermo", columns, "id,formula,gap,dHf\nx,Fe0.95O,2.4,-250\ny,ZnO,3.3,-350\n")
    decide(store, "reject", "contaminated", record_id="thermo:x")
    import_lab(store, tmp_path, "thermo", columns, "id,formula,gap,dHf\nx,Fe19O20,2.4,-250\ny,ZnO,3.3,-350\n")
    thermo = Dataset(description="t", version="1.0.0", properties=["band_gap", "enthalpy_of_formation"])
    sql, params = dataset_query(thermo)
    rows = apply_curation(store.query(sql, params), curation_log(store))
    assert sorted(rows["record_id"].unique()) == ["thermo:y"]  # both of x's values stay rejected
    assert review.stale_decisions(store.query(sql, params), curation_log(store)).empty


def test_a_decision_on_a_value_received_per_mole_is_stale_once_its_formula_unit_is_written_otherwise(store, tmp_path):
    columns = "  dHf: {property: formation_energy_per_atom, unit: kJ/mol}\n"  # stored per atom, by the formula
    import_lab(store, tmp_path, "thermo", columns, "id,formula,dHf\nx,Fe0.95O,-250\n")
    decide(store, "correct", "typo", record_id="thermo:x", property="formation_energy_per_atom", value=-1.3)
    import_lab(store, tmp_path, "thermo", columns, "id,formula,dHf\nx,Fe19O20,-250\n")  # -250 kJ per mol of Fe19O20
    thermo = Dataset(description="t", version="1.0.0", properties=["formation_energy_per_atom"])
    sql, params = dataset_query(thermo)
    rows = apply_curation(store.query(sql, params), curation_log(store))
    assert rows["reviewed"].tolist() == [False] and rows["value"].round(4).tolist() == [-0.0664]


def test_a_readmit_made_stale_by_a_respelled_formula_is_made_again_on_the_same_row(store, tmp_path):
    columns = "  gap: {property: band_gap, unit: eV}\n  K: {property: bulk_modulus, unit: GPa}\n"
    import_lab(store, tmp_path, "mods", columns, "id,formula,gap,K\nx,Fe0.95O,2.4,-150\n")  # K's sign lost
    row = quarantined(store, "x:bulk_modulus")
    decide(store, "readmit", "sign lost in typing", quarantine_id=row, value=150.0)
    import_lab(store, tmp_path, "mods", columns, "id,formula,gap,K\nx,Fe19O20,2.4,-150\n")  # a readmit compares
    modulus = "SELECT value FROM properties WHERE property = 'bulk_modulus'"  # formulas as written: stale
    assert store.query(modulus).empty and len(review.stale_readmits(store)) == 1
    decide(store, "readmit", "sign lost in typing, checked again", quarantine_id=row, value=150.0)
    assert store.query(modulus)["value"].tolist() == [150.0] and review.stale_entries(store).empty
    with pytest.raises(CurationError, match="was readmitted already"):  # one in force: not again
        decide(store, "readmit", "twice", quarantine_id=row, value=151.0)


def test_a_janaf_value_whose_sign_the_table_lost_is_readmitted_with_the_steward_s_value(store, raw_janaf_catalog):
    # NIST's text runs Cl-161's delta-f H, delta-f G and log Kf together, their minus signs lost: the steward reads
    # the value in the printed table; the cell's problem stayed with the corrected value, and the readmit was refused
    run_ingest(build_connector("janaf", raw_janaf_catalog, FetchRequest(ids=["Cl-161"])), store)
    row = quarantined(store, "Cl-161:enthalpy_of_formation@298.15K")
    decide(store, "readmit", "the sign is lost in NIST's text; the printed table says -815.026", quarantine_id=row,
           value=-815.026)  # fmt: skip
    stored = "SELECT value, unit, original_value FROM properties WHERE property = 'enthalpy_of_formation'"
    assert store.query(stored).replace({float("nan"): None}).values.tolist() == [[-815.026, "kJ/mol", None]]
    with pytest.raises(CurationError, match="still invalid: NIST's table runs delta-f H"):  # no value: no readmit
        decide(store, "readmit", "as it is", quarantine_id=quarantined(store, "Cl-161:log_formation_constant@298.15K"))


def test_a_value_whose_uncertainty_cell_is_no_number_stays_refused_whatever_value_a_readmit_gives(store, tmp_path):
    columns = "  Eg: {property: band_gap, unit: eV, uncertainty_field: dEg}\n  rho: {property: density, unit: g/cm^3}\n"
    import_lab(store, tmp_path, "unc", columns, "id,formula,Eg,dEg,rho\nS1,CdS,2.42,abc,4.82\n")
    row = quarantined(store, "S1:band_gap")
    with pytest.raises(CurationError, match="still invalid: uncertainty in column 'dEg': non-numeric value 'abc'"):
        decide(store, "readmit", "the notebook says 2.43", quarantine_id=row, value=2.43)


def test_a_readmit_with_a_corrected_unit_reads_the_cells_number_in_its_notation(store, tmp_path):
    columns = "  Eg: {property: band_gap, unit_field: u}\n"
    rows = "id,formula,Eg,u\nS1,CdS,2.431(2),elektronvolt\nS2,GaN,3.4×10⁻³,elektronvolt\n"  # the unit mistyped
    assert import_lab(store, tmp_path, "notation", columns, rows).n_quarantined == 2
    for item in ("S1", "S2"):
        decide(store, "readmit", "the unit is eV", quarantine_id=quarantined_row(store, item), unit="eV")
    values = store.query("SELECT record_id, value, uncertainty, original_value, original_unit FROM properties")
    assert values.sort_values("record_id").replace({float("nan"): None}).values.tolist() == [
        ["notation:S1", 2.431, pytest.approx(0.002), 2.431, "elektronvolt"],
        ["notation:S2", pytest.approx(0.0034), None, pytest.approx(0.0034), "elektronvolt"],
    ]
    sql = "SELECT quarantine_id, value, unit FROM curation_log WHERE action = 'readmit' ORDER BY record_id"
    logged = store.query(sql)
    assert logged[["value", "unit"]].values.tolist() == [[2.431, "eV"], [pytest.approx(0.0034), "eV"]]


def test_a_readmit_with_a_corrected_value_keeps_the_uncertainty_its_row_gave(store, tmp_path):
    columns = "  Eg: {property: band_gap, unit: eV, uncertainty_field: dEg}\n  rho: {property: density, unit: g/cm^3}\n"
    rows = "id,formula,Eg,dEg,rho\nS1,CdS,42.4(3),,4.82\nS2,GaN,34,0.2,\nS3,ZnO,33(1),0.1,\n"
    assert import_lab(store, tmp_path, "unc", columns, rows).n_quarantined == 3  # S1's value, S2 and S3 whole
    decide(store, "readmit", "the notebook says 4.24", quarantine_id=quarantined(store, "S1:band_gap"), value=4.24)
    decide(store, "readmit", "the notebook says 3.4", quarantine_id=quarantined_row(store, "S2"), value=3.4)
    with pytest.raises(CurationError, match="'33[(]1[)]' states its uncertainty and another is given apart"):
        decide(store, "readmit", "the notebook says 3.3", quarantine_id=quarantined_row(store, "S3"), value=3.3)
    values = store.query("SELECT record_id, property, value, uncertainty, original_value FROM properties ORDER BY ALL")
    assert values.replace({float("nan"): None}).values.tolist() == [
        ["unc:S1", "band_gap", 4.24, 0.3, 42.4],  # its cell's own, and its number as received
        ["unc:S1", "density", 4.82, None, 4.82],
        ["unc:S2", "band_gap", 3.4, 0.2, 34.0],  # its uncertainty column's
    ]


def test_an_uncertainty_is_shown_exact_as_stored_and_in_another_unit_without_the_digits_of_the_conversion():
    """An uncertainty of 0.30000000000000004 eV was shown '± 0.3 eV' (15 digits), as history and a correction's
    echo show it; one shown in meV keeps none of the conversion's digits (4.1 meV, stored 0.0041 eV, is not
    4.1000000000000005 meV)."""
    assert uncertainty_text("band_gap", 0.30000000000000004, "eV") == "± 0.30000000000000004 eV"
    assert uncertainty_text("band_gap", 0.30000000000000004, None) == "± 0.30000000000000004 eV"
    assert uncertainty_text("no_such_property", 0.30000000000000004) == "± 0.30000000000000004"
    assert uncertainty_text("band_gap", 0.0041, "meV") == "± 4.1 meV"
    assert uncertainty_text("band_gap", 0.02, "meV") == "± 20.0 meV"  # (as `matreg sql` prints 20.0)
