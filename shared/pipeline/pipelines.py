"""The chain, declared once: named pipelines built from the same steps.

Only names live here, so that a producer (the fetcher, the command line) can send work down
the chain without importing the steps: the step functions are in `shared.pipeline.steps`, and
the worker registers one task per step.
"""

from __future__ import annotations

INGEST: tuple[str, ...] = (
    "dedupe",  # the gate: what it drops (an exact copy) costs nothing further
    "clean",
    "tag",
    "story",  # needs the entities and tags that tag found
    "index",
    # Index comes before matching so that an alert never points at an article not yet
    # stored: the queued chain ends at index, and the bulk indexer sends each batch it has
    # written on to the steps after it.
    "match_alerts",
)
"""Every article from every source, once."""

ENRICH: tuple[str, ...] = ("clean", "tag")
"""What `reindex --retag` and `inspect` run over stored or read articles: the same cleaning
(learned boilerplate included, read but not learned from) and tagging, nothing remembered."""

PIPELINES: dict[str, tuple[str, ...]] = {"ingest": INGEST, "enrich": ENRICH}

QUEUED = INGEST[: INGEST.index("index") + 1]
"""The steps of one queued chain; the bulk indexer starts the rest."""

AFTER_INDEX = INGEST[len(QUEUED) :]
