"""matreg's OQMD connector over real HTTP: recorded and assembled formationenergy pages served on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import socket
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import assert_failed_without_trace, visible_tables
from replay import ReplayServer, Reply, Request
from typer.testing import CliRunner

from matreg.catalog import load_catalog
from matreg.cli import app
from matreg.errors import ConfigError, SourceError, clipped
from matreg.fieldmap import load_field_map
from matreg.formula import parse_formula
from matreg.ingest import run_ingest
from matreg.sources import FetchRequest, build_connector
from matreg.store import Store

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from replay_oqmd import FILTER, FIXTURES, PATH, fixture_records, page_reply  # noqa: E402

RECORDED_PAGE = FIXTURES / "docs_formationenergy_AlFe_O_limit2.json"
HELIUM = json.loads((FIXTURES / "qmpy_rester_He_icsd_entries.json").read_text(encoding="utf-8"))
RECORDS = fixture_records()
FIELDS = "delta_e,stability,band_gap,volume,name,entry_id,formationenergy_id,calculation_id,icsd_id,composition,"
FIELDS += "prototype,spacegroup,natoms,unit_cell,sites,calculation_label,duplicate_entry_id"


class OqmdReplay:
    """OQMD's formationenergy endpoint over `records`: the recorded page answers its own query, the rest is paged.

    `composition` selects records by reduced formula, as OQMD does; another filter than the recorded one matches
    nothing; `fail_at(offset, ...)` answers requests of that offset with error statuses first.
    """

    def __init__(self, records: list[dict]) -> None:
        self.records = records
        self.failures: dict[str, list[int]] = {}

    def fail_at(self, offset: int, *statuses: int) -> None:
        self.failures[str(offset)] = list(statuses)

    def __call__(self, request: Request) -> Reply:
        params = {key: values[-1] for key, values in request.query.items()}
        pending = self.failures.get(params.get("offset", "0"))
        if pending:
            return Reply(pending.pop(0), b'{"detail": "scripted"}')
        if request.path != PATH:
            return Reply(404, b'{"detail": "Not found."}')
        if params.get("filter") == FILTER and params.get("limit") == "2" and params.get("offset", "0") == "0":
            return Reply(200, RECORDED_PAGE.read_bytes())  # verbatim: its links.next names http://oqmd.org
        matching = self._matching(params)
        return page_reply(request, len(matching), matching.__getitem__)

    def _matching(self, params: dict[str, str]) -> list[dict]:
        if "composition" in params:
            wanted = parse_formula(params["composition"]).reduced
            return [r for r in self.records if parse_formula(r.get("composition") or r["name"]).reduced == wanted]
        return self.records if params.get("filter") == FILTER else []


@pytest.fixture
def replay():
    return OqmdReplay(RECORDS)


@pytest.fixture
def server(replay):
    with ReplayServer(replay, prefix="/oqmdapi/") as running:
        yield running


@pytest.fixture
def catalog(tmp_path, server):
    path = tmp_path / "catalog.yaml"
    path.write_text(
        "sources:\n"
        "  oqmd:\n"
        "    title: OQMD (local replay)\n"
        "    connector: oqmd\n"
        f"    base_url: {server.url}\n"
        "    provenance: dft\n"
        "    license: CC-BY-4.0\n"
        "    citation: Saal et al. 2013; Kirklin et al. 2015\n"
        "    database_version: v1.6\n"
        "    http: {retries: 3, backoff_s: 0, jitter_s: 0, timeout_s: 5, cache: false}\n",
        encoding="utf-8",
    )
    return load_catalog(path)


def catalog_of(tmp_path: Path, server: ReplayServer, http: str = "{retries: 0}"):
    """A catalog whose oqmd source is `server`, with these HTTP settings (default: without retries)."""
    path = tmp_path / "replay.yaml"
    path.write_text(
        f"sources:\n  oqmd:\n    title: t\n    connector: oqmd\n    base_url: {server.url}\n"
        f"    provenance: dft\n    license: CC-BY-4.0\n    citation: c\n    http: {http}\n",
        encoding="utf-8",
    )
    return load_catalog(path)


def fetch(store: Store, catalog, **request):
    return run_ingest(build_connector("oqmd", catalog, FetchRequest(**request)), store)


def offsets(server: ReplayServer) -> list[str]:
    return [request.query.get("offset", ["0"])[-1] for request in server.requests]


def test_pages_follow_links_next_at_the_real_path_with_the_real_parameters(store, catalog, server):
    report = fetch(store, catalog, filter=FILTER, page_size=2)
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (12, 12, 0)
    assert [request.path for request in server.requests] == [PATH] * 6
    first, second = server.requests[0].query, server.requests[1].query
    assert first == {"fields": [FIELDS], "filter": [FILTER], "limit": ["2"]}
    recorded_next = json.loads(RECORDED_PAGE.read_text())["links"]["next"]
    assert recorded_next.startswith("http://oqmd.org/oqmdapi/formationenergy?")  # followed on the catalog's origin
    assert second == parse_qs(urlsplit(recorded_next).query)  # the recorded page's own links.next, followed
    assert second["icsd"] == ["True"] and offsets(server) == ["0", "2", "4", "6", "8", "10"]
    assert report.unmapped == {"ntypes": 12}  # the recorded query asked for a field the map does not read
    material = store.query("SELECT * FROM materials WHERE source_id = '16974'").iloc[0]
    assert (material["name"], material.formula) == ("NaAlH2CO5", parse_formula("NaAlH2CO5").reduced)
    assert (material.spacegroup_symbol, material.spacegroup_number) == ("Imma", 74)
    assert material.source_url == server.root + "/materials/entry/16974"


def test_values_are_stored_in_canonical_units_with_provenance_and_method(store, catalog):
    fetch(store, catalog, filter=FILTER, page_size=5)
    values = store.query(
        "SELECT m.source_id, m.formula_original, m.nsites, m.citation, m.database_version, m.license, p.* "
        "FROM properties p JOIN materials m USING (record_id) ORDER BY source_id, property"
    )
    gap = values[(values.source_id == "16974") & (values.property == "band_gap")].iloc[0]
    assert (gap.value, gap.unit, gap.original_unit) == (5.255, "eV", "eV")
    delta_e = values[(values.source_id == "16995") & (values.property == "formation_energy_per_atom")].iloc[0]
    assert (delta_e.value, delta_e.unit) == (pytest.approx(-2.49008973723542), "eV/atom")
    volume = values[(values.source_id == "900000065") & (values.property == "volume_per_atom")].iloc[0]
    assert volume.value == pytest.approx(11.0643)  # OQMD_Volume_per_atom/val.csv line 65
    assert (volume.unit, volume.original_value, volume.original_unit) == (
        "angstrom**3/atom",
        pytest.approx(110.643),
        "angstrom**3/cell",
    )
    assert (volume.formula_original, volume.nsites) == ("Eu1 Fe2 O6 Sr1", 10)
    assert set(values.provenance) == {"dft"} and set(values.method) == {"PBE(+U)"}
    assert set(values.citation) == {"Saal et al. 2013; Kirklin et al. 2015"} and set(values.license) == {"CC-BY-4.0"}
    assert set(values.database_version) == {"v1.6"} and len(values) == 2 * 2 + 10 * 3


def test_a_429_with_retry_after_is_honoured_then_succeeds(store, catalog, server):
    server.fail(PATH, 429, retry_after=1)
    report = fetch(store, catalog, filter=FILTER, page_size=20)
    assert report.n_stored == 12 and server.hits(PATH) == 2


def test_json_pages_of_a_second_fetch_come_from_the_http_cache_with_the_same_values(store, catalog, server):
    def cached_fetch():
        request = FetchRequest(filter=FILTER, page_size=5, cache=True)
        return run_ingest(build_connector("oqmd", catalog, request, cache_path=store.cache_path), store)

    first = cached_fetch()
    stored = store.table("properties")
    second = cached_fetch()
    assert server.hits(PATH) == 3 and first.n_stored == second.n_stored == second.n_unchanged == 12
    assert store.table("properties").equals(stored)


def cached_fetch(store: Store, catalog, **options):
    """A fetch of the recorded query, 5 records a page, with the HTTP cache (`options`: refresh_cache, ...)."""
    request = FetchRequest(filter=FILTER, page_size=5, cache=True, **options)
    return run_ingest(build_connector("oqmd", catalog, request, cache_path=store.cache_path), store)


def band_gap_of_16974(store: Store) -> float:
    sql = "SELECT value FROM properties WHERE record_id = 'oqmd:16974' AND property = 'band_gap'"
    return store.query(sql).iloc[0, 0]


def test_a_fetch_the_http_cache_answers_says_so_and_when_the_source_gave_its_pages(store, catalog, replay):
    cached_fetch(store, catalog)
    first_read = store.query("SELECT min(fetched_at), max(fetched_at) FROM materials").iloc[0].tolist()
    replay.records = [record | {"band_gap": 4.0} if record["entry_id"] == 16974 else record for record in RECORDS]
    again = cached_fetch(store, catalog)  # the source changed: the cache still gives what it said then
    assert (again.n_cached_pages, again.n_unchanged, again.n_superseded) == (3, 12, 0)
    oldest, newest = again.cached_read_at
    assert first_read[0] <= oldest <= newest and (newest - first_read[1]).total_seconds() < 5
    assert band_gap_of_16974(store) == 5.255
    refreshed = cached_fetch(store, catalog, refresh_cache=True)  # asks the source again, and keeps its answers
    assert (refreshed.n_cached_pages, refreshed.n_stored - refreshed.n_unchanged) == (0, 1)
    assert band_gap_of_16974(store) == 4.0
    assert cached_fetch(store, catalog).n_cached_pages == 3 and band_gap_of_16974(store) == 4.0


def test_a_page_the_connector_refuses_is_not_given_again_by_the_http_cache(store, catalog, server):
    """A 200 answer that is JSON but no page (an error object while OQMD reindexes) fails the run; the HTTP cache
    kept it and gave it to every later run for a day: the next run asks the source."""
    server.failures[PATH].append(Reply(200, b'{"errors": ["the database is being reindexed"]}'))
    with pytest.raises(SourceError, match=r"^OQMD answered without a 'data' list: .*reindexed") as error:
        cached_fetch(store, catalog)
    assert "cache" not in str(error.value)  # the source's own answer
    assert cached_fetch(store, catalog).n_stored == 12 and server.hits(PATH) == 4  # the error, then three pages
    assert cached_fetch(store, catalog).n_cached_pages == 3 and server.hits(PATH) == 4  # the pages are kept


def test_a_new_database_version_in_the_catalog_is_read_from_the_source_and_written(tmp_path, store, catalog, replay):
    cached_fetch(store, catalog)
    replay.records = [record | {"band_gap": 4.0} if record["entry_id"] == 16974 else record for record in RECORDS]
    source = catalog.sources["oqmd"].model_copy(update={"database_version": "v1.7"})
    newer = catalog.model_copy(update={"sources": {"oqmd": source}})
    report = cached_fetch(store, newer)  # the cache's pages of v1.6 were read before any stored row: none is later
    assert (report.n_cached_pages, report.n_superseded, report.n_stored - report.n_unchanged) == (0, 0, 12)
    assert band_gap_of_16974(store) == 4.0
    assert set(store.query("SELECT database_version FROM materials")["database_version"]) == {"v1.7"}


def test_a_persistent_503_fails_the_run_and_leaves_the_store_unchanged(store, catalog, server):
    fetch(store, catalog, filter=FILTER, page_size=20)
    before = visible_tables(store)
    server.fail(PATH, *[503] * 4)
    with pytest.raises(SourceError, match="HTTP 503"):
        fetch(store, catalog, filter=FILTER, page_size=20)
    assert_failed_without_trace(store, before, "HTTP 503")


def test_an_interrupted_run_resumes_with_exactly_the_records_of_a_clean_run(tmp_path, catalog, server, replay):
    clean = Store(tmp_path / "clean")
    fetch(clean, catalog, filter=FILTER, page_size=2)
    resumed = Store(tmp_path / "resumed")
    replay.fail_at(6, *[503] * 4)  # the 4th page fails after 3 pages were staged
    server.requests.clear()
    with pytest.raises(SourceError, match="HTTP 503"):
        fetch(resumed, catalog, filter=FILTER, page_size=2)
    assert offsets(server) == ["0", "2", "4"] + ["6"] * 4 and resumed.table("materials").empty
    server.requests.clear()
    request = FetchRequest(filter=FILTER, page_size=2)
    report = run_ingest(build_connector("oqmd", catalog, request), resumed, resume=True)
    assert offsets(server) == ["6", "8", "10"]  # the staged pages were not fetched again
    assert report.resumed and report.n_fetched == 12
    for table, columns in (("materials", ["record_id", "formula"]), ("properties", ["record_id", "property", "value"])):
        assert sorted(resumed.table(table)[columns].values.tolist()) == sorted(
            clean.table(table)[columns].values.tolist()
        )
    assert resumed.table("fetch_runs").status.tolist() == ["complete"]


@pytest.mark.parametrize(("commit_every", "commits"), [(1, 3), (4, 2), (1000, 1)])
def test_pages_are_committed_every_n_records_and_what_was_read_before_a_failure_is_committed(
    tmp_path, catalog, server, replay, commit_every, commits
):
    store = Store(tmp_path / "store")
    connector = build_connector("oqmd", catalog, FetchRequest(filter=FILTER, page_size=2))
    replay.fail_at(6, *[503] * 4)  # the 4th page fails after 3 pages were read
    with pytest.raises(SourceError, match="HTTP 503"):
        run_ingest(connector, store, commit_every=commit_every)
    assert store.staged_pages() == commits  # pages 1-3 in commits of `commit_every` records, the last before failing
    server.requests.clear()
    request = FetchRequest(filter=FILTER, page_size=2)
    report = run_ingest(build_connector("oqmd", catalog, request), store, resume=True, commit_every=commit_every)
    assert offsets(server) == ["6", "8", "10"] and report.n_fetched == 12
    clean = Store(tmp_path / "clean")
    fetch(clean, catalog, filter=FILTER, page_size=2)
    assert sorted(store.table("materials")["record_id"]) == sorted(clean.table("materials")["record_id"])
    assert len(store.table("materials")) == 12


def test_pages_are_committed_at_least_every_commit_seconds(tmp_path, catalog, replay, monkeypatch):
    monkeypatch.setattr("matreg.ingest.COMMIT_SECONDS", 0.0)  # every page is due at once
    store = Store(tmp_path / "store")
    replay.fail_at(6, *[503] * 4)
    with pytest.raises(SourceError, match="HTTP 503"):
        fetch(store, catalog, filter=FILTER, page_size=2)
    assert store.staged_pages() == 3


def test_stability_is_stored_as_the_energy_above_the_hull_qmpy_clips_at_zero(store, tmp_path):
    on_hull, above = RECORDS[2] | {"stability": 0.0}, RECORDS[3] | {"stability": 0.125}
    with ReplayServer(OqmdReplay([*RECORDS[:2], on_hull, above]), prefix="/oqmdapi/") as running:
        fetch(store, catalog_of(tmp_path, running), filter=FILTER, page_size=50)
    stored = store.query(
        "SELECT m.source_id, p.value, p.unit FROM properties p JOIN materials m USING (record_id) "
        "WHERE p.property = 'energy_above_hull' ORDER BY p.value"
    ).values.tolist()
    assert stored == [[str(on_hull["entry_id"]), 0.0, "eV/atom"], [str(above["entry_id"]), 0.125, "eV/atom"]]
    assert store.query("SELECT count(*) FROM properties WHERE property = 'hull_distance'").iloc[0, 0] == 0


def test_a_malformed_record_is_quarantined_with_its_reason(store, tmp_path):
    broken = RECORDS[2] | {"natoms": "ten"}
    with ReplayServer(OqmdReplay([*RECORDS[:2], broken, *RECORDS[3:]]), prefix="/oqmdapi/") as running:
        report = fetch(store, catalog_of(tmp_path, running), filter=FILTER, page_size=50)
    assert (report.n_stored, report.n_quarantined) == (11, 1)
    rejected = store.query("SELECT item, reasons, raw FROM quarantine").iloc[0]
    assert rejected["item"] == str(broken["entry_id"])
    assert list(rejected["reasons"]) == [f"OQMD entry {broken['entry_id']}: natoms 'ten' is not a positive integer"]
    assert json.loads(rejected["raw"])["composition"] == broken["composition"]


def test_a_record_its_mapping_cannot_read_is_its_records_row_until_a_fetch_reads_it_valid(store, tmp_path):
    replay = OqmdReplay(list(RECORDS[:4]))
    unreadable = RECORDS[2] | {"composition": "Qq2O3"}  # no such element: the mapping refuses the record whole
    without_id = RECORDS[3] | {"entry_id": None}
    record_id = f"oqmd:{RECORDS[2]['entry_id']}"
    open_rows = "SELECT item, coalesce(record_id, '') FROM open_quarantine ORDER BY item"
    with ReplayServer(replay, prefix="/oqmdapi/") as running:
        catalog = catalog_of(tmp_path, running)
        assert fetch(store, catalog, filter=FILTER, page_size=50).n_stored == 4
        replay.records[2:4] = [unreadable, without_id]
        report = fetch(store, catalog, filter=FILTER, page_size=50)
        assert (report.n_stored, report.n_quarantined) == (2, 2)
        assert store.query(open_rows).values.tolist() == [
            [str(RECORDS[2]["entry_id"]), record_id],  # its record's row: the id reads
            ["None", ""],  # no id: no record named
        ]
        reasons = store.query("SELECT reasons FROM open_quarantine ORDER BY item")["reasons"]
        assert [list(of_row) for of_row in reasons] == [
            ["unparseable formula 'Qq2O3': not elements: Qq0+"],
            ["OQMD record without an entry_id"],
        ]
        shown = store.query("SELECT formula FROM materials WHERE record_id = ?", [record_id])["formula"]
        assert shown.tolist() == [parse_formula(RECORDS[2]["composition"]).reduced]  # its last valid read
        replay.records[2:4] = RECORDS[2:4]
        fetch(store, catalog, filter=FILTER, page_size=50)  # given valid, as stored: written, resolving its row
    assert store.query(open_rows).values.tolist() == [["None", ""]]  # the row without a record stays open
    assert store.query("SELECT count(*) FROM quarantine").iloc[0, 0] == 2  # kept as history


@pytest.mark.parametrize("natoms", [10**25, 2**63])  # 2**63: one past int64, which orjson still reads (uint64)
def test_integers_too_large_for_64_bits_are_quarantined_with_their_digits_and_the_run_goes_on(store, tmp_path, natoms):
    huge_gap = RECORDS[2] | {"band_gap": 10**400}  # orjson refuses the page: the json module reads Python ints
    huge_count = RECORDS[3] | {"natoms": natoms}
    with ReplayServer(OqmdReplay([*RECORDS[:2], huge_gap, huge_count]), prefix="/oqmdapi/") as running:
        report = fetch(store, catalog_of(tmp_path, running), filter=FILTER, page_size=50)
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (4, 3, 2)
    rows = store.query("SELECT item, reasons, raw, record_id FROM quarantine").set_index("item")
    gap = rows.loc[f"{huge_gap['entry_id']}:band_gap"]
    assert list(gap.reasons) == [f"not a finite number: '{str(10**400)[:77]}...'"]  # its digits in the payload
    assert json.loads(gap.raw)["value"] == 10**400 and gap.record_id == f"oqmd:{huge_gap['entry_id']}"
    count = rows.loc[str(huge_count["entry_id"])]
    assert list(count.reasons) == [f"nsites {natoms} is not a whole number of 64 bits"]
    assert json.loads(count.raw)["natoms"] == natoms  # the payload as received, its digits all kept
    stored = store.query("SELECT property, value FROM properties WHERE record_id = ?", [f"oqmd:{huge_gap['entry_id']}"])
    assert dict(stored.values.tolist()) == {
        "formation_energy_per_atom": huge_gap["delta_e"],
        "volume_per_atom": pytest.approx(11.0643),  # the record's other values are stored
    }


def test_entries_whose_ids_json_reads_as_floats_are_quarantined_each_not_merged_into_one(store, tmp_path):
    beyond = [RECORDS[2] | {"entry_id": 2**64 + 1}, RECORDS[3] | {"entry_id": 2**64 + 2}]  # orjson: both 2.0**64
    with ReplayServer(OqmdReplay([*RECORDS[:2], *beyond, *RECORDS[4:]]), prefix="/oqmdapi/") as running:
        report = fetch(store, catalog_of(tmp_path, running), filter=FILTER, page_size=50)
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (12, 10, 2)
    rows = store.query("SELECT reasons, raw, record_id FROM quarantine ORDER BY raw")
    reason = "entry_id 1.8446744073709552e+19 is no integer or text"
    assert [list(reasons) for reasons in rows.reasons] == [[reason], [reason]]
    assert [json.loads(raw)["name"] for raw in rows.raw] == [beyond[0]["name"], beyond[1]["name"]]
    assert rows.record_id.isna().all()
    stored = store.query("SELECT source_id FROM materials").source_id
    assert len(stored) == 10 and not stored.str.contains("e+").any()


def test_a_space_group_or_name_that_is_no_text_quarantines_the_record_with_the_reason(store, tmp_path):
    number_symbol, number_name = RECORDS[2] | {"spacegroup": 62}, RECORDS[3] | {"name": 7}  # were dropped unsaid
    with ReplayServer(OqmdReplay([*RECORDS[:2], number_symbol, number_name]), prefix="/oqmdapi/") as running:
        report = fetch(store, catalog_of(tmp_path, running), filter=FILTER, page_size=50)
    assert (report.n_stored, report.n_quarantined) == (2, 2)
    rejected = store.query("SELECT item, reasons FROM quarantine").set_index("item")["reasons"]
    assert {item: list(reasons) for item, reasons in rejected.items()} == {
        str(number_symbol["entry_id"]): ["spacegroup 62 is not a text"],
        str(number_name["entry_id"]): ["name 7 is not a text"],
    }


def test_a_resumed_run_reports_and_records_the_reasons_of_what_it_quarantined_before(tmp_path):
    broken = RECORDS[2] | {"natoms": "ten"}  # on the first page of three records
    reason = f"OQMD entry {broken['entry_id']}: natoms 'ten' is not a positive integer"
    replay = OqmdReplay([*RECORDS[:2], broken, *RECORDS[3:]])
    store = Store(tmp_path / "store")
    with ReplayServer(replay, prefix="/oqmdapi/") as running:
        catalog = catalog_of(tmp_path, running)  # (no retries)
        replay.fail_at(6, 503)  # the third page, after two were read
        with pytest.raises(SourceError, match="HTTP 503"):
            fetch(store, catalog, filter=FILTER, page_size=3)
        failed = store.query("SELECT quarantine_reasons FROM fetch_runs WHERE status = 'failed'").iloc[0, 0]
        assert json.loads(failed) == {reason: 1}  # the failed run's record says why too
        (staged,) = store.staged_runs().values()  # the reasons are counted from the journal's quarantine rows,
        assert staged["quarantine_reasons"] is None  # not copied into every commit (the journal would grow squared)
        resumed = run_ingest(
            build_connector("oqmd", catalog, FetchRequest(filter=FILTER, page_size=3)), store, resume=True
        )
    assert resumed.resumed and resumed.n_quarantined == 1 and resumed.reasons == {reason: 1}
    recorded = store.query("SELECT quarantine_reasons FROM fetch_runs WHERE status = 'complete'").iloc[0, 0]
    assert json.loads(recorded) == {reason: 1}


class EditedReplay(OqmdReplay):
    """OQMD's answers, each JSON body as `edit` returns it."""

    def __init__(self, records: list[dict], edit) -> None:
        super().__init__(records)
        self.edit = edit

    def __call__(self, request: Request) -> Reply:
        return Reply.json(self.edit(json.loads(super().__call__(request).body)))


@pytest.mark.parametrize(("said", "kept"), [(-1, None), ("many", None), (True, None), (2.5, None), ("12", 12)])
def test_a_total_that_is_no_count_is_kept_as_unknown_and_the_run_goes_on(store, tmp_path, said, kept):
    miscounting = EditedReplay(RECORDS, lambda body: body | {"meta": body["meta"] | {"data_available": said}})
    with ReplayServer(miscounting, prefix="/oqmdapi/") as running:
        report = fetch(store, catalog_of(tmp_path, running), filter=FILTER, page_size=5)
    assert (report.n_fetched, report.n_stored, report.n_available) == (12, 12, kept)
    run = store.query("SELECT status, n_available FROM fetch_runs").iloc[0]
    assert run["status"] == "complete" and (pd.isna(run["n_available"]) if kept is None else run["n_available"] == kept)


@pytest.mark.parametrize("commit_every", [1000, 5], ids=["one commit", "a commit a page"])
def test_a_record_read_on_two_pages_is_counted_once(tmp_path, store, commit_every):
    shifted = [*RECORDS[:5], *RECORDS[4:]]  # the source shifted RECORDS[4] onto the second page as the run paged
    with ReplayServer(OqmdReplay(shifted), prefix="/oqmdapi/") as running:
        connector = build_connector("oqmd", catalog_of(tmp_path, running), FetchRequest(filter=FILTER, page_size=5))
        report = run_ingest(connector, store, commit_every=commit_every)
    stored = store.query("SELECT (SELECT count(*) FROM materials) AS m, (SELECT count(*) FROM properties) AS p")
    assert (report.n_fetched, report.n_stored, stored.m[0], report.n_reread) == (13, 12, 12, 1)
    assert report.n_values == stored.p[0]
    run = store.query("SELECT n_fetched, n_stored, n_values FROM fetch_runs").iloc[0].tolist()
    assert run == [13, 12, stored.p[0]]


@pytest.mark.parametrize(
    "relative",
    [lambda url: f"{url.path}?{url.query}", lambda url: f"formationenergy?{url.query}", lambda url: f"?{url.query}"],
    ids=["from the root", "from the folder", "the query only"],
)
def test_a_relative_next_link_is_followed_from_the_page_it_came_from(store, tmp_path, relative):
    def relative_link(body: dict) -> dict:  # as a proxy or mirror may write it
        link = body["links"]["next"]
        return body | {"links": {"next": relative(urlsplit(link)) if link else None}}

    with ReplayServer(EditedReplay(RECORDS, relative_link), prefix="/oqmdapi/") as running:
        report = fetch(store, catalog_of(tmp_path, running), filter=FILTER, page_size=5)
        assert {request.path for request in running.requests} == {PATH}
    assert (report.status, report.n_fetched, report.n_stored) == ("complete", 12, 12)


def behind(prefix: str, route):
    """OQMD's `route` served under `prefix` by a mirror that passes each request on as OQMD gets it (Host oqmd.org,
    the prefix removed): as OQMD's, its pages' links name http://oqmd.org/oqmdapi/."""

    def serve(request: Request) -> Reply:
        if not request.path.startswith(prefix + "/"):
            return Reply(404, b'{"detail": "Not found."}')
        upstream = dataclasses.replace(
            request,
            path=request.path.removeprefix(prefix),
            raw_path=request.raw_path.removeprefix(prefix),
            headers=request.headers | {"Host": "oqmd.org"},
        )
        return route(upstream)

    return serve


def test_next_links_are_followed_on_a_mirror_under_a_path_prefix(store, tmp_path, replay):
    with ReplayServer(behind("/mirror", replay), prefix="/mirror/oqmdapi/") as mirror:
        report = fetch(store, catalog_of(tmp_path, mirror), filter=FILTER, page_size=2)
    assert [request.path for request in mirror.requests] == ["/mirror" + PATH] * 6
    assert offsets(mirror) == ["0", "2", "4", "6", "8", "10"]  # the recorded page's link, then the assembled ones
    assert (report.status, report.n_fetched, report.n_stored, report.n_available) == ("complete", 12, 12, 12)
    assert len(store.table("materials")) == 12


def test_formulas_become_one_composition_query_each_followed_in_turn(store, catalog, server):
    report = fetch(store, catalog, formulas=["Fe2Nb2O5", "Al5BO9"], page_size=10)
    assert [request.query["composition"] for request in server.requests] == [["Fe2Nb2O5"], ["Al5BO9"]]
    assert "filter" not in server.requests[0].query and report.n_stored == 2
    assert report.n_available == 2  # the two queries' totals, one record each
    assert sorted(store.query("SELECT formula FROM materials").formula) == ["Al5BO9", "Nb2Fe2O5"]


def test_formulas_and_elements_select_the_records_of_either_each_narrowed_by_the_filter(store, catalog, server):
    report = fetch(store, catalog, formulas=["Fe2Nb2O5"], elements=["Al", "B", "O"], filter="stability<0.5")
    assert [(request.query.get("composition"), request.query["filter"]) for request in server.requests] == [
        (["Fe2Nb2O5"], ["stability<0.5"]),
        (None, ["element_set=Al,B,O AND ntypes=3 AND ( stability<0.5 )"]),
    ]
    assert report.n_stored == 1  # the replay evaluates no filter but its recorded one: the element query finds none


def test_a_run_resumed_at_its_next_query_notes_no_change_of_the_sources_count(tmp_path, store, replay):
    """A run of two queries, stopped once the first was committed, resumed at the second: its count adds the second
    query's (1, then 2), which is no change of the source's while the run was interrupted."""
    failing = [True]

    def route(request: Request) -> Reply:
        if failing[0] and request.query.get("composition") == ["Al5BO9"]:
            return Reply(503, b'{"detail": "scripted"}')
        return replay(request)

    request = FetchRequest(formulas=["Fe2Nb2O5", "Al5BO9"], page_size=10)
    with ReplayServer(route, prefix="/oqmdapi/") as server:
        catalog = catalog_of(tmp_path, server)
        with pytest.raises(SourceError, match="HTTP 503"):
            run_ingest(build_connector("oqmd", catalog, request), store, commit_every=1)
        (staged,) = store.staged_runs().values()
        assert staged["n_available"] == 1 and json.loads(staged["cursor"])["request"] is None
        failing[0] = False
        report = run_ingest(build_connector("oqmd", catalog, request), store, resume=True)
    assert report.resumed and (report.n_stored, report.n_available, report.available_counts) == (2, 2, None)


def test_a_composition_named_twice_is_asked_for_once(store, catalog, server):
    report = fetch(store, catalog, formulas=["Fe2Nb2O5", "Nb2Fe2O5", "Fe2Nb2O5"])
    assert [request.query["composition"] for request in server.requests] == [["Fe2Nb2O5"]] and report.n_fetched == 1


def test_a_formula_of_exactly_the_element_set_is_left_to_the_element_query(store, catalog, server):
    fetch(store, catalog, formulas=["Al5BO9", "Fe2Nb2O5"], elements=["O", "B", "Al"])
    assert [request.query.get("composition") for request in server.requests] == [["Fe2Nb2O5"], None]


def test_elements_and_a_native_filter_are_combined_in_oqmds_filter_language(store, catalog, server):
    fetch(store, catalog, elements=["Al", "O"], filter="stability<0.1")
    assert server.requests[0].query["filter"] == ["element_set=Al,O AND ntypes=2 AND ( stability<0.1 )"]
    assert server.requests[0].query["limit"] == ["50"]


@pytest.mark.parametrize(
    ("request_options", "message"),
    [
        ({"ids": ["16974"]}, "oqmd cannot use record ids: OQMD's formationenergy API cannot select entries by id"),
        ({"filter": FILTER, "all_temperatures": True}, "oqmd cannot use --all-temperatures: only janaf reads it"),
        ({}, "nothing asked of OQMD"),
    ],
)
def test_requests_oqmd_cannot_answer_are_refused(catalog, request_options, message):
    with pytest.raises(ConfigError, match=message):
        build_connector("oqmd", catalog, FetchRequest(**request_options))


def test_real_unit_cell_and_sites_become_a_pymatgen_structure(catalog):
    from pymatgen.core import Structure

    connector = build_connector("oqmd", catalog, FetchRequest(everything=True))
    record = connector.to_record(HELIUM[2])  # entry 8085, ICSD 43426: two He sites
    structure = Structure.from_dict(json.loads(record.structure))
    assert structure.lattice.matrix.tolist() == HELIUM[2]["unit_cell"]
    assert structure.frac_coords.tolist() == [[0.333, 0.667, 0.25], [0.667, 0.333, 0.75]]
    assert (record.formula, record.nsites, record.source_id, record.notes) == ("He2", 2, "8085", "ICSD 43426")
    assert record.values == [] and record.unmapped == []


@pytest.mark.parametrize(
    ("symbol", "number"),
    [("Imma", 74), ("P21/c", 14), ("P21", 4), ("P21/m", 11), ("Cmca", 64), ("P63/mmc", 194), ("P3121", 152)],
)
def test_space_group_symbols_as_qmpy_writes_them_have_their_numbers(catalog, symbol, number):
    connector = build_connector("oqmd", catalog, FetchRequest(everything=True))
    record = connector.to_record(HELIUM[2] | {"spacegroup": symbol})
    assert (record.spacegroup_symbol, record.spacegroup_number) == (symbol, number)


@pytest.mark.parametrize("entry", [True, "4.0"])
def test_a_unit_cell_entry_that_is_no_number_is_a_record_error_not_read_as_one(catalog, entry):
    from matreg.errors import RecordError

    connector = build_connector("oqmd", catalog, FetchRequest(everything=True))
    unit_cell = [[entry, *HELIUM[2]["unit_cell"][0][1:]], *HELIUM[2]["unit_cell"][1:]]
    with pytest.raises(
        RecordError, match=f"^OQMD entry 8085: structure: lattice entry {re.escape(repr(entry))} is not a number"
    ):
        connector.to_record(HELIUM[2] | {"unit_cell": unit_cell})


def test_entries_with_an_empty_id_are_quarantined_each_not_merged_into_one(store, tmp_path):
    empty = [RECORDS[2] | {"entry_id": ""}, RECORDS[3] | {"entry_id": " "}]  # (stored as 'oqmd:', the first replaced)
    with ReplayServer(OqmdReplay([*RECORDS[:2], *empty, *RECORDS[4:]]), prefix="/oqmdapi/") as running:
        report = fetch(store, catalog_of(tmp_path, running), filter=FILTER, page_size=50)
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (12, 10, 2)
    rows = store.query("SELECT reasons, raw FROM quarantine ORDER BY raw")
    assert sorted(list(reasons) for reasons in rows.reasons) == [
        ["entry_id ' ' is empty: no id"],
        ["entry_id '' is empty: no id"],
    ]
    assert not store.query("SELECT * FROM materials WHERE source_id = ''").shape[0]


def test_an_unreadable_site_is_a_record_error(catalog):
    from matreg.errors import RecordError

    connector = build_connector("oqmd", catalog, FetchRequest(everything=True))
    with pytest.raises(RecordError, match=r"site 'He @ 0 0' is not '<element> @ x y z'"):
        connector.to_record(HELIUM[0] | {"sites": ["He @ 0 0"]})


def test_the_field_list_is_the_field_maps():
    field_map = load_field_map("oqmd")
    assert FIELDS.split(",") == [*field_map.fields, *field_map.other_fields]


def _editing(replay: OqmdReplay, offset: int, edit) -> callable:
    """The replay, with the page at `offset` changed by `edit(body)` (the page's URL as second argument)."""

    def route(request: Request) -> Reply:
        reply = replay(request)
        if request.query.get("offset", ["0"])[-1] != str(offset):
            return reply
        body = json.loads(reply.body)
        edit(body, f"http://{request.headers['Host']}{request.raw_path}")
        return Reply.json(body)

    return route


def fetch_command(tmp_path, server, page_size: int, http: str = "{retries: 0}") -> list[str]:
    """`matreg fetch oqmd` of the test filter from `server`, through a catalog written for it (`catalog_of`)."""
    catalog_of(tmp_path, server, http)
    catalog = str(tmp_path / "replay.yaml")
    return ["fetch", "oqmd", "--filter", FILTER, "--page-size", str(page_size), "--catalog", catalog]


def test_a_run_that_stops_at_an_empty_page_says_it_read_fewer_records_than_the_source_has(tmp_path, replay):
    def empty(body, url):
        body["data"] = []  # its next link kept: sources keep linking past their last record, so the run ends here

    with ReplayServer(_editing(replay, 4, empty), prefix="/oqmdapi/") as server:
        arguments = fetch_command(tmp_path, server, page_size=2)
        result = CliRunner().invoke(app, [*arguments, "--store", str(tmp_path / "s")])
        assert offsets(server) == ["0", "2", "4"]
        assert "note: the source said 12 records match; it sent 4" in result.stdout
        limited = CliRunner().invoke(app, [*arguments, "--store", str(tmp_path / "t"), "--limit", "3"])
        assert "note:" not in limited.stdout  # it stopped where it was asked to


def test_a_page_that_repeats_an_earlier_one_is_noted_as_records_the_source_did_not_send(tmp_path, replay):
    def repeat_first(body, url):
        body["data"] = RECORDS[:4]  # the first page's records again, its next link kept

    with ReplayServer(_editing(replay, 4, repeat_first), prefix="/oqmdapi/") as server:
        arguments = fetch_command(tmp_path, server, page_size=4)
        result = CliRunner().invoke(app, [*arguments, "--store", str(tmp_path / "s")])
        assert offsets(server) == ["0", "4", "8"]
    assert result.exit_code == 0, result.output
    assert "oqmd: read 12 (4 read again: of each record, the last read kept), 8 valid records" in result.stdout
    assert "note: the source said 12 records match; it sent 8 distinct records of 12 reads" in result.stdout


def test_a_next_link_back_to_a_page_read_before_fails_the_run_instead_of_paging_forever(tmp_path, replay, store):
    def back_to_start(body, url):
        body["links"]["next"] = url.replace("offset=4", "offset=2")

    with ReplayServer(_editing(replay, 4, back_to_start), prefix="/oqmdapi/") as server:
        with pytest.raises(SourceError, match="the source's pagination loops: it leads back to GET .*offset=2"):
            fetch(store, catalog_of(tmp_path, server), filter=FILTER, page_size=2)
    assert offsets(server) == ["0", "2", "4"]


# Two formation energies of one entry, as OQMD lists them (one row per calculation of its standard fit). No recorded
# page has two: the second row is the recorded page's entry 16974 with another calculation (ids and values made up).
STANDARD = {"calculation_id": 77301, "calculation_label": "standard", "duplicate_entry_id": 16974}
STATIC = {"calculation_id": 1143252, "calculation_label": "static", "duplicate_entry_id": 16974, "delta_e": -2.1}


def stored_entry(store: Store, entry_id: int) -> tuple[dict[str, float], str]:
    """The stored values of an OQMD entry by property, and its notes."""
    values = store.query(
        "SELECT property, value FROM properties WHERE record_id = ?", [f"oqmd:{entry_id}"]
    ).values.tolist()
    notes = store.query("SELECT notes FROM materials WHERE record_id = ?", [f"oqmd:{entry_id}"]).notes.tolist()
    return dict(values), notes[0]


def test_a_second_calculation_of_an_entry_on_its_page_replaces_the_first_whole_and_is_counted(tmp_path, store):
    def second_calculation(body, url):  # the recorded page, its first entry given by two calculations
        first = body["data"][0] | STANDARD
        body["data"][:1] = [first, {k: v for k, v in first.items() if k != "band_gap"} | STATIC]

    with ReplayServer(_editing(OqmdReplay(RECORDS), 0, second_calculation), prefix="/oqmdapi/") as server:
        report = fetch(store, catalog_of(tmp_path, server), filter=FILTER, page_size=2)
    assert (report.n_fetched, report.n_stored, report.n_reread) == (13, 12, 1)
    values, notes = stored_entry(store, 16974)
    assert values == {"formation_energy_per_atom": -2.1}  # the static calculation's, without the standard's band gap
    assert notes == "calculation 1143252 (static)"
    assert report.n_values == len(store.table("properties"))


def test_a_resumed_run_keeps_the_count_of_records_read_again_before_it_stopped(tmp_path, store):
    def second_calculation(body, url):  # the first entry given by two calculations on the first page
        first = body["data"][0] | STANDARD
        body["data"][:1] = [first, {k: v for k, v in first.items() if k != "band_gap"} | STATIC]

    replay = OqmdReplay(RECORDS)
    replay.fail_at(6, 503)  # the 4th page fails (no retries) after 3 pages were staged
    with ReplayServer(_editing(replay, 0, second_calculation), prefix="/oqmdapi/") as server:
        with pytest.raises(SourceError, match="HTTP 503"):
            fetch(store, catalog_of(tmp_path, server), filter=FILTER, page_size=2)
        request = FetchRequest(filter=FILTER, page_size=2)
        report = run_ingest(build_connector("oqmd", catalog_of(tmp_path, server), request), store, resume=True)
    assert (report.n_fetched, report.n_stored, report.n_reread, report.n_distinct) == (13, 12, 1, 12)
    assert store.query("SELECT n_fetched, n_reread FROM fetch_runs").values.tolist() == [[13, 1]]


def test_a_second_calculation_of_an_entry_on_a_later_page_is_kept_and_the_summary_says_so(tmp_path, store):
    first = RECORDS[0] | STANDARD  # entry 16974 of the recorded page, on the first page of five records
    later = RECORDS[0] | STATIC | {"band_gap": 5.1}  # on the third
    with ReplayServer(OqmdReplay([first, *RECORDS[1:], later]), prefix="/oqmdapi/") as server:
        result = CliRunner().invoke(app, [*fetch_command(tmp_path, server, page_size=5), "--store", str(store.root)])
        assert offsets(server) == ["0", "5", "10"]
    assert result.exit_code == 0, result.output
    assert "oqmd: read 13 (1 read again: of each record, the last read kept), 12 valid records" in result.stdout
    assert "note: the source said 13 records match; it sent 12 distinct records of 13 reads" in result.stdout  # rows
    assert stored_entry(store, 16974) == (
        {"formation_energy_per_atom": -2.1, "band_gap": 5.1},
        "calculation 1143252 (static)",
    )


@pytest.mark.parametrize(
    ("given", "notes"),
    [
        ({}, "ICSD 43426"),
        (STANDARD | {"duplicate_entry_id": 8085}, "ICSD 43426; calculation 77301 (standard)"),
        (
            {"calculation_label": "static", "duplicate_entry_id": 8084},
            "ICSD 43426; calculation static; duplicate of entry 8084",
        ),
        ({"calculation_id": 77301, "calculation_label": None}, "ICSD 43426; calculation 77301"),
    ],
    ids=["none", "of itself", "of another", "no label"],
)
def test_notes_name_the_calculation_and_the_entry_a_duplicate_duplicates(catalog, given, notes):
    connector = build_connector("oqmd", catalog, FetchRequest(everything=True))
    record = connector.to_record(HELIUM[2] | given)  # entry 8085
    assert (record.source_id, record.notes) == ("8085", notes)


def matreg_at(tmp_path: Path):
    """`matreg ...` in-process on the store `tmp_path/s`."""
    return lambda *arguments: CliRunner().invoke(app, [*arguments, "--store", str(tmp_path / "s")])


def test_a_page_that_fails_is_named_by_its_offset_on_stderr_and_in_its_run_record(
    tmp_path, replay, server, retry_waits
):
    """A URL's query was cut after its first 200 characters, OQMD's list of fields: the retry warnings, the error and
    `fetch_runs.error` showed no page's offset, so which request failed could not be told. A long query keeps its
    end, where the paging parameters are."""
    replay.fail_at(6, 503, 503)  # the 3rd page of 3 records, answering 503 to its request and its one retry
    matreg = matreg_at(tmp_path)
    failed = matreg(
        *fetch_command(tmp_path, server, page_size=3, http="{retries: 1, backoff_s: 2, jitter_s: 0}"), "--no-progress"
    )
    assert failed.exit_code == 75 and retry_waits == [2]
    page = "&filter=element_set%3D%28Al-Fe%29%2CO&limit=3&offset=6"
    warning, error = failed.stderr.splitlines()
    assert warning.startswith(f"warning: HTTP 503 from {server.url}formationenergy?fields=delta_e%2C")
    assert warning.endswith(f"duplicate_entry_id{page}: retry 1 of 1 in 2 s (backoff)") and len(warning) < 330
    assert warning.count("...") == 1  # (the query's middle cut out)
    assert (
        error.startswith("error: HTTP 503: scripted (from ")
        and f"duplicate_entry_id{page}, after 1 retry); run " in error
    )
    recorded = matreg("sql", "SELECT error FROM fetch_runs", "--format", "csv").stdout
    assert recorded.endswith(f'duplicate_entry_id{page}, after 1 retry)"\n')


def test_a_page_no_server_answers_is_named_with_the_retries_spent_and_without_urllib3s_class_names(
    tmp_path, replay, server, retry_waits
):
    """A request that got no answer failed the run with urllib3's text: its connection pool's and connection's
    classes ('_TimedPool(host=..., port=...): Max retries exceeded with url: ... (Caused by NewConnectionError(...))'),
    no word of the retries spent. It says what failed, the page's URL and the retries, as a status retried does."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        closed = f"http://127.0.0.1:{listener.getsockname()[1]}/oqmdapi/"  # (refuses connections once closed)
    matreg = matreg_at(tmp_path)
    arguments = fetch_command(tmp_path, server, page_size=3, http="{retries: 2, backoff_s: 1, jitter_s: 0}")
    failed = matreg(*arguments, "--base-url", closed, "--no-progress")
    assert failed.exit_code == 75 and retry_waits == [1, 2]
    *warnings, error = failed.stderr.splitlines()
    refused = "Failed to establish a new connection: [Errno 111] Connection refused"
    assert [warning.split(") from ")[0] for warning in warnings] == [f"warning: no answer ({refused}"] * 2
    assert error.startswith(f"error: GET {closed}formationenergy failed: ")
    assert "Failed to establish a new connection: [Errno 111] Connection refused (from " in error
    assert "%2Cduplicate_entry_id&filter=element_set%3D%28Al-Fe%29%2CO&limit=3, after 2 retries); " in error
    assert not re.search("Timed|Max retries|Caused by", failed.stderr)


def test_a_whole_query_read_again_at_another_page_size_names_the_stored_records_it_no_longer_returns(
    tmp_path, replay, server
):
    """The page size says how a query is read, not what it selects: a fetch of the same selection at another page
    size said nothing of the stored records the source no longer returned."""
    matreg, arguments = matreg_at(tmp_path), fetch_command(tmp_path, server, page_size=4)
    assert matreg(*arguments, "--no-progress").exit_code == 0
    replay.records = RECORDS[:8]
    again = matreg(*arguments[:4], *arguments[6:], "--no-progress")  # OQMD's default page size, 50
    gone = [f"oqmd:{record['entry_id']}" for record in RECORDS[8:]]
    assert again.exit_code == 0 and "read 8, 8 valid records" in again.stdout
    assert f"not in this run, stored from this query (the source may have removed them; nothing was withdrawn): " \
        f"4 records: {', '.join(gone)}" in again.stdout  # fmt: skip
    stored = Store(tmp_path / "s").query("SELECT not_read_again FROM fetch_runs ORDER BY finished_at DESC LIMIT 1")
    assert list(stored.iloc[0, 0]) == gone
    assert f"OQMD formationenergy: filter={FILTER}: 4 records: {', '.join(gone)}  [run " in matreg("status").stdout
    replay.records = RECORDS
    assert "not in this run" not in matreg(*arguments, "--no-progress").stdout  # read again at page size 4
    assert "not read again" not in matreg("status").stdout


def test_an_interrupted_run_is_listed_with_the_options_that_resume_it_and_dropped_by_its_id(tmp_path, replay, server):
    """An interrupted run is continued only with the page size, --limit and server it was read with: status names
    them, as does a --resume that finds no run of its own options but one of its selection; `matreg drop` drops it."""
    matreg, arguments = matreg_at(tmp_path), fetch_command(tmp_path, server, page_size=4)
    replay.fail_at(8, 503)  # the third page fails (no retries) after two pages were staged
    mirror = server.url.replace("127.0.0.1", "localhost")  # another name for it than the catalog gives
    failed = matreg(*arguments, "--base-url", mirror, "--commit-every", "1", "--no-progress")
    assert failed.exit_code == 75, failed.output
    (run_id,) = Store(tmp_path / "s").staged_runs()
    status = matreg("status", "--catalog", str(tmp_path / "replay.yaml")).stdout  # (the catalog the fetch read)
    assert f"  {run_id}  OQMD formationenergy: filter={FILTER} (8 read)\n" in status
    store = shlex.join(["--store", str(tmp_path / "s")])  # (as given; `matreg drop` takes no catalog)
    where = f"{store} {shlex.join(['--catalog', str(tmp_path / 'replay.yaml')])}"
    assert f"    the same fetch (its options: {where} --page-size 4 --base-url {mirror}) with --resume continues " \
        f"it; the same fetch without --resume, or matreg drop {run_id} {store}, drops it\n" in status  # fmt: skip
    default = matreg(*arguments[:4], *arguments[6:], "--resume", "--no-progress")  # OQMD's default page size, 50
    assert default.exit_code == 1
    assert default.stderr.startswith("error: nothing to resume: no interrupted run of 'oqmd' with these parameters")
    assert default.stderr.endswith(
        f"; an interrupted run of this selection was read with other options: {run_id} (8 read): give "
        f"--page-size 4 --base-url {mirror} with --resume to continue it, or drop it: matreg drop {run_id} {store}\n"
    )
    dropped = matreg("drop", run_id)
    assert dropped.exit_code == 0, dropped.output
    assert dropped.stdout == f"dropped the interrupted run {run_id}: OQMD formationenergy: filter={FILTER} " \
        "(8 read; its staged pages deleted)\n"  # fmt: skip
    assert Store(tmp_path / "s").staged_runs() == {} and not list((tmp_path / "s" / "staging").iterdir())
    assert "interrupted runs" not in matreg("status").stdout
    again = matreg("drop", run_id)
    assert again.exit_code == 2 and again.stderr == f"error: no interrupted run {run_id} in the store\n"


def as_published_by_a_matreg_before_selections(store: Path) -> None:
    """Make the store's fetch_runs rows as a matreg before `fetch_runs.selection` and `options` wrote them."""
    for path in (store / "data").glob("c*/**/fetch_runs.parquet"):
        pq.write_table(pq.read_table(path).drop_columns(["selection", "options"]), path)
    (store / ".views.sha256").write_text("written by an older matreg", encoding="utf-8")


def test_runs_of_a_matreg_before_selections_are_of_the_query_read_again_at_another_page_size(tmp_path, replay, server):
    """A run an older matreg published (no selection recorded) is of the same query as a later run at another page
    size: the fetch names the records it no longer returns, and status forgets them once a run reads them again."""
    matreg, arguments = matreg_at(tmp_path), fetch_command(tmp_path, server, page_size=4)
    assert matreg(*arguments, "--no-progress").exit_code == 0
    replay.records = RECORDS[:8]
    assert "4 records" in matreg(*arguments, "--no-progress").stdout  # not in this run: the last 4
    as_published_by_a_matreg_before_selections(tmp_path / "s")
    assert Store(tmp_path / "s").query("SELECT selection FROM fetch_runs")["selection"].isna().all()
    gone = ", ".join(f"oqmd:{record['entry_id']}" for record in RECORDS[8:])
    default = [*arguments[:4], *arguments[6:], "--no-progress"]  # OQMD's default page size, 50
    again = matreg(*default)
    assert again.exit_code == 0 and f"nothing was withdrawn): 4 records: {gone}" in again.stdout
    replay.records = RECORDS
    assert "not in this run" not in matreg(*default).stdout
    status = matreg("status")
    assert status.exit_code == 0 and "not read again" not in status.stdout


def test_a_resume_without_the_limit_of_the_interrupted_run_names_it_with_its_options(tmp_path, replay, server):
    """--limit is an option a resume gives again, as the page size is: a --resume without it names the run."""
    matreg, arguments = matreg_at(tmp_path), fetch_command(tmp_path, server, page_size=4)
    replay.fail_at(8, 503)  # the third page fails (no retries) after two pages were staged
    failed = matreg(*arguments, "--limit", "10", "--commit-every", "1", "--no-progress")
    assert failed.exit_code == 75, failed.output
    (run_id,) = Store(tmp_path / "s").staged_runs()
    resumed = matreg(*arguments, "--resume", "--no-progress")
    assert resumed.exit_code == 1
    assert resumed.stderr.endswith(
        f"; an interrupted run of this selection was read with other options: {run_id} (8 read): give "
        f"--page-size 4 --limit 10 with --resume to continue it, or drop it: matreg drop {run_id} --store "
        f"{tmp_path / 's'}\n"
    ), resumed.stderr
    assert matreg(*arguments, "--limit", "10", "--resume", "--no-progress").exit_code == 0


def test_every_volume_per_atom_is_the_cells_volume_over_its_atoms_correctly_rounded(store, catalog):
    """A volume per cell was multiplied by the atom count to the power -1: 110.643 A^3 over 10 atoms was stored as
    11.064300000000001, not 11.0643."""
    fetch(store, catalog, filter=FILTER, page_size=5)
    volumes = store.query(
        "SELECT p.value, p.original_value, m.nsites FROM properties p JOIN materials m USING (record_id) "
        "WHERE property = 'volume_per_atom'"
    )
    assert len(volumes) == 10 and (volumes["value"] == volumes["original_value"] / volumes["nsites"]).all(), volumes


DRIFTED = ("delta_e", "band_gap")  # mapped fields as if OQMD had renamed or dropped them


def without(records: list[dict], fields: tuple[str, ...]) -> list[dict]:
    return [{key: value for key, value in record.items() if key not in fields} for record in records]


def stored_values(store: Store) -> list[list]:
    return store.query("SELECT record_id, property, value FROM properties ORDER BY ALL").values.tolist()


def properties_stored(store: Store) -> dict[str, int]:
    return dict(store.query("SELECT property, count(*) FROM properties GROUP BY ALL").values.tolist())


def last_run(store: Store) -> pd.Series:
    return store.query("SELECT status, values_removed, error FROM fetch_runs ORDER BY finished_at DESC LIMIT 1").iloc[0]


def test_a_refetch_whose_records_carry_no_mapped_field_is_not_published_then_published_when_allowed(
    tmp_path, replay, server
):
    """A source that dropped (or renamed) mapped fields made a re-fetch publish its records without their values: the
    stored band gaps and formation energies vanished, exit 0, the report saying only that no record carried the
    fields. The run is refused before it is published, kept staged, and published with --allow-dropped-fields."""
    matreg, arguments = matreg_at(tmp_path), [*fetch_command(tmp_path, server, page_size=5), "--no-progress"]
    assert matreg(*arguments).exit_code == 0
    store = Store(tmp_path / "s")
    before = stored_values(store)
    assert properties_stored(store) == {"band_gap": 12, "formation_energy_per_atom": 12, "volume_per_atom": 10}
    replay.records = without(RECORDS, DRIFTED)
    refused = matreg(*arguments)
    assert refused.exit_code == 1, refused.output
    (run_id,) = store.staged_runs()
    error = (
        f"run {run_id} not published: no record of the 12 it read carried the mapped fields band_gap (band_gap), "
        "delta_e (formation_energy_per_atom) (renamed or dropped by the source?), and its write would remove 20 stored "
        "values of 10 records (band_gap 10, formation_energy_per_atom 10); the store is unchanged and the run stays "
        f"staged. Fix the field map ({REPO / 'connectors' / 'oqmd.yaml'}) and fetch again, or, if the source dropped "
        "these fields, publish the run as it is: the same command with --resume --allow-dropped-fields"
    )
    where = shlex.join(["--store", str(tmp_path / "s"), "--catalog", arguments[7]])  # (as the fetch was given them)
    given = f"{shlex.join(arguments[2:4])} {where} {shlex.join(arguments[4:6])}"  # (as status says them)
    command = f"matreg fetch oqmd {given} --resume --allow-dropped-fields"
    assert refused.stderr == f"error: {error}: {command}\n", refused.stderr
    assert stored_values(store) == before
    assert last_run(store)["status"] == "failed"
    assert f"  oqmd {run_id}: {error}\n" in matreg("status").stdout
    published = matreg(*arguments, "--resume", "--allow-dropped-fields")
    assert published.exit_code == 0, published.output
    assert (
        "  removed 20 stored value(s) of 10 record(s), which no read of this run gives again: band_gap 10, "
        "formation_energy_per_atom 10\n"
    ) in published.stdout
    drift = "mapped fields no record carried (12 records; renamed or dropped?): band_gap, delta_e, stability\n"
    assert drift in published.stdout
    # the recorded page's two entries, left with no value, were quarantined: their last valid reads stay
    assert properties_stored(store) == {"band_gap": 2, "formation_energy_per_atom": 2, "volume_per_atom": 10}
    assert json.loads(last_run(store)["values_removed"]) == {"band_gap": 10, "formation_energy_per_atom": 10}
    assert not store.staged_runs()


def test_a_refetch_where_one_record_lost_a_value_others_still_carry_is_published_counting_the_value_removed(
    tmp_path, replay, server
):
    """A value the source no longer gives for one record, its field still carried by others, is no drift: the run is
    published, and its report and run record count the stored value it removed (they said nothing of it)."""
    matreg, arguments = matreg_at(tmp_path), [*fetch_command(tmp_path, server, page_size=5), "--no-progress"]
    assert matreg(*arguments).exit_code == 0
    replay.records = [without(RECORDS[:1], ("band_gap",))[0], *RECORDS[1:]]
    again = matreg(*arguments)
    assert again.exit_code == 0, again.output
    gap = f"oqmd:{RECORDS[0]['entry_id']}"
    removed = "  removed 1 stored value(s) of 1 record(s), which no read of this run gives again: band_gap 1\n"
    assert removed in again.stdout
    assert "mapped fields no record carried (12 records; renamed or dropped?): stability\n" in again.stdout
    store = Store(tmp_path / "s")
    assert json.loads(last_run(store)["values_removed"]) == {"band_gap": 1}
    assert [gap, "band_gap"] not in [row[:2] for row in stored_values(store)]
    unchanged = matreg(*arguments)  # the same answers again: nothing removed
    assert unchanged.exit_code == 0 and "removed" not in unchanged.stdout
    assert json.loads(last_run(store)["values_removed"]) == {}


def test_status_says_what_values_a_sources_latest_run_removed_and_the_refusal_it_was_resumed_from(
    tmp_path, replay, server
):
    """`fetch_runs.values_removed` was seen with `matreg sql` alone, and a run refused for its dropped fields, then
    published with --resume --allow-dropped-fields, showed in status as any published run, its refusal gone: below
    its table of runs, status says the stored values each latest run removed, by property (none where it removed
    none), and the failure it was resumed from."""
    matreg, arguments = matreg_at(tmp_path), [*fetch_command(tmp_path, server, page_size=5), "--no-progress"]
    removing = "latest runs that removed stored values (of the records each wrote, values no read of it gave again)"
    assert matreg(*arguments).exit_code == 0
    assert removing not in matreg("status").stdout  # (a first fetch: '{}')
    replay.records = without(RECORDS, DRIFTED)
    assert matreg(*arguments).exit_code == 1  # refused, staged
    store = Store(tmp_path / "s")
    (run_id,) = store.staged_runs()
    assert matreg(*arguments, "--resume", "--allow-dropped-fields").exit_code == 0
    status = matreg("status").stdout
    assert f"{removing}, by property:\n  oqmd {run_id}: band_gap 10, formation_energy_per_atom 10\n" in status
    ((failed_at, error),) = store.query(
        "SELECT strftime(failed_at, '%Y-%m-%d %H:%M:%S'), error FROM run_failures"
    ).values.tolist()
    assert error.startswith(f"run {run_id} not published: no record of ") and "carried the mapped fields" in error
    assert f"  oqmd {run_id}: failed once before, the last at {failed_at} UTC: {clipped(error, 600)}\n" in status
    assert matreg(*arguments).exit_code == 0  # the same answers again: nothing removed, never failed
    status = matreg("status").stdout
    assert removing not in status and "failed once before" not in status


SECOND = "%Y-%m-%d %H:%M:%S"  # a time as `matreg status` shows it


def latest_oqmd_run(matreg) -> str:
    """The row of `matreg status`'s table of latest runs (the oqmd run's, the only one), its cells one space apart."""
    table = matreg("status").stdout.split("only a published run stored its valid records):\n")[1].split("\n\n")[0]
    _, row = table.splitlines()
    return " ".join(row.split())


def run_times(store: Store, run_id: str) -> list:
    """The run's status, finished_at and published_at, as its fetch_runs row has them."""
    sql = "SELECT status, finished_at, published_at FROM fetch_runs WHERE run_id = ?"
    return store.query(sql, [run_id]).values.tolist()[0]


def test_a_run_published_by_a_resume_after_its_refusal_keeps_when_it_was_read_and_says_when_it_was_published(
    tmp_path, replay, server
):
    """A run refused for its dropped fields has every page staged: published by --resume --allow-dropped-fields, its
    fetch_runs row keeps when its last page was read (`finished_at`, which quarantine rows are resolved by), and
    nothing said when its rows entered the store: status showed it ended before it failed, and published. It has
    `published_at`, and status shows it in the run's status; a run published as its last page was read has its
    `published_at` too (status shows no time), and a failed run has none."""
    matreg, arguments = matreg_at(tmp_path), [*fetch_command(tmp_path, server, page_size=5), "--no-progress"]
    assert matreg(*arguments).exit_code == 0
    store = Store(tmp_path / "s")
    (first,) = store.query("SELECT run_id FROM fetch_runs")["run_id"]
    _, read, published = run_times(store, first)
    assert read <= published <= pd.Timestamp.now("UTC")
    assert latest_oqmd_run(matreg).startswith(f"oqmd {first} complete (published) {read:{SECOND}} 12 12 0 ")
    replay.records = without(RECORDS, DRIFTED)
    assert matreg(*arguments).exit_code == 1  # refused, staged
    (run_id,) = store.staged_runs()
    status, failed_at, never = run_times(store, run_id)
    assert status == "failed" and pd.isna(never)
    assert latest_oqmd_run(matreg).startswith(f"oqmd {run_id} failed (nothing published) {failed_at:{SECOND}} ")
    resumed_at = pd.Timestamp.now("UTC")
    assert matreg(*arguments, "--resume", "--allow-dropped-fields").exit_code == 0
    status, read, published = run_times(store, run_id)
    assert status == "complete" and read < failed_at < resumed_at <= published <= pd.Timestamp.now("UTC")
    shown = f"oqmd {run_id} complete (published {published:{SECOND}}) {read:{SECOND}} 12 10 0 10 2 {published:{SECOND}}"
    assert latest_oqmd_run(matreg) == shown  # ended: when its last page was read; last_published: when it was


def test_a_failed_run_resumed_to_read_its_last_page_is_published_as_it_ends(tmp_path, replay, server):
    """A run that failed before its last page was read has no `published_at`; resumed, it reads its last page and is
    published then: `published_at` at or after `finished_at`, and status shows it published as it ended."""
    matreg, arguments = matreg_at(tmp_path), [*fetch_command(tmp_path, server, page_size=5), "--no-progress"]
    replay.fail_at(5, 503)  # the second page (no retries), after the first was staged
    assert matreg(*arguments, "--commit-every", "1").exit_code == 75
    store = Store(tmp_path / "s")
    (run_id,) = store.staged_runs()
    status, failed_at, never = run_times(store, run_id)
    assert status == "failed" and pd.isna(never)
    assert matreg(*arguments, "--resume").exit_code == 0
    status, read, published = run_times(store, run_id)
    assert status == "complete" and failed_at < read <= published <= pd.Timestamp.now("UTC")
    assert latest_oqmd_run(matreg).startswith(f"oqmd {run_id} complete (published) {read:{SECOND}} 12 12 0 ")


def as_published_by_a_matreg_before_published_at(store: Path) -> None:
    """Make the store's fetch_runs rows as a matreg before `fetch_runs.published_at` wrote them."""
    for path in (store / "data").glob("c*/**/fetch_runs.parquet"):
        pq.write_table(pq.read_table(path).drop_columns(["published_at"]), path)
    (store / ".views.sha256").write_text("written by an older matreg", encoding="utf-8")


def test_runs_of_a_matreg_before_published_at_are_read_without_it_and_status_shows_them(tmp_path, replay, server):
    """A store whose runs an older matreg wrote, one of them published by --resume after its refusal: status reads
    them, each published run as published (when, unknown), and the next run records when it is published."""
    matreg, arguments = matreg_at(tmp_path), [*fetch_command(tmp_path, server, page_size=5), "--no-progress"]
    assert matreg(*arguments).exit_code == 0
    replay.records = without(RECORDS, DRIFTED)
    assert matreg(*arguments).exit_code == 1  # refused, staged
    assert matreg(*arguments, "--resume", "--allow-dropped-fields").exit_code == 0
    as_published_by_a_matreg_before_published_at(tmp_path / "s")
    store = Store(tmp_path / "s")
    ((run_id, read, never),) = store.query(
        "SELECT run_id, finished_at, published_at FROM fetch_runs ORDER BY finished_at DESC LIMIT 1"
    ).values.tolist()
    assert pd.isna(never)
    assert latest_oqmd_run(matreg) == f"oqmd {run_id} complete (published) {read:{SECOND}} 12 10 0 10 2 {read:{SECOND}}"
    assert "failed once before" in matreg("status").stdout
    replay.records = RECORDS
    assert matreg(*arguments).exit_code == 0
    published = store.query("SELECT published_at FROM fetch_runs ORDER BY finished_at")["published_at"]
    assert published.isna().tolist() == [True, True, False]


def test_a_query_without_mapped_fields_whose_values_were_never_stored_is_published_with_the_drift_note(
    tmp_path, replay, server
):
    """Absent fields that remove nothing (a fresh query, records never stored with those values) are no refusal."""
    matreg, arguments = matreg_at(tmp_path), [*fetch_command(tmp_path, server, page_size=5), "--no-progress"]
    replay.records = without(RECORDS, DRIFTED)
    for _ in range(2):  # a fresh store, then the same records as stored
        result = matreg(*arguments)
        assert result.exit_code == 0, result.output
        drift = "mapped fields no record carried (12 records; renamed or dropped?): band_gap, delta_e, stability\n"
        assert drift in result.stdout
        assert "removed" not in result.stdout
        assert json.loads(last_run(Store(tmp_path / "s"))["values_removed"]) == {}


def test_a_fresh_fetch_refused_for_its_dropped_fields_says_it_dropped_the_staged_run_of_its_query(
    tmp_path, replay, server
):
    """A refused run stays staged; the same fetch again, without --resume, drops it as it starts: refused in turn, it
    said nothing of the run it dropped (the note the other failures carry was lost)."""
    matreg, arguments = matreg_at(tmp_path), [*fetch_command(tmp_path, server, page_size=5), "--no-progress"]
    assert matreg(*arguments).exit_code == 0
    replay.records = without(RECORDS, DRIFTED)
    assert matreg(*arguments).exit_code == 1
    (first,) = Store(tmp_path / "s").staged_runs()
    again = matreg(*arguments)
    assert again.exit_code == 1, again.output
    (second,) = Store(tmp_path / "s").staged_runs()
    assert second != first
    dropped = f"as it started, this fetch dropped the interrupted run of the same query: {first} ("
    said = f"--resume --allow-dropped-fields; {dropped}"
    assert said in again.stderr, again.stderr
