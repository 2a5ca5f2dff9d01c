"""A lab's project folder (lab files, structure files, mapping, the store) moved, copied or written by a group:
imports, readmits and `--moved-from` read at the same place, through the command line."""

import json
import os
import shutil
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

CUBR = Structure.from_spacegroup("F-43m", Lattice.cubic(5.69), ["Cu", "Br"], [[0, 0, 0], [0.25, 0.25, 0.25]])
NACL = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
HEADER = "sample,formula,gap,unit,cif\n"
ROWS = {
    "cubr-1": "cubr-1,CuBr,3.08,eV,CuBr.cif\n",
    "cubr-2": "cubr-2,CuBr,2.94,elektronvolt,CuBr.cif\n",  # quarantined: a unit to readmit
    "gan-1": "gan-1,GaN,3.4,eV,\n",
    "zno-1": "zno-1,ZnO,3.3,eV,\n",
}
MAPPING = (
    "dataset: our-gaps\nformula_column: formula\nid_column: sample\nstructure_column: cif\nprovenance: experimental\n"
    "method: optical absorption\ncitation: our notebook\nlicense: CC-BY-4.0\n"
    "columns:\n  gap: {property: band_gap, unit_field: unit}\n"
)


def make_project(folder: Path, lab: str = "lab") -> Path:
    """A project folder: `lab`/ with gaps.csv, the CIF its rows name and the mapping; the store will be `store`."""
    (folder / lab).mkdir(parents=True)
    (folder / lab / "CuBr.cif").write_text(str(CifWriter(CUBR)), encoding="utf-8")
    write_rows(folder / lab / "gaps.csv", list(ROWS))
    (folder / lab / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    return folder


def write_rows(path: Path, samples: list[str]) -> None:
    path.write_text(HEADER + "".join(ROWS[sample] for sample in samples), encoding="utf-8")


def in_project(run, project: Path, monkeypatch):
    """`run` in the project folder (its working directory), on its store."""
    monkeypatch.chdir(project)
    monkeypatch.setenv("MATREG_STORE", str(project / "store"))
    return run


def import_lab(run, lab: str = "lab", *options: str):
    return run("import", f"{lab}/gaps.csv", "-m", f"{lab}/mapping.yaml", *options)


def records(run, *options: str) -> list[str]:
    shown = run("sql", "select record_id from materials order by 1", "--format", "json", *options)
    return [row["record_id"] for row in json.loads(shown.stdout)]


def readmit_cubr_2(run):
    """Readmit the quarantined row cubr-2 with its unit corrected (its CIF is read beside the imported file)."""
    found = run("sql", "select quarantine_id from open_quarantine where item = 'cubr-2'", "--format", "json")
    (row,) = json.loads(found.stdout)
    return run("review", "readmit", row["quarantine_id"], "--unit", "eV", "--reason", "'elektronvolt' is eV")


def test_a_project_folder_moved_whole_withdraws_the_rows_deleted_from_its_file(run, tmp_path, monkeypatch):
    """Its imports recorded the file's absolute path only: moved, the file's next import was its first at a new place,
    which withdrew nothing ('2 written'), zno-1 still shown."""
    old = make_project(tmp_path / "old")
    assert import_lab(in_project(run, old, monkeypatch)).exit_code == 0
    project = old.rename(tmp_path / "moved proj ü")
    run = in_project(run, project, monkeypatch)
    write_rows(project / "lab" / "gaps.csv", ["cubr-1", "cubr-2", "gan-1"])  # zno-1 deleted
    again = import_lab(run)
    assert again.exit_code == 0 and "2 written, 1 withdrawn (no longer in the file)" in again.stdout
    assert records(run) == ["our-gaps:cubr-1", "our-gaps:gan-1"]
    relative = run("sql", "select distinct relative_path from fetch_runs where source = 'our-gaps'", "--format", "csv")
    assert relative.stdout.splitlines() == ["relative_path", "lab/gaps.csv"]
    store = Path(shutil.move(project / "store", tmp_path / "stores" / "ours"))  # then the store alone: by its path
    write_rows(project / "lab" / "gaps.csv", ["cubr-1", "cubr-2"])  # gan-1 deleted
    alone = import_lab(run, "lab", "--store", str(store))
    assert alone.exit_code == 0 and "1 withdrawn" in alone.stdout
    assert records(run, "--store", str(store)) == ["our-gaps:cubr-1"]


def test_a_readmit_in_a_moved_project_folder_reads_the_structure_files_where_it_is_now(run, tmp_path, monkeypatch):
    """It read them beside the file's absolute path as imported: 'No such file or directory: .../old/lab/CuBr.cif'."""
    old = make_project(tmp_path / "old")
    assert import_lab(in_project(run, old, monkeypatch)).exit_code == 0
    run = in_project(run, old.rename(tmp_path / "moved"), monkeypatch)
    readmitted = readmit_cubr_2(run)
    assert readmitted.exit_code == 0, readmitted.output
    nsites = run("sql", "select nsites from materials where record_id = 'our-gaps:cubr-2'", "--format", "json")
    assert json.loads(nsites.stdout) == [{"nsites": 8}]


def copied_project(run, tmp_path, monkeypatch):
    """`run` in a copy of an imported project folder, whose original's CIF holds another structure since."""
    original = make_project(tmp_path / "original")
    assert import_lab(in_project(run, original, monkeypatch)).exit_code == 0
    copy = Path(shutil.copytree(original, tmp_path / "copy"))
    (original / "lab" / "CuBr.cif").write_text(str(CifWriter(NACL)), encoding="utf-8")
    return in_project(run, copy, monkeypatch), copy


def test_a_copy_of_a_project_folder_imports_its_own_file(run, tmp_path, monkeypatch):
    """It was refused, 'gaps.csv of our-gaps was imported from .../original/lab/gaps.csv, which is still there'
    (exit 2): the copy's store named the original's file."""
    run, copy = copied_project(run, tmp_path, monkeypatch)
    write_rows(copy / "lab" / "gaps.csv", ["cubr-1", "cubr-2", "zno-1"])  # gan-1 deleted
    imported = import_lab(run)
    assert imported.exit_code == 0, imported.output
    assert "1 withdrawn" in imported.stdout
    assert records(run) == ["our-gaps:cubr-1", "our-gaps:zno-1"]


def test_a_readmit_in_a_copy_of_a_project_folder_reads_its_own_structure_files(run, tmp_path, monkeypatch):
    """It read the original folder's CIF: 'the structure is NaCl, not CuBr'."""
    run, _ = copied_project(run, tmp_path, monkeypatch)
    readmitted = readmit_cubr_2(run)
    assert readmitted.exit_code == 0, readmitted.output
    assert records(run) == ["our-gaps:cubr-1", "our-gaps:cubr-2", "our-gaps:gan-1", "our-gaps:zno-1"]


def test_a_file_moved_within_a_moved_project_is_said_moved_from_its_path_there(run, tmp_path, monkeypatch):
    """`--moved-from incoming/gaps.csv` in the moved folder was refused, 'never imported from .../moved/incoming/...;
    it was imported from .../old/incoming/gaps.csv'."""
    old = make_project(tmp_path / "old", "incoming")
    assert import_lab(in_project(run, old, monkeypatch), "incoming").exit_code == 0
    project = old.rename(tmp_path / "moved")
    run = in_project(run, project, monkeypatch)
    (project / "incoming").rename(project / "checked")
    write_rows(project / "checked" / "gaps.csv", ["cubr-1", "cubr-2", "gan-1"])  # zno-1 deleted as it moved
    moved = import_lab(run, "checked", "--moved-from", "incoming/gaps.csv")
    assert moved.exit_code == 0, moved.output
    assert "1 withdrawn" in moved.stdout
    assert records(run) == ["our-gaps:cubr-1", "our-gaps:gan-1"]


def store_moved_alone_beside_another_file(run, tmp_path, monkeypatch):
    """`run` in another project folder, with a lab/gaps.csv of its own (other rows, a CIF of another structure), into
    which an imported project's store was moved alone, its lab files left where they were."""
    original = make_project(tmp_path / "original")
    assert import_lab(in_project(run, original, monkeypatch)).exit_code == 0
    other = make_project(tmp_path / "other")
    write_rows(other / "lab" / "gaps.csv", ["gan-1"])
    (other / "lab" / "CuBr.cif").write_text(str(CifWriter(NACL)), encoding="utf-8")
    shutil.move(original / "store", other / "store")
    return in_project(run, other, monkeypatch), original


def test_another_file_at_the_same_path_from_a_store_moved_alone_is_not_its_place(run, tmp_path, monkeypatch):
    """The other folder's file, at the path the original's had from the store's folder, was taken for the original:
    imported, it withdrew the original's records cubr-1 and zno-1 ('2 withdrawn (no longer in the file)')."""
    run, original = store_moved_alone_beside_another_file(run, tmp_path, monkeypatch)
    refused = import_lab(run)
    said = f"'gaps.csv' of our-gaps was imported from {original / 'lab' / 'gaps.csv'}, which is still there"
    assert refused.exit_code == 2 and said in refused.stderr
    assert records(run) == ["our-gaps:cubr-1", "our-gaps:gan-1", "our-gaps:zno-1"]
    replacing = import_lab(run, "lab", "--as", "gaps.csv")  # its values of gan-1 replace the first's; none withdrawn
    assert replacing.exit_code == 0 and "withdrawn" not in replacing.stdout
    assert records(run) == ["our-gaps:cubr-1", "our-gaps:gan-1", "our-gaps:zno-1"]


def test_a_readmit_in_a_store_moved_alone_reads_the_structure_files_beside_its_file(run, tmp_path, monkeypatch):
    """It read the CIF at the file's path from the store's folder, another folder's: 'the structure is NaCl, not
    CuBr'."""
    run, _ = store_moved_alone_beside_another_file(run, tmp_path, monkeypatch)
    readmitted = readmit_cubr_2(run)
    assert readmitted.exit_code == 0, readmitted.output
    nsites = run("sql", "select nsites from materials where record_id = 'our-gaps:cubr-2'", "--format", "json")
    assert json.loads(nsites.stdout) == [{"nsites": 8}]


def test_a_copy_of_a_project_folder_whose_store_is_a_link_shares_its_store_and_not_its_file(run, tmp_path, monkeypatch):
    """Its store folder a link to another disk, a project folder copied whole (`cp -a`) links to the same store: the
    copy's file was taken for the original's, its import withdrawing gan-1, which the original still gives."""
    original = make_project(tmp_path / "original")
    (tmp_path / "disk" / "ours").mkdir(parents=True)
    (original / "store").symlink_to(tmp_path / "disk" / "ours", target_is_directory=True)
    assert import_lab(in_project(run, original, monkeypatch)).exit_code == 0
    copy = Path(shutil.copytree(original, tmp_path / "copy", symlinks=True))
    run = in_project(run, copy, monkeypatch)
    write_rows(copy / "lab" / "gaps.csv", ["cubr-1", "cubr-2", "zno-1"])  # gan-1 deleted from the copy's
    refused = import_lab(run)
    said = f"'gaps.csv' of our-gaps was imported from {original / 'lab' / 'gaps.csv'}, which is still there"
    assert refused.exit_code == 2 and said in refused.stderr
    assert records(run) == ["our-gaps:cubr-1", "our-gaps:gan-1", "our-gaps:zno-1"]


@pytest.fixture
def group_umask():
    """The process's umask 002, as a group sharing a store writes (README: The store)."""
    before = os.umask(0o002)
    yield
    os.umask(before)


def test_the_http_cache_takes_the_umask_of_the_process_that_makes_it(run, tmp_path, group_umask):
    """SQLite made it rw-r--r-- whatever the umask: the group's other stewards could not write it, and their fetches
    with --cache were refused ('the HTTP cache could not be written')."""
    assert run("fetch", "janaf", "H-064", "--cache", "--no-progress").exit_code == 0
    store = Path(os.environ["MATREG_STORE"])
    assert (store / "http_cache.sqlite").stat().st_mode & 0o777 == 0o664
    assert (store / "format").stat().st_mode & 0o777 == 0o664


@pytest.mark.as_a_user
def test_a_read_only_store_is_read_and_its_writes_are_refused_naming_it(run, tmp_path, monkeypatch):
    """As on a shared read-only mount. A review, an import and a fetch printed Python's '[Errno 13] Permission denied:
    .../.curation.lock' (the store's lock files), where other writes name the store."""
    project = make_project(tmp_path / "project")
    run = in_project(run, project, monkeypatch)
    assert import_lab(run).exit_code == 0
    assert run("fetch", "janaf", "H-064", "--no-cache", "--no-progress").exit_code == 0
    store = project / "store"
    files = sorted(store.rglob("*"))
    for path in [store, *files]:
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        status = run("status")
        assert status.exit_code == 0 and "quarantine: 1 rows open" in status.stdout
        assert run("export", "gaps", "--out", str(tmp_path / "gaps.csv")).exit_code == 0
        assert records(run) == ["janaf:H-064", "our-gaps:cubr-1", "our-gaps:gan-1", "our-gaps:zno-1"]
        writes = [
            ("review", "accept", "our-gaps:gan-1", "--reason", "checked"),
            ("import", "lab/gaps.csv", "-m", "lab/mapping.yaml"),
            ("fetch", "janaf", "C-095", "--no-cache", "--no-progress"),
        ]
        for write in writes:
            refused = run(*write)
            said = f"error: cannot write {store}: Permission denied (EACCES)\n"
            assert (refused.exit_code, refused.stderr) == (1, said), write
    finally:
        for path in [store, *files]:
            path.chmod(path.stat().st_mode | 0o200)
    assert sorted(store.rglob("*")) == files
