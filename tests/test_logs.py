"""Log lines: readable text by default, JSON objects on request, each naming the service and,
where they apply, the article, step and run."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import logs

ROOT = Path(__file__).parents[1]


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root logger's output, as configured by `configure_logging`, restored afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.captureWarnings(False)
    logs.bind(step=None, run=None)


def configure(stream: io.StringIO, log_format: str) -> None:
    logs.configure_logging("info", "worker", log_format)
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_service_article_step_and_run(captured):
    configure(captured, "json")
    log = logging.getLogger("shared.pipeline.steps")
    logs.bind(step="clean", run="run-7")
    log.warning("article=%s step=%s quarantined: %r", "a1b2", "clean", ValueError("bad, very bad"))
    log.info("step=%s articles=%d out=%d seconds=%.4f", "clean", 3, 2, 0.01)
    logs.bind(step=None, run=None)
    log.info("fetcher watching the inbox")

    quarantined, batch, plain = lines(captured)
    assert quarantined["service"] == "worker" and quarantined["level"] == "warning"
    assert (quarantined["article"], quarantined["step"], quarantined["run"]) == ("a1b2", "clean", "run-7")
    assert quarantined["message"] == "article=a1b2 step=clean quarantined: ValueError('bad, very bad')"
    assert (batch["step"], batch["run"]) == ("clean", "run-7") and "article" not in batch
    assert {"article", "step", "run"}.isdisjoint(plain) and plain["logger"] == "shared.pipeline.steps"


def test_the_step_and_run_a_thread_is_bound_to_stay_in_that_thread(captured):
    configure(captured, "json")
    logs.bind(step="tag", run="run-1")

    def other() -> None:
        logs.bind(step="story", run="run-2")
        logging.getLogger("x").info("in the other thread")

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    logging.getLogger("x").info("in this thread")
    other_line, this_line = lines(captured)
    assert (other_line["step"], other_line["run"]) == ("story", "run-2")
    assert (this_line["step"], this_line["run"]) == ("tag", "run-1")


def test_only_named_extras_are_copied_and_errors_keep_their_traceback(captured):
    configure(captured, "json")
    log = logging.getLogger("services.api.app")
    log.info("GET /alerts 200 1.0 ms", extra={"method": "GET", "status": 200, "authorization": "Bearer s3cret"})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failed")
    request, failure = lines(captured)
    assert (request["method"], request["status"]) == ("GET", 200)
    assert "authorization" not in request and "s3cret" not in captured.getvalue()
    assert "RuntimeError: boom" in failure["error"] and failure["level"] == "error"


def test_text_stays_the_default(captured):
    configure(captured, "text")
    logging.getLogger("shared.x").warning("article=%s step=dedupe duplicate", "a1")
    assert captured.getvalue().rstrip().endswith("WARNING shared.x: article=a1 step=dedupe duplicate")


def test_a_librarys_warning_is_a_json_line_too():
    script = (
        "import warnings; from shared.logs import configure_logging\n"
        "configure_logging('info', 'worker', 'json')\n"
        "warnings.warn('running as root is not recommended', UserWarning)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    (line,) = [json.loads(text) for text in done.stderr.splitlines()]
    assert line["logger"] == "py.warnings" and "running as root" in line["message"]
