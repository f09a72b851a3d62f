"""`python -m bench.naive_server`: the engine's HTTP API with the seed's per-reading writer."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Sequence

from bench.naive_writer import DEFAULT_CONNECTIONS, PerReadingWriter
from bench.serving import serve_until_stopped
from energy_ingest.app import create_app
from energy_ingest.config import Settings
from energy_ingest.telemetry.logs import configure_logging


def parse_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; each also read from an `EIE_BENCH_NAIVE_*` environment variable."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.naive_server",
        description="The engine's HTTP API writing one transaction per reading (the baseline).",
    )
    environ = os.environ.get
    parser.add_argument("--host", default=environ("EIE_BENCH_NAIVE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(environ("EIE_BENCH_NAIVE_PORT", "8001")))
    parser.add_argument(
        "--database-url",
        default=environ("EIE_BENCH_NAIVE_DATABASE_URL"),
        required=environ("EIE_BENCH_NAIVE_DATABASE_URL") is None,
        help="PostgreSQL URL (migrated at start-up). [EIE_BENCH_NAIVE_DATABASE_URL]",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=int(environ("EIE_BENCH_NAIVE_CONNECTIONS", str(DEFAULT_CONNECTIONS))),
        help="Connections of the per-reading writer's pool. [EIE_BENCH_NAIVE_CONNECTIONS]",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or Ctrl-C; exit 0 after a graceful shutdown."""
    options = parse_options(argv)
    configure_logging()  # like the engine's: level and format from EIE_LOG_LEVEL, EIE_LOG_FORMAT
    settings = Settings(database_url=options.database_url, host=options.host, port=options.port)
    factory = functools.partial(PerReadingWriter, connections=options.connections)
    app = create_app(settings, writer_factory=factory)
    # As `energy-ingest serve` runs it: the engine's protocol and limits, its log handlers, its
    # own access log.
    return serve_until_stopped(app, settings)


if __name__ == "__main__":
    sys.exit(main())
