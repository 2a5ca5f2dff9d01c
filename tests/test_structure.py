"""Structure JSON written from a source's arrays reads back as the structure pymatgen builds itself."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from matreg.errors import RecordError
from matreg.structure import composition_text, lattice_volume, read_structure, structure_json

ROCKSALT = [[0.0, 2.82, 2.82], [2.82, 0.0, 2.82], [2.82, 2.82, 0.0]]  # NaCl primitive cell, Å


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


def test_sites_given_by_name_take_their_species_from_named():
    names = ["GaIn", "As", "GaIn", "As"]
    coords = [[0, 0, 0], [0.25, 0.25, 0.25], [0.5, 0.5, 0.5], [0.75, 0.75, 0.75]]
    text = structure_json(ROCKSALT, names, coords, named={"GaIn": {"Ga": 0.5, "In": 0.5}}, labels=names)
    structure = read_structure(text)
    assert [site.species.as_dict() for site in structure] == [{"Ga": 0.5, "In": 0.5}, {"As": 1.0}] * 2
    assert [site.label for site in structure] == names
    with pytest.raises(RecordError, match="'GaIn' is not a chemical element"):
        structure_json(ROCKSALT, names, coords)  # a name nothing resolves


@pytest.mark.parametrize(
    ("lattice", "species", "coords", "message"),
    [
        (ROCKSALT[:2], ["Na"], [[0, 0, 0]], "not three finite vectors"),
        ([[1, 0, 0], [2, 0, 0], [0, 0, 1]], ["Na"], [[0, 0, 0]], "span no volume"),
        (ROCKSALT, ["Na", "Cl"], [[0, 0, 0]], r"2 species for coordinates of shape \(1, 3\)"),
        (ROCKSALT, ["Xx"], [[0, 0, 0]], "'Xx' is not a chemical element"),
        (ROCKSALT, [{"Ga": 0.7, "In": 0.5}], [[0, 0, 0]], "sum of at most 1"),
        (ROCKSALT, [{"Ga": [0.5]}], [[0, 0, 0]], "occupancies .* are not numbers"),
        (ROCKSALT, ["Na"], [["a", 0, 0]], "not numbers"),
        (ROCKSALT, ["Na"], [[float("nan"), 0, 0]], r"coordinates of shape \(1, 3\)"),
        (ROCKSALT, ["Na"], [[float("inf"), 0, 0]], r"coordinates of shape \(1, 3\)"),
        ([[float("inf"), 0, 0], [0, 1, 0], [0, 0, 1]], ["Na"], [[0, 0, 0]], "not three finite vectors"),
    ],
)
def test_malformed_cells_are_record_errors(lattice, species, coords, message):
    with pytest.raises(RecordError, match=f"cell: .*{message}"):
        structure_json(lattice, species, coords, field="cell")


def test_lattice_volume_is_the_cells_volume_whatever_the_handedness():
    triclinic = Lattice.from_parameters(3.1, 4.2, 5.3, 71, 83, 97)
    assert lattice_volume(triclinic.matrix.tolist()) == pytest.approx(triclinic.volume)
    assert lattice_volume(ROCKSALT[::-1]) == pytest.approx(Lattice(ROCKSALT).volume)  # left-handed: still positive


def test_composition_counts_sites_in_order_of_appearance():
    assert composition_text(["Al", "O", "Al", "O", "O"]) == "Al2 O3"
