from datetime import datetime, timezone

import pydantic
import pytest

from matreg.catalog import load_catalog
from matreg.errors import ConfigError
from matreg.fieldmap import FieldMap, FieldSpec, load_field_map
from matreg.resources import resource_path
from matreg.sources.base import Attribution, SourceRecord
from matreg.validation import RunStamp, harmonize


def test_bundled_catalog_lists_janaf_and_datasets():
    catalog = load_catalog(resource_path("catalog.yaml"))
    janaf = catalog.source("janaf")
    assert janaf.base_url == "https://janaf.nist.gov/tables/" and janaf.provenance == "experimental"
    assert catalog.dataset("janaf-thermo-298").temperature_K == 298.15


SOURCE = (
    "sources:\n  x:\n    title: t\n    connector: {connector}\n    base_url: u\n    provenance: dft\n"
    "    license: l\n    citation: c\n{more}"
)


DATASET = "datasets:\n  d:\n    description: x\n    version: '1'\n    properties: [band_gap]\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources:\n  janaf: [unclosed\n", r"line 3: malformed YAML"),
        (
            "sources:\n  x:\n    title: t\n    connector: janaf\n    base_url: u\n    provenance: theory\n"
            "    license: l\n    citation: c\n",
            r"line 6: sources\.x\.provenance",
        ),
        (
            "datasets:\n  d:\n    description: x\n    version: '1'\n    properties: [band_gap, colour]\n",
            r"line 5: datasets\.d\.properties.*colour",
        ),
        ("sources:\n  x:\n    title: t\n", r"line 3: sources\.x\.connector: Field required"),
        (SOURCE.format(connector="optimade", more=""), r"line 3: sources\.x: .*connector optimade needs 'provider'"),
        (SOURCE.format(connector="optimade", more="    provider: Materials Cloud\n"), r"line 9: sources\.x\.provider"),
        (SOURCE.format(connector="janaf", more="    provider: mp\n"), r"'provider' is read by connector optimade only"),
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
        fields={"ehull": FieldSpec(property="energy_above_hull", unit="eV/atom")},
        missing_values=["na", "-99999", "0"],
    )
    for marker in (None, "na", "-99999", -99999, -99999.0, 0, 0.0, "0"):
        assert field_map.is_missing(marker), marker
    for value in ("NA", "-99999.0", -99998, 0.5, False, [-99999], {"value": -99999}):
        assert not field_map.is_missing(value), value
    assert [raw.value for raw in field_map.read_values({"ehull": -99999.0})] == []
    assert [raw.value for raw in field_map.read_values({"ehull": 0.25})] == [0.25]
    assert [raw.value for raw in field_map.read_values({"ehull": False})] == [False]  # not a marker: validation's case


def test_a_field_of_a_provenance_of_its_own_files_its_values_under_it():
    field_map = FieldMap(
        source="cod",
        provenance="experimental",
        fields={
            "gap": FieldSpec(property="band_gap", unit="eV"),
            "gap_calc": FieldSpec(property="band_gap", unit="eV", method="PBE", provenance="dft"),
        },
    )
    record = SourceRecord("1000041", "Si", field_map.read_values({"gap": 1.17, "gap_calc": 0.61}))
    stamp = RunStamp("run-1", datetime.now(timezone.utc))
    values = harmonize(record, Attribution(source="cod", provenance="experimental"), stamp).values
    assert [(row["value"], row["method"], row["provenance"]) for row in values] == [
        (1.17, None, "experimental"),
        (0.61, "PBE", "dft"),
    ]
    with pytest.raises(pydantic.ValidationError, match="'experimental', 'dft' or 'simulated'"):
        FieldSpec(property="band_gap", unit="eV", provenance="computed")
