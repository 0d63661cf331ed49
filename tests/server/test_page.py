"""The web page in a real headless Chromium (Debian `chromium` + `chromium-driver`)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from ..conftest import render_page
from .conftest import REAL

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="needs headless Chromium: apt-get install chromium chromium-driver",
    ),
]

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip, dev extra)")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def browser(tmp_path: Path):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,1500",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, timeout: float = 60):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d))


def _open(driver, url: str) -> None:
    driver.get(url)
    _wait(driver, lambda d: "ready" in d.find_element(By.ID, "server-state").text)


def _squash(text: str) -> str:
    return "".join(text.split()).lower()


# Dark pixels of the picture inside each drawn box, and the box's place on screen.
_BOX_CHECK = """
const card = arguments[0];
const canvas = card.querySelector("canvas.picture");
const svg = card.querySelector("svg.boxes");
const [, , vw, vh] = svg.getAttribute("viewBox").split(" ").map(Number);
const ctx = canvas.getContext("2d");
const sx = canvas.width / vw, sy = canvas.height / vh;
const c = canvas.getBoundingClientRect();
return [...svg.querySelectorAll("polygon")].map((polygon) => {
  const pts = polygon.getAttribute("points").split(" ").map((p) => p.split(",").map(Number));
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), y0 = Math.min(...ys), x1 = Math.max(...xs), y1 = Math.max(...ys);
  const w = Math.max(1, Math.round((x1 - x0) * sx)), h = Math.max(1, Math.round((y1 - y0) * sy));
  const data = ctx.getImageData(Math.round(x0 * sx), Math.round(y0 * sy), w, h).data;
  let dark = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] < 300) dark++;
  const r = polygon.getBoundingClientRect();
  return {
    inside: x0 >= 0 && y0 >= 0 && x1 <= vw && y1 <= vh,
    onScreen: r.left >= c.left - 1 && r.right <= c.right + 1 && r.top >= c.top - 1
      && r.bottom <= c.bottom + 1 && r.width > 4 && r.height > 4,
    darkShare: dark / (data.length / 4),
  };
});
"""


@pytest.mark.slow
def test_page_reads_uploaded_images_and_draws_boxes(start_server, browser, tmp_path) -> None:
    server = start_server("--workers", "1", engine=REAL)
    texts = [
        ["Invoice 2024", "Total due 118.40"],
        ["Meeting notes", "Ship the server", "Review the page"],
        ["Hello browser"],
    ]
    paths = []
    for i, lines in enumerate(texts):
        path = tmp_path / f"page{i}.png"
        render_page(lines, size=30, width=700).save(path)
        paths.append(str(path))
    _open(browser, server.url)
    browser.find_element(By.ID, "files").send_keys("\n".join(paths))

    job = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".job[data-state=done]"), 120)
    assert job.find_element(By.CSS_SELECTOR, ".job-count").text == "3 / 3"
    assert job.find_element(By.CSS_SELECTOR, "progress").get_attribute("value") == "3"
    cards = job.find_elements(By.CSS_SELECTOR, ".result")
    assert [c.find_element(By.CSS_SELECTOR, ".name").text for c in cards] == [
        "page0.png",
        "page1.png",
        "page2.png",
    ]
    for card, lines in zip(cards, texts):
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", card)
        _wait(browser, lambda d, card=card: card.get_attribute("data-view") == "picture", 30)
        shown = [
            browser.execute_script("return arguments[0].firstChild.textContent", li)
            for li in card.find_elements(By.CSS_SELECTOR, ".lines li")
        ]
        assert [_squash(t) for t in shown] == [_squash(t) for t in lines]
        boxes = browser.execute_script(_BOX_CHECK, card)
        assert len(boxes) == len(lines)
        for box in boxes:
            assert box["inside"] and box["onScreen"], box
            assert box["darkShare"] > 0.03, box  # the box sits on the text of the picture
    # Copy text works (clipboard or its fallback) and says so.
    copy = cards[0].find_element(By.CSS_SELECTOR, ".copy")
    copy.click()
    _wait(browser, lambda d: copy.text == "Copied", 5)

    browser.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "ocrmill-page.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_page_stays_responsive_with_200_files(start_server, browser, tmp_path) -> None:
    server = start_server("--workers", "2")
    folder = tmp_path / "many"
    folder.mkdir()
    paths = []
    for i in range(200):
        path = folder / f"p{i:03d}.png"
        path.write_bytes(f"slow:0.02:line number {i}".encode())
        paths.append(str(path))
    _open(browser, server.url)
    browser.execute_script(
        """window.__longTasks = [];
        new PerformanceObserver((list) => {
          for (const e of list.getEntries()) window.__longTasks.push(e.duration);
        }).observe({entryTypes: ["longtask"]});"""
    )
    browser.find_element(By.ID, "files").send_keys("\n".join(paths))
    frame_delays = []
    deadline = time.monotonic() + 120
    while not browser.find_elements(By.CSS_SELECTOR, ".job[data-state=done]"):
        assert time.monotonic() < deadline, "the job did not finish"
        frame_delays.append(
            browser.execute_async_script(
                """const done = arguments[arguments.length - 1];
                const t0 = performance.now();
                requestAnimationFrame(() => done(performance.now() - t0));"""
            )
        )
        time.sleep(0.05)
    assert len(browser.find_elements(By.CSS_SELECTOR, ".job")) == 1  # one job, one upload
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".result")) == 200, 30)
    assert browser.find_element(By.CSS_SELECTOR, ".job-count").text == "200 / 200"
    drawn = (
        "return [...document.querySelectorAll('canvas.picture')].filter(c => c.width > 0).length"
    )
    assert 0 < browser.execute_script(drawn) <= 40  # only cards near the viewport are drawn
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    last = browser.find_elements(By.CSS_SELECTOR, ".result")[-1]
    _wait(browser, lambda d: last.get_attribute("data-view") == "layout", 30)
    assert browser.execute_script(drawn) <= 40  # cards scrolled away were released
    browser.save_screenshot(str(tmp_path / "ocrmill-200.png"))
    long_tasks = browser.execute_script("return window.__longTasks")
    # The page must never freeze. These bounds are generous on purpose: this is a noisy 2-core
    # machine running the server and its workers beside the browser (a 419 ms task was seen
    # once); the structural checks above (one upload, <= 40 pictures drawn) carry the load.
    assert max(frame_delays) < 2000, frame_delays
    assert max(long_tasks, default=0) < 1500, long_tasks
