"""What every `matreg` command shares: the store and catalog options, and one-line error reports."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
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
SHOWN = 10  # lines a command lists of a longer list (reasons, unknown fields, decisions), most telling first


def reports_errors(command: Callable) -> Callable:
    """Turn a MatregError (a store lock held too long by another process too), or a file that cannot be read or
    written (an --out that is a folder, a full disk), into a one-line message on stderr and an exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except MatregError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def echo_warning(text: str | None) -> None:
    """Print a warning (if there is one) on stderr."""
    if text:
        typer.echo(text, err=True)


FormatOpt = Annotated[Literal["table", "csv", "json"], typer.Option("--format", help="table, csv or json.")]


def echo_frame(frame: pd.DataFrame, fmt: str, empty: str, max_colwidth: int = 60) -> None:
    """Print a frame as an aligned table, CSV or JSON records (`empty` when a table has no rows)."""
    if fmt == "csv":
        typer.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        typer.echo(frame.to_json(orient="records", date_format="iso", date_unit="us"))
    elif frame.empty:
        typer.echo(empty)
    else:
        blank = frame.astype(object).where(frame.notna(), "")  # nullable integer columns refuse "" as a value
        # '%g' to six significant digits: pandas' fixed decimals print 5.3e-19 J as 0.0
        typer.echo(blank.to_string(index=False, max_colwidth=max_colwidth, float_format=lambda x: f"{x:.6g}"))
