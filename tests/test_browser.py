"""The app's pages in a real headless Chromium (Debian's ``chromium`` package).

Skipped when Chromium is not installed, unless ``DIGITLAB_REQUIRE_BROWSER=1``
(set by ``.ci/run``), in which case a missing browser is a failure. With
``DIGITLAB_SCREENSHOT=1`` the drawing test saves the page, a digit drawn and
read, as ``docs/draw_page.png`` (the screenshot in the README).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import threading

import pytest

from digitlab import paths
from digitlab.data.sources import load_mnist
from digitlab.generator import pca_kde as gen
from digitlab.repro import atomic_target
from digitlab.web import create_app

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if path is None:
        if os.environ.get("DIGITLAB_REQUIRE_BROWSER") == "1":
            pytest.fail("DIGITLAB_REQUIRE_BROWSER=1 but Chromium is not installed; "
                        "install it with `apt-get install chromium`.")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def server_url(tmp_path_factory, classifier_checkpoint):
    from waitress.server import create_server

    splits = load_mnist("embedded")
    model, _ = gen.fit_generator(splits.train_images[:300], splits.train_labels[:300],
                                 n_components=10, bandwidth=0.4, progress=False)
    folder = tmp_path_factory.mktemp("generator")
    model.save(gen.model_path(folder))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(folder, checkpoint=classifier_checkpoint)
    server = create_server(app, host="127.0.0.1", port=port, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/"
    server.close()


@pytest.fixture
def browser_page():
    """A fresh page in headless Chromium, and the list of script errors it raised."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            yield page, errors
        finally:
            browser.close()


def test_choosing_a_count_and_a_digit_then_generate_shows_that_many_images(server_url,
                                                                           browser_page):
    page, errors = browser_page
    page.goto(server_url)
    assert "Digit generator" in page.inner_text("h1")
    assert "variance explained" in page.inner_text("#stats")
    # The shared style sheet must not restyle this page's controls (both pages have ids).
    assert page.evaluate("getComputedStyle(document.getElementById('digit')).fontSize"
                         " === getComputedStyle(document.getElementById('count')).fontSize")
    for count, digit in (("5", "3"), ("12", "")):
        page.select_option("#count", count)
        page.select_option("#digit", digit)
        page.click("#generate")
        # Wait until that many images are shown and decoded (28 pixels wide).
        page.wait_for_function(
            "n => { const imgs = [...document.querySelectorAll('#gallery img.sample')];"
            " return imgs.length === n && imgs.every(i => i.complete"
            " && i.naturalWidth === 28); }", arg=int(count))
        sources = page.eval_on_selector_all("#gallery img.sample", "els => els.map("
                                            "e => e.src)")
        assert len(sources) == int(count)
        assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert "12 new digits" in page.inner_text("#status")
    captions = page.eval_on_selector_all("#gallery figcaption",
                                         "els => els.map(e => e.textContent)")
    assert len(captions) == 12
    assert all(re.fullmatch(r"reads \d \(\d{1,3}%\)", c) for c in captions), captions
    assert errors == []


def stroke(page, points) -> None:
    """Press the mouse at the first point, move through the others, release."""
    box = page.locator("#canvas").bounding_box()
    scale = box["width"] / 280  # points are in canvas pixels

    def at(point):
        return box["x"] + point[0] * scale, box["y"] + point[1] * scale

    page.mouse.move(*at(points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*at(point), steps=2)
    page.mouse.up()


def reading(page) -> tuple[str, list[float]]:
    """Wait for the page to show a reading; return the digit and the ten bar values."""
    page.wait_for_function("document.getElementById('read-digit').textContent !== '\u2013'"
                           " && document.getElementById('preview').naturalWidth === 28")
    widths = page.eval_on_selector_all(
        "#bars .fill", "els => els.map(e => parseFloat(e.style.width))")
    return page.inner_text("#read-digit"), widths


def test_a_stroke_reads_1_and_a_closed_loop_reads_0(server_url, browser_page):
    page, errors = browser_page
    page.set_viewport_size({"width": 900, "height": 760})
    page.goto(server_url + "draw")
    assert "Draw a digit" in page.inner_text("h1")

    stroke(page, [(140, 40 + 10 * i) for i in range(21)])  # a vertical line, 200 px tall
    digit, bars = reading(page)
    assert digit == "1"
    assert len(bars) == 10 and sum(bars) == pytest.approx(100, abs=1)
    assert max(bars) == bars[1]

    page.click("#clear")
    page.wait_for_function("document.getElementById('read-digit').textContent === '\u2013'")
    # An ellipse 130 px wide and 200 tall, closed.
    loop = [(140 + 65 * math.sin(2 * math.pi * i / 48), 140 - 100 * math.cos(2 * math.pi * i / 48))
            for i in range(49)]
    stroke(page, loop)
    digit, bars = reading(page)
    assert digit == "0"
    assert "% sure" in page.inner_text("#read-confidence")
    assert errors == []
    if os.environ.get("DIGITLAB_SCREENSHOT") == "1":
        with atomic_target(paths.docs_dir() / "draw_page.png") as tmp:
            page.screenshot(path=str(tmp), type="png", full_page=True)


def test_clear_empties_the_canvas_and_an_empty_canvas_is_never_sent(server_url, browser_page):
    page, errors = browser_page
    page.goto(server_url + "draw")
    stroke(page, [(100, 60), (180, 60), (120, 220)])  # a 7
    reading(page)
    page.click("#clear")
    assert page.evaluate("document.getElementById('canvas').getContext('2d')"
                         ".getImageData(0, 0, 280, 280).data.some(v => v !== 0)") is False
    assert page.inner_text("#read-digit") == "\u2013" and errors == []
