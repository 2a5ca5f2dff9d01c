"""Lab schema extensions: sample metadata declared in schemas/extensions/, validated with pandera on import."""

import re
import shutil
from pathlib import Path

import pytest
from conftest import single_value

from matreg.curate.review import CurationError, record_decision
from matreg.errors import ConfigError
from matreg.ingest import run_ingest
from matreg.sources.lab import LabConnector, load_mapping
from matreg.validation import check_store_tables

FIXTURES = Path(__file__).parent / "fixtures" / "lab_extension"
MAPPING = (FIXTURES / "mapping.yaml").read_text(encoding="utf-8")
ROUTES = "['solid-state', 'sol-gel', 'hydrothermal', 'CVD', 'PVD', 'melt', 'other']"  # lab-sample's synthesis routes


def import_samples(store, page_size=3):
    connector = LabConnector(FIXTURES / "samples.csv", load_mapping(FIXTURES / "mapping.yaml"), page_size=page_size)
    return run_ingest(connector, store)


def test_extra_values_are_stored_and_joinable_by_sql(store):
    report = import_samples(store)
    assert (report.n_fetched, report.n_stored, report.n_values, report.n_quarantined) == (8, 4, 4, 4)
    rows = store.query(
        "SELECT m.formula, a.value AS route, p.value AS gap FROM materials m "
        "JOIN record_attributes a USING (record_id) JOIN properties p USING (record_id) "
        "WHERE a.attribute = 'synthesis_route' ORDER BY m.source_id"
    ).to_dict("records")
    assert rows == [
        {"formula": "ZnO", "route": "sol-gel", "gap": pytest.approx(3.44)},
        {"formula": "CdS", "route": "hydrothermal", "gap": 2.5},
        {"formula": "Ga1As0.4P0.6", "route": "CVD", "gap": 2.1},
        {"formula": "InSb", "route": "melt", "gap": 0.22},
    ]
    cold = store.query(
        "SELECT record_id, CAST(value AS DOUBLE) AS t, type FROM record_attributes "
        "WHERE attribute = 'measurement_temperature_K' AND CAST(value AS DOUBLE) < 100"
    ).to_dict("records")
    assert cold == [{"record_id": "sample-lab:S-004", "t": 77.0, "type": "float64"}]
    assert check_store_tables(store).problems == []


def test_empty_optional_values_have_no_row(store):
    import_samples(store)
    attributes = store.query("SELECT attribute, value FROM record_attributes WHERE record_id = 'sample-lab:S-003'")
    assert dict(attributes.values) == {
        "sample_id": "S-003",
        "synthesis_route": "CVD",
        "measurement_temperature_K": "295.0",
    }


def test_rows_whose_extra_values_fail_are_quarantined_with_the_column_and_check(store):
    import_samples(store)
    reasons = {item: sorted(r) for item, r in store.query("SELECT item, reasons FROM quarantine").values}
    assert reasons["S-005"] == [f"synthesis_route: isin({ROUTES}) failed for 'ball mill'"]
    assert reasons["S-006"] == ["measurement_temperature_K: greater_than_or_equal_to(0.0) failed for -5.0"]
    assert reasons["S-008"] == [
        "measurement_temperature_K: coerce_dtype('float64') failed for 'room'",
        "synthesis_route: not_nullable",
    ]
    stored = set(store.query("SELECT source_id FROM materials")["source_id"])
    assert stored.isdisjoint({"S-005", "S-006", "S-008"})
    assert set(store.query("SELECT DISTINCT record_id FROM record_attributes")["record_id"]) == {
        f"sample-lab:S-00{i}" for i in range(1, 5)
    }


def test_valid_extras_with_an_invalid_value_are_quarantined_as_before(store):
    import_samples(store)
    reasons = store.query("SELECT reasons FROM quarantine WHERE item = 'S-007'").iloc[0, 0].tolist()
    assert reasons == ["non-numeric value 'about 1.5'"]
    assert store.query("SELECT count(*) FROM record_attributes WHERE record_id = 'sample-lab:S-007'").iloc[0, 0] == 0


def test_one_page_or_many_store_the_same_rows(store, tmp_path):
    from matreg.store import Store

    import_samples(store, page_size=3)
    single = Store(tmp_path / "single")
    import_samples(single, page_size=100)
    query = "SELECT record_id, attribute, value FROM record_attributes ORDER BY ALL"
    assert store.query(query).equals(single.query(query))


def readmit(store, item, **correction):
    quarantine_id = single_value(store.query("SELECT quarantine_id FROM quarantine WHERE item = ?", [item]))
    return record_decision(store, "readmit", "A. Steward", "re-checked", quarantine_id=quarantine_id, **correction)


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ("S-005", f"synthesis_route: isin({ROUTES}) failed for 'ball mill'"),
        ("S-006", "measurement_temperature_K: greater_than_or_equal_to(0.0) failed for -5.0"),
    ],
)
def test_a_readmit_of_a_row_whose_extra_values_fail_is_refused_and_changes_nothing(store, item, reason):
    import_samples(store)
    tables = {name: store.table(name) for name in ("materials", "properties", "record_attributes", "curation_log")}
    with pytest.raises(
        CurationError, match=re.escape(f"readmit refused: {item} of sample-lab is still invalid: {reason}")
    ):
        readmit(store, item)
    assert all(store.table(name).equals(frame) for name, frame in tables.items())


def test_a_readmitted_row_keeps_its_sample_metadata(store):
    import_samples(store)
    entry = readmit(store, "S-007", value=1.5)  # S-007: 'about 1.5' was its only fault
    rows = store.query("SELECT attribute, value, run_id FROM record_attributes WHERE record_id = 'sample-lab:S-007'")
    assert dict(rows[["attribute", "value"]].values) == {
        "sample_id": "S-007",
        "synthesis_route": "CVD",
        "instrument": "Cary 5000 UV-Vis-NIR",
        "measurement_temperature_K": "300.0",
        "measured_on": "2024-04-10",
    }
    assert set(rows["run_id"]) == {f"curation:{entry['entry_id']}"}
    assert check_store_tables(store).problems == []


def _mapping(tmp_path, text):
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_mapping_naming_an_unknown_extension_column_is_refused_with_its_line(tmp_path):
    path = _mapping(tmp_path, MAPPING.replace("T_meas_K: measurement_temperature_K", "T_meas_K: temperature"))
    line = MAPPING.splitlines().index("  T_meas_K: measurement_temperature_K") + 1
    with pytest.raises(ConfigError) as error:
        load_mapping(path)
    assert str(error.value).startswith(f"{path}: line {line}: extra_columns.T_meas_K: ")
    assert "'temperature' is not a column of extension 'lab-sample'" in str(error.value)


def test_a_mapping_leaving_a_required_extension_column_unmapped_is_refused(tmp_path):
    path = _mapping(tmp_path, MAPPING.replace("  route: synthesis_route\n", ""))
    with pytest.raises(
        ConfigError, match=r"required column\(s\) of extension 'lab-sample' not mapped.*synthesis_route"
    ):
        load_mapping(path)


def test_a_mapping_naming_an_unknown_extension_is_refused(tmp_path):
    path = _mapping(tmp_path, MAPPING.replace("extension: lab-sample", "extension: lab-samples"))
    with pytest.raises(
        ConfigError, match=r"line \d+: extension: .*no schema extension 'lab-samples'.*known: lab-sample"
    ):
        load_mapping(path)


def test_a_projects_own_extension_is_read_from_schemas_extensions_of_the_working_directory(
    store, tmp_path, monkeypatch
):
    """An installed matreg reads its bundled extensions from the package: a steward's own one lives in the project."""
    own = tmp_path / "schemas" / "extensions"
    own.mkdir(parents=True)
    (own / "furnace.yaml").write_text(
        "description: furnace runs\ncolumns:\n  anneal_K: {type: float64, nullable: true, min: 0, description: d}\n",
        encoding="utf-8",
    )
    (tmp_path / "lab.csv").write_text("formula,gap,anneal\nGaN,3.4,1273\nZnO,3.3,-5\n", encoding="utf-8")
    mapping = _mapping(
        tmp_path,
        "dataset: furnace-lab\nformula_column: formula\ncitation: c\nextension: furnace\n"
        "extra_columns: {anneal: anneal_K}\ncolumns:\n  gap: {property: band_gap, unit: eV}\n",
    )
    monkeypatch.chdir(tmp_path)
    assert run_ingest(LabConnector(tmp_path / "lab.csv", load_mapping(mapping)), store).n_stored == 1
    assert store.table("record_attributes")[["attribute", "value"]].values.tolist() == [["anneal_K", "1273.0"]]
    reasons = store.query("SELECT item, reasons FROM quarantine").values.tolist()
    assert [(item, list(why)) for item, why in reasons] == [
        ("line 3", ["anneal_K: greater_than_or_equal_to(0.0) failed for -5.0"])
    ]
    monkeypatch.chdir(tmp_path.parent)
    with pytest.raises(ConfigError, match=r"no schema extension 'furnace' in ./schemas/extensions/ or matreg's"):
        load_mapping(mapping)


def _import_times(store, tmp_path, monkeypatch, times: list[str]):
    """Import one row per time (ids t1, t2, ...) into a `measured_at` timestamp column of an extension of the
    project's own; the run's report, the times stored by id, and the quarantine reasons by id."""
    own = tmp_path / "schemas" / "extensions"
    own.mkdir(parents=True)
    (own / "timed.yaml").write_text(
        "description: t\ncolumns:\n  measured_at: {type: timestamp, nullable: false, description: w}\n",
        encoding="utf-8",
    )
    rows = "".join(f't{n},GaN,3.4,"{time}"\n' for n, time in enumerate(times, start=1))  # (quoted: '10:00:00,5')
    (tmp_path / "lab.csv").write_text("id,formula,gap,when\n" + rows, encoding="utf-8")
    mapping = _mapping(
        tmp_path,
        "dataset: timed-lab\nformula_column: formula\nid_column: id\ncitation: c\nextension: timed\n"
        "extra_columns: {when: measured_at}\ncolumns:\n  gap: {property: band_gap, unit: eV}\n",
    )
    monkeypatch.chdir(tmp_path)
    report = run_ingest(LabConnector(tmp_path / "lab.csv", load_mapping(mapping)), store)
    stored = store.query(
        "SELECT m.source_id, a.value FROM record_attributes a JOIN materials m USING (record_id) ORDER BY 1"
    ).values.tolist()
    reasons = store.query("SELECT item, reasons FROM quarantine ORDER BY item").values.tolist()
    return report, stored, [(item, list(why)) for item, why in reasons]


def test_a_time_column_reads_each_cell_in_its_own_iso_8601_form_and_quarantines_other_dates(
    store, tmp_path, monkeypatch
):
    """A time column's cells written in several ISO 8601 forms failed the whole import with pandera's dictionary of
    its coercion (the format pandas inferred from the first cell); a date as 03/04/2024 was read month first."""
    times = ["2024-03-18T10:00:00Z", "2024-03-18 10:00", "2024-03-18", "2024-03-18T12:00:00+02:00", ""]
    times += ["03/04/2024", "yesterday", "1030", "2024-03"]  # a time as HHMM, or a sample number, is no year 1030
    report, stored, reasons = _import_times(store, tmp_path, monkeypatch, times)
    assert (report.n_stored, report.n_quarantined) == (4, 5)
    assert stored == [  # a time without a zone is UTC's, one with an offset converted to UTC
        ["t1", "2024-03-18 10:00:00+00:00"],
        ["t2", "2024-03-18 10:00:00+00:00"],
        ["t3", "2024-03-18 00:00:00+00:00"],
        ["t4", "2024-03-18 10:00:00+00:00"],
    ]
    assert reasons == [
        ("t5", ["measured_at: not_nullable"]),  # an unread time is not also reported blank
        ("t6", ["measured_at: not an ISO 8601 date or time (e.g. 2024-03-18 or 2024-03-18T10:00:00Z): '03/04/2024'"]),
        ("t7", ["measured_at: not an ISO 8601 date or time (e.g. 2024-03-18 or 2024-03-18T10:00:00Z): 'yesterday'"]),
        ("t8", ["measured_at: not an ISO 8601 date or time (e.g. 2024-03-18 or 2024-03-18T10:00:00Z): '1030'"]),
        ("t9", ["measured_at: not an ISO 8601 date or time (e.g. 2024-03-18 or 2024-03-18T10:00:00Z): '2024-03'"]),
    ]


def test_a_time_ending_in_utc_or_gmt_is_utc_and_one_in_another_zone_name_is_quarantined_saying_so(
    store, tmp_path, monkeypatch
):
    """'2024-03-18 10:00:00 UTC', as databases and spreadsheets export times, was quarantined as no ISO 8601 time;
    a zone name other than UTC's may stand for two offsets (CET and, in summer, CEST), never guessed."""
    times = ["2024-03-18 10:00:00 UTC", "2024-03-18 10:00:00UTC", "2024-03-18T10:00 GMT", "2024-03-18 UTC"]
    times += ["2024-03-18 11:00:00 CET", "2024-03-18 05:00 EST"]
    report, stored, reasons = _import_times(store, tmp_path, monkeypatch, times)
    assert (report.n_stored, report.n_quarantined) == (4, 2)
    assert stored == [
        ["t1", "2024-03-18 10:00:00+00:00"],
        ["t2", "2024-03-18 10:00:00+00:00"],
        ["t3", "2024-03-18 10:00:00+00:00"],
        ["t4", "2024-03-18 00:00:00+00:00"],
    ]
    zone = (
        "measured_at: time zone {} is not read (a zone name may stand for two offsets, as CET for +01:00 and, in "
        "summer, +02:00): write the time in UTC or with its offset (2024-03-18T10:00:00+01:00): {!r}"
    )
    assert reasons == [
        ("t5", [zone.format("'CET'", "2024-03-18 11:00:00 CET")]),
        ("t6", [zone.format("'EST'", "2024-03-18 05:00 EST")]),
    ]


def test_a_time_with_an_offset_and_a_zone_name_is_read_where_they_agree_and_quarantined_saying_why_where_not(
    store, tmp_path, monkeypatch
):
    """Go's '2024-01-02 10:00:00 +0000 UTC' (its times' default text) and a contradictory '+02:00 UTC' were both
    quarantined as no ISO 8601 time; a zone name after an offset, which it may contradict, was taken for the zone to
    write an offset for."""
    times = ["2024-01-02 10:00:00 +0000 UTC", "2024-01-02T10:00:00.5+00:00 gmt", "2024-01-02T10:00:00+02:00 UTC"]
    times += ["2024-01-02 11:00:00 +0100 CET", "2024-01-02 12:00 +02:00 UTC+2", "2024-01-32 10:00:00 +0000 UTC"]
    report, stored, reasons = _import_times(store, tmp_path, monkeypatch, times)
    assert (report.n_stored, report.n_quarantined) == (2, 4)
    assert stored == [["t1", "2024-01-02 10:00:00+00:00"], ["t2", "2024-01-02 10:00:00.500000+00:00"]]
    after = "measured_at: time zone {!r} after offset {!r} is not read: drop the zone name, the offset gives the time"
    after += " (2024-03-18T10:00:00+01:00): {!r}"
    assert reasons == [
        (
            "t3",
            [
                "measured_at: offset '+02:00' and time zone 'UTC' disagree (UTC is +00:00): write the offset alone "
                "(2024-03-18T10:00:00+02:00) or the time in UTC: '2024-01-02T10:00:00+02:00 UTC'"
            ],
        ),
        ("t4", [after.format("CET", "+0100", "2024-01-02 11:00:00 +0100 CET")]),
        ("t5", [after.format("UTC+2", "+02:00", "2024-01-02 12:00 +02:00 UTC+2")]),
        (
            "t6",
            [
                "measured_at: not an ISO 8601 date or time (e.g. 2024-03-18 or 2024-03-18T10:00:00Z): "
                "'2024-01-32 10:00:00 +0000 UTC'"
            ],
        ),
    ]


def test_a_twelve_hour_time_and_a_zone_name_with_an_offset_are_quarantined_as_what_they_are(
    store, tmp_path, monkeypatch
):
    """'10:00:00 PM' was called a time zone 'PM' that may stand for two offsets, 'UTC+2' too (it stands for one);
    a lower-case 'utc' is UTC's name as an upper-case one."""
    times = ["2024-03-18 10:00:00 utc", "2024-03-18 10:00:00 PM", "2024-03-18 10:00 am", "2024-03-18 12:00 UTC+2"]
    times += ["2024-03-18 noon", "2024-03-18 12:00 Etc/GMT+2"]  # (no zone; a zone's name, UTC-2)
    report, stored, reasons = _import_times(store, tmp_path, monkeypatch, times)
    assert (report.n_stored, report.n_quarantined) == (1, 5)
    assert stored == [["t1", "2024-03-18 10:00:00+00:00"]]
    twelve = "measured_at: a 12-hour time (AM/PM) is not read: write it on the 24-hour clock (10:00 PM as 22:00)"
    twelve += ": {!r}"
    assert reasons == [
        ("t2", [twelve.format("2024-03-18 10:00:00 PM")]),
        ("t3", [twelve.format("2024-03-18 10:00 am")]),
        (
            "t4",
            [
                "measured_at: time zone 'UTC+2' is not read: write its offset alone (2024-03-18T10:00:00+02:00): "
                "'2024-03-18 12:00 UTC+2'"
            ],
        ),
        (
            "t5",
            ["measured_at: not an ISO 8601 date or time (e.g. 2024-03-18 or 2024-03-18T10:00:00Z): '2024-03-18 noon'"],
        ),
        (
            "t6",
            [
                "measured_at: time zone 'Etc/GMT+2' is not read (a zone name may stand for two offsets, as CET for "
                "+01:00 and, in summer, +02:00): write the time in UTC or with its offset (2024-03-18T10:00:00+01:00): "
                "'2024-03-18 12:00 Etc/GMT+2'"
            ],
        ),
    ]


def test_a_time_outside_pandas_nanosecond_range_is_read_in_the_microseconds_the_store_keeps(
    store, tmp_path, monkeypatch
):
    """9999-12-31, 2262-04-12 and 1600-01-01 are ISO 8601 times the store's microsecond times hold; beside a time
    written to more than six decimals (which had pandas read the column in nanoseconds) they were quarantined, band
    gap and all, as no ISO 8601 time."""
    times = ["9999-12-31", "2262-04-12T00:00:00Z", "1600-01-01", "2024-03-18T10:00:00.1234560Z"]
    times += ["0001-01-01T00:00:00+00:00", "0000-12-31", "9999-12-31T23:30:00-01:00"]  # (the last 10000-01-01 UTC)
    report, stored, reasons = _import_times(store, tmp_path, monkeypatch, times)
    assert (report.n_stored, report.n_quarantined) == (5, 2)
    assert stored == [
        ["t1", "9999-12-31 00:00:00+00:00"],
        ["t2", "2262-04-12 00:00:00+00:00"],
        ["t3", "1600-01-01 00:00:00+00:00"],
        ["t4", "2024-03-18 10:00:00.123456+00:00"],  # (its seventh decimal a zero)
        ["t5", "0001-01-01 00:00:00+00:00"],
    ]
    outside = "measured_at: outside the times the store holds: 0001-01-01 to 9999-12-31 (UTC): {!r}"
    assert reasons == [
        ("t6", [outside.format("0000-12-31")]),
        ("t7", [outside.format("9999-12-31T23:30:00-01:00")]),
    ]
    cast = store.query("SELECT CAST(value AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS t FROM record_attributes ORDER BY 1")
    assert [str(time) for time in cast["t"]] == [
        "0001-01-01 00:00:00",
        "1600-01-01 00:00:00",
        "2024-03-18 10:00:00.123456",
        "2262-04-12 00:00:00",
        "9999-12-31 00:00:00",
    ]


def test_a_time_finer_than_a_microsecond_is_quarantined_saying_the_store_keeps_microseconds(
    store, tmp_path, monkeypatch
):
    """'2024-03-18T10:00:00.1234567Z' was stored as '...00.123456' (and '.9999999' as '.999999'): cut to the
    store's microseconds without a word. Zeros past the sixth decimal change nothing: read."""
    times = ["2024-03-18T10:00:00.1234567Z", "2024-03-18T10:00:00.9999999Z", "2024-03-18 10:00:00.5000000000 UTC"]
    times += ["9999-12-31T10:00:00.0000001", "2024-13-18T10:00:00.1234567Z"]  # (the last no date: said so)
    report, stored, reasons = _import_times(store, tmp_path, monkeypatch, times)
    assert (report.n_stored, report.n_quarantined) == (1, 4)
    assert stored == [["t3", "2024-03-18 10:00:00.500000+00:00"]]
    finer = "measured_at: finer than the microseconds the store keeps: write at most 6 decimals of a second: {!r}"
    assert reasons == [
        ("t1", [finer.format("2024-03-18T10:00:00.1234567Z")]),
        ("t2", [finer.format("2024-03-18T10:00:00.9999999Z")]),
        ("t4", [finer.format("9999-12-31T10:00:00.0000001")]),
        (
            "t5",
            [
                "measured_at: not an ISO 8601 date or time (e.g. 2024-03-18 or 2024-03-18T10:00:00Z): "
                "'2024-13-18T10:00:00.1234567Z'"
            ],
        ),
    ]


def test_a_time_with_a_decimal_comma_is_read_as_with_a_decimal_point(store, tmp_path, monkeypatch):
    """ISO 8601 allows a comma as the decimal sign of a second ('2024-03-18T10:00:00,5Z', as European software and
    ISO's own examples write it): such times were quarantined as no ISO 8601 time. They are read as the same time
    with a point, and go to quarantine where that would (finer than a microsecond; a time of day without a date)."""
    times = ["2024-03-18T10:00:00,5Z", "2024-03-18 10:00:00,25 UTC", "2024-03-18T12:00:00,123456+02:00"]
    times += ["2024-03-18T10:00:00,1234560Z", "2024-03-18T10:00:00,1234567Z", "10:00:00,5"]
    report, stored, reasons = _import_times(store, tmp_path, monkeypatch, times)
    assert (report.n_stored, report.n_quarantined) == (4, 2)
    assert stored == [
        ["t1", "2024-03-18 10:00:00.500000+00:00"],
        ["t2", "2024-03-18 10:00:00.250000+00:00"],
        ["t3", "2024-03-18 10:00:00.123456+00:00"],
        ["t4", "2024-03-18 10:00:00.123456+00:00"],
    ]
    assert reasons == [
        (
            "t5",
            [
                "measured_at: finer than the microseconds the store keeps: write at most 6 decimals of a second: "
                "'2024-03-18T10:00:00,1234567Z'"
            ],
        ),
        ("t6", ["measured_at: not an ISO 8601 date or time (e.g. 2024-03-18 or 2024-03-18T10:00:00Z): '10:00:00,5'"]),
    ]


def test_imports_without_an_extension_leave_record_attributes_empty(store, tmp_path):
    data = tmp_path / "lab.csv"
    data.write_text("formula,gap\nGaN,3.4\n", encoding="utf-8")
    mapping = _mapping(
        tmp_path,
        "dataset: plain\nformula_column: formula\ncitation: c\ncolumns:\n  gap: {property: band_gap, unit: eV}\n",
    )
    assert run_ingest(LabConnector(data, load_mapping(mapping)), store).n_stored == 1
    assert store.table("record_attributes").empty


def test_sample_metadata_cleared_in_a_reimported_file_is_no_longer_shown(store, tmp_path):
    edited = tmp_path / "samples.csv"
    shutil.copy(FIXTURES / "samples.csv", edited)
    run_ingest(LabConnector(edited, load_mapping(FIXTURES / "mapping.yaml")), store)
    lines = edited.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace("Cary 5000 UV-Vis-NIR", "").replace("2024-03-18", "")  # S-001's instrument and date
    edited.write_text("\n".join(lines) + "\n", encoding="utf-8")  # the file edited where it lies
    report = run_ingest(LabConnector(edited, load_mapping(FIXTURES / "mapping.yaml")), store)
    assert report.n_unchanged == 3  # S-001 changed: written again, whole
    attributes = store.query("SELECT attribute FROM record_attributes WHERE record_id = 'sample-lab:S-001'")
    assert sorted(attributes["attribute"]) == ["measurement_temperature_K", "sample_id", "synthesis_route"]


def test_dates_of_an_excel_sheet_are_stored_as_the_lab_wrote_them(store, tmp_path):
    import pandas as pd

    frame = pd.read_csv(FIXTURES / "samples.csv", dtype=str, keep_default_na=False)
    frame["date"] = pd.to_datetime(frame["date"]).astype(object).where(frame["date"] != "", "")  # date cells
    frame.to_excel(tmp_path / "samples.xlsx", index=False)
    run_ingest(LabConnector(tmp_path / "samples.xlsx", load_mapping(FIXTURES / "mapping.yaml")), store)
    dates = store.query("SELECT value FROM record_attributes WHERE attribute = 'measured_on' ORDER BY record_id")
    assert set(dates["value"]) == {"2024-03-18", "2024-04-02"}  # not "2024-03-18 00:00:00"


def test_a_number_column_of_the_extension_is_read_with_the_mappings_decimal_separator(store, tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "dataset: gaps\nformula_column: formula\nid_column: id\ncitation: c\nextension: lab-sample\ndecimal: ','\n"
        "extra_columns: {sample: sample_id, route: synthesis_route, T: measurement_temperature_K}\n"
        "columns:\n  gap: {property: band_gap, unit: eV}\n",
        encoding="utf-8",
    )
    data = tmp_path / "lab.csv"
    data.write_text("id;formula;gap;sample;route;T\nv1;ZnO;3,3;S1;sol-gel;293,5\nv2;GaN;3,4;S2;sol-gel;1.273\n")
    report = run_ingest(LabConnector(data, load_mapping(mapping)), store)
    assert (report.n_stored, report.n_quarantined) == (1, 1)
    kelvin = store.query("SELECT value FROM record_attributes WHERE attribute = 'measurement_temperature_K'")
    assert kelvin["value"].tolist() == ["293.5"]
    reason = store.query("SELECT reasons[1] FROM quarantine").iloc[0, 0]
    assert reason.startswith("column 'T': '1.273' has a period where the mapping declares decimal commas")


def test_sample_metadata_of_a_record_readmitted_whole_goes_when_the_fixed_file_clears_it(store, tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "dataset: gaps\nformula_column: formula\nid_column: id\ncitation: c\nextension: lab-sample\n"
        "extra_columns: {sample: sample_id, route: synthesis_route, instr: instrument}\n"
        "columns:\n  gap: {property: band_gap, unit: eV}\n",
        encoding="utf-8",
    )
    data = tmp_path / "lab.csv"
    data.write_text("id,formula,gap,sample,route,instr\nv3,ZnO,-3.3,S1,sol-gel,UV-1800\n", encoding="utf-8")
    run_ingest(LabConnector(data, load_mapping(mapping)), store)
    item = single_value(store.query("SELECT quarantine_id FROM quarantine WHERE item = 'v3'"))
    record_decision(store, "readmit", "A. Steward", "sign lost", quarantine_id=item, value=3.3)
    data.write_text("id,formula,gap,sample,route,instr\nv3,ZnO,3.3,S1,sol-gel,\n", encoding="utf-8")
    report = run_ingest(LabConnector(data, load_mapping(mapping)), store)
    assert report.n_unchanged == 0  # the instrument is gone: the record is written again, whole
    attributes = store.query("SELECT attribute FROM record_attributes ORDER BY 1")["attribute"].tolist()
    assert attributes == ["sample_id", "synthesis_route"]


def test_a_row_readmitted_beside_another_files_record_never_replaces_its_sample_metadata(store, tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "dataset: gaps\nformula_column: formula\nid_column: id\ncitation: c\nextension: lab-sample\n"
        "extra_columns: {sample: sample_id, route: synthesis_route, instr: instrument}\n"
        "columns:\n  gap: {property: band_gap, unit: eV}\n  rho: {property: density, unit: g/cm^3}\n",
        encoding="utf-8",
    )
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    header = "id,formula,gap,rho,sample,route,instr\n"
    first.write_text(header + "v3,ZnO,-3.3,,S1,sol-gel,UV-1800\n", encoding="utf-8")  # quarantined whole
    second.write_text(header + "v3,ZnO,,5.6,S1,sol-gel,Cary 5000\n", encoding="utf-8")  # stored, with metadata
    run_ingest(LabConnector(first, load_mapping(mapping)), store)
    run_ingest(LabConnector(second, load_mapping(mapping)), store)
    item = single_value(store.query("SELECT quarantine_id FROM quarantine WHERE item = 'v3'"))
    stored = "the (sample_id|synthesis_route|instrument) of 'gaps:v3' is already stored"
    with pytest.raises(CurationError, match=stored):
        record_decision(store, "readmit", "A. Steward", "sign lost", quarantine_id=item, value=3.3)
    assert store.query("SELECT value FROM record_attributes WHERE attribute = 'instrument'").iloc[0, 0] == "Cary 5000"


def test_two_projects_extensions_of_one_name_each_check_their_own_rows(store, tmp_path, monkeypatch):
    """The pandera schema of an extension was cached by its name alone: a second project's extension of that name
    (another process's working directory, or a library user's second project) was checked as the first one's."""
    lenient, strict = (tmp_path / name for name in ("lenient", "strict"))
    for folder, bound in ((lenient, "min: -300"), (strict, "min: 0")):  # (two lab datasets: kiln-lenient, ...)
        own = folder / "schemas" / "extensions"
        own.mkdir(parents=True)
        (own / "kiln.yaml").write_text(
            f"description: k\ncolumns:\n  anneal_K: {{type: float64, nullable: true, {bound}, description: d}}\n",
            encoding="utf-8",
        )
        (folder / "lab.csv").write_text("formula,gap,anneal\nGaN,3.4,-5\n", encoding="utf-8")
        _mapping(
            folder,
            f"dataset: kiln-{folder.name}\nformula_column: formula\ncitation: c\nextension: kiln\n"
            "extra_columns: {anneal: anneal_K}\ncolumns:\n  gap: {property: band_gap, unit: eV}\n",
        )
    stored = []
    for folder in (lenient, strict):
        monkeypatch.chdir(folder)
        report = run_ingest(LabConnector(folder / "lab.csv", load_mapping(folder / "mapping.yaml")), store)
        stored.append((report.n_stored, report.n_quarantined))
    assert stored == [(1, 0), (0, 1)]
    reasons = store.query("SELECT reasons FROM quarantine").iloc[0, 0].tolist()
    assert reasons == ["anneal_K: greater_than_or_equal_to(0.0) failed for -5.0"]


def test_an_extension_bool_column_reads_the_words_lab_files_write_and_quarantines_others(store, tmp_path, monkeypatch):
    """A `bool` column of an extension was unusable from a file: pandera's coercion refused every text cell ('True',
    'false', '1'). Cells read as true/false, yes/no, 1/0 (letter case aside, Excel's TRUE too); others are said."""
    own = tmp_path / "schemas" / "extensions"
    own.mkdir(parents=True)
    (own / "kiln.yaml").write_text(
        "description: k\ncolumns:\n  annealed: {type: bool, nullable: true, description: d}\n", encoding="utf-8"
    )
    cells = ["TRUE", "false", "1", "No", "", "maybe"]
    rows = "".join(f"S{n},GaN,3.{n},{cell}\n" for n, cell in enumerate(cells))
    (tmp_path / "lab.csv").write_text("id,formula,gap,ann\n" + rows, encoding="utf-8")
    _mapping(
        tmp_path,
        "dataset: kiln\nformula_column: formula\nid_column: id\ncitation: c\nextension: kiln\n"
        "extra_columns: {ann: annealed}\ncolumns:\n  gap: {property: band_gap, unit: eV}\n",
    )
    monkeypatch.chdir(tmp_path)
    report = run_ingest(LabConnector(tmp_path / "lab.csv", load_mapping(tmp_path / "mapping.yaml")), store)
    assert (report.n_stored, report.n_quarantined) == (5, 1)
    stored = store.query("SELECT record_id, value, type FROM record_attributes ORDER BY record_id").values.tolist()
    assert stored == [
        ["kiln:S0", "True", "bool"],
        ["kiln:S1", "False", "bool"],
        ["kiln:S2", "True", "bool"],
        ["kiln:S3", "False", "bool"],
    ]
    reasons = store.query("SELECT item, reasons FROM quarantine").values.tolist()
    assert [[item, list(why)] for item, why in reasons] == [
        ["S5", ["annealed: not true or false (true/false, yes/no or 1/0): 'maybe'"]]
    ]
    assert check_store_tables(store).problems == []
