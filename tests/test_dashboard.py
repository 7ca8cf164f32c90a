"""The results page (results/index.html): every figure with its caption and command (a
figure nobody captioned yet with its file name), the results table, and links that work
from disk."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from matplotlib.image import imsave
from test_minimnist_bad_input import load_script

from digitlab import paths
from digitlab.pipeline.dashboard import CAPTIONS, describe, write_page

FIGURES = ("mini_mnist/samples.png", "noisy_mnist/samples_awgn.png",
           "mnist/evaluation/mnist_cnn__test-embedded/confusion_matrix.png",
           "misc/an unknown plot.png", "mini_mnist/a_new_plot.png")


class Page(HTMLParser):
    """The parts of the page a reader uses: image sources, link targets, figure texts."""

    def __init__(self, text: str):
        super().__init__()
        self.sources, self.links, self.figures, self._figure = [], [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.sources.append(attrs["src"])
        elif tag == "a":
            self.links.append(attrs["href"])
        elif tag == "figure":
            self._figure = ""

    def handle_data(self, data):
        if self._figure is not None:
            self._figure += data

    def handle_endtag(self, tag):
        if tag == "figure":
            self.figures.append(" ".join(self._figure.split()))
            self._figure = None


def png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    imsave(path, [[0.0, 1.0], [1.0, 0.0]])


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    for name in FIGURES:
        png(root / name)
    png(root / "mini_mnist" / ".samples.tmp.png")  # an interrupted write: not a result
    (root / "mini_mnist" / "evaluate_metrics.json").write_text(
        json.dumps({"metrics": {"ari": 0.51234, "cluster_accuracy": 0.6789}}))
    (root / "notebooks").mkdir()
    (root / "notebooks" / "train_mini_mnist.ipynb").write_text("{}")
    (root / "mnist" / "report.md").write_text("# report\n")
    return root


def figure_text(page: Page, path: str) -> str:
    return next(text for text in page.figures if f"results/{path}" in text)


def test_the_page_shows_every_figure_with_its_caption_command_and_a_working_link(results):
    html = write_page(results).read_text()
    page = Page(html)
    assert sorted(unquote(src) for src in page.sources) == sorted(FIGURES)
    assert all((results / unquote(src)).is_file() for src in page.sources + page.links
               if not src.startswith("#"))
    noisy = figure_text(page, "noisy_mnist/samples_awgn.png")
    assert "awgn noise" in noisy and "scripts/make_noisy_mnist.py" in noisy
    evaluation = figure_text(page, FIGURES[2])
    assert "embedded" in evaluation and "scripts/evaluate_model.py" in evaluation
    assert "scripts/preprocess.py" in figure_text(page, "mini_mnist/samples.png")
    # A figure nobody captioned still shows, its file name as caption, in its track's
    # section (outside every track: under "Other figures").
    assert figure_text(page, "mini_mnist/a_new_plot.png").startswith("a_new_plot.png ")
    assert html.index('id="mini-mnist"') < html.index("mini_mnist/a_new_plot.png") \
        < html.index('id="mnist-cnns"')
    assert figure_text(page, "misc/an unknown plot.png").startswith("an unknown plot.png ")
    assert html.index('id="other-figures"') < html.index("misc/an%20unknown%20plot.png")


def test_the_page_holds_the_results_table_and_the_documents(results):
    html = write_page(results).read_text()
    page = Page(html)
    assert re.search(r"K-Means ARI \(seed 0\)</td><td class=\"value\">0\.512</td>", html)
    assert re.search(r"cluster accuracy \(Hungarian\)</td><td class=\"value\">67\.9%</td>", html)
    # Every other file is missing here: no row of "not run yet", one line naming each command.
    assert "not run yet" not in html and html.count('id="not-run"') == 1
    assert "notebooks/train_mini_mnist.ipynb" in page.links
    assert "mnist/report.md" in page.links
    assert "mnist/slides.pdf" not in page.links and "<code>make slides</code>" in html
    assert "mini_mnist/evaluate_metrics.json" in page.links
    # It opens from disk with nothing fetched: no absolute URL, no absolute path.
    assert "http://" not in html and "https://" not in html
    assert not any(link.startswith("/") for link in page.links + page.sources)


def test_the_table_shows_what_was_measured_and_names_each_benchmark_not_run_once(results):
    from digitlab.pipeline.summary import COMMANDS, ROWS

    html = write_page(results).read_text()
    table = html[html.index('<h2 id="results-table">'):html.index('<h2 id="documents">')]
    rows = re.findall(r"<tr><td class=\"track\">.*?</tr>", table, re.DOTALL)
    assert len(rows) == 2 and all("mini_mnist/evaluate_metrics.json" in row for row in rows)
    line = re.search(r'<p id="not-run">Not run yet: (.*?)\.</p>', table, re.DOTALL).group(1)
    commands = re.findall(r"<code>(make [\w-]+)</code> \(", line)
    assert sorted(commands) == sorted({row.command for row in ROWS})  # each exactly once
    assert "<code>make mnist-bench</code> (best CNN vs the PyTorch example over 3 seeds)" in line
    assert "<code>make minimnist</code> (" + COMMANDS["make minimnist"] + "; 5 of its 7" in line
    assert "<code>make app-bench</code> (web app latency under load; needs <code>make " \
           "generator</code>" in line


def test_a_page_with_nothing_measured_says_so_instead_of_an_empty_table(tmp_path):
    html = write_page(tmp_path).read_text()
    assert "<table>" not in html and "Nothing measured yet" in html
    assert "<code>make all</code>" in html


def test_links_stay_right_when_the_page_is_written_elsewhere(results, tmp_path):
    output = write_page(results, tmp_path / "site" / "page.html")
    page = Page(output.read_text())
    assert page.sources and all(src.startswith("../results/") for src in page.sources)
    assert all((output.parent / unquote(src)).is_file() for src in page.sources)


def test_a_star_matches_one_name_and_fills_the_caption():
    figure = describe("mnist/evaluation/mnist_cnn__t10k-images/confusion_matrix.png")
    assert "mnist_cnn" in figure.caption and "t10k-images" in figure.caption
    assert "--checkpoint models/mnist_cnn.pt" in figure.command
    assert describe("mnist/variants/learning_curves_adam.png").caption.endswith("adam")
    # '*' stays within one folder or name.
    assert not describe("noisy_mnist/extra/samples_awgn.png").captioned
    assert not describe("mini_mnist/samples.png.png").captioned


@pytest.fixture(scope="module")
def quick_pipeline(tmp_path_factory):
    """The Mini MNIST scripts on 200 images in a temporary project root, then the page."""
    root = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DIGITLAB_ROOT", str(root))
        load_script("generate_data").main(["--n-per-class", "20"])
        load_script("preprocess").main([])
        load_script("clustering").main(["--n-init", "2"])
        load_script("evaluate").main([])
        load_script("split_data").main([])
        load_script("summarize").main([])
        yield paths.results_dir()


SCRIPTS = ("preprocess", "clustering", "evaluate", "split_data")


def test_the_quick_pipeline_figures_are_all_shown_with_the_captions_written_for_them(
        quick_pipeline):
    figures = [p.relative_to(quick_pipeline).as_posix() for p in quick_pipeline.rglob("*.png")]
    page = Page((quick_pipeline / "index.html").read_text())
    assert sorted(unquote(src) for src in page.sources) == sorted(figures)
    # Each caption written for these scripts' figures is used: its figure exists and the
    # page shows its words (a renamed figure would fall back to its file name).
    captions = [c for c in CAPTIONS if any(f"scripts/{s}.py" in c.command for s in SCRIPTS)]
    assert len(captions) >= 7
    for caption in captions:
        [path] = [f for f in figures if caption.match(f) is not None]
        assert figure_text(page, path).startswith(caption.caption), path


@pytest.mark.browser
def test_the_page_opened_from_disk_shows_every_image(quick_pipeline):
    from test_browser import CHROMIUM_ARGS, chromium_path

    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto((quick_pipeline / "index.html").as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.getAttribute('src'), e.complete, e.naturalWidth])")
        finally:
            browser.close()
    assert len(images) == len(list(quick_pipeline.rglob("*.png")))
    assert [src for src, complete, width in images if not (complete and width > 0)] == []
