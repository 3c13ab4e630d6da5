"""What the steps need, built once per worker process: never at import time."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from services.alerter.dispatch import Dispatcher
from services.worker.boilerplate import LearnedBoilerplate
from services.worker.clean import BoilerplateRules
from services.worker.dedupe import Deduper
from services.worker.match import SubscriptionMatcher
from services.worker.stories import StoryClusterer
from services.worker.tag import TaxonomyFiles
from shared.redis_client import get_redis
from shared.settings import Settings, get_settings
from shared.store import Store, process_store


@dataclass
class WorkerContext:
    settings: Settings
    redis: redis.Redis
    store: Store
    deduper: Deduper
    boilerplate: BoilerplateRules
    taxonomy: TaxonomyFiles
    matcher: SubscriptionMatcher
    dispatcher: Dispatcher
    stories: StoryClusterer
    learned_boilerplate: LearnedBoilerplate


def build_context(settings: Settings, store: Store | None = None) -> WorkerContext:
    """Clients and compiled vocabularies for one worker process."""
    client = get_redis(settings)
    return WorkerContext(
        settings=settings,
        redis=client,
        store=store if store is not None else process_store(settings),
        deduper=Deduper(client, settings.dedupe_window_seconds, settings.near_duplicate_threshold),
        boilerplate=BoilerplateRules.load(),
        taxonomy=TaxonomyFiles(settings.taxonomy),
        matcher=SubscriptionMatcher(client),
        dispatcher=Dispatcher(client),
        stories=StoryClusterer(client, settings.story_window_days, settings.story_threshold),
        learned_boilerplate=LearnedBoilerplate(client, settings.boilerplate_min_articles, settings.dedupe_window_days),
    )


_context: WorkerContext | None = None


def current_context() -> WorkerContext:
    """The process's context, built on first use from the settings."""
    global _context
    if _context is None:
        _context = build_context(get_settings())
    return _context


def use_context(context: WorkerContext | None) -> None:
    """Install a context (tests running a worker in-process), or None to rebuild on next use."""
    global _context
    _context = context
