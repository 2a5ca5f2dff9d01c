"""kill -9 in the middle of a fetch, then --resume: no record lost, none duplicated."""

import contextlib
import json
import os
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pyarrow
import pytest
from conftest import another_process_holding, janaf_route, utf8_child, write_catalog
from replay import ReplayServer, Reply, Request

from matreg.errors import StoreError
from matreg.http import HttpClient
from matreg.ingest import run_ingest
from matreg.resources import resource_path
from matreg.sources.janaf import JanafConnector
from matreg.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import replay_optimade  # noqa: E402
from replay_oqmd import FILTER, PATH, catalog_yaml, fixture_records, page_reply  # noqa: E402

IDS = ["H-064", "C-095", "Al-001", "O-029", "N-023"]


@contextlib.contextmanager
def _janaf_hanging_at(table: str, catalog: Path) -> Iterator[tuple[ReplayServer, threading.Event]]:
    """A JANAF replay server, written into `catalog`, whose `table` hangs until the event is set (30 s at most)."""
    release = threading.Event()

    def hanging_route(request):
        if request.path.endswith(f"{table}.txt"):
            release.wait(30)
        return janaf_route(request)

    with ReplayServer(hanging_route, prefix="/tables/") as server:
        write_catalog(catalog, server.url, cache=False)
        yield server, release


def _kill_9_as_it_reads(command: list[str], server: ReplayServer, table: str, release: threading.Event) -> None:
    """Run `command`, kill -9 it once it asked `server` for `table` (which hangs), then let the table go."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not server.hits(f"/tables/{table}.txt"):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    release.set()


@pytest.mark.parametrize(("commit_every", "committed"), [(["--commit-every", "1"], 3), ([], 0)])
def test_kill_9_while_reading_the_fourth_page_then_resume(tmp_path, commit_every, committed):
    """Pages are committed every --commit-every records (default 1,000): a kill loses only pages read since."""
    store_dir, catalog = tmp_path / "store", tmp_path / "catalog.yaml"
    with _janaf_hanging_at("O-029", catalog) as (server, release):  # the fourth table
        command = [
            sys.executable,
            "-m",
            "matreg",
            "fetch",
            "janaf",
            *IDS,
            "--page-size",
            "1",
            "--store",
            str(store_dir),
            "--catalog",
            str(catalog),
            "--no-progress",
        ]
        _kill_9_as_it_reads(command + commit_every, server, "O-029", release)
        store = Store(store_dir)
        assert store.staged_pages() == committed and not store.exists()  # staged pages are invisible until the end

        resumed = subprocess.run(command + ["--resume"], capture_output=True, **utf8_child(), timeout=120)
        if not committed:
            assert resumed.returncode == 1 and "fetch without --resume" in resumed.stderr
            resumed = subprocess.run(command, capture_output=True, **utf8_child(), timeout=120)
        assert resumed.returncode == 0, resumed.stderr
    materials = store.table("materials")
    assert sorted(materials["source_id"]) == sorted(IDS)
    assert len(store.table("properties")) == 7 * len(IDS)
    assert server.hits("/tables/H-064.txt") == (1 if committed else 2)  # committed pages were not fetched again
    assert store.table("fetch_runs")["status"].tolist() == ["complete"]


@dataclass
class _Replayed:
    """A source's replay for a fetch to kill: its catalog source, the replay server's path, the query parameter of a
    page's offset, the reply to a request, its catalog at a server's root, and what the fetch selects."""

    source: str
    prefix: str
    offset_param: str
    reply: Callable[[Request], Reply]
    catalog_yaml: Callable[[str], str]
    selection: list[str]


@contextlib.contextmanager
def _killed_at(
    replayed: _Replayed, offset: int, tmp_path: Path, page_size: int, cwd: Path | None = None
) -> Iterator[tuple[ReplayServer, list[str], Store]]:
    """A fetch of `replayed`, `page_size` records a page and a commit, killed (kill -9) while the page at `offset`
    loads: the server, the fetch's command (to run again with --resume, from `cwd`) and its store."""
    release = threading.Event()

    def asked(request: Request) -> bool:
        return request.query.get(replayed.offset_param) == [str(offset)]

    def stalling_route(request):
        if asked(request):
            release.wait(30)  # the page hangs until the killed process is gone
        return replayed.reply(request)

    store_dir, catalog = tmp_path / "store", tmp_path / "catalog.yaml"
    with ReplayServer(stalling_route, prefix=replayed.prefix) as server:
        catalog.write_text(replayed.catalog_yaml(server.root), encoding="utf-8")
        command = [sys.executable, "-m", "matreg", "fetch", replayed.source, *replayed.selection]
        command += ["--page-size", str(page_size), "--commit-every", str(page_size)]
        command += ["--store", str(store_dir), "--catalog", str(catalog)]
        process = subprocess.Popen([*command, "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
        deadline = time.time() + 60
        while time.time() < deadline and not any(asked(request) for request in server.requests):
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        release.set()
        yield server, command, Store(store_dir)


def _oqmd_killed_at(
    offset: int, given: list[dict], tmp_path: Path, page_size: int, cwd: Path | None = None
) -> contextlib.AbstractContextManager[tuple[ReplayServer, list[str], Store]]:
    """An OQMD replay serving the records `given` (a list the test may edit) and a fetch of them, killed while the page
    at `offset` loads (`_killed_at`)."""

    def reply(request: Request) -> Reply:
        return page_reply(request, len(given), given.__getitem__)

    oqmd = _Replayed("oqmd", "/oqmdapi/", "offset", reply, catalog_yaml, ["--filter", FILTER])
    return _killed_at(oqmd, offset, tmp_path, page_size, cwd)


def _offsets(server: ReplayServer) -> list[str]:
    """The offsets of the pages the server was asked for, in order."""
    return [request.query.get("offset", ["0"])[0] for request in server.requests if request.path == PATH]


def test_kill_9_between_two_reads_of_a_record_then_resume_stores_its_last_read_alone(tmp_path):
    """An OQMD entry given by two calculations, on the first and the third page of five records: the second's values
    alone are stored, though the run was killed (kill -9) between the two reads and resumed."""
    records = fixture_records()
    standard = records[0] | {"calculation_id": 77301, "calculation_label": "standard"}  # with a band gap
    static = {key: value for key, value in standard.items() if key != "band_gap"}
    static |= {"calculation_id": 1143252, "calculation_label": "static", "delta_e": -2.1}
    given = [standard, *records[1:], static]
    with _oqmd_killed_at(10, given, tmp_path, page_size=5) as (server, command, store):
        assert store.staged_pages() == 2 and not store.exists()  # the standard calculation's page, staged
        resumed = subprocess.run([*command, "--resume"], capture_output=True, **utf8_child(), timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        assert _offsets(server) == ["0", "5", "10", "10"]  # the resume read the third page alone
    assert "read 13 (1 read again: of each record, the last read kept), 12 valid records" in resumed.stdout
    values = store.query("SELECT property, value FROM properties WHERE record_id = 'oqmd:16974'").values.tolist()
    assert values == [["formation_energy_per_atom", -2.1]]  # not the standard calculation's band gap beside it
    n_values = store.query("SELECT n_values FROM fetch_runs WHERE status = 'complete'").iloc[0, 0]
    assert n_values == len(store.table("properties"))


def _changed_entry(catalog: Path) -> str:
    """The catalog at `catalog` with its oqmd entry changed in every field its rows carry; the catalog as it was."""
    before = catalog.read_text(encoding="utf-8")
    changed = before.replace("provenance: dft", "provenance: simulated").replace("CC-BY-4.0", "CC-BY-NC-4.0")
    changed = changed.replace("database_version: replay", "database_version: replay-v2").replace("(2013)", "(2013a)")
    catalog.write_text(changed + "    method: r2SCAN\n", encoding="utf-8")
    return before


def test_a_resume_after_the_catalog_entry_changed_is_refused_until_it_is_restored(tmp_path):
    """A run killed after two pages of three records, its source's catalog entry changed meanwhile: neither --resume
    nor --resume-or-start maps the pages left otherwise than those committed (a run published with rows of both),
    nor drops them; restored, the entry resumes the run."""
    with _oqmd_killed_at(6, fixture_records(), tmp_path, page_size=3) as (server, command, store):
        (run_id,) = store.staged_runs()
        before = _changed_entry(tmp_path / "catalog.yaml")
        for option in ("--resume", "--resume-or-start"):
            refused = subprocess.run([*command, option], capture_output=True, **utf8_child(), timeout=120)
            assert refused.returncode == 2, refused.stderr
            assert (
                "the catalog entry of 'oqmd' (citation, database_version, license, method, provenance) changed since "
                f"run {run_id} committed its pages" in refused.stderr
            )
            dropped = f"`matreg drop {run_id} --store {store.root}` and fetch again"  # (the --store it was given)
            assert f"restore it to resume the run, or {dropped}" in refused.stderr
            assert list(store.staged_runs()) == [run_id] and store.staged_pages() == 2 and not store.exists()
        assert "--resume-or-start neither resumes nor drops it" in refused.stderr
        assert _offsets(server) == ["0", "3", "6"]  # the refused resumes asked nothing
        assert (
            f"the catalog entry of 'oqmd' in {tmp_path / 'catalog.yaml'} (citation, database_version, license, method, "
            f"provenance) changed since it committed its pages: --resume refuses it; restore it to resume the run, or "
            f"matreg drop {run_id} --store {store.root} drops it"
        ) in _status(store, tmp_path / "catalog.yaml")
        (tmp_path / "catalog.yaml").write_text(before, encoding="utf-8")
        resumed = subprocess.run([*command, "--resume"], capture_output=True, **utf8_child(), timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        assert _offsets(server) == ["0", "3", "6", "6", "9"]
    rows = store.query("SELECT DISTINCT provenance, method, license, database_version FROM materials")
    assert rows.values.tolist() == [["dft", "PBE(+U)", "CC-BY-4.0", "replay"]]
    assert len(store.table("materials")) == 12 and "count changed" not in resumed.stdout
    runs = store.query("SELECT run_id, database_version, available_counts FROM fetch_runs").values.tolist()
    assert runs == [[run_id, "replay", None]]


def _project_oqmd_map(project: Path, shipped_text: str, text: str) -> None:
    """A project's connectors/oqmd.yaml: the shipped field map with `shipped_text` written as `text`."""
    shipped = resource_path("connectors/oqmd.yaml").read_text(encoding="utf-8")
    assert shipped_text in shipped
    (project / "connectors").mkdir()
    (project / "connectors" / "oqmd.yaml").write_text(shipped.replace(shipped_text, text), encoding="utf-8")


def test_a_resume_after_the_field_map_changed_is_refused(tmp_path):
    """A project's field map (connectors/oqmd.yaml in its folder) given after a run was killed, reading band gaps in
    meV: the resume is refused (records 7-12 would be read in meV, 1-6 in eV, in one run); dropped, the run is
    fetched again with the new map alone."""
    with _oqmd_killed_at(6, fixture_records(), tmp_path, page_size=3, cwd=tmp_path) as (server, command, store):
        (run_id,) = store.staged_runs()
        _project_oqmd_map(tmp_path, "band_gap: {unit: eV}", "band_gap: {unit: meV}")
        refused = subprocess.run([*command, "--resume"], capture_output=True, **utf8_child(), timeout=120, cwd=tmp_path)
        assert refused.returncode == 2, refused.stderr
        field_map = tmp_path / "connectors" / "oqmd.yaml"  # named as `matreg status` names it: the file to open
        assert f"the field map of 'oqmd' ({field_map}) changed since run {run_id} committed" in refused.stderr
        assert "the catalog entry" not in refused.stderr
        drop = [sys.executable, "-m", "matreg", "drop", run_id, "--store", str(store.root)]
        assert subprocess.run(drop, capture_output=True, **utf8_child(), timeout=120).returncode == 0
        fetched = subprocess.run(command, capture_output=True, **utf8_child(), timeout=120, cwd=tmp_path)
        assert fetched.returncode == 0, fetched.stderr
    units = store.query("SELECT original_unit, count(*) FROM properties WHERE property = 'band_gap' GROUP BY ALL")
    assert units.values.tolist() == [["meV", 12]]


def test_a_resume_after_the_field_map_dropped_its_provenance_alone_continues_the_run(tmp_path):
    """A field map's own provenance decides nothing (the catalog entry's does): a map that drops it after the kill
    (as matreg's optimade.yaml did in an upgrade) maps the pages left as the committed ones were. The resume was
    refused ('the field map of 'oqmd' changed'), and `matreg status` advised a drop."""
    with _oqmd_killed_at(6, fixture_records(), tmp_path, page_size=3, cwd=tmp_path) as (server, command, store):
        (run_id,) = store.staged_runs()
        _project_oqmd_map(tmp_path, "provenance: dft\n", "")
        assert "field map" not in _status(store, tmp_path / "catalog.yaml", cwd=tmp_path)
        resumed = subprocess.run([*command, "--resume"], capture_output=True, **utf8_child(), timeout=120, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        assert _offsets(server) == ["0", "3", "6", "6", "9"]
    assert len(store.table("materials")) == 12 and store.staged_runs() == {}


def _status(store: Store, catalog: Path, cwd: Path | None = None) -> str:
    """What `matreg status` says of `store`, `catalog` read as the fetch read it."""
    command = [sys.executable, "-m", "matreg", "status", "--store", str(store.root), "--catalog", str(catalog)]
    shown = subprocess.run(command, capture_output=True, **utf8_child(), timeout=120, cwd=cwd)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


@contextlib.contextmanager
def _catalog_moved_to_a_mirror(catalog: Path) -> Iterator[ReplayServer]:
    """The catalog's oqmd entry pointed at another server (a mirror), which answers 404 to every request."""
    with ReplayServer(lambda request: Reply(404, b"Not Found", "text/plain"), prefix="/oqmdapi/") as mirror:
        catalog.write_text(catalog_yaml(mirror.root), encoding="utf-8")
        yield mirror


def test_a_run_read_at_the_catalogs_former_base_url_resumes_with_the_base_url_its_messages_name(tmp_path):
    """A run killed after two pages, the catalog's base_url then pointed at a mirror: `matreg status` and --resume
    name the --base-url the run read (not its endpoint, which as --base-url asked .../formationenergy/formationenergy);
    given, it resumes the run."""
    with _oqmd_killed_at(6, fixture_records(), tmp_path, page_size=3) as (server, command, store):
        (run_id,) = store.staged_runs()
        with _catalog_moved_to_a_mirror(tmp_path / "catalog.yaml") as mirror:
            shown = _status(store, tmp_path / "catalog.yaml")
            where = shlex.join(["--store", str(store.root), "--catalog", str(tmp_path / "catalog.yaml")])  # (given)
            options = f"{where} --page-size 3 --base-url {server.url}"
            assert f"(its options: {options}, the server it read: the catalog's" in shown
            refused = subprocess.run([*command, "--resume"], capture_output=True, **utf8_child(), timeout=120)
            assert refused.returncode == 1, refused.stderr
            assert f"run {run_id} read {server.url}formationenergy: give --base-url {server.url} with --resume" in (
                refused.stderr
            )
            other_size = [*command, "--page-size", "4", "--resume"]  # (the last --page-size given counts)
            refused = subprocess.run(other_size, capture_output=True, **utf8_child(), timeout=120)
            assert f"{run_id} (6 read): give --page-size 3 --base-url {server.url} with --resume to" in refused.stderr
            resumed = subprocess.run(
                [*command, "--base-url", server.url, "--resume"], capture_output=True, **utf8_child(), timeout=120
            )
            assert resumed.returncode == 0, resumed.stderr
            assert mirror.requests == [] and _offsets(server) == ["0", "3", "6", "6", "9"]
    assert len(store.table("materials")) == 12


def test_a_fresh_fetch_failing_after_it_dropped_the_run_read_elsewhere_says_it_dropped_it(tmp_path):
    """--resume-or-start, the catalog's base_url pointed at a mirror since the kill: the fresh fetch drops the run
    read at the former server as it starts; failing on its first page, it says so (not only 'nothing to resume')."""
    with _oqmd_killed_at(6, fixture_records(), tmp_path, page_size=3) as (server, command, store):
        (run_id,) = store.staged_runs()
        with _catalog_moved_to_a_mirror(tmp_path / "catalog.yaml"):
            failed = subprocess.run([*command, "--resume-or-start"], capture_output=True, **utf8_child(), timeout=120)
        assert failed.returncode == 1, failed.stderr
        assert "HTTP 404" in failed.stderr and store.staged_runs() == {}
        assert (
            "no page was committed, there is nothing to resume; as it started, this fetch dropped the interrupted run "
            f"of the same query: {run_id} (6 read at {server.url}formationenergy)"
        ) in failed.stderr


def test_a_resume_after_the_field_map_changed_the_fields_asked_is_refused_naming_the_field_map(tmp_path):
    """A project's field map without OQMD's volume, given after the kill: the fetch asks OQMD for other fields (its
    parameters differ), yet it is the run's own fetch; --resume and --resume-or-start say the field map changed and
    that `matreg drop` is the way, asking nothing and dropping nothing; `matreg status` advises no fetch that fails."""
    with _oqmd_killed_at(6, fixture_records(), tmp_path, page_size=3, cwd=tmp_path) as (server, command, store):
        (run_id,) = store.staged_runs()
        _project_oqmd_map(tmp_path, "  volume: {unit: angstrom**3/cell}\n", "")
        for option in ("--resume", "--resume-or-start"):
            refused = subprocess.run([*command, option], capture_output=True, **utf8_child(), timeout=120, cwd=tmp_path)
            assert refused.returncode == 2, refused.stderr
            field_map = tmp_path / "connectors" / "oqmd.yaml"
            assert f"the field map of 'oqmd' ({field_map}) changed since run {run_id} committed" in refused.stderr
            assert f"`matreg drop {run_id} --store {store.root}` and fetch again" in refused.stderr
            assert list(store.staged_runs()) == [run_id] and store.staged_pages() == 2
        assert "--resume-or-start neither resumes nor drops it" in refused.stderr
        assert _offsets(server) == ["0", "3", "6"]
        shown = _status(store, tmp_path / "catalog.yaml", cwd=tmp_path)
        assert "continues it" not in shown and "the same fetch without --resume" not in shown
        assert (
            f"the field map of 'oqmd' ({tmp_path}/connectors/oqmd.yaml) changed since it committed its pages: --resume "
            f"refuses it; restore it to resume the run, or matreg drop {run_id} --store {store.root} drops it"
        ) in shown


def test_a_resume_of_another_selection_names_the_run_and_the_command_that_resumes_it(tmp_path):
    """--resume with a --filter one space longer than the run's: the message names the run and the selection and
    options that resume it, as typed, and how to drop it (it said 'interrupted runs of 'oqmd' have other ones')."""
    with _oqmd_killed_at(6, fixture_records(), tmp_path, page_size=3) as (server, command, store):
        (run_id,) = store.staged_runs()
        spaced = [f"{word} " if word == FILTER else word for word in command]
        refused = subprocess.run([*spaced, "--resume"], capture_output=True, **utf8_child(), timeout=120)
        assert refused.returncode == 1, refused.stderr
        assert (
            f"an interrupted run of 'oqmd' has another selection: {run_id} (6 read): give "
            f"--filter 'element_set=(Al-Fe),O' --page-size 3 with --resume to continue it, or drop it: "
            f"matreg drop {run_id} --store {store.root}\n"
        ) in refused.stderr
        assert _offsets(server) == ["0", "3", "6"]


def _as_an_older_matreg_staged_it(journal: Path, column: str) -> None:
    """Rewrite the commit frames of a run's journal without `column`, as a matreg older than it wrote them."""
    data, frames, at = (journal / "commits.arrows").read_bytes(), [], 0
    while at < len(data):
        (length,) = struct.unpack_from("<Q", data, at)
        table = pyarrow.ipc.open_stream(data[at + 8 : at + 8 + length]).read_all().drop_columns([column])
        sink = pyarrow.BufferOutputStream()
        with pyarrow.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        frames.append(struct.pack("<Q", sink.getvalue().size) + sink.getvalue().to_pybytes())
        at += 8 + length
    (journal / "commits.arrows").write_bytes(b"".join(frames))


def test_a_run_staged_by_an_older_matreg_resumes_as_before_whatever_changed(tmp_path):
    """A journal without mapped_with (an older matreg's) says nothing of what its pages were mapped with: its resume
    is not refused (as before, its pages left are mapped with the catalog entry as it is now)."""
    with _oqmd_killed_at(6, fixture_records(), tmp_path, page_size=3) as (_, command, store):
        (run_id,) = store.staged_runs()
        _as_an_older_matreg_staged_it(store.staging_dir / run_id, "mapped_with")
        _changed_entry(tmp_path / "catalog.yaml")
        resumed = subprocess.run([*command, "--resume"], capture_output=True, **utf8_child(), timeout=120)
        assert resumed.returncode == 0, resumed.stderr
    licenses = store.query("SELECT license, count(*) FROM materials GROUP BY ALL ORDER BY ALL").values.tolist()
    assert licenses == [["CC-BY-4.0", 6], ["CC-BY-NC-4.0", 6]]


def test_a_resume_after_the_source_removed_a_record_notes_that_its_count_changed(tmp_path):
    """A record removed upstream while the run was interrupted (one of its committed pages'): offset pages shift, and
    the record after the committed ones is never read; the run summary and fetch_runs say the count changed."""
    given = fixture_records()
    with _oqmd_killed_at(6, given, tmp_path, page_size=3) as (_, command, store):
        (run_id,) = store.staged_runs()
        del given[0]
        resumed = subprocess.run([*command, "--resume"], capture_output=True, **utf8_child(), timeout=120)
        assert resumed.returncode == 0, resumed.stderr
    assert (
        "note: the source's count changed from 12 to 11 while the run was interrupted: with offset pages, records "
        "may be missed or read twice; fetch again without --resume (and with --refresh-cache where the HTTP cache is "
        "on: it keeps the pages read before) for a whole read"
    ) in resumed.stdout
    missed = f"oqmd:{fixture_records()[6]['entry_id']}"
    assert len(store.table("materials")) == 11 and missed not in set(store.table("materials")["record_id"])
    counts = store.query("SELECT run_id, n_available, available_counts FROM fetch_runs").values.tolist()
    assert counts == [[run_id, 11, "[12, 11]"]]


def _whole(count: int, offset: int, limit: int) -> int:
    """`meta.data_returned` as the OPTIMADE specification defines it: the entries matching the filter."""
    return count


def _per_page(count: int, offset: int, limit: int) -> int:
    """`meta.data_returned` as qmpy's OQMD view sent it before its 2021 fix (qmpy issue 116): the page's entries."""
    return min(limit, count - offset)


def _remaining(count: int, offset: int, limit: int) -> int:
    """`meta.data_returned` as optimade-python-tools' MongoDB backend sent it before its 2022 fix: from `offset` on."""
    return count - offset


def _optimade_killed_at(
    offset: int, given: list[dict], counted: Callable[[int, int, int], int], tmp_path: Path
) -> contextlib.AbstractContextManager[tuple[ReplayServer, list[str], Store]]:
    """An OPTIMADE provider serving the entries `given` (a list the test may edit) through `links.next`, counting them
    as `counted(count, offset, limit)` says, and a fetch of them, 3 a page, killed while the page at `offset` loads
    (`_killed_at`). It has no /info/structures: every mapped field is asked for."""

    def reply(request: Request) -> Reply:
        if request.path != replay_optimade.PATH:
            return Reply.json({"errors": [{"status": "404", "title": "Not Found"}]}, 404)
        params = {key: values[-1] for key, values in request.query.items()}
        limit, at = int(params["page_limit"]), int(params.get("page_offset", 0))
        end = min(at + limit, len(given))
        following = f"http://{request.headers['Host']}{request.path}?{urlencode(params | {'page_offset': end})}"
        meta = {"data_returned": counted(len(given), at, limit), "more_data_available": end < len(given)}
        page = {"data": given[at:end], "meta": meta | {"provider": replay_optimade.PROVIDER}}
        return Reply.json(page | {"links": {"next": following if end < len(given) else None}})

    optimade = _Replayed("optimade", "/", "page_offset", reply, replay_optimade.catalog_yaml, ["--all"])
    return _killed_at(optimade, offset, tmp_path, page_size=3)


def _optimade_entries(count: int) -> list[dict]:
    """`count` structure entries of the OPTIMADE fixtures (tests/fixtures/optimade), ids e0, e1, ..."""
    attributes = replay_optimade.fixture_attributes()[:count]
    return [{"id": f"e{i}", "type": "structures", "attributes": json.loads(text)} for i, text in enumerate(attributes)]


@pytest.mark.parametrize(
    ("counted", "killed_at"),
    [(_per_page, 9), (_remaining, 6), (_remaining, 3)],
    ids=["per page", "remaining", "remaining, first half"],
)
def test_kill_9_then_resume_of_a_provider_counting_its_page_or_the_entries_left_notes_no_count(
    tmp_path, counted, killed_at
):
    """11 entries, 3 a page, killed as a page loads: resumed at its last page, a provider counting each page's entries
    says 2 where the committed pages said 3; at offset 6, one counting from the offset says 5 where the page before
    said 8; at offset 3, 8 where the one committed page said 11 (its process read no other: the run's cursor carries
    that count). None is the count of the query, which did not change: no note, the count unknown."""
    with _optimade_killed_at(killed_at, _optimade_entries(11), counted, tmp_path) as (server, command, store):
        assert store.staged_pages() == killed_at // 3
        resumed = subprocess.run([*command, "--resume"], capture_output=True, **utf8_child(), timeout=120)
        assert resumed.returncode == 0, resumed.stderr
    assert "optimade: read 11," in resumed.stdout and "note:" not in resumed.stdout
    runs = store.query("SELECT status, n_available, available_counts FROM fetch_runs")
    assert runs["status"].tolist() == ["complete"] and runs[["n_available", "available_counts"]].isna().all(axis=None)


def test_a_resume_after_an_optimade_provider_removed_an_entry_notes_that_its_count_changed(tmp_path):
    """A provider counting as the specification says (the entries matching the filter), an entry of its committed
    pages removed while the run was interrupted: the run summary and fetch_runs say the count changed."""
    given = _optimade_entries(12)
    with _optimade_killed_at(6, given, _whole, tmp_path) as (_, command, store):
        (run_id,) = store.staged_runs()
        del given[0]
        resumed = subprocess.run([*command, "--resume"], capture_output=True, **utf8_child(), timeout=120)
        assert resumed.returncode == 0, resumed.stderr
    assert "note: the source's count changed from 12 to 11 while the run was interrupted" in resumed.stdout
    counts = store.query("SELECT run_id, n_available, available_counts FROM fetch_runs").values.tolist()
    assert counts == [[run_id, 11, "[12, 11]"]]


def test_a_lock_file_of_a_run_killed_before_its_first_commit_is_removed_by_the_next_write_unless_held(tmp_path):
    """kill -9 before a run commits a page leaves its lock file and no journal; the next write removes it once
    nothing touched it for an hour, and no lock file another process holds (a run starting up there)."""
    store_dir, catalog = tmp_path / "store", tmp_path / "catalog.yaml"
    with _janaf_hanging_at("H-064", catalog) as (server, release):  # the first table
        command = [sys.executable, "-m", "matreg", "fetch", "janaf", *IDS[:2], "--store", str(store_dir)]
        command += ["--catalog", str(catalog), "--no-progress"]
        _kill_9_as_it_reads(command, server, "H-064", release)
        (killed,) = (store_dir / "locks").iterdir()  # what the kill left: a lock file, no journal
        assert killed.stat().st_size == 0 and not (store_dir / "staging" / killed.stem).exists()
        held = store_dir / "locks" / "20260101T000000000000Z-janaf-0123abcd.lock"
        with another_process_holding(held):
            two_hours_ago = time.time() - 7200
            for path in (killed, held):
                os.utime(path, (two_hours_ago, two_hours_ago))
            fetched = subprocess.run(command, capture_output=True, **utf8_child(), timeout=120)
            assert fetched.returncode == 0, fetched.stderr
            assert sorted(path.name for path in (store_dir / "locks").iterdir()) == [held.name]
            assert Store(store_dir).is_running(held.stem)  # still held, by the same file
    assert sorted(Store(store_dir).table("materials")["source_id"]) == sorted(IDS[:2])


class FailsAfterOnePage(JanafConnector):
    """A JANAF fetch whose source fails after its first page: that page stays staged, resumable."""

    def pages(self, cursor=None):
        pages = super().pages(cursor)
        yield next(pages)
        raise RuntimeError("connection reset")


def _janaf(catalog, connector=JanafConnector):
    source = catalog.source("janaf")
    return connector(source, HttpClient(source.http), IDS[:3], page_size=1)


def test_an_interrupted_run_dropped_by_a_process_killed_while_deleting_it_is_never_resumed(store, catalog, monkeypatch):
    """A plain re-run drops the interrupted run of its query; killed while deleting that run's journal (its
    materials file gone, its commits left), it leaves nothing a resume would publish as that run."""
    with pytest.raises(RuntimeError, match="connection reset"):
        run_ingest(_janaf(catalog, FailsAfterOnePage), store)
    (run_id,) = store.staged_runs()

    def killed_after_deleting_one_file(path, *args, **kwargs):
        (Path(path) / "materials.arrows").unlink()
        raise KeyboardInterrupt  # (kill -9: the rest of the journal stays)

    monkeypatch.setattr(shutil, "rmtree", killed_after_deleting_one_file)
    with pytest.raises(KeyboardInterrupt):
        store.discard_run(run_id)
    monkeypatch.undo()
    assert store.staged_runs() == {} and list(store.staging_dir.iterdir()) == []
    with pytest.raises(StoreError, match="nothing to resume"):
        run_ingest(_janaf(catalog), store, resume=True)
    (left,) = store.tmp_dir.iterdir()  # the rest of the journal, out of staging/
    two_hours_ago = time.time() - 7200
    for path in [*left.iterdir(), left]:
        os.utime(path, (two_hours_ago, two_hours_ago))
    run_ingest(_janaf(catalog), store)
    assert list(store.tmp_dir.iterdir()) == []  # removed as what killed processes leave is
    assert sorted(store.table("materials")["source_id"]) == sorted(IDS[:3])


def test_a_journal_deleted_in_part_is_refused_by_a_resume_and_dropped_by_a_plain_run(store, catalog):
    """A run's journal without its materials file (its commits count rows there) is not published as a run without
    those records: the resume says the journal is damaged and what to do."""
    with pytest.raises(RuntimeError, match="connection reset"):
        run_ingest(_janaf(catalog, FailsAfterOnePage), store)
    (run_id,) = store.staged_runs()
    (store.staging_dir / run_id / "materials.arrows").unlink()
    with pytest.raises(StoreError, match=f"the journal of run {run_id} is damaged .*without --resume"):
        run_ingest(_janaf(catalog), store, resume=True)
    assert store.table("materials").empty  # nothing published (the resume's failure is recorded)
    run_ingest(_janaf(catalog), store)
    assert sorted(store.table("materials")["source_id"]) == sorted(IDS[:3])
    assert len(store.table("properties")) == 7 * 3 and store.staged_runs() == {}


def test_a_resume_of_another_selection_names_the_first_three_runs_of_its_source_and_how_many_more(store, catalog):
    """Five interrupted JANAF runs, each of one other table: a resume of two tables names the first three runs, each
    with its query as recorded, and how many more there are."""
    for table in IDS:
        source = catalog.source("janaf")
        with pytest.raises(RuntimeError, match="connection reset"):
            run_ingest(FailsAfterOnePage(source, HttpClient(source.http), [table], page_size=1), store)
    runs = sorted(store.staged_runs())
    with pytest.raises(StoreError) as refused:
        run_ingest(_janaf(catalog), store, resume=True)
    message = str(refused.value)
    assert "interrupted runs of 'janaf' have another selection: " in message
    for run_id, table in zip(runs[:3], IDS[:3], strict=True):
        row = store.staged_runs()[run_id]
        assert (
            f"{run_id} ({row['query']}; 1 read): give that selection with --resume to continue it, or drop it: "
            f"matreg drop {run_id}" in message
        ), table
    assert runs[3] not in message and message.endswith(f"matreg drop {runs[2]} and 2 more")
