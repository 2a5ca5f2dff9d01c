"""Apply a trained run to new inputs: formulas for composition models, crystal structures for graph models.

Inputs are featurized exactly as the export was (matreg.ml.features) and batched by the same loaders as training.
"""

from __future__ import annotations

import errno
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pydantic
from pymatgen.core import Composition, Structure

from matreg.errors import FormulaError, MatregError, RecordError, utf8_path
from matreg.formula import ambiguous_charge, parse_formula, reduced_formula
from matreg.ml import INSTALL_HINT
from matreg.structure import file_structures

try:
    import torch
except ImportError:  # the `ml` extra is not installed: say so instead of a traceback
    raise MatregError(f"PyTorch is not installed; {INSTALL_HINT}") from None

from matreg.ml.dataset import CompositionSplit, GraphSettings, GraphSplit, check_batch_size, json_mismatch
from matreg.ml.features import featurize_compositions, featurize_structures
from matreg.ml.models import GRAPH_MODELS, build_model
from matreg.ml.train import MODEL_FILE, predict_split, resolve_device
from matreg.store import refuse_long_names

STRUCTURE_SUFFIXES = (".cif", ".json")
STRUCTURE_KEYS = ("lattice", "sites")  # what a pymatgen Structure's dict (`Structure.as_dict()`) has at least
FORMULA_SUFFIXES = (".csv", ".tsv", ".txt")  # of a file of formulas: a text with one names a file, not a formula
FORMULA_COLUMNS = ("formula", "composition", "pretty_formula", "reduced_formula")
# What `predict` takes: one input (a formula, a file or folder of them, a structure or its pymatgen dict), a DataFrame
# (a formula or structure column), or several inputs; a composition model's read by `read_formulas`, a graph model's
# by `read_structures`, each refusing the other's
Input = str | Path | Composition | Structure | dict[str, Any]
Inputs = Input | pd.DataFrame | Iterable[Input]


def load_run(run_dir: Path | str, device: str | torch.device | None = "cpu") -> tuple[torch.nn.Module, dict]:
    """The trained network of a run directory (in eval mode) on `device` (`resolve_device`; None: the CPU) and its
    config; PathError for a path too long for the file system (`refuse_long_names`)."""
    run_dir = Path(run_dir)
    refuse_long_names(run_dir, f"cannot read {run_dir}")
    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        state = torch.load(run_dir / MODEL_FILE, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise _unreadable_run(run_dir, exc) from None
    if not isinstance(config, dict):
        raise _unreadable_run(run_dir, "config.json is not a JSON object")
    if (why := json_mismatch(config, _RunConfig, "config.json")) is not None:
        raise _unreadable_run(run_dir, why)
    try:  # (a hand-edited model or model_options: no network, or another one than the weights are of)
        model = build_model(config["model"], config["model_options"])
        model.load_state_dict(state)
    except (MatregError, TypeError, ValueError, RuntimeError) as exc:
        why = f"config.json's model and model_options do not build the network {MODEL_FILE} holds: {exc}"
        raise _unreadable_run(run_dir, why.splitlines()[0]) from None
    return model.to(resolve_device(device or "cpu")).eval(), config


class _Standardisation(pydantic.BaseModel):
    mean: float
    std: float


class _RunTarget(pydantic.BaseModel):
    property: str
    unit: str


class _RunExport(pydantic.BaseModel):
    graph: GraphSettings | None = None  # (None: an export without crystal graphs)


class _RunConfig(pydantic.BaseModel):
    """What `load_run` and `predict` read of a run's config.json (a hand edit of another type is named, not a
    traceback)."""

    model: str
    model_options: dict[str, Any]
    target: _RunTarget
    standardisation: _Standardisation
    export: _RunExport


def _unreadable_run(run_dir: Path, why: Exception | str) -> MatregError:
    """The error of a directory that is no readable run, saying why."""
    return MatregError(f"{run_dir} is not a readable matreg run directory: {why}")


def predict(
    run_dir: Path | str, inputs: Inputs, device: str | torch.device = "auto", batch_size: int = 4096
) -> pd.DataFrame:
    """Predictions of a run for formulas (composition models) or structures (graph models), one row per input, on
    `device` (`resolve_device`); ValueError for a batch size that is not a positive integer."""
    check_batch_size(batch_size)
    torch_device = resolve_device(device)
    model, config = load_run(run_dir, torch_device)
    split: CompositionSplit  # (a GraphSplit for a graph model)
    if config["model"] in GRAPH_MODELS:
        names, structures = read_structures(inputs)
        split, formulas = _graph_split(names, structures, config), [s.composition.reduced_formula for s in structures]
    else:
        names = read_formulas(inputs)
        formulas = [as_imported(text) for text in names]
        split = CompositionSplit.of_features(featurize_compositions(formulas), list(names))
    standard = predict_split(model, split, batch_size, torch_device)
    scale = config["standardisation"]
    target = config["target"]
    return pd.DataFrame(
        {
            "input": names,
            "formula": formulas,
            "prediction": standard * scale["std"] + scale["mean"],
            "property": target["property"],
            "unit": target["unit"],
        }
    )


def _graph_split(names: list[str], structures: list[Structure], config: dict) -> GraphSplit:
    """A GraphSplit over new structures, with the run's neighbour cutoff and neighbour count; MatregError naming the
    disordered ones as their rows would be named (a file's name, a list's place from 0)."""
    settings = GraphSettings.model_validate(config["export"].get("graph") or {})
    disordered = [name for name, structure in zip(names, structures, strict=True) if not structure.is_ordered]
    if disordered:
        raise MatregError(
            f"structure(s) {', '.join(disordered)} are disordered (partly occupied or mixed sites): "
            "a crystal-graph model takes ordered crystals only"
        )
    jsons = [structure.to_json() for structure in structures]
    graph = featurize_structures(jsons, settings.cutoff_A, settings.max_neighbors)
    features = featurize_compositions([structure.composition.formula for structure in structures])
    return GraphSplit.of_graphs(features, graph, [str(i) for i in range(len(structures))])


def as_imported(text: str) -> str:
    """A formula as `matreg import` stores it, and so as the run's export featurized it (its reduced formula: a
    hydrate read whole, 'MgSO4.7H2O' is MgH14SO11, where pymatgen alone reads MgSH2O5.7); MatregError for one an
    import refuses, a charge that reads two ways among them ('SO42-': SO₄²⁻ or SO₄₂⁻, `ambiguous_charge`)."""
    reason = ambiguous_charge(text)
    if reason is None:
        try:
            return parse_formula(text).reduced
        except FormulaError as exc:
            reason = str(exc)
    raise MatregError(f"cannot featurize {text!r}: {reason}")


def read_formulas(inputs: Inputs) -> list[str]:
    """Formulas from a CSV/TSV file or a DataFrame (a formula or composition column, `_formula_cells`), a text file
    (one per line), or a list; MatregError when there are none (an empty file, a header alone), for a folder (given
    as a Path or a text: neither a formula nor a file of them; a text that is a formula too, as a folder 'Si' may be,
    is told how to give it as one), and for a Path, or a text naming a .csv/.tsv/.txt file, where no file is."""
    path = _path_of(inputs)
    if path is not None and _exists(path):  # a file (a pipe too: /dev/stdin, a shell's `<(...)`) or a folder
        if path.is_dir():
            raise MatregError(f"{inputs}: a folder, not a file of formulas{_as_formula_hint(inputs)}")
        formulas = _formulas_from_file(path)
        if not formulas:
            raise MatregError(f"{inputs}: no formulas to predict (the file lists none)")
        return formulas
    if isinstance(inputs, Path) or (path is not None and path.suffix.lower() in FORMULA_SUFFIXES):
        raise MatregError(f"{inputs}: no such file")  # a file's name (a formula is given as text), not a formula
    if isinstance(inputs, pd.DataFrame):
        items = _formula_cells(inputs, "the DataFrame")
    else:
        items = [inputs] if isinstance(inputs, (str, Composition)) else list(inputs)
    if not items:
        raise MatregError("no formulas to predict")
    if any(isinstance(item, (Structure, dict)) or _is_structure_file(item) for item in items):
        raise MatregError("this run is a composition model: give formulas, not structures")
    return [item.formula if isinstance(item, Composition) else str(item).strip() for item in items]


def _as_formula_hint(inputs: Inputs) -> str:
    """How to predict a text naming a folder as the formula it is too ('Si', beside a folder Si); '' for a Path (a
    formula is given as text) and a text that is no formula."""
    if not isinstance(inputs, str) or reduced_formula(inputs) is None:
        return ""
    return (
        f"; to predict the formula {inputs}, give it in a list (['{inputs}']) or as a line of a file or of stdin "
        f"(echo {inputs} | matreg predict RUN /dev/stdin)"
    )


def _path_of(inputs: Inputs) -> Path | None:
    """The path an input names (a Path, or a text), None for others and for the empty text (which pathlib reads as
    the current folder, '.')."""
    return Path(inputs) if isinstance(inputs, Path) or (isinstance(inputs, str) and inputs) else None


def _exists(path: Path) -> bool:
    """Whether anything is at `path`; nothing is at one too long for the file system (a name in it, or the whole
    path), as a long formula given as text is."""
    try:
        return path.exists()
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        return False


def _formulas_from_file(path: Path) -> list[str]:
    """The formulas listed in one file: a .csv/.tsv table's formula column, a text's lines (one formula a line); a
    text without a suffix (a pipe's) whose first line holds a comma or a tab, which no formula does, is a table."""
    suffix = path.suffix.lower()
    if suffix in STRUCTURE_SUFFIXES:
        raise MatregError(f"{path}: this run is a composition model: give formulas (CSV or text), not structures")
    text = path.read_text(encoding="utf-8-sig")  # (read once: a pipe is read once; Excel's byte order mark aside)
    separator = {".csv": ",", ".tsv": "\t", "": _separator_of(text)}.get(suffix)
    if separator is not None:
        return _formulas_of_table(text, separator, str(path))
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _separator_of(text: str) -> str | None:
    """The separator of a table's header, where a text's first line is one (it holds a tab or a comma), else None."""
    first = text.lstrip().partition("\n")[0]
    return "\t" if "\t" in first else "," if "," in first else None


def _formulas_of_table(text: str, separator: str, name: str) -> list[str]:
    """The cells of a CSV/TSV table's formula column (`_formula_cells`); none for an empty text."""
    try:
        table = pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:  # (an empty file)
        return []
    return [cell.strip() for cell in _formula_cells(table, name)]


def _formula_cells(table: pd.DataFrame, name: str) -> list:
    """The cells of a table's formula column, the first of FORMULA_COLUMNS it has, an empty cell '' (as a CSV's is
    read); MatregError naming the table (`name`) when it has none."""
    column = next((column for column in FORMULA_COLUMNS if column in table.columns), None)
    if column is None:
        raise MatregError(f"{name}: no formula column (one of {', '.join(FORMULA_COLUMNS)})")
    cells = table[column]
    return cells.astype(object).where(cells.notna(), "").tolist()


def _is_structure_file(item: object) -> bool:
    """True for a path to a .cif or .json file."""
    return isinstance(item, Path) or (isinstance(item, str) and Path(item).suffix.lower() in STRUCTURE_SUFFIXES)


def read_structures(inputs: Inputs) -> tuple[list[str], list[Structure]]:
    """Names and structures from Structure objects, pymatgen dicts, CIF or JSON files, a folder of them, or a
    DataFrame's `structure` column (named by place from 0, as a list's)."""
    if isinstance(inputs, pd.DataFrame):  # (a matbench or matminer frame: Structures in a 'structure' column)
        if "structure" not in inputs.columns:
            columns = ", ".join(map(str, inputs.columns))
            raise MatregError(
                f"the DataFrame: no 'structure' column (its columns: {columns}); this run is a "
                "structure model: give structures"
            )
        inputs = inputs["structure"].tolist()
    alone = isinstance(inputs, (str, Path, Structure, dict, Composition)) or not isinstance(inputs, Iterable)
    items = [inputs] if alone else list(inputs)
    names, structures = [], []
    for index, item in enumerate(items):
        for name, structure in _structures_of(item, index):
            names.append(name)
            structures.append(structure)
    if not structures:
        raise MatregError("no structures given")
    return names, structures


def _structures_of(item: Input, index: int) -> Iterable[tuple[str, Structure]]:
    """The structures one input holds, with a name each (a folder's: each of its CIF and JSON files'); MatregError
    naming a file that is not there, or a malformed dict (`_structure_of_dict`); PathError for a file whose name is not
    UTF-8 text (`utf8_path`), which the predictions could not be written or printed with."""
    if isinstance(item, Structure):
        return [(str(index), item)]
    if isinstance(item, dict):
        return [(str(index), _structure_of_dict(item, f"structure {index}"))]
    path = _path_of(item)
    if path is None or not _exists(path):
        if isinstance(item, Path) or (path is not None and path.suffix.lower() in STRUCTURE_SUFFIXES):
            raise MatregError(f"{item}: no such file")  # (a formula is given as text: a Path names a file)
        what = "formulas" if isinstance(item, (str, Composition)) else f"a {type(item).__name__}"
        raise MatregError(f"'{item}': this run is a structure model (cgcnn): give structures, not {what}")
    if path.is_dir():
        files = sorted(file for file in path.iterdir() if file.suffix.lower() in STRUCTURE_SUFFIXES)
        return [pair for file in files for pair in _structures_of(file, index)]
    utf8_path(Path(path.name), "the structure file")  # (its name names its rows; the folders it is in are only read)
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            dicts = data if isinstance(data, list) else [data]
            names = [f"{path.name}#{i}" if len(dicts) > 1 else path.name for i in range(len(dicts))]
            return [
                (name, _structure_of_dict(d, str(path.parent / name))) for name, d in zip(names, dicts, strict=True)
            ]
        found = file_structures(path)  # a CIF of several data blocks: each block's, named by the block
        return [(f"{path.name}#{block}" if len(found) > 1 else path.name, structure) for block, structure in found]
    except RecordError as exc:
        raise MatregError(f"{path}: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise MatregError(f"{path}: not a readable structure: {exc}") from None


def _structure_of_dict(document: object, name: str) -> Structure:
    """The structure of a pymatgen dict (`Structure.as_dict()`); MatregError naming it (`name`) and what is wrong: it
    is no dict, lacks a key (STRUCTURE_KEYS, or one of its sites' or lattice's), or pymatgen's error reading it."""
    if not isinstance(document, dict):
        raise MatregError(f"{name}: not a pymatgen Structure dict (an object with 'lattice' and 'sites')")
    missing = [key for key in STRUCTURE_KEYS if key not in document]
    if missing:
        keys = " or ".join(f"'{key}'" for key in missing)
        raise MatregError(f"{name}: not a pymatgen Structure dict: it has no {keys} (Structure.as_dict() has both)")
    try:
        return Structure.from_dict(document)
    except KeyError as exc:
        raise MatregError(f"{name}: not a readable structure: no {exc} key where pymatgen reads one") from None
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise MatregError(f"{name}: not a readable structure: {exc}") from None
