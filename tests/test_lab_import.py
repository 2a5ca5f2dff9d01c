"""Lab imports: mapping, harmonization and quarantine reasons, on the bundled real sample and on bad files."""

import functools
import gzip
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import zstandard
from conftest import LAB_EXAMPLE, as_an_older_matreg_stored, single_value
from pymatgen.core import Lattice, Structure
from pymatgen.core.structure import StructureError
from pymatgen.io.cif import CifWriter
from pymatgen.io.vasp import Poscar

from matreg.catalog import Catalog, Dataset, Resolution
from matreg.errors import ConfigError, RunRefused
from matreg.export import dataset_query, export_dataset
from matreg.ingest import run_ingest
from matreg.sources.lab import LabConnector, load_mapping
from matreg.store import Store
from matreg.structure import read_structure
from matreg.validation import check_store_tables

COMPRESS = {".gz": gzip.compress, ".zst": zstandard.ZstdCompressor().compress}
LAB_FILES = Path(__file__).parent / "fixtures" / "lab_files"
BAD_ROWS = ["bad-bounds", "bad-formula", "bad-number", "bad-unit", "line 36"]  # the sample's quarantine items, sorted


def import_file(store, data, mapping, name=None):
    return run_ingest(LabConnector(data, load_mapping(mapping), name=name), store)


def test_sample_file_stores_good_rows_and_quarantines_bad_ones_with_reasons(store):
    report = import_file(store, LAB_EXAMPLE / "bandgaps.csv", LAB_EXAMPLE / "mapping.yaml")
    assert (report.n_fetched, report.n_stored, report.n_values, report.n_quarantined) == (35, 30, 30, 5)
    reasons = dict(store.query("SELECT item, reasons[1] AS reason FROM quarantine").values)
    assert reasons == {
        "bad-formula": "unparseable formula 'Qz2O3': not elements: Qz0+",
        "bad-unit": "unknown unit 'elektronvolt'",
        "bad-number": "non-numeric value 'about 3'",
        "bad-bounds": "band_gap = -1.1 eV is outside the physical bounds [0, 30]",
        "line 36": "duplicate id 'roost-2': row gives band_gap by optical absorption / transport (compiled) at 300 K, "
        "which line 3 gave (a record has one value of a property per method and conditions)",  # named by its line
    }


def test_an_import_records_when_it_was_published(store):
    """A lab import's run has `published_at`, when its rows entered the store: at or after `finished_at`, when it
    read its file's last row, as a fetch's run has."""
    before = pd.Timestamp.now("UTC")
    report = import_file(store, LAB_EXAMPLE / "bandgaps.csv", LAB_EXAMPLE / "mapping.yaml")
    sql = "SELECT status, finished_at, published_at FROM fetch_runs WHERE run_id = ?"
    ((status, read, published),) = store.query(sql, [report.run_id]).values.tolist()
    assert status == "complete" and before <= read <= published <= pd.Timestamp.now("UTC")


def test_a_re_import_resolves_the_quarantine_rows_its_file_no_longer_has(store, tmp_path):
    data = tmp_path / "bandgaps.csv"
    data.write_text((LAB_EXAMPLE / "bandgaps.csv").read_text(encoding="utf-8"), encoding="utf-8")
    open_rows = "SELECT item, run_id FROM open_quarantine ORDER BY item"
    first = import_file(store, data, LAB_EXAMPLE / "mapping.yaml")
    import_file(store, data, LAB_EXAMPLE / "mapping.yaml")  # unchanged: its problems are still open
    assert store.query(open_rows).values.tolist() == [[item, first.run_id] for item in BAD_ROWS]
    fixed = data.read_text(encoding="utf-8").replace("GaN,3.4,elektronvolt,300", "GaN,3.4,eV,300")  # line 33
    data.write_text(fixed.replace("bad-bounds,Si,-1.1", "bad-bounds,Si,1.1"), encoding="utf-8")  # line 35
    report = import_file(store, data, LAB_EXAMPLE / "mapping.yaml")
    assert (report.n_stored, report.n_quarantined) == (32, 3)
    still = [[item, first.run_id] for item in ("bad-formula", "bad-number", "line 36")]
    assert store.query(open_rows).values.tolist() == still
    ids = store.query("SELECT quarantined FROM fetch_runs WHERE run_id = ?", [report.run_id]).iloc[0, 0]
    assert len(ids) == 3  # what the latest import found, rows stored by the first one included
    assert len(store.table("quarantine")) == 5  # the rows resolved stay, as history


def as_before_quarantine_lists(store) -> None:
    """Make the store's runs as a matreg before `fetch_runs.whole_scope` and `quarantined` wrote them."""
    for path in store.data_dir.glob("c*/**/fetch_runs.parquet"):
        pq.write_table(pq.read_table(path).drop_columns(["whole_scope", "quarantined"]), path)
    (store.root / ".views.sha256").write_text("written by an older matreg", encoding="utf-8")


@pytest.mark.parametrize("name", [None, "gaps-2025"])
def test_a_re_import_resolves_the_quarantine_rows_of_imports_by_an_older_matreg(store, tmp_path, name):
    data = tmp_path / "bandgaps.csv"
    data.write_text((LAB_EXAMPLE / "bandgaps.csv").read_text(encoding="utf-8"), encoding="utf-8")
    first = import_file(store, data, LAB_EXAMPLE / "mapping.yaml", name)
    as_before_quarantine_lists(store)
    open_rows = "SELECT item, run_id FROM open_quarantine ORDER BY item"
    assert store.query(open_rows).values.tolist() == [[item, first.run_id] for item in BAD_ROWS]
    fixed = data.read_text(encoding="utf-8").replace("GaN,3.4,elektronvolt,300", "GaN,3.4,eV,300")  # line 33
    data.write_text(fixed, encoding="utf-8")
    import_file(store, data, LAB_EXAMPLE / "mapping.yaml", name)
    still = [[item, first.run_id] for item in BAD_ROWS if item != "bad-unit"]
    assert store.query(open_rows).values.tolist() == still


def test_an_older_import_of_a_sheet_named_0_is_not_taken_for_the_first_sheet(store, tmp_path):
    book = tmp_path / "book.xlsx"
    with pd.ExcelWriter(book) as writer:
        for sheet, gap in (("First", "3.3"), ("0", "about 3")):
            pd.DataFrame({"id": ["S1"], "formula": ["ZnO"], "gap": [gap]}).to_excel(
                writer, sheet_name=sheet, index=False
            )
    mapping = "dataset: d\nformula_column: formula\nid_column: id\ncitation: x\n"
    mapping += "columns:\n  gap: {property: band_gap, unit: eV}\n"
    (tmp_path / "zero.yaml").write_text(mapping + "sheet: '0'\n", encoding="utf-8")
    (tmp_path / "first.yaml").write_text(mapping, encoding="utf-8")
    import_file(store, book, tmp_path / "zero.yaml")  # scope 'book.xlsx[0]'
    as_before_quarantine_lists(store)
    import_file(store, book, tmp_path / "first.yaml")  # scope 'book.xlsx': quarantines nothing
    assert store.query("SELECT item FROM open_quarantine").values.tolist() == [["S1"]]


@pytest.mark.parametrize("fixed_first", ["a.csv", "b.csv"])
def test_a_row_two_files_reject_alike_stays_open_while_either_file_rejects_it(store, tmp_path, fixed_first):
    # the same bad line of two files of one dataset is one quarantine row: its id hashes source, item and payload
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "dataset: smith-lab\nformula_column: formula\nid_column: id\ncitation: x\ncolumns:\n"
        "  gap: {property: band_gap, unit: eV}\n",
        encoding="utf-8",
    )
    files = {name: tmp_path / name for name in ("a.csv", "b.csv")}
    for path in files.values():
        path.write_text("id,formula,gap\nS1,ZnO,about 3\nS2,GaN,3.4\n", encoding="utf-8")
        import_file(store, path, mapping)
    assert len(store.table("quarantine")) == 1
    open_count = "SELECT count(*) FROM open_quarantine"
    for name in (fixed_first, *(other for other in files if other != fixed_first)):
        assert store.query(open_count).iloc[0, 0] == 1  # (the other file still rejects it)
        files[name].write_text("id,formula,gap\nS1,ZnO,3.3\nS2,GaN,3.4\n", encoding="utf-8")
        import_file(store, files[name], mapping)
    assert store.query(open_count).iloc[0, 0] == 0


def test_the_wide_view_labels_each_value_with_its_own_provenance(store, tmp_path):
    """Two files of one dataset say of one sample a measured and a computed gap: the record's row is the last
    file's (dft), each value keeps how it was obtained, in the wide view too."""
    mapping = "dataset: smith-lab\nformula_column: formula\nid_column: id\ncitation: x\n"
    for name, how in (("measured", "provenance: experimental"), ("computed", "provenance: dft\nmethod: PBE")):
        (tmp_path / f"{name}.yaml").write_text(f"{mapping}{how}\ncolumns:\n  gap: {{property: band_gap, unit: eV}}\n")
    (tmp_path / "measured.csv").write_text("id,formula,gap\nS1,ZnO,3.3\n", encoding="utf-8")
    (tmp_path / "computed.csv").write_text("id,formula,gap\nS1,ZnO,0.73\n", encoding="utf-8")
    import_file(store, tmp_path / "measured.csv", tmp_path / "measured.yaml")
    import_file(store, tmp_path / "computed.csv", tmp_path / "computed.yaml")
    wide = store.query("SELECT provenance, coalesce(method, '-'), band_gap FROM properties_wide ORDER BY band_gap")
    assert wide.values.tolist() == [["dft", "PBE", 0.73], ["experimental", "-", 3.3]]


def test_the_wide_view_names_the_formula_unit_of_molar_values(store, tmp_path):
    """N2O4's reduced formula is NO2: its heat of formation is per mole of N2O4 (formula_original), half of it per
    NO2, so the wide view gives the formula the value is per mole of."""
    (tmp_path / "m.yaml").write_text(
        "dataset: smith-lab\nformula_column: formula\nid_column: id\ncitation: x\nprovenance: experimental\n"
        "columns:\n  dhf: {property: enthalpy_of_formation, unit: kJ/mol}\n",
        encoding="utf-8",
    )
    (tmp_path / "h.csv").write_text("id,formula,dhf\nS1,N2O4,-19.564\n", encoding="utf-8")
    import_file(store, tmp_path / "h.csv", tmp_path / "m.yaml")
    wide = store.query("SELECT formula, formula_original, enthalpy_of_formation FROM properties_wide")
    assert wide.values.tolist() == [["NO2", "N2O4", -19.564]]


def test_a_file_re_imported_replaces_only_what_that_file_said_of_its_records(store, tmp_path):
    mapping = "dataset: smith-lab\nformula_column: formula\nid_column: id\ncitation: x\ncolumns:\n"
    optical = "  gap: {property: band_gap, unit: eV}\n  rho: {property: density, unit: g/cm^3}\n"
    (tmp_path / "gaps.yaml").write_text(mapping + optical, encoding="utf-8")
    (tmp_path / "dhf.yaml").write_text(mapping + "  dHf: {property: formation_energy_per_atom, unit: eV/atom}\n")
    (tmp_path / "gaps.csv").write_text("id,formula,gap,rho\nS1,ZnO,3.3,5.6\nS2,GaN,3.4,6.1\n", encoding="utf-8")
    (tmp_path / "dhf.csv").write_text("id,formula,dHf\nS1,ZnO,-1.8\nS2,GaN,-0.6\n", encoding="utf-8")
    import_file(store, tmp_path / "gaps.csv", tmp_path / "gaps.yaml")
    import_file(store, tmp_path / "dhf.csv", tmp_path / "dhf.yaml")
    shown = "SELECT record_id, property, value FROM properties ORDER BY ALL"
    assert len(store.query(shown)) == 6  # the second file's records keep the first file's values
    (tmp_path / "gaps.csv").write_text("id,formula,gap,rho\nS1,ZnO,3.3,5.6\nS2,GaN,,6.1\n", encoding="utf-8")
    import_file(store, tmp_path / "gaps.csv", tmp_path / "gaps.yaml")  # S2's gap withdrawn
    assert store.query(shown).values.tolist() == [
        ["smith-lab:S1", "band_gap", 3.3],
        ["smith-lab:S1", "density", 5.6],
        ["smith-lab:S1", "formation_energy_per_atom", -1.8],
        ["smith-lab:S2", "density", 6.1],
        ["smith-lab:S2", "formation_energy_per_atom", -0.6],
    ]


def _two_files(tmp_path, gaps: str, both: str) -> tuple:
    mapping = "dataset: smith-lab\nformula_column: formula\nid_column: id\ncitation: x\ncolumns:\n"
    (tmp_path / "gaps.yaml").write_text(mapping + "  gap: {property: band_gap, unit: eV}\n", encoding="utf-8")
    (tmp_path / "both.yaml").write_text(
        mapping + "  gap: {property: band_gap, unit: eV}\n  dHf: {property: formation_energy_per_atom, unit: eV/atom}\n"
    )
    (tmp_path / "gaps.csv").write_text(gaps, encoding="utf-8")
    (tmp_path / "both.csv").write_text(both, encoding="utf-8")
    return (tmp_path / "gaps.csv", tmp_path / "gaps.yaml"), (tmp_path / "both.csv", tmp_path / "both.yaml")


def test_a_value_withdrawn_by_one_file_stays_as_another_file_gives_it(store, tmp_path):
    gaps, both = _two_files(tmp_path, "id,formula,gap\nS1,ZnO,3.3\n", "id,formula,gap,dHf\nS1,ZnO,3.5,-1.8\n")
    import_file(store, *gaps)
    import_file(store, *both)  # the same key, a later value
    assert store.query("SELECT value FROM properties WHERE property = 'band_gap'").values.tolist() == [[3.5]]
    (tmp_path / "both.csv").write_text("id,formula,gap,dHf\nS1,ZnO,,-1.8\n", encoding="utf-8")
    import_file(store, *both)  # its gap withdrawn: the one gaps.csv gives is shown again
    assert store.query("SELECT value FROM properties WHERE property = 'band_gap'").values.tolist() == [[3.3]]


def test_each_value_is_exported_with_the_citation_of_the_file_that_gave_it(store, tmp_path):
    gaps, both = _two_files(tmp_path, "id,formula,gap\nS1,ZnO,3.3\n", "id,formula,gap,dHf\nS1,ZnO,,-1.8\n")
    (tmp_path / "both.yaml").write_text((tmp_path / "both.yaml").read_text().replace("citation: x", "citation: y"))
    import_file(store, *gaps)
    import_file(store, *both)  # the record's latest write cites y
    sql, params = dataset_query(
        Dataset(description="d", version="1", properties=["band_gap", "formation_energy_per_atom"])
    )
    cited = store.query(sql, params)[["property", "citation"]].sort_values("property").values.tolist()
    assert cited == [["band_gap", "x"], ["formation_energy_per_atom", "y"]]


def test_a_value_written_before_scopes_is_withdrawn_by_a_re_import(store, tmp_path):
    gaps, both = _two_files(tmp_path, "", "id,formula,gap,dHf\nS1,ZnO,3.5,-1.8\n")
    import_file(store, *both)
    for path in store.data_dir.glob("c*/**/materials.parquet"):  # as a store written before scopes holds it
        pq.write_table(pq.read_table(path).drop_columns(["scope"]), path)
    (store.root / ".views.sha256").write_text("written by an older matreg", encoding="utf-8")
    (tmp_path / "both.csv").write_text("id,formula,gap,dHf\nS1,ZnO,,-1.8\n", encoding="utf-8")
    import_file(store, *both)
    assert store.query("SELECT property FROM properties").values.tolist() == [["formation_energy_per_atom"]]


def _import_molar(store: Store, folder: Path, dataset: str, rows: str):
    """Import `rows` (a CSV of id, formula and dHf in kJ/mol, a formation energy) as lab dataset `dataset`."""
    mapping = f"dataset: {dataset}\nformula_column: formula\nid_column: id\ncitation: x\ncolumns:\n"
    (folder / "m.yaml").write_text(mapping + "  dHf: {property: formation_energy_per_atom, unit: kJ/mol}\n")
    (folder / f"{dataset}.csv").write_text(rows, encoding="utf-8")
    return import_file(store, folder / f"{dataset}.csv", folder / "m.yaml")


def test_a_hydrates_molar_value_is_per_atom_of_the_hydrate(store, tmp_path):
    _import_molar(store, tmp_path, "salts", "id,formula,dHf\ns1,CuSO4.5H2O,-2279.65\n")
    value = store.query("SELECT value FROM properties").iloc[0, 0]
    assert value == pytest.approx(-2279.65 / 21 * 0.01036427, rel=1e-5)  # 21 atoms; pymatgen alone counted 9.5


def test_an_oxide_sum_is_read_whole_or_refused_where_its_period_may_be_a_decimal_point(store, tmp_path):
    rows = "id,formula,dHf\ng1,Na2O.2SiO2,-2470\ng3,BaO.6Fe2O3,-5400\ng5,Na2O.SiO2,-1561\n"
    report = _import_molar(store, tmp_path, "glass", rows)
    assert (report.n_stored, report.n_quarantined) == (1, 2)  # pymatgen alone read Na2SiO2.2 and BaFe2O3.6
    stored = store.query("SELECT m.formula, p.value FROM properties p JOIN materials m USING (record_id)")
    assert stored.values.tolist() == [["Na2SiO3", pytest.approx(-1561 / 6 * 0.01036427, rel=1e-5)]]
    reasons = store.query("SELECT item, reasons[1] FROM quarantine ORDER BY item").values.tolist()
    assert [item for item, _ in reasons] == ["g1", "g3"]
    assert reasons[0][1].startswith("ambiguous formula 'Na2O.2SiO2': its period before '2SiO2' joins an adduct's")
    assert "(Na2O·2SiO2) or is a decimal point (Na2O0.2SiO2)" in reasons[0][1]


def test_an_oxide_sum_written_with_a_space_is_quarantined_not_read_as_another_compound(store, tmp_path):
    report = _import_molar(store, tmp_path, "glass", "id,formula,dHf\ng1,Na2O 2SiO2,-2470.1\ng2,Na2O·2SiO2,-2470.1\n")
    assert (report.n_stored, report.n_quarantined) == (1, 1)  # pymatgen alone read Na2SiO4
    stored = store.query("SELECT m.source_id, m.formula FROM materials m").values.tolist()
    assert stored == [["g2", "Na2Si2O5"]]
    item, reason = store.query("SELECT item, reasons[1] FROM quarantine").values.tolist()[0]
    assert item == "g1" and reason.startswith("ambiguous formula 'Na2O 2SiO2': the number after a space")


def test_a_formula_cell_nan_is_quarantined_as_a_missing_number_not_read_as_sodium_nitride(store, tmp_path):
    rows = "id,formula,dHf\nn1,NaN,-100\nn2,Na1N1,-100\nn3,NNa,-100\n"  # NaN: a numeric tool's missing value
    report = _import_molar(store, tmp_path, "nitrides", rows)
    assert (report.n_stored, report.n_quarantined) == (2, 1)
    assert store.query("SELECT source_id, formula FROM materials ORDER BY 1").values.tolist() == [
        ["n2", "NaN"],
        ["n3", "NaN"],
    ]
    assert store.query("SELECT item, reasons[1] FROM quarantine").values.tolist() == [
        [
            "n1",
            "formula 'NaN' is how numeric tools write a missing number, not sure to mean sodium nitride: write it "
            "Na1N1",
        ]
    ]


def test_an_ions_charge_written_after_its_amounts_is_quarantined_and_one_written_one_way_is_read(store, tmp_path):
    mapping = _mapping_head("ions")
    mapping += "  S: {property: entropy, unit: J/(mol*K)}\n"  # standard entropies of aqueous ions
    rows = "id,formula,S\nmg,Mg2+,-138.1\ncl,Cl⁻,56.5\nso4,SO4[2-],20.1\nso4-sup,SO₄²⁻,20.1\n"
    report = import_file(store, *_write(tmp_path, rows, mapping))
    assert (report.n_stored, report.n_quarantined) == (3, 1)  # Mg2+ was read as Mg₂⁺; the others were refused
    query = "SELECT source_id, formula, formula_original, value FROM properties JOIN materials USING (record_id)"
    assert store.query(query + " ORDER BY 1").values.tolist() == [
        ["cl", "Cl[-1]", "Cl⁻", 56.5],
        ["so4", "SO4[-2]", "SO4[2-]", 20.1],
        ["so4-sup", "SO4[-2]", "SO₄²⁻", 20.1],
    ]
    assert store.query("SELECT item, len(reasons), reasons[1] FROM quarantine").values.tolist() == [
        ["mg", 1, "ambiguous charge 'Mg2+': the ion Mg²⁺ (write Mg[+2], Mg+2 or Mg²⁺) or Mg₂⁺ (write Mg2[+1])"]
    ]


def test_an_aqueous_solutes_negative_standard_entropy_is_stored_as_an_ions_a_crystals_quarantined(store, tmp_path):
    mapping = _mapping_head("nbs") + "  S: {property: entropy, unit: J/(mol*K)}\n"
    rows = "id,formula,S\nmgso4,MgSO4(aq),-118.0\nmg,Mg[+2](aq),-138.1\ncorundum,Al2O3,-50.92\n"
    report = import_file(store, *_write(tmp_path, rows, mapping))
    assert (report.n_stored, report.n_quarantined) == (2, 1)
    query = "SELECT source_id, phase, value FROM properties JOIN materials USING (record_id) ORDER BY 1"
    assert store.query(query).values.tolist() == [["mg", "aq", -138.1], ["mgso4", "aq", -118.0]]
    assert store.query("SELECT item, reasons FROM quarantine").values.tolist() == [
        ["corundum", ["entropy = -50.92 J/(mol*K) is outside the physical bounds [0, 5000]"]]
    ]


def test_a_formula_written_with_its_state_is_read_as_the_formula_and_the_records_phase(store, tmp_path):
    rows = "id,formula,dHf\nco2,CO2(g),-393.51\nwater,H2O(l),-285.83\nsteam,H2O (g),-241.83\nsalt,NaCl(cr),-411.12\n"
    rows += "rust,Fe2O3(s),-824.2\nlime,Ca(OH)2(c),-985.2\nbrine,NaCl(aq),-407.27\nrutile,TiO2(B),-944\n"
    rows += "pyrite,Fe(S),-100\nchrome,NaCl(Cr),-100\n"  # sulfur, chromium or phase labels: no states
    report = _import_molar(store, tmp_path, "thermo", rows)
    assert (report.n_stored, report.n_quarantined) == (7, 3)
    query = "SELECT source_id, formula, formula_original, phase, value FROM materials JOIN properties USING (record_id)"
    stored = store.query(query + " ORDER BY 1").values.tolist()
    assert stored == [
        ["brine", "NaCl", "NaCl", "aq", pytest.approx(-407.27 / 2 * 0.01036427, rel=1e-5)],  # a solute's
        ["co2", "CO2", "CO2", "g", pytest.approx(-393.51 / 3 * 0.01036427, rel=1e-5)],  # per atom of CO2
        ["lime", "Ca(HO)2", "Ca(OH)2", "cr", pytest.approx(-985.2 / 5 * 0.01036427, rel=1e-5)],
        ["rust", "Fe2O3", "Fe2O3", "cr", pytest.approx(-824.2 / 5 * 0.01036427, rel=1e-5)],
        ["salt", "NaCl", "NaCl", "cr", pytest.approx(-411.12 / 2 * 0.01036427, rel=1e-5)],
        ["steam", "H2O", "H2O", "g", pytest.approx(-241.83 / 3 * 0.01036427, rel=1e-5)],
        ["water", "H2O", "H2O", "l", pytest.approx(-285.83 / 3 * 0.01036427, rel=1e-5)],
    ]
    reasons = dict(store.query("SELECT item, reasons[1] FROM quarantine").values.tolist())
    for item, label in [("rutile", "(B)"), ("pyrite", "(S)"), ("chrome", "(Cr)")]:
        assert f"'{label}' at the end of a formula reads as a phase label, not as one more atom" in reasons[item]
    again = _import_molar(store, tmp_path, "thermo", rows)
    assert (again.n_stored, again.n_unchanged, again.n_quarantined) == (7, 7, 3)
    assert store.query(query + " ORDER BY 1").values.tolist() == stored
    assert [len(store.table(name)) for name in ("materials", "properties", "quarantine")] == [7, 7, 3]


def test_a_table_pasted_from_a_paper_is_read_with_its_typeset_minus_signs(store, tmp_path):
    mapping = _mapping_head("ions")
    mapping += "  S: {property: entropy, unit: J/(mol*K), temperature_field: T, temperature_unit: degC}\n"
    rows = "id,formula,S,T\nmg,Mg⁺⁺,\u2212138.1,25\ncl,Cl\u2212,56.5,25\ncold,Cl\u2212,50.5,\u221210\n"
    report = import_file(store, *_write(tmp_path, rows, mapping))
    assert (report.n_stored, report.n_quarantined) == (3, 0)  # the minus sign (U+2212) was no number, no formula
    query = "SELECT source_id, formula, value, temperature_K FROM properties JOIN materials USING (record_id)"
    assert store.query(query + " ORDER BY 1").values.tolist() == [
        ["cl", "Cl[-1]", 56.5, 298.15],
        ["cold", "Cl[-1]", 50.5, 263.15],
        ["mg", "Mg[+2]", -138.1, 298.15],
    ]


def test_a_dry_run_of_an_import_checks_every_page_of_the_file(store):
    connector = LabConnector(LAB_EXAMPLE / "bandgaps.csv", load_mapping(LAB_EXAMPLE / "mapping.yaml"), page_size=10)
    report = run_ingest(connector, store, dry_run=True)
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (35, 30, 5)  # the bad rows are on page 4
    assert not store.exists()


def test_values_given_in_mev_are_harmonized_to_ev_and_keep_the_original(store):
    import_file(store, LAB_EXAMPLE / "bandgaps.csv", LAB_EXAMPLE / "mapping.yaml")
    row = store.query(
        "SELECT value, unit, original_value, original_unit, temperature_K, provenance FROM properties "
        "WHERE record_id = 'demo-lab-bandgaps:roost-5'"
    ).iloc[0]
    assert (row.unit, row.original_unit, row.temperature_K, row.provenance) == ("eV", "meV", 300.0, "experimental")
    assert row.value == pytest.approx(row.original_value / 1000)


def _mapping_head(dataset: str) -> str:
    """A lab mapping's lines before its columns: dataset `dataset`, formula and id columns, a citation."""
    return f"dataset: {dataset}\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"


def _write(tmp_path, csv_text, mapping_text):
    data, mapping = tmp_path / "lab.csv", tmp_path / "mapping.yaml"
    data.write_text(csv_text, encoding="utf-8")
    mapping.write_text(mapping_text, encoding="utf-8")
    return data, mapping


MAPPING = """dataset: thermo-lab
formula_column: formula
citation: test notebook 7
columns:
  dHf: {property: formation_energy_per_atom, unit: kJ/mol}
  Cp: {unit: J/(mol*K), temperature_K: 298.15}
"""


@pytest.mark.parametrize(
    ("mapping", "refused"),
    [
        (MAPPING + "phase: cr\n", "line 7: (top level): unknown key 'phase'"),
        (MAPPING + "phase_column: state\n", "line 7: (top level): unknown key 'phase_column'"),
        (MAPPING.replace("298.15}", "298.15, phase: cr}"), "line 6: columns.Cp: unknown key 'phase'"),
    ],
)
def test_a_mapping_gives_no_phase_of_its_own_that_a_formulas_state_could_contradict(tmp_path, mapping, refused):
    # a record's phase is its formula cell's state alone ('H2O(l)'): a mapping has no phase setting, fixed or by
    # column, that could disagree with it ('cr' beside 'H2O(l)'), one of the two winning silently
    _, path = _write(tmp_path, "", mapping)
    with pytest.raises(ConfigError) as raised:
        load_mapping(path)
    assert str(raised.value) == f"{path}: {refused}"


def test_molar_enthalpy_column_becomes_formation_energy_per_atom(store, tmp_path):
    data, mapping = _write(tmp_path, "formula,dHf,Cp\nH2O,-285.83,75.351\nAl2O3,-1675.692,\n", MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_values, report.n_quarantined) == (2, 3, 0)
    values = store.query(
        "SELECT m.formula, p.property, p.value, p.unit FROM properties p JOIN materials m "
        "USING (record_id) ORDER BY m.formula, p.property"
    )
    assert values.to_dict("records")[0] == pytest.approx(
        {"formula": "Al2O3", "property": "formation_energy_per_atom", "value": -3.47346, "unit": "eV/atom"}, abs=1e-5
    )
    water = values[values.formula == "H2O"].set_index("property")
    assert water.loc["formation_energy_per_atom", "value"] == pytest.approx(-0.98747, abs=1e-5)
    assert water.loc["heat_capacity_cp", "value"] == pytest.approx(75.351)


def test_a_row_without_any_value_is_quarantined_not_dropped(store, tmp_path):
    data, mapping = _write(tmp_path, "formula,dHf,Cp\nH2O,-285.83,\nNaCl,,\n", MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (1, 1)
    assert store.query("SELECT reasons FROM quarantine").iloc[0, 0].tolist() == ["no property values"]


def test_reimporting_the_same_file_changes_nothing(store, tmp_path):
    data, mapping = _write(tmp_path, "formula,dHf,Cp\nH2O,-285.83,75.3\nXx,1,1\n", MAPPING)
    import_file(store, data, mapping)
    import_file(store, data, mapping)
    assert [len(store.table(n)) for n in ("materials", "properties", "quarantine")] == [1, 2, 1]


def test_a_row_written_with_its_state_that_an_import_rejects_keeps_its_last_valid_read(store, tmp_path):
    data, mapping = _write(tmp_path, "formula,dHf,Cp\nH2O(l),-285.83,75.3\n", MAPPING)  # no id column: by place
    import_file(store, data, mapping)
    data.write_text('formula,dHf,Cp\nH2O(l),"-285,83",75.3\n', encoding="utf-8")  # a decimal comma: quarantined
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined, report.n_withdrawn) == (0, 1, 0)  # its record is still the row's
    stored = "SELECT formula, phase, property FROM materials JOIN properties USING (record_id) ORDER BY property"
    assert store.query(stored).values.tolist() == [
        ["H2O", "l", "formation_energy_per_atom"],
        ["H2O", "l", "heat_capacity_cp"],
    ]


def test_reimporting_an_edited_file_writes_only_the_changed_record_whole(store, tmp_path):
    data, mapping = _write(tmp_path, "formula,dHf,Cp\nH2O,-285.83,75.351\nAl2O3,-1675.692,79.0\n", MAPPING)
    first = import_file(store, data, mapping)
    data.write_text("formula,dHf,Cp\nH2O,-285.83,75.351\nAl2O3,-1675.692,79.1\n", encoding="utf-8")
    second = import_file(store, data, mapping)
    assert (second.n_stored, second.n_unchanged) == (2, 1)  # H2O as it was; Al2O3's changed value: written whole
    materials = store.query("SELECT formula, run_id FROM materials ORDER BY formula").values.tolist()
    assert materials == [["Al2O3", second.run_id], ["H2O", first.run_id]]
    rows = store.query("SELECT record_id, property, value, run_id FROM properties ORDER BY record_id, property")
    by_run = rows.groupby("run_id")["property"].apply(sorted).to_dict()
    assert by_run == {
        first.run_id: ["formation_energy_per_atom", "heat_capacity_cp"],
        second.run_id: ["formation_energy_per_atom", "heat_capacity_cp"],
    }
    assert rows.loc[rows["run_id"] == second.run_id, "value"].tolist()[1] == 79.1


@pytest.mark.parametrize(
    ("edited", "left"),
    [
        ("formula,dHf,Cp,T\nAl2O3,-1675.692,79.0,295\n", [["heat_capacity_cp", 295.0, 79.0]]),  # its temperature
        ("formula,dHf,Cp,T\nAl2O3,-1675.692,,300\n", []),  # the cell cleared
    ],
)
def test_a_value_a_reimported_file_no_longer_gives_is_no_longer_shown(store, tmp_path, edited, left):
    mapping = MAPPING.replace("temperature_K: 298.15", "temperature_field: T")
    data, mapping = _write(tmp_path, "formula,dHf,Cp,T\nAl2O3,-1675.692,79.0,300\n", mapping)
    import_file(store, data, mapping)
    data.write_text(edited, encoding="utf-8")
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_unchanged) == (1, 0)
    cp = "SELECT property, temperature_K, value FROM properties WHERE property = 'heat_capacity_cp'"
    assert store.query(cp).values.tolist() == left
    assert store.query("SELECT count(*) FROM properties_wide").iloc[0, 0] == 1 + len(left)  # + the formation energy


def test_a_mapped_column_missing_from_the_file_is_a_clear_error(tmp_path):
    data, mapping = _write(tmp_path, "formula,dHf\nH2O,-285.83\n", MAPPING)
    with pytest.raises(ConfigError, match="mapped column.*Cp"):
        LabConnector(data, load_mapping(mapping))


@pytest.mark.parametrize(
    ("column", "where"),
    [
        ("  Cp: {property: colour, unit: eV}\n", "line 6: columns.Cp.property"),
        ("  Cp:\n    unit: eV\n    property: colour\n", "line 8: columns.Cp.property"),
        ("  colour: {unit: eV}\n", "line 6: columns.colour"),  # the column's name taken for its property
    ],
)
def test_a_mapping_with_an_unknown_property_names_its_line(tmp_path, column, where):
    # the line was the file's first ('line 1: (top level)'), wherever the column was
    _, mapping = _write(tmp_path, "", MAPPING.replace("  Cp: {unit: J/(mol*K), temperature_K: 298.15}\n", column))
    with pytest.raises(ConfigError) as raised:
        load_mapping(mapping)
    assert str(raised.value) == f"{mapping}: {where}: Value error, 'colour' is not in the property vocabulary"


@pytest.mark.parametrize("key", ["id_column", "formula_column", "name_column", "structure_column", "spacegroup_column"])
def test_a_mapping_naming_a_column_by_an_empty_text_is_refused_saying_how_a_blank_header_is_named(tmp_path, key):
    # id_column: "" (a file whose first column has no header) numbered the rows by position, silently: a row deleted
    # from the file gave the next row its id
    named = "".join(f"{name}: '{column}'\n" for name, column in ({"formula_column": "formula"} | {key: ""}).items())
    mapping = f"dataset: gaps\n{named}citation: c\ncolumns:\n  gap: {{property: band_gap, unit: eV}}\n"
    _, mapping_path = _write(tmp_path, "", mapping)
    with pytest.raises(ConfigError, match=rf"{key}: .*names no column: a column whose header is blank is 'Unnamed: N'"):
        load_mapping(mapping_path)


@pytest.mark.parametrize(
    ("entries", "where", "both"),
    [
        ("formula_column: gap\n", "line 5: columns.gap", "'gap' is both the formula_column and a value column"),
        ("formula_column: f\nstructure_column: gap\n", "line 6: columns.gap", "'gap' is both the structure_column and"),
        ("formula_column: f\nid_column: gap\n", "line 6: columns.gap", "'gap' is both the id_column and"),
        ("formula_column: f\nspacegroup_column: gap\n", "line 6: columns.gap", "'gap' is both the spacegroup_column"),
        (
            "formula_column: f\nstructure_column: f\n",
            "line 3: structure_column",
            "'f' is both the formula_column and the",
        ),
        (
            "formula_column: f\nextra_columns: {gap: sample_id}\n",
            "line 6: columns.gap",
            "'gap' is both an extra_column",
        ),
    ],
)
def test_a_mapping_giving_one_column_two_roles_is_refused_at_the_second(tmp_path, entries, where, both):
    # a value column that is also the formula column quarantined every row ("unparseable formula '3.4'")
    mapping = f"dataset: gaps\n{entries}citation: c\ncolumns:\n  gap: {{property: band_gap, unit: eV}}\n"
    _, mapping_path = _write(tmp_path, "", mapping)
    with pytest.raises(ConfigError) as raised:
        load_mapping(mapping_path)
    assert f"{where}: Value error, column {both}" in str(raised.value)


def test_a_value_column_named_as_the_temperature_column_of_another_is_refused(tmp_path):
    columns = "  gap: {property: band_gap, unit: eV}\n  gap2: {property: band_gap, unit: eV, temperature_field: gap}\n"
    _, mapping_path = _write(tmp_path, "", f"dataset: gaps\nformula_column: f\ncitation: c\ncolumns:\n{columns}")
    with pytest.raises(
        ConfigError,
        match="line 5: columns.gap: Value error, column 'gap' is both the temperature_field of column 'gap2' and a",
    ):
        load_mapping(mapping_path)


@pytest.mark.parametrize(
    "entries", ["formula_column: f\nid_column: f\n", "formula_column: f\nid_column: s\nname_column: s\n"]
)
def test_a_mapping_may_name_rows_by_their_formula_or_their_id(tmp_path, entries):
    mapping = f"dataset: gaps\n{entries}citation: c\ncolumns:\n  gap: {{property: band_gap, unit: eV}}\n"
    assert load_mapping(_write(tmp_path, "", mapping)[1]).columns["gap"].unit == "eV"


_BLANK_HEADER = (
    "names no column: a column whose header is blank is 'Unnamed: N', N its position from 0 ('Unnamed: 0' the first)"
)


@pytest.mark.parametrize(
    ("entries", "where"),
    [
        ('columns:\n  "": {property: band_gap, unit: eV}\n', "line 5: columns.''"),
        (
            "columns:\n  gap: {property: band_gap, unit: eV, temperature_field: ''}\n",
            "line 5: columns.gap.temperature_field",
        ),
        ("columns:\n  gap:\n    property: band_gap\n    unit_field: ' '\n", "line 7: columns.gap.unit_field"),
        ("columns:\n  gap: {property: band_gap, unit: eV, pressure_field: ''}\n", "line 5: columns.gap.pressure_field"),
        ("columns:\n  gap: {property: band_gap, unit: eV, method_field: ''}\n", "line 5: columns.gap.method_field"),
        (
            "columns:\n  gap: {property: band_gap, unit: eV}\nextension: lab-sample\n"
            "extra_columns:\n  sample: sample_id\n  '': synthesis_route\n",
            "line 9: extra_columns.''",
        ),
    ],
)
def test_a_mapping_reading_a_cell_of_a_column_named_by_an_empty_text_is_refused_at_its_line(tmp_path, entries, where):
    # only the *_column keys were checked: the import of any file failed with a Python traceback (KeyError: '')
    mapping = f"dataset: gaps\nformula_column: formula\ncitation: c\n{entries}"
    _, mapping_path = _write(tmp_path, "", mapping)
    with pytest.raises(ConfigError) as raised:
        load_mapping(mapping_path)
    assert str(raised.value) == f"{mapping_path}: {where}: Value error, {_BLANK_HEADER}"


def test_excel_files_are_read_too(store, tmp_path):
    import pandas as pd

    pd.DataFrame({"formula": ["GaN", "ZnO"], "gap": ["3.4", "3.37"]}).to_excel(tmp_path / "lab.xlsx", index=False)
    (tmp_path / "m.yaml").write_text(
        "dataset: xl\nformula_column: formula\ncitation: c\ncolumns:\n  gap: {property: band_gap, unit: eV}\n"
    )
    assert import_file(store, tmp_path / "lab.xlsx", tmp_path / "m.yaml").n_values == 2


def test_old_excel_files_are_read_from_the_named_sheet(store, tmp_path):
    (tmp_path / "m.yaml").write_text(
        "dataset: xls\nformula_column: formula\ncitation: c\nsheet: gaps\n"
        "columns:\n  gap: {property: band_gap, unit: eV}\n"
    )
    report = import_file(store, LAB_FILES / "gaps.xls", tmp_path / "m.yaml")
    assert (report.n_stored, report.n_quarantined) == (2, 1)  # Qz is no element
    gaps = store.query("SELECT m.formula, p.value FROM properties p JOIN materials m USING (record_id) ORDER BY 2")
    assert gaps.values.tolist() == [["ZnO", 3.37], ["GaN", 3.4]]


def test_an_empty_file_or_a_json_file_that_is_no_list_of_records_is_a_clear_error(tmp_path):
    data, mapping = _write(tmp_path, "", MAPPING)
    (tmp_path / "lab.json").write_text('{"formula": "H2O", "dHf": -285.83, "Cp": 75.351}')
    with pytest.raises(ConfigError, match="a JSON lab file holds a list of records"):
        LabConnector(tmp_path / "lab.json", load_mapping(mapping))
    with pytest.raises(ConfigError, match=r"cannot read .*lab.csv: no header line \(the file is empty\)"):
        LabConnector(data, load_mapping(mapping))  # an empty file


def test_one_property_by_two_methods_keeps_both_values(store, tmp_path):
    mapping = (
        "dataset: gaps\nformula_column: formula\ncitation: c\nprovenance: dft\ncolumns:\n"
        "  gap_pbe: {property: band_gap, unit: eV, method: PBE}\n"
        "  gap_hse: {property: band_gap, unit: eV, method: HSE06}\n"
    )
    data, mapping = _write(tmp_path, "formula,gap_pbe,gap_hse\nGaAs,0.19,1.21\n", mapping)
    import_file(store, data, mapping)
    import_file(store, data, mapping)
    gaps = store.query("SELECT method, value FROM properties ORDER BY method").to_dict("records")
    assert gaps == [{"method": "HSE06", "value": 1.21}, {"method": "PBE", "value": 0.19}]


def test_a_labs_spelling_of_a_functional_is_stored_and_selected_by_the_vocabularys_name(store, tmp_path):
    mapping = (
        "dataset: gaps\nformula_column: formula\ncitation: c\nprovenance: dft\ncolumns:\n"
        "  gap_pbe: {property: band_gap, unit: eV, method: gga-pbe}\n"
        "  gap_hse: {property: band_gap, unit: eV, method: HSE}\n"
        "  gap_lab: {property: band_gap, unit: eV, method: UV-vis Tauc plot}\n"
    )
    import_file(store, *_write(tmp_path, "formula,gap_pbe,gap_hse,gap_lab\nGaAs,0.19,1.21,1.42\n", mapping))
    stored = store.query("SELECT method FROM properties ORDER BY method")["method"].tolist()
    assert stored == ["HSE06", "PBE", "UV-vis Tauc plot"]
    sql, params = dataset_query(Dataset(description="d", version="1.0.0", properties=["band_gap"], methods=["pbe"]))
    assert store.query(sql, params)["value"].tolist() == [0.19]
    for path in store.data_dir.glob("c*/**/properties.parquet"):  # a store written before the method vocabulary
        table = pq.read_table(path)
        methods = pc.replace_substring(table["method"], "PBE", "GGA-PBE")
        pq.write_table(table.set_column(table.schema.get_field_index("method"), "method", methods), path)
    assert store.query(sql, params)[["method", "value"]].values.tolist() == [["GGA-PBE", 0.19]]


def test_a_negative_measurement_temperature_is_quarantined_not_fatal(store, tmp_path):
    mapping = (
        "dataset: temps\nformula_column: formula\ncitation: c\ncolumns:\n"
        "  gap: {property: band_gap, unit: eV, temperature_field: T}\n"
    )
    data, mapping = _write(tmp_path, "formula,gap,T\nGaAs,1.42,300\nGaN,3.4,-5\n", mapping)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (1, 1)
    assert store.query("SELECT reasons FROM quarantine").iloc[0, 0].tolist() == ["temperature_K -5 is negative"]


STRUCTURE_MAPPING = """dataset: xtal-lab
formula_column: formula
id_column: sample
structure_column: structure
citation: test notebook 8
columns:
  gap: {property: band_gap, unit: eV}
"""
NACL = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_a_structure_column_reads_cif_poscar_json_and_file_names(store, tmp_path):
    (tmp_path / "nacl.cif").write_text(str(CifWriter(NACL)), encoding="utf-8")
    rows = pd.DataFrame(
        {
            "sample": ["cif", "poscar", "json", "file", "none", "broken"],
            "formula": ["NaCl"] * 6,
            "gap": ["8.5"] * 6,
            "structure": [
                str(CifWriter(NACL)),
                Poscar(NACL).get_str(),
                NACL.to_json(),
                "nacl.cif",
                "",
                "this is no crystal",
            ],
        }
    )
    data, mapping = _write(tmp_path, rows.to_csv(index=False), STRUCTURE_MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (5, 1)
    materials = store.table("materials").set_index("source_id")
    for sample in ("cif", "poscar", "json", "file"):
        assert read_structure(materials.loc[sample, "structure"]) == NACL, sample
        assert materials.loc[sample, "nsites"] == 2
    assert pd.isna(materials.loc["none", "structure"]) and pd.isna(materials.loc["none", "nsites"])
    reason = store.query("SELECT reasons[1] FROM quarantine").iloc[0, 0]
    assert reason.startswith("column 'structure': not a crystal structure (CIF, POSCAR, pymatgen JSON or a file")


def test_a_cif_cut_short_or_a_poscar_pymatgen_cannot_build_is_quarantined_and_the_import_goes_on(store, tmp_path):
    cif = str(CifWriter(NACL))
    poscar = Poscar(NACL).get_str().split("\n")
    poscar[6] = "1 -1"  # counts for fewer coordinate lines than it lists: pymatgen's StructureError
    rows = pd.DataFrame(
        {
            "sample": ["good", "cut-short", "poscar"],
            "formula": ["NaCl"] * 3,
            "gap": ["8.5"] * 3,
            "structure": [cif, cif[: cif.index("_symmetry_equiv_pos_as_xyz")], "\n".join(poscar)],
        }
    )
    data, mapping = _write(tmp_path, rows.to_csv(index=False), STRUCTURE_MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (1, 2)
    prefix = "column 'structure': not a crystal structure (CIF, POSCAR, pymatgen JSON or a file of one): "
    assert store.query("SELECT item, reasons[1] FROM quarantine ORDER BY item").values.tolist() == [
        ["cut-short", prefix + "integer modulo by zero"],
        ["poscar", prefix + "len(species)=1 != len(coords)=0"],
    ]


@pytest.mark.parametrize(
    ("error", "reason"),
    [(ZeroDivisionError("division by zero"), "ZeroDivisionError"), (StructureError("x"), "StructureError")],
)
def test_a_row_a_reader_fails_on_with_arithmetic_or_pymatgens_structure_error_is_quarantined(
    store, tmp_path, monkeypatch, error, reason
):
    # What a mapping meets that no reader turns into a RecordError refuses that row alone, not the import.
    def failing(text, base=None):
        raise error

    monkeypatch.setattr("matreg.sources.lab.parse_structure", failing)
    rows = pd.DataFrame(
        {"sample": ["none", "one"], "formula": ["NaCl"] * 2, "gap": ["8.5"] * 2, "structure": ["", "x"]}
    )
    data, mapping = _write(tmp_path, rows.to_csv(index=False), STRUCTURE_MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (1, 1)
    assert store.query("SELECT item, reasons[1] FROM quarantine").values.tolist() == [
        ["one", f"record not in the form the xtal-lab mapping reads (or a matreg bug): {reason}: {error}"]
    ]


ROCKSALT_ZNO = """data_rocksalt
_cell_length_a 4.271
_cell_length_b 4.271
_cell_length_c 4.271
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'F m -3 m'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Zn1 Zn 0 0 0
O1 O 0.5 0.5 0.5
"""
WURTZITE_ZNO = ROCKSALT_ZNO.replace("data_rocksalt", "data_wurtzite").replace("'F m -3 m'", "'P 63 m c'")
WURTZITE_ZNO = (
    WURTZITE_ZNO.replace("a 4.271", "a 3.2498")
    .replace("b 4.271", "b 3.2498")
    .replace("c 4.271", "c 5.2066")
    .replace("gamma 90", "gamma 120")
    .replace("Zn1 Zn 0 0 0\nO1 O 0.5 0.5 0.5", "Zn1 Zn 0.3333333 0.6666667 0\nO1 O 0.3333333 0.6666667 0.3817")
)


def test_a_cif_of_several_structures_is_quarantined_naming_its_blocks_not_read_as_its_first(store, tmp_path):
    (tmp_path / "zno.cif").write_text(ROCKSALT_ZNO + WURTZITE_ZNO, encoding="utf-8")
    metadata = "data_global\n_publ_section_title 'ZnO polymorphs'\n"  # a block of no structure beside one
    rows = pd.DataFrame(
        {
            "sample": ["text", "file", "one"],
            "formula": ["ZnO"] * 3,
            "gap": ["3.3"] * 3,
            "structure": [ROCKSALT_ZNO + WURTZITE_ZNO, "zno.cif", metadata + WURTZITE_ZNO],
        }
    )
    data, mapping = _write(tmp_path, rows.to_csv(index=False), STRUCTURE_MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (1, 2)
    reason = "column 'structure': the CIF holds 2 structures (data_rocksalt, data_wurtzite): give one per row"
    assert store.query("SELECT item, reasons[1] FROM quarantine ORDER BY item").values.tolist() == [
        ["file", reason],
        ["text", reason],
    ]
    stored = read_structure(store.table("materials").set_index("source_id").loc["one", "structure"])
    assert stored.lattice.c == pytest.approx(5.2066)  # the wurtzite cell


NACL_POSCAR = "NaCl\n5.64\n1 0 0\n0 1 0\n0 0 1\n{species}1 1\n{mode}\n0 0 0{na}\n0.5 0.5 0.5{cl}\n"


def test_a_poscar_naming_no_species_is_quarantined_saying_so_not_read_as_hydrogen_and_helium(store, tmp_path):
    poscars = {
        "vasp4": NACL_POSCAR.format(species="", mode="Direct", na="", cl=""),  # pymatgen makes them H and He
        "vasp4-labelled": NACL_POSCAR.format(species="", mode="Direct", na=" Na", cl=" Cl"),  # pymatgen reads these
        "all-free": NACL_POSCAR.format(species="Na Cl\n", mode="Selective dynamics\nDirect", na=" T T T", cl=" T T T"),
        "short-line": NACL_POSCAR.format(species="Na Cl\n", mode="Direct", na="", cl="").replace("0.5 0.5 0.5", "0.5"),
    }
    rows = pd.DataFrame(
        {"sample": list(poscars), "formula": ["NaCl"] * 4, "gap": ["8.5"] * 4, "structure": list(poscars.values())}
    )
    data, mapping = _write(tmp_path, rows.to_csv(index=False), STRUCTURE_MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (2, 2)
    materials = store.table("materials").set_index("source_id")
    assert all(read_structure(materials.loc[sample, "structure"]) == NACL for sample in ("vasp4-labelled", "all-free"))
    assert store.query("SELECT item, reasons[1] FROM quarantine ORDER BY item").values.tolist() == [
        [
            "short-line",
            "column 'structure': not a crystal structure (CIF, POSCAR, pymatgen JSON or a file of one): "
            "Cannot parse coordinates on this line:",
        ],
        ["vasp4", "column 'structure': POSCAR names no species (VASP 4 format): add the species line"],
    ]


def _nacl_json(edit: Callable[[dict], object]) -> str:
    """NaCl's pymatgen JSON (`Structure.as_dict()`), edited."""
    document = NACL.as_dict()
    edit(document)
    return json.dumps(document)


def test_a_structure_whose_cell_or_document_would_not_read_back_is_quarantined_naming_why(store, tmp_path):
    """A structure read by pymatgen is held to the checks of a source's cell: a lattice vector of 2e154 Å (the root of
    its entries' squares' sum past a float: pymatgen read it, warning of numpy's overflow, and the row was quarantined
    as 'its sites are not pymatgen's'), a cell of no volume (was stored); and pymatgen JSON to the rules of a source's
    such document: a charge given as text (its writing failed: a row 'not in the form the mapping reads'), a moment
    on one site alone (stored with a null added: pymatgen warns as it reads it), lattice lengths not the matrix's and
    a matrix entry given as text (stored as pymatgen read them: the matrix, the text's number). What pymatgen reads
    back as given without a warning is stored: a periodicity of 0 and 1 flags (read as booleans), site properties."""
    poscar = NACL_POSCAR.format(species="Na Cl\n", mode="Direct", na="", cl="")
    tagged = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]], site_properties={"m": [1, 2]})
    structures = {
        "long-poscar": poscar.replace("\n1 0 0\n", "\n2e154 0 0\n"),
        "long-cif": ROCKSALT_ZNO.replace("_cell_length_a 4.271", "_cell_length_a 2e154"),
        "flat-poscar": poscar.replace("\n0 0 1\n", "\n0 1 0\n"),
        "charge": _nacl_json(lambda document: document.update(charge="1.5")),
        "moment": _nacl_json(lambda document: document["sites"][0].update(properties={"magmom": 1.0})),
        "length": _nacl_json(lambda document: document["lattice"].update(a=4.6)),
        "text": _nacl_json(lambda document: document["lattice"]["matrix"][0].__setitem__(0, "5.64")),
        "tagged": json.dumps(tagged.as_dict()),
        "flags": _nacl_json(lambda document: document["lattice"].update(pbc=[1, 1, 1])),
    }
    formulas = {"long-cif": "ZnO"}
    rows = pd.DataFrame(
        {
            "sample": list(structures),
            "formula": [formulas.get(sample, "NaCl") for sample in structures],
            "gap": ["8.5"] * len(structures),
            "structure": list(structures.values()),
        }
    )
    data, mapping = _write(tmp_path, rows.to_csv(index=False), STRUCTURE_MAPPING)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = import_file(store, data, mapping)
        assert (report.n_stored, report.n_quarantined) == (2, 7)
        stored = dict(store.query("SELECT source_id, structure FROM materials").values.tolist())
        assert read_structure(stored["tagged"]).site_properties == {"m": [1, 2]}
        assert read_structure(stored["flags"]) == NACL and json.loads(stored["flags"])["lattice"]["pbc"] == [True] * 3
    too_long = (
        "the lattice vectors are too long: working out the length of vector 1 (the sum of its entries' squares, as "
        "pymatgen reads it) passes the largest number (about 1.8e308) in Å^2"
    )
    assert dict(store.query("SELECT item, reasons[1] FROM quarantine").values.tolist()) == {
        "long-poscar": f"column 'structure': POSCAR: {too_long}",
        "long-cif": f"column 'structure': CIF data_rocksalt: {too_long}",
        "flat-poscar": "column 'structure': POSCAR: the lattice vectors span no volume",
        "charge": "column 'structure': pymatgen JSON: charge '1.5' is not a finite number",
        "moment": (
            "column 'structure': pymatgen JSON: site 2 has no 'magmom', which site 1's properties have: pymatgen would "
            "read it back as null, warning"
        ),
        "length": (
            "column 'structure': pymatgen JSON: lattice a 4.6 is not its matrix's, 5.64 Å (pymatgen reads the matrix "
            "alone)"
        ),
        "text": "column 'structure': pymatgen JSON: lattice entry '5.64' is not a number",
    }


def test_a_pymatgen_json_structures_null_moment_beside_sites_with_one_is_stored_as_given(store, tmp_path):
    """pymatgen writes a null magmom for a site without one beside sites with one (Structure.from_sites), and reads
    it back as it is: the row is stored with it."""
    moments = Structure(NACL.lattice, NACL.species, NACL.frac_coords, site_properties={"magmom": [1.0, None]})
    rows = pd.DataFrame({"sample": ["m"], "formula": ["NaCl"], "gap": ["8.5"], "structure": [moments.to_json()]})
    data, mapping = _write(tmp_path, rows.to_csv(index=False), STRUCTURE_MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (1, 0)
    [text] = store.table("materials")["structure"]
    assert [site["properties"] for site in json.loads(text)["sites"]] == [{"magmom": 1.0}, {"magmom": None}]


def test_a_json_lab_files_structure_given_as_an_object_is_read_as_pymatgen_json(store, tmp_path):
    records = [
        {"sample": "object", "formula": "NaCl", "gap": 8.5, "structure": NACL.as_dict()},  # Structure.as_dict()
        {"sample": "text", "formula": "NaCl", "gap": 8.5, "structure": NACL.to_json()},
        {"sample": "no-structure", "formula": "NaCl", "gap": 8.5, "structure": {"a": 5.64, "atoms": ["Na", "Cl"]}},
    ]
    (tmp_path / "lab.json").write_text(json.dumps(records), encoding="utf-8")
    (tmp_path / "m.yaml").write_text(STRUCTURE_MAPPING, encoding="utf-8")
    report = import_file(store, tmp_path / "lab.json", tmp_path / "m.yaml")
    assert (report.n_stored, report.n_quarantined) == (2, 1)
    materials = store.table("materials").set_index("source_id")
    assert all(read_structure(materials.loc[sample, "structure"]) == NACL for sample in ("object", "text"))
    assert store.query("SELECT item, reasons[1] FROM quarantine").values.tolist() == [
        [
            "no-structure",
            "column 'structure': not a crystal structure (CIF, POSCAR, pymatgen JSON or a file of one): a JSON object "
            "without the 'lattice' and 'sites' of a pymatgen Structure (Structure.as_dict())",
        ]
    ]


def test_per_cell_values_of_a_partly_occupied_structure_are_divided_by_its_atoms(store, tmp_path):
    # Half the Cl sites vacant: 4 sites, 3 atoms by occupancy; a moment of 1.5 bohr magneton per cell is 0.5 per atom.
    disordered = Structure(
        Lattice.cubic(5.64),
        ["Na", "Na", {"Cl": 0.5}, {"Cl": 0.5}],
        [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0.5, 0.5], [0, 0, 0.5]],
    )
    mapping = STRUCTURE_MAPPING.replace(
        "gap: {property: band_gap, unit: eV}", "moment: {property: magnetic_moment, unit: bohr_magneton/cell}"
    )
    rows = pd.DataFrame({"sample": ["x"], "formula": ["Na2Cl"], "moment": ["1.5"], "structure": [disordered.to_json()]})
    data, mapping = _write(tmp_path, rows.to_csv(index=False), mapping)
    assert import_file(store, data, mapping).n_stored == 1
    value = store.query("SELECT value, unit, original_value FROM properties").iloc[0]
    assert (value.value, value.unit, value.original_value) == (pytest.approx(0.5), "bohr_magneton/atom", 1.5)
    assert store.table("materials")["nsites"].tolist() == [4]


def test_a_structure_of_another_composition_than_the_rows_formula_is_quarantined(store, tmp_path):
    (tmp_path / "nacl.cif").write_text(str(CifWriter(NACL)), encoding="utf-8")
    rows = "sample,formula,gap,structure\nk,KCl,8.4,nacl.cif\nna,NaCl,8.5,nacl.cif\nvacant,Na0.97Cl,8.5,nacl.cif\n"
    data, mapping = _write(tmp_path, rows, STRUCTURE_MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (2, 1)  # Na0.97Cl: within the tolerance of occupancies
    assert sorted(store.table("materials")["source_id"]) == ["na", "vacant"]
    reason = store.query("SELECT item, reasons FROM quarantine").values.tolist()
    assert [[item, list(reasons)] for item, reasons in reason] == [
        ["k", ["column 'structure': the structure is NaCl, not KCl (column 'formula')"]]
    ]


def test_a_structure_beside_a_formula_stating_a_liquid_gas_or_solute_is_quarantined_naming_the_state(store, tmp_path):
    # a crystal structure contradicts such a state: NaCl(l) with a rock-salt cell was stored as the liquid's
    (tmp_path / "nacl.cif").write_text(str(CifWriter(NACL)), encoding="utf-8")
    rows = "sample,formula,gap,structure\ncr,NaCl(cr),8.5,nacl.cif\nmelt,NaCl(l),8.5,nacl.cif\n"
    rows += "vapour,NaCl (g),8.5,nacl.cif\nbrine,NaCl(aq),8.5,nacl.cif\nmelt-only,NaCl(l),8.5,\n"
    data, mapping = _write(tmp_path, rows, STRUCTURE_MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (2, 3)
    stored = "SELECT source_id, phase, structure IS NOT NULL FROM materials ORDER BY 1"
    assert store.query(stored).values.tolist() == [["cr", "cr", True], ["melt-only", "l", False]]
    reasons = dict(store.query("SELECT item, reasons[1] FROM quarantine").values.tolist())
    crystal = "a structure is a crystal's: clear the structure cell, or the formula's state"
    assert reasons == {
        "melt": f"column 'structure': 'NaCl(l)' (column 'formula') states a liquid (l); {crystal}",
        "vapour": f"column 'structure': 'NaCl (g)' (column 'formula') states a gas (g); {crystal}",
        "brine": f"column 'structure': 'NaCl(aq)' (column 'formula') states an aqueous solute (aq); {crystal}",
    }


# Published structure datasets as distributed: AFLOW's ',cif,bulk_modulus' (a blank-headed index, no formula column)
# and MP-20's table with a CIF and a space group number per row (`fixtures/lab_files/SOURCES.md`).
AFLOW_ROWS = (LAB_FILES / "aflow_bulk_modulus.csv").read_text(encoding="utf-8")  # 29605: Y2Si2 cell, 43296: Cu2O2
AFLOW_MAPPING = """dataset: aflow-moduli
id_column: "Unnamed: 0"
structure_column: cif
provenance: dft
method: PBE
citation: AFLOW AEL bulk moduli
columns:
  bulk_modulus: {unit: GPa}
"""
NO_STRUCTURE = "no structure in column 'cif', which gives the row's formula (the mapping has no formula_column)"
MP_20_ROWS = pd.read_csv(LAB_FILES / "mp_20_biternary.csv", dtype=str, keep_default_na=False)  # SnO (31), VS (194)
MP_20_MAPPING = """dataset: mp-20
id_column: material_id
structure_column: cif
spacegroup_column: spacegroup.number
provenance: dft
citation: MP-20
columns:
  formation_energy_per_atom: {unit: eV/atom}
  band_gap: {unit: eV}
"""


def _mp_20_file(tmp_path: Path, copies: dict[str, str], vs_spacegroup: str = "194") -> tuple[Path, Path]:
    """MP-20's two rows, VS with `vs_spacegroup`, and a copy of VS's row for each of `copies` (id: its space group
    cell), written as lab.csv with MP_20_MAPPING."""
    rows = MP_20_ROWS.assign(**{"spacegroup.number": ["31", vs_spacegroup]})
    copied = [
        rows.iloc[[1]].assign(material_id=sample, **{"spacegroup.number": cell}) for sample, cell in copies.items()
    ]
    return _write(tmp_path, pd.concat([rows, *copied]).to_csv(index=False), MP_20_MAPPING)


def _open_reasons(store) -> dict[str, str]:
    return dict(store.query("SELECT item, reasons[1] FROM open_quarantine").values.tolist())


def test_without_a_formula_column_each_rows_formula_is_its_structures_reduced_and_a_row_without_one_quarantined(
    store, tmp_path
):
    data, mapping = _write(tmp_path, AFLOW_ROWS + "7,,100.0\n", AFLOW_MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_fetched, report.n_stored, report.n_values, report.n_quarantined) == (3, 2, 2, 1)
    materials = store.query("SELECT source_id, formula, formula_original, nsites FROM materials ORDER BY 1")
    assert materials.values.tolist() == [["29605", "YSi", "YSi", 4], ["43296", "CuO", "CuO", 4]]  # per formula unit
    assert _stored(store) == [["29605", "bulk_modulus", 89.9409], ["43296", "bulk_modulus", 147.555]]
    assert _open_reasons(store) == {"7": NO_STRUCTURE}
    again = import_file(store, data, mapping)  # the file unchanged: its records and its quarantined row as they were
    assert (again.n_stored, again.n_unchanged, again.n_quarantined) == (2, 2, 1)
    assert len(store.table("quarantine")) == 1


def test_a_mapping_with_neither_a_formula_nor_a_structure_column_is_refused(tmp_path):
    _, mapping = _write(tmp_path, "", AFLOW_MAPPING.replace("structure_column: cif\n", ""))
    with pytest.raises(ConfigError, match="no formula_column: name the column of the rows' formulas, or a "):
        load_mapping(mapping)


def test_without_formula_or_id_column_a_rejected_row_keeps_the_last_valid_read_of_its_place_as_its_structures(
    store, tmp_path
):
    data, mapping = _write(tmp_path, AFLOW_ROWS, AFLOW_MAPPING.replace('id_column: "Unnamed: 0"\n', ""))
    import_file(store, data, mapping)
    data.write_text(AFLOW_ROWS.replace(",147.555", ",bad"), encoding="utf-8")  # CuO's value mistyped in place
    assert import_file(store, data, mapping).n_withdrawn == 0
    assert _stored(store) == [["lab.csv:row-2", "bulk_modulus", 89.9409], ["lab.csv:row-3", "bulk_modulus", 147.555]]


def test_a_spacegroup_column_gives_each_row_its_number_and_a_cell_that_is_none_quarantines_the_row(store, tmp_path):
    cells = {"hex": "P6_3mc", "half": "12.5", "x": "x", "over": "231", "zero": "0", "pandas": "194.0", "blank": ""}
    data, mapping = _mp_20_file(tmp_path, cells)
    connector = LabConnector(data, load_mapping(mapping))
    assert connector.unmapped_columns == ["Unnamed: 0", "pretty_formula", "e_above_hull", "elements"]
    report = run_ingest(connector, store)
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (9, 4, 5)
    materials = store.query("SELECT source_id, formula, spacegroup_number FROM materials ORDER BY 1")
    assert materials.astype(object).where(materials.notna(), None).values.tolist() == [
        ["blank", "VS", None],
        ["mp-33031", "VS", 194],  # the formula the file's pretty_formula gives
        ["mp-545552", "SnO", 31],
        ["pandas", "VS", 194],  # '194.0': a whole number as pandas writes one in a column with blanks
    ]
    not_one = "is not a space group number (1 to 230)"
    assert _open_reasons(store) == {
        "hex": f"column 'spacegroup.number': 'P6_3mc' {not_one}",
        "half": f"column 'spacegroup.number': '12.5' {not_one}",
        "x": f"column 'spacegroup.number': 'x' {not_one}",
        "over": f"column 'spacegroup.number': '231' {not_one}",
        "zero": f"column 'spacegroup.number': '0' {not_one}",
    }


def test_an_edited_space_group_is_a_changed_record_and_a_changed_quarantined_row_another_input(store, tmp_path):
    data, mapping = _mp_20_file(tmp_path, {"x": "x"})
    import_file(store, data, mapping)
    again = import_file(store, data, mapping)
    assert (again.n_stored, again.n_unchanged, len(store.table("quarantine"))) == (2, 2, 1)
    data, mapping = _mp_20_file(tmp_path, {"x": "y"}, vs_spacegroup="186")
    edited = import_file(store, data, mapping)
    assert (edited.n_stored, edited.n_unchanged) == (2, 1)
    spacegroups = store.query("SELECT source_id, spacegroup_number FROM materials ORDER BY 1").values.tolist()
    assert spacegroups == [["mp-33031", 186], ["mp-545552", 31]]
    assert len(store.table("quarantine")) == 2  # the row now says 'y': another input than the row that said 'x'
    assert _open_reasons(store) == {"x": "column 'spacegroup.number': 'y' is not a space group number (1 to 230)"}


def test_an_aflow_file_as_distributed_is_imported_through_the_cli(run, store, tmp_path):
    data = tmp_path / "bulk_modulus" / "test.csv.gz"  # as AFLOW's splits are distributed: ',cif,bulk_modulus'
    data.parent.mkdir()
    data.write_bytes(gzip.compress((AFLOW_ROWS + "7,,100.0\n").encode("utf-8")))
    mapping = tmp_path / "aflow.yaml"
    mapping.write_text(AFLOW_MAPPING, encoding="utf-8")
    result = run("import", str(data), "-m", str(mapping))
    assert result.exit_code == 0, result.output
    assert "read 3, 2 valid records (2 values): 2 written; quarantined 1" in result.stdout
    assert NO_STRUCTURE in result.stdout
    query = "SELECT m.formula, p.value, p.unit, p.provenance FROM properties p JOIN materials m USING (record_id)"
    assert store.query(query + " ORDER BY 1").values.tolist() == [
        ["CuO", 147.555, "GPa", "dft"],
        ["YSi", 89.9409, "GPa", "dft"],
    ]
    again = run("import", str(data), "-m", str(mapping))
    assert "read 3, 2 valid records (2 values): 0 written, 2 already stored unchanged; quarantined 1" in again.stdout


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_compressed_csv_files_are_read(store, tmp_path, suffix):
    data, mapping = _write(tmp_path, "formula,dHf,Cp\nH2O,-285.83,75.351\n", MAPPING)
    packed = tmp_path / f"lab.csv{suffix}"
    packed.write_bytes(COMPRESS[suffix](data.read_bytes()))
    assert import_file(store, packed, mapping).n_stored == 1
    with pytest.raises(ConfigError, match=r"unsupported file type '\.json\.gz'"):
        LabConnector(tmp_path / "lab.json.gz", load_mapping(mapping))


def test_rows_without_an_id_column_are_told_apart_by_file(store, tmp_path):
    mapping = "dataset: gaps\nformula_column: formula\ncitation: c\ncolumns:\n  gap: {property: band_gap, unit: eV}\n"
    first, mapping_path = _write(tmp_path, "formula,gap\nZnO,3.3\nGaN,3.4\n", mapping)
    second = tmp_path / "second.csv"
    second.write_text("formula,gap\nCdTe,1.5\nInP,1.34\n", encoding="utf-8")
    import_file(store, first, mapping_path)
    import_file(store, second, mapping_path)
    materials = store.query("SELECT record_id, formula FROM materials ORDER BY record_id").values.tolist()
    assert materials == [
        ["gaps:lab.csv:row-2", "ZnO"],
        ["gaps:lab.csv:row-3", "GaN"],
        ["gaps:second.csv:row-2", "CdTe"],
        ["gaps:second.csv:row-3", "InP"],
    ]


def test_a_row_with_an_empty_id_is_quarantined(store, tmp_path):
    mapping = _mapping_head("gaps")
    mapping += "  gap: {property: band_gap, unit: eV}\n"
    data, mapping_path = _write(tmp_path, "id,formula,gap\ns1,ZnO,3.3\n ,CdS,2.4\n", mapping)
    report = import_file(store, data, mapping_path)
    assert (report.n_stored, report.n_quarantined) == (1, 1)
    assert store.query("SELECT item, reasons FROM quarantine").values.tolist()[0][0] == "line 3"
    assert list(store.query("SELECT reasons FROM quarantine").iloc[0, 0]) == ["no id in column 'id'"]


def test_whole_number_ids_of_a_json_file_stay_whole_when_one_is_missing(store, tmp_path):
    mapping = _mapping_head("gaps")
    mapping += "  gap: {property: band_gap, unit: eV}\n"
    data = tmp_path / "lab.json"
    data.write_text('[{"id": 1, "formula": "ZnO", "gap": 3.3}, {"id": 3, "formula": "GaN", "gap": 3.4}]')
    (tmp_path / "m.yaml").write_text(mapping, encoding="utf-8")
    import_file(store, data, tmp_path / "m.yaml")
    data.write_text('[{"id": 1, "formula": "ZnO", "gap": 3.3}, {"id": null, "formula": "GaN", "gap": 3.4}]')
    report = import_file(store, data, tmp_path / "m.yaml")
    assert report.n_unchanged == 1 and report.n_quarantined == 1
    written = store.query("SELECT DISTINCT record_id FROM material_writes ORDER BY 1")["record_id"].tolist()
    assert written == ["gaps:1", "gaps:3"]  # (gaps:3 withdrawn, its row quarantined: no longer in materials)
    assert store.query("SELECT record_id FROM materials")["record_id"].tolist() == ["gaps:1"]


def test_a_csv_saved_with_a_byte_order_mark_is_read(store, tmp_path):
    mapping = _mapping_head("gaps")
    mapping += "  gap: {property: band_gap, unit: eV}\n"
    data, mapping_path = _write(tmp_path, "", mapping)
    data.write_bytes(b"\xef\xbb\xbfid,formula,gap\ns1,ZnO,3.3\n")  # Excel's "CSV UTF-8"
    assert import_file(store, data, mapping_path).n_stored == 1
    assert store.query("SELECT record_id FROM materials").iloc[0, 0] == "gaps:s1"


def test_two_columns_giving_one_property_at_the_same_conditions_are_refused(tmp_path):
    mapping = (
        "dataset: gaps\nformula_column: formula\ncitation: c\ncolumns:\n"
        "  Eg_direct: {property: band_gap, unit: eV, temperature_K: 300}\n"
        "  Eg_indirect: {property: band_gap, unit: eV, temperature_K: 300}\n"
    )
    _, mapping_path = _write(tmp_path, "", mapping)
    with pytest.raises(ConfigError, match="columns Eg_direct, Eg_indirect all give 'band_gap' at the same conditions"):
        load_mapping(mapping_path)


def test_a_column_given_a_temperature_and_a_temperature_column_is_refused(tmp_path):
    mapping = MAPPING.replace("temperature_K: 298.15", "temperature_K: 298.15, temperature_field: T")
    _, mapping_path = _write(tmp_path, "", mapping)
    with pytest.raises(ConfigError, match="at most one of 'temperature_K' or 'temperature_field'"):
        load_mapping(mapping_path)


def test_a_row_giving_one_property_twice_at_its_temperature_is_quarantined(store, tmp_path):
    mapping = (
        "dataset: gaps\nformula_column: formula\ncitation: c\ncolumns:\n"
        "  Eg_300: {property: band_gap, unit: eV, temperature_K: 300}\n"
        "  Eg: {property: band_gap, unit: eV, temperature_field: T}\n"
    )
    data, mapping_path = _write(tmp_path, "formula,Eg_300,Eg,T\nGaAs,1.42,1.43,300\nSi,1.12,1.17,4\n", mapping)
    report = import_file(store, data, mapping_path)
    assert (report.n_stored, report.n_values, report.n_quarantined) == (1, 2, 1)
    assert list(store.query("SELECT reasons FROM quarantine").iloc[0, 0]) == [
        "columns Eg_300 and Eg both give band_gap at the same conditions"
    ]


def test_two_columns_of_one_property_by_two_spellings_of_one_method_are_one_key(store, tmp_path):
    mapping = (
        "dataset: gaps\nformula_column: formula\ncitation: c\nprovenance: dft\ncolumns:\n"
        "  gap_a: {property: band_gap, unit: eV, method: GGA+U}\n"
        "  gap_b: {property: band_gap, unit: eV, method: PBE+U}\n"  # the vocabulary's name of GGA+U
    )
    _, mapping_path = _write(tmp_path, "", mapping)
    refused = "line 7: columns.gap_b: Value error, columns gap_a, gap_b all give 'band_gap' at the same conditions"
    with pytest.raises(ConfigError, match=re.escape(refused)):
        load_mapping(mapping_path)
    at_300 = mapping.replace("GGA+U}", "GGA+U, temperature_K: 300}").replace("PBE+U}", "PBE+U, temperature_field: T}")
    data, mapping_path = _write(tmp_path, "formula,gap_a,gap_b,T\nNiO,2.4,2.5,300\nCoO,2.4,2.5,4\n", at_300)
    report = import_file(store, data, mapping_path)
    assert (report.n_stored, report.n_values, report.n_quarantined) == (1, 2, 1)
    assert list(store.query("SELECT reasons FROM quarantine").iloc[0, 0]) == [
        "columns gap_a and gap_b both give band_gap by PBE+U at the same conditions"
    ]


GAP_MAPPING = (
    "dataset: gaps\nformula_column: formula\nid_column: id\ncitation: c\n"
    "columns:\n  gap: {property: band_gap, unit: eV}\n  rho: {property: density, unit: g/cm^3}\n"
)


def _gap_files(tmp_path: Path, *files: tuple[str, str]) -> list[Path]:
    """Lab files (name, rows under the header id,formula,gap,rho) of the GAP_MAPPING written as m.yaml."""
    (tmp_path / "m.yaml").write_text(GAP_MAPPING, encoding="utf-8")
    for name, rows in files:
        (tmp_path / name).write_text("id,formula,gap,rho\n" + rows, encoding="utf-8")
    return [tmp_path / name for name, _ in files]


def _stored(store):
    query = "SELECT m.source_id, p.property, p.value FROM properties p JOIN materials m USING (record_id) ORDER BY 1, 2"
    return store.query(query).values.tolist()


def test_a_separator_ending_every_line_shifts_no_column(store, tmp_path):
    data, mapping = _write(tmp_path, "id;formula;gap;rho\nS1;GaN;3.40;6.15;\nS2;ZnO;3.37;5.61;\n", GAP_MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (2, 0)
    assert _stored(store) == [
        ["S1", "band_gap", 3.4],
        ["S1", "density", 6.15],
        ["S2", "band_gap", 3.37],
        ["S2", "density", 5.61],
    ]


def test_a_row_with_more_cells_than_the_header_is_quarantined_with_the_reason(store, tmp_path):
    mapping = GAP_MAPPING + "name_column: note\n"
    data, mapping = _write(
        tmp_path, "id,formula,gap,rho,note\nS1,GaN,3.40,6.15,ok\nS2,ZnO,3.37,5.61,Smith, J.\n", mapping
    )
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (1, 1)
    reasons = store.query("SELECT item, reasons FROM quarantine").values.tolist()
    assert reasons[0][0] == "line 3"
    assert list(reasons[0][1]) == ["6 cells where the header names 5 (a ',' inside a value needs quotes)"]


def test_a_decimal_comma_in_a_file_whose_header_ends_in_a_separator_is_quarantined_not_shifted(store, tmp_path):
    text = "id,formula,gap,rho,\nS1,GaN,3.40,6.15,\nS2,ZnO,3,37,5.61,\nS3,CdS,2.42,4.82\n"  # S3: no trailing ','
    data, mapping = _write(tmp_path, text, GAP_MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (2, 1)
    assert not report.unmapped  # the stray '37' of S2 lands in no column
    reasons = store.query("SELECT item, reasons FROM quarantine").values.tolist()
    assert reasons[0][0] == "line 3"
    assert list(reasons[0][1]) == ["5 cells where the header names 4 (a ',' inside a value needs quotes)"]
    assert _stored(store) == [
        ["S1", "band_gap", 3.4],
        ["S1", "density", 6.15],
        ["S3", "band_gap", 2.42],
        ["S3", "density", 4.82],
    ]


def test_a_cell_with_text_after_its_closing_quote_is_quarantined_not_read_joined(store, tmp_path):
    """'"3.3"4' is no CSV cell: a lenient reading joins it into 3.34, a value no one wrote; the row goes to quarantine
    saying so (well-quoted cells are read as ever, spaces after a closing quote too)."""
    text = 'id,formula,gap,rho\nS1,GaN,"3.3"4,6.15\nS2,"ZnO",3.37,"5.61"\nS3,"CdS" ,"2.42"\t,4.82\n'
    data, mapping = _write(tmp_path, text, GAP_MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (2, 1)
    reasons = store.query("SELECT item, reasons FROM quarantine").values.tolist()
    assert reasons[0][0] == "line 2"
    assert list(reasons[0][1]) == [
        'text after a quoted cell\'s closing quote (a quote inside a quoted cell is written twice: "")'
    ]
    assert [row[0] for row in _stored(store)] == ["S2", "S2", "S3", "S3"]


@pytest.mark.parametrize(("name", "separator", "shown"), [("lab.csv", ";", "';'"), ("lab.tsv", "\t", "tab")])
def test_a_separator_in_a_value_is_quarantined_where_every_line_ends_in_one(store, tmp_path, name, separator, shown):
    rows = [["id", "formula", "gap", "rho", "note", ""], ["S1", "GaN", "3.40", "6.15", "MOCVD", ""]]
    rows += [["S2", "ZnO", "3.37", "5.61", "MOCVD", " annealed", ""]]  # 'MOCVD; annealed' without quotes
    (tmp_path / name).write_text("".join(separator.join(row) + "\n" for row in rows), encoding="utf-8")
    (tmp_path / "m.yaml").write_text(GAP_MAPPING + "name_column: note\n", encoding="utf-8")
    report = import_file(store, tmp_path / name, tmp_path / "m.yaml")
    assert (report.n_stored, report.n_quarantined, dict(report.unmapped)) == (1, 1, {})
    assert list(store.query("SELECT reasons FROM quarantine").iloc[0, 0]) == [
        f"6 cells where the header names 5 (a {shown} inside a value needs quotes)"
    ]


def test_columns_a_trailing_separator_adds_are_no_unmapped_fields_where_they_are_empty(store, tmp_path):
    data, mapping = _write(tmp_path, "id,formula,gap,rho,,\nS1,GaN,3.40,6.15,,\nS2,ZnO,3.37,5.61\n", GAP_MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined, dict(report.unmapped)) == (2, 0, {})


@pytest.mark.parametrize(
    ("name", "text", "gap"),
    [
        ("lab.csv", "id;formula;Eg (eV, 300 K);rho\nS1;GaN;3.40;6.15\n", "Eg (eV, 300 K)"),  # a comma in the header
        ("lab.tsv", "id\tformula\tEg (eV, 300 K)\trho\nS1\tGaN\t3.40\t6.15\n", "Eg (eV, 300 K)"),
        ("lab.csv", 'id,formula,"Eg (eV; 300 K)",rho\nS1,GaN,3.40,6.15\n', "Eg (eV; 300 K)"),
    ],
)
def test_the_separator_is_found_from_the_rows_not_the_header_alone(store, tmp_path, name, text, gap):
    (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "m.yaml").write_text(GAP_MAPPING.replace("  gap:", f"  {gap}:"), encoding="utf-8")
    import_file(store, tmp_path / name, tmp_path / "m.yaml")
    assert _stored(store) == [["S1", "band_gap", 3.4], ["S1", "density", 6.15]]


def test_a_quarantined_row_is_named_by_its_line_and_default_ids_count_rows_without_blank_lines(store, tmp_path):
    mapping = GAP_MAPPING.replace("id_column: id\n", "")
    data, mapping = _write(tmp_path, "id,formula,gap,rho\n\nS1,GaN,3.40,6.15\n\n,Qz,1,1\nS3,ZnO,3.37,\n", mapping)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (2, 1)
    assert store.query("SELECT item FROM quarantine").iloc[0, 0] == "line 5"
    materials = store.query("SELECT source_id, source_url FROM materials ORDER BY 1").values.tolist()
    assert materials == [["lab.csv:row-2", "file:lab.csv#line=3"], ["lab.csv:row-4", "file:lab.csv#line=6"]]


def test_a_column_named_twice_is_a_clear_error_and_unmapped_columns_are_reported(store, tmp_path):
    data, mapping = _write(tmp_path, "id,formula,gap,gap\nS1,GaN,3.40,3.2\n", GAP_MAPPING)
    with pytest.raises(ConfigError, match="column\\(s\\) named twice in the header: 'gap'"):
        LabConnector(data, load_mapping(mapping))
    pd.DataFrame([["S1", "GaN", "3.40", "3.2"]], columns=["id", "formula", "gap", "gap"]).to_excel(
        tmp_path / "lab.xlsx", index=False
    )
    with pytest.raises(ConfigError, match="column\\(s\\) named twice in the header: 'gap'"):
        LabConnector(tmp_path / "lab.xlsx", load_mapping(mapping))  # (pandas would read the second as 'gap.1')
    data.write_text("id,formula,gap,rho,Tm / °C\nS1,GaN,3.40,6.15,2500\nS2,ZnO,3.37,5.61,\n", encoding="utf-8")
    assert import_file(store, data, mapping).unmapped == {"Tm / °C": 1}


def test_a_blank_excel_row_is_no_row(store, tmp_path):
    rows = pd.DataFrame(
        {"id": ["S1", "", "S2"], "formula": ["GaN", "", "ZnO"], "gap": ["3.4", "", "3.37"], "rho": ["", "", ""]}
    )
    rows.to_excel(tmp_path / "lab.xlsx", index=False)
    (tmp_path / "m.yaml").write_text(GAP_MAPPING.replace("id_column: id\n", ""), encoding="utf-8")  # ids: rows
    report = import_file(store, tmp_path / "lab.xlsx", tmp_path / "m.yaml")
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (2, 2, 0)
    assert store.query("SELECT source_id, source_url FROM materials ORDER BY 1").values.tolist() == [
        ["lab.xlsx:row-2", "file:lab.xlsx#line=2"],
        ["lab.xlsx:row-3", "file:lab.xlsx#line=4"],
    ]


def test_a_row_without_an_id_column_never_replaces_another_material_under_its_file_and_line(store, tmp_path):
    mapping = GAP_MAPPING.replace("id_column: id\n", "").split("  rho:")[0]
    for folder, rows in (("a", "GaN,3.40\nZnO,3.37\nSi,1.12\n"), ("b", "CdTe,1.5\nZnO,3.3\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "data.csv").write_text("formula,gap\n" + rows, encoding="utf-8")
    (tmp_path / "m.yaml").write_text(mapping, encoding="utf-8")
    import_file(store, tmp_path / "a" / "data.csv", tmp_path / "m.yaml")
    report = import_file(store, tmp_path / "b" / "data.csv", tmp_path / "m.yaml", name="data.csv")  # "replace it"
    assert (report.n_stored, report.n_quarantined) == (1, 1)  # ZnO on line 3 again: the same material
    reason = store.query("SELECT reasons[1] FROM quarantine").iloc[0, 0]
    assert reason.startswith("gaps:data.csv:row-2 holds GaN from 'data.csv', this row CdTe: without an id_column")
    materials = store.query("SELECT source_id, formula FROM materials ORDER BY 1").values.tolist()
    assert materials == [["data.csv:row-2", "GaN"], ["data.csv:row-3", "ZnO"], ["data.csv:row-4", "Si"]]


def test_a_formula_cell_is_read_without_its_spaces_and_a_null_one_is_an_empty_formula(store, tmp_path):
    # `written_state` gives back a cell that states no state as it is, spaces included, one that does stripped: the
    # formula stored is the same (parse_formula strips it), and a null or blank cell (text '' as read) is no formula
    rows = [{"id": "a", "formula": " ZnO ", "gap": 3.3}, {"id": "b", "formula": " ZnO(s) ", "gap": 3.4}]
    rows += [{"id": "c", "formula": None, "gap": 3.3}, {"id": "d", "formula": "  ", "gap": 3.3}]
    (tmp_path / "lab.json").write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "m.yaml").write_text(GAP_MAPPING.split("  rho:")[0], encoding="utf-8")
    report = import_file(store, tmp_path / "lab.json", tmp_path / "m.yaml")
    assert (report.n_stored, report.n_quarantined) == (2, 2)
    stored = "SELECT source_id, formula, formula_original, phase FROM materials ORDER BY 1"
    assert store.query(stored).fillna("").values.tolist() == [["a", "ZnO", "ZnO", ""], ["b", "ZnO", "ZnO", "cr"]]
    assert dict(report.reasons) == {"empty formula": 2}


def test_a_formula_cell_of_a_missing_value_marker_is_an_empty_formula_as_a_blank_one_is(store, tmp_path):
    # the mapping's missing values mark a formula cell missing as written, spaces aside ('n/a', ' n/a '; '-999,0' for
    # -999 with a decimal comma, as a value cell; 'NaN' named as one is no sodium nitride): no formula to parse, as a
    # blank cell. In another case it is no marker ('N/A': a formula's case means something), and not read either
    mapping = GAP_MAPPING.split("  rho:")[0] + "decimal: ','\nmissing_values: ['n/a', '-999', 'NaN']\n"
    csv = "id;formula;gap\nS1;n/a;1,1\nS2; n/a ;1,2\nS3;-999,0;1,3\nS4;NaN;1,4\nS5;;1,5\nS6;ZnO;3,3\nS7;N/A;1,6\n"
    report = import_file(store, *_write(tmp_path, csv, mapping))
    assert (report.n_stored, report.n_quarantined) == (1, 6)
    assert dict(report.reasons) == {"empty formula": 5, "unparseable formula 'N/A'": 1}
    assert store.query("SELECT formula FROM materials").values.tolist() == [["ZnO"]]


def test_a_formula_cell_is_a_missing_value_only_in_the_markers_case_which_tells_sodium_from_na(store, tmp_path, caplog):
    # missing_values ['NA', 'ND'] mark a value cell 'na' or 'nd' missing in any case, but a formula cell only as
    # written: 'Na' is sodium and 'Nd' neodymium, stored, and a file holding them is no file in capitals only
    mapping = GAP_MAPPING + "missing_values: ['NA', 'ND']\n"
    csv = "id,formula,gap,rho\nS1,Na,na,0.97\nS2,Nd,ND,7.0\nS3,NA,1.1,\nS4, ND ,1.2,nd\nS5,CO,2.0,\n"
    with caplog.at_level("WARNING", logger="matreg"):
        report = import_file(store, *_write(tmp_path, csv, mapping))
    assert caplog.records == []  # 'CO' beside 'Na' and 'Nd' is a file in the usual case
    assert (report.n_stored, report.n_quarantined) == (3, 2)
    assert dict(report.reasons) == {"empty formula": 2}
    assert _stored(store) == [["S1", "density", 0.97], ["S2", "density", 7.0], ["S5", "band_gap", 2.0]]
    assert store.query("SELECT formula FROM materials ORDER BY 1").values.tolist() == [["CO"], ["Na"], ["Nd"]]


def test_name_cells_are_read_as_every_other_text_cell_blank_or_marked_missing_none_and_stripped(store, tmp_path):
    mapping = GAP_MAPPING.split("  rho:")[0] + "name_column: name\nmissing_values: ['n/a', '-999']\n"
    mapping += "extension: lab-sample\nextra_columns: {sample: sample_id, route: synthesis_route, instr: instrument}\n"
    cells = ["n/a", "", "   ", "-999", "  padded  ", "\xa0nbsp\xa0"]
    rows = "".join(f"S{i},GaN,3.4,{cell},s{i},CVD,{cell}\n" for i, cell in enumerate(cells, 1))
    data, mapping = _write(tmp_path, "id,formula,gap,name,sample,route,instr\n" + rows, mapping)
    assert import_file(store, data, mapping).n_stored == 6
    names = store.query("SELECT source_id, coalesce(name, 'NULL') FROM materials ORDER BY 1").values.tolist()
    assert names == [["S1", "NULL"], ["S2", "NULL"], ["S3", "NULL"], ["S4", "NULL"], ["S5", "padded"], ["S6", "nbsp"]]
    instruments = "SELECT record_id, value FROM record_attributes WHERE attribute = 'instrument' ORDER BY 1"
    assert store.query(instruments).values.tolist() == [["gaps:S5", "padded"], ["gaps:S6", "nbsp"]]


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_a_value_nearer_0_than_any_float_is_quarantined_not_stored_as_0(store, tmp_path, kind):
    cells = {"S1": "1e-400", "S2": "1.2x10^-400", "S3": "5e-324", "S4": "0e-400"}
    if kind == "csv":
        data = tmp_path / "lab.csv"
        data.write_text("id,formula,gap\n" + "".join(f"{i},GaN,{cell}\n" for i, cell in cells.items()), "utf-8")
    else:  # JSON numbers (Python's JSON reader reads 1e-400 as 0.0); a text cell is read as a CSV cell
        data = tmp_path / "lab.json"
        gaps = {i: json.dumps(cell) if "x" in cell else cell for i, cell in cells.items()}
        rows = [f'{{"id": "{i}", "formula": "GaN", "gap": {gap}}}' for i, gap in gaps.items()]
        data.write_text(f"[{', '.join(rows)}]", encoding="utf-8")
    (tmp_path / "m.yaml").write_text(GAP_MAPPING.split("  rho:")[0], encoding="utf-8")
    report = import_file(store, data, tmp_path / "m.yaml")
    assert (report.n_stored, report.n_quarantined) == (2, 2)
    stored = "SELECT m.source_id, p.value, p.original_value FROM properties p JOIN materials m USING (record_id)"
    assert store.query(stored + " ORDER BY 1").values.tolist() == [["S3", 5e-324, 5e-324], ["S4", 0.0, 0.0]]
    reasons = store.query("SELECT item, reasons[1] FROM quarantine ORDER BY 1").values.tolist()
    too_near_0 = "too near 0 for a float: '{}' would be stored as 0 (the smallest float is 5e-324)"
    assert reasons == [["S1", too_near_0.format("1e-400")], ["S2", too_near_0.format("1.2x10^-400")]]


def test_a_value_with_a_decimal_comma_is_quarantined_with_the_reason_it_is_no_value_as_written(store, tmp_path):
    cells = {"S1": "1,5e-400", "S2": "1,2x10^400", "S3": "about 1,5", "S4": "2,5"}
    rows = "".join(f"{i};GaN;{cell};6,15\n" for i, cell in cells.items())
    data, mapping = _write(tmp_path, "id;formula;gap;rho\n" + rows, GAP_MAPPING + "decimal: ','\n")
    assert import_file(store, data, mapping).n_values == 5
    payload = "json_extract_string(raw, '$.value'), coalesce(json_extract_string(raw, '$.problem'), 'none')"
    quarantined = store.query(f"SELECT item, reasons[1], {payload} FROM quarantine ORDER BY 1").values.tolist()
    too_near_0 = "too near 0 for a float: '1,5e-400' would be stored as 0 (the smallest float is 5e-324)"
    not_finite = "not a finite number: '1,2x10^400'"
    assert quarantined == [
        ["S1:band_gap", too_near_0, "1,5e-400", too_near_0],
        ["S2:band_gap", not_finite, "1,2x10^400", not_finite],
        ["S3:band_gap", "non-numeric value 'about 1,5'", "about 1,5", "none"],  # its payload (and id) as it was
    ]


def test_a_json_file_with_a_byte_order_mark_and_an_id_marked_missing(store, tmp_path):
    (tmp_path / "lab.json").write_bytes(
        '\ufeff[{"id": "S1", "formula": "GaN", "gap": 3.4}, {"id": " n/a ", "formula": "ZnO", "gap": 3.3}]'.encode()
    )
    (tmp_path / "m.yaml").write_text(GAP_MAPPING.split("  rho:")[0] + "missing_values: ['n/a']\n", encoding="utf-8")
    report = import_file(store, tmp_path / "lab.json", tmp_path / "m.yaml")
    assert (report.n_stored, report.n_quarantined) == (1, 1)
    assert dict(report.reasons) == {"no id in column 'id'": 1}


def test_cells_the_mapping_names_missing_are_no_measurement(store, tmp_path):
    mapping = GAP_MAPPING + "missing_values: ['n/a', '-']\n"
    data, mapping = _write(
        tmp_path, "id,formula,gap,rho\nS1,GaN,n/a,6.15\nS2,ZnO,3.37,-\nS3,CdS,about 2.4,-\n", mapping
    )
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_values, report.n_quarantined) == (2, 2, 1)  # S3: no value left
    assert _stored(store) == [["S1", "density", 6.15], ["S2", "band_gap", 3.37]]
    assert list(store.query("SELECT reasons FROM quarantine").iloc[0, 0]) == ["non-numeric value 'about 2.4'"]


def test_a_numeric_missing_value_marks_the_same_number_written_otherwise(store, tmp_path):
    mapping = GAP_MAPPING + "missing_values: ['-999', 'n/a']\n"
    rows = "id,formula,gap,rho\nS1,GaN,-999.0,6.15\nS2,ZnO,3.37,-999.00\nS3,CdS,-999,4.82\nS4,Si,-999.5,2.33\n"
    data, mapping = _write(tmp_path, rows, mapping)  # pandas' to_csv writes -999 in a float column as -999.0
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_values, report.n_quarantined) == (4, 4, 1)
    assert _stored(store) == [["S1", "density", 6.15], ["S2", "band_gap", 3.37], ["S3", "density", 4.82]] + [
        ["S4", "density", 2.33]
    ]
    assert store.query("SELECT reasons[1] FROM quarantine").iloc[0, 0] == (
        "band_gap = -999.5 eV is outside the physical bounds [0, 30]"
    )


def test_missing_markers_match_in_any_case_and_spacing(store, tmp_path):
    data, mapping = _write(
        tmp_path,
        "id,formula,gap,rho\nS1,GaN,na,6.15\nS2,ZnO,3.37, Na \nS3,CdS,N/A,4.82\nna,Si,1.12,2.33\n",
        GAP_MAPPING + "missing_values: ['NA ']\n",
    )
    report = import_file(store, data, mapping)
    assert _stored(store) == [["S1", "density", 6.15], ["S2", "band_gap", 3.37], ["S3", "density", 4.82]]
    reasons = store.query("SELECT item, reasons[1] FROM quarantine ORDER BY item").values.tolist()
    assert reasons == [["S3:band_gap", "non-numeric value 'N/A'"], ["line 5", "no id in column 'id'"]]
    assert report.n_quarantined == 2  # 'N/A' is another text than 'NA': a marker of its own


EU_ROWS = "id;formula;gap;rho;T\nS1;GaN;3,40;6,15;26,85\nS2;ZnO;1,234;-999,0;25\nS3;CdS;2,42;4.82;25\n"
EU_MAPPING = GAP_MAPPING.replace("unit: eV}", "unit: eV, temperature_field: T, temperature_unit: degC}")


def test_decimal_commas_are_refused_with_the_declaration_to_make_and_read_once_declared(store, tmp_path):
    data, mapping = _write(tmp_path, EU_ROWS, EU_MAPPING + "missing_values: ['-999']\n")
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (0, 3)  # '1,234': neither 1234 nor 1.234 by guess
    reasons = dict(store.query("SELECT item, reasons[1] FROM quarantine").values)
    assert reasons["S2"] == (
        "column 'gap': '1,234' has a comma (a decimal comma or a thousands separator? not guessed): declare "
        "`decimal: ','` in the mapping for decimal commas, else write the number without thousands separators"
    )
    mapping.write_text(EU_MAPPING + "missing_values: ['-999']\ndecimal: ','\n", encoding="utf-8")
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (2, 1)
    assert _stored(store) == [["S1", "band_gap", 3.4], ["S1", "density", 6.15], ["S2", "band_gap", 1.234]]  # S2: -999
    kelvin = store.query("SELECT temperature_K FROM properties WHERE property = 'band_gap' ORDER BY 1")
    assert kelvin["temperature_K"].tolist() == [298.15, 300.0]  # '26,85' °C
    reason = store.query("SELECT reasons[1] FROM open_quarantine").iloc[0, 0]
    assert reason.startswith("column 'rho': '4.82' has a period where the mapping declares decimal commas")


def test_a_missing_marker_written_with_a_decimal_comma_marks_the_number(store, tmp_path):
    rows = "id;formula;gap;rho\nS1;GaN;3,40;-999\nS2;ZnO;3,37;-999,00\nS3;CdS;2,42;-999,0\n"
    data, mapping = _write(tmp_path, rows, GAP_MAPPING + "missing_values: ['-999,0']\ndecimal: ','\n")
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_values, report.n_quarantined) == (3, 3, 0)  # no density of -999 g/cm^3
    assert {row[1] for row in _stored(store)} == {"band_gap"}


def test_units_written_as_papers_write_them_are_read(store, tmp_path):
    mapping = "dataset: thermo\nformula_column: formula\ncitation: c\ncolumns:\n"
    mapping += "  dHf: {property: formation_energy_per_atom, unit_field: unit}\n"
    mapping += "  rho: {property: density, unit: g cm-3}\n"
    rows = "formula,dHf,unit,rho\nH2O,-285.83,kJ mol-1,1.0\nNaCl,-411.2,kJ mol\u22121,2.16\nMgO,-601.6,\u2103,3.58\n"
    data, mapping = _write(tmp_path, rows, mapping)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_values, report.n_quarantined) == (3, 5, 1)  # 'kJ mol−1' is no kJ*mol
    values = store.query(
        "SELECT m.formula, p.value FROM properties p JOIN materials m USING (record_id) "
        "WHERE p.property = 'formation_energy_per_atom' ORDER BY 1"
    ).values.tolist()
    assert values == [["H2O", pytest.approx(-0.98747, abs=1e-5)], ["NaCl", pytest.approx(-2.13089, abs=1e-5)]]
    reason = store.query("SELECT reasons[1] FROM quarantine").iloc[0, 0]
    assert reason == "cannot convert '\u2103' to 'eV/atom' (incompatible dimensions)"  # a temperature, not a crash


def test_units_as_scientists_abbreviate_them_are_read(store, tmp_path):
    mapping = _mapping_head("abbreviated")
    mapping += "  S: {property: entropy, unit_field: S_unit}\n"
    mapping += "  E: {property: total_energy_per_atom, unit_field: E_unit}\n"
    mapping += "  V: {property: volume_per_atom, unit: \u00c5^3/at, pressure_field: P, pressure_unit: Torr}\n"
    rows = "id,formula,S,S_unit,E,E_unit,V,P\n"
    rows += "S1,MgO,26.95,J/mol*K,-0.5,Ha/atom,9.35,760\nS2,MgO,6.44,e.u.,-6.0,eV/at,,\n"
    rows += "S3,MgO,0.67,J/(g*K),,,,\n"
    report = import_file(store, *_write(tmp_path, rows, mapping))
    assert (report.n_stored, report.n_values, report.n_quarantined) == (3, 6, 0)
    query = (
        "SELECT m.source_id, p.property, p.value, p.original_unit, coalesce(p.pressure_Pa, -1) FROM properties p "
        "JOIN materials m USING (record_id) ORDER BY 1, 2"
    )
    assert store.query(query).values.tolist() == [
        ["S1", "entropy", 26.95, "J/mol*K", -1.0],  # per mole and kelvin, not J*K/mol
        ["S1", "total_energy_per_atom", pytest.approx(-13.605693), "Ha/atom", -1.0],
        ["S1", "volume_per_atom", 9.35, "\u00c5^3/at", pytest.approx(101325.0)],  # per atom, at 760 Torr
        ["S2", "entropy", pytest.approx(6.44 * 4.184), "e.u.", -1.0],  # the entropy unit, cal/(mol*K)
        ["S2", "total_energy_per_atom", -6.0, "eV/at", -1.0],
        ["S3", "entropy", pytest.approx(0.67 * 40.3044, rel=1e-9), "J/(g*K)", -1.0],  # per mass: MgO's 40.3044 g/mol
    ]


DSC_MAPPING = """dataset: dsc-lab
formula_column: formula
id_column: id
citation: DSC notebook 3
columns:
  Cp: {property: heat_capacity_cp, unit: J/(g*K), temperature_K: 298.15}
  dH: {property: enthalpy_increment, unit_field: dH_unit, temperature_K: 400}
"""


def test_values_per_mass_are_stored_molar_with_the_formulas_molar_mass_and_keep_the_original(store, tmp_path):
    rows = "id,formula,Cp,dH,dH_unit\n"
    rows += "cu,Cu,0.385,39.34,kJ/kg\nwater,H2O,4.184,,\ncorundum,Al2O3,0.7788,84.52,J g-1\n"
    rows += "electron,e-,1.0,,\n"
    report = import_file(store, *_write(tmp_path, rows, DSC_MAPPING))
    assert (report.n_stored, report.n_values, report.n_quarantined) == (3, 5, 1)
    stored = store.query(
        "SELECT m.source_id, p.property, p.value, p.unit, p.original_value, p.original_unit FROM properties p "
        "JOIN materials m USING (record_id) ORDER BY 1, 2"
    ).values.tolist()
    # g/mol of each formula unit as pymatgen weighs it: Cu 63.546, Al2O3 101.9612772, H2O 18.01528
    assert stored == [
        ["corundum", "enthalpy_increment", pytest.approx(8.617767148944, rel=1e-9), "kJ/mol", 84.52, "J g-1"],
        ["corundum", "heat_capacity_cp", pytest.approx(79.40744268336, rel=1e-9), "J/(mol*K)", 0.7788, "J/(g*K)"],
        ["cu", "enthalpy_increment", pytest.approx(2.49989964, rel=1e-9), "kJ/mol", 39.34, "kJ/kg"],
        ["cu", "heat_capacity_cp", pytest.approx(24.46521, rel=1e-9), "J/(mol*K)", 0.385, "J/(g*K)"],
        ["water", "heat_capacity_cp", pytest.approx(75.37593152, rel=1e-9), "J/(mol*K)", 4.184, "J/(g*K)"],
    ]
    assert abs(stored[1][2] / 79.01 - 1) < 0.01  # NIST-JANAF's corundum at 298.15 K: 79.01 J/(mol*K)
    item, reason = store.query("SELECT item, reasons[1] FROM quarantine").values.tolist()[0]
    assert (item, reason) == (
        "electron",
        "cannot convert 'J/(g*K)' to 'J/(mol*K)' without the molar mass of the formula unit",  # none pymatgen weighs
    )


def test_a_magnetometers_emu_per_gram_and_vasps_kbar_are_stored_in_canonical_units(store, tmp_path):
    mapping = _mapping_head("magnets")
    mapping += "  Ms: {property: magnetic_moment, unit: emu/g}\n  B: {property: bulk_modulus, unit_field: B_unit}\n"
    rows = "id,formula,Ms,B,B_unit\nfe,Fe,221.7,1680,kBar\nmagnetite,Fe3O4,92.0,1.0,kB\n"
    report = import_file(store, *_write(tmp_path, rows, mapping))
    assert (report.n_stored, report.n_values, report.n_quarantined) == (2, 3, 1)
    stored = store.query(
        "SELECT m.source_id, p.property, p.value, p.unit, p.original_unit FROM properties p "
        "JOIN materials m USING (record_id) ORDER BY 1, 2"
    ).values.tolist()
    assert stored == [  # N_A * muB = 5584.94 emu per mole; Fe 55.845 g/mol, Fe3O4 231.533 g/mol of 7 atoms
        ["fe", "bulk_modulus", pytest.approx(168.0), "GPa", "kBar"],
        ["fe", "magnetic_moment", pytest.approx(2.21683, rel=1e-5), "bohr_magneton/atom", "emu/g"],
        ["magnetite", "magnetic_moment", pytest.approx(0.544859, rel=1e-5), "bohr_magneton/atom", "emu/g"],
    ]
    reason = single_value(store.query("SELECT reasons[1] FROM quarantine"))
    assert reason.endswith("'kB' is the kilobyte: write kbar for the kilobar, k_B for Boltzmann's constant)")


def test_values_at_their_bounds_in_other_units_are_stored_as_converted(store, tmp_path):
    mapping = _mapping_head("bounds")
    mapping += "  rho: {property: density, unit: kg/m^3}\n  V: {property: volume_per_atom, unit: m^3/atom}\n"
    rows = "id,formula,rho,V\nS1,Os,100000,5e-28\nS2,Os,100000.001,\n"
    report = import_file(store, *_write(tmp_path, rows, mapping))
    assert (report.n_stored, report.n_values, report.n_quarantined) == (1, 2, 1)
    stored = store.query("SELECT property, value FROM properties ORDER BY 1").values.tolist()
    assert stored == [["density", 100.0], ["volume_per_atom", 500.00000000000006]]  # 1e30 is no float: not rounded
    reason = single_value(store.query("SELECT reasons[1] FROM quarantine"))
    assert reason == "density = 100.000001 g/cm**3 is outside the physical bounds [1e-09, 100]"


def test_a_unit_of_the_mapping_that_cannot_be_read_names_the_mapping_line_and_column(tmp_path):
    _, mapping = _write(tmp_path, "", GAP_MAPPING.replace("g/cm^3", "g ccm-3"))
    with pytest.raises(ConfigError, match=r"mapping.yaml: line 7: columns.rho.unit: .*unknown unit 'g ccm-3'"):
        load_mapping(mapping)

    _, mapping = _write(tmp_path, "", GAP_MAPPING.replace("unit: eV", 'unit: "eV^0"'))  # (pint: a KeyError)
    with pytest.raises(ConfigError, match=r"mapping.yaml: line 6: columns.gap.unit: .*unknown unit 'eV\^0'"):
        load_mapping(mapping)


def test_a_unit_cell_pint_fails_on_quarantines_its_row_and_the_import_goes_on(store, tmp_path):
    mapping = _mapping_head("units")
    mapping += "  gap: {property: band_gap, unit_field: gap_unit}\n"
    units = {"S2": "eV/0", "S3": "eV^0", "S4": "eV dB", "S5": "eV/1e-400"}
    rows = "id,formula,gap,gap_unit\nS1,GaN,3.4,eV\n" + "".join(f"{i},ZnO,3.3,{u}\n" for i, u in units.items())
    report = import_file(store, *_write(tmp_path, rows, mapping))
    assert (report.n_stored, report.n_quarantined) == (1, 4)
    assert store.query("SELECT item, reasons[1] FROM quarantine ORDER BY item").values.tolist() == [
        ["S2", "unknown unit 'eV/0'"],
        ["S3", "unknown unit 'eV^0'"],
        ["S4", "cannot convert 'eV dB' to 'eV' ('delta_decibel' is not defined in the unit registry)"],
        ["S5", "unknown unit 'eV/1e-400'"],
    ]


def test_formulas_of_amounts_past_the_largest_number_quarantine_their_rows_and_the_import_goes_on(store, tmp_path):
    # the import died (OverflowError in composition_key) on S2, and stored S3 with atoms_per_formula_unit = inf
    mapping = _mapping_head("huge") + "  gap: {property: band_gap, unit: eV}\n"
    rows = "id,formula,gap\nS1,GaN,3.4\nS2,Fe0.5Ni1.7e308,3.3\nS3,Fe1e308Ni1e308,3.3\n"
    report = import_file(store, *_write(tmp_path, rows, mapping))
    assert (report.n_stored, report.n_quarantined) == (1, 2)
    largest = "past the largest number (about 1.8e308"
    assert store.query("SELECT item, reasons[1] FROM quarantine ORDER BY item").values.tolist() == [
        ["S2", f"unparseable formula 'Fe0.5Ni1.7e308': its molar mass adds up {largest} g/mol)"],
        ["S3", f"unparseable formula 'Fe1e308Ni1e308': its atoms add up {largest})"],
    ]
    assert store.query("SELECT formula, atoms_per_formula_unit FROM materials").values.tolist() == [["GaN", 2.0]]


def test_a_formula_writing_an_element_with_no_amount_quarantines_its_row_with_why(store, tmp_path):
    # S2 was stored as O2 (pymatgen drops an element of amount zero) and S3 quarantined with no reason
    mapping = _mapping_head("zeros") + "  gap: {property: band_gap, unit: eV}\n"
    rows = "id,formula,gap\nS1,GaN,3.4\nS2,Fe0O,2.1\nS3,(Fe1e200)1e200,3.3\nS4,Fe1e-5O,2.2\n"
    report = import_file(store, *_write(tmp_path, rows, mapping))
    assert (report.n_stored, report.n_quarantined) == (2, 2)
    assert store.query("SELECT item, reasons[1] FROM quarantine ORDER BY item").values.tolist() == [
        ["S2", "unparseable formula 'Fe0O': the amount of Fe is zero ('Fe0')"],
        ["S3", "unparseable formula '(Fe1e200)1e200': the amount of Fe is past the largest number (about 1.8e308)"],
    ]
    assert sorted(store.query("SELECT formula FROM materials")["formula"]) == ["Fe1e-05O1", "GaN"]


def test_a_unit_cell_holding_a_missing_value_reads_as_a_blank_one(store, tmp_path):
    # 'n/a' in a unit cell was read as a unit ("unknown unit 'n/a'") where a blank cell is "empty unit"
    mapping = _mapping_head("units") + "  gap: {property: band_gap, unit_field: gap_unit}\nmissing_values: [n/a]\n"
    rows = "id,formula,gap,gap_unit\nS1,GaN,3.4,eV\nS2,ZnO,3.3,\nS3,ZnO,3.3,n/a\nS4,ZnO,3.3, N/A \n"
    report = import_file(store, *_write(tmp_path, rows, mapping))
    assert (report.n_stored, report.n_quarantined) == (1, 3)
    assert store.query("SELECT item, reasons[1] FROM quarantine ORDER BY item").values.tolist() == [
        ["S2", "empty unit"],
        ["S3", "empty unit"],
        ["S4", "empty unit"],  # as a value cell's missing values: in any case, spaces aside
    ]


@pytest.mark.parametrize(
    ("unit", "refused"),
    [
        ("kJ/mol", "cannot convert 'kJ/mol' to 'eV' (incompatible dimensions)"),  # a band gap per mole
        ("eV/atom", "cannot convert 'eV/atom' to 'eV' (incompatible dimensions)"),
        ("J/g", "cannot convert 'J/g' to 'eV' (incompatible dimensions)"),  # per mass: no molar mass makes it eV
        ("meV", None),
    ],
)
def test_a_mapping_unit_of_another_dimension_than_its_property_is_refused_as_the_mapping_loads(tmp_path, unit, refused):
    # every row of the column was quarantined, the import exiting 0 where another column was valid
    _, mapping = _write(tmp_path, "", GAP_MAPPING.replace("band_gap, unit: eV}", f"band_gap, unit: {unit}}}"))
    if refused is None:
        assert load_mapping(mapping).columns["gap"].unit == unit
        return
    with pytest.raises(ConfigError, match=re.escape(f"mapping.yaml: line 6: columns.gap.unit: Value error, {refused}")):
        load_mapping(mapping)


@pytest.mark.parametrize(("column", "unit"), [("Cp", "J/(g*K)"), ("Cp", "J/(kg*K)"), ("dH", "kJ/kg")])
def test_a_mapping_unit_per_mass_of_a_molar_property_is_accepted_as_the_mapping_loads(tmp_path, column, unit):
    text = DSC_MAPPING.replace("unit_field: dH_unit", "unit: kJ/mol").replace(
        {"Cp": "unit: J/(g*K)", "dH": "unit: kJ/mol"}[column], f"unit: {unit}"
    )
    _, mapping = _write(tmp_path, "", text)
    assert load_mapping(mapping).columns[column].unit == unit


def test_a_file_imported_again_withdraws_the_records_it_no_longer_has_not_those_it_rejects(store, tmp_path):
    thermo = _mapping_head("gaps")
    thermo += "  dHf: {property: formation_energy_per_atom, unit: eV/atom}\n"
    (tmp_path / "thermo.yaml").write_text(thermo, encoding="utf-8")
    (tmp_path / "thermo.csv").write_text("id,formula,dHf\nS8,Si,-0.1\n", encoding="utf-8")  # S8 in another file too
    data, mapping = _write(tmp_path, "id,formula,gap,rho\nS1,GaN,3.40,6.15\nS6,ZnO,3.37,\nS8,Si,1.12,\n", GAP_MAPPING)
    import_file(store, data, mapping)
    import_file(store, tmp_path / "thermo.csv", tmp_path / "thermo.yaml")
    data.write_text('id,formula,gap,rho\nS1,GaN,3.41,6.15\nS6,ZnO,"3,37",\n', encoding="utf-8")  # S8 deleted
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined, report.n_withdrawn) == (1, 1, 1)  # S8; S6 quarantined whole
    assert _stored(store) == [
        ["S1", "band_gap", 3.41],
        ["S1", "density", 6.15],
        ["S6", "band_gap", 3.37],  # its last valid read: the file still has its row
        ["S8", "formation_energy_per_atom", -0.1],
    ]
    again = import_file(store, data, mapping)
    assert (again.n_unchanged, again.n_withdrawn) == (1, 0)  # withdrawn once
    data.write_text("id,formula,gap,rho\nS1,GaN,3.41,6.15\nS6,ZnO,3.37,\n", encoding="utf-8")  # S6 fixed
    import_file(store, data, mapping)
    assert ["S6", "band_gap", 3.37] in _stored(store)
    data.write_text("id,formula,gap,rho\nS1,GaN,-3.41,\n", encoding="utf-8")  # nothing valid left in the file
    assert import_file(store, data, mapping).n_withdrawn == 1  # S6
    assert _stored(store) == [
        ["S1", "band_gap", 3.41],
        ["S1", "density", 6.15],
        ["S8", "formation_energy_per_atom", -0.1],
    ]


def _commit_rows(store, commit: str) -> dict[str, int]:
    """The rows of each table in one commit of the store."""
    return {file.stem: pq.read_metadata(file).num_rows for file in sorted((store.data_dir / commit).glob("*.parquet"))}


def test_deleting_a_row_of_a_file_with_ids_withdraws_it_and_rewrites_no_other_row(store, tmp_path):
    rows = ["S1,GaN,3.40,6.15", "S2,ZnO,3.37,5.61", "S3,Si,1.12,", "S4,GaAs,1.42,", "S5,CdTe,1.5,"]
    (data,) = _gap_files(tmp_path, ("gaps.csv", "\n".join(rows) + "\n"))
    import_file(store, data, tmp_path / "m.yaml")
    commits = sorted(path.name for path in store.data_dir.iterdir())
    data.write_text("id,formula,gap,rho\n" + "\n".join(rows[:2] + rows[3:]) + "\n", encoding="utf-8")  # S3 deleted
    report = import_file(store, data, tmp_path / "m.yaml")
    assert (report.n_stored, report.n_unchanged, report.n_withdrawn) == (4, 4, 1)  # none written again
    (new_commit,) = sorted(path.name for path in store.data_dir.iterdir() if path.name not in commits)
    assert {name: n for name, n in _commit_rows(store, new_commit).items() if n} == {"fetch_runs": 1, "materials": 1}
    withdrawn = pq.read_table(store.data_dir / new_commit / "materials.parquet").column("source_id").to_pylist()
    assert withdrawn == ["S3"]
    data.write_text("id,formula,gap,rho\n" + "\n".join(reversed(rows[:2] + rows[3:])) + "\n", encoding="utf-8")
    report = import_file(store, data, tmp_path / "m.yaml")  # the rows sorted otherwise
    assert (report.n_stored, report.n_unchanged, report.n_withdrawn) == (4, 4, 0)


def test_a_row_with_an_id_is_named_by_its_id_in_its_source_url(store, tmp_path):
    (data,) = _gap_files(tmp_path, ("my gaps.csv", "S1,GaN,3.40,6.15\nS#2/b,ZnO,3.37,\n"))
    import_file(store, data, tmp_path / "m.yaml")
    urls = store.query("SELECT source_id, source_url FROM materials ORDER BY source_id").values.tolist()
    assert urls == [["S#2/b", "file:my gaps.csv#id=S%232%2Fb"], ["S1", "file:my gaps.csv#id=S1"]]


def test_a_file_of_the_same_name_in_another_folder_is_refused_unless_given_a_name(store, tmp_path):
    for folder, rows in (("2025", "S1,GaN,3.40,6.15\nS2,ZnO,3.37,5.61\n"), ("2026", "S1,GaN,3.38,\nS3,CdS,2.42,\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "results.csv").write_text("id,formula,gap,rho\n" + rows, encoding="utf-8")
    (tmp_path / "m.yaml").write_text(GAP_MAPPING, encoding="utf-8")
    import_file(store, tmp_path / "2025" / "results.csv", tmp_path / "m.yaml")
    with pytest.raises(ConfigError, match=r"'results.csv' of gaps was imported from .*2025/results.csv, which is"):
        import_file(store, tmp_path / "2026" / "results.csv", tmp_path / "m.yaml")  # S1's 3.40 would be hidden
    assert store.query("SELECT count(*) FROM fetch_runs").iloc[0, 0] == 1
    report = import_file(store, tmp_path / "2026" / "results.csv", tmp_path / "m.yaml", name="2026/results.csv")
    assert (report.n_stored, report.n_withdrawn) == (2, 0)
    (tmp_path / "2026" / "results.csv").write_text("id,formula,gap,rho\nS3,CdS,2.42,\n", encoding="utf-8")
    import_file(store, tmp_path / "2026" / "results.csv", tmp_path / "m.yaml", name="2026/results.csv")
    assert ["S1", "band_gap", 3.40] in _stored(store)  # the first file's value again, once the second's is withdrawn
    scopes = store.query("SELECT DISTINCT scope FROM materials ORDER BY 1")["scope"].tolist()
    assert scopes == ["2026/results.csv", "results.csv"]


def test_re_importing_an_unchanged_file_changes_nothing_another_file_said_later(store, tmp_path):
    first, second = _gap_files(tmp_path, ("a.csv", "s2,GaN,3.4,\n"), ("b.csv", "s2,GaN,3.2,\n"))
    import_file(store, first, tmp_path / "m.yaml")
    import_file(store, second, tmp_path / "m.yaml")  # a later measurement of the same key: shown
    report = import_file(store, first, tmp_path / "m.yaml")
    assert (report.n_stored, report.n_unchanged) == (1, 1)
    assert _stored(store) == [["s2", "band_gap", 3.2]]
    first.write_text("id,formula,gap,rho\ns2,GaN,3.45,\n", encoding="utf-8")  # a change is a later value
    assert import_file(store, first, tmp_path / "m.yaml").n_unchanged == 0
    assert _stored(store) == [["s2", "band_gap", 3.45]]


def test_a_file_moved_to_another_folder_replaces_what_it_said_there(store, tmp_path):
    (tmp_path / "incoming").mkdir()
    data = tmp_path / "incoming" / "results.csv"
    data.write_text("id,formula,gap,rho\nS1,GaN,3.40,6.15\n", encoding="utf-8")
    (tmp_path / "m.yaml").write_text(GAP_MAPPING, encoding="utf-8")
    import_file(store, data, tmp_path / "m.yaml")
    data.parent.rename(tmp_path / "checked")
    moved = tmp_path / "checked" / "results.csv"
    moved.write_text("id,formula,gap,rho\nS1,GaN,3.41,6.15\n", encoding="utf-8")
    assert import_file(store, moved, tmp_path / "m.yaml").n_stored == 1
    assert _stored(store) == [["S1", "band_gap", 3.41], ["S1", "density", 6.15]]


def test_rows_deleted_from_a_moved_file_are_withdrawn_after_its_first_import_there(store, tmp_path):
    (tmp_path / "incoming").mkdir()
    rows = "S1,GaN,3.40,6.15\nS2,ZnO,3.37,5.61\n"
    (data,) = _gap_files(tmp_path, ("incoming/results.csv", rows))
    import_file(store, data, tmp_path / "m.yaml")
    data.parent.rename(tmp_path / "checked")
    moved = tmp_path / "checked" / "results.csv"
    assert import_file(store, moved, tmp_path / "m.yaml").n_unchanged == 0  # written again: read here now
    moved.write_text("id,formula,gap,rho\nS2,ZnO,3.37,5.61\n", encoding="utf-8")  # S1 deleted
    assert import_file(store, moved, tmp_path / "m.yaml").n_withdrawn == 1
    assert _stored(store) == [["S2", "band_gap", 3.37], ["S2", "density", 5.61]]


def test_a_file_of_the_same_name_whose_first_folder_is_not_at_hand_withdraws_nothing_of_that_files_records(
    store, tmp_path
):
    """A file moved to another folder cannot be told from another file of its name whose first folder is not at hand
    (an unmounted drive, another steward's machine): its import withdraws nothing of what the first one gave."""
    for folder in ("batch1", "batch2"):
        (tmp_path / folder).mkdir()
    first, other = _gap_files(
        tmp_path, ("batch1/results.csv", "B1-1,GaN,3.40,\nB1-2,ZnO,3.37,\n"), ("batch2/results.csv", "B2-1,CdS,2.42,\n")
    )
    import_file(store, first, tmp_path / "m.yaml")
    first.parent.rename(tmp_path / "archived")
    assert import_file(store, other, tmp_path / "m.yaml").n_withdrawn == 0
    stored = store.query("SELECT record_id FROM materials ORDER BY 1")["record_id"].tolist()
    assert stored == ["gaps:B1-1", "gaps:B1-2", "gaps:B2-1"]


def test_a_row_deleted_as_the_file_moved_is_withdrawn_when_the_import_names_where_it_moved_from(store, tmp_path):
    (tmp_path / "incoming").mkdir()
    (data,) = _gap_files(tmp_path, ("incoming/results.csv", "S1,GaN,3.40,6.15\nS2,ZnO,3.37,\nS3,CdS,2.42,\n"))
    import_file(store, data, tmp_path / "m.yaml")
    data.parent.rename(tmp_path / "checked")
    moved = tmp_path / "checked" / "results.csv"
    moved.write_text("id,formula,gap,rho\nS1,GaN,3.40,6.15\nS2,ZnO,3.37,\n", encoding="utf-8")  # S3 deleted
    mapping = load_mapping(tmp_path / "m.yaml")
    assert run_ingest(LabConnector(moved, mapping), store, dry_run=True).n_withdrawn == 0  # not said to be a move
    preview = run_ingest(LabConnector(moved, mapping), store, dry_run=True, moved_from=data)
    assert preview.n_withdrawn == 1
    report = run_ingest(LabConnector(moved, mapping), store, moved_from=data)
    assert (report.n_stored, report.n_withdrawn) == (2, 1)
    assert store.query("SELECT record_id FROM materials ORDER BY 1")["record_id"].tolist() == ["gaps:S1", "gaps:S2"]
    assert _stored(store) == [["S1", "band_gap", 3.40], ["S1", "density", 6.15], ["S2", "band_gap", 3.37]]
    runs = store.query("SELECT parameters, n_withdrawn FROM fetch_runs ORDER BY finished_at")
    assert runs["n_withdrawn"].tolist() == [0, 1]
    assert [json.loads(text).get("moved_from") for text in runs["parameters"]] == [None, str(data)]
    assert import_file(store, moved, tmp_path / "m.yaml").n_withdrawn == 0  # withdrawn once


def _moved_gaps(store, tmp_path: Path, name: str | None = None) -> tuple[Path, Path]:
    """A gap file imported from incoming/ (under `name`, if given), then moved to checked/ with its S2 row deleted."""
    (tmp_path / "incoming").mkdir()
    (data,) = _gap_files(tmp_path, ("incoming/results.csv", "S1,GaN,3.40,\nS2,ZnO,3.37,\n"))
    import_file(store, data, tmp_path / "m.yaml", name)
    (tmp_path / "checked").mkdir()
    moved = data.rename(tmp_path / "checked" / "results.csv")
    moved.write_text("id,formula,gap,rho\nS1,GaN,3.40,\n", encoding="utf-8")
    return data, moved


def _refused_move(store, moved: Path, mapping: Path, moved_from: Path, name: str | None = None) -> str:
    """The error text of an import (and of its dry run) of `moved` said to be moved from `moved_from`, refused with
    nothing written."""
    runs = store.query("SELECT count(*) FROM fetch_runs").iloc[0, 0]
    for dry_run in (True, False):
        with pytest.raises(RunRefused) as refused:
            run_ingest(
                LabConnector(moved, load_mapping(mapping), name=name), store, moved_from=moved_from, dry_run=dry_run
            )
    assert store.query("SELECT count(*) FROM fetch_runs").iloc[0, 0] == runs and not store.staged_runs()
    assert _stored(store) == [["S1", "band_gap", 3.40], ["S2", "band_gap", 3.37]]
    return str(refused.value)


def test_an_import_moved_from_a_place_its_scope_was_not_imported_from_is_refused_naming_where_it_was(store, tmp_path):
    data, moved = _moved_gaps(store, tmp_path)
    elsewhere = tmp_path / "elsewhere" / "results.csv"
    assert _refused_move(store, moved, tmp_path / "m.yaml", elsewhere) == (
        f"results.csv of gaps was never imported from {elsewhere}, which the import says it moved from; it was "
        f"imported from {data}"
    )


def test_an_import_moved_from_a_place_that_still_holds_a_file_is_refused_as_no_move(store, tmp_path):
    data, moved = _moved_gaps(store, tmp_path)
    data.write_text("id,formula,gap,rho\nS1,GaN,3.40,\nS2,ZnO,3.37,\n", encoding="utf-8")  # a copy, not a move
    assert _refused_move(store, moved, tmp_path / "m.yaml", data) == (
        f"{data} still holds a file: {moved} was not moved from there; import each under a name of its own "
        "(--as), or remove the one no longer wanted first"
    )


def test_an_import_moved_from_a_place_of_another_scope_is_refused_naming_that_scope(store, tmp_path):
    data, moved = _moved_gaps(store, tmp_path, name="alice/results.csv")
    assert _refused_move(store, moved, tmp_path / "m.yaml", data) == (
        f"results.csv of gaps was never imported from {data}, which the import says it moved from; the file there "
        "was imported as alice/results.csv (import this one under that name: --as)"
    )
    report = run_ingest(
        LabConnector(moved, load_mapping(tmp_path / "m.yaml"), name="alice/results.csv"), store, moved_from=data
    )
    assert report.n_withdrawn == 1 and _stored(store) == [["S1", "band_gap", 3.40]]


def test_a_fetch_said_to_be_moved_from_a_file_is_refused(store, catalog, tmp_path):
    from matreg.http import HttpClient
    from matreg.sources.janaf import JanafConnector

    source = catalog.sources["janaf"]
    connector = JanafConnector(source, HttpClient(source.http), ["H-064"])
    with pytest.raises(RunRefused) as refused:
        run_ingest(connector, store, moved_from=tmp_path / "results.csv")
    assert str(refused.value) == (
        "janaf is fetched, not imported from a file: only a lab file's import is said to be moved (--moved-from)"
    )
    assert not store.exists()


def test_rows_of_a_file_imported_under_a_name_are_known_by_it_and_readmitted_under_it(store, tmp_path):
    from matreg.curate.review import record_decision

    mapping = GAP_MAPPING.replace("id_column: id\n", "").split("  rho:")[0]
    (tmp_path / "m.yaml").write_text(mapping, encoding="utf-8")
    for folder, rows in (("a", "GaN,3.40\n"), ("b", "CdTe,1.5\nZnO,3.3x\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "data.csv").write_text("formula,gap\n" + rows, encoding="utf-8")
    import_file(store, tmp_path / "a" / "data.csv", tmp_path / "m.yaml")
    report = import_file(store, tmp_path / "b" / "data.csv", tmp_path / "m.yaml", name="b/data.csv")
    assert (report.n_stored, report.n_quarantined) == (1, 1)  # CdTe is no other material under row 2 of 'data.csv'
    item = single_value(store.query("SELECT quarantine_id FROM quarantine"))
    record_decision(store, "readmit", "A. Steward", "typo", quarantine_id=item, value=3.3)
    stored = store.query("SELECT record_id, formula, scope, source_url FROM materials ORDER BY 1").values.tolist()
    assert stored == [
        ["gaps:b/data.csv:row-2", "CdTe", "b/data.csv", "file:b/data.csv#line=2"],
        ["gaps:b/data.csv:row-3", "ZnO", "b/data.csv", "file:b/data.csv#line=3"],
        ["gaps:data.csv:row-2", "GaN", "data.csv", "file:data.csv#line=2"],
    ]


def test_a_composition_written_otherwise_is_no_other_material_but_a_row_renumbered_is(store, tmp_path):
    mapping = GAP_MAPPING.replace("id_column: id\n", "").split("  rho:")[0]
    (tmp_path / "m.yaml").write_text(mapping, encoding="utf-8")
    data = tmp_path / "data.csv"
    data.write_text("formula,gap\nZnO,3.37\nFe0.95O,2.4\n", encoding="utf-8")
    import_file(store, data, tmp_path / "m.yaml")
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "data.csv").write_text("formula,gap\nOZn,3.37\nFe19O20,2.4\n", encoding="utf-8")
    copy = tmp_path / "copy" / "data.csv"
    assert import_file(store, copy, tmp_path / "m.yaml", name="data.csv").n_quarantined == 0  # the same ones
    data.write_text("formula,gap\nFe0.95O,2.4\n", encoding="utf-8")  # ZnO deleted: Fe0.95O would become row-2
    report = import_file(store, data, tmp_path / "m.yaml")
    assert report.n_quarantined == 1 and "gaps:data.csv:row-2 holds ZnO from 'data.csv'" in str(report.reasons)
    assert store.query("SELECT formula FROM materials WHERE source_id = 'data.csv:row-2'").iloc[0, 0] == "ZnO"
    assert report.n_withdrawn == 0  # rows moved: row-3 (Fe0.95O, still in the file) is no row the file dropped
    assert ["data.csv:row-3", "band_gap", 2.4] in _stored(store)


def test_an_id_another_file_gives_to_another_material_is_refused_and_a_file_corrects_its_own(store, tmp_path):
    alice, bob = _gap_files(
        tmp_path, ("alice.csv", "s1,ZnO2,3.44,\ns2,GaN,3.4,\n"), ("bob.csv", "s1,CdTe,1.5,\ns2,GaN,3.39,\n")
    )
    import_file(store, alice, tmp_path / "m.yaml")
    report = import_file(store, bob, tmp_path / "m.yaml")
    assert (report.n_stored, report.n_quarantined) == (1, 1)  # s2: the same material, measured again
    (reason,) = report.reasons
    assert reason.startswith("gaps:s1 holds ZnO2 from 'alice.csv', this row CdTe: one id names one material")
    alice.write_text("id,formula,gap,rho\ns1,ZnO,3.44,\ns2,GaN,3.4,\n", encoding="utf-8")  # its own typo
    assert import_file(store, alice, tmp_path / "m.yaml").n_quarantined == 0
    assert store.query("SELECT formula FROM materials WHERE source_id = 's1'").iloc[0, 0] == "ZnO"
    from matreg.curate.review import CurationError, record_decision

    refused = single_value(store.query("SELECT quarantine_id FROM quarantine"))
    with pytest.raises(CurationError, match="was set aside as its import was published .*: correct the file"):
        record_decision(store, "readmit", "A. Steward", "CdTe", quarantine_id=refused)
    alice.write_text("id,formula,gap,rho\ns2,GaN,3.4,\n", encoding="utf-8")  # s1 withdrawn from every file
    assert import_file(store, alice, tmp_path / "m.yaml").n_withdrawn == 1
    assert import_file(store, bob, tmp_path / "m.yaml").n_quarantined == 0  # s1 may now name CdTe
    assert store.query("SELECT formula FROM materials WHERE source_id = 's1'").iloc[0, 0] == "CdTe"


class PublishedAfterAnotherRun(LabConnector):
    """A lab file whose import, checked for publishing without the store's lock, lets another run publish first (as
    two imports started together do): the check notes the rows the file rejected (`named_record`), and the first
    time it does, `other` runs whole."""

    def __init__(self, path: Path, mapping: Path, other: Callable[[], object]) -> None:
        super().__init__(path, load_mapping(mapping))
        self.other = other

    def named_record(self, payload):
        other, self.other = self.other, None
        if other is not None:
            other()
        return super().named_record(payload)


def _outcome(store) -> dict[str, list]:
    """What a store shows, run ids and times aside."""
    return {
        "materials": store.query("SELECT record_id, formula, scope FROM materials ORDER BY 1").values.tolist(),
        "values": store.query("SELECT record_id, property, value FROM properties ORDER BY 1, 2").values.tolist(),
        "open": store.query("SELECT item, reasons FROM open_quarantine ORDER BY 1").values.tolist(),
    }


def test_two_imports_published_together_refuse_an_id_as_the_later_would_one_after_the_other(store, tmp_path):
    alice, bob = _gap_files(
        tmp_path,
        ("alice.csv", "s1,ZnO,3.3,\ns2,GaN,3.4,\ns9,GaN,about 3,\n"),
        ("bob.csv", "s1,CdTe,1.5,\ns2,GaN,3.39,\n"),
    )
    bob_first = Store(tmp_path / "bob-first")
    import_file(bob_first, bob, tmp_path / "m.yaml")
    serial = import_file(bob_first, alice, tmp_path / "m.yaml")
    bob_meanwhile = functools.partial(import_file, Store(store.root), bob, tmp_path / "m.yaml")
    report = run_ingest(PublishedAfterAnotherRun(alice, tmp_path / "m.yaml", bob_meanwhile), store)
    assert (report.n_stored, report.n_values, report.n_quarantined) == (1, 1, 2)  # s2; s1 and s9
    assert report.reasons == serial.reasons and report.n_unchanged == serial.n_unchanged
    assert "gaps:s1 holds CdTe from 'bob.csv', this row ZnO: one id names one material" in str(report.reasons)
    assert _outcome(store) == _outcome(bob_first)


def test_a_file_of_the_same_name_published_meanwhile_refuses_the_import_as_if_it_came_second(store, tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
    x, y = _gap_files(tmp_path, ("x/gaps.csv", "S1,GaN,3.40,\nS2,ZnO,about 3,\n"), ("y/gaps.csv", "S1,GaN,3.38,\n"))
    y_meanwhile = functools.partial(import_file, Store(store.root), y, tmp_path / "m.yaml")
    with pytest.raises(ConfigError, match=r"'gaps.csv' of gaps was imported from .*y/gaps.csv, which is still there"):
        run_ingest(PublishedAfterAnotherRun(x, tmp_path / "m.yaml", y_meanwhile), store)
    assert _stored(store) == [["S1", "band_gap", 3.38]]  # y's value is not replaced
    assert store.query("SELECT endpoint, status FROM fetch_runs").values.tolist() == [[str(y), "complete"]]
    assert store.staged_runs() == {} and list(store.staging_dir.iterdir()) == []  # nothing of x is left


def test_a_file_changes_the_material_of_an_id_only_while_no_other_file_gives_it(store, tmp_path):
    alice, bob = _gap_files(tmp_path, ("alice.csv", "s1,ZnO,3.3,\n"), ("bob.csv", "s1,ZnO,,5.6\n"))
    import_file(store, bob, tmp_path / "m.yaml")
    import_file(store, alice, tmp_path / "m.yaml")  # the latest write of s1
    alice.write_text("id,formula,gap,rho\ns1,CdTe,1.5,\n", encoding="utf-8")
    report = import_file(store, alice, tmp_path / "m.yaml")
    assert report.n_quarantined == 1 and "gaps:s1 holds ZnO from 'bob.csv', this row CdTe" in str(report.reasons)
    assert store.query("SELECT formula FROM materials WHERE source_id = 's1'").iloc[0, 0] == "ZnO"


def test_a_file_corrects_its_own_formula_in_a_store_written_before_scopes(store, tmp_path):
    (tmp_path / "m.yaml").write_text(GAP_MAPPING, encoding="utf-8")
    data = tmp_path / "alice.csv"
    data.write_text("id,formula,gap,rho\ns1,ZnO2,3.44,\n", encoding="utf-8")
    older = LabConnector(data, load_mapping(tmp_path / "m.yaml"))
    older.attribution.scope = ""  # as matreg wrote lab records before it recorded scopes
    run_ingest(older, store)
    data.write_text("id,formula,gap,rho\ns1,ZnO,3.44,\n", encoding="utf-8")
    assert import_file(store, data, tmp_path / "m.yaml").n_quarantined == 0


def _phases(store) -> list[list]:
    return store.query("SELECT source_id, formula, phase FROM materials ORDER BY 1").fillna("").values.tolist()


def test_an_id_another_file_gives_in_another_state_is_refused_as_another_material(store, tmp_path):
    # bob's steam replaced alice's water under s1: the check compared formulas only, so the phase was the last write's
    alice, bob = _gap_files(
        tmp_path,
        ("alice.csv", "s1,H2O(l),,0.997\ns2,H2O,,0.917\n"),
        ("bob.csv", "s1,H2O(g),,0.0006\ns2,H2O(s),,0.92\n"),
    )
    import_file(store, alice, tmp_path / "m.yaml")
    report = import_file(store, bob, tmp_path / "m.yaml")
    assert (report.n_stored, report.n_quarantined) == (1, 1)  # s2: ice, stating its state or not
    (reason,) = report.reasons
    assert reason.startswith("gaps:s1 holds H2O(l) from 'alice.csv', this row H2O(g): one id names one material")
    assert _phases(store) == [["s1", "H2O", "l"], ["s2", "H2O", "cr"]]
    assert _stored(store) == [["s1", "density", 0.997], ["s2", "density", 0.92]]
    again = import_file(store, alice, tmp_path / "m.yaml")  # unchanged
    assert (again.n_unchanged, again.n_quarantined) == (2, 0)
    alice.write_text("id,formula,gap,rho\ns1,H2O(aq),,0.997\ns2,H2O,,0.917\n", encoding="utf-8")  # its own state
    assert import_file(store, alice, tmp_path / "m.yaml").n_quarantined == 0
    assert _phases(store)[0] == ["s1", "H2O", "aq"]


def _originals(store) -> list[list]:
    query = "SELECT source_id, formula, formula_original, phase FROM materials ORDER BY 1"
    return store.query(query).fillna("").values.tolist()


def test_an_id_another_file_gives_as_another_molecule_of_one_composition_is_refused(store, tmp_path):
    # O2 and O3 reduce alike (O2), as H2O2 and HO (H2O2): the check compared reduced formulas, so bob's ozone
    # replaced alice's oxygen; a crystal's formula unit is no molecule: Fe4O6 is alice's Fe2O3
    alice, bob = _gap_files(
        tmp_path,
        ("alice.csv", "s1,O2(g),,0.00143\ns2,H2O2(l),,1.45\ns3,Fe2O3,,5.24\n"),
        ("bob.csv", "s1,O3(g),,0.00214\ns2,HO(l),,1.44\ns3,Fe4O6,,5.25\n"),
    )
    import_file(store, alice, tmp_path / "m.yaml")
    report = import_file(store, bob, tmp_path / "m.yaml")
    assert (report.n_stored, report.n_quarantined) == (1, 2)
    reasons = sorted(store.query("SELECT reasons[1] FROM quarantine").iloc[:, 0])
    assert [reason.split(": one id names")[0] for reason in reasons] == [
        "gaps:s1 holds O2(g) from 'alice.csv', this row O3(g)",
        "gaps:s2 holds H2O2(l) from 'alice.csv', this row HO(l)",
    ]
    assert _originals(store) == [["s1", "O2", "O2", "g"], ["s2", "H2O2", "H2O2", "l"], ["s3", "Fe2O3", "Fe4O6", ""]]
    assert _stored(store) == [["s1", "density", 0.00143], ["s2", "density", 1.45], ["s3", "density", 5.25]]
    corrected = "id,formula,gap,rho\ns1,O3(g),,0.00214\ns2,H2O2(l),,1.45\ns3,Fe2O3,,5.24\n"
    alice.write_text(corrected, encoding="utf-8")  # alice corrects her own
    assert import_file(store, alice, tmp_path / "m.yaml").n_quarantined == 0
    assert _originals(store)[0] == ["s1", "O2", "O3", "g"]


def test_one_file_giving_one_id_in_two_states_quarantines_the_second_row(store, tmp_path):
    (data,) = _gap_files(tmp_path, ("lab.csv", "s1,H2O(l),,0.997\ns1,H2O(g),,0.0006\n"))
    report = import_file(store, data, tmp_path / "m.yaml")
    assert (report.n_stored, report.n_quarantined) == (1, 1)
    assert store.query("SELECT item, reasons[1] FROM quarantine").values.tolist() == [
        [
            "line 3",
            "duplicate id 's1': row gives formula 'H2O(g)' where line 2 gave 'H2O(l)' (the rows of one id are one "
            "record: they repeat its formula, name, space group, structure and extension columns)",
        ]
    ]
    assert _phases(store) == [["s1", "H2O", "l"]]


def test_without_an_id_column_a_row_in_another_state_at_a_stored_place_is_a_moved_row(store, tmp_path):
    mapping = GAP_MAPPING.replace("id_column: id\n", "").replace("  gap: {property: band_gap, unit: eV}\n", "")
    data, mapping = _write(tmp_path, "formula,rho\nH2O(l),0.997\nH2O(g),0.0006\n", mapping)
    import_file(store, data, mapping)
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "lab.csv").write_text("formula,rho\nH2O(g),0.0006\n", encoding="utf-8")
    report = import_file(store, tmp_path / "copy" / "lab.csv", mapping, name="lab.csv")
    assert (report.n_quarantined, report.n_withdrawn) == (1, 0)  # its rows moved: nothing withdrawn
    assert "gaps:lab.csv:row-2 holds H2O(l) from 'lab.csv', this row H2O(g): without an id_column" in str(
        report.reasons
    )
    data.write_text("formula,rho\nH2O(g),bad\n", encoding="utf-8")  # the water deleted: the steam, mistyped, is row-2
    assert import_file(store, data, mapping).n_withdrawn == 2  # row-2 held the water: no read of the steam's row
    assert _stored(store) == []


@pytest.mark.parametrize(
    ("text", "gap"),
    [
        ("id;formula;Eg (eV, 300 K);rho\nS1;GaN;3,4;6,15\n", "Eg (eV, 300 K)"),  # decimal commas and a comma header
        ("id,formula,gap,rho,note\nS1,GaN,3.4,6.15,MOCVD; 'annealed'\n", "gap"),  # the sniffer's quote guess: ';'
        ("id,formula,gap,rho,,\nS1,GaN,3.4,6.15,,\n", "gap"),  # Excel's trailing empty columns
    ],
)
def test_the_columns_a_mapping_reads_settle_the_separator(store, tmp_path, text, gap):
    data, mapping = _write(tmp_path, text, GAP_MAPPING.replace("  gap:", f"  {gap}:"))
    report = import_file(store, data, mapping)
    assert report.n_fetched == 1 and report.n_stored + report.n_quarantined == 1
    assert store.query("SELECT count(*) FROM quarantine").iloc[0, 0] == (1 if "3,4" in text else 0)


def test_a_cell_may_hold_a_structure_larger_than_the_csv_modules_default_limit(store, tmp_path):
    big = Structure(
        Lattice.cubic(5.64 * 6),
        ["Na", "Cl"] * 432,
        [[i / 24, j / 12, k / 6] for i in range(24) for j in range(12) for k in range(6)][:864],
    )
    rows = pd.DataFrame({"sample": ["big"], "formula": ["NaCl"], "gap": ["8.5"], "structure": [big.to_json()]})
    assert len(rows["structure"][0]) > 131072
    data, mapping = _write(tmp_path, rows.to_csv(index=False), STRUCTURE_MAPPING)
    assert import_file(store, data, mapping).n_stored == 1


def test_a_temperature_column_in_degrees_celsius_is_stored_in_kelvin(store, tmp_path):
    mapping = "dataset: gaps\nformula_column: formula\ncitation: c\ncolumns:\n"
    mapping += "  gap: {property: band_gap, unit: eV, temperature_field: T, temperature_unit: degC}\n"
    data, mapping_path = _write(tmp_path, "formula,gap,T\nGaAs,1.42,26.85\nGaN,3.4,23.7\n", mapping)
    import_file(store, data, mapping_path)
    kelvin = store.query("SELECT temperature_K FROM properties ORDER BY 1")["temperature_K"].tolist()
    assert kelvin == [296.85, 300.0]  # as a steward names them (23.7 + 273.15 is 296.84999999999997 in floats)
    mapping_path.write_text(mapping.replace("temperature_unit: degC", "temperature_unit: eV"), encoding="utf-8")
    with pytest.raises(ConfigError, match="temperature_unit 'eV' is no unit of temperature"):
        load_mapping(mapping_path)
    fixed = mapping.replace("temperature_field: T", "temperature_K: 25")  # 25 what? temperature_K is in kelvin
    mapping_path.write_text(fixed, encoding="utf-8")
    with pytest.raises(ConfigError, match="temperature_unit is the unit of a temperature_field"):
        load_mapping(mapping_path)


def test_a_sheet_named_by_number_or_by_name_is_one_sheet_of_one_file(store, tmp_path):
    with pd.ExcelWriter(tmp_path / "lab.xlsx") as workbook:
        pd.DataFrame({"id": ["S9"], "formula": ["Si"], "gap": ["1.1"]}).to_excel(
            workbook, sheet_name="notes", index=False
        )
        pd.DataFrame({"id": ["S1", "S2"], "formula": ["GaN", "ZnO"], "gap": ["3.4", "3.37"]}).to_excel(
            workbook, sheet_name="gaps", index=False
        )
    mapping = GAP_MAPPING.split("  rho:")[0]
    (tmp_path / "by_number.yaml").write_text(mapping + "sheet: 1\n", encoding="utf-8")
    (tmp_path / "by_name.yaml").write_text(mapping + "sheet: gaps\n", encoding="utf-8")
    (tmp_path / "first.yaml").write_text(mapping + "sheet: notes\n", encoding="utf-8")
    import_file(store, tmp_path / "lab.xlsx", tmp_path / "by_number.yaml")
    assert import_file(store, tmp_path / "lab.xlsx", tmp_path / "by_name.yaml").n_unchanged == 2  # the same sheet
    import_file(store, tmp_path / "lab.xlsx", tmp_path / "first.yaml")
    (tmp_path / "default.yaml").write_text(mapping, encoding="utf-8")  # sheet 0: the first, 'notes'
    assert import_file(store, tmp_path / "lab.xlsx", tmp_path / "default.yaml").n_unchanged == 1
    scopes = store.query("SELECT DISTINCT scope FROM materials ORDER BY 1")["scope"].tolist()
    assert scopes == ["lab.xlsx", "lab.xlsx[gaps]"]


def test_a_withdrawal_keeps_what_another_file_says_of_the_record_and_a_withdrawn_row_is_not_readmitted(store, tmp_path):
    from matreg.curate.review import CurationError, record_decision

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "gaps.csv", tmp_path / "b" / "more.csv"
    mapping = GAP_MAPPING + "name_column: name\n"
    first.write_text("id,formula,gap,rho,name\nS1,ZnO,3.31,,batch A\nS2,GaN,3.4,,\n", encoding="utf-8")
    second.write_text("id,formula,gap,rho,name\nS1,ZnO,3.30,5.61,zincite\n", encoding="utf-8")
    (tmp_path / "m.yaml").write_text(mapping, encoding="utf-8")
    import_file(store, first, tmp_path / "m.yaml")
    import_file(store, second, tmp_path / "m.yaml")  # the same key, later: its value is shown
    first.write_text("id,formula,gap,rho,name\nS2,GaN,3.45x,,\n", encoding="utf-8")  # S1 deleted, S2 mistyped
    assert import_file(store, first, tmp_path / "m.yaml").n_withdrawn == 1  # S2's row is still in the file
    assert _stored(store) == [["S1", "band_gap", 3.30], ["S1", "density", 5.61], ["S2", "band_gap", 3.4]]
    assert store.query("SELECT name FROM materials WHERE source_id = 'S1'").iloc[0, 0] == "zincite"
    item = single_value(store.query("SELECT quarantine_id FROM quarantine WHERE item = 'S2'"))
    with pytest.raises(CurationError, match="'gaps:S2' of S2 is already in the store, as an import of its file"):
        record_decision(store, "readmit", "A. Steward", "typo", quarantine_id=item, value=3.45)
    first.write_text("id,formula,gap,rho,name\nS3,Si,1.12,,\n", encoding="utf-8")  # S2 deleted: withdrawn
    assert import_file(store, first, tmp_path / "m.yaml").n_withdrawn == 1
    with pytest.raises(CurationError, match="S2 of gaps .* is no longer given by its source as it was rejected"):
        record_decision(store, "readmit", "A. Steward", "typo", quarantine_id=item, value=3.45)  # the file lacks it
    assert ["S2", "band_gap", 3.45] not in _stored(store)
    assert store.query("SELECT count(*) FROM curation_log").iloc[0, 0] == 0


def test_rows_without_an_id_column_failing_alike_are_two_quarantine_rows_each_readmitted_as_its_own(store, tmp_path):
    from matreg.curate.review import record_decision

    mapping = GAP_MAPPING.replace("id_column: id\n", "").split("  rho:")[0]
    data, mapping = _write(tmp_path, "formula,gap\nZnO,3;3\nGaN,3.4\nZnO,3;3\n", mapping)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined, dict(report.reasons)) == (1, 2, {"non-numeric value '3;3'": 2})
    rows = store.query("SELECT quarantine_id, item FROM quarantine ORDER BY item").values.tolist()
    assert [item for _, item in rows] == ["line 2", "line 4"]
    for quarantine_id, _ in rows:
        record_decision(store, "readmit", "A. Steward", "3.3", quarantine_id=quarantine_id, value=3.3)
    materials = store.query("SELECT source_id, formula FROM materials ORDER BY 1").values.tolist()
    assert materials == [["lab.csv:row-2", "ZnO"], ["lab.csv:row-3", "GaN"], ["lab.csv:row-4", "ZnO"]]


def test_identical_rows_of_a_repeated_id_are_one_quarantine_row_counted_once_with_its_reason(store, tmp_path):
    rows = "K-1,ZnO,3.3,5.61\nK-3,GaN,3.4,6.15\nK-3,GaN,3.4,6.15\nK-3,GaN,3.4,6.15\n"
    data, mapping = _write(tmp_path, "id,formula,gap,rho\n" + rows, GAP_MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined) == (2, 1)
    repeated = "duplicate id 'K-3': row gives band_gap, which line 3 gave (a record has one value of a property per "
    assert dict(report.reasons) == {repeated + "method and conditions)": 1}
    assert store.query("SELECT item FROM quarantine").values.tolist() == [["line 5"]]


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_row_the_file_still_has_but_now_rejects_keeps_its_last_valid_read_and_is_not_withdrawn(
    store, tmp_path, dry_run
):
    data, mapping = _write(tmp_path, "id,formula,gap,rho\nS1,GaN,3.4,\nS2,ZnO,3.3,\nS3,Si,1.1,\n", GAP_MAPPING)
    import_file(store, data, mapping)
    data.write_text("id,formula,gap,rho\nS1,GaN,bad,\nS2,ZnO,3.3,\n", encoding="utf-8")  # S3 deleted
    connector = LabConnector(data, load_mapping(mapping))
    assert run_ingest(connector, store, dry_run=dry_run).n_withdrawn == 1  # S3 alone
    if dry_run:
        return
    assert store.query("SELECT source_id FROM materials ORDER BY 1").values.tolist() == [["S1"], ["S2"]]
    assert _stored(store) == [["S1", "band_gap", 3.4], ["S2", "band_gap", 3.3]]
    assert store.query("SELECT item, reasons[1] FROM open_quarantine").values.tolist() == [
        ["S1", "non-numeric value 'bad'"]
    ]
    data.write_text('id,formula,gap,rho\nS1,GaN,"3,41",\nS2,ZnO,3.3,\n', encoding="utf-8")  # a row that cannot be read
    assert import_file(store, data, mapping).n_withdrawn == 0
    assert _stored(store) == [["S1", "band_gap", 3.4], ["S2", "band_gap", 3.3]]


def test_without_an_id_column_a_rejected_row_keeps_the_last_valid_read_of_its_place_only_as_the_same_material(
    store, tmp_path
):
    mapping = GAP_MAPPING.replace("id_column: id\n", "").split("  rho:")[0]
    data, mapping = _write(tmp_path, "formula,gap\nZnO,3.3\nGaN,3.4\nSi,1.1\n", mapping)
    import_file(store, data, mapping)
    data.write_text("formula,gap\nZnO,3.3\nGaN,bad\nSi,1.1\n", encoding="utf-8")  # row-3 mistyped in place
    assert import_file(store, data, mapping).n_withdrawn == 0
    assert _stored(store) == [
        ["lab.csv:row-2", "band_gap", 3.3],
        ["lab.csv:row-3", "band_gap", 3.4],
        ["lab.csv:row-4", "band_gap", 1.1],
    ]
    data.write_text("formula,gap\nZnO,3.3\nSi,bad\n", encoding="utf-8")  # GaN deleted: Si, mistyped, is row-3 now
    assert import_file(store, data, mapping).n_withdrawn == 2  # row-3 held GaN: no read of Si's row
    assert _stored(store) == [["lab.csv:row-2", "band_gap", 3.3]]


def test_without_an_id_column_a_row_an_older_matreg_stored_and_this_one_refuses_keeps_its_last_valid_read(
    store, tmp_path
):
    # 'ZnO[0]', which an older matreg read as the ion ZnO[+0] (charge 0), now refused: still the material stored there
    mapping = GAP_MAPPING.replace("id_column: id\n", "").split("  rho:")[0]
    data, mapping = _write(tmp_path, "formula,gap\nZnO,3.3\nGaN,3.4\n", mapping)
    import_file(store, data, mapping)
    stored = {"formula": "ZnO[+0]", "formula_original": "ZnO[0]", "charge": 0.0}
    as_an_older_matreg_stored(store, {"gaps:lab.csv:row-2": stored})
    data.write_text("formula,gap\nZnO[0],3.3\nGaN,3.41\n", encoding="utf-8")  # the file as that matreg read it
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_quarantined, report.n_withdrawn) == (1, 1, 0)
    assert list(report.reasons) == ["'ZnO[0]': its charge '[0]' is zero, which is no ion's: write the neutral formula "
                                    "without it ('ZnO')"]  # fmt: skip
    assert _stored(store) == [["lab.csv:row-2", "band_gap", 3.3], ["lab.csv:row-3", "band_gap", 3.41]]


MIXED_GAPS = (
    "dataset: gaps\nformula_column: formula\nid_column: id\ncitation: c\nprovenance: experimental\ncolumns:\n"
    "  gap_exp: {property: band_gap, unit: eV}\n"
    "  gap_pbe: {property: band_gap, unit: eV, method: PBE, provenance: dft}\n"
)


def test_a_column_of_computed_values_in_a_file_of_measured_ones_is_filed_under_its_own_provenance(store, tmp_path):
    import_file(store, *_write(tmp_path, "id,formula,gap_exp,gap_pbe\nS1,GaAs,1.42,0.19\n", MIXED_GAPS))
    stored = store.query("SELECT coalesce(method, '-'), provenance, value FROM properties ORDER BY value")
    assert stored.values.tolist() == [["PBE", "dft", 0.19], ["-", "experimental", 1.42]]
    assert store.query("SELECT provenance FROM materials").values.tolist() == [["experimental"]]  # the file's
    measured = Dataset(description="d", version="1", properties=["band_gap"], provenance=["experimental"])
    assert store.query(*dataset_query(measured))["value"].tolist() == [1.42]


def test_a_columns_provenance_is_checked_as_the_files(tmp_path):
    mapping = MIXED_GAPS.replace("provenance: dft", "provenance: computed")
    with pytest.raises(ConfigError, match=r"(?s)gap_pbe.*provenance.*'experimental', 'dft' or 'simulated'"):
        load_mapping(_write(tmp_path, "id,formula,gap_exp,gap_pbe\n", mapping)[1])


def test_a_value_of_a_column_of_its_own_provenance_is_readmitted_under_it(store, tmp_path):
    from matreg.curate.review import record_decision

    import_file(store, *_write(tmp_path, "id,formula,gap_exp,gap_pbe\nS1,GaAs,1.42,-0.19\n", MIXED_GAPS))
    rejected = store.query("SELECT quarantine_id, raw FROM quarantine").iloc[0]
    assert '"provenance":"dft"' in rejected["raw"].replace(" ", "")
    record_decision(store, "readmit", "A. Steward", "sign lost", quarantine_id=rejected["quarantine_id"], value=0.19)
    stored = store.query("SELECT provenance, value FROM properties ORDER BY value").values.tolist()
    assert stored == [["dft", 0.19], ["experimental", 1.42]]


def test_a_dft_functional_filed_under_the_files_other_provenance_is_warned_of_not_guessed(store, tmp_path, caplog):
    mapping = MIXED_GAPS + (
        "  gap_hse: {property: band_gap, unit: eV, method: HSE}\n"  # the vocabulary's HSE06: a functional
        "  gap_uv: {property: band_gap, unit: eV, method: UV-vis Tauc plot, temperature_K: 300}\n"  # a technique
        "  gap_dft: {property: band_gap, unit: eV, method: DFT, temperature_K: 300}\n"  # no functional named
    )
    csv = "id,formula,gap_exp,gap_pbe,gap_hse,gap_uv,gap_dft\nS1,GaAs,1.42,0.19,1.21,1.43,0.5\n"
    with caplog.at_level("WARNING", logger="matreg"):
        import_file(store, *_write(tmp_path, csv, mapping))
    assert [record.getMessage() for record in caplog.records] == [
        "column 'gap_hse': its values by HSE06, a DFT functional, are filed as experimental (the mapping's "
        "provenance); give the column `provenance: dft` if they are computed, or `provenance: experimental` if they "
        "are what it says"
    ]
    stored = store.query("SELECT method, provenance FROM properties WHERE method = 'HSE06'").values.tolist()
    assert stored == [["HSE06", "experimental"]]  # as the mapping says
    caplog.clear()
    (tmp_path / "mapping.yaml").write_text(mapping.replace("provenance: experimental", "provenance: dft"))
    import_file(store, tmp_path / "lab.csv", tmp_path / "mapping.yaml")
    assert caplog.records == []


def test_a_column_of_another_provenance_does_not_take_the_files_method_and_is_warned_of(store, tmp_path, caplog):
    mapping = MIXED_GAPS.replace("provenance: experimental\n", "provenance: experimental\nmethod: UV-Vis\n")
    mapping += "  gap_calc: {property: band_gap, unit: eV, provenance: dft, temperature_K: 0}\n"
    csv = "id,formula,gap_exp,gap_pbe,gap_calc\nS1,GaAs,1.42,0.19,0.5\n"
    with caplog.at_level("WARNING", logger="matreg"):
        import_file(store, *_write(tmp_path, csv, mapping))
    assert [record.getMessage() for record in caplog.records] == [
        "column 'gap_calc': its values are filed as dft, not as the mapping's experimental, so they do not take the "
        "mapping's method (UV-Vis) and are stored with no method; give the column its own `method:`"
    ]
    stored = store.query("SELECT coalesce(method, '-'), provenance, value FROM properties ORDER BY value")
    assert stored.values.tolist() == [["PBE", "dft", 0.19], ["-", "dft", 0.5], ["UV-Vis", "experimental", 1.42]]
    by_uv_vis = Dataset(description="d", version="1", properties=["band_gap"], methods=["UV-Vis"])
    assert store.query(*dataset_query(by_uv_vis))["value"].tolist() == [1.42]


def test_a_files_method_that_is_a_functional_is_warned_of_for_each_column_it_gives_its_method(tmp_path, caplog):
    mapping = MIXED_GAPS.replace("provenance: experimental\n", "provenance: experimental\nmethod: GGA+U\n")
    data, mapping = _write(tmp_path, "id,formula,gap_exp,gap_pbe\n", mapping)
    with caplog.at_level("WARNING", logger="matreg"):
        LabConnector(data, load_mapping(mapping))
    assert [record.getMessage()[:40] for record in caplog.records] == ["column 'gap_exp': its values by PBE+U, a"]


def test_a_catalog_source_fetched_meanwhile_under_a_lab_datasets_name_refuses_its_import(store, tmp_path, catalog):
    from matreg.sources import FetchRequest, build_connector

    mapping = "dataset: janaf\nformula_column: formula\nid_column: id\ncitation: ours\ncolumns:\n"
    mapping += "  gap: {property: band_gap, unit: eV}\n"
    data, mapping = _write(tmp_path, "id,formula,gap\nH-064,H2O,6.5\nX-1,ZnO,about 3\n", mapping)
    fetch = build_connector("janaf", catalog, FetchRequest(ids=["H-064"]))
    fetched_meanwhile = functools.partial(run_ingest, fetch, Store(store.root))
    with pytest.raises(ConfigError, match=r"holds records of catalog source 'janaf' \(fetched from http://127"):
        run_ingest(PublishedAfterAnotherRun(data, mapping, fetched_meanwhile), store)
    assert store.query("SELECT DISTINCT property FROM properties WHERE property = 'band_gap'").empty
    assert store.query("SELECT status, count(*) FROM fetch_runs GROUP BY 1").values.tolist() == [["complete", 1]]


def test_a_lab_dataset_and_a_catalog_source_of_one_name_are_refused_in_either_order(tmp_path, catalog):
    from matreg.sources import FetchRequest, build_connector
    from matreg.store import Store

    mapping = "dataset: janaf\nformula_column: formula\nid_column: id\ncitation: ours\ncolumns:\n"
    mapping += "  gap: {property: band_gap, unit: eV}\n"
    data, mapping = _write(tmp_path, "id,formula,gap\nH-064,H2O,6.5\n", mapping)
    lab_first, fetch_first = Store(tmp_path / "lab-first"), Store(tmp_path / "fetch-first")
    import_file(lab_first, data, mapping)
    with pytest.raises(ConfigError, match=r"holds lab dataset 'janaf' \(imported from .*lab\.csv\).* name of its own"):
        run_ingest(build_connector("janaf", catalog, FetchRequest(ids=["H-064"])), lab_first)
    stored = lab_first.query("SELECT record_id, property, value FROM properties").values.tolist()
    assert stored == [["janaf:H-064", "band_gap", 6.5]]  # the lab's value stays
    run_ingest(build_connector("janaf", catalog, FetchRequest(ids=["H-064"])), fetch_first)
    before = fetch_first.table("properties")
    with pytest.raises(
        ConfigError, match=r"holds records of catalog source 'janaf' \(fetched from http://127\.0\.0\.1"
    ):
        import_file(fetch_first, data, mapping)
    assert fetch_first.table("properties").equals(before)


OPTICS = (
    "dataset: optics\nformula_column: formula\nid_column: id\ncitation: c\nmethod: UV-Vis\nmissing_values: [n/a]\n"
    "columns:\n  gap: {property: band_gap, unit: eV, method_field: technique}\n"
)


def _methods(store) -> list[list]:
    query = "SELECT m.source_id, coalesce(p.method, '-'), p.value FROM properties p JOIN materials m USING (record_id)"
    query += " ORDER BY ALL"
    return store.query(query).values.tolist()


def test_a_method_column_gives_each_rows_value_its_method_and_a_blank_cell_the_mappings(store, tmp_path):
    csv = (
        "id,formula,gap,technique\nS1,GaAs,1.42,photoluminescence\nS2,GaN,3.4, Ellipsometry \nS3,ZnO,3.3,\n"
        "S4,CdS,2.42,N/A\n"
    )
    report = import_file(store, *_write(tmp_path, csv, OPTICS))
    assert (report.n_stored, report.n_quarantined, dict(report.unmapped)) == (4, 0, {})  # 'technique' is read
    assert _methods(store) == [  # methods the vocabulary lacks (a lab's techniques) are stored as given
        ["S1", "photoluminescence", 1.42],
        ["S2", "Ellipsometry", 3.4],
        ["S3", "UV-Vis", 3.3],  # a blank cell, or one marked missing: the mapping's method, as a column without one
        ["S4", "UV-Vis", 2.42],
    ]
    by_pl = Dataset(description="d", version="1", properties=["band_gap"], methods=["Photoluminescence"])
    assert store.query(*dataset_query(by_pl))["value"].tolist() == [1.42]


def test_a_rows_method_is_stored_under_the_vocabularys_name(store, tmp_path):
    mapping = OPTICS.replace("citation: c\n", "citation: c\nprovenance: dft\n").replace("method: UV-Vis\n", "")
    csv = "id,formula,gap,technique\nS1,NiO,2.4,GGA+U\nS2,CoO,2.5,hse\nS3,MnO,3.6,\n"
    import_file(store, *_write(tmp_path, csv, mapping))
    assert _methods(store) == [["S1", "PBE+U", 2.4], ["S2", "HSE06", 2.5], ["S3", "-", 3.6]]  # none to fall back on
    by_pbe_u = Dataset(description="d", version="1", properties=["band_gap"], methods=["PBE+U"])
    assert store.query(*dataset_query(by_pbe_u))["value"].tolist() == [2.4]


def test_a_method_column_is_given_instead_of_a_columns_method(tmp_path):
    _, mapping = _write(tmp_path, "", OPTICS.replace("method_field:", "method: PL, method_field:"))
    with pytest.raises(ConfigError, match="give at most one of 'method' or 'method_field'"):
        load_mapping(mapping)


def test_one_record_by_three_methods_in_three_rows_is_one_record_and_a_method_given_twice_a_repeated_id(
    store, tmp_path
):
    rows = "S1,GaAs,1.42,UV-Vis\nS1,GaAs,1.42,photoluminescence\nS1,GaAs,1.42,ellipsometry\nS1,GaAs,1.41,ellipsometry\n"
    report = import_file(store, *_write(tmp_path, "id,formula,gap,technique\n" + rows, OPTICS))
    assert (report.n_stored, report.n_values, report.n_quarantined) == (1, 3, 1)
    assert dict(report.reasons) == {
        "duplicate id 'S1': row gives band_gap by ellipsometry, which line 4 gave (a record has one value of a "
        "property per method and conditions)": 1
    }
    assert store.query("SELECT item FROM quarantine ORDER BY 1").values.tolist() == [["line 5"]]
    assert _methods(store) == [["S1", "UV-Vis", 1.42], ["S1", "ellipsometry", 1.42], ["S1", "photoluminescence", 1.42]]


def test_two_columns_of_one_property_are_one_key_in_a_row_whose_method_cells_make_them_so(store, tmp_path):
    mapping = OPTICS + "  gap_pl: {property: band_gap, unit: eV, method: photoluminescence}\n"
    _, mapping_path = _write(tmp_path, "", mapping)
    twice = mapping + "  gap_2: {property: band_gap, unit: eV, method_field: technique}\n"
    mapping_path.write_text(twice, encoding="utf-8")  # the same method cell: always one key
    with pytest.raises(ConfigError, match="columns gap, gap_2 all give 'band_gap' at the same conditions and method"):
        load_mapping(mapping_path)
    csv = "id,formula,gap,technique,gap_pl\nS1,GaAs,1.42,UV-Vis,1.43\nS2,GaN,3.4,photoluminescence,3.39\nS3,ZnO,3.3,,\n"
    report = import_file(store, *_write(tmp_path, csv, mapping))
    assert (report.n_stored, report.n_quarantined) == (2, 1)
    assert list(store.query("SELECT reasons FROM quarantine").iloc[0, 0]) == [
        "columns gap and gap_pl both give band_gap by photoluminescence at the same conditions"
    ]
    assert _methods(store) == [["S1", "UV-Vis", 1.42], ["S1", "photoluminescence", 1.43], ["S3", "UV-Vis", 3.3]]


def test_a_rows_method_cell_is_part_of_what_its_quarantined_row_is(store, tmp_path):
    data, mapping = _write(tmp_path, "id,formula,gap,technique\nS1,GaAs,about 1.4,UV-Vis\n", OPTICS)
    import_file(store, data, mapping)
    data.write_text("id,formula,technique,gap\nS1,GaAs,UV-Vis,about 1.4\n", encoding="utf-8")  # columns moved
    import_file(store, data, mapping)
    assert len(store.table("quarantine")) == 1
    data.write_text("id,formula,gap,technique\nS1,GaAs,about 1.4,photoluminescence\n", encoding="utf-8")
    import_file(store, data, mapping)
    assert store.query("SELECT item FROM open_quarantine").values.tolist() == [["S1"]]
    assert len(store.table("quarantine")) == 2  # a value by another method: another input


def test_a_rows_method_that_is_a_dft_functional_is_warned_of_once_for_each_method(store, tmp_path, caplog):
    mapping = OPTICS + "  gap_dft: {property: band_gap, unit: eV, provenance: dft, method_field: functional}\n"
    csv = (
        "id,formula,gap,technique,gap_dft,functional\nS1,NiO,2.4,GGA+U,,\nS2,CoO,2.5,PBE+U,2.1,PBE\n"
        "S3,MnO,3.6,UV-Vis,1.1,\nS4,FeO,,HSE06,,\n"
    )
    with caplog.at_level("WARNING", logger="matreg"):
        import_file(store, *_write(tmp_path, csv, mapping))
    assert [record.getMessage() for record in caplog.records] == [
        "column 'gap': its values of rows whose 'technique' cell names PBE+U, a DFT functional, are filed as "
        "experimental (the mapping's provenance): map computed values in a column of their own with `provenance: "
        "dft` (a column's provenance is all its rows'), or give the column `provenance: experimental` if they are "
        "what it says",
        "column 'gap_dft': its values of rows with a blank 'functional' cell are filed as dft, not as the mapping's "
        "experimental, so they do not take the mapping's method (UV-Vis) and are stored with no method; fill in "
        "their 'functional' cells",
    ]  # HSE06 gives no value (S4's gap is blank); gap_dft's PBE is filed as dft
    stored = store.query("SELECT coalesce(method, '-'), provenance, value FROM properties ORDER BY value")
    assert stored.values.tolist() == [
        ["-", "dft", 1.1],
        ["PBE", "dft", 2.1],
        ["PBE+U", "experimental", 2.4],
        ["PBE+U", "experimental", 2.5],
        ["UV-Vis", "experimental", 3.6],
    ]


EOS = _mapping_head("eos") + (
    "  V: {property: volume_per_atom, unit: angstrom^3/atom, pressure_field: P, pressure_unit: kbar}\n"
)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # 1e306 kbar, in pascals
def test_a_pressure_column_is_stored_in_pascals_and_a_pressure_that_cannot_be_is_quarantined(store, tmp_path):
    rows = "S1,MgO,9.35,0\nS2,MgO,9.3,2.3\nS3,MgO,9.1,about 30\nS4,MgO,9.0,-5\nS5,MgO,9.36,\nS6,MgO,8.9,1e306\n"
    report = import_file(store, *_write(tmp_path, "id,formula,V,P\n" + rows, EOS))
    assert (report.n_stored, report.n_quarantined) == (3, 3)
    query = "SELECT m.source_id, coalesce(p.pressure_Pa, -1) FROM properties p JOIN materials m USING (record_id)"
    assert store.query(query + " ORDER BY 1").values.tolist() == [["S1", 0.0], ["S2", 2.3e8], ["S5", -1.0]]
    reasons = dict(store.query("SELECT item, reasons[1] FROM quarantine").values)
    assert reasons == {
        "S3": "pressure in column 'P': non-numeric value 'about 30'",
        "S4": "pressure_Pa -5e+08 is negative",
        "S6": "pressure_Pa inf is not a finite number",
    }
    at_2_3_kbar = Dataset(description="d", version="1", properties=["volume_per_atom"], pressure_Pa=2.3e8)
    assert store.query(*dataset_query(at_2_3_kbar))["value"].tolist() == [9.3]  # in floats 229999999.99999997 Pa


@pytest.mark.parametrize(
    ("condition", "stored", "at", "selected"),
    [  # the numbers stored, by column V0, V1, ...: a dataset at `at` selects the values of these columns
        ("temperature_K", [23.7 + 273.15, 296.86], 296.85, [9.35]),  # 296.84999999999997, as an older matreg stored it
        ("temperature_K", [23.7 + 273.15, 296.86], 296.86, [9.3]),
        ("pressure_Pa", [229999999.99999997, 2.3e8 + 0.01], 2.3e8, [9.35]),  # 2.3 kbar, as an older matreg stored it
        ("pressure_Pa", [1e-8, 3e-8, 0.0], 1e-8, [9.35]),  # a vacuum's pressure keeps its own: neither 3e-8 nor 0
        ("pressure_Pa", [1e-8, 3e-8, 0.0], 0.0, [9.25]),
    ],
)
def test_a_dataset_at_a_condition_selects_the_values_stored_at_it_unrounded_by_an_older_matreg_too(
    store, tmp_path, condition, stored, at, selected
):
    columns = "".join(
        f"  V{n}: {{property: volume_per_atom, unit: angstrom^3/atom, {condition}: {number!r}}}\n"
        for n, number in enumerate(stored)
    )  # a fixed condition is stored as the mapping gives it: as an older matreg stored a converted one, unrounded
    cells = ",".join(f"{9.35 - 0.05 * n:.2f}" for n in range(len(stored)))
    header = ",".join(f"V{n}" for n in range(len(stored)))
    import_file(store, *_write(tmp_path, f"id,formula,{header}\nS1,MgO,{cells}\n", _mapping_head("eos") + columns))
    assert sorted(store.query(f"SELECT {condition} FROM properties")[condition]) == sorted(stored)
    dataset = Dataset(description="d", version="1", properties=["volume_per_atom"], **{condition: at})
    assert store.query(*dataset_query(dataset))["value"].tolist() == selected
    export_dataset(store, Catalog(datasets={"eos": dataset}), "eos", "csv", tmp_path / "eos.csv")
    assert pd.read_csv(tmp_path / "eos.csv")["value"].tolist() == selected


def test_a_pressure_in_gpa_is_stored_in_pascals_and_a_column_without_one_is_recorded_as_before(store, tmp_path):
    mapping = EOS.replace("pressure_unit: kbar", "pressure_unit: GPa") + "  rho: {unit: g/cm^3}\n"
    csv = "id,formula,V,P,rho\nS1,MgO,8.1,123.4,\nS2,MgO,9.3,0.0001,3.58\n"
    import_file(store, *_write(tmp_path, csv, mapping))
    stored = store.query("SELECT property, coalesce(pressure_Pa, -1) FROM properties ORDER BY ALL").values.tolist()
    assert stored == [["density", -1.0], ["volume_per_atom", 1e5], ["volume_per_atom", 1.234e11]]
    recorded = json.loads(single_value(store.query("SELECT parameters FROM fetch_runs")))["mapping"]["columns"]
    assert recorded["rho"] == {"unit": "g/cm^3", "temperature_unit": "K"}  # no pressure_unit: the mapping as before


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("pressure_Pa: 1e5, pressure_field: P", "give at most one of 'pressure_Pa' or 'pressure_field'"),
        ("pressure_field: P, pressure_unit: eV", "pressure_unit 'eV' is no unit of pressure"),
        ("pressure_Pa: 1e5, pressure_unit: GPa", "pressure_unit is the unit of a pressure_field"),
    ],
)
def test_a_columns_pressure_is_one_of_a_fixed_one_or_a_pressure_column_in_a_unit_of_pressure(tmp_path, spec, message):
    mapping = EOS.replace("pressure_field: P, pressure_unit: kbar", spec)
    with pytest.raises(ConfigError, match=message):
        load_mapping(_write(tmp_path, "", mapping)[1])


def test_two_columns_of_one_property_at_a_rows_pressure_are_one_key_where_it_is_the_others(store, tmp_path):
    mapping = EOS + "  V0: {property: volume_per_atom, unit: angstrom^3/atom, pressure_Pa: 0}\n"
    twice = mapping + "  V2: {property: volume_atom, unit: angstrom^3/atom, pressure_field: P, pressure_unit: kbar}\n"
    with pytest.raises(ConfigError, match="columns V, V2 all give 'volume_per_atom' at the same conditions"):
        load_mapping(_write(tmp_path, "", twice)[1])
    data, mapping_path = _write(tmp_path, "id,formula,V,P,V0\nS1,MgO,9.2,23,9.35\nS2,MgO,9.3,0,9.35\n", mapping)
    report = import_file(store, data, mapping_path)
    assert (report.n_stored, report.n_quarantined) == (1, 1)
    assert list(store.query("SELECT reasons FROM quarantine").iloc[0, 0]) == [
        "columns V and V0 both give volume_per_atom at the same conditions"
    ]


CP_SERIES = (
    "dataset: cp-lab\nformula_column: formula\nid_column: sample\ncitation: c\nmethod: DSC\ncolumns:\n"
    "  Cp: {property: heat_capacity_cp, unit: J/(mol*K), temperature_field: T, temperature_unit: degC}\n"
)
CP_ROWS = ["S1,Al2O3,25,79.0", "S1,Al2O3,100,96.1", "S1,Al2O3,200,106.9"]  # a Cp(T) series: one row per measurement
CP_STORED = [["S1", 298.15, 79.0], ["S1", 373.15, 96.1], ["S1", 473.15, 106.9]]


def _series(store, tmp_path, rows, mapping=CP_SERIES, header="sample,formula,T,Cp", page_size=1000):
    """Import `rows` under `header` as lab.csv, by `mapping`, `page_size` rows a page."""
    data, mapping_path = _write(tmp_path, "\n".join([header, *rows]) + "\n", mapping)
    return run_ingest(LabConnector(data, load_mapping(mapping_path), page_size=page_size), store)


def _series_values(store):
    query = "SELECT m.source_id, p.temperature_K, p.value FROM properties p JOIN materials m USING (record_id)"
    return store.query(query + " ORDER BY ALL").values.tolist()


def test_rows_of_one_id_at_three_temperatures_are_one_record_with_three_values_exported_as_three(store, tmp_path):
    report = _series(store, tmp_path, CP_ROWS)
    assert (report.n_fetched, report.n_stored, report.n_values, report.n_quarantined) == (3, 1, 3, 0)
    assert _series_values(store) == CP_STORED
    assert store.query("SELECT record_id, source_url FROM material_writes").values.tolist() == [
        ["cp-lab:S1", "file:lab.csv#id=S1"]
    ]
    catalog = Catalog(datasets={"cp": Dataset(description="d", version="1", properties=["heat_capacity_cp"])})
    export_dataset(store, catalog, "cp", "csv", tmp_path / "cp.csv")
    exported = pd.read_csv(tmp_path / "cp.csv")
    assert exported[["record_id", "temperature_K", "value"]].values.tolist() == [
        ["cp-lab:S1", temperature, value] for _, temperature, value in CP_STORED
    ]


def test_rows_of_one_id_far_apart_on_other_pages_are_one_record(store, tmp_path):
    rows = ["S1,Al2O3,25,79.0", "S2,MgO,25,37.2", "S3,ZnO,25,41.0", "S2,MgO,100,42.5", "S1,Al2O3,100,96.1"]
    report = _series(store, tmp_path, [*rows, "S1,Al2O3,200,106.9"], page_size=2)
    assert (report.n_stored, report.n_values, report.n_quarantined) == (3, 6, 0)
    assert [row for row in _series_values(store) if row[0] == "S1"] == CP_STORED
    assert [row[0] for row in _series_values(store)].count("S2") == 2


@pytest.mark.parametrize(
    ("row", "named", "reason"),
    [
        ("S1,GaN,100,96.1", "", "row gives formula 'GaN' where line 2 gave 'Al2O3'"),
        ("S1,Al2 O3,100,96.1", "", "row gives formula 'Al2 O3' where line 2 gave 'Al2O3'"),  # as written
        ("S1,Al2O3,100,96.1,", "corundum", "row gives no name where line 2 gave 'corundum'"),
        ("S1,Al2O3,100,96.1,alumina", "corundum", "row gives name 'alumina' where line 2 gave 'corundum'"),
    ],
)
def test_a_row_of_an_id_that_differs_in_a_cell_of_its_record_is_a_duplicate_id_naming_the_cell(
    store, tmp_path, row, named, reason
):
    mapping, header, first = CP_SERIES, "sample,formula,T,Cp", CP_ROWS[0]
    if named:
        mapping, header, first = mapping + "name_column: name\n", header + ",name", f"{first},{named}"
    report = _series(store, tmp_path, [first, row], mapping, header)
    assert (report.n_stored, report.n_values, report.n_quarantined) == (1, 1, 1)
    assert dict(report.reasons) == {
        f"duplicate id 'S1': {reason} (the rows of one id are one record: they repeat its formula, name, space group, "
        "structure and extension columns)": 1
    }
    assert store.query("SELECT item FROM quarantine").values.tolist() == [["line 3"]]
    assert _series_values(store) == CP_STORED[:1]


def test_rows_of_one_id_repeat_its_space_group_or_are_a_duplicate_id_naming_it(store, tmp_path):
    rows = [row + ",167" for row in CP_ROWS[:2]] + [CP_ROWS[2] + ",62"]  # corundum's R-3c, then 62 (Pnma)
    report = _series(store, tmp_path, rows, CP_SERIES + "spacegroup_column: sg\n", "sample,formula,T,Cp,sg")
    assert (report.n_stored, report.n_values, report.n_quarantined) == (1, 2, 1)
    assert next(iter(report.reasons)).startswith(
        "duplicate id 'S1': row gives space group '62' where line 2 gave '167'"
    )
    assert store.query("SELECT spacegroup_number FROM materials").values.tolist() == [[167]]
    assert _series_values(store) == CP_STORED[:2]


def test_a_row_of_an_extension_column_other_than_its_ids_first_row_is_refused_naming_the_attribute(store, tmp_path):
    mapping = CP_SERIES + "extension: lab-sample\nextra_columns: {sample: sample_id, route: synthesis_route}\n"
    rows = ["S1,Al2O3,25,79.0,sol-gel", "S1,Al2O3,100,96.1,sol-gel", "S1,Al2O3,200,106.9,CVD"]
    report = _series(store, tmp_path, rows, mapping, "sample,formula,T,Cp,route")
    assert (report.n_stored, report.n_values, report.n_quarantined) == (1, 2, 1)
    assert next(iter(report.reasons)).startswith(
        "duplicate id 'S1': row gives synthesis_route 'CVD' where line 2 gave 'sol-gel'"
    )
    attributes = "SELECT attribute, value FROM record_attributes ORDER BY ALL"
    assert store.query(attributes).values.tolist() == [["sample_id", "S1"], ["synthesis_route", "sol-gel"]]


def test_a_row_giving_a_value_key_an_earlier_row_of_its_id_gave_is_refused_and_the_first_kept(store, tmp_path):
    # as a repeated id is refused (its first row kept), and a row giving one key twice is refused whole
    report = _series(store, tmp_path, [*CP_ROWS, "S1,Al2O3,100.0,95.8"])
    assert (report.n_stored, report.n_values, report.n_quarantined) == (1, 3, 1)
    assert dict(report.reasons) == {
        "duplicate id 'S1': row gives heat_capacity_cp by DSC at 373.15 K, which line 3 gave (a record has one value "
        "of a property per method and conditions)": 1
    }
    assert store.query("SELECT item FROM quarantine").values.tolist() == [["line 5"]]
    assert _series_values(store) == CP_STORED


def test_a_series_re_imported_unchanged_edited_or_less_a_row_changes_just_that_value(store, tmp_path):
    _series(store, tmp_path, CP_ROWS)
    again = _series(store, tmp_path, [CP_ROWS[2], CP_ROWS[0], CP_ROWS[1]])  # sorted otherwise: the same record
    assert (again.n_stored, again.n_unchanged, again.n_withdrawn) == (1, 1, 0)
    assert len(store.query("SELECT * FROM material_writes")) == 1
    edited = _series(store, tmp_path, [CP_ROWS[0], "S1,Al2O3,100,96.4", CP_ROWS[2]])
    assert (edited.n_unchanged, edited.n_withdrawn) == (0, 0)
    assert _series_values(store) == [CP_STORED[0], ["S1", 373.15, 96.4], CP_STORED[2]]
    fewer = _series(store, tmp_path, [CP_ROWS[0], CP_ROWS[2]])  # the 100 °C row deleted: its value alone goes
    assert (fewer.n_stored, fewer.n_values, fewer.n_withdrawn) == (1, 2, 0)
    assert _series_values(store) == [CP_STORED[0], CP_STORED[2]]
    assert store.query("SELECT count(*) FROM materials").iloc[0, 0] == 1


@pytest.mark.parametrize(
    ("mapping", "header", "cell", "reason"),
    [
        (CP_SERIES, "sample;formula;T;Cp", "1e-400", "temperature in column 'T': too near 0 for a float: '1e-400'"),
        (EOS, "id;formula;P;V", "1e-400", "pressure in column 'P': too near 0 for a float: '1e-400'"),
        (
            EOS + "decimal: ','\n",
            "id;formula;P;V",
            "1,5e-400",
            "pressure in column 'P': too near 0 for a float: '1,5e-400'",
        ),
        (CP_SERIES, "sample;formula;T;Cp", "1e999", "temperature in column 'T': not a finite number: '1e999'"),
        (CP_SERIES, "sample;formula;T;Cp", "hot", "temperature in column 'T': non-numeric value 'hot'"),
    ],
)
def test_a_temperature_or_pressure_cell_that_is_no_number_is_quarantined_with_a_value_cells_reason(
    store, tmp_path, mapping, header, cell, reason
):
    # (1e-400 is nearer 0 than a float: it would read as 0, which it is not)
    report = _series(store, tmp_path, [f"S1;Al2O3;{cell};79"], mapping, header)
    assert (report.n_stored, report.n_quarantined) == (0, 1)
    assert store.query("SELECT reasons[1] FROM quarantine").iloc[0, 0].startswith(reason)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("S1,Al2O3,hot,96.1", "temperature in column 'T': non-numeric value 'hot'"),
        ("S1,Al2O3,100,96.1x", "non-numeric value '96.1x'"),
        ('S1,Al2O3,100,"96,1"', "column 'Cp': '96,1' has a comma"),
    ],
)
def test_a_bad_cell_of_one_measurement_row_quarantines_that_row_alone(store, tmp_path, row, reason):
    report = _series(store, tmp_path, [CP_ROWS[0], row, CP_ROWS[2]])
    assert (report.n_stored, report.n_values, report.n_quarantined) == (1, 2, 1)
    assert next(iter(report.reasons)).startswith(reason)
    assert store.query("SELECT item FROM quarantine").values.tolist() == [["S1"]]
    assert _series_values(store) == [CP_STORED[0], CP_STORED[2]]
    assert _series(store, tmp_path, [CP_ROWS[0], row, CP_ROWS[2]]).n_unchanged == 1  # and again: nothing changes


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("S1,Al2O3,100,96.1x", "non-numeric value '96.1x'"),
        ('S1,Al2O3,100,"96,1"', "column 'Cp': '96,1' has a comma"),
        # its key: the value no other row gives
        ("S1,Al2O3,hot,96.1", "temperature in column 'T': non-numeric value 'hot'"),
    ],
)
def test_a_series_row_the_file_still_has_but_now_rejects_keeps_its_last_valid_value_beside_the_others(
    store, tmp_path, row, reason
):
    _series(store, tmp_path, CP_ROWS)
    unchanged = _series(store, tmp_path, [CP_ROWS[0], row, CP_ROWS[2]])  # the other rows as stored: nothing written
    assert (unchanged.n_stored, unchanged.n_values, unchanged.n_unchanged, unchanged.n_withdrawn) == (1, 2, 1, 0)
    assert _series_values(store) == CP_STORED
    edited = _series(store, tmp_path, ["S1,Al2O3,25,79.4", row, CP_ROWS[2]])  # the record is written anew, with it
    assert (edited.n_values, edited.n_quarantined, edited.n_unchanged) == (2, 1, 0)
    assert _series_values(store) == [["S1", 298.15, 79.4], CP_STORED[1], CP_STORED[2]]
    open_rows = store.query("SELECT item, reasons[1] FROM open_quarantine").values.tolist()
    assert [[item, text.startswith(reason)] for item, text in open_rows] == [["S1", True]]
    catalog = Catalog(datasets={"cp": Dataset(description="d", version="1", properties=["heat_capacity_cp"])})
    export_dataset(store, catalog, "cp", "csv", tmp_path / "cp.csv")
    assert pd.read_csv(tmp_path / "cp.csv")[["temperature_K", "value"]].values.tolist() == [[298.15, 79.4]] + [
        stored[1:] for stored in CP_STORED[1:]
    ]
    fixed = _series(store, tmp_path, ["S1,Al2O3,25,79.4", "S1,Al2O3,100,96.3", CP_ROWS[2]])
    assert (fixed.n_values, fixed.n_quarantined) == (3, 0)
    assert _series_values(store) == [["S1", 298.15, 79.4], ["S1", 373.15, 96.3], CP_STORED[2]]
    assert store.query("SELECT count(*) FROM open_quarantine").iloc[0, 0] == 0


def test_a_series_row_deleted_while_another_is_rejected_is_withdrawn_and_the_rejected_ones_value_kept(store, tmp_path):
    _series(store, tmp_path, CP_ROWS)
    report = _series(store, tmp_path, ["S1,Al2O3,25,79.4", "S1,Al2O3,100,96.1x"])  # the 200 °C row deleted
    assert (report.n_values, report.n_quarantined, report.n_withdrawn) == (1, 1, 0)
    assert _series_values(store) == [["S1", 298.15, 79.4], CP_STORED[1]]
    # a new row rejected has no value stored to keep; the 100 °C row's value is kept, the 200 °C row's stays gone
    _series(store, tmp_path, ["S1,Al2O3,25,79.4", "S1,Al2O3,100,96.1x", "S1,Al2O3,300,1o9"])
    assert _series_values(store) == [["S1", 298.15, 79.4], CP_STORED[1]]


@pytest.mark.parametrize("formula", ["Al2 O3", "Al₂O₃"])
def test_a_series_row_rejected_keeps_its_value_where_the_formula_unit_is_only_written_otherwise(
    store, tmp_path, formula
):
    _series(store, tmp_path, CP_ROWS)
    rows = [f"S1,{formula},25,79.4", f"S1,{formula},100,96.1x", f"S1,{formula},200,106.9"]  # Al2O3 still
    _series(store, tmp_path, rows)
    assert _series_values(store) == [["S1", 298.15, 79.4], CP_STORED[1], ["S1", 473.15, 106.9]]


def test_a_series_row_rejected_keeps_no_value_of_another_formula_unit_than_its_record_is_now_written_with(
    store, tmp_path
):
    _series(store, tmp_path, CP_ROWS)
    rows = ["S1,Al4O6,25,158.0", "S1,Al4O6,100,96.1x", "S1,Al4O6,200,213.8"]  # per mole of Al4O6 now
    report = _series(store, tmp_path, rows)
    assert (report.n_stored, report.n_values, report.n_quarantined) == (1, 2, 1)
    assert _series_values(store) == [["S1", 298.15, 158.0], ["S1", 473.15, 213.8]]  # 96.1 was per mole of Al2O3


CP_AND_S = CP_SERIES + "  S: {property: entropy, unit: J/(mol*K), temperature_field: T, temperature_unit: degC}\n"


@pytest.mark.parametrize(
    ("cell", "reason"),
    [("96.1x", "non-numeric value '96.1x'"), ("9e9", "heat_capacity_cp = 9000000000 J/(mol*K) is outside")],
)
def test_a_value_a_re_import_rejects_beside_a_valid_one_keeps_its_last_valid_value_until_the_cell_is_fixed(
    store, tmp_path, cell, reason
):
    header, rows = "sample,formula,T,Cp,S", ["S1,Al2O3,25,79.0,50.9", "S1,Al2O3,100,96.1,74.2"]
    _series(store, tmp_path, rows, CP_AND_S, header)
    shown = "SELECT property, temperature_K, value FROM properties ORDER BY ALL"
    mistyped = _series(store, tmp_path, [rows[0], f"S1,Al2O3,100,{cell},74.5"], CP_AND_S, header)
    assert (mistyped.n_values, mistyped.n_quarantined) == (3, 1)  # the new entropy and the other row's two values
    assert store.query(shown).values.tolist() == [
        ["entropy", 298.15, 50.9],
        ["entropy", 373.15, 74.5],
        ["heat_capacity_cp", 298.15, 79.0],
        ["heat_capacity_cp", 373.15, 96.1],  # its last valid import's, beside the edited entropy
    ]
    open_rows = store.query("SELECT item, reasons[1] FROM open_quarantine").values.tolist()
    assert [[item, text.startswith(reason)] for item, text in open_rows] == [["S1:heat_capacity_cp@373.15K", True]]
    fixed = _series(store, tmp_path, [rows[0], "S1,Al2O3,100,96.3,74.5"], CP_AND_S, header)
    assert fixed.n_quarantined == 0
    assert ["heat_capacity_cp", 373.15, 96.3] in store.query(shown).values.tolist()
    assert store.query("SELECT count(*) FROM open_quarantine").iloc[0, 0] == 0


UNCERTAIN_MAPPING = _mapping_head("unc") + (
    "  gap: {property: band_gap, unit: eV, uncertainty_field: dgap}\n"
    "  rho: {property: density, unit: g/cm^3}\n"
    "  theta: {property: debye_temperature, unit: degC, uncertainty_field: dtheta}\n"
    "  dHf: {property: formation_energy_per_atom, unit: kJ/mol, uncertainty_field: ddHf}\n"
)
UNCERTAIN_ROWS = (
    "id,formula,gap,dgap,rho,theta,dtheta,dHf,ddHf\n"
    "S1,ZnO,3.2 \u00b1 0.1,,5.606(2),143.85,0.5,-350.5,4\n"
    "S2,Si,1.12,0.02,2.329,,,,\n"
    "S3,GaN,3.4(1),0.2,6.15,,,-110.2,abc\n"
    "S4,CdS,2.42,-0.1,4.82(3)\u00d710\u2070,,,,\n"
)


def _uncertainties(store) -> list[list]:
    query = (
        "SELECT m.source_id, p.property, p.value, p.uncertainty, p.original_value FROM properties p "
        "JOIN materials m USING (record_id) ORDER BY 1, 2"
    )
    return store.query(query).replace({float("nan"): None}).values.tolist()


def test_values_are_stored_with_the_uncertainties_their_cells_or_columns_state(store, tmp_path):
    data, mapping = _write(tmp_path, UNCERTAIN_ROWS, UNCERTAIN_MAPPING)
    report = import_file(store, data, mapping)
    assert (report.n_stored, report.n_values, report.n_quarantined) == (4, 8, 3)
    per_atom = pytest.approx(4 / 96.485332 / 2)  # ±4 kJ/mol of ZnO, per atom as its value
    assert _uncertainties(store) == [
        ["S1", "band_gap", 3.2, pytest.approx(0.1), 3.2],
        ["S1", "debye_temperature", pytest.approx(417.0), pytest.approx(0.5), 143.85],  # ±0.5 degC is ±0.5 K
        ["S1", "density", 5.606, pytest.approx(0.002), 5.606],
        ["S1", "formation_energy_per_atom", pytest.approx(-350.5 / 96.485332 / 2), per_atom, -350.5],
        ["S2", "band_gap", 1.12, 0.02, 1.12],
        ["S2", "density", 2.329, None, 2.329],  # none stated
        ["S3", "density", 6.15, None, 6.15],
        ["S4", "density", 4.82, pytest.approx(0.03), 4.82],
    ]
    reasons = dict(store.query("SELECT item, reasons[1] FROM quarantine").values)
    assert reasons == {
        "S3:band_gap": "gap: '3.4(1)' states its uncertainty and another is given apart (0.2): which one is meant is "
        "not guessed",
        "S3:formation_energy_per_atom": "uncertainty in column 'ddHf': non-numeric value 'abc'",
        "S4:band_gap": "uncertainty -0.1 eV is negative",
    }


def test_a_re_import_changing_only_an_uncertainty_writes_that_record_again(store, tmp_path):
    data, mapping = _write(tmp_path, UNCERTAIN_ROWS, UNCERTAIN_MAPPING)
    import_file(store, data, mapping)
    again = import_file(store, data, mapping)
    assert (again.n_stored, again.n_unchanged) == (4, 4)
    data.write_text(UNCERTAIN_ROWS.replace("S2,Si,1.12,0.02", "S2,Si,1.12,0.03"), encoding="utf-8")
    edited = import_file(store, data, mapping)
    assert (edited.n_stored, edited.n_unchanged) == (4, 3)
    gap = "SELECT uncertainty FROM properties WHERE record_id = 'unc:S2' AND property = 'band_gap'"
    assert store.query(gap).values.tolist() == [[0.03]]
    data.write_text(UNCERTAIN_ROWS.replace("5.606(2)", "5.606"), encoding="utf-8")  # its uncertainty left out
    edited = import_file(store, data, mapping)
    assert (edited.n_stored, edited.n_unchanged) == (4, 2)  # S2 back as it was, S1 without it
    rho = "SELECT value, uncertainty FROM properties WHERE record_id = 'unc:S1' AND property = 'density'"
    assert store.query(rho).replace({float("nan"): None}).values.tolist() == [[5.606, None]]


def test_a_decimal_comma_reads_a_values_uncertainty_too(store, tmp_path):
    rows = "id;formula;gap;dgap;rho\nS1;Si;1;0,02;2,329(1)\nS2;ZnO;3,2 \u00b1 0,1;;5,606\n"
    mapping = UNCERTAIN_MAPPING.split("  theta")[0]
    data, mapping = _write(tmp_path, rows, mapping + "decimal: ','\n")
    import_file(store, data, mapping)
    assert [row[:4] for row in _uncertainties(store)] == [
        ["S1", "band_gap", 1.0, 0.02],
        ["S1", "density", 2.329, pytest.approx(0.001)],
        ["S2", "band_gap", 3.2, pytest.approx(0.1)],
        ["S2", "density", 5.606, None],
    ]
    mapping.write_text(mapping.read_text(encoding="utf-8").replace("decimal: ','", "decimal: '.'"), encoding="utf-8")
    import_file(store, data, mapping)
    reasons = store.query("SELECT item, reasons[1] FROM open_quarantine ORDER BY item").values.tolist()
    assert reasons[0] == [
        "S1",
        "column 'dgap': '0,02' has a comma (a decimal comma or a thousands separator? not guessed): declare "
        "`decimal: ','` in the mapping for decimal commas, else write the number without thousands separators",
    ]
    assert reasons[1][1].startswith("column 'gap': '3,2 \u00b1 0,1' has a comma")


def test_an_uncertainty_column_is_checked_as_the_mapping_loads_and_the_file_is_read(store, tmp_path):
    columns = "  gap: {property: band_gap, unit: eV, uncertainty_field: rho}\n"
    columns += "  rho: {property: density, unit: g/cm^3}\n"
    _, mapping = _write(tmp_path, "", f"dataset: gaps\nformula_column: f\ncitation: c\ncolumns:\n{columns}")
    with pytest.raises(ConfigError, match="column 'rho' is both the uncertainty_field of column 'gap' and a value"):
        load_mapping(mapping)
    columns = "  gap: {property: band_gap, unit: eV, uncertainty_field: ''}\n"
    _, mapping = _write(tmp_path, "", f"dataset: gaps\nformula_column: f\ncitation: c\ncolumns:\n{columns}")
    with pytest.raises(ConfigError, match=f"columns.gap.uncertainty_field: Value error, {re.escape(_BLANK_HEADER)}"):
        load_mapping(mapping)
    data, mapping = _write(tmp_path, "id,formula,gap\nS1,Si,1.12\n", UNCERTAIN_MAPPING.split("  rho")[0])
    with pytest.raises(ConfigError, match="mapped column[(]s[)] not in the file: dgap"):
        import_file(store, data, mapping)


def test_a_blank_uncertainty_cell_states_none(store, tmp_path):
    mapping = UNCERTAIN_MAPPING.split("  rho")[0] + "missing_values: [n/a]\n"
    data, mapping = _write(tmp_path, "id,formula,gap,dgap\nS1,Si,1.12, \nS2,GaN,3.4,n/a\n", mapping)
    import_file(store, data, mapping)
    assert _uncertainties(store) == [["S1", "band_gap", 1.12, None, 1.12], ["S2", "band_gap", 3.4, None, 3.4]]


def as_before_uncertainties(store) -> None:
    """Make the store's value rows as a matreg before `properties.uncertainty` wrote them."""
    for path in store.data_dir.glob("c*/**/properties.parquet"):
        pq.write_table(pq.read_table(path).drop_columns(["uncertainty"]), path)
    (store.root / ".views.sha256").write_text("written by an older matreg", encoding="utf-8")


def test_properties_wide_shows_each_values_uncertainty_and_a_store_written_before_them_empty(store, tmp_path):
    data, mapping = _write(tmp_path, UNCERTAIN_ROWS, UNCERTAIN_MAPPING)
    import_file(store, data, mapping)
    query = (
        "SELECT formula, band_gap, band_gap_uncertainty, formation_energy_per_atom_uncertainty FROM properties_wide "
        "ORDER BY formula"
    )
    per_atom = pytest.approx(4 / 96.485332 / 2)  # ±4 kJ/mol of ZnO, per atom as its value
    shown = [["CdS", None, None, None], ["GaN", None, None, None], ["Si", 1.12, 0.02, None]]
    shown.append(["ZnO", 3.2, pytest.approx(0.1), per_atom])
    assert store.query(query).replace({float("nan"): None}).values.tolist() == shown
    as_before_uncertainties(store)
    shown[2][2] = shown[3][2] = shown[3][3] = None  # none stored
    assert store.query(query).replace({float("nan"): None}).values.tolist() == shown


def test_a_wide_export_of_a_store_written_before_uncertainties_has_their_columns_empty(store, tmp_path):
    data, mapping = _write(tmp_path, UNCERTAIN_ROWS, UNCERTAIN_MAPPING)
    import_file(store, data, mapping)
    as_before_uncertainties(store)
    catalog = Catalog(datasets={"unc": Dataset(description="d", version="1", properties=["band_gap", "density"])})
    export_dataset(store, catalog, "unc", "csv", tmp_path / "wide.csv", layout="wide")
    wide = pd.read_csv(tmp_path / "wide.csv").set_index("record_id")
    columns = ["band_gap", "band_gap_uncertainty", "density", "density_uncertainty"]
    assert wide.loc[["unc:S1", "unc:S2"], columns].replace({float("nan"): None}).values.tolist() == [
        [3.2, None, 5.606, None],
        [1.12, None, 2.329, None],
    ]


def test_a_wide_export_leaves_a_median_of_several_values_without_uncertainty_and_a_lone_value_with_its_own(
    store, tmp_path
):
    gap = "formula_column: formula\nid_column: id\ncitation: c\ncolumns:\n  gap: {property: band_gap, unit: eV}\n"
    for lab, rows in (("lab-a", "z,ZnO,3.3(1)\ng,GaN,3.4(2)\n"), ("lab-b", "z,ZnO,3.5(1)\n")):
        (tmp_path / lab).mkdir()
        import_file(store, *_write(tmp_path / lab, f"id,formula,gap\n{rows}", f"dataset: {lab}\n{gap}"))
    median = Dataset(description="m", version="1", properties=["band_gap"], resolve=Resolution(strategy="median"))
    export_dataset(store, Catalog(datasets={"m": median}), "m", "csv", tmp_path / "wide.csv", layout="wide")
    wide = pd.read_csv(tmp_path / "wide.csv").set_index("record_id")
    shown = wide[["band_gap", "band_gap_uncertainty", "band_gap_resolved_by"]].replace({float("nan"): None})
    assert shown.to_dict("index") == {
        "group:ZnO": {"band_gap": 3.4, "band_gap_uncertainty": None, "band_gap_resolved_by": "median of 2"},
        "lab-a:g": {"band_gap": 3.4, "band_gap_uncertainty": 0.2, "band_gap_resolved_by": "median of 1"},
    }  # no statistics made up: the median's values' spread is no standard uncertainty


def test_a_store_written_before_uncertainties_reads_them_empty_and_takes_them_on(store, tmp_path):
    data, mapping = _write(tmp_path, "id,formula,gap,rho\nS1,ZnO,3.2,5.606\nS2,Si,1.12,2.329\n", GAP_MAPPING)
    import_file(store, data, mapping)
    as_before_uncertainties(store)
    assert store.query("SELECT count(*), count(uncertainty) FROM properties").values.tolist() == [[4, 0]]
    assert check_store_tables(store).problems == []
    again = import_file(store, data, mapping)
    assert (again.n_stored, again.n_unchanged) == (2, 2)  # an empty uncertainty is none stated
    data.write_text("id,formula,gap,rho\nS1,ZnO,3.2 \u00b1 0.1,5.606\nS2,Si,1.12,2.329\n", encoding="utf-8")
    edited = import_file(store, data, mapping)
    assert (edited.n_stored, edited.n_unchanged) == (2, 1)
    stated = "SELECT record_id, property, uncertainty FROM properties WHERE uncertainty IS NOT NULL"
    assert store.query(stated).values.tolist() == [["gaps:S1", "band_gap", 0.1]]
    store.compact()  # the files of both matregs in one
    assert store.query(stated).values.tolist() == [["gaps:S1", "band_gap", 0.1]]
    assert store.query("SELECT count(*) FROM properties").iloc[0, 0] == 4
    catalog = Catalog(datasets={"gaps": Dataset(description="d", version="1", properties=["band_gap"])})
    export_dataset(store, catalog, "gaps", "parquet", tmp_path / "gaps.parquet")
    exported = pd.read_parquet(tmp_path / "gaps.parquet")
    assert exported[["record_id", "value", "unit", "uncertainty"]].replace({float("nan"): None}).values.tolist() == [
        ["gaps:S1", 3.2, "eV", 0.1],
        ["gaps:S2", 1.12, "eV", None],
    ]


CAPITALS = "id,formula,gap\nS1,SIO2,8.9\nS2,ZNO,3.3\nS3,FE2O3,2.1\nS4,TIO2,3.0\nS5,H2O(l),6.9\nS6,SIO2,9.0\n"
CAPITALS += "S7,n/a,1.1\n"  # a missing formula: its lower-case letters are no formula's
CAPITALS_MAPPING = _mapping_head("caps").replace("columns:", "missing_values: [n/a]\ncolumns:") + (
    "  gap: {property: band_gap, unit: eV}\n"
)


def test_a_file_whose_formulas_are_written_in_capitals_only_is_warned_of_once_and_imported_as_before(
    store, tmp_path, caplog
):
    with caplog.at_level("WARNING", logger="matreg"):
        report = import_file(store, *_write(tmp_path, CAPITALS, CAPITALS_MAPPING))
    assert [record.getMessage() for record in caplog.records] == [
        "column 'formula': its formulas are written in capitals only (none of its 5 holds a lower-case letter), and 4 "
        "of them may be meant otherwise: 'SIO2' is read as S I O2 (SI may be Si); 'ZNO' is read as Z N O (ZN, NO may "
        "be Zn, No); 'FE2O3' is read as F E2 O3 (FE may be Fe); matreg reads each capital as the start of an element "
        "and does not guess which is meant: write the formulas in the usual case and import the file again (formulas "
        "right as written, such as CO2 or HF, need nothing)"
    ]  # the missing formula (n/a) is none of them
    assert (report.n_stored, report.n_quarantined) == (4, 3)  # as before the warning: matreg does not guess
    stored = store.query("SELECT record_id, formula, elements FROM materials ORDER BY record_id").values.tolist()
    assert [[record_id, formula, list(elements)] for record_id, formula, elements in stored] == [
        ["caps:S1", "SIO2", ["I", "O", "S"]],
        ["caps:S4", "TIO2", ["H", "I", "O"]],
        ["caps:S5", "H2O", ["H", "O"]],
        ["caps:S6", "SIO2", ["I", "O", "S"]],
    ]
    reasons = dict(store.query("SELECT item, reasons[1] FROM quarantine").values)
    assert reasons == {
        "S2": "unparseable formula 'ZNO': not elements: Z0+",
        "S3": "unparseable formula 'FE2O3': not elements: E0+",
        "S7": "empty formula",  # a missing formula (the mapping's missing value) is none to store, as a blank one
    }


@pytest.mark.parametrize(
    "formulas",
    [
        ["SiO2", "ZnO", "CO2", "HF"],  # the usual case: CO2 and HF beside SiO2 are right as written
        ["H2O", "CH4", "PH3", "SO2(g)"],  # in capitals, but no two capitals of them spell an element: one reading
    ],
)
def test_a_file_whose_formulas_read_one_way_is_not_warned_of_capitals(store, tmp_path, caplog, formulas):
    csv = "id,formula,gap\n" + "".join(f"S{row},{formula},1.5\n" for row, formula in enumerate(formulas))
    with caplog.at_level("WARNING", logger="matreg"):
        report = import_file(store, *_write(tmp_path, csv, CAPITALS_MAPPING))
    assert caplog.records == []
    assert report.n_stored == len(formulas)


def test_a_small_file_of_formulas_right_as_written_in_capitals_is_warned_of_too(tmp_path, caplog):
    mapping = _mapping_head("gases") + "  S: {property: entropy, unit: J/(mol*K), temperature_K: 298.15}\n"
    data, mapping = _write(tmp_path, "id,formula,S\nG1,CO2(g),213.8\nG2,HF(g),173.8\n", mapping)
    with caplog.at_level("WARNING", logger="matreg"):
        LabConnector(data, load_mapping(mapping))
    assert [record.getMessage() for record in caplog.records] == [
        "column 'formula': its formulas are written in capitals only (none of its 2 holds a lower-case letter), and 2 "
        "of them may be meant otherwise: 'CO2' is read as C O2 (CO may be Co); 'HF' is read as H F (HF may be Hf); "
        "matreg reads each capital as the start of an element and does not guess which is meant: write the formulas "
        "in the usual case and import the file again (formulas right as written, such as CO2 or HF, need nothing)"
    ]  # no formula tells CO2 from Co2 in capitals: a file of SIO2 and TIO2 is alike
