"""Train a baseline network on a torch export: Adam, early stopping on the validation split, deterministic seeds,
mixed precision on CUDA; every run writes a self-contained run directory, staged in a hidden folder and put in place
when whole, its model last (a run that fails leaves no run; a run directory is never trained into twice):

    RUN/model.pt            state_dict of the best epoch (lowest validation MAE)
    RUN/config.json         model, its options, target and its standardisation, training settings, the export used
    RUN/metrics.json        MAE, RMSE, R² on test (and val) for the model and for a predict-the-train-mean baseline,
                            best epoch, history per epoch, training throughput
    RUN/predictions.csv     the test split: record_id, formula, target, prediction
    RUN/parity.png          predicted against true values on the test split
    RUN/learning_curve.png  training loss and validation MAE per epoch
    RUN/export/             the torch export made of a catalog dataset to train on (`resolve_export`), before the run
"""

from __future__ import annotations

import copy
import functools
import io
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matreg import __version__
from matreg.catalog import Catalog
from matreg.defaults import TRAINING_DEFAULTS
from matreg.errors import ConfigError, MatregError, utf8_path
from matreg.ml import INSTALL_HINT

try:
    import torch
    from torch import nn
except ImportError:  # the `ml` extra is not installed: say so instead of a traceback
    raise MatregError(f"PyTorch is not installed; {INSTALL_HINT}") from None

from matreg.ml.dataset import CompositionSplit, ExportedDataset, export_torch
from matreg.ml.models import GRAPH_MODELS, MODELS, build_model
from matreg.ml.splits import DEFAULT_METHOD
from matreg.store import (
    Store,
    atomic_dir,
    is_temp_name,
    refuse_long_names,
    refuse_long_staged_names,
    refused_writes_of,
    remove_old_temps,
)

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "mps")  # mps: an Apple-silicon GPU, asked for by name only (`resolve_device`)
RUN_EXPORT = "export"  # the folder of a run that holds the export it made of a catalog dataset (`resolve_export`)
MODEL_FILE = "model.pt"
RUN_FILES = ("config.json", "metrics.json", "predictions.csv", "parity.png", "learning_curve.png", MODEL_FILE)
RUN_STAGED = "run"  # a run staged inside a folder already at --out: `temps_beside` names it '.run.<uuid>.tmp'
LOSSES = {"l1": nn.functional.l1_loss, "mse": nn.functional.mse_loss}
Setting = int | float | str | bool | None  # a training setting's value (TRAINING_DEFAULTS; None: its default)


class TrainingError(MatregError):
    """A run that produced no model: it diverged (no epoch had a finite validation MAE)."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """A device by name ('auto' is CUDA when a GPU is visible, else the CPU; 'cuda:1' one GPU, as torch writes it;
    'mps' an Apple-silicon GPU) or a torch.device of the CPU or a GPU, taken as it is; 'cuda' or 'mps' (or a GPU's
    torch.device) where PyTorch has no such GPU is an error (`_refuse_missing_gpu`). 'auto' never takes MPS: a run
    is to repeat exactly on one device, and the operations PyTorch's deterministic algorithms cover are the CPU's and
    CUDA's."""
    if isinstance(device, str) and ":" in device:
        try:
            device = torch.device(device)
        except RuntimeError:
            raise ConfigError(f"unknown device '{device}' (choose from {', '.join(DEVICES)}, or cuda:N)") from None
    kind = device.type if isinstance(device, torch.device) else device
    if kind not in DEVICES:
        raise ConfigError(f"unknown device '{kind}' (choose from {', '.join(DEVICES)})")
    _refuse_missing_gpu(kind, device)
    if isinstance(device, torch.device):
        return device
    return torch.device("cuda" if kind == "auto" and torch.cuda.is_available() else kind.replace("auto", "cpu"))


def _refuse_missing_gpu(kind: str, device: str | torch.device) -> None:
    """MatregError when `device`, of `kind` 'cuda' or 'mps', is a GPU PyTorch does not see here."""
    if kind == "cuda" and not torch.cuda.is_available():
        raise MatregError(f"--device {device}: no CUDA GPU is visible to PyTorch")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise MatregError(f"--device {device}: no Apple-silicon GPU (MPS) is available to PyTorch")


@contextmanager
def deterministic(seed: int, threads: int | None = None) -> Iterator[torch.Generator]:
    """Seed torch and use deterministic algorithms (and `threads` CPU threads) in the block; yield the shuffler."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    before = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_num_threads(threads or before[1])
    try:
        yield torch.Generator().manual_seed(seed)
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.set_num_threads(before[1])


def load_splits(export_dir: Path, graph: bool) -> tuple[ExportedDataset, dict]:
    """The export and its train, val and test splits (graph splits for graph models: the rows without a crystal graph
    left out, saying how many)."""
    data = ExportedDataset(export_dir)
    if graph and "graph.npz" not in data.meta.get("files", {}):
        raise MatregError(
            f"{export_dir} has no crystal graphs (its records have no structures): use a composition model"
        )
    splits = {name: data.graph_split(name) if graph else data.split(name) for name in ("train", "val", "test")}
    kept = sum(len(part) for part in splits.values())
    if kept < len(data.records):
        logger.warning(
            f"the graph model learns and is tested on {kept} of the export's {len(data.records)} rows: the others have "
            "no crystal graph (meta.json: featurizers.graph)"
        )
    empty = [name for name, part in splits.items() if len(part) == 0]
    if empty:
        raise MatregError(f"{export_dir}: the {' and '.join(empty)} split(s) are empty; train needs all three")
    return data, splits


def check_target(meta: dict, target: str | None) -> None:
    """Refuse a --target that is not the property the export was made for."""
    prop = meta["target"]["property"]
    if target is not None and target != prop:
        raise MatregError(f"the export's target is {prop}, not {target}: export the dataset again with --target")


def to_device(batch: dict, model: nn.Module, device: torch.device) -> dict:
    """The tensors of a batch the model reads on `device` (not the target: float64, standardised on the host)."""
    return {key: batch[key].to(device, non_blocking=True) for key in model.inputs}


def forward(model: nn.Module, batch: dict) -> torch.Tensor:
    """The model's predictions for a batch, fed the inputs it names."""
    return model(*(batch[name] for name in model.inputs))


def predict_split(model: nn.Module, split: CompositionSplit, batch_size: int, device: torch.device) -> np.ndarray:
    """Standardised predictions for every sample of a split, in order, in float32 on every device (mixed precision
    trains only: a run's metrics and predictions, and `matreg predict`'s, are the same numbers on a CPU and a GPU
    host, up to float32 rounding)."""
    model.eval()
    out = []
    with torch.no_grad():
        for batch in split.batches(batch_size, shuffle=False):
            out.append(forward(model, to_device(batch, model, device)).float().cpu())
    return torch.cat(out).numpy().astype(np.float64)


def scores(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R²."""
    error = pred - true
    total = float(((true - true.mean()) ** 2).sum())
    r2 = 1.0 - float((error**2).sum()) / total if total > 0 else float("nan")
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error**2).mean())), "r2": r2}


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over 2% of the steps, then cosine decay to 1% of the learning rate."""
    warmup = max(1, total_steps // 50)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Trainer:
    """One training run: the network, its optimiser, the loss on standardised targets, and the history."""

    def __init__(self, model: nn.Module, settings: dict, device: torch.device, mean: float, std: float) -> None:
        self.model, self.settings, self.device = model.to(device), settings, device
        self.mean, self.std = mean, std
        self.amp = device.type == "cuda"
        self.optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.loss = LOSSES[settings["loss"]]
        self.history: list[dict] = []
        self.samples, self.train_seconds = 0, 0.0

    def epoch(
        self, split: CompositionSplit, generator: torch.Generator, schedule: torch.optim.lr_scheduler.LRScheduler
    ) -> float:
        """One pass over the training split; the mean training loss in target units (MAE for l1)."""
        self.model.train()
        total, count, start = 0.0, 0, time.perf_counter()
        for batch in split.batches(self.settings["batch_size"], shuffle=True, generator=generator):
            target = self.standardised(batch["target"]).to(self.device, non_blocking=True)
            total += self.step(to_device(batch, self.model, self.device), target) * len(target)
            count += len(target)
            schedule.step()
        self.samples += count
        self.train_seconds += time.perf_counter() - start
        scale = self.std if self.settings["loss"] == "l1" else self.std**2
        return total / count * scale

    def standardised(self, target: torch.Tensor) -> torch.Tensor:
        """Targets (float64, as exported) standardised in float64, then cast to the model's float32: cast first, a
        target of -34000 eV/atom would be off by up to 2 meV, a large part of a narrow spread."""
        return ((target.double() - self.mean) / self.std).float()

    def step(self, batch: dict, target: torch.Tensor) -> float:
        """One optimiser step on a batch (on the device) and its standardised targets; the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda") if self.amp else nullcontext():  # (torch before 2.5 refuses autocast("mps"))
            pred = forward(self.model, batch)
        loss = self.loss(pred.float(), target)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        nn.utils.clip_grad_norm_(self.model.parameters(), self.settings["clip"])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())

    def predict(self, split: CompositionSplit) -> np.ndarray:
        """Predictions in target units for a whole split."""
        standard = predict_split(self.model, split, self.settings["eval_batch_size"], self.device)
        return standard * self.std + self.mean

    def fit(self, splits: dict, generator: torch.Generator) -> int:
        """Train until `epochs`, `patience` epochs without a better validation MAE, or the time limit; keep the best."""
        settings = self.settings
        steps = settings["epochs"] * math.ceil(len(splits["train"]) / settings["batch_size"])
        schedule = cosine_schedule(self.optimizer, steps)
        best, best_epoch, best_state, start = math.inf, 0, None, time.perf_counter()
        val_true = splits["val"].target.numpy().astype(np.float64)
        for epoch in range(1, settings["epochs"] + 1):
            train_loss = self.epoch(splits["train"], generator, schedule)
            val_mae = scores(val_true, self.predict(splits["val"]))["mae"]
            lr = self.optimizer.param_groups[0]["lr"]
            self.history.append({"epoch": epoch, "train_loss": train_loss, "val_mae": val_mae, "lr": lr})
            if settings["progress"] and sys.stderr is not None:  # (None: started without stderr, `2>&-`)
                print(f"epoch {epoch}: train loss {train_loss:.4g}, val MAE {val_mae:.4g}", file=sys.stderr, flush=True)
            if val_mae < best:
                best, best_epoch, best_state = val_mae, epoch, copy.deepcopy(self.model.state_dict())
            if epoch - best_epoch >= settings["patience"] or _over(start, settings["time_limit_s"]):
                break
        if best_state is None:
            raise TrainingError(_diverged(self.history, settings["lr"]))
        self.model.load_state_dict(best_state)
        return best_epoch


def _diverged(history: list[dict], lr: float) -> str:
    """Why a run has no model: the validation MAE of every epoch was not a finite number."""
    last = history[-1]
    return (
        f"training diverged: the validation MAE was {last['val_mae']} in all {len(history)} epoch(s) (last training "
        f"loss {last['train_loss']}), so there is no model to keep; try a smaller --lr than {lr:g}"
    )


def _over(start: float, limit: float | None) -> bool:
    """True when a time limit is set and spent."""
    return limit is not None and time.perf_counter() - start > limit


def evaluate(trainer: Trainer, splits: dict) -> tuple[dict, np.ndarray]:
    """Metrics of the model and of the train-mean baseline on val and test; the test predictions."""
    train_mean = float(splits["train"].target.double().mean())
    result, test_pred = {}, None
    for name in ("val", "test"):
        true = splits[name].target.numpy().astype(np.float64)
        pred = trainer.predict(splits[name])
        result[name] = {"model": scores(true, pred), "mean_baseline": scores(true, np.full_like(true, train_mean))}
        test_pred = pred
    return result, test_pred


def settings_of(**kwargs: Setting) -> dict[str, Any]:
    """Training settings with their defaults filled in."""
    unknown = sorted(set(kwargs) - set(TRAINING_DEFAULTS))
    if unknown:
        known = ", ".join(TRAINING_DEFAULTS)
        raise ConfigError(f"unknown training setting(s): {', '.join(unknown)} (known: {known})")
    settings = TRAINING_DEFAULTS | {key: value for key, value in kwargs.items() if value is not None}
    if settings["loss"] not in LOSSES:
        raise ConfigError(f"unknown loss '{settings['loss']}' (choose from {', '.join(LOSSES)})")
    if not (math.isfinite(settings["lr"]) and settings["lr"] > 0):
        raise ConfigError(f"--lr {settings['lr']}: the learning rate must be a positive number")
    return settings


def train(
    export_dir: Path | str,
    model: str = "attention",
    target: str | None = None,
    device: str | torch.device = "auto",
    epochs: int = TRAINING_DEFAULTS["epochs"],
    seed: int = TRAINING_DEFAULTS["seed"],
    batch_size: int = TRAINING_DEFAULTS["batch_size"],
    lr: float = TRAINING_DEFAULTS["lr"],
    patience: int = TRAINING_DEFAULTS["patience"],
    out_dir: Path | str | None = None,
    model_options: dict | None = None,
    **extra: Setting,
) -> Path:
    """Train `model` on the export in `export_dir`; write and return the run directory."""
    settings, torch_device = checked_options(
        model, device, epochs=epochs, seed=seed, batch_size=batch_size, lr=lr, patience=patience, **extra
    )
    export_dir = Path(export_dir)
    data, splits = load_splits(export_dir, model in GRAPH_MODELS)
    check_target(data.meta, target)
    run_dir = Path(out_dir) if out_dir is not None else default_run_dir(export_dir, model, seed)
    check_new_run(run_dir)
    with deterministic(seed, settings["threads"]) as generator:
        settings["threads"] = torch.get_num_threads()  # as used: a CPU run repeats exactly at one thread count
        network = build_model(model, model_options)
        mean, std = _standardisation(splits["train"])
        trainer = Trainer(network, settings, torch_device, mean, std)
        started = time.perf_counter()
        best_epoch = trainer.fit(splits, generator)
        metrics, test_pred = evaluate(trainer, splits)
    metrics |= _run_summary(trainer, splits, best_epoch, time.perf_counter() - started)
    config = _config(model, model_options, settings, torch_device, data, export_dir, mean, std)
    write_run(run_dir, trainer.model, config, metrics, _test_frame(data, splits["test"], test_pred))
    return run_dir


def checked_options(model: str, device: str | torch.device, **settings: Setting) -> tuple[dict[str, Any], torch.device]:
    """The training settings (defaults filled in) and the device; ConfigError for an unknown model, device or setting,
    or a learning rate that is not a positive number: checked before a dataset is exported or read."""
    if model not in MODELS:
        raise ConfigError(f"unknown model '{model}' (choose from {', '.join(MODELS)})")
    return settings_of(**settings), resolve_device(device)


def check_new_run(run_dir: Path) -> None:
    """MatregError when `run_dir` holds a trained model (runs are never overwritten), or is a file, or holds anything
    but the export a run trains on (`resolve_export`'s RUN/export) and matreg's temp files (those of killed writes
    go): a run directory holds one run, and a user's files are never replaced; PathError when a name in its path is
    too long for the file system, or its own name for the temp name of the folder it is staged in
    (`refuse_long_staged_names`)."""
    refuse_long_staged_names(run_dir, f"cannot write {run_dir}")
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise MatregError(f"{run_dir} is a file: give another --out")
    remove_old_temps(run_dir)
    if (run_dir / MODEL_FILE).exists():
        raise MatregError(f"{run_dir} holds a trained model already: give another --out (runs are never overwritten)")
    others = sorted(path.name for path in run_dir.iterdir() if path.name != RUN_EXPORT and not is_temp_name(path.name))
    if others:
        raise MatregError(f"{run_dir} holds files of no run ({', '.join(others)}): give another --out")


def resolve_export(
    source: str | Path,
    store: Store,
    catalog: Catalog,
    run_dir: Path,
    target: str | None = None,
    split: str | None = None,
    split_seed: int | None = None,
    assignment: Path | None = None,
) -> Path:
    """`source` if it is an export directory, else a new torch export of the catalog dataset `source` in RUN/export
    (split by `split`, default composition, seeded by `split_seed`, default the export's: not the training seed, so
    runs of several training seeds test on one split). An export directory keeps its own split: naming another, or
    another seed of it, is an error; so is one whose path is not UTF-8 (`utf8_path`) or holds a name too long for
    the file system (`refuse_long_names`)."""
    refuse_long_names(Path(source), f"cannot read {source}")
    if (Path(source) / "meta.json").is_file():
        if split is not None or split_seed is not None or assignment is not None:
            raise ConfigError(
                f"{source} is an export: its split was made by `matreg export` (export again to change it)"
            )
        utf8_path(Path(source).resolve(), "the export directory")  # (Arrow opens its files by name; config records it)
        return Path(source)
    options = {"seed": split_seed} if split_seed is not None else {}
    out = run_dir / RUN_EXPORT
    export_torch(
        store, catalog, str(source), out, split or DEFAULT_METHOD, assignment=assignment, target=target, **options
    )
    return out


def default_run_dir(export_dir: Path, model: str, seed: int) -> Path:
    """runs/<export name>-<model>-s<seed>-<UTC time>, a relative path: runs/ inside the current directory."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"{export_dir.resolve().name}-{model}-s{seed}-{stamp}"


def _standardisation(train_split) -> tuple[float, float]:
    """Mean and standard deviation of the training targets (std 1 when they are constant)."""
    target = train_split.target.double()
    std = float(target.std()) if len(target) > 1 else 1.0
    return float(target.mean()), std if std > 0 else 1.0


def _run_summary(trainer: Trainer, splits: dict, best_epoch: int, seconds: float) -> dict:
    """Epochs, throughput, split sizes and history for metrics.json."""
    return {
        "best_epoch": best_epoch,
        "epochs_run": len(trainer.history),
        "n": {name: len(part) for name, part in splits.items()},
        "train_samples_per_s": trainer.samples / trainer.train_seconds if trainer.train_seconds else None,
        "train_seconds": trainer.train_seconds,
        "wall_seconds": seconds,
        "history": trainer.history,
    }


def _config(
    model: str,
    options: dict | None,
    settings: dict,
    device: torch.device,
    data: ExportedDataset,
    export_dir: Path,
    mean: float,
    std: float,
) -> dict:
    """Everything needed to rebuild the network and to know what it was trained on, and when (UTC)."""
    meta = data.meta
    return {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model,
        "model_options": options or {},
        "settings": settings,
        "device": str(device),
        "target": meta["target"],
        "standardisation": {"mean": mean, "std": std},
        "export": {
            "dir": str(export_dir.resolve()),
            "dataset": meta.get("dataset"),
            "version": meta.get("version"),
            "released": meta.get("released"),
            "content_sha256": meta.get("content_sha256"),
            "exported_at": meta.get("exported_at"),
            "split": {key: meta.get("split", {}).get(key) for key in ("method", "seed")},
            "graph": (meta.get("featurizers") or {}).get("graph"),
        },
        "matreg_version": __version__,
        "torch_version": torch.__version__,
    }


def _test_frame(data, test_split, pred: np.ndarray) -> pd.DataFrame:
    """The test split's records with their predictions."""
    records = data.records.set_index("record_id").loc[list(test_split.record_id)]
    return pd.DataFrame(
        {
            "record_id": list(test_split.record_id),
            "formula": records["formula"].to_numpy(),
            "target": records["target"].to_numpy(dtype=np.float64),  # as exported, as metrics.json scores it
            "prediction": pred,
        }
    )


def write_run(run_dir: Path, model: nn.Module, config: dict, metrics: dict, test: pd.DataFrame) -> None:
    """Weights, config, metrics, test predictions and the two plots, written into a staging folder and put in place
    when all are written: renamed to `run_dir` where no folder is, else moved into the folder there (the export's,
    or one a link or mount names), the weights last: a run that fails meanwhile leaves no run. A write the file system
    refuses is the error of writing `run_dir` (`refused_writes_of`: NoSpace, a failure for now, for a full disk)."""
    if run_dir.is_dir():
        final, publish = run_dir / RUN_STAGED, functools.partial(_move_run_into, run_dir)
    else:
        final, publish = run_dir, os.rename
    with atomic_dir(final, publish) as staging, refused_writes_of(run_dir):  # (naming the run, not `final`)
        _save_weights(model, staging / MODEL_FILE)
        (staging / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n", encoding="utf-8")
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        test.to_csv(staging / "predictions.csv", index=False)
        label = f"{config['target']['property']} ({config['target']['unit']})"
        parity_png(test["target"].to_numpy(), test["prediction"].to_numpy(), label, staging / "parity.png")
        learning_curve_png(metrics["history"], label, staging / "learning_curve.png")


def read_metrics(run_dir: Path | str) -> dict:
    """The metrics a run wrote (RUN/metrics.json, `write_run`)."""
    return json.loads((Path(run_dir) / "metrics.json").read_text(encoding="utf-8"))


def _save_weights(model: nn.Module, path: Path) -> None:
    """The model's weights (its state_dict, on the CPU) saved at `path`: serialised by torch in memory, written to
    the file by Python, so that a write the file system refuses is the OSError of the OS's errno (torch's own writer
    fails with a RuntimeError that names none, 'unexpected pos 704 vs 598', into a path and, once a write failed,
    into a file too: as it closes the archive)."""
    weights = io.BytesIO()
    torch.save({key: value.cpu() for key, value in model.state_dict().items()}, weights)
    path.write_bytes(weights.getbuffer())


def _move_run_into(run_dir: Path, staging: Path, _final: Path) -> None:
    """Move a staged run's files into the folder `run_dir`, the model last (a folder holds a run once it holds the
    model). MatregError (and no run) when the folder came to hold a model or other files during the training."""
    check_new_run(run_dir)
    for name in RUN_FILES:
        os.replace(staging / name, run_dir / name)


def _figure(size: tuple[float, float]):
    """A matplotlib figure on the Agg canvas (no global backend switch, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=110)
    FigureCanvasAgg(figure)
    return figure


def parity_png(true: np.ndarray, pred: np.ndarray, label: str, path: Path) -> None:
    """Predicted against true values with the diagonal and the test MAE."""
    figure = _figure((4.6, 4.4))
    axes = figure.add_subplot()
    low, high = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
    axes.plot([low, high], [low, high], color="0.4", linewidth=1)
    axes.scatter(true, pred, s=6, alpha=0.5, linewidths=0)
    axes.set(xlabel=f"true {label}", ylabel=f"predicted {label}", title=f"test: MAE {np.abs(pred - true).mean():.4g}")
    figure.tight_layout()
    figure.savefig(path)


def learning_curve_png(history: list[dict], label: str, path: Path) -> None:
    """Training loss and validation MAE per epoch."""
    figure = _figure((5.2, 3.6))
    axes = figure.add_subplot()
    epochs = [row["epoch"] for row in history]
    axes.plot(epochs, [row["train_loss"] for row in history], label="train loss")
    axes.plot(epochs, [row["val_mae"] for row in history], label="validation MAE")
    axes.set(xlabel="epoch", ylabel=label, yscale="log")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
