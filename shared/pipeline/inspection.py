"""`wirewatch inspect`: what reading, cleaning and tagging make of files, without storing
anything — for taxonomy authors to see why a tag fired, and for checking a new source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.article import Article
from shared.formats.readers import read_file_report
from shared.pipeline.context import PipelineContext
from shared.pipeline.pipelines import ENRICH
from shared.pipeline.steps import run_pipeline


def inspect_file(path: Path, context: PipelineContext) -> list[Article]:
    """The articles of one file as the enrich pipeline makes them (near-duplicate and story
    grouping aside, which depend on what came before); raises UnreadableFile as the inbox
    would. Build `context` with `learn=False`: inspecting remembers nothing."""
    return run_pipeline(ENRICH, read_file_report(path).articles, context)


def describe(article: Article) -> dict[str, Any]:
    """The fields an author checks, in the order they read them."""
    return {
        "title": article.title,
        "published_at": article.published_at.isoformat() if article.published_at else None,
        "lang": article.lang,
        "canonical_url": article.canonical_url,
        "source": article.source,
        "author": article.author,
        "tags": {
            name: {
                "score": article.tag_scores.get(name),
                "evidence": [
                    {
                        "phrase": item["phrase"],
                        "sentence": item["sentence"],
                        "weight": item.get("weight"),
                        "why": item.get("why"),
                    }
                    for item in article.evidence
                    if item["kind"] == "tag" and item["value"] == name
                ],
            }
            for name in article.tags
        },
        "countries": _mentions(article, "countries"),
        "people": _mentions(article, "people"),
        "organizations": _mentions(article, "organizations"),
        "notes": article.notes,
        "text": article.text,
    }


def _mentions(article: Article, kind: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {value: [] for value in getattr(article, kind)}
    for item in article.evidence:
        if item["kind"] == kind and item["phrase"] not in found.setdefault(item["value"], []):
            found[item["value"]].append(item["phrase"])
    return found


def render(article: Article) -> str:
    """Plain text for a terminal."""
    info = describe(article)
    lines = [
        f"title         {info['title']}",
        f"published_at  {info['published_at'] or '-'}",
        f"lang          {info['lang'] or '-'}",
        f"canonical url {info['canonical_url'] or '-'}",
        f"source        {info['source'] or '-'}" + (f"   author {info['author']}" if info["author"] else ""),
        "tags",
    ]
    for name, tag_info in info["tags"].items():
        lines.append(f"  {name}  (score {tag_info['score']})")
        for item in tag_info["evidence"]:
            how = f" [{item['why']}, counts {item['weight']}]" if item.get("why") else ""
            lines.append(f"      «{item['phrase']}»{how} in: {item['sentence']}")
    for kind in ("countries", "people", "organizations"):
        shown = ", ".join(f"{value} ({' / '.join(mentions)})" for value, mentions in info[kind].items())
        lines.append(f"{kind:<14}{shown or '-'}")
    lines.append("cleaning")
    lines += [f"  - {note}" for note in info["notes"]] or ["  (nothing removed)"]
    lines += ["text", *("  " + line for line in info["text"].splitlines())]
    return "\n".join(lines)
