"""Shared fixtures: a real HTTP server on 127.0.0.1 replaying recorded NIST-JANAF tables, and test catalogs."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import resource
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

# The libraries' caches and settings are the session's own, in a temp folder, not the user's ~/.cache and ~/.config:
# pint's parsed unit definitions (matreg.units, imported below, builds its registry at import), matplotlib's font list
# and settings (a release's plots; no matplotlibrc of the user's), any other library's, the child processes' too.
# Set before anything is imported; the folder is removed at the session's end (`pytest_unconfigure`).
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="matreg-tests-")
os.environ["MPLCONFIGDIR"] = os.path.join(os.environ["XDG_CACHE_HOME"], "matplotlib")

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from replay import ReplayServer, Reply, Request

from matreg.catalog import load_catalog
from matreg.curate.symmetry import CACHE_DIR_ENV
from matreg.store import Store

pytest_plugins = ("mp_replay",)  # its fixture mp_environment, for every test that fetches from the MP replay
SESSION_CACHE = Path(os.environ["XDG_CACHE_HOME"])  # the libraries' cache folder of this session (set above)
REPO = Path(__file__).resolve().parents[1]
JANAF_TABLES = REPO / "examples" / "janaf" / "tables"
SHARED_JANAF = REPO.parent / "shared" / "fixtures" / "nist-janaf" / "tables"
RAW_JANAF = REPO / "tests" / "fixtures" / "janaf_raw"  # NIST's text, unpatched (see SOURCES.md there)
LAB_EXAMPLE = REPO / "examples" / "lab"
# Formulas of one composition, written with fractions or whole numbers: one composition key, one linked group
ONE_COMPOSITION = [
    ("Te0.5Se0.5", "SeTe"),
    ("Fe0.5Ni0.5", "FeNi"),
    ("Li1Fe1P1O4", "LiFePO4"),
    ("Cu1.8S", "Cu9S5"),
    ("Hg0.7Cd0.3Te", "Cd3Hg7Te10"),
    ("Ga1As0.1P0.9", "Ga10AsP9"),
]


def janaf_route(request: Request) -> Reply:
    """NIST-JANAF's real URL layout: /tables/<ID>.txt, plain text."""
    name = request.path.removeprefix("/tables/")
    if not request.path.startswith("/tables/") or "/" in name:
        return Reply(404, b"Not Found", "text/plain")
    return Reply.file(JANAF_TABLES / name, "text/plain; charset=utf-8")


_PORTS: dict[str, int] = {}  # the port of the session's first replay server of each name (`replay_server`)


def replay_server(name: str, route: Callable[[Request], Reply], prefix: str = "/") -> ReplayServer:
    """A new replay server of `route`, at the port the session's first one of this name got where that is free: one
    URL in every test, as a store filled once and copied (`filled_once`) names it; another where it is taken."""
    try:
        server = ReplayServer(route, prefix, port=_PORTS.get(name, 0))
    except OSError:  # (taken since by another program: the test's stores are filled anew, for a URL of their own)
        server = ReplayServer(route, prefix)
    _PORTS.setdefault(name, server.port)
    return server


@pytest.fixture
def janaf_server():
    with replay_server("janaf", janaf_route, prefix="/tables/") as server:
        yield server


_FILLED: dict[tuple[str, str, str], Path] = {}  # the stores `filled_once` filled, kept as filled, by what filled them


def filled_once(request: pytest.FixtureRequest, catalog: Path, store: Path, fill: Callable[[], object]) -> None:
    """`fill()` the new store folder `store` (by the catalog at `catalog`), or, where an earlier test of the module did
    so by the same fixture and catalog (its servers' URLs in it), copy in what it filled: files written now, as fill
    writes them. A test's writes go to its own copy; the first one's store is kept aside before the test runs."""
    key = (request.module.__name__, request.fixturename, catalog.read_text(encoding="utf-8"))
    if key in _FILLED:
        copy_as_new(_FILLED[key], store)
        return
    fill()
    kept = request.getfixturevalue("tmp_path_factory").mktemp("filled") / store.name
    copy_as_new(store, kept)
    _FILLED[key] = kept


def copy_as_new(source: Path, target: Path) -> None:
    """Copy the folder `source` to `target` (new), every file and folder written now (none of their times copied)."""
    shutil.copytree(source, target, copy_function=shutil.copy)
    for folder, _, _ in os.walk(target):
        os.utime(folder)


PROXY_SETTINGS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
USER_SETTINGS = (  # what matreg, requests, mp-api and typer read from the environment that a user's shell may set
    *PROXY_SETTINGS,
    *(name.upper() for name in PROXY_SETTINGS),
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "MP_API_KEY",
    "MP_API_ENDPOINT",
    "MATREG_STORE",
    "MATREG_CATALOG",
    "MATREG_STEWARD",
    "COLUMNS",  # (typer's help wraps to it: the help tests read it at 80 columns)
    "LINES",
)


@pytest.fixture(autouse=True, scope="session")
def no_user_settings(tmp_path_factory):
    """The tests run without the user's settings of USER_SETTINGS (a proxy would get the replays' traffic to
    127.0.0.1, MP_API_ENDPOINT would send an MP fetch to the internet); a test sets what it needs itself. Cleared
    for the whole session, before any fixture of a wider scope than a test's fetches anything, by a patch of its
    own: a test's `monkeypatch.undo()` leaves them cleared. matreg's cache folder is the session's own, not the
    user's, as are the libraries' (SESSION_CACHE, set as this module is imported)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in USER_SETTINGS:
            patch.delenv(name, raising=False)
        patch.setenv(CACHE_DIR_ENV, str(tmp_path_factory.mktemp("matreg-cache")))
        yield


@pytest.fixture(autouse=True)
def process_state_as_before() -> Iterator[None]:
    """What a command run in the test's process (the `run` fixture) sets for the whole process, as it was before the
    test: the cyclic GC's settings (`tune_gc_for_fetch` freezes what is alive and raises the threshold: DuckDB
    connections left in reference cycles were never freed, their temp files left in $TMPDIR), the SIGTERM handler
    (`stop_on_sigterm`: SIGTERM to pytest raised KeyboardInterrupt in whichever test ran) and the `matreg` logger's
    handlers and level (`show_library_warnings`: a later test's logged warnings printed on stderr, its requests logged
    after `matreg -v`)."""
    threshold, on_sigterm = gc.get_threshold(), signal.getsignal(signal.SIGTERM)
    logger = logging.getLogger("matreg")
    handlers, level = logger.handlers[:], logger.level
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    signal.signal(signal.SIGTERM, on_sigterm)
    logger.handlers[:] = handlers
    logger.setLevel(level)


# A user namespace in which this process (root) is user 1000, without root's capabilities: file permissions hold
AS_A_USER = ["unshare", "--map-user=1000", "--map-group=1000"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the `as_a_user` marker."""
    config.addinivalue_line(
        "markers", "as_a_user: the test needs a user's file permissions (root writes into read-only files and folders)"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the libraries' cache folder of this session (SESSION_CACHE), whatever ran: no fixture, where none did."""
    shutil.rmtree(SESSION_CACHE, ignore_errors=True)


@functools.cache
def user_namespace_here() -> bool:
    """Whether `AS_A_USER` runs a command here (util-linux 2.38 or later, user namespaces allowed)."""
    try:
        return subprocess.run([*AS_A_USER, "true"], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked `as_a_user` run as root is skipped (before its fixtures) where no user namespace can be made."""
    if item.get_closest_marker("as_a_user") and os.geteuid() == 0 and not user_namespace_here():
        pytest.skip(
            "root writes into read-only files and folders, and `unshare --map-user` cannot run it as a user here"
        )


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A test marked `as_a_user` run as root runs in a pytest of its own as user 1000 (`AS_A_USER`): its outcome (the
    fixtures it asked for, set up here, go unused)."""
    if not pyfuncitem.get_closest_marker("as_a_user") or os.geteuid() != 0:
        return None
    session = [*AS_A_USER, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", pyfuncitem.nodeid]
    ran = subprocess.run(session, cwd=pyfuncitem.config.rootpath, capture_output=True, timeout=600, **utf8_child())
    if ran.returncode != 0 or "1 passed" not in ran.stdout:
        pytest.fail(f"run as user 1000 ({shlex.join(AS_A_USER)}):\n{ran.stdout}{ran.stderr}", pytrace=False)
    return True


@contextlib.contextmanager
def full_disk() -> Iterator[pa.NativeFile]:
    """A file on a full disk: /dev/full, where every write fails (ENOSPC), and pyarrow's with its own error, 'Error
    writing bytes to file. Detail: [errno 28] No space left on device'. Opened, never named to pyarrow: it deletes a
    path it failed to write (/dev/full itself, run as root)."""
    with pa.OSFile("/dev/full", "wb") as full:
        yield full


def disk_full_at_rows_of(monkeypatch: pytest.MonkeyPatch, table: str) -> None:
    """pyarrow's ParquetWriter fails as on a full disk, with its own error (`full_disk`), when it is to write rows
    into <table>.parquet: publishing writes a run's tables with it, materials first, so a fetch stops half way through
    publishing (a new store's empty tables are written; a fetch stages its pages as Arrow IPC)."""
    write_table = pq.ParquetWriter.write_table

    def write_or_fail(writer: pq.ParquetWriter, rows: pa.Table, *args, **kwargs) -> None:
        if rows.num_rows and Path(writer.where).name == f"{table}.parquet":
            with full_disk() as full, pq.ParquetWriter(full, rows.schema) as onto_full_disk:
                write_table(onto_full_disk, rows)
        write_table(writer, rows, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", write_or_fail)


def parquet_onto_full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow's write_table (an export's Parquet file) writes onto a full disk (`full_disk`): its own error."""
    write_table = pq.write_table

    def onto_full_disk(table: pa.Table, where: object, *args, **kwargs) -> None:
        with full_disk() as full:
            write_table(table, full, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", onto_full_disk)


# A query whose aggregate outgrows 16 MB of memory: DuckDB spills it to its temp folder
SPILLING = "select count(*) from (select md5(range::varchar) as k, count(*) from range(1000000) group by k)"


def no_space_to_spill(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every DuckDB database opened has 16 MB of memory, one thread, and may write 1 MB into its temp folder: a query
    that spills more (SPILLING) fails as on a disk nearly full there, where DuckDB's own limit on the folder (by
    default 90% of the disk space left) is reached: 'failed to offload data block' (an OutOfMemoryException)."""
    connect = duckdb.connect

    def connect_small(database: str = ":memory:", read_only: bool = False, config: dict | None = None, **kwargs):
        small = {"memory_limit": "16MB", "threads": 1, "max_temp_directory_size": "1MB"}
        return connect(database, read_only=read_only, config={**(config or {}), **small}, **kwargs)

    monkeypatch.setattr(duckdb, "connect", connect_small)


def sqlite_disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every SQLite database opened from now on may not grow (`max_page_count`: at least one page, a new file's
    first): a write that needs another page fails as on a full disk, with SQLite's 'database or disk is full'
    (SQLITE_FULL). The HTTP cache's file (requests-cache's SQLite backend) is the one matreg opens."""
    connect = sqlite3.connect

    def connect_full(*args, **kwargs) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {max(pages, 1)}")
        return connection

    monkeypatch.setattr(sqlite3, "connect", connect_full)


def utf8_child(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """subprocess.run's or Popen's arguments for a child process whose output the test reads as text: UTF-8, written
    so by a Python child (PYTHONIOENCODING) and read so here, whatever the locale (under `LC_ALL=C PYTHONUTF8=0`,
    text=True read a child's DuckDB progress bar or matreg's '…' as ASCII: UnicodeDecodeError); the child's
    environment is this process's with `env` added."""
    return {"encoding": "utf-8", "env": os.environ | {"PYTHONIOENCODING": "utf-8"} | dict(env or {})}


def matreg_with_files_capped(size: int, *args: str) -> subprocess.CompletedProcess:
    """`matreg ...` in a process of its own, on the store and catalog the environment names (the `run` fixture sets
    them), where no file may grow past `size` bytes, as on a disk whose quota is reached (RLIMIT_FSIZE; Python ignores
    SIGXFSZ, so the write fails, EFBIG, which SQLite reports as it does EDQUOT: 'disk I/O error',
    SQLITE_IOERR_WRITE). Not the test's process: the limit would refuse its output file too, once past `size`."""

    def capped() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    command = [sys.executable, "-m", "matreg", *args]
    return subprocess.run(command, preexec_fn=capped, capture_output=True, timeout=300, **utf8_child())


def single_value(frame: pd.DataFrame):
    """The value of a query's one row and column: another row fails the test (rather than be picked at random)."""
    assert frame.shape == (1, 1), f"{len(frame)} rows where one was expected:\n{frame}"
    return frame.iloc[0, 0]


def as_an_older_matreg_stored(store: Store, cells: dict[str, dict[str, Any]]) -> None:
    """Rewrite cells of the materials rows of these records (by record id, each its columns' values) in every write of
    them, as a matreg that read their formula otherwise stored them (one that read 'ZnO[0]' as the ion ZnO[+0])."""
    for path in store.data_dir.glob("c*/**/materials.parquet"):
        table = pq.read_table(path)
        ids = table["record_id"].to_pylist()
        for column in {column for values in cells.values() for column in values}:
            stored = table[column].to_pylist()
            written = [cells.get(record_id, {}).get(column, cell) for record_id, cell in zip(ids, stored, strict=True)]
            position = table.schema.get_field_index(column)
            table = table.set_column(position, table.schema.field(column), pa.array(written, table[column].type))
        pq.write_table(table, path)


VISIBLE_TABLES = ("materials", "properties", "quarantine")


def visible_tables(store: Store) -> dict[str, pd.DataFrame]:
    """What a failed run must leave as it was: the stored rows of the data tables, in key order."""
    return {name: store.table(name) for name in VISIBLE_TABLES}


def assert_failed_without_trace(store: Store, before: dict[str, pd.DataFrame], error: str) -> None:
    """The second run failed, its record says `error`, and the data tables are as `before`."""
    for name, frame in before.items():
        assert store.table(name).equals(frame), name
    runs = store.query("SELECT status, error FROM fetch_runs ORDER BY started_at")
    assert list(runs["status"]) == ["complete", "failed"] and error in runs["error"].iloc[1]


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "store")


def write_catalog(path: Path, base_url: str, *, auth_env: str | None = None, cache: bool = True) -> Path:
    """A catalog whose janaf source points at `base_url`, with fast retries."""
    auth = f"    auth_env: {auth_env}\n" if auth_env else ""
    path.write_text(
        "sources:\n"
        "  janaf:\n"
        "    title: NIST-JANAF (local replay)\n"
        "    connector: janaf\n"
        f"    base_url: {base_url}\n"
        "    provenance: experimental\n"
        "    license: Public domain\n"
        "    citation: Chase 1998\n"
        "    database_version: '4th edition (1998)'\n"
        f"{auth}"
        f"    http: {{retries: 3, backoff_s: 0, timeout_s: 5, cache: {str(cache).lower()}}}\n"
        "datasets:\n"
        "  thermo:\n"
        "    description: test\n"
        "    version: 0.1.0\n"
        "    properties: [enthalpy_of_formation, entropy]\n"
        "    temperature_K: 298.15\n"
        "  gaps:\n"
        "    description: experimental band gaps\n"
        "    version: 0.1.0\n"
        "    properties: [band_gap]\n"
        "    provenance: [experimental]\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def raw_janaf_catalog(tmp_path):
    """A catalog whose janaf source is a server on 127.0.0.1 replaying the raw tables at /tables/<ID>.txt."""

    def route(request: Request) -> Reply:
        return Reply.file(RAW_JANAF / request.path.removeprefix("/tables/"), "text/plain; charset=utf-8")

    with ReplayServer(route, prefix="/tables/") as server:
        yield load_catalog(write_catalog(tmp_path / "raw.yaml", server.url))


@pytest.fixture
def catalog_path(tmp_path, janaf_server) -> Path:
    return write_catalog(tmp_path / "catalog.yaml", janaf_server.url)


@pytest.fixture
def catalog(catalog_path):
    return load_catalog(catalog_path)


@pytest.fixture
def run(tmp_path, catalog_path, monkeypatch):
    """`matreg ...` in-process, on a store and catalog of this test, with a steward's name set."""
    from typer.testing import CliRunner

    from matreg.cli import app

    monkeypatch.setenv("MATREG_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("MATREG_CATALOG", str(catalog_path))
    monkeypatch.setenv("MATREG_STEWARD", "A. Steward")
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


@pytest.fixture
def filled(request, run, catalog_path, tmp_path):
    """`run` on a store holding two replayed JANAF tables and the bundled lab file (`filled_once`)."""

    def fill() -> None:
        assert run("fetch", "janaf", "H-064", "C-095", "--no-progress").exit_code == 0
        assert run("import", str(LAB_EXAMPLE / "bandgaps.csv"), "-m", str(LAB_EXAMPLE / "mapping.yaml")).exit_code == 0

    filled_once(request, catalog_path, tmp_path / "store", fill)
    return run


def matreg_in_zone(zone: str, *args: str) -> subprocess.CompletedProcess:
    """`matreg ...` in a process of its own in time zone `zone` (TZ), as on a host in that zone, on the store and
    catalog the environment names (the `run` fixture sets them); it must succeed."""
    result = subprocess.run([sys.executable, "-m", "matreg", *args], capture_output=True, **utf8_child({"TZ": zone}))
    assert result.returncode == 0, result.stderr
    return result


def cli_import(run: Callable, folder: Path, name: str, csv_text: str, mapping_text: str):
    """`matreg import` through `run` (the `run` fixture) of `csv_text`, written as folder/<name>.csv, by the mapping
    `mapping_text`, written as folder/<name>.yaml; the CLI's result."""
    data, mapping = folder / f"{name}.csv", folder / f"{name}.yaml"
    data.write_text(csv_text, encoding="utf-8")
    mapping.write_text(mapping_text, encoding="utf-8")
    return run("import", str(data), "-m", str(mapping))


HOLD_FOR_WRITING = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""


@pytest.fixture
def hold_for_writing():
    """`release = hold(path)`: another process opens the DuckDB file at `path` for writing (a DuckDB shell's default)
    and holds it until `release()` or the test's end."""
    holders: list[subprocess.Popen] = []

    def release(holder: subprocess.Popen) -> None:
        holder.kill()
        holder.wait()

    def hold(path: Path) -> Callable[[], None]:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_FOR_WRITING, str(path)], stdout=subprocess.PIPE, **utf8_child()
        )
        holders.append(holder)
        assert holder.stdout.readline().strip() == "holding"
        return lambda: release(holder)

    yield hold
    for holder in holders:
        release(holder)


HOLD_LOCK = """
import sys, time, filelock
lock = filelock.FileLock(sys.argv[1])
lock.acquire()
print("holding", flush=True)
time.sleep(60)
"""


@contextlib.contextmanager
def another_process_holding(lock: Path) -> Iterator[None]:
    """Another process holds the file lock at `lock` while in the block."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, **utf8_child())
    try:
        assert holder.stdout.readline().strip() == "holding"
        yield
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture
def retry_waits(monkeypatch) -> list[float]:
    """The waits urllib3's retries take in this test's thread, recorded instead of slept. urllib3 calls the global
    `time.sleep`: the sleeps of other threads (a server thread an earlier test left trickling) sleep as before and are
    not counted."""
    waits: list[float] = []
    test_thread, sleep = threading.current_thread(), time.sleep

    def wait(seconds: float) -> None:
        if threading.current_thread() is test_thread:
            waits.append(seconds)
        else:
            sleep(seconds)

    monkeypatch.setattr("urllib3.util.retry.time.sleep", wait)
    return waits
