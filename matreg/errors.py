"""The one exception family of matreg; the CLI turns each into a one-line message and an exit code. And where a
text that is not in its encoding stops being it, for such messages, paths and text arguments refused for not being
UTF-8, and the error of a write the file system refuses.

An error's exit code says what to do next, from the code alone (README, Command line):

- 2 (`ConfigError`): the command as typed can never work: an option's value the command does not take, a name that
  names nothing in the catalog or the store (`UnknownName`), a malformed declarative file, a path that cannot be used
  (`PathError`; a store path where there is no store, `NoStore`), a run the store refuses as asked (`RunRefused`).
  Fix the command.
- 1 (`MatregError`): the command ran and failed, or refused, on the data: nothing valid found, a version released
  already, a value refused, a source's answer that is an error of its own (a bad key, a record it does not have), a
  run that would remove stored values of fields no record of it carried (`DroppedFields`), a write the file system
  refuses (`WriteRefused`: no permission, a read-only file system, a file past the largest allowed). Look at the
  data, or at what the message names.
- 75 (`TRY_LATER`, sysexits.h's EX_TEMPFAIL): a failure for now, that the same command may not meet later: a source
  unreachable or failing after the retries (`SourceUnavailable`), the store locked by another process for longer than
  a writer waits (`StoreBusy`), its DuckDB file held open for writing by another process (`StoreFileHeld`), a file
  system full or a disk quota reached as matreg wrote (`NoSpace`). Run the command again later (a fetch: with
  --resume, where it committed pages).
"""

import errno
import os
from collections.abc import Sequence
from pathlib import Path

TRY_LATER = 75  # sysexits.h's EX_TEMPFAIL: "temporary failure, the user is invited to retry"
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)  # a file system full, a disk quota reached: a failure for now
# the file system refusing a write (EFBIG: a file past the largest the process, `ulimit -f`, or the file system allows)
REFUSED_WRITES = (*NO_SPACE, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG)


class MatregError(Exception):
    """Base of every error matreg reports to a user: the command ran and failed, or refused, on the data (exit 1)."""

    exit_code = 1


class ConfigError(MatregError):
    """The command as typed can never work (exit 2): a declarative file (catalog, schema, field map, lab mapping) is
    malformed, or an option's value is not one the command takes."""

    exit_code = 2


class UnknownName(ConfigError):
    """A name given (a record, a quarantine row, a release) names nothing in the store."""


class RunRefused(ConfigError):
    """The store refuses a run as a whole, as asked: its name or scope is another dataset's, or the place its file
    is said to have moved from is not where it was imported from (nothing of it is kept)."""


class PathError(ConfigError):
    """A path given cannot be used as it is named: a name in it is not UTF-8 (`utf8_path`), or too long for the file
    system with what matreg adds to it; a store's is a file, a folder of other files, or has a character DuckDB
    misreads (a comma, a '?', a backslash)."""


class UnitError(MatregError):
    """A unit is unknown or cannot be converted to the one asked for."""


class FormulaError(MatregError):
    """A chemical formula cannot be parsed into real elements."""


class RecordError(MatregError):
    """A raw record cannot be mapped to canonical rows; it goes to quarantine with this reason."""


class SourceError(MatregError):
    """A source answered with an error the run cannot continue after."""


class SourceUnavailable(SourceError):
    """A source that could not be reached, or failed for now, after the retries: a 5xx or a 429 answered to the last
    of them, a connection refused, lost or timed out, an answer too slow (exit TRY_LATER)."""

    exit_code = TRY_LATER


class StoreError(MatregError):
    """The store is missing, locked, or was asked for something it refuses (e.g. a write in `sql`)."""


class NoStore(PathError, StoreError):
    """A store path, given to a command that reads a store, where no store was ever written (a mistyped --store or
    MATREG_STORE): the command as typed can never work (exit 2)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no matreg store at {path} (run `matreg fetch` or `matreg import` first)")
        self.path = path


class StoreBusy(StoreError):
    """Another process held a store lock for longer than a writer waits (`Store.locked`; exit TRY_LATER)."""

    exit_code = TRY_LATER

    def __init__(self, path: Path, advice: str = "try again") -> None:
        super().__init__(f"the store is busy: another matreg process holds {path}; {advice}")
        self.path = path


class StoreFileHeld(StoreError):
    """Another process holds the store's DuckDB file open for writing (a DuckDB shell, a matreg updating the views), so
    that a read of it (`matreg sql`) cannot open it now (exit TRY_LATER)."""

    exit_code = TRY_LATER


class WriteRefused(StoreError, OSError):
    """The file system refused a write of matreg's (no permission, a read-only file system): `write_refused`. An
    OSError too, with the OS's errno and strerror and the path written as its filename, so that a library caller's
    `except OSError` around a store write or an export still catches it; its text is matreg's message alone."""

    def __str__(self) -> str:
        return BaseException.__str__(self)  # (OSError's would be '[Errno 28] ...: <filename>')

    def __reduce__(self) -> tuple:
        """Pickled and copied with its errno, strerror and filename (OSError's own rebuilds from its args alone)."""
        return _refused_again, (type(self), self.args, self.errno, self.strerror, self.filename)


def _refused_again(kind: type[WriteRefused], args: tuple, code: int, strerror: str, filename: str) -> WriteRefused:
    """A WriteRefused (or NoSpace) of its message (`args`), with its OSError's errno, strerror and filename."""
    refused = kind(*args)
    refused.errno, refused.strerror, refused.filename = code, strerror, filename
    return refused


class NoSpace(WriteRefused):
    """A file system full, or a disk quota reached, as matreg wrote (exit TRY_LATER)."""

    exit_code = TRY_LATER


class DroppedFields(MatregError):
    """A run not published because its write would remove stored values that mapped fields no record of it carried
    (fields the source renamed or dropped) could have given, of their properties and methods (`FieldMap.may_give`):
    its pages stay staged, to resume once the field map reads them, or to publish as they are where the source
    dropped them (`fetch --resume --allow-dropped-fields`)."""


class ValidationError(MatregError):
    """Rows do not satisfy the canonical schema."""


def clipped(text: str, width: int) -> str:
    """`text` for a message: whole, or cut to `width` characters ending in '...' when it is longer."""
    return text if len(text) <= width else text[: width - 3] + "..."


def listed(items: Sequence[str], shown: int, separator: str = ", ") -> str:
    """The first `shown` of `items` for a message, joined, and how many more there are ('a, b, c and 3 more')."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return separator.join(items[:shown]) + more


def undecodable_at(data: bytes, error: UnicodeDecodeError) -> str:
    """Where a text stops being `error.encoding`: its line, byte, the bytes and the text before them on that line."""
    before = data[: error.start].decode(error.encoding, errors="replace")
    line = before.count("\n") + 1
    start_of_line = before.rsplit("\n", 1)[-1][-30:]
    return f"line {line}, byte {error.start}: {data[error.start : error.end]!r} after {start_of_line!r}"


def utf8_path(path: Path, what: str) -> Path:
    """`path`, when each name in it is UTF-8 text, as matreg records paths (in the store's tables, to DuckDB and
    Arrow); else PathError naming `what` it is, it and the first name that is not (a Latin-1 é, which Python reads as
    a surrogate), as bytes."""
    for name in path.parts:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise PathError(
                f"{what} {os.fsencode(path)!r}: the name {os.fsencode(name)!r} in its path is not UTF-8 text, which "
                "matreg records paths in; rename it"
            ) from None
    return path


def utf8_text(text: str) -> str:
    """`text`, an argument (or an option's value) as Python read it, as UTF-8 text, which matreg records text in: as
    read, or, where the locale's encoding lacked its bytes (ASCII where LC_ALL=C and Python's UTF-8 mode is off: each
    byte a surrogate), those bytes read as UTF-8; else ConfigError showing its bytes (a Latin-1 é in a UTF-8 locale,
    which Python reads as a surrogate), as `utf8_path` shows a path's."""
    data = text.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"the argument {data!r} is not UTF-8 text, which matreg records text in; give it in UTF-8"
        ) from None


def write_refused(error: OSError, path: Path, code: str | None = None, advice: str | None = None) -> WriteRefused:
    """The error of a write of `path` (a file, a folder, the store) that the file system refused with `error`
    (REFUSED_WRITES), naming `path` (the OS names the temp file written, or no file at all for a full disk) and the
    reason, by the name of its `code` where the library that wrote says one of its own (SQLite's), else of its
    errno: NoSpace for a full file system or a disk quota reached, a failure for now; else WriteRefused, saying what
    to do (`advice`) where given. As an OSError it has `error`'s errno and strerror (`_reason_of`), and `path` as its
    filename."""
    strerror = _reason_of(error)
    reason = f"cannot write {path}: {strerror} ({code or errno.errorcode[error.errno]})"
    if error.errno in NO_SPACE:
        reason += ": a failure for now: free space there, or raise the quota, and run the command again"
    elif advice:
        reason += f": {advice}"
    kind = NoSpace if error.errno in NO_SPACE else WriteRefused
    return _refused_again(kind, (reason,), error.errno, strerror, str(path))


def _reason_of(error: OSError) -> str:
    """Why the file system refused a write, as `error` says it: the OS's words for its errno where its text quotes
    them inside a library's own (pyarrow's 'Error writing bytes to file. Detail: [errno 28] No space left on device'),
    else its text (SQLite's 'database or disk is full'), else the OS's words."""
    words = os.strerror(error.errno)
    return words if not error.strerror or words in error.strerror else error.strerror
