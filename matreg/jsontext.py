"""Strings of decoded JSON that are no Unicode: the json module reads a lone surrogate ('\\ud800', an escape no
UTF-8 text holds), which orjson refuses; where one is, and how such a string is shown and stored."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


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
