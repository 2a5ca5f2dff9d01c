"""The one exception family of matreg; the CLI turns each into a one-line message and an exit code."""


class MatregError(Exception):
    """Base of every error matreg reports to a user."""

    exit_code = 1


class ConfigError(MatregError):
    """A declarative file (catalog, schema, field map, lab mapping) is malformed."""

    exit_code = 2


class UnitError(MatregError):
    """A unit is unknown or cannot be converted to the one asked for."""


class FormulaError(MatregError):
    """A chemical formula cannot be parsed into real elements."""


class RecordError(MatregError):
    """A raw record cannot be mapped to canonical rows; it goes to quarantine with this reason."""


class SourceError(MatregError):
    """A source answered with an error the run cannot continue after."""


class StoreError(MatregError):
    """The store is missing, locked, or was asked for something it refuses (e.g. a write in `sql`)."""


class ValidationError(MatregError):
    """Rows do not satisfy the canonical schema."""
