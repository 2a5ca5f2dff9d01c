from pathlib import Path

import pytest
from conftest import JANAF_TABLES, RAW_JANAF, SHARED_JANAF

from matreg.errors import RecordError
from matreg.ingest import run_ingest
from matreg.sources import FetchRequest, build_connector
from matreg.sources.janaf import parse_table, rows_to_store

FORMATION_COLUMNS = ["delta-f H", "delta-f G", "log Kf"]


def _table(table_id: str, tables: Path = JANAF_TABLES):
    return parse_table((tables / f"{table_id}.txt").read_text(encoding="utf-8"))


def _raw_table(table_id: str):
    return _table(table_id, RAW_JANAF)


def _row(table, temperature):
    return next(row for row in table.rows if row.temperature_K == temperature and not row.note)


def test_reads_title_formula_phase_and_standard_row():
    water = _table("H-064")
    assert (water.name, water.formula, water.phase) == ("Water (H2O)", "H2O1", "g")
    assert water.columns == ["Cp", "S", "-[G-H(Tr)]/T", "H-H(Tr)", "delta-f H", "delta-f G", "log Kf"]
    assert _row(water, 298.15).cells == {
        "Cp": "33.590",
        "S": "188.834",
        "-[G-H(Tr)]/T": "188.834",
        "H-H(Tr)": "0.",
        "delta-f H": "-241.826",
        "delta-f G": "-228.582",
        "log Kf": "40.047",
    }


def test_infinite_entries_at_zero_kelvin_are_kept_as_text():
    zero = _row(_table("H-064"), 0.0)
    assert zero.cells["-[G-H(Tr)]/T"] == "+inf" and zero.cells["log Kf"] == "+inf"


def test_transition_rows_carry_their_note_and_no_formation_values():
    aluminium = _table("Al-001")
    transitions = [(row.temperature_K, row.note) for row in aluminium.transitions()]
    assert (933.45, "CRYSTAL <--> LIQUID") in transitions and (933.45, "TRANSITION") in transitions
    melting = next(row for row in aluminium.rows if row.note == "CRYSTAL <--> LIQUID")
    assert melting.cells == {"Cp": "32.959", "S": "59.738", "-[G-H(Tr)]/T": "40.474", "H-H(Tr)": "17.982"}


def test_iron_has_every_solid_state_transition():
    notes = [row.note for row in _table("Fe-003").transitions() if row.note != "TRANSITION"]
    assert notes == [
        "Cp LAMBDA MAXIMUM",
        "ALPHA <--> GAMMA",
        "GAMMA <--> DELTA",
        "DELTA <--> LIQUID",
        "LIQUID <--> IDEAL GAS",
        "FUGACITY = 1 bar",
    ]


def test_rows_below_a_phase_range_have_no_values():
    gamma_alumina = _table("Al-098")
    assert [row.cells for row in gamma_alumina.rows[:3]] == [{}, {}, {}]
    assert _row(gamma_alumina, 298.15).cells["delta-f H"] == "-1656.864"


def test_pressure_comes_from_the_title():
    assert _table("H-065").pressure_pa() == pytest.approx(1.0e5)
    assert _table("H-069").pressure_pa() == pytest.approx(5.0e8)
    assert _table("C-095").pressure_pa() == pytest.approx(1.0e5)


def test_infinite_written_as_a_word_is_not_a_note():
    text = "Test (X)\tO1(g)\nT(K)\tCp\tS\n0\tINFINITE\t0.\n"
    assert parse_table(text).rows[0].cells == {"Cp": "INFINITE", "S": "0."}


@pytest.mark.parametrize("text", ["<html>Not found</html>", "", "Title\tH2O1\nT(K)\tCp\n298.15\t1\n"])
def test_text_that_is_not_a_table_is_refused(text):
    with pytest.raises(RecordError, match="not a JANAF table"):
        parse_table(text)


def test_plus_lines_joining_transition_rows_are_skipped():
    barium = _raw_table("Ba-002")
    transitions = [(row.temperature_K, row.note) for row in barium.transitions()]
    assert transitions[:4] == [
        (582.53, "ALPHA <--> BETA"),
        (582.53, "TRANSITION"),
        (768.13, "BETA <--> GAMMA"),
        (768.13, "TRANSITION"),
    ]
    alpha_beta, transition = barium.transitions()[:2]
    assert alpha_beta.cells == {"Cp": "54.400", "S": "87.232", "-[G-H(Tr)]/T": "68.471", "H-H(Tr)": "10.929"}
    assert transition.cells["Cp"] == "32.468"
    assert _row(barium, 298.15).cells == {
        "Cp": "28.096",
        "S": "62.475",
        "-[G-H(Tr)]/T": "62.475",
        "H-H(Tr)": "0.",
        "delta-f H": "0.",
        "delta-f G": "0.",
        "log Kf": "0.",
    }
    with pytest.raises(RecordError, match="line 4: temperature '\\+' is not a number"):
        parse_table("X (O2)\tO2(g)\nT(K)\tCp\n0\t1\n+\t2\n")  # a '+' with values is no known quirk


def test_a_temperature_run_together_with_cp_is_split_after_three_decimals():
    cyanide = _raw_table("C-083")
    change, transition = [row for row in cyanide.rows if row.temperature_K == 288.5]
    assert (change.note, change.cells) == (
        "II <--> III",
        {"Cp": "1548.088", "S": "111.062", "-[G-H(Tr)]/T": "118.520", "H-H(Tr)": "-2.152"},
    )
    assert (transition.note, transition.cells["Cp"]) == ("TRANSITION", "1548.129")
    with pytest.raises(RecordError, match="line 3: temperature '288.50.5' is not a number"):
        parse_table("X (O2)\tO2(g)\nT(K)\tCp\n288.50.5\t1\n")  # not two JANAF numbers run together


def test_a_lone_h_line_is_skipped():
    sulfur = _raw_table("S-021")
    temperatures = [row.temperature_K for row in sulfur.rows]
    assert temperatures[temperatures.index(1000.0) + 1] == 1100.0
    assert _row(sulfur, 1000.0).cells["log Kf"] == "-2.763"
    assert _row(sulfur, 1100.0).cells == {
        "Cp": "180.552",
        "S": "655.488",
        "-[G-H(Tr)]/T": "528.059",
        "H-H(Tr)": "140.172",
        "delta-f H": "-388.966",
        "delta-f G": "97.243",
        "log Kf": "-4.618",
    }
    with pytest.raises(RecordError, match="line 4: temperature 'HH' is not a number"):
        parse_table("X (O2)\tO2(g)\nT(K)\tCp\n0\t1\nHH\t\n")


def test_space_joined_formation_cells_are_reported_as_problems_with_their_lost_signs():
    standard = _row(_raw_table("Cl-161"), 298.15)
    assert standard.cells == {"Cp": "129.460", "S": "209.069", "-[G-H(Tr)]/T": "209.069", "H-H(Tr)": "0."}
    reason = (
        "NIST's table runs delta-f H, delta-f G and log Kf together without tabs ('815.026  735.167 128.798'): "
        "their signs are lost"
    )
    assert standard.problems == dict.fromkeys(FORMATION_COLUMNS, reason)
    barium = _raw_table("Ba-002")  # 1100 K: '8.370 0.820  0.039', 1200 K: -8.606, 1.666, -0.073: no sign to guess
    assert set(_row(barium, 1100.0).problems) == set(FORMATION_COLUMNS) and not _row(barium, 1200.0).problems


def test_space_joined_zeros_of_a_reference_state_are_read():
    header = "T(K)\tCp\tS\t-[G-H(Tr)]/T\tH-H(Tr)\tdelta-f H\tdelta-f G\tlog Kf\n"
    row = "1000\t31.751\t73.400\t53.156\t20.244\t0. 0. 0.\n"  # Al-003 as NIST serves it: zeros have no sign
    table = parse_table("Aluminum (Al)\tAl1(ref)\n" + header + row)
    assert table.rows[0].cells == {
        "Cp": "31.751",
        "S": "73.400",
        "-[G-H(Tr)]/T": "53.156",
        "H-H(Tr)": "20.244",
        "delta-f H": "0.",
        "delta-f G": "0.",
        "log Kf": "0.",
    }
    assert not table.rows[0].problems


def test_fetch_quarantines_space_joined_formation_values_with_the_reason_and_stores_the_others(
    store, raw_janaf_catalog
):
    report = run_ingest(build_connector("janaf", raw_janaf_catalog, FetchRequest(ids=["Cl-161"])), store)
    assert (report.n_stored, report.n_values, report.n_quarantined) == (1, 4, 3)
    stored = store.query("SELECT property, value FROM properties ORDER BY property").values.tolist()
    assert stored == [
        ["enthalpy_increment", 0.0],
        ["entropy", pytest.approx(209.069)],
        ["gibbs_energy_function", pytest.approx(209.069)],
        ["heat_capacity_cp", pytest.approx(129.46)],
    ]
    quarantined = store.query("SELECT item, reasons FROM quarantine ORDER BY item")
    assert quarantined["item"].tolist() == [
        "Cl-161:enthalpy_of_formation@298.15K",
        "Cl-161:gibbs_energy_of_formation@298.15K",
        "Cl-161:log_formation_constant@298.15K",
    ]
    reason = (
        "NIST's table runs delta-f H, delta-f G and log Kf together without tabs ('815.026  735.167 128.798'): "
        "their signs are lost"
    )
    assert [list(reasons) for reasons in quarantined["reasons"]] == [[reason]] * 3


def test_non_numeric_temperature_names_the_line():
    with pytest.raises(RecordError, match="line 3"):
        parse_table("X (O2)\tO2(g)\nT(K)\tCp\nabc\t1\n")


@pytest.mark.skipif(not SHARED_JANAF.is_dir(), reason="../shared fixtures not present")
def test_every_recorded_table_parses_with_a_standard_row():
    tables = [parse_table(path.read_text(encoding="utf-8")) for path in sorted(SHARED_JANAF.glob("*-*.txt"))]
    assert len(tables) > 400
    with_standard_row = [t for t in tables if any(r.temperature_K == 298.15 and r.cells for r in t.rows)]
    assert len(with_standard_row) == len(tables)


@pytest.mark.parametrize(
    ("table", "temperature", "cp"),
    [
        (_table("Al-001"), 933.45, "32.959"),  # NIST's text: both rows noted, the crystal's first
        (_raw_table("Ba-002"), 582.53, "54.400"),  # both rows noted, joined by a '+' line: alpha's first
        (_raw_table("Ca-011"), 1045, "87.090"),  # the janaf package's copy: the crystal's row noted, the liquid's bare
        (_raw_table("Be-019"), 500, "76.048"),  # a regular row with formation values, then the transition's two rows
    ],
)
def test_a_transition_temperature_keeps_its_first_row_whichever_row_carries_the_note(table, temperature, cp):
    kept = [row for row in rows_to_store(table.rows) if row.temperature_K == temperature]
    assert [row.cells["Cp"] for row in kept] == [cp]


def test_a_transition_row_without_a_note_after_a_noted_one_goes_to_the_notes(store, raw_janaf_catalog):
    request = FetchRequest(ids=["Ca-011"], all_temperatures=True)  # the janaf package's copy of CaCl2 (cr,l)
    run_ingest(build_connector("janaf", raw_janaf_catalog, request), store)
    at_melting = store.query("SELECT property, value FROM properties WHERE temperature_K = 1045 ORDER BY property")
    assert dict(at_melting.values.tolist()) == {  # the crystal's row, which carries the note
        "enthalpy_increment": pytest.approx(59.401),
        "entropy": pytest.approx(202.837),
        "gibbs_energy_function": pytest.approx(145.994),
        "heat_capacity_cp": pytest.approx(87.090),
    }
    notes = store.query("SELECT notes FROM materials").iloc[0, 0]
    assert notes == (
        "1045 K: CRYSTAL <--> LIQUID TRANSITION; 1045 K, also listed: Cp 102.533, S 230.151, -[G-H(Tr)]/T 145.994, "
        "H-H(Tr) 87.944; gibbs_energy_function, log_formation_constant at 0 K left out: JANAF lists them as "
        "infinite (their limit at 0 K)"
    )


def test_a_temperature_listed_again_at_a_transition_keeps_its_first_row(store, raw_janaf_catalog):
    request = FetchRequest(ids=["Be-019"], all_temperatures=True)
    run_ingest(build_connector("janaf", raw_janaf_catalog, request), store)
    at_500 = store.query("SELECT property, value FROM properties WHERE temperature_K = 500 ORDER BY property")
    assert dict(at_500.values.tolist()) == {  # the regular row of phase II, not phase I's row below the transition
        "enthalpy_increment": pytest.approx(12.710),
        "enthalpy_of_formation": pytest.approx(-1024.661),
        "entropy": pytest.approx(85.392),
        "gibbs_energy_function": pytest.approx(59.971),
        "gibbs_energy_of_formation": pytest.approx(-947.738),
        "heat_capacity_cp": pytest.approx(76.048),
        "log_formation_constant": pytest.approx(99.009),
    }
    assert "500 K: II <--> I TRANSITION" in store.query("SELECT notes FROM materials").iloc[0, 0]
