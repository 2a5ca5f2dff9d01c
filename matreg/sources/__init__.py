"""Connectors, one module per source, and the factory that builds one for `matreg fetch`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from matreg.catalog import Catalog, Source
from matreg.errors import ConfigError
from matreg.http import HttpClient
from matreg.sources.base import Connector
from matreg.sources.janaf import JanafConnector, ids_for_formulas, janaf_index


@dataclass
class FetchRequest:
    """What `matreg fetch` asks of a source."""

    ids: list[str] = field(default_factory=list)
    formulas: list[str] = field(default_factory=list)
    everything: bool = False
    all_temperatures: bool = False
    base_url: str | None = None
    cache: bool | None = None
    page_size: int | None = None


def use_cache(source: Source, request: FetchRequest, cache_path: Path | None) -> bool:
    """Cache HTTP answers when asked (flag, else catalog), never for local files."""
    wanted = source.http.cache if request.cache is None else request.cache
    return bool(wanted and cache_path and not source.base_url.startswith("file:"))


def build_connector(name: str, catalog: Catalog, request: FetchRequest, cache_path: Path | None = None) -> Connector:
    """The connector for catalog source `name`, with its HTTP client (API key from the environment)."""
    source = catalog.source(name)
    if request.base_url:
        source = source.model_copy(update={"base_url": request.base_url})
    client = HttpClient(
        source.http,
        cache_path=cache_path if use_cache(source, request, cache_path) else None,
        auth_header=source.auth_header,
        api_key=source.api_key(),
    )
    if source.connector == "janaf":
        ids = list(janaf_index()) if request.everything else request.ids + ids_for_formulas(request.formulas)
        return JanafConnector(
            source, client, ids, all_temperatures=request.all_temperatures, page_size=request.page_size or 25, name=name
        )
    client.close()
    raise ConfigError(f"source '{name}': no connector named '{source.connector}'")
