"""A lab record's schema extension attributes (sample_id, synthesis_route, ...) in exports and releases: columns after
the canonical ones, typed as the extension declares them, described in the card, compared by `matreg diff`."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from matreg.catalog import load_catalog
from matreg.curate.release import (
    curate_dataset,
    diff,
    export_release,
    read_manifest,
    read_release,
    release,
    write_payload,
)
from matreg.export import export_dataset
from matreg.ingest import run_ingest
from matreg.sources.lab import LabConnector, load_mapping

FIXTURES = Path(__file__).parent / "fixtures" / "lab_extension"
LAB_SAMPLE = ["sample_id", "synthesis_route", "instrument", "measurement_temperature_K", "measured_on"]
# The columns of a long export of a dataset without attributes, as matreg wrote them before it exported attributes
LONG = [
    "record_id", "source", "source_id", "formula", "formula_original", "name", "phase", "property", "value", "unit",
    "uncertainty", "original_value", "original_unit", "provenance", "method", "temperature_K", "pressure_Pa",
    "database_version", "citation", "license", "source_url", "fetched_at", "raw_value", "flags", "reviewed",
]  # fmt: skip
CATALOG = """datasets:
  samples:
    description: Band gaps of the sample lab and a plain lab.
    version: 1.0.0
    properties: [band_gap]
  samples-median:
    description: One band gap per material, the median of the linked values.
    version: 1.0.0
    properties: [band_gap]
    resolve: {strategy: median}
  plain:
    description: Band gaps of a lab without an extension.
    version: 1.0.0
    properties: [band_gap]
    sources: [plain-lab]
"""


@pytest.fixture
def catalog(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG, encoding="utf-8")
    return load_catalog(path)


def import_file(store, folder: Path, name: str, csv_text: str, mapping_text: str) -> None:
    (folder / f"{name}.csv").write_text(csv_text, encoding="utf-8")
    (folder / f"{name}.yaml").write_text(mapping_text, encoding="utf-8")
    run_ingest(LabConnector(folder / f"{name}.csv", load_mapping(folder / f"{name}.yaml")), store)


def import_plain(store, folder: Path) -> None:
    """GaN and ZnO band gaps of a lab without an extension (no attributes)."""
    mapping = (
        "dataset: plain-lab\nformula_column: formula\nid_column: id\nprovenance: experimental\n"
        "method: UV-Vis / FTIR absorption (illustrative)\ncitation: c\nlicense: MIT\n"
        "columns:\n  gap: {property: band_gap, unit: eV}\n"
    )
    import_file(store, folder, "plain", "id,formula,gap\nP1,GaN,3.4\n", mapping)


def import_samples(store, data: Path = FIXTURES / "samples.csv") -> None:
    """The sample lab's four valid rows (S-001 to S-004), each with its lab-sample attributes."""
    run_ingest(LabConnector(data, load_mapping(FIXTURES / "mapping.yaml"), name="samples.csv"), store)


def own_extension(folder: Path, name: str, columns: str, monkeypatch) -> None:
    """A project's own extension `name` in `folder`, which becomes the working directory."""
    own = folder / "schemas" / "extensions"
    own.mkdir(parents=True, exist_ok=True)
    (own / f"{name}.yaml").write_text(f"description: {name}\ncolumns:\n{columns}", encoding="utf-8")
    monkeypatch.chdir(folder)


def by_record(table: pa.Table, columns: list[str]) -> dict[str, list]:
    rows = table.select(["record_id", *columns]).to_pylist()
    return {row.pop("record_id"): list(row.values()) for row in rows}


def test_a_parquet_export_carries_each_records_attributes_after_the_canonical_columns_typed(store, catalog, tmp_path):
    import_samples(store)
    import_plain(store, tmp_path)
    for layout in ("long", "wide"):
        out = tmp_path / f"{layout}.parquet"
        export_dataset(store, catalog, "samples", "parquet", out, layout=layout)
        table = pq.read_table(out)
        assert table.column_names[-5:] == LAB_SAMPLE
        assert [str(table.schema.field(name).type) for name in LAB_SAMPLE] == [
            "string", "string", "string", "double", "string",
        ]  # fmt: skip
        assert by_record(table, LAB_SAMPLE) == {
            "plain-lab:P1": [None, None, None, None, None],
            "sample-lab:S-001": ["S-001", "sol-gel", "Cary 5000 UV-Vis-NIR", 300.0, "2024-03-18"],
            "sample-lab:S-002": ["S-002", "hydrothermal", "Cary 5000 UV-Vis-NIR", 300.0, "2024-03-18"],
            "sample-lab:S-003": ["S-003", "CVD", None, 295.0, None],
            "sample-lab:S-004": ["S-004", "melt", "Bruker Vertex 70 FTIR", 77.0, "2024-04-02"],
        }
    assert pq.read_table(tmp_path / "long.parquet").column_names == [*LONG, *LAB_SAMPLE]
    sidecar = json.loads((tmp_path / "long.parquet.meta.json").read_text(encoding="utf-8"))
    assert [(entry["column"], entry["extension"]) for entry in sidecar["attributes"]] == [
        (name, "lab-sample") for name in LAB_SAMPLE
    ]


def test_a_csv_export_writes_the_attributes_as_sql_format_csv_prints_them(store, catalog, tmp_path):
    import_samples(store)
    import_plain(store, tmp_path)
    export_dataset(store, catalog, "samples", "csv", tmp_path / "long.csv")
    export_dataset(store, catalog, "samples", "csv", tmp_path / "wide.csv", layout="wide")
    for name in ("long.csv", "wide.csv"):
        lines = (tmp_path / name).read_text(encoding="utf-8").splitlines()
        assert lines[0].endswith(",sample_id,synthesis_route,instrument,measurement_temperature_K,measured_on")
        assert lines[1].startswith("plain-lab:P1,") and lines[1].endswith(",,,,,")
        assert lines[2].startswith("sample-lab:S-001,")
        assert lines[2].endswith(",S-001,sol-gel,Cary 5000 UV-Vis-NIR,300.0,2024-03-18")
        assert lines[4].endswith(",S-003,CVD,,295.0,")


def test_an_extensions_times_and_whole_numbers_are_exported_in_their_declared_types(
    store, catalog, tmp_path, monkeypatch
):
    columns = (
        "  measured_at: {type: timestamp, nullable: true, description: When the gap was measured (UTC).}\n"
        "  passes: {type: int64, nullable: true, min: 0, description: Furnace passes.}\n"
    )
    own_extension(tmp_path, "furnace", columns, monkeypatch)
    mapping = (
        "dataset: furnace-lab\nformula_column: formula\nid_column: id\ncitation: c\nlicense: MIT\n"
        "extension: furnace\nextra_columns: {when: measured_at, passes: passes}\n"
        "columns:\n  gap: {property: band_gap, unit: eV}\n"
    )
    rows = "id,formula,gap,when,passes\nF1,GaN,3.4,0001-01-01T10:00:00Z,3\nF2,ZnO,3.3,,\n"
    import_file(store, tmp_path, "furnace", rows, mapping)
    export_dataset(store, catalog, "samples", "parquet", tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names[-2:] == ["measured_at", "passes"]
    types = {name: str(table.schema.field(name).type) for name in ("measured_at", "passes")}
    assert types == {"measured_at": "timestamp[us, tz=UTC]", "passes": "int64"}
    assert by_record(table, ["passes"]) == {"furnace-lab:F1": [3], "furnace-lab:F2": [None]}
    export_dataset(store, catalog, "samples", "csv", tmp_path / "out.csv")
    lines = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].endswith(",measured_at,passes")
    assert lines[1].endswith(",0001-01-01 10:00:00.000000+00:00,3")
    assert lines[2].endswith(",False,,")
    release(store, catalog, "samples", "1.0.0")  # Parquet reads whole numbers beside empty cells back as floats
    export_release(store, "samples", "1.0.0", "csv", tmp_path / "wide.csv", layout="wide")
    assert (tmp_path / "wide.csv").read_text(encoding="utf-8").splitlines()[1].endswith(",3")


def test_an_attribute_named_as_an_export_column_is_exported_under_its_extensions_name(
    store, catalog, tmp_path, monkeypatch
):
    columns = (
        "  formula: {type: string, nullable: true, description: The formula in the lab book.}\n"
        "  band_gap_flags: {type: string, nullable: true, description: The lab's own flags.}\n"
        "  batch: {type: string, nullable: true, description: Batch.}\n"
    )
    own_extension(tmp_path, "book", columns, monkeypatch)
    mapping = (
        "dataset: book-lab\nformula_column: composition\nid_column: id\ncitation: c\nlicense: MIT\nextension: book\n"
        "extra_columns: {written: formula, lab_flags: band_gap_flags, batch: batch}\n"
        "columns:\n  gap: {property: band_gap, unit: eV}\n"
    )
    import_file(store, tmp_path, "book", "id,composition,gap,written,lab_flags,batch\nB1,GaN,3.4,Ga N,odd,7\n", mapping)
    export_dataset(store, catalog, "samples", "parquet", tmp_path / "wide.parquet", layout="wide")
    table = pq.read_table(tmp_path / "wide.parquet")
    assert table.column_names[-3:] == ["book.formula", "book.band_gap_flags", "batch"]
    assert table.column("formula").to_pylist() == ["GaN"]  # the canonical column, as it was
    assert by_record(table, ["book.formula", "book.band_gap_flags", "batch"]) == {"book-lab:B1": ["Ga N", "odd", "7"]}


def test_a_release_carries_the_attributes_and_its_manifest_card_and_croissant_describe_them(store, catalog, tmp_path):
    import_samples(store)
    import_plain(store, tmp_path)
    folder = release(store, catalog, "samples", "1.0.0")
    payload = pq.read_table(folder / "payload.parquet")
    assert payload.column_names[-5:] == LAB_SAMPLE
    assert str(payload.schema.field("measurement_temperature_K").type) == "double"
    assert by_record(payload, ["synthesis_route", "measurement_temperature_K"])["sample-lab:S-004"] == ["melt", 77.0]
    attributes = read_manifest(store, "samples", "1.0.0")["content"]["attributes"]
    assert [(a["column"], a["extension"], a["attribute"], a["type"]) for a in attributes] == [
        (name, "lab-sample", name, "float64" if name == "measurement_temperature_K" else "string")
        for name in LAB_SAMPLE
    ]
    assert attributes[1]["description"] == "How the sample was made."
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "## Extension attributes" in card
    assert "| synthesis_route | lab-sample | string | How the sample was made. |" in card
    assert "empty where its record has none" in card
    croissant = json.loads((folder / "croissant.json").read_text(encoding="utf-8"))
    fields = {field["name"]: field for field in croissant["recordSet"][0]["field"]}
    assert fields["measurement_temperature_K"]["description"] == (
        "Temperature of the sample during the measurement (K)."
    )
    assert fields["measurement_temperature_K"]["dataType"] == "sc:Float"
    for layout in ("long", "wide"):
        export_release(store, "samples", "1.0.0", "csv", tmp_path / f"{layout}.csv", layout=layout)
        lines = (tmp_path / f"{layout}.csv").read_text(encoding="utf-8").splitlines()
        assert lines[0].endswith(",sample_id,synthesis_route,instrument,measurement_temperature_K,measured_on")
        assert any(line.endswith(",S-004,melt,Bruker Vertex 70 FTIR,77.0,2024-04-02") for line in lines)
    assert json.loads((tmp_path / "wide.csv.meta.json").read_text(encoding="utf-8"))["attributes"] == attributes


def test_a_diff_reports_a_changed_attribute_as_a_change_of_its_record(store, catalog, tmp_path):
    edited = tmp_path / "samples.csv"
    edited.write_text((FIXTURES / "samples.csv").read_text(encoding="utf-8"), encoding="utf-8")
    import_samples(store, edited)
    release(store, catalog, "samples", "1.0.0")
    edited.write_text(
        edited.read_text(encoding="utf-8").replace("S-001,ZnO,3440,meV,sol-gel", "S-001,ZnO,3440,meV,hydrothermal"),
        encoding="utf-8",
    )
    import_samples(store, edited)
    release(store, catalog, "samples", "1.1.0")
    changes = diff(store, "samples", "1.0.0", "1.1.0")
    assert changes[["change", "record_id", "field", "old", "new"]].to_dict("records") == [
        {
            "change": "record changed",
            "record_id": "sample-lab:S-001",
            "field": "synthesis_route",
            "old": "sol-gel",
            "new": "hydrothermal",
        }
    ]


def test_a_median_row_carries_the_attributes_its_records_share(store, catalog, tmp_path):
    mapping = (FIXTURES / "mapping.yaml").read_text(encoding="utf-8")
    rows = (
        "sample,composition,band_gap,band_gap_unit,route,instrument,T_meas_K,date\n"
        "S-1,ZnO,3.3,eV,sol-gel,Cary 5000,300,2024-03-18\n"
        "S-2,ZnO,3.4,eV,sol-gel,Bruker,300,\n"
    )
    import_file(store, tmp_path, "zno", rows, mapping)
    folder = release(store, catalog, "samples-median", "1.0.0")
    payload = read_release(store, "samples-median", "1.0.0")
    assert payload[["records", *LAB_SAMPLE]].astype(object).where(payload.notna(), None).to_dict("records") == [
        {
            "records": "sample-lab:S-1; sample-lab:S-2",
            "sample_id": None,
            "synthesis_route": "sol-gel",
            "instrument": None,
            "measurement_temperature_K": 300.0,
            "measured_on": None,
        }
    ]
    assert "a median row carries one where every record it merges has the same" in (folder / "README.md").read_text(
        encoding="utf-8"
    )


def test_a_dataset_without_attributes_is_exported_and_released_as_before(store, catalog, tmp_path):
    import_samples(store)
    import_plain(store, tmp_path)  # the store holds attributes, of records the dataset does not select
    export_dataset(store, catalog, "plain", "parquet", tmp_path / "wide.parquet", layout="wide")
    assert not set(LAB_SAMPLE) & set(pq.read_table(tmp_path / "wide.parquet").column_names)
    folder = release(store, catalog, "plain", "1.0.0")
    assert pq.read_table(folder / "payload.parquet").column_names == LONG
    as_before = write_payload(curate_dataset(store, catalog, "plain").resolved, tmp_path / "payload.parquet")
    assert (folder / "payload.parquet").read_bytes() == as_before.read_bytes()
    assert "attributes" not in read_manifest(store, "plain", "1.0.0")["content"]
    assert "## Extension attributes" not in (folder / "README.md").read_text(encoding="utf-8")
