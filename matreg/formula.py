"""Chemical formulas, normalized by pymatgen: pymatgen reads the elements and amounts; what it would misread is taken
apart here first, by regular expressions (charges, hydrates and other adducts, states such as '(g)'), or refused
(a phase label such as 'TiO2(B)', a number after a space)."""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

from pymatgen.core import Composition, Element
from pymatgen.core.composition import reduce_formula
from pymatgen.core.ion import Ion
from pymatgen.util.string import formula_double_format

from matreg.errors import FormulaError

# pymatgen warns, a formula at a time, that a noble gas has no electronegativity (it sorts elements by it): said once
# here, for that warning alone (a warnings block per formula would show every other warning again at each formula)
warnings.filterwarnings("ignore", message="No Pauling electronegativity", category=UserWarning)
_NO_EXPONENT = r"(?<!\de)(?<!\d\.e)"  # a sign that is no amount's exponent's ('B1e-5', 'B1.e-5': `_MANTISSA`)
# A charge ending a formula, as pymatgen reads it: bracketed ('Fe[+2]', 'Fe[2+]', 'Fe[2]', 'Cl[-]'), a sign then its
# one digit ('Fe+2', pymatgen's notation; not an amount's exponent: 'B1e-05'; 'U-235' and 'Al-6061' are no charge),
# or signs alone ('Fe++', 'AlF4-'; 'Mg2+' as JANAF names its ions: Mg₂⁺).
_CHARGE_SUFFIX = re.compile(rf"(\[[+-]?\d*\]|\[\d+[+-]\]|{_NO_EXPONENT}[+-][1-9]|[+-]+)$")
# A charge ending a formula that no ion has: not a whole number ('FeO[+1.5]', 'FeO[1.5+]', which pymatgen reads as no
# formula), or zero ('Fe[0]', 'Fe[+0]', 'Fe[0-]', which it reads as charge 0; 'Fe+0', as it writes a charge, 'Fe+2',
# which it reads as no formula, after another charge too: 'Fe++0'; 'Fe-0' is an amount of -0 to it)
_DECIMAL_CHARGE = re.compile(r"\[(?:[+-]?(?:\d+\.\d*|\.\d+)|(?:\d+\.\d*|\.\d+)[+-])\]$")
_ZERO_CHARGE = re.compile(rf"(?:\[(?:[+-]?0+|0+[+-])\]|{_NO_EXPONENT}\+0+)$")
_SUBSCRIPT_DIGITS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")  # pasted from a paper or a web page: 'Fe₂O₃'
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻", "0123456789+-")
_TO_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_TO_SUPERSCRIPTS = str.maketrans("0123456789+-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻")
# A superscript charge ending a formula ('Mg²⁺', 'Cl⁻'), read as its bracketed number and sign ('Mg[2+]', 'Cl[-]')
_SUPERSCRIPT_CHARGE = re.compile(r"(?:[⁰¹²³⁴⁵⁶⁷⁸⁹]*[⁺⁻]|⁺+|⁻+)$")  # 'Mg²⁺', 'Cl⁻', 'Mg⁺⁺'
_MINUS_SIGN = str.maketrans("\u2212", "-")  # the minus sign of typeset text ('Cl−'), pasted from a paper
# A single sign right after a digit ending a formula: 'Mg2+' is the ion Mg²⁺ as chemists type it, and Mg₂⁺ as JANAF
# names its ions ('AlF2+'). A sign after a 0 ('C60-': no charge is '0-') or a decimal amount ('Fe0.5+') reads one way.
_AMBIGUOUS_CHARGE = re.compile(r"(?P<base>.*[^\d.]\d*)(?P<charge>[1-9])\s*(?P<sign>[+-])")
# A hyphen then one digit ending a formula: the charge ('SO4-2', PHREEQC's notation) or a label ('Li-6', an isotope;
# 'BaTiO3-3', a sample); not an amount's exponent ('B1e-5'). A sign then a longer number is no charge ('U-235').
_HYPHEN_NUMBER = re.compile(rf"(?P<base>.*[^\s+-]){_NO_EXPONENT}\s*-(?P<charge>[1-9])")
# What pymatgen's Ion reads as a charge anywhere in a formula, which it sums with the charge ending it: a sign and its
# number ('-2' in 'Fe-2O+': FeO[-1]; not an amount's exponent, `_SIGNED_EXPONENT`) and a square-bracketed group ('[2]'
# in 'Fe[2]O+': FeO[+3]; '[OH]' in 'Fe[OH]2+': Fe2[+1], its OH read as no charge)
_CHARGE_WITHIN = re.compile(rf"{_NO_EXPONENT}[+-][.\d]*|\[[^\[\]]*\]?|\]")
_MANTISSA = r"(?<![\d.])(?:\d+\.?\d*|\.\d+)e"  # an amount's number before its exponent ('1', '2.5', '.5')
# An amount written with an exponent's sign, which pymatgen cannot read as a group's ('(Fe)1e-5O': '1e' is no number
# to it) nor with a plus ('Fe1e+5O'), and its Ion reads as a charge, the rest as no number ('Fe1e-5O+', 'Fe1e+5O+')
_SIGNED_EXPONENT = re.compile(_MANTISSA + r"[+-]\d+")
# The state pymatgen's Ion drops from an ion's formula wherever it stands, its first ('Fe(aq)O+' is FeO[+1] to it),
# its only one: written so alone, in lower case and without spaces within (any other is no formula to it)
_DROPPED_STATE = "(aq)"
_SUPERSCRIPT_SIGNS = str.maketrans("⁺⁻\u2212", "+--")  # a superscript sign after plain digits ('SO42⁻') is as ambiguous
# The electron, as JANAF writes its table's formula ('e1-', D-020: electron gas) and its index ('e-'), and as stored
_ELECTRON_FORMULA = "e[-1]"
_ELECTRON = re.compile(r"e1?(?:-|\[-1?\])")
# An adduct's parts: 'CuSO4·5H2O', each part with its count ('3CaO·SiO2'). A period joins parts only where it cannot
# be a decimal point ('Na2O.SiO2'), or before water (or ammonia) of crystallization ending the formula ('CuSO4.5H2O',
# 'CaSO4.0.5H2O': the first period after which that reads); 'Hg0.7Cd0.3Te' uses periods for amounts, and a period
# that may be either ('Na2O.2SiO2' or Na2O0.2SiO2) is refused (_joins_parts).
_ADDUCT = re.compile(r"\s*[·•∙⋅‧*]\s*")  # the middle dot, as papers and pasted formulas write it, or '*'
_WATER = "(?:H2O|D2O|NH3)"  # of crystallization (or ammonia), counted after a period ending the formula
_HYDRATE = re.compile(rf"(?P<base>[^A-Z]*[A-Z].*?)\s*\.\s*(?P<adduct>(?:\d+(?:\.\d+)?)?{_WATER})")
_ZERO_AMOUNT_END = re.compile(r"(?<![\d.])0+$")  # a part ending so ('Li0', '(OH)0') holds none of its last element
_PERIOD = re.compile(r"\s*\.\s*")
# An adduct's part's count: '5', '0.5', or written with an exponent, '5e-1', '1.5e-1' (the number it is, as a group's
# amount is: '(H2O)5e-1')
_COUNT = r"\d+(?:\.\d+)?(?:e[+-]?\d+)?"
# What a part after a period starts with: its count ('2SiO2', '0.5SiO2', '5e-1H2O', as an adduct's part's is read:
# `_MULTIPLIED`), then an element or a group. The matreg that stored a formula read no exponent there ('B4.5e-05D2O'
# is B4.5e-05 D2 O, as matreg writes an amount; 'CaSO4.5e-1H2O' was CaSO4.5e-1 H2 O).
_PART_START = re.compile(rf"(?P<count>{_COUNT})?\s*(?P<first>[A-Z(\[{{])")
_STORED_PART_START = re.compile(r"(?P<count>\d+(?:\.\d+)?)?\s*(?P<first>[A-Z(\[{])")
# Water counted with an exponent ending the formula after a period ('MgCl2.5e-1H2O': MgCl2·5e-1H2O, or Cl2.5e-1 and
# H2O), which no hydrate's period is (`_HYDRATE`: 'B4.5e-05D2O' holds an amount as matreg writes one, `_written`)
_WATER_COUNTED_WITH_EXPONENT = re.compile(rf"(?P<count>\d+e[+-]?\d+){_WATER}")
# A group of elements opening ('(H2O)', '[(NH4)2]'; not a state, '(cr)'), after a count that may be an amount's
# decimals ('MgCl2.6(H2O)': MgCl2·6(H2O), or Cl2.6 and a group of one H2O: `_group_of_one`), and what may follow a
# group of one: the part's end, or a period
_GROUP_OPENING = re.compile(r"[(\[{]+[A-Z]")
_PART_END = re.compile(r"\s*(?:\.|$)")
# A group's brackets, opening and closing, beside a period: pymatgen reads '[]' and '{}' groups as it reads '()'
# ('[SiO2]2'); a formula stored by the matreg that read only '()' so there is read as it read it ('[Fe].5Ni': Fe0.5Ni)
_GROUP_BRACKETS = ("([{", ")]}")
_STORED_GROUP_BRACKETS = ("(", ")")
_SYMBOL = re.compile(r"[A-Z][a-z]*")
# A formula's amounts as pymatgen reads them: an element and its amount ('Fe0', 'Fe1e-400', 'O'), a group's opening
# bracket, and its closing one with the group's amount ('(FeO)0', as pymatgen reads '[]' and '{}' too; an exponent's
# sign too, '(FeO)1e-5', 'Fe1e+5', which pymatgen reads as a decimal: `_decimal_amounts`; not the '*' pymatgen reads in
# an amount, which joins an adduct's parts: 'Fe0*H2O')
_AMOUNT_TOKEN = re.compile(
    r"(?P<symbol>[A-Z][a-z]*)\s*(?P<amount>(?:[-.e\d]|(?<=[\d.]e)\+)*)|(?P<open>[(\[{])"
    r"|[)\]}]\s*(?P<factor>(?:[-.e\d]|(?<=[\d.]e)\+)*)"
)
# A number after a space (not after a period joining parts: 'CuSO4. 5H2O'), which pymatgen gives the element before
# it: 'Na2O 2SiO2' is Na2SiO4 to it, where Na2O·2SiO2 was meant (a space between element groups, as OQMD writes
# 'Al2 O3', reads as none).
_SPACED_NUMBER = re.compile(r"(?<![\s.])\s+(?=\d)")
# A bracketed symbol without amount ending a part: a phase label ('TiO2(B)', bronze-type TiO2; 'VO2 (M)'), which
# pymatgen reads as an element where it is one (TiBO2).
_PHASE_LABEL = re.compile(r"(?P<formula>.*\S)\s*(?P<label>\((?P<phase>[A-Z][a-z]?)\)|\[(?P<bracketed>[A-Z][a-z]?)\])")
_TRAILING_NUMBER = re.compile(r"\d+$")
_AMOUNT_END = re.compile(r"(?<=[A-Za-z)\]}])\d+$")  # an element's or a group's amount ending a text ('MgCl2', '(OH)2')
# An adduct's part and its count (`_COUNT`): '5H2O', '0.5H2O', '5e-1H2O', 'H2O' (an 'e' starts no formula)
_MULTIPLIED = re.compile(rf"({_COUNT})?(.*)", re.DOTALL)
CRYSTAL = "cr"  # a crystal's state, as JANAF names phases
AQUEOUS = "aq"  # an aqueous solute's state
PHASE_OF_STATE = {"s": CRYSTAL, "cr": CRYSTAL, "c": CRYSTAL, "l": "l", "g": "g", "aq": AQUEOUS}  # the phase stored
REFERENCE_TEMPERATURE_K = 298.15  # of thermochemical tables (JANAF's, a lab's standard values)
# A state ending a formula, as thermochemical tables write a species ('CO2(g)', 'H2O (l)', 'NaCl(cr)', 'NaCl(aq)'):
# lower-case words only, 'Fe(S)' (sulfur) and 'NaCl(Cr)' (chromium) being no states (`_PHASE_LABEL`).
_STATE_SUFFIX = re.compile(rf"(?P<formula>.*\S)\s*\((?P<state>{'|'.join(PHASE_OF_STATE)})\)")
# A state in round brackets in any case ('(aq)', '(Aq)', '(AQ)', '(g)', '(L)'), which within a formula is a state where
# it is no element's symbol ('(S)' is sulfur's, '(C)' carbon's, '(Cr)' chromium's: `_refuse_state_within`)
_BRACKETED_STATE = re.compile(rf"\((?P<state>{'|'.join(PHASE_OF_STATE)})\)", re.IGNORECASE)
# A two-letter element symbol as a formula in capitals only writes it ('SI', 'FE'), found where pairs overlap too
# ('CACO3': CA, AC, CO); a lower-case letter (such a formula holds none); where each element after the first starts,
# as matreg reads a formula ('S I O2')
_CAPITALISED_SYMBOL = re.compile(
    "(?=(" + "|".join(element.symbol.upper() for element in Element if len(element.symbol) == 2) + "))"
)
_LOWER_CASE = re.compile(r"[a-z]")
_ELEMENT_START = re.compile(r"(?<=.)(?=[A-Z])")
SHOWN_CAPITALISED = 3  # the formulas a warning of a column in capitals shows, each as read and with its pairs
COMPOSITION_TOLERANCE = 0.02  # of an element's share of the atoms, where a structure's composition is a formula's
REPEATING_DECIMALS = 3  # decimals from which an amount may be a rounded repeating fraction ('0.333': 1/3)
REPEATING_DENOMINATORS = (3, 6, 7, 9, 11, 12)  # of such fractions, smallest first: '0.333' is 1/3, never 4/12
SHORT_DECIMALS = 2  # decimals of the other amounts of a formula whose repeating fractions are read ('Ca0.5', 'Ti1.25')
_FRACTIONAL_AMOUNT = re.compile(r"\.|\de")  # 'Cu1.8S1', 'B1e-05Si1': an amount that is not a whole number


@dataclass(frozen=True)
class Formula:
    """A parsed formula: the pymatgen-reduced formula and what the store needs to know about it.

    Isotopes keep their symbols in `reduced` and `species` ('D2O'), while `elements` names elements ('H', 'O').
    `species` is the formula as written, not reduced ('O', 'O2' and 'O3' are three molecules of one reduced formula).
    `shares` is each element's share of the atoms, by symbol ('D2O': H 2/3, O 1/3), which a structure of the formula
    is checked against (`same_amounts`); it follows from `species` (shared by every parse of the formula: never edit).
    `molar_mass` is what a mole of the formula unit as written weighs, in g/mol (the unit `atoms_per_formula_unit`
    counts: Al4O6 weighs twice Al2O3), as pymatgen weighs it; None for the electron, which pymatgen does not weigh.
    """

    original: str
    reduced: str
    species: str
    elements: tuple[str, ...]
    atoms_per_formula_unit: float
    charge: float | None
    molar_mass: float | None
    shares: dict[str, float] = field(compare=False, repr=False)

    @property
    def chemsys(self) -> str:
        """Chemical system, e.g. 'Al-O'."""
        return "-".join(self.elements)

    @property
    def is_ion(self) -> bool:
        """Whether the formula is an ion's: atoms with a net charge ('Mg[+2]', 'OH-'; not the electron, no atoms)."""
        return bool(self.charge) and self.atoms_per_formula_unit > 0


@lru_cache(maxsize=65536)
def parse_formula(text: str, as_stored: bool = False) -> Formula:
    """Parse a formula ('Al2O3', 'H2O1', 'AlF4-', 'Hg0.7Cd0.3Te', subscript digits as digits: 'Fe₂O₃'); raise
    FormulaError for anything else.

    An ion's charge ends it, bracketed ('Fe[+2]', 'Fe[2+]'), as a sign then its number ('Fe+2'), as signs ('Fe++'), or
    in superscripts ('Fe²⁺', 'SO₄²⁻', 'Mg⁺⁺'); a typeset minus sign ('Cl−') is a minus. A single sign after a digit is
    read as JANAF names its ions, the digits amounts ('AlF2+' is AlF₂⁺, 'Mg2+' Mg₂⁺), which input that may mean the
    charge ('Mg2+' for Mg²⁺) refuses first (`ambiguous_charge`).

    `as_stored` reads a formula the store holds as the matreg that stored it did: by the older rules, without the
    refusals of input added since (a number after a space, a phase label, an amount of none: 'Fe0O'), which only
    records fetched or imported anew meet, and with groups in round brackets alone beside a period (`_joins_parts`:
    'CaCl2·2NH3.[H2O]' was stored as CaCl2·2(NH3.0 H2O), as it is read); else, where they cannot read it, as this one
    reads it ('CaO.[SiO2]2', CaO·[SiO2]2). (A store does not say which matreg stored a formula: one that both read,
    differently, reads as the older one read it, also where this one stored it.)

    The electron ('e-', 'e1-', 'e[-1]', typeset too: 'e−', 'e⁻'), the reference species of ion thermochemistry
    (JANAF's electron gas), which pymatgen has no formula for, is 'e[-1]': no elements, no atoms, charge -1.
    """
    if not as_stored:
        return _read(text, as_stored=False)
    try:
        return _read(text, as_stored=True)
    except FormulaError as older:
        with contextlib.suppress(FormulaError):
            return _read(text, as_stored=False)
        raise older


def _read(text: str, as_stored: bool) -> Formula:
    """`parse_formula`'s reading of a formula, by this matreg's rules or (`as_stored`) by the older rules alone."""
    original = str(text).strip()
    if not original:
        raise FormulaError("empty formula")
    plain = _superscript_charge_read(original.translate(_SUBSCRIPT_DIGITS).translate(_MINUS_SIGN))
    if _ELECTRON.fullmatch(plain):
        return Formula(original, _ELECTRON_FORMULA, _ELECTRON_FORMULA, (), 0.0, -1.0, None, {})
    if not as_stored:
        _refuse_state_within(plain)
    _refuse_charge_of_no_ion(plain, as_stored)
    try:
        composition = _ion(plain, as_stored) if _CHARGE_SUFFIX.search(plain) else _composition(plain, as_stored)
        unknown = [str(el) for el in composition.elements if not isinstance(el, Element)]
        if not (unknown or as_stored):
            _refuse_amounts_of_none(plain, composition, original)
        if unknown or not composition.elements:
            raise FormulaError(f"unparseable formula '{original}': not elements: {', '.join(unknown) or 'none'}")
        _refuse_too_large(composition, original)
        reduced, species = _reduced_and_species(composition)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:  # (an amount too large for a float: 'Al1e400')
        _refuse_unread_amounts(plain, original)
        raise FormulaError(f"unparseable formula '{original}'") from exc
    elements = tuple(sorted({el.symbol for el in composition.elements}))  # deuterium's symbol is H
    charge = float(composition.charge) if isinstance(composition, Ion) else None
    shares = _shares(_symbol_amounts(composition))
    atoms = float(composition.num_atoms)
    return Formula(original, reduced, species, elements, atoms, charge, _molar_mass(composition), shares)


def _refuse_state_within(text: str) -> None:
    """FormulaError for a state written within a formula, not after the whole of it ('Fe(aq)O+', 'FeO(aq)+'), in any
    case ('Fe(Aq)O+', 'Fe(g)O'; `_BRACKETED_STATE`): pymatgen's Ion drops '(aq)' where it stands (`_DROPPED_STATE`:
    FeO[+1], the state lost) and reads another as elements ('Aq', 'A' and 'Q'), or as none; one ending the formula
    ('FeO(aq)') is the caller's to read (`written_state`, lower-case only: 'FeO(Aq)' ends in a phase label)."""
    for state in _BRACKETED_STATE.finditer(text):
        if state.end() < len(text) and not Element.is_valid_symbol(state["state"]):
            dropped = " (pymatgen would read an ion's without it)" if state[0] == _DROPPED_STATE else ""
            raise FormulaError(
                f"'{text}': its state '{state[0]}' is written within the formula{dropped}: write a state after the "
                "whole formula, in lower case, its charge included ('FeO+(aq)', 'Fe+3(aq)')"
            )


def _refuse_charge_of_no_ion(text: str, as_stored: bool) -> None:
    """FormulaError for a charge no ion has: one bracketed with a decimal point ('FeO[+1.5]'), and, unless
    `as_stored`, one of zero ('Fe[0]', 'Fe[+0]', 'Fe+0'), a neutral formula's, which the matreg that stored it read as
    charge 0 where bracketed (as it stores 'Fe+-': Fe[+0]); after another charge ('Fe++0', 'Fe[+2][0]'), a charge
    written twice (`_charge_written_twice`)."""
    if decimal := _DECIMAL_CHARGE.search(text):
        raise FormulaError(
            f"'{text}': its charge '{decimal[0]}' is written with a decimal point: an ion's charge is a whole number "
            "('Fe[+2]', 'Fe+2', 'Fe++')"
        )
    if not as_stored and (zero := _ZERO_CHARGE.search(text)):
        if before := _CHARGE_SUFFIX.search(text[: zero.start()]):
            raise _charge_written_twice(text, text[before.start() :])
        raise FormulaError(
            f"'{text}': its charge '{zero[0]}' is zero, which is no ion's: write the neutral formula without it "
            f"('{text[: zero.start()]}')"
        )


def _refuse_too_large(composition: Composition, original: str) -> None:
    """FormulaError for amounts past the largest float (about 1.8e308): one written past it ('Al1e400', read as
    infinite), or amounts whose atoms or molar mass add up past it ('Fe1e308Ni1e308'), which no value could be per."""
    infinite = sorted(element.name for element, amount in composition.items() if not math.isfinite(amount))
    if infinite:
        why = f"{_the_amounts_of(infinite)} past the largest number (about 1.8e308)"
    elif not math.isfinite(composition.num_atoms):
        why = "its atoms add up past the largest number (about 1.8e308)"
    elif not math.isfinite(_molar_mass(composition)):
        why = "its molar mass adds up past the largest number (about 1.8e308 g/mol)"
    else:
        return
    raise FormulaError(f"unparseable formula '{original}': {why}")


def _the_amounts_of(symbols: list[str]) -> str:
    """'the amount of Fe is', 'the amounts of Fe, Ni are': a reason's start."""
    return f"the amounts of {', '.join(symbols)} are" if len(symbols) > 1 else f"the amount of {symbols[0]} is"


def _refuse_unread_amounts(text: str, original: str) -> None:
    """FormulaError for a formula pymatgen cannot read for its amounts, multiplied out (`_multiplied_out`): one past
    the largest float ('(Fe1e200)1e200', which it reads on as 'Feinf'), in an adduct's part too ('CuSO4·(H2O)1e400')."""
    for piece in _ADDUCT.split(text):
        composition = _multiplied_out(piece)
        if composition is not None:
            _refuse_too_large(composition, original)


def _multiplied_out(text: str) -> Composition | None:
    """A formula's amounts as pymatgen multiplies its groups out (the amounts within a group summed, times the group's
    amount), where one past the largest float is infinite ('(Fe1e200)1e200': Fe), which pymatgen cannot read; None
    where the text does not read so, or is not all elements, amounts and brackets ('Al1e400(g)', 'Fe1e308Ni1e308$':
    what else it holds is the reason it is unparseable)."""
    formula = _CHARGE_SUFFIX.sub("", text)
    tokens = list(_AMOUNT_TOKEN.finditer(formula))
    if "".join(token[0] for token in tokens) != formula:
        return None
    groups: list[dict[str, float]] = [{}]  # the formula's, then each group still open
    try:
        for token in tokens:
            if token["open"]:
                groups.append({})
                continue
            if token["symbol"]:
                amounts, factor = {token["symbol"]: 1.0}, float(token["amount"] or 1)
            elif len(groups) == 1:  # a bracket closing none (')(Al1e400'), not the formula's amounts
                return None
            else:
                amounts, factor = groups.pop(), float(token["factor"] or 1)
            for symbol, amount in amounts.items():
                groups[-1][symbol] = groups[-1].get(symbol, 0.0) + amount * factor
        (amounts,) = groups  # (ValueError for a bracket never closed)
        return Composition(amounts, strict=True)
    except ValueError:  # no number ('1e'), a bracket never closed, no element: pymatgen's to refuse
        return None


def _refuse_amounts_of_none(text: str, composition: Composition, original: str) -> None:
    """FormulaError for an element written with an amount that pymatgen reads as none, without a word
    (`_amounts_of_none`: 'Fe0O' is O to it)."""
    zeros, small = _amounts_of_none(text, composition)
    unknown = [symbol for symbol in zeros if not Element.is_valid_symbol(symbol)]  # ('Xx0O': no Xx, of any amount)
    if unknown:
        raise FormulaError(f"unparseable formula '{original}': not elements: {', '.join(unknown)}")
    why = [f"{_the_amounts_of(list(zeros))} zero ({', '.join(dict.fromkeys(zeros.values()))})"] if zeros else []
    if small:
        why.append(f"{_the_amounts_of(small)} at most {Composition.amount_tolerance:g}, which pymatgen reads as none")
    if why:
        raise FormulaError(f"unparseable formula '{original}': {'; '.join(why)}")


def _amounts_of_none(text: str, composition: Composition) -> tuple[dict[str, str], list[str]]:
    """The elements a formula writes with an amount that pymatgen's composition of it reads as none: written as zero,
    or zero as a float (by element, as written in its adduct's part: `_zero_amounts`), and any other the composition
    lacks or writes as 0 (an amount of at most `Composition.amount_tolerance`, 1e-08: 'Fe1e-9O' is O to it, 'Fe1e-8O'
    Fe0O1)."""
    formula = _CHARGE_SUFFIX.sub("", text)  # ('O0-': no amount '0-')
    zeros: dict[str, str] = {}
    for part in _adduct_parts(text):  # as its periods are read ('Fe0.0.H2O': Fe0.0 and H2O; 'Na2O.0.5SiO2')
        zeros.update(_zero_amounts(part))
    zeros = dict(sorted(zeros.items()))
    kept = {element.name for element, amount in composition.items() if amount > Composition.amount_tolerance}
    return zeros, sorted(set(_SYMBOL.findall(formula)) - kept - zeros.keys())


def _zero_amounts(text: str) -> dict[str, str]:
    """The amounts a formula writes that are zero as floats, as written, by element, sorted: 'Fe0O' -> {'Fe': "'Fe0'"},
    'Fe1e-400O' -> {'Fe': "'Fe1e-400' as a float"}, '(FeO)0' -> {'Fe': "'(FeO)0'", 'O': "'(FeO)0'"}. Its brackets
    pair, as pymatgen (or `_multiplied_out`) read it; a bracket closing none (')0') is quoted from itself."""
    zeros = {}
    opened: list[int] = []  # where each group still open starts
    for token in _AMOUNT_TOKEN.finditer(text):
        if token["open"]:
            opened.append(token.start())
            continue
        start = token.start() if token["symbol"] or not opened else opened.pop()  # an element's amount, or its group's
        amount = token["amount"] or token["factor"]
        try:
            if not amount or float(amount) != 0:
                continue
        except ValueError:  # no number ('1e'): pymatgen's to refuse
            continue
        quoted = f"'{text[start : token.end()]}'" + (" as a float" if Decimal(amount) else "")
        zeros.update(dict.fromkeys([token["symbol"]] if token["symbol"] else _SYMBOL.findall(quoted), quoted))
    return dict(sorted(zeros.items()))


def _superscript_charge_read(text: str) -> str:
    """A formula with its superscript charge, as pasted from a paper or a web page, as pymatgen reads it ('Mg²⁺' as
    'Mg[2+]', 'Cl⁻' as 'Cl[-]', 'Mg⁺⁺' as 'Mg++'); any other as it is."""
    charge = _SUPERSCRIPT_CHARGE.search(text)
    if charge is None:
        return text
    written = charge[0].translate(_SUPERSCRIPTS)
    return text[: charge.start()] + (written if len(written) > 1 and written[0] in "+-" else f"[{written}]")


def ambiguous_charge(text: str) -> str | None:
    """Why a formula's charge reads two ways, naming both and how to write each: a single sign right after a digit
    ('Mg2+' or 'Mg2⁺': the ion Mg²⁺, as chemists type it, or Mg₂⁺, as JANAF names its ions), or a hyphen then a
    digit ('SO4-2': the ion SO₄²⁻, PHREEQC's notation, or SO4 labelled '2', as 'Li-6' and 'BaTiO3-3' are an isotope
    and a sample); None for any other formula ('Mg+2', 'Mg[+2]', 'Mg²⁺', 'Mg₂⁺', 'Hg2++', 'C60-', the electron
    'e1-'), and for one that reads one way at most (`parse_formula` says why not). A source whose notation is JANAF's
    reads it as `parse_formula` does (Mg₂⁺); input that may be a chemist's (a lab sheet) is refused with this reason."""
    original = str(text).strip()
    signs = original.translate(_SUPERSCRIPT_SIGNS)
    if _ELECTRON.fullmatch(signs.translate(_SUBSCRIPT_DIGITS)):
        return None
    if written := _AMBIGUOUS_CHARGE.fullmatch(signs):
        return _charge_or_amount(
            original, written["base"].translate(_SUBSCRIPT_DIGITS), written["charge"], written["sign"]
        )
    if written := _HYPHEN_NUMBER.fullmatch(signs):
        return _charge_or_label(original, written["base"].translate(_SUBSCRIPT_DIGITS), written["charge"])
    return None


def written_state(text: str) -> tuple[str, str | None]:
    """A formula written with its state after it, as thermochemical tables write species, split into the formula and
    the state as written: 'CO2(g)' -> ('CO2', 'g'), 'H2O (l)' -> ('H2O', 'l'), also 's', 'cr', 'c' and 'aq'; any
    other text as it is, with None. Only lower-case words are states: 'Fe(S)' and 'NaCl(Cr)' end in an element or a
    phase label, which `parse_formula` refuses. (JANAF's tables give their phase apart: its fetches never read this.)"""
    original = str(text).strip()
    written = _STATE_SUFFIX.fullmatch(original)
    return (written["formula"], written["state"]) if written else (text, None)


def capitalised_formulas(formulas: Iterable[str]) -> str | None:
    """Why a file's formulas (its formula column's cells, blanks left out) may be written in capitals only, as
    some LIMS, instrument software and spreadsheets export them, which matreg reads a capital at a time as pymatgen
    does ('SIO2' as S I O2, 'ZNO' as Z N O, refused): none holds a lower-case letter (a state after it aside:
    'CO2(g)'; a charge holds no letter), and some hold two capitals in a row that spell an element symbol in the usual
    case (SI: Si, FE: Fe), each shown as read with those pairs (`_capital_pairs`), not with one reading in the usual
    case, which may not be the one meant either ('CACO3': CaCO3, or CaCo3). None for any other file, from its first
    formula with a lower-case letter on (the usual case: the rest is not read).

    No formula tells which is meant ('CO2' is carbon dioxide, or Co2 in capitals), and a file in capitals may hold
    none that its capitals make unreadable ('SIO2', 'TIO2', 'CUO' read as S I O2, T I O2, C U O, and stored): so a file
    of formulas right as written ('CO2', 'HF', 'NO') is warned of too, as a steward would rather read a warning of
    gases than store SiO2 as sulfur iodine oxide unwarned. A file whose formulas hold no such pair ('H2O', 'CH4',
    'PH3') reads one way: none."""
    written: dict[str, None] = {}
    for text in formulas:
        formula = written_state(str(text))[0].strip()
        if _LOWER_CASE.search(formula):
            return None
        written[formula] = None
    other = {formula: pairs for formula in written if (pairs := _capital_pairs(formula))}
    if not other:
        return None
    shown = "; ".join(
        f"'{formula}' is read as {_ELEMENT_START.sub(' ', formula)} ({', '.join(pairs)} may be "
        f"{', '.join(pair.capitalize() for pair in pairs)})"
        for formula, pairs in list(other.items())[:SHOWN_CAPITALISED]
    )
    return (
        f"its formulas are written in capitals only (none of its {len(written)} holds a lower-case letter), and "
        f"{len(other)} of them may be meant otherwise: {shown}; matreg reads each capital as the start of an "
        "element and does not guess which is meant: write the formulas in the usual case and import the file again "
        "(formulas right as written, such as CO2 or HF, need nothing)"
    )


def _capital_pairs(formula: str) -> list[str]:
    """The pairs of capitals in a row of a formula that spell an element symbol in the usual case, overlapping ones
    too, each once ('SIO2' -> SI, 'CACO3' -> CA, AC, CO, 'CO2' -> CO); none for a formula without one ('H2O')."""
    return list(dict.fromkeys(pair[1] for pair in _CAPITALISED_SYMBOL.finditer(formula)))


def _charge_or_amount(original: str, base: str, charge: str, sign: str) -> str | None:
    """Why `original` ('Mg2+') reads as the ion base[sign charge] and as base-and-charge amounts with one sign."""
    amounts, charged = f"{base}{charge}", f"{base}[{sign}{charge}]"
    if not _both_read(original, charged):
        return None
    other = amounts.translate(_TO_SUBSCRIPTS) + sign.translate(_TO_SUPERSCRIPTS)
    return f"ambiguous charge '{original}': {_the_ion(base, charge, sign)} or {other} (write {amounts}[{sign}1])"


def _charge_or_label(original: str, base: str, charge: str) -> str | None:
    """Why `original` ('SO4-2') reads as the ion base[-charge] and as `base` with a label after a hyphen."""
    if not _both_read(base, f"{base}[-{charge}]"):
        return None
    return (
        f"ambiguous charge '{original}': {_the_ion(base, charge, '-')} or {base} with a label after a hyphen (a "
        f"sample's, an isotope's: write {base}, the label in the name or id column)"
    )


def _both_read(*texts: str) -> bool:
    """Whether every text reads as a formula."""
    try:
        for text in texts:
            parse_formula(text)
    except FormulaError:
        return False
    return True


def _the_ion(base: str, charge: str, sign: str) -> str:
    """The ion base[sign charge] as papers write it, and how to write it here ('-' as a sign then a number reads
    two ways: `ambiguous_charge`)."""
    ion = base.translate(_TO_SUBSCRIPTS) + f"{charge if charge != '1' else ''}{sign}".translate(_TO_SUPERSCRIPTS)
    signed = f", {base}{sign}{charge}" if sign == "+" else ""
    return f"the ion {ion} (write {base}[{sign}{charge}]{signed} or {ion})"


def _molar_mass(composition: Composition) -> float:
    """What a mole of `composition` weighs in g/mol: pymatgen's `Composition.weight`, summed as it sums it but in plain
    floats (its weight, a float with a unit, costs 80 µs a formula, longer than the formula's parse)."""
    return sum(amount * float(element.atomic_mass) for element, amount in composition.items())


def atoms_per_unit(formula: str) -> float:
    """Atoms in one formula unit of a stored formula as written (read as stored: `parse_formula`'s `as_stored`)."""
    return parse_formula(formula, as_stored=True).atoms_per_formula_unit


def _composition(text: str, as_stored: bool = False) -> Composition:
    """pymatgen's composition of a neutral formula, an adduct's parts summed ('CuSO4·5H2O', 'CuSO4.5H2O': CuSO4
    and five H2O, pymatgen alone reads the second as CuSO4.5 H2 O; 'CaSO4.0.5H2O': half a water)."""
    parts = _adduct_parts(text, as_stored)
    if len(parts) == 1:
        _refuse_count_of_one_part(parts[0], text)
        return Composition(_decimal_amounts(parts[0]))
    compositions = []
    for part in parts:
        count, formula = _MULTIPLIED.fullmatch(part).groups()
        if count is not None and not _SYMBOL.search(formula):  # ('CaSO4·5.H2O': parts CaSO4, 5 and H2O)
            raise FormulaError(
                f"unparseable formula '{text}': its part '{part}' is a count of no formula (write a count right "
                "before its part's formula: 'CuSO4·5H2O')"
            )
        compositions.append(Composition(_decimal_amounts(formula)) * (float(count) if count else 1))
        if count is not None and not float(count):  # (pymatgen reads it as no part: 'CuSO4·0H2O' would be CuSO4)
            raise FormulaError(f"unparseable formula '{text}': the count of its part {formula} is zero ('{part}')")
    return sum(compositions, Composition())


def _refuse_count_of_one_part(part: str, text: str) -> None:
    """FormulaError for a formula of one part that starts with a count ('5e-1H2O', '2CaO'), which counts an adduct's
    part ('CaSO4·5e-1H2O') and is no amount to pymatgen (it reads amounts after their elements)."""
    count = _MULTIPLIED.fullmatch(part)[1]
    if count is not None:
        raise FormulaError(
            f"unparseable formula '{text}': it starts with a count ('{count}'), as an adduct's part does, and has no "
            "other part (write amounts after their elements, 'H2O', and an adduct's parts joined: 'CaSO4·5e-1H2O')"
        )


def _ion(text: str, as_stored: bool = False) -> Ion:
    """pymatgen's ion of a charged formula ('AlF4-', 'Fe[+2]', 'D1H1+'); FormulaError for one written as an adduct,
    or, unless `as_stored`, with its charge written twice (`_refuse_charge_written_twice`)."""
    if not as_stored:
        _refuse_charge_written_twice(text)
    if len(_adduct_parts(text, as_stored)) > 1:
        raise FormulaError(f"'{text}': an ion is read as one formula, not as an adduct's parts")
    return _IsotopeSafeIon.from_formula(text)


def _decimal_amounts(text: str) -> str:
    """A formula with each amount written with an exponent's sign written as the decimal it is, which pymatgen reads
    (`_SIGNED_EXPONENT`: '(Fe)1e-5O' as '(Fe)0.00001O', 'Fe1e+5O' as 'Fe100000.0O'): the same number (one past the
    largest float without its plus, which pymatgen reads as infinite: 'Al1e400')."""
    return _SIGNED_EXPONENT.sub(_as_decimal, text)


def _as_decimal(number: re.Match[str]) -> str:
    value = float(number[0])
    return format(Decimal(repr(value)), "f") if math.isfinite(value) else number[0].replace("+", "")


def _refuse_charge_written_twice(text: str) -> None:
    """FormulaError for a charge written twice ('Fe[+2]-', 'Fe+2+', 'Fe+[2]') or as signs of both kinds ('Fe+-',
    'Fe++-'), which pymatgen sums (Fe[+1], Fe[+3], Fe[+3], Fe[+0], Fe[+1]) where the formula contradicts itself, or
    for what pymatgen reads as a charge within the formula before it (`_CHARGE_WITHIN`: 'Fe-2O+', 'Fe[OH]2+'), an
    amount's exponent included (`_SIGNED_EXPONENT`: 'Fe1e-5O+', which it cannot read)."""
    charge = _CHARGE_SUFFIX.search(text)
    before = _CHARGE_SUFFIX.search(text[: charge.start()])
    mixed = "+" in charge[0] and "-" in charge[0]  # (signs alone: a bracketed or numbered charge has one sign)
    if before or mixed:
        raise _charge_written_twice(text, text[(before or charge).start() :])
    within = _CHARGE_WITHIN.search(text, 0, charge.start())
    if within:
        raise FormulaError(
            f"'{text}': '{within[0]}' within an ion's formula is read as a charge, which would be summed with its "
            "charge: write the charge once, at the end, and a group in round brackets ('Fe(OH)2+')"
        )
    exponent = _SIGNED_EXPONENT.search(text, 0, charge.start())
    if exponent:
        raise FormulaError(
            f"'{text}': its amount '{exponent[0]}' is written with an exponent, which pymatgen cannot read in an "
            "ion's formula (it reads the exponent's sign as a charge)"
        )


def _charge_written_twice(text: str, written: str) -> FormulaError:
    """The refusal of a formula whose charge is `written` twice or with both signs ('Fe+2+': '+2+')."""
    return FormulaError(
        f"'{text}': its charge is written twice or with both signs ('{written}'), which would be summed: write it once "
        "('Fe[+2]', 'Fe+2', 'Fe++')"
    )


class _IsotopeSafeIon(Ion):
    """pymatgen's Ion, given its composition's amounts by isotope: Ion.__init__ reads a Composition through dict(),
    whose lookup by element symbol sums isotopes into their element (Ion.from_formula('D1H1+') is D2H2[+1], 4 atoms);
    its items are handed over as they are (DH[+1], 2 atoms)."""

    def __init__(self, composition: Composition | dict, charge: float = 0.0, **kwargs) -> None:
        amounts = dict(composition.items()) if isinstance(composition, Composition) else composition
        super().__init__(amounts, charge, **kwargs)


def _adduct_parts(text: str, as_stored: bool = False) -> list[str]:
    """The parts of an adduct, with their counts ('CuSO4.5H2O': 'CuSO4', '5H2O'): split at '·' (or a dot like it) and
    '*', and at the periods that join parts (_joins_parts); a formula of one part alone; an ion's charge on none of
    them ('Fe2.5(OH)2+': 'Fe2.5(OH)2'). FormulaError for a number after a space (_refuse_spaced_number) or a part
    ending in a phase label (_refuse_phase_label), unless `as_stored`, or for a period that reads two ways, each
    quoting the formula as written, its charge included ('Na2O.2SiO2+')."""
    parts = []
    for piece in _ADDUCT.split(_CHARGE_SUFFIX.sub("", text)):
        if not as_stored:
            _refuse_spaced_number(piece, text)
        hydrate = _hydrate(piece)
        if hydrate and not as_stored:
            _refuse_decimal_point_before_count(hydrate["base"], hydrate["adduct"], text)
        base = hydrate["base"] if hydrate else piece
        start = 0
        for period in _PERIOD.finditer(base):
            if _joins_parts(base[start : period.start()], base[period.end() :], text, as_stored):
                parts.append(base[start : period.start()])
                start = period.end()
        parts += [base[start:], hydrate["adduct"]] if hydrate else [base[start:]]
    if not as_stored:
        for part in parts:
            _refuse_phase_label(part, text)
    return parts


def _hydrate(piece: str) -> re.Match[str] | None:
    """A piece read as a hydrate (`_HYDRATE`: 'CuSO4.5H2O'); None where its base would end in an amount of zero: the
    period is a decimal point ('Li0.5H2O' is Li0.5H2O, no hydrate of 'Li0', as in `_joins_parts`)."""
    hydrate = _HYDRATE.fullmatch(piece)
    return None if hydrate is None or _ZERO_AMOUNT_END.search(hydrate["base"]) else hydrate


def _refuse_spaced_number(piece: str, text: str) -> None:
    """FormulaError for a piece between an adduct's separators with a number after a space, which pymatgen would
    read as an amount of the element before it ('Na2O 2SiO2': Na2SiO4) where an adduct's count may be meant."""
    spaced = _SPACED_NUMBER.search(piece)
    if spaced:
        before, after = piece[: spaced.start()], piece[spaced.end() :]
        raise FormulaError(
            f"ambiguous formula '{text}': the number after a space ('{after}') is an adduct's count ({before}·{after}) "
            "or an amount of the element before it; write '·' between an adduct's parts, or no space before an amount"
        )


def _refuse_decimal_point_before_count(before: str, part: str, text: str) -> None:
    """FormulaError for a period before a part's decimal count whose whole part may be decimals of the amount before
    it ('Co1.8.2H2O': Co1·8.2H2O or Co1.8·2H2O; 'Na2O.1.5SiO2', 'CaSO4.1.5e-1H2O', 'H0.5.5NH3'); a whole part of zeros
    is none ('CaSO4.0.5H2O' is CaSO4·0.5H2O)."""
    whole, point, rest = part.partition(".")
    if point and whole.strip("0") and (before[-1:].isalnum() or before[-1:] in _GROUP_BRACKETS[1]):
        raise FormulaError(
            f"ambiguous formula '{text}': its period before '{part}' joins an adduct's parts ({before}·{part}) or "
            f"is a decimal point ({before}.{whole}·{rest}); write '·' between an adduct's parts"
        )


def _refuse_phase_label(part: str, text: str) -> None:
    """FormulaError for a part ending in a bracketed symbol without amount ('TiO2(B)', 'Fe(S)'): a phase label, which
    pymatgen would read as one more atom (TiBO2, FeS); the formula it says to write keeps an ion's charge ('TiO2(B)+':
    'TiO2+')."""
    label = _PHASE_LABEL.fullmatch(part)
    if label:
        neutral = _CHARGE_SUFFIX.sub("", text)
        charge = text[len(neutral) :] if neutral.endswith(part) else ""  # (written after the formula's last part)
        formula, phase = label["formula"] + charge, label["phase"] or label["bracketed"]
        raise FormulaError(
            f"'{text}': '{label['label']}' at the end of a formula reads as a phase label, not as one more atom; write "
            f"the formula without it ('{formula}') and the phase in a lab mapping's name_column, as JANAF names phases "
            f"('<compound>, {phase} ({formula})')"
        )


def _joins_parts(before: str, after: str, text: str, as_stored: bool) -> bool:
    """Whether the period between `before` and `after` joins an adduct's parts rather than being a decimal point;
    FormulaError where it may be either: before a count and an element or group, after a letter or a group's bracket
    ('Na2O.2SiO2' or Na2O0.2SiO2, 'Fe.5Ni.5' or Fe0.5Ni.5, '[Fe].5Ni' or [Fe]0.5Ni), or after a digit where the
    decimal would write an element twice ('Al2O3.6SiO2': Al2O3·6SiO2 or Al2O3.6 Si O2; 'CaSO4.5e-1H2O', a count
    with an exponent, which no hydrate's period is: `_HYDRATE`) or be followed by a group of one (`_group_of_one`:
    'MgCl2.6(H2O)': MgCl2·6(H2O) or Cl2.6 and a group of one H2O; not 'Cu2.5(OH)2') or by water counted with an
    exponent (`_water_counted_with_exponent`: 'MgCl2.5e-1H2O'); before a decimal count whose whole part may be
    decimals ('Na2O.1.5SiO2': `_refuse_decimal_point_before_count`). `as_stored`: groups in round brackets alone
    (`_STORED_GROUP_BRACKETS`), counts without an exponent (`_STORED_PART_START`), and neither a decimal count, a
    group nor such water refused."""
    (opening, closing), part_start = (
        (_STORED_GROUP_BRACKETS, _STORED_PART_START) if as_stored else (_GROUP_BRACKETS, _PART_START)
    )
    start = part_start.match(after)
    if start is None or not (start["first"].isalpha() or start["first"] in opening):
        return False  # a decimal point ('YBa2Cu3O6.9', 'Fe.5' at the end), or pymatgen's to refuse
    count = start["count"] or ""
    if "." in count and not as_stored:
        _refuse_decimal_point_before_count(before, after, text)
    if not count or "." in count:
        return True  # no number reads 'O.Si' or 'O.0.5Si'
    last = before[-1:]
    twice = set(_SYMBOL.findall(before)) & set(_SYMBOL.findall(after))
    grouped = not as_stored and _group_of_one(after, start.start("first"))
    counted = not as_stored and _water_counted_with_exponent(before, after)
    if last.isdigit() and (not (twice or grouped or counted) or float(_TRAILING_NUMBER.search(before)[0]) == 0):
        return False  # 'Hg0.7Cd0.3Te'; 'Pb0.99Se0.99Sn0.01Se0.01' (a part ending in 'Se0' would hold no Se)
    if not (last.isalnum() or last in closing):
        return False
    decimal, fix = _decimal_reading(before, after, twice, counted)
    raise FormulaError(
        f"ambiguous formula '{text}': its period before '{after}' joins an adduct's parts ({before}·{after}) or is "
        f"a decimal point ({decimal}); write '·' between an adduct's parts, or {fix}"
    )


def _group_of_one(part: str, at: int) -> bool:
    """Whether `part` holds, from `at` on, one bracketed group of elements without an amount that ends it or its piece
    before a period ('(H2O)', '[(NH4)2]'), as an adduct's part counted before it is written ('MgCl2.6(H2O)'); not a
    group of an amount or with more after it, which a decimal amount's is ('Li1.5Al0.5Ge1.5(PO4)3', 'Cu2.5(OH)2',
    'Co2.5(CO3)(OH)'), nor a state ('(cr)')."""
    if not _GROUP_OPENING.match(part, at):
        return False
    depth = 0
    for index in range(at, len(part)):
        depth += (part[index] in _GROUP_BRACKETS[0]) - (part[index] in _GROUP_BRACKETS[1])
        if depth == 0:
            return _PART_END.match(part, index + 1) is not None
    return False  # a bracket never closed: pymatgen's to refuse


def _water_counted_with_exponent(before: str, after: str) -> bool:
    """Whether the period between `before` and `after` may be the decimal point of an amount written with an exponent
    before water (or ammonia) ending the formula, or join its parts: that water counted so ('MgCl2.5e-1H2O':
    MgCl2·5e-1H2O, or Cl2.5e-1 and H2O); not where that amount is written as matreg writes one ('B4.5e-05D2O', which
    `_written` writes for B0.000045D2O), nor where the number before it is a count ('CaSO4·2.5e-1H2O')."""
    water, amount = _WATER_COUNTED_WITH_EXPONENT.fullmatch(after), _AMOUNT_END.search(before)
    if water is None or amount is None:
        return False
    decimal = f"{amount[0]}.{water['count']}"
    value = float(decimal)
    return not (math.isfinite(value) and f"{formula_double_format(value)}" == decimal)


def _decimal_reading(before: str, after: str, twice: set[str], counted: bool) -> tuple[str, str]:
    """The formula a period `_joins_parts` refuses is as a decimal point, and how to write that reading."""
    if not before[-1:].isdigit():
        return f"{before}0.{after}", "a 0 before a decimal point"
    if twice:
        return f"{before}.{after}, with {', '.join(sorted(twice))} twice", "each element once for a decimal amount"
    if counted:
        return f"{before}.{after}, an amount written with an exponent", "a decimal amount without an exponent"
    return f"{before}.{after}, a group after a decimal amount", "the group before a decimal amount"


def _reduced_and_species(composition: Composition) -> tuple[str, str]:
    """The reduced formula (pymatgen's, which folds isotopes into their element: 'H2O' for D2O) and the formula as
    written, both with isotope symbols kept and reading back as these amounts (`_reads_back`); an ion's charge ends
    both ('Xe[+1]')."""
    amounts = {el.name: amount for el, amount in sorted(composition.items(), key=_electronegativity_order)}
    isotopes = any(el.name != el.symbol for el in composition.elements)
    if isinstance(composition, Ion):
        return _reduced_ion(composition, amounts, isotopes), _written(amounts, composition.charge)
    if not isotopes:
        return composition.reduced_formula, _written(amounts)
    return _reads_back(reduce_formula(amounts)[0]), _written(amounts)


def _reduced_ion(ion: Ion, amounts: dict[str, float], isotopes: bool) -> str:
    """An ion's formula reduced with its charge: pymatgen's ('OH[-1]', 'NH4[+1]') where that is the same ion in a
    whole charge, else reduced by the common divisor of the amounts and the charge ('C2[-1]', where pymatgen writes
    C[-0.5], and N2[-1], which it writes N3[-1.5]; isotopes kept: 'D2[+1]' of D4[+2]; decimal amounts as written:
    'Fe0.5O[+1]', which pymatgen writes 'Fe0.5O1+1', no formula to it: `_reduced_by_pymatgen`)."""
    if not isotopes and _reduced_by_pymatgen(ion):
        formula, factor = ion.get_reduced_formula_and_factor()
        charge = ion.charge / factor
        if float(charge).is_integer() and Composition(formula) * factor == ion.composition:
            return formula + _charge_text(charge)
    divisor = _common_divisor([*amounts.values(), ion.charge])
    return _written({name: amount / divisor for name, amount in amounts.items()}, ion.charge / divisor)


def _reduced_by_pymatgen(ion: Ion) -> bool:
    """Whether pymatgen reduces an ion's formula: its amounts whole, as `Ion.get_reduced_formula_and_factor` tells
    them (within `Composition.amount_tolerance`); of any other it gives its formula with the charge ('Fe0.5O1+1')."""
    return all(abs(amount - round(amount)) < Composition.amount_tolerance for amount in ion.values())


def _written(amounts: dict[str, float], charge: float | None = None) -> str:
    """A formula of these amounts in their order, no 1s but where it reads back so (`_reads_back`); a charge as
    '[+1]'."""
    formula = _reads_back("".join(f"{name}{formula_double_format(amount)}" for name, amount in amounts.items()))
    return formula if charge is None else formula + _charge_text(charge)


def _reads_back(formula: str) -> str:
    """A formula of amounts as written, with the 1 of its last amount written where it would end in water read as a
    hydrate's (`_hydrate`: 'Ca1.5H2O' is Ca·5H2O): 'Ca1.5H2O1', which reads as Ca1.5·H2O (as pymatgen writes a
    fractional formula's 1s), stored and read again as the same atoms."""
    return f"{formula}1" if _hydrate(formula) else formula


def _charge_text(charge: float) -> str:
    return f"[{'+' if charge >= 0 else '-'}{formula_double_format(abs(charge), ignore_ones=False)}]"


def _common_divisor(numbers: list[float]) -> int:
    """The greatest common divisor of whole numbers (1 when one is not whole)."""
    if not all(float(number).is_integer() for number in numbers):
        return 1
    return math.gcd(*(int(number) for number in numbers))


def _electronegativity_order(item: tuple[Element, float]) -> tuple[float, str]:
    """Electronegativity first, as pymatgen writes formulas (noble gases, without one, last), then the symbol."""
    electronegativity = item[0].X
    return (electronegativity if math.isfinite(electronegativity) else math.inf, item[0].name)


@lru_cache(maxsize=65536)
def composition_key(reduced: str) -> str:
    """One text per composition, to link formulas by: a reduced formula with fractional amounts in whole numbers, as
    pymatgen writes formulas ('Te0.5Se0.5' -> 'TeSe', 'Cu1.8S1' -> 'Cu9S5', 'Fe0.947O1' -> 'Fe947O1000'), worked out
    exactly from the amounts as written, so a dopant stays ('Zn0.9999Co0.0001O1' -> 'Zn9999CoO10000', never ZnO:
    pymatgen's whole formula rounds it away). Amounts written as rounded repeating fractions are those fractions where
    no other amount is a long decimal (`_read_as_fractions`: 'La0.666667Sr0.333333MnO3' -> 'La2SrMn3O9'). A formula
    with isotopes (pymatgen would fold D into H), or one pymatgen cannot read (an ion), or of amounts past the largest
    float (`parse_formula` refuses them), as it is. (A stored one of an amount that pymatgen reads as none, which
    `parse_formula` refuses since: 'Zn0.5Co0O0.5', keeps the key it had, ZnO's.)"""
    if not _FRACTIONAL_AMOUNT.search(reduced):
        return reduced
    try:
        composition = Composition(reduced)
    except (ValueError, KeyError):
        return reduced
    if any(element.name != element.symbol for element in composition.elements):
        return reduced
    if not all(map(math.isfinite, composition.values())):  # an amount past the largest float ('Al1e400')
        return reduced
    try:
        return Composition(_whole_amounts(composition)).reduced_formula
    except OverflowError:  # whole amounts past the largest float ('Fe0.5Ni1.7e308': Fe1Ni34e307)
        return reduced


def material_state(phase: Any) -> str:
    """The state a record's phase states: a crystal's 'cr' where it states that or no phase (ice is 'H2O' and
    'H2O(cr)'), else the phase ('l', 'g', 'aq', JANAF's 'cr,l')."""
    return phase if isinstance(phase, str) and phase.strip() else CRYSTAL


def takes_ion_bounds(formula: Formula, phase: Any) -> bool:
    """Whether a record's values are held to its properties' `ion_bounds` (`PropertySpec.bounds_of`): an ion's
    ('Mg[+2]', 'OH-': `Formula.is_ion`) and any aqueous solute's (phase 'aq': 'MgSO4(aq)'), whose standard partial
    molar entropy and heat capacity, relative to H+(aq)'s, may be negative as an aqueous ion's are."""
    return formula.is_ion or material_state(phase) == AQUEOUS


def material_key(formula: str, formula_original: str, phase: Any) -> tuple[str, str]:
    """What one record id names, of its formula (reduced, and as written) and phase: a crystal's composition
    (`composition_key`: Fe0.95O is Fe19O20, Fe4O6 is Fe2O3), else its molecule, the species as written (O2 and O3
    are two gases, H2O2 and HO two liquids, OH and HO one), in its state (`material_state`)."""
    state = material_state(phase)
    if state == CRYSTAL:
        return composition_key(formula), state
    return parse_formula(formula_original, as_stored=True).species, state


def material_text(formula: str, formula_original: str, phase: Any) -> str:
    """A record's material as thermochemical tables write species: a crystal's reduced formula, with the phase it
    states ('Fe2O3', 'NaCl(cr)'), else its formula as written in its state ('O3(g)', 'H2O(l)')."""
    if material_state(phase) == CRYSTAL:
        return f"{formula}({CRYSTAL})" if phase == CRYSTAL else formula
    return f"{formula_original}({phase})"


def _whole_amounts(composition: Composition) -> dict[str, int]:
    """A composition's amounts (by element) as the smallest whole numbers in their exact ratio: each amount as the
    exact decimal it was written as (float noise of sums beyond 10 significant digits dropped), or, where every
    fractional amount is a rounded repeating fraction or a short decimal (`_read_as_fractions`), those fractions."""
    written = {element.symbol: Decimal(f"{amount:.10g}") for element, amount in composition.element_composition.items()}
    amounts = _read_as_fractions(written) or {symbol: Fraction(amount) for symbol, amount in written.items()}
    scale = math.lcm(*(amount.denominator for amount in amounts.values()))
    whole = {symbol: int(amount * scale) for symbol, amount in amounts.items()}
    divisor = math.gcd(*whole.values())
    return {symbol: amount // divisor for symbol, amount in whole.items()}


def _read_as_fractions(written: dict[str, Decimal]) -> dict[str, Fraction] | None:
    """The amounts with each rounded repeating fraction read as that fraction ('La0.666667Sr0.333333MnO3': 2/3 and 1/3,
    'Ba1Mg0.333Nb0.667O3'), where every other amount has at most SHORT_DECIMALS decimals; None where any has more and
    is no such fraction (measured amounts: a steel's Fe0.636 is not 7/11), or where none is one."""
    fractions = {symbol: _repeating_fraction(amount) for symbol, amount in written.items()}
    if not any(fractions.values()):
        return None
    long_decimals = [symbol for symbol, amount in written.items() if -amount.as_tuple().exponent > SHORT_DECIMALS]
    if any(fractions[symbol] is None for symbol in long_decimals):
        return None
    return {symbol: fractions[symbol] or Fraction(amount) for symbol, amount in written.items()}


def _repeating_fraction(amount: Decimal) -> Fraction | None:
    """The fraction whose decimals repeat (a denominator of REPEATING_DENOMINATORS: thirds, sixths, sevenths, ninths,
    elevenths, twelfths) that an amount of at least REPEATING_DECIMALS decimals writes rounded or cut short ('0.333333',
    '0.6667', '0.666', '2.667'); None for any other ('0.334', '0.5')."""
    decimals = -amount.as_tuple().exponent
    if decimals < REPEATING_DECIMALS:
        return None
    exact, unit = Fraction(amount), Fraction(1, 10**decimals)
    for denominator in REPEATING_DENOMINATORS:
        fraction = Fraction(round(exact * denominator), denominator)
        repeats = any(fraction.denominator % prime == 0 for prime in (3, 7, 11))  # its decimals never end
        if repeats and -unit / 2 <= fraction - exact < unit:  # rounded to the nearest, or cut short
            return fraction
    return None


def alphabetical_formula(text: str) -> str:
    """A formula as OPTIMADE and NOMAD write `chemical_formula_reduced`: reduced to the smallest whole numbers (none
    of pymatgen's special formulas), elements (isotopes as theirs) in alphabetical order, no 1s ('SiO2' -> 'O2Si',
    'Li2O2' -> 'LiO', 'O2' -> 'O', 'Te0.5Se0.5' -> 'SeTe', fractions as `composition_key` reads them:
    'Zn0.9999Co0.0001O' -> 'CoO10000Zn9999'); FormulaError if it is not a neutral formula."""
    formula = parse_formula(text)
    if formula.charge is not None:
        raise FormulaError(f"'{text}' is an ion: a structure's formula has no charge")
    composition = Composition(formula.species).element_composition
    if not all(float(amount).is_integer() for amount in composition.values()):
        composition = Composition(_whole_amounts(composition))
    amounts = composition.get_el_amt_dict()
    divisor = _common_divisor(list(amounts.values()))
    return _written({symbol: amounts[symbol] / divisor for symbol in sorted(amounts)})


def same_composition(formula: Formula, composition: Composition) -> bool:
    """Whether a composition (a structure's, its atoms counted by occupancy) is the formula's (`same_amounts`)."""
    return same_amounts(formula, _symbol_amounts(composition))


def same_amounts(formula: Formula, amounts: Mapping[str, float]) -> bool:
    """Whether atoms in these amounts, by element symbol (a structure's, counted by occupancy), are of the formula:
    each element's share of the atoms (isotopes as their element's; one absent counting 0) within
    COMPOSITION_TOLERANCE of the formula's, which allows a cell of several formula units, or a refined Fe0.95O for FeO,
    but not Fe3O4 for Fe2O3 (an adduct as its parts summed, an ion without charge)."""
    if not formula.elements or not amounts:
        return False  # the electron (no structure is one), or no atoms
    own, other = formula.shares, _shares(amounts)
    return all(abs(own.get(symbol, 0) - other.get(symbol, 0)) <= COMPOSITION_TOLERANCE for symbol in own | other)


def _symbol_amounts(composition: Composition) -> dict[str, float]:
    """A composition's atoms by element symbol (deuterium's is H; an ion's or oxidation state's none)."""
    amounts: dict[str, float] = {}
    for species, amount in composition.items():
        amounts[species.symbol] = amounts.get(species.symbol, 0) + amount
    return amounts


def _shares(amounts: Mapping[str, float]) -> dict[str, float]:
    """Each element's share of the atoms in these amounts."""
    total = sum(amounts.values())
    return {symbol: amount / total for symbol, amount in amounts.items()}


def amounts_formula(amounts: Mapping[str, float]) -> str:
    """A formula of atoms in these amounts, by element symbol, as a message names a structure's composition: elements
    in pymatgen's order, amounts to two decimals (a smaller one as it is): 'Eu5.48Al12Si12Cl8O48'."""
    ordered = sorted(((Element(symbol), amount) for symbol, amount in amounts.items()), key=_electronegativity_order)
    return _written({element.symbol: round(amount, 2) or amount for element, amount in ordered})


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


def reduced_formula(text: Any, as_stored: bool = False) -> str | None:
    """A formula as written, reduced as a materials row stores it (`parse_formula`, read `as_stored` where it is
    compared with a stored one); None when it cannot be read (no text, or no formula): the caller says what that
    means where it reads it."""
    if not isinstance(text, str):
        return None
    try:
        return parse_formula(text, as_stored).reduced
    except FormulaError:
        return None
