"""`matreg review` and `matreg history` end to end on the JANAF replay and the bundled lab file."""

import pytest
from conftest import LAB_EXAMPLE
from typer.testing import CliRunner

from matreg.cli import app

runner = CliRunner()
BAD_UNIT = "af1fbeb414863d448e84034300fa3e14a3173fdf"  # quarantine id of line 33: a hash of source, item and payload


@pytest.fixture
def run(tmp_path, catalog_path, monkeypatch):
    monkeypatch.setenv("MATREG_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("MATREG_CATALOG", str(catalog_path))
    monkeypatch.setenv("MATREG_STEWARD", "A. Steward")
    assert runner.invoke(app, ["fetch", "janaf", "H-064", "C-095", "--no-progress"]).exit_code == 0
    assert (
        runner.invoke(
            app, ["import", str(LAB_EXAMPLE / "bandgaps.csv"), "-m", str(LAB_EXAMPLE / "mapping.yaml")]
        ).exit_code
        == 0
    )
    return lambda *args: runner.invoke(app, list(args))


def test_review_decisions_are_logged_and_history_lists_them(run):
    assert run("review", "reject", "janaf:H-064", "--reason", "superseded").exit_code == 0
    result = run(
        "review", "correct", "demo-lab-bandgaps:roost-5", "-p", "band_gap", "--value", "3.37", "--reason", "typo"
    )
    assert result.exit_code == 0 and "band_gap = 3.37 eV" in result.stdout
    result = run("review", "readmit", BAD_UNIT, "--unit", "eV", "--reason", "'elektronvolt' is eV")
    assert result.exit_code == 0 and "admitted with run id curation:" in result.stdout
    history = run("history", "demo-lab-bandgaps:bad-unit")
    assert history.exit_code == 0 and "readmit" in history.stdout and "'elektronvolt' is eV" in history.stdout
    assert "superseded" in run("history", "janaf:H-064").stdout


def test_a_refused_decision_is_a_one_line_error(run):
    result = run("review", "correct", "demo-lab-bandgaps:roost-5", "-p", "band_gap", "--value", "31", "--reason", "x")
    assert result.exit_code == 1 and "outside the physical bounds" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert run("history", "janaf:X-000").exit_code == 1
