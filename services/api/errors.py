"""The one shape of every refusal the API makes."""

from __future__ import annotations

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
