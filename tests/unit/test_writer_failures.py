"""Which failed batches are an outage (503, retry later) and which a failing statement (500)."""

from __future__ import annotations

import asyncpg
import pytest

from energy_ingest.errors import DatabaseUnavailable
from energy_ingest.writer.group_commit import is_retryable


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (DatabaseUnavailable("no connection"), True),
        (asyncpg.exceptions.ConnectionDoesNotExistError("closed"), True),
        (asyncpg.exceptions.AdminShutdownError("terminated"), True),
        (asyncpg.exceptions.QueryCanceledError("statement timeout"), True),
        (asyncpg.exceptions.TooManyConnectionsError("full"), True),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock"), True),
        (asyncpg.exceptions.SerializationError("serialization"), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (asyncpg.exceptions.NumericValueOutOfRangeError("overflow"), False),
        (asyncpg.exceptions.UndefinedColumnError("no such column"), False),
        (KeyError("meter-1"), False),
    ],
)
def test_only_outages_and_transaction_conflicts_are_worth_a_retry(
    error: BaseException, retryable: bool
) -> None:
    assert is_retryable(error) is retryable
