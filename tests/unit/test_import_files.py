"""Reading a file of readings: CSV or JSON Lines, one item a line, as an HTTP client sends it."""

from __future__ import annotations

import io

import pytest

from energy_ingest.cli.history import ProgressLine
from energy_ingest.ingest.files import FIELDS, FileFormat, HeaderInvalid, read_lines


def _lines(data: bytes, file_format: str | None = None) -> list[tuple[int, object, list[str]]]:
    chosen: FileFormat | None = (
        "csv" if file_format == "csv" else "jsonl" if file_format == "jsonl" else None
    )
    return [
        (line.number, line.item, [problem.rule for problem in line.problems])
        for line in read_lines(io.BytesIO(data), chosen)
    ]


def test_the_csv_columns_are_the_fields_of_the_ingest_models() -> None:
    assert set(FIELDS) == {
        "meterId",
        "kwhConsumedAc",
        "voltage",
        "vehicleId",
        "soc",
        "kwhDeliveredDc",
        "batteryTemp",
        "timestamp",
        "kwhRegisterAc",
        "kwhRegisterDc",
    }


def test_csv_cells_become_json_values_and_empty_cells_are_left_out() -> None:
    data = (
        b"\xef\xbb\xbfmeterId,kwhConsumedAc,voltage,vehicleId,soc,kwhDeliveredDc,batteryTemp,timestamp\r\n"
        b'M-1,1.5,230,,,,,"2026-01-01T00:00:00Z"\r\n'
        b"\r\n"
        b",,,V-1,true,1e-05,NaN,2026-01-01T00:00:00Z\n"
        b"007,01,,,,,,x"
    )
    assert _lines(data) == [
        (
            2,
            {
                "meterId": "M-1",
                "kwhConsumedAc": 1.5,
                "voltage": 230,
                "timestamp": "2026-01-01T00:00:00Z",
            },
            [],
        ),
        # Not JSON numbers stay text, which validation refuses as "must be a number".
        (
            4,
            {
                "vehicleId": "V-1",
                "soc": "true",
                "kwhDeliveredDc": 1e-05,
                "batteryTemp": "NaN",
                "timestamp": "2026-01-01T00:00:00Z",
            },
            [],
        ),
        (5, {"meterId": "007", "kwhConsumedAc": "01", "timestamp": "x"}, []),
    ]


def test_a_row_of_the_wrong_width_or_not_utf8_is_a_problem_of_its_own() -> None:
    data = b"meterId,kwhConsumedAc,voltage,timestamp\nM-1,1,230\nM-\xff,1,230,t\n"
    assert _lines(data) == [(2, None, ["columns"]), (3, None, ["utf8"])]


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (b"meterId,kwh,voltage,timestamp", "names 'kwh', which no reading has"),
        (b"meterId,voltage,voltage,timestamp", "names voltage more than once"),
        (b"kwhConsumedAc,voltage,timestamp", "has no id column"),
    ],
)
def test_a_header_no_reading_fits_is_refused(header: bytes, words: str) -> None:
    with pytest.raises(HeaderInvalid, match=words):
        _lines(header + b"\nM-1,1,230,t\n")


def test_json_lines_are_detected_and_each_parsed_alone() -> None:
    data = b'\n  {"meterId":"M-1"}\n{broken\n[1]\n'
    assert _lines(data) == [(2, {"meterId": "M-1"}, []), (3, None, ["json"]), (4, [1], [])]
    assert _lines(b"meterId\nM-1\n", "jsonl") == [(1, None, ["json"]), (2, None, ["json"])]


def test_the_progress_line_counts_lines_and_the_share_of_the_file() -> None:
    out = io.StringIO()
    progress = ProgressLine(200, out)
    for _ in range(4):
        progress(50)
    progress.finish()
    assert out.getvalue().endswith("\r           4 lines read  100.0 %\n")
