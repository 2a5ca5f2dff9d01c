"""kill -9 in the middle of a fetch, then --resume: no record lost, none duplicated."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import janaf_route
from replay import ReplayServer

from matreg.store import Store

IDS = ["H-064", "C-095", "Al-001", "O-029", "N-023"]


@pytest.mark.parametrize(("commit_every", "committed"), [(["--commit-every", "1"], 3), ([], 0)])
def test_kill_9_while_reading_the_fourth_page_then_resume(tmp_path, commit_every, committed):
    """Pages are committed every --commit-every records (default 1,000): a kill loses only pages read since."""
    release = threading.Event()

    def stalling_route(request):
        if request.path.endswith("O-029.txt"):
            release.wait(30)  # the fourth table hangs until the killed process is gone
        return janaf_route(request)

    store_dir, catalog = tmp_path / "store", tmp_path / "catalog.yaml"
    with ReplayServer(stalling_route, prefix="/tables/") as server:
        from conftest import write_catalog

        write_catalog(catalog, server.url, cache=False)
        command = [
            sys.executable,
            "-m",
            "matreg",
            "fetch",
            "janaf",
            *IDS,
            "--page-size",
            "1",
            "--store",
            str(store_dir),
            "--catalog",
            str(catalog),
            "--no-progress",
        ]
        first_run = command + commit_every
        process = subprocess.Popen(first_run, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        store = Store(store_dir)
        deadline = time.time() + 60
        while time.time() < deadline and not server.hits("/tables/O-029.txt"):
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        release.set()
        assert store.staged_pages() == committed and not store.exists()  # staged pages are invisible until the end

        resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=120)
        if not committed:
            assert resumed.returncode == 1 and "fetch without --resume" in resumed.stderr
            resumed = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
    materials = store.table("materials")
    assert sorted(materials["source_id"]) == sorted(IDS)
    assert len(store.table("properties")) == 7 * len(IDS)
    assert server.hits("/tables/H-064.txt") == (1 if committed else 2)  # committed pages were not fetched again
    assert store.table("fetch_runs")["status"].tolist() == ["complete"]
