"""Value harmonization of many records at once: units by group, each record's atom counts, one reason per value."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pandera.pandas as pandera
import pyarrow
import pytest
from pymatgen.core import DummySpecies, Lattice, Species, Structure

from matreg.errors import RecordError, ValidationError
from matreg.formula import reduced_formula
from matreg.jsontext import to_json
from matreg.numbers import Measured, parse_number, parse_value
from matreg.schema import arrow_schema, load_tables, pandera_schema, table_spec
from matreg.sources.base import Attribution, RawValue, SourceRecord
from matreg.structure import structure_json, written_atoms
from matreg.validation import (
    RunStamp,
    arrow_frame,
    harmonize_values,
    material_row,
    read_id,
    read_spacegroup_number,
    read_text,
    rows_breaking_rules,
    validate_table,
)

ATTRIBUTION = Attribution(source="test", provenance="dft", method="PBE")
STAMP = RunStamp("run-1", datetime(2026, 12, 2, tzinfo=UTC))


def _harmonized(*records: SourceRecord):
    materials = [material_row(record, ATTRIBUTION, STAMP) for record in records]
    return harmonize_values(list(records), materials, ATTRIBUTION)


def test_values_of_several_records_use_each_records_atom_counts():
    water = SourceRecord("w", "H2O", [RawValue("formation_energy_per_atom", -285.83, "kJ/mol")])
    alumina = SourceRecord(
        "a",
        "Al2O3",
        [
            RawValue("formation_energy_per_atom", -1675.7, "kJ/mol", method="calorimetry"),
            RawValue("volume_per_atom", 254.7, "angstrom**3/cell"),
        ],
        nsites=30,
    )
    values = _harmonized(water, alumina)
    rows = values.table.to_pylist()
    assert values.positions.tolist() == [0, 1, 1] and not values.rejected
    assert [row["record_id"] for row in rows] == ["test:w", "test:a", "test:a"]
    assert rows[0]["value"] == pytest.approx(-285.83 / 96.485332 / 3, rel=1e-6)  # per atom of H2O
    assert rows[1]["value"] == pytest.approx(-1675.7 / 96.485332 / 5, rel=1e-6)  # per atom of Al2O3
    assert rows[2]["value"] == pytest.approx(254.7 / 30) and rows[2]["unit"] == "angstrom**3/atom"
    assert [row["method"] for row in rows] == ["PBE", "calorimetry", "PBE"]  # the value's method, else the record's
    assert (rows[1]["original_value"], rows[1]["original_unit"]) == (-1675.7, "kJ/mol")
    assert values.table.schema == arrow_schema("properties")


def test_offset_units_are_converted_per_value():
    given = [RawValue("debye_temperature", 70.0, "degC"), RawValue("theta_d", 343.0, "K", method="calorimetry")]
    record = SourceRecord("t", "Cu", given)
    values = harmonize_values([record], [material_row(record, ATTRIBUTION, STAMP)], Attribution("lab", "experimental"))
    assert values.table["value"].to_pylist() == pytest.approx([343.15, 343.0])


@pytest.mark.parametrize(
    ("value", "reasons"),
    [
        (RawValue("no_such_property", "n/a", "eV", temperature_K=-1), ["unknown property 'no_such_property'"]),
        (RawValue("band_gap", "n/a", "eV", temperature_K=-1), ["non-numeric value 'n/a'"]),
        (RawValue("band_gap", "1_0", "eV"), ["non-numeric value '1_0'"]),  # float() reads 10
        (RawValue("band_gap", "\u0663", "eV"), ["non-numeric value '\u0663'"]),  # an Arabic-Indic 3
        (RawValue("band_gap", "\u22121.5", "eV"), ["band_gap = -1.5 eV is outside the physical bounds [0, 30]"]),
        (RawValue("band_gap", float("inf"), "eV"), ["not a finite number: 'inf'"]),
        (
            RawValue("band_gap", 99.0, "GPa", temperature_K=-1, pressure_Pa=-2),
            ["temperature_K -1 is negative", "pressure_Pa -2 is negative"],
        ),
        (
            RawValue("band_gap", 1.0, "eV", temperature_K=float("nan"), pressure_Pa=float("inf")),
            ["temperature_K nan is not a finite number", "pressure_Pa inf is not a finite number"],
        ),
        (RawValue("band_gap", 99.0, "GPa"), ["cannot convert 'GPa' to 'eV' (incompatible dimensions)"]),
        (RawValue("band_gap", 99.0, "eV"), ["band_gap = 99 eV is outside the physical bounds [0, 30]"]),
        (RawValue("band_gap", 10**400, "eV"), [f"not a finite number: '{str(10**400)[:77]}...'"]),  # beyond a float
        (
            RawValue("volume_per_atom", 40.0, "angstrom**3/cell"),
            ["cannot convert 'angstrom**3/cell' to 'angstrom**3/atom' without the number of atoms"],
        ),
    ],
)
def test_a_rejected_value_gets_its_first_reason_and_its_records_name(value, reasons):
    record = SourceRecord("r1", "GaAs", [RawValue("band_gap", 1.42, "eV", method="exp"), value])
    values = _harmonized(SourceRecord("r0", "Si", [RawValue("band_gap", 1.1, "eV")]), record)
    assert values.positions.tolist() == [0, 1] and values.table["value"].to_pylist() == [1.1, 1.42]
    [(position, rejection)] = values.rejected
    assert position == 1 and rejection.reasons == reasons
    assert rejection.item.startswith(f"r1:{value.property}") and rejection.raw["value"] == value.value


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (RawValue("density", 100000.0, "kg/m^3"), 100.0),  # over 1000 (times pint's float factor: a few ulps over)
        (RawValue("bulk_modulus", 5e14, "dyn/cm^2"), 50000.0),
        (RawValue("volume_per_atom", 0.5, "nm^3/atom"), 500.0),
        (RawValue("volume_per_atom", 5e-28, "m^3/atom"), 500.00000000000006),  # 1e30 is no float: an ulp over
        (RawValue("volume_per_atom", 1e-24, "cm^3/atom"), 0.9999999999999999),  # the lower bound, an ulp under
    ],
)
def test_a_value_at_its_bound_in_another_unit_is_kept_as_converted(value, stored):
    values = _harmonized(SourceRecord("r", "MgO", [value]))
    assert not values.rejected and values.table["value"].to_pylist() == [stored]  # not rounded: as pint gives it


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (RawValue("density", 100000.001, "kg/m^3"), "density = 100.000001 g/cm**3 is outside the physical bounds"),
        (RawValue("density", 100.0000001, "g/cm^3"), "density = 100.0000001 g/cm**3 is outside the physical bounds"),
        (RawValue("band_gap", -1e-9, "eV"), "band_gap = -1e-09 eV is outside the physical bounds"),
    ],
)
def test_a_value_just_beyond_its_bound_is_refused_with_the_digits_that_put_it_there(value, reason):
    [(_, rejection)] = _harmonized(SourceRecord("r", "MgO", [value])).rejected
    assert rejection.reasons[0].startswith(reason + " [")


def _standard(property: str, value: float, unit: str = "J/(mol*K)") -> RawValue:
    return RawValue(property, value, unit, temperature_K=298.15, method="NBS tables")


def test_the_negative_conventional_entropies_and_heat_capacities_of_aqueous_ions_are_stored():
    # NBS tables (Wagman et al. 1982): S° and Cp° of aqueous ions are relative to H+(aq), and negative for many
    ions = [
        SourceRecord("mg", "Mg[+2]", [_standard("entropy", -138.1)]),
        SourceRecord("mg-cal", "Mg++", [_standard("entropy", -33.0, "cal/(mol*K)")]),  # the older tables' -33.0 cal
        SourceRecord("al", "Al[+3]", [_standard("entropy", -321.7)]),
        SourceRecord("cl", "Cl-", [_standard("entropy", 56.5), _standard("heat_capacity_cp", -136.4)]),
        SourceRecord("oh", "OH-", [_standard("entropy", -10.75), _standard("heat_capacity_cp", -148.5)]),
    ]
    values = _harmonized(*ions)
    assert not values.rejected
    rows = [(row["record_id"], row["property"], row["value"], row["unit"]) for row in values.table.to_pylist()]
    assert rows == [
        ("test:mg", "entropy", -138.1, "J/(mol*K)"),
        ("test:mg-cal", "entropy", pytest.approx(-138.072), "J/(mol*K)"),  # the thermochemical calorie, 4.184 J
        ("test:al", "entropy", -321.7, "J/(mol*K)"),
        ("test:cl", "entropy", 56.5, "J/(mol*K)"),
        ("test:cl", "heat_capacity_cp", -136.4, "J/(mol*K)"),
        ("test:oh", "entropy", -10.75, "J/(mol*K)"),
        ("test:oh", "heat_capacity_cp", -148.5, "J/(mol*K)"),
    ]


def test_the_negative_standard_entropies_and_heat_capacities_of_neutral_aqueous_solutes_are_stored():
    # relative to H+(aq) as an ion's: a neutral electrolyte's is the sum of its ions' (NBS tables, Wagman et al. 1982:
    # MgSO4(aq) S° -118.0 = Mg2+ -138.1 + SO4 2- 20.1; NaCl(aq) Cp° -90.0 J/(mol*K))
    solutes = [
        SourceRecord("mgso4", "MgSO4", [_standard("entropy", -118.0)], phase="aq"),
        SourceRecord("nacl", "NaCl", [_standard("heat_capacity_cp", -90.0)], phase="aq"),
    ]
    values = _harmonized(*solutes)
    assert not values.rejected
    rows = [(row["record_id"], row["property"], row["value"]) for row in values.table.to_pylist()]
    assert rows == [("test:mgso4", "entropy", -118.0), ("test:nacl", "heat_capacity_cp", -90.0)]


def test_a_negative_entropy_is_refused_where_the_species_is_no_ion_and_an_ions_beyond_its_own_bounds():
    records = [
        SourceRecord("corundum", "Al2O3", [_standard("entropy", -50.92)]),  # a lost sign: a crystal's is positive
        SourceRecord("electron", "e-", [_standard("heat_capacity_cp", -6.197)]),  # charged, but no ion: no atoms
        SourceRecord("mg", "Mg[+2]", [_standard("entropy", -138.1, "kJ/(mol*K)")]),  # J given as kJ
        SourceRecord("mgso4", "MgSO4", [_standard("entropy", -118.0, "kJ/(mol*K)")], phase="aq"),  # J given as kJ
        SourceRecord("vapour", "NaCl", [_standard("heat_capacity_cp", -90.0)], phase="g"),  # an aqueous value
    ]
    reasons = {rejection.record_id: rejection.reasons for _, rejection in _harmonized(*records).rejected}
    of_a_solute = "is outside the physical bounds of an ion or aqueous solute [-5000, 5000]"
    assert reasons == {
        "test:corundum": ["entropy = -50.92 J/(mol*K) is outside the physical bounds [0, 5000]"],
        "test:electron": ["heat_capacity_cp = -6.197 J/(mol*K) is outside the physical bounds [0, 5000]"],
        "test:mg": [f"entropy = -138100 J/(mol*K) {of_a_solute}"],
        "test:mgso4": [f"entropy = -118000 J/(mol*K) {of_a_solute}"],
        "test:vapour": ["heat_capacity_cp = -90 J/(mol*K) is outside the physical bounds [0, 5000]"],
    }


@pytest.mark.parametrize(
    ("formula", "value", "stored"),
    [
        # hydrogen at 0 °C and 1 atm: 0.0899 g/L
        ("H2", RawValue("density", 8.99e-5, "g/cm^3", temperature_K=273.15, pressure_Pa=101325), 8.99e-5),
        # osmium compressed to 770 GPa in a diamond anvil cell (Dubrovinsky et al. 2015): about 40 g/cm^3 by its EOS
        ("Os", RawValue("density", 40.0, "g/cm^3", pressure_Pa=7.7e11), 40.0),
        # the inner core at the Earth's centre, 364 GPa (PREM): 1425.3 GPa
        ("Fe", RawValue("bulk_modulus", 1425.3, "GPa", pressure_Pa=3.64e11), 1425.3),
        # diamond's shear modulus rises about 2 GPa per GPa (535 GPa at ambient pressure)
        ("C", RawValue("shear_modulus", 1300.0, "GPa", pressure_Pa=4e11), 1300.0),
        # isotopically enriched (99.9% 12C) diamond at its maximum, 104 K (Wei et al. 1993): 410 W/(cm*K)
        ("C", RawValue("thermal_conductivity", 410.0, "W/(cm*K)", temperature_K=104), 41000.0),
        # holmium's saturated moment at 4.2 K (Jensen and Mackintosh, Rare Earth Magnetism): 10.34 per atom
        ("Ho", RawValue("magnetic_moment", 10.34, "bohr_magneton/atom", temperature_K=4.2), 10.34),
        # an all-electron code's total energy of iron (Hartree-Fock: -1262.4 hartree per atom)
        ("Fe", RawValue("total_energy_per_atom", -1262.4, "hartree/atom"), pytest.approx(-34351.654)),
    ],
)
def test_real_values_at_the_extremes_of_their_conditions_are_stored(formula, value, stored):
    values = _harmonized(SourceRecord("r", formula, [value]))
    assert not values.rejected and values.table["value"].to_pylist() == [stored]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (RawValue("density", 0.0, "g/cm^3"), "density = 0 g/cm**3 is outside the physical bounds [1e-09, 100]"),
        (
            RawValue("magnetic_moment", 12.1, "bohr_magneton/atom"),
            "magnetic_moment = 12.1 bohr_magneton/atom is outside the physical bounds [-12, 12]",
        ),
        (
            RawValue("bulk_modulus", -0.5, "GPa"),  # a mechanically unstable cell's (DFT)
            "bulk_modulus = -0.5 GPa is outside the physical bounds [0, 50000]",
        ),
    ],
)
def test_values_no_material_can_have_are_still_refused(value, reason):
    [(_, rejection)] = _harmonized(SourceRecord("r", "Fe", [value])).rejected
    assert rejection.reasons == [reason]


@pytest.mark.parametrize(
    ("second", "merged"),
    [
        (5.000000001, True),  # within a relative 1e-9 of the first: the same value as two fields round it
        (5.00000001, False),
        (5.002, False),
    ],
)
def test_two_fields_giving_one_value_key_agree_only_within_a_billionth(second, merged):
    given = [RawValue("band_gap", 5.0, "eV", field="Egap"), RawValue("band_gap", second, "eV", field="Egap_fit")]
    values = _harmonized(SourceRecord("r", "NaCl", given))
    reason = (
        f"band_gap (PBE) given by two fields, Egap = 5 eV and Egap_fit = {second:.15g} eV: "
        "map one of them to another method or property"
    )
    if merged:
        assert values.table["value"].to_pylist() == [5.0] and not values.rejected
    else:
        assert values.table.num_rows == 0
        assert [(rejection.raw["value"], rejection.reasons) for _, rejection in values.rejected] == [
            (5.0, [reason]),
            (second, [reason]),
        ]


@pytest.mark.parametrize("nsites", [2**63 - 1, -(2**63)])
def test_a_count_an_int64_column_holds_is_stored(nsites):
    assert material_row(SourceRecord("n", "NaCl", [], nsites=nsites), ATTRIBUTION, STAMP)["nsites"] == nsites


@pytest.mark.parametrize("nsites", [2**63, -(2**63) - 1])
def test_a_count_beyond_an_int64_column_quarantines_the_record(nsites):
    with pytest.raises(RecordError) as raised:
        material_row(SourceRecord("n", "NaCl", [], nsites=nsites), ATTRIBUTION, STAMP)
    assert str(raised.value) == f"nsites {nsites} is not a whole number of 64 bits"


def test_a_payload_with_integers_beyond_64_bits_is_written_with_their_digits():
    payload = {"natoms": 10**25, "sites": [2**64, -(2**63) - 1, 2**64 - 1], "band_gap": float("nan")}
    written = to_json(payload)  # orjson writes no integer beyond 64 bits, which the json module reads
    assert written == f'{{"band_gap":null,"natoms":{10**25},"sites":[{2**64},{-(2**63) - 1},{2**64 - 1}]}}'


@pytest.mark.parametrize("depth", [300, 1000])
def test_a_payload_nested_deeper_than_orjson_writes_is_written_whole(depth):
    # orjson writes 254 levels at most, and the rewrite of big integers recursed: a quarantined entry nested deeper
    # failed the run with a traceback
    payload = {"id": "q1", "x": 1}
    for _ in range(depth):
        payload["x"] = [payload["x"], 10**25]
    written = to_json(payload)
    assert written == '{"id":"q1","x":' + "[" * depth + "1" + f",{10**25}]" * depth + "}"


def test_a_payload_with_lone_surrogates_is_written_with_their_escapes():
    # the json module reads "\ud800" alone (orjson refuses it), which no UTF-8 writer writes
    payload = {"formula": "Na\ud800Cl", "k\udc00": ["é", 2**64], "gap": float("nan")}
    assert to_json(payload) == '{"formula":"Na\\ud800Cl","gap":null,"k\\udc00":["é",18446744073709551616]}'
    assert json.loads(to_json(payload)) == payload | {"gap": None}


def test_one_value_key_given_by_two_fields_is_rejected_unless_they_agree():
    record = SourceRecord(
        "r",
        "GaAs",
        [
            RawValue("band_gap", 1.42, "eV", field="gap"),
            RawValue("band_gap", 1420.0, "meV", field="gap_meV"),  # the same value in another unit: stored once
            RawValue("bulk_modulus", 75.0, "GPa", temperature_K=300, field="B"),
            RawValue("bulk_modulus", 80.0, "GPa", temperature_K=300, field="B_fit"),
            RawValue("bulk_modulus", 77.0, "GPa", field="B0"),  # at no temperature: another key
            RawValue("bulk_modulus", 81.0, "GPa", temperature_K=300, method="HSE06", field="B_hse"),  # another method
        ],
    )
    earlier_read = SourceRecord("r", "GaAs", [RawValue("bulk_modulus", 98.0, "GPa", 300, field="B")])
    values = _harmonized(earlier_read, record)
    rows = values.table.to_pylist()
    assert [(row["property"], row["value"], row["original_unit"], row["method"]) for row in rows] == [
        ("bulk_modulus", 98.0, "GPa", "PBE"),  # of another read of the record (ingest keeps a page's last whole)
        ("band_gap", 1.42, "eV", "PBE"),  # the first field's
        ("bulk_modulus", 77.0, "GPa", "PBE"),
        ("bulk_modulus", 81.0, "GPa", "HSE06"),
    ]
    assert values.positions.tolist() == [0, 1, 1, 1]
    reason = (
        "bulk_modulus (PBE) at 300 K given by two fields, B = 75 GPa and B_fit = 80 GPa: "
        "map one of them to another method or property"
    )
    assert [(position, rejection.raw["value"], rejection.reasons) for position, rejection in values.rejected] == [
        (1, 75.0, [reason]),
        (1, 80.0, [reason]),
    ]
    assert "field" not in values.rejected[0][1].raw  # quarantine payloads (and ids) as before values named it


# HDO's sites alone (all that is read of a connector's structure document to count its atoms), deuterium named D
HDO = json.dumps({"sites": [{"species": [{"element": name, "occu": 1.0}]} for name in "DHO"]}, separators=(",", ":"))


def structure_of(species: list) -> str:
    """A structure document as pymatgen writes it (not as connectors do: `structure_json`): these species (elements,
    occupancies, ions) along a cubic cell."""
    coords = [[i / len(species), 0, 0] for i in range(len(species))]
    return Structure(Lattice.cubic(len(species) * 2.0), species, coords).to_json()


@pytest.mark.parametrize(
    ("formula", "structure"),
    [
        ("Fe2O3", structure_of(["Fe"] * 4 + ["O"] * 6)),  # a cell of two formula units
        ("FeO", structure_of([Species("Fe", 2), Species("O", -2)])),  # ions, as pymatgen writes them
        ("FeO", structure_of([{"Fe": 0.95}, "O"])),  # a refined Fe0.95O, within the tolerance
        ("D2O", structure_of(["D", "D", "O"])),  # (pymatgen writes deuterium as H)
        ("H2O", HDO),  # deuterium counted as hydrogen
        ("CuSO4·5H2O", structure_of(["Cu", "S"] + ["O"] * 9 + ["H"] * 10)),  # an adduct as its parts summed
    ],
)
def test_a_structure_of_the_records_formula_is_kept(formula, structure):
    record = SourceRecord("s", formula, [], structure=structure)
    assert material_row(record, ATTRIBUTION, STAMP)["structure"] == structure


@pytest.mark.parametrize(
    ("formula", "structure", "reason"),
    [
        ("Fe2O3", structure_of(["Fe"] * 3 + ["O"] * 4), "the structure is Fe3O4, not the record's formula Fe2O3"),
        (
            "FeO",
            structure_of([{"Fe": 0.5}, "O"]),
            "the structure is Fe0.5O (by occupancy), not the record's formula FeO",
        ),
        ("ZnO", structure_of(["Ga", "N"]), "the structure is GaN, not the record's formula ZnO"),
        (  # its Fe and O within the tolerance of FeO's, its Si (3% of the atoms) not in the formula
            "FeO",
            structure_of(["Fe"] * 16 + ["O"] * 16 + ["Si"]),
            "the structure is Fe16SiO16, not the record's formula FeO",
        ),
        (  # as connectors write it (`structure_json`): its atoms as written, the formula's O not named as O0
            "ZnO",
            structure_json(np.eye(3) * 4, ["Zn", "Zn"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
            "the structure is Zn2, not the record's formula ZnO",
        ),
        ("O", structure_of([DummySpecies("X"), "O"]), "structure: 'X' is not a chemical element"),
        (
            "O",
            '{"sites": [{"species": "O"}]}',
            "structure: its sites are not pymatgen's (species lists of element and occu)",
        ),
        ("O", '{"sites":[{"species":[{"element":"O","occu":0.0}]}]}', "structure: its sites hold no atoms"),
    ],
)
def test_a_structure_not_of_the_records_formula_quarantines_the_record_naming_both(formula, structure, reason):
    with pytest.raises(RecordError) as raised:
        material_row(SourceRecord("s", formula, [], structure=structure), ATTRIBUTION, STAMP)
    assert str(raised.value) == reason


@pytest.mark.parametrize(
    ("formula", "species", "outcome"),
    [
        ("ZnO", ["Zn", "O", "Zn", "O"], None),
        ("ZnO", ["Zn", "Zn", "Zn", "O"], "the structure is Zn3O, not the record's formula ZnO"),
        ("ZnO", ["Zn", "S", "Zn", "S"], "the structure is Zn2S2, not the record's formula ZnO"),
        ("H2O", ["D", "H", "O", "H"], "the structure is H3O, not the record's formula H2O"),  # deuterium as H
        ("H3O", ["D", "H", "O", "H"], None),
        ("FeO", [{"Fe": 0.95}, "O", {"Fe": 0.95}, "O"], None),  # a refined Fe0.95O, within the tolerance
        ("FeO", [{"Fe": 0.5}, "O", "Fe", "O"], "the structure is Fe1.5O2 (by occupancy), not the record's formula FeO"),
        (
            "GaAs",
            [{"Ga": 0.5, "In": 0.5}, "As", "Ga", "As"],
            "the structure is In0.5Ga1.5As2 (by occupancy), not the record's formula GaAs",
        ),
    ],
)
def test_a_structure_matreg_wrote_is_held_to_the_rule_as_its_text_read_back_is(formula, species, outcome):
    """The atoms of a document a connector wrote moments before are taken as written (`written_atoms`), not read from
    its text: the same outcome and reason as for the same text read back from the store."""
    coords = [[0, 0, 0], [0.25, 0.25, 0.25], [0.5, 0.5, 0.5], [0.75, 0.75, 0.75]]
    written = structure_json(np.eye(3) * 4, species, coords)
    stored = written.encode().decode()  # the same text, as read back from the store
    assert written_atoms(written) is not None and written_atoms(stored) is None
    assert [_structure_outcome(formula, text) for text in (written, stored)] == [outcome, outcome]


def _structure_outcome(formula: str, structure: str) -> str | None:
    """Why a record of this formula and structure is refused; None where its materials row is made."""
    try:
        material_row(SourceRecord("s", formula, [], structure=structure), ATTRIBUTION, STAMP)
    except RecordError as exc:
        return str(exc)
    return None


def test_a_structure_changed_after_it_was_written_is_refused_as_its_text_says_not_passed_on_the_atoms_written():
    """The atoms handed over are those of the very text written: a connector changing the document afterwards makes
    another text (a plain str), whose atoms are read from it; the record whose formula the written document was of
    is refused with the changed one."""
    written = structure_json(np.eye(3) * 4, ["Zn", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert _structure_outcome("ZnO", written) is None
    changed = written.replace('"element":"O"', '"element":"S"')
    assert _structure_outcome("ZnO", changed) == "the structure is ZnS, not the record's formula ZnO"
    assert _structure_outcome("ZnO", written.replace("0.5,0.5,0.5", "0.5,0.5,0.4")) is None  # (its atoms the same)


@pytest.mark.parametrize(
    ("given", "number"), [(1, 1), (230, 230), (np.int64(62), 62), ("225", 225), (225.0, 225), (None, None)]
)
def test_a_space_group_number_in_the_schemas_range_is_read(given, number):
    assert read_spacegroup_number(given, "field") == number


@pytest.mark.parametrize("given", [0, 231, 12.7, 231.0, float("nan"), True, "12.0", "Fm-3m", "", [62]])
def test_anything_else_is_no_space_group_number_and_quarantines_the_record(given):
    with pytest.raises(RecordError) as raised:
        read_spacegroup_number(given, "spg_number")
    assert str(raised.value) == f"spg_number {given!r} is not a space group number (1 to 230)"


@pytest.mark.parametrize(("given", "read"), [(16974, "16974"), (2**64 + 1, str(2**64 + 1)), ("mp-149", "mp-149")])
def test_an_id_is_a_text_or_an_integers_digits(given, read):
    assert read_id(given, "entry_id") == read


@pytest.mark.parametrize("given", [2.0**64, 16974.0, True, [1], {"id": 1}])
def test_anything_else_is_no_id_and_quarantines_the_record(given):
    with pytest.raises(RecordError) as raised:  # a float: a JSON reader's integer beyond 64 bits, merging records
        read_id(given, "entry_id")
    assert str(raised.value) == f"entry_id {given!r} is no integer or text"


@pytest.mark.parametrize("given", ["", "  ", "\t\n"])
def test_an_empty_text_is_no_id_and_quarantines_the_record_not_merged_with_the_others_under_source_colon(given):
    with pytest.raises(RecordError) as raised:
        read_id(given, "entry_id")
    assert str(raised.value) == f"entry_id {given!r} is empty: no id"


def test_a_sources_missing_marker_is_an_absent_space_group_number_and_text():
    def is_missing(value) -> bool:
        return value is None or value == "na"

    assert read_spacegroup_number("na", "spg_number", is_missing) is None
    assert read_text("na", "spg_symbol", is_missing) is None and read_text("", "spg_symbol") is None
    assert read_text("Fm-3m", "spg_symbol") == "Fm-3m"
    with pytest.raises(RecordError, match="spg_symbol 225 is not a text"):
        read_text(225, "spg_symbol")


@pytest.mark.parametrize(("text", "reduced"), [("O2Si", "SiO2"), ("Fe2O3", "Fe2O3"), ("Xx2", None), (None, None)])
def test_a_formula_is_reduced_as_a_materials_row_stores_it_or_none_when_unreadable(text, reduced):
    assert reduced_formula(text) == reduced


@pytest.mark.parametrize(
    ("given", "read"),
    [
        (3.2, 3.2),
        ("3.2", 3.2),
        ("1e5", 1e5),
        ("\u22121.5", -1.5),
        ("5.431(2)", Measured(5.431, 0.002)),  # concise notation: the uncertainty in units of the last digit
        ("3.35(12)", Measured(3.35, 0.12)),
        ("1250(30)", Measured(1250.0, 30.0)),
        ("-0.52(3)", Measured(-0.52, 0.03)),
        (" 5.431 (2) ", Measured(5.431, 0.002)),
        ("12.3(1.5)", Measured(12.3, 1.5)),  # with a decimal point: in the value's units (GUM 7.2.2)
        ("5.431(2)\u00d710\u207b\u00b3", Measured(5.431e-3, 2e-6)),
        ("5.431(2)e-3", Measured(5.431e-3, 2e-6)),
        ("3.2 \u00b1 0.1", Measured(3.2, 0.1)),
        ("3.2\u00b10.1", Measured(3.2, 0.1)),
        ("3.2+/-0.1", Measured(3.2, 0.1)),
        ("3.2 +- 0.1", Measured(3.2, 0.1)),
        ("\u22123.2 \u00b1 0", Measured(-3.2, 0.0)),
        ("1.2e-3 \u00b1 1e-4", Measured(1.2e-3, 1e-4)),
        ("1.2\u00d710\u207b\u00b3", 1.2e-3),  # papers' powers of ten
        ("1.2 \u00d7 10\u22123", 1.2e-3),
        ("1.2x10^-3", 1.2e-3),
        ("1.2\u00b710^-3", 1.2e-3),
        ("1.2 \u22c5 10^3", 1.2e3),
        ("6.02\u00d710\u00b2\u00b3", 6.02e23),
        ("(1.2 \u00b1 0.1)\u00d710\u207b\u00b3", Measured(1.2e-3, 1e-4)),
        ("( 1.2+/-0.1 ) x 10^-3", Measured(1.2e-3, 1e-4)),
        ("(1.2 \u00b1 0.1)e-3", Measured(1.2e-3, 1e-4)),
    ],
)
def test_a_value_is_read_with_the_uncertainty_its_notation_states(given, read):
    assert parse_value(given) == read
    assert type(parse_value(given)) is type(read)  # a plain number states no uncertainty: a float, not a Measured


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("about 3", ""),
        ("n/a", ""),
        ("1_0", ""),
        ("5.431(2", ": its parentheses do not close"),
        ("(1.2 \u00b1 0.1\u00d710\u207b\u00b3", ": its parentheses do not close"),
        ("1.2\u00d710", ": a power of ten without its exponent (1.2\u00d710\u207b\u00b3, 1.2x10^-3)"),
        ("1.2 x 10^", ": a power of ten without its exponent (1.2\u00d710\u207b\u00b3, 1.2x10^-3)"),
        ("1.2\u00d7103", ""),  # 10^3 whose superscript was lost, or 103? not guessed
        ("3.2 \u00b1 ", ": '\u00b1' without a number on each side"),
        ("\u00b1 0.1", ": '\u00b1' without a number on each side"),
        ("3.2 +/-", ": '\u00b1' without a number on each side"),
        ("5-10", ": a range, not one value"),
        ("5\u221210", ": a range, not one value"),
        ("5 \u2013 10", ": a range, not one value"),
        ("-5 - -3", ": a range, not one value"),
        (
            "3.2 \u00b1 0.1\u00d710\u207b\u00b3",
            ": a power of ten after '\u00b1' (of the uncertainty alone, or of both? not guessed): write the value and "
            "its uncertainty in parentheses before it, (1.2 \u00b1 0.1)\u00d710\u207b\u00b3",
        ),
        (
            "1.2 \u00b1 0.1e-3",
            ": an exponent on one side of '\u00b1' (of that side alone, or of both? not guessed): write it on both, "
            "1.2e-3 \u00b1 0.1e-3, or after parentheses, (1.2 \u00b1 0.1)e-3",
        ),
        (
            "1.2e-3 \u00b1 0.1",
            ": an exponent on one side of '\u00b1' (of that side alone, or of both? not guessed): write it on both, "
            "1.2e-3 \u00b1 0.1e-3, or after parentheses, (1.2 \u00b1 0.1)e-3",
        ),
        ("5.431(-2)", ""),
        ("3.2 \u00b1 -0.1", ""),
    ],
)
def test_a_value_whose_notation_is_ambiguous_or_unreadable_is_refused_saying_why(given, why):
    assert parse_value(given) == f"non-numeric value '{given}'{why}"


def test_a_value_or_uncertainty_beyond_a_float_is_no_finite_number():
    assert parse_value("1.2\u00d710^400") == "not a finite number: '1.2\u00d710^400'"
    assert parse_value("1.2e0 \u00b1 1e400") == Measured(1.2, float("inf"))  # refused as it is harmonized


TOO_NEAR_0 = "too near 0 for a float: '{}' would be stored as 0 (the smallest float is 5e-324)"


@pytest.mark.parametrize("given", ["1e-400", "-2.5E-330", "2e-324", "0.000001e-320"])  # 2e-324: rounds to 0
def test_a_number_nearer_0_than_any_float_is_refused_not_read_as_0(given):
    assert parse_number(given) == parse_value(given) == TOO_NEAR_0.format(given)


@pytest.mark.parametrize(
    "given",
    [
        "1.2x10^-400",
        "1.2\u00d710\u207b\u2074\u2070\u2070",
        "5.431(2)e-400",
        "(1.2 \u00b1 0.1)e-400",  # its uncertainty too: the value is named
    ],
)
def test_a_value_in_a_notation_nearer_0_than_any_float_is_refused_not_read_as_0(given):
    assert parse_value(given) == TOO_NEAR_0.format(given)


@pytest.mark.parametrize("given", ["1.0(1)e-323", "1.2e0 \u00b1 1e-400"])  # 1e-323 is a float, 1e-324 is not
def test_an_uncertainty_nearer_0_than_any_float_of_a_value_that_is_one_is_refused_naming_the_uncertainty(given):
    assert parse_value(given) == TOO_NEAR_0.replace("'{}'", "the uncertainty of '{}'").format(given)


@pytest.mark.parametrize(
    ("given", "read"),
    [("5e-324", 5e-324), ("1e-320", 1e-320), ("0e-400", 0.0), ("-0.000", -0.0), ("0.0x10^-400", 0.0), ("0", 0.0)],
)
def test_zero_and_numbers_down_to_the_smallest_float_are_read_as_written(given, read):
    assert parse_value(given) == read and str(parse_value(given)) == str(read)


def test_a_values_uncertainty_is_converted_as_a_difference_in_its_canonical_unit():
    record = SourceRecord(
        "r",
        "H2O",
        [
            RawValue("formation_energy_per_atom", "-285.83(4)", "kJ/mol"),
            RawValue("debye_temperature", 70.0, "degC", uncertainty=0.5),  # given apart: a lab's uncertainty column
            RawValue("band_gap", "3.2 \u00b1 0.1", "eV"),
            RawValue("density", 1.0, "g/cm^3"),  # none stated: empty
        ],
    )
    rows = _harmonized(record).table.to_pylist()
    assert [row["uncertainty"] for row in rows[:3]] == pytest.approx([0.04 / 96.485332 / 3, 0.5, 0.1], rel=1e-6)
    assert rows[3]["uncertainty"] is None
    assert rows[0]["original_value"] == -285.83 and rows[1]["value"] == pytest.approx(343.15)


def test_values_stating_no_uncertainty_get_an_empty_column():
    values = _harmonized(SourceRecord("r", "Si", [RawValue("band_gap", 1.1, "eV")]))
    assert values.table["uncertainty"].null_count == 1 and values.table.schema == arrow_schema("properties")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (RawValue("band_gap", 1.1, "eV", uncertainty=-0.1), "uncertainty -0.1 eV is negative"),
        (RawValue("band_gap", 1.1, "eV", uncertainty=float("inf")), "uncertainty inf eV is not a finite number"),
        (RawValue("band_gap", "1.1e0 \u00b1 1e400", "eV"), "uncertainty inf eV is not a finite number"),
        (RawValue("band_gap", 1.1, "eV", uncertainty="about 0.1"), "uncertainty: non-numeric value 'about 0.1'"),
        (
            RawValue("band_gap", "1.1(2)", "eV", uncertainty=0.3, field="Eg"),
            "Eg: '1.1(2)' states its uncertainty and another is given apart (0.3): which one is meant is not guessed",
        ),
    ],
)
def test_a_value_with_an_uncertainty_that_cannot_be_is_refused_with_the_reason(value, reason):
    values = _harmonized(SourceRecord("r", "Si", [RawValue("density", 2.33, "g/cm^3"), value]))
    [(_, rejection)] = values.rejected
    assert rejection.reasons == [reason] and values.table["property"].to_pylist() == ["density"]
    assert rejection.raw["value"] == value.value and rejection.raw.get("uncertainty") == value.uncertainty


@pytest.mark.parametrize("given", [[1.5, 2.5], {"value": 1.5}, "1.5 eV", True])
def test_a_rejected_values_payload_holds_its_fields_as_given_and_a_copy_of_a_list_or_object(given):
    """The payload stored is the value's fields (`asdict`'s copy: a list or object copied, a text or number itself),
    not the value as the record holds it, which a later edit of the record would change."""
    raw = RawValue("band_gap", given, "eV", method="PBE")
    [(_, rejection)] = _harmonized(SourceRecord("r", "Si", [raw])).rejected
    assert rejection.raw == {
        "property": "band_gap",
        "value": given,
        "unit": "eV",
        "temperature_K": None,
        "pressure_Pa": None,
        "method": "PBE",
        "problem": None,
    }
    assert list(rejection.raw) == ["property", "value", "unit", "temperature_K", "pressure_Pa", "method", "problem"]
    assert (rejection.raw["value"] is given) == isinstance(given, str | bool)


def test_a_rejected_value_stating_no_uncertainty_keeps_the_payload_it_had():
    [(_, rejection)] = _harmonized(SourceRecord("r", "Si", [RawValue("band_gap", 99.0, "eV")])).rejected
    assert "uncertainty" not in rejection.raw  # quarantine payloads (and ids) as before values had one


def _valid_row(name: str) -> dict:
    """A row of canonical table `name` that keeps every rule: each column a value of its type within its rules (the
    properties table's a band gap in eV)."""
    kinds = {"string": "x", "float64": 1.0, "int64": 1, "bool": True, "list<string>": ["x"]}
    kinds["timestamp"] = datetime(2026, 12, 7, tzinfo=UTC)
    row = {column: spec.isin[0] if spec.isin else kinds[spec.type] for column, spec in table_spec(name).columns.items()}
    if "property" in row:  # (the vocabulary's rule: the property's canonical unit, a value within its bounds)
        row |= {"property": "band_gap", "unit": "eV", "value": 1.1}
    return row


_VOCABULARY = "value in canonical unit and within the property's bounds failed"  # the properties rule of whole rows


def _broken_rows() -> list[tuple[str, str, object, list[str]]]:
    """(table, column, value, the reasons of a row with it) of every column rule of every canonical table: a missing
    value where the column takes none (NaN too, in a float column), a value outside its list or range; the
    vocabulary's rule by a unit and by a value (a row missing its property, value or unit breaks it too)."""
    broken = [("properties", "unit", "K", [_VOCABULARY]), ("properties", "value", -1.0, [_VOCABULARY])]
    for name in load_tables():
        for column, spec in table_spec(name).columns.items():
            whole_row = [_VOCABULARY] if name == "properties" and column in ("property", "value", "unit") else []
            if not spec.nullable:
                broken.append((name, column, None, [f"{column}: not_nullable", *whole_row]))
            if not spec.nullable and spec.type == "float64":
                broken.append((name, column, float("nan"), [f"{column}: not_nullable", *whole_row]))
            if spec.isin:
                outside = "none of these"
                broken.append((name, column, outside, [f"{column}: isin({spec.isin}) failed for {outside!r}"]))
            number = float if spec.type == "float64" else int
            if spec.min is not None:
                low = number(spec.min - 1)
                broken.append(
                    (name, column, low, [f"{column}: greater_than_or_equal_to({spec.min}) failed for {low!r}"])
                )
            if spec.max is not None:
                high = number(spec.max + 1)
                broken.append(
                    (name, column, high, [f"{column}: less_than_or_equal_to({spec.max}) failed for {high!r}"])
                )
    return broken


@pytest.mark.parametrize(("name", "column", "value", "reasons"), _broken_rows())
def test_a_row_of_arrow_rows_breaking_a_column_rule_is_found_with_panderas_reasons(name, column, value, reasons):
    rows = [_valid_row(name), _valid_row(name) | {column: value}, _valid_row(name)]
    assert rows_breaking_rules(name, arrow_frame(pyarrow.Table.from_pylist(rows, arrow_schema(name)))) == {1: reasons}


@pytest.mark.parametrize("name", list(load_tables()))
def test_arrow_rows_keeping_every_rule_pass_without_panderas_validation(name, monkeypatch):
    def refused(*args, **kwargs):
        raise AssertionError("pandera's validation ran on rows that keep every rule")

    monkeypatch.setattr(pandera.DataFrameSchema, "validate", refused)
    rows = arrow_frame(pyarrow.Table.from_pylist([_valid_row(name)] * 3, arrow_schema(name)))
    assert rows_breaking_rules(name, rows) == {}
    assert validate_table(name, rows, unique_keys=False).equals(rows)


_OTHER_DTYPES = {  # dtypes a column of each declared type may come in besides `arrow_frame`'s (those pandera coerces)
    "string": [object, "str", pd.ArrowDtype(pyarrow.large_string()), "category"],
    "float64": ["Float64", pd.ArrowDtype(pyarrow.float64()), "float32"],
    "int64": ["int64", pd.ArrowDtype(pyarrow.int64()), "Int32", "float64"],
    "bool": ["bool", pd.ArrowDtype(pyarrow.bool_()), object],
    "timestamp": ["datetime64[ns, UTC]", "datetime64[us, Europe/Paris]", pd.ArrowDtype(pyarrow.timestamp("us", "UTC"))],
    "list<string>": [object, pd.ArrowDtype(pyarrow.list_(pyarrow.large_string()))],
}


def _crafted_frames(name: str) -> list[tuple[str, pd.DataFrame]]:
    """Frames of three rows of canonical table `name` as `arrow_frame` converts them and varied: the first column of
    each declared type in each other dtype it may come in (a timestamp without its zone too), a missing value (NaN,
    in a float column, Arrow's too) in it where it takes none, a list column of other items, the columns in another
    order, one more or one less, another index."""
    rows = arrow_frame(pyarrow.Table.from_pylist([_valid_row(name)] * 3, arrow_schema(name)))
    crafted = [("as converted", rows), ("reversed", rows[rows.columns[::-1]]), ("indexed", rows.set_axis([5, 6, 7]))]
    crafted += [("one more", rows.assign(more=1.0)), ("one less", rows.drop(columns=rows.columns[-1]))]
    columns = table_spec(name).columns
    for kind in dict.fromkeys(spec.type for spec in columns.values()):
        column = next(column for column, spec in columns.items() if spec.type == kind)
        values = rows[column].astype(object) if kind == "list<string>" else rows[column]
        for dtype in _OTHER_DTYPES[kind]:
            crafted.append((f"{column} as {dtype}", rows.assign(**{column: values.astype(dtype)})))
        if kind == "timestamp":
            crafted.append((f"{column} without its zone", rows.assign(**{column: values.dt.tz_localize(None)})))
        if kind == "list<string>":
            odd = pd.Series([["x", 1], ("x",), "x"], dtype=object)
            crafted.append((f"{column} of other items", rows.assign(**{column: odd})))
        if not columns[column].nullable:
            missing = pd.Series([None, *values[1:]], dtype=values.dtype)
            crafted.append((f"{column} missing a value", rows.assign(**{column: missing})))
        if kind == "float64" and not columns[column].nullable:
            for dtype in ("float64", pd.ArrowDtype(pyarrow.float64())):
                nan = pd.Series(pyarrow.array([np.nan, 1.0, 1.0], from_pandas=False), dtype=dtype)
                crafted.append((f"{column} NaN as {dtype}", rows.assign(**{column: nan})))
    return crafted


_CRAFTED = [
    pytest.param(name, frame, id=f"{name}: {label}") for name in load_tables() for label, frame in _crafted_frames(name)
]


@pytest.mark.parametrize(("name", "frame"), _CRAFTED)
def test_a_frame_is_validated_as_panderas_validation_does(name, frame):
    """`validate_table` puts a frame of Arrow rows through pandera's checks alone (`_validated`): whatever the frame,
    it passes where pandera's validation passes, with the frame as pandera coerced it, and fails where it fails."""
    try:
        expected = pandera_schema(name, unique_keys=False).validate(frame.reset_index(drop=True), lazy=True)
    except pandera.errors.SchemaErrors:
        with pytest.raises(ValidationError, match=f"^{name}: "):
            validate_table(name, frame, unique_keys=False)
    else:
        pd.testing.assert_frame_equal(validate_table(name, frame, unique_keys=False), expected)
