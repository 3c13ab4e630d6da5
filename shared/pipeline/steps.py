"""The pipeline's steps as plain functions, and the runner that applies one step to a batch.

A step takes an article (or, for indexing, the batch), the pipeline context and the batch's
state, and returns the article, or None when the article leaves the chain here (an exact
duplicate). The runner gives every article its own fate: a permanent error quarantines that
article with the reason and the rest go on; a transient error propagates so the task retries
the batch (every step is idempotent, so a retry repeats nothing visible). The order of the
steps is declared in `shared.pipeline.pipelines`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from shared import logs, metrics, runs
from shared.alerting.matching import alert_article, alert_payload, alert_story, match_alerts
from shared.article import Article
from shared.deadletters import quarantine
from shared.pipeline.clean import clean, clean_batch, extract_text
from shared.pipeline.context import PipelineContext
from shared.pipeline.dedupe import Verdict, release_claims
from shared.pipeline.indexer import submit
from shared.pipeline.tag import tag
from shared.queue import TRANSIENT_ERRORS
from shared.store import prepare_rows

log = logging.getLogger(__name__)


@dataclass
class BatchState:
    """What one batch carries between its articles: its run and the outcome counts."""

    run_id: str | None
    counts: Counter[str] = field(default_factory=Counter)
    prepared: dict[int, Any] = field(default_factory=dict)
    """What a step's batch preparation found per article (by object identity)."""


ArticleStep = Callable[[Article, PipelineContext, BatchState], Article | None]
BatchStep = Callable[[list[Article], PipelineContext, BatchState], list[Article]]
BatchPreparation = Callable[[list[Article], PipelineContext, BatchState], None]


def prepare_dedupe(articles: list[Article], ctx: PipelineContext, state: BatchState) -> None:
    # The whole batch's Redis work in a few round trips; an article that cannot be read here
    # is left to `dedupe_step`, where its error quarantines it alone.
    ready = []
    for article in articles:
        try:
            extract_text(article)  # duplicates are judged on text, never on markup
        except TRANSIENT_ERRORS:
            raise
        except Exception:
            continue
        ready.append(article)
    try:
        verdicts = ctx.deduper.check_batch(ready)
    except TRANSIENT_ERRORS:
        raise
    except Exception as error:  # judged one by one instead (a retry of a claim changes nothing)
        log.warning("step=dedupe batch judged article by article: %r", error)
        return
    for article, verdict in zip(ready, verdicts, strict=True):
        state.prepared[id(article)] = verdict


def dedupe_step(article: Article, ctx: PipelineContext, state: BatchState) -> Article | None:
    verdict = state.prepared.pop(id(article), None)
    if verdict is None:
        extract_text(article)  # duplicates are judged on text, never on markup
        verdict = ctx.deduper.check(article)
    if verdict is Verdict.DUPLICATE:
        state.counts["duplicates"] += 1
        log.debug("article=%s step=dedupe duplicate", article.id)
        return None
    if verdict is Verdict.NEAR_DUPLICATE:
        state.counts["near_duplicates"] += 1
    elif verdict is Verdict.UPDATE:
        state.counts["updates"] += 1
    return article


def prepare_clean(articles: list[Article], ctx: PipelineContext, state: BatchState) -> None:
    # Cleaning is idempotent: should one article fail here, `clean_step` cleans each article
    # alone, and the one at fault is quarantined there.
    try:
        clean_batch(articles, ctx.boilerplate, ctx.learned_boilerplate)
    except TRANSIENT_ERRORS:
        raise
    except Exception as error:
        log.warning("step=clean batch cleaned article by article: %r", error)
        return
    state.prepared.update((id(article), True) for article in articles)


def clean_step(article: Article, ctx: PipelineContext, state: BatchState) -> Article | None:
    if state.prepared.pop(id(article), None) is not None:
        return article
    return clean(article, ctx.boilerplate, ctx.learned_boilerplate)


def tag_step(article: Article, ctx: PipelineContext, state: BatchState) -> Article | None:
    return tag(article, ctx.taxonomy.current())


def prepare_stories(articles: list[Article], ctx: PipelineContext, state: BatchState) -> None:
    try:
        ctx.stories.assign_batch(articles)
    except TRANSIENT_ERRORS:
        raise
    except Exception as error:  # assigned one by one instead, where an error is noted on its article
        log.warning("step=story batch assigned article by article: %r", error)
        return
    state.prepared.update((id(article), True) for article in articles)


def story_step(article: Article, ctx: PipelineContext, state: BatchState) -> Article | None:
    if state.prepared.pop(id(article), None) is None:
        ctx.stories.assign(article)
    return article


def index_step(articles: list[Article], ctx: PipelineContext, state: BatchState) -> list[Article]:
    # The bulk indexer writes this batch together with others and then sends it on to the
    # steps after indexing; the queued chain itself ends here.
    submit(ctx.redis, articles, state.run_id, prepare_rows(ctx.settings, articles))
    return []


def prepare_alerts(articles: list[Article], ctx: PipelineContext, state: BatchState) -> None:
    # The batch's Redis work in three round trips (the re-alert policy, story sizes, raising);
    # should anything fail here, `match_alerts_step` does each article alone (raising an alert
    # twice queues it once: the policy decides atomically).
    try:
        raised = alert_batch(articles, ctx, state.run_id)
    except TRANSIENT_ERRORS:
        raise
    except Exception as error:
        log.warning("step=match_alerts batch matched article by article: %r", error)
        return
    state.prepared.update((id(article), count) for article, count in zip(articles, raised, strict=True))


def match_alerts_step(article: Article, ctx: PipelineContext, state: BatchState) -> Article | None:
    raised = state.prepared.pop(id(article), None)
    if raised is None:
        raised = alert_batch([article], ctx, state.run_id)[0]
    state.counts["alerts"] += raised
    return article


def alert_batch(articles: list[Article], ctx: PipelineContext, run_id: str | None) -> list[int]:
    """Match each article and raise the alerts the re-alert policy lets through (a story that
    already alerted builds no payload); how many each article raised."""
    found = [(article, match_alerts(article, ctx.matcher)) for article in articles]
    candidates = []
    for article, matches in found:
        if matches:
            about = {"article": alert_article(article), "story": alert_story(article, 0)}
            candidates += [(article, match, about) for match in matches]
    due = ctx.dispatcher.would_raise([(match.subscription, about) for _, match, about in candidates])
    candidates = [candidate for candidate, raise_now in zip(candidates, due, strict=True) if raise_now]
    stories = list(dict.fromkeys(article.cluster_id or article.id for article, _, _ in candidates))
    size = dict(zip(stories, ctx.stories.sizes(stories), strict=True))
    alerts = [
        (
            match.subscription,
            alert_payload(
                match.subscription,
                article,
                match.matched,
                max(1, size[article.cluster_id or article.id]),
                about["article"],
            ),
        )
        for article, match, about in candidates
    ]
    raised: Counter[int] = Counter()
    for (article, match, _), queued in zip(candidates, ctx.dispatcher.raise_alerts(alerts, run_id), strict=True):
        if queued:
            raised[id(article)] += 1
            log.info("article=%s step=match_alerts alert for subscription %s", article.id, match.subscription.id)
    return [raised[id(article)] for article in articles]


OnError = Literal["quarantine", "note", "retry"]


@dataclass(frozen=True)
class Step:
    """One step, and what an error on one article means there: `quarantine` (a gate or a
    required step: the article is kept as a dead letter with the reason), `note` (an
    enrichment: the article goes on without it, with a note), or `retry` (after the article
    is stored: the batch is tried again, and nothing stored is undone)."""

    name: str
    function: ArticleStep | BatchStep
    on_error: OnError = "quarantine"
    whole_batch: bool = False
    prepare: BatchPreparation | None = None
    """Work done for the whole batch before the step runs on each article (Redis round trips
    shared by the batch); what it leaves out, the step does for that article alone."""


STEPS: dict[str, Step] = {
    step.name: step
    for step in (
        Step("dedupe", dedupe_step, prepare=prepare_dedupe),
        Step("clean", clean_step, prepare=prepare_clean),
        Step("tag", tag_step, on_error="note"),
        Step("story", story_step, on_error="note", prepare=prepare_stories),
        Step("index", index_step, whole_batch=True),
        Step("match_alerts", match_alerts_step, on_error="retry", prepare=prepare_alerts),
    )
}


class StepFailed(Exception):
    """A step that retries its batch failed on an article (the message says which and why)."""


def read_batch(batch: dict[str, Any], ctx: PipelineContext, step: str) -> list[Article]:
    """The articles of a batch message; an entry that is not one is quarantined at `step`
    with the reason (counted once per batch)."""
    state = BatchState(batch.get("run"))
    articles = []
    for raw in batch["articles"]:
        try:
            articles.append(Article.from_message(raw))
        except ValueError as error:
            _quarantine(ctx, state, step, f"invalid article: {error}", raw)
    if state.counts:
        runs.record(
            ctx.redis, state.run_id, state.counts, once=f"{batch['id']}:{step}:read" if batch.get("id") else None
        )
    return articles


def run_step(
    step: Step,
    articles: list[Article],
    ctx: PipelineContext,
    *,
    run_id: str | None,
    batch_id: str | None,
    last: bool,
) -> list[Article]:
    """Apply one step to a batch's articles and return those that go on; the step's counts
    are recorded once per batch, however often the batch is tried."""
    started = time.perf_counter()
    state = BatchState(run_id)
    logs.bind(step=step.name, run=run_id)
    survivors = _apply(step, articles, ctx, state)
    metrics.record_step(step.name, articles, survivors, time.perf_counter() - started)
    if last:
        state.counts["done"] += len(survivors)
    runs.record(ctx.redis, run_id, state.counts, once=f"{batch_id}:{step.name}" if batch_id else None)
    log.info(
        "step=%s articles=%d out=%d seconds=%.4f",
        step.name,
        len(articles),
        len(survivors),
        time.perf_counter() - started,
    )
    return survivors


def run_pipeline(steps: Iterable[str], articles: list[Article], ctx: PipelineContext) -> list[Article]:
    """Run named steps over articles in this process (the enrich pipeline: reindex, inspect);
    an article a step fails on is kept as it was, with a note, and goes on."""
    state = BatchState(None)
    for name in steps:
        step = STEPS[name]
        if step.whole_batch:
            articles = cast(BatchStep, step.function)(articles, ctx, state)
            continue
        kept = []
        state.prepared.clear()
        if step.prepare is not None and articles:
            step.prepare(articles, ctx, state)
        for article in articles:
            try:
                result = cast(ArticleStep, step.function)(article, ctx, state)
            except TRANSIENT_ERRORS:
                raise
            except Exception as error:  # an enrichment that failed must not lose the article
                log.warning("article=%s step=%s failed: %r", article.id, name, error)
                article.notes.append(f"{name}: failed ({type(error).__name__}: {error})")
                result = article
            if result is not None:
                kept.append(result)
        articles = kept
    return articles


def _apply(step: Step, articles: list[Article], ctx: PipelineContext, state: BatchState) -> list[Article]:
    if step.whole_batch:
        return cast(BatchStep, step.function)(articles, ctx, state) if articles else []
    article_step = cast(ArticleStep, step.function)
    survivors = []
    if step.prepare is not None and articles:
        step.prepare(articles, ctx, state)
    for article in articles:
        try:
            result = article_step(article, ctx, state)
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:  # one bad article must not stop the batch
            reason = f"{type(error).__name__}: {error}"
            if step.on_error == "retry":
                raise StepFailed(f"article {article.id} at {step.name}: {reason}") from error
            if step.on_error == "note":
                log.warning("article=%s step=%s failed, going on without it: %r", article.id, step.name, error)
                article.notes.append(f"{step.name}: failed ({reason}); stored without it")
                survivors.append(article)
                continue
            log.warning("article=%s step=%s quarantined: %r", article.id, step.name, error)
            _quarantine(ctx, state, step.name, reason, article.to_message())
            continue
        if result is None:
            state.counts["done"] += 1
        else:
            survivors.append(result)
    return survivors


def quarantine_batch(batch: dict[str, Any], ctx: PipelineContext, step: str, reason: str) -> None:
    """Keep every article of a batch that failed for good (retries spent, or it keeps stopping
    its worker); after storing, the articles stay stored and count as done, not rejected."""
    stored = STEPS[step].on_error == "retry"
    state = BatchState(batch.get("run"))
    for raw in batch.get("articles", []):
        quarantine(ctx.redis, stage=step, reason=reason, item=raw)
        if not stored and step != "dedupe" and raw.get("id") and raw.get("delivery"):
            release_claims(ctx.redis, raw["id"], raw["delivery"])
        state.counts.update(done=1, **({} if stored else {"rejected": 1}))
    once = f"{batch['id']}:{step}:given-up" if batch.get("id") else None
    runs.record(ctx.redis, state.run_id, state.counts, once=once)


def _quarantine(ctx: PipelineContext, state: BatchState, stage: str, reason: str, item: dict[str, Any]) -> None:
    quarantine(ctx.redis, stage=stage, reason=reason, item=item)
    if stage != "dedupe" and item.get("id") and item.get("delivery"):
        release_claims(ctx.redis, item["id"], item["delivery"])
    state.counts["rejected"] += 1
    state.counts["done"] += 1
