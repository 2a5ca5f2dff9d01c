import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import fields
from inspect import signature
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import typer
from conftest import utf8_child
from typer.testing import CliRunner

from matreg.catalog import Dataset
from matreg.cli import app
from matreg.curate.review import ACTIONS, record_decision
from matreg.errors import ConfigError, ValidationError
from matreg.fieldmap import ROW_FIELDS, FieldSpec, load_field_map
from matreg.resources import resource_path
from matreg.schema import (
    EXTENSIONS,
    ColumnSpec,
    arrow_schema,
    canonical_method,
    load_extension,
    load_methods,
    load_tables,
    load_vocabulary,
    provenances,
    schema_extensions,
    schema_markdown,
    table_spec,
    value_conditions,
    value_key,
)
from matreg.sources.base import RawValue
from matreg.sources.lab import CONDITIONS_AS_STORED, LabMapping
from matreg.units import parse_unit
from matreg.validation import validate_table

REQUIRED_PROPERTIES = {
    "formation_energy_per_atom",
    "energy_above_hull",
    "band_gap",
    "total_energy_per_atom",
    "volume_per_atom",
    "density",
    "bulk_modulus",
    "shear_modulus",
    "debye_temperature",
    "heat_capacity_cp",
    "entropy",
    "enthalpy_of_formation",
    "gibbs_energy_of_formation",
    "thermal_conductivity",
    "magnetic_moment",
}


def test_declares_the_canonical_tables():
    assert set(load_tables()) == {
        "materials",
        "properties",
        "record_attributes",
        "fetch_runs",
        "quarantine",
        "curation_log",
    }


def test_arrow_types_come_from_the_schema():
    schema = arrow_schema("properties")
    assert schema.field("value").type == pa.float64()
    assert schema.field("original_unit").type == pa.string()
    assert schema.field("temperature_K").nullable and not schema.field("value").nullable
    assert arrow_schema("materials").field("elements").type == pa.list_(pa.string())


def test_vocabulary_covers_the_required_properties_with_real_units():
    vocabulary = load_vocabulary().root
    assert REQUIRED_PROPERTIES <= set(vocabulary)
    for spec in vocabulary.values():
        parse_unit(spec.unit)
        assert spec.bounds[0] < spec.bounds[1]


def test_a_vocabulary_unit_pint_lacks_is_named_with_its_file_line_and_property(tmp_path):
    path = tmp_path / "properties.yaml"
    path.write_text(
        "hall_mobility:\n  description: Hall mobility\n  unit: cm2/Vs\n  bounds: [0, 1.0e+6]\n", encoding="utf-8"
    )
    with pytest.raises(
        ConfigError, match=rf"{re.escape(str(path))}: line 3: hall_mobility\.unit: .*unknown unit 'cm2/Vs'"
    ):
        load_vocabulary(path)


def test_aliases_resolve_per_source():
    vocabulary = load_vocabulary()
    assert vocabulary.resolve("delta_e", "oqmd") == "formation_energy_per_atom"
    assert vocabulary.resolve("Egap", "aflow") == "band_gap"
    assert vocabulary.resolve("delta_e", "aflow") is None


def _property_row(**changes):
    row = {
        "record_id": "x:1",
        "property": "band_gap",
        "value": 1.1,
        "unit": "eV",
        "uncertainty": None,
        "original_value": 1.1,
        "original_unit": "eV",
        "provenance": "experimental",
        "method": None,
        "temperature_K": None,
        "pressure_Pa": None,
        "source": "x",
        "run_id": "r",
    }
    return pd.DataFrame([row | changes])


def test_a_valid_value_row_passes():
    assert len(validate_table("properties", _property_row())) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"provenance": "guess"}, "isin"),
        ({"unit": "meV"}, "canonical unit"),
        ({"value": -3.0}, "bounds"),
        ({"property": "colour"}, "isin"),
    ],
)
def test_rows_breaking_a_rule_are_refused(changes, message):
    with pytest.raises(ValidationError, match=message):
        validate_table("properties", _property_row(**changes))


def test_each_row_is_checked_against_its_own_property():
    rows = pd.concat(
        [
            _property_row(),
            _property_row(record_id="x:2", unit="meV"),
            _property_row(record_id="x:3", value=-3.0),
            _property_row(record_id="x:4", property="density", unit="g/cm**3", value=5.0),
        ]
    )
    with pytest.raises(ValidationError, match=r"canonical unit .*\(e\.g\. 'x:2'\)"):
        validate_table("properties", rows)
    with pytest.raises(ValidationError, match=r"canonical unit .*\(e\.g\. 'x:3'\)"):
        validate_table("properties", rows.iloc[[0, 2, 3]])
    assert len(validate_table("properties", rows.iloc[[0, 3]])) == 2


def test_a_stored_value_is_held_to_the_widest_bounds_of_its_property_as_its_row_gives_no_charge():
    # an aqueous ion's conventional entropy (NBS: Al3+ -321.7) is stored (its record's charge chose its bounds)
    entropy = {"property": "entropy", "unit": "J/(mol*K)"}
    assert len(validate_table("properties", _property_row(**entropy, value=-321.7))) == 1
    with pytest.raises(ValidationError, match="bounds"):
        validate_table("properties", _property_row(**entropy, value=-5000.5))


def test_duplicate_keys_are_refused():
    with pytest.raises(ValidationError):
        validate_table("properties", pd.concat([_property_row(), _property_row()]))


def _printed_schema(folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """What `matreg schema` prints, run from `folder` (a project's files there are read)."""
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    return result.stdout


def _section(printed: str, heading: str) -> str:
    """The Markdown of `printed` from `heading` to the next heading of its level or above."""
    level = heading.split(" ")[0]
    below = printed.split(f"\n{heading}\n")[1]
    return re.split(rf"\n#{{1,{len(level)}}} ", below)[0]


def test_matreg_schema_prints_the_rules_a_valid_row_keeps(tmp_path, monkeypatch):
    # only nullability and the allowed values were printed: bounds and uniqueness were in tables.yaml alone
    printed = _printed_schema(tmp_path, monkeypatch)
    materials = _section(printed, "## `materials`")
    assert "| column | type | nullable | constraints | description |" in materials
    assert "| `spacegroup_number` | int64 | yes | 1 .. 230 | International space group number. |" in materials
    assert "| `nsites` | int64 | yes | >= 1 | Number of sites in the structure's cell. |" in materials
    assert "| `record_id` | string | no | unique | Stable id '<source>:<source_id>'. |" in materials
    assert "| `provenance` | string | no | one of: experimental, dft, simulated | How the values were obtained. |" in (
        materials
    )
    assert "| `source` | string | no |  | Catalog name of the source (or the lab dataset name). |" in materials
    properties = _section(printed, "## `properties`")
    assert "| `temperature_K` | float64 | yes | >= 0 | Temperature the value applies to (K)" in properties
    assert "| `property` | string | no | a property of the vocabulary | Canonical property name" in properties
    assert (
        "Each row's `unit` is its property's canonical unit and its `value` lies within the property's bounds (see "
        "Property vocabulary; where it gives bounds of an ion or aqueous solute too, the wider: a row does not give "
        "its record's charge)."
    ) in properties
    assert "Each row's `unit`" not in _section(printed, "## `materials`")
    assert "| `status` | string | no | one of: in_progress, complete, failed |" in _section(printed, "## `fetch_runs`")


def test_matreg_schema_lists_each_schema_extension_with_its_columns(tmp_path, monkeypatch):
    # the extensions a lab mapping may name were listed nowhere but in their YAML files
    (tmp_path / EXTENSIONS).mkdir(parents=True)
    furnace = (
        'description: "Furnace runs."\ncolumns:\n  dwell_h: {type: float64, min: 0, max: 100, description: "Dwell."}\n'
    )
    (tmp_path / EXTENSIONS / "furnace.yaml").write_text(furnace, encoding="utf-8")
    extensions = _section(_printed_schema(tmp_path, monkeypatch), "## Schema extensions")
    shipped = sorted(path.stem for path in resource_path(EXTENSIONS).glob("*.yaml"))
    assert [line for line in extensions.splitlines() if line.startswith("### ")] == [
        "### `furnace` (this project's: schemas/extensions/furnace.yaml)",
        *(f"### `{name}`" for name in shipped),
    ]
    assert "| `dwell_h` | float64 | no | 0 .. 100 | Dwell. |" in _section(
        extensions, "### `furnace` (this project's: schemas/extensions/furnace.yaml)"
    )
    sample = _section(extensions, "### `lab-sample`")
    assert sample.startswith("\nSample metadata of a lab measurement: which sample, how it was made")
    assert "| `sample_id` | string | no |  | The lab's own id of the physical sample. |" in sample
    assert (
        "| `synthesis_route` | string | no | one of: solid-state, sol-gel, hydrothermal, CVD, PVD, melt, other | How "
        "the sample was made. |"
    ) in sample
    assert "| `measurement_temperature_K` | float64 | yes | >= 0 | Temperature of the sample during" in sample


def test_matreg_schema_prints_the_schema_with_a_project_extension_that_does_not_load_and_its_error(
    tmp_path, monkeypatch
):
    # the command a user runs to see the schema, and why an extension is refused, printed nothing but the error
    (tmp_path / EXTENSIONS).mkdir(parents=True)
    tags = 'description: "Tags."\ncolumns:\n  tags: {type: list<string>, description: "Tags."}\n'
    (tmp_path / EXTENSIONS / "tags.yaml").write_text(tags, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as error:
        load_extension("tags")
    assert str(error.value).startswith(f"{tmp_path / EXTENSIONS / 'tags.yaml'}: line 1: ")
    result = CliRunner().invoke(app, ["schema"])
    assert (result.exit_code, result.stderr) == (2, f"error: {error.value}\n")
    assert "| `nsites` | int64 | yes | >= 1 | Number of sites in the structure's cell. |" in result.stdout
    assert "\n## Views (what `matreg sql` and DuckDB clients query)\n" in result.stdout
    extensions = _section(result.stdout, "## Schema extensions")
    heading = "### `tags` (this project's: schemas/extensions/tags.yaml)"
    assert [line for line in extensions.splitlines() if line.startswith("### ")] == ["### `lab-sample`", heading]
    assert _section(extensions, heading) == f"\nNot loaded: {error.value}\n"
    assert "| `sample_id` | string | no |" in _section(extensions, "### `lab-sample`")


def test_matreg_schema_reads_a_project_extension_that_does_not_load_once(tmp_path, monkeypatch):
    """`matreg schema` loaded a project's extension that does not load twice, for its Markdown and for the error it
    ends with (a file edited meanwhile listed with one error and ended with another): it reads it once, and ends
    with the error it lists."""
    broken = tmp_path / EXTENSIONS / "tags.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text('description: "Tags.\ncolumns: [\n', encoding="utf-8")  # (YAML that does not parse)
    opened = []
    sys.addaudithook(lambda event, args: opened.append(event) if event == "open" and args[0] == str(broken) else None)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 2 and opened == ["open"], (result.output, opened)
    (error,) = re.findall(r"^Not loaded: (.*)$", result.stdout, flags=re.MULTILINE)
    assert error.startswith(f"{broken}: ") and result.stderr == f"error: {error}\n"


def test_docs_list_every_column_and_property():
    docs = schema_markdown(schema_extensions())
    for name, spec in load_tables().items():
        assert f"## `{name}`" in docs
        assert all(f"| `{column}` |" in docs for column in spec.columns)
    assert all(f"| `{prop}` |" in docs for prop in REQUIRED_PROPERTIES)
    assert "| `entropy` | J/(mol*K) | 0.0 .. 5000.0; of an ion or aqueous solute: -5000.0 .. 5000.0 |" in docs
    assert "| `band_gap` | eV | 0.0 .. 30.0 |" in docs


@pytest.mark.parametrize(
    ("key", "owner", "message"),
    [
        ("[record_id, property, method, temperature_K, pressure_Pa]", "samples", "not a table declared before it"),
        ("[record_id, property, method, temperature_K, pressure_Pa]", "fetch_runs", "not a table declared before it"),
        ("[record_id, attribute]", "properties", "no one-column key that record_attributes has a column for"),
    ],
)
def test_a_table_belongs_only_to_a_table_declared_before_it_by_a_key_column(tmp_path, key, owner, message):
    text = Path(resource_path("schemas/tables.yaml")).read_text(encoding="utf-8")
    declared = f"  primary_key: {key}\n  belongs_to: materials\n"
    assert declared in text
    broken = tmp_path / "tables.yaml"
    broken.write_text(text.replace(declared, f"  primary_key: {key}\n  belongs_to: {owner}\n"), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_tables(broken)


def test_docs_say_which_rows_belong_to_records_and_which_reads_are_kept():
    docs = schema_markdown(schema_extensions())
    assert "Each row belongs to a `materials` row" in docs.split("## `properties`")[1].split("## `fetch_runs`")[0]
    assert "read from its source later (`fetched_at`)" in docs.split("## `materials`")[1].split("## `properties`")[0]


def test_a_values_key_and_its_conditions_are_read_from_the_schema_and_documented():
    assert value_key() == ["record_id", "property", "method", "temperature_K", "pressure_Pa"]
    assert value_conditions() == ["temperature_K", "pressure_Pa"]
    properties = schema_markdown(schema_extensions()).split("## `properties`")[1].split("## `fetch_runs`")[0]
    assert properties.count("A condition the value applies at (part of its key).") == 2


def test_the_conditions_spelled_as_dataset_keys_raw_value_fields_and_log_columns_are_the_schemas():
    # typed fields, a catalog's YAML keys and stored columns name each condition by hand: a condition tables.yaml adds
    # or drops (matreg.export, review and ingest follow it) must be added or dropped there too
    dataset_others = {"description", "version", "properties", "sources", "provenance", "methods", "resolve"}
    raw_value_others = {"property", "value", "unit", "method", "problem", "provenance", "field", "uncertainty"}
    raw_value_others.add("uncertainty_problem")
    assert [key for key in Dataset.model_fields if key not in dataset_others] == value_conditions()
    assert [field.name for field in fields(RawValue) if field.name not in raw_value_others] == value_conditions()
    assert set(value_key()) <= set(table_spec("curation_log").columns)  # a decision names its value by its key
    assert list(CONDITIONS_AS_STORED) == value_conditions()  # how a lab import rounds each, as review matches them


def test_the_conditions_a_field_map_or_lab_mapping_keys_fix_or_read_from_a_row_are_the_schemas():
    # a connector's field map and a lab mapping's columns (FieldSpec: YAML keys) name each condition by hand, as its
    # value fixed (temperature_K: 300) or as the row's column it is read from, in a unit (temperature_field, _unit): a
    # condition tables.yaml adds or renames must be mapped there too
    from_row = {
        "temperature_K": ("temperature_field", "temperature_unit"),
        "pressure_Pa": ("pressure_field", "pressure_unit"),
    }
    others = {"property", "unit", "unit_field", "method", "method_field", "provenance", "uncertainty_field"}
    others |= {key for keys in from_row.values() for key in keys}
    assert list(from_row) == value_conditions()
    assert others <= FieldSpec.model_fields.keys()
    assert [key for key in FieldSpec.model_fields if key not in others] == value_conditions()
    assert {column for column, _ in from_row.values()} <= set(ROW_FIELDS)  # what a lab mapping reads from its rows
    assert LabMapping.model_fields["columns"].annotation == dict[str, FieldSpec]


def test_the_conditions_a_steward_names_a_value_by_are_the_schemas():
    # record_decision's parameters are the conditions by the schema's names, in its order (it pairs them with
    # value_conditions() so), and `matreg review`'s commands on one value have an option for each, spelled by hand
    options = {"temperature_K": "--temperature", "pressure_Pa": "--pressure"}
    others = {"store", "action", "steward", "reason", "record_id", "property", "method", "quarantine_id"}
    others |= {"value", "unit"}
    assert list(options) == value_conditions()
    assert [name for name in signature(record_decision).parameters if name not in others] == value_conditions()
    review = typer.main.get_command(app).commands["review"]
    for action in ("accept", "reject", "flag", "correct"):
        given = [option for param in review.commands[action].params for option in param.opts]
        assert set(options.values()) <= set(given), action


def test_a_condition_column_outside_the_key_is_a_config_error(tmp_path):
    text = Path(resource_path("schemas/tables.yaml")).read_text(encoding="utf-8")
    key = "  primary_key: [record_id, property, method, temperature_K, pressure_Pa]\n"
    assert key in text
    broken = tmp_path / "tables.yaml"
    broken.write_text(text.replace(key, key.replace(", pressure_Pa", "")), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"condition columns not in the primary key: \['pressure_Pa'\]"):
        load_tables(broken)


def test_unknown_table_is_a_config_error():
    with pytest.raises(ConfigError, match="no canonical table"):
        table_spec("samples")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("GGA/GGA+U/r2SCAN (mixed)", "PBE(+U)/r2SCAN mixed"),  # MP's label
        ("PBE (GGA/GGA+U)", "PBE(+U)"),  # OQMD's, as it was stored before the vocabulary
        ("pbe", "PBE"),
        ("  GGA+U ", "PBE+U"),
        ("PBE + U", "PBE+U"),  # spaces aside
        ("pbe (+u)", "PBE(+U)"),
        ("R2SCAN+U", "r2SCAN+U"),  # a declared functional with '+U'
        ("PBE_SOL", "PBEsol"),  # NOMAD's libxc name
        ("pbe+u (ael,vrh)", "PBE+U (AEL, VRH)"),  # a method with a declared qualifier
        ("PAW_GGA (AGL)", "PW91 (AGL)"),
        ("PBE(+U) (AGL)", "PBE(+U) (AGL)"),
        ("PBE (AEL, VRH) (AGL)", "PBE (AEL, VRH) (AGL)"),  # a qualified method is qualified no further
        ("UV-vis (Tauc)", "UV-vis (Tauc)"),  # no declared qualifier
        ("UV-vis Tauc plot", "UV-vis Tauc plot"),  # a lab's technique, as given
        (None, None),
    ],
)
def test_a_method_is_stored_under_its_vocabulary_name(given, stored):
    assert canonical_method(given) == stored


def test_a_functional_selects_its_qualified_methods_and_their_old_labels_and_nothing_else():
    selected = set(load_methods().selected_by(["pbe"]))  # folded, as the query compares stored methods
    assert {"pbe", "pbe(ael,vrh)", "pbe(agl)", "ael(pbeelasticconstants,vrhaverage)", "paw_pbe"} <= selected
    assert not {"pbe+u", "pbe(+u)", "gga+u", "pw91"} & selected
    assert {"optb88vdw(voigt)", "hse06", "hse"} <= set(load_methods().selected_by(["OptB88vdW", "HSE"]))


def test_a_method_selects_itself_with_each_qualifier():
    selected = set(load_methods().selected_by(["GGA+U"]))
    assert {"pbe+u", "pbe+u(ael,vrh)", "pbe+u(agl)"} <= selected and not {"pbe(agl)", "pbe"} & selected
    assert {"pw91(agl)", "pw91(ael,vrh)"} <= set(load_methods().selected_by(["PAW_GGA"]))
    assert load_methods().selected_by(["PW91 (AGL)"]) == ["pw91(agl)"]
    assert [load_methods().names_a_functional(name) for name in ("PW91 (AGL)", "DFT (AGL)", "Foo (AGL)")] == [
        True,
        False,
        False,
    ]


@pytest.mark.parametrize("source", ["aflow", "janaf", "jarvis", "mp", "nomad", "optimade", "oqmd"])
def test_every_method_a_field_map_names_is_a_vocabulary_name(source):
    field_map = load_field_map(source)
    named = {field_map.method, *(spec.method for spec in field_map.fields.values())} - {None}
    assert named and named <= load_methods().root.keys()
    qualifiers = {spec.method_qualifier for spec in field_map.fields.values()} - {None}
    assert qualifiers <= set(load_methods().qualifiers)


def edited_copy(resource: str, edit: tuple[str, str], tmp_path: Path) -> Path:
    """A copy of one of matreg's declarative files with the first `edit[0]` replaced by `edit[1]`."""
    text = Path(resource_path(resource)).read_text(encoding="utf-8")
    assert edit[0] in text
    copy = tmp_path / Path(resource).name
    copy.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    return copy


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("method_qualifier: AGL}", "method_qualifier: QHA}"), "'QHA' is not a qualifier of the method vocabulary"),
        (("method_qualifier: AGL}", "method_qualifier: AGL, method: PBE}"), "give no 'method' or 'provenance'"),
    ],
)
def test_a_method_qualifier_is_declared_and_qualifies_the_records_method(tmp_path, edit, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_field_map("aflow", edited_copy("connectors/aflow.yaml", edit, tmp_path))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("functional: PBE\n", "functional: PBE-D3\n"), "functional 'PBE-D3' is not a method of the vocabulary"),
        (("aliases: [PBE_SOL,", "aliases: [pbe,"), "'pbe' names two methods: PBE and PBEsol"),
        (("qualifier: AGL\n", "qualifier: QHA\n"), "PBE (AGL): a method with qualifier 'QHA' is named 'PBE (QHA)'"),
    ],
)
def test_a_broken_method_vocabulary_is_a_config_error(tmp_path, edit, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_methods(edited_copy("schemas/methods.yaml", edit, tmp_path))


def test_docs_list_every_method_with_its_aliases():
    docs = schema_markdown(schema_extensions()).split("## Method vocabulary")[1]
    assert all(f"| `{name}` |" in docs for name in load_methods().root)
    assert "| `TBmBJ` | TBmBJ | `mBJ`, `TB09`, `LDA_C_PW+MGGA_X_TB09` |" in docs


def test_the_readmes_copies_of_the_schema_say_what_it_declares():
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())
    *others, last = provenances()
    assert f"`provenance` ({', '.join(others)} or {last}) is the file's values'" in readme
    assert f"flags each value **{', '.join(others)} or {last}**".casefold() in readme.casefold()
    shipped = sorted(path.stem for path in resource_path(EXTENSIONS).glob("*.yaml"))
    for name in shipped:  # each extension matreg ships, with its columns
        columns = [_as_the_readme_lists(column, spec) for column, spec in load_extension(name).columns.items()]
        assert f"`{name}`: {', '.join(columns[:-1])} and {columns[-1]}." in readme


def _as_the_readme_lists(name: str, column: ColumnSpec) -> str:
    """An extension's column as the README lists it: 'synthesis_route (solid-state, sol-gel, ...)',
    'measurement_temperature_K (>= 0)', 'instrument'."""
    if column.isin:
        return f"{name} ({', '.join(column.isin)})"
    return name if column.min is None else f"{name} (>= {column.min:g})"


def test_the_actions_a_steward_records_are_those_the_curation_log_declares():
    assert list(ACTIONS) == table_spec("curation_log").columns["action"].isin


def test_an_extension_column_of_a_list_is_refused(tmp_path, monkeypatch):
    (tmp_path / "schemas" / "extensions").mkdir(parents=True)
    tags = 'description: "Tags."\ncolumns:\n  tags: {type: list<string>, description: "Tags."}\n'
    (tmp_path / "schemas" / "extensions" / "tags.yaml").write_text(tags, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    stored = "string, float64, int64, bool, timestamp"
    with pytest.raises(ConfigError, match=re.escape(f"extensions take the types record_attributes stores ({stored})")):
        load_extension("tags")


HALL_MOBILITY = "hall_mobility:\n  description: Hall mobility\n  unit: cm**2/(V*s)\n  bounds: [0, 1.0e+6]\n"


def _project_properties(folder: Path, text: str) -> Path:
    (folder / "schemas").mkdir(parents=True, exist_ok=True)
    path = folder / "schemas" / "properties.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_projects_properties_are_checked_in_its_working_directory_only(tmp_path, monkeypatch):
    _project_properties(tmp_path / "project", HALL_MOBILITY)
    row = _property_row(property="hall_mobility", unit="cm**2/(V*s)", value=1400.0)
    monkeypatch.chdir(tmp_path / "project")
    assert list(load_vocabulary().root)[-1] == "hall_mobility" and "band_gap" in load_vocabulary().root
    assert len(validate_table("properties", row)) == 1
    with pytest.raises(ValidationError, match="bounds"):
        validate_table("properties", _property_row(property="hall_mobility", unit="cm**2/(V*s)", value=-1.0))
    monkeypatch.chdir(tmp_path)
    assert "hall_mobility" not in load_vocabulary().root
    with pytest.raises(ValidationError, match="isin"):
        validate_table("properties", row)


def test_a_copy_of_matregs_vocabulary_with_a_property_more_adds_that_property(tmp_path, monkeypatch):
    # a copy of another version's file: its descriptions and aliases may differ from this one's, not units or bounds
    bundled = resource_path("schemas/properties.yaml").read_text(encoding="utf-8")
    bundled = bundled.replace("description: Electronic band gap", "description: Band gap", 1).replace(", bandgap]", "]")
    assert "description: Band gap" in bundled and ", bandgap]" not in bundled
    _project_properties(tmp_path, bundled + HALL_MOBILITY)
    monkeypatch.chdir(tmp_path)
    assert list(load_vocabulary().root) == [
        *load_vocabulary(resource_path("schemas/properties.yaml")).root,
        "hall_mobility",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "band_gap:\n  description: my gap\n  unit: meV\n  bounds: [0, 50000]\n",
            r"band_gap is matreg's property, in another unit or bounds there: .* cannot redefine",
        ),
        (
            "entropy:\n  description: S\n  unit: J/(mol*K)\n  bounds: [0, 5000]\n  ion_bounds: [-1000, 5000]\n",
            r"entropy is matreg's property, in another unit or bounds there",
        ),
        (HALL_MOBILITY + "  aliases: {lab: [Eg]}\n", r"'Eg' names a property of matreg's already"),
        ("eg:\n  description: d\n  unit: eV\n  bounds: [0, 1]\n", r"'eg' names a property of matreg's already"),
        (
            "seebeck-coefficient:\n  description: S\n  unit: V/K\n  bounds: [-1, 1]\n",
            r"line 1: seebeck-coefficient: String should match pattern",  # the key's line, not pydantic's '[key]'
        ),
        (
            "formula:\n  description: d\n  unit: eV\n  bounds: [0, 1]\n",
            r"line 1: \(top level\): .*formula: a column of",
        ),
        (
            HALL_MOBILITY + HALL_MOBILITY.replace("hall_mobility:", "hall_mobility_uncertainty:"),
            r"line 1: \(top level\): .*hall_mobility_uncertainty: the column of hall_mobility's uncertainties",
        ),
        (  # a wide export's column of what curation says of each value of hall_mobility
            HALL_MOBILITY + HALL_MOBILITY.replace("hall_mobility:", "hall_mobility_flags:"),
            r"line 1: \(top level\): .*hall_mobility_flags: the column of hall_mobility's 'flags', which wide exports",
        ),
        (  # a median's merged records of band_gap
            "band_gap_records:\n  description: d\n  unit: eV\n  bounds: [0, 1]\n",
            r"band_gap_records: the column of band_gap's 'records', which wide exports have beside its values",
        ),
        (  # properties_wide's column of band_gap's uncertainties
            "band_gap_uncertainty:\n  description: d\n  unit: eV\n  bounds: [0, 1]\n",
            r"band_gap_uncertainty: the column of band_gap's uncertainties, which properties_wide and wide exports",
        ),
    ],
)
def test_a_project_property_cannot_change_what_matregs_names_mean(tmp_path, monkeypatch, text, message):
    path = _project_properties(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: {message}"):
        load_vocabulary()


def test_a_copy_of_an_earlier_vocabulary_without_ion_bounds_is_read_as_matregs(tmp_path, monkeypatch):
    entropy = "entropy:\n  description: Standard molar entropy\n  unit: J/(mol*K)\n  bounds: [0, 5000]\n"
    _project_properties(tmp_path, entropy + HALL_MOBILITY)
    monkeypatch.chdir(tmp_path)
    assert load_vocabulary().root["entropy"].ion_bounds == (-5000, 5000)  # matreg's entry, as this version has it


@pytest.mark.parametrize(("bounds", "read"), [("[0.0001, 30]", True), ("[0.0001, 40]", False)])
def test_a_copy_of_an_earlier_vocabulary_with_its_bounds_then_is_read_as_matregs(tmp_path, monkeypatch, bounds, read):
    density = f"density:\n  description: Mass density.\n  unit: g/cm**3\n  bounds: {bounds}\n"  # before 2026-12
    path = _project_properties(tmp_path, density + HALL_MOBILITY)
    monkeypatch.chdir(tmp_path)
    if read:
        assert load_vocabulary().root["density"].bounds == (1e-9, 100)  # matreg's entry, as this version has it
    else:
        with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: density is matreg's property, in another"):
            load_vocabulary()


def test_the_checks_of_one_process_follow_the_vocabulary_of_its_working_directory(tmp_path, monkeypatch):
    # two projects measure hall_mobility in other units and bounds: a notebook moving between them checks each's
    _project_properties(tmp_path / "cm", HALL_MOBILITY)
    _project_properties(tmp_path / "m", HALL_MOBILITY.replace("cm**2/(V*s)", "m**2/(V*s)").replace("1.0e+6", "100"))
    row = _property_row(property="hall_mobility", unit="cm**2/(V*s)", value=8500.0)
    monkeypatch.chdir(tmp_path / "cm")
    assert len(validate_table("properties", row)) == 1
    monkeypatch.chdir(tmp_path / "m")
    with pytest.raises(ValidationError, match="canonical unit"):
        validate_table("properties", row)


# A schema changed as a later version of matreg might change it: a provenance more, a condition more of each value
# (the magnetic field), a table more, and record_attributes storing no times (`schema_variant`)
VARIANT_EDITS = (
    ("[experimental, dft, simulated]", "[experimental, dft, simulated, ml]"),
    (
        "  primary_key: [record_id, property, method, temperature_K, pressure_Pa]\n",
        "  primary_key: [record_id, property, method, temperature_K, pressure_Pa, magnetic_field_T]\n",
    ),
    (
        '    source: {type: string, description: "Catalog name of the source."}\n',
        '    magnetic_field_T: {type: float64, nullable: true, min: 0, condition: true, description: "Field (T)."}\n'
        '    source: {type: string, description: "Catalog name of the source."}\n',
    ),
    ("isin: [string, float64, int64, bool, timestamp]", "isin: [string, float64, int64, bool]"),
)
SAMPLES = (
    '\nsamples:\n  description: "Samples."\n  primary_key: [sample_id]\n'
    '  columns:\n    sample_id: {type: string, description: "Id."}\n'
)


@pytest.fixture(scope="module")
def schema_variant(tmp_path_factory) -> Path:
    """matreg laid out as its wheel installs it (its declarative files in matreg/_data), with `VARIANT_EDITS` and the
    table `SAMPLES` made to its schemas/tables.yaml: what is derived from the schema follows them."""
    root = tmp_path_factory.mktemp("variant")
    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "matreg", root / "matreg", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("schemas", "connectors"):
        shutil.copytree(repo / name, root / "matreg" / "_data" / name)
    shutil.copy(repo / "catalog.yaml", root / "matreg" / "_data" / "catalog.yaml")
    tables = root / "matreg" / "_data" / "schemas" / "tables.yaml"
    text = tables.read_text(encoding="utf-8")
    for old, new in VARIANT_EDITS:
        assert old in text
        text = text.replace(old, new)  # (the provenance vocabulary: wherever it is given)
    tables.write_text(text + SAMPLES, encoding="utf-8")
    (root / "project").mkdir()
    return root


def in_variant(root: Path, code: str) -> str:
    """What `code` prints, run by Python with matreg of `schema_variant` (from its empty project folder)."""
    ran = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=root / "project",
        capture_output=True,
        timeout=120,
        **utf8_child({"PYTHONPATH": str(root)}),
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def test_a_provenance_the_schema_adds_is_one_that_catalogs_and_field_maps_name(schema_variant):
    shown = in_variant(
        schema_variant,
        """
        import pydantic
        from matreg.catalog import Source
        from matreg.fieldmap import FieldSpec
        source = Source(title="t", connector="janaf", base_url="https://x", provenance="ml", license="l", citation="c")
        print(source.provenance, FieldSpec(property="band_gap", unit="eV", provenance="ml").provenance)
        try:
            FieldSpec(property="band_gap", unit="eV", provenance="computed")
        except pydantic.ValidationError as error:
            print(error.errors()[0]["msg"])
        """,
    )
    assert shown.splitlines() == ["ml ml", "Input should be 'experimental', 'dft', 'simulated' or 'ml'"]


def test_the_views_matreg_schema_lists_follow_the_tables_and_conditions_declared(schema_variant):
    described = in_variant(schema_variant, "from matreg.cli import app; app(['schema'])").split("## Views")[1]
    tables = "`materials`, `properties`, `fetch_runs`, `record_attributes`, `quarantine`, `curation_log`, `samples`"
    assert f"* Each table's view ({tables}) shows its current rows" in described
    key = "`record_id`, `source`, `formula`, `formula_original`, `provenance`, `method`, `temperature_K`, `pressure_Pa`"
    wide = f"* `properties_wide`: One row per record, provenance, method and conditions ({key}, `magnetic_field_T`)"
    assert wide in described


def test_properties_wide_and_the_long_export_keep_the_values_at_each_condition_declared(schema_variant):
    shown = in_variant(
        schema_variant,
        """
        import duckdb
        from matreg.catalog import Dataset
        from matreg.export import dataset_query
        from matreg.schema import arrow_table
        from matreg.store.sql import view_definitions
        gap = dict(record_id="x:1", property="band_gap", unit="eV", provenance="experimental", run_id="r1")
        material = dict(record_id="x:1", source="x", source_id="1", formula="Si", formula_original="Si", run_id="r1")
        con = duckdb.connect()
        tables = {
            "materials": [material],
            "properties": [gap | dict(value=1.1, magnetic_field_T=0.0), gap | dict(value=1.3, magnetic_field_T=9.0)],
            "curation_log": [],
            "quarantine": [],
        }
        for name, rows in tables.items():
            con.register(name, arrow_table(name, rows))
        con.register("material_writes", arrow_table("materials", [material]))
        wide = f"SELECT magnetic_field_T, band_gap FROM ({view_definitions()['properties_wide']}) ORDER BY ALL"
        print(con.sql(wide).fetchall())
        sql, params = dataset_query(Dataset(description="d", version="1.0.0", properties=["band_gap"]))
        print(con.sql(f"SELECT magnetic_field_T, value FROM ({sql})", params=params).fetchall())
        """,
    )
    assert shown.splitlines() == ["[(0.0, 1.1), (9.0, 1.3)]"] * 2


def test_wide_exports_and_conflicts_keep_apart_the_values_at_each_condition_declared(schema_variant):
    shown = in_variant(
        schema_variant,
        """
        import pandas as pd
        from matreg.curate.conflicts import conflicts_among
        from matreg.export import to_wide
        gap = dict(record_id="x:1", source="x", formula="Si", formula_original="Si", name=None, phase=None,
                   property="band_gap", unit="eV", provenance="experimental", method=None, temperature_K=None,
                   pressure_Pa=None)
        long = pd.DataFrame([gap | dict(value=1.1, magnetic_field_T=0.0), gap | dict(value=1.3, magnetic_field_T=9.0)])
        print(to_wide(long, ["band_gap"])[["magnetic_field_T", "band_gap"]].values.tolist())
        groups = pd.DataFrame({"record_id": ["x:1", "x:2"], "group_id": "g", "formula_unit": "Si", "unit_atoms": 1.0})
        measured = pd.concat([long, long.assign(record_id="x:2", value=long["value"] + 1.0)], ignore_index=True)
        conflicts = conflicts_among(measured, groups)[["magnetic_field_T", "record_id", "value"]]
        print(sorted(conflicts.values.tolist()))
        """,
    )
    assert shown.splitlines() == [
        "[[0.0, 1.1], [9.0, 1.3]]",
        "[[0.0, 'x:1', 1.1], [0.0, 'x:2', 2.1], [9.0, 'x:1', 1.3], [9.0, 'x:2', 2.3]]",
    ]


def test_an_extension_column_takes_only_a_type_that_record_attributes_stores(schema_variant):
    extensions = schema_variant / "project" / "schemas" / "extensions"
    extensions.mkdir(parents=True)
    furnace = 'description: "Furnace runs."\ncolumns:\n  fired_at: {type: timestamp, description: "When."}\n'
    (extensions / "furnace.yaml").write_text(furnace, encoding="utf-8")
    shown = in_variant(
        schema_variant,
        """
        from matreg.errors import ConfigError
        from matreg.schema import load_extension
        try:
            print(load_extension("furnace").columns)
        except ConfigError as error:
            print(str(error).splitlines()[-1])
        """,
    )
    assert shown.strip().endswith(
        "column 'fired_at': extensions take the types record_attributes stores (string, float64, int64, bool), no "
        "unique or vocabulary"
    )


def test_the_warning_of_values_at_several_conditions_names_each_condition_declared(schema_variant):
    # the words of a condition were written by hand for temperature_K and pressure_Pa: another was a KeyError
    shown = in_variant(
        schema_variant,
        """
        from matreg.ml.dataset import provenance_warning
        unstated = {"(none)": 3}
        conditions = {"temperature_K": unstated, "pressure_Pa": unstated, "magnetic_field_T": {"0": 2, "9": 1}}
        split = {"method": "random"}
        print(provenance_warning(dict(target={}, provenance={"experimental": 3}, split=split, conditions=conditions)))
        """,
    )
    assert shown.splitlines() == [
        "warning: the target's values are at several magnetic fields (2 at 0 T, 1 at 9 T), which the features do not "
        "see (one compound at two magnetic fields is one input with two targets); a catalog dataset cannot select one "
        "(magnetic_field_T is no key of it)"
    ]
