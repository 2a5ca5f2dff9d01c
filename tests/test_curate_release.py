"""Versioned releases and dataset cards on real data: the bundled lab band gaps, OQMD and JANAF replayed over HTTP."""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shutil
import sys
import time
import warnings
from pathlib import Path

import bibtexparser
import mlcroissant as mlc
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pydantic
import pytest
from conftest import LAB_EXAMPLE, filled_once, matreg_in_zone, replay_server, single_value
from mp_replay import SUMMARY, summary_route_of, write_mp_catalog
from PIL import Image
from pymatgen.core import Lattice
from replay import ReplayServer

from matreg.catalog import Catalog, Dataset, Resolution, load_catalog
from matreg.curate.card import write_plots
from matreg.curate.release import (
    curate_dataset,
    diff,
    export_release,
    read_manifest,
    read_materials,
    read_release,
    release,
    released_versions,
)
from matreg.curate.review import record_decision
from matreg.errors import ConfigError, StoreError, UnknownName
from matreg.export import export_dataset
from matreg.ingest import run_ingest
from matreg.schema import load_tables, pandas_dtype
from matreg.sources import FetchRequest, build_connector
from matreg.sources.lab import LabConnector, load_mapping
from matreg.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from replay_oqmd import FILTER, make_route  # noqa: E402

LAB = "demo-lab-bandgaps"
LAB_METHOD = "optical absorption / transport (compiled)"  # examples/lab/mapping.yaml
CATALOG = """sources:
  janaf:
    title: NIST-JANAF Thermochemical Tables (local replay)
    connector: janaf
    base_url: {janaf}
    provenance: experimental
    license: Public domain (U.S. Government work, NIST SRD 13)
    citation: "M. W. Chase, Jr., NIST-JANAF Thermochemical Tables, J. Phys. Chem. Ref. Data, Monograph 9 (1998)"
    doi: 10.18434/T42S31
    database_version: "4th edition (1998)"
    http: {{retries: 0, backoff_s: 0, jitter_s: 0, timeout_s: 5, cache: false}}
  oqmd:
    title: OQMD, the Open Quantum Materials Database (local replay)
    connector: oqmd
    base_url: {oqmd}
    provenance: dft
    license: CC-BY-4.0
    citation: "J. E. Saal et al., JOM 65, 1501-1509 (2013); S. Kirklin et al., npj Comput. Mater. 1, 15010 (2015)"
    doi: 10.1007/s11837-013-0755-4
    database_version: "OQMD API 1.0 (oqmd.org)"
    http: {{retries: 0, backoff_s: 0, jitter_s: 0, timeout_s: 5, cache: false}}
datasets:
  gaps:
    description: Band gaps of every source, experimental and DFT side by side.
    version: 1.0.0
    properties: [band_gap]
  gaps-median:
    description: One band gap per material and temperature, the median of the linked values.
    version: 1.0.0
    properties: [band_gap]
    resolve: {{strategy: median}}
  gaps-prefer:
    description: One band gap per material and temperature, measured ones first.
    version: 1.0.0
    properties: [band_gap]
    resolve: {{strategy: prefer, prefer: [experimental]}}
  thermo:
    description: Standard-state thermochemistry of NIST-JANAF species.
    version: 1.0.0
    sources: [janaf]
    properties: [enthalpy_of_formation, entropy]
    temperature_K: 298.15
  thermo-tables:
    description: NIST-JANAF enthalpies of formation at every temperature of the tables.
    version: 1.0.0
    sources: [janaf]
    properties: [enthalpy_of_formation]
  nothing:
    description: No source in the store has it.
    version: 1.0.0
    properties: [bulk_modulus]
"""


@pytest.fixture
def catalog(tmp_path, janaf_server):
    with replay_server("oqmd", make_route(12, 5), prefix="/oqmdapi/") as oqmd:
        path = tmp_path / "catalog.yaml"
        path.write_text(CATALOG.format(janaf=janaf_server.url, oqmd=oqmd.url), encoding="utf-8")
        yield load_catalog(path)


def import_lab(store, data: Path = LAB_EXAMPLE / "bandgaps.csv") -> None:
    """Import the bundled lab file, or an edited copy of it elsewhere under its name (replacing what it said)."""
    run_ingest(LabConnector(data, load_mapping(LAB_EXAMPLE / "mapping.yaml"), name="bandgaps.csv"), store)


@pytest.fixture
def filled(request, store, catalog, tmp_path):
    """12 OQMD records (band gaps, formation energies), 3 JANAF tables and the 30 valid lab band gaps
    (`filled_once`)."""

    def fill() -> None:
        run_ingest(build_connector("oqmd", catalog, FetchRequest(filter=FILTER, page_size=5)), store)
        run_ingest(build_connector("janaf", catalog, FetchRequest(ids=["H-064", "C-095", "O-029"])), store)
        import_lab(store)

    filled_once(request, tmp_path / "catalog.yaml", tmp_path / "store", fill)
    return store


def import_lab_line(store, folder: Path, dataset: str, line: str, **mapping: str) -> None:
    """Import a one-line lab file `sample,composition,gap` of band gaps at 300 K as lab dataset `dataset`."""
    data = folder / f"{dataset}.csv"
    data.write_text(f"sample,composition,gap\n{line}\n", encoding="utf-8")
    attribution = {"citation": "test", "license": "MIT"} | mapping
    path = folder / f"{dataset}.yaml"
    path.write_text(
        f"dataset: {dataset}\nformula_column: composition\nid_column: sample\n"
        + "".join(f"{key}: {json.dumps(value)}\n" for key, value in attribution.items())
        + "columns:\n  gap: {property: band_gap, unit: eV, temperature_K: 300}\n",
        encoding="utf-8",
    )
    run_ingest(LabConnector(data, load_mapping(path)), store)


def decide(store, action: str, record_id: str, **value) -> dict:
    return record_decision(store, action, "A. Steward", "checked against the paper", record_id=record_id, **value)


def files_of(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_a_release_freezes_payload_and_manifest_of_every_input(filled, catalog):
    folder = release(filled, catalog, "gaps", "1.0.0")
    assert folder == filled.root / "releases" / "gaps" / "1.0.0"
    manifest = read_manifest(filled, "gaps", "1.0.0")
    content = manifest["content"]
    assert content["counts"] == {LAB: {"experimental": 30}, "oqmd": {"dft": 12}}
    assert content["payload"]["rows"] == 42 and content["units"] == {"band_gap": "eV"}
    runs = filled.query("SELECT source, run_id FROM fetch_runs WHERE status = 'complete'")
    oqmd_run = runs.loc[runs["source"] == "oqmd", "run_id"].tolist()
    assert content["sources"]["oqmd"] | {"url": None} == {
        "title": "OQMD, the Open Quantum Materials Database (local replay)",
        "doi": "10.1007/s11837-013-0755-4",
        "url": None,
        "database_versions": ["OQMD API 1.0 (oqmd.org)"],
        "fetch_runs": oqmd_run,
        "citations": [catalog.sources["oqmd"].citation],
        "licenses": ["CC-BY-4.0"],
    }
    assert content["sources"][LAB]["fetch_runs"] == runs.loc[runs["source"] == LAB, "run_id"].tolist()
    assert content["licenses"] == ["CC-BY-4.0", "MIT"]
    assert content["curation"]["log_entries"] == 0 and content["curation"]["last_entry_id"] is None
    payload = pd.read_parquet(folder / "payload.parquet")
    rows = curate_dataset(filled, catalog, "gaps").resolved.sort_values("record_id", ignore_index=True)[payload.columns]
    assert _cells(payload) == _cells(rows)
    assert manifest["files"]["payload.parquet"] == content["payload"]["sha256"]


def test_two_releases_of_unchanged_inputs_have_identical_manifests(filled, catalog):
    first = release(filled, catalog, "gaps", "1.0.0")
    second = release(filled, catalog, "gaps", "1.0.1")
    a, b = read_manifest(filled, "gaps", "1.0.0"), read_manifest(filled, "gaps", "1.0.1")
    assert a["content"] == b["content"] and a["content_sha256"] == b["content_sha256"]
    assert (first / "payload.parquet").read_bytes() == (second / "payload.parquet").read_bytes()
    same = {"payload.parquet", "sources.bib", "plots/band_gap.png"}
    assert {name: a["files"][name] for name in same} == {name: b["files"][name] for name in same}


def _as_an_older_matreg_wrote_it(path: Path) -> None:
    """Rewrite one of a store's Parquet files with pandas' metadata and pyarrow's copy of the schema (ARROW:schema),
    as matreg wrote a failed run's record and a steward's entries before its files carried no key-value metadata."""
    table = pq.read_table(path)
    frame = table.to_pandas(types_mapper=pandas_dtype)
    pq.write_table(pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False), path)


def test_a_store_whose_files_carry_pandas_metadata_reads_releases_and_exports_as_one_without(filled, catalog, tmp_path):
    """The store's reads take its types from the declared schema, not from what pandas or pyarrow wrote into a
    file's footer: a copy of the store with both in every file gives the same tables (values and dtypes), the same
    release (content_sha256, payload bytes) and the same export, before and after compacting it."""
    record_decision(filled, "flag", "A. Steward", "to check", record_id="janaf:H-064")
    older = Store(tmp_path / "older")
    shutil.copytree(filled.root, older.root)
    for path in older.data_dir.glob("c*/*.parquet"):
        _as_an_older_matreg_wrote_it(path)
        assert set(pq.read_metadata(path).metadata) == {b"pandas", b"ARROW:schema"}
    for compacted in (False, True):
        if compacted:
            older.compact()
        for name in load_tables():
            pd.testing.assert_frame_equal(older.table(name), filled.table(name))
        version = f"1.0.{int(compacted)}"
        folders = [release(store, catalog, "gaps", version) for store in (filled, older)]
        manifests = [read_manifest(store, "gaps", version) for store in (filled, older)]
        assert manifests[0]["content_sha256"] == manifests[1]["content_sha256"]
        assert len({(folder / "payload.parquet").read_bytes() for folder in folders}) == 1
        exports = [tmp_path / f"{store.root.name}-{version}.parquet" for store in (filled, older)]
        for store, out in zip((filled, older), exports, strict=True):
            export_dataset(store, catalog, "thermo", "parquet", out)
        assert len({out.read_bytes() for out in exports}) == 1


# Hosts' zones: UTC as /etc/localtime names it on many hosts (Etc/UTC), as TZ=UTC names it, and one that is not UTC
HOST_ZONES = ("Etc/UTC", "UTC", "Asia/Tokyo")


def test_a_release_has_one_payload_and_content_sha256_whatever_the_hosts_time_zone(
    store, catalog, tmp_path, monkeypatch
):
    """The same store released on hosts in three time zones: one payload, byte for byte, its times in UTC typed as
    the store declares them (`timestamp[us, tz=UTC]`), and one content_sha256."""
    import_lab(store)
    monkeypatch.setenv("MATREG_STORE", str(store.root))
    monkeypatch.setenv("MATREG_CATALOG", str(tmp_path / "catalog.yaml"))  # (the `catalog` fixture's)
    versions = {zone: f"1.0.{n}" for n, zone in enumerate(HOST_ZONES)}
    for zone, version in versions.items():
        matreg_in_zone(zone, "release", "gaps", "--version", version)
    manifests = [read_manifest(store, "gaps", version) for version in versions.values()]
    assert len({manifest["content_sha256"] for manifest in manifests}) == 1
    folders = [store.root / "releases" / "gaps" / version for version in versions.values()]
    for name in ("payload.parquet", "materials.parquet"):
        assert len({(folder / name).read_bytes() for folder in folders}) == 1, name
    payload = pq.read_table(folders[-1] / "payload.parquet")
    assert payload.schema.field("fetched_at").type == pa.timestamp("us", tz="UTC")
    stored = store.table("materials").set_index("record_id")["fetched_at"]
    released = payload.to_pandas().set_index("record_id")["fetched_at"]
    assert (released == stored.loc[released.index]).all()


def test_a_released_version_cannot_be_overwritten(filled, catalog):
    folder = release(filled, catalog, "gaps", "1.0.0")
    before = files_of(folder)
    import_lab(filled, _lab_copy(filled.root.parent, "roost-3,LuP,1.3,", "roost-3,LuP,1.5,"))
    with pytest.raises(StoreError, match="1.0.0 of 'gaps' exists; a released version is never overwritten"):
        release(filled, catalog, "gaps", "1.0.0")
    assert files_of(folder) == before
    assert [path.name for path in folder.parent.iterdir()] == ["1.0.0"]  # no staging folder beside it


def test_reimport_of_a_lab_file_with_one_changed_value_shows_in_diff(filled, catalog, tmp_path):
    release(filled, catalog, "gaps", "1.0.0")
    import_lab(filled, _lab_copy(tmp_path, "roost-3,LuP,1.3,", "roost-3,LuP,1.5,"))
    release(filled, catalog, "gaps", "1.1.0")
    changes = diff(filled, "gaps", "1.0.0", "1.1.0")
    assert set(changes["record_id"]) == {f"{LAB}:roost-3"} and set(changes["change"]) == {"value changed"}
    by_field = changes.set_index("field")[["old", "new"]].to_dict("index")
    assert by_field == {
        "original_value": {"old": 1.3, "new": 1.5},
        "raw_value": {"old": 1.3, "new": 1.5},
        "value": {"old": 1.3, "new": 1.5},
    }
    assert diff(filled, "gaps", "1.0.0", "1.0.0").empty


@pytest.mark.usefixtures("mp_environment")
def test_a_diff_names_a_records_new_space_group_and_structure_once(store, tmp_path, caplog):
    documents = copy.deepcopy(SUMMARY["data"])
    with ReplayServer(summary_route_of(documents)) as server:
        path = write_mp_catalog(tmp_path / "mp.yaml", server.url)
        dataset = "datasets:\n  gaps: {description: d, version: 1.0.0, properties: [band_gap]}\n"
        path.write_text(path.read_text() + dataset)
        catalog = load_catalog(path)
        run_ingest(build_connector("mp", catalog, FetchRequest(everything=True)), store)
        release(store, catalog, "gaps", "1.0.0")
        changed = next(document for document in documents if document["material_id"] == "mp-20332")
        changed["symmetry"] |= {"number": 1, "symbol": "P1"}  # relaxed again, to a strained cell
        changed["structure"]["lattice"]["matrix"][0][0] += 0.3
        lattice = Lattice(changed["structure"]["lattice"]["matrix"])
        for site in changed["structure"]["sites"]:  # (each site's xyz where its abc now places it)
            site["xyz"] = lattice.get_cartesian_coords(site["abc"]).tolist()
        lengths_and_angles = dict(zip(("a", "b", "c", "alpha", "beta", "gamma"), lattice.parameters, strict=True))
        changed["structure"]["lattice"] |= lengths_and_angles | {"volume": lattice.volume}  # (the matrix's)
        run_ingest(build_connector("mp", catalog, FetchRequest(everything=True)), store)
        release(store, catalog, "gaps", "1.1.0")
    recorded = [read_materials(store, "gaps", version).set_index("record_id") for version in ("1.0.0", "1.1.0")]
    hashes = [materials.loc["mp:mp-20332", "structure_sha256"] for materials in recorded]
    assert hashes[0] != hashes[1]
    changes = diff(store, "gaps", "1.0.0", "1.1.0")
    assert changes[["change", "source", "record_id", "property", "field", "old", "new"]].values.tolist() == [
        ["record changed", "mp", "mp:mp-20332", None, "spacegroup_number", 189, 1],
        ["record changed", "mp", "mp:mp-20332", None, "structure", hashes[0][:12], hashes[1][:12]],
    ]
    released_before_materials(store, "gaps", "1.0.0")
    assert diff(store, "gaps", "1.0.0", "1.1.0").empty
    assert caplog.messages[-1] == (
        "'gaps' 1.0.0: released by an older matreg, which recorded no space groups, sites or structures; their changes "
        "are not compared"
    )


def test_curation_entries_and_new_records_show_in_diff_and_manifest(filled, catalog):
    release(filled, catalog, "thermo", "1.0.0")
    release(filled, catalog, "gaps", "1.0.0")
    decide(filled, "reject", "janaf:O-029")
    decide(filled, "reject", "janaf:H-064", property="entropy")
    corrected = decide(filled, "correct", "janaf:C-095", property="enthalpy_of_formation", value=-393.5)
    decide(filled, "flag", f"{LAB}:roost-17", property="band_gap")  # no entry of thermo's rows
    run_ingest(build_connector("janaf", catalog, FetchRequest(ids=["Al-001"])), filled)
    release(filled, catalog, "thermo", "1.1.0")

    changes = diff(filled, "thermo", "1.0.0", "1.1.0")
    rows = changes[["change", "record_id", "property", "field", "old", "new"]].values.tolist()
    assert rows == [
        ["record added", "janaf:Al-001", None, "formula", None, "Al"],
        ["value changed", "janaf:C-095", "enthalpy_of_formation", "reviewed", False, True],
        ["value changed", "janaf:C-095", "enthalpy_of_formation", "value", -393.522, -393.5],
        ["value removed", "janaf:H-064", "entropy", "value", 188.834, None],
        ["record removed", "janaf:O-029", None, "formula", "O2", None],
    ]
    curation = read_manifest(filled, "thermo", "1.1.0")["content"]["curation"]
    assert curation == {
        "log_entries": 3,
        "last_entry_id": corrected["entry_id"],
        "rows_selected": 8,
        "rows_removed": 3,
        "values_corrected": 1,
        "values_flagged": 0,
        "values_accepted": 0,  # the corrected value is reviewed, not accepted as stored
    }
    release(filled, catalog, "gaps", "1.1.0")
    flagged = diff(filled, "gaps", "1.0.0", "1.1.0")
    assert flagged[["record_id", "field", "new"]].values.tolist() == [
        [f"{LAB}:roost-17", "flags", "A. Steward: checked against the paper"]
    ]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_export_of_a_release_is_byte_identical_after_the_store_changed(filled, catalog, tmp_path, fmt):
    folder = release(filled, catalog, "gaps", "1.0.0")
    first = export_release(filled, "gaps", "1.0.0", fmt, tmp_path / f"first.{fmt}")
    decide(filled, "correct", f"{LAB}:roost-17", property="band_gap", value=3.0)
    import_lab(filled, _lab_copy(tmp_path, "roost-3,LuP,1.3,", "roost-3,LuP,1.5,"))
    later = export_release(filled, "gaps", "1.0.0", fmt, tmp_path / f"later.{fmt}")
    assert (tmp_path / f"first.{fmt}").read_bytes() == (tmp_path / f"later.{fmt}").read_bytes()
    assert first | {"file": None} == later | {"file": None}
    sidecars = [(tmp_path / f"{name}.{fmt}.meta.json").read_bytes() for name in ("first", "later")]
    assert sidecars[0] == sidecars[1].replace(f"later.{fmt}".encode(), f"first.{fmt}".encode())
    exported = {"parquet": pd.read_parquet, "csv": pd.read_csv, "jsonl": lambda p: pd.read_json(p, lines=True)}[fmt]
    lut = exported(tmp_path / f"later.{fmt}").set_index("record_id").loc[f"{LAB}:roost-3"]
    assert (lut["value"], lut["formula"]) == (1.3, "LuP")
    if fmt == "parquet":
        assert first["sha256"] == read_manifest(filled, "gaps", "1.0.0")["content"]["payload"]["sha256"]
        assert (tmp_path / "first.parquet").read_bytes() == (folder / "payload.parquet").read_bytes()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_release_made_on_a_host_in_another_zone_is_exported_with_its_times_in_utc(store, catalog, tmp_path, fmt):
    """A payload that a matreg before 2026-12 released on a host in Tokyo holds its times in that zone (+09:00): an
    export of it writes them in UTC, as the store holds them."""
    import_lab(store)
    path = release(store, catalog, "gaps", "1.0.0") / "payload.parquet"
    payload = pq.read_table(path)
    column = payload.schema.get_field_index("fetched_at")
    tokyo = payload.schema.set(column, pa.field("fetched_at", pa.timestamp("us", tz="Asia/Tokyo")))
    pq.write_table(payload.cast(tokyo), path)
    export_release(store, "gaps", "1.0.0", fmt, tmp_path / f"gaps.{fmt}")
    lines = (tmp_path / f"gaps.{fmt}").read_text(encoding="utf-8").splitlines()
    rows = list(csv.DictReader(lines)) if fmt == "csv" else [json.loads(line) for line in lines]
    shown = pd.Series([row["fetched_at"] for row in rows])
    assert shown.str.endswith("+00:00").all(), shown.iloc[0]
    stored = payload.column("fetched_at").to_pandas()
    assert (pd.to_datetime(shown).to_numpy() == stored.to_numpy()).all()


def test_wide_export_of_a_release(filled, catalog, tmp_path):
    catalog = catalog.model_copy(deep=True)
    catalog.datasets["thermo"].properties = ["entropy", "enthalpy_of_formation"]  # not in alphabetical order
    release(filled, catalog, "thermo", "1.0.0")
    meta = export_release(filled, "thermo", "1.0.0", "csv", tmp_path / "wide.csv", layout="wide")
    store_meta = export_dataset(filled, catalog, "thermo", "csv", tmp_path / "store.csv", layout="wide")
    assert meta["units"] == store_meta["units"] == {"entropy": "J/(mol*K)", "enthalpy_of_formation": "kJ/mol"}
    assert json.loads((tmp_path / "wide.csv.meta.json").read_text())["units"] == meta["units"]
    wide = pd.read_csv(tmp_path / "wide.csv").set_index("formula")
    assert wide.loc["CO2", "enthalpy_of_formation"] == pytest.approx(-393.522)
    assert wide.loc["H2O", "entropy"] == pytest.approx(188.834)
    assert wide.columns[wide.columns.get_loc("pressure_Pa") + 1 :][:6].tolist() == [
        "entropy",
        "entropy_uncertainty",
        "enthalpy_of_formation",
        "enthalpy_of_formation_uncertainty",
        "entropy_raw_value",
        "enthalpy_of_formation_raw_value",
    ]  # as a wide export of the store


@pytest.mark.parametrize("layout", ["long", "wide"])
def test_a_parquet_export_has_the_canonical_column_types_whatever_its_rows_hold(store, catalog, tmp_path, layout):
    """Lab rows without name or phase: those columns are text still, in the store's export and the release's, so
    that this month's export appends to last month's (a column of nulls or of floats would not)."""
    import_lab(store)
    release(store, catalog, "gaps", "1.0.0")
    export_dataset(store, catalog, "gaps", "parquet", tmp_path / "store.parquet", layout=layout)
    export_release(store, "gaps", "1.0.0", "parquet", tmp_path / "release.parquet", layout=layout)
    schemas = [pq.read_schema(tmp_path / f"{name}.parquet") for name in ("store", "release")]
    for schema in schemas:
        types = {name: str(schema.field(name).type) for name in ["name", "phase", "formula", "temperature_K"]}
        assert types == {"name": "string", "phase": "string", "formula": "string", "temperature_K": "double"}
        assert layout == "wide" or pa.types.is_timestamp(schema.field("fetched_at").type)
    assert schemas[0].remove_metadata() == schemas[1].remove_metadata()


def test_an_unknown_export_format_is_the_same_config_error_from_the_store_and_from_a_release(store, catalog, tmp_path):
    """export_dataset refused a format it has no writer for only as it wrote, after curating the dataset, and as a
    StoreError (exit 1), where export_release refused it at once as a ConfigError (exit 2): the same mistake, now the
    same ConfigError from both, before any work."""
    import_lab(store)
    release(store, catalog, "gaps", "1.0.0")
    for export in (
        lambda fmt, layout: export_dataset(store, catalog, "gaps", fmt, tmp_path / "gaps.xlsx", layout=layout),
        lambda fmt, layout: export_release(store, "gaps", "1.0.0", fmt, tmp_path / "gaps.xlsx", layout=layout),
    ):
        with pytest.raises(ConfigError, match=r"^unknown format 'xlsx' \(choose from parquet, csv, jsonl\)$"):
            export("xlsx", "long")
        with pytest.raises(ConfigError, match=r"^unknown layout 'tall' \(choose from long, wide\)$"):
            export("csv", "tall")
    assert not (tmp_path / "gaps.xlsx").exists()


def without_formula_original(store, name: str, version: str) -> None:
    """Rewrite a release's payload as a matreg older than the column formula_original released it."""
    path = store.root / "releases" / name / version / "payload.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["formula_original"]), path)


def released_before_materials(store, name: str, version: str) -> None:
    """Make a release as a matreg older than materials.parquet released it: without the file, its manifest naming
    none (the content's hash, which covers it, left as it was)."""
    folder = store.root / "releases" / name / version
    (folder / "materials.parquet").unlink()
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    del manifest["content"]["materials"], manifest["files"]["materials.parquet"]
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


OLDER_RELEASE = "'gaps' 1.0.0: released by an older matreg, which recorded no formula_original"


def test_a_release_made_before_formula_original_is_exported_wide_with_that_column_empty_said_once(
    filled, catalog, tmp_path, caplog
):
    release(filled, catalog, "gaps", "1.0.0")
    without_formula_original(filled, "gaps", "1.0.0")
    caplog.clear()
    export_release(filled, "gaps", "1.0.0", "csv", tmp_path / "wide.csv", layout="wide")
    assert caplog.messages == [f"{OLDER_RELEASE}: empty in the wide file"]
    export_dataset(filled, catalog, "gaps", "csv", tmp_path / "store.csv", layout="wide")
    store_now = pd.read_csv(tmp_path / "store.csv").assign(formula_original=float("nan"))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "wide.csv"), store_now)  # the store as released


def test_a_diff_leaves_out_the_fields_one_release_did_not_record_and_says_which_once(filled, catalog, caplog):
    release(filled, catalog, "gaps", "1.0.0")
    without_formula_original(filled, "gaps", "1.0.0")
    decide(filled, "correct", f"{LAB}:roost-17", property="band_gap", value=3.0)
    release(filled, catalog, "gaps", "1.1.0")
    caplog.clear()
    changes = diff(filled, "gaps", "1.0.0", "1.1.0")
    assert changes[["record_id", "field", "old", "new"]].values.tolist() == [
        [f"{LAB}:roost-17", "reviewed", False, True],
        [f"{LAB}:roost-17", "value", 2.94, 3.0],
    ]
    assert caplog.messages == [f"{OLDER_RELEASE}; its changes are not compared"]


def test_the_croissant_file_validates_with_mlcroissant_and_reads_the_payload(filled, catalog):
    folder = release(filled, catalog, "gaps", "1.0.0")
    dataset = mlc.Dataset(jsonld=folder / "croissant.json")
    assert not dataset.metadata.ctx.issues.errors and not dataset.metadata.ctx.issues.warnings
    document = json.loads((folder / "croissant.json").read_text())
    assert document["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    assert (document["name"], document["version"]) == ("gaps", "1.0.0")
    files = read_manifest(filled, "gaps", "1.0.0")["files"]
    assert [(file["name"], file["sha256"]) for file in document["distribution"]] == [
        ("payload.parquet", files["payload.parquet"]),
        ("materials.parquet", files["materials.parquet"]),
    ]
    records = list(dataset.records("values"))
    assert len(records) == 42
    gaps = {r["values/record_id"].decode(): r["values/value"] for r in records}
    assert gaps[f"{LAB}:roost-2"] == 3.08 and gaps[f"{LAB}:roost-5"] == pytest.approx(3.44)


def test_the_card_has_non_empty_plots_per_property(filled, catalog):
    folder = release(filled, catalog, "thermo", "1.0.0")
    for prop in ("enthalpy_of_formation", "entropy"):
        with Image.open(folder / "plots" / f"{prop}.png") as image:
            assert image.format == "PNG" and image.size == (640, 400)
            saturation = image.convert("RGB").convert("HSV").getchannel("S")
            assert sum(saturation.histogram()[80:]) > 1000  # coloured bars, not only black axes on white
    assert "![entropy](plots/entropy.png)" in (folder / "README.md").read_text()


def test_the_card_plots_the_finite_values_and_says_how_many_are_not(tmp_path):
    """A value NaN or infinite (an empty median) failed the release: 'autodetected range of [nan, nan] is not
    finite'; a property of no finite values, or of values too far apart for finite bins, has no plot."""
    payload = pd.DataFrame(
        {
            "property": ["entropy"] * 4 + ["band_gap", "bulk_modulus", "bulk_modulus"],
            "provenance": "experimental",
            "value": [20.979, 22.5, float("nan"), float("inf"), float("nan"), -1.7e308, 1.7e308],
        }
    )
    units = {"entropy": "J/(mol*K)", "band_gap": "eV", "bulk_modulus": "GPa"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as `python -W error` makes a release
        plots = write_plots(tmp_path, {"dataset": "d", "content": {"units": units}}, payload)
    assert plots == [tmp_path / "entropy.png"]
    with Image.open(plots[0]) as image:
        assert image.format == "PNG" and image.size == (640, 400)


def test_sources_bib_has_one_entry_per_source_database(filled, catalog):
    folder = release(filled, catalog, "gaps", "1.0.0")
    entries = {entry["ID"]: entry for entry in bibtexparser.loads((folder / "sources.bib").read_text()).entries}
    assert sorted(entries) == ["demo_lab_bandgaps", "oqmd"]
    assert entries["oqmd"]["doi"] == "10.1007/s11837-013-0755-4"
    assert entries["oqmd"]["version"] == "OQMD API 1.0 (oqmd.org)"
    assert entries["oqmd"]["note"].startswith("J. E. Saal et al., JOM 65, 1501-1509 (2013)")
    assert "Licence: MIT" in entries["demo_lab_bandgaps"]["note"]
    thermo = release(filled, catalog, "thermo", "1.0.0")
    janaf = bibtexparser.loads((thermo / "sources.bib").read_text()).entries
    assert [(e["ID"], e["doi"], e["version"]) for e in janaf] == [("janaf", "10.18434/T42S31", "4th edition (1998)")]


def test_a_user_and_password_in_a_base_url_reach_no_release_file_nor_the_catalog_listing(store, tmp_path, run):
    with ReplayServer(make_route(12, 5), prefix="/oqmdapi/") as oqmd:
        url = oqmd.url.replace("http://", "http://alice:S3cretPW@")
        path = tmp_path / "catalog.yaml"
        path.write_text(CATALOG.format(janaf="http://127.0.0.1:9/tables/", oqmd=url), encoding="utf-8")
        catalog = load_catalog(path)
        run_ingest(build_connector("oqmd", catalog, FetchRequest(filter=FILTER, page_size=5)), store)
    folder = release(store, catalog, "gaps", "1.0.0")
    fetched_from = oqmd.url + "formationenergy"  # (the run's endpoint)
    assert read_manifest(store, "gaps", "1.0.0")["content"]["sources"]["oqmd"]["url"] == fetched_from
    written = [item.read_bytes() for item in folder.rglob("*") if item.is_file()]
    assert len(written) > 3 and not any(b"S3cretPW" in data or b"alice" in data for data in written)
    listing = run("catalog", "--catalog", str(path))
    assert listing.exit_code == 0 and oqmd.url in listing.stdout and "S3cretPW" not in listing.stdout


def test_a_source_is_released_with_the_url_its_rows_were_fetched_from_and_a_lab_file_with_no_path(
    filled, catalog, tmp_path
):
    """One store state released under two catalogs (OQMD's base_url changed since the fetch): the same content."""
    moved = tmp_path / "moved.yaml"
    moved.write_text(CATALOG.format(janaf="http://127.0.0.1:9/tables/", oqmd="https://mirror.example/oqmd/"))
    first = release(filled, catalog, "gaps", "1.0.0")
    second = release(filled, load_catalog(moved), "gaps", "1.0.1")
    a, b = read_manifest(filled, "gaps", "1.0.0"), read_manifest(filled, "gaps", "1.0.1")
    assert a["content"] == b["content"] and a["content_sha256"] == b["content_sha256"]
    fetched_from = filled.query("SELECT endpoint FROM fetch_runs WHERE source = 'oqmd'").iloc[0, 0]
    assert fetched_from.startswith("http://127.0.0.1:") and a["content"]["sources"]["oqmd"]["url"] == fetched_from
    lab_file = filled.query(f"SELECT endpoint FROM fetch_runs WHERE source = '{LAB}'").iloc[0, 0]
    assert a["content"]["sources"][LAB]["url"] is None  # a lab file's path is no URL to publish
    written = [item.read_bytes() for folder in (first, second) for item in folder.rglob("*") if item.is_file()]
    assert len(written) > 6 and not any(lab_file.encode() in data for data in written)


@pytest.mark.parametrize("scheme", ["file", "FILE"])
def test_a_table_read_from_a_local_mirror_is_released_and_exported_with_its_file_name_only(store, tmp_path, scheme):
    """The demo's JANAF tables come from a file:// copy: its folder (a user's home) is no URL to publish."""
    mirror = tmp_path / "home" / "alice" / "janaf"
    shutil.copytree(LAB_EXAMPLE.parent / "janaf" / "tables", mirror)
    path = tmp_path / "catalog.yaml"
    url = mirror.as_uri().replace("file:", f"{scheme}:", 1) + "/"
    path.write_text(CATALOG.format(janaf=url, oqmd="http://127.0.0.1:9/oqmdapi/"), encoding="utf-8")
    catalog = load_catalog(path)
    run_ingest(build_connector("janaf", catalog, FetchRequest(ids=["Al-001", "H-064"])), store)
    folder = release(store, catalog, "thermo", "1.0.0")
    export_dataset(store, catalog, "thermo", "csv", tmp_path / "thermo.csv")
    payload = pq.read_table(folder / "payload.parquet").to_pandas()
    assert sorted(set(payload["source_url"])) == ["file:Al-001.txt", "file:H-064.txt"]
    exported = pd.read_csv(tmp_path / "thermo.csv")
    assert len(exported) == 4 and sorted(set(exported["source_url"])) == ["file:Al-001.txt", "file:H-064.txt"]
    written = [item.read_bytes() for item in [*folder.rglob("*"), *tmp_path.glob("thermo.csv*")] if item.is_file()]
    assert len(written) > 4 and not any(b"alice" in data for data in written)
    stored = store.query("SELECT DISTINCT source_url FROM materials")["source_url"]
    assert all(url.startswith(mirror.as_uri().replace("file:", f"{scheme}:", 1)) for url in stored)  # as read


def test_the_card_readme_says_what_from_where_how_curated_and_the_known_conflicts(filled, catalog):
    decide(filled, "accept", f"{LAB}:roost-2")
    folder = release(filled, catalog, "gaps", "1.0.0")
    readme = (folder / "README.md").read_text()
    for heading in ("What", "From where", "How curated", "Provenance mix", "Known conflicts", "How to cite"):
        assert f"\n## {heading}\n" in readme
    materials = json.loads((folder / "manifest.json").read_text())["content"]["materials"]
    assert f"`materials.parquet` (sha256 `{materials['sha256']}`)" in readme.split("## From where")[0]
    assert "| demo-lab-bandgaps | experimental | 30 |" in readme and "| oqmd | dft | 12 |" in readme
    assert "Curation log (1 entries on this dataset's rows, the last `" in readme and "accepted 1." in readme
    conflict = readme.split("## Known conflicts")[1]
    assert "| CuBr | demo-lab-bandgaps:roost-17 |" in conflict and "| 2.94 | eV | 0.14 |" in conflict


def test_a_median_release_keeps_the_spread_and_validates(filled, catalog):
    folder = release(filled, catalog, "gaps-median", "1.0.0")
    payload = pd.read_parquet(folder / "payload.parquet").set_index("record_id")
    assert len(payload) == 41
    cubr = payload.loc["group:CuBr"]
    assert (cubr["value"], cubr["method"], cubr["resolved_by"]) == (pytest.approx(3.01), LAB_METHOD, "median of 2")
    assert cubr["spread"] == pytest.approx(0.14)
    assert not mlc.Dataset(jsonld=folder / "croissant.json").metadata.ctx.issues.errors
    conflicts = _conflict_table(folder)  # the median's values, 0.14 eV apart: beyond the default 0.1 eV
    assert conflicts["record_id"].tolist() == [f"{LAB}:roost-17", f"{LAB}:roost-2"]
    assert "41 rows released (median of 1: 40, median of 2: 1)." in (folder / "README.md").read_text()


def test_a_wide_export_of_a_median_release_says_which_rule_gave_each_value(filled, catalog, tmp_path):
    release(filled, catalog, "gaps-median", "1.0.0")
    export_release(filled, "gaps-median", "1.0.0", "csv", tmp_path / "wide.csv", layout="wide")
    wide = pd.read_csv(tmp_path / "wide.csv").set_index("record_id")
    assert wide.loc["group:CuBr", ["band_gap", "band_gap_resolved_by"]].tolist() == [pytest.approx(3.01), "median of 2"]


def test_a_median_counts_each_source_licence_and_provenance_of_its_values(filled, catalog, tmp_path):
    citation = "A. Author, J. Test 1, 1 (2020); B. Author, J. Test 2, 2 (2021)"
    import_lab_line(
        filled, tmp_path, "cc0-lab", "c-1,CuBr,3.2", license="CC0-1.0", citation=citation, method=LAB_METHOD
    )
    import_lab_line(filled, tmp_path, "dft-lab", "d-1,CuBr,2.0", provenance="dft", method="PBE")  # no temperature
    folder = release(filled, catalog, "gaps-median", "1.0.0")
    payload = _payload(filled, "gaps-median", "1.0.0")
    cubr = payload.loc["group:CuBr"]
    assert (cubr["resolved_by"], cubr["license"]) == ("median of 3", "CC0-1.0; MIT")  # the row joins its values' texts
    assert payload.loc["dft-lab:d-1", ["value", "method", "resolved_by"]].tolist() == [2.0, "PBE", "median of 1"]
    content = read_manifest(filled, "gaps-median", "1.0.0")["content"]
    assert content["licenses"] == ["CC-BY-4.0", "CC0-1.0", "MIT"]
    assert citation in content["citations"] and content["sources"]["cc0-lab"]["citations"] == [citation]
    assert sorted(content["sources"]) == ["cc0-lab", LAB, "dft-lab", "oqmd"]
    assert content["counts"] == {  # values: the median of CuBr counts each of its four
        "cc0-lab": {"experimental": 1},
        LAB: {"experimental": 30},
        "dft-lab": {"dft": 1},
        "oqmd": {"dft": 12},
    }
    assert json.loads((folder / "croissant.json").read_text())["license"] == content["licenses"]
    mix = (folder / "README.md").read_text().split("## Provenance mix")[1].split("\n## ")[0]
    assert "| dft-lab | dft | 1 |" in mix and ";" not in mix
    meta = export_dataset(filled, catalog, "gaps-median", "csv", tmp_path / "median.csv")
    assert sorted({source["source"] for source in meta["sources"]}) == ["cc0-lab", LAB, "dft-lab", "oqmd"]
    assert sorted({source["license"] for source in meta["sources"]}) == ["CC-BY-4.0", "CC0-1.0", "MIT"]
    assert meta["licenses"] == content["licenses"]  # each value's own, not a median row's 'CC0-1.0; MIT'
    assert meta["provenance"] == ["dft", "experimental"]


def test_the_card_cites_only_sources_of_released_rows(filled, catalog, tmp_path):
    import_lab_line(filled, tmp_path, "dft-lab", "d-1,CuBr,2.0", provenance="dft", method="PBE")  # no temperature
    folder = release(filled, catalog, "gaps-prefer", "1.0.0")  # experimental first: CuBr's DFT gap goes
    assert "dft-lab" not in set(_payload(filled, "gaps-prefer", "1.0.0")["source"])
    content = read_manifest(filled, "gaps-prefer", "1.0.0")["content"]
    assert sorted(content["sources"]) == [LAB, "oqmd"] and sorted(content["counts"]) == [LAB, "oqmd"]
    bib = bibtexparser.loads((folder / "sources.bib").read_text()).entries
    assert sorted(entry["ID"] for entry in bib) == ["demo_lab_bandgaps", "oqmd"]
    assert "dft-lab" not in (folder / "README.md").read_text().split("## How curated")[0]


def test_a_median_of_values_that_differ_in_review_is_reviewed_only_when_all_are(filled, catalog):
    decide(filled, "accept", f"{LAB}:roost-2")
    release(filled, catalog, "gaps-median", "1.0.0")
    decide(filled, "accept", f"{LAB}:roost-17", property="band_gap")
    release(filled, catalog, "gaps-median", "1.1.0")
    cubr = [_payload(filled, "gaps-median", version).loc["group:CuBr"] for version in ("1.0.0", "1.1.0")]
    assert [(row["value"], row["reviewed"], row["records"]) for row in cubr] == [
        (pytest.approx(3.01), False, f"{LAB}:roost-17; {LAB}:roost-2"),
        (pytest.approx(3.01), True, f"{LAB}:roost-17; {LAB}:roost-2"),
    ]
    assert _payload(filled, "gaps-median", "1.0.0")["reviewed"].dtype == bool


def test_a_median_with_a_flagged_value_is_flagged_and_keeps_the_median_of_the_stored_values(filled, catalog):
    release(filled, catalog, "gaps-median", "1.0.0")
    record_decision(filled, "flag", "A. Steward", "suspect", record_id=f"{LAB}:roost-17", property="band_gap")
    record_decision(filled, "correct", "B. Steward", "typo", record_id=f"{LAB}:roost-2", property="band_gap", value=3.2)
    release(filled, catalog, "gaps-median", "1.1.0")
    payload = _payload(filled, "gaps-median", "1.1.0")
    cubr = payload.loc["group:CuBr"]  # roost-2 (3.08 eV, corrected to 3.2) and roost-17 (2.94 eV, flagged)
    assert cubr["flags"] == f"[{LAB}:roost-17] A. Steward: suspect"
    assert (cubr["value"], cubr["raw_value"]) == (pytest.approx((3.2 + 2.94) / 2), pytest.approx((3.08 + 2.94) / 2))
    assert (
        payload["flags"].notna().sum()
        == read_manifest(filled, "gaps-median", "1.1.0")["content"]["curation"]["values_flagged"]
        == 1
    )
    changes = diff(filled, "gaps-median", "1.0.0", "1.1.0").set_index("field")
    assert changes.loc["flags", ["record_id", "old", "new"]].tolist() == ["group:CuBr", None, cubr["flags"]]
    assert changes.loc["value", "record_id"] == "group:CuBr" and "raw_value" not in changes.index


def test_decisions_on_other_records_or_values_and_dismissals_leave_the_content_hash_as_it_is(filled, catalog):
    release(filled, catalog, "gaps", "1.0.0")
    decide(filled, "accept", "janaf:H-064")
    oqmd = filled.query("SELECT min(record_id) FROM properties WHERE property = 'formation_energy_per_atom'").iloc[0, 0]
    decide(filled, "flag", oqmd, property="formation_energy_per_atom")  # a record of gaps, a value it leaves out
    bad_bounds = single_value(filled.query("SELECT quarantine_id FROM quarantine WHERE item = 'bad-bounds'"))
    record_decision(filled, "dismiss", "A. Steward", "sample lost", quarantine_id=bad_bounds)  # admits nothing
    release(filled, catalog, "gaps", "1.0.1")
    before, after = read_manifest(filled, "gaps", "1.0.0"), read_manifest(filled, "gaps", "1.0.1")
    assert after["content"] == before["content"] and after["content_sha256"] == before["content_sha256"]
    bad_unit = single_value(filled.query("SELECT quarantine_id FROM quarantine WHERE item = 'bad-unit'"))
    readmit = record_decision(filled, "readmit", "A. Steward", "eV", quarantine_id=bad_unit, unit="eV")
    release(filled, catalog, "gaps", "1.1.0")
    curation = read_manifest(filled, "gaps", "1.1.0")["content"]["curation"]
    assert (curation["log_entries"], curation["last_entry_id"]) == (1, readmit["entry_id"])


def test_the_card_lists_conflicts_of_one_method(filled, catalog, tmp_path):
    data = tmp_path / "pl.csv"
    data.write_text("sample,composition,gap\npl-1,CuBr,2.7\n", encoding="utf-8")
    mapping = tmp_path / "pl.yaml"
    mapping.write_text(
        "dataset: pl-lab\nformula_column: composition\nid_column: sample\nmethod: photoluminescence\n"
        "citation: test\nlicense: MIT\ncolumns:\n  gap: {property: band_gap, unit: eV, temperature_K: 300}\n",
        encoding="utf-8",
    )
    run_ingest(LabConnector(data, load_mapping(mapping)), filled)  # CuBr by another method: 0.38 eV from roost-2
    readme = (release(filled, catalog, "gaps", "1.0.0") / "README.md").read_text()
    conflicts = readme.split("## Known conflicts")[1].split("## How to cite")[0]
    assert "beyond the tolerance: 1 (" in conflicts and "| 2.94 | eV | 0.14 |" in conflicts
    assert "pl-lab" not in conflicts


def test_a_line_break_in_a_cell_of_the_card_keeps_its_table_whole(store, catalog, tmp_path):
    """A method "PL\\r\\nline" ended its row of the known conflicts in the middle: a table's cells hold no line."""
    import_lab_line(store, tmp_path, "pl-lab", "pl-1,ZnO,3.3\npl-2,ZnO,3.0", method="PL\r\nline|x")
    conflicts = _conflict_table(release(store, catalog, "gaps", "1.0.0"))
    assert sorted(conflicts["record_id"]) == ["pl-lab:pl-1", "pl-lab:pl-2"]
    assert conflicts["method"].tolist() == ["PL<br>line\\|x"] * 2


def _conflict_table(folder: Path) -> pd.DataFrame:
    """The card's table of known conflicts, as text cells."""
    section = (folder / "README.md").read_text().split("## Known conflicts")[1].split("## How to cite")[0]
    lines = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return pd.DataFrame(lines[1:], columns=[cell.strip() for cell in lines[0]]).apply(lambda c: c.str.strip())


def test_the_card_lists_conflicts_among_the_values_the_dataset_selects(filled, catalog, tmp_path):
    alpha = FetchRequest(ids=["Al-096"], all_temperatures=True)  # alpha Al2O3 at every temperature
    run_ingest(build_connector("janaf", catalog, alpha), filled)
    rows = 'sample,composition,name,dhf\nal-1,Al2O3,"Aluminum Oxide, Alpha (Al2O3)",-1500.0\n'  # alpha, as JANAF's
    (tmp_path / "dhf.csv").write_text(rows, encoding="utf-8")
    (tmp_path / "dhf.yaml").write_text(
        "dataset: dhf-lab\nformula_column: composition\nid_column: sample\nname_column: name\ncitation: test\n"
        "license: MIT\n"
        "method: NIST-JANAF critical evaluation\n"  # (conflicts are among values of one method)
        "columns:\n  dhf: {property: enthalpy_of_formation, unit: kJ/mol, temperature_K: 298.15}\n",
        encoding="utf-8",
    )
    run_ingest(LabConnector(tmp_path / "dhf.csv", load_mapping(tmp_path / "dhf.yaml")), filled)  # linked to alpha
    readme = (release(filled, catalog, "thermo", "1.0.0") / "README.md").read_text()  # JANAF's values alone
    assert "No values of one method disagree beyond the tolerance." in readme
    catalog.datasets["thermo"].sources = None  # JANAF's and the lab's values at 298.15 K
    at_298 = _conflict_table(release(filled, catalog, "thermo", "1.1.0"))
    assert at_298[["record_id", "value", "spread"]].values.tolist() == [
        ["janaf:Al-096", "-1675.69", "175.692"],
        ["dhf-lab:al-1", "-1500", "175.692"],
    ]
    assert "temperature_K" not in at_298  # the selection states it
    tables = (release(filled, catalog, "thermo-tables", "1.0.0") / "README.md").read_text()  # JANAF's, every T
    assert "No values of one method disagree beyond the tolerance." in tables


def test_the_card_lists_the_values_a_resolution_merged_or_chose_between_that_disagree(filled, catalog, tmp_path):
    import_lab_line(filled, tmp_path, "dft-lab", "d-1,CuBr,2.0", provenance="dft", method="PBE")  # no temperature
    for name in ("gaps-median", "gaps-prefer"):
        catalog.datasets[name].resolve.tolerance = 0.2  # CuBr's two measured gaps are 0.14 eV apart
    median = release(filled, catalog, "gaps-median", "1.0.0")
    assert (pd.read_parquet(median / "payload.parquet")["spread"] <= 0.2).all()  # no median of PBE's and measured
    assert (
        "No values a median merged (of one provenance and method, at the same conditions) disagree beyond the "
        "tolerance." in (median / "README.md").read_text()
    )
    prefer = release(filled, catalog, "gaps-prefer", "1.0.0")  # experimental first: PBE's 2.0 eV dropped
    assert _conflict_table(prefer)[["record_id", "method", "value", "spread"]].values.tolist() == [
        ["dft-lab:d-1", "PBE", "2", "1.08"],
        [f"{LAB}:roost-17", LAB_METHOD, "2.94", "1.08"],
        [f"{LAB}:roost-2", LAB_METHOD, "3.08", "1.08"],
    ]
    readme = (prefer / "README.md").read_text()
    assert "values the preference chose between (of every method, at the same conditions), as curated" in readme
    assert "42 rows released (prefer experimental: 30, prefer: no value of a listed provenance or method: 12)" in readme


def test_prefer_entries_that_match_no_value_are_logged_and_warned_in_the_card(filled, catalog, caplog):
    catalog.datasets["gaps-prefer"].resolve.prefer = ["experimental", "r2SCAN", "PBE+U"]
    folder = release(filled, catalog, "gaps-prefer", "1.0.0")
    warning = (
        "dataset 'gaps-prefer': prefer: r2SCAN, PBE+U match no provenance or method of the dataset's values and rank "
        f"nothing (provenances: dft, experimental; methods: PBE(+U), {LAB_METHOD})"
    )
    assert [(record.name, record.levelname, record.getMessage()) for record in caplog.records] == [
        ("matreg.curate.release", "WARNING", warning)
    ]
    assert f"\n- Warning: {warning}.\n" in (folder / "README.md").read_text()
    caplog.clear()
    catalog.datasets["gaps-prefer"].resolve.prefer = ["Experimental", "PBE (GGA/GGA+U)"]  # OQMD's label: an alias
    export_dataset(filled, catalog, "gaps-prefer", "csv", filled.root.parent / "gaps.csv")
    assert caplog.records == []


def test_a_release_leaves_out_a_correction_of_a_value_measured_since_and_warns_in_the_card(
    filled, catalog, tmp_path, caplog
):
    entry = decide(filled, "correct", f"{LAB}:roost-3", property="band_gap", value=1.35)
    import_lab(filled, _lab_copy(tmp_path, "roost-3,LuP,1.3,", "roost-3,LuP,1.5,"))  # the lab measured again
    folder = release(filled, catalog, "gaps", "1.0.0")
    payload = read_release(filled, "gaps", "1.0.0").set_index("record_id")
    assert payload.loc[f"{LAB}:roost-3", ["value", "raw_value", "reviewed"]].tolist() == [1.5, 1.5, False]
    warning = (
        f"review decision {entry['entry_id']} (correct {LAB}:roost-3 band_gap at 300.0 K): made on 1.3 eV as received, "
        "the value is now 1.5 eV: not applied; decide again with `matreg review`"
    )
    assert [(record.name, record.getMessage()) for record in caplog.records] == [("matreg.curate.release", warning)]
    assert f"\n- Warning: {warning}.\n" in (folder / "README.md").read_text()


def test_the_card_states_every_filter_and_each_propertys_tolerance(filled, catalog):
    thermo = catalog.datasets["thermo"]
    thermo.methods = ["NIST-JANAF critical evaluation"]
    thermo.resolve = Resolution(strategy="median", tolerance={"entropy": 0.5})
    readme = (release(filled, catalog, "thermo", "1.0.0") / "README.md").read_text()
    assert (
        "- Selection: properties enthalpy_of_formation, entropy; sources janaf; methods NIST-JANAF critical " in readme
    )
    assert (
        "whose spread exceeds the tolerance, enthalpy_of_formation 0.1 kJ/mol (default), entropy 0.5 J/(mol*K); the "
        "tolerance decides what is listed, not what is released." in readme
    )
    assert read_manifest(filled, "thermo", "1.0.0")["content"]["selection"]["resolve"]["tolerance"] == {"entropy": 0.5}
    with pytest.raises(pydantic.ValidationError, match="tolerance of properties not in the vocabulary: gap"):
        Resolution(tolerance={"gap": 0.2})
    with pytest.raises(pydantic.ValidationError, match="greater than or equal to 0"):
        Resolution(tolerance=-1)


def test_the_card_lists_no_conflict_of_a_rejected_record(filled, catalog):
    decide(filled, "reject", f"{LAB}:roost-17")
    readme = (release(filled, catalog, "gaps", "1.0.0") / "README.md").read_text()
    assert "No values of one method disagree beyond the tolerance." in readme and "roost-17" not in readme


def test_a_release_removes_temporary_directories_that_killed_releases_left(filled, catalog):
    stale, fresh = filled.tmp_dir / ("a" * 32), filled.tmp_dir / ("b" * 32)  # named as matreg names them
    for folder in (stale, fresh):
        (folder / "plots").mkdir(parents=True)
        (folder / "payload.parquet").write_bytes(b"half written")
    two_hours_ago = time.time() - 7200
    for path in (stale / "plots", stale / "payload.parquet", stale):  # nothing in it written since
        os.utime(path, (two_hours_ago, two_hours_ago))
    release(filled, catalog, "gaps", "1.0.0")
    assert not stale.exists() and (fresh / "payload.parquet").exists()  # a release running now keeps its directory


def test_refusals_are_store_errors(filled, catalog):
    with pytest.raises(ConfigError, match="invalid version '1.0'"):
        release(filled, catalog, "gaps", "1.0")
    with pytest.raises(ConfigError, match="invalid version"):
        release(filled, catalog, "gaps", "../1.0.0")
    for second in ("01.0.0", "1.0.0+build.5"):  # each would be a second release of 1.0.0
        with pytest.raises(ConfigError, match=f"invalid version '{re.escape(second)}'"):
            release(filled, catalog, "gaps", second)
    with pytest.raises(StoreError, match="'nothing' selects no values in the store .*: nothing to release"):
        release(filled, catalog, "nothing", "1.0.0")
    release(filled, catalog, "gaps", "1.0.0")
    with pytest.raises(StoreError, match="1.0.0-rc.1 of 'gaps' would follow release 1.0.0"):
        release(filled, catalog, "gaps", "1.0.0-rc.1")  # semantic versioning: a pre-release precedes its release
    with pytest.raises(UnknownName, match=r"no release 2.0.0 of 'gaps' .*\(released: 1.0.0\)"):
        diff(filled, "gaps", "1.0.0", "2.0.0")
    assert not (filled.root / "releases" / "nothing").exists()


def _payload(store, name: str, version: str) -> pd.DataFrame:
    """A release's payload rows by record id."""
    return pd.read_parquet(store.root / "releases" / name / version / "payload.parquet").set_index("record_id")


def _cells(frame: pd.DataFrame) -> list[list]:
    """Rows as lists, every missing marker (None, NaN, NA) as None."""
    return frame.astype(object).where(frame.notna(), None).values.tolist()


def _lab_copy(folder: Path, old: str, new: str) -> Path:
    """The bundled lab file with one line edited, under its own name."""
    text = (LAB_EXAMPLE / "bandgaps.csv").read_text(encoding="utf-8")
    assert old in text
    path = folder / "edited" / "bandgaps.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_released_versions_are_listed_in_semantic_version_order(filled, catalog):
    for version in ("0.9.0", "0.10.0", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0"):  # a pre-release before its release
        release(filled, catalog, "gaps", version)
    assert released_versions(filled, "gaps") == ["0.9.0", "0.10.0", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0"]


@pytest.mark.parametrize("earlier", ["0.9.0", "1.0.9", "1.1.0-rc.1"])
def test_a_version_ordered_before_the_latest_release_is_refused(filled, catalog, earlier):
    """0.9.0 released after 1.1.0 froze the store as it is now under a version ordered before 1.1.0's (diff 1.1.0
    0.9.0 said 'no changes'), while a pre-release after its release was refused."""
    release(filled, catalog, "gaps", "1.1.0")
    with pytest.raises(
        StoreError,
        match=re.escape(
            f"{earlier} of 'gaps' would follow release 1.1.0, which semantic versioning orders after it (a release "
            "freezes the dataset as the store holds it now): release a version after 1.1.0"
        ),
    ):
        release(filled, catalog, "gaps", earlier)
    assert released_versions(filled, "gaps") == ["1.1.0"]
    release(filled, catalog, "gaps", "1.1.1")
    assert released_versions(filled, "gaps") == ["1.1.0", "1.1.1"]


def test_a_release_named_as_an_earlier_matreg_allowed_is_still_read(filled, catalog, tmp_path):
    release(filled, catalog, "gaps", "1.0.0")
    old = filled.root / "releases" / "gaps" / "2024.01.15"  # a date-like version, accepted until 2026-12
    shutil.copytree(filled.root / "releases" / "gaps" / "1.0.0", old)
    assert released_versions(filled, "gaps") == ["1.0.0", "2024.01.15"]
    with pytest.raises(StoreError, match="release 2024.01.15 of 'gaps' exists"):
        release(filled, catalog, "gaps", "2024.1.15")  # the same numbers
    assert read_manifest(filled, "gaps", "2024.01.15")["dataset"] == "gaps"
    export_release(filled, "gaps", "2024.01.15", "csv", tmp_path / "old.csv")
    assert (tmp_path / "old.csv").is_file()


def test_a_release_counts_and_traces_the_values_a_steward_readmitted_from_quarantine(filled, catalog):
    release(filled, catalog, "gaps", "1.0.0")
    for item, correction in (("bad-number", {"value": 3.3}), ("bad-unit", {"unit": "eV"})):
        quarantine_id = single_value(filled.query("SELECT quarantine_id FROM quarantine WHERE item = ?", [item]))
        record_decision(filled, "readmit", "A. Steward", f"{item}: notebook", quarantine_id=quarantine_id, **correction)
    folder = release(filled, catalog, "gaps", "1.1.0")
    curation = read_manifest(filled, "gaps", "1.1.0")["content"]["curation"]
    assert (curation["values_corrected"], curation["values_flagged"], curation["values_accepted"]) == (2, 2, 0)
    assert "values corrected 2 (" in (folder / "README.md").read_text(encoding="utf-8")
    payload = _payload(filled, "gaps", "1.1.0")
    columns = ["value", "raw_value", "original_value", "original_unit", "reviewed", "flags"]
    assert _cells(payload.loc[[f"{LAB}:bad-number", f"{LAB}:bad-unit"], columns]) == [
        [3.3, None, None, "eV", True, "A. Steward: bad-number: notebook"],
        [3.4, None, 3.4, "elektronvolt", True, "A. Steward: bad-unit: notebook"],
    ]
    lab = payload[payload["source"] == LAB]
    assert lab["fetched_at"].nunique() == 1  # when the file was read, the readmitted records' too
    changes = diff(filled, "gaps", "1.0.0", "1.1.0")
    assert changes[["change", "record_id"]].values.tolist() == [
        ["record added", f"{LAB}:bad-number"],
        ["record added", f"{LAB}:bad-unit"],
    ]


def test_a_release_carries_each_values_uncertainty_and_a_diff_compares_it(store, tmp_path):
    mapping, data = tmp_path / "m.yaml", tmp_path / "lab.csv"
    mapping.write_text(
        "dataset: unc\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
        "  gap: {property: band_gap, unit: eV, uncertainty_field: dgap}\n",
        encoding="utf-8",
    )
    catalog = Catalog(datasets={"gaps": Dataset(description="d", version="1.0.0", properties=["band_gap"])})
    for version, rows in (
        ("1.0.0", "S1,ZnO,3.37(2),\nS2,Si,1.12,0.02\n"),
        ("1.0.1", "S1,ZnO,3.37(3),\nS2,Si,1.12,0.02\n"),
    ):
        data.write_text("id,formula,gap,dgap\n" + rows, encoding="utf-8")
        run_ingest(LabConnector(data, load_mapping(mapping)), store)
        release(store, catalog, "gaps", version)
    payload = read_release(store, "gaps", "1.0.0")
    assert payload[["record_id", "value", "uncertainty"]].values.tolist() == [
        ["unc:S1", 3.37, 0.02],
        ["unc:S2", 1.12, 0.02],
    ]
    changes = diff(store, "gaps", "1.0.0", "1.0.1")
    assert changes[["change", "record_id", "field", "old", "new"]].values.tolist() == [
        ["value changed", "unc:S1", "uncertainty", 0.02, 0.03]
    ]
