"""The shared shape of JSON REST connectors: send a request, read the page's records, ask the paginator."""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

from matreg.errors import SourceError
from matreg.http import HttpClient
from matreg.jsontext import escaped, lone_surrogate_at
from matreg.paginate import HttpRequest, Paginator
from matreg.sources.base import Connector, Page, RawItem

SAME_PAGES = 3  # pages in a row answering the same records that make a pagination loop (two: an upstream insert)


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
        page this run read, or it answers the very records of the page before on SAME_PAGES pages in a row (a
        server that ignores the page asked for and links a 'next' page anew each time would page forever; one repeat
        is a record inserted upstream while pages of one record are read)."""
        request: HttpRequest | None = HttpRequest.from_cursor(cursor) if cursor else self.first_request()
        sent: set[str] = set()
        previous: list[dict[str, Any]] = []
        repeats = 0  # pages in a row that answered the records of the page before
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
            repeats = repeats + 1 if records and records == previous else 0
            if repeats == SAME_PAGES - 1:
                raise SourceError(
                    f"the source's pagination loops: {self.redact(request.describe())} answered the same "
                    f"{len(records)} record(s) as the {repeats} pages before it"
                )
            previous = records
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
