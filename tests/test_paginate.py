"""Paginators read a source's total as a count only when it is one; next links are followed on a base URL."""

from __future__ import annotations

import pytest

from matreg.errors import SourceError
from matreg.paginate import HttpRequest, NextLinkPaginator, OffsetPaginator, PageNumberPaginator

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


OQMD_NEXT = "http://oqmd.org/oqmdapi/formationenergy?limit=2&offset=2"


@pytest.mark.parametrize(
    ("base_url", "link", "followed"),
    [
        ("http://127.0.0.1:8000/oqmdapi/", OQMD_NEXT, "http://127.0.0.1:8000/oqmdapi/formationenergy?limit=2&offset=2"),
        ("https://m.org/mirror/oqmdapi", OQMD_NEXT, "https://m.org/mirror/oqmdapi/formationenergy?limit=2&offset=2"),
        ("https://m.org/api/", OQMD_NEXT, "https://m.org/api/formationenergy?limit=2&offset=2"),
        (
            "https://m.org/mirror/oqmdapi/",
            "/oqmdapi/formationenergy?offset=2",
            "https://m.org/mirror/oqmdapi/formationenergy?offset=2",
        ),
        (
            "https://m.org/api/",
            "https://m.org/api/formationenergy?offset=2",
            "https://m.org/api/formationenergy?offset=2",
        ),
        ("https://m.org/api/", "?offset=2", "https://m.org/api/formationenergy?offset=2"),
    ],
    ids=["unprefixed base", "base under a prefix", "base at another path", "from the root", "under the base", "query"],
)
def test_a_next_link_is_followed_below_its_api_root_on_the_base_url(base_url, link, followed):
    paginator = NextLinkPaginator(base_url=base_url, link_root="/oqmdapi/")
    page = HttpRequest("GET", base_url.rstrip("/") + "/formationenergy", {"limit": 2})
    assert paginator.next_request(page, {"links": {"next": link}}, n_records=2).url == followed


def test_a_next_link_outside_the_base_and_the_api_root_is_refused():
    paginator = NextLinkPaginator(base_url="https://m.org/mirror/oqmdapi/", link_root="/oqmdapi/")
    page = HttpRequest("GET", "https://m.org/mirror/oqmdapi/formationenergy")
    with pytest.raises(SourceError, match="next link 'https://oqmd.org/other/formationenergy' is neither under"):
        paginator.next_request(page, {"links": {"next": "https://oqmd.org/other/formationenergy"}}, n_records=2)
