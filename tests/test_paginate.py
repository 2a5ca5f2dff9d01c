"""Paginators read a source's total as a count only when it is one; next links are followed on a base URL."""

from __future__ import annotations

import pytest

from matreg.errors import SourceError
from matreg.paginate import HttpRequest, NextLinkPaginator, OffsetPaginator, PageNumberPaginator, count_of

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


@pytest.mark.parametrize(
    ("link", "named"),
    [({"href": 12}, "links.next.href is 12"), (["http://x"], "links.next is ['http://x']"), (7.5, "links.next is 7.5")],
)
def test_a_next_link_that_is_no_text_fails_the_run_naming_it(link, named):
    # urljoin raised "TypeError: Cannot mix str and non-str arguments": a traceback, the run lost
    page = HttpRequest("GET", "https://m.org/v1/structures")
    with pytest.raises(SourceError) as error:
        NextLinkPaginator().next_request(page, {"links": {"next": link}}, n_records=2)
    assert str(error.value) == f"the page's next link is no URL: {named}"


@pytest.mark.parametrize(
    "total",
    [1e300, 10**19, 2**63, 10**400, "9" * 30, "9" * 5000, float("inf")],
    ids=["1e300", "10**19", "2**63", "10**400", "30 digits", "5000 digits", "inf"],
)
def test_a_total_beyond_what_a_count_holds_is_no_count(total):
    # a count past an int64 failed the run's record (pyarrow's OverflowError), 10**400 as it became a float
    paginator = OffsetPaginator(limit=2, total_path=("meta", "total"))
    second = HttpRequest("GET", "http://127.0.0.1/x", {"limit": 2, "offset": 2})
    assert count_of(total) is None
    assert paginator.next_request(second, {"meta": {"total": total}}, n_records=2).params["offset"] == 4


@pytest.mark.parametrize("total", [2**63 - 1, float(2**62), str(2**63 - 1)])
def test_the_largest_counts_are_counts(total):
    assert count_of(total) == int(total)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://m.org/v1/structures", "GET https://m.org/v1/structures?page_limit=2"),
        ("https://m.org/v1/structures?filter=x", "GET https://m.org/v1/structures?filter=x&page_limit=2"),
    ],
)
def test_a_request_is_described_as_the_url_it_sends(url, shown):
    assert HttpRequest("GET", url, {"page_limit": 2}).describe() == shown
