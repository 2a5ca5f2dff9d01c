"""The registry in catalog.yaml: sources (where data comes from) and named datasets (what is released)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pydantic

from matreg.errors import ConfigError
from matreg.resources import resource_path
from matreg.schema import canonical_method, folded_method, load_vocabulary, provenances
from matreg.yamlio import entry_problem, load_model, problem_in

Provenance = Literal[provenances()]  # schemas/tables.yaml's vocabulary: experimental, dft, simulated
# The connector modules of matreg.sources (each has `build`) a catalog source may name; a lab file has no connector
CONNECTORS = ("aflow", "janaf", "jarvis", "mp", "nomad", "optimade", "oqmd")
PROVIDER_CONNECTORS = ("optimade",)  # connectors that read several providers' databases: each entry names its own
MAX_ANSWER_MIB = 512  # the most one HTTP answer may decode to, by default: a gzip bomb fails the run, not the machine
# A source's or dataset's name: it names the store's files of its runs and releases (never '..', '/' or a hidden name)
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# The ids of a source's records are '<source>:<id>'; a resolved group's median row is 'group:<group id>', its
# members in `records` (matreg.curate.conflicts): no source may be named so
MERGED_ROWS_SOURCE = "group"
MERGED_ROW_PREFIX = f"{MERGED_ROWS_SOURCE}:"
MERGED_TEXTS_JOINED_BY = "; "  # how a median row joins its values' distinct texts: its `records`, sources, licences
# A release's version (a catalog dataset's, `matreg release --version`): semantic versioning without leading zeros or
# build metadata ('01.0.0' and '1.0.0+b' would be second releases of 1.0.0)
_NUMBER = r"(?:0|[1-9]\d*)"  # (semantic versioning's: no leading zero)
_PRE_RELEASE = rf"(?:{_NUMBER}|\d*[A-Za-z-][0-9A-Za-z-]*)"  # one identifier: a number, or text not all digits
_RELEASE_VERSION = re.compile(rf"{_NUMBER}\.{_NUMBER}\.{_NUMBER}(?:-{_PRE_RELEASE}(?:\.{_PRE_RELEASE})*)?")
# What one entry of each list of a dataset's selection names
SELECTED = {"properties": "property", "sources": "source", "provenance": "provenance", "methods": "method"}


def version_problem(version: str) -> str | None:
    """Why `version` cannot be a release's (`_RELEASE_VERSION`); None when it can."""
    if _RELEASE_VERSION.fullmatch(version):
        return None
    return f"invalid version '{version}' (expected X.Y.Z or X.Y.Z-pre, e.g. 1.0.0 or 1.1.0-rc.1)"


def preference_label(name: str) -> str:
    """A provenance or method as `prefer` compares it: the method vocabulary's name (of an alias), spaces and letter
    case aside (`folded_method`, as a dataset's `methods:` selects)."""
    return folded_method(canonical_method(name))


def check_source_name(name: str, kind: str = "source") -> str:
    """`name`, the name of a source of records (a catalog source, a lab dataset: `kind`); ValueError for the name
    that resolved groups' median rows have (`MERGED_ROWS_SOURCE`): its records would be read as those."""
    if name == MERGED_ROWS_SOURCE:
        raise ValueError(
            f"{kind} name {name!r} is reserved: record ids '{name}:...' are the median rows of resolved groups "
            f"(a {kind}'s records are '<its name>:<id>'); give the {kind} another name"
        )
    return name


class HttpSettings(pydantic.BaseModel, extra="forbid"):
    """How matreg talks to one source over HTTP."""

    timeout_s: float = 30.0  # the longest one read may wait (for a connection, for the next bytes of an answer)
    # the longest the reads of one answer may wait in all (a server trickling it keeps each within timeout_s);
    # none given: `answer_deadline_s`
    answer_timeout_s: pydantic.PositiveFloat | None = None
    retries: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 60.0
    max_retry_after_s: float = 600.0  # the longest wait a source's Retry-After may ask for (a longer one: this)
    max_answer_mib: pydantic.PositiveInt = MAX_ANSWER_MIB  # the most one answer may decode to (a larger one fails)
    jitter_s: float = 0.5
    rate_limit_per_s: float | None = None
    cache: bool = False
    cache_expire_after_s: pydantic.PositiveFloat = 86400.0  # how long a cached answer is given, from when it was saved

    @property
    def answer_deadline_s(self) -> float:
        """How long the reads of one answer may wait in all: `answer_timeout_s`, else ten reads' `timeout_s` (a
        minute at least)."""
        return self.answer_timeout_s or max(60.0, 10 * self.timeout_s)


class Source(pydantic.BaseModel, extra="forbid"):
    """A source database: where it lives, how to authenticate, how to cite it."""

    title: str
    connector: str
    base_url: str
    files_url: str | None = None  # where per-record files are served (AFLOW's AFLOWDATA tree); default: as records say
    provenance: Provenance
    method: str | None = None  # the method of values whose field and record name none (an OPTIMADE provider's PBEsol)
    license: str
    citation: str
    doi: str | None = None
    database_version: str | None = None
    # The OPTIMADE provider prefix (providers.optimade.org: mp, oqmd, jarvis, cod, mcloud) whose answers this entry
    # takes (their `meta.provider.prefix`); required for an OPTIMADE source, so no other provider's records are stored
    # under its name, citation and licence.
    provider: str | None = pydantic.Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    auth_env: str | None = None
    auth_header: str = "X-API-KEY"
    http: HttpSettings = HttpSettings()

    @pydantic.field_validator("connector")
    @classmethod
    def _a_connector_of_matreg(cls, connector: str) -> str:
        if connector not in CONNECTORS:
            raise ValueError(
                f"no connector '{connector}' (matreg has: {', '.join(CONNECTORS)}); a lab file is no catalog source: "
                "it is imported with `matreg import FILE --mapping MAPPING`, and a dataset's `sources` name it"
            )
        return connector

    @pydantic.field_validator("base_url", "files_url")
    @classmethod
    def _a_server_or_a_folder(cls, url: str | None) -> str | None:
        problem = url_problem(url) if url is not None else None
        if problem:
            raise ValueError(problem)
        return url

    @pydantic.model_validator(mode="after")
    def _provider_where_the_connector_reads_one(self) -> Source:
        if self.connector in PROVIDER_CONNECTORS and self.provider is None:
            raise ValueError(
                f"connector {self.connector} needs 'provider': the OPTIMADE provider prefix of base_url's database "
                "(e.g. mp, oqmd, jarvis, cod, mcloud; its answers' meta.provider.prefix)"
            )
        if self.connector not in PROVIDER_CONNECTORS and self.provider is not None:
            raise ValueError(f"'provider' is read by connector {' or '.join(PROVIDER_CONNECTORS)} only")
        return self

    def api_key(self) -> str | None:
        """The secret from the environment variable named by `auth_env` (never stored)."""
        return os.environ.get(self.auth_env) if self.auth_env else None


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a source's base URL (None: it can): it names no server (http, https) or folder (file)."""
    parts = urlsplit(url)
    if parts.scheme == "file" or (parts.scheme in ("http", "https") and parts.hostname):
        return None
    return f"'{url}' is no URL of a server or a folder: give http://, https:// or file://"


class Resolution(pydantic.BaseModel, extra="forbid"):
    """How a dataset resolves a group of linked records whose values of one property disagree."""

    strategy: Literal["keep_all", "prefer", "median"] = "keep_all"
    # provenances or methods (the method vocabulary's names or aliases), best first,
    # e.g. [experimental, HSE06, TBmBJ, OptB88vdW]
    prefer: list[str] = []
    # the spread (canonical unit) beyond which the values a resolution merges or chooses between are listed as known
    # conflicts (it changes no resolved value): one number, or one per property ({band_gap: 0.2,
    # enthalpy_of_formation: 2.0}; a property it does not name: the default)
    tolerance: pydantic.NonNegativeFloat | dict[str, pydantic.NonNegativeFloat] | None = None

    @pydantic.field_validator("prefer")
    @classmethod
    def _each_preference_once(cls, prefer: list[str]) -> list[str]:
        """An entry naming what an earlier one names took over its rank ([PBE, HSE06, GGA-PBE] put HSE06 first)."""
        return _listed_once(cls, prefer, preference_label, "provenance or method once (a later one ranks nothing)")

    @pydantic.field_validator("tolerance")
    @classmethod
    def _tolerances_of_known_properties(cls, tolerance: float | dict[str, float] | None) -> float | dict | None:
        named = tolerance if isinstance(tolerance, dict) else {}
        unknown = [name for name in named if name not in load_vocabulary().root]
        if unknown:
            raise ValueError(f"tolerance of properties not in the vocabulary: {', '.join(unknown)}")
        return tolerance

    @pydantic.model_validator(mode="after")
    def _prefer_with_its_strategy(self) -> Resolution:
        if self.strategy == "prefer" and not self.prefer:
            raise ValueError("strategy prefer needs a `prefer` list (provenances or methods, best first)")
        if self.strategy != "prefer" and self.prefer:
            raise ValueError(f"`prefer` is read by strategy prefer only (this one is {self.strategy})")
        return self

    def tolerance_of(self, prop: str) -> float | None:
        """The tolerance for property `prop` (None: the default)."""
        return self.tolerance.get(prop) if isinstance(self.tolerance, dict) else self.tolerance


class Dataset(pydantic.BaseModel, extra="forbid"):
    """A named selection over the store, released under a version."""

    description: str
    version: str
    properties: list[str] = pydantic.Field(min_length=1)
    sources: list[str] | None = None
    provenance: list[Provenance] | None = None
    # e.g. [OptB88vdW]: only values by these methods (and their qualified ones: OptB88vdW (Voigt))
    methods: list[str] | None = None
    # a key of each condition the schema declares (value_conditions; tests/test_schema.py checks that they are the
    # same): only values at the one given
    temperature_K: float | None = pydantic.Field(default=None, ge=0, allow_inf_nan=False)
    pressure_Pa: float | None = pydantic.Field(default=None, ge=0, allow_inf_nan=False)
    resolve: Resolution = Resolution()

    @pydantic.field_validator("properties")
    @classmethod
    def _properties_in_vocabulary(cls, properties: list[str]) -> list[str]:
        unknown = [name for name in properties if name not in load_vocabulary().root]
        if unknown:
            raise ValueError(f"not in the property vocabulary: {', '.join(unknown)}")
        return properties

    @pydantic.field_validator("sources", "provenance", "methods")
    @classmethod
    def _selects_some(cls, names: list[str] | None, info: pydantic.ValidationInfo) -> list[str] | None:
        """An empty list selected every value, as no list does."""
        if names == []:
            what = SELECTED[info.field_name]
            raise ValueError(f"an empty list selects nothing; leave the key out to select every {what}")
        return names

    @pydantic.field_validator("properties", "sources", "provenance", "methods")
    @classmethod
    def _each_once(cls, names: list[str] | None, info: pydantic.ValidationInfo) -> list[str] | None:
        """A property listed twice made a wide export's columns twice; a method by two of its names (or spellings the
        selection reads as one: `preference_label`) too."""
        label = preference_label if info.field_name == "methods" else str
        return _listed_once(cls, names, label, f"{SELECTED[info.field_name]} once") if names else names


def _listed_once(
    model: type[pydantic.BaseModel], names: list[str], label: Callable[[str], str], what: str
) -> list[str]:
    """`names`, when none names (by its `label`) what one before it names; else the entry error (its line) of the first
    that does, naming both, asking to give each `what`."""
    firsts: dict[str, int] = {}
    for n, name in enumerate(names):
        first = firsts.setdefault(label(name), n)
        if first != n:
            earlier = names[first]
            repeat = (
                f"{name!r} is listed twice" if earlier == name else f"{name!r} names what {earlier!r} before it names"
            )
            raise entry_problem(model, (n,), f"{repeat}: give each {what}")
    return names


class Catalog(pydantic.BaseModel, extra="forbid"):
    """Everything in catalog.yaml."""

    sources: dict[str, Source] = {}
    datasets: dict[str, Dataset] = {}
    _file: Path | None = pydantic.PrivateAttr(default=None)  # the file it was read from (`load_catalog`), if one

    @pydantic.field_validator("sources", "datasets")
    @classmethod
    def _safe_names(cls, entries: dict[str, Any], info: pydantic.ValidationInfo) -> dict[str, Any]:
        """A name becomes part of file names in the store (a run's lock and journal, a release's folder). The error is
        at the entry of the name (its line)."""
        kind = info.field_name.removesuffix("s")
        for name in entries:
            if not SAFE_NAME.fullmatch(name):
                raise entry_problem(
                    cls,
                    (name,),
                    f"{kind} name {name!r} is not allowed: a {kind} name is letters, digits, '-', '_' and '.', "
                    "starting with a letter or digit (it names files in the store)",
                )
            if kind == "source":
                try:
                    check_source_name(name)
                except ValueError as exc:
                    raise entry_problem(cls, (name,), str(exc)) from None
        return entries

    @property
    def file(self) -> Path | None:
        """The file it was read from (`load_catalog`), if one."""
        return self._file

    def source(self, name: str) -> Source:
        """A source by name; ConfigError naming the catalog's file and the known ones otherwise."""
        if name not in self.sources:
            raise self._unknown("source", name, list(self.sources))
        return self.sources[name]

    def dataset(self, name: str) -> Dataset:
        """A dataset by name; ConfigError naming the catalog's file and the known ones otherwise."""
        if name not in self.datasets:
            raise self._unknown("dataset", name, list(self.datasets))
        return self.datasets[name]

    def release_version(self, name: str) -> str:
        """The version of dataset `name` that `matreg release` takes where none is given; ConfigError naming the
        catalog's file, line and key when no release can have it (`version_problem`: 'latest', '1.0'). Only a release
        asks: an import, a fetch or an export of another dataset reads the catalog whatever its versions."""
        version = self.dataset(name).version
        problem = version_problem(version)
        if problem is None:
            return version
        if self._file is None:
            raise ConfigError(f"dataset '{name}': version: {problem}")
        raise problem_in(self._file, Catalog, ("datasets", name, "version"), problem)

    def _unknown(self, kind: str, name: str, known: list[str]) -> ConfigError:
        """The error of a `kind` this catalog does not have: 'unknown dataset 'x' (catalog c3.yaml has: a, b)'."""
        catalog = f"catalog {self._file}" if self._file else "catalog"
        return ConfigError(f"unknown {kind} '{name}' ({catalog} has: {', '.join(known) or 'none'})")


def default_catalog_path() -> Path:
    """MATREG_CATALOG (a leading `~` the home folder, as the command line reads it), else ./catalog.yaml, else the
    catalog shipped with matreg."""
    if os.environ.get("MATREG_CATALOG"):
        return Path(os.environ["MATREG_CATALOG"]).expanduser()
    local = Path("catalog.yaml")
    return local if local.exists() else resource_path("catalog.yaml")


def load_catalog(path: Path | None = None) -> Catalog:
    """Load and check a catalog; errors name the file and line (and it names its file: `Catalog.dataset`)."""
    path = path or default_catalog_path()
    catalog = load_model(path, Catalog)
    catalog._file = path
    return catalog
