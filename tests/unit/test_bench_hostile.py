"""The hostile-request bench's report: one engine alone, or a baseline and a later engine."""

from __future__ import annotations

from typing import Any

from bench.hostile import CASES, encode_request, render_markdown


def _row(case: str, status: str, answer: int, seconds: float, peak: float, healthz: float) -> Any:
    return {
        "case": case,
        "label": f"request {case}",
        "request_bytes": 16_500_000,
        "status": status,
        "answer_bytes": answer,
        "seconds": seconds,
        "server_cpu_seconds": seconds,
        "rss_before_mib": 60.0,
        "peak_rss_mib": peak,
        "rss_after_mib": 60.0,
        "healthz_max_ms": healthz,
        "healthz_calls": 10,
        "healthz_failures": 0,
        "answer_start": '{"error":"x|y"}',
    }


def _report(*engines: dict[str, Any]) -> dict[str, Any]:
    return {
        "command": "python -m bench.hostile",
        "started_at": "2026-12-05T13:00:00Z",
        "run_seconds": 42.0,
        "machine": {"cores": 2, "cpu": "cpu", "memory_gib": 23.5, "os": "Linux", "python": "3"},
        "database": "embedded, throw-away",
        "poll_interval_ms": 10.0,
        "engines": list(engines),
    }


def _engine(commit: str, *rows: Any) -> dict[str, Any]:
    return {"engine": commit, "commit": commit, "local_changes": False, "idle_rss_mib": 60.0,
            "measurements": list(rows)}  # fmt: skip


def test_two_engines_are_side_by_side_with_ratios() -> None:
    before = _engine(
        "aaaa",
        _row("b", "422", 162_600_000, 12.0, 1960.0, 11_000.0),
        _row("e", "413", 100, 2.0, 700.0, 2_000.0),
    )
    after = _engine(
        "bbbb", _row("b", "413", 120, 0.05, 62.0, 2.0), _row("e", "413", 92, 0.0, 60.0, 0.5)
    )
    text = render_markdown(_report(before, after))
    row = next(line for line in text.splitlines() if line.startswith("| (b)"))
    assert "422 → 413" in row
    assert "162.6 MB → 120 B" in row
    assert "12.00 → 0.05 | 240.0×" in row
    assert "1,960 (+1,900) → 62 (+2) | 950.0×" in row
    assert "11,000.0 → 2.0 | 5,500.0×" in row
    # Below the resolution of a measurement, the ratio is a lower bound.
    row = next(line for line in text.splitlines() if line.startswith("| (e)"))
    assert "2.00 → 0.00 | ≥ 200×" in row
    assert "700 (+640) → 60 (+0) | ≥ 640×" in row
    assert "2,000.0 → 0.5 | ≥ 2,000×" in row
    # A pipe in an answer does not break the table's neighbours.
    assert "x\\|y" in text


def test_one_engine_is_one_plain_table() -> None:
    text = render_markdown(_report(_engine("cccc", _row("a", "413", 120, 0.0, 60.0, 1.0))))
    assert "| (a) request a | 16.5 MB | 413 | 120 B | 0.00 | 60 (+0) | 1.0 |" in text
    assert "→" not in text


def test_two_costs_below_resolution_have_no_ratio() -> None:
    before = _engine("aaaa", _row("g", "422", 48_400, 0.004, 60.0, 0.6))
    after = _engine("bbbb", _row("g", "422", 1_200, 0.003, 60.0, 1.0))
    row = next(line for line in render_markdown(_report(before, after)).splitlines()
               if line.startswith("| (g)"))  # fmt: skip
    assert "0.00 → 0.00 | – |" in row
    assert "60 (+0) → 60 (+0) | – |" in row
    assert "0.6 → 1.0 | – |" in row


def test_requests_carry_the_device_key_and_their_exact_length() -> None:
    raw = encode_request("/v1/ingest/vehicle", b"{}", "eie_0123456789ab_secret")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert body == b"{}"
    assert b"content-length: 2" in head
    assert b"authorization: Bearer eie_0123456789ab_secret" in head
    assert [case.key for case in CASES][:6] == ["a", "b", "c", "d", "e", "f"]
