"""Sending one alert (or digest) over one channel: signed webhook, e-mail, Slack, Redis stream."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import time
from email.message import EmailMessage
from html import escape
from typing import Any

import httpx
import redis

from shared import redis_keys
from shared.outbound import Poster, UnsafeURL
from shared.settings import Settings

SIGNATURE_HEADER = "X-Wirewatch-Signature"
TIMESTAMP_HEADER = "X-Wirewatch-Timestamp"
ID_HEADER = "X-Wirewatch-Alert-Id"


class DeliveryRefused(Exception):
    """The receiver said no for good (a 4xx, a refused recipient): retrying will not help."""


class DeliveryFailed(Exception):
    """The receiver could not be reached or failed for now (timeout, 5xx, 429): retry later."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over `<timestamp>.<body>`: the timestamp is signed too, so a captured
    request cannot be replayed later with a fresh one."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def send(
    channel: dict[str, Any],
    payload: dict[str, Any],
    alert_id: str,
    settings: Settings,
    client: redis.Redis,
    http: Poster,
) -> None:
    """Deliver `payload` on `channel`; raises DeliveryFailed or DeliveryRefused. `http` posts
    through the outbound checks (`shared.outbound`), so no webhook reaches an internal address."""
    kind = channel["type"]
    if kind == "webhook":
        body = json.dumps(payload, ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {
            ID_HEADER: alert_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(channel["secret"], timestamp, body),
        }
        _post(http, channel["url"], body, headers)
    elif kind == "slack":
        _post(http, channel["url"], json.dumps({"text": summary(payload)}).encode(), {})
    elif kind == "email":
        _email(channel["to"], payload, settings)
    elif kind == "stream":
        try:
            client.xadd(
                redis_keys.alert_stream(payload["subscription"]["owner"], channel["stream"]),
                {"id": alert_id, "alert": json.dumps(payload, ensure_ascii=False)},
                maxlen=100_000,
                approximate=True,
            )
        except redis.RedisError as error:
            raise DeliveryFailed(f"Redis stream: {error}") from error
    else:
        raise DeliveryRefused(f"unknown channel type {kind!r}")


def _post(http: Poster, url: str, body: bytes, headers: dict[str, str]) -> None:
    headers = {"Content-Type": "application/json", **headers}
    try:
        reply = http.post(url, body, headers)
    except UnsafeURL as error:
        raise DeliveryRefused(str(error)) from error
    except (httpx.HTTPError, OSError) as error:
        raise DeliveryFailed(f"{type(error).__name__}: {error}") from error
    if reply.status in (408, 425, 429) or reply.status >= 500:
        raise DeliveryFailed(f"HTTP {reply.status}")
    if reply.status >= 300:
        # The status only: a receiver's reply is not ours to keep (it may hold secrets).
        raise DeliveryRefused(f"HTTP {reply.status} {reply.reason}".rstrip())


def _email(recipients: list[str], payload: dict[str, Any], settings: Settings) -> None:
    if not settings.smtp_host:
        raise DeliveryRefused("no SMTP server configured (WIREWATCH_SMTP_HOST)")
    message = EmailMessage()
    message["Subject"] = subject(payload)
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(recipients)
    message.set_content(summary(payload))
    message.add_alternative(html_summary(payload), subtype="html")
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.webhook_timeout_seconds) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username and settings.smtp_password is not None:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        raise DeliveryRefused(f"recipients refused: {error.recipients}") from error
    except smtplib.SMTPResponseException as error:
        if 500 <= error.smtp_code < 600:
            raise DeliveryRefused(f"SMTP {error.smtp_code}: {error.smtp_error!r}") from error
        raise DeliveryFailed(f"SMTP {error.smtp_code}: {error.smtp_error!r}") from error
    except (OSError, smtplib.SMTPException) as error:
        raise DeliveryFailed(f"SMTP: {error}") from error


def _articles(payload: dict[str, Any]) -> list[dict[str, Any]]:
    if "digest" in payload:
        return [article for story in payload["digest"]["stories"] for article in story["articles"][:1]]
    return [payload["article"]]


def subject(payload: dict[str, Any]) -> str:
    name = payload["subscription"]["name"]
    if "digest" in payload:
        return f"[wirewatch] {name}: {len(payload['digest']['stories'])} stories"
    return f"[wirewatch] {name}: {payload['article']['title']}"


def summary(payload: dict[str, Any]) -> str:
    """Plain text for e-mail and Slack."""
    lines = [subject(payload), ""]
    if "digest" not in payload:
        lines += [payload.get("snippet", ""), f"matched: {', '.join(payload['matched_terms'])}", ""]
    for article in _articles(payload):
        lines.append(
            f"- {article['title']} ({article.get('source') or 'unknown source'}) {article.get('url') or ''}".rstrip()
        )
    return "\n".join(lines)


def html_summary(payload: dict[str, Any]) -> str:
    items = "".join(
        f'<li><a href="{escape(article.get("url") or "#")}">{escape(article["title"])}</a> '
        f"<small>{escape(article.get('source') or '')}</small></li>"
        for article in _articles(payload)
    )
    snippet = "" if "digest" in payload else f"<p>{escape(payload.get('snippet', ''))}</p>"
    return f"<h3>{escape(subject(payload))}</h3>{snippet}<ul>{items}</ul>"
