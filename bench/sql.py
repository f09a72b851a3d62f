"""The benchmark's SQL: named blocks of bench/queries.sql, loaded once."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from energy_ingest.db.sql import parse_named_blocks

QUERIES_FILE = Path(__file__).resolve().parent / "queries.sql"


@cache
def _queries() -> dict[str, str]:
    return parse_named_blocks(QUERIES_FILE.read_text(encoding="utf-8"))


def bench_sql(name: str) -> str:
    """The statement named `name` in bench/queries.sql."""
    return _queries()[name]
