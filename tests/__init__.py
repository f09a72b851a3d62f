"""The engine's tests.

Imported by pytest before any conftest, so before anything imports the engine: the suite starts
without the engine's settings of the shell that runs it (`EIE_*`, `DATABASE_URL`) and without a
metrics folder meant for a multi-worker engine, so a developer's or a CI job's environment never
changes what a test sees. `TEST_DATABASE_URL`, the server the tests use, stays.
"""

import os

_ENGINE_ENVIRONMENT = ("EIE_", "DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")

for _name in [name for name in os.environ if name.startswith(_ENGINE_ENVIRONMENT)]:
    del os.environ[_name]
