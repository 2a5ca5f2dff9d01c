"""The canonical schema, read once from schemas/: pandera validation, Arrow types and docs all come from it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute
import pydantic

from matreg.errors import ConfigError
from matreg.resources import resource_path, working_directory
from matreg.units import declared_unit
from matreg.yamlio import load_model

ColumnType = Literal["string", "float64", "int64", "bool", "timestamp", "list<string>"]

LIST_OF_STRINGS = pyarrow.list_(pyarrow.string())
_ARROW_TYPES = {
    "string": pyarrow.string(),
    "float64": pyarrow.float64(),
    "int64": pyarrow.int64(),
    "bool": pyarrow.bool_(),
    "timestamp": pyarrow.timestamp("us", tz="UTC"),
    "list<string>": LIST_OF_STRINGS,
}
_PANDAS_TYPES = {
    "string": pd.ArrowDtype(pyarrow.string()),  # not pd.StringDtype, which pandera checks element-wise: 5x slower
    "float64": "float64",
    "int64": "Int64",
    "bool": "boolean",
    "timestamp": pd.DatetimeTZDtype("us", "UTC"),
    "list<string>": None,  # checked by _list_of_strings: pandera's object-dtype check is slow element-wise work
}


def column_arrow_type(column_type: ColumnType) -> pyarrow.DataType:
    """The Arrow type of a column of a declared type ('float64': double; 'timestamp': timestamp[us, tz=UTC])."""
    return _ARROW_TYPES[column_type]


def pandas_dtype(arrow_type: pyarrow.DataType) -> pd.api.extensions.ExtensionDtype | None:
    """The pandas dtype pandera checks a column of this Arrow type as, to convert Arrow straight into it.

    String and list<string> columns stay Arrow-backed (no Python object per row); None leaves pyarrow's default
    (float64).
    """
    return _PANDAS_OF_ARROW.get(arrow_type)


_PANDAS_OF_ARROW = {
    arrow: dtype
    for arrow, dtype in (
        (_ARROW_TYPES[name], pd.ArrowDtype(_ARROW_TYPES[name]) if given is None else pd.api.types.pandas_dtype(given))
        for name, given in _PANDAS_TYPES.items()
    )
    if isinstance(dtype, pd.api.extensions.ExtensionDtype)  # numpy dtypes (float64) are pyarrow's default anyway
}


class ColumnSpec(pydantic.BaseModel, extra="forbid"):
    """One column of a canonical table."""

    type: ColumnType
    description: str
    nullable: bool = False
    unique: bool = False
    isin: list[str] | None = None
    min: float | None = None
    max: float | None = None
    vocabulary: bool = False
    stamp: bool = False  # written by every run (which run, when): not part of a row's content
    condition: bool = False  # a condition a value applies at (temperature, pressure): part of the value's key


class TableSpec(pydantic.BaseModel, extra="forbid"):
    """One canonical table: its columns and the key an upsert replaces on."""

    description: str
    primary_key: list[str]
    columns: dict[str, ColumnSpec]
    belongs_to: str | None = None  # the table whose row (by that table's key) each row belongs to
    read_at: str | None = None  # the column saying when the source was read: a row read later is not replaced

    @property
    def content_columns(self) -> list[str]:
        """The columns that say what a row holds (all but the stamp columns)."""
        return [name for name, column in self.columns.items() if not column.stamp]

    @pydantic.model_validator(mode="after")
    def _key_columns_exist(self) -> TableSpec:
        missing = [name for name in self.primary_key if name not in self.columns]
        if missing:
            raise ValueError(f"primary key columns not declared: {missing}")
        loose = [name for name, column in self.columns.items() if column.condition and name not in self.primary_key]
        if loose:
            raise ValueError(f"condition columns not in the primary key: {loose}")
        read_at = self.columns.get(self.read_at or "")
        if self.read_at is not None and (read_at is None or read_at.type != "timestamp"):
            raise ValueError(f"read_at: '{self.read_at}' is not a timestamp column")
        return self


class ExtensionSpec(pydantic.BaseModel, extra="forbid"):
    """A lab schema extension: extra columns a lab dataset may carry, checked like canonical columns."""

    description: str
    columns: dict[str, ColumnSpec] = pydantic.Field(min_length=1)

    @pydantic.model_validator(mode="after")
    def _plain_columns(self) -> ExtensionSpec:
        # Values are checked one page at a time and stored as text in record_attributes, with a type its `type`
        # column takes (no lists): no run-wide uniqueness, and property values belong in the properties table.
        stored = table_spec("record_attributes").columns["type"].isin or []
        for name, column in self.columns.items():
            if column.type not in stored or column.unique or column.vocabulary:
                raise ValueError(
                    f"column '{name}': extensions take the types record_attributes stores ({', '.join(stored)}), "
                    "no unique or vocabulary"
                )
        return self


class Tables(pydantic.RootModel[dict[str, TableSpec]]):
    """All canonical tables by name."""

    @pydantic.model_validator(mode="after")
    def _owners_declared_first(self) -> Tables:
        names = list(self.root)
        for name, spec in self.root.items():
            if spec.belongs_to is None:
                continue
            owner = self.root.get(spec.belongs_to)
            if owner is None or names.index(spec.belongs_to) > names.index(name):
                raise ValueError(f"{name}: belongs_to '{spec.belongs_to}' is not a table declared before it")
            if len(owner.primary_key) != 1 or owner.primary_key[0] not in spec.columns:
                raise ValueError(f"{name}: '{spec.belongs_to}' has no one-column key that {name} has a column for")
        return self


ION_BOUNDS_OF = "of an ion or aqueous solute"  # the species whose values `ion_bounds` bound (`takes_ion_bounds`)


class PropertySpec(pydantic.BaseModel, extra="forbid"):
    """One entry of the property vocabulary."""

    description: str
    unit: str
    bounds: tuple[float, float]
    ion_bounds: tuple[float, float] | None = None  # an ion's and aqueous solute's, where they differ (conventional)
    former_bounds: list[tuple[float, float]] = []  # those earlier versions gave, which a project's copy may give
    aliases: dict[str, list[str]] = {}

    @pydantic.field_validator("unit")
    @classmethod
    def _unit_is_known(cls, unit: str) -> str:
        declared_unit(unit)
        return unit

    def bounds_of(self, ion: bool) -> tuple[float, float]:
        """The physical bounds of a value of a record held to an ion's bounds (`formula.takes_ion_bounds`: an ion's or
        an aqueous solute's) or of another's."""
        return self.ion_bounds if ion and self.ion_bounds is not None else self.bounds

    @property
    def widest_bounds(self) -> tuple[float, float]:
        """The bounds of a value of any species: what a stored row, which does not give its record's charge, is held
        to."""
        ion_low, ion_high = self.bounds_of(ion=True)
        return min(self.bounds[0], ion_low), max(self.bounds[1], ion_high)


# How near a bound a value counts as at it, relative to the bound: a value at a bound given in another unit comes out
# of pint's float factors a few ulps beyond it (30000 kg/m^3 is 30.000000000000007 g/cm^3), and is kept as converted.
_BOUND_TOLERANCE = 1e-12


def within_bounds(values: np.ndarray, low: np.ndarray | float, high: np.ndarray | float) -> np.ndarray:
    """Which values lie within their (inclusive) physical bounds, rounding errors at a bound included; NaN does not."""
    return (values >= low - np.abs(low) * _BOUND_TOLERANCE) & (values <= high + np.abs(high) * _BOUND_TOLERANCE)


# A property's name: a column of the store's properties_wide view, so a plain lower-case SQL name
PropertyName = Annotated[str, pydantic.StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
UNCERTAINTY = "uncertainty"  # the properties table's column of a value's standard uncertainty
# What a dataset's resolution adds to its rows (matreg.curate.conflicts): a median's spread (max - min of the values it
# merges) and their records, and the rule that gave each row ('median of 2', 'prefer experimental')
RESOLVED_BY = "resolved_by"
PREFERRED_BY = "prefer "  # `resolved_by` of a row strategy prefer kept: this, then the `prefer` entry that ranked it
RESOLUTION_COLUMNS = ("spread", "records", RESOLVED_BY)
# The columns the wide layouts write of each property `p`, `p_<suffix>` (`wide_column`), so no property is named so:
# its values' uncertainties beside its values (properties_wide, wide exports), then, after every property's (wide
# exports), what the curation layer says of each value (its stored value, flags, review: matreg.curate.review) and
# what a resolution adds
WIDE_SUFFIXES = (UNCERTAINTY, "raw_value", "flags", "reviewed", *RESOLUTION_COLUMNS)


def wide_column(prop: str, column: str) -> str:
    """The column of the wide layouts (properties_wide, wide exports) holding what long rows' `column` says of each
    value of property `prop`, beside the values' own column (`prop`): 'band_gap_uncertainty'."""
    return f"{prop}_{column}"


def _wide_clash(names: list[str]) -> str | None:
    """Why properties of these names cannot be columns of one wide layout: a name is the column the layout writes of
    another's values (`WIDE_SUFFIXES`: band_gap_uncertainty, band_gap_flags of band_gap); None when none is."""
    beside = {wide_column(name, suffix): (name, suffix) for name in names for suffix in WIDE_SUFFIXES}
    clashing = sorted(beside.keys() & set(names))
    return "; ".join(_clash_text(name, *beside[name]) for name in clashing) or None


def _clash_text(name: str, prop: str, suffix: str) -> str:
    """'band_gap_flags: the column of band_gap's 'flags', which wide exports have beside its values'."""
    what = "uncertainties" if suffix == UNCERTAINTY else f"'{suffix}'"
    where = "properties_wide and wide exports" if suffix == UNCERTAINTY else "wide exports"
    return f"{name}: the column of {prop}'s {what}, which {where} have beside its values"


class Vocabulary(pydantic.RootModel[dict[PropertyName, PropertySpec]]):
    """The property vocabulary by canonical name."""

    _aliases: dict[tuple[str, str], str] = pydantic.PrivateAttr(default_factory=dict)

    @pydantic.model_validator(mode="after")
    def _no_column_names(self) -> Vocabulary:
        """A property's name is none of the wide layouts' other columns: a table's column, or one they write of another
        property's values (`_wide_clash`)."""
        columns = {column for spec in load_tables().values() for column in spec.columns}
        taken = sorted(columns.intersection(self.root))
        if taken:
            raise ValueError(f"{', '.join(taken)}: a column of the store's tables, which properties_wide has too")
        clash = _wide_clash(list(self.root))
        if clash:
            raise ValueError(clash)
        return self

    def model_post_init(self, context: object) -> None:
        """Index every (source, lower-case alias) once: `resolve` runs for every value fetched."""
        for canonical, spec in self.root.items():
            for source, aliases in spec.aliases.items():
                for alias in aliases:
                    self._aliases.setdefault((source, alias.strip().lower()), canonical)

    def resolves(self, name: str) -> bool:
        """Whether `name` is a property's name or an alias of one (of any source)."""
        folded = name.strip().lower()
        return name in self.root or any(alias == folded for _, alias in self._aliases)

    def resolve(self, name: str, source: str) -> str | None:
        """Canonical property for a name or one of its aliases (the source's own, then the lab ones)."""
        if name in self.root:
            return name
        folded = name.strip().lower()
        return self._aliases.get((source, folded)) or self._aliases.get(("lab", folded))


_UNSET = "\0"  # a method whose `functional` the vocabulary does not give is its own functional


class MethodSpec(pydantic.BaseModel, extra="forbid"):
    """One entry of the method vocabulary; `qualifier` is what it adds to its functional ('AEL, VRH' of
    'PBE (AEL, VRH)'), which then qualifies any method of the vocabulary ('PBE+U (AEL, VRH)', `Methods.canonical`)."""

    description: str
    functional: str | None = _UNSET
    qualifier: str | None = None
    aliases: list[str] = []


# '<method> (<qualifier>)': the method is what precedes the last parenthesis ('PBE(+U) (AGL)': PBE(+U), AGL)
_QUALIFIED = re.compile(r"(.+?)\s*\(([^()]*)\)")


class Methods(pydantic.RootModel[dict[str, MethodSpec]]):
    """The method vocabulary by canonical name."""

    _names: dict[str, str] = pydantic.PrivateAttr(default_factory=dict)
    _qualifiers: dict[str, str] = pydantic.PrivateAttr(default_factory=dict)  # declared qualifiers, by folded form

    def model_post_init(self, context: object) -> None:
        """Index every name, alias and qualifier by its folded form once; check that each `functional` is a declared
        name and that a method with a qualifier is named '<its functional> (<qualifier>)'."""
        for canonical, spec in self.root.items():
            if spec.functional == _UNSET:
                spec.functional = canonical
            elif spec.functional is not None and spec.functional not in self.root:
                raise ValueError(f"{canonical}: functional '{spec.functional}' is not a method of the vocabulary")
            for name in (canonical, *spec.aliases):
                if self._names.setdefault(folded_method(name), canonical) != canonical:
                    raise ValueError(f"'{name}' names two methods: {self._names[folded_method(name)]} and {canonical}")
            if spec.qualifier is not None:
                self._declare_qualifier(canonical, spec)

    def _declare_qualifier(self, canonical: str, spec: MethodSpec) -> None:
        named = f"{spec.functional} ({spec.qualifier})"
        if spec.functional is None or folded_method(canonical) != folded_method(named):
            raise ValueError(f"{canonical}: a method with qualifier '{spec.qualifier}' is named '{named}'")
        if self._qualifiers.setdefault(folded_method(spec.qualifier), spec.qualifier) != spec.qualifier:
            raise ValueError(f"qualifier '{spec.qualifier}' is declared twice")

    @property
    def qualifiers(self) -> list[str]:
        """The qualifiers the vocabulary declares ('AEL, VRH', 'AGL')."""
        return list(self._qualifiers.values())

    def canonical(self, method: str | None) -> str | None:
        """The vocabulary's name of a method or of one of its aliases ('X+U' of a declared X without one; 'X (Q)' of
        a method X and a declared qualifier Q: 'pbe+u (ael,vrh)' is 'PBE+U (AEL, VRH)'), else the method as given,
        stripped (a lab's own technique)."""
        if method is None:
            return None
        folded = folded_method(method)
        found = self._names.get(folded)
        if found is None and folded.endswith("+u"):
            base = self._names.get(folded.removesuffix("+u"))
            found = f"{base}+U" if base else None
        return found or self._qualified(method) or method.strip()

    def _qualified(self, method: str) -> str | None:
        """'<method> (<qualifier>)' under the vocabulary's names, where the method can be qualified
        (`_qualifiable`) and the qualifier is declared; else None."""
        match = _QUALIFIED.fullmatch(method.strip())
        qualifier = self._qualifiers.get(folded_method(match[2])) if match else None
        if qualifier is None:
            return None
        base = self.canonical(match[1])
        return f"{base} ({qualifier})" if self._qualifiable(base) else None

    def qualifier_of(self, method: str | None) -> str | None:
        """The declared qualifier a method's name (under the vocabulary's name) ends with in parentheses ('AEL, VRH' of
        'PBE+U (AEL, VRH)' and of its alias 'AEL (PBE elastic constants, VRH average)', 'AGL' of any method so
        qualified), else None (PBE, PBE(+U), OptB88vdW (Voigt), a lab's technique)."""
        match = _QUALIFIED.fullmatch(self.canonical(method) or "")
        return self._qualifiers.get(folded_method(match[2])) if match else None

    def _qualifiable(self, name: str) -> bool:
        """True for a method of the vocabulary, or one of them with '+U', that is not qualified itself."""
        spec = self.root.get(name) or self.root.get(name.removesuffix("+U"))
        return spec is not None and spec.qualifier is None

    def functional(self, method: str | None) -> str | None:
        """The DFT functional of a method of the vocabulary (of a qualified one, its method's: PBE+U of
        'PBE+U (AEL, VRH)'); None for one without (DFT unnamed, a mix, a critical evaluation) or a lab's technique."""
        name = self.canonical(method)
        if name is None:
            return None
        declared = self.root.get(name)
        if declared is not None:
            return declared.functional
        match = _QUALIFIED.fullmatch(name)
        if match and match[2] in self.qualifiers and self._qualifiable(match[1]):  # qualified, not declared
            return self.functional(match[1])
        base = self.root.get(name.removesuffix("+U"))  # 'X+U' of a declared X
        return name if base is not None and base.functional is not None else None

    def names_a_functional(self, method: str | None) -> bool:
        """True for a method of the vocabulary that has a DFT functional (PBE, GGA+U, HSE06, PBE (AEL, VRH), one of
        them with '+U' added, or qualified: PW91 (AGL)), not for one without (DFT unnamed, a mix, a critical
        evaluation) nor a lab's technique."""
        return self.functional(method) is not None

    def selected_by(self, names: list[str]) -> list[str]:
        """The methods a dataset's `methods:` selects, folded (`folded_method`: a query compares stored methods folded):
        each name's canonical method, the methods whose functional it is (PBE selects PBE (AEL, VRH)), the method
        with each qualifier (PBE+U selects PBE+U (AEL, VRH)), and their aliases (the labels of stores written before
        the vocabulary)."""
        wanted = {self.canonical(name) for name in names}
        selected = wanted | {name for name, spec in self.root.items() if spec.functional in wanted}
        selected |= {f"{name} ({q})" for name in wanted if self._qualifiable(name) for q in self.qualifiers}
        aliases = [alias for name in selected if name in self.root for alias in self.root[name].aliases]
        return sorted({folded_method(name) for name in [*selected, *aliases]})

    def selecting_none(self, names: list[str], methods: Iterable[str]) -> list[str]:
        """The names of a dataset's `methods:` that select none of `methods` (stored labels, as `selected_by`)."""
        present = {folded_method(method) for method in methods}
        return [name for name in names if present.isdisjoint(self.selected_by([name]))]


def folded_method(method: str) -> str:
    """A method as names are compared: without spaces, letter case aside ('PBE + U' is 'pbe+u')."""
    return "".join(method.split()).casefold()


@lru_cache(maxsize=4)
def load_methods(path: Path | None = None) -> Methods:
    """The method vocabulary declared in schemas/methods.yaml."""
    return load_model(path or resource_path("schemas/methods.yaml"), Methods)


@lru_cache(maxsize=1024)
def canonical_method(method: str | None) -> str | None:
    """A method under its name in the method vocabulary (see Methods.canonical); worked out once per spelling."""
    return load_methods().canonical(method)


@lru_cache(maxsize=4)
def load_tables(path: Path | None = None) -> dict[str, TableSpec]:
    """The canonical tables declared in schemas/tables.yaml."""
    return load_model(path or resource_path("schemas/tables.yaml"), Tables).root


PROPERTIES = "schemas/properties.yaml"  # matreg's property vocabulary, and a project's own properties beside it


def load_vocabulary(path: Path | None = None) -> Vocabulary:
    """The property vocabulary declared in `path`; by default matreg's schemas/properties.yaml with the properties a
    project adds in its own ./schemas/properties.yaml (of the working directory)."""
    # (os.getcwd, not Path.cwd, in working_directory: 0.7 µs a call against 4, and a lab import asks once a cell)
    return _vocabulary_file(path) if path is not None else _project_vocabulary(working_directory())


def vocabulary_key() -> tuple[tuple[str, str, tuple[float, float], tuple[float, float] | None], ...]:
    """The vocabulary's properties with their units and bounds: what the checks and views made of it differ by."""
    return tuple((name, spec.unit, spec.bounds, spec.ion_bounds) for name, spec in load_vocabulary().root.items())


@lru_cache(maxsize=8)
def _vocabulary_file(path: Path) -> Vocabulary:
    return load_model(path, Vocabulary)


@lru_cache(maxsize=8)
def _project_vocabulary(folder: str | None) -> Vocabulary:
    """matreg's vocabulary and the properties of a project's (in `folder`; None: there is none): new names, whose
    aliases name no property of matreg's (an entry equal to matreg's is matreg's, as in a copy of its file);
    ConfigError naming the file for any other."""
    bundled = _vocabulary_file(resource_path(PROPERTIES))
    path = None if folder is None else Path(folder) / PROPERTIES
    if path is None or not path.is_file():
        return bundled
    project = _vocabulary_file(path).root
    redefined = [name for name, spec in project.items() if name in bundled.root and _measured_otherwise(spec, name)]
    if redefined:
        raise ConfigError(
            f"{path}: {', '.join(redefined)} is matreg's property, in another unit or bounds there: a project's "
            f"{PROPERTIES} adds properties and cannot redefine matreg's (give yours another name)"
        )
    added = {name: spec for name, spec in project.items() if name not in bundled.root}
    names = [*added, *(alias for spec in added.values() for aliases in spec.aliases.values() for alias in aliases)]
    taken = [name for name in names if bundled.resolves(name)]
    if taken:
        raise ConfigError(f"{path}: '{taken[0]}' names a property of matreg's already (its name or an alias)")
    clash = _wide_clash([*bundled.root, *added])
    if clash:
        raise ConfigError(f"{path}: {clash}")
    return Vocabulary(bundled.root | added)


def _measured_otherwise(spec: PropertySpec, name: str) -> bool:
    """Whether a project's entry of matreg's property `name` gives it another unit or bounds (a copy of matreg's file,
    of this version or another, gives the same, or the bounds of a version before (`former_bounds`): its entries are
    matreg's own as this version has them; a copy of a version before ions had bounds of their own gives none)."""
    own = _vocabulary_file(resource_path(PROPERTIES)).root[name]
    other_bounds = spec.bounds not in (own.bounds, *own.former_bounds)
    other_ion_bounds = spec.ion_bounds is not None and spec.ion_bounds != own.ion_bounds
    return spec.unit != own.unit or other_bounds or other_ion_bounds


EXTENSIONS = "schemas/extensions"  # a project's own (in the working directory), then matreg's bundled ones
_EXTENSION_NAME = r"[a-z0-9][a-z0-9_.-]*"


def extension_files() -> list[str]:
    """The files of the lab schema extensions the working directory declares ('schemas/extensions/furnace.yaml'),
    read before matreg's bundled ones: those of a name an extension can have."""
    folder = working_directory()
    paths = [] if folder is None else sorted((Path(folder) / EXTENSIONS).glob("*.yaml"))
    return [f"{EXTENSIONS}/{path.name}" for path in paths if re.fullmatch(_EXTENSION_NAME, path.stem)]


def load_extension(name: str) -> ExtensionSpec:
    """The lab schema extension declared in schemas/extensions/<name>.yaml, of the working directory (a project's own)
    or shipped with matreg; ConfigError if there is none."""
    return _extension_in(name, working_directory())


@lru_cache(maxsize=16)
def _extension_in(name: str, project: str | None) -> ExtensionSpec:
    own = [] if project is None else [Path(project) / EXTENSIONS]  # (None: no working directory, no project's)
    folders = [*own, resource_path(EXTENSIONS)]
    paths = [folder / f"{name}.yaml" for folder in folders]
    found = next((path for path in paths if path.is_file()), None)
    if not re.fullmatch(_EXTENSION_NAME, name) or found is None:
        known = ", ".join(sorted({path.stem for folder in folders for path in folder.glob("*.yaml")})) or "none"
        raise ConfigError(
            f"no schema extension '{name}' in ./{EXTENSIONS}/ or matreg's bundled {EXTENSIONS}/ (known: {known})"
        )
    return load_model(found, ExtensionSpec)


def table_spec(name: str) -> TableSpec:
    """Spec of one canonical table; ConfigError if it is not declared."""
    tables = load_tables()
    if name not in tables:
        raise ConfigError(f"no canonical table '{name}' (known: {', '.join(tables)})")
    return tables[name]


def value_key() -> list[str]:
    """The columns that name one value of a record (the properties table's key: record, property, method and the
    conditions it applies at)."""
    return list(table_spec("properties").primary_key)


def value_conditions() -> list[str]:
    """The conditions a value applies at (temperature, pressure): the properties table's condition columns."""
    return [name for name, column in table_spec("properties").columns.items() if column.condition]


def provenances() -> tuple[str, ...]:
    """How values may have been obtained (experimental, dft, simulated): the provenance vocabulary tables.yaml
    declares once (materials.provenance's `isin`, which properties.provenance shares)."""
    return tuple(table_spec("materials").columns["provenance"].isin or ())


def children_of(name: str) -> list[str]:
    """The canonical tables whose rows belong to rows of table `name` (their `belongs_to`)."""
    return [child for child, spec in load_tables().items() if spec.belongs_to == name]


@lru_cache(maxsize=16)
def arrow_schema(name: str) -> pyarrow.Schema:
    """Arrow/Parquet schema of a canonical table."""
    spec = table_spec(name)
    return pyarrow.schema(
        [pyarrow.field(col, _ARROW_TYPES[c.type], nullable=c.nullable) for col, c in spec.columns.items()]
    )


def file_schema(frame: pd.DataFrame) -> pyarrow.Schema:
    """The Arrow types a frame of the store's rows is written to a file with (an export): a column of the materials
    or properties table as declared there, any other as pandas' type gives it (`stable_type`), so that the file's
    types do not depend on which rows it holds (no name given: still a text column) nor on the host's time zone."""
    declared = _declared_types()
    inferred = pyarrow.Schema.from_pandas(frame, preserve_index=False)
    return pyarrow.schema([(field.name, declared.get(field.name, stable_type(field.type))) for field in inferred])


def stable_type(kind: pyarrow.DataType) -> pyarrow.DataType:
    """Strings as `string`, all-empty columns as strings and times as the store declares them (`timestamp[us,
    tz=UTC]`: the same instants, in whatever zone the frame had them), whatever pandas inferred this time."""
    if pyarrow.types.is_null(kind) or pyarrow.types.is_large_string(kind):
        return pyarrow.string()
    if pyarrow.types.is_timestamp(kind):
        return _ARROW_TYPES["timestamp"]
    return kind


def declared_times(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its times as the store declares them: in UTC, to the microsecond (the same instants, in
    whatever zone the frame had them), so that a text file shows them in UTC whatever the host's time zone."""
    zoned = [name for name, dtype in frame.dtypes.items() if isinstance(dtype, pd.DatetimeTZDtype)]
    return frame.astype(dict.fromkeys(zoned, _PANDAS_TYPES["timestamp"])) if zoned else frame


@lru_cache(maxsize=1)
def _declared_types() -> dict[str, pyarrow.DataType]:
    return {field.name: field.type for table in ("materials", "properties") for field in arrow_schema(table)}


def conformed(name: str, table: pyarrow.Table, columns: Sequence[str] | None = None) -> pyarrow.Table:
    """The `columns` (default: all) of rows of canonical table `name` as declared today, from a table an older matreg
    may have written (a staged journal): a column it lacks is empty, types and nullability are today's."""
    schema = arrow_schema(name)
    return conformed_to(table, pyarrow.schema([schema.field(column) for column in columns or schema.names]))


def conformed_to(table: pyarrow.Table, schema: pyarrow.Schema) -> pyarrow.Table:
    """`table`'s rows with the columns of `schema`, in its order and types; a column the table lacks is empty."""
    names = set(table.column_names)
    arrays = [
        _cast(table.column(field.name), field.type)
        if field.name in names
        else pyarrow.nulls(table.num_rows, field.type)
        for field in schema
    ]
    return pyarrow.Table.from_arrays(arrays, schema=schema)


def _cast(column: pyarrow.ChunkedArray, kind: pyarrow.DataType) -> pyarrow.ChunkedArray:
    """`column` as of type `kind`: itself where it is that type exactly, its list items' name too (a cast costs a
    compute call even then: ~15 µs a column of a page)."""
    return column if column.type.equals(kind, check_metadata=True) else column.cast(kind)


def arrow_table(name: str, rows: pyarrow.Table | pd.DataFrame | list[dict]) -> pyarrow.Table:
    """Rows of canonical table `name` (Arrow, pandas or dicts) as an Arrow table of its declared types."""
    if isinstance(rows, pyarrow.Table):
        return rows.cast(arrow_schema(name))
    if isinstance(rows, pd.DataFrame):
        return pyarrow.Table.from_pandas(rows, schema=arrow_schema(name), preserve_index=False)
    return pyarrow.Table.from_pylist(rows, schema=arrow_schema(name))


def pandera_schema(name: str, unique_keys: bool = True) -> pa.DataFrameSchema:
    """pandera schema of a canonical table, with vocabulary rules for the properties table.

    `unique_keys=False` drops the one-row-per-key rule, for rows of several pages of a run that the store's views
    deduplicate (a record may legitimately appear on two pages).
    """
    return _pandera_schema(name, unique_keys, vocabulary_key())


@lru_cache(maxsize=16)
def _pandera_schema(name: str, unique_keys: bool, vocabulary: tuple) -> pa.DataFrameSchema:
    """`pandera_schema`, made once per table, key rule and vocabulary (`vocabulary_key`: what its checks differ by)."""
    spec = table_spec(name)
    columns = {col: _pandera_column(c, unique_keys) for col, c in spec.columns.items()}
    checks = [_vocabulary_check()] if any(c.vocabulary for c in spec.columns.values()) else []
    unique = spec.primary_key if unique_keys else None
    return pa.DataFrameSchema(columns, checks=checks, coerce=True, strict=True, unique=unique, name=name)


def extension_schema(name: str) -> pa.DataFrameSchema:
    """pandera schema of a lab schema extension (`load_extension`'s: the working directory's own, else matreg's): one
    row per record, columns checked like canonical ones."""
    return _extension_schema(name, working_directory())


@lru_cache(maxsize=16)
def _extension_schema(name: str, project: str | None) -> pa.DataFrameSchema:
    """`extension_schema` of the extension that project folder `project` reads (`_extension_in`)."""
    columns = {col: _pandera_column(c, unique_keys=False) for col, c in _extension_in(name, project).columns.items()}
    return pa.DataFrameSchema(columns, coerce=True, strict=True, name=f"extension {name}")


def _pandera_column(column: ColumnSpec, unique_keys: bool) -> pa.Column:
    checks = [_list_of_strings()] if column.type == "list<string>" else []
    if column.isin is not None:
        checks.append(pa.Check.isin(column.isin))
    if column.min is not None:
        checks.append(pa.Check.ge(column.min))
    if column.max is not None:
        checks.append(pa.Check.le(column.max))
    if column.vocabulary:
        checks.append(pa.Check.isin(sorted(load_vocabulary().root)))
    unique = column.unique and unique_keys
    return pa.Column(_PANDAS_TYPES[column.type], checks=checks, nullable=column.nullable, unique=unique)


def _list_of_strings() -> pa.Check:
    """Each value is a list (or array) of strings."""

    def is_list_of_strings(value) -> bool:
        return isinstance(value, (list, tuple, np.ndarray)) and all(isinstance(item, str) for item in value)

    def check(series: pd.Series) -> pd.Series:
        if series.dtype == pd.ArrowDtype(LIST_OF_STRINGS):  # Arrow's type already says it: only nulls are not lists
            return series.notna()
        return series.map(is_list_of_strings)

    return pa.Check(check, error="a list of strings")


def _vocabulary_check() -> pa.Check:
    """Each value carries its property's canonical unit and lies within the property's bounds (the widest: a row does
    not give its record's charge, which chose them as the value was harmonized)."""
    vocabulary = load_vocabulary().root

    def conforms(frame: pd.DataFrame) -> pd.Series:
        codes, names = pd.factorize(frame["property"])  # a few properties over many rows: look each up once
        specs = [vocabulary.get(name) for name in names]
        units = [spec.unit if spec else None for spec in specs]
        low = np.array([spec.widest_bounds[0] if spec else np.nan for spec in specs] + [np.nan])[codes]
        high = np.array([spec.widest_bounds[1] if spec else np.nan for spec in specs] + [np.nan])[codes]
        value = frame["value"].to_numpy(dtype=float, na_value=np.nan)
        ok = _of_units(frame["unit"], units, codes) & within_bounds(value, low, high)
        return pd.Series(ok, index=frame.index, dtype=bool)

    return pa.Check(conforms, error="value in canonical unit and within the property's bounds")


def _of_units(given: pd.Series, units: list[str | None], codes: np.ndarray) -> np.ndarray:
    """Which rows' units (`given`) are their property's (`units[code]`; None, or code -1, for none): compared as
    Arrow strings where no unit is missing (a text object per row took half of the vocabulary check's time), else as
    Python objects (a missing unit as None: that row fails, not the check)."""
    if given.dtype != pd.ArrowDtype(pyarrow.string()) or given.hasnans:
        return given.to_numpy(dtype=object, na_value=None) == np.array([*units, None], dtype=object)[codes]
    wanted = pyarrow.array([*units, None], pyarrow.string()).take(np.where(codes < 0, len(units), codes))
    return pyarrow.compute.equal(pyarrow.array(given), wanted).fill_null(False).to_numpy(zero_copy_only=False)


def schema_markdown(extensions: dict[str, ExtensionSpec | ConfigError]) -> str:
    """Markdown reference of the canonical tables, the property and method vocabularies and the schema extensions
    (`extensions`, as `schema_extensions` loads them)."""
    lines = ["# matreg canonical schema", ""]
    for name, spec in load_tables().items():
        lines += [f"## `{name}`", "", spec.description, "", f"Key: {', '.join(spec.primary_key)}", ""]
        lines += [_belonging(spec), ""] if spec.belongs_to or spec.read_at else []
        lines += [_VOCABULARY_RULE, ""] if any(c.vocabulary for c in spec.columns.values()) else []
        lines += [*_columns_markdown(spec.columns), ""]
    lines += ["## Property vocabulary", "", "| property | unit | bounds | description |", "|---|---|---|---|"]
    for name, prop in load_vocabulary().root.items():
        lines.append(f"| `{name}` | {prop.unit} | {_bounds_in_words(prop)} | {prop.description} |")
    qualifiers = ", ".join(f"`{qualifier}`" for qualifier in load_methods().qualifiers)
    lines += ["", "## Method vocabulary", "", f"Qualifiers of any method: {qualifiers} ('PBE+U (AEL, VRH)').", ""]
    lines.append("| method | functional | also read as | description |")
    lines.append("|---|---|---|---|")
    for name, method in load_methods().root.items():
        aliases = ", ".join(f"`{alias}`" for alias in method.aliases)
        lines.append(f"| `{name}` | {method.functional or ''} | {aliases} | {method.description} |")
    return "\n".join([*lines, "", *_extensions_markdown(extensions)]) + "\n"


# What `_vocabulary_check` holds each row of a table with a vocabulary column to
_VOCABULARY_RULE = (
    "Each row's `unit` is its property's canonical unit and its `value` lies within the property's bounds (see "
    f"Property vocabulary; where it gives bounds {ION_BOUNDS_OF} too, the wider: a row does not give its record's "
    "charge)."
)


def _columns_markdown(columns: dict[str, ColumnSpec]) -> list[str]:
    """The Markdown table of a table's or an extension's columns: type, nullability, the rules a valid value keeps
    (`_constraints`) and description."""
    lines = ["| column | type | nullable | constraints | description |", "|---|---|---|---|---|"]
    for name, column in columns.items():
        condition = " A condition the value applies at (part of its key)." if column.condition else ""
        nullable = "yes" if column.nullable else "no"
        lines.append(
            f"| `{name}` | {column.type} | {nullable} | {_constraints(column)} | {column.description}{condition} |"
        )
    return lines


def _constraints(column: ColumnSpec) -> str:
    """The rules a column's values keep besides their type and nullability, as `_pandera_column` checks them:
    '1 .. 230', '>= 0', 'unique', 'one of: a, b', 'a property of the vocabulary'; '' where none."""
    rules = [
        _range_in_words(column.min, column.max),
        "unique" if column.unique else None,
        f"one of: {', '.join(column.isin)}" if column.isin else None,
        "a property of the vocabulary" if column.vocabulary else None,
    ]
    return "; ".join(rule for rule in rules if rule)


def _range_in_words(low: float | None, high: float | None) -> str | None:
    """'1 .. 230', '>= 0', '<= 1'; None without bounds."""
    if low is not None and high is not None:
        return f"{low:g} .. {high:g}"
    if low is not None:
        return f">= {low:g}"
    return None if high is None else f"<= {high:g}"


def _extensions_markdown(extensions: dict[str, ExtensionSpec | ConfigError]) -> list[str]:
    """The Markdown section of the schema extensions a lab mapping may name (`extensions`: `schema_extensions`),
    each with its columns, or its error where it does not load."""
    lines = [
        "## Schema extensions",
        "",
        "Extra columns a lab dataset may carry (its mapping: `extension: <name>` and `extra_columns: {<file column>: "
        "<column>}`), checked as below and stored in `record_attributes`, one row per value.",
    ]
    own = {Path(file).stem for file in extension_files()}
    for name, spec in extensions.items():
        where = f" (this project's: {EXTENSIONS}/{name}.yaml)" if name in own else ""
        said = (
            [f"Not loaded: {spec}"]
            if isinstance(spec, ConfigError)
            else [spec.description, "", *_columns_markdown(spec.columns)]
        )
        lines += ["", f"### `{name}`{where}", "", *said]
    return lines


def schema_extensions() -> dict[str, ExtensionSpec | ConfigError]:
    """Each schema extension a lab mapping may name, matreg's and the working directory's own (`load_extension`'s,
    which reads a project's before matreg's of the same name), by name: its spec, or the error of loading it (a
    project's file that does not load). A command loads them once: a file that does not load is read again by each
    call (`_extension_in` caches the specs alone)."""
    own = {Path(file).stem for file in extension_files()}
    loaded: dict[str, ExtensionSpec | ConfigError] = {}
    for name in sorted(own | _shipped_extensions()):
        try:
            loaded[name] = load_extension(name)
        except ConfigError as exc:
            loaded[name] = exc
    return loaded


def _shipped_extensions() -> set[str]:
    """The names of the schema extensions shipped with matreg (its schemas/extensions/<name>.yaml)."""
    stems = (path.stem for path in resource_path(EXTENSIONS).glob("*.yaml"))
    return {stem for stem in stems if re.fullmatch(_EXTENSION_NAME, stem)}


def _bounds_in_words(spec: PropertySpec) -> str:
    """'0.0 .. 5000.0', and an ion's where they differ ('; of an ion or aqueous solute: -5000.0 .. 5000.0')."""
    bounds = f"{spec.bounds[0]} .. {spec.bounds[1]}"
    if spec.ion_bounds is None:
        return bounds
    return f"{bounds}; {ION_BOUNDS_OF}: {spec.ion_bounds[0]} .. {spec.ion_bounds[1]}"


def _belonging(spec: TableSpec) -> str:
    """What `belongs_to` and `read_at` mean for a table, in words."""
    if spec.belongs_to:
        return f"Each row belongs to a `{spec.belongs_to}` row: withheld or superseded with it."
    return f"A stored row read from its source later (`{spec.read_at}`) than a run's row is not replaced by it."
