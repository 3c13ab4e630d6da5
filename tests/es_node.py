"""A test-only transport node for the official Elasticsearch client.

It exists only because the engine the tests run is OpenSearch (the real node in
`tests/engine/`), not Elasticsearch:
- the 9.x client always sends `application/vnd.elasticsearch+json; compatible-with=9`, which
  OpenSearch answers with 406; real Elasticsearch accepts plain `application/json` as well, so
  the two media types are rewritten and nothing else;
- the client refuses a server whose responses lack `X-Elastic-Product: Elasticsearch`, which
  OpenSearch never sends, so the header is added to every response.
Production code never uses this class.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from elastic_transport import Urllib3HttpNode
from elastic_transport._node._base import NodeApiResponse


class PlainJsonNode(Urllib3HttpNode):
    def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None, **kw: Any):  # type: ignore[override]
        if headers is not None:
            headers = headers.copy()
            for name in ("accept", "content-type"):
                value = headers.get(name)
                if value and "vnd.elasticsearch+" in value:
                    headers[name] = "application/x-ndjson" if "x-ndjson" in value else "application/json"
        response = super().perform_request(method, target, body=body, headers=headers, **kw)
        if response.meta.headers.get("x-elastic-product") == "Elasticsearch":
            return response
        answered = response.meta.headers.copy()
        answered["X-Elastic-Product"] = "Elasticsearch"
        return NodeApiResponse(dataclasses.replace(response.meta, headers=answered), response.body)
