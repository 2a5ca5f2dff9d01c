import random
import subprocess
import sys

import pytest
from conftest import ONE_COMPOSITION, utf8_child
from pymatgen.core import Composition

from matreg.errors import FormulaError
from matreg.formula import (
    alphabetical_formula,
    ambiguous_charge,
    capitalised_formulas,
    composition_key,
    parse_formula,
    same_amounts,
    same_composition,
    written_state,
)


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


@pytest.mark.parametrize(("text", "species", "charge"), [("D1H1+", "DH[+1]", 1), ("D1H1-", "DH[-1]", -1)])
def test_an_ion_with_an_isotope_counts_each_atom_once(text, species, charge):
    formula = parse_formula(text)  # JANAF's HD+ and HD- (D-006, D-007); pymatgen's Ion.from_formula reads D2H2
    assert (formula.reduced, formula.species, formula.atoms_per_formula_unit) == (species, species, 2)
    assert (formula.charge, formula.elements) == (charge, ("H",))
    assert same_composition(formula, Composition("H2"))


@pytest.mark.parametrize(
    "text",
    ["e1-", "e-", "e[-1]"] + ["e\u2212", "e1\u2212", "e[\u22121]", "e⁻", "e₁⁻"],  # typeset: pasted from a paper
)
def test_the_electron_is_a_species_without_atoms(text):
    formula = parse_formula(text)  # JANAF's electron gas (D-020), the reference of ion thermochemistry
    assert (formula.reduced, formula.species, formula.original) == ("e[-1]", "e[-1]", text)
    assert (formula.elements, formula.chemsys, formula.atoms_per_formula_unit, formula.charge) == ((), "", 0, -1)
    assert not same_composition(formula, Composition("H"))


@pytest.mark.parametrize(
    ("text", "weighed"),
    [
        ("Cu", "Cu"),
        ("Al2O3", "Al2O3"),
        ("Al4O6", "Al4O6"),  # the formula unit as written, as its atoms are counted
        ("D2O", "D2O"),  # heavy water: deuterium's mass, not hydrogen's
        ("CuSO4.5H2O", "CuSO9H10"),  # the hydrate's water included
        ("AlF4-", "AlF4"),
        ("Fe₂O₃", "Fe2O3"),
    ],
)
def test_the_molar_mass_is_pymatgens_weight_of_the_formula_unit_as_written(text, weighed):
    assert parse_formula(text).molar_mass == pytest.approx(float(Composition(weighed).weight), rel=1e-12)


def test_the_electron_has_no_molar_mass_pymatgen_weighs():
    assert parse_formula("e-").molar_mass is None


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
        ("CuSO4\u22c55H2O", "CuH10SO9", 21),  # the dot operator, as LaTeX and MathType paste it
        ("CuSO4\u20275H2O", "CuH10SO9", 21),  # the hyphenation point
        ("CuSO4.5D2O", "CuD10SO9", 21),  # heavy water of crystallization: not CuSO4.5 D2 O
    ],
)
def test_hydrates_and_adducts_are_summed(text, reduced, atoms):
    formula = parse_formula(text)
    assert (formula.reduced, formula.atoms_per_formula_unit, formula.original) == (reduced, atoms, text)


@pytest.mark.parametrize(
    ("text", "reduced", "atoms"),
    [
        ("Na2O.SiO2", "Na2SiO3", 6),  # no decimal point before an element: pymatgen refused it
        ("CaO.Al2O3", "CaAl2O4", 7),
        ("3CaO.SiO2", "Ca3SiO5", 9),  # the first part's count too
        ("2CuCO3·Cu(OH)2", "Cu3H2(CO4)2", 15),
        ("Na2O.0.5SiO2", "Na2Si0.5O2", 4.5),  # no number reads O.0.5
        ("Na2O.0.5e-1SiO2", "Na2Si0.05O1.1", 3.15),  # its count written with an exponent (was 'unparseable')
        ("Al2O3.SiO2", "Al2SiO5", 8),
        ("CaO.(SiO2)2", "CaSi2O5", 8),  # a group after it
        ("CaO.[SiO2]2", "CaSi2O5", 8),  # (was 'unparseable')
        ("Fe0.5Ni0.5", "Fe0.5Ni0.5", 1),  # decimals, after a digit, stay decimals
        ("La0.7Sr0.3MnO3", "Sr0.3La0.7Mn1O3", 5),
        ("Ca2Fe1.5Al0.5O5", "Ca2Al0.5Fe1.5O5", 9),
        ("YBa2Cu3O6.9", "Ba2Y1Cu3O6.9", 12.9),
        ("Fe.5", "Fe0.5", 0.5),  # no element after it: a decimal point
        ("Hg0.7Cd0.3Te.H2O", "Cd0.3Hg0.7Te1H2O1", 5),
        ("Pb0.99Se0.99Sn0.01Se0.01", "Sn0.01Pb0.99Se1", 2),  # (PbSe)0.99(SnSe)0.01 as a real dataset writes it
    ],
)
def test_a_period_joins_an_adducts_parts_only_where_it_cannot_be_a_decimal_point(text, reduced, atoms):
    formula = parse_formula(text)
    assert (formula.reduced, formula.atoms_per_formula_unit) == (reduced, atoms)


@pytest.mark.parametrize(
    ("text", "adduct", "decimal"),
    [
        ("Na2O.2SiO2", "Na2O·2SiO2", "Na2O0.2SiO2"),  # pymatgen: Na2SiO2.2, 5.2 atoms
        ("BaO.6Fe2O3", "BaO·6Fe2O3", "BaO0.6Fe2O3"),  # pymatgen: BaFe2O3.6
        ("Li2O.2B2O3", "Li2O·2B2O3", "Li2O0.2B2O3"),
        ("Fe.5Ni.5", "Fe·5Ni.5", "Fe0.5Ni.5"),
        ("Al2O3.6SiO2", "Al2O3·6SiO2", "Al2O3.6SiO2, with O twice"),  # pymatgen: Al2SiO5.6
        ("K2O.Al2O3.6SiO2", "Al2O3·6SiO2", "Al2O3.6SiO2, with O twice"),
        ("MgSiO3.6CaMgSiO4", "MgSiO3·6CaMgSiO4", "MgSiO3.6CaMgSiO4, with Mg, O, Si twice"),
        ("[Fe].5Ni", "[Fe]·5Ni", "[Fe]0.5Ni"),  # as '(Fe).5Ni': pymatgen reads '[]' and '{}' groups as '()'
        ("{Fe}.5Ni", "{Fe}·5Ni", "{Fe}0.5Ni"),
        ("[Fe(CN)6].2SiO2", "[Fe(CN)6]·2SiO2", "[Fe(CN)6]0.2SiO2"),  # pymatgen: Fe0.2SiC1.2N1.2O2
        ("CaO.2[SiO2]", "CaO·2[SiO2]", "CaO0.2[SiO2]"),  # pymatgen: CaSiO2.2, as 'CaO.2(SiO2)' is refused
    ],
)
def test_a_period_that_may_join_parts_or_be_a_decimal_point_is_refused_naming_both(text, adduct, decimal):
    with pytest.raises(FormulaError) as error:
        parse_formula(text)
    message = str(error.value)
    assert message.startswith(f"ambiguous formula '{text}'")
    assert f"({adduct})" in message and f"({decimal})" in message and "write '·' between an adduct's parts" in message


@pytest.mark.parametrize(
    ("text", "adduct", "decimal"),
    [
        ("CaSO4.5e-1H2O", "CaSO4·5e-1H2O", "CaSO4.5e-1H2O, with O twice"),  # was CaH2SO1.45: O4.5e-1 and H2O
        ("CaSO4.5e1H2O", "CaSO4·5e1H2O", "CaSO4.5e1H2O, with O twice"),  # was CaH2SO46
        ("Na2O.2e-1SiO2", "Na2O·2e-1SiO2", "Na2O0.2e-1SiO2"),  # was Na2SiO2.02
        ("Fe.5e-1Ni", "Fe·5e-1Ni", "Fe0.5e-1Ni"),  # was Fe0.05Ni
    ],
)
def test_a_period_before_a_count_with_an_exponent_that_may_be_a_decimal_point_is_refused_naming_both(
    text, adduct, decimal
):
    # such a period was a decimal point in silence ('5e-1H2O' no part's start), where 'CaSO4·5e-1H2O' is read as
    # CaSO4·0.5H2O and 'Al2O3.6SiO2' is refused
    with pytest.raises(FormulaError) as error:
        parse_formula(text)
    message = str(error.value)
    assert message.startswith(f"ambiguous formula '{text}'")
    assert f"({adduct})" in message and f"({decimal})" in message and "write '·' between an adduct's parts" in message
    assert parse_formula("CaSO4·5e-1H2O").reduced == parse_formula("CaSO4.0.5H2O").reduced == "Ca1H1S1O4.5"


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("MgCl2.5e-1H2O", "Mg1H2Cl0.25O1"),  # MgCl2·5e-1H2O (MgCl2·0.5H2O), or MgCl0.25H2O
        ("CaCl2.2e1NH3", "CaH3NCl22"),  # CaCl2·20NH3, or CaCl22NH3
        ("Mg(Cl)2.5e-1D2O", "MgD2Cl0.25O"),  # after a group's amount
        ("B4.5e-5D2O", "B4.5e-05D2O"),  # (not 'B4.5e-05D2O', as matreg writes an amount: it reads back)
    ],
)
def test_a_period_after_an_amount_before_water_counted_with_an_exponent_is_refused_naming_both(text, stored):
    # such a period was a decimal point in silence where no element is written twice ('MgCl2.5e-1H2O' stored as
    # MgCl0.25H2O), though a period before water counted ending the formula joins a hydrate's parts ('MgCl2.6H2O') and
    # 'CaSO4.5e-1H2O' and 'CaSO4.1.5e-1H2O' are refused naming both readings
    with pytest.raises(FormulaError) as error:
        parse_formula(text)
    before, after = text.split(".", 1)
    assert str(error.value) == (
        f"ambiguous formula '{text}': its period before '{after}' joins an adduct's parts ({before}·{after}) or is a "
        f"decimal point ({text}, an amount written with an exponent); write '·' between an adduct's parts, or a "
        "decimal amount without an exponent"
    )
    assert parse_formula(text, as_stored=True).reduced == stored  # as the matreg that stored it read it
    assert parse_formula("MgCl2·5e-1H2O").reduced == parse_formula("MgCl2.0.5H2O").reduced == "Mg1H1Cl2O0.5"
    assert parse_formula("CaSO4·2.5e-1H2O").reduced == "Ca1H0.5S1O4.25"  # (a count's own decimal point)
    assert parse_formula("Li0.5e-1H2O").reduced == "Li0.05H2O1"  # ('Li0' would hold no Li, as 'Li0.5H2O' is read)


@pytest.mark.parametrize(
    ("text", "adduct", "stored"),
    [
        ("MgCl2.6(H2O)", "MgCl2·6(H2O)", "Mg1H2Cl2.6O1"),
        ("CaCl2.2(NH3)", "CaCl2·2(NH3)", "Ca1H3N1Cl2.2"),
        ("MgCl2.6[H2O]", "MgCl2·6[H2O]", "Mg1H2Cl2.6O1"),
        ("MgCl2.5e-1(H2O)", "MgCl2·5e-1(H2O)", "Mg1H2Cl0.25O1"),
        ("Cu1.5(OH)", "Cu1·5(OH)", "Cu1.5H1O1"),
    ],
)
def test_a_period_after_a_digit_before_a_count_and_a_group_of_one_is_refused_naming_both(text, adduct, stored):
    # such a period was a decimal point in silence where no element is written twice, as it is before an element
    # ('Hg0.7Cd0.3Te'): MgCl2.6 and a group of one H2O, though a count before a group of one writes an adduct's part
    with pytest.raises(FormulaError) as error:
        parse_formula(text)
    after = text[text.index(".") + 1 :]
    assert str(error.value) == (
        f"ambiguous formula '{text}': its period before '{after}' joins an adduct's parts ({adduct}) or is a decimal "
        f"point ({text}, a group after a decimal amount); write '·' between an adduct's parts, or the group before a "
        "decimal amount"
    )
    assert parse_formula(text, as_stored=True).reduced == stored  # as the matreg that stored it read it
    assert parse_formula("Mo1O2.750").reduced == "Mo1O2.75"  # (JANAF's 'Mo1O2.750(cr)': its state is no group)


@pytest.mark.parametrize(
    ("text", "reduced"),
    [
        ("Li1.5Al0.5Ge1.5(PO4)3", "Li1.5Al0.5Ge1.5P3O12"),  # LAGP
        ("Li1.3Al0.3Ti1.7(PO4)3", "Li1.3Ti1.7Al0.3P3O12"),  # LATP
        ("Cu2.5(OH)2", "Cu2.5H2O2"),
        ("Ca9.5(PO4)6(OH)", "Ca9.5P6H1O25"),  # a group after the group
        ("Co2.5(CO3)(OH)", "Co2.5H1C1O4"),
        ("MgCl2.6(H2O)2", "Mg1H4Cl2.6O2"),
        ("Cu2.5(OH)2Cl", "Cu2.5H2Cl1O2"),  # an element after the group
        ("Ni2.5(PO4)2.2H2O", "Ni2.5P2H4O10"),  # and a hydrate's water after it
        ("Fe2.5(OH)2+", "Fe2.5H2O2[+1]"),  # an ion's formula
    ],
)
def test_a_decimal_amount_before_a_group_of_an_amount_or_with_more_after_it_is_read(text, reduced):
    # these were refused as ambiguous ('Li1.5Al0.5Ge1.5·5(PO4)3'), as a period before a count and a group of one is
    # ('MgCl2.6(H2O)'): no adduct's part is written as a count before a group of an amount ('5(PO4)3')
    assert parse_formula(text).reduced == parse_formula(text, as_stored=True).reduced == reduced


@pytest.mark.parametrize(("text", "reduced"), [("CaSO4.5e-1H2O", "Ca1H2S1O1.45"), ("Fe.5e-1Ni", "Fe0.05Ni1")])
def test_a_stored_formula_of_a_period_before_a_count_with_an_exponent_is_read_as_stored(text, reduced):
    assert parse_formula(text, as_stored=True).reduced == reduced  # as the matreg that stored it read it


@pytest.mark.parametrize(
    ("text", "reduced", "atoms"),
    [("B0.000045D2O", "B4.5e-05D2O", 3.000045), ("CaB0.000045H2O", "Ca1B4.5e-05H2O1", 4.000045)],
)
def test_a_formula_written_with_an_amounts_exponent_before_water_reads_back_as_written(text, reduced, atoms):
    # matreg writes a small amount with an exponent ('B4.5e-05D2O'), its period a decimal point (no element twice),
    # no hydrate's (B4·5e-05D2O), in a formula read again as new input too
    for as_stored in (False, True):
        formula = parse_formula(text, as_stored)
        assert (formula.reduced, formula.atoms_per_formula_unit) == (reduced, atoms)
        for written in (formula.reduced, formula.species):
            again = parse_formula(written, as_stored)
            assert (again.reduced, again.species, again.atoms_per_formula_unit) == (reduced, formula.species, atoms)


@pytest.mark.parametrize(
    ("text", "species", "reduced", "atoms"),
    [
        ("Ca1.5·H2O", "Ca1.5H2O1", "Ca1.5H2O1", 4.5),  # its species was 'Ca1.5H2O', read again as Ca·5H2O (16 atoms)
        ("Zr2B12.5·H2O", "Zr2B12.5H2O1", "Zr2B12.5H2O1", 17.5),
        ("Li2.5·D2O", "Li2.5D2O1", "Li2.5D2O1", 5.5),  # its reduced formula too (isotopes kept): was 'Li2.5D2O'
        ("Ca1.5H2O1+", "Ca1.5H2O1[+1]", "Ca1.5H2O1[+1]", 4.5),  # was 'Ca1.5H2O[+1]', refused as an ion of two parts
    ],
)
def test_a_formula_matreg_writes_ending_in_water_after_a_decimal_amount_reads_back_as_the_same_atoms(
    text, species, reduced, atoms
):
    # the formula as written (a gas's group and formula unit, a median row's formula) and the reduced one (a
    # crystal's) are read again as stored formulas are: a period before water ending them is a hydrate's, so the
    # water's 1 is written ('Ca1.5H2O1', as pymatgen writes a fractional formula's)
    for as_stored in (False, True):
        formula = parse_formula(text, as_stored)
        assert (formula.species, formula.reduced, formula.atoms_per_formula_unit) == (species, reduced, atoms)
        for written in (formula.species, formula.reduced):
            again = parse_formula(written, as_stored)
            assert (again.species, again.reduced, again.atoms_per_formula_unit) == (species, reduced, atoms)
            assert again.shares == pytest.approx(formula.shares)
    assert parse_formula("Ca1.5H2O").species == "CaH10O5"  # (as input, CuSO4.5H2O's rule: Ca·5H2O)


@pytest.mark.parametrize(
    ("text", "reduced"),
    [("[Fe].5Ni", "Fe0.5Ni1"), ("CaO.2[SiO2]", "Ca1Si1O2.2"), ("[Fe(CN)6].2SiO2", "Fe0.2Si1C1.2N1.2O2")],
)
def test_a_stored_formula_of_a_period_beside_a_square_or_curly_group_is_read_as_stored(text, reduced):
    # refused as input since such a period was taken for a decimal point (the group's brackets being round alone)
    assert parse_formula(text, as_stored=True).reduced == reduced


@pytest.mark.parametrize(
    ("text", "read", "stored"),
    [
        ("CaCl2·2NH3.[H2O]", "CaH8N2Cl2O", "CaH10N2Cl2O2"),  # CaCl2·2NH3·H2O; stored as CaCl2·2(NH3.0 H2O)
        ("Na2O·2SiO2.[H2O]3", "Na2Si2H6O8", "Na2Si2H12O11"),
        ("ZnCl2·2NH3.{H2O}", "ZnH8N2Cl2O", "ZnH10N2Cl2O2"),
    ],
)
def test_a_stored_formula_an_older_matreg_read_is_read_as_it_read_it_where_this_one_reads_it_otherwise(
    text, read, stored
):
    # a period after a digit before a square or curly group joins its parts as input, and was a decimal point to the
    # matreg that read round brackets alone: its stored record's formula and atoms are of that reading
    assert parse_formula(text).species == read
    assert parse_formula(text, as_stored=True).species == stored


@pytest.mark.parametrize(
    ("text", "adduct", "decimal"),
    [
        ("Co1.8.2H2O", "Co1·8.2H2O", "Co1.8·2H2O"),  # read as Co1·8.2H2O
        ("MgSO4.1.5H2O", "MgSO4·1.5H2O", "MgSO4.1·5H2O"),
        ("NaCl.2.5NH3", "NaCl·2.5NH3", "NaCl.2·5NH3"),
        ("Ca(OH).1.5H2O", "Ca(OH)·1.5H2O", "Ca(OH).1·5H2O"),  # after a group's bracket
        ("K4[Fe(CN)6].1.5H2O", "K4[Fe(CN)6]·1.5H2O", "K4[Fe(CN)6].1·5H2O"),
        # as any part's (these were read in silence, or refused naming no reading as an adduct's parts)
        ("Na2O.1.5SiO2", "Na2O·1.5SiO2", "Na2O.1·5SiO2"),  # was Na2O·1.5SiO2
        ("Na2O.1.5e-1SiO2", "Na2O·1.5e-1SiO2", "Na2O.1·5e-1SiO2"),  # a count written with an exponent is a count
        ("CaSO4.1.5e-1H2O", "CaSO4·1.5e-1H2O", "CaSO4.1·5e-1H2O"),  # (CaSO4·0.15H2O)
        ("H0.5.5NH3", "H0·5.5NH3", "H0.5·5NH3"),  # was 'the amount of H is zero', the period's reading unsaid
    ],
)
def test_a_period_before_a_decimal_count_that_may_be_a_decimal_point_is_refused_naming_both(text, adduct, decimal):
    with pytest.raises(FormulaError) as error:
        parse_formula(text)
    message = str(error.value)
    assert message.startswith(f"ambiguous formula '{text}'")
    assert f"({adduct})" in message and f"({decimal})" in message and "write '·' between an adduct's parts" in message
    assert parse_formula("CaSO4.0.5H2O").reduced == parse_formula("CaSO4·0.5H2O").reduced  # (no amount is '4.0')
    assert parse_formula("Co1.8.2H2O", as_stored=True).reduced == "Co1H16.4O8.2"  # as the matreg that stored it read it
    assert parse_formula("Na2O.1.5SiO2", as_stored=True).reduced == "Na2Si1.5O4"


@pytest.mark.parametrize(
    ("text", "adduct"),
    [
        ("Na2O 2SiO2", "Na2O·2SiO2"),  # pymatgen: Na2SiO4, the count taken for oxygen's
        ("BaO 6Fe2O3", "BaO·6Fe2O3"),  # pymatgen: BaFe2O9
        ("Li2O 2SiO2", "Li2O·2SiO2"),  # pymatgen: Li2SiO4, another compound
        ("ZnO 2", "ZnO·2"),  # pymatgen: ZnO2
        ("CuSO4 5H2O", "CuSO4·5H2O"),
        ("CuSO4\u00a05H2O", "CuSO4·5H2O"),  # a no-break space
        ("CaO·Al2O3 2SiO2", "Al2O3·2SiO2"),  # inside one part of an adduct
    ],
)
def test_a_number_after_a_space_is_refused_as_an_adducts_count_or_an_amount(text, adduct):
    with pytest.raises(FormulaError) as error:
        parse_formula(text)
    message = str(error.value)
    assert message.startswith(f"ambiguous formula '{text}': the number after a space")
    assert f"an adduct's count ({adduct})" in message and "write '·' between an adduct's parts" in message


@pytest.mark.parametrize(
    ("text", "reduced"),
    [
        ("Al2 O3", "Al2O3"),  # OQMD's composition strings
        ("Li Co O2", "LiCoO2"),
        ("Ba0.6 Sr0.4 TiO3", "Ba0.6Sr0.4Ti1O3"),
        ("CaSO4 · 0.5H2O", "Ca1H1S1O4.5"),  # spaces around an adduct's separator
        ("CuSO4 · 5 H2O", "CuH10SO9"),
        ("CuSO4. 5H2O", "CuH10SO9"),  # a space after a period joining parts is no number after a space
    ],
)
def test_spaces_between_element_groups_and_around_separators_are_read(text, reduced):
    assert parse_formula(text).reduced == reduced


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("TiO2(B)", "(B)"),  # pymatgen: TiBO2, bronze-type TiO2 taken for a boron compound
        ("TiO2 (B)", "(B)"),
        ("VO2(B)", "(B)"),
        ("Fe(S)", "(S)"),  # pymatgen: FeS
        ("Fe2O3 (H)", "(H)"),
        ("TiO2[B]", "[B]"),
        ("VO2(M)", "(M)"),  # no element: pymatgen refused it, naming M0+
        ("TiO2(B)·0.5H2O", "(B)"),  # ending a part of an adduct
        ("TiO2(B).H2O", "(B)"),
    ],
)
def test_a_bracketed_symbol_ending_a_formula_is_refused_as_a_phase_label(text, label):
    with pytest.raises(FormulaError) as error:
        parse_formula(text)
    message = str(error.value)
    assert message.startswith(f"'{text}': '{label}' at the end of a formula reads as a phase label")
    assert "a lab mapping's name_column" in message
    assert parse_formula("TiO2(B)", as_stored=True).reduced == "TiBO2"  # as the matreg that stored it read it


@pytest.mark.parametrize(
    ("text", "reduced"),
    [
        ("(OH)2", "H2O2"),
        ("Ca(OH)2", "Ca(HO)2"),
        ("Ca5(PO4)3(OH)", "Ca5P3HO13"),  # a group of two elements ends it
        ("Pb(Zr0.52Ti0.48)O3", "Zr0.52Ti0.48Pb1O3"),
        ("[Co(NH3)6]Cl3", "CoH18(N2Cl)3"),
        ("(NH4)2[Fe(SO4)2]", "FeH8S2(NO4)2"),
        ("Fe[+2]", "Fe[+2]"),
        ("AlF4-", "AlF4[-1]"),
    ],
)
def test_bracketed_groups_and_charges_are_read(text, reduced):
    assert parse_formula(text).reduced == reduced


@pytest.mark.parametrize(
    ("text", "reduced", "atoms"),
    [
        ("Fe₂O₃", "Fe2O3", 5),
        ("Li₀.₅CoO₂", "Li0.5Co1O2", 3.5),
        ("CuSO₄·5H₂O", "CuH10SO9", 21),
    ],
)
def test_subscript_digits_are_read_as_digits(text, reduced, atoms):
    formula = parse_formula(text)
    assert (formula.reduced, formula.atoms_per_formula_unit, formula.original) == (reduced, atoms, text)


@pytest.mark.parametrize(
    ("text", "reduced", "species", "charge", "atoms"),
    [
        ("Mg²⁺", "Mg[+2]", "Mg[+2]", 2, 1),  # superscripts, as pasted from a paper or a web page
        ("Fe³⁺", "Fe[+3]", "Fe[+3]", 3, 1),
        ("Cl⁻", "Cl[-1]", "Cl[-1]", -1, 1),
        ("Mg⁺⁺", "Mg[+2]", "Mg[+2]", 2, 1),  # signs repeated, as 'Mg++'
        ("SO₄⁻⁻", "SO4[-2]", "SO4[-2]", -2, 5),
        ("Cl\u2212", "Cl[-1]", "Cl[-1]", -1, 1),  # the minus sign of typeset text, as pasted from a paper
        ("SO4\u2212\u2212", "SO4[-2]", "SO4[-2]", -2, 5),
        ("SO₄²⁻", "SO4[-2]", "SO4[-2]", -2, 5),
        ("Mg[2+]", "Mg[+2]", "Mg[+2]", 2, 1),  # a bracketed number, then its sign
        ("Fe[3+]", "Fe[+3]", "Fe[+3]", 3, 1),
        ("SO4[2-]", "SO4[-2]", "SO4[-2]", -2, 5),
        ("Mg+2", "Mg[+2]", "Mg[+2]", 2, 1),  # a sign, then its number (pymatgen's notation)
        ("Fe+3", "Fe[+3]", "Fe[+3]", 3, 1),
        ("SO4-2", "SO4[-2]", "SO4[-2]", -2, 5),
        ("Mg[+2]", "Mg[+2]", "Mg[+2]", 2, 1),
        ("Mg++", "Mg[+2]", "Mg[+2]", 2, 1),
        ("Hg2++", "Hg[+1]", "Hg2[+2]", 2, 2),  # digits, then two signs: the mercury(I) ion Hg₂²⁺
        ("Cl-", "Cl[-1]", "Cl[-1]", -1, 1),
        ("OH-", "OH[-1]", "HO[-1]", -1, 2),
        ("AlF2+", "AlF2[+1]", "AlF2[+1]", 1, 3),  # as JANAF names its ions: AlF₂⁺ (a lab sheet's is refused)
        ("Mg₂⁺", "Mg2[+1]", "Mg2[+1]", 1, 2),
    ],
)
def test_a_charge_is_read_in_each_notation(text, reduced, species, charge, atoms):
    formula = parse_formula(text)
    assert (formula.reduced, formula.species, formula.charge, formula.atoms_per_formula_unit, formula.original) == (
        reduced,
        species,
        charge,
        atoms,
        text,
    )


@pytest.mark.parametrize(
    ("text", "charge"),
    [
        ("Fe+-", "+-"),  # pymatgen: Fe[+0]
        ("Fe-+", "-+"),
        ("Fe++-", "++-"),  # Fe[+1]
        ("Fe2+-", "+-"),
        ("Fe[+2]-", "[+2]-"),  # Fe[+1]
        ("Fe[+2]+", "[+2]+"),  # Fe[+3]
        ("SO4[-2]+", "[-2]+"),  # SO4[-1]
        ("Fe[2+]+", "[2+]+"),
        ("Fe+2+", "+2+"),
        ("Fe+[2]", "+[2]"),
    ],
)
def test_a_charge_written_twice_or_with_both_signs_is_refused_not_summed(text, charge):
    with pytest.raises(FormulaError) as error:
        parse_formula(text)
    assert str(error.value) == (
        f"'{text}': its charge is written twice or with both signs ('{charge}'), which would be summed: write it once "
        "('Fe[+2]', 'Fe+2', 'Fe++')"
    )
    assert parse_formula("Fe[+2]-", as_stored=True).charge == 1  # as the matreg that stored it read it
    assert parse_formula("Fe+-", as_stored=True).reduced == "Fe[+0]"


@pytest.mark.parametrize(
    ("text", "charge"),
    [("Fe++0", "++0"), ("Fe-+0", "-+0"), ("Fe+2+0", "+2+0"), ("Fe[+2][0]", "[+2][0]"), ("Fe+[0]", "+[0]")],
)
def test_a_charge_of_zero_after_another_charge_is_refused_as_a_charge_written_twice(text, charge):
    # 'Fe++0' was a bare 'unparseable' where 'Fe+0' is refused as a charge of zero, and 'Fe+2+0' was told to write the
    # neutral formula 'Fe+2'
    with pytest.raises(FormulaError) as error:
        parse_formula(text)
    assert str(error.value) == (
        f"'{text}': its charge is written twice or with both signs ('{charge}'), which would be summed: write it once "
        "('Fe[+2]', 'Fe+2', 'Fe++')"
    )


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("Na2O.2SiO2+", "ambiguous formula 'Na2O.2SiO2+': its period before '2SiO2'"),
        ("Al2O3.6SiO2[+2]", "ambiguous formula 'Al2O3.6SiO2[+2]': its period before '6SiO2'"),
        ("Co1.8.2H2O-", "ambiguous formula 'Co1.8.2H2O-': its period before '8.2H2O'"),
        ("MgCl2.6(H2O)+", "ambiguous formula 'MgCl2.6(H2O)+': its period before '6(H2O)'"),
        ("Na2O 2SiO2-2", "ambiguous formula 'Na2O 2SiO2-2': the number after a space ('2SiO2')"),
        ("TiO2(B)+", "'TiO2(B)+': '(B)' at the end of a formula reads as a phase label"),
    ],
)
def test_an_ions_formula_refused_for_its_parts_is_quoted_with_its_charge(text, start):
    # such a refusal quoted the ion's formula without its charge ('Na2O.2SiO2'), another formula than the one given
    with pytest.raises(FormulaError) as error:
        parse_formula(text)
    assert str(error.value).startswith(start)
    with pytest.raises(FormulaError, match=r"^ambiguous formula 'Na2O\.2SiO2\+': "):
        parse_formula("Na2O.2SiO2+", as_stored=True)  # (as stored too, where the older rules refuse it)


@pytest.mark.parametrize(
    ("text", "label", "written"),
    [("TiO2(B)+", "(B)", "TiO2+"), ("TiO2 (B)-2", "(B)", "TiO2-2"), ("Fe(S)[+2]", "(S)", "Fe[+2]")],
)
def test_an_ions_phase_label_is_refused_naming_the_ion_to_write(text, label, written):
    # the refusal told to write the neutral formula ('TiO2'), the ion's charge left off with its label
    with pytest.raises(FormulaError) as error:
        parse_formula(text)
    phase = label.strip("()")
    assert str(error.value) == (
        f"'{text}': '{label}' at the end of a formula reads as a phase label, not as one more atom; write the formula "
        f"without it ('{written}') and the phase in a lab mapping's name_column, as JANAF names phases "
        f"('<compound>, {phase} ({written})')"
    )
    assert parse_formula(written).charge == parse_formula(text, as_stored=True).charge  # (the older rules' reading)
    with pytest.raises(FormulaError, match=r"without it \('TiO2'\)"):
        parse_formula("TiO2(B)·0.5H2O")  # (a neutral adduct's part: as before)


def test_an_amounts_exponent_is_no_charge():
    formula = parse_formula("Si0.99999B1e-05")  # a dopant's amount, as pandas writes small numbers
    assert (formula.reduced, formula.charge, formula.elements) == ("Si0.99999B1e-05", None, ("B", "Si"))


@pytest.mark.parametrize(
    ("text", "ion", "other"),
    [
        ("Mg2+", "the ion Mg²⁺ (write Mg[+2], Mg+2 or Mg²⁺)", "Mg₂⁺ (write Mg2[+1])"),
        ("AlF2+", "the ion AlF²⁺ (write AlF[+2], AlF+2 or AlF²⁺)", "AlF₂⁺ (write AlF2[+1])"),
        ("NH4+", "the ion NH⁴⁺ (write NH[+4], NH+4 or NH⁴⁺)", "NH₄⁺ (write NH4[+1])"),
        ("SO42-", "the ion SO₄²⁻ (write SO4[-2] or SO₄²⁻)", "SO₄₂⁻ (write SO42[-1])"),
        ("SO42⁻", "the ion SO₄²⁻ (write SO4[-2] or SO₄²⁻)", "SO₄₂⁻ (write SO42[-1])"),  # the sign alone pasted
        ("Mg2⁺", "the ion Mg²⁺ (write Mg[+2], Mg+2 or Mg²⁺)", "Mg₂⁺ (write Mg2[+1])"),
        ("SO42\u2212", "the ion SO₄²⁻ (write SO4[-2] or SO₄²⁻)", "SO₄₂⁻ (write SO42[-1])"),  # a typeset minus
        (
            "Fe(CN)64-",
            "the ion Fe(CN)₆⁴⁻ (write Fe(CN)6[-4] or Fe(CN)₆⁴⁻)",
            "Fe(CN)₆₄⁻ (write Fe(CN)64[-1])",
        ),
    ],
)
def test_a_single_sign_after_a_digit_is_an_ambiguous_charge_naming_both_readings(text, ion, other):
    assert ambiguous_charge(text) == f"ambiguous charge '{text}': {ion} or {other}"


@pytest.mark.parametrize(
    ("text", "ion", "labelled"),
    [
        ("SO4-2", "the ion SO₄²⁻ (write SO4[-2] or SO₄²⁻)", "SO4"),  # PHREEQC's notation, or sample 2 of SO4
        ("Li-6", "the ion Li⁶⁻ (write Li[-6] or Li⁶⁻)", "Li"),  # an isotope
        ("BaTiO3-3", "the ion BaTiO₃³⁻ (write BaTiO3[-3] or BaTiO₃³⁻)", "BaTiO3"),  # a sample's label
        ("Cl-1", "the ion Cl⁻ (write Cl[-1] or Cl⁻)", "Cl"),
        ("SO4\u22122", "the ion SO₄²⁻ (write SO4[-2] or SO₄²⁻)", "SO4"),  # a typeset minus
    ],
)
def test_a_hyphen_then_a_number_is_a_charge_or_a_label_naming_both_readings(text, ion, labelled):
    assert ambiguous_charge(text) == (
        f"ambiguous charge '{text}': {ion} or {labelled} with a label after a hyphen (a sample's, an isotope's: write "
        f"{labelled}, the label in the name or id column)"
    )


@pytest.mark.parametrize("text", ["U-235", "C-13", "Al-6061", "SS-316", "Cu-10", "Fe+10"])
def test_a_sign_then_a_number_beyond_one_digit_is_no_charge(text):
    # read as charges of -235, -6061 (an isotope, an alloy named by its number) where 9947eab refused them
    with pytest.raises(FormulaError, match="unparseable formula"):
        parse_formula(text)


@pytest.mark.parametrize(
    "text",
    ["Mg+2", "Mg[+2]", "Mg2[+1]", "Mg²⁺", "Mg₂⁺", "Hg2++", "Cl-", "OH-", "e-", "e1-", "C60-", "Fe0.5+", "MgO", "Qz2+"]
    + ["Si0.99999B1e-5", "SO4[-2]", "SO₄²⁻", "U-235", "e1\u2212", "e1⁻", "Fe2.5+", "SO4-0"],
)
def test_a_charge_that_reads_one_way_is_not_ambiguous(text):
    assert ambiguous_charge(text) is None  # C60-: no charge is "0-"; Fe0.5+: no amount ends in "."; Qz2+: no formula
    # (Fe2.5+: not Fe2.[+5]; SO4-0: no charge is -0)


@pytest.mark.parametrize(
    ("text", "reduced", "shares", "atoms", "charge"),
    [
        ("Fe0.5O+", "Fe0.5O[+1]", {"Fe": 1 / 3, "O": 2 / 3}, 1.5, 1),
        ("Li0.5Cl-", "Li0.5Cl[-1]", {"Li": 1 / 3, "Cl": 2 / 3}, 1.5, -1),
        ("Fe2O3.5-", "Fe2O3.5[-1]", {"Fe": 4 / 11, "O": 7 / 11}, 5.5, -1),
        ("Fe0.5+", "Fe0.5[+1]", {"Fe": 1}, 0.5, 1),  # a sign after a decimal amount reads one way
        ("Fe0.5O[+1]", "Fe0.5O[+1]", {"Fe": 1 / 3, "O": 2 / 3}, 1.5, 1),
        ("Fe0.25O+", "Fe0.25O[+1]", {"Fe": 0.2, "O": 0.8}, 1.25, 1),  # (an amount nearer a whole number than .5)
    ],
)
def test_an_ion_with_a_decimal_amount_is_read_and_its_formula_reads_back(text, reduced, shares, atoms, charge):
    # 'unparseable formula' without a reason: pymatgen writes such an ion's reduced formula with its charge, unbracketed
    # ('Fe0.5O1+1'), which reads as no formula
    for as_stored in (False, True):
        formula = parse_formula(text, as_stored)
        assert (formula.reduced, formula.species, formula.atoms_per_formula_unit, formula.charge) == (
            reduced,
            reduced,
            atoms,
            charge,
        )
        assert formula.shares == pytest.approx(shares)
        stored = parse_formula(formula.reduced, as_stored)  # a materials row's formula, read again
        assert (stored.reduced, stored.species, stored.atoms_per_formula_unit, stored.charge) == (
            reduced,
            reduced,
            atoms,
            charge,
        )
    assert parse_formula("Fe0.5O+").molar_mass == pytest.approx(float(Composition("Fe0.5O").weight), rel=1e-12)


def test_an_ion_written_as_an_adduct_is_refused():
    with pytest.raises(FormulaError, match="an ion is read as one formula"):
        parse_formula("CuSO4.5H2O+")  # pymatgen: CuSO4.5 H2 O


@pytest.mark.parametrize(
    ("text", "composition", "same"),
    [
        ("GaN", "Ga2N2", True),
        ("ZnO", "Ga2N2", False),
        ("FeO", "Fe0.95O", True),  # partly occupied: within the tolerance
        ("Fe2O3", "Fe3O4", False),
        ("CuSO4.5H2O", "Cu2S2O18H20", True),  # the hydrate summed
        ("CuSO4.5H2O", "CuSO4", False),  # a cell without the water
        ("D2O", "H4O2", True),  # isotopes as their element
        ("Fe3O4+", "Fe3O4", True),
        ("SrTiO3", "Sr1Ti0.999Nb0.001O3", True),
        ("FeO", "Fe16O16Si1", False),  # an element the formula lacks: 3% of the atoms
    ],
)
def test_a_composition_is_a_formulas_within_a_tolerance(text, composition, same):
    assert same_composition(parse_formula(text), Composition(composition)) is same


@pytest.mark.parametrize(
    ("text", "amounts", "same"),
    [
        ("FeO", {"Fe": 16, "O": 16}, True),
        ("FeO", {"Fe": 16, "O": 16, "Si": 1}, False),  # Fe and O within the tolerance, Si absent from the formula
        ("LiNaKRbCs", {"Li": 1, "Na": 1, "K": 1, "Rb": 1, "Cs": 1}, True),
        ("LiNaKRbCs", {"Li": 1, "Na": 1, "K": 1, "Rb": 1, "Cs": 1, "Fe": 0.5}, False),  # Fe: 9% of the atoms
    ],
)
def test_atoms_of_an_element_the_formula_lacks_are_not_of_the_formula(text, amounts, same):
    assert same_amounts(parse_formula(text), amounts) is same


@pytest.mark.parametrize("text", ["", "Qz2O3", "XYZ", "e", "e2-", "e+", "NaCl ??", "CuSO4·", "Al1e400", "Na1e999Cl"])
def test_non_formulas_are_refused(text):
    with pytest.raises(FormulaError):
        parse_formula(text)


LARGEST = "past the largest number (about 1.8e308"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Al1e400", f"the amount of Al is {LARGEST})"),  # read as infinite
        ("CuSO4·" + "9" * 400 + "H2O", f"the amounts of H, O are {LARGEST})"),  # an adduct's count
        ("CuSO4·1e400H2O", f"the amounts of H, O are {LARGEST})"),  # an adduct's count with an exponent
        ("Fe1e308Ni1e308", f"its atoms add up {LARGEST})"),  # stored with atoms_per_formula_unit = inf
        ("Fe0.5Ni1.7e308", f"its molar mass adds up {LARGEST} g/mol)"),
        ("(Fe1e200)1e200", f"the amount of Fe is {LARGEST})"),  # a group's, which pymatgen multiplies out to 'Feinf'
        ("Fe1e+400O", f"the amount of Fe is {LARGEST})"),  # an exponent's plus, as 'Fe1e400O'
        ("(Fe1e200)1e+200", f"the amount of Fe is {LARGEST})"),
        ("[Fe1e200Ni1e300]1e200", f"the amounts of Fe, Ni are {LARGEST})"),
        ("{Fe1e200Ni1e300}1e200+", f"the amounts of Fe, Ni are {LARGEST})"),  # (square brackets: a charge in an ion)
        ("(FeO)1e400", f"the amounts of Fe, O are {LARGEST})"),  # elements without an amount, in a group
        ("CuSO4·H1e+400O", f"the amount of H is {LARGEST})"),  # an exponent's plus, in an adduct's part
        ("CuSO4·(H2O)1e400", f"the amounts of H, O are {LARGEST})"),  # a group's, in an adduct's part (no reason)
    ],
)
def test_amounts_past_the_largest_number_are_refused_saying_so(text, why):
    # an infinite amount was 'unparseable' without a reason; amounts adding up past the largest float were read,
    # with infinite atoms or molar mass, and an import died in composition_key (OverflowError)
    with pytest.raises(FormulaError) as refused:
        parse_formula(text)
    assert str(refused.value) == f"unparseable formula '{text}': {why}"


@pytest.mark.parametrize("text", ["(Fe 1e200)1e200", "(Fe1e200) 1e200"])
def test_a_stored_formula_of_spaced_amounts_past_the_largest_number_is_refused_saying_so(text):
    # read as stored, a number after a space is an amount, as pymatgen reads it (new input is refused for the space)
    with pytest.raises(FormulaError) as refused:
        parse_formula(text, as_stored=True)
    assert str(refused.value) == f"unparseable formula '{text}': the amount of Fe is {LARGEST})"


@pytest.mark.parametrize("text", ["Fe1e308Ni1e308$", "Al1e400(g)"])
def test_a_formula_holding_more_than_elements_and_amounts_is_not_refused_for_its_amounts(text):
    # the reason named the amounts (its atoms add up past the largest number) where the '$' or '(g)' is what is wrong
    with pytest.raises(FormulaError) as refused:
        parse_formula(text)
    assert str(refused.value) == f"unparseable formula '{text}'"


@pytest.mark.parametrize(
    "text", [")(Al1e400", "](Fe1e200Ni1e300]1e200", ")((Fe1e200)1e200", "Fe)(Al1e400", "Fe1e400(Al", "(Al1e400"]
)
@pytest.mark.parametrize("as_stored", [False, True])
def test_a_bracket_closing_no_group_is_no_formula_whose_amounts_are_refused(text, as_stored):
    # a leading ')' closed the formula itself, and the '(' after it began it anew: ')(Al1e400' was refused as an
    # amount of Al past the largest number, where its brackets are what is wrong (as in '(Al1e400', never closed)
    with pytest.raises(FormulaError) as refused:
        parse_formula(text, as_stored=as_stored)
    assert str(refused.value) == f"unparseable formula '{text}'"


@pytest.mark.parametrize("text", [")(H2O", "](O", ")(Fe", ")0(", ")(", "][", ")[H2O+", "(Fe)0)0O", "Fe)0"])
@pytest.mark.parametrize("as_stored", [False, True])
def test_brackets_that_pair_no_group_are_an_unparseable_formula(text, as_stored):
    with pytest.raises(FormulaError):
        parse_formula(text, as_stored=as_stored)


def test_formulas_of_brackets_signs_digits_and_exponents_in_any_order_are_read_or_refused_as_formulas():
    # each random text (seeded: the same ones each run) is a formula or a FormulaError, never another exception
    pieces = ["Fe", "O", "H2O", "0", "2", ".5", "1e-5", "1e400", "e-", "(", ")", "[", "]", "{", "}", "+", "-", "·"]
    pieces += [".", "*", " ", "(aq)", "²⁺", "₂"]
    chosen = random.Random(39)
    for _ in range(8000):
        text = "".join(chosen.choice(pieces) for _ in range(chosen.randint(1, 7)))
        for as_stored in (False, True):
            try:
                parse_formula(text, as_stored=as_stored)
            except FormulaError:
                pass


@pytest.mark.parametrize("text", ["Al1e400", "Fe0.5Ni1.7e308", "Fe1e400O1", "(Fe1e200)1e200"])
def test_a_composition_key_of_amounts_past_the_largest_number_is_the_formula_as_it_is(text):
    # TypeError (Decimal's exponent 'F' of an infinite amount) and OverflowError (whole amounts past a float)
    assert composition_key(text) == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Fe0O", "the amount of Fe is zero ('Fe0')"),  # pymatgen reads an amount of none as no element: O
        ("Fe0.0O2", "the amount of Fe is zero ('Fe0.0')"),
        ("Fe0e5O", "the amount of Fe is zero ('Fe0e5')"),
        ("Fe0e+5O", "the amount of Fe is zero ('Fe0e+5')"),
        ("Fe0.e+5O", "the amount of Fe is zero ('Fe0.e+5')"),  # (was 'at most 1e-08': '0.e' no number)
        ("Fe-0O", "the amount of Fe is zero ('Fe-0')"),
        ("Fe1e-400O", "the amount of Fe is zero ('Fe1e-400' as a float)"),
        ("(Fe0)O", "the amount of Fe is zero ('Fe0')"),
        ("(FeO)0Al", "the amounts of Fe, O are zero ('(FeO)0')"),  # a group's amount
        ("Ni(Fe0.5)0O", "the amount of Fe is zero ('(Fe0.5)0')"),
        ("Fe0Ni0O", "the amounts of Fe, Ni are zero ('Fe0', 'Ni0')"),
        ("Fe0OFe", "the amount of Fe is zero ('Fe0')"),  # (pymatgen: FeO)
        ("Fe0O+", "the amount of Fe is zero ('Fe0')"),
        ("FeO0-", "the amount of O is zero ('O0')"),  # (its amount is no '0-')
        ("Fe-0", "the amount of Fe is zero ('Fe-0')"),  # (a sign then 0 is no charge)
        ("Fe0O·H2O", "the amount of Fe is zero ('Fe0')"),
        ("Fe0*H2O", "the amount of Fe is zero ('Fe0')"),  # (was 'at most 1e-08': its '*' read as the amount's)
        ("Fe1e-9O", "the amount of Fe is at most 1e-08, which pymatgen reads as none"),  # its least amount: O
        ("Zn0.99999999Co0.00000001O", "the amount of Co is at most 1e-08, which pymatgen reads as none"),  # ZnCo0O
        ("Xx0O", "not elements: Xx"),  # (not 'the amount of Xx is zero': no amount of it is an element)
    ],
)
def test_an_element_of_an_amount_of_none_is_refused_saying_so(text, why):
    with pytest.raises(FormulaError) as refused:
        parse_formula(text)
    assert str(refused.value) == f"unparseable formula '{text}': {why}"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("CuSO4·0H2O", "the count of its part H2O is zero ('0H2O')"),  # water of hydration of none: pymatgen, CuSO4
        ("CuSO4.0H2O", "the count of its part H2O is zero ('0H2O')"),
        ("CuSO4·0.0NH3", "the count of its part NH3 is zero ('0.0NH3')"),
        ("0Na2O·SiO2", "the count of its part Na2O is zero ('0Na2O')"),
        ("(Fe1e200)0", "the amount of Fe is zero ('(Fe1e200)0')"),
        ("(Fe1e-200)1e-200O", "the amount of Fe is at most 1e-08, which pymatgen reads as none"),  # 1e-400 multiplied
        ("(Fe1e-5)1e-5O", "the amount of Fe is at most 1e-08, which pymatgen reads as none"),  # 1e-10
        ("(FeO)1e-400Al", "the amounts of Fe, O are zero ('(FeO)1e-400' as a float)"),
        ("((Fe)2O)0Al", "the amounts of Fe, O are zero ('((Fe)2O)0')"),  # the outer group's amount, quoted whole
        ("CuSO4·Fe0", "the amount of Fe is zero ('Fe0')"),  # a part of no atoms: 'unparseable' without a reason
        ("Li0.H2O", "the amount of Li is zero ('Li0')"),  # (its period joins its parts: Li0·H2O)
        ("Fe0.0.H2O", "the amount of Fe is zero ('Fe0.0')"),  # (was 'at most 1e-08': '0.0.' read as its amount)
    ],
)
def test_a_part_or_group_of_an_amount_of_none_is_refused_saying_so(text, why):
    # a hydrate of no water was 'unparseable' without a reason, as was a group's amount of none written with an
    # exponent's minus, which pymatgen cannot read ('1e' is no number to it)
    with pytest.raises(FormulaError) as refused:
        parse_formula(text)
    assert str(refused.value) == f"unparseable formula '{text}': {why}"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("CaSO4·5.H2O", "its part '5' is a count of no formula"),  # its period joins '5' and 'H2O'
        ("ZnO·2", "its part '2' is a count of no formula"),
    ],
)
def test_an_adducts_part_of_a_count_alone_is_refused_saying_so(text, why):
    # 'unparseable' without a reason
    with pytest.raises(FormulaError) as refused:
        parse_formula(text)
    assert str(refused.value) == (
        f"unparseable formula '{text}': {why} (write a count right before its part's formula: 'CuSO4·5H2O')"
    )


@pytest.mark.parametrize(("text", "count"), [("5e-1H2O", "5e-1"), ("0.5H2O", "0.5"), ("2CaO", "2")])
def test_a_formula_of_one_part_that_starts_with_a_count_is_refused_saying_so(text, count):
    # 'unparseable' without a reason: a count is an adduct's part's ('CaSO4·5e-1H2O'), no amount to pymatgen
    with pytest.raises(FormulaError) as refused:
        parse_formula(text)
    assert str(refused.value) == (
        f"unparseable formula '{text}': it starts with a count ('{count}'), as an adduct's part does, and has no other "
        "part (write amounts after their elements, 'H2O', and an adduct's parts joined: 'CaSO4·5e-1H2O')"
    )


@pytest.mark.parametrize("text", ["FeO[+1.5]", "FeO[1.5+]", "FeO[-0.5]", "FeO[1.5]", "FeO[+2.0]"])
def test_a_charge_with_a_decimal_point_is_refused_saying_so(text):
    # 'unparseable' without a reason (pymatgen reads such a charge as no formula)
    charge = text[text.index("[") :]
    for as_stored in (False, True):
        with pytest.raises(FormulaError) as refused:
            parse_formula(text, as_stored)
        assert str(refused.value) == (
            f"'{text}': its charge '{charge}' is written with a decimal point: an ion's charge is a whole number "
            "('Fe[+2]', 'Fe+2', 'Fe++')"
        )


@pytest.mark.parametrize(
    ("text", "plain"),
    [("Fe[0]", "Fe[0]"), ("Fe[+0]", "Fe[+0]"), ("Fe[-0]", "Fe[-0]"), ("Fe[0+]", "Fe[0+]"), ("Fe⁰⁺", "Fe[0+]")],
)
def test_a_charge_of_zero_is_refused_as_no_ions_and_a_stored_one_read_as_stored(text, plain):
    # 'Fe[0]' was read as an ion of charge 0, Fe[+0], another material than Fe, where 'Fe+0' is no formula
    with pytest.raises(FormulaError) as refused:
        parse_formula(text)
    charge = plain[plain.index("[") :]
    assert str(refused.value) == (
        f"'{plain}': its charge '{charge}' is zero, which is no ion's: write the neutral formula without it ('Fe')"
    )
    stored = parse_formula(text, as_stored=True)  # as the matreg that stored it read it
    assert (stored.reduced, stored.species, stored.charge, stored.is_ion) == ("Fe[+0]", "Fe[+0]", 0, False)
    again = parse_formula(stored.reduced, as_stored=True)  # its materials row's formula, read again
    assert (again.reduced, again.charge) == ("Fe[+0]", 0)
    assert parse_formula("Fe[+1]").charge == 1 and parse_formula("Fe[10]").charge == 10


def test_a_charge_of_zero_as_a_sign_then_its_number_is_refused_as_no_ions():
    # 'Fe+0' (as pymatgen writes a charge: 'Fe+2') was 'unparseable' without a reason; no matreg read it
    with pytest.raises(FormulaError) as refused:
        parse_formula("Fe+0")
    assert str(refused.value) == (
        "'Fe+0': its charge '+0' is zero, which is no ion's: write the neutral formula without it ('Fe')"
    )
    with pytest.raises(FormulaError, match=r"^unparseable formula 'Fe\+0'$"):
        parse_formula("Fe+0", as_stored=True)
    assert parse_formula("B1e+0").reduced == "B"  # (an amount's exponent)


@pytest.mark.parametrize("text", ["(Fe1e-200", "Fe)0", "(Fe)-2O"])
def test_a_formula_pymatgen_cannot_read_and_of_no_amount_of_none_is_unparseable_without_a_reason(text):
    with pytest.raises(FormulaError) as refused:
        parse_formula(text)
    assert str(refused.value) == f"unparseable formula '{text}'"


@pytest.mark.parametrize(
    ("text", "within"),
    [
        ("Fe-2O+", "-2"),  # pymatgen: FeO[-1]
        ("Fe+2O+", "+2"),  # FeO[+3]
        ("Fe+O-", "+"),  # FeO[+0]
        ("U-235+", "-235"),  # U[-234]
        ("Fe[2]O+", "[2]"),  # FeO[+3]
        ("Fe[OH]2+", "[OH]"),  # Fe2[+1] to pymatgen's Ion (a neutral 'Fe[OH]2' is Fe(OH)2)
        ("Fe[(]+", "[(]"),  # Fe[+1]
        ("Fe[)]0+", "[)]"),
        ("Fe1e-5-2O+", "-2"),  # (its '-5' is an exponent's: the next test)
        ("Fe-.5O+", "-.5"),  # FeO[+0.5]
        ("Fe[O+", "[O"),  # a square bracket never closed
        ("Fe]O+", "]"),
    ],
)
def test_a_charge_within_an_ions_formula_is_refused_not_summed(text, within):
    # pymatgen's Ion reads a sign and its number, and a square-bracketed group, anywhere as a charge, summed with the
    # charge at the end: 'Fe-2O+' was stored as FeO[-1], 'Fe[2]O+' as FeO[+3]
    with pytest.raises(FormulaError) as error:
        parse_formula(text)
    assert str(error.value) == (
        f"'{text}': '{within}' within an ion's formula is read as a charge, which would be summed with its charge: "
        "write the charge once, at the end, and a group in round brackets ('Fe(OH)2+')"
    )
    assert parse_formula("Fe-2O+", as_stored=True).reduced == "FeO[-1]"  # as the matreg that stored it read it
    assert parse_formula("Fe{OH}2+").reduced == parse_formula("Fe(OH)2+").reduced == "Fe(OH)2[+1]"


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("Fe1e-5O+", "1e-5"),
        ("B1e-05O+", "1e-05"),
        ("(Fe)2.5e-1O+", "2.5e-1"),
        ("FeO1e-5-", "1e-5"),
        ("Fe1e+5O+", "1e+5"),
        ("Fe1.e-5O+", "1.e-5"),  # (was refused as "'-5' within an ion's formula [...]")
    ],
)
def test_an_amount_with_an_exponents_sign_in_an_ions_formula_is_refused_as_such_not_as_a_charge(text, amount):
    # 'Fe1e-5O+' was refused for "'-5' within an ion's formula [...] a group in round brackets": the sign is its
    # amount's exponent's, which pymatgen's Ion reads as a charge, leaving '1e', no number to it
    with pytest.raises(FormulaError) as error:
        parse_formula(text)
    assert str(error.value) == (
        f"'{text}': its amount '{amount}' is written with an exponent, which pymatgen cannot read in an ion's formula "
        "(it reads the exponent's sign as a charge)"
    )
    assert parse_formula("Fe1e-5O").reduced == "Fe1e-05O1"  # (a neutral formula's is read)
    assert parse_formula("Fe1e5O+").reduced == "Fe100000O[+1]"  # (an exponent without a sign is no charge)


@pytest.mark.parametrize(
    ("text", "unsigned"),
    [("Fe1e+5O", "Fe1e5O"), ("(Fe)1e+5O", "(Fe)1e5O"), ("Fe2.5e+3O", "Fe2.5e3O"), ("CaSO4·(H2O)5e+0", "CaSO4·5H2O")],
)
def test_an_amount_with_an_exponents_plus_is_read_as_the_number_it_is(text, unsigned):
    # pymatgen reads no plus in an amount: 'Fe1e+5O' was 'unparseable' without a reason, where 'Fe1e5O' and 'Fe1e-5O'
    # are read (an ion's is refused naming it, as 'Fe1e-5O+' is)
    for as_stored in (False, True):
        formula, written = parse_formula(text, as_stored), parse_formula(unsigned, as_stored)
        assert (formula.reduced, formula.species, formula.atoms_per_formula_unit) == (
            written.reduced,
            written.species,
            written.atoms_per_formula_unit,
        )
    assert parse_formula("Fe1e+5O").reduced == "Fe100000O"


@pytest.mark.parametrize(
    ("text", "decimal"),
    [("CaSO4·5e-1H2O", "CaSO4·0.5H2O"), ("CaSO4*2.5e-1H2O", "CaSO4*0.25H2O"), ("CuSO4·5e+0H2O", "CuSO4·5H2O")],
)
def test_an_adducts_count_with_an_exponent_is_read_as_the_number_it_is(text, decimal):
    # 'CaSO4·5e-1H2O' was 'unparseable' without a reason where 'CaSO4·(H2O)5e-1' is read as CaSO4·0.5H2O
    formula, written = parse_formula(text), parse_formula(decimal)
    assert (formula.reduced, formula.atoms_per_formula_unit) == (written.reduced, written.atoms_per_formula_unit)
    assert parse_formula("CaSO4·5e-1H2O").reduced == "Ca1H1S1O4.5"
    with pytest.raises(FormulaError, match=r"the count of its part H2O is zero \('1e-400H2O'\)"):
        parse_formula("CaSO4·1e-400H2O")


@pytest.mark.parametrize(
    ("text", "decimal"),
    [
        ("(Fe)1e-5O", "(Fe)0.00001O"),
        ("(FeO)2.5e-1Al", "(FeO)0.25Al"),
        ("[Fe]1.e-2O", "Fe0.01O"),
        ("(Fe1e200)1e-200O", "FeO"),
        ("CaSO4·(H2O)5e-1", "CaSO4·0.5H2O"),
    ],
)
def test_a_groups_amount_with_an_exponents_minus_is_read_as_the_decimal_it_is(text, decimal):
    # pymatgen reads no minus in a group's amount ('1e' is no number to it): '(Fe)1e-5O' was 'unparseable' without a
    # reason
    formula, written = parse_formula(text), parse_formula(decimal)
    assert (formula.reduced, formula.atoms_per_formula_unit) == (written.reduced, written.atoms_per_formula_unit)
    assert parse_formula("(Fe)1e-5O").reduced == "Fe1e-05O1"


@pytest.mark.parametrize(
    ("text", "reduced", "atoms"),
    [("Li0.5H2O", "Li0.5H2O1", 3.5), ("Li0.5D2O", "Li0.5D2O", 3.5), ("(OH)0.5NH3", "H3.5N1O0.5", 5.0)],
)
def test_a_period_after_an_amount_of_zero_before_water_is_a_decimal_point(text, reduced, atoms):
    # read as a hydrate of 'Li0', which holds no Li, it was 'unparseable' without a reason; pymatgen read Li0.5H2O
    # (as the matreg before hydrates were read stored it)
    for as_stored in (False, True):
        formula = parse_formula(text, as_stored)
        assert (formula.reduced, formula.atoms_per_formula_unit) == (reduced, atoms)
    assert parse_formula("Li10.5H2O").species == "Li10H10O5"  # Li10·5H2O: a hydrate's period, as 'CuSO4.5H2O'


@pytest.mark.parametrize(
    "text", ["Fe(aq)O+", "FeO(aq)+", "Fe(aq)+3", "(aq)FeO+", "Fe (aq)[+2]", "Fe(aq)(aq)+", "Fe(aq)O"]
)
def test_a_state_within_a_formula_is_refused_not_dropped(text):
    # pymatgen's Ion drops '(aq)' wherever it stands: 'Fe(aq)O+' was stored as FeO[+1], 'FeO(aq)+' as FeO[+1] of no
    # state (a crystal's), its solute's state lost; a neutral 'Fe(aq)O' was 'unparseable' without a reason
    with pytest.raises(FormulaError) as refused:
        parse_formula(text)
    assert str(refused.value) == (
        f"'{text}': its state '(aq)' is written within the formula (pymatgen would read an ion's without it): write a "
        "state after the whole formula, in lower case, its charge included ('FeO+(aq)', 'Fe+3(aq)')"
    )


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("Fe(Aq)O+", "(Aq)"),  # pymatgen: 'not elements: Aq0+'
        ("Fe(AQ)O+", "(AQ)"),  # 'not elements: A0+, Q0+'
        ("FeO(Aq)+", "(Aq)"),
        ("Fe(Aq)O", "(Aq)"),
        ("Fe(g)O+", "(g)"),  # 'unparseable' without a reason
        ("Fe(G)O", "(G)"),
        ("Fe(l)O", "(l)"),
        ("Fe(s)O+", "(s)"),
        ("Fe(cr)O", "(cr)"),
        ("Fe(S)(g)O", "(g)"),  # after sulfur's symbol in brackets
    ],
)
def test_a_state_within_a_formula_in_any_spelling_is_refused_naming_it(text, state):
    with pytest.raises(FormulaError) as refused:
        parse_formula(text)
    assert str(refused.value) == (
        f"'{text}': its state '{state}' is written within the formula: write a state after the whole formula, in lower "
        "case, its charge included ('FeO+(aq)', 'Fe+3(aq)')"
    )
    assert [parse_formula(text).reduced for text in ("Fe(S)O", "Fe(C)O+", "Fe(Cr)O")] == ["FeSO", "FeCO[+1]", "CrFeO"]


def test_a_state_after_the_whole_formula_reads_as_before():
    assert [written_state(text) for text in ("FeO+(aq)", "Fe+3(aq)", "FeO(aq)", "H2O (l)")] == [
        ("FeO+", "aq"),
        ("Fe+3", "aq"),
        ("FeO", "aq"),
        ("H2O", "l"),
    ]
    assert [parse_formula(text).reduced for text in ("FeO+", "Fe+3", "FeO")] == ["FeO[+1]", "Fe[+3]", "FeO"]
    with pytest.raises(FormulaError, match=r"^unparseable formula 'FeO\(aq\)'$"):  # the state is the caller's to read
        parse_formula("FeO(aq)")
    assert parse_formula("Fe(aq)O+", as_stored=True).reduced == "FeO[+1]"  # as the matreg that stored it read it


def test_a_stored_formula_of_an_amount_of_none_is_read_as_the_matreg_that_stored_it_did():
    assert parse_formula("Fe0O", as_stored=True).reduced == "O2"


@pytest.mark.parametrize(
    ("text", "reduced"),
    [("Fe1e-5O", "Fe1e-05O1"), ("Si1B1e-05", "Si1B1e-05"), ("Fe1e-7O", "Fe1e-07O1"), ("Fe0.5O", "Fe0.5O1")]
    + [("Si1B1.e-5", "Si1B1e-05"), ("FeO1.e-5", "Fe1O1e-05")],  # (its '-5' was read as a charge: 'unparseable')
)
def test_small_amounts_are_kept(text, reduced):
    assert parse_formula(text).reduced == reduced


def test_a_stored_formula_of_an_amount_of_none_keeps_the_composition_key_it_had():
    # the reduced formula pymatgen stored of Zn0.5Co0.00000001O0.5 before such amounts were refused: linked to ZnO
    assert composition_key("Zn0.5Co0O0.5") == "ZnO"


def test_composition_keys_name_fractional_compositions_in_whole_numbers_and_keep_isotopes():
    assert [composition_key(text) for text in ("Se0.5Te0.5", "Cu1.8S1", "Li0.5D0.5", "GaN")] == [
        "TeSe",
        "Cu9S5",
        "Li0.5D0.5",  # pymatgen's whole formula would be LiH
        "GaN",
    ]


def key(text: str) -> str:
    return composition_key(parse_formula(text).reduced)


@pytest.mark.parametrize(
    ("doped", "host", "whole"),
    [
        ("Zn0.9999Co0.0001O", "ZnO", "Zn9999CoO10000"),
        ("Cd0.99999Zn0.00001Te", "CdTe", "ZnCd99999Te100000"),
        ("Si0.99999B0.00001", "Si", "Si99999B"),
    ],
)
def test_a_dopant_keeps_its_composition_key_apart_from_its_host(doped, host, whole):
    assert (key(doped), key(host)) == (whole, parse_formula(host).reduced)  # pymatgen's whole formula: the host
    scaled = "".join(f"{el}{amount * 3:.6f}" for el, amount in Composition(doped).get_el_amt_dict().items())
    assert key(scaled) == key(whole) == whole  # the same composition, another formula unit, whole numbers


@pytest.mark.parametrize(
    ("text", "other"),
    [
        *ONE_COMPOSITION,
        ("Fe0.947O", "Fe1.894O2"),
        ("Zn0.999Co0.001O", "Zn999CoO1000"),
        ("La0.666667Sr0.333333MnO3", "La2SrMn3O9"),  # a repeating fraction rounded to 6, 4 or 3 decimals
        ("La0.6667Sr0.3333MnO3", "La2SrMn3O9"),
        ("Li0.333CoO2", "LiCo3O6"),
        ("Ba1Ca0.333333Ru0.666667O3", "Ba3CaRu2O9"),
        ("Hf1O0.1667", "Hf6O"),
        ("Na0.142857Cl0.142857", "NaCl"),
        ("Li0.666CoO2", "Li2Co3O6"),  # cut short
        ("Ca0.5Sr0.5Mg0.333Nb0.667O3", "Ca3Sr3Mg2Nb4O18"),  # beside short decimals
        ("Li0.334CoO2", "Li0.668Co2O4"),  # no fraction: as written, whatever the scale
        ("H4.001N1.667Rb1", "Rb1000H4001N1667"),  # a long decimal beside it: every amount as written
    ],
)
def test_exact_equivalents_share_a_composition_key(text, other):
    assert key(text) == key(other)


def test_amounts_of_up_to_ten_significant_digits_are_read_as_written():
    assert key("Fe0.1234567Ni0.8765433") == "Fe1234567Ni8765433"
    assert key("Fe0.1234561Ni0.8765439") == "Fe1234561Ni8765439"  # not 1929:13696, their ratio rounded to 6 digits
    assert key("Si0.9999999Ge0.0000001") == "Si9999999Ge"  # not Si10000000Ge


@pytest.mark.parametrize(
    ("text", "other"),
    [
        ("Fe0.95O", "Fe0.947O"),
        ("Fe0.95O", "Fe18O19"),
        ("Zr10Al0.048Fe89.952", "Zr10AlFe90"),
        ("Li0.33CoO2", "LiCo3O6"),
        ("Fe0.333Ni0.667", "Fe0.334Ni0.666"),  # 0.334 neither rounds nor cuts short a third
        ("Co0.111Fe0.889", "Co0.112Fe0.888"),
        ("Fe0.636Cr0.181Ni0.183", "Fe7Cr2Ni2"),  # measured fractions: Fe0.636 is not 7/11
    ],
)
def test_compositions_that_differ_as_written_keep_apart(text, other):
    assert key(text) != key(other)  # two decimals are taken as written: 0.33 is no third, 0.95 no 18/19


def test_alphabetical_formulas_keep_a_dopant():
    assert alphabetical_formula("Zn0.9999Co0.0001O") == "CoO10000Zn9999"


def test_alphabetical_formulas_read_adducts_and_refuse_ions():
    texts = ("CuSO4.5H2O", "Te0.5Se0.5", "Li2O2")
    assert [alphabetical_formula(text) for text in texts] == ["CuH10O9S", "SeTe", "LiO"]
    with pytest.raises(FormulaError, match="is an ion"):
        alphabetical_formula("Fe2+")


NOISY_PYMATGEN = """
import warnings
from pymatgen.core.composition import Composition

reduced_formula = Composition.__dict__["reduced_formula"].func  # (a cached_property)


def noisy(self):
    warnings.warn("a deprecation inside pymatgen", FutureWarning)  # as pymatgen warns of monty's gcd on 3.10
    return reduced_formula(self)


Composition.reduced_formula = property(noisy)
from matreg.formula import parse_formula

print([parse_formula(text).reduced for text in ["Fe2O3", "ZnO", "HeAr", "Fe2O3"]])
"""


def test_a_warning_of_pymatgen_shows_once_per_process_not_once_per_formula_and_noble_gases_none():
    """Python shows a warning once per place; reading every formula in a warnings block of its own re-armed it."""
    ran = subprocess.run([sys.executable, "-c", NOISY_PYMATGEN], capture_output=True, **utf8_child(), check=True)
    assert ran.stdout.strip() == "['Fe2O3', 'ZnO', 'ArHe', 'Fe2O3']"
    assert ran.stderr.count("a deprecation inside pymatgen") == 1 and "electronegativity" not in ran.stderr


def test_a_formula_in_capitals_is_shown_as_read_with_each_pair_that_may_be_an_element_not_one_reading():
    # 'CACO3' was shown as "not CaCo3", one usual-case reading, where CaCO3 was meant: no reading is sure
    assert capitalised_formulas(["CACO3", "NANO3", "H2O"]) == (
        "its formulas are written in capitals only (none of its 3 holds a lower-case letter), and 2 of them may be "
        "meant otherwise: 'CACO3' is read as C A C O3 (CA, AC, CO may be Ca, Ac, Co); 'NANO3' is read as N A N O3 "
        "(NA, NO may be Na, No); matreg reads each capital as the start of an element and does not guess which is "
        "meant: write the formulas in the usual case and import the file again (formulas right as written, such as "
        "CO2 or HF, need nothing)"
    )


def test_a_pair_of_capitals_written_twice_in_a_formula_is_shown_once():
    assert "'COCO3' is read as C O C O3 (CO may be Co);" in capitalised_formulas(["COCO3"])
