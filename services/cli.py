"""The `wirewatch` command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from shared.settings import Settings, get_settings

log = logging.getLogger("wirewatch")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `wirewatch` console script."""
    args = _parser().parse_args(argv)
    from shared.logs import configure_logging

    configure_logging(args.log_level, getattr(args, "service", args.command), get_settings().log_format)
    from shared.redis_client import stop_embedded_redis

    try:
        status = int(args.handler(args, get_settings()) or 0)
        sys.stdout.flush()  # here, where a closed pipe can still be caught
        return status
    except BrokenPipeError:
        # The reader went away (`wirewatch alerts | head -3`): stop quietly, as Unix tools do, and
        # send what is still buffered nowhere so that Python's exit does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by a closed pipe
    except KeyboardInterrupt:
        return 130
    except UserError as error:
        print(f"wirewatch: {error}", file=sys.stderr)
        return 2
    finally:
        stop_embedded_redis()


class UserError(Exception):
    """Something the user can fix; printed without a traceback."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wirewatch", description="News ingestion and keyword alerting.")
    parser.add_argument("--version", action="version", version=f"wirewatch {_version()}")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="fetcher + worker + alerter (+ embedded Redis when none is set)")
    run.add_argument("--once", action="store_true", help="one pass over inbox and feeds, wait, print counts, exit")
    run.add_argument("--json", action="store_true", help="with --once: print the counts as JSON")
    run.add_argument("--timeout", type=float, default=900, help="with --once: longest wait for the chain (s)")
    run.set_defaults(handler=cmd_run)

    for name, help_text in (
        ("worker", "run the chain's Celery worker (with its bulk indexer)"),
        ("alerter", "deliver alerts from the outbox and send digests"),
        ("fetcher", "watch the inbox and poll the feeds"),
        ("api", "serve the HTTP API (subscriptions, previews, alert history)"),
    ):
        service = commands.add_parser(name, help=help_text)
        service.add_argument("--concurrency", type=int, default=None, help="worker processes or threads")
        service.set_defaults(handler=cmd_service, service=name)

    inspect = commands.add_parser("inspect", help="read, clean and tag files without storing anything, and show why")
    inspect.add_argument("files", nargs="+", metavar="FILE")
    inspect.add_argument("--json", action="store_true")
    inspect.set_defaults(handler=cmd_inspect)

    ingest = commands.add_parser("ingest", help="backfill files and folders (any size), then report what came of them")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.add_argument("--json", action="store_true", help="print the counts as JSON")
    ingest.add_argument("--timeout", type=float, default=3600, help="longest wait for the chain (s)")
    ingest.set_defaults(handler=cmd_ingest)

    setup = commands.add_parser("setup", help="create the store's tables, or index template and alias")
    setup.add_argument(
        "--kibana", metavar="URL", help="also import the saved objects (data views, dashboard) into Kibana"
    )
    setup.add_argument("--export-kibana", action="store_true", help="print the Kibana saved objects as NDJSON and exit")
    setup.add_argument(
        "--security",
        action="store_true",
        help="also put one Elasticsearch role per service and give each service an API key (needs a superuser)",
    )
    setup.add_argument(
        "--keys-dir",
        type=Path,
        metavar="DIR",
        help="where --security writes <service>/elasticsearch-api-key (default: <data dir>/elasticsearch-keys)",
    )
    setup.add_argument(
        "--rotate-keys", action="store_true", help="with --security: new keys for every service, old ones invalidated"
    )
    setup.set_defaults(handler=cmd_setup)

    search = commands.add_parser("search", help="search stored articles (Lucene syntax, as in Kibana)")
    search.add_argument("query")
    search.add_argument("--limit", type=int, default=20)
    search.add_argument("--json", action="store_true", help="one JSON object per line")
    search.add_argument("--sort", choices=["date", "relevance"], default="date")
    search.set_defaults(handler=cmd_search)

    subs = commands.add_parser("subscriptions", help="keyword alert subscriptions")
    actions = subs.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add or replace a subscription")
    add.add_argument("name")
    add.add_argument("query")
    add.add_argument("--owner", default="local", help="whose subscription it is (API token owner)")
    add.add_argument("--webhook", action="append", default=[], help="URL receiving each alert as a signed JSON POST")
    add.add_argument("--email", action="append", default=[], help="address receiving alerts by e-mail")
    add.add_argument("--slack", action="append", default=[], help="Slack-compatible incoming-webhook URL")
    add.add_argument("--stream", action="append", default=[], help="Redis stream receiving alerts")
    add.add_argument("--mode", choices=["instant", "hourly", "daily"], default="instant")
    add.add_argument("--realert", choices=["story", "story-and-update", "article"], default="story")
    add.add_argument(
        "--realert-field",
        choices=["source", "tags", "countries", "people", "organizations"],
        default=None,
        help="group alerts by this field's values instead of by story",
    )
    add.add_argument(
        "--realert-window-hours",
        type=float,
        default=12.0,
        help="a group alerts again for an article this far in time from its earlier alerts (0: never)",
    )
    add.add_argument("--max-per-hour", type=int, default=None)
    add.add_argument("--filter", default=None, help="an extra query every alert must match too")
    add.add_argument("--inactive", action="store_true", help="save it switched off")
    add.set_defaults(handler=cmd_subscriptions_add)
    listing = actions.add_parser("list", help="list subscriptions")
    listing.add_argument("--owner", default=None, help="only this owner's")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_subscriptions_list)
    remove = actions.add_parser("remove", help="remove a subscription")
    remove.add_argument("name")
    remove.add_argument("--owner", default="local")
    remove.set_defaults(handler=cmd_subscriptions_remove)
    test = actions.add_parser(
        "test", help="the alerts a subscription (by name) or a query would have sent over recent articles"
    )
    test.add_argument("subscription", metavar="NAME|QUERY")
    test.add_argument("--owner", default="local")
    test.add_argument("--days", type=int, default=7)
    test.add_argument("--json", action="store_true", help="one JSON object per day")
    test.set_defaults(handler=cmd_subscriptions_test)
    rotate = actions.add_parser("rotate", help="give a subscription's webhooks new signing secrets (printed once)")
    rotate.add_argument("name")
    rotate.add_argument("--owner", default="local")
    rotate.set_defaults(handler=cmd_subscriptions_rotate)

    feeds = commands.add_parser("feeds", help="the feed list and each feed's state")
    feed_actions = feeds.add_subparsers(dest="action", required=True, metavar="ACTION")
    feed_add = feed_actions.add_parser("add", help="add (or change) a feed")
    feed_add.add_argument("url")
    feed_add.add_argument("--name")
    feed_add.add_argument("--interval", type=int, help="fixed seconds between polls (default: adaptive)")
    feed_add.add_argument("--full-text", action=argparse.BooleanOptionalAction, default=None, help="fetch linked pages")
    feed_add.add_argument("--tag", action="append", default=[], help="tag every article of the feed")
    feed_add.add_argument("--language")
    feed_add.add_argument("--disabled", action="store_true")
    feed_add.set_defaults(handler=cmd_feeds_add)
    feed_remove = feed_actions.add_parser("remove", help="remove a feed and its state")
    feed_remove.add_argument("url")
    feed_remove.set_defaults(handler=cmd_feeds_remove)
    feed_list = feed_actions.add_parser("list", help="list the feeds")
    feed_list.add_argument("--json", action="store_true")
    feed_list.set_defaults(handler=cmd_feeds_list)
    feed_import = feed_actions.add_parser("import", help="add the feeds of an OPML file")
    feed_import.add_argument("file")
    feed_import.set_defaults(handler=cmd_feeds_import)
    feed_export = feed_actions.add_parser("export", help="print the feed list as OPML")
    feed_export.set_defaults(handler=cmd_feeds_export)
    feed_status = feed_actions.add_parser(
        "status", help="per feed: last fetch, last new item, HTTP status, items/day, failures, next poll, validators"
    )
    feed_status.add_argument("--json", action="store_true")
    feed_status.set_defaults(handler=cmd_feeds_status)

    tokens = commands.add_parser("tokens", help="API bearer tokens")
    token_actions = tokens.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = token_actions.add_parser("create", help="create a token for NAME and print it (shown once)")
    create.add_argument("name")
    create.set_defaults(handler=cmd_tokens_create)
    revoke = token_actions.add_parser("revoke", help="revoke every token of NAME")
    revoke.add_argument("name")
    revoke.set_defaults(handler=cmd_tokens_revoke)
    token_list = token_actions.add_parser("list", help="every token's id, owner and creation time (never the token)")
    token_list.add_argument("--json", action="store_true")
    token_list.set_defaults(handler=cmd_tokens_list)

    alerts = commands.add_parser("alerts", help="alert history: what was sent, to whom, and what failed")
    alerts.add_argument("--limit", type=int, default=20)
    alerts.add_argument("--json", action="store_true")
    alerts.set_defaults(handler=cmd_alerts)

    stats = commands.add_parser("stats", help="counts of stored articles by tag, country, source and language")
    stats.add_argument("query", nargs="?", default="*", help="only articles matching this query")
    stats.add_argument("--top", type=int, default=10, help="values shown per field")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(handler=cmd_stats)

    reindex = commands.add_parser(
        "reindex", help="rebuild the store; --retag re-runs clean and tag with the current taxonomy"
    )
    reindex.add_argument("--retag", action="store_true")
    reindex.set_defaults(handler=cmd_reindex)

    health = commands.add_parser("health", help="exit 0 when Redis and the store answer (for health checks)")
    health.add_argument(
        "--service",
        choices=["worker", "fetcher", "alerter"],
        default=None,
        help="also fail when one of this service's loops on this host has stopped",
    )
    health.set_defaults(handler=cmd_health)

    dead = commands.add_parser("dead-letters", help="articles and alerts that could not be processed, and why")
    dead.add_argument("--limit", type=int, default=20)
    dead.add_argument("--json", action="store_true")
    dead.set_defaults(handler=cmd_dead_letters)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wirewatch")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _empty(what: str) -> None:
    """Say that a listing has nothing in it (on stderr: stdout stays empty for scripts)."""
    print(f"no {what}", file=sys.stderr)


def _progress_bar(description: str, total: int | None, unit: str) -> Any:
    """A progress bar with the total, the rate and the time left, on stderr; shown only when
    stderr is a terminal, so logs and pipes get no bar characters."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        file=sys.stderr,
        disable=not sys.stderr.isatty(),
        dynamic_ncols=True,
        leave=True,
    )


@contextlib.contextmanager
def _services(settings: Settings, log_level: str) -> Iterator[Any]:
    """The worker and alerter as child processes (and the embedded Redis when none is set),
    stopped on the way out; yields the Redis client."""
    from shared.queue import configure
    from shared.redis_client import get_redis, resolve_redis_url, stop_embedded_redis
    from shared.store import open_store

    redis_url = resolve_redis_url(settings)  # starts the embedded server when none is configured
    children: list[subprocess.Popen[bytes]] = []
    try:
        open_store(settings).setup()
        configure(settings)
        child_env = {**os.environ, "WIREWATCH_REDIS_URL": redis_url}
        logs = settings.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for service in ("worker", "alerter"):
            with open(logs / f"{service}.log", "ab") as log_file:
                children.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "services.cli", "--log-level", log_level, service],
                        env=child_env,
                        stdout=log_file,
                        stderr=subprocess.STDOUT,
                    )
                )
        yield get_redis(settings)
    finally:
        _stop_children(children)
        stop_embedded_redis()


def _wait_and_report(client: Any, settings: Settings, run_id: str, timeout: float, as_json: bool) -> dict[str, int]:
    from shared import runs
    from shared.store import open_store

    with _progress_bar("through the chain", None, "articles") as bar:

        def show(counts: dict[str, int]) -> None:
            if bar.total != counts["seen"]:
                bar.total = counts["seen"]
            bar.update(min(counts["done"], counts["seen"]) - bar.n)

        try:
            counts = runs.wait_until_done(client, run_id, timeout, progress=None if as_json else show)
        except TimeoutError as error:
            raise UserError(str(error)) from None
    open_store(settings).refresh()
    _print_counts({name: counts[name] for name in runs.OUTCOMES}, as_json=as_json)
    return counts


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from services.fetcher.service import Fetcher
    from shared.queue import enqueue_batch, report_health

    with _services(settings, args.log_level) as client:
        fetcher = Fetcher(settings, client, enqueue_batch, report_health)
        if not args.once:
            logs = settings.data_dir / "logs"
            print(f"wirewatch running: inbox {settings.inbox_dir}, logs in {logs}; Ctrl-C stops", file=sys.stderr)
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            with contextlib.suppress(KeyboardInterrupt):
                fetcher.run_forever(stop)
            return 0
        run_id = uuid.uuid4().hex
        fetcher.run_once(run_id)
        _wait_and_report(client, settings, run_id, args.timeout, args.json)
    return 0


def cmd_inspect(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from shared.formats.mapping import UnreadableFile
    from shared.pipeline.context import build_context
    from shared.pipeline.inspection import describe, inspect_file, render

    context = build_context(settings, _redis(settings), learn=False)
    failed = False
    for name in args.files:
        try:
            articles = inspect_file(Path(name), context)
        except (UnreadableFile, OSError) as error:
            print(f"{name}: cannot be read: {error}", file=sys.stderr)
            failed = True
            continue
        for article in articles:
            if args.json:
                print(json.dumps({"file": name, **describe(article)}, ensure_ascii=False))
            else:
                print(f"== {name}\n{render(article)}\n")
    return 1 if failed else 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from shared.formats.limits import Limits
    from shared.queue import enqueue_batch
    from shared.sources.backfill import backfill, walk
    from shared.sources.batcher import Batcher

    paths = [Path(path) for path in args.paths]
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise UserError(f"no such file or folder: {', '.join(missing)}")
    with _services(settings, args.log_level) as client:
        run_id = uuid.uuid4().hex
        batcher = Batcher(settings.batch_size, enqueue_batch, client, run_id)
        files = sum(1 for _ in walk(paths))  # a listing only: the bar's total
        with _progress_bar("reading", files, "files") as bar:

            def show(done: int, articles: int) -> None:
                bar.set_postfix(articles=articles, refresh=False)
                bar.update(done - bar.n)

            report = backfill(
                paths, batcher, client, progress=None if args.json else show, limits=Limits.from_settings(settings)
            )
        if not args.json:
            print(
                f"{report.files} files read, {report.articles} articles queued; waiting for the chain…",
                file=sys.stderr,
            )
        counts = _wait_and_report(client, settings, run_id, args.timeout, args.json)
        if not args.json:
            print(
                f"ingested {counts['indexed']}, skipped as duplicate {counts['duplicates']}, rejected {counts['rejected']}"
            )
            for path, reason in report.rejected[:20]:
                print(f"  rejected {path}: {reason}")
            if len(report.rejected) > 20:
                print(f"  … and {len(report.rejected) - 20} more (wirewatch dead-letters)")
    return 0


def _stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)  # Celery's warm shutdown: finish the current task
    for child in children:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()


def _print_counts(counts: dict[str, int], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(counts))
    else:
        width = max(map(len, counts))
        for name, value in counts.items():
            print(f"{name:<{width}}  {value}")


def cmd_service(args: argparse.Namespace, settings: Settings) -> int:
    stop = threading.Event()
    if args.service == "api":
        from services.api.server import serve

        serve(settings)
        return 0
    if args.service == "worker":
        if settings.worker_metrics_port:
            from shared import multiprocess_metrics

            multiprocess_metrics.prepare()  # before anything loads prometheus_client: see there
        from services.worker.service import run_worker

        run_worker(settings, concurrency=args.concurrency, log_level=args.log_level)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.service == "alerter":
        from services.alerter.service import run_alerter
        from shared.alerting.delivery import AlertSender
        from shared.redis_client import get_redis
        from shared.store import open_store

        with contextlib.suppress(KeyboardInterrupt):
            run_alerter(AlertSender(settings, get_redis(settings), open_store(settings)), stop)
        return 0
    from services.fetcher.service import Fetcher
    from shared.queue import configure, enqueue_batch, report_health
    from shared.redis_client import get_redis

    configure(settings)
    with contextlib.suppress(KeyboardInterrupt):
        Fetcher(settings, get_redis(settings), enqueue_batch, report_health).run_forever(stop)
    return 0


def cmd_setup(args: argparse.Namespace, settings: Settings) -> int:
    from shared.kibana import export_ndjson, import_saved_objects
    from shared.store import open_store

    if args.export_kibana:
        sys.stdout.write(export_ndjson(settings.index_prefix))
        return 0
    if (args.rotate_keys or args.keys_dir) and not args.security:
        raise UserError("--rotate-keys and --keys-dir go with --security")
    if args.security and not settings.elasticsearch_url:
        raise UserError("--security needs WIREWATCH_ELASTICSEARCH_URL (and a superuser's credentials)")
    open_store(settings).setup()
    print("store ready" + (f" (alias {settings.index_prefix}-articles)" if settings.elasticsearch_url else ""))
    if args.security:
        from elasticsearch import ApiError

        from shared.store.elastic import elasticsearch_client
        from shared.store.security import set_up_security

        key_dir = args.keys_dir or settings.data_dir / "elasticsearch-keys"
        try:
            with elasticsearch_client(settings) as client:
                keys = set_up_security(client, settings.index_prefix, key_dir, rotate=args.rotate_keys)
        except ApiError as error:  # most often: these credentials may not manage security
            raise UserError(f"security setup refused: {error}") from None
        for key in keys:
            state = "new key" if key.created else "key kept"
            print(f"security: {key.service}: role {settings.index_prefix}-{key.service}, {state} {key.key_id}")
        print(f"security: keys written under {key_dir}")
    if args.kibana:
        try:
            result = import_saved_objects(args.kibana, settings)
        except Exception as error:  # network, HTTP or refusal: one clear line, not a traceback
            raise UserError(f"Kibana import failed: {error}") from None
        print(f"kibana: {result.get('successCount', 0)} saved objects imported")
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from shared.query import QueryError
    from shared.store import open_store

    try:
        articles = open_store(settings).search(args.query, limit=args.limit, sort=args.sort)
    except QueryError as error:
        raise UserError(str(error)) from None
    if not articles and not args.json:
        _empty("articles match")
    for article in articles:
        if args.json:
            print(json.dumps(article.to_document(), ensure_ascii=False))
        else:
            date = article.published_at.date().isoformat() if article.published_at else "----------"
            tags = ",".join(article.tags)
            duplicate = f"  (duplicate of {article.duplicate_of})" if article.duplicate_of else ""
            print(f"{date}  {article.source[:20]:<20}  {article.title[:90]}  [{tags}]{duplicate}")
    return 0


def _redis(settings: Settings) -> Any:
    from shared.redis_client import get_redis

    return get_redis(settings)


def cmd_subscriptions_add(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError

    from shared.alerting.subscriptions import (
        Channel,
        SubscriptionError,
        SubscriptionSpec,
        check_channel_urls,
        find_by_name,
        hide_secrets,
        save_subscription,
    )
    from shared.outbound import URLPolicy
    from shared.query import QueryError

    client = _redis(settings)
    try:
        channels = (
            [Channel(type="webhook", url=url) for url in args.webhook]
            + ([Channel(type="email", to=args.email)] if args.email else [])
            + [Channel(type="slack", url=url) for url in args.slack]
            + [Channel(type="stream", stream=name) for name in args.stream]
        )
        spec = SubscriptionSpec(
            name=args.name,
            query=args.query,
            filter=args.filter,
            channels=channels,
            mode=args.mode,
            realert=args.realert,
            realert_field=args.realert_field,
            realert_window_hours=args.realert_window_hours,
            max_per_hour=args.max_per_hour,
            active=not args.inactive,
        )
        check_channel_urls(spec, URLPolicy.from_setting(settings.url_allow))
        existing = find_by_name(client, args.owner, args.name)
        saved = save_subscription(client, args.owner, spec, existing.id if existing else None)
    except ValidationError as error:
        raise UserError("; ".join(problem["msg"] for problem in error.errors())) from None
    except (QueryError, SubscriptionError) as error:
        raise UserError(str(error)) from None
    print(f"subscription {args.name!r} saved (id {saved.id})")
    shown = hide_secrets(saved, except_new_since=existing) if existing else saved
    for channel in shown.channels:
        if channel.type == "webhook" and channel.secret:
            print(f"  webhook {channel.url}: verify X-Wirewatch-Signature with secret {channel.secret}")
    return 0


def cmd_subscriptions_list(args: argparse.Namespace, settings: Settings) -> int:
    from shared.alerting.subscriptions import hide_secrets, list_subscriptions

    subscriptions = list_subscriptions(_redis(settings), args.owner)
    if not subscriptions and not args.json:
        _empty("subscriptions" + (f" of {args.owner!r}" if args.owner else ""))
    for subscription in subscriptions:
        if args.json:
            print(hide_secrets(subscription).model_dump_json())  # secrets are printed once, when made
        else:
            where = ", ".join(c.url or c.stream or ",".join(c.to) for c in subscription.channels)
            state = "" if subscription.active else "  (inactive)"
            print(
                f"{subscription.owner}/{subscription.name}\t{subscription.query}\t{subscription.mode}\t{where}{state}"
            )
    return 0


def cmd_subscriptions_remove(args: argparse.Namespace, settings: Settings) -> int:
    from shared.alerting.lifecycle import remove_subscription
    from shared.alerting.subscriptions import find_by_name
    from shared.store import open_store

    client = _redis(settings)
    existing = find_by_name(client, args.owner, args.name)
    cancelled = remove_subscription(client, open_store(settings), args.owner, existing.id) if existing else None
    if cancelled is None:
        raise UserError(f"no subscription named {args.name!r}")
    print(f"subscription {args.name!r} removed" + (f"; {cancelled} pending alerts cancelled" if cancelled else ""))
    return 0


def cmd_subscriptions_test(args: argparse.Namespace, settings: Settings) -> int:
    from shared.alerting.backtest import backtest
    from shared.alerting.subscriptions import Channel, Subscription, find_by_name
    from shared.query import QueryError
    from shared.store import open_store

    subscription = find_by_name(_redis(settings), args.owner, args.subscription)
    try:
        if subscription is None:
            subscription = Subscription(
                name="test", query=args.subscription, owner=args.owner, channels=[Channel(type="stream", stream="test")]
            )
        replay = backtest(open_store(settings), subscription, args.days)
    except (QueryError, ValueError) as error:
        raise UserError(str(error)) from None
    days = replay.by_day()
    if args.json:
        for day in days:
            print(json.dumps(day, ensure_ascii=False))
        return 0
    print(
        f"{subscription.name!r} over {args.days} days: {replay.matched} matching articles, "
        f"{len(replay.alerts)} alerts (re-alert window {subscription.realert_window_hours:g} h, mode {subscription.mode})"
    )
    for day in days:
        print(f"{day['day']}  {len(day['alerts'])} alerts")
        for alert in day["alerts"]:
            via = "" if alert["delivery"] == "instant" else f" [{alert['delivery']}]"
            print(
                f"  {alert['sent_at'][11:16]} {alert['article']['title']}{via}  ({', '.join(alert['matched_terms'])})"
            )
    return 0


def cmd_subscriptions_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from shared.alerting.subscriptions import find_by_name, rotate_secrets

    client = _redis(settings)
    existing = find_by_name(client, args.owner, args.name)
    if existing is None:
        raise UserError(f"no subscription named {args.name!r}")
    for channel in rotate_secrets(client, args.owner, existing.id).channels:
        if channel.type == "webhook":
            print(f"webhook {channel.url}: new secret {channel.secret}")
    return 0


def _feed_registry(settings: Settings) -> Any:
    from shared.feeds.registry import FeedRegistry

    registry = FeedRegistry(_redis(settings))
    if settings.feeds:
        registry.merge_file(settings.feeds)
    return registry


def cmd_feeds_add(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError

    from shared.feeds.registry import Feed

    try:
        feed = Feed(
            url=args.url,
            name=args.name,
            interval=args.interval,
            full_text=args.full_text,
            tags=args.tag,
            language=args.language,
            enabled=not args.disabled,
        )
    except ValidationError as error:
        raise UserError("; ".join(problem["msg"] for problem in error.errors())) from None
    _feed_registry(settings).put(feed)
    print(f"feed {feed.url} saved")
    return 0


def cmd_feeds_remove(args: argparse.Namespace, settings: Settings) -> int:
    if not _feed_registry(settings).remove(args.url):
        raise UserError(f"no feed {args.url}")
    print(f"feed {args.url} removed")
    return 0


def cmd_feeds_list(args: argparse.Namespace, settings: Settings) -> int:
    feeds = _feed_registry(settings).all()
    if not feeds and not args.json:
        _empty("feeds (wirewatch feeds add URL)")
    for feed in feeds:
        if args.json:
            print(feed.model_dump_json())
        else:
            flags = "" if feed.enabled else "  (disabled)"
            print(f"{feed.url}\t{feed.name or ''}\t{','.join(feed.tags)}{flags}")
    return 0


def cmd_feeds_import(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from shared.feeds.opml import OpmlError, parse_opml

    try:
        feeds = parse_opml(Path(args.file).read_text("utf-8"))
    except (OSError, OpmlError) as error:
        raise UserError(str(error)) from None
    registry = _feed_registry(settings)
    for feed in feeds:
        registry.put(feed)
    print(f"{len(feeds)} feeds imported")
    return 0


def cmd_feeds_export(args: argparse.Namespace, settings: Settings) -> int:
    from shared.feeds.opml import export_opml

    sys.stdout.write(export_opml(_feed_registry(settings).all()))
    return 0


def cmd_feeds_status(args: argparse.Namespace, settings: Settings) -> int:
    from shared.feeds.status import feed_status

    rows = feed_status(_redis(settings), _feed_registry(settings).all())
    if not rows and not args.json:
        _empty("feeds (wirewatch feeds add URL)")
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    for row in rows:
        print(row["url"] + (f"  ({row['name']})" if row["name"] else ""))
        for label in (
            "state",
            "last_fetch",
            "last_new_item",
            "http_status",
            "items_per_day",
            "failures",
            "next_poll",
            "validators",
            "entries_set_aside",
            "health",
        ):
            if row.get(label) not in (None, ""):
                print(f"    {label.replace('_', ' '):<14} {row[label]}")
    return 0


def cmd_tokens_create(args: argparse.Namespace, settings: Settings) -> int:
    from shared.tokens import create_token

    print(create_token(_redis(settings), args.name))
    return 0


def cmd_tokens_list(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import asdict

    from shared.tokens import list_tokens

    tokens = list_tokens(_redis(settings))
    if not tokens and not args.json:
        _empty("tokens (wirewatch tokens create NAME)")
    for token in tokens:
        if args.json:
            print(json.dumps(asdict(token)))
        else:
            print(f"{token.id}  {token.owner:<20}  created {token.created or 'unknown'}")
    return 0


def cmd_tokens_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from shared.tokens import revoke_owner

    print(f"{revoke_owner(_redis(settings), args.name)} tokens of {args.name!r} revoked")
    return 0


def cmd_alerts(args: argparse.Namespace, settings: Settings) -> int:
    from shared.store import open_store

    records = open_store(settings).alert_history(args.limit)
    if not records and not args.json:
        _empty("alerts")
    for record in records:
        if args.json:
            print(json.dumps(record, ensure_ascii=False))
        else:
            error = f"  — {record['error']}" if record.get("error") else ""
            print(
                f"{record['at'][:19]}  {record['status']:<9}  {record['subscription'][:20]:<20}  {record['channel']:<7}  {str(record.get('title'))[:60]}{error}"
            )
    return 0


STATS_FIELDS = ("tags", "countries", "people", "organizations", "source", "lang")


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from shared.query import QueryError
    from shared.store import open_store

    store = open_store(settings)
    try:
        total = store.count(args.query)
        facets = store.facets(args.query, STATS_FIELDS, size=args.top)
    except QueryError as error:
        raise UserError(str(error)) from None
    if args.json:
        print(json.dumps({"articles": total, **{field: dict(values) for field, values in facets.items()}}))
        return 0
    print(f"articles  {total}")
    for field, values in facets.items():
        print(f"\n{field}")
        for value, count in values:
            print(f"  {count:>8}  {value}")
    return 0


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    from shared.pipeline.reindex import ReindexBusy, reindex

    with _progress_bar("reindex", None, "articles") as bar:

        def show(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            copied = reindex(settings, retag=args.retag, progress=show)
        except ReindexBusy as error:
            raise UserError(str(error)) from None
    print(f"reindexed {copied} articles" + (" with the current taxonomy" if args.retag else ""), file=sys.stderr)
    return 0


def cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    from shared.store import open_store

    problems = []
    try:
        _redis(settings).ping()
    except Exception as error:  # any failure means unhealthy; say which
        problems.append(f"redis: {error}")
    try:
        open_store(settings).count("*")
    except Exception as error:
        problems.append(f"store: {error}")
    if args.service and not problems:
        from shared.heartbeat import quiet_loops

        problems += [
            f"{args.service}: its {loop} loop has stopped" for loop in quiet_loops(_redis(settings), args.service)
        ]
    if problems:
        print("unhealthy: " + "; ".join(problems), file=sys.stderr)
        return 1
    print("healthy")
    return 0


def cmd_dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    from shared.deadletters import read_dead_letters

    records = read_dead_letters(_redis(settings), args.limit)
    if not records and not args.json:
        _empty("dead letters")
    for record in records:
        if args.json:
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(
                f"{record['at'][:19]}  {record['stage']:<14}  {_dead_letter_place(record['item'])}  — {record['reason']}"
            )
    return 0


def _dead_letter_place(item: dict[str, Any]) -> str:
    """Where a dead letter came from: file and line when it was read from a file, else what it is."""
    if item.get("file"):
        return f"{item['file']}:{item['line']}" if item.get("line") else str(item["file"])
    what = item.get("title") or item.get("subscription") or item.get("id", "")
    return str(what)[:60]


if __name__ == "__main__":
    sys.exit(main())
