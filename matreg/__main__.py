"""`python -m matreg` runs the command line."""

from matreg.cli import app

app()
