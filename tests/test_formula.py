import pytest

from matreg.errors import FormulaError
from matreg.formula import alphabetical_formula, parse_formula, whole_formula


@pytest.mark.parametrize(
    ("text", "reduced", "atoms", "chemsys"),
    [
        ("H2O1", "H2O", 3, "H-O"),
        ("Al2O3", "Al2O3", 5, "Al-O"),
        ("Na2O4S1", "Na2SO4", 7, "Na-O-S"),
        ("Hg0.7Cd0.3Te", "Cd0.3Hg0.7Te1", 2, "Cd-Hg-Te"),
    ],
)
def test_formulas_are_normalized_by_pymatgen(text, reduced, atoms, chemsys):
    formula = parse_formula(text)
    assert (formula.reduced, formula.atoms_per_formula_unit, formula.chemsys) == (reduced, atoms, chemsys)
    assert formula.original == text


@pytest.mark.parametrize(
    ("text", "reduced", "species", "elements"),
    [
        ("O1", "O2", "O", ("O",)),  # monatomic oxygen: pymatgen's reduced formula of any oxygen is O2
        ("O3", "O2", "O3", ("O",)),
        ("D2O1", "D2O", "D2O", ("H", "O")),  # heavy water is not H2O, though made of hydrogen and oxygen
        ("D1H1", "DH", "DH", ("H",)),
        ("He1", "He", "He", ("He",)),  # no electronegativity
        ("D+", "D[+1]", "D[+1]", ("H",)),  # an ion of deuterium is not H+
        ("H+", "H[+1]", "H[+1]", ("H",)),
    ],
)
def test_isotopes_are_kept_and_the_species_is_the_formula_as_written(text, reduced, species, elements):
    formula = parse_formula(text)
    assert (formula.reduced, formula.species, formula.elements) == (reduced, species, elements)


def test_ions_keep_their_charge():
    formula = parse_formula("AlF4-")
    assert formula.charge == -1 and formula.elements == ("Al", "F")


@pytest.mark.parametrize(
    ("text", "reduced"),
    [
        ("C2-", "C2[-1]"),  # pymatgen: C[-0.5]
        ("N2-", "N2[-1]"),  # pymatgen: N3[-1.5], another ion
        ("Al2O2+", "Al2O2[+1]"),
        ("I3-", "I3[-1]"),
        ("Hg2[+2]", "Hg[+1]"),
        ("D4[+2]", "D2[+1]"),  # isotope ions are reduced as any ion
        ("OH-", "OH[-1]"),  # pymatgen's names where they are the same ion
        ("NH4+", "NH4[+1]"),
        ("Al(OH)4-", "Al(OH)4[-1]"),
    ],
)
def test_an_ions_reduced_formula_is_the_same_ion_in_a_whole_charge(text, reduced):
    assert parse_formula(text).reduced == reduced


@pytest.mark.parametrize(
    ("text", "reduced", "atoms"),
    [
        ("CuSO4·5H2O", "CuH10SO9", 21),
        ("CuSO4.5H2O", "CuH10SO9", 21),  # pymatgen alone reads CuSO4.5 H2 O: 9.5 atoms
        ("CaCl2.2H2O", "CaH4(ClO)2", 9),  # not CaCl2.2 H2 O
        ("CoCl2 · 6NH3", "CoH18(N3Cl)2", 27),
        ("CaSO4.0.5H2O", "Ca1H1S1O4.5", 7.5),  # half a water, not CaSO4.0 and five
        ("CaSO4·0.5H2O", "Ca1H1S1O4.5", 7.5),
    ],
)
def test_hydrates_and_adducts_are_summed(text, reduced, atoms):
    formula = parse_formula(text)
    assert (formula.reduced, formula.atoms_per_formula_unit, formula.original) == (reduced, atoms, text)


@pytest.mark.parametrize("text", ["", "Qz2O3", "XYZ", "e-", "NaCl ??", "CuSO4·", "Li0.5H2O", "Al1e400", "Na1e999Cl"])
def test_non_formulas_are_refused(text):
    with pytest.raises(FormulaError):
        parse_formula(text)


def test_whole_formulas_name_fractional_compositions_and_keep_isotopes():
    assert [whole_formula(text) for text in ("Se0.5Te0.5", "Cu1.8S1", "Li0.5D0.5", "GaN")] == [
        "TeSe",
        "Cu9S5",
        "Li0.5D0.5",  # pymatgen's whole formula would be LiH
        "GaN",
    ]


def test_alphabetical_formulas_read_adducts_and_refuse_ions():
    texts = ("CuSO4.5H2O", "Te0.5Se0.5", "Li2O2")
    assert [alphabetical_formula(text) for text in texts] == ["CuH10O9S", "SeTe", "LiO"]
    with pytest.raises(FormulaError, match="is an ion"):
        alphabetical_formula("Fe2+")
