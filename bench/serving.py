"""Serving the bench's own servers (the naive baseline, the HTTP server alone) as the engine
serves: `energy_ingest.server.serve`, until SIGTERM or Ctrl-C, exit status 0 after a graceful
shutdown."""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Any

from energy_ingest.config import Settings
from energy_ingest.server import serve


class _Stopped(Exception):
    """Raised by the SIGTERM handler once uvicorn has shut down, so the exit status is 0."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def serve_until_stopped(app: Any, settings: Settings, **options: Any) -> int:
    """`serve(app, settings, **options)` until SIGTERM or Ctrl-C; 0 once it has shut down."""
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        serve(app, settings, **options)
    except (_Stopped, KeyboardInterrupt):
        print("stopped", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
