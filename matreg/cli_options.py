"""What every `matreg` command shares: the store and catalog options, one-line error reports, and the store and
catalog opened for a command.

The command modules load the library (pandas, DuckDB, pandera, pint: about a second) inside the commands that use
it, so that `matreg --help` and a mistyped option answer at once.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, TextIO

import typer
from typer.core import TyperGroup

from matreg.errors import MatregError, PathError, utf8_text
from matreg.numbers import parse_number
from matreg.resources import working_directory

if TYPE_CHECKING:
    from matreg.catalog import Catalog
    from matreg.store import Store


def given_path(text: str | Path, what: str) -> Path:
    """A path given to an option (or its environment variable), a leading `~` the home folder (a `~` no shell
    expanded: quoted, systemd's Environment=, a .env file); typer.BadParameter asking for `what` it is for an empty one
    (`--store ""`: else the current folder; an empty environment variable is none, the default) and for `~name` of no
    user."""
    if not str(text):
        raise typer.BadParameter(f"give {what} (an empty path would be the current folder)")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # `~name` of no user (or no home folder to be found)
        user = Path(text).parts[0][1:]
        raise typer.BadParameter(f"no user '{user}' for '{text}' (a leading ~ is a home folder)") from None


def store_path(text: str | Path) -> Path:
    """The store folder `--store` or MATREG_STORE names (`given_path`)."""
    return given_path(text, "the store's folder")


def catalog_path(text: str | Path) -> Path:
    """The catalog file `--catalog` or MATREG_CATALOG names (`given_path`)."""
    return given_path(text, "the catalog's file")


StoreOpt = Annotated[
    Path, typer.Option("--store", envvar="MATREG_STORE", parser=store_path, metavar="<path>", help="Store directory.")
]
CatalogOpt = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        envvar="MATREG_CATALOG",
        parser=catalog_path,
        metavar="<path>",
        help="catalog.yaml (default: ./catalog.yaml, else the bundled one).",
    ),
]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")]
CLOSED_PIPE = 128 + signal.SIGPIPE  # the exit code of a program a closed pipe stopped (`exit_at_closed_pipe`)
SHOWN = 10  # lines a command lists of a longer list (reasons, unknown fields, decisions), most telling first


def read_number(text: str) -> float:
    """A number option's value, read as a lab file's value cell is (`parse_number`); typer.BadParameter for a text
    that is no finite float or that is nearer 0 than one (click reads '1e-400' as 0 and '1e309' as inf)."""
    number = parse_number(text)
    if isinstance(number, str):
        raise typer.BadParameter(number)
    return number


def open_store(path: Path) -> Store:
    """The store at `path` (created when a command first writes to it)."""
    from matreg.store import Store

    return Store(path)


def read_catalog(path: Path | None) -> Catalog:
    """The catalog at `path` (None: ./catalog.yaml, else the bundled one)."""
    from matreg.catalog import load_catalog

    return load_catalog(path)


def reports_errors(command: Callable | None = None, *, interrupted: str | None = None) -> Callable:
    """Turn a MatregError (a store lock held too long by another process, a disk full as a file is written, too), or
    a file that cannot be read or written otherwise (a file where a folder is to be), into a one-line message on stderr
    and an exit code; Ctrl-C or SIGTERM (`stop_on_sigterm`) into 'interrupted' and what the command left
    (`interrupted`: a command that writes says it), exit 130 or 143 (`exit_interrupted`); a write into a pipe whose
    reader is gone, stdout's or stderr's (an error's message, a library's warning too: `_EchoHandler`), into exit
    141, quiet (`exit_at_closed_pipe`). `@reports_errors` or `@reports_errors(interrupted=...)`."""
    if command is None:
        return functools.partial(reports_errors, interrupted=interrupted)

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            with _ended_where_warnings_went_unsaid():
                return _reported(command, interrupted, *args, **kwargs)
        except BrokenPipeError:  # the reader of stdout or stderr stopped (`| head`, `2>&1 | head`), an error unsaid
            exit_at_closed_pipe()

    return wrapper


def _reported(command: Callable, interrupted: str | None, *args, **kwargs):
    """`command(*args, **kwargs)`, its arguments checked (`_checked`), its errors said as `reports_errors`
    says; a write into a closed pipe (BrokenPipeError), the command's or that of a message said here, as it comes."""
    try:
        return command(*args, **{name: _checked(value) for name, value in kwargs.items()})
    except KeyboardInterrupt:
        exit_interrupted(interrupted)
    except MatregError as exc:
        echo_stderr(f"error: {exc}")
        raise typer.Exit(exc.exit_code) from None
    except BrokenPipeError:
        raise
    except OSError as exc:
        echo_stderr(f"error: {exc}")
        raise typer.Exit(1) from None


def _checked(value: Any) -> Any:
    """A command's argument as the command takes it: its text (a list's each) UTF-8 text (`utf8_text`: ConfigError for
    one that is not), but a text that names a file or folder there is (`train`'s export directory, `predict`'s file of
    formulas), which the command reads as a path, as given; PathError for a relative path (the default store's too)
    where the working directory no longer exists."""
    if isinstance(value, list):
        return [_checked(item) for item in value]
    if isinstance(value, str) and not os.path.lexists(value):
        return utf8_text(value)
    if isinstance(value, Path) and not value.is_absolute() and working_directory() is None:
        raise PathError(
            f"the current directory no longer exists, and the path '{value}' is relative to it: cd into a folder that "
            "exists, or give the whole path"
        )
    return value


def exit_at_closed_pipe() -> NoReturn:
    """End a command whose output's reader stopped reading (`matreg sql ... | head -1`; stderr's too, `2>&1 | head -1`)
    as the programs of a shell pipeline end: nothing said, exit code 128 + SIGPIPE (141), as of a process SIGPIPE
    stopped (Python ignores the signal: a write into the closed pipe raises BrokenPipeError). What stdout and stderr
    still hold goes to /dev/null: flushed into the pipe at exit, it would fail again, with a message."""
    _output_to_devnull()
    raise typer.Exit(CLOSED_PIPE)


def _output_to_devnull(*streams: TextIO | None) -> None:
    """Send what is written on `streams` (stdout and stderr where none is named) from now on, and what they still
    hold, to /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in streams or (sys.stdout, sys.stderr):
        if stream is not None:  # (None: the process was started without it, `2>&-`)
            os.dup2(devnull, stream.fileno())
    os.close(devnull)


class Commands(TyperGroup):
    """matreg's commands, whose output's reader stopped reading as click or rich wrote what no command writes (a
    usage error, before any command runs, where `reports_errors` does not reach; --help) ending as a closed pipe ends
    a command (`exit_at_closed_pipe`): quiet, exit code 141 (click and rich end the process with exit code 1)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """click's main, stdout escaping what its encoding lacks (`_escape_what_stdout_lacks`), a COLUMNS of no width
        unset (`_unset_columns_of_no_width`); a write in it into a closed pipe, and an exit that ended the process at
        one (a SystemExit raised while handling the BrokenPipeError: rich's, click's), ending it quietly, exit code
        141."""
        _escape_what_stdout_lacks()
        _unset_columns_of_no_width()
        try:
            return super().main(*args, **kwargs)
        except (BrokenPipeError, SystemExit) as stop:
            if isinstance(stop, SystemExit) and not isinstance(stop.__context__, BrokenPipeError):
                raise  # (an exit of its own: a command's exit code, a usage error's 2)
            _output_to_devnull()
            sys.exit(CLOSED_PIPE)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command, its summary in the command list its docstring's first paragraph as one line of text (typer's
        rich help keeps the docstring's line breaks there, breaking a sentence where the source line ends)."""
        command = super().get_command(ctx, cmd_name)
        if command is not None and command.help and not command.short_help:
            command.short_help = " ".join(command.help.split("\n\n")[0].split())
        return command


def _escape_what_stdout_lacks() -> None:
    """Print a character stdout's encoding lacks (a Latin-1 locale's, 'эВ' in a report) escaped, as Python prints it on
    stderr ('\\u044d'), rather than fail as it is printed, the command's work done (a run published). (click itself
    writes UTF-8 where the encoding is ASCII.)"""
    _reconfigure_stdout(errors="backslashreplace")


def _unset_columns_of_no_width() -> None:
    """Take a COLUMNS that is no positive number as unset, as other programs do: rich draws help and usage errors
    COLUMNS=0 columns wide, that is nothing (`matreg --help` printed an empty line)."""
    columns = os.environ.get("COLUMNS")
    if columns is not None and not (columns.isdigit() and int(columns) > 0):
        del os.environ["COLUMNS"]


def print_data_in_utf8() -> None:
    """Print what follows on stdout in UTF-8 whatever the locale's encoding: data for other programs (CSV, JSON,
    predictions), each character kept as they read it."""
    _reconfigure_stdout(encoding="utf-8", errors="backslashreplace")


def _reconfigure_stdout(**settings: str) -> None:
    """Change how stdout encodes what is printed from now on, if it is a text stream that can (not where the process
    was started without stdout, `>&-`)."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(**settings)


def progress_shown(progress: bool) -> bool:
    """Whether a command shows a progress bar: asked (`--progress`, the default), on stderr where it is a terminal;
    never where the process was started without stderr (`2>&-`: Python's sys.stderr is None)."""
    return progress and sys.stderr is not None and sys.stderr.isatty()


_SIGNALS_RECEIVED: list[int] = []  # the signals that stopped the command running (`stop_on_sigterm`)


def stop_on_sigterm() -> None:
    """Make SIGTERM (what Slurm, `timeout`, systemd and `docker stop` send) stop the command starting as Ctrl-C does,
    raising KeyboardInterrupt: what an interrupt runs then runs (a fetch commits the pages it read, temp files go, the
    command says what it left), and the exit code is 143 (`exit_interrupted`). The signals an earlier command of the
    process received (run in-process: a notebook, a test) are forgotten. A SIGTERM the process was started ignoring
    stays ignored; Python installs handlers from its main thread only (a command run from another thread keeps the
    default)."""
    _SIGNALS_RECEIVED.clear()
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) != signal.SIG_IGN:
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    """The SIGTERM handler: note the signal, raise KeyboardInterrupt (DuckDB, stopping a query at it, raises its own
    error in its place: the store raises KeyboardInterrupt again, and the note still says which signal it was)."""
    _SIGNALS_RECEIVED.append(signum)
    raise KeyboardInterrupt


# The store's watch for signals (matreg.store.interrupts) interrupts a running query at a signal this handler handles,
# as at Ctrl-C: the handler is marked so by the attribute's name (importing the store would take most of a second).
_interrupt.raises_keyboard_interrupt = True  # type: ignore[attr-defined]


def exit_interrupted(left: str | None) -> NoReturn:
    """End an interrupted command: 'interrupted' on stderr, with what it left (`left`), on a line of its own (after a
    progress bar), and exit code 128 + the signal, as a shell reports a process a signal ended: 143 after SIGTERM, 130
    after Ctrl-C (SIGINT)."""
    echo_stderr("\ninterrupted" + (f": {left}" if left else ""))
    stopped_by = signal.SIGTERM if signal.SIGTERM in _SIGNALS_RECEIVED else signal.SIGINT
    raise typer.Exit(128 + stopped_by)


_UNSAID_WARNINGS: list[logging.LogRecord] = []  # the library's warnings stderr's reader was gone for (`_EchoHandler`)


class _EchoHandler(logging.Handler):
    """The library's logged warnings on stderr, written as the commands write their own ('warning: ...'), each line
    after the UTC time it was logged where `timestamped` (`matreg --verbose`). One that finds stderr's reader gone
    (`2>&1 | head -1`) is not raised inside the library's code, which may take the BrokenPipeError for its own
    (requests: a connection lost, failing a fetch): stderr goes to /dev/null, and the command runs on, to end as at a
    closed pipe (`_ended_where_warnings_went_unsaid`)."""

    timestamped = False
    level_before_verbose: int | None = None  # the logger's level `show_library_warnings(verbose=True)` raised it from

    def emit(self, record: logging.LogRecord) -> None:
        try:
            typer.echo(self.stamped(f"{record.levelname.lower()}: {record.getMessage()}", record.created), err=True)
        except BrokenPipeError:
            _output_to_devnull(sys.stderr)
            _UNSAID_WARNINGS.append(record)

    def stamped(self, text: str, at: float) -> str:
        """`text` as lines on stderr: where `timestamped`, each line of it after the UTC time `at` (seconds since the
        epoch), a message of several lines (a DuckDB error's) in each, so that every line of the log says when; an
        empty line (one that ends a progress bar's) stays empty."""
        if not self.timestamped:
            return text
        stamp = f"{datetime.fromtimestamp(at, UTC):%Y-%m-%dT%H:%M:%SZ}"
        return "\n".join(f"{stamp} {line}" if line else line for line in text.split("\n"))


@contextlib.contextmanager
def _ended_where_warnings_went_unsaid() -> Iterator[None]:
    """A command that ends (done, failed, interrupted) after a warning found stderr's reader gone (`_EchoHandler`)
    ends as at a closed pipe: BrokenPipeError (`reports_errors`: exit 141, quiet)."""
    try:
        yield
    finally:
        if _UNSAID_WARNINGS:
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def show_library_warnings(verbose: bool = False) -> None:
    """Print what the library logs at warning level or above on stderr; `verbose` (`matreg --verbose`): at info level
    too (each HTTP request), each line after the UTC time it was logged. One handler per process, however often
    called: the last call says what it prints. The `matreg` logger's level is only raised, and only where `verbose`
    (`_logging_info_where_verbose`): one a library user set stays."""
    logger = logging.getLogger("matreg")
    handler = _echo_handler()
    if handler is None:
        handler = _EchoHandler()
        logger.addHandler(handler)
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    handler.timestamped = verbose
    _logging_info_where_verbose(logger, handler, verbose)


def _logging_info_where_verbose(logger: logging.Logger, handler: _EchoHandler, verbose: bool) -> None:
    """The logger at info level where `verbose` and it logs less (a library user's DEBUG stays), its level before
    noted on `handler`; that level again at a later call without it, unless the logger's level is no longer the info
    level set here (a library user changed it since); left as it is otherwise."""
    if verbose and logger.getEffectiveLevel() > logging.INFO:  # (its level is not the info level set here before)
        handler.level_before_verbose = logger.level
        logger.setLevel(logging.INFO)
    elif not verbose and handler.level_before_verbose is not None:
        if logger.level == logging.INFO:
            logger.setLevel(handler.level_before_verbose)
        handler.level_before_verbose = None


def _echo_handler() -> _EchoHandler | None:
    """The handler that prints the library's log on stderr (`show_library_warnings`), if there is one."""
    handlers = logging.getLogger("matreg").handlers
    return next((handler for handler in handlers if isinstance(handler, _EchoHandler)), None)


def _as_logged(text: str) -> str:
    """`text` as lines on stderr, each after the UTC time now where the library's log is so printed (`--verbose`:
    `_EchoHandler.stamped`)."""
    handler = _echo_handler()
    return handler.stamped(text, time.time()) if handler is not None else text


def echo_stderr(text: str | None) -> None:
    """Print a message (if there is one: a warning, a note, an error) on stderr, as the library's log is printed
    (`_as_logged`: after the UTC time under `--verbose`): every line a command writes on stderr is written so."""
    if text:
        typer.echo(_as_logged(text), err=True)


FormatOpt = Annotated[Literal["table", "csv", "json"], typer.Option("--format", help="table, csv or json.")]
