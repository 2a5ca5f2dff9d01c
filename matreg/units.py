"""The one place values change unit: a pint registry with counting units for atoms and formula units.

A value per atom, per formula unit, per cell or per mass converts into any of the others with its record's atom counts
and molar mass (`AtomCounts`).

Units are also read as papers and instrument exports write them ('kJ mol-1', 'g cm-3', a minus sign '−'), by a
preprocessor of the registry.
"""

from __future__ import annotations

import math
import pickle
import re
import tokenize
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pint

from matreg.errors import UnitError

_DEFINITIONS = (
    "atom = [atom] = atoms",
    "formula_unit = mol / avogadro_number = fu = f_u",
    "cell = [cell] = cells",
    "mol_atom = avogadro_number * atom = mole_of_atoms",  # thermochemistry's kJ/mol-atom (kJ/g-atom): per atom
    "@alias bohr_magneton = muB = μB = µB = uB",  # Greek mu and the micro sign (µB is no microbyte)
    "@alias hartree = Ha = Hartree",  # pint knows Eh and hartree only ('mHa' is a millihartree)
    "@alias torr = Torr",
    "@alias bar = Bar",  # VASP's OUTCAR writes its elastic moduli and stresses in kBar
    "emu = 1e-3 * ampere * meter ** 2",  # a magnetometer's moment, the CGS emu: emu/g is A*m^2/kg (not pint's erg/G)
    "@alias angstrom = ang = Ang = Angstrom",  # as VASP and ASE users write it ('Å' is read too)
    "@alias bohr = Bohr",
    "@alias ohm = Ohm",  # as spreadsheets capitalise it: 'uOhm cm', 'mOhm cm'
)


def _registry(**options: object) -> pint.UnitRegistry:
    """pint's registry with matreg's definitions, pint's parsed definitions kept in pint's disk cache (0.2 CPU s at
    every start without it).

    A cache that cannot be made (no writable cache folder) or read (a file cut short by another process writing it,
    which pint does not do atomically) only costs the uncached start.
    """
    try:
        registry = pint.UnitRegistry(cache_folder=":auto:", **options)
    except (OSError, EOFError, pickle.UnpicklingError):
        registry = pint.UnitRegistry(**options)
    for definition in _DEFINITIONS:
        registry.define(definition)
    return registry


@lru_cache(maxsize=1)
def _exact_registry() -> pint.UnitRegistry:
    """pint's registry reading the numbers of its definitions as fractions (1e-3 as 1/1000), of which conversion
    factors are exact: made when the first factor is worked out (0.1 s), not at import."""
    return _registry(autoconvert_offset_to_baseunit=True, non_int_type=Fraction)


# Minus signs of papers and PDFs (U+2212, en dash): pint drops them, reading 'kJ mol−1' as kJ*mol. '℃' fails pint's
# parser. The product signs of word processors (dot and bullet operators, a bullet), their slashes (division and
# fraction slashes) and LaTeX's braces: pint drops them, reading 'W/m⋅K' as W*K/m and 'J/{mol K}' as J*K/mol.
_SPELLINGS = str.maketrans(
    {
        "\u2212": "-",
        "\u2013": "-",
        "\u2103": "°C",
        "\u22c5": "·",
        "\u2219": "·",
        "\u2022": "·",
        "\u2215": "/",
        "\u2044": "/",
        "{": "(",
        "}": ")",
    }
)
# A square root, as fracture toughness is written ('MPa√m', 'MPa*sqrt(m)'): pint drops '√', reading MPa*m.
_SQUARE_ROOT = re.compile(r"(?:√\s*|(?<![\w.])sqrt(?=\())(\()?\s*([^\W\d]\w*)\s*(?(1)\))")
# The exponent one half written on or as a fraction ('MPa m1/2', 'MPa·m^1/2', 'MPa·m½'): pint reads m**1, then fails on
# '/2'.
_HALF = re.compile(r"(?<=[^\W\d_])(?:\*\*)?(-?)(?:1/2|½)(?![\w.])")
# Every sign pint reads; it drops others silently ('MPa∛m' is MPa*m, 'm,s' a millisecond, 'J/mol#K' J/mol).
_UNREAD_SIGN = re.compile(r"[^\w\s*/()+\-^.°·⁻%‰×]")
# Texts pint would read as units no scientist meant: 'at%' (percent times a technical atmosphere), 'mol%' (mole times
# percent), and 'a.u.' and 'au' (atomic or arbitrary units, to pint a year times a dalton and the astronomical unit).
_NO_UNIT_REASONS = (
    (
        re.compile(r"(?<![\w.])(?:at|wt|mol|vol)\.?\s*(?:%|percent)(?!\w)"),
        "a percent of atoms, weight, moles or volume is no unit: write % where the property says of what",
    ),
    (
        re.compile(r"(?<![\w.])a\.?\s?u\.?(?![\w.])"),
        "atomic or arbitrary units name no one unit: write hartree, bohr, ...",
    ),
)
# The formula unit and the entropy unit (cal/(mol*K)) as papers abbreviate them ('eV/f.u.', 'e.u.'): pint's names
# ('fu', 'eu') have no periods.
_ABBREVIATED_WITH_PERIODS = re.compile(r"(?<![\w.])([fe])\.u\.?(?![\w.])")
# A mole of atoms, as thermochemistry tables write it ('kJ/mol-atom', the older 'kJ/g-atom', 'J/g-atom.K'): pint
# would subtract.
_MOLE_OF_ATOMS = re.compile(r"(?<![\w.])(?:mol|g)-atoms?(?!\w)")
# Thermal conductivity in W/mK (mW/mK, kW/mK): pint reads watts per millikelvin, a unit nobody writes.
_PER_METRE_KELVIN = re.compile(r"(?<![\w.])([kmµμ]?W)/mK(?![\w.])")
# A unit and the kelvin written as one name after a slash ('J/molK', 'W/cmK', 'W/m2K'): split where pint knows the unit
# but not the whole name ('J/mK' stays joules per millikelvin).
_UNIT_KELVIN = re.compile(r"(?<=/)(\s*)([^\W\d_²³]+)((?:\*\*|\^)?[1-9]|[²³])?K(?![\w.])")
# The kelvin and the mole written as one name after a slash, as in 'J/Kmol': kelvin times mole. (Nowhere else: the
# kilomole is 'kmol', and 'Kmol' alone is refused, not guessed.)
_KELVIN_MOLE = re.compile(r"(?<=/)(\s*)Kmol(?![\w.])")
# 'at' (pint's technical atmosphere) standing alone after a slash, as in 'eV/at' and 'Å^3/at': an atom.
_PER_AT = re.compile(r"(?<=/)(\s*)at\.?(?![\w.])")
# A unit text with one slash and no parentheses whose denominator is several units ('J/mol*K', 'J/mol K', 'W/m·K',
# 'W/m^2*K', and with a period or a hyphen for the product: 'J/mol.K', 'W/m-K'): one denominator, as scientists write
# it (NIST's WebBook writes J/mol*K), where pint would multiply by each unit after the first (or subtract). A hyphen
# before a number is an exponent written on, not a product; a denominator with an exponent of its own ('J/mol K-1',
# 'J/mol-1') is left as pint reads it.
_DENOMINATOR_UNIT = r"°?[^\W\d]\w*(?:(?:\*\*|\^)[1-9]\d*|[²³])?"
_DENOMINATOR_PRODUCT = r"\s*[*·]\s*|\s+|[.-]"
_UNIT_PRODUCT = rf"{_DENOMINATOR_UNIT}(?:(?:{_DENOMINATOR_PRODUCT}){_DENOMINATOR_UNIT})+"
_ONE_DENOMINATOR = re.compile(rf"\s*(?P<numerator>[^/()]+?)\s*/\s*(?P<denominator>{_UNIT_PRODUCT})\s*")
# The same products in parentheses or before any slash ('J/(mol-K)', 'μΩ-cm', 'kW-h', 'mA-h/g'), where pint would
# subtract.
_PRODUCT_ALONE = re.compile(rf"(?:^|(?<=\())\s*({_UNIT_PRODUCT})\s*(?=[/)]|$)")
# A period for the product between units with their exponents written on ('J.mol-1.K-1', 'g.cm-3'); not in a number.
_PRODUCT_PERIOD = re.compile(r"(?<=[^\W_])\.(?=°?[^\W\d_])")
# A unit name with its exponent written on: 'mol-1', 'cm-3', 'cm3', 'm0.5' (not 'a0' or 'cm_1', pint's own names).
_WRITTEN_ON_EXPONENT = re.compile(r"(?<![\w.])([^\W\d_]+)(-?(?:[1-9]\d*(?:\.\d+)?|0\.\d+))(?![\w.])")


class _MisreadUnit(ValueError):
    """A unit text pint would read wrong or not at all, with the reason (`parse_unit` reports it)."""


def _exponent_written_out(match: re.Match[str]) -> str:
    """'mol-1' as 'mol**-1', unless pint knows the whole name ('ln10')."""
    if ureg.parse_unit_name(match[0]):
        return match[0]
    return f"{match[1]}**{match[2]}"


def _unit_times_kelvin(match: re.Match[str]) -> str:
    """'molK' as 'mol*K' and 'm2K' as 'm2*K' (`_UNIT_KELVIN`), unless pint knows the whole name ('mK') or not the unit
    before the K."""
    whole_name = f"{match[2]}K" if match[3] is None else ""
    if (whole_name and ureg.parse_unit_name(whole_name)) or not ureg.parse_unit_name(match[2]):
        return match[0]
    return f"{match[1]}{match[2]}{match[3] or ''}*K"


def _product(units: str) -> str:
    """Units written one after another ('mol K', 'mol-K', 'm^2·K') joined by '*'."""
    return "*".join(re.findall(_DENOMINATOR_UNIT, units))


def _one_denominator(text: str) -> str:
    """'J/mol*K' as 'J/(mol*K)' (`_ONE_DENOMINATOR`); any other text as it is."""
    match = _ONE_DENOMINATOR.fullmatch(text)
    if match is None:
        return text
    return f"{match['numerator']}/({_product(match['denominator'])})"


def _refuse_misread(text: str) -> None:
    """Raise `_MisreadUnit` for a sign pint would drop or a text it would read as a unit nobody meant."""
    for pattern, reason in _NO_UNIT_REASONS:
        if pattern.search(text):
            raise _MisreadUnit(reason)
    if sign := _UNREAD_SIGN.search(text):
        raise _MisreadUnit(f"cannot read '{sign[0]}'")


def _spelled_for_pint(text: str) -> str:
    """A unit as papers and instrument exports write it, in pint's spelling: 'J mol−1 K-1' -> 'J mol**-1 K**-1',
    'J.mol-1.K-1' -> 'J*mol**-1*K**-1', 'kJ/mol-atom' -> 'kJ/mol_atom', 'eV/f.u.' -> 'eV/fu', 'J/mol*K', 'J/mol-K'
    and 'J/(mol-K)' -> 'J/(mol*K)', 'J/molK' -> 'J/(mol*K)', 'J/Kmol' -> 'J/(K*mol)', 'W/mK' -> 'W/(m*K)', 'eV/at' ->
    'eV/atom', 'MPa√m' -> 'MPa m**0.5'; `_MisreadUnit` for a text pint would misread ('MPa∛m', 'at%')."""
    # pint's own ' per ' is read first, as pint reads it, so that 'Å³ per cell' is no product of three units.
    text = text.translate(_SPELLINGS).replace(" per ", "/")
    text = _HALF.sub(r"**\g<1>0.5", _SQUARE_ROOT.sub(r" \2**0.5", text))
    _refuse_misread(text)
    text = _ABBREVIATED_WITH_PERIODS.sub(r"\1u", _MOLE_OF_ATOMS.sub("mol_atom", text))
    text = _UNIT_KELVIN.sub(_unit_times_kelvin, _PER_METRE_KELVIN.sub(r"\1/(m*K)", text))
    text = _PRODUCT_PERIOD.sub("*", _PER_AT.sub(r"\1atom", _KELVIN_MOLE.sub(r"\1K*mol", text)))
    text = _one_denominator(_PRODUCT_ALONE.sub(lambda match: _product(match[0]), text))
    return _WRITTEN_ON_EXPONENT.sub(_exponent_written_out, text)


ureg = _registry(autoconvert_offset_to_baseunit=True)
ureg.preprocessors.append(_spelled_for_pint)


class AtomCounts(NamedTuple):
    """How many atoms a formula unit and a cell hold, and what a mole of formula units weighs (g/mol): needed to turn
    molar or per-cell values into per-atom ones, and values per mass (J/(g*K)) into molar or per-atom ones.

    (`convert_array` takes them as arrays, one count per value.)
    """

    per_formula_unit: float | None = None
    per_cell: float | None = None
    molar_mass: float | None = None


# What pint's parser raises on text it cannot read ('kJ mol -1', an unclosed 'J/(mol K'; ArithmeticError: 'eV/0',
# 'eV/1e-400'; KeyError: 'eV^0', a unit to the power 0)
_PARSE_FAILURES = (
    pint.errors.PintError,
    ArithmeticError,
    AssertionError,
    AttributeError,
    KeyError,
    SyntaxError,
    TypeError,
    ValueError,
    tokenize.TokenError,
)


@lru_cache(maxsize=512)
def parse_unit(text: str) -> pint.Unit:
    """Parse a unit expression such as 'kJ/mol', 'meV/atom', 'Å^3/atom' or 'kJ mol-1'; raise UnitError if unknown."""
    cleaned = text.strip().replace("Å", "angstrom").replace("^", "**")
    if not cleaned:
        raise UnitError("empty unit")
    if cleaned.lower() in {"dimensionless", "1", "-"}:
        return ureg.dimensionless
    try:
        unit = ureg.parse_units(cleaned)
    except _MisreadUnit as exc:
        raise UnitError(f"unknown unit '{text}' ({exc})") from exc
    except _PARSE_FAILURES as exc:
        raise UnitError(f"unknown unit '{text}'") from exc
    return unit


NO_COUNTS = AtomCounts()


def convert(value: float, from_unit: str, to_unit: str, counts: AtomCounts = NO_COUNTS) -> float:
    """Convert `value` from one unit to another, bridging per-atom, per-formula-unit, per-cell and per-mass values
    with `counts`."""
    per_fu, per_cell, molar_mass = (np.array([count or np.nan], dtype=float) for count in counts)
    values = np.array([value], dtype=float)
    converted = float(convert_array(values, from_unit, to_unit, per_fu, per_cell, molar_mass)[0])
    if math.isnan(converted) and not math.isnan(value):
        raise UnitError(missing_count_message(from_unit, to_unit, counts.molar_mass))
    return converted


def convert_array(
    values: np.ndarray,
    from_unit: str,
    to_unit: str,
    per_formula_unit: np.ndarray,
    per_cell: np.ndarray,
    molar_mass: np.ndarray,
    differences: bool = False,
) -> np.ndarray:
    """Convert many values between two units at once, with each value's atom counts and molar mass in g/mol (NaN:
    unknown); `differences`: the values are differences of values (uncertainties), converted without an offset unit's
    offset (0.5 degC apart is 0.5 K apart, not 273.65 K).

    A value whose conversion needs an atom count or a molar mass that is unknown or zero becomes NaN; UnitError when
    the units cannot be converted at all.
    """
    plan = _convertible(from_unit, to_unit)
    if plan is None:  # an offset unit (degC, degF): not a plain factor; its differences are in its delta unit
        unit_of = _difference_unit if differences else parse_unit
        return np.asarray(ureg.Quantity(values, unit_of(from_unit)).to(unit_of(to_unit)).magnitude, dtype=float)
    factor, *exponents = plan
    result = _times(values, factor)
    for counts, exponent in zip((per_formula_unit, per_cell, molar_mass), exponents, strict=True):
        if exponent:  # 1 or -1: times the count or divided by it (times count ** -1 rounds twice)
            result = result * _known(counts) if exponent > 0 else result / _known(counts)
    return result


def _times(values: np.ndarray, factor: Fraction | float) -> np.ndarray:
    """`values` times an exact `factor`, correctly rounded where it is a whole number or one over a whole number that
    floats hold exactly (kg/m^3 to g/cm^3 divides by 1000: 2330 kg/m^3 is 2.33 g/cm^3, not 2.3300000000000005)."""
    if isinstance(factor, Fraction) and factor.numerator == 1 and factor.denominator <= 2**53:
        return values / float(factor.denominator)
    return values * float(factor)


def _difference_unit(text: str) -> pint.Unit:
    """The unit of a difference of two quantities in a unit: pint's delta_degC of degC, the unit itself where it has
    no offset."""
    unit = parse_unit(text)
    return (ureg.Quantity(0.0, unit) - ureg.Quantity(0.0, unit)).units


def same_unit(text: str, other: str) -> bool:
    """True when two spellings name one unit ('g/cm^3' and 'g cm-3'); False when either is no unit pint knows."""
    try:
        return parse_unit(text) == parse_unit(other)
    except UnitError:
        return False


@lru_cache(maxsize=256)
def is_molar(unit: str) -> bool:
    """True for a unit per mole (of formula units): 'kJ/mol', 'J/(mol*K)'."""
    return parse_unit(unit).dimensionality.get("[substance]", 0) == -1


# The mole of a molar unit as written ('kJ/mol', 'J/(mol*K)'), not 'mol-1' nor 'mol-atom'
_MOLE = re.compile(r"(?<![\w.])mol(?![\w.-])")


def per_mole_of_atoms(unit: str) -> str:
    """A molar unit per mole of atoms instead of formula units, spelled as `parse_unit` reads it: 'kJ/mol' ->
    'kJ/mol-atom', 'J/(mol*K)' -> 'J/(mol-atom*K)'; in pint's spelling where the mole is written otherwise
    ('kJ mol-1' -> 'kJ/mole_of_atoms')."""
    per_atoms = parse_unit(unit) * ureg.mol / ureg.mol_atom
    spelled = _MOLE.sub("mol-atom", unit)
    return spelled if parse_unit(spelled) == per_atoms else f"{per_atoms:~C}"


@lru_cache(maxsize=64)
def scale_factor(from_unit: str, to_unit: str) -> float:
    """The factor between two units of one dimension (lengths, say); UnitError if they differ by more than one."""
    plan = _convertible(from_unit, to_unit)
    if plan is None or plan[1:] != (0, 0, 0):
        raise UnitError(f"'{from_unit}' to '{to_unit}' is not a plain factor")
    return float(plan[0])


def _convertible(from_unit: str, to_unit: str) -> tuple[Fraction | float, int, int, int] | None:
    """The unit plan of `_plan`; UnitError when the units cannot be converted."""
    plan = _plan(from_unit, to_unit)
    if isinstance(plan, str):
        raise UnitError(plan)
    return plan


_MISSING_COUNT = "without the number of atoms"


def conversion_problem(from_unit: str, to_unit: str) -> str | None:
    """Why a value in `from_unit` can never be converted to `to_unit`, whatever its record's atom counts and molar
    mass (another dimension, a unit pint does not know); None where it can."""
    plan = _plan(from_unit, to_unit)
    return plan if isinstance(plan, str) else None


def missing_count_message(from_unit: str, to_unit: str, molar_mass: float | None = None) -> str:
    """Why a value could not be converted: the conversion needs the molar mass of its formula unit (`molar_mass`: its
    record's, None or NaN where unknown) or an atom count that its record does not give."""
    plan = _plan(from_unit, to_unit)
    if isinstance(plan, tuple) and plan[3] and not (molar_mass is not None and molar_mass > 0):
        return f"cannot convert '{from_unit}' to '{to_unit}' without the molar mass of the formula unit"
    return f"cannot convert '{from_unit}' to '{to_unit}' {_MISSING_COUNT}"


def is_missing_count_message(reason: str) -> bool:
    """True for a reason of `missing_count_message`."""
    return reason.endswith(_MISSING_COUNT)


def _known(counts: np.ndarray) -> np.ndarray:
    """Atom counts (or molar masses) with zeros as unknown (NaN)."""
    return np.where(counts > 0, counts, np.nan)


# Exponents of (atoms per formula unit, atoms per cell) tried in turn; the last two go per cell -> per formula unit
# and back (AFLOW's heat capacity in k_B/cell to J/(mol*K)). Each is tried without the molar mass, then with it (per
# mass -> per mole of formula units: a DSC's J/(g*K) to J/(mol*K)) and its inverse.
_COUNT_BRIDGES = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1), (1, -1), (-1, 1))
_BRIDGES = tuple((*counts, molar_mass) for molar_mass in (0, 1, -1) for counts in _COUNT_BRIDGES)


@lru_cache(maxsize=4096)
def _plan(from_unit: str, to_unit: str) -> tuple[Fraction | float, int, int, int] | str | None:
    """How to convert between two units, worked out once per pair with pint.

    (factor, e_fu, e_cell, e_mass): result = value * factor * (atoms per formula unit)**e_fu * (atoms per cell)**e_cell
    * (molar mass in g/mol)**e_mass, the factor exact (a Fraction; a float where an exponent is not whole: m**0.5);
    None for offset units (converted by pint each time); a message when the units cannot be converted.
    """
    try:
        source, target = parse_unit(from_unit), parse_unit(to_unit)
    except UnitError as exc:
        return str(exc)
    try:
        return _bridged(source, target, from_unit, to_unit)
    except pint.errors.PintError as exc:  # pint parses a logarithmic unit in a product ('eV dB'), then fails on it
        return f"cannot convert '{from_unit}' to '{to_unit}' ({exc})"


def _bridged(
    source: pint.Unit, target: pint.Unit, from_unit: str, to_unit: str
) -> tuple[Fraction | float, int, int, int] | str | None:
    """`_plan` of two units pint parsed: the first bridge that makes the source the target's dimension, its factor
    worked out in `_exact_registry`."""
    exact, one = _exact_registry(), Fraction(1)
    per_fu, per_cell = exact.Quantity(one, "atom/formula_unit"), exact.Quantity(one, "atom/cell")
    molar_mass = exact.Quantity(one, "g/mol")  # of formula units
    for bridge in _BRIDGES:
        per_fu_exponent, per_cell_exponent, molar_mass_exponent = bridge
        if molar_mass_exponent and (source.dimensionless or target.dimensionless):
            continue  # a plain number (log Kf) is no molal or molar-mass unit times a molar mass
        quantity = exact.Quantity(one, str(source)) * per_fu**per_fu_exponent * per_cell**per_cell_exponent
        quantity = quantity * molar_mass**molar_mass_exponent
        if quantity.check(target.dimensionality):
            if bridge == (0, 0, 0) and ureg.Quantity(0.0, source).to(target).magnitude:
                return None
            return quantity.to(str(target)).magnitude, *bridge
    return f"cannot convert '{from_unit}' to '{to_unit}' (incompatible dimensions{_symbol_note(from_unit, target)})"


# Bare symbols written for another unit than the one pint reads: 'A^3' for Å^3 (where Å is not at hand), 'C' for °C
# (named when the target unit has no electric current, the dimension they bring in); VASP's 'kB', the kilobar, and the
# 'kB' of an entropy in kB/atom, Boltzmann's constant, which pint reads as the kilobyte.
_MISREAD_SYMBOLS = {
    "A": "'A' is the ampere: write Å or angstrom",
    "C": "'C' is the coulomb: write °C or degC",
    "kB": "'kB' is the kilobyte: write kbar for the kilobar, k_B for Boltzmann's constant",
}
_CURRENT_SYMBOLS = ("A", "C")
_MISREAD_SYMBOL = re.compile(rf"(?<![A-Za-z_])({'|'.join(_MISREAD_SYMBOLS)})(?![A-Za-z_])")  # one standing alone


def _symbol_note(text: str, target: pint.Unit) -> str:
    """A note for each misread symbol standing alone in the unit `text` (the ampere's and coulomb's where the target
    has no current)."""
    symbols = _MISREAD_SYMBOL.findall(text)
    if target.dimensionality.get("[current]"):
        symbols = [symbol for symbol in symbols if symbol not in _CURRENT_SYMBOLS]
    return "".join(f"; {_MISREAD_SYMBOLS[symbol]}" for symbol in dict.fromkeys(symbols))


def declared_unit(text: str) -> pint.Unit:
    """A unit a YAML file declares, parsed as pydantic reports a wrong value (with the file, line and key): ValueError
    if unknown."""
    try:
        return parse_unit(text)
    except UnitError as exc:
        raise ValueError(str(exc)) from None
