"""Featurization, computed once per export: composition vectors and statistics, and crystal graphs as flat arrays.

Element properties come from pymatgen's periodic table (no hand-typed tables); a property pymatgen lacks for an
element is imputed with its mean over the elements that have it, so the statistics are never NaN.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Element, Structure
from pymatgen.core.ion import Ion

from matreg.errors import MatregError
from matreg.structure import read_structure

N_ELEMENTS = 103  # H (Z=1) .. Lr (Z=103): column j of a fraction vector is the element with Z = j + 1
ELEMENT_PROPERTIES = (
    "Z",
    "atomic_mass",
    "X",
    "row",
    "group",
    "block",
    "mendeleev_no",
    "atomic_radius",
    "atomic_radius_calculated",
    "van_der_waals_radius",
    "average_ionic_radius",
    "melting_point",
    "boiling_point",
    "molar_volume",
    "electron_affinity",
    "ionization_energy",
    "thermal_conductivity",
    "max_oxidation_state",
    "min_oxidation_state",
    "is_metal",
)
STATISTICS = ("mean", "std", "min", "max", "range")
BLOCKS = {"s": 0.0, "p": 1.0, "d": 2.0, "f": 3.0}
DEFAULT_CUTOFF = 8.0
DEFAULT_MAX_NEIGHBORS = 12


def element_symbols() -> list[str]:
    """Symbols of the elements in fraction-vector order (Z = 1..103)."""
    return [Element.from_Z(z).symbol for z in range(1, N_ELEMENTS + 1)]


def stat_names() -> list[str]:
    """Names of the columns of `stats`: '<property>_<statistic>' for every pair, then 'n_elements'."""
    return [f"{prop}_{stat}" for prop in ELEMENT_PROPERTIES for stat in STATISTICS] + ["n_elements"]


def _element_value(element: Element, name: str) -> float:
    """One pymatgen property of an element as a float (NaN when pymatgen has none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = getattr(element, name)
        except (AttributeError, KeyError, TypeError, ValueError):
            return float("nan")
    if name == "block":
        return BLOCKS.get(value, float("nan"))
    return float("nan") if value is None else float(value)


@lru_cache(maxsize=1)
def element_table() -> np.ndarray:
    """Element properties [103, P] from pymatgen, missing values imputed with the property's mean."""
    table = np.array(
        [[_element_value(Element.from_Z(z), name) for name in ELEMENT_PROPERTIES] for z in range(1, N_ELEMENTS + 1)]
    )
    return np.where(np.isnan(table), np.nanmean(table, axis=0), table)


def _amounts(formula: str) -> dict[str, float]:
    """Element amounts of a formula; an ion's formula ('AlF4[-1]') is read by pymatgen's Ion, without its charge."""
    try:
        return Composition(formula).get_el_amt_dict()
    except ValueError:
        return Ion.from_formula(formula).get_el_amt_dict()


@lru_cache(maxsize=1 << 18)
def composition_of(formula: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Atomic numbers and atomic fractions of a formula's elements, by increasing Z (a charge is ignored)."""
    try:
        pairs = sorted((Element(symbol).Z, amount) for symbol, amount in _amounts(formula).items())
    except (KeyError, TypeError, ValueError) as exc:
        raise MatregError(f"cannot featurize formula '{formula}': {exc}") from None
    if not pairs or pairs[-1][0] > N_ELEMENTS:
        raise MatregError(f"cannot featurize formula '{formula}': only elements up to Lr (Z={N_ELEMENTS}) are covered")
    total = sum(amount for _, amount in pairs)
    return tuple(z for z, _ in pairs), tuple(amount / total for _, amount in pairs)


def _padded(formulas: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Z [U, M] (0 = padding) and fractions [U, M] of each formula."""
    parsed = [composition_of(formula) for formula in formulas]
    width = max((len(zs) for zs, _ in parsed), default=1)
    element_z = np.zeros((len(parsed), width), dtype=np.int64)
    element_frac = np.zeros((len(parsed), width), dtype=np.float64)
    for row, (zs, fractions) in enumerate(parsed):
        element_z[row, : len(zs)] = zs
        element_frac[row, : len(zs)] = fractions
    return element_z, element_frac


def _fraction_vectors(element_z: np.ndarray, element_frac: np.ndarray) -> np.ndarray:
    """Element-fraction vectors [U, 103]."""
    vectors = np.zeros((len(element_z), N_ELEMENTS), dtype=np.float64)
    rows, slots = np.nonzero(element_z)
    vectors[rows, element_z[rows, slots] - 1] = element_frac[rows, slots]
    return vectors


def _statistics(element_z: np.ndarray, element_frac: np.ndarray) -> np.ndarray:
    """Fraction-weighted mean and std, min, max and range of every element property, and the element count [U, S]."""
    present = (element_z > 0)[:, :, None]
    values = element_table()[np.maximum(element_z, 1) - 1]  # [U, M, P]; padding masked below
    weights = element_frac[:, :, None]
    mean = (weights * values).sum(axis=1)
    std = np.sqrt((weights * (values - mean[:, None, :]) ** 2).sum(axis=1))
    low = np.where(present, values, np.inf).min(axis=1)
    high = np.where(present, values, -np.inf).max(axis=1)
    per_property = np.stack([mean, std, low, high, high - low], axis=2).reshape(len(element_z), -1)
    return np.concatenate([per_property, present.sum(axis=1)], axis=1)


def featurize_compositions(formulas: Sequence[str]) -> dict[str, np.ndarray]:
    """`fractions`, `stats`, `element_z` and `element_frac` of each formula, each unique formula computed once."""
    codes, unique = pd.factorize(pd.Series(list(formulas), dtype=object), sort=True)
    element_z, element_frac = _padded(list(unique))
    return {
        "fractions": _fraction_vectors(element_z, element_frac).astype(np.float32)[codes],
        "stats": _statistics(element_z, element_frac).astype(np.float32)[codes],
        "element_z": element_z[codes],
        "element_frac": element_frac.astype(np.float32)[codes],
    }


def _atomic_numbers(structure: Structure) -> np.ndarray:
    """Z of each site of an ordered structure."""
    return np.array([site.specie.Z for site in structure], dtype=np.int64)


def crystal_graph(
    structure: Structure, cutoff: float = DEFAULT_CUTOFF, max_neighbors: int = DEFAULT_MAX_NEIGHBORS
) -> dict[str, np.ndarray]:
    """Atoms and the nearest `max_neighbors` neighbours of each within `cutoff` Å (periodic images included)."""
    centers, neighbors, images, distances = structure.get_neighbor_list(r=cutoff)
    order = np.lexsort((images[:, 2], images[:, 1], images[:, 0], neighbors, distances, centers))
    centers, neighbors, distances = centers[order], neighbors[order], distances[order]
    rank = np.arange(len(centers)) - np.searchsorted(centers, centers, side="left")
    keep = rank < max_neighbors
    return {
        "atom_z": _atomic_numbers(structure),
        "edge_src": centers[keep].astype(np.int64),
        "edge_dst": neighbors[keep].astype(np.int64),
        "edge_dist": distances[keep].astype(np.float32),
    }


def _graph_of(text: str | None, cutoff: float, max_neighbors: int) -> dict[str, np.ndarray]:
    structure = read_structure(text) if isinstance(text, str) and text else None  # pandas gives NaN for none
    if structure is None or not structure.is_ordered:
        return _empty_graph()
    return crystal_graph(structure, cutoff, max_neighbors)


def _empty_graph() -> dict[str, np.ndarray]:
    """The graph of a record without a structure: no atoms, no edges."""
    ints = np.zeros(0, dtype=np.int64)
    return {"atom_z": ints, "edge_src": ints, "edge_dst": ints, "edge_dist": np.zeros(0, dtype=np.float32)}


def _offsets(counts: list[int]) -> np.ndarray:
    """[0, c0, c0 + c1, ...] as int64."""
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)


def featurize_structures(
    structures: Sequence[str | None], cutoff: float = DEFAULT_CUTOFF, max_neighbors: int = DEFAULT_MAX_NEIGHBORS
) -> dict[str, np.ndarray]:
    """Crystal graphs of pymatgen Structure JSON strings as flat arrays with offsets.

    None, and a disordered structure (partly occupied or mixed sites, which one atom per node cannot stand for),
    give a graph without atoms: graph models leave such records out.
    """
    graphs = [_graph_of(text, cutoff, max_neighbors) for text in structures]
    flat = {name: np.concatenate([graph[name] for graph in graphs]) for name in _empty_graph()}
    flat["atom_offsets"] = _offsets([len(graph["atom_z"]) for graph in graphs])
    flat["edge_offsets"] = _offsets([len(graph["edge_src"]) for graph in graphs])
    return flat
