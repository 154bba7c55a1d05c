"""Issue 12: the dashboard in a real browser.  Headless Chromium (Debian's chromium and
chromium-driver, installed by ``systemd/install.sh --dev``) driven by Selenium against the
real central server on 127.0.0.1: log in, open each page, run each trace, export a CSV,
see a viewer refused.  Screenshots go to the test's tmp folder, and a set to
docs/screenshots/dashboard-*.png (with CHECKPOINT_KIOSK_UPDATE_SCREENSHOTS=1; looked at by a
person; committed)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from offline_queue.central import db as central_db
from offline_queue.central.dashboard.users import add_user
from offline_queue.central.server import CentralServer
from offline_queue.records import uuid7

REPO = Path(__file__).resolve().parents[1]
DOCS_SHOTS = REPO / "docs" / "screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PASSWORD = "a long test password"
CASE = "001085000001"
SCRIPT = "<script>document.title='pwned'</script>"

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip(f"headless Chromium is not installed ({CHROMIUM}, {CHROMEDRIVER}): "
                "apt-get install chromium chromium-driver (systemd/install.sh --dev does)",
                allow_module_level=True)

from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow


def wire_row(device, when, person, **kw) -> dict:
    return {
        "id": uuid7(), "device_id": device.id, "checkpoint_id": device.checkpoint_id,
        "direction": "in", "kind": "cccd", "person_key": person,
        "display": {"name": "N*** V*** A"}, "decision": "pass", "reasons": [],
        "source": "scan", "override_of": None, "original_decision": None,
        "override_reason": None, "recorded_at": when.isoformat(), "monotonic_ns": 1,
        "boot_id": "b", "clock_synced": True, "corrected_at": None, "app_version": "0.9.1",
    } | kw


def seed(target: Path) -> None:
    """Users, four checkpoints in two districts, a week of check-ins (more each day) and
    a kiosk-sent name that is a script."""
    with central_db.connect(target) as conn:
        add_user(conn, "admin", "administrator", PASSWORD)
        add_user(conn, "hoa", "official", PASSWORD)
        add_user(conn, "vien", "viewer", PASSWORD)
        now = central_db.now_utc()
        places = [("CB-TALUNG", "Tà Lùng", "Phục Hòa", "Tà Lùng"),
                  ("CB-THANHHA", "Thanh Hà", "Phục Hòa", "Hòa Thuận"),
                  ("CB-TRALINH", "Trà Lĩnh", "Trùng Khánh", "Hùng Quốc"),
                  ("CB-SOCGIANG", "Sóc Giang", "Hà Quảng", "Sóc Hà")]
        devices = []
        for cp, name, district, commune in places:
            token = central_db.create_enrolment_token(conn, checkpoint_id=cp, name=name)
            devices.append(central_db.enrol(conn, token)[0])
            with conn.atomic():
                conn.execute("UPDATE checkpoints SET district = ?, commune = ? WHERE id = ?",
                             [district, commune, cp])
        talung, thanhha, tralinh, _silent = devices
        rows = []
        for day in range(7):
            for k in range(3 + 4 * day):
                when = now - timedelta(days=6 - day, minutes=30 + 7 * k)
                rows.append(wire_row(talung, when, f"0040850{day:02d}{k:03d}"))
        visit = now - timedelta(hours=2)
        rows += [wire_row(talung, visit, CASE, display={"name": SCRIPT}),
                 wire_row(talung, visit + timedelta(minutes=4), "001085999001"),
                 wire_row(talung, visit - timedelta(minutes=9), "001085999002",
                          direction="out", decision="check", reasons=["watchlist"])]
        central_db.ingest(conn, talung, rows, now=now, backlog=3)
        central_db.ingest(conn, thanhha, [wire_row(thanhha, now - timedelta(days=1), "0020")],
                          now=now)
        central_db.ingest(conn, tralinh, [wire_row(tralinh, now - timedelta(days=6), CASE)],
                          now=now)


@pytest.fixture
def browser(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = Options()
    options.binary_location = CHROMIUM
    # The machine's network is closed: without these Chromium floods it with refused
    # connections (updates, sync, safe browsing).
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.downloads = downloads
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


# The suite must not change tracked files: the screenshots in docs/ are refreshed on purpose,
# with CHECKPOINT_KIOSK_UPDATE_SCREENSHOTS=1 (then looked at and committed).
UPDATE_DOCS = os.environ.get("CHECKPOINT_KIOSK_UPDATE_SCREENSHOTS") == "1"


def shot(driver, tmp_path: Path, name: str, *, publish: bool = True) -> None:
    """A full-page screenshot to tmp_path, and to docs/screenshots when ``publish`` and
    CHECKPOINT_KIOSK_UPDATE_SCREENSHOTS=1."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 1400, "height": min(max(int(height), 600), 4000), "deviceScaleFactor": 1,
        "mobile": False})
    path = tmp_path / f"dashboard-{name}.png"
    assert driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    if publish and UPDATE_DOCS:
        DOCS_SHOTS.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS_SHOTS / path.name)


def login(driver, url: str, username: str) -> None:
    driver.get(f"{url}/dashboard/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    WebDriverWait(driver, 10).until(lambda d: "/dashboard/login" not in d.current_url)


def logout(driver) -> None:
    driver.find_element(By.XPATH, "//button[text()='Log out']").click()
    WebDriverWait(driver, 10).until(lambda d: "/dashboard/login" in d.current_url)


def downloaded(driver, pattern: str, timeout: float = 15) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in driver.downloads.glob(pattern) if not p.name.endswith(".crdownload")]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no download {pattern} in {timeout} s: "
                         f"{sorted(p.name for p in driver.downloads.iterdir())}")


def test_officials_use_the_dashboard_in_a_real_browser(browser, tmp_path):
    target = tmp_path / "central.db"
    seed(target)
    with CentralServer(target) as server:
        url = server.url
        # Not logged in: the login page.
        browser.get(f"{url}/dashboard/activity")
        assert "/dashboard/login" in browser.current_url
        shot(browser, tmp_path, "login")
        login(browser, url, "hoa")
        assert browser.current_url.endswith("/dashboard/activity")

        # The activity report: chart, districts, the silent checkpoint.
        assert browser.find_element(By.ID, "chart").is_displayed()
        assert browser.find_element(By.ID, "silent").text == "CB-SOCGIANG"
        assert "Phục Hòa" in browser.find_element(By.ID, "places").text
        shot(browser, tmp_path, "activity")
        browser.find_element(By.ID, "activity-csv").click()
        rows = list(csv.reader(io.StringIO(
            downloaded(browser, "activity-*.csv").read_text(encoding="utf-8-sig"))))
        assert rows[0][0] == "checkpoint_id" and len(rows) == 5

        # (a) a person: two check-ins, the kiosk's script shown as text.
        browser.get(f"{url}/dashboard/trace")
        shot(browser, tmp_path, "trace")
        browser.find_element(By.ID, "person-identifier").send_keys(CASE)
        browser.find_element(By.ID, "trace-person").click()
        assert browser.find_element(By.ID, "count").text.startswith("2 check-ins")
        assert SCRIPT in browser.find_element(By.CSS_SELECTOR, "table.checkins").text
        assert browser.title != "pwned"
        shot(browser, tmp_path, "trace-person")
        browser.find_element(By.ID, "export-csv").click()
        exported = downloaded(browser, "trace-person-*.csv").read_text(encoding="utf-8-sig")
        assert exported.count(CASE) == 2 and "CB-TRALINH" in exported

        # (c) contacts of the case, (b) everyone at the checkpoint, and a stranger: none.
        browser.get(f"{url}/dashboard/trace")
        browser.find_element(By.ID, "contacts-identifier").send_keys(CASE)
        browser.find_element(By.ID, "trace-contacts").click()
        people = browser.find_element(By.ID, "people").text
        assert "001085999001" in people and "001085999002" in people
        shot(browser, tmp_path, "trace-contacts")
        browser.get(f"{url}/dashboard/trace")
        since = browser.find_element(By.ID, "since")  # prefilled: the last hour
        earlier = datetime.fromisoformat(since.get_attribute("value")) - timedelta(hours=3)
        since.clear()
        since.send_keys(f"{earlier:%Y-%m-%d %H:%M}")
        Select(browser.find_element(By.ID, "checkpoint")).select_by_value("CB-TALUNG")
        browser.find_element(By.ID, "trace-checkpoint").click()
        assert "check-ins" in browser.find_element(By.ID, "count").text
        shot(browser, tmp_path, "trace-checkpoint", publish=False)
        browser.get(f"{url}/dashboard/trace")
        browser.find_element(By.ID, "person-identifier").send_keys("999999999999")
        browser.find_element(By.ID, "trace-person").click()
        assert browser.find_element(By.ID, "none").text.startswith("None")
        shot(browser, tmp_path, "trace-none", publish=False)
        logout(browser)

        # A viewer sees the report but may not trace: a 403 page.
        login(browser, url, "vien")
        browser.get(f"{url}/dashboard/trace")
        assert browser.find_element(By.TAG_NAME, "h1").text.startswith("403")
        shot(browser, tmp_path, "forbidden")
        logout(browser)

        # The administrator: fleet, checkpoints (a form error names the field), the audit
        # log with every query above, identifiers masked.
        login(browser, url, "admin")
        browser.get(f"{url}/dashboard/fleet")
        fleet = browser.find_element(By.ID, "fleet").text
        assert "0.9.1" in fleet and "CB-TALUNG" in fleet
        shot(browser, tmp_path, "fleet")
        browser.get(f"{url}/dashboard/checkpoints?edit=CB-SOCGIANG")
        district = browser.find_element(By.ID, "district")
        district.clear()
        district.send_keys("x" * 120)
        browser.find_element(By.ID, "save-checkpoint").click()
        assert "district" in browser.find_element(By.ID, "district-error").text
        shot(browser, tmp_path, "checkpoints")
        browser.get(f"{url}/dashboard/documents")
        shot(browser, tmp_path, "documents", publish=False)
        browser.get(f"{url}/dashboard/audit")
        log_text = browser.find_element(By.ID, "audit").text
        assert log_text.count("trace_person") == 3 and "trace_contacts" in log_text
        assert CASE not in log_text and "001*******01" in log_text
        shot(browser, tmp_path, "audit")
