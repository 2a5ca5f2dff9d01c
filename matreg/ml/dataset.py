"""Torch exports of catalog datasets: a self-describing directory written once, loaded without the store.

    DIR/meta.json          dataset, target and unit, provenance, method and conditions mix, sources (each
                           distinct source, citation, licence and database version of the values the targets are
                           made of, with their count `n` and run ids: a row's one value, a median row's every value
                           it merges), split (what it used) and leakage report, featurizers (with the rows that have
                           no crystal graph), hashes, records left out (`left_out`: record id -> why; a formula unit
                           without atoms)
    DIR/records.parquet    record_id, formula, chemsys, target, target_uncertainty (its standard uncertainty in the
                           target's unit; null where none is stated, and for a median row merging several values;
                           no model reads it), temperature_K, pressure_Pa (the value's conditions, null where
                           unstated), split, method, provenance, source, records (the stored records a row stands
                           for: itself, or a resolved group's members), structure_record (the record whose structure
                           gives the row's crystal graph, `_with_structures`; null: none) (by record_id)
    DIR/composition.npz    fractions [N, 103], stats [N, S], element_z [N, M], element_frac [N, M]
    DIR/graph.npz          atom_z, atom_offsets, edge_src, edge_dst, edge_dist, edge_offsets (when structures exist),
                           and cutoff_A and max_neighbors, what they were built with (as meta.json's featurizers.graph
                           must say: `predict` builds a new structure's graph by what a run recorded of it)

Payload files are byte-identical for the same store and options; only meta.json carries the export time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import operator
import re
import zipfile
from collections import UserList
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pydantic
import pymatgen.core

from matreg import __version__
from matreg.catalog import MERGED_ROW_PREFIX, Catalog, Dataset
from matreg.errors import ConfigError, MatregError, listed
from matreg.export import attribution, nothing_selected
from matreg.formula import atoms_per_unit, parse_formula
from matreg.ml import require_torch
from matreg.ml.features import (
    DEFAULT_CUTOFF,
    DEFAULT_MAX_NEIGHBORS,
    ELEMENT_PROPERTIES,
    N_ELEMENTS,
    element_symbols,
    featurize_compositions,
    featurize_structures,
    stat_names,
)
from matreg.ml.splits import (
    DEFAULT_FRACTIONS,
    DEFAULT_METHOD,
    PROVENANCE_SPLIT,
    SPLITS,
    assign_splits,
    check_method,
    leakage_report,
    split_settings,
)
from matreg.schema import load_vocabulary, value_conditions
from matreg.store import Store, atomic_dir, file_sha256, refuse_long_staged_names, replace_dir
from matreg.units import convert_array, is_molar, per_mole_of_atoms

try:
    from torch import Tensor
    from torch.utils.data import Dataset as _TorchDataset
except ImportError:  # torch is the optional `ml` extra: exports work without it, the loaders refuse to start
    Tensor = Any
    _TorchDataset = object

FORMAT = "matreg-torch"
FORMAT_VERSION = 1
CONDITIONS = tuple(value_conditions())
RECORD_COLUMNS = (
    "record_id", "formula", "chemsys", "target", "target_uncertainty", *CONDITIONS, "split", "method", "provenance",
    "source", "records", "structure_record",
)  # fmt: skip
_NUMBER_COLUMNS = ("target", "target_uncertainty", *CONDITIONS)
PAYLOAD = ("records.parquet", "composition.npz")  # the files of every export (graph.npz: where records have structures)
_NONE = "(none)"  # meta.json's key that counts the rows without a method, or without a stated condition
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# a link group of one crystal: one formula and space group ('ZnSe/216'), or a StructureMatcher cluster in one
# ('SiC/186/mp:mp-567505'), whose records' structures match (matreg.curate.link)
_ONE_CRYSTAL_GROUP = r"[^/\s]+/\d+(?:/.+)?"
logger = logging.getLogger(__name__)


def export_torch(
    store: Store,
    catalog: Catalog,
    dataset_name: str,
    out_dir: Path,
    split: str = DEFAULT_METHOD,
    seed: int = 0,
    assignment: Path | None = None,
    target: str | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    cutoff: float = DEFAULT_CUTOFF,
    max_neighbors: int = DEFAULT_MAX_NEIGHBORS,
) -> dict:
    """Write dataset `dataset_name` (one target property) as a torch export directory; return its meta.json."""
    refuse_long_staged_names(Path(out_dir), f"cannot write {out_dir}")  # (before the store is read)
    _check_out(Path(out_dir))
    check_method(split, assignment)  # before the store is read
    dataset = catalog.dataset(dataset_name)
    prop = _target_property(dataset, target)
    with store.snapshot():  # the curated values and their records' structures of one state of the store
        rows, members, left_out, preference = _sample_rows(store, catalog, dataset_name, prop)
    rows["split"] = assign_splits(rows, split, seed, fractions, assignment)
    arrays = {"composition.npz": featurize_compositions(rows["formula"])}
    if rows["structure"].notna().any():
        graph = featurize_structures(rows["structure"].tolist(), cutoff, max_neighbors)
        arrays["graph.npz"] = graph | {"cutoff_A": np.float64(cutoff), "max_neighbors": np.int64(max_neighbors)}
        _warn_of_rows_without_graphs(rows, arrays["graph.npz"])
    context = {
        "split": split_settings(split, seed, fractions) | {"assignment": _file_info(assignment)},
        "featurizers": _featurizers(arrays, cutoff, max_neighbors, rows["structure"].notna()),
        "left_out": left_out,
        "preference": preference,
    }
    return _write_export(
        Path(out_dir), rows, arrays, lambda files: _meta(dataset_name, dataset, prop, rows, members, context, files)
    )


def provenance_warning(meta: dict) -> str | None:
    """Warnings, one a line, when an export's target is class labels, or mixes what one model would learn as one
    quantity, else None: provenances outside a provenance split (DFT and measured values differ systematically, e.g.
    DFT band gaps run low), several methods within one provenance (PBE and HSE06 band gaps), or values at several
    temperatures or pressures (the features do not see conditions: one compound at 4 K and 300 K is one input with
    two targets)."""
    methods = meta.get("method_by_provenance") or {}  # (an export before meta.json had it: none)
    warnings = [
        _class_labels(meta),
        _provenance_mix(meta),
        *(_method_mix(provenance, counts) for provenance, counts in methods.items()),
        *(_condition_mix(meta, name) for name in CONDITIONS),
    ]
    return "\n".join(warning for warning in warnings if warning) or None


def _class_labels(meta: dict) -> str | None:
    """The warning for a target of two values at most, as class labels are (matbench's is-metal, glass): the
    baselines regress it; none for an export made before meta.json counted its values."""
    n_distinct = meta["target"].get("n_distinct")
    if n_distinct is None or n_distinct > 2:
        return None
    return (
        f"warning: the target takes {n_distinct} value(s) only, as class labels do; the baseline models regress it "
        "(MAE, R²) and none classifies: threshold their predictions, or train a classifier of your own on the export"
    )


def _provenance_mix(meta: dict) -> str | None:
    """The warning for several provenances outside a provenance split."""
    counts = meta["provenance"]
    if len(counts) < 2 or meta["split"]["method"] == "provenance":
        return None
    mix = ", ".join(f"{name} {n}" for name, n in counts.items())
    split = ", or train on DFT and test on experiment (--split provenance)" if set(counts) == PROVENANCE_SPLIT else ""
    return f"warning: the target mixes provenances ({mix}); keep one in the catalog dataset (provenance: [...]){split}"


def _method_mix(provenance: str, counts: dict[str, int]) -> str | None:
    """The warning for values of one provenance by several methods (values without a method aside)."""
    named = {name: n for name, n in counts.items() if name != _NONE}
    if len(named) < 2:
        return None
    mix = ", ".join(f"{name} {n}" for name, n in named.items())
    return (
        f"warning: the target's {provenance} values mix methods ({mix}); keep one in the catalog dataset "
        "(methods: [...])"
    )


def _condition_mix(meta: dict, name: str) -> str | None:
    """The warning for values at several stated temperatures (or pressures, or another condition the schema
    declares); none for an export made before meta.json summarised conditions."""
    counts = (meta.get("conditions") or {}).get(name, {})
    if len([value for value in counts if value != _NONE]) < 2:
        return None
    words, unit = _condition_words(name)
    mix = ", ".join(f"{n} unstated" if value == _NONE else f"{n} at {value}{unit}" for value, n in counts.items())
    select = (
        f"select one in the catalog dataset ({name}: ...)"
        if name in Dataset.model_fields
        else f"a catalog dataset cannot select one ({name} is no key of it)"
    )
    return (
        f"warning: the target's values are at several {words} ({mix}), which the features do not see (one compound "
        f"at two {words} is one input with two targets); {select}"
    )


def _condition_words(name: str) -> tuple[str, str]:
    """A condition column's quantity in the plural and its unit (with its space), from its name, '<quantity>_<unit>'
    as the schema names them: ('temperatures', ' K') of temperature_K, ('magnetic fields', ' T') of
    magnetic_field_T; (name + 's', '') of a name without a unit."""
    quantity, _, unit = name.rpartition("_")
    return f"{(quantity or unit).replace('_', ' ')}s", f" {unit}" if quantity else ""


def _target_property(dataset: Dataset, target: str | None) -> str:
    """The property to learn: `target`, which must be one of the dataset's, else its first."""
    if target is None:
        return dataset.properties[0]
    if target not in dataset.properties:
        raise ConfigError(f"target '{target}' is not a property of this dataset ({', '.join(dataset.properties)})")
    return target


def _per_atom_if_molar(long: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Values of a property of canonical `unit`, with their uncertainties, in the target's unit (`_target_unit`): molar
    values divided by the atoms of their formula unit (per mole of atoms): features are element fractions, so one
    composition gets one target however its formula is written (Fe4O6 and Fe2O3, Te0.5Se0.5 and TeSe), and near
    compositions targets of one scale (Fe0.947O and FeO); their uncertainties converted alike, as differences
    through matreg.units (± 0.3 J/(mol*K) of ZnO is ± 0.15 J/(mol-atom*K))."""
    if not is_molar(unit):
        return long
    counts = {formula: atoms_per_unit(formula) for formula in set(long["formula_original"])}
    atoms = long["formula_original"].map(counts)
    unknown = np.full(len(long), np.nan)  # (no atoms per cell nor molar mass: a per-mole bridge needs neither)
    uncertainty = long["uncertainty"].to_numpy(dtype=float)
    per_atom = convert_array(
        uncertainty, unit, _target_unit(unit), atoms.to_numpy(dtype=float), unknown, unknown, differences=True
    )
    return long.assign(value=long["value"] / atoms, uncertainty=per_atom)


def _target_unit(unit: str) -> str:
    """The unit of an exported target: a molar one per mole of atoms ('kJ/mol-atom', `_per_atom_if_molar`)."""
    return per_mole_of_atoms(unit) if is_molar(unit) else unit


_PER_FORMULA_UNIT = re.compile(r",? per mole of formula units")


def _target_description(description: str, unit: str) -> str:
    """The vocabulary's description of a property, saying of a molar one that the export's values are per mole of
    atoms (`_per_atom_if_molar`), not of formula units as stored."""
    if not is_molar(unit):
        return description
    stem = _PER_FORMULA_UNIT.sub("", description).rstrip(".")
    return f"{stem}, per mole of atoms (the stored value per mole of formula units divided by its atoms)."


def _sample_rows(
    store: Store, catalog: Catalog, name: str, prop: str
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str], dict]:
    """One row per record, as the dataset is released (review decisions applied, linked records resolved per the
    catalog): its value of `prop`, formula, chemical system, method, provenance, source, `records` (the stored records
    a row stands for: itself, or a resolved group's members), structure and `structure_record` (`_with_structures`).
    Also the curated values the rows are made of, each with its source's version and run: what the export's sources
    count (a row's one value, the one `prefer` kept of a record's several; each value a median row merges); the
    records left out, with why (`_without_atoms`); and what `prefer` left out of `prop`'s values
    (`preference_summary`; {} for others)."""
    from matreg.curate.release import (  # the curation layer; linking loads pymatgen's StructureMatcher
        curate_dataset,
        preference_summary,
    )

    dataset = catalog.dataset(name)
    curated = curate_dataset(store, catalog, name, prop)
    long = curated.resolved[curated.resolved["property"] == prop]
    if not len(long):
        selected = curated.raw[curated.raw["property"] == prop]
        raise MatregError(nothing_selected(name, dataset, selected, prop))
    _refuse_several_values(long, prop, long["record_id"].str.startswith(MERGED_ROW_PREFIX))
    long, left_out = _without_atoms(long)
    if not len(long):
        without = ", ".join(left_out)
        raise MatregError(f"dataset '{name}' has no values of {prop} but of records without atoms: {without}")
    records = long["records"] if "records" in long else long["record_id"]
    long = long.assign(records=records.fillna(long["record_id"]))
    member_ids = long["records"].str.split("; ").explode().unique().tolist()
    materials = store.read(
        "SELECT record_id, chemsys, structure, run_id FROM materials WHERE record_id IN (SELECT unnest(?))",
        [member_ids],
    )
    targets = _per_atom_if_molar(long, load_vocabulary().root[prop].unit)
    targets = targets.rename(columns={"value": "target", "uncertainty": "target_uncertainty"})
    rows = targets.merge(materials, on="record_id", how="left")
    missing = rows["chemsys"].isna()  # a resolved group's median row ('group:...') is no stored record
    rows.loc[missing, "chemsys"] = [
        parse_formula(unit, as_stored=True).chemsys for unit in rows.loc[missing, "formula"]
    ]
    rows = _with_structures(rows, materials)
    values = curated.carried[curated.carried["property"] == prop]  # what the rows hold: prefer's kept values only
    members = values[values["record_id"].isin(member_ids)].merge(materials[["record_id", "run_id"]], on="record_id")
    preference = preference_summary(dataset, curated, prop)
    return rows.sort_values("record_id", kind="stable").reset_index(drop=True), members, left_out, preference


def _with_structures(rows: pd.DataFrame, materials: pd.DataFrame) -> pd.DataFrame:
    """The rows with the structure of their `structure_record`: a stored record's own; for a median row ('group:<group
    id>', MERGED_ROW_PREFIX) of one crystal (a link group of one formula and space group, or a StructureMatcher cluster
    in one: its members' structures match), its smallest member record id with a structure. A median row of another
    group (a formula only, a named phase: its members need not be one polymorph) gets none."""
    group = rows["record_id"].str.removeprefix(MERGED_ROW_PREFIX)
    one_crystal = rows["record_id"].str.startswith(MERGED_ROW_PREFIX) & group.str.fullmatch(_ONE_CRYSTAL_GROUP)
    members = rows.loc[one_crystal, "records"].str.split("; ").explode()
    structures = materials.dropna(subset=["structure"]).set_index("record_id")["structure"]
    record = rows["record_id"].where(rows["structure"].notna())
    record.update(members[members.isin(structures.index)].groupby(level=0).min())
    return rows.assign(structure_record=record, structure=record.map(structures))


def _warn_of_rows_without_graphs(rows: pd.DataFrame, graph: dict[str, np.ndarray]) -> None:
    """Log how many rows have no crystal graph (no structure, or a disordered one), naming a few: graph models leave
    them out (meta.json counts them, `_graph_info`)."""
    graphless = np.diff(graph["atom_offsets"]) == 0
    if not graphless.any():
        return
    ids = rows.loc[graphless, "record_id"].tolist()
    examples = listed(ids, 3)
    logger.warning(
        f"{len(ids)} of {len(rows)} rows have no crystal graph (no structure, or a disordered one: {examples}); "
        "graph models leave them out (meta.json: featurizers.graph)"
    )


def _without_atoms(long: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The rows of records whose formula unit has atoms, and why each other record is left out: one without (JANAF's
    electron gas, 'e1-') has no composition to featurize and no per-atom target (a molar value over 0 atoms)."""
    atoms = long["formula_original"].map(atoms_per_unit)
    empty = long[atoms == 0]
    reasons = {
        record_id: f"its formula unit {formula} has no atoms: no composition to featurize, no per-atom target"
        for record_id, formula in zip(empty["record_id"], empty["formula_original"], strict=True)
    }
    return long[atoms > 0], reasons


def _refuse_several_values(long: pd.DataFrame, prop: str, merged: pd.Series) -> None:
    """MatregError when a record, or a resolved group's median row (`merged`), has several values of `prop`, naming
    what differs (provenances, methods, conditions) and the catalog settings that keep one: a row has one target."""
    twice = long["record_id"].duplicated(keep=False)
    if not twice.any():
        return
    record_id = long.loc[twice, "record_id"].iloc[0]
    example = long[long["record_id"] == record_id]
    differ = [column for column in _DIFFERING if example[column].nunique(dropna=False) > 1]
    if "provenance" in differ:  # DFT and measured values never share a method: that theirs differ says nothing more
        differ = [column for column in differ if column != "method"]
    what = "".join(f", {_DIFFERING[column][0]} {_distinct(example[column])}" for column in differ)
    if merged[example.index].all():
        what += "; `resolve: median` merges only values of one provenance, method and conditions"
    fixes = [_DIFFERING[column][1] for column in differ]
    if {"provenance", "method"} & set(differ):  # `prefer` ranks provenances and methods, not conditions
        fixes.append("rank them (`resolve: {strategy: prefer, prefer: [...]}`, best first)")
    counted = _counted(long.loc[twice, "record_id"], merged[twice])
    raise MatregError(
        f"{counted} have several values of {prop} (e.g. {record_id}{what}): a torch export takes one target per row; "
        f"in the catalog, {' or '.join(fixes)}"
    )


_DIFFERING = {  # what may differ between the values of one row: its words, and the catalog setting that keeps one
    "provenance": ("of the provenances", "keep one provenance (`provenance: [...]`)"),
    "method": ("by the methods", "select methods (`methods: [...]`)"),
    "temperature_K": ("at the temperatures (K)", "select one temperature (`temperature_K: ...`)"),
    "pressure_Pa": ("at the pressures (Pa)", "select one pressure (`pressure_Pa: ...`)"),
}


def _counted(record_ids: pd.Series, merged: pd.Series) -> str:
    """'3 record(s)', '2 resolved group(s)' or both: the distinct ids of `record_ids`, median rows (`merged`) apart."""
    distinct = ~record_ids.duplicated()
    counts = {"record(s)": int((distinct & ~merged).sum()), "resolved group(s)": int((distinct & merged).sum())}
    return " and ".join(f"{n} {noun}" for noun, n in counts.items() if n)


def _distinct(values: pd.Series) -> str:
    """The distinct values of a column as text, sorted, joined by ', ' ('none' for a missing value)."""
    texts = {"none" if pd.isna(value) else f"{value:g}" if isinstance(value, float) else str(value) for value in values}
    return ", ".join(sorted(texts))


def _write_records(rows: pd.DataFrame, path: Path) -> None:
    """records.parquet with fixed types and compression and no pandas metadata."""
    columns = {
        name: pa.array(rows[name].to_numpy(dtype=np.float64), from_pandas=True)  # NaN (no condition) -> null
        if name in _NUMBER_COLUMNS
        else pa.array(rows[name].tolist(), type=pa.string(), from_pandas=True)  # NaN (no method) -> null
        for name in RECORD_COLUMNS
    }
    pq.write_table(pa.table(columns), path, compression="zstd", compression_level=9)


def _write_npz(arrays: dict[str, np.ndarray], path: Path) -> None:
    """An .npz that np.load reads, with fixed entry order, timestamps and compression (byte-reproducible)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.ascontiguousarray(arrays[name]), allow_pickle=False)


def _file_info(path: Path | None) -> dict | None:
    """Name and sha256 of an input file."""
    return None if path is None else {"file": Path(path).name, "sha256": file_sha256(Path(path))}


def _counts(values: pd.Series) -> dict[str, int]:
    """Value counts as a plain, sorted dict."""
    return {str(key): int(count) for key, count in sorted(values.value_counts().items())}


def _condition_counts(values: pd.Series) -> dict[str, int]:
    """Counts of each stated value of a condition, by increasing value (`_NONE`: the values without one)."""
    counts = {
        np.format_float_positional(value, trim="-"): int(count)
        for value, count in sorted(values.dropna().value_counts().items())
    }
    unstated = int(values.isna().sum())
    return counts | ({_NONE: unstated} if unstated else {})


def _counts_by_split(rows: pd.DataFrame, column: str) -> dict[str, dict[str, int]]:
    """Value counts of a column in each split."""
    return {part: _counts(rows.loc[rows["split"] == part, column]) for part in SPLITS}


def _featurizers(
    arrays: dict[str, dict[str, np.ndarray]], cutoff: float, max_neighbors: int, has_structure: pd.Series
) -> dict:
    """Names and sizes of the features in composition.npz and graph.npz (`has_structure`: of each row)."""
    width = int(arrays["composition.npz"]["element_z"].shape[1])
    graph = arrays.get("graph.npz")
    return {
        "composition": {
            "fractions": {"size": N_ELEMENTS, "description": "atomic fraction of each element, column j is Z = j + 1"},
            "stats": {
                "size": len(stat_names()),
                "names": stat_names(),
                "element_properties": list(ELEMENT_PROPERTIES),
                "source": f"pymatgen {pymatgen.core.__version__} Element data; a value pymatgen lacks is imputed "
                "with the property's mean over the elements",
            },
            "element_z": {"size": width, "description": "Z of each element by increasing Z, 0 = padding"},
            "element_frac": {"size": width, "description": "atomic fraction of each element of element_z"},
        },
        "graph": None if graph is None else _graph_info(graph, cutoff, max_neighbors, has_structure),
    }


def _graph_info(graph: dict[str, np.ndarray], cutoff: float, max_neighbors: int, has_structure: pd.Series) -> dict:
    """How the crystal graphs were built, how big they are, and how many rows have none."""
    n_structures = int((np.diff(graph["atom_offsets"]) > 0).sum())
    return {
        "method": "pymatgen Structure.get_neighbor_list (periodic images), nearest max_neighbors per atom",
        "structures": "a row's structure_record's: a stored record's own; a resolve: median row of one crystal (a "
        "link group of one formula and space group, or structure cluster) takes its smallest member record id with "
        "a structure, another median row none",
        "cutoff_A": cutoff,
        "max_neighbors": max_neighbors,
        "n_structures": n_structures,
        "n_without_structure": int((~has_structure).sum()),  # no graph: graph models leave these rows out
        "n_disordered_left_out": int(has_structure.sum()) - n_structures,  # partly occupied or mixed sites: no graph
        "n_atoms": int(len(graph["atom_z"])),
        "n_edges": int(len(graph["edge_src"])),
    }


def _meta(
    name: str, dataset: Dataset, prop: str, rows: pd.DataFrame, members: pd.DataFrame, context: dict, files: dict
) -> dict:
    """The content of meta.json (`members`: the curated values the export's rows are made of, `_sample_rows`)."""
    spec = load_vocabulary().root[prop]
    methods = rows.assign(method=rows["method"].fillna(_NONE))
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dataset": name,
        "version": dataset.version,  # the catalog's: the export is the store as it is now, not that release
        "released": False,
        "description": dataset.description,
        "target": {
            "property": prop,
            "unit": _target_unit(spec.unit),
            "description": _target_description(spec.description, spec.unit),
            "bounds": list(spec.bounds),
            "ion_bounds": None if spec.ion_bounds is None else list(spec.ion_bounds),  # of an ion or aqueous solute
            "bounds_unit": spec.unit,  # the stored unit: a molar property's per formula unit, the target's per atom
            "n_distinct": int(rows["target"].nunique()),
        },
        "n": int(len(rows)),
        "n_per_split": {part: int((rows["split"] == part).sum()) for part in SPLITS},
        "provenance": _counts(rows["provenance"]),
        "provenance_by_split": _counts_by_split(rows, "provenance"),
        "method": _counts(methods["method"]),
        "method_by_split": _counts_by_split(methods, "method"),
        "method_by_provenance": {
            provenance: _counts(group["method"]) for provenance, group in methods.groupby("provenance", sort=True)
        },
        "conditions": {condition: _condition_counts(rows[condition]) for condition in CONDITIONS},
        "sources": attribution(members, runs=True),
        "split": context["split"] | {"leakage": leakage_report(rows, rows["split"].to_numpy())},
        "featurizers": context["featurizers"],
        "left_out": context["left_out"],
        **context["preference"],
        "element_order": element_symbols(),
        "files": files,
        "content_sha256": hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest(),
        "matreg_version": __version__,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _write_export(out: Path, rows: pd.DataFrame, arrays: dict, build_meta: Callable[[dict], dict]) -> dict:
    """Write the payload and meta.json into a staging folder beside `out`, then put it in place (`atomic_dir`,
    `_replace_export`)."""
    with atomic_dir(out, _replace_export) as staging:
        _write_records(rows, staging / "records.parquet")
        for name, content in arrays.items():
            _write_npz(content, staging / name)
        written = sorted(staging.iterdir())
        files = {path.name: {"sha256": file_sha256(path), "bytes": path.stat().st_size} for path in written}
        meta = build_meta(files)
        (staging / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return meta


def _check_out(out: Path) -> None:
    """Refuse an output path that holds anything but an earlier export, which is replaced whole (an empty directory
    is fine): a directory with another meta.json, or with files the export did not write, is the user's."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    meta = _json_object(out / "meta.json") if out.is_dir() else {}
    if meta.get("format") != FORMAT:
        raise MatregError(f"{out} exists and is not a matreg torch export: choose another --out")
    written = {"meta.json", *meta.get("files", {})}
    others = sorted(path.name for path in out.iterdir() if path.name not in written)
    if others:
        raise MatregError(f"{out} holds files the export did not write ({', '.join(others)}): choose another --out")


def _json_object(path: Path) -> dict:
    """The JSON object a file holds; empty when there is no such file, or it holds no JSON object."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _replace_export(new: Path, out: Path) -> None:
    """Put the staged export `new` in place (`replace_dir`): at `out`, where an earlier export (or an empty directory)
    is replaced whole, anything else refused (`_check_out`)."""
    _check_out(out)
    replace_dir(new, out)


class ExportedDataset:
    """A torch export directory, checked against its meta.json hashes; `.split(name)` and `.graph_split(name)`."""

    def __init__(self, directory: Path | str) -> None:
        torch = require_torch()
        self.directory = Path(directory)
        self.meta = read_meta(self.directory)
        _check_files(self.directory, self.meta["files"])
        self.records = pq.read_table(self.directory / "records.parquet").to_pandas()
        self._composition = _load_npz(self.directory / "composition.npz", torch)
        # float64, as exported: float32 rounds -34000 eV/atom to 2 meV (`train` standardises it, then casts to float32)
        self._composition["target"] = torch.from_numpy(self.records["target"].to_numpy(dtype=np.float64, copy=True))
        listed = "graph.npz" in self.meta["files"]
        self._graph = _load_npz(self.directory / "graph.npz", torch) if listed else None
        if self._graph is not None:
            _check_graph_settings(self.directory, self.meta, self._graph)

    def _rows(self, name: str) -> np.ndarray:
        """Positions of the records of split `name`."""
        if name not in SPLITS:
            raise MatregError(f"unknown split '{name}' (choose from {', '.join(SPLITS)})")
        return np.flatnonzero(self.records["split"].to_numpy() == name)

    def _tensors(self, rows: np.ndarray) -> dict[str, Tensor]:
        """The composition tensors and targets of `rows`, and `row`: the rows' positions in records.parquet."""
        index = require_torch().from_numpy(rows)
        return {key: tensor[index] for key, tensor in self._composition.items()} | {"row": index}

    def split(self, name: str) -> CompositionSplit:
        """The records of one split with their composition features."""
        rows = self._rows(name)
        return CompositionSplit(self._tensors(rows), self.records["record_id"].to_numpy()[rows].tolist())

    def graph_split(self, name: str) -> GraphSplit:
        """The records of one split that have a crystal graph, with composition features and graphs (meta.json's
        featurizers.graph counts the rows without one)."""
        rows = self._rows(name)
        if self._graph is None:
            raise MatregError(f"{self.directory} has no crystal graphs: none of its records has a structure")
        atoms = np.diff(self._graph["atom_offsets"].numpy())
        rows = rows[atoms[rows] > 0]
        return GraphSplit(self._tensors(rows), self.records["record_id"].to_numpy()[rows].tolist(), self._graph)


def read_meta(directory: Path) -> dict:
    """meta.json of an export, checked to be one: a JSON object of this format that lists each payload file it needs
    (`PAYLOAD`) with its sha256 (`_unlisted`), and has the summary `train` reads (`_unsummarised`); MatregError naming
    what is wrong. The files are checked on loading (`ExportedDataset`)."""
    try:
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _unreadable(directory, exc) from None
    if not isinstance(meta, dict):
        raise _unreadable(directory, "meta.json is not a JSON object")
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise MatregError(f"{directory}: not a {FORMAT} v{FORMAT_VERSION} export")
    if (why := _unlisted(meta.get("files")) or _unsummarised(meta)) is not None:
        raise _unreadable(directory, why)
    return meta


def _unreadable(directory: Path, why: Exception | str) -> MatregError:
    """The error of a directory that is no readable torch export, saying why."""
    return MatregError(f"{directory} is not a readable matreg torch export: {why}")


def _unlisted(files: Any) -> str | None:
    """What meta.json's `files` (each payload file's name -> its sha256 and bytes) lacks, or None: it lists every
    file of `PAYLOAD`, each with a sha256."""
    if not isinstance(files, dict):
        return "meta.json lists no files"
    unhashed = [name for name, info in files.items() if not (isinstance(info, dict) and "sha256" in info)]
    if unhashed:
        return f"meta.json gives no sha256 of {', '.join(unhashed)}"
    unlisted = [name for name in PAYLOAD if name not in files]
    if unlisted:
        return f"meta.json does not list {' or '.join(unlisted)} (every export has {' and '.join(PAYLOAD)})"
    return None


class _Target(pydantic.BaseModel):
    property: str
    unit: str
    n_distinct: int | None = None  # (None: absent, as in an export before meta.json counted its values)


class _Split(pydantic.BaseModel):
    method: str


class GraphSettings(pydantic.BaseModel):
    """How an export's crystal graphs were built (meta.json's featurizers.graph), as `predict` builds a new
    structure's: its neighbour cutoff and count (an export before meta.json gave them: the defaults)."""

    cutoff_A: float = DEFAULT_CUTOFF
    max_neighbors: int = DEFAULT_MAX_NEIGHBORS


class _Featurizers(pydantic.BaseModel):
    graph: GraphSettings | None = None  # (None: no crystal graphs)


class _Summary(pydantic.BaseModel):
    """What `train` and its warnings read of meta.json (`provenance_warning`): counts by name, nested."""

    target: _Target
    provenance: dict[str, int]
    split: _Split
    method_by_provenance: dict[str, dict[str, int]] | None = None  # (None: absent, in older exports)
    conditions: dict[str, dict[str, int]] | None = None
    featurizers: _Featurizers | None = None  # (its graph is recorded with a run, and builds `predict`'s graphs)


def _unsummarised(meta: dict) -> str | None:
    """What of the summary `train` and its warnings read (`_Summary`) meta.json lacks or gives of another type (a
    hand edit), or None."""
    return json_mismatch(meta, _Summary, "meta.json")


def json_mismatch(document: dict, shape: type[pydantic.BaseModel], file: str) -> str | None:
    """The first key of a JSON `document` (the object `file` holds) that `shape` says it needs and it lacks, or gives
    of another type (a hand edit), in JSON's words ("meta.json's split is not an object"); None where there is none."""
    try:
        shape.model_validate(document, strict=True)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(map(str, error["loc"]))
        if error["type"] == "missing":
            return f"{file} has no {where}"
        return f"{file}'s {where} is not {_JSON_TYPES.get(error['type'], error['msg'])}"
    return None


_JSON_TYPES = {
    "dict_type": "an object",
    "model_type": "an object",
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a text",
}


def _check_files(directory: Path, files: dict[str, dict]) -> None:
    """MatregError unless every file meta.json lists is there, as its sha256 says it was exported."""
    missing = [name for name in files if not (directory / name).is_file()]
    if missing:
        raise _unreadable(directory, f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing")
    changed = [name for name, info in files.items() if file_sha256(directory / name) != info["sha256"]]
    if changed:
        raise MatregError(f"{directory}: {', '.join(changed)} changed since the export (sha256 mismatch)")


def _check_graph_settings(directory: Path, meta: dict, graph: dict[str, Tensor]) -> None:
    """Take from an export's graph tensors what graph.npz records they were built with (`GraphSettings`' keys);
    MatregError where meta.json's featurizers.graph says otherwise (a hand edit: a run would record it, and `predict`
    build new structures' graphs by it). graph.npz of an export before it recorded them has none: not checked."""
    built = {name: graph.pop(name).item() for name in GraphSettings.model_fields if name in graph}
    said = GraphSettings.model_validate((meta.get("featurizers") or {}).get("graph") or {}).model_dump()
    changed = [f"{name} {said[name]} (graph.npz: {value})" for name, value in built.items() if said[name] != value]
    if changed:
        raise _unreadable(
            directory, f"meta.json's featurizers.graph gives {', '.join(changed)}, not what its graphs were built with"
        )


def _load_npz(path: Path, torch: Any) -> dict[str, Tensor]:
    """Every array of an .npz as a tensor."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: torch.from_numpy(archive[name]) for name in archive.files}


class CompositionSplit(_TorchDataset):
    """One split of an export: composition tensors and targets, served as whole-batch slices."""

    def __init__(self, tensors: dict[str, Tensor], record_id: list[str]) -> None:
        self.tensors = tensors
        self.fractions = tensors["fractions"]
        self.stats = tensors["stats"]
        self.element_z = tensors["element_z"]
        self.element_frac = tensors["element_frac"]
        self.target = tensors["target"]
        self.record_id = record_id

    @classmethod
    def of_features(cls, features: dict[str, np.ndarray], record_id: list[str]) -> CompositionSplit:
        """A split over freshly featurized inputs (`featurize_compositions`), without targets: for prediction."""
        return cls(_unlabelled_tensors(features), record_id)

    def __len__(self) -> int:
        return len(self.record_id)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """The sample at `index`, counted from the end when negative, as a Python sequence's; TypeError for an index
        that is no int (a slice: several samples are batched with `batches()`, or a DataLoader and `collate`)."""
        return self._item(require_torch().tensor([self._position(index)]))

    def _position(self, index: int) -> int:
        """The position in this split that `index` names (IndexError out of range, TypeError for no int)."""
        try:
            position = operator.index(index)
        except TypeError:
            raise TypeError(
                f"a split's index must be an int, not {type(index).__name__} (several samples: split.batches(n), or a "
                "DataLoader with collate)"
            ) from None
        if not -len(self) <= position < len(self):
            raise IndexError(f"split index {position} is out of range: the split has {len(self)} samples")
        return position % len(self)

    def __getitems__(self, indices: list[int]) -> DrawnSamples:
        """The samples a torch DataLoader drew for one batch (its fetcher calls this when a dataset has it, and
        `Subset` passes it on), which `collate` takes as one batch sliced at once, as `batches()` slices it; each
        index read as `__getitem__` reads it (`_position`)."""
        return DrawnSamples(split=self, indices=[self._position(index) for index in indices])

    def _features(self, positions: Tensor) -> dict[str, Tensor]:
        """The tensors at `positions` (a 1-D index tensor), and `index`: the positions themselves."""
        return {key: tensor[positions] for key, tensor in self.tensors.items()} | {"index": positions}

    def _item(self, positions: Tensor) -> dict[str, Tensor]:
        """The sample at `positions` (one position), without the batch dimension."""
        return {key: value[0] for key, value in self._features(positions).items()}

    def _batch(self, positions: Tensor) -> dict[str, Tensor]:
        """The batch of samples at `positions`."""
        return self._features(positions)

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: Any | None = None
    ) -> Iterator[dict[str, Tensor]]:
        """Batches as dicts of tensors (`index`: positions in this split), gathered by slicing, no per-sample loop;
        ValueError at once for a batch size that is not a positive integer.

        Shuffled (training) batches never end with a batch of one sample, which joins the batch before: batch
        normalization cannot train on a single value (one crystal of one atom).
        """
        return self._batches(check_batch_size(batch_size), shuffle, generator)

    def _batches(self, batch_size: int, shuffle: bool, generator: Any | None) -> Iterator[dict[str, Tensor]]:
        """The batches of `batches`, made as they are asked for."""
        torch = require_torch()
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        starts = list(range(0, len(self), batch_size))
        if shuffle and len(starts) > 1 and len(self) - starts[-1] == 1:
            starts.pop()
        for start, end in zip(starts, [*starts[1:], len(self)], strict=True):
            yield self._batch(order[start:end])

    @staticmethod
    def collate(samples: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
        """`collate`, as `split.collate`."""
        return collate(samples)


class GraphSplit(CompositionSplit):
    """One split's records with a structure: composition tensors plus crystal graphs, batched by vectorized slicing."""

    def __init__(self, tensors: dict[str, Tensor], record_id: list[str], graph: dict[str, Tensor]):
        super().__init__(tensors, record_id)
        self.graph = graph
        self.rows = tensors["row"]

    @classmethod
    def of_graphs(
        cls, features: dict[str, np.ndarray], graph: dict[str, np.ndarray], record_id: list[str]
    ) -> GraphSplit:
        """A split over freshly featurized structures (composition features and `featurize_structures` graphs)."""
        torch = require_torch()
        graph_tensors = {name: torch.from_numpy(array) for name, array in graph.items()}
        return cls(_unlabelled_tensors(features), record_id, graph_tensors)

    def _item(self, positions: Tensor) -> dict[str, Tensor]:
        return super()._item(positions) | self._graphs(positions)

    def _batch(self, positions: Tensor) -> dict[str, Tensor]:
        return self._features(positions) | self._graphs(positions)

    def _graphs(self, positions: Tensor) -> dict[str, Tensor]:
        """Atoms and edges of the crystals at `positions`, concatenated; edge indices point into the batch."""
        rows = self.rows[positions]
        atom_start, n_atoms = _spans(self.graph["atom_offsets"], rows)
        edge_start, n_edges = _spans(self.graph["edge_offsets"], rows)
        atoms, edges = _ranges(atom_start, n_atoms), _ranges(edge_start, n_edges)
        crystals = {"atom_z": self.graph["atom_z"][atoms]} | {key: self.graph[key][edges] for key in _EDGE_KEYS}
        return _one_graph(crystals, n_atoms, n_edges)


class DrawnSamples(UserList):
    """The samples of a split that a DataLoader drew for one batch, a list as torch's contract has it: `collate`
    returns their `batch`, sliced at once (`_batch`), while they were not read one by one; any other collate function,
    torch's default one too, reads (and may change) the samples, each as `split[index]` gives it, read when first
    asked for. Pickled (a batch crossing from a worker process) as the list of samples, without the split."""

    def __init__(self, samples: Iterable[dict[str, Tensor]] = (), split: CompositionSplit | None = None,
                 indices: list[int] | None = None) -> None:  # fmt: skip
        self.split, self.indices = split, indices
        if split is None:  # (a list made of samples: `samples + more`, a slice)
            super().__init__(samples)

    @cached_property
    def data(self) -> list[dict[str, Tensor]]:  # type: ignore[override]
        """The samples one by one, read once however often a collate function goes over them."""
        return [self.split[index] for index in self.indices]

    @property
    def _unread(self) -> bool:
        """Whether the samples are the split's drawn ones, not yet read one by one (`data`)."""
        return self.split is not None and "data" not in vars(self)

    @property
    def batch(self) -> dict[str, Tensor] | None:
        """The batch of the samples, as `split.batches()` builds it; None once they were read one by one (a collate
        function may have changed them)."""
        return self.split._batch(require_torch().tensor(self.indices)) if self._unread else None

    def __len__(self) -> int:
        return len(self.indices) if self._unread else len(self.data)

    def __reduce__(self) -> tuple:
        return list, (list(self.data),)


def check_batch_size(size: int) -> int:
    """`size` as an int; ValueError unless it is a positive integer."""
    try:
        number = operator.index(size)
    except TypeError:
        number = 0
    if number < 1:
        raise ValueError(f"batch size must be a positive integer, not {size!r}")
    return number


def _unlabelled_tensors(features: dict[str, np.ndarray]) -> dict[str, Tensor]:
    """Feature arrays as tensors, with a placeholder target of zeros, each input's row its position."""
    torch = require_torch()
    tensors = {name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in features.items()}
    count = len(next(iter(tensors.values())))
    return tensors | {"target": torch.zeros(count, dtype=torch.float64), "row": torch.arange(count)}


_GRAPH_KEYS = ("atom_z", "crystal_index", "n_atoms", "edge_src", "edge_dst", "edge_dist")  # a sample's crystal
_EDGE_KEYS = ("edge_src", "edge_dst", "edge_dist")


def collate(samples: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
    """The batch of the samples a torch DataLoader drew, as `.batches()` builds it, from the samples themselves (of
    any split, several splits, or a wrapper that changed them): their tensors stacked, and their crystals joined,
    edge indices pointing into the batch (crystals differ in size, which torch's default collation cannot stack):
    `DataLoader(split, batch_size=32, shuffle=True, collate_fn=collate)`. The samples a DataLoader drew from a split
    itself (or a `Subset` of one) come as `DrawnSamples`, whose batch is sliced at once, as `.batches()` slices it."""
    if isinstance(samples, DrawnSamples) and (batch := samples.batch) is not None:
        return batch
    if not len(samples):
        raise ValueError("nothing to batch: collate was given no samples")
    torch = require_torch()
    batch = {key: torch.stack([sample[key] for sample in samples]) for key in samples[0] if key not in _GRAPH_KEYS}
    return batch | _joined_crystals(samples) if "atom_z" in samples[0] else batch


def _joined_crystals(samples: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
    """The crystals of the samples as one graph: atoms and edges concatenated, edge indices shifted into it."""
    torch = require_torch()
    n_atoms = torch.cat([sample["n_atoms"] for sample in samples])
    n_edges = torch.tensor([len(sample["edge_src"]) for sample in samples])
    crystals = {key: torch.cat([sample[key] for sample in samples]) for key in ("atom_z", *_EDGE_KEYS)}
    return _one_graph(crystals, n_atoms, n_edges)


def _one_graph(crystals: dict[str, Tensor], n_atoms: Tensor, n_edges: Tensor) -> dict[str, Tensor]:
    """Crystals' atoms and edges laid end to end (`crystals`: atom_z and the edge arrays, `n_atoms` and `n_edges`
    of each crystal) as one graph: each atom's crystal, and edge indices, each crystal's own, shifted into it."""
    torch = require_torch()
    shift = torch.repeat_interleave(torch.cumsum(n_atoms, 0) - n_atoms, n_edges)
    indices = {key: crystals[key] + shift for key in ("edge_src", "edge_dst")}
    crystal_index = torch.repeat_interleave(torch.arange(len(n_atoms)), n_atoms)
    return crystals | indices | {"crystal_index": crystal_index, "n_atoms": n_atoms}


def _spans(offsets: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """Start and length of each row's slice of a flat array."""
    start = offsets[rows]
    return start, offsets[rows + 1] - start


def _ranges(starts: Tensor, counts: Tensor) -> Tensor:
    """The concatenation of range(start, start + count) for each pair, without a Python loop."""
    torch = require_torch()
    total = int(counts.sum())
    return torch.repeat_interleave(starts - (torch.cumsum(counts, 0) - counts), counts, output_size=total) + (
        torch.arange(total)
    )
