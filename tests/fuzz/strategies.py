"""Hypothesis strategies for hostile requests: JSON values, ids, numbers, timestamps, bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from energy_ingest.readings import KINDS

DEVICE_ID = r"[A-Za-z0-9._:\-]{1,64}"

# --- text ------------------------------------------------------------------------------------

odd_characters = st.sampled_from(
    [
        "\n", "\r", "\t", " ", "\x00", "\x7f", "/", "\\", "%", "?", "#", "&", "=", "+", '"', "'",
        "é", "ß", "٣", "𝟘", "\u200b", "\u202e", "\ufeff", "🔋", "\ud800", "\udfff",
    ]
)  # fmt: skip
any_text = st.text(st.characters(codec=None), max_size=80)  # lone surrogates included
long_text = st.builds(
    lambda character, length: character * length,
    st.sampled_from(["a", "é", "9", "🔋", " "]),
    st.integers(65, 200_000),
)

valid_ids = st.from_regex(DEVICE_ID, fullmatch=True)
hostile_ids = st.one_of(
    valid_ids,
    any_text,
    st.builds(
        lambda before, odd, after: before + odd + after,
        valid_ids | st.just(""),
        odd_characters,
        valid_ids | st.just(""),
    ),
    st.integers(65, 300).map(lambda n: "x" * n),
    st.sampled_from(["", ".", "..", "-", "null", "undefined", "NaN", "0", "a" * 64, "a" * 65]),
)


def path_segment(text: str) -> str:
    """`text` as one percent-encoded path segment, dots too (a client would fold `..` away)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="").replace(".", "%2E")


# --- numbers ---------------------------------------------------------------------------------

_EDGE_NUMBERS = [
    0, -0.0, 100, 100.0000000001, 2000, 2000.000001, -60, -60.0000001, 5e-324,
    1.7976931348623157e308, -1e-320, 1e16, 2**53 + 1,
]  # fmt: skip
hostile_numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(),  # NaN and ±Infinity: not JSON, serialised as the bare words
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from(_EDGE_NUMBERS),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False).map(str),
    st.just([1.0]),
    st.just({"value": 1.0}),
)

# --- timestamps ------------------------------------------------------------------------------

offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


def _spelled(moment: datetime, style: int) -> str:
    """One instant in one of the spellings ISO 8601 allows (and a few the engine must refuse)."""
    text = moment.isoformat()
    if style == 1:
        text = text.replace("+00:00", "Z")
    elif style == 2:
        text = text.replace("T", " ")
    elif style == 3:
        text = text[:-3] + text[-2:]  # +0100
    elif style == 4:
        text = text.replace("+00:00", "z")
    elif style == 5:
        text = text[:-6]  # naive: refused
    elif style == 6:
        text = text[:-6] + ".123456789" + text[-6:] if "." not in text else text
    return text


def _recent(seconds: int, offset: timezone, style: int) -> str:
    # Around the accepted window: from a little beyond the back-fill limit to past the skew.
    return _spelled(datetime.now(UTC).replace(microsecond=0).astimezone(offset)
                    + timedelta(seconds=seconds), style)  # fmt: skip


recent_timestamps = st.builds(_recent, st.integers(-(31 * 86400), 600), offsets, st.integers(0, 6))
valid_recent_timestamps = st.builds(
    lambda s, tz: _spelled(
        datetime.now(UTC).replace(microsecond=0).astimezone(tz) + timedelta(seconds=s), 0
    ),
    st.integers(-(29 * 86400), 60),
    offsets,
)
anywhen_timestamps = st.builds(
    _spelled,
    st.datetimes(min_value=datetime(2, 1, 3), max_value=datetime(9998, 12, 29), timezones=offsets),
    st.integers(0, 6),
)
regex_timestamps = st.from_regex(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}([.,]\d{1,12})?)?(Z|z|[+-]\d{2}(:?\d{2})?)",
    fullmatch=True,
)
odd_timestamps = st.sampled_from(
    [
        "", "now", "2026-11-27", "2026-11-27T10:00:00", "2026-02-30T00:00:00Z",
        "2026-11-27T24:00:00Z", "2026-11-27T10:00:60Z", "2026-11-27T10:00:00+24:00",
        "2026-11-27T10:00:00+99:99", "+002026-11-27T10:00:00Z", "2026-W48-5T10:00:00Z",
        "2026-331T10:00:00Z", "20261127T100000Z", "2026-11-27T10:00:00Z\n", " 2026-11-27T10:00Z",
        "2026-11-27T10:00:00.Z", "2026-11-27T10:00:00,5Z", "٢٠٢٦-١١-٢٧T10:00:00Z",
        "0000-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2026-11-27T10:00:00-00:00",
    ]
)  # fmt: skip
hostile_timestamps = st.one_of(
    recent_timestamps,
    anywhen_timestamps,
    regex_timestamps,
    odd_timestamps,
    any_text,
    hostile_numbers,
)

# --- JSON ------------------------------------------------------------------------------------

_FIELDS = ["meterId", "vehicleId", "kwhConsumedAc", "voltage", "soc", "kwhDeliveredDc",
           "batteryTemp", "timestamp", "from", "to", "__proto__", "constructor", ""]  # fmt: skip
json_keys = st.sampled_from(_FIELDS) | any_text
json_scalars = st.one_of(st.none(), st.booleans(), hostile_numbers, any_text, hostile_timestamps)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(json_keys, children, max_size=6)
    ),
    max_leaves=24,
)


def encode(value: Any) -> bytes:
    """JSON as a careless client writes it: NaN/Infinity as bare words, surrogates escaped."""
    return json.dumps(value, allow_nan=True).encode()


# --- readings --------------------------------------------------------------------------------

_RANGES = {
    "kwhConsumedAc": (0.0, 100.0),
    "voltage": (0.0, 2000.0),
    "soc": (0.0, 100.0),
    "kwhDeliveredDc": (0.0, 100.0),
    "batteryTemp": (-60.0, 100.0),
}
# The wire names of each kind come from the engine's reading descriptors (as `reading_body`
# uses them); the values stay drawn here, ints among them, which a reading tuple never holds.
_KIND_FIELDS = {kind.kind.value: (kind.id_field, kind.value_fields) for kind in KINDS}
_HOSTILE_BY_FIELD = {
    "meterId": hostile_ids,
    "vehicleId": hostile_ids,
    "timestamp": hostile_timestamps,
}


@st.composite
def readings(draw: st.DrawFn, kind: str | None = None) -> Any:
    """A reading that is valid, then perhaps broken in a few places (a field dropped, replaced
    by something hostile, an unknown or the other kind's field added)."""
    kind = kind or draw(st.sampled_from(["meter", "vehicle"]))
    id_field, value_fields = _KIND_FIELDS[kind]
    reading: dict[str, Any] = {id_field: draw(valid_ids)}
    for name in value_fields:
        low, high = _RANGES[name]
        reading[name] = draw(st.floats(low, high) | st.integers(int(low), int(high)))
    reading["timestamp"] = draw(valid_recent_timestamps)
    for _ in range(draw(st.integers(0, 3))):
        mutation = draw(st.sampled_from(["drop", "replace", "replace", "add", "other-kind"]))
        name = draw(st.sampled_from(sorted(reading))) if reading else "timestamp"
        if mutation == "drop":
            reading.pop(name, None)
        elif mutation == "replace":
            reading[name] = draw(_HOSTILE_BY_FIELD.get(name, hostile_numbers) | json_values)
        elif mutation == "add":
            reading[draw(json_keys)] = draw(json_values)
        else:
            other = "vehicleId" if id_field == "meterId" else "meterId"
            reading[other] = draw(valid_ids)
    if draw(st.integers(0, 20)) == 0:
        return [reading]  # an array where one object is expected (or a batch of one)
    return reading


# --- bodies ----------------------------------------------------------------------------------

raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(
        [
            b"", b" ", b"\n", b"null", b"true", b"0", b'""', b"[]", b"{}", b"NaN", b"[NaN]",
            b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1" * 400, b"\xef\xbb\xbf{}",
            b"\xff\xfe{\x00}\x00", b'{"meterId": "a", "meterId": "b"}', b'{"a":1,}', b"[1,]",
            b'{"meterId": "m1", "kwhConsumedAc": 1, "voltage": 230, "timestamp": "2026',
            b'"\\ud800"', b'{"\\u0000": 1}', b"\x00", b"{" * 3, b"]",
        ]
    ),
    st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    long_text.map(lambda text: encode({"meterId": text})),
)  # fmt: skip


def ingest_bodies(kind: str | None, batch: bool) -> st.SearchStrategy[bytes]:
    """Bodies for one ingest endpoint: mostly near-valid readings, then anything at all."""
    items = readings(kind) | json_values
    if batch:
        shaped = st.lists(readings(kind) | items, max_size=30) | readings(kind) | json_values
    else:
        shaped = readings(kind) | readings(kind) | json_values
    return st.one_of(shaped.map(encode), shaped.map(encode), raw_bodies)


@st.composite
def query_strings(draw: st.DrawFn, names: tuple[str, ...]) -> str:
    """`name=value&…` with the expected names, unknown ones, repeats and hostile values."""
    pairs = draw(
        st.lists(
            st.tuples(st.sampled_from(names) | any_text, hostile_timestamps.map(str) | any_text),
            max_size=4,
        )
    )
    return "&".join(f"{path_segment(name)}={path_segment(value)}" for name, value in pairs)
