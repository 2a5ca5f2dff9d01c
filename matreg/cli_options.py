"""What every `matreg` command shares: the store and catalog options, and one-line error reports."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from matreg.errors import MatregError

StoreOpt = Annotated[Path, typer.Option("--store", envvar="MATREG_STORE", help="Store directory.")]
CatalogOpt = Annotated[
    Path | None,
    typer.Option(
        "--catalog", envvar="MATREG_CATALOG", help="catalog.yaml (default: ./catalog.yaml, else the bundled one)."
    ),
]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")]


def reports_errors(command: Callable) -> Callable:
    """Turn a MatregError into a one-line message on stderr and the error's exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except MatregError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper
