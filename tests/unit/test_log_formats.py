"""Log lines: keys redacted and text escaped in every format, the format chosen by the stream."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from energy_ingest.telemetry import logs
from energy_ingest.telemetry.logs import (
    JsonFormatter,
    TextFormatter,
    chosen_format,
    configure_logging,
    escape_controls,
)

KEY = "eie_0123456789ab_" + "S3cr3t-" * 6
SECRET = KEY[17:]


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("engine", logging.ERROR, __file__, 1, message, args or None, None)
    record.__dict__.update(extra)
    return record


def _failed_record(message: str) -> logging.LogRecord:
    try:
        raise RuntimeError(message)
    except RuntimeError:
        record = _record("it failed")
        record.exc_info = sys.exc_info()
    return record


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()], ids=["json", "text"])
@pytest.mark.parametrize(
    "record",
    [
        _record(f"DELETE /v1/keys/{KEY} 422"),
        _record("GET %s %d", f"/{KEY}", 404),
        _record("lookup", detail=f"token={KEY}"),
        _failed_record(f"bad token {KEY}"),
    ],
    ids=["message", "args", "extra", "traceback"],
)
def test_a_whole_key_is_redacted_from_every_part_of_a_line(
    formatter: logging.Formatter, record: logging.LogRecord
) -> None:
    line = formatter.format(record)
    assert SECRET not in line
    assert "eie_0123456789ab_<redacted>" in line


@pytest.mark.parametrize(
    "hostile",
    [
        "/x\n2026-11-29 19:00:00,000 INFO 1 energy_ingest.access: POST /v1/keys 201",
        "/x\r2026-11-29 19:00:00,000 INFO 1 energy_ingest.access: POST /v1/keys 201",
        "/\x1b[2J\x1b[31mred",
        "/\x9b2J",  # C1 control sequence introducer
        "/a\u2028b\u2029c",
        "/gra\u202efana\u2066\u200f",
        "/nul\x00del\x7f",
    ],
)
def test_text_lines_escape_what_could_forge_a_line_or_drive_a_terminal(hostile: str) -> None:
    line = TextFormatter().format(_record("GET %s 404", hostile))
    assert "\n" not in line
    assert all(
        not (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029\u202e\u2066\u200f")
        for c in line
    )
    assert line.endswith(" 404")


def test_escapes_are_readable() -> None:
    assert escape_controls("a\nb\r\tc\x1b[0m\u2028\u202e") == "a\\nb\\r\\tc\\x1b[0m\\u2028\\u202e"
    assert escape_controls("Zürich 東京 ok") == "Zürich 東京 ok"


def test_a_traceback_keeps_its_lines_but_none_can_pass_for_a_log_line() -> None:
    line = TextFormatter().format(_failed_record("x\n2026-11-29 19:00:00,000 INFO forged"))
    head, *rest = line.split("\n")
    assert head.endswith("engine: it failed")
    assert rest
    assert all(part.startswith("    ") for part in rest)


def test_json_lines_carry_no_colour_codes() -> None:
    # uvicorn passes a coloured copy of its start-up message as an extra.
    record = _record(
        "Uvicorn running on %s",
        "http://127.0.0.1:8000",
        color_message="Uvicorn running on \x1b[1m%s\x1b[0m",
    )
    coloured = _record("\x1b[32mINFO\x1b[0m ready", note="\x1b[1mbold\x1b[0m")
    for each in (record, coloured):
        line = JsonFormatter().format(each)
        assert "\x1b" not in line
        assert "\\u001b" not in line
        json.loads(line)
    assert "color_message" not in JsonFormatter().format(record)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_text_on_a_terminal_and_json_otherwise() -> None:
    assert chosen_format("auto", _Terminal()) == "text"
    assert chosen_format("auto", io.StringIO()) == "json"
    assert chosen_format("json", _Terminal()) == "json"
    assert chosen_format("text", io.StringIO()) == "text"


@pytest.mark.parametrize(
    ("environment", "terminal", "expected"),
    [
        (None, True, logs.TextFormatter),
        (None, False, logs.JsonFormatter),
        ("json", True, logs.JsonFormatter),
        ("text", False, logs.TextFormatter),
    ],
)
def test_the_environment_variable_still_chooses_the_format(
    monkeypatch: pytest.MonkeyPatch,
    environment: str | None,
    terminal: bool,
    expected: type[logging.Formatter],
) -> None:
    if environment is None:
        monkeypatch.delenv("EIE_LOG_FORMAT", raising=False)
    else:
        monkeypatch.setenv("EIE_LOG_FORMAT", environment)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(stream=_Terminal() if terminal else io.StringIO())
        (handler,) = root.handlers
        assert type(handler.formatter) is expected
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_json_lines_escape_unicode_line_separators() -> None:
    line = JsonFormatter().format(_record("GET /a\u2028b\u2029c 404"))
    assert "\u2028" not in line
    assert "\u2029" not in line
    assert json.loads(line)["message"] == "GET /a\u2028b\u2029c 404"
