"""One HTTP session per source: timeouts, retries with backoff, User-Agent, cache, and secret redaction.

A source is read where its base URL says: a remote one (http, https) over HTTP only, a local one (file://, a mirror on
disk) from local files only; a link or redirect elsewhere (a remote source's answer naming file:///etc/passwd) is
refused before it is read. One answer may decode to at most `http.max_answer_mib` (a gzip bomb is refused as it
inflates, not held whole).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import random
import re
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count, pairwise, takewhile
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError
from requests_file import FileAdapter
from requests_ratelimiter import LimiterMixin
from urllib3.connection import HTTPConnection, HTTPSConnection, port_by_scheme
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import InvalidHeader, MaxRetryError, ProtocolError
from urllib3.util.retry import Retry

from matreg import __version__
from matreg.catalog import HttpSettings
from matreg.errors import SourceError, SourceUnavailable, WriteRefused, clipped, write_refused
from matreg.jsontext import lone_surrogate_at

logger = logging.getLogger(__name__)
USER_AGENT = f"matreg/{__version__} (materials-data ETL; python-requests)"
REDACTED = "***"
_SECRET_NAME = re.compile(r"key|token|secret|password|passwd|auth|credential", re.IGNORECASE)
# A query's parameter in a text, of a URL without its host too (urllib3's "Max retries exceeded with url: /x?token=..")
_QUERY_PARAMETER = re.compile(r"(?<=[?&])([^=&\s?#]+)=([^&\s#'\")]*)")
RETRY_STATUSES = (429, 500, 502, 503, 504)
CACHED_STATUSES = (200,)  # the answers the HTTP cache keeps
REMOTE_SCHEMES = ("http", "https")  # what a remote source's links and redirects may lead to (a local one: file)
_READ_BYTES = 1 << 20  # how much of an answer is read (and inflated) at a time
ERROR_BODY_BYTES = 4 << 20  # an error answer is read this far for what it says (`error_detail`)
_ERROR_DETAIL_CHARS = 300  # how much of what an error answer says a message shows
# urllib3's names of its pools and connections in its errors' texts ("_TimedPool(host='h', port=1): ")
_URLLIB3_OBJECT = re.compile(r"\b\w+\(host='[^']*', port=\d+\): ")
_URL_QUERY_CHARS = 200  # how much of a URL's query a message shows, its first and last characters (`shorten_url`)
# How the request being sent waits for its turn under the source's rate limit (None: no limit): set by
# `_RateLimitedAdapter` around each request, called by `_CappedRetry` before each retry urllib3 sends below it.
_await_rate_limit: ContextVar[Callable[[], None] | None] = ContextVar("await_rate_limit", default=None)


_T = TypeVar("_T")


class NotFound(SourceError):
    """The source answered 404 for one item; that item is quarantined, the run goes on."""


def is_local_url(url: str) -> bool:
    """Whether a URL names a local file (file://) rather than a server."""
    return urlsplit(url).scheme.lower() == "file"


def redact_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of `params` with every secret-looking value replaced by '***'."""
    return {k: (REDACTED if is_secret_name(k) else v) for k, v in params.items()}


def is_secret_name(name: Any) -> bool:
    """Whether a parameter's name says it holds a secret (api_key, token, password, ...)."""
    return bool(_SECRET_NAME.search(str(name)))


def redact_text(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret value (and secret query parameters of URLs in it) replaced by '***'."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = re.sub(r"(https?://)[^/@\s]+@", r"\1", text)  # a user and password in a URL, however encoded
    text = re.sub(r"https?://\S+", lambda m: redact_url(m.group(0)), text)
    return _QUERY_PARAMETER.sub(lambda m: f"{m[1]}={REDACTED}" if is_secret_name(m[1]) else m[0], text)


def redact_url(url: str) -> str:
    """`url` with secret-looking query parameters replaced by '***' (unchanged when it has none, or when it is no URL
    urlsplit reads: "http://x']" of a list quoted in a message, its secrets then left to `redact_text`)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # ('Invalid IPv6 URL': an unmatched bracket)
        return url
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    if not any(map(is_secret_name, params)):
        return url  # leave queries that are not key=value lists (AFLUX) readable
    query = urlencode(redact_params(params), safe="*")
    return urlunsplit(parts._replace(query=query))


def public_url(url: str) -> str:
    """`url` as it may be shown and stored: without a user and password, secret query parameters as '***'."""
    return redact_url(split_credentials(url)[0])


def shorten_url(url: str) -> str:
    """`url` for a message: whole to the end of its path, a query longer than _URL_QUERY_CHARS characters cut in
    its middle to that many, '...' included: its end names the page asked for (an offset, a cursor), which a list of
    fields before it would push out of a query cut at its end."""
    head, mark, query = url.partition("?")
    if len(query) <= _URL_QUERY_CHARS:
        return url
    kept = _URL_QUERY_CHARS - 3
    return f"{head}{mark}{query[: kept // 2]}...{query[-(kept - kept // 2) :]}"


def _after_retries(retries: int) -> str:
    """The retries a failed request spent, as a message says them: 'after 1 retry', 'after 3 retries'."""
    return f"after {retries} {'retry' if retries == 1 else 'retries'}"


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """`url` without the user and password it names ('http://u:p@host/x' -> 'http://host/x'), and them (None: none).

    The URL without them is the one stored and shown; they travel as a Basic Authorization header to that host.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    credentials = (unquote(parts.username or ""), unquote(parts.password or ""))
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])), credentials


class _CappedRetry(Retry):
    """urllib3's Retry, honouring a source's Retry-After up to `max_retry_after_s` (a server asking for a day would
    hang the fetch silently); a longer wait is cut to it, and the retry that follows is one of the retries. A
    Retry-After that is neither seconds nor a date (`1.5`, `soon`, `-5`) waits the backoff. Each wait is logged."""

    max_retry_after_s: float  # HttpSettings.max_retry_after_s, set by HttpClient._new_retry
    retried_url: str = ""  # the URL of the request to retry, as it may be shown (`increment`)

    def new(self, **kwargs: Any) -> _CappedRetry:
        retry = super().new(**kwargs)
        retry.max_retry_after_s = self.max_retry_after_s
        return retry

    def increment(self, method: str | None = None, url: str | None = None, *args: Any, **kwargs: Any) -> _CappedRetry:
        """urllib3's, noting the URL retried (`public_url`): urllib3 gives the request's path, its connection pool
        (`_pool`) the scheme, host and port. The answer of a status retried is discarded unread (`_discard`)."""
        retry = super().increment(method, url, *args, **kwargs)
        if (response := kwargs.get("response")) is not None:  # a status retried
            _discard(response)
        pool = kwargs.get("_pool")
        origin = ""
        if pool is not None:
            port = "" if pool.port == port_by_scheme.get(pool.scheme) else f":{pool.port}"
            origin = f"{pool.scheme}://{pool.host}{port}"
        retry.retried_url = public_url(urljoin(origin, url or ""))
        return retry

    def get_retry_after(self, response: Any) -> float | None:
        return self._capped(self._asked_retry_after(response))

    def _capped(self, asked: float | None) -> float | None:
        """A Retry-After `asked` for, cut to the longest wait the catalog allows (`max_retry_after_s`)."""
        return None if asked is None else min(asked, self.max_retry_after_s)

    def _asked_retry_after(self, response: Any) -> float | None:
        """The wait an answer's Retry-After asks for, uncapped (None: none, or one that is neither seconds nor a
        date)."""
        try:
            return super().get_retry_after(response)
        except InvalidHeader:  # (urllib3 raises it, which failed the request despite its retries)
            return None

    def get_backoff_time(self) -> float:
        """urllib3's exponential backoff with jitter, from the first retry on: urllib3 sends the first at once (a 429
        without Retry-After answered straight away), then waits backoff * 2^(n-1)."""
        errors = len(list(takewhile(lambda attempt: attempt.redirect_location is None, reversed(self.history))))
        if errors != 1:
            return super().get_backoff_time()
        return float(min(self.backoff_max, self.backoff_factor + random.random() * self.backoff_jitter))

    def sleep(self, response: Any = None) -> None:
        """urllib3's wait before a retry (Retry-After, else the backoff), logged as a warning (a run waiting says
        why; a retry sent at once is said too), then for the source's request-rate limit: a retry is one more request
        to the source."""
        asked = self._asked_retry_after(response) if response is not None and self.respect_retry_after_header else None
        retry_after = self._capped(asked)
        seconds = retry_after or self.get_backoff_time()  # (urllib3's: a Retry-After of 0 waits the backoff)
        why = self._why(asked)  # (a retry at once is said too: `backoff_s: 0`)
        logger.warning(f"{self._failure(response)}: retry {self._retries()} in {seconds:.4g} s ({why})")
        if seconds > 0:
            time.sleep(seconds)
        await_turn = _await_rate_limit.get()
        if await_turn is not None:
            await_turn()

    def _failure(self, response: Any) -> str:
        """What the retry is for: the answer's status, or the error of a request that got none, and its URL."""
        error = _URLLIB3_OBJECT.sub("", str(self.history[-1].error))
        failed = f"HTTP {response.status}" if response is not None else f"no answer ({error})"
        return f"{failed} from {shorten_url(self.retried_url)}"

    def _why(self, asked: float | None) -> str:
        """Why a retry waits: the backoff, or the Retry-After `asked` for, said where it was cut to the longest the
        catalog allows."""
        if not asked:
            return "backoff"
        if asked > self.max_retry_after_s:
            return f"Retry-After {asked:g} s, capped at http.max_retry_after_s"
        return "Retry-After"

    def _retries(self) -> str:
        """Which retry comes next, of how many ('2 of 3')."""
        done = len(self.history)
        return f"{done} of {done + self.total}" if isinstance(self.total, int) else str(done)


def _discard(response: urllib3.BaseHTTPResponse) -> None:
    """Close the connection of an answer whose body is not wanted (a status to retry): urllib3 would read the body to
    its end to keep the connection (`drain_conn`), below the limits an answer is read within (`_cap_answer`): a 503
    whose body never ended, sent endlessly or a byte at a time, hung the fetch for good."""
    response.close()
    response.release_conn()  # (the pool opens it again for the retry)


class _TimedAdapter(HTTPAdapter):
    """requests' adapter, whose connections wait for an answer's status line and headers no longer than the answer
    may take (`_HeadersInTime`), from when its request is sent."""

    def __init__(self, deadline_s: float, shown: Callable[[str], str], max_retries: Retry) -> None:
        """`deadline_s`: how long an answer may take (`HttpSettings.answer_deadline_s`); `shown`: how a message shows
        its URL (`HttpClient._shown`). (Parameters named: requests-ratelimiter passes on those named only.)"""
        self.deadline_s = deadline_s
        self.shown = shown
        super().__init__(max_retries=max_retries)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _TIMED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # (a SOCKS proxy's pools have connections of their own)
            manager.pool_classes_by_scheme = _TIMED_POOLS
        return manager

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        sending = _answer_due.set(_AnswerDue(self.deadline_s, request.url or "", self.shown))
        try:
            return super().send(request, **kwargs)
        finally:
            _answer_due.reset(sending)


class _RateLimitedAdapter(LimiterMixin, _TimedAdapter):
    """requests-ratelimiter's adapter, whose limit also spaces the retries urllib3 sends below it (`_CappedRetry`)."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        turn = _await_rate_limit.set(lambda: self._await_turn(request))
        try:
            return super().send(request, **kwargs)
        finally:
            _await_rate_limit.reset(turn)

    def _await_turn(self, request: requests.PreparedRequest) -> None:
        """Wait until the rate limit lets one more request go to `request`'s host (its bucket, as `send` uses)."""
        self.limiter.try_acquire(self._bucket_name(request), blocking=True)


class _OriginAuth(requests.auth.AuthBase):
    """A source's secrets, its API key header and the Basic credentials its base URL named, sent to the origin of
    that URL only: never to the hosts its answers link or redirect to."""

    def __init__(self, url: str, header: tuple[str, str] | None, credentials: tuple[str, str] | None) -> None:
        self.origin = _origin(url)
        self.header = header
        self.basic = requests.auth.HTTPBasicAuth(*credentials) if credentials else None

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if _origin(request.url) != self.origin:
            return request
        if self.header:
            request.headers[self.header[0]] = self.header[1]
        return self.basic(request) if self.basic else request

    def strip_elsewhere(self, request: requests.PreparedRequest) -> None:
        """Remove the secrets from a redirected request that leaves the origin (requests keeps other headers)."""
        if _origin(request.url) != self.origin:
            request.headers.pop("Authorization", None)
            if self.header:
                request.headers.pop(self.header[0], None)


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port of a URL as they address a server ('HTTPS://Host' is https://host:443)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or port_by_scheme.get(scheme)


def _cacheable(response: requests.Response) -> bool:
    """Whether the HTTP cache may keep an answer: not a redirect's end (its history holds the first request as sent,
    secrets included; the final hop is cached on its own), and a page, whoever reads it (mp-api decodes the Materials
    Project's answers itself, JANAF's tables are text): not empty, no HTML page (a source's or its proxy's maintenance
    page comes with a 200), and JSON where it says so (not cut short by a closed connection). A refused answer is read
    from the source again next time, where a kept one would be every run's answer until it expires."""
    if response.history:
        return False
    body = response.content.lstrip()
    if not body or body[:1] == b"<":
        return False
    if "json" not in response.headers.get("Content-Type", ""):
        return True
    try:
        _decoded(body)
    except (ValueError, RecursionError):
        return False
    return True


def _decoded(body: bytes) -> tuple[Any, bool]:
    """JSON text decoded, and whether orjson read it; ValueError (RecursionError: nested too deeply) for anything
    else. What orjson refuses the json module reads: a byte order mark, UTF-16/32, integers beyond 64 bits (quarantined
    with their digits), NaN and Infinity, and lone surrogates ('\\ud800', `HttpClient.page_not_unicode`)."""
    try:
        return orjson.loads(body), True  # UTF-8, as JSON APIs send: ten times the json module's speed
    except orjson.JSONDecodeError:
        return json.loads(body), False  # (orjson refuses over 1024 levels)


def _too_many_digits(error: ValueError) -> bool:
    """Whether the json module refused a JSON integer for its length (Python's int-digits limit, 4,300 by default):
    it raises a plain ValueError for it, a JSONDecodeError (or UnicodeDecodeError) for anything else."""
    return type(error) is ValueError and "integer string conversion" in str(error)


def _post_turned_get(response: requests.Response) -> tuple[requests.Response, str] | None:
    """The redirect (301, 302, 303) of a POST that requests followed with a GET, without the body, and where that
    GET went (None: none)."""
    if not response.history or response.history[0].request.method != "POST":
        return None
    hops = pairwise([*response.history, response])
    return next(((hop, then.url) for hop, then in hops if hop.status_code in (301, 302, 303)), None)


def failure_of(error: requests.RequestException) -> type[SourceError]:
    """The error a failure of requests is: SourceUnavailable where it is the source's for now (a connection refused
    or lost, inside an answer too, a timeout), SourceError where it is the request's or the client's (a certificate
    refused, a URL requests cannot send)."""
    unreachable = isinstance(error, (requests.ConnectionError, requests.Timeout, ChunkedEncodingError))
    return SourceUnavailable if unreachable and not isinstance(error, requests.exceptions.SSLError) else SourceError


def _broken_reason(error: ChunkedEncodingError) -> str:
    """What broke a connection inside an answer: the message of urllib3's ProtocolError that requests wraps."""
    reason = error.args[0] if error.args else error
    return str(reason.args[0] if isinstance(reason, ProtocolError) and reason.args else reason)


def error_detail(response: requests.Response) -> str:
    """What an error answer says, in one line: JSON:API `errors[].detail` (OPTIMADE), FastAPI `detail` (NOMAD, MP),
    `message`/`error`, or a plain-text body; empty for anything else (HTML error pages, an answer larger than
    ERROR_BODY_BYTES: the error is the status)."""
    content = _error_body(response)
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        plain = response.headers.get("Content-Type", "").startswith("text/plain")
        body = _text(content, response.encoding) if plain else ""
    if isinstance(body, dict):
        errors = body.get("errors") if isinstance(body.get("errors"), list) else [body]
        body = "; ".join(_error_text(error) for error in errors if isinstance(error, dict))
    text = " ".join(body.split()) if isinstance(body, str) else ""
    return clipped(text, _ERROR_DETAIL_CHARS)


def _error_body(response: requests.Response) -> bytes:
    """An error answer's body, read to its end (which hands a streamed response's connection back) unless it is
    larger than ERROR_BODY_BYTES (then nothing) or the connection broke inside it (what arrived)."""
    chunks: list[bytes] = []
    read = 0
    try:
        for chunk in response.iter_content(_READ_BYTES):
            chunks.append(chunk)
            read += len(chunk)
            if read > ERROR_BODY_BYTES:
                response.close()
                return b""
    except (requests.RequestException, RuntimeError, SourceError):  # (broken, or past max_answer_mib)
        response.close()
    return b"".join(chunks)


def _error_text(error: dict[str, Any]) -> str:
    """One error object's message: its detail (a string, or FastAPI's list of {msg}), else its title or message."""
    detail = error.get("detail") or error.get("title") or error.get("message") or error.get("error") or ""
    if isinstance(detail, list):
        return "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail)
    return str(detail)


def _text(body: bytes, charset: str | None) -> str:
    """A body as text in its declared charset, else (none, or one Python does not know) UTF-8; never raises."""
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


class _Watchdog:
    """One thread that shuts the connection of a read waiting past its time (`watch`): a read waits for a whole chunk,
    and a server that trickles its body keeps each socket read within `timeout_s`. Reads come and go without waking it
    (it looks every `_WATCH_S`): a timer thread per read cost ~0.3 ms of CPU per request."""

    def __init__(self) -> None:
        self._reads: dict[int, tuple[float, Callable[[], None]]] = {}  # (until when, how it is cut) by read
        self._started = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, read: int, until: float, cut: Callable[[], None]) -> None:
        """Call `cut` once `time.monotonic()` passes `until`, unless `release(read)` came first."""
        self._reads[read] = (until, cut)
        if self._thread is None:
            with self._started:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="matreg-http-watchdog", daemon=True)
                    self._thread.start()

    def release(self, read: int) -> bool:
        """Stop watching a read; False if its time had passed (it is cut, or being cut)."""
        return self._reads.pop(read, None) is not None

    def _run(self) -> None:
        never = threading.Event()  # (waited on instead of time.sleep, which tests patch)
        while not never.wait(_WATCH_S):
            now = time.monotonic()
            for read, (until, cut) in list(self._reads.items()):
                if until <= now and self._reads.pop(read, None) is not None:  # (unless released meanwhile)
                    cut()


_WATCH_S = 0.1  # how often the watchdog looks at the reads under way
_WATCHDOG = _Watchdog()
_READ_IDS = count()


def _too_slow(limit_s: float, url: str) -> SourceUnavailable:
    """The error of an answer from `url` (as shown) cut off once it took `limit_s`."""
    return SourceUnavailable(
        f"answer slower than {limit_s:g} s from {url}: cut off (a slower one needs the source's http.answer_timeout_s "
        "in the catalog)"
    )


class _ReadDeadline:
    """How long the reads of one answer's body may wait in all: what its headers left of the answer's time, counted from
    when its request was sent (`_HeadersInTime`); the time its reader takes between reads is not counted (JARVIS'
    download is read as its records are stored). A read still waiting when the time is spent has its connection shut
    (`_Watchdog`, urllib3's `HTTPResponse.shutdown`), and the answer fails with SourceUnavailable."""

    def __init__(self, response: requests.Response, limit_s: float, shown: Callable[[str], str]) -> None:
        """`shown`: how a message shows the answer's URL (`HttpClient._shown`)."""
        self.response = response
        self.read_id = next(_READ_IDS)  # (never another's, as an id() could be once this one is gone)
        self.limit_s = limit_s
        self.left_s = limit_s - getattr(response.raw, _WAITED_S, 0.0)  # (what its headers left)
        self.shown = shown

    def timed(self, chunks: Iterator[Any]) -> Iterator[Any]:
        """`chunks`, each read within the time left; SourceError once it is spent."""
        if not self._from_network():
            yield from chunks
            return
        while (chunk := self._next(chunks)) is not None:
            yield chunk

    def _next(self, chunks: Iterator[Any]) -> Any:
        """The next chunk (None: no more), read while the watchdog cuts the connection at the time left."""
        started = time.monotonic()
        _WATCHDOG.watch(self.read_id, started + self.left_s, self._cut)
        try:
            chunk = next(chunks, None)
        except Exception:
            if _WATCHDOG.release(self.read_id):
                raise
        else:
            if _WATCHDOG.release(self.read_id):
                self.left_s -= time.monotonic() - started
                return chunk
        # (the watchdog cut the read: it failed, or ended the body short)
        raise _too_slow(self.limit_s, self.shown(self.response.url))

    def _from_network(self) -> bool:
        """Whether the body is still to come from a server (not from the HTTP cache, a local file, or read already)."""
        raw = self.response.raw
        cached = getattr(self.response, "from_cache", False)
        return isinstance(raw, urllib3.HTTPResponse) and not cached and not raw.closed

    def _cut(self) -> None:
        """Shut the answer's connection: the read waiting on it ends."""
        with contextlib.suppress(ValueError, RuntimeError, OSError):  # (no socket, or handed back to the pool)
            self.response.raw.shutdown()


@dataclass(frozen=True)
class _AnswerDue:
    """How long the answer to the request being sent may take (`_TimedAdapter`), and its URL as a message shows it."""

    limit_s: float
    url: str
    shown: Callable[[str], str]

    def too_slow(self) -> SourceUnavailable:
        """The error of an answer cut off at its limit."""
        return _too_slow(self.limit_s, self.shown(self.url))


# The request being sent: set by `_TimedAdapter` around each request, read by its connections (`_HeadersInTime`).
_answer_due: ContextVar[_AnswerDue | None] = ContextVar("answer_due", default=None)
_LOGGED = "matreg_logged"  # an answer whose reading was logged (`HttpClient._log_answer`)
_WAITED_S = "matreg_waited_s"  # urllib3's answer: how long it took to its headers from when its request was sent


class _HeadersInTime:
    """A urllib3 connection (mixin) whose wait for an answer's status line and headers, from when the request was
    sent, is cut at the answer's limit (`_answer_due`; a server trickling its headers keeps each read within
    `timeout_s`): SourceUnavailable, as for a body (`_ReadDeadline`), its connection closed. The answer notes how long
    it waited (`_WAITED_S`), which its body's reads may take less."""

    sock: Any

    def getresponse(self) -> urllib3.HTTPResponse:
        due = _answer_due.get()
        if due is None:
            return super().getresponse()  # type: ignore[misc]
        read = next(_READ_IDS)
        started = time.monotonic()
        _WATCHDOG.watch(read, started + due.limit_s, self._cut)
        try:
            response = super().getresponse()  # type: ignore[misc]
        except Exception:
            if _WATCHDOG.release(read):
                raise
            raise due.too_slow() from None
        if not _WATCHDOG.release(read):  # (cut: the headers it read may end short)
            response.close()
            raise due.too_slow()
        setattr(response, _WAITED_S, time.monotonic() - started)
        return response

    def _cut(self) -> None:
        """Shut the connection's socket: the read waiting on it ends."""
        with contextlib.suppress(AttributeError, OSError):  # (closed meanwhile)
            self.sock.shutdown(socket.SHUT_RD)


class _TimedConnection(_HeadersInTime, HTTPConnection):
    pass


class _TimedHTTPSConnection(_HeadersInTime, HTTPSConnection):
    pass


class _TimedPool(HTTPConnectionPool):
    ConnectionCls = _TimedConnection


class _TimedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TimedHTTPSConnection


_TIMED_POOLS = {"http": _TimedPool, "https": _TimedHTTPSPool}  # a PoolManager's pool classes (`_TimedAdapter`)


class _CacheConnection(sqlite3.Connection):
    """requests-cache's connection to the HTTP cache's SQLite file (`HttpClient`, with --cache): SQLite's refusal to
    open or write it is an error naming the file (`_cache_refused`), the write's transaction rolled back. requests-cache
    takes its OperationalError for a busy database: it dropped an answer it could not save, the refusal unsaid, and
    waited for good for a write that a full disk never lets begin (a new cache file)."""

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        self.path = Path(database)
        with self._refusals_said():
            super().__init__(database, *args, **kwargs)

    def execute(self, *args: Any) -> sqlite3.Cursor:
        with self._refusals_said():
            return super().execute(*args)

    def commit(self) -> None:
        with self._refusals_said():
            super().commit()

    @contextlib.contextmanager
    def _refusals_said(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            refused = _cache_refused(exc, self.path)
            if refused is None:
                raise
            with contextlib.suppress(sqlite3.ProgrammingError):  # (a connection that never opened has none)
                if self.in_transaction:
                    self.rollback()
            raise refused from None


# SQLite's (primary) result codes of the HTTP cache refused, a full disk's aside -> the errno they are, what to do
_CACHE_REFUSALS = {
    sqlite3.SQLITE_IOERR: (errno.EIO, "free space there (a disk quota reached is said so too)"),  # (EDQUOT: no errno)
    sqlite3.SQLITE_READONLY: (errno.EACCES, "make it and its folder writable"),  # (a file, or its journal's folder)
    sqlite3.SQLITE_CANTOPEN: (errno.EACCES, "make it and its folder writable"),  # (a new file in a read-only folder)
}


def _cache_refused(error: sqlite3.OperationalError, path: Path) -> WriteRefused | None:
    """The error of the HTTP cache's file at `path` that SQLite could not open or write (`error`), naming it: NoSpace
    for 'database or disk is full' (SQLITE_FULL), a failure for now; else WriteRefused, by SQLite's code
    ('disk I/O error', SQLITE_IOERR_WRITE, as on a disk whose quota is reached; 'attempt to write a readonly
    database'), saying what to do. None for another error (a busy database: requests-cache waits)."""
    primary = error.sqlite_errorcode & 0xFF  # (the extended code's low byte)
    if primary == sqlite3.SQLITE_FULL:
        return write_refused(OSError(errno.ENOSPC, str(error)), path)
    if primary not in _CACHE_REFUSALS:
        return None
    code, fix = _CACHE_REFUSALS[primary]
    advice = f"the HTTP cache could not be written: {fix}, or fetch with --no-cache"
    return write_refused(OSError(code, str(error)), path, error.sqlite_errorname, advice)


def _refuse_unwritable(cache: Any) -> None:
    """WriteRefused now, before any request, where SQLite cannot write the HTTP cache (`_CacheConnection`): a
    read-only file, or one in a read-only folder (where its journal is written), whose every answer requests-cache
    would drop, unsaid, as SQLite refused to save it. Its user_version is written as it is, in a write transaction of
    requests-cache's (which waits for another process writing the file)."""
    with cache.responses.connection(commit=True) as connection:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        connection.execute(f"PRAGMA user_version = {version}")


def _make_by_umask(path: Path) -> None:
    """Create the HTTP cache's file where there is none, as the store's other files are made (0666 less the umask: a
    group's with umask 002), where SQLite would make it rw-r--r-- whatever the umask (its journal takes the file's
    mode). One that cannot be made is left to SQLite, which refuses it (`_refuse_unwritable`)."""
    with contextlib.suppress(OSError):  # (there already, too)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


class HttpClient:
    """Requests to one source (GETs; POSTs of a JSON body, `post_json`), with retries on 429/5xx, the API key sent
    only as a header, and answers cached in `cache_path` when one is given (each for
    `settings.cache_expire_after_s`)."""

    def __init__(
        self,
        settings: HttpSettings,
        *,
        cache_path: Path | None = None,
        refresh_cache: bool = False,
        base_url: str | None = None,
        auth_header: str | None = None,
        api_key: str | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        """The API key (in header `auth_header`) and `credentials` (user, password: `split_credentials`) are sent to
        the origin of `base_url` only. With `refresh_cache`, every request goes to the source and its answer replaces
        the cached one."""
        self.settings = settings
        self._secrets = [api_key, credentials[1] if credentials else None]
        self._cache_version: str | None = None  # what cache keys add (`key_cached_answers_by`)
        self._base_url = base_url
        self._local = base_url is not None and is_local_url(base_url)  # read from files, never from a server
        self._retry = self._new_retry()
        # cached when given a path (`use_cache`), a remote source only: requests-cache cannot keep a file's answer
        self.session = self._make_session(None if self._local else cache_path, auth_header)
        if refresh_cache and cache_path is not None:
            self.session.headers["Cache-Control"] = "no-cache"  # requests-cache's force_refresh, on every request
        # answers since `begin_page`: when the first fresh one arrived, when the source gave the oldest cached one
        self._fresh_at: datetime | None = None
        self._cached_at: datetime | None = None
        self._page_requests: list[requests.PreparedRequest] = []  # of the answers since `begin_page`
        self._not_unicode = False  # whether one of them holds a lone surrogate (`page_not_unicode`)
        # (mp-api sends on the session itself: what a session's hooks do holds for its requests too)
        hooks = [self._refuse_redirect_elsewhere, self._cap_answer, self._note_answer, self._refuse_failing_for_now]
        self.session.hooks["response"].extend(hooks)
        self._proxies: dict[tuple[str, str], dict[str, str]] = {}
        header = (auth_header, api_key) if api_key and auth_header else None
        if header or credentials:
            if base_url is None:
                raise ValueError("secrets need the base URL whose origin they are sent to")
            self.session.auth = _OriginAuth(base_url, header, credentials)

    def _make_session(self, cache_path: Path | None, auth_header: str | None) -> requests.Session:
        if cache_path is None:
            session = requests.Session()
        else:
            import requests_cache  # only with --cache: it imports every cache backend (boto3 too), ~0.2 s a process

            cache_path.parent.mkdir(parents=True, exist_ok=True)
            _make_by_umask(cache_path)
            # The auth header is left out of cache keys and out of the cached request it stores.
            # requests-cache matches these names exactly, and clients re-spell headers (mp-api sends x-api-key).
            names = ["Authorization", "X-API-KEY", "api_key", "access_token", auth_header or "X-API-KEY"]
            ignored = sorted({spelling for name in names for spelling in (name, name.lower(), name.upper())})
            session = requests_cache.CachedSession(
                str(cache_path),
                backend="sqlite",
                allowable_codes=CACHED_STATUSES,
                allowable_methods=("GET", "HEAD", "POST"),  # NOMAD's pages are POSTed queries (keyed by their body)
                ignored_parameters=ignored,
                filter_fn=_cacheable,
                expire_after=self.settings.cache_expire_after_s,  # from when an answer is saved
                key_fn=self._cache_key,
                factory=_CacheConnection,  # (sqlite3.connect's)
            )
            _refuse_unwritable(session.cache)
            # Answers kept under keys no later request asks for (another database version, page size or query)
            # are never replaced: they go once expired. One indexed DELETE; the file keeps its size (no VACUUM, which
            # rewrites it whole), its freed pages hold the next answers.
            session.cache.delete(expired=True, vacuum=False)
        adapter = self._adapter(self._retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        if self._local:
            session.mount("file://", FileAdapter())
        session.headers["User-Agent"] = USER_AGENT
        # The environment is read once here and once per host (`proxies_for`), not on every request as requests
        # does with trust_env: that took a fifth of its CPU time per request. No credentials from ~/.netrc either:
        # a source's key comes from its environment variable only.
        session.trust_env = False
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        session.rebuild_proxies = self._redirect_proxies  # without trust_env a redirect keeps the first host's
        session.rebuild_auth = self._redirect_auth
        return session

    def _new_retry(self) -> _CappedRetry:
        """The retries of every request (urllib3's) and of one whose answer broke off (`retried`)."""
        retry = _CappedRetry(
            total=self.settings.retries,
            backoff_factor=self.settings.backoff_s,
            backoff_max=self.settings.max_backoff_s,
            backoff_jitter=self.settings.jitter_s,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,
            respect_retry_after_header=True,
            raise_on_status=False,  # hand back the last answer, reported below with its status
        )
        retry.max_retry_after_s = self.settings.max_retry_after_s
        # urllib3 (2.6 on) cuts a Retry-After to 6 hours itself, unsaid: read whole, it is cut to the catalog's longest
        # wait alone, and the warning says what the server asked for (`_CappedRetry.sleep`)
        retry.retry_after_max = math.inf
        return retry

    def _cache_key(self, request: Any, **kwargs: Any) -> str:
        """requests-cache's key of a request, and the version of the source the answers are kept for, if set."""
        from requests_cache import create_key

        key = create_key(request, **kwargs)
        return key if self._cache_version is None else f"{key}@{self._cache_version}"

    def key_cached_answers_by(self, version: str) -> None:
        """Keep the cached answers of each version of the source's database apart (the catalog's database_version,
        the Materials Project's db_version): no answer cached from another version is given."""
        self._cache_version = version

    def _redirect_auth(self, request: requests.PreparedRequest, response: requests.Response) -> None:
        """requests' redirect handling, and no secret of the source to another origin (it strips only Authorization,
        and only on a change of host)."""
        requests.Session.rebuild_auth(self.session, request, response)
        if isinstance(self.session.auth, _OriginAuth):
            self.session.auth.strip_elsewhere(request)

    def _redirect_proxies(self, request: requests.PreparedRequest, proxies: dict[str, str] | None) -> dict[str, str]:
        """The proxies of a redirect's target host (e.g. figshare -> S3), with the Proxy-Authorization they need."""
        return requests.Session.rebuild_proxies(self.session, request, self.proxies_for(request.url))

    def proxies_for(self, url: str) -> dict[str, str]:
        """The proxies the environment names for this URL's host (HTTPS_PROXY, NO_PROXY, ...), looked up once."""
        parts = urlsplit(url)
        host = (parts.scheme, parts.netloc)
        if host not in self._proxies:
            self._proxies[host] = requests.utils.get_environ_proxies(url)
        return self._proxies[host]

    def _adapter(self, retry: Retry) -> HTTPAdapter:
        """Retries on every request, each answer due within `answer_deadline_s` (`_TimedAdapter`); a request-rate
        limit, retries included, when the source sets one."""
        timed = {"deadline_s": self.settings.answer_deadline_s, "shown": self._shown, "max_retries": retry}
        if self.settings.rate_limit_per_s:
            return _RateLimitedAdapter(per_second=self.settings.rate_limit_per_s, **timed)
        return _TimedAdapter(**timed)

    def get(self, url: str, params: Mapping[str, Any] | None = None) -> requests.Response:
        """GET `url`, its body read; NotFound on 404, SourceError (secrets redacted) on any other failure."""
        return self.request("GET", url, params=params)

    def get_json(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET `url` and decode its JSON body."""
        return self._json(*self._whole_answer("GET", url, params=params))

    def post_json(self, url: str, body: Mapping[str, Any]) -> Any:
        """POST a JSON body to `url` and decode the JSON answer."""
        return self._json(*self._whole_answer("POST", url, json=body))

    def _whole_answer(self, method: str, url: str, **kwargs: Any) -> tuple[requests.Response, bytes]:
        """A response and its body, read a megabyte at a time as it arrives (up to `max_answer_mib`): `.content` reads
        10 kB at a time, which doubles the CPU time of a 250 kB page."""

        def send_and_read() -> tuple[requests.Response, bytes]:
            with self._send(method, url, stream=True, **kwargs) as response:  # (closed once read: a local file too)
                try:
                    return response, b"".join(response.iter_content(chunk_size=_READ_BYTES))
                except ChunkedEncodingError as exc:  # (requests names no request: `retried` names the URL sent)
                    exc.request = exc.request or response.request
                    raise

        return self.retried(method, url, send_and_read)

    def _json(self, response: requests.Response, body: bytes) -> Any:
        """An answer's body decoded as JSON, noting whether it holds strings that are no Unicode (`page_not_unicode`);
        SourceError for one that is not JSON (`_refused`)."""
        try:
            document, by_orjson = _decoded(body)
        except RecursionError:  # (orjson refuses more than 1024 levels; the json module recurses until it fails)
            raise self._refused(response, f"not JSON (nested too deeply) from {self._shown(response.url)}") from None
        except ValueError as exc:
            if _too_many_digits(exc):
                limit = f"an integer of more than {sys.get_int_max_str_digits()} digits, Python's limit"
                raise self._refused(response, f"JSON not read ({limit}) from {self._shown(response.url)}") from None
            text = repr(clipped(self.redact(_text(body, response.encoding)), 80))
            raise self._refused(response, f"not JSON from {self._shown(response.url)}: {text}") from None
        if not by_orjson and lone_surrogate_at(document) is not None:
            self._not_unicode = True
        return document

    def _refused(self, response: requests.Response, problem: str) -> SourceError:
        """SourceError for an answer that is no page (`problem` says why), which the HTTP cache gives no more (a
        maintenance page it kept would be every later run's answer for a day); the error says if the cache gave it."""
        saved_at = response.created_at if getattr(response, "from_cache", False) else None
        return self._uncached(problem, [response.request], saved_at)

    def _uncached(self, problem: str, sent: list[requests.PreparedRequest], saved_at: datetime | None) -> SourceError:
        """SourceError saying `problem`, the answers to the requests `sent` deleted from the HTTP cache (with --cache);
        where the cache gave them (`saved_at`: when it saved them, the oldest), the error says so."""
        if saved_at is not None:
            saved = f"{saved_at:%Y-%m-%dT%H:%M:%S} UTC"
            problem += f" (the HTTP cache's copy of {saved}, now deleted from it: the next request asks the source)"
        if hasattr(self.session, "cache") and sent:  # (requests-cache's session, with --cache)
            self.session.cache.delete(requests=sent)
        return SourceError(problem)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send one request with retries (`retried`); NotFound on 404, SourceUnavailable on a status still retried
        after the last retry (`RETRY_STATUSES`), SourceError (secrets redacted) on other failures, and for a URL the
        source may not lead to (`_refuse_elsewhere`). With stream=True the body is the
        caller's to read, and a connection lost inside it is not retried."""
        return self.retried(method, url, lambda: self._send(method, url, **kwargs))

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request, with urllib3's retries; NotFound and SourceError as `request` says, requests' exceptions as
        they come."""
        self._refuse_elsewhere(url)
        response = self.session.request(
            method, url, timeout=self.settings.timeout_s, proxies=self.proxies_for(url), **kwargs
        )
        if (turned := _post_turned_get(response)) is not None:
            response.close()
            hop, target = turned
            raise SourceError(
                f"the server redirected a POST from {self._shown(hop.url)} to {self._shown(target)} (HTTP "
                f"{hop.status_code}), which requests follows as a GET without the query: the source's base URL should "
                "be the new address"
            )
        if response.status_code == 404:
            detail = self.redact(error_detail(response))
            raise NotFound(f"HTTP 404 Not Found: {self._shown(response.url)}{': ' + detail if detail else ''}")
        if response.status_code >= 400:  # (one failing for now raised SourceUnavailable: `_refuse_failing_for_now`)
            raise SourceError(self._failure(response))
        return response

    def retried(self, method: str, url: str, attempt: Callable[[], _T]) -> _T:
        """`attempt()`, a request and the reading of its answer, tried again after the backoff when the connection
        broke inside the answer (requests' ChunkedEncodingError), up to `retries` times (urllib3 retries one lost
        before the answer only); SourceError (secrets redacted) for a failure of requests, SourceUnavailable where
        the source could not be reached or broke off every answer (`failure_of`). A client sending through
        `session` itself (mp-api) has its requests retried so."""
        retry = self._retry
        while True:
            try:
                return attempt()
            except ChunkedEncodingError as exc:
                reason = _broken_reason(exc)
                try:
                    retry = retry.increment(method, url, error=ProtocolError(reason))
                except MaxRetryError:
                    broke = f"{self.redact(reason)} (the connection broke inside the answer, {self._spent(exc, url)})"
                    raise SourceUnavailable(f"{method} {self._shown(url)} failed: {broke}") from None
                retry.sleep()
            except requests.RequestException as exc:
                raise failure_of(exc)(f"{method} {self._shown(url)} failed: {self._no_answer(exc, url)}") from None

    def _refuse_elsewhere(self, url: str, redirected_from: str | None = None) -> None:
        """SourceError for a URL a source may not lead to: a local file for a remote source (or one with no base URL),
        a server for a local one."""
        if is_local_url(url) == self._local:
            return
        how = f"a redirect from {self._shown(redirected_from)} to" if redirected_from else "the URL"
        read = "from local files only" if self._local else f"over {' or '.join(REMOTE_SCHEMES)} only"
        source = f"a source at {self._shown(self._base_url)}" if self._base_url else "this source"
        raise SourceError(f"refused {how} {self._shown(url)}: {source} is read {read}")

    def _refuse_redirect_elsewhere(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """A response hook: refuse a redirect that leads where the source may not (`_refuse_elsewhere`), before
        requests follows it."""
        target = self.session.get_redirect_target(response) if response.is_redirect else None
        if target is not None:
            self._refuse_elsewhere(urljoin(response.url, target), redirected_from=response.url)

    def _cap_answer(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """A response hook: its body, however it is read (`.content`, `iter_content`, the HTTP cache's copy), is read
        in chunks of at most `_READ_BYTES` up to `max_answer_mib` decoded, then SourceError: an inflating body (a gzip
        bomb) is never held larger than that; and it may take `answer_deadline_s` in all, its headers' wait included
        (`_ReadDeadline`). Once read to its end (the HTTP cache's copy: at once), it is logged (`_log_answer`); one
        closed before (JARVIS's download once every jid asked for was found, an answer refused as too large) is
        logged as it is closed, abandoned after the bytes read.
        An answer the HTTP cache is to keep is read here: requests-cache would copy it from the connection unchecked."""
        limit = self.settings.max_answer_mib
        read_chunks, close = response.iter_content, response.close
        deadline = _ReadDeadline(response, self.settings.answer_deadline_s, self._shown)
        sent_at = time.monotonic() - response.elapsed.total_seconds()
        read_so_far = 0  # the bytes the latest reading of the body read (`closed_logged`)

        def capped_chunks(chunk_size: int | None = 1, decode_unicode: bool = False) -> Iterator[Any]:
            nonlocal read_so_far
            read = 0
            for chunk in deadline.timed(read_chunks(min(chunk_size or _READ_BYTES, _READ_BYTES), decode_unicode)):
                read += len(chunk)
                read_so_far = read
                if read > limit << 20:
                    response.close()
                    raise SourceError(
                        f"answer larger than {limit} MiB from {self._shown(response.url)}: refused (a larger one "
                        "needs the source's http.max_answer_mib in the catalog)"
                    )
                yield chunk
            self._log_answer(response, f"{read} bytes", time.monotonic() - sent_at)

        def closed_logged() -> None:
            self._log_answer(response, f"abandoned after {read_so_far} bytes", time.monotonic() - sent_at)
            close()

        response.iter_content = capped_chunks  # type: ignore[method-assign]
        response.close = closed_logged  # type: ignore[method-assign]
        if getattr(response, "from_cache", False):  # (its body is read already: `.content` reads no chunks)
            self._log_answer(response, f"{len(response.content)} bytes", 0.0)
        elif self._kept_in_cache(response):
            _ = response.content

    def _log_answer(self, response: requests.Response, size: str, took_s: float) -> None:
        """Log (INFO: `matreg -v`) an answer read to its end or abandoned, once (requests-cache hands an answer it
        saves to the hooks twice): its request's method and URL as a message shows it (`_shown`), its status and size
        (decoded: '41234 bytes', 'abandoned after 1048576 bytes'), how long it took from when its request was sent (its
        retries' waits included), and, with the HTTP cache on, whether the cache gave it."""
        if not logger.isEnabledFor(logging.INFO) or getattr(response, _LOGGED, False):
            return
        setattr(response, _LOGGED, True)
        cache = ""
        if hasattr(self.session, "cache"):
            cache = " (HTTP cache hit)" if getattr(response, "from_cache", False) else " (HTTP cache miss)"
        logger.info(
            f"{response.request.method} {self._shown(response.url)}: HTTP {response.status_code}, {size} in "
            f"{took_s * 1000:.0f} ms{cache}"
        )

    def _kept_in_cache(self, response: requests.Response) -> bool:
        """Whether the HTTP cache (with --cache) keeps an answer that came from the source."""
        kept = hasattr(self.session, "cache") and response.status_code in CACHED_STATUSES
        return kept and not getattr(response, "from_cache", False)

    def _refuse_failing_for_now(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """A response hook: SourceUnavailable for an answer with a status still retried after the last retry
        (`RETRY_STATUSES`), the connection closed. A hook, so that mp-api's requests, sent on the session itself, fail
        so too: mp-api turns every failed answer into an MPRestError of its own, which does not say whether the
        failure is for now."""
        if response.status_code in RETRY_STATUSES:
            failure = self._failure(response)
            response.close()
            raise SourceUnavailable(failure)

    def _note_answer(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Note when the source gave an answer: as it arrives (before the HTTP cache saves it, so that the cache's
        `created_at` of it is no earlier), or, from the HTTP cache, when it was saved there; redirects and failures,
        never cached, say nothing."""
        if response.is_redirect or response.status_code != 200:
            return
        self._page_requests.append(response.request)
        if getattr(response, "from_cache", False):
            self._cached_at = min(filter(None, (self._cached_at, response.created_at)))
        elif self._fresh_at is None:
            self._fresh_at = datetime.now(UTC)

    def begin_page(self) -> None:
        """Forget the answers so far: the next page's are noted from here."""
        self._fresh_at, self._cached_at = None, None
        self._page_requests = []
        self._not_unicode = False

    def page_not_unicode(self) -> bool:
        """Whether a JSON answer since `begin_page` holds a string that is no Unicode, with a lone surrogate
        (`lone_surrogate_at`): only the json module reads one, orjson refuses it."""
        return self._not_unicode

    def page_read_at(self) -> datetime | None:
        """When the source gave the answers since `begin_page` (None: none came): when the first fresh one arrived,
        else, all from the HTTP cache, when the source gave the oldest of them (a page of them is as old as that)."""
        return self._fresh_at or self._cached_at

    def refused_page(self, problem: SourceError) -> SourceError:
        """`problem`, the error of a page its connector refuses (JSON, but an error object where records were due),
        having deleted the page's answers from the HTTP cache (which would give it to every later run for a day); the
        error says if the cache gave it."""
        return self._uncached(str(problem), self._page_requests, self._cached_at if self.page_from_cache() else None)

    def page_from_cache(self) -> bool:
        """Whether every answer since `begin_page` came from the HTTP cache (and one did)."""
        return self._fresh_at is None and self._cached_at is not None

    def _failure(self, response: requests.Response) -> str:
        """What went wrong: the status, what the source said, the URL (a long query cut), and the retries spent (if
        it was retried); secrets redacted."""
        detail = self.redact(error_detail(response))
        retried = f", {_after_retries(self.settings.retries)}" if response.status_code in RETRY_STATUSES else ""
        said = f": {detail}" if detail else ""
        return f"HTTP {response.status_code}{said} (from {self._shown(response.url)}{retried})"

    def _no_answer(self, error: requests.RequestException, url: str) -> str:
        """What failed a request to `url` that got no answer, secrets redacted: where urllib3 spent its retries, its
        reason (without the classes of its connection and pool, `_URLLIB3_OBJECT`), the URL sent where it is not
        `url` (its query, the page asked for, added) and the retries; else requests' error."""
        reason = error.args[0] if error.args else None
        if not isinstance(reason, MaxRetryError) or reason.reason is None:
            return self.redact(_URLLIB3_OBJECT.sub("", str(error)))
        return f"{self.redact(_URLLIB3_OBJECT.sub('', str(reason.reason)))} ({self._spent(error, url)})"

    def _spent(self, error: requests.RequestException, url: str) -> str:
        """The retries a request to `url` spent, and the URL sent where it is not `url` (its query, the page asked
        for, added), secrets redacted: 'from http://h/x?offset=6, after 3 retries'."""
        sent = error.request.url if error.request is not None and error.request.url else url
        where = "" if sent == url else f"from {self._shown(sent)}, "
        return f"{where}{_after_retries(self.settings.retries)}"

    def _shown(self, url: str) -> str:
        """A URL as a message shows it: secrets redacted, then a long query cut (`shorten_url`)."""
        return shorten_url(self.redact(url))

    def get_text(self, url: str) -> str:
        """GET `url` and return the body as text, the answer closed (a local file's too)."""
        with self.get(url) as response:
            return response.text

    def redact(self, text: str) -> str:
        """`text` with this client's secrets removed."""
        return redact_text(text, self._secrets)

    def close(self) -> None:
        """Release the connection pool and the cache file."""
        self.session.close()
