"""The suite runs without the engine's settings of the shell that started it."""

from __future__ import annotations

import os


def test_the_engine_environment_of_the_shell_is_cleared() -> None:
    leaked = [
        name
        for name in os.environ
        if name.startswith("EIE_") or name in {"DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR"}
    ]
    assert leaked == []
