"""`matreg train` and `matreg predict`: baseline models on torch exports (the `ml` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from matreg.cli_options import (
    CatalogOpt,
    StoreOpt,
    echo_stderr,
    open_store,
    print_data_in_utf8,
    read_catalog,
    reports_errors,
)
from matreg.defaults import DEFAULT_STORE, TRAINING_DEFAULTS
from matreg.errors import utf8_path


@reports_errors
def train_command(
    source: Annotated[str, typer.Argument(help="A catalog dataset (exported first) or a torch export directory.")],
    model: Annotated[str, typer.Option("--model", help="elemnet, attention or cgcnn.")] = "attention",
    target: Annotated[
        str | None, typer.Option("--target", help="Target property (default: the dataset's first).")
    ] = None,
    device: Annotated[
        str, typer.Option("--device", help="auto (CUDA when present, else the CPU; never mps), cpu, cuda or mps.")
    ] = "auto",
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = TRAINING_DEFAULTS["epochs"],
    seed: Annotated[
        int, typer.Option("--seed", help="Training seed: initial weights and batch order (not the split).")
    ] = TRAINING_DEFAULTS["seed"],
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = TRAINING_DEFAULTS["batch_size"],
    lr: Annotated[float, typer.Option("--lr")] = TRAINING_DEFAULTS["lr"],
    patience: Annotated[
        int, typer.Option("--patience", min=1, help="Early-stopping patience (epochs).")
    ] = TRAINING_DEFAULTS["patience"],
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="CPU threads for torch (1 avoids oversubscription on busy hosts)."),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option("--split", help="For a dataset: composition (default), chemsys, random, provenance, predefined."),
    ] = None,
    split_seed: Annotated[
        int | None,
        typer.Option("--split-seed", help="For a dataset: seed of the split (default 0, as `matreg export`'s)."),
    ] = None,
    assignment: Annotated[Path | None, typer.Option("--assignment", help="For --split predefined.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Run directory (default: runs/<name>-<model>-s<seed>-<time>).")
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    catalog: CatalogOpt = None,
) -> None:
    """Train a baseline model; the run directory holds weights, config, metrics, parity plot and learning curve."""
    from matreg.ml.dataset import provenance_warning, read_meta
    from matreg.ml.train import (  # torch loads only here
        check_new_run,
        checked_options,
        default_run_dir,
        read_metrics,
        resolve_export,
        train,
    )

    settings = {"epochs": epochs, "seed": seed, "batch_size": batch_size, "lr": lr, "patience": patience}
    checked_options(model, device, **settings, threads=threads)  # before a dataset is exported
    if out is not None:
        utf8_path(out, "--out")  # (Arrow writes the run's export in it by its name)
    run_dir = out or default_run_dir(Path(source), model, seed)
    check_new_run(run_dir)  # before a dataset is exported into it
    export = resolve_export(
        source, open_store(store), read_catalog(catalog), run_dir, target, split, split_seed, assignment
    )
    echo_stderr(provenance_warning(read_meta(export)))
    train(export, model, target=target, device=device, out_dir=run_dir, threads=threads, **settings)
    test = read_metrics(run_dir)["test"]
    typer.echo(f"{model} -> {run_dir}")
    typer.echo(
        f"test MAE {test['model']['mae']:.4g} (predict-the-mean {test['mean_baseline']['mae']:.4g}), "
        f"RMSE {test['model']['rmse']:.4g}, R2 {test['model']['r2']:.3f}"
    )


@reports_errors
def predict_command(
    run: Annotated[Path, typer.Argument(help="A run directory of `matreg train`.")],
    inputs: Annotated[
        str,
        typer.Argument(
            help="Formulas (CSV/TSV column, text file or pipe, /dev/stdin: one a line; or one formula) or structures "
            "(CIF/JSON file or folder)."
        ),
    ],
    out: Annotated[Path | None, typer.Option("--out", help="Write the predictions to this CSV.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")] = "auto",
) -> None:
    """Apply a trained model to new formulas or structures."""
    from matreg.store import Store, refuse_long_names

    if out is not None:
        utf8_path(out, "--out")  # (Arrow writes the predictions by its name)
        refuse_long_names(out, f"cannot write {out}")  # (before the predictions are made)
    from matreg.ml.predict import predict  # torch loads only here

    predictions = predict(run, inputs, device=device)
    if out is not None:
        Store.write_file(predictions, out, "csv")
        typer.echo(f"{len(predictions)} predictions -> {out}")
    else:
        print_data_in_utf8()
        typer.echo(predictions.to_string(index=False))
