"""wirewatch configuration: the one place that reads the environment.

Every setting comes from a `WIREWATCH_*` variable or a `.env` file. With neither
`WIREWATCH_REDIS_URL` nor `WIREWATCH_ELASTICSEARCH_URL` set, wirewatch runs on an
embedded Redis and an embedded SQLite store under the data directory.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All of wirewatch's settings, typed and described."""

    model_config = SettingsConfigDict(
        env_prefix="WIREWATCH_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    redis_url: str | None = Field(
        default=None,
        description="Redis URL (redis://, rediss:// or unix://). Unset: an embedded Redis under the data dir.",
    )
    elasticsearch_url: str | None = Field(
        default=None,
        description="Elasticsearch URL. Unset: the embedded SQLite store under the data dir.",
    )
    elasticsearch_api_key: SecretStr | None = Field(
        default=None, description="Elasticsearch API key (the encoded form Kibana shows)."
    )
    elasticsearch_api_key_file: Path | None = Field(
        default=None,
        description="File holding the Elasticsearch API key (as `wirewatch setup --security` writes it); "
        "read at start when WIREWATCH_ELASTICSEARCH_API_KEY is unset.",
    )
    elasticsearch_username: str | None = Field(default=None, description="Elasticsearch basic-auth user.")
    elasticsearch_password: SecretStr | None = Field(default=None, description="Elasticsearch basic-auth password.")
    elasticsearch_ca_certs: Path | None = Field(
        default=None, description="CA certificate file that signed the Elasticsearch TLS certificate."
    )
    elasticsearch_verify_certs: bool = Field(
        default=True,
        description="Verify the Elasticsearch TLS certificate (and host name). Off only against a throwaway "
        "test cluster: without it anyone on the path can read the credentials.",
    )
    index_prefix: str = Field(
        default="wirewatch",
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="Prefix of Elasticsearch index, template and alias names.",
    )
    index_rollover_max_age: str = Field(
        default="30d", pattern=r"^\d+[dh]$", description="Roll the articles index over after this age (ILM)."
    )
    index_rollover_max_shard_size: str = Field(
        default="50gb",
        pattern=r"^\d+(gb|mb)$",
        description="Roll the articles index over at this primary shard size (ILM).",
    )
    index_retention_days: int = Field(
        default=730, ge=1, description="Delete rolled-over article indices this long after rollover (ILM)."
    )

    data_dir: Path = Field(
        default=Path("wirewatch-data"),
        description="Where embedded Redis, the SQLite store and processed/rejected files live.",
    )
    inbox: Path | None = Field(default=None, description="Drop folder. Default: <data dir>/inbox.")
    feeds: Path | None = Field(
        default=None,
        description="YAML feeds file: `feeds:` a list of {url, name?, interval?}.",
    )
    taxonomy: Path | None = Field(default=None, description="Taxonomy YAML for tagging. Default: the shipped taxonomy.")

    batch_size: int = Field(default=100, ge=1, le=1000, description="Articles a source puts in one chain message.")
    boilerplate_min_articles: int = Field(
        default=6, ge=2, description="A paragraph a source prints in this many articles is removed as boilerplate."
    )
    story_window_days: float = Field(
        default=3.0, gt=0, description="Articles further apart than this are never one story."
    )
    story_threshold: float = Field(
        default=0.2, gt=0, le=1, description="Similarity (words, entities, tags) at which an article joins a story."
    )
    bulk_max_docs: int = Field(
        default=500, ge=1, le=10_000, description="Articles the bulk indexer gathers into one bulk request at most."
    )
    bulk_max_wait_seconds: float = Field(
        default=1.0, gt=0, description="Longest wait for more articles before a bulk request goes out."
    )
    dedupe_window_days: float = Field(
        default=30.0, gt=0, description="How long an article is remembered for duplicate detection."
    )
    near_duplicate_threshold: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Estimated Jaccard similarity of word shingles at which an article is a near-duplicate.",
    )

    feed_interval_seconds: int = Field(default=900, ge=30, description="Default time between two polls of one feed.")
    feed_min_interval_seconds: int = Field(
        default=300, ge=30, description="Shortest interval an adaptive feed is polled at."
    )
    feed_max_interval_seconds: int = Field(
        default=6 * 3600,
        ge=60,
        description="Longest interval an adaptive feed is polled at (backoff may go 4× further).",
    )
    feed_host_concurrency: int = Field(default=1, ge=1, description="Requests to one host at a time.")
    feed_host_delay_seconds: float = Field(
        default=2.0, ge=0, description="Least time between the starts of two requests to one host."
    )
    feed_validator_check_every: int = Field(
        default=12, ge=1, description="Every this many polls, a 304 is checked with an unconditional fetch."
    )
    url_allow: str | None = Field(
        default=None,
        description="Comma-separated networks (CIDR) or host names that feed and article URLs may reach although "
        "private, loopback or link-local (refused by default); each on every port, or on one (host:port, "
        "CIDR:port, [IPv6]:port).",
    )
    feed_failures_before_alert: int = Field(
        default=3, ge=1, description="Failed polls in a row after which a feed raises a source-health alert."
    )
    feed_silence_factor: float = Field(
        default=8.0,
        gt=1,
        description="A feed quiet for this many of its usual gaps between items raises a source-health alert.",
    )
    inbox_scan_seconds: float = Field(default=2.0, gt=0, description="Time between two scans of the inbox.")
    fetch_timeout_seconds: float = Field(default=20.0, gt=0, description="HTTP timeout for one feed fetch.")
    fetch_max_bytes: int = Field(
        default=10_000_000, ge=1024, description="Largest feed body read; bigger bodies are refused."
    )
    fetch_deadline_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Longest time one feed or page request may take in all (connect and the whole body): a "
        "server that trickles bytes is cut off here, however often it sends.",
    )
    max_file_bytes: int = Field(
        default=50_000_000, ge=1024, description="Largest dropped file read; a bigger one is rejected unread."
    )
    max_article_chars: int = Field(
        default=2_000_000,
        ge=1000,
        description="Largest article (title, text and HTML together, in characters); a bigger one is kept as a "
        "dead letter, not processed.",
    )
    max_line_bytes: int = Field(
        default=4_000_000, ge=1024, description="Longest line of a .jsonl file; a longer line is a bad line."
    )
    max_nesting: int = Field(
        default=64, ge=2, description="Deepest nesting of JSON objects and lists read from a file or line."
    )
    max_read_seconds: float = Field(
        default=60.0, gt=0, description="Longest time reading one dropped file may take; then it is rejected."
    )
    user_agent: str = Field(
        default="wirewatch/0.1 (news monitoring)",
        description="User-Agent sent with every HTTP request.",
    )

    worker_concurrency: int = Field(default=2, ge=1, description="Processes per worker service.")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, description="HTTP timeout of one webhook call.")
    alert_retry_hours: float = Field(
        default=48, gt=0, description="A failing alert delivery is retried for this long, then kept as failed."
    )
    alerter_concurrency: int = Field(default=8, ge=1, description="Deliveries the alerter makes at once.")
    smtp_host: str | None = Field(default=None, description="SMTP server for e-mail alerts.")
    smtp_port: int = Field(default=25, description="SMTP port (587 with STARTTLS is usual).")
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_username: str | None = Field(default=None, description="SMTP login user.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP login password.")
    smtp_from: str = Field(default="wirewatch@localhost", description="From address of alert e-mails.")
    api_bind: str = Field(default="127.0.0.1:8080", description="Address the HTTP API listens on.")
    query_max_terms: int = Field(
        default=256, ge=1, le=900, description="Most terms (words, phrase words, wildcards, ranges) in one query."
    )
    query_max_depth: int = Field(
        default=32, ge=1, le=200, description="Deepest nesting of AND, OR, NOT and parentheses in one query."
    )
    api_max_body_bytes: int = Field(
        default=10_000_000, ge=1024, description="Largest request body the API reads; larger ones get a 413 unread."
    )
    public_url: str | None = Field(
        default=None,
        description="The API's URL as seen from outside (for WebSub hub callbacks). Unset: no WebSub, polling only.",
    )
    kibana_url: str | None = Field(
        default=None,
        description="Kibana's URL as analysts' browsers reach it; the web UI links each subscription's query "
        "into Discover. Unset: no links.",
    )
    operators: str = Field(
        default="",
        description="Token owners (comma-separated) who see feed health and dead letters in the web UI.",
    )
    websub_lease_seconds: int = Field(default=10 * 86400, ge=3600, description="Lease asked of WebSub hubs.")
    alert_retry_seconds: float = Field(
        default=5.0, gt=0, description="First retry delay of a failed webhook; doubles each time, at most an hour."
    )
    fetcher_metrics_port: int = Field(
        default=9181, ge=0, le=65535, description="Port of the fetcher's Prometheus metrics (0: none)."
    )
    worker_metrics_port: int = Field(
        default=9182, ge=0, le=65535, description="Port of the worker's Prometheus metrics (0: none)."
    )
    alerter_metrics_port: int = Field(
        default=9183, ge=0, le=65535, description="Port of the alerter's Prometheus metrics (0: none)."
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the fetcher, worker and alerter serve metrics on (0.0.0.0 for a scraper elsewhere).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as readable text, or as one JSON object per line."
    )

    @model_validator(mode="after")
    def _both_auth_parts(self) -> Settings:
        if (self.elasticsearch_username is None) != (self.elasticsearch_password is None):
            raise ValueError(
                "set both WIREWATCH_ELASTICSEARCH_USERNAME and WIREWATCH_ELASTICSEARCH_PASSWORD, or neither"
            )
        return self

    @field_validator("elasticsearch_api_key_file", "elasticsearch_ca_certs", mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: object) -> object:
        # compose passes `${VAR:-}` as an empty string, which would otherwise mean the current directory
        return None if value == "" else value

    @model_validator(mode="after")
    def _ca_file_needs_https(self) -> Settings:
        if self.elasticsearch_ca_certs is not None and not (self.elasticsearch_url or "").startswith("https://"):
            raise ValueError("WIREWATCH_ELASTICSEARCH_CA_CERTS is set, so WIREWATCH_ELASTICSEARCH_URL must be https://")
        return self

    @model_validator(mode="after")
    def _api_key_from_file(self) -> Settings:
        if self.elasticsearch_api_key is None and self.elasticsearch_api_key_file is not None:
            try:
                key = self.elasticsearch_api_key_file.read_text("utf-8").strip()
            except OSError as error:
                raise ValueError(f"cannot read WIREWATCH_ELASTICSEARCH_API_KEY_FILE: {error}") from None
            if not key:
                raise ValueError(f"{self.elasticsearch_api_key_file} holds no API key")
            self.elasticsearch_api_key = SecretStr(key)
        return self

    @property
    def inbox_dir(self) -> Path:
        return self.inbox if self.inbox is not None else self.data_dir / "inbox"

    @property
    def processed_dir(self) -> Path:
        return self.data_dir / "processed"

    @property
    def rejected_dir(self) -> Path:
        return self.data_dir / "rejected"

    @property
    def dedupe_window_seconds(self) -> int:
        return int(self.dedupe_window_days * 86400)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` after changing the env."""
    return Settings()
