"""`matreg review`, `matreg history` and `matreg conflicts` end to end on the JANAF replay and the bundled lab file."""

import json

import pandas as pd
import pytest
from conftest import cli_import
from typer.testing import CliRunner

runner = CliRunner()
BAD_UNIT = "5b2da3ee66b0063ca0445be6430df80cf21583f9"  # quarantine id of row bad-unit: a hash of source and its cells
CUBR = [("demo-lab-bandgaps:roost-17", 2.94, 0.14), ("demo-lab-bandgaps:roost-2", 3.08, 0.14)]  # one method, 300 K


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
    flag = ["review", "flag", "janaf:C-095", "-p", "heat_capacity_cp", "--temperature", "298.15", "--reason", "odd"]
    assert filled(*flag).exit_code == 0, "flag"
    header, row = filled("history", "janaf:C-095").stdout.splitlines()[:2]
    assert header.split()[3:7] == ["property", "method", "temperature_K", "pressure_Pa"]
    assert "NIST-JANAF critical evaluation" in row and " 100000.0 " in row  # the value's method and pressure


def test_a_readmitted_row_is_no_longer_open_and_status_counts_the_open_rows(filled):
    def open_rows():
        return json.loads(filled("sql", "SELECT quarantine_id FROM open_quarantine", "--format", "json").stdout)

    assert BAD_UNIT in [row["quarantine_id"] for row in open_rows()] and len(open_rows()) == 5
    assert "quarantine: 5 rows open, 0 resolved" in filled("status").stdout
    assert filled("review", "readmit", BAD_UNIT, "--unit", "eV", "--reason", "'elektronvolt' is eV").exit_code == 0
    assert BAD_UNIT not in [row["quarantine_id"] for row in open_rows()] and len(open_rows()) == 4
    assert "quarantine: 4 rows open, 1 resolved" in filled("status").stdout


def test_a_dismissed_row_is_no_longer_open_stays_in_quarantine_and_is_dismissed_once(filled):
    def open_rows():
        return json.loads(filled("sql", "SELECT quarantine_id FROM open_quarantine", "--format", "json").stdout)

    dismiss = ["review", "dismiss", BAD_UNIT, "--reason", "nobody knows which unit was meant"]
    result = filled(*dismiss)
    assert result.exit_code == 0 and f"dismiss quarantine row {BAD_UNIT}" in result.stdout
    assert BAD_UNIT not in [row["quarantine_id"] for row in open_rows()] and len(open_rows()) == 4
    assert "quarantine: 4 rows open, 1 resolved (readmitted, dismissed," in filled("status").stdout
    assert json.loads(filled("sql", "SELECT count(*) AS n FROM quarantine", "--format", "json").stdout) == [{"n": 5}]
    again = filled(*dismiss)
    assert again.exit_code == 1 and f"quarantine row '{BAD_UNIT}' was dismissed already" in again.stderr
    unknown = filled("review", "dismiss", "0" * 40, "--reason", "x")
    assert unknown.exit_code == 2 and "unknown quarantine row" in unknown.stderr
    unnamed = filled("review", "dismiss", quarantine_id_of(filled, "bad-number"), "--steward", " ", "--reason", "x")
    assert unnamed.exit_code == 1 and "every decision needs the steward's name and a reason" in unnamed.stderr


def test_a_refused_decision_is_a_one_line_error(filled):
    result = filled(
        "review", "correct", "demo-lab-bandgaps:roost-5", "-p", "band_gap", "--value", "31", "--reason", "x"
    )
    assert result.exit_code == 1 and "outside the physical bounds" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert filled("history", "janaf:X-000").exit_code == 2


def conflicting(run, *options):
    """(record, value, spread) of each band gap `matreg conflicts band_gap` lists, sorted."""
    result = run("conflicts", "band_gap", "--format", "json", *options)
    assert result.exit_code == 0, result.output
    return sorted((row["record_id"], row["value"], round(row["spread"], 6)) for row in json.loads(result.stdout))


def test_conflicts_compare_the_curated_values(filled):
    assert conflicting(filled) == CUBR
    gap = ("demo-lab-bandgaps:roost-17", "-p", "band_gap")
    assert filled("review", "correct", *gap, "--value", "2.5", "--reason", "re-measured").exit_code == 0
    assert conflicting(filled) == [("demo-lab-bandgaps:roost-17", 2.5, 0.58), ("demo-lab-bandgaps:roost-2", 3.08, 0.58)]
    assert filled("review", "reject", *gap, "--reason", "contaminated sample").exit_code == 0
    assert "no band_gap values disagree beyond the tolerance" in filled("conflicts", "band_gap").stdout


def test_conflicts_compare_values_of_one_method_unless_asked_across_methods(filled, tmp_path):
    mapping = (
        "dataset: pl-lab\nformula_column: composition\nid_column: sample\nmethod: photoluminescence\n"
        "citation: test\ncolumns:\n  gap: {property: band_gap, unit: eV, temperature_K: 300}\n"
    )
    assert cli_import(filled, tmp_path, "pl", "sample,composition,gap\npl-1,CuBr,2.7\n", mapping).exit_code == 0
    assert conflicting(filled) == CUBR
    assert conflicting(filled, "--across-methods") == [
        ("demo-lab-bandgaps:roost-17", 2.94, 0.38),
        ("demo-lab-bandgaps:roost-2", 3.08, 0.38),
        ("pl-lab:pl-1", 2.7, 0.38),
    ]


def test_validate_names_decisions_whose_value_a_re_import_changed(run, tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "dataset: lab\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
        "  gap: {property: band_gap, unit: eV, temperature_field: T, temperature_unit: degC}\n",
        encoding="utf-8",
    )
    data = tmp_path / "gaps.csv"
    data.write_text("id,formula,gap,T\ns1,GaN,9.9,25\ns2,ZnO,3.3,25\n", encoding="utf-8")
    assert run("import", str(data), "-m", str(mapping)).exit_code == 0
    reject = ["review", "reject", "lab:s1", "-p", "band_gap", "--temperature", "298.15", "--reason", "9.9 is a typo"]
    assert run(*reject).exit_code == 0
    assert "note:" not in run("validate").stdout
    data.write_text("id,formula,gap,T\ns1,GaN,9.9,26\ns2,ZnO,3.3,25\n", encoding="utf-8")  # T corrected
    assert run("import", str(data), "-m", str(mapping)).exit_code == 0
    result = run("validate")
    assert result.exit_code == 0
    assert "note: 1 review decision(s) name a record or value the store no longer shows:" in result.stdout
    assert "reject lab:s1 band_gap at 298.15 K" in result.stdout
    assert run("review", "flag", "lab:s2", "--reason", "recheck the sample").exit_code == 0
    data.write_text("id,formula,gap,T\ns1,GaN,9.9,26\n", encoding="utf-8")  # s2 deleted: withdrawn
    assert run("import", str(data), "-m", str(mapping)).exit_code == 0
    listed = run("validate").stdout
    assert "note: 2 review decision(s)" in listed and "flag lab:s2\n" in listed


def test_a_wide_export_carries_the_curation_of_each_value(filled, tmp_path):
    roost5, roost17 = ("demo-lab-bandgaps:roost-5", "-p", "band_gap"), ("demo-lab-bandgaps:roost-17", "-p", "band_gap")
    assert filled("review", "correct", *roost5, "--value", "3.37", "--reason", "typo").exit_code == 0
    assert filled("review", "flag", *roost17, "--steward", "ana", "--reason", "second sample").exit_code == 0
    out = tmp_path / "gaps.parquet"
    assert filled("export", "gaps", "--format", "parquet", "--layout", "wide", "--out", str(out)).exit_code == 0
    wide = pd.read_parquet(out).set_index("record_id")
    assert list(wide.columns[-5:]) == [
        "band_gap",
        "band_gap_uncertainty",
        "band_gap_raw_value",
        "band_gap_flags",
        "band_gap_reviewed",
    ]
    assert wide.loc[roost5[0], ["band_gap", "band_gap_raw_value"]].tolist() == [3.37, 3.44]  # stored 3440 meV
    assert wide.loc[roost5[0], "band_gap_reviewed"] and not wide.loc[roost17[0], "band_gap_reviewed"]
    assert wide.loc[roost17[0], "band_gap_flags"] == "ana: second sample"
    assert wide["band_gap_flags"].notna().sum() == 1 and wide["band_gap_reviewed"].sum() == 1


def lab_file(tmp_path, run, csv_text: str):
    """`matreg import` of `csv_text` (columns id, formula, gap in eV at temperature T in K) as lab dataset 'lab'."""
    mapping = (
        "dataset: lab\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
        "  gap: {property: band_gap, unit: eV, temperature_field: T}\n"
        "  dHf: {property: formation_energy_per_atom, unit: eV/atom}\n"
    )
    result = cli_import(run, tmp_path, "gaps", csv_text, mapping)
    assert result.exit_code == 0, result.output
    return result


def exported(run, tmp_path):
    """(record, formula, value, reviewed) of each band gap `matreg export gaps` writes."""
    out = tmp_path / "gaps.csv"
    assert run("export", "gaps", "--out", str(out)).exit_code == 0
    rows = pd.read_csv(out)
    return sorted(zip(rows["record_id"], rows["formula"], rows["value"], rows["reviewed"], strict=True))


def test_a_rejected_lab_id_given_to_another_material_is_exported_and_import_and_validate_say_why(run, tmp_path):
    lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-007,Fe2O3,2.0,300,\nK-008,ZnO,3.3,300,\n")
    assert run("review", "reject", "lab:K-008", "--reason", "contaminated").exit_code == 0
    deleted = lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-007,Fe2O3,2.0,300,\n")
    assert "1 withdrawn (no longer in the file)" in deleted.stdout and deleted.stderr == ""
    reused = lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-007,Fe2O3,2.0,300,\nK-008,ZnS,3.68,300,\n")
    entry = run("history", "lab:K-008").stdout.splitlines()[1].split()[0]
    assert reused.stderr == (
        f"warning: review decision {entry} (reject lab:K-008): made on ZnO, the record is now ZnS: not applied; decide "
        "again with `matreg review`\n"
    )
    assert exported(run, tmp_path) == [("lab:K-007", "Fe2O3", 2.0, False), ("lab:K-008", "ZnS", 3.68, False)]
    validated = run("validate")
    assert validated.exit_code == 0
    assert (
        "note: 1 review decision(s) were made on what has changed since (stale: not applied to what changed; decide"
        in validated.stdout
    )
    assert f"  {entry}  reject lab:K-008: made on ZnO, the record is now ZnS: not applied\n" in validated.stdout


def test_a_corrected_or_readmitted_value_nearer_0_than_any_float_is_refused_not_stored_as_0(run, tmp_path):
    lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,GaN,3.4,300,\nK-2,ZnO,-3.3,300,\n")
    readmit = ["review", "readmit", quarantine_id_of(run, "K-2"), "--value", "1e-400", "--reason", "notebook"]
    correct = ["review", "correct", "lab:K-1", "-p", "band_gap", "--value", "1e-400", "--reason", "typo"]
    for refused in (run(*correct), run(*readmit)):
        said = " ".join(refused.stderr.replace("\u2502", " ").split())  # typer draws the error in a box
        assert refused.exit_code == 2 and "Invalid value for '--value': too near 0 for a float: '1e-400' would " in said
        assert "would be stored as 0 (the smallest float is 5e-324)" in said
    assert rows(run, "SELECT count(*) FROM curation_log") == [[0]]
    smallest = run("review", "correct", "lab:K-1", "-p", "band_gap", "--value", "5e-324", "--reason", "typo")
    assert smallest.exit_code == 0 and "band_gap = 5e-324 eV  [entry" in smallest.stdout


@pytest.mark.parametrize("option", ["--temperature", "--pressure"])
def test_a_decisions_condition_nearer_0_than_any_float_is_refused_not_read_as_0(run, tmp_path, option):
    lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,GaN,3.4,300,\n")
    refused = run("review", "flag", "lab:K-1", "-p", "band_gap", option, "1e-400", "--reason", "recheck")
    said = " ".join(refused.stderr.replace("\u2502", " ").split())  # typer draws the error in a box
    assert refused.exit_code == 2 and f"Invalid value for '{option}': too near 0 for a float: '1e-400'" in said
    assert rows(run, "SELECT count(*) FROM curation_log") == [[0]]


def test_a_stale_decision_is_named_by_its_temperature_exact(run, tmp_path):
    lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,GaN,3.4,300.1234567,\n")
    flag = ["review", "flag", "lab:K-1", "-p", "band_gap", "--temperature", "300.1234567", "--reason", "recheck"]
    assert run(*flag).exit_code == 0
    again = lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,GaN,3.45,300.1234567,\n")
    assert "(flag lab:K-1 band_gap at 300.1234567 K): made on 3.4 eV as received, the value is now 3.45 eV" in (
        again.stderr
    )
    assert "flag lab:K-1 band_gap at 300.1234567 K: made on 3.4 eV" in run("validate").stdout


def test_import_warns_of_a_correction_of_a_value_measured_again_and_of_a_decision_whose_value_key_changed(
    run, tmp_path
):
    lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-002,GaN,3.4,300,\nK-003,ZnO,3.3,300,\n")
    assert run("review", "correct", "lab:K-002", "-p", "band_gap", "--value", "3.39", "--reason", "typo").exit_code == 0
    assert run("review", "flag", "lab:K-003", "-p", "band_gap", "--reason", "recheck").exit_code == 0
    again = lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-002,GaN,3.45,300,\nK-003,ZnO,3.3,295,\n")
    warnings = again.stderr.splitlines()
    assert len(warnings) == 2 and all(line.endswith("; decide again with `matreg review`") for line in warnings)
    assert (
        "(correct lab:K-002 band_gap at 300.0 K): made on 3.4 eV as received, the value is now 3.45 eV" in warnings[0]
    )
    assert (
        "(flag lab:K-003 band_gap at 300.0 K): the record has no such value now (its method, temperature" in warnings[1]
    )
    assert exported(run, tmp_path) == [("lab:K-002", "GaN", 3.45, False), ("lab:K-003", "ZnO", 3.3, False)]
    released = run("release", "gaps", "--version", "1.0.0")
    assert released.exit_code == 0 and released.stderr == again.stderr
    card = (tmp_path / "store" / "releases" / "gaps" / "1.0.0" / "README.md").read_text(encoding="utf-8")
    assert "".join(f"\n- Warning: {line.removeprefix('warning: ')}." for line in warnings) in card


def test_an_import_warns_only_of_decisions_on_records_it_wrote_and_validate_lists_every_stale_one(run, tmp_path):
    lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,GaN,3.4,300,\nK-2,ZnO,3.3,300,\n")
    assert run("review", "correct", "lab:K-1", "-p", "band_gap", "--value", "3.39", "--reason", "typo").exit_code == 0
    assert run("review", "flag", "lab:K-2", "-p", "band_gap", "--reason", "recheck").exit_code == 0
    measured = lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,GaN,3.45,300,\nK-2,ZnO,3.3,300,\n")
    assert "(correct lab:K-1 band_gap at 300.0 K): made on 3.4 eV as received" in measured.stderr
    assert "lab:K-2" not in measured.stderr
    # K-1 is not written again (unchanged): its stale correction was warned of when it became stale
    again = lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,GaN,3.45,300,\nK-2,ZnO,3.35,300,\n")
    assert again.stderr.count("warning:") == 1
    assert "(flag lab:K-2 band_gap at 300.0 K): made on 3.3 eV as received, the value is now 3.35 eV" in again.stderr
    unchanged = lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,GaN,3.45,300,\nK-2,ZnO,3.35,300,\n")
    assert unchanged.stderr == ""
    validated = run("validate").stdout
    assert "note: 2 review decision(s) were made on what has changed since" in validated
    assert "correct lab:K-1 band_gap at 300.0 K: made on 3.4 eV" in validated
    assert "flag lab:K-2 band_gap at 300.0 K: made on 3.3 eV" in validated


def test_a_readmit_its_file_no_longer_gives_as_it_was_is_not_exported_and_import_and_validate_say_so(run, tmp_path):
    lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-2,GaN,3.4,300,about -1.2\nK-3,ZnO,3.3,300,\nK-4,AlN,6,300,-3 eV\n")
    entries = {}
    for record, value in (("K-2", "-1.2"), ("K-4", "-3")):
        quarantine_id = quarantine_id_of(run, f"{record}:formation_energy_per_atom")
        assert run("review", "readmit", quarantine_id, "--value", value, "--reason", "notebook").exit_code == 0
        entries[record] = rows(run, "SELECT max(entry_id) FROM curation_log")[0][0]
    assert run("review", "reject", "lab:K-4", "-p", "formation_energy_per_atom", "--reason", "unsure").exit_code == 0
    edited = lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-2,GaN,3.4,300,about -1.25\nK-3,ZnO,3.3,300,\n")
    assert "1 withdrawn (no longer in the file)" in edited.stdout  # K-4
    why = "made on no number (eV/atom) as received, which a later read of the record no longer gives"
    assert edited.stderr == (
        f"warning: review decision {entries['K-2']} (readmit lab:K-2 formation_energy_per_atom): {why}: the "
        "readmitted value is not shown; decide again with `matreg review`\n"
    )
    assert rows(run, "SELECT record_id FROM properties WHERE property = 'formation_energy_per_atom'") == []
    validated = run("validate").stdout  # K-4's readmit is answered by the reject, which names a value gone
    assert f"  {entries['K-2']}  readmit lab:K-2 formation_energy_per_atom: {why}: the readmitted" in validated
    assert entries["K-4"] not in validated


def test_history_shows_what_each_entry_was_made_on_and_which_are_stale(run, tmp_path):
    lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,GaN,3.4,300,\n")
    assert run("review", "flag", "lab:K-1", "--reason", "recheck").exit_code == 0
    assert run("review", "correct", "lab:K-1", "-p", "band_gap", "--value", "3.39", "--reason", "typo").exit_code == 0
    lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,GaN,3.45,300,\n")
    history = run("history", "lab:K-1")
    assert history.exit_code == 0 and "None" not in history.stdout
    header, flag, correct, note = history.stdout.splitlines()
    assert header.split()[-6:] == ["formula", "phase", "original_value", "original_unit", "reason", "stale"]
    assert flag.split()[3:] == ["flag", "GaN", "cr", "recheck"]  # of the record: no value, in force
    made_on = ["GaN", "cr", "3.4", "eV"]
    assert correct.split()[3:] == ["correct", "band_gap", "300.0", "3.39", "eV", *made_on, "typo", "stale"]
    entry = correct.split()[0]
    assert note == (
        f"{entry} is stale: made on 3.4 eV as received, the value is now 3.45 eV: not applied; decide again with "
        "`matreg review`"
    )


def test_a_correction_history_and_stale_reasons_show_each_number_in_its_shortest_exact_form(run, tmp_path):
    """A correction to 0.30000000000000004 eV was echoed '= 0.3 eV' and listed 0.3 by history (15 digits), one to
    2.2250738585072014 eV as 2.22507385850720, and a decision made on 3.4000000000000004 eV was stale 'made on 3.4
    eV', while the log, exports and `sql` hold the exact numbers. Each shows as `sql` prints it (300 K as 300.0)."""
    lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,GaN,3.4000000000000004,300,\nK-2,ZnO,3.3,300,\n")
    correct = ["review", "correct", "lab:K-1", "-p", "band_gap", "--value", "0.30000000000000004", "--reason", "typo"]
    corrected = run(*correct)
    assert corrected.exit_code == 0 and "band_gap = 0.30000000000000004 eV  [entry" in corrected.stdout
    correct[2], correct[6] = "lab:K-2", "2.2250738585072014"
    assert "band_gap = 2.2250738585072014 eV  [entry" in run(*correct).stdout
    header, entry = run("history", "lab:K-2").stdout.splitlines()
    assert entry.split()[3:] == [
        "correct",
        "band_gap",
        "300.0",
        "2.2250738585072014",
        "eV",
        "ZnO",
        "cr",
        "3.3",
        "eV",
        "typo",
    ]
    assert rows(run, "SELECT temperature_K, value FROM curation_log WHERE record_id = 'lab:K-2'") == [
        [300.0, 2.2250738585072014]
    ]
    again = lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,GaN,3.45,300,\nK-2,ZnO,3.3,300,\n")
    stale = "made on 3.4000000000000004 eV as received, the value is now 3.45 eV"
    assert f"(correct lab:K-1 band_gap at 300.0 K): {stale}" in again.stderr
    header, entry, note = run("history", "lab:K-1").stdout.splitlines()
    made_on = ["GaN", "cr", "3.4000000000000004", "eV", "typo", "stale"]
    assert entry.split()[3:] == ["correct", "band_gap", "300.0", "0.30000000000000004", "eV", *made_on]
    assert note.startswith(f"{entry.split()[0]} is stale: {stale}: not applied")


def test_history_shows_the_formula_as_written_that_a_decision_was_made_on(run, tmp_path):
    lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,Na2Cl2,8.5,300,\n")
    assert run("review", "flag", "lab:K-1", "--reason", "recheck").exit_code == 0
    header, flag = run("history", "lab:K-1").stdout.splitlines()
    assert flag.split()[3:] == ["flag", "Na2Cl2", "cr", "recheck"]  # as written: per mole of Na2Cl2, not of NaCl


def test_history_shows_the_state_of_the_record_a_decision_was_made_on(run, tmp_path):
    """`curation_log.phase`, what makes a decision on H2O(l) stale once the file gives H2O(g), was not shown."""
    lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,H2O(l),6.9,300,\n")
    assert run("review", "flag", "lab:K-1", "--reason", "recheck").exit_code == 0
    lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,H2O(g),6.9,300,\n")
    header, flag, note = run("history", "lab:K-1").stdout.splitlines()
    assert header.split()[-6:-4] == ["formula", "phase"]
    assert flag.split()[3:] == ["flag", "H2O", "l", "recheck", "stale"]
    assert note == (
        f"{flag.split()[0]} is stale: made on H2O(l), the record is now H2O(g): not applied; decide again with "
        "`matreg review`"
    )


def rows(run, query):
    result = run("sql", query, "--format", "json")
    assert result.exit_code == 0, result.output
    return [list(row.values()) for row in json.loads(result.stdout)]


def quarantine_id_of(run, item: str) -> str:
    """The id of the one quarantine row of `item` (a second row fails the test rather than be picked at random)."""
    found = rows(run, f"SELECT quarantine_id FROM quarantine WHERE item = '{item}'")
    assert len(found) == 1, f"{len(found)} quarantine rows of {item}"
    return found[0][0]


K_MAPPING = (
    "dataset: k-lab\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
    "  gap: {property: band_gap, unit: eV}\n  rho: {property: density, unit: g/cm^3}\n"
)
K_ROWS = ["K-001,ZnO,3.3,5.61", "K-003,GaN,3.4,6.15", "K-005,CdS,2.42,4.82", "K-010,Xx2O3,1.5,", "K-003,GaN,3.4,6.15"]
K_ROWS.append("K-016,ZnS,-3.6,")  # its one value out of bounds: quarantined whole
ROW_ID = "json_extract_string(raw, '$._source_id')"  # the id in a quarantined lab row, however the row is named


def test_decisions_on_whole_rows_hold_when_other_rows_move_or_a_mapped_column_is_renamed(run, tmp_path):
    data, mapping = tmp_path / "k.csv", tmp_path / "k.yaml"

    def open_rows_after_import(lines, header="id,formula,gap,rho", columns=K_MAPPING):
        data.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
        mapping.write_text(columns, encoding="utf-8")
        assert run("import", str(data), "-m", str(mapping)).exit_code == 0
        return rows(run, f"SELECT {ROW_ID}, quarantine_id FROM open_quarantine ORDER BY 1")

    opened = dict(open_rows_after_import(K_ROWS))
    assert list(opened) == ["K-003", "K-010", "K-016"]  # K-003: its second row
    assert run("review", "dismiss", opened["K-003"], "--reason", "K-003 pasted twice").exit_code == 0
    assert run("review", "dismiss", opened["K-010"], "--reason", "Xx is no element").exit_code == 0
    assert run("review", "readmit", opened["K-016"], "--value", "3.6", "--reason", "sign lost").exit_code == 0
    assert open_rows_after_import(K_ROWS[:2] + K_ROWS[3:]) == []  # K-005 deleted: the rows below moved up
    renamed = K_MAPPING.replace("rho:", "density_g_cm3:")
    assert open_rows_after_import(K_ROWS, "id,formula,gap,density_g_cm3", renamed) == []
    assert open_rows_after_import(["K-000,Si,1.12,2.33", *K_ROWS]) == []  # a row inserted at the top
    named = rows(run, f"SELECT item, {ROW_ID} FROM quarantine ORDER BY 1")  # one row per quarantine id: still 3
    assert named == [["K-010", "K-010"], ["K-016", "K-016"], ["line 7", "K-003"]]  # a repeated id: by its line
    assert rows(run, "SELECT value FROM properties WHERE record_id = 'k-lab:K-016'") == [[3.6]]
    changed = [row.replace("Xx2O3,1.5", "Xx2O3,1.6") for row in K_ROWS]
    assert [row for row, _ in open_rows_after_import(changed)] == ["K-010"]  # another input: a new, open row


def test_a_dismissal_is_undone_by_reopen(filled):
    def open_ids():
        return [row[0] for row in rows(filled, "SELECT quarantine_id FROM open_quarantine")]

    assert "Reopen a dismissed quarantine row" in filled("review", "reopen", "--help").stdout
    refused = filled("review", "reopen", BAD_UNIT, "--reason", "x")
    assert refused.exit_code == 1 and f"'{BAD_UNIT}' is not dismissed: nothing to reopen" in refused.stderr
    assert filled("review", "dismiss", BAD_UNIT, "--reason", "nobody knows which unit was meant").exit_code == 0
    assert BAD_UNIT not in open_ids()
    result = filled("review", "reopen", BAD_UNIT, "--reason", "the notebook turned up")
    assert result.exit_code == 0 and f"reopen quarantine row {BAD_UNIT}" in result.stdout
    assert BAD_UNIT in open_ids() and len(open_ids()) == 5
    assert "quarantine: 5 rows open, 0 resolved" in filled("status").stdout
    actions = rows(filled, "SELECT action, quarantine_id FROM curation_log ORDER BY entry_id")
    assert actions == [["dismiss", BAD_UNIT], ["reopen", BAD_UNIT]]  # appended: the dismissal stays in the log


def test_a_value_a_stale_accept_no_longer_covers_is_exported_unreviewed_not_rejected_by_the_older_reject(run, tmp_path):
    lab_file(tmp_path, run, "id,formula,gap,T,dHf\nS2,ZnO,3.3,300,-1.8\n")
    assert run("review", "reject", "lab:S2", "--reason", "looked wrong").exit_code == 0
    assert run("review", "accept", "lab:S2", "--reason", "checked after all").exit_code == 0
    again = lab_file(tmp_path, run, "id,formula,gap,T,dHf\nS2,ZnO,3.35,300,-1.8\n")  # the gap re-measured
    assert "(accept lab:S2): the band_gap value is new or changed since (now 3.35 eV" in again.stderr
    assert exported(run, tmp_path) == [("lab:S2", "ZnO", 3.35, False)]
    released = run("release", "gaps", "--version", "1.0.0")
    assert released.exit_code == 0 and "gaps 1.0.0: 1 rows (1 records)" in released.stdout
    noted = "note: 1 review decision(s) were made on what has changed since (stale: not applied to what changed;"
    assert noted in run("validate").stdout  # the accept still reviews the values it saw
    gap = ("lab:S2", "-p", "band_gap", "--temperature", "300")
    assert run("review", "accept", *gap, "--reason", "re-measured value checked").exit_code == 0
    assert exported(run, tmp_path) == [("lab:S2", "ZnO", 3.35, True)]
    assert "note:" not in run("validate").stdout


def test_history_of_a_withdrawn_record_has_no_entries_and_of_one_never_stored_is_an_error(run, tmp_path):
    lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,GaN,3.4,300,\nK-2,ZnO,3.3,300,\n")
    deleted = lab_file(tmp_path, run, "id,formula,gap,T,dHf\nK-1,GaN,3.4,300,\n")
    assert "1 withdrawn (no longer in the file)" in deleted.stdout
    history = run("history", "lab:K-2")
    assert history.exit_code == 0 and history.stdout == "no curation entries for lab:K-2\n"
    unknown = run("history", "lab:K-9")
    assert unknown.exit_code == 2 and "unknown record 'lab:K-9'" in unknown.stderr


GAPS_WITH_UNITS = (
    "dataset: lab\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
    "  gap: {property: band_gap, unit_field: unit, temperature_K: 300}\n"
)


def test_an_export_says_what_a_readmitted_value_was_received_as_and_who_readmitted_it_and_why(run, tmp_path):
    mapping = GAPS_WITH_UNITS
    csv_text = "id,formula,gap,unit\nK-1,ZnO,about 3,eV\nK-2,GaN,3.4,elektronvolt\nK-3,CdS,2.42,eV\n"
    assert cli_import(run, tmp_path, "gaps", csv_text, mapping).exit_code == 0
    opened = dict(rows(run, f"SELECT {ROW_ID}, quarantine_id FROM open_quarantine ORDER BY 1"))
    assert run("review", "readmit", opened["K-1"], "--value", "3.3", "--reason", "notebook: 3.3").exit_code == 0
    assert run("review", "readmit", opened["K-2"], "--unit", "eV", "--reason", "'elektronvolt' is eV").exit_code == 0
    out = tmp_path / "gaps.csv"
    assert run("export", "gaps", "--out", str(out)).exit_code == 0
    exported = pd.read_csv(out).set_index("record_id")
    columns = ["value", "raw_value", "original_value", "original_unit", "reviewed", "flags"]
    curation = exported[columns].astype(object).where(exported[columns].notna(), None)
    assert curation.loc[["lab:K-1", "lab:K-2", "lab:K-3"]].values.tolist() == [
        [3.3, None, None, "eV", True, "A. Steward: notebook: 3.3"],
        [3.4, None, 3.4, "elektronvolt", True, "A. Steward: 'elektronvolt' is eV"],
        [2.42, 2.42, 2.42, "eV", False, None],
    ]
    assert exported["fetched_at"].nunique() == 1  # each when the file was read, the readmitted ones too


def test_a_readmit_of_a_records_only_value_gone_stale_is_warned_of_by_import_and_listed_stale_by_history(run, tmp_path):
    mapping = GAPS_WITH_UNITS
    csv_text = "id,formula,gap,unit\nK-1,ZnO,3.3,eV\nK-2,GaN,3.4,elektronvolt\n"
    assert cli_import(run, tmp_path, "gaps", csv_text, mapping).exit_code == 0
    (bad_unit,) = rows(run, "SELECT quarantine_id FROM open_quarantine")[0]
    assert run("review", "readmit", bad_unit, "--unit", "eV", "--reason", "'elektronvolt' is eV").exit_code == 0
    again = cli_import(run, tmp_path, "gaps", csv_text.replace("3.4,elektronvolt", "3.5,elektronvolt"), mapping)
    why = "made on 3.4 elektronvolt as received, which a later read of the record no longer gives"
    assert again.exit_code == 0 and f"(readmit lab:K-2 band_gap at 300.0 K): {why}" in again.stderr
    history = run("history", "lab:K-2")
    assert history.exit_code == 0 and f"is stale: {why}: the readmitted value is not shown;" in history.stdout


UNCERTAIN = (
    "dataset: unc\nformula_column: formula\nid_column: id\ncitation: c\ncolumns:\n"
    "  gap: {property: band_gap, unit: eV, uncertainty_field: dgap}\n  S: {property: entropy, unit: J/(mol*K)}\n"
)


def test_a_decisions_value_and_uncertainty_are_shown_in_one_unit(run, tmp_path):
    """A readmit in meV was echoed '3370 meV ± 0.02 eV' (the uncertainty in the canonical unit), and so in history."""
    mapping = UNCERTAIN.replace("unit: eV, uncertainty_field", "unit: meV, uncertainty_field")
    csv_text = "id,formula,gap,dgap,S\nq,ZnO,about 3370,20,\ns,Si,1120,,18.8\n"
    assert cli_import(run, tmp_path, "unc", csv_text, mapping).exit_code == 0
    readmit = ["review", "readmit", quarantine_id_of(run, "q"), "--value", "3370", "--reason", "3370"]
    readmitted = run(*readmit)
    assert readmitted.exit_code == 0 and "band_gap = 3370.0 meV ± 20.0 meV" in readmitted.stdout
    entry = run("history", "unc:q").stdout.splitlines()[1]
    assert entry.split()[3:10] == ["readmit", "band_gap", "3370.0", "meV", "±", "20.0", "meV"]


def test_a_corrected_value_is_echoed_and_shown_in_history_as_typed(run, tmp_path):
    """A correction to 1.23456789 eV was echoed '1.23457 eV' and listed 1.234568 by history (six digits), beside its
    uncertainty in full."""
    mapping = UNCERTAIN.replace("unit: eV, uncertainty_field", "unit: meV, uncertainty_field")
    assert (
        cli_import(run, tmp_path, "unc", "id,formula,gap,dgap,S\ng,GaAs,1234.5678,12.3456789,\n", mapping).exit_code
        == 0
    )
    corrected = run("review", "correct", "unc:g", "-p", "band_gap", "--value", "1.23456789", "--reason", "typo")
    uncertainty = "0.012345678899999999"  # 12.3456789 meV over 1000, correctly rounded, as stored
    assert corrected.exit_code == 0 and f"band_gap = 1.23456789 eV ± {uncertainty} eV" in corrected.stdout
    entry = run("history", "unc:g").stdout.splitlines()[1].split()
    assert entry[3:9] == ["correct", "band_gap", "1.23456789", "eV", "±", uncertainty]
    assert entry[10:14] == ["GaAs", "cr", "1234.5678", "meV"]


def test_decisions_on_a_value_carry_its_uncertainty_history_shows_it_and_a_correction_keeps_it(run, tmp_path):
    csv_text = "id,formula,gap,dgap,S\nz,ZnO,3.37(2),,42.4(3)\ns,Si,1.12,,18.8\nc,CdS,42.4(3),,64.9\n"  # 42.4 eV
    assert cli_import(run, tmp_path, "unc", csv_text, UNCERTAIN).exit_code == 0
    corrected = run("review", "correct", "unc:z", "-p", "band_gap", "--value", "3.47", "--reason", "typo")
    assert corrected.exit_code == 0 and "band_gap = 3.47 eV ± 0.02 eV" in corrected.stdout
    assert run("review", "flag", "unc:z", "-p", "entropy", "--reason", "recheck").exit_code == 0
    assert run("review", "flag", "unc:s", "-p", "band_gap", "--reason", "recheck").exit_code == 0  # none stated
    readmit = ["review", "readmit", quarantine_id_of(run, "c:band_gap"), "--value", "4.24", "--reason", "4.24"]
    assert run(*readmit).exit_code == 0  # stored ± 0.3, as its cell says
    logged = rows(run, "SELECT record_id, property, action, value, uncertainty FROM curation_log ORDER BY entry_id")
    assert logged == [
        ["unc:z", "band_gap", "correct", 3.47, pytest.approx(0.02)],
        ["unc:z", "entropy", "flag", None, pytest.approx(0.3)],
        ["unc:s", "band_gap", "flag", None, None],
        ["unc:c", "band_gap", "readmit", 4.24, pytest.approx(0.3)],
    ]
    header, correct, flag = run("history", "unc:z").stdout.splitlines()
    assert header.split()[7:10] == ["value", "unit", "uncertainty"]
    made_on = ["ZnO", "cr", "3.37", "eV"]
    assert correct.split()[3:] == ["correct", "band_gap", "3.47", "eV", "±", "0.02", "eV", *made_on, "typo"]
    assert flag.split()[3:] == ["flag", "entropy", "±", "0.3", "J/(mol*K)", "ZnO", "cr", "42.4", "J/(mol*K)", "recheck"]
    readmitted = run("history", "unc:c").stdout.splitlines()[1]
    assert readmitted.split()[3:10] == ["readmit", "band_gap", "4.24", "eV", "±", "0.3", "eV"]
    out = tmp_path / "gaps.csv"
    assert run("export", "gaps", "--out", str(out)).exit_code == 0
    exported = pd.read_csv(out).set_index("record_id")[["value", "uncertainty", "raw_value"]]
    assert exported.loc["unc:z"].tolist() == [3.47, pytest.approx(0.02), 3.37]  # the corrected value, ± as stored


def test_validate_lists_every_stale_decision_that_an_imports_short_list_leaves_out(run, tmp_path):
    ids = [f"K-{n}" for n in range(1, 13)]
    lab_file(tmp_path, run, "id,formula,gap,T,dHf\n" + "".join(f"{i},GaN,3.4,300,\n" for i in ids))
    for record in ids:
        assert run("review", "accept", f"lab:{record}", "-p", "band_gap", "--reason", "checked").exit_code == 0
    again = lab_file(tmp_path, run, "id,formula,gap,T,dHf\n" + "".join(f"{i},GaN,3.5,300,\n" for i in ids))
    warned = again.stderr.splitlines()
    assert len(warned) == 11 and warned[-1] == (
        "warning: ... and 2 more review decisions: `matreg validate` lists them"
    )
    validated = run("validate").stdout
    assert "note: 12 review decision(s) were made on what has changed since" in validated
    listed = [line for line in validated.splitlines() if "accept lab:K-" in line]
    assert sorted(line.split("accept ")[1].split()[0] for line in listed) == sorted(f"lab:{i}" for i in ids)
