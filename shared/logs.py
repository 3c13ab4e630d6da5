"""Log lines: readable text by default, one JSON object per line with `WIREWATCH_LOG_FORMAT=json`.

A JSON line carries the service, and the article id, step and run id where they apply. Lines
about an article already say `article=<id> step=<name>` in their message; those words become
fields. The step runner also names its step and run for the process (`bind`), so every line
logged while a step runs carries them too.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_FIELDS_IN_MESSAGE = re.compile(r"(?<![\w-])(article|step|run)=([^\s,;]+)")
# Fields a call may pass with `extra=` (the API's request lines); nothing else is copied, so a
# stray attribute can never carry a secret into the log.
EXTRA_FIELDS = ("method", "path", "status", "duration_ms", "address")

_step: contextvars.ContextVar[str | None] = contextvars.ContextVar("step", default=None)
_run: contextvars.ContextVar[str | None] = contextvars.ContextVar("run", default=None)


def bind(*, step: str | None, run: str | None) -> None:
    """Name the step and run this thread is working on, for every line it logs from now on."""
    _step.set(step)
    _run.set(run)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, service, logger, message, and the article id,
    step and run id where they apply."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": message,
        }
        found = dict(_FIELDS_IN_MESSAGE.findall(message))
        step, run = found.get("step") or _step.get(), found.get("run") or _run.get()
        if "article" in found:
            line["article"] = found["article"]
        if step:
            line["step"] = step
        if run and run != "None":
            line["run"] = run
        for name in EXTRA_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str, service: str, log_format: str = "text") -> None:
    """Send every logger's lines to stderr, as text or as JSON lines naming `service`."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(service) if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    logging.captureWarnings(True)  # a library's warning is a log line too, in the same format
