"""What a source hands the fetcher: articles, and what to do once they are safely queued."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from shared.article import Article


@dataclass
class Delivery:
    """Articles read from one place (a file, a feed response).

    `on_enqueued` runs only after every one of them is on the queue: a dropped file moves to
    `processed/` then and not before, so a crash in between loses nothing.
    """

    articles: list[Article]
    on_enqueued: Callable[[], None] = lambda: None
    rejected: int = field(default=0)


class Source(Protocol):
    name: str

    def poll(self) -> Iterator[Delivery]:
        """Read whatever is new since the last poll."""
