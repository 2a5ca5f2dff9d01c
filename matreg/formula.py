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
# An adduct's parts: 'CuSO4·5H2O'. With a period, only water (or ammonia) of crystallization ending the formula
# ('CuSO4.5H2O', 'CaSO4.0.5H2O': the first period after which that reads), as 'Hg0.7Cd0.3Te' uses periods for amounts.
_ADDUCT = re.compile(r"\s*[·•∙*]\s*")
_HYDRATE = re.compile(r"(?P<base>.+?)\.(?P<adduct>(?:\d+(?:\.\d+)?)?(?:H2O|D2O|NH3))")
_MULTIPLIED = re.compile(r"(\d+(?:\.\d+)?)?(.*)", re.DOTALL)  # '5H2O', '0.5H2O', 'H2O'


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
            composition = Ion.from_formula(original) if _CHARGE_SUFFIX.search(original) else _composition(original)
            unknown = [str(el) for el in composition.elements if not isinstance(el, Element)]
            if unknown or not composition.elements:
                raise FormulaError(f"unparseable formula '{original}': not elements: {', '.join(unknown) or 'none'}")
            reduced, species = _reduced_and_species(composition)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:  # (an amount too large for a float: 'Al1e400')
        raise FormulaError(f"unparseable formula '{original}'") from exc
    elements = tuple(sorted({el.symbol for el in composition.elements}))  # deuterium's symbol is H
    charge = float(composition.charge) if isinstance(composition, Ion) else None
    return Formula(original, reduced, species, elements, float(composition.num_atoms), charge)


def _composition(text: str) -> Composition:
    """pymatgen's composition of a neutral formula, an adduct's parts summed ('CuSO4·5H2O', 'CuSO4.5H2O': CuSO4
    and five H2O, pymatgen alone reads the second as CuSO4.5 H2 O; 'CaSO4.0.5H2O': half a water)."""
    hydrate = None if _ADDUCT.search(text) else _HYDRATE.fullmatch(text)
    first, *others = [hydrate["base"], hydrate["adduct"]] if hydrate else _ADDUCT.split(text)
    if not others:
        return Composition(first)
    parts = [Composition(first)]
    for part in others:
        count, formula = _MULTIPLIED.fullmatch(part).groups()
        parts.append(Composition(formula) * (float(count) if count else 1))
    if not all(part.num_atoms for part in parts):  # 'Li0.5H2O' is no hydrate of 'Li0'
        raise ValueError(f"an empty part in {text!r}")
    return sum(parts, Composition())


def _reduced_and_species(composition: Composition) -> tuple[str, str]:
    """The reduced formula (pymatgen's, which folds isotopes into their element: 'H2O' for D2O) and the formula as
    written, both with isotope symbols kept; an ion's charge ends both ('Xe[+1]')."""
    amounts = {el.name: amount for el, amount in sorted(composition.items(), key=_electronegativity_order)}
    isotopes = any(el.name != el.symbol for el in composition.elements)
    if isinstance(composition, Ion):
        return _reduced_ion(composition, amounts, isotopes), _written(amounts, composition.charge)
    if not isotopes:
        return composition.reduced_formula, _written(amounts)
    return reduce_formula(amounts)[0], _written(amounts)


def _reduced_ion(ion: Ion, amounts: dict[str, float], isotopes: bool) -> str:
    """An ion's formula reduced with its charge: pymatgen's ('OH[-1]', 'NH4[+1]') where that is the same ion in a
    whole charge, else reduced by the common divisor of the amounts and the charge ('C2[-1]', where pymatgen writes
    C[-0.5], and N2[-1], which it writes N3[-1.5]; isotopes kept: 'D2[+1]' of D4[+2])."""
    formula, factor = ion.get_reduced_formula_and_factor()
    charge = ion.charge / factor
    if not isotopes and float(charge).is_integer() and Composition(formula) * factor == ion.composition:
        return formula + _charge_text(charge)
    divisor = _common_divisor([*amounts.values(), ion.charge])
    return _written({name: amount / divisor for name, amount in amounts.items()}, ion.charge / divisor)


def _written(amounts: dict[str, float], charge: float | None = None) -> str:
    """A formula of these amounts in their order, no 1s; a charge as '[+1]'."""
    formula = "".join(f"{name}{formula_double_format(amount)}" for name, amount in amounts.items())
    return formula if charge is None else formula + _charge_text(charge)


def _charge_text(charge: float) -> str:
    return f"[{'+' if charge >= 0 else '-'}{formula_double_format(abs(charge), ignore_ones=False)}]"


def _common_divisor(numbers: list[float]) -> int:
    """The greatest common divisor of whole numbers (1 when one is not whole)."""
    if not all(float(number).is_integer() for number in numbers):
        return 1
    return math.gcd(*(int(number) for number in numbers)) or 1


def _electronegativity_order(item: tuple[Element, float]) -> tuple[float, str]:
    """Electronegativity first, as pymatgen writes formulas (noble gases, without one, last), then the symbol."""
    electronegativity = item[0].X
    return (electronegativity if math.isfinite(electronegativity) else math.inf, item[0].name)


@lru_cache(maxsize=65536)
def whole_formula(reduced: str) -> str:
    """A reduced formula with fractional amounts in the smallest whole numbers, pymatgen's ('Te0.5Se0.5' -> 'TeSe',
    'Cu1.8S1' -> 'Cu9S5'): one composition, one name; any other formula (isotopes too: pymatgen would fold D into H)
    as it is."""
    if "." not in reduced:
        return reduced
    try:
        composition = Composition(reduced)
    except (ValueError, KeyError):
        return reduced
    if any(element.name != element.symbol for element in composition.elements):
        return reduced
    return composition.get_integer_formula_and_factor()[0]


def alphabetical_formula(text: str) -> str:
    """A formula as OPTIMADE and NOMAD write `chemical_formula_reduced`: reduced to the smallest whole numbers (none
    of pymatgen's special formulas), elements (isotopes as theirs) in alphabetical order, no 1s ('SiO2' -> 'O2Si',
    'Li2O2' -> 'LiO', 'O2' -> 'O', 'Te0.5Se0.5' -> 'SeTe'); FormulaError if it is not a neutral formula."""
    formula = parse_formula(text)
    if formula.charge is not None:
        raise FormulaError(f"'{text}' is an ion: a structure's formula has no charge")
    composition = Composition(formula.species).element_composition
    if not all(float(amount).is_integer() for amount in composition.values()):
        composition = Composition(composition.get_integer_formula_and_factor()[0])
    amounts = composition.get_el_amt_dict()
    divisor = _common_divisor(list(amounts.values()))
    return _written({symbol: amounts[symbol] / divisor for symbol in sorted(amounts)})


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
