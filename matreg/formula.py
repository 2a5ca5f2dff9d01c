"""Chemical formulas, normalized by pymatgen (never parsed by hand)."""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

from pymatgen.core import Composition, Element
from pymatgen.core.composition import reduce_formula
from pymatgen.core.ion import Ion
from pymatgen.util.string import formula_double_format

from matreg.errors import FormulaError

_CHARGE_SUFFIX = re.compile(r"(\[[+-]?\d*\]|[+-]+)$")


@dataclass(frozen=True)
class Formula:
    """A parsed formula: the pymatgen-reduced formula and what the store needs to know about it.

    Isotopes keep their symbols in `reduced` and `species` ('D2O'), while `elements` names elements ('H', 'O').
    `species` is the formula as written, not reduced ('O', 'O2' and 'O3' are three molecules of one reduced formula).
    """

    original: str
    reduced: str
    species: str
    elements: tuple[str, ...]
    atoms_per_formula_unit: float
    charge: float | None

    @property
    def chemsys(self) -> str:
        """Chemical system, e.g. 'Al-O'."""
        return "-".join(self.elements)


@lru_cache(maxsize=65536)
def parse_formula(text: str) -> Formula:
    """Parse a formula ('Al2O3', 'H2O1', 'AlF4-', 'Hg0.7Cd0.3Te'); raise FormulaError for anything else."""
    original = str(text).strip()
    if not original:
        raise FormulaError("empty formula")
    try:
        with warnings.catch_warnings():  # pymatgen warns about noble gases' missing electronegativity
            warnings.simplefilter("ignore", UserWarning)
            composition = Ion.from_formula(original) if _CHARGE_SUFFIX.search(original) else Composition(original)
            unknown = [str(el) for el in composition.elements if not isinstance(el, Element)]
            if unknown or not composition.elements:
                raise FormulaError(f"unparseable formula '{original}': not elements: {', '.join(unknown) or 'none'}")
            reduced, species = _reduced_and_species(composition)
    except (ValueError, KeyError, TypeError) as exc:
        raise FormulaError(f"unparseable formula '{original}'") from exc
    elements = tuple(sorted({el.symbol for el in composition.elements}))  # deuterium's symbol is H
    charge = float(composition.charge) if isinstance(composition, Ion) else None
    return Formula(original, reduced, species, elements, float(composition.num_atoms), charge)


def _reduced_and_species(composition: Composition) -> tuple[str, str]:
    """The reduced formula (pymatgen's, which folds isotopes into their element: 'H2O' for D2O) and the formula as
    written, both with isotope symbols kept; an ion's charge ends both ('Xe[+1]')."""
    amounts = {el.name: amount for el, amount in sorted(composition.items(), key=_electronegativity_order)}
    species = "".join(f"{name}{formula_double_format(amount)}" for name, amount in amounts.items())
    isotopes = any(el.name != el.symbol for el in composition.elements)
    if isinstance(composition, Ion):  # the formula as written, charge and isotopes kept ('D[+1]', not H[+1])
        charge = composition.charge
        written = f"{species}[{'+' if charge >= 0 else '-'}{formula_double_format(abs(charge), ignore_ones=False)}]"
        return (written if isotopes else composition.reduced_formula), written
    if not isotopes:
        return composition.reduced_formula, species
    return reduce_formula(amounts)[0], species


def _electronegativity_order(item: tuple[Element, float]) -> tuple[float, str]:
    """Electronegativity first, as pymatgen writes formulas (noble gases, without one, last), then the symbol."""
    electronegativity = item[0].X
    return (electronegativity if math.isfinite(electronegativity) else math.inf, item[0].name)


def element_symbols(texts: list[str]) -> list[str]:
    """Checked element symbols, sorted and unique, from texts such as 'fe', 'O' or 'Fe-O,Si'; FormulaError if not."""
    symbols = set()
    for text in texts:
        for part in re.split(r"[\s,\-]+", str(text)):
            if part:
                symbols.add(_element_symbol(part))
    return sorted(symbols)


def _element_symbol(text: str) -> str:
    try:
        return Element(text.capitalize()).symbol
    except ValueError:
        raise FormulaError(f"not an element: '{text}'") from None
