"""The one shape of every refusal the API makes."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel


class ErrorDetail(BaseModel):
    status: int
    message: str
    problems: list[str]


class ErrorBody(BaseModel):
    """`{"error": {"status", "message", "problems"}}`: what every 4xx answer holds."""

    error: ErrorDetail


def error_response(status: int, message: str, problems: list[str], headers: dict[str, str] | None) -> JSONResponse:
    body = {"error": {"status": status, "message": message, "problems": problems}}
    return JSONResponse(body, status_code=status, headers=headers)


_MEANINGS = {
    400: "Malformed: a body that is not JSON, a header that cannot be read",
    401: "No valid bearer token",
    404: "No such thing, or not the token owner's",
    409: "Conflicts with what exists",
    413: "The body is larger than WIREWATCH_API_MAX_BODY_BYTES (refused unread)",
    422: "Not valid: `problems` names each fault",
}


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route's refusals, each in the one error shape; naming 422
    here also replaces FastAPI's own 422 schema, which is not the shape the API answers with."""
    return {status: {"model": ErrorBody, "description": _MEANINGS[status]} for status in statuses}
