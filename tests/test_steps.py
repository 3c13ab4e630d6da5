"""The steps as functions over a real Redis: what an alert says of its story, and the enrich
pipeline's read-only use of what the ingest pipeline learned."""

from __future__ import annotations

import json

from shared import redis_keys
from shared.alerting.subscriptions import save_subscription, webhook_subscription
from shared.pipeline.context import build_context
from shared.pipeline.pipelines import ENRICH, INGEST, QUEUED
from shared.pipeline.steps import STEPS, BatchState, run_pipeline
from tests.factories import make_article

REPORT = (
    "North Korea fired a ballistic missile from near Pyongyang into the sea on Saturday morning, "
    "the South Korean military said, the third launch this month. The missile flew about 620 "
    "kilometres before falling outside Japan's exclusive economic zone."
)
SIGN_OFF = "Follow the Harbour Gazette for more reporting from the region every day."


def run(names, article, context):
    state = BatchState(None)
    for name in names:
        article = STEPS[name].function(article, context, state)
    return article


def test_the_ingest_pipeline_is_every_step_once_and_the_queue_ends_at_index():
    assert set(INGEST) == set(STEPS) and len(INGEST) == len(STEPS)
    assert QUEUED[-1] == "index" and INGEST.index("dedupe") == 0
    assert INGEST.index("tag") < INGEST.index("story") < INGEST.index("index") < INGEST.index("match_alerts")


def test_an_alert_counts_every_article_its_story_has(settings, redis_client):
    context = build_context(settings, redis_client)
    save_subscription(redis_client, "desk", webhook_subscription("launches", "missile", "https://hooks.example.org/x"))
    first = make_article("North Korea fires ballistic missile into the sea", REPORT, url="https://a.example/1")
    second = make_article(
        "Pyongyang launches ballistic missile toward Japan, Seoul says",
        "South Korea's joint chiefs of staff said the ballistic missile was launched from near Pyongyang "
        "early on Saturday and came down in the sea outside Japan's economic zone. Tokyo protested the "
        "launch through diplomatic channels, calling the North Korean missile a threat to shipping.",
        url="https://b.example/2",
    )
    for topic in ("harbour traffic", "wheat prices", "a city budget", "rail strikes", "a film"):
        # other news, so that the words the two reports share stand out from the background
        background = f"A report on {topic} from the regional desk, with figures for the week and comment."
        run(["dedupe", "clean", "tag", "story"], make_article(f"On {topic}", background), context)
    first = run(["dedupe", "clean", "tag", "story"], first, context)
    second = run(["dedupe", "clean", "tag", "story"], second, context)
    assert second.cluster_id == first.cluster_id

    run(["match_alerts"], second, context)

    (entry,) = [json.loads(raw) for raw in redis_client.hvals(redis_keys.OUTBOX)]
    assert entry["payload"]["story"] == {"id": first.cluster_id, "articles": 2}


def test_the_enrich_pipeline_removes_learned_boilerplate_without_learning(settings, redis_client):
    learning = build_context(settings, redis_client)
    for number in range(settings.boilerplate_min_articles):
        text = f"Report number {number} on harbour traffic and the fishing fleet today.\n\n{SIGN_OFF}"
        run(["clean"], make_article(f"Harbour report {number}", text, source="Harbour Gazette"), learning)
    counted = redis_client.dbsize()

    reading = build_context(settings, redis_client, learn=False)
    stored = make_article(
        "Harbour report late", f"The late report on the fleet.\n\n{SIGN_OFF}", source="Harbour Gazette"
    )
    (enriched,) = run_pipeline(ENRICH, [stored], reading)

    assert SIGN_OFF not in enriched.text and enriched.text.startswith("The late report")
    assert any("printed in" in note for note in enriched.notes)
    assert redis_client.dbsize() == counted  # nothing new remembered
