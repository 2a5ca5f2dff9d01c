import importlib
import json
import logging
import pkgutil
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pydantic
import pytest
from typer.testing import CliRunner

import matreg.sources
from matreg.catalog import CONNECTORS, default_catalog_path, load_catalog
from matreg.cli import app
from matreg.errors import ConfigError
from matreg.fieldmap import FieldMap, FieldSpec, SourceFieldSpec, load_field_map
from matreg.resources import resource_path
from matreg.schema import load_methods
from matreg.sources import FetchRequest, aflow, build_connector, mp, oqmd
from matreg.sources.base import Attribution, Connector, SourceRecord
from matreg.sources.lab import load_mapping
from matreg.validation import RunStamp, harmonize


def test_bundled_catalog_lists_janaf_and_datasets():
    catalog = load_catalog(resource_path("catalog.yaml"))
    janaf = catalog.source("janaf")
    assert janaf.base_url == "https://janaf.nist.gov/tables/" and janaf.provenance == "experimental"
    assert catalog.dataset("janaf-thermo-298").temperature_K == 298.15


SOURCE = (
    "sources:\n  x:\n    title: t\n    connector: {connector}\n    base_url: {base_url}\n    provenance: dft\n"
    "    license: l\n    citation: c\n{more}"
)


def _source(connector: str = "janaf", base_url: str = "http://u", more: str = "") -> str:
    return SOURCE.format(connector=connector, base_url=base_url, more=more)


DATASET = "datasets:\n  d:\n    description: x\n    version: 1.0.0\n    properties: [band_gap]\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources:\n  janaf: [unclosed\n", r"line 3: malformed YAML"),
        (
            "sources:\n  x:\n    title: t\n    connector: janaf\n    base_url: http://u\n    provenance: theory\n"
            "    license: l\n    citation: c\n",
            r"line 6: sources\.x\.provenance",
        ),
        (
            "datasets:\n  d:\n    description: x\n    version: 1.0.0\n    properties: [band_gap, colour]\n",
            r"line 5: datasets\.d\.properties.*colour",
        ),
        ("sources:\n  x:\n    title: t\n", r"line 2: sources\.x\.connector: Field required"),
        (_source("optimade"), r"line 2: sources\.x: .*connector optimade needs 'provider'"),
        (_source("optimade", more="    provider: Materials Cloud\n"), r"line 9: sources\.x\.provider"),
        (_source(more="    provider: mp\n"), r"'provider' is read by connector optimade only"),
        (
            DATASET + "    resolve: {strategy: median, prefer: [PBE]}\n",
            r"line 6: datasets\.d\.resolve: .*`prefer` is read by strategy prefer",
        ),
        (
            DATASET + "    resolve: {strategy: prefer}\n",
            r"line 6: datasets\.d\.resolve: .*strategy prefer needs a `prefer` list",
        ),
    ],
)
def test_malformed_catalog_names_the_line(tmp_path, text, message):
    path = tmp_path / "catalog.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_catalog(path)


@pytest.mark.parametrize(
    ("connector", "message"),
    [
        (
            "lab",
            r"line 4: sources\.x\.connector: .*no connector 'lab' .*aflow, janaf, jarvis, mp, nomad, optimade, oqmd.*"
            r"matreg import",
        ),
        ("base", r"line 4: sources\.x\.connector: .*no connector 'base'"),
        ("aflw", r"line 4: sources\.x\.connector: .*no connector 'aflw'"),
    ],
)
def test_a_connector_matreg_lacks_is_named_with_its_line(tmp_path, connector, message):
    path = tmp_path / "catalog.yaml"
    path.write_text(_source(connector), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_catalog(path)


def test_a_misspelt_connector_with_a_provider_names_the_connector(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(_source("optimde", more="    provider: exmpl\n"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 4: sources\.x\.connector: .*no connector 'optimde'") as raised:
        load_catalog(path)
    assert "provider" not in str(raised.value)


def test_catalog_connectors_are_the_connector_modules():
    modules = {info.name for info in pkgutil.iter_modules(matreg.sources.__path__)}
    built = {name for name in modules if hasattr(importlib.import_module(f"matreg.sources.{name}"), "build")}
    assert set(CONNECTORS) == built


@pytest.mark.parametrize("url", ["127.0.0.1:5077", "u", "ftp://mirror.example/janaf", "https://", "http:///path"])
def test_a_base_url_that_names_no_server_or_file_is_refused_with_its_line(tmp_path, url):
    path = tmp_path / "catalog.yaml"
    path.write_text(_source(base_url=url), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 5: sources\.x\.base_url: .*http://, https:// or file://"):
        load_catalog(path)


@pytest.mark.parametrize("url", ["http://127.0.0.1:5077", "https://oqmd.org/oqmdapi/", "file:///srv/janaf/"])
def test_base_urls_of_servers_and_files_are_read(tmp_path, url):
    path = tmp_path / "catalog.yaml"
    path.write_text(_source(base_url=url), encoding="utf-8")
    assert load_catalog(path).source("x").base_url == url


def _lines_of_key(text: str, key: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), start=1) if line.lstrip().split(":")[0] == key]


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("source", "x/../../../escaped"),
        ("source", ".."),
        ("source", ".hidden"),
        ("dataset", "../d"),
        ("dataset", "a b"),
    ],
)
def test_a_name_that_is_no_safe_file_name_is_refused_naming_the_file_and_the_name(tmp_path, kind, name):
    # a source's name goes into its runs' ids, which name lock and journal files: '../..' wrote them outside the store
    # (the entry of the name is named, after one of a safe name)
    entry = _source() if kind == "source" else DATASET
    text = entry + f"  '{name}':\n" + entry.split("\n", 2)[2]
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    line = _lines_of_key(text, f"'{name}'")[0]
    with pytest.raises(ConfigError) as error:
        load_catalog(path)
    assert str(error.value) == (
        f"{path}: line {line}: {kind}s.{name}: Value error, {kind} name {name!r} is not allowed: a {kind} name is "
        "letters, digits, '-', '_' and '.', starting with a letter or digit (it names files in the store)"
    )


def test_names_of_letters_digits_dots_dashes_and_underscores_are_taken(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(_source().replace("  x:", "  mc3d.pbe-v1_2:") + DATASET)
    assert (list(load_catalog(path).sources), list(load_catalog(path).datasets)) == (["mc3d.pbe-v1_2"], ["d"])


@pytest.mark.parametrize(
    ("name", "edit", "key", "load"),
    [
        # a copy-paste slip: the oqmd entry renamed janaf would have replaced the real JANAF entry
        ("catalog.yaml", ("\n  oqmd:\n", "\n  janaf:\n"), "janaf", load_catalog),
        ("connectors/janaf.yaml", ("\nfields:\n", "\nprovenance: dft\nfields:\n"), "provenance", load_field_map),
        ("schemas/methods.yaml", ("\nPBE+U:\n", "\nPBE:\n"), "PBE", load_methods),
    ],
    ids=["catalog", "field map", "schema"],
)
def test_a_key_given_twice_is_refused_with_its_file_and_both_lines(tmp_path, name, edit, key, load):
    text = resource_path(name).read_text(encoding="utf-8").replace(*edit)
    path = tmp_path / "twice.yaml"
    path.write_text(text, encoding="utf-8")
    first, second = _lines_of_key(text, key)
    with pytest.raises(ConfigError) as error:
        load(path) if load is not load_field_map else load("janaf", path)
    assert str(error.value) == (
        f"{path}: line {second}: malformed YAML: duplicate key '{key}' (first on line {first}): give each key once"
    )


def test_a_key_a_yaml_merge_gives_may_be_given_again(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(
        "sources:\n  x: &x {title: t, connector: janaf, base_url: http://u, provenance: dft, license: l, citation: c}\n"
        "  y:\n    <<: *x\n    title: the same, another title\n",
        encoding="utf-8",
    )
    catalog = load_catalog(path)
    assert (catalog.source("x").title, catalog.source("y").title) == ("t", "the same, another title")


@pytest.mark.parametrize(
    ("more", "message"),
    [
        (
            "    provenence: experimental\n",
            "line 9: sources.x: unknown key 'provenence'; missing 'provenance'",
        ),
        (
            "    provenence: experimental\n    licence: l\n",
            "line 9: sources.x: unknown key 'provenence'; line 10: sources.x: unknown key 'licence'; "
            "missing 'provenance'",
        ),
        ("    provenance: dft\n    doi_url: x\n", "line 10: sources.x: unknown key 'doi_url'"),
        (
            "    provenance: theory\nnotes: x\n",
            "line 10: (top level): unknown key 'notes'; line 9: sources.x.provenance: Input should be",
        ),
    ],
    ids=["misspelt", "two misspelt", "unknown", "unknown beside another problem"],
)
def test_an_unknown_key_is_named_with_its_line_beside_the_key_it_leaves_missing(tmp_path, more, message):
    path = tmp_path / "catalog.yaml"
    path.write_text(
        "sources:\n  x:\n    title: t\n    connector: janaf\n    base_url: http://u\n    license: l\n    citation: c\n"
        "    method: m\n" + more,
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as error:
        load_catalog(path)
    assert str(error.value).startswith(f"{path}: {message}")


def test_a_yaml_file_that_is_not_utf8_is_refused_with_where_and_how_to_save_it(tmp_path):
    path = tmp_path / "catalog.yaml"
    text = resource_path("catalog.yaml").read_text(encoding="utf-8").replace("M. W. Chase", "M. W. Chäse")
    path.write_bytes(text.encode("cp1252"))  # as a Windows editor saves it
    line = _lines_of_key(text, "citation")[0]
    with pytest.raises(ConfigError) as error:
        load_catalog(path)
    byte = text.encode("cp1252").index(b"\xe4")
    assert str(error.value) == (
        f"cannot read {path}: not UTF-8 text: line {line}, byte {byte}: b'\\xe4' after '    citation: \"M. W. Ch'; "
        "save it as UTF-8"
    )


def test_bundled_optimade_entries_name_their_providers_prefix():
    sources = load_catalog(resource_path("catalog.yaml")).sources
    providers = {name: source.provider for name, source in sources.items() if source.connector == "optimade"}
    assert providers == {"optimade": "mp", "optimade-oqmd": "oqmd", "optimade-jarvis": "jarvis", "optimade-cod": "cod"}


def test_unknown_names_list_the_known_ones():
    catalog = load_catalog(resource_path("catalog.yaml"))
    with pytest.raises(ConfigError, match="unknown source 'nosuchdb'.*janaf"):
        catalog.source("nosuchdb")
    with pytest.raises(ConfigError, match="unknown dataset"):
        catalog.dataset("nope")


def test_janaf_field_map_resolves_every_column_through_the_vocabulary():
    field_map = load_field_map("janaf")
    assert {field_map.property_of(column) for column in field_map.fields} == {
        "heat_capacity_cp",
        "entropy",
        "gibbs_energy_function",
        "enthalpy_increment",
        "enthalpy_of_formation",
        "gibbs_energy_of_formation",
        "log_formation_constant",
    }


def test_missing_markers_match_texts_and_the_numbers_they_spell():
    field_map = FieldMap(
        source="jarvis",
        provenance="dft",
        fields={"ehull": SourceFieldSpec(property="energy_above_hull", unit="eV/atom")},
        missing_values=["na", "-99999", "0"],
    )
    for marker in (None, "na", "-99999", -99999, -99999.0, 0, 0.0, "0"):
        assert field_map.is_missing(marker), marker
    for value in ("NA", "-99999.0", -99998, 0.5, False, [-99999], {"value": -99999}):
        assert not field_map.is_missing(value), value
    assert [raw.value for raw in field_map.read_values({"ehull": -99999.0})] == []
    assert [raw.value for raw in field_map.read_values({"ehull": 0.25})] == [0.25]
    assert [raw.value for raw in field_map.read_values({"ehull": False})] == [False]  # not a marker: validation's case


@pytest.mark.parametrize(
    ("record", "values", "absent"),
    [
        ({"gap": 1.1, "a": {"b": [{"c": 2.0}]}}, [1.1, 2.0], []),
        ({}, [], ["gap", "a.b.0.c"]),  # keys missing: drift
        ({"gap": None, "a": {}}, [], ["a.b.0.c"]),  # a null is given, a missing key is not
        ({"gap": "na", "a": None}, [], []),  # a missing marker, and a path meeting a null on the way
        ({"a": {"b": None}}, [], ["gap"]),
        ({"a": {"b": []}}, [], ["gap"]),  # a list on the way: no key of it is missing
        ({"a": {"b": [{}]}}, [], ["gap"]),
        ({"a": {"b": {"0": {"c": 3.0}}}}, [3.0], ["gap"]),  # an object's key '0'
        ({"a": {"b": {"0": {}}}}, [], ["gap", "a.b.0.c"]),
        ({"a": {"b": "text"}}, [], ["gap"]),
    ],
)
def test_a_field_maps_read_gives_the_values_present_and_the_mapped_fields_missing(record, values, absent):
    field_map = FieldMap(
        source="nomad",
        fields={
            "gap": SourceFieldSpec(property="band_gap", unit="eV"),
            "a.b.0.c": SourceFieldSpec(property="energy_above_hull", unit="eV/atom"),
        },
        missing_values=["na"],
    )
    reading = field_map.read(record)
    assert ([raw.value for raw in reading.values], reading.absent) == (values, absent)
    assert [raw.value for raw in field_map.read_values(record)] == values


@pytest.mark.parametrize(
    ("record", "unmapped"),
    [
        ({"gap": 1.1, "id": 7, "a": {}}, []),
        ({"new": 1, "gap": 1.1, "renamed": 2, "id": 7}, ["new", "renamed"]),  # in the record's order
        (pd.Index(["gap", "T", "id"]), ["T"]),  # a table's columns
    ],
)
def test_a_records_top_level_fields_neither_mapped_nor_listed_are_unmapped(record, unmapped):
    field_map = FieldMap(
        source="nomad",
        fields={
            "gap": SourceFieldSpec(property="band_gap", unit="eV"),
            "a.b": SourceFieldSpec(property="density", unit="g/cm^3"),
        },
        other_fields=["id"],
    )
    assert field_map.unmapped(record) == unmapped


def test_a_field_of_a_provenance_of_its_own_files_its_values_under_it():
    field_map = FieldMap(
        source="cod",
        provenance="experimental",
        fields={
            "gap": SourceFieldSpec(property="band_gap", unit="eV"),
            "gap_calc": SourceFieldSpec(property="band_gap", unit="eV", method="PBE", provenance="dft"),
        },
    )
    record = SourceRecord("1000041", "Si", field_map.read_values({"gap": 1.17, "gap_calc": 0.61}))
    stamp = RunStamp("run-1", datetime.now(UTC))
    values = harmonize(record, Attribution(source="cod", provenance="experimental"), stamp).values
    assert [(row["value"], row["method"], row["provenance"]) for row in values] == [
        (1.17, None, "experimental"),
        (0.61, "PBE", "dft"),
    ]
    with pytest.raises(pydantic.ValidationError, match="'experimental', 'dft' or 'simulated'"):
        FieldSpec(property="band_gap", unit="eV", provenance="computed")


@pytest.mark.parametrize("key", ["temperature_field", "method_field", "pressure_field"])
def test_a_field_map_reads_no_field_of_a_lab_rows_conditions_or_method(key):
    with pytest.raises(pydantic.ValidationError, match=f"{key} is a lab mapping's: a connector's field map"):
        SourceFieldSpec(property="band_gap", unit="eV", **{key: "T"})


def test_a_field_map_property_the_vocabulary_lacks_is_named_with_the_file_and_the_fix(tmp_path, monkeypatch):
    (tmp_path / "connectors").mkdir()
    path = tmp_path / "connectors" / "oqmd.yaml"
    bundled = resource_path("connectors/oqmd.yaml").read_text(encoding="utf-8")
    path.write_text(bundled.replace("fields:\n", "fields:\n  colour: {property: colour, unit: eV}\n", 1), "utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_field_map("oqmd")
    assert str(raised.value) == (
        f"{path}: field map of 'oqmd': 'colour' is not in the property vocabulary (a new property is declared in "
        "schemas/properties.yaml: see README, Catalog)"
    )


@pytest.mark.parametrize("provenance", ["", "provenance: simulated\n"])
def test_a_field_maps_records_are_of_the_catalog_entrys_provenance_whether_the_map_names_one_or_not(
    tmp_path, monkeypatch, provenance
):
    # a field map had to name a provenance, which nothing read: the catalog entry's is every record's (required there)
    bundled = resource_path("connectors/oqmd.yaml").read_text(encoding="utf-8")
    assert "\nprovenance: dft\n" in bundled
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "oqmd.yaml").write_text(bundled.replace("provenance: dft\n", provenance), "utf-8")
    monkeypatch.chdir(tmp_path)
    catalog = load_catalog(resource_path("catalog.yaml"))
    assert build_connector("oqmd", catalog, FetchRequest(everything=True)).attribution.provenance == "dft"


@pytest.mark.parametrize(
    ("source", "edit", "warned"),
    [
        ("oqmd", ("provenance: dft\n", "provenance: experimental\n"), ("experimental", "dft")),
        ("oqmd", ("", ""), None),
        ("optimade-cod", ("\nfields:\n", "\nprovenance: dft\nfields:\n"), ("dft", "experimental")),
        ("optimade-cod", ("\nfields:\n", "\nprovenance: experimental\nfields:\n"), None),
    ],
)
def test_a_field_maps_provenance_that_is_not_the_catalog_entrys_is_warned_of(
    tmp_path, monkeypatch, caplog, source, edit, warned
):
    # a map's provenance deciding nothing was silently ignored: 'provenance: experimental' in a map of DFT records
    catalog = load_catalog(resource_path("catalog.yaml"))
    connector = catalog.sources[source].connector
    text = resource_path(f"connectors/{connector}.yaml").read_text(encoding="utf-8")
    assert edit[0] in text
    path = _project_map(tmp_path, connector, text.replace(*edit, 1))
    monkeypatch.chdir(tmp_path)
    built = build_connector(source, catalog, FetchRequest(everything=True))
    assert built.attribution.provenance == catalog.sources[source].provenance
    assert _warnings(caplog) == (
        [
            f"{path}: provenance {warned[0]} is not that of catalog source '{source}' ({warned[1]}), whose records are "
            f"filed as {warned[1]}: a field map's provenance decides nothing (the catalog entry's does; a field's own "
            "`provenance` files its values under another): drop the map's key or make it agree"
        ]
        if warned
        else []
    )


def test_matregs_field_maps_warn_of_no_provenance_with_its_catalog(monkeypatch, caplog):
    # optimade.yaml's provenance dft, which decides nothing, is not COD's (experimental): the map names none
    monkeypatch.setenv("MP_API_KEY", "x" * 32)
    catalog = load_catalog(resource_path("catalog.yaml"))
    for name in catalog.sources:
        build_connector(name, catalog, FetchRequest(everything=True))
    assert _warnings(caplog) == []


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What was logged at warning level or above."""
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


def _refusal(path, text: str) -> str:
    """The ConfigError's text that loading `text` as catalog `path` gives."""
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_catalog(path)
    return str(raised.value)


PREFER = DATASET + "    resolve:\n      strategy: prefer\n      prefer:\n"  # then one entry a line, from line 9


@pytest.mark.parametrize(
    ("prefer", "line", "repeat"),
    [
        (["PBE", "HSE06", "GGA-PBE"], 11, "'GGA-PBE' names what 'PBE' before it names"),
        (["PBE", "HSE06", "PBE"], 11, "'PBE' is listed twice"),
        (["experimental", "Experimental"], 10, "'Experimental' names what 'experimental' before it names"),
        (["PBE+U", "GGA + U"], 10, "'GGA + U' names what 'PBE+U' before it names"),
    ],
    ids=["alias", "twice", "letter case", "alias spaced"],
)
def test_a_prefer_entry_naming_what_an_earlier_one_names_is_refused_with_both_and_its_line(
    tmp_path, prefer, line, repeat
):
    # the later entry's rank replaced the earlier one's: [PBE, HSE06, GGA-PBE] kept HSE06 values over PBE ones
    path = tmp_path / "catalog.yaml"
    text = PREFER + "".join(f"        - {entry}\n" for entry in prefer)
    assert _refusal(path, text) == (
        f"{path}: line {line}: datasets.d.resolve.prefer.{len(prefer) - 1}: Value error, {repeat}: give each "
        "provenance or method once (a later one ranks nothing)"
    )


def test_prefer_entries_of_distinct_names_load_in_their_order(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(PREFER + "".join(f"        - {e}\n" for e in ["experimental", "HSE06", "PBE+U", "PBE"]))
    assert load_catalog(path).dataset("d").resolve.prefer == ["experimental", "HSE06", "PBE+U", "PBE"]


@pytest.mark.parametrize(
    ("entry", "refused"),
    [
        (
            "properties: [band_gap, band_gap]",
            "properties.1: Value error, 'band_gap' is listed twice: give each property",
        ),
        ("sources: [mp, lab-a, mp]", "sources.2: Value error, 'mp' is listed twice: give each source"),
        (
            "provenance: [dft, experimental, dft]",
            "provenance.2: Value error, 'dft' is listed twice: give each provenance",
        ),
        (
            "methods: [PBE, GGA-PBE]",
            "methods.1: Value error, 'GGA-PBE' names what 'PBE' before it names: give each method",
        ),
        (  # a lab's own technique: the selection reads both as one (spaces and letter case aside)
            "methods: [Optical Absorption, optical  absorption]",
            "methods.1: Value error, 'optical  absorption' names what 'Optical Absorption' before it names: give each "
            "method",
        ),
        (
            "methods: [Optical Absorption, OpticalAbsorption]",
            "methods.1: Value error, 'OpticalAbsorption' names what 'Optical Absorption' before it names: give each "
            "method",
        ),
    ],
    ids=["properties", "sources", "provenance", "methods", "methods spaced", "methods unspaced"],
)
def test_a_dataset_list_naming_one_entry_twice_is_refused_with_its_line(tmp_path, entry, refused):
    path = tmp_path / "catalog.yaml"
    text = DATASET.replace("    properties: [band_gap]\n", "") + f"    {entry}\n"
    if not entry.startswith("properties"):
        text += "    properties: [band_gap]\n"
    assert _refusal(path, text) == f"{path}: line 5: datasets.d.{refused} once"


def test_export_of_a_catalog_listing_a_property_twice_exits_2_naming_the_line(tmp_path):
    # a wide export crashed in pyarrow: "Duplicate column names found"
    path = tmp_path / "catalog.yaml"
    path.write_text(DATASET.replace("[band_gap]", "[band_gap, band_gap]"), encoding="utf-8")
    args = ["export", "d", "--store", str(tmp_path / "store"), "--catalog", str(path), "--layout", "wide"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x.parquet")])
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {path}: line 5: datasets.d.properties.1: Value error, 'band_gap' is listed twice: give each "
        "property once\n",
    )


@pytest.mark.parametrize(("key", "what"), [("sources", "source"), ("provenance", "provenance"), ("methods", "method")])
def test_an_empty_selection_list_is_refused_with_its_line(tmp_path, key, what):
    # an empty list selected every value (no filter), and the release card said "sources ."
    path = tmp_path / "catalog.yaml"
    assert _refusal(path, DATASET + f"    {key}: []\n") == (
        f"{path}: line 6: datasets.d.{key}: Value error, an empty list selects nothing; leave the key out to select "
        f"every {what}"
    )


@pytest.mark.parametrize(
    "version",
    # semantic versioning's pre-release identifiers: no leading zero in a number, none empty (rc.01, rc..1, rc.)
    [
        "latest",
        "v1.0.0",
        "'1.0'",
        "1.0.0+build.5",
        "01.0.0",
        "''",
        "'2024.03.1'",
        "1.0.0-rc.01",
        "1.0.0-rc..1",
        "1.0.0-rc.",
    ],
)
def test_a_dataset_version_that_is_no_release_version_is_refused_by_a_release_naming_its_line(tmp_path, version):
    # `matreg release` refused it naming no file; refused as the catalog loaded, it stopped every command reading it
    path = tmp_path / "catalog.yaml"
    path.write_text(DATASET.replace("1.0.0", version) + "    provenance: [dft]\n", encoding="utf-8")
    catalog = load_catalog(path)  # as an import, a fetch or an export reads it
    with pytest.raises(ConfigError) as refused:
        catalog.release_version("d")
    shown = version.strip("'")
    assert str(refused.value) == (
        f"{path}: line 4: datasets.d.version: Value error, invalid version '{shown}' (expected X.Y.Z or X.Y.Z-pre, "
        "e.g. 1.0.0 or 1.1.0-rc.1)"
    )


@pytest.mark.parametrize(("version", "number"), [("1.0", "1.0"), ("2", "2"), ("1.10", "1.10")])
def test_a_version_yaml_reads_as_a_number_is_refused_with_the_hint_to_quote_it(tmp_path, version, number):
    path = tmp_path / "catalog.yaml"
    assert _refusal(path, DATASET.replace("1.0.0", version)) == (
        f"{path}: line 4: datasets.d.version: Input should be a valid string (YAML reads {number} as a number: write "
        f"text in quotes, '{number}')"
    )


@pytest.mark.parametrize("version", ["1.0.0", "'0.1.0'", "1.1.0-rc.1", "2.0.0-beta", "1.0.0-0.3.7", "1.0.0-x-y.0a"])
def test_release_versions_load(tmp_path, version):
    path = tmp_path / "catalog.yaml"
    path.write_text(DATASET.replace("1.0.0", version), encoding="utf-8")
    assert load_catalog(path).release_version("d") == version.strip("'")


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        (
            SOURCE.format(connector="janaf", base_url="http://u", more="")
            + "datasets:\n  d:\n    description: x\n    version: 1.0.0\n    properties: [band_gap]\n"
            "    resolv:\n      strategy: median\n",
            "line 14: datasets.d: unknown key 'resolv'",
        ),
        (
            "# the project's datasets\ndatasetz:\n  d:\n    description: x\n",
            "line 2: (top level): unknown key 'datasetz'",
        ),
    ],
    ids=["dataset", "top level"],
)
def test_an_unknown_key_of_an_indented_block_is_named_at_its_own_line(tmp_path, text, refused):
    # it was named at the line of its block's first key (line 15, line 3)
    path = tmp_path / "catalog.yaml"
    assert _refusal(path, text) == f"{path}: {refused}"


def test_an_unknown_key_of_an_indented_block_in_a_lab_mapping_is_named_at_its_own_line(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(
        "dataset: thermo-lab\nformula_column: formula\ncitation: notebook 7\ncolumns:\n"
        "  Cp:\n    unit: J/(mol*K)\n    conditions:\n      temperature_K: 298.15\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_mapping(path)
    assert str(raised.value) == f"{path}: line 7: columns.Cp: unknown key 'conditions'"


@pytest.mark.parametrize(
    ("condition", "refused"),
    [
        ("temperature_K: -5", "temperature_K: Input should be greater than or equal to 0"),
        ("temperature_K: .nan", "temperature_K: Input should be a finite number"),
        ("temperature_K: .inf", "temperature_K: Input should be a finite number"),
        ("pressure_Pa: -1.0e+5", "pressure_Pa: Input should be greater than or equal to 0"),
        ("pressure_Pa: .nan", "pressure_Pa: Input should be a finite number"),
    ],
)
def test_a_negative_or_non_finite_condition_is_refused_with_its_line(tmp_path, condition, refused):
    path = tmp_path / "catalog.yaml"
    assert _refusal(path, DATASET + f"    {condition}\n") == f"{path}: line 6: datasets.d.{refused}"


def test_conditions_of_zero_and_more_load(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(DATASET + "    temperature_K: 0\n    pressure_Pa: 1.0e+5\n", encoding="utf-8")
    assert (load_catalog(path).dataset("d").temperature_K, load_catalog(path).dataset("d").pressure_Pa) == (0, 1e5)


@pytest.mark.parametrize(
    ("tolerance", "refused"),
    [
        ("-1", "line 7: datasets.d.resolve.tolerance: Input should be greater than or equal to 0"),
        ("{band_gap: -1}", "line 7: datasets.d.resolve.tolerance.band_gap: Input should be greater than or equal to 0"),
        (
            "\n        band_gap: 0.1\n        enthalpy_of_formation: x",
            "line 9: datasets.d.resolve.tolerance.enthalpy_of_formation: Input should be a valid number, unable to "
            "parse string as a number",
        ),
    ],
    ids=["number", "per property", "per property, a block"],
)
def test_a_tolerance_problem_is_named_by_its_yaml_keys(tmp_path, tolerance, refused):
    # the location read 'resolve.tolerance.constrained-float', pydantic's name of one of the types it may be
    path = tmp_path / "catalog.yaml"
    text = DATASET + f"    resolve:\n      tolerance: {tolerance}\n"
    assert _refusal(path, text) == f"{path}: {refused}"


def test_the_librarys_catalog_from_the_environment_starts_with_a_tilde_in_the_home_folder(tmp_path, monkeypatch):
    """`load_catalog()` read MATREG_CATALOG='~/c.yaml' as a folder named '~' here (the command line expanded it)."""
    shutil.copy(resource_path("catalog.yaml"), tmp_path / "my-catalog.yaml")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MATREG_CATALOG", "~/my-catalog.yaml")
    monkeypatch.chdir(tmp_path)
    assert default_catalog_path() == tmp_path / "my-catalog.yaml"
    assert load_catalog()._file == tmp_path / "my-catalog.yaml" and "janaf-thermo-298" in load_catalog().datasets


@pytest.mark.parametrize(
    ("connector", "line", "asked_for"),
    [
        ("oqmd", "  band_gap: {unit: eV}\n", lambda fields: oqmd.query_fields(fields).split(",")),
        ("mp", "  band_gap: {unit: eV}\n", lambda fields: mp.requested_fields(fields).split(",")),
        ("aflow", "  Egap: {property: band_gap, unit: eV}\n", aflow.request_keywords),
    ],
)
def test_a_field_read_as_a_values_unit_is_asked_of_the_source(tmp_path, connector, line, asked_for):
    """A field's unit_field was left out of the fields a connector asks its source for (OQMD, MP, AFLOW send only
    those): every value of it was quarantined as having no unit, though the source has the field."""
    text = resource_path(f"connectors/{connector}.yaml").read_text(encoding="utf-8")
    assert line in text
    field = line.split(":")[0].strip()
    path = tmp_path / f"{connector}.yaml"
    path.write_text(text.replace(line, line.replace("unit: eV", "unit_field: gap_unit")), encoding="utf-8")
    asked = asked_for(load_field_map(connector, path))
    assert "gap_unit" in asked and field in asked


FIXTURES = Path(__file__).parent / "fixtures"
NOMAD_VOLUME = "archive.results.properties.structures.structure_original.cell_volume"


def _first_record(path: str, *keys: str | int) -> dict[str, Any]:
    """The first record of a fixture file (of a zip's first member), `keys` the path to it."""
    if path.endswith(".zip"):
        archive = zipfile.ZipFile(FIXTURES / path)
        body = json.loads(archive.read(archive.namelist()[0]))
    else:
        body = json.loads((FIXTURES / path).read_text(encoding="utf-8"))
    for key in keys:
        body = body[key]
    return body


@pytest.mark.parametrize(
    ("source", "field", "spec", "catalog_method", "payload", "expected"),
    [
        (  # the record's functional (PBE), not the map's 'DFT'
            "nomad",
            NOMAD_VOLUME,
            "{property: volume_per_atom, unit: m**3/cell",
            None,
            _first_record("nomad/page1.json", "data", 0),
            "PBE",
        ),
        ("oqmd", "band_gap", "{unit: eV", "PBE", _first_record("oqmd/formationenergy_records_AlFe_O.json", 0), "PBE"),
        ("mp", "band_gap", "{unit: eV", "r2SCAN", _first_record("mp/summary.json", "data", 0), "r2SCAN"),
        (  # a record whose func is PBE, not the map's OptB88vdW
            "jarvis",
            "formation_energy_peratom",
            "{property: formation_energy_per_atom, unit: eV/atom",
            None,
            _first_record("jarvis/jdft_3d-9-24-2025.json.zip", 0) | {"func": "PBE"},
            "PBE",
        ),
        (  # the provider's catalog method, not the map's (PBE, given below)
            "optimade-oqmd",
            "_oqmd_band_gap",
            "{property: band_gap, unit: eV",
            "PBE(+U)",
            _first_record("optimade/assembled_oqmd_page.json", "data", 0),
            "PBE(+U)",
        ),
    ],
)
def test_a_method_qualifier_qualifies_the_method_of_the_record_not_the_field_maps(
    tmp_path, monkeypatch, source, field, spec, catalog_method, payload, expected
):
    # a field's method_qualifier qualified the field map's method in every connector but AFLOW's and JANAF's: a NOMAD
    # PBE record's volume was stored as by 'DFT (AGL)', a JARVIS record by PBE's as by 'OptB88vdW (AGL)'
    monkeypatch.setenv("MP_API_KEY", "x" * 32)
    catalog = load_catalog(resource_path("catalog.yaml"))
    catalog.sources[source].method = catalog_method or catalog.sources[source].method
    connector = catalog.sources[source].connector
    text = _qualified_map(connector, field, spec)
    _project_map(tmp_path, connector, text.replace("\nfields:\n", "\nmethod: PBE\nfields:\n", connector == "optimade"))
    monkeypatch.chdir(tmp_path)
    _assert_qualified(build_connector(source, catalog, FetchRequest(everything=True)), field, payload, expected)


def _qualified_map(connector: str, field: str, spec: str) -> str:
    """matreg's field map of `connector`, its `field` given as `spec` (a flow mapping left open) with AGL its
    method_qualifier."""
    lines = resource_path(f"connectors/{connector}.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
    assert any(line.startswith(f"  {field}: ") for line in lines)
    qualified = f"  {field}: {spec}, method_qualifier: AGL}}\n"
    return "".join(qualified if line.startswith(f"  {field}: ") else line for line in lines)


def _project_map(folder: Path, connector: str, text: str) -> Path:
    """A project's own field map of `connector` in `folder` (its working directory), as `text`."""
    path = folder / "connectors" / f"{connector}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _assert_qualified(built: Connector, field: str, payload: dict[str, Any], method: str) -> None:
    """The record of `payload` is by `method`, and its values of `field` by `method` qualified by AGL."""
    assert built.field_map.fields[field].method_qualifier == "AGL"
    canonical = harmonize(built.to_record(payload), built.attribution, RunStamp("run-1", datetime.now(UTC)))
    prop = built.field_map.property_of(field)
    assert canonical.material["method"] == method
    assert [row["method"] for row in canonical.values if row["property"] == prop] == [f"{method} (AGL)"]


@pytest.mark.parametrize(
    ("source", "field", "spec", "edit", "payload", "expected"),
    [
        (  # the provider's catalog method: optimade.yaml names none (one map serves providers of other functionals)
            "optimade-oqmd",
            "_oqmd_band_gap",
            "{property: band_gap, unit: eV",
            ("", ""),
            _first_record("optimade/assembled_oqmd_page.json", "data", 0),
            "PBE(+U)",
        ),
        (  # a record without func: the catalog entry's method (given below), not None
            "jarvis",
            "formation_energy_peratom",
            "{property: formation_energy_per_atom, unit: eV/atom",
            ("\nmethod: OptB88vdW\n", "\n"),
            _first_record("jarvis/jdft_3d-9-24-2025.json.zip", 0) | {"func": "na"},
            "PBE",
        ),
    ],
)
def test_a_method_qualifier_of_a_map_naming_no_method_qualifies_the_catalog_entrys(
    tmp_path, monkeypatch, source, field, spec, edit, payload, expected
):
    # a map with a method_qualifier had to name a method, though the catalog entry named one for records naming none
    # (an OPTIMADE provider's): optimade.yaml could not qualify a field at all
    catalog = load_catalog(resource_path("catalog.yaml"))
    catalog.sources[source].method = expected
    connector = catalog.sources[source].connector
    text = _qualified_map(connector, field, spec)
    assert edit[0] in text and "\nmethod: " not in text.replace(*edit)
    _project_map(tmp_path, connector, text.replace(*edit))
    monkeypatch.chdir(tmp_path)
    _assert_qualified(build_connector(source, catalog, FetchRequest(everything=True)), field, payload, expected)


@pytest.mark.parametrize(
    ("source", "text", "qualified"),
    [
        (
            "optimade-cod",
            _qualified_map("optimade", "_alexandria_band_gap", "{property: band_gap, unit: eV"),
            ["_alexandria_band_gap"],
        ),
        (  # (as the map loads: AFLOW's entry names no method)
            "aflow",
            resource_path("connectors/aflow.yaml").read_text(encoding="utf-8").replace("method: PBE(+U)  #", "#"),
            [
                "ael_bulk_modulus_vrh",
                "ael_shear_modulus_vrh",
                "agl_debye",
                "agl_thermal_conductivity_300K",
                "agl_heat_capacity_Cp_300K",
            ],
        ),
    ],
)
def test_a_method_qualifier_without_a_method_of_the_catalog_entry_or_the_map_is_refused(
    tmp_path, monkeypatch, source, text, qualified
):
    # its values would be by 'None (AGL)'
    catalog = load_catalog(resource_path("catalog.yaml"))
    assert catalog.sources[source].method is None and "\nmethod: " not in text
    path = _project_map(tmp_path, catalog.sources[source].connector, text)
    line = 1 + next(n for n, text_line in enumerate(text.splitlines()) if text_line.startswith(f"  {qualified[0]}:"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        build_connector(source, catalog, FetchRequest(everything=True))
    assert str(raised.value) == (
        f"{path}: line {line}: fields.{qualified[0]}.method_qualifier: Value error, a method_qualifier "
        f"({', '.join(qualified)}) qualifies the record's method: give catalog source '{source}' or the map a "
        "'method' for records naming none"
    )
