"""The Materials Project: summary documents through the official mp-api client, one page per request.

Wire format (https://api.materialsproject.org/; the requests mp-api 0.46.5 sends are in tests/fixtures/mp/):
    GET <endpoint>/heartbeat -> {"status": "OK", "version": "...", "db_version": "2023.11.1", ...}
    GET <endpoint>/materials/summary/?chemsys=N-Zn&_fields=material_id,...&_limit=1000&_skip=0   (header x-api-key)
        -> {"data": [{"material_id": "mp-754553", "formula_pretty": "Zn3N2", "structure": {...}, ...}],
            "meta": {"total_doc": 1, "max_limit": 1000, ...}}
Pitfalls: a search without a filter makes mp-api bulk-download the whole collection from S3, so every request here
carries a filter (a --filter of parameters that only sort, such as `_sort_fields`, is refused without --all) and an
explicit page (`_limit`, `_skip`); material ids are opaque strings (letter-based ids such as 'mp-hilze' follow
mp-3347529); `volume` and `total_magnetization` are per cell; the summary mixes GGA, GGA+U and r2SCAN results and no
summary field says which functional a record's values come from; searches by id, formula,
elements or filter also return documents the Materials Project deprecated (`deprecated: true`, materialsproject/api
#802), so --all asks for deprecated=false and every deprecated document that still arrives goes to quarantine.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any
from urllib.parse import parse_qsl

import orjson
import requests

from matreg.catalog import Source
from matreg.errors import ConfigError, RecordError, SourceError, SourceUnavailable, clipped
from matreg.fieldmap import FieldMap, catalog_mapping
from matreg.http import HttpClient, failure_of, is_secret_name
from matreg.paginate import HttpRequest, OffsetPaginator, count_of, dig
from matreg.sources import FetchRequest
from matreg.sources.base import WITHDRAWN_BY_SOURCE, Attribution, RunInfo, SourceRecord
from matreg.sources.jsonapi import JsonApiConnector
from matreg.structure import structure_dict_json
from matreg.validation import read_spacegroup_number

try:  # a missing mp-api is reported by build() with the fix (install matreg[mp]), not as an import error
    from mp_api.client import MPRester
    from mp_api.client.core import MPRestError
    from mp_api.client.core.utils import validate_ids
except ModuleNotFoundError:  # pragma: no cover
    MPRester = None

BASE_URL_ENV = "MP_API_ENDPOINT"  # read by build_connector, after --base-url, before the catalog's base URL
SUMMARY_PATH = "materials/summary/"
WEB_URL = "https://next-gen.materialsproject.org/materials/"
DEFAULT_PAGE_SIZE = 1000  # mp-api's chunk size
MAX_PAGE_SIZE = 1000  # the API's max_limit: larger pages are refused with HTTP 400
MAX_IDS = 500  # ids travel in the URL; on a 414 mp-api would split them and the page would no longer be one page
RESERVED_PARAMS = {"_skip", "_limit", "_page", "_per_page", "_fields", "_all_fields"}
NO_QUERY = (
    "no Materials Project query: give material ids (e.g. mp-149), --formula, --elements, or --filter with the "
    "summary API's own parameters (e.g. 'band_gap_min=1&is_stable=true'); --all asks for every non-deprecated "
    "material (deprecated=false) page by page through the summary API - over 150,000 records, never the S3 bulk "
    "download that an unfiltered mp-api search starts"
)


class MpConnector(JsonApiConnector):
    """Summary documents of the Materials Project, one `_limit`/`_skip` page per request through mp-api."""

    def __init__(
        self,
        api_key: str,
        client: HttpClient,
        criteria: dict[str, Any],
        field_map: FieldMap,
        attribution: Attribution,
        *,
        endpoint: str,
        page_size: int = DEFAULT_PAGE_SIZE,
        default_page_size: int = DEFAULT_PAGE_SIZE,  # the page size without --page-size (RunInfo.paging)
    ) -> None:
        self.api_key = api_key
        self.summary: Any = None  # mp-api's summary rester, opened by the run's first request (`_opened_summary`)
        self.endpoint = endpoint
        self.client = client
        self.criteria = criteria
        self.attribution = attribution
        self.url = endpoint + SUMMARY_PATH
        self.field_map = field_map
        self.fields = requested_fields(self.field_map)
        self.paginator = OffsetPaginator(page_size, "_skip", "_limit", ("meta", "total_doc"))
        self.default_page_size = default_page_size

    def run_info(self) -> RunInfo:
        return RunInfo(
            endpoint=self.url,
            query="Materials Project summary where " + ", ".join(f"{k}={v}" for k, v in self.criteria.items()),
            parameters={**self.criteria, "_fields": self.fields, "page_size": self.paginator.limit},
            paging={"page_size": self.default_page_size},
        )

    def first_request(self) -> HttpRequest:
        return self.paginator.first(HttpRequest("GET", self.url, {**self.criteria, "_fields": self.fields}))

    def send(self, request: HttpRequest) -> Any:
        # search() pages through every chunk at once and cannot start at an offset; _query_resource with one chunk
        # is the call search() and count() make for a single page, so a resumed run asks for exactly its next page.
        criteria, chunk_size = dict(request.params), int(request.params["_limit"])
        summary = self._opened_summary()
        timeout_s = self.client.settings.timeout_s
        try:
            body = self.client.retried("GET", self.url, lambda: _summary_page(summary, criteria, chunk_size, timeout_s))
        except (MPRestError, ValueError) as exc:
            raise SourceError(self.client.redact(f"Materials Project summary request failed: {exc}")) from None
        except (AttributeError, KeyError, TypeError) as exc:  # mp-api reads the answer's data and meta as it pages
            answer = f"not a Materials Project summary response from {self.url}: {exc!r}"
            raise SourceError(self.client.redact(answer)) from None
        if count_of(dig(body, ("meta", "total_doc"))) is None:  # mp-api then cuts every page to one document
            raise SourceError(f"Materials Project summary response from {self.url} without meta.total_doc to page by")
        return body

    def _opened_summary(self) -> Any:
        """mp-api's summary rester, opened (heartbeat first) by the run's first request, so that a source that is no
        Materials Project API fails the run, logged in fetch_runs as every source's failures are; the heartbeat's
        db_version becomes the attribution's."""
        if self.summary is None:
            self.summary, db_version = open_summary(self.api_key, self.endpoint, self.client)
            self.client.begin_page()  # the heartbeat, never from the HTTP cache, is none of the first page's answers
            version = db_version or self.attribution.database_version
            self.attribution = dataclasses.replace(self.attribution, database_version=version)
            if version:  # a new release of the database: no page cached from an earlier one is given
                self.client.key_cached_answers_by(version)
        return self.summary

    def records(self, body: Any) -> list[dict[str, Any]]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise SourceError(f"not a Materials Project summary response (no 'data' list) from {self.url}")
        return data

    def item_id(self, record: dict[str, Any]) -> str:
        return str(record.get("material_id") or "<no material_id>") if isinstance(record, dict) else "<not an object>"

    def total(self, body: Any) -> int | None:
        return dig(body, ("meta", "total_doc"))

    def read_source_id(self, payload: Any) -> str:
        """The document's material_id: a text (mp-api's model has it so)."""
        if not isinstance(payload, dict):
            raise RecordError("summary document is not a JSON object")
        material_id = payload.get("material_id")
        if not isinstance(material_id, str) or not material_id.strip():  # (blank ids would merge records into 'mp:')
            raise RecordError("summary document has no material_id")
        return material_id

    def to_record(self, payload: dict[str, Any]) -> SourceRecord:
        # a deprecated document's quarantine row names its record all the same (`RawItem.source_id`)
        if isinstance(payload, dict) and payload.get("deprecated") is True:
            raise RecordError(deprecation_reason(payload.get("deprecation_reasons")))
        material_id = self.read_source_id(payload)
        formula = payload.get("formula_pretty")
        if not isinstance(formula, str) or not formula:
            raise RecordError(f"{material_id}: no formula_pretty")
        symbol, number = space_group(payload, material_id)
        values, absent = self.field_map.read(payload, self.attribution.method)
        return SourceRecord(
            source_id=material_id,
            formula=formula,
            values=values,
            source_url=WEB_URL + material_id,
            structure=structure_json(payload.get("structure"), material_id),
            spacegroup_symbol=symbol,
            spacegroup_number=number,
            nsites=site_count(payload, material_id),
            unmapped=self.field_map.unmapped(payload),
            absent=absent,
        )


def _summary_page(summary: Any, criteria: dict[str, Any], chunk_size: int, timeout_s: float) -> Any:
    """One page of mp-api's summary search: the call search() and count() make for a single chunk. A failure of
    requests, which mp-api wraps in MPRestError (a connection refused, lost before or inside the answer, a timeout), is
    requests' error again, for `HttpClient.retried` to retry or report as it does (a failure for now or not); an
    answer failing for now fails in matreg's session before mp-api reads it (`HttpClient._refuse_failing_for_now`)."""
    try:
        return summary._query_resource(
            criteria=criteria, num_chunks=1, chunk_size=chunk_size, use_document_model=False, timeout=timeout_s
        )
    except MPRestError as exc:
        if isinstance(exc.__context__, requests.RequestException):
            raise exc.__context__ from None
        raise


def requested_fields(field_map: FieldMap) -> str:
    """The `_fields` parameter: the top-level fields the field map reads, so a new property is one YAML line."""
    names = [path.split(".")[0] for path in [*field_map.other_fields, *field_map.value_fields]]
    return ",".join(dict.fromkeys(names))


def deprecation_reason(reasons: Any) -> str:
    """The quarantine reason of a deprecated summary document, with its `deprecation_reasons` codes (emmet-core's
    DeprecationMessage: 'M' manual, 'C001' too few k-points, ...) as received."""
    codes = reasons if isinstance(reasons, list) else [reasons] if reasons else []
    given = f"deprecation_reasons: {', '.join(map(str, codes))}" if codes else "no deprecation_reasons given"
    return f"{WITHDRAWN_BY_SOURCE}the Materials Project ({given}); fetch its formula for the current materials"


def structure_json(structure: Any, material_id: str) -> str | None:
    """The pymatgen Structure dict as received, as JSON text; RecordError naming the material if it is not one, its
    cell is not one (an entry of its lattice, coordinates or occupancies no number: a JSON true is no 1 Å), or what
    else it stores would not read back as received (a site's xyz elsewhere than its abc, properties pymatgen cannot
    read or would build an object of, a charge or periodicity it cannot read: `structure_dict_json`)."""
    if structure is None:
        return None
    return structure_dict_json(structure, f"{material_id}: structure")


def site_count(payload: dict[str, Any], material_id: str) -> int | None:
    """`nsites`, checked against the structure's sites (per-cell values are divided by it)."""
    sites = dig(payload, ("structure", "sites"))
    nsites = payload.get("nsites")
    if nsites is None and isinstance(sites, list):
        nsites = len(sites)
    if nsites is not None and (not isinstance(nsites, int) or nsites < 1):
        raise RecordError(f"{material_id}: nsites {nsites!r} is not a positive integer")
    if isinstance(sites, list) and nsites != len(sites):
        raise RecordError(f"{material_id}: nsites = {nsites} but the structure has {len(sites)} sites")
    return nsites


def space_group(payload: dict[str, Any], material_id: str) -> tuple[str | None, int | None]:
    """Hermann-Mauguin symbol and number from `symmetry`; RecordError for a number no space group has."""
    symmetry = payload.get("symmetry")
    if not isinstance(symmetry, dict):
        return None, None
    return symmetry.get("symbol"), read_spacegroup_number(symmetry.get("number"), f"{material_id}: symmetry.number")


def query_criteria(request: FetchRequest) -> dict[str, Any]:
    """The summary API's filter parameters for a fetch request; ConfigError unless one of them filters (--all's
    deprecated=false does): a --filter of sorting parameters alone would page through every document."""
    request.one_selector("the Materials Project", "its summary API ANDs material_ids, formula and chemsys")
    criteria: dict[str, Any] = {}
    if request.ids:
        criteria["material_ids"] = ",".join(checked_ids(request.ids))
    if request.formulas:
        criteria["formula"] = ",".join(request.formulas)
    if request.elements:
        # --elements means 'made of exactly these elements': the API's chemsys, not its 'contains' elements
        criteria["chemsys"] = "-".join(request.elements)  # checked, sorted symbols (FetchRequest)
    if request.filter:
        criteria.update(native_filter(request.filter))
    if request.everything:
        criteria.setdefault("deprecated", False)
    if not any(map(selects_records, criteria)):
        raise ConfigError(no_query_reason(request.filter if criteria else None))
    return criteria


def no_query_reason(sorting_filter: str | None) -> str:
    """Why a request is refused: no query, or a --filter of parameters that select nothing (`_sort_fields`)."""
    if sorting_filter is None:
        return NO_QUERY
    return (
        f"--filter {sorting_filter!r} selects no records, it only sorts (parameters starting with '_' do not filter; "
        f"with --all it sorts every non-deprecated material): {NO_QUERY}"
    )


def selects_records(parameter: str) -> bool:
    """Whether a summary API parameter filters: those named with a leading '_' only sort, page or pick fields
    (mp-api's own test of 'no query', which it answers with the bulk download)."""
    return not parameter.startswith("_")


def checked_ids(ids: list[str]) -> list[str]:
    """Material ids as mp-api sends them (legacy 'mp-149' and letter-based 'mp-hilze' alike), kept as strings."""
    unique = list(dict.fromkeys(text.strip() for text in ids))
    if len(unique) > MAX_IDS:
        raise ConfigError(f"at most {MAX_IDS} Materials Project ids per fetch (they travel in the URL): split the list")
    try:
        return validate_ids(unique)
    except (ValueError, MPRestError) as exc:
        raise ConfigError(f"Materials Project ids: {exc}") from None


def native_filter(text: str) -> dict[str, str]:
    """Query parameters of the summary API ('band_gap_min=1&is_stable=true'); paging and fields stay matreg's."""
    try:
        params = dict(parse_qsl(text.strip().lstrip("?"), strict_parsing=True))
    except ValueError:
        raise ConfigError(
            f"--filter for the Materials Project takes query parameters ('a=1&b=2'), not {text!r}"
        ) from None
    reserved = sorted(RESERVED_PARAMS & set(params))
    if reserved:
        raise ConfigError(f"--filter may not set {', '.join(reserved)}: matreg sets paging and fields itself")
    secret = sorted(filter(is_secret_name, params))
    if secret:  # (they would be stored with the run's query and resume cursor)
        raise ConfigError(f"--filter may not carry {', '.join(secret)}: the key travels in MP_API_KEY, as a header")
    return params


def endpoint_of(source: Source) -> str:
    """The API root (always ending in '/'): --base-url, else MP_API_ENDPOINT, else the catalog's base URL, as
    `build_connector` chose it."""
    return source.base_url if source.base_url.endswith("/") else source.base_url + "/"


def open_summary(api_key: str, endpoint: str, client: HttpClient) -> tuple[Any, str]:
    """mp-api's summary rester on matreg's HTTP session (retries, rate limit, cache), and the heartbeat's db_version;
    SourceError where mp-api cannot open it, SourceUnavailable where that is a failure for now (`failure_of`: the
    connection refused or lost, a timeout)."""
    client.session.proxies = client.proxies_for(endpoint)  # mp-api sends on the session itself, to this one host
    db_version = _hear_heartbeat(endpoint, client)
    try:
        rester = MPRester(  # (mp-api asks its heartbeat outside the session: a mirror must leave it open)
            api_key, endpoint=endpoint, session=client.session, use_document_model=False, mute_progress_bars=True
        )
        summary = rester.materials.summary
    except (MPRestError, requests.RequestException) as exc:  # (mp-api asks the heartbeat again, with requests.get)
        error = failure_of(exc) if isinstance(exc, requests.RequestException) else SourceError
        raise error(client.redact(f"Materials Project API at {endpoint}: {exc!r}")) from None
    except (AttributeError, KeyError, TypeError, ValueError) as exc:  # mp-api reads its heartbeat: more than we check
        raise _no_heartbeat(endpoint, f"mp-api cannot read it: {exc!r}", client) from None
    return summary, db_version


def _hear_heartbeat(endpoint: str, client: HttpClient) -> str:
    """The db_version of the API's heartbeat (as it answers now: mp-api keeps the first answer it read for the whole
    process); SourceError unless it answers within the source's timeout (and retries), with the version and
    db_version mp-api reads of it: mp-api asks it with `requests.get` and no timeout, so a server that accepts and
    never answers would hang the fetch silently, and another server's answer would fail in mp-api as a KeyError.
    An endpoint unreachable, or failing for now, stays SourceUnavailable (a failure for now: exit TRY_LATER)."""
    not_cached = getattr(client.session, "cache_disabled", contextlib.nullcontext)  # (the HTTP cache would answer)
    try:
        with not_cached():
            answer = client.get_json(endpoint + "heartbeat")
    except SourceError as exc:
        raise _no_heartbeat(endpoint, str(exc), client, for_now=isinstance(exc, SourceUnavailable)) from None
    problem = _heartbeat_problem(answer)
    if problem:
        raise _no_heartbeat(endpoint, problem, client)
    return answer["db_version"]


def _no_heartbeat(endpoint: str, problem: str, client: HttpClient, for_now: bool = False) -> SourceError:
    """The error of an endpoint that answers no Materials Project heartbeat, saying why (`problem`); SourceUnavailable
    where that is a failure for now (`for_now`: unreachable, a 5xx or 429 after the retries)."""
    root = f"is {endpoint} the API's root, as https://api.materialsproject.org/ is?"
    error = SourceUnavailable if for_now else SourceError
    return error(client.redact(f"Materials Project API at {endpoint}: no heartbeat: {problem} ({root})"))


def _heartbeat_problem(answer: Any) -> str | None:
    """Why an answer is no Materials Project heartbeat (one without a version and db_version); None if it is one."""
    if isinstance(answer, dict) and {"version", "db_version"} <= answer.keys():
        return None
    return f"the answer {clipped(orjson.dumps(answer).decode(), 80)} has no version and db_version"


def build(name: str, source: Source, client: HttpClient, request: FetchRequest) -> MpConnector:
    """The mp connector for a `matreg fetch` request: ids, formulas, elements, a native filter, or --all."""
    if MPRester is None:
        raise ConfigError("the mp connector needs the mp-api package: pip install 'matreg[mp]'")
    criteria = query_criteria(request)
    sizes = request.page_sizes(DEFAULT_PAGE_SIZE)
    if sizes["page_size"] > MAX_PAGE_SIZE:
        raise ConfigError(f"--page-size for the Materials Project is at most {MAX_PAGE_SIZE}")
    api_key = source.api_key()
    if not api_key:
        variable = source.auth_env or "MP_API_KEY (add 'auth_env: MP_API_KEY' to the catalog source)"
        raise ConfigError(f"the Materials Project API needs a key: set {variable} (https://materialsproject.org/api)")
    field_map, attribution = catalog_mapping("mp", name, source)
    return MpConnector(
        api_key,
        client,
        criteria,
        field_map,
        attribution,
        endpoint=endpoint_of(source),
        **sizes,
    )
