"""Heartbeats tell a stopped loop from a live one, for `wirewatch health --service`."""

from __future__ import annotations

import time

import pytest

from shared.heartbeat import Heartbeat, quiet_loops


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_the_workers_and_alerters_loops_beat_while_they_run(settings, redis_client, worker, store):
    deadline = time.monotonic() + 10
    while (quiet_loops(redis_client, "worker") or quiet_loops(redis_client, "alerter")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert quiet_loops(redis_client, "worker") == [] and quiet_loops(redis_client, "alerter") == []
    assert quiet_loops(redis_client, "fetcher") == ["fetcher", "push"]  # no fetcher runs here


def test_a_loop_that_stops_beating_goes_quiet(redis_client):
    Heartbeat(redis_client, "alerter").beat()
    assert quiet_loops(redis_client, "alerter") == []
    redis_client.delete(*redis_client.keys("ww:heartbeat:*"))  # as its lifetime running out would
    assert quiet_loops(redis_client, "alerter") == ["alerter"]
