"""A second, independent OCPP client: the npm package `ocpp-rpc`, run with node, against
`energy-ingest serve --ocpp` on a real port. The test installs the package into its own
temporary folder (the npm registry must be reachable); it skips only where node is absent."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from tests.factories import iso, minute
from tests.faults.processes import ocpp_engine
from tests.ocpp_chargers import create_key, meter_rows, metric

pytestmark = pytest.mark.timeout(180)

_SCRIPT = Path(__file__).with_name("ocpp_rpc_charger.js")
_MINUTES = 8


@pytest.fixture(scope="module")
def ocpp_rpc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with `ocpp-rpc` installed, for node to find it."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the ocpp-rpc client cannot run")
    folder = tmp_path_factory.mktemp("ocpp-rpc")
    (folder / "package.json").write_text('{"private": true}\n')
    installed = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", "ocpp-rpc@2"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert installed.returncode == 0, f"npm install ocpp-rpc failed:\n{installed.stderr}"
    shutil.copy(_SCRIPT, folder / _SCRIPT.name)
    return folder


async def test_an_ocpp_rpc_charger_boots_and_runs_a_transaction(
    database_url: str, ocpp_rpc: Path
) -> None:
    start = minute(-30)
    async with ocpp_engine(database_url) as engine:
        key = await create_key(engine, ["ingest"], device_id="NODE-CP")
        process = await asyncio.create_subprocess_exec(
            "node",
            _SCRIPT.name,
            f"ws://127.0.0.1:{engine.port}/ocpp",
            "NODE-CP",
            key,
            iso(start),
            str(_MINUTES),
            cwd=ocpp_rpc,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        answers = json.loads(out.decode().strip().splitlines()[-1])
        assert answers["protocol"] == "ocpp1.6"
        assert answers["boot"]["status"] == "Accepted"
        assert answers["boot"]["interval"] == 300
        assert isinstance(answers["start"]["transactionId"], int)
        assert answers["stop"]["idTagInfo"]["status"] == "Accepted"

        rows = await meter_rows(database_url, "NODE-CP:2")
        assert [row[0] for row in rows] == [
            start + timedelta(minutes=step) for step in range(_MINUTES + 2)
        ]
        assert [row[1] for row in rows] == pytest.approx(
            [20 + 0.25 * step for step in range(_MINUTES + 2)]
        )
        # The phase-to-neutral voltage; the line-to-line one is counted, not averaged in.
        assert [row[3] for row in rows] == [230.0, *([232.0] * (_MINUTES + 1))]
        assert await metric(engine, "eie_ocpp_violations") == 0
        assert await metric(
            engine, "eie_ocpp_ignored_samples", measurand="Power.Active.Import"
        ) == (_MINUTES)
