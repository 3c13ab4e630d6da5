"""What the steps need: clients and compiled vocabularies, built once per worker process at
start-up (never at import time) and passed to every step."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from shared.alerting.dispatch import Dispatcher
from shared.alerting.matching import SubscriptionMatcher
from shared.pipeline.boilerplate import LearnedBoilerplate
from shared.pipeline.clean import BoilerplateRules, language_of
from shared.pipeline.dedupe import Deduper
from shared.pipeline.stories import StoryClusterer, word_weight
from shared.pipeline.tag import TaxonomyFiles
from shared.settings import Settings


@dataclass
class PipelineContext:
    settings: Settings
    redis: redis.Redis
    deduper: Deduper
    boilerplate: BoilerplateRules
    taxonomy: TaxonomyFiles
    matcher: SubscriptionMatcher
    dispatcher: Dispatcher
    stories: StoryClusterer
    learned_boilerplate: LearnedBoilerplate


def build_context(settings: Settings, client: redis.Redis, *, learn: bool = True) -> PipelineContext:
    """Everything the steps use, for one process. `learn=False` (the enrich pipeline) reads the
    per-source boilerplate memory without adding to it."""
    return PipelineContext(
        settings=settings,
        redis=client,
        deduper=Deduper(client, settings.dedupe_window_seconds, settings.near_duplicate_threshold),
        boilerplate=BoilerplateRules.load(),
        taxonomy=TaxonomyFiles(settings.taxonomy),
        matcher=SubscriptionMatcher(client),
        dispatcher=Dispatcher(client),
        stories=StoryClusterer(client, settings.story_window_days, settings.story_threshold),
        learned_boilerplate=LearnedBoilerplate(
            client, settings.boilerplate_min_articles, settings.dedupe_window_days, learn=learn
        ),
    )


def load_models() -> None:
    """Load now what the steps would load on their first articles: the English word
    frequencies that weigh a story's words, and the language identification model. A worker
    loads them before it forks its pool, so that its processes share one copy and none pays
    the load (about half a second) on its first batch."""
    word_weight("news")
    language_of("news from the wire")
