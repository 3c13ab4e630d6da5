"""Per-host politeness with real threads, judged by the monotonic times each request recorded."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from shared.feeds.politeness import HostLimiter, host_key, parse_retry_after

FEED = "https://courier.example.com/rss"
OTHER_FEED = "https://monitor.example.org/atom"
SLACK = 0.02  # between the limiter letting a thread in and the thread reading the clock


@dataclass
class Visit:
    url: str
    entered: float
    left: float
    allowed_next: float


def visit(limiter: HostLimiter, url: str, hold: float, visits: list[Visit]) -> None:
    with limiter.slot(url):
        entered = time.monotonic()
        allowed_next = limiter.next_allowed(url)
        time.sleep(hold)
        left = time.monotonic()
    visits.append(Visit(url, entered, left, allowed_next))


def run_together(limiter: HostLimiter, urls: list[str], hold: float) -> list[Visit]:
    """Each URL visited from its own thread, all released at once; visits in order of entry."""
    visits: list[Visit] = []
    start = threading.Barrier(len(urls))

    def worker(url: str) -> None:
        start.wait()
        visit(limiter, url, hold, visits)

    threads = [threading.Thread(target=worker, args=(url,)) for url in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(visits) == len(urls), "a thread never got its slot"
    return sorted(visits, key=lambda v: v.entered)


def most_at_once(visits: list[Visit]) -> int:
    return max(sum(1 for other in visits if other.entered <= v.entered < other.left) for v in visits)


# --- one host ---------------------------------------------------------------------------------


def test_requests_to_one_host_never_overlap() -> None:
    limiter = HostLimiter(max_concurrent=1, min_delay=0)

    visits = run_together(limiter, [FEED] * 4, hold=0.05)

    for earlier, later in zip(visits, visits[1:], strict=False):
        assert earlier.left <= later.entered


def test_starts_to_one_host_are_at_least_min_delay_apart() -> None:
    limiter = HostLimiter(max_concurrent=1, min_delay=0.15)

    visits = run_together(limiter, [FEED] * 3, hold=0)

    for earlier, later in zip(visits, visits[1:], strict=False):
        assert later.entered >= earlier.allowed_next
        assert later.entered - earlier.entered >= 0.15 - SLACK


def test_two_slots_allow_two_requests_at_once_but_not_three() -> None:
    limiter = HostLimiter(max_concurrent=2, min_delay=0)

    visits = run_together(limiter, [FEED] * 3, hold=0.15)

    assert most_at_once(visits) == 2


def test_min_delay_spaces_starts_even_with_free_slots() -> None:
    limiter = HostLimiter(max_concurrent=2, min_delay=0.1)

    visits = run_together(limiter, [FEED] * 2, hold=0.3)

    assert most_at_once(visits) == 2
    assert visits[1].entered - visits[0].entered >= 0.1 - SLACK


def test_host_names_match_whatever_their_case_and_default_port() -> None:
    limiter = HostLimiter(min_delay=10)
    before = time.monotonic()

    with limiter.slot("https://Courier.EXAMPLE.com/rss"):
        pass

    assert limiter.next_allowed("https://courier.example.com/other") >= before + 10
    assert limiter.next_allowed("https://courier.example.com:443/rss") >= before + 10
    assert limiter.next_allowed("https://courier.example.com./rss") >= before + 10


@pytest.mark.parametrize(
    "url",
    ["http://courier.example.com/rss", "https://courier.example.com:8443/rss", "https://news.courier.example.com/"],
)
def test_another_port_or_host_name_is_another_host(url: str) -> None:
    limiter = HostLimiter(min_delay=10)
    with limiter.slot(FEED):
        pass

    assert limiter.next_allowed(url) <= time.monotonic()


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://Courier.Example.com/rss", "courier.example.com:443"),
        ("http://courier.example.com/rss", "courier.example.com:80"),
        ("http://courier.example.com:8080/rss", "courier.example.com:8080"),
        ("http://[::1]:8080/", "[::1]:8080"),
        ("http://[2001:db8::1]/", "[2001:db8::1]:80"),
    ],
)
def test_the_host_key_is_the_lower_case_name_and_port(url: str, key: str) -> None:
    assert host_key(url) == key


@pytest.mark.parametrize("url", ["/var/feeds/local.rss", "file:///var/feeds/local.rss", "courier.example.com/rss"])
def test_a_url_without_a_host_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="no host"), HostLimiter().slot(url):
        pass


@pytest.mark.parametrize(("max_concurrent", "min_delay"), [(0, 1.0), (-1, 1.0), (1, -0.5)])
def test_impossible_limits_are_refused(max_concurrent: int, min_delay: float) -> None:
    with pytest.raises(ValueError):
        HostLimiter(max_concurrent=max_concurrent, min_delay=min_delay)


# --- several hosts ----------------------------------------------------------------------------


def test_a_busy_host_does_not_hold_up_another() -> None:
    limiter = HostLimiter(max_concurrent=1, min_delay=0)
    inside = threading.Event()
    other_done = threading.Event()
    times: dict[str, float] = {}

    def busy() -> None:
        with limiter.slot(FEED):
            inside.set()
            other_done.wait(timeout=2)  # a limiter shared by all hosts lets the other in only after this
            times["busy_left"] = time.monotonic()

    thread = threading.Thread(target=busy)
    thread.start()
    assert inside.wait(timeout=5)
    with limiter.slot(OTHER_FEED):
        times["other_entered"] = time.monotonic()
    other_done.set()
    thread.join(timeout=5)

    assert times["other_entered"] < times["busy_left"]


def test_the_delay_of_one_host_does_not_delay_another() -> None:
    limiter = HostLimiter(max_concurrent=1, min_delay=1.0)

    visits = run_together(limiter, [FEED, OTHER_FEED], hold=0)

    assert {v.url for v in visits} == {FEED, OTHER_FEED}
    assert visits[1].entered - visits[0].entered < 0.5


# --- defer ------------------------------------------------------------------------------------


def test_defer_pushes_the_next_start() -> None:
    limiter = HostLimiter(min_delay=0)
    asked = time.monotonic()

    limiter.defer(FEED, 0.2)
    with limiter.slot(FEED):
        entered = time.monotonic()

    assert entered >= asked + 0.2
    assert limiter.next_allowed(OTHER_FEED) <= time.monotonic()


def test_defer_holds_back_a_request_already_waiting() -> None:
    limiter = HostLimiter(min_delay=0.5)
    with limiter.slot(FEED):
        pass
    visits: list[Visit] = []
    waiter = threading.Thread(target=visit, args=(limiter, FEED, 0, visits))
    waiter.start()
    time.sleep(0.02)  # the waiter is now waiting out min_delay

    asked = time.monotonic()
    limiter.defer(FEED, 0.8)
    waiter.join(timeout=5)

    [waited] = visits
    assert waited.entered >= asked + 0.8


def test_defer_never_brings_the_next_start_forward() -> None:
    limiter = HostLimiter(min_delay=0)
    asked = time.monotonic()

    limiter.defer(FEED, 60)
    limiter.defer(FEED, 0.1)
    limiter.defer(FEED, -5)

    assert limiter.next_allowed(FEED) >= asked + 60


# --- Retry-After ------------------------------------------------------------------------------

NOW = datetime(2025, 6, 2, 9, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("   ", None, id="blank"),
        pytest.param("120", 120.0, id="delta"),
        pytest.param(" 30 ", 30.0, id="delta-with-spaces"),
        pytest.param("0", 0.0, id="delta-zero"),
        pytest.param("86401", 86400.0, id="delta-just-over-a-day"),
        pytest.param("99999999999999999999999", 86400.0, id="delta-huge"),
        pytest.param("-5", None, id="negative"),
        pytest.param("1.5", None, id="fraction"),
        pytest.param("1e3", None, id="exponent"),
        pytest.param("12abc", None, id="digits-then-garbage"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("Mon, 32 Jun 2025 09:05:00 GMT", None, id="impossible-date"),
        pytest.param("Mon, 02 Jun 2025 09:05:00 GMT", 300.0, id="date-future"),
        pytest.param("Mon, 02 Jun 2025 08:00:00 GMT", 0.0, id="date-past"),
        pytest.param("Mon, 02 Jun 2025 09:00:00 GMT", 0.0, id="date-now"),
        pytest.param("Mon, 02 Jun 2025 11:05:00 +0200", 300.0, id="date-with-offset"),
        pytest.param("Tue, 03 Jun 2025 12:00:00 GMT", 86400.0, id="date-over-a-day-ahead"),
        pytest.param("Monday, 02-Jun-25 09:01:00 GMT", 60.0, id="date-rfc850"),
        pytest.param("Mon Jun  2 09:02:00 2025", 120.0, id="date-asctime"),
    ],
)
def test_retry_after_is_read_as_seconds_to_wait(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_retry_after_takes_a_now_without_zone_as_utc() -> None:
    assert parse_retry_after("Mon, 02 Jun 2025 09:05:00 GMT", now=NOW.replace(tzinfo=None)) == 300.0


def test_retry_after_dates_count_from_the_current_time_by_default() -> None:
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)

    seconds = parse_retry_after(in_a_minute)

    assert seconds is not None and 50 <= seconds <= 60
