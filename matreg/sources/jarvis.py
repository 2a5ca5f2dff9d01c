"""NIST JARVIS-DFT: the `dft_3d` bulk file that jarvis-tools reads, streamed once and cut into pages.

Wire format (jarvis-tools 2026.6.12, jarvis/db/figshare.py, `data("dft_3d")`): GET
https://ndownloader.figshare.com/files/64391379 (figshare redirects to its S3 store) answers a zip whose one
member, jdft_3d-9-24-2025.json, is a JSON list of dicts, one per calculation:
    [{"jid": "JVASP-86097", "spg_number": 221, "spg_symbol": "Pm-3m", "formula": "DyB6",
      "formation_energy_peratom": -0.41596, "func": "OptB88vdW", "optb88vdw_bandgap": 0.0,
      "atoms": {"lattice_mat": [[4.089078911208881, 0.0, 0.0], ...], "coords": [[0.0, 0.0, 0.0], ...],
                "elements": ["Dy", "B", ...], "abc": [...], "angles": [...], "cartesian": true, "props": [...]},
      ..., "ehull": 0.0456, "density": 5.522, "nat": 7, "mbj_bandgap": "na", "hse_gap": "na", ...}, ...]
Quirks: a missing value is the string "na"; `atoms.coords` are Cartesian or fractional as `atoms.cartesian` says;
a bare NaN or Infinity (no known release has one; Python's json reads them) is not JSON: ijson refuses it, and the
run fails naming the record and the token; a number beyond 64 bits (an integer) or a float's range, which ijson's
fast reading (floats, its C backend) cannot read nor go on past, makes matreg read the file again exactly (ijson's
Decimals), from that record on as Python's json reads it (`json_list_items`), each record mapped as any other (a
400-digit band gap quarantined as no finite number), once the record before it is found as first read (else the
file changed meanwhile: the run fails); the file has no query language and no pages (tens of MB
zipped, ~94k records). matreg downloads it once, inflates it (stream-unzip) and decodes the list (ijson) as it
arrives, and cuts it into pages of `page_size` records; a page's resume cursor is an index into the list. One
JARVIS entry is one record, 'jarvis:<jid>': its band gaps of several methods (OptB88vdW, TBmBJ, HSE06) are all
values of that record, each with the method the field map (connectors/jarvis.yaml) gives it; the store keys a
value by record, property, method and conditions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import ijson
import requests
from stream_unzip import TruncatedDataError, UnexpectedSignatureError, UnzipError, stream_unzip

from matreg.catalog import Source
from matreg.errors import ConfigError, RecordError, SourceError
from matreg.fieldmap import catalog_mapping
from matreg.formula import parse_formula, reduced_formula
from matreg.http import HttpClient, failure_of
from matreg.paginate import dig
from matreg.sources import FetchRequest
from matreg.sources.base import Connector, Page, RawItem, RunInfo, SourceRecord
from matreg.structure import structure_json
from matreg.validation import read_spacegroup_number, read_text

REFUSED = {
    "filter": "the dft_3d file has no query language; select with jids, --formula, --elements or --all "
    "(for OPTIMADE filters use an optimade source at https://jarvis.nist.gov/optimade/jarvisdft)"
}
DEFAULT_PAGE_SIZE = 500
RECORD_PAGE = "https://www.ctcms.nist.gov/~knc6/static/JARVIS-DFT/{jid}.xml"  # JARVIS-DFT's page of a jid
_CHUNK_BYTES = 1 << 20
_BARE_TOKEN = re.compile(r'(?<![\w"])(?:-?Infinity|NaN)(?![\w"])')  # Python's json.dumps writes them
# yajl's messages, reading floats, of an integer too large for 64 bits and of a float beyond a float's range (1e400)
_OVERFLOWS = ("integer overflow", "numeric (floating point) overflow")


def first_member(chunks: Iterable[bytes]) -> tuple[str, Iterator[bytes]]:
    """Name and bytes of a zip's first member, inflated as the zip's bytes arrive; SourceError for a broken zip."""
    try:
        member = next(stream_unzip(chunks), None)
    except UnexpectedSignatureError as exc:
        raise SourceError(f"not a zip file: it starts with {exc.args[0] if exc.args else b''!r}") from None
    except UnzipError as exc:
        raise _unzip_error(exc, "the zip header") from None
    if member is None:
        raise SourceError("the zip holds no file")
    name = member[0].decode("utf-8", errors="replace")
    return name, _member_bytes(name, member[2])


def _member_bytes(name: str, data: Iterator[bytes]) -> Iterator[bytes]:
    """The member's bytes, its zip errors (truncation, corruption, CRC mismatch) as SourceError."""
    try:
        yield from data
    except UnzipError as exc:
        raise _unzip_error(exc, f"zip member '{name}'") from None


def _unzip_error(exc: UnzipError, where: str) -> SourceError:
    if isinstance(exc, TruncatedDataError):
        return SourceError(f"the download ended inside {where} (truncated file)")
    detail = f": {exc}" if str(exc) else ""
    return SourceError(f"{where} is corrupt or cannot be streamed ({type(exc).__name__}{detail})")


class NumberOverflow(Exception):
    """ijson's fast reading (floats) met a number beyond 64 bits or a float's range in the list's item `index`, after
    the item `previous` (None: the first item)."""

    def __init__(self, index: int, previous: Any) -> None:
        super().__init__(index)
        self.index, self.previous = index, previous


def json_list_items(chunks: Iterable[bytes], overflow: NumberOverflow | None = None) -> Iterator[Any]:
    """The items of one JSON list, decoded as its bytes arrive (ijson): the whole list is never in memory. Numbers
    read as floats, fast; after an `overflow` of that reading, the list read again: exactly, from the item that
    overflowed on, as Python's json reads it (an integer of any length, a float beyond a float's range infinite:
    `_as_json_reads`; two to four times slower).

    NumberOverflow where a number is beyond what floats read; SourceError for a list that is not JSON, naming the item
    where decoding stopped (its index, and the jid before), and for a list read again that is not the one read before
    (`_refuse_changed`).
    """
    file = _ChunkFile(_json_list(chunks))
    start = overflow.index if overflow else 0
    index, previous = 0, None
    try:
        for item in ijson.items(file, "item", use_float=overflow is None):
            if index >= start:
                if overflow is not None:
                    _refuse_changed(overflow, index, previous)
                    item = _as_json_reads(item)
                yield item
            index, previous = index + 1, item
    except ijson.JSONError as exc:
        if file.ended:  # the parser wanted more than the member held
            raise SourceError("the dft_3d JSON list ends early (truncated file)") from None
        if overflow is None and any(message in _parser_message(exc) for message in _OVERFLOWS):  # valid JSON
            raise NumberOverflow(index, previous) from None
        raise _malformed(exc, index, previous) from None
    if overflow is not None and index <= start:
        raise SourceError(
            f"the dft_3d file changed while it was read: read again, it ends before its record #{start}: fetch again"
        )


def _refuse_changed(overflow: NumberOverflow, index: int, previous: Any) -> None:
    """SourceError where the list read again after `overflow` is not the one read before: at the item that overflowed
    (`index`), the item before it (`previous`, read exactly) is not the one the fast reading gave."""
    if index == overflow.index and (previous if index == 0 else _as_json_reads(previous)) != overflow.previous:
        raise SourceError(
            f"the dft_3d file changed while it was read: read again, its record #{index - 1} is another "
            f"({_jid(overflow.previous) or 'no jid'} -> {_jid(previous) or 'no jid'}): fetch again"
        )


def _as_json_reads(item: Any) -> Any:
    """An item ijson read exactly, as Python's json reads it: each Decimal (ijson's number with a fraction or an
    exponent) as its float, changed in place; its integers stay, of any length."""
    if isinstance(item, Decimal):
        return float(item)
    pending = [item]
    while pending:  # (no recursion: any depth)
        container = pending.pop()
        for key, value in container.items() if isinstance(container, dict) else enumerate(container):
            if isinstance(value, Decimal):
                container[key] = float(value)  # (a value replaced, no key added: the iteration goes on)
            elif isinstance(value, dict | list):
                pending.append(value)
    return item


def _malformed(exc: ijson.JSONError, index: int, previous: Any) -> SourceError:
    """Why the list's item `index` cannot be decoded; a bare NaN or Infinity is named (Python's json, and so
    jarvis-tools, reads these tokens as floats; ijson 3.6 has no option for them, in any backend)."""
    jid = _jid(previous)
    where = f"record #{index} (counted from #0{f', after {jid}' if jid else ''})"
    message = _parser_message(exc)  # yajl's message quotes the text around the error
    if token := _BARE_TOKEN.search(message):
        return SourceError(
            f"the dft_3d file is not standard JSON: {where} holds the bare token {token[0]}, which JSON and the "
            "streaming parser (ijson) do not allow"
        )
    return SourceError(f"malformed JSON in the dft_3d file at {where}: {_first_line(exc)}")


def _json_list(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks, once their first non-blank byte opens a list: ijson finds no item in an object, silently."""
    chunks = iter(chunks)
    for chunk in chunks:
        head = chunk.lstrip()[:1]
        if head and head != b"[":
            raise SourceError("the dft_3d file is not a JSON list")
        yield chunk
        if head:
            yield from chunks
            return
    raise SourceError("the dft_3d file is empty")


class _ChunkFile:
    """A binary file over byte chunks, for ijson (which reads `read(size)` until b""); `ended` once they ran out.

    Faster than feeding ijson's push interface (items_coro) chunk by chunk.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""
        self.ended = False

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all of the next chunk when negative); b"" at the end."""
        if size == 0:  # ijson's probe for bytes or text
            return b""
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.ended = True
                return b""
            self._pending = chunk
        size = len(self._pending) if size < 0 else size
        taken, self._pending = self._pending[:size], self._pending[size:]
        return taken


def _parser_message(exc: Exception) -> str:
    """A parser's message as text (yajl adds the text around the error, sometimes as bytes)."""
    message = exc.args[0] if exc.args else ""
    return message.decode("utf-8", errors="replace") if isinstance(message, bytes) else str(message)


def _first_line(exc: Exception) -> str:
    """The first line of a parser message, without the text around the error."""
    text = _parser_message(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def jarvis_structure(atoms: Any) -> tuple[str, int]:
    """The structure JSON and site count of a JARVIS `atoms` dict; RecordError if it is malformed."""
    if not isinstance(atoms, dict) or not all(key in atoms for key in ("lattice_mat", "coords", "elements")):
        raise RecordError("atoms: not a JARVIS structure (needs lattice_mat, coords and elements)")
    if not isinstance(atoms["elements"], list):
        raise RecordError(f"atoms: elements is not a list of element symbols: {atoms['elements']!r}")
    elements = [str(symbol) for symbol in atoms["elements"]]
    text = structure_json(
        atoms["lattice_mat"], elements, atoms["coords"], cartesian=atoms.get("cartesian") is True, field="atoms"
    )
    return text, len(elements)


@dataclass(frozen=True)
class Selection:
    """Which dft_3d records a run keeps: all of them, or those with one of these jids, formulas or element sets."""

    everything: bool = False
    ids: frozenset[str] = frozenset()
    formulas: frozenset[str] = frozenset()  # pymatgen-reduced, so 'O2Si' finds 'SiO2'
    elements: frozenset[str] = frozenset()  # exactly this set of elements

    @classmethod
    def of(cls, everything: bool, ids: list[str], formulas: list[str], elements: list[str]) -> Selection:
        """The selection a fetch request asks for; ConfigError if it asks for nothing."""
        if not (everything or ids or formulas or elements):
            raise ConfigError("no JARVIS records asked for: give jids (JVASP-1002), --formula, --elements or --all")
        reduced = frozenset(parse_formula(text).reduced for text in formulas)
        return cls(everything, frozenset(ids), reduced, frozenset(elements))

    def matches(self, entry: dict[str, Any]) -> bool:
        """Whether the record is asked for."""
        if self.everything or _jid(entry) in self.ids:
            return True
        if self.elements and _element_set(dig(entry, ("atoms", "elements"))) == self.elements:
            return True
        # unreadable formulas never match; the mapping quarantines them if the record is selected otherwise
        return bool(self.formulas) and reduced_formula(entry.get("formula")) in self.formulas

    def found_all(self, seen_ids: set[str]) -> bool:
        """True when only jids were asked for and every one was seen: the rest of the file can be skipped."""
        return not (self.everything or self.formulas or self.elements) and self.ids <= seen_ids

    def describe(self) -> str:
        """The selection in words, for fetch_runs."""
        if self.everything:
            return "every dft_3d record"
        parts = [f"jid in {sorted(self.ids)}"] if self.ids else []
        parts += [f"formula in {sorted(self.formulas)}"] if self.formulas else []
        parts += [f"elements exactly {sorted(self.elements)}"] if self.elements else []
        return "dft_3d records with " + " or ".join(parts)


def _jid(entry: Any) -> str | None:
    """A record's jid when it is a text (a malformed one is quarantined by the mapping if the record is selected)."""
    jid = entry.get("jid") if isinstance(entry, dict) else None
    return jid if isinstance(jid, str) else None


def _element_set(elements: Any) -> set[str]:
    """The elements of a record's `atoms` as a set; empty when they are not a list of symbols."""
    if not isinstance(elements, list) or not all(isinstance(symbol, str) for symbol in elements):
        return set()
    return set(elements)


@dataclass
class _Scan:
    """Progress through the list: matching records seen (before the cursor too) and the jids among them."""

    n_matching: int = 0
    seen_ids: set[str] = field(default_factory=set)


class JarvisConnector(Connector):
    """Streams the dft_3d bulk file and maps each record, with its values of every method, to canonical terms."""

    def __init__(
        self,
        source: Source,
        client: HttpClient,
        selection: Selection,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        name: str = "jarvis",
    ) -> None:
        self.url = source.base_url
        self.client = client
        self.selection = selection
        self.page_size = page_size
        self.field_map, self.attribution = catalog_mapping("jarvis", name, source)
        self.member: str | None = None  # name of the zip's JSON member, once the download has begun
        self.read_at: datetime | None = None  # when the source gave the file (the HTTP cache's copy: when downloaded)
        self.from_cache = False  # whether the HTTP cache gave it

    def run_info(self) -> RunInfo:
        return RunInfo(
            endpoint=self.url,
            query=self.selection.describe(),
            parameters={
                "everything": self.selection.everything,
                "ids": sorted(self.selection.ids),
                "formulas": sorted(self.selection.formulas),
                "elements": sorted(self.selection.elements),
            },
        )

    def pages(self, cursor: dict[str, Any] | None = None) -> Iterator[Page]:
        first = int(cursor["next_index"]) if cursor else 0
        scan = _Scan()
        page: list[RawItem] = []
        with closing(self._matching(first, scan, cursor and cursor.get("member"))) as matching:
            for index, entry in matching:
                if len(page) == self.page_size:  # a further match exists, so this page is not the last
                    cursor_after = {"next_index": index, "member": self.member}
                    yield Page(page, cursor_after, self._describe(first), None, self.read_at, self.from_cache)
                    page, first = [], index
                page.append(RawItem(_item_id(entry, index), entry, source_id=self.source_id_of(entry)))
        yield Page(page, None, self._describe(first), scan.n_matching, self.read_at, self.from_cache)

    def _matching(self, start: int, scan: _Scan, member: str | None) -> Iterator[tuple[int, Any]]:
        """(index, record) of the asked-for records from `start` on; records before it are counted, not yielded."""
        with closing(self._records(member)) as records:
            for index, entry in enumerate(records):
                if not self._asked_for(entry):
                    continue
                scan.n_matching += 1
                jid = _jid(entry)
                if jid in self.selection.ids:
                    scan.seen_ids.add(jid)  # only jids asked for: memory stays flat over the file
                if index >= start:
                    yield index, entry
                if self.selection.found_all(scan.seen_ids):
                    return

    def _asked_for(self, entry: Any) -> bool:
        """Whether the selection keeps a list item; with --all every item is kept (a non-object is quarantined)."""
        return self.selection.everything or (isinstance(entry, dict) and self.selection.matches(entry))

    def _records(self, resumed_member: str | None) -> Iterator[Any]:
        """Every record of the file, downloaded once (through the HTTP cache when it is on) and decoded on the fly;
        where a record holds a number beyond what floats read (NumberOverflow), downloaded again and read exactly
        from that record on (`json_list_items`), its pages still of the first download (`read_at`, `from_cache`).

        `resumed_member` is the member an interrupted run read: its cursor indexes that file's list only.
        """
        try:
            yield from self._download(resumed_member)
        except NumberOverflow as overflow:
            yield from self._download(self.member, overflow)

    def _download(self, member: str | None, overflow: NumberOverflow | None = None) -> Iterator[Any]:
        """The file's records (`json_list_items`: after an `overflow`, read again from its record on); SourceError
        where its member is not `member` (not None): the file changed since the interrupted run, or while it was
        read (`overflow`)."""
        self.client.begin_page()
        response = self.client.request("GET", self.url, stream=True)
        if overflow is None:  # (read again, the file is the one read first: `json_list_items` checks it)
            self.read_at, self.from_cache = self.client.page_read_at(), self.client.page_from_cache()
        try:
            name, data = first_member(self._chunks(response))
            if not name.endswith(".json"):
                raise SourceError(f"the dft_3d zip holds '{name}', not a .json file")
            if member and name != member:
                since = "while it was read" if overflow else "since the interrupted run"
                advice = "fetch again" if overflow else "fetch again without --resume"
                raise SourceError(f"the dft_3d file changed {since} ({member} -> {name}): {advice}")
            self.member = name
            yield from json_list_items(data, overflow)
        finally:
            response.close()

    def _chunks(self, response: requests.Response) -> Iterator[bytes]:
        """The download's bytes; SourceUnavailable where its connection is lost (a failure for now: exit TRY_LATER),
        SourceError for another failure of requests (a body it cannot decode)."""
        try:
            yield from response.iter_content(_CHUNK_BYTES)
        except requests.RequestException as exc:
            raise failure_of(exc)(self.client.redact(f"the download of {self.url} broke off: {exc}")) from None

    def _describe(self, first_index: int) -> str:
        return f"GET {self.url} (zip member {self.member}, records from #{first_index})"

    def read_source_id(self, payload: Any) -> str:
        """The record's jid: a text."""
        if not isinstance(payload, dict):
            raise RecordError(f"not a JSON object: {type(payload).__name__}")
        jid = read_text(payload.get("jid"), "jid", self.field_map.is_missing)  # ("na": none)
        if not jid or not jid.strip():  # (blank ids would merge their records into one, 'jarvis:')
            raise RecordError("record has no jid")
        return jid

    def to_record(self, payload: Any) -> SourceRecord:
        jid = self.read_source_id(payload)
        missing = self.field_map.is_missing  # "na"
        structure, nsites = jarvis_structure(payload.get("atoms"))
        method = read_text(payload.get("func"), "func", missing) or self.attribution.method
        values, absent = self.field_map.read(payload, method)  # a field's method, else its record's
        return SourceRecord(
            source_id=jid,
            formula=read_text(payload.get("formula"), "formula", missing) or "",
            values=values,
            source_url=RECORD_PAGE.format(jid=jid),
            structure=structure,
            spacegroup_symbol=read_text(payload.get("spg_symbol"), "spg_symbol", missing),
            spacegroup_number=read_spacegroup_number(payload.get("spg_number"), "spg_number", missing),
            nsites=nsites,
            method=method,
            unmapped=self.field_map.unmapped(payload),
            absent=absent,
        )

    def redact(self, text: str) -> str:
        return self.client.redact(text)

    def close(self) -> None:
        self.client.close()


def _item_id(entry: Any, index: int) -> str:
    """A record's jid, or its place in the list ('#12') when it has none."""
    jid = entry.get("jid") if isinstance(entry, dict) else None
    return str(jid) if jid else f"#{index}"


def build(name: str, source: Source, client: HttpClient, request: FetchRequest) -> JarvisConnector:
    """The JARVIS-DFT connector for a `matreg fetch` request: jids, formulas, element sets, or every record."""
    selection = Selection.of(request.everything, request.ids, request.formulas, request.elements)
    return JarvisConnector(source, client, selection, page_size=request.page_size_or(DEFAULT_PAGE_SIZE), name=name)
