"""Rows as types, so `asyncpg.Record` stops at the repository that ran the statement."""

from __future__ import annotations

import dataclasses
from typing import Any, Self

_COLUMNS: dict[type, tuple[str, ...]] = {}


def _column_names(cls: Any) -> tuple[str, ...]:
    names = _COLUMNS.get(cls)
    if names is None:
        names = _COLUMNS[cls] = tuple(field.name for field in dataclasses.fields(cls))
    return names


class Row:
    """Base of a (frozen, slotted) dataclass whose fields are named as its statement's columns."""

    __slots__ = ()

    @classmethod
    def from_row(cls, row: Any) -> Self:
        """The row as this type: each field from the column of its name."""
        return cls(**{name: row[name] for name in _column_names(cls)})
