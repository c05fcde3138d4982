"""``punchline``: one entry point for every routine task."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import uuid
from collections.abc import Sequence

from punchline.config import get_settings


def _migrate(args: argparse.Namespace) -> int:
    from punchline.migrate import upgrade

    upgrade(get_settings().database_url)
    print("migrations applied")
    return 0


def _api(args: argparse.Namespace) -> int:
    import uvicorn

    from punchline import logs

    settings = get_settings()
    logs.configure(settings.log_level, json=settings.log_json)
    uvicorn.run(
        "ingest_api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    import faust

    from punchline import logs
    from workers.app import build_app
    from workers.topics import ensure_topics

    settings = get_settings()
    logs.configure(settings.log_level, json=settings.log_json)
    asyncio.run(ensure_topics(settings))
    app = build_app(settings)
    # override_logging=False: faust would otherwise replace the root handlers (and the
    # JSON formatter) with its own colored console handler on stdout.
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
    )
    worker.spinner = None  # its terminal escapes would land in the log stream
    # A batch allocates many short-lived objects; the default generation-0 threshold
    # (700) ran the collector ~15% of planning time. Startup objects are frozen out
    # of collection, and young collections run less often; memory stays bounded.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    worker.execute_from_commandline()
    return 0


def _relay(args: argparse.Namespace) -> int:
    from punchline import logs
    from workers.outbox_relay import run_relay

    settings = get_settings()
    logs.configure(settings.log_level, json=settings.log_json)
    asyncio.run(run_relay(settings))
    return 0


def _webhooks(args: argparse.Namespace) -> int:
    from punchline import logs
    from workers.webhooks.dispatcher import run_webhooks

    settings = get_settings()
    logs.configure(settings.log_level, json=settings.log_json)
    asyncio.run(run_webhooks(settings))
    return 0


def _org_create(args: argparse.Namespace) -> int:
    from punchline.bootstrap import create_org_with_key

    org_id, key = asyncio.run(
        create_org_with_key(get_settings(), name=args.name, timezone=args.timezone)
    )
    print(f"org: {org_id}")
    print(f"API key: {key}")
    return 0


def _key_create(args: argparse.Namespace) -> int:
    from punchline.bootstrap import create_key

    key = asyncio.run(create_key(get_settings(), org=args.org, scopes=args.scope, name=args.name))
    print(f"API key: {key}")
    return 0


def _rules_import(args: argparse.Namespace) -> int:
    import uuid
    from pathlib import Path

    from punchline.rules_files import RuleFileError, import_rules

    try:
        version = asyncio.run(
            import_rules(get_settings(), org_id=uuid.UUID(args.org), path=Path(args.file))
        )
    except RuleFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"rule set version {version} is active")
    return 0


def _rules_export(args: argparse.Namespace) -> int:
    import uuid

    from punchline.rules_files import RuleFileError, export_rules

    try:
        text = asyncio.run(
            export_rules(get_settings(), org_id=uuid.UUID(args.org), version=args.version)
        )
    except RuleFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    from punchline.db.engine import create_engine
    from punchline.reconcile import format_report, reconcile

    async def run() -> bool:
        engine = create_engine(get_settings(), pool_size=1)
        try:
            report = await reconcile(
                engine, org_id=args.org, outbox_grace_s=args.outbox_grace, limit=args.limit
            )
        finally:
            await engine.dispose()
        sys.stdout.write(format_report(report))
        return report.ok

    return 0 if asyncio.run(run()) else 1


def _dev(args: argparse.Namespace) -> int:
    from punchline.stack import run_dev

    return run_dev(port=args.port)


def _demo(args: argparse.Namespace) -> int:
    from punchline.demo.run import run_demo

    return run_demo(customers=args.customers, orders=args.orders, concurrency=args.concurrency)


def _org_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an org id: {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="punchline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=_migrate)

    api = sub.add_parser("api", help="run the HTTP edge")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--workers", type=int, default=1)
    api.set_defaults(func=_api)

    sub.add_parser("worker", help="run an ingest worker").set_defaults(func=_worker)
    sub.add_parser("relay", help="publish the outbox to punchline.events.v1").set_defaults(
        func=_relay
    )
    sub.add_parser("webhooks", help="deliver events to merchant webhooks").set_defaults(
        func=_webhooks
    )

    org = sub.add_parser("org", help="manage orgs").add_subparsers(dest="org_cmd", required=True)
    org_create = org.add_parser("create", help="create an org and its first admin key")
    org_create.add_argument("name")
    org_create.add_argument("--timezone", default="UTC")
    org_create.set_defaults(func=_org_create)

    key = sub.add_parser("key", help="manage API keys").add_subparsers(
        dest="key_cmd", required=True
    )
    key_create = key.add_parser("create", help="create an API key for an org")
    key_create.add_argument("--org", required=True, help="org id")
    key_create.add_argument(
        "--scope", action="append", choices=["pos", "admin", "customer_app"], required=True
    )
    key_create.add_argument("--name", default="cli")
    key_create.set_defaults(func=_key_create)

    rules = sub.add_parser("rules", help="import and export an org's earn rules")
    rules_sub = rules.add_subparsers(dest="rules_cmd", required=True)
    rules_import = rules_sub.add_parser("import", help="validate a YAML rule file, make it active")
    rules_import.add_argument("file")
    rules_import.add_argument("--org", required=True, help="org id")
    rules_import.set_defaults(func=_rules_import)
    rules_export = rules_sub.add_parser("export", help="print the active (or a given) version")
    rules_export.add_argument("--org", required=True, help="org id")
    rules_export.add_argument("--version", type=int, default=None)
    rules_export.set_defaults(func=_rules_export)

    reconcile = sub.add_parser("reconcile", help="check that the books balance")
    reconcile.add_argument("--org", type=_org_id, default=None, help="org id (default: all)")
    reconcile.add_argument(
        "--outbox-grace",
        type=float,
        default=60.0,
        help="seconds an outbox event may stay unpublished (default 60)",
    )
    reconcile.add_argument("--limit", type=int, default=50, help="rows shown per invariant")
    reconcile.set_defaults(func=_reconcile)

    dev = sub.add_parser("dev", help="run broker, Postgres, API and worker in the foreground")
    dev.add_argument("--port", type=int, default=8000)
    dev.set_defaults(func=_dev)

    demo = sub.add_parser("demo", help="run the coffee-chain demo end to end")
    demo.add_argument("--customers", type=int, default=300)
    demo.add_argument("--orders", type=int, default=5000)
    demo.add_argument("--concurrency", type=int, default=32)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
