"""URL safety: internal addresses are refused, by literal, by resolved name and after a redirect.

Host names resolve through a fixed table (test data standing in for DNS); the end-to-end tests
use a real HTTP server on 127.0.0.1 and a real httpx client.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from shared.outbound import (
    Poster,
    Reply,
    UnresolvableHost,
    UnsafeURL,
    URLPolicy,
    check_url,
    default_resolver,
    httpx_request_guard,
    outbound_client,
)

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"

DNS = {
    "news.example.com": [PUBLIC_V4],
    "dual.example.com": [PUBLIC_V4, PUBLIC_V6],
    "intranet.example.com": ["10.1.2.3"],
    "sub.intranet.example.com": ["10.9.9.9"],
    "mixed.example.com": [PUBLIC_V4, "192.168.1.10"],
    "split.example.com": ["10.1.2.3", "192.168.1.10"],
    "rebind.example.com": ["127.0.0.1"],
    "metadata.example.com": ["169.254.169.254"],
    "v6-local.example.com": ["fd12:3456::1"],
    "mapped.example.com": ["::ffff:10.0.0.5"],
    "cgnat.example.com": ["100.64.3.4"],
    "empty.example.com": [],
}


def table_resolver(host: str, port: int) -> list[str]:
    if host not in DNS:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return DNS[host]


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host!r} should not have been resolved")


NOTHING_ALLOWED = URLPolicy()


# --- refused and allowed addresses ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "address", "reason"),
    [
        ("http://127.0.0.1/", "127.0.0.1", "127.0.0.1", "loopback address"),
        ("http://127.1.2.3:8080/feed", "127.1.2.3", "127.1.2.3", "loopback address"),
        ("http://10.0.0.1/", "10.0.0.1", "10.0.0.1", "private address"),
        ("https://172.16.5.4/rss", "172.16.5.4", "172.16.5.4", "private address"),
        ("http://192.168.0.1/", "192.168.0.1", "192.168.0.1", "private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "169.254.169.254", "cloud metadata address"),
        ("http://169.254.10.1/", "169.254.10.1", "169.254.10.1", "link-local address"),
        ("http://0.0.0.0:8000/", "0.0.0.0", "0.0.0.0", "unspecified address"),
        ("http://100.64.0.1/", "100.64.0.1", "100.64.0.1", "carrier-grade NAT address (100.64.0.0/10)"),
        ("http://224.0.0.1/", "224.0.0.1", "224.0.0.1", "multicast address"),
        ("http://240.0.0.1/", "240.0.0.1", "240.0.0.1", "reserved address"),
        ("http://[::1]/", "::1", "::1", "loopback address"),
        ("http://[::1]:8080/feed", "::1", "::1", "loopback address"),
        ("http://[::]/", "::", "::", "unspecified address"),
        ("http://[fe80::1]/", "fe80::1", "fe80::1", "link-local address"),
        ("http://[fc00::1]/", "fc00::1", "fc00::1", "unique-local address (fc00::/7)"),
        ("http://[fec0::1]/", "fec0::1", "fec0::1", "site-local address"),
        ("http://[ff02::1]/", "ff02::1", "ff02::1", "multicast address"),
        ("http://[fd00:ec2::254]/latest/", "fd00:ec2::254", "fd00:ec2::254", "cloud metadata address"),
        (
            "http://[::ffff:127.0.0.1]/",
            "::ffff:127.0.0.1",
            "::ffff:127.0.0.1",
            "loopback address, embedded in IPv6",
        ),
        ("http://[::ffff:a00:1]/", "::ffff:a00:1", "::ffff:10.0.0.1", "private address, embedded in IPv6"),
        (
            "http://[::ffff:169.254.169.254]/",
            "::ffff:169.254.169.254",
            "::ffff:169.254.169.254",
            "cloud metadata address, embedded in IPv6",
        ),
        ("http://intranet.example.com/rss", "intranet.example.com", "10.1.2.3", "private address"),
        ("http://mixed.example.com/rss", "mixed.example.com", "192.168.1.10", "private address"),
        ("http://rebind.example.com/", "rebind.example.com", "127.0.0.1", "loopback address"),
        ("http://metadata.example.com/", "metadata.example.com", "169.254.169.254", "cloud metadata address"),
        ("http://v6-local.example.com/", "v6-local.example.com", "fd12:3456::1", "unique-local address (fc00::/7)"),
        ("http://mapped.example.com/", "mapped.example.com", "::ffff:10.0.0.5", "private address, embedded in IPv6"),
        ("http://cgnat.example.com/", "cgnat.example.com", "100.64.3.4", "carrier-grade NAT address (100.64.0.0/10)"),
    ],
)
def test_an_internal_address_is_refused_with_host_address_and_reason(
    url: str, host: str, address: str, reason: str
) -> None:
    with pytest.raises(UnsafeURL) as raised:
        check_url(url, NOTHING_ALLOWED, table_resolver)

    refused = raised.value
    assert (refused.url, refused.host, refused.address, refused.reason) == (url, host, address, reason)
    assert str(refused) == f"refused {url!r}: host {host!r} resolves to {address} ({reason})"


@pytest.mark.parametrize(
    "url",
    [
        "https://news.example.com/rss",
        "http://dual.example.com:8080/feed",
        "HTTPS://News.Example.COM/rss",
        f"http://{PUBLIC_V4}/rss",
        f"http://[{PUBLIC_V6}]/rss",
        f"http://[::ffff:{PUBLIC_V4}]/rss",
    ],
)
def test_a_public_address_is_allowed(url: str) -> None:
    check_url(url, NOTHING_ALLOWED, table_resolver)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://10.0.0.1/", True),
        ("http://[::1]/", True),
        ("http://[::ffff:127.0.0.1]/", True),
        (f"http://{PUBLIC_V4}/", False),
        (f"http://[{PUBLIC_V6}]/", False),
    ],
)
def test_an_ip_literal_is_judged_without_resolving(url: str, refused: bool) -> None:
    try:
        check_url(url, NOTHING_ALLOWED, no_dns)  # no_dns fails the test if it is asked
    except UnsafeURL:
        assert refused
    else:
        assert not refused


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://news.example.com/feed.xml", "scheme 'ftp' is not http or https"),
        ("file:///etc/passwd", "scheme 'file' is not http or https"),
        ("gopher://news.example.com/", "scheme 'gopher' is not http or https"),
        ("javascript:alert(1)", "scheme 'javascript' is not http or https"),
        ("data:text/plain,hello", "scheme 'data' is not http or https"),
        ("news.example.com/rss", "no scheme"),
        ("http:///rss", "no host"),
    ],
)
def test_a_url_that_is_not_http_to_a_host_is_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeURL) as raised:
        check_url(url, NOTHING_ALLOWED, no_dns)

    assert raised.value.reason == reason
    assert str(raised.value) == f"refused {url!r} ({reason})"


# --- names that do not resolve ----------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://nowhere.example.com/rss", "http://empty.example.com/rss"])
def test_a_host_that_does_not_resolve_is_a_network_failure_not_a_refusal(url: str) -> None:
    with pytest.raises(UnresolvableHost) as raised:
        check_url(url, NOTHING_ALLOWED, table_resolver)

    assert isinstance(raised.value, OSError)
    assert not isinstance(raised.value, UnsafeURL)
    assert url.split("/")[2] in str(raised.value)


def test_a_resolver_answer_that_is_not_an_address_is_a_network_failure() -> None:
    with pytest.raises(UnresolvableHost, match="not an IP address"):
        check_url("http://odd.example.com/", NOTHING_ALLOWED, lambda host, port: ["odd"])


def test_the_resolver_is_asked_for_the_url_port() -> None:
    asked: list[tuple[str, int]] = []

    def recording(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return [PUBLIC_V4]

    for url in ["http://news.example.com/", "https://news.example.com/", "http://news.example.com:8080/"]:
        check_url(url, NOTHING_ALLOWED, recording)

    assert asked == [("news.example.com", 80), ("news.example.com", 443), ("news.example.com", 8080)]


# --- the system resolver ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://localhost/", "http://127.1/", "http://2130706433/", "http://0x7f.0.0.1/"],
    ids=["localhost", "short-dotted", "decimal", "hex"],
)
def test_names_the_system_resolves_to_loopback_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURL) as raised:
        check_url(url, NOTHING_ALLOWED)

    assert raised.value.reason == "loopback address"


def test_the_default_resolver_gives_distinct_addresses() -> None:
    addresses = default_resolver("localhost", 80)

    assert "127.0.0.1" in addresses
    assert len(addresses) == len(set(addresses))


# --- the allowlist ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allow", "url"),
    [
        (("10.0.0.0/8",), "http://10.1.2.3/"),
        (("10.0.0.0/8",), "http://intranet.example.com/rss"),
        (("10.0.0.0/8",), "http://mapped.example.com/"),
        (("10.0.0.0/8",), "http://[::ffff:10.0.0.5]/"),
        (("127.0.0.1/32",), "http://127.0.0.1:8080/"),
        (("127.0.0.1",), "http://127.0.0.1/"),
        (("::1/128",), "http://[::1]/"),
        (("192.168.0.0/16",), "http://mixed.example.com/"),
        (("10.0.0.0/8", "192.168.0.0/16"), "http://split.example.com/"),
        (("169.254.169.254/32",), "http://metadata.example.com/"),
        (("intranet.example.com",), "http://intranet.example.com/rss"),
        (("intranet.example.com",), "http://INTRANET.Example.com./rss"),
        (("Intranet.Example.com.",), "http://intranet.example.com/rss"),
    ],
)
def test_an_allowed_network_or_host_name_is_let_through(allow: tuple[str, ...], url: str) -> None:
    check_url(url, URLPolicy(allow), table_resolver)


@pytest.mark.parametrize(
    ("allow", "url", "address"),
    [
        (("10.0.0.0/8",), "http://192.168.1.10/", "192.168.1.10"),
        (("10.0.0.0/8",), "http://split.example.com/", "192.168.1.10"),
        (("127.0.0.1/32",), "http://127.0.0.2/", "127.0.0.2"),
        (("127.0.0.1/32",), "http://[::1]/", "::1"),
        (("::1/128",), "http://127.0.0.1/", "127.0.0.1"),
        (("intranet.example.com",), "http://sub.intranet.example.com/", "10.9.9.9"),
        (("intranet.example.com",), "http://10.1.2.3/", "10.1.2.3"),
        (("rebind.example.com",), "http://127.0.0.1/", "127.0.0.1"),
    ],
)
def test_the_allowlist_lets_through_nothing_else(allow: tuple[str, ...], url: str, address: str) -> None:
    with pytest.raises(UnsafeURL) as raised:
        check_url(url, URLPolicy(allow), table_resolver)

    assert raised.value.address == address


def test_an_allowed_host_name_does_not_allow_its_scheme_to_be_anything() -> None:
    with pytest.raises(UnsafeURL, match="scheme 'file'"):
        check_url("file://intranet.example.com/etc/passwd", URLPolicy(("intranet.example.com",)), table_resolver)


@pytest.mark.parametrize(
    ("value", "allow"),
    [
        (None, ()),
        ("", ()),
        ("  ", ()),
        ("10.0.0.0/8", ("10.0.0.0/8",)),
        ("10.0.0.0/8, feeds.internal.example ,,::1/128", ("10.0.0.0/8", "feeds.internal.example", "::1/128")),
    ],
)
def test_the_setting_is_a_comma_separated_list(value: str | None, allow: tuple[str, ...]) -> None:
    assert URLPolicy.from_setting(value) == URLPolicy(allow)


@pytest.mark.parametrize(
    ("allow", "url"),
    [
        (("127.0.0.1:8080",), "http://127.0.0.1:8080/"),
        (("10.0.0.0/8:8080",), "http://intranet.example.com:8080/rss"),
        (("intranet.example.com:8443",), "https://intranet.example.com:8443/rss"),
        (("intranet.example.com:443",), "https://intranet.example.com/rss"),
        (("[::1]:8080",), "http://[::1]:8080/"),
        (("[::1/128]:8080",), "http://[::1]:8080/"),
        (("::1/128",), "http://[::1]:9999/"),  # no brackets: no port, so every port
    ],
)
def test_an_allow_entry_may_name_a_port(allow: tuple[str, ...], url: str) -> None:
    check_url(url, URLPolicy(allow), table_resolver)


@pytest.mark.parametrize(
    ("allow", "url"),
    [
        (("127.0.0.1:8080",), "http://127.0.0.1:8081/"),
        (("127.0.0.1:8080",), "http://127.0.0.1/"),
        (("10.0.0.0/8:8080",), "http://intranet.example.com/rss"),
        (("intranet.example.com:8443",), "https://intranet.example.com/rss"),
        (("intranet.example.com:443",), "http://intranet.example.com/rss"),
        (("[::1]:8080",), "http://[::1]:22/"),
    ],
)
def test_an_allow_entry_with_a_port_allows_no_other_port(allow: tuple[str, ...], url: str) -> None:
    with pytest.raises(UnsafeURL):
        check_url(url, URLPolicy(allow), table_resolver)


@pytest.mark.parametrize("value", ["127.0.0.1:0", "127.0.0.1:65536", "intranet.example.com:http", "[::1", "[::1]x"])
def test_a_malformed_port_or_bracket_is_refused_at_once(value: str) -> None:
    with pytest.raises(ValueError, match="allow entry"):
        URLPolicy.from_setting(value)


@pytest.mark.parametrize(
    "value",
    ["10.0.0.0/33", "10.0.0.1/8", "fd00::/129", "feeds internal.example", "nouvelles.exemple.fr/rss", "bücher.example"],
)
def test_a_malformed_allow_entry_is_refused_at_once(value: str) -> None:
    with pytest.raises(ValueError, match="neither a CIDR network nor an ASCII host name") as raised:
        URLPolicy.from_setting(f"10.0.0.0/8, {value}")

    assert value in str(raised.value)


# --- httpx, end to end ------------------------------------------------------------------------


@dataclass
class LocalServer:
    """A real HTTP server on 127.0.0.1: /feed answers "ok", /redirect sends the client to `target`
    (a POST with a 307: the method kept), /slow answers after a second; `posts` holds what was
    POSTed: (path, headers, body)."""

    base: str = ""
    target: str = ""
    paths: list[str] = field(default_factory=list)
    posts: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    state = LocalServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.posts.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.do_GET(redirect=307)

        def do_GET(self, redirect: int = 302) -> None:  # noqa: N802 (the stdlib's name)
            state.paths.append(self.path)
            if self.path == "/slow":
                time.sleep(1)
            if self.path == "/redirect":
                self.send_response(redirect)
                self.send_header("Location", state.target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def guarded_client(policy: URLPolicy) -> httpx.Client:
    return httpx.Client(timeout=5, follow_redirects=True, event_hooks={"request": [httpx_request_guard(policy)]})


def test_a_guarded_client_refuses_a_local_server_before_connecting(local_server: LocalServer) -> None:
    with guarded_client(NOTHING_ALLOWED) as client, pytest.raises(UnsafeURL) as raised:
        client.get(local_server.base + "/feed")

    assert (raised.value.address, raised.value.reason) == ("127.0.0.1", "loopback address")
    assert local_server.paths == []


def test_a_guarded_client_reaches_a_local_server_that_is_allowed(local_server: LocalServer) -> None:
    with guarded_client(URLPolicy(("127.0.0.1/32",))) as client:
        response = client.get(local_server.base + "/feed")

    assert (response.status_code, response.content) == (200, b"ok")
    assert local_server.paths == ["/feed"]


@pytest.mark.parametrize(
    ("target", "address"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://10.0.0.1/admin", "10.0.0.1"),
        ("http://[::1]:9/", "::1"),
    ],
)
def test_a_redirect_from_an_allowed_server_to_an_internal_address_is_stopped(
    local_server: LocalServer, target: str, address: str
) -> None:
    local_server.target = target

    with guarded_client(URLPolicy(("127.0.0.1/32",))) as client, pytest.raises(UnsafeURL) as raised:
        client.get(local_server.base + "/redirect")

    assert raised.value.address == address
    assert local_server.paths == ["/redirect"]


def test_a_redirect_within_the_allowed_server_is_followed(local_server: LocalServer) -> None:
    local_server.target = local_server.base + "/feed"

    with guarded_client(URLPolicy(("127.0.0.1/32",))) as client:
        response = client.get(local_server.base + "/redirect")

    assert response.content == b"ok"
    assert local_server.paths == ["/redirect", "/feed"]


def test_a_guarded_streaming_request_is_refused_too(local_server: LocalServer) -> None:
    with guarded_client(NOTHING_ALLOWED) as client, pytest.raises(UnsafeURL):  # noqa: SIM117 (the stream is the point)
        with client.stream("GET", local_server.base + "/feed"):
            pass

    assert local_server.paths == []


def test_the_outbound_client_connects_only_to_the_address_it_checked(local_server: LocalServer, settings) -> None:
    answers = iter([[PUBLIC_V4], ["127.0.0.1"]])  # public when checked, loopback when connecting

    def rebinding(host: str, port: int) -> list[str]:
        return next(answers, ["127.0.0.1"])

    port = local_server.base.rsplit(":", 1)[1]
    unguarded = settings.model_copy(update={"url_allow": None})
    with outbound_client(unguarded, resolve=rebinding) as client, pytest.raises(UnsafeURL) as raised:
        client.get(f"http://rebinding.example.com:{port}/feed")

    assert (raised.value.address, raised.value.reason) == ("127.0.0.1", "loopback address")
    assert local_server.paths == []


def test_the_outbound_client_reaches_what_the_operator_allowed(local_server: LocalServer, settings) -> None:
    with outbound_client(settings) as client:  # the tests' settings allow 127.0.0.1
        assert client.get(local_server.base + "/feed").content == b"ok"


def test_a_redirect_to_another_port_of_an_allowed_host_is_stopped(local_server: LocalServer, settings) -> None:
    port = int(local_server.base.rsplit(":", 1)[1])
    with socket.socket() as probe:  # a port nothing listens on, and that the operator did not allow
        probe.bind(("127.0.0.1", 0))
        other = probe.getsockname()[1]
    local_server.target = f"http://127.0.0.1:{other}/admin"
    one_port = settings.model_copy(update={"url_allow": f"127.0.0.1:{port}"})
    with outbound_client(one_port) as client:
        assert client.get(local_server.base + "/feed").content == b"ok"
        with pytest.raises(UnsafeURL) as raised:
            client.get(local_server.base + "/redirect")
    assert raised.value.reason == "loopback address"
    assert local_server.paths == ["/feed", "/redirect"]


def test_a_full_text_link_to_a_port_not_allowed_is_not_fetched(local_server: LocalServer, settings, redis_client):
    from shared.feeds.registry import Feed
    from shared.feeds.source import FeedSource, feed_client

    feed_server = ThreadingHTTPServer(("127.0.0.1", 0), _feed_handler(local_server.base + "/feed"))
    threading.Thread(target=feed_server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        feed_url = f"http://127.0.0.1:{feed_server.server_port}/feed.rss"
        one_port = settings.model_copy(update={"url_allow": f"127.0.0.1:{feed_server.server_port}"})
        feed = Feed(url=feed_url, full_text=True)
        delivery = FeedSource([feed], redis_client, one_port, feed_client(one_port)).fetch(feed)
    finally:
        feed_server.shutdown()
        feed_server.server_close()
    (article,) = delivery.articles
    assert any("full article not fetched" in note and "loopback" in note for note in article.notes)
    assert local_server.paths == []


def _feed_handler(link: str) -> type[BaseHTTPRequestHandler]:
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Desk</title>'
        f"<item><title>Missile test</title><link>{link}</link><guid>g-1</guid>"
        "<description>A missile was fired.</description></item></channel></rss>"
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


# --- the poster (webhooks), end to end ----------------------------------------------------------


def test_a_poster_posts_the_body_and_reports_the_status(local_server: LocalServer, settings) -> None:
    poster = Poster(settings, timeout=5)
    try:
        reply = poster.post(local_server.base + "/hook?a=1", b'{"n": 1}', {"Content-Type": "application/json"})
        again = poster.post(local_server.base + "/hook?a=1", b'{"n": 2}', {"X-Id": "two"})
    finally:
        poster.close()
    assert reply == again == Reply(200, "OK")
    assert [(path, body) for path, _, body in local_server.posts] == [
        ("/hook?a=1", b'{"n": 1}'),
        ("/hook?a=1", b'{"n": 2}'),
    ]
    headers = local_server.posts[0][1]
    assert headers["content-type"] == "application/json" and headers["user-agent"] == settings.user_agent
    assert headers["host"] == local_server.base.removeprefix("http://")
    assert local_server.posts[1][1]["x-id"] == "two"


def test_a_poster_refuses_an_internal_address_before_connecting(local_server: LocalServer, settings) -> None:
    poster = Poster(settings.model_copy(update={"url_allow": None}), timeout=5)
    with pytest.raises(UnsafeURL) as raised:
        poster.post(local_server.base + "/hook", b"{}", {})
    assert raised.value.reason == "loopback address"
    assert local_server.paths == []


def test_a_poster_connects_only_to_the_address_it_checked(local_server: LocalServer, settings) -> None:
    answers = iter([[PUBLIC_V4], ["127.0.0.1"]])  # public when checked, loopback when connecting
    port = local_server.base.rsplit(":", 1)[1]
    poster = Poster(
        settings.model_copy(update={"url_allow": None}), timeout=5, resolve=lambda host, port: next(answers)
    )
    with pytest.raises(UnsafeURL) as raised:
        poster.post(f"http://rebinding.example.com:{port}/hook", b"{}", {})
    assert (raised.value.address, raised.value.reason) == ("127.0.0.1", "loopback address")
    assert local_server.paths == []


def test_a_host_that_turns_internal_after_its_check_is_refused_on_its_next_connection(
    local_server: LocalServer, settings
) -> None:
    # the server closes every connection (HTTP/1.0), so each post connects anew
    answers = iter([["127.0.0.1"], ["127.0.0.1"], ["127.0.0.2"]])  # checked, connected, connected
    port = local_server.base.rsplit(":", 1)[1]
    poster = Poster(settings, timeout=5, resolve=lambda host, port: next(answers))  # 127.0.0.1 is allowed
    url = f"http://hooks.example.com:{port}/hook"
    assert poster.post(url, b"{}", {}).status == 200
    with pytest.raises(UnsafeURL) as raised:
        poster.post(url, b"{}", {})  # the host's check still holds; its new connection is checked
    assert (raised.value.address, raised.value.reason) == ("127.0.0.2", "loopback address")
    assert local_server.paths == ["/hook"]


def test_a_poster_follows_a_redirect_checking_where_it_leads(local_server: LocalServer, settings) -> None:
    port = int(local_server.base.rsplit(":", 1)[1])
    poster = Poster(settings.model_copy(update={"url_allow": f"127.0.0.1:{port}"}), timeout=5)
    local_server.target = "/feed"
    assert poster.post(local_server.base + "/redirect", b'{"n": 1}', {}) == Reply(200, "OK")
    assert [(path, body) for path, _, body in local_server.posts] == [
        ("/redirect", b'{"n": 1}'),
        ("/feed", b'{"n": 1}'),
    ]

    local_server.target = f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}/admin"  # a port not allowed
    with pytest.raises(UnsafeURL):
        poster.post(local_server.base + "/redirect", b"{}", {})
    assert local_server.paths == ["/redirect", "/feed", "/redirect"]


def test_a_poster_gives_up_on_a_receiver_slower_than_its_timeout(local_server: LocalServer, settings) -> None:
    poster = Poster(settings, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        poster.post(local_server.base + "/slow", b"{}", {})
    assert time.monotonic() - started < 0.9
