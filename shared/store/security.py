"""Least privilege on Elasticsearch: one role and one API key per wirewatch service.

`wirewatch setup --security` runs this once with superuser credentials. Each service then
connects with its own key, which carries only the index privileges that service's code uses;
the superuser stays with setup (template, lifecycle policy, aliases, reindex). An API key
takes its privileges from the role descriptors it is created with (a named role cannot be
attached to a key), so the same descriptor is stored as a named role, for people who prefer
users to keys, and sent inline with the key.
"""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

log = logging.getLogger(__name__)

SERVICES = ("fetcher", "worker", "alerter", "api")
KEY_FILE = "elasticsearch-api-key"
ENV_FILE = "elasticsearch-api-keys.env"


def service_roles(prefix: str) -> dict[str, dict[str, Any]]:
    """The role descriptor of each service, and of people reading wirewatch in Kibana.

    Privileges are granted on the alias and on the indices behind it: a request through the
    alias is checked against the alias name, while the worker writes an article already stored
    in a rolled-over index to that index by name. Every service's health check counts articles,
    hence `read` on articles for all of them, the fetcher included (it writes nothing)."""
    articles = [f"{prefix}-articles", f"{prefix}-articles-*"]
    alerts = [f"{prefix}-alerts"]
    read_articles = {"names": articles, "privileges": ["read"]}
    return {
        "fetcher": {"cluster": [], "indices": [read_articles]},
        "worker": {
            "cluster": [],
            # `index`, not `create_doc`: a re-delivered or re-tagged article replaces its copy.
            # `view_index_metadata`: the indexer reads the alias to find rolled-over copies.
            "indices": [{"names": articles, "privileges": ["index", "read", "view_index_metadata"]}],
        },
        "alerter": {
            "cluster": [],
            "indices": [read_articles, {"names": alerts, "privileges": ["index"]}],
        },
        "api": {
            "cluster": [],
            # The API writes one thing: the "cancelled" record of alerts a removed subscription
            # still had to send.
            "indices": [read_articles, {"names": alerts, "privileges": ["read", "index"]}],
        },
        "kibana-reader": {
            "cluster": [],
            "indices": [{"names": [*articles, *alerts], "privileges": ["read", "view_index_metadata"]}],
            "applications": [
                {
                    "application": "kibana-.kibana",
                    "privileges": ["feature_discover.read", "feature_dashboard.read", "feature_visualize.read"],
                    "resources": ["space:default"],
                }
            ],
        },
    }


@dataclass(frozen=True)
class ServiceKey:
    service: str
    key_id: str
    encoded: str
    created: bool


def key_id_of(encoded: str) -> str | None:
    """The id inside an encoded API key (base64 of `id:secret`), or None if it is not one."""
    try:
        key_id, sep, _ = base64.b64decode(encoded, validate=True).decode().partition(":")
    except ValueError:
        return None
    return key_id if sep and key_id else None


def set_up_security(client: Elasticsearch, prefix: str, key_dir: Path, *, rotate: bool = False) -> list[ServiceKey]:
    """Put each role, and give each service an API key under `key_dir/<service>/`.

    A service's key that still works is kept, so running setup again changes nothing; with
    `rotate` every service gets a new key and the old one is invalidated once the new one is
    written (services still holding the old key fail until restarted). Also writes
    `key_dir/elasticsearch-api-keys.env` for hosts that take keys from an env file."""
    roles = service_roles(prefix)
    for name, role in roles.items():
        client.security.put_role(
            name=f"{prefix}-{name}", **role, metadata={"application": "wirewatch", "service": name}
        )
    keys = [_service_key(client, prefix, service, roles[service], key_dir, rotate) for service in SERVICES]
    env_file = key_dir / ENV_FILE
    _write_secret(
        env_file,
        "".join(f"{key.service.upper()}_ELASTICSEARCH_API_KEY={key.encoded}\n" for key in keys),
    )
    return keys


def _service_key(
    client: Elasticsearch, prefix: str, service: str, role: dict[str, Any], key_dir: Path, rotate: bool
) -> ServiceKey:
    path = key_dir / service / KEY_FILE
    old = path.read_text("utf-8").strip() if path.exists() else ""
    old_id = key_id_of(old) if old else None
    if old_id and not rotate and _is_active(client, old_id):
        return ServiceKey(service, old_id, old, created=False)
    created = client.security.create_api_key(
        name=f"{prefix}-{service}",
        role_descriptors={f"{prefix}-{service}": role},
        metadata={"application": "wirewatch", "service": service},
    )
    _write_secret(path, created["encoded"] + "\n")
    if old_id:
        # Only after the new key is on disk: a failure in between must not leave no key at all.
        client.security.invalidate_api_key(ids=[old_id])
        log.info("invalidated the previous API key %s of %s", old_id, service)
    return ServiceKey(service, created["id"], created["encoded"], created=True)


def _is_active(client: Elasticsearch, key_id: str) -> bool:
    # Elasticsearch answers an unknown id with 404 or with an empty list, depending on version.
    found = client.options(ignore_status=404).security.get_api_key(id=key_id, active_only=True)
    return bool(found.body.get("api_keys")) if found.meta.status == 200 else False


def _write_secret(path: Path, text: str) -> None:
    """Write a file only its owner can read, replacing any earlier one in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(partial, path)
