"""The alerter service: a loop that sends what is due in the outbox, until stopped."""

from __future__ import annotations

import logging
import threading

import redis

from shared.alerting.delivery import AlertSender
from shared.backoff import compute_backoff
from shared.heartbeat import Heartbeat
from shared.metrics import serve_metrics

log = logging.getLogger(__name__)

IDLE_SECONDS = 0.5  # the longest an idle alerter waits: a new alert wakes it at once


def run_alerter(sender: AlertSender, stop: threading.Event) -> None:
    """Deliver until `stop`; Redis outages are waited out."""
    failures = 0
    heartbeat = Heartbeat(sender.client, "alerter")
    serve_metrics("alerter", sender.settings, sender.client)
    try:
        while not stop.is_set():
            try:
                heartbeat.beat()
                if not sender.tick():
                    sender.outbox.wait(IDLE_SECONDS)
                failures = 0
            except Exception as error:  # whatever its clients raise, the loop carries on
                delay = compute_backoff(failures, first=0.5, maximum=30)
                if isinstance(error, (redis.ConnectionError, redis.TimeoutError)):
                    log.warning("alerter waiting %.1f s for Redis: %s", delay, error)
                else:
                    log.exception("alerter failed; again in %.1f s", delay)
                failures += 1
                stop.wait(delay)
    finally:
        sender.close()
