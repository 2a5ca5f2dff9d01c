"""Crystal structures as the store keeps them: pymatgen Structure JSON, written straight from a source's arrays.

Every connector that receives a cell (lattice vectors, site species, coordinates) turns it into the document of
`Structure.as_dict()` here, checked but without building a pymatgen Structure: that costs about ten times more per
record (a Site object and a lattice dict per site), which matters at tens of thousands of records a second.
`Structure.from_dict` reads the document back (tested against structures pymatgen builds itself), and
`read_structure` is how the rest of matreg gets a Structure out of the store.
"""

from __future__ import annotations

import math
import re
import sys
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from itertools import chain, count
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from monty.io import zopen
from pymatgen.core import Element, Structure
from pymatgen.core import Species as PymatgenSpecies
from pymatgen.core.structure import StructureError
from pymatgen.symmetry.groups import SpaceGroup

from matreg.errors import RecordError
from matreg.units import scale_factor

Species = str | dict[str, float]  # an element symbol, or element -> occupancy for a disordered site
MIN_VOLUME = 1e-6  # Å^3: lattice vectors spanning less are degenerate
XYZ_TOLERANCE = 1e-9  # of a site's Cartesian coordinates as sent beside its fractional ones, relative (and in Å)
_NO_SPECIES = "Elements in POSCAR cannot be determined"  # pymatgen's warning as it names a POSCAR's species H, He, ...
_CIF_BLOCK = re.compile(r"^\s*data_", re.MULTILINE)  # where pymatgen's CifFile splits a CIF into its data blocks
# What pymatgen raises for a text that is no structure: besides ValueError and KeyError (which its CIF parser catches
# per data block), a ZeroDivisionError for a CIF loop cut short or a symmetry operation 'x, 1/0, z', a StructureError
# for a POSCAR whose counts disagree with its coordinate lines.
_NOT_READ = (ValueError, KeyError, ArithmeticError, StructureError)
_NUMBERS = (int, float, np.integer, np.floating)  # a bool is an int, but a JSON true is no 1.0: refused apart
_PLAIN_NUMBERS = frozenset((int, float))  # the types JSON numbers are read as: checked first
_FLOATS = frozenset((float,))  # a cell of floats only is read as it is given
_ROWS = frozenset((list, tuple))  # the containers of a cell read without numpy (`_plain_cell`)
_FAR = sys.float_info.max / 2  # a bound on coordinates' size below which no rounding takes one past a float
_ELEMENT_OCCU = itemgetter("element", "occu")  # a species entry of a pymatgen site -> (element, occupancy)
_LABELS = frozenset((str, type(None)))  # a site's label: a text, or none (pymatgen names the site by its species)
_ENCODED_AS = (("@module", "pymatgen.core.structure"), ("@class", "Structure"))  # what monty's decoder builds of it
_LATTICE_PARAMETERS = ("a", "b", "c", "alpha", "beta", "gamma", "volume")  # as pymatgen writes them beside the matrix
_ANGLES = frozenset(("alpha", "beta", "gamma"))  # (in degrees)
CHARGE_TOLERANCE = 1e-8  # pymatgen's: a structure's charge further from its oxidation states' sum warns as it is read
_JSON_INTEGERS = (-(2**63), 2**64 - 1)  # the integers orjson, which writes the store's JSON, writes
PERIODICITY_FLAGS = "(0 or 1, false or true): whether each lattice vector is periodic"  # what a periodicity is
_SHARE = itemgetter(1)


def structure_json(
    lattice: Any,
    species: Sequence[Species],
    coords: Any,
    *,
    cartesian: bool = False,
    named: Mapping[str, Species] | None = None,
    labels: Sequence[str] | None = None,
    pbc: Sequence[bool | int] | None = None,
    length_unit: str = "angstrom",
    field: str = "structure",
) -> str:
    """pymatgen Structure JSON of a cell; RecordError (naming `field`) if it is not one.

    `lattice`: rows are the lattice vectors; `species`: per site an element symbol, {element: occupancy}, or a name
    that `named` gives the symbol or occupancies of; `coords`: fractional, or Cartesian with `cartesian=True`;
    lengths in `length_unit`, stored in Å; `labels`: per-site names (texts) kept by pymatgen; `pbc`: whether each
    lattice vector is periodic, three flags (0 or 1, false or true; none: all three are).
    """
    rows, fractional = _cell(lattice, coords, len(species), cartesian, length_unit, field)
    site_species = _sites_species(species, named or {}, field)
    periodic = [True, True, True] if pbc is None else _periodicity(pbc, field)
    if labels is None:
        sites = [{"species": entry, "abc": abc} for entry, abc in zip(site_species, fractional, strict=True)]
    else:
        _check_labels(labels, field)
        sites = [
            {"species": entry, "abc": abc, "label": label}
            for entry, abc, label in zip(site_species, fractional, labels, strict=True)
        ]
    document = {
        "@module": "pymatgen.core.structure",
        "@class": "Structure",
        "charge": 0,
        "lattice": {"matrix": rows, "pbc": periodic},
        "properties": {},
        "sites": sites,
    }
    return _written_text(document)


def structure_dict_json(document: Any, field: str = "structure") -> str:
    """The JSON text of a pymatgen Structure dict that a source sends whole, once `check_structure_dict` passes it
    (RecordError naming `field` otherwise)."""
    check_structure_dict(document, field)
    return _written_text(document)


_WRITTEN_KEPT = 32  # the latest documents written that `written_atoms` knows (a fetch checks each as it maps it)
_written: OrderedDict[int, tuple[str, dict[Any, float]]] = OrderedDict()  # id of a text -> (the text, its atoms)


def _written_text(document: dict[str, Any]) -> str:
    """The document (its sites checked: species lists of element and occu) as compact JSON text (orjson's), its
    sites' atoms (`sites_atoms`) kept for `written_atoms` with the text itself: held there, no other object takes
    its id."""
    text = orjson.dumps(document).decode()
    sites = document["sites"]
    _written[id(text)] = (text, _whole_atom_sites(sites) or sites_atoms(site["species"] for site in sites))
    if len(_written) > _WRITTEN_KEPT:
        _written.popitem(last=False)
    return text


def written_atoms(structure: str) -> dict[Any, float] | None:
    """The atoms by element name of a structure document as this process wrote it (`structure_json`,
    `structure_dict_json`), known without reading its text: its sites' `sites_atoms` (never edit the dict). None for
    any other text (a stored document, one another program wrote, any text made from a written one: edited, copied
    or read back), and for one of the documents written before the latest `_WRITTEN_KEPT`."""
    kept = _written.get(id(structure))
    return kept[1] if kept is not None and kept[0] is structure else None


def sites_atoms(sites_species: Iterable[Iterable[Mapping[str, Any]]]) -> dict[Any, float]:
    """The atoms of a structure's sites by element name, counted by occupancy, summed site by site (each site's
    species list as pymatgen writes it, of element and occu)."""
    atoms: dict[Any, float] = {}
    for site_species in sites_species:
        for species in site_species:
            element = species["element"]
            atoms[element] = atoms.get(element, 0.0) + species["occu"]
    return atoms


def _whole_atom_sites(sites: list[dict[str, Any]]) -> dict[Any, float] | None:
    """`sites_atoms` of sites that each hold one whole atom (most do), the quicker way: one species a site; None
    where a site holds another share or several species."""
    atoms: dict[Any, float] = {}
    for site in sites:
        site_species = site["species"]
        if len(site_species) != 1 or site_species[0]["occu"] != 1:
            return None
        element = site_species[0]["element"]
        atoms[element] = atoms.get(element, 0.0) + 1.0
    return atoms


def check_structure_dict(document: Any, field: str = "structure") -> None:
    """RecordError (naming `field` and the entry) unless a pymatgen Structure dict that a source sends whole
    (`Structure.as_dict()`, the Materials Project's) is a cell `structure_json` would write: its lattice matrix, each
    site's fractional coordinates ('abc') and species held to the same checks (lengths in Å); and unless what else it
    stores reads back through `Structure.from_dict` as received, without a warning (but for a null site property,
    which pymatgen writes itself and warns of as it reads it): each site's Cartesian coordinates ('xyz', which
    pymatgen works out again from abc and the lattice), where given, are those; the lattice's periodicity and the
    lengths, angles and volume written beside its matrix (`_check_lattice_fields`); the oxidation states and the charge
    (`_check_charge`); the sites' labels, texts; the properties of the structure and its sites (`_check_properties`,
    `_check_site_properties`); and it names no other class for monty's decoder. A value nested past Python's
    recursion limit (a page orjson reads may nest 1,024 levels) is refused as the record's, not the run's, error."""
    try:
        _check_document(document, field)
    except RecursionError:
        raise RecordError(f"{field}: nested too deeply to be read (past Python's recursion limit)") from None


def _check_document(document: Any, field: str) -> None:
    """`check_structure_dict`, where a value nested too deeply raises RecursionError."""
    try:
        lattice, sites = document["lattice"]["matrix"], document["sites"]
        coords = [site["abc"] for site in sites]
        species = [tuple(map(_ELEMENT_OCCU, site["species"])) for site in sites]
        if only_numbers(map(_SHARE, chain.from_iterable(species))):
            for shares in dict.fromkeys(species):  # each distinct site once (no True here to pass for the 1 it equals)
                _site_occupancies(shares, field)
        else:
            for shares in species:  # in order, to the first site whose occupancies are no numbers
                _site_shares(shares, field)
    except (KeyError, TypeError):  # (TypeError: an element that is a list, which no dict or cache can hold)
        raise RecordError(f"{field}: not a pymatgen Structure (a lattice matrix, sites of species and abc)") from None
    _check_encoding(document, field)
    rows, fractional = _cell(lattice, coords, len(sites), False, "angstrom", field)
    _check_xyz(sites, fractional, rows, field)
    _check_lattice_fields(document["lattice"], rows, field)
    _check_charge(document.get("charge"), sites, field)
    _check_labels([site.get("label") for site in sites], field)
    _check_properties(document.get("properties"), f"{field}: properties")
    _check_site_properties(sites, field)


def _check_encoding(document: Mapping[str, Any], field: str) -> None:
    """RecordError unless the document's '@module' and '@class', where given, name pymatgen's Structure: monty's
    decoder (pymatgen's `loadfn`) imports and builds the class they name."""
    for key, expected in _ENCODED_AS:
        if document.get(key, expected) != expected:
            raise RecordError(
                f"{field}: {key} {document[key]!r} is not {expected!r}: monty's decoder would build another object "
                "of it"
            )


def _check_lattice_fields(lattice: Mapping[str, Any], rows: Sequence[Sequence[float]], field: str) -> None:
    """RecordError unless the lattice's periodicity ('pbc'), where given, is three flags (`_periodicity`), and the
    lengths (a, b, c, Å), angles (alpha, beta, gamma, degrees) and volume (Å^3) pymatgen writes beside the matrix,
    where given, are numbers and the matrix's (`_lattice_parameters`), to XYZ_TOLERANCE: relative (and in Å) of a
    length and of the volume (relative to the product of the lengths, which no volume exceeds: rounding in working it
    out is relative to that), absolute of an angle's cosine. pymatgen reads the matrix alone, so a reader of the
    stored document would take a value that disagrees for the cell's."""
    if "pbc" in lattice:
        _periodicity(lattice["pbc"], field)
    names = [name for name in _LATTICE_PARAMETERS if name in lattice]
    if not names:
        return
    given = [lattice[name] for name in names]
    if not only_numbers(given):
        name, value = next(
            (name, value) for name, value in zip(names, given, strict=True) if not only_numbers((value,))
        )
        raise RecordError(f"{field}: lattice {name} {value!r} is not a number")
    parameters = _lattice_parameters(rows)
    largest = parameters["a"] * parameters["b"] * parameters["c"]
    for name, value in zip(names, given, strict=True):
        matrix_value = parameters[name]
        try:
            if name in _ANGLES:  # (within 0 to 180 degrees, an angle is its cosine; NaN is not within)
                agrees = 0 <= value <= 180 and abs(math.cos(math.radians(value)) - matrix_value) <= XYZ_TOLERANCE
            else:
                size = largest if name == "volume" else matrix_value
                agrees = abs(value - matrix_value) <= XYZ_TOLERANCE * (1.0 + size)
        except OverflowError:  # (an integer past the largest float)
            agrees = False
        if not agrees:
            raise RecordError(
                f"{field}: lattice {name} {value!r} is not its matrix's, {_shown(name, matrix_value)} (pymatgen reads "
                "the matrix alone)"
            )


def _lattice_parameters(rows: Sequence[Sequence[float]]) -> dict[str, float]:
    """The lengths (Å), the cosines of the angles and the volume (Å^3) of lattice vectors, by their names in pymatgen's
    lattice document."""
    (a1, a2, a3), (b1, b2, b3), (c1, c2, c3) = rows
    a = math.sqrt(a1 * a1 + a2 * a2 + a3 * a3)
    b = math.sqrt(b1 * b1 + b2 * b2 + b3 * b3)
    c = math.sqrt(c1 * c1 + c2 * c2 + c3 * c3)
    return {
        "a": a,
        "b": b,
        "c": c,
        "alpha": (b1 * c1 + b2 * c2 + b3 * c3) / (b * c),
        "beta": (c1 * a1 + c2 * a2 + c3 * a3) / (c * a),
        "gamma": (a1 * b1 + a2 * b2 + a3 * b3) / (a * b),
        "volume": lattice_volume(rows),
    }


def _shown(name: str, matrix_value: float) -> str:
    """A lattice parameter as its matrix gives it, with its unit (an angle of its cosine, capped to -1 to 1 as
    pymatgen caps it, in degrees)."""
    if name in _ANGLES:
        return f"{math.degrees(math.acos(max(-1.0, min(1.0, matrix_value))))!r} degrees"
    return f"{matrix_value!r} Å^3" if name == "volume" else f"{matrix_value!r} Å"


def periodicity_flags(pbc: Any) -> list[bool] | None:
    """Whether each lattice vector is periodic, of three flags, false or true or 0 or 1 (pymatgen reads 0 and 1 as
    the booleans they equal and writes booleans: the cell reads back the same); None for any other, which
    `Structure.from_dict` fails on."""
    if type(pbc) in _ROWS and len(pbc) == 3 and all(flag in (0, 1) for flag in pbc):  # (False == 0, True == 1)
        return [bool(flag) for flag in pbc]
    return None


def _periodicity(pbc: Any, field: str) -> list[bool]:
    """`periodicity_flags`; RecordError naming `field` for other than three flags."""
    flags = periodicity_flags(pbc)
    if flags is None:
        raise RecordError(f"{field}: lattice pbc {pbc!r} is not three flags {PERIODICITY_FLAGS}")
    return flags


def _check_labels(labels: Sequence[Any], field: str) -> None:
    """RecordError naming the first site label that is no text (none is: pymatgen names the site by its species)."""
    if set(map(type, labels)) <= _LABELS:
        return
    number, label = next((number, label) for number, label in enumerate(labels, 1) if type(label) not in _LABELS)
    raise RecordError(f"{field}: site {number}'s label {label!r} is not a text")


def _check_charge(charge: Any, sites: Sequence[Mapping[str, Any]], field: str) -> None:
    """RecordError unless each species' oxidation state and spin, where given, are finite numbers (or null), no site
    holds one species twice (pymatgen keeps the last: 'Ti' at 0.5 twice reads back as a site half empty), and the
    structure's charge, where given, is a finite number (JSON has no NaN: it would store null, which pymatgen reads as
    the oxidation states' sum) within CHARGE_TOLERANCE of the sum of its oxidation states by occupancy (0 where none
    has one), as pymatgen reads a charge without a warning."""
    total = 0.0
    for number, site in enumerate(sites, start=1):
        entries = site["species"]
        for entry in entries:
            if len(entry) > 2:  # (more than element and occu)
                total += _oxidation_state(entry, number, field) * entry["occu"]
        if len(entries) > 1 and len(set(map(_species_of, entries))) < len(entries):
            raise RecordError(f"{field}: site {number} holds one species twice: {entries!r}")
    if charge is None:
        return
    if not _finite_number(charge):
        raise RecordError(f"{field}: charge {charge!r} is not a finite number")
    if not abs(charge - total) <= CHARGE_TOLERANCE:
        raise RecordError(
            f"{field}: charge {charge!r} is not the sum of its sites' oxidation states, {total!r}: pymatgen warns as "
            "its charge is read"
        )


def _species_of(entry: Mapping[str, Any]) -> Element | PymatgenSpecies:
    """The species pymatgen reads of a site's species entry (checked: an element, finite numbers), by which it keys the
    site's species as it reads them (`PeriodicSite.from_dict`, keeping the last entry of a key): the element of an entry
    without an oxidation state (a spin beside none is not read), else a Species, whose null oxidation state is not the
    element's."""
    if "oxidation_state" not in entry:
        return Element(entry["element"])
    return PymatgenSpecies(entry["element"], entry["oxidation_state"], spin=entry.get("spin"))


def _oxidation_state(entry: Mapping[str, Any], number: int, field: str) -> float:
    """A species entry's oxidation state (0 where none is given); RecordError where it or its spin is given and is no
    finite number."""
    for key in ("oxidation_state", "spin"):
        value = entry.get(key)
        if value is not None and not _finite_number(value):
            raise RecordError(f"{field}: site {number}'s {entry['element']} {key} {value!r} is not a finite number")
    return entry.get("oxidation_state") or 0.0


def _finite_number(value: Any) -> bool:
    """Whether a value is a finite number (not a bool); an integer past the largest float is none."""
    try:
        return only_numbers((value,)) and math.isfinite(value)
    except OverflowError:
        return False


def _check_xyz(
    sites: Sequence[Mapping[str, Any]], fractional: Sequence[Sequence[float]], rows: Any, field: str
) -> None:
    """RecordError unless each site's Cartesian coordinates ('xyz'), where given, are three numbers where its fractional
    ones place it in the lattice (`rows`, Å), within XYZ_TOLERANCE of the size of the terms summed: pymatgen reads a
    site at its abc and writes that xyz again, so a document whose xyz disagrees says two places for one site (which
    is meant is not said), and one whose xyz is no finite number would be stored as null or a text beside the site."""
    placed = [(number, site["xyz"], abc) for number, site, abc in zip(count(1), sites, fractional) if "xyz" in site]
    for number, xyz, _ in placed:
        if type(xyz) not in _ROWS or len(xyz) != 3:
            raise RecordError(f"{field}: site {number}'s xyz {xyz!r} is not three coordinates")
    refuse_non_numbers([xyz for _, xyz, _ in placed], f"{field}: xyz entry")
    (a1, a2, a3), (b1, b2, b3), (c1, c2, c3) = rows
    largest = max(map(abs, (a1, a2, a3, b1, b2, b3, c1, c2, c3)))
    for number, (x, y, z), (u, v, w) in placed:
        cartesian = (u * a1 + v * b1 + w * c1, u * a2 + v * b2 + w * c2, u * a3 + v * b3 + w * c3)
        tolerance = XYZ_TOLERANCE * (1.0 + (abs(u) + abs(v) + abs(w)) * largest)  # (no term summed is larger)
        try:
            within = abs(x - cartesian[0]) <= tolerance and abs(y - cartesian[1]) <= tolerance
            within = within and abs(z - cartesian[2]) <= tolerance  # (NaN: never within)
        except OverflowError:  # (an integer past the largest float: no site's coordinate)
            within = False
        if not within:
            raise RecordError(
                f"{field}: site {number}'s xyz {[x, y, z]} is not where its abc {[u, v, w]} places it in the lattice, "
                f"{list(cartesian)} Å"
            )


def _check_properties(properties: Any, what: str) -> None:
    """RecordError unless properties (a site's or a structure's) are none or an object of values that read back as
    they are: texts, booleans, nulls, finite numbers (JSON has no NaN: it would store null), and lists and objects of
    them, but no object in monty's encoding ('@module'), which monty's decoder imports and builds (any class, function
    or module it names), as pymatgen's Structure.from_dict decodes each site's properties; a magnetic moment ('magmom')
    a number, three (its vector), or none (`_magnetic_moment`)."""
    if properties is None:
        return
    if not isinstance(properties, dict):
        raise RecordError(f"{what} {properties!r} are not an object of properties by name")
    for name, value in properties.items():
        problem = _unread_value(value)
        if problem is not None:
            raise RecordError(f"{what}: '{name}' {problem}")
        if name == "magmom" and not _magnetic_moment(value):
            raise RecordError(f"{what}: 'magmom' {value!r} is not a magnetic moment (a number, three, or null)")


def _check_site_properties(sites: Sequence[Mapping[str, Any]], field: str) -> None:
    """RecordError unless each site's properties are none or properties that read back as they are
    (`_check_properties`), and a property one site has every site has: pymatgen reads it as null where a site lacks
    it, warning ('Not all sites have property'). A null is a value: pymatgen writes one for such a site
    (Structure.from_sites) and reads it back as it is."""
    names = None  # the first site's properties' names, which every site's are
    for number, site in enumerate(sites, start=1):
        properties = site.get("properties")
        if properties is None:
            properties = {}
        elif properties != {}:  # (a site without properties, as most are)
            _check_properties(properties, f"{field}: site {number}'s properties")
        if names is None:
            names = properties.keys()
        elif properties.keys() != names:
            _refuse_property_some_sites_lack(sites, field)


def _refuse_property_some_sites_lack(sites: Sequence[Mapping[str, Any]], field: str) -> None:
    """RecordError naming the first property that a site lacks, where another site has it."""
    held = [(site.get("properties") or {}).keys() for site in sites]  # each site's properties' names
    for name in dict.fromkeys(chain.from_iterable(held)):  # each property's name, in the order the sites give them
        having = [name in names for names in held]
        if not all(having):
            raise RecordError(
                f"{field}: site {having.index(False) + 1} has no '{name}', which site {having.index(True) + 1}'s "
                "properties have: pymatgen would read it back as null, warning"
            )


def _unread_value(value: Any) -> str | None:
    """Why a property's value would not be stored and read back as it is (`_check_properties`); None if it would."""
    if value is None or isinstance(value, str | bool):
        return None
    if isinstance(value, int):
        low, high = _JSON_INTEGERS
        return (
            None
            if low <= value <= high
            else f"{value!r} is an integer past 64 bits, which the store's JSON (orjson) does not write"
        )
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a finite number"
    if isinstance(value, list | tuple):
        return next(filter(None, map(_unread_value, value)), None)
    if isinstance(value, dict):
        if "@module" in value:
            return f"{value!r} is an object in monty's encoding ('@module'), which monty's decoder imports and builds"
        return next(filter(None, map(_unread_value, value.values())), None)
    return f"{value!r} is no JSON value"


def _magnetic_moment(value: Any) -> bool:
    """Whether a site's magmom is a magnetic moment as pymatgen reads one: a number, or three (its vector); or none, a
    null, which pymatgen writes for a site without one beside sites with one (Structure.from_sites)."""
    return (
        value is None
        or only_numbers((value,))
        or (isinstance(value, list | tuple) and len(value) == 3 and only_numbers(value))
    )


def _cell(
    lattice: Any, coords: Any, nsites: int, cartesian: bool, length_unit: str, field: str
) -> tuple[Sequence[Sequence[float]], Sequence[Sequence[float]]]:
    """The lattice vectors in Å and the fractional coordinates of a cell, checked (`_arrays`, a volume, every site
    within a float's range). A cell of plain numbers that passes every check by a margin, as a source's nearly always
    does, is read by `_plain_cell`; any other is checked in numpy, its overflows said by its RecordError alone."""
    cell = _plain_cell(lattice, coords, nsites, cartesian, length_unit)
    if cell is not None:
        return cell
    with np.errstate(over="ignore", invalid="ignore"):  # (a site or lattice past the largest float: refused below)
        return _checked_cell(lattice, coords, nsites, cartesian, length_unit, field)


def _checked_cell(
    lattice: Any, coords: Any, nsites: int, cartesian: bool, length_unit: str, field: str
) -> tuple[list[list[float]], list[list[float]]]:
    """`_cell` of any cell: RecordError for the first check it fails."""
    matrix, positions = _arrays(lattice, coords, nsites, field)
    if length_unit != "angstrom":
        scale = scale_factor(length_unit, "angstrom")
        matrix, positions = matrix * scale, positions * scale if cartesian else positions
    rows = matrix.tolist()
    volume = lattice_volume(rows)
    if volume < MIN_VOLUME:
        raise RecordError(f"{field}: the lattice vectors span no volume")
    if not math.isfinite(volume):  # (NaN too: an infinite product less another, or times 0)
        raise RecordError(
            f"{field}: the lattice vectors are too long: working out their volume passes the largest number (about "
            "1.8e308) in Å^3"
        )
    vector = _overflowing_vector(rows)
    if vector is not None:
        raise RecordError(
            f"{field}: the lattice vectors are too long: working out the length of vector {vector + 1} (the sum of its "
            "entries' squares, as pymatgen reads it) passes the largest number (about 1.8e308) in Å^2"
        )
    fractional = positions @ _inverse(rows) if cartesian else positions
    _refuse_sites_beyond_floats(fractional, matrix, coords, field)
    return rows, fractional.tolist()


def _plain_cell(
    lattice: Any, coords: Any, nsites: int, cartesian: bool, length_unit: str
) -> tuple[Sequence[Sequence[float]], Sequence[Sequence[float]]] | None:
    """`_cell` of a cell of plain numbers (`_plain_rows`) that passes every check by a margin; None for any other. The
    same floats as `_checked_cell`'s without numpy's cost per call on small arrays, but for numpy's product that makes
    Cartesian coordinates fractional (BLAS rounds otherwise than a sum in Python).

    No entry of a matrix product is larger than the product of the two matrices' sizes (root of the entries' squares'
    sum, infinite or NaN if an entry is): coordinates and lattice whose sizes multiply to under half the largest float
    place no site past it, even rounded, and no product overflows on the way."""
    lattice_rows, site_rows = _plain_rows(lattice, 3), _plain_rows(coords, nsites)
    if lattice_rows is None or site_rows is None:
        return None
    (rows, lattice_entries), (positions, site_entries) = lattice_rows, site_rows
    scale = 1.0 if length_unit == "angstrom" else scale_factor(length_unit, "angstrom")
    if scale != 1.0:
        rows = [[value * scale for value in row] for row in rows]
    if not MIN_VOLUME <= lattice_volume(rows) < math.inf or _overflowing_vector(rows) is not None:
        return None
    size = math.hypot(*site_entries)  # of the fractional coordinates
    if cartesian:
        inverse, cartesian_size = _inverse(rows), size * scale
        size = cartesian_size * math.hypot(*inverse[0], *inverse[1], *inverse[2])
        if not (cartesian_size < _FAR and size < _FAR):
            return None
        sites = np.array(site_entries).reshape(nsites, 3)
        positions = ((sites * scale if scale != 1.0 else sites) @ np.array(inverse)).tolist()
    return (rows, positions) if size * math.hypot(*lattice_entries) * scale < _FAR else None


def _plain_rows(rows: Any, count: int) -> tuple[Sequence[Sequence[float]], tuple[float, ...]] | None:
    """`count` rows of three floats and their entries in a row, if `rows` is a list or tuple of lists or tuples of
    ints and floats, as JSON gives them; None otherwise (or for an int past the largest float)."""
    if type(rows) not in _ROWS or len(rows) != count or not set(map(type, rows)) <= _ROWS:
        return None
    if set(map(len, rows)) != {3}:
        return None
    entries = tuple(chain.from_iterable(rows))
    kinds = set(map(type, entries))
    if kinds != _FLOATS:
        if not kinds <= _PLAIN_NUMBERS:
            return None
        try:
            entries = tuple(map(float, entries))  # (a JSON 4 is stored as 4.0)
        except OverflowError:
            return None
        rows = [entries[at : at + 3] for at in range(0, len(entries), 3)]
    return rows, entries


def lattice_volume(rows: Sequence[Sequence[float]]) -> float:
    """Volume spanned by three lattice vectors, |a . (b x c)| (a 3x3 determinant: numpy's costs ten times more)."""
    (a1, a2, a3), (b1, b2, b3), (c1, c2, c3) = rows
    return abs(a1 * (b2 * c3 - b3 * c2) - a2 * (b1 * c3 - b3 * c1) + a3 * (b1 * c2 - b2 * c1))


def _overflowing_vector(rows: Sequence[Sequence[float]]) -> int | None:
    """The index of the first lattice vector whose length overflows a float as pymatgen works it out (the root of its
    entries' squares' sum: infinite past about 1.3e154 Å, where the volume may be finite: [[2e154, 0, 0], [0, 1, 0],
    [0, 0, 1]]); None where none does."""
    return next((index for index, (a, b, c) in enumerate(rows) if not a * a + b * b + c * c < math.inf), None)


def _inverse(rows: Sequence[Sequence[float]]) -> list[list[float]]:
    """Inverse of a non-degenerate 3x3 matrix, its adjugate over its determinant (numpy's solve costs more per cell).

    Cartesian rows times it are fractional coordinates: rows of lattice vectors map fractional to Cartesian.
    """
    (a1, a2, a3), (b1, b2, b3), (c1, c2, c3) = rows
    adjugate = [
        [b2 * c3 - b3 * c2, a3 * c2 - a2 * c3, a2 * b3 - a3 * b2],
        [b3 * c1 - b1 * c3, a1 * c3 - a3 * c1, a3 * b1 - a1 * b3],
        [b1 * c2 - b2 * c1, a2 * c1 - a1 * c2, a1 * b2 - a2 * b1],
    ]
    determinant = a1 * adjugate[0][0] + a2 * adjugate[1][0] + a3 * adjugate[2][0]
    return [[entry / determinant for entry in row] for row in adjugate]


def read_structure(text: str) -> Structure:
    """The pymatgen Structure of a stored structure document."""
    return Structure.from_dict(orjson.loads(text))


def parse_structure(text: str, base: Path | None = None) -> Structure:
    """A structure from CIF, POSCAR or pymatgen JSON text, or from the file the text names (relative to `base`).

    RecordError if it is none of them, or a CIF of several structures (which one the row means is not said).
    """
    given = str(text)
    text = given.strip()
    with _reading():
        if text.startswith("{"):
            return _json_structure(text)
        if "\n" not in text:  # one line: a file name
            return _the_one(file_structures((base or Path()) / text))
        if "_cell_length_a" in text:
            return _the_one(_cif_structures(text))
        return _poscar(given.lstrip(" \t").rstrip())  # (a POSCAR's first line, its comment, may be blank)


def _json_structure(text: str) -> Structure:
    """The structure of pymatgen JSON text (`Structure.as_dict()`), held to the rules of a source's such document
    (`check_structure_dict`); ValueError for a JSON object that is none."""
    document = orjson.loads(text)
    if not isinstance(document, dict) or "lattice" not in document or "sites" not in document:
        raise ValueError(
            "a JSON object without the 'lattice' and 'sites' of a pymatgen Structure (Structure.as_dict())"
        )
    check_structure_dict(document, "pymatgen JSON")
    return Structure.from_dict(document)


def file_structures(path: Path) -> list[tuple[str | None, Structure]]:
    """The structures of a CIF, POSCAR or pymatgen JSON file, each with its CIF data block's name (None for the other
    formats), read as `parse_structure` reads their text; RecordError if it is none of them."""
    name = path.name.lower()  # the formats by name as pymatgen tells them: *.cif*, *POSCAR*, *CONTCAR*, *.vasp
    with _reading():
        if ".cif" in name:
            return _cif_structures(_file_text(path))
        if "poscar" in name or "contcar" in name or name.endswith(".vasp"):
            return [(None, _poscar(_file_text(path)))]
        if ".json" in name:
            return [(None, _json_structure(_file_text(path)))]
        return [(None, _with_checked_cell(Structure.from_file(path), path.name))]


def _with_checked_cell(structure: Structure, what: str) -> Structure:
    """A structure pymatgen read, its cell held to the checks of a source's (`_cell`: its lattice vectors span a
    volume, each one's length and the volume within a float, as every site); RecordError naming `what` (the format
    it was read from) for the first it fails."""
    matrix, coords = structure.lattice.matrix.tolist(), structure.frac_coords.tolist()
    _cell(matrix, coords, len(structure), False, "angstrom", what)
    return structure


@contextmanager
def _reading() -> Iterator[None]:
    """pymatgen reading a structure: its errors RecordErrors, its warnings silenced (it reports CIF coordinates it
    rounded) but for species it makes up for a POSCAR that names none (H, He, ... for a VASP 4 file), numpy's too (a
    CIF of a cell past floats: the checks of its cell refuse it, `_with_checked_cell`)."""
    try:
        with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", UserWarning)
            warnings.filterwarnings("error", _NO_SPECIES, UserWarning)
            yield
    except UserWarning as exc:  # pymatgen's BadPoscarWarning: that one, or raised for a coordinate line it cannot read
        if str(exc).startswith(_NO_SPECIES):
            raise RecordError("POSCAR names no species (VASP 4 format): add the species line") from None
        raise RecordError(_not_a_structure(exc)) from None
    except (*_NOT_READ, TypeError, IndexError, OSError) as exc:  # orjson's JSONDecodeError is a ValueError
        raise RecordError(_not_a_structure(exc)) from None


def _not_a_structure(error: Exception) -> str:
    """Why a text or file is no structure: the first line of pymatgen's (or the reader's) error."""
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"not a crystal structure (CIF, POSCAR, pymatgen JSON or a file of one): {reason}"


def _file_text(path: Path) -> str:
    """A structure file's text, opened as pymatgen opens it (a compressed one too: POSCAR.gz, x.cif.bz2)."""
    with zopen(path, mode="rt", encoding="utf-8") as file:
        return file.read()


def _the_one(structures: list[tuple[str | None, Structure]]) -> Structure:
    """The structure of a CIF or file of one; RecordError naming the data blocks of a CIF of several."""
    if len(structures) > 1:
        blocks = ", ".join(f"data_{block}" for block, _ in structures)
        raise RecordError(f"the CIF holds {len(structures)} structures ({blocks}): give one per row")
    return structures[0][1]


def _cif_structures(text: str) -> list[tuple[str, Structure]]:
    """Each structure of a CIF with its data block's name, the blocks split where pymatgen splits them; a block of no
    structure (a publication's, a powder pattern's) is skipped, as pymatgen skips it, unless no block holds one."""
    found, error = [], None
    for block in _CIF_BLOCK.split(f"x\n{text}")[1:]:
        try:
            name = block.split("\n", 1)[0].strip()
            found.append((name, _with_checked_cell(Structure.from_str(f"data_{block}", fmt="cif"), f"CIF data_{name}")))
        except _NOT_READ as exc:
            error = error or exc
    if not found:
        raise error or ValueError("no data block (data_...)")
    return found


def _poscar(text: str) -> Structure:
    """The structure of a POSCAR, read by pymatgen once its scale line is one that pymatgen reads as VASP does."""
    return _with_checked_cell(Structure.from_str(_with_length_scale(text), fmt="poscar"), "POSCAR")


def _with_length_scale(text: str) -> str:
    """A POSCAR whose negative scale (VASP: the cell's volume) is written as the length factor it stands for,
    (volume / V0)^(1/3) with V0 the volume of the lattice vectors as given: pymatgen scales the lattice by that factor
    but Cartesian coordinates by the negative number. RecordError for a factor per Cartesian axis (three numbers, as
    VASP allows), which pymatgen does not read."""
    lines = text.split("\n")
    if len(lines) < 5:
        return text  # pymatgen says what is missing
    factors = _fields(lines[1])
    if len(factors) == 3:
        raise RecordError(
            f"POSCAR scale line '{lines[1].strip()}' gives a factor per Cartesian axis, which pymatgen does not read: "
            "give the lattice vectors (and Cartesian coordinates) scaled, and a scale of 1"
        )
    if len(factors) != 1 or float(factors[0]) >= 0:
        return text
    volume = lattice_volume([[float(value) for value in _fields(line)] for line in lines[2:5]])
    if volume < MIN_VOLUME:
        raise RecordError("POSCAR: the lattice vectors span no volume")
    lines[1] = repr((-float(factors[0]) / volume) ** (1 / 3))
    return "\n".join(lines)


def _fields(line: str) -> list[str]:
    """The fields of a POSCAR line, without the comment after a '#' (as pymatgen reads them)."""
    return line.split("#", 1)[0].split()


def composition_text(species: Sequence[str]) -> str:
    """A formula counting the sites of each element, in order of first appearance ('Al2 O3')."""
    counts: dict[str, int] = {}
    for symbol in species:
        counts[symbol] = counts.get(symbol, 0) + 1
    return " ".join(f"{symbol}{count}" for symbol, count in counts.items())


def refuse_non_numbers(rows: Any, what: str) -> None:
    """RecordError naming the first entry of `rows` (lattice vectors, coordinates: rows of numbers) that is no number:
    a JSON true or false (which Python would read as 1 or 0), a text ('4.0'), a null. Rows of another shape pass, for
    the shape check to refuse. One scan of the entries' types, in C: this is the per-record path of a fetch."""
    try:
        if only_numbers(chain.from_iterable(rows)):
            return
    except TypeError:  # not rows: a number, a null
        return
    entry = next(entry for entry in chain.from_iterable(rows) if not only_numbers((entry,)))
    raise RecordError(f"{what} {entry!r} is not a number")


def only_numbers(values: Iterable[Any]) -> bool:
    """True when every value is an int or a float (numpy's too), not a bool."""
    kinds = set(map(type, values))
    return kinds <= _PLAIN_NUMBERS or all(kind is not bool and issubclass(kind, _NUMBERS) for kind in kinds)


def _arrays(lattice: Any, coords: Any, nsites: int, field: str) -> tuple[np.ndarray, np.ndarray]:
    """The lattice and coordinates as float arrays, checked: three finite vectors and one finite row per site."""
    refuse_non_numbers(lattice, f"{field}: lattice entry")
    refuse_non_numbers(coords, f"{field}: coordinate")
    try:
        matrix = np.asarray(lattice, dtype=float)
        positions = np.asarray(coords, dtype=float)
    except (TypeError, ValueError, OverflowError) as exc:  # (OverflowError: an integer too large for a float)
        raise RecordError(f"{field}: lattice or coordinates are not numbers ({exc})") from None
    if matrix.shape != (3, 3) or not _finite(matrix):
        raise RecordError(f"{field}: the lattice is not three finite vectors (shape {matrix.shape})")
    if not nsites or positions.shape != (nsites, 3):
        raise RecordError(f"{field}: {nsites} species for coordinates of shape {positions.shape}")
    if not _finite(positions):
        raise RecordError(f"{field}: coordinate {positions[~np.isfinite(positions)][0]} is not a finite number")
    return matrix, positions


def _finite(values: np.ndarray) -> bool:
    """True when every entry is finite: their sum is (NaN or infinite if any entry is), or else each one is (a sum of
    finite entries may pass the largest float)."""
    return math.isfinite(values.sum()) or bool(np.isfinite(values).all())


def _refuse_sites_beyond_floats(fractional: np.ndarray, matrix: np.ndarray, coords: Any, field: str) -> None:
    """RecordError for finite coordinates that place a site past the largest float (about 1.8e308) in cells or in Å,
    as stored or as pymatgen reads the site ('[1e308, 1e308, 0]' in cells; 1e308 nm): JSON would store such a
    coordinate as null. The sum of the Cartesian coordinates is checked first, in C: a fractional one past a float
    makes its site's Cartesian ones so too (each lattice vector has an entry not 0), and a sum past a float only leads
    to the check per site."""
    cartesian = fractional @ matrix
    if math.isfinite(cartesian.sum()):
        return
    finite = np.isfinite(fractional).all(axis=1) & np.isfinite(cartesian).all(axis=1)
    if finite.all():
        return
    site = int(np.argmin(finite))
    raise RecordError(
        f"{field}: the coordinates {np.asarray(coords, dtype=float)[site].tolist()} place site {site + 1} past the "
        "largest number (about 1.8e308) in cells or in Å"
    )


def _sites_species(species: Sequence[Species], named: Mapping[str, Species], field: str) -> list[list[dict[str, Any]]]:
    """Each site's species as pymatgen writes them; sites given by name are read once per distinct name."""
    try:
        distinct = dict.fromkeys(species)
    except TypeError:  # occupancies given per site (dicts): read per site, each distinct one checked once
        return [_site_species(entry, field) for entry in species]
    for name in distinct:
        distinct[name] = _site_species(named.get(name, name), field)
    return [distinct[name] for name in species]


def _site_species(entry: Species, field: str) -> list[dict[str, Any]]:
    if isinstance(entry, str):
        return _site_occupancies(((entry, 1.0),), field)
    if not isinstance(entry, dict) or not entry:
        raise RecordError(f"{field}: site species {entry!r} is neither an element nor element occupancies")
    return _site_shares(tuple(entry.items()), field)


def _site_shares(shares: tuple[tuple[str, Any], ...], field: str) -> list[dict[str, Any]]:
    """A site's species as pymatgen writes them, of (element, occupancy) pairs; RecordError if one is no number."""
    if not only_numbers(map(_SHARE, shares)):  # (checked before the cache, which takes True for the 1 it equals)
        raise RecordError(f"{field}: site occupancies {dict(shares)!r} are not numbers")
    return _site_occupancies(shares, field)


def _site_occupancies(shares: tuple[tuple[str, Any], ...], field: str) -> list[dict[str, Any]]:
    """`_occupancies`, its RecordError naming `field` (outside the cache: a field naming each record finds the sites
    of the others cached all the same)."""
    try:
        return _occupancies(shares)
    except RecordError as exc:
        raise RecordError(f"{field}: {exc}") from None


@lru_cache(maxsize=4096)
def _occupancies(shares: tuple[tuple[str, Any], ...]) -> list[dict[str, Any]]:
    """A site's species as pymatgen writes them, checked once per distinct site (the list is shared: never edit);
    an element of share 0 is left off (it puts nothing on the site)."""
    occupancies = [{"element": _element(symbol), "occu": _share(share)} for symbol, share in shares]
    if not shares_of_a_site(site["occu"] for site in occupancies):
        why = "are no shares of a site (none below 0, at most 1 together)"
        raise RecordError(f"site occupancies {dict(shares)!r} {why}")
    held = [site for site in occupancies if site["occu"] > 0]
    if not held:
        raise RecordError(f"site occupancies {dict(shares)!r} put no atom on the site")
    return held


def _share(occupancy: int | float) -> float:
    """An occupancy as a float; an integer past the largest float (JSON's are read whole) as an infinite one, which no
    site holds."""
    try:
        return float(occupancy)
    except OverflowError:
        return math.inf if occupancy > 0 else -math.inf


def shares_of_a_site(shares: Iterable[float]) -> bool:
    """True when occupancies can share one site: none below 0 (a share of 0 puts nothing there), together no more
    than 1 (rounding allowed)."""
    shares = tuple(shares)
    return min(shares, default=0.0) >= 0 and sum(shares) <= 1 + 1e-6


@lru_cache(maxsize=256)
def _element(symbol: str) -> str:
    if not Element.is_valid_symbol(symbol):
        raise RecordError(f"'{symbol}' is not a chemical element")
    return symbol


_SCREW_AXIS = re.compile(r"([2346])([1-5])")  # qmpy writes 'P21/c', pymatgen reads some only as 'P2_1/c'
_RENAMED_SYMBOLS = {"Cmca": "Cmce"}  # the e-glide symbol of No. 64 (ITA 2002), the one pymatgen reads


@lru_cache(maxsize=512)
def spacegroup_number(symbol: str) -> int | None:
    """International number of a Hermann-Mauguin symbol as qmpy (OQMD) writes it ('Imma' -> 74, 'P21/c' -> 14, the old
    'Cmca' -> 64); None if pymatgen knows neither it nor its spelling with screw axes marked ('P2_1/c')."""
    for spelling in (symbol, _SCREW_AXIS.sub(r"\1_\2", symbol), _RENAMED_SYMBOLS.get(symbol, symbol)):
        try:
            return SpaceGroup(spelling).int_number
        except ValueError:
            continue
    return None
