"""Decoded JSON as text: a raw payload as the compact, key-sorted JSON text it is stored and compared as
(`to_json`: a quarantine row's raw, a lab row's cells, a page's hash), whatever orjson refuses to write of it; and
strings that are no Unicode: the json module reads a lone surrogate ('\\ud800', an escape no UTF-8 text holds),
which orjson refuses; where one is, and how such a string is shown and stored."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import orjson


def lone_surrogate_at(document: Any, skipped: Iterable[Any] = ()) -> str | None:
    """Where decoded JSON holds a string that is no Unicode, with a lone surrogate (the json module reads '\\ud800',
    which no UTF-8 text holds): its path ('attributes.elements[1]'; a key's own), written with its escapes
    (`escaped`); None where none does. The dicts and lists in `skipped` (by identity) are not looked into."""
    skip = {id(item) for item in skipped}
    pending: list[tuple[str, Any]] = [("", document)]
    while pending:
        path, item = pending.pop()
        if not _is_unicode(path) or (isinstance(item, str) and not _is_unicode(item)):  # (a key's, or the string's)
            return escaped(path)
        if isinstance(item, dict) and id(item) not in skip:
            members = [(f"{path}.{key}" if path else str(key), value) for key, value in item.items()]
        elif isinstance(item, list | tuple) and id(item) not in skip:
            members = [(f"{path}[{index}]", value) for index, value in enumerate(item)]
        else:
            continue
        pending += reversed(members)  # (the first found first)
    return None


def _is_unicode(text: str) -> bool:
    """Whether a string is Unicode: UTF-8 writes it (it writes every code point but a surrogate)."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def escaped(text: str) -> str:
    """`text` with each lone surrogate written as its escape ('\\ud800'): text UTF-8 writes, to show and store."""
    return text.encode(errors="backslashreplace").decode()


_RAW_JSON = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def to_json(raw: Any) -> str:
    """Raw payload as compact JSON text, keys sorted (NaN as null; an integer beyond 64 bits as its digits and a string
    with a lone surrogate with its escapes, as they were received; anything else not JSON-native as a string), however
    deeply nested."""
    try:
        return orjson.dumps(raw, default=str, option=_RAW_JSON).decode()
    except TypeError:  # what orjson does not write, of a page the json module read (orjson refused it): integers
        # beyond 64 bits, lone surrogates ('\ud800'); or nesting past 254 levels
        return "".join(_json_pieces(raw))


class _Text(str):
    """A piece of JSON text (`_json_pieces`), not a value to write."""


def _json_pieces(raw: Any) -> Iterator[str]:
    """The JSON text `to_json` writes of `raw`, piece by piece, without recursion (any depth): its dicts and lists
    here, each other value by orjson where it writes it (`_value_json`)."""
    pending: list[Any] = [raw]
    while pending:
        item = pending.pop()
        if type(item) is _Text:
            yield item
            continue
        if isinstance(item, dict):
            opening, closing = "{", "}"
            entries = sorted(item.items(), key=lambda entry: str(entry[0]))
            members = [(f"{_value_json(str(key))}:", value) for key, value in entries]
        elif isinstance(item, list | tuple):
            opening, closing, members = "[", "]", [("", value) for value in item]
        else:
            yield _value_json(item)
            continue
        pending.append(_Text(closing))  # (taken last: the members go on top of it, the first on top)
        for position, (key, value) in reversed(list(enumerate(members))):
            pending.append(value)
            pending.append(_Text(("," if position else opening) + key))
        if not members:
            pending.append(_Text(opening))


def _value_json(value: Any) -> str:
    """JSON text of a value that is no dict or list: orjson's, else (an integer beyond 64 bits, a string with a lone
    surrogate) the json module's, which writes the digits and the string's escapes."""
    try:
        return orjson.dumps(value, default=str, option=_RAW_JSON).decode()
    except TypeError:
        return json.dumps(value if isinstance(value, int | str) else str(value))
