"""The API against its own OpenAPI document: schemathesis sends generated requests, valid and
not, to a real uvicorn with a real token, Redis and store, and every answer must be documented
(its status, its content type and its shape) and none may be a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.api.app import create_app
from shared.store.sqlite import SqliteStore
from shared.tokens import create_token
from tests.api_server import LiveAPI, serve

EXAMPLES = 30  # per operation and mode: bounded, so the suite stays quick on a loaded machine
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def live(settings, redis_client, tmp_path: Path) -> Iterator[LiveAPI]:
    app = create_app(settings, store=SqliteStore(tmp_path / "store.sqlite3"), client=redis_client)
    with serve(app) as live_api:
        yield live_api


@pytest.fixture
def token(redis_client) -> str:
    return create_token(redis_client, "schema")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_every_answer_is_documented_and_none_is_a_server_error(live: LiveAPI, token: str, mode) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same requests each run: a failure can be run again
            database=None,
        )
        def answers_as_documented(case) -> None:
            case.call_and_validate(
                base_url=live.url,
                headers={"Authorization": f"Bearer {token}"},
                checks=CHECKS,
                timeout=30,
            )

        try:
            answers_as_documented()
        except Unsatisfiable:
            pass  # in the invalid mode: nothing in this operation can be made invalid (GET /health)
        except Exception as error:  # every operation is tried; all failures are reported together
            failures[operation.label] = str(error)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{error}" for label, error in failures.items())
