"""Every SQL block the code asks for exists, and every block is used."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from energy_ingest.db.sql import parse_named_blocks, queries, quote_identifier, quote_literal

PACKAGE = Path(__file__).resolve().parents[2] / "energy_ingest"
# sql("name") calls, and the names the writer passes on as insert="..." and the like.
_USES = re.compile(
    r"""sql\(\s*"([a-z_0-9]+)"\s*\)|(?:insert|classify|upsert|register|keys|lock_registers|book_registers)="([a-z_0-9]+)\""""
)


def _names_used_in_code() -> set[str]:
    used: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for match in _USES.finditer(path.read_text(encoding="utf-8")):
            used.add(match.group(1) or match.group(2))
    return used


def test_every_name_used_in_code_is_defined() -> None:
    missing = _names_used_in_code() - set(queries())
    assert not missing, f"SQL blocks used but not defined: {sorted(missing)}"


def test_every_defined_block_is_used() -> None:
    unused = set(queries()) - _names_used_in_code()
    assert not unused, f"SQL blocks defined but never used: {sorted(unused)}"


def test_blocks_split_at_name_lines() -> None:
    text = "-- header\n-- name: first\nSELECT 1;\n\n-- name: second\n-- why\nSELECT 2;\n"
    assert parse_named_blocks(text) == {"first": "SELECT 1;", "second": "-- why\nSELECT 2;"}


def test_a_name_defined_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        parse_named_blocks("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")


def test_identifiers_and_literals_are_quoted() -> None:
    assert quote_identifier("meter_readings_p20261127") == '"meter_readings_p20261127"'
    assert quote_identifier('we"ird') == '"we""ird"'
    assert quote_literal("it's") == "'it''s'"
    with pytest.raises(ValueError, match="NUL"):
        quote_identifier("a\x00b")
