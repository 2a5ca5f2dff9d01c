"""Connectors, one module per source, and the factory that builds one for `matreg fetch`.

A catalog source names its connector module (`connector: oqmd` -> `matreg.sources.oqmd`); the module has a
`build(name, source, client, request) -> Connector` function, and may list the request options it cannot honour in
`REFUSED` (option -> why): those are refused before it is built, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from matreg.catalog import Catalog, Source, url_problem
from matreg.errors import ConfigError, FormulaError
from matreg.formula import element_symbols, parse_formula
from matreg.http import HttpClient, is_local_url, redact_url, split_credentials
from matreg.sources.base import Connector


@dataclass
class FetchRequest:
    """What `matreg fetch` asks of a source (each connector turns it into the source's own query).

    Ids, formulas and elements each select records, and together the records any of them selects (a union); `filter`
    narrows what they select. A source whose query can only AND them refuses several at once (`one_selector`).
    """

    ids: list[str] = field(default_factory=list)
    formulas: list[str] = field(default_factory=list)
    elements: list[str] = field(default_factory=list)
    filter: str | None = None
    everything: bool = False
    all_temperatures: bool = False
    base_url: str | None = None
    cache: bool | None = None
    refresh_cache: bool = False  # every request to the source, its answer replacing the cached one
    page_size: int | None = None
    structures: bool = False
    limit: int | None = None  # the run stops after this many records (`run_ingest`); pages ask no more

    def arguments(self) -> str:
        """The selection as `matreg fetch` takes it, shell-quoted (`fetch_runs.arguments`): record ids, then
        --formula, --elements (as checked: 'Fe-O' is Fe and O), --filter, --all, --all-temperatures, --structures."""
        words = [*self.ids]
        for flag, values in (("--formula", self.formulas), ("--elements", self.elements)):
            words += [word for value in values for word in (flag, value)]
        words += ["--filter", self.filter] if self.filter is not None else []
        flags = {"--all": self.everything, "--all-temperatures": self.all_temperatures, "--structures": self.structures}
        return shlex.join(words + [flag for flag, given in flags.items() if given])

    def one_selector(self, source: str, why: str) -> None:
        """ConfigError when this request gives several of ids, formulas and elements to a source that cannot
        select the records of any of them in one query."""
        given = [OPTION_FLAGS[name] for name in ("ids", "formulas", "elements") if getattr(self, name)]
        if len(given) > 1:
            raise ConfigError(f"{source} cannot combine {' and '.join(given)}: {why}; run one fetch for each")

    def whole_source(self) -> bool:
        """Whether this asks for every record the source lists: --all, with no other selection, filter or limit."""
        return self.everything and not (self.ids or self.formulas or self.elements or self.filter or self.limit)

    def page_size_or(self, default: int) -> int:
        """Records to ask for per request: --page-size, else the connector's default; no more than --limit."""
        return self.cut_to_limit(self.page_size or default)

    def cut_to_limit(self, size: int) -> int:
        """`size` records per request, no more than --limit: a connector's page size without --page-size."""
        return min(size, self.limit) if self.limit else size

    def page_sizes(self, default: int) -> dict[str, int]:
        """A connector's page_size (`page_size_or`) and default_page_size (without --page-size: `RunInfo.paging`)."""
        return {"page_size": self.page_size_or(default), "default_page_size": self.cut_to_limit(default)}

    def __post_init__(self) -> None:
        """Element symbols and formulas checked once for every connector ('fe' -> 'Fe'; 'Fe-O' -> 'Fe', 'O'; a
        formula is read as written, one with a wildcard left to its source); --refresh-cache with --no-cache
        refused."""
        try:
            self.elements = element_symbols(self.elements)
        except FormulaError as exc:
            raise ConfigError(f"--elements: {exc}") from None
        for formula in self.formulas:
            if "*" in formula:  # a wildcard formula ('*TiO3'): the source's own syntax (the Materials Project's)
                continue
            try:
                parse_formula(formula)
            except FormulaError as exc:
                raise ConfigError(f"--formula: '{formula}' is not a formula ({exc})") from None
        if self.refresh_cache and self.cache is False:
            raise ConfigError("--refresh-cache replaces the HTTP cache's answers: it cannot go with --no-cache")


def use_cache(source: Source, request: FetchRequest, cache_path: Path | None) -> bool:
    """Cache HTTP answers when asked (a refresh, the flag, else the catalog), never for local files."""
    wanted = request.refresh_cache or (source.http.cache if request.cache is None else request.cache)
    return bool(wanted and cache_path and not is_local_url(source.base_url))


OPTION_FLAGS = {
    "ids": "record ids",
    "formulas": "--formula",
    "elements": "--elements",
    "filter": "--filter",
    "everything": "--all",
    "all_temperatures": "--all-temperatures",
    "structures": "--structures",
}
CONNECTOR_OPTIONS = {"all_temperatures": "janaf", "structures": "aflow"}  # options only one connector reads
_NOT_NEEDED_ELSEWHERE = {"structures": " (the other sources' pages carry each record's structure, always kept)"}


def build_connector(name: str, catalog: Catalog, request: FetchRequest, cache_path: Path | None = None) -> Connector:
    """The connector for catalog source `name`, with its HTTP client (API key from the environment); ConfigError
    for an option it cannot honour."""
    source = catalog.source(name)
    module = importlib.import_module(f"matreg.sources.{source.connector}")  # (one of catalog.CONNECTORS)
    override = request.base_url or _environment_base_url(module)
    if override and url_problem(override):
        given = "--base-url" if request.base_url else module.BASE_URL_ENV
        raise ConfigError(f"{given}: {url_problem(override)}")
    base_url, credentials = split_credentials(override or source.base_url)  # never stored with the URL
    _refuse_secret_query(name, source, base_url)
    source = source.model_copy(update={"base_url": base_url})
    request = dataclasses.replace(request, base_url=base_url if override else None)
    _refuse_options(name, source.connector, getattr(module, "REFUSED", {}), request)
    client = HttpClient(
        source.http,
        cache_path=cache_path if use_cache(source, request, cache_path) else None,
        refresh_cache=request.refresh_cache,
        base_url=base_url,
        auth_header=source.auth_header,
        api_key=source.api_key(),
        credentials=credentials,
    )
    if source.database_version:  # a version the catalog names anew is read from the source, never from the cache
        client.key_cached_answers_by(source.database_version)
    try:
        connector = module.build(name, source, client, request)
    except Exception:
        client.close()
        raise
    connector.reads_whole_source = request.whole_source()
    catalog_url = split_credentials(catalog.source(name).base_url)[0]
    connector.base_url_option = base_url if override and base_url != catalog_url else None
    connector.base_url_read = base_url
    connector.arguments = request.arguments()
    return connector


def base_url_now(catalog: Catalog, name: str) -> str:
    """The base URL a fetch of catalog source `name` reads without --base-url, as `build_connector` takes it: the
    environment's override of its connector (BASE_URL_ENV: MP_API_ENDPOINT), else the catalog's; credentials split off.
    UnknownName where the catalog has no such source."""
    source = catalog.source(name)
    module = importlib.import_module(f"matreg.sources.{source.connector}")
    return split_credentials(_environment_base_url(module) or source.base_url)[0]


def _environment_base_url(module: ModuleType) -> str | None:
    """The base URL the environment gives a connector module (its BASE_URL_ENV, e.g. MP_API_ENDPOINT), if any."""
    return os.environ.get(getattr(module, "BASE_URL_ENV", "")) or None


def _refuse_secret_query(name: str, source: Source, base_url: str) -> None:
    """ConfigError for a base URL with a secret in its query (api_key=...): connectors build record and request URLs
    on the base URL, so the secret would be stored with every record; keys come from the environment."""
    shown = redact_url(base_url)  # (its user and password are split off already)
    if shown != base_url:
        where = f"the environment variable {source.auth_env}" if source.auth_env else "an environment variable"
        raise ConfigError(
            f"source '{name}': the base URL carries a secret in its query ({shown}); it would be "
            f"stored in every record's URL: give the key through {where} (the catalog's auth_env) instead"
        )


def _refuse_options(name: str, connector: str, refused: dict[str, str], request: FetchRequest) -> None:
    """ConfigError for the first option given that the connector cannot honour, saying why."""
    others = {
        option: f"only {owner} reads it{_NOT_NEEDED_ELSEWHERE.get(option, '')}"
        for option, owner in CONNECTOR_OPTIONS.items()
        if owner != connector
    }
    for option, why in (others | refused).items():
        if getattr(request, option):
            raise ConfigError(f"{name} cannot use {OPTION_FLAGS[option]}: {why}")
