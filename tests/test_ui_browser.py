"""The web UI in a real headless browser (Debian's chromium, driven through its chromedriver by
Selenium) over the real services: the fetcher watching the inbox, a Celery worker with the bulk
indexer and the alerter, the API under uvicorn, and a webhook receiver. An analyst signs in,
types a subscription (a parse error first, then its backtest with the matched words marked),
saves it, a matching file is dropped into the inbox, and its alert shows up in the history.

Screenshots go to $UI_SCREENSHOTS when set (the README's come from `UI_SCREENSHOTS=deploy/screenshots`),
else to the test's temporary folder. Without chromium the test is skipped on a laptop and fails
under CI=true."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from services.api.app import create_app
from services.fetcher.service import Fetcher
from shared.queue import enqueue_batch
from shared.redis_client import get_redis
from shared.store.sqlite import SqliteStore
from shared.tokens import create_token

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT = 90  # seconds; the chain and the browser share two cores with everything else

pytestmark = pytest.mark.slow


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "store.sqlite3")


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = f"the browser test needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)  # Debian's, never a download of the test tool's own
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1360,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


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
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    app = create_app(settings.model_copy(update={"operators": "desk"}), store=store, client=redis_client)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)


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
    settings, redis_client, store, fetcher, ui_url, receiver, browser, screenshots
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT, poll_frequency=0.2)
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
    browser.get(f"{ui_url}/ui/subscriptions")
    wait.until(lambda driver: driver.current_url.endswith("/ui/sign-in"))
    browser.find_element(By.ID, "token").send_keys(token)
    browser.save_screenshot(str(screenshots / "sign-in.png"))
    browser.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()
    wait.until(lambda driver: driver.find_element(By.ID, "owner").text == "desk")
    assert "wirewatch_session" not in browser.execute_script("return document.cookie")  # HTTP-only

    # A new subscription: the query box answers as it is typed.
    browser.find_element(By.ID, "new-subscription").click()
    browser.find_element(By.ID, "name").send_keys("reactor inspections")
    query = browser.find_element(By.ID, "query")
    query.send_keys("reactor AND (inspectors OR ")
    problem = browser.find_element(By.ID, "query-problem")
    wait.until(lambda driver: problem.is_displayed() and problem.text)
    query.send_keys("inspection)")
    wait.until(lambda driver: not problem.is_displayed())
    wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, "#backtest mark"))
    summary = browser.find_element(By.ID, "backtest-summary").text
    assert "1 matching article" in summary and "1 alert" in summary
    assert earlier in browser.find_element(By.CSS_SELECTOR, "#backtest .title").text
    marked = {mark.text.lower() for mark in browser.find_elements(By.CSS_SELECTOR, "#backtest mark")}
    assert marked <= {"reactor", "inspectors", "inspection"} and "reactor" in marked
    browser.find_element(By.ID, "webhooks").send_keys(receiver.url)
    browser.save_screenshot(str(screenshots / "subscription-backtest.png"))
    browser.find_element(By.ID, "save").click()
    wait.until(lambda driver: driver.find_elements(By.ID, "saved"))
    browser.find_element(By.LINK_TEXT, "Subscriptions").click()
    row = browser.find_element(By.CSS_SELECTOR, '#subscriptions tr[data-name="reactor inspections"]')
    assert "active" in row.text and "webhook" in row.text

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
    browser.find_element(By.LINK_TEXT, "Alert history").click()
    deadline = time.monotonic() + WAIT
    while not browser.find_elements(By.CSS_SELECTOR, "#alerts tr.delivered") and time.monotonic() < deadline:
        time.sleep(0.5)
        browser.refresh()
    (delivered,) = browser.find_elements(By.CSS_SELECTOR, "#alerts tr.delivered")
    assert "reactor inspections" in delivered.text and "webhook" in delivered.text
    browser.save_screenshot(str(screenshots / "alert-history.png"))
    delivered.find_element(By.LINK_TEXT, later).click()
    wait.until(lambda driver: driver.find_element(By.TAG_NAME, "h1").text == later)
    assert "talks in Vienna" in browser.find_element(By.CSS_SELECTOR, "article").text

    for name in ("sign-in.png", "subscription-backtest.png", "alert-history.png"):
        assert (screenshots / name).read_bytes().startswith(b"\x89PNG")
