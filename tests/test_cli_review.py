"""`matreg review` and `matreg history` end to end on the JANAF replay and the bundled lab file."""

from typer.testing import CliRunner

runner = CliRunner()
BAD_UNIT = "c1440ecc89bb4d72457c3e0216274ba27c6c49dd"  # quarantine id of line 33: a hash of source, item and payload


def test_review_decisions_are_logged_and_history_lists_them(filled):
    assert filled("review", "reject", "janaf:H-064", "--reason", "superseded").exit_code == 0
    result = filled(
        "review", "correct", "demo-lab-bandgaps:roost-5", "-p", "band_gap", "--value", "3.37", "--reason", "typo"
    )
    assert result.exit_code == 0 and "band_gap = 3.37 eV" in result.stdout
    result = filled("review", "readmit", BAD_UNIT, "--unit", "eV", "--reason", "'elektronvolt' is eV")
    assert result.exit_code == 0 and "admitted with run id curation:" in result.stdout
    history = filled("history", "demo-lab-bandgaps:bad-unit")
    assert history.exit_code == 0 and "readmit" in history.stdout and "'elektronvolt' is eV" in history.stdout
    assert "superseded" in filled("history", "janaf:H-064").stdout


def test_a_refused_decision_is_a_one_line_error(filled):
    result = filled(
        "review", "correct", "demo-lab-bandgaps:roost-5", "-p", "band_gap", "--value", "31", "--reason", "x"
    )
    assert result.exit_code == 1 and "outside the physical bounds" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert filled("history", "janaf:X-000").exit_code == 1
