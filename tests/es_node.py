"""A test-only transport node for the official Elasticsearch client.

It exists only because the engine the tests run is OpenSearch (the real node in
`tests/engine/`), not Elasticsearch:
- the 9.x client always sends `application/vnd.elasticsearch+json; compatible-with=9`, which
  OpenSearch answers with 406; real Elasticsearch accepts plain `application/json` as well, so
  the two media types are rewritten and nothing else;
- the client refuses a server whose responses lack `X-Elastic-Product: Elasticsearch`, which
  OpenSearch never sends, so the header is added to every response;
- point in time lives at another path with other field names on OpenSearch: Elasticsearch's
  `POST /<index>/_pit` (answered with `id`) is OpenSearch's `POST
  /<index>/_search/point_in_time` (answered with `pit_id`), and `DELETE /_pit {"id"}` is
  `DELETE /_search/point_in_time {"pit_id": [...]}`; both requests and answers are translated.
  Searching with `pit` is the same on both.
Production code never uses this class.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from elastic_transport import Urllib3HttpNode
from elastic_transport._node._base import NodeApiResponse

_OPEN_PIT = re.compile(r"^(/[^/?]+)/_pit(\?.*)?$")
_CLOSE_PIT = re.compile(r"^/_pit(\?.*)?$")


class PlainJsonNode(Urllib3HttpNode):
    def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None, **kw: Any):  # type: ignore[override]
        if headers is not None:
            headers = headers.copy()
            for name in ("accept", "content-type"):
                value = headers.get(name)
                if value and "vnd.elasticsearch+" in value:
                    headers[name] = "application/x-ndjson" if "x-ndjson" in value else "application/json"
        answer = None
        if method == "POST" and (opening := _OPEN_PIT.match(target)):
            target = f"{opening.group(1)}/_search/point_in_time{opening.group(2) or ''}"
            answer = _opened_pit
        elif method == "DELETE" and _CLOSE_PIT.match(target) and body:
            target = "/_search/point_in_time" + (target[len("/_pit") :])
            body = json.dumps({"pit_id": [json.loads(body)["id"]]}).encode()
            answer = _closed_pit
        response = super().perform_request(method, target, body=body, headers=headers, **kw)
        payload = response.body
        if answer is not None and response.meta.status == 200:
            payload = json.dumps(answer(json.loads(payload))).encode()
        answered = response.meta.headers.copy()
        answered["X-Elastic-Product"] = "Elasticsearch"
        return NodeApiResponse(dataclasses.replace(response.meta, headers=answered), payload)


def _opened_pit(reply: dict[str, Any]) -> dict[str, Any]:
    return {"id": reply["pit_id"], "_shards": reply.get("_shards", {})}


def _closed_pit(reply: dict[str, Any]) -> dict[str, Any]:
    pits = reply.get("pits", [])
    return {"succeeded": all(pit.get("successful") for pit in pits), "num_freed": len(pits)}
