"""The one place values change unit: a pint registry with counting units for atoms and formula units."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pint

from matreg.errors import UnitError

_DEFINITIONS = (
    "atom = [atom] = atoms",
    "formula_unit = mol / avogadro_number = fu = f_u",
    "cell = [cell] = cells",
    "@alias bohr_magneton = muB = μB = uB",
)

ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
for _definition in _DEFINITIONS:
    ureg.define(_definition)


@dataclass(frozen=True)
class AtomCounts:
    """How many atoms a formula unit and a cell hold: needed to turn molar or per-cell values into per-atom ones."""

    per_formula_unit: float | None = None
    per_cell: float | None = None


@lru_cache(maxsize=512)
def parse_unit(text: str) -> pint.Unit:
    """Parse a unit expression such as 'kJ/mol', 'meV/atom' or 'Å^3/atom'; raise UnitError if unknown."""
    cleaned = text.strip().replace("Å", "angstrom").replace("^", "**")
    if not cleaned:
        raise UnitError("empty unit")
    if cleaned.lower() in {"dimensionless", "1", "-"}:
        return ureg.dimensionless
    try:
        unit = ureg.parse_units(cleaned)
    except (pint.errors.PintError, AttributeError, SyntaxError, TypeError, ValueError) as exc:
        raise UnitError(f"unknown unit '{text}'") from exc
    return unit


def convert(value: float, from_unit: str, to_unit: str, counts: AtomCounts = AtomCounts()) -> float:
    """Convert `value` from one unit to another, bridging per-formula-unit/per-cell and per-atom with `counts`."""
    source, target = parse_unit(from_unit), parse_unit(to_unit)
    quantity = ureg.Quantity(value, source)
    for bridged in _bridges(quantity, counts):
        if bridged.check(target.dimensionality):
            return float(bridged.to(target).magnitude)
    raise UnitError(_why_not(from_unit, to_unit, quantity, target, counts))


def _bridges(quantity: pint.Quantity, counts: AtomCounts):
    """The quantity itself, then divided or multiplied by atoms per formula unit and per cell."""
    yield quantity
    ratios = []
    if counts.per_formula_unit:
        ratios.append(ureg.Quantity(counts.per_formula_unit, "atom/formula_unit"))
    if counts.per_cell:
        ratios.append(ureg.Quantity(counts.per_cell, "atom/cell"))
    for ratio in ratios:
        yield quantity / ratio
        yield quantity * ratio


def _why_not(from_unit: str, to_unit: str, quantity, target, counts: AtomCounts) -> str:
    needs_atoms = "[atom]" in str(target.dimensionality) or "[atom]" in str(quantity.dimensionality)
    if needs_atoms and counts == AtomCounts():
        return f"cannot convert '{from_unit}' to '{to_unit}' without the number of atoms"
    return f"cannot convert '{from_unit}' to '{to_unit}' (incompatible dimensions)"
