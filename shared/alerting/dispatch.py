"""Raising an alert: once per story (or article), now or in the next digest.

Called by the chain's match step. Instant alerts go to the outbox, one entry per channel;
hourly and daily subscriptions, and instant ones past their hourly cap, collect in a digest
bucket that the alerter turns into one message per channel when the period ends.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

import redis

from shared import redis_keys
from shared.alerting.outbox import Outbox, entry_id
from shared.alerting.subscriptions import Subscription

ALERT_MEMORY_SECONDS = 30 * 86400  # how long "this story was alerted" is remembered
PERIODS = {"hourly": 3600, "daily": 86400}

# Remember the alert and add it to the digest bucket in one step, or do nothing if it was
# raised before: a crash can never leave it remembered but not queued.
_TO_DIGEST = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('RPUSH', KEYS[2], ARGV[2])
    redis.call('ZADD', KEYS[3], ARGV[3], KEYS[2])
    return 1
end
return 0
"""


def alert_key(subscription: Subscription, payload: dict[str, Any]) -> str:
    """What 'the same alert' means for this subscription: the story, or the article; an
    update is its own alert, once, where the subscription asks for it."""
    article = payload["article"]
    if subscription.realert == "article":
        return f"article:{article['id']}"
    if subscription.realert == "story-and-update" and article.get("version", 1) > 1:
        return f"update:{article['id']}"
    return f"story:{payload['story']['id']}"


class Dispatcher:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.outbox = Outbox(client)
        self._to_digest = client.register_script(_TO_DIGEST)

    def raise_alert(self, subscription: Subscription, payload: dict[str, Any], run_id: str | None = None) -> bool:
        """Queue the alert unless this subscription already alerted on its story; True if queued."""
        key = alert_key(subscription, payload)
        now = time.time()
        if subscription.mode == "instant":
            first = entry_id(subscription.id, key, 0)
            if self.client.hexists(redis_keys.OUTBOX, first):
                return False
            if not self._over_rate(subscription, now):
                added = False
                for number, channel in enumerate(subscription.channels):
                    added |= self.outbox.add(
                        entry_id(subscription.id, key, number), payload, channel.model_dump(), run_id=run_id
                    )
                return added
            period = PERIODS["hourly"]  # past the hourly cap: nothing is lost, it waits for the digest
        else:
            period = PERIODS[subscription.mode]
        end = int(now // period + 1) * period
        bucket = redis_keys.digest_bucket(subscription.id, end)
        return bool(
            self._to_digest(
                keys=[redis_keys.alert_claim(subscription.id, key), bucket, redis_keys.DIGESTS_DUE],
                args=[ALERT_MEMORY_SECONDS, json.dumps(payload, ensure_ascii=False), end],
            )
        )

    def _over_rate(self, subscription: Subscription, now: float) -> bool:
        if subscription.max_per_hour is None:
            return False
        key = redis_keys.rate(subscription.id, int(now // 3600))
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, 7200)
        count, _ = pipe.execute()
        return int(count) > subscription.max_per_hour


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
