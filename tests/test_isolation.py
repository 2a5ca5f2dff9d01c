"""The tests keep apart from each other: what one test sets for the whole process is undone at its end."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import utf8_child

PROBES = Path(__file__).parent / "probes"


def test_a_command_run_in_process_leaves_the_next_test_the_process_and_temp_folder_as_before(tmp_path):
    """A fetch run in the test's process (the `run` fixture) froze every object alive then out of the cyclic GC's
    reach, for the rest of the session: a DuckDB connection an earlier test left in a reference cycle (a query that
    failed as it spilled) was never closed, its temp file (duckdb_temp_<pid>_0_owner) left in $TMPDIR. Its SIGTERM
    handler and its echo of the library's warnings on stderr stayed too. Now the probe's last test finds the process as
    before the first, and the temp folder is left empty."""
    temp = tmp_path / "temp"
    temp.mkdir()
    probe = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    session = subprocess.run(
        [*probe, f"--basetemp={tmp_path / 'base'}", str(PROBES / "after_an_in_process_run.py")],
        cwd=Path(__file__).parent, capture_output=True, **utf8_child({"TMPDIR": str(temp)}),
    )  # fmt: skip
    assert [path.name for path in temp.iterdir()] == []
    assert "3 passed" in session.stdout, session.stdout


def test_a_childs_output_is_read_as_utf8_whatever_the_locale():
    """Under an ASCII locale (`LC_ALL=C PYTHONUTF8=0`) a Python child wrote '…' and 'Å' as ASCII (UnicodeEncodeError,
    exit 1), and its output was read as ASCII where the tests ran in that locale: read and written in UTF-8 now."""
    ascii_locale = {"LC_ALL": "C", "PYTHONUTF8": "0"}
    printing = [sys.executable, "-c", "print('\\u2026 \\u00c5')"]  # (typed in ASCII: the locale reads it too)
    shown = subprocess.run(printing, capture_output=True, **utf8_child(ascii_locale))
    assert (shown.returncode, shown.stdout, shown.stderr) == (0, "… Å\n", "")


def test_the_libraries_caches_and_settings_are_the_sessions_not_the_users():
    """pint's parsed unit definitions (matreg.units builds its registry at import) and matplotlib's font list went
    into the user's ~/.cache, and matplotlib's settings came from ~/.config: the session's own temp folder now."""
    import matplotlib

    from matreg.units import ureg

    folders = [ureg.cache_folder, Path(matplotlib.get_cachedir()), Path(matplotlib.get_configdir())]
    users = [folder for folder in folders if folder.is_relative_to(Path.home())]
    assert (users, all(folder.is_relative_to(tempfile.gettempdir()) for folder in folders)) == ([], True), folders


@pytest.mark.as_a_user
def test_a_test_marked_as_a_user_is_refused_what_a_read_only_file_refuses(tmp_path):
    """The tests of what a read-only file or folder refuses were skipped as root (which writes into them), and CI
    runs as root: marked `as_a_user`, they run as user 1000, in a pytest of their own, where root runs them."""
    read_only = tmp_path / "read-only.txt"
    read_only.write_text("kept", encoding="utf-8")
    read_only.chmod(0o444)
    with pytest.raises(PermissionError):
        read_only.write_text("overwritten", encoding="utf-8")
    assert os.geteuid() != 0 and read_only.read_text(encoding="utf-8") == "kept"
