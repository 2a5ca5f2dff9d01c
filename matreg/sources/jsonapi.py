"""The shared shape of JSON REST connectors: send a request, read the page's records, ask the paginator."""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

import orjson

from matreg.errors import SourceError
from matreg.http import HttpClient
from matreg.jsontext import escaped, lone_surrogate_at, to_json
from matreg.paginate import HttpRequest, Paginator
from matreg.sources.base import Connector, Page, RawItem

SAME_PAGES = 3  # pages that make a pagination loop: the last two each answered an earlier one's records (one repeat
# alone: an upstream insert)


class JsonApiConnector(Connector):
    """A connector over a paginated JSON API; subclasses say which request comes first and where records are."""

    client: HttpClient
    paginator: Paginator

    @abstractmethod
    def first_request(self) -> HttpRequest:
        """The request for the first page."""

    @abstractmethod
    def records(self, body: Any) -> list[dict[str, Any]]:
        """The raw records in a decoded page."""

    @abstractmethod
    def item_id(self, record: dict[str, Any]) -> str:
        """The source's id of a raw record."""

    def total(self, body: Any) -> int | None:
        """How many records the source says match, when a page says so."""
        return None

    def send(self, request: HttpRequest) -> Any:
        """Send one page request and decode its JSON."""
        if request.method == "POST":
            return self.client.post_json(request.url, request.json or {})
        return self.client.get_json(request.url, request.params)

    def pages(self, cursor: dict[str, Any] | None = None) -> Iterator[Page]:
        """Pages from `cursor` (else the first); SourceError when the source's pagination loops: it leads back to a
        page this run read, or it answers the very records of earlier pages on SAME_PAGES - 1 pages in a row
        (`_RepeatedPages`: a server that ignores the page asked for and links a 'next' page anew each time would page
        forever; one repeat is a record inserted upstream while pages of one record are read)."""
        request: HttpRequest | None = HttpRequest.from_cursor(cursor) if cursor else self.first_request()
        sent: set[str] = set()
        repeated = _RepeatedPages()
        while request is not None:
            key = json.dumps(request.to_cursor(), sort_keys=True, default=str)
            if key in sent:
                raise SourceError(f"the source's pagination loops: it leads back to {self.redact(request.describe())}")
            sent.add(key)
            self.client.begin_page()
            body = self.send(request)
            # when the source gave the page: noted before the requests its records may lead to
            read_at, from_cache = self.client.page_read_at(), self.client.page_from_cache()
            try:
                records = self.records(body)
                following = self.paginator.next_request(request, body, len(records))
                items = self._items(body, records)
            except SourceError as exc:
                raise self.client.refused_page(exc) from None
            if (loop := repeated.loop(records)) is not None:
                raise SourceError(f"the source's pagination loops: {self.redact(request.describe())} {loop}")
            cursor_after = following.to_cursor() if following else None
            described = self.client.redact(request.describe())
            yield Page(items, cursor_after, described, self.total(body), read_at, from_cache)
            request = following

    def _items(self, body: Any, records: list[dict[str, Any]]) -> list[RawItem]:
        """The page's records as raw items. Where the page holds a string that is no Unicode, with a lone surrogate
        (`HttpClient.page_not_unicode`), a record holding one is an item in error, quarantined saying where; one
        elsewhere (a next link, a count) fails the page (SourceError)."""
        if not self.client.page_not_unicode():
            return [RawItem(self.item_id(record), record, source_id=self.source_id_of(record)) for record in records]
        if (at := lone_surrogate_at(body, skipped=records)) is not None:
            raise SourceError(f"not valid Unicode: a lone surrogate at {at} of the page")
        return [self._unicode_item(record) for record in records]

    def _unicode_item(self, record: dict[str, Any]) -> RawItem:
        """A record as a raw item; in error where it holds a lone surrogate (`_items`), named by its id with its
        escapes (`escaped`), of no record where that id holds one."""
        item = RawItem(self.item_id(record), record, source_id=self.source_id_of(record))
        if (at := lone_surrogate_at(record)) is None:
            return item
        unreadable_id = item.source_id is not None and escaped(item.source_id) != item.source_id
        reason = f"not valid Unicode: a lone surrogate at {at}"
        return RawItem(escaped(item.item_id), record, reason, None if unreadable_id else item.source_id)

    def redact(self, text: str) -> str:
        return self.client.redact(text)

    def close(self) -> None:
        self.client.close()


class _RepeatedPages:
    """The pages a run read, each as a fingerprint of its records (`_fingerprint`: a number a page), to find a
    pagination that loops through new next links: SAME_PAGES - 1 pages in a row that answer the records of an earlier
    page each, in a row (A A A) or not (A B A B)."""

    def __init__(self) -> None:
        self.first_read: dict[int, int] = {}  # a fingerprint -> the page that answered it first (1: the run's first)
        self.read = 0  # pages read
        self.repeats = 0  # the last pages, in a row, that answered the records of an earlier page
        self.in_a_row = False  # whether each of them answered those of the page before it
        self.previous: int | None = None  # the last page's fingerprint (None: no records)

    def loop(self, records: list[Any]) -> str | None:
        """Note the records of the page read next; the loop they close, once SAME_PAGES - 1 pages in a row answered
        the records of earlier ones ('answered the same 3 record(s) as the 2 pages before it'), else None."""
        self.read += 1
        fingerprint = _fingerprint(records) if records else None
        first = self.first_read.setdefault(fingerprint, self.read) if fingerprint is not None else self.read
        self.in_a_row = fingerprint is not None and fingerprint == self.previous and (self.in_a_row or not self.repeats)
        self.repeats = self.repeats + 1 if first != self.read else 0
        self.previous = fingerprint
        if self.repeats < SAME_PAGES - 1:
            return None
        answered = f"answered the same {len(records)} record(s) as"
        if self.in_a_row:
            return f"{answered} the {self.repeats} pages before it"
        before = "the page before it those of an earlier one too"
        return f"{answered} the page {self.read - first} pages before it, {before}"


def _fingerprint(records: list[Any]) -> int:
    """A page's records as a number, equal for equal records: their JSON text hashed, as orjson writes it (a third
    cheaper than `to_json`'s text with sorted keys, ~3 us a record of OPTIMADE's), else as `to_json` does (integers
    beyond 64 bits, lone surrogates, nesting past 254 levels)."""
    try:
        return hash(orjson.dumps(records, default=str))
    except TypeError:
        return hash(to_json(records))
