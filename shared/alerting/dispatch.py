"""Raising an alert: the re-alert policy, then the outbox now or the next digest.

Called by the chain's match step. Alerts are grouped (by story, by article, or by the value
of a field the subscription names); a group alerts again only for an article at least the
subscription's re-alert window away in time (published, else first seen) from every article it
already alerted on, so a new event never hides in an old story. Instant alerts go to the
outbox, one entry per channel; hourly and daily subscriptions, and instant ones past their
hourly cap, collect in a digest bucket that the alerter turns into one message per channel
when the period ends. The policy check and every write of an alert are one Redis script: a
crash at any point leaves either the whole alert queued or nothing, and a redelivered task
queues nothing twice.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from shared import redis_keys
from shared.alerting.outbox import entry_id, outbox_record
from shared.alerting.subscriptions import Subscription

ALERT_MEMORY_SECONDS = 30 * 86400  # how long a group's alerts are remembered
PERIODS = {"hourly": 3600, "daily": 86400}

# KEYS: the group's memory, the outbox hash, its due set, a digest bucket, the digests' due set,
# the alerter's wake list.
# ARGV: the article's time, the window (0: never again), the memory's lifetime, the article id,
# then "digest" with the payload and the period end, or "instant" with the due time and pairs
# of (entry id, record). Returns 1 when the alert was queued, 0 when the policy held it back.
_POLICY = """
local t, window = tonumber(ARGV[1]), tonumber(ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return 0 end
if window <= 0 then
    if redis.call('ZCARD', KEYS[1]) > 0 then return 0 end
elseif #redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (t - window), '(' .. (t + window), 'LIMIT', 0, 1) > 0 then
    return 0
end
"""
_RAISE = (
    _POLICY
    + """
redis.call('ZADD', KEYS[1], t, ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if ARGV[5] == 'digest' then
    redis.call('RPUSH', KEYS[4], ARGV[6])
    redis.call('ZADD', KEYS[5], ARGV[7], KEYS[4])
    return 1
end
for i = 7, #ARGV, 2 do
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    redis.call('ZADD', KEYS[3], ARGV[6], ARGV[i])
end
redis.call('LPUSH', KEYS[6], 1)
redis.call('LTRIM', KEYS[6], 0, 0)
return 1
"""
)
# The policy alone, writing nothing (KEYS and ARGV as above, up to the article id): 1 when an
# alert would be queued.
_WOULD_RAISE = _POLICY + "return 1"


def alert_group(subscription: Subscription, payload: dict[str, Any]) -> str:
    """Which group an alert belongs to under the subscription's policy: its story (the
    default), its article, the value of the subscription's `realert_field`, or — for
    `story-and-update` — an update of an alerted article, which alerts once more."""
    article = payload["article"]
    if subscription.realert == "article":
        return f"article:{article['id']}"
    if subscription.realert == "story-and-update" and article.get("version", 1) > 1:
        return f"update:{article['id']}"
    if subscription.realert_field:
        value = article.get(subscription.realert_field)
        values = sorted(value) if isinstance(value, list) else [value] if value else []
        if values:
            return f"{subscription.realert_field}:{'|'.join(values)}"
    return f"story:{payload['story']['id']}"


def alert_time(payload: dict[str, Any]) -> float:
    """The time an alert is about: the article's publication, else when it was first seen."""
    article = payload["article"]
    stamp = article.get("published_at") or article.get("ingested_at")
    return datetime.fromisoformat(stamp).timestamp() if stamp else time.time()


def window_seconds(subscription: Subscription, group: str) -> float:
    # An article or an update alerts once, whatever the window.
    return 0.0 if group.startswith(("article:", "update:")) else subscription.realert_window_hours * 3600


def repeats(alerted_times: Iterable[float], moment: float, window: float) -> bool:
    """Whether an alert at `moment` is held back by a group's earlier alerts (the rule the
    Redis script applies, for replays that keep their memory in a process)."""
    times = list(alerted_times)
    if window <= 0:
        return bool(times)
    return any(abs(moment - earlier) < window for earlier in times)


class Dispatcher:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._raise = client.register_script(_RAISE)
        self._would_raise = client.register_script(_WOULD_RAISE)

    def would_raise(self, alerts: list[tuple[Subscription, dict[str, Any]]]) -> list[bool]:
        """For each (subscription, payload) whether the policy lets the alert through now, in
        one round trip and writing nothing; the payload needs only its `article` and `story`.
        `raise_alert` decides again, atomically: this only spares building what it would drop."""
        calls = []
        for subscription, payload in alerts:
            keys, args = self._policy(subscription, payload)
            calls.append((keys, args[:-1]))
        return [bool(result) for result in _run_each(self.client, self._would_raise, calls)]

    def raise_alert(self, subscription: Subscription, payload: dict[str, Any], run_id: str | None = None) -> bool:
        """Queue the alert unless the policy holds it back; True if it was queued."""
        return self.raise_alerts([(subscription, payload)], run_id)[0]

    def raise_alerts(self, alerts: list[tuple[Subscription, dict[str, Any]]], run_id: str | None = None) -> list[bool]:
        """`raise_alert` for many alerts in one round trip (each still decided atomically)."""
        calls = [self._raising(subscription, payload, run_id) for subscription, payload in alerts]
        return [bool(result) for result in _run_each(self.client, self._raise, calls)]

    def _raising(
        self, subscription: Subscription, payload: dict[str, Any], run_id: str | None
    ) -> tuple[list[str], list[Any]]:
        keys, args = self._policy(subscription, payload)
        group, article_id = args.pop(), args[3]
        now = time.time()
        period = digest_period(subscription, self._over_rate(subscription, now))
        if period is None:
            args += ["instant", now]
            for number, channel in enumerate(subscription.channels):
                entry = entry_id(subscription.id, f"{group}\x00{article_id}", number)
                args += [entry, json.dumps(outbox_record(payload, channel.model_dump(), run_id), ensure_ascii=False)]
        else:
            end = int(now // period + 1) * period
            keys[3] = redis_keys.digest_bucket(subscription.id, end)
            args += ["digest", json.dumps(payload, ensure_ascii=False), end]
        return keys, args

    @staticmethod
    def _policy(subscription: Subscription, payload: dict[str, Any]) -> tuple[list[str], list[Any]]:
        """The scripts' keys and their first arguments for one alert; the group comes last."""
        group = alert_group(subscription, payload)
        article_id = payload["article"]["id"] + (
            f":v{payload['article'].get('version', 1)}" if group.startswith("update:") else ""
        )
        keys = [
            redis_keys.alerted(subscription.id, group),
            redis_keys.OUTBOX,
            redis_keys.OUTBOX_DUE,
            redis_keys.DIGESTS_DUE,  # stands in for the bucket on the instant path
            redis_keys.DIGESTS_DUE,
            redis_keys.OUTBOX_WAKE,
        ]
        args = [alert_time(payload), window_seconds(subscription, group), ALERT_MEMORY_SECONDS, article_id, group]
        return keys, args

    def _over_rate(self, subscription: Subscription, now: float) -> bool:
        if subscription.mode != "instant" or subscription.max_per_hour is None:
            return False
        key = redis_keys.rate(subscription.id, int(now // 3600))
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, 7200)
        count, _ = pipe.execute()
        return int(count) > subscription.max_per_hour


def _run_each(client: redis.Redis, script: Script, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
    """The script run once for each (keys, args), all in one round trip, by its digest alone:
    a pipeline carrying scripts would first ask Redis whether it has them, a round trip of its
    own. Calls Redis had no script for (it restarted) did nothing, and are made again once the
    script is loaded."""
    if not calls:
        return []
    results = _by_digest(client, script.sha, calls)
    missing = [number for number, result in enumerate(results) if isinstance(result, NoScriptError)]
    if missing:
        client.script_load(script.script)
        again = _by_digest(client, script.sha, [calls[number] for number in missing])
        for number, result in zip(missing, again, strict=True):
            results[number] = result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def _by_digest(client: redis.Redis, digest: str, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for keys, args in calls:
        pipe.evalsha(digest, len(keys), *keys, *args)
    return list(pipe.execute(raise_on_error=False))


def digest_period(subscription: Subscription, over_rate: bool) -> int | None:
    """The digest period an alert waits for, or None when it goes out now. Instant alerts past
    the hourly cap are not dropped: they wait for the hourly digest."""
    if subscription.mode == "instant":
        return PERIODS["hourly"] if over_rate else None
    return PERIODS[subscription.mode]


def digest_payload(subscription: Subscription, alerts: list[dict[str, Any]], period_end: int) -> dict[str, Any]:
    """One message for a period's alerts, grouped by story."""
    stories: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for alert in alerts:
        stories[alert["story"]["id"]].append(alert["article"])
    return {
        "subscription": {"id": subscription.id, "name": subscription.name, "owner": subscription.owner},
        "query": subscription.query,
        "digest": {
            "period_end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(period_end)),
            "alerts": len(alerts),
            "stories": [{"story": story, "articles": articles} for story, articles in stories.items()],
        },
    }
