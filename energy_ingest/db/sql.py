"""Named SQL blocks loaded once from `queries/*.sql`, and the one identifier-quoting helper."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^-- name: (?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_named_blocks(text: str) -> dict[str, str]:
    """Split a .sql file into `{name: statement}` at each `-- name: x` line."""
    blocks: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip()
        name = match.group("name")
        if name in blocks:
            raise ValueError(f"SQL block {name!r} is defined twice")
        blocks[name] = body
    return blocks


@cache
def queries() -> dict[str, str]:
    """Every named block of every `queries/*.sql` file, keyed by name."""
    merged: dict[str, str] = {}
    folder = resources.files("energy_ingest.db").joinpath("queries")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, body in parse_named_blocks(entry.read_text(encoding="utf-8")).items():
            if name in merged:
                raise ValueError(f"SQL block {name!r} is defined in two files")
            merged[name] = body
    return merged


def sql(name: str) -> str:
    """The statement named `name`; a KeyError here is a programming error caught by the tests."""
    return queries()[name]


def quote_identifier(name: str) -> str:
    """Quote an SQL identifier (table or partition name) the way PostgreSQL's quote_ident does."""
    if not name or "\x00" in name:
        raise ValueError("an SQL identifier must be non-empty and contain no NUL byte")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote an SQL string literal, for the few DDL statements that cannot take parameters."""
    if "\x00" in value:
        raise ValueError("an SQL literal cannot contain a NUL byte")
    return "'" + value.replace("'", "''") + "'"
