"""Paginators read a source's total as a count only when it is one."""

from __future__ import annotations

import pytest

from matreg.paginate import HttpRequest, OffsetPaginator, PageNumberPaginator

BODIES = {
    "no count": {"meta": {"total": "many"}},
    "negative": {"meta": {"total": -1}},
    "count": {"meta": {"total": "4"}},
    "superscript": {"meta": {"total": "²"}},  # str.isdigit() says yes, int() refuses
}


@pytest.mark.parametrize(
    ("said", "follows"), [("no count", True), ("negative", True), ("count", False), ("superscript", True)]
)
def test_offset_pages_stop_at_a_total_only_when_it_is_a_count(said, follows):
    paginator = OffsetPaginator(limit=2, total_path=("meta", "total"))
    second = HttpRequest("GET", "http://127.0.0.1/x", {"limit": 2, "offset": 2})
    following = paginator.next_request(second, BODIES[said], n_records=2)
    assert (following.params["offset"] if following else None) == (4 if follows else None)


@pytest.mark.parametrize(("said", "follows"), [("no count", True), ("negative", True), ("count", False)])
def test_numbered_pages_stop_at_a_total_only_when_it_is_a_count(said, follows):
    paginator = PageNumberPaginator(size=2, total_path=("meta", "total"))
    following = paginator.next_request(HttpRequest("GET", "http://127.0.0.1/x", page=2), BODIES[said], n_records=2)
    assert (following.page if following else None) == (3 if follows else None)
