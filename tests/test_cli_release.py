"""`matreg release`, `matreg diff` and `matreg export --release` end to end on the JANAF replay and the lab file."""

import json

import pytest
from conftest import LAB_EXAMPLE
from typer.testing import CliRunner

from matreg.cli import app

runner = CliRunner()


@pytest.fixture
def run(tmp_path, catalog_path, monkeypatch):
    monkeypatch.setenv("MATREG_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("MATREG_CATALOG", str(catalog_path))
    monkeypatch.setenv("MATREG_STEWARD", "A. Steward")
    assert (
        runner.invoke(
            app, ["import", str(LAB_EXAMPLE / "bandgaps.csv"), "-m", str(LAB_EXAMPLE / "mapping.yaml")]
        ).exit_code
        == 0
    )
    return lambda *args: runner.invoke(app, list(args))


def test_release_diff_and_export_of_a_release(run, tmp_path):
    result = run("release", "gaps")  # the catalog's version, 0.1.0
    assert result.exit_code == 0, result.output
    assert "gaps 0.1.0: 30 rows (30 records)" in result.stdout and "content sha256 " in result.stdout
    assert (
        run(
            "review", "correct", "demo-lab-bandgaps:roost-5", "-p", "band_gap", "--value", "3.37", "--reason", "r"
        ).exit_code
        == 0
    )
    assert run("release", "gaps", "--version", "0.2.0").exit_code == 0
    table = run("diff", "gaps", "0.1.0", "0.2.0")
    assert table.exit_code == 0 and "value changed: 1" in table.stdout and "None" not in table.stdout
    changes = json.loads(run("diff", "gaps", "0.1.0", "0.2.0", "--format", "json").stdout)
    assert {(c["field"], c["old"], c["new"]) for c in changes} == {("value", 3.44, 3.37), ("reviewed", False, True)}
    out = tmp_path / "gaps.csv"
    result = run("export", "gaps", "--release", "0.1.0", "--format", "csv", "--out", str(out))
    assert result.exit_code == 0 and "3.44" in out.read_text() and "3.37" not in out.read_text()


def test_a_released_version_is_refused_with_a_one_line_error(run):
    assert run("release", "gaps", "--version", "1.0.0").exit_code == 0
    result = run("release", "gaps", "--version", "1.0.0")
    assert result.exit_code == 1 and "never overwritten" in result.stderr and result.stderr.count("\n") == 1
    assert "no release 9.9.9 of 'gaps'" in run("diff", "gaps", "1.0.0", "9.9.9").stderr


@pytest.mark.parametrize("command", ["release", "diff"])
def test_release_commands_have_help(command):
    assert runner.invoke(app, [command, "--help"]).exit_code == 0
