"""The chain's steps as plain functions, and the runner that applies one step to a batch.

A step takes an article (or, for indexing, the batch) and the worker context and returns
the article, or None when the article leaves the chain here (an exact duplicate). The
runner gives every article its own fate: a permanent error quarantines that article with
the reason and the rest go on; a transient error propagates so the task retries the batch
(every step is idempotent, so a retry repeats nothing visible).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from services.worker.clean import clean, extract_text
from services.worker.context import WorkerContext
from services.worker.dedupe import Verdict
from services.worker.indexer import submit
from services.worker.match import alert_payload, match_alerts
from services.worker.tag import tag
from shared import runs
from shared.article import Article
from shared.celery_app import TRANSIENT_ERRORS
from shared.deadletters import quarantine

log = logging.getLogger(__name__)


@dataclass
class BatchState:
    """What one batch carries between its articles: its run and the outcome counts."""

    run_id: str | None
    counts: Counter[str] = field(default_factory=Counter)


ArticleStep = Callable[[Article, WorkerContext, BatchState], Article | None]
BatchStep = Callable[[list[Article], WorkerContext, BatchState], list[Article]]


def dedupe_step(article: Article, ctx: WorkerContext, state: BatchState) -> Article | None:
    extract_text(article)  # duplicates are judged on text, never on markup
    verdict = ctx.deduper.check(article)
    if verdict is Verdict.DUPLICATE:
        state.counts["duplicates"] += 1
        return None
    if verdict is Verdict.NEAR_DUPLICATE:
        state.counts["near_duplicates"] += 1
    elif verdict is Verdict.UPDATE:
        state.counts["updates"] += 1
    return article


def clean_step(article: Article, ctx: WorkerContext, state: BatchState) -> Article | None:
    return clean(article, ctx.boilerplate, ctx.learned_boilerplate)


def tag_step(article: Article, ctx: WorkerContext, state: BatchState) -> Article | None:
    return tag(article, ctx.taxonomy.current())


def story_step(article: Article, ctx: WorkerContext, state: BatchState) -> Article | None:
    ctx.stories.assign(article)
    return article


def index_step(articles: list[Article], ctx: WorkerContext, state: BatchState) -> list[Article]:
    # The bulk indexer writes this batch together with others and then sends it on to
    # match_alerts; the chain itself ends here.
    submit(ctx.redis, articles, state.run_id)
    return []


def match_alerts_step(article: Article, ctx: WorkerContext, state: BatchState) -> Article | None:
    found = match_alerts(article, ctx.matcher)
    if found:
        story_size = max(1, ctx.deduper.story_size(article.cluster_id or article.id))
        for match in found:
            payload = alert_payload(match.subscription, article, match.matched, story_size)
            if ctx.dispatcher.raise_alert(match.subscription, payload, state.run_id):
                state.counts["alerts"] += 1
    return article


@dataclass(frozen=True)
class Step:
    name: str
    function: ArticleStep | BatchStep
    whole_batch: bool = False


# The order of the chain. Dedupe is the gate: what it drops costs nothing further.
# Index comes before matching so that an alert never points at an article not yet stored:
# the bulk indexer (services/worker/indexer.py) sends match_alerts once a batch is written.
STEPS = (
    Step("dedupe", dedupe_step),
    Step("clean", clean_step),
    Step("tag", tag_step),
    Step("story", story_step),  # needs the entities and tags that tag found
    Step("index", index_step, whole_batch=True),
    Step("match_alerts", match_alerts_step),
)


def run_step(step: Step, batch: dict[str, Any], ctx: WorkerContext, *, last: bool) -> dict[str, Any]:
    """Apply one step to a batch message and return the message for the next step."""
    state = BatchState(batch.get("run"))
    articles = []
    for raw in batch["articles"]:
        try:
            articles.append(Article.model_validate(raw))
        except ValueError as error:
            _quarantine(ctx, state, step.name, f"invalid article: {error}", raw)
    survivors: list[Article] = []
    if step.whole_batch:
        batch_step = cast(BatchStep, step.function)
        survivors = batch_step(articles, ctx, state) if articles else []
    else:
        article_step = cast(ArticleStep, step.function)
        for article in articles:
            try:
                result = article_step(article, ctx, state)
            except TRANSIENT_ERRORS:
                raise
            except Exception as error:  # one bad article must not stop the batch
                log.warning("article %s quarantined at %s: %r", article.id, step.name, error)
                _quarantine(ctx, state, step.name, f"{type(error).__name__}: {error}", article.to_message())
                continue
            if result is None:
                state.counts["done"] += 1
            else:
                survivors.append(result)
    if last:
        state.counts["done"] += len(survivors)
    runs.record(ctx.redis, state.run_id, state.counts)
    return {"run": state.run_id, "articles": [article.to_message() for article in survivors]}


def quarantine_batch(batch: dict[str, Any], ctx: WorkerContext, stage: str, reason: str) -> None:
    """Keep every article of a batch whose task failed for good (retries spent, or a bug)."""
    state = BatchState(batch.get("run"))
    for raw in batch.get("articles", []):
        _quarantine(ctx, state, stage, reason, raw)
    runs.record(ctx.redis, state.run_id, state.counts)


def _quarantine(ctx: WorkerContext, state: BatchState, stage: str, reason: str, item: dict[str, Any]) -> None:
    quarantine(ctx.redis, stage=stage, reason=reason, item=item)
    state.counts["rejected"] += 1
    state.counts["done"] += 1
