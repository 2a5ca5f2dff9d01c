"""A lab record's schema extension attributes (`record_attributes`) as columns of a dataset's exported, released rows.

The store holds each attribute value as text with its extension column's type. An export (CSV, Parquet, JSON lines;
long or wide) or a release of a dataset gives each attribute of an extension that the rows' records have a column
after the canonical, curation and resolution columns, in the extension's order (extensions by name): named by the
attribute, or `<extension>.<attribute>` where that name is an export column's (`formula`, a wide `band_gap_flags`) or
where two extensions of the records declare it; typed as stored (text where its stored rows say several types). A
row's cell is its record's value, empty where it has none; a row resolved from several records (a median's
'group:...', its `records`) carries the value all of them have, empty where they differ or one has none. Rows whose
records have no attribute get no column, so their files are what they were before matreg exported attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pyarrow

from matreg.catalog import MERGED_ROW_PREFIX, MERGED_TEXTS_JOINED_BY
from matreg.errors import ConfigError
from matreg.schema import (
    EXTENSIONS,
    RESOLUTION_COLUMNS,
    WIDE_SUFFIXES,
    ColumnSpec,
    column_arrow_type,
    load_extension,
    pandas_dtype,
    wide_column,
)

if TYPE_CHECKING:
    from pandas.core.groupby import DataFrameGroupBy

    from matreg.store import Store

_STORED = (
    "SELECT record_id, extension, attribute, value, type FROM record_attributes "
    "WHERE record_id IN (SELECT unnest(?)) ORDER BY record_id, attribute"
)


def with_attributes(store: Store, rows: pd.DataFrame, properties: list[str]) -> tuple[pd.DataFrame, list[dict]]:
    """`rows` (a dataset's long rows, resolved) with a column per extension attribute their records have, and what
    each column is (`column`, `extension`, `attribute`, `type`, `description`: a release manifest's `attributes`);
    `rows` as they are, and no columns, where none of their records has one."""
    members = _members(rows)
    stored = store.read(_STORED, [sorted(set(members.dropna()))])
    if stored.empty:
        return rows, []
    columns = _columns(stored, _export_columns(rows, properties))
    values = _by_record(stored, columns).reindex(members.to_numpy()).set_axis(members.index)
    per_row = shared_values(values.groupby(level=0)).reindex(range(len(rows))).set_axis(rows.index)
    return pd.concat([rows, per_row], axis=1), columns


def shared_values(grouped: DataFrameGroupBy) -> pd.DataFrame:
    """Per group, each column's value where all its rows have that one (empty where they differ or one is empty)."""
    return grouped.first().where(grouped.nunique(dropna=False).eq(1))


def typed(frame: pd.DataFrame, attributes: list[dict]) -> pd.DataFrame:
    """`frame` (a release's payload as read) with its attribute columns (`with_attributes`' descriptions) in their
    types: Parquet gives floats for whole numbers where some are empty, objects for such booleans."""
    dtypes = {entry["column"]: _dtype(entry["type"]) for entry in attributes}
    return frame.astype({column: dtype for column, dtype in dtypes.items() if dtype is not None})


def _members(rows: pd.DataFrame) -> pd.Series:
    """The record ids of each row, by its position: its own, or those a median's row merged (its `records`)."""
    ids = rows["record_id"].reset_index(drop=True).astype(object)
    merged = ids.str.startswith(MERGED_ROW_PREFIX)
    if not merged.any():
        return ids
    records = rows["records"].reset_index(drop=True).astype(object).str.split(MERGED_TEXTS_JOINED_BY)
    return ids.where(~merged, records).explode()


def _export_columns(rows: pd.DataFrame, properties: list[str]) -> set[str]:
    """The names an export of `rows` may give its own columns: the long rows', a resolution's, and a wide layout's
    (each property's, and its `<property>_<suffix>` columns)."""
    wide = {wide_column(prop, suffix) for prop in properties for suffix in WIDE_SUFFIXES}
    return {*rows.columns, *RESOLUTION_COLUMNS, *properties, *wide}


def _columns(stored: pd.DataFrame, taken: set[str]) -> list[dict]:
    """What each column of the stored attributes is, in order: by extension, then as its extension declares them."""
    types = stored.groupby(["extension", "attribute"])["type"].agg(_one_type)
    attributes = types.index.get_level_values("attribute")
    repeated = set(attributes[attributes.duplicated()])
    declared = {extension: _declared(extension) for extension in types.index.unique("extension")}
    order = sorted(types.index, key=lambda pair: (pair[0], *_place(list(declared[pair[0]]), pair[1])))
    return [
        {
            "column": f"{extension}.{attribute}" if attribute in taken | repeated else attribute,
            "extension": extension,
            "attribute": attribute,
            "type": types[extension, attribute],
            "description": _description(declared[extension].get(attribute), extension, attribute),
        }
        for extension, attribute in order
    ]


def _one_type(types: pd.Series) -> str:
    """The type of an attribute's stored values: theirs, or text where they say several (its extension changed)."""
    return types.iloc[0] if types.nunique() == 1 else "string"


def _declared(extension: str) -> dict[str, ColumnSpec]:
    """The columns extension `extension` declares; none where it is not declared here (a project's own, exported
    from another folder)."""
    try:
        return load_extension(extension).columns
    except ConfigError:
        return {}


def _place(declared: list[str], attribute: str) -> tuple[int, str]:
    """Where an attribute goes among its extension's: as declared, those no longer declared after them by name."""
    return (declared.index(attribute) if attribute in declared else len(declared), attribute)


def _description(column: ColumnSpec | None, extension: str, attribute: str) -> str:
    """The extension's description of the attribute, or what it is where the extension is not declared here."""
    if column is not None:
        return column.description
    return f"'{attribute}' of schema extension '{extension}' (not declared here: ./{EXTENSIONS}/{extension}.yaml)"


def _by_record(stored: pd.DataFrame, columns: list[dict]) -> pd.DataFrame:
    """The stored values, one row per record and a column of its type per attribute (`columns`)."""
    named = {(entry["extension"], entry["attribute"]): entry["column"] for entry in columns}
    column = pd.Series([named[pair] for pair in zip(stored["extension"], stored["attribute"], strict=True)])
    texts = stored.assign(column=column.to_numpy()).pivot(index="record_id", columns="column", values="value")
    return pd.DataFrame(
        {entry["column"]: _typed_texts(texts[entry["column"]], entry["type"]) for entry in columns}, index=texts.index
    )


def _typed_texts(texts: pd.Series, column_type: str) -> pd.Series:
    """Values stored as text in their column's type (`column_arrow_type`: a time to the microsecond, in UTC)."""
    array = pyarrow.array(texts.astype(object).where(texts.notna(), None), pyarrow.string())
    return array.cast(column_arrow_type(column_type)).to_pandas(types_mapper=pandas_dtype).set_axis(texts.index)


def _dtype(column_type: str) -> object:
    """The pandas dtype of a column of `column_type` (None: pandas' own, float64)."""
    return pandas_dtype(column_arrow_type(column_type))
