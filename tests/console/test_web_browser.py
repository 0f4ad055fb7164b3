"""The console's pages in headless Chromium (Selenium) against real Mosquitto and simulated kiosks.

An administrator logs in with the admin token, sets a password, filters the fleet, opens a
kiosk, sends a signed screenshot command and sees the picture, then starts a staged rollout
of a bundle the kiosks refuse (a bad value) and watches it halt after the canary. A
screenshot of each page lands in artifacts/console/.
"""
from __future__ import annotations

import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fleet.helpers import PROJECT_ROOT, wait_for
from werkzeug.serving import make_server

from kiosk.console.server import create_app
from kiosk.console.service import Console, ConsoleConfig
from kiosk.fleet.bundle import build_signed, public_key_string, sign
from kiosk.fleet.commands import build_command, sign_command
from standins.fleet_sim import SimulatedFleet

from .conftest import free_port

ARTIFACTS = Path(PROJECT_ROOT) / "artifacts" / "console"
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
NEW_PW = "Boshan-2026-console"


@pytest.fixture
def browser():
    if not (shutil.which(CHROMIUM) and shutil.which(DRIVER)):
        pytest.fail("chromium and chromium-driver are not installed (./scripts/setup.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=zh-CN",
              "--window-size=1500,1000", "--disable-extensions", "--no-first-run"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    drv.implicitly_wait(5)  # pages with auto-refresh reload themselves; a find may land mid-reload
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield drv
    drv.quit()


@pytest.fixture
def served(tmp_path, broker, admin_keys):
    """Six simulated kiosks (real agent code) and the console with its pages, in this process."""
    pubs = [public_key_string(k.public_key()) for k in admin_keys[:2]]
    fleet = SimulatedFleet(6, broker.url, seed=3, state_dir=tmp_path / "sim", admin_keys=pubs[:1],
                           groups=["zhoucun", "boshan"], health_interval_s=0.5, offline_periods=False)
    for i, k in enumerate(fleet.kiosks):  # injected faults: two out of paper, nobody at the screens
        k.faults.paper = "out" if i in (1, 4) else "ok"
        k.faults.visit_chance = 0.0
    fleet.start()
    console = Console(ConsoleConfig(broker_url=broker.url, state_dir=tmp_path / "console", admin_keys=pubs,
                                    threshold=1, tick_s=0.2)).start()
    server = make_server("127.0.0.1", free_port(), create_app(console), threaded=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        assert console.ingest.connected.wait(30)
        yield f"http://127.0.0.1:{server.server_port}", console, fleet
    finally:
        server.shutdown()
        console.stop()
        fleet.stop()


def shot(drv, name: str) -> None:
    drv.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def test_console_pages_in_headless_chromium(browser, served, admin_keys, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, console, fleet = served
    drv = browser

    def css(sel: str):
        return drv.find_element(By.CSS_SELECTOR, sel)

    def attr(sel: str, name: str) -> str | None:
        """An attribute read that survives the page's own auto-refresh replacing the element."""
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
        for _ in range(20):
            try:
                return css(sel).get_attribute(name)
            except (NoSuchElementException, StaleElementReferenceException):
                continue
        raise AssertionError(f"{sel} never settled")

    def rows() -> list[str]:
        """The fleet table's kiosks, read again if a navigation replaced the page while reading."""
        from selenium.common.exceptions import StaleElementReferenceException
        for _ in range(20):
            try:
                return [r.get_attribute("data-kiosk") for r in drv.find_elements(By.CSS_SELECTOR, "tr.kiosk-row")]
            except StaleElementReferenceException:
                continue
        raise AssertionError("the fleet table never settled")

    # log in: admin + the admin token, then a password of one's own
    drv.get(f"{base}/fleet")
    assert "/login" in drv.current_url
    shot(drv, "01-login")
    css("#username").send_keys("admin")
    css("#password").send_keys(console.token)
    css("#login").click()
    wait_for(lambda: drv.current_url.endswith("/password"), what="the password page")
    assert css("#must-change")
    shot(drv, "02-first-password")
    css("#new").send_keys(NEW_PW)
    css("#again").send_keys(NEW_PW)
    css("#save-password").click()
    wait_for(lambda: drv.current_url.endswith("/fleet"), what="the fleet page")

    # the fleet: every kiosk, then only the ones out of paper, then one group
    wait_for(lambda: (lambda ks: len(ks) == 6 and all(k["online"] and k["devices"] for k in ks))(
        console.db.list_kiosks()), what="six kiosks' health reports in the console")
    drv.refresh()
    assert len(rows()) == 6 and css("#count-online").text == "6"
    assert css("#count-paper-out").text == "2"
    shot(drv, "03-fleet")
    Select(css("#problem")).select_by_value("paper_out")
    css("#apply-filters").click()
    wait_for(lambda: "problem=paper_out" in drv.current_url, what="the filtered page")
    paper_out = sorted(k.kiosk_id for i, k in enumerate(fleet.kiosks) if i in (1, 4))
    assert sorted(rows()) == paper_out and "缺纸" in css("#fleet tbody").text
    shot(drv, "04-fleet-paper-out")
    Select(css("#problem")).select_by_value("")
    Select(css("#group")).select_by_value("boshan")
    css("#apply-filters").click()
    wait_for(lambda: "group=boshan" in drv.current_url, what="the group's page")
    assert sorted(rows()) == sorted(k.kiosk_id for k in fleet.kiosks if k.group == "boshan")

    # one kiosk's page
    target = paper_out[0]
    css('#counts a[href$="problem=paper_out"]').click()
    wait_for(lambda: drv.current_url.endswith("problem=paper_out"), what="the paper-out page")
    drv.find_element(By.LINK_TEXT, target).click()
    wait_for(lambda: f"/kiosks/{target}" in drv.current_url, what="the kiosk's page")
    assert css("#kiosk-id").text == target
    station = next(k for k in fleet.kiosks if k.kiosk_id == target)
    assert "便民服务站" in css("#station").text and "缺纸" in css("#devices").text
    assert css("#history tbody tr") and css("#no-screenshot")

    # a signed screenshot command, uploaded and answered; the kiosk page shows the picture
    cmd = sign_command(build_command("screenshot", f"kiosk:{target}", datetime.now(UTC) + timedelta(minutes=10)),
                       admin_keys[:1])
    cmd_file = tmp_path / "screenshot.cmd"
    cmd_file.write_bytes(cmd.to_bytes())
    drv.get(f"{base}/commands")
    css("#command-file").send_keys(str(cmd_file))
    css("#upload-command").click()
    wait_for(lambda: cmd.id[:12] in drv.find_element(By.TAG_NAME, "h1").text, what="the command's page")

    def answered():
        drv.refresh()
        return attr(f'#results tr[data-kiosk="{target}"]', "data-status") == "done"
    wait_for(answered, what="the screenshot's result")
    shot(drv, "05-command")
    drv.get(f"{base}/kiosks/{station.kiosk_id}")
    img = css("#screenshot")
    assert drv.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == 320
    shot(drv, "06-kiosk")

    # a staged rollout of a bundle every kiosk refuses: the canary refuses, the rollout halts by itself
    bad = sign(build_signed({"ui": {"idle_timeout_s": "forever"}}, 1, ["all"],
                            expires=datetime.now(UTC) + timedelta(days=1)), admin_keys[:1]).to_bytes()
    bundle_file = tmp_path / "bad-bundle.json"
    bundle_file.write_bytes(bad)
    canary = fleet.kiosks[0].kiosk_id
    drv.get(f"{base}/rollouts")
    css("#bundle-file").send_keys(str(bundle_file))
    css("#canaries").send_keys(canary)
    for field, value in (("#percentages", "50,100"), ("#soak-s", "0.3"), ("#max-failure-pct", "20")):
        css(field).clear()
        css(field).send_keys(value)
    css("#start-rollout").click()
    wait_for(lambda: "/rollouts/" in drv.current_url, what="the rollout's page")

    def halted():
        drv.refresh()
        return attr("#rollout-state", "data-state") == "halted"
    wait_for(halted, timeout=60, what="the rollout halted")
    assert "refused" in css("#rollout-reason").text
    assert canary in css("#rollout-problems").text and "invalid_content" in css("#rollout-problems").text
    assert [r.get_attribute("data-stage") for r in drv.find_elements(By.CSS_SELECTOR, "#stages tbody tr")] == ["0"]
    shot(drv, "07-rollout-halted")
    rid = drv.current_url.rsplit("/", 1)[1]
    assert set(console.db.members(rid)) == {canary}  # the other five never got it
    css("#rollout-abort").click()
    wait_for(lambda: attr("#rollout-state", "data-state") == "aborted", what="the rollout aborted")
    drv.get(f"{base}/rollouts")
    assert "已中止" in css("#rollouts").text
    shot(drv, "08-rollouts")
