"""The HTTP client: secrets stay out of the cache and error messages; proxies and CA bundle from the environment; a
source is read only where its base URL is (a server, or local files); an answer is read up to a size."""

import contextlib
import errno
import gc
import gzip
import itertools
import json
import logging
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
import requests_cache
from replay import ReplayServer, Reply

from matreg.catalog import HttpSettings
from matreg.errors import SourceError, SourceUnavailable, WriteRefused
from matreg.http import (
    HttpClient,
    public_url,
    redact_params,
    redact_text,
    redact_url,
    shorten_url,
    split_credentials,
)

SECRET = "sk-live-0123456789abcdef"


@pytest.mark.parametrize("header", ["X-API-KEY", "x-api-key", "Authorization"])
def test_the_key_is_sent_but_never_cached_whatever_the_header_spelling(tmp_path, janaf_server, header):
    cache = tmp_path / "cache.sqlite"
    settings = HttpSettings(cache=True, retries=0)
    client = HttpClient(settings, cache_path=cache, base_url=janaf_server.url, auth_header=header, api_key=SECRET)
    assert client.get_text(janaf_server.url + "H-064.txt").startswith("Water (H2O)")
    client.close()
    assert janaf_server.requests[0].headers[header] == SECRET
    assert SECRET.encode() not in cache.read_bytes()


def test_error_messages_never_carry_the_key(janaf_server):
    client = HttpClient(HttpSettings(retries=0), base_url=janaf_server.url, auth_header="X-API-KEY", api_key=SECRET)
    janaf_server.fail("/tables/H-064.txt", 500)
    with pytest.raises(SourceError) as error:
        client.get(janaf_server.url + f"H-064.txt?api_key={SECRET}&page=2")
    message = str(error.value)
    assert SECRET not in message and "api_key=***" in message


def test_a_body_that_is_not_json_is_a_clear_error_without_the_key(janaf_server):
    client = HttpClient(HttpSettings(retries=0), base_url=janaf_server.url, auth_header="X-API-KEY", api_key=SECRET)
    with pytest.raises(SourceError, match=r"not JSON from .*H-064.txt.*'Water \(H2O\)") as error:
        client.get_json(janaf_server.url + f"H-064.txt?api_key={SECRET}")
    assert SECRET not in str(error.value)


@pytest.mark.parametrize("charset", ["latin-1", "unknown-8bit"])
def test_a_non_json_page_in_any_declared_charset_is_a_clear_error(charset):
    reply = Reply(200, "<html>Überlastet</html>".encode("latin-1"), content_type=f"text/html; charset={charset}")
    with ReplayServer(lambda request: reply) as server, pytest.raises(SourceError, match="not JSON from .*<html>"):
        HttpClient(HttpSettings(retries=0)).get_json(server.url + "page")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_json_answers_decode_with_or_without_a_byte_order_mark(encoding):
    body = '{"data": [1.5, "Å"]}'.encode(encoding)
    with ReplayServer(lambda request: Reply(200, body)) as server:
        assert HttpClient(HttpSettings(retries=0)).get_json(server.url + "page") == {"data": [1.5, "Å"]}


@pytest.mark.parametrize(
    ("status", "body", "content_type", "message"),
    [
        (
            422,
            b'{"detail": [{"loc": ["query", "_limit"], "msg": "value is not a valid integer"}]}',
            "application/json",
            "HTTP 422: value is not a valid integer (from {url})",
        ),  # FastAPI, as NOMAD and MP answer
        (401, b'{"detail": "Not authenticated"}', "application/json", "HTTP 401: Not authenticated (from {url})"),
        (
            503,
            b"Service Unavailable: try later",
            "text/plain",
            "HTTP 503: Service Unavailable: try later (from {url}, after 1 retry)",
        ),
        (
            500,
            b"<html><body>Internal Server Error</body></html>",
            "text/html",
            "HTTP 500 (from {url}, after 1 retry)",
        ),
        (
            500,
            b"disk full",
            "text/plain; charset=x-no-such-charset",
            "HTTP 500: disk full (from {url}, after 1 retry)",
        ),  # a charset Python does not know: read as UTF-8
    ],
)
def test_an_error_answer_says_what_the_source_said(status, body, content_type, message):
    with ReplayServer(lambda request: Reply(status, body, content_type)) as server:
        with pytest.raises(SourceError) as error:
            HttpClient(HttpSettings(retries=1, backoff_s=0)).get(server.url + "page")
    assert str(error.value) == message.format(url=server.url + "page")


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_a_source_still_failing_after_the_retries_is_unavailable_for_now(status):
    """A status that is retried, still answered after the last retry, is a source unavailable for now (exit 75: try
    again later), not an error of the request."""
    with ReplayServer(lambda request: Reply(status, b"busy", "text/plain")) as server:
        with pytest.raises(SourceUnavailable, match=f"^HTTP {status}: busy .*after 1 retry"):
            HttpClient(HttpSettings(retries=1, backoff_s=0)).get(server.url + "page")


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_source_refusing_the_request_is_not_unavailable(status):
    """A bad filter (400), a bad key (401, 403) or an unknown item (404) fails the same way whenever it is tried."""
    with ReplayServer(lambda request: Reply(status, b"no", "text/plain")) as server:
        with pytest.raises(SourceError, match=f"^HTTP {status}") as error:
            HttpClient(HttpSettings(retries=1, backoff_s=0)).get(server.url + "page")
    assert not isinstance(error.value, SourceUnavailable)


def test_a_source_that_refuses_connections_or_answers_too_late_is_unavailable_for_now():
    client = HttpClient(HttpSettings(retries=0, timeout_s=0.2))
    with socket.create_server(("127.0.0.1", 0)) as listener:  # (accepts connections, never answers)
        silent = f"http://127.0.0.1:{listener.getsockname()[1]}/page"
        with pytest.raises(SourceUnavailable, match=f"^GET {silent} failed: .*Read timed out"):
            client.get(silent)
    refusing = silent  # (its port refuses connections once closed)
    with pytest.raises(SourceUnavailable, match=f"^GET {refusing} failed: .*Connection refused"):
        client.get(refusing)


def test_an_error_answer_to_a_long_url_says_the_reason_first_and_cuts_the_query():
    reason = b'{"errors": [{"status": "400", "detail": "Unable to parse filter"}]}'
    long_filter = " OR ".join(f'id="mp-{i}"' for i in range(150))  # ~1,800 characters once URL-encoded
    with ReplayServer(lambda request: Reply(400, reason)) as server, pytest.raises(SourceError) as error:
        client = HttpClient(HttpSettings(retries=0))
        client.get(server.url + "v1/structures", {"api_key": SECRET, "filter": long_filter})
    message = str(error.value)  # (the key redacted before the query is cut: no part of it is left)
    url = f"{server.url}v1/structures?api_key=***&filter=id%3D%22mp-0%22+OR+id%3D%22mp-1"
    assert message.startswith(f"HTTP 400: Unable to parse filter (from {url}")
    assert message.endswith("%22mp-148%22+OR+id%3D%22mp-149%22)") and message.count("...") == 1  # (its middle cut)
    assert len(message) < 300 and SECRET not in message


def test_a_url_is_shown_without_its_user_password_and_key():
    assert public_url(f"https://u:{SECRET}@h/x/?api_key={SECRET}&a=1") == "https://h/x/?api_key=***&a=1"


def test_a_query_is_cut_in_its_middle_keeping_its_ends_and_a_short_url_is_left_whole():
    assert shorten_url("http://h/x/y?" + "a" * 150 + "z" * 150) == "http://h/x/y?" + "a" * 98 + "..." + "z" * 99
    assert shorten_url("http://h/x/y?" + "a" * 200) == "http://h/x/y?" + "a" * 200
    assert shorten_url("http://h/x/y?q=1") == "http://h/x/y?q=1"
    assert shorten_url("http://h/" + "p" * 300) == "http://h/" + "p" * 300  # the path is kept whole


@pytest.mark.parametrize("failures", [1, 2])
def test_retries_back_off_exponentially_from_the_first_one(failures):
    answers = [Reply(429, b'{"detail": "slow down"}')] * failures + [Reply.json({"ok": True})]
    with ReplayServer(lambda request: answers.pop(0)) as server:  # (no Retry-After: the backoff decides)
        client = HttpClient(HttpSettings(retries=3, backoff_s=0.3, jitter_s=0))
        started = time.monotonic()
        assert client.get_json(server.url + "page") == {"ok": True}
        waited = time.monotonic() - started
    assert waited >= 0.3 * (2**failures - 1)  # 0.3 s before the first retry (urllib3 alone: none), then 0.6 s


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])  # written out: the list in matreg.http is what is tested
def test_each_status_of_a_passing_fault_is_retried(status):
    with ReplayServer(lambda request: Reply.json({"ok": True})) as server:
        server.fail("/page", status)
        assert HttpClient(HttpSettings(retries=1, backoff_s=0, jitter_s=0)).get_json(server.url + "page") == {
            "ok": True
        }
    assert [request.path for request in server.requests] == ["/page"] * 2


@pytest.mark.parametrize("status", [400, 404, 501])
def test_a_status_no_retry_mends_is_an_error_at_once(status):
    with ReplayServer(lambda request: Reply.json({"ok": True})) as server:
        server.fail("/page", status)
        with pytest.raises(SourceError, match=f"HTTP {status}"):
            HttpClient(HttpSettings(retries=1, backoff_s=0, jitter_s=0)).get_json(server.url + "page")
    assert [request.path for request in server.requests] == ["/page"]


def test_retries_keep_to_the_sources_request_rate(tmp_path):
    # urllib3 retries below requests-ratelimiter's adapter: they were spaced by the backoff (0.05 s) alone
    settings = HttpSettings(retries=3, backoff_s=0.05, jitter_s=0, rate_limit_per_s=1)
    with ReplayServer(lambda request: Reply.json({"ok": True})) as server:
        server.fail("/page", 503, 429)
        client = HttpClient(settings, cache_path=tmp_path / "cache.sqlite")
        assert client.get_json(server.url + "page") == {"ok": True}
        assert client.get_json(server.url + "page") == {"ok": True}  # from the cache: no request, no wait
        assert client.get_json(server.url + "other") == {"ok": True}
        client.close()
    assert [request.path for request in server.requests] == ["/page"] * 3 + ["/other"]
    times = [request.received_at for request in server.requests]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # one request a second, the retries too (unpaced, they came 0.05 s apart); the server notes an arrival late by
    # as much as a loaded host delays its thread: 0.9 s between two was seen under load
    assert min(gaps) >= 0.75, gaps


@pytest.fixture
def truncating_server():
    """A server that announces 1000 bytes of JSON, sends 14 and closes the connection, as a dropped link does."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
                connection.sendall(b'{"data": [1, 2')

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    listener.close()


def test_a_body_cut_short_is_a_source_error_without_the_key(truncating_server):
    client = HttpClient(HttpSettings(retries=0), base_url=truncating_server, auth_header="X-API-KEY", api_key=SECRET)
    with pytest.raises(SourceError, match="IncompleteRead") as error:
        client.get_json(truncating_server + f"page?api_key={SECRET}")
    assert SECRET not in str(error.value) and "api_key=***" in str(error.value)


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("http://EXAMPLE.org/api/x", True),  # the host in another case
        ("HTTP://example.org:80/api/x", True),  # the default port written out
        ("https://example.org/api/x", False),  # another scheme is another origin
        ("http://mirror.example.org/api/x", False),  # another host: a link the answers gave
    ],
)
def test_secrets_of_a_source_go_to_the_origin_of_its_base_url_only(url, sent):
    base, credentials = split_credentials("http://alice:S3cret@Example.org/api/")
    client = HttpClient(HttpSettings(), base_url=base, auth_header="X-API-KEY", api_key=SECRET, credentials=credentials)
    prepared = client.session.prepare_request(requests.Request("GET", url))
    assert ("Authorization" in prepared.headers) == sent and base == "http://Example.org/api/"
    assert ("X-API-KEY" in prepared.headers) == sent


@pytest.mark.parametrize("cache", [False, True])
def test_no_secret_follows_a_redirect_to_another_host_nor_lands_in_the_cache(tmp_path, cache):
    with ReplayServer(lambda request: Reply(200, b'{"ok": true}')) as elsewhere:
        target = elsewhere.url.replace("127.0.0.1", "localhost") + "page"  # another host name: another origin

        def answer(request):
            if request.path.endswith("/away"):
                return Reply(302, b"", headers={"Location": target})
            return (
                Reply(302, b"", headers={"Location": "/api/home"})
                if request.path.endswith("/here")
                else Reply(200, b'{"home": 1}')
            )

        with ReplayServer(answer) as source:
            base, credentials = split_credentials(source.url.replace("http://", "http://alice:S3cret@") + "api/")
            cached = tmp_path / "cache.sqlite" if cache else None
            client = HttpClient(
                HttpSettings(retries=0),
                cache_path=cached,
                base_url=base,
                api_key=SECRET,
                auth_header="X-API-KEY",
                credentials=credentials,
            )
            assert client.get_json(base + "away") == {"ok": True}
            assert client.get_json(base + "here") == {"home": 1}  # a redirect within the origin keeps them
            client.close()
            assert [r.headers.get("X-API-KEY") for r in source.requests] == [SECRET, SECRET, SECRET]
    (redirected,) = elsewhere.requests
    assert "X-API-KEY" not in redirected.headers and "Authorization" not in redirected.headers
    if cache:
        stored = cached.read_bytes()
        assert SECRET.encode() not in stored and b"YWxpY2U6UzNjcmV0" not in stored  # base64 of alice:S3cret


def test_a_user_and_password_in_a_url_are_redacted_however_encoded():
    text = "503 on URL http://alice:Pw0rd%40Mirror%2Fx@127.0.0.1:8000/materials/summary/?x=1"
    assert redact_text(text, ["Pw0rd@Mirror/x"]) == "503 on URL http://127.0.0.1:8000/materials/summary/?x=1"


def test_secret_looking_parameters_are_redacted():
    assert redact_params({"api_key": SECRET, "token": "t", "page": 2}) == {"api_key": "***", "token": "***", "page": 2}
    assert SECRET not in redact_url(f"https://example.org/q?x=1&access_token={SECRET}")


def test_secret_looking_parameters_of_a_url_without_its_host_are_redacted():
    # urllib3 names the path and query alone ("Max retries exceeded with url: /x?token=..."), which reached stderr and
    # fetch_runs.error (a provider's next link may carry a session token)
    text = f"Max retries exceeded with url: /v1/structures?page_limit=2&access_token={SECRET} (Caused by refused)"
    redacted = redact_text(text, [])
    assert SECRET not in redacted and "?page_limit=2&access_token=*** (Caused by refused)" in redacted


def test_a_text_naming_what_urllib_cannot_split_as_a_url_is_redacted_too():
    # "['http://x']" (a next link given as a list) failed the run's error message: urlsplit's "Invalid IPv6 URL"
    text = f"links.next is ['http://x'], ['http://h]/?token={SECRET}']"
    assert redact_text(text, []) == "links.next is ['http://x'], ['http://h]/?token=***']"


def test_requests_go_through_the_proxy_the_environment_names(janaf_server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", janaf_server.root)  # the replay server stands in for the proxy
    client = HttpClient(HttpSettings(retries=0))
    for _ in range(2):  # the proxy is looked up once per host: the second request goes through it too
        assert client.get_text("http://janaf.example.org/tables/H-064.txt").startswith("Water (H2O)")
    assert [request.raw_path for request in janaf_server.requests] == ["http://janaf.example.org/tables/H-064.txt"] * 2


def test_hosts_in_no_proxy_are_reached_directly(janaf_server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert HttpClient(HttpSettings(retries=0)).get_text(janaf_server.url + "H-064.txt").startswith("Water (H2O)")
    assert janaf_server.requests[0].raw_path == "/tables/H-064.txt"


def test_a_redirect_to_another_host_takes_that_hosts_proxy(janaf_server, monkeypatch):
    # As JARVIS' figshare download redirects to S3: the first host is reached directly (NO_PROXY), the second must
    # go through the proxy the environment names for it (the replay server stands in for the proxy).
    target = "http://files.example.org/tables/H-064.txt"
    with ReplayServer(lambda request: Reply(302, b"", headers={"Location": target})) as first_host:
        monkeypatch.setenv("HTTP_PROXY", janaf_server.root)
        monkeypatch.setenv("NO_PROXY", "localhost")  # the proxy is 127.0.0.1: only the first host is exempt
        first_url = first_host.url.replace("127.0.0.1", "localhost") + "download"
        text = HttpClient(HttpSettings(retries=0)).get_text(first_url)
    assert text.startswith("Water (H2O)")
    assert [request.raw_path for request in first_host.requests] == ["/download"]
    assert [request.raw_path for request in janaf_server.requests] == [target]


def test_credentials_in_netrc_are_never_sent(tmp_path, janaf_server, monkeypatch):
    (tmp_path / ".netrc").write_text(f"machine 127.0.0.1 login steward password {SECRET}\n", encoding="utf-8")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    HttpClient(HttpSettings(retries=0)).get_text(janaf_server.url + "H-064.txt")
    assert "Authorization" not in janaf_server.requests[0].headers


@pytest.fixture
def https_server(tmp_path):
    """A local HTTPS server whose self-signed certificate (returned with it) no default CA bundle trusts."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with ReplayServer(lambda request: Reply.json({"ok": True}), tls=context) as server:
        yield server, cert


def test_the_ca_bundle_the_environment_names_is_trusted(https_server, monkeypatch):
    server, cert = https_server
    with pytest.raises(SourceError, match="CERTIFICATE_VERIFY_FAILED") as error:
        HttpClient(HttpSettings(retries=0)).get_json(server.url + "page")
    assert not isinstance(error.value, SourceUnavailable)  # (a certificate refused stays refused)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    assert HttpClient(HttpSettings(retries=0)).get_json(server.url + "page") == {"ok": True}


def test_a_retry_after_longer_than_the_catalog_allows_waits_only_that_long(retry_waits):
    answers = iter([Reply(429, b"{}", headers={"Retry-After": "100000"}), Reply(200, b'{"ok": true}')])
    with ReplayServer(lambda request: next(answers)) as server:
        client = HttpClient(HttpSettings(retries=2, max_retry_after_s=3))
        assert client.get_json(server.url + "page") == {"ok": True}
    assert retry_waits == [3]


def test_a_page_behind_a_redirect_is_as_old_as_the_cached_answer_it_ends_at(tmp_path):
    # JARVIS' figshare link redirects to S3: the hop is never cached, the final answer is
    def route(request):
        if request.path.endswith("/download"):
            return Reply(302, b"", headers={"Location": "/file"})
        return Reply(200, b'{"v": 1}')

    with ReplayServer(route) as server:
        client = HttpClient(HttpSettings(retries=0), cache_path=tmp_path / "cache.sqlite")
        client.begin_page()
        assert client.get_json(server.url + "download") == {"v": 1} and not client.page_from_cache()
        first_read = client.page_read_at()
        client.begin_page()
        assert client.get_json(server.url + "download") == {"v": 1} and server.hits("/file") == 1
        assert client.page_from_cache() and first_read <= client.page_read_at() < datetime.now(UTC)


class Versions:
    """A page whose answer the test changes (`version`)."""

    def __init__(self) -> None:
        self.version = 1

    def __call__(self, request) -> Reply:
        return Reply.json({"v": self.version})


def read(client: HttpClient, url: str) -> tuple[dict, bool]:
    """A page's answer, and whether the HTTP cache gave it."""
    client.begin_page()
    return client.get_json(url), client.page_from_cache()


def test_a_cached_answer_is_given_until_it_expires_then_read_again(tmp_path):
    source, kept = Versions(), timedelta(seconds=600)
    with ReplayServer(source) as server:
        client = HttpClient(HttpSettings(retries=0, cache_expire_after_s=600), cache_path=tmp_path / "cache.sqlite")
        asked = datetime.now(UTC)
        assert read(client, server.url + "page") == ({"v": 1}, False)
        (cached,) = client.session.cache.filter()
        assert asked + kept <= cached.expires <= datetime.now(UTC) + kept  # kept for the catalog's time
        source.version = 2
        assert read(client, server.url + "page") == ({"v": 1}, True)  # within its 10 minutes
        client.session.cache.reset_expiration(requests_cache.EXPIRE_IMMEDIATELY)  # as when those have passed
        assert read(client, server.url + "page") == ({"v": 2}, False)
        assert read(client, server.url + "page") == ({"v": 2}, True)  # kept anew
    assert server.hits("/page") == 2


def test_answers_are_cached_for_a_day_unless_the_catalog_says_otherwise():
    assert HttpSettings().cache_expire_after_s == 24 * 3600


def test_a_refresh_reads_the_source_again_and_its_answers_replace_the_cached_ones(tmp_path):
    source, cache = Versions(), tmp_path / "cache.sqlite"
    with ReplayServer(source) as server:
        assert read(HttpClient(HttpSettings(retries=0), cache_path=cache), server.url + "page") == ({"v": 1}, False)
        source.version = 2
        refreshing = HttpClient(HttpSettings(retries=0), cache_path=cache, refresh_cache=True)
        assert read(refreshing, server.url + "page") == ({"v": 2}, False)
        assert read(HttpClient(HttpSettings(retries=0), cache_path=cache), server.url + "page") == ({"v": 2}, True)
    assert server.hits("/page") == 2


def test_a_cached_answer_is_no_older_than_the_fresh_read_it_keeps(tmp_path):
    # a page's rows are stamped with when the source gave it: the cache's copy of a read is not an earlier read of it
    with ReplayServer(Versions()) as server:
        fresh = HttpClient(HttpSettings(retries=0), cache_path=tmp_path / "cache.sqlite")
        read(fresh, server.url + "page")
        cached = HttpClient(HttpSettings(retries=0), cache_path=tmp_path / "cache.sqlite")
        assert read(cached, server.url + "page")[1]
    assert fresh.page_read_at() <= cached.page_read_at()


def test_answers_cached_for_one_version_of_the_database_are_not_given_for_another(tmp_path):
    source = Versions()
    with ReplayServer(source) as server:
        for version, expected in (("2023.11.1", ({"v": 1}, False)), ("2023.11.1", ({"v": 1}, True))):
            client = HttpClient(HttpSettings(retries=0), cache_path=tmp_path / "cache.sqlite")
            client.key_cached_answers_by(version)
            assert read(client, server.url + "page") == expected
        source.version = 2
        client = HttpClient(HttpSettings(retries=0), cache_path=tmp_path / "cache.sqlite")
        client.key_cached_answers_by("2024.12.18")
        assert read(client, server.url + "page") == ({"v": 2}, False)


SECRET_FILE_TEXT = "root:x:0:0 the steward's private notes"


@pytest.fixture
def local_file(tmp_path):
    """A local file a remote source's answer may name: file:///.../secret.txt."""
    path = tmp_path / "secret.txt"
    path.write_text(SECRET_FILE_TEXT, encoding="utf-8")
    return path.as_uri()


@pytest.mark.parametrize("read", ["get_text", "get_json"])
def test_a_remote_sources_redirect_to_a_local_file_is_refused_unread(local_file, read):
    with ReplayServer(lambda request: Reply(302, b"", headers={"Location": local_file})) as server:
        client = HttpClient(HttpSettings(retries=0), base_url=server.url)
        with pytest.raises(SourceError) as error:
            getattr(client, read)(server.url + "tables/H-064.txt")
    assert str(error.value) == (
        f"refused a redirect from {server.url}tables/H-064.txt to {local_file}: a source at {server.url} is read over "
        "http or https only"
    )


def test_a_remote_source_never_reads_a_local_file_its_answers_name(local_file, janaf_server):
    # an OPTIMADE page's links.next of file:///etc/passwd was read, and its first line shown in the error
    client = HttpClient(HttpSettings(retries=0), base_url=janaf_server.url)
    with pytest.raises(SourceError) as error:
        client.get_json(local_file)
    refused = f"refused the URL {local_file}: a source at {janaf_server.url} is read over http or https only"
    assert str(error.value) == refused
    assert SECRET_FILE_TEXT not in str(error.value)


@pytest.mark.as_a_user
@pytest.mark.parametrize(("read_only", "code"), [("file", "SQLITE_READONLY"), ("folder", "SQLITE_READONLY_DIRECTORY")])
def test_an_http_cache_that_cannot_be_written_is_refused_at_once_naming_it(tmp_path, read_only, code):
    # SQLite refused each answer saved into a read-only cache file, or into one in a read-only folder (where it
    # writes its journal), and requests-cache passed over it: nothing was cached, and nothing said
    cache = tmp_path / "cache" / "cache.sqlite"
    HttpClient(HttpSettings(retries=0), cache_path=cache).close()
    (cache if read_only == "file" else cache.parent).chmod(0o555)
    with pytest.raises(WriteRefused) as refused:
        HttpClient(HttpSettings(retries=0), cache_path=cache)
    assert str(refused.value) == (
        f"cannot write {cache}: attempt to write a readonly database ({code}): the HTTP cache could not be written: "
        "make it and its folder writable, or fetch with --no-cache"
    )
    assert (refused.value.errno, refused.value.filename) == (errno.EACCES, str(cache))


def test_an_http_cache_that_cannot_be_opened_is_an_error_naming_it(tmp_path):
    # SQLite's 'unable to open database file' (a folder where the file is to be; a new file in a read-only folder)
    # was requests-cache's traceback
    cache = tmp_path / "cache.sqlite"
    cache.mkdir()
    said = f"cannot write {cache}: unable to open database file (SQLITE_CANTOPEN): the HTTP cache could not be written"
    with pytest.raises(WriteRefused, match=f"^{re.escape(said)}"):
        HttpClient(HttpSettings(retries=0), cache_path=cache)


def test_a_local_source_is_read_from_local_files_only_and_never_cached(tmp_path, janaf_server):
    # JANAF's demo reads a file:// copy of the tables; requests-cache failed on a file's JSON answer
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "page.json").write_text('{"data": [1]}', encoding="utf-8")
    base = (tmp_path / "tables").as_uri() + "/"
    client = HttpClient(HttpSettings(retries=0), cache_path=tmp_path / "cache.sqlite", base_url=base)
    assert client.get_json(base + "page.json") == {"data": [1]}
    with pytest.raises(SourceError) as error:
        client.get_text(janaf_server.url + "H-064.txt")
    assert (
        str(error.value)
        == f"refused the URL {janaf_server.url}H-064.txt: a source at {base} is read from local files only"
    )
    assert janaf_server.requests == [] and not (tmp_path / "cache.sqlite").exists()


@pytest.mark.parametrize(("read", "body", "read_back"), [("get_text", "table", "table"), ("get_json", "[1]", [1])])
def test_a_local_file_is_closed_once_read(tmp_path, read, body, read_back):
    """A JANAF fetch from a file:// copy left a file open per table (ResourceWarning: unclosed file .../Al-001.txt):
    the answer's body was read and the answer never closed; a JSON page's alike."""
    (tmp_path / "answer").write_text(body, encoding="utf-8")
    base = tmp_path.as_uri() + "/"
    client = HttpClient(HttpSettings(retries=0), base_url=base)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        assert getattr(client, read)(base + "answer") == read_back
        gc.collect()  # (an answer left open warns as it is freed)
    unclosed = [str(warning.message) for warning in caught if warning.category is ResourceWarning]
    assert [message for message in unclosed if str(tmp_path / "answer") in message] == []  # (other tests' left aside)


BOMB = gzip.compress(b" " * (3 << 20) + b"[]")  # 3 MiB of JSON once inflated, 3 kB on the wire


@pytest.mark.parametrize(("read", "cache"), [("get_json", False), ("get_text", False), ("get_json", True)])
def test_an_answer_that_inflates_past_the_limit_fails_as_it_is_read(tmp_path, read, cache, caplog):
    """It fails as it inflates past `max_answer_mib`, and is logged (`matreg -v`) as abandoned after what it read."""
    reply = Reply(200, BOMB, headers={"Content-Encoding": "gzip"})
    with ReplayServer(lambda request: reply) as server:
        settings = HttpSettings(retries=0, max_answer_mib=1)
        client = HttpClient(settings, cache_path=tmp_path / "cache.sqlite" if cache else None)
        with pytest.raises(SourceError) as error, caplog.at_level(logging.INFO, logger="matreg"):
            getattr(client, read)(server.url + "page")
        assert str(error.value) == (
            f"answer larger than 1 MiB from {server.url}page: refused (a larger one needs the source's "
            "http.max_answer_mib in the catalog)"
        )
        (logged,) = caplog.messages
        said = re.escape(f"GET {server.url}page: HTTP 200, abandoned after ")
        read_bytes = re.fullmatch(said + r"(\d+) bytes in \d+ ms( \(HTTP cache miss\))?", logged)
        assert read_bytes and 1 << 20 < int(read_bytes[1]) < 3 << 20, logged
        assert HttpClient(HttpSettings(retries=0, max_answer_mib=4)).get_json(server.url + "page") == []


@pytest.mark.parametrize(
    ("status", "said"), [(500, "HTTP 500 (from {url}, after 0 retries)"), (404, "HTTP 404 Not Found: {url}")]
)
def test_an_error_answer_too_large_to_read_is_reported_as_its_status(status, said):
    reply = Reply(status, BOMB, headers={"Content-Encoding": "gzip"})
    with ReplayServer(lambda request: reply) as server:
        client = HttpClient(HttpSettings(retries=0, max_answer_mib=1))
        with pytest.raises(SourceError) as error:
            client.get_json(server.url + "page")
        assert str(error.value) == said.format(url=server.url + "page")


def test_an_answer_may_inflate_to_512_mib_unless_the_catalog_says_otherwise():
    assert HttpSettings().max_answer_mib == 512


def test_json_nested_too_deeply_to_decode_is_a_clear_error():
    with ReplayServer(lambda request: Reply(200, b"[" * 200_000 + b"]" * 200_000)) as server:
        with pytest.raises(SourceError, match=f"^not JSON \\(nested too deeply\\) from {server.url}page$"):
            HttpClient(HttpSettings(retries=0)).get_json(server.url + "page")


def test_an_answer_that_is_no_json_to_a_long_url_cuts_the_query():
    long_filter = " OR ".join(f'id="mp-{i}"' for i in range(150))  # ~1,800 characters once URL-encoded
    with ReplayServer(lambda request: Reply(200, b"<html>busy</html>")) as server, pytest.raises(SourceError) as error:
        HttpClient(HttpSettings(retries=0)).get_json(server.url + "v1/structures", {"filter": long_filter})
    url = f"{server.url}v1/structures?filter=id%3D%22mp-0%22+OR+id%3D%22mp-1"
    assert str(error.value).startswith(f"not JSON from {url}") and str(error.value).count("...") == 1
    assert str(error.value).endswith("%22mp-149%22: '<html>busy</html>'") and len(str(error.value)) < 300


def test_an_answer_that_is_no_json_is_cut_after_its_secrets_are_redacted():
    """The answer's first 80 characters were cut, then redacted: a key that the cut split was no longer the key, and
    its first characters were shown. The text is redacted, then cut (`clipped`, ending in '...')."""
    body = ("x" * 70 + SECRET).encode()  # the key from character 70 on: the cut at 80 splits it
    with ReplayServer(lambda request: Reply(200, body, content_type="text/plain")) as server:
        client = HttpClient(HttpSettings(retries=0), base_url=server.url, auth_header="X-API-KEY", api_key=SECRET)
        with pytest.raises(SourceError) as error:
            client.get_json(server.url + "page")
    assert str(error.value) == f"not JSON from {server.url}page: '{'x' * 70}***'"
    assert SECRET[:10] not in str(error.value)


def test_json_with_an_integer_longer_than_python_reads_says_so():
    # called "not JSON" (the json module refuses an integer past 4,300 digits, orjson any past 64 bits)
    with ReplayServer(lambda request: Reply(200, b'{"data": [' + b"7" * 5000 + b"]}")) as server:
        with pytest.raises(SourceError) as error:
            HttpClient(HttpSettings(retries=0)).get_json(server.url + "page")
    limit = "an integer of more than 4300 digits, Python's limit"
    assert str(error.value) == f"JSON not read ({limit}) from {server.url}page"


MAINTENANCE = Reply(200, b"<html><h1>Down for maintenance</h1></html>", content_type="text/html")


@contextlib.contextmanager
def raw_server(*answers: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """A server that answers each connection with the next of `answers` (raw HTTP, broken as it is) and closes it
    (a whole answer says `Connection: close`, else a client may send its next request on the closing connection);
    yields its URL and the requests it read."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        for answer in answers:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                received.append(connection.recv(65536))
                connection.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/", received
    listener.close()


OK_ANSWER = (
    b'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{"ok": true}'
)


EACH_BROKEN_ANSWER = pytest.mark.parametrize(
    "broken",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: 42\r\n\r\n"
        b"<html><h1>Down for maintenance</h1></html>",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n",
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"data": [1, 2',  # cut short by the close
    ],
    ids=["maintenance-page", "empty", "cut-short"],
)


@EACH_BROKEN_ANSWER
def test_an_answer_that_is_no_json_is_not_kept_in_the_cache(tmp_path, broken):
    # a maintenance page cached was given to every later run (--resume too) for a day
    with raw_server(broken, OK_ANSWER, OK_ANSWER) as (url, received):
        client = HttpClient(HttpSettings(retries=0), cache_path=tmp_path / "cache.sqlite")
        with pytest.raises(SourceError, match=f"^not JSON from {url}page: ") as error:
            client.get_json(url + "page")
        assert "cache" not in str(error.value)  # the source's own answer
        assert client.get_json(url + "page") == {"ok": True}
        assert HttpClient(HttpSettings(retries=0), cache_path=tmp_path / "cache.sqlite").get_json(url + "page")
        assert len(received) == 2  # the good answer is kept


@EACH_BROKEN_ANSWER
@pytest.mark.parametrize("read", ["session", "text"])
def test_an_answer_read_by_a_sources_own_client_or_as_text_is_kept_only_when_it_is_a_page(tmp_path, broken, read):
    """mp-api reads the Materials Project's answers through the session, JANAF's tables are text: neither decodes
    them here, and a maintenance page the cache kept was every later run's answer for a day."""
    with raw_server(broken, OK_ANSWER, OK_ANSWER) as (url, received):
        client = HttpClient(HttpSettings(retries=0), cache_path=tmp_path / "cache.sqlite")
        get = client.session.get if read == "session" else client.get
        assert get(url + "page").content == broken.partition(b"\r\n\r\n")[2]  # (the connector refuses it)
        assert json.loads(get(url + "page").content) == {"ok": True}
        assert json.loads(get(url + "page").content) == {"ok": True}
        assert len(received) == 2  # the good answer is kept


def test_a_page_refused_after_the_cache_gave_it_is_said_to_come_from_it_and_deleted(tmp_path):
    # JSON, so kept; its connector refuses it (an error object where records were due): the next run asks the source
    answers = [Reply.json({"errors": ["reindexing"]}), Reply.json({"data": []})]
    with ReplayServer(lambda request: answers.pop(0)) as server:
        client = HttpClient(HttpSettings(retries=0), cache_path=tmp_path / "cache.sqlite")
        assert client.get_json(server.url + "page") == {"errors": ["reindexing"]}
        client.begin_page()
        assert client.get_json(server.url + "page") == {"errors": ["reindexing"]} and server.hits("/page") == 1
        error = client.refused_page(SourceError("no 'data' list"))
        client.begin_page()
        assert client.get_json(server.url + "page") == {"data": []} and server.hits("/page") == 2
    assert re.fullmatch(
        r"no 'data' list \(the HTTP cache's copy of \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d UTC, now deleted from it: the next "
        r"request asks the source\)",
        str(error),
    ), str(error)


def test_a_broken_answer_the_cache_gives_is_said_to_come_from_it_and_deleted(tmp_path):
    # as an earlier matreg cached it: the next request goes to the source
    answers = [MAINTENANCE, Reply.json({"ok": True})]
    with ReplayServer(lambda request: answers.pop(0)) as server:
        cache = tmp_path / "cache.sqlite"
        requests_cache.CachedSession(str(cache), backend="sqlite", allowable_codes=(200,)).get(server.url + "page")
        client = HttpClient(HttpSettings(retries=0), cache_path=cache)
        with pytest.raises(SourceError) as error:
            client.get_json(server.url + "page")
        assert server.hits("/page") == 1
        assert client.get_json(server.url + "page") == {"ok": True}
    assert re.fullmatch(
        rf"not JSON from {server.url}page: '<html><h1>Down for maintenance</h1></html>' \(the HTTP cache's copy of "
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d UTC, now deleted from it: the next request asks the source\)",
        str(error.value),
    ), str(error.value)


@pytest.fixture
def trickling_server():
    """A server that announces 100 bytes of JSON and sends them one every 0.1 s: each read waits less than a
    timeout, the whole answer 10 s."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):  # (the listener closed, or the client cut the connection)
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
                for byte in b"[" + b" " * 98 + b"]":
                    connection.sendall(bytes([byte]))
                    time.sleep(0.1)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    listener.close()


@pytest.mark.parametrize("cache", [False, True])
def test_an_answer_that_trickles_in_is_cut_off_at_the_catalogs_limit(tmp_path, trickling_server, cache):
    settings = HttpSettings(retries=0, timeout_s=5, answer_timeout_s=0.5)
    client = HttpClient(settings, cache_path=tmp_path / "cache.sqlite" if cache else None)
    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as error:
        client.get_json(trickling_server + "page")
    assert time.monotonic() - started < 2
    assert str(error.value) == (
        f"answer slower than 0.5 s from {trickling_server}page: cut off (a slower one needs the source's "
        "http.answer_timeout_s in the catalog)"
    )


def test_the_time_a_reader_takes_between_parts_of_an_answer_is_not_the_answers(tmp_path):
    # JARVIS' download is read a part at a time as the run stores the records of each
    body = b"[" + b" " * (3 << 20) + b"]"
    with ReplayServer(lambda request: Reply(200, body)) as server:
        client = HttpClient(HttpSettings(retries=0, answer_timeout_s=0.5))
        response = client.request("GET", server.url + "dft_3d.zip", stream=True)
        parts = []
        for part in response.iter_content(1 << 20):
            parts.append(part)
            time.sleep(0.3)
    assert b"".join(parts) == body


def test_an_answer_may_take_ten_timeouts_and_a_minute_at_least_unless_the_catalog_says_otherwise():
    assert HttpSettings(timeout_s=30).answer_deadline_s == 300
    assert HttpSettings(timeout_s=2).answer_deadline_s == 60
    assert HttpSettings(timeout_s=30, answer_timeout_s=45).answer_deadline_s == 45


@pytest.mark.parametrize("retry_after", ["1.5", "soon", "-5"])
def test_a_retry_after_that_is_neither_seconds_nor_a_date_waits_the_backoff(retry_waits, retry_after):
    # urllib3 raised "Invalid Retry-After header": the run failed at once despite its retries
    answers = iter([Reply(429, b"{}", headers={"Retry-After": retry_after}), Reply.json({"ok": True})])
    with ReplayServer(lambda request: next(answers)) as server:
        client = HttpClient(HttpSettings(retries=2, backoff_s=0.25, jitter_s=0))
        assert client.get_json(server.url + "page") == {"ok": True}
    assert retry_waits == [0.25]


def test_each_wait_before_a_retry_is_a_warning_naming_the_status_url_and_seconds_never_a_key(retry_waits, caplog):
    """A run waiting out a Retry-After or a backoff stalled with nothing in the log: each wait is a warning on the
    'matreg' logger (the command line prints its warnings on stderr), the URL without a key it carries."""
    answers = iter([Reply(429, b"{}", headers={"Retry-After": "4"}), Reply(503, b"{}"), Reply.json({"ok": True})])
    with ReplayServer(lambda request: next(answers)) as server, caplog.at_level(logging.WARNING, logger="matreg"):
        client = HttpClient(HttpSettings(retries=2, backoff_s=0.5, jitter_s=0))
        assert client.get_json(server.url + "page", {"api_key": SECRET, "offset": 50}) == {"ok": True}
    assert retry_waits == [4, 1]
    assert all(record.name.startswith("matreg.") and record.levelname == "WARNING" for record in caplog.records)
    assert caplog.messages == [
        f"HTTP 429 from {server.url}page?api_key=***&offset=50: retry 1 of 2 in 4 s (Retry-After)",
        f"HTTP 503 from {server.url}page?api_key=***&offset=50: retry 2 of 2 in 1 s (backoff)",
    ]
    assert SECRET not in caplog.text


CUT_SHORT = {
    "content-length": b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"ok"',
    "chunked": b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"ok"\r\n',
}


@pytest.mark.parametrize("cut", CUT_SHORT)
@pytest.mark.parametrize(("read", "cache"), [("get_json", False), ("get_json", True), ("get_text", False)])
def test_a_connection_lost_inside_an_answer_is_retried(tmp_path, cut, read, cache):
    # urllib3 retries a connection lost before the answer only: one lost inside it failed the run at once
    with raw_server(CUT_SHORT[cut], CUT_SHORT[cut], OK_ANSWER) as (url, received):
        settings = HttpSettings(retries=2, backoff_s=0, jitter_s=0)
        client = HttpClient(settings, cache_path=tmp_path / "cache.sqlite" if cache else None)
        assert getattr(client, read)(url + "page") in ({"ok": True}, '{"ok": true}')
        assert len(received) == 3


@pytest.mark.parametrize("fault", ["status", "drop", "cut"])
def test_a_failure_after_one_retry_says_retry_in_the_singular(fault):
    """'after 1 retries' was said of a request retried once, whatever failed it: a status still retried, no answer, a
    connection broken inside the answer."""
    with ReplayServer(lambda request: Reply.json({"ok": True})) as server:
        {"status": lambda: server.fail("/page", 503, 503), "drop": lambda: server.drop("/page", 2),
         "cut": lambda: server.cut("/page", 2)}[fault]()  # fmt: skip
        with pytest.raises(SourceUnavailable) as error:
            HttpClient(HttpSettings(retries=1, backoff_s=0, jitter_s=0)).get_json(server.url + "page")
    assert str(error.value).endswith("after 1 retry)") and "retries" not in str(error.value), str(error.value)


@pytest.mark.parametrize("cut", CUT_SHORT)
def test_a_connection_lost_inside_the_answer_to_every_try_fails_saying_so(cut):
    with raw_server(*[CUT_SHORT[cut]] * 3) as (url, received):
        client = HttpClient(HttpSettings(retries=2, backoff_s=0, jitter_s=0))
        with pytest.raises(SourceUnavailable) as error:
            client.get_json(url + "page")
        assert len(received) == 3
    assert re.fullmatch(
        f"GET {url}page failed: .+ \\(the connection broke inside the answer, after 2 retries\\)",
        str(error.value),
    ), str(error.value)


def moved_api(status: int, answer_to_get: Reply):
    """A route that redirects every request under /api/ with `status` to /moved/api/..., where a POST is answered
    with the query it carried and a GET with `answer_to_get`."""

    def route(request):
        if not request.path.startswith("/moved/"):
            return Reply(status, b"", headers={"Location": "/moved" + request.raw_path})
        return Reply.json({"query": request.json()}) if request.method == "POST" else answer_to_get

    return route


@pytest.mark.parametrize("status", [301, 302, 303])
@pytest.mark.parametrize(
    "answer_to_get",
    [Reply(405, b'{"detail": "Method Not Allowed"}'), Reply.json({"data": ["every entry"]})],
    ids=["405", "200"],
)
def test_a_post_redirected_as_a_get_fails_naming_where_it_was_sent(status, answer_to_get):
    # requests follows a 301/302/303 with a GET without the body: NOMAD's query failed as "HTTP 405: Method Not
    # Allowed", or an answer to no query would be read as the query's
    with ReplayServer(moved_api(status, answer_to_get)) as server:
        with pytest.raises(SourceError) as error:
            HttpClient(HttpSettings(retries=0)).post_json(server.url + "api/v1/entries/query", {"owner": "public"})
    assert str(error.value) == (
        f"the server redirected a POST from {server.url}api/v1/entries/query to {server.url}moved/api/v1/entries/query "
        f"(HTTP {status}), which requests follows as a GET without the query: the source's base URL should be the new "
        "address"
    )


@pytest.mark.parametrize("status", [307, 308])
def test_a_post_redirected_keeping_its_method_is_read_where_it_leads(status):
    with ReplayServer(moved_api(status, Reply(405, b""))) as server:
        answer = HttpClient(HttpSettings(retries=0)).post_json(server.url + "api/entries", {"owner": "public"})
    assert answer == {"query": {"owner": "public"}}


@contextlib.contextmanager
def serving(answer) -> Iterator[tuple[str, list[float]]]:
    """A server on 127.0.0.1 that answers each connection's request with `answer(connection)`, in a thread of its own,
    then closes it; yields its URL and when each request came (time.monotonic())."""
    listener = socket.create_server(("127.0.0.1", 0))
    came: list[float] = []

    def answer_one(connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):  # (the client cut the connection)
            connection.recv(65536)
            came.append(time.monotonic())
            answer(connection)

    def serve() -> None:
        with contextlib.suppress(OSError):  # (the listener closed)
            while True:
                threading.Thread(target=answer_one, args=(listener.accept()[0],), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/", came
    listener.close()


def sending(head: bytes, piece: bytes, every_s: float, for_s: float = 20.0):
    """An answer: `head`, then `piece` every `every_s` seconds (0: as fast as the connection takes it) for `for_s`
    seconds, or until the client closes the connection."""

    def answer(connection: socket.socket) -> None:
        connection.sendall(head)
        until = time.monotonic() + for_s
        while time.monotonic() < until:
            connection.sendall(piece)
            time.sleep(every_s)

    return answer


ENDLESS_503 = (  # 2^40 bytes announced
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 1099511627776\r\n\r\n"
)


@pytest.mark.parametrize(("piece", "every_s"), [(b"x" * 65536, 0), (b" ", 0.05)], ids=["endless", "trickled"])
def test_an_error_answer_whose_body_never_ends_is_retried_then_unavailable(piece, every_s):
    # urllib3 read a retried answer's body to its end before each retry (drain_conn), below the answer's limits:
    # a 503 announcing 2^40 bytes, sent endlessly or a byte at a time, hung the fetch for good
    with serving(sending(ENDLESS_503, piece, every_s)) as (url, came):
        client = HttpClient(HttpSettings(retries=2, backoff_s=0, jitter_s=0, timeout_s=5, answer_timeout_s=0.5))
        started = time.monotonic()
        with pytest.raises(SourceUnavailable) as error:
            client.get_json(url + "page")
        assert time.monotonic() - started < 5 and len(came) == 3
    assert str(error.value) == f"HTTP 503 (from {url}page, after 2 retries)"


def test_an_answer_whose_headers_trickle_in_is_cut_off_at_the_catalogs_limit():
    # each read of a header byte came within timeout_s: the wait for the headers was never cut
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: "
    with serving(sending(head, b"a", 0.05)) as (url, came):
        client = HttpClient(HttpSettings(retries=2, backoff_s=0, jitter_s=0, timeout_s=5, answer_timeout_s=0.5))
        started = time.monotonic()
        with pytest.raises(SourceUnavailable) as error:
            client.get_json(url + "page")
        assert time.monotonic() - started < 2 and len(came) == 1
    assert str(error.value) == (
        f"answer slower than 0.5 s from {url}page: cut off (a slower one needs the source's http.answer_timeout_s "
        "in the catalog)"
    )


def test_an_answers_time_runs_from_when_its_request_was_sent_headers_and_body_together():
    def slow_headers_then_slow_body(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        for _ in range(6):  # 0.6 s of headers
            time.sleep(0.1)
            connection.sendall(b"X-Slow: a\r\n")
        connection.sendall(b"Content-Length: 12\r\n\r\n")
        for byte in b'{"ok": true}':  # and 0.6 s of body: each part within the limit, not both
            time.sleep(0.05)
            connection.sendall(bytes([byte]))

    with serving(slow_headers_then_slow_body) as (url, came):
        client = HttpClient(HttpSettings(retries=0, timeout_s=5, answer_timeout_s=0.9))
        with pytest.raises(SourceUnavailable, match=f"^answer slower than 0.9 s from {url}page: cut off"):
            client.get_json(url + "page")


def test_a_connection_lost_inside_the_answer_to_a_page_names_the_page_and_cuts_a_long_query():
    """A connection lost inside every answer failed the run naming the URL without the query that it was sent with
    (which page failed could not be told) and a URL's long query whole: named as a request that got no answer is,
    the URL sent, its query's middle cut."""
    with raw_server(*[CUT_SHORT["chunked"]] * 2) as (url, _):
        client = HttpClient(HttpSettings(retries=1, backoff_s=0, jitter_s=0))
        with pytest.raises(SourceUnavailable) as error:
            client.get_json(url + "page", {"fields": ",".join(["field"] * 60), "offset": 6})
    message = str(error.value)
    assert message.startswith(f"GET {url}page failed: ") and message.count("...") == 1, message
    assert message.endswith("%2Cfield&offset=6, after 1 retry)") and len(message) < 400, message
    assert f"(the connection broke inside the answer, from {url}page?fields=field%2C" in message
