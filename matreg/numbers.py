"""Numbers read from text: a finite float (`parse_number`) or a value with the standard uncertainty its text states
(`parse_value`, `Measured`), in the notations papers and lab files write them ('1.2×10⁻³', '5.431(2)', '3.2 ± 0.1'),
each text that is none refused with the reason; the decimal comma of a lab file's cells read as a point
(`with_points`). What a value that reads is worth (its unit, bounds, uncertainty's sign) is `matreg.validation`'s."""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

from matreg.errors import clipped

SHOWN_CHARS = 80  # the most characters of a value's text a reason quotes (validation's reasons too)


def quoted(value: Any) -> str:
    """A value's text as a reason quotes it (here and in validation's reasons): at most SHOWN_CHARS characters."""
    return clipped(str(value), SHOWN_CHARS)


def parse_number(value: Any, decimal: str = ".") -> float | str:
    """A finite float, or the reason the value is not one (quoting it as written). `decimal`: the decimal separator a
    text is written with (`with_points`)."""
    if type(value) is float and math.isfinite(value):  # what JSON sources give: no text round trip
        return value
    text = with_points(str(value).strip(), decimal).replace("\u2212", "-")  # a typeset minus sign, pasted from a paper
    if "_" in text or not text.isascii():  # float() reads '1_0' as 10 and other scripts' digits: no lab typo passes
        return _non_numeric(value)
    number = _float(text, value)
    return _non_numeric(value) if number is None else number


def _float(text: str, value: Any) -> float | str | None:
    """The finite float Python reads in an ASCII text ('1.5', '-2e3'), the reason where what it reads is not finite
    or is 0 where the text is not ('1e-400': `_lost_to_zero`), None where it reads none."""
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number):  # infinite, NaN, or an integer beyond a float's range (400 digits)
        return _not_finite(value)
    return _too_near_zero(value) if _lost_to_zero(text, number) else number


def _lost_to_zero(text: str, number: float) -> bool:
    """True where a number's text is not zero but what it reads as is: nearer 0 than the smallest float (5e-324),
    which float() reads as 0 without a word ('1e-400'). A subnormal float (1e-320) is read, as written."""
    return number == 0 and re.search("[1-9]", re.split("[eE]", text, maxsplit=1)[0]) is not None


def _non_numeric(value: Any, why: str = "") -> str:
    return f"non-numeric value '{quoted(value)}'{why}"


def _not_finite(value: Any) -> str:
    return f"not a finite number: '{quoted(value)}'"


def _too_near_zero(value: Any, what: str = "") -> str:
    """Why `value` (or `what` of it: 'the uncertainty of ') is refused: it would be stored as 0."""
    return f"too near 0 for a float: {what}'{quoted(value)}' would be stored as 0 (the smallest float is 5e-324)"


class Measured(NamedTuple):
    """A value with the standard uncertainty its text states (`parse_value`), both in the value's unit."""

    value: float
    uncertainty: float


# The signs of typeset numbers in ASCII: the minus sign, the multiplication signs of a power of ten, the plus-minus
# sign; a superscript exponent is written after '^' (`_SUPERSCRIPT`).
_NUMBER_SIGNS = str.maketrans({"\u2212": "-", "\u00d7": "*", "\u00b7": "*", "\u22c5": "*", "\u00b1": "+/-"})
_SUPERSCRIPT = re.compile("[⁺⁻]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+")
_SUPERSCRIPT_DIGITS = str.maketrans("⁺⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "+-0123456789")
_DECIMAL = r"[+-]?(?:\d+\.?\d*|\.\d+)"  # a number's digits, without an exponent
_UNSIGNED = r"(?:\d+\.?\d*|\.\d+)"
_EXPONENT = r"[eE][+-]?\d+"
_PLUS_MINUS = r"\s*\+/?-\s*"  # '±' (as '+/-'), '+/-' or '+-'
# A power of ten as papers write it: '×10⁻³', 'x10^-3', '·10−3'. An exponent written on needs its sign: '×103' may
# be 10³ whose superscript was lost.
_TIMES_TEN = r"\s*[*x]\s*10(?:\^\s*|(?=[+-]))(?P<power>[+-]?\d+)"
_NOTATIONS = (
    re.compile(rf"(?P<value>{_DECIMAL}){_TIMES_TEN}"),  # 1.2×10⁻³
    # concise: 5.431(2), 1250(30), 12.3(1.5) (GUM 7.2.2: in the value's units), 5.431(2)×10⁻³, 5.431(2)e-3
    re.compile(rf"(?P<value>{_DECIMAL})\s*\((?P<concise>{_UNSIGNED})\)(?:{_TIMES_TEN}|[eE](?P<e>[+-]?\d+))?"),
    # 3.2 ± 0.1, 1.2e-3 ± 1e-4: an exponent on both sides or on none (`_NOTATION_DOUBTS`)
    re.compile(
        rf"(?P<value>{_DECIMAL}(?P<e_value>{_EXPONENT})?){_PLUS_MINUS}(?P<uncertainty>{_UNSIGNED}(?(e_value){_EXPONENT}))"
    ),
    re.compile(
        rf"\(\s*(?P<value>{_DECIMAL}){_PLUS_MINUS}(?P<uncertainty>{_UNSIGNED})\s*\)(?:{_TIMES_TEN}|[eE](?P<e>[+-]?\d+))"
    ),
)
# Why a text that is none of the notations is no value, where it looks like one (else: non-numeric, no more said)
_NOTATION_DOUBTS = (
    (re.compile(r"[*x]\s*10\s*\^?\s*$"), "a power of ten without its exponent (1.2\u00d710\u207b\u00b3, 1.2x10^-3)"),
    (re.compile(rf"^{_PLUS_MINUS}|{_PLUS_MINUS}$"), "'\u00b1' without a number on each side"),
    (
        re.compile(rf"{_PLUS_MINUS}[^(]*[*x]\s*10"),
        "a power of ten after '\u00b1' (of the uncertainty alone, or of both? not guessed): write the value and its "
        "uncertainty in parentheses before it, (1.2 \u00b1 0.1)\u00d710\u207b\u00b3",
    ),
    (re.compile(rf"^{_DECIMAL}(?:{_EXPONENT})?\s*[-\u2013]\s*{_DECIMAL}$"), "a range, not one value"),
    (
        re.compile(rf"^{_DECIMAL}(?:{_EXPONENT})?{_PLUS_MINUS}{_UNSIGNED}(?:{_EXPONENT})?$"),
        "an exponent on one side of '\u00b1' (of that side alone, or of both? not guessed): write it on both, "
        "1.2e-3 \u00b1 0.1e-3, or after parentheses, (1.2 \u00b1 0.1)e-3",
    ),
)


def parse_value(value: Any, decimal: str = ".") -> float | Measured | str:
    """A value as a source gives it: a finite float where it states no uncertainty (a number, or its text: '1.5',
    '1.2×10⁻³', '1.2 × 10−3', '1.2x10^-3'), a `Measured` where its text states its standard uncertainty as
    experimentalists and crystallographers write it ('5.431(2)': 5.431 ± 0.002; '1250(30)'; '3.2 ± 0.1', '3.2+/-0.1',
    '3.2 +- 0.1'; '(1.2 ± 0.1)×10⁻³'), or the reason it is no value: a text that reads two ways is not guessed at
    ('1.2×10', '5-10'). An uncertainty beyond a float is infinite (refused as the value is harmonized). `decimal`:
    the decimal separator a text is written with (`with_points`; a reason quotes the text as written)."""
    if type(value) is float and math.isfinite(value):  # what JSON sources give: no text round trip
        return value
    typeset = with_points(str(value).strip(), decimal)
    text = _SUPERSCRIPT.sub(lambda power: "^" + power[0].translate(_SUPERSCRIPT_DIGITS), typeset)
    text = text.translate(_NUMBER_SIGNS)
    if "_" in text or not text.replace("\u2013", "-").isascii():  # as parse_number; an en dash may make a range
        return _non_numeric(value)
    number = _float(text, value)
    if number is not None:
        return number
    read = _notation(text)
    if read is None:
        return _non_numeric(value, _doubt(text))
    measured = _measured(read)
    if not math.isfinite(measured.value if isinstance(measured, Measured) else measured):
        return _not_finite(value)
    lost = _why_lost_to_zero(read, measured, value)
    return measured if lost is None else lost


def with_points(text: str, decimal: str) -> str:
    """A text with `decimal` ('.' or ',') as its decimal separator written with decimal points."""
    return text.replace(",", ".") if decimal == "," else text


def number_of(value: Any) -> float | None:
    """The number a value gives, its uncertainty aside (`parse_value`: '5.431(2)' gives 5.431); None where it gives
    none."""
    return number_in(parse_value(value))


def number_in(read: float | Measured | str) -> float | None:
    """The number of a value as `parse_value` reads it, its uncertainty aside; None for the reason it is none."""
    if type(read) is Measured:
        return read.value
    return read if type(read) is float else None


def _notation(text: str) -> re.Match[str] | None:
    """The match of the notation (`_NOTATIONS`) a text is written in; None where it is in none. (Apart from
    `parse_value`, whose every call, a float's too, would make the cell of a comprehension's variable.)"""
    return next((match for pattern in _NOTATIONS if (match := pattern.fullmatch(text))), None)


def _measured(read: re.Match[str]) -> float | Measured:
    """The value of a notation's match (`_notation`), with its uncertainty where it states one."""
    parts = read.groupdict()
    power = int(parts.get("power") or parts.get("e") or 0)
    value = _times_ten(parts["value"], power)
    concise = parts.get("concise")
    if concise is not None and "." not in concise:  # in units of the value's last digit
        places = len(parts["value"].partition(".")[2])
        return Measured(value, _times_ten(concise, power - places))
    uncertainty = concise or parts.get("uncertainty")
    return value if uncertainty is None else Measured(value, _times_ten(uncertainty, power))


def _why_lost_to_zero(read: re.Match[str], measured: float | Measured, value: Any) -> str | None:
    """Why a notation's value is refused where it, or else the uncertainty it states, is not zero as written but
    reads as 0 (`_lost_to_zero`: '1.2x10^-400'; '1.0(1)e-323', whose uncertainty is 1e-324: the reason names it);
    None where neither is."""
    parts = read.groupdict()
    if _lost_to_zero(parts["value"], measured.value if type(measured) is Measured else measured):
        return _too_near_zero(value)
    if type(measured) is Measured and _lost_to_zero(parts.get("concise") or parts["uncertainty"], measured.uncertainty):
        return _too_near_zero(value, "the uncertainty of ")
    return None


def _times_ten(digits: str, power: int) -> float:
    """The float of a number's text times a power of ten, rounded once: 5.431e-3 of '5.431' and -3, not
    5.431 * 10**-3."""
    return float(f"{digits}e{power}") if power else float(digits)


def _doubt(text: str) -> str:
    """Why a text that reads as none of the notations is no value, where that can be said (': its parentheses do not
    close'); '' where it is just no number."""
    if text.count("(") != text.count(")"):
        return ": its parentheses do not close"
    return next((f": {why}" for pattern, why in _NOTATION_DOUBTS if pattern.search(text)), "")
