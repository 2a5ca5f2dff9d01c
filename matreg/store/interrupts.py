"""How Ctrl-C (SIGINT) and SIGTERM stop a DuckDB query the store runs, whichever of DuckDB's threads runs it.

DuckDB itself notices a signal only while the thread that asked for the query runs a part of it (it runs Python's
handler, and raises RuntimeError('Query interrupted') in place of its KeyboardInterrupt: `_as_keyboard_interrupt`), not
while that thread waits for the others' parts: with DuckDB on several threads about one signal in two went unnoticed
until the query's end, minutes on a big store. So while the main thread runs a query, a watcher thread learns of each
signal from Python's wakeup fd (written by the C-level handler, whatever the main thread runs) and interrupts the
query's connection (`stopped_by_signals`), which then raises KeyboardInterrupt: for a signal whose Python handler raises
KeyboardInterrupt (`_interrupts`), not for one the program handles itself. (Arrow, reading a query's rows as DuckDB
makes them, notices a signal itself, but leaves the query running, and closing its connection then waits for the query's
end: the watcher stops that query too.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Iterator

import duckdb

DUCKDB_INTERRUPTED = "Query interrupted"  # DuckDB's RuntimeError when a signal stops a query
DUCKDB_INTERRUPT = "INTERRUPT Error: "  # DuckDB's message when its connection's query is interrupted (Arrow's reader)
RAISES_KEYBOARD_INTERRUPT = "raises_keyboard_interrupt"  # a signal handler's attribute, true: its signal stops queries


@contextlib.contextmanager
def _as_keyboard_interrupt() -> Iterator[None]:
    """DuckDB's errors of a query a signal stopped raised as the signal's KeyboardInterrupt, so that it stops a command
    as an interrupt anywhere else does (a fetch then stays resumable, not recorded as failed): RuntimeError('Query
    interrupted'), where DuckDB noticed the signal itself (in place of the KeyboardInterrupt Python's handler raised),
    InterruptException, where the watcher interrupted the query, and its message through Arrow's reader (OSError)."""
    try:
        yield
    except duckdb.InterruptException:
        raise KeyboardInterrupt from None
    except RuntimeError as exc:
        if str(exc) != DUCKDB_INTERRUPTED:
            raise
        raise KeyboardInterrupt from None
    except OSError as exc:
        if not str(exc).startswith(DUCKDB_INTERRUPT):
            raise
        raise KeyboardInterrupt from None


def _interrupts(signum: int) -> bool:
    """Whether the signal `signum` interrupts the running queries: whether its Python handler, as the signal arrives,
    raises KeyboardInterrupt: Python's own for SIGINT, or one marked so (`RAISES_KEYBOARD_INTERRUPT`: the command
    line's for SIGTERM). A program's own handler (a job noting 'stop after this step') lets a query finish, as it
    would without the store's watch."""
    handler = signal.getsignal(signum)
    return handler is signal.default_int_handler or getattr(handler, RAISES_KEYBOARD_INTERRUPT, False) is True


class _SignalWatch:
    """The connections the main thread runs queries on, and while there are any, a thread that interrupts them at
    a signal whose handler raises KeyboardInterrupt (`_interrupts`), woken by Python's wakeup fd (no polling)."""

    def __init__(self) -> None:
        self._running: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()  # (held to change `_running`, and to interrupt its connections)
        self._wakeup: socket.socket | None = None  # the end of the socket pair the signal handler writes to
        self._signals: socket.socket | None = None  # the end the watcher reads
        self._watcher: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._leave_to_the_parent)

    @contextlib.contextmanager
    def stopping(self, con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """A signal while the block runs queries on `con` interrupts them: the block raises KeyboardInterrupt. Watched
        in the main thread only, which Python's signal handlers interrupt (a store used from another thread: as
        before)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        with self._lock:
            self._running.append(con)
        try:
            with _signals_held():  # (a KeyboardInterrupt inside would leave a thread or a wakeup fd half set up)
                self._start()
            yield
        finally:
            with self._lock:
                self._running.remove(con)
            with _signals_held():
                self._stop_when_idle()

    def _start(self) -> None:
        """Watch for signals, unless watching already, or unless the process watches them itself (another wakeup
        fd, asyncio's: left as it is, and a query stops as DuckDB notices the signal)."""
        if self._watcher is not None:
            return
        wakeup, signals = socket.socketpair()
        wakeup.setblocking(False)  # (the signal handler never waits)
        previous = signal.set_wakeup_fd(wakeup.fileno())
        if previous != -1:
            signal.set_wakeup_fd(previous)
            wakeup.close()
            signals.close()
            return
        self._wakeup, self._signals = wakeup, signals
        self._watcher = threading.Thread(target=self._watch, args=(signals,), name="matreg-signals", daemon=True)
        self._watcher.start()

    def _watch(self, signals: socket.socket) -> None:
        """Interrupt the running queries at each signal `signals` receives (a byte each, the signal's number) whose
        handler raises KeyboardInterrupt, until its other end closes."""
        with signals:
            while received := signals.recv(64):
                if any(_interrupts(signum) for signum in received):
                    with self._lock:
                        for con in self._running:
                            with contextlib.suppress(duckdb.ConnectionException):  # (closed: see `_stop_when_idle`)
                                con.interrupt()

    def _stop_when_idle(self) -> None:
        """Stop watching once no query runs: the wakeup fd as before (or as code the queries ran meanwhile set it:
        asyncio's add_signal_handler), the socket pair closed, the thread ended. Only the main thread may set the
        wakeup fd (a block left by another thread, a query's reader its garbage collection closed, leaves it to the
        main thread's next query; a block whose exit the signal's own KeyboardInterrupt cut short leaves its
        connection listed, closed, until it is collected)."""
        if self._running or self._watcher is None or threading.current_thread() is not threading.main_thread():
            return
        wakeup, watcher, self._wakeup, self._signals, self._watcher = self._wakeup, self._watcher, None, None, None
        _put_back_wakeup_fd(wakeup)
        wakeup.close()  # (the watcher reads its end out, and ends)
        watcher.join()

    def _leave_to_the_parent(self) -> None:
        """In a process forked while watching (multiprocessing's 'fork'), stop watching, without the watcher thread
        (it stays in the parent): else the child's signals reached the parent's watcher, which interrupted the
        parent's queries, and the child held the parent's socket pair open, so that the parent's watch ended only
        with the child. The lock new: another thread of the parent may have held it."""
        self._lock = threading.Lock()
        if self._watcher is None:
            return
        _put_back_wakeup_fd(self._wakeup)
        self._wakeup.close()
        self._signals.close()
        self._wakeup, self._signals, self._watcher = None, None, None


_HELD_SIGNALS = frozenset((signal.SIGINT, signal.SIGTERM))


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM held back while the block runs, delivered as it ends: the watch starts or stops whole.
    Held back at their Python handlers, which a note of each signal replaces meanwhile, not by the main thread's signal
    mask: the kernel gives a process's signal to a thread not masking it (one of DuckDB's), and Python then runs its
    handler in the main thread, mask or not. A signal left to the system (SIG_DFL, SIG_IGN) stays so."""
    received: list[int] = []
    try:
        with contextlib.ExitStack() as handlers_back:
            for signum in _HELD_SIGNALS:
                handler = signal.getsignal(signum)
                if callable(handler):
                    handlers_back.callback(signal.signal, signum, handler)
                    signal.signal(signum, lambda noted, frame: received.append(noted))
            yield
    finally:
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)


def _put_back_wakeup_fd(own: socket.socket) -> None:
    """Set Python's wakeup fd to none again, where it is `own` (the watch's): another, set while the watch ran
    (asyncio's add_signal_handler), stays."""
    now = signal.set_wakeup_fd(-1)
    if now != own.fileno():
        signal.set_wakeup_fd(now)


_SIGNAL_WATCH = _SignalWatch()


@contextlib.contextmanager
def stopped_by_signals(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """A block running queries on `con` in which Ctrl-C or SIGTERM interrupts them, whichever of DuckDB's threads
    runs them: the block raises KeyboardInterrupt (`_as_keyboard_interrupt`). A block per DuckDB call: between
    calls, the program's own code runs, and a signal there is not the query's."""
    with _as_keyboard_interrupt(), _SIGNAL_WATCH.stopping(con):
        yield
