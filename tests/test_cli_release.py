"""`matreg release`, `matreg diff` and `matreg export --release` end to end on the JANAF replay and the lab file."""

import csv
import json
import shutil
import subprocess
import sys

import pytest
from conftest import LAB_EXAMPLE, cli_import, utf8_child
from typer.testing import CliRunner

from matreg.cli import app

runner = CliRunner()


def test_release_diff_and_export_of_a_release(filled, tmp_path):
    result = filled("release", "gaps")  # the catalog's version, 0.1.0
    assert result.exit_code == 0, result.output
    assert "gaps 0.1.0: 30 rows (30 records)" in result.stdout and "content sha256 " in result.stdout
    assert (
        filled(
            "review", "correct", "demo-lab-bandgaps:roost-5", "-p", "band_gap", "--value", "3.37", "--reason", "r"
        ).exit_code
        == 0
    )
    assert filled("release", "gaps", "--version", "0.2.0").exit_code == 0
    table = filled("diff", "gaps", "0.1.0", "0.2.0")
    assert table.exit_code == 0 and "value changed: 1 (2 fields)" in table.stdout and "None" not in table.stdout
    changes = json.loads(filled("diff", "gaps", "0.1.0", "0.2.0", "--format", "json").stdout)
    assert {(c["field"], c["old"], c["new"]) for c in changes} == {("value", 3.44, 3.37), ("reviewed", False, True)}
    out = tmp_path / "gaps.csv"
    result = filled("export", "gaps", "--release", "0.1.0", "--format", "csv", "--out", str(out))
    assert result.exit_code == 0 and "3.44" in out.read_text() and "3.37" not in out.read_text()


def test_a_diff_sums_up_a_new_database_version_in_one_line_and_keeps_a_changed_value_whole(filled, catalog_path):
    assert filled("release", "thermo").exit_code == 0  # 0.1.0: H-064 and C-095 from the 4th edition
    catalog_path.write_text(catalog_path.read_text().replace("'4th edition (1998)'", "'5th edition'"))
    assert filled("fetch", "janaf", "H-064", "C-095", "--no-progress", "--no-cache").exit_code == 0
    correct = ("review", "correct", "janaf:C-095", "-p", "entropy", "--value", "214", "--reason", "r")
    assert filled(*correct).exit_code == 0
    assert filled("release", "thermo", "--version", "0.2.0").exit_code == 0
    table = filled("diff", "thermo", "0.1.0", "0.2.0")
    summary = "value changed: 1 (3 fields), database version changed: 3 values"
    assert table.exit_code == 0 and table.stdout.rstrip().endswith("\n\n" + summary), table.stdout
    changes = json.loads(filled("diff", "thermo", "0.1.0", "0.2.0", "--format", "json").stdout)
    version = ["database_version", "4th edition (1998)", "5th edition"]
    columns = ["change", "source", "record_id", "field", "old", "new", "values"]
    assert [[change[column] for column in columns] for change in changes] == [
        ["value changed", "janaf", "janaf:C-095", "database_version", *version[1:], None],
        ["value changed", "janaf", "janaf:C-095", "reviewed", False, True, None],
        ["value changed", "janaf", "janaf:C-095", "value", 213.795, 214.0, None],
        ["database version changed", "janaf", None, *version, 3],
    ]


def test_a_released_version_is_refused_with_a_one_line_error(filled):
    assert filled("release", "gaps", "--version", "1.0.0").exit_code == 0
    result = filled("release", "gaps", "--version", "1.0.0")
    assert result.exit_code == 1 and "never overwritten" in result.stderr and result.stderr.count("\n") == 1
    unknown = filled("diff", "gaps", "1.0.0", "9.9.9")
    assert unknown.exit_code == 2 and "no release 9.9.9 of 'gaps'" in unknown.stderr


@pytest.mark.parametrize(
    "command",
    [
        ("export", "../x", "--release", "1.0.0", "--out", "x.csv"),
        ("diff", "Bad!Name", "1.0.0", "1.0.1"),
        ("release", "../x", "--version", "1.0.0"),
    ],
    ids=["export", "diff", "release"],
)
def test_an_invalid_dataset_name_is_a_command_that_can_never_work(filled, command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = filled(*command)
    assert result.exit_code == 2 and result.stderr == f"error: invalid dataset name '{command[1]}'\n"


def test_a_release_whose_payload_is_missing_is_reported_damaged_not_unknown(filled, tmp_path):
    assert filled("release", "thermo", "--version", "1.0.0").exit_code == 0
    payload = tmp_path / "store" / "releases" / "thermo" / "1.0.0" / "payload.parquet"
    payload.unlink()  # a damaged copy of the store, a partial rsync
    result = filled("export", "thermo", "--release", "1.0.0", "--out", str(tmp_path / "o.csv"))
    assert result.exit_code == 1  # (the store's data, not the command: 2 would say the command can never work)
    assert result.stderr == f"error: release 1.0.0 of 'thermo' is damaged: its file {payload} is missing\n"
    assert not (tmp_path / "o.csv").exists()


def test_a_diff_of_a_release_whose_materials_file_is_missing_reports_it_damaged(filled, tmp_path):
    """Its manifest names the file (an older matreg's release, which recorded none, names none and is compared without
    it): the release is damaged, as one whose payload is missing."""
    for version in ("1.0.0", "1.1.0"):
        assert filled("release", "thermo", "--version", version).exit_code == 0
    materials = tmp_path / "store" / "releases" / "thermo" / "1.0.0" / "materials.parquet"
    materials.unlink()  # a damaged copy of the store, a partial rsync
    result = filled("diff", "thermo", "1.0.0", "1.1.0")
    assert result.exit_code == 1 and "older matreg" not in result.output
    assert result.stderr == f"error: release 1.0.0 of 'thermo' is damaged: its file {materials} is missing\n"


@pytest.mark.parametrize("command", ["release", "diff"])
def test_release_commands_have_help(command):
    assert runner.invoke(app, [command, "--help"]).exit_code == 0


@pytest.mark.parametrize("name", ["x.parquet", "x.csv"])  # the payload copied, and a file written from it
def test_an_export_of_a_release_with_a_folder_at_its_sidecar_writes_nothing(filled, tmp_path, name):
    assert filled("release", "gaps").exit_code == 0
    (tmp_path / "out" / f"{name}.meta.json").mkdir(parents=True)
    result = filled("export", "gaps", "--release", "0.1.0", "--out", str(tmp_path / "out" / name))
    assert result.exit_code == 1 and "a folder of that name is there" in result.stderr
    assert [path.name for path in (tmp_path / "out").iterdir()] == [f"{name}.meta.json"]  # no data or temp file


def add_dataset(catalog_path, name: str, *fields: str) -> None:
    """Add to the catalog dataset `name` (description d, version 0.1.0) with `fields`, YAML lines ('sources: [x]')."""
    lines = ["description: d", "version: 0.1.0", *fields]
    catalog_path.write_text(
        catalog_path.read_text(encoding="utf-8") + f"  {name}:\n" + "".join(f"    {line}\n" for line in lines),
        encoding="utf-8",
    )


def add_prefer_dataset(catalog_path, prefer: str) -> None:
    """Add to the catalog the band-gap dataset 'gaps-prefer', resolved by strategy prefer in the order `prefer`."""
    add_dataset(
        catalog_path, "gaps-prefer", "properties: [band_gap]", f"resolve: {{strategy: prefer, prefer: [{prefer}]}}"
    )


def test_release_and_export_warn_of_prefer_entries_that_match_no_value(filled, catalog_path, tmp_path):
    add_prefer_dataset(catalog_path, "experimental, r2SCAN, PBE+U, PBE")
    warning = (
        "warning: dataset 'gaps-prefer': prefer: r2SCAN, PBE+U, PBE match no provenance or method of the dataset's "
        "values and rank nothing (provenances: experimental; methods: optical absorption / transport (compiled))\n"
    )
    result = filled("release", "gaps-prefer")
    assert result.exit_code == 0 and result.stderr == warning and "gaps-prefer 0.1.0: 30 rows" in result.stdout
    result = filled("export", "gaps-prefer", "--out", str(tmp_path / "gaps.csv"))
    assert result.exit_code == 0 and result.stderr == warning


def test_an_export_says_how_many_values_prefer_left_out_and_its_sidecar_records_it(filled, catalog_path, tmp_path):
    add_prefer_dataset(catalog_path, "experimental, PBE")
    dft = "id,formula,gap\nd1,CuBr,2.0\nd2,ZnO,1.1\nd3,GaN,1.7\n"  # CuBr and ZnO were measured, GaN was not
    mapping = "dataset: dft-lab\nformula_column: formula\nid_column: id\nprovenance: dft\nmethod: PBE\ncitation: c\n"
    assert cli_import(filled, tmp_path, "dft-lab", dft, mapping + "columns:\n  gap: {unit: eV}\n").exit_code == 0
    out = tmp_path / "gaps.csv"
    result = filled("export", "gaps-prefer", "--out", str(out))
    assert result.exit_code == 0 and "gaps-prefer (the store now, unreleased): 31 rows" in result.stdout
    assert result.stderr == (
        "note: prefer [experimental, PBE] left out 2 of 33 curated values, in 2 group(s) that have values of a "
        "better-ranked provenance or method (`prefer` in the sidecar or meta.json records it)\n"
    )
    sidecar = out.with_name("gaps.csv.meta.json")
    counts = {"order": ["experimental", "PBE"], "curated_values": 33, "left_out": 2, "left_out_groups": 2}
    assert json.loads(sidecar.read_text())["prefer"] == counts
    result = filled("export", "gaps-prefer", "--format", "torch", "--out", str(tmp_path / "torch"))
    assert result.exit_code == 0 and "note: prefer [experimental, PBE] left out 2 of 33 curated values" in result.stderr
    assert json.loads((tmp_path / "torch" / "meta.json").read_text())["prefer"] == counts
    result = filled("export", "gaps", "--out", str(out))  # keep_all: nothing left out, nothing said
    assert result.exit_code == 0 and result.stderr == "" and "prefer" not in json.loads(sidecar.read_text())


def test_the_sidecar_of_a_release_has_a_store_exports_keys_and_contents(filled, tmp_path):
    assert filled("release", "gaps").exit_code == 0  # the store as it is now, released as 0.1.0
    sidecars = {}
    for name, release in (("store", []), ("release", ["--release", "0.1.0"])):
        out = tmp_path / name / "gaps.csv"
        assert filled("export", "gaps", *release, "--out", str(out)).exit_code == 0
        sidecars[name] = json.loads(out.with_name("gaps.csv.meta.json").read_text())
    store, released = sidecars["store"], sidecars["release"]
    assert set(store) - set(released) == {"exported_at"}  # a release's sidecar is the same bytes every time
    assert set(released) - set(store) == {"content_sha256"}
    same = ["dataset", "version", "description", "file", "format", "layout", "rows", "records", "units", "provenance"]
    assert [released[key] for key in same] == [store[key] for key in same]
    assert released["provenance"] == ["experimental"] and released["rows"] == 30
    assert (store["released"], released["released"]) == (False, True)
    assert released["licenses"] == store["licenses"] == sorted({entry["license"] for entry in store["sources"]})
    cited = {(source, citation) for source, entry in released["sources"].items() for citation in entry["citations"]}
    assert cited == {(entry["source"], entry["citation"]) for entry in store["sources"]}


GAPS_WITH_UNITS = (  # a file whose every row holds one value, the band gap at 300 K, in the unit its row names
    "formula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
    "  gap: {property: band_gap, unit_field: unit, temperature_K: 300}\n"
)


def test_a_release_warns_of_a_stale_readmit_of_its_selection_whose_record_has_no_value_left(run, tmp_path):
    for name, provenance in (("lab", "experimental"), ("dft-lab", "dft")):  # the dataset 'gaps' selects 'lab' only
        mapping = f"dataset: {name}\nprovenance: {provenance}\n{GAPS_WITH_UNITS}"
        csv_text = "id,formula,gap,unit\nK-1,ZnO,3.3,eV\nK-2,GaN,3.4,elektronvolt\n"
        assert cli_import(run, tmp_path, name, csv_text, mapping).exit_code == 0
        opened = f"SELECT quarantine_id FROM open_quarantine WHERE source = '{name}'"
        (bad_unit,) = json.loads(run("sql", opened, "--format", "json").stdout)
        readmit = ("review", "readmit", bad_unit["quarantine_id"], "--unit", "eV", "--reason", "'elektronvolt' is eV")
        assert run(*readmit).exit_code == 0
        remeasured = cli_import(run, tmp_path, name, csv_text.replace("3.4,", "3.5,"), mapping)
        assert remeasured.exit_code == 0 and f"(readmit {name}:K-2 band_gap at 300.0 K)" in remeasured.stderr
    entry = json.loads(run("sql", "SELECT min(entry_id) AS e FROM curation_log", "--format", "json").stdout)[0]["e"]
    why = "made on 3.4 elektronvolt as received, which a later read of the record no longer gives"
    result = run("release", "gaps", "--version", "1.0.0")
    assert result.exit_code == 0 and "gaps 1.0.0: 1 rows (1 records)" in result.stdout  # lab:K-1
    assert result.stderr == (
        f"warning: review decision {entry} (readmit lab:K-2 band_gap at 300.0 K): {why}: the readmitted value is not "
        "shown; decide again with `matreg review`\n"
    )


LAB_METHOD = "optical absorption / transport (compiled)"  # examples/lab/mapping.yaml's


def test_exports_and_releases_warn_of_each_filter_entry_that_selects_no_value(filled, catalog_path, tmp_path):
    """A steward's misspelt source, method or provenance selects nothing: each is named, with what the dataset's other
    filters select, on stderr and in the card; the values the other entries select are exported and released."""
    add_dataset(
        catalog_path,
        "gaps-typos",
        "properties: [band_gap]",
        "sources: [demo-lab-bandgaps, demo-lab-bandgapz, janaf]",  # janaf has no band gap
        "provenance: [experimental, simulated]",
        f"methods: ['{LAB_METHOD}', HSE6]",
    )
    warnings = [
        "dataset 'gaps-typos': sources: demo-lab-bandgapz, janaf select no value (of the values its other filters "
        "select, the sources are: demo-lab-bandgaps)",
        "dataset 'gaps-typos': provenance: simulated selects no value (of the values its other filters select, the "
        "provenances are: experimental)",
        f"dataset 'gaps-typos': methods: HSE6 selects no value (of the values its other filters select, the methods "
        f"are: {LAB_METHOD})",
    ]
    stderr = "".join(f"warning: {warning}\n" for warning in warnings)
    result = filled("export", "gaps-typos", "--out", str(tmp_path / "gaps.csv"))
    assert result.exit_code == 0 and "gaps-typos (the store now, unreleased): 30 rows" in result.stdout
    assert result.stderr == stderr
    result = filled("export", "gaps-typos", "--format", "torch", "--out", str(tmp_path / "torch"))
    assert result.exit_code == 0 and result.stderr.startswith(stderr)
    result = filled("release", "gaps-typos")
    assert result.exit_code == 0 and result.stderr == stderr and "gaps-typos 0.1.0: 30 rows" in result.stdout
    card = (tmp_path / "store" / "releases" / "gaps-typos" / "0.1.0" / "README.md").read_text(encoding="utf-8")
    assert all(f"\n- Warning: {warning}.\n" in card for warning in warnings)
    add_dataset(catalog_path, "gaps-all-wrong", "properties: [band_gap]", "sources: [demo-lab-bandgapz]")
    result = filled("release", "gaps-all-wrong")  # every name wrong: the one-line error, as before
    assert result.exit_code == 1 and result.stderr == (
        "error: dataset 'gaps-all-wrong' selects no values in the store (properties band_gap; sources "
        "demo-lab-bandgapz): nothing to release\n"
    )


def test_a_property_of_a_dataset_with_no_value_is_warned_of_and_the_card_says_it_has_none(
    filled, catalog_path, tmp_path
):
    """JANAF's tables are stored at 298.15 K (no --all-temperatures): no heat capacity at 300 K, the lab's band gaps
    are."""
    add_dataset(catalog_path, "gaps-cp", "properties: [band_gap, heat_capacity_cp]", "temperature_K: 300")
    warning = (
        "dataset 'gaps-cp' selects no values of heat_capacity_cp in the store (properties band_gap, heat_capacity_cp; "
        "temperature_K 300.0)"
    )
    result = filled("export", "gaps-cp", "--out", str(tmp_path / "gaps.csv"))
    assert result.exit_code == 0 and result.stderr == f"warning: {warning}\n"
    result = filled("release", "gaps-cp")
    assert result.exit_code == 0 and result.stderr == f"warning: {warning}\n"
    card = (tmp_path / "store" / "releases" / "gaps-cp" / "0.1.0" / "README.md").read_text(encoding="utf-8")
    assert "| band_gap | eV | 30 |\n| heat_capacity_cp | J/(mol*K) | 0 |" in card
    assert f"\n- Warning: {warning}.\n" in card


def test_a_torch_export_of_a_target_with_no_value_says_so_once_as_its_error(filled, catalog_path, tmp_path):
    """It printed the selection's warning of the property, then the error saying the same; a misspelt source, which
    may be why, is still warned of."""
    sources = "sources: [demo-lab-bandgaps, jnaaf]"
    add_dataset(catalog_path, "gaps-cp", "properties: [band_gap, heat_capacity_cp]", "temperature_K: 300", sources)
    out = tmp_path / "torch"
    result = filled("export", "gaps-cp", "--format", "torch", "--target", "heat_capacity_cp", "--out", str(out))
    assert result.exit_code == 1 and result.stderr == (
        "warning: dataset 'gaps-cp': sources: jnaaf selects no value (of the values its other filters select, the "
        "sources are: demo-lab-bandgaps)\n"
        "error: dataset 'gaps-cp' selects no values of heat_capacity_cp in the store (properties band_gap, "
        "heat_capacity_cp; sources demo-lab-bandgaps, jnaaf; temperature_K 300.0)\n"
    )
    assert not out.exists()
    result = filled("export", "gaps-cp", "--format", "torch", "--out", str(out))  # band_gap: the other one is warned of
    assert result.exit_code == 0 and "warning: dataset 'gaps-cp' selects no values of heat_capacity_cp" in result.stderr


def test_an_export_and_a_release_give_the_units_of_the_properties_they_have_values_of(filled, catalog_path, tmp_path):
    """Their sidecars' and the manifest's `units` listed heat_capacity_cp, of which they have no value; the
    selection's warning and the card's table (0 values) still name it."""
    add_dataset(catalog_path, "gaps-cp", "properties: [heat_capacity_cp, band_gap]", "temperature_K: 300")
    for layout in ("long", "wide"):
        out = tmp_path / f"{layout}.csv"
        assert filled("export", "gaps-cp", "--layout", layout, "--out", str(out)).exit_code == 0
        assert json.loads(out.with_name(f"{out.name}.meta.json").read_text())["units"] == {"band_gap": "eV"}
    result = filled("release", "gaps-cp")
    assert result.exit_code == 0 and "selects no values of heat_capacity_cp" in result.stderr
    release = tmp_path / "store" / "releases" / "gaps-cp" / "0.1.0"
    assert json.loads((release / "manifest.json").read_text())["content"]["units"] == {"band_gap": "eV"}
    assert "| heat_capacity_cp | J/(mol*K) | 0 |\n| band_gap | eV | 30 |" in (release / "README.md").read_text()
    out = tmp_path / "release.csv"
    assert filled("export", "gaps-cp", "--release", "0.1.0", "--out", str(out)).exit_code == 0
    assert json.loads(out.with_name("release.csv.meta.json").read_text())["units"] == {"band_gap": "eV"}


def test_a_diff_compares_the_selections_lists_as_sets_and_prefer_in_its_order(filled, catalog_path):
    """Reordering `sources: [janaf, demo-lab-bandgaps]` showed as a selection change; the order of `prefer` ranks."""
    lists = ["[janaf, demo-lab-bandgaps]", "[band_gap, entropy]", "[dft, experimental]", f"[PBE, {LAB_METHOD}]"]
    keys = ["sources", "properties", "provenance", "methods"]
    fields = [f"{key}: {listed}" for key, listed in zip(keys, lists, strict=True)]
    add_dataset(catalog_path, "mix", *fields, "resolve: {strategy: prefer, prefer: [experimental, dft]}")
    assert filled("release", "mix", "--version", "1.0.0").exit_code == 0
    catalog = catalog_path.read_text(encoding="utf-8")
    for listed in lists:  # each list the other way round
        entries = listed.strip("[]").split(", ")
        catalog = catalog.replace(listed, f"[{', '.join(reversed(entries))}]")
    catalog_path.write_text(catalog, encoding="utf-8")
    assert filled("release", "mix", "--version", "1.1.0").exit_code == 0
    same = filled("diff", "mix", "1.0.0", "1.1.0")
    assert same.exit_code == 0 and same.stdout == "no changes from 1.0.0 to 1.1.0\n", same.stdout
    catalog_path.write_text(catalog.replace("prefer: [experimental, dft]", "prefer: [dft, experimental]"))
    assert filled("release", "mix", "--version", "1.2.0").exit_code == 0
    changes = json.loads(filled("diff", "mix", "1.1.0", "1.2.0", "--format", "json").stdout)
    ranks = [["experimental", "dft"], ["dft", "experimental"]]
    assert [[change[key] for key in ("change", "field", "old", "new")] for change in changes] == [
        ["resolution changed", "resolve.prefer", *ranks]
    ]


def test_a_diff_compares_methods_by_their_names_in_the_method_vocabulary(filled, catalog_path):
    """`methods: [pbe]` and `[PBE]` select the same values, and `prefer: [hse06, pbe]` ranks as `[HSE, GGA-PBE]`, yet
    a diff showed them as changes of the selection and resolution: it compared the names as written. A lab's method
    spelt with other spaces selects the same values too (the selection compares methods without spaces)."""
    methods, prefer = f"methods: [pbe, '{LAB_METHOD}']", "prefer: [hse06, pbe, experimental]"
    add_dataset(catalog_path, "named", "properties: [band_gap]", methods, f"resolve: {{strategy: prefer, {prefer}}}")
    assert filled("release", "named", "--version", "1.0.0").exit_code == 0
    catalog = catalog_path.read_text(encoding="utf-8")
    spaced = LAB_METHOD.upper().replace(" ", "  ")
    catalog = catalog.replace(methods, f"methods: [PBE, '{spaced}']")
    catalog_path.write_text(catalog.replace(prefer, "prefer: [HSE, GGA-PBE, Experimental]"), encoding="utf-8")
    assert filled("release", "named", "--version", "1.1.0").exit_code == 0
    same = filled("diff", "named", "1.0.0", "1.1.0")
    assert same.exit_code == 0 and same.stdout == "no changes from 1.0.0 to 1.1.0\n", same.stdout
    catalog_path.write_text(catalog.replace(prefer, "prefer: [pbe, hse06, experimental]"), encoding="utf-8")
    assert filled("release", "named", "--version", "1.2.0").exit_code == 0
    changes = json.loads(filled("diff", "named", "1.1.0", "1.2.0", "--format", "json").stdout)
    ranks = [["HSE", "GGA-PBE", "Experimental"], ["pbe", "hse06", "experimental"]]  # as the catalogs wrote them
    assert [[change[key] for key in ("change", "field", "old", "new")] for change in changes] == [
        ["resolution changed", "resolve.prefer", *ranks]
    ]


def test_a_diff_says_first_which_keys_of_the_selection_and_resolution_changed(filled, catalog_path):
    assert filled("release", "gaps", "--version", "1.0.0").exit_code == 0
    catalog = catalog_path.read_text(encoding="utf-8")
    changed = catalog.replace(
        "    provenance: [experimental]\n",
        "    provenance: [experimental]\n    temperature_K: 300\n    resolve: {strategy: median}\n",
    )
    catalog_path.write_text(changed, encoding="utf-8")
    assert filled("release", "gaps", "--version", "1.1.0").exit_code == 0
    lines = [
        ["selection changed", "temperature_K", None, 300.0],
        ["resolution changed", "resolve.strategy", "keep_all", "median"],
    ]
    changes = json.loads(filled("diff", "gaps", "1.0.0", "1.1.0", "--format", "json").stdout)
    assert [[change[key] for key in ("change", "field", "old", "new")] for change in changes[:2]] == lines
    assert {change["change"] for change in changes[2:]} <= {"record added", "record removed", "value changed"}
    csv_lines = filled("diff", "gaps", "1.0.0", "1.1.0", "--format", "csv").stdout.splitlines()
    assert csv_lines[1].startswith("selection changed,") and ",temperature_K,,300.0," in csv_lines[1]
    assert csv_lines[2].startswith("resolution changed,") and ",resolve.strategy,keep_all,median," in csv_lines[2]
    table = filled("diff", "gaps", "1.0.0", "1.1.0")
    rows = [row.lstrip() for row in table.stdout.splitlines()]  # (a table's columns are right-aligned)
    assert rows[0].startswith("change ") and rows[1].startswith("selection changed ")
    assert rows[2].startswith("resolution changed ") and "temperature_K" in rows[1] and "median" in rows[2]
    assert table.stdout.rstrip().splitlines()[-1].startswith("selection changed: 1, resolution changed: 1, ")
    same = filled("diff", "gaps", "1.1.0", "1.1.0")
    assert same.exit_code == 0 and same.stdout == "no changes from 1.1.0 to 1.1.0\n"


def test_a_catalog_version_no_release_can_have_stops_only_a_release_that_takes_it(run, catalog_path, tmp_path):
    """Refused as the catalog loaded (this session's first rule), 'version: 2024.03.1' stopped every command."""
    text = catalog_path.read_text(encoding="utf-8")
    assert text.count("version: 0.1.0\n") == 2
    catalog_path.write_text(text.replace("version: 0.1.0\n", "version: '2024.03.1'\n"), encoding="utf-8")
    assert run("fetch", "janaf", "H-064", "--no-progress").exit_code == 0
    assert run("import", str(LAB_EXAMPLE / "bandgaps.csv"), "-m", str(LAB_EXAMPLE / "mapping.yaml")).exit_code == 0
    refused = run("release", "gaps")
    lines = [n for n, text in enumerate(catalog_path.read_text().splitlines(), 1) if "2024.03.1" in text]
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: {catalog_path}: line {lines[1]}: datasets.gaps.version: Value error, invalid version '2024.03.1' "
        "(expected X.Y.Z or X.Y.Z-pre, e.g. 1.0.0 or 1.1.0-rc.1)\n"
    )
    assert run("release", "gaps", "--version", "2024.3.1").exit_code == 0


def test_an_unknown_dataset_names_the_catalog_file_read(filled, catalog_path, tmp_path, monkeypatch):
    """--catalog, else MATREG_CATALOG, else ./catalog.yaml (README, Catalog): the error names the file it read."""
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "catalog.yaml"  # the `catalog_path` fixture's: the working directory's catalog.yaml
    other = tmp_path / "c3.yaml"
    other.write_text(local.read_text(encoding="utf-8").replace("  gaps:\n", "  gaps-exp:\n"), encoding="utf-8")
    shutil.copyfile(other, tmp_path / "other.yaml")
    out = str(tmp_path / "x.csv")
    monkeypatch.setenv("MATREG_CATALOG", "c3.yaml")
    for catalog, args in (("c3.yaml", ()), ("other.yaml", ("--catalog", "other.yaml"))):
        result = filled("export", "gaps-dft", "--out", out, *args)
        assert result.exit_code == 2
        assert result.stderr == f"error: unknown dataset 'gaps-dft' (catalog {catalog} has: thermo, gaps-exp)\n"
    monkeypatch.delenv("MATREG_CATALOG")
    result = filled("export", "gaps-dft", "--out", out)
    assert result.stderr == "error: unknown dataset 'gaps-dft' (catalog catalog.yaml has: thermo, gaps)\n"


def test_every_csv_export_writes_its_cells_as_sql_format_csv_prints_them(run, tmp_path):
    """A name holding a carriage return split its row in two (pandas left a bare \\r unquoted), and the empty text
    was written as NULL is: the CSV files of exports and releases, long and wide, quote every cell holding a line
    break, quote or comma, and write the empty text as "" and NULL as nothing, as `matreg sql --format csv` does."""
    lab = 'id,formula,name,gap\na,ZnO,"cr\rret",3.3\nb,GaN,"",3.4\nc,GaAs,"q""uo,te\nline",1.4\n'
    mapping = (
        "dataset: cr-lab\nformula_column: formula\nid_column: id\nname_column: name\ncitation: c\nlicense: ''\n"
        "columns:\n  gap: {property: band_gap, unit: eV}\n"
    )
    assert cli_import(run, tmp_path, "cr", lab, mapping).exit_code == 0
    assert run("release", "gaps").exit_code == 0
    names = {"cr-lab:a": "cr\rret", "cr-lab:b": "", "cr-lab:c": 'q"uo,te\nline'}  # (b's blank name: none, NULL)
    shown = run("sql", "select license from materials where record_id = 'cr-lab:b'", "--format", "csv").stdout
    assert shown == 'license\n""\n'
    for release in ([], ["--release", "0.1.0"]):
        for layout in ("long", "wide"):
            out = tmp_path / f"{layout}{len(release)}.csv"
            assert run("export", "gaps", *release, "--layout", layout, "--out", str(out)).exit_code == 0
            with out.open(encoding="utf-8", newline="") as file:
                header, *rows = csv.reader(file)
            assert {row[0]: row[header.index("name")] for row in rows} == names, (release, layout)
            line = next(line for line in out.read_text(encoding="utf-8").split("\n") if line.startswith("cr-lab:b,"))
            cells = dict(zip(header, line.split(","), strict=True))  # no comma in a cell of b
            assert (cells["name"], cells["phase"], cells.get("license", '""')) == ("", "", '""'), (release, layout)


def test_a_release_is_made_with_warnings_as_errors_as_the_libraries_deprecations_are_not_the_users(filled):
    """`python -W error` (or PYTHONWARNINGS=error in a steward's CI): the Croissant check's libraries (rdflib,
    mlcroissant) deprecate their own internals, which no user can act on; the release is made."""
    command = [sys.executable, "-W", "error", "-m", "matreg", "release", "gaps"]
    result = subprocess.run(command, capture_output=True, **utf8_child({"PYTHONWARNINGS": "error"}))
    assert result.returncode == 0, result.stderr
    assert "gaps 0.1.0: 30 rows (30 records)" in result.stdout and "Warning" not in result.stderr


def test_the_electrons_molar_values_are_compared_merged_and_released_per_mole_of_electrons(run, catalog_path, tmp_path):
    """The electron has no atoms: its values per mole were compared per mole of its group's formula unit as 0/0 times
    the value, NaN: no conflict, an empty median and a release failing on its plot's range of [nan, nan]."""
    mapping = (
        "formula_column: formula\nid_column: id\ncitation: c\n"
        "columns:\n  S: {property: entropy, unit: J/(mol*K), temperature_K: 298.15, method: calorimetry}\n"
    )
    for name, value in (("lab-a", 20.979), ("lab-b", 22.5)):
        imported = cli_import(run, tmp_path, name, f"id,formula,S\ne1,e-,{value}\n", f"dataset: {name}\n{mapping}")
        assert imported.exit_code == 0, imported.output
    conflicts = run("conflicts", "entropy")
    assert conflicts.exit_code == 0 and "2 values in 1 group(s) disagree" in conflicts.stdout
    add_dataset(catalog_path, "electron", "properties: [entropy]", "resolve: {strategy: median}")
    out = tmp_path / "electron.csv"
    assert run("export", "electron", "--out", str(out)).exit_code == 0
    (row,) = csv.DictReader(out.read_text(encoding="utf-8").splitlines())
    assert (row["formula"], row["value"], row["resolved_by"]) == ("e[-1]", "21.7395", "median of 2")
    result = run("release", "electron")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "store" / "releases" / "electron" / "0.1.0" / "plots" / "entropy.png").is_file()
