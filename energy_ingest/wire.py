"""The wire rules: how a timestamp and a device id are written, and how a problem is named.

Shared by every endpoint, the writer's error answers and the tests; below the features, so none
of them reaches into another for a rule of the wire.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BeforeValidator, StringConstraints, ValidationError

from energy_ingest.errors import FieldProblem, ValidationFailed
from energy_ingest.readings import Reading, kind_of

DEVICE_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,64}$"
DEVICE_ID_RULE = "must be 1–64 characters of A-Z a-z 0-9 . _ : -"
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)

# ISO 8601 date-time with an explicit offset or Z; a naive time is ambiguous and refused.
_ISO_WITH_OFFSET = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|z|[+-]\d{2}(?::?\d{2})?)$"
)
TIMESTAMP_RULE = (
    "must be an ISO 8601 date-time with an explicit offset or Z, e.g. 2026-02-09T13:30:00Z"
)
# Any time the engine handles — readings, windows, assignments — lies in this century; beyond
# it lie calendar overflows and PostgreSQL's ±infinity, never a real fleet's data.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def parse_timestamp(value: Any) -> datetime:
    """ISO 8601 string with an offset → aware datetime in UTC (fractions beyond µs are cut)."""
    if not isinstance(value, str):
        raise ValueError(TIMESTAMP_RULE)
    return parse_timestamp_text(value)


@lru_cache(maxsize=8192)
def parse_timestamp_text(value: str) -> datetime:
    # Cached: a fleet's readings of one minute carry the same few timestamps, so a burst
    # parses each once (refusals raise and are not cached).
    if not _ISO_WITH_OFFSET.fullmatch(value):
        raise ValueError(TIMESTAMP_RULE)
    text = value.replace(",", ".")
    fraction = re.search(r"\.(\d+)", text)
    if fraction and len(fraction.group(1)) > 6:
        text = text[: fraction.start(1) + 6] + text[fraction.end(1) :]
    try:
        parsed = datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{TIMESTAMP_RULE} (not a real date or time)") from exc
    if not EARLIEST <= parsed < LATEST:
        raise ValueError(f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return parsed


def is_device_id(value: str) -> bool:
    """Whether `value` is a well-formed meter or vehicle id."""
    return bool(_DEVICE_ID.fullmatch(value))  # match() would let "V1\n" through ($ before \n)


def require_device_id(field: str, value: str) -> None:
    """A path id that could never exist is a 422 naming the parameter, not a lookup."""
    if not is_device_id(value):
        raise ValidationFailed([FieldProblem(field=field, rule="pattern", message=DEVICE_ID_RULE)])


DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]
Timestamp = Annotated[datetime, BeforeValidator(parse_timestamp)]


def format_timestamp(moment: datetime) -> str:
    """UTC ISO 8601 with a Z, milliseconds as JavaScript's toISOString (the seed's clients parse
    that), microseconds only when the reading carried them."""
    utc = moment.astimezone(UTC)
    if utc.microsecond % 1000:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# --- problems -------------------------------------------------------------------------------------

_PYDANTIC_RULES: dict[str, tuple[str, str]] = {
    "missing": ("required", "is required"),
    "extra_forbidden": ("known_field", "is not a known field"),
    "string_type": ("type", "must be a string"),
    "string_pattern_mismatch": ("pattern", DEVICE_ID_RULE),
    "float_type": ("type", "must be a number"),
    "finite_number": ("finite", "must be a finite number"),
    "model_type": ("type", "must be a JSON object"),
    "model_attributes_type": ("type", "must be a JSON object"),
    "dict_type": ("type", "must be a JSON object"),
}


MAX_ITEM_PROBLEMS = 10
"""Problems reported for one reading (or one request body); the last says how many more."""
_FIELD_NAME_CHARS = 64  # a field name is echoed at most this long: names come from the client


def shown_name(name: object) -> str:
    """A client-chosen field name as the answer repeats it: cut, so it cannot grow the answer."""
    text = str(name)
    return text if len(text) <= _FIELD_NAME_CHARS else text[:_FIELD_NAME_CHARS] + "…"


def capped(problems: list[FieldProblem]) -> list[FieldProblem]:
    """At most MAX_ITEM_PROBLEMS problems, the last of them counting the ones left out."""
    if len(problems) <= MAX_ITEM_PROBLEMS:
        return problems
    left_out = len(problems) - MAX_ITEM_PROBLEMS + 1
    return [
        *problems[: MAX_ITEM_PROBLEMS - 1],
        FieldProblem(field="body", rule="more", message=f"and {left_out} more problems"),
    ]


def problems_from(error: ValidationError) -> list[FieldProblem]:
    """Pydantic's errors → our FieldProblems (wire field names, short rule names), capped."""
    problems = []
    for item in error.errors(include_url=False):
        field = ".".join(shown_name(part) for part in item["loc"]) or "body"
        rule, message = _PYDANTIC_RULES.get(item["type"], (item["type"], item["msg"]))
        if item["type"] == "value_error":
            rule, message = "format", str(item["ctx"]["error"]) if "ctx" in item else item["msg"]
        problems.append(FieldProblem(field=field, rule=rule, message=message))
    return capped(problems)


def reading_body(reading: Reading) -> dict[str, object]:
    """`reading` as the JSON body a device sends for it (wire names, timestamp as formatted)."""
    kind = kind_of(reading)
    body: dict[str, object] = {kind.id_field: reading.device_id}
    for name, value in zip(kind.value_fields, kind.values(reading), strict=True):
        if value is not None or name != kind.energy_field or reading[-1] is None:
            body[name] = value  # left out: the interval energy of a register-only reading
    body["timestamp"] = format_timestamp(reading.timestamp)
    if reading[-1] is not None:
        body[kind.register_field] = reading[-1]
    return body
