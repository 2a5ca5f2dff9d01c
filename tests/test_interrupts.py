"""How a signal stops the store's DuckDB queries (matreg/store/interrupts.py), and what it leaves alone: a program's
own handling of the signal, a query's reader paused between batches, a forked worker's signals, another wakeup fd."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading

import duckdb
import pytest
from conftest import utf8_child

from matreg.store import interrupts
from matreg.store.interrupts import stopped_by_signals

# A `python -c` prelude: DuckDB on four threads, as on a host of four cores or more, and an empty store (argv[1]).
EMPTY_STORE_ON_FOUR_DUCKDB_THREADS = """
import contextlib
import functools
import os
import signal
import sys
import threading
import time
import duckdb
duckdb.connect = functools.partial(duckdb.connect, config={"threads": 4})
from matreg.store import Store

store = Store(sys.argv[1])
store.ensure()
"""
SLOW_COUNT = "SELECT count(*) AS n FROM range(400000000) t(i) WHERE hash(i) % 7 < 7"  # (seconds: 400000000)


def _run(script: str, *args: str) -> str:
    """Run a `python -c` script (its arguments `args`) to its end, within seconds; its stderr, where it says what
    it saw (DuckDB's progress bar is on stdout)."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, **utf8_child(), timeout=30,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # (as a terminal delivers it)
    )  # fmt: skip
    return done.stderr


# argv[2]: the signal the program handles itself, by noting it (as a job that checkpoints and stops after this step);
# the signal reaches it 0.5 s into a query of seconds
OWN_HANDLER = (
    EMPTY_STORE_ON_FOUR_DUCKDB_THREADS
    + f"""
sig = signal.Signals[sys.argv[2]]
noted = []
signal.signal(sig, lambda signum, frame: noted.append(signum))
sent = []
threading.Timer(0.5, lambda: sent.append(time.monotonic()) or os.kill(os.getpid(), sig)).start()
n = store.query({SLOW_COUNT!r})["n"].iloc[0]
print("rows:", n, "signalled while it ran:", sent[0] < time.monotonic(), "noted:", noted, file=sys.stderr)
"""
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_the_program_handles_itself_lets_a_query_finish(tmp_path, sig):
    """A program with its own SIGINT or SIGTERM handler (a Slurm job noting 'stop after this step') got
    KeyboardInterrupt from a query the signal reached: the query now finishes, and the program's handler runs."""
    out = _run(OWN_HANDLER, str(tmp_path / "store"), sig.name)
    assert out == f"rows: 400000000 signalled while it ran: True noted: [{int(sig)}]\n"


def test_a_wakeup_fd_set_while_a_query_runs_stays_set_after_it(tmp_path):
    """Code that sets Python's wakeup fd while the store watches signals (asyncio's add_signal_handler) had it reset
    to none when the watch ended, and its signal handlers stopped running: the watch leaves that fd set."""
    theirs, other_end = socket.socketpair()
    theirs.setblocking(False)
    assert signal.set_wakeup_fd(-1) == -1  # (the store watches only where no other code does)
    try:
        with contextlib.closing(duckdb.connect()) as con, stopped_by_signals(con):
            con.execute("SELECT 1")
            signal.set_wakeup_fd(theirs.fileno())
        assert signal.set_wakeup_fd(-1) == theirs.fileno()
    finally:
        signal.set_wakeup_fd(-1)
        theirs.close()
        other_end.close()


# Ctrl-C between two batches of a query's reader (argv[2]: `query_batches`' or validation's `read_batches`), at other
# work of the program, which it stops; the reader read on
PAUSED_READER = (
    EMPTY_STORE_ON_FOUR_DUCKDB_THREADS
    + """
query = "SELECT i, hash(i) AS h FROM range(5000000) t(i)"
readers = {
    "query_batches": lambda: store.query_batches(query, 100000),
    "read_batches": lambda: store.read_batches(query, rows=100000),
}
batches = iter(readers[sys.argv[2]]())
rows = len(next(batches))
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(10)
except KeyboardInterrupt:
    time.sleep(0.3)  # (time for any thread that the signal woke)
rows += sum(len(batch) for batch in batches)
print("rows:", rows, file=sys.stderr)
"""
)


@pytest.mark.parametrize("reader", ["query_batches", "read_batches"])
def test_ctrl_c_while_a_query_reader_is_paused_leaves_its_query_running(tmp_path, reader):
    """Ctrl-C at a program's other work between two batches of a query's reader (a notebook's cell) stopped that
    work, and also the query, whose next batch raised StoreError (`query_batches`) or KeyboardInterrupt
    (`read_batches`, which kept the watch for signals armed between its frames): the query goes on, its rows all
    read."""
    assert _run(PAUSED_READER, str(tmp_path / "store"), reader) == "rows: 5000000\n"


# A thread forks a worker 0.5 s into a query of seconds; the worker alone gets SIGINT, and lingers (40 s)
FORKED_WORKER = (
    EMPTY_STORE_ON_FOUR_DUCKDB_THREADS
    + f"""
workers = []

def fork_a_worker():
    time.sleep(0.5)
    pid = os.fork()
    if pid == 0:
        with contextlib.suppress(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        time.sleep(40)
        os._exit(0)
    workers.append(pid)

threading.Thread(target=fork_a_worker).start()
n = store.query({SLOW_COUNT!r})["n"].iloc[0]
print("rows:", n, "forked while it ran:", bool(workers), file=sys.stderr)
os.kill(workers[0], signal.SIGKILL)
"""
)


def test_sigint_to_a_worker_forked_while_a_query_runs_leaves_the_query_running(tmp_path):
    """A worker forked while the store watched for signals (multiprocessing's 'fork') wrote its own signals to the
    watch, which interrupted the parent's query, and held the watch's socket open, so that the query's end waited
    for the worker's: the parent's query runs to its end, and ends at once."""
    assert _run(FORKED_WORKER, str(tmp_path / "store")) == "rows: 400000000 forked while it ran: True\n"


def test_an_interrupted_query_read_in_batches_raises_keyboard_interrupt(store, monkeypatch):
    """A query whose connection is interrupted while its rows are read in batches (the watch for signals, at
    Ctrl-C) raised StoreError ('INTERRUPT Error: Interrupted!'): it raises KeyboardInterrupt, as `query` does."""
    store.ensure()
    connections = []
    connect = store.connect
    monkeypatch.setattr(store, "connect", lambda: connections.append(connect()) or connections[-1])
    reader = store.query_batches("SELECT i, hash(i) AS h FROM range(5000000) t(i)", 100000)
    reader.read_next_batch()
    connections[0].interrupt()
    with pytest.raises(KeyboardInterrupt):
        reader.read_all()


_Thread = threading.Thread  # (the test below puts its own class in its place)


def _ctrl_c_taken_by_another_thread() -> None:
    """The process's SIGINT, taken by a thread of its own that does not hold it back (as the kernel gives a Ctrl-C
    to one of DuckDB's threads while the main thread holds it back); its handler is left to the main thread."""

    def take() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        os.kill(os.getpid(), signal.SIGINT)  # (a thread not holding a signal back takes the signal it sends)

    taker = _Thread(target=take)
    taker.start()
    taker.join()


_CTRL_C_TAKEN_BY = {
    "the main thread": lambda: signal.pthread_kill(threading.main_thread().ident, signal.SIGINT),
    "another thread": _ctrl_c_taken_by_another_thread,
}


class _SignalledAsItStarts(_Thread):
    """A thread whose start a Ctrl-C reaches (sent just before the thread starts, taken by `taken_by`'s thread)."""

    taken_by = "the main thread"

    def start(self) -> None:
        _CTRL_C_TAKEN_BY[self.taken_by]()
        super().start()


@pytest.mark.parametrize("taken_by", list(_CTRL_C_TAKEN_BY))
def test_ctrl_c_as_the_watch_starts_stops_the_query_and_leaves_no_watch_behind(store, monkeypatch, taken_by):
    """A Ctrl-C reaching the watch as it started its thread (a query just begun, on a loaded host) raised
    KeyboardInterrupt inside `Thread.start`, and the block's end then joined a thread never started: a RuntimeError
    ('cannot join thread before it is started') instead of the interrupt. Holding the signal back by the main thread's
    mask was not enough: the kernel gives a process's signal to a thread not masking it (one of DuckDB's), whose
    handler Python then runs in the main thread, and the test failed or passed as the kernel chose. Signals wait
    while the watch starts or stops, whichever thread takes them: the block raises KeyboardInterrupt, and no watch
    thread or wakeup fd is left."""
    store.ensure()
    con = store.connect()
    monkeypatch.setattr(interrupts.threading, "Thread", _SignalledAsItStarts)
    monkeypatch.setattr(_SignalledAsItStarts, "taken_by", taken_by)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # (as a terminal's Python has it; a job
    try:  # started in the background by a script, as CI runs the tests, ignores SIGINT)
        with pytest.raises(KeyboardInterrupt), stopped_by_signals(con):
            con.execute("SELECT 1").fetchall()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.undo()
    assert signal.set_wakeup_fd(-1) == -1
    assert [thread.name for thread in threading.enumerate() if thread.name == "matreg-signals"] == []
    con.close()
