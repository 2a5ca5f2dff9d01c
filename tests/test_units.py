import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import utf8_child
from packaging.requirements import Requirement

from matreg.errors import UnitError
from matreg.formula import parse_formula
from matreg.units import (
    AtomCounts,
    conversion_problem,
    convert,
    convert_array,
    is_missing_count_message,
    is_molar,
    parse_unit,
    per_mole_of_atoms,
    scale_factor,
)


def test_molar_enthalpy_of_liquid_water_to_ev_per_atom():
    water = parse_formula("H2O")
    per_atom = convert(-285.83, "kJ/mol", "eV/atom", AtomCounts(per_formula_unit=water.atoms_per_formula_unit))
    # -285.83 kJ/mol / (96.485 kJ/mol per eV) / 3 atoms
    assert per_atom == pytest.approx(-0.98747, abs=1e-5)


@pytest.mark.parametrize("unit", ["kJ/mol-atom", "kJ/g-atom", "kJ mol-atom^-1"])
def test_per_mole_of_atoms_is_per_atom_without_the_formula(unit):
    # -100 kJ per mole of atoms: -1.0364 eV an atom, whatever the formula; -200 kJ per mole of a 2-atom formula unit
    assert convert(-100, unit, "eV/atom") == pytest.approx(-1.0364269656)
    assert convert(-100, unit, "kJ/mol", AtomCounts(2, None)) == pytest.approx(-200)
    assert not is_molar(unit)  # (not per mole of formula units)


@pytest.mark.parametrize(
    ("unit", "spelled"),
    [
        ("kJ/mol", "kJ/mol-atom"),
        ("J/(mol*K)", "J/(mol-atom*K)"),
        ("kJ mol-1", "kJ/mole_of_atoms"),  # a mole written otherwise: pint's spelling
    ],
)
def test_a_molar_unit_per_mole_of_atoms_is_spelled_as_matreg_reads_it(unit, spelled):
    assert per_mole_of_atoms(unit) == spelled
    assert convert(1.0, spelled, unit, AtomCounts(2, None)) == pytest.approx(2.0)  # a mole of a 2-atom formula unit


def test_per_atom_back_to_molar_round_trips():
    counts = AtomCounts(per_formula_unit=5)
    assert convert(convert(-1675.692, "kJ/mol", "eV/atom", counts), "eV/atom", "kJ/mol", counts) == pytest.approx(
        -1675.692
    )


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (-25.0, "meV/atom", "eV/atom", -0.025),
        (10.0, "kbar", "GPa", 1.0),
        (16.0, "Å^3/atom", "cm**3/atom", 1.6e-23),
        (1.0, "J/(K*mol)", "J/(mol*K)", 1.0),
        (1.0, "eV/fu", "kJ/mol", 96.485332),
        (5000.0, "bar", "Pa", 5.0e8),
    ],
)
def test_known_conversions(value, source, target, expected):
    converted = convert(value, source, target, AtomCounts(per_formula_unit=1))
    assert converted == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("kJ mol-1", "kJ/mol"),
        ("kJ mol^-1", "kJ/mol"),
        ("kJ mol\u22121", "kJ/mol"),  # the minus sign of papers: pint alone reads kJ*mol
        ("kJ mol\u20131", "kJ/mol"),  # an en dash
        ("J mol-1 K-1", "J/(mol*K)"),
        ("g cm-3", "g/cm**3"),
        ("g/cm3", "g/cm**3"),
        ("eV atom-1", "eV/atom"),
        ("Å3", "angstrom**3"),
        ("A3", "ampere**3"),  # 'A' is the ampere
        ("\u2103", "degC"),
        ("a0", "bohr"),  # pint's names ending in digits stay theirs
        ("eV/f.u.", "eV/fu"),  # the formula unit as papers abbreviate it
        ("meV/f.u.", "meV/fu"),
        ("eV/f.u", "eV/fu"),
        ("eV f.u.-1", "eV/fu"),
        ("μB/f.u.", "bohr_magneton/fu"),
        ("Å^3/f.u.", "angstrom**3/fu"),
    ],
)
def test_units_as_papers_and_instruments_write_them(spelling, canonical):
    assert parse_unit(spelling) == parse_unit(canonical)


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("J/mol*K", "J/(mol*K)"),  # NIST WebBook's spelling: pint alone reads J*K/mol
        ("J/mol K", "J/(mol*K)"),
        ("J/mol\u00b7K", "J/(mol*K)"),  # a middle dot
        ("J / mol K", "J/(mol*K)"),
        ("cal/mol*K", "cal/(mol*K)"),
        ("W/m\u00b7K", "W/(m*K)"),
        ("W/m K", "W/(m*K)"),
        ("W/m^2*K", "W/(m**2*K)"),
        ("W/m2 K", "W/(m**2*K)"),
        ("J/g-atom K", "J/(mol_atom*K)"),
        ("J/mol*\u00b0C", "J/(mol*degC)"),
        ("J/mol.K", "J/(mol*K)"),  # a period for the product, as European papers write it: pint alone reads J*K/mol
        ("kJ/K.mol", "kJ/(K*mol)"),
        ("J/mol-K", "J/(mol*K)"),  # a hyphen for the product, as US papers and NIST pages write it
        ("W/m-K", "W/(m*K)"),
        ("W/m.K", "W/(m*K)"),
        ("W/m^2-K", "W/(m**2*K)"),
        ("J/mol-atom-K", "J/(mol_atom*K)"),  # a mole of atoms, then the kelvin
        ("J/g-atom.K", "J/(mol_atom*K)"),
        ("J/molK", "J/(mol*K)"),  # no separator: 'molK' is no unit pint knows
        ("kJ/kmolK", "kJ/(kmol*K)"),
        ("W/cmK", "W/(cm*K)"),
    ],
)
def test_the_units_after_one_slash_are_one_denominator(spelling, canonical):
    assert parse_unit(spelling) == parse_unit(canonical)


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("J/mol/K", "J/(mol*K)"),
        ("J/mol K-1", "J/(mol*K)"),  # an exponent in the denominator: read as pint reads it
        ("mA*h/g", "mA*h/g"),
        ("J*K/mol", "J*K/mol"),
        ("J/(mol*K)*K", "J/mol"),  # parentheses say where the denominator ends
        ("eV/atom", "eV/atom"),
        ("1/K", "K**-1"),
        ("g/cm^3", "g/cm**3"),
        ("J/mol-1", "J*mol"),  # a hyphen before a number is an exponent written on: read as pint reads it
        ("kJ/mol-atom", "kJ/mol_atom"),
        ("kJ/g-atom", "kJ/mol_atom"),
        ("J/(mol.K)", "J/(mol*K)"),
    ],
)
def test_units_that_say_where_their_denominator_ends_keep_their_meaning(spelling, canonical):
    assert parse_unit(spelling) == parse_unit(canonical)


@pytest.mark.parametrize(
    ("value", "spelling", "target", "expected"),
    [
        (1.0, "Ha", "eV", 27.211386245988),
        (-0.5, "Ha/atom", "eV/atom", -13.605693122994),
        (1.0, "Hartree", "eV", 27.211386245988),
        (1.0, "mHa", "meV", 27.211386245988),
        (760.0, "Torr", "Pa", 101325.0),
        (1.0, "mTorr", "Pa", 101325.0 / 760 / 1000),
        (1.0, "e.u.", "J/(mol*K)", 4.184),  # the entropy unit, cal/(mol*K) of the thermochemical calorie
        (1.0, "cal/mol*K", "J/(mol*K)", 4.184),
        (1.0, "kcal/mol", "kJ/mol", 4.184),
        (150.0, "W/mK", "W/(m*K)", 150.0),  # thermal conductivity, not watts per millikelvin
        (25.0, "mW/mK", "W/(m*K)", 0.025),
        (0.15, "kW/mK", "W/(m*K)", 150.0),
        (1.5, "W/cmK", "W/(m*K)", 150.0),
        (150.0, "W/m-K", "W/(m*K)", 150.0),  # NIST's spelling
        (150.0, "W/m.K", "W/(m*K)", 150.0),
        (29.1, "J/mol.K", "J/(mol*K)", 29.1),
        (29.1, "J/mol-K", "J/(mol*K)", 29.1),
        (29.1, "J/molK", "J/(mol*K)", 29.1),
        (29.1, "kJ/mol-K", "J/(mol*K)", 29100.0),
        (-0.25, "eV/at", "eV/atom", -0.25),  # per atom, not per technical atmosphere
        (-0.25, "eV/at.", "eV/atom", -0.25),
        (16.0, "\u00c5^3/at", "angstrom**3/atom", 16.0),
    ],
)
def test_units_as_scientists_abbreviate_them(value, spelling, target, expected):
    assert convert(value, spelling, target) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("value", "spelling", "target", "expected"),
    [
        (29.1, "J.mol-1.K-1", "J/(mol*K)", 29.1),  # a period for the product, exponents written on
        (4184.0, "J.kg-1.K-1", "J/(kg*K)", 4184.0),
        (3.97, "g.cm-3", "g/cm**3", 3.97),
        (-285.83, "kJ.mol-1", "kJ/mol", -285.83),
        (150.0, "W.m-1.K-1", "W/(m*K)", 150.0),
        (29.1, "J/(mol-K)", "J/(mol*K)", 29.1),  # a hyphen for the product inside parentheses
        (1.7, "\u03bc\u03a9-cm", "ohm*cm", 1.7e-6),  # and alone, as US papers write resistivity
        (1.0, "kW-h", "kJ", 3600.0),
        (130.7, "J/Kmol", "J/(mol*K)", 130.7),  # the kelvin first: 'Kmol' is no kilomole (that is 'kmol')
        (0.1307, "kJ/Kmol", "J/(mol*K)", 130.7),
        (25.0, "W/m2K", "W/(m**2*K)", 25.0),  # a heat-transfer coefficient
        (25.0, "W/m^2K", "W/(m**2*K)", 25.0),  # pint alone reads W*K/m**2
        (25.0, "W/m\u00b2K", "W/(m**2*K)", 25.0),
    ],
)
def test_more_units_as_scientists_write_them(value, spelling, target, expected):
    assert convert(value, spelling, target) == pytest.approx(expected, rel=1e-9)


def test_the_signs_of_word_processors_and_latex_are_read_not_dropped():
    # pint alone drops a dot operator (U+22C5) and braces, reading W*K/m and J*K/mol; a division slash (U+2215) and
    # a fraction slash (U+2044) it reads as a product
    assert parse_unit("W/m\u22c5K") == parse_unit("W/(m*K)")
    assert parse_unit("J/{mol K}") == parse_unit("J/(mol*K)")
    assert parse_unit("kJ\u2215mol") == parse_unit("kJ\u2044mol") == parse_unit("kJ/mol")
    # which pint read right by dropping the sign, and still are
    assert parse_unit("J\u2219mol-1\u2219K-1") == parse_unit("J mol^{-1} K^{-1}") == parse_unit("J/(mol*K)")


@pytest.mark.parametrize(
    "spelling",
    [
        "MPa\u221am",  # pint alone drops the root, reading MPa*m
        "MPa\u00b7\u221am",
        "MPa\u221a(m)",
        "MPa*sqrt(m)",
        "MPa\u00b7m^1/2",
        "MPa m1/2",
        "MPa.m1/2",
        "MPa m0.5",
        "MPa\u00b7m\u00bd",
    ],
)
def test_a_fracture_toughness_keeps_its_square_root(spelling):
    assert convert(2.5, spelling, "MPa*m**0.5") == pytest.approx(2.5, rel=1e-12)


def test_a_fracture_toughness_in_ksi_root_inch_is_converted():
    # 1 ksi*in**0.5 = 6.894757 MPa * 0.0254**0.5 m**0.5 = 1.098843 MPa*m**0.5
    assert convert(1.0, "ksi\u221ain", "MPa*m**0.5") == pytest.approx(1.0988435, rel=1e-6)


@pytest.mark.parametrize(
    ("value", "spelling", "target", "expected"),
    [
        (16.0, "ang^3", "angstrom**3", 16.0),  # as VASP and ASE users write the angstrom
        (16.0, "Ang^3/atom", "angstrom**3/atom", 16.0),
        (16.0, "Angstrom^3", "angstrom**3", 16.0),
        (108.0, "Bohr^3", "bohr**3", 108.0),
        (1.7, "uOhm cm", "ohm*cm", 1.7e-6),  # 'Ohm' as spreadsheets capitalise it
        (1.7, "uOhm\u00b7cm", "ohm*cm", 1.7e-6),
        (1.7, "mOhm cm", "ohm*cm", 1.7e-3),
        (1.7, "Ohm cm", "ohm*cm", 1.7),
    ],
)
def test_the_angstrom_bohr_and_ohm_are_read_as_spreadsheets_capitalise_them(value, spelling, target, expected):
    assert convert(value, spelling, target) == pytest.approx(expected, rel=1e-12)


PERCENT_OF_WHAT = "a percent of atoms, weight, moles or volume is no unit: write % where the property says of what"
ATOMIC_OR_ARBITRARY = "atomic or arbitrary units name no one unit: write hartree, bohr, ..."


@pytest.mark.parametrize(
    ("spelling", "reason"),
    [
        ("MPa\u221bm", "cannot read '\u221b'"),  # a cube root: pint alone drops it
        ("MPa\u00f7m", "cannot read '\u00f7'"),  # pint alone reads MPa*m
        ("m,s", "cannot read ','"),  # pint alone drops the comma: a millisecond
        ("J/mol#K", "cannot read '#'"),  # pint alone reads J/mol, the rest a comment
        ("eV/atom?", "cannot read '?'"),
        ("at%", PERCENT_OF_WHAT),
        ("at.%", PERCENT_OF_WHAT),
        ("mol%", PERCENT_OF_WHAT),
        ("wt%", PERCENT_OF_WHAT),
        ("a.u.", ATOMIC_OR_ARBITRARY),
        ("au", ATOMIC_OR_ARBITRARY),
    ],
)
def test_a_unit_pint_would_misread_is_refused_with_the_reason(spelling, reason):
    with pytest.raises(UnitError) as raised:
        parse_unit(spelling)
    assert str(raised.value) == f"unknown unit '{spelling}' ({reason})"


def test_kmol_after_a_slash_is_kelvin_times_mole_and_nowhere_else():
    assert parse_unit("J/Kmol") == parse_unit("J/(K*mol)")
    assert parse_unit("J/Kmol K") == parse_unit("J/(mol*K**2)")  # one denominator, as 'J/mol K'
    assert parse_unit("J/kmolK") == parse_unit("J/(kmol*K)")  # the kilomole, lower-case k
    for unread in ("Kmol", "J/Kg", "kJ/(Kmol)"):  # alone, in parentheses and 'Kg' for kg: refused, never guessed
        with pytest.raises(UnitError, match=r"^unknown unit"):
            parse_unit(unread)


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("at", "technical_atmosphere"),
        ("mK", "millikelvin"),
        ("J/mK", "J/millikelvin"),  # only watts per mK are per metre and kelvin
        ("1/mK", "1/millikelvin"),
        ("J/kK", "J/kilokelvin"),  # a name pint knows is not split
        ("W/K", "W/K"),
        ("eV/atom", "eV/atom"),
    ],
)
def test_abbreviations_read_in_context_keep_their_meaning_elsewhere(spelling, canonical):
    assert parse_unit(spelling) == parse_unit(canonical)


# Molar masses (g/mol) of one formula unit as written, as pymatgen weighs it (Composition(...).weight)
CU, WATER, CORUNDUM = 63.546, 18.01528, 101.9612772


@pytest.mark.parametrize(
    ("value", "unit", "molar_mass", "expected"),
    [
        (0.385, "J/(g*K)", CU, 24.46521),  # copper's heat capacity: 0.385 J/(g*K) * 63.546 g/mol
        (4.184, "J/g/K", WATER, 75.37593152),  # liquid water
        (4.184, "J g-1 K-1", WATER, 75.37593152),
        (4.184, "J/(g\u00b7K)", WATER, 75.37593152),
        (4.184, "J/g*K", WATER, 75.37593152),  # one denominator, not J*K/g
        (4184.0, "J/(kg*K)", WATER, 75.37593152),
        (0.7788, "J/(g*K)", CORUNDUM, 79.40744268),  # Al2O3 at 298 K: NIST-JANAF lists 79.01 J/(mol*K)
    ],
)
def test_a_heat_capacity_per_mass_is_molar_with_the_formulas_molar_mass(value, unit, molar_mass, expected):
    counts = AtomCounts(per_formula_unit=1, molar_mass=molar_mass)
    assert convert(value, unit, "J/(mol*K)", counts) == pytest.approx(expected, rel=1e-9)


def test_an_enthalpy_per_mass_is_molar_or_per_atom_with_the_formulas_molar_mass_and_atoms():
    water, corundum = AtomCounts(3, molar_mass=WATER), AtomCounts(5, molar_mass=CORUNDUM)
    assert convert(333.55, "kJ/kg", "kJ/mol", water) == pytest.approx(333.55 * WATER / 1000, rel=1e-9)  # ice melting
    assert convert(333.55, "J/g", "kJ/mol", water) == pytest.approx(333.55 * WATER / 1000, rel=1e-9)
    # corundum's enthalpy of formation per gram, per atom as the same per mole is: -1675.692 kJ/mol over 5 atoms
    per_gram = -1675.692 / CORUNDUM
    per_atom = convert(-1675.692, "kJ/mol", "eV/atom", corundum)
    assert convert(per_gram, "kJ/g", "eV/atom", corundum) == pytest.approx(per_atom, rel=1e-9)


def test_a_molar_value_is_per_mass_with_the_molar_mass_and_back():
    counts = AtomCounts(per_formula_unit=1, molar_mass=CU)
    assert convert(24.46521, "J/(mol*K)", "J/(g*K)", counts) == pytest.approx(0.385, rel=1e-9)


@pytest.mark.parametrize("counts", [AtomCounts(), AtomCounts(per_formula_unit=1), AtomCounts(1, None, float("nan"))])
def test_a_value_per_mass_without_a_molar_mass_is_refused_saying_so(counts):
    with pytest.raises(UnitError) as raised:
        convert(0.385, "J/(g*K)", "J/(mol*K)", counts)
    reason = str(raised.value)
    assert reason == "cannot convert 'J/(g*K)' to 'J/(mol*K)' without the molar mass of the formula unit"
    assert not is_missing_count_message(reason)  # (a readmit reads that reason as a cell of uncounted atoms)


def test_a_value_per_mass_without_the_atoms_of_its_formula_unit_is_refused_saying_so():
    with pytest.raises(UnitError, match=r"^cannot convert 'J/g' to 'eV/atom' without the number of atoms$"):
        convert(-16.43, "J/g", "eV/atom", AtomCounts(molar_mass=CORUNDUM))


@pytest.mark.parametrize(
    ("unit", "target", "problem"),
    [
        ("J/(g*K)", "J/(mol*K)", None),  # a molar mass makes it molar
        ("kJ/kg", "kJ/mol", None),
        ("J/g", "eV/atom", None),  # and the formula's atoms, per atom
        ("J/g", "eV", "cannot convert 'J/g' to 'eV' (incompatible dimensions)"),  # a band gap per mass
        ("J/(g*K)", "kJ/mol", "cannot convert 'J/(g*K)' to 'kJ/mol' (incompatible dimensions)"),
        ("atom/angstrom**3", "g/cm**3", None),  # a number density is a mass density with the molar mass
        # a molal unit is no factor of a number (log Kf): a molar mass would make one of it
        ("mol/kg", "dimensionless", "cannot convert 'mol/kg' to 'dimensionless' (incompatible dimensions)"),
        ("kg/mol", "dimensionless", "cannot convert 'kg/mol' to 'dimensionless' (incompatible dimensions)"),
        ("dimensionless", "mol/kg", "cannot convert 'dimensionless' to 'mol/kg' (incompatible dimensions)"),
    ],
)
def test_a_unit_per_mass_can_be_converted_where_a_molar_mass_makes_it_the_targets_dimension(unit, target, problem):
    assert conversion_problem(unit, target) == problem


def test_amperes_for_angstroms_are_refused_with_a_note():
    with pytest.raises(UnitError, match=r"incompatible dimensions; 'A' is the ampere: write Å or angstrom\)$"):
        convert(16.0, "A^3/atom", "angstrom**3/atom")


@pytest.mark.parametrize(
    ("unit", "target", "note"),
    [
        ("C", "K", "; 'C' is the coulomb: write °C or degC"),
        ("EV", "eV", ""),  # the exavolt brings in a current, but no bare symbol was misread
        ("deg C", "K", "; 'C' is the coulomb: write °C or degC"),
        ("mA*h/g", "eV", ""),  # milliampere: a symbol of its own
    ],
)
def test_a_note_names_only_a_bare_symbol_misread_for_another_unit(unit, target, note):
    with pytest.raises(UnitError) as raised:
        convert(1.0, unit, target)
    assert str(raised.value).endswith(f"(incompatible dimensions{note})")


def test_magnetic_moment_per_formula_unit_to_per_atom():
    assert convert(5.0, "muB/fu", "bohr_magneton/atom", AtomCounts(per_formula_unit=5)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [
        (-8.54, "eV/f.u.", "eV/atom", -1.708),
        (5.0, "μB/f.u.", "bohr_magneton/atom", 1.0),
        (50.0, "Å^3/f.u.", "angstrom**3/atom", 10.0),
    ],
)
def test_per_f_u_values_to_per_atom(value, source, target, expected):
    assert convert(value, source, target, AtomCounts(per_formula_unit=5)) == pytest.approx(expected)


@pytest.mark.parametrize("spelling", ["μB/atom", "µB/atom"])  # Greek mu (U+03BC), micro sign (U+00B5)
def test_the_bohr_magneton_is_read_with_either_mu(spelling):
    assert convert(2.0, spelling, "bohr_magneton/atom") == 2.0  # not microbyte


def test_per_cell_volume_to_per_atom_uses_sites():
    assert convert(40.0, "angstrom**3/cell", "angstrom**3/atom", AtomCounts(per_cell=4)) == pytest.approx(10.0)


def test_unknown_unit_is_a_clear_error():
    with pytest.raises(UnitError, match="unknown unit 'elektronvolt'"):
        parse_unit("elektronvolt")


@pytest.mark.parametrize(
    "text",
    ["J/(mol K", "kJ mol -1", "\u2103\u2103", "J/mol-K-1", "J/mol - K"],  # pint's parser failed on these
)
def test_a_unit_pint_cannot_parse_is_a_clear_error(text):
    with pytest.raises(UnitError, match=re.escape(f"unknown unit '{text}'")):
        parse_unit(text)


@pytest.mark.parametrize("text", ["eV/0", "eV/1e-400", "eV^0", "eV^-0", "eV**(1/0)"])
def test_a_unit_that_divides_by_zero_or_raises_to_the_power_zero_is_an_unknown_unit(text):
    # pint fails on these with ZeroDivisionError (a division by zero, or by a number that is zero as a float) and
    # KeyError (a unit to the power 0: no unit is left)
    with pytest.raises(UnitError, match=re.escape(f"unknown unit '{text}'")):
        parse_unit(text)


@pytest.mark.parametrize("text", ["eV dB", "eV/dB"])
def test_a_logarithmic_unit_in_a_product_is_refused_as_not_convertible(text):
    # pint parses these, then fails on multiplying them ('delta_decibel' is not defined in the unit registry)
    with pytest.raises(UnitError, match=re.escape(f"cannot convert '{text}' to 'eV'")):
        convert(1.0, text, "eV")


def test_incompatible_units_are_refused():
    with pytest.raises(UnitError, match="incompatible dimensions"):
        convert(1.0, "eV", "GPa")


def test_molar_to_per_atom_needs_the_formula():
    with pytest.raises(UnitError, match="without the number of atoms"):
        convert(-285.83, "kJ/mol", "eV/atom")


def test_per_cell_boltzmann_heat_capacity_to_molar_per_formula_unit():
    # AFLOW's agl_heat_capacity_Cp_300K: 1 k_B per cell of 10 atoms, 5 atoms per formula unit -> 0.5 R
    counts = AtomCounts(per_formula_unit=5, per_cell=10)
    assert convert(1.0, "k_B/cell", "J/(mol*K)", counts) == pytest.approx(0.5 * 8.314462618)


def test_many_values_convert_at_once_with_their_own_atom_counts():
    converted = convert_array(
        np.array([-96.485332, -96.485332, 40.0]),
        "kJ/mol",
        "eV/atom",
        np.array([1.0, 2.0, np.nan]),
        np.full(3, np.nan),
        np.full(3, np.nan),
    )
    assert converted[:2] == pytest.approx([-1.0, -0.5]) and np.isnan(converted[2])  # no count: NaN, not a guess


def test_a_zero_atom_count_is_unknown_not_infinite():
    unknown = np.full(1, np.nan)
    converted = convert_array(np.array([40.0]), "angstrom**3/cell", "angstrom**3/atom", unknown, np.zeros(1), unknown)
    assert np.isnan(converted[0])


def test_scale_factor_is_for_units_of_one_dimension_only():
    assert scale_factor("m", "angstrom") == pytest.approx(1e10)
    with pytest.raises(UnitError, match="not a plain factor"):
        scale_factor("kJ/mol", "eV/atom")
    with pytest.raises(UnitError, match="incompatible dimensions"):
        scale_factor("m", "eV")


@pytest.mark.parametrize(
    ("units", "factor"),
    [
        (("kg/m**3", "g/cm**3"), 0.001),  # pint's float arithmetic: 0.0010000000000000002
        (("m**3", "angstrom**3"), 1e30),  # a last digit off
        (("nm**3", "angstrom**3"), 1000.0),  # 1000.0000000000001
        (("g/mL", "g/cm**3"), 1.0),  # 1.0000000000000002
        (("kbar", "GPa"), 0.1),
        (("kcal/mol", "kJ/mol"), 4.184),
    ],
)
def test_a_conversion_factor_is_the_float_nearest_the_exact_factor(units, factor):
    assert scale_factor(*units) == factor


def test_a_factor_of_one_over_a_whole_number_and_an_atom_count_divide():
    """0.001 times a value is not always the value over 1000, nor a value times 1/10 the value over 10: 2330 kg/m^3 was
    2.3300000000000005 g/cm^3 and 110.643 A^3 a cell of 10 atoms 11.064300000000001 A^3 an atom."""
    densities = np.round(np.random.default_rng(0).uniform(100, 20000, 10_000), 3)
    unknown = np.full(len(densities), np.nan)
    converted = convert_array(densities, "kg/m**3", "g/cm**3", unknown, unknown, unknown)
    assert (converted == densities / 1000).all()
    assert convert(2330, "kg/m**3", "g/cm**3") == 2.33
    assert convert(110.643, "angstrom**3/cell", "angstrom**3/atom", AtomCounts(per_cell=10)) == 11.0643
    assert convert(-2.49, "eV/atom", "eV/cell", AtomCounts(per_cell=7)) == -2.49 * 7


def test_the_constants_are_codata_2022s_and_matreg_admits_no_pint_of_older_ones():
    """pint 0.24 converts with CODATA 2018's constants (a hartree of 27.211386245988 eV, 27.211386245981 in 2022's),
    and a store compares values bit for bit: matreg needs the pint of CODATA 2022 (0.25), not any of 0.24.4 on."""
    assert convert(1, "Ha", "eV") == pytest.approx(27.211386245981, rel=1e-14, abs=0)
    assert convert(1, "bohr", "angstrom") == pytest.approx(0.529177210544, rel=1e-12, abs=0)  # 2018: ...0903
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (pint,) = [Requirement(text) for text in project["dependencies"] if Requirement(text).name.lower() == "pint"]
    assert (pint.specifier.contains("0.24.4"), pint.specifier.contains("0.25")) == (False, True)


WATER_PER_ATOM = (
    "from matreg.units import AtomCounts, convert; print(convert(-285.83, 'kJ/mol', 'eV/atom', AtomCounts(3)))"
)


def converted_in_fresh_process(cache_home) -> float:
    """The water conversion in a new interpreter (the registry is built at import) with this XDG cache folder."""
    cached_there = utf8_child({"XDG_CACHE_HOME": str(cache_home)})
    run = subprocess.run([sys.executable, "-c", WATER_PER_ATOM], capture_output=True, check=True, **cached_there)
    return float(run.stdout)


def test_the_unit_registry_is_cached_on_disk_and_a_broken_cache_only_costs_time(tmp_path):
    cache = tmp_path / "cache"
    assert converted_in_fresh_process(cache) == pytest.approx(-0.98747, abs=1e-5)
    pickles = list((cache / "pint").glob("*.pickle"))
    assert pickles  # the next start reads the parsed definitions instead of parsing them again
    assert converted_in_fresh_process(cache) == pytest.approx(-0.98747, abs=1e-5)
    for path in pickles:  # as another process would leave a file it is still writing
        path.write_bytes(path.read_bytes()[:100])
    assert converted_in_fresh_process(cache) == pytest.approx(-0.98747, abs=1e-5)


def test_without_a_writable_cache_folder_units_still_convert(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder", encoding="utf-8")
    assert converted_in_fresh_process(blocked) == pytest.approx(-0.98747, abs=1e-5)


@pytest.mark.parametrize(
    ("difference", "unit", "target", "counts", "converted"),
    [
        (0.5, "degC", "K", AtomCounts(), 0.5),  # a difference of 0.5 degC is 0.5 K, not 273.65 K
        (0.9, "degF", "K", AtomCounts(), 0.5),
        (0.5, "K", "degC", AtomCounts(), 0.5),
        (4.0, "kJ/mol", "eV/atom", AtomCounts(3), 4.0 / 96.485332 / 3),  # with the formula, as the value
        (20.0, "meV", "eV", AtomCounts(), 0.02),
    ],
)
def test_a_difference_converts_without_an_offset_units_offset(difference, unit, target, counts, converted):
    per_fu, per_cell, molar_mass = (np.array([count or np.nan]) for count in counts)
    result = convert_array(np.array([difference]), unit, target, per_fu, per_cell, molar_mass, differences=True)
    assert result.tolist() == pytest.approx([converted], rel=1e-6)


# A magnetometer's moment per mass in emu/g (1 emu = 1e-3 A*m^2, the CGS unit of a moment: 1 emu/g = 1 A*m^2/kg) is
# a moment per atom with the formula's molar mass and atoms: one Bohr magneton per atom is N_A * muB = 5584.94 emu per
# mole of atoms.
@pytest.mark.parametrize(
    ("value", "unit", "counts", "expected"),
    [
        (221.7, "emu/g", AtomCounts(1, molar_mass=55.845), 2.21683),  # bcc iron at 0 K: 2.22 muB per atom
        (92.0, "emu/g", AtomCounts(7, molar_mass=231.533), 0.544859),  # magnetite: 3.81 muB per Fe3O4
        (92.0, "emu g-1", AtomCounts(7, molar_mass=231.533), 0.544859),
        (21301.0, "emu/mol", AtomCounts(7), 0.544859),  # per mole of formula units
        (92.0, "A*m^2/kg", AtomCounts(7, molar_mass=231.533), 0.544859),
    ],
)
def test_a_moment_in_emu_per_gram_or_mole_is_bohr_magnetons_per_atom(value, unit, counts, expected):
    assert convert(value, unit, "bohr_magneton/atom", counts) == pytest.approx(expected, rel=1e-5)


def test_a_moment_in_emu_per_gram_without_a_molar_mass_is_refused_saying_so():
    with pytest.raises(UnitError, match="without the molar mass of the formula unit"):
        convert(221.7, "emu/g", "bohr_magneton/atom", AtomCounts(1))


@pytest.mark.parametrize("unit", ["kBar", "kbar"])  # VASP's OUTCAR: "TOTAL ELASTIC MODULI (kBar)"
def test_kilobar_as_vasp_writes_it_is_read(unit):
    assert convert(1600.0, unit, "GPa") == pytest.approx(160.0)


@pytest.mark.parametrize(
    ("unit", "target"),
    [("kB", "GPa"), ("kB/atom", "J/(mol*K)")],  # VASP's kB is the kilobar; an entropy in kB/atom is Boltzmann's
)
def test_kb_which_pint_reads_as_the_kilobyte_is_refused_with_a_note(unit, target):
    with pytest.raises(UnitError) as raised:
        convert(1.0, unit, target, AtomCounts(1, 1))
    assert str(raised.value).endswith(
        "(incompatible dimensions; 'kB' is the kilobyte: write kbar for the kilobar, k_B for Boltzmann's constant)"
    )
