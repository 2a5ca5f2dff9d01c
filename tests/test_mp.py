"""matreg's Materials Project connector over real HTTP: mp-api talks to a replay of the summary API on 127.0.0.1.

The replay (mp_replay.py) serves documents assembled from real Materials Project records. None of them is deprecated;
the deprecation tests replay the same documents with one of them, mp-1216 (YbO), turned into a deprecated one here
(`deprecated: true`, `deprecation_reasons` set to two of emmet-core's codes).
"""

import copy
import json
import logging
import re
import time
import warnings
from collections import Counter
from datetime import UTC, datetime

import pytest
from conftest import assert_failed_without_trace, single_value, sqlite_disk_full, visible_tables
from mp_replay import API_KEY, FIXTURES, HEARTBEAT, SUMMARY, SUMMARY_PATH, summary_route_of, write_mp_catalog
from pymatgen.core import Structure
from replay import ReplayServer, Reply, Request
from typer.testing import CliRunner

from matreg.catalog import load_catalog
from matreg.cli import app
from matreg.curate.release import withdrawal_warnings
from matreg.curate.review import decided_values, decisions_to_redo, record_decision
from matreg.errors import TRY_LATER, ConfigError, RecordError, SourceError
from matreg.ingest import run_ingest
from matreg.sources import FetchRequest, build_connector
from matreg.sources.mp import MpConnector
from matreg.store import Store
from matreg.structure import read_structure

pytestmark = pytest.mark.usefixtures("mp_environment")  # (mp_replay.py)
FIELDS = (
    "material_id,formula_pretty,structure,nsites,symmetry,deprecated,deprecation_reasons,formation_energy_per_atom,"
    "energy_above_hull,band_gap,uncorrected_energy_per_atom,density,volume,total_magnetization,bulk_modulus,shear_modulus"
)
DEPRECATED = {  # an assembled document made deprecated here: the flag and two codes of emmet-core's DeprecationMessage
    **next(doc for doc in SUMMARY["data"] if doc["material_id"] == "mp-1216"),
    "deprecated": True,
    "deprecation_reasons": ["M", "C001"],
}
DEPRECATED_REASON = (
    "deprecated by the Materials Project (deprecation_reasons: M, C001); fetch its formula for the current materials"
)
summary_route = summary_route_of(SUMMARY["data"])


@pytest.fixture
def mp_server():
    with ReplayServer(summary_route) as server:
        yield server


@pytest.fixture
def mp_catalog(tmp_path, mp_server):
    return load_catalog(write_mp_catalog(tmp_path / "catalog.yaml", mp_server.url))


@pytest.fixture
def deprecated_server():
    """The replay with mp-1216 deprecated."""
    docs = [DEPRECATED if doc["material_id"] == DEPRECATED["material_id"] else doc for doc in SUMMARY["data"]]
    with ReplayServer(summary_route_of(docs)) as server:
        yield server


@pytest.fixture
def deprecated_catalog_path(tmp_path, deprecated_server):
    return write_mp_catalog(tmp_path / "deprecated.yaml", deprecated_server.url)


def fetch(store, catalog, **options):
    request = FetchRequest(**options)
    return run_ingest(build_connector("mp", catalog, request, cache_path=store.cache_path), store)


def summary_requests(server: ReplayServer) -> list[Request]:
    return [request for request in server.requests if request.path == SUMMARY_PATH]


def rows(store: Store, table: str, columns: list[str]) -> list[list]:
    """The table's rows in these columns, sorted: runs compare equal whatever their order."""
    return sorted(store.table(table)[columns].values.tolist())


def header(request: Request, name: str) -> str | None:
    """A request header, whatever the spelling of its name (HTTP header names are case-insensitive)."""
    return {key.lower(): value for key, value in request.headers.items()}.get(name.lower())


def test_all_pages_are_fetched_with_the_real_paths_parameters_and_key_header(store, mp_catalog, mp_server):
    report = fetch(store, mp_catalog, everything=True, page_size=4)
    assert (report.n_available, report.n_fetched, report.n_stored, report.n_quarantined) == (10, 10, 9, 1)
    pages = summary_requests(mp_server)
    assert [request.query["_skip"] for request in pages] == [["0"], ["4"], ["8"]]
    for request in pages:
        assert request.query["_limit"] == ["4"] and request.query["_fields"] == [FIELDS]
        assert request.query["deprecated"] == ["False"]
        assert header(request, "x-api-key") == API_KEY
        assert header(request, "User-Agent").startswith("matreg/")
    assert mp_server.hits("/heartbeat") >= 1
    assert len(store.table("materials")) == 9


def test_requests_use_the_paths_and_paging_parameters_mp_api_sends(store, mp_catalog, mp_server):
    recorded = [
        json.loads(line)
        for path in sorted(FIXTURES.glob("mp_api_0.46.5_requests_*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    assert len(recorded) == 9
    fetch(store, mp_catalog, elements=["Si"], page_size=2)
    assert {request.path for request in mp_server.requests} == {entry["path"] for entry in recorded}
    paging_recorded = {key for entry in recorded for key in entry["query"] if key in ("_limit", "_skip", "_fields")}
    paging_sent = {key for request in summary_requests(mp_server) for key in request.query if key.startswith("_")}
    assert paging_sent == paging_recorded == {"_limit", "_skip", "_fields"}


def test_values_are_stored_in_canonical_units_with_provenance_method_and_structure(store, mp_catalog):
    fetch(store, mp_catalog, ids=["mp-631"])
    values = store.query(
        "SELECT property, value, unit, original_value, original_unit, provenance, method "
        "FROM properties WHERE record_id = 'mp:mp-631'"
    ).set_index("property")
    doc = next(doc for doc in SUMMARY["data"] if doc["material_id"] == "mp-631")
    assert set(values.index) == {
        "formation_energy_per_atom",
        "energy_above_hull",
        "band_gap",
        "density",
        "volume_per_atom",
        "bulk_modulus",
        "shear_modulus",
    }
    assert values.loc["formation_energy_per_atom", "value"] == pytest.approx(doc["formation_energy_per_atom"])
    assert values.loc["formation_energy_per_atom", "unit"] == "eV/atom"
    assert values.loc["volume_per_atom", "value"] == pytest.approx(doc["volume"] / 2)  # TiC: 2 sites per cell
    assert values.loc["volume_per_atom", "unit"] == "angstrom**3/atom"
    assert values.loc["volume_per_atom", "original_value"] == pytest.approx(doc["volume"])
    assert values.loc["volume_per_atom", "original_unit"] == "angstrom**3/cell"
    assert values.loc["bulk_modulus", "value"] == pytest.approx(252.64467183325303)
    assert values.loc["bulk_modulus", "unit"] == "GPa"
    assert values.loc["density", "unit"] == "g/cm**3"
    assert set(values["provenance"]) == {"dft"} and set(values["method"]) == {"PBE(+U)/r2SCAN mixed"}
    material = store.query("SELECT * FROM materials WHERE record_id = 'mp:mp-631'").iloc[0]
    assert (material.formula, material.spacegroup_symbol, material.spacegroup_number, material.nsites) == (
        "TiC",
        "Fm-3m",
        225,
        2,
    )
    assert material.source_url == "https://next-gen.materialsproject.org/materials/mp-631"
    assert material.database_version == "2023.11.1"  # the heartbeat's db_version
    assert material.license == "CC-BY-4.0" and material.citation.startswith("Jain et al.")
    structure = Structure.from_dict(json.loads(material.structure))
    assert len(structure) == 2 and structure.volume == pytest.approx(doc["volume"])


def test_the_total_magnetization_of_a_cell_is_stored_per_atom(store, mp_catalog):
    fetch(store, mp_catalog, ids=["mp-20332"])  # GdMgPd: 21.7649885 μB in its cell of 9 sites (3 Gd near 7.26 each)
    moment = store.query(
        "SELECT value, unit, original_value, original_unit FROM properties "
        "WHERE record_id = 'mp:mp-20332' AND property = 'magnetic_moment'"
    )
    assert moment.values.tolist() == [
        [pytest.approx(21.7649885 / 9), "bohr_magneton/atom", 21.7649885, "bohr_magneton/cell"]
    ]


def test_the_total_energy_is_the_calculations_own_not_the_corrected_one(tmp_path, store):
    energies = {"energy_per_atom": -9.9, "uncorrected_energy_per_atom": -9.5}  # MP2020 corrections: -0.4 eV/atom
    docs = [doc | energies if doc["material_id"] == "mp-631" else doc for doc in SUMMARY["data"]]
    with ReplayServer(summary_route_of(docs)) as server:
        fetch(store, load_catalog(write_mp_catalog(tmp_path / "c.yaml", server.url)), ids=["mp-631"])
    total = store.query("SELECT value FROM properties WHERE property = 'total_energy_per_atom'")
    assert total["value"].tolist() == [-9.5]


@pytest.mark.parametrize(
    ("options", "parameter", "expected"),
    [
        ({"ids": ["mp-631", "mp-23193"]}, {"material_ids": ["mp-631,mp-23193"]}, {"mp-631", "mp-23193"}),
        ({"formulas": ["Zn3N2"]}, {"formula": ["Zn3N2"]}, {"mp-754553"}),
        ({"elements": ["Zn", "N"]}, {"chemsys": ["N-Zn"]}, {"mp-754553"}),
        ({"filter": "band_gap_min=3&band_gap_max=10"}, {"band_gap_min": ["3"], "band_gap_max": ["10"]}, None),
    ],
)
def test_ids_formulas_elements_and_filters_become_summary_parameters(
    store, mp_catalog, mp_server, options, parameter, expected
):
    fetch(store, mp_catalog, **options)
    query = summary_requests(mp_server)[0].query
    assert {key: query[key] for key in parameter} == parameter
    stored = set(store.table("materials")["source_id"])
    assert stored == (expected or {"mp-23193", "mp-1216"})  # KCl 5.04 eV, YbO 3.53 eV


def test_a_wildcard_formula_goes_to_the_summary_api_as_given(store, mp_catalog, mp_server):
    fetch(store, mp_catalog, formulas=["*3N2"])  # MP's wildcard syntax: the API reads it (the replay matches none)
    assert summary_requests(mp_server)[0].query["formula"] == ["*3N2"]


def test_material_ids_stay_opaque_strings(store, mp_catalog, mp_server):
    fetch(store, mp_catalog, ids=["mp-hilze", "mp-631"])  # a letter-based id goes out as given
    assert summary_requests(mp_server)[0].query["material_ids"] == ["mp-hilze,mp-631"]
    assert store.table("materials")["source_id"].tolist() == ["mp-631"]


@pytest.mark.parametrize("material_id", ["", "  ", None, 631])
def test_a_document_whose_material_id_is_no_text_or_blank_is_refused(mp_catalog, mp_server, material_id):
    connector = build_connector("mp", mp_catalog, FetchRequest(ids=["mp-631"]))
    with pytest.raises(RecordError, match="^summary document has no material_id$"):
        connector.read_source_id({"material_id": material_id})


def test_a_fetch_without_any_filter_is_refused_and_explains_all(mp_catalog, mp_server):
    with pytest.raises(ConfigError, match="--all") as error:
        build_connector("mp", mp_catalog, FetchRequest())
    assert "S3" in str(error.value) and "deprecated=false" in str(error.value)
    assert mp_server.requests == []


@pytest.mark.parametrize("sorting", ["_sort_fields=-band_gap", "_sort_fields=band_gap&is_stable="])
def test_a_filter_that_only_sorts_is_refused_as_no_query(mp_catalog, mp_server, sorting):
    with pytest.raises(ConfigError, match="selects no records, it only sorts.*--all") as error:
        build_connector("mp", mp_catalog, FetchRequest(filter=sorting))
    assert "deprecated=false" in str(error.value)
    assert mp_server.requests == []


def test_all_with_a_filter_that_only_sorts_still_asks_for_deprecated_false(store, mp_catalog, mp_server):
    report = fetch(store, mp_catalog, everything=True, filter="_sort_fields=-band_gap", page_size=4)
    assert report.n_fetched == 10
    for request in summary_requests(mp_server):
        assert request.query["deprecated"] == ["False"] and request.query["_sort_fields"] == ["-band_gap"]


@pytest.mark.parametrize("bad", ["_limit=5000", "band_gap_min=1&_skip=3", "no equals sign", "is_stable=true&api_key=x"])
def test_a_filter_may_not_take_over_paging_or_be_malformed(mp_catalog, bad):
    with pytest.raises(ConfigError, match="--filter"):
        build_connector("mp", mp_catalog, FetchRequest(filter=bad))


def test_selectors_the_api_would_and_are_refused_not_narrowed(mp_catalog, mp_server):
    with pytest.raises(ConfigError, match="cannot combine --formula and --elements: its summary API ANDs"):
        build_connector("mp", mp_catalog, FetchRequest(formulas=["SiO2"], elements=["Al", "O"]))
    assert mp_server.requests == []


def test_a_page_size_above_the_api_maximum_is_refused(mp_catalog):
    with pytest.raises(ConfigError, match="at most 1000"):
        build_connector("mp", mp_catalog, FetchRequest(everything=True, page_size=5000))


def test_a_missing_api_key_is_a_clear_error_before_any_request(monkeypatch, mp_catalog, mp_server):
    monkeypatch.delenv("MP_API_KEY")
    with pytest.raises(ConfigError, match="set MP_API_KEY"):
        build_connector("mp", mp_catalog, FetchRequest(ids=["mp-631"]))
    assert mp_server.requests == []


def test_endpoint_comes_from_mp_api_endpoint_unless_base_url_is_given(tmp_path, monkeypatch, store, mp_server):
    dead = "http://127.0.0.1:9/"  # nothing listens on the discard port
    catalog = load_catalog(write_mp_catalog(tmp_path / "dead.yaml", dead))
    monkeypatch.setenv("MP_API_ENDPOINT", mp_server.url)
    assert fetch(store, catalog, ids=["mp-631"]).n_stored == 1
    monkeypatch.setenv("MP_API_ENDPOINT", dead)
    assert fetch(store, catalog, ids=["mp-631"], base_url=mp_server.url).n_stored == 1
    assert len(summary_requests(mp_server)) == 2


def test_a_user_and_password_in_mp_api_endpoint_are_sent_as_basic_auth_and_stored_nowhere(
    tmp_path, monkeypatch, store, mp_server
):
    catalog = load_catalog(write_mp_catalog(tmp_path / "dead.yaml", "http://127.0.0.1:9/"))
    monkeypatch.setenv("MP_API_ENDPOINT", mp_server.url.replace("http://", "http://alice:Pw0rdInEndpoint@"))
    report = fetch(store, catalog, ids=["mp-631"])
    assert report.n_stored == 1
    assert all(request.headers["Authorization"].startswith("Basic ") for request in summary_requests(mp_server))
    (endpoint,) = store.query("SELECT endpoint FROM fetch_runs")["endpoint"]
    assert endpoint.startswith(mp_server.url) and "Pw0rd" not in endpoint and "alice" not in endpoint


def test_requests_go_through_the_proxy_the_environment_names(tmp_path, monkeypatch, store, mp_server):
    catalog = load_catalog(write_mp_catalog(tmp_path / "proxied.yaml", "http://api.mp.example.org/"))
    monkeypatch.setenv("HTTP_PROXY", mp_server.root)  # the replay server stands in for the proxy
    assert fetch(store, catalog, ids=["mp-631"]).n_stored == 1
    assert {request.raw_path.split("?")[0] for request in mp_server.requests} >= {
        "http://api.mp.example.org/heartbeat",
        "http://api.mp.example.org" + SUMMARY_PATH,
    }


def test_an_unreachable_endpoint_fails_the_run_for_now_with_a_clear_error_logged_in_fetch_runs(tmp_path, store):
    catalog = write_mp_catalog(tmp_path / "dead.yaml", "http://127.0.0.1:9/")
    arguments = ["fetch", "mp", "mp-631", "--catalog", str(catalog), "--store", str(store.root), "--no-progress"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == TRY_LATER  # (as every source unreachable: run it again later)
    *waits, error = result.stderr.splitlines()  # (each retry said, sent at once: `backoff_s: 0`)
    assert [wait.split(": retry ")[1] for wait in waits] == [f"{n} of 3 in 0 s (backoff)" for n in (1, 2, 3)]
    assert error.startswith("error: Materials Project API at http://127.0.0.1:9/: no heartbeat: GET ")
    runs = store.query("SELECT status, error FROM fetch_runs")
    assert runs["status"].tolist() == ["failed"] and "no heartbeat" in runs["error"].iloc[0]


@pytest.mark.parametrize(
    ("heartbeat", "why"),
    [
        (Reply(404, b'{"detail": "Not Found"}'), r"HTTP 404 Not Found: .*/v2/heartbeat: Not Found"),
        (Reply.json({"status": "OK"}), r'the answer \{"status":"OK"\} has no version and db_version'),
        (Reply(200, b"<html>a web page</html>", "text/html"), r"not JSON from .*/v2/heartbeat: '<html>a web page"),
    ],
    ids=["404", "another heartbeat", "a web page"],
)
def test_a_base_url_that_answers_no_heartbeat_fails_the_run_saying_so(tmp_path, store, heartbeat, why):
    def route(request: Request) -> Reply:
        return heartbeat if request.path == "/v2/heartbeat" else summary_route(request)

    with ReplayServer(route) as server:
        catalog = write_mp_catalog(tmp_path / "c.yaml", server.url + "v2/")
        arguments = ["fetch", "mp", "mp-631", "--catalog", str(catalog), "--store", str(store.root)]
        result = CliRunner().invoke(app, arguments)
        assert [request.path for request in server.requests] == ["/v2/heartbeat"]  # mp-api was not let ask it
    endpoint = server.url + "v2/"
    assert result.exit_code == 1 and "KeyError" not in result.stderr
    assert re.match(rf"error: Materials Project API at {re.escape(endpoint)}: no heartbeat: {why}", result.stderr)
    assert f"(is {endpoint} the API's root, as https://api.materialsproject.org/ is?)" in result.stderr
    runs = store.query("SELECT status, error FROM fetch_runs")
    assert runs["status"].tolist() == ["failed"] and re.search(f"no heartbeat: {why}", runs["error"].iloc[0])


def test_a_heartbeat_that_mp_api_cannot_read_fails_the_run_as_no_heartbeat(tmp_path, store):
    heartbeat = {key: value for key, value in json.loads(HEARTBEAT).items() if key != "access_controlled_batch_ids"}

    def route(request: Request) -> Reply:
        return Reply.json(heartbeat) if request.path == "/heartbeat" else summary_route(request)

    with ReplayServer(route) as server:
        catalog = write_mp_catalog(tmp_path / "c.yaml", server.url)
        arguments = ["fetch", "mp", "mp-631", "--catalog", str(catalog), "--store", str(store.root)]
        result = CliRunner().invoke(app, arguments)
    why = "no heartbeat: mp-api cannot read it: KeyError('access_controlled_batch_ids')"
    assert result.exit_code == 1 and result.stderr.startswith(f"error: Materials Project API at {server.url}: {why}")
    assert f"(is {server.url} the API's root" in result.stderr
    runs = store.query("SELECT status, error FROM fetch_runs")
    assert runs["status"].tolist() == ["failed"] and why in runs["error"].iloc[0]


def test_a_connection_lost_as_mp_api_opens_its_client_is_a_failure_for_now(tmp_path, store):
    """matreg's heartbeat answers; mp-api, opening its client right after, asks the heartbeat again (requests.get,
    outside matreg's session) and the server drops that connection: the server unreachable for now, exit 75 (it was
    exit 1, as an error of the source's), the run recorded as failed, the store's data as before."""
    heartbeats = []

    def dropped_after_one_heartbeat(request: Request) -> Reply:
        if request.path == "/heartbeat":
            heartbeats.append(request)
            return Reply(200, HEARTBEAT) if len(heartbeats) == 1 else Reply(answered=False)
        return summary_route(request)

    with ReplayServer(dropped_after_one_heartbeat) as server:
        catalog = write_mp_catalog(tmp_path / "c.yaml", server.url)
        arguments = ["fetch", "mp", "mp-631", "--catalog", str(catalog), "--store", str(store.root), "--no-progress"]
        result = CliRunner().invoke(app, arguments)
        assert [request.path for request in server.requests] == ["/heartbeat", "/heartbeat"]
    assert result.exit_code == TRY_LATER, result.output
    assert result.stderr.startswith(f"error: Materials Project API at {server.url}: ConnectionError(")
    assert "Remote end closed connection without response" in result.stderr and "Traceback" not in result.output
    assert API_KEY not in result.output
    runs = store.query("SELECT status, error FROM fetch_runs")
    assert runs["status"].tolist() == ["failed"] and "Remote end closed connection" in runs["error"].iloc[0]
    assert store.query("SELECT count(*) FROM materials").iloc[0, 0] == 0


def test_a_disk_full_as_the_http_cache_saves_a_page_mp_api_read_is_a_failure_for_now(tmp_path, store, mp_server):
    """mp-api reads its pages on matreg's session: the HTTP cache's 'database or disk is full' as it saves one is
    NoSpace naming the cache file, exit 75, as for every source (it was passed over: exit 0, the page not kept)."""
    catalog = write_mp_catalog(tmp_path / "c.yaml", mp_server.url, cache=True)
    arguments = ["fetch", "mp", "--catalog", str(catalog), "--store", str(store.root), "--no-progress"]
    assert CliRunner().invoke(app, [*arguments, "mp-631"]).exit_code == 0
    before = visible_tables(store)
    with pytest.MonkeyPatch.context() as patch:
        sqlite_disk_full(patch)
        result = CliRunner().invoke(app, [*arguments, "mp-1216"])
    assert result.exit_code == TRY_LATER, result.output
    cache = store.root / "http_cache.sqlite"
    assert result.stderr.startswith(f"error: cannot write {cache}: database or disk is full (ENOSPC): a failure ")
    assert_failed_without_trace(store, before, "database or disk is full")


def test_a_heartbeat_that_never_answers_is_a_source_error_within_the_sources_timeout(tmp_path, store):
    def stalled_heartbeat(request: Request) -> Reply:
        if request.path == "/heartbeat":
            time.sleep(3)  # (mp-api asks it with requests.get and no timeout: it would wait for ever)
        return summary_route(request)

    with ReplayServer(stalled_heartbeat) as server:
        path = write_mp_catalog(tmp_path / "c.yaml", server.url)
        path.write_text(path.read_text().replace("retries: 3", "retries: 0").replace("timeout_s: 5", "timeout_s: 0.5"))
        with pytest.raises(SourceError, match=r"no heartbeat: .*Read timed out. \(read timeout=0.5\)"):
            fetch(store, load_catalog(path), ids=["mp-631"])
        assert [request.path for request in server.requests] == ["/heartbeat"]  # mp-api was not let ask it


def test_the_heartbeat_is_asked_of_the_server_even_with_the_http_cache_on(tmp_path, store):
    stalled = False

    def heartbeat(request: Request) -> Reply:
        if request.path == "/heartbeat" and stalled:
            time.sleep(3)
        return summary_route(request)

    with ReplayServer(heartbeat) as server:
        path = write_mp_catalog(tmp_path / "c.yaml", server.url, cache=True)
        path.write_text(path.read_text().replace("retries: 3", "retries: 0").replace("timeout_s: 5", "timeout_s: 0.5"))
        fetch(store, load_catalog(path), ids=["mp-631"])
        stalled = True
        with pytest.raises(SourceError, match="no heartbeat"):
            fetch(store, load_catalog(path), ids=["mp-631"])


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"detail": "down for maintenance"}, "not a Materials Project summary response"),
        ({"data": None, "meta": {"total_doc": 0}}, "not a Materials Project summary response"),
        ([1, 2], "not a Materials Project summary response"),
        ({"data": SUMMARY["data"][:2], "meta": {"api_version": "x"}}, "without meta.total_doc to page by"),
    ],
    ids=["no data", "data null", "a list", "no total_doc"],
)
def test_an_answer_that_is_no_summary_page_fails_the_run_with_a_source_error(tmp_path, store, answer, why):
    def route(request: Request) -> Reply:
        return Reply(200, HEARTBEAT) if request.path == "/heartbeat" else Reply.json(answer)

    with ReplayServer(route) as server:
        catalog = load_catalog(write_mp_catalog(tmp_path / "c.yaml", server.url))
        with pytest.raises(SourceError, match=why):
            fetch(store, catalog, everything=True, page_size=5)
    assert store.query("SELECT status FROM fetch_runs")["status"].tolist() == ["failed"]


def test_fields_of_another_type_than_their_columns_quarantine_the_document(tmp_path, store):
    documents = copy.deepcopy(SUMMARY["data"][:3])
    documents[0]["symmetry"]["symbol"] = 225
    documents[1]["formula_pretty"] = "Na1e999Cl"  # a count too large for a float
    with ReplayServer(summary_route_of(documents)) as server:
        report = fetch(store, load_catalog(write_mp_catalog(tmp_path / "c.yaml", server.url)), everything=True)
    assert (report.status, report.n_fetched, report.n_stored, report.n_quarantined) == ("complete", 3, 1, 2)
    reasons = store.query("SELECT item, reasons FROM quarantine").set_index("item")["reasons"]
    assert list(reasons[documents[0]["material_id"]]) == ["spacegroup_symbol 225 is not a text"]
    assert list(reasons[documents[1]["material_id"]]) == [
        "unparseable formula 'Na1e999Cl': the amount of Na is past the largest number (about 1.8e308)"
    ]


def test_a_structure_entry_that_is_no_number_quarantines_the_document_naming_it(tmp_path, store):
    """A structure is held to the checks of every connector's cell (a JSON true is no 1 Å), the rest of the page
    stored as received."""
    documents = copy.deepcopy(SUMMARY["data"][:5])
    documents[0]["structure"]["lattice"]["matrix"][1][1] = True
    documents[1]["structure"]["sites"][1]["abc"][0] = "0.5"
    documents[2]["structure"]["sites"][0]["species"][0]["occu"] = True
    del documents[3]["structure"]["sites"][0]["abc"]
    with ReplayServer(summary_route_of(documents)) as server:
        report = fetch(store, load_catalog(write_mp_catalog(tmp_path / "c.yaml", server.url)), everything=True)
    assert (report.status, report.n_fetched, report.n_stored, report.n_quarantined) == ("complete", 5, 1, 4)
    reasons = store.query("SELECT item, reasons FROM quarantine").set_index("item")["reasons"]
    assert {item: list(reasons) for item, reasons in reasons.items()} == {
        "mp-631": ["mp-631: structure: lattice entry True is not a number"],
        "mp-23193": ["mp-23193: structure: coordinate '0.5' is not a number"],
        "mp-754553": ["mp-754553: structure: site occupancies {'Zn': True} are not numbers"],
        "mp-865981": ["mp-865981: structure: not a pymatgen Structure (a lattice matrix, sites of species and abc)"],
    }
    stored = store.query("SELECT source_id, structure FROM materials")
    assert stored["source_id"].tolist() == ["mp-20332"]
    assert json.loads(stored["structure"].iloc[0]) == documents[4]["structure"]  # as received


def test_a_structure_whose_xyz_or_site_properties_would_not_read_back_as_received_quarantines_the_document(
    tmp_path, store
):
    """A site's xyz, which pymatgen works out again from its abc, is stored as received: one that says another place
    for the site, or no number, quarantines the document (which place is meant is not said), as a site's properties
    that pymatgen cannot read (not an object: its Structure.from_dict fails) or reads as another value do (an object
    of monty's encoding, which it imports and builds: a function for a magmom here); the rest of the page is stored,
    a magnetic moment per site and a structure without xyz as received."""
    documents = copy.deepcopy(SUMMARY["data"][:6])
    sites = [document["structure"]["sites"] for document in documents]
    sites[0][1]["xyz"][2] += 0.5  # mp-631 (TiC): C 0.5 Å off its abc
    sites[1][0]["xyz"][0] = "0.0"
    sites[2][0]["properties"] = "magmom"
    sites[3][1]["properties"] = {"magmom": {"@module": "os", "@callable": "getcwd"}}  # read back as os.getcwd
    for site in sites[4]:  # mp-20332 (GdMgPd): a moment per site, and its xyz left out
        site["properties"] = {"magmom": 7.26 if site["species"][0]["element"] == "Gd" else 0.0}
        del site["xyz"]
    with ReplayServer(summary_route_of(documents)) as server:
        report = fetch(store, load_catalog(write_mp_catalog(tmp_path / "c.yaml", server.url)), everything=True)
    assert (report.status, report.n_fetched, report.n_stored, report.n_quarantined) == ("complete", 6, 2, 4)
    reasons = store.query("SELECT item, reasons FROM quarantine").set_index("item")["reasons"]
    assert {item: list(reasons) for item, reasons in reasons.items()} == {
        "mp-631": [
            "mp-631: structure: site 2's xyz [1.7700217029448113, 1.2515943489996368, 3.5657675200000005] is not "
            "where its abc [0.5, 0.5, 0.5] places it in the lattice, [1.7700217029448113, 1.2515943489996368, "
            "3.0657675200000005] Å"
        ],
        "mp-23193": ["mp-23193: structure: xyz entry '0.0' is not a number"],
        "mp-754553": ["mp-754553: structure: site 1's properties 'magmom' are not an object of properties by name"],
        "mp-865981": [
            "mp-865981: structure: site 2's properties: 'magmom' {'@module': 'os', '@callable': 'getcwd'} is an "
            "object in monty's encoding ('@module'), which monty's decoder imports and builds"
        ],
    }
    stored = store.query("SELECT source_id, structure FROM materials ORDER BY source_id").set_index("source_id")
    assert json.loads(stored.loc["mp-20332", "structure"]) == documents[4]["structure"]  # as received
    magnetic = Structure.from_dict(json.loads(stored.loc["mp-20332", "structure"]))
    assert sorted(magnetic.site_properties["magmom"]) == [0.0] * 6 + [7.26] * 3


def test_a_structure_nesting_a_property_past_pythons_recursion_limit_quarantines_its_document_alone(tmp_path, store):
    """mp-api reads a page with orjson, up to 1,024 levels deep: a site's property nested 1,010 levels, past Python's
    recursion limit, quarantines its document (a RecursionError escaping its mapping failed the run), the rest of the
    page stored."""
    documents = copy.deepcopy(SUMMARY["data"][:3])
    documents[0]["structure"]["sites"][0]["properties"] = {"tags": "nested"}
    page = json.dumps({"data": documents, "meta": {**SUMMARY["meta"], "total_doc": 3}})
    page = page.replace('"nested"', "[" * 1010 + "1.0" + "]" * 1010)  # (json.dumps would recurse past the limit)

    def route(request: Request) -> Reply:
        return Reply(200, HEARTBEAT) if request.path == "/heartbeat" else Reply(200, page.encode())

    with ReplayServer(route) as server:
        report = fetch(store, load_catalog(write_mp_catalog(tmp_path / "c.yaml", server.url)), everything=True)
    assert (report.status, report.n_fetched, report.n_stored, report.n_quarantined) == ("complete", 3, 2, 1)
    [(item, reasons)] = store.query("SELECT item, reasons FROM quarantine").itertuples(index=False)
    assert (item, list(reasons)) == (
        "mp-631",
        ["mp-631: structure: nested too deeply to be read (past Python's recursion limit)"],
    )


def _quarantined_and_stored(tmp_path, store, documents: list[dict]) -> tuple[dict, dict]:
    """Fetch `documents` from a replay: the quarantine's reasons by item and the stored structures by source id, each
    of which reads back through Structure.from_dict without a warning."""
    with ReplayServer(summary_route_of(documents)) as server:
        report = fetch(store, load_catalog(write_mp_catalog(tmp_path / "c.yaml", server.url)), everything=True)
    assert (report.status, report.n_fetched) == ("complete", len(documents))
    reasons = store.query("SELECT item, reasons FROM quarantine").set_index("item")["reasons"]
    stored = dict(store.query("SELECT source_id, structure FROM materials").values.tolist())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for text in stored.values():
            read_structure(text).as_dict()
    return {item: list(reasons) for item, reasons in reasons.items()}, stored


def test_a_structure_pymatgen_would_fail_on_or_warn_of_reading_back_quarantines_the_document_naming_the_field(
    tmp_path, store
):
    """A charge that is no number (Structure.from_dict fails: TypeError), or other than the sum of the oxidation
    states (0 without any: pymatgen warns as it reads the charge), a periodicity (lattice.pbc) of other than three
    booleans (ValueError), site properties that are no object (False: TypeError) or that some sites lack (pymatgen
    reads null there, warning) were stored; the document with a null charge and no pbc is stored as received."""
    documents = copy.deepcopy(SUMMARY["data"][:7])
    structures = [document["structure"] for document in documents]
    structures[0]["charge"] = "0"  # mp-631
    structures[1]["charge"] = 1  # mp-23193 (KCl, of elements: its charge is 0)
    structures[2]["lattice"]["pbc"] = "yes"  # mp-754553
    structures[3]["lattice"]["pbc"] = [True]  # mp-865981
    structures[4]["sites"][0]["properties"] = {"magmom": 7.26}  # mp-20332: one Gd's moment, none on the other sites
    structures[5]["sites"][1]["properties"] = False  # mp-1216
    structures[6]["charge"] = None  # mp-938: the oxidation states' sum (0), as pymatgen reads it
    del structures[6]["lattice"]["pbc"]  # (periodic along all three vectors, as pymatgen reads it)
    reasons, stored = _quarantined_and_stored(tmp_path, store, documents)
    flags = "is not three flags (0 or 1, false or true): whether each lattice vector is periodic"
    assert reasons == {
        "mp-631": ["mp-631: structure: charge '0' is not a finite number"],
        "mp-23193": [
            "mp-23193: structure: charge 1 is not the sum of its sites' oxidation states, 0.0: pymatgen warns as "
            "its charge is read"
        ],
        "mp-754553": [f"mp-754553: structure: lattice pbc 'yes' {flags}"],
        "mp-865981": [f"mp-865981: structure: lattice pbc [True] {flags}"],
        "mp-20332": [
            "mp-20332: structure: site 2 has no 'magmom', which site 1's properties have: pymatgen would read it "
            "back as null, warning"
        ],
        "mp-1216": ["mp-1216: structure: site 2's properties False are not an object of properties by name"],
    }
    assert json.loads(stored["mp-938"]) == structures[6]  # as received


def test_a_structures_lattice_fields_labels_species_or_class_that_would_mislead_a_reader_quarantine_the_document(
    tmp_path, store
):
    """pymatgen reads the lattice's matrix alone and writes its lengths, angles and volume beside it: a stored one
    that is no number or not the matrix's would be taken for the cell's by a reader of the document; so would a site
    label that is no text, a site holding one species twice (pymatgen keeps the last: half a Gd site read back) and
    another class than Structure (monty's decoder builds what '@module' and '@class' name). The rest of the page is
    stored as received."""
    documents = copy.deepcopy(SUMMARY["data"][:7])
    structures = [document["structure"] for document in documents]
    structures[0]["lattice"]["volume"] = "20.4"  # mp-631
    structures[1]["lattice"]["a"] = 4.6  # mp-23193: 4.51388119 Å
    structures[2]["lattice"]["gamma"] = 60.0  # mp-754553: 90°
    structures[3]["sites"][0]["label"] = 0  # mp-865981
    structures[4]["sites"][0]["species"] = [{"element": "Gd", "occu": 0.5}, {"element": "Gd", "occu": 0.5}]
    structures[5]["@class"] = "Molecule"  # mp-1216
    reasons, stored = _quarantined_and_stored(tmp_path, store, documents)
    matrix = "(pymatgen reads the matrix alone)"
    assert reasons == {
        "mp-631": ["mp-631: structure: lattice volume '20.4' is not a number"],
        "mp-23193": [f"mp-23193: structure: lattice a 4.6 is not its matrix's, 4.51388119 Å {matrix}"],
        "mp-754553": [f"mp-754553: structure: lattice gamma 60.0 is not its matrix's, 90.0 degrees {matrix}"],
        "mp-865981": ["mp-865981: structure: site 1's label 0 is not a text"],
        "mp-20332": [
            "mp-20332: structure: site 1 holds one species twice: [{'element': 'Gd', 'occu': 0.5}, {'element': "
            "'Gd', 'occu': 0.5}]"
        ],
        "mp-1216": [
            "mp-1216: structure: @class 'Molecule' is not 'Structure': monty's decoder would build another object of it"
        ],
    }
    assert json.loads(stored["mp-938"]) == structures[6]  # as received


def test_a_space_group_number_no_space_group_has_quarantines_the_document_with_the_reason(tmp_path, store):
    documents = copy.deepcopy(SUMMARY["data"][:3])
    documents[0]["symmetry"]["number"] = 231
    documents[1]["symmetry"]["number"] = 12.7
    with ReplayServer(summary_route_of(documents)) as server:
        report = fetch(store, load_catalog(write_mp_catalog(tmp_path / "c.yaml", server.url)), everything=True)
    assert (report.status, report.n_fetched, report.n_stored, report.n_quarantined) == ("complete", 3, 1, 2)
    reasons = store.query("SELECT item, reasons FROM quarantine").set_index("item")["reasons"]
    assert {item: list(reasons) for item, reasons in reasons.items()} == {
        document["material_id"]: [
            f"{document['material_id']}: symmetry.number {number} is not a space group number (1 to 230)"
        ]
        for document, number in zip(documents, (231, 12.7), strict=False)
    }


def test_too_many_ids_for_one_url_are_refused(mp_catalog):
    with pytest.raises(ConfigError, match="at most 500"):
        build_connector("mp", mp_catalog, FetchRequest(ids=[f"mp-{number}" for number in range(1, 502)]))


def test_a_429_with_retry_after_is_honoured_then_succeeds(store, mp_catalog, mp_server):
    mp_server.fail(SUMMARY_PATH, 429, retry_after=1)
    report = fetch(store, mp_catalog, everything=True, page_size=4)
    assert report.n_stored == 9 and len(summary_requests(mp_server)) == 4


def test_an_answer_broken_off_inside_its_body_is_asked_again(store, mp_catalog, mp_server):
    # mp-api reads the Materials Project's answers through matreg's session, and wraps the break in its MPRestError
    mp_server.cut(SUMMARY_PATH, times=2)
    report = fetch(store, mp_catalog, everything=True, page_size=4)
    assert report.n_stored == 9 and len(summary_requests(mp_server)) == 5


def test_an_answer_broken_off_at_every_try_fails_saying_so(store, mp_catalog, mp_server):
    mp_server.cut(SUMMARY_PATH, times=10)
    with pytest.raises(SourceError, match=r"Connection broken: .*\(the connection broke inside the answer, after 3"):
        fetch(store, mp_catalog, everything=True, page_size=4)


def test_a_persistent_503_fails_the_run_and_leaves_the_store_as_before(store, mp_catalog, mp_server):
    fetch(store, mp_catalog, ids=["mp-631"])
    before = visible_tables(store)
    mp_server.fail(SUMMARY_PATH, *[503] * 5)
    with pytest.raises(SourceError, match="503"):
        fetch(store, mp_catalog, everything=True, page_size=4)
    assert_failed_without_trace(store, before, "503")


@pytest.mark.parametrize(
    ("status", "exit_code"),
    [(503, TRY_LATER), (500, TRY_LATER), (429, TRY_LATER), (400, 1), (401, 1), (403, 1), (404, 1)],
)
def test_a_summary_answer_refused_after_mp_apis_retries_exits_for_now_only_when_the_cause_is_for_now(
    tmp_path, store, mp_server, status, exit_code
):
    """A 5xx or 429 to the last retry is a failure for now (exit 75: run it again later), its status said; a 4xx else
    is the request's own (exit 1), as mp-api reports it. Either way the error carries no API key."""
    catalog = write_mp_catalog(tmp_path / "catalog.yaml", mp_server.url)
    mp_server.fail(SUMMARY_PATH, *[status] * 5)
    arguments = ["fetch", "mp", "mp-631", "--catalog", str(catalog), "--store", str(store.root), "--no-progress"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == exit_code, result.output
    said = str(status) if exit_code == TRY_LATER else "Materials Project summary request failed: "
    error = "".join(line for line in result.stderr.splitlines(True) if not line.startswith("warning: "))  # (retries)
    assert error.startswith("error: ") and said in error and "Traceback" not in result.stderr
    assert API_KEY not in result.output
    assert store.query("SELECT status FROM fetch_runs")["status"].tolist() == ["failed"]


def test_a_summary_connection_lost_at_every_retry_is_a_failure_for_now(tmp_path, store, mp_server):
    """The heartbeat answers, then every summary request loses its connection before an answer (mp-api wraps
    requests' ConnectionError in its MPRestError): a failure for now, exit 75, without the API key."""
    catalog = write_mp_catalog(tmp_path / "catalog.yaml", mp_server.url)
    mp_server.drop(SUMMARY_PATH, times=5)
    arguments = ["fetch", "mp", "mp-631", "--catalog", str(catalog), "--store", str(store.root), "--no-progress"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == TRY_LATER, result.output
    assert mp_server.hits(SUMMARY_PATH) == 4  # (the first request and its 3 retries)
    *retries, error = result.stderr.splitlines()
    assert len(retries) == 3 and all(": retry " in retry for retry in retries)  # (each said, sent at once)
    assert error.startswith(f"error: GET {mp_server.url}{SUMMARY_PATH.lstrip('/')} failed: ")
    assert "Remote end closed connection without response" in error and API_KEY not in result.output


def test_a_run_resumed_after_its_last_page_keeps_the_database_version_it_read(store, mp_catalog, mp_server):
    class StoppedAfterTheLastPage(MpConnector):  # as a kill after the last page's commit leaves a fetch
        def pages(self, cursor=None):
            yield from super().pages(cursor)
            raise SourceError("stopped after the last page")

    request = FetchRequest(everything=True, page_size=4)
    stopped = build_connector("mp", mp_catalog, request)
    stopped.__class__ = StoppedAfterTheLastPage
    with pytest.raises(SourceError, match="stopped after the last page"):
        run_ingest(stopped, store)
    asked = len(mp_server.requests)
    report = run_ingest(build_connector("mp", mp_catalog, request), store, resume=True)
    assert report.resumed and len(mp_server.requests) == asked  # nothing left to ask, not even the heartbeat
    runs = store.query("SELECT status, database_version FROM fetch_runs ORDER BY finished_at").values.tolist()
    assert runs == [["complete", "2023.11.1"]]  # (the heartbeat's: the catalog names none)


def test_an_interrupted_run_resumes_with_exactly_the_records_of_a_clean_run(tmp_path, mp_catalog, mp_server):
    clean = Store(tmp_path / "clean")
    fetch(clean, mp_catalog, everything=True, page_size=4)

    broken = {"skip": "8"}  # page 3 answers 503 until the server is mended

    def route(request: Request) -> Reply:
        if request.path == SUMMARY_PATH and request.query.get("_skip") == [broken.get("skip")]:
            return Reply(503, b'{"detail": "Service Unavailable"}')
        return summary_route(request)

    with ReplayServer(route) as server:
        catalog = load_catalog(write_mp_catalog(tmp_path / "resume.yaml", server.url))
        resumed = Store(tmp_path / "resumed")
        with pytest.raises(SourceError, match="503"):
            fetch(resumed, catalog, everything=True, page_size=4)
        assert len(resumed.table("materials")) == 0  # nothing visible from the failed run
        staged_pages = Counter(tuple(r.query["_skip"]) for r in summary_requests(server))
        broken.clear()
        request = FetchRequest(everything=True, page_size=4)
        report = run_ingest(build_connector("mp", catalog, request), resumed, resume=True)
        again = Counter(tuple(r.query["_skip"]) for r in summary_requests(server))
    assert again[("0",)] == staged_pages[("0",)] == 1 and again[("4",)] == staged_pages[("4",)] == 1
    assert report.resumed and report.n_fetched == 10
    for table, columns in (("materials", ["record_id", "formula"]), ("properties", ["record_id", "property", "value"])):
        assert rows(resumed, table, columns) == rows(clean, table, columns)
    assert resumed.table("fetch_runs")["status"].tolist() == ["complete"]


def test_a_malformed_record_is_quarantined_and_unknown_fields_are_counted(store, mp_catalog):
    report = fetch(store, mp_catalog, everything=True, page_size=4)
    rejected = store.query("SELECT item, reasons FROM quarantine")
    assert rejected["item"].tolist() == ["mp-13136"]
    assert rejected["reasons"].iloc[0].tolist() == [
        "mp-13136: structure: not a pymatgen Structure (a lattice matrix, sites of species and abc)"
    ]
    assert report.unmapped == Counter({"theoretical": 2})  # MPTS-52 records carry a field the map does not list
    assert json.loads(store.table("fetch_runs")["unmapped_fields"].iloc[0]) == {"theoretical": 2}


def test_dry_run_shows_the_summary_request_and_total(store, mp_catalog):
    connector = build_connector("mp", mp_catalog, FetchRequest(everything=True, page_size=4))
    report = run_ingest(connector, store, dry_run=True)
    assert report.n_available == 10 and "/materials/summary/" in report.request and "_skip=0" in report.request
    assert not store.exists()


def test_the_api_key_is_never_stored_logged_or_in_errors(tmp_path, store, mp_server, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    catalog = load_catalog(write_mp_catalog(tmp_path / "cached.yaml", mp_server.url, cache=True))
    fetch(store, catalog, everything=True, page_size=4)
    mp_server.fail(SUMMARY_PATH, *[503] * 5)
    with pytest.raises(SourceError) as error:
        fetch(store, catalog, ids=["mp-23193"])
    assert header(summary_requests(mp_server)[0], "x-api-key") == API_KEY  # it was sent, as a header
    assert API_KEY not in str(error.value)
    assert API_KEY not in caplog.text and API_KEY not in "".join(capsys.readouterr())
    stored_files = [path for path in store.root.rglob("*") if path.is_file()]
    assert any(path.name == "http_cache.sqlite" for path in stored_files)
    for path in stored_files:
        assert API_KEY.encode() not in path.read_bytes(), path
    runs = store.table("fetch_runs")
    assert list(runs["status"]) == ["complete", "failed"]
    assert not runs.astype(str).apply(lambda column: column.str.contains(API_KEY)).any().any()


@pytest.mark.parametrize(
    ("options", "stored"),
    [
        ({"ids": ["mp-1216", "mp-631"]}, {"mp-631"}),
        ({"formulas": ["YbO", "TiC"]}, {"mp-631"}),
        ({"elements": ["Yb", "O"]}, set()),
        ({"filter": "band_gap_min=3"}, {"mp-23193"}),  # KCl 5.04 eV and the deprecated YbO 3.53 eV
    ],
)
def test_a_deprecated_document_is_quarantined_with_its_reasons_and_payload_whatever_the_selection(
    store, deprecated_catalog_path, options, stored
):
    report = fetch(store, load_catalog(deprecated_catalog_path), **options)
    assert (report.n_fetched, report.n_stored, report.n_quarantined) == (len(stored) + 1, len(stored), 1)
    assert report.reasons == Counter({DEPRECATED_REASON: 1})
    rejected = store.query("SELECT item, reasons, raw FROM quarantine")
    assert rejected["item"].tolist() == ["mp-1216"]
    assert rejected["reasons"].iloc[0].tolist() == [DEPRECATED_REASON]
    assert json.loads(rejected["raw"].iloc[0]) == DEPRECATED
    assert set(store.table("materials")["source_id"]) == stored
    assert "mp:mp-1216" not in set(store.table("properties")["record_id"])


def test_all_still_leaves_deprecated_documents_to_the_api(store, deprecated_catalog_path, deprecated_server):
    report = fetch(store, load_catalog(deprecated_catalog_path), everything=True, page_size=4)
    assert all(request.query["deprecated"] == ["False"] for request in summary_requests(deprecated_server))
    assert (report.n_available, report.n_stored, report.n_quarantined) == (9, 8, 1)  # mp-13136's broken structure
    assert DEPRECATED_REASON not in report.reasons


def test_asking_for_a_deprecated_id_reports_why_nothing_was_stored(tmp_path, deprecated_catalog_path):
    arguments = ["fetch", "mp", "mp-1216", "--catalog", str(deprecated_catalog_path), "--store", str(tmp_path / "s")]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 1
    assert "mp: read 1, 0 valid records (0 values): 0 written; quarantined 1" in result.stdout
    assert f"     1  {DEPRECATED_REASON}" in result.stdout
    assert "nothing valid was found" in result.stderr


def test_pages_the_http_cache_answers_carry_when_the_source_gave_them(tmp_path, store, mp_server):
    # mp-api sends on matreg's session itself: the cache's answers are noted there, not in HttpClient.request
    catalog = load_catalog(write_mp_catalog(tmp_path / "cached.yaml", mp_server.url, cache=True))
    fetch(store, catalog, everything=True, page_size=4)
    n_requests, second_run = len(summary_requests(mp_server)), datetime.now(UTC)
    connector = build_connector("mp", catalog, FetchRequest(everything=True, page_size=4), cache_path=store.cache_path)
    pages = list(connector.pages())
    connector.close()
    assert len(summary_requests(mp_server)) == n_requests and len(pages) > 1  # every page from the HTTP cache
    assert all(page.read_at is not None and page.read_at < second_run for page in pages)


class Releases:
    """The replay over documents and a heartbeat that the test changes, as a new database release does."""

    def __init__(self) -> None:
        self.documents = copy.deepcopy(SUMMARY["data"])
        self.heartbeat = json.loads(HEARTBEAT)

    def __call__(self, request: Request) -> Reply:
        if request.path == "/heartbeat":
            return Reply.json(self.heartbeat)
        return summary_route_of(self.documents)(request)

    def document(self, material_id: str) -> dict:
        return next(doc for doc in self.documents if doc["material_id"] == material_id)


@pytest.fixture
def releases():
    return Releases()


@pytest.fixture
def releases_catalog_path(tmp_path, releases):
    with ReplayServer(releases) as server:
        path = write_mp_catalog(tmp_path / "releases.yaml", server.url)
        dataset = "datasets:\n  gaps:\n    description: t\n    version: 0.1.0\n    properties: [band_gap]\n"
        path.write_text(path.read_text() + dataset, encoding="utf-8")
        yield path


def formation_energy_of_mp_631(store: Store) -> tuple[float, str]:
    sql = (
        "SELECT p.value, m.database_version FROM properties p JOIN materials m USING (record_id) "
        "WHERE record_id = 'mp:mp-631' AND property = 'formation_energy_per_atom'"
    )
    return tuple(store.query(sql).iloc[0])


def test_pages_of_a_new_database_release_are_read_from_the_source_not_the_http_cache(
    store, releases, releases_catalog_path
):
    catalog = load_catalog(releases_catalog_path)
    assert fetch(store, catalog, everything=True, page_size=4, cache=True).n_cached_pages == 0
    assert fetch(store, catalog, everything=True, page_size=4, cache=True).n_cached_pages == 3  # the same release
    releases.document("mp-631")["formation_energy_per_atom"] = -0.70
    releases.heartbeat["db_version"] = "2024.12.18"
    report = fetch(store, catalog, everything=True, page_size=4, cache=True)
    assert (report.n_cached_pages, report.n_superseded) == (0, 0)  # no later read is stored: none is said to be
    assert formation_energy_of_mp_631(store) == (-0.70, "2024.12.18")


def test_a_whole_query_read_again_names_the_stored_records_it_no_longer_returns_and_withdraws_none(
    store, releases, releases_catalog_path
):
    catalog = load_catalog(releases_catalog_path)
    assert fetch(store, catalog, everything=True).not_read_again == []  # (mp-13136's broken structure: never stored)
    releases.document("mp-1216").update(deprecated=True, deprecation_reasons=["M"])  # --all asks deprecated=false
    assert fetch(store, catalog, ids=["mp-938"]).not_read_again == []  # a selection read for the first time
    report = fetch(store, catalog, everything=True)
    assert report.not_read_again == ["mp:mp-1216"]
    stored = store.query("SELECT not_read_again FROM fetch_runs WHERE run_id = ?", [report.run_id]).iloc[0, 0]
    assert list(stored) == ["mp:mp-1216"]
    assert store.query("SELECT count(*) FROM properties WHERE record_id = 'mp:mp-1216'").iloc[0, 0] == 5  # kept
    part = build_connector("mp", catalog, FetchRequest(everything=True, limit=4))
    assert run_ingest(part, store, limit=4).not_read_again is None  # a part of the query: no sign


def test_status_lists_what_the_latest_run_of_a_query_did_not_read_until_it_reads_it_again(
    tmp_path, releases, releases_catalog_path
):
    def matreg(*arguments):
        options = ["--store", str(tmp_path / "s")]
        if arguments[0] == "fetch":
            options += ["--catalog", str(releases_catalog_path), "--no-progress"]
        return CliRunner().invoke(app, [*arguments, *options])

    assert matreg("fetch", "mp", "--all").exit_code == 0
    releases.document("mp-938")["deprecated"] = True
    again = matreg("fetch", "mp", "--all")
    assert "not in this run, stored from this query (the source may have removed them; nothing was withdrawn): " \
        "1 record: mp:mp-938" in again.stdout  # fmt: skip
    status = matreg("status").stdout
    assert "not read again: stored records the latest run of their query did not read" in status
    assert "mp Materials Project summary where deprecated=False: 1 record: mp:mp-938  [run " in status
    releases.document("mp-938")["deprecated"] = False
    assert "not in this run" not in matreg("fetch", "mp", "--all").stdout
    assert "not read again" not in matreg("status").stdout


def test_a_release_and_an_export_warn_of_records_the_source_deprecated_that_they_still_hold(
    tmp_path, releases, releases_catalog_path
):
    def matreg(*arguments):
        catalog = ["--catalog", str(releases_catalog_path)] if arguments[0] != "review" else []
        return CliRunner().invoke(app, [*arguments, "--store", str(tmp_path / "s"), *catalog])

    assert matreg("fetch", "mp", "--all", "--no-progress").exit_code == 0
    releases.document("mp-1216").update(deprecated=True, deprecation_reasons=["M"])
    assert matreg("fetch", "mp", "mp-1216", "--no-progress").exit_code == 1  # quarantined: nothing valid
    deprecated = (
        "dataset 'gaps': the source deprecated them (an open quarantine row says so), the values of their last valid "
        "read are kept: 1 record: mp:mp-1216; `matreg review reject RECORD_ID` leaves one out"
    )
    exported = matreg("export", "gaps", "--out", str(tmp_path / "gaps.csv"))
    assert exported.exit_code == 0 and deprecated in exported.stderr
    assert "mp:mp-1216" in (tmp_path / "gaps.csv").read_text()  # still there: the steward decides
    released = matreg("release", "gaps", "--version", "1.0.0")
    assert released.exit_code == 0 and deprecated in released.stderr
    rejected = matreg("review", "reject", "mp:mp-1216", "--reason", "deprecated at the source", "--steward", "A. S.")
    assert rejected.exit_code == 0, rejected.output
    assert "deprecated" not in matreg("release", "gaps", "--version", "1.0.1").stderr


def test_a_deprecated_document_is_its_records_row_resolved_once_the_materials_project_gives_it_valid_again(
    store, releases, releases_catalog_path
):
    catalog = load_catalog(releases_catalog_path)
    assert fetch(store, catalog, ids=["mp-1216"]).n_stored == 1
    releases.document("mp-1216").update(deprecated=True, deprecation_reasons=["M"])
    assert fetch(store, catalog, ids=["mp-1216"]).n_quarantined == 1
    rows = store.query("SELECT item, record_id, reasons FROM open_quarantine")
    reason = "deprecated by the Materials Project (deprecation_reasons: M); fetch its formula for the current materials"
    assert [[item, record_id, list(reasons)] for item, record_id, reasons in rows.values.tolist()] == [
        ["mp-1216", "mp:mp-1216", [reason]]
    ]
    assert "the source deprecated them" in withdrawal_warnings(store, "gaps", ["mp:mp-1216"])[0]
    releases.document("mp-1216").update(deprecated=False, deprecation_reasons=None)  # the deprecation undone
    assert fetch(store, catalog, ids=["mp-1216"]).n_stored == 1  # as stored: written all the same, to resolve it
    assert store.query("SELECT count(*) FROM open_quarantine").iloc[0, 0] == 0
    assert store.query("SELECT record_id FROM quarantine").values.tolist() == [["mp:mp-1216"]]  # kept as history
    assert withdrawal_warnings(store, "gaps", ["mp:mp-1216"]) == []  # nor do releases warn of it any more


def test_a_readmitted_band_gap_is_shown_until_a_later_fetch_gives_it_otherwise_then_listed_to_decide_again(
    tmp_path, store
):
    documents = copy.deepcopy(SUMMARY["data"])
    by_id = {doc["material_id"]: doc for doc in documents}
    for material_id in ("mp-631", "mp-938", "mp-1216"):
        by_id[material_id]["band_gap"] = -0.05  # quarantined: outside the physical bounds
    readmitted = ["mp:mp-1216", "mp:mp-631", "mp:mp-938"]
    gaps = "SELECT record_id, value FROM properties WHERE property = 'band_gap' AND record_id IN (SELECT unnest(?))"
    gaps += " ORDER BY record_id"
    with ReplayServer(summary_route_of(documents)) as server:
        catalog = load_catalog(write_mp_catalog(tmp_path / "catalog.yaml", server.url))
        fetch(store, catalog, everything=True)
        entries = {}
        for record_id in readmitted:
            item = record_id.removeprefix("mp:") + ":band_gap"
            row = single_value(store.query("SELECT quarantine_id FROM quarantine WHERE item = ?", [item]))
            entries[record_id] = record_decision(
                store, "readmit", "A. Steward", "tiny negative gap", quarantine_id=row, value=0.0
            )
        assert fetch(store, catalog, everything=True).n_unchanged == 9  # given as readmitted: nothing changed
        assert store.query(gaps, [readmitted]).values.tolist() == [[record_id, 0.0] for record_id in readmitted]
        by_id["mp-1216"]["band_gap"] = -0.07  # rejected otherwise
        by_id["mp-938"]["band_gap"] = None  # no longer given
        by_id["mp-631"]["formula_pretty"] = "Ti2C"  # another material, with the same rejected gap, and a cell of it
        structure = by_id["mp-631"]["structure"]  # (a structure of another formula would be refused)
        xyz = Structure.from_dict(structure).lattice.get_cartesian_coords([0.25, 0.25, 0.25]).tolist()
        structure["sites"].append(copy.deepcopy(structure["sites"][0]) | {"abc": [0.25, 0.25, 0.25], "xyz": xyz})
        by_id["mp-631"]["nsites"] = 3
        report = fetch(store, catalog, everything=True)
    assert (report.n_unchanged, report.n_quarantined) == (6, 3)  # the readmits' records are written again
    assert store.query(gaps, [readmitted]).values.tolist() == []
    redo = decisions_to_redo(store, decided_values(store))
    not_given = "made on -0.05 eV as received, which a later read of the record no longer gives"
    assert redo[["entry_id", "why"]].values.tolist() == [
        [entries["mp:mp-1216"]["entry_id"], f"{not_given}: the readmitted value is not shown"],
        [entries["mp:mp-631"]["entry_id"], "made on TiC, the record is now Ti2C: the readmitted value is not shown"],
        [entries["mp:mp-938"]["entry_id"], f"{not_given}: the readmitted value is not shown"],
    ]
    rejected_again = single_value(
        store.query("SELECT quarantine_id FROM open_quarantine WHERE item = 'mp-1216:band_gap'")
    )
    record_decision(store, "readmit", "A. Steward", "still tiny", quarantine_id=rejected_again, value=0.0)
    assert store.query(gaps, [readmitted]).values.tolist() == [["mp:mp-1216", 0.0]]
    assert decisions_to_redo(store, decided_values(store))["record_id"].tolist() == ["mp:mp-631", "mp:mp-938"]


def test_a_resume_after_the_database_version_changed_notes_that_the_run_holds_rows_of_both(tmp_path, store):
    """The Materials Project's heartbeat names another db_version when an interrupted run is resumed (a release came
    out meanwhile): the pages committed before keep the version they were read at, those left are read at the new
    one, and the run summary says the run holds rows of both."""
    heartbeat = json.loads(HEARTBEAT)
    broken = {"_skip": ["8"]}  # the third page answers 503 until the server is mended

    def route(request: Request) -> Reply:
        if request.path == "/heartbeat":
            return Reply.json(heartbeat)
        if request.path == SUMMARY_PATH and broken and request.query.get("_skip") == broken["_skip"]:
            return Reply(503, b'{"detail": "Service Unavailable"}')
        return summary_route(request)

    with ReplayServer(route) as server:
        catalog = write_mp_catalog(tmp_path / "catalog.yaml", server.url)
        fetch_all = ["fetch", "mp", "--all", "--page-size", "4", "--catalog", str(catalog), "--store", str(store.root)]
        failed = CliRunner().invoke(app, [*fetch_all, "--no-progress"])
        assert failed.exit_code == TRY_LATER, failed.output
        broken.clear()
        heartbeat["db_version"] = "2025.09.25"
        resumed = CliRunner().invoke(app, [*fetch_all, "--no-progress", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    versions = "SELECT database_version, count(*) FROM materials GROUP BY ALL ORDER BY ALL"
    assert store.query(versions).values.tolist() == [["2023.11.1", 8], ["2025.09.25", 1]]
    assert (
        "note: the source's database version changed from 2023.11.1 to 2025.09.25 while the run was interrupted: it "
        "holds rows of both (materials.database_version); fetch again without --resume for rows of one version"
    ) in resumed.stdout
