"""Run by test_isolation.py as a pytest session of its own, in this order: the first two tests run matreg's CLI in
the test's process (the `filled` fixture: a fetch and an import; a query that fails as it spills), the last finds the
process as it was before them."""

import gc
import logging
import signal

from conftest import SPILLING, no_space_to_spill

BEFORE = {  # at collection, before any test ran
    "gc threshold": gc.get_threshold(),
    "SIGTERM handler": signal.getsignal(signal.SIGTERM),
    "matreg logger's handlers": logging.getLogger("matreg").handlers[:],
}


def test_a_query_that_fails_as_it_spills(filled, monkeypatch):
    no_space_to_spill(monkeypatch)
    assert filled("sql", SPILLING).exit_code == 75


def test_a_fetch(run):
    assert run("fetch", "janaf", "H-064", "--no-progress").exit_code == 0


def test_the_process_is_as_before_the_commands():
    after = {
        "gc threshold": gc.get_threshold(),
        "SIGTERM handler": signal.getsignal(signal.SIGTERM),
        "matreg logger's handlers": logging.getLogger("matreg").handlers,
    }
    assert (gc.get_freeze_count(), after) == (0, BEFORE)
