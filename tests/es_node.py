"""A test-only transport node for talking to the osmem test server with the official client.

The official client always sends `application/vnd.elasticsearch+json; compatible-with=9`;
osmem answers that with 406. Real Elasticsearch also accepts plain `application/json`, so the
tests rewrite the two headers and change nothing else.
"""

from __future__ import annotations

from typing import Any

from elastic_transport import Urllib3HttpNode


class PlainJsonNode(Urllib3HttpNode):
    def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None, **kw: Any):  # type: ignore[override]
        if headers is not None:
            headers = headers.copy()
            for name in ("accept", "content-type"):
                value = headers.get(name)
                if value and "vnd.elasticsearch+" in value:
                    headers[name] = "application/x-ndjson" if "x-ndjson" in value else "application/json"
        return super().perform_request(method, target, body=body, headers=headers, **kw)
