"""`wirewatch reindex --retag`: a taxonomy change reaches stored articles, under a lock."""

from __future__ import annotations

import pytest

from shared.pipeline.reindex import LOCK_NAME, ReindexBusy, reindex
from shared.redis_client import get_redis
from shared.store import open_store
from tests.factories import make_article


def test_retag_applies_the_current_taxonomy_to_stored_articles(settings, redis_client, tmp_path):
    store = open_store(settings)
    store.index([make_article("Harvest festival", "Farmers celebrated a record wheat harvest in the valley.", tags=[])])
    taxonomy = tmp_path / "taxonomy.yml"
    taxonomy.write_text("tags:\n  agriculture:\n    phrases: [harvest, wheat, farmers]\n")
    retag_settings = settings.model_copy(update={"taxonomy": taxonomy})

    assert reindex(retag_settings, retag=True, progress=lambda d, t: None) == 1
    (article,) = store.search("tags:agriculture")
    assert article.tags == ["agriculture"]
    assert article.tag_evidence["agriculture"] == ["Harvest", "Farmers", "wheat"]  # in text order, as written


def test_a_second_reindex_while_one_runs_is_refused(settings, redis_client):
    held = get_redis(settings).lock(LOCK_NAME, timeout=60)
    assert held.acquire(blocking=False)
    try:
        with pytest.raises(ReindexBusy):
            reindex(settings, retag=False, progress=lambda d, t: None)
    finally:
        held.release()
