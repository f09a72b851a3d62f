"""Readings in a file: CSV whose header names the JSON fields, or JSON Lines; one item a line.

Each line becomes the item an HTTP client would have sent for it (a dict of wire names), so the
import validates it with the ingest endpoints' own `validate_reading`. The fields come from the
ingest models, so a field added to a reading is a CSV column at once.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, Literal, NamedTuple

import orjson

from energy_ingest.errors import FieldProblem
from energy_ingest.ingest.schemas import MeterReading, VehicleReading
from energy_ingest.readings import KINDS

FileFormat = Literal["csv", "jsonl"]
_BOM = b"\xef\xbb\xbf"


def _wire_fields(model: type[MeterReading] | type[VehicleReading]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys([*_wire_fields(MeterReading), *_wire_fields(VehicleReading)])
)
"""Every field either kind of reading has, by its JSON name: the columns a CSV may have."""
TEXT_FIELDS = frozenset({*(kind.id_field for kind in KINDS), "timestamp"})
"""CSV cells taken as text; every other field's cell is read as a JSON number."""


class Line(NamedTuple):
    """One row of the file: where it is, what it says, and the item it holds (a named tuple:
    one is built per line, and a tuple costs a fraction of a dataclass)."""

    number: int
    """1-based line of the file (the CSV header is line 1)."""
    raw: bytes
    """The line as read, without its line end: what the rejects file shows."""
    item: Any
    """The reading as an HTTP client would send it (a dict of wire names), or None when the
    line is not even a row (`problems` says why)."""
    problems: tuple[FieldProblem, ...] = ()

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")


class HeaderInvalid(ValueError):
    """A CSV header that no reading fits: the whole file is refused before anything is read."""


def _number(cell: str) -> Any:
    """A cell as a JSON number when it is one; else the text, which validation refuses by name
    ("must be a number"), as it refuses a number sent as a string over HTTP."""
    try:
        value = orjson.loads(cell)
    except orjson.JSONDecodeError:
        return cell
    return value if type(value) is float or type(value) is int else cell


def detect_format(first_line: bytes) -> FileFormat:
    """JSON Lines when the first row is a JSON object, else CSV (its header)."""
    return "jsonl" if first_line.lstrip(_BOM + b" \t").startswith(b"{") else "csv"


def _stripped(raw: bytes) -> bytes:
    return raw.rstrip(b"\r\n")


def _rows(stream: BinaryIO, progress: Any) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its end) of every non-blank line; `progress(n)` after each
    line read with its size in bytes."""
    for number, raw in enumerate(stream, start=1):
        if progress is not None:
            progress(len(raw))
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        line = _stripped(raw)
        if line.strip():
            yield number, line


def read_lines(
    stream: BinaryIO, file_format: FileFormat | None = None, progress: Any = None
) -> Iterator[Line]:
    """Every row of `stream`, streamed (constant memory): CSV or JSON Lines, detected from the
    first non-blank line unless `file_format` says. Raises HeaderInvalid for a CSV header that
    names no id column or a column no reading has."""
    rows = _rows(stream, progress)
    first = next(rows, None)
    if first is None:
        return
    chosen = file_format or detect_format(first[1])
    if chosen == "jsonl":
        yield from _json_lines(_chain(first, rows))
    else:
        yield from _csv_lines(first[1], rows)


def _chain(
    first: tuple[int, bytes], rows: Iterator[tuple[int, bytes]]
) -> Iterator[tuple[int, bytes]]:
    yield first
    yield from rows


def _json_lines(rows: Iterable[tuple[int, bytes]]) -> Iterator[Line]:
    for number, raw in rows:
        try:
            item = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            problem = FieldProblem(field="body", rule="json", message=f"is not valid JSON: {error}")
            yield Line(number, raw, None, (problem,))
            continue
        yield Line(number, raw, item)


def _cells(text: str) -> list[str]:
    if '"' not in text:
        return text.split(",")  # the plain case, by far the commonest: no quoting to undo
    return next(csv.reader((text,)), [])


def csv_columns(header: bytes) -> list[str]:
    """The header's columns, checked: each a field of a reading, one id column at least."""
    columns = [name.strip() for name in _cells(header.decode("utf-8", "replace"))]
    unknown = [name for name in columns if name not in FIELDS]
    if unknown:
        raise HeaderInvalid(
            f"the CSV header names {', '.join(repr(name) for name in unknown)}, which no"
            f" reading has; the columns are the JSON field names: {', '.join(FIELDS)}"
        )
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise HeaderInvalid(f"the CSV header names {', '.join(repeated)} more than once")
    if not any(kind.id_field in columns for kind in KINDS):
        raise HeaderInvalid(
            "the CSV header has no id column: "
            + " or ".join(kind.id_field for kind in KINDS)
            + " (a JSON Lines file starts with '{')"
        )
    return columns


def _csv_lines(header: bytes, rows: Iterable[tuple[int, bytes]]) -> Iterator[Line]:
    columns = csv_columns(header)
    numeric = [name not in TEXT_FIELDS for name in columns]
    width = len(columns)
    for number, raw in rows:
        try:
            cells = _cells(raw.decode("utf-8"))
        except UnicodeDecodeError:
            problem = FieldProblem(field="body", rule="utf8", message="is not UTF-8 text")
            yield Line(number, raw, None, (problem,))
            continue
        if len(cells) != width:
            problem = FieldProblem(
                field="body",
                rule="columns",
                message=f"has {len(cells)} cells; the header has {width} columns",
            )
            yield Line(number, raw, None, (problem,))
            continue
        # An empty cell is a field left out: a mixed file's meter rows leave the vehicle
        # columns empty, and a required field left empty is refused as missing.
        item = {
            name: (_number(cell) if is_number else cell)
            for name, cell, is_number in zip(columns, cells, numeric, strict=True)
            if cell != ""
        }
        yield Line(number, raw, item)
