"""The web UI in a real headless browser (Debian's chromium, driven by Playwright; nothing of
Playwright's own browsers is downloaded) over the real services: the fetcher watching the inbox, a Celery worker with the bulk
indexer and the alerter, the API under uvicorn, and a webhook receiver. An analyst signs in,
types a subscription (a parse error first, then its backtest with the matched words marked),
saves it, a matching file is dropped into the inbox, and its alert shows up in the history.

Screenshots go to $UI_SCREENSHOTS when set (the README's come from `UI_SCREENSHOTS=deploy/screenshots`),
else to the test's temporary folder. Without chromium the test is skipped on a laptop and fails
under CI=true.

Playwright rather than Selenium: Selenium needs trio, and httpcore (under httpx) imports trio
whenever it is installed, which put 4 MB on every API process started from a development install."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.api.app import create_app
from services.fetcher.service import Fetcher
from shared.queue import enqueue_batch
from shared.redis_client import get_redis
from shared.store.sqlite import SqliteStore
from shared.tokens import create_token
from tests.api_server import serve

CHROMIUM = Path("/usr/bin/chromium")
WAIT = 90  # seconds; the chain and the browser share two cores with everything else

pytestmark = pytest.mark.slow


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "store.sqlite3")


@pytest.fixture
def page() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"the browser test needs {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Debian's chromium, never a browser build of the test tool's own.
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.set_default_timeout(WAIT * 1000)
        yield page
        browser.close()


@pytest.fixture
def fetcher(settings, worker) -> Iterator[None]:
    """The fetcher's own loop, watching the inbox as `wirewatch fetcher` does."""
    settings.inbox_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    service = Fetcher(settings, get_redis(settings), enqueue_batch)
    thread = threading.Thread(target=service.run_forever, args=(stop,), daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)


@pytest.fixture
def ui_url(settings, redis_client, store) -> Iterator[str]:
    """The API under uvicorn on a real port, with the test's store; its owner is an operator."""
    app = create_app(settings.model_copy(update={"operators": "desk"}), store=store, client=redis_client)
    with serve(app) as live:
        yield live.url


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("UI_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def drop(settings, name: str, title: str, published: datetime, text: str) -> None:
    # Written beside the inbox and moved in, so the fetcher never sees half a file.
    partial = settings.inbox_dir.parent / f"{name}.part"
    partial.write_text(f"date {published.date().isoformat()}\n{title}\n\n{text}\n", "utf-8")
    partial.rename(settings.inbox_dir / name)


def stored(store: SqliteStore, title: str) -> bool:
    return any(article.title == title for article in store.search("*", limit=100))


def test_an_analyst_signs_in_backtests_a_subscription_and_sees_its_alert_arrive(
    page, settings, redis_client, store, fetcher, ui_url, receiver, screenshots
):  # the browser first: without one, nothing else is started
    from playwright.sync_api import expect

    within = {"timeout": WAIT * 1000}
    now = datetime.now(UTC)
    earlier = "Inspectors turned away from the Yongbyon reactor"
    drop(
        settings,
        "01-yongbyon.txt",
        earlier,
        now - timedelta(days=2),
        "International inspectors were refused entry to the Yongbyon reactor on Tuesday, diplomats said. "
        "The agency had asked for access to the cooling tower for three months.",
    )
    deadline = time.monotonic() + WAIT
    while not stored(store, earlier) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stored(store, earlier), "the first file never reached the store"
    token = create_token(redis_client, "desk")

    # Sign in: a page without a session leads there.
    page.goto(f"{ui_url}/ui/subscriptions")
    page.wait_for_url("**/ui/sign-in")
    page.fill("#token", token)
    page.screenshot(path=screenshots / "sign-in.png")
    page.click("#sign-in button[type=submit]")
    expect(page.locator("#owner")).to_have_text("desk", **within)
    assert "wirewatch_session" not in page.evaluate("document.cookie")  # HTTP-only

    # A new subscription: the query box answers as it is typed.
    page.click("#new-subscription")
    page.fill("#name", "reactor inspections")
    query = page.locator("#query")
    query.press_sequentially("reactor AND (inspectors OR ")
    problem = page.locator("#query-problem")
    expect(problem).to_be_visible(**within)
    expect(problem).not_to_be_empty()
    query.press_sequentially("inspection)")
    expect(problem).to_be_hidden(**within)
    expect(page.locator("#backtest mark").first).to_be_visible(**within)
    summary = page.inner_text("#backtest-summary")
    assert "1 matching article" in summary and "1 alert" in summary
    assert earlier in page.inner_text("#backtest .title")
    marked = {text.lower() for text in page.locator("#backtest mark").all_inner_texts()}
    assert marked <= {"reactor", "inspectors", "inspection"} and "reactor" in marked
    page.fill("#webhooks", receiver.url)
    page.screenshot(path=screenshots / "subscription-backtest.png")
    page.click("#save")
    expect(page.locator("#saved")).to_be_visible(**within)
    page.get_by_role("link", name="Subscriptions", exact=True).click()
    row = page.locator('#subscriptions tr[data-name="reactor inspections"]')
    expect(row).to_contain_text("active", **within)
    expect(row).to_contain_text("webhook")

    # A matching file lands in the inbox; its alert reaches the receiver and the history.
    later = "Reactor inspection resumes after talks in Vienna"
    drop(
        settings,
        "02-vienna.txt",
        later,
        now,
        "The reactor inspection at Yongbyon resumed on Friday after two days of talks in Vienna, "
        "the agency said. Inspectors will report to the board next month.",
    )
    received = receiver.wait_for(1, timeout=WAIT)
    assert [alert["article"]["title"] for alert in received] == [later]
    page.get_by_role("link", name="Alert history").click()
    delivered = page.locator("#alerts tr.delivered")
    deadline = time.monotonic() + WAIT
    while delivered.count() == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
        page.reload()
    expect(delivered).to_have_count(1)
    expect(delivered).to_contain_text("reactor inspections")
    expect(delivered).to_contain_text("webhook")
    page.screenshot(path=screenshots / "alert-history.png")
    delivered.get_by_role("link", name=later).click()
    expect(page.locator("h1")).to_have_text(later, **within)
    expect(page.locator("article")).to_contain_text("talks in Vienna")

    for name in ("sign-in.png", "subscription-backtest.png", "alert-history.png"):
        assert (screenshots / name).read_bytes().startswith(b"\x89PNG")
