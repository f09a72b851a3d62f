"""The dashboard in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`)
driven by selenium against a real `energy-ingest serve` fed by the simulator.

Every test fails on any error in the browser's console. Screenshots of every page land in
`dashboard-screenshots/` under pytest's base temporary folder (`--basetemp`).

The fleet and device endpoints and the vehicle series come with the analytics work of the same
issue; where the engine does not serve one yet (404 "no such endpoint"), the page must say so
instead of breaking, and the assertions that need it are skipped with that reason.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait
from websockets.asyncio.client import connect

from energy_ingest.simulator.command import RunOptions, run
from energy_ingest.simulator.fleet import FleetSpec
from tests.factories import iso, minute, vehicle_reading
from tests.faults.processes import EngineProcess
from tests.ocpp_chargers import OCPP16, basic, raw_call, register_value
from tests.support import DatabaseServer, create_database, drop_database, with_database

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="the browser tests need Debian's chromium and chromium-driver "
    "(apt-get install chromium chromium-driver; CI installs them)",
)

STATUSES = {"ok", "underperforming", "implausible", "insufficient-data"}
VEHICLES = 16
WAIT_SECONDS = 30.0  # a bound for liveness only: every wait ends as soon as the page is there
FLEET = "/v1/analytics/fleet/performance"
DEVICES = "/v1/analytics/fleet/devices"
SERIES = "/v1/analytics/vehicle/{}/series"


@dataclass(frozen=True)
class Site:
    base_url: str
    key: str
    faulty: frozenset[str]
    statuses: dict[str, str]  # what GET /v1/analytics/performance/{id} said, per vehicle
    missing: frozenset[str]  # endpoints this engine does not serve yet

    def served(self, endpoint: str) -> bool:
        return endpoint not in self.missing


def _missing_endpoints(base_url: str, key: str, vehicle: str) -> frozenset[str]:
    headers = {"Authorization": f"Bearer {key}"}
    missing = set()
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        for endpoint, path in (
            (FLEET, FLEET + "?limit=1"),
            (DEVICES, DEVICES + "?limit=1"),
            (SERIES, SERIES.format(vehicle) + "?step=1h"),
        ):
            answer = http.get(path)
            if answer.status_code == 404 and answer.json().get("message") == "no such endpoint":
                missing.add(endpoint)
            else:
                assert answer.status_code == 200, (path, answer.status_code, answer.text)
    return frozenset(missing)


@pytest.fixture(scope="module")
def site(test_server: DatabaseServer) -> Iterator[Site]:
    """An engine process (authentication on) with three hours of a 16-vehicle fleet, some of
    it on faulty chargers."""
    name = f"{test_server.prefix}_dashboard"
    asyncio.run(create_database(test_server.admin_url, name, template=test_server.template))
    url = with_database(test_server.admin_url, name)
    try:
        with (
            tempfile.TemporaryFile() as log,
            tempfile.TemporaryDirectory(prefix="eie-dashboard-") as scratch,
        ):
            # OCPP on: the last test puts a vehicle on a charger's connector.
            engine = EngineProcess(
                url, log, Path(scratch), environment={"EIE_OCPP_ENABLED": "true"}
            )
            try:
                asyncio.run(engine.start())
                key = engine.key_file.read_text().strip()
                options = RunOptions(
                    duration=timedelta(hours=3),
                    url=engine.base_url,
                    api_key=key,
                    spec=FleetSpec(vehicles=VEHICLES, faulty_share=0.25),
                    worst=0,
                )
                result = asyncio.run(run(options, Console(file=io.StringIO())))
                assert result.detection is not None
                faulty = result.simulation.fleet.faulty_vehicle_ids
                statuses = {v.vehicle_id: v.status for v in result.detection.verdicts}
                assert faulty
                assert all(statuses[vehicle] == "underperforming" for vehicle in faulty)
                yield Site(
                    base_url=engine.base_url,
                    key=key,
                    faulty=faulty,
                    statuses=statuses,
                    missing=_missing_endpoints(engine.base_url, key, min(faulty)),
                )
            finally:
                engine.kill_hard()
    finally:
        asyncio.run(drop_database(test_server.admin_url, name))


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "dashboard-screenshots"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    assert CHROMIUM is not None
    assert CHROMEDRIVER is not None
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1280,800",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER)
    )
    try:
        yield driver
    finally:
        driver.quit()


class BrowserConsole:
    """The browser's console: every SEVERE entry is a failure, except the network errors a test
    expects (the 401 of a wrong key, the 404 of an endpoint this engine does not serve)."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver
        self.expected: list[tuple[str, int]] = []  # (a piece of the URL, the status)

    def errors(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        return [
            entry
            for entry in entries
            if entry["level"] == "SEVERE"
            and not (
                entry.get("source") == "network"
                and any(
                    fragment in entry["message"] and f"status of {status} " in entry["message"]
                    for fragment, status in self.expected
                )
            )
        ]


@pytest.fixture
def console(browser: webdriver.Chrome, site: Site) -> Iterator[BrowserConsole]:
    watched = BrowserConsole(browser)
    watched.errors()  # what earlier tests left
    for endpoint in site.missing:
        watched.expected.append((endpoint.rpartition("}")[2] + "?", 404))
    yield watched
    assert watched.errors() == []


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    try:
        return WebDriverWait(
            driver,
            WAIT_SECONDS,
            poll_frequency=0.1,
            ignored_exceptions=[StaleElementReferenceException],
        ).until(condition)
    except TimeoutException:
        raise AssertionError(f"the page never showed {what}") from None


def visible(driver: WebDriver, element_id: str) -> WebElement | None:
    element = driver.find_element(By.ID, element_id)
    return element if element.is_displayed() else None


def sign_in(driver: WebDriver, site: Site) -> None:
    driver.get(site.base_url + "/")
    driver.execute_script("sessionStorage.clear()")
    driver.get(site.base_url + "/")
    field = wait_for(driver, lambda d: visible(d, "api-key"), "the sign-in form")
    field.send_keys(site.key, Keys.ENTER)
    wait_for(driver, lambda d: visible(d, "fleet"), "the fleet view after signing in")


def table(driver: WebDriver) -> list[tuple[str, str]]:
    """(vehicle id, status cell text) of every row, read at once (rows are redrawn on each
    answer, so elements found one by one may go stale between two reads)."""
    found = driver.execute_script(
        "return [...document.querySelectorAll('#fleet-table tbody tr[data-vehicle-id]')]"
        ".map(row => [row.dataset.vehicleId, row.querySelector('td.status').textContent])"
    )
    return [(vehicle, status) for vehicle, status in found]


def ids(driver: WebDriver) -> list[str]:
    return [vehicle for vehicle, _ in table(driver)]


def fits_the_width(driver: WebDriver) -> bool:
    """Nothing wider than the window but the tables, which scroll inside their own box."""
    return bool(
        driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    )


def shot(driver: WebDriver, folder: Path, name: str) -> None:
    """The whole page at the window's width (at most 2,000 px tall)."""
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    # The window's height includes the browser's own frame: a little more than the page.
    driver.set_window_size(size["width"], min(2000, max(size["height"], int(height) + 120)))
    try:
        driver.save_screenshot(str(folder / f"{name}.png"))
    finally:
        driver.set_window_size(size["width"], size["height"])


def test_sign_in_with_enter_and_a_wrong_key_is_told(
    browser: WebDriver, site: Site, console: BrowserConsole, screenshots: Path
) -> None:
    browser.get(site.base_url + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.get(site.base_url + "/")
    field = wait_for(browser, lambda d: visible(d, "api-key"), "the sign-in form")
    passwords = browser.find_elements(By.CSS_SELECTOR, 'input[type="password"]')
    assert passwords == [field]
    label = browser.find_element(By.CSS_SELECTOR, 'label[for="api-key"]')
    assert label.text == "API key"
    shot(browser, screenshots, "sign-in")

    console.expected.append(("/v1/analytics/fleet/devices", 401))
    field.send_keys("eie_not-a-key-of-this-engine", Keys.ENTER)
    error = wait_for(
        browser,
        lambda d: (
            (e := d.find_element(By.ID, "signin-error")).text.startswith("Wrong API key") and e
        ),
        "a message for the wrong key",
    )
    assert error.get_attribute("role") == "alert"
    assert visible(browser, "fleet") is None
    assert browser.execute_script("return sessionStorage.length") == 0
    shot(browser, screenshots, "sign-in-wrong-key")

    field.clear()
    field.send_keys(site.key, Keys.ENTER)
    wait_for(browser, lambda d: visible(d, "fleet"), "the fleet view after signing in")
    # The key is kept for this tab only and never lands in a URL.
    assert browser.execute_script("return Object.values(sessionStorage)") == [site.key]
    assert site.key not in browser.current_url
    history = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert not any(site.key in entry for entry in history)


def test_fleet_table_flags_the_faulty_vehicles_and_sorts(
    browser: WebDriver, site: Site, console: BrowserConsole, screenshots: Path
) -> None:
    sign_in(browser, site)
    if not site.served(FLEET):
        message = wait_for(browser, lambda d: visible(d, "fleet-message"), "a message")
        assert "not available" in message.text
        shot(browser, screenshots, "fleet-not-available")
        pytest.skip(f"this engine does not serve {FLEET} yet (404): the fleet table is untested")

    wait_for(browser, lambda d: len(ids(d)) == VEHICLES, f"{VEHICLES} vehicle rows")
    shown = dict(table(browser))
    assert set(shown.values()) <= STATUSES, shown
    assert shown == site.statuses
    for vehicle in site.faulty:
        assert shown[vehicle] == "underperforming"
    histogram = browser.find_element(By.CSS_SELECTOR, "#fleet-histogram svg")
    assert int(histogram.get_attribute("data-points") or 0) > 0
    shot(browser, screenshots, "fleet")

    header = browser.find_element(By.CSS_SELECTOR, '#fleet-table th[data-sort="vehicleId"]')
    header.find_element(By.TAG_NAME, "button").click()
    wait_for(browser, lambda d: header.get_attribute("aria-sort") == "ascending", "sorted")
    wait_for(
        browser,
        lambda d: ids(d) == sorted(shown),
        "rows sorted by vehicle id",
    )
    header.find_element(By.TAG_NAME, "button").send_keys(Keys.ENTER)  # by keyboard too
    wait_for(browser, lambda d: header.get_attribute("aria-sort") == "descending", "reversed")
    wait_for(
        browser,
        lambda d: ids(d) == sorted(shown, reverse=True),
        "rows sorted by vehicle id, descending",
    )

    Select(browser.find_element(By.ID, "fleet-status")).select_by_value("underperforming")
    wait_for(
        browser,
        lambda d: (
            set(ids(d))
            == {vehicle for vehicle, status in site.statuses.items() if status == "underperforming"}
        ),
        "only the underperforming vehicles",
    )
    Select(browser.find_element(By.ID, "fleet-status")).select_by_value("")
    wait_for(browser, lambda d: len(ids(d)) == VEHICLES, "every vehicle again")

    faulty = min(site.faulty)
    browser.find_element(By.CSS_SELECTOR, f'tr[data-vehicle-id="{faulty}"] td.status').click()
    wait_for(browser, lambda d: visible(d, "vehicle"), "the vehicle view")
    assert browser.find_element(By.ID, "vehicle-title").text == f"Vehicle {faulty}"

    browser.set_window_size(390, 844)
    try:
        browser.get(site.base_url + "/#/fleet")
        wait_for(browser, lambda d: len(ids(d)) == VEHICLES, "the fleet at phone width")
        assert fits_the_width(browser)
        shot(browser, screenshots, "fleet-phone")
    finally:
        browser.set_window_size(1280, 800)


def test_a_vehicle_shows_its_charts(
    browser: WebDriver, site: Site, console: BrowserConsole, screenshots: Path
) -> None:
    sign_in(browser, site)
    faulty = min(site.faulty)
    browser.get(f"{site.base_url}/#/vehicle/{faulty}")
    wait_for(browser, lambda d: visible(d, "vehicle"), "the vehicle view")
    # The simulated fleet reported over the last three hours: six hours show it in detail.
    Select(browser.find_element(By.ID, "vehicle-window")).select_by_value("6h")
    wait_for(
        browser,
        lambda d: d.find_element(By.ID, "vehicle").get_attribute("data-loaded") == f"{faulty} 6h",
        "the vehicle over six hours",
    )
    timeline = wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#chart-assignments svg[data-points]"),
        "the assignment timeline",
    )[0]
    assert int(timeline.get_attribute("data-points") or 0) >= 1
    assert timeline.find_elements(By.CSS_SELECTOR, "rect.assignment")
    tiles = browser.find_element(By.ID, "vehicle-tiles").text
    assert "underperforming" in tiles
    live = browser.find_element(By.ID, "vehicle-live").text
    assert "SoC" in live
    assert "no reading yet" not in live
    charts = ("chart-energy", "chart-efficiency", "chart-soc", "chart-temp")
    for chart in charts:
        browser.find_element(By.CSS_SELECTOR, f"#{chart} svg")  # drawn, with or without data
    shot(browser, screenshots, "vehicle")
    if not site.served(SERIES):
        message = browser.find_element(By.ID, "vehicle-message").text
        assert "not available" in message
        pytest.skip(f"this engine does not serve {SERIES} yet (404): its charts are untested")
    for chart in charts:
        svg = browser.find_element(By.CSS_SELECTOR, f"#{chart} svg")
        assert int(svg.get_attribute("data-points") or 0) > 0, chart
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-efficiency line.threshold")
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-efficiency path.line")
    browser.set_window_size(390, 844)
    try:
        assert fits_the_width(browser)
        shot(browser, screenshots, "vehicle-phone")
    finally:
        browser.set_window_size(1280, 800)


def test_devices_lists_the_silent_ones(
    browser: WebDriver, site: Site, console: BrowserConsole, screenshots: Path
) -> None:
    sign_in(browser, site)
    browser.find_element(By.CSS_SELECTOR, '#nav a[data-view="devices"]').click()
    wait_for(browser, lambda d: visible(d, "devices"), "the devices view")
    if not site.served(DEVICES):
        message = wait_for(browser, lambda d: visible(d, "devices-message"), "a message")
        assert "not available" in message.text
        shot(browser, screenshots, "devices-not-available")
        pytest.skip(f"this engine does not serve {DEVICES} yet (404): the device list is untested")
    # The simulated fleet stopped reporting at the start of the test run, minutes ago at most.
    wait_for(browser, lambda d: d.find_element(By.ID, "devices-updated").text, "an answer")
    shot(browser, screenshots, "devices")
    select = browser.find_element(By.ID, "devices-silent")
    assert select.get_attribute("value") == "PT15M"
    for row in browser.find_elements(By.CSS_SELECTOR, "#devices-table tbody tr"):
        assert row.get_attribute("data-kind") in {"meter", "vehicle"}
        assert row.get_attribute("data-device-id")


_OCPP_VEHICLE = "dash-ocpp-ev"
_CHARGE_POINT = "DASH-CP"


async def _vehicle_on_an_ocpp_connector(site: Site) -> None:
    """A vehicle assigned to connector 1 of an OCPP charger that reported its status and a
    meter value over its WebSocket. Run last: it adds a vehicle to the fleet of 16."""
    headers = {"Authorization": f"Bearer {site.key}"}
    async with httpx.AsyncClient(base_url=site.base_url, headers=headers, timeout=30) as http:
        assigned = await http.put(
            f"/v1/vehicles/{_OCPP_VEHICLE}/meter",
            json={"meterId": f"{_CHARGE_POINT}:1", "from": iso(minute(-30))},
        )
        assert assigned.status_code == 201, assigned.text
        reading = vehicle_reading(vehicle_id=_OCPP_VEHICLE, at=minute(-5))
        assert (await http.post("/v1/ingest/vehicle", json=reading)).status_code == 201
    async with connect(
        "ws" + site.base_url.removeprefix("http") + f"/ocpp/{_CHARGE_POINT}",
        subprotocols=[OCPP16],
        additional_headers={"Authorization": basic(_CHARGE_POINT, site.key)},
    ) as websocket:
        status = {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}
        assert (await raw_call(websocket, "StatusNotification", status))[0] == 3
        values = {"connectorId": 1, "meterValue": [register_value(minute(-5), 4_321_000)]}
        assert (await raw_call(websocket, "MeterValues", values))[0] == 3


def test_a_vehicle_on_an_ocpp_connector_shows_the_charger(
    browser: WebDriver, site: Site, console: BrowserConsole, screenshots: Path
) -> None:
    asyncio.run(_vehicle_on_an_ocpp_connector(site))
    sign_in(browser, site)
    browser.get(f"{site.base_url}/#/vehicle/{_OCPP_VEHICLE}")
    charger = wait_for(browser, lambda d: visible(d, "vehicle-charger"), "the charger's connector")
    wait_for(browser, lambda d: "4321.00" in charger.text, "the connector's register")
    text = charger.text
    assert _CHARGE_POINT in text
    assert "Charging" in text
    assert "230.0 V" in text
    assert visible(browser, "vehicle-charger-title")
    shot(browser, screenshots, "vehicle-ocpp")
