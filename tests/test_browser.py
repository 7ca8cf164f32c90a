"""The generator page in a real headless Chromium (Debian's ``chromium`` package).

Skipped when Chromium is not installed, unless ``DIGITLAB_REQUIRE_BROWSER=1``
(set by ``.ci/run``), in which case a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading

import pytest

from digitlab.data.sources import load_mnist
from digitlab.generator import pca_kde as gen
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
def server_url(tmp_path_factory):
    from waitress.server import create_server

    splits = load_mnist("embedded")
    model, _ = gen.fit_generator(splits.train_images[:300], splits.train_labels[:300],
                                 n_components=10, bandwidth=0.4, progress=False)
    folder = tmp_path_factory.mktemp("generator")
    model.save(gen.model_path(folder))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = create_server(create_app(folder), host="127.0.0.1", port=port, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/"
    server.close()


def test_choosing_a_count_and_a_digit_then_generate_shows_that_many_images(server_url):
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(server_url)
            assert "Digit generator" in page.inner_text("h1")
            assert "variance explained" in page.inner_text("#stats")
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
            assert errors == []
        finally:
            browser.close()
