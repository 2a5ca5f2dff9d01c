"""Dataset cards of releases: README, Croissant JSON-LD validated with mlcroissant, BibTeX of the sources, plots.

Everything is derived from the release's manifest, payload, known conflicts and the resolution's warnings, so the
card says exactly what was released. mlcroissant and matplotlib load only here, when a release is made.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from matreg.errors import ValidationError
from matreg.export import selection_text
from matreg.schema import load_tables, load_vocabulary, value_conditions
from matreg.store import atomic_write

README = "README.md"
CROISSANT = "croissant.json"
BIBTEX = "sources.bib"
PLOTS = "plots"
MAX_CONFLICT_ROWS = 30  # the README lists this many conflicting values; the store has them all
CURATION_COLUMNS = {
    "raw_value": "The value as stored; `value` differs from it where a steward corrected it (empty where a steward "
    "readmitted the value from quarantine with a corrected value or unit: what the source gave is in "
    "`original_value`, `original_unit`).",
    "flags": "'<steward>: <reason>' of the curation-log flags on the record or value, and of the readmit that admitted "
    "the value from quarantine (empty when none).",
    "reviewed": "True when a steward accepted (or corrected, or readmitted from quarantine) the record or value.",
    "spread": "max - min of the linked values this row resolves (canonical unit).",
    "records": "The records whose values this row resolves, joined by '; '.",
    "resolved_by": "The rule of the dataset's resolution that gave this row ('prefer experimental', 'median of 2').",
}
# What a resolution merges or chooses between: the values its known conflicts compare
_COMPARED = {
    "keep_all": "values of one method",
    "prefer": "values the preference chose between (of every method, at the same conditions)",
    "median": "values a median merged (of one provenance and method, at the same conditions)",
}
_BIBTEX_SPECIAL = re.compile(r"([&%$#_{}])")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # a line break in a cell of a Markdown table


def write_card(
    directory: Path, manifest: dict, payload: pd.DataFrame, conflicts: pd.DataFrame, warnings: list[str]
) -> list[Path]:
    """Write the card of a release into `directory`; return the files written."""
    plots = write_plots(directory / PLOTS, manifest, payload)
    bib = write_text(directory / BIBTEX, bibtex(manifest))
    croissant = write_croissant(directory / CROISSANT, manifest, payload)
    readme = write_text(directory / README, readme_text(manifest, payload, conflicts, plots, directory, warnings))
    return [readme, croissant, bib, *plots]


def write_text(path: Path, text: str) -> Path:
    """Write UTF-8 text atomically (temp file beside `path`, then rename)."""
    return atomic_write(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def write_plots(folder: Path, manifest: dict, payload: pd.DataFrame) -> list[Path]:
    """One PNG histogram per dataset property with finite values, split by provenance; a property whose values span
    more than floats can divide into bins (-1e308 to 1e308) has none."""
    units = manifest["content"]["units"]
    plotted = payload[np.isfinite(payload["value"].astype(float))]
    plots = []
    for prop, unit in units.items():
        rows = plotted[plotted["property"] == prop]
        if len(rows) and (bins := _bins(rows["value"])) is not None:
            left_out = int((payload["property"] == prop).sum()) - len(rows)
            plots.append(_histogram(folder / f"{prop}.png", rows, bins, (prop, unit), manifest, left_out))
    return plots


def _bins(values: pd.Series) -> np.ndarray | None:
    """Shared histogram bins of finite values; None where their range is no finite number of finite bins."""
    try:
        with np.errstate(all="raise"):
            return np.histogram_bin_edges(values, bins=min(30, max(10, int(np.sqrt(len(values))))))
    except (ValueError, FloatingPointError):
        return None


def _histogram(
    path: Path, rows: pd.DataFrame, bins: np.ndarray, quantity: tuple[str, str], manifest: dict, left_out: int
) -> Path:
    """A histogram of the finite values of one (property, unit), one colour per provenance, on shared bins;
    `left_out`: how many of its values are not finite (empty, infinite), said under the axis."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    prop, unit = quantity
    figure = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for provenance, group in rows.groupby("provenance", sort=True):
        axes.hist(group["value"], bins=bins, alpha=0.6, label=f"{provenance} ({len(group)})")
    axes.set_xlabel(f"{prop} [{unit}]" + (f"; not shown: {left_out} values not finite" if left_out else ""))
    axes.set_ylabel("values")
    axes.set_title(f"{manifest['dataset']}: {prop}")  # no version: unchanged values give the same bytes
    axes.legend(title="provenance")
    figure.tight_layout()
    # No software/date metadata: the same values always give the same PNG bytes.
    return atomic_write(path, lambda temp: figure.savefig(temp, format="png", metadata={"Software": None}))


def bibtex(manifest: dict) -> str:
    """One BibTeX entry per source database of the release."""
    entries = [_bib_entry(name, source) for name, source in manifest["content"]["sources"].items()]
    return "\n".join(entries)


def _bib_entry(name: str, source: dict) -> str:
    fields = {
        "title": source["title"],
        "note": "; ".join(source["citations"] + [f"Licence: {lic}" for lic in source["licenses"]]),
        "version": ", ".join(source["database_versions"]),
        "doi": source["doi"],
        "url": source["url"],
    }
    lines = [f"  {key} = {{{_bib_escape(value)}}}," for key, value in fields.items() if value]
    return "@misc{" + re.sub(r"[^A-Za-z0-9]+", "_", name) + ",\n" + "\n".join(lines) + "\n}\n"


def _bib_escape(text: str) -> str:
    return _BIBTEX_SPECIAL.sub(r"\\\1", text)


def write_croissant(path: Path, manifest: dict, payload: pd.DataFrame) -> Path:
    """Croissant JSON-LD of the release's payload, built and then validated with mlcroissant."""
    with _library_deprecations_ignored():
        import mlcroissant as mlc

        try:
            metadata = _croissant_metadata(mlc, manifest, payload)
        except mlc.ValidationError as exc:
            raise ValidationError(f"Croissant metadata is invalid: {exc}") from None
    written = write_text(path, json.dumps(metadata.to_json(), indent=2, ensure_ascii=False) + "\n")
    validate_croissant(written)
    return written


def validate_croissant(path: Path) -> None:
    """Check a Croissant file with mlcroissant; ValidationError with mlcroissant's report if it has errors."""
    with _library_deprecations_ignored():
        import mlcroissant as mlc

        try:
            issues = mlc.Dataset(jsonld=path).metadata.ctx.issues
        except mlc.ValidationError as exc:
            raise ValidationError(f"{path.name} does not validate: {exc}") from None
    if issues.errors:
        raise ValidationError(f"{path.name} does not validate: {issues.report()}")


@contextlib.contextmanager
def _library_deprecations_ignored() -> Iterator[None]:
    """mlcroissant and rdflib deprecate their own internals (rdflib's ConjunctiveGraph): warnings no user can act on,
    which `python -W error` would make a failed release."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _croissant_metadata(mlc, manifest: dict, payload: pd.DataFrame):
    content = manifest["content"]
    files = [_croissant_file(mlc, name, content[name]) for name in ("payload", "materials") if name in content]
    described = {entry["column"]: entry["description"] for entry in content.get("attributes", [])}
    fields = [
        _croissant_field(mlc, column, payload[column].dtype, described.get(column) or _column_description(column))
        for column in payload.columns
    ]
    return mlc.Metadata(
        name=manifest["dataset"],
        description=content["description"],
        version=manifest["version"],
        date_published=manifest["released_at"],
        license=content["licenses"],
        cite_as=_release_citation(manifest),
        distribution=files,
        record_sets=[
            mlc.RecordSet(id="values", name="values", description=_values_description(content), fields=fields)
        ],
    )


def _croissant_file(mlc, name: str, file: dict) -> object:
    """A Parquet file of the release (`name`: its id; `file`: its manifest entry, file name and sha256)."""
    return mlc.FileObject(
        id=name,
        name=file["file"],
        content_url=file["file"],
        encoding_formats=[mlc.EncodingFormat.PARQUET],
        sha256=file["sha256"],
    )


def _croissant_field(mlc, column: str, dtype, description: str) -> object:
    return mlc.Field(
        id=f"values/{column}",
        name=column,
        description=description,
        data_types=[_croissant_type(mlc, dtype)],
        source=mlc.Source(file_object="payload", extract=mlc.Extract(column=column)),
    )


def _croissant_type(mlc, dtype):
    if pd.api.types.is_bool_dtype(dtype):
        return mlc.DataType.BOOL
    if pd.api.types.is_integer_dtype(dtype):
        return mlc.DataType.INTEGER
    if pd.api.types.is_float_dtype(dtype):
        return mlc.DataType.FLOAT
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return mlc.DataType.DATETIME
    return mlc.DataType.TEXT


def _column_description(column: str) -> str:
    tables = load_tables()
    for table in ("properties", "materials"):
        if column in tables[table].columns:
            return tables[table].columns[column].description
    return CURATION_COLUMNS.get(column, "Column added by the curation layer.")


def _values_description(content: dict) -> str:
    units = ", ".join(f"{prop} [{unit}]" for prop, unit in content["units"].items())
    return f"One value per row (long format), in the canonical unit of its property: {units}."


def _release_citation(manifest: dict) -> str:
    key = re.sub(r"[^A-Za-z0-9]+", "_", f"{manifest['dataset']}_{manifest['version']}")
    return (
        f"@misc{{{key},\n  title = {{{_bib_escape(manifest['dataset'])}, version {manifest['version']}}},\n"
        f"  note = {{matreg release, content sha256 {manifest['content_sha256']}; cite the sources in {BIBTEX}}},\n"
        f"  year = {{{manifest['released_at'][:4]}}},\n}}"
    )


def readme_text(
    manifest: dict,
    payload: pd.DataFrame,
    conflicts: pd.DataFrame,
    plots: list[Path],
    directory: Path,
    warnings: list[str],
) -> str:
    """The card's README: what, from where, how curated (with the resolution's warnings), provenance mix, known
    conflicts."""
    content = manifest["content"]
    sections = [
        f"# {manifest['dataset']} {manifest['version']}\n\n{content['description']}\n\n"
        f"Released {manifest['released_at']} with matreg {manifest['matreg_version']}. "
        f"Content hash (`content_sha256` in `manifest.json`): `{manifest['content_sha256']}`.",
        _what(content, payload),
        *_attributes(content),
        _from_where(content),
        _how_curated(content, payload, warnings),
        _provenance_mix(content, plots, directory),
        _conflicts(conflicts, content, payload),
        f"## How to cite\n\nCite this release (its version and content hash) and every source database: "
        f"[{BIBTEX}]({BIBTEX}) has one BibTeX entry per source. Machine-readable metadata: "
        f"[{CROISSANT}]({CROISSANT}) (MLCommons Croissant).",
    ]
    return "\n\n".join(sections) + "\n"


def _what(content: dict, payload: pd.DataFrame) -> str:
    """The payload file, and each property of the selection with its unit and released values (0: the dataset
    selects none, as its warnings say; `units` names those with values)."""
    released, vocabulary = payload["property"].value_counts(), load_vocabulary().root
    properties = content["selection"]["properties"]
    rows = [[prop, vocabulary[prop].unit, str(released.get(prop, 0))] for prop in properties]
    file = content["payload"]
    return (
        f"## What\n\n{file['rows']} values of {file['records']} records in `{file['file']}` "
        f"(sha256 `{file['sha256']}`), one value per row in the canonical unit of its property:\n\n"
        + _markdown_table(["property", "unit", "values"], rows)
        + _materials_file(content)
    )


def _materials_file(content: dict) -> str:
    """The sentence on the release's materials file (none in releases made before it)."""
    materials = content.get("materials")
    if not materials:
        return ""
    return (
        f"\n\nEach record's space group, number of sites and the sha256 of its stored structure are in "
        f"`{materials['file']}` (sha256 `{materials['sha256']}`)."
    )


def _attributes(content: dict) -> list[str]:
    """The section on the payload's extension attribute columns (none where it has none)."""
    attributes = content.get("attributes")
    if not attributes:
        return []
    extensions = ", ".join(f"`{name}`" for name in dict.fromkeys(entry["extension"] for entry in attributes))
    rows = [[entry["column"], entry["extension"], entry["type"], entry["description"]] for entry in attributes]
    return [
        "## Extension attributes\n\nAfter the columns above, each row carries its record's attributes of the lab "
        f"schema extension(s) {extensions} (sample metadata: `schemas/extensions/<name>.yaml`), a column each, empty "
        "where its record has none; a median row carries one where every record it merges has the same (its "
        "`records` name them):\n\n" + _markdown_table(["column", "extension", "type", "description"], rows)
    ]


def _from_where(content: dict) -> str:
    rows = [
        [
            name,
            source["title"],
            ", ".join(source["database_versions"]) or "-",
            str(len(source["fetch_runs"])),
            ", ".join(source["licenses"]) or "-",
            source["doi"] or "-",
        ]
        for name, source in content["sources"].items()
    ]
    header = ["source", "title", "database version", "fetch runs", "licence", "DOI"]
    return (
        "## From where\n\n"
        + _markdown_table(header, rows)
        + "\n\nThe fetch run ids, database versions and citations of each source are in `manifest.json`."
    )


def _how_curated(content: dict, payload: pd.DataFrame, warnings: list[str]) -> str:
    selection, curation = content["selection"], content["curation"]
    resolve = selection["resolve"]
    last = f", the last `{curation['last_entry_id']}`" if curation["last_entry_id"] else ""
    policy = resolve["strategy"] + (f" (best first: {', '.join(resolve['prefer'])})" if resolve["prefer"] else "")
    return (
        "## How curated\n\n"
        f"- Selection: {selection_text(selection)}.\n"
        f"- Curation log ({curation['log_entries']} entries on this dataset's rows{last}), applied as a layer over the "
        f"stored rows, which are never modified: rows selected {curation['rows_selected']}, removed by rejections "
        f"{curation['rows_removed']}; values corrected {curation['values_corrected']} (the stored value is kept in "
        f"`raw_value`; a value readmitted from quarantine corrected has none), flagged or readmitted "
        f"{curation['values_flagged']} (`flags` says by whom and why), accepted {curation['values_accepted']}.\n"
        f"- Linked records (the same material across sources) resolved by `{policy}`: {content['payload']['rows']} "
        f"rows released{_rules(payload)}.\n"
        f"- Known conflicts (below): {_COMPARED[resolve['strategy']]} whose spread exceeds the tolerance, "
        f"{_tolerances(content)}; the tolerance decides what is listed, not what is released."
        + "".join(f"\n- Warning: {warning}." for warning in warnings)
    )


def _rules(payload: pd.DataFrame) -> str:
    """' (<rule>: <rows>, ...)': the released rows by the rule of the resolution that gave them, if one did."""
    if "resolved_by" not in payload:
        return ""
    counts = payload["resolved_by"].value_counts().sort_index()
    return " (" + ", ".join(f"{rule}: {n}" for rule, n in counts.items()) + ")"


def _tolerances(content: dict) -> str:
    """Each property's tolerance with its unit ('band_gap 0.2 eV, entropy 0.1 J/(mol*K) (default)')."""
    from matreg.catalog import Resolution
    from matreg.curate.conflicts import DEFAULT_TOLERANCE

    resolution = Resolution.model_validate(content["selection"]["resolve"])
    tolerances = {prop: resolution.tolerance_of(prop) for prop in content["units"]}
    return ", ".join(
        f"{prop} {DEFAULT_TOLERANCE:g} {content['units'][prop]} (default)"
        if tolerance is None
        else f"{prop} {tolerance:g} {content['units'][prop]}"
        for prop, tolerance in tolerances.items()
    )


def _provenance_mix(content: dict, plots: list[Path], directory: Path) -> str:
    rows = [
        [source, provenance, str(n)]
        for source, by_provenance in content["counts"].items()
        for provenance, n in by_provenance.items()
    ]
    images = "\n".join(f"![{plot.stem}]({plot.relative_to(directory).as_posix()})" for plot in plots)
    return (
        "## Provenance mix\n\nThe released values by source and provenance (a median row counts each value it "
        "merges):\n\n" + _markdown_table(["source", "provenance", "values"], rows) + "\n\n" + images
    )


def _conflicts(conflicts: pd.DataFrame, content: dict, payload: pd.DataFrame) -> str:
    strategy = content["selection"]["resolve"]["strategy"]
    if conflicts.empty:
        return f"## Known conflicts\n\nNo {_COMPARED[strategy]} disagree beyond the tolerance."
    columns = [
        "group_id", "record_id", "source", "provenance", "method", *_varying_conditions(payload),
        "value", "unit", "spread",
    ]  # fmt: skip
    shown = conflicts[columns].head(MAX_CONFLICT_ROWS)
    rows = [[_cell(cell) for cell in row] for row in shown.itertuples(index=False)]
    more = len(conflicts) - len(shown)
    tail = f"\n\n{more} more values: run `matreg conflicts PROPERTY` on the store." if more > 0 else ""
    groups = conflicts["group_id"].nunique()
    return (
        f"## Known conflicts\n\nGroups of linked records whose {_COMPARED[strategy]}, as curated above, disagree "
        f"beyond the tolerance: {groups} (resolved by `{strategy}`):\n\n" + _markdown_table(columns, rows) + tail
    )


def _varying_conditions(payload: pd.DataFrame) -> list[str]:
    """The conditions that differ between released values (a table's temperatures; a stated one and none)."""
    return [column for column in value_conditions() if payload[column].nunique(dropna=False) > 1]


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "-" if np.isnan(value) else f"{value:.6g}"
    return "-" if value is None else str(value)


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of the rows, each cell on its row's line (`_table_cell`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(_table_cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def _table_cell(text: str) -> str:
    """A text as a cell of a Markdown table, which holds no line: each line break (\\r\\n, \\r or \\n) as <br>, '|'
    escaped."""
    return _LINE_BREAK.sub("<br>", text.replace("|", "\\|"))
