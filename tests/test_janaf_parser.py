import pytest
from conftest import JANAF_TABLES, SHARED_JANAF

from matreg.errors import RecordError
from matreg.sources.janaf import parse_table


def _table(table_id: str):
    return parse_table((JANAF_TABLES / f"{table_id}.txt").read_text(encoding="utf-8"))


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


def test_non_numeric_temperature_names_the_line():
    with pytest.raises(RecordError, match="line 3"):
        parse_table("X (O2)\tO2(g)\nT(K)\tCp\nabc\t1\n")


@pytest.mark.skipif(not SHARED_JANAF.is_dir(), reason="../shared fixtures not present")
def test_every_recorded_table_parses_with_a_standard_row():
    tables = [parse_table(path.read_text(encoding="utf-8")) for path in sorted(SHARED_JANAF.glob("*-*.txt"))]
    assert len(tables) > 400
    with_standard_row = [t for t in tables if any(r.temperature_K == 298.15 and r.cells for r in t.rows)]
    assert len(with_standard_row) == len(tables)
