"""Chemical formulas, normalized by pymatgen (never parsed by hand)."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

from pymatgen.core import Composition, Element
from pymatgen.core.ion import Ion

from matreg.errors import FormulaError

_CHARGE_SUFFIX = re.compile(r"(\[[+-]?\d*\]|[+-]+)$")


@dataclass(frozen=True)
class Formula:
    """A parsed formula: the pymatgen-reduced formula and what the store needs to know about it."""

    original: str
    reduced: str
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
            reduced = composition.reduced_formula
    except (ValueError, KeyError, TypeError) as exc:
        raise FormulaError(f"unparseable formula '{original}'") from exc
    unknown = [str(el) for el in composition.elements if not isinstance(el, Element)]
    if unknown or not composition.elements:
        raise FormulaError(f"unparseable formula '{original}': not elements: {', '.join(unknown) or 'none'}")
    elements = tuple(sorted(el.symbol for el in composition.elements))
    charge = float(composition.charge) if isinstance(composition, Ion) else None
    return Formula(original, reduced, elements, float(composition.num_atoms), charge)


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
