"""canonical_url: one URL for one article, however the link to it was dressed up."""

from __future__ import annotations

import pytest

from shared.urls import canonical_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "https://news.example.com/world/launch?utm_source=twitter&utm_medium=social&utm_campaign=spring",
            "https://news.example.com/world/launch",
            id="utm-parameters-removed",
        ),
        pytest.param(
            "https://news.example.com/world/launch?UTM_Source=newsletter",
            "https://news.example.com/world/launch",
            id="utm-parameters-removed-whatever-their-case",
        ),
        pytest.param(
            "https://news.example.com/world/launch?fbclid=IwAR0abc",
            "https://news.example.com/world/launch",
            id="fbclid-removed",
        ),
        pytest.param(
            "https://news.example.com/world/launch?gclid=Cj0KCQ",
            "https://news.example.com/world/launch",
            id="gclid-removed",
        ),
        pytest.param(
            "https://news.example.com/world/launch#comments",
            "https://news.example.com/world/launch",
            id="fragment-dropped",
        ),
        pytest.param(
            "HTTPS://News.Example.COM/world/launch",
            "https://news.example.com/world/launch",
            id="scheme-and-host-lower-cased",
        ),
        pytest.param(
            "https://news.example.com/World/Launch-Report",
            "https://news.example.com/World/Launch-Report",
            id="path-case-kept",
        ),
        pytest.param(
            "https://news.example.com:443/world/launch",
            "https://news.example.com/world/launch",
            id="default-https-port-dropped",
        ),
        pytest.param(
            "http://news.example.com:80/world/launch",
            "http://news.example.com/world/launch",
            id="default-http-port-dropped",
        ),
        pytest.param(
            "https://news.example.com:8443/world/launch",
            "https://news.example.com:8443/world/launch",
            id="non-default-port-kept",
        ),
        pytest.param(
            "http://news.example.com:443/world/launch",
            "http://news.example.com:443/world/launch",
            id="https-port-on-http-is-not-default",
        ),
        pytest.param(
            "https://news.example.com/world/launch/",
            "https://news.example.com/world/launch",
            id="trailing-slash-removed",
        ),
        pytest.param(
            "https://news.example.com/",
            "https://news.example.com/",
            id="root-slash-kept",
        ),
        pytest.param(
            "https://news.example.com",
            "https://news.example.com/",
            id="empty-path-becomes-root",
        ),
        pytest.param(
            "https://news.example.com/story?page=2&id=7781",
            "https://news.example.com/story?id=7781&page=2",
            id="remaining-query-sorted",
        ),
        pytest.param(
            "https://news.example.com/story?id=7781&utm_source=rss&lang=en&fbclid=x",
            "https://news.example.com/story?id=7781&lang=en",
            id="non-tracking-parameters-kept",
        ),
        pytest.param(
            "https://news.example.com/story?draft=&id=3",
            "https://news.example.com/story?draft=&id=3",
            id="blank-parameter-kept",
        ),
        pytest.param(
            "  https://news.example.com/story  ",
            "https://news.example.com/story",
            id="surrounding-whitespace-stripped",
        ),
        pytest.param(
            "HTTPS://News.Example.com:443/world/launch/?utm_source=x&b=2&a=1#top",
            "https://news.example.com/world/launch?a=1&b=2",
            id="all-rules-together",
        ),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_links_differing_only_in_tracking_and_dressing_share_one_canonical_url() -> None:
    links = [
        "https://news.example.com/world/launch",
        "https://NEWS.example.com/world/launch/",
        "https://news.example.com:443/world/launch?utm_source=feed",
        "https://news.example.com/world/launch?fbclid=abc#section-2",
    ]
    assert len({canonical_url(link) for link in links}) == 1


def test_a_tracking_name_inside_a_longer_parameter_name_is_kept() -> None:
    # Only exact tracking names and tracking prefixes go; "reference" is not "ref".
    assert canonical_url("https://news.example.com/a?reference=9") == "https://news.example.com/a?reference=9"


def test_canonical_url_is_idempotent() -> None:
    once = canonical_url("HTTP://Example.org:80/a/b/?z=1&utm_term=x&a=2#frag")
    assert canonical_url(once) == once


def test_ipv6_host_keeps_its_brackets() -> None:
    assert canonical_url("https://[2001:DB8::1]:8443/feed") == "https://[2001:db8::1]:8443/feed"
