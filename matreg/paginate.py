"""Pagination styles of REST APIs, one small class each (after dlt's paginators).

A paginator reads where the next page is from a response and returns the next request, or None when the
source has no more. The next request is also the run's resume cursor: it holds no secrets (keys travel
only in headers), and re-sending it continues exactly after the last staged page.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from matreg.errors import SourceError, clipped


@dataclass
class HttpRequest:
    """One request of a page: method, URL, query parameters, JSON body, and a page number where the API has one."""

    method: str
    url: str
    params: dict[str, Any] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    page: int | None = None

    def to_cursor(self) -> dict[str, Any]:
        """The request as a JSON-able resume cursor."""
        return asdict(self)

    @classmethod
    def from_cursor(cls, cursor: dict[str, Any]) -> HttpRequest:
        """The request a cursor describes."""
        return cls(**cursor)

    def describe(self) -> str:
        """One line for reports: method, URL and parameters."""
        params = "&".join(f"{key}={value}" for key, value in self.params.items())
        body = f" {self.json}" if self.json else ""
        page = f" (page {self.page})" if self.page is not None else ""
        query = ("&" if "?" in self.url else "?") + params if params else ""
        return f"{self.method} {self.url}{query}{body}{page}"


class Paginator(ABC):
    """Where the next page is."""

    @abstractmethod
    def next_request(self, request: HttpRequest, body: Any, n_records: int) -> HttpRequest | None:
        """The request for the page after `request`, given its decoded `body`; None when there is none."""


@dataclass
class OffsetPaginator(Paginator):
    """`?limit=N&offset=K` (OQMD `limit`/`offset`; Materials Project `_limit`/`_skip`): next offset K+N.

    Stops on a short page, or when the offset reaches the total that `total_path` points to in the body.
    """

    limit: int
    offset_param: str = "offset"
    limit_param: str = "limit"
    total_path: tuple[str, ...] = ()

    def first(self, request: HttpRequest) -> HttpRequest:
        """`request` asking for the first page."""
        return _with_params(request, {self.limit_param: self.limit, self.offset_param: 0})

    def next_request(self, request: HttpRequest, body: Any, n_records: int) -> HttpRequest | None:
        offset = int(request.params.get(self.offset_param, 0)) + self.limit
        total = count_of(dig(body, self.total_path)) if self.total_path else None
        if n_records < self.limit or (total is not None and offset >= total):
            return None
        return _with_params(request, {self.offset_param: offset})


@dataclass
class NextLinkPaginator(Paginator):
    """The body names the next page's URL: OPTIMADE and OQMD `{"links": {"next": "<url>" | {"href": "<url>"}}}`.

    The run ends where no link is given, or at an empty page (sources keep linking past their last record).
    A relative link is read from the page it came from. With `base_url`, links are followed there: one under it as
    it is, any other by its path below `link_root` (the path at which the source's links name its API) appended to
    `base_url`. OQMD names 'http://oqmd.org/oqmdapi/formationenergy?...' whatever was asked: with base_url
    'http://127.0.0.1:8000/mirror/oqmdapi/' and link_root '/oqmdapi/' it is followed at
    'http://127.0.0.1:8000/mirror/oqmdapi/formationenergy?...'.
    """

    path: tuple[str, ...] = ("links", "next")
    base_url: str | None = None
    link_root: str = "/"

    def next_request(self, request: HttpRequest, body: Any, n_records: int) -> HttpRequest | None:
        link, where = dig(body, self.path), ".".join(self.path)
        if isinstance(link, dict):
            link, where = link.get("href"), f"{where}.href"
        if not link or n_records == 0:
            return None
        if not isinstance(link, str):
            raise SourceError(f"the page's next link is no URL: {where} is {clipped(repr(link), 100)}")
        link = urljoin(request.url, link)  # a link relative to the page it came from
        if self.base_url:
            link = self.on_base(link)
        return HttpRequest(request.method, link, {}, copy.deepcopy(request.json))

    def on_base(self, link: str) -> str:
        """`link` followed on `base_url` (see the class); SourceError for one that names no path below `link_root`."""
        base = self.base_url.rstrip("/") + "/"
        if link.startswith(base):
            return link
        parts = urlsplit(link)
        _, root, below = parts.path.partition(self.link_root)
        if not root:
            raise SourceError(f"next link {link!r} is neither under {base} nor under a path {self.link_root}")
        return urlunsplit(urlsplit(base + below)._replace(query=parts.query, fragment=parts.fragment))


@dataclass
class BodyCursorPaginator(Paginator):
    """A cursor in the response body goes into the next request's JSON body.

    NOMAD: `{"pagination": {"next_page_after_value": "<v>"}}` -> request `{"pagination": {"page_after_value": "<v>"}}`.
    A page may be empty mid-run (NOMAD drops entries whose archive is missing after paging): the run ends when no
    next value is given, or one that would repeat the request just sent.
    """

    response_path: tuple[str, ...] = ("pagination", "next_page_after_value")
    request_path: tuple[str, ...] = ("pagination", "page_after_value")

    def next_request(self, request: HttpRequest, body: Any, n_records: int) -> HttpRequest | None:
        value = dig(body, self.response_path)
        if value is None or value == dig(request.json or {}, self.request_path):
            return None
        payload = copy.deepcopy(request.json or {})
        target = payload
        for key in self.request_path[:-1]:
            target = target.setdefault(key, {})
        target[self.request_path[-1]] = value
        return HttpRequest(request.method, request.url, dict(request.params), payload)


@dataclass
class PageNumberPaginator(Paginator):
    """Numbered pages of a fixed size: AFLOW AFLUX `$paging(n,k)`. The connector renders `request.page`."""

    size: int
    total_path: tuple[str, ...] = ()

    def next_request(self, request: HttpRequest, body: Any, n_records: int) -> HttpRequest | None:
        page = (request.page or 1) + 1
        total = self.total(body)
        if n_records < self.size or (total is not None and (page - 1) * self.size >= total):
            return None
        return HttpRequest(request.method, request.url, dict(request.params), copy.deepcopy(request.json), page)

    def total(self, body: Any) -> int | None:
        """How many records match, as the body says at `total_path`; None when it does not say."""
        return count_of(dig(body, self.total_path)) if self.total_path else None


def dig(document: Any, path: tuple[str, ...] | list[str]) -> Any:
    """The value at `path` (keys, or indexes of lists) in nested JSON; None where it is missing."""
    for key in path:
        if isinstance(document, dict):
            document = document.get(key)
        elif (
            isinstance(document, list) and str(key).lstrip("-").isdigit() and -len(document) <= int(key) < len(document)
        ):
            document = document[int(key)]
        else:
            return None
    return document


def _with_params(request: HttpRequest, params: dict[str, Any]) -> HttpRequest:
    return HttpRequest(
        request.method, request.url, {**request.params, **params}, copy.deepcopy(request.json), request.page
    )


_COUNTS = range(2**63)  # the counts a store holds (int64)


def count_of(value: Any) -> int | None:
    """A count a source reports (how many records match): a whole number >= 0, also as text ('12') or 12.0;
    None for anything else (negative, fractional, past an int64, a boolean, other text), which leaves the count
    unknown."""
    text = value.strip() if isinstance(value, str) else ""
    if text.isascii() and text.isdigit() and len(text) <= len(str(_COUNTS.stop)):  # not '²', nor 5,000 digits
        value = int(text)
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if type(value) is int and value in _COUNTS else None
