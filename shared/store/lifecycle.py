"""Index lifecycle management for the articles indices: roll over by age or size, delete
after the retention period (Elasticsearch ILM)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Lifecycle:
    """When the write index rolls over, and when rolled-over indices are deleted."""

    max_age: str = "30d"
    max_primary_shard_size: str = "50gb"
    retention_days: int = 730

    def policy(self) -> dict[str, Any]:
        """The body of `PUT _ilm/policy/<name>`."""
        return {
            "phases": {
                "hot": {
                    "actions": {
                        "rollover": {"max_age": self.max_age, "max_primary_shard_size": self.max_primary_shard_size}
                    }
                },
                # min_age counts from rollover, so an index lives its retention after it stops taking writes.
                "delete": {"min_age": f"{self.retention_days}d", "actions": {"delete": {}}},
            }
        }

    @staticmethod
    def index_settings(policy_name: str, rollover_alias: str) -> dict[str, Any]:
        """What every index under the alias needs so that ILM can roll the alias over."""
        return {"index.lifecycle.name": policy_name, "index.lifecycle.rollover_alias": rollover_alias}
