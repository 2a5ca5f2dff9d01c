"""matreg: materials-data ETL and curated dataset registry."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("matreg")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
