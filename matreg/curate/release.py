"""Versioned releases of catalog datasets: an immutable payload with a manifest of its inputs, diffs, re-exports.

A release lives in `<store>/releases/<dataset>/<version>/`: `payload.parquet` (the curated, resolved rows),
`materials.parquet` (each record's space group, sites and structure hash, which diffs compare), `manifest.json`
(hashes and every input: database versions, fetch runs, curation-log position, counts, licences, citations) and the
dataset card (see matreg.curate.card). It is built in a hidden temporary directory beside it (`.<version>.<uuid>.tmp`,
`matreg.store.atomic_dir`) and appears with one rename, whole or not at all; a released version is never written
again. A temporary directory left by a release that was killed is removed by a later release of the dataset once it
is an hour old.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pyarrow
import pyarrow.parquet as pq

from matreg import __version__
from matreg.attributes import typed, with_attributes
from matreg.catalog import SAFE_NAME, SELECTED, Catalog, Dataset, preference_label, version_problem
from matreg.curate.card import write_card
from matreg.defaults import check_export_format
from matreg.errors import ConfigError, StoreError, UnknownName
from matreg.export import (
    WIDE_INDEX,
    dataset_query,
    distinct,
    nothing_selected,
    selection_sql,
    selection_warnings,
    to_wide,
    value_units,
)
from matreg.http import public_url
from matreg.schema import (
    PREFERRED_BY,
    RESOLUTION_COLUMNS,
    RESOLVED_BY,
    arrow_schema,
    load_methods,
    pandas_dtype,
    stable_type,
    value_key,
)
from matreg.sources.base import WITHDRAWN_BY_SOURCE
from matreg.store import CURATION_RUN_PREFIX, Store, atomic_dir, atomic_write, file_sha256, write_with_sidecar

logger = logging.getLogger(__name__)

RELEASES = "releases"
PAYLOAD = "payload.parquet"
MATERIALS = "materials.parquet"  # what a release records of each record's material besides the payload's formula
MANIFEST = "manifest.json"
VALUE_KEY = value_key()
DIFF_COLUMNS = ["change", "source", *VALUE_KEY, "field", "old", "new", "values"]
NOT_COMPARED = {"fetched_at"}  # fetching unchanged data again is not a change of the data
RECORD_FIELDS = ["source_id", "formula", "formula_original", "name", "phase"]  # the record's, in each row of its values
MATERIAL_FIELDS = {"spacegroup_number": "spacegroup_number", "nsites": "nsites", "structure_sha256": "structure"}
VERSION_CHANGED = "database version changed"  # a diff's row of the values whose only change is their database version
# A diff's rows of a key of the dataset's definition that changed: of its selection (temperature_K), its resolution
DEFINITION_CHANGES = ("selection changed", "resolution changed")
# A new release's version is a catalog's (matreg.catalog.version_problem); an existing release is read by any version
# matreg ever accepted
_VERSION = re.compile(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?")


@dataclass
class CuratedRows:
    """A dataset's rows at each step (as stored, after the curation log, after resolution) and what shaped them.

    `carried` are the curated values the released rows carry, each with its own source, provenance, licence and
    citation: what sources, licences and counts are made of (a median's row joins the texts of the values it merges).
    `warnings` say what in the catalog's selection and resolution did nothing (a `sources`, `provenance`, `methods` or
    `prefer` entry no value has, a property with no value), and which review decisions on the rows a steward should
    make again (`decisions_to_redo`: not applied)."""

    raw: pd.DataFrame
    curated: pd.DataFrame
    resolved: pd.DataFrame
    carried: pd.DataFrame
    groups: pd.DataFrame
    log: pd.DataFrame
    warnings: list[str]


def curate_dataset(store: Store, catalog: Catalog, name: str, target: str | None = None) -> CuratedRows:
    """Select a dataset's rows, apply the curation log, link records and resolve each group per the catalog; log
    the warnings: the resolution's, the selection's (`selection_warnings`, where it has rows; of `target`, the one
    property a torch export takes, none: its caller's error says it has no values), and the review decisions to make
    again (the command line prints them on stderr). Where it has no rows, the caller's error says what was selected
    (`nothing_selected`)."""
    # Imported here: linking loads pymatgen's StructureMatcher, which only releases and exports need.
    from matreg.curate.conflicts import resolve, unmatched_preferences
    from matreg.curate.link import link_records
    from matreg.curate.review import apply_curation, curation_log, decisions_to_redo, redo_text

    dataset = catalog.dataset(name)
    raw = store.read(*dataset_query(dataset))
    log = curation_log(store)
    curated = apply_curation(raw, log)
    groups = link_records(store, curated["record_id"])  # the groups of the dataset's records, whatever else is stored
    resolved = resolve(curated, groups, dataset.resolve, _databases(catalog))
    carried = curated if dataset.resolve.strategy == "median" else resolved  # a median merges every curated value
    unmatched = unmatched_preferences(curated, dataset.resolve.prefer)  # (a prefer list: strategy prefer's only)
    warnings = [f"dataset '{name}': {unmatched}"] if unmatched else []
    if len(resolved):  # (none: the error says what was selected)
        warnings += selection_warnings(store, name, dataset, raw, curated, said_by_caller=target)
    readmitted = _readmitted_records(store, dataset, log)  # of a stale readmit, a record may have no value left
    redo = decisions_to_redo(store, raw, dataset.properties, records=readmitted)
    warnings += [redo_text(entry) for entry in redo.itertuples()]
    warnings += withdrawal_warnings(store, name, sorted(set(curated["record_id"])))
    for warning in warnings:
        logger.warning(warning)
    return CuratedRows(raw, curated, resolved, carried, groups, log, warnings)


def _readmitted_records(store: Store, dataset: Dataset, log: pd.DataFrame) -> list[str]:
    """The records of which a readmit of `log` wrote values the dataset selects, whether the store shows them or not
    (it no longer shows a stale readmit's: its record may have no value left), sorted; none, with no query, when the
    log has no readmit."""
    runs = (CURATION_RUN_PREFIX + log.loc[log["action"] == "readmit", "entry_id"]).tolist()
    if not runs:
        return []
    return store.selected_records_written_by(runs, *selection_sql(dataset))


def preference_summary(dataset: Dataset, rows: CuratedRows, prop: str | None = None) -> dict:
    """Under strategy prefer, `{"prefer": {...}}`: its order, the curated values (of `prop`, if given) it chose from,
    how many it left out (their group and property had values of a better-ranked provenance or method) and of how
    many groups; else {}."""
    if dataset.resolve.strategy != "prefer":
        return {}
    from matreg.curate.conflicts import preference_left_out  # (as `curate_dataset` imports the resolution)

    curated = rows.curated if prop is None else rows.curated[rows.curated["property"] == prop]
    left_out = preference_left_out(curated, rows.groups, dataset.resolve.prefer)
    return {
        "prefer": {
            "order": list(dataset.resolve.prefer),
            "curated_values": len(curated),
            "left_out": len(left_out),
            "left_out_groups": int(left_out["group_id"].nunique()),
        }
    }


def withdrawal_warnings(store: Store, name: str, record_ids: list[str]) -> list[str]:
    """Warnings of the dataset's records that their source may have withdrawn, with their values of an earlier read:
    those an open quarantine row says the source deprecated, those the latest run of a query they were stored from did
    not read (`not_read_again`)."""
    from matreg.ingest import listed_records, not_read_again

    deprecated = store.read(
        f"SELECT DISTINCT {_QUARANTINED_RECORD} AS record_id FROM open_quarantine "
        f"WHERE {_QUARANTINED_RECORD} IN (SELECT unnest($records::VARCHAR[])) "
        "AND EXISTS (SELECT 1 FROM unnest(reasons) AS r(reason) WHERE starts_with(reason, $withdrawn)) ORDER BY 1",
        {"records": record_ids, "withdrawn": WITHDRAWN_BY_SOURCE},
    )["record_id"].tolist()
    missing = sorted(set(not_read_again(store)["record_id"]) & set(record_ids))
    warnings = []
    if deprecated:
        warnings.append(
            f"dataset '{name}': the source deprecated them (an open quarantine row says so), the values of their "
            f"last valid read are kept: {listed_records(deprecated)}; `matreg review reject RECORD_ID` leaves one out"
        )
    if missing:
        warnings.append(
            f"dataset '{name}': not in the latest run of the query they were stored from (the source may have removed "
            f"them): {listed_records(missing)}; `matreg status` lists them by query"
        )
    return warnings


# a quarantine row's record: a record its mapping could not read (e.g. a deprecated document) by its item
_QUARANTINED_RECORD = "coalesce(record_id, source || ':' || item)"


def _databases(catalog: Catalog) -> dict[str, str]:
    """The database each catalog source reads: an OPTIMADE source's provider ('mp'), else its connector's name (mp's
    summary API: 'mp')."""
    return {name: source.provider or source.connector for name, source in catalog.sources.items()}


def release(store: Store, catalog: Catalog, name: str, version: str) -> Path:
    """Freeze dataset `name` as `version` (payload, with its records' extension attributes: matreg.attributes;
    manifest, card); StoreError if that version exists."""
    problem = version_problem(version)
    if problem:
        raise ConfigError(problem)
    final = release_dir(store, name, version)
    _refuse_existing(store, final, name, version)
    store.remove_leftovers()
    with store.snapshot():  # the rows and the manifest's runs and curation of one state of the store
        rows = curate_dataset(store, catalog, name)
        dataset = catalog.dataset(name)
        if rows.resolved.empty:
            raise StoreError(f"{nothing_selected(name, dataset, rows.raw)}: nothing to release")
        conflicts = known_conflicts(dataset, rows)
        released, attributes = with_attributes(store, rows.resolved, dataset.properties)
        with atomic_dir(final, functools.partial(_publish, store, name=name, version=version)) as staging:
            payload = write_payload(released, staging / PAYLOAD)
            materials = write_materials(store, rows.resolved, staging / MATERIALS)
            manifest = build_manifest(store, catalog, name, version, rows, payload, materials, attributes)
            files = write_card(staging, manifest, typed(read_payload(payload), attributes), conflicts, rows.warnings)
            written = [payload, materials, *files]
            manifest["files"] = {path.relative_to(staging).as_posix(): file_sha256(path) for path in written}
            store.write_json(manifest, staging / MANIFEST)
    return final


def release_dir(store: Store, name: str, version: str) -> Path:
    """Where release `version` of dataset `name` lives (names and versions are checked: no path tricks)."""
    if not _VERSION.fullmatch(version):
        raise ConfigError(f"invalid version '{version}' (expected X.Y.Z, e.g. 1.0.0)")
    return _releases_of(store, name) / version


def released_versions(store: Store, name: str) -> list[str]:
    """The versions of dataset `name` released in this store, in semantic-versioning order (1.0.0-rc1 before
    1.0.0)."""
    folders = _releases_of(store, name).glob("*")  # (not the hidden folders of releases being written: `release`)
    versions = [path.name for path in folders if _VERSION.fullmatch(path.name) and (path / MANIFEST).is_file()]
    return sorted(versions, key=_version_order)


def _version_order(version: str) -> tuple:
    """Sort key of a semantic version: its numbers, then a pre-release before the release, identifiers compared
    numerically where they are numbers (build metadata after '+' breaks ties only)."""
    release, _, build = version.partition("+")
    core, _, pre = release.partition("-")
    identifiers = (
        tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split(".")) if pre else ()
    )
    return tuple(int(number) for number in core.split(".")), not pre, identifiers, build


def read_manifest(store: Store, name: str, version: str) -> dict:
    """The manifest of a release; StoreError naming the released versions if there is no such release."""
    return json.loads(_existing(store, name, version, MANIFEST).read_text(encoding="utf-8"))


def read_release(store: Store, name: str, version: str) -> pd.DataFrame:
    """The payload rows of a release, its attribute columns in their types (`typed`)."""
    payload = read_payload(_existing(store, name, version, PAYLOAD))
    return typed(payload, released_attributes(read_manifest(store, name, version)))


def released_attributes(manifest: dict) -> list[dict]:
    """What each extension attribute column of a release's payload is (none: a release of records without
    attributes, or of a matreg before it released them)."""
    return manifest["content"].get("attributes", [])


def read_materials(store: Store, name: str, version: str) -> pd.DataFrame | None:
    """The space group, sites and structure hash a release records of each record (`write_materials`); None for a
    release made before releases recorded them (its manifest names no such file); StoreError for a release whose
    manifest names the file and the file is missing (damaged, as `_existing` says)."""
    recorded = "materials" in read_manifest(store, name, version)["content"]
    return read_payload(_existing(store, name, version, MATERIALS)) if recorded else None


def diff(store: Store, name: str, a: str, b: str) -> pd.DataFrame:
    """Records and values added, removed and changed from release `a` to release `b`: one row per change of a value's
    field or a record's (formula, space group, sites, structure, extension attributes: `_material_changes`), but one
    row per source and database versions for the values whose only change is their database version
    (`_version_changes`); first, one row per key of the dataset's selection or resolution that changed
    (`_definition_changes`)."""
    manifests = {version: read_manifest(store, name, version) for version in (a, b)}
    attributes = list(dict.fromkeys(e["column"] for m in manifests.values() for e in released_attributes(m)))
    old, new = _recorded_by_both(name, a, read_release(store, name, a), b, read_release(store, name, b), attributes)
    materials = {version: read_materials(store, name, version) for version in (a, b)}
    unrecorded = [version for version, frame in materials.items() if frame is None]
    if unrecorded:
        logger.warning(
            f"'{name}' {' and '.join(unrecorded)}: released by an older matreg, which recorded no space groups, sites "
            "or structures; their changes are not compared"
        )
    recorded = (materials[a], materials[b]) if not unrecorded else (None, None)
    changes = (
        _record_changes(old, new),
        _material_changes(old, new, *recorded, attributes),
        _value_changes(old, new),
        _version_changes(_field_changes(old, new, attributes)),
    )
    parts = [part for part in changes if len(part)]
    order = ["record_id", "property", "change", "field", "source"]  # (stable: a source's versions in their order)
    rows = [pd.concat(parts)[DIFF_COLUMNS].astype(object).sort_values(order, kind="mergesort")] if parts else []
    definition = _definition_changes(manifests[a], manifests[b])
    parts = [definition, *rows] if len(definition) else rows
    if not parts:
        return pd.DataFrame(columns=DIFF_COLUMNS)
    changes = pd.concat(parts, ignore_index=True)
    return changes.where(changes.notna(), None)


def _definition_changes(old: dict, new: dict) -> pd.DataFrame:
    """One row per key of the dataset's definition that differs between two releases' manifests (`content.selection`):
    'selection changed' of a filter (temperature_K: None to 300.0), then 'resolution changed' of its resolution
    (resolve.strategy: keep_all to median). A key only one of them records (an older matreg's) is not compared; the
    lists of what the selection selects (`SELECTED`: properties, sources, ...) are compared as sets (their order selects
    nothing), `resolve.prefer` in its order (it ranks)."""
    before, after = _definition(old), _definition(new)
    keys = [key for key in before if key in after and _definition_differs(key, before[key], after[key])]
    return pd.DataFrame(
        {
            "change": [DEFINITION_CHANGES[key.startswith("resolve.")] for key in keys],
            "field": keys,
            "old": [before[key] for key in keys],
            "new": [after[key] for key in keys],
        },
        columns=DIFF_COLUMNS,
        dtype=object,
    )


def _definition_differs(key: str, old: object, new: object) -> bool:
    """Whether key `key` of a dataset's definition (`_definition`) differs from `old` to `new`: a list of what the
    selection selects by its entries, whatever their order; any other by its value. Methods are compared by what they
    name, as the selection and the resolution read them (`_as_read`)."""
    if isinstance(old, list) and isinstance(new, list):
        old, new = _as_read(key, old), _as_read(key, new)
        if key in SELECTED:
            return sorted(old) != sorted(new)
    return old != new


def _as_read(key: str, names: list[str]) -> list[str]:
    """A list of a definition as the release reads it: `methods` as the methods it selects (`Methods.selected_by`:
    pbe is PBE and GGA-PBE, spaces and letter case aside), `resolve.prefer`'s provenances or methods by what they
    name as the resolution ranks them (`preference_label`); any other as it is."""
    if key == "methods":
        return load_methods().selected_by(names)
    if key == "resolve.prefer":
        return [preference_label(name) for name in names]
    return names


def _definition(manifest: dict) -> dict:
    """A release's selection (its manifest's `content.selection`) by key, its resolution's as 'resolve.<key>'."""
    selection = dict(manifest["content"]["selection"])
    resolve = selection.pop("resolve", {})
    return selection | {f"resolve.{key}": value for key, value in resolve.items()}


def _recorded_by_both(
    name: str, a: str, old: pd.DataFrame, b: str, new: pd.DataFrame, attributes: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The payloads of releases `a` (`old`) and `b` (`new`) without the fields only one of them records (those a
    release of an older matreg lacks: formula_original), said once for each release that lacks some. The fields of
    a resolution (`RESOLUTION_COLUMNS`) and the `attributes` columns stay compared: a dataset resolved otherwise since
    changed them, and a release has the attributes its records have (none: empty)."""
    compared = {*RESOLUTION_COLUMNS, *attributes}
    lacked = {
        version: [column for column in other.columns if column not in own.columns and column not in compared]
        for version, own, other in ((a, old, new), (b, new, old))
    }
    for version, fields in lacked.items():
        if fields:
            its = "its" if len(fields) == 1 else "their"
            logger.warning(f"{_older_release(name, version, fields)}; {its} changes are not compared")
    unrecorded = [*lacked[a], *lacked[b]]
    return old.drop(columns=unrecorded, errors="ignore"), new.drop(columns=unrecorded, errors="ignore")


def export_release(store: Store, name: str, version: str, fmt: str, out: Path, layout: str = "long") -> dict:
    """Write a release to `out` (+ `<out>.meta.json`); the same release always gives the same bytes."""
    check_export_format(fmt, layout)
    manifest = read_manifest(store, name, version)
    source = _existing(store, name, version, PAYLOAD)
    content, out = manifest["content"], Path(out)
    sidecar = functools.partial(_release_sidecar, manifest, out.name, fmt, layout)
    if fmt == "parquet" and layout == "long":  # the payload itself: its hash is the manifest's
        rows = content["payload"]["rows"]
        return write_with_sidecar(out, lambda temp: shutil.copyfile(source, temp), functools.partial(sidecar, rows))
    payload = read_release(store, name, version)
    properties, attributes = content["selection"]["properties"], released_attributes(manifest)
    frame = _wide_release(name, version, payload, properties, attributes) if layout == "wide" else payload
    return store.write_file_with_sidecar(frame, out, fmt, functools.partial(sidecar, len(frame)))


def _wide_release(
    name: str, version: str, payload: pd.DataFrame, properties: list[str], attributes: list[dict]
) -> pd.DataFrame:
    """A release's payload in the wide layout, its properties in the dataset's order, then its `attributes` columns;
    a column of the layout the release did not record (an older matreg's: formula_original) is empty, said once."""
    unrecorded = [column for column in WIDE_INDEX if column not in payload.columns]
    if unrecorded:
        logger.warning(f"{_older_release(name, version, unrecorded)}: empty in the wide file")
    columns = [entry["column"] for entry in attributes]
    return to_wide(payload.assign(**dict.fromkeys(unrecorded)), properties, columns)


def _older_release(name: str, version: str, fields: list[str]) -> str:
    """The start of a warning on a release an older matreg made, which recorded none of `fields`."""
    return f"'{name}' {version}: released by an older matreg, which recorded no {', '.join(fields)}"


def _release_sidecar(manifest: dict, file: str, fmt: str, layout: str, rows: int, data: Path) -> dict:
    """The sidecar of a release exported to file name `file` (`rows` rows; its bytes now in `data`): a store
    export's keys, from the manifest (but `sources`: the manifest's, per source), plus the release's content_sha256;
    no export time, so the same release gives the same bytes."""
    content = manifest["content"]
    return {
        "dataset": manifest["dataset"],
        "version": manifest["version"],
        "released": True,
        "description": content["description"],
        "content_sha256": manifest["content_sha256"],
        "file": file,
        "format": fmt,
        "layout": layout,
        "rows": rows,
        "records": content["payload"]["records"],
        "sha256": file_sha256(data),
        "units": content["units"],
        "provenance": sorted({provenance for counts in content["counts"].values() for provenance in counts}),
        "sources": content["sources"],
        "licenses": content["licenses"],
        **({"attributes": content["attributes"]} if "attributes" in content else {}),
        "matreg_version": __version__,
    }


def known_conflicts(dataset: Dataset, rows: CuratedRows) -> pd.DataFrame:
    """The dataset's curated values that its resolution merges or chooses between (keep_all: of one method) and that
    disagree beyond the tolerance in linked groups, property by property: only the values the dataset selects."""
    from matreg.curate.conflicts import resolution_conflicts

    return resolution_conflicts(rows.curated, rows.groups, dataset.resolve, dataset.properties)


def build_manifest(
    store: Store,
    catalog: Catalog,
    name: str,
    version: str,
    rows: CuratedRows,
    payload: Path,
    materials: Path,
    attributes: list[dict],
) -> dict:
    """The manifest: `content` (every input, hashed as `content_sha256`; `attributes`, what the payload's extension
    attribute columns are, where it has some) plus when and by what it was released."""
    dataset = catalog.dataset(name)
    released, carried = rows.resolved, rows.carried
    content = {
        "dataset": name,
        "description": dataset.description,
        "selection": dataset.model_dump(mode="json", exclude={"description", "version"}),
        "units": value_units(dataset.properties, released),
        "payload": {
            "file": PAYLOAD,
            "sha256": file_sha256(payload),
            "rows": len(released),
            "records": int(released["record_id"].nunique()),
        },
        "materials": {"file": MATERIALS, "sha256": file_sha256(materials)},
        "sources": _sources(store, catalog, carried),
        "curation": _curation(store, rows),
        "counts": _counts(carried),
        "licenses": distinct(carried["license"]),
        "citations": distinct(carried["citation"]),
    } | ({"attributes": attributes} if attributes else {})
    return {
        "dataset": name,
        "version": version,
        "content_sha256": hashlib.sha256(_canonical_json(content)).hexdigest(),
        "released_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "matreg_version": __version__,
        "content": content,
    }


def write_payload(frame: pd.DataFrame, path: Path) -> Path:
    """Write rows as Parquet deterministically: sorted rows, stable types, fixed compression, no pandas metadata."""
    order = [c for c in VALUE_KEY if c in frame] + [c for c in frame.columns if c not in VALUE_KEY]
    rows = frame.sort_values(order, kind="mergesort", na_position="last").reset_index(drop=True)
    table = pyarrow.Table.from_pandas(rows, preserve_index=False)
    table = table.cast(pyarrow.schema([pyarrow.field(f.name, stable_type(f.type)) for f in table.schema]))
    return atomic_write(
        path, lambda temp: pq.write_table(table.replace_schema_metadata(None), temp, compression="zstd")
    )


def write_materials(store: Store, rows: pd.DataFrame, path: Path) -> Path:
    """Write, deterministically, the space group, sites and the sha256 of the structure JSON of each record of `rows`
    as the store holds them: what `diff` compares of a record besides the payload's formula."""
    frame = store.read(
        "SELECT record_id, spacegroup_number, nsites, sha256(structure) AS structure_sha256 FROM materials "
        "WHERE record_id IN (SELECT unnest(?))",
        [sorted(rows["record_id"].unique().tolist())],
    )
    return write_payload(frame, path)


def read_payload(path: Path) -> pd.DataFrame:
    """The rows of a payload file."""
    return pq.read_table(path).to_pandas()


def _sources(store: Store, catalog: Catalog, rows: pd.DataFrame) -> dict[str, dict]:
    """Per source of the rows: title and DOI from the catalog, the URL its rows were fetched from (`_fetched_from`),
    database versions, fetch runs, citation, licence."""
    runs = _fetch_runs(store, rows)
    endpoints = _endpoints(store, [run for runs_of_source in runs.values() for run in runs_of_source])
    described = {}
    for source, group in rows.groupby("source", sort=True):
        known = catalog.sources.get(source)
        described[source] = {
            "title": known.title if known else f"{source} (lab dataset)",
            "doi": known.doi if known else None,
            "url": _fetched_from([endpoints[run] for run in runs.get(source, []) if run in endpoints]),
            "database_versions": distinct(group["database_version"]),
            "fetch_runs": runs.get(source, []),
            "citations": distinct(group["citation"]),
            "licenses": distinct(group["license"]),
        }
    return described


def _endpoints(store: Store, runs: list[str]) -> dict[str, str]:
    """Where each of these runs read (`fetch_runs.endpoint`: a URL, or a lab file's path), by run id."""
    read = store.read("SELECT run_id, endpoint FROM fetch_runs WHERE run_id IN (SELECT unnest(?))", [runs])
    return dict(zip(read["run_id"], read["endpoint"], strict=True))


def _fetched_from(endpoints: list[str]) -> str | None:
    """The web addresses among the endpoints of a source's runs, joined by '; ' (None: none): what the release's rows
    were fetched from, whatever the catalog says now. A local path (a lab file, a file:// mirror) stays out of a
    release, and so do a user, password or key."""
    urls = sorted({public_url(endpoint) for endpoint in endpoints if urlsplit(endpoint).scheme in ("http", "https")})
    return "; ".join(urls) or None


def _fetch_runs(store: Store, rows: pd.DataFrame) -> dict[str, list[str]]:
    """The runs that wrote the rows' values and materials, by source."""
    ids = sorted(rows["record_id"].unique().tolist())
    where = "WHERE record_id IN (SELECT unnest(?))"
    values = store.read(f"SELECT {', '.join(VALUE_KEY)}, run_id FROM properties {where}", [ids])
    materials = store.read(f"SELECT record_id, run_id FROM materials {where}", [ids])
    used = rows[[*VALUE_KEY, "source"]].merge(values, on=VALUE_KEY)[["source", "run_id"]]
    records = rows[["record_id", "source"]].drop_duplicates().merge(materials, on="record_id")[["source", "run_id"]]
    both = pd.concat([used, records])
    return {source: sorted(set(runs)) for source, runs in both.groupby("source")["run_id"]}


def _curation(store: Store, rows: CuratedRows) -> dict:
    """The log entries on the dataset's rows (count, last id: ids sort by time) and what they did to the rows.

    Entries on other records leave the dataset, and so its content hash, as it is.
    """
    from matreg.curate.review import entries_on

    runs = {run for runs_of_source in _fetch_runs(store, rows.raw).values() for run in runs_of_source}
    applied = entries_on(rows.raw, rows.log, runs)
    curated = rows.curated
    return {
        "log_entries": len(applied),
        "last_entry_id": max(applied["entry_id"]) if len(applied) else None,
        "rows_selected": len(rows.raw),
        "rows_removed": len(rows.raw) - len(curated),
        "values_corrected": int((curated["value"] != curated["raw_value"]).sum()),
        "values_flagged": int((curated["flags"].fillna("") != "").sum()),
        # accepted as stored: `reviewed` is also set by a correction, counted above
        "values_accepted": int(
            (curated["reviewed"].fillna(False).astype(bool) & (curated["value"] == curated["raw_value"])).sum()
        ),
    }


def _counts(rows: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Values by source, then provenance."""
    sizes = rows.groupby(["source", "provenance"], sort=True).size()
    counts: dict[str, dict[str, int]] = {}
    for (source, provenance), n in sizes.items():
        counts.setdefault(source, {})[provenance] = int(n)
    return counts


def _canonical_json(data: dict) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _releases_of(store: Store, name: str) -> Path:
    """Where the releases of dataset `name` live; ConfigError for a name no dataset can have (no path tricks)."""
    if not SAFE_NAME.fullmatch(name):
        raise ConfigError(f"invalid dataset name '{name}'")
    return store.root / RELEASES / name


def _refuse_existing(store: Store, final: Path, name: str, version: str) -> None:
    """StoreError when `version` is released, under this spelling or another of the same numbers (2024.01.15), or
    when semantic versioning orders it before the latest release (a pre-release after its release, 0.9.0 after
    1.1.0): a release freezes the dataset as the store holds it now, so versions follow the order of releasing."""
    versions = released_versions(store, name)
    same = [v for v in versions if _version_order(v)[:3] == _version_order(version)[:3]]
    if final.exists() or same:
        released = same[0] if same else version
        raise StoreError(f"release {released} of '{name}' exists; a released version is never overwritten")
    if versions and _version_order(version) < _version_order(versions[-1]):
        raise StoreError(
            f"{version} of '{name}' would follow release {versions[-1]}, which semantic versioning orders after it "
            f"(a release freezes the dataset as the store holds it now): release a version after {versions[-1]}"
        )


def _publish(store: Store, staging: Path, final: Path, name: str, version: str) -> None:
    """Rename the finished release into place, under a lock so that two releases of one version cannot race."""
    with store.locked(f"{RELEASES}/.lock"):
        _refuse_existing(store, final, name, version)
        os.rename(staging, final)


def _existing(store: Store, name: str, version: str, file: str) -> Path:
    """The path of a file of release `version`; UnknownName if there is no such release, StoreError if the release
    is there (its manifest is) but the file is missing: a damaged copy of the store."""
    path = release_dir(store, name, version) / file
    if path.is_file():
        return path
    released = released_versions(store, name)
    if version in released:
        raise StoreError(f"release {version} of '{name}' is damaged: its file {path} is missing")
    raise UnknownName(f"no release {version} of '{name}' in {store.root} (released: {', '.join(released) or 'none'})")


def _record_changes(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """One row per record only in `new` (record added) or only in `old` (record removed), with its formula."""
    before, after = _per_record(old, ["source", "formula"]), _per_record(new, ["source", "formula"])
    added = after[~after.index.isin(before.index)].rename(columns={"formula": "new"}).assign(change="record added")
    removed = before[~before.index.isin(after.index)].rename(columns={"formula": "old"}).assign(change="record removed")
    records = pd.concat([added, removed]).assign(field="formula")
    return records.rename_axis("record_id").reset_index().reindex(columns=DIFF_COLUMNS)


def _material_changes(
    old: pd.DataFrame,
    new: pd.DataFrame,
    old_materials: pd.DataFrame | None,
    new_materials: pd.DataFrame | None,
    attributes: list[str],
) -> pd.DataFrame:
    """One row per field of a record in both releases that differs (record changed): those of the payload's rows
    (`RECORD_FIELDS`: formula, name, ...; its extension `attributes`, empty in a release that has not the column),
    once per record, and the space group, sites and structure each release records (`MATERIAL_FIELDS`, where both do:
    a structure by its sha256, shortened)."""
    fields = ["source", *RECORD_FIELDS, *attributes]
    before, after = _per_record(old, fields), _per_record(new, fields)
    if old_materials is not None and new_materials is not None:
        before, after = before.join(_by_record(old_materials)), after.join(_by_record(new_materials))
    shared = before.index.intersection(after.index)
    before, after = before.loc[shared], after.loc[shared]
    changed = [
        pd.DataFrame(
            {
                "change": "record changed",
                "source": after.loc[differs, "source"],
                "field": MATERIAL_FIELDS.get(field, field),
                "old": _shown(field, before.loc[differs, field]),
                "new": _shown(field, after.loc[differs, field]),
            }
        )
        for field in before.columns.drop("source")
        if (differs := _differs(before[field], after[field])).any()
    ]
    if not changed:
        return pd.DataFrame()
    return pd.concat(changed).rename_axis("record_id").reset_index().reindex(columns=DIFF_COLUMNS)


def _by_record(materials: pd.DataFrame) -> pd.DataFrame:
    """A release's `materials.parquet` indexed by record id, its columns of the materials table in their declared
    types (its counts whole numbers: Parquet gives floats where some are empty)."""
    declared = arrow_schema("materials")
    types = {field: pandas_dtype(declared.field(field).type) for field in MATERIAL_FIELDS if field in declared.names}
    return materials.set_index("record_id").reindex(columns=list(MATERIAL_FIELDS)).astype(types).astype(object)


def _per_record(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """`columns` of each record of a payload (its first row), indexed by record id (a column a payload lacks: empty)."""
    return rows.drop_duplicates("record_id").set_index("record_id").reindex(columns=columns).astype(object)


def _shown(field: str, values: pd.Series) -> pd.Series:
    """A material field's values as a diff shows them: a structure's sha256 by its first 12 digits."""
    return values.str[:12] if field == "structure_sha256" else values


def _value_changes(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Values added to, or removed from, records present in both releases."""
    shared = set(old["record_id"]) & set(new["record_id"])
    columns = [*VALUE_KEY, "value", "source"]
    both = old[columns].merge(new[columns], on=VALUE_KEY, how="outer", indicator=True)
    both = both[both["record_id"].isin(shared) & (both["_merge"] != "both")]
    return pd.DataFrame(
        {
            **{key: both[key] for key in VALUE_KEY},
            "change": both["_merge"].map({"right_only": "value added", "left_only": "value removed"}).astype(object),
            "source": both["source_y"].fillna(both["source_x"]),
            "field": "value",
            "old": both["value_x"].astype(object),
            "new": both["value_y"].astype(object),
        }
    ).reset_index(drop=True)


def _field_changes(old: pd.DataFrame, new: pd.DataFrame, attributes: list[str]) -> pd.DataFrame:
    """One row per field that differs for a value present in both releases (e.g. a corrected value); the record's
    fields (its extension `attributes` too) are `_material_changes`'."""
    record = {"source", *RECORD_FIELDS, *attributes}
    fields = [c for c in dict.fromkeys([*old.columns, *new.columns]) if c not in {*VALUE_KEY, *NOT_COMPARED, *record}]
    both = old.reindex(columns=VALUE_KEY + fields).merge(
        new.reindex(columns=[*VALUE_KEY, "source", *fields]), on=VALUE_KEY, suffixes=("_old", "_new")
    )
    changed = [
        pd.DataFrame(
            {
                **{key: both.loc[differs, key] for key in VALUE_KEY},
                "change": "value changed",
                "source": both.loc[differs, "source"],
                "field": field,
                "old": both.loc[differs, f"{field}_old"].astype(object),
                "new": both.loc[differs, f"{field}_new"].astype(object),
            }
        )
        for field in fields
        if (differs := _differs(_compared(field, both[f"{field}_old"]), _compared(field, both[f"{field}_new"]))).any()
    ]
    return pd.concat(changed, ignore_index=True) if changed else pd.DataFrame(columns=DIFF_COLUMNS)


def _compared(field: str, values: pd.Series) -> pd.Series:
    """A value's field as a diff compares it: `resolved_by` by what its `prefer` entry names (`_preference_named`),
    any other as it is."""
    return values.map(_preference_named) if field == RESOLVED_BY else values


def _preference_named(resolved_by: object) -> object:
    """A `resolved_by` of strategy prefer, 'prefer <entry>', by what the entry names (`preference_label`: 'prefer
    GGA-PBE' is 'prefer pbe'), as the resolution ranked by it; any other as it is."""
    if not isinstance(resolved_by, str) or not resolved_by.startswith(PREFERRED_BY):
        return resolved_by
    return PREFERRED_BY + preference_label(resolved_by.removeprefix(PREFERRED_BY))


def _version_changes(changes: pd.DataFrame) -> pd.DataFrame:
    """`_field_changes` with the values whose only changed field is database_version (a new release of the source
    that kept them as they were: a change of their provenance, not of the values) summed up in one row per source
    and old and new version (VERSION_CHANGED, `values` counting them); a value changed in anything else keeps its
    rows, its database version's among them."""
    fields_changed = changes.groupby(VALUE_KEY, dropna=False)["field"].transform("size")
    only_version = (changes["field"] == "database_version") & (fields_changed == 1)
    versions = changes[only_version].groupby(["source", "old", "new"], dropna=False).size()
    summary = versions.astype(object).rename("values").reset_index()  # (object: a count, not a float beside NaN)
    summary = summary.assign(change=VERSION_CHANGED, field="database_version")
    return pd.concat([changes[~only_version], summary], ignore_index=True).reindex(columns=DIFF_COLUMNS)


def _differs(old: pd.Series, new: pd.Series) -> pd.Series:
    """Element-wise inequality where two empty cells are equal."""
    empty_old, empty_new = old.isna(), new.isna()
    return (empty_old != empty_new) | (~empty_old & ~empty_new & (old.astype(object) != new.astype(object)))


def diff_summary(changes: pd.DataFrame) -> str:
    """'selection changed: 1, record changed: 1, value added: 2, value changed: 2 (3 fields), database version
    changed: 27 values': the keys of the dataset's selection and resolution that changed, the records and values of
    each kind of change (a changed one has a row per changed field), and the values whose only change is their
    database version."""
    versioned = changes["change"] == VERSION_CHANGED
    others = changes[~versioned & ~changes["change"].isin(DEFINITION_CHANGES)]
    counts = others.drop_duplicates(["change", *VALUE_KEY])["change"].value_counts().sort_index()
    fields = others["change"].value_counts()
    keys = [f"{change}: {n}" for change in DEFINITION_CHANGES if (n := int((changes["change"] == change).sum()))]
    parts = [*keys, *(f"{change}: {n}{_fields_of(change, n, fields)}" for change, n in counts.items())]
    if versioned.any():
        parts.append(f"{VERSION_CHANGED}: {int(changes.loc[versioned, 'values'].sum())} values")
    return ", ".join(parts)


def _fields_of(change: str, changed: int, fields: pd.Series) -> str:
    """' (3 fields)' after the count of changed records or values whose rows name more fields than records or values."""
    return f" ({fields[change]} fields)" if change.endswith("changed") and fields[change] > changed else ""
