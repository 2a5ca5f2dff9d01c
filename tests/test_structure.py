"""Structure JSON written from a source's arrays reads back as the structure pymatgen builds itself."""

from __future__ import annotations

import copy
import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import DummySpecies, Element, Lattice, PeriodicSite, Species, Structure
from pymatgen.io.cif import CifWriter

from matreg.errors import RecordError
from matreg.structure import (
    check_structure_dict,
    composition_text,
    lattice_volume,
    parse_structure,
    read_structure,
    sites_atoms,
    structure_dict_json,
    structure_json,
    written_atoms,
)

ROCKSALT = [[0.0, 2.82, 2.82], [2.82, 0.0, 2.82], [2.82, 2.82, 0.0]]  # NaCl primitive cell, Å
MP20 = Path(__file__).parent / "fixtures" / "ml_models" / "mp_20_biternary_val.csv.gz"


def test_fractional_and_cartesian_coordinates_give_pymatgen_structure():
    fractional = [[0, 0, 0], [0.5, 0.5, 0.5]]
    expected = Structure(Lattice(ROCKSALT), ["Na", "Cl"], fractional)
    assert read_structure(structure_json(ROCKSALT, ["Na", "Cl"], fractional)) == expected
    cartesian = expected.cart_coords.tolist()
    stored = read_structure(structure_json(ROCKSALT, ["Na", "Cl"], cartesian, cartesian=True))
    assert stored == expected and stored.frac_coords == pytest.approx(expected.frac_coords)


def test_cartesian_coordinates_in_a_skewed_left_handed_cell_read_back_as_pymatgen_places_them():
    lattice = Lattice(Lattice.from_parameters(3.1, 4.2, 5.3, 71, 83, 97).matrix[::-1])  # triclinic, left-handed
    expected = Structure(lattice, ["Na", "Cl", "Cl"], [[0.1, 0.2, 0.3], [0.9, 0.05, 0.5], [0.33, 0.66, 0.99]])
    stored = read_structure(
        structure_json(lattice.matrix.tolist(), ["Na", "Cl", "Cl"], expected.cart_coords.tolist(), cartesian=True)
    )
    assert stored.frac_coords == pytest.approx(expected.frac_coords, abs=1e-12)
    assert stored.lattice.matrix == pytest.approx(lattice.matrix)


def test_lengths_in_metres_are_stored_in_angstrom():
    metres = (np.array(ROCKSALT) * 1e-10).tolist()
    cartesian = (np.array([[1.41, 1.41, 1.41]]) * 1e-10).tolist()
    structure = read_structure(structure_json(metres, ["Na"], cartesian, cartesian=True, length_unit="m"))
    assert structure.lattice.matrix == pytest.approx(np.array(ROCKSALT))
    assert structure.frac_coords[0] == pytest.approx([0.25, 0.25, 0.25])


def test_disordered_sites_labels_and_periodicity_are_kept():
    text = structure_json(
        ROCKSALT, [{"Ga": 0.5, "In": 0.5}, "As"], [[0, 0, 0], [0.25, 0.25, 0.25]], labels=["GaIn", "As"], pbc=[1, 1, 0]
    )
    structure = read_structure(text)
    assert not structure.is_ordered and structure[0].species.as_dict() == {"Ga": 0.5, "In": 0.5}
    assert [site.label for site in structure] == ["GaIn", "As"] and structure.lattice.pbc == (True, True, False)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pbc": [1, 1]}, "structure: lattice pbc [1, 1] is not three flags (0 or 1, false or true)"),
        ({"pbc": "x"}, "structure: lattice pbc 'x' is not three flags"),  # (was read as [True])
        ({"pbc": [1, 2, 1]}, "structure: lattice pbc [1, 2, 1] is not three flags"),
        ({"labels": [{"Na": 1.0}]}, "structure: site 1's label {'Na': 1.0} is not a text"),
    ],
    ids=["two flags", "text", "flag 2", "label no text"],
)
def test_a_periodicity_of_other_than_three_flags_or_a_label_that_is_no_text_is_refused(options, message):
    """pymatgen reads three periodicity flags alone (`Structure.from_dict` failed on the document written of [1, 1])
    and labels sites by texts."""
    with pytest.raises(RecordError) as refused:
        structure_json(ROCKSALT, ["Na"], [[0, 0, 0]], **options)
    assert str(refused.value).startswith(message)


def test_sites_given_by_name_take_their_species_from_named():
    names = ["GaIn", "As", "GaIn", "As"]
    coords = [[0, 0, 0], [0.25, 0.25, 0.25], [0.5, 0.5, 0.5], [0.75, 0.75, 0.75]]
    text = structure_json(ROCKSALT, names, coords, named={"GaIn": {"Ga": 0.5, "In": 0.5}}, labels=names)
    structure = read_structure(text)
    assert [site.species.as_dict() for site in structure] == [{"Ga": 0.5, "In": 0.5}, {"As": 1.0}] * 2
    assert [site.label for site in structure] == names
    with pytest.raises(RecordError, match="'GaIn' is not a chemical element"):
        structure_json(ROCKSALT, names, coords)  # a name nothing resolves


def test_an_element_of_occupancy_0_is_left_off_its_site():
    """A share of 0 was refused ('not positive') where OPTIMADE's species reading took it as a share of a site: it
    puts nothing on the site, so the site holds the others; a site of shares of 0 only holds nothing: refused."""
    assert structure_json(ROCKSALT, [{"Ga": 1.0, "In": 0.0}], [[0, 0, 0]]) == structure_json(
        ROCKSALT, ["Ga"], [[0, 0, 0]]
    )
    assert read_structure(structure_json(ROCKSALT, [{"Ga": 0.5, "In": 0}], [[0, 0, 0]]))[0].species.as_dict() == {
        "Ga": 0.5
    }
    with pytest.raises(RecordError, match=r"^cell: site occupancies \{'In': 0.0\} put no atom on the site$"):
        structure_json(ROCKSALT, [{"In": 0.0}], [[0, 0, 0]], field="cell")


@pytest.mark.parametrize(
    ("lattice", "species", "coords", "message"),
    [
        (ROCKSALT[:2], ["Na"], [[0, 0, 0]], "not three finite vectors"),
        ([[1, 0, 0], [2, 0, 0], [0, 0, 1]], ["Na"], [[0, 0, 0]], "span no volume"),
        (ROCKSALT, ["Na", "Cl"], [[0, 0, 0]], r"2 species for coordinates of shape \(1, 3\)"),
        (ROCKSALT, ["Xx"], [[0, 0, 0]], "'Xx' is not a chemical element"),
        (ROCKSALT, [{"Ga": 0.7, "In": 0.5}], [[0, 0, 0]], "none below 0, at most 1 together"),
        (ROCKSALT, [{"Ga": 1.0, "In": -0.0001}], [[0, 0, 0]], "none below 0, at most 1 together"),
        (ROCKSALT, [{"Ga": [0.5]}], [[0, 0, 0]], "occupancies .* are not numbers"),
        (ROCKSALT, ["Na"], [["a", 0, 0]], "coordinate 'a' is not a number"),
        (ROCKSALT, ["Na"], [[10**400, 0, 0]], "not numbers"),  # (JSON reads it; a float cannot hold it)
        ([[True, 0, 0], [0, 1, 0], [0, 0, 1]], ["Na"], [[0, 0, 0]], "lattice entry True is not a number"),  # JSON true
        ([["4.0", 0, 0], [0, 1, 0], [0, 0, 1]], ["Na"], [[0, 0, 0]], "lattice entry '4.0' is not a number"),
        ([[4, 0, 0], [0, 4, None], [0, 0, 4]], ["Na"], [[0, 0, 0]], "lattice entry None is not a number"),
        (ROCKSALT, ["Na"], [[0, False, 0]], "coordinate False is not a number"),
        (ROCKSALT, [{"Ga": True}], [[0, 0, 0]], "occupancies .* are not numbers"),
        (ROCKSALT, [{"Ga": "0.5"}], [[0, 0, 0]], "occupancies .* are not numbers"),
        (ROCKSALT, [{"Ga": 10**400}], [[0, 0, 0]], r"occupancies {'Ga': 10+} are no shares of a site"),  # (no float)
        (ROCKSALT, ["Na"], [[float("nan"), 0, 0]], "coordinate nan is not a finite number"),
        (ROCKSALT, ["Na"], [[float("inf"), 0, 0]], "coordinate inf is not a finite number"),
        ([[float("inf"), 0, 0], [0, 1, 0], [0, 0, 1]], ["Na"], [[0, 0, 0]], "not three finite vectors"),
    ],
)
def test_malformed_cells_are_record_errors(lattice, species, coords, message):
    with pytest.raises(RecordError, match=f"cell: .*{message}"):
        structure_json(lattice, species, coords, field="cell")


@pytest.mark.parametrize(
    ("coords", "options"),
    [
        ([[1e308, 1e308, 0]], {}),  # 5.64e308 Å: was read back as an infinite Cartesian coordinate
        ([[1e308, 0, 0]], {"cartesian": True, "length_unit": "nm"}),  # 1e309 Å: was stored as null, read back as NaN
        ([[1e308, 0, 0]], {}),
    ],
)
def test_finite_coordinates_that_place_a_site_past_the_largest_float_are_refused(coords, options):
    """They were refused with numpy's RuntimeWarnings besides (overflow in a multiply, matmul or sum), printed."""
    assert _refused_without_warnings(structure_json, ROCKSALT, ["Na"], coords, field="cell", **options) == (
        f"cell: the coordinates {[float(value) for value in coords[0]]} place site 1 past the largest number (about "
        "1.8e308) in cells or in Å"
    )
    far = read_structure(structure_json(ROCKSALT, ["Na"], [[1e300, 1e300, 0]], cartesian=True))  # (finite: kept)
    # (the round trip through fractional coordinates rounds relative to the site's 1e300 Å: numpy's BLAS may leave
    # ~3e265 Å of a zero coordinate)
    assert far.cart_coords[0].tolist() == pytest.approx([1e300, 1e300, 0], abs=1e300 * 1e-12)


def test_a_structure_dict_placing_a_site_past_the_largest_float_is_refused_without_numpys_warnings():
    document = json.loads(Structure(Lattice.cubic(4.2), ["Fe"], [[0, 0, 0]]).to_json())
    document["sites"][0]["abc"] = [1e308, 1e308, 0]
    assert _refused_without_warnings(check_structure_dict, document) == (
        "structure: the coordinates [1e+308, 1e+308, 0.0] place site 1 past the largest number (about 1.8e308) in "
        "cells or in Å"
    )


@pytest.mark.parametrize(
    ("lattice", "options"),
    [
        ([[1e308, 0, 0], [0, 1e308, 0], [0, 0, 1]], {}),  # was 'not three finite vectors': its entries' sum overflows
        ([[1e200, 1e200, 0], [1e200, 1e200, 0], [0, 0, 1e200]], {}),  # no volume (inf - inf: NaN), and was stored
        ([[1e300, 0, 0], [0, 1, 0], [0, 0, 1]], {"length_unit": "m"}),  # 1e310 Å: was 'site 1 (at 0 0 0) past ...'
    ],
    ids=["volume past a float", "volume NaN", "lattice past a float in angstrom"],
)
def test_a_lattice_whose_volume_overflows_a_float_is_refused_as_too_long(lattice, options):
    assert _refused_without_warnings(structure_json, lattice, ["Na"], [[0, 0, 0]], field="cell", **options) == (
        "cell: the lattice vectors are too long: working out their volume passes the largest number (about 1.8e308) "
        "in Å^3"
    )


TOO_LONG = (
    "the lattice vectors are too long: working out the length of vector 1 (the sum of its entries' squares, as "
    "pymatgen reads it) passes the largest number (about 1.8e308) in Å^2"
)


@pytest.mark.parametrize(
    "lattice",
    [
        [[2e154, 0, 0], [0, 1, 0], [0, 0, 1]],  # volume 2e154 Å^3; was stored, its length read back as inf
        [[1e154, 1e154, 0], [0, 1, 0], [0, 0, 1]],  # each entry's square within a float, their sum past it
        [[1e308, 0.0, 0.0], [1e308, 1.0, 0.0], [0.0, 0.0, 1.0]],  # entries adding up past a float: stored since 4fcfdda
    ],
    ids=["entry", "sum of squares", "entries' sum"],
)
@pytest.mark.parametrize("as_array", [False, True], ids=["plain numbers", "numpy"])
def test_a_lattice_vector_whose_length_overflows_a_float_is_refused_as_too_long(lattice, as_array):
    """pymatgen works a vector's length out as the root of its entries' squares' sum, infinite past about 1.3e154 Å
    where the volume may be finite: refused as a volume past a float is, by the plain-number path and numpy's alike."""
    given = np.array(lattice, dtype=float) if as_array else lattice
    assert _refused_without_warnings(structure_json, given, ["Na"], [[0, 0, 0]], field="cell") == f"cell: {TOO_LONG}"
    document = json.loads(Structure(Lattice.cubic(4.2), ["Fe"], [[0, 0, 0]]).to_json())
    document["lattice"]["matrix"] = lattice
    assert _refused_without_warnings(check_structure_dict, document) == f"structure: {TOO_LONG}"


def test_a_lattice_vector_whose_squared_length_is_within_a_float_is_kept():
    lattice = [[1.3e154, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]  # 1.69e308 Å^2
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for given in (lattice, np.array(lattice)):
            structure = read_structure(structure_json(given, ["Na"], [[0.5, 0.5, 0.5]]))
            assert structure.lattice.abc == pytest.approx((1.3e154, 1.0, 1.0))


def test_a_site_past_the_largest_float_only_as_its_coordinates_add_up_is_refused():
    """Each product of a coordinate and a lattice entry is within a float (8e307 Å) but their sum is not (2.4e308 Å):
    no bound on the largest coordinate times the largest entry alone tells such a site from one within floats."""
    lattice = [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 0.0, 1.0]]
    assert _refused_without_warnings(structure_json, lattice, ["Na"], [[8e307, 8e307, 8e307]]) == (
        "structure: the coordinates [8e+307, 8e+307, 8e+307] place site 1 past the largest number (about 1.8e308) in "
        "cells or in Å"
    )
    assert json.loads(structure_json(lattice, ["Na"], [[5e307, 5e307, 5e307]]))["sites"][0]["abc"] == [5e307] * 3


def _refused_without_warnings(make, *args, **options) -> str:
    """The RecordError text of a cell `make` refuses, which it refuses without a RuntimeWarning (numpy's)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RecordError) as refused:
            make(*args, **options)
    assert [str(warning.message) for warning in caught if issubclass(warning.category, RuntimeWarning)] == []
    return str(refused.value)


def test_structure_dicts_as_pymatgen_writes_them_pass_the_cell_checks_and_a_dummy_species_does_not():
    """Oxidation states, a mixed-valence site (Fe2+ and Fe3+: one element twice), a vacancy, a magnetic moment:
    the Materials Project's structures are such dicts (`Structure.as_dict()`)."""
    structure = Structure(
        Lattice.cubic(4.2),
        [Species("Fe", 2), {Species("Fe", 2): 0.5, Species("Fe", 3): 0.5}, {Species("O", -2): 0.75}],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]],
        site_properties={"magmom": [4.0, -4.5, 0.0]},
    )
    check_structure_dict(json.loads(structure.to_json()))
    structure.replace(2, DummySpecies("X"))
    with pytest.raises(RecordError, match="^structure: 'X' is not a chemical element$"):
        check_structure_dict(json.loads(structure.to_json()))


def test_a_structure_dicts_xyz_and_properties_as_pymatgen_writes_them_pass_far_sites_and_vector_moments_too():
    """pymatgen writes each site's xyz from its abc (numpy's sum, rounded otherwise than the check's): a site 1e12
    cells out, a lattice of 1e150 Å, a moment's vector, a property of lists and objects, and no xyz at all pass."""
    lattice = Lattice([[3.1, 0.2, 0.0], [-1.4, 2.7, 0.1], [0.3, -0.2, 5.9]])
    far = Structure(
        lattice,
        ["Fe", "O"],
        [[1e12, -1e12, 0.3], [0.1, 0.2, 0.3]],
        site_properties={"magmom": [[0, 0, 2.2], [0, 0, 0]]},
    )
    check_structure_dict(json.loads(far.to_json()))
    huge = Structure(
        Lattice([[1e150, 0, 0], [0, 2, 0], [1, 0, 3]]),
        ["Fe"],
        [[0.3, 0.6, 0.9]],
        site_properties={"tags": [{"a": [1, None, "b"]}]},
    )
    check_structure_dict(json.loads(huge.to_json()))
    document = json.loads(far.to_json())
    for site in document["sites"]:
        del site["xyz"]  # (pymatgen works it out again)
    check_structure_dict(document)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda site: site.update(xyz=[float("nan"), 0.0, 0.0]), "site 1's xyz [nan, 0.0, 0.0] is not where its abc"),
        (lambda site: site.update(xyz=[float("inf"), 0.0, 0.0]), "site 1's xyz [inf, 0.0, 0.0] is not where its abc"),
        (lambda site: site.update(xyz=[10**400, 0, 0]), "site 1's xyz [1000"),  # (JSON reads it whole: no float)
        (lambda site: site.update(xyz=[0.0, 0.0]), "site 1's xyz [0.0, 0.0] is not three coordinates"),
        (lambda site: site.update(xyz=None), "site 1's xyz None is not three coordinates"),
        (lambda site: site.update(xyz=[True, 0, 0]), "xyz entry True is not a number"),
        (
            lambda site: site.update(properties=[1.0]),
            "site 1's properties [1.0] are not an object of properties by name",
        ),
        (
            lambda site: site.update(properties={"magmom": "up"}),
            "'magmom' 'up' is not a magnetic moment (a number, three, or null)",
        ),
        (lambda site: site.update(properties={"magmom": True}), "'magmom' True is not a magnetic moment"),
        (lambda site: site.update(properties={"magmom": [0, 1]}), "'magmom' [0, 1] is not a magnetic moment"),
        (lambda site: site.update(properties={"magmom": float("nan")}), "'magmom' nan is not a finite number"),
        (lambda site: site.update(properties={"forces": [[0.0, float("inf"), 0.0]]}), "'forces' inf is not a finite"),
        (lambda site: site.update(properties={"x": {"y": {"@module": "datetime", "@class": "datetime"}}}), "monty's"),
    ],
    ids=[
        "xyz nan",
        "xyz inf",
        "xyz no float",
        "xyz short",
        "xyz null",
        "xyz true",
        "properties list",
        "magmom text",
        "magmom true",
        "magmom two",
        "magmom nan",
        "inf in a list",
        "monty object within",
    ],
)
def test_a_structure_dicts_site_whose_xyz_or_properties_would_not_read_back_as_received_is_refused(edit, message):
    document = json.loads(Structure(Lattice.cubic(4.2), ["Fe"], [[0.5, 0.5, 0.5]]).to_json())
    edit(document["sites"][0])
    with pytest.raises(RecordError) as refused:
        check_structure_dict(document)
    assert str(refused.value).startswith("structure: ") and message in str(refused.value)


def test_a_structure_dicts_own_properties_are_held_to_the_rule_of_its_sites():
    document = json.loads(Structure(Lattice.cubic(4.2), ["Fe"], [[0.5, 0.5, 0.5]]).to_json())
    document["properties"] = {"source": {"@module": "os", "@callable": "getcwd"}}
    with pytest.raises(RecordError, match="^structure: properties: 'source' .* is an object in monty's encoding"):
        check_structure_dict(document)
    document["properties"] = "mp"
    with pytest.raises(RecordError, match="^structure: properties 'mp' are not an object of properties by name$"):
        check_structure_dict(document)


def test_a_structure_dicts_site_without_a_moment_beside_sites_with_one_passes_as_pymatgen_writes_it():
    """pymatgen's Structure.from_sites gives a site lacking a property its other sites have that property as null: a
    magmom of null reads back as it is."""
    lattice = Lattice.cubic(4.2)
    iron = PeriodicSite("Fe", [0, 0, 0], lattice, properties={"magmom": 2.2})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ('Not all sites have property magmom. Missing values are set to None.')
        document = json.loads(Structure.from_sites([iron, PeriodicSite("O", [0.5, 0.5, 0.5], lattice)]).to_json())
        check_structure_dict(document)
        assert Structure.from_dict(document).site_properties["magmom"] == [2.2, None]
    assert [site["properties"] for site in document["sites"]] == [{"magmom": 2.2}, {"magmom": None}]


def _nested(depth: int) -> list:
    """1.0 in `depth` lists, one in another."""
    value: list | float = 1.0
    for _ in range(depth):
        value = [value]
    return value


DEEP = 1_010  # levels of lists: a page orjson reads (1,024 levels at most) can hold one past Python's recursion limit


@pytest.mark.parametrize(
    "edit",
    [
        lambda document: document["sites"][0].update(properties={"tags": _nested(DEEP)}),
        lambda document: document["sites"][0].update(properties={"magmom": _nested(DEEP)}),
        lambda document: document["sites"][0].update(properties=_nested(DEEP)),
        lambda document: document.update(properties={"tags": _nested(DEEP)}),
        lambda document: document["sites"][0].update(xyz=_nested(DEEP)),
        lambda document: document["sites"][0].update(xyz=[_nested(DEEP), 0.0, 0.0]),
        lambda document: document["sites"][0].update(abc=[_nested(DEEP), 0.0, 0.0]),
        lambda document: document["lattice"]["matrix"][0].__setitem__(0, _nested(DEEP)),
    ],
    ids=["property", "magmom", "properties", "structure's property", "xyz", "xyz entry", "abc entry", "lattice entry"],
)
def test_a_structure_dict_nesting_a_value_past_pythons_recursion_limit_is_refused(edit):
    """A RecursionError (of the check or of a value's repr in its reason) would escape the record's mapping and fail
    its run: the record is refused instead."""
    document = json.loads(Structure(Lattice.cubic(4.2), ["Fe"], [[0.5, 0.5, 0.5]]).to_json())
    edit(document)
    with pytest.raises(RecordError) as refused:
        check_structure_dict(document)
    assert str(refused.value) == "structure: nested too deeply to be read (past Python's recursion limit)"


def _rocksalt_document() -> dict:
    """NaCl as pymatgen writes it (`Structure.to_json()`), lattice lengths, angles, volume and xyz included."""
    return json.loads(Structure(Lattice(ROCKSALT), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to_json())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(charge="0"), "charge '0' is not a finite number"),  # (from_dict: TypeError)
        (lambda d: d.update(charge=float("nan")), "charge nan is not a finite number"),  # (stored as null)
        (lambda d: d.update(charge=1), "charge 1 is not the sum of its sites' oxidation states, 0.0: pymatgen warns"),
        (lambda d: d["lattice"].update(pbc=[1, 2, 1]), "lattice pbc [1, 2, 1] is not three flags (0 or 1, false or"),
        (lambda d: d["lattice"].update(pbc=None), "lattice pbc None is not three flags"),
        (lambda d: d["lattice"].update(a=4.0), "lattice a 4.0 is not its matrix's, 3.988082245892128 Å (pymatgen"),
        (lambda d: d["lattice"].update(alpha=-60.0), "lattice alpha -60.0 is not its matrix's, 60.00000000000001 deg"),
        (lambda d: d["lattice"].update(volume=None), "lattice volume None is not a number"),
        (lambda d: d["sites"][0].update(label=1), "site 1's label 1 is not a text"),
        (lambda d: d["sites"][0]["species"][0].update(oxidation_state="+1"), "site 1's Na oxidation_state '+1' is not"),
        (
            lambda d: d["sites"][0]["species"][0].update(oxidation_state=1),
            "charge 0.0 is not the sum of its sites' oxi",
        ),
        (
            lambda d: d["sites"][0].update(species=[{"element": "Na", "occu": 0.5}, {"element": "Na", "occu": 0.5}]),
            "site 1 holds one species twice",  # (pymatgen keeps the last: a site half empty)
        ),
        (lambda d: d["sites"][0].update(properties=False), "site 1's properties False are not an object"),
        (lambda d: d["sites"][1].update(properties={"magmom": 1.0}), "site 1 has no 'magmom', which site 2's prop"),
        (
            lambda d: (d["sites"][0].update(properties={"tag": None}), d["sites"][1].pop("properties")),
            "site 2 has no 'tag', which site 1's properties have: pymatgen would read it back as null, warning",
        ),
        (lambda d: d["sites"][0].update(properties={"n": 2**64}), "site 1's properties: 'n' 18446744073709551616 is"),
        (lambda d: d.update({"@class": "Molecule"}), "@class 'Molecule' is not 'Structure': monty's decoder would"),
    ],
    ids=[
        "charge text",
        "charge nan",
        "charge unbalanced",
        "pbc flag 2",
        "pbc null",
        "a",
        "alpha negative",
        "volume null",
        "label",
        "oxidation state text",
        "oxidation states unbalanced",
        "species twice",
        "properties false",
        "property of one site",
        "property null beside none",
        "integer past 64 bits",
        "class",
    ],
)
def test_a_structure_dict_pymatgen_would_fail_on_warn_of_or_read_otherwise_is_refused(edit, message):
    """What pymatgen reads of a document beside its cell: a charge (read through the oxidation states' sum, warning
    where the two differ), the periodicity, site labels, species, properties (a property one site lacks is read as
    null and warned of); the lattice's lengths, angles and volume it ignores, which a reader of the document takes
    for the cell's."""
    document = _rocksalt_document()
    edit(document)
    with pytest.raises(RecordError) as refused:
        check_structure_dict(document)
    assert str(refused.value).startswith(f"structure: {message}")


def test_a_structure_dicts_charge_periodicity_and_labels_as_pymatgen_writes_them_pass():
    """A charged cell of ions, a slab's periodicity (booleans, or the 0 and 1 pymatgen reads as the booleans they
    equal), sites without labels or lattice fields: as received."""
    charged = Structure(Lattice(ROCKSALT), [Species("Na", 1), Species("O", -2)], [[0, 0, 0], [0.5, 0.5, 0.5]])
    document = json.loads(charged.to_json())
    assert document["charge"] == -1
    check_structure_dict(document)
    slab = _rocksalt_document()
    slab["lattice"]["pbc"] = [True, True, False]
    for key in ("a", "b", "c", "alpha", "beta", "gamma", "volume"):
        del slab["lattice"][key]
    for site in slab["sites"]:
        site["label"] = None
    check_structure_dict(slab)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_structure(json.dumps(slab)).lattice.pbc == (True, True, False)
        slab["lattice"]["pbc"] = [1, 1, 0]
        check_structure_dict(slab)
        assert read_structure(json.dumps(slab)).as_dict()["lattice"]["pbc"] == (True, True, False)


def test_a_structure_dicts_null_property_beside_sites_with_a_value_passes_and_reads_back_as_it_is():
    """A property held as null on a site (pymatgen's writing of a site without it beside sites with it) is a value:
    pymatgen reads it back as it is (warning, as it does of its own documents), unlike a property a site lacks."""
    document = _rocksalt_document()
    document["sites"][0]["properties"], document["sites"][1]["properties"] = {"tag": "a"}, {"tag": None}
    check_structure_dict(document)
    with pytest.warns(UserWarning, match="Not all sites have property tag"):
        read_back = read_structure(json.dumps(document)).as_dict()
    assert [site["properties"] for site in read_back["sites"]] == [{"tag": "a"}, {"tag": None}]


def test_a_site_of_an_element_and_its_species_without_oxidation_state_as_pymatgen_writes_it_passes():
    """pymatgen keys a site's species by the Species it reads of each entry: the element Fe and a Species Fe of no
    oxidation state are two (the site reads back whole), not one species twice, which the document was refused as."""
    site = {Element("Fe"): 0.5, Species("Fe", None): 0.5}
    document = json.loads(Structure(Lattice(ROCKSALT), [site], [[0, 0, 0]]).to_json())
    check_structure_dict(document)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_structure(json.dumps(document))[0].species.num_atoms == 1.0


def test_species_entries_pymatgen_reads_as_one_species_are_refused_as_one_species_twice():
    """pymatgen reads an entry without an oxidation state as its element, a spin beside none unread: Fe and Fe of
    spin 2 on a site read back as the last alone, a site half empty, which was stored."""
    document = _rocksalt_document()
    document["sites"][0]["species"] = [{"element": "Fe", "occu": 0.5}, {"element": "Fe", "spin": 2, "occu": 0.5}]
    assert read_structure(json.dumps(document))[0].species.num_atoms == 0.5  # (silently)
    with pytest.raises(RecordError, match=r"^structure: site 1 holds one species twice: \["):
        check_structure_dict(document)


@pytest.mark.parametrize("occupancy", [10**400, -(10**400)], ids=["past", "below"])
def test_an_occupancy_no_float_holds_in_a_structure_dict_is_no_share_of_a_site(occupancy):
    """A JSON integer past the largest float (Python reads it whole) was an OverflowError: a record 'not in the form
    the mapping reads (or a matreg bug)'."""
    document = json.loads(Structure(Lattice.cubic(4.2), ["Fe"], [[0, 0, 0]]).to_json())
    document["sites"][0]["species"][0]["occu"] = occupancy
    with pytest.raises(RecordError) as refused:
        check_structure_dict(document)
    assert str(refused.value) == (
        f"structure: site occupancies {{'Fe': {occupancy}}} are no shares of a site (none below 0, at most 1 together)"
    )


def test_a_cell_of_numpy_numbers_is_read_as_one_of_python_numbers():
    numpy_cell = structure_json(np.array(ROCKSALT), ["Na"], np.array([[0, 0, 0]], dtype=np.int64))
    assert numpy_cell == structure_json(ROCKSALT, ["Na"], [[0.0, 0.0, 0.0]])


_HEAD = '{"@module":"pymatgen.core.structure","@class":"Structure","charge":0,"lattice":{"matrix":'


@pytest.mark.parametrize(
    ("cell", "options", "document"),
    [
        (
            ([[4, 0, 0], [0, 4, 0], [0, 0, 6]], [{"Ga": 0.5, "In": 0.5}, "As"], ([0, 0, 0], [0.25, -0.0, 0.5])),
            {"labels": ["GaIn", "As"], "pbc": [1, 1, 0]},
            _HEAD + '[[4.0,0.0,0.0],[0.0,4.0,0.0],[0.0,0.0,6.0]],"pbc":[true,true,false]},"properties":{},"sites":['
            '{"species":[{"element":"Ga","occu":0.5},{"element":"In","occu":0.5}],"abc":[0.0,0.0,0.0],"label":"GaIn"},'
            '{"species":[{"element":"As","occu":1.0}],"abc":[0.25,-0.0,0.5],"label":"As"}]}',
        ),
        (
            ([[2.0, 0.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 4.0]], ["Zn", "O"], [[1.5, 1.0, 1.0], [0, 0, 0]]),
            {"cartesian": True},
            _HEAD + '[[2.0,0.0,0.0],[1.0,2.0,0.0],[0.0,0.0,4.0]],"pbc":[true,true,true]},"properties":{},"sites":['
            '{"species":[{"element":"Zn","occu":1.0}],"abc":[0.5,0.5,0.25]},'
            '{"species":[{"element":"O","occu":1.0}],"abc":[0.0,0.0,0.0]}]}',
        ),
        (
            ([[0.4, 0, 0], [0, 0.4, 0], [0, 0, 0.4]], ["Na", "Cl"], [[0.28, 0.07, 0.3], [0.2, 0.2, 0.2]]),
            {"cartesian": True, "length_unit": "nm", "named": {"Na": "Na", "Cl": {"Cl": 1.0}}},
            _HEAD + '[[4.0,0.0,0.0],[0.0,4.0,0.0],[0.0,0.0,4.0]],"pbc":[true,true,true]},"properties":{},"sites":['
            '{"species":[{"element":"Na","occu":1.0}],"abc":[0.7000000000000001,0.17500000000000002,0.75]},'
            '{"species":[{"element":"Cl","occu":1.0}],"abc":[0.5,0.5,0.5]}]}',
        ),
        (
            ([[0.28, 0, 0], [0, 0.28, 0], [0.14, 0, 0.56]], ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
            {"length_unit": "nm"},
            _HEAD + "[[2.8000000000000003,0.0,0.0],[0.0,2.8000000000000003,0.0],[1.4000000000000001,0.0,"
            '5.6000000000000005]],"pbc":[true,true,true]},"properties":{},"sites":['
            '{"species":[{"element":"Si","occu":1.0}],"abc":[0.0,0.0,0.0]},'
            '{"species":[{"element":"Si","occu":1.0}],"abc":[0.25,0.25,0.25]}]}',
        ),
    ],
    ids=["fractional, integers, labels, a disordered site", "cartesian", "cartesian nm, named", "fractional nm"],
)
def test_structure_documents_are_written_to_the_byte_as_before_from_lists_and_from_numpy_arrays(
    cell, options, document
):
    """A re-fetch compares stored documents to tell changed records: the texts matreg wrote before its cells of plain
    numbers were read without numpy (numpy arrays still are read in numpy), an integer written as a float."""
    lattice, species, coords = cell
    assert structure_json(lattice, species, coords, **options) == document
    assert structure_json(np.array(lattice), species, np.array(coords), **options) == document


@pytest.mark.parametrize(("length_unit", "factor"), [("angstrom", 1.0), ("nm", 0.1), ("m", 1e-10)])
def test_cartesian_coordinates_of_a_triclinic_crystal_are_made_fractional_the_same_from_lists_and_from_arrays(
    length_unit, factor
):
    """Lists of plain numbers are read without numpy but for the product that makes their Cartesian coordinates
    fractional: a sum of products in Python rounds otherwise than BLAS (fused multiply-adds), which would change the
    stored document of nearly every such crystal (numpy arrays are read in numpy as before)."""
    crystal = _mp20_structure("mp-752483")  # LiBiF5, triclinic
    lattice, coords = (crystal.lattice.matrix * factor).tolist(), (crystal.cart_coords * factor).tolist()
    species = [site.specie.symbol for site in crystal]
    from_lists = structure_json(lattice, species, coords, cartesian=True, length_unit=length_unit)
    assert from_lists == structure_json(
        np.array(lattice), species, np.array(coords), cartesian=True, length_unit=length_unit
    )
    assert read_structure(from_lists).frac_coords == pytest.approx(crystal.frac_coords, abs=1e-9)


def _atoms_in_text(text: str) -> dict:
    """The atoms of a structure document by element name as a reader of its text counts them (validation's)."""
    return sites_atoms(site["species"] for site in json.loads(text)["sites"])


@pytest.mark.parametrize(
    ("species", "options"),
    [
        (["Zn", "O", "Zn", "O"], {}),
        (["O", "Zn", "Zn", "O"], {}),  # (the elements in the order the sites name them)
        (["Fe1", "O", "Fe2", "O"], {"named": {"Fe1": "Fe", "Fe2": {"Fe": 1.0}}, "labels": ["Fe1", "O", "Fe2", "O"]}),
        (["GaIn", "As", "GaIn", "As"], {"named": {"GaIn": {"Ga": 0.1, "In": 0.7}}}),  # occupancies summed in order
        ([{"Fe": 0.1}, {"Fe": 0.2}, {"Fe": 0.3}, "O"], {}),  # per site: 0.1 + 0.2 + 0.3 is not 0.6
        ([{"Ga": 1.0, "In": 0.0}, "As", "As", "D"], {}),  # an element of share 0 left off; deuterium by its name
        (["Zn", "O", "Zn", {"O": 1.0, "F": 1e-7}], {}),  # a whole atom and another species on one site
    ],
)
def test_a_written_document_hands_over_the_atoms_its_text_holds(species, options):
    """What validation reads instead of the document's text (`written_atoms`) is what its text holds, to the last
    bit of each sum, in the order of the sites."""
    coords = [[0, 0, 0], [0.25, 0.25, 0.25], [0.5, 0.5, 0.5], [0.75, 0.75, 0.75]]
    text = structure_json(ROCKSALT, species, coords, **options)
    assert list(written_atoms(text).items()) == list(_atoms_in_text(text).items())


@pytest.mark.parametrize(
    "species",
    [
        [{"element": "Zn", "occu": 1}],  # an integer occupancy, as a source may send it
        [{"element": "Zn", "occu": 0.5, "oxidation_state": 2}, {"element": "Cd", "occu": 0.5}],
        [{"element": "Zn", "occu": 1.0}, {"element": "Cd", "occu": 0}],  # a share of 0 kept in the source's text
    ],
)
def test_a_structure_dict_written_whole_hands_over_the_atoms_its_text_holds(species):
    document = Structure(Lattice.cubic(4.0), ["Zn", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).as_dict()
    document["sites"][0]["species"] = species
    document["charge"] = sum(entry.get("oxidation_state", 0) * entry["occu"] for entry in species)  # (as pymatgen's)
    text = structure_dict_json(document)
    assert text == json.dumps(document, separators=(",", ":"))
    assert list(written_atoms(text).items()) == list(_atoms_in_text(text).items())


def test_only_the_very_text_written_hands_over_atoms():
    """Any other text is read from its text: one made from a written document (a connector renaming an element after
    writing it, the same text read back from the store or a pickle), one written before the latest documents."""
    text = structure_json(ROCKSALT, ["Zn", "O"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    assert written_atoms(text) == {"Zn": 1.0, "O": 1.0}
    assert written_atoms(str(text)) == written_atoms(text[:]) == written_atoms(copy.deepcopy(text))  # (itself)
    for other in (
        text.replace('"Zn"', '"Cd"'),
        json.loads(json.dumps(text)),
        pickle.loads(pickle.dumps(text)),
        text.encode().decode(),
        Structure.from_dict(json.loads(text)).to_json(),
    ):
        assert written_atoms(other) is None
    later = [structure_json(ROCKSALT, ["Cd", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]]) for _ in range(300)]
    assert written_atoms(text) is None and written_atoms(later[-1]) == {"Cd": 1.0, "S": 1.0}


def test_lattice_volume_is_the_cells_volume_whatever_the_handedness():
    triclinic = Lattice.from_parameters(3.1, 4.2, 5.3, 71, 83, 97)
    assert lattice_volume(triclinic.matrix.tolist()) == pytest.approx(triclinic.volume)
    assert lattice_volume(ROCKSALT[::-1]) == pytest.approx(Lattice(ROCKSALT).volume)  # left-handed: still positive


def test_composition_counts_sites_in_order_of_appearance():
    assert composition_text(["Al", "O", "Al", "O", "O"]) == "Al2 O3"


def _mp20_structure(material_id: str) -> Structure:
    """A crystal of the MP-20 fixture, read from its CIF."""
    table = pd.read_csv(MP20).set_index("material_id")
    return Structure.from_str(table.loc[material_id, "cif"], fmt="cif")


def _poscar(structure: Structure, scale: str, coordinates: str) -> str:
    """The structure as a POSCAR whose lattice vectors are in units of its length a, scaled by a or by the cell's
    volume (a negative scale, as VASP reads it), its sites in Direct or Cartesian coordinates."""
    a = structure.lattice.a
    lines = ["LiBiF5", repr(float(a if scale == "length" else -structure.volume))]
    lines += [" ".join(map(repr, vector)) for vector in (structure.lattice.matrix / a).tolist()]
    symbols = [site.specie.symbol for site in structure]
    lines += [" ".join(dict.fromkeys(symbols)), " ".join(str(symbols.count(s)) for s in dict.fromkeys(symbols))]
    positions = structure.cart_coords / a if coordinates == "Cartesian" else structure.frac_coords
    return "\n".join(lines + [coordinates] + [" ".join(map(repr, position)) for position in positions.tolist()]) + "\n"


@pytest.mark.parametrize("coordinates", ["Direct", "Cartesian"])
@pytest.mark.parametrize("scale", ["length", "volume"])
def test_a_poscar_scaled_by_its_cells_volume_is_its_crystal_in_direct_and_cartesian_coordinates(
    scale, coordinates, tmp_path
):
    # pymatgen scales the lattice by the volume's factor but multiplies Cartesian coordinates by the negative number.
    crystal = _mp20_structure("mp-752483").get_sorted_structure()  # LiBiF5, triclinic (99.6, 99.6, 131.8 degrees)
    text = _poscar(crystal, scale, coordinates)
    (tmp_path / "CONTCAR").write_text(text, encoding="utf-8")
    for parsed in (parse_structure(text), parse_structure("CONTCAR", base=tmp_path)):
        assert parsed.lattice.matrix == pytest.approx(crystal.lattice.matrix, abs=1e-6)
        assert parsed.cart_coords == pytest.approx(crystal.cart_coords, abs=1e-6)
        assert [site.specie.symbol for site in parsed] == [site.specie.symbol for site in crystal]
        assert StructureMatcher().fit(parsed, crystal)


def test_a_poscar_scaled_per_cartesian_axis_is_refused_naming_the_three_factors():
    poscar = _poscar(_mp20_structure("mp-752483"), "length", "Direct").split("\n")
    poscar[1] = "5.1 5.1 5.2"  # VASP: factors of the x, y and z components, which pymatgen does not read
    with pytest.raises(RecordError, match=r"^POSCAR scale line '5.1 5.1 5.2' gives a factor per Cartesian axis"):
        parse_structure("\n".join(poscar))


def test_a_poscar_whose_comment_line_is_blank_reads_as_text_as_from_its_file(tmp_path):
    # the cell's text lost its blank first line: its first lattice vector was read as a scale per Cartesian axis
    text = "\n1.0\n3.25 0 0\n-1.625 2.8146 0\n0 0 5.2\nZn O\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n"
    (tmp_path / "POSCAR").write_text(text, encoding="utf-8")
    from_file = parse_structure("POSCAR", base=tmp_path)
    assert parse_structure(text) == parse_structure("  " + text) == from_file
    assert from_file.composition.reduced_formula == "ZnO" and from_file.lattice.abc[0] == pytest.approx(3.25)


NACL_POSCAR = "NaCl\n5.64\n1 0 0\n0 1 0\n0 0 1\nNa Cl\n{counts}\nDirect\n0 0 0\n0.5 0.5 0.5\n"


def _cif_broken(how: str) -> str:
    """A crystal's CIF cut short after its symmetry loop's first name (a cell Excel cut at 32,767 characters, a paste
    cut off), or with a symmetry operation that divides by zero."""
    cif = str(CifWriter(_mp20_structure("mp-752483")))
    if how == "cut short":
        return cif[: cif.index("_symmetry_equiv_pos_as_xyz")]
    return cif.replace("'x, y, z'", "'x, 1/0, z'")


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("x.cif", _cif_broken("cut short"), "integer modulo by zero"),
        ("x.cif", _cif_broken("1/0"), "float division by zero"),
        ("POSCAR", NACL_POSCAR.format(counts="1 -1"), r"len\(species\)=1 != len\(coords\)=0"),  # a StructureError
        ("POSCAR", NACL_POSCAR.format(counts="-1 3"), r"len\(species\)=3 != len\(coords\)=2"),
    ],
)
def test_a_structure_pymatgen_fails_on_with_arithmetic_or_its_structure_error_is_a_record_error(
    name, text, reason, tmp_path
):
    (tmp_path / name).write_text(text, encoding="utf-8")
    for given in (text, name):
        with pytest.raises(RecordError, match=f"^not a crystal structure .*: {reason}"):
            parse_structure(given, base=tmp_path)
