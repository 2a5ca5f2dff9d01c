"""Baseline models on the real benchmark splits, next to the published MAEs of REFERENCE_ACCURACIES.csv.

    python benchmarks/ml_models.py aflow__Egap --model attention elemnet
    python benchmarks/ml_models.py expt_gap --model attention          # the 5 official matbench folds
    python benchmarks/ml_models.py mp_20_biternary --model cgcnn attention
    python benchmarks/ml_models.py --table                             # rewrite benchmarks/ml_results.md

Every task goes through matreg as a user's data would: the CSVs are imported into a temporary store with the lab
connector (provenance dft, or experimental for expt_gap; values outside the vocabulary's bounds are quarantined),
exported with `export_torch(split="predefined")` from the task's own assignment, and trained with
`matreg.ml.train.train` on the CPU. Splits: the CrabNet train/val/test files as given; matbench expt_gap:
KFold(n_splits=5, shuffle=True, random_state=18012019) over the rows (row i = matbench id i + 1), 10 % of each
fold's training rows (seeded) held out for early stopping; mp_20_biternary has only val.csv.gz and test.csv.gz, so
val.csv.gz is split 90/10 (seeded) into train/val and test.csv.gz is the test set. Hyperparameters are fixed per
model below, never chosen on a test split. Each run appends a JSON line to benchmarks/results/ml_models.jsonl.
The data are read from $MATREG_SHARED_DATA (default: ../shared/data beside the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from matreg.catalog import Catalog, Dataset
from matreg.ingest import run_ingest
from matreg.ml.dataset import export_torch
from matreg.ml.train import resolve_device, train
from matreg.sources.lab import LabConnector, LabMapping
from matreg.store import Store

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("MATREG_SHARED_DATA", HERE.parents[1] / "shared" / "data"))  # the benchmark data
RESULTS = HERE / "results" / "ml_models.jsonl"
TABLE = HERE / "ml_results.md"
MATBENCH_SEED = 18012019


@dataclass(frozen=True)
class Task:
    """One benchmark: where its rows come from, what they are, and the reference rows to compare with."""

    kind: str  # crabnet | matbench | structures
    path: str
    prop: str
    unit: str
    provenance: str = "dft"
    reference: str | None = None


TASKS = {
    "aflow__Egap": Task("crabnet", "crabnet/benchmark_data/aflow__Egap", "band_gap", "eV", reference="aflow__Egap"),
    "OQMD_Formation_Enthalpy": Task(
        "crabnet",
        "crabnet/benchmark_data/OQMD_Formation_Enthalpy",
        "formation_energy_per_atom",
        "eV/atom",
        reference="OQMD_Formation_Enthalpy",
    ),
    "mp_e_hull": Task(
        "crabnet", "crabnet/benchmark_data/mp_e_hull", "energy_above_hull", "eV/atom", reference="mp_e_hull"
    ),
    "expt_gap": Task(
        "matbench", "crabnet/matbench/expt_gap.csv", "band_gap", "eV", "experimental", reference="matbench_expt_gap"
    ),
    "mp_20_biternary": Task("structures", "structures/mp_20_biternary", "formation_energy_per_atom", "eV/atom"),
}

# Fixed before any run (never chosen on a test split); epoch budgets sized so one run fits in about 12 minutes on
# one busy CPU core, except OQMD's attention run (239k training rows): 45 epochs of the standard model, about an hour.
MODELS = {
    "attention": {"options": {"d_model": 128, "n_heads": 4, "n_layers": 3, "d_ff": 256}, "lr": 1e-3},
    "elemnet": {"options": {}, "lr": 3e-4},
    "cgcnn": {"options": {"atom_dim": 64, "n_conv": 3, "hidden": 128}, "lr": 1e-3},
}
BUDGETS = {  # (task, model) -> epochs, batch size, model options replacing MODELS[model]["options"]
    ("aflow__Egap", "attention"): (100, 256, None),
    ("aflow__Egap", "elemnet"): (150, 256, None),
    ("mp_e_hull", "attention"): (50, 256, None),
    ("mp_e_hull", "elemnet"): (100, 256, None),
    ("OQMD_Formation_Enthalpy", "attention"): (45, 512, None),
    ("OQMD_Formation_Enthalpy", "elemnet"): (20, 512, None),
    ("expt_gap", "attention"): (150, 128, None),
    ("expt_gap", "elemnet"): (200, 128, None),
    ("mp_20_biternary", "cgcnn"): (60, 128, None),
    ("mp_20_biternary", "attention"): (150, 256, None),
}


def mapping(name: str, task: Task) -> LabMapping:
    """How the prepared CSV reads: sample_id, formula, target (and cif, for structures)."""
    return LabMapping(
        dataset=name,
        formula_column="formula",
        id_column="sample_id",
        structure_column="cif" if task.kind == "structures" else None,
        provenance=task.provenance,
        citation=f"../shared/data/{task.path} (see ../shared/data/SOURCES.txt)",
        columns={"target": {"property": task.prop, "unit": task.unit}},
    )


def crabnet_rows(task: Task) -> pd.DataFrame:
    """The train/val/test CSVs of a CrabNet task, with a sample id (split and line) and the split."""
    frames = []
    for split in ("train", "val", "test"):
        frame = pd.read_csv(DATA / task.path / f"{split}.csv", dtype=str, keep_default_na=False)
        frame.insert(0, "sample_id", [f"{split}-{line}" for line in range(2, len(frame) + 2)])
        frames.append(frame.assign(split=split))
    return pd.concat(frames, ignore_index=True)


def matbench_rows(task: Task) -> pd.DataFrame:
    """The matbench CSV with matbench ids (row i = mb id i + 1) and its official fold of each row."""
    frame = pd.read_csv(DATA / task.path, dtype=str, keep_default_na=False)
    frame.insert(0, "sample_id", [f"mb-{i + 1:05d}" for i in range(len(frame))])
    return frame.assign(fold=matbench_folds(len(frame)))


def matbench_folds(n: int, n_splits: int = 5) -> np.ndarray:
    """The test fold of each row under sklearn's KFold(n_splits, shuffle=True, random_state=18012019)."""
    order = np.arange(n)
    np.random.RandomState(MATBENCH_SEED).shuffle(order)
    sizes = np.full(n_splits, n // n_splits)
    sizes[: n % n_splits] += 1
    fold = np.empty(n, dtype=np.int64)
    for k, rows in enumerate(np.split(order, np.cumsum(sizes)[:-1])):
        fold[rows] = k
    return fold


def structure_rows(task: Task, seed: int = 0) -> pd.DataFrame:
    """mp_20_biternary: val.csv.gz split 90/10 into train/val (seeded), test.csv.gz as test."""
    columns = ["material_id", "pretty_formula", "formation_energy_per_atom", "cif"]
    pool = pd.read_csv(DATA / task.path / "val.csv.gz", usecols=columns, dtype=str, keep_default_na=False)
    test = pd.read_csv(DATA / task.path / "test.csv.gz", usecols=columns, dtype=str, keep_default_na=False)
    held = np.random.default_rng(seed).permutation(len(pool)) < round(0.1 * len(pool))
    pool["split"] = np.where(held, "val", "train")
    frame = pd.concat([pool, test.assign(split="test")], ignore_index=True)
    return frame.rename(columns={"material_id": "sample_id", "pretty_formula": "formula"}).rename(
        columns={"formation_energy_per_atom": "target"}
    )


def import_rows(rows: pd.DataFrame, name: str, task: Task, work: Path) -> tuple[Store, dict]:
    """Import the prepared rows into a fresh store; the import report's counts and seconds."""
    work.mkdir(parents=True, exist_ok=True)
    csv = work / f"{name}.csv"
    rows.drop(columns=[c for c in ("split", "fold") if c in rows]).to_csv(csv, index=False)
    store = Store(work / "store")
    start = time.perf_counter()
    report = run_ingest(LabConnector(csv, mapping(name, task)), store)
    counts = {"read": report.n_fetched, "stored": report.n_stored, "quarantined": report.n_quarantined}
    reasons = sorted({reason.split(" = ")[0].split(" is ")[0] for reason in report.reasons})
    return store, counts | {"import_s": time.perf_counter() - start, "quarantine_reasons": reasons}


def export_split(store: Store, name: str, task: Task, labels: pd.Series, out: Path) -> dict:
    """Export the stored records with the given split labels (record_id -> split); meta.json plus seconds."""
    stored = set(store.query("SELECT record_id FROM materials")["record_id"])
    assignment = pd.DataFrame({"record_id": labels.index, "split": labels.to_numpy()})
    assignment = assignment[assignment["record_id"].isin(stored)]
    out.parent.mkdir(parents=True, exist_ok=True)
    assignment.to_csv(out.parent / f"{out.name}-assignment.csv", index=False)
    catalog = Catalog(datasets={name: Dataset(description=name, version="bench", properties=[task.prop])})
    start = time.perf_counter()
    meta = export_torch(
        store, catalog, name, out, split="predefined", assignment=out.parent / f"{out.name}-assignment.csv"
    )
    return meta | {"export_s": time.perf_counter() - start}


def run_model(export: Path, task_name: str, model: str, out: Path, args: argparse.Namespace) -> dict:
    """Train one model on one export and return its metrics with the settings used."""
    epochs, batch_size, options = BUDGETS[(task_name, model)]
    epochs = args.epochs or epochs
    spec = MODELS[model] | ({"options": options} if options else {})
    settings = {"epochs": epochs, "batch_size": batch_size, "lr": spec["lr"], "patience": args.patience}
    start = time.perf_counter()
    run = train(
        export, model, device=args.device, seed=args.seed, out_dir=out, model_options=spec["options"],
        threads=args.threads, progress=args.progress, **settings,
    )  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.pop("history")
    return {"run_dir": str(run), "settings": settings | {"seed": args.seed, "threads": args.threads},
            "options": spec["options"], "metrics": metrics, "run_s": time.perf_counter() - start}  # fmt: skip


def record(result: dict) -> None:
    """Append one result line to benchmarks/results/ml_models.jsonl."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(result) + "\n")


def environment(args: argparse.Namespace) -> dict:
    """Where and how the run happened."""
    return {
        "command": "python " + " ".join(sys.argv),
        "device": resolve_device(args.device).type,  # what --device auto took: the table keeps CPU runs
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": args.threads,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def bench_crabnet(name: str, task: Task, args: argparse.Namespace, work: Path) -> None:
    """A CrabNet task: its own train/val/test files."""
    rows = crabnet_rows(task)
    dataset = f"bench-{name.lower()}"
    store, imported = import_rows(rows, dataset, task, work)
    labels = pd.Series(rows["split"].to_numpy(), index=f"{dataset}:" + rows["sample_id"])
    meta = export_split(store, dataset, task, labels, work / "export")
    source_n = rows["split"].value_counts().to_dict()
    for model in args.model:
        result = run_model(work / "export", name, model, work / f"run-{model}", args)
        record({"task": name, "model": model, "fold": None, "source_n": source_n, "import": imported,
                "export": _export_summary(meta), **result, **environment(args)})  # fmt: skip
        print(json.dumps({"task": name, "model": model, "test": result["metrics"]["test"]}))


def bench_matbench(name: str, task: Task, args: argparse.Namespace, work: Path) -> None:
    """matbench expt_gap: the five official folds, each with 10 % of its training rows for early stopping."""
    rows = matbench_rows(task)
    dataset = f"bench-{name.lower().replace('_', '-')}"
    store, imported = import_rows(rows, dataset, task, work)
    for fold in args.folds:
        split = np.where(rows["fold"] == fold, "test", "train").astype(object)
        learn = np.flatnonzero(split == "train")
        held = np.random.default_rng(args.seed + fold).permutation(len(learn)) < round(0.1 * len(learn))
        split[learn[held]] = "val"
        labels = pd.Series(split, index=f"{dataset}:" + rows["sample_id"])
        meta = export_split(store, dataset, task, labels, work / f"fold{fold}" / "export")
        for model in args.model:
            result = run_model(work / f"fold{fold}" / "export", name, model, work / f"fold{fold}" / model, args)
            record({"task": name, "model": model, "fold": fold, "import": imported,
                    "export": _export_summary(meta), **result, **environment(args)})  # fmt: skip
            print(json.dumps({"task": name, "model": model, "fold": fold, "test": result["metrics"]["test"]}))


def bench_structures(name: str, task: Task, args: argparse.Namespace, work: Path) -> None:
    """mp_20_biternary formation energies: the graph model (and composition models on the same split)."""
    rows = structure_rows(task, args.seed)
    dataset = f"bench-{name.lower().replace('_', '-')}"
    store, imported = import_rows(rows, dataset, task, work)
    labels = pd.Series(rows["split"].to_numpy(), index=f"{dataset}:" + rows["sample_id"])
    meta = export_split(store, dataset, task, labels, work / "export")
    for model in args.model:
        result = run_model(work / "export", name, model, work / f"run-{model}", args)
        record({"task": name, "model": model, "fold": None, "import": imported,
                "export": _export_summary(meta), **result, **environment(args)})  # fmt: skip
        print(json.dumps({"task": name, "model": model, "test": result["metrics"]["test"]}))


def _export_summary(meta: dict) -> dict:
    """The parts of meta.json a results line keeps."""
    keep = ("n", "n_per_split", "provenance", "content_sha256", "export_s")
    return {key: meta.get(key) for key in keep} | {"leakage": meta["split"]["leakage"]}


def references(dataset: str) -> dict[str, float]:
    """Published test MAEs of the reference models for one dataset key of REFERENCE_ACCURACIES.csv."""
    table = pd.read_csv(DATA / "REFERENCE_ACCURACIES.csv")
    rows = table[(table["dataset"] == dataset) & table["metric"].str.contains("MAE")]
    return {str(model).lower(): float(value) for model, value in zip(rows["model"], rows["value"], strict=True)}


def load_results(device: str = "cpu") -> pd.DataFrame:
    """The result lines of runs on `device` (the table's are CPU runs: a GPU run's figures go to benchmarks/README.md),
    the latest run of each task, model and fold."""
    rows = [json.loads(line) for line in RESULTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    frame = pd.DataFrame(rows)
    frame = frame[frame["device"].fillna("cpu") == device] if "device" in frame else frame
    return frame.drop_duplicates(["task", "model", "fold"], keep="last")


REFERENCE_COLUMNS = ("crabnet", "roost", "elemnet", "rf")
MATBENCH_COLUMNS = {"crabnet": "crabnet", "rf": "rf-scm/magpie"}


def reference_row(task: Task) -> dict[str, float]:
    """CrabNet, Roost, ElemNet and RF MAEs for a task (the matbench leaderboard's for expt_gap)."""
    if task.reference is None:
        return {}
    published = references(task.reference)
    if task.kind == "matbench":
        paper = references("expt_gap")  # CrabNet paper, one deduplicated fold: only for Roost and ElemNet
        return {name: published.get(key) for name, key in MATBENCH_COLUMNS.items()} | {
            name: paper.get(name) for name in ("roost", "elemnet")
        }
    return {name: published.get(name) for name in REFERENCE_COLUMNS}


def _fmt(value: float | None, digits: int = 4) -> str:
    """A number for the table, or an em dash."""
    return "—" if value is None or value != value else f"{value:.{digits}g}"


def summary(group: pd.DataFrame) -> dict:
    """Test metrics of one task and model (mean and std over folds when there are several)."""
    test = [row["test"] for row in group["metrics"]]
    mae = np.array([part["model"]["mae"] for part in test])
    metrics = group["metrics"].tolist()
    return {
        "mae": mae.mean(),
        "mae_std": mae.std() if len(mae) > 1 else None,
        "rmse": np.mean([part["model"]["rmse"] for part in test]),
        "r2": np.mean([part["model"]["r2"] for part in test]),
        "mean_mae": np.mean([part["mean_baseline"]["mae"] for part in test]),
        "n": "/".join(str(metrics[0]["n"][name]) for name in ("train", "val", "test")),
        "epochs": ", ".join(f"{m['epochs_run']} ({m['best_epoch']})" for m in metrics),
        "rate": np.mean([m["train_samples_per_s"] for m in metrics]),
        "minutes": np.sum([m["train_seconds"] for m in metrics]) / 60,
    }


NOTES = """
## How these numbers were made

* Machine: the development container of this project, 2 shared CPU cores (AMD EPYC), no GPU lent to this task;
  every run used the CPU with **one torch thread** (`--threads 1`: with two threads on the busy 2-core machine,
  OpenMP spin-waiting made a training step about 90× slower in a measurement), float32, no mixed precision.
  Throughput is training samples per second over the training epochs only (evaluation excluded), measured while
  other work shared the machine.
* Data path: each CSV is imported into a fresh store with the lab connector (`matreg import` semantics: formulas
  normalised by pymatgen, values outside the vocabulary's bounds quarantined), exported with
  `export_torch(split="predefined")` from the task's own split, and trained with `matreg.ml.train.train`.
  OQMD_Formation_Enthalpy: 60 of 341,700 rows (3 of them test rows) lie outside [-15, 10] eV/atom and were
  quarantined, so n differs slightly from the CrabNet files.
* Splits: CrabNet tasks use their train/val/test files as given (validation only for early stopping); matbench
  expt_gap uses the 5 official folds, `KFold(n_splits=5, shuffle=True, random_state=18012019)` as in matbench's
  `scripts/mvb01_generate_validation.py` (checked equal to scikit-learn's folds), with 10 % of each fold's training
  rows (seeded) held out for early stopping; the MAE is the mean ± std over the 5 test folds. mp_20_biternary ships
  only val.csv.gz and test.csv.gz: val.csv.gz was split 90/10 (seed 0) into train/val and test.csv.gz is the test set.
  That split is not composition-disjoint: 746 of the 7118 test rows (552 of 6706 test compositions, counted as
  matreg's leakage report counts them) share a composition (another polymorph) with a row of val.csv.gz, the
  train/val pool.
* References: REFERENCE_ACCURACIES.csv. For expt_gap, CrabNet and RF are the matbench v0.1 leaderboard (5-fold mean,
  "CrabNet" and "RF-SCM/Magpie"); Roost and ElemNet exist only in the CrabNet paper's single deduplicated fold
  (n_test=920) and are shown for orientation. No published number exists for mp_20_biternary: compare with the
  mean baseline and with the composition model on the same split.
* Data: read from `$MATREG_SHARED_DATA` (default `../shared/data`, beside the repository); set it to run the
  benchmarks from a checkout elsewhere. `--work DIR` only keeps the stores, exports and run directories (plots,
  weights, predictions) for inspection.
* Determinism: aflow__Egap/attention was run twice (seed 0, one thread, the second time because the first run's
  results line was lost) and gave the same test MAE to all printed digits (0.3475606157831724).
* Hyperparameters were fixed in `benchmarks/ml_models.py` (MODELS, BUDGETS) before the runs; nothing was chosen on a
  test split. Training: Adam, L1 loss on standardised targets, 2 % warm-up then cosine decay, gradient clipping at
  1, early stopping on validation MAE (patience 30), the best-validation epoch's weights are tested.
* OQMD_Formation_Enthalpy/attention: a first budget (20 epochs of a narrower model, d_model 64) reached 0.05326
  (1.71× CrabNet) with validation MAE still falling at its last epoch. Because of that validation curve the budget
  was raised to the standard model the other datasets use, for 45 epochs (47 minutes on one busy core); no option
  was tuned. Only this second run is in the tables.
"""


def results_table(results: pd.DataFrame) -> str:
    """benchmarks/ml_results.md from the recorded runs."""
    lines = [
        "# Baseline models on the real benchmark splits (measured)",
        "",
        "Written by `python benchmarks/ml_models.py --table` from the runs below; MAE, RMSE and R² are on the test",
        "split, in the target's unit (eV or eV/atom). Reference columns: published test MAEs from",
        "../shared/data/REFERENCE_ACCURACIES.csv. Targets of issue 4: the attention model beats RF on every dataset",
        "and comes within 1.3× of CrabNet's MAE.",
        "",
        "| dataset | model | n train/val/test | MAE | RMSE | R² | mean-baseline MAE | CrabNet | Roost | ElemNet | RF "
        "| MAE ÷ CrabNet | beats RF | epochs run (best) | train samples/s | train min |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    order = {name: i for i, name in enumerate([*TASKS, *MODELS])}
    groups = sorted(results.groupby(["task", "model"]), key=lambda item: (order[item[0][0]], order[item[0][1]]))
    for (name, model), group in groups:
        lines.append(_table_row(name, model, group))
    lines += ["", "## Targets (attention model)", "", *_targets(groups)]
    lines += [
        "",
        "## What was run",
        "",
        "| dataset | model | options | epochs budget | batch | lr | import s | export s |",
    ]
    lines.append("|---|---|---|---:|---:|---:|---:|---:|")
    for (name, model), group in groups:
        first = group.iloc[0]
        settings, options = first["settings"], json.dumps(first["options"]) if first["options"] else "defaults"
        lines.append(
            f"| {name} | {model} | `{options}` | {settings['epochs']} | {settings['batch_size']} | {settings['lr']} "
            f"| {first['import']['import_s']:.0f} | {first['export']['export_s']:.0f} |"
        )
    commands = sorted({f"`{command}`" for command in results["command"]})
    lines += ["", "Commands (repository root):", "", *[f"* {command}" for command in commands], NOTES.rstrip()]
    return "\n".join(lines) + "\n"


def _targets(groups: list) -> list[str]:
    """One line per dataset: does the attention model beat RF, and is it within 1.3x of CrabNet?"""
    lines = []
    for (name, model), group in groups:
        refs = reference_row(TASKS[name])
        if model != "attention" or not refs.get("crabnet"):
            continue
        mae, crab, rf = summary(group)["mae"], refs["crabnet"], refs["rf"]
        beats = "beats RF" if mae < rf else "**does not beat RF**"
        within = "within 1.3× of CrabNet" if mae <= 1.3 * crab else "**not within 1.3× of CrabNet**"
        metrics = group["metrics"].tolist()
        budget = all(m["best_epoch"] == m["epochs_run"] for m in metrics)
        note = " The best validation epoch was the last one: the epoch budget, not early stopping, ended it." * budget
        lines.append(
            f"* {name}: MAE {mae:.4g} — {beats} ({rf:.4g}); {mae / crab:.2f}× CrabNet ({crab:.4g}): {within}.{note}"
        )
    return lines


def _table_row(name: str, model: str, group: pd.DataFrame) -> str:
    """One Markdown row: measured metrics next to the references."""
    row, refs = summary(group), reference_row(TASKS[name])
    mae = _fmt(row["mae"]) + (f" ± {row['mae_std']:.3f}" if row["mae_std"] is not None else "")
    crab, rf = refs.get("crabnet"), refs.get("rf")
    ratio = f"{row['mae'] / crab:.2f}×" if crab else "—"
    beats = "—" if not rf else ("yes" if row["mae"] < rf else "no")
    references_ = " | ".join(_fmt(refs.get(column)) for column in REFERENCE_COLUMNS)
    return (
        f"| {name} | {model} | {row['n']} | {mae} | {_fmt(row['rmse'])} | {_fmt(row['r2'], 3)} | "
        f"{_fmt(row['mean_mae'])} | {references_} | {ratio} | {beats} | {row['epochs']} | {row['rate']:,.0f} | "
        f"{row['minutes']:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", nargs="?", choices=sorted(TASKS))
    parser.add_argument("--model", nargs="+", default=["attention"], choices=sorted(MODELS))
    parser.add_argument("--epochs", type=int, help="override the fixed epoch budget")
    parser.add_argument("--patience", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--progress", action="store_true", help="print one line per epoch")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--work", type=Path, help="keep stores, exports and runs here (default: a temp dir)")
    parser.add_argument("--table", action="store_true", help=f"rewrite {TABLE.name} from {RESULTS.name}")
    args = parser.parse_args()
    if args.table:
        TABLE.write_text(results_table(load_results()), encoding="utf-8")
        return
    if args.task is None:
        parser.error("give a task (or --table)")
    task = TASKS[args.task]
    bench = {"crabnet": bench_crabnet, "matbench": bench_matbench, "structures": bench_structures}[task.kind]
    with tempfile.TemporaryDirectory() as tmp:
        bench(args.task, task, args, (args.work or Path(tmp)) / args.task)


if __name__ == "__main__":
    main()
